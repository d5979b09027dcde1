// SPDX-License-Identifier: Apache-2.0
/*
 * anole os and image references: a rootfs taken from an image (`os build
 * --from`), an OS image published as an anole chunked image (`os push`),
 * and read back from there chunk by chunk (`os upgrade REF`, os/disk.c).
 * Everything about references, policies, conversion, registries and chunk
 * tables is the image library's; this file only strings its calls together.
 */
#include "os_internal.h"
#include "anole/chunkfetch.h"
#include "anole/convert.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/hashmap.h"
#include "anole/image.h"
#include "anole/oci.h"
#include "anole/os.h"
#include "anole/policy.h"
#include "anole/ref.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define OS_LAYER_MT "application/vnd.oci.image.layer.v1.tar"
#define OS_CONFIG_MT "application/vnd.oci.image.config.v1+json"

static int make_dir(const char *p)
{
	return mkdir(p, 0700) < 0 && errno != EEXIST ? anole_error(errno, "%s", p) : 0;
}

/*
 * A chunked image's devices in their uncompressed view, device i at
 * devs[i - 1] under dir (so that the EROFS reader and unpack read them).
 */
static int materialize_devices(const char *image, const char *blobs, const char *dir,
			       const struct anole_blobstore_opts *sopts, char ***devs, unsigned *ndevs)
{
	struct anole_blobstore *bs = NULL;
	struct anole_blobmeta meta = { 0 };
	int fd = open(image, O_RDONLY | O_CLOEXEC), ret;

	*devs = NULL;
	*ndevs = 0;
	if (fd < 0)
		return anole_error(errno, "%s", image);
	ret = anole_blobmeta_read(fd, image, &meta);
	close(fd);
	if (ret == -ENOENT)
		return 0;   /* a plain image: everything is in it */
	if (ret < 0 || (ret = anole_blobstore_open(&bs, blobs, sopts)) < 0)
		goto out;
	*devs = xcalloc(meta.nblobs, sizeof(**devs));
	*ndevs = meta.nblobs;
	for (unsigned i = 0; i < meta.nblobs && ret == 0; i++) {
		const struct anole_blob_info *b = &meta.blobs[i];
		char p[PATH_MAX];

		if (b->device_id < 1 || b->device_id > meta.nblobs || (*devs)[b->device_id - 1]) {
			ret = anole_error_code(EBADMSG, "%s: blob device numbers are not 1..%u",
					       image, meta.nblobs);
			break;
		}
		snprintf(p, sizeof(p), "%s/dev%u", dir, b->device_id);
		(*devs)[b->device_id - 1] = xstrdup(p);
		if ((fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
			ret = anole_error(errno, "%s", p);
			break;
		}
		ret = anole_blob_materialize(bs, b, fd, NULL);
		close(fd);
	}
out:
	anole_blobstore_close(bs);
	anole_blobmeta_free(&meta);
	return ret;
}

int os_rootfs_from_ref(const char *text, const char *policy_file,
		       const struct anole_blobstore_opts *sopts, const char *scratch, char **rootfs)
{
	struct anole_policy *policy = NULL;
	struct anole_resolved_image res = { 0 };
	struct anole_ref ref = { 0 }, conv = { 0 };
	struct oci_image oi;
	char *pinned = NULL, p[PATH_MAX], **devs = NULL;
	unsigned ndevs = 0;
	bool accel = false;
	int ret;

	*rootfs = NULL;
	if ((ret = anole_ref_parse(text, ANOLE_REF_OCI, &ref)) < 0)
		goto out;
	/* trust before any byte: a policy may pin the signed manifest */
	if ((ret = anole_policy_load(policy_file, &policy)) < 0 ||
	    (ret = anole_policy_pin(policy, text, &ref, sopts, &pinned)) < 0)
		goto out;
	if (ref.transport == ANOLE_REF_DOCKER) {
		struct anole_ref m = { .transport = ANOLE_REF_OCI, .path = p, .tag = "src" };

		snprintf(p, sizeof(p), "%s/manifests", scratch);
		if ((ret = oci_pull_manifests(&ref, &m, NULL, sopts)) < 0 ||
		    (ret = oci_open(&oi, p, "src", NULL)) < 0)
			goto out;
		accel = oi.accelerated;
		oci_close(&oi);
	} else if (ref.transport == ANOLE_REF_OCI) {
		if ((ret = oci_open(&oi, ref.path, ref.tag, NULL)) < 0)
			goto out;
		accel = oi.accelerated;
		oci_close(&oi);
	}
	if (accel) {
		/* an anole image: its metadata image and blobs as they are */
		snprintf(p, sizeof(p), "%s/cache", scratch);
		if ((ret = make_dir(p)) < 0 ||
		    (ret = anole_ref_resolve(&ref, NULL, p, sopts, &res)) < 0 ||
		    (pinned && (ret = anole_ref_check_pinned(&ref, pinned, &res)) < 0))
			goto out;
	} else {
		/* tar layers: the converter applies them (whiteouts and all) into
		 * a chunked image, uncompressed since it is read once, here */
		char *src = anole_ref_format(&ref), dest[PATH_MAX + 16];
		struct oci_convert_result cr;

		snprintf(dest, sizeof(dest), "oci:%s/converted:os", scratch);
		struct oci_convert_opts co = { .src = src, .dest = dest, .compress = "none",
					       .store = sopts };
		ret = oci_convert(&co, &cr);
		free(src);
		if (ret < 0)
			goto out;
		oci_convert_result_free(&cr);
		snprintf(p, sizeof(p), "%s/converted", scratch);
		conv = (struct anole_ref){ .transport = ANOLE_REF_OCI, .path = p, .tag = "os" };
		if ((ret = anole_ref_resolve(&conv, NULL, NULL, sopts, &res)) < 0)
			goto out;
	}
	if (!res.blobs) {
		ret = anole_error_code(EINVAL, "%s: no blob store for its data", text);
		goto out;
	}
	if ((ret = materialize_devices(res.image, res.blobs, scratch, sopts, &devs, &ndevs)) < 0)
		goto out;
	snprintf(p, sizeof(p), "%s/rootfs", scratch);
	struct anole_unpack_opts uo = { .image = res.image, .dest = p,
					.devices = (const char *const *)devs, .ndevices = ndevs,
					.no_owner = geteuid() != 0,
					/* the same root image as from the tree itself */
					.dense = true };
	if ((ret = anole_image_unpack(&uo)) < 0)
		goto out;
	*rootfs = xstrdup(p);
out:
	for (unsigned i = 0; i < ndevs; i++)
		free(devs[i]);
	free(devs);
	anole_resolved_image_free(&res);
	anole_policy_free(policy);
	free(pinned);
	anole_ref_free(&ref);
	return ret;
}

/* ------------------------------------------------------------- os push */

static const char *oci_arch(void)
{
	static struct utsname u;

	if (uname(&u) < 0)
		return "amd64";
	if (!strcmp(u.machine, "x86_64"))
		return "amd64";
	if (!strcmp(u.machine, "aarch64"))
		return "arm64";
	return u.machine;
}

/* The manifest of an OS image, for its version: the image is not trusted
 * here (the disk's key judges it at upgrade); only its form is checked. */
static int peek_manifest(const char *path, struct os_manifest *m)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	struct strbuf man = STRBUF_INIT;
	int ret;

	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK ||
	    strcmp(archive_entry_pathname(e), "manifest.json") || archive_entry_size(e) <= 0 ||
	    archive_entry_size(e) > OS_MANIFEST_MAX) {
		ret = anole_error_code(EBADMSG, "%s: not an anole OS image (no manifest.json first)", path);
		goto out;
	}
	strbuf_grow(&man, (size_t)archive_entry_size(e) + 1);
	if (archive_read_data(a, man.buf, (size_t)archive_entry_size(e)) != archive_entry_size(e)) {
		ret = anole_error_code(EBADMSG, "%s: manifest.json is cut short", path);
		goto out;
	}
	strbuf_setlen(&man, (size_t)archive_entry_size(e));
	ret = os_manifest_parse(man.buf, man.len, path, m);
out:
	archive_read_free(a);
	strbuf_release(&man);
	return ret;
}

int anole_os_push(const struct anole_os_push_opts *o, struct strbuf *report, bool json)
{
	struct oci_descriptor layer = { 0 }, config = { 0 }, manifest = { 0 };
	struct oci_convert_result cr = { 0 };
	struct os_manifest m;
	char *tmp = NULL, src[PATH_MAX + 16];
	int ret;

	if ((ret = peek_manifest(o->image, &m)) < 0 || (ret = anole_temp_dir("anole-os", &tmp)) < 0)
		goto out;
	/* an OCI image whose one layer is the OS image's tar: its files
	 * (manifest, signature, kernel, initramfs, root.erofs) become the
	 * anole image's files, each chunked */
	if ((ret = oci_layout_init(tmp)) < 0 ||
	    (ret = oci_put_file_blob(tmp, OS_LAYER_MT, o->image, &layer)) < 0)
		goto out;
	json_t *cfg = json_pack("{s:s,s:s,s:{s:s,s:[s]},s:{s:{s:s}}}", "architecture", oci_arch(),
				"os", "linux", "rootfs", "type", "layers", "diff_ids", layer.digest,
				"config", "Labels", "org.openanolis.anole.os.version", m.version);
	char *text = json_dumps(cfg, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(cfg);
	ret = oci_put_blob(tmp, OS_CONFIG_MT, text, strlen(text), &config);
	free(text);
	if (ret < 0)
		goto out;
	json_t *man = json_pack("{s:i,s:s,s:o,s:[o]}", "schemaVersion", 2, "mediaType",
				OCI_MT_MANIFEST, "config", oci_descriptor_json(&config),
				"layers", oci_descriptor_json(&layer));
	text = json_dumps(man, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(man);
	ret = oci_put_blob(tmp, OCI_MT_MANIFEST, text, strlen(text), &manifest);
	free(text);
	if (ret < 0 || (ret = oci_layout_set_tag(tmp, "os", &manifest)) < 0)
		goto out;
	snprintf(src, sizeof(src), "oci:%s:os", tmp);
	struct oci_convert_opts co = {
		.src = src, .dest = o->dest, .store = o->store,
		/* chunks of one EROFS block: an unchanged file's blocks are the
		 * same wherever a new package moved them */
		.chunk_size = o->chunk_size ? o->chunk_size : OS_PUSH_CHUNK,
	};
	if ((ret = oci_convert(&co, &cr)) < 0)
		goto out;
	if (report && json)
		strbuf_addf(report, "{\"dest\":\"%s\",\"version\":\"%s\",\"manifest\":\"%s\","
			    "\"chunks\":%llu,\"chunks_deduped\":%llu,\"blob_bytes\":%llu,"
			    "\"metadata_bytes\":%llu,\"bytes_pushed\":%llu}\n", o->dest, m.version,
			    cr.manifest, (unsigned long long)cr.chunks,
			    (unsigned long long)cr.chunks_deduped, (unsigned long long)cr.blob_bytes,
			    (unsigned long long)cr.metadata_bytes, (unsigned long long)cr.bytes_pushed);
	else if (report)
		strbuf_addf(report, "%s: version %s as %s: %llu chunks (%llu shared), %llu blob "
			    "bytes, %llu metadata bytes, %llu bytes uploaded\n", o->dest, m.version,
			    cr.manifest, (unsigned long long)cr.chunks,
			    (unsigned long long)cr.chunks_deduped, (unsigned long long)cr.blob_bytes,
			    (unsigned long long)cr.metadata_bytes, (unsigned long long)cr.bytes_pushed);
out:
	oci_convert_result_free(&cr);
	oci_descriptor_free(&layer);
	oci_descriptor_free(&config);
	oci_descriptor_free(&manifest);
	if (tmp) {
		anole_remove_tree(tmp);
		free(tmp);
	}
	return ret;
}

/* ------------------------------------------------- upgrade from an image */

int os_remote_open(struct os_remote *r, const char *text, const char *scratch,
		   const struct anole_blobstore_opts *sopts, struct strbuf *man, struct strbuf *sig)
{
	struct anole_ref ref;
	struct stat st = { 0 };
	char p[PATH_MAX];
	int ret;

	memset(r, 0, sizeof(*r));
	if ((ret = anole_ref_parse(text, ANOLE_REF_PATH, &ref)) < 0)
		goto out;
	snprintf(p, sizeof(p), "%s/cache", scratch);
	if ((ret = make_dir(p)) < 0 ||
	    (ret = anole_ref_resolve(&ref, NULL, p, sopts, &r->res)) < 0)
		goto out;
	if (!r->res.blobs) {
		ret = anole_error_code(EINVAL, "%s: no blob store for its data", text);
		goto out;
	}
	if (stat(r->res.image, &st) == 0)
		r->stats.bytes_fetched = ref.transport == ANOLE_REF_DOCKER ? (uint64_t)st.st_size : 0;
	r->metadata_bytes = (uint64_t)st.st_size;
	if ((ret = anole_blobstore_open(&r->bs, r->res.blobs, sopts)) < 0)
		goto out;
	/* the manifest and its signature first: nothing else is fetched or
	 * written before they verify */
	if ((ret = anole_image_fetch_small(r->res.image, "/manifest.json", r->bs, OS_MANIFEST_MAX,
					   man, &r->stats)) < 0)
		goto out;
	if ((ret = anole_image_fetch_small(r->res.image, "/manifest.sig", r->bs, OS_SIG_MAX,
					   sig, &r->stats)) < 0) {
		anole_error_code(EBADMSG, "%s is unsigned: refused", text);
		goto out;
	}
out:
	anole_ref_free(&ref);
	if (ret < 0)
		os_remote_close(r);
	return ret;
}

void os_remote_close(struct os_remote *r)
{
	anole_blobstore_close(r->bs);
	r->bs = NULL;
	anole_resolved_image_free(&r->res);
}

/* ------------------------------------------ chunks the machine already has */

struct local_block { uint8_t digest[ANOLE_DIGEST_MAX]; unsigned src; uint64_t off; };

struct local_index {
	const struct os_local *src;
	unsigned nsrc;
	enum anole_digest_alg alg;
	size_t len;                 /* block size indexed; 0: not built yet */
	struct local_block *blocks;
	struct anole_hashmap map;
	int err;
};

static bool block_eq(const void *entry, const void *key)
{
	return !memcmp(((const struct local_block *)entry)->digest, key, ANOLE_DIGEST_MAX);
}

/* Every len-sized block at len-aligned offsets of every source: the layout
 * the images share, EROFS blocks being the unit of both. */
static int index_build(struct local_index *ix, enum anole_digest_alg alg, size_t len)
{
	uint8_t *buf = xmalloc(len);
	size_t total = 0, n = 0;
	int ret = 0;

	for (unsigned i = 0; i < ix->nsrc; i++)
		total += (size_t)(ix->src[i].len / len);
	ix->blocks = xcalloc(total ? total : 1, sizeof(*ix->blocks));
	anole_hashmap_init(&ix->map, block_eq);
	ix->alg = alg;
	ix->len = len;
	for (unsigned i = 0; i < ix->nsrc && ret == 0; i++) {
		for (uint64_t off = 0; off + len <= ix->src[i].len && ret == 0; off += len) {
			struct local_block *b = &ix->blocks[n];

			if ((ret = pread_full(ix->src[i].fd, buf, len, ix->src[i].off + off)) < 0) {
				anole_error(-ret, "reading the installed slot");
				break;
			}
			anole_digest(alg, buf, len, b->digest);
			uint64_t h = anole_hash_bytes(b->digest, ANOLE_DIGEST_MAX, 0);
			if (anole_hashmap_get(&ix->map, h, b->digest))
				continue;
			b->src = i;
			b->off = off;
			anole_hashmap_put(&ix->map, h, b);
			n++;
		}
	}
	free(buf);
	return ret;
}

static int local_lookup(void *opaque, enum anole_digest_alg alg, const uint8_t *digest,
			void *buf, size_t len)
{
	struct local_index *ix = opaque;
	uint8_t key[ANOLE_DIGEST_MAX] = { 0 };
	int ret;

	if (ix->err)
		return ix->err;
	/* indexed at the first whole chunk's size (a power of two from one
	 * block); a shorter tail asked first waits for it */
	if (!ix->len && (len < 4096 || (len & (len - 1))))
		return 0;
	if (!ix->len && (ret = index_build(ix, alg, len)) < 0)
		return ix->err = ret;
	/* another chunk size (a file's last chunk): not in the index */
	if (len != ix->len || alg != ix->alg)
		return 0;
	memcpy(key, digest, anole_digest_size(alg));
	const struct local_block *b = anole_hashmap_get(&ix->map,
		anole_hash_bytes(key, ANOLE_DIGEST_MAX, 0), key);
	if (!b)
		return 0;
	const struct os_local *s = &ix->src[b->src];
	if ((ret = pread_full(s->fd, buf, len, s->off + b->off)) < 0)
		return ix->err = anole_error(-ret, "reading the installed slot");
	/* the slot in use could have changed since it was indexed */
	uint8_t dg[ANOLE_DIGEST_MAX];
	anole_digest(alg, buf, len, dg);
	return memcmp(dg, digest, anole_digest_size(alg)) ? 0 : 1;
}

static int digest_check(int fd, uint64_t off, uint64_t len, const struct os_manifest *m, int i,
			const char *what)
{
	static uint8_t buf[1 << 20];
	struct anole_digest_ctx *ctx = anole_digest_new(m->alg);
	uint8_t dg[ANOLE_DIGEST_MAX];
	int ret = 0;

	while (len && ret == 0) {
		size_t n = len < sizeof(buf) ? (size_t)len : sizeof(buf);

		if ((ret = pread_full(fd, buf, n, off)) == 0)
			anole_digest_update(ctx, buf, n);
		off += n;
		len -= n;
	}
	anole_digest_final(ctx, dg);
	anole_digest_free(ctx);
	if (ret < 0)
		return anole_error(-ret, "reading back %s", os_file_names[i]);
	if (memcmp(dg, m->digest[i], anole_digest_size(m->alg)))
		return anole_error_code(EBADMSG, "%s: %s does not match its signed digest: "
					"tampered, refused", what, os_file_names[i]);
	return 0;
}

int os_remote_extract(struct os_remote *r, const struct os_manifest *m,
		      const struct os_sink sinks[OS_NFILES], const struct os_local *locals,
		      unsigned nlocals, const char *what)
{
	struct local_index ix = { .src = locals, .nsrc = nlocals };
	struct anole_fetch_local local = { local_lookup, &ix };
	int ret = 0;

	for (int i = 0; i < OS_NFILES && ret == 0; i++) {
		char path[64];
		uint64_t size = 0;

		if (m->size[i] > sinks[i].max) {
			ret = anole_error_code(ENOSPC, "%s: %s (%llu bytes) does not fit its place "
					       "(%llu bytes)", what, os_file_names[i],
					       (unsigned long long)m->size[i],
					       (unsigned long long)sinks[i].max);
			break;
		}
		snprintf(path, sizeof(path), "/%s", os_file_names[i]);
		ret = anole_image_fetch_file(r->res.image, path, r->bs, nlocals ? &local : NULL,
					     sinks[i].fd, sinks[i].off, m->size[i], &size, &r->stats);
		if (ret == -EFBIG || (ret == 0 && size != m->size[i]))
			ret = anole_error_code(EBADMSG, "%s: %s is not the size the manifest says: "
					       "tampered, refused", what, os_file_names[i]);
		if (ret == 0)
			ret = digest_check(sinks[i].fd, sinks[i].off, size, m, i, what);
	}
	if (ix.len) {
		anole_hashmap_free(&ix.map);
		free(ix.blocks);
	}
	return ret;
}
