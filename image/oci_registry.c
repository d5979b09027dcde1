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
	struct oci_descriptor d = { 0 };
	char *ct = NULL;
	json_t *doc;
	int ret = anole_blobstore_get_manifest(bs, reference, &body, &ct);

	if (ret)
		goto out;
	doc = json_loadb(body.buf, body.len, 0, NULL);
	if (!doc) {
		ret = anole_error_code(EBADMSG, "manifest %s is not JSON", reference);
		goto out;
	}
	/* stored under the digest of its bytes, which is what names it */
	ret = oci_put_blob(dir, media_type_of(doc, ct), body.buf, body.len, &d);
	*digest_out = d.digest;
	*mt_out = d.media_type;
	*size_out = d.size;
	*doc_out = doc;
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

/* Both ends of a copy must be of the kind the verb takes. */
static int want(const struct anole_ref *r, enum anole_ref_transport t, const char *what)
{
	char *text;
	int ret;

	if (r->transport == t)
		return 0;
	text = anole_ref_format(r);
	ret = anole_error_code(EINVAL, "%s: %s", text, what);
	free(text);
	return ret;
}

static int pull(const struct anole_ref *src, const struct anole_ref *dest, const char *platform,
		const struct anole_blobstore_opts *sopts, bool layers_too)
{
	const char *reference = anole_ref_reference(src), *dir = dest->path;
	char *store = NULL, *digest = NULL, *mt = NULL;
	struct anole_blobstore *bs = NULL;
	json_t *doc = NULL;
	uint64_t size = 0;
	int ret;

	ret = want(src, ANOLE_REF_DOCKER, "the source of a pull is docker://HOST/REPO[:TAG]");
	if (!ret)
		ret = want(dest, ANOLE_REF_OCI, "the destination of a pull is oci:DIR[:TAG]");
	if (!ret)
		ret = anole_blobstore_open(&bs, store = anole_ref_store(src), sopts);
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
	if (!ret) {         /* other images of the layout stay */
		struct oci_descriptor d = { mt, digest, size };

		ret = oci_layout_set_tag(dir, dest->tag ? dest->tag : reference, &d);
	}
out:
	json_decref(doc);
	anole_blobstore_close(bs);
	free(store);
	free(digest);
	free(mt);
	return ret;
}

int oci_pull(const struct anole_ref *src, const struct anole_ref *dest, const char *platform,
	     const struct anole_blobstore_opts *sopts)
{
	return pull(src, dest, platform, sopts, true);
}

int oci_pull_manifests(const struct anole_ref *src, const struct anole_ref *dest,
		       const char *platform, const struct anole_blobstore_opts *sopts)
{
	return pull(src, dest, platform, sopts, false);
}

int oci_push(const struct anole_ref *src, const struct anole_ref *dest,
	     const struct anole_blobstore_opts *sopts, uint64_t *bytes_pushed,
	     const struct anole_ref *mount_from)
{
	/* blobs can be linked from a repository of the same registry */
	const char *from_repo = mount_from && anole_ref_same_registry(mount_from, dest) ?
				mount_from->repository : NULL;
	const char *reference = anole_ref_reference(dest), *dir = src->path;
	char *store = NULL, *dest_text = NULL;
	struct anole_blobstore *bs = NULL;
	struct oci_image img = { 0 };
	struct anole_blobstore_stats before, after;
	struct strbuf man = STRBUF_INIT;
	char *path;
	int ret;

	ret = want(src, ANOLE_REF_OCI, "the source of a push is oci:DIR[:TAG]");
	if (!ret)
		ret = want(dest, ANOLE_REF_DOCKER, "the destination of a push is docker://HOST/REPO[:TAG]");
	if (!ret)
		ret = oci_open(&img, dir, src->tag, NULL);
	if (!ret)
		ret = anole_blobstore_open(&bs, store = anole_ref_store(dest), sopts);
	if (ret)
		goto out;
	dest_text = anole_ref_format(dest);
	anole_blobstore_get_stats(bs, &before);
	for (unsigned i = 0; !ret && i < img.nlayers; i++) {
		struct stat st;

		path = oci_blob_path(dir, img.layers[i].digest);
		if (from_repo && anole_blobstore_has(bs, img.layers[i].digest) == 0 &&
		    !anole_blobstore_mount_from(bs, img.layers[i].digest, from_repo)) {
			ret = 0;        /* linked from the other repository: nothing sent */
		} else if (stat(path, &st) < 0 && errno == ENOENT) {
			/* a chunk-dictionary blob that stayed in the registry */
			uint64_t size;

			ret = anole_blobstore_size(bs, img.layers[i].digest, &size);
			if (ret == -ENOENT)
				ret = anole_error_code(ENOENT, "blob %s is neither in %s nor in %s",
						       img.layers[i].digest, dir, dest_text);
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
	free(dest_text);
	strbuf_release(&man);
	oci_close(&img);
	anole_blobstore_close(bs);
	free(store);
	return ret;
}

/*
 * For `mount docker://...`: fetch the manifest (an index is resolved to
 * platform, default linux on this host's architecture) and the metadata layer only, into
 * cache_dir; the blobs stay in the registry, read lazily.
 */
int oci_fetch_metadata(const struct anole_ref *r, const char *platform, const char *cache_dir,
		       const struct anole_blobstore_opts *sopts, char **image_path, char **store)
{
	const char *reference = anole_ref_reference(r);
	char *ref = anole_ref_format(r), *digest = NULL, *mt = NULL;
	struct anole_blobstore *bs = NULL;
	struct strbuf dir = STRBUF_INIT;
	json_t *doc = NULL, *layers, *l, *meta = NULL;
	uint64_t size;
	size_t i;
	int ret;

	*image_path = NULL;
	*store = NULL;
	ret = want(r, ANOLE_REF_DOCKER, "not a registry reference (docker://HOST/REPO[:TAG])");
	if (!ret)
		ret = anole_blobstore_open(&bs, *store = anole_ref_store(r), sopts);
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
		char want[160];
		json_t *pick = oci_index_pick(json_object_get(doc, "manifests"), platform, want);

		if (!pick) {
			ret = anole_error_code(ENOENT, "%s: no image for platform %s in the index", ref, want);
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
	free(ref);
	free(digest);
	free(mt);
	return ret;
}
