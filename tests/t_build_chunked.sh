#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Chunked images: --chunk-size 4K, 64K and 1M (data in the image), and
# --chunk-size 64K --blob BLOB (data in an extra device, mounted with
# -o device=): each mounts and compares equal to the source, passes fsck.erofs
# and `anole image check`.  Dedup: a tree built from a few distinct 64 KiB
# chunks gives a blob no larger than its distinct chunks; identical files
# are stored once in flat images too (and --no-dedupe turns that off).
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd fsck.erofs

make_srcfs "$WORK/srcfs"
SRC=$WORK/srcfs/tree
parts=standard,dedup
using_override && parts=types,perms,owners,times,xattrs,acls,hardlinks,sizes,sparse,deep,dedup
gen_tree "$SRC" --seed 21 --small --parts "$parts"

stat_json=$WORK/treestat.json
"$PY" "$TESTDIR/treestat.py" "$SRC" --chunk-size 4096 --chunk-size 65536 --chunk-size 1048576 >"$stat_json"
ts() { "$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d = d[k]
print(d)' "$stat_json" "$1"; }

for cs in 4096 64K 1M; do
	log "chunk size $cs, data in the image"
	IMG=$WORK/chunk-$cs.erofs
	build_ok "$SRC" "$IMG" --chunk-size "$cs"
	mount_image "$IMG" "$WORK/mnt-$cs"
	compare_trees "$SRC" "$WORK/mnt-$cs"
	umount_image "$WORK/mnt-$cs"
	fsck_clean "$IMG"
	check_image "$IMG"
	# identical chunks are stored once: the image holds at most every
	# distinct non-zero chunk plus metadata
	b=$(_size_bytes "$cs")
	uniq=$(ts "chunks_$b.unique_bytes")
	bound=$(( uniq + $(ts xattr_bytes) + $(ts inodes) * 1024 + (1 << 20) ))
	using_override || assert_le "$(file_size "$IMG")" "$bound" \
		"image with $cs chunks vs distinct chunk bytes $uniq + metadata"
done

log "chunk size 64K, data in a blob device"
IMG=$WORK/blob.erofs
BLOB=$WORK/blob.data
if using_override; then
	build_ok "$SRC" "$IMG" --chunk-size 64K --blob "$BLOB"
else
	build_ok "$SRC" "$IMG" --chunk-size 64K --blob "$BLOB" --json >"$WORK/build.json"
	cat "$WORK/build.json"
	assert_eq "$(json_get "$WORK/build.json" blob_bytes)" "$(file_size "$BLOB")" "blob_bytes vs blob size"
	assert_eq "$(json_get "$WORK/build.json" blob_digest)" "sha256:$(sha256 "$BLOB")" "blob_digest"
	assert_eq "$(json_get "$WORK/build.json" image_bytes)" "$(file_size "$IMG")" "image_bytes vs image size"
fi
assert_exists "$BLOB"
uniq=$(ts chunks_65536.unique_bytes)
total=$(ts apparent_bytes)
log "blob $(file_size "$BLOB") bytes; distinct 64K chunks $uniq bytes; file data $total bytes"
using_override || assert_le "$(file_size "$BLOB")" $(( uniq + 4096 )) "blob size vs distinct 64K chunks"
# the image itself is metadata only
meta_bound=$(( $(ts xattr_bytes) + $(ts inodes) * 1024 + (1 << 20) ))
using_override || assert_le "$(file_size "$IMG")" "$meta_bound" "metadata image size with a blob"

ANOLE_MOUNT_METHOD="file" mount_image "$IMG" "$WORK/mnt-blob-file" "$BLOB"
compare_trees "$SRC" "$WORK/mnt-blob-file"
umount_image "$WORK/mnt-blob-file"
ANOLE_MOUNT_METHOD="loop" mount_image "$IMG" "$WORK/mnt-blob-loop" "$BLOB"
compare_trees "$SRC" "$WORK/mnt-blob-loop"
umount_image "$WORK/mnt-blob-loop"
fsck_clean "$IMG" --device="$BLOB"
check_image "$IMG" --device "$BLOB"
# without its blob the image cannot be fully checked: check must fail or
# at least say that the device's data was not read
rc=0
"$ANOLE" image check "$IMG" >"$WORK/check-noblob.out" 2>&1 || rc=$?
check_not_crashed "$rc" "check without --device"
cat "$WORK/check-noblob.out"
[ "$rc" -ne 0 ] || assert_grep "device" "$WORK/check-noblob.out" \
	"check of a blob image without --device passed without mentioning the device"

# ---- dedup bounds on a tree made of few distinct chunks
log "dedup: tree of repeated 64 KiB chunks and identical files"
DSRC=$WORK/srcfs/dedup
gen_tree "$DSRC" --seed 3 --parts dedup
"$PY" "$TESTDIR/treestat.py" "$DSRC" --chunk-size 65536 >"$WORK/dedup.json"
cat "$WORK/dedup.json"
dstat() { "$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d = d[k]
print(d)' "$WORK/dedup.json" "$1"; }
duniq=$(dstat chunks_65536.unique_bytes)
dtotal=$(dstat apparent_bytes)
dfiles=$(dstat unique_file_bytes)
assert_ge "$dtotal" $(( duniq * 10 )) "generator: dedup tree is not redundant enough"

build_ok "$DSRC" "$WORK/dedup.erofs" --chunk-size 64K --blob "$WORK/dedup.blob"
log "dedup blob $(file_size "$WORK/dedup.blob") bytes for $dtotal bytes of data ($duniq distinct)"
using_override || assert_le "$(file_size "$WORK/dedup.blob")" $(( duniq + 4096 )) \
	"dedup blob vs distinct chunk bytes"
mount_image "$WORK/dedup.erofs" "$WORK/mnt-dedup" "$WORK/dedup.blob"
compare_trees "$DSRC" "$WORK/mnt-dedup"
umount_image "$WORK/mnt-dedup"

build_ok "$DSRC" "$WORK/dedup-flat.erofs"
log "flat image $(file_size "$WORK/dedup-flat.erofs") bytes; distinct file contents $dfiles bytes"
using_override || assert_le "$(file_size "$WORK/dedup-flat.erofs")" $(( dfiles + (512 << 10) )) \
	"flat image with identical files vs distinct file bytes"
mount_image "$WORK/dedup-flat.erofs" "$WORK/mnt-flat"
compare_trees "$DSRC" "$WORK/mnt-flat"
umount_image "$WORK/mnt-flat"
fsck_clean "$WORK/dedup-flat.erofs"
check_image "$WORK/dedup-flat.erofs"
if ! using_override; then
	build_ok "$DSRC" "$WORK/nodedup.erofs" --no-dedupe
	assert_ge "$(file_size "$WORK/nodedup.erofs")" $(( dtotal * 9 / 10 )) \
		"--no-dedupe image should hold every file's data"
	mount_image "$WORK/nodedup.erofs" "$WORK/mnt-nodedup"
	compare_trees "$DSRC" "$WORK/mnt-nodedup"
	umount_image "$WORK/mnt-nodedup"
fi
log "pass"
