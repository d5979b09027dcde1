#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# anole os, measured in one run (run as root):
#   bench/os.sh [ANOLE]      (default build/anole)
# - boot time to the health check under QEMU (TCG), the anole disk (EROFS
#   root) against the same rootfs on ext4 in the same slot (same kernel,
#   initramfs and bootloader: only the root filesystem differs); and the
#   anole disk under UEFI (OVMF, when Debian's ovmf is installed);
# - OS image root size (EROFS lz4hc, the default, and lz4) against
#   mksquashfs -comp zstd of the same rootfs;
# - upgrade time (`anole os upgrade` of a disk image), median of REPEAT;
# - an upgrade from a registry (Debian's docker-registry, `anole os push`)
#   to a v2 that is v1 plus one Debian package (PKG, default openssl: its
#   files as dpkg -L lists them): bytes the registry sent (its access log)
#   against the image's size, and the upgrade's time.
# SKIP_BOOT=1 leaves the QEMU boots out.
# The rootfs is tests/os_lib.sh's, with all of the kernel's modules
# (ROOTFS=small: the subset the test uses).
set -euo pipefail
ANOLE=$(realpath "${1:-build/anole}")
cd "$(dirname "$0")/.."
. tests/os_lib.sh
WORK=$(realpath -m "${BENCH_WORK:-bench/work}/os")
REPEAT=${REPEAT:-3}
PY=python3
PKG=${PKG:-openssl}
for c in qemu-system-x86_64 mksquashfs mkfs.ext4 busybox openssl docker-registry dpkg curl; do
	command -v "$c" >/dev/null || { echo "bench: needs $c" >&2; exit 1; }
done
[ -n "$(os_kernel_release)" ] || { echo "bench: needs linux-image-amd64" >&2; exit 1; }
# REUSE=1: keep the rootfs, images and squashfs of a previous run
if [ "${REUSE:-0}" = 1 ] && [ -f "$WORK/root.sqfs" ]; then
	cd "$WORK"
	t_build="(reused)"
else
	rm -rf "$WORK"; mkdir -p "$WORK"; cd "$WORK"
	os_mkroot root v1 "$([ "${ROOTFS:-full}" = full ] && echo full)"
	os_mkroot root2 v2 "$([ "${ROOTFS:-full}" = full ] && echo full)"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out key.pem 2>/dev/null
	openssl pkey -in key.pem -pubout -out pub.pem
	t0=$(date +%s.%N)
	"$ANOLE" os build -q --rootfs root --version v1 --key key.pem -o v1.os
	t_build=$($PY -c "print(f'{$(date +%s.%N) - $t0:.1f}')")
	"$ANOLE" os build -q --rootfs root2 --version v2 --key key.pem -o v2.os
	# v1 plus one package
	cp -a root rootpkg
	dpkg -L "$PKG" | while read -r f; do
		if [ -f "$f" ] && [ ! -L "$f" ]; then printf '%s\n' "${f#/}"; fi
	done >pkg.list
	tar -C / -cf - -T pkg.list | tar -C rootpkg -xf -
	"$ANOLE" os build -q --rootfs rootpkg --version v2pkg --key key.pem -o v2pkg.os
	"$ANOLE" os build -q --rootfs root --version v1 --key key.pem --compress lz4 -o v1-lz4.os
	mksquashfs root root.sqfs -comp zstd -noappend -quiet >/dev/null
fi
tree_bytes=$(du -sb root | cut -f1)
member_size() { tar tvf "$1" | awk -v n="$2" '$NF == n { print $3 }'; }
erofs_lz4hc=$(member_size v1.os root.erofs)
erofs_lz4=$(member_size v1-lz4.os root.erofs)
sqfs=$(stat -c %s root.sqfs)

# slots large enough for the ext4 baseline (the uncompressed tree + room)
"$ANOLE" os install -q v1.os --disk erofs.img --key pub.pem \
	--slot-size $((tree_bytes * 3 / 2 + (64 << 20)))
# the ext4 baseline: the same disk with the rootfs as ext4 in slot A
cp --sparse=always erofs.img ext4.img
slot_a=$($PY -c "
import struct; m = open('ext4.img', 'rb').read(512)
s, n = struct.unpack('<II', m[446 + 16 + 8:446 + 16 + 16]); print(s * 512, n * 512)")
set -- $slot_a
mkfs.ext4 -q -F -d root -E "offset=$1" ext4.img "$(($2 / 1024))k"

# boot_time DISK [QEMU_ARGS...]: seconds from QEMU's start to the health
# check's line
boot_time() {
	local log=$WORK/boot.log start disk=$1
	shift
	start=$(date +%s.%N)
	qemu-system-x86_64 -accel tcg -m 1G -nographic -drive "file=$disk,format=raw" "$@" \
		</dev/null >"$log" 2>&1 &
	local pid=$! n=0
	until grep -aq "anole-os: up" "$log"; do
		n=$((n + 1))
		[ $n -lt 6000 ] && kill -0 $pid 2>/dev/null || { kill $pid 2>/dev/null; echo "bench: no up line" >&2; tail "$log" >&2; return 1; }
		sleep 0.1
	done
	$PY -c "print(f'{$(date +%s.%N) - $start:.2f}')"
	wait $pid || true
}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
OVMF=/usr/share/ovmf/OVMF.fd
be=(); bx=(); bu=(); up=()
for i in $(seq "$REPEAT"); do
	[ "${SKIP_BOOT:-0}" = 1 ] && { be+=(0); bx+=(1); continue; }
	be+=("$(boot_time erofs.img)")
	bx+=("$(boot_time ext4.img)")
	[ -f "$OVMF" ] && bu+=("$(boot_time erofs.img -bios "$OVMF")")
done
for i in $(seq "$REPEAT"); do
	cp --sparse=always erofs.img up.img
	t0=$(date +%s.%N)
	"$ANOLE" os upgrade -q v2.os --disk up.img
	up+=("$($PY -c "print(f'{$(date +%s.%N) - $t0:.2f}')")")
done
m_be=$(median "${be[@]}"); m_bx=$(median "${bx[@]}"); m_up=$(median "${up[@]}")

# the registry: v2pkg pushed, then upgrades of fresh copies of the v1 disk
port=$($PY -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
rm -rf reg; mkdir reg
printf 'version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: false\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
	"$WORK/reg" "$port" >reg.yml
docker-registry serve reg.yml >reg.log 2>&1 &
reg_pid=$!
trap 'kill $reg_pid 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/v2/" >/dev/null; do
	kill -0 $reg_pid || { cat reg.log >&2; exit 1; }
	sleep 0.1
done
"$ANOLE" os push -q v2pkg.os "docker://127.0.0.1:$port/os:v2pkg"
rf=(); rb=(); ru=()
for i in $(seq "$REPEAT"); do
	cp --sparse=always erofs.img upr.img
	mark=$(wc -l <reg.log)
	t0=$(date +%s.%N)
	"$ANOLE" os upgrade --json "docker://127.0.0.1:$port/os:v2pkg" --disk upr.img >upr.json
	ru+=("$($PY -c "print(f'{$(date +%s.%N) - $t0:.2f}')")")
	rf+=("$($PY -c "import json; print(json.load(open('upr.json'))['bytes_fetched'])")")
	rb+=("$(tail -n +$((mark + 1)) reg.log | $PY -c '
import re, sys
print(sum(int(m.group(1)) for m in re.finditer(r"\"GET [^\"]*\" [0-9]{3} ([0-9]+)", sys.stdin.read())))')")
done
image_bytes=$($PY -c "import json; print(json.load(open('upr.json'))['image_bytes'])")
meta_bytes=$($PY -c "import json; print(json.load(open('upr.json'))['metadata_bytes'])")
pkg_bytes=$(sed 's|^|/|' pkg.list | xargs stat -c %s | awk '{s += $1} END {print s + 0}')
m_ru=$(median "${ru[@]}"); m_rb=$(median "${rb[@]}")
echo "rootfs: $tree_bytes bytes ($(find root -type f | wc -l) files), kernel $(os_kernel_release), load $(cut -d' ' -f1 /proc/loadavg)"
echo "build (lz4hc): ${t_build} s"
printf 'root image: EROFS lz4hc %d bytes, EROFS lz4 %d, squashfs zstd %d: EROFS lz4hc / squashfs = %.3f\n' \
	"$erofs_lz4hc" "$erofs_lz4" "$sqfs" "$($PY -c "print($erofs_lz4hc / $sqfs)")"
if [ "${SKIP_BOOT:-0}" = 1 ]; then
	echo "boot to health check: skipped (SKIP_BOOT=1)"
else
	echo "boot to health check (TCG, median of $REPEAT): EROFS ${m_be} s (${be[*]}), ext4 ${m_bx} s (${bx[*]}): ratio $($PY -c "print(f'{$m_be / $m_bx:.2f}')")"
	if [ ${#bu[@]} -gt 0 ]; then
		m_bu=$(median "${bu[@]}")
		echo "the same EROFS disk under UEFI (OVMF): ${m_bu} s (${bu[*]}): UEFI / BIOS $($PY -c "print(f'{$m_bu / $m_be:.2f}')")"
	else
		echo "UEFI boot: not measured (no $OVMF; Debian: ovmf)"
	fi
fi
echo "upgrade of a disk image (median of $REPEAT): ${m_up} s (${up[*]}), $(member_size v2.os root.erofs) bytes of root"
echo "upgrade from a registry to v1 + $PKG ($pkg_bytes bytes of files), median of $REPEAT: ${m_ru} s (${ru[*]});" \
	"the registry sent ${m_rb} bytes (${rb[*]}; anole counted ${rf[*]}, of which $meta_bytes the chunk table)" \
	"of a $image_bytes-byte image (OS image file $(stat -c %s v2pkg.os)): $($PY -c "print(f'{$m_rb / $image_bytes:.4f}')") of it"
