// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for what anole os reads from disks and images it does
 * not trust: the boot-state sector (os/bootstate.c) and the OS image
 * manifest (os/manifest.c, parsed only after its signature verified, but
 * parsed all the same). A decoded state must encode back to the same
 * sector; a parsed manifest must hold a checked version and digest sizes.
 */
#include "../os/os_internal.h"
#include "anole/error.h"
#include "anole/os_bootstate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque)
{
	(void)level;
	(void)msg;
	(void)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;
	struct anole_bootstate st;
	struct os_manifest m;

	if (!init) {
		anole_log_set_sink(drop_log, NULL);
		init = true;
	}
	if (size >= ANOLE_BST_SECTOR && anole_bootstate_decode(data, &st) == 0) {
		uint8_t again[ANOLE_BST_SECTOR];
		struct anole_bootstate st2;
		unsigned slot;
		bool changed;

		/* the fields survive a round trip (reserved bytes are not kept) */
		anole_bootstate_encode(&st, again);
		if (anole_bootstate_decode(again, &st2) != 0 || memcmp(&st, &st2, sizeof(st)) ||
		    memcmp(again, data, 84))
			abort();
		for (unsigned k = 0; k < 2; k++)
			if (anole_bootstate_pick(&st2, k, &slot, &changed) != ANOLE_BOOT_NONE &&
			    (slot > 1 || !(st.valid & (1u << slot))))
				abort();
	}
	if (os_manifest_parse((const char *)data, size, "fuzz", &m) == 0 &&
	    (os_version_check(m.version) != 0 || strlen(m.kernel_release) >= sizeof(m.kernel_release)))
		abort();
	return 0;
}
