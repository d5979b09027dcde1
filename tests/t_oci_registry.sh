#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# needs-features: fuse
# OCI images through a real registry (Debian's docker-registry on 127.0.0.1):
# the source is pushed with skopeo, converted registry to registry, mounted
# by reference (only manifest + metadata fetched up front) and compared with
# `umoci unpack` field by field; skopeo copies the accelerated image between
# repositories unchanged; `anole image pull` brings it to a layout that
# mounts too. Dedup: v2 (v1 squashed into one layer plus ~1 MiB of new data)
# converted with --chunk-dict v1 uploads at most 1.1x the new bytes plus
# metadata, and the registry grows accordingly. Into a new repository the
# blobs are uploaded in parts while they are built (image/blobsend.c): the
# result is the same bytes as a conversion into a layout, and a conversion
# that fails in a later layer leaves no blob and no tag behind.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd umoci skopeo docker-registry curl
[ -e /dev/fuse ] || skip "no /dev/fuse"
cd "$WORK"

port=$(free_port)
start_registry registry "$port"
R=127.0.0.1:$port
registry_bytes() { du -sb registry | cut -f1; }

log "source image v1 (two layers) with umoci, pushed with skopeo"
umoci init --layout img >/dev/null
umoci new --image img:v1 >/dev/null
umoci unpack --image img:v1 b >/dev/null
mkdir -p b/rootfs/etc b/rootfs/data
cp -a /usr/share/doc/bash b/rootfs/doc
head -c 4000000 /dev/urandom >b/rootfs/data/big
echo one >b/rootfs/etc/version
setfattr -n user.v -v 1 b/rootfs/etc/version
umoci repack --image img:v1 b >/dev/null
rm -rf b; umoci unpack --image img:v1 b >/dev/null
rm -rf b/rootfs/doc/INTRO* && echo two >b/rootfs/etc/version
umoci repack --image img:v1 b >/dev/null
umoci unpack --image img:v1 ref1 >/dev/null
skopeo copy -q --dest-tls-verify=false oci:img:v1 "docker://$R/src:v1" || fail "skopeo push"

log "convert registry -> registry, mount by reference"
"$ANOLE" image convert -q "docker://$R/src:v1" -o "docker://$R/acc:v1" --json >c1.json || fail "convert"
cat c1.json
for mode in kernel fuse; do
	mkdir -p mnt
	"$ANOLE" image mount "docker://$R/acc:v1" mnt --mode "$mode" --cache "cache-$mode" || fail "mount docker:// ($mode)"
	add_mount "$WORK/mnt"
	"$ANOLE" image stats mnt --json >st.json
	assert_eq "$(json_get st.json bytes_fetched)" 0 "blob bytes fetched at mount time ($mode)"
	compare_trees ref1/rootfs mnt
	"$ANOLE" image umount mnt || fail "umount"
done

log "skopeo copies the accelerated image unchanged"
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$R/acc:v1" "docker://$R/copy:v1" || fail "skopeo copy"
d1=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$R/acc:v1")
d2=$(skopeo inspect --tls-verify=false --format '{{.Digest}}' "docker://$R/copy:v1")
assert_eq "$d2" "$d1" "manifest digest after skopeo copy"
assert_eq "$d1" "$(json_get c1.json manifest)" "manifest digest vs convert's"

log "anole image pull, then mount the layout"
"$ANOLE" image pull "docker://$R/copy:v1" oci:pulled:v1 || fail "pull"
"$ANOLE" image mount oci:pulled:v1 mnt --cache cache-pulled || fail "mount pulled"
add_mount "$WORK/mnt"
compare_trees ref1/rootfs mnt
"$ANOLE" image umount mnt

log "v2: v1 squashed into one new layer + 1 MiB of new data"
umoci new --image img:v2 >/dev/null
umoci unpack --image img:v2 b2 >/dev/null
cp -a ref1/rootfs/. b2/rootfs/
head -c 1048576 /dev/urandom >b2/rootfs/data/new
umoci repack --image img:v2 b2 >/dev/null
umoci unpack --image img:v2 ref2 >/dev/null
skopeo copy -q --dest-tls-verify=false oci:img:v2 "docker://$R/src:v2" || fail "skopeo push v2"
before=$(registry_bytes)
"$ANOLE" image convert -q "docker://$R/src:v2" -o "docker://$R/acc:v2" \
	--chunk-dict "docker://$R/acc:v1" --json >c2.json || fail "convert v2 with a chunk dictionary"
cat c2.json
after=$(registry_bytes)
pushed=$(json_get c2.json bytes_pushed)
meta=$(json_get c2.json metadata_bytes)
bound=$(( 1048576 * 11 / 10 + meta + 65536 ))
assert_le "$pushed" "$bound" "bytes pushed for v2 with the dictionary (new data 1 MiB, metadata $meta)"
assert_le "$(( after - before ))" "$(( bound + 65536 ))" "registry growth for v2"
log "pushed $pushed bytes (bound $bound); registry grew by $(( after - before )) bytes"
"$ANOLE" image convert -q "docker://$R/src:v2" -o "docker://$R/nodict:v2" --json >c3.json
log "without the dictionary: pushed $(json_get c3.json bytes_pushed) bytes"
"$ANOLE" image mount "docker://$R/acc:v2" mnt --cache cache-v2 || fail "mount v2"
add_mount "$WORK/mnt"
compare_trees ref2/rootfs mnt
"$ANOLE" image umount mnt

log "another repository: the dictionary's blobs are mounted across, not uploaded"
"$ANOLE" image convert -q "docker://$R/src:v2" -o "docker://$R/elsewhere:v2" \
	--chunk-dict "docker://$R/acc:v1" --json >c4.json 2>c4.err ||
	fail "convert v2 into another repository: $(cat c4.err)"
# a blob the destination lacks is an answer, not an error
assert_no_grep 'error' c4.err "convert into another repository: its messages"
assert_le "$(json_get c4.json bytes_pushed)" "$bound" "bytes pushed into another repository"
"$ANOLE" image mount "docker://$R/elsewhere:v2" mnt --cache cache-v2b || fail "mount elsewhere:v2"
add_mount "$WORK/mnt"
compare_trees ref2/rootfs mnt
"$ANOLE" image umount mnt
log "ok"

log "blobs sent while built: the same bytes; a failed conversion commits nothing"
umoci init --layout big >/dev/null
umoci new --image big:v1 >/dev/null
umoci unpack --image big:v1 b3 >/dev/null
# 20 MB that does not compress: a blob of several 8 MiB parts
head -c 20000000 /dev/urandom >b3/rootfs/random
umoci repack --image big:v1 b3 >/dev/null
rm -rf b3; umoci unpack --image big:v1 b3 >/dev/null
echo small >b3/rootfs/second
umoci repack --image big:v1 b3 >/dev/null
"$ANOLE" image convert -q oci:big:v1 -o oci:bigacc:v1 --json >c5l.json || fail "convert into a layout"
# the transport blobs (every layer but the metadata one), from the layout
blobs=$(python3 -c "
import json
m = json.load(open('bigacc/blobs/sha256/' + json.load(open('bigacc/index.json'))['manifests'][0]['digest'][7:]))
print(' '.join(l['digest'] for l in m['layers'] if 'metadata' not in l['mediaType']))")
[ -n "$blobs" ] || fail "no transport blobs in bigacc"
# libcurl's trace (request lines "> METHOD PATH"): a blob sent while built is
# named first by its upload's final PUT, then by the HEAD of the push that
# finds it there; one the push uploads is named first by that HEAD
ANOLE_HTTP_TRACE=1 "$ANOLE" image convert -q oci:big:v1 -o "docker://$R/sent:v1" --json \
	>c5.json 2>c5.trace || { tail -20 c5.trace; fail "convert into a new repository"; }
assert_eq "$(json_get c5.json manifest)" "$(json_get c5l.json manifest)" "manifest sent in parts vs into a layout"
assert_ge "$(json_get c5.json bytes_pushed)" 20000000 "bytes pushed into a new repository"
for b in $blobs; do
	first=$(grep -a "^> [A-Z]* .*${b#sha256:}" c5.trace | head -1 | cut -d' ' -f2)
	assert_eq "$first" PUT "first request naming $b (sent while built)"
done
rm -rf sentpull
"$ANOLE" image pull "docker://$R/sent:v1" oci:sentpull:v1 || fail "pull of the image sent in parts (digests)"
# the second layer corrupted: the first layer's blob is built (and sent) first
cp -a big bigbad
python3 - bigbad <<'PY'
import json, sys
d = sys.argv[1]
idx = json.load(open(f"{d}/index.json"))
man = json.load(open(f"{d}/blobs/sha256/{idx['manifests'][0]['digest'][7:]}"))
p = f"{d}/blobs/sha256/{man['layers'][1]['digest'][7:]}"
data = bytearray(open(p, "rb").read())
data[len(data) // 2] ^= 0x55
open(p, "wb").write(data)
PY
run_rc rc "$ANOLE" image convert -q oci:bigbad:v1 -o "docker://$R/failed:v1" 2>err5.txt
assert_eq "$rc" 1 "convert with a corrupted second layer"
grep -q "does not match its digest" err5.txt || fail "message: $(cat err5.txt)"
blob1=${blobs%% *}
code=$(curl -s -o /dev/null -w '%{http_code}' -I "http://$R/v2/failed/blobs/$blob1")
assert_eq "$code" 404 "the first layer's blob in the repository of the failed conversion"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://$R/v2/failed/manifests/v1")
assert_eq "$code" 404 "the tag of the failed conversion"
log "ok"
