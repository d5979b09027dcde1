#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Compressed images: anole vs Debian's mkfs.erofs (lz4, lz4hc) and
# mksquashfs (zstd, lz4), on real trees, in one run.
#
#   bench/compress.sh [ANOLE]     (default build/anole; run as root)
#
# For each tree (debootstrap minbase rootfs, node_modules; see trees.sh)
# and each pairing, both tools build REPEAT times (default 3, alternating,
# caches warm; the median is kept); then each image is kernel-mounted,
# compared with the tree once, and read in full after drop_caches.
# Pairings use the same algorithm and pcluster size; mkfs.erofs 1.5 gets
# -Eztailpacking (its best); squashfs's 128 KiB blocks and fragments are
# matched with -C 128K --fragments. Ratios are anole / peer.
set -euo pipefail

ANOLE=$(realpath "${1:-build/anole}")
cd "$(dirname "$0")/.."
WORK=$(realpath -m "${BENCH_WORK:-bench/work}")
REPEAT=${REPEAT:-3}
mkdir -p "$WORK"
. bench/trees.sh
need mkfs.erofs erofs-utils
need mksquashfs squashfs-tools
need bc bc

mnt=$WORK/zmnt
mkdir -p "$mnt"

read_all() {   # image fstype -> seconds to read every file after drop_caches
	local t0 t1
	mount -t "$2" -o ro,loop "$1" "$mnt"
	sync; echo 3 >/proc/sys/vm/drop_caches
	t0=$(now)
	find "$mnt" -type f -print0 | xargs -0 -r cat >/dev/null
	t1=$(now)
	umount "$mnt"
	echo "$t1 - $t0" | bc -l
}

verify() {     # image fstype tree
	mount -t "$2" -o ro,loop "$1" "$mnt"
	if ! diff -r --no-dereference "$3" "$mnt" >"$WORK/zdiff.log" 2>&1; then
		umount "$mnt"; echo "bench: $1 differs from $3 (see $WORK/zdiff.log)" >&2; return 1
	fi
	umount "$mnt"
}

ratio() { echo "$1 / $2" | bc -l; }

# pair NAME TREE "anole options" PEER "peer command with IMG and SRC"
pair() {
	local name=$1 tree=$2 aopts=$3 peer=$4 pcmd=$5 dir a p ta=() tp=() ra rp sa sp ftype
	dir=$WORK/$tree
	[ "$tree" = node ] && dir=$WORK/node/node_modules
	a=$WORK/z.anole.img p=$WORK/z.peer.img
	ftype=erofs
	[ "$peer" = mksquashfs ] && ftype=squashfs
	for _ in $(seq "$REPEAT"); do
		rm -f "$a" "$p"
		ta+=("$(run_timed "$ANOLE" image build -q "$dir" -o "$a" $aopts)")
		tp+=("$(run_timed bash -c "${pcmd//@IMG@/$p} " _ "$dir")")
	done
	[ -s "$a" ] && [ -s "$p" ] || { echo "bench: $name: a build failed" >&2; return 1; }
	verify "$a" erofs "$dir"
	verify "$p" "$ftype" "$dir"
	ra=$(read_all "$a" erofs); rp=$(read_all "$p" "$ftype")
	sa=$(stat -c %s "$a"); sp=$(stat -c %s "$p")
	ta=$(printf '%s\n' "${ta[@]}" | median); tp=$(printf '%s\n' "${tp[@]}" | median)
	printf '%-7s %-22s %-10s %8.2f %8.2f %6.2fx %12d %12d %6.3fx %7.2f %7.2f %6.2fx\n' \
		"$tree" "$name" "$peer" "$ta" "$tp" "$(ratio "$ta" "$tp")" "$sa" "$sp" \
		"$(ratio "$sa" "$sp")" "$ra" "$rp" "$(ratio "$ra" "$rp")"
}

make_rootfs
make_node_modules

echo "anole $("$ANOLE" version | awk '{print $2}') vs mkfs.erofs $(dpkg-query -W -f='${Version}' erofs-utils)," \
	"mksquashfs $(dpkg-query -W -f='${Version}' squashfs-tools); $(nproc) CPUs; build: median of $REPEAT"
printf '%-7s %-22s %-10s %8s %8s %7s %12s %12s %7s %7s %7s %7s\n' tree config peer \
	anole_s peer_s time× anole_B peer_B size× read_a read_p read×
for tree in rootfs node; do
	pair "lz4 4K" $tree "-z lz4" mkfs.erofs 'mkfs.erofs --quiet -zlz4 -Eztailpacking @IMG@ "$1"'
	pair "lz4hc 4K" $tree "-z lz4hc" mkfs.erofs 'mkfs.erofs --quiet -zlz4hc -Eztailpacking @IMG@ "$1"'
	pair "lz4hc,12 64K" $tree "-z lz4hc,12 -C 64K" mkfs.erofs \
		'mkfs.erofs --quiet -zlz4hc,12 -C65536 -Eztailpacking @IMG@ "$1"'
	pair "zstd 128K frag" $tree "-z zstd,15 -C 128K --fragments" mksquashfs \
		'mksquashfs "$1" @IMG@ -quiet -no-progress -comp zstd -Xcompression-level 15 >/dev/null'
	pair "lz4 128K frag" $tree "-z lz4 -C 128K --fragments" mksquashfs \
		'mksquashfs "$1" @IMG@ -quiet -no-progress -comp lz4 >/dev/null'
done
echo "targets: size <= 1.00x mkfs.erofs at the same algorithm and pcluster; build time <= 0.70x"
