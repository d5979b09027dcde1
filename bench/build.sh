#!/bin/bash
# Build-time and size of anole vs Debian's mkfs.erofs, on real trees, in one run.
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

bench_tree() {  # name dir
	local name=$1 dir=$2 a m ta=() tm=() sa sm
	a=$WORK/$name.anole.img m=$WORK/$name.mkfs.img
	for _ in $(seq "$REPEAT"); do
		ta+=("$(run_timed "$ANOLE" image build -q "$dir" -o "$a")")
		tm+=("$(run_timed mkfs.erofs --quiet "$m" "$dir")")
	done
	sa=$(stat -c %s "$a"); sm=$(stat -c %s "$m")
	ta=$(printf '%s\n' "${ta[@]}" | median); tm=$(printf '%s\n' "${tm[@]}" | median)
	[ "$name" = sparse ] || { verify "$a" "$dir"; verify "$m" "$dir"; }
	printf '%-13s %10.3f %10.3f %7.2fx %14d %14d %7.3fx\n' "$name" "$ta" "$tm" \
		"$(echo "$ta / $tm" | bc -l)" "$sa" "$sm" "$(echo "$sa / $sm" | bc -l)"
}

need bc bc
make_rootfs
make_node_modules
make_sparse

echo "anole $("$ANOLE" version | awk '{print $2}') vs mkfs.erofs $(dpkg-query -W -f="\${Version}" erofs-utils), $(nproc) CPUs, median of $REPEAT"
printf '%-13s %10s %10s %8s %14s %14s %8s\n' tree anole_s mkfs_s time× anole_bytes mkfs_bytes size×
bench_tree rootfs "$WORK/rootfs"
bench_tree node_modules "$WORK/node/node_modules"
bench_tree sparse "$WORK/sparse"
echo "targets: time <= 0.70x, size <= 1.00x (uncompressed); sparse 5 GiB image <= 1 MiB"
