#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# A directory of 100 000 entries: after build and kernel mount, readdir gives
# exactly the source's names, every entry compares equal, and lookups by
# name work (the kernel binary-searches directory blocks, so this depends on
# the builder's sort order and block split): a sample of existing names is
# found, names that sort between them are not.
. "$TESTDIR/lib.sh"
need_root
need_anole
N=${BIG_DIR_ENTRIES:-100000}

make_srcfs "$WORK/srcfs" 512m
SRC=$WORK/srcfs/tree
SECONDS=0
gen_tree "$SRC" --seed 9 --parts none --big-dir "$N"
log "generated $N entries in ${SECONDS}s"

IMG=$WORK/big.erofs
SECONDS=0
build_ok "$SRC" "$IMG"
log "built in ${SECONDS}s: $(file_size "$IMG") bytes"
mount_image "$IMG" "$WORK/mnt"

"$PY" - "$SRC/bigdir" "$WORK/mnt/bigdir" <<'EOF' || fail "big directory names or lookups"
import os, random, sys
src, mnt = sys.argv[1], sys.argv[2]
a, b = set(os.listdir(src)), set(os.listdir(mnt))
bad = []
if a != b:
    bad.append("readdir differs: %d in src, %d on mount; missing %s; extra %s" % (
        len(a), len(b), sorted(a - b)[:5], sorted(b - a)[:5]))
names = sorted(a)
rng = random.Random(1)
sample = names[:50] + names[-50:] + rng.sample(names, min(3000, len(names)))
for n in sample:
    try:
        s1, s2 = os.lstat(os.path.join(src, n)), os.lstat(os.path.join(mnt, n))
        if (s1.st_size, s1.st_mode, s1.st_mtime_ns) != (s2.st_size, s2.st_mode, s2.st_mtime_ns):
            bad.append("%s: lookup finds a different inode" % n)
    except OSError as e:
        bad.append("lookup %s: %s" % (n, e))
# names that sort between, before and after existing ones must not be found
absent = ["", "0", "e", "e0", "e000000", "e000000-x", "e0500000", "zzz", "e099999~"]
absent += [n + "\x01" for n in rng.sample(names, 200)] + [n[:-1] + "+" for n in rng.sample(names, 200)]
for n in absent:
    if not n or n in a:
        continue
    if os.path.lexists(os.path.join(mnt, n)):
        bad.append("lookup of absent name %r succeeded" % n)
print("\n".join(bad[:30]) or "big dir ok: %d names, %d lookups, %d negative lookups" % (
    len(b), len(sample), len(absent)))
sys.exit(1 if bad else 0)
EOF
SECONDS=0
compare_trees "$SRC" "$WORK/mnt"
log "compare took ${SECONDS}s"
umount_image "$WORK/mnt"
SECONDS=0
check_image "$IMG"
log "check took ${SECONDS}s"
log "pass"
