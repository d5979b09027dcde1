// SPDX-License-Identifier: Apache-2.0
/*
 * Secrets: passwords are kept as salted scrypt hashes (OpenSSL's
 * EVP_PBE_scrypt; N=2^15, r=8, p=1: about 32 MiB and tens of ms per try,
 * so a stolen database is slow to attack); session and agent tokens are 32
 * random bytes whose SHA-256 alone is stored, so the database never holds
 * anything that logs in.
 */
#include "internal.h"

#include "anole/digest.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCRYPT_N 32768u
#define SCRYPT_R 8u
#define SCRYPT_P 1u
#define SALT_LEN 16
#define HASH_LEN 32

static int unhex(const char *in, size_t n, unsigned char *out)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = in[2 * i + j];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned)(c - 'a' + 10);
			else
				return -EINVAL;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

static int scrypt(const char *password, const unsigned char *salt, uint64_t n, uint64_t r,
		  uint64_t p, unsigned char *out)
{
	/* the memory scrypt needs is 128*N*r*p bytes: allow it, with room */
	uint64_t maxmem = 128 * n * r * p + (1 << 20);

	if (n > (1u << 20) || r > 32 || p > 16)
		return -EINVAL;
	return EVP_PBE_scrypt(password, strlen(password), salt, SALT_LEN, n, r, p, maxmem, out,
			      HASH_LEN) == 1 ? 0 : -EIO;
}

char *auth_hash_password(const char *password)
{
	unsigned char salt[SALT_LEN], h[HASH_LEN];
	char salt_hex[2 * SALT_LEN + 1], h_hex[2 * HASH_LEN + 1], *out;

	if (RAND_bytes(salt, sizeof(salt)) != 1 ||
	    scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, h))
		return NULL;
	anole_hex(salt, sizeof(salt), salt_hex);
	anole_hex(h, sizeof(h), h_hex);
	out = xmalloc(200);
	snprintf(out, 200, "scrypt$%u$%u$%u$%s$%s", SCRYPT_N, SCRYPT_R, SCRYPT_P, salt_hex, h_hex);
	OPENSSL_cleanse(h, sizeof(h));
	return out;
}

bool auth_check_password(const char *stored, const char *password)
{
	unsigned long long n, r, p;
	char salt_hex[2 * SALT_LEN + 1], h_hex[2 * HASH_LEN + 1];
	unsigned char salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
	bool ok;

	if (!stored || sscanf(stored, "scrypt$%llu$%llu$%llu$%32[0-9a-f]$%64[0-9a-f]", &n, &r,
			      &p, salt_hex, h_hex) != 5 ||
	    strlen(salt_hex) != 2 * SALT_LEN || strlen(h_hex) != 2 * HASH_LEN ||
	    unhex(salt_hex, SALT_LEN, salt) || unhex(h_hex, HASH_LEN, want) ||
	    scrypt(password, salt, n, r, p, got))
		return false;
	ok = !CRYPTO_memcmp(want, got, HASH_LEN);
	OPENSSL_cleanse(got, sizeof(got));
	return ok;
}

int auth_random_hex(char *out, size_t n)
{
	unsigned char buf[64];

	if (n > sizeof(buf) || RAND_bytes(buf, (int)n) != 1)
		return anole_error_code(EIO, "console: no random bytes from OpenSSL");
	anole_hex(buf, n, out);
	return 0;
}

void auth_sha256_hex(const char *s, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)s, strlen(s), md);
	anole_hex(md, sizeof(md), out);
}

void auth_peer_address(const char *peer, char *out, size_t n)
{
	const char *colon;
	size_t len;

	if (peer[0] == '[') {
		colon = strchr(peer, ']');
		len = colon ? (size_t)(colon - peer - 1) : strlen(peer);
		peer++;
	} else {
		colon = strrchr(peer, ':');
		len = colon ? (size_t)(colon - peer) : strlen(peer);
	}
	if (len >= n)
		len = n - 1;
	memcpy(out, peer, len);
	out[len] = '\0';
}
