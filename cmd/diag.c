// SPDX-License-Identifier: Apache-2.0
/*
 * `anole diag`: CO-RE eBPF diagnosis tools (docs/anole-diag.md).
 *   anole diag list [--json] [-v]
 *   anole diag TOOL [options] [INTERVAL [COUNT]]
 * Only options and output: the tools are listed in diag/tools.def, run by
 * diag/runner.c (signals, hook choice from diag/hooks.c, the event loop);
 * each tool is diag/<tool>.c with its BPF side in diag/<tool>.bpf.c.
 */
#include "anole.h"
#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"
#include "diag.h"
#include "runner.h"

#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

enum { OPT_DURATION = 256, OPT_JSON, OPT_HOOK };

static const struct option common_longopts[] = {
	{ "pid", required_argument, NULL, 'p' },
	{ "cgroup", required_argument, NULL, 'c' },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "timestamp", no_argument, NULL, 'T' },
	{ "hook", required_argument, NULL, OPT_HOOK },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
};

static void group_usage(FILE *f)
{
	fprintf(f, "usage: anole diag list [--json] [-v]\n"
		   "       anole diag TOOL [options] [INTERVAL [COUNT]]\n\n"
		   "eBPF diagnosis tools, compiled once (CO-RE) and adapted at run time to the\n"
		   "kernel: each picks the first hook that loads here (fentry, kprobe, tp_btf,\n"
		   "raw_tp, tracepoint, perf_event; uprobe in user space). 'anole diag list'\n"
		   "shows how each runs on this kernel.\n\n"
		   "tools:\n");
	for (size_t i = 0; diag_tools[i]; i++)
		fprintf(f, "  %-12s %s\n", diag_tools[i]->name, diag_tools[i]->summary);
	fprintf(f, "\nRun 'anole diag TOOL --help' for a tool's options; see docs/anole-diag.md.\n");
}

static void tool_usage(FILE *f, const struct diag_tool *t)
{
	struct strbuf hooks = STRBUF_INIT;

	for (int i = 0; t->variants && t->variants[i].hook; i++)
		strbuf_addf(&hooks, "%s%s", i ? "," : "", t->variants[i].hook);
	fprintf(f, "usage: %s\n\n%s.\n\n", t->usage, t->summary);
	if (t->help && *t->help)
		fprintf(f, "options:\n%s", t->help);
	fprintf(f, "common options:\n");
	if (t->flags & DIAG_F_PID)
		fprintf(f, "  -p, --pid PID          only this process (its threads)\n");
	if (t->flags & DIAG_F_CGROUP)
		fprintf(f, "  -c, --cgroup PATH      only tasks in this cgroup v2 directory or below\n");
	fprintf(f, "      --duration SECONDS collect for SECONDS, report, exit\n"
		   "      --json             one JSON object per %s, one per line\n"
		   "  -T, --timestamp        print the time of each %s\n",
		t->flags & DIAG_F_HIST ? "report" : "event", t->flags & DIAG_F_HIST ? "report" : "event");
	if (t->skel)
		fprintf(f, "      --hook LIST        consider only these hooks, in the tool's order:\n"
			   "                         %s\n"
			   "  -v, --verbose          say which hook is used and why others were skipped;\n"
			   "                         twice: libbpf's own messages too\n", hooks.buf);
	fprintf(f, "  -h, --help             this help\n");
	strbuf_release(&hooks);
	if (t->flags & DIAG_F_SNAPSHOT)
		fprintf(f, "\nWith INTERVAL, report now and every INTERVAL seconds (COUNT times);\n"
			   "without, report once.\n");
	else if ((t->flags & DIAG_F_HIST) && t->default_interval)
		fprintf(f, "\nReport every INTERVAL seconds (default %g), COUNT times or until\n"
			   "Ctrl-C, SIGTERM or --duration.\n", t->default_interval);
	else if (t->flags & DIAG_F_HIST)
		fprintf(f, "\nWith INTERVAL, report every INTERVAL seconds (COUNT times); without,\n"
			   "report once at the end (Ctrl-C, SIGTERM or --duration).\n");
	else
		fprintf(f, "\nEvents are printed as they come until Ctrl-C, SIGTERM or --duration.\n");
}

static int usage_error(const char *what, const char *msg)
{
	fprintf(stderr, "anole diag %s: %s\nTry 'anole diag %s --help'.\n", what, msg, what);
	return 2;
}

static int parse_seconds(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v > 0) || v > 1e9 || isnan(v))
		return -EINVAL;
	*out = v;
	return 0;
}

static void bump_verbosity(int *verbose)
{
	(*verbose)++;
	anole_log_set_level(*verbose >= 2 ? ANOLE_LOG_DEBUG : ANOLE_LOG_INFO);
}

/* ---------------------------------------------------------------- list */

static const char list_help[] =
"usage: anole diag list [--json] [-v]\n"
"\n"
"Show every diag tool and whether and how it runs on this kernel: the hook\n"
"it would use (each is loaded and attached for a moment to find out) or why\n"
"none works. With -v, also why the preferred hooks were skipped.\n"
"\n"
"options:\n"
"      --json             one JSON object: kernel, BTF, and per tool: runs,\n"
"                         hook, attach points, skipped hooks and reasons\n"
"  -v, --verbose          skipped hooks in the text output too\n"
"  -h, --help             this help\n";

static void list_json_notes(struct strbuf *sb, const struct diag_hooks_result *res)
{
	strbuf_addstr(sb, ",\"skipped\":[");
	for (int i = 0; i < res->nnotes; i++) {
		const struct diag_hook_note *n = &res->notes[i];

		strbuf_addf(sb, "%s{\"hook\":", i ? "," : "");
		strbuf_add_json_string(sb, n->hook, strlen(n->hook));
		if (n->what[0]) {
			strbuf_addstr(sb, ",\"program\":");
			strbuf_add_json_string(sb, n->what, strlen(n->what));
		}
		strbuf_addstr(sb, ",\"why\":");
		strbuf_add_json_string(sb, n->why, strlen(n->why));
		strbuf_addch(sb, '}');
	}
	strbuf_addch(sb, ']');
}

static int diag_list(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct strbuf sb = STRBUF_INIT;
	struct utsname uts;
	bool json = false, btf;
	int verbose = 0, opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: json = true; break;
		case 'v': bump_verbosity(&verbose); break;
		case 'h': fputs(list_help, stdout); return 0;
		default: return usage_error("list", "bad option");
		}
	}
	if (optind < argc)
		return usage_error("list", "takes no arguments");
	uname(&uts);
	btf = diag_btf_available();

	if (json) {
		strbuf_addstr(&sb, "{\"kernel\":");
		strbuf_add_json_string(&sb, uts.release, strlen(uts.release));
		strbuf_addf(&sb, ",\"btf\":%s,\"tools\":[", btf ? "true" : "false");
	} else {
		printf("kernel %s, BTF %s\n\n%-12s %-11s %s\n", uts.release,
		       btf ? "yes" : "no (no tool can run)", "TOOL", "HOOK", "ATTACHED TO / WHY NOT");
	}
	for (size_t ti = 0; diag_tools[ti]; ti++) {
		const struct diag_tool *t = diag_tools[ti];
		struct diag_hooks_result res;
		int ret = diag_probe(t, btf, &res);

		if (!t->skel) {
			/* no BPF: it runs wherever its source can be read */
			if (json) {
				strbuf_addf(&sb, "%s{\"name\":", ti ? "," : "");
				strbuf_add_json_string(&sb, t->name, strlen(t->name));
				strbuf_addstr(&sb, ",\"summary\":");
				strbuf_add_json_string(&sb, t->summary, strlen(t->summary));
				strbuf_addstr(&sb, ",\"runs\":true,\"hook\":\"procfs\",\"attach\":[");
				strbuf_add_json_string(&sb, t->source, strlen(t->source));
				strbuf_addstr(&sb, "],\"hooks\":[\"procfs\"],\"skipped\":[]}");
			} else {
				printf("%-12s %-11s %s\n", t->name, "procfs", t->source);
			}
			continue;
		}
		if (json) {
			strbuf_addf(&sb, "%s{\"name\":", ti ? "," : "");
			strbuf_add_json_string(&sb, t->name, strlen(t->name));
			strbuf_addstr(&sb, ",\"summary\":");
			strbuf_add_json_string(&sb, t->summary, strlen(t->summary));
			strbuf_addf(&sb, ",\"runs\":%s", ret ? "false" : "true");
			if (!ret) {
				const struct diag_variant *v = &t->variants[res.variant];
				bool first = true;

				strbuf_addstr(&sb, ",\"hook\":");
				strbuf_add_json_string(&sb, v->hook, strlen(v->hook));
				strbuf_addstr(&sb, ",\"attach\":[");
				for (int i = 0; v->progs[i].name; i++) {
					if (!res.used[i])
						continue;
					strbuf_addstr(&sb, first ? "" : ",");
					strbuf_add_json_string(&sb, res.attach[i], strlen(res.attach[i]));
					first = false;
				}
				strbuf_addch(&sb, ']');
			} else {
				strbuf_addstr(&sb, ",\"hook\":null");
			}
			strbuf_addstr(&sb, ",\"hooks\":[");
			for (int vi = 0; t->variants[vi].hook; vi++) {
				strbuf_addstr(&sb, vi ? "," : "");
				strbuf_add_json_string(&sb, t->variants[vi].hook,
						       strlen(t->variants[vi].hook));
			}
			strbuf_addch(&sb, ']');
			for (int i = 0; i < res.nnotes; i++)
				if (!res.notes[i].hook)
					res.notes[i].hook = "";
			list_json_notes(&sb, &res);
			strbuf_addch(&sb, '}');
			continue;
		}
		if (!ret) {
			const char *hook = t->variants[res.variant].hook;

			strbuf_reset(&sb);
			diag_hooks_describe(t->variants, &res, &sb);
			/* "tp_btf (a, b)" -> hook column, then the points */
			printf("%-12s %-11s %.*s\n", t->name, hook,
			       (int)(sb.len > strlen(hook) + 3 ? sb.len - strlen(hook) - 3 : 0),
			       sb.buf + strlen(hook) + 2);
		} else {
			printf("%-12s %-11s %s\n", t->name, "-", "does not run here:");
		}
		if (ret || verbose)
			for (int i = 0; i < res.nnotes; i++) {
				const struct diag_hook_note *n = &res.notes[i];

				if (n->hook)
					printf("    %s%s%s: %s\n", n->hook, n->what[0] ? " " : "",
					       n->what, n->why);
				else
					printf("    %s\n", n->why);
			}
	}
	if (json) {
		strbuf_addstr(&sb, "]}");
		diag_emit_line(&sb);
	}
	strbuf_release(&sb);
	return 0;
}

/* ---------------------------------------------------------------- run a tool */

static int diag_tool_main(const struct diag_tool *t, int argc, char **argv)
{
	struct diag_opts o = { 0 };
	struct diag_child child;
	struct option *longopts;
	struct strbuf shortopts = STRBUF_INIT;
	size_t ncommon = ARRAY_SIZE(common_longopts), ntool = 0;
	char **command = NULL;
	int opt, ret = 0;

	/* TOOL [options] [INTERVAL [COUNT]] -- COMMAND [ARGS]: the command is
	 * cut off first, so that getopt never sees its options */
	for (int i = 1; (t->flags & DIAG_F_COMMAND) && i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			command = argv + i + 1;
			argc = i;
			if (!*command)
				return usage_error(t->name, "-- takes a command to run");
			break;
		}

	while (t->longopts && t->longopts[ntool].name)
		ntool++;
	longopts = xcalloc(ncommon + ntool + 1, sizeof(*longopts));
	memcpy(longopts, common_longopts, sizeof(common_longopts));
	if (ntool)
		memcpy(longopts + ncommon, t->longopts, ntool * sizeof(*longopts));
	strbuf_addstr(&shortopts, "p:c:Tvh");
	if (t->shortopts)
		strbuf_addstr(&shortopts, t->shortopts);

	optind = 1;
	while (!ret && (opt = getopt_long(argc, argv, shortopts.buf, longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': {
			char *end;
			long v;

			if (!(t->flags & DIAG_F_PID)) {
				ret = usage_error(t->name, "-p/--pid does not apply to this tool");
				break;
			}
			errno = 0;
			v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0 || v > 0x3fffffff)
				ret = usage_error(t->name, "-p takes a process id");
			o.pid = (int)v;
			break;
		}
		case 'c':
			if (!(t->flags & DIAG_F_CGROUP)) {
				ret = usage_error(t->name, "-c/--cgroup does not apply to this tool");
				break;
			}
			o.cgroup = optarg;
			break;
		case OPT_DURATION:
			if (parse_seconds(optarg, &o.duration))
				ret = usage_error(t->name, "--duration takes a positive number of seconds");
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case 'T':
			o.timestamp = true;
			break;
		case OPT_HOOK:
			if (!t->skel)
				ret = usage_error(t->name, "--hook does not apply to this tool (no BPF)");
			else if (!diag_hook_list_valid(optarg))
				ret = usage_error(t->name, "--hook takes hooks among fentry, kprobe, "
							   "tp_btf, raw_tp, tracepoint, perf_event, uprobe");
			o.hooks = optarg;
			break;
		case 'v':
			bump_verbosity(&o.verbose);
			break;
		case 'h':
			tool_usage(stdout, t);
			ret = -1;
			break;
		case '?':
			ret = usage_error(t->name, "bad option");
			break;
		default: {
			/* -EINVAL: a bad value; other errors were reported (exit 1) */
			int r = t->parse ? t->parse(opt, optarg) : -EINVAL;

			if (r == -EINVAL)
				ret = usage_error(t->name, "bad option value");
			else if (r)
				ret = 1;
			break;
		}
		}
	}
	free(longopts);
	strbuf_release(&shortopts);
	if (ret)
		return ret < 0 ? 0 : ret;

	for (int i = 0; optind < argc && t->positional; i++, optind++) {
		int r = t->positional(i, argv[optind]);

		if (r == -EINVAL)
			return usage_error(t->name, "bad argument");
		if (r)
			return 1;
	}
	if (optind < argc && !(t->flags & DIAG_F_HIST))
		return usage_error(t->name, "takes no INTERVAL or COUNT (use --duration)");
	if (optind < argc && parse_seconds(argv[optind++], &o.interval))
		return usage_error(t->name, "INTERVAL is a positive number of seconds");
	if (optind < argc) {
		char *end;

		errno = 0;
		o.count = strtol(argv[optind], &end, 10);
		if (errno || end == argv[optind] || *end || o.count <= 0)
			return usage_error(t->name, "COUNT is a positive number");
		optind++;
	}
	if (optind < argc)
		return usage_error(t->name, "too many arguments");
	if (!o.interval)
		o.interval = t->default_interval;
	if (o.hooks && !diag_hooks_offered(t, o.hooks)) {
		struct strbuf sb = STRBUF_INIT;

		for (int i = 0; t->variants[i].hook; i++)
			strbuf_addf(&sb, "%s%s", i ? ", " : "", t->variants[i].hook);
		fprintf(stderr, "anole diag %s: --hook %s: this tool offers %s\n", t->name,
			o.hooks, sb.buf);
		strbuf_release(&sb);
		return 2;
	}

	if (command && o.pid)
		return usage_error(t->name, "-p and a command exclude each other");
	if ((t->flags & DIAG_F_TARGET) && !command && !o.pid)
		return usage_error(t->name, "needs -p PID or -- COMMAND [ARGS]");

	/* bad input: a clear message and status 1, before touching the kernel */
	if (o.pid && diag_pid_check(o.pid))
		return 1;
	o.filter.tgid = (__u32)o.pid;
	if (o.cgroup) {
		uint64_t id;

		if (diag_cgroup_id(o.cgroup, &id))
			return 1;
		o.filter.cgroup_id = id;
	}
	if (t->skel && diag_btf_check())
		return 1;
	if (command) {
		if (diag_child_spawn(&child, command))
			return 1;
		o.child = &child;
		o.pid = child.pid;
		o.filter.tgid = (__u32)child.pid;
	}
	ret = diag_run(t, &o);
	if (command)
		diag_child_finish(&child);
	return ret;
}

int cmd_diag(int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : NULL;

	diag_libbpf_log_init();
	if (!verb) {
		group_usage(stderr);
		return 2;
	}
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
		group_usage(stdout);
		return 0;
	}
	if (!strcmp(verb, "list"))
		return diag_list(argc - 1, argv + 1);
	if (diag_tool_find(verb))
		return diag_tool_main(diag_tool_find(verb), argc - 1, argv + 1);
	fprintf(stderr, "anole: 'diag %s' is not a tool\n\n", verb);
	group_usage(stderr);
	return 2;
}
