#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole os and registries, on disk images (no boot; t_os_boot.sh boots):
#   - os build --from an OCI layout (umoci), from a registry (Debian's
#     docker-registry) and from an anole image gives the root tree of
#     --rootfs, file for file (owner, mode, content, links, xattrs);
#     a policy that rejects the image refuses it;
#   - os push + os upgrade docker://: v2 differs from v1 by one package, and
#     the registry's own access log shows that the upgrade fetched a small
#     fraction of the image (the rest copied from the slot in use); anole's
#     bytes_fetched is what the registry sent;
#   - an upgrade killed mid-fetch (a proxy that stops answering halfway
#     through a blob) leaves the good slot booting next and the target
#     invalid; the same upgrade run again completes;
#   - unsigned, wrongly signed and tampered (root.erofs, one byte) images
#     from the registry are refused, the slot in use untouched.
. "$TESTDIR/lib.sh"
. "$TESTDIR/os_lib.sh"
need_root
need_anole
need_cmd busybox syslinux mcopy mkfs.fat mkfs.ext4 openssl docker-registry umoci curl
[ -n "$(os_kernel_release)" ] || skip "needs a Debian kernel in /boot and /lib/modules (linux-image-amd64)"
[ -f /usr/lib/syslinux/mbr/mbr.bin ] || skip "needs syslinux-common (mbr.bin)"

cd "$WORK"
state() { "$ANOLE" os status --disk "$1" --json | "$PY" -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
jget() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }
expect_error() {
	local pat=$1 rc; shift
	run_rc rc "$@" 2>err.txt
	check_not_crashed "$rc" "$*"
	assert_eq "$rc" 1 "exit of '$*'"
	assert_grep "$pat" err.txt "'$*'"
}
# reg_bytes FROM_LINE: body bytes of the registry's GET answers logged after
# line FROM_LINE of its access log (combined format: "GET ..." STATUS BYTES)
reg_bytes() {
	tail -n +"$(($1 + 1))" "$WORK/reg.log" | "$PY" -c '
import re, sys
print(sum(int(m.group(1)) for m in re.finditer(r"\"GET [^\"]*\" [0-9]{3} ([0-9]+)", sys.stdin.read())))'
}
# root_tree OS_IMAGE DIR: the image's root tree, unpacked
root_tree() {
	tar -xOf "$1" root.erofs >"$2.erofs"
	"$ANOLE" image unpack -q "$2.erofs" "$2"
}

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
openssl pkey -in key.pem -pubout -out pub.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out other.pem 2>/dev/null
os_mkroot root v1
"$ANOLE" os build -q --rootfs root --version v1 --key key.pem --compress lz4 -o v1.os

PORT=$(free_port)
start_registry reg "$PORT"
R=127.0.0.1:$PORT

log "os build --from an OCI layout and from a registry"
umoci init --layout img >/dev/null
umoci new --image img:r1 >/dev/null
umoci unpack --image img:r1 bundle >/dev/null
cp -a root/. bundle/rootfs/
umoci repack --image img:r1 bundle >/dev/null
"$ANOLE" image push oci:img:r1 "docker://$R/rootfs:r1" >/dev/null
"$ANOLE" os build -q --from oci:img:r1 --version f1 --key key.pem --compress lz4 -o from-oci.os
"$ANOLE" os build -q --from "docker://$R/rootfs:r1" --version f1 --key key.pem --compress lz4 -o from-reg.os
# and an anole image (convert's output: metadata layer + blobs) as it is
"$ANOLE" image convert oci:img:r1 -o oci:acc:r1 >/dev/null
"$ANOLE" os build -q --from oci:acc:r1 --version f1 --key key.pem --compress lz4 -o from-acc.os
for f in from-oci from-reg from-acc; do
	root_tree "$f.os" "$f.tree"
	# every field but mtime: a layer tar keeps whole seconds
	compare_trees root "$f.tree" --ignore mtime -q
	assert_eq "$(tar -xOf "$f.os" manifest.json | grep -c '"kernel_release": "'"$(os_kernel_release)"'"')" 1 "$f's kernel"
done
printf '{"default": [{"type": "reject"}]}\n' >reject.json
expect_error "rejects" "$ANOLE" os build -q --from "docker://$R/rootfs:r1" --policy reject.json \
	--version f1 --key key.pem -o x.os
assert_missing x.os
assert_rc 2 "$ANOLE" os build -q --from oci:img:r1 --rootfs root --version f1 --key key.pem -o x.os

log "upgrade from a registry: v2 is v1 plus one package"
mkdir -p root/usr/bin
cp "$(command -v openssl)" root/usr/bin/
echo v2 >root/etc/os-version
"$ANOLE" os build -q --rootfs root --version v2 --key key.pem --compress lz4 -o v2.os
"$ANOLE" os push --json v2.os "docker://$R/os:v2" >push.json
"$ANOLE" os install -q v1.os --disk disk.img --key pub.pem --slot-size 128M
mark=$(wc -l <reg.log)
"$ANOLE" os upgrade --json "docker://$R/os:v2" --disk disk.img >up.json
sent=$(reg_bytes "$mark")
fetched=$(jget up.json bytes_fetched)
image=$(jget up.json image_bytes)
log "registry sent $sent bytes, anole fetched $fetched of a $image-byte image"
assert_eq "$(state disk.img "s['next'], s['tries'], s['slots'][1]['version'], s['slots'][1]['valid']")" "B 3 v2 True" "upgraded from the registry"
"$ANOLE" os verify --disk disk.img --slot B >/dev/null
# what anole counts is what the registry sent, less the tag's manifest
assert_le "$fetched" "$sent" "anole's count against the registry's"
assert_le "$((sent - fetched))" 16384 "registry bytes anole did not count"
# the package is about 1 MB of the image, the chunk table 64 bytes per
# 4 KiB chunk: a fifth of the image is far above both
assert_le "$((sent * 5))" "$image" "bytes the registry sent for a one-package upgrade"
assert_ge "$(jget up.json chunks_local)" 1 "chunks copied from slot A"
"$ANOLE" os mark-good --disk disk.img --slot B

log "an upgrade killed mid-fetch"
dd if=/dev/urandom of=root/usr/bin/big bs=1M count=16 status=none
echo v3 >root/etc/os-version
"$ANOLE" os build -q --rootfs root --version v3 --key key.pem --compress lz4 -o v3.os
"$ANOLE" os push -q v3.os "docker://$R/os:v3"
# blob GETs: the metadata image, manifest.json, manifest.sig, the tails of
# vmlinuz and initrd.img (a file's last, short chunk is not in the slot's
# index), then root.erofs's runs: its changed inodes, the 16 MiB file (two
# runs at least, 8 MiB each at most), ... From the 7th on (the second of
# root.erofs, the first one written into slot A) the proxy answers half a
# body and then nothing, retries included.
"$PY" "$TESTDIR/stall_proxy.py" --upstream "http://$R" --port-file proxy.port \
	--stall-at 7 --stalled-file stalled --max-seconds 120 &
proxy_pid=$!
add_pid "$proxy_pid"
until [ -s proxy.port ]; do
	kill -0 "$proxy_pid" 2>/dev/null || fail "stall_proxy.py did not start"
	sleep 0.1
done
"$ANOLE" os upgrade -q "docker://127.0.0.1:$(cat proxy.port)/os:v3" --disk disk.img --timeout 100000 &
up_pid=$!
add_pid "$up_pid"
until [ -e stalled ]; do
	kill -0 "$up_pid" 2>/dev/null || fail "the upgrade ended before the proxy stalled it"
	sleep 0.1
done
assert_eq "$(state disk.img "s['slots'][0]['valid']")" False "slot A while it is being written"
kill -9 "$up_pid"
wait "$up_pid" 2>/dev/null || true
assert_eq "$(state disk.img "s['next'], s['good'], s['slots'][1]['valid'], s['slots'][0]['valid']")" "B B True False" "after the kill"
"$ANOLE" os verify --disk disk.img --slot B >/dev/null
"$ANOLE" os upgrade -q "docker://$R/os:v3" --disk disk.img
assert_eq "$(state disk.img "s['next'], s['slots'][0]['version'], s['slots'][0]['valid']")" "A v3 True" "the upgrade run again"
"$ANOLE" os verify --disk disk.img --slot A >/dev/null

log "unsigned, wrongly signed and tampered images from the registry"
"$PY" - <<'EOF'
import io, subprocess, tarfile
src = tarfile.open("v2.os")
members = [(m, src.extractfile(m).read()) for m in src.getmembers()]
def write(name, fix):
    with tarfile.open(name, "w", format=tarfile.PAX_FORMAT) as out:
        for m, data in members:
            data = fix(m.name, data)
            if data is None:
                continue
            m.size = len(data)
            out.addfile(m, io.BytesIO(data))
man = {m.name: d for m, d in members}["manifest.json"]
other = subprocess.run(["openssl", "dgst", "-sha256", "-sign", "other.pem"], input=man,
                       capture_output=True, check=True).stdout
def flip(d):
    b = bytearray(d); b[len(b) // 2] ^= 0xff; return bytes(b)
write("unsigned.os", lambda n, d: None if n == "manifest.sig" else d)
write("wrongkey.os", lambda n, d: other if n == "manifest.sig" else d)
write("tampered.os", lambda n, d: flip(d) if n == "root.erofs" else d)
EOF
for bad in unsigned wrongkey tampered; do
	"$ANOLE" os push -q "$bad.os" "docker://$R/os:$bad"
done
"$ANOLE" os mark-good --disk disk.img --slot A
expect_error "unsigned" "$ANOLE" os upgrade -q "docker://$R/os:unsigned" --disk disk.img
expect_error "does not verify" "$ANOLE" os upgrade -q "docker://$R/os:wrongkey" --disk disk.img
expect_error "does not match its signed digest" "$ANOLE" os upgrade -q "docker://$R/os:tampered" --disk disk.img
assert_eq "$(state disk.img "s['next'], s['good'], s['slots'][0]['valid'], s['slots'][0]['version']")" "A A True v3" "the slot in use after the refusals"
"$ANOLE" os verify --disk disk.img --slot A >/dev/null
log "ok"
