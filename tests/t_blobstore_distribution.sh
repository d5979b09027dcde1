#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole blob` against Debian's docker-registry (the CNCF distribution
# registry) on 127.0.0.1, filesystem storage in $WORK, no auth: push (a
# monolithic upload), a second push skipped, curl's HEAD confirms the stored
# blob, size, whole and ranged cat equal the file, an empty blob, 404s.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
need_anole
need_cmd docker-registry curl

A=$ANOLE
err=$ERR
port=$(free_port)
mkdir -p "$WORK/in"
start_registry registry "$port"
log "docker-registry on 127.0.0.1:$port"
R=docker://127.0.0.1:$port/test/repo

size=3145733
f=$WORK/in/blob
d=$(make_blob "$f" $size)

log "push"
assert_eq "$("$A" blob push "$R" "$f")" "$d" "digest printed by push"
"$A" blob push "$R" "$f" --json >"$WORK/push.json"
assert_eq "$(json_get "$WORK/push.json" uploaded)" false "second push skipped"
curl -sfI "http://127.0.0.1:$port/v2/test/repo/blobs/$d" | tr -d '\r' >"$WORK/head"
assert_grep "^HTTP/1.1 200" "$WORK/head"
assert_grep "^Content-Length: $size\$" "$WORK/head"
assert_grep "^Docker-Content-Digest: $d\$" "$WORK/head"
assert_exists "$WORK/registry/docker/registry/v2/blobs/sha256/${d:7:2}/${d#sha256:}/data"
cmp -s "$f" "$WORK/registry/docker/registry/v2/blobs/sha256/${d:7:2}/${d#sha256:}/data" ||
	fail "the registry stored other bytes"

log "size and cat"
assert_eq "$("$A" blob size "$R" "$d")" $size "size"
"$A" blob cat "$R" "$d" -o "$WORK/out" || fail "cat of the whole blob"
same_bytes "$f" "$WORK/out" "whole blob"
"$A" blob cat "$R" "$d" --chunk-size 1M | cmp -s - "$f" || fail "cat to stdout by 1M ranges"
for r in "0 1" "1 1" "$((size - 1)) 1" "$((size - 65536)) 65536" "1048575 1048578" "$size 0" \
	"0 $size"; do
	# shellcheck disable=SC2086
	expect_range "$f" $r "$R" "$d"
done
rc_err 1 "$A" blob cat "$R" "$d" --offset $((size - 1)) --length 2 >/dev/null
assert_grep "beyond the end" "$err"

log "empty blob, missing blobs, other repositories"
e=$(make_blob "$WORK/in/empty" 0)
assert_eq "$("$A" blob push "$R" "$WORK/in/empty")" "$e" "push of an empty blob"
assert_eq "$("$A" blob size "$R" "$e")" 0 "size of the empty blob"
"$A" blob cat "$R" "$e" >"$WORK/out" && [ ! -s "$WORK/out" ] || fail "cat of the empty blob"
missing=sha256:$(printf '%064d' 5)
rc_err 1 "$A" blob size "$R" "$missing"
assert_grep "not found" "$err"
rc_err 1 "$A" blob cat "$R" "$missing" --length 1
assert_grep "BLOB_UNKNOWN" "$err"
# a blob is visible only in the repositories it was pushed to (or mounted in)
rc_err 1 "$A" blob size "docker://127.0.0.1:$port/other/repo" "$d"
assert_grep "not found" "$err"
"$A" blob push "docker://127.0.0.1:$port/other/repo" "$f" >/dev/null
assert_eq "$("$A" blob size "docker://127.0.0.1:$port/other/repo" "$d")" $size "size in a second repo"
log "pass"
