// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's loop: one thread polls the listening socket, the clients and
 * the sampling deadline (ppoll, signals unblocked only there, so a SIGTERM
 * arriving at any time ends the loop and every BPF program is detached).
 * Each interval a whole exposition is built once; scrapes in between are
 * served that text, so scraping costs no /proc reads however often it runs.
 */
#include "monitor.h"

#include "runner.h"
#include "anole/daemon.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct agent {
	const struct anole_monitor_opts *o;
	struct monitor_procfs *procfs;
	struct monitor_bpf *bpf;
	struct monitor_httpd *httpd;
	struct strbuf text;
	uint64_t samples;
	double start_time, last_duration;
};

static void sample(struct agent *a)
{
	struct monitor_httpd_stats st;
	struct monitor_body *body;
	double t0 = diag_now_mono();
	struct strbuf *out = &a->text;

	strbuf_reset(out);
	monitor_procfs_sample(a->procfs, out);
	if (a->bpf) {
		monitor_bpf_update(a->bpf);
		monitor_bpf_format(a->bpf, out);
	}
	monitor_httpd_stats(a->httpd, &st);
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
	anole_metrics_u64(out, "anole_monitor_http_requests_total", "code=\"200\"",
			  st.requests - st.not_found - st.bad);
	anole_metrics_u64(out, "anole_monitor_http_requests_total", "code=\"404\"", st.not_found);
	anole_metrics_u64(out, "anole_monitor_http_requests_total", "code=\"4xx\"", st.bad);
	body = monitor_body_new(out);
	monitor_httpd_set_body(a->httpd, body);
	monitor_body_put(body);
	a->last_duration = diag_now_mono() - t0;
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

static int serve(struct agent *a, const struct diag_signals *sig)
{
	struct pollfd pfd[MONITOR_HTTPD_MAX_FDS];
	struct diag_period samples;

	diag_period_start(&samples, diag_now_mono() + a->o->interval, a->o->interval);
	while (!diag_stop_signal()) {
		double now = diag_now_mono(), left = samples.next - now;
		/* rounded up: waking before the deadline would only spin */
		int timeout = left > 0 ? (int)(left * 1000 + 0.999) : 0, nfds, n;

		nfds = monitor_httpd_pollfds(a->httpd, pfd, &timeout);
		n = diag_wait(pfd, (nfds_t)nfds, now + timeout / 1000.0, sig);
		if (n < 0)
			return anole_error(-n, "monitor: poll");
		if (n > 0)
			monitor_httpd_handle(a->httpd, pfd, nfds);
		/* missed samples (the agent was stopped) are skipped, not bunched */
		if (diag_period_due(&samples, diag_now_mono()))
			sample(a);
	}
	anole_info("monitor: %s, stopping", strsignal(diag_stop_signal()));
	return 0;
}

int anole_monitor_run(const struct anole_monitor_opts *o, int ready_fd)
{
	struct agent a = { .o = o, .text = STRBUF_INIT };
	struct diag_signals sig;
	bool pid_written = false;
	int ret;

	/* signals wait (blocked) for ppoll: one during loading still stops cleanly */
	diag_signals_block(&sig);
	signal(SIGPIPE, SIG_IGN);

	a.start_time = diag_now_real();
	ret = monitor_httpd_open(&a.httpd, o->listen);
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
		anole_info("monitor: serving http://%s/metrics every %gs (pid %ld)", o->listen,
			   o->interval, (long)getpid());
	}
	anole_daemon_notify(ready_fd, ret);
	if (!ret)
		ret = serve(&a, &sig);
	monitor_bpf_free(a.bpf);
	monitor_procfs_free(a.procfs);
	monitor_httpd_free(a.httpd);
	strbuf_release(&a.text);
	if (pid_written)
		unlink(o->pid_file);
	diag_signals_restore(&sig);
	return ret;
}
