#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# `anole blob` against the OCI registry emulation of tests/httpd_fault.py:
# the Bearer token flow (401 -> token from the realm -> retry), anonymous
# and with Basic credentials from a docker config.json ("auth" = base64
# user:pass, keys "host:port" or "http://host:port"), one token per command
# (cached), wrong or missing credentials refused with a clear message, the
# monolithic upload (HEAD, POST, PUT to the Location with its _state query
# kept), a redirect to another host that must not carry the Authorization
# header, and a registry that wants Basic credentials directly.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
need_anole
need_cmd curl

A=$ANOLE
err=$ERR
# no credentials but the ones given here
export HOME=$WORK/home
mkdir -p "$HOME"
unset REGISTRY_AUTH_FILE DOCKER_CONFIG

mkdir -p "$WORK/srv" "$WORK/in"
size=300007
f=$WORK/in/blob
d=$(make_blob "$f" $size)
cp "$f" "$WORK/srv/${d#sha256:}"
path_of() { echo "/v2/test/repo/blobs/$1"; }

# auth_file FILE KEY USER:PASS
auth_file() {
	printf '{"auths": {"%s": {"auth": "%s"}}, "credsStore": "none"}\n' "$2" \
		"$(printf '%s' "$3" | base64 -w0)" >"$1"
}

log "token realm that wants credentials"
start_fault_server "$WORK/srv" --registry --token-auth --token-user alice:s3cret
R=docker://127.0.0.1:$FS_PORT/test/repo
auth_file "$WORK/auth.json" "127.0.0.1:$FS_PORT" alice:s3cret
auth_file "$WORK/wrong.json" "127.0.0.1:$FS_PORT" alice:wrong
auth_file "$WORK/other.json" "registry.example:5000" alice:s3cret

rc_err 1 "$A" blob size "$R" "$d"
assert_grep "anonymous access denied" "$err"
assert_grep "/token" "$err"
rc_err 1 "$A" blob size "$R" "$d" --auth-file "$WORK/other.json"
assert_grep "anonymous access denied" "$err"
rc_err 1 "$A" blob size "$R" "$d" --auth-file "$WORK/wrong.json"
assert_grep "rejected" "$err"

reset_stats
assert_eq "$("$A" blob size "$R" "$d" --auth-file "$WORK/auth.json")" $size "size with a token"
assert_eq "$(fs_stat 'd["token_requests"]')" 1 "token requests"
assert_eq "$(fs_stat 'd["scopes"][0]')" "repository:test/repo:pull" "scope asked for"

reset_stats
"$A" blob cat "$R" "$d" --auth-file "$WORK/auth.json" --chunk-size 50000 -o "$WORK/out" ||
	fail "cat with a token"
same_bytes "$f" "$WORK/out" "blob read with a token"
assert_eq "$(fs_stat 'd["token_requests"]')" 1 "token requests for a HEAD and 7 GETs (cached)"
p=$(path_of "$d")
assert_eq "$(fs_stat 'd["paths"]["'"$p"'"]["status"]["401"]')" 1 "401 answers"
assert_eq "$(fs_stat 'd["paths"]["'"$p"'"]["auth"]')" 8 "requests that carried the token"
assert_eq "$(fs_stat 'd["connections"]')" 1 "connections"

REGISTRY_AUTH_FILE=$WORK/auth.json "$A" blob size "$R" "$d" >/dev/null ||
	fail "credentials from \$REGISTRY_AUTH_FILE"
mkdir -p "$HOME/.docker"
auth_file "$HOME/.docker/config.json" "http://127.0.0.1:$FS_PORT/v2/" alice:s3cret
"$A" blob size "$R" "$d" >/dev/null || fail "credentials from ~/.docker/config.json (URL key)"
rm -rf "$HOME/.docker"

log "ranges"
for r in "0 1" "$((size - 1)) 1" "1000 70000" "$size 0"; do
	# shellcheck disable=SC2086
	expect_range "$f" $r "$R" "$d" --auth-file "$WORK/auth.json"
done

log "push: monolithic upload keeps the Location's query"
g=$WORK/in/pushed
dg=$(make_blob "$g" 123457)
reset_stats
"$A" blob push "$R" "$g" --auth-file "$WORK/auth.json" --json >"$WORK/push.json" ||
	fail "push to the registry emulation"
assert_eq "$(json_get "$WORK/push.json" digest)" "$dg" "pushed digest"
assert_eq "$(json_get "$WORK/push.json" uploaded)" true "uploaded"
assert_exists "$WORK/srv/${dg#sha256:}"
cmp -s "$g" "$WORK/srv/${dg#sha256:}" || fail "the registry stored other bytes"
q=$(fs_stat 'd["put_queries"][0]')
case "$q" in *_state=*digest=sha256%3A"${dg#sha256:}"*|*_state=*digest=sha256:"${dg#sha256:}"*) ;;
	*) fail "PUT query '$q' lost _state or digest" ;; esac
assert_eq "$(fs_stat '"push" in d["scopes"][0]')" True "push scope asked for"
"$A" blob push "$R" "$g" --auth-file "$WORK/auth.json" --json >"$WORK/push.json"
assert_eq "$(json_get "$WORK/push.json" uploaded)" false "second push skipped"
"$A" blob cat "$R" "$dg" --auth-file "$WORK/auth.json" | cmp -s - "$g" ||
	fail "cat of the pushed blob"
e=$(make_blob "$WORK/in/empty" 0)
assert_eq "$("$A" blob push "$R" "$WORK/in/empty" --auth-file "$WORK/auth.json")" "$e" \
	"push of an empty blob"
assert_eq "$("$A" blob size "$R" "$e" --auth-file "$WORK/auth.json")" 0 "size of the empty blob"

log "a redirect to another host gets no Authorization"
reset_stats
fault '{"mode": "redirect", "host": "localhost", "method": "GET", "count": 1}'
expect_range "$f" 5 100000 "$R" "$d" --auth-file "$WORK/auth.json"
assert_eq "$(fs_stat 'd["paths"]["/_redirect'"$p"'"]["count"]')" 1 "requests to the other host"
assert_eq "$(fs_stat 'd["paths"]["/_redirect'"$p"'"]["auth"]')" 0 \
	"Authorization headers sent to the other host"
assert_eq "$(fs_stat 'd["paths"]["'"$p"'"]["auth"]')" 1 "Authorization to the registry"
reset_stats
fault '{"mode": "redirect", "method": "GET", "count": 1}'
expect_range "$f" 5 100 "$R" "$d" --auth-file "$WORK/auth.json"
assert_eq "$(fs_stat 'd["paths"]["/_redirect'"$p"'"]["auth"]')" 1 \
	"Authorization kept on a same-host redirect"

log "missing blobs"
missing=sha256:$(printf '%064d' 3)
rc_err 1 "$A" blob cat "$R" "$missing" --auth-file "$WORK/auth.json"
assert_grep "not found" "$err"
rc_err 1 "$A" blob cat "$R" "$missing" --length 10 --auth-file "$WORK/auth.json"
assert_grep "not found" "$err"
assert_grep "BLOB_UNKNOWN" "$err"

log "anonymous tokens"
start_fault_server "$WORK/srv" --registry --token-auth
R2=docker://127.0.0.1:$FS_PORT/test/repo
"$A" blob cat "$R2" "$d" | cmp -s - "$f" || fail "cat with an anonymous token"
assert_eq "$(fs_stat 'd["token_requests"]')" 1 "anonymous token requests"
"$A" blob cat "$R2" "$d" --offset 10 --length 10 -o "$WORK/out" || fail "range, anonymous"

log "a registry that wants Basic credentials"
start_fault_server "$WORK/srv" --registry --basic-auth bob:pw
R3=docker://127.0.0.1:$FS_PORT/test/repo
rc_err 1 "$A" blob size "$R3" "$d"
assert_grep "wants credentials" "$err"
auth_file "$WORK/bob.json" "127.0.0.1:$FS_PORT" bob:pw
auth_file "$WORK/bob-wrong.json" "127.0.0.1:$FS_PORT" bob:nope
rc_err 1 "$A" blob size "$R3" "$d" --auth-file "$WORK/bob-wrong.json"
assert_grep "rejected" "$err"
"$A" blob cat "$R3" "$d" --auth-file "$WORK/bob.json" | cmp -s - "$f" || fail "cat with Basic"
"$A" blob push "$R3" "$WORK/in/pushed" --auth-file "$WORK/bob.json" >/dev/null ||
	fail "push with Basic"

log "odd challenges"
for c in 'Bearer realm="http://127.0.0.1:1/tok' 'Bearer service="x",scope="y"' 'Negotiate' \
	'Bearer realm=ftp://x/' 'Bearer ,,,' '' 'Basic'; do
	fault '{"mode": "status", "code": 401, "count": 1, "headers": {"WWW-Authenticate": '"$(printf '%s' "$c" | "$PY" -c 'import json,sys; print(json.dumps(sys.stdin.read()))')"'}}'
	rc_err 1 "$A" blob size "$R3" "$d"
	assert_grep "401" "$err"
done
# several challenges in one header: the Basic one is answered
fault '{"mode": "status", "code": 401, "count": 1, "headers": {"WWW-Authenticate": "Negotiate abc==, Basic realm=\"a, \\\"b\\\"\", charset=\"UTF-8\""}}'
assert_eq "$("$A" blob size "$R3" "$d" --auth-file "$WORK/bob.json")" $size \
	"size after a two-scheme challenge"

log "bad specs"
for s in "docker://127.0.0.1:$FS_PORT" "docker://127.0.0.1:$FS_PORT/" "docker:///repo" \
	"docker://127.0.0.1:$FS_PORT/Upper" "docker://127.0.0.1:$FS_PORT/repo:tag"; do
	rc_err 1 "$A" blob size "$s" "$d"
	assert_grep "blob store" "$err"
done
log "pass"
