// SPDX-License-Identifier: Apache-2.0
/*
 * Signing and verifying byte buffers (anole/sign.h). Every primitive is
 * OpenSSL's: EVP_DigestSign/Verify, with the SM2 user ID set on the key
 * context, since the Z value of SM2 (GB/T 32918.2) hashes the ID in.
 */
#include "anole/sign.h"
#include "anole/fileio.h"
#include "anole/error.h"
#include "anole/strbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

struct anole_sign_key {
	EVP_PKEY *pkey;
	enum anole_sign_alg alg;
	bool is_private;
};

const char *anole_sign_alg_name(enum anole_sign_alg alg)
{
	switch (alg) {
	case ANOLE_SIGN_ECDSA_P256: return "ecdsa-p256-sha256";
	case ANOLE_SIGN_SM2: return "sm2-sm3";
	case ANOLE_SIGN_ED25519: return "ed25519";
	}
	return "?";
}

/* OpenSSL's own reason for the last failure, for the message. */
static const char *ossl_reason(void)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	return r ? r : "no reason given";
}

/* Encrypted private keys need a passphrase we never prompt for. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf; (void)size; (void)rwflag;
	*(bool *)u = true;
	return -1;
}

static int classify(EVP_PKEY *pkey, const char *what, enum anole_sign_alg *alg)
{
	char group[64] = "";
	size_t glen = 0;

	if (EVP_PKEY_is_a(pkey, "ED25519")) {
		*alg = ANOLE_SIGN_ED25519;
		return 0;
	}
	if (EVP_PKEY_is_a(pkey, "SM2")) {
		*alg = ANOLE_SIGN_SM2;
		return 0;
	}
	if (EVP_PKEY_is_a(pkey, "EC")) {
		if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
						    sizeof(group), &glen))
			group[0] = '\0';
		if (!strcmp(group, "prime256v1") || !strcmp(group, "P-256")) {
			*alg = ANOLE_SIGN_ECDSA_P256;
			return 0;
		}
		/* OpenSSL 3.0 loads an id-ecPublicKey key on the SM2 curve as
		 * "SM2"; a build that says "EC" would sign plain ECDSA with it. */
		return anole_error_code(ENOTSUP, "%s: an EC key on curve '%s': anole signs with "
					"P-256 (prime256v1) or SM2 keys", what,
					group[0] ? group : "(unnamed)");
	}
	return anole_error_code(ENOTSUP, "%s: a %s key: anole signs with ECDSA P-256, SM2 or "
				"Ed25519 keys", what, EVP_PKEY_get0_type_name(pkey) ?
				EVP_PKEY_get0_type_name(pkey) : "unknown");
}

int anole_sign_key_from_pem(const void *pem, size_t len, bool want_private, const char *what,
			    struct anole_sign_key **out)
{
	struct anole_sign_key *key;
	EVP_PKEY *pkey = NULL;
	bool encrypted = false, is_private = false;
	enum anole_sign_alg alg = ANOLE_SIGN_ECDSA_P256;   /* set by classify */
	BIO *bio;
	int ret;

	*out = NULL;
	if (len > 1 << 20)
		return anole_error_code(EFBIG, "%s: %zu bytes is no PEM key", what, len);
	if (!len || !pem)
		return anole_error_code(EINVAL, "%s: empty, not a PEM key", what);
	bio = BIO_new_mem_buf(pem, (int)len);
	if (!bio)
		return anole_error_code(ENOMEM, "%s: out of memory", what);
	ERR_clear_error();
	pkey = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, &encrypted);
	if (pkey) {
		is_private = true;
	} else if (encrypted) {
		BIO_free(bio);
		return anole_error_code(EINVAL, "%s: the private key is encrypted: anole takes "
					"unencrypted PEM keys (decrypt it with `openssl pkey`)", what);
	} else if (!want_private) {
		(void)BIO_reset(bio);
		ERR_clear_error();
		pkey = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	}
	BIO_free(bio);
	if (!pkey) {
		ret = anole_error_code(EINVAL, "%s: not a PEM %s (%s)", what,
				       want_private ? "private key" : "public or private key",
				       ossl_reason());
		ERR_clear_error();
		return ret;
	}
	ret = classify(pkey, what, &alg);
	if (ret < 0) {
		EVP_PKEY_free(pkey);
		return ret;
	}
	key = calloc(1, sizeof(*key));
	if (!key) {
		EVP_PKEY_free(pkey);
		return anole_error_code(ENOMEM, "%s: out of memory", what);
	}
	key->pkey = pkey;
	key->alg = alg;
	key->is_private = is_private;
	*out = key;
	return 0;
}

int anole_sign_key_load(const char *path, bool want_private, struct anole_sign_key **out)
{
	struct strbuf sb = STRBUF_INIT;
	int ret;

	*out = NULL;
	/* a FIFO named as a key (a policy's keyPath is its author's to
	 * choose) reads as empty when nobody writes to it: anole_read_file
	 * does not wait for a writer */
	ret = anole_read_file(path, 1 << 20, &sb);
	if (ret)
		ret = anole_error(-ret, "cannot read key %s", path);
	else
		ret = anole_sign_key_from_pem(sb.buf, sb.len, want_private, path, out);
	/* private key bytes do not linger in freed memory (all of the
	 * buffer: a refused read leaves what it read past sb.len) */
	if (sb.buf)
		OPENSSL_cleanse(sb.buf, sb.alloc);
	strbuf_release(&sb);
	return ret;
}

void anole_sign_key_free(struct anole_sign_key *key)
{
	if (!key)
		return;
	EVP_PKEY_free(key->pkey);
	free(key);
}

enum anole_sign_alg anole_sign_key_alg(const struct anole_sign_key *key) { return key->alg; }
bool anole_sign_key_is_private(const struct anole_sign_key *key) { return key->is_private; }

int anole_sign_alg_from_name(const char *name, enum anole_sign_alg *alg)
{
	if (!strcmp(name, "ecdsa-p256") || !strcmp(name, "p256") || !strcmp(name, "ecdsa") ||
	    !strcmp(name, "ecdsa-p256-sha256"))
		*alg = ANOLE_SIGN_ECDSA_P256;
	else if (!strcmp(name, "sm2") || !strcmp(name, "sm2-sm3"))
		*alg = ANOLE_SIGN_SM2;
	else if (!strcmp(name, "ed25519"))
		*alg = ANOLE_SIGN_ED25519;
	else
		return anole_error_code(EINVAL, "unknown signature algorithm '%s' (use ecdsa-p256, "
					"sm2 or ed25519)", name);
	return 0;
}

int anole_sign_key_generate(enum anole_sign_alg alg, struct anole_sign_key **out)
{
	struct anole_sign_key *key;
	EVP_PKEY *pkey = NULL;

	*out = NULL;
	switch (alg) {
	case ANOLE_SIGN_ECDSA_P256: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"); break;
	case ANOLE_SIGN_SM2: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "SM2"); break;
	case ANOLE_SIGN_ED25519: pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"); break;
	}
	if (!pkey)
		return anole_error_code(EIO, "%s: key generation failed (%s)",
					anole_sign_alg_name(alg), ossl_reason());
	key = calloc(1, sizeof(*key));
	if (!key) {
		EVP_PKEY_free(pkey);
		return -ENOMEM;
	}
	key->pkey = pkey;
	key->alg = alg;
	key->is_private = true;
	*out = key;
	return 0;
}

static int write_pem(const struct anole_sign_key *key, bool priv, struct strbuf *out)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char *p;
	long n;
	int ok;

	if (!bio)
		return -ENOMEM;
	ok = priv ? PEM_write_bio_PrivateKey(bio, key->pkey, NULL, NULL, 0, NULL, NULL)
		  : PEM_write_bio_PUBKEY(bio, key->pkey);
	if (!ok) {
		BIO_free(bio);
		return anole_error_code(EIO, "cannot write the %s key (%s)",
					priv ? "private" : "public", ossl_reason());
	}
	n = BIO_get_mem_data(bio, &p);
	strbuf_add(out, p, (size_t)n);
	OPENSSL_cleanse(p, (size_t)n);
	BIO_free(bio);
	return 0;
}

int anole_sign_key_private_pem(const struct anole_sign_key *key, struct strbuf *out)
{
	if (!key->is_private)
		return anole_error_code(EINVAL, "this is a public key, it has no private half");
	return write_pem(key, true, out);
}

int anole_sign_key_public_pem(const struct anole_sign_key *key, struct strbuf *out)
{
	return write_pem(key, false, out);
}

/*
 * An EVP_MD_CTX set up for one algorithm: the digest it signs over, and for
 * SM2 the ID (on a key context of our own, handed to the MD context).
 */
static int init_ctx(const struct anole_sign_key *key, bool sign, EVP_MD_CTX **out,
		    EVP_PKEY_CTX **own_pctx)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *alg_md = NULL;
	int ok;

	*out = NULL;
	*own_pctx = NULL;
	if (!md)
		return -ENOMEM;
	switch (key->alg) {
	case ANOLE_SIGN_ECDSA_P256: alg_md = EVP_sha256(); break;
	case ANOLE_SIGN_SM2: alg_md = EVP_sm3(); break;
	case ANOLE_SIGN_ED25519: alg_md = NULL; break; /* pure EdDSA hashes itself */
	}
	if (key->alg == ANOLE_SIGN_SM2) {
		pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
		if (!pctx || EVP_PKEY_CTX_set1_id(pctx, ANOLE_SM2_DEFAULT_ID,
						  strlen(ANOLE_SM2_DEFAULT_ID)) <= 0) {
			EVP_PKEY_CTX_free(pctx);
			EVP_MD_CTX_free(md);
			return anole_error_code(EIO, "SM2: cannot set the signer ID (%s)",
						ossl_reason());
		}
		/* md uses pctx but leaves freeing it to us */
		EVP_MD_CTX_set_pkey_ctx(md, pctx);
	}
	ok = sign ? EVP_DigestSignInit(md, NULL, alg_md, NULL, key->pkey)
		  : EVP_DigestVerifyInit(md, NULL, alg_md, NULL, key->pkey);
	if (ok != 1) {
		int ret = anole_error_code(EIO, "%s: cannot start %s (%s)",
					   anole_sign_alg_name(key->alg),
					   sign ? "signing" : "verifying", ossl_reason());
		EVP_MD_CTX_free(md);
		EVP_PKEY_CTX_free(pctx);
		return ret;
	}
	*out = md;
	*own_pctx = pctx;
	return 0;
}

static void free_ctx(EVP_MD_CTX *md, EVP_PKEY_CTX *own_pctx)
{
	EVP_MD_CTX_free(md);
	EVP_PKEY_CTX_free(own_pctx);
}

int anole_sign(const struct anole_sign_key *key, const void *data, size_t len, struct strbuf *sig)
{
	EVP_MD_CTX *md;
	EVP_PKEY_CTX *pctx;
	size_t sig_len = 0;
	int ret;

	if (!key->is_private)
		return anole_error_code(EINVAL, "signing needs a private key, this is a public one");
	ret = init_ctx(key, true, &md, &pctx);
	if (ret < 0)
		return ret;
	ERR_clear_error();
	if (EVP_DigestSign(md, NULL, &sig_len, data, len) != 1) {
		ret = anole_error_code(EIO, "%s: signing failed (%s)",
				       anole_sign_alg_name(key->alg), ossl_reason());
		goto out;
	}
	strbuf_grow(sig, sig_len);
	if (EVP_DigestSign(md, (unsigned char *)sig->buf + sig->len, &sig_len, data, len) != 1) {
		ret = anole_error_code(EIO, "%s: signing failed (%s)",
				       anole_sign_alg_name(key->alg), ossl_reason());
		goto out;
	}
	strbuf_setlen(sig, sig->len + sig_len);
out:
	free_ctx(md, pctx);
	return ret;
}

static int verify(const struct anole_sign_key *key, const void *data, size_t len,
		  const void *sig, size_t sig_len, bool quiet)
{
	EVP_MD_CTX *md;
	EVP_PKEY_CTX *pctx;
	int ret, ok;

	ret = init_ctx(key, false, &md, &pctx);
	if (ret < 0)
		return ret;
	ERR_clear_error();
	ok = EVP_DigestVerify(md, sig, sig_len, data, len);
	if (ok == 1)
		ret = 0;
	else if (quiet)
		ret = -EBADMSG;
	else
		/* 0 (mismatch) or a malformed signature: both are "does not verify" */
		ret = anole_error_code(EBADMSG, "%s signature does not verify with this key",
				       anole_sign_alg_name(key->alg));
	ERR_clear_error();
	free_ctx(md, pctx);
	return ret;
}

int anole_verify(const struct anole_sign_key *key, const void *data, size_t len,
		 const void *sig, size_t sig_len)
{
	return verify(key, data, len, sig, sig_len, false);
}

int anole_verify_quiet(const struct anole_sign_key *key, const void *data, size_t len,
		       const void *sig, size_t sig_len)
{
	return verify(key, data, len, sig, sig_len, true);
}
