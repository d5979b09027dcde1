#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# background: cpu-bound (tests/run.sh runs it in its second lane)
# needs-features: zstd lz4 lzma deflate
# Compressed images (-z): every algorithm x pcluster size {4K, 64K, 1M} x
# with/without --fragments, over the generated tree and a text-heavy tree.
# Each image is kernel-mounted and compared with its source; `anole image
# check` passes and `unpack` gives the source back; Debian's fsck.erofs
# (1.5: LZ4/LZ4HC, no fragments) checks and extracts those it knows; and
# the thread count does not change a single byte of the image.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd fsck.erofs

make_srcfs "$WORK/srcfs"
GEN=$WORK/srcfs/gen
TEXT=$WORK/srcfs/text
log "generating the trees"
gen_tree "$GEN" --seed 21 --small
# text: this project's own sources and docs, plus generated prose
mkdir -p "$TEXT"
cp -a "$TESTDIR/../lib" "$TESTDIR/../image" "$TESTDIR/../docs" "$TEXT/"
"$PY" - "$TEXT/prose" <<'EOF'
import os, random, sys
random.seed(5)
words = ("the of and to in is was that for on are with as by this be from at or "
         "image kernel block cluster compressed extent fragment tail index lazy "
         "mount registry layer chunk digest cache page read write").split()
os.makedirs(sys.argv[1])
for i in range(40):
    n = random.choice([10, 300, 4095, 4096, 4097, 9000, 70000, 300000])
    out, size = [], 0
    while size < n:
        w = random.choice(words)
        out.append(w)
        size += len(w) + 1
    with open(os.path.join(sys.argv[1], "doc%02d.txt" % i), "w") as f:
        f.write(" ".join(out)[:n])
EOF
# incompressible and very compressible data, and a copy of a file
head -c 200000 /dev/urandom >"$TEXT/random.bin"
head -c 5000000 /dev/zero >"$TEXT/zeros.bin"
cp "$TEXT/prose/doc07.txt" "$TEXT/prose/copy-of-doc07.txt"

fsck_knows() { # ALG FRAGMENTS -> 0 if Debian's fsck.erofs 1.5 reads such images
	case "$1" in lz4|lz4hc) [ -z "$2" ] ;; *) return 1 ;; esac
}

n=0
for alg in lz4 lz4hc zstd lzma deflate; do
	for pcl in 4K 64K 1M; do
		for frag in "" --fragments; do
			for tree in gen text; do
				src=$WORK/srcfs/$tree
				img=$WORK/$tree-$alg-$pcl${frag:+-frag}.erofs
				build_ok "$src" "$img" -z "$alg" -C "$pcl" $frag --quiet
				mount_image "$img" "$WORK/mnt"
				compare_trees "$src" "$WORK/mnt"
				umount_image "$WORK/mnt"
				check_image "$img"
				rm -rf "$WORK/srcfs/unpacked"
				"$ANOLE" image unpack "$img" "$WORK/srcfs/unpacked" --quiet ||
					fail "unpack of $img failed"
				compare_trees "$src" "$WORK/srcfs/unpacked"
				if fsck_knows "$alg" "$frag"; then
					fsck_clean "$img"
				fi
				# fsck.erofs 1.5 extracts chunk-based (sparse) files wrongly
				if fsck_knows "$alg" "$frag" && [ "$tree" = text ]; then
					rm -rf "$WORK/srcfs/extracted"
					fsck.erofs --extract="$WORK/srcfs/extracted" "$img" >/dev/null 2>&1 ||
						fail "fsck.erofs --extract $img failed"
					compare_trees "$src" "$WORK/srcfs/extracted" --content-only
				fi
				log "$alg -C $pcl ${frag:-(no fragments)} $tree: $(file_size "$img") bytes, ok"
				n=$((n + 1))
				# keep one image per config for the thread test below
				[ "$tree" = text ] || rm -f "$img"
			done
		done
	done
done
log "$n images mounted, checked, unpacked and compared"

# The text tree holds more bytes than the images it made.
src_bytes=$(du -sb --apparent-size "$TEXT" | cut -f1)
for img in "$WORK"/text-lzma-1M-frag.erofs "$WORK"/text-lz4-4K.erofs; do
	assert_le "$(file_size "$img")" "$((src_bytes / 2))" "size of $(basename "$img") (source $src_bytes)"
done

log "thread count does not change the image"
# a file of several compression segments (8 MiB each at these sizes)
BIG=$WORK/srcfs/big
mkdir -p "$BIG"
for i in $(seq 12); do cat "$TEXT"/prose/*.txt "$TEXT"/random.bin; done >"$BIG/big.txt"
cp -a "$TEXT/prose" "$BIG/"
for cfg in "zstd -C 64K --fragments" "lz4hc -C 1M" "lz4 -C 4K" "deflate,1 -C 64K --fragments"; do
	sums=""
	for t in 1 3 8; do
		build_ok "$BIG" "$WORK/t$t.erofs" -z $cfg --threads "$t" --timestamp 1700000000 \
			--uuid 01234567-89ab-cdef-0123-456789abcdef --quiet
		sums="$sums $(sha256 "$WORK/t$t.erofs")"
	done
	set -- $sums
	[ "$cfg" != "lz4 -C 4K" ] || { mount_image "$WORK/t8.erofs" "$WORK/mnt"; compare_trees "$BIG" "$WORK/mnt"; umount_image "$WORK/mnt"; }
	assert_eq "$2" "$1" "image with 3 threads vs 1 ($cfg)"
	assert_eq "$3" "$1" "image with 8 threads vs 1 ($cfg)"
done
log "ok"
