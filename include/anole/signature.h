/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image signatures, stored as sigstore/cosign stores them so that
 * containers/image (skopeo, podman) and cosign read them:
 *
 *   the payload    a "simple signing" JSON document (containers-signature(5),
 *                  cosign's SIGNATURE_SPEC): critical.identity.docker-reference,
 *                  critical.image.docker-manifest-digest, critical.type
 *                  "cosign container image signature", optional
 *   the signature  over the payload's bytes (anole/sign.h: ECDSA P-256 +
 *                  SHA-256, SM2 + SM3, Ed25519), base64 in the annotation
 *                  dev.cosignproject.cosign/signature of the payload's layer
 *   where          an OCI image manifest whose layers are the payloads,
 *                  tagged sha256-<hex of the signed manifest's digest>.sig
 *                  next to the image (registry repository, or the layout's
 *                  index.json); several signatures are several layers
 *   plain files    IMAGE.sig beside the file: a small JSON document with the
 *                  payload and signature (base64), the payload's digest being
 *                  the file's SHA-256
 *
 * What a signature covers: the manifest the reference names (for docker://
 * the one the tag or digest names, as containers/image checks it; for oci:
 * the manifest the layout's entry resolves to on this platform), and through
 * its digests the config, the metadata image and every blob.
 */
#ifndef ANOLE_SIGNATURE_H
#define ANOLE_SIGNATURE_H
#include <stdbool.h>
#include <stddef.h>

#include "anole/sign.h"
#include "anole/strbuf.h"

#define ANOLE_SIG_PAYLOAD_MT  "application/vnd.dev.cosign.simplesigning.v1+json"
#define ANOLE_SIG_ANNOTATION  "dev.cosignproject.cosign/signature"
#define ANOLE_SIG_TYPE        "cosign container image signature"
#define ANOLE_SIG_MAX_PAYLOAD (64u << 10)   /* a payload is a few hundred bytes */
#define ANOLE_SIG_MAX_LAYERS  256           /* signatures looked at per image */

/* What a payload says (untrusted until its signature verified). */
struct anole_sig_payload {
	char *manifest_digest;      /* "sha256:<hex>" */
	char *docker_reference;     /* e.g. "registry.example:5000/repo:tag" */
};

/* The payload anole signs: compact JSON, critical fields only, optional
 * holding the creator. */
void anole_sig_payload_make(const char *manifest_digest, const char *docker_reference,
			    struct strbuf *out);
/*
 * Parse a payload as strictly as containers/image does: exactly the fields
 * critical{type,image{docker-manifest-digest},identity{docker-reference}}
 * and optional (an object or null), the type cosign's, the digest a valid
 * sha256 digest. 0, or -EBADMSG naming what is wrong.
 */
int anole_sig_payload_parse(const void *buf, size_t len, struct anole_sig_payload *out);
void anole_sig_payload_free(struct anole_sig_payload *p);

struct anole_blobstore_opts;

struct anole_sig_result {
	char *manifest_digest;      /* the signed (and now pinned) manifest */
	char *docker_reference;     /* the identity the signature claims */
	char *where;                /* where the signature is: a tag or a file */
	enum anole_sign_alg alg;
	unsigned signatures;        /* signatures present */
	unsigned key_index;         /* verify: which of the keys verified */
};
void anole_sig_result_free(struct anole_sig_result *r);

/*
 * Sign the image ref_text names (docker://, oci:, or a plain image file)
 * with key, adding to the signatures already there. identity (NULL: taken
 * from the reference: HOST/REPO[:TAG]) is the docker-reference signed.
 */
int anole_image_sign(const char *ref_text, const struct anole_sign_key *key,
		     const char *identity, const struct anole_blobstore_opts *sopts,
		     struct anole_sig_result *res);

/*
 * Verify that the image ref_text names carries a signature by one of keys
 * whose payload names the manifest it has now. identity, when given, must
 * equal the payload's docker-reference; when NULL, a docker:// image's
 * signature must name the reference itself (containers/image's default
 * matchRepoDigestOrExact: HOST/REPO:TAG exactly, or HOST/REPO for an image
 * named by digest), and other images' names are not checked. 0 when one
 * verifies (res says which); -EKEYREJECTED when the image is not signed or
 * no signature verifies, with a message saying which it is.
 */
int anole_image_verify(const char *ref_text, const struct anole_sign_key *const *keys,
		       size_t nkeys, const char *identity,
		       const struct anole_blobstore_opts *sopts, struct anole_sig_result *res);

/* The SHA-256 of a file compared with digest ("sha256:<hex>"): the
 * metadata image pinned by a signed manifest, checked before it is mounted.
 * 0, or -EBADMSG naming both digests. */
int anole_file_check_digest(const char *path, const char *digest);
#endif
