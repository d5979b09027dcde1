// SPDX-License-Identifier: Apache-2.0
/*
 * The A/B boot state (format in include/anole/os_bootstate.h). This file
 * links into anole and into the static boot helper of the initramfs, so it
 * uses libc and anole_crc32c only: no logging, errors are return values.
 */
#include "anole/os_bootstate.h"
#include "anole/endian.h"
#include "anole/erofs.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int anole_slot_parse(const char *s)
{
	if (!s || !s[0] || s[1])
		return -1;
	if (s[0] == 'A' || s[0] == 'a' || s[0] == '0')
		return 0;
	if (s[0] == 'B' || s[0] == 'b' || s[0] == '1')
		return 1;
	return -1;
}

/* local loops, not lib/fileio.c: the boot helper links libc only */
static int rw_full(int fd, void *buf, size_t len, off_t off, int write)
{
	char *p = buf;

	while (len) {
		ssize_t n = write ? pwrite(fd, p, len, off) : pread(fd, p, len, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;    /* short disk: no boot state there */
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static uint32_t bst_crc(const uint8_t *p)
{
	return ~anole_crc32c(~0u, p, ANOLE_BST_SECTOR - 4);
}

void anole_bootstate_encode(const struct anole_bootstate *st, uint8_t out[ANOLE_BST_SECTOR])
{
	memset(out, 0, ANOLE_BST_SECTOR);
	memcpy(out, ANOLE_BST_MAGIC, 8);
	put_le32(out + 8, ANOLE_BST_FORMAT);
	put_le32(out + 12, st->seq);
	out[16] = st->next;
	out[17] = st->tries;
	out[18] = st->good;
	out[19] = st->valid;
	for (int i = 0; i < 2; i++)
		memcpy(out + 20 + 32 * i, st->version[i],
		       strnlen(st->version[i], ANOLE_BST_VERSION_MAX));
	put_le32(out + ANOLE_BST_SECTOR - 4, bst_crc(out));
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return le32_to_cpu(v);
}

int anole_bootstate_decode(const uint8_t in[ANOLE_BST_SECTOR], struct anole_bootstate *st)
{
	if (memcmp(in, ANOLE_BST_MAGIC, 8) || get_le32(in + 8) != ANOLE_BST_FORMAT ||
	    get_le32(in + ANOLE_BST_SECTOR - 4) != bst_crc(in))
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	st->seq = get_le32(in + 12);
	st->next = in[16];
	st->tries = in[17];
	st->good = in[18];
	st->valid = in[19];
	if (st->next > 1 || (st->good > 1 && st->good != ANOLE_BST_NO_SLOT) || st->valid > 3)
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		const uint8_t *v = in + 20 + 32 * i;

		/* the last byte of each version field is always NUL */
		if (v[ANOLE_BST_VERSION_MAX])
			return -EINVAL;
		memcpy(st->version[i], v, ANOLE_BST_VERSION_MAX + 1);
	}
	return 0;
}

int anole_bootstate_read(int fd, struct anole_bootstate *st, int *which)
{
	uint8_t buf[2][ANOLE_BST_SECTOR];
	struct anole_bootstate cand[2];
	int ok[2], ret = rw_full(fd, buf, sizeof(buf), ANOLE_BST_OFFSET, 0);

	if (ret < 0)
		return ret;
	for (int i = 0; i < 2; i++)
		ok[i] = anole_bootstate_decode(buf[i], &cand[i]) == 0;
	if (!ok[0] && !ok[1])
		return -ENOENT;
	/* seq wraps: the newer copy is the one whose seq is ahead (serial arithmetic) */
	int pick = !ok[0] ? 1 : !ok[1] ? 0 : (int32_t)(cand[1].seq - cand[0].seq) > 0;
	*st = cand[pick];
	if (which)
		*which = pick;
	return 0;
}

int anole_bootstate_write(int fd, struct anole_bootstate *st)
{
	struct anole_bootstate cur;
	uint8_t sec[ANOLE_BST_SECTOR];
	int which = 1, ret = anole_bootstate_read(fd, &cur, &which);

	if (ret == 0)
		st->seq = cur.seq + 1;
	else if (ret != -ENOENT)
		return ret;
	/* over the older copy (or copy 0 on a fresh disk), never the one in force */
	unsigned target = ret == 0 ? (unsigned)!which : 0;
	anole_bootstate_encode(st, sec);
	ret = rw_full(fd, sec, sizeof(sec), ANOLE_BST_OFFSET + target * ANOLE_BST_SECTOR, 1);
	if (ret < 0)
		return ret;
	return fsync(fd) < 0 && errno != EINVAL ? -errno : 0;
}

enum anole_boot_action anole_bootstate_pick(struct anole_bootstate *st, unsigned kernel_slot,
					    unsigned *slot, bool *changed)
{
	struct anole_bootstate n = *st;
	bool next_ok = n.valid & (1u << n.next);
	bool good_ok = n.good <= 1 && (n.valid & (1u << n.good));
	unsigned s;

	*changed = false;
	if (!next_ok && !good_ok) {
		unsigned other = !n.next;

		if (!(n.valid & (1u << other)))
			return ANOLE_BOOT_NONE;
		s = other;          /* nothing better: the one valid slot */
	} else if (!next_ok) {
		s = n.good;
	} else if (n.next == n.good || !good_ok) {
		s = n.next;
	} else if (n.tries > 0) {
		s = n.next;
	} else {
		s = n.good;         /* out of tries, never marked good: roll back */
	}
	*slot = s;
	if (s != kernel_slot)
		return ANOLE_BOOT_SWITCH;
	if (s == n.next && good_ok && n.next != n.good) {
		n.tries--;
	} else if (s != n.next) {
		n.next = s;
		n.tries = 0;
	}
	*changed = memcmp(&n, st, sizeof(n)) != 0;
	*st = n;
	return ANOLE_BOOT_SLOT;
}

int anole_bootstate_mark_good(struct anole_bootstate *st, unsigned slot)
{
	if (slot > 1 || !(st->valid & (1u << slot)))
		return -EINVAL;
	if (st->good == slot)
		return 0;
	st->good = (uint8_t)slot;
	if (st->next == slot)
		st->tries = 0;
	return 1;
}

int anole_bootcfg(unsigned slot, char *out, unsigned size)
{
	char d = slot ? 'b' : 'a';

	/* serial console first: the disk is meant to boot under -nographic */
	return snprintf(out, size,
			"SERIAL 0 115200\n"
			"DEFAULT slot%c\n"
			"PROMPT 0\n"
			"TIMEOUT 0\n"
			"LABEL slot%c\n"
			"  LINUX /%c/vmlinuz\n"
			"  INITRD /%c/initrd.img\n"
			"  APPEND console=ttyS0,115200 panic=10 anole.slot=%c\n",
			d, d, d, d, anole_slot_letter(slot));
}
