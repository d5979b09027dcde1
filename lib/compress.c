// SPDX-License-Identifier: Apache-2.0
#include "anole/compress.h"
#include "anole/error.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <lz4.h>
#include <lz4hc.h>
#include <zstd.h>

const char *anole_compress_name(enum anole_compress_alg alg)
{
	switch (alg) {
	case ANOLE_COMPRESS_ZSTD: return "zstd";
	case ANOLE_COMPRESS_LZ4: return "lz4";
	default: return "none";
	}
}

int anole_compress_parse(const char *spec, enum anole_compress_alg *alg, int *level)
{
	const char *colon = strchr(spec, ':');
	size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
	char *end;

	*level = 0;
	if (n == 4 && !strncmp(spec, "zstd", 4))
		*alg = ANOLE_COMPRESS_ZSTD;
	else if (n == 3 && !strncmp(spec, "lz4", 3))
		*alg = ANOLE_COMPRESS_LZ4;
	else if (n == 4 && !strncmp(spec, "none", 4))
		*alg = ANOLE_COMPRESS_NONE;
	else
		return anole_error_code(EINVAL, "unknown compression '%s' (zstd[:LEVEL], lz4[:LEVEL], none)", spec);
	if (colon) {
		long v = strtol(colon + 1, &end, 10);

		if (*end || end == colon + 1 || v < 1 || v > 22 || *alg == ANOLE_COMPRESS_NONE)
			return anole_error_code(EINVAL, "bad compression level in '%s'", spec);
		*level = (int)v;
	}
	return 0;
}

size_t anole_compress_bound(enum anole_compress_alg alg, size_t n)
{
	switch (alg) {
	case ANOLE_COMPRESS_ZSTD: return ZSTD_compressBound(n);
	case ANOLE_COMPRESS_LZ4: return (size_t)LZ4_compressBound((int)n);
	default: return n;
	}
}

/*
 * One zstd context per thread, kept: ZSTD_compress() builds and frees a
 * context (a few MiB of tables at level 3) on every call, which for 64 KiB
 * fetch units costs more than compressing them. The output is the same.
 */
static pthread_key_t zstd_key;
static pthread_once_t zstd_once = PTHREAD_ONCE_INIT;

static void free_cctx(void *cctx)
{
	ZSTD_freeCCtx(cctx);
}

static void make_zstd_key(void)
{
	if (pthread_key_create(&zstd_key, free_cctx))
		abort();
}

static ZSTD_CCtx *thread_cctx(void)
{
	ZSTD_CCtx *cctx;

	pthread_once(&zstd_once, make_zstd_key);
	cctx = pthread_getspecific(zstd_key);
	if (!cctx && (cctx = ZSTD_createCCtx()) && pthread_setspecific(zstd_key, cctx)) {
		ZSTD_freeCCtx(cctx);
		cctx = NULL;
	}
	return cctx;
}

ssize_t anole_compress(enum anole_compress_alg alg, int level, const void *in, size_t in_len,
		       void *out, size_t out_cap)
{
	switch (alg) {
	case ANOLE_COMPRESS_ZSTD: {
		ZSTD_CCtx *cctx = thread_cctx();
		size_t r = cctx ? ZSTD_compressCCtx(cctx, out, out_cap, in, in_len, level ? level : 3)
				: ZSTD_compress(out, out_cap, in, in_len, level ? level : 3);

		return ZSTD_isError(r) ? -EIO : (ssize_t)r;
	}
	case ANOLE_COMPRESS_LZ4: {
		int r;

		if (in_len > LZ4_MAX_INPUT_SIZE || out_cap > INT32_MAX)
			return -E2BIG;
		r = level > 1 ? LZ4_compress_HC(in, out, (int)in_len, (int)out_cap, level)
			      : LZ4_compress_default(in, out, (int)in_len, (int)out_cap);
		return r > 0 ? r : -EIO;
	}
	default:
		if (out_cap < in_len)
			return -E2BIG;
		memcpy(out, in, in_len);
		return (ssize_t)in_len;
	}
}

int anole_decompress(enum anole_compress_alg alg, const void *in, size_t in_len,
		     void *out, size_t out_len)
{
	switch (alg) {
	case ANOLE_COMPRESS_ZSTD: {
		size_t r = ZSTD_decompress(out, out_len, in, in_len);

		return (!ZSTD_isError(r) && r == out_len) ? 0 : -EBADMSG;
	}
	case ANOLE_COMPRESS_LZ4: {
		int r;

		if (in_len > INT32_MAX || out_len > INT32_MAX)
			return -EBADMSG;
		r = LZ4_decompress_safe(in, out, (int)in_len, (int)out_len);
		return r >= 0 && (size_t)r == out_len ? 0 : -EBADMSG;
	}
	case ANOLE_COMPRESS_NONE:
		if (in_len != out_len)
			return -EBADMSG;
		memcpy(out, in, in_len);
		return 0;
	default:
		return -EBADMSG;
	}
}
