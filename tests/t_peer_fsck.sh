#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Interoperability with Debian's erofs-utils (1.5):
#  * anole images (flat, chunked 4K/64K, chunked with a blob) pass
#    fsck.erofs with no "<E>" line;
#  * `fsck.erofs --extract` of anole images gives the source's entries,
#    types, sizes, contents, symlink targets, owners and mtimes (fsck 1.5
#    restores no xattrs or hard links, drops setuid/setgid by chowning after
#    chmod, and skips holes without seeking -- so the extracted tree has no
#    sparse files and those fields are not compared);
#  * the other way round: images made by mkfs.erofs pass `anole image check`
#    and `anole image unpack` reproduces their source exactly.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd fsck.erofs mkfs.erofs

make_srcfs "$WORK/srcfs"
make_srcfs "$WORK/dstfs"
SRC=$WORK/srcfs/tree
parts=standard
using_override && parts=types,perms,owners,times,xattrs,acls,hardlinks,sizes,sparse,deep
gen_tree "$SRC" --seed 81 --small --parts "$parts"

log "fsck.erofs on anole images"
build_ok "$SRC" "$WORK/flat.erofs" -q
fsck_clean "$WORK/flat.erofs"
for cs in 4096 64K; do
	build_ok "$SRC" "$WORK/c$cs.erofs" -q --chunk-size "$cs"
	fsck_clean "$WORK/c$cs.erofs"
done
build_ok "$SRC" "$WORK/blob.erofs" -q --chunk-size 64K --blob "$WORK/blob.data"
fsck_clean "$WORK/blob.erofs" --device="$WORK/blob.data"

log "fsck.erofs --extract of anole images (tree without holes)"
XSRC=$WORK/srcfs/nohole
xparts=types,perms,owners,times,xattrs,acls,hardlinks,sizes,names,deep
using_override && xparts=types,perms,owners,times,xattrs,acls,hardlinks,sizes,deep
gen_tree "$XSRC" --seed 82 --small --parts "$xparts"
# a builder may store all-zero blocks as holes, which fsck 1.5 cannot
# extract: leave out files holding one (keeping their directories' mtimes)
"$PY" - "$XSRC" <<'EOF'
import os, stat, sys
root = sys.argv[1]
for dirpath, dirs, files in os.walk(root):
    for f in files:
        p = os.path.join(dirpath, f)
        st = os.lstat(p)
        if not stat.S_ISREG(st.st_mode):
            continue
        with open(p, "rb") as fh:
            while True:
                b = fh.read(4096)
                if not b:
                    break
                if b.count(0) != len(b):
                    continue
                d = os.stat(dirpath)
                os.unlink(p)
                os.utime(dirpath, ns=(d.st_atime_ns, d.st_mtime_ns))
                print("left out (zero block):", os.path.relpath(p, root))
                break
EOF
build_ok "$XSRC" "$WORK/x.erofs" -q
fsck_clean "$WORK/x.erofs" --extract="$WORK/dstfs/x"
compare_trees "$XSRC" "$WORK/dstfs/x" --ignore xattrs,hardlinks,nlink,mode
build_ok "$XSRC" "$WORK/xb.erofs" -q --chunk-size 4096 --blob "$WORK/xb.data"
fsck_clean "$WORK/xb.erofs" --device="$WORK/xb.data" --extract="$WORK/dstfs/xb"
compare_trees "$XSRC" "$WORK/dstfs/xb" --ignore xattrs,hardlinks,nlink,mode

if ! using_override; then
	log "mkfs.erofs images through anole check and unpack"
	# mkfs.erofs 1.5 cannot take 255-byte names
	MSRC=$WORK/srcfs/formkfs
	gen_tree "$MSRC" --seed 83 --small --parts types,perms,owners,times,xattrs,acls,hardlinks,sizes,sparse,deep
	mkfs.erofs --quiet "$WORK/m.erofs" "$MSRC" >/dev/null 2>&1 || fail "mkfs.erofs failed"
	check_image "$WORK/m.erofs"
	assert_rc 0 "$ANOLE" image unpack -q "$WORK/m.erofs" "$WORK/dstfs/m"
	compare_trees "$MSRC" "$WORK/dstfs/m"
	mkfs.erofs --quiet --chunksize=4096 "$WORK/mc.erofs" "$MSRC" >/dev/null 2>&1 || fail "mkfs.erofs --chunksize failed"
	check_image "$WORK/mc.erofs"
	assert_rc 0 "$ANOLE" image unpack -q "$WORK/mc.erofs" "$WORK/dstfs/mc"
	compare_trees "$MSRC" "$WORK/dstfs/mc"
	mkfs.erofs --quiet --chunksize=65536 --blobdev="$WORK/mb.data" "$WORK/mb.erofs" "$MSRC" >/dev/null 2>&1 ||
		fail "mkfs.erofs --blobdev failed"
	check_image "$WORK/mb.erofs" --device "$WORK/mb.data"
	assert_rc 0 "$ANOLE" image unpack -q "$WORK/mb.erofs" "$WORK/dstfs/mb" --device "$WORK/mb.data"
	compare_trees "$MSRC" "$WORK/dstfs/mb"
fi
log "pass"
