// SPDX-License-Identifier: Apache-2.0
/*
 * Plan: choose each inode's form (compact or extended, flat, inline tail or
 * chunk-based), place every inode in the metadata area and give data its
 * blocks. Nothing is written here; write.c follows the plan.
 *
 * Metadata placement is best-fit: each inode "unit" (inode, xattr body,
 * inline tail or chunk index) goes into the fullest metadata block that
 * still has room, so small inodes fill the gaps that large tails leave.
 */
#include "builder.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- superblock time: the most common mtime makes compact inodes ---- */

struct mtime_pair { int64_t sec; uint32_t nsec; };

static int cmp_mtime(const void *a, const void *b)
{
	const struct mtime_pair *x = a, *y = b;

	if (x->sec != y->sec)
		return x->sec < y->sec ? -1 : 1;
	return (x->nsec > y->nsec) - (x->nsec < y->nsec);
}

/*
 * Compact inodes have no time of their own: they show the superblock's.
 * Choosing the most frequent (sec, nsec) of the tree lets the largest
 * number of inodes be compact without losing any timestamp.
 */
static void choose_epoch(struct builder *b)
{
	struct mtime_pair *v = xmalloc(b->ninodes * sizeof(*v));
	size_t best = 0, best_run = 0;

	for (size_t i = 0; i < b->ninodes; i++) {
		v[i].sec = b->order[i]->mtime;
		v[i].nsec = b->order[i]->mtime_nsec;
	}
	qsort(v, b->ninodes, sizeof(*v), cmp_mtime);
	for (size_t i = 0, run = 0; i < b->ninodes; i++) {
		run = (i && !cmp_mtime(&v[i], &v[i - 1])) ? run + 1 : 1;
		if (run > best_run) {
			best_run = run;
			best = i;
		}
	}
	b->epoch = v[best].sec;
	b->epoch_nsec = v[best].nsec;
	free(v);
}

/* ---- directories ---- */

static int cmp_dirent(const void *a, const void *b)
{
	return strcmp(((const struct bdirent *)a)->name, ((const struct bdirent *)b)->name);
}

/* Add "." and ".." and sort: EROFS orders them with the other names. */
static void add_dot_entries(struct bnode *dir)
{
	dir->ents = xrealloc(dir->ents, (dir->nents + 2) * sizeof(*dir->ents));
	dir->ents[dir->nents++] = (struct bdirent){ xstrdup("."), 1, dir };
	dir->ents[dir->nents++] = (struct bdirent){ xstrdup(".."), 2, dir->parent };
	qsort(dir->ents, dir->nents, sizeof(*dir->ents), cmp_dirent);
}

/*
 * Directory blocks hold whole entries: a dirent (12 bytes) and its name
 * never straddle a block. The last block is not padded, so its used part
 * can be an inline tail.
 */
uint64_t dir_size(const struct builder *b, const struct bnode *dir)
{
	uint64_t blocks = 1;
	uint32_t used = 0;

	for (size_t i = 0; i < dir->nents; i++) {
		uint32_t sz = (uint32_t)sizeof(struct erofs_dirent) + dir->ents[i].namelen;

		if (used + sz > b->blksz) {
			blocks++;
			used = 0;
		}
		used += sz;
	}
	return (blocks - 1) * b->blksz + used;
}

/* ---- inode forms ---- */

static bool wants_extended(const struct builder *b, const struct bnode *n)
{
	return n->size > UINT32_MAX || n->uid > UINT16_MAX || n->gid > UINT16_MAX ||
	       n->nlink > UINT16_MAX || n->mtime != b->epoch || n->mtime_nsec != b->epoch_nsec;
}

/*
 * A flat inode's last partial block may live right after the inode (tail
 * packing) if it does not cross a block boundary there. Units up to a block
 * are placed inside one block; larger ones (big xattr bodies) start a block.
 */
static void plan_flat(struct builder *b, struct bnode *n, uint32_t base)
{
	uint64_t full = n->size / b->blksz;
	uint32_t tail = (uint32_t)(n->size % b->blksz);

	n->unit = base;
	n->nblocks = full;
	n->tail_len = 0;
	n->layout = EROFS_INODE_FLAT_PLAIN;
	if (!tail)
		return;
	if (base + tail <= b->blksz || (base > b->blksz && base % b->blksz + tail <= b->blksz)) {
		n->layout = EROFS_INODE_FLAT_INLINE;
		n->tail_len = tail;
		n->unit = base + tail;
	} else {
		n->nblocks = full + 1;
	}
}

static int plan_inode_form(struct builder *b, struct bnode *n)
{
	uint32_t xsize = builder_xattr_ibody(b, n);
	uint32_t base;

	if (n->nxattrs && !xsize)
		return anole_error_code(E2BIG, "%s: xattrs too large for one EROFS inode", n->path);
	n->xattr_isize = xsize;
	n->version = wants_extended(b, n) ? EROFS_INODE_EXTENDED : EROFS_INODE_COMPACT;
	base = (n->version == EROFS_INODE_EXTENDED ? 64 : 32) + xsize;
	if (n->version == EROFS_INODE_EXTENDED)
		b->st->extended_inodes++;
	else
		b->st->compact_inodes++;

	if (is_dir(n->mode)) {
		n->size = dir_size(b, n);
		plan_flat(b, n, base);
	} else if (is_lnk(n->mode)) {
		plan_flat(b, n, base);
	} else if (is_reg(n->mode) && n->z) {
		n->unit = builder_zunit(b, n, base);
		if (n->unit) {
			n->layout = n->z->whole_fragment ? EROFS_INODE_COMPRESSED_FULL :
				    EROFS_INODE_COMPRESSED_COMPACT;
		} else {
			n->z = NULL;
			n->same_data = NULL;
			plan_flat(b, n, base);
		}
	} else if (is_reg(n->mode) && node_is_chunked(b, n)) {
		uint32_t align = b->use_blob ? 8 : 4;

		n->layout = EROFS_INODE_CHUNK_BASED;
		n->unit = ALIGN_UP(base, align) + n->index_size;
	} else if (is_reg(n->mode)) {
		plan_flat(b, n, base);
	} else {
		n->layout = EROFS_INODE_FLAT_PLAIN;
		n->unit = base;
	}
	return 0;
}

/* ---- metadata placement (best fit) ---- */

struct meta_alloc {
	uint32_t blksz;
	uint64_t nblocks;
	uint32_t *used;             /* bytes used per block */
	size_t used_alloc;
	/* buckets[k]: blocks with exactly k free 32-byte slots, as a stack */
	uint64_t **bucket;
	size_t *bucket_len, *bucket_alloc;
	unsigned nbuckets;
};

static void bucket_push(struct meta_alloc *m, uint64_t blk)
{
	unsigned k = (m->blksz - m->used[blk]) / EROFS_ISLOT_SIZE;

	if (!k)
		return;
	xgrow(&m->bucket[k], &m->bucket_alloc[k], m->bucket_len[k] + 1, sizeof(uint64_t));
	m->bucket[k][m->bucket_len[k]++] = blk;
}

static uint64_t new_blocks(struct meta_alloc *m, uint64_t count)
{
	uint64_t first = m->nblocks;

	xgrow(&m->used, &m->used_alloc, m->nblocks + count, sizeof(*m->used));
	for (uint64_t i = 0; i < count; i++)
		m->used[first + i] = 0;
	m->nblocks += count;
	return first;
}

/* Returns the byte offset of a unit of `size` bytes (multiple of 32). */
static uint64_t meta_place(struct meta_alloc *m, uint32_t size)
{
	uint64_t blk, off;

	if (size > m->blksz) {
		uint64_t count = DIV_ROUND_UP(size, m->blksz);

		blk = new_blocks(m, count);
		for (uint64_t i = 0; i + 1 < count; i++)
			m->used[blk + i] = m->blksz;
		m->used[blk + count - 1] = size - (uint32_t)(count - 1) * m->blksz;
		bucket_push(m, blk + count - 1);
		return blk * m->blksz;
	}
	for (unsigned k = size / EROFS_ISLOT_SIZE; k < m->nbuckets; k++) {
		while (m->bucket_len[k]) {
			blk = m->bucket[k][--m->bucket_len[k]];
			/* a stale entry: the block changed since it was pushed */
			if ((m->blksz - m->used[blk]) / EROFS_ISLOT_SIZE != k)
				continue;
			goto found;
		}
	}
	blk = new_blocks(m, 1);
found:
	off = blk * m->blksz + m->used[blk];
	m->used[blk] += size;
	bucket_push(m, blk);
	return off;
}

static void meta_free(struct meta_alloc *m)
{
	for (unsigned k = 0; k < m->nbuckets; k++)
		free(m->bucket[k]);
	free(m->bucket);
	free(m->bucket_len);
	free(m->bucket_alloc);
	free(m->used);
}

static int place_metadata(struct builder *b)
{
	struct meta_alloc m = { .blksz = b->blksz };
	/* compression configs follow the superblock */
	uint32_t head = EROFS_SUPER_OFFSET + sizeof(struct erofs_super_block) +
			(b->compress ? builder_zcfg_size(b) : 0);

	m.nbuckets = b->blksz / EROFS_ISLOT_SIZE + 1;
	m.bucket = xcalloc(m.nbuckets, sizeof(*m.bucket));
	m.bucket_len = xcalloc(m.nbuckets, sizeof(*m.bucket_len));
	m.bucket_alloc = xcalloc(m.nbuckets, sizeof(*m.bucket_alloc));

	/* block 0: boot area, superblock, then the device table if any */
	new_blocks(&m, 1);
	if (builder_ndevices(b)) {
		unsigned ndev = builder_ndevices(b);

		b->devt_off = ALIGN_UP(head, EROFS_DEVT_SLOT_SIZE);
		head = b->devt_off + ndev * EROFS_DEVT_SLOT_SIZE;
		if (head > b->blksz) {
			meta_free(&m);
			return anole_error_code(E2BIG, "%u devices do not fit the device table (at most %u)",
						ndev, (b->blksz - b->devt_off) / EROFS_DEVT_SLOT_SIZE - 1);
		}
	}
	m.used[0] = ALIGN_UP(head, EROFS_ISLOT_SIZE);
	bucket_push(&m, 0);

	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *n = b->order[i];
		uint64_t off;

		off = meta_place(&m, ALIGN_UP(n->unit, EROFS_ISLOT_SIZE));
		n->nid = off / EROFS_ISLOT_SIZE;
		/* the root nid is 16 bits on disk; placed first, it always fits */
		if (i == 0 && n->nid > UINT16_MAX) {
			meta_free(&m);
			return anole_error_code(E2BIG, "%s: root directory inode beyond nid 65535",
						n->path);
		}
	}
	b->meta_blocks = m.nblocks;
	meta_free(&m);
	return 0;
}

/* ---- identical flat files share their blocks ---- */

struct hash_job {
	struct bnode *n;
	uint8_t digest[32];
	int err;
};

static void hash_file(void *item, void *shared)
{
	struct hash_job *j = item;
	int fd = builder_open(j->n);

	if (fd < 0) {
		j->err = -errno;
		return;
	}
	j->err = anole_digest_file(fd, j->n->size, ANOLE_DIGEST_SHA256, j->digest);
	close(fd);
}

static int cmp_size_desc(const void *a, const void *b)
{
	const struct bnode *x = *(const struct bnode *const *)a;
	const struct bnode *y = *(const struct bnode *const *)b;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return (x->ino > y->ino) - (x->ino < y->ino);
}

struct dedup_key { const uint8_t *digest; uint64_t nblocks; };
struct dedup_entry { uint8_t digest[32]; uint64_t nblocks; struct bnode *owner; };

static bool dedup_eq(const void *entry, const void *key)
{
	const struct dedup_entry *e = entry;
	const struct dedup_key *k = key;

	return e->nblocks == k->nblocks && !memcmp(e->digest, k->digest, 32);
}

/*
 * Only files whose size another file shares can be identical, so only
 * those are hashed. The first file (in placement order) owns the blocks.
 */
static int dedupe_files(struct builder *b, bool before_forms)
{
	struct bnode **cand = xmalloc(b->ninodes * sizeof(*cand));
	struct hash_job *jobs;
	struct anole_hashmap map;
	struct dedup_entry *entries;
	size_t n = 0, m = 0;
	int ret = 0;

	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *f = b->order[i];

		if (before_forms ? is_reg(f->mode) && f->size && !node_is_chunked(b, f) :
		    is_reg(f->mode) && f->layout != EROFS_INODE_CHUNK_BASED && f->nblocks)
			cand[n++] = f;
	}
	qsort(cand, n, sizeof(*cand), cmp_size_desc);
	jobs = xcalloc(n ? n : 1, sizeof(*jobs));
	for (size_t i = 0; i < n; i++) {
		bool same_prev = i > 0 && cand[i - 1]->size == cand[i]->size;
		bool same_next = i + 1 < n && cand[i + 1]->size == cand[i]->size;

		if (same_prev || same_next)
			jobs[m++].n = cand[i];
	}
	free(cand);
	anole_parallel_for(jobs, m, sizeof(*jobs), b->opts->threads, hash_file, NULL);

	/* decide in placement order so the result does not depend on sorting */
	entries = xcalloc(m ? m : 1, sizeof(*entries));
	anole_hashmap_init(&map, dedup_eq);
	{
		struct hash_job **byino = xcalloc(b->ninodes + 1, sizeof(*byino));

		for (size_t i = 0; i < m; i++) {
			if (jobs[i].err) {
				ret = anole_error(-jobs[i].err, "cannot read %s", jobs[i].n->path);
				break;
			}
			byino[jobs[i].n->ino] = &jobs[i];
		}
		for (size_t i = 1; !ret && i <= b->ninodes; i++) {
			struct hash_job *j = byino[i];
			struct dedup_key k;
			struct dedup_entry *e;
			uint64_t h;

			if (!j)
				continue;
			k.digest = j->digest;
			k.nblocks = before_forms ? j->n->size : j->n->nblocks;
			h = anole_hash_bytes(j->digest, 32, k.nblocks);
			e = anole_hashmap_get(&map, h, &k);
			if (e) {
				j->n->same_data = e->owner;
				b->st->files_deduped++;
				continue;
			}
			e = &entries[map.count];
			memcpy(e->digest, j->digest, 32);
			e->nblocks = k.nblocks;
			e->owner = j->n;
			anole_hashmap_put(&map, h, e);
		}
		free(byino);
	}
	anole_hashmap_free(&map);
	free(entries);
	free(jobs);
	return ret;
}

/* order: builder_data_order() */
static void place_data(struct builder *b, struct bnode **order)
{
	uint64_t next = b->data_blkaddr;

	/* owners first: a copy may come before its owner in this order */
	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *n = order[i];

		if (n->layout == EROFS_INODE_CHUNK_BASED)
			continue;
		if (n->z) {
			n->nblocks = n->z->pblocks;
			if (n->same_data)
				continue;
			n->startblk = (uint32_t)next;
			next += n->nblocks;
			b->data_bytes += n->nblocks << b->blkszbits;
			continue;
		}
		/* a copy whose owner ended up in another form keeps its own data */
		if (n->same_data && (n->same_data->z || n->same_data->nblocks != n->nblocks ||
				     n->same_data->layout != n->layout))
			n->same_data = NULL;
		if (!n->nblocks) {
			/* no block: empty file or all data inline */
			n->startblk = n->layout == EROFS_INODE_FLAT_INLINE ? EROFS_NULL_ADDR : 0;
			continue;
		}
		if (n->same_data)
			continue;
		n->startblk = (uint32_t)next;
		next += n->nblocks;
		if (is_reg(n->mode))
			b->data_bytes += n->size - n->tail_len;
	}
	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *n = order[i];

		if (n->layout != EROFS_INODE_CHUNK_BASED && n->same_data && (n->z || n->nblocks))
			n->startblk = n->same_data->startblk;
	}
	b->total_blocks = next;
}

int builder_plan(struct builder *b)
{
	struct bnode **order;
	int ret;

	builder_plan_shared_xattrs(b);
	choose_epoch(b);
	for (size_t i = 0; i < b->ninodes; i++)
		if (is_dir(b->order[i]->mode))
			add_dot_entries(b->order[i]);

	ret = builder_plan_chunks(b);
	if (!ret && b->compress && !b->opts->no_dedupe_files)
		ret = dedupe_files(b, true);
	if (!ret && b->compress)
		ret = builder_compress_files(b);
	for (size_t i = 0; !ret && i < b->ninodes; i++)
		ret = plan_inode_form(b, b->order[i]);
	if (!ret)
		ret = place_metadata(b);
	if (ret)
		return ret;

	b->xattr_blkaddr = b->shared_xattr_bytes ? (uint32_t)b->meta_blocks : 0;
	b->data_blkaddr = b->meta_blocks + DIV_ROUND_UP(b->shared_xattr_bytes, b->blksz);
	if (!b->opts->no_dedupe_files && !b->compress) {
		ret = dedupe_files(b, false);
		if (ret)
			return ret;
	}
	order = builder_data_order(b);
	place_data(b, order);
	ret = builder_assign_chunks(b, order);
	free(order);
	if (ret)
		return ret;
	if (b->total_blocks > UINT32_MAX)
		return anole_error_code(EFBIG, "%s: image would need %llu blocks (EROFS holds 2^32)",
					b->opts->output, (unsigned long long)b->total_blocks);
	return 0;
}
