#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Lazy mounts over the http:// blob store (tests/httpd_fault.py on 127.0.0.1),
# in kernel and FUSE mode:
# - the tree equals the source; reading one file fetches less than the blob;
# - faults injected while files are read never yield wrong bytes:
#   503 x2, a truncated body, a dropped connection, a stalled answer (before
#   and in the body, --timeout 2000) are retried and the data is right; a
#   corrupted body is caught by the digest and fetched again;
# - a persistent 503 (or persistent corruption) gives EIO to the readers of
#   missing chunks while the same daemon keeps serving cached files; once the
#   faults stop, the same files read correctly;
# - umount leaves no mount and no daemon.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
need_cmd curl
[ -e /dev/fuse ] || skip "no /dev/fuse"

make_srcfs "$WORK/srcfs" 512m
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 43 --small --parts standard
# files of distinct random bytes: each one's chunks are fetched only for it
"$PY" "$LAZY_CHECK" make-files "$SRC/lazy" 12 --seed 43 || fail "make-files"
BLOBS=$WORK/blobs IMG=$WORK/meta.img MNT=$WORK/mnt
mkdir -p "$BLOBS"
"$ANOLE" image build -q "$SRC" -o "$IMG" --blob-dir "$BLOBS" --chunk-size 64K --json >"$WORK/build.json" ||
	fail "image build"
BLOB=$(json_get "$WORK/build.json" blob_digest); BLOB=${BLOB#sha256:}
BLOB_SIZE=$(wc -c <"$BLOBS/$BLOB")
log "blob $BLOB: $BLOB_SIZE bytes"

start_fault_server "$BLOBS"
STORE="$FS_URL/blobs"
F=()
for i in $(seq 0 11); do F+=("lazy/$(printf 'f%02d' "$i")"); done

# fired_total: faults fired so far, all modes together
fired_total() { fs_stat "sum(d['faults_fired'].values())"; }
# faulty_read NAME FAULT_JSON FILE: queue the fault, read FILE (must be
# right, no EIO), then clear the fault. Sets FIRED (faults fired meanwhile),
# RETRIES (anole's http retries), VERIFY (verify failures). Relies on S_*
# and FIRED_TOTAL holding the values after the previous read.
faulty_read() {
	local name=$1 json=$2 file=$3 f0=$FIRED_TOTAL r0=$S_http_retries v0=$S_verify_failures t0 t1
	fault "$json"
	t0=$(date +%s.%N)
	lazy_read "$SRC" "$MNT" "$file"
	t1=$(date +%s.%N)
	fault '{"mode": "none"}'
	FIRED_TOTAL=$(fired_total)
	lazy_snap "$MNT"
	FIRED=$((FIRED_TOTAL - f0)) RETRIES=$((S_http_retries - r0)) VERIFY=$((S_verify_failures - v0))
	log "  $name: $file read right in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')s; fired $FIRED, http retries +$RETRIES, verify failures +$VERIFY"
	assert_ge "$FIRED" 1 "$name fault fired ($mode)"
}

for mode in kernel fuse; do
	CACHE=$WORK/cache-$mode
	reset_stats
	log "mode $mode: transient faults (cold cache, --timeout 2000)"
	lazy_mount "$IMG" "$MNT" "$STORE" "$mode" --cache "$CACHE" --timeout 2000
	assert_eq "$(lazy_stat "$MNT" bytes_fetched)" 0 "bytes fetched before any read ($mode)"
	lazy_read "$SRC" "$MNT" "${F[0]}"
	lazy_snap "$MNT"; got=$S_bytes_fetched
	FIRED_TOTAL=$(fired_total)
	log "  one file of $(wc -c <"$SRC/${F[0]}") bytes: $got bytes fetched of $BLOB_SIZE"
	assert_ge "$got" 1 "bytes fetched by one read ($mode)"
	[ "$got" -lt $((BLOB_SIZE / 2)) ] || fail "reading one file fetched $got of $BLOB_SIZE bytes ($mode)"
	sent=$(fs_stat "d['bytes_sent']")
	[ "$sent" = "$got" ] || log "  unequal: anole $(cat "$WORK/.snap.json"); server $(cat "$WORK/.stats.json")"
	assert_eq "$sent" "$got" "bytes the server sent = bytes_fetched ($mode)"

	faulty_read "503 x2" "{\"mode\": \"status\", \"code\": 503, \"count\": 2, \"path\": \"$BLOB\"}" "${F[1]}"
	assert_eq "$FIRED" 2 "503s served ($mode)"
	assert_ge "$RETRIES" 2 "http retries after two 503s ($mode)"
	faulty_read "corrupt x1" "{\"mode\": \"corrupt\", \"count\": 1, \"path\": \"$BLOB\"}" "${F[2]}"
	assert_ge "$VERIFY" 1 "verify failures after a corrupted body ($mode)"
	faulty_read "truncate x1" "{\"mode\": \"truncate\", \"count\": 1, \"path\": \"$BLOB\"}" "${F[3]}"
	assert_ge "$RETRIES" 1 "http retries after a truncated body ($mode)"
	# (curl itself resends a request whose reused connection was closed
	# without an answer: a drop need not show as an anole retry)
	faulty_read "drop x2" "{\"mode\": \"drop\", \"count\": 2, \"path\": \"$BLOB\"}" "${F[4]}"
	assert_eq "$FIRED" 2 "connections dropped ($mode)"
	faulty_read "stall 5s" "{\"mode\": \"stall\", \"seconds\": 5, \"count\": 1, \"path\": \"$BLOB\"}" "${F[5]}"
	assert_ge "$RETRIES" 1 "http retries after a stall ($mode)"
	faulty_read "stall in body" "{\"mode\": \"stall\", \"after\": 1000, \"seconds\": 5, \"count\": 1, \"path\": \"$BLOB\"}" "${F[6]}"
	assert_ge "$RETRIES" 1 "http retries after a stall in the body ($mode)"
	assert_eq "$(fs_stat "d['faults_pending']")" 0 "faults left queued ($mode)"
	lazy_umount "$MNT"

	log "mode $mode: persistent faults (same cache, new daemon, --retries 1)"
	lazy_mount "$IMG" "$MNT" "$STORE" "$mode" --cache "$CACHE" --timeout 2000 --retries 1
	pid=$LAZY_PID
	fault "{\"mode\": \"status\", \"code\": 503, \"count\": -1, \"path\": \"$BLOB\"}"
	lazy_snap "$MNT"; e0=$S_fetch_errors
	lazy_read --expect-eio "$SRC" "$MNT" "${F[7]}" "${F[8]}"
	lazy_snap "$MNT"
	log "  persistent 503: EIO; fetch errors +$((S_fetch_errors - e0)), http retries $S_http_retries"
	assert_ge "$((S_fetch_errors - e0))" 1 "fetch errors under a persistent 503 ($mode)"
	fault '{"mode": "none"}'
	fault "{\"mode\": \"corrupt\", \"count\": -1, \"path\": \"$BLOB\"}"
	v0=$S_verify_failures
	lazy_read --expect-eio "$SRC" "$MNT" "${F[9]}"
	lazy_snap "$MNT"
	log "  persistent corruption: EIO; verify failures +$((S_verify_failures - v0))"
	assert_ge "$((S_verify_failures - v0))" 1 "verify failures under persistent corruption ($mode)"
	# the same daemon still serves what the cache holds, fetching nothing
	fault '{"mode": "none"}'
	fault "{\"mode\": \"status\", \"code\": 503, \"count\": -1, \"path\": \"$BLOB\"}"
	pid_alive "$pid" || fail "the daemon died after the EIOs ($mode)"
	b0=$S_bytes_fetched r0=$S_reads
	lazy_read "$SRC" "$MNT" "${F[@]:0:7}"
	lazy_snap "$MNT"
	log "  cached files under a 503: read right by the daemon ($((S_reads - r0)) reads)"
	assert_eq "$((S_bytes_fetched - b0))" 0 "bytes fetched reading cached files under a 503 ($mode)"
	assert_ge "$((S_reads - r0))" 7 "reads served by the daemon from its cache ($mode)"
	# faults stop: everything reads right again, in the same mount
	fault '{"mode": "none"}'
	lazy_read "$SRC" "$MNT" "${F[7]}" "${F[8]}" "${F[9]}"
	log "  faults stopped: the files that gave EIO read right"
	compare_trees "$SRC" "$MNT"
	lazy_snap "$MNT"
	assert_eq "$S_chunks_present" "$S_chunks" "every chunk present after a full read ($mode)"
	lazy_umount "$MNT"
done
log "ok"
