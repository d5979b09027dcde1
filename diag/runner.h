/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Running a diag tool (runner.c): its signals, its hook, the event loop and
 * when it reports. `anole diag` (cmd/diag.c) parses options into a struct
 * diag_opts and calls diag_run(); the monitor's agent uses the same
 * signal, clock, wait and period helpers for its own loop.
 */
#ifndef ANOLE_DIAG_RUNNER_H
#define ANOLE_DIAG_RUNNER_H
#include <poll.h>
#include <signal.h>
#include <stdbool.h>

#include "hooks.h"

struct diag_tool;
struct diag_opts;

/* ------------------------------------------------------------ signals */

/*
 * SIGINT, SIGTERM and SIGHUP ask a run to stop. They are blocked from
 * diag_signals_block() on and taken only inside diag_wait() (ppoll with
 * .unblocked), so one that arrives while programs load is not lost: the
 * loop sees it at its first wait and detaches cleanly.
 */
struct diag_signals {
	sigset_t unblocked; /* the mask before, minus the stop signals */
	sigset_t saved;     /* the mask before, restored at the end */
};
void diag_signals_block(struct diag_signals *s);
/* Also wake diag_wait() on SIGCHLD (blocked elsewhere), for `-- COMMAND`. */
void diag_signals_add_child(struct diag_signals *s);
void diag_signals_restore(const struct diag_signals *s);
/* The stop signal received, 0 if none. */
int diag_stop_signal(void);

/* ------------------------------------------------------------ time */

double diag_now_mono(void);
double diag_now_real(void);

/*
 * Wait for pfd (n of them, may be 0) until DEADLINE (CLOCK_MONOTONIC
 * seconds, INFINITY for none) or a signal: ppoll's result, 0 on EINTR or
 * timeout, -errno on error. Stop signals are taken here only.
 */
int diag_wait(struct pollfd *pfd, nfds_t n, double deadline, const struct diag_signals *s);

/*
 * A periodic deadline: reports, samples. When one is overdue after a long
 * stop (a loaded machine, a suspended process), the missed ones are
 * skipped rather than run in a burst.
 */
struct diag_period {
	double next;     /* INFINITY: never */
	double interval;
};
void diag_period_start(struct diag_period *p, double first, double interval);
/* Is it due at NOW? If so, move on to the next one. */
bool diag_period_due(struct diag_period *p, double now);

/* ------------------------------------------------------------ running a tool */

/*
 * Everything between parsed options and exit: block the stop signals,
 * load the first hook that works (else report each reason), start the
 * tool, release `-- COMMAND`, loop (events, reports every interval, until
 * COUNT reports, --duration, a stop signal or the command's exit), the
 * last report, detach. 0, or 1 after reporting the error.
 */
int diag_run(const struct diag_tool *t, struct diag_opts *o);

/*
 * `anole diag list`: does tool T load here, and how? 0 with *res saying
 * the hook and attach points (loaded and attached for a moment, then
 * freed), else -errno with every reason in *res. A tool without BPF runs
 * wherever its source can be read: 0 with res->variant -1.
 */
int diag_probe(const struct diag_tool *t, bool btf, struct diag_hooks_result *res);

/* The --hook list names at least one hook T offers? */
bool diag_hooks_offered(const struct diag_tool *t, const char *hooks);

#endif
