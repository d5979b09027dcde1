#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# make check-cross: what a cross build can prove under user-mode QEMU.
#
#   tests/cross.sh ARCH CROSS_BUILD HOST_BUILD
#
#  1. the C unit tests (meson test; the cross file's exe_wrapper is QEMU);
#  2. same bytes everywhere: the ARCH binary builds, from one tree with one
#     timestamp and UUID, images byte-identical to the host (x86_64) build's:
#     plain, each compression algorithm (kernel pclusters), 4K and 16K
#     pclusters with fragments, chunked with a blob, and --blob-dir
#     (transport blob and chunk table), and from a tar layer; converting
#     an OCI layout (umoci) gives the same manifest and blob digests;
#  3. the ARCH binary reads: `image check` passes, `image inspect --json`
#     prints what the host binary prints, `image unpack` gives the tree back;
#     the host kernel mounts the ARCH-built image (no byte-order leak past
#     the comparison: the kernel is the reader of record);
#  4. bad input: corrupted images and hostile tar layers get the same exit
#     status and message from `image check` / `image build` as on the host;
#  5. the fuzz targets replay a corpus (the images above and their
#     corruptions) without libFuzzer (fuzz/replay.c): no crash.
# Needs root (tmpfs and loop mounts), the host build and the cross build
# with -Dfuzz_replay=true (make check-cross does both). Prints
# "N passed, N failed" and exits non-zero if anything failed.
set -euo pipefail

if [ $# -ne 3 ]; then
	echo "usage: $0 ARCH CROSS_BUILD HOST_BUILD" >&2
	exit 2
fi
ARCH=$1
XB=$(cd "$2" && pwd)
HB=$(cd "$3" && pwd)
TESTDIR=$(cd "$(dirname "$0")" && pwd)
SYSROOT=${ANOLE_CROSS_ROOT:-/var/cache/anole-cross}/$ARCH
QEMU=qemu-$ARCH-static
for f in "$XB/anole" "$HB/anole" "$XB/replay_image_reader"; do
	[ -x "$f" ] || { echo "cross: $f is missing (make check-cross ARCH=$ARCH builds it)" >&2; exit 2; }
done
command -v "$QEMU" >/dev/null || { echo "cross: $QEMU not found (qemu-user-static)" >&2; exit 2; }
[ -d "$SYSROOT" ] || { echo "cross: no sysroot $SYSROOT (scripts/deps.sh --cross $ARCH)" >&2; exit 2; }

export ANOLE=$HB/anole TESTDIR
WORK=$(mktemp -d "${TMPDIR:-/tmp}/anole-cross-$ARCH.XXXXXX")
export WORK
# lib.sh: the helpers (tmpfs, trees, mounts) and the EXIT trap that undoes them
# shellcheck source=tests/lib.sh
. "$TESTDIR/lib.sh"
trap '_cleanup; rm -rf "$WORK"' EXIT
need_root

# the ARCH binary, run by QEMU with the sysroot's libraries
xanole() { "$QEMU" -L "$SYSROOT" "$XB/anole" "$@"; }

passed=0 failed=0
t0=$SECONDS
ok() { passed=$((passed + 1)); log "ok: $*"; }
bad() { failed=$((failed + 1)); printf 'FAIL: %s\n' "$*" >&2; }
same_file() { # A B WHAT
	if cmp "$1" "$2" >"$WORK/cmp.out" 2>&1; then
		ok "$3"
	else
		bad "$3: $(head -c 300 "$WORK/cmp.out") (first differing bytes, offset host $ARCH:)"
		cmp -l "$1" "$2" 2>/dev/null | head -8 >&2 || true
	fi
}

log "cross: $ARCH ($XB) against the host build ($HB)"

# ---------------------------------------------------------- 1. unit tests
if meson test -C "$XB" --print-errorlogs >"$WORK/meson-test.out" 2>&1; then
	ok "unit tests: $(grep -E '^Ok:' "$WORK/meson-test.out" | tr -s ' ') under $QEMU"
else
	cat "$WORK/meson-test.out" >&2
	bad "unit tests under $QEMU"
fi
log "unit tests took $((SECONDS - t0)) s"

# ---------------------------------------------------------- 2. same bytes
make_srcfs "$WORK/srcfs" 1g
SRC=$WORK/srcfs/tree
gen_tree "$SRC" --seed 16 --small --parts standard,dedup
TS=1700000000
UUID=16161616-0000-4000-8000-5a3900000016
B=$WORK/img
mkdir -p "$B/host" "$B/$ARCH"

# Compression is slow under emulation: its matrix gets a smaller tree, every
# file type and xattrs, and data that compresses like real files (this
# project's sources), does not (random) and is mostly holes.
ZSRC=$WORK/srcfs/ztree
gen_tree "$ZSRC" --seed 16 --small --parts types,xattrs,hardlinks,names,times
cp -a "$TESTDIR/../lib" "$TESTDIR/../image" "$TESTDIR/../include" "$ZSRC/"
"$PY" -c 'import random, sys; r = random.Random(16); sys.stdout.buffer.write(r.randbytes(300000))' >"$ZSRC/random"
"$PY" -c 'import sys; sys.stdout.write("a line that repeats, for long matches\n" * 18000)' >"$ZSRC/repeats"
truncate -s 3M "$ZSRC/sparse" && echo tail >>"$ZSRC/sparse"

# build NAME SRC ARGS...: the image (and its blob or blob dir) by both binaries
build_both() {
	local name=$1 src=$2; shift 2
	local h=() x=() a
	for a in "$@"; do
		h+=("${a//@OUT@/$B/host}")
		x+=("${a//@OUT@/$B/$ARCH}")
	done
	if ! "$ANOLE" image build "$src" -o "$B/host/$name.erofs" --timestamp $TS --uuid $UUID -q "${h[@]}"; then
		bad "host build of $name"; return 1
	fi
	if ! xanole image build "$src" -o "$B/$ARCH/$name.erofs" --timestamp $TS --uuid $UUID -q "${x[@]}"; then
		bad "$ARCH build of $name"; return 1
	fi
	same_file "$B/host/$name.erofs" "$B/$ARCH/$name.erofs" "$name: $ARCH image = host image"
}
t1=$SECONDS
build_both plain "$SRC"
for z in lz4 lz4hc zstd lzma deflate; do
	build_both "z-$z" "$ZSRC" -z "$z"
done
build_both z-zstd-16k "$ZSRC" -z zstd -C 16K --fragments
build_both chunked "$SRC" --chunk-size 64K --blob @OUT@/chunked.blob
same_file "$B/host/chunked.blob" "$B/$ARCH/chunked.blob" "chunked: $ARCH blob = host blob"
build_both blobdir "$SRC" --chunk-size 64K --fetch-unit 16K --blob-dir @OUT@/blobs
build_both blobdir-lz4 "$ZSRC" --chunk-size 128K --compress lz4,9 --blob-dir @OUT@/blobs-lz4
for d in blobs blobs-lz4; do
	hl=$(ls "$B/host/$d") xl=$(ls "$B/$ARCH/$d")
	if [ -n "$hl" ] && [ "$hl" = "$xl" ]; then
		for f in $hl; do same_file "$B/host/$d/$f" "$B/$ARCH/$d/$f" "$d: transport blob $f"; done
	else
		bad "$d: transport blobs differ by name: host '$hl' $ARCH '$xl'"
	fi
done
tar -C "$SRC" --sort=name -cf "$WORK/layer.tar" .
if "$ANOLE" image build --layer "$WORK/layer.tar" -o "$B/host/layer.erofs" --blob-dir "$B/host/lblobs" \
	--timestamp $TS --uuid $UUID -q &&
	xanole image build --layer "$WORK/layer.tar" -o "$B/$ARCH/layer.erofs" --blob-dir "$B/$ARCH/lblobs" \
		--timestamp $TS --uuid $UUID -q; then
	same_file "$B/host/layer.erofs" "$B/$ARCH/layer.erofs" "tar layer: $ARCH image = host image"
else
	bad "build from a tar layer"
fi
log "image builds took $((SECONDS - t1)) s"

# OCI conversion: one layout, converted by each binary; digests compared
if command -v umoci >/dev/null; then
	t1=$SECONDS
	(
		cd "$WORK"
		umoci init --layout oci >/dev/null
		umoci new --image oci:v1 >/dev/null
		umoci unpack --image oci:v1 b >/dev/null
		# (tar leaves out sockets, which a layer cannot hold)
		tar -C "$ZSRC" -cf - . 2>/dev/null | tar -C b/rootfs -xf -
		umoci repack --image oci:v1 b >/dev/null
		rm -rf b
		umoci unpack --image oci:v1 b >/dev/null
		echo second-layer >b/rootfs/added
		rm -rf b/rootfs/"$(ls b/rootfs | head -n 1)"
		umoci repack --image oci:v1 b >/dev/null
	) || bad "making an OCI layout with umoci"
	cp -a "$WORK/oci" "$WORK/oci-x"
	if "$ANOLE" image convert -q "oci:$WORK/oci:v1" -o "oci:$WORK/oci:acc" --json >"$WORK/conv-host.json" &&
		(cd "$WORK" && xanole image convert -q "oci:$WORK/oci-x:v1" -o "oci:$WORK/oci-x:acc" --json) \
			>"$WORK/conv-x.json"; then
		hm=$(json_get "$WORK/conv-host.json" manifest) xm=$(json_get "$WORK/conv-x.json" manifest)
		if [ -n "$hm" ] && [ "$hm" = "$xm" ]; then
			ok "OCI conversion: manifest $hm on both"
		else
			bad "OCI conversion: manifest host $hm, $ARCH $xm"
		fi
		hb=$(cd "$WORK/oci/blobs/sha256" && ls | sort | tr '\n' ' ')
		xb=$(cd "$WORK/oci-x/blobs/sha256" && ls | sort | tr '\n' ' ')
		[ "$hb" = "$xb" ] && ok "OCI conversion: the same $(echo "$hb" | wc -w) blobs" ||
			bad "OCI conversion: blobs differ: host $hb; $ARCH $xb"
	else
		bad "OCI conversion failed"
	fi
	log "OCI conversion took $((SECONDS - t1)) s"
else
	log "SKIP OCI conversion: umoci is missing"
fi

# ---------------------------------------------------------- 3. reading
srcof() { case "$1" in z-* | *-lz4) echo "$ZSRC" ;; *) echo "$SRC" ;; esac; }
t1=$SECONDS
for name in plain z-lz4 z-zstd-16k chunked blobdir; do
	img=$B/host/$name.erofs dev=()
	[ "$name" = chunked ] && dev=(--device "$B/host/chunked.blob")
	# a --blob-dir image's data is in transport blobs, read by lazy mounts
	if [ "$name" != blobdir ]; then
		if xanole image check "$img" "${dev[@]}" >"$WORK/check.out" 2>&1; then
			ok "$name: $ARCH check passes"
		else
			bad "$name: $ARCH check: $(tail -n 3 "$WORK/check.out")"
		fi
	fi
	for p in "" /; do
		"$ANOLE" image inspect "$img" $p "${dev[@]}" --json >"$WORK/insp-h.json" 2>&1 || true
		xanole image inspect "$img" $p "${dev[@]}" --json >"$WORK/insp-x.json" 2>&1 || true
		same_file "$WORK/insp-h.json" "$WORK/insp-x.json" "$name: inspect ${p:+$p }--json"
	done
done
for name in plain z-lzma chunked; do
	dev=()
	[ "$name" = chunked ] && dev=(--device "$B/host/chunked.blob")
	if xanole image unpack "$B/host/$name.erofs" "${dev[@]}" "$WORK/srcfs/up-$name" >"$WORK/unpack.out" 2>&1 &&
		"$PY" "$TESTDIR/compare.py" "$(srcof $name)" "$WORK/srcfs/up-$name" >"$WORK/cmp-tree.out" 2>&1; then
		ok "$name: $ARCH unpack gives the tree back"
	else
		cat "$WORK/unpack.out" "$WORK/cmp-tree.out" >&2
		bad "$name: $ARCH unpack"
	fi
	rm -rf "$WORK/srcfs/up-$name"
done
# the host kernel reads what the ARCH binary wrote
for name in plain z-zstd; do
	mkdir -p "$WORK/mnt-$name"
	if (mount_image "$B/$ARCH/$name.erofs" "$WORK/mnt-$name" &&
		"$PY" "$TESTDIR/compare.py" "$(srcof $name)" "$WORK/mnt-$name" >"$WORK/cmp-mnt.out" 2>&1 &&
		umount_image "$WORK/mnt-$name"); then
		ok "$name: the kernel mounts the $ARCH-built image, the tree is equal"
	else
		cat "$WORK/cmp-mnt.out" >&2 2>/dev/null || true
		bad "$name: kernel mount of the $ARCH-built image"
	fi
done
log "reading took $((SECONDS - t1)) s"

# ---------------------------------------------------------- 4. bad input
t1=$SECONDS
mkdir -p "$WORK/corpus"
cp "$B/host/"*.erofs "$WORK/corpus/"
"$PY" - "$B/host" "$WORK/corpus" <<'PY'
import os, random, sys
# Deterministic corruptions of the images' metadata: bytes in the first
# 8 KiB (superblock, inodes, dirents), a truncation and a zeroed block.
src, out = sys.argv[1], sys.argv[2]
rng = random.Random(16)
for name in ("plain", "z-lz4", "z-zstd-16k", "chunked", "blobdir"):
    data = open(f"{src}/{name}.erofs", "rb").read()
    for i in range(7):
        b = bytearray(data)
        for _ in range(1 + i % 3):
            off = rng.randrange(1024, min(len(b), 8192))
            b[off] ^= rng.choice((0xff, 0x80, 0x01, rng.randrange(1, 256)))
        open(f"{out}/bad-{name}-{i:02d}.erofs", "wb").write(b)
    open(f"{out}/bad-{name}-trunc.erofs", "wb").write(data[: len(data) * 2 // 3])
    b = bytearray(data); b[4096:8192] = bytes(4096)
    open(f"{out}/bad-{name}-zeroed.erofs", "wb").write(b)
PY
same_verdicts=0 diff_verdicts=0
for img in "$WORK"/corpus/bad-*.erofs; do
	hr=0 xr=0
	"$ANOLE" image check "$img" >"$WORK/v-h.out" 2>&1 || hr=$?
	xanole image check "$img" >"$WORK/v-x.out" 2>&1 || xr=$?
	if [ "$hr" -le 1 ] && [ "$hr" = "$xr" ] && cmp -s "$WORK/v-h.out" "$WORK/v-x.out"; then
		same_verdicts=$((same_verdicts + 1))
	else
		diff_verdicts=$((diff_verdicts + 1))
		bad "check ${img##*/}: host exit $hr '$(tail -n 1 "$WORK/v-h.out")', $ARCH exit $xr '$(tail -n 1 "$WORK/v-x.out")'"
	fi
done
[ "$diff_verdicts" -eq 0 ] && ok "corrupted images: the same exit status and messages for all $same_verdicts"
# hostile tar layers: refused with the same message
"$PY" - "$WORK" <<'PY'
import io, sys, tarfile
def layer(name, entries):
    with tarfile.open(f"{sys.argv[1]}/{name}", "w") as t:
        for path, kind, data in entries:
            i = tarfile.TarInfo(path); i.mtime = 1700000000
            if kind == "link":
                i.type = tarfile.LNKTYPE; i.linkname = data; t.addfile(i)
            else:
                b = data.encode(); i.size = len(b); i.mode = 0o644; t.addfile(i, io.BytesIO(b))
layer("bad-dotdot.tar", [("../escape", "file", "x")])
layer("bad-abs.tar", [("/etc/abs", "file", "x")])
layer("bad-link.tar", [("l", "link", "missing")])
data = open(f"{sys.argv[1]}/bad-abs.tar", "rb").read()
open(f"{sys.argv[1]}/bad-trunc.tar", "wb").write(data[:700])
PY
for t in dotdot abs link trunc; do
	hr=0 xr=0
	"$ANOLE" image build -q --layer "$WORK/bad-$t.tar" -o "$WORK/t-h.img" --blob-dir "$WORK/tb-h" \
		>"$WORK/v-h.out" 2>&1 || hr=$?
	xanole image build -q --layer "$WORK/bad-$t.tar" -o "$WORK/t-h.img" --blob-dir "$WORK/tb-h" \
		>"$WORK/v-x.out" 2>&1 || xr=$?
	if [ "$hr" = "$xr" ] && cmp -s "$WORK/v-h.out" "$WORK/v-x.out"; then
		ok "hostile tar ($t): the same verdict (exit $hr)"
	else
		bad "hostile tar ($t): host exit $hr '$(tail -n 1 "$WORK/v-h.out")', $ARCH exit $xr '$(tail -n 1 "$WORK/v-x.out")'"
	fi
done
log "bad input took $((SECONDS - t1)) s"

# ---------------------------------------------------------- 5. fuzz replay
t1=$SECONDS
cp "$WORK"/bad-*.tar "$WORK/layer.tar" "$WORK/corpus/" 2>/dev/null || true
if out=$("$QEMU" -L "$SYSROOT" "$XB/replay_image_reader" "$WORK/corpus" 2>&1); then
	ok "fuzz replay (image reader): $out"
else
	bad "fuzz replay (image reader) crashed: $(echo "$out" | tail -n 3)"
fi
mkdir -p "$WORK/tars"
cp "$WORK"/bad-*.tar "$WORK/layer.tar" "$WORK/tars/"
if out=$("$QEMU" -L "$SYSROOT" "$XB/replay_tar_layer" "$WORK/tars" 2>&1); then
	ok "fuzz replay (tar layer): $out"
else
	bad "fuzz replay (tar layer) crashed: $(echo "$out" | tail -n 3)"
fi
log "fuzz replay took $((SECONDS - t1)) s"

log "cross: $ARCH took $((SECONDS - t0)) s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
