// SPDX-License-Identifier: Apache-2.0
/*
 * File data: mapping logical offsets to device extents (flat, inline tail,
 * chunk block maps and chunk indexes, compressed extents via zmap.c) and
 * reading through those maps; compressed extents are decoded whole
 * (decompress.c) and the last few kept in a per-image cache, as FUSE
 * reads 128 KiB at a time from extents of up to a few MiB.
 */
#include "reader/internal.h"

#include "anole/endian.h"
#include "anole/xalloc.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ extent cache */

#define ZCACHE_SLOTS 4

struct zslot {
	erofs_nid_t nid;
	uint64_t start, len;
	uint8_t *data;          /* NULL: empty slot */
	uint64_t used;          /* clock of the last hit, for LRU */
};

/* FUSE serves requests from several threads: every access is locked;
 * decoding happens outside the lock. */
struct zcache {
	pthread_mutex_t lock;
	struct zslot slot[ZCACHE_SLOTS];
	uint64_t clock;
};

void *erofs_zcache_new(void)
{
	struct zcache *c = xcalloc(1, sizeof(*c));

	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void erofs_zcache_free(void *cache)
{
	struct zcache *c = cache;

	if (!c)
		return;
	for (unsigned i = 0; i < ZCACHE_SLOTS; i++)
		free(c->slot[i].data);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Copy what a cached extent of nid holds at pos; returns bytes copied. */
static size_t zcache_copy(struct zcache *c, erofs_nid_t nid, uint64_t pos, uint8_t *out,
			  size_t len)
{
	size_t n = 0;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < ZCACHE_SLOTS; i++) {
		struct zslot *s = &c->slot[i];

		if (!s->data || s->nid != nid || pos < s->start || pos - s->start >= s->len)
			continue;
		n = s->len - (pos - s->start) < len ? (size_t)(s->len - (pos - s->start)) : len;
		memcpy(out, s->data + (pos - s->start), n);
		s->used = ++c->clock;
		break;
	}
	pthread_mutex_unlock(&c->lock);
	return n;
}

/* Keep a decoded extent (the cache takes data), replacing the LRU slot. */
static void zcache_put(struct zcache *c, erofs_nid_t nid, uint64_t start, uint64_t len,
		       uint8_t *data)
{
	struct zslot *victim = &c->slot[0];
	uint8_t *old;

	pthread_mutex_lock(&c->lock);
	for (unsigned i = 0; i < ZCACHE_SLOTS; i++) {
		struct zslot *s = &c->slot[i];

		if (s->data && s->nid == nid && s->start == start) {
			victim = s;     /* another thread decoded it too */
			break;
		}
		if (!s->data || s->used < victim->used)
			victim = s;
		if (!s->data)
			break;
	}
	old = victim->data;
	*victim = (struct zslot){ .nid = nid, .start = start, .len = len, .data = data,
				  .used = ++c->clock };
	pthread_mutex_unlock(&c->lock);
	free(old);
}

/*
 * Route an extent to its device, as the kernel's erofs_map_dev() does:
 * device-0 addresses inside an extra device's unified-address window go to
 * that device; otherwise the extent must lie inside the addressed device.
 */
static int map_dev(struct erofs_image *img, const struct erofs_inode *inode,
		   struct erofs_map *map, uint64_t plen)
{
	char nb[32];

	if (map->devid == 0) {
		for (unsigned i = 1; i < img->ndevs; i++) {
			const struct erofs_deviceslot *s = &img->devslots[i - 1];
			uint64_t start = (uint64_t)le32_to_cpu(s->mapped_blkaddr) << img->blkszbits;
			uint64_t len = (uint64_t)le32_to_cpu(s->blocks) << img->blkszbits;

			if (!s->mapped_blkaddr || map->physical < start ||
			    map->physical - start >= len)
				continue;
			map->devid = i;
			map->physical -= start;
			break;
		}
	} else if (map->devid >= img->ndevs) {
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "data at file offset %llu is on device %u, which is not in the device table",
				 (unsigned long long)map->logical, map->devid);
	}
	if (!erofs_dev_range_ok(img, map->devid, map->physical, plen))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "data at file offset %llu (%llu bytes at block %llu) is beyond the end of %s",
				 (unsigned long long)map->logical, (unsigned long long)plen,
				 (unsigned long long)(map->physical >> img->blkszbits),
				 erofs_dev_name(img, map->devid, nb));
	return 0;
}

static int map_flat(struct erofs_image *img, const struct erofs_inode *inode,
		    uint64_t off, struct erofs_map *map)
{
	uint64_t mask = img->blksz - 1;
	/* bytes in whole blocks; an inline tail holds the last 1..blksz bytes */
	uint64_t flat = inode->layout == EROFS_INODE_FLAT_INLINE ?
			(inode->size - 1) & ~mask : inode->size;
	uint64_t tailpos;

	if (off < flat) {
		map->logical = 0;
		map->length = flat;
		/* erofs-utils reads this as a hole, the kernel as an I/O error */
		if (inode->raw_blkaddr == EROFS_NULL_ADDR)
			return erofs_err(img, inode->nid, EFSCORRUPTED,
					 "%llu bytes of block data but no start block",
					 (unsigned long long)flat);
		map->physical = (uint64_t)inode->raw_blkaddr << img->blkszbits;
		return map_dev(img, inode, map, map->length);
	}
	map->logical = flat;
	map->length = inode->size - flat;
	map->inline_tail = true;
	tailpos = erofs_inode_meta_end(inode);
	if ((tailpos & mask) + map->length > img->blksz)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "inline data (%llu bytes at offset %llu) crosses a block boundary",
				 (unsigned long long)map->length, (unsigned long long)tailpos);
	map->physical = tailpos;
	if (!erofs_dev_range_ok(img, 0, tailpos, map->length))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "inline data is beyond the end of the image");
	return 0;
}

static int map_chunk(struct erofs_image *img, const struct erofs_inode *inode,
		     uint64_t off, struct erofs_map *map)
{
	bool indexes = inode->chunkformat & EROFS_CHUNK_FORMAT_INDEXES;
	unsigned unit = indexes ? 8 : 4;
	uint64_t chunknr = off >> inode->chunkbits;
	uint64_t pos = ALIGN_UP(erofs_inode_meta_end(inode), (uint64_t)unit) + chunknr * unit;
	struct erofs_inode_chunk_index idx;
	uint32_t blk;
	int ret;

	/* the whole array was range-checked by erofs_read_inode() */
	if (indexes) {
		ret = erofs_dev_pread(img, 0, &idx, sizeof(idx), pos);
		blk = le32_to_cpu(idx.startblk_lo);
		map->devid = le16_to_cpu(idx.device_id) & img->device_id_mask;
	} else {
		ret = erofs_dev_pread(img, 0, &blk, sizeof(blk), pos);
		blk = le32_to_cpu(blk);
	}
	if (ret)
		return ret;
	map->logical = chunknr << inode->chunkbits;
	map->length = inode->size - map->logical;
	if (map->length > 1ull << inode->chunkbits)
		map->length = 1ull << inode->chunkbits;
	if (blk == EROFS_NULL_ADDR) {
		map->devid = 0;
		return 0;
	}
	map->physical = (uint64_t)blk << img->blkszbits;
	return map_dev(img, inode, map, map->length);
}

static int map_compressed(struct erofs_image *img, const struct erofs_inode *inode,
			  uint64_t off, struct erofs_map *map)
{
	int ret = z_erofs_map_blocks(img, inode, off, map);

	if (ret || map->fragment)
		return ret;
	if (map->inline_tail) {
		if (!erofs_dev_range_ok(img, 0, map->physical, map->plength))
			return erofs_err(img, inode->nid, EFSCORRUPTED,
					 "inline pcluster is beyond the end of the image");
		return 0;
	}
	return map_dev(img, inode, map, map->plength);
}

int erofs_map_blocks(struct erofs_image *img, const struct erofs_inode *inode,
		     uint64_t off, struct erofs_map *map)
{
	int ret;

	memset(map, 0, sizeof(*map));
	map->logical = off;
	map->physical = UINT64_MAX;
	if (off >= inode->size)
		return 0;
	switch (inode->layout) {
	case EROFS_INODE_FLAT_PLAIN:
	case EROFS_INODE_FLAT_INLINE:
		ret = map_flat(img, inode, off, map);
		break;
	case EROFS_INODE_CHUNK_BASED:
		ret = map_chunk(img, inode, off, map);
		break;
	case EROFS_INODE_COMPRESSED_FULL:
	case EROFS_INODE_COMPRESSED_COMPACT:
		return map_compressed(img, inode, off, map);
	default:
		return erofs_err(img, inode->nid, EFSCORRUPTED, "unknown data layout %u",
				 inode->layout);
	}
	map->plength = map->length;
	return ret;
}

/* Decode the extent `map` of a compressed inode into a new buffer. */
static int decode_extent(struct erofs_image *img, const struct erofs_inode *inode,
			 const struct erofs_map *map, uint8_t **out)
{
	struct z_erofs_req rq = {
		.algorithm = map->algorithm,
		.inlen = (size_t)map->plength,
		.outlen = (size_t)map->length,
		.partial = map->partial,
		.pad_scan = img->blksz - (size_t)(map->physical & (img->blksz - 1)),
		.interlaced_shift = img->blksz - (size_t)(map->logical & (img->blksz - 1)),
		.lzma_dict_size = img->lzma_dict_size,
		.zstd_windowlog = img->zstd_windowlog,
	};
	uint8_t *in;
	char why[256];
	int ret;

	/* LZ4 payloads sit at the pcluster's end only with zero padding;
	 * older images may hold more data than the extent (kernel: partial) */
	if (map->algorithm == Z_EROFS_COMPRESSION_LZ4) {
		rq.zero_padding = img->feature_incompat & EROFS_FEATURE_INCOMPAT_ZERO_PADDING;
		if (!rq.zero_padding)
			rq.partial = true;
	} else {
		rq.zero_padding = true;
	}
	in = xmalloc(rq.inlen ? rq.inlen : 1);
	ret = erofs_dev_pread(img, map->devid, in, rq.inlen, map->physical);
	if (ret) {
		free(in);
		return ret;
	}
	rq.in = in;
	rq.out = xmalloc(rq.outlen ? rq.outlen : 1);
	ret = z_erofs_decode(&rq, why, sizeof(why));
	free(in);
	if (ret) {
		free(rq.out);
		return erofs_err(img, inode->nid, ret,
				 "extent %llu..%llu (%s, %llu bytes at offset %llu): %s",
				 (unsigned long long)map->logical,
				 (unsigned long long)(map->logical + map->length),
				 erofs_algorithm_name(map->algorithm), (unsigned long long)map->plength,
				 (unsigned long long)map->physical, why);
	}
	*out = rq.out;
	return 0;
}

/* Read from a fragment: bytes of the packed inode. */
static int read_fragment(struct erofs_image *img, const struct erofs_inode *inode,
			 const struct erofs_map *map, uint8_t *out, size_t n, uint64_t pos)
{
	struct erofs_inode packed;
	uint64_t at;
	ssize_t got;
	int ret;

	if (!img->packed_nid)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "data in a fragment, but the image has no packed inode");
	if (inode->nid == img->packed_nid)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "the packed inode has a fragment of its own");
	ret = erofs_read_inode(img, img->packed_nid, &packed);
	if (ret)
		return ret;
	if (!S_ISREG(packed.mode))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "the packed inode %llu is not a regular file",
				 (unsigned long long)img->packed_nid);
	at = map->physical + (pos - map->logical);
	if (at < map->physical || at > packed.size || n > packed.size - at)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "fragment (%zu bytes at %llu) is beyond the end of the packed inode (%llu bytes)",
				 n, (unsigned long long)at, (unsigned long long)packed.size);
	got = erofs_pread(img, &packed, out, n, at);
	if (got < 0)
		return (int)got;
	if ((size_t)got != n)
		return erofs_err(img, inode->nid, EIO, "short read from the packed inode");
	return 0;
}

static ssize_t z_pread(struct erofs_image *img, const struct erofs_inode *inode,
		       uint8_t *out, size_t len, uint64_t off)
{
	size_t done = 0;

	/* each pass consumes at least one byte: extents hold their offset */
	while (done < len) {
		uint64_t pos = off + done;
		struct erofs_map map;
		uint8_t *data = NULL;
		size_t n = zcache_copy(img->zcache, inode->nid, pos, out + done, len - done);
		int ret;

		if (n) {
			done += n;
			continue;
		}
		ret = erofs_map_blocks(img, inode, pos, &map);
		if (ret)
			return ret;
		if (!map.length || pos < map.logical || pos - map.logical >= map.length)
			return erofs_err(img, inode->nid, EFSCORRUPTED,
					 "cannot map file offset %llu", (unsigned long long)pos);
		n = len - done;
		if (n > map.length - (pos - map.logical))
			n = (size_t)(map.length - (pos - map.logical));
		if (map.fragment) {
			ret = read_fragment(img, inode, &map, out + done, n, pos);
			if (ret)
				return ret;
			done += n;
			continue;
		}
		ret = decode_extent(img, inode, &map, &data);
		if (ret)
			return ret;
		memcpy(out + done, data + (pos - map.logical), n);
		zcache_put(img->zcache, inode->nid, map.logical, map.length, data);
		done += n;
	}
	return (ssize_t)len;
}

ssize_t erofs_pread(struct erofs_image *img, const struct erofs_inode *inode,
		    void *buf, size_t len, uint64_t off)
{
	uint8_t *out = buf;
	size_t done = 0;

	if (!S_ISREG(inode->mode) && !S_ISDIR(inode->mode) && !S_ISLNK(inode->mode))
		return erofs_err(img, inode->nid, EINVAL, "has no data (mode 0%o)", inode->mode);
	if (off >= inode->size)
		return 0;
	if (len > inode->size - off)
		len = inode->size - off;
	if (len > SSIZE_MAX)
		len = SSIZE_MAX;
	if (erofs_layout_compressed(inode->layout))
		return z_pread(img, inode, out, len, off);
	/* each pass consumes at least one byte: map lengths are non-zero */
	while (done < len) {
		struct erofs_map map;
		uint64_t pos = off + done, within;
		size_t n;
		int ret = erofs_map_blocks(img, inode, pos, &map);

		if (ret)
			return ret;
		if (map.length == 0 || pos < map.logical || pos - map.logical >= map.length)
			return erofs_err(img, inode->nid, EFSCORRUPTED,
					 "cannot map file offset %llu", (unsigned long long)pos);
		within = pos - map.logical;
		n = len - done;
		if (n > map.length - within)
			n = (size_t)(map.length - within);
		if (map.physical == UINT64_MAX)
			memset(out + done, 0, n);
		else if ((ret = erofs_dev_pread(img, map.devid, out + done, n,
						map.physical + within)))
			return ret;
		done += n;
	}
	return (ssize_t)len;
}

ssize_t erofs_readlink(struct erofs_image *img, const struct erofs_inode *inode,
		       char *buf, size_t bufsz)
{
	ssize_t n;

	if (!S_ISLNK(inode->mode))
		return erofs_err(img, inode->nid, EINVAL, "not a symlink");
	if (!inode->size || inode->size > EROFS_SYMLINK_MAX)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "symlink target length %llu is out of range (1..%u)",
				 (unsigned long long)inode->size, EROFS_SYMLINK_MAX);
	if (inode->size >= bufsz)
		return erofs_err(img, inode->nid, ENAMETOOLONG,
				 "symlink target (%llu bytes) does not fit the buffer",
				 (unsigned long long)inode->size);
	n = erofs_pread(img, inode, buf, (size_t)inode->size, 0);
	if (n < 0)
		return n;
	if ((uint64_t)n != inode->size)
		return erofs_err(img, inode->nid, EIO, "short read of the symlink target");
	if (memchr(buf, '\0', (size_t)n))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "symlink target contains a NUL byte");
	buf[n] = '\0';
	return n;
}
