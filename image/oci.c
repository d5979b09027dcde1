// SPDX-License-Identifier: Apache-2.0
/*
 * OCI image layouts in and out. Every blob read from a layout is checked
 * against its digest and size before it is trusted; the accelerated image
 * is written blobs first, manifest next, index.json last, so an interrupted
 * conversion never leaves an index naming missing blobs.
 */
#include "anole/oci.h"
#include "anole/blobstore.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/blobmeta.h"
#include "anole/fileio.h"
#include "anole/image.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MT_OCI_MANIFEST   "application/vnd.oci.image.manifest.v1+json"
#define MT_OCI_INDEX      "application/vnd.oci.image.index.v1+json"
#define MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define MT_DOCKER_LIST    "application/vnd.docker.distribution.manifest.list.v2+json"
#define MAX_JSON          (16u << 20)

int oci_parse_ref(const char *ref, char **dir, char **tag)
{
	const char *s = !strncmp(ref, "oci:", 4) ? ref + 4 : ref;
	const char *colon = strrchr(s, ':');

	if (!*s)
		return anole_error_code(EINVAL, "'%s': no directory in the image reference", ref);
	/* a colon after the last slash separates the tag */
	if (colon && !strchr(colon, '/') && colon[1]) {
		*dir = xstrndup(s, (size_t)(colon - s));
		*tag = xstrdup(colon + 1);
	} else {
		*dir = xstrdup(s);
		*tag = NULL;
	}
	return 0;
}

static bool valid_digest(const char *d)
{
	if (!d || strncmp(d, "sha256:", 7) || strlen(d) != 71)
		return false;
	for (const char *p = d + 7; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

char *oci_blob_path(const char *dir, const char *digest)
{
	struct strbuf p = STRBUF_INIT;

	strbuf_addf(&p, "%s/blobs/sha256/%s", dir, digest + 7);
	return strbuf_detach(&p, NULL);
}

/* Read a whole blob and check digest and size. */
static int read_blob(const char *dir, const struct oci_descriptor *d, struct strbuf *out)
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

	if (!json_is_object(j) || !mt || !valid_digest(dg) || !json_is_integer(size) ||
	    json_integer_value(size) < 0)
		return anole_error_code(EBADMSG, "%s: malformed descriptor (mediaType, sha256 digest and size are needed)",
					where);
	d->media_type = xstrdup(mt);
	d->digest = xstrdup(dg);
	d->size = (uint64_t)json_integer_value(size);
	return 0;
}

static void free_descriptor(struct oci_descriptor *d)
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

/* Pick the descriptor for `platform` ("os/arch[/variant]") in an index. */
static int pick_platform(const char *dir, json_t *manifests, const char *platform,
			 struct oci_descriptor *d)
{
	char want[160];
	const char *slash;
	bool want_no_variant;
	size_t i;
	json_t *m;

	snprintf(want, sizeof(want), "%s", platform ? platform : "");
	if (!platform)
		snprintf(want, sizeof(want), "linux/%s", host_arch());
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
			return parse_descriptor(dir, m, d);
	}
	return anole_error_code(ENOENT, "%s: no image for platform %s in the index", dir, want);
}

static int resolve_index(const char *dir, struct oci_descriptor *d, const char *platform)
{
	for (int depth = 0; depth < 4; depth++) {
		struct strbuf buf = STRBUF_INIT;
		struct oci_descriptor next = { 0 };
		json_t *j;
		int ret;

		if (strcmp(d->media_type, MT_OCI_INDEX) && strcmp(d->media_type, MT_DOCKER_LIST))
			return 0;
		ret = read_blob(dir, d, &buf);
		j = ret ? NULL : load_json(d->digest, buf.buf, buf.len);
		strbuf_release(&buf);
		if (!j)
			return ret ? ret : -EBADMSG;
		ret = pick_platform(dir, json_object_get(j, "manifests"), platform, &next);
		json_decref(j);
		if (ret)
			return ret;
		free_descriptor(d);
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
	if (!ret && strcmp(img->manifest.media_type, MT_OCI_MANIFEST) &&
	    strcmp(img->manifest.media_type, MT_DOCKER_MANIFEST))
		ret = anole_error_code(EOPNOTSUPP, "%s: manifest media type %s is not supported",
				       dir, img->manifest.media_type);
	if (!ret)
		ret = read_blob(dir, &img->manifest, &buf);
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

		ret = read_blob(dir, &img->config, &cfg);   /* verified, even if unused */
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
	free_descriptor(&img->manifest);
	free_descriptor(&img->config);
	for (unsigned i = 0; img->layers && i < img->nlayers; i++)
		free_descriptor(&img->layers[i]);
	free(img->layers);
	free(img->dir);
	free(img->tag);
	memset(img, 0, sizeof(*img));
}

/* ---- conversion ---- */

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
static int put_blob(const char *dir, const char *media_type, const void *data, size_t len,
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
static int put_file_blob(const char *dir, const char *media_type, const char *file,
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
	ret = put_blob(dir, media_type, data.buf, data.len, d);
	strbuf_release(&data);
	return ret;
}

static json_t *descriptor_json(const struct oci_descriptor *d)
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

/* index.json of the destination: keep other images, replace this tag. */
static int update_index(const char *dir, const char *tag, const struct oci_descriptor *manifest)
{
	struct strbuf p = STRBUF_INIT;
	json_t *index, *manifests, *m, *desc;
	json_error_t err;
	size_t i;
	char *text;
	int ret;

	strbuf_addf(&p, "%s/index.json", dir);
	index = json_load_file(p.buf, 0, &err);
	strbuf_release(&p);
	if (!index || !json_is_array(json_object_get(index, "manifests"))) {
		json_decref(index);
		index = json_pack("{s:i, s:s, s:[]}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX,
				  "manifests");
	}
	manifests = json_object_get(index, "manifests");
	json_array_foreach(manifests, i, m) {
		const char *name = json_string_value(json_object_get(json_object_get(m, "annotations"),
								     "org.opencontainers.image.ref.name"));

		if ((tag && name && !strcmp(name, tag)) || (!tag && !name)) {
			json_array_remove(manifests, i);
			i--;
		}
	}
	desc = descriptor_json(manifest);
	if (tag)
		json_object_set_new(desc, "annotations",
				    json_pack("{s:s}", "org.opencontainers.image.ref.name", tag));
	json_array_append_new(manifests, desc);
	text = json_dumps(index, JSON_INDENT(2));
	json_decref(index);
	ret = oci_write_file(dir, "index.json", text);
	free(text);
	return ret;
}

struct anole_blobstore;
static int convert_local(const struct oci_convert_opts *o, struct anole_blobstore *src_bs,
			 bool scratch_dest, struct strbuf *out);

static char *temp_layout(void)
{
	const char *base = getenv("TMPDIR");
	struct strbuf p = STRBUF_INIT;
	char *dir;

	strbuf_addf(&p, "%s/anole-oci.XXXXXX", base && *base ? base : "/var/tmp");
	dir = strbuf_detach(&p, NULL);
	if (!mkdtemp(dir)) {
		anole_error(errno, "cannot create a temporary directory %s", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

static void remove_tree(const char *dir)
{
	char *argv[] = { "rm", "-rf", "--", (char *)dir, NULL };
	pid_t pid = fork();

	if (pid == 0) {
		execvp("rm", argv);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/*
 * Registry ends go through a temporary layout: pull SRC into it, or
 * convert into it and push DEST from it (blobs the registry has are not
 * uploaded again).
 */
int oci_convert(const struct oci_convert_opts *o, struct strbuf *out)
{
	struct oci_convert_opts local = *o;
	struct strbuf ref_src = STRBUF_INIT, ref_dst = STRBUF_INIT;
	char *tsrc = NULL, *tdst = NULL;
	struct anole_blobstore *src_bs = NULL;
	uint64_t pushed = 0;
	int ret = 0;

	if (!strncmp(o->src, "docker://", 9)) {
		char *store = NULL, *reference = NULL;

		if (!(tsrc = temp_layout()))
			return -EIO;
		strbuf_addf(&ref_src, "oci:%s:src", tsrc);
		/* manifests and config only: the layers stream into the build */
		ret = oci_pull_manifests(o->src, ref_src.buf, o->platform, o->store);
		if (!ret)
			ret = oci_parse_registry_ref(o->src, &store, &reference);
		if (!ret)
			ret = anole_blobstore_open(&src_bs, store, o->store);
		free(store);
		free(reference);
		local.src = ref_src.buf;
	} else if (!strncmp(o->src, "docker-archive:", 15) || !strncmp(o->src, "oci-archive:", 12)) {
		char *ref = NULL;

		if (!(tsrc = temp_layout()))
			return -EIO;
		ret = oci_import_archive(o->src, tsrc, &ref);
		if (ref)
			strbuf_addstr(&ref_src, ref);
		free(ref);
		local.src = ref_src.buf;
	}
	if (!ret && !strncmp(o->dest, "docker://", 9)) {
		if (!(tdst = temp_layout()))
			ret = -EIO;
		strbuf_addf(&ref_dst, "oci:%s:dst", tdst ? tdst : "");
		local.dest = ref_dst.buf;
	}
	if (!ret)
		ret = convert_local(&local, src_bs, tdst != NULL, out);
	if (ret == -EBADMSG && src_bs) {
		/*
		 * A streamed layer did not match its digest. Range reads cannot
		 * be checked one by one, so a mirror serving bad bytes is only
		 * found out at the layer's end; fetch the layers whole, each
		 * source checked (a bad one passed over), and convert again.
		 */
		anole_warn("fetching the layers of %s whole, checked source by source", o->src);
		ret = oci_pull(o->src, ref_src.buf, o->platform, o->store);
		if (!ret)
			ret = convert_local(&local, NULL, tdst != NULL, out);
	}
	if (!ret && !o->json && (tsrc || tdst)) {
		/* name what the user named, not the temporary layouts */
		struct strbuf msg = STRBUF_INIT;
		const char *arrow = strstr(out->buf, " -> "), *colon = arrow ? strstr(arrow, ": ") : NULL;

		if (colon) {
			strbuf_addf(&msg, "%s -> %s%s", o->src, o->dest, colon);
			strbuf_reset(out);
			strbuf_addstr(out, msg.buf);
		}
		strbuf_release(&msg);
	}
	if (!ret && tdst) {
		ret = oci_push_from(ref_dst.buf, o->dest, o->store, &pushed, o->chunk_dict);
		if (!ret && !o->json)
			strbuf_addf(out, "pushed %s: %llu bytes uploaded\n", o->dest,
				    (unsigned long long)pushed);
		else if (!ret && out->len && out->buf[out->len - 2] == '}') {
			strbuf_setlen(out, out->len - 2);
			strbuf_addf(out, ",\"pushed\":\"%s\",\"bytes_pushed\":%llu}\n", o->dest,
				    (unsigned long long)pushed);
		}
	}
	anole_blobstore_close(src_bs);
	if (tsrc)
		remove_tree(tsrc);
	if (tdst)
		remove_tree(tdst);
	free(tsrc);
	free(tdst);
	strbuf_release(&ref_src);
	strbuf_release(&ref_dst);
	return ret;
}

/* Make a blob of a local layout present in another (hard link, else copy). */
static int share_blob(const char *from_dir, const char *to_dir, const char *digest)
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

/* The chunk tables of a previous accelerated image (its metadata layer). */
static int load_chunk_dict(const struct oci_convert_opts *o, const char *ddir,
			   struct anole_blobmeta *dict)
{
	char *meta_path = NULL, *ldir = NULL, *ltag = NULL, *store = NULL, *tmp = NULL;
	struct oci_image img = { 0 };
	int fd, ret;

	if (!strncmp(o->chunk_dict, "docker://", 9)) {
		if (!(tmp = temp_layout()))
			return -EIO;
		ret = oci_fetch_metadata(o->chunk_dict, tmp, o->store, &meta_path, &store);
	} else {
		ret = oci_parse_ref(o->chunk_dict, &ldir, &ltag);
		if (!ret)
			ret = oci_open(&img, ldir, ltag, o->platform);
		if (!ret && !img.accelerated)
			ret = anole_error_code(EINVAL, "chunk dictionary %s is not an anole image",
					       o->chunk_dict);
		if (!ret)
			meta_path = oci_blob_path(ldir, img.layers[img.metadata_layer].digest);
	}
	fd = ret ? -1 : open(meta_path, O_RDONLY | O_CLOEXEC);
	if (!ret && fd < 0)
		ret = anole_error(errno, "cannot read %s", meta_path);
	if (!ret) {
		ret = anole_blobmeta_read(fd, meta_path, dict);
		if (ret == -ENOENT)
			ret = anole_error_code(EINVAL, "chunk dictionary %s has no chunk table",
					       o->chunk_dict);
	}
	if (fd >= 0)
		close(fd);
	/* a local dictionary's blobs join the destination layout */
	for (unsigned i = 0; !ret && ldir && i < dict->nblobs; i++)
		ret = share_blob(ldir, ddir, dict->blobs[i].name);
	oci_close(&img);
	if (tmp)
		remove_tree(tmp);
	free(tmp);
	free(meta_path);
	free(ldir);
	free(ltag);
	free(store);
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

/* scratch_dest: a temporary layout, pushed and removed (nothing to flush) */
static int convert_local(const struct oci_convert_opts *o, struct anole_blobstore *src_bs,
			 bool scratch_dest, struct strbuf *out)
{
	struct anole_layer_stream *streams = NULL;
	struct layer_fetch *fetches = NULL;
	const char **digests = NULL;
	uint64_t *sizes = NULL;
	struct oci_image src = { 0 };
	struct anole_build_opts b = { 0 };
	struct anole_build_stats st = { 0 };
	struct oci_descriptor meta = { 0 }, manifest = { 0 };
	struct anole_blobmeta dict = { 0 };
	char *sdir = NULL, *stag = NULL, *ddir = NULL, *dtag = NULL, *blob_dir = NULL;
	char *tmp_img = NULL, **paths = NULL;
	json_t *mj = NULL, *layers;
	char *text = NULL;
	int ret;

	ret = oci_parse_ref(o->src, &sdir, &stag);
	if (!ret)
		ret = oci_parse_ref(o->dest, &ddir, &dtag);
	if (!ret)
		ret = oci_open(&src, sdir, stag, o->platform);
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
		if (src_bs && access(paths[i], F_OK) < 0 && errno == ENOENT) {
			/* still in the registry: streamed into the build */
			fetches[i] = (struct layer_fetch){ src_bs, digests[i], sizes[i], NULL, false };
			streams[i] = (struct anole_layer_stream){ layer_fetch_read, &fetches[i] };
		}
	}
	if (!ret)
		ret = oci_layout_init(ddir);
	if (!ret && o->chunk_dict)
		ret = load_chunk_dict(o, ddir, &dict);
	if (!ret) {
		const char **names = xcalloc(src.nlayers + 1, sizeof(*names));

		blob_dir = xmalloc(strlen(ddir) + 16);
		sprintf(blob_dir, "%s/blobs/sha256", ddir);
		tmp_img = xmalloc(strlen(ddir) + 32);
		sprintf(tmp_img, "%s/.anole-metadata.img", ddir);
		for (unsigned i = 0; i < src.nlayers; i++)
			names[i] = src.layers[i].digest;
		b.output = tmp_img;
		b.layers = (const char *const *)paths;
		b.layer_names = names;
		b.layer_streams = streams;
		b.layer_digests = digests;
		b.layer_sizes = sizes;
		b.nlayers = src.nlayers;
		b.blob_dir = blob_dir;
		b.chunk_size = o->chunk_size;
		b.compress = o->compress;
		b.chunk_digest = o->chunk_digest;
		b.threads = o->threads;
		b.no_sync = scratch_dest;
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
		ret = anole_image_build(&b, &st);
		free(names);
	}
	if (!ret)
		ret = put_file_blob(ddir, ANOLE_MT_METADATA, tmp_img, &meta);
	if (!ret) {             /* the image config, unchanged */
		struct strbuf cfg = STRBUF_INIT;
		struct oci_descriptor copy = { 0 };

		ret = read_blob(sdir, &src.config, &cfg);
		if (!ret)
			ret = put_blob(ddir, src.config.media_type, cfg.buf, cfg.len, &copy);
		free_descriptor(&copy);
		strbuf_release(&cfg);
	}
	if (tmp_img)
		unlink(tmp_img);
	if (ret)
		goto out;

	/* the manifest: blob layers in device order, the metadata layer last */
	mj = json_pack("{s:i, s:s, s:o, s:[], s:{s:s}}", "schemaVersion", 2, "mediaType",
		       MT_OCI_MANIFEST, "config", descriptor_json(&src.config), "layers",
		       "annotations", ANOLE_ANN_SOURCE, src.manifest.digest);
	layers = json_object_get(mj, "layers");
	for (unsigned i = 0; i < st.nblobs; i++) {
		struct oci_descriptor d = { (char *)ANOLE_MT_BLOB, st.blobs[i].name,
					    st.blobs[i].compressed_size };
		json_t *dj = descriptor_json(&d);
		char dev[16], usize[32];

		snprintf(dev, sizeof(dev), "%u", st.blobs[i].device_id);
		snprintf(usize, sizeof(usize), "%llu", (unsigned long long)st.blobs[i].uncompressed_size);
		json_object_set_new(dj, "annotations", json_pack("{s:s, s:s}", ANOLE_ANN_DEVICE, dev,
								 ANOLE_ANN_USIZE, usize));
		json_array_append_new(layers, dj);
	}
	json_array_append_new(layers, descriptor_json(&meta));
	text = json_dumps(mj, JSON_COMPACT);
	ret = put_blob(ddir, MT_OCI_MANIFEST, text, strlen(text), &manifest);
	if (!ret)
		ret = oci_write_file(ddir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	if (!ret)
		ret = update_index(ddir, dtag, &manifest);
	if (ret)
		goto out;
	if (o->json) {
		strbuf_addf(out, "{\"source\":\"%s\",\"manifest\":\"%s\",\"metadata\":\"%s\","
			    "\"metadata_bytes\":%llu,\"blobs\":%u,\"blob_bytes\":%llu,"
			    "\"source_layers\":%u,\"chunks\":%llu,\"chunks_deduped\":%llu}\n",
			    src.manifest.digest, manifest.digest, meta.digest,
			    (unsigned long long)meta.size, st.nblobs,
			    (unsigned long long)st.blob_bytes, src.nlayers,
			    (unsigned long long)st.chunks, (unsigned long long)st.chunks_deduped);
	} else {
		strbuf_addf(out, "%s -> %s: manifest %s, metadata %llu bytes, %u blob%s (%llu bytes) from %u layer%s\n",
			    o->src, o->dest, manifest.digest, (unsigned long long)meta.size, st.nblobs,
			    st.nblobs == 1 ? "" : "s", (unsigned long long)st.blob_bytes, src.nlayers,
			    src.nlayers == 1 ? "" : "s");
	}
out:
	anole_blobmeta_free(&dict);
	free(text);
	json_decref(mj);
	free_descriptor(&meta);
	free_descriptor(&manifest);
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
	free(sdir);
	free(stag);
	free(ddir);
	free(dtag);
	free(blob_dir);
	free(tmp_img);
	return ret;
}
