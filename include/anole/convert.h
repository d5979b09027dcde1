/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Conversion of an OCI image to anole's accelerated form (one metadata
 * layer + one blob layer per source layer that has data), written as an
 * OCI image layout or pushed to a registry. Above the layout, registry and
 * archive modules (anole/oci.h); see docs/oci.md.
 */
#ifndef ANOLE_CONVERT_H
#define ANOLE_CONVERT_H
#include <stdbool.h>
#include <stdint.h>

/* Zero fields take their defaults (those of struct anole_build_opts). */
struct anole_chunk_key;
struct oci_convert_opts {
	const char *src;        /* oci:, docker://, oci-archive: or docker-archive: (anole/ref.h) */
	const char *dest;       /* oci:DIR[:TAG] or docker://HOST/REPO[:TAG] */
	const char *platform;
	uint64_t chunk_size;    /* 0: 1 MiB */
	const char *compress;   /* "ALG[,LEVEL]" of the blobs; NULL: anole_compress_default() */
	int chunk_digest;
	unsigned threads;
	const struct anole_blobstore_opts *store;   /* for docker:// SRC or DEST */
	const char *chunk_dict;   /* a previous accelerated image (oci: or docker://) */
	const struct anole_chunk_key *encrypt_key;  /* non-NULL: blobs encrypted */
};

/* What a conversion made; the caller formats it. */
struct oci_convert_result {
	char *source_manifest;          /* digest of the source image's manifest */
	char *manifest;                 /* digest of the accelerated image's manifest */
	char *metadata;                 /* digest of its metadata layer */
	uint64_t metadata_bytes;
	unsigned blobs;                 /* blob layers */
	uint64_t blob_bytes;
	unsigned source_layers;
	uint64_t chunks, chunks_deduped;
	bool pushed;                    /* DEST was a registry, and the push is done */
	uint64_t bytes_pushed;          /* bytes uploaded (blobs it lacked) */
};
/* Fills res (free it with oci_convert_result_free) on success. */
int oci_convert(const struct oci_convert_opts *opts, struct oci_convert_result *res);
void oci_convert_result_free(struct oci_convert_result *res);
#endif
