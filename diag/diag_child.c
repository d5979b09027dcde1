// SPDX-License-Identifier: Apache-2.0
/*
 * A command run under a diag tool (`anole diag memleak -- CMD ARGS`): it is
 * forked first and waits, so the tool can attach to its pid before it
 * runs a single instruction of its own, then execs when released. It is
 * traced (PTRACE_SEIZE, PTRACE_O_TRACEEXIT) only to stop at its exit while
 * its memory still exists: the tool's last report can still read its maps
 * to name symbols. Signals it receives are passed on unchanged.
 */
#include "diag.h"

#include "anole/error.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int diag_child_spawn(struct diag_child *c, char **argv)
{
	int release[2], status[2];
	pid_t parent = getpid(), pid;

	memset(c, 0, sizeof(*c));
	c->release_fd = c->status_fd = -1;
	c->name = argv[0];
	if (pipe2(release, O_CLOEXEC))
		return anole_error(errno, "cannot start %s", argv[0]);
	if (pipe2(status, O_CLOEXEC)) {
		int e = errno;

		close(release[0]);
		close(release[1]);
		return anole_error(e, "cannot start %s", argv[0]);
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		int e = errno;

		close(release[0]);
		close(release[1]);
		close(status[0]);
		close(status[1]);
		return anole_error(e, "cannot start %s", argv[0]);
	}
	if (!pid) {
		/* only async-signal-safe calls until exec */
		char go;
		int e;

		close(release[1]);
		close(status[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* the tool died before releasing it */
		if (getppid() != parent || read(release[0], &go, 1) != 1)
			_exit(127);
		prctl(PR_SET_PDEATHSIG, 0);
		execvp(argv[0], argv);
		e = errno;
		if (write(status[1], &e, sizeof(e)) < 0)
			_exit(127);
		_exit(127);
	}
	close(release[0]);
	close(status[1]);
	c->pid = pid;
	c->release_fd = release[1];
	c->status_fd = status[0];
	if (!ptrace(PTRACE_SEIZE, pid, NULL, (void *)(long)PTRACE_O_TRACEEXIT))
		c->traced = true;
	else
		anole_info("cannot trace %s (%s): symbols of its last report may be missing",
			   argv[0], strerror(errno));
	return 0;
}

int diag_child_release(struct diag_child *c)
{
	ssize_t n;
	int e = 0;

	if (c->release_fd < 0)
		return 0;
	n = write(c->release_fd, "x", 1);
	close(c->release_fd);
	c->release_fd = -1;
	if (n != 1)
		return anole_error(errno, "cannot start %s", c->name);
	/* EOF: exec succeeded (the pipe is close-on-exec); else its errno */
	do
		n = read(c->status_fd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	close(c->status_fd);
	c->status_fd = -1;
	if (n == (ssize_t)sizeof(e))
		return anole_error(e, "cannot run %s", c->name);
	return 0;
}

/* One wait status: false while it runs, true once it is at exit or gone. */
static bool handle_status(struct diag_child *c, int st)
{
	unsigned event = (unsigned)st >> 16;

	if (WIFEXITED(st) || WIFSIGNALED(st)) {
		c->reaped = c->exiting = true;
		c->status = st;
		return true;
	}
	if (!WIFSTOPPED(st))
		return false;
	if (event == PTRACE_EVENT_EXIT) {
		c->exiting = c->at_exit = true; /* stays stopped until diag_child_finish */
		return true;
	}
	if (event == PTRACE_EVENT_STOP) /* group-stop (SIGSTOP, Ctrl-Z): stay stopped */
		ptrace(PTRACE_LISTEN, c->pid, NULL, NULL);
	else /* a signal for it: deliver it */
		ptrace(PTRACE_CONT, c->pid, NULL, (void *)(long)WSTOPSIG(st));
	return false;
}

bool diag_child_poll(struct diag_child *c)
{
	int st;

	while (!c->exiting) {
		pid_t r = waitpid(c->pid, &st, WNOHANG | __WALL);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r < 0) /* not ours any more: treat as gone */
				c->reaped = c->exiting = true;
			break;
		}
		handle_status(c, st);
	}
	return c->exiting;
}

void diag_child_finish(struct diag_child *c)
{
	struct timespec tick = { 0, 10 * 1000 * 1000 };
	int st, waited = 0;
	bool killed = false;

	if (!c->pid)
		return;
	if (c->release_fd >= 0) { /* never released: it exits on EOF */
		close(c->release_fd);
		c->release_fd = -1;
	}
	if (c->status_fd >= 0) {
		close(c->status_fd);
		c->status_fd = -1;
	}
	/* still running: it was started for this run, it ends with it */
	if (!c->exiting)
		kill(c->pid, SIGTERM);
	while (!c->reaped) {
		pid_t r = waitpid(c->pid, &st, WNOHANG | __WALL);

		if (r < 0 && errno != EINTR)
			break;
		if (r > 0) {
			if (handle_status(c, st) && c->at_exit && !c->reaped) {
				c->at_exit = false;
				ptrace(PTRACE_CONT, c->pid, NULL, NULL);
			}
			continue;
		}
		if (c->at_exit) {
			c->at_exit = false;
			ptrace(PTRACE_CONT, c->pid, NULL, NULL);
			continue;
		}
		if (++waited == 200 && !killed) { /* 2 s after SIGTERM */
			kill(c->pid, SIGKILL);
			killed = true;
		}
		nanosleep(&tick, NULL);
	}
	if (c->reaped && WIFSIGNALED(c->status) && WTERMSIG(c->status) != SIGTERM)
		anole_info("%s: killed by signal %d", c->name, WTERMSIG(c->status));
	else if (c->reaped && WIFEXITED(c->status))
		anole_info("%s: exited with status %d", c->name, WEXITSTATUS(c->status));
}
