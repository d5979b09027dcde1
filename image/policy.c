// SPDX-License-Identifier: Apache-2.0
/*
 * containers-policy.json(5), the part anole checks (anole/policy.h). The
 * document is untrusted input until parsed: sizes are bounded, every field
 * is type-checked, and an unknown requirement type is an error, since
 * skipping a requirement would accept what its author meant to refuse.
 */
#include "anole/policy.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/http.h"
#include "anole/ref.h"
#include "anole/sign.h"
#include "anole/signature.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_KEYS_PER_REQ 32

/* REQ_UNSUPPORTED: a requirement containers/image knows and anole cannot
 * check (GPG signedBy, Fulcio, Rekor, other identity rules): it refuses the
 * images it applies to, and only those, so that a system policy with such
 * rules for some registries still lets anole use the rest. */
enum req_type { REQ_ACCEPT, REQ_REJECT, REQ_SIGSTORE, REQ_UNSUPPORTED };

struct policy_req {
	enum req_type type;
	char **key_paths;
	size_t nkey_paths;
	struct anole_sign_key **keys;     /* from keyData */
	size_t nkeys;
	char *identity;                   /* exactReference; NULL: matchRepoDigestOrExact */
	char *unsupported;                /* REQ_UNSUPPORTED: what it is */
};

struct policy_scope {
	char *transport;
	char *scope;
	struct policy_req *reqs;
	size_t nreqs;
};

struct anole_policy {
	char *what;
	struct policy_req *def;
	size_t ndef;
	struct policy_scope *scopes;
	size_t nscopes, alloc;
};

static void free_reqs(struct policy_req *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < r[i].nkey_paths; k++)
			free(r[i].key_paths[k]);
		free(r[i].key_paths);
		for (size_t k = 0; k < r[i].nkeys; k++)
			anole_sign_key_free(r[i].keys[k]);
		free(r[i].keys);
		free(r[i].identity);
		free(r[i].unsupported);
	}
	free(r);
}

void anole_policy_free(struct anole_policy *p)
{
	if (!p)
		return;
	free_reqs(p->def, p->ndef);
	for (size_t i = 0; i < p->nscopes; i++) {
		free(p->scopes[i].transport);
		free(p->scopes[i].scope);
		free_reqs(p->scopes[i].reqs, p->scopes[i].nreqs);
	}
	free(p->scopes);
	free(p->what);
	free(p);
}

/* keyPath or keyPaths (one of them given): the strings, up to MAX. */
static int strings_of(json_t *one, json_t *many, const char *what, const char *field,
		      json_t *out[MAX_KEYS_PER_REQ], size_t *n)
{
	*n = 0;
	if (one) {
		if (!json_is_string(one) || !json_string_length(one))
			return anole_error_code(EINVAL, "%s: %s is not a non-empty string", what, field);
		out[(*n)++] = one;
		return 0;
	}
	if (!json_is_array(many) || !json_array_size(many) ||
	    json_array_size(many) > MAX_KEYS_PER_REQ)
		return anole_error_code(EINVAL, "%s: %ss is not an array of 1 to %d strings", what,
					field, MAX_KEYS_PER_REQ);
	for (size_t i = 0; i < json_array_size(many); i++) {
		json_t *s = json_array_get(many, i);

		if (!json_is_string(s) || !json_string_length(s))
			return anole_error_code(EINVAL, "%s: %ss[%zu] is not a non-empty string",
						what, field, i);
		out[(*n)++] = s;
	}
	return 0;
}

/* r refuses the images it applies to: "<prefix><name>" says why. */
static void unsupported(struct policy_req *r, const char *prefix, const char *name)
{
	struct strbuf u = STRBUF_INIT;

	strbuf_addf(&u, "%s%s", prefix, name);
	r->type = REQ_UNSUPPORTED;
	r->unsupported = strbuf_detach(&u, NULL);
}

static int parse_identity(json_t *id, const char *what, struct policy_req *r)
{
	const char *type;

	if (!id)
		return 0;
	type = json_string_value(json_object_get(id, "type"));
	if (!json_is_object(id) || !type)
		return anole_error_code(EINVAL, "%s: signedIdentity is not an object with a type", what);
	if (!strcmp(type, "matchRepoDigestOrExact")) {
		if (json_object_size(id) != 1)
			return anole_error_code(EINVAL, "%s: matchRepoDigestOrExact takes no fields", what);
		return 0;
	}
	if (!strcmp(type, "exactReference")) {
		const char *ref = json_string_value(json_object_get(id, "dockerReference"));

		if (!ref || !*ref || json_object_size(id) != 2)
			return anole_error_code(EINVAL, "%s: exactReference takes a dockerReference", what);
		r->identity = xstrdup(ref);
		return 0;
	}
	if (!strcmp(type, "matchExact") || !strcmp(type, "matchRepository") ||
	    !strcmp(type, "exactRepository") || !strcmp(type, "remapIdentity")) {
		unsupported(r, "signedIdentity ", type);
		return 0;
	}
	return anole_error_code(EINVAL, "%s: unknown signedIdentity type \"%.64s\"", what, type);
}

static int parse_req(json_t *j, const char *what, struct policy_req *r)
{
	const char *type = json_string_value(json_object_get(j, "type"));
	const char *k;
	json_t *v;
	int ret;

	memset(r, 0, sizeof(*r));
	if (!json_is_object(j) || !type)
		return anole_error_code(EINVAL, "%s: a requirement is not an object with a \"type\"", what);
	if (!strcmp(type, "insecureAcceptAnything") || !strcmp(type, "reject")) {
		r->type = type[0] == 'r' ? REQ_REJECT : REQ_ACCEPT;
		if (json_object_size(j) != 1)
			return anole_error_code(EINVAL, "%s: %s takes no fields", what, type);
		return 0;
	}
	if (!strcmp(type, "signedBy") || !strcmp(type, "signedBaseLayer")) {
		unsupported(r, "", type);
		return 0;
	}
	if (strcmp(type, "sigstoreSigned"))
		return anole_error_code(EINVAL, "%s: unknown requirement type \"%.64s\"", what, type);
	r->type = REQ_SIGSTORE;
	json_object_foreach(j, k, v) {
		if (!strcmp(k, "fulcio") || !strcmp(k, "rekorPublicKeyPath") ||
		    !strcmp(k, "rekorPublicKeyPaths") || !strcmp(k, "rekorPublicKeyData") ||
		    !strcmp(k, "rekorPublicKeyDatas") || !strcmp(k, "pki")) {
			unsupported(r, "sigstoreSigned with ", k);
			return 0;
		}
		if (strcmp(k, "type") && strcmp(k, "keyPath") && strcmp(k, "keyPaths") &&
		    strcmp(k, "keyData") && strcmp(k, "keyDatas") && strcmp(k, "signedIdentity"))
			return anole_error_code(EINVAL, "%s: unknown sigstoreSigned field \"%.64s\"",
						what, k);
	}
	{
		json_t *kp = json_object_get(j, "keyPath"), *kps = json_object_get(j, "keyPaths");
		json_t *kd = json_object_get(j, "keyData"), *kds = json_object_get(j, "keyDatas");
		json_t *strs[MAX_KEYS_PER_REQ];
		size_t n;
		bool paths = kp || kps;

		if (!!kp + !!kps + !!kd + !!kds != 1)
			return anole_error_code(EINVAL, "%s: sigstoreSigned needs exactly one of keyPath, "
						"keyPaths, keyData, keyDatas", what);
		ret = strings_of(paths ? kp : kd, paths ? kps : kds, what,
				 paths ? "keyPath" : "keyData", strs, &n);
		if (ret < 0)
			return ret;
		if (paths)
			r->key_paths = xcalloc(n, sizeof(*r->key_paths));
		else
			r->keys = xcalloc(n, sizeof(*r->keys));
		for (size_t i = 0; i < n; i++) {
			const char *str = json_string_value(strs[i]);

			if (paths) {
				r->key_paths[r->nkey_paths++] = xstrdup(str);
			} else {
				uint8_t *pem = NULL;
				long len = anole_base64_decode(str, &pem);
				struct anole_sign_key *key = NULL;

				if (len < 0) {
					free(pem);
					return anole_error_code(EINVAL, "%s: keyData is not base64", what);
				}
				ret = anole_sign_key_from_pem(pem, (size_t)len, false, "keyData", &key);
				free(pem);
				if (ret < 0)
					return ret;
				r->keys[r->nkeys++] = key;
			}
		}
	}
	return parse_identity(json_object_get(j, "signedIdentity"), what, r);
}

static int parse_reqs(json_t *arr, const char *what, struct policy_req **out, size_t *n)
{
	size_t i;
	int ret;

	*out = NULL;
	*n = 0;
	if (!json_is_array(arr) || !json_array_size(arr))
		return anole_error_code(EINVAL, "%s is not a non-empty array of requirements", what);
	if (json_array_size(arr) > 64)
		return anole_error_code(EINVAL, "%s: more than 64 requirements", what);
	*out = xcalloc(json_array_size(arr), sizeof(**out));
	for (i = 0; i < json_array_size(arr); i++) {
		ret = parse_req(json_array_get(arr, i), what, &(*out)[i]);
		*n = i + 1;
		if (ret)
			return ret;
	}
	return 0;
}

int anole_policy_parse(const char *text, size_t len, const char *what, struct anole_policy **out)
{
	struct anole_policy *p;
	json_error_t jerr;
	json_t *doc, *tr, *scopes, *reqs;
	const char *tname, *sname, *k;
	json_t *v;
	int ret = 0;

	*out = NULL;
	if (len > ANOLE_POLICY_MAX_BYTES)
		return anole_error_code(EINVAL, "%s: %zu bytes, more than a policy can be", what, len);
	doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return anole_error_code(EINVAL, "%s: invalid JSON: %s (line %d)", what, jerr.text,
					jerr.line);
	p = xcalloc(1, sizeof(*p));
	p->what = xstrdup(what);
	if (!json_is_object(doc)) {
		ret = anole_error_code(EINVAL, "%s: the policy is not a JSON object", what);
		goto out;
	}
	json_object_foreach(doc, k, v)
		if (strcmp(k, "default") && strcmp(k, "transports")) {
			ret = anole_error_code(EINVAL, "%s: unknown field \"%.64s\"", what, k);
			goto out;
		}
	{
		struct strbuf w = STRBUF_INIT;

		strbuf_addf(&w, "%s: default", what);
		ret = parse_reqs(json_object_get(doc, "default"), w.buf, &p->def, &p->ndef);
		strbuf_release(&w);
		if (ret)
			goto out;
	}
	tr = json_object_get(doc, "transports");
	if (tr && !json_is_object(tr)) {
		ret = anole_error_code(EINVAL, "%s: transports is not an object", what);
		goto out;
	}
	json_object_foreach(tr, tname, scopes) {
		if (!json_is_object(scopes)) {
			ret = anole_error_code(EINVAL, "%s: transports.%.64s is not an object", what, tname);
			goto out;
		}
		json_object_foreach(scopes, sname, reqs) {
			struct strbuf w = STRBUF_INIT;
			struct policy_scope *s;

			if (p->nscopes >= 4096) {
				ret = anole_error_code(EINVAL, "%s: more than 4096 scopes", what);
				goto out;
			}
			xgrow(&p->scopes, &p->alloc, p->nscopes + 1, sizeof(*p->scopes));
			s = &p->scopes[p->nscopes++];
			memset(s, 0, sizeof(*s));
			s->transport = xstrdup(tname);
			s->scope = xstrdup(sname);
			strbuf_addf(&w, "%s: transports.%.64s[\"%.200s\"]", what, tname, sname);
			ret = parse_reqs(reqs, w.buf, &s->reqs, &s->nreqs);
			strbuf_release(&w);
			if (ret)
				goto out;
		}
	}
out:
	json_decref(doc);
	if (ret)
		anole_policy_free(p);
	else
		*out = p;
	return ret;
}

int anole_policy_load(const char *path, struct anole_policy **out)
{
	struct strbuf sb = STRBUF_INIT;
	int ret;

	*out = NULL;
	if (!path) {
		if (access(ANOLE_POLICY_DEFAULT_FILE, F_OK) < 0)
			return 0;
		path = ANOLE_POLICY_DEFAULT_FILE;
	}
	ret = anole_read_file(path, ANOLE_POLICY_MAX_BYTES, &sb);
	if (ret == -EFBIG)
		ret = anole_error_code(EINVAL, "%s: more than %u bytes, more than a policy can be",
				       path, ANOLE_POLICY_MAX_BYTES);
	else if (ret)
		ret = anole_error(-ret, "cannot read policy %s", path);
	else
		ret = anole_policy_parse(sb.buf ? sb.buf : "", sb.len, path, out);
	strbuf_release(&sb);
	return ret;
}

/* ------------------------------------------------------------ evaluation */

static const struct policy_scope *find_scope(const struct anole_policy *p, const char *transport,
					     const char *scope)
{
	for (size_t i = 0; i < p->nscopes; i++)
		if (!strcmp(p->scopes[i].transport, transport) && !strcmp(p->scopes[i].scope, scope))
			return &p->scopes[i];
	return NULL;
}

/* The scopes of a reference, most specific first ("" last). */
static void scopes_of(const struct anole_ref *ref, char ***out, size_t *n, const char **transport)
{
	size_t alloc = 0;
	char **v = NULL;
	char *s;

	*n = 0;
#define ADD(str) do { xgrow(&v, &alloc, *n + 1, sizeof(*v)); v[(*n)++] = (str); } while (0)
	switch (ref->transport) {
	case ANOLE_REF_DOCKER: {
		struct strbuf b = STRBUF_INIT;
		const char *dot;

		*transport = "docker";
		strbuf_addf(&b, "%s/%s", ref->registry, ref->repository);
		if (ref->digest)
			strbuf_addf(&b, "@%s", ref->digest);
		else
			strbuf_addf(&b, ":%s", ref->tag ? ref->tag : "latest");
		ADD(strbuf_detach(&b, NULL));
		strbuf_addf(&b, "%s/%s", ref->registry, ref->repository);
		s = strbuf_detach(&b, NULL);
		ADD(s);
		for (const char *cur = s, *slash = strrchr(cur, '/'); slash; ) {
			char *up = xstrndup(cur, (size_t)(slash - cur));

			ADD(up);
			cur = up;
			slash = strrchr(cur, '/');
		}
		/* *.example.com for a registry host of example.com's */
		for (dot = strchr(ref->registry, '.'); dot; dot = strchr(dot + 1, '.')) {
			struct strbuf w = STRBUF_INIT;

			strbuf_addf(&w, "*%s", dot);
			ADD(strbuf_detach(&w, NULL));
		}
		break;
	}
	case ANOLE_REF_OCI:
	case ANOLE_REF_PATH:
	default: {
		char real[PATH_MAX];
		const char *base = ref->path;

		*transport = ref->transport == ANOLE_REF_OCI ? "oci" :
			     ref->transport == ANOLE_REF_PATH ? "file" :
			     ref->transport == ANOLE_REF_OCI_ARCHIVE ? "oci-archive" : "docker-archive";
		if (base && realpath(base, real))
			base = real;
		if (!base)
			break;
		if (ref->transport == ANOLE_REF_OCI && ref->tag) {
			struct strbuf w = STRBUF_INIT;

			strbuf_addf(&w, "%s:%s", base, ref->tag);
			ADD(strbuf_detach(&w, NULL));
		}
		s = xstrdup(base);
		ADD(s);
		for (const char *cur = s, *slash = strrchr(cur, '/'); slash && slash != cur; ) {
			char *up = xstrndup(cur, (size_t)(slash - cur));

			ADD(up);
			cur = up;
			slash = strrchr(cur, '/');
		}
		if (s[0] == '/' && s[1])
			ADD(xstrdup("/"));
		break;
	}
	}
	ADD(xstrdup(""));
#undef ADD
	*out = v;
}

static int check_sigstore(const struct policy_req *r, const char *ref_text,
			  const struct anole_blobstore_opts *sopts, char **pinned)
{
	struct anole_sign_key **keys = xcalloc(r->nkeys + r->nkey_paths + 1, sizeof(*keys));
	struct anole_sig_result res;
	size_t n = 0;
	int ret = 0;

	for (size_t i = 0; i < r->nkeys; i++)
		keys[n++] = r->keys[i];
	for (size_t i = 0; i < r->nkey_paths && !ret; i++) {
		ret = anole_sign_key_load(r->key_paths[i], false, &keys[n]);
		if (!ret)
			n++;
	}
	if (!ret)
		ret = anole_image_verify(ref_text, (const struct anole_sign_key *const *)keys, n,
					 r->identity, sopts, &res);
	if (!ret) {
		if (*pinned && strcmp(*pinned, res.manifest_digest))
			/* two requirements saw different manifests: the image
			 * changed in between, trust neither */
			ret = anole_error_code(EKEYREJECTED, "%s changed while it was verified "
					       "(%s, then %s)", ref_text, *pinned, res.manifest_digest);
		else if (!*pinned)
			*pinned = xstrdup(res.manifest_digest);
		anole_sig_result_free(&res);
	}
	for (size_t i = r->nkeys; i < n; i++)
		anole_sign_key_free(keys[i]);
	free(keys);
	return ret;
}

int anole_policy_check(const struct anole_policy *p, const char *ref_text,
		       const struct anole_blobstore_opts *sopts, char **pinned)
{
	const struct policy_req *reqs = NULL;
	const char *transport = "", *scope = NULL;
	struct anole_ref ref;
	char **scopes = NULL;
	size_t nscopes = 0, nreqs = 0;
	int ret;

	*pinned = NULL;
	if (!p)
		return 0;
	ret = anole_ref_parse(ref_text, ANOLE_REF_PATH, &ref);
	if (ret) {
		anole_ref_free(&ref);
		return ret;
	}
	scopes_of(&ref, &scopes, &nscopes, &transport);
	for (size_t i = 0; i < nscopes && !reqs; i++) {
		const struct policy_scope *s = find_scope(p, transport, scopes[i]);

		if (s) {
			reqs = s->reqs;
			nreqs = s->nreqs;
			scope = s->scope;
		}
	}
	if (!reqs) {
		reqs = p->def;
		nreqs = p->ndef;
	}
	for (size_t i = 0; i < nreqs && !ret; i++) {
		switch (reqs[i].type) {
		case REQ_ACCEPT:
			break;
		case REQ_REJECT:
			if (scope)
				ret = anole_error_code(EACCES, "%s: policy %s rejects it (transports.%s[\"%s\"])",
						       ref_text, p->what, transport, scope);
			else
				ret = anole_error_code(EACCES, "%s: policy %s rejects it (its default)",
						       ref_text, p->what);
			break;
		case REQ_UNSUPPORTED:
			ret = anole_error_code(EKEYREJECTED, "%s: refused: policy %s requires %s, which "
					       "anole cannot check (it checks sigstoreSigned with keys)",
					       ref_text, p->what, reqs[i].unsupported);
			break;
		case REQ_SIGSTORE:
			ret = check_sigstore(&reqs[i], ref_text, sopts, pinned);
			if (ret)
				anole_error_code(EKEYREJECTED, "%s: refused: policy %s requires a signature "
						 "(sigstoreSigned) and none verifies", ref_text, p->what);
			break;
		}
	}
	if (ret) {
		free(*pinned);
		*pinned = NULL;
	}
	for (size_t i = 0; i < nscopes; i++)
		free(scopes[i]);
	free(scopes);
	anole_ref_free(&ref);
	return ret;
}

int anole_policy_pin(const struct anole_policy *p, const char *ref_text, struct anole_ref *ref,
		     const struct anole_blobstore_opts *sopts, char **pinned)
{
	int ret = anole_policy_check(p, ref_text, sopts, pinned);

	if (!ret && *pinned && ref->transport == ANOLE_REF_DOCKER) {
		free(ref->digest);
		ref->digest = xstrdup(*pinned);
	}
	return ret;
}
