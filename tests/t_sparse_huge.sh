#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A 5 GiB sparse file with a few written bytes (one region straddles the
# 4 GiB line, one is the last byte): the image stays under 1 MiB, the mount
# shows the exact size, the written bytes at their offsets and zeroes in the
# holes (only a few regions are read, never the 5 GiB).  Also with chunks
# and a blob.
. "$TESTDIR/lib.sh"
need_root
need_anole

make_srcfs "$WORK/srcfs" 64m
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 1 --parts none --sparse-huge --manifest "$WORK/manifest.json"

verify() { # MNT
	"$PY" - "$1" "$WORK/manifest.json" <<'EOF'
import json, os, random, sys
mnt, man = sys.argv[1], json.load(open(sys.argv[2]))["huge"]
path = os.path.join(mnt, man["path"])
st = os.stat(path)
bad = []
if st.st_size != man["size"]:
    bad.append("size %d, expected %d" % (st.st_size, man["size"]))
regions = [(o, bytes.fromhex(h)) for o, h in man["regions"]]
fd = os.open(path, os.O_RDONLY)
def pread(off, n):
    out = b""
    while len(out) < n:
        b = os.pread(fd, n - len(out), off + len(out))
        if not b:
            break
        out += b
    return out
for off, data in regions:
    got = pread(off, len(data))
    if got != data:
        bad.append("bytes at %d: %r, expected %r" % (off, got[:32], data[:32]))
    # the bytes just around the region are holes
    before = pread(max(0, off - 64), min(64, off))
    after = pread(off + len(data), 64)
    if before.strip(b"\0") or after.strip(b"\0"):
        bad.append("non-zero bytes next to the region at %d" % off)
# holes: a few seeded probes far from the written regions, 64 KiB each
rng = random.Random(5)
probes = [1 << 20, (2 << 30) + 4096 * 7, (1 << 32) + (1 << 20), man["size"] - (1 << 20)]
probes += [rng.randrange(0, man["size"] - 65536) for _ in range(12)]
for p in probes:
    if any(o - 65536 <= p < o + len(d) for o, d in regions):
        continue
    blk = pread(p, 65536)
    if len(blk) != 65536 or blk.count(0) != 65536:
        bad.append("hole probe at %d: %d bytes, %d non-zero" % (p, len(blk), 65536 - blk.count(0)))
if pread(man["size"], 16):
    bad.append("data past the end of the file")
os.close(fd)
print("\n".join(bad) or "sparse file ok: size %d, %d regions, %d hole probes" % (
    st.st_size, len(regions), len(probes)))
sys.exit(1 if bad else 0)
EOF
}

IMG=$WORK/huge.erofs
SECONDS=0
build_ok "$SRC" "$IMG"
log "flat build: ${SECONDS}s, image $(file_size "$IMG") bytes"
[ "$SECONDS" -le 60 ] || fail "building one 5 GiB sparse file took ${SECONDS}s (holes read?)"
if using_override; then
	log "(mkfs.erofs 1.5 stores holes: no size bound)"
else
	assert_le "$(file_size "$IMG")" $((1 << 20)) "image size of a 5 GiB sparse file"
fi
mount_image "$IMG" "$WORK/mnt"
verify "$WORK/mnt" || fail "sparse file content on the mount (flat build)"
compare_trees "$SRC" "$WORK/mnt" --hole-probes 8
umount_image "$WORK/mnt"
check_image "$IMG"

log "chunked, 1M chunks, blob"
build_ok "$SRC" "$WORK/huge-blob.erofs" --chunk-size 1M --blob "$WORK/huge.blob"
# a chunk holding data is stored whole: the blob is at most the distinct
# non-zero 1 MiB chunks; the image (metadata) stays under 1 MiB
uniq=$("$PY" "$TESTDIR/treestat.py" "$SRC" --chunk-size 1048576 |
	"$PY" -c 'import json,sys; print(json.load(sys.stdin)["chunks_1048576"]["unique_bytes"])')
log "blob $(file_size "$WORK/huge.blob") bytes, distinct non-zero 1M chunks $uniq bytes"
if ! using_override; then
	assert_le "$(file_size "$WORK/huge-blob.erofs")" $((1 << 20)) "image size of a 5 GiB sparse file (blob build)"
	assert_le "$(file_size "$WORK/huge.blob")" "$uniq" "blob size of a 5 GiB sparse file"
fi
mount_image "$WORK/huge-blob.erofs" "$WORK/mnt-blob" "$WORK/huge.blob"
verify "$WORK/mnt-blob" || fail "sparse file content on the mount (chunked build with blob)"
umount_image "$WORK/mnt-blob"
check_image "$WORK/huge-blob.erofs" --device "$WORK/huge.blob"
log "pass"
