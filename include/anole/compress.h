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
/*
 * One syntax names a compressor and its level wherever anole takes one
 * (--compress, -z, --compress-hints): "ALG" or "ALG,LEVEL", as mkfs.erofs
 * writes it. "ALG:LEVEL", the first spelling of --compress, stays accepted.
 * Each use lists the algorithms it offers, with their levels.
 */
struct anole_compress_choice {
	const char *name;
	int def_level;              /* when the spec gives none */
	int min_level, max_level;   /* both 0: the algorithm takes no level */
	int min_level2, max_level2; /* a second range (lzma's extreme presets), or 0, 0 */
	const char *missing;        /* the meson feature this anole was built without, or NULL */
};

/*
 * Look spec up in choices[0, n) (names compare case-insensitively). Returns
 * the index of its algorithm and sets *level; on bad input, -EINVAL with a
 * message "WHAT 'SPEC': ..." saying what is wrong and what is allowed; for an
 * algorithm this anole was built without, -EOPNOTSUPP naming the feature.
 */
int anole_compress_spec_parse(const char *what, const char *spec,
			      const struct anole_compress_choice *choices, size_t n, int *level);

/* Transport compression of blob chunks: "zstd[,1-22]", "lz4[,1-12]" (a
 * level above 1 is LZ4HC), "none"; level 0 is the compressor's default.
 * what names the option in messages ("--compress"). */
int anole_compress_parse(const char *what, const char *spec, enum anole_compress_alg *alg,
			 int *level);

/* The default for blob chunks: zstd, or lz4, or none, whichever this anole
 * was built with first (each is optional: `anole features`). */
enum anole_compress_alg anole_compress_default(void);
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
