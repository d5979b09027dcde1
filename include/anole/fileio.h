/* SPDX-License-Identifier: Apache-2.0 */
/* File I/O helpers: whole reads/writes, and temp file + rename outputs. */
#ifndef ANOLE_FILEIO_H
#define ANOLE_FILEIO_H
#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Loop over short reads/writes and EINTR. Return 0 or -errno; a short
 * pread (end of file) returns -ENODATA. */
int pread_full(int fd, void *buf, size_t len, uint64_t off);
int pwrite_full(int fd, const void *buf, size_t len, uint64_t off);
int write_full(int fd, const void *buf, size_t len);

/* Copy len bytes between files at the given offsets (copy_file_range,
 * falling back to read/write). -ENODATA if the source ends early. */
int anole_copy_range(int in_fd, uint64_t in_off, int out_fd, uint64_t out_off, uint64_t len);

/*
 * Append the whole of file PATH to sb (NUL-terminated), at most max bytes:
 * 0, -errno, or -EFBIG when the file holds more. Quiet: callers name the
 * file in their own message. A FIFO is read without waiting for a writer:
 * one nobody writes to reads as empty.
 */
struct strbuf;
int anole_read_file(const char *path, size_t max, struct strbuf *sb);

/*
 * Kernel attribute files (/proc, /sys, cgroup) and other small files.
 * anole_read_value: the content in one read(2), NUL-terminated, a trailing
 * newline dropped: its length, or -errno. anole_read_u64: a decimal value;
 * -EINVAL if the file holds none.
 */
int anole_read_value(const char *path, char *buf, size_t size);
int anole_read_u64(const char *path, uint64_t *v);
/*
 * Write len bytes over the file (O_TRUNC, as a shell's >), in one write(2)
 * where the file takes it (an attribute file takes a value per write; a
 * plain file's short writes are continued). create: O_CREAT (0644); sync:
 * fsync before close. 0 or -errno, quiet.
 */
int anole_write_whole(const char *path, const void *data, size_t len, bool create, bool sync);
/* A value to an attribute file; an empty one is written as a newline (a
 * write of no bytes never reaches the attribute's handler: v2 cpuset.cpus
 * takes "\n" as "inherit"). */
int anole_write_value(const char *path, const char *value);

/* SHA-256 (or alg) of len bytes of a file from offset 0. */
struct anole_digest_ctx;
int anole_digest_file(int fd, uint64_t len, unsigned alg, uint8_t out[32]);

/*
 * An output that appears under its final name only when complete:
 * written to "DIR/.NAME.XXXXXX", renamed over NAME by commit, and unlinked
 * by abort (or by the process's exit handler if neither ran).
 */
struct anole_output {
	int fd;
	char *path;
	char *tmp_path;
	bool no_sync;           /* set after open: a scratch output (a layout that
	                           is pushed and removed), renamed without fsync */
};

int anole_output_open(struct anole_output *out, const char *path);
int anole_output_commit(struct anole_output *out);
/* Change the final name (same directory) before commit: outputs named by
 * their content digest learn it at the end. */
void anole_output_rename_target(struct anole_output *out, const char *path);
void anole_output_abort(struct anole_output *out);
/* For commands: SIGINT/SIGTERM/SIGHUP/SIGQUIT remove uncommitted outputs. */
void anole_output_cleanup_on_signals(void);

/* A new private (0700) directory $TMPDIR/PREFIX.XXXXXX (default /var/tmp:
 * it may hold whole images). 0 or a logged -errno. */
int anole_temp_dir(const char *prefix, char **path);
/* Remove a tree, depth first, never following symbolic links. 0, or the
 * first failure as a logged -errno (the rest is still removed). */
int anole_remove_tree(const char *path);
#endif
