// SPDX-License-Identifier: Apache-2.0
/*
 * Tar layers (OCI images) as a build source. Layers are read with
 * libarchive, lowest first, and merged with overlay semantics: `.wh.NAME`
 * removes NAME from lower layers, `.wh..wh..opq` hides everything lower in
 * its directory, a later entry replaces an earlier one (directories merge).
 *
 * File data is chunked as it streams by: each new chunk (SHA-256 or SM3
 * content address, across all layers) goes to its layer's transport-blob
 * writer (blobwriter.c, the one `build --blob-dir` uses), which compresses
 * chunks on worker threads while the tar is read on, so a layer is read
 * once and never unpacked to disk. A layer that adds no new chunk gets no
 * blob.
 */
#include "builder.h"
#include "anole/cipher.h"
#include "anole/compress.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define WHITEOUT ".wh."
#define OPAQUE ".wh..wh..opq"

/* A name in a merged directory; node NULL once whited out. */
struct child {
	char *name;
	struct bnode *node;
	unsigned layer;             /* layer that last set it */
};

/* Per directory, while merging (bnode->ents is built at the end). */
struct mdir {
	struct anole_hashmap names; /* name -> struct child */
	struct child **v;
	size_t n, alloc;
};

struct chunk_ref { uint8_t digest[32]; uint16_t devid; uint32_t blkaddr; };

/* The blob of the layer being read; opened at its first new chunk. */
struct layer_writer {
	struct anole_output out;
	struct blob_writer *bw;     /* NULL until then */
	uint64_t next_blk;          /* uncompressed device blocks used */
	uint16_t devid;
};

struct merge {
	struct builder *b;
	unsigned layer;
	const char *layer_name;
	struct anole_hashmap dirs;  /* bnode* -> struct mdir */
	struct mdir_entry { struct bnode *dir; struct mdir *m; } **dirv;
	size_t ndirs, dirs_alloc;
	struct anole_hashmap chunks; /* digest -> chunk_ref */
	struct chunk_ref **chunkv;
	size_t nchunkv, chunkv_alloc;
	struct layer_writer w;
	struct layer_pipe *pipe;    /* the layer being read */
	uint8_t *buf;               /* the chunk being read; NULL once the writer took it */
	struct bnode **all;         /* every node made, for freeing unreachable ones */
	size_t nall, all_alloc;
};

static bool child_eq(const void *entry, const void *key)
{
	return !strcmp(((const struct child *)entry)->name, key);
}

static bool dir_eq(const void *entry, const void *key)
{
	return ((const struct mdir_entry *)entry)->dir == key;
}

static bool chunk_eq(const void *entry, const void *key)
{
	return !memcmp(((const struct chunk_ref *)entry)->digest, key, 32);
}

static uint64_t ptr_hash(const void *p) { return anole_hash_bytes(&p, sizeof(p), 0); }

static struct mdir *mdir_of(struct merge *m, struct bnode *dir)
{
	struct mdir_entry *e = anole_hashmap_get(&m->dirs, ptr_hash(dir), dir);

	if (e)
		return e->m;
	e = xcalloc(1, sizeof(*e));
	e->dir = dir;
	e->m = xcalloc(1, sizeof(*e->m));
	anole_hashmap_init(&e->m->names, child_eq);
	anole_hashmap_put(&m->dirs, ptr_hash(dir), e);
	xgrow(&m->dirv, &m->dirs_alloc, m->ndirs + 1, sizeof(*m->dirv));
	m->dirv[m->ndirs++] = e;
	return e->m;
}

static struct child *lookup(struct merge *m, struct bnode *dir, const char *name)
{
	return anole_hashmap_get(&mdir_of(m, dir)->names, anole_hash_bytes(name, strlen(name), 0),
				 name);
}

static void set_child(struct merge *m, struct bnode *dir, const char *name, struct bnode *node)
{
	struct mdir *md = mdir_of(m, dir);
	struct child *c = lookup(m, dir, name);

	if (!c) {
		c = xcalloc(1, sizeof(*c));
		c->name = xstrdup(name);
		anole_hashmap_put(&md->names, anole_hash_bytes(name, strlen(name), 0), c);
		xgrow(&md->v, &md->alloc, md->n + 1, sizeof(*md->v));
		md->v[md->n++] = c;
	}
	c->node = node;
	c->layer = m->layer;
}

static struct bnode *new_node(struct merge *m, const char *path, struct bnode *parent)
{
	struct bnode *n = xcalloc(1, sizeof(*n));
	struct strbuf p = STRBUF_INIT;

	strbuf_addf(&p, "%s:/%s", m->layer_name, path);
	n->path = strbuf_detach(&p, NULL);
	n->parent = parent;
	xgrow(&m->all, &m->all_alloc, m->nall + 1, sizeof(*m->all));
	m->all[m->nall++] = n;
	return n;
}

/* ---- paths ---- */

/* Split an entry's path into components; reject what escapes the root. */
static int split_path(struct merge *m, const char *path, char ***parts, size_t *n)
{
	char *copy = xstrdup(path), *save = NULL, *tok;
	size_t alloc = 0;

	*parts = NULL;
	*n = 0;
	if (path[0] == '/') {
		free(copy);
		return anole_error_code(EINVAL, "%s: entry '%s' has an absolute path", m->layer_name, path);
	}
	for (tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
		if (!strcmp(tok, "."))
			continue;
		if (!strcmp(tok, "..") || strlen(tok) > EROFS_NAME_LEN) {
			bool dotdot = !strcmp(tok, "..");

			for (size_t i = 0; i < *n; i++)
				free((*parts)[i]);
			free(*parts);
			*parts = NULL;
			*n = 0;
			free(copy);
			return anole_error_code(EINVAL, "%s: entry '%s' %s", m->layer_name, path,
						dotdot ? "climbs out of the root with '..'"
						       : "has a name longer than 255 bytes");
		}
		xgrow(parts, &alloc, *n + 1, sizeof(**parts));
		(*parts)[(*n)++] = xstrdup(tok);
	}
	free(copy);
	return 0;
}

static void free_parts(char **parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
	free(parts);
}

/* Walk to the directory holding the last component, creating missing
 * parents (tar layers often omit them). */
static int walk_parent(struct merge *m, char **parts, size_t n, const char *path,
		       struct bnode **out)
{
	struct bnode *dir = m->b->root;

	for (size_t i = 0; i + 1 < n; i++) {
		struct child *c = lookup(m, dir, parts[i]);
		struct bnode *next = c ? c->node : NULL;

		if (next && !is_dir(next->mode))
			return anole_error_code(ENOTDIR, "%s: entry '%s': '%s' is not a directory",
						m->layer_name, path, parts[i]);
		if (!next) {
			next = new_node(m, path, dir);
			next->mode = S_IFDIR | 0755;
			set_child(m, dir, parts[i], next);
		}
		dir = next;
	}
	*out = dir;
	return 0;
}

/* ---- chunk data ---- */

static int writer_open(struct merge *m)
{
	const struct builder *b = m->b;
	struct strbuf tmp = STRBUF_INIT;
	struct blobw_params p = builder_blobw_params(b);
	int ret;

	strbuf_addf(&tmp, "%s/layer", b->opts->blob_dir);
	ret = anole_output_open(&m->w.out, tmp.buf);
	strbuf_release(&tmp);
	if (ret)
		return ret;
	m->w.out.no_sync = b->opts->no_sync;
	p.fd = m->w.out.fd;
	p.follow = b->opts->blob_follow;
	if (p.follow && p.follow->start)
		p.follow->start(p.follow->opaque, p.fd);
	m->w.bw = blobw_new(&p);
	m->w.devid = (uint16_t)(b->nblobs + 1);
	return 0;
}

/* A new chunk goes to the layer's blob writer, which takes the buffer. */
static int store_chunk(struct merge *m, uint32_t len, struct bchunk *c)
{
	struct chunk_ref *ref;
	uint64_t h;
	int ret;

	ret = anole_digest((enum anole_digest_alg)m->b->opts->chunk_digest, m->buf, len, c->digest);
	if (ret)
		return ret;
	h = anole_hash_bytes(c->digest, 32, 0);
	ref = anole_hashmap_get(&m->chunks, h, c->digest);
	if (ref) {                   /* stored already, in this layer or a lower one */
		c->devid = ref->devid;
		c->blkaddr = ref->blkaddr;
		m->b->st->chunks_deduped++;
		return 0;
	}
	if (!m->w.bw && (ret = writer_open(m)))
		return ret;
	c->devid = m->w.devid;
	c->blkaddr = (uint32_t)m->w.next_blk;
	ret = blobw_add(m->w.bw, m->w.next_blk << m->b->blkszbits, len, c->digest, m->buf, NULL, NULL);
	m->buf = NULL;
	if (ret)
		return ret;
	m->w.next_blk += DIV_ROUND_UP(len, m->b->blksz);
	if (m->w.next_blk > UINT32_MAX)
		return anole_error_code(EFBIG, "%s: layer data beyond 2^32 blocks", m->layer_name);

	ref = xmalloc(sizeof(*ref));
	memcpy(ref->digest, c->digest, 32);
	ref->devid = c->devid;
	ref->blkaddr = c->blkaddr;
	anole_hashmap_put(&m->chunks, h, ref);
	xgrow(&m->chunkv, &m->chunkv_alloc, m->nchunkv + 1, sizeof(*m->chunkv));
	m->chunkv[m->nchunkv++] = ref;
	m->b->st->chunks++;
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	return !len || (!p[0] && !memcmp(p, p + 1, len - 1));
}

/*
 * Stream a regular file's data into chunks. The size comes from the tar
 * header, which is untrusted: a claim no chunk index can describe is refused
 * up front, and the chunk array grows only as chunks are actually read, so
 * that memory stays bounded by the bytes the layer really holds.
 */
static int read_file_data(struct merge *m, struct archive *a, struct bnode *n)
{
	uint64_t csize = 1ULL << m->b->chunkbits;
	uint64_t nchunks = n->size ? ((n->size - 1) >> m->b->chunkbits) + 1 : 0;
	size_t alloc = 0;
	int ret = 0;

	/* 8-byte chunk indexes, in at most 2 GiB: the limit chunk.c applies
	 * to files from a directory */
	if (nchunks > UINT32_MAX / 2 / 8)
		return anole_error_code(EFBIG, "%s: the tar header claims %llu bytes, more than a file "
					"with %llu-byte chunks can hold (corrupt size header?)",
					n->path, (unsigned long long)n->size, (unsigned long long)csize);
	if (!n->size)               /* a flat inode with no data, as from a directory */
		return 0;
	n->chunkbits = m->b->chunkbits;
	n->nchunks = 0;
	n->chunks = xcalloc(1, sizeof(*n->chunks));
	n->prechunked = true;
	for (uint64_t i = 0; i < nchunks && !ret; i++) {
		struct bchunk *c;
		uint64_t want = n->size - (i << n->chunkbits) < csize ?
				n->size - (i << n->chunkbits) : csize;
		uint64_t got = 0;

		if (!m->buf)        /* the writer's spares first: see blobw_buffer */
			m->buf = m->w.bw ? blobw_buffer(m->w.bw) : xmalloc(csize);
		while (got < want) {
			la_ssize_t r = archive_read_data(a, m->buf + got, (size_t)(want - got));

			if (r < 0 && layer_pipe_source_error(m->pipe))
				return layer_pipe_source_error(m->pipe);   /* reported */
			if (r < 0 && layer_pipe_decode_error(m->pipe))
				return -EINVAL;     /* read_layer reports it, or a wrong digest */
			if (r < 0)
				return anole_error_code(EIO, "%s: %s", n->path, archive_error_string(a));
			if (r == 0)
				return anole_error_code(EIO, "%s: data ends %llu bytes early (truncated layer?)",
							n->path,
							(unsigned long long)(n->size - (i << n->chunkbits) - got));
			got += (uint64_t)r;
		}
		xgrow(&n->chunks, &alloc, n->nchunks + 1, sizeof(*n->chunks));
		c = &n->chunks[n->nchunks++];
		memset(c, 0, sizeof(*c));
		c->len = (uint32_t)want;
		c->blkaddr = EROFS_NULL_ADDR;
		if (all_zero(m->buf, want)) {
			c->hole = true;
			continue;
		}
		ret = store_chunk(m, (uint32_t)want, c);
	}
	return ret;
}

/* ---- entries ---- */

static int fill_meta(struct merge *m, struct bnode *n, struct archive_entry *e, const char *path)
{
	const char *name;
	const void *value;
	size_t len, alloc = 0;
	int ret = 0;

	/* PAX ids are decimal strings of any length: GNU tar refuses what
	 * does not fit uid_t, and a value cut to 32 bits could become root */
	if (archive_entry_uid(e) < 0 || archive_entry_uid(e) > UINT32_MAX ||
	    archive_entry_gid(e) < 0 || archive_entry_gid(e) > UINT32_MAX) {
		bool uid = archive_entry_uid(e) < 0 || archive_entry_uid(e) > UINT32_MAX;

		return anole_error_code(ERANGE, "%s: entry '%s': %s %lld is out of range (0..4294967295)",
					m->layer_name, path, uid ? "uid" : "gid",
					(long long)(uid ? archive_entry_uid(e) : archive_entry_gid(e)));
	}
	n->mode = archive_entry_mode(e);
	n->uid = (uint32_t)archive_entry_uid(e);
	n->gid = (uint32_t)archive_entry_gid(e);
	n->mtime = archive_entry_mtime(e);
	n->mtime_nsec = archive_entry_mtime_is_set(e) ? (uint32_t)archive_entry_mtime_nsec(e) : 0;
	if (is_dev(n->mode)) {
		if (archive_entry_rdevmajor(e) > 0xfff || archive_entry_rdevminor(e) > 0xfffff)
			return anole_error_code(EOVERFLOW, "%s: device number does not fit EROFS", n->path);
		n->rdev = erofs_encode_dev((uint32_t)archive_entry_rdevmajor(e),
					   (uint32_t)archive_entry_rdevminor(e));
	}
	free(n->xattrs);
	n->xattrs = NULL;
	n->nxattrs = 0;
	archive_entry_xattr_reset(e);
	while (!ret && archive_entry_xattr_next(e, &name, &value, &len) == ARCHIVE_OK)
		ret = builder_add_xattr(m->b, n, &alloc, name, value, len);
	builder_sort_xattrs(n);
	return ret;
}

static int whiteout(struct merge *m, struct bnode *dir, const char *base, const char *path)
{
	struct mdir *md;

	if (!strcmp(base, OPAQUE)) {
		md = mdir_of(m, dir);
		for (size_t i = 0; i < md->n; i++)
			if (md->v[i]->layer < m->layer)
				md->v[i]->node = NULL;
		return 0;
	}
	{
		struct child *c = lookup(m, dir, base + strlen(WHITEOUT));

		if (!c || !c->node)
			return anole_error_code(ENOENT, "%s: whiteout '%s' of a path no lower layer has",
						m->layer_name, path);
		if (c->layer == m->layer)
			return anole_error_code(EINVAL, "%s: whiteout '%s' of a path of the same layer",
						m->layer_name, path);
		c->node = NULL;
	}
	return 0;
}

static int add_entry(struct merge *m, struct archive *a, struct archive_entry *e)
{
	const char *path = archive_entry_pathname(e), *hardlink = archive_entry_hardlink(e);
	char **parts;
	size_t nparts;
	struct bnode *dir, *n;
	struct child *old;
	const char *base;
	int ret;

	if (!path)
		return anole_error_code(EINVAL, "%s: an entry without a name", m->layer_name);
	ret = split_path(m, path, &parts, &nparts);
	if (ret)
		return ret;
	if (!nparts) {                                  /* "./": the root itself */
		ret = is_dir(archive_entry_mode(e)) ? fill_meta(m, m->b->root, e, path) :
			anole_error_code(EINVAL, "%s: the root entry is not a directory", m->layer_name);
		free_parts(parts, nparts);
		return ret;
	}
	ret = walk_parent(m, parts, nparts, path, &dir);
	base = parts[nparts - 1];
	if (ret)
		goto out;
	if (!strncmp(base, WHITEOUT, strlen(WHITEOUT))) {
		ret = whiteout(m, dir, base, path);
		goto out;
	}
	old = lookup(m, dir, base);
	if (hardlink) {
		char **tparts;
		size_t ntparts;
		struct bnode *tdir;
		struct child *t;

		ret = split_path(m, hardlink, &tparts, &ntparts);
		if (ret)
			goto out;
		ret = ntparts ? walk_parent(m, tparts, ntparts, hardlink, &tdir) : -EINVAL;
		t = ret ? NULL : lookup(m, tdir, tparts[ntparts - 1]);
		free_parts(tparts, ntparts);
		if (!t || !t->node || is_dir(t->node->mode)) {
			ret = anole_error_code(ENOENT, "%s: hard link '%s' to a missing target '%s'",
					       m->layer_name, path, hardlink);
			goto out;
		}
		set_child(m, dir, base, t->node);
		goto out;
	}
	if (old && old->node && is_dir(old->node->mode) && is_dir(archive_entry_mode(e))) {
		ret = fill_meta(m, old->node, e, path);             /* directories merge */
		old->layer = m->layer;
		goto out;
	}
	n = new_node(m, path, dir);
	ret = fill_meta(m, n, e, path);
	if (ret)
		goto out;
	switch (n->mode & S_IFMT) {
	case S_IFREG:
		n->size = archive_entry_size_is_set(e) ? (uint64_t)archive_entry_size(e) : 0;
		ret = read_file_data(m, a, n);
		break;
	case S_IFLNK: {
		const char *t = archive_entry_symlink(e);
		size_t len = t ? strlen(t) : 0;

		if (!len || len > 4095)
			ret = anole_error_code(EINVAL, "%s: symlink '%s' with a target of %zu bytes",
					       m->layer_name, path, len);
		n->link = xstrdup(t ? t : "");
		n->size = len;
		/* Linux has no symlink permissions (lstat says 0777 whatever a
		 * tar header says), so a container's unpacked layer shows 0777 */
		n->mode = S_IFLNK | 0777;
		break;
	}
	case S_IFDIR: case S_IFCHR: case S_IFBLK: case S_IFIFO: case S_IFSOCK:
		break;
	default:
		ret = anole_error_code(EINVAL, "%s: entry '%s' has an unsupported type",
				       m->layer_name, path);
	}
	if (!ret)
		set_child(m, dir, base, n);
out:
	free_parts(parts, nparts);
	return ret;
}

static void follow_end(struct merge *m, const char *digest)
{
	const struct anole_blob_follow *f = m->b->opts->blob_follow;

	if (f && f->end)
		f->end(f->opaque, digest);
}

static int finish_layer_blob(struct merge *m)
{
	struct builder *b = m->b;
	struct anole_blob_info info = { 0 };
	struct strbuf name = STRBUF_INIT;
	int ret;

	if (!m->w.bw)
		return 0;
	ret = blobw_finish(m->w.bw, &info);
	m->w.bw = NULL;
	if (ret) {
		follow_end(m, NULL);
		anole_output_abort(&m->w.out);
		memset(&m->w, 0, sizeof(m->w));
		return ret;
	}
	info.uncompressed_size = m->w.next_blk << b->blkszbits;
	info.chunk_size = 1u << b->chunkbits;
	info.device_id = m->w.devid;
	b->blobs = xrealloc(b->blobs, (b->nblobs + 1) * sizeof(*b->blobs));
	b->blobs[b->nblobs++] = info;
	strbuf_addf(&name, "%s/%s", b->opts->blob_dir, info.hex);
	anole_output_rename_target(&m->w.out, name.buf);
	strbuf_release(&name);
	b->blob_outs = xrealloc(b->blob_outs, (b->nblob_outs + 1) * sizeof(*b->blob_outs));
	b->blob_outs[b->nblob_outs++] = m->w.out;
	memset(&m->w, 0, sizeof(m->w));
	follow_end(m, info.name);
	return 0;
}

/* libarchive's source: the layer's tar, from its pipe (layerpipe.c). */
static la_ssize_t src_read(struct archive *a, void *opaque, const void **out)
{
	struct layer_pipe *pipe = opaque;
	ssize_t n = layer_pipe_next(pipe, out);
	const char *msg;

	if (n < 0) {
		msg = layer_pipe_decode_error(pipe);
		archive_set_error(a, EIO, "%s", msg ? msg : "the layer's source failed");
		return -1;
	}
	return n;
}

static int read_layer(struct merge *m, unsigned i)
{
	const struct anole_build_opts *o = m->b->opts;
	const char *digest = o->layer_digests ? o->layer_digests[i] : NULL;
	const struct anole_layer_stream *stream = NULL;
	struct layer_pipe *pipe = NULL;
	struct archive *a = NULL;
	struct archive_entry *e;
	const char *bad;
	char *prev = NULL;          /* the last entry's name, for messages */
	int fd = -1, r, ret = 0, vret;

	if (o->layer_streams && o->layer_streams[i].read) {
		stream = &o->layer_streams[i];
	} else {
		fd = open(o->layers[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return anole_error(errno, "%s: cannot read %s", m->layer_name, o->layers[i]);
	}
	/* the layer is hashed as it is read when its digest is known, so that
	 * it is verified in the same pass that builds from it */
	ret = layer_pipe_start(&pipe, m->layer_name, fd, stream, digest != NULL,
			       digest ? o->layer_sizes[i] : UINT64_MAX);
	m->pipe = pipe;
	if (!ret) {
		a = archive_read_new();
		/* gzip is inflated by the pipe; the rest is left to libarchive */
		archive_read_support_filter_all(a);
		archive_read_support_format_tar(a);
		if (archive_read_open(a, pipe, NULL, src_read, NULL) != ARCHIVE_OK)
			ret = layer_pipe_source_error(pipe) ? layer_pipe_source_error(pipe) :
			      layer_pipe_decode_error(pipe) ? -EINVAL :
			      anole_error_code(EIO, "%s: %s", m->layer_name, archive_error_string(a));
	}
	while (!ret && (r = archive_read_next_header(a, &e)) != ARCHIVE_EOF) {
		/*
		 * libarchive continues past much that GNU tar refuses: a
		 * malformed PAX record is a warning, a header it cannot parse
		 * (after a wrong size, for one) asks for a retry. A layer is
		 * untrusted, so only one warning is taken: a name that cannot be
		 * converted to the locale (EILSEQ; the bytes are kept as they
		 * are). Malformed PAX records warn with ARCHIVE_ERRNO_MISC.
		 */
		if (r != ARCHIVE_OK && (r != ARCHIVE_WARN || archive_errno(a) != EILSEQ)) {
			if (layer_pipe_source_error(pipe))  /* it said why already */
				ret = layer_pipe_source_error(pipe);
			else if (layer_pipe_decode_error(pipe))   /* said below */
				ret = -EINVAL;
			else if (r == ARCHIVE_WARN) /* the entry was read, with a problem */
				ret = anole_error_code(EINVAL, "%s: entry '%s' is malformed (libarchive: %s)",
						       m->layer_name,
						       archive_entry_pathname(e) ?
						       archive_entry_pathname(e) : "(no name)",
						       archive_error_string(a));
			else if (prev)
				ret = anole_error_code(EIO, "%s: malformed tar after entry '%s' "
						       "(is its size, in the header or a PAX size record, "
						       "wrong?): %s", m->layer_name, prev,
						       archive_error_string(a));
			else
				ret = anole_error_code(EIO, "%s: malformed tar: %s", m->layer_name,
						       archive_error_string(a));
			break;
		}
		ret = add_entry(m, a, e);
		free(prev);
		prev = xstrdup(archive_entry_pathname(e) ? archive_entry_pathname(e) : "");
	}
	free(prev);
	if (a)
		archive_read_free(a);
	/*
	 * Checked even when the tar failed: bytes that are not the layer make
	 * any other complaint about them beside the point. A gzip stream that
	 * is corrupt after the tar's end (its CRC, say) fails the layer too.
	 * The layer's blob is finished only once its source is known good.
	 */
	if (pipe) {
		vret = layer_pipe_finish(pipe, digest, digest ? o->layer_sizes[i] : 0);
		bad = layer_pipe_decode_error(pipe);
		if (vret && vret != layer_pipe_source_error(pipe))
			ret = vret;             /* not the layer's bytes */
		else if (vret)
			ret = ret ? ret : vret; /* reported already */
		else if (bad)
			ret = anole_error_code(EINVAL, "%s: %s", m->layer_name, bad);
	}
	if (!ret) {
		ret = finish_layer_blob(m);
	} else if (m->w.bw) {       /* nothing of a failed layer is kept */
		follow_end(m, NULL);
		blobw_abort(m->w.bw);
		anole_output_abort(&m->w.out);
		memset(&m->w, 0, sizeof(m->w));
	}
	layer_pipe_free(pipe);
	m->pipe = NULL;
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The chunk dictionary's blobs become devices 1..n, their chunks known. */
static int load_dictionary(struct merge *m)
{
	struct builder *b = m->b;
	const struct anole_build_opts *o = b->opts;

	for (unsigned i = 0; i < o->ndict_blobs; i++) {
		const struct anole_blob_info *src = &o->dict_blobs[i];
		struct anole_blob_info *info;

		if ((int)src->chunk_digest != o->chunk_digest)
			return anole_error_code(EINVAL, "chunk dictionary blob %s uses %s digests, not %s",
						src->name, anole_digest_name(src->chunk_digest),
						anole_digest_name((enum anole_digest_alg)o->chunk_digest));
		/* an encrypted image must not point at clear chunks, nor a clear
		 * one at chunks its readers cannot decrypt */
		if (src->cipher != (o->encrypt_key ? (uint8_t)o->encrypt_key->alg : 0) ||
		    (o->encrypt_key && memcmp(src->key_check, o->encrypt_key->check,
					      sizeof(src->key_check))))
			return anole_error_code(EINVAL, "chunk dictionary blob %s is %s%s, this build "
						"%s: use a dictionary encrypted with the same key",
						src->name, src->cipher ? "encrypted with " : "not encrypted",
						src->cipher ? anole_cipher_name(src->cipher) : "",
						o->encrypt_key ? "encrypts with another key or cipher" :
						"does not encrypt");
		b->blobs = xrealloc(b->blobs, (b->nblobs + 1) * sizeof(*b->blobs));
		info = &b->blobs[b->nblobs++];
		*info = *src;
		info->device_id = b->nblobs;
		info->chunks = xmemdup(src->chunks, (size_t)src->nchunks * sizeof(*src->chunks) + 0);
		info->splits = src->nsplits ?
			xmemdup(src->splits, (size_t)src->nsplits * sizeof(*src->splits)) : NULL;
		/* a chunk stored as fetch units is matched by its whole digest
		 * (the split's), at its first unit */
		for (uint32_t k = 0, s = 0; k < src->nchunks; k++) {
			const struct anole_ext_chunk *c = &src->chunks[k];
			const uint8_t *digest = c->digest;
			uint64_t h;
			struct chunk_ref *ref;

			if (s < src->nsplits && k == src->splits[s].first) {
				digest = src->splits[s].digest;
				k += src->splits[s].count - 1;
				s++;
			}
			h = anole_hash_bytes(digest, 32, 0);
			if (anole_hashmap_get(&m->chunks, h, digest))
				continue;
			ref = xmalloc(sizeof(*ref));
			memcpy(ref->digest, digest, 32);
			ref->devid = (uint16_t)info->device_id;
			ref->blkaddr = (uint32_t)(c->uncompressed_offset >> b->blkszbits);
			anole_hashmap_put(&m->chunks, h, ref);
			xgrow(&m->chunkv, &m->chunkv_alloc, m->nchunkv + 1, sizeof(*m->chunkv));
			m->chunkv[m->nchunkv++] = ref;
		}
	}
	return 0;
}

static int cmp_dirent(const void *a, const void *b)
{
	return strcmp(((const struct bdirent *)a)->name, ((const struct bdirent *)b)->name);
}

/* Turn the merged names into each directory's sorted entries. */
static void build_entries(struct merge *m, struct bnode *dir)
{
	struct mdir *md = mdir_of(m, dir);
	size_t alloc = 0;

	for (size_t i = 0; i < md->n; i++) {
		struct child *c = md->v[i];

		if (!c->node)
			continue;
		xgrow(&dir->ents, &alloc, dir->nents + 1, sizeof(*dir->ents));
		dir->ents[dir->nents++] = (struct bdirent){ xstrdup(c->name),
							     (uint8_t)strlen(c->name), c->node };
		if (is_dir(c->node->mode)) {
			c->node->parent = dir;
			build_entries(m, c->node);
		}
	}
	if (dir->nents > 1)
		qsort(dir->ents, dir->nents, sizeof(*dir->ents), cmp_dirent);
}

static void free_merge(struct merge *m)
{
	for (size_t i = 0; i < m->ndirs; i++) {
		struct mdir *md = m->dirv[i]->m;

		for (size_t k = 0; k < md->n; k++) {
			free(md->v[k]->name);
			free(md->v[k]);
		}
		free(md->v);
		anole_hashmap_free(&md->names);
		free(md);
		free(m->dirv[i]);
	}
	free(m->dirv);
	anole_hashmap_free(&m->dirs);
	for (size_t i = 0; i < m->nchunkv; i++)
		free(m->chunkv[i]);
	free(m->chunkv);
	anole_hashmap_free(&m->chunks);
	free(m->buf);
}

int builder_scan_layers(struct builder *b)
{
	const struct anole_build_opts *o = b->opts;
	struct merge m = { .b = b };
	int ret = 0;

	if (!o->blob_dir || !b->chunkbits)
		return anole_error_code(EINVAL, "building from layers needs a blob directory and a chunk size");
	if (mkdir(o->blob_dir, 0755) < 0 && errno != EEXIST)
		return anole_error(errno, "cannot create blob directory %s", o->blob_dir);
	anole_hashmap_init(&m.dirs, dir_eq);
	anole_hashmap_init(&m.chunks, chunk_eq);
	b->root = xcalloc(1, sizeof(*b->root));
	b->root->path = xstrdup("/");
	b->root->parent = b->root;
	b->root->mode = S_IFDIR | 0755;
	b->st->layer_device = xcalloc(o->nlayers + 1, sizeof(unsigned));
	ret = load_dictionary(&m);
	for (unsigned i = 0; i < o->nlayers && !ret; i++) {
		char name[96];

		snprintf(name, sizeof(name), "layer %u %.72s", i + 1,
			 o->layer_names ? o->layer_names[i] : o->layers[i] ? o->layers[i] : "");
		unsigned before = b->nblobs;

		m.layer = i + 1;
		m.layer_name = name;
		ret = read_layer(&m, i);
		if (!ret && b->nblobs > before)
			b->st->layer_device[i] = b->nblobs;
	}
	if (!ret) {
		build_entries(&m, b->root);
		builder_order_nodes(b);
	}
	/* nodes no longer reachable (replaced or whited out) are freed here;
	 * reachable ones are freed with the tree */
	for (size_t i = 0; i < m.nall; i++)
		if (ret || !m.all[i]->visited) {
			free(m.all[i]->xattrs);
			free(m.all[i]->link);
			free(m.all[i]->chunks);
			for (size_t k = 0; k < m.all[i]->nents; k++)
				free(m.all[i]->ents[k].name);
			free(m.all[i]->ents);
			free(m.all[i]->path);
			free(m.all[i]);
		}
	free(m.all);
	if (ret && b->root) {
		for (size_t k = 0; k < b->root->nents; k++)
			free(b->root->ents[k].name);
		free(b->root->ents);
		free(b->root->xattrs);
		free(b->root->path);
		free(b->root);
		b->root = NULL;
		free(b->order);
		b->order = NULL;
		b->ninodes = 0;
	}
	free_merge(&m);
	return ret;
}
