// SPDX-License-Identifier: Apache-2.0
/*
 * `anole tune` (docs/anole-tune.md): options and printing only; the
 * knobs, journal, profiles and search are tune/.
 */
#include "anole.h"
#include "anole/error.h"
#include "anole/progress.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"
#include "tune.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_flush(struct strbuf *sb)
{
	fwrite(sb->buf ? sb->buf : "", 1, sb->len, stdout);
	strbuf_release(sb);
}

static void json_str(struct strbuf *sb, const char *s)
{
	if (s)
		strbuf_add_json_string(sb, s, strlen(s));
	else
		strbuf_addstr(sb, "null");
}

/* Options shared by the simple verbs: --json and --help. */
static int simple_opts(int argc, char **argv, const char *help, bool *json, int min_args,
		       int max_args)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			if (!json)
				goto bad;
			*json = true;
			break;
		case 'h': fputs(help, stdout); return 1;
		default: goto bad;
		}
	}
	if (argc - optind < min_args || (max_args >= 0 && argc - optind > max_args)) {
		fprintf(stderr, "anole tune: %s\n\n", argc - optind < min_args ?
			"missing arguments" : "too many arguments");
		goto bad;
	}
	return 0;
bad:
	fputs(help, stderr);
	return 2;
}

/* ---------------------------------------------------------- profiles */

static const char profile_help[] =
"usage: anole tune profile list [--json]\n"
"       anole tune profile show NAME [--json]\n"
"       anole tune profile apply NAME...\n"
"       anole tune profile rollback\n"
"       anole tune profile verify [--json]\n"
"\n"
"Static tuning: profiles are INI-like files (one section per knob domain,\n"
"include= to inherit), looked up in $ANOLE_TUNE_PROFILE_PATH, then\n"
"/etc/anole/tune/profiles, then the profiles shipped with anole.\n"
"\n"
"  list      the profiles and what each is for\n"
"  show      a profile's settings, includes resolved (and where each comes from)\n"
"  apply     apply the profiles, merged left to right. Every old value is\n"
"            journaled first; knobs this kernel lacks are skipped with a\n"
"            warning. A profile already applied is rolled back first.\n"
"  rollback  restore every value the applied profile changed, byte-exactly\n"
"  verify    report drift: knobs whose value is no longer what was applied\n"
"            (exit status 1 when something drifted)\n"
"\n"
"State (journal, applied record): $ANOLE_TUNE_STATE, default /var/lib/anole/tune.\n";

static int profile_list(int argc, char **argv)
{
	struct tune_profile_entry *v;
	struct strbuf out = STRBUF_INIT;
	bool json = false;
	size_t n;
	int r = simple_opts(argc, argv, profile_help, &json, 0, 0);

	if (r)
		return r == 1 ? 0 : r;
	tune_profile_list(&v, &n);
	if (json)
		strbuf_addch(&out, '[');
	for (size_t i = 0; i < n; i++) {
		if (json) {
			strbuf_addf(&out, "%s{\"name\":", i ? "," : "");
			json_str(&out, v[i].name);
			strbuf_addstr(&out, ",\"summary\":");
			json_str(&out, v[i].summary);
			strbuf_addstr(&out, ",\"path\":");
			json_str(&out, v[i].path);
			strbuf_addch(&out, '}');
		} else {
			strbuf_addf(&out, "%-20s %s\n", v[i].name,
				    v[i].summary ? v[i].summary : v[i].path ? "" : "(does not load)");
		}
	}
	if (json)
		strbuf_addstr(&out, "]\n");
	out_flush(&out);
	tune_profile_list_free(v, n);
	return 0;
}

static int profile_show(int argc, char **argv)
{
	struct tune_profile p;
	struct strbuf out = STRBUF_INIT;
	bool json = false;
	int r = simple_opts(argc, argv, profile_help, &json, 1, 1);

	if (r)
		return r == 1 ? 0 : r;
	if (tune_profile_load(argv[optind], &p))
		return 1;
	if (json) {
		strbuf_addstr(&out, "{\"name\":");
		json_str(&out, p.name);
		strbuf_addstr(&out, ",\"summary\":");
		json_str(&out, p.summary);
		strbuf_addstr(&out, ",\"path\":");
		json_str(&out, p.path);
		strbuf_addstr(&out, ",\"settings\":[");
		for (size_t i = 0; i < p.n; i++) {
			strbuf_addf(&out, "%s{\"domain\":\"%s\",\"name\":", i ? "," : "",
				    tune_domain_name(p.v[i].domain));
			json_str(&out, p.v[i].name);
			strbuf_addstr(&out, ",\"value\":");
			json_str(&out, p.v[i].value);
			strbuf_addstr(&out, ",\"from\":");
			json_str(&out, p.v[i].from);
			strbuf_addch(&out, '}');
		}
		strbuf_addstr(&out, "]}\n");
	} else {
		strbuf_addf(&out, "# %s: %s\n# %s\n", p.name, p.summary ? p.summary : "", p.path);
		for (int d = 0; d < TUNE_NDOMAINS; d++) {
			bool header = false;

			for (size_t i = 0; i < p.n; i++) {
				if (p.v[i].domain != (enum tune_domain)d)
					continue;
				if (!header)
					strbuf_addf(&out, "[%s]\n", tune_domain_name(d));
				header = true;
				strbuf_addf(&out, "%s=%s", p.v[i].name, p.v[i].value);
				if (strcmp(p.v[i].from, p.name))
					strbuf_addf(&out, "    # from %s", p.v[i].from);
				strbuf_addch(&out, '\n');
				if (p.v[i].run)
					strbuf_addf(&out, "%s.run=%s\n", p.v[i].name, p.v[i].run);
			}
		}
	}
	out_flush(&out);
	tune_profile_free(&p);
	return 0;
}

static int profile_apply(int argc, char **argv)
{
	struct tune_apply_report rep;
	int r = simple_opts(argc, argv, profile_help, NULL, 1, -1);

	if (r)
		return r == 1 ? 0 : r;
	r = tune_profile_apply(argv + optind, (size_t)(argc - optind), &rep);
	if (rep.applied || rep.missing || rep.failed)
		printf("applied %zu knob value%s; %zu not on this kernel; %zu failed\n",
		       rep.applied, rep.applied == 1 ? "" : "s", rep.missing, rep.failed);
	tune_apply_report_release(&rep);
	return r ? 1 : 0;
}

static int do_rollback(int argc, char **argv, const char *help)
{
	int r = simple_opts(argc, argv, help, NULL, 0, 0);

	if (r)
		return r == 1 ? 0 : r;
	r = tune_rollback();
	if (r < 0)
		return 1;
	if (r == 0)
		printf("nothing to roll back\n");
	else
		printf("restored %d value%s\n", r, r == 1 ? "" : "s");
	return 0;
}

static int profile_rollback(int argc, char **argv)
{
	return do_rollback(argc, argv, profile_help);
}

static int profile_verify(int argc, char **argv)
{
	struct tune_drift *d;
	size_t n, checked;
	char *names;
	struct strbuf out = STRBUF_INIT;
	bool json = false;
	int r = simple_opts(argc, argv, profile_help, &json, 0, 0);

	if (r)
		return r == 1 ? 0 : r;
	if (tune_profile_verify(&names, &d, &n, &checked)) {
		free(names);
		return 1;
	}
	if (json) {
		strbuf_addstr(&out, "{\"profiles\":");
		json_str(&out, names);
		strbuf_addf(&out, ",\"checked\":%zu,\"drift\":[", checked);
		for (size_t i = 0; i < n; i++) {
			strbuf_addf(&out, "%s{\"domain\":\"%s\",\"path\":", i ? "," : "",
				    tune_domain_name(d[i].domain));
			json_str(&out, d[i].path);
			strbuf_addstr(&out, ",\"expected\":");
			json_str(&out, d[i].expected);
			strbuf_addstr(&out, ",\"actual\":");
			json_str(&out, d[i].actual);
			strbuf_addch(&out, '}');
		}
		strbuf_addstr(&out, "]}\n");
	} else {
		strbuf_addf(&out, "profile %s: %zu knob value%s checked, %zu drifted\n",
			    names ? names : "?", checked, checked == 1 ? "" : "s", n);
		for (size_t i = 0; i < n; i++)
			strbuf_addf(&out, "  %s %s: applied '%s', now '%s'\n",
				    tune_domain_name(d[i].domain), d[i].path, d[i].expected,
				    d[i].actual ? d[i].actual : "(unreadable)");
	}
	out_flush(&out);
	tune_drift_free(d, n);
	free(names);
	return n ? 1 : 0;
}

static int cmd_profile(int argc, char **argv)
{
	static const struct anole_cmd verbs[] = {
		{ "list", profile_list, "list the profiles" },
		{ "show", profile_show, "print a profile with its includes resolved" },
		{ "apply", profile_apply, "apply profiles (journaled)" },
		{ "rollback", profile_rollback, "undo the applied profile" },
		{ "verify", profile_verify, "report drift from the applied profile" },
		{ NULL, NULL, NULL },
	};

	return anole_dispatch("tune profile", verbs, argc, argv);
}

/* ---------------------------------------------------------- journal */

static const char rollback_help[] =
"usage: anole tune rollback\n"
"\n"
"Restore every knob value the journal saved (a profile applied, or a search\n"
"that was killed), byte-exactly, newest change first; then remove the journal.\n"
"If a value cannot be restored the journal is kept and the exit status is 1.\n";

static int tune_cmd_rollback(int argc, char **argv)
{
	return do_rollback(argc, argv, rollback_help);
}

static const char accept_help[] =
"usage: anole tune accept\n"
"\n"
"Forget the journal and keep the knob values as they are now (after a\n"
"profile you want to keep, or a killed search whose values you checked).\n";

static int tune_cmd_accept(int argc, char **argv)
{
	int r = simple_opts(argc, argv, accept_help, NULL, 0, 0);

	if (r)
		return r == 1 ? 0 : r;
	return tune_accept() ? 1 : 0;
}

static const char status_help[] =
"usage: anole tune status [--json]\n"
"\n"
"Whether a journal is open: by what (profile, search), which process, how\n"
"many values it saved. Exit status 0 either way.\n";

static int tune_cmd_status(int argc, char **argv)
{
	struct tune_journal_info info;
	struct strbuf out = STRBUF_INIT;
	bool json = false;
	int r = simple_opts(argc, argv, status_help, &json, 0, 0);

	if (r)
		return r == 1 ? 0 : r;
	if (tune_journal_status(&info))
		return 1;
	if (json) {
		strbuf_addf(&out, "{\"journal\":%s", info.exists ? "true" : "false");
		if (info.exists) {
			strbuf_addstr(&out, ",\"purpose\":");
			json_str(&out, info.purpose);
			strbuf_addf(&out, ",\"pid\":%ld,\"saved\":%zu,\"complete\":%s,\"note\":",
				    info.pid, info.nsaved, info.done ? "true" : "false");
			json_str(&out, info.note);
		}
		strbuf_addstr(&out, "}\n");
	} else if (!info.exists) {
		strbuf_addf(&out, "no journal (%s): nothing to roll back\n", tune_state_dir());
	} else {
		strbuf_addf(&out, "journal of a %s%s%s (pid %ld, %s): %zu saved value%s\n",
			    info.purpose, info.note ? " " : "", info.note ? info.note : "",
			    info.pid, info.done ? "complete" : "incomplete", info.nsaved,
			    info.nsaved == 1 ? "" : "s");
	}
	out_flush(&out);
	tune_journal_info_free(&info);
	return 0;
}

int cmd_tune(int argc, char **argv)
{
	static const struct anole_cmd verbs[] = {
		{ "profile", cmd_profile, "list, show, apply, roll back and verify profiles" },
		{ "rollback", tune_cmd_rollback, "restore every value the journal saved" },
		{ "accept", tune_cmd_accept, "keep the values, drop the journal" },
		{ "status", tune_cmd_status, "whether a journal is open" },
		{ NULL, NULL, NULL },
	};

	return anole_dispatch("tune", verbs, argc, argv);
}
