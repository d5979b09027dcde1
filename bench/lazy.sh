#!/bin/bash
# Lazy mounts (`anole image mount`) against their baselines, in one run.
#
#   bench/lazy.sh [ANOLE]     (default build/anole; run as root; ~3 minutes, more
#                             the first time: debootstrap, tar czf, fio tree)
#
# (a) start fetch: bytes fetched to run START (below) from a cold lazy mount
#     of the rootfs image, over the size of what a full download would move
#     (metadata image + blob). Chunk sizes 256K and 1M. The debootstrap tree
#     of bench/build.sh keeps 80 MB of apt lists and downloaded .debs that a
#     container image would not ship, so a "slim" copy without them is
#     measured too. Every mount is compared with its tree afterwards.
# (b) cold start over a 100 Mbit/s path: a network namespace with a veth
#     pair (10.203.0.1 here, 10.203.0.2 there; tbf 100mbit both ways) and
#     tests/httpd_fault.py serving the blobs, metadata images and a tar.gz of
#     the tree inside it. Baseline: curl | tar xz, then START in a chroot.
#     anole: curl the metadata image, `anole image mount --blobs http://..`,
#     then START in a chroot. Page cache dropped before each run; REPEAT
#     runs alternating; median.
# (c) warm 4K reads (fio psync, bs=4k, --rw=read and randread) of a 512 MiB
#     file of mixed random/text/sparse-ish data added to a copy of the tree:
#     through a kernel-mode lazy mount made once the chunk cache is fully
#     populated (the kernel then reads the verified cache file directly), and
#     through the kernel-mode mount that populated it (reads via FUSE),
#     vs the same tree built with --blob (uncompressed) and mounted from local
#     files over loop devices (`mount -t erofs -o device=/dev/loopN`). The
#     local blob and the chunk cache sit on a tmpfs, so that dropping the
#     page cache empties EROFS's and FUSE's caches but no read waits on the
#     disk, whose speed in a shared VM swings with the host's cache. With
#     C_ON_DISK=1 both stay on disk and the kernel's file-backed EROFS
#     (mount(2) with device=/abs/path, refused on tmpfs) is measured too; the
#     faster local mount in each test is the baseline. FUSE mode is reported
#     too. Page cache dropped before each fio run; median of REPEAT
#     (REPEAT*2-1 for the short sequential runs), with the ratio of the best
#     runs beside it: other work on the machine moves these numbers a lot,
#     and the table shows the spread.
#
# Targets (reported, not enforced): (a) <= 10%, (b) <= 0.3x, (c) >= 0.95x.
# Trees, images and the tar.gz are cached in $BENCH_WORK/lazy (default
# bench/work/lazy). Everything mounted or started is undone on exit.
set -euo pipefail

ANOLE_SRC=$(realpath "${1:-build/anole}")
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(realpath -m "${BENCH_WORK:-bench/work}")
L=$WORK/lazy
REPEAT=${REPEAT:-3}
SEQ_REPEAT=${SEQ_REPEAT:-$((REPEAT * 2 - 1))}
C_ON_DISK=${C_ON_DISK:-0}
START='cat /etc/os-release >/dev/null; ls -l /etc >/dev/null; perl -e 1; apt-get --version >/dev/null'
CHUNKS="256K 1M"
NS=anole-bench-$$
VETH_H=anb$$h VETH_N=anb$$n
HOST_IP=10.203.0.1 NS_IP=10.203.0.2
RATE=100mbit
T_START=$(date +%s.%N)

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -x "$ANOLE_SRC" ] || { echo "bench: no anole binary at $ANOLE_SRC (make)" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "bench: no /dev/fuse" >&2; exit 1; }
mkdir -p "$L"
exec 9>"$L/.lock"
flock -n 9 || { echo "bench: another bench/lazy.sh runs on this machine" >&2; exit 1; }
# our own test hosts only: no proxy may sit in between
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=$NS_IP no_proxy=$NS_IP

# A private copy: a rebuild of build/anole during the run must not mix versions.
mkdir -p "$L/bin"
cp -p "$ANOLE_SRC" "$L/bin/anole.new" && mv -f "$L/bin/anole.new" "$L/bin/anole"
ANOLE=$L/bin/anole

need() { command -v "$1" >/dev/null || apt-get install -y -q --no-install-recommends "$2" >/dev/null; }
need debootstrap debootstrap
need fio fio
need curl curl
need bc bc
need tc iproute2
need losetup mount

# ------------------------------------------------------------------ cleanup
LAZY_MNTS=() KERN_MNTS=() LOOPS=() SRV_PID= TMPFS=
cleanup() {
	local rc=$? m
	set +e
	for m in "${LAZY_MNTS[@]}"; do
		[ -n "$m" ] || continue
		"$ANOLE" image umount "$m" 2>/dev/null || "$ANOLE" image umount --lazy "$m" 2>/dev/null
	done
	for m in "${KERN_MNTS[@]}"; do
		[ -n "$m" ] && mountpoint -q "$m" && { umount "$m" || umount -l "$m"; }
	done
	for m in "${LOOPS[@]}"; do   # "DEV FILE": only while still ours
		[ -n "$m" ] && [ "$(losetup -n -O BACK-FILE "${m%% *}" 2>/dev/null)" = "${m#* }" ] &&
			losetup -d "${m%% *}"
	done
	[ -n "$TMPFS" ] && mountpoint -q "$TMPFS" && umount "$TMPFS"
	if [ -n "$SRV_PID" ]; then
		kill "$SRV_PID" 2>/dev/null
		[ -f "$L/srv.pid" ] && [ "$(cat "$L/srv.pid")" != "$SRV_PID" ] && kill "$(cat "$L/srv.pid")" 2>/dev/null
		wait "$SRV_PID" 2>/dev/null
		rm -f "$L/srv.pid"
	fi
	ip netns pids "$NS" 2>/dev/null | while read -r p; do kill "$p" 2>/dev/null; done
	ip netns del "$NS" 2>/dev/null
	ip link del "$VETH_H" 2>/dev/null
	# never remove under a mount that did not go away
	findmnt -rn -o TARGET | grep -q "^$L/run/" || rm -rf "$L/run"
	[ $rc = 0 ] || echo "bench: failed (exit $rc); daemon logs are under /run/anole/mounts/*/log" >&2
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

forget() {    # ARRAY-NAME VALUE: drop VALUE from the cleanup list
	local -n arr=$1
	local i
	for i in "${!arr[@]}"; do [ "${arr[$i]}" = "$2" ] && unset "arr[$i]"; done
	return 0
}

# ------------------------------------------------------------------ helpers
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
calc() { echo "$*" | bc -l; }
mib() { awk -v b="$1" 'BEGIN {printf "%.1f", b / 1048576}'; }
pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.1f", 100 * a / b}'; }
jget() {      # FILE KEY[.KEY...]
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d = d[int(k)] if isinstance(d, list) else d[k]
print(d)' "$1" "$2"
}
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
stale() {     # TARGET DEP...: true when TARGET is missing or older than a DEP
	local t=$1 d; shift
	[ -e "$t" ] || return 0
	for d; do [ "$d" -nt "$t" ] && return 0; done
	return 1
}

lazy_mount() {    # IMG MNT STORE CACHE MODE [MOUNT OPTIONS...]
	mkdir -p "$2"
	"$ANOLE" image mount "$1" "$2" --blobs "$3" --cache "$4" --mode "$5" "${@:6}" ||
		{ echo "bench: anole image mount $1 ($5 mode, $3) failed" >&2; return 1; }
	LAZY_MNTS+=("$2")
}
lazy_umount() {   # MNT
	"$ANOLE" image umount "$1" || { echo "bench: anole image umount $1 failed" >&2; return 1; }
	forget LAZY_MNTS "$1"
}
stats() { "$ANOLE" image stats "$1" --json >"$2"; }

file_mount() {    # IMG MNT BLOB: the kernel's file-backed EROFS, blob as extra device
	mkdir -p "$2"
	python3 - "$1" "$2" "$3" <<'PY'
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.mount(sys.argv[1].encode(), sys.argv[2].encode(), b"erofs", 1,
              ("device=" + sys.argv[3]).encode()) != 0:
    sys.exit("mount %s: %s" % (sys.argv[1], os.strerror(ctypes.get_errno())))
PY
	KERN_MNTS+=("$2")
}
loop_mount() {    # IMG MNT BLOB: over loop devices
	local li lb
	mkdir -p "$2"
	li=$(losetup -f --show -r "$1"); LOOPS+=("$li $(realpath "$1")")
	lb=$(losetup -f --show -r "$3"); LOOPS+=("$lb $(realpath "$3")")
	mount -t erofs -o ro,device="$lb" "$li" "$2"
	KERN_MNTS+=("$2")
}

verify() {        # TREE MNT: every field of every path (tests/compare.py)
	if ! python3 "$ROOT/tests/compare.py" "$1" "$2" >"$L/compare.log" 2>&1; then
		echo "bench: $2 differs from $1 (see $L/compare.log)" >&2
		return 1
	fi
}

# ------------------------------------------------------------------ trees
apt_mirror() {
	# the first Debian URI the host's apt uses (deb822 or one-line format)
	local uri
	uri=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
	[ -n "$uri" ] || uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
	echo "$uri"
}

make_rootfs() {   # the tree of bench/build.sh, shared with it
	local dir=$WORK/rootfs suite
	[ -f "$dir/.done" ] && return 0
	suite=$(. /etc/os-release && echo "$VERSION_CODENAME")
	rm -rf "$dir"
	echo "bench: debootstrap --variant=minbase $suite (once)" >&2
	debootstrap --variant=minbase "$suite" "$dir" "$(apt_mirror)" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail "$WORK/debootstrap.log" >&2; return 1; }
	touch "$dir/.done"
}

TARX=(--numeric-owner --xattrs --xattrs-include='*' --acls)

make_slim() {     # the rootfs as a container image ships it: no apt lists, no .debs
	local dir=$L/slim
	stale "$dir/.done" "$WORK/rootfs/.done" || return 0
	rm -rf "$dir"; mkdir -p "$dir"
	tar -C "$WORK/rootfs" "${TARX[@]}" --exclude=./.done \
		--exclude='./var/cache/apt/archives/*.deb' --exclude='./var/lib/apt/lists/*' -cf - . |
		tar -C "$dir" "${TARX[@]}" -xpf -
	touch "$dir/.done"
}

make_targz() {
	stale "$L/rootfs.tar.gz" "$WORK/rootfs/.done" || return 0
	echo "bench: tar czf of the rootfs (once)" >&2
	tar -C "$WORK/rootfs" "${TARX[@]}" --exclude=./.done -czf "$L/rootfs.tar.gz.tmp" .
	mv "$L/rootfs.tar.gz.tmp" "$L/rootfs.tar.gz"
}

make_fio_tree() { # a copy of the rootfs + big/mixed.bin (512 MiB)
	local dir=$L/fio-tree
	stale "$dir/.done" "$WORK/rootfs/.done" || return 0
	echo "bench: fio tree (once)" >&2
	rm -rf "$dir"
	cp -a "$WORK/rootfs" "$dir"
	rm -f "$dir/.done"
	mkdir -p "$dir/big"
	python3 - "$dir/big/mixed.bin" "$WORK/rootfs" <<'PY'
# 64 KiB blocks, seeded: 40% random bytes, 45% text from the tree's own
# /usr/share (compresses ~3x), 15% a short pattern then zeroes.
import os, random, sys
out, root = sys.argv[1], sys.argv[2]
corpus = bytearray()
for d, dirs, files in os.walk(os.path.join(root, "usr/share")):
    dirs.sort()
    for n in sorted(files):
        p = os.path.join(d, n)
        if os.path.isfile(p) and not os.path.islink(p) and not n.endswith((".gz", ".xz", ".bz2")):
            try:
                corpus += open(p, "rb").read(65536)
            except OSError:
                pass
    if len(corpus) >= 32 << 20:
        break
B = 64 << 10
if len(corpus) < 4 * B:
    sys.exit("bench: too little text in the tree for the fio file")
rng = random.Random(20240601)
with open(out + ".tmp", "wb") as f:
    for _ in range((512 << 20) // B):
        r = rng.random()
        if r < 0.40:
            f.write(rng.randbytes(B))
        elif r < 0.85:
            o = rng.randrange(0, len(corpus) - B)
            f.write(corpus[o:o + B])
        else:
            f.write(bytes([rng.randrange(256)]) * 1024 + rng.randbytes(64) + bytes(B - 1088))
os.rename(out + ".tmp", out)
PY
	touch "$dir/.done"
}

build_lazy() {    # TREE OUT_PREFIX CHUNK: OUT.img, OUT.blobs/, OUT.json
	local tree=$1 out=$2 cs=$3
	stale "$out.json" "$tree/.done" "$ANOLE_SRC" || return 0
	rm -rf "$out.blobs" "$out.json"; mkdir -p "$out.blobs"
	"$ANOLE" image build -q "$tree" -o "$out.img" --blob-dir "$out.blobs" --chunk-size "$cs" \
		--json >"$out.json.tmp"
	mv "$out.json.tmp" "$out.json"
}
blob_of() { local h; h=$(jget "$1.json" blob_digest); echo "${h#sha256:}"; }

# ------------------------------------------------------------------ (a)
declare -A A_PCT A_META_PCT A_FETCH A_TOTAL
bench_a() {
	local tree name cs out mnt=$L/run/mnt-a st img blob fetched
	echo
	echo "== (a) start fetch: cold kernel-mode lazy mount, local blob directory store"
	echo "   START: $START"
	printf '%-5s %5s %10s %11s %7s %10s %6s %7s %8s %9s\n' tree chunk image_B blob_B chunks \
		fetched_B reqs chunks* fetch% +meta%
	for name in full slim; do
		tree=$WORK/rootfs; [ $name = slim ] && tree=$L/slim
		for cs in $CHUNKS; do
			out=$L/a/$name-$cs
			st=$L/run/a-$name-$cs.json
			rm -rf "$L/run/cache-a"
			lazy_mount "$out.img" "$mnt" "$out.blobs" "$L/run/cache-a" kernel
			chroot "$mnt" /bin/sh -ec "$START" ||
				{ echo "bench: START failed in the lazy mount of $out.img" >&2; return 1; }
			stats "$mnt" "$st"
			verify "$tree" "$mnt"
			lazy_umount "$mnt"
			img=$(stat -c %s "$out.img"); blob=$(jget "$out.json" blob_bytes)
			fetched=$(jget "$st" bytes_fetched)
			A_FETCH[$name-$cs]=$fetched A_TOTAL[$name-$cs]=$((img + blob))
			A_PCT[$name-$cs]=$(pct "$fetched" $((img + blob)))
			A_META_PCT[$name-$cs]=$(pct $((fetched + img)) $((img + blob)))
			printf '%-5s %5s %10d %11d %7d %10d %6d %7d %7s%% %8s%%\n' "$name" "$cs" "$img" "$blob" \
				"$(jget "$st" chunks)" "$fetched" "$(jget "$st" fetch_requests)" \
				"$(jget "$st" chunks_fetched)" "${A_PCT[$name-$cs]}" "${A_META_PCT[$name-$cs]}"
		done
	done
	echo "   fetch% = fetched / (image + blob); +meta% counts the metadata image download too;"
	echo "   chunks* = chunks fetched; every mount was compared with its tree (tests/compare.py) afterwards"
}

# ------------------------------------------------------------------ (b)
SERVE_PY='
import http.server, runpy, sys
bind, script = sys.argv[1], sys.argv[2]
if bind != "10.203.0.2":
    sys.exit("bench: only the namespace address")
# httpd_fault.py binds loopback only; in this private namespace it must
# listen on the veth address the host side reaches.
init = http.server.ThreadingHTTPServer.__init__
def bound(self, addr, *a, **k):
    init(self, (bind, addr[1]), *a, **k)
http.server.ThreadingHTTPServer.__init__ = bound
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
'

setup_net() {
	if ip -4 -o addr show | grep -q " $HOST_IP/"; then
		echo "bench: $HOST_IP is already configured here (another run?)" >&2; return 1
	fi
	ip netns add "$NS"
	ip link add "$VETH_H" type veth peer name "$VETH_N"
	ip link set "$VETH_N" netns "$NS"
	ip addr add "$HOST_IP/24" dev "$VETH_H"
	ip link set "$VETH_H" up
	ip netns exec "$NS" ip link set lo up
	ip netns exec "$NS" ip addr add "$NS_IP/24" dev "$VETH_N"
	ip netns exec "$NS" ip link set "$VETH_N" up
	ip netns exec "$NS" tc qdisc add dev "$VETH_N" root tbf rate $RATE burst 64kb latency 50ms
	tc qdisc add dev "$VETH_H" root tbf rate $RATE burst 64kb latency 50ms

	local srv=$L/srv cs out
	rm -rf "$srv"; mkdir -p "$srv"
	ln -s "$L/rootfs.tar.gz" "$srv/rootfs.tar.gz"
	for cs in $CHUNKS; do
		out=$L/a/full-$cs
		ln -s "$out.img" "$srv/rootfs-$cs.img"
		ln -s "$out.blobs/$(blob_of "$out")" "$srv/$(blob_of "$out")"
	done
	rm -f "$L/srv.port" "$L/srv.pid"
	ip netns exec "$NS" python3 -c "$SERVE_PY" "$NS_IP" "$ROOT/tests/httpd_fault.py" \
		--dir "$srv" --prefix / --port-file "$L/srv.port" --pid-file "$L/srv.pid" \
		--max-seconds 900 >"$L/srv.log" 2>&1 &
	SRV_PID=$!
	for _ in $(seq 100); do [ -s "$L/srv.port" ] && break; sleep 0.1; done
	[ -s "$L/srv.port" ] || { cat "$L/srv.log" >&2; echo "bench: the HTTP server did not start" >&2; return 1; }
	URL=http://$NS_IP:$(cat "$L/srv.port")
}

declare -A B_T
run_tar() {       # REP
	local dir=$L/run/untar t0 t1 t2
	rm -rf "$dir"; mkdir -p "$dir"
	drop_caches
	t0=$(now)
	curl -sf "$URL/rootfs.tar.gz" | tar -C "$dir" "${TARX[@]}" -xzpf -
	t1=$(now)
	chroot "$dir" /bin/sh -ec "$START"
	t2=$(now)
	B_T[tar-$1]=$(calc "$t2 - $t0")
	printf '  run %d  tar.gz   %6.2f s  (download+unpack %.2f s, START %.2f s)\n' "$1" \
		"${B_T[tar-$1]}" "$(calc "$t1 - $t0")" "$(calc "$t2 - $t1")"
	rm -rf "$dir"
}
run_anole() {     # REP CHUNK
	local d=$L/run/b mnt=$L/run/mnt-b t0 t1 t2 t3 st
	rm -rf "$d"; mkdir -p "$d" "$mnt"
	drop_caches
	t0=$(now)
	curl -sf -o "$d/meta.img" "$URL/rootfs-$2.img"
	t1=$(now)
	lazy_mount "$d/meta.img" "$mnt" "$URL/" "$d/cache" kernel
	t2=$(now)
	chroot "$mnt" /bin/sh -ec "$START"
	t3=$(now)
	st=$L/run/b-$1-$2.json
	stats "$mnt" "$st"
	lazy_umount "$mnt"
	B_T[$2-$1]=$(calc "$t3 - $t0")
	printf '  run %d  anole %-4s %5.2f s  (image %.2f s, mount %.2f s, START %.2f s; fetched %s MiB in %d requests, %.0f ms each)\n' \
		"$1" "$2" "${B_T[$2-$1]}" "$(calc "$t1 - $t0")" "$(calc "$t2 - $t1")" "$(calc "$t3 - $t2")" \
		"$(mib "$(jget "$st" bytes_fetched)")" "$(jget "$st" fetch_requests)" \
		"$(calc "$(jget "$st" latency_us_sum) / $(jget "$st" fetch_requests) / 1000")"
	rm -rf "$d"
}

declare -A B_MED
bench_b() {
	local rep cs t0 t1 sz
	echo
	echo "== (b) cold start over $RATE (tbf, both directions; netns $NS)"
	setup_net
	sz=$(stat -c %s "$L/rootfs.tar.gz")
	t0=$(now); curl -sf -o /dev/null "$URL/rootfs.tar.gz"; t1=$(now)
	printf '  link check: rootfs.tar.gz %s MiB in %.2f s = %.1f Mbit/s\n' "$(mib "$sz")" \
		"$(calc "$t1 - $t0")" "$(calc "$sz * 8 / ($t1 - $t0) / 1000000")"
	for rep in $(seq "$REPEAT"); do
		run_tar "$rep"
		for cs in $CHUNKS; do run_anole "$rep" "$cs"; done
	done
	B_MED[tar]=$(for rep in $(seq "$REPEAT"); do echo "${B_T[tar-$rep]}"; done | median)
	printf '  median   tar.gz    %6.2f s\n' "${B_MED[tar]}"
	for cs in $CHUNKS; do
		B_MED[$cs]=$(for rep in $(seq "$REPEAT"); do echo "${B_T[$cs-$rep]}"; done | median)
		printf '  median   anole %-4s %5.2f s = %.3fx\n' "$cs" "${B_MED[$cs]}" \
			"$(calc "${B_MED[$cs]} / ${B_MED[tar]}")"
	done
}

# ------------------------------------------------------------------ (c)
declare -A C_BW C_IOPS C_RSZ
fio_run() {       # TARGET-NAME MNT RW REP
	local out=$L/run/fio-$1-$3-$4.json s0=$L/run/fs0.json s1=$L/run/fs1.json lazy=
	case $1 in kernel|kfuse|fuse) lazy=1 ;; esac
	drop_caches
	[ -n "$lazy" ] && stats "$2" "$s0"
	fio --name="$1-$3" --filename="$2/big/mixed.bin" --rw="$3" --bs=4k --direct=0 --invalidate=1 \
		--ioengine=psync --runtime=10 --size=512M --readonly --output-format=json >"$out" ||
		{ echo "bench: fio $3 on $1 failed" >&2; return 1; }
	if [ -n "$lazy" ]; then
		stats "$2" "$s1"
		[ "$(jget "$s1" bytes_fetched)" = "$(jget "$s0" bytes_fetched)" ] ||
			echo "bench: warning: $1 fetched during fio $3 (cache was not warm)" >&2
		# mean size of the reads the daemon served
		C_RSZ[$1-$3-$4]=$(awk -v b=$(( $(jget "$s1" read_bytes) - $(jget "$s0" read_bytes) )) \
			-v n=$(( $(jget "$s1" reads) - $(jget "$s0" reads) )) 'BEGIN {printf "%.0f", n ? b / n / 1024 : 0}')
	fi
	C_BW[$1-$3-$4]=$(jget "$out" jobs.0.read.bw_bytes)
	C_IOPS[$1-$3-$4]=$(jget "$out" jobs.0.read.iops)
}

declare -A C_MED
bench_c() {
	local tree=$L/fio-tree c=$L/c r=$L/run rep t rw label n k targets place size
	echo
	if [ "$C_ON_DISK" = 1 ]; then
		place=$c targets="file loop kernel kfuse fuse"
		rm -rf "$place/cache"
	else
		# Data that stays in RAM when the page cache is dropped: the disk of a
		# shared VM (host cache hits or misses) would otherwise decide the result.
		# File-backed EROFS refuses tmpfs files, so local goes over loop devices.
		place=$r/tmpfs targets="loop kernel kfuse fuse"
		size=$(( $(stat -c %s "$c/local.blob") + $(jget "$c/lazy.json" blob_uncompressed_bytes) + (256 << 20) ))
		mkdir -p "$place"
		mount -t tmpfs -o size=$size,mode=0700 anole-bench "$place"
		TMPFS=$place
		cp "$c/local.img" "$c/local.blob" "$place/"
	fi
	echo "== (c) warm 4K reads of big/mixed.bin (512 MiB), fio psync, page cache dropped before each run;"
	echo "   local blob and chunk cache on $([ "$C_ON_DISK" = 1 ] && echo "disk" || echo "tmpfs (C_ON_DISK=1: on disk)")"
	# local baselines: uncompressed blob, mounted from local files
	[ "$C_ON_DISK" = 1 ] && file_mount "$place/local.img" "$r/mnt-file" "$place/local.blob"
	loop_mount "$place/local.img" "$r/mnt-loop" "$place/local.blob"
	# kernel mode, cache populated by reading everything once through FUSE
	# (kfuse: that mount stays, as a container that warmed its cache in this
	# session sees it); then a second kernel-mode mount of the warm cache, as
	# a restarted container on the same node gets it: the kernel reads the
	# complete blob straight from the cache (kernel)
	lazy_mount "$c/lazy.img" "$r/mnt-kfuse" "$c/lazy.blobs" "$place/cache" kernel
	find "$r/mnt-kfuse" -type f -print0 | xargs -0 cat >/dev/null
	stats "$r/mnt-kfuse" "$r/c-warm.json"
	lazy_mount "$c/lazy.img" "$r/mnt-kernel" "$c/lazy.blobs" "$place/cache" kernel
	stats "$r/mnt-kernel" "$r/c-direct.json"
	[ "$(jget "$r/c-direct.json" direct_blobs)" = 1 ] ||
		echo "bench: warning: the warm kernel-mode mount does not read the cache directly" >&2
	[ "$(jget "$r/c-warm.json" chunks_present)" = "$(jget "$r/c-warm.json" chunks)" ] ||
		echo "bench: warning: $(jget "$r/c-warm.json" chunks_present) of $(jget "$r/c-warm.json" chunks) chunks cached after reading everything" >&2
	# fuse mode over the same (now full) cache; its first read verifies each chunk once
	lazy_mount "$c/lazy.img" "$r/mnt-fuse" "$c/lazy.blobs" "$place/cache" fuse
	find "$r/mnt-fuse" -type f -print0 | xargs -0 cat >/dev/null
	for t in $targets; do
		cmp "$tree/big/mixed.bin" "$r/mnt-$t/big/mixed.bin" ||
			{ echo "bench: big/mixed.bin reads wrong through the $t mount" >&2; return 1; }
	done
	printf '   cache: %s MiB fetched for %s MiB of blob (compressed); content checked through every mount\n' \
		"$(mib "$(jget "$r/c-warm.json" bytes_fetched)")" "$(mib "$(jget "$c/lazy.json" blob_bytes)")"
	# sequential runs last about a second each: more of them
	for rep in $(seq "$SEQ_REPEAT"); do
		for t in $targets; do fio_run "$t" "$r/mnt-$t" read "$rep"; done
		[ "$rep" -le "$REPEAT" ] || continue
		for t in $targets; do fio_run "$t" "$r/mnt-$t" randread "$rep"; done
	done
	printf '  %-30s %22s %6s %22s %9s %6s\n' mount "seq MiB/s [min-max]" KiB/rq "rand MiB/s [min-max]" IOPS KiB/rq
	for t in $targets; do
		for rw in read randread; do
			n=$REPEAT; [ $rw = read ] && n=$SEQ_REPEAT
			C_MED[$t-$rw]=$(for rep in $(seq "$n"); do echo "${C_BW[$t-$rw-$rep]}"; done | median)
			C_MED[$t-$rw-min]=$(for rep in $(seq "$n"); do echo "${C_BW[$t-$rw-$rep]}"; done | sort -g | head -1)
			C_MED[$t-$rw-max]=$(for rep in $(seq "$n"); do echo "${C_BW[$t-$rw-$rep]}"; done | sort -g | tail -1)
			C_MED[$t-$rw-iops]=$(for rep in $(seq "$n"); do echo "${C_IOPS[$t-$rw-$rep]}"; done | median)
			C_MED[$t-$rw-rsz]=-
			[ -n "${C_RSZ[$t-$rw-1]:-}" ] &&
				C_MED[$t-$rw-rsz]=$(for rep in $(seq "$n"); do echo "${C_RSZ[$t-$rw-$rep]}"; done | median)
		done
		case $t in
		file)   label="local, file-backed (device=)";;
		loop)   label="local, loop devices";;
		kernel) label="anole kernel, warm mount";;
		kfuse)  label="anole kernel, via FUSE";;
		fuse)   label="anole lazy, fuse mode";;
		esac
		printf '  %-30s %7s [%6s-%6s] %6s %7s [%6s-%6s] %9.0f %6s\n' "$label" \
			"$(mib "${C_MED[$t-read]}")" "$(mib "${C_MED[$t-read-min]}" | cut -d. -f1)" \
			"$(mib "${C_MED[$t-read-max]}" | cut -d. -f1)" "${C_MED[$t-read-rsz]}" \
			"$(mib "${C_MED[$t-randread]}")" "$(mib "${C_MED[$t-randread-min]}" | cut -d. -f1)" \
			"$(mib "${C_MED[$t-randread-max]}" | cut -d. -f1)" "${C_MED[$t-randread-iops]}" \
			"${C_MED[$t-randread-rsz]}"
	done
	echo "  (medians of $SEQ_REPEAT seq / $REPEAT rand runs, alternating; KiB/rq: mean size of the reads"
	echo "   the daemon served; local = the faster local mount in each test)"
	for rw in read randread; do
		for k in "" -max; do
			C_MED[local-$rw$k]=$(for t in file loop; do [ -n "${C_MED[$t-$rw$k]:-}" ] && echo "${C_MED[$t-$rw$k]}"; done | sort -g | tail -1)
		done
	done
	lazy_umount "$r/mnt-fuse"
	lazy_umount "$r/mnt-kernel"
	lazy_umount "$r/mnt-kfuse"
}

# ------------------------------------------------------------------ main
make_rootfs
make_slim
make_targz
make_fio_tree
mkdir -p "$L/a" "$L/c"
rm -rf "$L/run"; mkdir -p "$L/run"
for cs in $CHUNKS; do
	build_lazy "$WORK/rootfs" "$L/a/full-$cs" "$cs"
	build_lazy "$L/slim" "$L/a/slim-$cs" "$cs"
done
build_lazy "$L/fio-tree" "$L/c/lazy" 1M
if stale "$L/c/local.img" "$L/fio-tree/.done" "$ANOLE_SRC"; then
	rm -f "$L/c/local.img"
	"$ANOLE" image build -q "$L/fio-tree" -o "$L/c/local.blob.img" --blob "$L/c/local.blob" --chunk-size 1M
	mv "$L/c/local.blob.img" "$L/c/local.img"
fi

echo "anole $("$ANOLE" version | awk '{print $2}'), kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), REPEAT=$REPEAT SEQ_REPEAT=$SEQ_REPEAT"
# PARTS=c (or a,b...) runs only those measures
PARTS=${PARTS:-a,b,c}
case ",$PARTS," in *,a,*) bench_a ;; esac
case ",$PARTS," in *,b,*) bench_b ;; esac
case ",$PARTS," in *,c,*) bench_c ;; esac

T_END=$(now)
echo
printf 'runtime %.0f s, load at the end %s\n' "$(calc "$T_END - $T_START")" "$(cut -d' ' -f1-3 /proc/loadavg)"
case ",$PARTS," in *,a,*) ;; *) A_SKIP=1 ;; esac
[ -n "${A_SKIP:-}" ] || printf '(a) start fetch / image size: %s MiB / %s MiB = %s%% at 256K, %s%% at 1M (target <= 10%%); slim tree %s%% / %s%%; with the metadata image %s%% / %s%%\n' \
	"$(mib "${A_FETCH[full-256K]}")" "$(mib "${A_TOTAL[full-256K]}")" "${A_PCT[full-256K]}" "${A_PCT[full-1M]}" \
	"${A_PCT[slim-256K]}" "${A_PCT[slim-1M]}" "${A_META_PCT[full-256K]}" "${A_META_PCT[full-1M]}"
case ",$PARTS," in *,b,*) ;; *) B_SKIP=1 ;; esac
[ -n "${B_SKIP:-}" ] || printf '(b) cold start: anole %.1f s (256K) / %.1f s (1M) vs tar.gz %.1f s = %.2fx / %.2fx (target <= 0.3x)\n' \
	"${B_MED[256K]}" "${B_MED[1M]}" "${B_MED[tar]}" \
	"$(calc "${B_MED[256K]} / ${B_MED[tar]}")" "$(calc "${B_MED[1M]} / ${B_MED[tar]}")"
case ",$PARTS," in *,c,*) ;; *) C_SKIP=1 ;; esac
[ -n "${C_SKIP:-}" ] || printf '(c) warm 4K read: seq %.2fx, rand %.2fx of local (target >= 0.95x); kernel mode via FUSE (same session) seq %.2fx, rand %.2fx; fuse mode seq %.2fx, rand %.2fx; best runs: seq %.2fx, rand %.2fx\n' \
	"$(calc "${C_MED[kernel-read]} / ${C_MED[local-read]}")" \
	"$(calc "${C_MED[kernel-randread]} / ${C_MED[local-randread]}")" \
	"$(calc "${C_MED[kfuse-read]} / ${C_MED[local-read]}")" \
	"$(calc "${C_MED[kfuse-randread]} / ${C_MED[local-randread]}")" \
	"$(calc "${C_MED[fuse-read]} / ${C_MED[local-read]}")" \
	"$(calc "${C_MED[fuse-randread]} / ${C_MED[local-randread]}")" \
	"$(calc "${C_MED[kernel-read-max]} / ${C_MED[local-read-max]}")" \
	"$(calc "${C_MED[kernel-randread-max]} / ${C_MED[local-randread-max]}")"
