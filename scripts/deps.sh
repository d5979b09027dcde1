#!/bin/sh
# Install the Debian packages anole needs to build, test and benchmark,
# only those missing. Safe to run repeatedly; needs root when something is missing.
set -eu

PKGS="gcc make meson ninja-build pkg-config clang libclang-rt-14-dev
libssl-dev libzstd-dev liblz4-dev liblzma-dev libdeflate-dev zlib1g-dev libjansson-dev libfuse3-dev fuse3 libarchive-dev
erofs-utils squashfs-tools attr acl e2fsprogs util-linux python3 xxd
libcurl4-openssl-dev libmicrohttpd-dev docker-registry curl umoci skopeo bpftool libbpf-dev libelf-dev libdw-dev
iproute2 nftables procps prometheus nginx-light
qemu-system-x86 busybox-static linux-image-amd64 syslinux syslinux-common mtools dosfstools"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

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
