/* SPDX-License-Identifier: Apache-2.0 */
/* Content digests through OpenSSL's EVP: SHA-256 (default) and SM3. */
#ifndef ANOLE_DIGEST_H
#define ANOLE_DIGEST_H
#include <stddef.h>
#include <stdint.h>

#define ANOLE_DIGEST_MAX 32

enum anole_digest_alg { ANOLE_DIGEST_SHA256 = 0, ANOLE_DIGEST_SM3 = 1 };

struct anole_digest_ctx;

const char *anole_digest_name(enum anole_digest_alg alg);
/* "sha256" / "sm3" -> alg; returns negative errno for unknown names. */
int anole_digest_from_name(const char *name, enum anole_digest_alg *alg);
size_t anole_digest_size(enum anole_digest_alg alg);

/* One-shot digest; returns 0 or a negative errno. */
int anole_digest(enum anole_digest_alg alg, const void *data, size_t len,
		 uint8_t out[ANOLE_DIGEST_MAX]);

struct anole_digest_ctx *anole_digest_new(enum anole_digest_alg alg);
int anole_digest_update(struct anole_digest_ctx *ctx, const void *data, size_t len);
int anole_digest_final(struct anole_digest_ctx *ctx, uint8_t out[ANOLE_DIGEST_MAX]);
void anole_digest_free(struct anole_digest_ctx *ctx);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void anole_hex(const uint8_t *in, size_t len, char *out);

/*
 * CRC32C (Castagnoli) without inversion on entry or exit, as the kernel's
 * crc32c() and the EROFS superblock checksum use it: pass ~0 as the seed.
 */
uint32_t anole_crc32c(uint32_t crc, const void *data, size_t len);
#endif
