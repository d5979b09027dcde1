/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private directories and the files in them (the lazy-mount chunk cache,
 * the mount daemons' state), checked as ssh checks ~/.ssh: what anole
 * trusts must be something only this user (the effective uid) can change.
 *
 *   - the directory and every file in it are owned by the effective uid and
 *     not writable by group or others; files are regular, with one link
 *     (a hard link made into the directory before it was closed could be a
 *     file elsewhere);
 *   - every directory above it is owned by root or the effective uid and is
 *     not writable by group or others, unless sticky (/tmp): else whoever
 *     can write there could replace the directory after the check;
 *   - a symbolic link as the directory's own name is followed only when
 *     root or the effective uid made it (what protected_symlinks does, and
 *     a host may not turn that on);
 *   - files and subdirectories are opened relative to the checked directory
 *     with O_NOFOLLOW: no path is looked up twice.
 *
 * Each function logs a message naming the path and what is wrong with it,
 * and returns a negative errno: -EPERM for a check that failed.
 */
#ifndef ANOLE_PRIVDIR_H
#define ANOLE_PRIVDIR_H
#include <stdbool.h>

/* Open the directory path (O_DIRECTORY, O_CLOEXEC) after the checks above.
 * create: make it (and missing parents) with mode 0700 first. Returns the
 * descriptor or -errno. */
int anole_privdir_open(const char *path, bool create);

/* Open or create the subdirectory name of dirfd (a checked directory whose
 * path is dir_path, for messages), with the same checks. */
int anole_privdir_sub(int dirfd, const char *dir_path, const char *name, bool create);

/* Open the file name in dirfd with flags (O_NOFOLLOW, O_NONBLOCK and
 * O_CLOEXEC are added; O_CREAT makes it with mode 0600) and check it.
 * Returns the descriptor or -errno (-ENOENT quietly when it is absent and
 * O_CREAT is not given). */
int anole_privdir_file(int dirfd, const char *dir_path, const char *name, int flags);
#endif
