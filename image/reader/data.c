// SPDX-License-Identifier: Apache-2.0
/*
 * File data: mapping logical offsets to device extents (flat, inline tail,
 * chunk block maps and chunk indexes) and reading through those maps.
 * Compressed layouts are refused with -EOPNOTSUPP.
 */
#include "reader/internal.h"

#include "anole/endian.h"
#include "anole/xalloc.h"

#include <limits.h>
#include <string.h>
#include <sys/stat.h>

/*
 * Route an extent to its device, as the kernel's erofs_map_dev() does:
 * device-0 addresses inside an extra device's unified-address window go to
 * that device; otherwise the extent must lie inside the addressed device.
 */
static int map_dev(struct erofs_image *img, const struct erofs_inode *inode,
		   struct erofs_map *map)
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
	if (!erofs_dev_range_ok(img, map->devid, map->physical, map->length))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "data at file offset %llu (%llu bytes at block %llu) is beyond the end of %s",
				 (unsigned long long)map->logical, (unsigned long long)map->length,
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
		return map_dev(img, inode, map);
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
	return map_dev(img, inode, map);
}

int erofs_map_blocks(struct erofs_image *img, const struct erofs_inode *inode,
		     uint64_t off, struct erofs_map *map)
{
	memset(map, 0, sizeof(*map));
	map->logical = off;
	map->physical = UINT64_MAX;
	if (off >= inode->size)
		return 0;
	switch (inode->layout) {
	case EROFS_INODE_FLAT_PLAIN:
	case EROFS_INODE_FLAT_INLINE:
		return map_flat(img, inode, off, map);
	case EROFS_INODE_CHUNK_BASED:
		return map_chunk(img, inode, off, map);
	default:
		return erofs_err(img, inode->nid, EOPNOTSUPP,
				 "compressed data (layout %s) is not supported yet",
				 erofs_layout_name(inode->layout));
	}
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
