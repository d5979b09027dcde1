#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A few hundred seeded single-byte corruptions of image metadata (see
# tests/corrupt.py): `anole image check` (the ASan/UBSan build under test)
# never crashes, hangs or reports a sanitizer error, and whenever it calls
# an image sound the kernel mounts it and reads every byte without error.
# Two images: a flat one from a metadata-rich tree, and a chunked one with
# a blob (chunk indexes pointing into an extra device).
. "$TESTDIR/lib.sh"
need_root
need_anole
ITER=${CORRUPT_ITERATIONS:-450}
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
log "images: flat $(file_size "$WORK/flat.erofs") bytes, chunked $(file_size "$WORK/chunk.erofs") + blob $(file_size "$WORK/chunk.blob")"

mkdir -p "$WORK/flat" "$WORK/chunk"
rc=0
"$PY" "$TESTDIR/corrupt.py" --anole "$ANOLE" --image "$WORK/flat.erofs" --work "$WORK/flat" \
	--iterations $(( ITER * 2 / 3 )) --budget $(( BUDGET * 2 / 3 )) --seed 1 || rc=1
"$PY" "$TESTDIR/corrupt.py" --anole "$ANOLE" --image "$WORK/chunk.erofs" --device "$WORK/chunk.blob" \
	--work "$WORK/chunk" --iterations $(( ITER / 3 )) --budget $(( BUDGET / 3 )) --seed 2 || rc=1
[ "$rc" -eq 0 ] || fail "corruption tests found problems (see above)"
log "pass"
