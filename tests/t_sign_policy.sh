#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# needs-features: fuse
# Trust policy at mount and pull (containers-policy.json subset), against
# Debian's docker-registry started here:
#  - sigstoreSigned for the registry: the signed image mounts (kernel EROFS)
#    and pulls; an unsigned one, one signed by another key, and the signed
#    tag pointed at other bytes are refused with a message saying why, and
#    before any byte of the image is used (the cache holds no manifest or
#    metadata image afterwards);
#  - the signed manifest is the one used: keyData, exactReference, reject
#    and per-scope rules; a policy anole cannot check fails to load;
#  - oci: layouts: a signed layout mounts; its metadata blob altered after
#    signing is refused before the mount (digest checked);
#  - plain image files: FILE.sig; a changed file is refused.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd umoci skopeo docker-registry curl
[ -e /dev/fuse ] || skip "no /dev/fuse"
cd "$WORK"
export no_proxy=127.0.0.1,localhost NO_PROXY=127.0.0.1,localhost

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p registry
cat >registry.yml <<EOC
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$port
  secret: anole-test-$$
EOC
docker-registry serve registry.yml >registry.log 2>&1 &
registry=$!
add_pid $registry
# wait while it lives, not for 10 s of clock: one that cannot start exits
# (the runner's timeout bounds one that hangs)
until curl -sf "http://127.0.0.1:$port/v2/" >/dev/null; do
	kill -0 $registry 2>/dev/null || { cat registry.log; fail "docker-registry did not start"; }
	sleep 0.1
done
R=127.0.0.1:$port

log "an image converted by anole into the registry (acc) and a second one (other)"
umoci init --layout img >/dev/null
umoci new --image img:v1 >/dev/null
umoci unpack --image img:v1 b >/dev/null
mkdir -p b/rootfs/etc
echo "signed content" >b/rootfs/etc/motd
head -c 200000 /dev/urandom >b/rootfs/etc/blob
umoci repack --image img:v1 b >/dev/null
umoci unpack --image img:v1 ref1 >/dev/null
skopeo copy -q --dest-tls-verify=false oci:img:v1 "docker://$R/src:v1" || fail "skopeo push"
"$ANOLE" image convert -q "docker://$R/src:v1" -o "docker://$R/acc:v1" >/dev/null || fail "convert"
"$ANOLE" image convert -q "docker://$R/src:v1" -o "docker://$R/other:v1" >/dev/null || fail "convert 2"
"$ANOLE" image keygen -o ec.pem >/dev/null || fail "keygen"
"$ANOLE" image keygen -a sm2 -o sm2.pem >/dev/null || fail "keygen sm2"
"$ANOLE" image keygen -o stranger.pem >/dev/null || fail "keygen stranger"
"$ANOLE" image sign --key ec.pem "docker://$R/acc:v1" >/dev/null || fail "sign"
"$ANOLE" image sign --key stranger.pem "docker://$R/other:v1" >/dev/null || fail "sign other"

cat >policy.json <<EOC
{
  "default": [{"type": "reject"}],
  "transports": {
    "docker": {"$R": [{"type": "sigstoreSigned", "keyPath": "$WORK/ec.pub"}]},
    "oci": {"": [{"type": "sigstoreSigned", "keyPaths": ["$WORK/stranger.pub", "$WORK/sm2.pub"]}]},
    "file": {"$WORK": [{"type": "sigstoreSigned", "keyData": "$(base64 -w0 sm2.pub)"}]}
  }
}
EOC
mkdir -p mnt
# refused_mount REF WHAT PATTERN: the mount fails, says PATTERN, fetched nothing
refused_mount() {
	local rc=0 cache="cache-refused-$RANDOM"
	"$ANOLE" image mount "$1" mnt --cache "$cache" --policy policy.json "${@:4}" 2>mount.err || rc=$?
	cat mount.err
	check_not_crashed "$rc" "mount $1"
	[ "$rc" = 1 ] || fail "$2: mount exited $rc, expected 1 (refused)"
	assert_grep "$3" mount.err "$2: the reason"
	! mountpoint -q mnt || fail "$2: mounted anyway"
	[ -z "$(find "$cache" -type f 2>/dev/null)" ] || fail "$2: data fetched before the refusal: $(find "$cache" -type f)"
}

log "the signed registry image mounts (kernel EROFS) under the policy"
"$ANOLE" image mount "docker://$R/acc:v1" mnt --mode kernel --cache cache1 --policy policy.json ||
	fail "mount the signed image"
add_mount "$WORK/mnt"
compare_trees ref1/rootfs mnt
"$ANOLE" image umount mnt || fail "umount"

log "refused: unsigned, another key, a name not covered by the policy"
refused_mount "docker://$R/src:v1" "unsigned" "no signature"
refused_mount "docker://$R/other:v1" "another key" "does not verify"
refused_mount "docker://localhost:$port/acc:v1" "default reject" "rejects it (its default)"

log "pull under the policy: the signed manifest, nothing for the unsigned"
"$ANOLE" image pull --policy policy.json "docker://$R/acc:v1" oci:pulled >/dev/null || fail "pull signed"
assert_grep "v1" pulled/index.json "the pulled layout's tag"
rc=0; "$ANOLE" image pull --policy policy.json "docker://$R/src:v1" oci:pulled2 2>pull.err || rc=$?
cat pull.err
assert_eq "$rc" 1 "pull of the unsigned image"
[ ! -e pulled2 ] || fail "a refused pull wrote a layout"

log "tamper: acc:v1 pointed at other bytes after signing"
skopeo copy -q --src-tls-verify=false --dest-tls-verify=false "docker://$R/src:v1" "docker://$R/acc:v1" ||
	fail "overwrite the tag"
refused_mount "docker://$R/acc:v1" "tampered tag" "no signature"

log "exactReference and keyData; a requirement anole cannot check refuses"
cat >policy-exact.json <<EOC
{"default": [{"type": "reject"}],
 "transports": {"docker": {"$R/other": [{"type": "sigstoreSigned", "keyData": "$(base64 -w0 stranger.pub)",
   "signedIdentity": {"type": "exactReference", "dockerReference": "$R/other:v1"}}]}}}
EOC
"$ANOLE" image mount "docker://$R/other:v1" mnt --mode fuse --cache cache2 --policy policy-exact.json ||
	fail "mount with keyData + exactReference"
add_mount "$WORK/mnt"
compare_trees ref1/rootfs mnt
"$ANOLE" image umount mnt || fail "umount"
echo '{"default": [{"type": "signedBy", "keyType": "GPGKeys", "keyPath": "/x"}]}' >policy-gpg.json
rc=0; "$ANOLE" image mount "docker://$R/other:v1" mnt --policy policy-gpg.json 2>mount.err || rc=$?
cat mount.err
assert_eq "$rc" 1 "mount under a signedBy policy"
assert_grep "cannot check" mount.err "the reason for an unsupported requirement"

log "an oci: layout signed with SM2 mounts; its metadata blob altered is refused"
"$ANOLE" image pull "docker://$R/other:v1" oci:lay:v1 >/dev/null || fail "pull to a layout"
"$ANOLE" image sign --key sm2.pem oci:lay:v1 >/dev/null || fail "sign the layout"
"$ANOLE" image mount oci:lay:v1 mnt --cache cache3 --policy policy.json || fail "mount the signed layout"
add_mount "$WORK/mnt"
compare_trees ref1/rootfs mnt
"$ANOLE" image umount mnt || fail "umount"
meta=$(python3 - lay <<'EOP'
import json, sys
d = sys.argv[1]
idx = json.load(open(f"{d}/index.json"))
m = [e for e in idx["manifests"] if e["annotations"]["org.opencontainers.image.ref.name"] == "v1"][0]
man = json.load(open(f"{d}/blobs/sha256/{m['digest'][7:]}"))
print([l for l in man["layers"] if l["mediaType"].endswith("metadata.v1.erofs")][0]["digest"][7:])
EOP
)
python3 -c 'import sys; f = open(sys.argv[1], "r+b"); f.seek(2000); b = f.read(1); f.seek(2000); f.write(bytes([b[0] ^ 1]))' \
	"lay/blobs/sha256/$meta"
refused_mount oci:lay:v1 "altered metadata blob" "not sha256:$meta as the signed manifest says"

log "a plain image file: FILE.sig checked, a changed file refused"
mkdir -p tree && echo file-image >tree/hello
"$ANOLE" image build -q tree -o "$WORK/plain.erofs" --blob-dir blobs >/dev/null || fail "build"
"$ANOLE" image sign --key sm2.pem "$WORK/plain.erofs" >/dev/null || fail "sign the file"
"$ANOLE" image mount "$WORK/plain.erofs" mnt --blobs blobs --cache cache4 --mode fuse --policy policy.json ||
	fail "mount the signed file"
add_mount "$WORK/mnt"
assert_eq "$(cat mnt/hello)" file-image "content of the signed file image"
"$ANOLE" image umount mnt || fail "umount"
printf 'x' >>"$WORK/plain.erofs"
refused_mount "$WORK/plain.erofs" "changed file" "not signed by the key" --blobs blobs
log "ok"
