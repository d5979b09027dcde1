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

#include "runner.h"
#include "anole/daemon.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/httpd.h"
#include "anole/metrics.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct agent {
	const struct anole_monitor_opts *o;
	struct monitor_procfs *procfs;
	struct monitor_bpf *bpf;
	struct anole_httpd *httpd;
	struct monitor_console *console;
	struct strbuf text;          /* the sample being built (sampling thread only) */
	pthread_mutex_t lock;        /* guards served */
	struct strbuf served;        /* the latest complete sample, answered to scrapes */
	uint64_t samples;
	double start_time, last_duration;
};

/*
 * Append the families the qos agents publish (DIR/NAME.prom, Prometheus text
 * they rename into place whole each interval). With several agents, each
 * family's # HELP and # TYPE lines are kept once, so the page stays valid.
 */
static void append_qos(struct strbuf *out, const char *dir)
{
	char seen[64][80];
	unsigned nseen = 0;
	struct dirent *e;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);
		char path[4096], *text;
		struct stat st;
		int fd;

		if (n < 6 || strcmp(e->d_name + n - 5, ".prom"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
			close(fd);
			continue;
		}
		text = malloc((size_t)st.st_size + 1);
		if (!text || pread_full(fd, text, (size_t)st.st_size, 0)) {
			free(text);
			close(fd);
			continue;
		}
		close(fd);
		text[st.st_size] = 0;
		for (char *l = text; *l;) {
			char *nl = strchr(l, '\n'), name[80];
			size_t len = nl ? (size_t)(nl - l) : strlen(l);
			bool keep = true;

			if (sscanf(l, "# %*s %79s", name) == 1 && l[0] == '#') {
				/* "# HELP x" comes first: a family seen before is skipped */
				bool dup = false;
				for (unsigned i = 0; i < nseen; i++)
					dup |= !strcmp(seen[i], name);
				if (dup && !strncmp(l, "# HELP ", 7))
					keep = false;
				else if (dup && !strncmp(l, "# TYPE ", 7))
					keep = false;
				else if (!dup && !strncmp(l, "# TYPE ", 7) && nseen < 64)
					snprintf(seen[nseen++], sizeof(seen[0]), "%s", name);
			}
			if (keep && len) {
				strbuf_add(out, l, len);
				strbuf_addch(out, '\n');
			}
			l += len + (nl ? 1 : 0);
		}
		free(text);
	}
	closedir(d);
}

static void sample(struct agent *a)
{
	struct anole_httpd_stats st;
	double t0 = diag_now_mono();
	struct strbuf *out = &a->text;

	strbuf_reset(out);
	monitor_procfs_sample(a->procfs, out);
	append_qos(out, a->o->qos_dir ? a->o->qos_dir : "/run/anole/qos");
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

static void get_metrics(const struct anole_httpd_request *r, struct anole_httpd_response *res,
			void *arg)
{
	struct agent *a = arg;

	pthread_mutex_lock(&a->lock);
	if (a->served.len) {
		res->content_type = ANOLE_METRICS_CONTENT_TYPE;
		strbuf_add(&res->body, a->served.buf, a->served.len);
	}
	pthread_mutex_unlock(&a->lock);
	/* the server listens before the first sample (a bad --listen fails
	 * early): a scrape then gets an error, not an empty page that would
	 * read as "no series" */
	if (!res->body.len)
		anole_httpd_text(res, 503, "monitor: the first sample is not taken yet\n");
}

static unsigned check_token(const struct anole_httpd_request *r, void *arg)
{
	return anole_httpd_check_bearer(r, arg);
}

static int serve(struct agent *a, const struct diag_signals *sig)
{
	struct diag_period samples;

	diag_period_start(&samples, diag_now_mono() + a->o->interval, a->o->interval);
	while (!diag_stop_signal()) {
		/* the HTTP server has its own thread: only the deadline is waited on */
		int n = diag_wait(NULL, 0, samples.next, sig);

		if (n < 0)
			return anole_error(-n, "monitor: poll");
		if (diag_stop_signal())
			break;
		/* missed samples (the agent was stopped) are skipped, not bunched */
		if (diag_period_due(&samples, diag_now_mono()))
			sample(a);
	}
	anole_info("monitor: %s, stopping", strsignal(diag_stop_signal()));
	return 0;
}

int anole_monitor_run(const struct anole_monitor_opts *o, int ready_fd)
{
	struct agent a = { .o = o, .text = STRBUF_INIT, .served = STRBUF_INIT,
			   .lock = PTHREAD_MUTEX_INITIALIZER };
	const struct anole_httpd_route routes[] = {
		{ "GET", "/metrics", get_metrics, &a, o->token ? ANOLE_HTTPD_AUTH : 0 },
	};
	const struct anole_httpd_opts hopts = {
		.name = "monitor", .option = "--listen", .listen = o->listen,
		.routes = routes, .nroutes = sizeof(routes) / sizeof(routes[0]),
		.authorize = check_token, .auth_arg = (void *)o->token,
	};
	struct diag_signals sig;
	bool pid_written = false;
	int ret;

	/* signals wait (blocked) for ppoll: one during loading still stops cleanly */
	diag_signals_block(&sig);
	signal(SIGPIPE, SIG_IGN);

	a.start_time = diag_now_real();
	/* started with the signals blocked: its thread never takes them */
	ret = anole_httpd_start(&a.httpd, &hopts);
	if (!ret)
		ret = monitor_procfs_open(&a.procfs, o);
	if (!ret && !o->no_bpf) {
		ret = monitor_bpf_open(&a.bpf, o->hooks);
		if (ret == -ENOTSUP)
			ret = anole_error_code(ENOTSUP, "monitor: no eBPF histogram loads on this "
					       "kernel%s (--no-bpf runs without them)",
					       geteuid() ? " (loading BPF needs root)" : "");
	}
	/* the console scrapes the port really bound (--listen :0 works) */
	if (!ret && o->console_url)
		ret = monitor_console_start(&a.console, o, anole_httpd_port(a.httpd));
	if (!ret && o->pid_file && !(ret = write_pid_file(o->pid_file)))
		pid_written = true;
	if (!ret) {
		sample(&a); /* the first scrape already has data */
		anole_info("monitor: serving http://%s/metrics every %gs (port %u, pid %ld)",
			   o->listen, o->interval, anole_httpd_port(a.httpd), (long)getpid());
	}
	anole_daemon_notify(ready_fd, ret);
	if (!ret)
		ret = serve(&a, &sig);
	monitor_console_stop(a.console);
	anole_httpd_stop(a.httpd); /* no scrape reads the text after this */
	monitor_bpf_free(a.bpf);
	monitor_procfs_free(a.procfs);
	strbuf_release(&a.text);
	strbuf_release(&a.served);
	if (pid_written)
		unlink(o->pid_file);
	diag_signals_restore(&sig);
	return ret;
}
