// SPDX-License-Identifier: Apache-2.0
/*
 * The chunk cache behind lazy mounts.
 *
 * Each chunk of a blob is ABSENT, FETCHING (one thread owns it; others
 * wait), UNVERIFIED (marked present in the map by an earlier run: its
 * digest is checked once before use) or VERIFIED. A reader claims every
 * chunk of its range that needs work in one step under the lock and waits
 * only while holding no claim, so readers never deadlock; runs of adjacent
 * missing chunks are fetched with one range request. A chunk's bytes reach
 * the reader only after its digest matched: a wrong byte is never served.
 */
#include "anole/lazy.h"
#include "anole/cipher.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/privdir.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

enum { CHUNK_ABSENT, CHUNK_FETCHING, CHUNK_UNVERIFIED, CHUNK_VERIFIED };

struct lazy_counters {
	_Atomic uint64_t reads, read_bytes, chunk_hits, chunk_misses, chunks_fetched,
		bytes_fetched, fetch_requests, fetch_errors, verify_failures, cache_refetches,
		latency_us_sum;
	_Atomic uint64_t hist[LAZY_HIST_BUCKETS];
};

struct lazy_blob {
	struct lazy_cache *cache;
	struct anole_blob_info info;
	const struct anole_chunk_key *key; /* of an encrypted blob (cache opts keys) */
	char *data_path;           /* the cached data: the blob at its own offsets */
	int data_fd, map_fd, lock_fd;
	uint8_t *state;
	uint8_t *bitmap;
	uint8_t *touched;          /* first use in this run, for --record */
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

struct lazy_cache {
	struct lazy_cache_opts opts;
	char *dir;
	int dir_fd;                /* checked once (privdir.h); all else is relative to it */
	struct lazy_blob **blobs;
	size_t nblobs, blobs_alloc;
	_Atomic uint64_t stalled_until; /* ms: a fetch ran out of time (see fetch_chunks) */
	struct lazy_counters c;
};

#define STAT_ADD(cache, field, n) atomic_fetch_add(&(cache)->c.field, (n))
#define DEFAULT_READ_TIMEOUT_MS 30000

/* lazy_cache_begin_request: the deadline of the request this thread serves */
static _Thread_local uint64_t request_deadline_ms;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);    /* the blob store's clock too */
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* When a read starting now must end (0: never). */
static uint64_t read_deadline(const struct lazy_cache *cache)
{
	if (cache->opts.read_timeout_ms == LAZY_NO_TIMEOUT)
		return 0;
	return request_deadline_ms ? request_deadline_ms : now_ms() + cache->opts.read_timeout_ms;
}

void lazy_cache_begin_request(struct lazy_cache *cache)
{
	request_deadline_ms = 0;
	request_deadline_ms = read_deadline(cache);
}

void lazy_cache_end_request(void)
{
	request_deadline_ms = 0;
}

int lazy_cache_open(struct lazy_cache **out, const struct lazy_cache_opts *opts)
{
	struct lazy_cache *c;
	int fd = anole_privdir_open(opts->dir, true);

	if (fd < 0)
		return fd;
	c = xcalloc(1, sizeof(*c));
	c->opts = *opts;
	c->dir_fd = fd;
	c->dir = xstrdup(opts->dir);
	c->opts.dir = c->dir;
	if (!c->opts.max_fetch_bytes)
		c->opts.max_fetch_bytes = 8u << 20;
	if (!c->opts.verify_retries)
		c->opts.verify_retries = 2;
	if (!c->opts.read_timeout_ms)
		c->opts.read_timeout_ms = DEFAULT_READ_TIMEOUT_MS;
	*out = c;
	return 0;
}

static void blob_free(struct lazy_blob *b)
{
	if (b->data_fd >= 0)
		close(b->data_fd);
	if (b->map_fd >= 0)
		close(b->map_fd);
	if (b->lock_fd >= 0)
		close(b->lock_fd);     /* drops the shared flock */
	free(b->info.chunks);
	free(b->data_path);
	free(b->state);
	free(b->bitmap);
	free(b->touched);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->cond);
	free(b);
}

void lazy_cache_close(struct lazy_cache *cache)
{
	if (!cache)
		return;
	for (size_t i = 0; i < cache->nblobs; i++)
		blob_free(cache->blobs[i]);
	free(cache->blobs);
	if (cache->dir_fd >= 0)
		close(cache->dir_fd);
	free(cache->dir);
	free(cache);
}

static int load_map(struct lazy_blob *b, int dfd, const char *dir)
{
	size_t maplen = (b->info.nchunks + 7) / 8;
	struct stat st;
	ssize_t got;

	b->map_fd = anole_privdir_file(dfd, dir, "map", O_RDWR | O_CREAT);
	if (b->map_fd < 0)
		return b->map_fd;
	b->bitmap = xcalloc(maplen ? maplen : 1, 1);
	if (fstat(b->map_fd, &st) == 0 && (uint64_t)st.st_size == maplen) {
		got = pread(b->map_fd, b->bitmap, maplen, 0);
		if (got != (ssize_t)maplen)
			memset(b->bitmap, 0, maplen);
	} else if (ftruncate(b->map_fd, (off_t)maplen) < 0) {
		return anole_error(errno, "cannot size cache map in %s", dir);
	}
	for (uint32_t i = 0; i < b->info.nchunks; i++)
		b->state[i] = (b->bitmap[i / 8] >> (i % 8)) & 1 ? CHUNK_UNVERIFIED : CHUNK_ABSENT;
	futimens(b->map_fd, NULL);  /* last use, for LRU eviction */
	return 0;
}

/* The process holding a lock on the file of st, from /proc/locks; 0 if unknown. */
static long lock_holder(const struct stat *st)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256];
	long pid = 0;

	if (!f)
		return 0;
	while (!pid && fgets(line, sizeof(line), f)) {
		unsigned maj, min;
		unsigned long long ino;
		long p;

		/* "1: FLOCK  ADVISORY  WRITE 1234 00:2a:5678 0 EOF"; waiters have "->" */
		if (strstr(line, "->"))
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %ld %x:%x:%llu", &p, &maj, &min, &ino) == 4 &&
		    ino == (unsigned long long)st->st_ino && maj == major(st->st_dev) &&
		    min == minor(st->st_dev))
			pid = p;
	}
	fclose(f);
	return pid;
}

/*
 * A shared lock on the blob's lock file: a `cache gc` holds it exclusively
 * only while it removes the blob, so a short wait covers that; whoever
 * holds it longer is not waited for (a mount must not hang on it).
 */
#define LOCK_WAIT_MS 3000
#define LOCK_POLL_MS 20

static int lock_shared(int fd, const char *dir)
{
	struct stat st;
	long pid;

	for (unsigned waited = 0; waited < LOCK_WAIT_MS; waited += LOCK_POLL_MS) {
		struct timespec ts = { 0, LOCK_POLL_MS * 1000000L };

		if (flock(fd, LOCK_SH | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return anole_error(errno, "cannot lock %s/lock", dir);
		nanosleep(&ts, NULL);
	}
	if (flock(fd, LOCK_SH | LOCK_NB) == 0)
		return 0;
	pid = fstat(fd, &st) == 0 ? lock_holder(&st) : 0;
	if (pid)
		return anole_error_code(EBUSY, "%s/lock is locked by another process (pid %ld): gave "
					"up after %u s (`anole image cache gc` holds it only while it "
					"removes the blob)", dir, pid, LOCK_WAIT_MS / 1000);
	return anole_error_code(EBUSY, "%s/lock is locked by another process: gave up after %u s "
				"(`anole image cache gc` holds it only while it removes the blob)",
				dir, LOCK_WAIT_MS / 1000);
}

/* Open the blob's directory and lock it; a gc may have removed it while we
 * waited for the lock (then the lock file has no name left): start again. */
static int open_blob_dir(struct lazy_blob *b, const char *dir, int *dfd)
{
	struct lazy_cache *cache = b->cache;

	for (int attempt = 0; attempt < 3; attempt++) {
		struct stat st, dst;
		int ret;

		*dfd = anole_privdir_sub(cache->dir_fd, cache->dir, b->info.hex, true);
		if (*dfd < 0)
			return *dfd;
		b->lock_fd = anole_privdir_file(*dfd, dir, "lock", O_RDWR | O_CREAT);
		ret = b->lock_fd < 0 ? b->lock_fd : lock_shared(b->lock_fd, dir);
		if (!ret && (fstat(b->lock_fd, &st) < 0 || fstat(*dfd, &dst) < 0))
			ret = anole_error(errno, "cannot stat %s", dir);
		if (!ret && st.st_nlink > 0 && dst.st_nlink > 0)
			return 0;
		if (b->lock_fd >= 0)
			close(b->lock_fd);
		b->lock_fd = -1;
		close(*dfd);
		*dfd = -1;
		if (ret)
			return ret;
	}
	return anole_error_code(EAGAIN, "%s keeps being removed (a `cache gc` running in a loop?)",
				dir);
}

int lazy_cache_add_blob(struct lazy_cache *cache, const struct anole_blob_info *info,
			struct lazy_blob **out)
{
	struct lazy_blob *b;
	struct strbuf dir = STRBUF_INIT;
	struct stat st;
	int dfd = -1, ret;
	const struct anole_chunk_key *key = NULL;

	for (unsigned k = 0; k < cache->opts.nkeys; k++)
		if ((uint8_t)cache->opts.keys[k].alg == info->cipher)
			key = &cache->opts.keys[k];
	/* before anything of the blob is read, cached plaintext included */
	if (info->cipher && !key)
		return anole_error_code(ENOKEY, "%s is encrypted (%s): mount it with --decrypt-key KEY",
					info->name, anole_cipher_name(info->cipher));
	if (info->cipher && memcmp(key->check, info->key_check, sizeof(info->key_check)))
		return anole_error_code(EKEYREJECTED, "%s is encrypted (%s) with another key than the "
					"one given (--decrypt-key): wrong key", info->name,
					anole_cipher_name(info->cipher));
	b = xcalloc(1, sizeof(*b));
	b->cache = cache;
	b->key = key;
	b->info = *info;
	b->info.chunks = xcalloc(info->nchunks + 1, sizeof(*info->chunks));
	memcpy(b->info.chunks, info->chunks, (size_t)info->nchunks * sizeof(*info->chunks));
	b->data_fd = b->map_fd = b->lock_fd = -1;
	b->state = xcalloc(info->nchunks + 1, 1);
	b->touched = xcalloc(info->nchunks + 1, 1);
	pthread_mutex_init(&b->lock, NULL);
	{
		pthread_condattr_t ca;  /* waits end by a read's deadline: monotonic */

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&b->cond, &ca);
		pthread_condattr_destroy(&ca);
	}

	strbuf_addf(&dir, "%s/%s", cache->dir, info->hex);
	ret = open_blob_dir(b, dir.buf, &dfd);
	/* the data file is read by the kernel directly once complete: only we
	 * may be able to change it (privdir.h), or verified bytes could change
	 * after their check */
	if (!ret && (b->data_fd = anole_privdir_file(dfd, dir.buf, "data", O_RDWR | O_CREAT)) < 0)
		ret = b->data_fd;
	if (!ret) {
		struct strbuf p = STRBUF_INIT;

		strbuf_addf(&p, "%s/data", dir.buf);
		b->data_path = strbuf_detach(&p, NULL);
	}
	if (!ret && fstat(b->data_fd, &st) == 0 && (uint64_t)st.st_size != info->uncompressed_size &&
	    ftruncate(b->data_fd, (off_t)info->uncompressed_size) < 0)
		ret = anole_error(errno, "cannot size cache data in %s", dir.buf);
	if (!ret)
		ret = load_map(b, dfd, dir.buf);
	if (dfd >= 0)
		close(dfd);
	strbuf_release(&dir);
	if (ret) {
		blob_free(b);
		return ret;
	}
	xgrow(&cache->blobs, &cache->blobs_alloc, cache->nblobs + 1, sizeof(*cache->blobs));
	cache->blobs[cache->nblobs++] = b;
	*out = b;
	return 0;
}

const struct anole_blob_info *lazy_blob_info(const struct lazy_blob *blob) { return &blob->info; }
uint64_t lazy_blob_size(const struct lazy_blob *blob) { return blob->info.uncompressed_size; }

uint32_t lazy_blob_present_chunks(struct lazy_blob *blob)
{
	uint32_t n = 0;

	pthread_mutex_lock(&blob->lock);
	for (uint32_t i = 0; i < blob->info.nchunks; i++)
		n += blob->state[i] == CHUNK_VERIFIED || blob->state[i] == CHUNK_UNVERIFIED;
	pthread_mutex_unlock(&blob->lock);
	return n;
}

/* ---- verification and fetching (called with claims, without the lock) ---- */

static bool chunk_digest_ok(const struct lazy_blob *b, uint32_t i, const uint8_t *data)
{
	const struct anole_ext_chunk *c = &b->info.chunks[i];
	uint8_t d[ANOLE_DIGEST_MAX];

	return !anole_digest(b->info.chunk_digest, data, c->uncompressed_size, d) &&
	       !memcmp(d, c->digest, 32);
}

static bool verify_cached(struct lazy_blob *b, uint32_t i)
{
	const struct anole_ext_chunk *c = &b->info.chunks[i];
	uint8_t *buf = xmalloc(c->uncompressed_size);
	bool ok = !pread_full(b->data_fd, buf, c->uncompressed_size, c->uncompressed_offset) &&
		  chunk_digest_ok(b, i, buf);

	free(buf);
	return ok;
}

static void mark_present(struct lazy_blob *b, uint32_t i)
{
	uint8_t byte;

	pthread_mutex_lock(&b->lock);
	b->bitmap[i / 8] |= (uint8_t)(1u << (i % 8));
	byte = b->bitmap[i / 8];
	pthread_mutex_unlock(&b->lock);
	/* best effort: a lost bit only costs a refetch */
	if (pwrite(b->map_fd, &byte, 1, i / 8) < 0)
		anole_debug("cannot update cache map: %s", strerror(errno));
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void record_latency(struct lazy_cache *cache, uint64_t us)
{
	unsigned bucket = 0;

	while (bucket + 1 < LAZY_HIST_BUCKETS && (1ULL << (bucket + 1)) <= us)
		bucket++;
	atomic_fetch_add(&cache->c.hist[bucket], 1);
	STAT_ADD(cache, latency_us_sum, us);
}

/* A run of chunks being fetched, as its bytes arrive from a source. */
struct run_fetch {
	struct lazy_blob *b;
	uint32_t first, last;
	uint64_t off;
	bool *ok;
	uint8_t *out;
	uint8_t *clear;             /* encrypted blobs: a chunk's decrypted bytes */
	size_t clear_cap;
};

/* Decompress, verify and store every chunk of the run not stored yet;
 * -EBADMSG when one fails (the blob store then asks the next source, if
 * a mirror served these bytes). */
static int store_run(void *opaque, const void *data, size_t len)
{
	struct run_fetch *rf = opaque;
	struct lazy_blob *b = rf->b;
	struct lazy_cache *cache = b->cache;
	int ret = 0;

	STAT_ADD(cache, bytes_fetched, len);
	for (uint32_t i = rf->first; i <= rf->last; i++) {
		const struct anole_ext_chunk *c = &b->info.chunks[i];
		const uint8_t *src = (const uint8_t *)data + (c->compressed_offset - rf->off);

		if (rf->ok[i - rf->first])
			continue;
		if (b->info.cipher) {
			/* decrypt a copy: the fetched bytes may be asked of a mirror
			 * again, and CTR is its own inverse */
			uint8_t iv[ANOLE_CHUNK_IV_INPUT_SIZE];

			if (rf->clear_cap < c->compressed_size) {
				free(rf->clear);
				rf->clear_cap = c->compressed_size;
				rf->clear = xmalloc(rf->clear_cap);
			}
			memcpy(rf->clear, src, c->compressed_size);
			anole_chunk_iv_input(c, iv);
			if (anole_chunk_crypt(b->key, iv, sizeof(iv), rf->clear,
					      c->compressed_size)) {
				ret = -EIO;
				continue;
			}
			src = rf->clear;
		}
		if (anole_decompress((enum anole_compress_alg)c->compression, src, c->compressed_size,
				     rf->out, c->uncompressed_size) || !chunk_digest_ok(b, i, rf->out)) {
			STAT_ADD(cache, verify_failures, 1);
			anole_warn("%s: chunk %u failed verification (bad digest or data)",
				   b->info.name, i);
			ret = -EBADMSG;
			continue;
		}
		if (pwrite_full(b->data_fd, rf->out, c->uncompressed_size, c->uncompressed_offset)) {
			anole_warn("cannot write cache of %s: %s", b->info.name, strerror(errno));
			continue;
		}
		mark_present(b, i);
		rf->ok[i - rf->first] = true;
		STAT_ADD(cache, chunks_fetched, 1);
	}
	return ret;
}

/* Fetch chunks [first, last] (adjacent in the transport blob) in one request;
 * ok[k] tells which chunks arrived intact and were stored. */
static int fetch_run(struct lazy_blob *b, uint32_t first, uint32_t last, bool *ok,
		     uint64_t deadline)
{
	struct lazy_cache *cache = b->cache;
	const struct anole_ext_chunk *c0 = &b->info.chunks[first], *cn = &b->info.chunks[last];
	uint64_t off = c0->compressed_offset;
	size_t len = (size_t)(cn->compressed_offset + cn->compressed_size - off);
	uint8_t *buf = xmalloc(len);
	struct run_fetch rf = { b, first, last, off, ok, xmalloc(b->info.chunk_size), NULL, 0 };
	uint64_t t0 = now_us();
	int ret = anole_blobstore_read_verified_until(cache->opts.store, b->info.name, off, buf,
						      len, store_run, &rf, deadline);

	record_latency(cache, now_us() - t0);
	STAT_ADD(cache, fetch_requests, 1);
	if (ret && ret != -EBADMSG)
		STAT_ADD(cache, fetch_errors, 1);
	free(buf);
	free(rf.out);
	free(rf.clear);
	return ret;
}

/*
 * Fetch claimed chunks in `need` (indexes ascending) as coalesced runs.
 * Only bytes that failed their digest are asked for again here: the blob
 * store has already retried what failed in transport, and the deadline
 * bounds the whole.
 */
static int fetch_claimed(struct lazy_blob *b, const uint32_t *need, size_t n, bool *done,
			 uint64_t deadline)
{
	uint64_t max = b->cache->opts.max_fetch_bytes;
	int ret = 0;

	for (unsigned attempt = 0; attempt <= b->cache->opts.verify_retries; attempt++) {
		size_t i = 0;
		bool all = true, transport = false;

		while (i < n) {
			size_t j = i;

			if (done[i]) {
				i++;
				continue;
			}
			while (j + 1 < n && !done[j + 1] && need[j + 1] == need[j] + 1 &&
			       b->info.chunks[need[j + 1]].compressed_offset +
			       b->info.chunks[need[j + 1]].compressed_size -
			       b->info.chunks[need[i]].compressed_offset <= max)
				j++;
			if ((ret = fetch_run(b, need[i], need[j], done + i, deadline)) && ret != -EBADMSG)
				transport = true;
			i = j + 1;
		}
		for (i = 0; i < n; i++)
			all &= done[i];
		if (all)
			return 0;
		if (transport || (deadline && now_ms() >= deadline))
			break;
	}
	ret = -EIO;
	return ret;
}

/* Another daemon sharing the cache may have stored the chunk since we
 * loaded the map: one byte of the map tells (the digest is still checked). */
static bool present_on_disk(struct lazy_blob *b, uint32_t i)
{
	uint8_t byte;

	if (pread(b->map_fd, &byte, 1, i / 8) != 1 || !((byte >> (i % 8)) & 1))
		return false;
	b->bitmap[i / 8] |= byte;
	return true;
}

static void first_use(struct lazy_blob *b, uint32_t first, uint32_t last)
{
	lazy_first_use_fn fn = b->cache->opts.first_use;

	if (!fn)
		return;
	for (uint32_t i = first; i <= last; i++) {
		bool fresh;

		pthread_mutex_lock(&b->lock);
		fresh = !b->touched[i];
		b->touched[i] = 1;
		pthread_mutex_unlock(&b->lock);
		if (fresh)
			fn(b->cache->opts.first_use_opaque, b, i);
	}
}

int lazy_blob_fetch_chunks(struct lazy_blob *b, uint32_t first, uint32_t last)
{
	uint32_t *need = NULL;
	bool *done = NULL;
	size_t n = 0;
	int ret = 0;

	uint64_t deadline;

	if (first > last || last >= b->info.nchunks)
		return 0;
	deadline = read_deadline(b->cache);
	first_use(b, first, last);
	pthread_mutex_lock(&b->lock);
	for (;;) {
		bool busy = false;

		for (uint32_t i = first; i <= last && !busy; i++)
			busy = b->state[i] == CHUNK_FETCHING;
		if (!busy)
			break;
		if (!deadline) {
			pthread_cond_wait(&b->cond, &b->lock);
		} else {
			struct timespec ts = { (time_t)(deadline / 1000),
					       (long)(deadline % 1000) * 1000000 };

			if (pthread_cond_timedwait(&b->cond, &b->lock, &ts) == ETIMEDOUT) {
				pthread_mutex_unlock(&b->lock);
				anole_warn("%s: chunks %u-%u: another reader's fetch of them did not "
					   "end in the time allowed for the read", b->info.name,
					   first, last);
				return -EIO;
			}
		}
	}
	/*
	 * Once a fetch ran out of time, fetches fail at once for one read
	 * timeout: the kernel asks again for a page it could not read right
	 * after the error, and reads a file's chunks one request after another;
	 * each would wait the whole time again for a store that sends nothing.
	 * What is cached is still served.
	 */
	if (atomic_load(&b->cache->stalled_until) > now_ms()) {
		for (uint32_t i = first; i <= last; i++) {
			if (b->state[i] == CHUNK_ABSENT) {
				pthread_mutex_unlock(&b->lock);
				return -EIO;
			}
		}
	}
	for (uint32_t i = first; i <= last; i++) {
		if (b->state[i] == CHUNK_VERIFIED) {
			STAT_ADD(b->cache, chunk_hits, 1);
			continue;
		}
		if (!need) {
			need = xmalloc(((size_t)last - first + 1) * sizeof(*need));
			done = xcalloc((size_t)last - first + 1, sizeof(*done));
		}
		if (b->state[i] == CHUNK_ABSENT && present_on_disk(b, i))
			b->state[i] = CHUNK_UNVERIFIED;   /* another daemon fetched it */
		done[n] = b->state[i] == CHUNK_UNVERIFIED;   /* verified below */
		need[n++] = i;
		b->state[i] = CHUNK_FETCHING;
	}
	pthread_mutex_unlock(&b->lock);
	if (!n)
		return 0;

	for (size_t k = 0; k < n; k++) {
		if (!done[k])
			continue;
		if (verify_cached(b, need[k])) {
			STAT_ADD(b->cache, chunk_hits, 1);
		} else {
			done[k] = false;
			STAT_ADD(b->cache, cache_refetches, 1);
			anole_warn("%s: cached chunk %u is corrupt; fetching it again",
				   b->info.name, need[k]);
		}
	}
	for (size_t k = 0; k < n; k++)
		if (!done[k])
			STAT_ADD(b->cache, chunk_misses, 1);
	ret = fetch_claimed(b, need, n, done, deadline);

	pthread_mutex_lock(&b->lock);
	for (size_t k = 0; k < n; k++)
		b->state[need[k]] = done[k] ? CHUNK_VERIFIED : CHUNK_ABSENT;
	if (ret && deadline && now_ms() >= deadline) {
		uint64_t until = now_ms() + b->cache->opts.read_timeout_ms;

		if (atomic_exchange(&b->cache->stalled_until, until) < now_ms())
			anole_warn("%s: the blob store did not deliver chunks %u-%u in the %u ms "
				   "allowed for a read: reads that need a fetch fail at once for "
				   "the next %u ms", b->info.name, need[0], need[n - 1],
				   b->cache->opts.read_timeout_ms, b->cache->opts.read_timeout_ms);
	}
	pthread_cond_broadcast(&b->cond);
	pthread_mutex_unlock(&b->lock);
	free(need);
	free(done);
	return ret;
}

/* Chunks overlapping [off, off + len): first index and last index. */
static bool chunk_span(const struct lazy_blob *b, uint64_t off, uint64_t len,
		       uint32_t *first, uint32_t *last)
{
	const struct anole_ext_chunk *c = b->info.chunks;
	uint32_t lo = 0, hi = b->info.nchunks;

	/* first chunk ending after off */
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (c[mid].uncompressed_offset + c[mid].uncompressed_size <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo >= b->info.nchunks || c[lo].uncompressed_offset >= off + len)
		return false;
	*first = lo;
	hi = b->info.nchunks;
	while (lo < hi) {      /* last chunk starting before off + len */
		uint32_t mid = lo + (hi - lo) / 2;

		if (c[mid].uncompressed_offset < off + len)
			lo = mid + 1;
		else
			hi = mid;
	}
	*last = lo - 1;
	return true;
}

int lazy_blob_prepare_ahead(struct lazy_blob *b, size_t len, uint64_t off, uint64_t ahead_end)
{
	uint32_t first, last, afirst, alast;

	if (off >= b->info.uncompressed_size)
		return len ? -EINVAL : 0;
	if (len > b->info.uncompressed_size - off)
		return -EINVAL;
	STAT_ADD(b->cache, reads, 1);
	STAT_ADD(b->cache, read_bytes, len);
	if (!chunk_span(b, off, len, &first, &last))
		return 0;
	/* read ahead only into what is missing: a warm reader costs nothing */
	if (ahead_end > off + len && ahead_end <= b->info.uncompressed_size &&
	    chunk_span(b, off + len, ahead_end - off - len, &afirst, &alast) && alast > last) {
		pthread_mutex_lock(&b->lock);
		if (b->state[last + 1] == CHUNK_ABSENT && atomic_load(&b->cache->stalled_until) <= now_ms())
			last = alast;
		pthread_mutex_unlock(&b->lock);
	}
	return lazy_blob_fetch_chunks(b, first, last);
}

int lazy_blob_prepare(struct lazy_blob *b, size_t len, uint64_t off)
{
	return lazy_blob_prepare_ahead(b, len, off, 0);
}

int lazy_blob_data_fd(const struct lazy_blob *b) { return b->data_fd; }
const char *lazy_blob_data_path(const struct lazy_blob *b) { return b->data_path; }

bool lazy_blob_complete(struct lazy_blob *b)
{
	if (lazy_blob_present_chunks(b) != b->info.nchunks)
		return false;
	/* verifies what this run has not, and refetches what fails */
	if (lazy_blob_fetch_chunks(b, 0, b->info.nchunks ? b->info.nchunks - 1 : 0))
		return false;
	return lazy_blob_present_chunks(b) == b->info.nchunks;
}

int lazy_blob_read(struct lazy_blob *b, void *buf, size_t len, uint64_t off)
{
	int ret = lazy_blob_prepare(b, len, off);

	if (ret || !len)
		return ret;
	/* present chunks are in the data file; gaps between them read as zeroes */
	ret = pread_full(b->data_fd, buf, len, off);
	return ret == -ENODATA ? -EIO : ret;
}

void lazy_cache_get_stats(struct lazy_cache *cache, struct lazy_stats *st)
{
	struct lazy_counters *c = &cache->c;

	st->reads = atomic_load(&c->reads);
	st->read_bytes = atomic_load(&c->read_bytes);
	st->chunk_hits = atomic_load(&c->chunk_hits);
	st->chunk_misses = atomic_load(&c->chunk_misses);
	st->chunks_fetched = atomic_load(&c->chunks_fetched);
	st->bytes_fetched = atomic_load(&c->bytes_fetched);
	st->fetch_requests = atomic_load(&c->fetch_requests);
	st->fetch_errors = atomic_load(&c->fetch_errors);
	st->verify_failures = atomic_load(&c->verify_failures);
	st->cache_refetches = atomic_load(&c->cache_refetches);
	st->latency_us_sum = atomic_load(&c->latency_us_sum);
	for (unsigned i = 0; i < LAZY_HIST_BUCKETS; i++)
		st->latency_us_hist[i] = atomic_load(&c->hist[i]);
}
