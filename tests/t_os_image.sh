#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole os without booting: build, install, upgrade, rollback, verify and
# their errors, on disk images. (t_os_boot.sh boots them under QEMU.)
#   - a slot whose root partition changed by one byte fails verify;
#   - install refuses an image the given key does not verify;
#   - a root image larger than the slot is refused before the slot is
#     touched; a bad version, a rootfs without /sbin/init, a disk that is
#     no anole disk, a truncated disk: clear errors, exit 1;
#   - rollback switches next to the other valid slot and refuses when there
#     is none;
#   - temporary files on overlayfs are removed;
#   - on the booted system (its /run/anole-os, made here in a private mount
#     namespace): mark-good marks the running slot, not the next one;
#     verify and status default to it; upgrade refuses to write the running
#     slot. From outside, mark-good needs --slot.
. "$TESTDIR/lib.sh"
. "$TESTDIR/os_lib.sh"
need_root
need_anole
need_cmd busybox syslinux mcopy mkfs.fat mkfs.ext4 openssl unshare
[ -n "$(os_kernel_release)" ] || skip "needs a Debian kernel in /boot and /lib/modules (linux-image-amd64)"
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || skip "needs syslinux-common (mbr.bin)"
[ -f /usr/lib/SYSLINUX.EFI/efi64/syslinux.efi ] || skip "needs syslinux-efi"

cd "$WORK"
state() { "$ANOLE" os status --disk "$1" --json | "$PY" -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
# expect_error PATTERN CMD...: exit 1 with PATTERN on stderr
expect_error() {
	local pat=$1 rc; shift
	run_rc rc "$@" 2>err.txt
	check_not_crashed "$rc" "$*"
	assert_eq "$rc" 1 "exit of '$*'"
	assert_grep "$pat" err.txt "'$*'"
}

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
openssl pkey -in key.pem -pubout -out pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.pem 2>/dev/null
openssl pkey -in other.pem -pubout -out other.pub
os_mkroot root v1
"$ANOLE" os build -q --rootfs root --version v1 --key key.pem --compress lz4 -o v1.os
echo changed >root/etc/os-version
"$ANOLE" os build -q --rootfs root --version v2 --key key.pem --compress lz4 -o v2.os

# build errors
expect_error "version" "$ANOLE" os build --rootfs root --version 'bad/version' --key key.pem -o x.os
mkdir -p noinit && cp -a root/. noinit/ && rm noinit/sbin/init
expect_error "sbin/init" "$ANOLE" os build --rootfs noinit --version v1 --key key.pem -o x.os
assert_missing x.os
assert_rc 2 "$ANOLE" os build --rootfs root --version v1 -o x.os 2>/dev/null

# install: the key must verify the image; the disk appears only when complete
expect_error "does not verify" "$ANOLE" os install -q v1.os --disk bad.img --key other.pub
assert_missing bad.img
expect_error "smaller than the root image" "$ANOLE" os install -q v1.os --disk bad.img --key pub.pem --slot-size 1M
assert_missing bad.img
"$ANOLE" os install -q v1.os --disk disk.img --key pub.pem --slot-size 64M
assert_eq "$(state disk.img "s['next'], s['good'], s['slots'][0]['version'], s['slots'][1]['valid']")" "A None v1 False" "installed"
"$ANOLE" os verify --disk disk.img --json >v.json
assert_eq "$("$PY" -c "import json; print(json.load(open('v.json'))['ok'])")" True "verify --json"
# temporary files on overlayfs (an anole OS's /var/tmp, a container's) are
# cleaned up, though each file there reports its layer's device, not the
# mount's (so when the layers are on different file systems: here the
# upper one on a tmpfs, as an anole OS's is on the data partition)
mkdir -p ov/lower ov/rw ov/merged
mount -t tmpfs ov-rw ov/rw
mkdir ov/rw/upper ov/rw/work
mount -t overlay overlay -o "lowerdir=$WORK/ov/lower,upperdir=$WORK/ov/rw/upper,workdir=$WORK/ov/rw/work" ov/merged
mkdir ov/merged/tmp
TMPDIR=$WORK/ov/merged/tmp "$ANOLE" os verify --disk disk.img >/dev/null 2>ov.err
assert_no_grep "cannot remove" ov.err "temporary files on overlayfs"
assert_eq "$(ls -A ov/merged/tmp)" "" "temporary directory on overlayfs after verify"
umount ov/merged ov/rw
expect_error "nothing to roll back to" "$ANOLE" os rollback --disk disk.img

# upgrade, rollback, mark-good from outside
"$ANOLE" os upgrade -q v2.os --disk disk.img --tries 2
assert_eq "$(state disk.img "s['next'], s['tries'], s['slots'][1]['version']")" "B 2 v2" "upgraded"
"$ANOLE" os verify --disk disk.img --slot B >/dev/null
"$ANOLE" os rollback --disk disk.img >/dev/null
assert_eq "$(state disk.img "s['next']")" A "rolled back"
"$ANOLE" os rollback --disk disk.img >/dev/null
assert_eq "$(state disk.img "s['next'], s['tries'], s['good']")" "B 3 None" "rolled back again"
expect_error "name the slot" "$ANOLE" os mark-good --disk disk.img

# on the system: what its initramfs leaves in /run/anole-os (the disk it
# booted from, the slot it mounted), in a /run of this command's own
# on_system DISK SLOT CMD...
on_system() {
	unshare -m sh -c 'mount -t tmpfs run /run && mkdir /run/anole-os &&
		echo "$1" >/run/anole-os/disk && echo "$2" >/run/anole-os/slot &&
		shift 2 && exec "$@"' on_system "$@"
}
on_system "$WORK/disk.img" A "$ANOLE" os mark-good >mg.out
assert_grep "slot A (version v1) marked good" mg.out
assert_eq "$(state disk.img "s['next'], s['tries'], s['good']")" "B 3 A" "mark-good on the system: the running slot"
on_system "$WORK/disk.img" A "$ANOLE" os status --json >st.json
assert_eq "$("$PY" -c "import json; s=json.load(open('st.json')); print(s['disk'], s['running'])")" \
	"$WORK/disk.img A" "status on the system"
assert_eq "$(state disk.img "s['running']")" None "status from outside"
# B running on trial, A the good one: an upgrade would overwrite either the
# mounted root or the one fallback
expect_error "running on trial" on_system "$WORK/disk.img" B "$ANOLE" os upgrade -q v1.os
assert_eq "$(state disk.img "s['next'], s['tries'], s['good'], s['slots'][1]['valid']")" "B 3 A True" \
	"state after the refused upgrade"
on_system "$WORK/disk.img" B "$ANOLE" os verify >v.out
assert_grep "slot B: version v2" v.out "verify on the system: the running slot"
# the same disk by another name is still the system's
on_system "$WORK/disk.img" B "$ANOLE" os mark-good --disk ./disk.img >mg.out
assert_grep "slot B (version v2) marked good" mg.out
# another disk is not: --slot
cp disk.img other.img
expect_error "name the slot" on_system "$WORK/disk.img" B "$ANOLE" os mark-good --disk other.img
rm other.img
"$ANOLE" os mark-good --disk disk.img --slot B >mg.out
assert_grep "slot B (version v2) was already good" mg.out
assert_eq "$(state disk.img "s['next'], s['good'], s['tries']")" "B B 0" "marked good"

# a root image larger than the slot: refused, the slot stays valid
dd if=/dev/urandom of=root/big bs=1M count=80 status=none
"$ANOLE" os build -q --rootfs root --version v3 --key key.pem --compress lz4 -o big.os
expect_error "does not fit" "$ANOLE" os upgrade -q big.os --disk disk.img
assert_eq "$(state disk.img "s['slots'][0]['valid'], s['slots'][0]['version']")" "True v1" "slot A after the refused big image"

# tamper evidence: one byte of slot B's root partition, flipped (a byte
# overwritten with a constant might already hold it)
"$PY" -c "
import struct
with open('disk.img', 'r+b') as f:
    m = f.read(512)
    off = struct.unpack('<I', m[446 + 32 + 8:446 + 32 + 12])[0] * 512 + 5000
    f.seek(off); b = f.read(1)[0]
    f.seek(off); f.write(bytes([b ^ 0xff]))"
run_rc rc "$ANOLE" os verify --disk disk.img --slot B >verify.out 2>verify.err
assert_eq "$rc" 1 "verify of a changed slot"
assert_grep "root.erofs *DOES NOT MATCH" verify.out
assert_grep "vmlinuz *ok" verify.out

# not an anole disk; truncated
truncate -s 10M plain.img
expect_error "not an anole OS disk" "$ANOLE" os status --disk plain.img
head -c 50M disk.img >short.img
expect_error "truncated" "$ANOLE" os upgrade -q v1.os --disk short.img
expect_error "No such file" "$ANOLE" os status --disk missing.img
log "ok"
