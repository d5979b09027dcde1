#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Lazy mounts over a local blob directory, in kernel and FUSE mode:
# - the tree built with --blob-dir equals the source through both modes;
# - only what is read is fetched; a second mount with the same cache fetches
#   nothing; stats and the Prometheus endpoint report it;
# - a corrupted cache chunk is detected by digest and fetched again;
# - a corrupted blob in the store gives EIO to readers of that chunk, never
#   wrong bytes, while other files still read fine;
# - umount (and SIGTERM) leave no mount and no daemon behind.
. "$TESTDIR/lib.sh"
need_root
need_anole
[ -e /dev/fuse ] || skip "no /dev/fuse"

make_srcfs "$WORK/srcfs"
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 41 --small --parts standard
BLOBS=$WORK/blobs
CACHE=$WORK/cache
IMG=$WORK/meta.img
mkdir -p "$BLOBS" "$WORK/mnt"
"$ANOLE" image build -q "$SRC" -o "$IMG" --blob-dir "$BLOBS" --chunk-size 64K --json >"$WORK/build.json"
BLOB=$(json_get "$WORK/build.json" blob_digest); BLOB=${BLOB#sha256:}
assert_exists "$BLOBS/$BLOB"
assert_eq "sha256:$(sha256sum "$BLOBS/$BLOB" | cut -d' ' -f1)" "$(json_get "$WORK/build.json" blob_digest)" "blob name is its digest"
# a transport blob is not a device: check says so, and how to read the image
rc=0
"$ANOLE" image check -q "$IMG" --device "$BLOBS/$BLOB" >/dev/null 2>"$WORK/devcheck.err" || rc=$?
[ "$rc" -ne 0 ] || fail "image check --device of a transport blob passed"
assert_grep 'built with --blob-dir: its blobs are compressed for transport' "$WORK/devcheck.err" \
	"check --device of a transport blob"

lazy_mount() { # MODE [extra options]
	local mode=$1; shift
	"$ANOLE" image mount "$IMG" "$WORK/mnt" --blobs "$BLOBS" --cache "$CACHE" --mode "$mode" "$@" ||
		fail "anole image mount ($mode) failed"
	echo "$WORK/mnt" >>"$_STATE/mounts"
}
stat_of() { "$ANOLE" image stats "$WORK/mnt" --json >"$WORK/stats.json" && json_get "$WORK/stats.json" "$1"; }
no_daemon() {
	local state
	mountpoint -q "$WORK/mnt" && fail "still mounted after umount"
	state=$(ls /run/anole/mounts 2>/dev/null | wc -l)
	pgrep -f "anole image mount $IMG" >/dev/null && fail "daemon still running"
	true
}

for mode in kernel fuse; do
	log "mode $mode: cold cache"
	rm -rf "$CACHE"
	# kernel mode: metrics on IPv4, open; fuse mode: on IPv6 (where the host
	# has it) with a bearer token
	host=127.0.0.1 family=AF_INET metrics_opts=() curl_auth=()
	if [ "$mode" = fuse ] && python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
		host='[::1]' family=AF_INET6
	fi
	if [ "$mode" = fuse ]; then
		(umask 077; printf 'tok-%s\n' "$RANDOM$RANDOM" >"$WORK/metrics.token")
		metrics_opts=(--metrics-token-file "$WORK/metrics.token")
		curl_auth=(-H "Authorization: Bearer $(cat "$WORK/metrics.token")")
	fi
	port=$(python3 -c "import socket; s=socket.socket(socket.$family); s.bind(('${host//[][]/}', 0)); print(s.getsockname()[1])")
	lazy_mount "$mode" --metrics "$host:$port" "${metrics_opts[@]}"
	assert_eq "$(stat_of bytes_fetched)" 0 "bytes fetched before any read ($mode)"
	# one dense file of 100K..2M (not all holes), read whole
	one=$(python3 - "$SRC" <<'PY'
import os, sys
for root, dirs, files in sorted(os.walk(sys.argv[1])):
    for n in sorted(files):
        p = os.path.join(root, n)
        st = os.lstat(p)
        if os.path.isfile(p) and not os.path.islink(p) and 100_000 < st.st_size < 2_000_000 \
                and st.st_blocks * 512 >= st.st_size:
            print(os.path.relpath(p, sys.argv[1])); sys.exit(0)
sys.exit("no dense file of 100K..2M in the tree")
PY
) || fail "no test file"
	cmp "$SRC/$one" "$WORK/mnt/$one" || fail "$one differs"
	f1=$(stat_of bytes_fetched)
	blob_size=$(file_size "$BLOBS/$BLOB")
	assert_ge "$f1" 1 "one read fetched something ($mode)"
	[ "$f1" -lt "$blob_size" ] || fail "reading one byte fetched the whole blob ($f1 >= $blob_size)"
	compare_trees "$SRC" "$WORK/mnt"
	assert_eq "$(stat_of verify_failures)" 0 "verify failures ($mode)"
	"$ANOLE" image stats "$WORK/mnt" | grep -q "bytes fetched" || fail "text stats"
	curl -sf "${curl_auth[@]}" "http://$host:$port/metrics" >"$WORK/metrics.txt" || fail "no /metrics on $host"
	if [ ${#curl_auth[@]} -gt 0 ]; then
		code=$(curl -s -o /dev/null -w '%{http_code}' "http://$host:$port/metrics")
		assert_eq "$code" 401 "/metrics without the token ($mode)"
	fi
	grep -E '^anole_lazy_fetched_bytes_total\{.*\} [1-9]' "$WORK/metrics.txt" >/dev/null ||
		fail "Prometheus text lacks a non-zero anole_lazy_fetched_bytes_total"
	grep -q '^# TYPE anole_lazy_fetch_latency_seconds histogram' "$WORK/metrics.txt" ||
		fail "Prometheus text lacks the latency histogram"
	"$ANOLE" image umount "$WORK/mnt" || fail "umount ($mode)"
	no_daemon

	log "mode $mode: warm cache fetches nothing"
	lazy_mount "$mode"
	compare_trees "$SRC" "$WORK/mnt"
	assert_eq "$(stat_of bytes_fetched)" 0 "bytes fetched with a warm cache ($mode)"
	"$ANOLE" image umount "$WORK/mnt" || fail "umount ($mode)"
	no_daemon
done

log "a corrupted cache chunk is refetched"
python3 - "$CACHE/$BLOB/data" <<'PY'
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
off = os.lseek(fd, 0, os.SEEK_DATA)
b = os.pread(fd, 1, off)
os.pwrite(fd, bytes([b[0] ^ 0xff]), off)
PY
lazy_mount kernel
compare_trees "$SRC" "$WORK/mnt"
assert_ge "$(stat_of cache_refetches)" 1 "cache refetches after corrupting the cache"
"$ANOLE" image umount "$WORK/mnt"
no_daemon

log "a corrupted blob gives EIO, never wrong bytes"
BAD=$WORK/badblobs; mkdir -p "$BAD"
cp "$BLOBS/$BLOB" "$BAD/$BLOB"
size=$(file_size "$BAD/$BLOB")
printf '\xff\xfe\xfd\xfc' | dd of="$BAD/$BLOB" bs=1 seek=$((size / 2)) conv=notrunc status=none
rm -rf "$CACHE"
"$ANOLE" image mount "$IMG" "$WORK/mnt" --blobs "$BAD" --cache "$CACHE" --mode kernel || fail "mount"
echo "$WORK/mnt" >>"$_STATE/mounts"
python3 - "$SRC" "$WORK/mnt" <<'PY' || fail "a reader got wrong bytes"
import errno, os, sys
src, mnt = sys.argv[1], sys.argv[2]
good = eio = 0
for root, dirs, files in os.walk(src):
    for name in files:
        p = os.path.join(root, name)
        if os.path.islink(p) or not os.path.isfile(p):
            continue
        q = os.path.join(mnt, os.path.relpath(p, src))
        want = open(p, "rb").read()
        try:
            got = open(q, "rb").read()
        except OSError as e:
            if e.errno != errno.EIO:
                raise
            eio += 1
            continue
        if got != want:
            sys.exit(f"WRONG BYTES in {q}")
        good += 1
print(f"{good} files read intact, {eio} gave EIO")
if eio == 0:
    sys.exit("the corrupted chunk was never detected")
if good == 0:
    sys.exit("no file could be read")
PY
assert_ge "$(stat_of verify_failures)" 1 "verify failures with a corrupted blob"
"$ANOLE" image umount "$WORK/mnt"
no_daemon

log "SIGTERM to the daemon unmounts"
lazy_mount kernel
# the daemon's state directory is named by the mount point's sha256
state=/run/anole/mounts/$(printf '%s' "$(realpath "$WORK/mnt")" | sha256sum | cut -c1-16)
pid=$(awk '{print $1}' "$state/pid" 2>/dev/null)   # pid start-time boot-id
[ -n "$pid" ] || fail "no pid file"
kill -TERM "$pid"
for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$pid" 2>/dev/null && fail "daemon did not exit on SIGTERM"
mountpoint -q "$WORK/mnt" && fail "SIGTERM left a stale mount"
log "ok"
