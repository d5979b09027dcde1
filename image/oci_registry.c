// SPDX-License-Identifier: Apache-2.0
/*
 * OCI images in registries: copy an image between a registry and a local
 * OCI layout (pull: blobs are verified against their digests as they land;
 * push: blobs first — skipped when the registry has them —, the manifest
 * last, so a failed push never publishes a manifest naming missing blobs).
 */
#include "anole/blobstore.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/oci.h"
#include "anole/privdir.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int oci_parse_registry_ref(const char *ref, char **store, char **reference)
{
	const char *s = ref + strlen("docker://");
	const char *slash = strchr(s, '/'), *at = strchr(s, '@'), *colon;

	if (strncmp(ref, "docker://", 9) || !slash || !slash[1])
		return anole_error_code(EINVAL, "'%s' is not docker://HOST/REPO[:TAG|@DIGEST]", ref);
	if (at) {
		*store = xstrndup(ref, (size_t)(at - ref));
		*reference = xstrdup(at + 1);
		return 0;
	}
	colon = strrchr(slash, ':');
	if (colon) {
		*store = xstrndup(ref, (size_t)(colon - ref));
		*reference = xstrdup(colon + 1);
	} else {
		*store = xstrdup(ref);
		*reference = xstrdup("latest");
	}
	return 0;
}

/* Download a blob into the layout, verified against its digest (a mirror
 * whose bytes do not match is passed over: anole_blobstore_fetch). */
static int pull_blob(struct anole_blobstore *bs, const char *dir, const char *digest,
		     uint64_t size)
{
	char *path = oci_blob_path(dir, digest);
	struct anole_output out;
	struct stat st;
	int ret = 0;

	if (stat(path, &st) == 0 && (uint64_t)st.st_size == size) {
		free(path);              /* already here (checked when used) */
		return 0;
	}
	ret = anole_output_open(&out, path);
	if (ret) {
		free(path);
		return ret;
	}
	ret = anole_blobstore_fetch(bs, digest, size, out.fd);
	if (ret)
		anole_output_abort(&out);
	else
		ret = anole_output_commit(&out);
	free(path);
	return ret;
}

static int put_bytes(const char *dir, const char *digest, const void *data, size_t len)
{
	char *path = oci_blob_path(dir, digest);
	struct anole_output out;
	int ret = anole_output_open(&out, path);

	if (!ret && (ret = write_full(out.fd, data, len)))
		anole_output_abort(&out);
	else if (!ret)
		ret = anole_output_commit(&out);
	free(path);
	return ret;
}

static const char *media_type_of(json_t *doc, const char *header)
{
	const char *mt = json_string_value(json_object_get(doc, "mediaType"));

	return mt ? mt : header ? header : "application/vnd.oci.image.manifest.v1+json";
}

/* Fetch one manifest (by tag or digest) into the layout; returns its
 * descriptor fields and the parsed document. */
static int pull_manifest(struct anole_blobstore *bs, const char *dir, const char *reference,
			 char **digest_out, char **mt_out, uint64_t *size_out, json_t **doc_out)
{
	struct strbuf body = STRBUF_INIT;
	char *ct = NULL, hex[65];
	uint8_t d[32];
	json_t *doc;
	int ret = anole_blobstore_get_manifest(bs, reference, &body, &ct);

	if (ret)
		goto out;
	doc = json_loadb(body.buf, body.len, 0, NULL);
	if (!doc) {
		ret = anole_error_code(EBADMSG, "manifest %s is not JSON", reference);
		goto out;
	}
	anole_digest(ANOLE_DIGEST_SHA256, body.buf, body.len, d);
	anole_hex(d, 32, hex);
	*digest_out = xmalloc(72);
	snprintf(*digest_out, 72, "sha256:%s", hex);
	*mt_out = xstrdup(media_type_of(doc, ct));
	*size_out = body.len;
	*doc_out = doc;
	ret = put_bytes(dir, *digest_out, body.buf, body.len);
out:
	free(ct);
	strbuf_release(&body);
	return ret;
}

static int pull_descriptor_blobs(struct anole_blobstore *bs, const char *dir, json_t *manifest,
				 bool layers_too)
{
	json_t *layers = json_object_get(manifest, "layers"), *l, *config;
	size_t i;
	int ret;

	config = json_object_get(manifest, "config");
	if (!json_is_object(config) || !json_is_array(layers))
		return anole_error_code(EBADMSG, "a manifest without config or layers");
	ret = pull_blob(bs, dir, json_string_value(json_object_get(config, "digest")) ?: "",
			(uint64_t)json_integer_value(json_object_get(config, "size")));
	json_array_foreach(layers, i, l) {
		const char *dg = json_string_value(json_object_get(l, "digest"));

		if (ret)
			break;
		if (!dg || anole_digest_ref_check(dg))
			return anole_error_code(EBADMSG, "layer %zu has no valid digest", i + 1);
		if (!layers_too)
			continue;
		ret = pull_blob(bs, dir, dg, (uint64_t)json_integer_value(json_object_get(l, "size")));
	}
	return ret;
}

static int pull(const char *src, const char *dest, const char *platform,
		const struct anole_blobstore_opts *sopts, bool layers_too)
{
	char *store = NULL, *reference = NULL, *dir = NULL, *tag = NULL;
	char *digest = NULL, *mt = NULL;
	struct anole_blobstore *bs = NULL;
	json_t *doc = NULL, *index = NULL;
	uint64_t size = 0;
	char *text;
	int ret;

	ret = oci_parse_registry_ref(src, &store, &reference);
	if (!ret)
		ret = oci_parse_ref(dest, &dir, &tag);
	if (!ret)
		ret = anole_blobstore_open(&bs, store, sopts);
	if (!ret)
		ret = oci_layout_init(dir);
	if (!ret)
		ret = pull_manifest(bs, dir, reference, &digest, &mt, &size, &doc);
	if (!ret && json_is_array(json_object_get(doc, "manifests"))) {
		/* an index: take the platform's manifest, keep the index as is */
		json_t *m;
		size_t i;

		json_array_foreach(json_object_get(doc, "manifests"), i, m) {
			const char *d = json_string_value(json_object_get(m, "digest"));
			char *cd = NULL, *cmt = NULL;
			uint64_t csize;
			json_t *child = NULL;
			const char *os = json_string_value(json_object_get(json_object_get(m, "platform"), "os"));

			if (!d || (os && strcmp(os, "linux")))
				continue;
			ret = pull_manifest(bs, dir, d, &cd, &cmt, &csize, &child);
			if (!ret)
				ret = pull_descriptor_blobs(bs, dir, child, layers_too);
			free(cd);
			free(cmt);
			json_decref(child);
			if (ret)
				break;
		}
		(void)platform;     /* every linux platform is pulled; convert picks one */
	} else if (!ret) {
		ret = pull_descriptor_blobs(bs, dir, doc, layers_too);
	}
	if (ret)
		goto out;
	ret = oci_write_file(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	index = json_pack("{s:i, s:s, s:[{s:s, s:s, s:I, s:{s:s}}]}", "schemaVersion", 2,
			  "mediaType", "application/vnd.oci.image.index.v1+json", "manifests",
			  "mediaType", mt, "digest", digest, "size", (json_int_t)size, "annotations",
			  "org.opencontainers.image.ref.name", tag ? tag : reference);
	text = json_dumps(index, JSON_INDENT(2));
	if (!ret)
		ret = oci_write_file(dir, "index.json", text);
	free(text);
out:
	json_decref(doc);
	json_decref(index);
	anole_blobstore_close(bs);
	free(store);
	free(reference);
	free(dir);
	free(tag);
	free(digest);
	free(mt);
	return ret;
}

int oci_pull(const char *src, const char *dest, const char *platform,
	     const struct anole_blobstore_opts *sopts)
{
	return pull(src, dest, platform, sopts, true);
}

int oci_pull_manifests(const char *src, const char *dest, const char *platform,
		       const struct anole_blobstore_opts *sopts)
{
	return pull(src, dest, platform, sopts, false);
}

/* The repository of a docker:// reference when it is on the same registry
 * as `dest`, for cross-repository mounts; NULL otherwise. */
static char *same_registry_repo(const char *ref, const char *dest)
{
	char *store = NULL, *reference = NULL, *dstore = NULL, *dref = NULL, *repo = NULL;

	if (ref && !strncmp(ref, "docker://", 9) &&
	    !oci_parse_registry_ref(ref, &store, &reference) &&
	    !oci_parse_registry_ref(dest, &dstore, &dref)) {
		const char *a = strchr(store + 9, '/'), *b = strchr(dstore + 9, '/');

		if (a && b && a - store == b - dstore && !strncmp(store, dstore, (size_t)(a - store)))
			repo = xstrdup(a + 1);
	}
	free(store);
	free(reference);
	free(dstore);
	free(dref);
	return repo;
}

int oci_push(const char *src, const char *dest, const struct anole_blobstore_opts *sopts,
	     uint64_t *bytes_pushed)
{
	return oci_push_from(src, dest, sopts, bytes_pushed, NULL);
}

int oci_push_from(const char *src, const char *dest, const struct anole_blobstore_opts *sopts,
		  uint64_t *bytes_pushed, const char *mount_from)
{
	char *from_repo = same_registry_repo(mount_from, dest);
	char *store = NULL, *reference = NULL, *dir = NULL, *tag = NULL;
	struct anole_blobstore *bs = NULL;
	struct oci_image img = { 0 };
	struct anole_blobstore_stats before, after;
	struct strbuf man = STRBUF_INIT;
	char *path;
	int ret;

	ret = oci_parse_ref(src, &dir, &tag);
	if (!ret)
		ret = oci_parse_registry_ref(dest, &store, &reference);
	if (!ret)
		ret = oci_open(&img, dir, tag, NULL);
	if (!ret)
		ret = anole_blobstore_open(&bs, store, sopts);
	if (ret)
		goto out;
	anole_blobstore_get_stats(bs, &before);
	for (unsigned i = 0; !ret && i < img.nlayers; i++) {
		struct stat st;

		path = oci_blob_path(dir, img.layers[i].digest);
		if (from_repo && anole_blobstore_size(bs, img.layers[i].digest, &(uint64_t){ 0 }) &&
		    !anole_blobstore_mount_from(bs, img.layers[i].digest, from_repo)) {
			ret = 0;        /* linked from the other repository: nothing sent */
		} else if (stat(path, &st) < 0 && errno == ENOENT) {
			/* a chunk-dictionary blob that stayed in the registry */
			uint64_t size;

			ret = anole_blobstore_size(bs, img.layers[i].digest, &size);
			if (ret == -ENOENT)
				ret = anole_error_code(ENOENT, "blob %s is neither in %s nor in %s",
						       img.layers[i].digest, dir, dest);
		} else {
			ret = anole_blobstore_put(bs, img.layers[i].digest, path);
			ret = ret > 0 ? 0 : ret;        /* 1: the registry had it */
		}
		free(path);
	}
	if (!ret) {
		path = oci_blob_path(dir, img.config.digest);
		ret = anole_blobstore_put(bs, img.config.digest, path);
		ret = ret > 0 ? 0 : ret;
		free(path);
	}
	if (!ret) {         /* the manifest last, byte for byte */
		path = oci_blob_path(dir, img.manifest.digest);
		{
			int fd = open(path, O_RDONLY | O_CLOEXEC);

			if (fd < 0) {
				ret = anole_error(errno, "cannot read %s", path);
			} else {
				strbuf_grow(&man, img.manifest.size);
				ret = pread_full(fd, man.buf, img.manifest.size, 0);
				strbuf_setlen(&man, ret ? 0 : img.manifest.size);
				close(fd);
			}
		}
		free(path);
		if (!ret)
			ret = anole_blobstore_put_manifest(bs, reference, img.manifest.media_type,
							   man.buf, man.len);
	}
	anole_blobstore_get_stats(bs, &after);
	if (bytes_pushed)
		*bytes_pushed = after.bytes_sent - before.bytes_sent;
out:
	free(from_repo);
	strbuf_release(&man);
	oci_close(&img);
	anole_blobstore_close(bs);
	free(store);
	free(reference);
	free(dir);
	free(tag);
	return ret;
}

/*
 * For `mount docker://...`: fetch the manifest (an index is resolved to
 * linux on this host's architecture) and the metadata layer only, into
 * cache_dir; the blobs stay in the registry, read lazily.
 */
int oci_fetch_metadata(const char *ref, const char *cache_dir,
		       const struct anole_blobstore_opts *sopts, char **image_path, char **store)
{
	char *reference = NULL, *digest = NULL, *mt = NULL;
	struct anole_blobstore *bs = NULL;
	struct strbuf dir = STRBUF_INIT;
	json_t *doc = NULL, *layers, *l, *meta = NULL;
	uint64_t size;
	size_t i;
	int ret;

	*image_path = NULL;
	ret = oci_parse_registry_ref(ref, store, &reference);
	if (!ret)
		ret = anole_blobstore_open(&bs, *store, sopts);
	strbuf_addf(&dir, "%s/oci", cache_dir);
	if (!ret) {
		/* the image comes from here: the cache's own checks (privdir.h) */
		int cfd = anole_privdir_open(cache_dir, true);
		int ofd = cfd < 0 ? cfd : anole_privdir_sub(cfd, cache_dir, "oci", true);

		ret = ofd < 0 ? ofd : 0;
		if (ofd >= 0)
			close(ofd);
		if (cfd >= 0)
			close(cfd);
	}
	if (!ret)
		ret = oci_layout_init(dir.buf);
	if (!ret)
		ret = pull_manifest(bs, dir.buf, reference, &digest, &mt, &size, &doc);
	for (int depth = 0; !ret && depth < 2 && json_is_array(json_object_get(doc, "manifests")); depth++) {
		json_t *pick = NULL, *m;
		const char *arch = sizeof(void *) == 8 ?
#if defined(__x86_64__)
			"amd64"
#elif defined(__aarch64__)
			"arm64"
#elif defined(__riscv)
			"riscv64"
#else
			""
#endif
			: "";

		json_array_foreach(json_object_get(doc, "manifests"), i, m) {
			json_t *p = json_object_get(m, "platform");

			if (!pick || (!strcmp(json_string_value(json_object_get(p, "os")) ?: "", "linux") &&
				      !strcmp(json_string_value(json_object_get(p, "architecture")) ?: "", arch)))
				pick = m;
		}
		if (!pick) {
			ret = anole_error_code(ENOENT, "%s: an empty index", ref);
			break;
		}
		{
			char *d = xstrdup(json_string_value(json_object_get(pick, "digest")) ?: "");

			json_decref(doc);
			doc = NULL;
			free(digest);
			free(mt);
			digest = mt = NULL;
			ret = pull_manifest(bs, dir.buf, d, &digest, &mt, &size, &doc);
			free(d);
		}
	}
	layers = ret ? NULL : json_object_get(doc, "layers");
	json_array_foreach(layers, i, l)
		if (!strcmp(json_string_value(json_object_get(l, "mediaType")) ?: "", ANOLE_MT_METADATA))
			meta = l;
	if (!ret && !meta)
		ret = anole_error_code(EINVAL, "%s is not an anole image (no %s layer): convert it first",
				       ref, ANOLE_MT_METADATA);
	if (!ret) {
		const char *md = json_string_value(json_object_get(meta, "digest"));

		if (!md || anole_digest_ref_check(md))
			ret = anole_error_code(EBADMSG, "%s: bad metadata layer digest", ref);
		else
			ret = pull_blob(bs, dir.buf, md,
					(uint64_t)json_integer_value(json_object_get(meta, "size")));
		if (!ret)
			*image_path = oci_blob_path(dir.buf, md);
	}
	json_decref(doc);
	anole_blobstore_close(bs);
	strbuf_release(&dir);
	free(reference);
	free(digest);
	free(mt);
	return ret;
}
