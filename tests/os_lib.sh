# SPDX-License-Identifier: Apache-2.0
# shellcheck shell=bash
# Shared by tests/t_os_boot.sh and bench/os.sh: a minimal container-host
# rootfs for `anole os build` from the host's Debian kernel and busybox-static.

# os_kernel_release: the newest kernel with both /boot/vmlinuz-KVER and
# /lib/modules/KVER/modules.dep (Debian: linux-image-amd64); empty if none.
os_kernel_release() {
	local k
	for k in $(ls /lib/modules 2>/dev/null | sort -rV); do
		[ -f "/boot/vmlinuz-$k" ] && [ -f "/lib/modules/$k/modules.dep" ] && { echo "$k"; return; }
	done
}

# os_mkroot DIR VERSION [broken|full]: busybox, the kernel, and its modules
# (a subset of the tree that holds what the initramfs loads; `full`: all);
# the init is the health check: it marks the slot good when the root is the
# read-only EROFS and /etc is writable (overlay), then powers off. `broken`:
# an init that fails its health check and reboots.
os_mkroot() {
	local d=$1 v=$2 how=${3:-} k m
	k=$(os_kernel_release)
	m=/lib/modules/$k
	mkdir -p "$d"/{bin,sbin,etc,var/tmp,proc,sys,dev,run,tmp,boot} "$d$m"
	chmod 1777 "$d/tmp" "$d/var/tmp"
	cp "/boot/vmlinuz-$k" "$d/boot/"
	if [ "$how" = full ]; then
		cp -a "$m/." "$d$m/"
	else
		cp "$m"/modules.* "$d$m/"
		# drivers/virtio: the second drive that os_add_anole's init upgrades from
		(cd "$m" && tar -cf - kernel/fs kernel/block kernel/drivers/ata kernel/drivers/scsi \
			kernel/drivers/block kernel/drivers/virtio kernel/lib kernel/crypto \
			kernel/arch) | tar -C "$d$m" -xf -
	fi
	cp "$(command -v busybox)" "$d/bin/busybox"
	echo "$v" >"$d/etc/os-version"
	if [ "$how" = broken ]; then
		cat >"$d/sbin/init" <<'EOI'
#!/bin/busybox sh
echo "anole-test: health check failed"
/bin/busybox sync
/bin/busybox reboot -f
EOI
	else
		cat >"$d/sbin/init" <<'EOI'
#!/bin/busybox sh
b=/bin/busybox
export PATH=/usr/bin:/bin
if $b grep -q ' / erofs ro' /proc/mounts && $b touch /etc/anole-test-writable; then
	if [ -x /usr/bin/anole ]; then
		# os_add_anole's system: anole marks the running slot good, then an
		# OS image on a second (virtio) drive is an upgrade to run from here
		anole os mark-good &&
			echo "anole-os: up slot=$($b cat /run/anole-os/slot) version=$($b cat /run/anole-os/version)"
		$b modprobe virtio_pci; $b modprobe virtio_blk
		if [ -b /dev/vda ]; then
			for step in "os verify" "os upgrade -q /dev/vda" "os mark-good" "os rollback" \
				"os rollback" "os status --json"; do
				anole $step
				echo "anole-test: anole $step: exit $?"
			done
		fi
	else
		/run/anole-os/anole-os-boot mark-good
	fi
elif $b grep -q ' / ext4 ro' /proc/mounts; then
	# bench/os.sh's baseline: the same rootfs on ext4 in the slot
	echo "anole-os: up slot=ext4 version=ext4"
else
	echo "anole-test: health check failed"
fi
$b sync
$b poweroff -f
EOI
	fi
	chmod 755 "$d/sbin/init"
}

# os_add_anole DIR: $ANOLE installed in the rootfs as a Debian system would
# have it (/usr/bin/anole and the shared libraries it links, where ldd finds
# them), with mtools, which anole runs to write the boot partition's FAT
# (and the glibc iconv module of the FAT's code page 850, without which
# mtools refuses the disk).
# os_mkroot's init then runs `anole os mark-good` and, when the guest has a
# second drive (virtio, /dev/vda) holding an OS image, upgrades from it.
os_add_anole() {
	local d=$1 lib
	mkdir -p "$d/usr/bin"
	cp "$ANOLE" "$d/usr/bin/anole"
	cp "$(command -v mtools)" "$d/usr/bin/mtools"
	ln -sf mtools "$d/usr/bin/mcopy"
	ln -sf mtools "$d/usr/bin/mmd"
	for lib in $(ldd "$ANOLE" "$(command -v mtools)" |
			awk '$2 == "=>" && $3 ~ /^\// {print $3} NF == 2 && $1 ~ /^\// {print $1}' | sort -u); do
		mkdir -p "$d$(dirname "$lib")"
		cp -L "$lib" "$d$lib"
	done
	local gconv=/usr/lib/x86_64-linux-gnu/gconv
	mkdir -p "$d$gconv"
	cp -a "$gconv"/gconv-modules* "$gconv/IBM850.so" "$d$gconv/"
}
