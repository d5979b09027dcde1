// SPDX-License-Identifier: Apache-2.0
/*
 * Extended attributes: read every namespace from the source, keep one copy
 * of each distinct name+value, and store those carried by several inodes
 * once in the shared area (an inode then holds a 4-byte id instead).
 */
#include "builder.h"
#include "anole/endian.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#define MAX_SHARED_PER_INODE 255     /* h_shared_count is a u8 */

static const struct {
	const char *prefix;
	uint8_t index;
	bool exact;                      /* the whole name, no suffix */
} prefixes[] = {
	{ "user.", EROFS_XATTR_INDEX_USER, false },
	{ "system.posix_acl_access", EROFS_XATTR_INDEX_POSIX_ACL_ACCESS, true },
	{ "system.posix_acl_default", EROFS_XATTR_INDEX_POSIX_ACL_DEFAULT, true },
	{ "trusted.", EROFS_XATTR_INDEX_TRUSTED, false },
	{ "security.", EROFS_XATTR_INDEX_SECURITY, false },
};

struct xattr_key {
	uint8_t index;
	uint8_t suffix_len;
	uint16_t value_len;
	const char *suffix;
	const void *value;
};

static bool xattr_eq(const void *entry, const void *key)
{
	const struct bxattr *x = entry;
	const struct xattr_key *k = key;

	return x->index == k->index && x->suffix_len == k->suffix_len &&
	       x->value_len == k->value_len && !memcmp(x->suffix, k->suffix, k->suffix_len) &&
	       !memcmp(x->value, k->value, k->value_len);
}

static uint64_t xattr_hash(const struct xattr_key *k)
{
	uint64_t h = anole_hash_bytes(k->suffix, k->suffix_len, k->index);

	return anole_hash_bytes(k->value, k->value_len, h);
}

void builder_init_xattrs(struct builder *b)
{
	anole_hashmap_init(&b->xattrs, xattr_eq);
}

static int split_name(const char *path, const char *name, uint8_t *index, const char **suffix)
{
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
		size_t plen = strlen(prefixes[i].prefix);

		if (prefixes[i].exact ? !strcmp(name, prefixes[i].prefix)
				      : !strncmp(name, prefixes[i].prefix, plen)) {
			*index = prefixes[i].index;
			*suffix = name + plen;
			if (!prefixes[i].exact && !**suffix)
				break;
			if (strlen(*suffix) > 255)
				return anole_error_code(ENAMETOOLONG, "%s: xattr name '%s' is too long",
							path, name);
			return 0;
		}
	}
	return anole_error_code(EOPNOTSUPP, "%s: xattr '%s' is in a namespace EROFS cannot hold "
				"(user., trusted., security., system.posix_acl_*)", path, name);
}

static struct bxattr *intern(struct builder *b, const struct xattr_key *k)
{
	uint64_t h = xattr_hash(k);
	struct bxattr *x = anole_hashmap_get(&b->xattrs, h, k);

	if (x)
		return x;
	x = xcalloc(1, sizeof(*x));
	x->index = k->index;
	x->suffix_len = k->suffix_len;
	x->value_len = k->value_len;
	x->suffix = xmemdup(k->suffix, k->suffix_len);
	x->value = xmemdup(k->value, k->value_len);
	x->shared_id = -1;
	x->hash = h;
	anole_hashmap_put(&b->xattrs, h, x);
	xgrow(&b->xattr_list, &b->xattr_list_alloc, b->nxattr_list + 1, sizeof(*b->xattr_list));
	b->xattr_list[b->nxattr_list++] = x;
	return x;
}

static int cmp_xattr(const void *a, const void *b)
{
	const struct bxattr *x = *(const struct bxattr *const *)a;
	const struct bxattr *y = *(const struct bxattr *const *)b;
	int c;

	if (x->index != y->index)
		return x->index < y->index ? -1 : 1;
	c = memcmp(x->suffix, y->suffix, x->suffix_len < y->suffix_len ? x->suffix_len : y->suffix_len);
	if (c)
		return c;
	if (x->suffix_len != y->suffix_len)
		return x->suffix_len < y->suffix_len ? -1 : 1;
	c = memcmp(x->value, y->value, x->value_len < y->value_len ? x->value_len : y->value_len);
	if (c)
		return c;
	return (x->value_len > y->value_len) - (x->value_len < y->value_len);
}

/* The names, their total length, or -errno (*names is then NULL). */
static ssize_t list_names(const char *path, char **names)
{
	ssize_t len = llistxattr(path, NULL, 0);

	*names = NULL;
	if (len < 0 && (errno == ENOTSUP || errno == ENODATA))
		return 0;
	while (len > 0) {
		*names = xrealloc(*names, (size_t)len + 1);
		ssize_t got = llistxattr(path, *names, (size_t)len);

		if (got >= 0)
			return got;
		if (errno != ERANGE)
			break;
		/* grown since it was sized */
		len = llistxattr(path, NULL, 0);
	}
	if (len == 0)
		return 0;
	len = -errno;
	free(*names);
	*names = NULL;
	return len;
}

/* The value, its length, or -errno (*value is then NULL). */
static ssize_t get_value(const char *path, const char *name, uint8_t **value)
{
	ssize_t len = lgetxattr(path, name, NULL, 0);

	*value = NULL;
	while (len >= 0) {
		*value = xrealloc(*value, (size_t)len + 1);
		ssize_t got = lgetxattr(path, name, *value, (size_t)len);

		if (got >= 0)
			return got;
		if (errno != ERANGE)
			break;
		len = lgetxattr(path, name, NULL, 0);
	}
	len = -errno;
	free(*value);
	*value = NULL;
	return len;
}

int builder_add_xattr(struct builder *b, struct bnode *n, size_t *alloc, const char *name,
		      const void *value, size_t len)
{
	struct xattr_key k;
	int ret = split_name(n->path, name, &k.index, &k.suffix);

	if (ret)
		return ret;
	if (len > UINT16_MAX)
		return anole_error_code(E2BIG, "%s: xattr %s has a %zu-byte value (EROFS holds up to %u)",
					n->path, name, len, UINT16_MAX);
	k.suffix_len = (uint8_t)strlen(k.suffix);
	k.value_len = (uint16_t)len;
	k.value = value;
	xgrow(&n->xattrs, alloc, n->nxattrs + 1, sizeof(*n->xattrs));
	n->xattrs[n->nxattrs++] = intern(b, &k);
	return 0;
}

void builder_sort_xattrs(struct bnode *n)
{
	if (n->nxattrs > 1)
		qsort(n->xattrs, n->nxattrs, sizeof(*n->xattrs), cmp_xattr);
}

int builder_read_xattrs(struct builder *b, struct bnode *n, int dfd, const char *name_in_dir)
{
	char *names = NULL, fdpath[64 + 256];
	const char *path = n->path;
	size_t alloc = 0;
	ssize_t len;
	int ret = 0;

	/* the *xattr calls take paths: past PATH_MAX go through the dir fd */
	if (dfd >= 0 && strlen(n->path) >= PATH_MAX) {
		snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d/%s", dfd, name_in_dir);
		path = fdpath;
	}
	len = list_names(path, &names);

	if (len < 0)
		return anole_error((int)-len, "cannot list xattrs of %s", n->path);
	for (char *name = names; name < names + len; name += strlen(name) + 1) {
		uint8_t index;
		const char *suffix;
		uint8_t *value;
		ssize_t vlen;

		if (!*name)
			continue;
		ret = split_name(n->path, name, &index, &suffix);  /* before reading it */
		if (ret)
			break;
		vlen = get_value(path, name, &value);
		if (vlen == -ENODATA)   /* removed since listed */
			continue;
		if (vlen < 0) {
			ret = anole_error((int)-vlen, "cannot read xattr %s of %s", name, n->path);
			break;
		}
		ret = builder_add_xattr(b, n, &alloc, name, value, (size_t)vlen);
		free(value);
		if (ret)
			break;
	}
	free(names);
	if (!ret)
		builder_sort_xattrs(n);
	return ret;
}

/*
 * Decide which xattrs are shared. Called once every node is known (after
 * scan), so reference counts are complete; ids are assigned in sorted
 * order so that the image does not depend on hash-table order.
 */
void builder_plan_shared_xattrs(struct builder *b)
{
	uint64_t off = 0;

	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *n = b->order[i];

		for (unsigned j = 0; j < n->nxattrs; j++)
			n->xattrs[j]->refs++;
	}
	if (b->nxattr_list > 1)
		qsort(b->xattr_list, b->nxattr_list, sizeof(*b->xattr_list), cmp_xattr);
	for (size_t i = 0; i < b->nxattr_list; i++) {
		struct bxattr *x = b->xattr_list[i];

		if (x->refs < 2)
			continue;
		x->shared_id = (int64_t)(off / 4);
		off += erofs_xattr_entry_size(x->suffix_len, x->value_len);
		b->st->shared_xattrs++;
	}
	b->shared_xattr_bytes = off;
}

static bool stored_shared(const struct bnode *n, unsigned j, unsigned *nshared)
{
	if (n->xattrs[j]->shared_id < 0 || *nshared >= MAX_SHARED_PER_INODE)
		return false;
	(*nshared)++;
	return true;
}

/* Size of the inline xattr body; sets xattr_icount and nshared. 0 on overflow. */
uint32_t builder_xattr_ibody(struct builder *b, struct bnode *n)
{
	uint64_t size = 12;
	unsigned nshared = 0;

	if (!n->nxattrs)
		return n->xattr_icount = 0, n->nshared = 0, 0;
	for (unsigned j = 0; j < n->nxattrs; j++) {
		const struct bxattr *x = n->xattrs[j];

		if (stored_shared(n, j, &nshared))
			size += 4;
		else
			size += erofs_xattr_entry_size(x->suffix_len, x->value_len);
	}
	if ((size - 12) / 4 + 1 > UINT16_MAX)
		return 0;
	n->nshared = nshared;
	n->xattr_icount = (uint16_t)((size - 12) / 4 + 1);
	return (uint32_t)size;
}

static uint8_t *put_entry(uint8_t *p, const struct bxattr *x)
{
	struct erofs_xattr_entry e = {
		.e_name_len = x->suffix_len,
		.e_name_index = x->index,
		.e_value_size = cpu_to_le16(x->value_len),
	};
	unsigned size = erofs_xattr_entry_size(x->suffix_len, x->value_len);

	memcpy(p, &e, sizeof(e));
	memcpy(p + 4, x->suffix, x->suffix_len);
	memcpy(p + 4 + x->suffix_len, x->value, x->value_len);
	memset(p + 4 + x->suffix_len + x->value_len, 0,
	       size - 4 - x->suffix_len - x->value_len);
	return p + size;
}

void builder_write_xattr_ibody(struct builder *b, const struct bnode *n, uint8_t *out)
{
	struct erofs_xattr_ibody_header h = { 0 };
	uint8_t *p = out + sizeof(h);
	unsigned nshared = 0;

	if (!n->nxattrs)
		return;
	h.h_shared_count = (uint8_t)n->nshared;
	memcpy(out, &h, sizeof(h));
	for (unsigned j = 0; j < n->nxattrs; j++) {
		if (stored_shared(n, j, &nshared)) {
			uint32_t id = cpu_to_le32((uint32_t)n->xattrs[j]->shared_id);

			memcpy(p, &id, 4);
			p += 4;
		}
	}
	nshared = 0;
	for (unsigned j = 0; j < n->nxattrs; j++)
		if (!stored_shared(n, j, &nshared))
			p = put_entry(p, n->xattrs[j]);
}

void builder_write_shared_xattrs(struct builder *b, uint8_t *out)
{
	for (size_t i = 0; i < b->nxattr_list; i++) {
		const struct bxattr *x = b->xattr_list[i];

		if (x->shared_id >= 0)
			put_entry(out + x->shared_id * 4, x);
	}
}

void builder_free_xattrs(struct builder *b)
{
	for (size_t i = 0; i < b->nxattr_list; i++) {
		free(b->xattr_list[i]->suffix);
		free(b->xattr_list[i]->value);
		free(b->xattr_list[i]);
	}
	free(b->xattr_list);
	b->xattr_list = NULL;
	b->nxattr_list = 0;
	if (b->xattrs.slots)
		anole_hashmap_free(&b->xattrs);
}
