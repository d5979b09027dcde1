#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# background: cpu-bound (tests/run.sh runs it in its second lane)
# needs-features: fuse zstd lz4 lzma deflate
# The reader on compressed images made by Debian's mkfs.erofs (LZ4 only):
# compact indexes (4B and 2B packs), full (legacy) indexes without zero
# padding, big pclusters, ztailpacking (inline tail pclusters), both. For
# each variant: `anole image check` passes and decodes compressed extents,
# `anole image unpack` and the FUSE mode of `anole image mount` equal the
# source tree. Then deliberate corruption of a compressed file (its lcluster
# index, its map header, its pcluster) is reported by check and read as EIO
# through FUSE, never as other bytes, while the other files still read, and
# the kernel cannot read it either; random bit flips in index and
# compressed data never crash or hang the reader (ASan/UBSan build), and
# anole's FUSE mount then reads what the kernel reads (same bytes or both
# an error).
. "$TESTDIR/lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
need_cmd mkfs.erofs
[ -e /dev/fuse ] || skip "no /dev/fuse"

make_srcfs "$WORK/srcfs" 1g
make_srcfs "$WORK/dstfs" 1g   # unpack targets must take 64 KiB xattr values
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 61 --small --parts types,perms,owners,times,xattrs,acls,hardlinks,sizes,sparse,deep
# text-heavy files: many extents per file, sizes around lcluster and
# pcluster edges, long runs (extents of several MiB), incompressible data
"$PY" - "$SRC/text" <<'PY'
import os, random, sys
root = sys.argv[1]
os.makedirs(root)
rng = random.Random(7)
words = ("the of and to in is was for on that with as by at from erofs lcluster "
         "pcluster compress extent index head plain block inode kernel reader").split()
def text(n):
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(words) for _ in range(rng.randrange(3, 14))) + "\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]
for n in [1, 100, 4095, 4096, 4097, 8191, 8192, 12000, 65535, 65536, 65537, 200000, 1048579, 3000000]:
    open(os.path.join(root, "t%d" % n), "wb").write(text(n))
open(os.path.join(root, "zeros"), "wb").write(bytes(3 << 20))
open(os.path.join(root, "random"), "wb").write(rng.randbytes(300000))
with open(os.path.join(root, "mixed"), "wb") as f:
    for _ in range(60):
        f.write(rng.randbytes(rng.randrange(100, 6000)))
        f.write(text(rng.randrange(100, 20000)))
PY

STORE=$WORK/blobs
mkdir -p "$STORE" "$WORK/mnt"
variants="lz4:-zlz4 lz4hc:-zlz4hc,12 big:-zlz4hc,9:-C65536 tail:-zlz4hc:-Eztailpacking"
variants="$variants bigtail:-zlz4:-C16384:-Eztailpacking legacy:-zlz4:-Elegacy-compress"

mkfs_variant() { # NAME ARGS(colon-separated) IMG
	local args
	IFS=: read -r -a args <<<"$2"
	mkfs.erofs --quiet "${args[@]}" "$3" "$SRC" >"$WORK/mkfs.log" 2>&1 ||
		{ cat "$WORK/mkfs.log" >&2; fail "mkfs.erofs ${args[*]} failed"; }
}
fuse_mount() { lazy_mount "$1" "$WORK/mnt" "$STORE" fuse --cache "$WORK/cache"; }

for v in $variants; do
	name=${v%%:*}
	img=$WORK/$name.erofs
	mkfs_variant "$name" "${v#*:}" "$img"
	log "$name: $(file_size "$img") bytes ($("$ANOLE" image inspect "$img" | sed -n 's/^feature_incompat: *//p'))"
	assert_rc 0 "$ANOLE" image check --json "$img" >"$WORK/check.json"
	n=$(json_get "$WORK/check.json" compressed_extents)
	assert_ge "$n" 20 "$name: compressed extents decoded by check"
	assert_rc 0 "$ANOLE" image unpack -q "$img" "$WORK/dstfs/$name"
	compare_trees "$SRC" "$WORK/dstfs/$name"
	rm -rf "$WORK/dstfs/$name"
	fuse_mount "$img"
	compare_trees "$SRC" "$WORK/mnt"
	lazy_umount "$WORK/mnt"
done

# 8 threads reading random ranges of the big-pcluster image's text files
# at once: the daemon's decoded-extent cache is shared between its threads
fuse_mount "$WORK/big.erofs"
"$PY" - "$SRC/text" "$WORK/mnt/text" <<'PY' || fail "parallel reads through FUSE"
import os, random, sys, threading
src, mnt = sys.argv[1:3]
names = [n for n in sorted(os.listdir(src)) if os.path.getsize(os.path.join(src, n)) > 65536]
bad = []
def reader(seed):
    r = random.Random(seed)
    for _ in range(150):
        n = r.choice(names)
        size = os.path.getsize(os.path.join(src, n))
        off, ln = r.randrange(size), r.randrange(1, 300000)
        with open(os.path.join(mnt, n), "rb") as a, open(os.path.join(src, n), "rb") as b:
            if os.pread(a.fileno(), ln, off) != os.pread(b.fileno(), ln, off):
                bad.append((n, off, ln))
threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
for t in threads: t.start()
for t in threads: t.join()
if bad:
    sys.exit("wrong bytes: %s" % bad[:5])
PY
lazy_umount "$WORK/mnt"

# the layouts the variants were meant to produce
"$ANOLE" image inspect "$WORK/lz4hc.erofs" /text/t3000000 >"$WORK/i.txt"
assert_grep 'indexes: *compact_2b' "$WORK/i.txt" "2B compact indexes"
assert_grep 'algorithms: *lz4' "$WORK/i.txt" "lz4 extents"
"$ANOLE" image inspect "$WORK/legacy.erofs" /text/t3000000 >"$WORK/i.txt"
assert_grep 'indexes: *full' "$WORK/i.txt" "full indexes"
"$ANOLE" image inspect "$WORK/big.erofs" /text/t3000000 >"$WORK/i.txt"
assert_grep 'big_pcluster: *yes' "$WORK/i.txt" "big pclusters"
"$ANOLE" image inspect --json "$WORK/bigtail.erofs" /text/t12000 >"$WORK/i.json"
"$PY" - "$WORK/i.json" <<'PY' || fail "no inline tail pcluster in bigtail /text/t12000"
import json, sys
d = json.load(open(sys.argv[1]))["data"]
assert d["compressed"] and d.get("ztailpacking_inline_size", 0) > 0, d
assert any(e.get("inline") for e in d["extents"]), d["extents"]
PY

# ---- a newer mkfs.erofs (optional) -----------------------------------------
# ZREADER_NEW_MKFS=/path/to/mkfs.erofs (erofs-utils >= 1.8, e.g. built from
# source) adds MicroLZMA, DEFLATE, Zstandard, fragments, deduplication,
# small blocks and compressed directories; each image is also mounted by
# the kernel, whose bytes must equal anole's (and the source's).
if [ -n "${ZREADER_NEW_MKFS:-}" ]; then
	newv="lzma:-zlzma lzmabig:-zlzma,level=9:-C65536 deflate:-zdeflate:-C32768:-Eztailpacking"
	newv="$newv zstd:-zzstd:-C65536:-Eztailpacking frag:-zlz4hc:-Efragments"
	newv="$newv allfrag:-zlz4hc:-Eall-fragments dedupe:-zlz4hc:-Ededupe"
	newv="$newv fragdedupe:-zlzma:-Efragments,dedupe,ztailpacking:-C32768 b1k:-zzstd:-b1024:-Eztailpacking"
	newv="$newv b512:-zlzma:-b512:-Efragments zdir:-zlz4hc:--zD=1:-Eztailpacking"
	mkdir -p "$WORK/kmnt"
	for v in $newv; do
		name=${v%%:*}
		img=$WORK/new-$name.erofs
		IFS=: read -r -a args <<<"${v#*:}"
		"$ZREADER_NEW_MKFS" --quiet -T0 "${args[@]}" "$img" "$SRC" >"$WORK/mkfs.log" 2>&1 ||
			{ cat "$WORK/mkfs.log" >&2; fail "$ZREADER_NEW_MKFS ${args[*]} failed"; }
		log "new mkfs, $name: $(file_size "$img") bytes"
		assert_rc 0 "$ANOLE" image check "$img"
		assert_rc 0 "$ANOLE" image unpack -q "$img" "$WORK/dstfs/$name"
		compare_trees "$SRC" "$WORK/dstfs/$name" --content-only
		if mount -o ro,loop -t erofs "$img" "$WORK/kmnt" 2>/dev/null; then
			add_mount "$WORK/kmnt"
			compare_trees "$WORK/kmnt" "$WORK/dstfs/$name" --content-only
			log "new mkfs, $name: the kernel reads the same bytes"
			umount "$WORK/kmnt"
		fi
		rm -rf "$WORK/dstfs/$name"
	done
else
	log "ZREADER_NEW_MKFS not set: LZMA/DEFLATE/zstd/fragments images only in test_zdecode"
fi

# ---- corruption -------------------------------------------------------------
# corrupt.py-like edits at offsets computed from inspect: the inode's map
# header (8-aligned after inode + xattrs), its first lcluster index, and
# the pcluster of its second extent.
offsets() { # IMG PATH -> "header index pcluster plen nonhead"
	"$ANOLE" image inspect --json "$1" >"$WORK/sb.json"
	"$ANOLE" image inspect --json "$1" "$2" >"$WORK/ino.json"
	"$PY" - "$WORK/sb.json" "$WORK/ino.json" <<'PY'
import json, sys
sb, ino = (json.load(open(p)) for p in sys.argv[1:3])
iloc = sb["meta_blkaddr"] * sb["block_size"] + ino["nid"] * 32
hdr = (iloc + ino["inode_size"] + ino["xattr_size"] + 7) // 8 * 8
first = hdr + 8 + (8 if ino["layout"] == "compressed_full" else 0)
ext = [e for e in ino["data"]["extents"] if "device" in e][1]
# an lcluster 0 of type NONHEAD: full indexes keep the type in the low
# bits of di_advise, compact ones above the 12 bits of clusterofs
full = ino["layout"] == "compressed_full"
print(hdr, first, ext["physical"], ext["compressed_length"], "0200" if full else "0020")
PY
}
poke() { # FILE OFFSET HEXBYTES
	"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(bytes.fromhex(sys.argv[3]))' "$1" "$2" "$3"
}
fill() { # FILE OFFSET LEN BYTE
	"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); f.write(bytes([int(sys.argv[4],16)])*int(sys.argv[3]))' "$1" "$2" "$3" "$4"
}
readpages() { # FILE OUT: page-by-page read, "ok <sha256>" or "err <errno>"
	"$PY" - "$1" >"$2" <<'PY'
import hashlib, os, sys
h = hashlib.sha256()
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    size = os.fstat(fd).st_size
    for off in range(0, size, 4096):
        h.update(os.pread(fd, 4096, off))
    os.close(fd)
    print("ok", h.hexdigest())
except OSError as e:
    print("err", e.errno)
PY
}
# expect_bad IMG PATH WHAT: check reports problems (exit 1, no crash), a
# FUSE read of PATH fails with EIO while another file still reads right,
# and the kernel cannot read PATH either.
expect_bad() {
	local img=$1 path=$2 what=$3 rc=0
	"$ANOLE" image check "$img" >"$WORK/bad.out" 2>&1 || rc=$?
	check_not_crashed "$rc" "check ($what)"
	[ "$rc" -eq 1 ] || { cat "$WORK/bad.out" >&2; fail "check of $what exited $rc, expected 1"; }
	grep -q "$path" "$WORK/bad.out" || { cat "$WORK/bad.out" >&2; fail "check of $what does not name $path"; }
	fuse_mount "$img"
	"$PY" - "$WORK/mnt$path" "$SRC$path" "$WORK/mnt/text/t200000" "$SRC/text/t200000" <<'PY' ||
import errno, sys
bad, ref, good, goodref = sys.argv[1:5]
try:
    data = open(bad, "rb").read()
except OSError as e:
    if e.errno != errno.EIO:
        sys.exit("reading %s: %s, expected EIO" % (bad, e))
else:
    sys.exit("reading %s succeeded (%s bytes); expected EIO" %
             (bad, "the right" if data == open(ref, "rb").read() else "WRONG"))
if open(good, "rb").read() != open(goodref, "rb").read():
    sys.exit("an untouched file reads wrong: " + good)
PY
		fail "FUSE read ($what)"
	lazy_umount "$WORK/mnt"
	# and the kernel, reading page by page, fails too
	mkdir -p "$WORK/kmnt"
	if mount -o ro,loop -t erofs "$img" "$WORK/kmnt" 2>/dev/null; then
		add_mount "$WORK/kmnt"
		readpages "$WORK/kmnt$path" "$WORK/kern.txt"
		umount "$WORK/kmnt"
		grep -q '^err' "$WORK/kern.txt" || fail "$what: the kernel reads $path ($(cat "$WORK/kern.txt"))"
	fi
}

victim=/text/t1048579
for name in lz4hc legacy tail; do
	img=$WORK/$name.erofs
	read -r hdr first pcl plen nonhead <<<"$(offsets "$img" "$victim")"
	log "$name: corrupting $victim (map header at $hdr, first index at $first, pcluster at $pcl, $plen bytes)"

	cp "$img" "$WORK/c.erofs"
	poke "$WORK/c.erofs" "$first" "$nonhead"   # lcluster 0: NONHEAD, bogus lookback
	expect_bad "$WORK/c.erofs" "$victim" "$name: bogus first lcluster index"

	cp "$img" "$WORK/c.erofs"
	poke "$WORK/c.erofs" $((hdr + 6)) 55    # HEAD1/HEAD2 algorithm 5
	expect_bad "$WORK/c.erofs" "$victim" "$name: unknown algorithm in the map header"

	cp "$img" "$WORK/c.erofs"
	fill "$WORK/c.erofs" "$pcl" "$plen" 00  # a pcluster of zeros
	expect_bad "$WORK/c.erofs" "$victim" "$name: zeroed pcluster"

	cp "$img" "$WORK/c.erofs"
	fill "$WORK/c.erofs" $((pcl + plen - 64)) 64 ff   # the payload's end
	expect_bad "$WORK/c.erofs" "$victim" "$name: garbage at the end of the LZ4 stream"
done

# Random single-bit flips in the map header, the lcluster indexes and the
# pclusters of the victim: never a crash, a sanitizer report or a hang; and
# anole's FUSE mount reads the victim exactly as the kernel's EROFS does
# when read page by page (the pattern that maps every lcluster): the same
# bytes, or an error from both. (LZ4 has no checksum: a flipped literal is
# the same wrong byte for both, which is the point.) Images go to fresh
# file names so no loop device can serve stale blocks.
log "random flips, anole against the kernel"
flips=0 same=0 botherr=0
mkdir -p "$WORK/kmnt"
for name in lz4hc legacy big tail; do
	img=$WORK/$name.erofs
	read -r hdr first pcl plen _ <<<"$(offsets "$img" "$victim")"
	for seed in $(seq 1 4); do
		c=$WORK/flip-$name-$seed.erofs
		cp "$img" "$c"
		read -r off bit <<<"$("$PY" -c 'import random,sys; r=random.Random(int(sys.argv[1])); a,b,c,d=map(int,sys.argv[2:]); print(r.choice([a+r.randrange(8)]+[b+r.randrange(96)]*4+[c+r.randrange(d)]*4), r.randrange(8))' "$seed" "$hdr" "$first" "$pcl" "$plen")"
		"$PY" -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1)[0]; f.seek(int(sys.argv[2])); f.write(bytes([b ^ (1 << int(sys.argv[3]))]))' "$c" "$off" "$bit"
		what="$name, bit $bit of byte $off"
		rc=0
		timeout 60 "$ANOLE" image check -q "$c" >/dev/null 2>&1 || rc=$?
		check_not_crashed "$rc" "check ($what)"
		[ "$rc" -le 1 ] || fail "check ($what) exited $rc"
		rc=0
		timeout 60 "$ANOLE" image unpack -q "$c" "$WORK/dstfs/flip" >/dev/null 2>&1 || rc=$?
		check_not_crashed "$rc" "unpack ($what)"
		rm -rf "$WORK/dstfs/flip"
		kern="err mount"
		if mount -o ro,loop -t erofs "$c" "$WORK/kmnt" 2>/dev/null; then
			add_mount "$WORK/kmnt"
			readpages "$WORK/kmnt$victim" "$WORK/kern.txt"
			kern=$(cat "$WORK/kern.txt")
			umount "$WORK/kmnt"
		fi
		fuse_mount "$c"
		readpages "$WORK/mnt$victim" "$WORK/fuse.txt"
		lazy_umount "$WORK/mnt"
		ours=$(cat "$WORK/fuse.txt")
		case "$kern|$ours" in
		ok*"|"ok*) [ "$kern" = "$ours" ] || fail "$what: the kernel and anole read different bytes"
			same=$((same + 1)) ;;
		err*"|err 5") botherr=$((botherr + 1)) ;;
		*) fail "$what: the kernel read '$kern', anole's FUSE mount '$ours'" ;;
		esac
		rm -f "$c"
		flips=$((flips + 1))
	done
done
log "pass ($flips random flips: $same read the same through both, $botherr failed in both)"
