/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OCI images: image layouts (the bottom), and on top of them copies to and
 * from registries and the import of image tarballs. Conversion to anole's
 * accelerated form is above all of these: anole/convert.h. See docs/oci.md
 * for the media types and annotations.
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
#define OCI_MT_MANIFEST        "application/vnd.oci.image.manifest.v1+json"
#define OCI_MT_INDEX           "application/vnd.oci.image.index.v1+json"
#define OCI_MT_DOCKER_MANIFEST "application/vnd.docker.distribution.manifest.v2+json"
#define OCI_MT_DOCKER_LIST     "application/vnd.docker.distribution.manifest.list.v2+json"

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

/* Open the image TAG (NULL: the only one) of a layout; an index is resolved
 * with platform ("linux/amd64"; NULL: this host). Verifies the manifest's
 * and config's digests. */
int oci_open(struct oci_image *img, const char *dir, const char *tag, const char *platform);
void oci_close(struct oci_image *img);
/* The tag of a manifest digest's signatures, as cosign names it:
 * "sha256-<hex>.sig" (to free); and whether a tag is such a name. */
char *anole_sig_tag(const char *manifest_digest);
bool anole_is_sig_tag(const char *tag);

/* Create DIR, DIR/blobs and DIR/blobs/sha256 as needed. */
int oci_layout_init(const char *dir);
/* Write a small file of a layout (index.json, oci-layout) atomically. */
int oci_write_file(const char *dir, const char *name, const char *text);
/* Point TAG (NULL: the untagged entry) of the layout's index.json at
 * manifest, keeping every other entry. Safe against concurrent writers:
 * the read-modify-write holds DIR/.anole-index.lock and ends in a rename. */
int oci_layout_set_tag(const char *dir, const char *tag, const struct oci_descriptor *manifest);
/* DIR/blobs/<alg>/<hex> of a digest. */
char *oci_blob_path(const char *dir, const char *digest);
/* Read a whole small blob (a manifest, a config: at most 16 MiB) into out,
 * checked against the descriptor's digest and size. */
int oci_read_blob(const char *dir, const struct oci_descriptor *d, struct strbuf *out);
/* Write bytes as a blob named by their SHA-256; fills d (free it with
 * oci_descriptor_free). */
int oci_put_blob(const char *dir, const char *media_type, const void *data, size_t len,
		 struct oci_descriptor *d);
/* The same with a file's bytes. */
int oci_put_file_blob(const char *dir, const char *media_type, const char *file,
		      struct oci_descriptor *d);
/* Make a blob of one local layout present in another (hard link, else copy). */
int oci_share_blob(const char *from_dir, const char *to_dir, const char *digest);
void oci_descriptor_free(struct oci_descriptor *d);
/* {mediaType, digest, size} as a new jansson object. */
struct json_t;
struct json_t *oci_descriptor_json(const struct oci_descriptor *d);
/* The entry of an index's manifests array for platform ("os/arch[/variant]";
 * "os/arch" matches any variant; NULL: linux on this host's architecture),
 * or NULL; want receives the platform looked for, for messages. */
struct json_t *oci_index_pick(struct json_t *manifests, const char *platform, char want[160]);

struct anole_ref;
struct anole_blobstore_opts;
/* Copy an image from a registry (a docker:// reference) into a layout (an
 * oci: reference; other images of the layout stay). */
int oci_pull(const struct anole_ref *src, const struct anole_ref *dest, const char *platform,
	     const struct anole_blobstore_opts *sopts);
/* The same without the layers (manifests and configs only): for a convert
 * that streams the layers from the registry into the build. */
int oci_pull_manifests(const struct anole_ref *src, const struct anole_ref *dest,
		       const char *platform, const struct anole_blobstore_opts *sopts);
/* Copy an image of a layout to a registry: blobs the registry lacks, then
 * the manifest. bytes_pushed (may be NULL): bytes uploaded. mount_from
 * (may be NULL): a docker:// reference whose repository, when it is on the
 * same registry, lends DEST the blobs it has (cross-repository mounts). */
int oci_push(const struct anole_ref *src, const struct anole_ref *dest,
	     const struct anole_blobstore_opts *sopts, uint64_t *bytes_pushed,
	     const struct anole_ref *mount_from);

/* The manifest and metadata layer of an accelerated image in a registry,
 * fetched into cache_dir; *store is the blob store spec of its blobs.
 * (Callers want anole_ref_resolve, which uses this.) */
int oci_fetch_metadata(const struct anole_ref *ref, const char *platform, const char *cache_dir,
		       const struct anole_blobstore_opts *sopts, char **image_path, char **store);

/* Unpack an oci-archive: or docker-archive: reference into dir as an OCI
 * layout; *tag is the tag of the image there (NULL: the only one). */
int oci_import_archive(const struct anole_ref *ref, const char *dir, char **tag);

#endif
