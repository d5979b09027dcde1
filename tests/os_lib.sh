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
	mkdir -p "$d"/{bin,sbin,etc,var,proc,sys,dev,run,tmp,boot} "$d$m"
	cp "/boot/vmlinuz-$k" "$d/boot/"
	if [ "$how" = full ]; then
		cp -a "$m/." "$d$m/"
	else
		cp "$m"/modules.* "$d$m/"
		(cd "$m" && tar -cf - kernel/fs kernel/block kernel/drivers/ata kernel/drivers/scsi \
			kernel/lib kernel/crypto kernel/arch) | tar -C "$d$m" -xf -
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
if $b grep -q ' / erofs ro' /proc/mounts && $b touch /etc/anole-test-writable; then
	/run/anole-os/anole-os-boot mark-good
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
