// SPDX-License-Identifier: Apache-2.0
/* Chunk encryption (anole/cipher.h): HMAC-SHA256 derivations, CTR mode. */
#include "anole/cipher.h"
#include "anole/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>

int anole_cipher_from_name(const char *name, enum anole_cipher_alg *alg)
{
	if (!strcmp(name, "aes-256-ctr") || !strcmp(name, "aes"))
		*alg = ANOLE_CIPHER_AES256_CTR;
	else if (!strcmp(name, "sm4-ctr") || !strcmp(name, "sm4"))
		*alg = ANOLE_CIPHER_SM4_CTR;
	else
		return anole_error_code(EINVAL, "unknown cipher '%s' (use aes-256-ctr or sm4-ctr)", name);
	return 0;
}

const char *anole_cipher_name(enum anole_cipher_alg alg)
{
	switch (alg) {
	case ANOLE_CIPHER_NONE: return "none";
	case ANOLE_CIPHER_AES256_CTR: return "aes-256-ctr";
	case ANOLE_CIPHER_SM4_CTR: return "sm4-ctr";
	}
	return "?";
}

static int hmac(const uint8_t *key, size_t key_len, const void *a, size_t alen, const void *b,
		size_t blen, uint8_t out[32])
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	size_t n = 0;
	int ok = ctx && EVP_MAC_init(ctx, key, key_len, params) &&
		 EVP_MAC_update(ctx, a, alen) && (!blen || EVP_MAC_update(ctx, b, blen)) &&
		 EVP_MAC_final(ctx, out, &n, 32) && n == 32;

	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return ok ? 0 : anole_error_code(EIO, "HMAC-SHA256 failed in OpenSSL");
}

int anole_chunk_key_derive(const uint8_t master[32], enum anole_cipher_alg alg,
			   struct anole_chunk_key *out)
{
	/* The labels name the algorithm too: one master key used with both
	 * ciphers gives unrelated keys. */
	char label[64];
	uint8_t check[32];
	int ret;

	memset(out, 0, sizeof(*out));
	if (alg != ANOLE_CIPHER_AES256_CTR && alg != ANOLE_CIPHER_SM4_CTR)
		return anole_error_code(EINVAL, "no such cipher");
	out->alg = alg;
	snprintf(label, sizeof(label), "anole chunk key v1 %s", anole_cipher_name(alg));
	ret = hmac(master, 32, label, strlen(label), NULL, 0, out->enc);
	snprintf(label, sizeof(label), "anole chunk iv v1 %s", anole_cipher_name(alg));
	if (!ret)
		ret = hmac(master, 32, label, strlen(label), NULL, 0, out->iv_key);
	snprintf(label, sizeof(label), "anole key check v1 %s", anole_cipher_name(alg));
	if (!ret)
		ret = hmac(master, 32, label, strlen(label), NULL, 0, check);
	memcpy(out->check, check, ANOLE_KEY_CHECK_SIZE);
	OPENSSL_cleanse(check, sizeof(check));
	if (ret)
		anole_chunk_key_wipe(out);
	return ret;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

int anole_chunk_key_load(const char *path, enum anole_cipher_alg alg, struct anole_chunk_key *out)
{
	uint8_t buf[80], master[32];
	size_t n;
	FILE *f;
	int ret;

	memset(out, 0, sizeof(*out));
	f = fopen(path, "rb");
	if (!f)
		return anole_error(errno, "cannot open key %s", path);
	n = fread(buf, 1, sizeof(buf), f);
	ret = ferror(f) ? anole_error(EIO, "cannot read key %s", path) : 0;
	fclose(f);
	if (ret)
		return ret;
	if (n == 32) {
		memcpy(master, buf, 32);
	} else if (n == 64 || (n == 65 && buf[64] == '\n')) {
		for (int i = 0; i < 32 && !ret; i++) {
			int hi = hexval(buf[2 * i]), lo = hexval(buf[2 * i + 1]);

			if (hi < 0 || lo < 0)
				ret = -EINVAL;
			master[i] = (uint8_t)(hi << 4 | (lo & 15));
		}
	} else {
		ret = -EINVAL;
	}
	if (ret)
		ret = anole_error_code(EINVAL, "%s: a key file is 32 bytes, or 64 hex digits (e.g. "
				       "`openssl rand -hex 32 > KEY`)", path);
	else
		ret = anole_chunk_key_derive(master, alg, out);
	OPENSSL_cleanse(buf, sizeof(buf));
	OPENSSL_cleanse(master, sizeof(master));
	return ret;
}

void anole_chunk_key_wipe(struct anole_chunk_key *k)
{
	OPENSSL_cleanse(k, sizeof(*k));
}

int anole_chunk_crypt(const struct anole_chunk_key *k, const void *iv_input, size_t iv_len,
		      uint8_t *buf, size_t len)
{
	const EVP_CIPHER *c = k->alg == ANOLE_CIPHER_SM4_CTR ? EVP_sm4_ctr() : EVP_aes_256_ctr();
	uint8_t iv[32];
	EVP_CIPHER_CTX *ctx;
	int out_len = 0, ok, ret;

	if (k->alg == ANOLE_CIPHER_NONE)
		return 0;
	if (len > INT32_MAX)
		return anole_error_code(EFBIG, "a chunk of %zu bytes is too large to encrypt", len);
	ret = hmac(k->iv_key, sizeof(k->iv_key), iv_input, iv_len, NULL, 0, iv);
	if (ret)
		return ret;
	ctx = EVP_CIPHER_CTX_new();
	if (!c || !ctx) {
		EVP_CIPHER_CTX_free(ctx);
		return anole_error_code(ENOTSUP, "%s is not available in this OpenSSL",
					anole_cipher_name(k->alg));
	}
	/* CTR: encryption and decryption are the same keystream XOR */
	ok = EVP_EncryptInit_ex(ctx, c, NULL, k->enc, iv) &&
	     EVP_EncryptUpdate(ctx, buf, &out_len, buf, (int)len) && (size_t)out_len == len;
	EVP_CIPHER_CTX_free(ctx);
	OPENSSL_cleanse(iv, sizeof(iv));
	return ok ? 0 : anole_error_code(EIO, "%s failed in OpenSSL", anole_cipher_name(k->alg));
}
