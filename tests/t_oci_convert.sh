#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# needs-features: fuse
# OCI conversion: a multi-layer image made with umoci (deletions, a changed
# file, xattrs, hard links, a replaced directory) is converted with
# `anole image convert`; mounting the result by reference (kernel and fuse
# mode) equals `umoci unpack` of the original, field by field. Overlay
# semantics (whiteouts, opaque directories) are checked on hand-made tar
# layers, and hostile or broken inputs fail with a message naming the layer
# and entry while leaving the destination's index untouched.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd umoci
[ -e /dev/fuse ] || skip "no /dev/fuse"

cd "$WORK"
log "a three-layer image with umoci"
umoci init --layout img >/dev/null
umoci new --image img:v1 >/dev/null
umoci unpack --image img:v1 b >/dev/null
R=b/rootfs
mkdir -p $R/etc $R/usr/share/doc $R/srv/old/deep $R/data
cp -a /usr/share/doc/bash /usr/share/doc/apt $R/usr/share/doc/
echo hello >$R/etc/greeting
echo keep >$R/srv/old/deep/file
head -c 3000000 /dev/urandom >$R/data/big
ln $R/etc/greeting $R/data/greeting-link
setfattr -n user.layer -v one $R/etc/greeting
chown 1234:5678 $R/data/big
umoci repack --image img:v1 b >/dev/null
rm -rf b; umoci unpack --image img:v1 b >/dev/null
rm -rf $R/usr/share/doc/apt                  # a deletion
echo changed >$R/etc/greeting                # a changed file (breaks the link)
setfattr -n user.layer -v two $R/etc/greeting
rm -rf $R/srv/old && mkdir -p $R/srv/old && echo new >$R/srv/old/only   # replaced dir
cp $R/data/big $R/data/big-copy              # duplicate data: dedup across layers
umoci repack --image img:v1 b >/dev/null
rm -rf b; umoci unpack --image img:v1 b >/dev/null
chmod 4755 $R/etc && touch -d @1234567890.123456789 $R/data/big
umoci repack --image img:v1 b >/dev/null
umoci unpack --image img:v1 ref >/dev/null

log "convert"
"$ANOLE" image convert -q oci:img:v1 -o oci:acc:v1 --json >convert.json || fail "convert failed"
cat convert.json
assert_eq "$(json_get convert.json source_layers)" 3 "source layers"
assert_ge "$(json_get convert.json chunks_deduped)" 2 "chunks deduplicated across layers"
# the accelerated manifest: blob layers then the metadata layer, source named
python3 - acc <<'PY' || fail "accelerated manifest"
import json, sys, os
d = sys.argv[1]
idx = json.load(open(f"{d}/index.json"))
desc = [m for m in idx["manifests"] if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "v1"][0]
man = json.load(open(f"{d}/blobs/sha256/{desc['digest'][7:]}"))
types = [l["mediaType"] for l in man["layers"]]
assert types[-1] == "application/vnd.anole.image.metadata.v1.erofs", types
assert all(t == "application/vnd.anole.image.blob.v1" for t in types[:-1]), types
assert man["annotations"]["org.openanolis.anole.source.manifest"].startswith("sha256:")
for l in man["layers"] + [man["config"]]:
    p = f"{d}/blobs/sha256/{l['digest'][7:]}"
    assert os.path.getsize(p) == l["size"], p
print("manifest ok:", len(types), "layers")
PY

for mode in kernel fuse; do
	log "mount oci:acc:v1 ($mode mode)"
	mkdir -p mnt
	"$ANOLE" image mount oci:acc:v1 mnt --mode "$mode" --cache cache-$mode || fail "mount ($mode)"
	add_mount "$WORK/mnt"
	compare_trees ref/rootfs mnt
	"$ANOLE" image umount mnt || fail "umount ($mode)"
done

log "reconverting gives the same bytes"
"$ANOLE" image convert -q oci:img:v1 -o oci:acc2:v1 --json >convert2.json
assert_eq "$(json_get convert2.json manifest)" "$(json_get convert.json manifest)" "manifest digest of a second conversion"

log "overlay semantics on hand-made layers"
python3 - <<'PY'
import io, tarfile
def layer(name, entries):
    with tarfile.open(name, "w") as t:
        for path, kind, data in entries:
            i = tarfile.TarInfo(path)
            i.mtime = 1700000000
            if kind == "dir":
                i.type = tarfile.DIRTYPE; i.mode = 0o755; t.addfile(i)
            elif kind == "link":
                i.type = tarfile.LNKTYPE; i.linkname = data; t.addfile(i)
            else:
                b = data.encode(); i.size = len(b); i.mode = 0o644; t.addfile(i, io.BytesIO(b))
layer("l1.tar", [("a", "dir", None), ("a/x", "file", "x1"), ("a/y", "file", "y1"),
                 ("b", "dir", None), ("b/gone", "file", "g"), ("c", "file", "c1")])
layer("l2.tar", [("a/.wh..wh..opq", "file", ""), ("a/z", "file", "z2"),
                 ("b/.wh.gone", "file", ""), ("c", "file", "c2"), ("d", "file", "d2"),
                 ("d-link", "link", "d")])
layer("bad-dotdot.tar", [("../escape", "file", "x")])
layer("bad-abs.tar", [("/etc/abs", "file", "x")])
layer("bad-link.tar", [("l", "link", "missing")])
layer("bad-wh.tar", [("nothere/.wh.x", "file", "")])
PY
"$ANOLE" image build -q --layer l1.tar --layer l2.tar -o ov.img --blob-dir ovblobs || fail "build from layers"
mkdir -p ovm
"$ANOLE" image mount ov.img ovm --blobs ovblobs --cache ovcache || fail "mount layers image"
add_mount "$WORK/ovm"
got=$(cd ovm && find . -mindepth 1 | sort | tr '\n' ' ')
assert_eq "$got" "./a ./a/z ./b ./c ./d ./d-link " "merged tree"
assert_eq "$(cat ovm/c)" c2 "replaced file"
assert_eq "$(stat -c %h ovm/d)" 2 "hard link count"
"$ANOLE" image umount ovm

log "hostile and broken layers"
for bad in bad-dotdot bad-abs bad-link bad-wh; do
	run_rc rc "$ANOLE" image build -q --layer l1.tar --layer $bad.tar -o bad.img --blob-dir badblobs 2>err.txt
	assert_eq "$rc" 1 "$bad: exit status"
	grep -q "layer 2" err.txt || fail "$bad: the message does not name the layer: $(cat err.txt)"
	assert_missing bad.img "$bad: output image"
	# temp files are dot files: only -A shows them
	[ -z "$(ls -A badblobs 2>/dev/null | grep '^\.')" ] || fail "$bad: temp files left in the blob dir"
	ls -A bad.img .bad.img.* 2>/dev/null && fail "$bad: a temp image was left"
	log "ok: $bad: $(cat err.txt)"
done

log "a corrupted source layer is refused, the destination untouched"
cp -a img imgbad
L=$(python3 -c "
import json
idx=json.load(open('imgbad/index.json'))
m=json.load(open('imgbad/blobs/sha256/'+idx['manifests'][0]['digest'][7:]))
print(m['layers'][0]['digest'][7:])")
printf 'X' | dd of=imgbad/blobs/sha256/$L bs=1 seek=100 conv=notrunc status=none
before=$(sha256sum acc/index.json)
run_rc rc "$ANOLE" image convert -q oci:imgbad:v1 -o oci:acc:v2 2>err.txt
assert_eq "$rc" 1 "convert of a corrupted layer"
grep -q "does not match its digest" err.txt || fail "message: $(cat err.txt)"
assert_eq "$(sha256sum acc/index.json)" "$before" "destination index.json"
log "ok"

# A layer whose digest matches its bytes but whose gzip stream is broken:
# the layer is inflated on a thread of its own (layerpipe.c), and its
# failure must still fail the conversion with a message naming the layer,
# with nothing written. Flipping a byte inside the stored (incompressible)
# 3 MB file is found only by the CRC-32 in the gzip trailer, after the tar
# has been read: the check that ends the layer, not the tar's end, decides.
regzip() {      # regzip DIR HOW: rewrite DIR's first layer, digests made to match
	python3 - "$1" "$2" <<'PY'
import hashlib, json, os, sys
d, how = sys.argv[1], sys.argv[2]
def blob(dg): return f"{d}/blobs/sha256/{dg[7:]}"
def put(data):
    dg = "sha256:" + hashlib.sha256(data).hexdigest()
    open(blob(dg), "wb").write(data)
    return dg
idx = json.load(open(f"{d}/index.json"))
man = json.load(open(blob(idx["manifests"][0]["digest"])))
lay = man["layers"][0]
data = bytearray(open(blob(lay["digest"]), "rb").read())
assert data[:2] == b"\x1f\x8b", "the layer is not gzip"
if how == "truncated":
    data = data[: len(data) * 3 // 5]
else:                   # a byte in the middle, inside the random file
    data[len(data) // 2] ^= 0x55
lay["digest"], lay["size"] = put(bytes(data)), len(data)
mb = json.dumps(man).encode()
idx["manifests"][0]["digest"], idx["manifests"][0]["size"] = put(mb), len(mb)
json.dump(idx, open(f"{d}/index.json", "w"))
PY
}
for how in truncated flipped; do
	log "a layer with $how gzip data (digest matching) is refused"
	rm -rf imgz; cp -a img imgz
	regzip imgz $how || fail "making the $how layer"
	before=$(sha256sum acc/index.json)
	nblobs=$(ls -A acc/blobs/sha256 | wc -l)
	run_rc rc "$ANOLE" image convert -q oci:imgz:v1 -o oci:acc:v3 2>err.txt
	assert_eq "$rc" 1 "convert of a layer with $how gzip data"
	grep -q "sha256:[0-9a-f]*: the gzip data" err.txt || fail "$how: message: $(cat err.txt)"
	assert_eq "$(sha256sum acc/index.json)" "$before" "$how: destination index.json"
	assert_eq "$(ls -A acc/blobs/sha256 | wc -l)" "$nblobs" "$how: blobs in the destination"
	[ -z "$(ls -A acc | grep '^\.' | grep -v '^\.anole-index\.lock$')" ] || fail "$how: temp files left in the destination"
	log "ok: $(cat err.txt)"
done
