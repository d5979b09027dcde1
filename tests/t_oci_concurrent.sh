#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Concurrent conversions into one OCI layout (issue 11 §2d.2). N converts of
# different trees start together into one fresh layout, in several rounds.
# Each must exit 0, leave its tag in index.json exactly once, and that tag
# must name its own image: the manifest's source annotation is its source's
# manifest, and the metadata layer holds its tree (a file only that tree
# has; in the last round every tag is mounted and compared field by field).
#
# Before the fix, two converts shared DEST/.anole-metadata.img and did an
# unlocked read-modify-write of index.json: of 40 pairs, 25 lost a tag and
# 10 named the other image's metadata. Overlap is what exposes it, so the
# converts are released together (all wait on one fifo) and each is slow
# enough (a few MiB of data) that their writes interleave even under load.
. "$TESTDIR/lib.sh"
need_root
need_anole
[ -e /dev/fuse ] || skip "no /dev/fuse"

N=${OCI_CONCURRENT_N:-4}
ROUNDS=${OCI_CONCURRENT_ROUNDS:-2}
cd "$WORK"

log "$N source images, each its own tree, as OCI layouts"
for i in $(seq 1 "$N"); do
	mkdir -p src-$i/etc src-$i/data/sub
	echo "image $i" >src-$i/etc/id
	echo "only in $i" >src-$i/image-$i
	head -c $((1000000 + i * 4096)) /dev/urandom >src-$i/data/big
	seq 1 $((i * 1000)) >src-$i/data/sub/numbers
	ln -s ../etc/id src-$i/data/id-link
	# whole seconds: a PAX mtime written by Python's tarfile is a float
	find src-$i -exec touch -h -d @$((1700000000 + i)) {} +
done
"$PY" - "$N" <<'PY' || fail "cannot write the source layouts"
import hashlib, io, json, os, sys, tarfile
def blob(d, data):
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    open(f"{d}/blobs/sha256/{h}", "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
for i in range(1, int(sys.argv[1]) + 1):
    d, src = f"img-{i}", f"src-{i}"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add(src, arcname=".")          # the root too: its mode and mtime
    layer = dict(blob(d, buf.getvalue()), mediaType="application/vnd.oci.image.layer.v1.tar")
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}}).encode()
    config = dict(blob(d, cfg), mediaType="application/vnd.oci.image.config.v1+json")
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": config, "layers": [layer]}).encode()
    m = dict(blob(d, man), mediaType="application/vnd.oci.image.manifest.v1+json",
             annotations={"org.opencontainers.image.ref.name": "v1"})
    json.dump({"schemaVersion": 2, "manifests": [m]}, open(f"{d}/index.json", "w"))
    open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
    open(f"{d}/manifest-digest", "w").write(m["digest"])
PY

# check_layout DEST: every tag present once, naming its own source and tree
check_layout() {
	local dest=$1 i meta
	"$PY" - "$dest" "$N" >tags.txt <<'PY' || fail "$dest: index.json is wrong"
import json, sys
d, n = sys.argv[1], int(sys.argv[2])
idx = json.load(open(f"{d}/index.json"))
names = [m.get("annotations", {}).get("org.opencontainers.image.ref.name") for m in idx["manifests"]]
want = [f"t{i}" for i in range(1, n + 1)]
missing = [t for t in want if t not in names]
twice = sorted({t for t in names if names.count(t) > 1})
if missing or twice:
    sys.exit(f"tags missing {missing}, listed twice {twice}; index has {names}")
for i in range(1, n + 1):
    m = next(m for m in idx["manifests"]
             if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == f"t{i}")
    man = json.load(open(f"{d}/blobs/sha256/{m['digest'][7:]}"))
    src = open(f"img-{i}/manifest-digest").read()
    got = man["annotations"]["org.openanolis.anole.source.manifest"]
    if got != src:
        sys.exit(f"t{i} names the source {got}, not img-{i}'s {src}")
    meta = [l for l in man["layers"] if l["mediaType"].endswith("metadata.v1.erofs")][0]
    print(f"t{i} {d}/blobs/sha256/{meta['digest'][7:]}")
PY
	while read -r tag meta; do
		i=${tag#t}
		"$ANOLE" image inspect "$meta" /image-$i >/dev/null 2>err.txt ||
			fail "$dest:$tag: its metadata has no /image-$i (another image's tree?): $(cat err.txt)"
	done <tags.txt
	# nothing temporary is left behind
	left=$(ls -A "$dest" "$dest/blobs/sha256" | grep '^\.' | grep -v '^\.anole-index\.lock$' || true)
	[ -z "$left" ] || fail "$dest: temporary files left: $left"
}

for round in $(seq 1 "$ROUNDS"); do
	log "round $round: $N converts into one fresh layout at once"
	dest=dest-$round
	rm -f go && mkfifo go
	pids=()
	for i in $(seq 1 "$N"); do
		( read -r _ <go; exec "$ANOLE" image convert -q "oci:img-$i:v1" -o "oci:$dest:t$i" \
			--json >conv-$round-$i.json 2>conv-$round-$i.err ) &
		pids+=($!)
	done
	# every reader holds the fifo open before one write releases them all
	sleep 0.2
	printf 'go\n%.0s' $(seq 1 "$N") >go
	for i in $(seq 1 "$N"); do
		wait "${pids[$((i - 1))]}" ||
			fail "round $round: convert $i failed: $(cat conv-$round-$i.err)"
	done
	check_layout "$dest"
done

log "every tag of the last layout mounts and holds its own tree"
for i in $(seq 1 "$N"); do
	mkdir -p mnt
	"$ANOLE" image mount "oci:dest-$ROUNDS:t$i" mnt --mode fuse --cache cache || fail "mount t$i"
	add_mount "$WORK/mnt"
	compare_trees src-$i mnt
	"$ANOLE" image umount mnt || fail "umount t$i"
done

log "a held index lock gives a clear error, not a hang"
# Hold the lock from outside for longer than a convert would wait: the
# convert must fail naming the lock, and leave the index as it was.
before=$(sha256 dest-1/index.json)
flock dest-1/.anole-index.lock sleep 600 &
holder=$!
add_pid "$holder"
sleep 0.2
run_rc rc env ANOLE_INDEX_LOCK_WAIT_MS=500 "$ANOLE" image convert -q oci:img-1:v1 -o oci:dest-1:held 2>err.txt
kill "$holder" 2>/dev/null
assert_eq "$rc" 1 "convert against a held lock: exit status"
grep -q "lock" err.txt || fail "the message does not name the lock: $(cat err.txt)"
assert_eq "$(sha256 dest-1/index.json)" "$before" "index.json after a refused update"
log "ok"
