#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Paths longer than PATH_MAX (a chain of 20 directories with 255-byte
# names, a file with an xattr at the bottom) are legal on Linux; the builder
# must store them (the kernel and `anole image unpack` then see them whole).
. "$TESTDIR/lib.sh"
need_root
need_anole

make_srcfs "$WORK/srcfs" 256m
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 5 --parts longpath,deep
IMG=$WORK/long.erofs
build_ok "$SRC" "$IMG"
mount_image "$IMG" "$WORK/mnt"
compare_trees "$SRC" "$WORK/mnt"
umount_image "$WORK/mnt"
check_image "$IMG"
assert_rc 0 "$ANOLE" image unpack "$IMG" "$WORK/out"
compare_trees "$SRC" "$WORK/out"
log "pass"
