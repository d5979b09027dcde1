// SPDX-License-Identifier: Apache-2.0
/*
 * Running a diag tool (see runner.h): the stop signals, the hook choice,
 * the event loop and report timing, shared by every tool; the monitor's
 * agent uses the signal, clock, wait and period helpers for its loop.
 */
#include "runner.h"
#include "diag.h"

#include "anole/clock.h"
#include "anole/error.h"
#include "anole/strbuf.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- signals */

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

/* only to interrupt ppoll(): the caller looks at what happened */
static void on_wake_signal(int sig) { (void)sig; }

static const int stop_signals[] = { SIGINT, SIGTERM, SIGHUP };

void diag_signals_block(struct diag_signals *s)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigset_t block;

	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
		sigaddset(&block, stop_signals[i]);
	sigprocmask(SIG_BLOCK, &block, &s->saved);
	sigemptyset(&sa.sa_mask);
	s->unblocked = s->saved;
	for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
		sigaction(stop_signals[i], &sa, NULL);
		sigdelset(&s->unblocked, stop_signals[i]);
	}
}

void diag_signals_add_child(struct diag_signals *s)
{
	struct sigaction sc = { .sa_handler = on_wake_signal };
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGCHLD);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&sc.sa_mask);
	sigaction(SIGCHLD, &sc, NULL);
	sigdelset(&s->unblocked, SIGCHLD);
}

void diag_signals_restore(const struct diag_signals *s)
{
	sigprocmask(SIG_SETMASK, &s->saved, NULL);
}

int diag_stop_signal(void) { return stop_signal; }

/* ---------------------------------------------------------------- time */

double diag_now_mono(void)
{
	return anole_mono_seconds();
}

double diag_now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int diag_wait(struct pollfd *pfd, nfds_t n, double deadline, const struct diag_signals *s)
{
	struct timespec ts, *tsp = NULL;
	int ret;

	if (deadline < INFINITY) {
		double now = diag_now_mono(), left = deadline > now ? deadline - now : 0;

		ts.tv_sec = (time_t)left;
		ts.tv_nsec = (long)((left - (double)ts.tv_sec) * 1e9);
		tsp = &ts;
	}
	ret = ppoll(pfd, n, tsp, &s->unblocked);
	if (ret < 0)
		return errno == EINTR ? 0 : -errno;
	return ret;
}

void diag_period_start(struct diag_period *p, double first, double interval)
{
	p->next = first;
	p->interval = interval;
}

bool diag_period_due(struct diag_period *p, double now)
{
	if (now < p->next)
		return false;
	p->next += p->interval;
	if (p->next < now) /* stopped for a while: skip the missed ones */
		p->next = now + p->interval;
	return true;
}

/* ---------------------------------------------------------------- running a tool */

struct run_ctx {
	const struct diag_tool *t;
	const struct diag_opts *o;
};

static int run_prepare(void *skel, void *arg)
{
	struct run_ctx *rc = arg;

	return rc->t->prepare ? rc->t->prepare(skel, rc->o) : 0;
}

static void report_no_hook(const struct diag_tool *t, const struct diag_hooks_result *res, int err)
{
	struct strbuf sb = STRBUF_INIT;

	for (int i = 0; i < res->nnotes; i++) {
		const struct diag_hook_note *n = &res->notes[i];

		strbuf_addf(&sb, "\n  %s: %s%s%s", n->hook, n->what, n->what[0] ? ": " : "", n->why);
	}
	if (!res->nnotes)
		strbuf_addstr(&sb, " (no hook selected by --hook)");
	anole_error_code(err, "%s: no hook loads on this kernel:%s%s", t->name, sb.buf,
			 geteuid() ? "\n(not running as root: loading BPF needs CAP_BPF and CAP_PERFMON)"
				   : "");
	strbuf_release(&sb);
}

/* The loop of an attached tool: events as they come, reports when due,
 * until COUNT reports, the end of --duration, a stop signal or the
 * command's exit. 0 or a reported -errno. */
static int run_loop(const struct diag_tool *t, struct diag_opts *o, void *skel,
		    struct ring_buffer *rb, const struct diag_signals *sig)
{
	double start = diag_now_mono(), end = o->duration ? start + o->duration : INFINITY;
	double last_report = -1;
	struct diag_period reports;
	long nreports = 0;
	int ret = 0;

	diag_period_start(&reports, (t->flags & DIAG_F_HIST) && o->interval ?
				    start + o->interval : INFINITY, o->interval);
	/* a snapshot reports at once; without INTERVAL that is all */
	if (t->flags & DIAG_F_SNAPSHOT) {
		reports.next = start;
		if (!o->interval)
			o->count = 1;
	}
	while (!stop_signal) {
		struct pollfd pfd = { .fd = rb ? ring_buffer__epoll_fd(rb) : -1, .events = POLLIN };
		double now;
		int n = diag_wait(&pfd, rb ? 1 : 0, end < reports.next ? end : reports.next, sig);

		if (n < 0) {
			ret = anole_error(-n, "%s: poll", t->name);
			break;
		}
		/* the command is exiting: its last report, while its maps are there */
		if (o->child && diag_child_poll(o->child)) {
			anole_info("%s: %s is exiting", t->name, o->child->name);
			break;
		}
		if (rb) {
			n = ring_buffer__consume(rb);
			fflush(stdout);
			if (n < 0 && n != -EINTR) {
				ret = anole_error(-n, "%s: reading events", t->name);
				break;
			}
		}
		now = diag_now_mono();
		if (diag_period_due(&reports, now)) {
			if ((ret = t->report(skel, o))) {
				anole_error(-ret, "%s: reading the histogram", t->name);
				break;
			}
			last_report = now;
			if (o->count && ++nreports >= o->count)
				break;
		}
		if (now >= end)
			break;
	}
	if (rb)
		ring_buffer__consume(rb);
	/* the partial interval (or the only report), unless just printed */
	if (!ret && (t->flags & DIAG_F_HIST) && !(t->flags & DIAG_F_SNAPSHOT) &&
	    !(o->count && nreports >= o->count) &&
	    diag_now_mono() - last_report > 0.05 && (ret = t->report(skel, o)))
		anole_error(-ret, "%s: reading the histogram", t->name);
	return ret;
}

int diag_run(const struct diag_tool *t, struct diag_opts *o)
{
	struct run_ctx rc = { t, o };
	struct diag_hooks_opts ho = { .tool = t->name, .only = o->hooks, .prepare = run_prepare,
				      .arg = &rc };
	struct diag_hooks_result res;
	struct diag_signals sig;
	struct ring_buffer *rb = NULL;
	void *skel = NULL;
	int ret;

	diag_signals_block(&sig);
	if (o->child)
		diag_signals_add_child(&sig);
	o->mono_to_real = diag_now_real() - diag_now_mono();
	ret = t->skel ? diag_hooks_open(t->skel, t->variants_for_opts ? t->variants_for_opts() :
					t->variants, &ho, &skel, &res) : 0;
	if (ret) {
		report_no_hook(t, &res, ret);
		ret = 1;
		goto out;
	}
	if (t->start && (ret = t->start(skel, o, &rb))) {
		anole_error(-ret, "%s: cannot start", t->name);
		ret = 1;
		goto out;
	}
	/* attached: the command may run now */
	if (o->child && diag_child_release(o->child)) {
		ret = 1;
		goto out;
	}
	ret = run_loop(t, o, skel, rb, &sig);
	if (t->stop)
		t->stop(skel, o);
	if (stop_signal)
		anole_info("%s: %s, detaching", t->name, strsignal(stop_signal));
	ret = ret ? 1 : 0;
out:
	ring_buffer__free(rb);
	if (skel)
		t->skel->destroy(skel);
	fflush(stdout);
	diag_signals_restore(&sig);
	return ret;
}

/* ---------------------------------------------------------------- list */

static int probe_prepare(void *skel, void *arg)
{
	const struct diag_tool *t = arg;
	struct diag_opts o = { 0 };

	return t->prepare ? t->prepare(skel, &o) : 0;
}

int diag_probe(const struct diag_tool *t, bool btf, struct diag_hooks_result *res)
{
	struct diag_hooks_opts ho = { .tool = t->name, .prepare = probe_prepare, .arg = (void *)t };
	void *skel = NULL;
	int ret;

	memset(res, 0, sizeof(*res));
	res->variant = -1;
	if (!t->skel)
		return 0;
	if (!btf) {
		snprintf(res->notes[res->nnotes++].why, sizeof(res->notes[0].why),
			 "this kernel has no BTF (CONFIG_DEBUG_INFO_BTF is off): "
			 "CO-RE programs cannot adapt to it");
		return -ENOENT;
	}
	ret = diag_hooks_open(t->skel, t->variants, &ho, &skel, res);
	if (!ret)
		t->skel->destroy(skel);
	return ret;
}

bool diag_hooks_offered(const struct diag_tool *t, const char *hooks)
{
	for (int i = 0; t->variants && t->variants[i].hook; i++) {
		const char *h = t->variants[i].hook, *p = strstr(hooks, h);

		if (p && (p == hooks || p[-1] == ',') && (p[strlen(h)] == ',' || !p[strlen(h)]))
			return true;
	}
	return false;
}
