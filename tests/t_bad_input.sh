#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Bad input, handled cleanly:
#  * build fails (non-zero exit, a message naming the culprit, no image, no
#    blob, no .NAME.XXXXXX temp file, an existing image left untouched) for:
#    a missing source, a source that is a file, a missing or read-only output
#    directory, a source file whose read() fails (EIO), SIGTERM mid-build;
#    an xattr value of 65536 bytes (more than EROFS can store) is refused or
#    stored exactly
#  * check / inspect / unpack of missing, empty, truncated and garbage images
#    exit non-zero (not a crash) with a message naming the image
#  * unpack of hostile images (dirents renamed to "../", "a/b", duplicate
#    names shadowing a symlink to outside) writes nothing outside DIR, and
#    check rejects those images.
. "$TESTDIR/lib.sh"
need_root
need_anole
need_cmd mkfs.erofs

make_srcfs "$WORK/srcfs" 3g
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 61 --small --parts types,xattrs,hardlinks
OUT=$WORK/out
mkdir -p "$OUT"

# expect_build_fail WHAT PATTERN SRC IMG [build options]: the build fails,
# stderr matches PATTERN, and the output directory holds nothing new.
expect_build_fail() {
	local what=$1 pat=$2 src=$3 img=$4; shift 4
	local dir before after rc=0
	dir=$(dirname "$img")
	before=$(ls -A "$dir" 2>/dev/null || true)
	build_image "$src" "$img" "$@" >"$WORK/build.out" 2>"$WORK/build.err" || rc=$?
	cat "$WORK/build.err"
	check_not_crashed "$rc" "build ($what)"
	[ "$rc" -ne 0 ] || fail "build ($what) succeeded"
	[ -s "$WORK/build.err" ] || fail "build ($what) failed without a message"
	grep -q -F -e "$pat" "$WORK/build.err" || fail "build ($what): message does not name '$pat'"
	after=$(ls -A "$dir" 2>/dev/null || true)
	[ "$before" = "$after" ] || fail "build ($what) left files in $dir: $(comm -13 <(echo "$before") <(echo "$after") | tr '\n' ' ')"
	log "ok: build fails on $what (exit $rc)"
}

log "---- build failures"
expect_build_fail "a missing source" "$WORK/nonexistent" "$WORK/nonexistent" "$OUT/a.erofs"
echo data >"$WORK/plainfile"
expect_build_fail "a source that is a file" "$WORK/plainfile" "$WORK/plainfile" "$OUT/b.erofs"
expect_build_fail "a missing output directory" "$WORK/no/such/dir" "$SRC" "$WORK/no/such/dir/c.erofs"
mkdir -p "$WORK/ro"
mount -t tmpfs -o ro,size=1m anole-test-ro "$WORK/ro"
expect_build_fail "a read-only output directory" "$WORK/ro/d.erofs" "$SRC" "$WORK/ro/d.erofs"
expect_build_fail "a blob in a missing directory" "$WORK/no/blob" "$SRC" "$OUT/e.erofs" \
	--chunk-size 64K --blob "$WORK/no/blob"
assert_missing "$OUT/e.erofs"

log "---- a source file whose read fails with EIO"
mkdir -p "$WORK/eio-src/sub"
head -c 8192 /dev/urandom >"$WORK/eio-src/bad.bin"
echo fine >"$WORK/eio-src/good.txt"
echo x >"$WORK/eio-src/sub/x"
mkfs.erofs --quiet "$WORK/eio.img" "$WORK/eio-src" >/dev/null
"$PY" - "$WORK/eio.img" <<'EOF'
import struct, sys
sys.path.insert(0, __import__("os").environ["TESTDIR"])
import erofs_img
img = erofs_img.Image(sys.argv[1])
ino = img.inode(img.lookup(b"bad.bin"))
assert ino.layout in (0, 2) and ino.size == 8192, (ino.layout, ino.size)
struct.pack_into("<I", img.data, ino.off + 16, 0x0FFFFFF0)   # i_u: startblk far past the end
img.fix_checksum()
img.save()
EOF
mount_image "$WORK/eio.img" "$WORK/eio-mnt"
if cat "$WORK/eio-mnt/bad.bin" >/dev/null 2>&1; then
	fail "test setup: reading the damaged source file did not fail"
fi
echo "old image" >"$OUT/existing.erofs"
expect_build_fail "an unreadable source file" "bad.bin" "$WORK/eio-mnt" "$OUT/existing.erofs"
assert_eq "$(cat "$OUT/existing.erofs")" "old image" "existing image after a failed build"
expect_build_fail "an unreadable source file (chunked, blob)" "bad.bin" "$WORK/eio-mnt" "$OUT/f.erofs" \
	--chunk-size 4096 --blob "$OUT/f.blob"
umount_image "$WORK/eio-mnt"

log "---- an xattr value of 65536 bytes (EROFS stores at most 65535)"
mkdir -p "$SRC/../bigx"
echo x >"$SRC/../bigx/file"
"$PY" -c 'import os,sys; os.setxattr(sys.argv[1], b"user.huge", b"h" * 65536)' "$SRC/../bigx/file"
rc=0
build_image "$SRC/../bigx" "$OUT/bigx.erofs" >"$WORK/build.out" 2>"$WORK/build.err" || rc=$?
cat "$WORK/build.err"
check_not_crashed "$rc" "build with a 65536-byte xattr"
if [ "$rc" -ne 0 ]; then
	grep -q "file" "$WORK/build.err" || fail "refusing the 65536-byte xattr: message does not name the file"
	for f in "$OUT"/bigx* "$OUT"/.bigx*; do
		[ ! -e "$f" ] || fail "failed build left $f"
	done
	log "ok: refused"
else
	mount_image "$OUT/bigx.erofs" "$WORK/bigx-mnt"
	compare_trees "$SRC/../bigx" "$WORK/bigx-mnt"
	umount_image "$WORK/bigx-mnt"
	log "ok: stored exactly"
fi

if ! using_override; then
	log "---- SIGTERM during a build removes its temporary files"
	mkdir -p "$WORK/srcfs/slow"
	# 2 GiB in which no 4 KiB block repeats: slow enough to be caught mid-build
	"$PY" - "$WORK/srcfs/slow" <<'EOF'
import os, sys
buf = bytearray(bytes(range(256)) * 4096)          # 1 MiB
for i in range(4):
    with open(os.path.join(sys.argv[1], "big%d" % i), "wb") as f:
        for j in range(512):
            for k in range(0, len(buf), 4096):
                buf[k:k + 16] = b"%04d%06d%06d" % (i, j, k // 4096)
            f.write(buf)
EOF
	mkdir -p "$OUT/term"
	"$ANOLE" image build "$WORK/srcfs/slow" -o "$OUT/term/t.erofs" --chunk-size 64K \
		--blob "$OUT/term/t.blob" --no-dedupe -q >"$WORK/term.out" 2>&1 &
	pid=$!
	add_pid "$pid"
	for _ in $(seq 100); do
		[ -n "$(ls -A "$OUT/term")" ] && break
		sleep 0.05
	done
	sleep 0.2
	kill -TERM "$pid" 2>/dev/null || true
	rc=0
	wait "$pid" || rc=$?
	cat "$WORK/term.out"
	if [ "$rc" -eq 0 ]; then
		log "(the build finished before SIGTERM arrived: nothing to check)"
	else
		[ "$rc" -ne "$SANITIZER_RC" ] || fail "sanitizer report after SIGTERM"
		[ -z "$(ls -A "$OUT/term")" ] || fail "SIGTERM left files behind: $(ls -A "$OUT/term" | tr '\n' ' ')"
		log "ok: SIGTERM (exit $rc) left nothing"
	fi
	rm -rf "$WORK/srcfs/slow"
fi

log "---- reading bad images"
build_ok "$SRC" "$WORK/good.erofs" -q
size=$(file_size "$WORK/good.erofs")
bad=$WORK/bad
mkdir -p "$bad"
: >"$bad/empty.img"
head -c 1000 /dev/zero >"$bad/zeros-1000.img"
head -c 1100 "$WORK/good.erofs" >"$bad/cut-in-superblock.img"
head -c 4096 "$WORK/good.erofs" >"$bad/first-block.img"
head -c $(( size / 2 )) "$WORK/good.erofs" >"$bad/half.img"
head -c $(( size - 4096 )) "$WORK/good.erofs" >"$bad/minus-one-block.img"
"$PY" -c 'import random,sys; sys.stdout.buffer.write(random.Random(7).randbytes(65536))' >"$bad/garbage.img"
# garbage with a valid magic: the superblock fields are nonsense
"$PY" - "$bad/garbage-magic.img" <<'EOF'
import random, struct, sys
d = bytearray(random.Random(8).randbytes(65536))
struct.pack_into("<I", d, 1024, 0xE0F5E1E2)
d[1024 + 12] = 12
open(sys.argv[1], "wb").write(d)
EOF
mkdir "$bad/a-directory.img"
problems=()
for img in "$bad/missing.img" "$bad"/*.img; do
	name=$(basename "$img")
	for verb in check inspect unpack; do
		rc=0
		case $verb in
		check) "$ANOLE" image check "$img" >"$WORK/r.out" 2>&1 || rc=$? ;;
		inspect) "$ANOLE" image inspect "$img" >"$WORK/r.out" 2>&1 || rc=$? ;;
		unpack) rm -rf "$WORK/unp"; "$ANOLE" image unpack -q "$img" "$WORK/unp" >"$WORK/r.out" 2>&1 || rc=$? ;;
		esac
		check_not_crashed "$rc" "$verb $name"
		if [ "$rc" -eq 0 ]; then
			problems+=("anole image $verb $name exited 0")
			sed 's/^/    /' "$WORK/r.out" | head -5
		elif ! grep -q -F "$name" "$WORK/r.out"; then
			problems+=("anole image $verb $name: message does not name the image")
			sed 's/^/    /' "$WORK/r.out" | head -5
		else
			log "ok: $verb $name (exit $rc): $(head -n1 "$WORK/r.out" | cut -c1-140)"
		fi
	done
done
# a truncated blob
build_ok "$SRC" "$WORK/b.erofs" -q --chunk-size 4096 --blob "$WORK/b.blob"
head -c $(( $(file_size "$WORK/b.blob") / 2 )) "$WORK/b.blob" >"$bad/half.blob"
rc=0
"$ANOLE" image check "$WORK/b.erofs" --device "$bad/half.blob" >"$WORK/r.out" 2>&1 || rc=$?
check_not_crashed "$rc" "check with a truncated blob"
[ "$rc" -ne 0 ] || { cat "$WORK/r.out"; fail "check with a truncated blob exited 0"; }
rc=0
"$ANOLE" image unpack -q "$WORK/b.erofs" "$WORK/unp-blob" --device "$bad/half.blob" >"$WORK/r.out" 2>&1 || rc=$?
check_not_crashed "$rc" "unpack with a truncated blob"
[ "$rc" -ne 0 ] || { cat "$WORK/r.out"; fail "unpack with a truncated blob exited 0"; }
log "ok: truncated blob rejected by check and unpack"

log "---- hostile images: unpack writes nothing outside DIR"
JAIL=$WORK/jail
OUTSIDE=$WORK/outside
mkdir -p "$JAIL/a/b/c" "$OUTSIDE"
H=$WORK/hostile-src
mkdir -p "$H/..x" "$H/a0b" "$H/s2" "$H/.0abcdefgh/evil"
echo escaped >"$H/..x/escaped"
echo through-a >"$H/a0b/f"
echo pwned >"$H/s2/pwned"
echo evil >"$H/.0abcdefgh/evil/payload"
ln -s "$OUTSIDE" "$H/a"
ln -s "$OUTSIDE" "$H/s1"
echo ok >"$H/zz-normal"
mkfs.erofs --quiet "$WORK/hostile-base.img" "$H" >/dev/null
hostile() { # NAME DIR OLD NEW...
	local name=$1; shift
	cp "$WORK/hostile-base.img" "$WORK/$name.img"
	while [ $# -gt 0 ]; do
		"$PY" "$TESTDIR/erofs_img.py" "$WORK/$name.img" rename "$1" "$2" "$3" >/dev/null ||
			fail "crafting $name: rename $2 -> $3"
		shift 3
	done
}
hostile dotdot-slash / ..x ../                   # DIR/../escaped
hostile slash-name / a0b a/b                     # a -> OUTSIDE, then a/b/f
hostile dup-symlink / s2 s1                      # s1 -> OUTSIDE, then dir s1/pwned
hostile traversal / .0abcdefgh ../../evil        # DIR/../../evil/payload
hostile all / ..x ../ / a0b a/b / s2 s1 / .0abcdefgh ../../evil
snapshot() { find "$WORK" -path "$JAIL/a/b/c" -prune -o -path "$WORK/.lib-state" -prune -o -print | sort; }
for name in dotdot-slash slash-name dup-symlink traversal all; do
	rm -rf "$JAIL/a/b/c"
	mkdir -p "$JAIL/a/b/c"
	snapshot >"$_STATE/before.lst"
	rc=0
	"$ANOLE" image unpack -q "$WORK/$name.img" "$JAIL/a/b/c/dest" >"$WORK/r.out" 2>&1 || rc=$?
	cat "$WORK/r.out"
	check_not_crashed "$rc" "unpack $name"
	[ "$rc" -le 1 ] || fail "unpack $name exited $rc"
	snapshot >"$_STATE/after.lst"
	[ -z "$(ls -A "$OUTSIDE")" ] || fail "unpack $name wrote into the symlink target: $(ls -A "$OUTSIDE")"
	if ! cmp -s "$_STATE/before.lst" "$_STATE/after.lst"; then
		diff "$_STATE/before.lst" "$_STATE/after.lst" | head
		fail "unpack $name created files outside its directory"
	fi
	rc=0
	"$ANOLE" image check "$WORK/$name.img" >"$WORK/r.out" 2>&1 || rc=$?
	check_not_crashed "$rc" "check $name"
	if [ "$rc" -ne 1 ]; then
		sed 's/^/    /' "$WORK/r.out" | head -5
		problems+=("check of hostile image $name exited $rc, expected 1")
	else
		log "ok: $name: unpack exit $rc, nothing outside; check rejects it"
	fi
done
if [ ${#problems[@]} -gt 0 ]; then
	printf 'PROBLEM: %s\n' "${problems[@]}"
	fail "${#problems[@]} problem(s), listed above"
fi
log "pass"
