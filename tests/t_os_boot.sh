#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole os, end to end under QEMU (TCG; KVM guests hang on this machine):
# a Debian kernel with a busybox rootfs is built into signed OS images, and
# the disk that `anole os install` lays out boots by itself, under either
# firmware: SeaBIOS -> syslinux, or OVMF (UEFI) -> syslinux.efi, then the
# slot's kernel and anole's initramfs. Checked on the guest's serial
# console and in the boot state:
#   boot v1 (slot A) under UEFI, with anole installed in it: its init marks the
#   running slot good with `anole os mark-good`, and upgrades itself to v2
#   from an OS image on a second drive (`anole os upgrade /dev/vda`, no
#   --disk: the disk it booted from), then verify, mark-good (the running
#   slot, not the upgraded next one), rollback twice and status run there;
#   v2 boots (slot B, marked good) under BIOS from the bootloader config
#   the guest wrote;
#   an upgrade whose writer is killed mid-write leaves B booting;
#   a broken v3 (its init fails the health check) gets its 1 try, then the
#   initramfs rolls back and B (v2) comes up again, under UEFI;
#   a tampered, an unsigned and a wrongly signed v4 are refused with the
#   state unchanged; a truncated disk is a clear error.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd qemu-system-x86_64 busybox syslinux mcopy mkfs.fat mkfs.ext4 openssl
. "$TESTDIR/os_lib.sh"
[ -n "$(os_kernel_release)" ] ||
	skip "needs a Debian kernel in /boot and /lib/modules (linux-image-amd64)"
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || skip "needs syslinux-common (mbr.bin)"
file_is_static() { ! readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
file_is_static "$(command -v busybox)" || skip "needs busybox-static"
[ -f /usr/lib/SYSLINUX.EFI/efi64/syslinux.efi ] || skip "needs syslinux-efi"
OVMF=/usr/share/ovmf/OVMF.fd
[ -f "$OVMF" ] || skip "needs OVMF for the UEFI boots (Debian: ovmf)"

# A TCG boot of this kernel is CPU-bound: ~15 s on a quiet core; at load
# 40 on 2 shared cores one took 3 minutes. 600 s per boot (times the boots
# a scenario needs) leaves a wide margin without letting a hung guest hold
# the test forever.
BOOT_TIMEOUT=${OS_BOOT_TIMEOUT:-600}

# boot NAME [BOOTS [QEMU_ARGS...]]: boot $DISK until the guest powers off
# (after BOOTS boots, default 1); the console in $WORK/NAME.log
boot() {
	local log=$WORK/$1.log rc=0 limit=$((BOOT_TIMEOUT * ${2:-1})) t0=$SECONDS
	shift $(($# < 2 ? $# : 2))
	log "boot $(basename "$log" .log)"
	timeout "$limit" qemu-system-x86_64 -accel tcg -m 1G -nographic \
		-drive "file=$DISK,format=raw" "$@" </dev/null >"$log" 2>&1 || rc=$?
	[ "$rc" -eq 0 ] || { tail -30 "$log" >&2; fail "boot $log: qemu exited $rc (124: no poweroff in $limit s)"; }
	log "  $((SECONDS - t0)) s"
}
state() { "$ANOLE" os status --disk "$DISK" --json; }
state_field() { state | "$PY" -c "import json,sys; s=json.load(sys.stdin); print($1)"; }

cd "$WORK"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
openssl pkey -in key.pem -pubout -out pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.pem 2>/dev/null
for v in v1 v2 v3 v4; do
	os_mkroot "root-$v" "$v" $([ $v = v3 ] && echo broken)
	[ $v = v1 ] && os_add_anole root-v1
	# lz4: the same kernel path as lz4hc, faster to build here
	"$ANOLE" os build -q --rootfs "root-$v" --version "$v" --key key.pem --compress lz4 -o "$v.os"
done
"$ANOLE" os build -q --rootfs root-v4 --version v4 --key other.pem --compress lz4 -o v4-other.os

DISK=$WORK/disk.img
"$ANOLE" os install -q v1.os --disk "$DISK" --key pub.pem
assert_eq "$(state_field "s['next'], s['good'], s['slots'][0]['version']")" "A None v1" "fresh disk"
"$ANOLE" os verify --disk "$DISK" >verify.out
assert_grep "root.erofs *ok" verify.out

# v1, under UEFI, upgrades itself to v2 from the second drive (read-only:
# the guest reads the image as a raw block device)
boot v1 1 -bios "$OVMF" -drive "file=$WORK/v2.os,format=raw,if=virtio,readonly=on"
assert_grep "BdsDxe: starting .*HARDDISK" v1.log "v1 booted by OVMF from the disk"
tr -d '\r' <v1.log >v1.txt
assert_grep "anole-os: up slot=A version=v1" v1.txt "v1 boot"
for step in "os verify" "os upgrade -q /dev/vda" "os mark-good" "os rollback" "os status --json"; do
	assert_grep "anole-test: anole $step: exit 0" v1.txt "in the guest: anole $step"
done
assert_eq "$(grep -c "anole-test: anole os rollback: exit 0" v1.txt)" 2 "in-guest rollbacks"
assert_no_grep "anole: error" v1.txt "in the guest"
assert_grep "^slot A: version v1, signature ok" v1.txt "in-guest verify checks the running slot"
assert_grep "^/dev/sda: slot A (version v1) marked good" v1.txt "in-guest mark-good, first"
# after the upgrade, next is B on trial: mark-good is still about the
# running A (marking B would skip its trial)
assert_grep "^/dev/sda: slot A (version v1) was already good" v1.txt "in-guest mark-good after the upgrade"
assert_grep "^/dev/sda: next boot: slot A (version v1)" v1.txt "in-guest rollback"
assert_grep "^/dev/sda: next boot: slot B (version v2)" v1.txt "in-guest rollback of the rollback"
assert_grep '"running":"A"' v1.txt "in-guest status"
assert_eq "$(state_field "s['next'], s['tries'], s['good'], s['slots'][1]['version']")" "B 3 A v2" \
	"v2 staged from inside"
boot v2    # SeaBIOS
assert_grep "SeaBIOS" v2.log "v2 booted by SeaBIOS"
assert_grep "anole-os: up slot=B version=v2" v2.log "v2 boot"
# the guest rewrote syslinux.cfg: v2 came up on its own kernel, no switch
assert_no_grep "switching the bootloader" v2.log "v2 boot"
assert_eq "$(state_field "s['next'], s['good']")" "B B" "after v2 boot"
"$ANOLE" os verify --disk "$DISK" --slot B >/dev/null

# power loss mid-upgrade: the image comes through a pipe that stalls after
# 12 MiB, so the writer is surely inside the slot when it is killed
mkfifo pipe.os
"$PY" -c "
import sys, time
data = open('v3.os', 'rb').read()
out = open('pipe.os', 'wb')
out.write(data[:12 << 20]); out.flush()
time.sleep(600)" &
feeder=$!
add_pid "$feeder"
"$ANOLE" os upgrade -q pipe.os --disk "$DISK" &
writer=$!
add_pid "$writer"
# The writer cannot finish without the rest of the image, which never comes
# (until the feeder's 600 s): wait on its progress, not on the clock, so
# that a loaded machine only makes this slower. First the slot goes invalid,
# then the writer drains the 12 MiB from the pipe (its rchar).
writer_alive() { kill -0 "$writer" 2>/dev/null || fail "the stalled upgrade exited on its own"; }
while writer_alive && [ "$(state_field "s['slots'][0]['valid']")" != False ]; do
	sleep 0.1
done
while writer_alive && [ "$(awk '/^rchar:/ {print $2}' "/proc/$writer/io")" -lt $((12 << 20)) ]; do
	sleep 0.1
done
assert_eq "$(state_field "s['slots'][0]['valid']")" "False" "slot A invalid while written"
kill -9 "$writer"; wait "$writer" 2>/dev/null || true
kill "$feeder"; wait "$feeder" 2>/dev/null || true
assert_eq "$(state_field "s['next'], s['good'], s['slots'][1]['valid']")" "B B True" "after the killed upgrade"

# broken v3, one try: it fails, the initramfs rolls back to B
"$ANOLE" os upgrade -q v3.os --disk "$DISK" --tries 1
assert_eq "$(state_field "s['next'], s['tries'], s['good']")" "A 1 B" "v3 staged"
boot v3 3 -bios "$OVMF"   # the failing try, the switch back, the good boot
assert_grep "anole-test: health check failed" v3.log "v3's failing init ran"
assert_eq "$(grep -c 'anole-test: health check failed' v3.log)" 1 "boots of v3 (tries)"
assert_grep "anole-os: initramfs: boot slot is B, not A" v3.log "rollback switched the bootloader"
assert_grep "anole-os: up slot=B version=v2" v3.log "back on v2"
assert_eq "$(state_field "s['next'], s['good']")" "B B" "after the rollback"

# v4: tampered, unsigned, wrongly signed: refused, nothing changes
before=$(state)
"$PY" - <<'PYEOF'
import tarfile, io
src = tarfile.open('v4.os')
for name, mode in (('v4-tampered.os', 'tamper'), ('v4-unsigned.os', 'unsigned')):
    out = tarfile.open(name, 'w', format=tarfile.PAX_FORMAT)
    for m in src.getmembers():
        data = src.extractfile(m).read()
        if mode == 'unsigned' and m.name == 'manifest.sig':
            continue
        if mode == 'tamper' and m.name == 'root.erofs':
            data = bytearray(data); data[len(data) // 2] ^= 0x40; data = bytes(data)
        m2 = tarfile.TarInfo(m.name); m2.size = len(data)
        out.addfile(m2, io.BytesIO(data))
    out.close()
PYEOF
for bad in v4-tampered v4-unsigned v4-other; do
	run_rc rc "$ANOLE" os upgrade -q "$bad.os" --disk "$DISK" 2>"$bad.err"
	check_not_crashed "$rc" "upgrade $bad"
	assert_eq "$rc" 1 "upgrade $bad exit"
	assert_grep "refused" "$bad.err" "$bad message"
	"$ANOLE" os verify --disk "$DISK" --slot B >/dev/null || fail "slot B changed by $bad"
done
assert_grep "does not match its signed digest" v4-tampered.err
assert_grep "unsigned" v4-unsigned.err
assert_grep "does not verify" v4-other.err
after=$(state)
# the tampered image got as far as slot A (B, the good one, never)
assert_eq "$(echo "$after" | "$PY" -c "import json,sys; s=json.load(sys.stdin); print(s['next'], s['good'], s['slots'][1])")" \
	"B B {'slot': 'B', 'valid': True, 'version': 'v2', 'partition_bytes': $(echo "$before" | "$PY" -c "import json,sys; print(json.load(sys.stdin)['slots'][1]['partition_bytes'])")}" "state after refusals"

# a truncated disk: a clear error
head -c 100M "$DISK" >short.img
run_rc rc "$ANOLE" os status --disk short.img 2>short.err
assert_eq "$rc" 1 "status of a truncated disk"
assert_grep "truncated" short.err
log "ok"
