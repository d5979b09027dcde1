#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Reproducible builds: with --timestamp and --uuid the image is a function of
# the tree only: byte-identical for any --threads, for SOURCE_DATE_EPOCH in
# place of --timestamp, and for a copy of the tree at another path (other
# inode numbers and readdir order); the blob too, and transport blobs
# (--blob-dir, and from a tar layer as convert builds).  The superblock
# carries the given UUID; another timestamp or UUID gives another image.
# With a fixed time alone (SOURCE_DATE_EPOCH, the convention) the UUID is
# derived from the content: identical images, another UUID for another
# tree, and a random UUID when the time is not fixed.
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

# Transport blobs come from one writer whose workers finish in any order
# (blobwriter.c); 4 KiB fetch units make every 64 KiB chunk 16 units, so
# that an out-of-order write would show. From a tree and from a tar layer
# (the convert path), for 1, 2 and 7 threads.
same_dirs() { # A B WHAT
	[ "$(ls "$1")" = "$(ls "$2")" ] || fail "$3: blob names differ: $(ls "$1") vs $(ls "$2")"
	[ -n "$(ls "$1")" ] || fail "$3: no blob written"
	for f in "$1"/*; do same "$f" "$2/${f##*/}" "$3: ${f##*/}"; done
}
log "transport blobs (--blob-dir), from a tree and from a tar layer"
tar -C "$SRC" -cf "$WORK/layer.tar" . || fail "tar of the tree"
for t in 1 2 7; do
	build_ok "$SRC" "$WORK/t$t.erofs" --chunk-size 64K --fetch-unit 4K --blob-dir "$WORK/td$t" \
		--timestamp "$TS" --uuid "$UUID" --threads "$t" -q
	run_rc rc "$ANOLE" image build --layer "$WORK/layer.tar" -o "$WORK/l$t.erofs" --chunk-size 64K \
		--fetch-unit 4K --blob-dir "$WORK/ld$t" --timestamp "$TS" --uuid "$UUID" --threads "$t" -q
	check_not_crashed "$rc" "build --layer --threads $t"
	[ "$rc" = 0 ] || fail "build --layer --threads $t exited $rc"
done
for t in 2 7; do
	same "$WORK/t1.erofs" "$WORK/t$t.erofs" "--blob-dir image, --threads 1 vs $t"
	same_dirs "$WORK/td1" "$WORK/td$t" "--blob-dir blobs, --threads 1 vs $t"
	same "$WORK/l1.erofs" "$WORK/l$t.erofs" "--layer image, --threads 1 vs $t"
	same_dirs "$WORK/ld1" "$WORK/ld$t" "--layer blobs, --threads 1 vs $t"
done

log "SOURCE_DATE_EPOCH alone: the UUID comes from the content"
sb_uuid() { "$PY" "$TESTDIR/erofs_img.py" "$1" sb | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["uuid"])'; }
SOURCE_DATE_EPOCH=$TS build_ok "$SRC" "$WORK/e1.erofs" --threads 1 -q
SOURCE_DATE_EPOCH=$TS build_ok "$WORK/srcfs/elsewhere/copy" "$WORK/e2.erofs" -q
same "$WORK/e1.erofs" "$WORK/e2.erofs" "two builds with only SOURCE_DATE_EPOCH"
u1=$(sb_uuid "$WORK/e1.erofs")
# RFC 9562 version 8 (custom: SHA-256 of the content), RFC variant
[[ $u1 =~ ^[0-9a-f]{12}8[0-9a-f]{3}[89ab][0-9a-f]{15}$ ]] || fail "derived UUID $u1 is not a version 8 UUID"
build_ok "$SRC" "$WORK/e3.erofs" --timestamp "$TS" -q
same "$WORK/e1.erofs" "$WORK/e3.erofs" "--timestamp without --uuid, as SOURCE_DATE_EPOCH"
"$ANOLE" image check -q "$WORK/e1.erofs" || fail "check of the image with a derived UUID"
mkdir -p "$WORK/mnt"
mount_image "$WORK/e1.erofs" "$WORK/mnt"
compare_trees "$SRC" "$WORK/mnt" >/dev/null
umount_image "$WORK/mnt"
# one byte of one file changed, same size and times: another UUID
mkdir -p "$WORK/srcfs/changed"
cp -a "$SRC" "$WORK/srcfs/changed/tree"
f=$(find "$WORK/srcfs/changed/tree" -type f -size +0 | sort | awk 'NR == 1')
[ -n "$f" ] || fail "no non-empty file in the tree"
"$PY" -c '
import os, sys
p = sys.argv[1]
st = os.lstat(p)
with open(p, "r+b") as fh:
    b = fh.read(1)
    fh.seek(0)
    fh.write(bytes([b[0] ^ 1]))
os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))' "$f"
SOURCE_DATE_EPOCH=$TS build_ok "$WORK/srcfs/changed/tree" "$WORK/e4.erofs" -q
assert_ne "$(sb_uuid "$WORK/e4.erofs")" "$u1" "UUID of a tree with one byte changed"
# the same with a transport blob (its chunk table follows the EROFS part)
SOURCE_DATE_EPOCH=$TS build_ok "$SRC" "$WORK/t1.erofs" --blob-dir "$WORK/tb1" --chunk-size 64K -q
SOURCE_DATE_EPOCH=$TS build_ok "$SRC" "$WORK/t2.erofs" --blob-dir "$WORK/tb2" --chunk-size 64K -q
same "$WORK/t1.erofs" "$WORK/t2.erofs" "--blob-dir images with only SOURCE_DATE_EPOCH"
SOURCE_DATE_EPOCH=$TS build_ok "$WORK/srcfs/changed/tree" "$WORK/t3.erofs" --blob-dir "$WORK/tb3" \
	--chunk-size 64K -q
assert_ne "$(sb_uuid "$WORK/t3.erofs")" "$(sb_uuid "$WORK/t1.erofs")" "--blob-dir UUID of a changed tree"
"$ANOLE" image check -q "$WORK/t1.erofs" || fail "check of a --blob-dir image with a derived UUID"

log "no fixed time: a random UUID"
env -u SOURCE_DATE_EPOCH "$ANOLE" image build "$SRC" -o "$WORK/r1.erofs" -q || fail "build r1"
env -u SOURCE_DATE_EPOCH "$ANOLE" image build "$SRC" -o "$WORK/r2.erofs" -q || fail "build r2"
r1=$(sb_uuid "$WORK/r1.erofs")
assert_ne "$r1" "$(sb_uuid "$WORK/r2.erofs")" "UUIDs of two builds without a fixed time"
[[ $r1 =~ ^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$ ]] || fail "random UUID $r1 is not a version 4 UUID"
log "pass"
