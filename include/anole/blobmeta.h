/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The anole extension of a metadata image: how to fetch the chunks of its
 * blobs in transport form (each chunk compressed on its own, so that any
 * chunk is one HTTP range request), and how to verify them.
 *
 * It is appended to the EROFS image, after superblock.blocks * blksz, so the
 * kernel and erofs-utils ignore it:
 *
 *   [EROFS image][header][blob records][chunk tables][footer (64 bytes)]
 *
 * The footer is the last 64 bytes of the file and locates the extension and
 * its SHA-256. See docs/image-format.md.
 */
#ifndef ANOLE_BLOBMETA_H
#define ANOLE_BLOBMETA_H
#include <assert.h>
#include <stdint.h>
#include <sys/types.h>

#include "anole/compress.h"
#include "anole/digest.h"

#define ANOLE_EXT_FOOTER_MAGIC "ANOLEXT1"
#define ANOLE_EXT_HEADER_MAGIC "ANOLEBT1"
#define ANOLE_EXT_VERSION 1
#define ANOLE_EXT_MAX_BLOBS 1024
#define ANOLE_EXT_MAX_CHUNKS (1u << 26)

struct anole_ext_footer {
	char magic[8];              /* ANOLEXT1 */
	uint64_t ext_offset;        /* where the header starts */
	uint64_t ext_size;          /* header + records + tables, without the footer */
	uint8_t ext_sha256[32];     /* SHA-256 of those ext_size bytes */
	uint8_t reserved[8];
};
static_assert(sizeof(struct anole_ext_footer) == 64, "footer is 64 bytes");

struct anole_ext_header {
	char magic[8];              /* ANOLEBT1 */
	uint32_t version;
	uint32_t nblobs;
	uint8_t reserved[48];
};
static_assert(sizeof(struct anole_ext_header) == 64, "ext header is 64 bytes");

struct anole_ext_blob {
	uint8_t digest[32];         /* SHA-256 of the transport blob: its name */
	uint64_t compressed_size;   /* transport blob size */
	uint64_t uncompressed_size; /* the device the EROFS chunk indexes address */
	uint64_t table_offset;      /* chunk table, from the header's start */
	uint32_t nchunks;
	uint32_t chunk_size;        /* nominal (largest) chunk size */
	uint16_t device_id;         /* EROFS extra device number (1..) */
	uint8_t chunk_digest;       /* enum anole_digest_alg */
	uint8_t compression;        /* enum anole_compress_alg (the build's choice) */
	/*
	 * Fetch units (added in version 1; 0 in older images): a chunk larger
	 * than unit_size is stored as several table entries of at most
	 * unit_size bytes, each compressed and digested on its own, so that a
	 * reader fetches and verifies less than a chunk. The split table lists
	 * those chunks with the digest of the whole chunk (chunk dictionaries
	 * match whole chunks). A reader that ignores these fields treats every
	 * entry as a chunk, which stays correct.
	 */
	uint32_t unit_size;         /* nominal fetch unit; 0: entries are whole chunks */
	uint64_t split_offset;      /* split table, from the header's start */
	uint32_t nsplits;
	/*
	 * Encryption (0 in older images): every stored entry is encrypted
	 * with this enum anole_cipher_alg, its IV derived from its table entry
	 * (image/blobmeta.c, anole_chunk_iv_input); key_check tells the key
	 * (anole/cipher.h). A reader that ignores these fields gets entries that
	 * fail their digests: an error, never wrong data.
	 */
	uint8_t cipher;
	uint8_t key_check[8];
	uint8_t reserved[11];
};
static_assert(sizeof(struct anole_ext_blob) == 104, "ext blob record is 104 bytes");

/* Sorted by uncompressed_offset; chunks do not overlap in either view. */
struct anole_ext_chunk {
	uint64_t uncompressed_offset;
	uint64_t compressed_offset;
	uint32_t uncompressed_size;
	uint32_t compressed_size;
	uint8_t compression;        /* per chunk: NONE when it did not shrink */
	uint8_t reserved[7];
	uint8_t digest[32];         /* of the uncompressed bytes */
};
static_assert(sizeof(struct anole_ext_chunk) == 64, "ext chunk is 64 bytes");

/* A chunk stored as `count` consecutive entries (its fetch units), sorted by
 * `first`; the units are adjacent in the uncompressed view. */
struct anole_ext_split {
	uint32_t first;             /* its first entry in the chunk table */
	uint32_t count;             /* entries, >= 2 */
	uint8_t digest[32];         /* of the whole uncompressed chunk */
};
static_assert(sizeof(struct anole_ext_split) == 40, "ext split is 40 bytes");

/* Parsed, validated, host-endian view. */
struct anole_blob_info {
	uint8_t digest[32];
	char name[72];              /* "sha256:<hex>" */
	char hex[65];
	uint64_t compressed_size, uncompressed_size;
	uint32_t nchunks, chunk_size;   /* entries (fetch units), nominal chunk size */
	uint32_t unit_size;               /* 0: entries are whole chunks */
	uint32_t nsplits;
	struct anole_ext_split *splits;   /* host-endian copies (NULL if none) */
	unsigned device_id;
	enum anole_digest_alg chunk_digest;
	enum anole_compress_alg compression;
	struct anole_ext_chunk *chunks;   /* host-endian copies, one per entry */
	uint8_t cipher;                   /* enum anole_cipher_alg; 0: clear */
	uint8_t key_check[8];
};

struct anole_blobmeta {
	unsigned nblobs;
	struct anole_blob_info *blobs;
	uint64_t erofs_size;              /* bytes before the extension */
};

/* Read and validate the extension of an image file. -ENOENT: the image has
 * none (a plain EROFS image); -EFSCORRUPTED: present but invalid. */
int anole_blobmeta_read(int fd, const char *path, struct anole_blobmeta *meta);
void anole_blobmeta_free(struct anole_blobmeta *meta);

/* Index of the chunk holding uncompressed offset `off`, or -1 (padding/hole). */
long anole_blob_find_chunk(const struct anole_blob_info *blob, uint64_t off);

/* What names an entry for its IV (anole_chunk_crypt): its plaintext digest,
 * sizes, compression and offset in the transport blob, little-endian. */
#define ANOLE_CHUNK_IV_INPUT_SIZE 57
void anole_chunk_iv_input(const struct anole_ext_chunk *c, uint8_t out[ANOLE_CHUNK_IV_INPUT_SIZE]);

/* Serialize: the bytes to append after the EROFS image (ext + footer). */
struct strbuf;
void anole_blobmeta_serialize(const struct anole_blobmeta *meta, uint64_t ext_offset,
			      struct strbuf *out);
#endif
