#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# What a start fetches from a lazy mount (issue #11 §2b), in both modes, on
# a generated tree plus a directory of small files (a "lib/") and big ones:
# - reading a few whole small files fetches exactly the chunk-table entries
#   holding them (the bound: what the reads need; directories and inodes are
#   in the metadata image, not fetched), and kernel mode no more than FUSE
#   mode: the blob files are read with direct I/O, so no readahead of theirs
#   pulls in the neighbouring files' chunks; in kernel mode also with
#   whole-chunk entries (--fetch-unit = chunk size, the format before fetch
#   units);
# - one page of a big file (read with POSIX_FADV_RANDOM: no readahead)
#   fetches the one fetch unit holding it, not its 1 MiB chunk;
# - a reader streaming through a big file costs the units of its first
#   512 KiB and then a request per chunk (fetch-ahead), not one per unit;
# - a corrupt unit gives EIO to its reader only (kernel mode); the other
#   units of its chunk read fine.
. "$TESTDIR/lib.sh"
. "$TESTDIR/lazy_lib.sh"
need_root
need_anole
[ -e /dev/fuse ] || skip "no /dev/fuse"

make_srcfs "$WORK/srcfs" 256m
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 61 --small --parts types,sizes,names
"$PY" - "$SRC" <<'EOF' || fail "making lib/ and big/"
# lib/: 48 small files of 3..40 KiB of compressible text, adjacent in the
# blob (depth-first data order): a readahead of the blob would reach the
# neighbours of the files read. big/: two 6 MiB files mixing text and
# random bytes (6 chunks of 1 MiB, 96 units of 64 KiB each).
import os, random, sys
rng = random.Random(61)
words = [bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
         for _ in range(400)]
def text(n):
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])
os.makedirs(os.path.join(sys.argv[1], "lib"))
os.makedirs(os.path.join(sys.argv[1], "big"))
for i in range(48):
    with open(os.path.join(sys.argv[1], "lib", "f%02d.so" % i), "wb") as f:
        f.write(text(rng.randint(3 << 10, 40 << 10)))
for name in ("a.bin", "b.bin"):
    with open(os.path.join(sys.argv[1], "big", name), "wb") as f:
        for _ in range(96):
            f.write(text(40 << 10) + rng.randbytes(24 << 10))
EOF
BLOBS=$WORK/blobs
mkdir -p "$BLOBS"
"$ANOLE" image build -q "$SRC" -o "$WORK/units.img" --blob-dir "$BLOBS" --chunk-size 1M \
	--json >"$WORK/units.json" || fail "image build (fetch units)"
"$ANOLE" image build -q "$SRC" -o "$WORK/whole.img" --blob-dir "$BLOBS" --chunk-size 1M \
	--fetch-unit 1M --json >"$WORK/whole.json" || fail "image build (whole chunks)"
MNT=$WORK/mnt

# units IMG SPEC...: "count bytes" of the chunk-table entries holding SPECs
units() {
	"$PY" "$TESTDIR/erofs_img.py" "$@" | "$PY" -c \
		'import json, sys; d = json.load(sys.stdin); print(d["count"], d["bytes"])'
}
# the image must have split its big chunks into 64 KiB units, and not the other
read -r n_big b_big <<<"$(units "$WORK/units.img" units big/a.bin)"
assert_eq "$n_big" 96 "entries of big/a.bin (6 MiB in 64 KiB fetch units)"
read -r n_whole _ <<<"$(units "$WORK/whole.img" units big/a.bin)"
assert_eq "$n_whole" 6 "entries of big/a.bin with --fetch-unit 1M (whole chunks)"

# page_read FILE OFF: one page of a file with POSIX_FADV_RANDOM (no readahead)
page_read() {
	"$PY" - "$SRC/$1" "$MNT/$1" "$2" <<'EOF' || fail "reading one page of $1 at $2"
import os, sys
off = int(sys.argv[3])
want = open(sys.argv[1], "rb").read()[off:off + 4096]
fd = os.open(sys.argv[2], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)   # the page asked, no readahead
got = os.pread(fd, 4096, off)
os.close(fd)
sys.exit(0 if got == want else "wrong bytes at %d" % off)
EOF
}

FILES=(lib/f10.so lib/f11.so lib/f12.so lib/f30.so lib/f47.so)
OFF=$(((2 << 20) + (5 << 16) + 12288))      # big/a.bin: chunk 2, unit 5, third page
read -r n_page b_page <<<"$(units "$WORK/units.img" units "big/a.bin:$OFF+4096")"
read -r n_chunk b_chunk <<<"$(units "$WORK/units.img" units "big/a.bin:$((2 << 20))+$((1 << 20))")"
assert_eq "$n_page" 1 "entries holding one page"
assert_eq "$n_chunk" 16 "entries of one 1 MiB chunk"
read -r n_b b_b <<<"$(units "$WORK/units.img" units big/b.bin)"
# A stream through big/b.bin: before it passes 512 KiB its reads fetch their
# own units (at most 512K/64K + 1 = 9 requests), then one request per chunk
# it enters (6). Reads the kernel issues concurrently may reach the daemon
# out of order and restart the count: allowed twice over. Without
# fetch-ahead its 96 units cost 48 (FUSE: 128 KiB reads) to 96 (kernel:
# 64 KiB reads) requests.
max_req=$((2 * (9 + 6)))

# (whole chunks: kernel mode only, its fetch against the same bound)
for img in units whole; do
	read -r n_want b_want <<<"$(units "$WORK/$img.img" units "${FILES[@]}")"
	declare -A GOT=()
	for mode in kernel fuse; do
		[ "$img" = units ] || [ "$mode" = kernel ] || continue
		lazy_mount "$WORK/$img.img" "$MNT" "$BLOBS" "$mode" --cache "$WORK/cache-$img-$mode"
		ls -lR "$MNT" >/dev/null              # metadata only: nothing to fetch
		lazy_snap "$MNT"
		assert_eq "$S_bytes_fetched" 0 "bytes fetched by listing the tree ($img, $mode)"

		# a start that reads a few small files: exactly their entries
		lazy_read "$SRC" "$MNT" "${FILES[@]}"
		lazy_snap "$MNT"
		log "  $img $mode: ${#FILES[@]} small files read: $S_bytes_fetched bytes in $S_chunks_fetched entries, $S_fetch_requests requests (their entries: $n_want, $b_want bytes)"
		assert_le "$S_bytes_fetched" "$b_want" "bytes fetched to read ${#FILES[*]} small files ($img, $mode), bound: their entries"
		assert_eq "$S_bytes_fetched" "$b_want" "bytes fetched to read ${#FILES[*]} whole files ($img, $mode)"
		assert_eq "$S_chunks_fetched" "$n_want" "entries fetched ($img, $mode)"
		GOT[$mode]=$S_bytes_fetched
		[ "$img" = units ] || { lazy_umount "$MNT"; continue; }

		# one page of a big file, no readahead: its 64 KiB unit, not the chunk
		b0=$S_bytes_fetched n0=$S_chunks_fetched
		page_read big/a.bin "$OFF"
		lazy_snap "$MNT"
		log "  $mode: one page: $((S_bytes_fetched - b0)) bytes in $((S_chunks_fetched - n0)) entries (its unit: $b_page bytes; its chunk: $b_chunk bytes)"
		assert_eq "$((S_chunks_fetched - n0))" 1 "entries fetched for one page ($mode)"
		assert_eq "$((S_bytes_fetched - b0))" "$b_page" "bytes fetched for one page ($mode)"

		# a stream through a big file: fetch-ahead keeps requests per chunk
		b0=$S_bytes_fetched r0=$S_fetch_requests
		lazy_read "$SRC" "$MNT" big/b.bin
		lazy_snap "$MNT"
		log "  $mode: streaming big/b.bin: $((S_bytes_fetched - b0)) bytes in $((S_fetch_requests - r0)) requests ($n_b units, $b_b bytes)"
		assert_eq "$((S_bytes_fetched - b0))" "$b_b" "bytes fetched reading big/b.bin whole ($mode)"
		assert_le "$((S_fetch_requests - r0))" "$max_req" "requests to stream through big/b.bin ($mode)"
		lazy_umount "$MNT"
	done
	[ "$img" = whole ] || assert_le "${GOT[kernel]}" "${GOT[fuse]}" "kernel-mode fetch vs FUSE-mode fetch ($img)"
	unset GOT
done

# --- a corrupt unit: EIO for a page in it, its neighbours in the chunk fine
BAD=$WORK/bad-blobs
mkdir -p "$BAD"
DIG=$(json_get "$WORK/units.json" blob_digest); DIG=${DIG#sha256:}
cp "$BLOBS/$DIG" "$BAD/$DIG"
"$PY" - "$WORK/units.img" "$BAD/$DIG" "$OFF" <<'EOF' || fail "corrupting a unit"
import sys
sys.path.insert(0, __import__("os").environ["TESTDIR"])
from erofs_img import Image
img = Image(sys.argv[1])
(dev, k), = img.units_of(b"big/a.bin", int(sys.argv[3]), 4096)
uoff, usize, coff, csize = img.chunk_tables()[dev][k]
with open(sys.argv[2], "r+b") as f:
    f.seek(coff + csize // 2)
    b = f.read(1)
    f.seek(coff + csize // 2)
    f.write(bytes([b[0] ^ 0x5a]))
EOF
for mode in kernel; do     # (FUSE mode's EIO path: t_lazy_http)
	lazy_mount "$WORK/units.img" "$MNT" "$BAD" "$mode" --cache "$WORK/cache-d-$mode"
	"$PY" - "$SRC/big/a.bin" "$MNT/big/a.bin" "$OFF" <<'EOF' || fail "corrupt unit ($mode)"
import errno, os, sys
off = int(sys.argv[3])
src = open(sys.argv[1], "rb").read()
fd = os.open(sys.argv[2], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
try:
    os.pread(fd, 4096, off)
    sys.exit("a page of the corrupt unit was served")
except OSError as e:
    if e.errno != errno.EIO:
        raise
for o in (off - (1 << 16), off + (1 << 16)):    # the units before and after it
    if os.pread(fd, 4096, o) != src[o:o + 4096]:
        sys.exit("wrong bytes at %d" % o)
os.close(fd)
EOF
	lazy_snap "$MNT"
	assert_ge "$S_verify_failures" 1 "verification failures counted ($mode)"
	lazy_umount "$MNT"
done
log "ok"
