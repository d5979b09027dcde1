#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# needs-features: zstd lz4 lzma deflate
# --compress-hints: per-file algorithm / pcluster / none rules, first match
# wins. Each file must be stored exactly as an image built with its rule as
# the default stores it: the kernel's block count of the file (i_blocks is
# the compressed block count) is compared between the hinted image and one
# reference image per rule, and every image reads back as the source.
# Bad -z / -C / hints input fails with a message naming the problem and
# leaves no image behind.
. "$TESTDIR/lib.sh"
need_root
need_anole

make_srcfs "$WORK/srcfs"
SRC=$WORK/srcfs/tree
mkdir -p "$SRC/docs" "$SRC/lib/sub" "$SRC/data"
"$PY" - "$SRC" <<'EOF'
import os, random, sys
random.seed(9)
# a large vocabulary: text that compresses like text, not like a pattern
words = ["".join(random.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(random.randint(2, 11)))
         for _ in range(3000)]
def prose(n):
    out, size = [], 0
    while size < n:
        w = random.choice(words); out.append(w); size += len(w) + 1
    return " ".join(out)[:n]
root = sys.argv[1]
for i in range(6):
    open(os.path.join(root, "docs", "d%d.md" % i), "w").write(prose(20000 + 7000 * i))
for i in range(6):
    open(os.path.join(root, "lib", "f%d.c" % i), "w").write(prose(9000 + 3000 * i))
open(os.path.join(root, "lib", "sub", "g.c"), "w").write(prose(50000))
open(os.path.join(root, "lib", "readme.txt"), "w").write(prose(40000))
open(os.path.join(root, "data", "noise.bin"), "wb").write(random.randbytes(300000))
open(os.path.join(root, "data", "text.bin"), "w").write(prose(100000))
open(os.path.join(root, "top.txt"), "w").write(prose(70000))
EOF
cat >"$WORK/hints" <<'EOF'
# stored as they are
none \.bin$
lzma,9 256K ^docs/
   lz4    ^lib/[^/]*\.c$
EOF

build_ok "$SRC" "$WORK/h.erofs" -z zstd --compress-hints "$WORK/hints" --quiet
build_ok "$SRC" "$WORK/none.erofs" --quiet
build_ok "$SRC" "$WORK/lzma.erofs" -z lzma,9 -C 256K --quiet
build_ok "$SRC" "$WORK/lz4.erofs" -z lz4 --quiet
build_ok "$SRC" "$WORK/zstd.erofs" -z zstd --quiet
for i in h none lzma lz4 zstd; do
	mount_image "$WORK/$i.erofs" "$WORK/m-$i"
	compare_trees "$SRC" "$WORK/m-$i"
done

blocks() { stat -c %b "$WORK/m-$1/$2"; }
expect_rule() { # PATH RULE-IMAGE
	local h r
	h=$(blocks h "$1"); r=$(blocks "$2" "$1")
	assert_eq "$h" "$r" "512-byte blocks of $1 (hinted vs $2 image)"
}
checked=0
while read -r f; do
	case "$f" in
	*.bin) rule=none ;;
	docs/*) rule=lzma ;;
	lib/*/*) rule=zstd ;;      # the lz4 rule's [^/]* does not cross directories
	lib/*.c) rule=lz4 ;;
	*) rule=zstd ;;
	esac
	expect_rule "$f" "$rule"
	checked=$((checked + 1))
done < <(cd "$SRC" && find . -type f | sed 's|^\./||' | sort)
assert_ge "$checked" 16 "files checked"
# the rules really differ on these files, so the comparison can fail
assert_ne "$(blocks lzma docs/d5.md)" "$(blocks zstd docs/d5.md)" "lzma vs zstd blocks of docs/d5.md"
assert_ne "$(blocks lz4 lib/f5.c)" "$(blocks zstd lib/f5.c)" "lz4 vs zstd blocks of lib/f5.c"
assert_ne "$(blocks none data/text.bin)" "$(blocks zstd data/text.bin)" "stored vs zstd blocks of data/text.bin"
for i in h none lzma lz4 zstd; do umount_image "$WORK/m-$i"; done
log "$checked files stored by their rule"

# bad input: a message naming the problem, exit status 2 or 1, no image
bad() { # EXPECTED-MESSAGE ARGS...
	local msg=$1 rc=0; shift
	rm -f "$WORK/bad.erofs"
	"$ANOLE" image build "$SRC" -o "$WORK/bad.erofs" "$@" >"$WORK/bad.out" 2>&1 || rc=$?
	check_not_crashed "$rc" "build $*"
	[ "$rc" -ne 0 ] || fail "build $* succeeded"
	assert_grep "$msg" "$WORK/bad.out" "message for $*"
	assert_missing "$WORK/bad.erofs"
	[ -z "$(ls -A "$WORK" | grep -E '^\.?bad\.erofs.')" ] || fail "temporary files left by build $*"
}
bad "unknown algorithm" -z lz5
bad "level must be" -z zstd,99
bad "pcluster-size" -z lz4 -C 5000
bad "pcluster-size" -z lz4 -C 2M
printf 'lz4 [unclosed\n' >"$WORK/h1"
bad "h1:1:" -z lz4 --compress-hints "$WORK/h1"
printf '# ok\nzstd\n' >"$WORK/h2"
bad "h2:2: expected ALG" -z lz4 --compress-hints "$WORK/h2"
printf 'brotli x\n' >"$WORK/h3"
bad "h3:1:" -z lz4 --compress-hints "$WORK/h3"
bad "compress hints $WORK/missing" -z lz4 --compress-hints "$WORK/missing"
bad "chunks or blobs" -z lz4 --chunk-size 1M
log "ok"
