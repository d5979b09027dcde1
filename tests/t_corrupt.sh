#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# background: cpu-bound (tests/run.sh runs it in its second lane)
# A few hundred seeded single-byte corruptions of image metadata (see
# tests/corrupt.py): `anole image check` (the ASan/UBSan build under test)
# never crashes, hangs or reports a sanitizer error, and whenever it calls
# an image sound the kernel mounts it and reads every byte without error.
# Three images of a metadata-rich tree: flat; 4 KiB chunks with a blob
# (8-byte chunk indexes into an extra device); 4 KiB chunks in the image
# (4-byte block maps).
. "$TESTDIR/lib.sh"
need_root
need_anole
ITER=${CORRUPT_ITERATIONS:-480}
BUDGET=${CORRUPT_BUDGET:-150}

make_srcfs "$WORK/srcfs" 512m
SRC=$WORK/srcfs/tree
parts=types,perms,owners,times,xattrs,acls,hardlinks,names,deep
using_override && parts=types,perms,owners,times,xattrs,acls,hardlinks,deep
gen_tree "$SRC" --seed 51 --small --parts "$parts"
# a few regular files of assorted sizes, inline tails and a sparse file
mkdir "$SRC/data"
for n in 0 1 100 4095 4096 4097 70000; do head -c "$n" /dev/urandom >"$SRC/data/f$n"; done
truncate -s 3M "$SRC/data/sparse"
echo tail >>"$SRC/data/sparse"

build_ok "$SRC" "$WORK/flat.erofs" -q
build_ok "$SRC" "$WORK/chunk.erofs" -q --chunk-size 4096 --blob "$WORK/chunk.blob"
build_ok "$SRC" "$WORK/map.erofs" -q --chunk-size 4096
log "images: flat $(file_size "$WORK/flat.erofs") bytes, chunked $(file_size "$WORK/chunk.erofs") + blob $(file_size "$WORK/chunk.blob"), block map $(file_size "$WORK/map.erofs")"

mkdir -p "$WORK/flat" "$WORK/chunk" "$WORK/map"
rc=0
"$PY" "$TESTDIR/corrupt.py" --anole "$ANOLE" --image "$WORK/flat.erofs" --work "$WORK/flat" \
	--iterations $(( ITER / 2 )) --budget $(( BUDGET / 2 )) --seed 1 || rc=1
"$PY" "$TESTDIR/corrupt.py" --anole "$ANOLE" --image "$WORK/chunk.erofs" --device "$WORK/chunk.blob" \
	--work "$WORK/chunk" --iterations $(( ITER / 4 )) --budget $(( BUDGET / 4 )) --seed 2 || rc=1
"$PY" "$TESTDIR/corrupt.py" --anole "$ANOLE" --image "$WORK/map.erofs" \
	--work "$WORK/map" --iterations $(( ITER / 4 )) --budget $(( BUDGET / 4 )) --seed 3 || rc=1
[ "$rc" -eq 0 ] || fail "corruption tests found problems (see above)"
log "pass"
