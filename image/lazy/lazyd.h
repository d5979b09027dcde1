/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The lazy-mount daemon's internals.
 *
 *   kernel mode: FUSE serves each blob's uncompressed view as a file
 *                (fuse_blobs.c); the kernel's EROFS mounts the image with
 *                those files as its devices.
 *   fuse mode:   FUSE serves the tree itself from the EROFS metadata with
 *                the anole reader (fuse_tree.c); no root needed.
 * Both read through the chunk cache (cache.c). control.c answers stats on
 * a unix socket and Prometheus scrapes on --metrics (both HTTP, lib/httpd.c); prefetch.c prefetches
 * and records first reads; fetchahead.c fetches the rest of a chunk for a
 * reader streaming through it.
 */
#ifndef ANOLE_LAZYD_H
#define ANOLE_LAZYD_H
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "anole/blobmeta.h"
#include "anole/blobstore.h"
#include "anole/erofs.h"
#include "anole/image.h"
#include "anole/lazy.h"
#include "anole/strbuf.h"

struct lazyd {
	const struct anole_mount_opts *opts;
	char *image;                /* absolute paths */
	char *mnt;
	char *state_dir;            /* pid, log, ctl.sock, blobs/ */
	char *fuse_mnt;             /* where the FUSE session is mounted */
	bool kernel_mode;

	struct anole_blobmeta meta;
	struct anole_blobstore *store;
	struct lazy_cache *cache;
	struct lazy_blob **devblobs; /* by EROFS device id - 1 */
	unsigned ndevblobs;
	struct erofs_image *img;    /* reader over the lazy devices */
	struct lazyd_blob_reader *readers; /* by EROFS device id - 1: fetch-ahead */

	struct fuse_session *se;
	pthread_t fuse_thread;
	bool fuse_running;
	_Atomic bool fuse_loop_done;   /* the session ended (unmounted, aborted) */
	_Atomic int open_files;        /* blob files the kernel holds open */
	dev_t fuse_dev;                /* our FUSE connection (fusectl abort) */
	bool erofs_mounted;
	unsigned direct_blobs;         /* read by the kernel straight from the cache */
	_Atomic bool stopping;
	pthread_mutex_t stop_lock;

	/* --record: first path using each chunk, and the order of first reads */
	pthread_mutex_t rec_lock;
	const char ***chunk_paths;  /* [device-1][chunk] -> path (not owned) */
	char **paths;               /* owned path strings */
	size_t npaths, paths_alloc;
	const char **recorded;
	size_t nrecorded, recorded_alloc;
	struct anole_hashmap *recorded_set;

	struct anole_httpd *ctl_httpd, *metrics_httpd; /* control.c */
	pthread_t prefetch_thread;
	bool prefetch_running;
	_Atomic uint64_t prefetched_files;
	_Atomic bool prefetch_done;
};

/* fuse_blobs.c / fuse_tree.c */
extern const struct fuse_lowlevel_ops lazyd_blob_ops;
extern const struct fuse_lowlevel_ops lazyd_tree_ops;

/* fetchahead.c: reads of the blobs, with fetch-ahead for streaming readers */
void lazyd_readers_init(struct lazyd *d);          /* once devblobs are attached */
void lazyd_readers_free(struct lazyd *d);
struct lazyd_blob_reader *lazyd_reader(struct lazyd *d, unsigned devblob);
/* lazy_blob_prepare() of [off, off + len), fetching ahead for a stream */
int lazyd_reader_prepare(struct lazyd_blob_reader *r, size_t len, uint64_t off);
/* erofs_dev pread of a blob device (FUSE mode); opaque: its reader */
int lazyd_dev_pread(struct erofs_dev *dev, void *buf, size_t len, uint64_t off);

/* control.c */
void lazyd_format_stats(struct lazyd *d, bool json, struct strbuf *out);
void lazyd_format_prometheus(struct lazyd *d, struct strbuf *out);
int lazyd_start_control(struct lazyd *d);
void lazyd_stop_control(struct lazyd *d);

/* prefetch.c */
int lazyd_build_chunk_paths(struct lazyd *d);
void lazyd_first_use(void *opaque, struct lazy_blob *blob, uint32_t chunk);
int lazyd_start_prefetch(struct lazyd *d);
void lazyd_stop_prefetch(struct lazyd *d);
int lazyd_write_record(struct lazyd *d);
/* Fetch every chunk of one file (by path in the image). */
int lazyd_prefetch_path(struct lazyd *d, const char *path);

/* state.c: the state directory of a mount point (absolute path), and the
 * identity of the daemon serving it */
char *lazyd_state_dir_for(const char *mnt_abs);
/* Open it after privdir.h's checks (create: make it); -ENOENT quietly when
 * absent and !create. */
int lazyd_state_open(const char *state_dir, bool create);
/* Detach a user's FUSE mount (fusermount3 -u -z), where umount2 gave EPERM. */
void lazyd_fusermount_detach(const char *mnt);
/* Write this process's identity (pid, start time, boot id) as STATE/pid. */
int lazyd_state_write_pid(const char *state_dir);
/* A pidfd of the daemon that STATE/pid names, when that very process runs;
 * -ESRCH when it names none (a dead daemon, its pid maybe reused), -ENOENT
 * when there is no pid file. *pid gets the pid the file names. */
int lazyd_daemon_open(int state_fd, const char *state_dir, long *pid);
/* SIGTERM through the pidfd, and wait up to wait_ms for the exit. */
int lazyd_daemon_stop(int pidfd, long pid, const char *mnt, unsigned wait_ms);
/* Detach the mounts a dead daemon left (the tree at mnt if it is anole's,
 * the blobs' FUSE directory) and remove its state but the log. */
void lazyd_clean_stale(const char *mnt, const char *state_dir, long pid);
#endif
