// SPDX-License-Identifier: Apache-2.0
/*
 * anole-os-boot: the boot-state tool of the initramfs and of the booted OS.
 * It is linked statically (libc only) so that it runs in an initramfs of
 * busybox alone and, copied to /run, in any rootfs; it shares the one
 * definition of the boot state (os/bootstate.c) with `anole os`.
 *
 *   anole-os-boot pick DISK KERNEL_SLOT   print the slot to boot; exit 0 when
 *                                         it is KERNEL_SLOT's (tries spent),
 *                                         3 when the bootloader must switch
 *   anole-os-boot bootcfg SLOT            print syslinux.cfg starting SLOT
 *   anole-os-boot mark-good DISK SLOT     mark SLOT good, print the up line
 *   anole-os-boot status DISK             print the state
 */
#include "anole/os_bootstate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int open_disk(const char *path, int flags)
{
	int fd = open(path, flags | O_CLOEXEC);

	if (fd < 0)
		fprintf(stderr, "anole-os-boot: %s: %s\n", path, strerror(errno));
	return fd;
}

static int read_state(int fd, const char *disk, struct anole_bootstate *st)
{
	int ret = anole_bootstate_read(fd, st, NULL);

	if (ret < 0)
		fprintf(stderr, "anole-os-boot: %s: %s\n", disk,
			ret == -ENOENT ? "no valid boot state (not an anole OS disk?)" :
			strerror(-ret));
	return ret;
}

static int usage(void)
{
	fputs("usage: anole-os-boot pick DISK KERNEL_SLOT | bootcfg SLOT |"
	      " mark-good DISK SLOT | status DISK\n", stderr);
	return 2;
}

int main(int argc, char **argv)
{
	struct anole_bootstate st;
	char cfg[512];
	int slot, fd;

	if (argc == 3 && !strcmp(argv[1], "bootcfg")) {
		if ((slot = anole_slot_parse(argv[2])) < 0)
			return usage();
		anole_bootcfg((unsigned)slot, cfg, sizeof(cfg));
		fputs(cfg, stdout);
		return 0;
	}
	if (argc == 4 && !strcmp(argv[1], "pick")) {
		unsigned pick;
		bool changed;

		if ((slot = anole_slot_parse(argv[3])) < 0)
			return usage();
		if ((fd = open_disk(argv[2], O_RDWR)) < 0 || read_state(fd, argv[2], &st) < 0)
			return 1;
		switch (anole_bootstate_pick(&st, (unsigned)slot, &pick, &changed)) {
		case ANOLE_BOOT_NONE:
			fprintf(stderr, "anole-os-boot: %s: no slot holds a valid image\n", argv[2]);
			return 1;
		case ANOLE_BOOT_SWITCH:
			printf("%c\n", anole_slot_letter(pick));
			return 3;
		case ANOLE_BOOT_SLOT:
			break;
		}
		if (changed && anole_bootstate_write(fd, &st) < 0) {
			fprintf(stderr, "anole-os-boot: %s: cannot write the boot state\n", argv[2]);
			return 1;
		}
		printf("%c %s\n", anole_slot_letter(pick), st.version[pick]);
		return 0;
	}
	char run_disk[256], run_slot[8];
	char *run_argv[4];

	if (argc == 2 && !strcmp(argv[1], "mark-good")) {
		/* in the booted OS: the disk and slot the initramfs left in /run */
		FILE *d = fopen("/run/anole-os/disk", "r"), *s = fopen("/run/anole-os/slot", "r");

		if (!d || !s || !fgets(run_disk, sizeof(run_disk), d) || !fgets(run_slot, sizeof(run_slot), s)) {
			fputs("anole-os-boot: no /run/anole-os/{disk,slot}: not booted by an anole initramfs\n", stderr);
			return 1;
		}
		run_disk[strcspn(run_disk, "\n")] = 0;
		run_slot[strcspn(run_slot, "\n")] = 0;
		run_argv[0] = argv[0], run_argv[1] = argv[1], run_argv[2] = run_disk, run_argv[3] = run_slot;
		argv = run_argv;
		argc = 4;
	}
	if (argc == 4 && !strcmp(argv[1], "mark-good")) {
		if ((slot = anole_slot_parse(argv[3])) < 0)
			return usage();
		if ((fd = open_disk(argv[2], O_RDWR)) < 0 || read_state(fd, argv[2], &st) < 0)
			return 1;
		int changed = anole_bootstate_mark_good(&st, (unsigned)slot);

		if (changed < 0) {
			fprintf(stderr, "anole-os-boot: slot %c holds no valid image\n",
				anole_slot_letter((unsigned)slot));
			return 1;
		}
		if (changed && anole_bootstate_write(fd, &st) < 0) {
			fprintf(stderr, "anole-os-boot: %s: cannot write the boot state\n", argv[2]);
			return 1;
		}
		printf("anole-os: up slot=%c version=%s\n", anole_slot_letter((unsigned)slot),
		       st.version[slot]);
		return 0;
	}
	if (argc == 3 && !strcmp(argv[1], "status")) {
		if ((fd = open_disk(argv[2], O_RDONLY)) < 0 || read_state(fd, argv[2], &st) < 0)
			return 1;
		printf("next=%c tries=%u good=%c A=%s%s B=%s%s\n", anole_slot_letter(st.next),
		       st.tries, st.good <= 1 ? anole_slot_letter(st.good) : '-',
		       st.version[0], st.valid & 1 ? "" : "(invalid)",
		       st.version[1], st.valid & 2 ? "" : "(invalid)");
		return 0;
	}
	return usage();
}
