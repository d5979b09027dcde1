/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI images: reading image layouts and converting them to anole's
 * accelerated form (one metadata layer + one blob layer per source layer
 * that has data), written as an OCI image layout. See docs/oci.md for the
 * media types and annotations.
 */
#ifndef ANOLE_OCI_H
#define ANOLE_OCI_H
#include <stdbool.h>
#include <stdint.h>

#include "anole/strbuf.h"

#define ANOLE_MT_METADATA "application/vnd.anole.image.metadata.v1.erofs"
#define ANOLE_MT_BLOB     "application/vnd.anole.image.blob.v1"
#define ANOLE_ANN_SOURCE  "org.openanolis.anole.source.manifest"
#define ANOLE_ANN_DEVICE  "org.openanolis.anole.blob.device"
#define ANOLE_ANN_USIZE   "org.openanolis.anole.blob.uncompressed-size"

struct oci_descriptor {
	char *media_type;
	char *digest;           /* "sha256:<hex>" */
	uint64_t size;
};

struct oci_image {
	char *dir;              /* OCI layout directory */
	char *tag;
	struct oci_descriptor manifest;
	struct oci_descriptor config;
	struct oci_descriptor *layers;
	unsigned nlayers;
	bool accelerated;       /* an anole image: metadata + blob layers */
	int metadata_layer;     /* index of the metadata layer, or -1 */
};

/* Parse "oci:DIR[:TAG]" (or a plain DIR[:TAG]). */
int oci_parse_ref(const char *ref, char **dir, char **tag);
/* Open the image TAG (NULL: the only one) of a layout; an index is resolved
 * with platform ("linux/amd64"; NULL: this host). Verifies the manifest's
 * and config's digests. */
int oci_open(struct oci_image *img, const char *dir, const char *tag, const char *platform);
void oci_close(struct oci_image *img);
/* Create DIR, DIR/blobs and DIR/blobs/sha256 as needed. */
int oci_layout_init(const char *dir);
/* Write a small file of a layout (index.json, oci-layout) atomically. */
int oci_write_file(const char *dir, const char *name, const char *text);
/* DIR/blobs/<alg>/<hex> of a digest. */
char *oci_blob_path(const char *dir, const char *digest);

/* docker://HOST[:PORT]/REPO[:TAG|@DIGEST] -> store spec and reference. */
int oci_parse_registry_ref(const char *ref, char **store, char **reference);
struct anole_blobstore_opts;
/* Copy an image from a registry into an OCI layout (oci:DIR[:TAG]). */
int oci_pull(const char *src, const char *dest, const char *platform,
	     const struct anole_blobstore_opts *sopts);
/* The same without the layers (manifests and configs only): for a convert
 * that streams the layers from the registry into the build. */
int oci_pull_manifests(const char *src, const char *dest, const char *platform,
		       const struct anole_blobstore_opts *sopts);
/* Copy an image of a layout to a registry: blobs the registry lacks, then
 * the manifest. bytes_pushed (may be NULL): bytes uploaded. */
int oci_push(const char *src, const char *dest, const struct anole_blobstore_opts *sopts,
	     uint64_t *bytes_pushed);
/* Same; blobs DEST lacks are first mounted from mount_from's repository
 * (a docker:// reference) when it is on the same registry. */
int oci_push_from(const char *src, const char *dest, const struct anole_blobstore_opts *sopts,
		  uint64_t *bytes_pushed, const char *mount_from);

/* The manifest and metadata layer of an accelerated image in a registry,
 * fetched into cache_dir; *store is the blob store spec of its blobs. */
int oci_fetch_metadata(const char *ref, const char *cache_dir,
		       const struct anole_blobstore_opts *sopts, char **image_path, char **store);

/* Unpack oci-archive:FILE[:TAG] or docker-archive:FILE[:TAG] into dir as
 * an OCI layout; *layout_ref is the oci: reference to convert from. */
int oci_import_archive(const char *ref, const char *dir, char **layout_ref);

/* Zero fields take their defaults (those of struct anole_build_opts). */
struct oci_convert_opts {
	const char *src;        /* oci:DIR[:TAG] */
	const char *dest;       /* oci:DIR[:TAG] */
	const char *platform;
	uint64_t chunk_size;    /* 0: 1 MiB */
	const char *compress;   /* "ALG[,LEVEL]" of the blobs; NULL: zstd */
	int chunk_digest;
	unsigned threads;
	bool json;
	const struct anole_blobstore_opts *store;   /* for docker:// SRC or DEST */
	const char *chunk_dict;   /* a previous accelerated image (oci: or docker://) */
};
/* Appends a summary (text or JSON) to out. */
int oci_convert(const struct oci_convert_opts *opts, struct strbuf *out);
#endif
