// SPDX-License-Identifier: Apache-2.0
/*
 * Compressed files (-z): the data of each regular file is cut into
 * extents, each compressed into a physical cluster (pcluster) of whole
 * blocks ("fixed-size output"), which the kernel decompresses on read.
 *
 *   1. rules: each file gets an algorithm and pcluster size, or none
 *      (--compress-hints, first matching rule wins);
 *   2. files are cut into segments of a fixed size and the segments are
 *      compressed in parallel. Each job writes its pclusters to a spill
 *      file; nothing depends on the thread count or on scheduling, so the
 *      image is byte-identical whatever --threads is;
 *   3. the tail of a file becomes, in this order of preference, a
 *      fragment (--fragments: packed with other tails and small files into
 *      one "packed inode", compressed as a whole), an inline compressed
 *      or raw tail after the indexes (ztailpacking), or a last pcluster;
 *   4. a file that does not shrink is stored uncompressed (flat);
 *   5. after placement, write.c copies pclusters from the spill to their
 *      blocks, and the indexes (compacted 4B/2B form) go to the metadata.
 */
#include "builder.h"
#include "zcompress.h"
#include "anole/endian.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Segments are compressed independently; big enough that the partial
 * pcluster at each segment end costs nothing measurable. */
#define ZSEGMENT_MIN (8u << 20)

/* ---- rules ---- */

static int parse_pcluster(const char *s, uint32_t blksz, uint32_t *out)
{
	unsigned long long v;

	if (anole_parse_size(s, &v) || v < blksz || v > Z_EROFS_PCLUSTER_MAX_SIZE || v % blksz)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/*
 * --compress-hints FILE: one rule per line, "ALG[,LEVEL]|none [PCLUSTER]
 * REGEX", matched (POSIX extended) against each path relative to the
 * source root, without a leading slash. '#' starts a comment line.
 */
static int load_hints(struct builder *b, const char *file)
{
	FILE *f = fopen(file, "r");
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int ret = 0;

	if (!f)
		return anole_error(errno, "cannot open compress hints %s", file);
	while (!ret && getline(&line, &cap, f) >= 0) {
		char *p = line, *alg, *re;
		struct zrule r = { .pcluster = b->zdefault.pcluster };
		size_t len = strlen(line);
		int rc;

		lineno++;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		while (*p == ' ' || *p == '\t')
			p++;
		if (!*p || *p == '#')
			continue;
		alg = p;
		p += strcspn(p, " \t");
		if (*p)
			*p++ = 0;
		p += strspn(p, " \t");
		if (*p >= '0' && *p <= '9') {
			char *sz = p;

			p += strcspn(p, " \t");
			if (*p)
				*p++ = 0;
			p += strspn(p, " \t");
			if (parse_pcluster(sz, b->blksz, &r.pcluster)) {
				ret = anole_error_code(EINVAL, "%s:%u: pcluster size %s: a multiple of %u up to 1M",
						       file, lineno, sz, b->blksz);
				break;
			}
		}
		re = p;
		if (!*re) {
			ret = anole_error_code(EINVAL, "%s:%u: expected ALG [PCLUSTER] REGEX", file, lineno);
			break;
		}
		if (!strcmp(alg, "none")) {
			r.none = true;
		} else {
			char where[PATH_MAX + 16];

			snprintf(where, sizeof(where), "%s:%u:", file, lineno);
			if ((ret = zalg_parse(where, alg, &r.alg)))
				break;
		}
		if ((rc = regcomp(&r.re, re, REG_EXTENDED | REG_NOSUB))) {
			char msg[128];

			regerror(rc, &r.re, msg, sizeof(msg));
			ret = anole_error_code(EINVAL, "%s:%u: %s: %s", file, lineno, re, msg);
			break;
		}
		xgrow(&b->zrules, &b->zrules_alloc, b->nzrules + 1, sizeof(*b->zrules));
		b->zrules[b->nzrules++] = r;
	}
	free(line);
	fclose(f);
	return ret;
}

int builder_compress_init(struct builder *b)
{
	const struct anole_build_opts *o = b->opts;
	int ret;

	b->spill_fd = b->packed_fd = -1;
	if (!o->data_compress)
		return 0;
	if (b->blksz != 4096)
		return anole_error_code(EINVAL, "compression needs 4096-byte blocks");
	if (o->chunk_size || o->blob_path || o->blob_dir || o->nlayers)
		return anole_error_code(EINVAL, "compressed images cannot have chunks or blobs yet");
	ret = zalg_parse("-z", o->data_compress, &b->zdefault.alg);
	if (ret)
		return ret;
	b->zdefault.pcluster = o->pcluster_size ? o->pcluster_size : b->blksz;
	if (b->zdefault.pcluster < b->blksz || b->zdefault.pcluster % b->blksz ||
	    b->zdefault.pcluster > Z_EROFS_PCLUSTER_MAX_SIZE)
		return anole_error_code(EINVAL, "pcluster size %u: a multiple of %u up to 1M",
					b->zdefault.pcluster, b->blksz);
	if (o->compress_hints && (ret = load_hints(b, o->compress_hints)))
		return ret;
	b->compress = true;
	return 0;
}

void builder_compress_free(struct builder *b)
{
	for (size_t i = 0; i < b->nzrules; i++)
		regfree(&b->zrules[i].re);
	free(b->zrules);
	if (b->spill_fd >= 0)
		close(b->spill_fd);
	if (b->packed_fd >= 0)
		close(b->packed_fd);
	for (size_t i = 0; i < b->ninodes; i++) {
		struct zfile *z = b->order[i]->z;

		b->order[i]->z = NULL;
		if (!z || b->order[i]->same_data)
			continue;
		free(z->ext);
		free(z->spill);
		free(z->idata);
		free(z->tail_raw);
		free(z);
	}
	zalg_thread_cleanup();
}

static const struct zrule *rule_for(const struct builder *b, const struct bnode *n)
{
	const char *rel = n->path;
	size_t sl = strlen(b->opts->src_dir);

	if (!strncmp(rel, b->opts->src_dir, sl))
		rel += sl;
	while (*rel == '/')
		rel++;
	for (size_t i = 0; i < b->nzrules; i++)
		if (!regexec(&b->zrules[i].re, rel, 0, NULL, 0))
			return b->zrules[i].none ? NULL : &b->zrules[i];
	return &b->zdefault;
}

/* ---- compressing one segment ---- */

struct zjob {
	struct builder *b;
	struct bnode *n;
	const struct zrule *rule;
	uint64_t off, len;          /* segment of the file */
	bool final;                 /* the file's last segment */
	bool may_inline, may_fragment;
	/* results */
	struct zext *ext;
	size_t next, ext_alloc;
	uint64_t spill_off, spill_len;
	uint64_t blocks;
	uint8_t *idata;
	uint16_t idata_len;
	uint8_t *tail_raw;          /* a compressed inline tail shorter than a block, as is */
	uint64_t frag_spill;        /* raw fragment bytes in the spill */
	uint32_t frag_len;
	int err;
	bool shrank;
};

static void add_ext(struct zjob *j, uint64_t la, uint32_t len, uint32_t blocks, uint8_t kind)
{
	xgrow(&j->ext, &j->ext_alloc, j->next + 1, sizeof(*j->ext));
	j->ext[j->next++] = (struct zext){ .la = la, .len = len, .blocks = blocks, .kind = kind };
}

/* Reserve len bytes of the spill file; its order does not matter. */
static uint64_t spill_reserve(struct builder *b, uint64_t len)
{
	return atomic_fetch_add(&b->spill_len, len);
}

static int read_segment(struct zjob *j, uint8_t *buf)
{
	struct builder *b = j->b;
	int fd, ret;

	if (j->n->packed_inode)
		return pread_full(b->packed_fd, buf, j->len, j->off);
	fd = builder_open(j->n);
	if (fd < 0)
		return -errno;
	ret = pread_full(fd, buf, j->len, j->off);
	close(fd);
	return ret;
}

static void compress_segment(void *item, void *shared)
{
	struct zjob *j = item;
	struct builder *b = j->b;
	const uint32_t blksz = b->blksz, pcl = j->rule->pcluster;
	/* the longest input of one extent: bounds the work of a random read,
	 * as mkfs.erofs does (zeros would otherwise fill 12 MiB extents) */
	const uint64_t maxin = 4u << 20;
	uint8_t *in = xmalloc(j->len ? j->len : 1);
	uint8_t *out = NULL, *tmp = xmalloc(pcl), *tmp2 = NULL;
	size_t out_len = 0, out_alloc = 0;
	uint64_t pos = 0;
	int ret;

	(void)shared;
	zalg_begin_segment();
	ret = read_segment(j, in);
	if (ret) {
		j->shrank = ret == -ENODATA;
		j->err = ret;
		goto out;
	}
	while (pos < j->len) {
		uint64_t rem = j->len - pos, la = j->off + pos;
		size_t take = rem < maxin ? (size_t)rem : (size_t)maxin;
		uint32_t blocks;
		int c;

		if (j->final && j->may_fragment && rem <= pcl) {
			/* the tail (or the whole small file) goes to the packed inode */
			j->frag_len = (uint32_t)rem;
			j->frag_spill = spill_reserve(b, rem);
			ret = pwrite_full(b->spill_fd, in + pos, rem, j->frag_spill);
			if (ret) {
				j->err = ret;
				goto out;
			}
			add_ext(j, la, (uint32_t)rem, 0, ZX_FRAGMENT);
			break;
		}
		c = zalg_compress_fit(&j->rule->alg, &b->zparams, in + pos, &take, tmp, pcl);
		if (c < 0) {
			j->err = c;
			goto out;
		}
		if (c > 0 && tmp[0] && j->final && j->may_inline && take == rem && (uint32_t)c < blksz &&
		    (rem >= blksz || (uint64_t)c < rem)) {
			j->idata = xmalloc((size_t)c);
			memcpy(j->idata, tmp, (size_t)c);
			j->idata_len = (uint16_t)c;
			if (rem < blksz) {
				j->tail_raw = xmalloc((size_t)rem);
				memcpy(j->tail_raw, in + pos, (size_t)rem);
			}
			add_ext(j, la, (uint32_t)rem, 0, ZX_INLINE);
			break;
		}
		/*
		 * The last extent spills a little into its last block: refit it
		 * into one block less, so that what it leaves out becomes an
		 * inline tail, if that cannot cost more (as mkfs.erofs does).
		 */
		if (c > (int)blksz && c % blksz && tmp[0] && j->final && j->may_inline &&
		    take == rem) {
			size_t take2 = take;
			int c2;

			if (!tmp2)
				tmp2 = xmalloc(pcl);
			c2 = zalg_compress_fit(&j->rule->alg, &b->zparams, in + pos, &take2, tmp2,
					       (size_t)c / blksz * blksz);
			if (c2 < 0) {
				j->err = c2;
				goto out;
			}
			if (c2 > 0 && tmp2[0] && (uint64_t)c2 + (rem - take2) < ALIGN_UP((uint64_t)c, blksz)) {
				uint8_t *t = tmp;

				tmp = tmp2;
				tmp2 = t;
				c = c2;
				take = take2;
			}
		}
		/*
		 * Zero padding is found by skipping leading zero bytes, so a
		 * payload must not start with one (a DEFLATE stored block
		 * can): store a block as it is and go on after it.
		 */
		if (c > 0 && !tmp[0] && take > blksz)
			take = blksz;
		blocks = (uint32_t)DIV_ROUND_UP((uint32_t)c, blksz);
		if (c == 0 || !tmp[0] || (uint64_t)blocks * blksz >= take ||
		    (j->final && j->may_inline && rem < blksz)) {
			/*
			 * No gain: store as it is what the compressor looked
			 * at (up to a pcluster), one block per extent, rather
			 * than retrying from every next block.
			 */
			uint64_t span = take > pcl ? pcl : take, nfull, done;

			if (j->final && j->may_inline && rem < blksz) {
				j->idata = xmalloc((size_t)rem);
				memcpy(j->idata, in + pos, (size_t)rem);
				j->idata_len = (uint16_t)rem;
				add_ext(j, la, (uint32_t)rem, 0, ZX_INLINE_RAW);
				break;
			}
			nfull = span / blksz ? span / blksz : 1;
			done = 0;
			for (uint64_t k = 0; k < nfull && done < rem; k++) {
				uint64_t left = rem - done;
				uint32_t l = left < blksz ? (uint32_t)left : blksz;

				/* leave a short tail, or one that fits a fragment,
				 * to the next round */
				if (k && (left < blksz || (j->final && j->may_fragment && left <= pcl)))
					break;
				xgrow(&out, &out_alloc, out_len + blksz, 1);
				memset(out + out_len, 0, blksz);
				memcpy(out + out_len, in + pos + done, l);
				out_len += blksz;
				add_ext(j, la + done, l, 1, ZX_RAW);
				j->blocks++;
				done += l;
			}
			pos += done;
			continue;
		}
		/* zero padding in front: the payload ends at the pcluster end */
		xgrow(&out, &out_alloc, out_len + (size_t)blocks * blksz, 1);
		memset(out + out_len, 0, (size_t)blocks * blksz - (size_t)c);
		memcpy(out + out_len + (size_t)blocks * blksz - (size_t)c, tmp, (size_t)c);
		out_len += (size_t)blocks * blksz;
		add_ext(j, la, (uint32_t)take, blocks, ZX_COMPRESSED);
		j->blocks += blocks;
		pos += take;
	}
	if (out_len) {
		j->spill_len = out_len;
		j->spill_off = spill_reserve(b, out_len);
		j->err = pwrite_full(b->spill_fd, out, out_len, j->spill_off);
	}
	anole_progress_add(b->progress, j->len);
out:
	free(in);
	free(out);
	free(tmp);
	free(tmp2);
}

/* ---- planning ---- */

static uint64_t segment_size(const struct zrule *r)
{
	uint64_t s = (uint64_t)r->pcluster * 64;

	return s > ZSEGMENT_MIN ? s : ZSEGMENT_MIN;
}

static void add_jobs(struct builder *b, struct bnode *n, const struct zrule *r,
		     struct zjob **jobs, size_t *njobs, size_t *alloc)
{
	uint64_t seg = segment_size(r);

	for (uint64_t off = 0; off < n->size; off += seg) {
		uint64_t len = n->size - off < seg ? n->size - off : seg;

		xgrow(jobs, alloc, *njobs + 1, sizeof(**jobs));
		(*jobs)[(*njobs)++] = (struct zjob){
			.b = b, .n = n, .rule = r, .off = off, .len = len,
			.final = off + len == n->size,
			.may_inline = !b->opts->no_ztailpacking && !n->packed_inode,
			.may_fragment = b->opts->fragments && !n->packed_inode,
		};
	}
}

/* Bytes of compacted indexes for `lclusters`, whose first index is at
 * `ebase` (mod 32): 4B packs up to 32-byte alignment, 2B packs of 16, 4B. */
static uint32_t compacted_size(uint64_t lclusters, unsigned ebase_mod32)
{
	uint64_t initial = (32 - ebase_mod32 % 32) / 4 % 8, twob, end;

	if (initial >= lclusters)
		return (uint32_t)(ALIGN_UP(lclusters, 2) * 4);
	twob = (lclusters - initial) / 16 * 16;
	end = lclusters - initial - twob;
	return (uint32_t)(initial * 4 + twob * 2 + ALIGN_UP(end, 2) * 4);
}

/* Gather one file's jobs into its zfile; false: store it uncompressed. */
static bool assemble(struct builder *b, struct bnode *n, struct zjob *jobs, size_t first,
		     size_t count, struct zfile **out)
{
	struct zfile *z = xcalloc(1, sizeof(*z));
	uint64_t lclusters = DIV_ROUND_UP(n->size, b->blksz);

	z->rule = jobs[first].rule;
	for (size_t i = first; i < first + count; i++) {
		struct zjob *j = &jobs[i];

		xgrow(&z->ext, &z->ext_alloc, z->next + j->next, sizeof(*z->ext));
		memcpy(z->ext + z->next, j->ext, j->next * sizeof(*j->ext));
		z->next += j->next;
		if (j->spill_len) {
			xgrow(&z->spill, &z->spill_alloc, z->nspill + 1, sizeof(*z->spill));
			z->spill[z->nspill].off = j->spill_off;
			z->spill[z->nspill++].len = j->spill_len;
		}
		z->pblocks += j->blocks;
		if (j->idata) {
			z->idata = j->idata;
			z->idata_len = j->idata_len;
			z->tail_raw = j->tail_raw;
			j->idata = NULL;
			j->tail_raw = NULL;
		}
		if (j->frag_len) {
			z->frag_spill = j->frag_spill;
			z->frag_len = j->frag_len;
		}
	}
	z->whole_fragment = z->frag_len && z->next == 1;
	/* indexes: their exact size depends on the inode's form, known later */
	if (!z->frag_len &&
	    z->pblocks * b->blksz + z->idata_len + 8 + compacted_size(lclusters, 0) >= n->size) {
		/* compression does not pay: a flat file */
		free(z->ext);
		free(z->spill);
		free(z->idata);
		free(z->tail_raw);
		free(z);
		*out = NULL;
		return false;
	}
	*out = z;
	return true;
}

struct frag_entry {
	uint64_t off;               /* in the packed inode's data */
	uint32_t len;
	int fd;                     /* that data, to compare contents */
};
struct frag_key { const uint8_t *data; uint32_t len; };

/* Same length and same bytes (read back: only on a hash match). */
static bool frag_eq(const void *entry, const void *key)
{
	const struct frag_entry *e = entry;
	const struct frag_key *k = key;
	uint8_t *other;
	bool same;

	if (e->len != k->len)
		return false;
	other = xmalloc(e->len);
	same = !pread_full(e->fd, other, e->len, e->off) && !memcmp(other, k->data, e->len);
	free(other);
	return same;
}

/* Append each tail to the packed inode's data, once per distinct content. */
static int pack_fragments(struct builder *b)
{
	struct frag_entry *ents;
	struct anole_hashmap map;
	size_t nents = 0, ntails = 0;
	uint64_t packed = 0;
	uint8_t *buf = NULL;
	size_t buf_alloc = 0;
	int ret = 0;

	for (size_t i = 0; i < b->ninodes; i++)
		ntails += b->order[i]->z && b->order[i]->z->frag_len;
	ents = xcalloc(ntails + 1, sizeof(*ents));   /* the map points into it */
	anole_hashmap_init(&map, frag_eq);
	for (size_t i = 0; i < b->ninodes && !ret; i++) {
		struct zfile *z = b->order[i]->z;
		struct frag_entry *e;
		struct frag_key k;
		uint64_t h;

		if (!z || !z->frag_len)
			continue;
		xgrow(&buf, &buf_alloc, z->frag_len, 1);
		ret = pread_full(b->spill_fd, buf, z->frag_len, z->frag_spill);
		if (ret)
			break;
		k = (struct frag_key){ buf, z->frag_len };
		h = anole_hash_bytes(buf, z->frag_len, 0);
		e = anole_hashmap_get(&map, h, &k);
		if (e) {
			z->frag_off = e->off;
			continue;
		}
		if (packed + z->frag_len > UINT32_MAX) {
			ret = anole_error_code(EFBIG, "fragments exceed 4 GiB; build without --fragments");
			break;
		}
		ret = pwrite_full(b->packed_fd, buf, z->frag_len, packed);
		z->frag_off = packed;
		packed += z->frag_len;
		e = &ents[nents++];
		*e = (struct frag_entry){ z->frag_off, z->frag_len, b->packed_fd };
		anole_hashmap_put(&map, h, e);
	}
	anole_hashmap_free(&map);
	free(buf);
	free(ents);
	if (ret)
		return ret < 0 ? anole_error(-ret, "cannot pack fragments") : ret;
	b->packed_size = packed;
	return 0;
}

static int open_temp(const struct builder *b, int *fd)
{
	char *dir = xstrdup(b->opts->output), *slash = strrchr(dir, '/');

	if (slash)
		*slash = 0;
	*fd = open(slash ? (*dir ? dir : "/") : ".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd < 0) {
		int err = errno;

		free(dir);
		return anole_error(err, "cannot create a temporary file next to %s", b->opts->output);
	}
	free(dir);
	return 0;
}

static int run_jobs(struct builder *b, struct bnode **files, size_t nfiles,
		    const struct zrule **rules)
{
	struct zjob *jobs = NULL;
	size_t njobs = 0, alloc = 0, *first = xcalloc(nfiles + 1, sizeof(*first));
	uint64_t total = 0;
	int ret = 0;

	for (size_t i = 0; i < nfiles; i++) {
		first[i] = njobs;
		add_jobs(b, files[i], rules[i], &jobs, &njobs, &alloc);
		total += files[i]->size;
	}
	first[nfiles] = njobs;
	b->progress = anole_progress_start("Compressing", total, "B");
	anole_parallel_for(jobs, njobs, sizeof(*jobs), b->opts->threads, compress_segment, NULL);
	anole_progress_done(b->progress);
	b->progress = NULL;
	for (size_t k = 0; k < njobs && !ret; k++) {
		if (jobs[k].shrank)
			ret = anole_error_code(EIO, "%s: file shrank while building the image",
					       jobs[k].n->path);
		else if (jobs[k].err)
			ret = anole_error(-jobs[k].err, "cannot compress %s", jobs[k].n->path);
	}
	for (size_t i = 0; i < nfiles && !ret; i++) {
		struct zfile *z;

		if (assemble(b, files[i], jobs, first[i], first[i + 1] - first[i], &z))
			files[i]->z = z;
	}
	for (size_t k = 0; k < njobs; k++) {
		free(jobs[k].ext);
		free(jobs[k].idata);
		free(jobs[k].tail_raw);
	}
	free(jobs);
	free(first);
	return ret;
}

static void note_rule(struct builder *b, const struct zrule *r)
{
	uint32_t blocks = r->pcluster / b->blksz;

	b->zalgs |= (uint16_t)(1u << r->alg.id);
	if (blocks > b->zmax_pcluster_blocks)
		b->zmax_pcluster_blocks = blocks;
}

int builder_compress_files(struct builder *b)
{
	struct bnode **files = xmalloc((b->ninodes + 1) * sizeof(*files));
	const struct zrule **rules = xmalloc((b->ninodes + 1) * sizeof(*rules));
	size_t nfiles = 0;
	int ret;

	/* window sizes follow the largest pcluster of any rule */
	note_rule(b, &b->zdefault);
	for (size_t i = 0; i < b->nzrules; i++)
		if (!b->zrules[i].none && b->zrules[i].pcluster > b->zmax_pcluster_blocks * b->blksz)
			b->zmax_pcluster_blocks = b->zrules[i].pcluster / b->blksz;
	zalg_params_init(&b->zparams, b->zmax_pcluster_blocks * b->blksz);
	b->zalgs = 0;
	b->zmax_pcluster_blocks = 0;

	for (size_t i = 0; i < b->ninodes; i++) {
		struct bnode *n = b->order[i];
		const struct zrule *r;

		/* sparse files stay chunk-based: their holes cost nothing there */
		if (!is_reg(n->mode) || !n->size || n->same_data || n->prechunked ||
		    node_is_chunked(b, n))
			continue;
		r = rule_for(b, n);
		if (!r)
			continue;
		files[nfiles] = n;
		rules[nfiles++] = r;
	}
	ret = open_temp(b, &b->spill_fd);
	if (!ret && b->opts->fragments)
		ret = open_temp(b, &b->packed_fd);
	if (!ret)
		ret = run_jobs(b, files, nfiles, rules);
	for (size_t i = 0; !ret && i < nfiles; i++) {
		if (!files[i]->z)
			continue;
		note_rule(b, files[i]->z->rule);
		b->zfrag_used |= files[i]->z->frag_len != 0;
	}
	if (!ret && b->zfrag_used)
		ret = pack_fragments(b);
	if (!ret && b->zfrag_used) {
		/* the packed inode: a regular file outside the tree, itself compressed */
		struct bnode *p = xcalloc(1, sizeof(*p));
		const struct zrule *r = &b->zdefault;

		p->path = xstrdup("(packed inode)");
		p->mode = 0100600;
		p->size = b->packed_size;
		p->mtime = b->epoch;
		p->mtime_nsec = b->epoch_nsec;
		p->nlink = 1;
		p->packed_inode = true;
		xgrow(&b->order, &b->order_alloc, b->ninodes + 1, sizeof(*b->order));
		b->order[b->ninodes++] = p;
		p->ino = (uint32_t)b->ninodes;
		b->packed = p;
		ret = run_jobs(b, &p, 1, &r);
		if (!ret && p->z)
			note_rule(b, p->z->rule);
	}
	/* identical files share the owner's pclusters and extents */
	for (size_t i = 0; !ret && i < b->ninodes; i++) {
		struct bnode *n = b->order[i];

		if (n->same_data && is_reg(n->mode))
			n->z = n->same_data->z;
	}
	free(files);
	free(rules);
	if (!ret && !b->zalgs)
		note_rule(b, &b->zdefault);    /* nothing shrank: still a valid config */
	return ret;
}

/* ---- metadata of a compressed inode ---- */

/*
 * The inline tail must sit inside one metadata block with its inode and
 * indexes; if the unit would be bigger than a block, the tail becomes a
 * regular pcluster instead.
 */
uint32_t builder_zunit(struct builder *b, struct bnode *n, uint32_t base)
{
	struct zfile *z = n->z;
	uint32_t head = (uint32_t)ALIGN_UP(base, 8);
	uint32_t before;
	bool straddles;

	if (z->whole_fragment) {
		n->zmeta_len = 16;      /* the map header and 8 reserved bytes */
		return head + n->zmeta_len;
	}
	n->zmeta_len = 8 + compacted_size(DIV_ROUND_UP(n->size, b->blksz), (head + 8) % 32);
	before = head + n->zmeta_len;
	/*
	 * Only a unit that fits one block keeps its tail inline, as mkfs.erofs
	 * does: Linux reads an inline tail behind indexes that span blocks,
	 * but older readers (Debian's fsck.erofs 1.5) do not.
	 */
	straddles = z->idata_len && before + z->idata_len > b->blksz;
	if (straddles && n->same_data) {
		/* the owner kept its tail inline: this copy cannot; go flat */
		return 0;
	}
	if (straddles) {
		struct zext *e = &z->ext[z->next - 1];

		/*
		 * A compressed extent inside one lcluster has no next lcluster
		 * to hold its block count, which readers of big pclusters look
		 * for: such a tail is stored as it is.
		 */
		if (e->kind == ZX_INLINE && z->tail_raw &&
		    (e->la & (b->blksz - 1)) + e->len <= b->blksz) {
			free(z->idata);
			z->idata = z->tail_raw;
			z->idata_len = (uint16_t)e->len;
			z->tail_raw = NULL;
			e->kind = ZX_INLINE_RAW;
		}
		e->kind = e->kind == ZX_INLINE ? ZX_INLINE_DROPPED : ZX_RAW_DROPPED;
		e->blocks = 1;
		z->pblocks++;
	}
	if (z->idata_len && (z->ext[z->next - 1].kind == ZX_INLINE ||
			     z->ext[z->next - 1].kind == ZX_INLINE_RAW)) {
		b->ztail_used = true;
		return before + z->idata_len;
	}
	return before;
}

struct lcl {
	uint8_t type;
	bool real;                  /* a head whose pblk must decode exactly */
	uint16_t lo;                /* clusterofs, or delta[0] / CBLKCNT|blocks */
	uint16_t d1;                /* NONHEAD: lclusters to the next head */
	uint32_t pblk;
};

/*
 * What the kernel computes as the pblk of the head at i, minus the pack's
 * base (zmap.c, unpack_compacted_index); -1 where it would see corruption.
 */
static int64_t decode_nblk(const struct lcl *v, int i, bool big)
{
	int64_t nblk = big ? 0 : 1;

	while (i > 0) {
		--i;
		if (!big) {
			if (v[i].type == Z_EROFS_LCLUSTER_TYPE_NONHEAD)
				i -= v[i].lo;
			if (i >= 0)
				nblk++;
			continue;
		}
		if (v[i].type != Z_EROFS_LCLUSTER_TYPE_NONHEAD) {
			nblk++;
			continue;
		}
		if (v[i].lo & Z_EROFS_LI_D0_CBLKCNT) {
			nblk += v[i].lo & ~Z_EROFS_LI_D0_CBLKCNT;
			--i;
			continue;
		}
		if (v[i].lo <= 1)
			return -1;
		i -= v[i].lo - 2;
	}
	return nblk;
}

static int encode_pack(uint8_t *out, const struct lcl *all, uint64_t first, uint64_t total,
		       unsigned vcnt, unsigned unit, bool big)
{
	struct lcl v[16];
	unsigned encodebits = (vcnt * unit * 8 - 32) / vcnt;
	uint32_t base = 0;
	bool have_base = false;

	memset(out, 0, vcnt * unit);
	for (unsigned i = 0; i < vcnt; i++) {
		if (first + i < total) {
			v[i] = all[first + i];
			/* the last NONHEAD of a pack holds delta[1] instead */
			if (i + 1 == vcnt && v[i].type == Z_EROFS_LCLUSTER_TYPE_NONHEAD &&
			    !(v[i].lo & Z_EROFS_LI_D0_CBLKCNT))
				v[i].lo = v[i].d1 < Z_EROFS_LI_D0_CBLKCNT ? v[i].d1 :
					  Z_EROFS_LI_D0_CBLKCNT - 1;
		} else {
			v[i] = (struct lcl){ .type = Z_EROFS_LCLUSTER_TYPE_PLAIN };
		}
	}
	for (unsigned i = 0; i < vcnt; i++) {
		int64_t nblk;
		uint32_t val;
		unsigned pos = i * encodebits;

		if (v[i].real) {
			nblk = decode_nblk(v, (int)i, big);
			if (!have_base && nblk >= 0) {
				base = v[i].pblk - (uint32_t)nblk;
				have_base = true;
			} else if (nblk < 0 || base + (uint32_t)nblk != v[i].pblk) {
				return anole_error_code(EIO, "internal error: compacted index at lcluster %llu",
							(unsigned long long)(first + i));
			}
		}
		val = ((uint32_t)v[i].type << 12) | v[i].lo;
		for (unsigned bit = 0; bit < 14; bit++)
			if (val & (1u << bit))
				out[(pos + bit) / 8] |= (uint8_t)(1u << ((pos + bit) % 8));
	}
	put_le32(out + vcnt * unit - 4, base);
	return 0;
}

/*
 * The map header and the compacted indexes of n, at dst (the 8-aligned
 * position after inode and xattrs; `ebase_mod32` is where the indexes
 * begin, mod 32), for pclusters starting at block n->startblk.
 */
int builder_write_zmeta(struct builder *b, const struct bnode *n, uint8_t *dst,
			unsigned ebase_mod32)
{
	const struct zfile *z = n->z;
	const uint32_t bb = b->blkszbits, mask = b->blksz - 1;
	uint64_t total = DIV_ROUND_UP(n->size, b->blksz);
	bool big = z->rule->pcluster > b->blksz;
	struct z_erofs_map_header h = { 0 };
	uint16_t advise = Z_EROFS_ADVISE_COMPACTED_2B;
	struct lcl *v;
	uint32_t pblk = n->startblk;
	uint64_t initial, twob, end, lcn = 0;
	uint8_t *out = dst + 8;
	int ret = 0;

	if (z->whole_fragment) {
		put_le64(dst, z->frag_off | (1ull << 63));
		memset(dst + 8, 0, 8);
		return 0;
	}
	v = xcalloc(total + 1, sizeof(*v));
	for (size_t k = 0; k < z->next; k++) {
		const struct zext *e = &z->ext[k];
		uint64_t h_lcn = e->la >> bb, e_end = e->la + e->len, stop = e_end >> bb;
		bool raw = e->kind == ZX_RAW || e->kind == ZX_INLINE_RAW || e->kind == ZX_RAW_DROPPED;
		uint32_t blocks = e->blocks ? e->blocks : 1;

		v[h_lcn] = (struct lcl){
			.type = raw ? Z_EROFS_LCLUSTER_TYPE_PLAIN : Z_EROFS_LCLUSTER_TYPE_HEAD1,
			.real = e->blocks != 0,
			.lo = (uint16_t)(e->la & mask),
			.pblk = pblk,
		};
		for (uint64_t j = h_lcn + 1; j < stop && j < total; j++) {
			uint64_t d0 = j - h_lcn;

			v[j].type = Z_EROFS_LCLUSTER_TYPE_NONHEAD;
			if (d0 == 1 && big)
				v[j].lo = (uint16_t)(Z_EROFS_LI_D0_CBLKCNT | blocks);
			else
				v[j].lo = (uint16_t)(d0 < Z_EROFS_LI_D0_CBLKCNT ? d0 :
						     Z_EROFS_LI_D0_CBLKCNT - 1);
			v[j].d1 = (uint16_t)(stop - j < 0xffff ? stop - j : 0xffff);
		}
		/* the file ends inside an lcluster after this extent's head:
		 * a head marks the end there */
		if (k + 1 == z->next && stop > h_lcn && stop < total)
			v[stop] = (struct lcl){ .type = Z_EROFS_LCLUSTER_TYPE_PLAIN,
						.lo = (uint16_t)(e_end & mask) };
		pblk += e->blocks;
	}

	initial = (32 - ebase_mod32 % 32) / 4 % 8;
	if (initial >= total) {
		initial = ALIGN_UP(total, 2);
		twob = end = 0;
	} else {
		twob = (total - initial) / 16 * 16;
		end = ALIGN_UP(total - initial - twob, 2);
	}
	for (uint64_t k = 0; k < initial && !ret; k += 2, lcn += 2, out += 8)
		ret = encode_pack(out, v, lcn, total, 2, 4, big);
	for (uint64_t k = 0; k < twob && !ret; k += 16, lcn += 16, out += 32)
		ret = encode_pack(out, v, lcn, total, 16, 2, big);
	for (uint64_t k = 0; k < end && !ret; k += 2, lcn += 2, out += 8)
		ret = encode_pack(out, v, lcn, total, 2, 4, big);
	free(v);
	if (ret)
		return ret;

	if (big)
		advise |= Z_EROFS_ADVISE_BIG_PCLUSTER_1 | Z_EROFS_ADVISE_BIG_PCLUSTER_2;
	if (z->frag_len) {
		advise |= Z_EROFS_ADVISE_FRAGMENT_PCLUSTER;
		h.u.h_fragmentoff = cpu_to_le32((uint32_t)z->frag_off);
	} else if (z->ext[z->next - 1].kind == ZX_INLINE ||
		   z->ext[z->next - 1].kind == ZX_INLINE_RAW) {
		advise |= Z_EROFS_ADVISE_INLINE_PCLUSTER;
		h.u.s.h_idata_size = cpu_to_le16(z->idata_len);
		memcpy(out, z->idata, z->idata_len);
	}
	h.h_advise = cpu_to_le16(advise);
	h.h_algorithmtype = (uint8_t)z->rule->alg.id;
	h.h_clusterbits = 0;        /* lcluster = block */
	memcpy(dst, &h, sizeof(h));
	return 0;
}

/* Copy n's pclusters from the spill to its blocks; dropped inline tails
 * become the last pcluster. */
int builder_write_zdata(struct builder *b, const struct bnode *n)
{
	const struct zfile *z = n->z;
	uint64_t dst = (uint64_t)n->startblk << b->blkszbits;
	const struct zext *last = &z->ext[z->next - 1];
	int ret;

	for (size_t i = 0; i < z->nspill; i++) {
		ret = anole_copy_range(b->spill_fd, z->spill[i].off, b->img_fd, dst, z->spill[i].len);
		if (ret)
			return ret;
		dst += z->spill[i].len;
	}
	if (last->kind == ZX_INLINE_DROPPED || last->kind == ZX_RAW_DROPPED) {
		uint8_t *blk = xcalloc(1, b->blksz);

		if (last->kind == ZX_INLINE_DROPPED)
			memcpy(blk + b->blksz - z->idata_len, z->idata, z->idata_len);
		else
			memcpy(blk, z->idata, z->idata_len);
		ret = pwrite_full(b->img_fd, blk, b->blksz, dst);
		free(blk);
		if (ret)
			return ret;
	}
	return 0;
}

/* The algorithm config records after the superblock (COMPR_CFGS). */
uint32_t builder_zcfg_size(const struct builder *b)
{
	static const uint32_t sizes[Z_EROFS_COMPRESSION_MAX] = {
		2 + sizeof(struct z_erofs_lz4_cfgs), 2 + sizeof(struct z_erofs_lzma_cfgs),
		2 + sizeof(struct z_erofs_deflate_cfgs), 2 + sizeof(struct z_erofs_zstd_cfgs),
	};
	uint32_t total = 0;

	for (int id = 0; id < Z_EROFS_COMPRESSION_MAX; id++)
		if (b->zalgs & (1u << id))
			total += sizes[id];
	return total;
}

void builder_write_zcfgs(const struct builder *b, uint8_t *p)
{
	for (int id = 0; id < Z_EROFS_COMPRESSION_MAX; id++) {
		if (!(b->zalgs & (1u << id)))
			continue;
		switch (id) {
		case Z_EROFS_COMPRESSION_LZ4: {
			struct z_erofs_lz4_cfgs c = {
				.max_distance = cpu_to_le16(0xffff),
				.max_pclusterblks = cpu_to_le16((uint16_t)b->zmax_pcluster_blocks),
			};
			put_le16(p, sizeof(c));
			memcpy(p + 2, &c, sizeof(c));
			p += 2 + sizeof(c);
			break;
		}
		case Z_EROFS_COMPRESSION_LZMA: {
			struct z_erofs_lzma_cfgs c = {
				.dict_size = cpu_to_le32(b->zparams.lzma_dict_size),
			};
			put_le16(p, sizeof(c));
			memcpy(p + 2, &c, sizeof(c));
			p += 2 + sizeof(c);
			break;
		}
		case Z_EROFS_COMPRESSION_DEFLATE: {
			struct z_erofs_deflate_cfgs c = { .windowbits = 15 };

			put_le16(p, sizeof(c));
			memcpy(p + 2, &c, sizeof(c));
			p += 2 + sizeof(c);
			break;
		}
		case Z_EROFS_COMPRESSION_ZSTD: {
			struct z_erofs_zstd_cfgs c = {
				.windowlog = (uint8_t)(b->zparams.zstd_windowlog - 10),
			};
			put_le16(p, sizeof(c));
			memcpy(p + 2, &c, sizeof(c));
			p += 2 + sizeof(c);
			break;
		}
		}
	}
}
