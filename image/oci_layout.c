// SPDX-License-Identifier: Apache-2.0
/*
 * OCI image layouts: the bottom of the OCI stack (docs/architecture.md).
 * Open an image of a layout, read and write its blobs, and edit its
 * index.json. Every blob read from a layout is checked against its digest
 * and size before it is trusted; blobs are written under a temporary name
 * and renamed, and index.json is updated under a lock, so concurrent
 * writers and interrupted ones never leave an index naming missing blobs.
 */
#include "anole/oci.h"
#include "anole/blobstore.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#define MAX_JSON          (16u << 20)

char *oci_blob_path(const char *dir, const char *digest)
{
	struct strbuf p = STRBUF_INIT;

	strbuf_addf(&p, "%s/blobs/sha256/%s", dir, digest + 7);
	return strbuf_detach(&p, NULL);
}

/* Read a whole blob and check digest and size. */
int oci_read_blob(const char *dir, const struct oci_descriptor *d, struct strbuf *out)
{
	char *path = oci_blob_path(dir, d->digest);
	uint8_t dg[ANOLE_DIGEST_MAX];
	char hex[65];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;

	if (fd < 0) {
		ret = anole_error(errno, "%s: blob %s", dir, d->digest);
		goto out;
	}
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_size != d->size || d->size > MAX_JSON) {
		ret = anole_error_code(EBADMSG, "%s: blob %s is %lld bytes, its descriptor says %llu",
				       dir, d->digest, (long long)st.st_size,
				       (unsigned long long)d->size);
		goto out;
	}
	strbuf_grow(out, d->size);
	ret = pread_full(fd, out->buf, d->size, 0);
	if (ret) {
		ret = anole_error(-ret, "cannot read %s", path);
		goto out;
	}
	strbuf_setlen(out, d->size);
	anole_digest(ANOLE_DIGEST_SHA256, out->buf, out->len, dg);
	anole_hex(dg, 32, hex);
	if (strcmp(hex, d->digest + 7))
		ret = anole_error_code(EBADMSG, "%s: blob %s does not match its digest (it is sha256:%s)",
				       dir, d->digest, hex);
out:
	if (fd >= 0)
		close(fd);
	free(path);
	return ret;
}

static int parse_descriptor(const char *where, json_t *j, struct oci_descriptor *d)
{
	const char *mt = json_string_value(json_object_get(j, "mediaType"));
	const char *dg = json_string_value(json_object_get(j, "digest"));
	json_t *size = json_object_get(j, "size");

	if (!json_is_object(j) || !mt || anole_digest_ref_check(dg) || !json_is_integer(size) ||
	    json_integer_value(size) < 0)
		return anole_error_code(EBADMSG, "%s: malformed descriptor (mediaType, sha256 digest and size are needed)",
					where);
	d->media_type = xstrdup(mt);
	d->digest = xstrdup(dg);
	d->size = (uint64_t)json_integer_value(size);
	return 0;
}

void oci_descriptor_free(struct oci_descriptor *d)
{
	free(d->media_type);
	free(d->digest);
	memset(d, 0, sizeof(*d));
}

static json_t *load_json(const char *what, const char *buf, size_t len)
{
	json_error_t err;
	json_t *j = json_loadb(buf, len, 0, &err);

	if (!j)
		anole_error_code(EBADMSG, "%s: invalid JSON: %s (line %d)", what, err.text, err.line);
	return j;
}

static const char *host_arch(void)
{
	struct utsname u;
	static char arch[sizeof(((struct utsname *)0)->machine)];

	if (uname(&u) < 0)
		return "amd64";
	if (!strcmp(u.machine, "x86_64"))
		return "amd64";
	if (!strcmp(u.machine, "aarch64"))
		return "arm64";
	snprintf(arch, sizeof(arch), "%s", u.machine);
	return arch;
}

json_t *oci_index_pick(json_t *manifests, const char *platform, char want[160])
{
	const char *slash;
	bool want_no_variant;
	size_t i;
	json_t *m;

	snprintf(want, 160, "%s", platform ? platform : "");
	if (!platform)
		snprintf(want, 160, "linux/%s", host_arch());
	slash = strchr(want, '/');
	want_no_variant = !slash || !strchr(slash + 1, '/');
	json_array_foreach(manifests, i, m) {
		json_t *p = json_object_get(m, "platform");
		char have[160];
		const char *variant = json_string_value(json_object_get(p, "variant"));

		snprintf(have, sizeof(have), "%s/%s%s%s",
			 json_string_value(json_object_get(p, "os")) ?: "",
			 json_string_value(json_object_get(p, "architecture")) ?: "",
			 variant ? "/" : "", variant ? variant : "");
		/* "os/arch" also matches "os/arch/VARIANT" */
		if (!strcmp(have, want) || (want_no_variant && !strncmp(have, want, strlen(want)) &&
					    have[strlen(want)] == '/'))
			return m;
	}
	return NULL;
}

/* Pick the descriptor for `platform` ("os/arch[/variant]") in an index. */
static int pick_platform(const char *dir, json_t *manifests, const char *platform,
			 struct oci_descriptor *d)
{
	char want[160];
	json_t *m = oci_index_pick(manifests, platform, want);

	if (!m)
		return anole_error_code(ENOENT, "%s: no image for platform %s in the index", dir, want);
	return parse_descriptor(dir, m, d);
}

static int resolve_index(const char *dir, struct oci_descriptor *d, const char *platform)
{
	for (int depth = 0; depth < 4; depth++) {
		struct strbuf buf = STRBUF_INIT;
		struct oci_descriptor next = { 0 };
		json_t *j;
		int ret;

		if (strcmp(d->media_type, OCI_MT_INDEX) && strcmp(d->media_type, OCI_MT_DOCKER_LIST))
			return 0;
		ret = oci_read_blob(dir, d, &buf);
		j = ret ? NULL : load_json(d->digest, buf.buf, buf.len);
		strbuf_release(&buf);
		if (!j)
			return ret ? ret : -EBADMSG;
		ret = pick_platform(dir, json_object_get(j, "manifests"), platform, &next);
		json_decref(j);
		if (ret)
			return ret;
		oci_descriptor_free(d);
		*d = next;
	}
	return anole_error_code(ELOOP, "%s: image indexes nested too deep", dir);
}

static int pick_manifest(struct oci_image *img, const char *platform)
{
	struct strbuf buf = STRBUF_INIT;
	char *path = NULL;
	json_t *index = NULL, *manifests, *m;
	size_t i, found = 0;
	int fd, ret;

	path = xmalloc(strlen(img->dir) + 16);
	sprintf(path, "%s/index.json", img->dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = anole_error(errno, "%s is not an OCI image layout (index.json)", img->dir);
		free(path);
		return ret;
	}
	for (;;) {
		char tmp[65536];
		ssize_t n = read(fd, tmp, sizeof(tmp));

		if (n <= 0 || buf.len > MAX_JSON)
			break;
		strbuf_add(&buf, tmp, (size_t)n);
	}
	close(fd);
	index = load_json(path, buf.buf, buf.len);
	strbuf_release(&buf);
	free(path);
	if (!index)
		return -EBADMSG;
	manifests = json_object_get(index, "manifests");
	ret = json_is_array(manifests) ? 0 :
	      anole_error_code(EBADMSG, "%s/index.json has no manifests array", img->dir);
	json_array_foreach(manifests, i, m) {
		const char *name = json_string_value(json_object_get(json_object_get(m, "annotations"),
								     "org.opencontainers.image.ref.name"));

		if (ret || (img->tag && (!name || strcmp(name, img->tag))))
			continue;
		/* signatures (anole image sign: sha256-<hex>.sig) are no images:
		 * a signed layout of one image stays a layout of one image */
		if (!img->tag && name && anole_is_sig_tag(name))
			continue;
		if (found++) {
			if (!img->tag)
				ret = anole_error_code(EINVAL, "%s holds several images: name one as oci:%s:TAG",
						       img->dir, img->dir);
			continue;
		}
		ret = parse_descriptor(img->dir, m, &img->manifest);
	}
	json_decref(index);
	if (!ret && !found)
		ret = anole_error_code(ENOENT, "%s: no image%s%s", img->dir, img->tag ? " tagged " : "",
				       img->tag ? img->tag : "");
	if (!ret)
		ret = resolve_index(img->dir, &img->manifest, platform);
	return ret;
}

int oci_open(struct oci_image *img, const char *dir, const char *tag, const char *platform)
{
	struct strbuf buf = STRBUF_INIT;
	json_t *m = NULL, *layers, *l;
	size_t i;
	int ret;

	memset(img, 0, sizeof(*img));
	img->dir = xstrdup(dir);
	img->tag = tag ? xstrdup(tag) : NULL;
	img->metadata_layer = -1;
	ret = pick_manifest(img, platform);
	if (!ret && strcmp(img->manifest.media_type, OCI_MT_MANIFEST) &&
	    strcmp(img->manifest.media_type, OCI_MT_DOCKER_MANIFEST))
		ret = anole_error_code(EOPNOTSUPP, "%s: manifest media type %s is not supported",
				       dir, img->manifest.media_type);
	if (!ret)
		ret = oci_read_blob(dir, &img->manifest, &buf);
	if (!ret && !(m = load_json(img->manifest.digest, buf.buf, buf.len)))
		ret = -EBADMSG;
	if (!ret)
		ret = parse_descriptor(img->manifest.digest, json_object_get(m, "config"), &img->config);
	layers = ret ? NULL : json_object_get(m, "layers");
	if (!ret && !json_is_array(layers))
		ret = anole_error_code(EBADMSG, "%s: manifest %s has no layers array", dir,
				       img->manifest.digest);
	if (!ret) {
		img->layers = xcalloc(json_array_size(layers) + 1, sizeof(*img->layers));
		json_array_foreach(layers, i, l) {
			if ((ret = parse_descriptor(img->manifest.digest, l, &img->layers[i])))
				break;
			img->nlayers++;
			if (!strcmp(img->layers[i].media_type, ANOLE_MT_METADATA))
				img->metadata_layer = (int)i;
		}
	}
	img->accelerated = !ret && img->metadata_layer >= 0;
	if (!ret) {
		struct strbuf cfg = STRBUF_INIT;

		ret = oci_read_blob(dir, &img->config, &cfg);   /* verified, even if unused */
		strbuf_release(&cfg);
	}
	json_decref(m);
	strbuf_release(&buf);
	if (ret)
		oci_close(img);
	return ret;
}

void oci_close(struct oci_image *img)
{
	oci_descriptor_free(&img->manifest);
	oci_descriptor_free(&img->config);
	for (unsigned i = 0; img->layers && i < img->nlayers; i++)
		oci_descriptor_free(&img->layers[i]);
	free(img->layers);
	free(img->dir);
	free(img->tag);
	memset(img, 0, sizeof(*img));
}

int oci_layout_init(const char *dir)
{
	const char *sub[] = { "", "/blobs", "/blobs/sha256" };

	for (size_t i = 0; i < ARRAY_SIZE(sub); i++) {
		struct strbuf p = STRBUF_INIT;
		int ret = 0;

		strbuf_addf(&p, "%s%s", dir, sub[i]);
		if (mkdir(p.buf, 0755) < 0 && errno != EEXIST)
			ret = anole_error(errno, "cannot create %s", p.buf);
		strbuf_release(&p);
		if (ret)
			return ret;
	}
	return 0;
}

/* Write bytes as a blob named by their digest; returns the descriptor. */
int oci_put_blob(const char *dir, const char *media_type, const void *data, size_t len,
		    struct oci_descriptor *d)
{
	struct anole_output out;
	uint8_t dg[32];
	char hex[65];
	char *path;
	int ret;

	anole_digest(ANOLE_DIGEST_SHA256, data, len, dg);
	anole_hex(dg, 32, hex);
	d->media_type = xstrdup(media_type);
	d->digest = xmalloc(72);
	snprintf(d->digest, 72, "sha256:%s", hex);
	d->size = len;
	path = oci_blob_path(dir, d->digest);
	ret = anole_output_open(&out, path);
	if (!ret && (ret = write_full(out.fd, data, len))) {
		anole_output_abort(&out);
		ret = anole_error(-ret, "cannot write %s", path);
	} else if (!ret) {
		ret = anole_output_commit(&out);
	}
	free(path);
	return ret;
}

/* Copy a file into the layout under its digest (the metadata image). */
int oci_put_file_blob(const char *dir, const char *media_type, const char *file,
			 struct oci_descriptor *d)
{
	struct strbuf data = STRBUF_INIT;
	struct stat st;
	int fd = open(file, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0)
		return anole_error(errno, "cannot read %s", file);
	if (fstat(fd, &st) < 0) {
		close(fd);
		return anole_error(errno, "cannot stat %s", file);
	}
	strbuf_grow(&data, (size_t)st.st_size);
	ret = pread_full(fd, data.buf, (size_t)st.st_size, 0);
	close(fd);
	if (ret)
		return anole_error(-ret, "cannot read %s", file);
	strbuf_setlen(&data, (size_t)st.st_size);
	ret = oci_put_blob(dir, media_type, data.buf, data.len, d);
	strbuf_release(&data);
	return ret;
}

json_t *oci_descriptor_json(const struct oci_descriptor *d)
{
	return json_pack("{s:s, s:s, s:I}", "mediaType", d->media_type, "digest", d->digest,
			 "size", (json_int_t)d->size);
}

int oci_write_file(const char *dir, const char *name, const char *text)
{
	struct anole_output out;
	struct strbuf p = STRBUF_INIT;
	int ret;

	strbuf_addf(&p, "%s/%s", dir, name);
	ret = anole_output_open(&out, p.buf);
	if (!ret && (ret = write_full(out.fd, text, strlen(text)))) {
		anole_output_abort(&out);
		ret = anole_error(-ret, "cannot write %s", p.buf);
	} else if (!ret) {
		ret = anole_output_commit(&out);
	}
	strbuf_release(&p);
	return ret;
}

/*
 * How long a writer waits for another's index.json update. An update holds
 * the lock for one read, one JSON edit and one rename (milliseconds, even
 * on a loaded machine); a minute means the holder is stuck, not busy.
 */
#define INDEX_LOCK_WAIT_MS 60000

static int index_lock_wait_ms(void)
{
	const char *env = getenv("ANOLE_INDEX_LOCK_WAIT_MS");   /* tests shorten it */
	char *end;
	long v = env ? strtol(env, &end, 10) : -1;

	return env && *env && !*end && v >= 0 && v <= INDEX_LOCK_WAIT_MS ? (int)v : INDEX_LOCK_WAIT_MS;
}

/* The lock file beside index.json: index.json itself is replaced by rename,
 * so a lock on it would be on a file that is no longer the index. */
static int lock_index(const char *dir, int *fd_out)
{
	struct strbuf p = STRBUF_INIT;
	int fd, ret = 0, wait_ms = index_lock_wait_ms();

	strbuf_addf(&p, "%s/.anole-index.lock", dir);
	fd = open(p.buf, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		ret = anole_error(errno, "cannot open the index lock %s", p.buf);
		goto out;
	}
	for (int waited = 0; flock(fd, LOCK_EX | LOCK_NB) < 0; waited += 10) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= wait_ms) {
			ret = errno == EWOULDBLOCK ?
			      anole_error_code(EBUSY, "%s/index.json: another process has held its lock (%s) for %.1f s",
					       dir, p.buf, wait_ms / 1000.0) :
			      anole_error(errno, "cannot lock %s", p.buf);
			close(fd);
			fd = -1;
			goto out;
		}
		usleep(10000);
	}
	*fd_out = fd;
out:
	strbuf_release(&p);
	return ret;
}

/*
 * index.json of the destination: keep other images, replace this tag.
 * Concurrent writers (two converts or pulls into one layout) each do a
 * read-modify-write, so the whole of it runs under the layout's lock and
 * ends with an atomic rename: readers see the old index or the new one.
 */
int oci_layout_set_tag(const char *dir, const char *tag, const struct oci_descriptor *manifest)
{
	struct strbuf p = STRBUF_INIT;
	json_t *index, *manifests, *m, *desc;
	json_error_t err;
	size_t i;
	char *text;
	int lock_fd = -1, ret;

	ret = lock_index(dir, &lock_fd);
	if (ret)
		return ret;
	strbuf_addf(&p, "%s/index.json", dir);
	index = json_load_file(p.buf, 0, &err);
	if (!index && access(p.buf, F_OK) == 0) {
		ret = anole_error_code(EBADMSG, "%s: invalid JSON: %s (line %d); not replacing it",
				       p.buf, err.text, err.line);
		goto out;
	}
	if (index && !json_is_array(json_object_get(index, "manifests"))) {
		ret = anole_error_code(EBADMSG, "%s has no manifests array; not replacing it", p.buf);
		goto out;
	}
	if (!index)
		index = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", OCI_MT_INDEX,
				  "manifests");
	manifests = json_object_get(index, "manifests");
	json_array_foreach(manifests, i, m) {
		const char *name = json_string_value(json_object_get(json_object_get(m, "annotations"),
								     "org.opencontainers.image.ref.name"));

		if ((tag && name && !strcmp(name, tag)) || (!tag && !name)) {
			json_array_remove(manifests, i);
			i--;
		}
	}
	desc = oci_descriptor_json(manifest);
	if (tag)
		json_object_set_new(desc, "annotations",
				    json_pack("{s:s}", "org.opencontainers.image.ref.name", tag));
	json_array_append_new(manifests, desc);
	text = json_dumps(index, JSON_INDENT(2));
	ret = oci_write_file(dir, "index.json", text);
	free(text);
out:
	json_decref(index);
	strbuf_release(&p);
	close(lock_fd);         /* releases the lock, after the rename */
	return ret;
}

/* Make a blob of a local layout present in another (hard link, else copy). */
int oci_share_blob(const char *from_dir, const char *to_dir, const char *digest)
{
	char *from = oci_blob_path(from_dir, digest), *to = oci_blob_path(to_dir, digest);
	struct stat st;
	int ret = 0;

	if (stat(to, &st) < 0 && link(from, to) < 0) {
		int in = open(from, O_RDONLY | O_CLOEXEC);
		struct anole_output out;

		if (in < 0 || fstat(in, &st) < 0) {
			ret = anole_error(errno, "cannot read %s", from);
		} else if (!(ret = anole_output_open(&out, to))) {
			ret = anole_copy_range(in, 0, out.fd, 0, (uint64_t)st.st_size);
			if (ret) {
				anole_output_abort(&out);
				ret = anole_error(-ret, "cannot copy %s", from);
			} else {
				ret = anole_output_commit(&out);
			}
		}
		if (in >= 0)
			close(in);
	}
	free(from);
	free(to);
	return ret;
}

char *anole_sig_tag(const char *manifest_digest)
{
	struct strbuf t = STRBUF_INIT;

	strbuf_addf(&t, "sha256-%s.sig", manifest_digest + 7);
	return strbuf_detach(&t, NULL);
}

bool anole_is_sig_tag(const char *tag)
{
	/* "sha256-" + 64 hex digits + ".sig" */
	return strlen(tag) == 75 && !strncmp(tag, "sha256-", 7) && !strcmp(tag + 71, ".sig");
}
