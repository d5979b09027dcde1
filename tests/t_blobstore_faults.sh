#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole blob` under faults injected by tests/httpd_fault.py: 503 twice is
# retried and read right; 503 forever fails with exit 1 after exactly
# retries+1 attempts and a message naming the URL and the status; 429 waits
# for Retry-After; truncated bodies are retried (ranges and whole blobs);
# a corrupted body fails the digest check of a whole read and writes
# nothing; a stall is cut off by --timeout and retried; dropped connections
# are retried; a refused connection gives up with curl's reason; a fault on
# the token endpoint of a registry is retried too.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
need_anole
need_cmd curl

A=$ANOLE
err=$ERR
mkdir -p "$WORK/srv"
size=2097157
f=$WORK/blob
d=$(make_blob "$f" $size)
cp "$f" "$WORK/srv/${d#sha256:}"
start_fault_server "$WORK/srv" --registry --token-auth
S=$FS_URL/blobs
URL=$S/${d#sha256:}
P=/blobs/${d#sha256:}
gets() { fs_stat 'd["paths"].get("'"$P"'", {}).get("methods", {}).get("GET", 0)'; }
reqs() { fs_stat 'd["paths"].get("'"$P"'", {}).get("count", 0)'; }
now_ms() { date +%s%3N; }

log "503 twice: retried"
reset_stats
fault '{"mode": "status", "code": 503, "count": 2}'
"$A" blob cat "$S" "$d" -o "$WORK/out" -v 2>"$err" || { cat "$err"; fail "cat with 503 x2"; }
same_bytes "$f" "$WORK/out" "blob read through 503 x2"
assert_eq "$(fs_stat 'd["paths"]["'"$P"'"]["status"]["503"]')" 2 "503 answers"
assert_grep "retrying" "$err"
reset_stats
fault '{"mode": "status", "code": 502, "count": 2, "method": "GET"}'
expect_range "$f" 1000 5000 "$S" "$d"
assert_eq "$(gets)" 3 "GETs for a range through 502 x2"

log "503 forever: exit 1, the URL and the status in the message"
reset_stats
fault '{"mode": "status", "code": 503, "count": 100}'
# the bound on giving up is derived, not taken from a quiet run: one attempt
# (process start included) timed now, at this machine's load, four times,
# plus the backoff doubled (jitter) and a second for the load changing
t0=$(now_ms)
rc_err 1 "$A" blob cat "$S" "$d" --retries 0 -o "$WORK/out2"
one=$(( $(now_ms) - t0 ))
reset_stats
fault '{"mode": "status", "code": 503, "count": 100}'
t0=$(now_ms)
rc_err 1 "$A" blob cat "$S" "$d" --retries 3 --backoff 20 -o "$WORK/out2"
assert_grep "$URL" "$err"
assert_grep "503 Service Unavailable" "$err"
assert_grep "gave up after 4 attempts" "$err"
assert_eq "$(reqs)" 4 "attempts with --retries 3"
assert_missing "$WORK/out2"
assert_le $(( $(now_ms) - t0 )) $(( 4 * one + 2 * (20 + 40 + 80) + 1000 )) \
	"ms to give up (4 attempts of $one ms, 20+40+80 ms of backoff)"
reset_stats
fault '{"mode": "status", "code": 500, "count": 100}'
rc_err 1 "$A" blob cat "$S" "$d" --offset 7 --length 9 --retries 0
assert_grep "HTTP 500" "$err"
assert_eq "$(reqs)" 1 "attempts with --retries 0"
reset_stats

log "429 with Retry-After"
fault '{"mode": "status", "code": 429, "retry_after": 1, "count": 1}'
t0=$(now_ms)
expect_range "$f" 0 100 "$S" "$d" --backoff 10
assert_ge $(( $(now_ms) - t0 )) 1000 "ms waited for Retry-After: 1"

log "truncated bodies: retried"
reset_stats
fault '{"mode": "truncate", "count": 2}'
expect_range "$f" 100000 1000000 "$S" "$d"
assert_eq "$(gets)" 3 "GETs for a range truncated twice"
assert_eq "$(fs_stat 'd["faults_fired"]["truncate"]')" 2 "truncations"
reset_stats
fault '{"mode": "truncate", "count": 2, "bytes": 0}'
"$A" blob cat "$S" "$d" -o "$WORK/out" || fail "whole cat with truncation"
same_bytes "$f" "$WORK/out" "whole blob read through truncations"
reset_stats
fault '{"mode": "truncate", "count": 100}'
rc_err 1 "$A" blob cat "$S" "$d" --length 4096 --retries 2 --backoff 10 >/dev/null
assert_grep "$URL" "$err"
assert_grep "curl error 18" "$err"

log "corrupted body: a whole read fails the digest check, nothing written"
reset_stats
fault '{"mode": "corrupt", "count": 1}'
rc_err 1 "$A" blob cat "$S" "$d" -o "$WORK/bad"
assert_grep "digest mismatch" "$err"
assert_missing "$WORK/bad"
fault '{"mode": "corrupt", "count": 1, "at": 12345}'
rc_err 1 "$A" blob cat "$S" "$d" --chunk-size 512K >"$WORK/bad.stdout"
assert_grep "digest mismatch" "$err"
assert_eq "$(file_size "$WORK/bad.stdout")" 0 "bytes on stdout from a corrupted read"
fault '{"mode": "corrupt", "count": 1}'
rc_err 1 "$A" blob cat "docker://127.0.0.1:$FS_PORT/test/repo" "$d" >"$WORK/bad.stdout"
assert_grep "digest mismatch" "$err"
assert_eq "$(file_size "$WORK/bad.stdout")" 0 "bytes on stdout from a corrupted registry read"

log "stall: cut off by --timeout, then retried"
reset_stats
fault '{"mode": "stall", "seconds": 30, "count": 1}'
t0=$(now_ms)
"$A" blob cat "$S" "$d" --timeout 2000 -o "$WORK/out" -v 2>"$err" || { cat "$err"; fail "cat with a stall"; }
t=$(( $(now_ms) - t0 ))
same_bytes "$f" "$WORK/out" "blob read after a stall"
assert_grep "timed out" "$err"
assert_ge "$t" 1900 "ms before the stalled request was abandoned"
assert_le "$t" 8000 "ms for a read with one stall and --timeout 2000"
fault '{"mode": "stall", "seconds": 30, "after": 1000, "count": 1}'
t0=$(now_ms)
expect_range "$f" 0 500000 "$S" "$d" --timeout 1500
assert_le $(( $(now_ms) - t0 )) 8000 "ms for a range with a stall mid-body"
fault '{"mode": "stall", "seconds": 30, "count": -1}'
t0=$(now_ms)
rc_err 1 "$A" blob cat "$S" "$d" --length 10 --timeout 1000 --retries 1 --backoff 10 >/dev/null
assert_grep "$URL" "$err"
assert_grep "timed out" "$err"
assert_le $(( $(now_ms) - t0 )) 6000 "ms to give up on a server that never answers"
fault '{"mode": "none"}'

log "dropped connections: retried"
reset_stats
fault '{"mode": "drop", "count": 2}'
expect_range "$f" $((size - 1)) 1 "$S" "$d"
"$A" blob size "$S" "$d" >"$WORK/size" || fail "size after drops"
assert_eq "$(cat "$WORK/size")" $size "size"
fault '{"mode": "drop", "count": 100}'
rc_err 1 "$A" blob size "$S" "$d" --retries 1 --backoff 10
assert_grep "$URL" "$err"
assert_grep "Empty reply" "$err"
fault '{"mode": "none"}'

log "a refused connection"
port=$(free_port)
t0=$(now_ms)
rc_err 1 "$A" blob size "http://127.0.0.1:$port/blobs" "$d" --retries 0
one=$(( $(now_ms) - t0 ))
t0=$(now_ms)
rc_err 1 "$A" blob size "http://127.0.0.1:$port/blobs" "$d" --retries 2 --backoff 10
assert_grep "127.0.0.1:$port" "$err"
assert_grep "gave up after 3 attempts" "$err"
assert_le $(( $(now_ms) - t0 )) $(( 3 * one + 2 * (10 + 20) + 1000 )) \
	"ms to give up on a closed port (3 attempts of $one ms, 10+20 ms of backoff)"

log "faults on a registry and its token endpoint"
reset_stats
fault '{"mode": "status", "code": 503, "count": 1, "path": "/token"}'
fault '{"mode": "status", "code": 503, "count": 1, "path": "/v2/"}'
"$A" blob cat "docker://127.0.0.1:$FS_PORT/test/repo" "$d" -o "$WORK/out" ||
	fail "registry cat with faults"
same_bytes "$f" "$WORK/out" "registry read through 503s"
assert_eq "$(fs_stat 'd["faults_fired"]["status"]')" 2 "faults fired"
reset_stats
fault '{"mode": "truncate", "count": 1}'
fault '{"mode": "drop", "count": 1, "path": "/v2/"}'
expect_range "$f" 4096 65536 "docker://127.0.0.1:$FS_PORT/test/repo" "$d"

log "parallel range requests through faults (one store, 8 threads)"
reset_stats
fault '{"mode": "status", "code": 503, "count": 3, "method": "GET"}'
fault '{"mode": "truncate", "count": 3}'
fault '{"mode": "drop", "count": 2, "method": "GET"}'
"$A" blob cat "$S" "$d" --jobs 8 --chunk-size 64K -o "$WORK/out" || fail "parallel cat"
same_bytes "$f" "$WORK/out" "blob read by 8 threads through faults"
assert_eq "$(fs_stat 'sum(d["faults_fired"].values())')" 8 "faults fired"
assert_eq "$(gets)" $(( (size + 65535) / 65536 + 8 )) "GETs: one per chunk plus one per fault"
reset_stats
fault '{"mode": "truncate", "count": 2}'
"$A" blob cat "docker://127.0.0.1:$FS_PORT/test/repo" "$d" --jobs 8 --chunk-size 100000 \
	--offset 3 --length $((size - 4)) >"$WORK/out" || fail "parallel registry cat"
tail -c +4 "$f" | head -c $((size - 4)) | cmp -s - "$WORK/out" || fail "parallel registry range"
fault '{"mode": "corrupt", "count": 1}'
rc_err 1 "$A" blob cat "docker://127.0.0.1:$FS_PORT/test/repo" "$d" --jobs 4 \
	--chunk-size 256K >"$WORK/bad.stdout"
assert_grep "digest mismatch" "$err"
assert_eq "$(file_size "$WORK/bad.stdout")" 0 "stdout bytes from a corrupted parallel read"
log "pass"
