/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Lazy blobs: the uncompressed view of a transport blob (what the EROFS
 * chunk indexes address), filled on demand from a blob store, chunk by
 * chunk, verified by digest, and cached on disk with a persistent
 * presence map.
 *
 * Cache layout, per blob: CACHE/<hex>/data (sparse, the uncompressed view),
 * CACHE/<hex>/map (one bit per chunk), CACHE/<hex>/lock (flock: in use).
 */
#ifndef ANOLE_LAZY_H
#define ANOLE_LAZY_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "anole/blobmeta.h"
#include "anole/blobstore.h"

#define LAZY_HIST_BUCKETS 24        /* fetch latency, log2 microseconds */

struct lazy_stats {
	uint64_t reads, read_bytes;       /* requests served */
	uint64_t chunk_hits, chunk_misses;
	uint64_t chunks_fetched, bytes_fetched;   /* compressed bytes over the wire */
	uint64_t fetch_requests;          /* range requests (coalesced) */
	uint64_t fetch_errors, verify_failures, cache_refetches;
	uint64_t latency_us_hist[LAZY_HIST_BUCKETS];
	uint64_t latency_us_sum;
};

struct lazy_blob;
struct lazy_cache;
struct anole_chunk_key;

/* Hook called the first time a chunk is needed (for --record). */
typedef void (*lazy_first_use_fn)(void *opaque, struct lazy_blob *blob, uint32_t chunk);

struct lazy_cache_opts {
	const char *dir;                  /* cache directory (created) */
	struct anole_blobstore *store;
	uint64_t max_fetch_bytes;         /* largest coalesced request (default 8 MiB) */
	unsigned verify_retries;          /* refetches after a bad digest (default 2) */
	unsigned read_timeout_ms;         /* a read that needs fetching ends by then,
	                                     with -EIO if the store has not answered
	                                     (default 30000; LAZY_NO_TIMEOUT: none) */
	lazy_first_use_fn first_use;
	void *first_use_opaque;
	const struct anole_chunk_key *keys; /* decrypt encrypted blobs (anole/cipher.h):
	                                     the one of the blob's cipher; a blob
	                                     without one, or whose key check differs,
	                                     is refused by add_blob */
	unsigned nkeys;
};

#define LAZY_NO_TIMEOUT (~0u)

int lazy_cache_open(struct lazy_cache **out, const struct lazy_cache_opts *opts);
void lazy_cache_close(struct lazy_cache *cache);

/* Attach a blob (its chunk table from the image). The blob stays valid until
 * the cache is closed. */
int lazy_cache_add_blob(struct lazy_cache *cache, const struct anole_blob_info *info,
			struct lazy_blob **out);

/* Read the uncompressed view: fetch, verify, cache what is missing. Returns
 * 0 or -errno (-EIO when the data cannot be had intact: never wrong bytes). */
int lazy_blob_read(struct lazy_blob *blob, void *buf, size_t len, uint64_t off);
/* Make [off, off + len) present and verified, without copying it: the
 * bytes can then be read from lazy_blob_data_fd() (zero-copy replies). */
int lazy_blob_prepare(struct lazy_blob *blob, size_t len, uint64_t off);
/* The same, and when what follows the range is missing, fetch up to
 * ahead_end with it in the same request (a streaming reader). */
int lazy_blob_prepare_ahead(struct lazy_blob *blob, size_t len, uint64_t off, uint64_t ahead_end);
int lazy_blob_data_fd(const struct lazy_blob *blob);
/* Path of the cached data file (the blob at its own offsets). */
const char *lazy_blob_data_path(const struct lazy_blob *blob);
/* Every chunk cached and verified (cached chunks this run has not verified
 * are checked now; corrupt ones are fetched again). */
bool lazy_blob_complete(struct lazy_blob *blob);
/* Make chunks [first, last] present (prefetch). */
int lazy_blob_fetch_chunks(struct lazy_blob *blob, uint32_t first, uint32_t last);

/*
 * Every read and fetch above ends within read_timeout_ms of its start. A
 * caller serving one request with several of them (a FUSE read of a file
 * spans chunks of several blob reads) gives them one deadline: between
 * begin and end, this thread's reads end by begin's time + read_timeout_ms.
 */
void lazy_cache_begin_request(struct lazy_cache *cache);
void lazy_cache_end_request(void);

const struct anole_blob_info *lazy_blob_info(const struct lazy_blob *blob);
uint64_t lazy_blob_size(const struct lazy_blob *blob);
uint32_t lazy_blob_present_chunks(struct lazy_blob *blob);

void lazy_cache_get_stats(struct lazy_cache *cache, struct lazy_stats *st);

/* Cache maintenance (no daemon needed). */
struct lazy_cache_entry {
	char hex[65];
	uint64_t bytes;                   /* disk usage of data + map */
	uint64_t chunks_present, chunks;  /* from the map (chunks 0 if unknown) */
	int64_t last_used;                /* seconds since the epoch */
	bool in_use;
};
int lazy_cache_list(const char *dir, struct lazy_cache_entry **out, size_t *n);
/* Evict unused blobs, least recently used first, until the cache is at most
 * max_bytes. Returns the number of blobs evicted or -errno. */
int lazy_cache_gc(const char *dir, uint64_t max_bytes, uint64_t *freed);
#endif
