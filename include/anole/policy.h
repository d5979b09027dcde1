/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Trust policy for images: the subset of containers-policy.json(5) that
 * anole's signatures answer (docs/anole-image.md, "Signing and encryption"):
 *
 *   {"default": [REQ...],
 *    "transports": {"docker": {SCOPE: [REQ...], ...}, "oci": {...}, "file": {...}}}
 *
 *   REQ  {"type": "insecureAcceptAnything"}
 *        {"type": "reject"}
 *        {"type": "sigstoreSigned", "keyPath": FILE | "keyPaths": [FILE...] |
 *         "keyData": BASE64 PEM | "keyDatas": [...],
 *         "signedIdentity": {"type": "matchRepoDigestOrExact"} |
 *                           {"type": "exactReference", "dockerReference": REF}}
 *
 * Scopes, most specific first: docker: HOST/REPO:TAG (or @DIGEST), HOST/REPO,
 * each parent namespace, HOST, *.DOMAIN wildcards; oci: DIR:TAG, DIR, each
 * parent directory; file (anole's plain image files, an anole extension):
 * the file's path and its parent directories; then "" (the transport's
 * default), then "default". Every requirement of the chosen list must hold.
 * Requirements anole cannot check (signedBy GPG keys, signedBaseLayer,
 * Fulcio, Rekor, other signedIdentity types) refuse the images they apply
 * to, never a silent accept; unknown types and fields fail the load.
 */
#ifndef ANOLE_POLICY_H
#define ANOLE_POLICY_H
#include <stddef.h>

#define ANOLE_POLICY_DEFAULT_FILE "/etc/containers/policy.json"
#define ANOLE_POLICY_MAX_BYTES    (1u << 20)

struct anole_policy;
struct anole_blobstore_opts;
struct anole_ref;

/* Parse a policy document; `what` names it in messages. 0 or -EINVAL
 * (logged, naming the wrong part). */
int anole_policy_parse(const char *text, size_t len, const char *what, struct anole_policy **out);
/* Load FILE; NULL: ANOLE_POLICY_DEFAULT_FILE if it exists, else *out = NULL
 * (no policy: nothing checked) and 0. */
int anole_policy_load(const char *path, struct anole_policy **out);
void anole_policy_free(struct anole_policy *p);

/*
 * May the image ref_text names be used? 0 when the policy accepts it;
 * then *pinned (to free) is the signed manifest's digest when a signature
 * was required (the caller uses that manifest and nothing else), NULL when
 * none was. -EACCES (reject) or -EKEYREJECTED (not signed as required),
 * logged with the reason; nothing of the image's data has been read then.
 */
int anole_policy_check(const struct anole_policy *p, const char *ref_text,
		       const struct anole_blobstore_opts *sopts, char **pinned);
/*
 * anole_policy_check, then, for a registry reference, point ref (ref_text
 * parsed) at the signed manifest: from here on its digest, whatever the
 * tag says now. *pinned as above, for anole_ref_check_pinned once the image
 * is resolved.
 */
int anole_policy_pin(const struct anole_policy *p, const char *ref_text, struct anole_ref *ref,
		     const struct anole_blobstore_opts *sopts, char **pinned);
#endif
