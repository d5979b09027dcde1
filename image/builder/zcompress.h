/* SPDX-License-Identifier: Apache-2.0 */
/* Fixed-size-output compressors for EROFS pclusters (zcompress.c). */
#ifndef ANOLE_ZCOMPRESS_H
#define ANOLE_ZCOMPRESS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anole/erofs_fs.h"

struct zalg {
	int id;                     /* Z_EROFS_COMPRESSION_* */
	bool hc;                    /* LZ4: the HC compressor */
	int level;
	const char *name;           /* "lz4", "lz4hc", ... */
};

/* Image-wide parameters, also written in the algorithm config records. */
struct zalg_params {
	unsigned zstd_windowlog;
	uint32_t lzma_dict_size;
};

/* "lz4", "lz4hc,12", "zstd,19", "lzma,109", "deflate,9" (see
 * anole_compress_spec_parse); what names the option or file in messages */
int zalg_parse(const char *what, const char *spec, struct zalg *z);
void zalg_params_init(struct zalg_params *p, uint32_t max_pcluster);

/*
 * Compress the longest prefix of src[0, *srclen) that fits in cap bytes.
 * Returns the compressed size and sets *srclen to the bytes consumed;
 * 0 when nothing useful fits; -errno on failure.
 */
int zalg_compress_fit(const struct zalg *z, const struct zalg_params *p, const void *src,
		      size_t *srclen, void *dst, size_t cap);
/* Start a segment: no state of earlier work may change its output. */
void zalg_begin_segment(void);
/* Free the calling thread's compression contexts. */
void zalg_thread_cleanup(void);
#endif
