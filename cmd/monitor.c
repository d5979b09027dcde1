// SPDX-License-Identifier: Apache-2.0
/*
 * `anole monitor`: the always-on metrics agent (docs/anole-monitor.md).
 * Options and daemonizing here; the agent itself is monitor/.
 */
#include "anole.h"
#include "anole/diag_policy.h"
#include "anole/daemon.h"
#include "anole/error.h"
#include "anole/httpd.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"
#include "monitor.h"
#include "diag.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char monitor_help[] =
"usage: anole monitor --listen HOST:PORT [options]\n"
"       anole monitor --console URL --token-file FILE [--name NAME] [options]\n"
"\n"
"Always-on metrics agent: samples /proc (CPU, memory, disks, network, load,\n"
"pressure), cgroup counters and resident eBPF histograms (run-queue and block\n"
"I/O latency) every INTERVAL, and serves the latest sample in Prometheus text\n"
"format on GET http://HOST:PORT/metrics.\n"
"\n"
"options:\n"
"  -l, --listen HOST:PORT  address to serve on: HOST:PORT, [IPv6]:PORT, :PORT\n"
"                          (all addresses) or unix:PATH\n"
"      --token-file FILE   answer only requests with \"Authorization: Bearer\n"
"                          TOKEN\", TOKEN the file's one line (mode 0600);\n"
"                          others get 401 (Prometheus: authorization.credentials_file);\n"
"                          with --console: the agent token instead\n"
"      --console URL       register with the console at URL (anole console serve),\n"
"                          heartbeat, and run the diagnoses it asks for (anole diag\n"
"                          tools, allow-listed options, --json, bounded duration\n"
"                          and output); /metrics is then served without a token\n"
"                          for the console to scrape, on --listen (default :0)\n"
"      --name NAME         the host's name in the console (default: hostname)\n"
"  -i, --interval SECONDS  time between samples (default 5)\n"
"      --no-bpf            no eBPF histograms (no root or BPF needed)\n"
"      --hook LIST         hooks the eBPF histograms may use, in order:\n"
"                          fentry,kprobe,tp_btf,raw_tp,tracepoint\n"
"      --cgroup-root DIR   export the cgroup v2 tree from DIR down (default: the\n"
"                          whole cgroup2 mount); v1 memory/cpuacct trees are\n"
"                          exported whole\n"
"      --max-cgroups N     export at most N cgroups per hierarchy, breadth\n"
"                          first (default 256)\n"
"      --qos-dir DIR       also serve the metrics of `anole qos run` agents whose\n"
"                          state_dir is DIR (default /run/anole/qos)\n"
"  -d, --daemon            run in the background once serving\n"
"      --pid-file FILE     write the agent's pid there (removed at exit)\n"
"      --log-file FILE     the daemon's log (default: none)\n"
"  -v, --verbose           more log (twice: libbpf's messages too)\n"
"  -h, --help              this help\n"
"\n"
"SIGINT, SIGTERM or SIGHUP stop it; the eBPF programs are detached.\n";

enum { OPT_NO_BPF = 256, OPT_HOOK, OPT_CGROUP_ROOT, OPT_MAX_CGROUPS, OPT_PID_FILE, OPT_LOG_FILE,
       OPT_TOKEN_FILE, OPT_CONSOLE, OPT_NAME, OPT_QOS_DIR };

static int usage_error(const char *msg)
{
	fprintf(stderr, "anole monitor: %s\nTry 'anole monitor --help'.\n", msg);
	return 2;
}

static int daemonize_and_run(const struct anole_monitor_opts *o, const char *log_file)
{
	int ready_fd;
	pid_t child = anole_daemon_fork(log_file, 0640, &ready_fd);

	if (child < 0)
		return (int)child;
	if (child == 0)
		_exit(anole_monitor_run(o, ready_fd) ? 1 : 0);
	return anole_daemon_wait_ready(ready_fd, child, "monitor: the agent");
}

int cmd_monitor(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "name", required_argument, NULL, OPT_NAME },
		{ "interval", required_argument, NULL, 'i' },
		{ "no-bpf", no_argument, NULL, OPT_NO_BPF },
		{ "hook", required_argument, NULL, OPT_HOOK },
		{ "cgroup-root", required_argument, NULL, OPT_CGROUP_ROOT },
		{ "max-cgroups", required_argument, NULL, OPT_MAX_CGROUPS },
		{ "qos-dir", required_argument, NULL, OPT_QOS_DIR },
		{ "daemon", no_argument, NULL, 'd' },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "log-file", required_argument, NULL, OPT_LOG_FILE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct anole_monitor_opts o = { .interval = 5, .max_cgroups = 256 };
	char *pid_file = NULL, *log_file = NULL, *cgroup_root = NULL, *token = NULL;
	const char *token_file = NULL;
	char hostname[256];
	char *qos_dir = NULL;
	bool daemon = false;
	int verbose = 0, opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:i:dvh", longopts, NULL)) != -1) {
		char *end;

		switch (opt) {
		case 'l':
			o.listen = optarg;
			break;
		case 'i':
			errno = 0;
			o.interval = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o.interval >= 0.1) ||
			    o.interval > 3600)
				return usage_error("--interval takes seconds, from 0.1 to 3600");
			break;
		case OPT_NO_BPF:
			o.no_bpf = true;
			break;
		case OPT_HOOK:
			if (!diag_hook_list_valid(optarg))
				return usage_error("--hook takes hooks among fentry, kprobe, tp_btf, "
						   "raw_tp, tracepoint");
			o.hooks = optarg;
			break;
		case OPT_CGROUP_ROOT:
			cgroup_root = optarg;
			break;
		case OPT_MAX_CGROUPS: {
			long v;

			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v < 1 || v > 1000000)
				return usage_error("--max-cgroups takes a number from 1 to 1000000");
			o.max_cgroups = (unsigned)v;
			break;
		}
		case 'd':
			daemon = true;
			break;
		case OPT_PID_FILE:
			pid_file = optarg;
			break;
		case OPT_LOG_FILE:
			log_file = optarg;
			break;
		case OPT_TOKEN_FILE:
			token_file = optarg;
			break;
		case OPT_CONSOLE:
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8))
				return usage_error("--console takes an http:// or https:// URL");
			o.console_url = optarg;
			break;
		case OPT_NAME:
			o.console_name = optarg;
			break;
		case OPT_QOS_DIR:
			qos_dir = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			fputs(monitor_help, stdout);
			return 0;
		default:
			return usage_error("bad option");
		}
	}
	if (optind < argc)
		return usage_error("takes no arguments");
	if (o.console_url && !token_file)
		return usage_error("--console needs --token-file (anole console token create)");
	if (o.console_name && !o.console_url)
		return usage_error("--name is for --console");
	if (o.console_url && !o.listen)
		o.listen = ":0";
	if (o.console_url && !o.console_name) {
		if (gethostname(hostname, sizeof(hostname)) < 0)
			return usage_error("no --name and no hostname");
		hostname[sizeof(hostname) - 1] = '\0';
		o.console_name = hostname;
	}
	if (o.console_name && !anole_console_name_valid(o.console_name))
		return usage_error("--name is 1 to 64 of A-Z a-z 0-9 . _ - (not starting "
				   "with . or -)");
	o.version = ANOLE_VERSION;
	if (!o.listen)
		return usage_error("--listen HOST:PORT is required");
	if (log_file && !daemon)
		return usage_error("--log-file is for --daemon (in the foreground the log is stderr)");
	/* an agent says what it serves and why it stops; -vv adds libbpf's words */
	anole_log_set_level(verbose >= 2 ? ANOLE_LOG_DEBUG : ANOLE_LOG_INFO);
	diag_libbpf_log_init();

	/* read before a daemon leaves the directory a relative path names */
	if (token_file && anole_httpd_read_token(token_file, &token))
		return 1;
	if (o.console_url)
		o.console_token = token; /* the agent token; /metrics stays open */
	else
		o.token = token;
	o.pid_file = pid_file = anole_path_absolute(pid_file);
	log_file = anole_path_absolute(log_file);
	o.cgroup_root = cgroup_root = anole_path_absolute(cgroup_root);
	o.qos_dir = qos_dir = anole_path_absolute(qos_dir);
	if (daemon)
		ret = daemonize_and_run(&o, log_file);
	else
		ret = anole_monitor_run(&o, -1);
	free(pid_file);
	free(log_file);
	free(cgroup_root);
	free(qos_dir);
	free(token);
	return ret ? 1 : 0;
}
