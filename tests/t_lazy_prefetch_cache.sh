#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Prefetch, record and the chunk cache of lazy mounts (local blob store):
# - --record FILE writes, at unmount, the files in the order they were first
#   read (kernel and FUSE mode);
# - --prefetch with that list on a fresh cache fetches them with no reader;
#   reading them afterwards fetches nothing;
# - `cache ls --json` shows the blob in use while mounted; `cache gc
#   --max-size 0` never evicts a blob in use (it stays readable), and evicts
#   it once unmounted;
# - a complete cache is read by the kernel directly (kernel mode), unless
#   --no-direct;
# - the cache survives a daemon restart: a second mount reads everything
#   with nothing fetched.
. "$TESTDIR/lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
[ -e /dev/fuse ] || skip "no /dev/fuse"

make_srcfs "$WORK/srcfs" 512m
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 47 --small --parts standard
"$PY" "$LAZY_CHECK" make-files "$SRC/lazy" 6 --seed 47 --min 300000 --max 700000 || fail "make-files"
BLOBS=$WORK/blobs IMG=$WORK/meta.img MNT=$WORK/mnt
mkdir -p "$BLOBS"
"$ANOLE" image build -q "$SRC" -o "$IMG" --blob-dir "$BLOBS" --chunk-size 64K --json >"$WORK/build.json" ||
	fail "image build"
DIGEST=$(json_get "$WORK/build.json" blob_digest)
BLOB=${DIGEST#sha256:}

# cache_ls CACHE: `anole image cache ls --json` into $WORK/ls.json
cache_ls() {
	"$ANOLE" image cache ls --cache "$1" --json >"$WORK/ls.json" || fail "cache ls --cache $1"
}
# ls_field EXPR: a Python expression on the list `v` of cache ls --json
ls_field() {
	"$PY" -c 'import json, sys; v = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$WORK/ls.json" "$1"
}

# a check that fails the test at the end, letting the other checks run
DEFERRED=()
defer_fail() { printf 'FAIL (deferred): %s\n' "$*" >&2; DEFERRED+=("$*"); }

READ_ORDER=(lazy/f03 lazy/f00 lazy/f05)
for mode in kernel fuse; do
	log "mode $mode: --record"
	REC=$WORK/record-$mode.list
	lazy_mount "$IMG" "$MNT" "$BLOBS" "$mode" --cache "$WORK/cache-rec-$mode" --record "$REC"
	for f in "${READ_ORDER[@]}"; do
		lazy_read "$SRC" "$MNT" "$f"
	done
	[ ! -e "$REC" ] || log "  (the record exists before unmount)"
	lazy_umount "$MNT"
	assert_exists "$REC" "record file after unmount ($mode)"
	log "  record: $(wc -l <"$REC") lines: $(head -5 "$REC" | tr '\n' ' ')"
	want=$(printf '/%s\n' "${READ_ORDER[@]}")
	[ "$(head -3 "$REC")" = "$want" ] ||
		defer_fail "the record of $mode mode starts with $(head -3 "$REC" | tr '\n' ' ')instead of the files read: $(echo "$want" | tr '\n' ' ')"

	log "mode $mode: --prefetch of the record on a fresh cache"
	lazy_mount "$IMG" "$MNT" "$BLOBS" "$mode" --cache "$WORK/cache-pf-$mode" --prefetch "$REC"
	wait_prefetch "$MNT" 20
	lazy_snap "$MNT"
	assert_ge "$S_chunks_present" 1 "chunks present after the prefetch ($mode)"
	# (lines that name a regular file: a name holding a newline spans two)
	nrec=$("$PY" -c '
import os, sys
lines = open(sys.argv[1], "rb").read().split(b"\n")
print(sum(1 for l in lines if l and os.path.isfile(os.fsencode(sys.argv[2]) + l)))' "$REC" "$SRC")
	assert_eq "$S_prefetched_files" "$nrec" "files prefetched ($mode)"
	assert_eq "$S_reads" 0 "reads by the mount during the prefetch ($mode)"
	b0=$S_bytes_fetched
	assert_ge "$b0" 1 "bytes fetched by the prefetch ($mode)"
	lazy_read "$SRC" "$MNT" "${READ_ORDER[@]}"
	lazy_snap "$MNT"
	# both modes fetch only what the files read need (kernel mode reads the
	# blob files with direct I/O: no readahead into neighbouring chunks)
	extra=$((S_bytes_fetched - b0))
	[ "$extra" -eq 0 ] || defer_fail "reading the prefetched files fetched $extra more bytes ($mode)"

	assert_ge "$S_reads" 1 "reads served ($mode)"
	lazy_umount "$MNT"
done

log "cache ls and gc"
CACHE=$WORK/cache
lazy_mount "$IMG" "$MNT" "$BLOBS" fuse --cache "$CACHE"
lazy_read "$SRC" "$MNT" lazy/f01
cache_ls "$CACHE"
assert_eq "$(ls_field 'len(v)')" 1 "cached blobs while mounted"
assert_eq "$(ls_field 'v[0]["blob"]')" "$DIGEST" "cached blob"
assert_eq "$(ls_field 'v[0]["in_use"]')" True "in_use while mounted"
assert_ge "$(ls_field 'v[0]["chunks_present"]')" 1 "chunks_present in cache ls"
assert_ge "$(ls_field 'v[0]["bytes"]')" 1 "bytes in cache ls"
"$ANOLE" image cache gc --cache "$CACHE" --max-size 0 --json >"$WORK/gc.json" || fail "cache gc (in use)"
assert_eq "$(json_get "$WORK/gc.json" evicted)" 0 "blobs evicted while in use"
cache_ls "$CACHE"
assert_eq "$(ls_field 'len(v)')" 1 "cached blobs after gc while mounted"
compare_trees "$SRC" "$MNT"
lazy_snap "$MNT"
assert_eq "$S_chunks_present" "$S_chunks" "chunks present after reading all"
lazy_umount "$MNT"
cache_ls "$CACHE"
assert_eq "$(ls_field 'v[0]["in_use"]')" False "in_use after unmount"
assert_eq "$(ls_field 'v[0]["chunks_present"]')" "$S_chunks" "chunks_present after unmount"

log "the cache survives a daemon restart"
for mode in fuse kernel; do
	lazy_mount "$IMG" "$MNT" "$BLOBS" "$mode" --cache "$CACHE"
	compare_trees "$SRC" "$MNT"
	lazy_snap "$MNT"
	log "  $mode: $S_bytes_fetched bytes fetched, $S_chunk_hits chunk hits, $S_cache_refetches refetches"
	assert_eq "$S_bytes_fetched" 0 "bytes fetched reading everything from a warm cache ($mode)"
	assert_eq "$S_fetch_requests" 0 "fetch requests with a warm cache ($mode)"
	assert_eq "$S_cache_refetches" 0 "cache refetches ($mode)"
	assert_ge "$S_chunk_hits" 1 "chunk hits ($mode)"
	lazy_umount "$MNT"
done

log "kernel mode reads a complete cache directly; --no-direct goes through FUSE"
lazy_mount "$IMG" "$MNT" "$BLOBS" kernel --cache "$CACHE"
lazy_snap "$MNT"
assert_eq "$S_direct_blobs" 1 "blobs read directly from a complete cache"
compare_trees "$SRC" "$MNT"
lazy_snap "$MNT"
assert_eq "$S_reads" 0 "FUSE reads when the kernel reads the cache directly"
assert_eq "$S_bytes_fetched" 0 "bytes fetched (direct)"
lazy_umount "$MNT"
lazy_mount "$IMG" "$MNT" "$BLOBS" kernel --cache "$CACHE" --no-direct
compare_trees "$SRC" "$MNT"
lazy_snap "$MNT"
assert_eq "$S_direct_blobs" 0 "blobs read directly with --no-direct"
assert_ge "$S_reads" 1 "FUSE reads with --no-direct"
lazy_umount "$MNT"

log "gc evicts an unused blob"
"$ANOLE" image cache gc --cache "$CACHE" --max-size 0 --json >"$WORK/gc.json" || fail "cache gc"
assert_eq "$(json_get "$WORK/gc.json" evicted)" 1 "blobs evicted"
assert_ge "$(json_get "$WORK/gc.json" freed_bytes)" 1 "bytes freed"
cache_ls "$CACHE"
assert_eq "$(ls_field 'len(v)')" 0 "cached blobs after gc"
assert_missing "$CACHE/$BLOB"
# and a mount afterwards fetches again, correctly
lazy_mount "$IMG" "$MNT" "$BLOBS" kernel --cache "$CACHE"
lazy_read "$SRC" "$MNT" lazy/f02
assert_ge "$(lazy_stat "$MNT" bytes_fetched)" 1 "bytes fetched after the cache was evicted"
lazy_umount "$MNT"
[ ${#DEFERRED[@]} -eq 0 ] || fail "${#DEFERRED[@]} deferred failure(s): ${DEFERRED[*]}"
log "ok"
