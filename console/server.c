// SPDX-License-Identifier: Apache-2.0
/*
 * `anole console serve`: open the store, start the collector thread and
 * the HTTP (and HTTPS) listeners, wait for a stop signal, stop in order.
 */
#include "internal.h"

#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/http.h"
#include "anole/httpd.h"
#include "anole/workqueue.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef ANOLE_CONSOLE_WEB_DIR
#define ANOLE_CONSOLE_WEB_DIR "/usr/local/share/anole/console/web"
#endif
#ifndef ANOLE_CONSOLE_SOURCE_WEB_DIR
#define ANOLE_CONSOLE_SOURCE_WEB_DIR ""
#endif

static void free_series(struct console *c)
{
	size_t pos = 0;
	void *e;

	while ((e = anole_hashmap_next(&c->series, &pos)))
		free(e);
	anole_hashmap_free(&c->series);
}

int console_write_file(const char *path, const char *text)
{
	struct anole_output out;
	int ret = anole_output_open(&out, path);

	if (ret)
		return ret;
	ret = write_full(out.fd, text, strlen(text));
	if (ret) {
		anole_output_abort(&out);
		return anole_error(-ret, "console: cannot write %s", path);
	}
	return anole_output_commit(&out);
}

static int open_web_dir(struct console *c)
{
	const char *candidates[] = { c->o->web_dir, ANOLE_CONSOLE_WEB_DIR,
				     ANOLE_CONSOLE_SOURCE_WEB_DIR };
	/* With the page built in, only --web-dir replaces it. */
	size_t ncandidates = ANOLE_CONSOLE_EMBEDDED_WEB ? 1 : 3;

	c->web_fd = -1;
	if (ANOLE_CONSOLE_EMBEDDED_WEB && !c->o->web_dir)
		return 0;
	for (size_t i = 0; i < ncandidates; i++) {
		const char *d = candidates[i];

		if (!d || !*d)
			continue;
		c->web_fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (c->web_fd >= 0) {
			c->web_dir = xstrdup(d);
			return 0;
		}
		if (i == 0)
			return anole_error(errno, "console: --web-dir %s", d);
		if (c->o->web_dir)
			break;
	}
	anole_warn("console: no web files (%s): the API is served, the page is not",
		   ANOLE_CONSOLE_WEB_DIR);
	return 0;
}

int console_serve(const struct console_serve_opts *o)
{
	struct console c = { .o = o, .lock = PTHREAD_MUTEX_INITIALIZER, .web_fd = -1 };
	struct anole_httpd *http = NULL, *https = NULL;
	struct anole_http_opts hopts = { .connect_timeout_ms = 3000, .timeout_ms = 15000 };
	sigset_t stop, old;
	pthread_t collector;
	bool collecting = false;
	int ret, sig = 0;

	/* the stop signals are taken by sigwait below only: every thread
	 * started after this inherits them blocked */
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stop, &old);
	signal(SIGPIPE, SIG_IGN);
	anole_hashmap_init(&c.series, collect_series_eq);

	c.started = store_now();
	ret = store_open(&c.db, o->data_dir);
	if (!ret)
		ret = open_web_dir(&c);
	if (!ret)
		ret = anole_http_new(&c.http, &hopts);
	if (!ret) {
		/* the logins' password checks (api.c): two at a time, 32 MiB of
		 * scrypt each */
		c.login_wq = anole_workqueue_new(2);
		ret = api_start(&c, &http, &https);
	}
	if (!ret && !(ret = collect_start(&c, &collector)))
		collecting = true;
	if (!ret && o->prometheus)
		collect_write_targets(&c);
	if (!ret && o->port_file) {
		char buf[16];

		snprintf(buf, sizeof(buf), "%u\n", anole_httpd_port(http));
		ret = console_write_file(o->port_file, buf);
	}
	if (!ret && o->pid_file) {
		char buf[24];

		snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
		ret = console_write_file(o->pid_file, buf);
	}
	if (!ret) {
		pthread_mutex_lock(&c.lock);
		store_audit(c.db, "console", "console.start", o->listen, NULL, 200, NULL);
		pthread_mutex_unlock(&c.lock);
		anole_info("console: serving http://%s/ (port %u)%s%s, data in %s, metrics %s",
			   o->listen, anole_httpd_port(http), https ? ", https on " : "",
			   https ? o->tls_listen : "", o->data_dir,
			   o->prometheus ? o->prometheus : "embedded");
		sigwait(&stop, &sig);
		anole_info("console: %s, stopping", strsignal(sig));
	}
	atomic_store(&c.stopping, true);
	if (c.http)
		anole_http_cancel(c.http);
	if (collecting)
		pthread_join(collector, NULL);
	/* the listeners last but one: no request uses the store after this */
	pthread_mutex_lock(&c.lock);
	atomic_store(&c.servers[0], NULL);
	atomic_store(&c.servers[1], NULL);
	pthread_mutex_unlock(&c.lock);
	anole_httpd_stop(https);
	anole_httpd_stop(http);
	/* checks still queued run (their requests are gone: nothing waits) */
	anole_workqueue_free(c.login_wq);
	if (c.db) {
		if (!ret)
			store_audit(c.db, "console", "console.stop", o->listen, NULL, 200, NULL);
		sqlite3_finalize(c.latest);
		sqlite3_close(c.db);
	}
	anole_http_free(c.http);
	if (c.web_fd >= 0)
		close(c.web_fd);
	free(c.web_dir);
	free(c.targets_text);
	free_series(&c);
	if (o->pid_file && !ret)
		unlink(o->pid_file);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return ret;
}
