// SPDX-License-Identifier: Apache-2.0
/*
 * The agent's side of the console (docs/anole-console.md, "Agent
 * protocol"): a thread that POSTs a heartbeat every interval the console
 * asks for, and runs the diagnosis the heartbeat's answer hands it.
 *
 * The agent always calls the console, never the other way round for work,
 * so it needs no listening port reachable by the console for diagnoses and
 * works from behind NAT or in a network namespace that only routes out.
 * An idle agent's heartbeat is a long poll: it asks to be held ("hold"),
 * the console answers when a diagnosis is queued for the host or after its
 * heartbeat interval, and the agent sends the next one at once; so work
 * starts the moment it is queued, with one request per interval.
 *
 * A diagnosis is checked against the allow-list (lib/diag_policy.c) here
 * again, whatever the console said, and run as `anole diag TOOL --json
 * --duration N OPTIONS` by spawning this same executable (/proc/self/exe):
 * no shell, an argument vector built from the allow-list's tables, and a
 * process of its own because diag tools keep their state in statics and
 * a tool that crashes must not take the agent with it. One at a time; its
 * output is capped at ANOLE_DIAG_MAX_OUTPUT and its run at the duration
 * plus a grace, after which it is killed and reported failed.
 */
#include "monitor.h"

#include "anole/clock.h"
#include "anole/diag_policy.h"
#include "anole/error.h"
#include "anole/http.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Seconds past --duration before the tool is killed: its start (BTF, BPF
 * verification) is outside --duration and takes seconds on a loaded
 * machine, more under ASan; the console waits longer (collect.c). */
#define KILL_GRACE 30.0
#define STDERR_KEPT 2048     /* bytes of the tool's stderr kept for the error */
/* The longest an idle agent lets the console hold its heartbeat (the
 * console holds it at most its heartbeat interval), and how long past
 * that the agent waits for the answer before it gives up and retries. */
#define HOLD 60.0
#define ANSWER_SLACK 15.0
#define REQUEST_TIMEOUT 10.0 /* an unheld request */
#define RETRY_MIN 1.0        /* after a failed heartbeat, however short the interval */

struct diagnosis {
	long long id;
	pid_t pid;
	int out_fd, err_fd;
	bool out_open, err_open;     /* pipes not yet at EOF */
	double deadline;
	struct strbuf out, err;
	bool too_big;
};

struct monitor_console {
	const struct anole_monitor_opts *o;
	uint16_t metrics_port;
	struct anole_http *http;
	size_t url_len;              /* of o->console_url without trailing '/': "URL/" as "URL" */
	char *heartbeat_url;
	char *auth;
	pthread_t thread;
	int wake[2];                 /* written to stop the thread */
	atomic_bool stop;
	double interval;
	struct diagnosis d;          /* d.id 0: none */
	/* a result the console could not take (it was away): sent again before
	 * each heartbeat, and reported as still running meanwhile */
	long long pending_id;
	json_t *pending;
	int last_status;             /* of the last heartbeat, to log changes only */
};

/* POST a JSON value; the answer's status (0 if none) and body, within
 * timeout seconds. */
static long post_json(struct monitor_console *a, const char *url, json_t *v, struct strbuf *body,
		      double timeout, char *err, size_t errlen)
{
	static const char *const headers[] = { "Content-Type: application/json" };
	char *text = json_dumps(v, JSON_COMPACT);
	struct anole_http_response resp;
	struct anole_http_request req = {
		.method = "POST", .url = url, .headers = headers, .nheaders = 1,
		.authorization = a->auth, .body = text, .body_len = strlen(text),
		.body_out = body, .body_max = 1 << 20,
		.deadline_ms = anole_http_now_ms() + (uint64_t)(timeout * 1000),
	};
	long status = 0;

	anole_http_response_init(&resp);
	if (anole_http_request(a->http, &req, &resp))
		snprintf(err, errlen, "%s", resp.error);
	else if (resp.status != 200)
		snprintf(err, errlen, "%ld %.200s", resp.status,
			 resp.errbody.buf ? resp.errbody.buf : "");
	status = resp.status;
	anole_http_response_release(&resp);
	free(text);
	return status;
}

static void report(struct monitor_console *a, long long id, const char *status, json_t *result,
		   const char *error)
{
	char url[1200], err[300] = "";
	json_t *v = json_pack("{s:s}", "status", status);
	long st;

	if (result)
		json_object_set(v, "result", result);
	if (error)
		json_object_set_new(v, "error", json_string(error));
	snprintf(url, sizeof(url), "%.*s/api/v1/agent/diagnoses/%lld", (int)a->url_len,
		 a->o->console_url, id);
	st = post_json(a, url, v, NULL, REQUEST_TIMEOUT, err, sizeof(err));
	if (st == 200) {
		anole_info("monitor: diagnosis %lld %s%s%s", id, status, error ? ": " : "",
			   error ? error : "");
	} else if (!st || st >= 500) {
		/* unreachable or failing: keep it for the console's return */
		if (a->pending && a->pending_id != id)
			anole_warn("monitor: diagnosis %lld's result is dropped: a newer one waits",
				   a->pending_id);
		if (a->pending != v) {
			json_decref(a->pending);
			a->pending = json_incref(v);
		}
		a->pending_id = id;
		anole_warn("monitor: cannot report diagnosis %lld to the console (%s): kept to "
			   "send again", id, err);
		json_decref(v);
		return;
	} else {
		anole_warn("monitor: the console refused diagnosis %lld's result: %s", id, err);
	}
	if (a->pending_id == id) {
		json_decref(a->pending);
		a->pending = NULL;
		a->pending_id = 0;
	}
	json_decref(v);
}

/* Send a kept result again (before a heartbeat). */
static void report_pending(struct monitor_console *a)
{
	json_t *v = json_incref(a->pending);
	json_t *result = json_object_get(v, "result");
	json_t *error = json_object_get(v, "error");

	report(a, a->pending_id, json_string_value(json_object_get(v, "status")), result,
	       json_string_value(error));
	json_decref(v);
}

/* Start work item w (already the one diagnosis); on refusal report why. */
static void start_diagnosis(struct monitor_console *a, json_t *w)
{
	json_t *id = json_object_get(w, "id");
	const char *tool = json_string_value(json_object_get(w, "tool"));
	struct strbuf why = STRBUF_INIT;
	char **args = NULL, **argv;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, ret;
	sigset_t none, dflt;
	size_t n = 0;
	pid_t pid;

	if (!json_is_integer(id) || json_integer_value(id) <= 0)
		return;
	/* the console checked it; the agent does not take its word for it */
	if (anole_diag_policy_check(tool, json_object_get(w, "duration"),
				    json_object_get(w, "options"), &args, &why)) {
		report(a, json_integer_value(id), "failed", NULL, why.buf);
		strbuf_release(&why);
		return;
	}
	strbuf_release(&why);
	while (args[n])
		n++;
	argv = xcalloc(n + 3, sizeof(*argv));
	argv[0] = "anole";
	argv[1] = "diag";
	memcpy(argv + 2, args, n * sizeof(*argv));
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		report(a, json_integer_value(id), "failed", NULL, "the agent cannot make a pipe");
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, err[1], 2);
	posix_spawnattr_init(&attr);
	/* the agent blocks its stop signals and ignores SIGPIPE: the tool gets
	 * the defaults back, and a group of its own to be killed with */
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	sigaddset(&dflt, SIGINT);
	sigaddset(&dflt, SIGTERM);
	sigaddset(&dflt, SIGHUP);
	sigaddset(&dflt, SIGCHLD);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
				 POSIX_SPAWN_SETPGROUP);
	ret = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(out[1]);
	close(err[1]);
	if (ret) {
		close(out[0]);
		close(err[0]);
		report(a, json_integer_value(id), "failed", NULL, strerror(ret));
		goto out;
	}
	a->d.id = json_integer_value(id);
	a->d.pid = pid;
	a->d.out_fd = out[0];
	a->d.err_fd = err[0];
	a->d.out_open = a->d.err_open = true;
	a->d.too_big = false;
	strbuf_reset(&a->d.out);
	strbuf_reset(&a->d.err);
	a->d.deadline = anole_mono_seconds() + json_number_value(json_object_get(w, "duration")) + KILL_GRACE;
	anole_info("monitor: diagnosis %lld: anole diag %s for %gs (pid %ld)", a->d.id, tool,
		   json_number_value(json_object_get(w, "duration")), (long)pid);
out:
	free(argv);
	anole_diag_argv_free(args);
}

/* The tool's output, one JSON object per line, as an array. */
static json_t *parse_output(const struct strbuf *out, char *err, size_t errlen)
{
	json_t *arr = json_array();
	const char *p = out->buf, *end = out->buf + out->len;
	unsigned line = 0;

	while (p && p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
		json_error_t je;
		json_t *v;

		line++;
		if (le > p) {
			v = json_loadb(p, (size_t)(le - p), 0, &je);
			if (!v) {
				snprintf(err, errlen, "line %u of the tool's output is not JSON: %s",
					 line, je.text);
				json_decref(arr);
				return NULL;
			}
			json_array_append_new(arr, v);
		}
		p = nl ? nl + 1 : end;
	}
	return arr;
}

static void finish_diagnosis(struct monitor_console *a, const char *killed_why)
{
	struct diagnosis *d = &a->d;
	char why[STDERR_KEPT + 200] = "";
	json_t *result = NULL;
	int status = 0;

	if (killed_why) {
		kill(-d->pid, SIGKILL);
	}
	while (waitpid(d->pid, &status, 0) < 0 && errno == EINTR)
		;
	close(d->out_fd);
	close(d->err_fd);
	if (killed_why) {
		snprintf(why, sizeof(why), "%s", killed_why);
	} else if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		/* the tool says why on stderr: its last words are the reason */
		size_t n = d->err.len;

		while (n && (d->err.buf[n - 1] == '\n' || d->err.buf[n - 1] == ' '))
			n--;
		if (WIFSIGNALED(status))
			snprintf(why, sizeof(why), "the tool was killed by signal %d: %.*s",
				 WTERMSIG(status), (int)n, d->err.buf ? d->err.buf : "");
		else
			snprintf(why, sizeof(why), "the tool exited with status %d: %.*s",
				 WEXITSTATUS(status), (int)n, d->err.buf ? d->err.buf : "");
	} else {
		result = parse_output(&d->out, why, sizeof(why));
	}
	if (result)
		report(a, d->id, "done", result, NULL);
	else
		report(a, d->id, "failed", NULL, why);
	json_decref(result);
	d->id = 0;
}

/* Read what the tool wrote; true once both pipes are at EOF. */
static bool drain(struct monitor_console *a, const struct pollfd *pfd)
{
	struct diagnosis *d = &a->d;
	char buf[65536];

	for (int i = 0; i < 2; i++) {
		bool *open = i ? &d->err_open : &d->out_open;
		ssize_t n;

		if (!*open || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = read(pfd[i].fd, buf, sizeof(buf));
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			*open = false;
		} else if (i == 0) {
			if (d->out.len + (size_t)n > ANOLE_DIAG_MAX_OUTPUT)
				d->too_big = true;
			else
				strbuf_add(&d->out, buf, (size_t)n);
		} else if (d->err.len < STDERR_KEPT) {
			size_t keep = (size_t)n;

			if (keep > STDERR_KEPT - d->err.len)
				keep = STDERR_KEPT - d->err.len;
			strbuf_add(&d->err, buf, keep);
		}
	}
	return !d->out_open && !d->err_open;
}

static void heartbeat(struct monitor_console *a)
{
	struct strbuf body = STRBUF_INIT;
	char err[300] = "";
	json_t *v = json_pack("{s:s, s:i, s:s, s:I}", "name", a->o->console_name, "metrics_port",
			      (int)a->metrics_port, "version", a->o->version ? a->o->version : "",
			      "pid", (json_int_t)getpid());
	json_t *answer = NULL, *work;
	long status;
	bool held;

	if (a->pending)
		report_pending(a);
	json_object_set_new(v, "running", a->d.id ? json_integer(a->d.id) :
			    a->pending ? json_integer(a->pending_id) : json_null());
	/* idle: let the console hold the request until there is work; busy:
	 * answered at once (the tool's pipes are read between heartbeats) */
	held = !a->d.id && !a->pending;
	if (held)
		json_object_set_new(v, "hold", json_real(HOLD));
	status = post_json(a, a->heartbeat_url, v, &body,
			   held ? HOLD + ANSWER_SLACK : REQUEST_TIMEOUT, err, sizeof(err));
	json_decref(v);
	if (status != a->last_status) {
		if (status == 200)
			anole_info("monitor: registered with the console %s as %s", a->o->console_url,
				   a->o->console_name);
		else
			anole_warn("monitor: heartbeat to %s: %s (retrying every %gs)",
				   a->heartbeat_url, err, a->interval);
		a->last_status = (int)status;
	}
	if (status != 200) {
		/* a console that is away is not asked again in a tight loop */
		if (a->interval < RETRY_MIN)
			a->interval = RETRY_MIN;
		goto out;
	}
	answer = json_loadb(body.buf ? body.buf : "", body.len, 0, NULL);
	if (json_is_number(json_object_get(answer, "interval"))) {
		double i = json_number_value(json_object_get(answer, "interval"));

		/* 0 after a held request: it was the wait, come back at once */
		a->interval = i < 0 ? 0 : i > 600 ? 600 : i;
		if (!held && a->interval < 0.2)
			a->interval = 0.2;
	}
	work = json_object_get(answer, "work");
	if (json_is_array(work) && json_array_size(work)) {
		if (a->d.id)
			/* the console hands work only to an idle agent; if it did not,
			 * one at a time still holds */
			report(a, json_integer_value(json_object_get(json_array_get(work, 0), "id")),
			       "failed", NULL, "the agent already runs a diagnosis");
		else
			start_diagnosis(a, json_array_get(work, 0));
	}
out:
	json_decref(answer);
	strbuf_release(&body);
}

static void *agent_main(void *arg)
{
	struct monitor_console *a = arg;
	double next = 0;

	while (!atomic_load(&a->stop)) {
		struct pollfd pfd[3] = { { .fd = -1 }, { .fd = -1 }, { .fd = a->wake[0], .events = POLLIN } };
		double now = anole_mono_seconds(), wait;

		if (now >= next) {
			heartbeat(a);
			next = anole_mono_seconds() + a->interval;
		}
		if (a->d.id && a->d.out_open)
			pfd[0] = (struct pollfd){ .fd = a->d.out_fd, .events = POLLIN };
		if (a->d.id && a->d.err_open)
			pfd[1] = (struct pollfd){ .fd = a->d.err_fd, .events = POLLIN };
		wait = next - anole_mono_seconds();
		if (a->d.id && a->d.deadline - anole_mono_seconds() < wait)
			wait = a->d.deadline - anole_mono_seconds();
		if (wait < 0)
			wait = 0;
		if (poll(pfd, 3, (int)(wait * 1000) + 1) < 0 && errno != EINTR)
			break;
		if (!a->d.id)
			continue;
		if (drain(a, pfd)) {
			finish_diagnosis(a, a->d.too_big ? "the tool's output went over the limit" :
					 NULL);
			next = 0; /* tell the console at once that the agent is idle */
		} else if (a->d.too_big) {
			finish_diagnosis(a, "the tool's output went over the limit; it was stopped");
		} else if (anole_mono_seconds() >= a->d.deadline) {
			finish_diagnosis(a, "the tool ran past its duration and was stopped");
		}
	}
	if (a->d.id)
		finish_diagnosis(a, "the agent was stopped");
	return NULL;
}

int monitor_console_start(struct monitor_console **out, const struct anole_monitor_opts *o,
			  uint16_t metrics_port)
{
	struct monitor_console *a = xcalloc(1, sizeof(*a));
	/* requests are bounded by their deadlines (post_json): a held one
	 * lasts up to HOLD + ANSWER_SLACK */
	struct anole_http_opts hopts = { .connect_timeout_ms = 5000,
					 .timeout_ms = (unsigned)((HOLD + ANSWER_SLACK) * 1000) };
	size_t n = strlen(o->console_url);
	int ret;

	a->o = o;
	a->metrics_port = metrics_port;
	a->interval = 1; /* until the console says */
	a->wake[0] = a->wake[1] = -1;
	a->last_status = -1;
	a->d.out = (struct strbuf)STRBUF_INIT;
	a->d.err = (struct strbuf)STRBUF_INIT;
	/* "URL/" as "URL": "//api" is no API path */
	while (n && o->console_url[n - 1] == '/')
		n--;
	a->url_len = n;
	a->heartbeat_url = xmalloc(n + 32);
	snprintf(a->heartbeat_url, n + 32, "%.*s/api/v1/agent/heartbeat", (int)n, o->console_url);
	a->auth = xmalloc(strlen(o->console_token) + 8);
	sprintf(a->auth, "Bearer %s", o->console_token);
	ret = anole_http_new(&a->http, &hopts);
	if (!ret && pipe2(a->wake, O_CLOEXEC))
		ret = anole_error(errno, "monitor: pipe");
	if (!ret) {
		ret = pthread_create(&a->thread, NULL, agent_main, a);
		if (ret)
			ret = anole_error(ret, "monitor: cannot start the console thread");
	}
	if (ret) {
		anole_http_free(a->http);
		if (a->wake[0] >= 0) {
			close(a->wake[0]);
			close(a->wake[1]);
		}
		free(a->heartbeat_url);
		free(a->auth);
		free(a);
		return ret;
	}
	*out = a;
	return 0;
}

void monitor_console_stop(struct monitor_console *a)
{
	if (!a)
		return;
	atomic_store(&a->stop, true);
	anole_http_cancel(a->http);
	if (write(a->wake[1], "x", 1) < 0) {
		/* the thread still sees stop within its poll timeout */
	}
	pthread_join(a->thread, NULL);
	anole_http_free(a->http);
	close(a->wake[0]);
	close(a->wake[1]);
	strbuf_release(&a->d.out);
	strbuf_release(&a->d.err);
	json_decref(a->pending);
	free(a->heartbeat_url);
	free(a->auth);
	free(a);
}
