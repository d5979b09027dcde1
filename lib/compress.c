// SPDX-License-Identifier: Apache-2.0
#include "anole/compress.h"
#include "anole/error.h"

#include "anole_features.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
/* both are optional (meson features): a blob compressed with one left out
 * gets a clear error, never a silent failure */
#if ANOLE_HAVE_LZ4
#include <lz4.h>
#include <lz4hc.h>
#endif
#if ANOLE_HAVE_ZSTD
#include <zstd.h>
#endif

#if !ANOLE_HAVE_LZ4 || !ANOLE_HAVE_ZSTD
static int not_built(enum anole_compress_alg alg)
{
	return anole_error_code(-EOPNOTSUPP, "%s compression: anole was built without %s (see "
				"`anole features`)", anole_compress_name(alg),
				anole_compress_name(alg));
}
#endif

const char *anole_compress_name(enum anole_compress_alg alg)
{
	switch (alg) {
	case ANOLE_COMPRESS_ZSTD: return "zstd";
	case ANOLE_COMPRESS_LZ4: return "lz4";
	default: return "none";
	}
}

enum anole_compress_alg anole_compress_default(void)
{
	return ANOLE_HAVE_ZSTD ? ANOLE_COMPRESS_ZSTD :
	       ANOLE_HAVE_LZ4 ? ANOLE_COMPRESS_LZ4 : ANOLE_COMPRESS_NONE;
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
	/* refused here, not at the first chunk: a chunk that fails to
	 * compress is stored as is */
#if !ANOLE_HAVE_ZSTD
	if (*alg == ANOLE_COMPRESS_ZSTD)
		return not_built(*alg);
#endif
#if !ANOLE_HAVE_LZ4
	if (*alg == ANOLE_COMPRESS_LZ4)
		return not_built(*alg);
#endif
	return 0;
}

size_t anole_compress_bound(enum anole_compress_alg alg, size_t n)
{
	switch (alg) {
#if ANOLE_HAVE_ZSTD
	case ANOLE_COMPRESS_ZSTD: return ZSTD_compressBound(n);
#endif
#if ANOLE_HAVE_LZ4
	case ANOLE_COMPRESS_LZ4: return (size_t)LZ4_compressBound((int)n);
#endif
	default: return n;
	}
}

ssize_t anole_compress(enum anole_compress_alg alg, int level, const void *in, size_t in_len,
		       void *out, size_t out_cap)
{
	switch (alg) {
#if ANOLE_HAVE_ZSTD
	case ANOLE_COMPRESS_ZSTD: {
		size_t r = ZSTD_compress(out, out_cap, in, in_len, level ? level : 3);

		return ZSTD_isError(r) ? -EIO : (ssize_t)r;
	}
#else
	case ANOLE_COMPRESS_ZSTD:
		return not_built(alg);
#endif
#if ANOLE_HAVE_LZ4
	case ANOLE_COMPRESS_LZ4: {
		int r;

		if (in_len > LZ4_MAX_INPUT_SIZE || out_cap > INT32_MAX)
			return -E2BIG;
		r = level > 1 ? LZ4_compress_HC(in, out, (int)in_len, (int)out_cap, level)
			      : LZ4_compress_default(in, out, (int)in_len, (int)out_cap);
		return r > 0 ? r : -EIO;
	}
#else
	case ANOLE_COMPRESS_LZ4:
		return not_built(alg);
#endif
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
#if ANOLE_HAVE_ZSTD
	case ANOLE_COMPRESS_ZSTD: {
		size_t r = ZSTD_decompress(out, out_len, in, in_len);

		return (!ZSTD_isError(r) && r == out_len) ? 0 : -EBADMSG;
	}
#else
	case ANOLE_COMPRESS_ZSTD:
		return not_built(alg);
#endif
#if ANOLE_HAVE_LZ4
	case ANOLE_COMPRESS_LZ4: {
		int r;

		if (in_len > INT32_MAX || out_len > INT32_MAX)
			return -EBADMSG;
		r = LZ4_decompress_safe(in, out, (int)in_len, (int)out_len);
		return r >= 0 && (size_t)r == out_len ? 0 : -EBADMSG;
	}
#else
	case ANOLE_COMPRESS_LZ4:
		return not_built(alg);
#endif
	case ANOLE_COMPRESS_NONE:
		if (in_len != out_len)
			return -EBADMSG;
		memcpy(out, in, in_len);
		return 0;
	default:
		return -EBADMSG;
	}
}
