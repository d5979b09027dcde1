#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Hostile and unusual tar layers, through `image build --layer` and
# `image convert` (an OCI layout made here from the same tars):
#  * a size header of 2^62 (GNU base-256), 2^40 with 5000 bytes behind it,
#    and GNU long-name / PAX headers claiming 1 TiB fail with a message
#    naming the layer (and the entry when there is one), exit 1, no crash,
#    no image and no blob left, in bounded memory;
#  * layers that carry no file data (an empty file, an end-of-archive-only
#    layer, a symlink-only layer, 60,000 empty files) build an image with no
#    extra device, which check accepts and which mounts (kernel EROFS, and
#    the lazy mount in kernel and FUSE mode) with the tree the tar holds;
#  * bad PAX values (uid and gid beyond 32 bits or negative, size=zz, a
#    record with a wrong length) are refused naming the layer, the entry
#    and the key, where libarchive tells it (it parses "zz" as 0 and says
#    only that the next header is damaged).
. "$TESTDIR/lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
cd "$WORK"

# oci_layout DIR TAR...: an OCI image layout (tag v1) with those layers,
# uncompressed, as a registry would serve them.
oci_layout() {
	"$PY" - "$@" <<'PY' || fail "oci_layout $*"
import hashlib, json, os, shutil, sys
d, tars = sys.argv[1], sys.argv[2:]
os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
def put(data):
    h = hashlib.sha256(data).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(data)
    return "sha256:" + h
layers, diffs = [], []
for t in tars:
    data = open(t, "rb").read()
    dg = put(data)
    layers.append({"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": dg, "size": len(data)})
    diffs.append(dg)
cfg = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                  "rootfs": {"type": "layers", "diff_ids": diffs}}).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                             "digest": put(cfg), "size": len(cfg)},
                  "layers": layers}).encode()
md = put(man)
json.dump({"imageLayoutVersion": "1.0.0"}, open(f"{d}/oci-layout", "w"))
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
           "digest": md, "size": len(man), "annotations": {"org.opencontainers.image.ref.name": "v1"}}]},
          open(f"{d}/index.json", "w"))
PY
}

# expect_layer_fail NAME PATTERN...: build --layer NAME.tar and convert of a
# layout holding it (as layer 2) both exit 1 with the layer and every
# PATTERN in the message, leave no
# image, no blob and no temporary file. The 2^62 header used to abort in
# the allocation of its chunk array ("out of memory", exit 134); under ASan
# no single allocation may exceed 1 GiB either.
expect_layer_fail() {
	local name=$1 pat rc
	shift
	rm -rf fb fo && mkdir fo
	ASAN_OPTIONS="$ASAN_OPTIONS:max_allocation_size_mb=1024" run_rc rc "$ANOLE" image build -q --layer "$name.tar" \
		-o fo/out.img --blob-dir fb 2>err.txt
	check_not_crashed "$rc" "build --layer $name.tar"
	assert_eq "$rc" 1 "build --layer $name.tar: exit status"
	for pat in "layer 1 $name.tar" "$@"; do
		grep -q -F -e "$pat" err.txt || fail "build --layer $name.tar: message lacks '$pat': $(cat err.txt)"
	done
	[ -z "$(ls -A fo)" ] || fail "build --layer $name.tar left $(ls -A fo)"
	[ -z "$(ls -A fb 2>/dev/null)" ] || fail "build --layer $name.tar left blobs: $(ls -A fb)"
	log "ok: build: $(cat err.txt)"
	rm -rf "src-$name" dst
	oci_layout "src-$name" good.tar "$name.tar"
	ASAN_OPTIONS="$ASAN_OPTIONS:max_allocation_size_mb=1024" run_rc rc "$ANOLE" image convert -q "oci:src-$name:v1" \
		-o oci:dst:v1 2>err.txt
	check_not_crashed "$rc" "convert with $name.tar"
	assert_eq "$rc" 1 "convert with $name.tar: exit status"
	for pat in "layer 2" "$@"; do
		grep -q -F -e "$pat" err.txt || fail "convert with $name.tar: message lacks '$pat': $(cat err.txt)"
	done
	if [ -e dst/index.json ] && grep -q '"v1"' dst/index.json; then
		fail "convert with $name.tar tagged v1"
	fi
	log "ok: convert: $(cat err.txt)"
}

log "---- hostile size headers"
"$PY" - <<'PY'
import io, tarfile
def header(name, size, typ=tarfile.REGTYPE):
    i = tarfile.TarInfo(name); i.size = size; i.type = typ; i.mtime = 1700000000
    return i.tobuf(format=tarfile.GNU_FORMAT)
end = b"\0" * 10240
with tarfile.open("good.tar", "w") as t:
    i = tarfile.TarInfo("good"); i.size = 5; t.addfile(i, io.BytesIO(b"good\n"))
open("size62.tar", "wb").write(header("huge", 2**62) + end)
open("size40.tar", "wb").write(header("tera", 2**40) + b"a" * 5000 + end)
open("longname.tar", "wb").write(header("././@LongLink", 2**40, tarfile.GNUTYPE_LONGNAME) + end)
open("paxhdr.tar", "wb").write(header("././@PaxHeader", 2**40, tarfile.XHDTYPE) + end)
PY
expect_layer_fail size62 "huge" "4611686018427387904 bytes"
expect_layer_fail size40 "tera" "runcated"
expect_layer_fail longname "too large"
expect_layer_fail paxhdr "too large"

log "---- layers without file data: no blob, no device, and the image mounts"
"$PY" - <<'PY'
import io, tarfile
def layer(name, entries):
    with tarfile.open(name, "w") as t:
        for path, kind, data in entries:
            i = tarfile.TarInfo(path); i.mtime = 1700000000; i.uid = 1000; i.gid = 100
            if kind == "link":            # mode 0644 in the header: shown as 0777
                i.type = tarfile.SYMTYPE; i.linkname = data; t.addfile(i)
            elif kind == "dir":
                i.type = tarfile.DIRTYPE; i.mode = 0o750; t.addfile(i)
            else:
                i.mode = 0o640; t.addfile(i, io.BytesIO(b""))
layer("nodata-empty.tar", [("empty", "file", None)])
layer("nodata-symlinks.tar", [("s1", "link", "target"), ("dir", "dir", None), ("dir/s2", "link", "../s1")])
layer("nodata-many.tar", [("many", "dir", None)] + [("many/%05d" % k, "file", None) for k in range(60000)])
open("nodata-eoa.tar", "wb").write(b"\0" * 10240)          # end of archive only
PY
for name in empty eoa symlinks many; do
	t=nodata-$name.tar
	rm -rf "b-$name" "ref-$name" && mkdir "ref-$name"
	tar -C "ref-$name" --numeric-owner -xpf "$t" || fail "tar -x $t"
	chmod 0755 "ref-$name"
	"$ANOLE" image build -q --layer "$t" -o "$name.img" --blob-dir "b-$name" || fail "build --layer $t"
	[ -z "$(ls -A "b-$name")" ] || fail "$t: a layer without data left blobs: $(ls -A "b-$name")"
	"$ANOLE" image inspect "$name.img" >inspect.txt
	assert_grep "devices: *0 extra" inspect.txt "$t: device table"
	check_image "$name.img"
	mount_image "$name.img" "kmnt-$name"
	touch -r "kmnt-$name" "ref-$name"        # the root has no tar entry: its time is the image's
	compare_trees "ref-$name" "kmnt-$name"
	umount_image "kmnt-$name"
	for mode in kernel fuse; do
		lazy_mount "$name.img" "lmnt-$name-$mode" "b-$name" "$mode" --cache "cache-$name-$mode"
		if [ "$name" = many ]; then
			# the tree was compared above; here, the mount (which used to
			# fail) and its size: a full compare of 60,000 files through
			# FUSE takes minutes on a loaded machine
			assert_eq "$(ls -f "lmnt-$name-$mode/many" | wc -l)" 60002 "entries of many/ ($mode mode)"
		else
			compare_trees "ref-$name" "lmnt-$name-$mode"
		fi
		lazy_umount "lmnt-$name-$mode"
	done
	log "ok: $t: no device; kernel EROFS and lazy kernel/fuse mounts equal tar -x"
done
rm -rf nodata-conv
oci_layout nodata-src nodata-empty.tar nodata-symlinks.tar
"$ANOLE" image convert -q oci:nodata-src:v1 -o oci:nodata-conv:v1 || fail "convert of layers without data"
for mode in kernel fuse; do
	mkdir -p "cmnt-$mode"
	readlink -f "cmnt-$mode" >>"$_STATE/lazy_mounts"     # unmounted at exit (lazy_lib.sh)
	"$ANOLE" image mount oci:nodata-conv:v1 "cmnt-$mode" --mode "$mode" --cache "ccache-$mode" ||
		fail "mount oci:nodata-conv:v1 ($mode mode)"
	[ -f "cmnt-$mode/empty" ] && [ "$(readlink "cmnt-$mode/dir/s2")" = ../s1 ] ||
		fail "convert of layers without data: $(cd "cmnt-$mode" && find . | tr '\n' ' ')"
	lazy_umount "cmnt-$mode"
done
log "ok: convert of layers without data mounts in both modes"

log "---- bad PAX values"
"$PY" - <<'PY'
import io, tarfile
def pax(name, hdrs):
    with tarfile.open(name, "w", format=tarfile.PAX_FORMAT) as t:
        i = tarfile.TarInfo("f"); i.size = 1; i.pax_headers = hdrs
        t.addfile(i, io.BytesIO(b"x"))
pax("uid32.tar", {"uid": "4294967296"})     # was stored as 0: root
pax("uidneg.tar", {"uid": "-1"})
pax("gidbig.tar", {"gid": "99999999999999999999999"})
pax("sizezz.tar", {"size": "zz"})           # was "an entry without a name"
# a record whose length field is wrong: libarchive only warns
h = tarfile.TarInfo("././@PaxHeader"); h.type = tarfile.XHDTYPE; body = b"99 uid=5\n"; h.size = len(body)
i = tarfile.TarInfo("f"); i.size = 1
open("paxlen.tar", "wb").write(h.tobuf(format=tarfile.USTAR_FORMAT) + body + b"\0" * (512 - len(body)) +
                               i.tobuf(format=tarfile.USTAR_FORMAT) + b"x" + b"\0" * 511 + b"\0" * 10240)
PY
expect_layer_fail uid32 "entry 'f'" "uid 4294967296 is out of range"
expect_layer_fail uidneg "entry 'f'" "uid -1 is out of range"
expect_layer_fail gidbig "entry 'f'" "gid" "out of range"
expect_layer_fail sizezz "entry 'f'" "size" "malformed"
expect_layer_fail paxlen "entry 'f'" "malformed pax"

log "pass"
