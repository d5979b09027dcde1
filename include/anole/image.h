/* SPDX-License-Identifier: Apache-2.0 */
/* The image service's operations, as the CLI and tests call them. */
#ifndef ANOLE_IMAGE_H
#define ANOLE_IMAGE_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "anole/blobmeta.h"
#include "anole/blobstore.h"
#include "anole/strbuf.h"

/* ---- build ---- */
#define ANOLE_DEFAULT_FETCH_UNIT (64u << 10)

/* A layer's bytes from somewhere other than a file (a registry). */
struct anole_layer_stream {
	/* up to len bytes; 0 at the end; a negative errno, reported already */
	ssize_t (*read)(void *opaque, void *buf, size_t len);
	void *opaque;               /* NULL read: layers[i] is a file after all */
};

/*
 * Told about each transport blob of a build from tar layers as it is
 * written, so that it can be sent on while the build goes on (a
 * conversion to a registry). start: the blob's descriptor (open for
 * reading; dup it to keep it); grown: its length so far; end: its digest
 * once complete and kept, NULL when it is dropped (the layer failed).
 * Called on the build's thread, in order, one blob at a time.
 */
struct anole_blob_follow {
	void (*start)(void *opaque, int fd);
	void (*grown)(void *opaque, uint64_t len);
	void (*end)(void *opaque, const char *digest);
	void *opaque;
};

/* Zero fields take their defaults, the same as the CLI's. */
struct anole_chunk_key;
struct anole_build_opts {
	const char *src_dir;
	const char *output;
	/* or: tar layers (any compression libarchive reads), lowest first,
	 * merged with overlay whiteouts; needs blob_dir (one blob per layer) */
	const char *const *layers;
	const char *const *layer_names;  /* for messages, e.g. digests; may be NULL */
	unsigned nlayers;
	/* optional, per layer: read it from a stream instead of layers[i] */
	const struct anole_layer_stream *layer_streams;
	/* optional, per layer: "sha256:<hex>" and size of the layer's bytes as
	 * read (compressed), checked as they stream by, so that a layer is
	 * read once; a layer that does not match fails the build (-EBADMSG) */
	const char *const *layer_digests;
	const uint64_t *layer_sizes;
	const struct anole_blob_follow *blob_follow;   /* optional, with layers */
	/* chunk dictionary: blobs of a previous image whose chunks are reused
	 * (they become the first devices); their digests must use chunk_digest */
	const struct anole_blob_info *dict_blobs;
	unsigned ndict_blobs;
	unsigned blkszbits;         /* 0: 12 (4 KiB blocks) */
	uint64_t chunk_size;        /* power of two, 4 KiB..64 MiB; 0: flat files, or
	                               1 MiB with blob_path or blob_dir */
	const char *blob_path;      /* chunk data to this file (device 1) */
	const char *blob_dir;       /* or: a transport blob (chunks compressed one by
	                               by one) named by its digest in this dir, and
	                               its chunk table appended to the image */
	uint32_t fetch_unit;        /* for blob_dir: chunks larger than this are stored
	                               as units of this size, each compressed and
	                               verified on its own (fetched alone); a power of
	                               two >= the block size; 0: 64 KiB; >= chunk_size:
	                               whole chunks */
	const char *compress;       /* for blob_dir: "ALG[,LEVEL]" (zstd, lz4 or none,
	                               see anole_compress_parse); NULL: anole_compress_default() */
	int chunk_digest;           /* enum anole_digest_alg of chunk addresses */
	const struct anole_chunk_key *encrypt_key; /* non-NULL: every stored chunk of the
	                               blobs written is encrypted (anole/cipher.h) */
	bool have_timestamp;
	int64_t timestamp;          /* image time (--timestamp / SOURCE_DATE_EPOCH) */
	bool have_uuid;
	uint8_t uuid[16];           /* default: with have_timestamp, derived from the
	                               content (same tree, same bytes: the
	                               SOURCE_DATE_EPOCH convention); else random */
	const char *label;          /* volume name, <= 15 bytes */
	unsigned threads;           /* 0 = all CPUs */
	bool no_sync;               /* scratch outputs (pushed, then removed): not
	                               flushed to disk before they are renamed */
	bool no_dedupe_files;       /* do not share blocks of identical flat files */
	/* EROFS data compression, decompressed by the kernel on read */
	const char *data_compress;  /* "lz4", "lz4hc,12", "zstd,15"...; NULL: none */
	uint32_t pcluster_size;     /* bytes, multiple of the block size, <= 1 MiB;
	                               0: one block */
	bool no_ztailpacking;       /* no compressed tails inline after the indexes */
	bool fragments;             /* tails and small files in one packed inode */
	const char *compress_hints; /* file of "ALG|none [PCLUSTER] REGEX" rules */
};

struct anole_build_stats {
	uint64_t inodes, files, dirs, bytes_in;
	uint64_t image_bytes, blob_bytes;
	uint64_t chunks, chunks_deduped, files_deduped;
	uint64_t compact_inodes, extended_inodes, shared_xattrs;
	uint64_t compressed_files;
	char blob_digest[65];       /* sha256 hex of the blob (transport form with blob_dir) */
	uint64_t blob_uncompressed_bytes;
	/* with layers: the blobs written, in device order (device i + 1), and
	 * for each layer its device (0: the layer added no new data) */
	struct anole_blob_info *blobs;
	unsigned nblobs;
	unsigned *layer_device;
};

/* Free what a build left in its stats (blobs, layer_device). */
void anole_build_stats_free(struct anole_build_stats *st);

int anole_image_build(const struct anole_build_opts *opts, struct anole_build_stats *st);

/* ---- check ---- */
struct anole_check_opts {
	const char *image;
	const char *const *devices;
	unsigned ndevices;
	unsigned max_errors;        /* stop reporting after this many (0 = 100) */
};
struct anole_check_result {
	uint64_t inodes, dirs, files, bytes_read;
	uint64_t compressed_extents;    /* decoded and checked */
	unsigned errors;
};
/* Returns 0 when the image is sound, -EFSCORRUPTED when problems were
 * found (each reported), other -errno when it could not be checked. */
int anole_image_check(const struct anole_check_opts *opts, struct anole_check_result *res);

/* ---- unpack ---- */
struct anole_unpack_opts {
	const char *image;
	const char *dest;           /* created if missing; must be empty if it exists */
	const char *const *devices;
	unsigned ndevices;
	bool no_owner;              /* skip chown (non-root) */
	bool dense;                 /* zeros written, no holes: for a tree another
	                               build compresses (it keeps sparse files
	                               uncompressed) */
};
int anole_image_unpack(const struct anole_unpack_opts *opts);

/* ---- inspect ---- */
struct anole_inspect_opts {
	const char *image;
	const char *path;           /* NULL: the superblock summary */
	const char *const *devices;
	unsigned ndevices;
	bool json;
};
/* Appends the report (text or JSON) to out. */
int anole_image_inspect(const struct anole_inspect_opts *opts, struct strbuf *out);

/* ---- lazy mounts ---- */
enum anole_mount_mode { ANOLE_MOUNT_AUTO, ANOLE_MOUNT_KERNEL, ANOLE_MOUNT_FUSE };

struct anole_policy;
struct anole_mount_opts {
	const char *image;          /* built with --blob-dir */
	const char *mountpoint;
	const char *blobs;          /* blob store spec (see blobstore.h) */
	const char *cache_dir;      /* NULL: /var/cache/anole, or ~/.cache/anole */
	enum anole_mount_mode mode; /* auto: kernel as root, else fuse */
	bool foreground;
	const char *prefetch_list;
	const char *record_file;
	const char *metrics_addr;   /* HOST:PORT for Prometheus scrapes */
	const char *metrics_token;  /* non-NULL: scrapes must send "Authorization:
	                               Bearer" this (lib/httpd.h) */
	bool no_direct;             /* kernel mode: serve complete blobs through FUSE too */
	unsigned read_timeout_ms;   /* a read waiting for the store gets EIO after this
	                               (default 30000; LAZY_NO_TIMEOUT: never) */
	struct anole_blobstore_opts *store;
	const struct anole_policy *policy; /* non-NULL: the image must satisfy it
	                               (anole/policy.h) before any byte is used */
	const struct anole_chunk_key *decrypt_keys; /* for encrypted blobs: one per */
	unsigned ndecrypt_keys;     /* cipher, from one key file */
};
/* Returns once the mount is up (the daemon keeps running), or when the
 * daemon exits with foreground set. */
int anole_image_mount(const struct anole_mount_opts *opts);
/* Unmount and stop the daemon; lazy detaches a busy mount. */
int anole_image_umount(const char *mountpoint, bool lazy);
/* The daemon's counters (JSON or text). */
int anole_image_stats(const char *mountpoint, bool json, struct strbuf *out);
/* Default cache directory for this user. */
char *anole_default_cache_dir(void);
#endif
