// SPDX-License-Identifier: Apache-2.0
/*
 * The A/B boot state (os/bootstate.c): its encoding, the two copies under
 * torn writes, and the boot decision the initramfs makes from it.
 */
#include "anole/os_bootstate.h"
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static struct anole_bootstate st(unsigned next, unsigned tries, unsigned good, unsigned valid)
{
	struct anole_bootstate s = { .next = (uint8_t)next, .tries = (uint8_t)tries,
				     .good = (uint8_t)good, .valid = (uint8_t)valid };
	strcpy(s.version[0], "v1");
	strcpy(s.version[1], "v2");
	return s;
}

int main(void)
{
	uint8_t sec[ANOLE_BST_SECTOR];
	struct anole_bootstate a = st(1, 3, 0, 3), b;
	unsigned slot;
	bool changed;

	/* encoding: round trip, explicit little-endian, CRC catches a flip */
	a.seq = 0x01020304;
	anole_bootstate_encode(&a, sec);
	CHECK(!memcmp(sec, "ANOLEBST\x01\0\0\0\x04\x03\x02\x01", 16), "header bytes are little-endian");
	CHECK(anole_bootstate_decode(sec, &b) == 0 && !memcmp(&a, &b, sizeof(a)), "round trip");
	sec[17] ^= 1;
	CHECK(anole_bootstate_decode(sec, &b) == -EINVAL, "a flipped bit fails the CRC");

	/* two copies: writes alternate, and a torn newest copy leaves the older */
	char path[] = "/tmp/anole-bst-XXXXXX";
	int fd = mkstemp(path), which;
	unlink(path);
	CHECK(ftruncate(fd, 4096) == 0, "scratch disk");
	CHECK(anole_bootstate_read(fd, &b, NULL) == -ENOENT, "blank disk: no state");
	a = st(0, 0, ANOLE_BST_NO_SLOT, 1);
	CHECK(anole_bootstate_write(fd, &a) == 0, "first write");
	a.next = 1;
	a.valid = 3;
	CHECK(anole_bootstate_write(fd, &a) == 0, "second write");
	CHECK(anole_bootstate_read(fd, &b, &which) == 0 && b.next == 1 && which == 1,
	      "newest copy read (copy %d, next %u)", which, b.next);
	CHECK(pwrite(fd, "garbage", 7, ANOLE_BST_OFFSET + ANOLE_BST_SECTOR + 100) == 7, "tear copy 1");
	CHECK(anole_bootstate_read(fd, &b, &which) == 0 && b.next == 0 && which == 0,
	      "a torn newest copy falls back to the previous state");
	a = b;
	a.tries = 7;
	CHECK(anole_bootstate_write(fd, &a) == 0 && anole_bootstate_read(fd, &b, &which) == 0 &&
	      which == 1 && b.tries == 7, "the next write goes over the torn copy");
	close(fd);

	/* the decision */
	a = st(0, 0, 0, 3);
	CHECK(anole_bootstate_pick(&a, 0, &slot, &changed) == ANOLE_BOOT_SLOT && slot == 0 && !changed,
	      "good slot: boot it, nothing written");
	a = st(1, 2, 0, 3);
	CHECK(anole_bootstate_pick(&a, 1, &slot, &changed) == ANOLE_BOOT_SLOT && slot == 1 &&
	      changed && a.tries == 1, "trial slot: one try spent");
	a = st(1, 0, 0, 3);
	CHECK(anole_bootstate_pick(&a, 1, &slot, &changed) == ANOLE_BOOT_SWITCH && slot == 0 &&
	      a.next == 1, "out of tries under the trial kernel: switch, state untouched");
	CHECK(anole_bootstate_pick(&a, 0, &slot, &changed) == ANOLE_BOOT_SLOT && slot == 0 &&
	      changed && a.next == 0, "then under the good kernel: rolled back");
	a = st(1, 3, 0, 1);
	CHECK(anole_bootstate_pick(&a, 1, &slot, &changed) == ANOLE_BOOT_SWITCH && slot == 0,
	      "next invalid (torn upgrade): the good slot");
	a = st(0, 0, ANOLE_BST_NO_SLOT, 1);
	CHECK(anole_bootstate_pick(&a, 0, &slot, &changed) == ANOLE_BOOT_SLOT && slot == 0,
	      "fresh install, nothing good yet: boot next");
	a = st(0, 0, 0, 0);
	CHECK(anole_bootstate_pick(&a, 0, &slot, &changed) == ANOLE_BOOT_NONE, "nothing valid");
	a = st(1, 2, 0, 3);
	CHECK(anole_bootstate_mark_good(&a, 1) == 1 && a.good == 1 && a.tries == 0, "mark-good");
	CHECK(anole_bootstate_mark_good(&a, 1) == 0, "mark-good again: no write");
	a = st(1, 2, 0, 3);
	CHECK(anole_bootstate_mark_good(&a, 0) == 0 && a.next == 1 && a.tries == 2,
	      "mark-good of the running slot keeps a staged upgrade");
	a.valid = 1;
	CHECK(anole_bootstate_mark_good(&a, 1) == -EINVAL, "mark-good of an invalid slot");
	printf("1..%d\n# %d tests, %d failed\n", ntests, ntests, nfailed);
	return nfailed ? 1 : 0;
}
