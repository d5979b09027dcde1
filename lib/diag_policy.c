// SPDX-License-Identifier: Apache-2.0
/*
 * The allow-list of remote diagnoses (include/anole/diag_policy.h). Options
 * that take a free string (paths, disk names, commands) are left out on
 * purpose: everything allowed is a flag or a bounded integer.
 */
#include "anole/diag_policy.h"

#include "anole/xalloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PID { "pid", "--pid", ANOLE_DIAG_OPT_INT, 1, 4194304, "only this process" }
#define END { NULL, NULL, 0, 0, 0, NULL }

static const struct anole_diag_option runqlat_opts[] = {
	PID,
	{ "milliseconds", "-m", ANOLE_DIAG_OPT_BOOL, 0, 0, "buckets in ms, not us" },
	{ "pids", "-P", ANOLE_DIAG_OPT_BOOL, 0, 0, "one histogram per process" },
	{ "tids", "-L", ANOLE_DIAG_OPT_BOOL, 0, 0, "one histogram per thread" },
	END,
};
static const struct anole_diag_option biolatency_opts[] = {
	{ "milliseconds", "-m", ANOLE_DIAG_OPT_BOOL, 0, 0, "buckets in ms, not us" },
	{ "disks", "-D", ANOLE_DIAG_OPT_BOOL, 0, 0, "one histogram per disk" },
	{ "queued", "-Q", ANOLE_DIAG_OPT_BOOL, 0, 0, "include time queued in the kernel" },
	END,
};
static const struct anole_diag_option stack_opts[] = {
	PID,
	{ "user_stacks_only", "-U", ANOLE_DIAG_OPT_BOOL, 0, 0, "user stacks only" },
	{ "kernel_stacks_only", "-K", ANOLE_DIAG_OPT_BOOL, 0, 0, "kernel stacks only" },
	END,
};
static const struct anole_diag_option profile_opts[] = {
	PID,
	{ "frequency", "-F", ANOLE_DIAG_OPT_INT, 1, 999, "samples per second per CPU" },
	{ "user_stacks_only", "-U", ANOLE_DIAG_OPT_BOOL, 0, 0, "user stacks only" },
	{ "kernel_stacks_only", "-K", ANOLE_DIAG_OPT_BOOL, 0, 0, "kernel stacks only" },
	END,
};
static const struct anole_diag_option pid_opts[] = { PID, END };
static const struct anole_diag_option opensnoop_opts[] = {
	PID,
	{ "failed", "-x", ANOLE_DIAG_OPT_BOOL, 0, 0, "only failed opens" },
	END,
};
static const struct anole_diag_option tcpstates_opts[] = {
	{ "localport", "-L", ANOLE_DIAG_OPT_INT, 1, 65535, "only this local port" },
	{ "remoteport", "-D", ANOLE_DIAG_OPT_INT, 1, 65535, "only this remote port" },
	END,
};
static const struct anole_diag_option nosched_opts[] = {
	PID,
	{ "threshold", "-t", ANOLE_DIAG_OPT_INT, 1, 10000, "report runs longer than this (ms)" },
	END,
};
static const struct anole_diag_option loadtask_opts[] = {
	PID,
	{ "no_stacks", "-S", ANOLE_DIAG_OPT_BOOL, 0, 0, "without kernel stacks" },
	END,
};
static const struct anole_diag_option none[] = { END };

const struct anole_diag_policy anole_diag_policies[] = {
	{ "runqlat", "histogram", runqlat_opts },
	{ "biolatency", "histogram", biolatency_opts },
	{ "offcputime", "stacks", stack_opts },
	{ "profile", "stacks", profile_opts },
	{ "execsnoop", "events", pid_opts },
	{ "opensnoop", "events", opensnoop_opts },
	{ "runqslower", "events", pid_opts },
	{ "tcpretrans", "events", none },
	{ "tcpstates", "events", tcpstates_opts },
	{ "oomkill", "events", pid_opts },
	{ "nosched", "events", nosched_opts },
	{ "loadtask", "snapshot", loadtask_opts },
	{ "iohang", "histogram", pid_opts },
	{ NULL, NULL, NULL },
};

const struct anole_diag_policy *anole_diag_policy_find(const char *tool)
{
	for (const struct anole_diag_policy *p = anole_diag_policies; tool && p->tool; p++)
		if (!strcmp(p->tool, tool))
			return p;
	return NULL;
}

static int fail(struct strbuf *err, const char *fmt, const char *a, long x, long y)
{
	strbuf_reset(err);
	strbuf_addf(err, fmt, a, x, y);
	return -EINVAL;
}

void anole_diag_argv_free(char **argv)
{
	for (size_t i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

int anole_diag_policy_check(const char *tool, json_t *duration, json_t *options,
			    char ***argv_out, struct strbuf *err)
{
	const struct anole_diag_policy *p = anole_diag_policy_find(tool);
	char **argv = NULL, num[32];
	size_t n = 0;
	const char *key;
	json_t *v;
	double d;

	if (!p) {
		/* the name is not echoed: it may be anything */
		strbuf_reset(err);
		strbuf_addstr(err, "unknown tool (GET /api/v1/tools lists them)");
		return -EINVAL;
	}
	d = json_is_number(duration) ? json_number_value(duration) : NAN;
	if (!(d >= 1) || d > ANOLE_DIAG_MAX_DURATION || d != (double)(long)d) {
		strbuf_reset(err);
		strbuf_addf(err, "duration must be a whole number of seconds from 1 to %d",
			    ANOLE_DIAG_MAX_DURATION);
		return -EINVAL;
	}
	if (options && !json_is_object(options) && !json_is_null(options)) {
		strbuf_reset(err);
		strbuf_addstr(err, "options must be a JSON object");
		return -EINVAL;
	}
	if (argv_out) {
		argv = xcalloc(ANOLE_DIAG_MAX_ARGS, sizeof(*argv));
		argv[n++] = xstrdup(p->tool);
		argv[n++] = xstrdup("--json");
		argv[n++] = xstrdup("--duration");
		snprintf(num, sizeof(num), "%ld", (long)d);
		argv[n++] = xstrdup(num);
	}
	json_object_foreach(json_is_object(options) ? options : NULL, key, v) {
		const struct anole_diag_option *o = p->options;

		while (o->name && strcmp(o->name, key))
			o++;
		if (!o->name) {
			anole_diag_argv_free(argv);
			strbuf_reset(err);
			strbuf_addf(err, "option is not allowed for %s (allowed:", p->tool);
			for (o = p->options; o->name; o++)
				strbuf_addf(err, " %s", o->name);
			strbuf_addstr(err, p->options->name ? ")" : " none)");
			return -EINVAL;
		}
		if (o->type == ANOLE_DIAG_OPT_BOOL) {
			if (!json_is_boolean(v)) {
				anole_diag_argv_free(argv);
				return fail(err, "option %s takes true or false", o->name, 0, 0);
			}
			if (json_is_true(v) && argv)
				argv[n++] = xstrdup(o->flag);
			continue;
		}
		if (!json_is_integer(v) || json_integer_value(v) < o->min ||
		    json_integer_value(v) > o->max) {
			anole_diag_argv_free(argv);
			return fail(err, "option %s takes an integer from %ld to %ld", o->name,
				    o->min, o->max);
		}
		if (argv) {
			argv[n++] = xstrdup(o->flag);
			snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
			argv[n++] = xstrdup(num);
		}
		/* each option once (JSON objects have unique keys), so n stays
		 * below 4 + 2 * the longest option table */
	}
	if (argv_out)
		*argv_out = argv;
	return 0;
}

json_t *anole_diag_policy_json(void)
{
	json_t *arr = json_array();

	for (const struct anole_diag_policy *p = anole_diag_policies; p->tool; p++) {
		json_t *opts = json_array();

		for (const struct anole_diag_option *o = p->options; o->name; o++) {
			json_t *jo = json_pack("{s:s, s:s, s:s}", "name", o->name, "type",
					       o->type == ANOLE_DIAG_OPT_BOOL ? "bool" : "int",
					       "help", o->help);

			if (o->type == ANOLE_DIAG_OPT_INT) {
				json_object_set_new(jo, "min", json_integer(o->min));
				json_object_set_new(jo, "max", json_integer(o->max));
			}
			json_array_append_new(opts, jo);
		}
		json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:o}", "tool", p->tool,
						     "kind", p->kind, "max_duration",
						     ANOLE_DIAG_MAX_DURATION, "options", opts));
	}
	return arr;
}

bool anole_console_name_valid(const char *s)
{
	size_t n = 0;

	for (; s && s[n]; n++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[n]))
			return false;
	return n >= 1 && n <= 64 && s[0] != '.' && s[0] != '-';
}
