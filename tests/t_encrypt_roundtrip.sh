#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# needs-features: fuse
# Encrypted transport blobs (build/convert --encrypt-key, mount --decrypt-key):
#  - the blobs hold no known plaintext (the same build without encryption,
#    uncompressed, does: the grep can find it), and neither the image nor
#    the blobs hold the key;
#  - reproducible: the same build twice gives the same image and blob bytes;
#  - with the key, kernel (EROFS over FUSE-served blobs) and FUSE mounts
#    read every byte back (AES-256-CTR and SM4-CTR); without it, or with
#    another key, the mount is refused with a message saying which, and no
#    chunk is fetched or cached;
#  - one flipped ciphertext byte gives EIO for that file, never wrong data;
#  - an OCI image converted with --encrypt-key (SM4) mounts from its layout.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd openssl python3 umoci
[ -e /dev/fuse ] || skip "no /dev/fuse"
cd "$WORK"

mkdir -p t/sub
for i in $(seq 2000); do echo "KNOWN-PLAINTEXT-$i the quick brown fox jumps over the lazy dog"; done >t/text
head -c 700000 /dev/urandom >t/sub/random
cp t/text t/sub/copy
openssl rand -hex 32 >key
openssl rand -hex 32 >other-key
head -c 32 /dev/urandom >raw-key

build() { # OUT BLOBDIR [options]
	"$ANOLE" image build -q t -o "$1" --blob-dir "$2" --compress none --timestamp 0 \
		--uuid 00000000-0000-0000-0000-000000000001 "${@:3}" >/dev/null || fail "build $1"
}
log "build clear and encrypted (uncompressed, so that plaintext would show)"
build clear.erofs clear-blobs
build enc.erofs enc-blobs --encrypt-key key
build enc2.erofs enc-blobs2 --encrypt-key key
build sm4.erofs sm4-blobs --encrypt-key raw-key --cipher sm4-ctr
grep -q -a KNOWN-PLAINTEXT clear-blobs/* || fail "the control: the clear blob should show the plaintext"
for d in enc-blobs sm4-blobs; do
	if grep -q -a "KNOWN-PLAINTEXT\|quick brown fox" $d/*; then fail "$d: plaintext in an encrypted blob"; fi
done
python3 - enc-blobs sm4-blobs enc.erofs sm4.erofs key raw-key <<'EOP' || fail "a key is in the image or the blobs"
import glob, sys
*paths, hexkey, rawkey = sys.argv[1:]
keys = [open(hexkey, "rb").read().strip(), bytes.fromhex(open(hexkey).read().strip()),
        open(rawkey, "rb").read()]
for p in paths:
    for f in glob.glob(p + "/*") or [p]:
        data = open(f, "rb").read()
        for k in keys:
            assert k not in data, (f, k)
EOP
cmp enc.erofs enc2.erofs || fail "two encrypted builds give different images"
cmp enc-blobs/* enc-blobs2/* || fail "two encrypted builds give different blobs"
if cmp -s enc-blobs/* sm4-blobs/*; then fail "AES and SM4 blobs are the same"; fi

mkdir -p mnt
# refused WHAT PATTERN ARGS...: mount fails, says PATTERN, caches nothing
refused() {
	local rc=0 cache="cache-refused-$RANDOM"
	"$ANOLE" image mount enc.erofs mnt --blobs enc-blobs --cache "$cache" "${@:3}" 2>mount.err || rc=$?
	cat mount.err
	check_not_crashed "$rc" "mount ($1)"
	[ "$rc" = 1 ] || fail "$1: mount exited $rc, expected 1"
	assert_grep "$2" mount.err "$1: the message"
	! mountpoint -q mnt || fail "$1: mounted anyway"
	[ -z "$(find "$cache" -name data -size +0 2>/dev/null)" ] || fail "$1: chunks were cached"
}
log "no key, another key, a malformed key: refused"
refused "no key" "mount it with --decrypt-key"
refused "another key" "wrong key" --decrypt-key other-key
echo short >bad-key
refused "a malformed key file" "64 hex digits" --decrypt-key bad-key

log "with the key: kernel and FUSE mounts read everything back"
for mode in kernel fuse; do
	"$ANOLE" image mount enc.erofs mnt --blobs enc-blobs --mode $mode --cache cache-$mode \
		--decrypt-key key || fail "mount ($mode)"
	add_mount "$WORK/mnt"
	compare_trees t mnt
	"$ANOLE" image umount mnt || fail "umount ($mode)"
done
"$ANOLE" image mount sm4.erofs mnt --blobs sm4-blobs --mode kernel --cache cache-sm4 \
	--decrypt-key raw-key || fail "mount (sm4)"
add_mount "$WORK/mnt"
compare_trees t mnt
"$ANOLE" image umount mnt || fail "umount (sm4)"

log "a flipped ciphertext byte: EIO for that file, the others intact"
cp -r enc-blobs bad-blobs
blob=$(ls bad-blobs)
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(1000); b = f.read(1); f.seek(1000); f.write(bytes([b[0] ^ 0x40]))' \
	"bad-blobs/$blob"
"$ANOLE" image mount enc.erofs mnt --blobs bad-blobs --mode fuse --cache cache-bad \
	--decrypt-key key --read-timeout 20 || fail "mount over the altered blob"
add_mount "$WORK/mnt"
bad=0
for f in text sub/random sub/copy; do
	if cat "mnt/$f" >out 2>/dev/null; then
		cmp -s out "t/$f" || fail "$f: wrong bytes read instead of an error"
	else
		bad=$((bad + 1))
	fi
done
assert_ge "$bad" 1 "files failing to read after the flip"
"$ANOLE" image umount mnt || fail "umount (bad)"

log "convert an OCI image with --encrypt-key (SM4), mount it from the layout"
umoci init --layout img >/dev/null
umoci new --image img:v1 >/dev/null
umoci unpack --image img:v1 b >/dev/null
cp -a t/. b/rootfs/
umoci repack --image img:v1 b >/dev/null
umoci unpack --image img:v1 ref >/dev/null
"$ANOLE" image convert -q oci:img:v1 -o oci:acc:v1 --compress none --encrypt-key key --cipher sm4-ctr \
	>/dev/null || fail "convert --encrypt-key"
python3 - acc <<'EOP' || fail "plaintext in the converted blobs"
import glob, json
for f in glob.glob("acc/blobs/sha256/*"):
    data = open(f, "rb").read()
    if data[:1] in (b"{",):
        continue            # manifests and configs
    assert b"KNOWN-PLAINTEXT" not in data, f
EOP
rc=0; "$ANOLE" image mount oci:acc:v1 mnt --cache cache-acc0 2>mount.err || rc=$?
assert_eq "$rc" 1 "mount of the converted image without the key"
assert_grep "decrypt-key" mount.err "the message"
"$ANOLE" image mount oci:acc:v1 mnt --cache cache-acc --decrypt-key key || fail "mount the converted image"
add_mount "$WORK/mnt"
compare_trees ref/rootfs mnt
"$ANOLE" image umount mnt || fail "umount"
log "ok"
