#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# build -> `anole image unpack` -> the unpacked tree equals the source in
# every field compare.py knows (types, modes, owners, ns mtimes, rdev,
# symlinks, content, xattrs, ACLs, hard links); also for a chunked image
# with its blob (--device).  Unpacking into a non-empty directory fails.
. "$TESTDIR/lib.sh"
need_root
need_anole

make_srcfs "$WORK/srcfs"
make_srcfs "$WORK/dstfs"      # the destination must take 64 KiB xattr values
SRC=$WORK/srcfs/tree
parts=standard
using_override && parts=types,perms,owners,times,xattrs,acls,hardlinks,sizes,sparse,deep
gen_tree "$SRC" --seed 41 --small --parts "$parts"

IMG=$WORK/flat.erofs
build_ok "$SRC" "$IMG"
log "unpack flat image"
assert_rc 0 "$ANOLE" image unpack -q "$IMG" "$WORK/dstfs/flat"
compare_trees "$SRC" "$WORK/dstfs/flat"

log "unpack into an existing empty directory"
mkdir "$WORK/dstfs/empty"
assert_rc 0 "$ANOLE" image unpack -q "$IMG" "$WORK/dstfs/empty"
compare_trees "$SRC" "$WORK/dstfs/empty" --ignore mode,mtime,uid,gid,xattrs >/dev/null

log "unpack into a non-empty directory must fail"
mkdir "$WORK/dstfs/busy"
echo keep >"$WORK/dstfs/busy/existing"
assert_rc 1 "$ANOLE" image unpack -q "$IMG" "$WORK/dstfs/busy"
assert_eq "$(cat "$WORK/dstfs/busy/existing")" keep "existing file after a refused unpack"
assert_eq "$(ls -A "$WORK/dstfs/busy")" existing "entries after a refused unpack"

log "chunked image with a blob"
build_ok "$SRC" "$WORK/chunk.erofs" --chunk-size 64K --blob "$WORK/chunk.blob"
assert_rc 0 "$ANOLE" image unpack -q "$WORK/chunk.erofs" "$WORK/dstfs/chunk" --device "$WORK/chunk.blob"
compare_trees "$SRC" "$WORK/dstfs/chunk"

log "chunked image, 4K chunks, data in the image"
build_ok "$SRC" "$WORK/chunk4k.erofs" --chunk-size 4096
assert_rc 0 "$ANOLE" image unpack -q "$WORK/chunk4k.erofs" "$WORK/dstfs/chunk4k"
compare_trees "$SRC" "$WORK/dstfs/chunk4k"
log "pass"
