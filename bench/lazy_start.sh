#!/bin/bash
# Start fetch of lazy mounts: the share of the blob bytes a cold start fetches,
# in kernel mode and in FUSE mode (issue #11 §2b).
#
#   bench/lazy_start.sh [ANOLE [BASE_ANOLE]]   (default build/anole; run as root;
#                                              ~3 minutes, +5 the first time)
#
# The tree: `debootstrap --variant=minbase --include=python3-minimal,nginx-light,curl
# bookworm` from the Debian mirror the host's apt uses, made once and kept in
# $BENCH_WORK/lazy-start (default bench/work/lazy-start). Two forms of it:
#   slim  without /var/cache/apt/archives/*.deb and /var/lib/apt/lists/*, as a
#         container image ships it (the tree of the issue's figures)
#   full  as debootstrap leaves it (+40 MB of .debs, +49 MB of apt lists)
# Images (`anole image build --blob-dir`, built once per anole binary):
#   1M/whole  --chunk-size 1M --fetch-unit 1M: whole chunks, the format before
#             fetch units (what the issue measured)
#   1M        --chunk-size 1M: the default chunk size and default fetch unit
#             (64K), i.e. the issue's command line today, and the recommendation
#   1M/32K    --chunk-size 1M --fetch-unit 32K (finer, for comparison)
# Blobs are served by nginx on a free loopback port (started and stopped by
# pid). Each image is lazy-mounted over HTTP in kernel mode and in FUSE mode,
# each with a fresh cache and a fresh mount, and one START runs in a chroot of
# it. The share = bytes fetched / the blob's bytes (compressed transport blob),
# from the daemon's stats (`anole image stats`) and from nginx's access log
# (body bytes sent): both are printed and must agree. The metadata image is
# downloaded before a mount; its size is printed beside.
#
# STARTS: the one designed for (issue #11: python3 -c 'import os, zlib' and
# nginx -v), then starts it was not designed for (curl --version, python3
# importing ssl, logging and argparse, sh -c true, apt-get --version).
# With BASE_ANOLE (e.g. a build of main), the designed start is measured with
# it too, on the same images in the same run: its kernel mode read the blob
# files through the page cache with 1 MiB readahead.
# WHERE=1 adds, for the designed start, where the bytes went (bench/lazy_where.py:
# per file, the fetch units fetched and the pages the kernel had resident).
# TREES="slim full" and IMAGES="1M/whole 1M 1M/32K" choose what is measured;
# OTHERS_RUN=0 skips the starts not designed for.
set -euo pipefail

ANOLE_SRC=$(realpath "${1:-build/anole}")
BASE_SRC=${2:+$(realpath "$2")}
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$(realpath -m "${BENCH_WORK:-bench/work}")
W=$WORK/lazy-start
TREES=${TREES:-slim full}
IMAGES=${IMAGES:-1M/whole 1M 1M/32K}
WHERE=${WHERE:-0}
SUITE=bookworm
PACKAGES=python3-minimal,nginx-light,curl
DESIGNED="python3 -c 'import os, zlib' && nginx -v"
OTHERS=("curl --version" "python3 -c 'import ssl, logging, argparse'" "sh -c true" "apt-get --version")
T_START=$(date +%s.%N)

[ "$(id -u)" = 0 ] || { echo "bench: run as root" >&2; exit 1; }
[ -x "$ANOLE_SRC" ] || { echo "bench: no anole binary at $ANOLE_SRC (make)" >&2; exit 1; }
[ -z "$BASE_SRC" ] || [ -x "$BASE_SRC" ] || { echo "bench: no anole binary at $2" >&2; exit 1; }
[ -e /dev/fuse ] || { echo "bench: no /dev/fuse" >&2; exit 1; }
for c in debootstrap nginx python3 curl; do
	command -v "$c" >/dev/null || { echo "bench: needs $c (apt-get install ${c/nginx/nginx-light})" >&2; exit 1; }
done
mkdir -p "$W"
exec 9>"$W/.lock"
flock -n 9 || { echo "bench: another bench/lazy_start.sh runs on this machine" >&2; exit 1; }
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1 no_proxy=127.0.0.1

# private copies: a rebuild during the run must not mix versions
mkdir -p "$W/bin"
cp -p "$ANOLE_SRC" "$W/bin/anole.new" && mv -f "$W/bin/anole.new" "$W/bin/anole"
ANOLE=$W/bin/anole
if [ -n "$BASE_SRC" ]; then
	cp -p "$BASE_SRC" "$W/bin/base.new" && mv -f "$W/bin/base.new" "$W/bin/base"
fi

# ------------------------------------------------------------------ cleanup
NGINX_PID=
cleanup() {
	local rc=$? b
	set +e
	if mountpoint -q "$W/run/mnt"; then   # a measure interrupted by a signal
		for b in "$ANOLE" "$W/bin/base"; do
			[ -x "$b" ] && { "$b" image umount "$W/run/mnt" 2>/dev/null ||
				"$b" image umount --lazy "$W/run/mnt" 2>/dev/null; }
		done
	fi
	if [ -n "$NGINX_PID" ]; then
		kill "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	fi
	findmnt -rn -o TARGET | grep -q "^$W/run/" || rm -rf "$W/run"
	[ $rc = 0 ] || echo "bench: failed (exit $rc); daemon logs are under /run/anole/mounts/*/log" >&2
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pct() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", 100 * a / b}'; }
jget() {      # FILE KEY
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
stale() {     # TARGET DEP...: true when TARGET is missing or older than a DEP
	local t=$1 d; shift
	[ -e "$t" ] || return 0
	for d; do [ "$d" -nt "$t" ] && return 0; done
	return 1
}

# ------------------------------------------------------------------ trees
apt_mirror() {
	local uri
	uri=$(grep -h -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
	[ -n "$uri" ] || uri=$(grep -h -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' | grep -v security | head -1 || true)
	echo "${uri:-http://deb.debian.org/debian}"
}

TARX=(--numeric-owner --xattrs --xattrs-include='*' --acls)
make_trees() {
	if [ ! -f "$W/rootfs.done" ]; then
		rm -rf "$W/rootfs" "$W/rootfs.tmp" "$W/slim" "$W/slim.done"
		echo "bench: debootstrap --variant=minbase --include=$PACKAGES $SUITE (once)" >&2
		debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$W/rootfs.tmp" "$(apt_mirror)" \
			>"$W/debootstrap.log" 2>&1 || { tail "$W/debootstrap.log" >&2; return 1; }
		mv "$W/rootfs.tmp" "$W/rootfs"
		touch "$W/rootfs.done"
	fi
	if stale "$W/slim.done" "$W/rootfs.done"; then
		rm -rf "$W/slim"; mkdir -p "$W/slim"
		tar -C "$W/rootfs" "${TARX[@]}" --exclude='./var/cache/apt/archives/*.deb' \
			--exclude='./var/lib/apt/lists/*' -cf - . | tar -C "$W/slim" "${TARX[@]}" -xpf -
		touch "$W/slim.done"
	fi
}
tree_dir() { [ "$1" = full ] && echo "$W/rootfs" || echo "$W/slim"; }
tree_done() { [ "$1" = full ] && echo "$W/rootfs.done" || echo "$W/slim.done"; }

image_opts() {  # IMAGE-NAME -> build options
	case $1 in
	1M/whole) echo "--chunk-size 1M --fetch-unit 1M" ;;
	1M)       echo "--chunk-size 1M" ;;
	*/*)      echo "--chunk-size ${1%/*} --fetch-unit ${1#*/}" ;;
	*)        echo "--chunk-size $1" ;;
	esac
}

# build TREE IMAGE-NAME: $W/img/TREE-NAME.{img,json}, blob into $W/blobs
build() {
	local tree=$1 name=$2 out
	out=$W/img/$tree-${name//\//-}
	mkdir -p "$W/img" "$W/blobs"
	if stale "$out.json" "$(tree_done "$tree")" "$ANOLE"; then
		# shellcheck disable=SC2046
		"$ANOLE" image build -q "$(tree_dir "$tree")" -o "$out.img" --blob-dir "$W/blobs" \
			$(image_opts "$name") --json >"$out.json.tmp"
		mv "$out.json.tmp" "$out.json"
	fi
	echo "$out"
}

# ------------------------------------------------------------------ nginx
start_nginx() {
	local port conf=$W/run/nginx.conf i
	mkdir -p "$W/run/nginx"
	for i in 1 2 3 4 5; do
		port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
		cat >"$conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $W/run/nginx/nginx.pid;
error_log $W/run/nginx/error.log;
events { worker_connections 256; }
http {
	log_format bytes '\$status \$body_bytes_sent \$http_range';
	access_log $W/run/nginx/access.log bytes;
	client_body_temp_path $W/run/nginx/tmp;
	proxy_temp_path $W/run/nginx/tmp;
	fastcgi_temp_path $W/run/nginx/tmp;
	uwsgi_temp_path $W/run/nginx/tmp;
	scgi_temp_path $W/run/nginx/tmp;
	server {
		listen 127.0.0.1:$port;
		location /blobs/ { alias $W/blobs/; }
	}
}
EOF
		nginx -e "$W/run/nginx/error.log" -p "$W/run/nginx" -c "$conf" -g 'user root;' 9>&- &
		NGINX_PID=$!
		for _ in $(seq 50); do     # up once it answers anything
			kill -0 "$NGINX_PID" 2>/dev/null || break
			[ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/")" = 000 ] || break
			sleep 0.1
		done
		if kill -0 "$NGINX_PID" 2>/dev/null; then
			URL=http://127.0.0.1:$port/blobs
			return 0
		fi
		wait "$NGINX_PID" 2>/dev/null || true
		NGINX_PID=
	done
	cat "$W/run/nginx/error.log" >&2
	echo "bench: nginx did not start" >&2
	return 1
}
nginx_bytes() { awk '{s += $2} END {print s + 0}' "$W/run/nginx/access.log"; }

# ------------------------------------------------------------------ one start
# measure BIN IMG-PREFIX MODE START -> "fetched nginx_bytes requests units seconds"
measure() {
	local bin=$1 out=$2 mode=$3 start=$4 mnt=$W/run/mnt cache st t0 t1
	cache=$W/run/cache-$RANDOM$RANDOM
	st=$W/run/stats.json
	mkdir -p "$mnt"
	: >"$W/run/nginx/access.log"
	# (this runs in a subshell: it unmounts on every path itself; the
	# daemon must not keep the bench's lock, fd 9)
	"$bin" image mount "$out.img" "$mnt" --blobs "$URL" --cache "$cache" --mode "$mode" 9>&- ||
		{ echo "bench: mount of $out.img ($mode) failed" >&2; return 1; }
	t0=$(date +%s.%N)
	if ! chroot "$mnt" /bin/sh -c "$start" >"$W/run/start.out" 2>&1; then
		cat "$W/run/start.out" >&2
		echo "bench: START failed in the $mode mount of $out.img: $start" >&2
		"$bin" image umount "$mnt" || "$bin" image umount --lazy "$mnt"
		return 1
	fi
	t1=$(date +%s.%N)
	"$bin" image stats "$mnt" --json >"$st"
	if [ "$WHERE" = 1 ] && [ "$start" = "$DESIGNED" ]; then
		echo "   -- where the bytes went: $(basename "$out") $mode mode ($(basename "$bin"))" >&2
		python3 "$ROOT/bench/lazy_where.py" "$out.img" "$cache" "$mnt" --top 15 | sed 's/^/   /' >&2
	fi
	"$bin" image umount "$mnt"
	rm -rf "$cache"
	echo "$(jget "$st" bytes_fetched) $(nginx_bytes) $(jget "$st" fetch_requests) $(jget "$st" chunks_fetched)" \
		"$(echo "$t1 - $t0" | bc -l)"
}

# ------------------------------------------------------------------ main
make_trees
start_nginx
declare -A SHARE
echo "anole $("$ANOLE" version 2>/dev/null | awk '{print $2}'), kernel $(uname -r), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg); blobs over http://127.0.0.1 (nginx)"
printf '%-5s %-9s %9s %9s %-6s %-7s %-34s %10s %10s %5s %6s %7s %7s\n' tree image blob_B image_B mode binary start \
	fetched_B nginx_B reqs units share% start_s
row() {   # TREE NAME BLOB IMGB MODE BINNAME START RESULT
	local r=($8) share
	share=$(pct "${r[0]}" "$3")
	[ "${r[0]}" = "${r[1]}" ] || echo "bench: warning: the daemon counted ${r[0]} bytes, nginx sent ${r[1]}" >&2
	printf '%-5s %-9s %9d %9d %-6s %-7s %-34s %10d %10d %5d %6d %6s%% %7.2f\n' "$1" "$2" "$3" "$4" "$5" "$6" \
		"${7:0:34}" "${r[0]}" "${r[1]}" "${r[2]}" "${r[3]}" "$share" "${r[4]}"
	SHARE[$1,$2,$5,$6,$7]=$share
}
for tree in $TREES; do
	for name in $IMAGES; do
		out=$(build "$tree" "$name")
		blob=$(jget "$out.json" blob_bytes)
		imgb=$(stat -c %s "$out.img")
		for mode in kernel fuse; do
			res=$(measure "$ANOLE" "$out" "$mode" "$DESIGNED")
			row "$tree" "$name" "$blob" "$imgb" "$mode" anole "$DESIGNED" "$res"
			[ -n "$BASE_SRC" ] || continue
			res=$(measure "$W/bin/base" "$out" "$mode" "$DESIGNED")
			row "$tree" "$name" "$blob" "$imgb" "$mode" base "$DESIGNED" "$res"
		done
	done
done
# the starts not designed for, on the first tree's images (OTHERS=0: none)
first_tree=${TREES%% *}
[ "${OTHERS_RUN:-1}" = 1 ] || IMAGES_OTHERS=
for name in ${IMAGES_OTHERS-$IMAGES}; do
	out=$W/img/$first_tree-${name//\//-}
	blob=$(jget "$out.json" blob_bytes)
	imgb=$(stat -c %s "$out.img")
	for start in "${OTHERS[@]}"; do
		for mode in kernel fuse; do
			res=$(measure "$ANOLE" "$out" "$mode" "$start")
			row "$first_tree" "$name" "$blob" "$imgb" "$mode" anole "$start" "$res"
		done
	done
done

echo
echo "share = fetched / blob bytes (compressed transport blob); nginx_B = body bytes nginx sent;"
echo "reqs = range requests; units = fetch units (chunk-table entries) fetched; start_s = the"
echo "start's wall time over loopback (no round-trip delay: each request costs one where the"
echo "store is far away, so a start there costs about reqs x RTT more)"
for tree in $TREES; do
	for name in $IMAGES; do
		k=${SHARE[$tree,$name,kernel,anole,$DESIGNED]} f=${SHARE[$tree,$name,fuse,anole,$DESIGNED]}
		line="$tree $name: kernel $k%, fuse $f%"
		if [ -n "$BASE_SRC" ]; then
			line="$line (base binary: kernel ${SHARE[$tree,$name,kernel,base,$DESIGNED]}%, fuse ${SHARE[$tree,$name,fuse,base,$DESIGNED]}%)"
		fi
		awk -v k="$k" -v f="$f" 'BEGIN {exit !(k <= f)}' || line="$line  [kernel > fuse]"
		awk -v k="$k" -v f="$f" 'BEGIN {exit !(k <= 8 && f <= 8)}' || line="$line  [over 8%]"
		echo "$line"
	done
done
printf 'runtime %.0f s\n' "$(echo "$(date +%s.%N) - $T_START" | bc -l)"
