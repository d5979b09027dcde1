// SPDX-License-Identifier: Apache-2.0
/*
 * `anole image check`: walk the tree from the root without recursion,
 * visit every inode once (a nid table counts the dirents naming it), read
 * every data byte and every xattr, and report each problem with its path.
 * The reader does the bounds checking; this file checks the relations
 * between structures: names, order, types, links, cycles, devices.
 */
#include "reader/internal.h"

#include "anole/blobmeta.h"
#include "anole/digest.h"
#include "anole/endian.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/hashmap.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CK_BUF_SIZE (1u << 20)
#define CK_PATH_MAX 4096        /* longer paths are shortened in messages */

enum { NODE_DIR = 1, NODE_BAD = 2 };

struct ck_node {
	erofs_nid_t nid;
	erofs_nid_t parent;     /* directory of the first dirent naming it */
	char *name;             /* that dirent's name; NULL for the root */
	uint32_t nlink, refs;
	uint16_t mode;
	uint8_t flags;
};

struct ck {
	struct erofs_image *img;
	struct anole_check_result *res;
	unsigned max_errors, unsupported;
	bool stop;
	/* each node allocated once, so that the nid map can point at it */
	struct ck_node **nodes;         /* in discovery order: parents first */
	size_t nnodes, nodes_alloc;
	struct anole_hashmap by_nid;    /* nid -> struct ck_node */
	struct ck_node **stack;         /* directories still to scan */
	size_t nstack, stack_alloc;
	uint8_t *buf;
	bool warned_missing_dev, warned_chunk_feature;
	struct anole_progress *progress;
};

/* ------------------------------------------------------------ nid table */

static bool node_eq(const void *entry, const void *key)
{
	return ((const struct ck_node *)entry)->nid == *(const erofs_nid_t *)key;
}

static struct ck_node *node_find(struct ck *ck, erofs_nid_t nid)
{
	return anole_hashmap_get(&ck->by_nid, anole_hash_u64(nid), &nid);
}

static struct ck_node *node_add(struct ck *ck, erofs_nid_t nid, erofs_nid_t parent,
				const char *name)
{
	struct ck_node *n = xmalloc(sizeof(*n));

	*n = (struct ck_node){ .nid = nid, .parent = parent,
			       .name = name ? xstrdup(name) : NULL };
	xgrow(&ck->nodes, &ck->nodes_alloc, ck->nnodes + 1, sizeof(*ck->nodes));
	ck->nodes[ck->nnodes++] = n;
	anole_hashmap_put(&ck->by_nid, anole_hash_u64(nid), n);
	return n;
}

/* ------------------------------------------------------------ messages */

/* Names are bytes: show control bytes and backslashes escaped. */
static void add_escaped(struct strbuf *sb, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f || c == '\\')
			strbuf_addf(sb, "\\x%02x", c);
		else
			strbuf_addch(sb, (char)c);
	}
}

/* The path of a known node, rebuilt from parent links (which always point
 * to earlier nodes, so the walk ends). */
static void node_path(struct ck *ck, const struct ck_node *n, struct strbuf *out)
{
	const char *parts[64];
	size_t nparts = 0, depth = 0;
	bool cut = false;

	if (!n) {
		strbuf_addstr(out, "superblock");
		return;
	}
	while (n && n->name) {
		if (nparts < ARRAY_SIZE(parts))
			parts[nparts++] = n->name;
		else
			cut = true;
		if (++depth > ck->nnodes)
			break;
		n = node_find(ck, n->parent);
	}
	if (cut)
		strbuf_addstr(out, "/...");
	if (!nparts)
		strbuf_addch(out, '/');
	while (nparts--) {
		strbuf_addch(out, '/');
		add_escaped(out, parts[nparts], strlen(parts[nparts]));
	}
}

static void entry_path(struct ck *ck, const struct ck_node *dir, const char *name,
		       size_t len, struct strbuf *out)
{
	node_path(ck, dir, out);
	if (out->len > 1)
		strbuf_addch(out, '/');
	add_escaped(out, name, len);
}

static void vreport(struct ck *ck, const char *path, erofs_nid_t nid, const char *fmt,
		    va_list ap)
{
	char msg[768];

	ck->res->errors++;
	if (ck->res->errors > ck->max_errors)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (nid == EROFS_NID_NONE)
		anole_error_code(EFSCORRUPTED, "%s: %s: %s", ck->img->name, path, msg);
	else
		anole_error_code(EFSCORRUPTED, "%s: %s (nid %llu): %s", ck->img->name, path,
				 (unsigned long long)nid, msg);
	if (ck->res->errors == ck->max_errors) {
		anole_error_code(EFSCORRUPTED, "%s: too many problems, stopping after %u",
				 ck->img->name, ck->max_errors);
		ck->stop = true;
	}
}

static void __attribute__((format(printf, 4, 5)))
report_node(struct ck *ck, const struct ck_node *n, erofs_nid_t nid, const char *fmt, ...)
{
	struct strbuf path = STRBUF_INIT;
	va_list ap;

	node_path(ck, n, &path);
	va_start(ap, fmt);
	vreport(ck, path.buf, nid, fmt, ap);
	va_end(ap);
	strbuf_release(&path);
}

static void __attribute__((format(printf, 6, 7)))
report_entry(struct ck *ck, const struct ck_node *dir, const char *name, size_t len,
	     erofs_nid_t nid, const char *fmt, ...)
{
	struct strbuf path = STRBUF_INIT;
	va_list ap;

	entry_path(ck, dir, name, len, &path);
	va_start(ap, fmt);
	vreport(ck, path.buf, nid, fmt, ap);
	va_end(ap);
	strbuf_release(&path);
}

/* A reader error: its message is in img->errmsg. */
static void report_read(struct ck *ck, const struct ck_node *n, int err)
{
	if (err == -EOPNOTSUPP)
		ck->unsupported++;
	report_node(ck, n, n->nid, "%s", ck->img->errmsg);
}

/* ------------------------------------------------------------ inodes */

/*
 * Values the kernel parses when they are read: an invalid one makes
 * getxattr() fail on a mounted image, so it is a problem here too.
 * ACLs as posix_acl_from_xattr() takes them; capabilities as
 * cap_inode_getsecurity() does (v2 or v3 headers only).
 */
#define ACL_XATTR_VERSION 2
#define VFS_CAP_FLAGS_EFFECTIVE 0x000001u

static const char *acl_problem(const uint8_t *v, size_t len)
{
	uint32_t version;

	if (len < 4)
		return "shorter than the ACL header";
	memcpy(&version, v, 4);
	if (le32_to_cpu(version) != ACL_XATTR_VERSION)
		return "unknown ACL version";
	if ((len - 4) % 8)
		return "size is not a whole number of ACL entries";
	for (size_t off = 4; off < len; off += 8) {
		uint16_t tag;
		uint32_t id;

		memcpy(&tag, v + off, 2);
		memcpy(&id, v + off + 4, 4);
		switch (le16_to_cpu(tag)) {
		case 0x01: case 0x04: case 0x10: case 0x20:     /* *_OBJ, MASK, OTHER */
			break;
		case 0x02: case 0x08:                           /* USER, GROUP */
			if (le32_to_cpu(id) == UINT32_MAX)
				return "ACL entry with an invalid id";
			break;
		default:
			return "ACL entry with an unknown tag";
		}
	}
	return NULL;
}

static const char *caps_problem(const uint8_t *v, size_t len)
{
	uint32_t magic, rootid;

	if (len < 4)
		return "shorter than the capability header";
	memcpy(&magic, v, 4);
	/* the revision, and no flag but VFS_CAP_FLAGS_EFFECTIVE */
	switch (le32_to_cpu(magic) & ~VFS_CAP_FLAGS_EFFECTIVE) {
	case 0x02000000u:
		return len == 20 ? NULL : "capability v2 value is not 20 bytes";
	case 0x03000000u:
		if (len != 24)
			return "capability v3 value is not 24 bytes";
		memcpy(&rootid, v + 20, 4);
		return le32_to_cpu(rootid) == UINT32_MAX ? "capability v3 with an invalid root id"
							 : NULL;
	default:
		return "capability value is not revision 2 or 3, or has unknown flags";
	}
}

struct xattr_scan {
	struct ck *ck;
	struct ck_node *n;
	bool filter;            /* the name filter is in force */
	uint32_t filter_bits;
};

static int xattr_cb(void *ctx, const char *name, const void *value, size_t len, bool shared)
{
	struct xattr_scan *xs = ctx;
	const char *problem = NULL;

	xs->ck->res->bytes_read += strlen(name) + len;
	if (!strcmp(name, "system.posix_acl_access") || !strcmp(name, "system.posix_acl_default"))
		problem = acl_problem(value, len);
	else if (!strcmp(name, "security.capability"))
		problem = caps_problem(value, len);
	if (problem)
		report_node(xs->ck, xs->n, xs->n->nid, "xattr %s: %s", name, problem);
	if (xs->filter) {
		int bit = erofs_xattr_filter_bit(name);

		if (bit >= 0 && (xs->filter_bits >> bit & 1))
			report_node(xs->ck, xs->n, xs->n->nid,
				    "xattr %s is hidden by the inode's xattr name filter (bit %d)",
				    name, bit);
	}
	return 0;
}

static bool dev_missing(struct ck *ck, unsigned devid)
{
	const struct erofs_dev *d = &ck->img->devs[devid];

	return d->fd < 0 && !d->mem && !d->pread;
}

/* Read every mapped byte of a file, directory or symlink. */
static void check_data(struct ck *ck, struct ck_node *n, const struct erofs_inode *inode)
{
	struct erofs_image *img = ck->img;
	uint64_t off = 0;

	if (inode->layout == EROFS_INODE_CHUNK_BASED &&
	    !(img->feature_incompat & EROFS_FEATURE_INCOMPAT_CHUNKED_FILE) &&
	    !ck->warned_chunk_feature) {
		anole_warn("%s: chunk-based inodes, but the superblock lacks the chunked_file feature",
			   img->name);
		ck->warned_chunk_feature = true;
	}
	/* maps cover the file in order; each is at least one byte long */
	while (off < inode->size && !ck->stop) {
		struct erofs_map map;
		uint64_t end;
		int ret = erofs_map_blocks(img, inode, off, &map);

		if (ret) {
			report_read(ck, n, ret);
			return;
		}
		end = map.logical + map.length;
		/* compressed extents must tile the file: each starts where the
		 * one before ended, and the last ends at i_size */
		if (map.encoded && (map.logical != off || end <= off || end > inode->size)) {
			report_node(ck, n, n->nid,
				    "compressed extent %llu..%llu does not follow the one ending at %llu",
				    (unsigned long long)map.logical, (unsigned long long)end,
				    (unsigned long long)off);
			return;
		}
		if (map.encoded)
			ck->res->compressed_extents++;
		if (map.physical != UINT64_MAX && dev_missing(ck, map.devid)) {
			if (!ck->warned_missing_dev)
				anole_warn("%s: extra device %u was not given (--device): its data is not read",
					   img->name, map.devid);
			ck->warned_missing_dev = true;
			off = end;
			continue;
		}
		if (map.physical == UINT64_MAX) {
			off = end;
			continue;
		}
		while (off < end) {
			size_t want = end - off > CK_BUF_SIZE ? CK_BUF_SIZE : (size_t)(end - off);
			ssize_t got = erofs_pread(img, inode, ck->buf, want, off);

			if (got < 0) {
				report_read(ck, n, (int)got);
				return;
			}
			if ((size_t)got != want) {
				report_node(ck, n, n->nid, "short read at offset %llu",
					    (unsigned long long)off);
				return;
			}
			ck->res->bytes_read += want;
			anole_progress_add(ck->progress, 0);
			off += want;
		}
	}
}

static void check_symlink(struct ck *ck, struct ck_node *n, const struct erofs_inode *inode)
{
	char target[EROFS_SYMLINK_MAX + 1];
	ssize_t ret = erofs_readlink(ck->img, inode, target, sizeof(target));

	if (ret < 0)
		report_read(ck, n, (int)ret);
	else
		ck->res->bytes_read += (uint64_t)ret;
}

/* Everything but the directory entries: xattrs and data. */
static void check_inode(struct ck *ck, struct ck_node *n, const struct erofs_inode *inode)
{
	struct xattr_scan xs = { .ck = ck, .n = n };
	int ret = 0;

	if (erofs_xattr_filter_active(ck->img)) {
		xs.filter = true;
		ret = erofs_xattr_filter(ck->img, inode, &xs.filter_bits);
	}
	if (!ret)
		ret = erofs_iterate_xattrs(ck->img, inode, xattr_cb, &xs);

	if (ret)
		report_read(ck, n, ret);
	if (S_ISLNK(inode->mode))
		check_symlink(ck, n, inode);
	else if (S_ISREG(inode->mode))
		check_data(ck, n, inode);
	ck->res->inodes++;
	if (S_ISREG(inode->mode))
		ck->res->files++;
	anole_progress_add(ck->progress, 1);
}

/* ------------------------------------------------------------ directories */

struct dir_scan {
	struct ck *ck;
	struct ck_node *dir;
	erofs_nid_t nid, parent;
	char prev[EROFS_NAME_LEN + 1];
	size_t prevlen;
	bool have_prev, have_dot, have_dotdot;
	uint32_t subdirs;
};

static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static void check_dot(struct dir_scan *ds, const char *name, size_t len, erofs_nid_t nid,
		      unsigned ftype)
{
	struct ck *ck = ds->ck;
	bool dot = len == 1;
	erofs_nid_t want = dot ? ds->nid : ds->parent;

	if (dot)
		ds->have_dot = true;
	else
		ds->have_dotdot = true;
	if (nid != want)
		report_entry(ck, ds->dir, name, len, nid,
			     "points to nid %llu instead of %llu", (unsigned long long)nid,
			     (unsigned long long)want);
	if (ftype != EROFS_FT_DIR)
		report_entry(ck, ds->dir, name, len, nid,
			     "entry says %s, expected a directory", erofs_ftype_name(ftype));
}

/* An entry naming an inode seen before: a hard link, or a corrupt tree. */
static void check_seen(struct dir_scan *ds, struct ck_node *n, const char *name, size_t len,
		       unsigned ftype)
{
	struct ck *ck = ds->ck;

	if (n->flags & NODE_BAD)
		return;
	if (n->flags & NODE_DIR) {
		report_entry(ck, ds->dir, name, len, n->nid,
			     "directory reachable twice (hard-linked directory or cycle)");
		return;
	}
	n->refs++;
	if (ftype != erofs_mode_to_ftype(n->mode))
		report_entry(ck, ds->dir, name, len, n->nid,
			     "entry says %s, the inode is a %s", erofs_ftype_name(ftype),
			     erofs_ftype_name(erofs_mode_to_ftype(n->mode)));
}

static void check_new(struct dir_scan *ds, const char *name, size_t len, erofs_nid_t nid,
		      unsigned ftype)
{
	struct ck *ck = ds->ck;
	struct erofs_inode inode;
	struct ck_node *n = node_add(ck, nid, ds->nid, name);
	int ret = erofs_read_inode(ck->img, nid, &inode);

	if (ret) {
		n->flags |= NODE_BAD;
		report_read(ck, n, ret);
		return;
	}
	n->mode = inode.mode;
	n->nlink = inode.nlink;
	n->refs = 1;
	if (ftype != erofs_mode_to_ftype(inode.mode))
		report_node(ck, n, nid, "entry says %s, the inode is a %s",
			    erofs_ftype_name(ftype),
			    erofs_ftype_name(erofs_mode_to_ftype(inode.mode)));
	if (S_ISDIR(inode.mode)) {
		n->flags |= NODE_DIR;
		ds->subdirs++;
		xgrow(&ck->stack, &ck->stack_alloc, ck->nstack + 1, sizeof(*ck->stack));
		ck->stack[ck->nstack++] = n;
		return;
	}
	check_inode(ck, n, &inode);
}

static int dirent_cb(void *ctx, const char *name, size_t len, erofs_nid_t nid, unsigned ftype)
{
	struct dir_scan *ds = ctx;
	struct ck *ck = ds->ck;
	struct ck_node *n;
	bool dots = (len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2));

	if (ck->stop)
		return 1;
	if (!dots && !erofs_name_ok(name, len))
		report_entry(ck, ds->dir, name, len, nid,
			     "invalid name (contains '/' or a NUL byte)");
	if (ds->have_prev && name_cmp(ds->prev, ds->prevlen, name, len) >= 0) {
		struct strbuf prev = STRBUF_INIT;

		add_escaped(&prev, ds->prev, ds->prevlen);
		report_entry(ck, ds->dir, name, len, nid,
			     "entry is not sorted after \"%s\" (duplicate or out of order)",
			     prev.buf);
		strbuf_release(&prev);
	}
	memcpy(ds->prev, name, len);
	ds->prevlen = len;
	ds->have_prev = true;
	if (ftype == EROFS_FT_UNKNOWN || ftype >= EROFS_FT_MAX)
		report_entry(ck, ds->dir, name, len, nid, "bad file type %u", ftype);
	if (dots) {
		check_dot(ds, name, len, nid, ftype);
		return 0;
	}
	n = node_find(ck, nid);
	if (n)
		check_seen(ds, n, name, len, ftype);
	else
		check_new(ds, name, len, nid, ftype);
	return 0;
}

static void check_dir(struct ck *ck, struct ck_node *n)
{
	struct dir_scan ds = { .ck = ck, .dir = n };
	struct erofs_inode inode;
	int ret;

	ds.nid = n->nid;
	ds.parent = n->name ? n->parent : n->nid;   /* the root is its own parent */
	ret = erofs_read_inode(ck->img, ds.nid, &inode);
	if (ret) {
		report_read(ck, n, ret);
		return;
	}
	check_inode(ck, n, &inode);
	ck->res->dirs++;
	ret = erofs_iterate_dir(ck->img, &inode, dirent_cb, &ds);
	if (ret < 0) {
		report_read(ck, n, ret);
		return;
	}
	if (ck->stop)
		return;
	ck->res->bytes_read += inode.size;
	if (!ds.have_dot)
		report_node(ck, n, n->nid, "no \".\" entry");
	if (!ds.have_dotdot)
		report_node(ck, n, n->nid, "no \"..\" entry");
	if (inode.nlink != 2u + ds.subdirs)
		report_node(ck, n, n->nid, "nlink is %u, expected %u (2 + %u subdirectories)",
			    inode.nlink, 2u + ds.subdirs, ds.subdirs);
}

/* ------------------------------------------------------------ image level */

/* Does the image end with anole's blob table (built with --blob-dir)? Its
 * blobs are then compressed for transport, not devices the kernel reads. */
static bool has_transport_blobs(struct erofs_image *img)
{
	uint64_t size = img->devs[0].size;
	char magic[8];

	if (size < 64 || erofs_dev_pread(img, 0, magic, sizeof(magic), size - 64))
		return false;
	return !memcmp(magic, ANOLE_EXT_FOOTER_MAGIC, sizeof(magic));
}

static void check_devices(struct ck *ck)
{
	struct erofs_image *img = ck->img;
	uint64_t want = (uint64_t)img->blocks << img->blkszbits;

	if (img->devs[0].size < want)
		report_node(ck, NULL, EROFS_NID_NONE,
			    "image is truncated: the superblock says %u blocks (%llu bytes), the image has %llu bytes",
			    img->blocks, (unsigned long long)want,
			    (unsigned long long)img->devs[0].size);
	for (unsigned i = 1; i < img->ndevs; i++) {
		const struct erofs_dev *d = &img->devs[i];
		uint64_t blocks = le32_to_cpu(img->devslots[i - 1].blocks);

		want = blocks << img->blkszbits;
		if (dev_missing(ck, i) || !blocks)
			continue;       /* mkfs 1.5 leaves the size 0 */
		if (d->size < want)
			report_node(ck, NULL, EROFS_NID_NONE,
				    "extra device %u (%s) has %llu bytes, the device table says %llu blocks%s",
				    i, d->path ? d->path : "?", (unsigned long long)d->size,
				    (unsigned long long)blocks,
				    has_transport_blobs(img) ?
				    " (this image was built with --blob-dir: its blobs are compressed "
				    "for transport; read it through `anole image mount --blobs DIR`, "
				    "or build with --blob FILE for a blob the kernel can use)" : "");
	}
}

/* A device's bytes at a chunk's place must have the chunk's digest. */
static void check_chunk_bytes(struct ck *ck, unsigned devid, const struct anole_blob_info *info)
{
	struct erofs_image *img = ck->img;
	uint8_t digest[ANOLE_DIGEST_MAX];

	for (uint32_t k = 0; k < info->nchunks && !ck->stop; k++) {
		const struct anole_ext_chunk *c = &info->chunks[k];
		int ret;

		if (c->uncompressed_size > CK_BUF_SIZE ||
		    erofs_dev_pread(img, devid, ck->buf, c->uncompressed_size, c->uncompressed_offset)) {
			report_node(ck, NULL, EROFS_NID_NONE,
				    "extra device %u: cannot read chunk %u (%u bytes at %llu)", devid, k,
				    c->uncompressed_size, (unsigned long long)c->uncompressed_offset);
			return;
		}
		ret = anole_digest(info->chunk_digest, ck->buf, c->uncompressed_size, digest);
		if (ret || memcmp(digest, c->digest, anole_digest_size(info->chunk_digest))) {
			report_node(ck, NULL, EROFS_NID_NONE,
				    "extra device %u (%s): chunk %u at offset %llu does not match its %s digest",
				    devid, img->devs[devid].path ? img->devs[devid].path : "?", k,
				    (unsigned long long)c->uncompressed_offset,
				    anole_digest_name(info->chunk_digest));
			return;
		}
		ck->res->bytes_read += c->uncompressed_size;
	}
}

static bool is_hex_tag(const uint8_t tag[64])
{
	for (unsigned i = 0; i < 64; i++)
		if (!((tag[i] >= '0' && tag[i] <= '9') || (tag[i] >= 'a' && tag[i] <= 'f')))
			return false;
	return true;
}

/*
 * What a mount verifies, check verifies too: anole's chunk table behind
 * the EROFS part (its SHA-256, its records, one per device, named by the
 * device's tag), and every device given. A device is the blob itself when
 * its tag is its SHA-256 (--blob); with a chunk table the tag names the
 * transport form, and the device given must hold every chunk's bytes.
 */
static void check_blobs(struct ck *ck)
{
	struct erofs_image *img = ck->img;
	struct anole_blobmeta meta = { 0 };
	bool have_meta = false;
	int ret;

	if (img->devs[0].fd >= 0) {
		ret = anole_blobmeta_read(img->devs[0].fd, img->name, &meta);
		if (ret && ret != -ENOENT)
			ck->res->errors++;      /* the parser said why, naming the image */
		have_meta = !ret;
	}
	for (unsigned i = 1; i < img->ndevs && !ck->stop; i++) {
		const uint8_t *tag = img->devslots[i - 1].tag;
		const struct anole_blob_info *info = NULL;
		const struct erofs_dev *d = &img->devs[i];

		for (unsigned k = 0; have_meta && k < meta.nblobs; k++)
			if (meta.blobs[k].device_id == i)
				info = &meta.blobs[k];
		if (have_meta && !info) {
			report_node(ck, NULL, EROFS_NID_NONE, "extra device %u has no chunk table", i);
			continue;
		}
		if (info && memcmp(tag, info->hex, 64)) {
			report_node(ck, NULL, EROFS_NID_NONE,
				    "extra device %u: its tag does not name its chunk table's blob %s",
				    i, info->name);
			continue;
		}
		if (dev_missing(ck, i) || d->fd < 0)
			continue;
		if (info) {
			check_chunk_bytes(ck, i, info);
		} else if (is_hex_tag(tag)) {
			uint8_t digest[32];
			char hex[65];

			ret = anole_digest_file(d->fd, d->size, ANOLE_DIGEST_SHA256, digest);
			anole_hex(digest, 32, hex);
			if (ret)
				report_node(ck, NULL, EROFS_NID_NONE, "extra device %u (%s): cannot read it",
					    i, d->path ? d->path : "?");
			else if (memcmp(hex, tag, 64))
				report_node(ck, NULL, EROFS_NID_NONE,
					    "extra device %u (%s) has SHA-256 %s, its tag says %.64s",
					    i, d->path ? d->path : "?", hex, (const char *)tag);
			else
				ck->res->bytes_read += d->size;
		}
	}
	if (have_meta)
		anole_blobmeta_free(&meta);
}

static void check_links(struct ck *ck)
{
	for (size_t i = 0; i < ck->nnodes && !ck->stop; i++) {
		struct ck_node *n = ck->nodes[i];

		if (n->flags & (NODE_DIR | NODE_BAD))
			continue;
		if (n->refs != n->nlink)
			report_node(ck, n, n->nid, "nlink is %u, but %u directory entr%s",
				    n->nlink, n->refs, n->refs == 1 ? "y names it" : "ies name it");
	}
}

/* The packed inode (fragments of compressed files) is in no directory;
 * its data was read through the fragments, check it whole too. */
static void check_packed(struct ck *ck)
{
	struct erofs_image *img = ck->img;
	struct erofs_inode inode;
	struct ck_node *n;
	int ret;

	if (!img->packed_nid || ck->stop || node_find(ck, img->packed_nid))
		return;
	n = node_add(ck, img->packed_nid, img->root_nid, "(packed inode)");
	ret = erofs_read_inode(img, img->packed_nid, &inode);
	if (ret) {
		n->flags |= NODE_BAD;
		report_read(ck, n, ret);
		return;
	}
	n->mode = inode.mode;
	n->nlink = n->refs = inode.nlink;       /* no directory entry names it */
	if (!S_ISREG(inode.mode)) {
		report_node(ck, n, n->nid, "the packed inode is not a regular file (mode 0%o)",
			    inode.mode);
		return;
	}
	check_inode(ck, n, &inode);
}

static void check_tree(struct ck *ck)
{
	struct erofs_image *img = ck->img;
	struct erofs_inode root;
	struct ck_node *n;
	int ret;

	check_devices(ck);
	check_blobs(ck);
	n = node_add(ck, img->root_nid, img->root_nid, NULL);
	ret = erofs_read_inode(img, img->root_nid, &root);
	if (ret) {
		report_read(ck, n, ret);
		return;
	}
	if (!S_ISDIR(root.mode)) {
		report_node(ck, n, n->nid, "the root inode is not a directory (mode 0%o)", root.mode);
		return;
	}
	n->flags |= NODE_DIR;
	ck->stack = xmalloc(sizeof(*ck->stack));
	ck->stack_alloc = 1;
	ck->stack[ck->nstack++] = n;
	/* every directory is pushed once (the nid table), so this ends */
	while (ck->nstack && !ck->stop)
		check_dir(ck, ck->stack[--ck->nstack]);
	check_packed(ck);
	check_links(ck);
	if (!ck->stop && img->inos != ck->res->inodes)
		anole_warn("%s: the superblock counts %llu inodes, %llu were found",
			   img->name, (unsigned long long)img->inos,
			   (unsigned long long)ck->res->inodes);
}

int anole_image_check_open(struct erofs_image *img, const struct anole_check_opts *opts,
			   struct anole_check_result *res)
{
	struct ck ck = { .img = img, .res = res };
	bool quiet = img->quiet;

	memset(res, 0, sizeof(*res));
	ck.max_errors = opts && opts->max_errors ? opts->max_errors : 100;
	ck.buf = xmalloc(CK_BUF_SIZE);
	anole_hashmap_init(&ck.by_nid, node_eq);
	ck.progress = anole_progress_start("Checking", img->inos <= UINT32_MAX ? img->inos : 0,
					   "inodes");
	img->quiet = true;      /* reader errors are reported here, with paths */
	check_tree(&ck);
	img->quiet = quiet;
	anole_progress_done(ck.progress);
	for (size_t i = 0; i < ck.nnodes; i++) {
		free(ck.nodes[i]->name);
		free(ck.nodes[i]);
	}
	free(ck.nodes);
	anole_hashmap_free(&ck.by_nid);
	free(ck.stack);
	free(ck.buf);
	if (!res->errors)
		return 0;
	return ck.unsupported == res->errors ? -EOPNOTSUPP : -EFSCORRUPTED;
}

int anole_image_check(const struct anole_check_opts *opts, struct anole_check_result *res)
{
	struct erofs_image *img;
	int ret;

	memset(res, 0, sizeof(*res));
	ret = erofs_image_open(&img, opts->image, opts->devices, opts->ndevices);
	if (ret) {
		/* the open already said why */
		if (ret == -EFSCORRUPTED)
			res->errors = 1;
		return ret;
	}
	ret = anole_image_check_open(img, opts, res);
	erofs_image_close(img);
	return ret;
}
