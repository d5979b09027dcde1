#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Interop of anole's signatures with containers/image: Debian's skopeo,
# given a containers-policy.json(5) sigstoreSigned rule with the public key
# and registries.d use-sigstore-attachments, against Debian's
# docker-registry started here, with an image signed by `anole image sign`
# (ECDSA P-256, then Ed25519 and SM2 as more layers of one .sig manifest):
#  - skopeo finds the three signatures in the .sig manifest, and finds none
#    for the unsigned source image or once the signed tag is pointed at
#    other bytes (tampered);
#  - where skopeo can verify sigstore signatures it accepts the image with
#    either key and refuses another key's; Debian bookworm's skopeo 1.9.3
#    cannot ("Debian-local change: sigstore disabled"), so then each
#    signature is checked as sigstore's verifier checks it, with the openssl
#    command: ECDSA over SHA-256 (DER), Ed25519, and SM2 with SM3 and the
#    ID 1234567812345678, on the payload bytes fetched from the registry;
#  - `anole image verify` accepts, and refuses another key, the unsigned
#    image, the signature under another name and the tampered tag, saying why.
# ANOLE_SKOPEO=PATH names the skopeo that checks the policy (e.g. one built
# from upstream source with sigstore left on; see docs/anole-image.md); the
# pushes and retags always use Debian's.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd umoci skopeo docker-registry curl
SKOPEO=${ANOLE_SKOPEO:-skopeo}
command -v "$SKOPEO" >/dev/null || fail "ANOLE_SKOPEO=$SKOPEO: not found"
log "policy checks by $("$SKOPEO" --version)"
cd "$WORK"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

port=$(free_port)
start_registry registry "$port"
R=127.0.0.1:$port

log "a source image (umoci), pushed with skopeo and converted by anole"
umoci init --layout img >/dev/null
umoci new --image img:v1 >/dev/null
umoci unpack --image img:v1 b >/dev/null
mkdir -p b/rootfs/etc
echo "signed content" >b/rootfs/etc/motd
head -c 300000 /dev/urandom >b/rootfs/etc/blob
umoci repack --image img:v1 b >/dev/null
skopeo copy -q --dest-tls-verify=false oci:img:v1 "docker://$R/src:v1" || fail "skopeo push"
"$ANOLE" image convert -q "docker://$R/src:v1" -o "docker://$R/acc:v1" >/dev/null || fail "convert"

"$ANOLE" image keygen -o ec.pem >/dev/null || fail "keygen ecdsa"
"$ANOLE" image keygen -a ed25519 -o ed.pem >/dev/null || fail "keygen ed25519"
"$ANOLE" image keygen -o other.pem >/dev/null || fail "keygen other"
"$ANOLE" image keygen -a sm2 -o sm2.pem >/dev/null || fail "keygen sm2"

log "sign with ECDSA, then Ed25519 and SM2 (three layers of one .sig manifest)"
"$ANOLE" image sign --key ec.pem --json "docker://$R/acc:v1" >s1.json || fail "sign ecdsa"
cat s1.json
"$ANOLE" image sign --key ed.pem "docker://$R/acc:v1" >/dev/null || fail "sign ed25519"
"$ANOLE" image sign --key sm2.pem "docker://$R/acc:v1" >/dev/null || fail "sign sm2"
digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["manifest"])' s1.json)
served=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$R/v2/acc/manifests/v1" | sha256sum | cut -d' ' -f1)
assert_eq "$digest" "sha256:$served" "the signed digest is that of the manifest the tag serves"
curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
	"http://$R/v2/acc/manifests/sha256-${digest#sha256:}.sig" >sig.json || fail "no .sig tag"
python3 - sig.json <<'EOP' || fail "the .sig manifest is not in cosign's layout"
import json, sys
m = json.load(open(sys.argv[1]))
assert m["mediaType"] == "application/vnd.oci.image.manifest.v1+json", m
assert len(m["layers"]) == 3, m
for l in m["layers"]:
    assert l["mediaType"] == "application/vnd.dev.cosign.simplesigning.v1+json", l
    assert "dev.cosignproject.cosign/signature" in l["annotations"], l
EOP

mkdir -p regd
cat >regd/anole.yaml <<EOC
docker:
  $R:
    use-sigstore-attachments: true
EOC
# policy KEYFILE: sigstoreSigned for this registry, everything else refused
policy() {
	cat >"policy-$1.json" <<EOC
{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {"$R": [{"type": "sigstoreSigned", "keyPath": "$WORK/$1",
                        "signedIdentity": {"type": "matchRepoDigestOrExact"}}]}
  }
}
EOC
	echo "policy-$1.json"
}
# skopeo_copy POLICY SRC: 0 when skopeo accepts (copies) the image
n=0
skopeo_copy() {
	n=$((n + 1))
	"$SKOPEO" copy -q --remove-signatures --src-tls-verify=false --policy "$1" --registries.d regd \
		"docker://$R/$2" "oci:out$n:x" 2>"skopeo$n.err"
}

# extract PREFIX: each layer of the .sig manifest as PREFIX.N.payload (the
# blob, checked against its digest) and PREFIX.N.sig (the annotation, decoded)
extract() {
	python3 - "$R" acc "$digest" "$1" <<'EOP'
import base64, hashlib, json, sys, urllib.request
reg, repo, dg, prefix = sys.argv[1:]
def get(path, accept=None):
    q = urllib.request.Request(f"http://{reg}/v2/{repo}/{path}")
    if accept:
        q.add_header("Accept", accept)
    return urllib.request.urlopen(q).read()
m = json.loads(get(f"manifests/sha256-{dg[7:]}.sig", "application/vnd.oci.image.manifest.v1+json"))
for i, l in enumerate(m["layers"]):
    body = get(f"blobs/{l['digest']}")
    assert "sha256:" + hashlib.sha256(body).hexdigest() == l["digest"]
    open(f"{prefix}.{i}.payload", "wb").write(body)
    open(f"{prefix}.{i}.sig", "wb").write(
        base64.b64decode(l["annotations"]["dev.cosignproject.cosign/signature"], validate=True))
print(len(m["layers"]))
EOP
}

log "skopeo with a sigstoreSigned policy, on the signed image"
sigstore_works=1
if ! skopeo_copy "$(policy ec.pub)" acc:v1; then
	cat skopeo$n.err
	grep -q "sigstore disabled" skopeo$n.err ||
		fail "skopeo refused the ECDSA-signed image"
	sigstore_works=0
	found=$(grep -o "sigstore disabled" skopeo$n.err | wc -l)
	assert_eq "$found" 3 "signatures skopeo found in anole's .sig manifest"
	log "this skopeo cannot verify sigstore signatures (a Debian-local change): it found all three of anole's;"
	log "each is now verified with the openssl command, as sigstore's verifier does it"
	assert_eq "$(extract layer)" 3 "layers extracted"
	openssl dgst -sha256 -verify ec.pub -signature layer.0.sig layer.0.payload ||
		fail "openssl: the ECDSA signature does not verify"
	openssl pkeyutl -verify -rawin -pubin -inkey ed.pub -in layer.1.payload -sigfile layer.1.sig ||
		fail "openssl: the Ed25519 signature does not verify"
	openssl dgst -sm3 -verify sm2.pub -signature layer.2.sig -sigopt distid:1234567812345678 \
		layer.2.payload || fail "openssl: the SM2 signature does not verify"
	if openssl dgst -sha256 -verify other.pub -signature layer.0.sig layer.0.payload >/dev/null 2>&1; then
		fail "openssl: the ECDSA signature verifies with another key"
	fi
	python3 - layer.0.payload "$digest" "$R/acc:v1" <<'EOP' || fail "the payload does not say what containers/image wants"
import json, sys
p = json.load(open(sys.argv[1]))
assert set(p) == {"critical", "optional"}, p
c = p["critical"]
assert set(c) == {"type", "image", "identity"}, c
assert c["type"] == "cosign container image signature", c
assert c["image"] == {"docker-manifest-digest": sys.argv[2]}, c
assert c["identity"] == {"docker-reference": sys.argv[3]}, c
EOP
else
	[ -s "out$n/index.json" ] || fail "skopeo accepted but copied nothing"
	skopeo_copy "$(policy ed.pub)" acc:v1 || { cat skopeo$n.err; fail "skopeo refused the Ed25519-signed image"; }
fi
"$ANOLE" image verify --key ec.pub "docker://$R/acc:v1" || fail "anole verify (ecdsa)"
"$ANOLE" image verify --key sm2.pub "docker://$R/acc:v1" || fail "anole verify (sm2)"

log "skopeo and anole refuse a signature by another key"
if skopeo_copy "$(policy other.pub)" acc:v1; then fail "skopeo accepted an image signed by other keys"; fi
cat skopeo$n.err
[ ! -s "out$n/index.json" ] || fail "skopeo refused but wrote the image"
rc_want() { local want=$1; shift; local rc=0; "$@" 2>verify.err || rc=$?; cat verify.err;
	check_not_crashed "$rc" "$*"; [ "$rc" = "$want" ] || fail "'$*' exited $rc, expected $want"; }
rc_want 1 "$ANOLE" image verify --key other.pub "docker://$R/acc:v1"
assert_grep "does not verify" verify.err "anole's reason for another key"

log "skopeo and anole refuse the unsigned source image"
if skopeo_copy "$(policy ec.pub)" src:v1; then fail "skopeo accepted an unsigned image"; fi
assert_grep "no signature exists" skopeo$n.err "skopeo's reason for the unsigned image"
rc_want 1 "$ANOLE" image verify --key ec.pub "docker://$R/src:v1"
assert_grep "no signature" verify.err "anole's reason for an unsigned image"

log "a signature names its image: acc:v1's does not pass for another tag of the same bytes"
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$R/acc:v1" "docker://$R/acc:other" ||
	fail "retag"
if skopeo_copy "$(policy ec.pub)" acc:other; then fail "skopeo accepted the signature under another name"; fi
cat skopeo$n.err
rc_want 1 "$ANOLE" image verify --key ec.pub "docker://$R/acc:other"
assert_grep "another image name" verify.err "anole's reason for another name"
"$ANOLE" image verify --key ec.pub --identity "$R/acc:v1" "docker://$R/acc:other" >/dev/null ||
	fail "verify with an explicit --identity"

log "tamper: acc:v1 made to point at other bytes (the source image)"
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$R/src:v1" "docker://$R/acc:v1" ||
	fail "overwrite the tag"
if skopeo_copy "$(policy ec.pub)" acc:v1; then fail "skopeo accepted a tampered image"; fi
assert_grep "no signature exists" skopeo$n.err "skopeo's reason for the tampered tag"
rc_want 1 "$ANOLE" image verify --key ec.pub "docker://$R/acc:v1"
assert_grep "not signed" verify.err "anole's verdict on the tampered tag"
log "ok"
