// SPDX-License-Identifier: Apache-2.0
/*
 * Fetch-ahead for readers that stream through a file.
 *
 * Fetch units (chunks stored as pieces of 64 KiB) make a random read cheap:
 * a page of a big binary costs one unit, not its 1 MiB chunk. A reader
 * going through a file, though, would then pay a round trip per read (the
 * kernel asks 64-256 KiB at a time) instead of one per chunk. So each read
 * of a blob is matched against the blob's recent streams: once reads that
 * each start where the previous one ended have gone through more than
 * 512 KiB, each has the rest of the chunk it is entering fetched with it, in
 * the same request. The threshold counts bytes, not reads, so that kernel
 * mode (EROFS asks 64 KiB at a time) and FUSE mode (128 KiB) behave alike;
 * it is past the kernel's own readahead of a mapped binary (a 128 KiB
 * window and its async continuation), which must not pull whole chunks in
 * at a program's start. A chunk holds one file's data, so this never
 * fetches another file's bytes; what is already cached is not fetched
 * again; images whose entries are whole chunks are left alone (nothing is
 * split).
 *
 * Kernel mode calls it for every read of a blob file (fuse_blobs.c), FUSE
 * mode for every read the tree's reader makes of a blob device.
 */
#include "lazyd.h"
#include "anole/fileio.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdlib.h>

#define STREAMS 16          /* concurrent streams followed per blob */
#define STREAM_BYTES (512u << 10)  /* read in a row before fetching ahead */

struct lazyd_stream {
	uint64_t next;      /* where its next read would start */
	uint64_t stamp;     /* last use, for replacement */
	uint64_t bytes;     /* read in a row so far */
};

struct lazyd_blob_reader {
	struct lazy_blob *blob;
	pthread_mutex_t lock;
	uint64_t clock;
	struct lazyd_stream s[STREAMS];
};

void lazyd_readers_init(struct lazyd *d)
{
	d->readers = xcalloc(d->ndevblobs + 1, sizeof(*d->readers));
	for (unsigned i = 0; i < d->ndevblobs; i++) {
		d->readers[i].blob = d->devblobs[i];
		pthread_mutex_init(&d->readers[i].lock, NULL);
	}
}

void lazyd_readers_free(struct lazyd *d)
{
	if (!d->readers)
		return;
	for (unsigned i = 0; i < d->ndevblobs; i++)
		pthread_mutex_destroy(&d->readers[i].lock);
	free(d->readers);
	d->readers = NULL;
}

struct lazyd_blob_reader *lazyd_reader(struct lazyd *d, unsigned i)
{
	return i < d->ndevblobs ? &d->readers[i] : NULL;
}

/* Count the read in its stream; true when it continues one long enough. */
static bool streaming(struct lazyd_blob_reader *r, uint64_t off, uint64_t end)
{
	struct lazyd_stream *hit = NULL, *oldest = &r->s[0];
	bool ahead;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < STREAMS && !hit; i++) {
		if (r->s[i].stamp && r->s[i].next == off)
			hit = &r->s[i];
		else if (r->s[i].stamp < oldest->stamp)
			oldest = &r->s[i];
	}
	if (!hit) {
		hit = oldest;
		hit->bytes = 0;
	}
	hit->bytes += end - off;
	hit->next = end;
	hit->stamp = ++r->clock;
	ahead = hit->bytes > STREAM_BYTES;
	pthread_mutex_unlock(&r->lock);
	return ahead;
}

/* End of the split chunk holding byte off, or 0 if it is not split. */
static uint64_t split_end(const struct anole_blob_info *info, uint64_t off)
{
	long k = anole_blob_find_chunk(info, off);
	uint32_t lo = 0, hi = info->nsplits;

	if (k < 0)
		return 0;
	while (lo < hi) {       /* last split starting at or before entry k */
		uint32_t mid = lo + (hi - lo) / 2;

		if (info->splits[mid].first <= (uint32_t)k)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo || (uint32_t)k >= info->splits[lo - 1].first + info->splits[lo - 1].count)
		return 0;
	k = info->splits[lo - 1].first + info->splits[lo - 1].count - 1;
	return info->chunks[k].uncompressed_offset + info->chunks[k].uncompressed_size;
}

int lazyd_reader_prepare(struct lazyd_blob_reader *r, size_t len, uint64_t off)
{
	const struct anole_blob_info *info = lazy_blob_info(r->blob);
	uint64_t ahead = 0;

	if (info->nsplits && len && off < info->uncompressed_size &&
	    len <= info->uncompressed_size - off && streaming(r, off, off + len))
		ahead = split_end(info, off + len);
	return lazy_blob_prepare_ahead(r->blob, len, off, ahead);
}

int lazyd_dev_pread(struct erofs_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct lazyd_blob_reader *r = dev->opaque;
	int ret = lazyd_reader_prepare(r, len, off);

	if (ret || !len)
		return ret;
	/* present chunks are in the data file; gaps between them read as zeroes */
	ret = pread_full(lazy_blob_data_fd(r->blob), buf, len, off);
	return ret == -ENODATA ? -EIO : ret;
}
