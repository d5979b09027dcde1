#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Reproducible builds: with --timestamp and --uuid the image is a function of
# the tree only: byte-identical for any --threads, for SOURCE_DATE_EPOCH in
# place of --timestamp, and for a copy of the tree at another path (other
# inode numbers and readdir order); the blob too.  The superblock carries the
# given UUID; another timestamp or UUID gives another image.
. "$TESTDIR/lib.sh"
need_root
need_anole
using_override && skip "mkfs.erofs 1.5 has no build-time option that leaves file mtimes alone"

UUID=01234567-89ab-cdef-0123-456789abcdef
TS=1700000000
make_srcfs "$WORK/srcfs"
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 31 --small --parts standard,dedup

same() { # A B WHAT
	cmp "$1" "$2" >"$WORK/cmp.out" 2>&1 || {
		cat "$WORK/cmp.out"
		cmp -l "$1" "$2" 2>/dev/null | head -5
		fail "$3: $1 and $2 differ"
	}
}

build_ok "$SRC" "$WORK/a.erofs" --timestamp "$TS" --uuid "$UUID" --threads 1 -q
build_ok "$SRC" "$WORK/b.erofs" --timestamp "$TS" --uuid "$UUID" --threads 2 -q
build_ok "$SRC" "$WORK/c.erofs" --timestamp "$TS" --uuid "$UUID" --threads 7 -q
build_ok "$SRC" "$WORK/d.erofs" --timestamp "$TS" --uuid "$UUID" -q
same "$WORK/a.erofs" "$WORK/b.erofs" "--threads 1 vs 2"
same "$WORK/a.erofs" "$WORK/c.erofs" "--threads 1 vs 7"
same "$WORK/a.erofs" "$WORK/d.erofs" "--threads 1 vs default"

SOURCE_DATE_EPOCH=$TS build_ok "$SRC" "$WORK/sde.erofs" --uuid "$UUID" -q
same "$WORK/a.erofs" "$WORK/sde.erofs" "SOURCE_DATE_EPOCH vs --timestamp"
# --timestamp wins over SOURCE_DATE_EPOCH
SOURCE_DATE_EPOCH=1234 build_ok "$SRC" "$WORK/both.erofs" --timestamp "$TS" --uuid "$UUID" -q
same "$WORK/a.erofs" "$WORK/both.erofs" "--timestamp with another SOURCE_DATE_EPOCH"

log "copy of the tree elsewhere (new inode numbers, other readdir order)"
mkdir -p "$WORK/srcfs/elsewhere"
cp -a "$SRC" "$WORK/srcfs/elsewhere/copy"
compare_trees "$SRC" "$WORK/srcfs/elsewhere/copy" >/dev/null
build_ok "$WORK/srcfs/elsewhere/copy" "$WORK/copy.erofs" --timestamp "$TS" --uuid "$UUID" -q
same "$WORK/a.erofs" "$WORK/copy.erofs" "the same tree at another path"

log "superblock holds the UUID"
got=$("$PY" "$TESTDIR/erofs_img.py" "$WORK/a.erofs" sb | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["uuid"])')
assert_eq "$got" "$(echo "$UUID" | tr -d -)" "superblock uuid"

build_ok "$SRC" "$WORK/ts2.erofs" --timestamp $((TS + 1)) --uuid "$UUID" -q
cmp -s "$WORK/a.erofs" "$WORK/ts2.erofs" && fail "--timestamp has no effect on the image"
build_ok "$SRC" "$WORK/u2.erofs" --timestamp "$TS" --uuid 11111111-2222-3333-4444-555555555555 -q
cmp -s "$WORK/a.erofs" "$WORK/u2.erofs" && fail "--uuid has no effect on the image"

log "chunks with a blob"
build_ok "$SRC" "$WORK/x.erofs" --chunk-size 64K --blob "$WORK/x.blob" --timestamp "$TS" --uuid "$UUID" --threads 1 -q
build_ok "$SRC" "$WORK/y.erofs" --chunk-size 64K --blob "$WORK/y.blob" --timestamp "$TS" --uuid "$UUID" --threads 2 -q
same "$WORK/x.blob" "$WORK/y.blob" "blob, --threads 1 vs 2"
# the image names its blob by digest, not by path: identical too
same "$WORK/x.erofs" "$WORK/y.erofs" "blob image, --threads 1 vs 2 (different blob paths)"
log "pass"
