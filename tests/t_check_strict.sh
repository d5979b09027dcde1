#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole image check` refuses what Linux refuses, and verifies what it can:
#  * a sweep of every superblock byte of a small image with every kind of
#    inode and xattrs (inverted, checksum resealed; corrupt.py
#    --sweep-superblock): whenever check calls the image sound, the kernel
#    mounts it and reads every byte. It found xattr_prefix_count (byte 91)
#    and feature_compat bit 3 (shared_ea_in_metabox) accepted by check and
#    refused by Linux.
#  * the chunk table behind a --blob-dir image: a wrong SHA-256, and an
#    entry moved off a block boundary (with a forged digest), are refused by
#    check and by mount;
#  * --device: a blob whose SHA-256 is not its device tag is refused.
. "$TESTDIR/lib.sh"
need_root
need_anole

make_srcfs "$WORK/srcfs" 256m
SRC=$WORK/srcfs/tree
# small, so that each of the ~124 mounts is quick: every inode type, inline
# and shared xattrs (the same one on two files), an ACL, a hard link
mkdir -p "$SRC/dir/sub"
echo hello >"$SRC/dir/file"
head -c 70000 /dev/urandom >"$SRC/big"
ln "$SRC/big" "$SRC/dir/big-link"
ln -s dir/file "$SRC/symlink"
mkfifo "$SRC/fifo"
mknod "$SRC/null" c 1 3
for f in "$SRC/dir/file" "$SRC/big"; do
	setfattr -n user.shared -v same "$f"
	setfattr -n trusted.own -v "$f" "$f"
done
setfacl -m u:1234:r "$SRC/dir/file" 2>/dev/null || true

log "---- superblock sweep"
build_ok "$SRC" "$WORK/flat.erofs" -q
mkdir -p "$WORK/sweep"
"$PY" "$TESTDIR/corrupt.py" --anole "$ANOLE" --image "$WORK/flat.erofs" --work "$WORK/sweep" \
	--sweep-superblock || fail "the superblock sweep found problems (see above)"

log "---- the chunk table of --blob-dir images, and devices, are verified"
mkdir -p "$WORK/t7"
head -c 70000 /dev/urandom >"$WORK/t7/f70000"         # a chunk, then 4464 bytes and padding
head -c 300000 /dev/urandom >"$WORK/t7/f300000"
echo small >"$WORK/t7/small"
build_ok "$WORK/t7" "$WORK/bd.erofs" -q --chunk-size 64K --blob-dir "$WORK/bd"
check_image "$WORK/bd.erofs"
# reseal_ext IMG PYTHON: run PYTHON on `ext` (the extension's bytes, a
# bytearray) and write it back with a footer whose SHA-256 matches, as any
# writer can: the digest guards against truncation, not against a forger
reseal_ext() {
	"$PY" - "$1" "$2" <<'PY' || fail "reseal_ext $1"
import hashlib, struct, sys
path, code = sys.argv[1], sys.argv[2]
d = bytearray(open(path, "rb").read())
magic, off, size = struct.unpack_from("<8sQQ", d, len(d) - 64)
assert magic == b"ANOLEXT1", magic
ext = d[off:off + size]
exec(code)
d[off:off + size] = ext
if "keep_digest" not in code:
    d[len(d) - 64 + 24:len(d) - 64 + 56] = hashlib.sha256(bytes(ext)).digest()
open(path, "wb").write(d)
PY
}
# expect_refused IMG PATTERN [check options]: check exits 1 naming PATTERN,
# and so does a lazy mount of IMG
expect_refused() {
	local img=$1 pat=$2 rc
	shift 2
	run_rc rc "$ANOLE" image check "$img" "$@" >"$WORK/r.out" 2>&1
	check_not_crashed "$rc" "check $img"
	[ "$rc" -eq 1 ] || { cat "$WORK/r.out"; fail "check $(basename "$img") exited $rc, expected 1"; }
	assert_grep "$pat" "$WORK/r.out" "check $(basename "$img")"
	log "ok: check: $(grep -m1 "$pat" "$WORK/r.out")"
}
expect_mount_refused() {
	local img=$1 pat=$2 rc
	mkdir -p "$WORK/m"
	run_rc rc "$ANOLE" image mount "$img" "$WORK/m" --blobs "$WORK/bd" --cache "$WORK/cache" 2>"$WORK/m.err"
	check_not_crashed "$rc" "mount $img"
	if [ "$rc" -eq 0 ]; then
		"$ANOLE" image umount "$WORK/m"
		fail "mount of $(basename "$img") succeeded"
	fi
	assert_grep "$pat" "$WORK/m.err" "mount $(basename "$img")"
}

cp "$WORK/bd.erofs" "$WORK/bd-sha.erofs"
reseal_ext "$WORK/bd-sha.erofs" 'ext[-1] ^= 1; keep_digest = 1'
expect_refused "$WORK/bd-sha.erofs" "SHA-256 mismatch"
expect_mount_refused "$WORK/bd-sha.erofs" "SHA-256 mismatch"

# an entry moved by 64 bytes into the padding behind it: in order, in range,
# but off a block boundary, so that its blocks used to read as zeros
cp "$WORK/bd.erofs" "$WORK/bd-shift.erofs"
reseal_ext "$WORK/bd-shift.erofs" '
nblobs = struct.unpack_from("<I", ext, 12)[0]
table, n = struct.unpack_from("<Q", ext, 64 + 48)[0], struct.unpack_from("<I", ext, 64 + 56)[0]
usize = struct.unpack_from("<Q", ext, 64 + 40)[0]
ents = [struct.unpack_from("<QQI", ext, table + 64 * k) for k in range(n)]
for k, (u, c, sz) in enumerate(ents):
    end = ents[k + 1][0] if k + 1 < n else usize
    if end - (u + sz) >= 64:
        struct.pack_into("<Q", ext, table + 64 * k, u + 64)
        break
else:
    raise SystemExit("no entry with 64 bytes of padding behind it")'
expect_refused "$WORK/bd-shift.erofs" "not on a 4096-byte block boundary"
expect_mount_refused "$WORK/bd-shift.erofs" "not on a 4096-byte block boundary"

# --blob: the device's tag is its SHA-256, which check now compares
build_ok "$WORK/t7" "$WORK/b.erofs" -q --chunk-size 64K --blob "$WORK/b.blob"
check_image "$WORK/b.erofs" --device "$WORK/b.blob"
cp "$WORK/b.blob" "$WORK/b-bad.blob"
printf 'X' | dd of="$WORK/b-bad.blob" bs=1 seek=5000 conv=notrunc status=none
expect_refused "$WORK/b.erofs" "its tag says" --device "$WORK/b-bad.blob"

log "pass"
