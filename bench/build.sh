#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Build-time and size of anole vs mkfs.erofs (Debian's, and the newest built
# from source when MKFS_EROFS_NEW names it), on real trees, in one run.
#
#   bench/build.sh [ANOLE]     (default build/anole; run as root)
#
# Trees (made once, cached in $BENCH_WORK, default bench/work):
#   rootfs        debootstrap --variant=minbase of the host's Debian release,
#                 from the host's configured apt mirror
#   node_modules  `npm install` of a few large packages
#   sparse        one 5 GiB file with a few written bytes
# Each build runs REPEAT times (default 3) per tool, alternating, caches warm;
# the median is reported. Both images are mounted and compared with the
# tree once, so a fast but wrong image cannot pass unnoticed.
set -euo pipefail

ANOLE=$(realpath "${1:-build/anole}")
cd "$(dirname "$0")/.."
WORK=$(realpath -m "${BENCH_WORK:-bench/work}")
REPEAT=${REPEAT:-3}
mkdir -p "$WORK"

. bench/trees.sh
need mkfs.erofs erofs-utils

verify() {      # image tree
	local mnt=$WORK/mnt
	mkdir -p "$mnt"
	mount -t erofs -o ro "$1" "$mnt"
	if ! diff -r --no-dereference "$2" "$mnt" >"$WORK/diff.log" 2>&1; then
		umount "$mnt"; echo "bench: $1 differs from $2 (see $WORK/diff.log)" >&2; return 1
	fi
	umount "$mnt"
}

# Peers: Debian's mkfs.erofs, and the newest one built from source when
# MKFS_EROFS_NEW names it (e.g. erofs-utils 1.9.3: see docs/bench.md).
peers=(mkfs.erofs)
peer_names=("mkfs.erofs $(dpkg-query -W -f="\${Version}" erofs-utils)")
if [ -n "${MKFS_EROFS_NEW:-}" ]; then
	peers+=("$MKFS_EROFS_NEW")
	peer_names+=("$("$MKFS_EROFS_NEW" --version 2>&1 | head -n 1)")
fi

bench_tree() {  # name dir: one line per peer, anole and the peer timed alternately
	local name=$1 dir=$2 a m ta tm sa sm i
	a=$WORK/$name.anole.img
	for i in "${!peers[@]}"; do
		m=$WORK/$name.peer$i.img
		ta=() tm=()
		for _ in $(seq "$REPEAT"); do
			ta+=("$(run_timed "$ANOLE" image build -q "$dir" -o "$a")")
			tm+=("$(run_timed "${peers[$i]}" --quiet "$m" "$dir")")
		done
		sa=$(stat -c %s "$a"); sm=$(stat -c %s "$m")
		ta=$(printf '%s\n' "${ta[@]}" | median); tm=$(printf '%s\n' "${tm[@]}" | median)
		[ "$name" = sparse ] || { verify "$a" "$dir"; verify "$m" "$dir"; }
		printf '%-13s %-22s %9.3f %9.3f %7.2fx %13d %13d %7.3fx\n' "$name" \
			"${peer_names[$i]:0:22}" "$ta" "$tm" "$(echo "$ta / $tm" | bc -l)" \
			"$sa" "$sm" "$(echo "$sa / $sm" | bc -l)"
	done
}

need bc bc
make_rootfs
make_node_modules
make_sparse

echo "anole $("$ANOLE" version | awk '{print $2}'), $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg), median of $REPEAT"
printf '%-13s %-22s %9s %9s %8s %13s %13s %8s\n' tree peer anole_s peer_s time× \
	anole_bytes peer_bytes size×
bench_tree rootfs "$WORK/rootfs"
bench_tree node_modules "$WORK/node/node_modules"
bench_tree sparse "$WORK/sparse"
echo "targets: time <= 0.70x, size <= 1.00x (uncompressed); sparse 5 GiB image <= 1 MiB"
