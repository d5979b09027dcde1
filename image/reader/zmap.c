// SPDX-License-Identifier: Apache-2.0
/*
 * Mapping file offsets of compressed inodes (COMPRESSED_FULL and
 * COMPRESSED_COMPACT) to their extents, with the rules of the kernel's
 * fs/erofs/zmap.c: the 8-byte map header after the inode and its xattrs,
 * then one logical-cluster (lcluster) index per lcluster, either 8 bytes
 * each (full) or packed (compact: 4-byte packs of 2 lclusters, 2-byte
 * packs of 16, each pack ending with a base block address).
 *
 * An lcluster is HEAD1/HEAD2 (an extent starts in it, at clusterofs,
 * compressed with the first/second algorithm of the header), PLAIN (an
 * extent stored uncompressed starts in it) or NONHEAD (the extent started
 * earlier: delta[0] lclusters back, the next one begins delta[1] on).
 *
 * The image is untrusted: every index read is a bounds-checked device
 * read of an lcluster number below the inode's lcluster count, walks back
 * and forward are bounded by the largest extent the kernel accepts, and
 * anything inconsistent is -EFSCORRUPTED with a message naming the nid.
 */
#include "reader/internal.h"

#include "anole/endian.h"
#include "anole/xalloc.h"

#include <string.h>

/* What the map header says, plus the tail extent found from it. */
struct zinfo {
	unsigned advise;
	unsigned algs[2];               /* HEAD1, HEAD2 */
	unsigned lclusterbits;
	uint64_t nlclusters;            /* lclusters covering i_size */
	unsigned idata_size;            /* ztailpacking: inline pcluster bytes */
	uint64_t idataoff;              /* ... and where they are */
	uint64_t fragmentoff;           /* fragments: offset in the packed inode */
	uint64_t tail_headlcn;          /* lcluster of the tail extent's head */
	bool whole_fragment;            /* all of the file is in the packed inode */
};

/* The walk state of one lookup, as the kernel's z_erofs_maprecorder. */
struct zrec {
	struct erofs_image *img;
	const struct erofs_inode *inode;
	struct zinfo *zi;
	uint64_t lcn;
	unsigned type, headtype;
	unsigned clusterofs;
	uint16_t delta[2];
	uint64_t pblk;
	uint32_t compressedblks;
	uint64_t nextpackoff;
	bool partialref;
	/* results */
	uint64_t la, end, pa, plen;
	bool full_mapped, meta, fragment;
};

/* Offset of the map header: right after inode + xattrs, 8-aligned. */
static uint64_t map_header_pos(const struct erofs_inode *inode)
{
	return ALIGN_UP(erofs_inode_meta_end(inode), (uint64_t)8);
}

static int zcorrupt(struct zrec *m, const char *what)
{
	return erofs_err(m->img, m->inode->nid, EFSCORRUPTED, "compressed index: %s (lcluster %llu)",
			 what, (unsigned long long)m->lcn);
}

static int read_meta(struct zrec *m, void *buf, size_t len, uint64_t pos)
{
	if (!erofs_dev_range_ok(m->img, 0, pos, len))
		return erofs_err(m->img, m->inode->nid, EFSCORRUPTED,
				 "compressed index at offset %llu is beyond the end of the image",
				 (unsigned long long)pos);
	return erofs_dev_pread(m->img, 0, buf, len, pos);
}

static int load_full(struct zrec *m, uint64_t lcn)
{
	const struct erofs_inode *inode = m->inode;
	uint64_t pos = map_header_pos(inode) + 8 + 8 + lcn * sizeof(struct z_erofs_lcluster_index);
	struct z_erofs_lcluster_index di;
	unsigned advise;
	int ret = read_meta(m, &di, sizeof(di), pos);

	if (ret)
		return ret;
	m->lcn = lcn;
	m->nextpackoff = pos + sizeof(di);
	advise = le16_to_cpu(di.di_advise);
	m->type = advise & Z_EROFS_LI_LCLUSTER_TYPE_MASK;
	if (m->type == Z_EROFS_LCLUSTER_TYPE_NONHEAD) {
		m->clusterofs = 1u << m->zi->lclusterbits;
		m->delta[0] = le16_to_cpu(di.di_u.delta[0]);
		if (m->delta[0] & Z_EROFS_LI_D0_CBLKCNT) {
			if (!(m->zi->advise & (Z_EROFS_ADVISE_BIG_PCLUSTER_1 |
					       Z_EROFS_ADVISE_BIG_PCLUSTER_2)))
				return zcorrupt(m, "block count without big pclusters");
			m->compressedblks = m->delta[0] & ~Z_EROFS_LI_D0_CBLKCNT;
			m->delta[0] = 1;
		}
		m->delta[1] = le16_to_cpu(di.di_u.delta[1]);
	} else {
		m->partialref = advise & Z_EROFS_LI_PARTIAL_REF;
		m->clusterofs = le16_to_cpu(di.di_clusterofs);
		if (m->clusterofs >= 1u << m->zi->lclusterbits)
			return zcorrupt(m, "extent start beyond its lcluster");
		m->pblk = le32_to_cpu(di.di_u.blkaddr);
	}
	return 0;
}

/* Entry i of a compact pack: lobits of value, then 2 bits of type. */
static unsigned decode_bits(const uint8_t *pack, unsigned lobits, unsigned bitpos, unsigned *type)
{
	uint32_t v;

	memcpy(&v, pack + bitpos / 8, 4);
	v = le32_to_cpu(v) >> (bitpos & 7);
	*type = (v >> lobits) & 3;
	return v & ((1u << lobits) - 1);
}

/* How far on the next head is, from entry i of a pack (delta[1]). */
static unsigned la_distance(const uint8_t *pack, unsigned lobits, unsigned encodebits,
			    unsigned vcnt, unsigned i)
{
	unsigned lo = 0, d1 = 0, type;

	do {
		lo = decode_bits(pack, lobits, encodebits * i, &type);
		if (type != Z_EROFS_LCLUSTER_TYPE_NONHEAD)
			return d1;
		d1++;
	} while (++i < vcnt);
	/* the last entry of a pack stores delta[1] itself */
	if (!(lo & Z_EROFS_LI_D0_CBLKCNT))
		d1 += lo - 1;
	return d1;
}

static int load_compact(struct zrec *m, uint64_t lcn, bool lookahead)
{
	struct zinfo *zi = m->zi;
	const struct erofs_inode *inode = m->inode;
	struct erofs_image *img = m->img;
	uint64_t ebase = map_header_pos(inode) + 8;
	uint64_t totalidx = DIV_ROUND_UP(inode->size, (uint64_t)img->blksz);
	unsigned c4b_initial = (unsigned)((32 - ebase % 32) / 4) & 7;
	uint64_t c2b = 0, pos = ebase, rel = lcn, packpos;
	unsigned shift = 2, vcnt, packsize, lobits, encodebits, lo, type, nblk;
	bool big = zi->advise & Z_EROFS_ADVISE_BIG_PCLUSTER_1;
	uint8_t pack[32];
	uint32_t base;
	int i, ret;

	m->lcn = lcn;
	if (lcn >= totalidx || zi->lclusterbits > 14)
		return zcorrupt(m, "compact index out of range");
	if ((zi->advise & Z_EROFS_ADVISE_COMPACTED_2B) && c4b_initial < totalidx)
		c2b = (totalidx - c4b_initial) / 16 * 16;
	if (rel >= c4b_initial) {
		pos += c4b_initial * 4;
		rel -= c4b_initial;
		if (rel < c2b) {
			shift = 1;
		} else {
			pos += c2b * 2;
			rel -= c2b;
		}
	}
	pos += rel << shift;
	if (shift == 2)
		vcnt = 2;
	else if (zi->lclusterbits <= 12)
		vcnt = 16;
	else
		return erofs_err(img, inode->nid, EOPNOTSUPP,
				 "2-byte compact indexes with %u-byte lclusters",
				 1u << zi->lclusterbits);
	packsize = vcnt << shift;
	packpos = pos / packsize * packsize;
	ret = read_meta(m, pack, packsize, packpos);
	if (ret)
		return ret;
	m->nextpackoff = packpos + packsize;
	lobits = zi->lclusterbits > 12 ? zi->lclusterbits : 12;
	encodebits = (packsize - 4) * 8 / vcnt;
	i = (int)((pos - packpos) >> shift);

	lo = decode_bits(pack, lobits, encodebits * (unsigned)i, &type);
	m->type = type;
	if (type == Z_EROFS_LCLUSTER_TYPE_NONHEAD) {
		m->clusterofs = 1u << zi->lclusterbits;
		if (lookahead)
			m->delta[1] = (uint16_t)la_distance(pack, lobits, encodebits, vcnt,
							    (unsigned)i);
		if (lo & Z_EROFS_LI_D0_CBLKCNT) {
			if (!big)
				return zcorrupt(m, "block count without big pclusters");
			m->compressedblks = lo & ~Z_EROFS_LI_D0_CBLKCNT;
			m->delta[0] = 1;
			return 0;
		}
		if (i + 1 != (int)vcnt) {
			m->delta[0] = (uint16_t)lo;
			return 0;
		}
		/* the last entry holds delta[1]: delta[0] comes from the one
		 * before it */
		lo = decode_bits(pack, lobits, encodebits * (unsigned)(i - 1), &type);
		if (type != Z_EROFS_LCLUSTER_TYPE_NONHEAD)
			lo = 0;
		else if (lo & Z_EROFS_LI_D0_CBLKCNT)
			lo = 1;
		m->delta[0] = (uint16_t)(lo + 1);
		return 0;
	}
	m->clusterofs = lo;
	m->delta[0] = 0;
	if (m->clusterofs >= 1u << zi->lclusterbits)
		return zcorrupt(m, "extent start beyond its lcluster");
	/* the head's block: the pack base plus the blocks of the pclusters
	 * started before it in this pack (each loop pass moves i back) */
	if (!big) {
		nblk = 1;
		while (i > 0) {
			--i;
			lo = decode_bits(pack, lobits, encodebits * (unsigned)i, &type);
			if (type == Z_EROFS_LCLUSTER_TYPE_NONHEAD)
				i -= (int)lo;
			if (i >= 0)
				++nblk;
		}
	} else {
		nblk = 0;
		while (i > 0) {
			--i;
			lo = decode_bits(pack, lobits, encodebits * (unsigned)i, &type);
			if (type == Z_EROFS_LCLUSTER_TYPE_NONHEAD) {
				if (lo & Z_EROFS_LI_D0_CBLKCNT) {
					--i;
					nblk += lo & ~Z_EROFS_LI_D0_CBLKCNT;
					continue;
				}
				if (lo <= 1)    /* big pclusters have no plain d0 of 1 */
					return zcorrupt(m, "bad lookback distance in a big-pcluster pack");
				i -= (int)lo - 2;
				continue;
			}
			++nblk;
		}
	}
	memcpy(&base, pack + packsize - 4, 4);
	m->pblk = (uint64_t)le32_to_cpu(base) + nblk;
	return 0;
}

static int load_lcluster_la(struct zrec *m, uint64_t lcn, bool lookahead)
{
	if (lcn >= m->zi->nlclusters) {
		m->lcn = lcn;
		return zcorrupt(m, "lcluster beyond the end of the file");
	}
	if (m->inode->layout == EROFS_INODE_COMPRESSED_FULL)
		return load_full(m, lcn);
	return load_compact(m, lcn, lookahead);
}

static int load_lcluster(struct zrec *m, uint64_t lcn)
{
	return load_lcluster_la(m, lcn, false);
}

/* The most lclusters one extent may span: the kernel refuses longer ones. */
static uint64_t max_span(const struct zinfo *zi)
{
	return ((uint64_t)Z_EROFS_PCLUSTER_MAX_DSIZE >> zi->lclusterbits) + 2;
}

/* From a NONHEAD lcluster back to the head of its extent. */
static int lookback(struct zrec *m, unsigned distance)
{
	uint64_t steps = 0;

	while (m->lcn >= distance) {
		uint64_t lcn = m->lcn - distance;
		int ret;

		if (++steps > max_span(m->zi))
			return erofs_err(m->img, m->inode->nid, EOPNOTSUPP,
					 "compressed extent before lcluster %llu is longer than %u MiB",
					 (unsigned long long)m->lcn, Z_EROFS_PCLUSTER_MAX_DSIZE >> 20);
		ret = load_lcluster(m, lcn);
		if (ret)
			return ret;
		if (m->type != Z_EROFS_LCLUSTER_TYPE_NONHEAD) {
			m->headtype = m->type;
			m->la = (lcn << m->zi->lclusterbits) | m->clusterofs;
			return 0;
		}
		distance = m->delta[0];
		if (!distance)
			break;
	}
	return zcorrupt(m, "bogus lookback distance");
}

/* Bytes of the pcluster of the head in m (z_erofs_get_extent_compressedlen). */
static int compressed_len(struct zrec *m)
{
	struct zinfo *zi = m->zi;
	bool big1 = zi->advise & Z_EROFS_ADVISE_BIG_PCLUSTER_1;
	bool big2 = zi->advise & Z_EROFS_ADVISE_BIG_PCLUSTER_2;
	uint64_t lcn = m->lcn + 1;
	int ret;

	if ((m->headtype == Z_EROFS_LCLUSTER_TYPE_HEAD1 && !big1) ||
	    ((m->headtype == Z_EROFS_LCLUSTER_TYPE_PLAIN ||
	      m->headtype == Z_EROFS_LCLUSTER_TYPE_HEAD2) && !big2) ||
	    (lcn << zi->lclusterbits) >= m->inode->size)
		m->compressedblks = 1;
	if (!m->compressedblks) {
		ret = load_lcluster(m, lcn);
		if (ret)
			return ret;
		if (m->type == Z_EROFS_LCLUSTER_TYPE_NONHEAD && m->delta[0] != 1)
			return zcorrupt(m, "bogus block count (CBLKCNT)");
		/* a head right after: a one-block pcluster */
		if (m->type != Z_EROFS_LCLUSTER_TYPE_NONHEAD || !m->compressedblks)
			m->compressedblks = 1;
	}
	m->plen = (uint64_t)m->compressedblks << m->img->blkszbits;
	return 0;
}

/*
 * Where the extent ends: at the next lcluster that starts one, or at i_size.
 * The kernel's reads find that end one lcluster at a time (mapping each
 * offset, never trusting the delta[1] hints that only FIEMAP follows), and
 * map every NONHEAD lcluster by looking back from it; so each one here must
 * look back to this extent's head, or the kernel reads another extent than
 * anole when it maps such an offset (page by page, for instance):
 * corruption. (A stray block count past the first NONHEAD is ignored: the
 * head's pcluster is the one decoded, as the kernel decodes it whenever
 * that stray count agrees or its partial decoding does not care.)
 */
static int extent_end(struct zrec *m, bool *eof)
{
	struct zinfo *zi = m->zi;
	uint64_t headlcn = m->la >> zi->lclusterbits, lcn;
	int ret;

	*eof = false;
	for (lcn = headlcn + 1;; lcn++) {
		struct zrec t;

		if ((lcn << zi->lclusterbits) >= m->inode->size) {
			m->end = m->inode->size;
			*eof = true;
			return 0;
		}
		if (lcn - headlcn > max_span(zi))
			return erofs_err(m->img, m->inode->nid, EOPNOTSUPP,
					 "compressed extent at %llu is longer than %u MiB",
					 (unsigned long long)m->la, Z_EROFS_PCLUSTER_MAX_DSIZE >> 20);
		t = *m;
		ret = load_lcluster(&t, lcn);
		if (ret)
			return ret;
		if (t.type != Z_EROFS_LCLUSTER_TYPE_NONHEAD) {
			m->end = (lcn << zi->lclusterbits) + t.clusterofs;
			break;
		}
		ret = lookback(&t, t.delta[0]);
		if (ret)
			return ret;
		if (t.lcn != headlcn)
			return erofs_err(m->img, m->inode->nid, EFSCORRUPTED,
					 "compressed index: lcluster %llu looks back to lcluster %llu, not to its extent's head %llu",
					 (unsigned long long)lcn, (unsigned long long)t.lcn,
					 (unsigned long long)headlcn);
	}
	if (m->end <= m->la)
		return zcorrupt(m, "extent ends before it starts");
	return 0;
}

/*
 * Where the extent ends following the delta[1] hints (the kernel's
 * z_erofs_get_extent_decompressedlen()), as its reads of LZMA, DEFLATE and
 * zstd extents do: they "read more", decoding whole extents, and so never
 * map the lclusters in between.
 */
static int lookahead_end(struct zrec *m, bool *eof)
{
	struct zinfo *zi = m->zi;
	struct zrec t = *m;
	uint64_t lcn = m->lcn, headlcn = m->la >> zi->lclusterbits, steps = 0;
	int ret;

	*eof = false;
	for (;;) {
		if ((lcn << zi->lclusterbits) >= m->inode->size) {
			m->end = m->inode->size;
			*eof = true;
			return 0;
		}
		if (++steps > max_span(zi))
			return erofs_err(m->img, m->inode->nid, EOPNOTSUPP,
					 "compressed extent at %llu is longer than %u MiB",
					 (unsigned long long)m->la, Z_EROFS_PCLUSTER_MAX_DSIZE >> 20);
		ret = load_lcluster_la(&t, lcn, true);
		if (ret)
			return ret;
		if (t.type == Z_EROFS_LCLUSTER_TYPE_NONHEAD) {
			if (!t.delta[1])        /* pre-1.0 mkfs wrote 0 here */
				t.delta[1] = 1;
		} else {
			if (lcn != headlcn)
				break;
			t.delta[1] = 1;
		}
		lcn += t.delta[1];
	}
	m->end = (lcn << zi->lclusterbits) + t.clusterofs;
	if (m->end <= m->la)
		return zcorrupt(m, "extent ends before it starts");
	return 0;
}

/* The kernel's z_erofs_map_blocks_fo(): the head of the extent holding
 * ofs, its end within the lcluster of ofs, and its pcluster. */
static int map_fo(struct zrec *m, uint64_t ofs, bool findtail)
{
	struct zinfo *zi = m->zi;
	const struct erofs_inode *inode = m->inode;
	bool ztailpacking = zi->idata_size;
	bool fragment = zi->advise & Z_EROFS_ADVISE_FRAGMENT_PCLUSTER;
	uint64_t initial_lcn = ofs >> zi->lclusterbits;
	unsigned endoff = (unsigned)(ofs & ((1ull << zi->lclusterbits) - 1));
	int ret;

	ret = load_lcluster(m, initial_lcn);
	if (ret)
		return ret;
	if (findtail && ztailpacking)
		zi->idataoff = m->nextpackoff;
	m->end = (m->lcn + 1) << zi->lclusterbits;
	if (m->type != Z_EROFS_LCLUSTER_TYPE_NONHEAD && endoff >= m->clusterofs) {
		m->headtype = m->type;
		m->la = (m->lcn << zi->lclusterbits) | m->clusterofs;
		/* ztailpacking: the last lcluster may end the file early */
		if (ztailpacking && m->end > inode->size)
			m->end = inode->size;
	} else {
		if (m->type != Z_EROFS_LCLUSTER_TYPE_NONHEAD) {
			if (!m->lcn)
				return zcorrupt(m, "lcluster 0 does not start an extent");
			m->end = (m->lcn << zi->lclusterbits) | m->clusterofs;
			m->full_mapped = true;
			m->delta[0] = 1;
		}
		ret = lookback(m, m->delta[0]);
		if (ret)
			return ret;
	}
	if (findtail) {
		zi->tail_headlcn = m->lcn;
		/* full indexes: the fragment offset's high half is the head's
		 * block address */
		if (fragment && inode->layout == EROFS_INODE_COMPRESSED_FULL)
			zi->fragmentoff |= m->pblk << 32;
		return 0;
	}
	if (ztailpacking && m->lcn == zi->tail_headlcn) {
		m->meta = true;
		m->pa = zi->idataoff;
		m->plen = zi->idata_size;
		if ((m->pa & (m->img->blksz - 1)) + m->plen > m->img->blksz)
			return erofs_err(m->img, inode->nid, EFSCORRUPTED,
					 "inline pcluster (%llu bytes at offset %llu) crosses a block boundary",
					 (unsigned long long)m->plen, (unsigned long long)m->pa);
	} else if (fragment && m->lcn == zi->tail_headlcn) {
		m->fragment = true;
	} else {
		m->pa = m->pblk << m->img->blkszbits;
		ret = compressed_len(m);
	}
	return ret;
}

/* The kernel's z_erofs_fill_inode_lazy(): the map header, and the tail
 * extent when the tail is inline or a fragment. */
static int load_info(struct erofs_image *img, const struct erofs_inode *inode, struct zinfo *zi)
{
	struct z_erofs_map_header h;
	struct zrec m = { .img = img, .inode = inode, .zi = zi };
	uint64_t pos = map_header_pos(inode);
	int ret;

	memset(zi, 0, sizeof(*zi));
	ret = read_meta(&m, &h, sizeof(h), pos);
	if (ret)
		return ret;
	if (h.h_clusterbits >> Z_EROFS_FRAGMENT_INODE_BIT) {
		uint64_t raw;

		memcpy(&raw, &h, 8);
		zi->advise = Z_EROFS_ADVISE_FRAGMENT_PCLUSTER;
		zi->fragmentoff = le64_to_cpu(raw) ^ (1ull << 63);
		zi->whole_fragment = true;
		return 0;
	}
	zi->advise = le16_to_cpu(h.h_advise);
	zi->lclusterbits = img->blkszbits + (h.h_clusterbits & 15u);
	zi->nlclusters = ((inode->size - 1) >> zi->lclusterbits) + 1;
	if (inode->layout == EROFS_INODE_COMPRESSED_FULL && (zi->advise & Z_EROFS_ADVISE_EXTENTS))
		return erofs_err(img, inode->nid, EOPNOTSUPP,
				 "extent-record compressed indexes (48-bit layout) are not supported");
	zi->algs[0] = h.h_algorithmtype & 15u;
	zi->algs[1] = h.h_algorithmtype >> 4;
	if (zi->advise & Z_EROFS_ADVISE_FRAGMENT_PCLUSTER)
		zi->fragmentoff = le32_to_cpu(h.u.h_fragmentoff);
	else if (zi->advise & Z_EROFS_ADVISE_INLINE_PCLUSTER)
		zi->idata_size = le16_to_cpu(h.u.s.h_idata_size);
	/* an unknown algorithm is refused when an extent uses it (not
	 * listed in available_compr_algs), as Linux 6.18 does */
	if (!(img->feature_incompat & EROFS_FEATURE_INCOMPAT_BIG_PCLUSTER) &&
	    (zi->advise & (Z_EROFS_ADVISE_BIG_PCLUSTER_1 | Z_EROFS_ADVISE_BIG_PCLUSTER_2)))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "big pclusters, but the superblock lacks the big_pcluster feature");
	if (inode->layout == EROFS_INODE_COMPRESSED_COMPACT &&
	    !(zi->advise & Z_EROFS_ADVISE_BIG_PCLUSTER_1) !=
	    !(zi->advise & Z_EROFS_ADVISE_BIG_PCLUSTER_2))
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "compact indexes with big pclusters for one head type only");
	if (zi->idata_size || (zi->advise & Z_EROFS_ADVISE_FRAGMENT_PCLUSTER))
		return map_fo(&m, inode->size - 1, true);
	return 0;
}

int z_erofs_map_blocks(struct erofs_image *img, const struct erofs_inode *inode,
		       uint64_t off, struct erofs_map *map)
{
	struct zinfo zi;
	struct zrec m = { .img = img, .inode = inode, .zi = &zi };
	uint64_t kernel_end;
	bool eof, readmore;
	int ret;

	/* callers handle off >= size */
	ret = load_info(img, inode, &zi);
	if (ret)
		return ret;
	map->encoded = true;
	map->devid = 0;
	if ((zi.advise & Z_EROFS_ADVISE_FRAGMENT_PCLUSTER) && !zi.tail_headlcn) {
		/* the whole file is one fragment */
		map->logical = 0;
		map->length = inode->size;
		map->fragment = true;
		map->physical = zi.fragmentoff;
		map->plength = inode->size;
		map->algorithm = Z_EROFS_COMPRESSION_SHIFTED;
		map->partial = true;
		return 0;
	}
	ret = map_fo(&m, off, false);
	if (ret)
		return ret;
	kernel_end = m.end;
	map->partial_ref = m.partialref;
	if (m.headtype == Z_EROFS_LCLUSTER_TYPE_PLAIN) {
		map->algorithm = zi.advise & Z_EROFS_ADVISE_INTERLACED_PCLUSTER ?
				 Z_EROFS_COMPRESSION_INTERLACED : Z_EROFS_COMPRESSION_SHIFTED;
	} else {
		map->algorithm = zi.algs[m.headtype == Z_EROFS_LCLUSTER_TYPE_HEAD2];
		if (!(img->available_compr_algs & (1u << map->algorithm)))
			return erofs_err(img, inode->nid, EFSCORRUPTED,
					 "extent at %llu uses %s, which the superblock does not list",
					 (unsigned long long)m.la, erofs_algorithm_name(map->algorithm));
	}
	readmore = map->algorithm == Z_EROFS_COMPRESSION_LZMA ||
		   map->algorithm == Z_EROFS_COMPRESSION_DEFLATE ||
		   map->algorithm == Z_EROFS_COMPRESSION_ZSTD;
	ret = readmore ? lookahead_end(&m, &eof) : extent_end(&m, &eof);
	if (ret)
		return ret;
	if (m.end > inode->size || off >= m.end || off < m.la)
		return erofs_err(img, inode->nid, EFSCORRUPTED,
				 "compressed extent %llu..%llu does not hold offset %llu within i_size %llu",
				 (unsigned long long)m.la, (unsigned long long)m.end,
				 (unsigned long long)off, (unsigned long long)inode->size);
	map->logical = m.la;
	map->length = m.end - m.la;
	/* Plain extents may not be longer than their pcluster; the kernel
	 * checks what it maps, up to the end of the last lcluster for a
	 * tail without ztailpacking. */
	if (!m.fragment && m.headtype == Z_EROFS_LCLUSTER_TYPE_PLAIN) {
		uint64_t kend = eof && !zi.idata_size ?
				ALIGN_UP(inode->size, 1ull << zi.lclusterbits) : m.end;

		if (kend < kernel_end)
			kend = kernel_end;
		if (kend - m.la > m.plen)
			return erofs_err(img, inode->nid, EFSCORRUPTED,
					 "uncompressed extent at %llu (%llu bytes) is longer than its pcluster (%llu)",
					 (unsigned long long)m.la, (unsigned long long)(kend - m.la),
					 (unsigned long long)m.plen);
	}
	if (map->length > Z_EROFS_PCLUSTER_MAX_DSIZE)
		return erofs_err(img, inode->nid, EOPNOTSUPP,
				 "compressed extent at %llu decodes to %llu bytes (more than %u MiB)",
				 (unsigned long long)m.la, (unsigned long long)map->length,
				 Z_EROFS_PCLUSTER_MAX_DSIZE >> 20);
	/*
	 * The kernel decodes a pcluster strictly (all of it, to exactly the
	 * extent) when it knows the whole extent: always for LZMA, DEFLATE and
	 * zstd (it reads more), for LZ4 only when its map of the extent's last
	 * byte reaches the next head inside the same lcluster. Otherwise (LZ4
	 * tails, extents ending on an lcluster boundary, shared "partial"
	 * pclusters) it may stop once it has the bytes it needs.
	 */
	map->partial = map->partial_ref ||
		       (!readmore && (eof || !(m.end & ((1ull << zi.lclusterbits) - 1))));
	if (m.fragment) {
		map->fragment = true;
		map->physical = zi.fragmentoff;
		map->plength = map->length;
		map->algorithm = Z_EROFS_COMPRESSION_SHIFTED;
		return 0;
	}
	map->physical = m.pa;
	map->plength = m.plen;
	map->inline_tail = m.meta;
	if (m.plen > Z_EROFS_PCLUSTER_MAX_SIZE)
		return erofs_err(img, inode->nid, EOPNOTSUPP,
				 "pcluster at %llu is %llu bytes (more than %u KiB)",
				 (unsigned long long)m.pa, (unsigned long long)m.plen,
				 Z_EROFS_PCLUSTER_MAX_SIZE >> 10);
	return 0;
}

int z_erofs_inode_info(struct erofs_image *img, const struct erofs_inode *inode,
		       struct z_erofs_info *info)
{
	struct zinfo zi;
	int ret;

	memset(info, 0, sizeof(*info));
	if (!inode->size)
		return 0;
	ret = load_info(img, inode, &zi);
	if (ret)
		return ret;
	*info = (struct z_erofs_info){
		.advise = zi.advise, .algs = { zi.algs[0], zi.algs[1] },
		.lclusterbits = zi.lclusterbits, .idata_size = zi.idata_size,
		.fragmentoff = zi.fragmentoff, .whole_fragment = zi.whole_fragment,
	};
	return 0;
}
