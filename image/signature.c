// SPDX-License-Identifier: Apache-2.0
/*
 * Image signatures in the sigstore/cosign layout (anole/signature.h).
 * Three places hold them, behind one small interface: a registry
 * repository (the sha256-<hex>.sig tag), an OCI layout (the same tag in
 * index.json) and, for a plain image file, IMAGE.sig beside it.
 *
 * Nothing read back is trusted before its signature verified: blobs are
 * checked against their digests, payloads parsed strictly and bounded, and
 * the payload's manifest digest must be the digest the image has now.
 */
#include "anole/signature.h"
#include "anole/blobstore.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/http.h"
#include "anole/oci.h"
#include "anole/ref.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SIG_MANIFEST (4u << 20)
#define MAX_SIG_FILE     (1u << 20)

/* ------------------------------------------------------------ payloads */

void anole_sig_payload_make(const char *manifest_digest, const char *docker_reference,
			    struct strbuf *out)
{
	/* keys in the order Go's encoding/json writes them, as cosign does */
	strbuf_addstr(out, "{\"critical\":{\"identity\":{\"docker-reference\":");
	strbuf_add_json_string(out, docker_reference, strlen(docker_reference));
	strbuf_addstr(out, "},\"image\":{\"docker-manifest-digest\":");
	strbuf_add_json_string(out, manifest_digest, strlen(manifest_digest));
	strbuf_addstr(out, "},\"type\":\"" ANOLE_SIG_TYPE "\"},\"optional\":{\"creator\":\"anole\"}}");
}

/* o is an object with exactly the n keys given (containers/image's
 * ParanoidUnmarshalJSONObjectExactFields). */
static int exact_fields(json_t *o, const char *what, const char *const *keys, size_t n)
{
	if (!json_is_object(o))
		return anole_error_code(EBADMSG, "signature payload: %s is not an object", what);
	for (size_t i = 0; i < n; i++)
		if (!json_object_get(o, keys[i]))
			return anole_error_code(EBADMSG, "signature payload: %s has no \"%s\"",
						what, keys[i]);
	if (json_object_size(o) != n) {
		const char *k;
		json_t *v;

		json_object_foreach(o, k, v) {
			size_t i;

			for (i = 0; i < n && strcmp(k, keys[i]); i++)
				;
			if (i == n)
				return anole_error_code(EBADMSG, "signature payload: %s has an unknown "
							"field \"%.64s\"", what, k);
		}
	}
	return 0;
}

/* A string without NUL bytes (JSON may carry \u0000). */
static const char *plain_string(json_t *s)
{
	const char *v = json_string_value(s);

	return v && strlen(v) == json_string_length(s) ? v : NULL;
}

int anole_sig_payload_parse(const void *buf, size_t len, struct anole_sig_payload *out)
{
	static const char *const top[] = { "critical", "optional" };
	static const char *const crit[] = { "type", "image", "identity" };
	static const char *const img[] = { "docker-manifest-digest" };
	static const char *const id[] = { "docker-reference" };
	json_error_t jerr;
	json_t *doc, *c, *opt;
	const char *type, *dg, *ref;
	int ret;

	memset(out, 0, sizeof(*out));
	if (len > ANOLE_SIG_MAX_PAYLOAD)
		return anole_error_code(EBADMSG, "signature payload: %zu bytes, more than %u", len,
					ANOLE_SIG_MAX_PAYLOAD);
	doc = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc)
		return anole_error_code(EBADMSG, "signature payload: invalid JSON: %s", jerr.text);
	ret = exact_fields(doc, "the document", top, 2);
	c = json_object_get(doc, "critical");
	opt = json_object_get(doc, "optional");
	if (!ret && !json_is_null(opt) && !json_is_object(opt))
		ret = anole_error_code(EBADMSG, "signature payload: optional is neither an object "
				       "nor null");
	if (!ret)
		ret = exact_fields(c, "critical", crit, 3);
	if (!ret)
		ret = exact_fields(json_object_get(c, "image"), "critical.image", img, 1);
	if (!ret)
		ret = exact_fields(json_object_get(c, "identity"), "critical.identity", id, 1);
	if (ret)
		goto out;
	type = plain_string(json_object_get(c, "type"));
	dg = plain_string(json_object_get(json_object_get(c, "image"), "docker-manifest-digest"));
	ref = plain_string(json_object_get(json_object_get(c, "identity"), "docker-reference"));
	if (!type || strcmp(type, ANOLE_SIG_TYPE))
		ret = anole_error_code(EBADMSG, "signature payload: critical.type is not \"%s\"",
				       ANOLE_SIG_TYPE);
	else if (!dg || anole_digest_ref_check(dg))
		ret = anole_error_code(EBADMSG, "signature payload: docker-manifest-digest is not "
				       "a sha256:<64 hex> digest");
	else if (!ref || !*ref || strlen(ref) > 4096)
		ret = anole_error_code(EBADMSG, "signature payload: docker-reference is not a "
				       "non-empty string");
	if (!ret) {
		out->manifest_digest = xstrdup(dg);
		out->docker_reference = xstrdup(ref);
	}
out:
	json_decref(doc);
	return ret;
}

void anole_sig_payload_free(struct anole_sig_payload *p)
{
	free(p->manifest_digest);
	free(p->docker_reference);
	memset(p, 0, sizeof(*p));
}

void anole_sig_result_free(struct anole_sig_result *r)
{
	free(r->manifest_digest);
	free(r->docker_reference);
	free(r->where);
	memset(r, 0, sizeof(*r));
}

static void sha256_ref(const void *data, size_t len, char out[72])
{
	uint8_t d[32];

	anole_digest(ANOLE_DIGEST_SHA256, data, len, d);
	memcpy(out, "sha256:", 7);
	anole_hex(d, 32, out + 7);
}

int anole_file_check_digest(const char *path, const char *digest)
{
	uint8_t d[32];
	char hex[65];
	struct stat st;
	int fd, ret;

	if (anole_digest_ref_check(digest))
		return anole_error_code(EINVAL, "'%s' is not a sha256 digest", digest);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return anole_error(errno, "cannot open %s", path);
	ret = fstat(fd, &st) < 0 ? anole_error(errno, "cannot stat %s", path) : 0;
	if (!ret)
		ret = anole_digest_file(fd, (uint64_t)st.st_size, ANOLE_DIGEST_SHA256, d);
	close(fd);
	if (ret)
		return ret < 0 ? ret : -EIO;
	anole_hex(d, 32, hex);
	if (strcmp(hex, digest + 7))
		return anole_error_code(EBADMSG, "%s is sha256:%s, not %s as the signed manifest "
					"says: refused", path, hex, digest);
	return 0;
}

/* ------------------------------------------------------------ where signatures live */

/*
 * A registry repository or a layout: the manifest under a tag, blobs by
 * digest. get_manifest returns -ENOENT (silently) when the tag is absent.
 */
struct sig_store {
	struct anole_blobstore *bs;   /* registry */
	const char *dir;              /* layout */
};

static int layout_find_tag(const char *dir, const char *tag, struct oci_descriptor *d)
{
	struct strbuf path = STRBUF_INIT, buf = STRBUF_INIT;
	json_t *index = NULL, *m;
	size_t i;
	int fd, ret = -ENOENT;

	strbuf_addf(&path, "%s/index.json", dir);
	fd = open(path.buf, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = anole_error(errno, "%s is not an OCI image layout (index.json)", dir);
		goto out;
	}
	for (;;) {
		char tmp[16384];
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n <= 0 || buf.len > MAX_SIG_MANIFEST * 4)
			break;
		strbuf_add(&buf, tmp, (size_t)n);
	}
	close(fd);
	index = json_loadb(buf.buf, buf.len, 0, NULL);
	if (!index) {
		ret = anole_error_code(EBADMSG, "%s: invalid JSON", path.buf);
		goto out;
	}
	json_array_foreach(json_object_get(index, "manifests"), i, m) {
		const char *name = json_string_value(json_object_get(json_object_get(m, "annotations"),
								     "org.opencontainers.image.ref.name"));
		const char *mt = json_string_value(json_object_get(m, "mediaType"));
		const char *dg = json_string_value(json_object_get(m, "digest"));
		json_t *size = json_object_get(m, "size");

		if (!name || strcmp(name, tag))
			continue;
		if (!mt || anole_digest_ref_check(dg) || !json_is_integer(size) ||
		    json_integer_value(size) < 0 || json_integer_value(size) > MAX_SIG_MANIFEST) {
			ret = anole_error_code(EBADMSG, "%s: the entry of %s is malformed", path.buf,
					       tag);
			goto out;
		}
		d->media_type = xstrdup(mt);
		d->digest = xstrdup(dg);
		d->size = (uint64_t)json_integer_value(size);
		ret = 0;
	}
out:
	json_decref(index);
	strbuf_release(&path);
	strbuf_release(&buf);
	return ret;
}

static int store_get_manifest(struct sig_store *s, const char *tag, struct strbuf *out)
{
	struct oci_descriptor d = { 0 };
	int ret;

	if (s->bs)
		return anole_blobstore_find_manifest(s->bs, tag, out, NULL);
	ret = layout_find_tag(s->dir, tag, &d);
	if (!ret)
		ret = oci_read_blob(s->dir, &d, out);
	oci_descriptor_free(&d);
	return ret;
}

/* A small blob, checked against its digest. */
static int store_get_blob(struct sig_store *s, const char *digest, uint64_t size, uint64_t max,
			  struct strbuf *out)
{
	char got[72];
	int ret;

	if (anole_digest_ref_check(digest))
		return anole_error_code(EBADMSG, "signature manifest: invalid blob digest");
	if (size > max)
		return anole_error_code(EBADMSG, "signature blob %s: %llu bytes, more than %llu",
					digest, (unsigned long long)size, (unsigned long long)max);
	if (!s->bs) {
		struct oci_descriptor d = { .media_type = "", .digest = (char *)digest, .size = size };

		return oci_read_blob(s->dir, &d, out);
	}
	strbuf_grow(out, size);
	ret = anole_blobstore_read(s->bs, digest, 0, out->buf, size);
	if (ret)
		return ret;
	strbuf_setlen(out, size);
	sha256_ref(out->buf, out->len, got);
	if (strcmp(got, digest))
		return anole_error_code(EBADMSG, "signature blob %s does not match its digest", digest);
	return 0;
}

static int store_put_blob(struct sig_store *s, const char *media_type, const struct strbuf *data,
			  char digest[72])
{
	struct oci_descriptor d = { 0 };
	char *tmpdir = NULL, *file;
	int fd, ret;

	sha256_ref(data->buf, data->len, digest);
	if (!s->bs) {
		ret = oci_put_blob(s->dir, media_type, data->buf, data->len, &d);
		oci_descriptor_free(&d);
		return ret;
	}
	/* the registry store uploads files */
	ret = anole_temp_dir("anole-sign", &tmpdir);
	if (ret)
		return ret;
	file = xmalloc(strlen(tmpdir) + 8);
	sprintf(file, "%s/blob", tmpdir);
	fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ret = fd < 0 ? anole_error(errno, "cannot create %s", file) :
	      write_full(fd, data->buf, data->len);
	if (fd >= 0)
		close(fd);
	if (!ret) {
		ret = anole_blobstore_put(s->bs, digest, file);
		if (ret > 0)
			ret = 0;
	}
	unlink(file);
	rmdir(tmpdir);
	free(file);
	free(tmpdir);
	return ret;
}

static int store_put_manifest(struct sig_store *s, const char *tag, const struct strbuf *m)
{
	struct oci_descriptor d = { 0 };
	int ret;

	if (s->bs)
		return anole_blobstore_put_manifest(s->bs, tag, OCI_MT_MANIFEST, m->buf, m->len);
	ret = oci_put_blob(s->dir, OCI_MT_MANIFEST, m->buf, m->len, &d);
	if (!ret)
		ret = oci_layout_set_tag(s->dir, tag, &d);
	oci_descriptor_free(&d);
	return ret;
}

/* ------------------------------------------------------------ the image's identity */

struct target {
	struct anole_ref ref;
	struct sig_store store;
	char digest[72];            /* of the manifest signed */
	char *identity;             /* default docker-reference */
	char *text;                 /* the reference, for messages */
};

static int target_open(struct target *t, const char *ref_text,
		       const struct anole_blobstore_opts *sopts)
{
	struct strbuf body = STRBUF_INIT, id = STRBUF_INIT;
	struct oci_image img;
	char *spec;
	int ret;

	memset(t, 0, sizeof(*t));
	ret = anole_ref_parse(ref_text, ANOLE_REF_PATH, &t->ref);
	if (ret)
		return ret;
	t->text = anole_ref_format(&t->ref);
	switch (t->ref.transport) {
	case ANOLE_REF_DOCKER:
		spec = anole_ref_store(&t->ref);
		ret = anole_blobstore_open(&t->store.bs, spec, sopts);
		free(spec);
		if (!ret)
			ret = anole_blobstore_get_manifest(t->store.bs, anole_ref_reference(&t->ref),
							   &body, NULL);
		if (ret)
			break;
		/* the digest of the bytes the registry serves for the tag: what
		 * containers/image compares the payload's digest with */
		sha256_ref(body.buf, body.len, t->digest);
		strbuf_addf(&id, "%s/%s", t->ref.registry, t->ref.repository);
		if (t->ref.tag || !t->ref.digest)
			strbuf_addf(&id, ":%s", t->ref.tag ? t->ref.tag : "latest");
		t->identity = strbuf_detach(&id, NULL);
		break;
	case ANOLE_REF_OCI:
		ret = oci_open(&img, t->ref.path, t->ref.tag, NULL);
		if (ret)
			break;
		snprintf(t->digest, sizeof(t->digest), "%s", img.manifest.digest);
		oci_close(&img);
		t->store.dir = t->ref.path;
		strbuf_addf(&id, "%s", t->ref.tag ? t->ref.tag : "latest");
		t->identity = strbuf_detach(&id, NULL);
		break;
	case ANOLE_REF_PATH: {
		int fd = open(t->ref.path, O_RDONLY | O_CLOEXEC);
		struct stat st;
		uint8_t d[32];

		if (fd < 0) {
			ret = anole_error(errno, "cannot open %s", t->ref.path);
			break;
		}
		ret = fstat(fd, &st) < 0 ? anole_error(errno, "cannot stat %s", t->ref.path) :
		      !S_ISREG(st.st_mode) ? anole_error_code(EINVAL, "%s is not a file", t->ref.path) :
		      anole_digest_file(fd, (uint64_t)st.st_size, ANOLE_DIGEST_SHA256, d);
		close(fd);
		if (ret)
			break;
		memcpy(t->digest, "sha256:", 7);
		anole_hex(d, 32, t->digest + 7);
		{
			const char *base = strrchr(t->ref.path, '/');

			t->identity = xstrdup(base ? base + 1 : t->ref.path);
		}
		break;
	}
	default:
		ret = anole_error_code(EINVAL, "%s: signatures are for docker://, oci: references "
				       "and image files (an archive: import it first)", t->text);
	}
	strbuf_release(&body);
	return ret;
}

static void target_close(struct target *t)
{
	anole_blobstore_close(t->store.bs);
	anole_ref_free(&t->ref);
	free(t->identity);
	free(t->text);
	memset(t, 0, sizeof(*t));
}

static char *sidecar_path(const char *image)
{
	struct strbuf p = STRBUF_INIT;

	strbuf_addf(&p, "%s.sig", image);
	return strbuf_detach(&p, NULL);
}

/* ------------------------------------------------------------ signing */

/* The config of a signature manifest: an empty image whose one "layer" is
 * each payload (the shape cosign writes; nothing reads it). */
static void sig_config(json_t *layers, struct strbuf *out)
{
	json_t *cfg = json_pack("{s:s, s:{}, s:s, s:[{s:s}], s:s, s:{s:s, s:[]}}",
				"architecture", "", "config", "created", "0001-01-01T00:00:00Z",
				"history", "created", "0001-01-01T00:00:00Z", "os", "",
				"rootfs", "type", "layers", "diff_ids");
	json_t *ids = json_object_get(json_object_get(cfg, "rootfs"), "diff_ids"), *l;
	size_t i;
	char *text;

	json_array_foreach(layers, i, l)
		json_array_append(ids, json_object_get(l, "digest"));
	text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	strbuf_addstr(out, text);
	free(text);
	json_decref(cfg);
}

static int sign_in_store(struct target *t, const struct strbuf *payload, const struct strbuf *b64,
			 struct anole_sig_result *res)
{
	struct strbuf old = STRBUF_INIT, cfg = STRBUF_INIT, man = STRBUF_INIT;
	char *tag = anole_sig_tag(t->digest), pdigest[72], cdigest[72];
	json_t *layers = json_array(), *doc = NULL, *l;
	size_t i;
	char *text;
	int ret;

	/* keep the signatures already there (of other keys, or earlier) */
	ret = store_get_manifest(&t->store, tag, &old);
	if (!ret) {
		doc = json_loadb(old.buf, old.len, 0, NULL);
		json_array_foreach(json_object_get(doc, "layers"), i, l)
			if (json_array_size(layers) < ANOLE_SIG_MAX_LAYERS - 1)
				json_array_append(layers, l);
	} else if (ret != -ENOENT) {
		goto out;
	}
	ret = store_put_blob(&t->store, ANOLE_SIG_PAYLOAD_MT, payload, pdigest);
	if (ret)
		goto out;
	json_array_append_new(layers, json_pack("{s:s, s:I, s:s, s:{s:s}}",
						"mediaType", ANOLE_SIG_PAYLOAD_MT,
						"size", (json_int_t)payload->len,
						"digest", pdigest,
						"annotations", ANOLE_SIG_ANNOTATION, b64->buf));
	sig_config(layers, &cfg);
	ret = store_put_blob(&t->store, "application/vnd.oci.image.config.v1+json", &cfg, cdigest);
	if (ret)
		goto out;
	{
		json_t *m = json_pack("{s:i, s:s, s:{s:s, s:I, s:s}, s:O}",
				      "schemaVersion", 2, "mediaType", OCI_MT_MANIFEST,
				      "config", "mediaType", "application/vnd.oci.image.config.v1+json",
				      "size", (json_int_t)cfg.len, "digest", cdigest,
				      "layers", layers);

		text = json_dumps(m, JSON_COMPACT);
		json_decref(m);
		strbuf_addstr(&man, text);
		free(text);
	}
	ret = store_put_manifest(&t->store, tag, &man);
	if (!ret) {
		res->where = xstrdup(tag);
		res->signatures = (unsigned)json_array_size(layers);
	}
out:
	json_decref(doc);
	json_decref(layers);
	strbuf_release(&old);
	strbuf_release(&cfg);
	strbuf_release(&man);
	free(tag);
	return ret;
}

/* IMAGE.sig: {"signatures":[{"algorithm", "payload" (base64), "signature"}]} */
static int sign_file(struct target *t, const struct strbuf *payload, const struct strbuf *b64,
		     enum anole_sign_alg alg, struct anole_sig_result *res)
{
	char *path = sidecar_path(t->ref.path), *text, *p64;
	json_t *doc = NULL, *sigs;
	struct anole_output out;
	int ret;

	doc = json_load_file(path, 0, NULL);
	if (!doc || !json_is_array(json_object_get(doc, "signatures"))) {
		json_decref(doc);
		doc = json_pack("{s:[]}", "signatures");
	}
	sigs = json_object_get(doc, "signatures");
	while (json_array_size(sigs) >= ANOLE_SIG_MAX_LAYERS)
		json_array_remove(sigs, 0);
	p64 = anole_base64_encode(payload->buf, payload->len);
	json_array_append_new(sigs, json_pack("{s:s, s:s, s:s}", "algorithm",
					      anole_sign_alg_name(alg), "payload", p64,
					      "signature", b64->buf));
	free(p64);
	text = json_dumps(doc, JSON_INDENT(1));
	ret = anole_output_open(&out, path);
	if (!ret) {
		ret = write_full(out.fd, text, strlen(text));
		if (!ret)
			ret = write_full(out.fd, "\n", 1);
		if (ret) {
			ret = anole_error(-ret, "cannot write %s", path);
			anole_output_abort(&out);
		} else {
			ret = anole_output_commit(&out);
		}
	}
	if (!ret) {
		res->where = xstrdup(path);
		res->signatures = (unsigned)json_array_size(sigs);
	}
	free(text);
	json_decref(doc);
	free(path);
	return ret;
}

int anole_image_sign(const char *ref_text, const struct anole_sign_key *key,
		     const char *identity, const struct anole_blobstore_opts *sopts,
		     struct anole_sig_result *res)
{
	struct strbuf payload = STRBUF_INIT, sig = STRBUF_INIT, b64 = STRBUF_INIT;
	struct target t;
	char *enc;
	int ret;

	memset(res, 0, sizeof(*res));
	if (!anole_sign_key_is_private(key))
		return anole_error_code(EINVAL, "signing needs a private key (--key), not a public one");
	ret = target_open(&t, ref_text, sopts);
	if (ret)
		goto out;
	anole_sig_payload_make(t.digest, identity ? identity : t.identity, &payload);
	ret = anole_sign(key, payload.buf, payload.len, &sig);
	if (ret)
		goto out;
	enc = anole_base64_encode(sig.buf, sig.len);
	strbuf_addstr(&b64, enc);
	free(enc);
	if (t.ref.transport == ANOLE_REF_PATH)
		ret = sign_file(&t, &payload, &b64, anole_sign_key_alg(key), res);
	else
		ret = sign_in_store(&t, &payload, &b64, res);
	if (!ret) {
		res->manifest_digest = xstrdup(t.digest);
		res->docker_reference = xstrdup(identity ? identity : t.identity);
		res->alg = anole_sign_key_alg(key);
	}
out:
	target_close(&t);
	strbuf_release(&payload);
	strbuf_release(&sig);
	strbuf_release(&b64);
	return ret;
}

/* ------------------------------------------------------------ verifying */

/*
 * containers/image's default signedIdentity, matchRepoDigestOrExact: an
 * image named by tag needs that exact repo:tag; one named by digest needs
 * the same repository.
 */
static bool identity_matches(const char *signed_ref, const char *want, bool by_digest)
{
	size_t n;

	if (!by_digest)
		return !strcmp(signed_ref, want);
	n = strcspn(signed_ref, "@");
	/* the repository: without a tag (a ':' after the last '/') */
	{
		const char *slash = memrchr(signed_ref, '/', n), *colon;

		colon = memchr(slash ? slash : signed_ref, ':', n - (size_t)((slash ? slash : signed_ref) - signed_ref));
		if (colon)
			n = (size_t)(colon - signed_ref);
	}
	return strlen(want) == n && !memcmp(signed_ref, want, n);
}

struct candidate {
	const char *payload;
	size_t payload_len;
	const char *sig_b64;
};

/* One signature: its bytes verify with one of the keys, its payload parses
 * and names our digest (and identity). Returns 0, or -EKEYREJECTED with
 * the reason in why. */
static int check_candidate(const struct candidate *c, const struct anole_sign_key *const *keys,
			   size_t nkeys, const struct target *t, const char *identity,
			   struct anole_sig_result *res, struct strbuf *why)
{
	struct anole_sig_payload p;
	uint8_t *sig = NULL;
	long sig_len;
	size_t k;

	sig_len = c->sig_b64 ? anole_base64_decode(c->sig_b64, &sig) : -EINVAL;
	if (sig_len <= 0) {
		free(sig);
		strbuf_addstr(why, "a signature that is not base64");
		return -EKEYREJECTED;
	}
	for (k = 0; k < nkeys; k++)
		if (anole_verify_quiet(keys[k], c->payload, c->payload_len, sig, (size_t)sig_len) == 0)
			break;
	free(sig);
	if (k == nkeys) {
		strbuf_addstr(why, "a signature that does not verify with the key");
		return -EKEYREJECTED;
	}
	if (anole_sig_payload_parse(c->payload, c->payload_len, &p)) {
		strbuf_addstr(why, "a signed payload that is malformed");
		return -EKEYREJECTED;
	}
	if (strcmp(p.manifest_digest, t->digest)) {
		strbuf_addf(why, "a valid signature of another manifest (%s, the image is %s: "
			    "tampered or replaced)", p.manifest_digest, t->digest);
		anole_sig_payload_free(&p);
		return -EKEYREJECTED;
	}
	if (!identity && t->ref.transport == ANOLE_REF_DOCKER)
		identity = t->identity;
	if (identity && !identity_matches(p.docker_reference, identity, t->ref.digest && !t->ref.tag)) {
		strbuf_addf(why, "a valid signature for another image name (%s, wanted %s)",
			    p.docker_reference, identity);
		anole_sig_payload_free(&p);
		return -EKEYREJECTED;
	}
	res->manifest_digest = xstrdup(t->digest);
	res->docker_reference = p.docker_reference;
	p.docker_reference = NULL;
	res->alg = anole_sign_key_alg(keys[k]);
	res->key_index = (unsigned)k;
	anole_sig_payload_free(&p);
	return 0;
}

static int verify_in_store(struct target *t, const struct anole_sign_key *const *keys,
			   size_t nkeys, const char *identity, struct anole_sig_result *res,
			   struct strbuf *why)
{
	struct strbuf man = STRBUF_INIT, blob = STRBUF_INIT;
	char *tag = anole_sig_tag(t->digest);
	json_t *doc = NULL, *l;
	size_t i;
	int ret;

	ret = store_get_manifest(&t->store, tag, &man);
	if (ret == -ENOENT) {
		strbuf_addf(why, "no signature (no %s tag)", tag);
		ret = -EKEYREJECTED;
		goto out;
	}
	if (ret)
		goto out;
	doc = man.len <= MAX_SIG_MANIFEST ? json_loadb(man.buf, man.len, 0, NULL) : NULL;
	if (!doc || !json_is_array(json_object_get(doc, "layers"))) {
		strbuf_addf(why, "a %s that is no image manifest", tag);
		ret = -EKEYREJECTED;
		goto out;
	}
	ret = -EKEYREJECTED;
	json_array_foreach(json_object_get(doc, "layers"), i, l) {
		const char *mt = json_string_value(json_object_get(l, "mediaType"));
		const char *dg = json_string_value(json_object_get(l, "digest"));
		json_t *size = json_object_get(l, "size");
		struct candidate c;

		if (i >= ANOLE_SIG_MAX_LAYERS)
			break;
		res->signatures++;
		if (why->len)
			strbuf_addstr(why, "; ");
		if (!mt || strcmp(mt, ANOLE_SIG_PAYLOAD_MT) || !json_is_integer(size) ||
		    json_integer_value(size) < 0) {
			strbuf_addstr(why, "a layer that is no simple-signing payload");
			continue;
		}
		strbuf_reset(&blob);
		if (store_get_blob(&t->store, dg, (uint64_t)json_integer_value(size),
				   ANOLE_SIG_MAX_PAYLOAD, &blob)) {
			strbuf_addstr(why, "a payload that cannot be read intact");
			continue;
		}
		c.payload = blob.buf;
		c.payload_len = blob.len;
		c.sig_b64 = json_string_value(json_object_get(json_object_get(l, "annotations"),
							      ANOLE_SIG_ANNOTATION));
		ret = check_candidate(&c, keys, nkeys, t, identity, res, why);
		if (!ret)
			break;
	}
	if (ret && !res->signatures)
		strbuf_addf(why, "no signature (%s is empty)", tag);
	if (!ret)
		res->where = xstrdup(tag);
out:
	json_decref(doc);
	strbuf_release(&man);
	strbuf_release(&blob);
	free(tag);
	return ret;
}

static int verify_file(struct target *t, const struct anole_sign_key *const *keys, size_t nkeys,
		       struct anole_sig_result *res, struct strbuf *why)
{
	char *path = sidecar_path(t->ref.path);
	json_error_t jerr;
	json_t *doc, *s;
	size_t i;
	int ret = -EKEYREJECTED;
	struct stat st;

	if (stat(path, &st) < 0) {
		strbuf_addf(why, "no signature (no %s)", path);
		free(path);
		return -EKEYREJECTED;
	}
	doc = st.st_size <= MAX_SIG_FILE ? json_load_file(path, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!doc || !json_is_array(json_object_get(doc, "signatures"))) {
		strbuf_addf(why, "%s is not an anole signature file", path);
		json_decref(doc);
		free(path);
		return -EKEYREJECTED;
	}
	json_array_foreach(json_object_get(doc, "signatures"), i, s) {
		const char *p64 = json_string_value(json_object_get(s, "payload"));
		uint8_t *payload = NULL;
		long plen;
		struct candidate c;

		if (i >= ANOLE_SIG_MAX_LAYERS)
			break;
		/* only below the cap: the break above would leak it */
		plen = p64 ? anole_base64_decode(p64, &payload) : -EINVAL;
		res->signatures++;
		if (why->len)
			strbuf_addstr(why, "; ");
		if (plen < 0 || (size_t)plen > ANOLE_SIG_MAX_PAYLOAD) {
			free(payload);
			strbuf_addstr(why, "a payload that is not base64");
			continue;
		}
		c.payload = (const char *)payload;
		c.payload_len = (size_t)plen;
		c.sig_b64 = json_string_value(json_object_get(s, "signature"));
		ret = check_candidate(&c, keys, nkeys, t, NULL, res, why);
		free(payload);
		if (!ret)
			break;
	}
	if (ret && !res->signatures)
		strbuf_addf(why, "no signature (%s lists none)", path);
	if (!ret)
		res->where = xstrdup(path);
	json_decref(doc);
	free(path);
	return ret;
}

int anole_image_verify(const char *ref_text, const struct anole_sign_key *const *keys,
		       size_t nkeys, const char *identity,
		       const struct anole_blobstore_opts *sopts, struct anole_sig_result *res)
{
	struct strbuf why = STRBUF_INIT;
	struct target t;
	int ret;

	memset(res, 0, sizeof(*res));
	if (!nkeys)
		return anole_error_code(EINVAL, "verifying needs a public key");
	ret = target_open(&t, ref_text, sopts);
	if (!ret && t.ref.transport == ANOLE_REF_PATH)
		ret = verify_file(&t, keys, nkeys, res, &why);
	else if (!ret)
		ret = verify_in_store(&t, keys, nkeys, identity, res, &why);
	if (ret == -EKEYREJECTED)
		anole_error_code(EKEYREJECTED, "%s (manifest %s) is not signed by the key: %s",
				 t.text ? t.text : ref_text, t.digest, why.buf ? why.buf : "");
	if (ret)
		anole_sig_result_free(res);
	target_close(&t);
	strbuf_release(&why);
	return ret;
}
