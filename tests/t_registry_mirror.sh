#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# needs-features: fuse
# Registry mirrors from registries.conf (--registries-conf), with real
# engines: Debian's docker-registry as the origin and a second one in proxy
# (pull-through cache) mode in front of it as the mirror, both on 127.0.0.1.
# - convert reads its source through the mirror; `image mount
#   docker://ORIGIN/...` by the origin's reference gets its manifest, its
#   metadata layer and its lazy chunks through the mirror (the mirror's
#   access log and storage show them); pull too; a range far into a blob
#   the mirror is still fetching comes from the origin meanwhile;
# - with the mirror stopped, a fresh mount falls back to the origin;
# - a mirror that flips bytes in every blob (tests/flip_proxy.py) is found
#   out by the digests, skipped, and the mount reads correct data;
# - blocked = true refuses the registry, naming the file and line.
. "$TESTDIR/lib.sh"
. "$TESTDIR/blobstore_lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
need_cmd docker-registry curl
[ -e /dev/fuse ] || skip "no /dev/fuse"
export HOME=$WORK/home
mkdir -p "$HOME"
unset REGISTRY_AUTH_FILE DOCKER_CONFIG CONTAINERS_REGISTRIES_CONF

ORIGIN=127.0.0.1:$(free_port)
start_registry origin "${ORIGIN#*:}"
MIRROR=127.0.0.1:$(free_port)
start_registry mirror "${MIRROR#*:}" "http://$ORIGIN"
MIRROR_PID=$REG_PID
log "origin $ORIGIN, pull-through mirror $MIRROR"
cat >"$WORK/mirror.conf" <<EOF
# the origin's namespace, read through the mirror first
[[registry]]
location = "$ORIGIN"

[[registry.mirror]]
location = "$MIRROR"
EOF

# ------------------------------------------------------------ a source image
SRC=$WORK/tree
"$PY" "$LAZY_CHECK" make-files "$SRC" 12 --seed 71 --min 20000 --max 300000 || fail "make-files"
"$PY" - "$SRC" "$WORK/src" <<'PY' || fail "source layout"
import hashlib, io, json, os, sys, tarfile
src, out = sys.argv[1:3]
os.makedirs(out + "/blobs/sha256")
def put(data):
    d = hashlib.sha256(data).hexdigest()
    open("%s/blobs/sha256/%s" % (out, d), "wb").write(data)
    return "sha256:" + d, len(data)
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
    for name in sorted(os.listdir(src)):
        t.add(os.path.join(src, name), arcname=name)
layer, lsize = put(buf.getvalue())
arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
cfg, csize = put(json.dumps({"architecture": arch, "os": "linux", "config": {},
                             "rootfs": {"type": "layers", "diff_ids": [layer]}}).encode())
man, msize = put(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg, "size": csize},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer,
                "size": lsize}]}).encode())
open(out + "/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": man, "size": msize, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
    open(out + "/index.json", "w"))
print(layer)
PY
"$ANOLE" image push "oci:$WORK/src:v1" "docker://$ORIGIN/anole/src:v1" || fail "push the source"

# mirror_saw PATTERN: the mirror's access log has a request matching it
mirror_saw() { grep -c -- "$1" "$WORK/mirror.log" || true; }
# stored_in NAME DIGEST: the registry NAME keeps the blob (a pull-through
# cache commits it once its own download from the origin is complete)
stored_in() {
	local hex=${2#sha256:} i
	for i in $(seq 100); do
		[ -s "$WORK/$1/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data" ] && return 0
		sleep 0.1
	done
	return 1
}

log "convert docker://$ORIGIN/anole/src:v1 reads its source through the mirror"
"$ANOLE" image convert -q "docker://$ORIGIN/anole/src:v1" -o "docker://$ORIGIN/anole/app:v1" \
	--chunk-size 64K --registries-conf "$WORK/mirror.conf" --json >"$WORK/convert.json" ||
	fail "convert through the mirror"
assert_ge "$(mirror_saw 'GET /v2/anole/src/manifests/v1')" 1 "source manifest requests at the mirror"
assert_ge "$(mirror_saw 'GET /v2/anole/src/blobs/sha256:')" 2 "source blob requests at the mirror"
# the pushed image went to the origin, not the mirror
assert_eq "$(mirror_saw 'PUT /v2/anole/app')" 0 "uploads at the mirror"
curl -sf "http://$ORIGIN/v2/anole/app/manifests/v1" \
	-H 'Accept: application/vnd.oci.image.manifest.v1+json' >"$WORK/app.json" ||
	fail "the converted image is not at the origin"
BLOB=$("$PY" -c 'import json, sys
m = json.load(open(sys.argv[1]))
print([l["digest"] for l in m["layers"] if "metadata" not in l["mediaType"]][0])' "$WORK/app.json")
META=$("$PY" -c 'import json, sys
m = json.load(open(sys.argv[1]))
print([l["digest"] for l in m["layers"] if "metadata" in l["mediaType"]][0])' "$WORK/app.json")
log "  data blob $BLOB"

# ref_mount NAME CONF [options]: mount docker://ORIGIN/anole/app:v1 at $WORK/mnt-NAME
ref_mount() {
	local name=$1 conf=$2 rc=0
	shift 2
	MNT=$WORK/mnt-$name
	mkdir -p "$MNT"
	echo "$(readlink -f "$MNT")" >>"$_STATE/lazy_mounts"
	"$ANOLE" image mount "docker://$ORIGIN/anole/app:v1" "$MNT" --cache "$WORK/cache-$name" \
		--registries-conf "$conf" "$@" 2>"$WORK/mount-$name.err" || rc=$?
	check_not_crashed "$rc" "image mount ($name)"
	[ "$rc" -eq 0 ] || { cat "$WORK/mount-$name.err" >&2; tail -20 "$(lazy_state_dir "$MNT")/log" >&2
		fail "image mount docker://$ORIGIN/anole/app:v1 ($name) exited $rc"; }
	DLOG=$(lazy_state_dir "$MNT")/log
}

log "mount by the origin's reference: manifest, metadata and chunks through the mirror"
before=$(mirror_saw "GET /v2/anole/app/blobs/$BLOB")
ref_mount through "$WORK/mirror.conf"
lazy_read "$SRC" "$MNT"
lazy_snap "$MNT"
assert_eq "$S_verify_failures" 0 "verify failures through the mirror"
assert_eq "$S_fetch_errors" 0 "fetch errors through the mirror"
assert_ge "$(mirror_saw 'GET /v2/anole/app/manifests/v1')" 1 "manifest requests at the mirror"
assert_ge "$(mirror_saw "GET /v2/anole/app/blobs/$META")" 1 "metadata layer requests at the mirror"
chunk_gets=$(( $(mirror_saw "GET /v2/anole/app/blobs/$BLOB") - before ))
log "  $chunk_gets chunk requests at the mirror ($S_http_requests made by the daemon)"
assert_ge "$chunk_gets" 1 "chunk requests at the mirror"
# what the daemon asked for came from the mirror: as many requests there as it made
assert_ge "$chunk_gets" "$S_fetch_requests" "chunk requests at the mirror vs the daemon's"
stored_in mirror "$BLOB" || fail "the mirror did not keep $BLOB"
assert_no_grep "skipping it" "$DLOG"
lazy_umount "$MNT"

log "pull through the mirror"
"$ANOLE" image pull "docker://$ORIGIN/anole/app:v1" "oci:$WORK/pulled:v1" \
	--registries-conf "$WORK/mirror.conf" || fail "pull through the mirror"
[ -s "$WORK/pulled/blobs/sha256/${BLOB#sha256:}" ] || fail "the pull did not bring $BLOB"
assert_ge "$(mirror_saw 'GET /v2/anole/app/manifests/v1')" 2 "manifest requests at the mirror after pull"

log "a range far into a blob the mirror has not fetched yet: from the origin, then from the mirror"
# (a pull-through cache sends the whole blob from its first byte until it holds it)
BIG=$(make_blob "$WORK/big" 12000000)
"$ANOLE" blob push "docker://$ORIGIN/anole/big" "$WORK/big" >/dev/null || fail "push a big blob"
expect_range "$WORK/big" 10485760 4096 "docker://$ORIGIN/anole/big" "$BIG" \
	--registries-conf "$WORK/mirror.conf" -v 2>"$WORK/big.err"
assert_grep "ignores Range here; trying the next source" "$WORK/big.err"
assert_no_grep "skipping it" "$WORK/big.err"
stored_in mirror "$BIG" || fail "the mirror did not fetch $BIG"
expect_range "$WORK/big" 10485760 4096 "docker://$ORIGIN/anole/big" "$BIG" \
	--registries-conf "$WORK/mirror.conf" -v 2>"$WORK/big2.err"
assert_grep "^blob store: 1 requests" "$WORK/big2.err"
assert_no_grep "trying the next source" "$WORK/big2.err"

log "the mirror stopped: a fresh mount falls back to the origin"
kill "$MIRROR_PID"
wait "$MIRROR_PID" 2>/dev/null || true
ref_mount fallback "$WORK/mirror.conf"
assert_grep "mirror $MIRROR/anole/app of .*skipping it" "$WORK/mount-fallback.err"
lazy_read "$SRC" "$MNT"
lazy_snap "$MNT"
assert_eq "$S_fetch_errors" 0 "fetch errors with the mirror down"
assert_grep "mirror $MIRROR/anole/app of .*Couldn't connect.*skipping it for" "$DLOG"
lazy_umount "$MNT"

log "a mirror that flips bytes: found out by the digests, skipped, the data correct"
pf=$WORK/flip.port
"$PY" "$TESTDIR/flip_proxy.py" --upstream "http://$ORIGIN" --port-file "$pf" \
	--stats "$WORK/flip.json" >"$WORK/flip.log" 2>&1 &
add_pid $!
wait_for_file "$pf" 10 || fail "flip_proxy.py did not start"
FLIP=127.0.0.1:$(cat "$pf")
sed "s/$MIRROR/$FLIP/" "$WORK/mirror.conf" >"$WORK/flip.conf"
ref_mount flip "$WORK/flip.conf" --mode fuse
# the metadata layer came off the mirror wrong: fetched again from the origin
assert_grep "mirror $FLIP/anole/app of .*does not match its digest.*skipping it" \
	"$WORK/mount-flip.err"
lazy_read "$SRC" "$MNT"
lazy_snap "$MNT"
log "  $S_verify_failures chunk verification failures, $S_fetch_requests fetches"
assert_ge "$S_verify_failures" 1 "chunks that failed verification (from the lying mirror)"
assert_eq "$S_fetch_errors" 0 "fetch errors with a lying mirror"
assert_grep "mirror $FLIP/anole/app of .*fail verification; skipping it for" "$DLOG"
flipped=$("$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))["flipped"])' "$WORK/flip.json")
assert_ge "$flipped" 2 "blob responses the proxy corrupted (metadata + chunks)"
lazy_umount "$MNT"

log "blocked = true refuses the registry"
printf '[[registry]]\nprefix = "%s/anole"\nblocked = true\n' "$ORIGIN" >"$WORK/blocked.conf"
rc_err 1 "$ANOLE" blob size "docker://$ORIGIN/anole/app" "$BLOB" --registries-conf "$WORK/blocked.conf"
assert_grep "the registry is blocked (blocked = true in $WORK/blocked.conf:1)" "$ERR"
rc_err 1 "$ANOLE" image pull "docker://$ORIGIN/anole/app:v1" "oci:$WORK/blocked:v1" \
	--registries-conf "$WORK/blocked.conf"
assert_grep "blocked" "$ERR"
log "a broken registries.conf names its line"
printf '[[registry]]\nlocation = "%s"\ninsecure = "yes"\n' "$ORIGIN" >"$WORK/bad.conf"
rc_err 1 "$ANOLE" blob size "docker://$ORIGIN/anole/app" "$BLOB" --registries-conf "$WORK/bad.conf"
assert_grep "bad.conf:3: 'insecure' takes a boolean, not a string" "$ERR"
log "ok"
