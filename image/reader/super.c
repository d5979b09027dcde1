// SPDX-License-Identifier: Apache-2.0
/*
 * Opening an image: devices, superblock validation (the kernel's mount-time
 * rules), checksum and device table. Raw device reads live here too, as
 * every other part of the reader goes through erofs_dev_pread().
 */
#include "reader/internal.h"

#include "anole/endian.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int erofs_err(struct erofs_image *img, erofs_nid_t nid, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(img->errmsg, sizeof(img->errmsg), fmt, ap);
	va_end(ap);
	if (err < 0)
		err = -err;
	if (!err)
		err = EIO;
	if (img->quiet)
		return -err;
	if (nid == EROFS_NID_NONE)
		return anole_error_code(err, "%s: %s", img->name, img->errmsg);
	return anole_error_code(err, "%s: nid %llu: %s", img->name,
				(unsigned long long)nid, img->errmsg);
}

const char *erofs_dev_name(struct erofs_image *img, unsigned devid, char buf[32])
{
	if (devid < img->ndevs && img->devs[devid].path)
		return img->devs[devid].path;
	snprintf(buf, 32, "device %u", devid);
	return buf;
}

static bool dev_present(const struct erofs_dev *dev)
{
	return dev->fd >= 0 || dev->mem || dev->pread;
}

int erofs_dev_pread(struct erofs_image *img, unsigned devid, void *buf,
		    size_t len, uint64_t off)
{
	struct erofs_dev *dev;
	char nb[32];
	int ret;

	if (devid >= img->ndevs)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "device %u is not in the device table", devid);
	dev = &img->devs[devid];
	if (!len)
		return 0;
	if (!dev_present(dev))
		return erofs_err(img, EROFS_NID_NONE, ENXIO,
				 "data on extra device %u (tag \"%.64s\") is needed, but no --device was given for it",
				 devid, devid ? (const char *)img->devslots[devid - 1].tag : "");
	if (off > dev->size || len > dev->size - off)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "read of %zu bytes at offset %llu is beyond the end of %s (%llu bytes)",
				 len, (unsigned long long)off, erofs_dev_name(img, devid, nb),
				 (unsigned long long)dev->size);
	if (dev->pread)
		ret = dev->pread(dev, buf, len, off);
	else if (dev->mem) {
		memcpy(buf, dev->mem + off, len);
		ret = 0;
	} else {
		ret = pread_full(dev->fd, buf, len, off);
	}
	if (ret == -ENODATA)
		return erofs_err(img, EROFS_NID_NONE, EIO, "%s: unexpected end of file at offset %llu",
				 erofs_dev_name(img, devid, nb), (unsigned long long)off);
	if (ret)
		return erofs_err(img, EROFS_NID_NONE, -ret, "read error on %s at offset %llu: %s",
				 erofs_dev_name(img, devid, nb), (unsigned long long)off,
				 strerror(-ret));
	return 0;
}

bool erofs_dev_range_ok(struct erofs_image *img, unsigned devid, uint64_t off, uint64_t len)
{
	uint64_t size;

	if (devid >= img->ndevs)
		return false;
	if (devid == 0 || dev_present(&img->devs[devid]))
		size = img->devs[devid].size;
	else if (img->devslots[devid - 1].blocks)
		size = (uint64_t)le32_to_cpu(img->devslots[devid - 1].blocks) << img->blkszbits;
	else
		return true;    /* missing, and no declared size (mkfs 1.5 writes 0) */
	return off <= size && len <= size - off;
}

static const char *const compat_names[32] = {
	[0] = "sb_chksum", [1] = "mtime", [2] = "xattr_filter",
	[3] = "shared_ea_in_metabox", [4] = "plain_xattr_pfx", [5] = "ishare_xattrs",
};
static const char *const incompat_names[32] = {
	[0] = "zero_padding", [1] = "compr_cfgs", [2] = "chunked_file",
	[3] = "device_table", [4] = "ztailpacking", [5] = "fragments",
	[6] = "xattr_prefixes", [7] = "48bit", [8] = "metabox",
};

const char *erofs_feature_name(bool incompat, uint32_t bit)
{
	unsigned i = 0;

	if (!bit || (bit & (bit - 1)))
		return NULL;
	while (!(bit & 1u)) {
		bit >>= 1;
		i++;
	}
	return incompat ? incompat_names[i] : compat_names[i];
}

const char *erofs_layout_name(unsigned layout)
{
	static const char *const names[] = {
		"flat_plain", "compressed_full", "flat_inline",
		"compressed_compact", "chunk_based",
	};

	return layout < ARRAY_SIZE(names) ? names[layout] : "unknown";
}

const char *erofs_algorithm_name(unsigned algorithm)
{
	static const char *const names[] = {
		[Z_EROFS_COMPRESSION_LZ4] = "lz4", [Z_EROFS_COMPRESSION_LZMA] = "lzma",
		[Z_EROFS_COMPRESSION_DEFLATE] = "deflate", [Z_EROFS_COMPRESSION_ZSTD] = "zstd",
		[Z_EROFS_COMPRESSION_SHIFTED] = "plain", [Z_EROFS_COMPRESSION_INTERLACED] = "interlaced",
	};

	return algorithm < ARRAY_SIZE(names) ? names[algorithm] : "unknown";
}

const char *erofs_ftype_name(unsigned ftype)
{
	static const char *const names[] = {
		"unknown", "file", "dir", "chrdev", "blkdev", "fifo", "socket", "symlink",
	};

	return ftype < ARRAY_SIZE(names) ? names[ftype] : "unknown";
}

static void feature_list(char *out, size_t n, bool incompat, uint32_t bits)
{
	size_t len = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < 32 && len < n; i++) {
		const char *name;

		if (!(bits & (1u << i)))
			continue;
		name = erofs_feature_name(incompat, 1u << i);
		if (name)
			len += snprintf(out + len, n - len, "%s%s", len ? " " : "", name);
		else
			len += snprintf(out + len, n - len, "%s0x%x", len ? " " : "", 1u << i);
	}
}

/*
 * The superblock checksum covers the rest of the block holding the
 * superblock: from byte 1024 to the end of block 0 for blocks larger than
 * 1 KiB, else one block from byte 1024. The checksum field counts as zero.
 * block0 must hold 1024 + that length bytes.
 */
uint32_t erofs_sb_checksum(const uint8_t *block0, uint32_t blksz)
{
	static const uint8_t zero[4];
	const uint8_t *sb = block0 + EROFS_SUPER_OFFSET;
	uint32_t len = blksz > EROFS_SUPER_OFFSET ? blksz - EROFS_SUPER_OFFSET : blksz;
	uint32_t crc;

	crc = anole_crc32c(~0u, sb, 4);                 /* magic */
	crc = anole_crc32c(crc, zero, 4);               /* checksum as zero */
	return anole_crc32c(crc, sb + 8, len - 8);
}

static int check_sb_checksum(struct erofs_image *img)
{
	uint32_t len = img->blksz > EROFS_SUPER_OFFSET ? img->blksz - EROFS_SUPER_OFFSET
						       : img->blksz;
	uint8_t *buf = xcalloc(1, EROFS_SUPER_OFFSET + len);
	uint32_t want = le32_to_cpu(img->sb.checksum), got;
	int ret;

	ret = erofs_dev_pread(img, 0, buf + EROFS_SUPER_OFFSET, len, EROFS_SUPER_OFFSET);
	if (ret) {
		free(buf);
		return ret;
	}
	got = erofs_sb_checksum(buf, img->blksz);
	free(buf);
	if (got != want)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "superblock checksum mismatch (stored 0x%08x, computed 0x%08x)",
				 want, got);
	img->checksum_ok = true;
	return 0;
}

/*
 * One config record, as the kernel's erofs_read_metadata() reads it: at
 * the next 4-byte boundary, a le16 length (0 meaning 65536), then the
 * payload, which may cross blocks.
 */
static int read_cfg_record(struct erofs_image *img, uint64_t *pos, uint8_t **data,
			   unsigned *len)
{
	uint16_t raw;
	int ret;

	*pos = ALIGN_UP(*pos, 4u);
	if (!erofs_dev_range_ok(img, 0, *pos, 2))
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "compression config record at offset %llu is beyond the end of the image",
				 (unsigned long long)*pos);
	ret = erofs_dev_pread(img, 0, &raw, 2, *pos);
	if (ret)
		return ret;
	*len = le16_to_cpu(raw) ? le16_to_cpu(raw) : 65536u;
	*pos += 2;
	if (!erofs_dev_range_ok(img, 0, *pos, *len))
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "compression config record (%u bytes at offset %llu) is beyond the end of the image",
				 *len, (unsigned long long)*pos);
	*data = xmalloc(*len);
	ret = erofs_dev_pread(img, 0, *data, *len, *pos);
	if (ret) {
		free(*data);
		return ret;
	}
	*pos += *len;
	return 0;
}

/* The per-algorithm checks of the kernel's z_erofs_load_*_config(). */
static int load_cfg(struct erofs_image *img, unsigned alg, const uint8_t *data, unsigned len)
{
	switch (alg) {
	case Z_EROFS_COMPRESSION_LZ4: {
		struct z_erofs_lz4_cfgs c;

		if (len < sizeof(c))
			break;
		memcpy(&c, data, sizeof(c));
		img->lz4_max_distance = le16_to_cpu(c.max_distance);
		img->lz4_max_pclusterblks = le16_to_cpu(c.max_pclusterblks);
		if (!img->lz4_max_pclusterblks)
			img->lz4_max_pclusterblks = 1;  /* reserved case */
		else if (img->lz4_max_pclusterblks > Z_EROFS_PCLUSTER_MAX_SIZE >> img->blkszbits)
			return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
					 "lz4 config: max_pclusterblks %u is above %u KiB",
					 img->lz4_max_pclusterblks, Z_EROFS_PCLUSTER_MAX_SIZE >> 10);
		return 0;
	}
	case Z_EROFS_COMPRESSION_LZMA: {
		struct z_erofs_lzma_cfgs c;

		if (len < sizeof(c))
			break;
		memcpy(&c, data, sizeof(c));
		if (c.format)
			return erofs_err(img, EROFS_NID_NONE, EOPNOTSUPP,
					 "lzma config: unknown format %u", le16_to_cpu(c.format));
		img->lzma_dict_size = le32_to_cpu(c.dict_size);
		if (img->lzma_dict_size > Z_EROFS_LZMA_MAX_DICT_SIZE || img->lzma_dict_size < 4096)
			return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
					 "lzma config: dictionary size %u is out of range (4 KiB..8 MiB)",
					 img->lzma_dict_size);
		return 0;
	}
	case Z_EROFS_COMPRESSION_DEFLATE: {
		struct z_erofs_deflate_cfgs c;

		if (len < sizeof(c))
			break;
		memcpy(&c, data, sizeof(c));
		if (c.windowbits > 15)
			return erofs_err(img, EROFS_NID_NONE, EOPNOTSUPP,
					 "deflate config: window bits %u above 15", c.windowbits);
		img->deflate_windowbits = c.windowbits;
		return 0;
	}
	case Z_EROFS_COMPRESSION_ZSTD: {
		struct z_erofs_zstd_cfgs c;

		if (len < sizeof(c))
			break;
		memcpy(&c, data, sizeof(c));
		if (c.format)
			return erofs_err(img, EROFS_NID_NONE, EOPNOTSUPP,
					 "zstd config: unknown format %u", c.format);
		/* the window may not exceed the largest pcluster (1 MiB) */
		if (c.windowlog > 10)
			return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
					 "zstd config: window log %u is above 20", c.windowlog + 10u);
		img->zstd_windowlog = c.windowlog;
		return 0;
	}
	}
	return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
			 "%s config record is too short (%u bytes)", erofs_algorithm_name(alg), len);
}

/*
 * Compression settings. Without COMPR_CFGS the superblock field is the LZ4
 * window and LZ4 is the only algorithm; with it, one record per bit of
 * available_compr_algs follows the superblock, in algorithm order.
 */
static int parse_compr_cfgs(struct erofs_image *img)
{
	uint64_t pos = EROFS_SUPER_OFFSET + img->sb_size;
	unsigned algs;
	int ret = 0;

	if (!(img->feature_incompat & EROFS_FEATURE_INCOMPAT_COMPR_CFGS)) {
		img->available_compr_algs = 1u << Z_EROFS_COMPRESSION_LZ4;
		img->lz4_max_distance = le16_to_cpu(img->sb.available_compr_algs);
		img->lz4_max_pclusterblks = 1;
		return 0;
	}
	img->available_compr_algs = le16_to_cpu(img->sb.available_compr_algs);
	if (img->available_compr_algs & ~((1u << Z_EROFS_COMPRESSION_MAX) - 1))
		return erofs_err(img, EROFS_NID_NONE, EOPNOTSUPP,
				 "unknown compression algorithms 0x%x",
				 img->available_compr_algs & ~((1u << Z_EROFS_COMPRESSION_MAX) - 1));
	algs = img->available_compr_algs;
	for (unsigned alg = 0; algs && !ret; algs >>= 1, alg++) {
		uint8_t *data = NULL;
		unsigned len = 0;

		if (!(algs & 1))
			continue;
		ret = read_cfg_record(img, &pos, &data, &len);
		if (ret)
			return ret;
		ret = load_cfg(img, alg, data, len);
		free(data);
	}
	return ret;
}

static int parse_super(struct erofs_image *img)
{
	const struct erofs_super_block *sb = &img->sb;
	uint32_t unknown;
	char names[256];
	int ret;

	if (img->devs[0].size < EROFS_SUPER_OFFSET + sizeof(*sb))
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "too small to be an EROFS image (%llu bytes)",
				 (unsigned long long)img->devs[0].size);
	ret = erofs_dev_pread(img, 0, &img->sb, sizeof(img->sb), EROFS_SUPER_OFFSET);
	if (ret)
		return ret;
	if (le32_to_cpu(sb->magic) != EROFS_SUPER_MAGIC)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "not an EROFS image (magic 0x%08x at offset 1024)",
				 le32_to_cpu(sb->magic));
	img->blkszbits = sb->blkszbits;
	if (img->blkszbits < EROFS_MIN_BLKSZBITS || img->blkszbits > EROFS_MAX_BLKSZBITS)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "unsupported block size 2^%u (must be 512..4096)", img->blkszbits);
	img->blksz = 1u << img->blkszbits;
	if (sb->dirblkbits)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "dirblkbits is %u, must be 0", sb->dirblkbits);
	img->sb_size = 128u + 16u * sb->sb_extslots;
	if (img->sb_size > 4096u - EROFS_SUPER_OFFSET)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "superblock size %u (sb_extslots %u) is too large",
				 img->sb_size, sb->sb_extslots);
	img->feature_compat = le32_to_cpu(sb->feature_compat);
	img->feature_incompat = le32_to_cpu(sb->feature_incompat);
	if (img->feature_compat & EROFS_FEATURE_COMPAT_SB_CHKSUM) {
		ret = check_sb_checksum(img);
		if (ret)
			return ret;
	}
	unknown = img->feature_incompat & ~ANOLE_EROFS_INCOMPAT_SUPPORTED;
	if (unknown) {
		feature_list(names, sizeof(names), true, unknown);
		return erofs_err(img, EROFS_NID_NONE, EOPNOTSUPP,
				 "uses features this reader does not support: %s (incompat 0x%x)",
				 names, unknown);
	}
	/*
	 * A compat bit, but not one a reader may ignore: with it, Linux reads
	 * shared xattrs from the metabox inode, and without a metabox every
	 * xattr lookup of every inode fails (EUCLEAN), even with no shared
	 * xattr at all. Images with a metabox are refused just above.
	 */
	if (img->feature_compat & EROFS_FEATURE_COMPAT_SHARED_EA_IN_METABOX)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "feature shared_ea_in_metabox without a metabox (Linux fails every xattr read)");
	img->root_nid = le16_to_cpu(sb->root_nid);
	img->inos = le64_to_cpu(sb->inos);
	img->build_time = le64_to_cpu(sb->build_time);
	img->build_time_nsec = le32_to_cpu(sb->build_time_nsec);
	if (img->build_time_nsec >= 1000000000u)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "build_time_nsec %u is not below one second", img->build_time_nsec);
	img->blocks = le32_to_cpu(sb->blocks);
	img->meta_blkaddr = le32_to_cpu(sb->meta_blkaddr);
	img->xattr_blkaddr = le32_to_cpu(sb->xattr_blkaddr);
	if (img->feature_incompat & EROFS_FEATURE_INCOMPAT_FRAGMENTS)
		img->packed_nid = le64_to_cpu(sb->packed_nid);
	return parse_compr_cfgs(img);
}

/* roundup_pow_of_two(n) - 1, as the kernel masks chunk device ids. */
static uint16_t id_mask(unsigned n)
{
	unsigned p = 1;

	while (p < n)
		p <<= 1;
	return (uint16_t)(p - 1);
}

static int read_devtable(struct erofs_image *img, unsigned ngiven)
{
	unsigned extra = 0;
	uint64_t pos;

	if (img->feature_incompat & EROFS_FEATURE_INCOMPAT_DEVICE_TABLE)
		extra = le16_to_cpu(img->sb.extra_devices);
	if (ngiven > extra)
		return erofs_err(img, EROFS_NID_NONE, EINVAL,
				 "the image has %u extra device%s but %u were given",
				 extra, extra == 1 ? "" : "s", ngiven);
	img->ndevs = 1 + extra;
	img->device_id_mask = id_mask(extra + 1);
	if (!extra)
		return 0;
	img->devs = xrealloc(img->devs, sizeof(*img->devs) * img->ndevs);
	for (unsigned i = 1; i < img->ndevs; i++)
		img->devs[i] = (struct erofs_dev){ .fd = -1 };
	img->devslots = xcalloc(extra, sizeof(*img->devslots));
	pos = (uint64_t)le16_to_cpu(img->sb.devt_slotoff) * EROFS_DEVT_SLOT_SIZE;
	if (!erofs_dev_range_ok(img, 0, pos, (uint64_t)extra * EROFS_DEVT_SLOT_SIZE))
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "device table (%u slots at offset %llu) is beyond the end of the image",
				 extra, (unsigned long long)pos);
	return erofs_dev_pread(img, 0, img->devslots, (size_t)extra * sizeof(*img->devslots), pos);
}

/* Read len bytes of the long-prefix table at pos: from the packed inode
 * when the image has one, else from the primary device. */
static int prefix_read(struct erofs_image *img, const struct erofs_inode *packed, void *buf,
		       size_t len, uint64_t pos)
{
	ssize_t got;

	if (!packed) {
		if (!erofs_dev_range_ok(img, 0, pos, len))
			return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
					 "long xattr name prefixes: %zu bytes at offset %llu are beyond the end of the image",
					 len, (unsigned long long)pos);
		return erofs_dev_pread(img, 0, buf, len, pos);
	}
	if (pos > packed->size || len > packed->size - pos)
		return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
				 "long xattr name prefixes: %zu bytes at offset %llu are beyond the packed inode (%llu bytes)",
				 len, (unsigned long long)pos, (unsigned long long)packed->size);
	got = erofs_pread(img, packed, buf, len, pos);
	if (got < 0)
		return (int)got;
	return (size_t)got == len ? 0 : erofs_err(img, EROFS_NID_NONE, EIO,
						  "long xattr name prefixes: short read");
}

/*
 * The long xattr name prefix table. This reader does not use long prefixes
 * (an xattr naming one is refused when read), but Linux loads the table at
 * mount whenever xattr_prefix_count is non-zero, feature bit or not, and
 * refuses the image if a record is unreadable or not 1..256 bytes (a base
 * index and an infix of at most 255). So does this reader: an image check
 * calls sound must be one the kernel mounts. Records as in
 * erofs_read_metadata(): 4-byte aligned, a le16 length (0 meaning 65536),
 * the payload.
 */
static int check_xattr_prefixes(struct erofs_image *img)
{
	unsigned count = img->sb.xattr_prefix_count;
	uint64_t pos = (uint64_t)le32_to_cpu(img->sb.xattr_prefix_start) << 2;
	struct erofs_inode packed;
	bool in_packed = img->packed_nid != 0;
	int ret;

	if (!count)
		return 0;
	if (in_packed && (ret = erofs_read_inode(img, img->packed_nid, &packed)))
		return ret;
	for (unsigned i = 0; i < count; i++) {
		uint16_t raw;
		unsigned len;

		pos = ALIGN_UP(pos, 4u);
		ret = prefix_read(img, in_packed ? &packed : NULL, &raw, 2, pos);
		if (ret)
			return ret;
		len = le16_to_cpu(raw) ? le16_to_cpu(raw) : 65536u;
		if (len > 1 + EROFS_NAME_LEN)
			return erofs_err(img, EROFS_NID_NONE, EFSCORRUPTED,
					 "long xattr name prefix %u of %u (xattr_prefix_count) is %u bytes, at most %u",
					 i + 1, count, len, 1 + EROFS_NAME_LEN);
		{
			uint8_t payload[1 + EROFS_NAME_LEN];

			ret = prefix_read(img, in_packed ? &packed : NULL, payload, len, pos + 2);
			if (ret)
				return ret;
		}
		pos += 2 + len;
	}
	return 0;
}

static struct erofs_image *image_new(const char *name)
{
	struct erofs_image *img = xcalloc(1, sizeof(*img));

	img->name = xstrdup(name ? name : "(memory)");
	img->ndevs = 1;
	img->devs = xcalloc(1, sizeof(*img->devs));
	img->devs[0].fd = -1;
	img->zcache = erofs_zcache_new();
	return img;
}

static int open_dev(struct erofs_image *img, struct erofs_dev *dev, const char *path)
{
	struct stat st;
	off_t end;

	dev->path = xstrdup(path);
	dev->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (dev->fd < 0 || fstat(dev->fd, &st))
		return anole_error(errno, "%s", path);
	if (S_ISDIR(st.st_mode))
		return anole_error(EISDIR, "%s", path);
	end = lseek(dev->fd, 0, SEEK_END);   /* works for block devices too */
	if (end < 0)
		return anole_error(errno, "%s", path);
	dev->size = (uint64_t)end;
	return 0;
}

int erofs_image_open(struct erofs_image **out, const char *path,
		     const char *const *device_paths, unsigned ndevice_paths)
{
	struct erofs_image *img = image_new(path);
	int ret;

	*out = NULL;
	ret = open_dev(img, &img->devs[0], path);
	if (!ret)
		ret = parse_super(img);
	if (!ret)
		ret = read_devtable(img, ndevice_paths);
	for (unsigned i = 0; !ret && i < ndevice_paths; i++)
		ret = open_dev(img, &img->devs[i + 1], device_paths[i]);
	if (!ret)
		ret = check_xattr_prefixes(img);
	if (ret) {
		erofs_image_close(img);
		return ret;
	}
	*out = img;
	return 0;
}

int erofs_image_open_mem(struct erofs_image **out, const void *buf, size_t len,
			 const char *name)
{
	struct erofs_image *img = image_new(name);
	int ret;

	*out = NULL;
	img->devs[0].mem = buf;
	img->devs[0].size = len;
	ret = parse_super(img);
	if (!ret)
		ret = read_devtable(img, 0);
	if (!ret)
		ret = check_xattr_prefixes(img);
	if (ret) {
		erofs_image_close(img);
		return ret;
	}
	*out = img;
	return 0;
}

void erofs_image_close(struct erofs_image *img)
{
	if (!img)
		return;
	for (unsigned i = 0; i < img->ndevs; i++) {
		if (img->devs[i].fd >= 0)
			close(img->devs[i].fd);
		free(img->devs[i].path);
	}
	free(img->devs);
	free(img->devslots);
	erofs_zcache_free(img->zcache);
	free((char *)img->name);
	free(img);
}
