#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole image check` refuses what Linux refuses, and verifies what it can:
#  * a sweep of every superblock byte of a small image with every kind of
#    inode and xattrs (inverted, checksum resealed; corrupt.py
#    --sweep-superblock): whenever check calls the image sound, the kernel
#    mounts it and reads every byte. It found xattr_prefix_count (byte 91)
#    and feature_compat bit 3 (shared_ea_in_metabox) accepted by check and
#    refused by Linux.
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
	--sweep-superblock --budget 360 || fail "the superblock sweep found problems (see above)"


log "pass"
