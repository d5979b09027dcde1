// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the EROFS pcluster decoders (image/reader/decompress.c),
 * with pclusters made by the compression libraries themselves, laid out as
 * an EROFS writer does (payload at the end of the pcluster, zero padding
 * before it): LZ4, MicroLZMA (lzma_microlzma_encoder), raw DEFLATE and
 * Zstandard -- the last three cannot be made by Debian's mkfs.erofs 1.5.
 * Each decodes to exactly the extent; partial decoding yields a prefix;
 * a short or long strict decode, a truncated payload, an all-zero pcluster,
 * data of another algorithm are errors, never bytes. Also the uncompressed
 * shifted and interlaced forms. TAP-like output; exit 1 on failure.
 */
#include "reader/internal.h"

#include <lz4.h>
#include <lzma.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "tap.h"

#define BLK 4096u
#define DATA_LEN 70000u

static uint8_t data[DATA_LEN];

/* Text with some repetition, as files compress in practice. */
static void make_data(void)
{
	static const char *const words[] = { "erofs ", "lcluster ", "pcluster ", "zero ",
		"padding ", "kernel ", "reader ", "extent ", "\n" };
	uint32_t x = 12345;

	for (size_t i = 0; i < DATA_LEN;) {
		const char *w;

		x = x * 1103515245u + 12345u;
		w = words[(x >> 16) % 9];
		for (size_t j = 0; w[j] && i < DATA_LEN; j++)
			data[i++] = (uint8_t)w[j];
	}
}

/* Compress data[0..len) with alg; returns the payload length. */
static size_t compress_alg(unsigned alg, const uint8_t *src, size_t len, uint8_t *dst, size_t cap)
{
	switch (alg) {
	case Z_EROFS_COMPRESSION_LZ4: {
		int n = LZ4_compress_default((const char *)src, (char *)dst, (int)len, (int)cap);

		return n > 0 ? (size_t)n : 0;
	}
	case Z_EROFS_COMPRESSION_LZMA: {
		lzma_stream s = LZMA_STREAM_INIT;
		lzma_options_lzma opt;
		size_t n = 0;

		if (lzma_lzma_preset(&opt, 6))
			return 0;
		opt.dict_size = 65536;
		if (lzma_microlzma_encoder(&s, &opt) != LZMA_OK)
			return 0;
		s.next_in = src;
		s.avail_in = len;
		s.next_out = dst;
		s.avail_out = cap;
		if (lzma_code(&s, LZMA_FINISH) == LZMA_STREAM_END && !s.avail_in)
			n = (size_t)s.total_out;
		lzma_end(&s);
		return n;
	}
	case Z_EROFS_COMPRESSION_DEFLATE: {
		z_stream zs;
		size_t n = 0;

		memset(&zs, 0, sizeof(zs));
		if (deflateInit2(&zs, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
			return 0;
		zs.next_in = (Bytef *)src;
		zs.avail_in = (uInt)len;
		zs.next_out = dst;
		zs.avail_out = (uInt)cap;
		if (deflate(&zs, Z_FINISH) == Z_STREAM_END)
			n = zs.total_out;
		deflateEnd(&zs);
		return n;
	}
	default: {
		size_t n = ZSTD_compress(dst, cap, src, len, 10);

		return ZSTD_isError(n) ? 0 : n;
	}
	}
}

/* A pcluster of whole blocks holding the payload at its end. */
static uint8_t *make_pcluster(unsigned alg, const uint8_t *src, size_t len, size_t *pclen,
			      size_t *paylen)
{
	size_t cap = len + len / 8 + 1024;
	uint8_t *tmp = malloc(cap), *pcl;
	size_t n = compress_alg(alg, src, len, tmp, cap);

	*paylen = n;
	*pclen = (n + BLK - 1) / BLK * BLK;
	if (*pclen == n)
		*pclen += BLK;      /* keep at least one byte of padding */
	pcl = calloc(1, *pclen);
	memcpy(pcl + *pclen - n, tmp, n);
	free(tmp);
	return pcl;
}

static int decode(unsigned alg, const uint8_t *in, size_t inlen, uint8_t *out, size_t outlen,
		  bool partial, char *why)
{
	struct z_erofs_req rq = {
		.algorithm = alg, .in = in, .inlen = inlen, .out = out, .outlen = outlen,
		.zero_padding = true, .partial = partial, .pad_scan = BLK,
		.lzma_dict_size = 65536, .zstd_windowlog = 10,
	};

	memset(out, 0xa5, outlen);
	return z_erofs_decode(&rq, why, 256);
}

static void test_alg(unsigned alg)
{
	const char *name = erofs_algorithm_name(alg);
	size_t pclen, paylen, len = alg == Z_EROFS_COMPRESSION_ZSTD ? 60000 : DATA_LEN;
	uint8_t *pcl = make_pcluster(alg, data, len, &pclen, &paylen);
	uint8_t *out = malloc(len + 64);
	char why[256] = "";
	int ret;

	CHECK(paylen > 0 && paylen < len / 2, "%s: %zu bytes compress to %zu (pcluster %zu)",
	      name, len, paylen, pclen);

	ret = decode(alg, pcl, pclen, out, len, false, why);
	CHECK(!ret && !memcmp(out, data, len), "%s: full decode gives the extent (%d %s)", name,
	      ret, why);

	ret = decode(alg, pcl, pclen, out, 5000, true, why);
	CHECK(!ret && !memcmp(out, data, 5000), "%s: partial decode gives a prefix (%d %s)", name,
	      ret, why);

	ret = decode(alg, pcl, pclen, out, 5000, false, why);
	CHECK(ret == -EFSCORRUPTED, "%s: a strict decode of a longer pcluster fails (%d %s)", name,
	      ret, why);

	ret = decode(alg, pcl, pclen, out, len + 64, false, why);
	CHECK(ret == -EFSCORRUPTED, "%s: a pcluster short of the extent fails (%d %s)", name, ret,
	      why);
	ret = decode(alg, pcl, pclen, out, len + 64, true, why);
	CHECK(ret == -EFSCORRUPTED, "%s: ... in partial mode too (%d %s)", name, ret, why);

	/* the payload's end cut off (the pcluster ends early) */
	ret = decode(alg, pcl, pclen - 40, out, len, false, why);
	CHECK(ret == -EFSCORRUPTED, "%s: a truncated payload fails (%d %s)", name, ret, why);

	/* payload moved a block further: more leading zeros than the kernel
	 * looks through */
	{
		uint8_t *big = calloc(1, pclen + BLK);

		memcpy(big + BLK, pcl, pclen);
		ret = decode(alg, big, pclen + BLK, out, len, false, why);
		CHECK(ret == -EFSCORRUPTED && strstr(why, "all zero"),
		      "%s: no payload in the first block fails (%d %s)", name, ret, why);
		free(big);
	}
	{
		uint8_t *zero = calloc(1, pclen);

		ret = decode(alg, zero, pclen, out, len, true, why);
		CHECK(ret == -EFSCORRUPTED, "%s: an all-zero pcluster fails (%d %s)", name, ret, why);
		free(zero);
	}
	/* the payload read as another algorithm */
	ret = decode(alg == Z_EROFS_COMPRESSION_ZSTD ? Z_EROFS_COMPRESSION_LZMA
						     : Z_EROFS_COMPRESSION_ZSTD,
		     pcl, pclen, out, len, false, why);
	CHECK(ret == -EFSCORRUPTED, "%s: decoded as another algorithm fails (%d %s)", name, ret,
	      why);

	/* flipped bytes: an error or some bytes, but never a crash (ASan) */
	for (unsigned i = 0; i < 200; i++) {
		size_t at = pclen - paylen + (i * 7919u) % paylen;

		pcl[at] ^= (uint8_t)(1u << (i % 8));
		decode(alg, pcl, pclen, out, len, i & 1, why);
		pcl[at] ^= (uint8_t)(1u << (i % 8));
	}
	CHECK(1, "%s: 200 flipped payloads decoded or refused without a crash", name);
	free(pcl);
	free(out);
}

static void test_plain(void)
{
	uint8_t in[2 * BLK], out[2 * BLK];
	char why[256];
	struct z_erofs_req rq = {
		.algorithm = Z_EROFS_COMPRESSION_SHIFTED, .in = in, .inlen = sizeof(in),
		.out = out, .outlen = 5000,
	};
	bool ok = true;

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 31 + 7);
	CHECK(!z_erofs_decode(&rq, why, sizeof(why)) && !memcmp(out, in, 5000),
	      "shifted: the extent is the pcluster's start");
	rq.outlen = sizeof(in) + 1;
	CHECK(z_erofs_decode(&rq, why, sizeof(why)) == -EFSCORRUPTED,
	      "shifted: an extent longer than its pcluster fails");
	/* interlaced: an extent starting 1000 bytes into a block has its
	 * first 3096 bytes at the pcluster's end, the rest from its start */
	rq = (struct z_erofs_req){ .algorithm = Z_EROFS_COMPRESSION_INTERLACED, .in = in,
				   .inlen = sizeof(in), .out = out, .outlen = 7000,
				   .interlaced_shift = BLK - 1000 };
	CHECK(!z_erofs_decode(&rq, why, sizeof(why)), "interlaced: decodes");
	for (unsigned j = 0; j < 7000; j++)
		ok &= out[j] == in[(j + sizeof(in) - (BLK - 1000)) % sizeof(in)];
	CHECK(ok, "interlaced: the bytes are rotated by the extent's offset in its block");
	rq.algorithm = 9;
	CHECK(z_erofs_decode(&rq, why, sizeof(why)) == -EOPNOTSUPP, "unknown algorithm refused");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	make_data();
	test_alg(Z_EROFS_COMPRESSION_LZ4);
	test_alg(Z_EROFS_COMPRESSION_LZMA);
	test_alg(Z_EROFS_COMPRESSION_DEFLATE);
	test_alg(Z_EROFS_COMPRESSION_ZSTD);
	test_plain();
	printf("1..%d\n", ntests);
	printf("# %d tests, %d passed, %d failed\n", ntests, ntests - nfailed, nfailed);
	return nfailed ? 1 : 0;
}
