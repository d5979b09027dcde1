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
#     is none.
. "$TESTDIR/lib.sh"
. "$TESTDIR/os_lib.sh"
need_root
need_anole
need_cmd busybox syslinux mcopy mkfs.fat mkfs.ext4 openssl
[ -n "$(os_kernel_release)" ] || skip "needs a Debian kernel in /boot and /lib/modules (linux-image-amd64)"
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || skip "needs syslinux-common (mbr.bin)"

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
expect_error "nothing to roll back to" "$ANOLE" os rollback --disk disk.img

# upgrade, rollback, mark-good from outside
"$ANOLE" os upgrade -q v2.os --disk disk.img --tries 2
assert_eq "$(state disk.img "s['next'], s['tries'], s['slots'][1]['version']")" "B 2 v2" "upgraded"
"$ANOLE" os verify --disk disk.img --slot B >/dev/null
"$ANOLE" os rollback --disk disk.img >/dev/null
assert_eq "$(state disk.img "s['next']")" A "rolled back"
"$ANOLE" os rollback --disk disk.img >/dev/null
"$ANOLE" os mark-good --disk disk.img --slot B
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
