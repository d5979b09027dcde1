/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Daemons that tell the command which started them whether they came up
 * (the lazy-mount daemon, `anole monitor -d`): the command forks, the child
 * detaches and, once serving or failed, writes "0 " or "-errno message" on
 * a pipe; the command waits for that line, so its exit status and message
 * are the daemon's.
 */
#ifndef ANOLE_DAEMON_H
#define ANOLE_DAEMON_H
#include <sys/types.h>

/*
 * Fork. In the parent: the child's pid, *ready_fd the pipe's read end (for
 * anole_daemon_wait_ready). In the child: 0, in a new session, in "/",
 * stdin on /dev/null, stdout and stderr on log_file (opened for appending
 * with log_mode, before the fork; NULL: /dev/null), *ready_fd the write end
 * (for anole_daemon_notify). Or a reported -errno (nothing forked).
 */
pid_t anole_daemon_fork(const char *log_file, mode_t log_mode, int *ready_fd);

/* Child: report ret (0, or -errno with anole_last_error()) and close fd;
 * nothing when fd < 0 (not daemonized). */
void anole_daemon_notify(int fd, int ret);

/* Parent: wait for the child's report. 0, or its error reported again
 * (who: "the mount daemon"; if it died without a word, -EIO). */
int anole_daemon_wait_ready(int fd, pid_t child, const char *who);

/* PATH made absolute against the current directory, since a daemon runs
 * in "/"; absolute paths, URLs ("scheme://") and NULL stay as they are. */
char *anole_path_absolute(const char *path);

#endif
