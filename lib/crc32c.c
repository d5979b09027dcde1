// SPDX-License-Identifier: Apache-2.0
/*
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.
 * Like the kernel's crc32c(), there is no inversion on entry or exit: the
 * caller passes the seed (~0 for the EROFS superblock) and gets the raw
 * register back. The usual "standard" CRC32C is ~anole_crc32c(~0, ...).
 */
#include "anole/digest.h"

#include <pthread.h>

#define CRC32C_POLY 0x82F63B78u

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
		crc_table[i] = c;
	}
}

uint32_t anole_crc32c(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	pthread_once(&crc_once, crc_table_init);
	while (len--)
		crc = (crc >> 8) ^ crc_table[(crc ^ *p++) & 0xffu];
	return crc;
}
