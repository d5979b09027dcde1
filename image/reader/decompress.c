// SPDX-License-Identifier: Apache-2.0
/*
 * Decoding one pcluster of a compressed EROFS inode into exactly the bytes
 * of its extent, following the kernel's decompressors (fs/erofs/
 * decompressor*.c): LZ4 (full or partial decoding), MicroLZMA, raw
 * DEFLATE, Zstandard, and the uncompressed "shifted" and "interlaced"
 * forms. The input is untrusted: every decoder is bounded by the input and
 * output sizes, and a short, long or undecodable result is an error, never
 * bytes handed to the caller.
 */
#include "reader/internal.h"

#include "anole_features.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
/* each decoder is optional (meson features; `anole features`) */
#if ANOLE_HAVE_LZ4
#include <lz4.h>
#endif
#if ANOLE_HAVE_LZMA
#include <lzma.h>
#endif
#if ANOLE_HAVE_DEFLATE
#include <zlib.h>
#endif
#if ANOLE_HAVE_ZSTD
#include <zstd.h>
#endif

static int fail(char *why, size_t whylen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *why, size_t whylen, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return err;
}

/*
 * With zero padding the payload ends at the end of the pcluster and starts
 * after leading zero bytes; the kernel (z_erofs_fixup_insize) only looks
 * for its first byte inside the first block, so a longer run is corrupt.
 */
static int skip_padding(const struct z_erofs_req *rq, const uint8_t **in, size_t *inlen,
			char *why, size_t whylen)
{
	size_t scan = rq->pad_scan < rq->inlen ? rq->pad_scan : rq->inlen, i = 0;

	*in = rq->in;
	*inlen = rq->inlen;
	if (!rq->zero_padding)
		return 0;
	while (i < scan && !rq->in[i])
		i++;
	if (i == scan)
		return fail(why, whylen, -EFSCORRUPTED,
			    "no compressed data in the first %zu bytes of the pcluster (all zero)",
			    scan);
	*in += i;
	*inlen -= i;
	return 0;
}

#if ANOLE_HAVE_LZ4
static int decode_lz4(const struct z_erofs_req *rq, const uint8_t *in, size_t inlen,
		      char *why, size_t whylen)
{
	int got;

	if (inlen > INT32_MAX || rq->outlen > INT32_MAX)
		return fail(why, whylen, -EOPNOTSUPP, "lz4 pcluster too large");
	/* LZ4_decompress_safe() also insists that the input ends with the
	 * block; the partial form stops once the output is full */
	if (rq->partial)
		got = LZ4_decompress_safe_partial((const char *)in, (char *)rq->out, (int)inlen,
						  (int)rq->outlen, (int)rq->outlen);
	else
		got = LZ4_decompress_safe((const char *)in, (char *)rq->out, (int)inlen,
					  (int)rq->outlen);
	if (got < 0)
		return fail(why, whylen, -EFSCORRUPTED, "lz4: corrupt data (%zu bytes in)", inlen);
	if ((size_t)got != rq->outlen)
		return fail(why, whylen, -EFSCORRUPTED,
			    "lz4: %d bytes decoded, the extent has %zu", got, rq->outlen);
	return 0;
}
#else
static int decode_lz4(const struct z_erofs_req *rq, const uint8_t *in, size_t inlen,
		      char *why, size_t whylen)
{
	return fail(why, whylen, -EOPNOTSUPP, "LZ4 pclusters: anole was built without lz4");
}
#endif

#if ANOLE_HAVE_LZMA
static int decode_lzma(const struct z_erofs_req *rq, const uint8_t *in, size_t inlen,
		       char *why, size_t whylen)
{
	lzma_stream strm = LZMA_STREAM_INIT;
	lzma_ret lr;
	int ret = 0;

	if (inlen > UINT32_MAX || rq->outlen > UINT32_MAX)
		return fail(why, whylen, -EOPNOTSUPP, "lzma pcluster too large");
	lr = lzma_microlzma_decoder(&strm, inlen, rq->outlen, !rq->partial,
				    rq->lzma_dict_size ? rq->lzma_dict_size
						       : Z_EROFS_LZMA_MAX_DICT_SIZE);
	if (lr != LZMA_OK)
		return fail(why, whylen, lr == LZMA_MEM_ERROR ? -ENOMEM : -EFSCORRUPTED,
			    "lzma: cannot start the MicroLZMA decoder (%d)", (int)lr);
	strm.next_in = in;
	strm.avail_in = inlen;
	strm.next_out = rq->out;
	strm.avail_out = rq->outlen;
	lr = lzma_code(&strm, LZMA_FINISH);
	if (lr != LZMA_STREAM_END)
		ret = fail(why, whylen, lr == LZMA_MEM_ERROR ? -ENOMEM : -EFSCORRUPTED,
			   "lzma: corrupt data (liblzma error %d)", (int)lr);
	else if (strm.total_out != rq->outlen)
		ret = fail(why, whylen, -EFSCORRUPTED, "lzma: %llu bytes decoded, the extent has %zu",
			   (unsigned long long)strm.total_out, rq->outlen);
	lzma_end(&strm);
	return ret;
}
#else
static int decode_lzma(const struct z_erofs_req *rq, const uint8_t *in, size_t inlen,
		       char *why, size_t whylen)
{
	return fail(why, whylen, -EOPNOTSUPP, "MicroLZMA pclusters: anole was built without lzma");
}
#endif

#if ANOLE_HAVE_DEFLATE
static int decode_deflate(const struct z_erofs_req *rq, const uint8_t *in, size_t inlen,
			  char *why, size_t whylen)
{
	z_stream zs;
	int zr, ret = 0;

	if (inlen > UINT32_MAX || rq->outlen > UINT32_MAX)
		return fail(why, whylen, -EOPNOTSUPP, "deflate pcluster too large");
	memset(&zs, 0, sizeof(zs));
	/* raw deflate; the kernel inflates with the largest window whatever
	 * the config says, so a smaller configured window is only a hint */
	zr = inflateInit2(&zs, -MAX_WBITS);
	if (zr != Z_OK)
		return fail(why, whylen, zr == Z_MEM_ERROR ? -ENOMEM : -EIO,
			    "deflate: inflateInit2 failed (%d)", zr);
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)inlen;
	zs.next_out = rq->out;
	zs.avail_out = (uInt)rq->outlen;
	zr = inflate(&zs, Z_FINISH);
	if (zr == Z_DATA_ERROR || zr == Z_NEED_DICT || zr == Z_STREAM_ERROR || zr == Z_MEM_ERROR)
		ret = fail(why, whylen, zr == Z_MEM_ERROR ? -ENOMEM : -EFSCORRUPTED,
			   "deflate: corrupt data (%s)", zs.msg ? zs.msg : "zlib error");
	else if (zs.total_out != rq->outlen)
		ret = fail(why, whylen, -EFSCORRUPTED, "deflate: %lu bytes decoded, the extent has %zu",
			   zs.total_out, rq->outlen);
	else if (zr != Z_STREAM_END && !rq->partial)
		ret = fail(why, whylen, -EFSCORRUPTED,
			   "deflate: the stream goes on past the end of the extent");
	inflateEnd(&zs);
	return ret;
}
#else
static int decode_deflate(const struct z_erofs_req *rq, const uint8_t *in, size_t inlen,
			  char *why, size_t whylen)
{
	return fail(why, whylen, -EOPNOTSUPP, "DEFLATE pclusters: anole was built without deflate");
}
#endif

#if ANOLE_HAVE_ZSTD
static int zstd_done(ZSTD_DCtx *dctx, int ret)
{
	ZSTD_freeDCtx(dctx);
	return ret;
}

/* After the extent's last byte: the frame must end (its epilogue, such as
 * a checksum, may still be unread), producing nothing more. */
static int zstd_tail(ZSTD_DCtx *dctx, ZSTD_inBuffer *ib, char *why, size_t whylen)
{
	uint8_t extra;

	for (;;) {
		ZSTD_outBuffer ob = { &extra, 1, 0 };
		size_t inpos = ib->pos;
		size_t zr = ZSTD_decompressStream(dctx, &ob, ib);

		if (ZSTD_isError(zr))
			return fail(why, whylen, -EFSCORRUPTED, "zstd: corrupt data (%s)",
				    ZSTD_getErrorName(zr));
		if (ob.pos)
			return fail(why, whylen, -EFSCORRUPTED,
				    "zstd: the frame holds more than the extent");
		if (!zr)
			return 0;
		if (ib->pos == inpos)
			return fail(why, whylen, -EFSCORRUPTED, "zstd: the frame is truncated");
	}
}

static int decode_zstd(const struct z_erofs_req *rq, const uint8_t *in, size_t inlen,
		       char *why, size_t whylen)
{
	ZSTD_DCtx *dctx = ZSTD_createDCtx();
	ZSTD_inBuffer ib = { in, inlen, 0 };
	ZSTD_outBuffer ob = { rq->out, rq->outlen, 0 };
	int ret = 0;

	if (!dctx)
		return fail(why, whylen, -ENOMEM, "zstd: out of memory");
	/* frames may not need a window above the configured one */
	ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, 10 + (int)rq->zstd_windowlog);
	/* Decode until the extent is full; running out of input or reaching
	 * the end of the frame first is corruption. Every pass makes progress
	 * or ends the loop. */
	for (;;) {
		size_t inpos = ib.pos, outpos = ob.pos;
		size_t zr = ZSTD_decompressStream(dctx, &ob, &ib);

		if (ZSTD_isError(zr))
			return zstd_done(dctx, fail(why, whylen, -EFSCORRUPTED, "zstd: corrupt data (%s)",
						    ZSTD_getErrorName(zr)));
		if (ob.pos == ob.size) {
			/* the kernel stops here; a full decode must also end the
			 * frame there (as erofs-utils insists), a partial one not */
			if (zr && !rq->partial)
				ret = zstd_tail(dctx, &ib, why, whylen);
			break;
		}
		if (!zr || (ib.pos == inpos && ob.pos == outpos)) {
			ret = fail(why, whylen, -EFSCORRUPTED,
				   "zstd: %zu bytes decoded, the extent has %zu", ob.pos, rq->outlen);
			break;
		}
	}
	return zstd_done(dctx, ret);
}
#else
static int decode_zstd(const struct z_erofs_req *rq, const uint8_t *in, size_t inlen,
		       char *why, size_t whylen)
{
	return fail(why, whylen, -EOPNOTSUPP, "Zstandard pclusters: anole was built without zstd");
}
#endif

int z_erofs_decode(const struct z_erofs_req *rq, char *why, size_t whylen)
{
	const uint8_t *in;
	size_t inlen;
	int ret;

	switch (rq->algorithm) {
	case Z_EROFS_COMPRESSION_SHIFTED:
		if (rq->outlen > rq->inlen)
			return fail(why, whylen, -EFSCORRUPTED,
				    "uncompressed extent (%zu bytes) is longer than its pcluster (%zu)",
				    rq->outlen, rq->inlen);
		memcpy(rq->out, rq->in, rq->outlen);
		return 0;
	case Z_EROFS_COMPRESSION_INTERLACED: {
		/* the extent's first block-remainder is stored at the end of
		 * the pcluster, the rest from its start */
		size_t c = rq->interlaced_shift, first;

		if (rq->outlen > rq->inlen || c > rq->inlen)
			return fail(why, whylen, -EFSCORRUPTED,
				    "interlaced extent (%zu bytes) does not fit its pcluster (%zu)",
				    rq->outlen, rq->inlen);
		first = c < rq->outlen ? c : rq->outlen;
		memcpy(rq->out, rq->in + rq->inlen - c, first);
		memcpy(rq->out + first, rq->in, rq->outlen - first);
		return 0;
	}
	case Z_EROFS_COMPRESSION_LZ4:
	case Z_EROFS_COMPRESSION_LZMA:
	case Z_EROFS_COMPRESSION_DEFLATE:
	case Z_EROFS_COMPRESSION_ZSTD:
		break;
	default:
		return fail(why, whylen, -EOPNOTSUPP, "unknown compression algorithm %u",
			    rq->algorithm);
	}
	ret = skip_padding(rq, &in, &inlen, why, whylen);
	if (ret)
		return ret;
	switch (rq->algorithm) {
	case Z_EROFS_COMPRESSION_LZ4:
		return decode_lz4(rq, in, inlen, why, whylen);
	case Z_EROFS_COMPRESSION_LZMA:
		return decode_lzma(rq, in, inlen, why, whylen);
	case Z_EROFS_COMPRESSION_DEFLATE:
		return decode_deflate(rq, in, inlen, why, whylen);
	default:
		return decode_zstd(rq, in, inlen, why, whylen);
	}
}
