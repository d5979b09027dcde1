#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole blob` on a plain HTTP store (tests/httpd_fault.py serving DIR/<hex>
# under /blobs): sizes by HEAD, range reads equal to dd at many offsets and
# lengths (first and last byte, 0-length reads, whole blob), reads past the
# end refused, one connection reused for many range requests, a server that
# ignores Range (200) and a redirect still give the right bytes, 404 is not
# retried, and the store is read-only; https to a plain-HTTP server (or
# registry) fails at once with a message naming the fix.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
need_anole
need_cmd curl

A=$ANOLE
err=$ERR
mkdir -p "$WORK/srv"
size=1048583
f=$WORK/big
d=$(make_blob "$f" $size)
cp "$f" "$WORK/srv/${d#sha256:}"
one=$(make_blob "$WORK/one" 1)
cp "$WORK/one" "$WORK/srv/${one#sha256:}"
zero=$(make_blob "$WORK/zero" 0)
cp "$WORK/zero" "$WORK/srv/${zero#sha256:}"

start_fault_server "$WORK/srv"
S=$FS_URL/blobs/

log "size"
assert_eq "$("$A" blob size "$S" "$d")" $size "size of the big blob"
assert_eq "$("$A" blob size "$S" "$one")" 1 "size of the 1 byte blob"
assert_eq "$("$A" blob size "$S" "$zero")" 0 "size of the empty blob"
assert_eq "$(fs_stat 'd["paths"]["/blobs/'"${d#sha256:}"'"]["methods"]')" "{'HEAD': 1}" \
	"size is one HEAD"

log "ranges equal dd"
for r in "0 1" "0 4096" "1 4095" "4095 2" "$((size - 1)) 1" "$((size - 4096)) 4096" \
	"524288 300000" "0 $size" "$size 0" "0 0" "12345 0" "1048575 8"; do
	# shellcheck disable=SC2086
	expect_range "$f" $r "$S" "$d"
done
expect_range "$WORK/one" 0 1 "$S" "$one"
"$A" blob cat "$S" "$one" | cmp -s - "$WORK/one" || fail "cat of the 1 byte blob"
"$A" blob cat "$S" "$zero" >"$WORK/out" || fail "cat of the empty blob"
assert_eq "$(file_size "$WORK/out")" 0 "bytes of the empty blob"
"$A" blob cat "$S" "$d" >"$WORK/out" || fail "cat of the big blob"
same_bytes "$f" "$WORK/out" "whole big blob"
"$A" blob cat "$S" "$d" --offset $((size - 10)) >"$WORK/out"
tail -c 10 "$f" | cmp -s - "$WORK/out" || fail "--offset without --length: the tail"

log "past the end"
rc_err 1 "$A" blob cat "$S" "$d" --offset $((size - 1)) --length 2 -o "$WORK/x"
assert_grep "beyond the end" "$err"
assert_missing "$WORK/x"
rc_err 1 "$A" blob cat "$S" "$d" --offset $((size + 1))
assert_grep "beyond the end" "$err"
rc_err 1 "$A" blob cat "$S" "$d" --offset $((size + 5)) --length 1
assert_grep "416" "$err"

log "one connection for many range requests"
reset_stats
"$A" blob cat "$S" "$d" --chunk-size 64K -o "$WORK/out" || fail "cat with 64K requests"
same_bytes "$f" "$WORK/out" "blob read by 64K ranges"
gets=$(fs_stat 'd["paths"]["/blobs/'"${d#sha256:}"'"]["methods"]["GET"]')
assert_eq "$gets" $(( (size + 65535) / 65536 )) "GET requests for 64K chunks"
assert_eq "$(fs_stat 'd["connections"]')" 1 "connections for $gets range requests and a HEAD"
assert_eq "$(fs_stat 'd["paths"]["/blobs/'"${d#sha256:}"'"]["ranges"][1]')" "bytes=65536-131071" \
	"second Range header"

log "a server that ignores Range"
fault '{"mode": "ignore_range", "count": 3}'
expect_range "$f" 700000 5000 "$S" "$d"
expect_range "$f" $((size - 1)) 1 "$S" "$d"
expect_range "$f" 0 3 "$S" "$d"
assert_eq "$(fs_stat 'd["faults_fired"].get("ignore_range", 0)')" 3 "200 answers given"

log "redirects"
reset_stats
fault '{"mode": "redirect", "count": 2}'
expect_range "$f" 1000 1000 "$S" "$d"
"$A" blob size "$S" "$d" >"$WORK/out"
assert_eq "$(cat "$WORK/out")" $size "size through a redirect"
assert_eq "$(fs_stat 'd["paths"]["/_redirect/blobs/'"${d#sha256:}"'"]["count"]')" 2 \
	"requests to the redirect target"

log "404 is not retried"
reset_stats
missing=sha256:$(printf '%064d' 7)
rc_err 1 "$A" blob cat "$S" "$missing"
assert_grep "not found" "$err"
assert_grep "404" "$err"
assert_eq "$(fs_stat 'd["requests"]')" 1 "requests for a missing blob"
rc_err 1 "$A" blob cat "$S" "$missing" --offset 0 --length 10
assert_grep "not found" "$err"

log "http stores are read-only"
rc_err 1 "$A" blob push "$S" "$WORK/one"
assert_grep "read-only" "$err"

log "https to a plain-HTTP server: one attempt, and the message names the fix"
rc_err 1 "$A" blob size "https://127.0.0.1:$FS_PORT/blobs" "$d" -v --backoff 3000
assert_grep "127.0.0.1:$FS_PORT speaks plain HTTP, not TLS: .*http:// URL" "$err"
assert_no_grep "retrying" "$err"
assert_grep " 0 retries" "$err"
# A registry at a non-loopback address is spoken to over https unless named
# with --insecure-registry: in a network namespace of its own, with
# 192.0.2.1 (TEST-NET-1) on its loopback device and a plain-HTTP server there.
if unshare -n true 2>/dev/null; then
	log "docker:// to a plain-HTTP registry: one attempt, --insecure-registry named"
	# shellcheck disable=SC2016
	unshare -n bash -c 'ip link set lo up && ip addr add 192.0.2.1/32 dev lo || exit 3
		"$1" -m http.server 5000 --bind 192.0.2.1 >/dev/null 2>&1 &
		srv=$!
		for _ in $(seq 100); do curl -s -o /dev/null http://192.0.2.1:5000/ && break; sleep 0.05; done
		"$2" blob size docker://192.0.2.1:5000/team/app "$3" -v --backoff 3000 2>"$4"
		echo "$?" >"$4.rc"
		"$2" blob size docker://192.0.2.1:5000/team/app "$3" --insecure-registry 192.0.2.1:5000 \
			2>"$4.insecure"
		kill "$srv"' _ "$PY" "$A" "$d" "$WORK/plain-registry.err" || fail "network namespace set-up"
	assert_eq "$(cat "$WORK/plain-registry.err.rc")" 1 "exit status against a plain-HTTP registry"
	assert_grep "speaks plain HTTP, not TLS: .*--insecure-registry 192.0.2.1:5000" \
		"$WORK/plain-registry.err"
	assert_no_grep "retrying" "$WORK/plain-registry.err"
	assert_grep " 0 retries" "$WORK/plain-registry.err"
	# named insecure, it is asked over plain HTTP (and has no such blob)
	assert_grep "not found: HEAD http://192.0.2.1:5000/v2/team/app/blobs/" \
		"$WORK/plain-registry.err.insecure"
else
	log "no network namespaces: the registry case is not tested"
fi

if command -v openssl >/dev/null 2>&1; then
	log "https: verified against the system CAs, --ca-file or \$SSL_CERT_FILE"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" \
		-days 2 -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null ||
		fail "openssl req failed"
	start_fault_server "$WORK/srv" --tls-cert "$WORK/cert.pem" --tls-key "$WORK/key.pem"
	T=https://127.0.0.1:$FS_PORT/blobs
	rc_err 1 "$A" blob size "$T" "$d" -v
	assert_grep "certificate" "$err"
	assert_grep "with --ca-file FILE" "$err"
	assert_no_grep "gave up" "$err"
	assert_grep " 0 retries" "$err"
	assert_eq "$(SSL_CERT_FILE=$WORK/cert.pem "$A" blob size "$T" "$d")" $size "size over https"
	reset_stats
	"$A" blob cat "$T" "$d" --ca-file "$WORK/cert.pem" --chunk-size 256K -o "$WORK/out" ||
		fail "cat over https"
	same_bytes "$f" "$WORK/out" "blob read over https"
	assert_eq "$(fs_stat 'd["connections"]')" 1 "TLS connections for 5 range requests and a HEAD"
	fault '{"mode": "truncate", "count": 1}'
	expect_range "$f" 999 100000 "$T" "$d" --ca-file "$WORK/cert.pem"
	rc_err 1 "$A" blob push "$T" "$WORK/one" --ca-file "$WORK/cert.pem"
else
	log "no openssl: https not tested"
fi
log "pass"
