#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Image references end to end (image/ref.c, docs/oci.md "Image references").
# Each transport a convert reads: an OCI layout, an oci-archive: tarball of
# one (by tag), and a docker-archive: (`docker save` layout, named by its
# REPO:TAG, which itself holds ':' and '/'); each result mounts by oci:
# reference and holds the source tree. Malformed references fail before
# anything is read or written, with a message naming the wrong part, and no
# temporary directory is left behind.
. "$TESTDIR/lib.sh"
need_root
need_anole
[ -e /dev/fuse ] || skip "no /dev/fuse"
cd "$WORK"
export TMPDIR=$WORK/tmp    # the converts' temporary layouts, checked below
mkdir -p "$TMPDIR"

log "a source tree as an OCI layout, an oci-archive and a docker-archive"
mkdir -p src/etc src/data
echo "from archives" >src/etc/id
head -c 300000 /dev/urandom >src/data/blob
ln -s ../etc/id src/data/link
find src -exec touch -h -d @1700000000 {} +
"$PY" - <<'PY' || fail "cannot write the sources"
import hashlib, io, json, os, tarfile
def tar_of(src):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        t.add(src, arcname=".")
    return buf.getvalue()
layer = tar_of("src")
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}).encode()
# OCI layout, tagged v1
def blob(d, data):
    h = hashlib.sha256(data).hexdigest()
    os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
    open(f"{d}/blobs/sha256/{h}", "wb").write(data)
    return {"digest": "sha256:" + h, "size": len(data)}
l = dict(blob("img", layer), mediaType="application/vnd.oci.image.layer.v1.tar")
c = dict(blob("img", cfg), mediaType="application/vnd.oci.image.config.v1+json")
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": c, "layers": [l]}).encode()
m = dict(blob("img", man), mediaType="application/vnd.oci.image.manifest.v1+json",
         annotations={"org.opencontainers.image.ref.name": "v1"})
json.dump({"schemaVersion": 2, "manifests": [m]}, open("img/index.json", "w"))
open("img/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
with tarfile.open("img.oci.tar", "w") as t:
    t.add("img", arcname=".")
# docker save: manifest.json naming the config and layer files by path
with tarfile.open("img.docker.tar", "w") as t:
    def add(name, data):
        i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 1700000000
        t.addfile(i, io.BytesIO(data))
    add("abc/layer.tar", layer)
    add("cfg.json", cfg)
    add("manifest.json", json.dumps([{"Config": "cfg.json",
        "RepoTags": ["reg.example:5000/team/app:v1"], "Layers": ["abc/layer.tar"]}]).encode())
PY

n=0
for src in oci:img:v1 oci-archive:img.oci.tar:v1 "docker-archive:img.docker.tar:reg.example:5000/team/app:v1" \
	"docker-archive:img.docker.tar:v1"; do
	n=$((n + 1))
	log "convert $src"
	"$ANOLE" image convert -q "$src" -o "oci:out:t$n" --json >conv-$n.json 2>err.txt ||
		fail "convert $src: $(cat err.txt)"
	assert_eq "$(json_get conv-$n.json source_layers)" 1 "$src: source layers"
	# 2 and 4 are compared below by manifest with 1 and 3
	[ $n = 1 ] || [ $n = 3 ] || continue
	mkdir -p mnt
	"$ANOLE" image mount "oci:out:t$n" mnt --mode fuse --cache cache || fail "mount oci:out:t$n"
	add_mount "$WORK/mnt"
	compare_trees src mnt
	"$ANOLE" image umount mnt || fail "umount"
done
# the same manifest by another transport is the same image (a docker
# archive's manifest is rewritten as OCI, so it is compared with itself)
assert_eq "$(json_get conv-2.json manifest)" "$(json_get conv-1.json manifest)" "oci-archive vs layout"
assert_eq "$(json_get conv-4.json manifest)" "$(json_get conv-3.json manifest)" "docker-archive by tag vs by name"
[ -z "$(ls -A "$TMPDIR")" ] || fail "temporary layouts left behind: $(ls -A "$TMPDIR")"

log "a docker-archive name that the archive does not hold"
run_rc rc "$ANOLE" image convert -q "docker-archive:img.docker.tar:other:v9" -o oci:out:x 2>err.txt
assert_eq "$rc" 1 "unknown archive name: exit status"
assert_grep "no image tagged other:v9" err.txt "unknown archive name"
[ -z "$(ls -A "$TMPDIR")" ] || fail "a failed convert left its temporary layout: $(ls -A "$TMPDIR")"

log "malformed references are refused naming the part"
before=$(sha256 out/index.json)
while IFS='|' read -r ref says; do
	run_rc rc "$ANOLE" image convert -q "$ref" -o oci:out:bad 2>err.txt
	assert_eq "$rc" 1 "convert '$ref': exit status"
	assert_grep "$says" err.txt "convert '$ref'"
done <<'EOF'
docker://reg.example/Team/app|repository has an upper-case letter
docker://reg.example:70000/app|port
docker://reg.example/app:-v1|the tag is not
docker://reg.example/app@sha256:1234|digest
docker://reg.example|no repository
dokcer://reg.example/app|unknown transport
oci:img:|empty tag
oci-archive:|no archive file
EOF
run_rc rc "$ANOLE" image convert -q oci:img:v1 -o "docker-archive:x.tar" 2>err.txt
assert_eq "$rc" 1 "an archive as the destination: exit status"
assert_grep "not an archive" err.txt "an archive as the destination"
run_rc rc "$ANOLE" image mount "docker://reg.example/App" mnt 2>err.txt
assert_eq "$rc" 1 "mount of a malformed reference: exit status"
assert_grep "upper-case" err.txt "mount of a malformed reference"
run_rc rc "$ANOLE" image mount "oci-archive:img.oci.tar" mnt 2>err.txt
assert_eq "$rc" 1 "mount of an archive: exit status"
assert_grep "cannot be mounted" err.txt "mount of an archive"
run_rc rc "$ANOLE" image pull "oci:img:v1" "oci:copy" 2>err.txt
assert_eq "$rc" 1 "pull from a layout: exit status"
assert_grep "the source of a pull is docker://" err.txt "pull from a layout"
assert_eq "$(sha256 out/index.json)" "$before" "index.json after refused converts"
assert_missing copy "a refused pull's destination"
log "ok"
