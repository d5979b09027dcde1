// SPDX-License-Identifier: Apache-2.0
/*
 * Fixed-size-output compressors for EROFS pclusters: compress as much of
 * the input as fits into a given number of bytes.
 *
 * LZ4, LZ4HC and MicroLZMA can do this natively. zstd and DEFLATE only
 * compress whole buffers, so for them the largest prefix that fits is
 * searched for, guided by the ratio of the previous attempt.
 *
 * Compression contexts are per thread (they are large: LZ4HC state, LZMA
 * match finders) and freed when the thread exits. Every compressor is
 * deterministic for a given input and parameters, whatever the thread.
 */
#include "zcompress.h"
#include "anole/compress.h"
#include "anole/error.h"
#include "anole/xalloc.h"
#include "anole_features.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
/* each compressor is optional (meson features; `anole features`) */
#if ANOLE_HAVE_DEFLATE
#include <libdeflate.h>
#endif
#if ANOLE_HAVE_LZ4
#include <lz4.h>
#include <lz4hc.h>
#else
#define LZ4HC_CLEVEL_MIN 3      /* lz4hc.h's levels, for the error message */
#define LZ4HC_CLEVEL_DEFAULT 9
#define LZ4HC_CLEVEL_MAX 12
#endif
#if ANOLE_HAVE_LZMA
#include <lzma.h>
#endif
#if ANOLE_HAVE_ZSTD
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <zstd_errors.h>
#endif

/* what -z and --compress-hints offer, the names and levels of mkfs.erofs */
/* the meson feature an algorithm needs, when this anole was built without it */
#define BUILT(feature) (ANOLE_HAVE_##feature ? NULL : ANOLE_FEATURE_NAME_##feature)
#define ANOLE_FEATURE_NAME_LZ4 "lz4"
#define ANOLE_FEATURE_NAME_LZMA "lzma"
#define ANOLE_FEATURE_NAME_DEFLATE "deflate"
#define ANOLE_FEATURE_NAME_ZSTD "zstd"
static const struct anole_compress_choice choices[] = {
	{ .name = "lz4", .def_level = 1, .min_level = 1, .max_level = 1, .missing = BUILT(LZ4) },
	{ .name = "lz4hc", .def_level = LZ4HC_CLEVEL_DEFAULT, .min_level = LZ4HC_CLEVEL_MIN,
	  .max_level = LZ4HC_CLEVEL_MAX, .missing = BUILT(LZ4) },
	/* 0-9 are xz presets, 100-109 the same with LZMA_PRESET_EXTREME */
	{ .name = "lzma", .def_level = 6, .min_level = 0, .max_level = 9,
	  .min_level2 = 100, .max_level2 = 109, .missing = BUILT(LZMA) },
	{ .name = "deflate", .def_level = 6, .min_level = 1, .max_level = 12,
	  .missing = BUILT(DEFLATE) },
	{ .name = "zstd", .def_level = 3, .min_level = 1, .max_level = 22, .missing = BUILT(ZSTD) },
};
/* the same rows: how each is written in the image */
static const struct {
	int id;
	bool hc;
} algs[ARRAY_SIZE(choices)] = {
	{ Z_EROFS_COMPRESSION_LZ4, false },
	{ Z_EROFS_COMPRESSION_LZ4, true },
	{ Z_EROFS_COMPRESSION_LZMA, false },
	{ Z_EROFS_COMPRESSION_DEFLATE, false },
	{ Z_EROFS_COMPRESSION_ZSTD, false },
};

int zalg_parse(const char *what, const char *spec, struct zalg *z)
{
	int i = anole_compress_spec_parse(what, spec, choices, ARRAY_SIZE(choices), &z->level);

	if (i < 0)
		return i;
	z->id = algs[i].id;
	z->hc = algs[i].hc;
	z->name = choices[i].name;
	return 0;
}

/* ---- per-thread contexts ---- */

struct zctx {
	void *lz4hc_state;
#if ANOLE_HAVE_ZSTD
	ZSTD_CCtx *zstd;
	int zstd_level;
	unsigned zstd_wlog;
#endif
#if ANOLE_HAVE_DEFLATE
	struct libdeflate_compressor *deflate;
	int deflate_level;
#endif
#if ANOLE_HAVE_LZMA
	lzma_stream lzma;
	bool lzma_inited;
#endif
	uint8_t *scratch;
	size_t scratch_len;
	double last_ratio;          /* input / output of the last fit, a guess for the next */
};

static pthread_key_t ctx_key;
static pthread_once_t ctx_once = PTHREAD_ONCE_INIT;

static void ctx_free(void *p)
{
	struct zctx *c = p;

	if (!c)
		return;
	free(c->lz4hc_state);
#if ANOLE_HAVE_ZSTD
	ZSTD_freeCCtx(c->zstd);
#endif
#if ANOLE_HAVE_DEFLATE
	if (c->deflate)
		libdeflate_free_compressor(c->deflate);
#endif
#if ANOLE_HAVE_LZMA
	if (c->lzma_inited)
		lzma_end(&c->lzma);
#endif
	free(c->scratch);
	free(c);
}

static void ctx_key_init(void)
{
	(void)pthread_key_create(&ctx_key, ctx_free);
}

static struct zctx *thread_ctx(void)
{
	struct zctx *c;

	pthread_once(&ctx_once, ctx_key_init);
	c = pthread_getspecific(ctx_key);
	if (!c) {
		c = xcalloc(1, sizeof(*c));
#if ANOLE_HAVE_LZMA
		c->lzma = (lzma_stream)LZMA_STREAM_INIT;
#endif
		(void)pthread_setspecific(ctx_key, c);
	}
	return c;
}

/* Forget the ratio guess: each segment must compress the same whatever
 * this thread compressed before (--threads must not change the image). */
void zalg_begin_segment(void)
{
	thread_ctx()->last_ratio = 0;
}

/* The calling thread's contexts, now (the main thread never exits early). */
void zalg_thread_cleanup(void)
{
	struct zctx *c;

	pthread_once(&ctx_once, ctx_key_init);
	c = pthread_getspecific(ctx_key);
	ctx_free(c);
	(void)pthread_setspecific(ctx_key, NULL);
}

static __attribute__((unused)) uint8_t *scratch(struct zctx *c, size_t len)
{
	if (c->scratch_len < len) {
		free(c->scratch);
		c->scratch = xmalloc(len);
		c->scratch_len = len;
	}
	return c->scratch;
}

/* ---- whole-buffer compressors, 0 = does not fit ---- */

typedef size_t (*whole_fn)(struct zctx *c, const struct zalg *z, const struct zalg_params *p,
			   const void *src, size_t len, void *dst, size_t cap, int *err);

#if ANOLE_HAVE_ZSTD
static size_t zstd_whole(struct zctx *c, const struct zalg *z, const struct zalg_params *p,
			 const void *src, size_t len, void *dst, size_t cap, int *err)
{
	size_t r;

	if (!c->zstd) {
		c->zstd = ZSTD_createCCtx();
		if (!c->zstd) {
			*err = -ENOMEM;
			return 0;
		}
		c->zstd_level = -1000;
	}
	if (c->zstd_level != z->level || c->zstd_wlog != p->zstd_windowlog) {
		ZSTD_CCtx_reset(c->zstd, ZSTD_reset_session_and_parameters);
		ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_compressionLevel, z->level);
		ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_windowLog, (int)p->zstd_windowlog);
		/* no checksum, no dictionary id: the kernel needs neither */
		ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_checksumFlag, 0);
		ZSTD_CCtx_setParameter(c->zstd, ZSTD_c_dictIDFlag, 0);
		c->zstd_level = z->level;
		c->zstd_wlog = p->zstd_windowlog;
	}
	r = ZSTD_compress2(c->zstd, dst, cap, src, len);
	if (ZSTD_isError(r)) {
		if (ZSTD_getErrorCode(r) != ZSTD_error_dstSize_tooSmall)
			*err = -EIO;
		return 0;
	}
	return r;
}

#endif /* ANOLE_HAVE_ZSTD */

#if ANOLE_HAVE_DEFLATE
static size_t deflate_whole(struct zctx *c, const struct zalg *z, const struct zalg_params *p,
			    const void *src, size_t len, void *dst, size_t cap, int *err)
{
	(void)p;
	if (!c->deflate || c->deflate_level != z->level) {
		if (c->deflate)
			libdeflate_free_compressor(c->deflate);
		c->deflate = libdeflate_alloc_compressor(z->level);
		c->deflate_level = z->level;
		if (!c->deflate) {
			*err = -ENOMEM;
			return 0;
		}
	}
	/* one byte kept free for the fix-up below */
	size_t r = cap > 1 ? libdeflate_deflate_compress(c->deflate, src, len, dst, cap - 1) : 0;
	uint8_t *d = dst;

	/*
	 * EROFS finds where a pcluster's payload starts by skipping zero
	 * bytes, and a stream that opens with a non-final stored block
	 * starts with one. Put an empty fixed-Huffman block in front
	 * (10 bits), then the stored block's own header and padding: the
	 * rest of the stream, from the stored block's LEN on, is unchanged.
	 */
	if (r && !d[0]) {
		memmove(d + 2, d + 1, r - 1);
		d[0] = 0x02;            /* BFINAL 0, BTYPE 01, end-of-block code */
		d[1] = 0x00;            /* stored block header (BFINAL 0), padding */
		r++;
	}
	return r;
}

#endif /* ANOLE_HAVE_DEFLATE */

/*
 * The largest prefix of src (up to *srclen) whose compressed form fits in
 * cap bytes. Compressed size grows with the prefix, nearly monotonically:
 * bisect between the largest prefix known to fit and the smallest known
 * not to, starting from a guess and then from the observed ratio. It
 * stops when the interval is within 1/512 of the input, or after 12 tries.
 */
static __attribute__((unused)) int fit_search(struct zctx *c, whole_fn fn, const struct zalg *z,
		      const struct zalg_params *p, const uint8_t *src, size_t *srclen,
		      uint8_t *dst, size_t cap)
{
	size_t lo = 0, hi = *srclen + 1, best = 0, guess;
	uint8_t *tmp = scratch(c, cap);
	int err = 0;

	/* start from the ratio of the previous pcluster: neighbours look alike */
	guess = (size_t)((double)cap * (c->last_ratio > 1.0 ? c->last_ratio * 0.98 : 2.0));
	if (guess > *srclen)
		guess = *srclen;
	for (int tries = 0; tries < 12 && hi - lo > 1; tries++) {
		size_t out;

		if (guess <= lo)
			guess = lo + 1;
		if (guess >= hi)
			guess = hi - 1;
		out = fn(c, z, p, src, guess, tmp, cap, &err);
		if (err)
			return err;
		if (out) {
			lo = guess;
			best = out;
			memcpy(dst, tmp, out);
			if (guess == *srclen || cap - out < 8)
				break;
			/* extrapolate from this ratio, slightly short of it */
			guess = (size_t)((double)guess * (double)cap / (double)out * 0.995);
		} else {
			hi = guess;
			guess = lo ? lo + (hi - lo) / 2 : guess / 2;
		}
		if (lo && hi - lo <= lo / 512 + 1)
			break;
	}
	*srclen = lo;
	if (best)
		c->last_ratio = (double)lo / (double)best;
	return (int)best;
}

/*
 * zstd: a streaming pass that flushes every `step` input bytes shows how
 * much input fits (flushed blocks cost a little more than one-shot ones),
 * then one-shot compression of that prefix, and one try a step longer.
 * About two compressions per pcluster instead of a dozen for bisection.
 */
#if ANOLE_HAVE_ZSTD
static int zstd_fit(struct zctx *c, const struct zalg *z, const struct zalg_params *p,
		    const uint8_t *src, size_t *srclen, uint8_t *dst, size_t cap)
{
	size_t step = cap / 8 > 512 ? cap / 8 : 512, fit = 0, best = 0, out_cap = cap * 2 + 4096;
	size_t len;
	bool extended = false;
	uint8_t *tmp = scratch(c, out_cap);
	ZSTD_outBuffer out = { tmp, out_cap, 0 };
	ZSTD_inBuffer in = { src, 0, 0 };
	int err = 0;

	/* most pclusters look like the previous one: try its ratio first */
	if (c->last_ratio > 1.0) {
		size_t guess = (size_t)((double)cap * c->last_ratio * 0.97), r;

		if (guess < *srclen) {
			r = zstd_whole(c, z, p, src, guess, tmp, cap, &err);
			if (err)
				return err;
			if (r && cap - r < cap / 32) {
				memcpy(dst, tmp, r);
				*srclen = guess;
				c->last_ratio = (double)guess / (double)r;
				return (int)r;
			}
		}
	}
	zstd_whole(c, z, p, src, 0, tmp, 0, &err);     /* set up the context */
	if (err)
		return err;
	ZSTD_CCtx_reset(c->zstd, ZSTD_reset_session_only);
	while (in.size < *srclen) {
		size_t r;

		in.size = in.size + step < *srclen ? in.size + step : *srclen;
		do {
			r = ZSTD_compressStream2(c->zstd, &out, &in, ZSTD_e_flush);
			if (ZSTD_isError(r))
				return -EIO;
		} while (r && out.pos < out.size);
		/* 3 bytes close the frame */
		if (out.pos + 3 > cap || r)
			break;
		fit = in.size;
	}
	ZSTD_CCtx_reset(c->zstd, ZSTD_reset_session_only);
	len = fit ? fit : step;
	for (;;) {
		size_t r;

		if (len > *srclen)
			len = *srclen;
		r = zstd_whole(c, z, p, src, len, tmp, cap, &err);
		if (err)
			return err;
		if (r) {
			memcpy(dst, tmp, r);
			best = r;
			fit = len;
			if (extended || len == *srclen || cap - r < cap / 64)
				break;
			/* the one-shot form left room: one step more */
			extended = true;
			len += step;
			continue;
		}
		if (best || len <= 64)
			break;
		len = len > step ? len - step : len / 2;
	}
	*srclen = best ? fit : 0;
	if (best)
		c->last_ratio = (double)fit / (double)best;
	return (int)best;
}

#endif /* ANOLE_HAVE_ZSTD */

#if ANOLE_HAVE_LZ4
static int lz4_fit(const struct zalg *z, const uint8_t *src, size_t *srclen, uint8_t *dst,
		   size_t cap)
{
	int in = *srclen > LZ4_MAX_INPUT_SIZE ? LZ4_MAX_INPUT_SIZE : (int)*srclen;
	int out;

	if (z->hc) {
		struct zctx *c = thread_ctx();

		if (!c->lz4hc_state)
			c->lz4hc_state = xmalloc((size_t)LZ4_sizeofStateHC());
		out = LZ4_compress_HC_destSize(c->lz4hc_state, (const char *)src, (char *)dst, &in,
					       (int)cap, z->level);
	} else {
		out = LZ4_compress_destSize((const char *)src, (char *)dst, &in, (int)cap);
	}
	if (out <= 0)
		return 0;
	*srclen = (size_t)in;
	return out;
}

#endif /* ANOLE_HAVE_LZ4 */

#if ANOLE_HAVE_LZMA
static int lzma_fit(struct zctx *c, const struct zalg *z, const struct zalg_params *p,
		    const uint8_t *src, size_t *srclen, uint8_t *dst, size_t cap)
{
	lzma_options_lzma opt;
	lzma_ret r;
	uint32_t preset = z->level >= 100 ? (uint32_t)(z->level - 100) | LZMA_PRESET_EXTREME :
			  (uint32_t)z->level;

	if (lzma_lzma_preset(&opt, preset))
		return -EINVAL;
	opt.dict_size = p->lzma_dict_size;
	r = lzma_microlzma_encoder(&c->lzma, &opt);
	if (r != LZMA_OK)
		return r == LZMA_MEM_ERROR ? -ENOMEM : -EINVAL;
	c->lzma_inited = true;
	c->lzma.next_in = src;
	c->lzma.avail_in = *srclen;
	c->lzma.next_out = dst;
	c->lzma.avail_out = cap;
	r = lzma_code(&c->lzma, LZMA_FINISH);
	if (r != LZMA_STREAM_END)
		return r == LZMA_MEM_ERROR ? -ENOMEM : -EIO;
	*srclen = (size_t)c->lzma.total_in;
	return (int)c->lzma.total_out;
}

#endif /* ANOLE_HAVE_LZMA */

/* zalg_parse() refuses an algorithm left out of the build, so none comes here */
int zalg_compress_fit(const struct zalg *z, const struct zalg_params *p, const void *src,
		      size_t *srclen, void *dst, size_t cap)
{
	if (!*srclen)
		return 0;
	switch (z->id) {
#if ANOLE_HAVE_LZ4
	case Z_EROFS_COMPRESSION_LZ4:
		return lz4_fit(z, src, srclen, dst, cap);
#endif
#if ANOLE_HAVE_LZMA
	case Z_EROFS_COMPRESSION_LZMA:
		return lzma_fit(thread_ctx(), z, p, src, srclen, dst, cap);
#endif
#if ANOLE_HAVE_DEFLATE
	case Z_EROFS_COMPRESSION_DEFLATE:
		return fit_search(thread_ctx(), deflate_whole, z, p, src, srclen, dst, cap);
#endif
#if ANOLE_HAVE_ZSTD
	case Z_EROFS_COMPRESSION_ZSTD:
		return zstd_fit(thread_ctx(), z, p, src, srclen, dst, cap);
#endif
	}
	return -EOPNOTSUPP;
}

static unsigned ilog2_u32(uint32_t v)
{
	unsigned r = 0;

	while (v >>= 1)
		r++;
	return r;
}

void zalg_params_init(struct zalg_params *p, uint32_t max_pcluster)
{
	uint32_t d = max_pcluster * 8;

	/* the window a decompressor needs: 8 pclusters, as mkfs.erofs uses */
	if (d > Z_EROFS_ZSTD_MAX_DICT_SIZE)
		d = Z_EROFS_ZSTD_MAX_DICT_SIZE;
	p->zstd_windowlog = ilog2_u32(d);
	d = max_pcluster * 8;
	if (d > Z_EROFS_LZMA_MAX_DICT_SIZE)
		d = Z_EROFS_LZMA_MAX_DICT_SIZE;
	if (d < 32768)
		d = 32768;
	p->lzma_dict_size = 1u << ilog2_u32(d);
}
