// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's loop: the main thread sleeps until the next sample in ppoll
 * (signals unblocked only there, so a SIGTERM arriving at any time ends the
 * loop and every BPF program is detached). The HTTP server answers on its
 * own thread. Each interval a whole exposition is built once; scrapes in
 * between are served that text, so scraping costs no /proc reads however
 * often it runs, and a slow client never holds up sampling.
 */
#include "monitor.h"

#include "anole/daemon.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/httpd.h"
#include "anole/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig) { stop_signal = sig; }

static double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct agent {
	const struct anole_monitor_opts *o;
	struct monitor_procfs *procfs;
	struct monitor_bpf *bpf;
	struct anole_httpd *httpd;
	struct strbuf text;          /* the sample being built (sampling thread only) */
	pthread_mutex_t lock;        /* guards served */
	struct strbuf served;        /* the latest complete sample, answered to scrapes */
	uint64_t samples;
	double start_time, last_duration;
};

static void sample(struct agent *a)
{
	struct anole_httpd_stats st;
	double t0 = now_mono();
	struct strbuf *out = &a->text;

	strbuf_reset(out);
	monitor_procfs_sample(a->procfs, out);
	if (a->bpf) {
		monitor_bpf_update(a->bpf);
		monitor_bpf_format(a->bpf, out);
	}
	anole_httpd_get_stats(a->httpd, &st);
	a->samples++;
	anole_metrics_one_u64(out, "anole_monitor_samples_total", "counter",
			      "Samples taken by the agent.", "", a->samples);
	anole_metrics_family(out, "anole_monitor_sample_duration_seconds", "gauge",
			     "How long the previous sample took to collect.");
	anole_metrics_double(out, "anole_monitor_sample_duration_seconds", "", a->last_duration);
	anole_metrics_family(out, "anole_monitor_start_time_seconds", "gauge",
			     "When the agent started, seconds since the epoch.");
	anole_metrics_double(out, "anole_monitor_start_time_seconds", "", a->start_time);
	anole_metrics_family(out, "anole_monitor_http_requests_total", "counter",
			     "HTTP requests answered, by status class.");
	anole_metrics_u64(out, "anole_monitor_http_requests_total", "code=\"200\"", st.ok);
	anole_metrics_u64(out, "anole_monitor_http_requests_total", "code=\"404\"", st.not_found);
	anole_metrics_u64(out, "anole_monitor_http_requests_total", "code=\"4xx\"",
			  st.client_errors);
	/* swap, not copy: the old text's buffer is reused for the next sample */
	pthread_mutex_lock(&a->lock);
	struct strbuf old = a->served;
	a->served = *out;
	*out = old;
	pthread_mutex_unlock(&a->lock);
	a->last_duration = now_mono() - t0;
}

static int write_pid_file(const char *path)
{
	char buf[32];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), ret;

	if (fd < 0)
		return anole_error(errno, "cannot write the pid file %s", path);
	snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	ret = write_full(fd, buf, strlen(buf));
	close(fd);
	return ret ? anole_error(-ret, "cannot write the pid file %s", path) : 0;
}

static void get_metrics(const struct anole_httpd_request *r, struct anole_httpd_response *res,
			void *arg)
{
	struct agent *a = arg;

	res->content_type = ANOLE_METRICS_CONTENT_TYPE;
	pthread_mutex_lock(&a->lock);
	strbuf_add(&res->body, a->served.buf, a->served.len);
	pthread_mutex_unlock(&a->lock);
}

static int serve(struct agent *a, const sigset_t *unblocked)
{
	double next = now_mono() + a->o->interval;

	while (!stop_signal) {
		double left = next - now_mono();
		/* rounded up: waking before the deadline would only spin */
		int timeout = left > 0 ? (int)(left * 1000 + 0.999) : 0;
		struct timespec ts;

		ts.tv_sec = timeout / 1000;
		ts.tv_nsec = (long)(timeout % 1000) * 1000000;
		if (ppoll(NULL, 0, &ts, unblocked) < 0 && errno != EINTR)
			return anole_error(errno, "monitor: poll");
		if (stop_signal)
			break;
		if (now_mono() >= next) {
			sample(a);
			next += a->o->interval;
			if (next < now_mono()) /* stopped for a while: no burst of samples */
				next = now_mono() + a->o->interval;
		}
	}
	anole_info("monitor: %s, stopping", strsignal(stop_signal));
	return 0;
}

int anole_monitor_run(const struct anole_monitor_opts *o, int ready_fd)
{
	struct agent a = { .o = o, .text = STRBUF_INIT, .served = STRBUF_INIT,
			   .lock = PTHREAD_MUTEX_INITIALIZER };
	const struct anole_httpd_route routes[] = {
		{ "GET", "/metrics", get_metrics, &a, 0 },
	};
	const struct anole_httpd_opts hopts = {
		.name = "monitor", .option = "--listen", .listen = o->listen,
		.routes = routes, .nroutes = sizeof(routes) / sizeof(routes[0]),
	};
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigset_t block, unblocked;
	bool pid_written = false;
	int ret;

	/* signals wait (blocked) for ppoll: one during loading still stops cleanly */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &unblocked);
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigdelset(&unblocked, SIGINT);
	sigdelset(&unblocked, SIGTERM);
	sigdelset(&unblocked, SIGHUP);

	a.start_time = now_real();
	/* started with the signals blocked: its thread never takes them */
	ret = anole_httpd_start(&a.httpd, &hopts);
	if (!ret)
		ret = monitor_procfs_open(&a.procfs, o);
	if (!ret && !o->no_bpf) {
		ret = monitor_bpf_open(&a.bpf, o->hooks);
		if (ret == -ENOTSUP)
			ret = anole_error_code(-ENOTSUP, "monitor: no eBPF histogram loads on this "
					       "kernel%s (--no-bpf runs without them)",
					       geteuid() ? " (loading BPF needs root)" : "");
	}
	if (!ret && o->pid_file && !(ret = write_pid_file(o->pid_file)))
		pid_written = true;
	if (!ret) {
		sample(&a); /* the first scrape already has data */
		anole_info("monitor: serving http://%s/metrics every %gs (port %u, pid %ld)",
			   o->listen, o->interval, anole_httpd_port(a.httpd), (long)getpid());
	}
	anole_daemon_notify(ready_fd, ret);
	if (!ret)
		ret = serve(&a, &unblocked);
	anole_httpd_stop(a.httpd); /* first: no scrape reads the text after this */
	monitor_bpf_free(a.bpf);
	monitor_procfs_free(a.procfs);
	strbuf_release(&a.text);
	strbuf_release(&a.served);
	if (pid_written)
		unlink(o->pid_file);
	sigprocmask(SIG_SETMASK, &unblocked, NULL);
	return ret;
}
