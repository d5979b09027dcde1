#!/bin/sh
# Install the Debian packages anole needs to build, test and benchmark,
# only those missing. Safe to run repeatedly; needs root when something is missing.
#   scripts/deps.sh               the host's packages
#   scripts/deps.sh --cross ARCH  also a sysroot of ARCH's libraries (aarch64, s390x)
set -eu

# Cross builds (make cross, docs/multiarch.md): the cross compilers and QEMU
# on the host, and the target's -dev libraries unpacked into a sysroot.
# Not installed into the host through multiarch: Multi-Arch: same packages
# must have one version for every architecture, and Debian 12's security
# archive (LTS) no longer carries s390x, so libssl-dev:s390x cannot match
# libssl-dev:amd64 once the host has a security update. apt resolves the
# target's dependency closure by itself (an empty dpkg status), downloads
# the packages and they are unpacked into the sysroot; nothing in the host's
# dpkg database changes but the foreign architecture it lists.
CROSS_LIBS="libc6-dev libssl-dev libzstd-dev liblz4-dev liblzma-dev libdeflate-dev zlib1g-dev
libjansson-dev libfuse3-dev libarchive-dev libcurl4-openssl-dev libmicrohttpd-dev
libbpf-dev libelf-dev libdw-dev libsqlite3-dev libgsl-dev libnlopt-dev"
CROSS_ROOT=${ANOLE_CROSS_ROOT:-/var/cache/anole-cross}

cross_sysroot() { # ARCH
	case "$1" in
	# kernel: the Debian kernel whose BTF diag's BPF programs are built
	# against (scripts/kernel-btf.py); s390x's has no BTF (no
	# CONFIG_DEBUG_INFO_BTF in Debian 12), so diag is not built for it
	aarch64) deb=arm64 gnu=aarch64-linux-gnu kernel=linux-image-cloud-arm64 ;;
	s390x) deb=s390x gnu=s390x-linux-gnu kernel= ;;
	riscv64)
		echo "deps: riscv64 is not a Debian 12 architecture (only debian-ports, which" >&2
		echo "deps: apt here does not reach): no target libraries; see docs/multiarch.md" >&2
		exit 2 ;;
	*) echo "deps: --cross: unknown architecture '$1' (aarch64, s390x)" >&2; exit 2 ;;
	esac
	PKGS="$PKGS gcc-$gnu qemu-user-static"
	host_packages
	root=$CROSS_ROOT/$1
	stamp="$(printf '%s\n' $CROSS_LIBS | sort | tr '\n' ' ')kernel:$kernel"
	if [ -f "$root/.anole-sysroot" ] && [ "$(cat "$root/.anole-sysroot")" = "$stamp" ]; then
		return 0
	fi
	[ "$(id -u)" -eq 0 ] || { echo "deps: the $1 sysroot is missing and not root" >&2; exit 1; }
	echo "deps: making the $1 sysroot in $root"
	if ! dpkg --print-foreign-architectures | grep -qx "$deb"; then
		dpkg --add-architecture "$deb"
		apt-get update -q
	fi
	tmp=$CROSS_ROOT/.dl-$1
	rm -rf "$tmp" "$root.new"
	mkdir -p "$tmp/archives/partial" "$root.new/usr/lib" "$root.new/usr/bin" "$root.new/usr/sbin"
	: >"$tmp/status"
	set -- $(printf "%s:$deb " $CROSS_LIBS)
	fetch() {
		apt-get -q -y --download-only --no-install-recommends \
			-o Dir::State::status="$tmp/status" -o Dir::Cache::archives="$tmp/archives" \
			-o APT::Architecture="$deb" -o Debug::NoLocking=1 install "$@" >"$tmp/log" 2>&1
	}
	fetch "$@" || { apt-get update -q; fetch "$@"; } || { cat "$tmp/log" >&2; exit 1; }
	# merged /usr, as on the target: libraries shipped in /lib land in /usr/lib
	for d in lib bin sbin; do ln -s "usr/$d" "$root.new/$d"; done
	for f in "$tmp"/archives/*.deb; do
		dpkg-deb --fsys-tarfile "$f" | tar -x --keep-directory-symlink -C "$root.new"
	done
	# absolute symlinks (libz.so -> /lib/...) must point into the sysroot
	find "$root.new" -type l -lname '/*' | while read -r l; do
		ln -sfn "$root/$(readlink "$l" | sed 's,^/,,')" "$l"
	done
	if [ -n "$kernel" ]; then
		# the versioned package the meta-package names
		kpkg=$(apt-cache depends "$kernel:$deb" | awk '/Depends: linux-image-/ { print $2; exit }')
		(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "${kpkg:?no kernel package for $kernel}" >/dev/null)
		dpkg-deb --fsys-tarfile "$tmp"/linux-image-*.deb | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*'
		python3 "$(dirname "$0")/kernel-btf.py" "$tmp"/boot/vmlinuz-* "$root.new/vmlinux.btf"
		echo "$kpkg" >"$root.new/vmlinux.btf.source"
	fi
	# the constant the tree's cross file (cross/ARCH.ini) builds on
	printf "[constants]\nsysroot = '%s'\n" "$root" >"$root.new/meson.ini"
	echo "$stamp" >"$root.new/.anole-sysroot"
	rm -rf "$root" "$tmp"
	mv "$root.new" "$root"
}

PKGS="gcc make meson ninja-build pkg-config clang libclang-rt-14-dev
libssl-dev libzstd-dev liblz4-dev liblzma-dev libdeflate-dev zlib1g-dev libjansson-dev libfuse3-dev fuse3 libarchive-dev
erofs-utils squashfs-tools attr acl e2fsprogs util-linux python3 xxd
libcurl4-openssl-dev libmicrohttpd-dev docker-registry curl umoci skopeo bpftool libbpf-dev libelf-dev libdw-dev
iproute2 nftables procps prometheus nginx-light
libsqlite3-dev jq
libjs-chart.js chromium chromium-driver python3-selenium
libgsl-dev libnlopt-dev wrk redis-server redis-tools
openssl
stress-ng rt-tests

qemu-system-x86 busybox-static linux-image-amd64 syslinux syslinux-common mtools dosfstools
syslinux-efi ovmf"

host_packages() {
	missing=""
	for p in $PKGS; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			missing="$missing $p"
		fi
	done
	[ -z "$missing" ] && return 0

	echo "deps: installing:$missing"
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing packages and not root; run: apt-get install$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# Refresh the package lists once if they are absent or an install fails.
	if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
		apt-get update -q
	fi
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing || {
		apt-get update -q
		apt-get install -y -q --no-install-recommends $missing
	}
}

if [ "${1:-}" = --cross ]; then
	[ $# -eq 2 ] || { echo "usage: scripts/deps.sh [--cross ARCH]" >&2; exit 2; }
	cross_sysroot "$2"
else
	host_packages
fi
