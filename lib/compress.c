// SPDX-License-Identifier: Apache-2.0
#include "anole/compress.h"
#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include "anole_features.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
/* both are optional (meson features): a blob compressed with one left out
 * gets a clear error, never a silent failure */
#if ANOLE_HAVE_LZ4
#include <lz4.h>
#include <lz4hc.h>
#endif
#if ANOLE_HAVE_ZSTD
#include <zstd.h>
#endif
#if ANOLE_HAVE_LZ4
_Static_assert(LZ4HC_CLEVEL_MAX == 12, "the lz4 level range below says 12");
#endif

#if !ANOLE_HAVE_LZ4 || !ANOLE_HAVE_ZSTD
static int not_built(enum anole_compress_alg alg)
{
	return anole_error_code(EOPNOTSUPP, "%s compression: anole was built without %s (see "
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

static bool level_in(const struct anole_compress_choice *c, long v)
{
	return (v >= c->min_level && v <= c->max_level) ||
	       (c->max_level2 && v >= c->min_level2 && v <= c->max_level2);
}

static void add_names(struct strbuf *sb, const struct anole_compress_choice *choices, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct anole_compress_choice *c = &choices[i];

		strbuf_addf(sb, "%s%s", i ? ", " : "", c->name);
		if (c->max_level > c->min_level)
			strbuf_addf(sb, "[,%d-%d", c->min_level, c->max_level);
		if (c->max_level2)
			strbuf_addf(sb, "|%d-%d", c->min_level2, c->max_level2);
		if (c->max_level > c->min_level)
			strbuf_addch(sb, ']');
	}
}

int anole_compress_spec_parse(const char *what, const char *spec,
			      const struct anole_compress_choice *choices, size_t n, int *level)
{
	/* ',' is the documented separator; ':' the older alias */
	size_t len = strcspn(spec, ",:");
	const char *lv = spec[len] ? spec + len + 1 : NULL;
	struct strbuf sb = STRBUF_INIT;
	int ret;

	for (size_t i = 0; i < n; i++) {
		const struct anole_compress_choice *c = &choices[i];
		char *end;
		long v;

		if (strlen(c->name) != len || strncasecmp(spec, c->name, len))
			continue;
		if (c->missing)
			return anole_error_code(EOPNOTSUPP, "%s '%s': anole was built without %s "
						"(see `anole features`)", what, spec, c->missing);
		if (!lv) {
			*level = c->def_level;
			return (int)i;
		}
		if (!c->max_level && !c->max_level2) {
			return anole_error_code(EINVAL, "%s '%s': %s takes no level", what, spec,
						c->name);
		}
		errno = 0;
		v = strtol(lv, &end, 10);
		if (!errno && end != lv && !*end && level_in(c, v)) {
			*level = (int)v;
			return (int)i;
		}
		if (c->max_level2)
			strbuf_addf(&sb, "%d-%d or %d-%d", c->min_level, c->max_level,
				    c->min_level2, c->max_level2);
		else if (c->max_level > c->min_level)
			strbuf_addf(&sb, "%d-%d", c->min_level, c->max_level);
		else
			strbuf_addf(&sb, "%d", c->min_level);
		ret = anole_error_code(EINVAL, "%s '%s': level must be %s for %s", what, spec,
				       sb.buf, c->name);
		strbuf_release(&sb);
		return ret;
	}
	add_names(&sb, choices, n);
	ret = anole_error_code(EINVAL, "%s '%s': unknown algorithm (ALG[,LEVEL] with %s)", what,
			       spec, sb.buf);
	strbuf_release(&sb);
	return ret;
}

int anole_compress_parse(const char *what, const char *spec, enum anole_compress_alg *alg,
			 int *level)
{
	/* in the order of enum anole_compress_alg */
	static const struct anole_compress_choice choices[] = {
		[ANOLE_COMPRESS_NONE] = { .name = "none" },
		/* refused here, not at the first chunk: a chunk that fails to
		 * compress is stored as is */
		[ANOLE_COMPRESS_ZSTD] = { .name = "zstd", .min_level = 1, .max_level = 22,
					  .missing = ANOLE_HAVE_ZSTD ? NULL : "zstd" },
		[ANOLE_COMPRESS_LZ4] = { .name = "lz4", .min_level = 1,
					 .max_level = 12 /* LZ4HC_CLEVEL_MAX */,
					 .missing = ANOLE_HAVE_LZ4 ? NULL : "lz4" },
	};
	int i = anole_compress_spec_parse(what, spec, choices, ARRAY_SIZE(choices), level);

	if (i < 0)
		return i;
	*alg = (enum anole_compress_alg)i;
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

#if ANOLE_HAVE_ZSTD
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
#endif

ssize_t anole_compress(enum anole_compress_alg alg, int level, const void *in, size_t in_len,
		       void *out, size_t out_cap)
{
	switch (alg) {
#if ANOLE_HAVE_ZSTD
	case ANOLE_COMPRESS_ZSTD: {
		ZSTD_CCtx *cctx = thread_cctx();
		size_t r = cctx ? ZSTD_compressCCtx(cctx, out, out_cap, in, in_len, level ? level : 3)
				: ZSTD_compress(out, out_cap, in, in_len, level ? level : 3);

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
