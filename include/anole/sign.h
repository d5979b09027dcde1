/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signatures through OpenSSL's EVP: ECDSA P-256 with SHA-256, SM2 with SM3
 * and Ed25519. Keys are PEM files (PKCS#8 or traditional private keys,
 * SubjectPublicKeyInfo public keys); the algorithm follows from the key.
 *
 * Signatures are what the ecosystem's verifiers take: ECDSA and SM2 as a
 * DER SEQUENCE { r, s } (as cosign, containers/image and `openssl dgst`
 * write them), Ed25519 as its raw 64 bytes (RFC 8032).
 *
 * SM2 signs with the user ID of GM/T 0009-2012 and GB/T 35276-2017,
 * "1234567812345678". OpenSSL 3's command line defaults to an EMPTY ID, so
 * to check an anole SM2 signature with it, name the ID:
 *   openssl dgst -sm3 -verify PUB.pem -signature SIG \
 *       -sigopt distid:1234567812345678 PAYLOAD
 */
#ifndef ANOLE_SIGN_H
#define ANOLE_SIGN_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strbuf;

#define ANOLE_SM2_DEFAULT_ID "1234567812345678"

enum anole_sign_alg {
	ANOLE_SIGN_ECDSA_P256 = 0,  /* ECDSA on P-256 over SHA-256 */
	ANOLE_SIGN_SM2 = 1,         /* SM2 over SM3 (with the Z value of the ID) */
	ANOLE_SIGN_ED25519 = 2,     /* pure Ed25519 */
};

struct anole_sign_key;

/* "ecdsa-p256-sha256", "sm2-sm3", "ed25519" */
const char *anole_sign_alg_name(enum anole_sign_alg alg);

/*
 * Load a PEM key: a private key, or (when want_private is false) either a
 * private or a public key. Another algorithm or curve, an encrypted private
 * key, or a file that is no PEM key is a logged error naming the file.
 * `what` names the source in messages (a path, "keyData"). 0 or -errno.
 */
int anole_sign_key_load(const char *path, bool want_private, struct anole_sign_key **out);
int anole_sign_key_from_pem(const void *pem, size_t len, bool want_private, const char *what,
			    struct anole_sign_key **out);
void anole_sign_key_free(struct anole_sign_key *key);

enum anole_sign_alg anole_sign_key_alg(const struct anole_sign_key *key);
bool anole_sign_key_is_private(const struct anole_sign_key *key);
/* The public half as a PEM SubjectPublicKeyInfo, appended to out. */
int anole_sign_key_public_pem(const struct anole_sign_key *key, struct strbuf *out);

/* A new key pair (for tests and `anole image sign --generate-key`). */
int anole_sign_key_generate(enum anole_sign_alg alg, struct anole_sign_key **out);
/* The private key as unencrypted PKCS#8 PEM, appended to out. */
int anole_sign_key_private_pem(const struct anole_sign_key *key, struct strbuf *out);
/* "ecdsa-p256"/"p256"/"ecdsa", "sm2", "ed25519" -> alg; -EINVAL (logged) if not. */
int anole_sign_alg_from_name(const char *name, enum anole_sign_alg *alg);

/* Sign len bytes with a private key; the signature is appended to sig. */
int anole_sign(const struct anole_sign_key *key, const void *data, size_t len, struct strbuf *sig);

/*
 * Check a signature over len bytes. 0 when it verifies; -EBADMSG (logged,
 * naming the algorithm) when it does not, including a signature that is not
 * even well-formed; another -errno when OpenSSL fails.
 */
int anole_verify(const struct anole_sign_key *key, const void *data, size_t len,
		 const void *sig, size_t sig_len);
/* The same without a message for a signature that does not verify (one
 * key of several tried: the caller says what it concludes). */
int anole_verify_quiet(const struct anole_sign_key *key, const void *data, size_t len,
		       const void *sig, size_t sig_len);

#endif
