// SPDX-License-Identifier: Apache-2.0
#include "anole/digest.h"
#include "anole/error.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

struct anole_digest_ctx {
	EVP_MD_CTX *md;
};

static const EVP_MD *evp_md(enum anole_digest_alg alg)
{
	return alg == ANOLE_DIGEST_SM3 ? EVP_sm3() : EVP_sha256();
}

const char *anole_digest_name(enum anole_digest_alg alg)
{
	return alg == ANOLE_DIGEST_SM3 ? "sm3" : "sha256";
}

int anole_digest_from_name(const char *name, enum anole_digest_alg *alg)
{
	if (!strcmp(name, "sha256"))
		*alg = ANOLE_DIGEST_SHA256;
	else if (!strcmp(name, "sm3"))
		*alg = ANOLE_DIGEST_SM3;
	else
		return anole_error_code(EINVAL, "unknown digest '%s' (use sha256 or sm3)", name);
	return 0;
}

size_t anole_digest_size(enum anole_digest_alg alg) { (void)alg; return 32; }

int anole_digest(enum anole_digest_alg alg, const void *data, size_t len,
		 uint8_t out[ANOLE_DIGEST_MAX])
{
	unsigned int n = 0;

	if (!EVP_Digest(data, len, out, &n, evp_md(alg), NULL))
		return anole_error_code(EIO, "%s digest failed in OpenSSL", anole_digest_name(alg));
	return 0;
}

struct anole_digest_ctx *anole_digest_new(enum anole_digest_alg alg)
{
	struct anole_digest_ctx *ctx = calloc(1, sizeof(*ctx));

	if (!ctx)
		return NULL;
	ctx->md = EVP_MD_CTX_new();
	if (!ctx->md || !EVP_DigestInit_ex(ctx->md, evp_md(alg), NULL)) {
		anole_digest_free(ctx);
		return NULL;
	}
	return ctx;
}

int anole_digest_update(struct anole_digest_ctx *ctx, const void *data, size_t len)
{
	return EVP_DigestUpdate(ctx->md, data, len) ? 0 : -EIO;
}

int anole_digest_final(struct anole_digest_ctx *ctx, uint8_t out[ANOLE_DIGEST_MAX])
{
	unsigned int n = 0;

	return EVP_DigestFinal_ex(ctx->md, out, &n) ? 0 : -EIO;
}

void anole_digest_free(struct anole_digest_ctx *ctx)
{
	if (!ctx)
		return;
	EVP_MD_CTX_free(ctx->md);
	free(ctx);
}

void anole_hex(const uint8_t *in, size_t len, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = hex[in[i] >> 4];
		out[2 * i + 1] = hex[in[i] & 15];
	}
	out[2 * len] = '\0';
}
