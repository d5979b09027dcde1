#!/bin/bash
# make demo: build an EROFS image of a tree made here, mount it with the
# kernel, prove it equals the source, then check, inspect and unpack it;
# sign and verify it (ECDSA, SM2 checked by openssl), mount it under a
# trust policy, and mount an encrypted build with its key.
# then start a console with this machine's agent as its one host, print its
# URL and a one-time admin password, and stop both.
set -euo pipefail
ANOLE=$(realpath "${1:-build/anole}")
COMPARE=$(realpath "$(dirname "$0")/../tests/compare.py")
WORK=$(mktemp -d /tmp/anole-demo.XXXXXX)
MNT=$WORK/mnt
HTTPD_PID=
CONSOLE_PID=
AGENT_PID=
cleanup() {
	local p
	for p in $AGENT_PID $CONSOLE_PID; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	if mountpoint -q "$MNT" 2>/dev/null; then
		"$ANOLE" image umount "$MNT" 2>/dev/null || umount "$MNT"
	fi
	[ -n "$HTTPD_PID" ] && kill "$HTTPD_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Making a source tree in $WORK/src"
SRC=$WORK/src
mkdir -p "$SRC"/{bin,etc,data/nested/deeper,dev}
cp -a /usr/bin/{ls,cat,sh,env} "$SRC/bin/" 2>/dev/null || cp -a /bin/ls /bin/cat "$SRC/bin/"
cp -a /etc/os-release /etc/passwd "$SRC/etc/" 2>/dev/null || true
cp -a /usr/share/common-licenses "$SRC/data/" 2>/dev/null || true
ln -s ../etc/os-release "$SRC/data/os-release"
ln "$SRC/etc/passwd" "$SRC/data/nested/passwd-hardlink"
mknod "$SRC/dev/null" c 1 3
mkfifo "$SRC/dev/fifo"
truncate -s 2G "$SRC/data/sparse.img"
printf 'written in the middle' | dd of="$SRC/data/sparse.img" bs=1 seek=1073741824 conv=notrunc status=none
setfattr -n user.demo -v "anole" "$SRC/data/nested"
setfattr -n security.capability -v 0sAQAAAgAgAAAAAAAAAAAAAAAAAAA= "$SRC/bin/ls" 2>/dev/null || true
setfacl -m u:1234:rx "$SRC/data/nested/deeper" 2>/dev/null || true
chown 70000:4000000000 "$SRC/data/nested/deeper"
chmod 4755 "$SRC/bin/env" 2>/dev/null || true
du -sh --apparent-size "$SRC" | sed 's/^/  apparent size: /'

step "anole image build"
"$ANOLE" image build "$SRC" -o "$WORK/demo.img"
ls -l "$WORK/demo.img"

step "mount -t erofs (the Linux kernel reads the image)"
mkdir -p "$MNT"
mount -t erofs -o ro "$WORK/demo.img" "$MNT"
ls -la "$MNT" "$MNT/data/nested"
"$MNT/bin/ls" --version | head -1 | sed 's/^/  running a binary from the image: /'
python3 "$COMPARE" "$SRC" "$MNT" && echo "  compare: the mounted image equals the source, field by field"
getfattr --absolute-names -h -n user.demo "$MNT/data/nested" | grep user.demo
stat -c '  %n: uid %u gid %g mode %a' "$MNT/data/nested/deeper"
umount "$MNT"

step "anole image check"
"$ANOLE" image check "$WORK/demo.img"

step "anole image inspect (superblock, then one path)"
"$ANOLE" image inspect "$WORK/demo.img"
"$ANOLE" image inspect "$WORK/demo.img" /data/sparse.img | grep -v -E "^(ino|inode_size|xattr_size) "

step "compressed: anole image build -z lz4hc -C 64K --fragments (the kernel decompresses on read)"
"$ANOLE" image build "$SRC" -o "$WORK/demo-z.img" -z lz4hc -C 64K --fragments
ls -l "$WORK/demo.img" "$WORK/demo-z.img"
mount -t erofs -o ro "$WORK/demo-z.img" "$MNT"
python3 "$COMPARE" "$SRC" "$MNT" && echo "  compare: the compressed image equals the source"
umount "$MNT"
"$ANOLE" image check "$WORK/demo-z.img"
"$ANOLE" image inspect "$WORK/demo-z.img" /bin/ls | grep -E "^(layout|algorithm|compressed|extents)" || true

step "chunked + blob (the layout lazy loading uses)"
"$ANOLE" image build "$SRC" -o "$WORK/meta.img" --chunk-size 64K --blob "$WORK/data.blob"
ls -l "$WORK/meta.img" "$WORK/data.blob"
python3 - "$WORK/meta.img" "$MNT" "$WORK/data.blob" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.mount(sys.argv[1].encode(), sys.argv[2].encode(), b"erofs", 1,
              ("device=" + sys.argv[3]).encode()) != 0:
    sys.exit("mount: " + os.strerror(ctypes.get_errno()))
PY
python3 "$COMPARE" "$SRC" "$MNT" && echo "  compare: metadata image + blob equal the source"
umount "$MNT"

step "lazy mount: start from the image before it is downloaded"
"$ANOLE" image build "$SRC" -q -o "$WORK/lazy.img" --blob-dir "$WORK/blobs" --chunk-size 256K
ls -l "$WORK/lazy.img" "$WORK/blobs"
python3 "$(dirname "$COMPARE")/httpd_fault.py" --dir "$WORK/blobs" --host 127.0.0.1 --port 0 \
	--port-file "$WORK/port" --max-seconds 600 >"$WORK/httpd.log" 2>&1 &
HTTPD_PID=$!
for _ in $(seq 50); do [ -s "$WORK/port" ] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$WORK/port")/blobs"
echo "  blobs served over HTTP at $URL"
"$ANOLE" image mount "$WORK/lazy.img" "$MNT" --blobs "$URL" --cache "$WORK/cache"
"$ANOLE" image stats "$MNT" | grep -E "bytes fetched|chunks present"
"$MNT/bin/ls" -l "$MNT/etc" | sed 's/^/  /'
echo "  after running bin/ls from the mount:"
"$ANOLE" image stats "$MNT" | grep -E "bytes fetched|chunks present"
python3 - "$("$ANOLE" image stats "$MNT" --json)" "$(stat -c %s "$WORK/lazy.img")" \
	"$(du -cb "$WORK"/blobs/* | tail -1 | cut -f1)" <<'PY'
import json, sys
st, img, blob = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
print(f"  fetched {st['bytes_fetched']} bytes of {img + blob} "
      f"({100 * st['bytes_fetched'] / (img + blob):.1f}% of metadata image + blobs)")
PY
python3 "$COMPARE" "$SRC" "$MNT" && echo "  compare: the lazily mounted tree equals the source"
"$ANOLE" image stats "$MNT" | grep -E "bytes fetched|chunks present"
"$ANOLE" image umount "$MNT"
echo "  unmounted; the daemon stopped"

step "sign and verify: ECDSA P-256 and SM2 (cosign's payload; FILE.sig beside an image file)"
"$ANOLE" image keygen -o "$WORK/ec.pem"
"$ANOLE" image keygen -a sm2 -o "$WORK/sm2.pem"
"$ANOLE" image sign --key "$WORK/ec.pem" "$WORK/lazy.img"
"$ANOLE" image sign --key "$WORK/sm2.pem" "$WORK/lazy.img"
"$ANOLE" image verify --key "$WORK/sm2.pub" "$WORK/lazy.img"
python3 - "$WORK/lazy.img.sig" "$WORK" <<'PY'
import base64, json, sys
for s in json.load(open(sys.argv[1]))["signatures"]:
    if s["algorithm"] == "sm2-sm3":
        open(sys.argv[2] + "/payload", "wb").write(base64.b64decode(s["payload"]))
        open(sys.argv[2] + "/sm2.sig", "wb").write(base64.b64decode(s["signature"]))
PY
printf '  openssl, given only the public key and the payload: '
openssl dgst -sm3 -verify "$WORK/sm2.pub" -signature "$WORK/sm2.sig" \
	-sigopt distid:1234567812345678 "$WORK/payload"
cp "$WORK/lazy.img" "$WORK/tampered.img"
cp "$WORK/lazy.img.sig" "$WORK/tampered.img.sig"
printf 'x' >>"$WORK/tampered.img"
if "$ANOLE" image verify --key "$WORK/ec.pub" "$WORK/tampered.img"; then
	echo "  a tampered image verified: this is a bug" >&2
	exit 1
fi
echo "  the tampered copy is refused"
cat >"$WORK/policy.json" <<EOC
{"default": [{"type": "reject"}],
 "transports": {"file": {"$WORK": [{"type": "sigstoreSigned", "keyPath": "$WORK/ec.pub"}]}}}
EOC
"$ANOLE" image mount "$WORK/lazy.img" "$MNT" --blobs "$URL" --cache "$WORK/cache" \
	--policy "$WORK/policy.json"
echo "  mounted under a policy that requires the ECDSA signature: $(ls "$MNT" | tr '\n' ' ')"
"$ANOLE" image umount "$MNT"
if "$ANOLE" image mount "$WORK/tampered.img" "$MNT" --blobs "$URL" --cache "$WORK/cache" \
	--policy "$WORK/policy.json"; then
	echo "  a tampered image mounted under the policy: this is a bug" >&2
	exit 1
fi
echo "  the tampered copy is refused by the mount too"

step "encrypted blobs: build --encrypt-key, mount --decrypt-key"
openssl rand -hex 32 >"$WORK/blob.key"
"$ANOLE" image build "$SRC" -q -o "$WORK/enc.img" --blob-dir "$WORK/enc-blobs" \
	--encrypt-key "$WORK/blob.key" --cipher sm4-ctr
if "$ANOLE" image mount "$WORK/enc.img" "$MNT" --blobs "$WORK/enc-blobs" --cache "$WORK/cache-enc"; then
	echo "  mounted without the key: this is a bug" >&2
	exit 1
fi
"$ANOLE" image mount "$WORK/enc.img" "$MNT" --blobs "$WORK/enc-blobs" --cache "$WORK/cache-enc" \
	--decrypt-key "$WORK/blob.key"
python3 "$COMPARE" "$SRC" "$MNT" && echo "  compare: the SM4-encrypted image, decrypted on read, equals the source"
"$ANOLE" image umount "$MNT"

step "anole image unpack"
"$ANOLE" image unpack "$WORK/demo.img" "$WORK/out"
python3 "$COMPARE" "$SRC" "$WORK/out" && echo "  compare: the unpacked tree equals the source"
if "$ANOLE" console --help >/dev/null 2>&1 && "$ANOLE" monitor --help 2>&1 | grep -q -- --console; then
	step "anole console: the operations console, with this machine as its one host"
	DATA=$WORK/console
	PASS=$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')
	printf '%s\n' "$PASS" | "$ANOLE" console user add admin --role admin --data "$DATA"
	(umask 077; "$ANOLE" console token create --data "$DATA" --note demo >"$WORK/agent.token")
	"$ANOLE" console serve --listen 127.0.0.1:0 --data "$DATA" --port-file "$WORK/console.port" \
		--scrape-interval 5 --heartbeat-interval 1 >"$WORK/console.log" 2>&1 &
	CONSOLE_PID=$!
	for _ in $(seq 100); do [ -s "$WORK/console.port" ] && break; sleep 0.1; done
	CURL="http://127.0.0.1:$(cat "$WORK/console.port")"
	"$ANOLE" monitor --listen 127.0.0.1:0 --interval 5 --console "$CURL" \
		--token-file "$WORK/agent.token" --name "$(hostname -s | tr -c 'A-Za-z0-9._\n-' _)" \
		>"$WORK/agent.log" 2>&1 &
	AGENT_PID=$!
	# the host is listed as up once the agent's first heartbeat arrived
	python3 - "$CURL" "$PASS" <<'PY'
import http.cookiejar, json, sys, time, urllib.request
url, pw = sys.argv[1], sys.argv[2]
o = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
o.open(urllib.request.Request(url + "/api/v1/login", json.dumps({"user": "admin", "password": pw}).encode(),
                              {"Content-Type": "application/json"}), timeout=10)
for _ in range(100):
    hosts = json.load(o.open(url + "/api/v1/hosts", timeout=10))
    if any(h["status"] == "up" for h in hosts):
        break
    time.sleep(0.2)
for h in hosts:
    print(f"  host {h['name']} at {h['address']}: {h['status']}")
PY
	echo
	echo "  console:  $CURL/"
	echo "  user:     admin"
	echo "  password: $PASS   (made for this demo only)"
	if [ -t 0 ]; then
		read -r -p "  open it in a browser; press Enter to stop the console and the agent " _
	fi
	kill -TERM "$AGENT_PID" "$CONSOLE_PID"
	rc=0
	wait "$AGENT_PID" || rc=$?
	wait "$CONSOLE_PID" || rc=$?
	AGENT_PID= CONSOLE_PID=
	[ "$rc" -eq 0 ] && echo "  console and agent stopped" || echo "  console or agent exited $rc" >&2
fi

echo
echo "demo done."
