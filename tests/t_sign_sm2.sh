#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# SM2 signatures checked by the openssl command line, given only the public
# key and the payload: an OCI layout signed by `anole image sign` (payload
# and signature taken from the sha256-<digest>.sig manifest in the layout,
# blob digests checked) and a plain image file (FILE.sig). openssl verifies
# with the standard ID (-sigopt distid:1234567812345678) and rejects with
# OpenSSL's empty default ID, another key, or one changed payload byte.
# Also: keys openssl made sign for anole; a layout without a tag still
# opens as one image after signing; `anole image verify` refuses a layout
# whose tag moved to other bytes.
. "$TESTDIR/lib.sh"
need_anole
need_cmd openssl python3
cd "$WORK"

openssl genpkey -algorithm SM2 -out sm2.pem 2>/dev/null || skip "this openssl has no SM2"
openssl pkey -in sm2.pem -pubout -out sm2.pub || fail "openssl pkey -pubout"
"$ANOLE" image keygen -a sm2 -o other.pem >/dev/null || fail "keygen"

log "an anole image in an OCI layout, signed with an SM2 key openssl made"
mkdir -p tree && echo "sm2 content" >tree/a && head -c 100000 /dev/urandom >tree/b
"$ANOLE" image build -q tree -o img.erofs >/dev/null || fail "build"
mkdir -p t2 && echo v2 >t2/a
"$ANOLE" image build -q t2 -o img2.erofs >/dev/null || fail "build 2"
# a layout holding the image files as single-layer images
layout() { # DIR TAG FILE
	python3 - "$@" <<'EOP'
import hashlib, json, os, sys
d, tag, f = sys.argv[1:]
os.makedirs(f"{d}/blobs/sha256", exist_ok=True)
def put(b):
    h = hashlib.sha256(b).hexdigest()
    open(f"{d}/blobs/sha256/{h}", "wb").write(b)
    return {"digest": "sha256:" + h, "size": len(b)}
cfg = put(b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}')
lay = put(open(f, "rb").read())
m = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
     "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **cfg),
     "layers": [dict(mediaType="application/vnd.anole.image.metadata.v1.erofs", **lay)]}
md = put(json.dumps(m).encode())
open(f"{d}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
idx = {"schemaVersion": 2, "manifests": []}
if os.path.exists(f"{d}/index.json"):
    idx = json.load(open(f"{d}/index.json"))
idx["manifests"] = [e for e in idx["manifests"]
                    if e.get("annotations", {}).get("org.opencontainers.image.ref.name") != tag]
idx["manifests"].append(dict(mediaType=m["mediaType"], annotations={"org.opencontainers.image.ref.name": tag}, **md))
json.dump(idx, open(f"{d}/index.json", "w"))
print(md["digest"])
EOP
}
digest=$(layout lay v1 img.erofs) || fail "make the layout"
"$ANOLE" image sign --key sm2.pem --json oci:lay:v1 >sign.json || fail "sign the layout"
cat sign.json
assert_grep "\"manifest\":\"$digest\"" sign.json "the signed digest is the layout's manifest"
"$ANOLE" image sign --key other.pem oci:lay:v1 >/dev/null || fail "second signature"

python3 - lay "$digest" <<'EOP' || fail "cannot extract the signatures from the layout"
import base64, hashlib, json, sys
d, dg = sys.argv[1:]
tag = "sha256-" + dg[7:] + ".sig"
idx = json.load(open(f"{d}/index.json"))
e = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag]
assert len(e) == 1, e
blob = lambda dgst: open(f"{d}/blobs/sha256/{dgst[7:]}", "rb").read()
man = blob(e[0]["digest"])
assert "sha256:" + hashlib.sha256(man).hexdigest() == e[0]["digest"]
m = json.loads(man)
assert len(m["layers"]) == 2, m
for i, l in enumerate(m["layers"]):
    assert l["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json"
    p = blob(l["digest"])
    assert "sha256:" + hashlib.sha256(p).hexdigest() == l["digest"]
    assert json.loads(p)["critical"]["image"]["docker-manifest-digest"] == dg
    open(f"payload{i}", "wb").write(p)
    open(f"sig{i}", "wb").write(base64.b64decode(l["annotations"]["dev.cosignproject.cosign/signature"], validate=True))
EOP
log "openssl verifies the layout's SM2 signature with the standard ID"
openssl dgst -sm3 -verify sm2.pub -signature sig0 -sigopt distid:1234567812345678 payload0 ||
	fail "openssl rejects anole's SM2 signature"
openssl pkeyutl -verify -rawin -digest sm3 -pubin -inkey sm2.pub -in payload0 -sigfile sig0 \
	-pkeyopt distid:1234567812345678 || fail "openssl pkeyutl rejects anole's SM2 signature"
log "and rejects it with the empty ID, another key, a changed payload"
if openssl dgst -sm3 -verify sm2.pub -signature sig0 payload0 >/dev/null 2>&1; then
	fail "openssl accepted with OpenSSL's empty default ID: the ID is not in the signature"
fi
if openssl dgst -sm3 -verify sm2.pub -signature sig1 -sigopt distid:1234567812345678 payload1 >/dev/null 2>&1; then
	fail "openssl accepted another key's signature"
fi
sed 's/sha256:/sha256:/; s/"critical"/"critical" /' payload0 >payload0.changed
cmp -s payload0 payload0.changed && fail "the payload was not changed"
if openssl dgst -sm3 -verify sm2.pub -signature sig0 -sigopt distid:1234567812345678 payload0.changed >/dev/null 2>&1; then
	fail "openssl accepted a changed payload"
fi

log "anole verify: signed layout ok; without a tag it is still one image; a moved tag refused"
"$ANOLE" image verify --key sm2.pub oci:lay:v1 >/dev/null || fail "verify the layout"
"$ANOLE" image verify --key sm2.pub oci:lay >/dev/null || fail "verify the layout without a tag"
layout lay v1 img2.erofs >/dev/null
rc=0; "$ANOLE" image verify --key sm2.pub oci:lay:v1 2>verify.err || rc=$?
cat verify.err
assert_eq "$rc" 1 "verify after the tag moved"
assert_grep "no signature" verify.err "the reason"

log "a plain image file: FILE.sig, checked by openssl too"
"$ANOLE" image sign --key sm2.pem img.erofs >/dev/null || fail "sign the file"
python3 - img.erofs.sig <<'EOP' || fail "FILE.sig"
import base64, json, sys
s = json.load(open(sys.argv[1]))["signatures"][0]
assert s["algorithm"] == "sm2-sm3", s
open("fpayload", "wb").write(base64.b64decode(s["payload"], validate=True))
open("fsig", "wb").write(base64.b64decode(s["signature"], validate=True))
EOP
openssl dgst -sm3 -verify sm2.pub -signature fsig -sigopt distid:1234567812345678 fpayload ||
	fail "openssl rejects the file's SM2 signature"
assert_grep "sha256:$(sha256sum img.erofs | cut -d' ' -f1)" fpayload "the file's payload names its digest"
"$ANOLE" image verify --key sm2.pub img.erofs >/dev/null || fail "verify the file"
rc=0; "$ANOLE" image verify --key other.pub img.erofs 2>verify.err || rc=$?
assert_eq "$rc" 1 "verify the file with another key"
log "ok"
