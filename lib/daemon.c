// SPDX-License-Identifier: Apache-2.0
/* Forking a daemon that reports whether it started (see anole/daemon.h). */
#include "anole/daemon.h"

#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The child: a new session in "/", stdin from /dev/null, stdout and
 * stderr to log (or /dev/null when log < 0). */
static void detach(int log)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	setsid();
	if (chdir("/") < 0)
		anole_debug("chdir /: %s", strerror(errno));
	if (null >= 0)
		dup2(null, STDIN_FILENO);
	if (log < 0)
		log = null;
	if (log >= 0) {
		dup2(log, STDOUT_FILENO);
		dup2(log, STDERR_FILENO);
	}
	if (log >= 0 && log != null)
		close(log);
	if (null >= 0)
		close(null);
}

pid_t anole_daemon_fork(const char *log_file, mode_t log_mode, int *ready_fd)
{
	int pipefd[2], log = -1;
	pid_t child;

	/* the log is opened before the fork: a bad path fails the command */
	if (log_file && (log = open(log_file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, log_mode)) < 0)
		return anole_error(errno, "cannot open the log file %s", log_file);
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		child = anole_error(errno, "pipe");
		goto out;
	}
	fflush(NULL);
	child = fork();
	if (child == 0) {
		close(pipefd[0]);
		*ready_fd = pipefd[1];
		detach(log);
		return 0;
	}
	if (child < 0) {
		child = anole_error(errno, "fork");
		close(pipefd[0]);
	} else {
		*ready_fd = pipefd[0];
	}
	close(pipefd[1]);
out:
	if (log >= 0)
		close(log);
	return child;
}

void anole_daemon_notify(int fd, int ret)
{
	char msg[1100];

	if (fd < 0)
		return;
	snprintf(msg, sizeof(msg), "%d %s", ret, ret ? anole_last_error() : "");
	write_full(fd, msg, strlen(msg));
	close(fd);
}

int anole_daemon_wait_ready(int fd, pid_t child, const char *who)
{
	char buf[1200];
	size_t n = 0;
	ssize_t r;
	int code;

	while (n < sizeof(buf) - 1 && ((r = read(fd, buf + n, sizeof(buf) - 1 - n)) > 0 ||
				       (r < 0 && errno == EINTR)))
		n += r > 0 ? (size_t)r : 0;
	buf[n] = '\0';
	close(fd);
	if (!n) {
		waitpid(child, NULL, 0);
		return anole_error_code(EIO, "%s died while starting", who);
	}
	code = atoi(buf);
	if (code) {
		const char *msg = strchr(buf, ' ');

		waitpid(child, NULL, 0);
		/* the child logged it to its log file: say it here too */
		return anole_error_code(code < 0 ? -code : code, "%s",
					msg && msg[1] ? msg + 1 : "failed to start");
	}
	return 0;
}

char *anole_path_absolute(const char *path)
{
	struct strbuf sb = STRBUF_INIT;
	char cwd[PATH_MAX];

	if (!path)
		return NULL;
	if (path[0] == '/' || strstr(path, "://") || !getcwd(cwd, sizeof(cwd)))
		return xstrdup(path);
	strbuf_addf(&sb, "%s/%s", cwd, path);
	return strbuf_detach(&sb, NULL);
}
