// SPDX-License-Identifier: Apache-2.0
/*
 * Image tarballs as conversion sources: `oci-archive:FILE[:TAG]` (a tar of
 * an OCI layout) and `docker-archive:FILE[:TAG]` (`docker save`). The tar
 * is untrusted: only regular files and directories are extracted, below
 * the target directory, with every path checked; a docker archive is then
 * rewritten as an OCI layout (blobs named by their digests).
 */
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/oci.h"
#include "anole/ref.h"
#include "anole/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static bool safe_path(const char *p)
{
	const char *s = p;

	if (!*p || *p == '/')
		return false;
	while (*s) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if ((n == 2 && !strncmp(s, "..", 2)) || n > 255)
			return false;
		s += n;
		while (*s == '/')
			s++;
	}
	return true;
}

static int make_parents(const char *root, const char *rel)
{
	char *p = xstrdup(rel);
	int ret = 0;

	for (char *s = strchr(p, '/'); s && !ret; s = strchr(s + 1, '/')) {
		struct strbuf d = STRBUF_INIT;

		*s = '\0';
		strbuf_addf(&d, "%s/%s", root, p);
		if (mkdir(d.buf, 0755) < 0 && errno != EEXIST)
			ret = anole_error(errno, "cannot create %s", d.buf);
		*s = '/';
		strbuf_release(&d);
	}
	free(p);
	return ret;
}

static int extract(const char *file, const char *dir)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char buf[1 << 16];
	int r, ret = 0;

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	if (archive_read_open_filename(a, file, 1 << 20) != ARCHIVE_OK) {
		ret = anole_error_code(EIO, "cannot read %s: %s", file, archive_error_string(a));
		archive_read_free(a);
		return ret;
	}
	while (!ret && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		const char *path = archive_entry_pathname(e);
		struct strbuf out = STRBUF_INIT;
		int fd;

		if (r < ARCHIVE_WARN) {
			ret = anole_error_code(EIO, "%s: malformed tar: %s", file, archive_error_string(a));
			break;
		}
		if (path && !strncmp(path, "./", 2))
			path += 2;
		if (!path || !*path || archive_entry_filetype(e) == AE_IFDIR)
			continue;
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;       /* links and devices have no business in an image archive */
		if (!safe_path(path)) {
			ret = anole_error_code(EINVAL, "%s: entry '%s' is outside the archive", file, path);
			break;
		}
		ret = make_parents(dir, path);
		strbuf_addf(&out, "%s/%s", dir, path);
		fd = ret ? -1 : open(out.buf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (!ret && fd < 0)
			ret = anole_error(errno, "%s: cannot extract '%s'", file, path);
		while (!ret) {
			la_ssize_t n = archive_read_data(a, buf, sizeof(buf));

			if (n < 0)
				ret = anole_error_code(EIO, "%s: '%s': %s", file, path, archive_error_string(a));
			if (n <= 0)
				break;
			ret = write_full(fd, buf, (size_t)n);
		}
		if (fd >= 0)
			close(fd);
		strbuf_release(&out);
	}
	archive_read_free(a);
	return ret;
}

static int digest_of_file(const char *path, char out[72], uint64_t *size)
{
	uint8_t d[32];
	char hex[65];
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret;

	if (fd < 0 || fstat(fd, &st) < 0) {
		ret = anole_error(errno, "cannot read %s", path);
		if (fd >= 0)
			close(fd);
		return ret;
	}
	ret = anole_digest_file(fd, (uint64_t)st.st_size, ANOLE_DIGEST_SHA256, d);
	close(fd);
	anole_hex(d, 32, hex);
	snprintf(out, 72, "sha256:%s", hex);
	*size = (uint64_t)st.st_size;
	return ret;
}

/* Move a file of the extracted archive to blobs/sha256/<digest>. */
static int adopt(const char *dir, const char *rel, char digest[72], uint64_t *size)
{
	struct strbuf from = STRBUF_INIT;
	char *to;
	int ret;

	if (!safe_path(rel))
		return anole_error_code(EINVAL, "docker archive names '%s' outside itself", rel);
	strbuf_addf(&from, "%s/%s", dir, rel);
	ret = digest_of_file(from.buf, digest, size);
	to = ret ? NULL : oci_blob_path(dir, digest);
	if (!ret && rename(from.buf, to) < 0 && errno != EEXIST) {
		struct stat st;

		if (stat(to, &st) < 0)
			ret = anole_error(errno, "cannot move %s", from.buf);
	}
	free(to);
	strbuf_release(&from);
	return ret;
}

static bool gzipped(const char *path)
{
	unsigned char m[2] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool gz = fd >= 0 && read(fd, m, 2) == 2 && m[0] == 0x1f && m[1] == 0x8b;

	if (fd >= 0)
		close(fd);
	return gz;
}

static int docker_to_layout(const char *file, const char *dir, const char *tag)
{
	struct strbuf p = STRBUF_INIT;
	json_t *man = NULL, *entry = NULL, *e, *layers, *l, *oman, *olayers;
	json_error_t err;
	struct oci_descriptor mdesc = { 0 };
	char cdigest[72];
	uint64_t csize = 0;
	size_t i;
	char *text = NULL;
	int ret = 0;

	strbuf_addf(&p, "%s/manifest.json", dir);
	man = json_load_file(p.buf, 0, &err);
	strbuf_release(&p);
	if (!json_is_array(man)) {
		json_decref(man);
		return anole_error_code(EBADMSG, "%s: no valid manifest.json (a docker-archive?)", file);
	}
	json_array_foreach(man, i, e) {
		json_t *tags = json_object_get(e, "RepoTags"), *t;
		size_t k;

		if (!tag && json_array_size(man) == 1)
			entry = e;
		json_array_foreach(tags, k, t)
			if (tag && json_string_value(t) && (!strcmp(json_string_value(t), tag) ||
			    (strrchr(json_string_value(t), ':') &&
			     !strcmp(strrchr(json_string_value(t), ':') + 1, tag))))
				entry = e;
	}
	if (!entry) {
		json_decref(man);
		return anole_error_code(ENOENT, "%s: no image%s%s in the archive", file,
					tag ? " tagged " : "", tag ? tag : " (name one with :TAG)");
	}
	ret = oci_layout_init(dir);
	if (!ret)
		ret = adopt(dir, json_string_value(json_object_get(entry, "Config")) ?: "", cdigest, &csize);
	oman = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:[]}", "schemaVersion", 2, "mediaType",
			 OCI_MT_MANIFEST, "config", "mediaType",
			 "application/vnd.oci.image.config.v1+json", "digest", cdigest, "size",
			 (json_int_t)csize, "layers");
	olayers = json_object_get(oman, "layers");
	layers = json_object_get(entry, "Layers");
	json_array_foreach(layers, i, l) {
		char ld[72];
		uint64_t lsize;
		const char *rel = json_string_value(l);
		struct strbuf lp = STRBUF_INIT;
		bool gz;

		if (ret)
			break;
		strbuf_addf(&lp, "%s/%s", dir, rel ? rel : "");
		gz = rel && safe_path(rel) && gzipped(lp.buf);
		strbuf_release(&lp);
		ret = adopt(dir, rel ? rel : "", ld, &lsize);
		if (!ret)
			json_array_append_new(olayers, json_pack("{s:s, s:s, s:I}", "mediaType",
				gz ? "application/vnd.oci.image.layer.v1.tar+gzip"
				   : "application/vnd.oci.image.layer.v1.tar",
				"digest", ld, "size", (json_int_t)lsize));
	}
	if (!ret) {
		text = json_dumps(oman, JSON_COMPACT);
		ret = oci_put_blob(dir, OCI_MT_MANIFEST, text, strlen(text), &mdesc);
	}
	if (!ret) {
		/* the layout written is this image alone, whatever index.json
		 * the archive brought (Docker 25 adds one) */
		struct strbuf idx = STRBUF_INIT;

		strbuf_addf(&idx, "%s/index.json", dir);
		if (unlink(idx.buf) < 0 && errno != ENOENT)
			ret = anole_error(errno, "cannot replace %s", idx.buf);
		strbuf_release(&idx);
	}
	if (!ret)
		ret = oci_layout_set_tag(dir, "src", &mdesc);
	if (!ret)
		ret = oci_write_file(dir, "oci-layout", "{\"imageLayoutVersion\":\"1.0.0\"}");
	oci_descriptor_free(&mdesc);
	free(text);
	json_decref(oman);
	json_decref(man);
	return ret;
}

int oci_import_archive(const struct anole_ref *ref, const char *dir, char **tag)
{
	bool docker = ref->transport == ANOLE_REF_DOCKER_ARCHIVE;
	int ret;

	*tag = NULL;
	if (!docker && ref->transport != ANOLE_REF_OCI_ARCHIVE)
		return anole_error_code(EINVAL, "%s: not an oci-archive: or docker-archive: reference",
					ref->path ? ref->path : "?");
	ret = extract(ref->path, dir);
	if (!ret && docker)
		ret = docker_to_layout(ref->path, dir, ref->tag);
	/* a docker archive becomes a layout of one image, tagged "src" */
	if (!ret && (docker || ref->tag))
		*tag = xstrdup(docker ? "src" : ref->tag);
	return ret;
}
