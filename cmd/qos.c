// SPDX-License-Identifier: Apache-2.0
/*
 * `anole qos`: the colocation node agent (docs/anole-qos.md). Options and
 * printing only; the agent is qos/.
 */
#include "anole.h"
#include "anole/daemon.h"
#include "anole/error.h"
#include "anole/strbuf.h"
#include "qos.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage_error(const char *verb, const char *msg)
{
	fprintf(stderr, "anole qos %s: %s\nTry 'anole qos %s --help'.\n", verb, msg, verb);
	return 2;
}

static int fail(int ret)
{
	(void)ret;
	return 1;
}

/* Options every verb but probe takes: -c FILE, -h, -v; plus --json. */
struct common { const char *config; bool json; int verbose; };

static int parse_common(int argc, char **argv, const char *verb, const char *help,
			struct common *co, bool want_json, const char *extra_short,
			const struct option *extra, int (*on_extra)(int, const char *, void *),
			void *arg)
{
	struct option longopts[16] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "json", no_argument, NULL, 'j' },
	};
	char shortopts[32];
	int n = 4, c;

	for (const struct option *e = extra; e && e->name && n < 15; e++)
		longopts[n++] = *e;
	longopts[n] = (struct option){ NULL, 0, NULL, 0 };
	snprintf(shortopts, sizeof(shortopts), "+c:hv%s", extra_short ? extra_short : "");
	optind = 1;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			co->config = optarg;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		case 'v':
			co->verbose++;
			break;
		case 'j':
			if (!want_json)
				return usage_error(verb, "--json is not an option here");
			co->json = true;
			break;
		default:
			if (on_extra && on_extra(c, optarg, arg) == 0)
				break;
			return usage_error(verb, "bad option");
		}
	}
	anole_log_set_level(co->verbose ? ANOLE_LOG_INFO + (co->verbose > 1) : ANOLE_LOG_WARN);
	return -1;
}

static const char status_help[] =
"usage: anole qos status [-c FILE] [--json]\n"
"\n"
"Say what the kernel has for colocation (cgroup v1 or v2, each controller's\n"
"mount, PSI, the CPU quota, idle, burst, memory and I/O knobs), the class\n"
"groups, and whether an agent runs; with an agent, its last metrics.\n"
"\n"
"options:\n"
"  -c, --config FILE   the agent's configuration (its name and state_dir)\n"
"      --json          one JSON object\n"
"  -v, --verbose       more log\n";

static int qos_status_cmd(int argc, char **argv)
{
	struct common co = { 0 };
	struct qos_ctx x;
	struct strbuf out = STRBUF_INIT;
	int ret = parse_common(argc, argv, "status", status_help, &co, true, NULL, NULL, NULL,
			       NULL);

	if (ret >= 0)
		return ret;
	if (optind < argc)
		return usage_error("status", "no arguments wanted");
	if ((ret = qos_ctx_open(&x, co.config)))
		return fail(ret);
	qos_status(&x, &out, co.json);
	fwrite(out.buf, 1, out.len, stdout);
	strbuf_release(&out);
	qos_ctx_close(&x);
	return 0;
}

static const char exec_help[] =
"usage: anole qos exec --class ls|mid|be [-c FILE] -- COMMAND [ARG...]\n"
"\n"
"Run COMMAND in a class's cgroup (created if missing): the command's\n"
"process joins the class's group in every hierarchy, then execs.\n"
"\n"
"options:\n"
"      --class CLASS   ls (latency-sensitive), mid or be (best effort)\n"
"  -c, --config FILE   the agent's configuration (its name)\n";

static const char attach_help[] =
"usage: anole qos attach --class ls|mid|be [-c FILE] PID...\n"
"\n"
"Move running processes into a class's cgroup (created if missing).\n"
"\n"
"options:\n"
"      --class CLASS   ls, mid or be\n"
"  -c, --config FILE   the agent's configuration (its name)\n";

static int on_class(int c, const char *arg, void *p)
{
	if (c != 'C')
		return -1;
	return qos_class_parse(arg, p) ? 2 : 0;
}

static int place_cmd(int argc, char **argv, bool exec)
{
	const struct option extra[] = { { "class", required_argument, NULL, 'C' }, { 0 } };
	const char *verb = exec ? "exec" : "attach";
	struct common co = { 0 };
	enum qos_class_id cls = QOS_NCLASSES;
	struct qos_ctx x;
	int ret = parse_common(argc, argv, verb, exec ? exec_help : attach_help, &co, false,
			       NULL, extra, on_class, &cls);

	if (ret >= 0)
		return ret;
	if (cls == QOS_NCLASSES)
		return usage_error(verb, "--class is required");
	if (optind >= argc)
		return usage_error(verb, exec ? "a command is required" : "a PID is required");
	if ((ret = qos_ctx_open(&x, co.config)))
		return fail(ret);
	if (exec) {
		ret = qos_place(&x, cls, 0);
		qos_ctx_close(&x);
		if (ret)
			return fail(ret);
		execvp(argv[optind], argv + optind);
		anole_error(errno, "qos exec: cannot run %s", argv[optind]);
		return 127;
	}
	for (int i = optind; i < argc && !ret; i++) {
		char *end;
		long pid = strtol(argv[i], &end, 10);
		if (*end || pid <= 0) {
			qos_ctx_close(&x);
			return usage_error(verb, "a PID is a positive number");
		}
		ret = qos_place(&x, cls, (pid_t)pid);
	}
	qos_ctx_close(&x);
	return ret ? fail(ret) : 0;
}

static int qos_exec_cmd(int argc, char **argv)
{
	return place_cmd(argc, argv, true);
}

static int qos_attach_cmd(int argc, char **argv)
{
	return place_cmd(argc, argv, false);
}

static const char run_help[] =
"usage: anole qos run [-c FILE] [-d [--log-file FILE]]\n"
"\n"
"Run the node agent: every interval it samples the node and the classes and\n"
"applies the policies (BE CPU suppression, as a CFS quota or, from 4 CPUs,\n"
"a cpuset; cpu.idle for BE, CPU burst for LS, BE memory squeeze and\n"
"eviction, BE I/O throttling); each is on by default and switchable in the\n"
"configuration, where [interference] (off by default) also caps BE's CPU\n"
"on LS's measured p99. PSI triggers on LS's I/O and memory pressure bring\n"
"a pass forward between intervals. Every knob it changes is\n"
"journaled first and restored at exit (SIGTERM, SIGINT, SIGHUP) and, after\n"
"a crash, at the next start. One agent per name: a second one refuses.\n"
"\n"
"options:\n"
"  -c, --config FILE   configuration (TOML; docs/anole-qos.md)\n"
"  -d, --daemon        run in the background once started\n"
"      --log-file FILE the daemon's log (default: none)\n"
"  -v, --verbose       log debugging detail too (state changes are always logged)\n";

struct run_opts { bool daemon; const char *log_file; };

static int on_run(int c, const char *arg, void *p)
{
	struct run_opts *r = p;

	if (c == 'd')
		r->daemon = true;
	else if (c == 'L')
		r->log_file = arg;
	else
		return -1;
	return 0;
}

static int qos_run_cmd(int argc, char **argv)
{
	const struct option extra[] = { { "daemon", no_argument, NULL, 'd' },
					{ "log-file", required_argument, NULL, 'L' }, { 0 } };
	struct run_opts r = { 0 };
	struct common co = { 0 };
	struct qos_ctx x;
	int ret = parse_common(argc, argv, "run", run_help, &co, false, "d", extra, on_run, &r);

	if (ret >= 0)
		return ret;
	/* a server logs its state changes (what it throttled, squeezed,
	 * evicted, restored) without being asked; -v adds the detail */
	anole_log_set_level(co.verbose ? ANOLE_LOG_DEBUG : ANOLE_LOG_INFO);
	if (optind < argc)
		return usage_error("run", "no arguments wanted");
	if ((ret = qos_ctx_open(&x, co.config)))
		return fail(ret);
	if (r.daemon) {
		int ready_fd;
		pid_t child = anole_daemon_fork(r.log_file, 0640, &ready_fd);
		if (child < 0) {
			qos_ctx_close(&x);
			return fail((int)child);
		}
		if (child == 0) {
			ret = qos_agent_run(&x, ready_fd);
			qos_ctx_close(&x);
			_exit(ret ? 1 : 0);
		}
		qos_ctx_close(&x);
		ret = anole_daemon_wait_ready(ready_fd, child, "qos: the agent");
		if (!ret)
			printf("%ld\n", (long)child);
		return ret ? 1 : 0;
	}
	ret = qos_agent_run(&x, -1);
	qos_ctx_close(&x);
	return ret ? fail(ret) : 0;
}

static const char restore_help[] =
"usage: anole qos restore [-c FILE] [--json]\n"
"\n"
"Put back every knob an agent that did not stop cleanly (SIGKILL, a crash)\n"
"left changed, from its state file. Refuses while an agent runs.\n"
"\n"
"options:\n"
"  -c, --config FILE   the agent's configuration (its name and state_dir)\n"
"      --json          {\"restored\": N}\n";

static int qos_restore_cmd(int argc, char **argv)
{
	struct common co = { 0 };
	struct qos_ctx x;
	unsigned n = 0;
	int ret = parse_common(argc, argv, "restore", restore_help, &co, true, NULL, NULL, NULL,
			       NULL);

	if (ret >= 0)
		return ret;
	if (optind < argc)
		return usage_error("restore", "no arguments wanted");
	if ((ret = qos_ctx_open(&x, co.config)))
		return fail(ret);
	ret = qos_restore(&x, &n);
	qos_ctx_close(&x);
	if (ret)
		return fail(ret);
	if (co.json)
		printf("{\"restored\":%u}\n", n);
	else
		printf("restored %u knob(s)\n", n);
	return 0;
}

static const char probe_help[] =
"usage: anole qos probe [--rate HZ] [--duration S] [--work US] [--json]\n"
"\n"
"A latency-sensitive probe: wake at a fixed rate (absolute deadlines) and do\n"
"a little work each time; report the wake-up lateness percentiles. Run it\n"
"in the LS class (anole qos exec --class ls -- anole qos probe) to see what\n"
"BE work costs LS.\n"
"\n"
"options:\n"
"      --rate HZ       wake-ups per second (default 1000)\n"
"      --duration S    seconds (default 10)\n"
"      --work US       work per wake-up, in units of ~1 µs of arithmetic (default 20)\n"
"      --json          one JSON object\n";

static int qos_probe_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "rate", required_argument, NULL, 'r' }, { "duration", required_argument, NULL, 'D' },
		{ "work", required_argument, NULL, 'w' }, { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' }, { 0 },
	};
	struct qos_probe_opts o = { .rate_hz = 1000, .duration_s = 10, .work_us = 20 };
	struct qos_probe_result r;
	bool json = false;
	char *end;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'r':
			o.rate_hz = strtod(optarg, &end);
			if (*end || end == optarg)
				return usage_error("probe", "--rate takes a number");
			break;
		case 'D':
			o.duration_s = strtod(optarg, &end);
			if (*end || end == optarg)
				return usage_error("probe", "--duration takes a number");
			break;
		case 'w': {
			long w = strtol(optarg, &end, 10);
			if (*end || w < 0 || w > 1000000)
				return usage_error("probe", "--work takes 0..1000000");
			o.work_us = (unsigned)w;
			break;
		}
		case 'j':
			json = true;
			break;
		case 'h':
			fputs(probe_help, stdout);
			return 0;
		default:
			return usage_error("probe", "bad option");
		}
	}
	if (optind < argc)
		return usage_error("probe", "no arguments wanted");
	if (qos_probe_run(&o, &r))
		return 1;
	if (json)
		printf("{\"rate_hz\":%g,\"duration_s\":%g,\"samples\":%llu,\"missed\":%llu,"
		       "\"lateness_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"p999\":%.1f,"
		       "\"max\":%.1f,\"mean\":%.1f,\"p99_off_run_queue\":%.1f}}\n", o.rate_hz,
		       o.duration_s, (unsigned long long)r.samples, (unsigned long long)r.missed,
		       r.p50_us, r.p90_us, r.p99_us, r.p999_us, r.max_us, r.mean_us, r.p99_off_rq_us);
	else
		printf("samples %llu (missed %llu), wake-up lateness µs: p50 %.1f  p90 %.1f  "
		       "p99 %.1f  p99.9 %.1f  max %.1f; p99 less run-queue waits %.1f\n",
		       (unsigned long long)r.samples, (unsigned long long)r.missed, r.p50_us,
		       r.p90_us, r.p99_us, r.p999_us, r.max_us, r.p99_off_rq_us);
	return 0;
}

int cmd_qos(int argc, char **argv)
{
	static const struct anole_cmd verbs[] = {
		{ "status", qos_status_cmd, "what the kernel has, the classes and the agent" },
		{ "run", qos_run_cmd, "run the node agent" },
		{ "exec", qos_exec_cmd, "run a command in a class" },
		{ "attach", qos_attach_cmd, "move processes into a class" },
		{ "restore", qos_restore_cmd, "put back the knobs a crashed agent left" },
		{ "probe", qos_probe_cmd, "measure wake-up latency at a fixed rate" },
		{ NULL, NULL, NULL },
	};

	return anole_dispatch("qos", verbs, argc, argv);
}
