#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# needs-features: lz4
# Lazy mounts from OCI registries (docker://):
# - Debian's docker-registry on 127.0.0.1 (filesystem storage in $WORK, no
#   auth): the transport blob pushed with `anole blob push`, mounted in kernel
#   and FUSE mode: the tree equals the source, one read fetches less than
#   the blob;
# - the registry emulation of tests/httpd_fault.py with the Bearer token
#   flow: anonymous tokens (kernel mode, whole tree), and a token realm that
#   wants the credentials of an --auth-file (FUSE mode, a few files);
# - umount leaves no mount and no daemon.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
need_cmd curl
[ -e /dev/fuse ] || skip "no /dev/fuse"
if ! command -v docker-registry >/dev/null 2>&1; then
	# listed in scripts/deps.sh: install it if this machine lacks it
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-registry \
		>"$WORK/apt.log" 2>&1 || true
	command -v docker-registry >/dev/null 2>&1 ||
		{ tail -5 "$WORK/apt.log"; skip "docker-registry is not installable here"; }
fi
# credentials only from the files given here
export HOME=$WORK/home
mkdir -p "$HOME"
unset REGISTRY_AUTH_FILE DOCKER_CONFIG

make_srcfs "$WORK/srcfs" 512m
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 44 --small --parts standard
"$PY" "$LAZY_CHECK" make-files "$SRC/lazy" 4 --seed 44 || fail "make-files"
BLOBS=$WORK/blobs IMG=$WORK/meta.img MNT=$WORK/mnt
mkdir -p "$BLOBS"
"$ANOLE" image build -q "$SRC" -o "$IMG" --blob-dir "$BLOBS" --chunk-size 64K --compress lz4 \
	--json >"$WORK/build.json" || fail "image build"
DIGEST=$(json_get "$WORK/build.json" blob_digest)
BLOB=${DIGEST#sha256:}
BLOB_SIZE=$(wc -c <"$BLOBS/$BLOB")
log "blob $DIGEST: $BLOB_SIZE bytes"

# ---------------------------------------------------------------- docker-registry
port=$(free_port)
start_registry registry "$port"
log "docker-registry on 127.0.0.1:$port"
REPO=docker://127.0.0.1:$port/anole/test
assert_eq "$("$ANOLE" blob push "$REPO" "$BLOBS/$BLOB")" "$DIGEST" "digest printed by blob push"
curl -sfI "http://127.0.0.1:$port/v2/anole/test/blobs/$DIGEST" | tr -d '\r' >"$WORK/head"
assert_grep "^Content-Length: $BLOB_SIZE\$" "$WORK/head"

for mode in kernel fuse; do
	log "docker-registry, mode $mode"
	lazy_mount "$IMG" "$MNT" "$REPO" "$mode" --cache "$WORK/cache-reg-$mode"
	lazy_read "$SRC" "$MNT" lazy/f00
	lazy_snap "$MNT"
	log "  one file: $S_bytes_fetched bytes fetched of $BLOB_SIZE in $S_http_requests requests"
	assert_ge "$S_bytes_fetched" 1 "bytes fetched by one read ($mode)"
	[ "$S_bytes_fetched" -lt $((BLOB_SIZE / 2)) ] || fail "one file fetched $S_bytes_fetched of $BLOB_SIZE bytes ($mode)"
	compare_trees "$SRC" "$MNT"
	lazy_snap "$MNT"
	assert_eq "$S_chunks_present" "$S_chunks" "chunks present after reading everything ($mode)"
	assert_eq "$S_verify_failures" 0 "verify failures ($mode)"
	assert_eq "$S_fetch_errors" 0 "fetch errors ($mode)"
	[ "$S_bytes_fetched" -le "$BLOB_SIZE" ] || fail "fetched $S_bytes_fetched bytes, more than the blob ($mode)"
	lazy_umount "$MNT"
done

log "a blob the registry does not have: EIO, not a hang or wrong bytes"
# the same image, but mounted from a repository without the blob
lazy_mount "$IMG" "$MNT" "docker://127.0.0.1:$port/anole/empty" fuse --cache "$WORK/cache-missing" --timeout 5000
lazy_read --expect-eio "$SRC" "$MNT" lazy/f01
lazy_snap "$MNT"
assert_ge "$S_fetch_errors" 1 "fetch errors for a missing blob"
lazy_umount "$MNT"

# ---------------------------------------------------------------- emulation: Bearer tokens
log "registry emulation, anonymous Bearer tokens, kernel mode"
start_fault_server "$BLOBS" --registry --token-auth
lazy_mount "$IMG" "$MNT" "docker://127.0.0.1:$FS_PORT/anole/test" kernel --cache "$WORK/cache-tok"
compare_trees "$SRC" "$MNT"
lazy_snap "$MNT"
assert_eq "$S_chunks_present" "$S_chunks" "chunks present (token flow)"
assert_eq "$S_fetch_errors" 0 "fetch errors (token flow)"
p=/v2/anole/test/blobs/$DIGEST
tokens=$(fs_stat 'd["token_requests"]')
c401=$(fs_stat 'd["paths"]["'"$p"'"]["status"].get("401", 0)')
authed=$(fs_stat 'd["paths"]["'"$p"'"]["auth"]')
reqs=$(fs_stat 'd["paths"]["'"$p"'"]["count"]')
log "  $reqs blob requests, $authed with a token, $c401 answered 401, $tokens token requests"
assert_ge "$tokens" 1 "token requests"
assert_ge "$c401" 1 "401 challenges"
# the token is cached: only requests racing the first token fetch see a 401
assert_le "$tokens" 4 "token requests (cached per store)"
assert_le "$c401" 4 "401 answers (token cached)"
assert_eq "$(fs_stat 'd["scopes"][0]')" "repository:anole/test:pull" "scope asked for"
assert_eq "$authed" "$((reqs - c401))" "every request after the challenge carried the token"
lazy_umount "$MNT"

log "registry emulation, a token realm that wants credentials (--auth-file), FUSE mode"
start_fault_server "$BLOBS" --registry --token-auth --token-user alice:s3cret
printf '{"auths": {"127.0.0.1:%s": {"auth": "%s"}}}\n' "$FS_PORT" \
	"$(printf '%s' alice:s3cret | base64 -w0)" >"$WORK/auth.json"
lazy_mount "$IMG" "$MNT" "docker://127.0.0.1:$FS_PORT/anole/test" fuse --cache "$WORK/cache-cred" \
	--auth-file "$WORK/auth.json"
lazy_read "$SRC" "$MNT" lazy/f00 lazy/f01 lazy/f02 lazy/f03
assert_ge "$(fs_stat 'd["token_requests"]')" 1 "token requests with credentials"
lazy_umount "$MNT"
# without the credentials the reads fail with EIO (access denied), never hang
lazy_mount "$IMG" "$MNT" "docker://127.0.0.1:$FS_PORT/anole/test" fuse --cache "$WORK/cache-nocred"
lazy_read --expect-eio "$SRC" "$MNT" lazy/f00
lazy_umount "$MNT"
log "ok"
