// SPDX-License-Identifier: Apache-2.0
/*
 * `anole image mount`: set up the chunk cache and blob store, start the FUSE
 * session, mount, and serve until unmounted or signalled.
 *
 * The daemon forks before creating any thread; the parent waits on a pipe
 * until the mount is up (or prints the child's error), so `mount` returns
 * only when the tree is usable. Its state (pid, log, control socket, the
 * blobs' FUSE directory in kernel mode) lives in a directory derived from
 * the mount point, which `umount` and `stats` find again.
 */
#include "lazyd.h"
#include "anole/digest.h"
#include "anole/daemon.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/hashmap.h"
#include "anole/http.h"
#include "anole/policy.h"
#include "anole/ref.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

char *anole_default_cache_dir(void)
{
	struct strbuf p = STRBUF_INIT;
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	if (geteuid() == 0)
		strbuf_addstr(&p, "/var/cache/anole");
	else if (xdg && *xdg)
		strbuf_addf(&p, "%s/anole", xdg);
	else
		strbuf_addf(&p, "%s/.cache/anole", home && *home ? home : "/tmp");
	return strbuf_detach(&p, NULL);
}

static int mkdir_p(const char *path, mode_t mode)
{
	char *p = xstrdup(path);
	int ret = 0;

	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			ret = -errno;
		*s = '/';
	}
	if (!ret && mkdir(p, mode) < 0 && errno != EEXIST)
		ret = -errno;
	free(p);
	return ret ? anole_error(-ret, "cannot create %s", path) : 0;
}

static char *state_file(const char *dir, const char *name)
{
	struct strbuf p = STRBUF_INIT;

	strbuf_addf(&p, "%s/%s", dir, name);
	return strbuf_detach(&p, NULL);
}

static int write_text(const char *dir, const char *name, const char *text)
{
	char *path = state_file(dir, name);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	int ret = fd < 0 ? -errno : write_full(fd, text, strlen(text));

	if (fd >= 0)
		close(fd);
	if (ret)
		ret = anole_error(-ret, "cannot write %s", path);
	free(path);
	return ret;
}

/* ---- the lazy devices as seen by the reader (FUSE mode, prefetch) ---- */

static int attach_blobs(struct lazyd *d)
{
	const struct erofs_image *img = d->img;

	d->ndevblobs = img->ndevs - 1;
	d->devblobs = xcalloc(d->ndevblobs + 1, sizeof(*d->devblobs));
	for (unsigned dev = 1; dev < img->ndevs; dev++) {
		const struct anole_blob_info *info = NULL;
		int ret;

		for (unsigned i = 0; i < d->meta.nblobs; i++)
			if (d->meta.blobs[i].device_id == dev)
				info = &d->meta.blobs[i];
		if (!info)
			return anole_error_code(EINVAL, "%s: device %u has no chunk table (build with --blob-dir)",
						d->image, dev);
		if (memcmp(img->devslots[dev - 1].tag, info->hex, 64))
			return anole_error_code(EFSCORRUPTED, "%s: device %u tag does not match its chunk table",
						d->image, dev);
		ret = lazy_cache_add_blob(d->cache, info, &d->devblobs[dev - 1]);
		if (ret)
			return ret;
		d->img->devs[dev].size = info->uncompressed_size;
	}
	lazyd_readers_init(d);
	for (unsigned dev = 1; dev < img->ndevs; dev++) {
		d->img->devs[dev].pread = lazyd_dev_pread;
		d->img->devs[dev].opaque = lazyd_reader(d, dev - 1);
	}
	return 0;
}

static int open_sources(struct lazyd *d)
{
	struct lazy_cache_opts co = { 0 };
	char *cache_dir = NULL;
	int fd, ret;

	fd = open(d->image, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return anole_error(errno, "cannot open %s", d->image);
	ret = anole_blobmeta_read(fd, d->image, &d->meta);
	close(fd);
	if (ret == -ENOENT) {
		memset(&d->meta, 0, sizeof(d->meta));
		ret = 0;
	}
	if (ret)
		return ret;
	ret = anole_blobstore_open(&d->store, d->opts->blobs, d->opts->store);
	if (ret)
		return ret;
	if (!d->opts->cache_dir)
		cache_dir = anole_default_cache_dir();
	co.dir = d->opts->cache_dir ? d->opts->cache_dir : cache_dir;
	co.store = d->store;
	co.read_timeout_ms = d->opts->read_timeout_ms;
	co.keys = d->opts->decrypt_keys;
	co.nkeys = d->opts->ndecrypt_keys;
	co.first_use = d->opts->record_file ? lazyd_first_use : NULL;
	co.first_use_opaque = d;
	ret = lazy_cache_open(&d->cache, &co);
	free(cache_dir);
	if (!ret)
		ret = erofs_image_open(&d->img, d->image, NULL, 0);
	if (!ret)
		ret = attach_blobs(d);
	if (!ret && d->opts->record_file)
		ret = lazyd_build_chunk_paths(d);
	return ret;
}

/* ---- FUSE session ---- */

static void *fuse_main_thread(void *arg)
{
	struct lazyd *d = arg;
	struct fuse_loop_config *cfg = fuse_loop_cfg_create();

	/* keep the workers: creating a thread per burst of reads costs more */
	fuse_loop_cfg_set_max_threads(cfg, 16);
	fuse_loop_cfg_set_idle_threads(cfg, 16);
	fuse_session_loop_mt(d->se, cfg);
	fuse_loop_cfg_destroy(cfg);
	atomic_store(&d->fuse_loop_done, true);
	return NULL;
}

static int start_fuse(struct lazyd *d)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct strbuf o = STRBUF_INIT;
	int ret = 0;

	fuse_opt_add_arg(&args, "anole");
	if (d->kernel_mode)
		strbuf_addstr(&o, "ro,fsname=anole-blobs,subtype=anole,allow_other");
	else
		strbuf_addf(&o, "ro,fsname=anole,subtype=anole,default_permissions%s",
			    geteuid() == 0 ? ",allow_other" : "");
	fuse_opt_add_arg(&args, "-o");
	fuse_opt_add_arg(&args, o.buf);
	d->se = fuse_session_new(&args, d->kernel_mode ? &lazyd_blob_ops : &lazyd_tree_ops,
				 sizeof(struct fuse_lowlevel_ops), d);
	fuse_opt_free_args(&args);
	strbuf_release(&o);
	if (!d->se)
		return anole_error_code(EIO, "cannot create the FUSE session (is /dev/fuse there?)");
	if (fuse_session_mount(d->se, d->fuse_mnt))
		return anole_error_code(EIO, "cannot mount FUSE on %s", d->fuse_mnt);
	if (pthread_create(&d->fuse_thread, NULL, fuse_main_thread, d)) {
		ret = anole_error(EAGAIN, "cannot start the FUSE thread");
		fuse_session_unmount(d->se);
		return ret;
	}
	d->fuse_running = true;
	/* only now: stat() of our own mount needs the loop to answer */
	{
		struct stat st;

		if (stat(d->fuse_mnt, &st) == 0)
			d->fuse_dev = st.st_dev;
	}
	return 0;
}

/*
 * A read-only loop device over path, detached by the kernel once the last
 * user closes it; the caller keeps *fd open until EROFS holds the device.
 */
static int loop_attach(const char *path, char *dev, size_t devlen, int *fd)
{
	struct loop_config cfg = { 0 };
	int ctl, file, n;

	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0)
		return -errno;
	file = open(path, O_RDONLY | O_CLOEXEC);
	if (file < 0) {
		close(ctl);
		return -errno;
	}
	for (int tries = 0; tries < 8; tries++) {
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0)
			break;
		snprintf(dev, devlen, "/dev/loop%d", n);
		*fd = open(dev, O_RDONLY | O_CLOEXEC);
		if (*fd < 0)
			continue;
		cfg.fd = (uint32_t)file;
		cfg.info.lo_flags = LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR;
		if (ioctl(*fd, LOOP_CONFIGURE, &cfg) == 0) {
			close(file);
			close(ctl);
			return 0;
		}
		close(*fd);
		*fd = -1;
		if (errno != EBUSY)
			break;
	}
	n = errno ? -errno : -ENODEV;
	close(file);
	close(ctl);
	return n;
}

enum { VIA_FUSE, VIA_FILE, VIA_LOOP };

static int try_mount_erofs(struct lazyd *d, const int *via)
{
	struct strbuf data = STRBUF_INIT;
	int *loop_fds = xcalloc(d->ndevblobs + 1, sizeof(*loop_fds));
	int ret = 0;

	for (unsigned i = 0; i < d->ndevblobs; i++)
		loop_fds[i] = -1;
	for (unsigned i = 0; i < d->ndevblobs && !ret; i++) {
		struct lazy_blob *b = d->devblobs[i];
		char dev[32];

		strbuf_addstr(&data, i ? ",device=" : "device=");
		if (via[i] == VIA_FUSE) {
			strbuf_addf(&data, "%s/%s", d->fuse_mnt, lazy_blob_info(b)->hex);
		} else {
			/* the file we checked and hold open (cache.c), not its
			 * name looked up again */
			char fdpath[64];

			snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", lazy_blob_data_fd(b));
			if (via[i] == VIA_FILE)
				strbuf_addstr(&data, fdpath);
			else if (!(ret = loop_attach(fdpath, dev, sizeof(dev), &loop_fds[i])))
				strbuf_addstr(&data, dev);
		}
	}
	/* a regular file as source: the kernel's file-backed EROFS mode */
	if (!ret && mount(d->image, d->mnt, "erofs", MS_RDONLY, data.buf) < 0)
		ret = -errno;
	if (ret)
		anole_debug("mount %s (erofs, %s): %s", d->image, data.buf, strerror(-ret));
	for (unsigned i = 0; i < d->ndevblobs; i++)
		if (loop_fds[i] >= 0)
			close(loop_fds[i]);     /* EROFS holds it now, or it goes */
	free(loop_fds);
	strbuf_release(&data);
	return ret;
}

/*
 * Blobs whose every chunk is cached and verified are read by the kernel
 * straight from the cache file (through a loop device where file-backed
 * mounts are refused, e.g. on tmpfs): no FUSE round trip and no second
 * page cache. The rest go through our FUSE files. --record needs to see
 * reads, and --no-direct asks for FUSE throughout.
 */
static int mount_erofs(struct lazyd *d)
{
	int *via = xcalloc(d->ndevblobs + 1, sizeof(*via));
	bool any = false;
	int ret;

	for (unsigned i = 0; i < d->ndevblobs; i++) {
		via[i] = VIA_FUSE;
		if (!d->opts->no_direct && !d->opts->record_file && lazy_blob_complete(d->devblobs[i])) {
			via[i] = VIA_FILE;
			any = true;
		}
	}
	ret = try_mount_erofs(d, via);
	if (ret && any) {
		for (unsigned i = 0; i < d->ndevblobs; i++)
			via[i] = via[i] == VIA_FILE ? VIA_LOOP : via[i];
		ret = try_mount_erofs(d, via);
	}
	if (ret && any) {
		for (unsigned i = 0; i < d->ndevblobs; i++)
			via[i] = VIA_FUSE;
		ret = try_mount_erofs(d, via);
	}
	if (ret) {
		ret = anole_error(-ret, "cannot mount %s on %s (erofs)", d->image, d->mnt);
	} else {
		d->erofs_mounted = true;
		for (unsigned i = 0; i < d->ndevblobs; i++)
			d->direct_blobs += via[i] != VIA_FUSE;
		if (d->direct_blobs)
			anole_info("%u of %u blobs complete in the cache: read directly", d->direct_blobs,
				   d->ndevblobs);
	}
	free(via);
	return ret;
}

static bool still_mounted(const char *mnt, dev_t fs_dev)
{
	struct stat st;

	return stat(mnt, &st) == 0 && st.st_dev == fs_dev;
}

/*
 * Abort our FUSE connection through fusectl: the workers blocked reading
 * /dev/fuse return even when another mount namespace still holds a copy
 * of the mount (then unmounting here alone would never wake them).
 */
static void abort_fuse_connection(dev_t dev)
{
	char path[96];
	int fd;

	if (access("/sys/fs/fuse/connections", F_OK) == 0 &&
	    access("/sys/fs/fuse/connections/.", W_OK) != 0)
		return;
	if (mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) < 0 && errno != EBUSY)
		anole_debug("fusectl: %s", strerror(errno));
	snprintf(path, sizeof(path), "/sys/fs/fuse/connections/%u/abort", minor(dev));
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	if (write(fd, "1", 1) < 0)
		anole_debug("%s: %s", path, strerror(errno));
	close(fd);
}

static void shutdown_mount(struct lazyd *d)
{
	pthread_mutex_lock(&d->stop_lock);
	if (atomic_exchange(&d->stopping, true)) {
		pthread_mutex_unlock(&d->stop_lock);
		return;
	}
	/* readers waiting on a stalled store get EIO now, not at their deadline,
	 * and the FUSE workers they hold can finish */
	anole_blobstore_cancel(d->store);
	if (d->erofs_mounted && umount2(d->mnt, 0) < 0 && errno != EINVAL) {
		anole_warn("%s is busy: detaching it (MNT_DETACH)", d->mnt);
		umount2(d->mnt, MNT_DETACH);
	}
	d->erofs_mounted = false;
	if (d->se) {
		fuse_session_exit(d->se);
		fuse_session_unmount(d->se);   /* wakes the loop's threads */
		for (int i = 0; i < 50 && !atomic_load(&d->fuse_loop_done); i++) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
		}
		if (!atomic_load(&d->fuse_loop_done) && d->fuse_dev)
			abort_fuse_connection(d->fuse_dev);
	}
	pthread_mutex_unlock(&d->stop_lock);
}

/* Serve until a signal, an external unmount, or the FUSE loop ending. */
static void serve(struct lazyd *d, const sigset_t *sigs)
{
	struct timespec tick = { 0, 300 * 1000 * 1000 };
	struct stat st;
	dev_t fs_dev = stat(d->mnt, &st) == 0 ? st.st_dev : 0;

	bool detached = false;

	for (;;) {
		int sig = sigtimedwait(sigs, NULL, &tick);

		if (sig > 0) {
			anole_info("signal %d: unmounting %s", sig, d->mnt);
			break;
		}
		if (atomic_load(&d->fuse_loop_done)) {
			anole_info("the FUSE session of %s ended", d->mnt);
			d->erofs_mounted = false;
			break;
		}
		if (!detached && !still_mounted(d->mnt, fs_dev)) {
			detached = true;
			d->erofs_mounted = false;
			anole_info("%s was unmounted", d->mnt);
		}
		/* kernel mode: a lazily detached mount lives while its files are
		 * open, and needs us until the kernel closes the blob files;
		 * fuse mode: the session ends by itself when the last file closes */
		if (detached && d->kernel_mode && atomic_load(&d->open_files) <= 0)
			break;
	}
	shutdown_mount(d);
}

static void cleanup(struct lazyd *d)
{
	if (d->fuse_running)
		pthread_join(d->fuse_thread, NULL);
	d->fuse_running = false;
	if (d->se)
		fuse_session_destroy(d->se);
	d->se = NULL;
	lazyd_stop_prefetch(d);
	lazyd_stop_control(d);
	lazyd_write_record(d);
	if (d->img)
		erofs_image_close(d->img);
	lazy_cache_close(d->cache);
	anole_blobstore_close(d->store);
	anole_blobmeta_free(&d->meta);
	if (d->state_dir) {
		char *p;

		p = state_file(d->state_dir, "pid"); unlink(p); free(p);
		p = state_file(d->state_dir, "ctl.sock"); unlink(p); free(p);
		p = state_file(d->state_dir, "mountpoint"); unlink(p); free(p);
		if (d->kernel_mode)
			rmdir(d->fuse_mnt);
	}
	for (size_t i = 0; i < d->npaths; i++)
		free(d->paths[i]);
	free(d->paths);
	if (d->chunk_paths)
		for (unsigned i = 0; i < d->ndevblobs; i++)
			free((void *)d->chunk_paths[i]);
	free(d->chunk_paths);
	lazyd_readers_free(d);
	free(d->recorded);
	if (d->recorded_set) {
		anole_hashmap_free(d->recorded_set);
		free(d->recorded_set);
	}
	free(d->devblobs);
}

static int run_daemon(struct lazyd *d, int ready_fd)
{
	sigset_t sigs;
	int ret;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);   /* every thread inherits it */
	signal(SIGPIPE, SIG_IGN);

	ret = open_sources(d);
	if (!ret && d->kernel_mode)
		ret = mkdir_p(d->fuse_mnt, 0700);
	if (!ret)
		ret = start_fuse(d);
	if (!ret && d->kernel_mode)
		ret = mount_erofs(d);
	if (!ret)
		ret = lazyd_start_control(d);
	if (!ret)
		ret = lazyd_start_prefetch(d);
	if (!ret)
		ret = lazyd_state_write_pid(d->state_dir);
	if (!ret)
		ret = write_text(d->state_dir, "mountpoint", d->mnt);
	if (!ret)
		anole_info("mounted %s on %s (%s mode, pid %ld)", d->image, d->mnt,
			   d->kernel_mode ? "kernel" : "fuse", (long)getpid());
	anole_daemon_notify(ready_fd, ret);
	if (!ret)
		serve(d, &sigs);
	else
		shutdown_mount(d);
	cleanup(d);
	if (!ret && d->state_dir) {
		/* a clean stop leaves nothing behind; a failed start keeps its log */
		char *log = state_file(d->state_dir, "log");

		unlink(log);
		free(log);
		rmdir(d->state_dir);
	}
	return ret;
}

static int resolve(const char *path, char **out, bool want_dir)
{
	struct stat st;
	char *r = realpath(path, NULL);

	if (!r)
		return anole_error(errno, "cannot resolve %s", path);
	/* a FUSE mount whose daemon died: what a crashed mount left here,
	 * detached below if it is ours (then checked again) */
	if (want_dir && stat(r, &st) < 0 && errno == ENOTCONN) {
		*out = r;
		return 0;
	}
	if (stat(r, &st) < 0 || (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))) {
		free(r);
		return anole_error_code(want_dir ? ENOTDIR : EINVAL, "%s is not a %s", path,
					want_dir ? "directory" : "regular file");
	}
	*out = r;
	return 0;
}

static int mount_image_file(const struct anole_mount_opts *user_opts)
{
	struct anole_mount_opts abs = *user_opts, *opts = &abs;
	struct anole_blobstore_opts store = { 0 };
	struct lazyd d = { .opts = opts };
	char *owned[7], *log_path;
	int ready_fd, sfd, pidfd, ret;
	long old;
	pid_t child;

	/* the daemon runs in "/": every path it reads later is made absolute */
	owned[0] = anole_path_absolute(user_opts->blobs);
	owned[1] = anole_path_absolute(user_opts->cache_dir);
	owned[2] = anole_path_absolute(user_opts->prefetch_list);
	owned[3] = anole_path_absolute(user_opts->record_file);
	abs.blobs = owned[0];
	abs.cache_dir = owned[1];
	abs.prefetch_list = owned[2];
	abs.record_file = owned[3];
	if (user_opts->store)
		store = *user_opts->store;
	store.auth_file = owned[4] = anole_path_absolute(store.auth_file);
	store.ca_file = owned[5] = anole_path_absolute(store.ca_file);
	if (!store.registries_conf && getenv("CONTAINERS_REGISTRIES_CONF") &&
	    *getenv("CONTAINERS_REGISTRIES_CONF"))
		store.registries_conf = getenv("CONTAINERS_REGISTRIES_CONF");
	store.registries_conf = owned[6] = anole_path_absolute(store.registries_conf);
	abs.store = &store;

	pthread_mutex_init(&d.stop_lock, NULL);
	pthread_mutex_init(&d.rec_lock, NULL);
	ret = resolve(opts->image, &d.image, false);
	if (!ret)
		ret = resolve(opts->mountpoint, &d.mnt, true);
	if (ret)
		goto out;
	d.kernel_mode = opts->mode == ANOLE_MOUNT_KERNEL ||
			(opts->mode == ANOLE_MOUNT_AUTO && geteuid() == 0);
	if (d.kernel_mode && geteuid() != 0) {
		ret = anole_error_code(EPERM, "kernel mode needs root (use --mode fuse)");
		goto out;
	}
	d.state_dir = lazyd_state_dir_for(d.mnt);
	sfd = lazyd_state_open(d.state_dir, true);
	if (sfd < 0) {
		ret = sfd;
		goto out;
	}
	pidfd = lazyd_daemon_open(sfd, d.state_dir, &old);
	close(sfd);
	if (pidfd >= 0) {
		close(pidfd);
		ret = anole_error_code(EBUSY, "%s is already served by anole (pid %ld)", d.mnt, old);
		goto out;
	}
	if (pidfd == -ESRCH)
		lazyd_clean_stale(d.mnt, d.state_dir, old);
	else if (pidfd != -ENOENT && (ret = pidfd))
		goto out;
	{
		struct stat st;

		if (stat(d.mnt, &st) < 0 || !S_ISDIR(st.st_mode)) {
			ret = anole_error(errno ? errno : ENOTDIR, "cannot mount on %s", d.mnt);
			goto out;
		}
	}
	d.fuse_mnt = d.kernel_mode ? state_file(d.state_dir, "blobs") : xstrdup(d.mnt);

	if (opts->foreground) {
		ret = run_daemon(&d, -1);
		goto out;
	}
	log_path = state_file(d.state_dir, "log");
	child = anole_daemon_fork(log_path, 0600, &ready_fd);
	free(log_path);
	if (child < 0) {
		ret = (int)child;
		goto out;
	}
	if (child == 0) {
		anole_log_set_level(ANOLE_LOG_INFO);
		ret = run_daemon(&d, ready_fd);
		_exit(ret ? 1 : 0);
	}
	ret = anole_daemon_wait_ready(ready_fd, child, "the mount daemon");
out:
	free(d.image);
	free(d.mnt);
	free(d.state_dir);
	free(d.fuse_mnt);
	for (size_t i = 0; i < ARRAY_SIZE(owned); i++)
		free(owned[i]);
	return ret;
}

/*
 * An image reference (anole/ref.h) names the metadata image and where its
 * blobs are: oci:DIR[:TAG] its layout, docker://... its registry (the
 * manifest and metadata layer are fetched into the cache now, the blobs
 * read lazily). A plain path is an image file; opts->blobs says where.
 * --blobs, when given, overrides where the blobs are read from.
 */
int anole_image_mount(const struct anole_mount_opts *user_opts)
{
	struct anole_mount_opts o = *user_opts;
	struct anole_resolved_image img = { 0 };
	struct anole_ref ref;
	char *cache = NULL, *pinned = NULL;
	int ret;

	ret = anole_ref_parse(user_opts->image, ANOLE_REF_PATH, &ref);
	if (ret)
		return ret;
	/* trust first: nothing of the image is fetched or read before this */
	ret = anole_policy_pin(o.policy, user_opts->image, &ref, o.store, &pinned);
	if (ret) {
		anole_ref_free(&ref);
		return ret;
	}
	if (ref.transport == ANOLE_REF_DOCKER && !o.cache_dir)
		o.cache_dir = cache = anole_default_cache_dir();
	ret = anole_ref_resolve(&ref, NULL, o.cache_dir, o.store, &img);
	if (!ret && pinned)
		ret = anole_ref_check_pinned(&ref, pinned, &img);
	if (!ret) {
		o.image = img.image;
		if (!o.blobs)
			o.blobs = img.blobs;
		if (!o.blobs)
			ret = anole_error_code(EINVAL, "%s: an image file needs the blob store its blobs are in (--blobs STORE)",
					       user_opts->image);
	}
	if (!ret)
		ret = mount_image_file(&o);
	anole_resolved_image_free(&img);
	anole_ref_free(&ref);
	free(cache);
	free(pinned);
	return ret;
}

#define STOP_WAIT_MS 10000      /* the daemon's own stop is bounded (shutdown_mount) */

int anole_image_umount(const char *mountpoint, bool lazy)
{
	char *mnt = realpath(mountpoint, NULL), *state;
	int sfd, pidfd = -1, ret = 0;
	long pid;

	if (!mnt)
		return anole_error(errno, "cannot resolve %s", mountpoint);
	state = lazyd_state_dir_for(mnt);
	sfd = lazyd_state_open(state, false);
	if (sfd == -ENOENT) {
		ret = anole_error_code(EINVAL, "%s is not served by an anole daemon", mnt);
		goto out;
	}
	if (sfd < 0) {
		ret = sfd;
		goto out;
	}
	pidfd = lazyd_daemon_open(sfd, state, &pid);
	close(sfd);
	if (pidfd == -ENOENT) {
		ret = anole_error_code(EINVAL, "%s is not served by an anole daemon", mnt);
		goto out;
	}
	if (pidfd == -ESRCH) {
		/* crashed: nobody to signal, but its mounts and state to undo */
		lazyd_clean_stale(mnt, state, pid);
		goto out;
	}
	if (pidfd < 0) {
		ret = pidfd;
		goto out;
	}
	if (lazy) {
		/* the daemon serves a detached mount until its last file closes */
		if (umount2(mnt, MNT_DETACH) < 0 && errno == EPERM)
			lazyd_fusermount_detach(mnt);
		goto out;
	}
	if (umount2(mnt, 0) < 0) {
		if (errno == EBUSY) {
			ret = anole_error_code(EBUSY, "%s is busy (files open); use --lazy to detach it",
					       mnt);
			goto out;
		}
		if (errno == EPERM)     /* a user's FUSE mount */
			lazyd_fusermount_detach(mnt);
	}
	ret = lazyd_daemon_stop(pidfd, pid, mnt, STOP_WAIT_MS);
out:
	if (pidfd >= 0)
		close(pidfd);
	free(state);
	free(mnt);
	return ret;
}

/* GET /stats on the daemon's control socket (control.c). */
int anole_image_stats(const char *mountpoint, bool json, struct strbuf *out)
{
	char *mnt = realpath(mountpoint, NULL), *state;
	struct anole_http_opts ho = { .timeout_ms = 10000 };
	struct anole_http_request req = {
		.url = json ? "http://localhost/stats" : "http://localhost/stats?format=text",
		.body_out = out,
	};
	struct anole_http_response resp;
	struct anole_http *http = NULL;
	int ret;

	if (!mnt)
		return anole_error(errno, "cannot resolve %s", mountpoint);
	state = lazyd_state_dir_for(mnt);
	/* the state directory is checked as umount checks it: a socket in a
	 * directory someone else made is not our daemon's */
	ret = lazyd_state_open(state, false);
	if (ret < 0) {
		if (ret == -ENOENT)
			ret = anole_error_code(EINVAL, "%s is not served by an anole daemon", mnt);
		free(state);
		free(mnt);
		return ret;
	}
	close(ret);
	ho.unix_socket = state_file(state, "ctl.sock");
	anole_http_response_init(&resp);
	ret = anole_http_new(&http, &ho);
	if (!ret)
		ret = anole_http_request(http, &req, &resp);
	/* curl's words would name "localhost port 80": say which socket it was */
	if (ret == -ECONNREFUSED || ret == -ECONNRESET)
		ret = anole_error_code(ret, "%s is not served by an anole daemon (nothing answers "
				       "on %s)", mnt, ho.unix_socket);
	else if (ret)
		ret = anole_error_code(ret, "%s: cannot ask its daemon for stats: %s", mnt,
				       resp.error);
	else if (resp.status != 200)
		ret = anole_error_code(resp.status == 403 ? -EACCES : -EIO,
				       "%s: its daemon answered %ld: %s", mnt, resp.status,
				       resp.errbody.len ? resp.errbody.buf : resp.reason);
	anole_http_response_release(&resp);
	anole_http_free(http);
	free((char *)ho.unix_socket);
	free(state);
	free(mnt);
	return ret;
}
