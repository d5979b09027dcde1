// SPDX-License-Identifier: Apache-2.0
/*
 * `anole image inspect`: the superblock, or one path's inode with its
 * xattrs and data placement, as text or JSON. Both forms are built from
 * the same walk; JSON strings always go through strbuf_add_json_string(),
 * after a UTF-8 check since names and labels in an image are raw bytes.
 */
#include "reader/internal.h"

#include "anole/endian.h"
#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TEXT_VALUE_MAX 128      /* text output shortens longer xattr values */

struct out {
	struct strbuf *sb;
	bool json;
	bool first;             /* no comma needed before the next JSON member */
	unsigned indent;        /* text: spaces before nested keys */
};

/* ------------------------------------------------------------ helpers */

static void add_hex(struct strbuf *sb, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		strbuf_addf(sb, "%02x", p[i]);
}

/* A JSON string of raw bytes: invalid UTF-8 bytes become \u00XX escapes
 * (read as Latin-1), so the document stays valid whatever the image holds. */
static void add_json_bytes(struct strbuf *sb, const char *s, size_t n)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0, len;

	while (i < n && (len = anole_utf8_len(p + i, n - i)))
		i += len;
	if (i == n) {
		strbuf_add_json_string(sb, s, n);
		return;
	}
	strbuf_addch(sb, '"');
	for (i = 0; i < n; i++) {
		struct strbuf one = STRBUF_INIT;

		if (p[i] >= 0x80) {
			strbuf_addf(sb, "\\u%04x", p[i]);
			continue;
		}
		strbuf_add_json_string(&one, s + i, 1);     /* "c", escaped */
		strbuf_add(sb, one.buf + 1, one.len - 2);
		strbuf_release(&one);
	}
	strbuf_addch(sb, '"');
}

/* Start a member: JSON "key": with a comma as needed, or "key:   " text. */
static void key(struct out *o, const char *k)
{
	if (o->json) {
		if (!o->first)
			strbuf_addch(o->sb, ',');
		o->first = false;
		strbuf_add_json_string(o->sb, k, strlen(k));
		strbuf_addch(o->sb, ':');
	} else {
		char label[64];

		snprintf(label, sizeof(label), "%s:", k);
		strbuf_addf(o->sb, "%*s%-*s ", (int)o->indent, "", 19 - (int)o->indent, label);
	}
}

/* A member holding a list or object: text puts its items on the next lines. */
static void section(struct out *o, const char *k)
{
	if (o->json)
		key(o, k);
	else
		strbuf_addf(o->sb, "%*s%s:\n", (int)o->indent, "", k);
}

static void end_line(struct out *o)
{
	if (!o->json)
		strbuf_addch(o->sb, '\n');
}

static void put_u64(struct out *o, const char *k, uint64_t v)
{
	key(o, k);
	strbuf_addf(o->sb, "%llu", (unsigned long long)v);
	end_line(o);
}

static void put_str(struct out *o, const char *k, const char *s, size_t n)
{
	key(o, k);
	if (o->json)
		add_json_bytes(o->sb, s, n);
	else
		strbuf_add_escaped_text(o->sb, s, n, true);
	end_line(o);
}

static void put_cstr(struct out *o, const char *k, const char *s)
{
	put_str(o, k, s, strlen(s));
}

static void open_obj(struct out *o)
{
	strbuf_addch(o->sb, '{');
	o->first = true;
}

static void close_obj(struct out *o)
{
	strbuf_addch(o->sb, '}');
	o->first = false;
}

static size_t field_len(const uint8_t *p, size_t max)
{
	const uint8_t *nul = memchr(p, '\0', max);

	return nul ? (size_t)(nul - p) : max;
}

static void format_time(char *buf, size_t n, int64_t sec, uint32_t nsec)
{
	time_t t = (time_t)sec;
	struct tm tm;
	char date[64];

	if (gmtime_r(&t, &tm) && strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(buf, n, "%lld.%09u (%s)", (long long)sec, nsec, date);
	else
		snprintf(buf, n, "%lld.%09u", (long long)sec, nsec);
}

/* ------------------------------------------------------------ superblock */

static void put_features(struct out *o, const char *k, const char *listkey, bool incompat,
			 uint32_t bits)
{
	bool any = false;

	key(o, k);
	if (o->json) {
		strbuf_addf(o->sb, "%u", bits);
		key(o, listkey);
		strbuf_addch(o->sb, '[');
	} else {
		strbuf_addf(o->sb, "0x%08x", bits);
	}
	for (unsigned i = 0; i < 32; i++) {
		const char *name = erofs_feature_name(incompat, 1u << i);
		char unknown[16];

		if (!(bits & (1u << i)))
			continue;
		if (!name) {
			snprintf(unknown, sizeof(unknown), "0x%x", 1u << i);
			name = unknown;
		}
		if (o->json) {
			if (any)
				strbuf_addch(o->sb, ',');
			add_json_bytes(o->sb, name, strlen(name));
		} else {
			strbuf_addf(o->sb, " %s", name);
		}
		any = true;
	}
	if (o->json)
		strbuf_addch(o->sb, ']');
	end_line(o);
}

static void put_devices(struct out *o, struct erofs_image *img)
{
	key(o, "devices");
	if (o->json)
		strbuf_addch(o->sb, '[');
	else
		strbuf_addf(o->sb, "%u extra\n", img->ndevs - 1);
	for (unsigned i = 1; i < img->ndevs; i++) {
		const struct erofs_deviceslot *s = &img->devslots[i - 1];
		size_t taglen = field_len(s->tag, sizeof(s->tag));

		if (!o->json) {
			strbuf_addf(o->sb, "  device %u: tag \"", i);
			strbuf_add_escaped_text(o->sb, (const char *)s->tag, taglen, true);
			strbuf_addf(o->sb, "\", %u blocks, mapped at block %u%s%s\n",
				    le32_to_cpu(s->blocks), le32_to_cpu(s->mapped_blkaddr),
				    img->devs[i].path ? ", " : ", not given",
				    img->devs[i].path ? img->devs[i].path : "");
			continue;
		}
		if (i > 1)
			strbuf_addch(o->sb, ',');
		open_obj(o);
		put_u64(o, "id", i);
		put_str(o, "tag", (const char *)s->tag, taglen);
		put_u64(o, "blocks", le32_to_cpu(s->blocks));
		put_u64(o, "mapped_blkaddr", le32_to_cpu(s->mapped_blkaddr));
		if (img->devs[i].path)
			put_cstr(o, "path", img->devs[i].path);
		close_obj(o);
	}
	if (o->json) {
		strbuf_addch(o->sb, ']');
		o->first = false;
	}
}

/* What compressed files of the image may use (superblock and configs). */
static void put_compression(struct out *o, struct erofs_image *img)
{
	unsigned n = 0;

	key(o, "compression_algorithms");
	if (o->json)
		strbuf_addch(o->sb, '[');
	for (unsigned a = 0; a < Z_EROFS_COMPRESSION_MAX; a++)
		if (img->available_compr_algs & (1u << a))
			strbuf_addf(o->sb, o->json ? "%s\"%s\"" : "%s%s",
				    n++ ? (o->json ? "," : " ") : "", erofs_algorithm_name(a));
	if (o->json)
		strbuf_addch(o->sb, ']');
	end_line(o);
	if (img->available_compr_algs & (1u << Z_EROFS_COMPRESSION_LZ4)) {
		put_u64(o, "lz4_max_distance", img->lz4_max_distance);
		put_u64(o, "lz4_max_pcluster_blocks", img->lz4_max_pclusterblks);
	}
	if (img->available_compr_algs & (1u << Z_EROFS_COMPRESSION_LZMA))
		put_u64(o, "lzma_dict_size", img->lzma_dict_size);
	if (img->available_compr_algs & (1u << Z_EROFS_COMPRESSION_DEFLATE))
		put_u64(o, "deflate_window_bits", img->deflate_windowbits);
	if (img->available_compr_algs & (1u << Z_EROFS_COMPRESSION_ZSTD))
		put_u64(o, "zstd_window_log", img->zstd_windowlog + 10u);
	if (img->packed_nid)
		put_u64(o, "packed_nid", img->packed_nid);
}

static void inspect_super(struct out *o, struct erofs_image *img)
{
	const struct erofs_super_block *sb = &img->sb;
	char buf[128];
	const uint8_t *u = sb->uuid;

	put_cstr(o, "image", img->name);
	key(o, "magic");
	strbuf_addf(o->sb, o->json ? "%u" : "0x%08x", le32_to_cpu(sb->magic));
	end_line(o);
	put_u64(o, "block_size", img->blksz);
	snprintf(buf, sizeof(buf),
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9], u[10], u[11],
		 u[12], u[13], u[14], u[15]);
	put_cstr(o, "uuid", buf);
	put_str(o, "label", (const char *)sb->volume_name,
		field_len(sb->volume_name, sizeof(sb->volume_name)));
	put_features(o, "feature_compat", "compat_features", false, img->feature_compat);
	put_features(o, "feature_incompat", "incompat_features", true, img->feature_incompat);
	key(o, "checksum");
	if (o->json)
		strbuf_addf(o->sb, "%u,\"checksum_verified\":%s", le32_to_cpu(sb->checksum),
			    img->checksum_ok ? "true" : "false");
	else
		strbuf_addf(o->sb, "0x%08x (%s)", le32_to_cpu(sb->checksum),
			    img->checksum_ok ? "verified" : "not used");
	end_line(o);
	put_u64(o, "root_nid", img->root_nid);
	put_u64(o, "inodes", img->inos);
	put_u64(o, "blocks", img->blocks);
	if (o->json) {
		put_u64(o, "build_time", img->build_time);
		put_u64(o, "build_time_nsec", img->build_time_nsec);
	} else {
		format_time(buf, sizeof(buf), (int64_t)img->build_time, img->build_time_nsec);
		put_cstr(o, "build_time", buf);
	}
	put_u64(o, "meta_blkaddr", img->meta_blkaddr);
	put_u64(o, "xattr_blkaddr", img->xattr_blkaddr);
	if (img->feature_incompat & (EROFS_FEATURE_INCOMPAT_ZERO_PADDING |
				     EROFS_FEATURE_INCOMPAT_COMPR_CFGS |
				     EROFS_FEATURE_INCOMPAT_ZTAILPACKING |
				     EROFS_FEATURE_INCOMPAT_FRAGMENTS))
		put_compression(o, img);
	put_devices(o, img);
}

/* ------------------------------------------------------------ xattrs */

struct xattr_out {
	struct out *o;
	unsigned count;
};

static bool printable(const uint8_t *p, size_t n)
{
	if (n && p[n - 1] == '\0')
		n--;            /* a C string value */
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x20 || p[i] >= 0x7f)
			return false;
	return true;
}

static int xattr_out_cb(void *ctx, const char *name, const void *value, size_t len,
			bool shared)
{
	struct xattr_out *x = ctx;
	struct out *o = x->o;
	const uint8_t *v = value;
	bool text = printable(v, len);

	if (!o->json) {
		size_t shown = len > TEXT_VALUE_MAX ? TEXT_VALUE_MAX : len;

		strbuf_addstr(o->sb, "  ");
		strbuf_add_escaped_text(o->sb, name, strlen(name), true);
		strbuf_addstr(o->sb, text ? " = \"" : " = hex:");
		if (text)
			strbuf_add_escaped_text(o->sb, value, shown, true);
		else
			add_hex(o->sb, v, shown);
		strbuf_addf(o->sb, "%s%s%s\n", text ? "\"" : "", shown < len ? "..." : "",
			    shared ? " (shared)" : "");
		x->count++;
		return 0;
	}
	if (x->count++)
		strbuf_addch(o->sb, ',');
	open_obj(o);
	put_cstr(o, "name", name);
	key(o, "shared");
	strbuf_addstr(o->sb, shared ? "true" : "false");
	put_u64(o, "size", len);
	if (text)
		put_str(o, "value", value, len);
	key(o, "value_hex");
	strbuf_addch(o->sb, '"');
	add_hex(o->sb, v, len);
	strbuf_addch(o->sb, '"');
	close_obj(o);
	return 0;
}

static int put_xattrs(struct out *o, struct erofs_image *img, const struct erofs_inode *inode)
{
	struct xattr_out x = { .o = o };
	char buf[16];
	int ret;

	put_u64(o, "xattr_size", inode->xattr_isize);
	if (inode->xattr_isize && erofs_xattr_filter_active(img)) {
		uint32_t filter;

		ret = erofs_xattr_filter(img, inode, &filter);
		if (ret)
			return ret;
		snprintf(buf, sizeof(buf), "0x%08x", filter);
		put_cstr(o, "xattr_name_filter", buf);
	}
	section(o, "xattrs");
	if (o->json)
		strbuf_addch(o->sb, '[');
	ret = erofs_iterate_xattrs(img, inode, xattr_out_cb, &x);
	if (o->json) {
		strbuf_addch(o->sb, ']');
		o->first = false;
	}
	return ret;
}

/* ------------------------------------------------------------ data */

struct run {
	uint64_t first, count;
	bool hole;
	unsigned devid;
	uint64_t block;
	uint64_t step;          /* blocks between entries: chunk size, or 0 (repeats) */
};

static void put_run(struct out *o, const struct run *r, uint64_t chunk_blocks, bool *any)
{
	if (!o->json) {
		if (r->count == 1)
			strbuf_addf(o->sb, "    chunk %llu: ", (unsigned long long)r->first);
		else
			strbuf_addf(o->sb, "    chunks %llu-%llu: ", (unsigned long long)r->first,
				    (unsigned long long)(r->first + r->count - 1));
		if (r->hole)
			strbuf_addstr(o->sb, "hole\n");
		else if (r->count > 1 && !r->step)
			strbuf_addf(o->sb, "device %u, blocks %llu-%llu, repeated\n", r->devid,
				    (unsigned long long)r->block,
				    (unsigned long long)(r->block + chunk_blocks - 1));
		else
			strbuf_addf(o->sb, "device %u, blocks %llu-%llu\n", r->devid,
				    (unsigned long long)r->block,
				    (unsigned long long)(r->block + r->count * chunk_blocks - 1));
		return;
	}
	if (*any)
		strbuf_addch(o->sb, ',');
	*any = true;
	open_obj(o);
	put_u64(o, "first", r->first);
	put_u64(o, "count", r->count);
	if (r->hole) {
		key(o, "hole");
		strbuf_addstr(o->sb, "true");
	} else {
		put_u64(o, "device", r->devid);
		put_u64(o, "block", r->block);
		if (r->count > 1 && !r->step) {
			key(o, "repeated");
			strbuf_addstr(o->sb, "true");
		}
	}
	close_obj(o);
}

/* The chunk map, consecutive entries (holes, or blocks following on the
 * same device) merged into runs. */
static int put_chunks(struct out *o, struct erofs_image *img, const struct erofs_inode *inode)
{
	uint64_t nchunks = inode->size ? ((inode->size - 1) >> inode->chunkbits) + 1 : 0;
	uint64_t chunk_blocks = 1ull << (inode->chunkbits - img->blkszbits);
	struct run r = { 0 };
	bool any = false;

	put_u64(o, "chunk_size", 1ull << inode->chunkbits);
	put_cstr(o, "chunk_index", inode->chunkformat & EROFS_CHUNK_FORMAT_INDEXES ?
		 "indexes" : "blockmap");
	section(o, "chunks");
	if (o->json)
		strbuf_addch(o->sb, '[');
	/* bounded: the index array was range-checked against the image */
	for (uint64_t i = 0; i < nchunks; i++) {
		struct erofs_map map;
		int ret = erofs_map_blocks(img, inode, i << inode->chunkbits, &map);
		bool hole = map.physical == UINT64_MAX;
		uint64_t block = hole ? 0 : map.physical >> img->blkszbits;

		if (ret)
			return ret;
		/* a run goes on with holes, or with blocks at a fixed step
		 * (following each other, or the same block repeated) */
		if (r.count == 1 && !hole && !r.hole && r.devid == map.devid &&
		    (block == r.block || block == r.block + chunk_blocks))
			r.step = block - r.block;
		if (r.count && r.hole == hole &&
		    (hole || (r.devid == map.devid && block == r.block + r.count * r.step))) {
			r.count++;
			continue;
		}
		if (r.count)
			put_run(o, &r, chunk_blocks, &any);
		r = (struct run){ .first = i, .count = 1, .hole = hole, .devid = map.devid,
				  .block = block, .step = chunk_blocks };
	}
	if (r.count)
		put_run(o, &r, chunk_blocks, &any);
	if (o->json) {
		strbuf_addch(o->sb, ']');
		o->first = false;
	}
	return 0;
}

static int put_flat(struct out *o, struct erofs_image *img, const struct erofs_inode *inode)
{
	struct erofs_map map = { 0 }, tail = { 0 };
	uint64_t off = 0;
	int ret;

	if (inode->size) {
		ret = erofs_map_blocks(img, inode, 0, &map);
		if (ret)
			return ret;
		off = map.logical + map.length;
		if (map.inline_tail) {
			tail = map;
			map.length = 0;
		} else if (off < inode->size) {
			ret = erofs_map_blocks(img, inode, off, &tail);
			if (ret)
				return ret;
		}
	}
	if (map.length) {
		uint64_t first = map.physical >> img->blkszbits;
		uint64_t count = DIV_ROUND_UP(map.length, img->blksz);

		key(o, "blocks");
		if (o->json)
			strbuf_addf(o->sb, "{\"device\":%u,\"start_block\":%llu,\"count\":%llu}",
				    map.devid, (unsigned long long)first, (unsigned long long)count);
		else
			strbuf_addf(o->sb, "device %u, blocks %llu-%llu (%llu)", map.devid,
				    (unsigned long long)first,
				    (unsigned long long)(first + count - 1), (unsigned long long)count);
		end_line(o);
	}
	if (tail.length) {
		key(o, "inline_tail");
		if (o->json)
			strbuf_addf(o->sb, "{\"offset\":%llu,\"length\":%llu}",
				    (unsigned long long)tail.physical, (unsigned long long)tail.length);
		else
			strbuf_addf(o->sb, "%llu bytes at image offset %llu",
				    (unsigned long long)tail.length, (unsigned long long)tail.physical);
		end_line(o);
	}
	return 0;
}

#define EXTENTS_LISTED 256      /* longer extent lists are cut (counts stay exact) */

static void put_bool(struct out *o, const char *k, bool v)
{
	key(o, k);
	strbuf_addstr(o->sb, o->json ? (v ? "true" : "false") : (v ? "yes" : "no"));
	end_line(o);
}

static void put_extent(struct out *o, const struct erofs_map *m, bool *any)
{
	const char *alg = erofs_algorithm_name(m->algorithm);

	if (!o->json) {
		strbuf_addf(o->sb, "    %llu..%llu: ", (unsigned long long)m->logical,
			    (unsigned long long)(m->logical + m->length));
		if (m->fragment)
			strbuf_addf(o->sb, "fragment, %llu bytes at packed-inode offset %llu\n",
				    (unsigned long long)m->length, (unsigned long long)m->physical);
		else if (m->inline_tail)
			strbuf_addf(o->sb, "%s, %llu bytes inline at image offset %llu%s\n", alg,
				    (unsigned long long)m->plength, (unsigned long long)m->physical,
				    m->partial_ref ? ", partial" : "");
		else
			strbuf_addf(o->sb, "%s, %llu bytes on device %u at offset %llu%s\n", alg,
				    (unsigned long long)m->plength, m->devid,
				    (unsigned long long)m->physical,
				    m->partial_ref ? ", partial" : "");
		return;
	}
	if (*any)
		strbuf_addch(o->sb, ',');
	*any = true;
	open_obj(o);
	put_u64(o, "offset", m->logical);
	put_u64(o, "length", m->length);
	put_cstr(o, "algorithm", m->fragment ? "fragment" : alg);
	if (!m->fragment && !m->inline_tail)
		put_u64(o, "device", m->devid);
	put_u64(o, m->fragment ? "packed_offset" : "physical", m->physical);
	put_u64(o, "compressed_length", m->plength);
	if (m->inline_tail)
		put_bool(o, "inline", true);
	if (m->partial_ref)
		put_bool(o, "partial_ref", true);
	close_obj(o);
}

/* Compressed inodes: the map header, then every extent (the list cut at
 * EXTENTS_LISTED), with the algorithms used and the compressed bytes. */
static int put_compressed(struct out *o, struct erofs_image *img, const struct erofs_inode *inode)
{
	struct z_erofs_info zi;
	struct erofs_map *list;
	uint64_t off = 0, count = 0, stored = 0;
	unsigned used = 0, n = 0;       /* algorithms seen in extents, bit per id */
	bool any = false;
	int ret = z_erofs_inode_info(img, inode, &zi);

	if (ret)
		return ret;
	list = xcalloc(EXTENTS_LISTED, sizeof(*list));
	/* extents tile the file and each holds its offset, so this ends */
	while (off < inode->size) {
		struct erofs_map m;

		ret = erofs_map_blocks(img, inode, off, &m);
		if (!ret && (m.logical != off || !m.length))
			ret = erofs_err(img, inode->nid, EFSCORRUPTED,
					"compressed extent %llu..%llu does not follow offset %llu",
					(unsigned long long)m.logical,
					(unsigned long long)(m.logical + m.length),
					(unsigned long long)off);
		if (ret) {
			free(list);
			return ret;
		}
		if (count < EXTENTS_LISTED)
			list[count] = m;
		count++;
		if (!m.fragment) {
			stored += m.plength;
			used |= 1u << m.algorithm;
		}
		off = m.logical + m.length;
	}
	put_bool(o, "compressed", true);
	put_cstr(o, "indexes", inode->layout == EROFS_INODE_COMPRESSED_FULL ? "full" :
		 zi.advise & Z_EROFS_ADVISE_COMPACTED_2B ? "compact_2b" : "compact_4b");
	key(o, "algorithms");
	if (o->json)
		strbuf_addch(o->sb, '[');
	for (unsigned a = 0; a < 32; a++)
		if (used & (1u << a))
			strbuf_addf(o->sb, o->json ? "%s\"%s\"" : "%s%s", n++ ? (o->json ? "," : " ") : "",
				    erofs_algorithm_name(a));
	if (o->json)
		strbuf_addch(o->sb, ']');
	else if (!n)
		strbuf_addstr(o->sb, count ? "(fragment)" : "(none)");
	end_line(o);
	put_u64(o, "compressed_blocks", inode->compressed_blocks);
	put_u64(o, "compressed_size", stored);
	if (zi.whole_fragment) {
		put_bool(o, "whole_file_fragment", true);
	} else if (inode->size) {
		put_u64(o, "lcluster_size", 1ull << zi.lclusterbits);
		put_bool(o, "big_pcluster", zi.advise & (Z_EROFS_ADVISE_BIG_PCLUSTER_1 |
							  Z_EROFS_ADVISE_BIG_PCLUSTER_2));
		if (zi.idata_size)
			put_u64(o, "ztailpacking_inline_size", zi.idata_size);
		if (zi.advise & Z_EROFS_ADVISE_FRAGMENT_PCLUSTER)
			put_bool(o, "tail_fragment", true);
		if (zi.advise & Z_EROFS_ADVISE_INTERLACED_PCLUSTER)
			put_bool(o, "interlaced", true);
	}
	put_u64(o, "extent_count", count);
	section(o, "extents");
	if (o->json)
		strbuf_addch(o->sb, '[');
	for (uint64_t i = 0; i < count && i < EXTENTS_LISTED; i++)
		put_extent(o, &list[i], &any);
	if (!o->json && count > EXTENTS_LISTED)
		strbuf_addf(o->sb, "    ... %llu more\n", (unsigned long long)(count - EXTENTS_LISTED));
	if (o->json) {
		strbuf_addch(o->sb, ']');
		o->first = false;
	}
	free(list);
	return 0;
}

static int put_data(struct out *o, struct erofs_image *img, const struct erofs_inode *inode)
{
	int ret = 0;

	if (!S_ISREG(inode->mode) && !S_ISDIR(inode->mode) && !S_ISLNK(inode->mode))
		return 0;
	section(o, "data");
	if (o->json)
		open_obj(o);
	o->indent = 2;
	if (inode->layout == EROFS_INODE_CHUNK_BASED) {
		ret = put_chunks(o, img, inode);
	} else if (erofs_layout_compressed(inode->layout)) {
		ret = put_compressed(o, img, inode);
	} else {
		ret = put_flat(o, img, inode);
	}
	o->indent = 0;
	if (o->json)
		close_obj(o);
	return ret;
}

/* ------------------------------------------------------------ inode */

static int inspect_inode(struct out *o, struct erofs_image *img, const char *path,
			 const struct erofs_inode *inode)
{
	unsigned ftype = erofs_mode_to_ftype(inode->mode);
	char buf[128];
	int ret;

	put_cstr(o, "path", path);
	put_u64(o, "nid", inode->nid);
	put_cstr(o, "type", erofs_ftype_name(ftype));
	snprintf(buf, sizeof(buf), "%04o", inode->mode & 07777);
	put_cstr(o, "mode", buf);
	put_u64(o, "uid", inode->uid);
	put_u64(o, "gid", inode->gid);
	put_u64(o, "nlink", inode->nlink);
	put_u64(o, "size", inode->size);
	if (o->json) {
		key(o, "mtime");
		strbuf_addf(o->sb, "%lld", (long long)inode->mtime);
		put_u64(o, "mtime_nsec", inode->mtime_nsec);
	} else {
		format_time(buf, sizeof(buf), inode->mtime, inode->mtime_nsec);
		put_cstr(o, "mtime", buf);
	}
	put_cstr(o, "layout", erofs_layout_name(inode->layout));
	put_cstr(o, "inode_version", inode->version ? "extended" : "compact");
	put_u64(o, "inode_size", inode->inode_isize);
	put_u64(o, "ino", inode->ino);
	if (S_ISCHR(inode->mode) || S_ISBLK(inode->mode)) {
		put_u64(o, "rdev_major", erofs_dev_major(inode->rdev));
		put_u64(o, "rdev_minor", erofs_dev_minor(inode->rdev));
	}
	if (S_ISLNK(inode->mode)) {
		char target[EROFS_SYMLINK_MAX + 1];
		ssize_t n = erofs_readlink(img, inode, target, sizeof(target));

		if (n < 0)
			return (int)n;
		put_str(o, "target", target, (size_t)n);
	}
	ret = put_xattrs(o, img, inode);
	if (!ret)
		ret = put_data(o, img, inode);
	return ret;
}

/* The summary reads little, so vouch for the basics: the image holds all
 * its blocks and the root is a directory. */
static int check_summary(struct erofs_image *img)
{
	uint64_t want = (uint64_t)img->blocks << img->blkszbits;
	struct erofs_inode root;
	int ret;

	if (img->devs[0].size < want)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "image is truncated: the superblock says %u blocks (%llu bytes), the file has %llu bytes",
				 img->blocks, (unsigned long long)want,
				 (unsigned long long)img->devs[0].size);
	ret = erofs_read_inode(img, img->root_nid, &root);
	if (!ret && !S_ISDIR(root.mode))
		ret = erofs_err(img, root.nid, EFSCORRUPTED, "the root inode is not a directory");
	return ret;
}

int anole_image_inspect_open(struct erofs_image *img, const struct anole_inspect_opts *opts,
			     struct strbuf *out)
{
	struct out o = { .sb = out, .json = opts->json };
	struct erofs_inode inode;
	size_t start = out->len;
	int ret = 0;

	if (o.json)
		open_obj(&o);
	if (!opts->path) {
		ret = check_summary(img);
		if (!ret)
			inspect_super(&o, img);
	} else {
		ret = erofs_lookup(img, opts->path, &inode);
		if (!ret)
			ret = inspect_inode(&o, img, opts->path, &inode);
	}
	if (ret) {
		strbuf_setlen(out, start);
		return ret;
	}
	if (o.json)
		strbuf_addstr(out, "}\n");
	return 0;
}

int anole_image_inspect(const struct anole_inspect_opts *opts, struct strbuf *out)
{
	struct erofs_image *img;
	int ret;

	ret = erofs_image_open(&img, opts->image, opts->devices, opts->ndevices);
	if (ret)
		return ret;
	ret = anole_image_inspect_open(img, opts, out);
	erofs_image_close(img);
	return ret;
}
