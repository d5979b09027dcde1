// SPDX-License-Identifier: Apache-2.0
/*
 * Prefetch (--prefetch LIST: files fetched in order in the background) and
 * record (--record FILE: the order in which files were first read, to be
 * replayed as a prefetch list). Recording works in both modes because it
 * is keyed by chunk: every chunk knows the first file that uses it.
 */
#include "lazyd.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/hashmap.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int blob_index(struct lazyd *d, unsigned devid)
{
	return devid >= 1 && devid <= d->ndevblobs ? (int)devid - 1 : -1;
}

/* Blob chunks covering [phys, phys + len) of device devid. */
static bool blob_chunks(struct lazyd *d, unsigned devid, uint64_t phys, uint64_t len,
			uint32_t *first, uint32_t *last)
{
	int bi = blob_index(d, devid);
	const struct anole_blob_info *info;
	long a, b;

	if (bi < 0 || !len)
		return false;
	info = lazy_blob_info(d->devblobs[bi]);
	a = anole_blob_find_chunk(info, phys);
	b = anole_blob_find_chunk(info, phys + len - 1);
	if (a < 0)
		return false;
	if (b < 0)
		b = a;
	*first = (uint32_t)a;
	*last = (uint32_t)b;
	return true;
}

typedef void (*extent_fn)(struct lazyd *d, unsigned devid, uint32_t first, uint32_t last,
			  void *ctx);

static int for_each_extent(struct lazyd *d, const struct erofs_inode *in, extent_fn fn, void *ctx)
{
	uint64_t off = 0;

	while (off < in->size && !atomic_load(&d->stopping)) {
		struct erofs_map map;
		uint32_t first, last;
		int ret = erofs_map_blocks(d->img, in, off, &map);

		if (ret)
			return ret;
		if (map.length == 0)
			break;
		if (map.physical != UINT64_MAX && map.devid &&
		    blob_chunks(d, map.devid, map.physical, map.plength, &first, &last))
			fn(d, map.devid, first, last, ctx);
		off = map.logical + map.length;
	}
	return 0;
}

/* ---- record ---- */

static void note_chunks(struct lazyd *d, unsigned devid, uint32_t first, uint32_t last, void *ctx)
{
	const char **slots = d->chunk_paths[devid - 1];

	for (uint32_t i = first; i <= last; i++)
		if (!slots[i])
			slots[i] = ctx;
}

struct walk_item { erofs_nid_t nid; char *path; };

struct walk {
	struct lazyd *d;
	struct walk_item *queue;
	size_t head, n, alloc;
	const char *parent;
	struct anole_hashmap seen;
};

static bool nid_eq(const void *entry, const void *key)
{
	return *(const erofs_nid_t *)entry == *(const erofs_nid_t *)key;
}

static int walk_cb(void *opaque, const char *name, size_t len, erofs_nid_t nid, unsigned ft)
{
	struct walk *w = opaque;
	struct strbuf p = STRBUF_INIT;
	erofs_nid_t *key;
	uint64_t h = anole_hash_bytes(&nid, sizeof(nid), 0);

	if ((len == 1 && name[0] == '.') || (len == 2 && !memcmp(name, "..", 2)))
		return 0;
	if (ft != EROFS_FT_DIR && ft != EROFS_FT_REG_FILE)
		return 0;
	if (anole_hashmap_get(&w->seen, h, &nid))
		return 0;                       /* hard link or a cycle: once */
	key = xmalloc(sizeof(*key));
	*key = nid;
	anole_hashmap_put(&w->seen, h, key);
	strbuf_addf(&p, "%s/%.*s", strcmp(w->parent, "/") ? w->parent : "", (int)len, name);
	xgrow(&w->queue, &w->alloc, w->n + 1, sizeof(*w->queue));
	w->queue[w->n++] = (struct walk_item){ nid, strbuf_detach(&p, NULL) };
	return 0;
}

int lazyd_build_chunk_paths(struct lazyd *d)
{
	struct walk w = { .d = d };
	int ret = 0;

	d->chunk_paths = xcalloc(d->ndevblobs + 1, sizeof(*d->chunk_paths));
	for (unsigned i = 0; i < d->ndevblobs; i++)
		d->chunk_paths[i] = xcalloc(lazy_blob_info(d->devblobs[i])->nchunks + 1,
					    sizeof(char *));
	anole_hashmap_init(&w.seen, nid_eq);
	xgrow(&w.queue, &w.alloc, 1, sizeof(*w.queue));
	w.queue[w.n++] = (struct walk_item){ d->img->root_nid, xstrdup("/") };
	while (w.head < w.n && !ret) {
		struct walk_item it = w.queue[w.head++];
		struct erofs_inode in;

		ret = erofs_read_inode(d->img, it.nid, &in);
		if (!ret && S_ISDIR(in.mode)) {
			w.parent = it.path;
			ret = erofs_iterate_dir(d->img, &in, walk_cb, &w);
			ret = ret > 0 ? 0 : ret;
		} else if (!ret && S_ISREG(in.mode) && in.layout == EROFS_INODE_CHUNK_BASED) {
			ret = for_each_extent(d, &in, note_chunks, it.path);
		}
		xgrow(&d->paths, &d->paths_alloc, d->npaths + 1, sizeof(*d->paths));
		d->paths[d->npaths++] = it.path;    /* owned by d from now on */
	}
	for (size_t i = w.head; i < w.n; i++)
		free(w.queue[i].path);
	for (size_t i = 0; i <= w.seen.mask; i++)
		free(w.seen.slots[i].entry);
	anole_hashmap_free(&w.seen);
	free(w.queue);
	return ret;
}

static bool str_eq(const void *entry, const void *key) { return entry == key; }

void lazyd_first_use(void *opaque, struct lazy_blob *blob, uint32_t chunk)
{
	struct lazyd *d = opaque;
	const char *path = NULL;
	uint64_t h;

	if (!d->chunk_paths)
		return;
	for (unsigned i = 0; i < d->ndevblobs; i++)
		if (d->devblobs[i] == blob)
			path = d->chunk_paths[i][chunk];
	if (!path)
		return;
	h = anole_hash_bytes(&path, sizeof(path), 0);
	pthread_mutex_lock(&d->rec_lock);
	if (!d->recorded_set) {
		d->recorded_set = xcalloc(1, sizeof(*d->recorded_set));
		anole_hashmap_init(d->recorded_set, str_eq);
	}
	if (!anole_hashmap_get(d->recorded_set, h, path)) {
		anole_hashmap_put(d->recorded_set, h, (void *)path);
		xgrow(&d->recorded, &d->recorded_alloc, d->nrecorded + 1, sizeof(*d->recorded));
		d->recorded[d->nrecorded++] = path;
	}
	pthread_mutex_unlock(&d->rec_lock);
}

int lazyd_write_record(struct lazyd *d)
{
	struct anole_output out;
	struct strbuf sb = STRBUF_INIT;
	int ret;

	if (!d->opts->record_file)
		return 0;
	pthread_mutex_lock(&d->rec_lock);
	/* one path per line; '\\' and newlines in names are escaped */
	for (size_t i = 0; i < d->nrecorded; i++) {
		for (const char *c = d->recorded[i]; *c; c++) {
			if (*c == '\\')
				strbuf_addstr(&sb, "\\\\");
			else if (*c == '\n')
				strbuf_addstr(&sb, "\\n");
			else
				strbuf_addch(&sb, *c);
		}
		strbuf_addch(&sb, '\n');
	}
	pthread_mutex_unlock(&d->rec_lock);
	ret = anole_output_open(&out, d->opts->record_file);
	if (!ret) {
		ret = write_full(out.fd, sb.buf, sb.len);
		if (ret) {
			anole_output_abort(&out);
			ret = anole_error(-ret, "cannot write %s", d->opts->record_file);
		} else {
			ret = anole_output_commit(&out);
		}
	}
	strbuf_release(&sb);
	return ret;
}

/* ---- prefetch ---- */

/* Adjacent chunks of a file are fetched as one run (one range request). */
struct pending { unsigned devid; uint32_t first, last; bool have; int err; };

static void flush_pending(struct lazyd *d, struct pending *p)
{
	int ret;

	if (!p->have)
		return;
	ret = lazy_blob_fetch_chunks(d->devblobs[p->devid - 1], p->first, p->last);
	if (ret && !p->err)
		p->err = ret;
	p->have = false;
}

static void fetch_extent(struct lazyd *d, unsigned devid, uint32_t first, uint32_t last, void *ctx)
{
	struct pending *p = ctx;

	if (p->have && p->devid == devid && first >= p->first && first <= p->last + 1) {
		if (last > p->last)
			p->last = last;
		return;
	}
	flush_pending(d, p);
	*p = (struct pending){ devid, first, last, true, p->err };
}

int lazyd_prefetch_path(struct lazyd *d, const char *path)
{
	struct erofs_inode in;
	struct pending p = { 0 };
	int ret = erofs_lookup(d->img, path, &in);

	if (ret)
		return ret;
	if (!S_ISREG(in.mode) || in.layout != EROFS_INODE_CHUNK_BASED)
		return 0;
	ret = for_each_extent(d, &in, fetch_extent, &p);
	flush_pending(d, &p);
	return ret ? ret : p.err;
}

static void *prefetch_main(void *arg)
{
	struct lazyd *d = arg;
	FILE *f = fopen(d->opts->prefetch_list, "re");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f) {
		anole_warn("cannot read prefetch list %s: %s", d->opts->prefetch_list, strerror(errno));
		atomic_store(&d->prefetch_done, true);
		return NULL;
	}
	while (!atomic_load(&d->stopping) && (n = getline(&line, &cap, f)) > 0) {
		char *w = line;

		if (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (!n || line[0] == '#')
			continue;
		/* undo the record's escapes: "\\n" is a newline, "\\\\" a backslash */
		for (char *r = line; *r; r++) {
			if (*r == '\\' && (r[1] == 'n' || r[1] == '\\'))
				*w++ = *++r == 'n' ? '\n' : '\\';
			else
				*w++ = *r;
		}
		*w = '\0';
		if (lazyd_prefetch_path(d, line))
			anole_warn("prefetch of %s failed", line);
		else
			atomic_fetch_add(&d->prefetched_files, 1);
	}
	free(line);
	fclose(f);
	atomic_store(&d->prefetch_done, true);
	anole_info("prefetch done: %llu files",
		   (unsigned long long)atomic_load(&d->prefetched_files));
	return NULL;
}

int lazyd_start_prefetch(struct lazyd *d)
{
	if (!d->opts->prefetch_list) {
		atomic_store(&d->prefetch_done, true);
		return 0;
	}
	if (pthread_create(&d->prefetch_thread, NULL, prefetch_main, d))
		return anole_error(EAGAIN, "cannot start the prefetch thread");
	d->prefetch_running = true;
	return 0;
}

void lazyd_stop_prefetch(struct lazyd *d)
{
	if (d->prefetch_running)
		pthread_join(d->prefetch_thread, NULL);
	d->prefetch_running = false;
}
