// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the EROFS reader: open the input as an image in
 * memory, run the same full walk as `anole image check` (every inode,
 * dirent, xattr and data byte), then inspect the superblock and the root
 * in text and JSON. Any crash, sanitizer report or hang is a bug.
 */
#include "reader/internal.h"

/*
 * meson builds libanole without coverage instrumentation; only this file
 * gets -fsanitize=fuzzer. Compiling the reader, check and inspect sources
 * into this object gives libFuzzer their edges to steer by; the linker then
 * takes these definitions and leaves the library's copies out.
 */
#include "../image/reader/super.c"
#include "../image/reader/inode.c"
#include "../image/reader/dir.c"
#include "../image/reader/xattr.c"
#include "../image/reader/data.c"
#include "../image/check.c"
#include "../image/inspect.c"

#include "anole/error.h"
#include "anole/progress.h"
#include "anole/strbuf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque) { }

static void inspect(struct erofs_image *img, const char *path, bool json)
{
	struct anole_inspect_opts o = { .image = "fuzz", .path = path, .json = json };
	struct strbuf out = STRBUF_INIT;

	anole_image_inspect_open(img, &o, &out);
	strbuf_release(&out);
}

struct root_walk {
	struct erofs_image *img;
	unsigned n;
};

/* Inspect the root's entries too: symlinks, chunk maps, xattr values. */
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
