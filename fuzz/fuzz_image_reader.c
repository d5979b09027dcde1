// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the EROFS reader: open the input as an image in
 * memory, run the same full walk as `anole image check` (every inode,
 * dirent, xattr and data byte: compressed extents are mapped and decoded),
 * then inspect the superblock and the root in text and JSON, and read
 * files of the root from inside their extents. Any crash, sanitizer report
 * or hang is a bug.
 */
#include "reader/internal.h"


#include "anole/error.h"
#include "anole/progress.h"
#include "anole/strbuf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque) { }

/* ---- a strict little JSON checker: inspect --json must always parse */

static const char *json_value(const char *p, int depth);

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
		p++;
	return p;
}

static const char *json_string(const char *p)
{
	if (*p++ != '"')
		return NULL;
	while (*p != '"') {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20)
			return NULL;
		if (c == '\\') {
			p++;
			if (*p == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", p[i]) || !p[i])
						return NULL;
				p += 4;
			} else if (!*p || !strchr("\"\\/bfnrt", *p)) {
				return NULL;
			}
		} else if (c >= 0x80) {
			/* multi-byte UTF-8: lead byte and continuation bytes */
			int n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : -1;

			if (n < 0 || c > 0xf4)
				return NULL;
			for (int i = 1; i <= n; i++)
				if (((unsigned char)p[i] & 0xc0) != 0x80)
					return NULL;
			p += n;
		}
		p++;
	}
	return p + 1;
}

static const char *json_list(const char *p, int depth, char close, bool members)
{
	p = json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (members) {
			p = json_string(json_ws(p));
			if (!p || *(p = json_ws(p)) != ':')
				return NULL;
			p++;
		}
		p = json_value(p, depth + 1);
		if (!p)
			return NULL;
		p = json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
	}
}

static const char *json_value(const char *p, int depth)
{
	if (depth > 64)
		return NULL;
	p = json_ws(p);
	switch (*p) {
	case '{': return json_list(p, depth, '}', true);
	case '[': return json_list(p, depth, ']', false);
	case '"': return json_string(p);
	case 't': return strncmp(p, "true", 4) ? NULL : p + 4;
	case 'f': return strncmp(p, "false", 5) ? NULL : p + 5;
	case 'n': return strncmp(p, "null", 4) ? NULL : p + 4;
	default:
		if (*p == '-')
			p++;
		if (*p < '0' || *p > '9')
			return NULL;
		while (*p >= '0' && *p <= '9')
			p++;
		return p;
	}
}

static void inspect(struct erofs_image *img, const char *path, bool json)
{
	struct anole_inspect_opts o = { .image = "fuzz", .path = path, .json = json };
	struct strbuf out = STRBUF_INIT;

	if (!anole_image_inspect_open(img, &o, &out) && json) {
		const char *end = json_value(out.buf, 0);

		if (!end || *json_ws(end))
			abort();        /* invalid JSON from inspect */
	}
	strbuf_release(&out);
}

struct root_walk {
	struct erofs_image *img;
	unsigned n;
};

/*
 * Reads that start inside extents: for compressed files these map from the
 * middle of an lcluster (lookback) and hit the decoded-extent cache, which
 * the whole-file walk of check does not.
 */
static void odd_reads(struct erofs_image *img, erofs_nid_t nid)
{
	static uint8_t buf[9000];
	struct erofs_inode in;
	uint64_t offs[4];

	if (erofs_read_inode(img, nid, &in) || !S_ISREG(in.mode) || !in.size)
		return;
	offs[0] = in.size / 3;
	offs[1] = in.size - 1;
	offs[2] = in.size > 5000 ? in.size - 5000 : 0;
	offs[3] = in.size / 3 + 4096;
	for (unsigned i = 0; i < 4; i++)
		erofs_pread(img, &in, buf, sizeof(buf), offs[i]);
}

/* Inspect the root's entries too: symlinks, chunk maps, compressed
 * extents, xattr values. */
static int root_entry(void *ctx, const char *name, size_t len, erofs_nid_t nid,
		      unsigned ftype)
{
	struct root_walk *w = ctx;
	char path[EROFS_NAME_LEN + 2] = "/";

	if (++w->n > 64)
		return 1;
	memcpy(path + 1, name, len);
	path[len + 1] = '\0';
	inspect(w->img, path, w->n & 1);
	if (ftype == EROFS_FT_REG_FILE && w->n <= 16)
		odd_reads(w->img, nid);
	return 0;
}

/*
 * Mutations inside block 0 would nearly all die at the superblock
 * checksum; fix it up (unless byte 0, unused by EROFS, is odd) so that
 * the fuzzer reaches the inodes and dirents stored there.
 */
static void fix_checksum(uint8_t *buf, size_t size)
{
	unsigned bits;
	uint32_t len, crc;

	if (size < EROFS_SUPER_OFFSET + sizeof(struct erofs_super_block) || (buf[0] & 1))
		return;
	bits = buf[EROFS_SUPER_OFFSET + 12];
	if (bits < EROFS_MIN_BLKSZBITS || bits > EROFS_MAX_BLKSZBITS)
		return;
	len = (1u << bits) > EROFS_SUPER_OFFSET ? (1u << bits) - EROFS_SUPER_OFFSET : 1u << bits;
	if (size < EROFS_SUPER_OFFSET + (size_t)len)
		return;
	crc = erofs_sb_checksum(buf, 1u << bits);
	memcpy(buf + EROFS_SUPER_OFFSET + 4, &crc, 4);   /* little-endian host */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct anole_check_opts opts = { .image = "fuzz", .max_errors = 1000 };
	struct anole_check_result res;
	struct erofs_image *img;
	struct erofs_inode root;
	uint8_t *buf;

	anole_log_set_sink(drop_log, NULL);
	anole_progress_set_quiet(true);
	buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	fix_checksum(buf, size);
	if (erofs_image_open_mem(&img, buf, size, "fuzz")) {
		free(buf);
		return 0;
	}
	anole_image_check_open(img, &opts, &res);
	inspect(img, NULL, false);
	inspect(img, NULL, true);
	inspect(img, "/", false);
	inspect(img, "/", true);
	img->quiet = true;
	if (!erofs_read_inode(img, img->root_nid, &root) && S_ISDIR(root.mode)) {
		struct root_walk w = { .img = img };

		erofs_iterate_dir(img, &root, root_entry, &w);
	}
	erofs_image_close(img);
	free(buf);
	return 0;
}
