// SPDX-License-Identifier: Apache-2.0
/*
 * Conversion to anole's accelerated form, on top of the OCI layout,
 * registry and archive modules: the source is brought into a local layout
 * (pulled or unpacked), its layers are built into chunk blobs and one
 * metadata image, and the result is written to a layout (and pushed).
 * The accelerated image is written blobs first, manifest next, index.json
 * last, so an interrupted conversion never leaves an index naming missing
 * blobs.
 */
#include "anole/convert.h"
#include "blobsend.h"
#include "anole/blobmeta.h"
#include "anole/blobstore.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/image.h"
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

static bool layer_type_ok(const char *mt)
{
	static const char *const ok[] = {
		"application/vnd.oci.image.layer.v1.tar",
		"application/vnd.oci.image.layer.v1.tar+gzip",
		"application/vnd.oci.image.layer.v1.tar+zstd",
		"application/vnd.oci.image.layer.nondistributable.v1.tar",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
		"application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
		"application/vnd.docker.image.rootfs.diff.tar.gzip",
		"application/vnd.docker.image.rootfs.diff.tar",
	};

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++)
		if (!strcmp(mt, ok[i]))
			return true;
	return false;
}

/* The layouts one conversion works on, all local. */
struct convert_job {
	const struct oci_convert_opts *o;
	const char *src_dir, *src_tag;      /* the source layout */
	const char *dest_dir, *dest_tag;    /* the destination layout */
	struct anole_ref dict;              /* --chunk-dict, parsed */
	struct anole_blobstore *src_bs;     /* layers still in the source registry */
	struct anole_blobstore *send_bs;    /* the destination registry, for blobsend.c */
	struct blob_sender *sender;         /* blobs sent as they are built */
	bool scratch_dest;                  /* a temporary layout, pushed and removed */
};

static int convert_local(struct convert_job *job, struct oci_convert_result *res);

/*
 * convert_local, its blobs sent to the destination registry as they are
 * built (committed only if the conversion succeeds). Only into a
 * repository without tags: a blob's digest is known only once it is all
 * sent, and one the repository already has (an unchanged lower layer of an
 * image converted before) would be sent again, where the push after the
 * build finds it there and sends nothing. A new repository has nothing to
 * find, so there the overlap costs no byte.
 */
static int convert_sending(struct convert_job *job, struct oci_convert_result *res)
{
	bool send = job->send_bs && anole_blobstore_has_tags(job->send_bs) == 0;
	int ret = send ? blob_sender_start(&job->sender, job->send_bs) : 0;

	if (!ret)
		ret = convert_local(job, res);
	blob_sender_finish(job->sender, !ret);
	job->sender = NULL;
	return ret;
}

/*
 * Registry and archive ends go through a temporary layout: pull or unpack
 * SRC into it, or convert into it and push DEST from it (blobs the
 * registry has are not uploaded again). The temporary layouts are removed
 * whatever happens.
 */
int oci_convert(const struct oci_convert_opts *o, struct oci_convert_result *res)
{
	struct anole_ref src = { 0 }, dest = { 0 }, tsrc_ref = { 0 }, tdest_ref = { 0 };
	struct convert_job job = { .o = o };
	char *tsrc = NULL, *tdst = NULL, *archive_tag = NULL;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = anole_ref_parse(o->src, ANOLE_REF_OCI, &src);
	if (!ret)
		ret = anole_ref_parse(o->dest, ANOLE_REF_OCI, &dest);
	if (!ret && o->chunk_dict)
		ret = anole_ref_parse(o->chunk_dict, ANOLE_REF_OCI, &job.dict);
	if (!ret && (dest.transport == ANOLE_REF_OCI_ARCHIVE ||
		     dest.transport == ANOLE_REF_DOCKER_ARCHIVE))
		ret = anole_error_code(EINVAL, "%s: convert writes oci:DIR[:TAG] or docker://, not an archive",
				       o->dest);
	if (!ret && dest.transport == ANOLE_REF_DOCKER && dest.digest)
		ret = anole_error_code(EINVAL, "%s: a destination is named by a tag, not a digest (the digest is the result's)",
				       o->dest);
	if (ret)
		goto out;
	job.src_dir = src.path;
	job.src_tag = src.tag;
	job.dest_dir = dest.path;
	job.dest_tag = dest.tag;
	if (src.transport == ANOLE_REF_DOCKER) {
		char *store;

		ret = anole_temp_dir("anole-oci", &tsrc);
		tsrc_ref = (struct anole_ref){ .transport = ANOLE_REF_OCI, .path = tsrc, .tag = "src" };
		/* manifests and config only: the layers stream into the build */
		if (!ret)
			ret = oci_pull_manifests(&src, &tsrc_ref, o->platform, o->store);
		store = anole_ref_store(&src);
		if (!ret)
			ret = anole_blobstore_open(&job.src_bs, store, o->store);
		free(store);
		job.src_dir = tsrc;
		job.src_tag = "src";
	} else if (src.transport == ANOLE_REF_OCI_ARCHIVE || src.transport == ANOLE_REF_DOCKER_ARCHIVE) {
		ret = anole_temp_dir("anole-oci", &tsrc);
		if (!ret)
			ret = oci_import_archive(&src, tsrc, &archive_tag);
		job.src_dir = tsrc;
		job.src_tag = archive_tag;
	}
	if (!ret && dest.transport == ANOLE_REF_DOCKER) {
		ret = anole_temp_dir("anole-oci", &tdst);
		tdest_ref = (struct anole_ref){ .transport = ANOLE_REF_OCI, .path = tdst, .tag = "dst" };
		job.dest_dir = tdst;
		job.dest_tag = "dst";
		job.scratch_dest = true;
		if (!ret) {
			char *store = anole_ref_store(&dest);

			ret = anole_blobstore_open(&job.send_bs, store, o->store);
			free(store);
		}
	}
	if (!ret)
		ret = convert_sending(&job, res);
	if (ret == -EBADMSG && job.src_bs) {
		/*
		 * A streamed layer did not match its digest. Range reads cannot
		 * be checked one by one, so a mirror serving bad bytes is only
		 * found out at the layer's end; fetch the layers whole, each
		 * source checked (a bad one passed over), and convert again.
		 */
		anole_warn("fetching the layers of %s whole, checked source by source", o->src);
		anole_blobstore_close(job.src_bs);
		job.src_bs = NULL;
		ret = oci_pull(&src, &tsrc_ref, o->platform, o->store);
		if (!ret)
			ret = convert_sending(&job, res);
	}
	if (!ret && tdst) {
		struct anole_blobstore_stats sent;

		/* what the build sent already is there: HEAD, nothing sent */
		ret = oci_push(&tdest_ref, &dest, o->store, &res->bytes_pushed,
			       job.dict.transport == ANOLE_REF_DOCKER ? &job.dict : NULL);
		anole_blobstore_get_stats(job.send_bs, &sent);
		res->bytes_pushed += sent.bytes_sent;
		res->pushed = !ret;
	}
out:
	anole_blobstore_close(job.send_bs);
	anole_blobstore_close(job.src_bs);
	if (tsrc)
		anole_remove_tree(tsrc);
	if (tdst)
		anole_remove_tree(tdst);
	free(tsrc);
	free(tdst);
	free(archive_tag);
	anole_ref_free(&src);
	anole_ref_free(&dest);
	anole_ref_free(&job.dict);
	if (ret)
		oci_convert_result_free(res);
	return ret;
}

void oci_convert_result_free(struct oci_convert_result *res)
{
	free(res->source_manifest);
	free(res->manifest);
	free(res->metadata);
	memset(res, 0, sizeof(*res));
}

/*
 * The chunk tables of a previous accelerated image (its metadata layer).
 * A local dictionary's blobs join the destination layout; a registry's
 * stay there (the push mounts them from the dictionary's repository).
 */
static int load_chunk_dict(struct convert_job *job, struct anole_blobmeta *dict)
{
	const struct oci_convert_opts *o = job->o;
	struct anole_resolved_image r = { 0 };
	char *tmp = NULL;
	int fd = -1, ret = 0;

	if (job->dict.transport == ANOLE_REF_DOCKER)
		ret = anole_temp_dir("anole-oci", &tmp);
	if (!ret)
		ret = anole_ref_resolve(&job->dict, o->platform, tmp, o->store, &r);
	fd = ret ? -1 : open(r.image, O_RDONLY | O_CLOEXEC);
	if (!ret && fd < 0)
		ret = anole_error(errno, "cannot read %s", r.image);
	if (!ret) {
		ret = anole_blobmeta_read(fd, r.image, dict);
		if (ret == -ENOENT)
			ret = anole_error_code(EINVAL, "chunk dictionary %s has no chunk table",
					       o->chunk_dict);
	}
	if (fd >= 0)
		close(fd);
	for (unsigned i = 0; !ret && r.layout && i < dict->nblobs; i++)
		ret = oci_share_blob(r.layout, job->dest_dir, dict->blobs[i].name);
	anole_resolved_image_free(&r);
	if (tmp)
		anole_remove_tree(tmp);
	free(tmp);
	return ret;
}

/* A layer that stayed in the source registry, read as the build wants it
 * (one at a time: the store's handle is not shared between threads). */
struct layer_fetch {
	struct anole_blobstore *bs;
	const char *digest;
	uint64_t size;
	struct anole_blob_stream *s;
	bool done;
};

static ssize_t layer_fetch_read(void *opaque, void *buf, size_t len)
{
	struct layer_fetch *lf = opaque;
	ssize_t n;
	int ret;

	if (lf->done)
		return 0;
	if (!lf->s && (ret = anole_blob_stream_open(&lf->s, lf->bs, lf->digest, lf->size)))
		return ret;
	n = anole_blob_stream_read(lf->s, buf, len);
	if (n <= 0) {
		anole_blob_stream_close(lf->s);
		lf->s = NULL;
		lf->done = true;
	}
	return n;
}

static int convert_local(struct convert_job *job, struct oci_convert_result *res)
{
	const struct oci_convert_opts *o = job->o;
	struct anole_layer_stream *streams = NULL;
	struct layer_fetch *fetches = NULL;
	const char **digests = NULL;
	uint64_t *sizes = NULL;
	struct oci_image src = { 0 };
	struct anole_build_opts b = { 0 };
	struct anole_build_stats st = { 0 };
	struct oci_descriptor meta = { 0 }, manifest = { 0 };
	struct anole_blobmeta dict = { 0 };
	const char *sdir = job->src_dir, *ddir = job->dest_dir;
	char *blob_dir = NULL;
	char *tmp_img = NULL, **paths = NULL;
	json_t *mj = NULL, *layers;
	char *text = NULL;
	int tmp_fd, ret;

	ret = oci_open(&src, sdir, job->src_tag, o->platform);
	if (ret)
		goto out;
	if (src.accelerated) {
		ret = anole_error_code(EINVAL, "%s is already an anole image", o->src);
		goto out;
	}
	/* layers are verified by the build as it reads them: one pass each */
	paths = xcalloc(src.nlayers + 1, sizeof(*paths));
	digests = xcalloc(src.nlayers + 1, sizeof(*digests));
	sizes = xcalloc(src.nlayers + 1, sizeof(*sizes));
	streams = xcalloc(src.nlayers + 1, sizeof(*streams));
	fetches = xcalloc(src.nlayers + 1, sizeof(*fetches));
	for (unsigned i = 0; i < src.nlayers && !ret; i++) {
		if (!layer_type_ok(src.layers[i].media_type))
			ret = anole_error_code(EOPNOTSUPP, "%s: layer %u (%s) has media type %s, not a tar layer",
					       o->src, i + 1, src.layers[i].digest, src.layers[i].media_type);
		paths[i] = oci_blob_path(sdir, src.layers[i].digest);
		digests[i] = src.layers[i].digest;
		sizes[i] = src.layers[i].size;
		if (job->src_bs && access(paths[i], F_OK) < 0 && errno == ENOENT) {
			/* still in the registry: streamed into the build */
			fetches[i] = (struct layer_fetch){ job->src_bs, digests[i], sizes[i], NULL, false };
			streams[i] = (struct anole_layer_stream){ layer_fetch_read, &fetches[i] };
		}
	}
	if (!ret)
		ret = oci_layout_init(ddir);
	if (!ret && o->chunk_dict)
		ret = load_chunk_dict(job, &dict);
	if (!ret) {
		const char **names = xcalloc(src.nlayers + 1, sizeof(*names));

		blob_dir = xmalloc(strlen(ddir) + 16);
		sprintf(blob_dir, "%s/blobs/sha256", ddir);
		/* a name of its own: concurrent converts share the layout */
		tmp_img = xmalloc(strlen(ddir) + 32);
		sprintf(tmp_img, "%s/.anole-metadata.XXXXXX", ddir);
		tmp_fd = mkostemp(tmp_img, O_CLOEXEC);
		if (tmp_fd < 0) {
			ret = anole_error(errno, "cannot create a temporary file in %s", ddir);
			free(tmp_img);
			tmp_img = NULL;
		} else {
			close(tmp_fd);
		}
		for (unsigned i = 0; i < src.nlayers; i++)
			names[i] = src.layers[i].digest;
		b.output = tmp_img;     /* the build renames its output over it */
		b.layers = (const char *const *)paths;
		b.layer_names = names;
		b.layer_streams = streams;
		b.layer_digests = digests;
		b.layer_sizes = sizes;
		b.blob_follow = job->sender ? blob_sender_follow(job->sender) : NULL;
		b.nlayers = src.nlayers;
		b.blob_dir = blob_dir;
		b.chunk_size = o->chunk_size;
		b.compress = o->compress;
		b.chunk_digest = o->chunk_digest;
		b.encrypt_key = o->encrypt_key;
		b.threads = o->threads;
		b.no_sync = job->scratch_dest;
		b.dict_blobs = dict.blobs;
		b.ndict_blobs = dict.nblobs;
		b.have_timestamp = true;
		b.timestamp = 0;
		/* reproducible: the same source converts to the same bytes */
		b.have_uuid = true;
		{
			uint8_t dg[32];

			anole_digest(ANOLE_DIGEST_SHA256, src.manifest.digest,
				     strlen(src.manifest.digest), dg);
			memcpy(b.uuid, dg, 16);
			b.uuid[6] = (b.uuid[6] & 0x0f) | 0x50;   /* name-based UUID */
			b.uuid[8] = (b.uuid[8] & 0x3f) | 0x80;
		}
		if (!ret)
			ret = anole_image_build(&b, &st);
		free(names);
	}
	if (!ret)
		ret = oci_put_file_blob(ddir, ANOLE_MT_METADATA, tmp_img, &meta);
	if (!ret) {             /* the image config, unchanged */
		struct strbuf cfg = STRBUF_INIT;
		struct oci_descriptor copy = { 0 };

		ret = oci_read_blob(sdir, &src.config, &cfg);
		if (!ret)
			ret = oci_put_blob(ddir, src.config.media_type, cfg.buf, cfg.len, &copy);
		oci_descriptor_free(&copy);
		strbuf_release(&cfg);
	}
	if (tmp_img)
		unlink(tmp_img);
	if (ret)
		goto out;

	/* the manifest: blob layers in device order, the metadata layer last */
	mj = json_pack("{s:i, s:s, s:o, s:[], s:{s:s}}", "schemaVersion", 2, "mediaType",
		       OCI_MT_MANIFEST, "config", oci_descriptor_json(&src.config), "layers",
		       "annotations", ANOLE_ANN_SOURCE, src.manifest.digest);
	layers = json_object_get(mj, "layers");
	for (unsigned i = 0; i < st.nblobs; i++) {
		struct oci_descriptor d = { (char *)ANOLE_MT_BLOB, st.blobs[i].name,
					    st.blobs[i].compressed_size };
		json_t *dj = oci_descriptor_json(&d);
		char dev[16], usize[32];

		snprintf(dev, sizeof(dev), "%u", st.blobs[i].device_id);
		snprintf(usize, sizeof(usize), "%llu", (unsigned long long)st.blobs[i].uncompressed_size);
		json_object_set_new(dj, "annotations", json_pack("{s:s, s:s}", ANOLE_ANN_DEVICE, dev,
								 ANOLE_ANN_USIZE, usize));
		json_array_append_new(layers, dj);
	}
	json_array_append_new(layers, oci_descriptor_json(&meta));
	text = json_dumps(mj, JSON_COMPACT);
	ret = oci_put_blob(ddir, OCI_MT_MANIFEST, text, strlen(text), &manifest);
	if (!ret)
		ret = oci_write_file(ddir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	if (!ret)
		ret = oci_layout_set_tag(ddir, job->dest_tag, &manifest);
	if (ret)
		goto out;
	res->source_manifest = xstrdup(src.manifest.digest);
	res->manifest = xstrdup(manifest.digest);
	res->metadata = xstrdup(meta.digest);
	res->metadata_bytes = meta.size;
	res->blobs = st.nblobs;
	res->blob_bytes = st.blob_bytes;
	res->source_layers = src.nlayers;
	res->chunks = st.chunks;
	res->chunks_deduped = st.chunks_deduped;
out:
	anole_blobmeta_free(&dict);
	free(text);
	json_decref(mj);
	oci_descriptor_free(&meta);
	oci_descriptor_free(&manifest);
	anole_build_stats_free(&st);
	for (unsigned i = 0; paths && i < src.nlayers; i++) {
		free(paths[i]);
		anole_blob_stream_close(fetches[i].s);
	}
	free(paths);
	free(digests);
	free(sizes);
	free(streams);
	free(fetches);
	oci_close(&src);
	free(blob_dir);
	free(tmp_img);
	return ret;
}
