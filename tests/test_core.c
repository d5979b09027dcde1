// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the core library: strbuf (incl. JSON string escaping),
 * digests (SHA-256 and SM3 known answers, streaming), crc32c and the EROFS
 * superblock checksum, atomic outputs (temp file + rename, abort leaves
 * nothing), anole_parallel_for (every item exactly once), the hash map,
 * the full-read/write helpers, removing a tree, and the TOML reader (values, the rules on
 * defining tables, errors naming their line).  TAP-like output; exit status 1 on failure.
 */
#include "anole/blobmeta.h"
#include "anole/compress.h"
#include "anole/digest.h"
#include "anole/endian.h"
#include "anole/erofs.h"
#include "anole/fileio.h"
#include "anole/error.h"
#include "anole/hashmap.h"
#include "anole/image.h"
#include "anole/xalloc.h"
#include "anole/strbuf.h"
#include "anole/toml.h"
#include "anole/workqueue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

static int streq_n(const char *a, size_t alen, const char *b)
{
	return alen == strlen(b) && !memcmp(a, b, alen);
}

/* ------------------------------------------------------------------ strbuf */
static void test_strbuf(void)
{
	struct strbuf sb = STRBUF_INIT;
	char *det;
	size_t len;

	strbuf_init(&sb, 0);
	CHECK(sb.len == 0 && sb.buf && sb.buf[0] == '\0', "strbuf: empty buffer is \"\"");
	strbuf_add(&sb, "abc", 3);
	strbuf_addstr(&sb, "def");
	strbuf_addch(&sb, 'g');
	CHECK(streq_n(sb.buf, sb.len, "abcdefg") && sb.buf[sb.len] == '\0', "strbuf: add/addstr/addch");
	strbuf_addf(&sb, "-%d-%s-%05.1f", 42, "x", 3.14159);
	CHECK(!strcmp(sb.buf, "abcdefg-42-x-003.1"), "strbuf: addf (got \"%s\")", sb.buf);
	strbuf_setlen(&sb, 3);
	CHECK(!strcmp(sb.buf, "abc") && sb.len == 3, "strbuf: setlen truncates and terminates");
	strbuf_addzero(&sb, 5);
	CHECK(sb.len == 8 && !memcmp(sb.buf, "abc\0\0\0\0\0", 9), "strbuf: addzero");
	strbuf_reset(&sb);
	CHECK(sb.len == 0 && sb.buf[0] == '\0', "strbuf: reset");

	/* growth across many reallocations, binary content */
	for (int i = 0; i < 100000; i++)
		strbuf_addch(&sb, (char)(i & 0xff));
	int okbytes = sb.len == 100000;
	for (int i = 0; okbytes && i < 100000; i++)
		okbytes = (unsigned char)sb.buf[i] == (i & 0xff);
	CHECK(okbytes && sb.buf[sb.len] == '\0', "strbuf: 100000 addch keep every byte");
	strbuf_reset(&sb);
	{
		char big[5000];

		memset(big, 'z', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		strbuf_addf(&sb, "[%s]", big);
		CHECK(sb.len == 5001 && sb.buf[0] == '[' && sb.buf[5000] == ']' && sb.buf[5001] == '\0',
		      "strbuf: addf longer than any initial buffer");
	}
	det = strbuf_detach(&sb, &len);
	CHECK(len == 5001 && det[0] == '[' && sb.len == 0 && sb.buf && sb.buf[0] == '\0',
	      "strbuf: detach hands over the buffer and resets");
	free(det);
	det = strbuf_detach(&sb, &len);
	CHECK(det && len == 0 && det[0] == '\0', "strbuf: detach of an empty buffer is a fresh \"\"");
	free(det);
	strbuf_release(&sb);

	/* JSON string escaping */
	static const struct { const char *in; size_t len; const char *out; } js[] = {
		{ "plain", 5, "\"plain\"" },
		{ "", 0, "\"\"" },
		{ "q\"b\\s/", 6, "\"q\\\"b\\\\s/\"" },
		{ "nl\ntab\tcr\r", 10, "\"nl\\ntab\\tcr\\r\"" },
		{ "\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"" },
		{ "nul\0in", 6, "\"nul\\u0000in\"" },
		{ "\xc3\xa9t\xc3\xa9 \xe6\x96\x87", 9, "\"\xc3\xa9t\xc3\xa9 \xe6\x96\x87\"" },
		{ "\x08\x0c", 2, NULL },    /* \b \f: either short or \u form */
	};
	for (size_t i = 0; i < sizeof(js) / sizeof(js[0]); i++) {
		strbuf_reset(&sb);
		strbuf_addstr(&sb, "x");
		strbuf_add_json_string(&sb, js[i].in, js[i].len);
		if (js[i].out) {
			CHECK(!strcmp(sb.buf + 1, js[i].out), "json string %zu: got %s, expected %s",
			      i, sb.buf + 1, js[i].out);
		} else {
			CHECK(!strcmp(sb.buf + 1, "\"\\b\\f\"") || !strcmp(sb.buf + 1, "\"\\u0008\\u000c\""),
			      "json string %zu: \\b \\f escaped (got %s)", i, sb.buf + 1);
		}
	}
	/* every control byte is escaped: no raw byte < 0x20 in the output */
	{
		char all[256];
		int raw = 0;

		for (int i = 0; i < 256; i++)
			all[i] = (char)i;
		strbuf_reset(&sb);
		strbuf_add_json_string(&sb, all, sizeof(all));
		for (size_t i = 0; i < sb.len; i++)
			if ((unsigned char)sb.buf[i] < 0x20)
				raw++;
		CHECK(raw == 0 && sb.buf[0] == '"' && sb.buf[sb.len - 1] == '"',
		      "json string: no raw control bytes among all 256 byte values");
	}
	strbuf_release(&sb);
}

/* ------------------------------------------------------------------ digests */
static int digest_hex(enum anole_digest_alg alg, const void *data, size_t len, char hex[65])
{
	uint8_t d[ANOLE_DIGEST_MAX];
	int ret = anole_digest(alg, data, len, d);

	anole_hex(d, anole_digest_size(alg), hex);
	return ret;
}

static void test_digest(void)
{
	static const struct { enum anole_digest_alg alg; const char *in; const char *hex; } kat[] = {
		{ ANOLE_DIGEST_SHA256, "abc",
		  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
		{ ANOLE_DIGEST_SHA256, "",
		  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
		{ ANOLE_DIGEST_SHA256, "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
		  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
		{ ANOLE_DIGEST_SM3, "abc",
		  "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0" },
		{ ANOLE_DIGEST_SM3, "abcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcdabcd",
		  "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732" },
	};
	char hex[65];
	enum anole_digest_alg alg;

	for (size_t i = 0; i < sizeof(kat) / sizeof(kat[0]); i++) {
		int ret = digest_hex(kat[i].alg, kat[i].in, strlen(kat[i].in), hex);

		CHECK(ret == 0 && !strcmp(hex, kat[i].hex), "%s(\"%.12s%s\") = %s",
		      anole_digest_name(kat[i].alg), kat[i].in, strlen(kat[i].in) > 12 ? "..." : "", hex);
	}

	/* streaming in uneven pieces gives the one-shot value: 1,000,000 x 'a' */
	{
		static char a[1000000];
		uint8_t d[ANOLE_DIGEST_MAX];
		struct anole_digest_ctx *ctx;
		size_t off = 0, step = 1;
		int ret = 0;

		memset(a, 'a', sizeof(a));
		ctx = anole_digest_new(ANOLE_DIGEST_SHA256);
		CHECK(ctx != NULL, "digest: new context");
		while (ctx && off < sizeof(a)) {
			size_t n = step < sizeof(a) - off ? step : sizeof(a) - off;

			ret |= anole_digest_update(ctx, a + off, n);
			off += n;
			step = step * 3 + 1;
		}
		if (ctx) {
			ret |= anole_digest_final(ctx, d);
			anole_digest_free(ctx);
			anole_hex(d, 32, hex);
			CHECK(!ret && !strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
			      "sha256 streaming of 10^6 'a' = %s", hex);
		}
		ctx = anole_digest_new(ANOLE_DIGEST_SM3);
		if (ctx) {
			anole_digest_update(ctx, "ab", 2);
			anole_digest_update(ctx, "", 0);
			anole_digest_update(ctx, "c", 1);
			anole_digest_final(ctx, d);
			anole_digest_free(ctx);
			anole_hex(d, 32, hex);
			CHECK(!strcmp(hex, kat[3].hex), "sm3 streaming \"ab\" + \"\" + \"c\"");
		}
	}
	CHECK(anole_digest_from_name("sha256", &alg) == 0 && alg == ANOLE_DIGEST_SHA256, "digest name sha256");
	CHECK(anole_digest_from_name("sm3", &alg) == 0 && alg == ANOLE_DIGEST_SM3, "digest name sm3");
	CHECK(anole_digest_from_name("md5", &alg) < 0, "digest name md5 is refused");
	CHECK(!strcmp(anole_digest_name(ANOLE_DIGEST_SHA256), "sha256") &&
	      !strcmp(anole_digest_name(ANOLE_DIGEST_SM3), "sm3"), "digest names");
	CHECK(anole_digest_size(ANOLE_DIGEST_SHA256) == 32 && anole_digest_size(ANOLE_DIGEST_SM3) == 32,
	      "digest sizes");
	{
		const uint8_t in[] = { 0x00, 0x01, 0xab, 0xff };

		anole_hex(in, sizeof(in), hex);
		CHECK(!strcmp(hex, "0001abff"), "anole_hex");
	}
}

/* ------------------------------------------------------------- read_file */

static void test_read_file(void)
{
	char path[] = "/tmp/anole-test-read.XXXXXX";
	struct strbuf sb = STRBUF_INIT;
	int fd = mkstemp(path), ret;

	CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	CHECK(write(fd, "0123456789", 10) == 10, "write");
	close(fd);
	strbuf_add(&sb, "x", 1);
	ret = anole_read_file(path, 10, &sb);
	CHECK(ret == 0 && sb.len == 11 && !strcmp(sb.buf, "x0123456789"),
	      "read_file appends the whole file at its size limit (%d, %zu)", ret, sb.len);
	ret = anole_read_file(path, 9, &sb);
	CHECK(ret == -EFBIG && sb.len == 11, "read_file: a byte over the limit is -EFBIG, sb as it was (%d)", ret);
	unlink(path);
	ret = anole_read_file(path, 10, &sb);
	CHECK(ret == -ENOENT, "read_file of a missing file is -ENOENT (%d)", ret);
	strbuf_release(&sb);
}

/* Attribute-style values: one read with the newline dropped, a decimal,
 * a whole write over the file, an empty value as a newline */
static void test_values(void)
{
	char path[] = "/tmp/anole-test-value.XXXXXX", buf[16];
	struct strbuf sb = STRBUF_INIT;
	uint64_t v = 0;
	int fd = mkstemp(path), ret;

	CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	close(fd);
	CHECK(anole_write_whole(path, "123456789012\n", 13, false, true) == 0, "write_whole");
	ret = anole_read_value(path, buf, sizeof(buf));
	CHECK(ret == 12 && !strcmp(buf, "123456789012"), "read_value drops the newline (%d '%s')", ret, buf);
	CHECK(anole_read_u64(path, &v) == 0 && v == 123456789012ull, "read_u64 (%llu)",
	      (unsigned long long)v);
	ret = anole_read_value(path, buf, 5);
	CHECK(ret == 4 && !strcmp(buf, "1234"), "read_value truncates to its buffer (%d '%s')", ret, buf);
	ret = anole_write_value(path, "max");
	if (!ret)
		ret = anole_read_file(path, 64, &sb);
	CHECK(ret == 0 && sb.buf && !strcmp(sb.buf, "max"), "write_value replaces the content ('%s')",
	      sb.buf ? sb.buf : "");
	CHECK(anole_read_u64(path, &v) == -EINVAL, "read_u64 of a word is -EINVAL");
	strbuf_setlen(&sb, 0);
	CHECK(anole_write_value(path, "") == 0 && anole_read_file(path, 64, &sb) == 0 &&
	      !strcmp(sb.buf, "\n"), "write_value of nothing writes a newline");
	unlink(path);
	CHECK(anole_read_value(path, buf, sizeof(buf)) == -ENOENT, "read_value of a missing file");
	CHECK(anole_write_value(path, "1") == -ENOENT, "write_value creates nothing");
	CHECK(anole_write_whole(path, "1", 1, true, false) == 0 && anole_read_u64(path, &v) == 0 &&
	      v == 1, "write_whole with create");
	unlink(path);
	strbuf_release(&sb);
}

/* A tree of nested directories, files and a symbolic link out of it: all
 * of it goes, the link's target stays; a file system mounted inside (as
 * root) is left alone. (Overlayfs, whose files report their layer's device,
 * is checked by t_os_image.) */
static void test_remove_tree(void)
{
	char *dir = NULL, p[512], outside[] = "/tmp/anole-test-keep.XXXXXX";
	int fd = mkstemp(outside);
	struct stat st;

	CHECK(fd >= 0 && anole_temp_dir("anole-test-rm", &dir) == 0, "temp dir");
	if (fd < 0 || !dir)
		return;
	close(fd);
	snprintf(p, sizeof(p), "%s/a/b/c", dir);
	for (char *s = p + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
		*s = 0;
		mkdir(p, 0700);
		*s = '/';
	}
	mkdir(p, 0700);
	snprintf(p, sizeof(p), "%s/a/b/c/file", dir);
	close(open(p, O_WRONLY | O_CREAT, 0600));
	snprintf(p, sizeof(p), "%s/a/link", dir);
	CHECK(symlink(outside, p) == 0, "symlink");
	snprintf(p, sizeof(p), "%s/a/mnt", dir);
	mkdir(p, 0700);
	if (mount("tmpfs", p, "tmpfs", 0, NULL) == 0) {
		snprintf(p, sizeof(p), "%s/a/mnt/kept", dir);
		close(open(p, O_WRONLY | O_CREAT, 0600));
		CHECK(anole_remove_tree(dir) == -EBUSY, "remove_tree stops at a mount point");
		CHECK(stat(p, &st) == 0, "the mounted file system's file stays");
		snprintf(p, sizeof(p), "%s/a/mnt", dir);
		umount(p);
	}
	CHECK(anole_remove_tree(dir) == 0, "remove_tree of a nested tree");
	CHECK(lstat(dir, &st) < 0 && errno == ENOENT, "the tree is gone");
	CHECK(stat(outside, &st) == 0, "a link's target outside the tree stays");
	CHECK(anole_remove_tree(dir) == 0, "remove_tree of a missing path is 0");
	unlink(outside);
	free(dir);
}

/* ------------------------------------------------------------------ crc32c */
static uint32_t crc_bitwise(uint32_t crc, const uint8_t *p, size_t n)
{
	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
	}
	return crc;
}

static void test_crc32c(void)
{
	static uint8_t blk[4096];
	uint32_t got;

	got = ~anole_crc32c(~0u, "123456789", 9);
	CHECK(got == 0xE3069283u, "crc32c(\"123456789\") = %08x (standard check value)", got);
	for (size_t i = 0; i < sizeof(blk); i++)
		blk[i] = (uint8_t)(i * 131 + 7);
	got = anole_crc32c(anole_crc32c(~0u, blk, 1000), blk + 1000, sizeof(blk) - 1000);
	CHECK(got == crc_bitwise(~0u, blk, sizeof(blk)), "crc32c: pieces equal a bitwise reference");

	/* superblock checksum: bytes 1024..4095, checksum field as zero, no final
	 * inversion (value from an independent implementation) */
	memset(blk, 0, sizeof(blk));
	blk[1024] = 0xE2; blk[1025] = 0xE1; blk[1026] = 0xF5; blk[1027] = 0xE0;
	blk[1028] = 0xef; blk[1029] = 0xbe; blk[1030] = 0xad; blk[1031] = 0xde;
	for (size_t i = 1032; i < 4096; i++)
		blk[i] = (uint8_t)((i * 7) & 0xff);
	got = erofs_sb_checksum(blk, 4096);
	CHECK(got == 0xdf32af21u, "erofs_sb_checksum = %08x, expected df32af21", got);
}

/* ------------------------------------------------------------------ outputs */
static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

static void test_output(void)
{
	char dir[] = "/tmp/anole-test-core.XXXXXX";
	char path[256], other[256], buf[64];
	struct anole_output out;
	struct stat st;
	int ret;

	if (!mkdtemp(dir)) {
		CHECK(0, "output: mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/image.erofs", dir);

	ret = anole_output_open(&out, path);
	CHECK(ret == 0 && out.fd >= 0, "output: open");
	if (ret)
		goto done;
	CHECK(out.tmp_path && !strncmp(out.tmp_path, dir, strlen(dir)) &&
	      !strncmp(out.tmp_path + strlen(dir), "/.image.erofs.", 14),
	      "output: temp file is DIR/.NAME.XXXXXX (%s)", out.tmp_path ? out.tmp_path : "null");
	CHECK(access(path, F_OK) != 0 && count_entries(dir) == 1,
	      "output: only the temp file exists before commit");
	CHECK(write_full(out.fd, "first", 5) == 0, "output: write");
	ret = anole_output_commit(&out);
	CHECK(ret == 0, "output: commit");
	CHECK(read_file(path, buf, sizeof(buf)) == 5 && !strcmp(buf, "first"),
	      "output: committed content under the final name");
	CHECK(count_entries(dir) == 1, "output: no temp file left after commit");
	CHECK(stat(path, &st) == 0 && (st.st_mode & 07777) == 0644, "output: mode 0644 (%o)",
	      (unsigned)(st.st_mode & 07777));

	/* replace an existing file */
	ret = anole_output_open(&out, path);
	CHECK(ret == 0, "output: open over an existing file");
	if (!ret) {
		write_full(out.fd, "second!", 7);
		CHECK(read_file(path, buf, sizeof(buf)) == 5 && !strcmp(buf, "first"),
		      "output: the old file is intact until commit");
		CHECK(anole_output_commit(&out) == 0, "output: commit over an existing file");
		CHECK(read_file(path, buf, sizeof(buf)) == 7 && !strcmp(buf, "second!"),
		      "output: replaced atomically");
	}

	/* abort leaves nothing and keeps the old file */
	ret = anole_output_open(&out, path);
	CHECK(ret == 0, "output: open for abort");
	if (!ret) {
		write_full(out.fd, "garbage", 7);
		anole_output_abort(&out);
		CHECK(count_entries(dir) == 1 && read_file(path, buf, sizeof(buf)) == 7 &&
		      !strcmp(buf, "second!"), "output: abort removes the temp file, keeps the old one");
		anole_output_abort(&out);   /* twice is harmless */
		CHECK(count_entries(dir) == 1, "output: second abort is a no-op");
	}
	snprintf(other, sizeof(other), "%s/new.img", dir);
	ret = anole_output_open(&out, other);
	if (!ret) {
		anole_output_abort(&out);
		CHECK(access(other, F_OK) != 0 && count_entries(dir) == 1,
		      "output: abort of a new output leaves nothing");
	}

	/* an output in a missing directory fails and creates nothing */
	snprintf(other, sizeof(other), "%s/missing/x.img", dir);
	ret = anole_output_open(&out, other);
	CHECK(ret < 0, "output: open in a missing directory fails (%d)", ret);
	CHECK(count_entries(dir) == 1, "output: nothing created after a failed open");

	/* pread_full past the end */
	{
		int fd = open(path, O_RDONLY);
		char b[16];

		CHECK(fd >= 0 && pread_full(fd, b, 7, 0) == 0 && !memcmp(b, "second!", 7),
		      "pread_full of the whole file");
		CHECK(fd >= 0 && pread_full(fd, b, 8, 0) == -ENODATA, "pread_full past the end: -ENODATA");
		if (fd >= 0)
			close(fd);
	}
done:
	unlink(path);
	rmdir(dir);
}

/* ------------------------------------------------------------------ parallel_for */
struct pf_item {
	_Atomic int visits;
	int index;
};

static void pf_fn(void *item, void *shared)
{
	struct pf_item *it = item;

	atomic_fetch_add(&it->visits, 1);
	atomic_fetch_add((_Atomic long *)shared, it->index);
}

static void test_parallel_for(void)
{
	static const struct { size_t n; unsigned threads; } cases[] = {
		{ 0, 0 }, { 0, 4 }, { 1, 0 }, { 1, 8 }, { 3, 16 }, { 1000, 1 }, { 1000, 2 },
		{ 10007, 0 }, { 10007, 7 }, { 50000, 64 },
	};

	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		size_t n = cases[c].n;
		struct pf_item *items = calloc(n ? n : 1, sizeof(*items));
		_Atomic long sum = 0;
		size_t bad = 0;

		for (size_t i = 0; i < n; i++)
			items[i].index = (int)i;
		anole_parallel_for(items, n, sizeof(*items), cases[c].threads, pf_fn, &sum);
		for (size_t i = 0; i < n; i++)
			if (atomic_load(&items[i].visits) != 1)
				bad++;
		CHECK(bad == 0 && atomic_load(&sum) == (long)(n ? n * (n - 1) / 2 : 0),
		      "parallel_for: %zu items on %u threads, each once (%zu wrong)", n,
		      cases[c].threads, bad);
		free(items);
	}
	CHECK(anole_cpu_count() >= 1, "cpu count %u", anole_cpu_count());
}

/* ------------------------------------------------------------------ hashmap */
struct hm_entry { uint64_t key; };

static bool hm_eq(const void *entry, const void *key)
{
	return ((const struct hm_entry *)entry)->key == *(const uint64_t *)key;
}

static void test_hashmap(void)
{
	struct anole_hashmap map;
	enum { N = 20000 };
	struct hm_entry *e = calloc(N, sizeof(*e));
	size_t found = 0, absent = 0;

	anole_hashmap_init(&map, hm_eq);
	for (uint64_t i = 0; i < N; i++) {
		e[i].key = i * 2654435761u;
		/* a weak hash on purpose: many collisions on the low bits */
		anole_hashmap_put(&map, (e[i].key & 0xff), &e[i]);
	}
	for (uint64_t i = 0; i < N; i++) {
		uint64_t k = i * 2654435761u;
		uint64_t miss = k + 1;

		if (anole_hashmap_get(&map, k & 0xff, &k) == &e[i])
			found++;
		if (!anole_hashmap_get(&map, miss & 0xff, &miss))
			absent++;
	}
	CHECK(found == N && map.count == N, "hashmap: %zu of %d entries found", found, (int)N);
	CHECK(absent == N, "hashmap: absent keys not found (%zu of %d)", absent, (int)N);
	{
		/* iteration visits every entry exactly once, whatever its slot */
		unsigned char *seen = calloc(N, 1);
		size_t pos = 0, visits = 0, once = 0;
		struct hm_entry *it;

		while ((it = anole_hashmap_next(&map, &pos))) {
			visits++;
			if (it >= e && it < e + N && !seen[it - e]++)
				once++;
		}
		CHECK(visits == N && once == N, "hashmap: iteration visits %zu entries, %zu distinct, of %d",
		      visits, once, (int)N);
		CHECK(!anole_hashmap_next(&map, &pos), "hashmap: iteration stays at its end");
		free(seen);
	}
	CHECK(anole_hash_bytes("abc", 3, 0) == anole_hash_bytes("abc", 3, 0) &&
	      anole_hash_bytes("abc", 3, 0) != anole_hash_bytes("abd", 3, 0) &&
	      anole_hash_bytes("abc", 3, 0) != anole_hash_bytes("abc", 3, 1), "hash_bytes");
	{
		/* consecutive nids spread over the low bits the table masks */
		size_t bucket[256] = { 0 }, lo = SIZE_MAX, hi = 0;

		for (uint64_t k = 0; k < 65536; k++)
			bucket[anole_hash_u64(k) & 0xff]++;
		for (size_t i = 0; i < 256; i++) {
			lo = bucket[i] < lo ? bucket[i] : lo;
			hi = bucket[i] > hi ? bucket[i] : hi;
		}
		/* 256 per bucket on average; a plain identity would give 256
		 * exactly, so also check that it is not the identity */
		CHECK(lo >= 128 && hi <= 512 && anole_hash_u64(1) != 1 &&
		      anole_hash_u64(1) != anole_hash_u64(2),
		      "hash_u64: low-byte buckets of 65536 keys hold %zu..%zu", lo, hi);
	}
	anole_hashmap_free(&map);
	{
		size_t pos = 0;

		CHECK(!anole_hashmap_next(&map, &pos), "hashmap: a freed map iterates nothing");
		anole_hashmap_init(&map, hm_eq);
		CHECK(!anole_hashmap_next(&map, &pos), "hashmap: an empty map iterates nothing");
		anole_hashmap_free(&map);
	}
	free(e);
}

/* ------------------------------------------------------------------ compress */
static void discard_log(enum anole_log_level level, const char *msg, void *opaque)
{
	(void)level, (void)msg, (void)opaque;
}

static void test_compress_spec(void)
{
	static const struct anole_compress_choice choices[] = {
		{ .name = "none" },
		{ .name = "zstd", .def_level = 3, .min_level = 1, .max_level = 22 },
		{ .name = "lzma", .def_level = 6, .min_level = 0, .max_level = 9,
		  .min_level2 = 100, .max_level2 = 109 },
	};
	static const struct { const char *spec; int index, level; } cases[] = {
		{ "zstd", 1, 3 }, { "zstd,19", 1, 19 }, { "zstd:19", 1, 19 }, { "ZSTD,1", 1, 1 },
		{ "zstd,22", 1, 22 }, { "none", 0, 0 }, { "lzma,0", 2, 0 }, { "lzma:109", 2, 109 },
		{ "lzma", 2, 6 },
		{ "zstd,23", -EINVAL, 0 }, { "zstd,0", -EINVAL, 0 }, { "zstd,", -EINVAL, 0 },
		{ "zstd,1x", -EINVAL, 0 }, { "zstd,-3", -EINVAL, 0 }, { "zstd,19,2", -EINVAL, 0 },
		{ "zstd:19:2", -EINVAL, 0 }, { "lzma,10", -EINVAL, 0 }, { "lzma,99", -EINVAL, 0 },
		{ "lzma,110", -EINVAL, 0 }, { "none,1", -EINVAL, 0 }, { "zst", -EINVAL, 0 },
		{ "zstdx", -EINVAL, 0 }, { "", -EINVAL, 0 }, { ",3", -EINVAL, 0 },
		{ "zstd,99999999999999999999", -EINVAL, 0 },
	};
	enum anole_compress_alg alg;
	int level;

	anole_log_set_sink(discard_log, NULL);  /* the bad cases log */
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int got;

		level = -1;
		got = anole_compress_spec_parse("--opt", cases[i].spec, choices, ARRAY_SIZE(choices),
						&level);
		CHECK(got == cases[i].index && (got < 0 || level == cases[i].level),
		      "compress spec '%s': %d level %d (want %d level %d)", cases[i].spec, got,
		      level, cases[i].index, cases[i].level);
	}
	/* the message names the option, the value and what is allowed */
	anole_compress_spec_parse("--opt", "zstd,23", choices, ARRAY_SIZE(choices), &level);
	CHECK(strstr(anole_last_error(), "--opt 'zstd,23'") != NULL &&
	      strstr(anole_last_error(), "1-22"), "compress spec: message '%s'",
	      anole_last_error());
	anole_compress_spec_parse("--opt", "lzma,50", choices, ARRAY_SIZE(choices), &level);
	CHECK(strstr(anole_last_error(), "0-9 or 100-109") != NULL, "compress spec: message '%s'",
	      anole_last_error());
	anole_compress_spec_parse("--opt", "brotli", choices, ARRAY_SIZE(choices), &level);
	CHECK(strstr(anole_last_error(), "--opt 'brotli': unknown") != NULL &&
	      strstr(anole_last_error(), "zstd[,1-22]") &&
	      strstr(anole_last_error(), "lzma[,0-9|100-109]"), "compress spec: message '%s'",
	      anole_last_error());
	anole_log_set_sink(NULL, NULL);

	/* the transport table: enum order, level 0 = the compressor's default */
	CHECK(anole_compress_parse("--c", "lz4", &alg, &level) == 0 && alg == ANOLE_COMPRESS_LZ4 &&
	      level == 0, "compress parse lz4");
	CHECK(anole_compress_parse("--c", "lz4,12", &alg, &level) == 0 && level == 12 &&
	      anole_compress_parse("--c", "zstd:19", &alg, &level) == 0 &&
	      alg == ANOLE_COMPRESS_ZSTD && level == 19 &&
	      anole_compress_parse("--c", "none", &alg, &level) == 0 && alg == ANOLE_COMPRESS_NONE,
	      "compress parse lz4,12 zstd:19 none");
	anole_log_set_sink(discard_log, NULL);
	CHECK(anole_compress_parse("--c", "lz4,13", &alg, &level) == -EINVAL,
	      "compress parse: lz4,13 is past LZ4HC's top level");
	anole_log_set_sink(NULL, NULL);
}

/* ------------------------------------------------------------------ build defaults */
static void write_test_file(const char *dir, const char *name, size_t len, unsigned seed)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	for (size_t i = 0; f && i < len; i++)    /* text: compresses, with a tail */
		fputc("abcdefgh \n"[(i * 7 + seed + i / 97) % 10], f);
	if (f)
		fclose(f);
}

/* Whole-file equality (the images are small). */
static bool same_bytes(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	bool same = fa && fb;
	int ca, cb;

	while (same) {
		ca = fgetc(fa);
		cb = fgetc(fb);
		same = ca == cb;
		if (ca == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return same;
}

static int build_zeroed(struct anole_build_opts *o, const char *src, const char *out)
{
	struct anole_build_stats st;
	int ret;

	o->src_dir = src;
	o->output = out;
	o->have_timestamp = true;
	o->timestamp = 1700000000;
	o->have_uuid = true;
	memset(o->uuid, 0x5a, sizeof(o->uuid));
	ret = anole_image_build(o, &st);
	anole_build_stats_free(&st);
	return ret;
}

/* The CLI without options and a zeroed anole_build_opts build the same
 * bytes: the defaults are the library's (ANOLE: the anole binary). */
static void test_build_defaults(void)
{
	const char *anole = getenv("ANOLE");
	char dir[] = "/tmp/anole-test-defaults.XXXXXX", src[600], sub[700], path[700];
	char cmd[4096];
	static const char *const cli_args[] = { "", "--blob-dir %s/cblobs", "-z lz4hc" };
	static const char *const names[] = { "plain", "blob-dir", "lz4hc" };

	if (!mkdtemp(dir)) {
		CHECK(0, "build defaults: mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(src, sizeof(src), "%s/src", dir);
	snprintf(sub, sizeof(sub), "%s/sub", src);
	mkdir(src, 0755);
	mkdir(sub, 0755);
	write_test_file(src, "a", 70000, 1);
	write_test_file(src, "same-as-a", 70000, 1);    /* dedupe */
	write_test_file(src, "small", 300, 2);
	write_test_file(sub, "tail", 9000, 3);          /* a compressed tail */

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		struct anole_build_opts o = { 0 };
		char zimg[700], cimg[700], blobs[700], args[800];
		int ret, rc;

		snprintf(zimg, sizeof(zimg), "%s/zero-%s.img", dir, names[i]);
		snprintf(cimg, sizeof(cimg), "%s/cli-%s.img", dir, names[i]);
		snprintf(blobs, sizeof(blobs), "%s/zblobs", dir);
		if (i == 1)
			o.blob_dir = blobs;
		if (i == 2)
			o.data_compress = "lz4hc";
		ret = build_zeroed(&o, src, zimg);
		CHECK(ret == 0, "build defaults: zeroed options (%s) build (%d)", names[i], ret);
		if (!anole) {
			printf("# ANOLE not set: the CLI side of the comparison is skipped\n");
			continue;
		}
		snprintf(args, sizeof(args), cli_args[i], dir);
		snprintf(cmd, sizeof(cmd), "%s image build %s -o %s %s --timestamp 1700000000 "
			 "--uuid 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a -q", anole, src, cimg, args);
		rc = system(cmd);
		CHECK(rc == 0, "build defaults: %s exits 0 (%d)", cmd, rc);
		CHECK(same_bytes(zimg, cimg), "build defaults (%s): zeroed options and the CLI "
		      "without options build the same bytes", names[i]);
	}
	/* the comparison sees a changed default: each documented one matters */
	{
		struct anole_build_opts o = { .no_dedupe_files = true };
		char zimg[700], img[700];

		snprintf(zimg, sizeof(zimg), "%s/zero-plain.img", dir);
		snprintf(img, sizeof(img), "%s/nodedupe.img", dir);
		build_zeroed(&o, src, img);
		CHECK(!same_bytes(zimg, img), "build defaults: no_dedupe_files changes the image");
		o = (struct anole_build_opts){ .blkszbits = 12 };
		snprintf(img, sizeof(img), "%s/blk12.img", dir);
		build_zeroed(&o, src, img);
		CHECK(same_bytes(zimg, img), "build defaults: blkszbits 0 is 12");
		o = (struct anole_build_opts){ .data_compress = "lz4hc", .no_ztailpacking = true };
		snprintf(zimg, sizeof(zimg), "%s/zero-lz4hc.img", dir);
		snprintf(img, sizeof(img), "%s/noztail.img", dir);
		build_zeroed(&o, src, img);
		CHECK(!same_bytes(zimg, img), "build defaults: no_ztailpacking changes the image");
		o = (struct anole_build_opts){ .blob_dir = path, .chunk_size = 1u << 20,
					       .compress = "zstd" };
		snprintf(path, sizeof(path), "%s/eblobs", dir);
		snprintf(zimg, sizeof(zimg), "%s/zero-blob-dir.img", dir);
		snprintf(img, sizeof(img), "%s/explicit-blob-dir.img", dir);
		build_zeroed(&o, src, img);
		CHECK(same_bytes(zimg, img), "build defaults: with blob_dir, 1 MiB chunks and zstd");
		o = (struct anole_build_opts){ .blob_dir = path, .compress = "lz4" };
		snprintf(img, sizeof(img), "%s/lz4-blob-dir.img", dir);
		build_zeroed(&o, src, img);
		CHECK(!same_bytes(zimg, img), "build defaults: blob compression lz4 changes the image");
	}
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
}

/*
 * The chunk table of --blob-dir images: a blob with no chunks whose empty
 * table sits at the very end of the extension parses, without reading past
 * it (found by fuzz_blobmeta: a one-byte heap over-read; ASan builds catch a
 * regression).
 */
/* The EROFS part a chunk table follows: a superblock (magic, 4 KiB blocks). */
static const uint8_t *fake_erofs_part(void)
{
	static uint8_t part[2048];
	uint32_t magic = cpu_to_le32(EROFS_SUPER_MAGIC);

	memcpy(part + EROFS_SUPER_OFFSET, &magic, 4);
	part[EROFS_SUPER_OFFSET + 12] = 12;
	return part;
}

static void test_blobmeta_empty_table(void)
{
	uint8_t ext[sizeof(struct anole_ext_header) + sizeof(struct anole_ext_blob)] = { 0 };
	struct anole_ext_header *h = (void *)ext;
	struct anole_ext_blob *b = (void *)(ext + sizeof(*h));
	struct anole_ext_footer f = { 0 };
	const uint8_t *erofs_part = fake_erofs_part();
	struct anole_blobmeta meta;
	char path[] = "/tmp/anole-test-blobmeta.XXXXXX";
	int fd = mkstemp(path), ret;

	CHECK(fd >= 0, "mkstemp");
	if (fd < 0)
		return;
	unlink(path);
	memcpy(h->magic, ANOLE_EXT_HEADER_MAGIC, 8);
	h->version = cpu_to_le32(ANOLE_EXT_VERSION);
	h->nblobs = cpu_to_le32(1);
	b->table_offset = cpu_to_le64(sizeof(ext));
	b->chunk_size = cpu_to_le32(4096);
	b->device_id = cpu_to_le16(1);
	memcpy(f.magic, ANOLE_EXT_FOOTER_MAGIC, 8);
	f.ext_offset = cpu_to_le64(2048);
	f.ext_size = cpu_to_le64(sizeof(ext));
	anole_digest(ANOLE_DIGEST_SHA256, ext, sizeof(ext), f.ext_sha256);
	CHECK(!write_full(fd, erofs_part, 2048) && !write_full(fd, ext, sizeof(ext)) &&
	      !write_full(fd, &f, sizeof(f)), "write the test image");
	ret = anole_blobmeta_read(fd, path, &meta);
	CHECK(ret == 0, "blobmeta: an empty chunk table at the end parses (%d)", ret);
	if (!ret) {
		CHECK(meta.nblobs == 1 && meta.blobs[0].nchunks == 0, "blobmeta: one blob, no chunks");
		CHECK(anole_blob_find_chunk(&meta.blobs[0], 0) == -1, "blobmeta: no chunk found");
		anole_blobmeta_free(&meta);
	}
	close(fd);
}

/*
 * Fetch units: a chunk stored as several entries, with a split record
 * giving the whole chunk's digest. A table round-trips through serialize
 * and read; split records that name units not adjacent on the device, one
 * unit, entries beyond the table, more than a chunk, or units without a
 * unit size are refused.
 */
static int blobmeta_roundtrip(const struct anole_blobmeta *in, struct anole_blobmeta *out)
{
	const uint8_t *erofs_part = fake_erofs_part();
	char path[] = "/tmp/anole-test-blobmeta.XXXXXX";
	struct strbuf ext = STRBUF_INIT;
	int fd = mkstemp(path), ret;

	if (fd < 0)
		return -errno;
	unlink(path);
	anole_blobmeta_serialize(in, 2048, &ext);
	ret = write_full(fd, erofs_part, 2048);
	if (!ret)
		ret = write_full(fd, ext.buf, ext.len);
	if (!ret)
		ret = anole_blobmeta_read(fd, path, out);
	strbuf_release(&ext);
	close(fd);
	return ret;
}

static void test_blobmeta_splits(void)
{
	struct anole_ext_chunk chunks[4] = {
		{ .uncompressed_offset = 0, .compressed_offset = 0,
		  .uncompressed_size = 65536, .compressed_size = 100, .compression = 1 },
		{ .uncompressed_offset = 65536, .compressed_offset = 100,
		  .uncompressed_size = 65536, .compressed_size = 200, .compression = 1 },
		{ .uncompressed_offset = 131072, .compressed_offset = 300,
		  .uncompressed_size = 4096, .compressed_size = 4096, .compression = 0 },
		{ .uncompressed_offset = 139264, .compressed_offset = 4396,
		  .uncompressed_size = 8192, .compressed_size = 50, .compression = 1 },
	};
	struct anole_ext_split split = { .first = 0, .count = 2 };
	struct anole_blob_info b = {
		.compressed_size = 4446, .uncompressed_size = 147456, .nchunks = 4,
		.chunk_size = 1u << 20, .unit_size = 65536, .nsplits = 1, .splits = &split,
		.device_id = 1, .chunk_digest = ANOLE_DIGEST_SHA256,
		.compression = ANOLE_COMPRESS_ZSTD, .chunks = chunks,
	};
	struct anole_blobmeta meta = { .nblobs = 1, .blobs = &b }, got;
	int ret;

	memset(split.digest, 0xab, sizeof(split.digest));
	ret = blobmeta_roundtrip(&meta, &got);
	CHECK(ret == 0, "blobmeta splits: a table with a split chunk parses (%d)", ret);
	if (!ret) {
		const struct anole_blob_info *g = &got.blobs[0];

		CHECK(g->nchunks == 4 && g->unit_size == 65536 && g->nsplits == 1 &&
		      g->splits[0].first == 0 && g->splits[0].count == 2 &&
		      g->splits[0].digest[31] == 0xab, "blobmeta splits: fields read back");
		CHECK(anole_blob_find_chunk(g, 70000) == 1, "blobmeta splits: a unit is found");
		anole_blobmeta_free(&got);
	}
	chunks[1].uncompressed_offset += 4096;      /* a gap inside the chunk (entries */
	chunks[2].uncompressed_offset += 4096;      /* themselves in order) */
	ret = blobmeta_roundtrip(&meta, &got);
	CHECK(ret == -EFSCORRUPTED, "blobmeta splits: units not adjacent are refused (%d)", ret);
	chunks[1].uncompressed_offset -= 4096;
	chunks[2].uncompressed_offset -= 4096;
	chunks[2].uncompressed_offset += 64;        /* in order, in range, off a block */
	ret = blobmeta_roundtrip(&meta, &got);
	CHECK(ret == -EFSCORRUPTED, "blobmeta: an entry off a block boundary is refused (%d)", ret);
	chunks[2].uncompressed_offset -= 64;
	split.count = 1;
	ret = blobmeta_roundtrip(&meta, &got);
	CHECK(ret == -EFSCORRUPTED, "blobmeta splits: a split of one entry is refused (%d)", ret);
	split.first = 3;
	split.count = 2;
	ret = blobmeta_roundtrip(&meta, &got);
	CHECK(ret == -EFSCORRUPTED, "blobmeta splits: a split beyond the table is refused (%d)", ret);
	split.first = 0;
	b.chunk_size = 65536 + 4096;                /* the two units are larger */
	b.unit_size = 4096;
	ret = blobmeta_roundtrip(&meta, &got);
	CHECK(ret == -EFSCORRUPTED, "blobmeta splits: a split larger than a chunk is refused (%d)", ret);
	b.chunk_size = 1u << 20;
	b.unit_size = 0;
	ret = blobmeta_roundtrip(&meta, &got);
	CHECK(ret == -EFSCORRUPTED, "blobmeta splits: split records without a unit size are refused (%d)",
	      ret);
	b.unit_size = 65536 + 4096;
	ret = blobmeta_roundtrip(&meta, &got);
	CHECK(ret == -EFSCORRUPTED, "blobmeta splits: a unit size not a power of two is refused (%d)",
	      ret);
}

/* ------------------------------------------------------------------ toml */
/* A value as compact JSON-like text: {k:v}, [..], "s", 1, true. */
static void toml_dump(const struct toml_value *v, struct strbuf *out)
{
	switch (v->type) {
	case TOML_STRING:
		strbuf_addch(out, '"');
		strbuf_addstr(out, v->u.string);
		strbuf_addch(out, '"');
		break;
	case TOML_INTEGER:
		strbuf_addf(out, "%lld", (long long)v->u.integer);
		break;
	case TOML_BOOL:
		strbuf_addstr(out, v->u.boolean ? "true" : "false");
		break;
	case TOML_ARRAY:
		strbuf_addch(out, '[');
		for (size_t i = 0; i < v->u.array.n; i++) {
			if (i)
				strbuf_addch(out, ',');
			toml_dump(v->u.array.items[i], out);
		}
		strbuf_addch(out, ']');
		break;
	case TOML_TABLE:
		strbuf_addch(out, '{');
		for (size_t i = 0; i < v->u.table.n; i++) {
			if (i)
				strbuf_addch(out, ',');
			strbuf_addf(out, "%s:", v->u.table.kv[i].key);
			toml_dump(v->u.table.kv[i].value, out);
		}
		strbuf_addch(out, '}');
		break;
	}
}

static void test_toml(void)
{
	static const struct { const char *in, *want; } good[] = {
		{ "", "{}" },
		{ "# only a comment\n\n", "{}" },
		{ "a = 1\nc = 0o17\nd = 0b101\ne = 1_000\nf = +7\ng = 0xff\n",
		  "{a:1,c:15,d:5,e:1000,f:7,g:255}" },
		{ "s = \"x\\ty\\u00e9\\U0001F600\"\nl = 'C:\\dir'\n",
		  "{s:\"x\ty\xc3\xa9\xf0\x9f\x98\x80\",l:\"C:\\dir\"}" },
		{ "m = \"\"\"\none\\\n   two\"\"\"\nn = '''\na\nb'''\n", "{m:\"onetwo\",n:\"a\nb\"}" },
		{ "q = \"\"\"x\"\"\"\"\"\n", "{q:\"x\"\"\"}" },
		{ "arr = [ 1, \"two\", [3], { k = true }, ] # c\n", "{arr:[1,\"two\",[3],{k:true}]}" },
		{ "arr = [\n  \"a\", # first\n  \"b\"\n]\n", "{arr:[\"a\",\"b\"]}" },
		{ "a.b.c = 1\na.b.d = 2\n\"q.k\" = 3\n", "{a:{b:{c:1,d:2}},q.k:3}" },
		{ "[x.y]\nk = 1\n[x]\nj = 2\n", "{x:{y:{k:1},j:2}}" },
		{ "[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\nlocation = \"m1\"\n"
		  "[[registry.mirror]]\nlocation = \"m2\"\n[[registry]]\nlocation = \"b\"\n",
		  "{registry:[{location:\"a\",mirror:[{location:\"m1\"},{location:\"m2\"}]},"
		  "{location:\"b\"}]}" },
		{ "[aliases]\n  \"a/b\" = \"docker.io/library/x\"\r\n", "{aliases:{a/b:\"docker.io/library/x\"}}" },
		{ "t = { a.b = 1, c = \"d\" }\n", "{t:{a:{b:1},c:\"d\"}}" },
		{ "big = 9223372036854775807\nsmall = -9223372036854775808\n",
		  "{big:9223372036854775807,small:-9223372036854775808}" },
	};
	static const struct { const char *in; const char *err; } bad[] = {
		{ "a = 1\na = 2\n", "line 2: 'a' is defined twice (first on line 1)" },
		{ "[t]\n[t]\n", "line 2: [t] is defined twice" },
		{ "a.b = 1\n[a]\n", "line 2: [a] is defined twice" },
		{ "[a]\nb = 1\n[a.b]\n", "line 3: [b] is defined twice" },
		{ "arr = [1]\n[[arr]]\n", "line 2: [[arr]]: 'arr' is already a value" },
		{ "t = {a = 1}\n[t.b]\n", "line 2: 't' is already an inline table" },
		{ "x = 1.5\n", "line 1: '1.5' is not a value this reader takes" },
		{ "d = 1979-05-27\n", "line 1: '1979-05-27' is not a value" },
		{ "l = 127.0.0.1 # x\n", "line 1: '127.0.0.1' is not a value this reader takes: strings are quoted" },
		{ "\n\nx = \"open\n", "line 3: a newline in a one-line string" },
		{ "x = \"\\q\"\n", "line 1: unknown escape" },
		{ "x = \"\\u0000\"\n", "line 1: '\\u0000' is not a character" },
		{ "x = yes\n", "line 1: unexpected 'y' where a value was expected" },
		{ "x = 1 y = 2\n", "line 1: unexpected 'y' after a value" },
		{ "x = 99999999999999999999\n", "line 1: an integer out of the 64-bit range" },
		{ "x = 012\n", "line 1: an integer with a leading zero" },
		{ "x = -0x10\n", "line 1: a sign before a hex" },
		{ "[a\n", "line 1: expected ']' to close the table header" },
		{ "x = [1, 2\n", "line 2: an array that is not closed" },
		{ "x = { a = 1,\n b = 2 }\n", "line 1: a key is missing" },
		{ "x = 1\r\ny\r= 2\n", "line 2: expected '=' after the key" },
		{ "x = \"\xff\"\n", "line 1: not valid UTF-8" },
		{ "x = \"a\tb\x01\"\n", "line 1: control character 0x01 in a string" },
		{ "x = '''never closed\n\n", "line 1: a string that is not closed" },
		{ "[[a]]\n[a]\n", "line 2: [a] is defined twice" },
	};
	char err[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct toml_value *v = toml_parse(good[i].in, strlen(good[i].in), err, sizeof(err));
		struct strbuf out = STRBUF_INIT;

		if (v)
			toml_dump(v, &out);
		CHECK(v && !strcmp(out.buf ? out.buf : "", good[i].want),
		      "toml good %zu: %s (%s)", i, out.buf ? out.buf : "", v ? "" : err);
		strbuf_release(&out);
		toml_free(v);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct toml_value *v = toml_parse(bad[i].in, strlen(bad[i].in), err, sizeof(err));

		CHECK(!v && !strncmp(err, bad[i].err, strlen(bad[i].err)),
		      "toml bad %zu: '%s' (want '%s...')", i, err, bad[i].err);
		toml_free(v);
	}
	{
		/* lines of values, for the reader's own messages */
		const char *doc = "a = 1\n\n[[r]]\nloc = \"x\"\n";
		struct toml_value *v = toml_parse(doc, strlen(doc), err, sizeof(err));
		const struct toml_value *r = toml_get(v, "r");

		CHECK(r && r->type == TOML_ARRAY && r->u.array.n == 1 &&
		      toml_get(r->u.array.items[0], "loc")->line == 4 &&
		      r->u.array.items[0]->line == 3, "toml: values know their lines");
		toml_free(v);
	}
	{
		/* nesting is bounded */
		char deep[200];
		struct toml_value *v;

		memset(deep, '[', sizeof(deep));
		memcpy(deep, "x = ", 4);
		v = toml_parse(deep, sizeof(deep), err, sizeof(err));
		CHECK(!v && strstr(err, "nested more than"), "toml: deep nesting refused (%s)", err);
		toml_free(v);
	}
	{
		/* a bad value at the very end of an unterminated buffer (found by fuzzing:
		 * the error message read past the end looking for a delimiter) */
		static const char text[] = "-=88-888888";
		char *exact = malloc(sizeof(text) - 1);
		struct toml_value *v;

		memcpy(exact, text, sizeof(text) - 1);
		v = toml_parse(exact, sizeof(text) - 1, err, sizeof(err));
		CHECK(!v && !strncmp(err, "line 1", 6), "toml: value at buffer end refused (%s)", err);
		toml_free(v);
		free(exact);
	}
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_strbuf();
	test_digest();
	test_crc32c();
	test_read_file();
	test_values();
	test_remove_tree();
	test_output();
	test_parallel_for();
	test_hashmap();
	test_compress_spec();
	test_build_defaults();
	test_blobmeta_empty_table();
	test_blobmeta_splits();
	test_toml();
	printf("1..%d\n", ntests);
	printf("# %d tests, %d passed, %d failed\n", ntests, ntests - nfailed, nfailed);
	return nfailed ? 1 : 0;
}
