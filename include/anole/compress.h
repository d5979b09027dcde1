/* SPDX-License-Identifier: Apache-2.0 */
/* Whole-buffer compression through libzstd and liblz4. */
#ifndef ANOLE_COMPRESS_H
#define ANOLE_COMPRESS_H
#include <stddef.h>
#include <sys/types.h>

enum anole_compress_alg {
	ANOLE_COMPRESS_NONE = 0,
	ANOLE_COMPRESS_ZSTD = 1,
	ANOLE_COMPRESS_LZ4 = 2,
};

const char *anole_compress_name(enum anole_compress_alg alg);
/* The default for blob chunks: zstd, or lz4, or none, whichever this anole
 * was built with first (each is optional: `anole features`). */
enum anole_compress_alg anole_compress_default(void);
/* "zstd", "zstd:19", "lz4", "none" -> alg and level (0 = default). */
int anole_compress_parse(const char *spec, enum anole_compress_alg *alg, int *level);
/* Worst-case output size for n input bytes. */
size_t anole_compress_bound(enum anole_compress_alg alg, size_t n);
/* Returns the compressed size, or -errno. */
ssize_t anole_compress(enum anole_compress_alg alg, int level, const void *in, size_t in_len,
		       void *out, size_t out_cap);
/* Decompress exactly out_len bytes; anything else (short, long, malformed)
 * is -EBADMSG. Safe on hostile input. */
int anole_decompress(enum anole_compress_alg alg, const void *in, size_t in_len,
		     void *out, size_t out_len);
#endif
