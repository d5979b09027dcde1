/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Chunk encryption through OpenSSL's EVP: AES-256-CTR or SM4-CTR, with the
 * per-chunk IV derived from what the chunk table says of the chunk (its
 * plaintext digest, sizes, compression and place in the blob), so that the
 * same build gives the same bytes and a reader needs nothing stored beside
 * the chunk. Integrity is the chunk digest's: a reader decrypts, then
 * decompresses, then checks the plaintext's digest, as it does unencrypted.
 * See docs/anole-image.md, "Signing and encryption", for the choice.
 *
 * Keys: a file of 32 random bytes, or of 64 hexadecimal digits (one line).
 * From it, by HMAC-SHA256 with fixed labels: the cipher key, the IV key,
 * and an 8-byte key check value stored in the image so that a wrong key is
 * named as such before any chunk is fetched. The key file never enters
 * the image.
 */
#ifndef ANOLE_CIPHER_H
#define ANOLE_CIPHER_H
#include <stddef.h>
#include <stdint.h>

enum anole_cipher_alg {
	ANOLE_CIPHER_NONE = 0,
	ANOLE_CIPHER_AES256_CTR = 1,
	ANOLE_CIPHER_SM4_CTR = 2,
};

#define ANOLE_KEY_CHECK_SIZE 8

struct anole_chunk_key {
	enum anole_cipher_alg alg;
	uint8_t enc[32];            /* AES-256: all; SM4: the first 16 bytes */
	uint8_t iv_key[32];
	uint8_t check[ANOLE_KEY_CHECK_SIZE];
};

/* "aes-256-ctr" / "sm4-ctr" -> alg; -EINVAL (logged) otherwise. */
int anole_cipher_from_name(const char *name, enum anole_cipher_alg *alg);
const char *anole_cipher_name(enum anole_cipher_alg alg);

/* Derive the keys of alg from a master key of 32 bytes. */
int anole_chunk_key_derive(const uint8_t master[32], enum anole_cipher_alg alg,
			   struct anole_chunk_key *out);
/* Read a key file (32 raw bytes, or 64 hex digits and an optional newline)
 * and derive. -EINVAL naming the file when it is neither. */
int anole_chunk_key_load(const char *path, enum anole_cipher_alg alg, struct anole_chunk_key *out);
/* Forget a key (its bytes overwritten). */
void anole_chunk_key_wipe(struct anole_chunk_key *k);

/*
 * Encrypt or decrypt (CTR: the same operation) len bytes in place. iv_input
 * is what names the chunk (see image/ for what goes in it); the IV is
 * HMAC-SHA256(iv_key, iv_input) cut to 16 bytes.
 */
int anole_chunk_crypt(const struct anole_chunk_key *k, const void *iv_input, size_t iv_len,
		      uint8_t *buf, size_t len);
#endif
