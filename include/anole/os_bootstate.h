/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The A/B boot state of an anole OS disk: the one definition of its format,
 * shared by `anole os` (outside, on a disk image) and by the static helper
 * that the initramfs and the booted OS run (os/boot_helper.c).
 *
 * Two copies, in sectors 1 and 2 of the disk (between the MBR and the first
 * partition). Each is 512 bytes, little-endian, ending in a CRC32C. A
 * writer writes the copy NOT holding the newest valid state, with seq + 1,
 * and syncs; a reader takes the valid copy with the highest seq. So a write
 * torn by power loss leaves the previous state in force.
 *
 *   0   8  magic "ANOLEBST"
 *   8   4  format (1)
 *   12  4  seq
 *   16  1  next: slot the next boot tries (0 = A, 1 = B)
 *   17  1  tries: boots left for `next` while it is not the good slot
 *   18  1  good: last slot marked good (0, 1, or 0xff: none yet)
 *   19  1  valid: bit i set when slot i holds a complete, verified image
 *   20  64 version[2]: version of each slot's image, NUL-padded (31 chars max)
 *   84 424 zero
 *   508 4  crc32c (standard: ~crc(~0)) of bytes 0..507
 */
#ifndef ANOLE_OS_BOOTSTATE_H
#define ANOLE_OS_BOOTSTATE_H
#include <stdbool.h>
#include <stdint.h>

#define ANOLE_BST_MAGIC "ANOLEBST"
#define ANOLE_BST_FORMAT 1
#define ANOLE_BST_SECTOR 512u
#define ANOLE_BST_OFFSET 512u        /* copy 0 at byte 512, copy 1 at 1024 */
#define ANOLE_BST_NO_SLOT 0xffu
#define ANOLE_BST_VERSION_MAX 31

struct anole_bootstate {
	uint32_t seq;
	uint8_t next, tries, good, valid;
	char version[2][ANOLE_BST_VERSION_MAX + 1];
};

/* What the initramfs does with the state (anole_bootstate_pick). */
enum anole_boot_action {
	ANOLE_BOOT_SLOT,     /* boot `slot` (state updated: tries spent or rollback) */
	ANOLE_BOOT_SWITCH,   /* the bootloader started the other slot's kernel:
	                        point it at `slot` and reboot (state unchanged) */
	ANOLE_BOOT_NONE,     /* no slot holds a valid image */
};

static inline char anole_slot_letter(unsigned slot) { return slot ? 'B' : 'A'; }
/* 'A'/'a'/'0' -> 0, 'B'/'b'/'1' -> 1, else -1 */
int anole_slot_parse(const char *s);

void anole_bootstate_encode(const struct anole_bootstate *st, uint8_t out[ANOLE_BST_SECTOR]);
/* 0, or -EINVAL when the sector is no valid copy (magic, format, crc, fields). */
int anole_bootstate_decode(const uint8_t in[ANOLE_BST_SECTOR], struct anole_bootstate *st);

/*
 * Read the newest valid copy from fd at base (the disk's byte 0). -ENOENT
 * when neither copy is valid; -errno on a read error. *which (may be NULL)
 * gets the copy read.
 */
int anole_bootstate_read(int fd, struct anole_bootstate *st, int *which);
/* Write st with seq + 1 over the older copy and fsync. 0 or -errno. */
int anole_bootstate_write(int fd, struct anole_bootstate *st);

/*
 * The boot decision, a pure function of the state and of the slot whose
 * kernel is running (`kernel_slot`, from the bootloader's command line):
 * - next is good (or nothing is good yet): boot next;
 * - next is on trial with tries left: spend one and boot it;
 * - next is on trial with none left: roll back to good (next = good).
 * A chosen slot whose kernel is not the running one gives ANOLE_BOOT_SWITCH
 * and leaves the state as is; the tries are spent on the boot that mounts
 * the root. st is updated in place when the action is ANOLE_BOOT_SLOT and
 * *changed says whether it must be written.
 */
enum anole_boot_action anole_bootstate_pick(struct anole_bootstate *st, unsigned kernel_slot,
					    unsigned *slot, bool *changed);

/* Mark slot good (it must be valid: -EINVAL). next stays: an upgrade staged
 * while this slot runs still boots next. Returns 1 when st changed, else 0. */
int anole_bootstate_mark_good(struct anole_bootstate *st, unsigned slot);

/* The syslinux.cfg that starts `slot` (its kernel and initramfs on the boot
 * partition, /a or /b), written to out (size >= 512); returns its length. */
int anole_bootcfg(unsigned slot, char *out, unsigned size);
#endif
