// SPDX-License-Identifier: Apache-2.0
/*
 * Extended attributes: the inline body after the inode (header, shared ids,
 * entries) and shared entries at xattr_blkaddr * blksz + 4 * id. Names are
 * rebuilt from the short prefix indexes 1..6; long prefixes are refused.
 * The per-inode name filter (a 32-bit bloom filter of xxh32 hashes) is
 * exposed so that check can find xattrs the kernel would not look up.
 */
#include "reader/internal.h"

#include "anole/endian.h"
#include "anole/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const xattr_prefixes[] = {
	[EROFS_XATTR_INDEX_USER] = "user.",
	[EROFS_XATTR_INDEX_POSIX_ACL_ACCESS] = "system.posix_acl_access",
	[EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT] = "system.posix_acl_default",
	[EROFS_XATTR_INDEX_TRUSTED] = "trusted.",
	[EROFS_XATTR_INDEX_LUSTRE] = "lustre.",
	[EROFS_XATTR_INDEX_SECURITY] = "security.",
};

/* Build the full name and hand one entry to the callback. */
static int emit(struct erofs_image *img, const struct erofs_inode *inode,
		const struct erofs_xattr_entry *e, const uint8_t *body, bool shared,
		erofs_xattr_fn fn, void *ctx)
{
	unsigned index = e->e_name_index, len = e->e_name_len;
	const char *prefix;
	char name[64 + EROFS_NAME_LEN + 1];

	if (index & EROFS_XATTR_LONG_PREFIX)
		return erofs_err(img, inode->nid, EOPNOTSUPP,
				 "xattr with a long name prefix (index 0x%x) is not supported", index);
	if (index >= ARRAY_SIZE(xattr_prefixes) || !xattr_prefixes[index])
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "xattr with unknown name index %u", index);
	if (memchr(body, '\0', len))
		return erofs_err(img, inode->nid, EFSCORRUPTED, "xattr name contains a NUL byte");
	/* ACL names are the prefix alone; the others need a suffix */
	if ((index == EROFS_XATTR_INDEX_POSIX_ACL_ACCESS ||
	     index == EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT) != !len)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "xattr with name index %u has a %s name suffix", index,
				 len ? "non-empty" : "empty");
	prefix = xattr_prefixes[index];
	/* Linux refuses longer names (XATTR_NAME_MAX): the kernel's
	 * listxattr() fails with ERANGE on such an entry */
	if (strlen(prefix) + len > EROFS_NAME_LEN)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "xattr name %s%.*s... is longer than 255 bytes", prefix, 16,
				 (const char *)body);
	snprintf(name, sizeof(name), "%s%.*s", prefix, (int)len, (const char *)body);
	return fn(ctx, name, body + len, le16_to_cpu(e->e_value_size), shared);
}

static int read_shared(struct erofs_image *img, const struct erofs_inode *inode,
		       uint32_t id, erofs_xattr_fn fn, void *ctx)
{
	uint64_t pos = ((uint64_t)img->xattr_blkaddr << img->blkszbits) + 4ull * id;
	struct erofs_xattr_entry e;
	uint8_t *body;
	size_t len;
	int ret;

	if (!erofs_dev_range_ok(img, 0, pos, sizeof(e)))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "shared xattr %u is beyond the end of the image", id);
	ret = erofs_dev_pread(img, 0, &e, sizeof(e), pos);
	if (ret)
		return ret;
	len = (size_t)e.e_name_len + le16_to_cpu(e.e_value_size);
	if (!erofs_dev_range_ok(img, 0, pos + sizeof(e), len))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "shared xattr %u is beyond the end of the image", id);
	body = xmalloc(len);
	ret = erofs_dev_pread(img, 0, body, len, pos + sizeof(e));
	if (!ret)
		ret = emit(img, inode, &e, body, true, fn, ctx);
	free(body);
	return ret;
}

static int walk_body(struct erofs_image *img, const struct erofs_inode *inode,
		     const uint8_t *buf, erofs_xattr_fn fn, void *ctx)
{
	const struct erofs_xattr_ibody_header *h = (const void *)buf;
	unsigned size = inode->xattr_isize, pos;
	int ret;

	pos = sizeof(*h) + 4u * h->h_shared_count;
	if (pos > size)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "xattr header lists %u shared xattrs but the body has %u bytes",
				 h->h_shared_count, size);
	for (unsigned i = 0; i < h->h_shared_count; i++) {
		uint32_t id;

		memcpy(&id, buf + sizeof(*h) + 4u * i, sizeof(id));
		ret = read_shared(img, inode, le32_to_cpu(id), fn, ctx);
		if (ret)
			return ret;
	}
	/* each entry takes at least 4 bytes of a bounded body */
	while (pos < size) {
		struct erofs_xattr_entry e;
		unsigned esize;

		if (size - pos < sizeof(e))
			return erofs_err(img, inode->nid, EFSCORRUPTED,
					 "truncated xattr entry at body offset %u", pos);
		memcpy(&e, buf + pos, sizeof(e));
		esize = erofs_xattr_entry_size(e.e_name_len, le16_to_cpu(e.e_value_size));
		if (esize > size - pos)
			return erofs_err(img, inode->nid, EFSCORRUPTED,
					 "xattr entry at body offset %u (%u bytes) overflows the %u-byte body",
					 pos, esize, size);
		ret = emit(img, inode, &e, buf + pos + sizeof(e), false, fn, ctx);
		if (ret)
			return ret;
		pos += esize;
	}
	return 0;
}

int erofs_iterate_xattrs(struct erofs_image *img, const struct erofs_inode *inode,
			 erofs_xattr_fn fn, void *ctx)
{
	uint8_t *buf;
	int ret;

	if (!inode->xattr_isize)
		return 0;
	/* xattr_isize >= 12 here, and was range-checked with the inode */
	buf = xmalloc(inode->xattr_isize);
	ret = erofs_dev_pread(img, 0, buf, inode->xattr_isize,
			      inode->iloc + inode->inode_isize);
	if (!ret)
		ret = walk_body(img, inode, buf, fn, ctx);
	free(buf);
	return ret;
}

/* ---------------------------------------------------------- name filter */

#define XXH_P1 0x9E3779B1u
#define XXH_P2 0x85EBCA77u
#define XXH_P3 0xC2B2AE3Du
#define XXH_P4 0x27D4EB2Fu
#define XXH_P5 0x165667B1u
#define EROFS_XATTR_FILTER_SEED 0x25BBE08Fu

static uint32_t rotl32(uint32_t v, unsigned r) { return v << r | v >> (32 - r); }

static uint32_t read32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint32_t xxh32_round(uint32_t acc, uint32_t lane)
{
	return rotl32(acc + lane * XXH_P2, 13) * XXH_P1;
}

/* xxHash32, as the kernel's xxh32() (names are short: no need for speed). */
static uint32_t xxh32(const void *data, size_t len, uint32_t seed)
{
	const uint8_t *p = data, *end = p + len;
	uint32_t h;

	if (len >= 16) {
		uint32_t v1 = seed + XXH_P1 + XXH_P2, v2 = seed + XXH_P2;
		uint32_t v3 = seed, v4 = seed - XXH_P1;

		for (; end - p >= 16; p += 16) {
			v1 = xxh32_round(v1, read32(p));
			v2 = xxh32_round(v2, read32(p + 4));
			v3 = xxh32_round(v3, read32(p + 8));
			v4 = xxh32_round(v4, read32(p + 12));
		}
		h = rotl32(v1, 1) + rotl32(v2, 7) + rotl32(v3, 12) + rotl32(v4, 18);
	} else {
		h = seed + XXH_P5;
	}
	h += (uint32_t)len;
	for (; end - p >= 4; p += 4)
		h = rotl32(h + read32(p) * XXH_P3, 17) * XXH_P4;
	for (; p < end; p++)
		h = rotl32(h + *p * XXH_P5, 11) * XXH_P1;
	h ^= h >> 15;
	h *= XXH_P2;
	h ^= h >> 13;
	h *= XXH_P3;
	h ^= h >> 16;
	return h;
}

bool erofs_xattr_filter_active(const struct erofs_image *img)
{
	return (img->feature_compat & EROFS_FEATURE_COMPAT_XATTR_FILTER) &&
	       !img->sb.xattr_filter_reserved;
}

int erofs_xattr_filter_bit(const char *name)
{
	for (unsigned i = 1; i < ARRAY_SIZE(xattr_prefixes); i++) {
		size_t n = strlen(xattr_prefixes[i]);

		if (!strncmp(name, xattr_prefixes[i], n))
			return (int)(xxh32(name + n, strlen(name + n),
					   EROFS_XATTR_FILTER_SEED + i) & 31);
	}
	return -1;
}

int erofs_xattr_filter(struct erofs_image *img, const struct erofs_inode *inode,
		       uint32_t *filter)
{
	uint32_t raw;
	int ret;

	*filter = 0;
	if (!inode->xattr_isize)
		return 0;
	ret = erofs_dev_pread(img, 0, &raw, sizeof(raw), inode->iloc + inode->inode_isize);
	if (!ret)
		*filter = le32_to_cpu(raw);
	return ret;
}
