#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Concurrent readers of lazy mounts (http:// store, tests/httpd_fault.py):
# - 16 threads read random ranges of random files of a cold-cache kernel-mode
#   mount and of a FUSE-mode mount, with lstat and readdir in parallel; every
#   byte is compared with the source; no chunk is fetched twice (one fetch
#   for concurrent readers of a chunk), nothing fails verification;
# - a tiny rootfs (dash and its libraries) mounted lazily with a large
#   --prefetch list: `chroot MNT /bin/sh -c ...` runs while the prefetch is
#   still going (in both modes), and the prefetch then completes.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
need_cmd curl chroot ldd
[ -e /dev/fuse ] || skip "no /dev/fuse"

make_srcfs "$WORK/srcfs" 1g
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 45 --small --parts standard
"$PY" "$LAZY_CHECK" make-files "$SRC/lazy" 8 --seed 45 --min 100000 --max 2000000 || fail "make-files"
BLOBS=$WORK/blobs IMG=$WORK/meta.img MNT=$WORK/mnt
mkdir -p "$BLOBS"
"$ANOLE" image build -q "$SRC" -o "$IMG" --blob-dir "$BLOBS" --chunk-size 64K --json >"$WORK/build.json" ||
	fail "image build"
BLOB=$(json_get "$WORK/build.json" blob_digest); BLOB=${BLOB#sha256:}
BLOB_SIZE=$(wc -c <"$BLOBS/$BLOB")
start_fault_server "$BLOBS"

for mode in kernel fuse; do
	log "mode $mode: 16 threads on a cold cache"
	lazy_mount "$IMG" "$MNT" "$FS_URL/blobs" "$mode" --cache "$WORK/cache-$mode"
	"$PY" "$LAZY_CHECK" stress "$SRC" "$MNT" --threads 16 --seconds 8 --seed 45 ||
		fail "concurrent readers saw differences ($mode)"
	lazy_snap "$MNT"
	log "  $S_chunks_present of $S_chunks chunks present, $S_chunks_fetched fetched in $S_fetch_requests requests, $S_bytes_fetched bytes; hits $S_chunk_hits, misses $S_chunk_misses"
	assert_eq "$S_fetch_errors" 0 "fetch errors ($mode)"
	assert_eq "$S_verify_failures" 0 "verify failures ($mode)"
	assert_eq "$S_chunks_fetched" "$S_chunks_present" "chunks fetched = chunks present: none fetched twice ($mode)"
	assert_le "$S_bytes_fetched" "$BLOB_SIZE" "bytes fetched ($mode)"
	assert_ge "$S_chunks_present" 1 "chunks present ($mode)"
	lazy_check_daemon_log "$MNT"
	lazy_umount "$MNT"
done

# ---------------------------------------------------------------- chroot
ROOT=$WORK/srcfs/rootfs
mkdir -p "$ROOT/bin" "$ROOT/etc" "$ROOT/tmp" "$ROOT/data"
cp -L /usr/bin/dash "$ROOT/bin/sh"
# shellcheck disable=SC2046
for lib in $(ldd /usr/bin/dash | grep -oE '/[^ ]+'); do
	mkdir -p "$ROOT$(dirname "$lib")"
	cp -L "$lib" "$ROOT$lib"
done
echo "root:x:0:0:root:/:/bin/sh" >"$ROOT/etc/passwd"
echo "lazy" >"$ROOT/etc/hostname"
# a prefetch list far larger than what the shell needs: 200 files of one
# chunk of random bytes each (a request each, however requests are
# coalesced), then the shell, its libraries and /etc
"$PY" "$LAZY_CHECK" make-files "$ROOT/data" 200 --seed 46 --min 65536 --max 65536 || fail "make-files"
(cd "$ROOT" && find data -type f | sort && find bin etc lib* -type f | sort) >"$WORK/prefetch.list"
RIMG=$WORK/rootfs.img RBLOBS=$WORK/rblobs
mkdir -p "$RBLOBS"
"$ANOLE" image build -q "$ROOT" -o "$RIMG" --blob-dir "$RBLOBS" --chunk-size 64K --json >"$WORK/rbuild.json" ||
	fail "rootfs image build"
start_fault_server "$RBLOBS"
# a slow network: every blob request waits 15 ms before its answer, so the
# prefetch takes seconds while the shell needs only a few requests
fault '{"mode": "stall", "seconds": 0.015, "count": -1, "path": "/blobs/"}'
nfiles=$(wc -l <"$WORK/prefetch.list")
for mode in kernel fuse; do
	log "mode $mode: chroot into a lazy rootfs while $nfiles files are prefetched"
	lazy_mount "$RIMG" "$MNT" "$FS_URL/blobs" "$mode" --cache "$WORK/rcache-$mode" --prefetch "$WORK/prefetch.list"
	t0=$(date +%s.%N)
	out=$(timeout 30 chroot "$MNT" /bin/sh -c 'echo hello-from-lazy; read h </etc/hostname; echo "$h"') ||
		fail "chroot $MNT /bin/sh failed ($mode)"
	lazy_snap "$MNT"
	t1=$(date +%s.%N)
	log "  chroot done in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')s; prefetch_done=$S_prefetch_done, $S_prefetched_files files prefetched so far"
	assert_eq "$out" "hello-from-lazy
lazy" "output of the shell in the lazy rootfs ($mode)"
	assert_eq "$S_prefetch_done" false "prefetch still running when the chroot finished ($mode)"
	assert_le "$S_prefetched_files" $((nfiles - 1)) "files prefetched when the chroot finished ($mode)"
	wait_prefetch "$MNT" 40
	lazy_snap "$MNT"
	log "  prefetch done: $S_prefetched_files files, $S_chunks_present of $S_chunks chunks"
	assert_eq "$S_prefetched_files" "$nfiles" "files prefetched ($mode)"
	assert_eq "$S_chunks_present" "$S_chunks" "every chunk present after the prefetch ($mode)"
	assert_eq "$S_verify_failures" 0 "verify failures ($mode)"
	compare_trees "$ROOT" "$MNT"
	lazy_umount "$MNT"
done
log "ok"
