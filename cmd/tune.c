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

/* ---------------------------------------------------------- search */

static const char search_help[] =
"usage: anole tune search --params FILE --bench CMD --metric NAME[=max|min][,W][,strict]...\n"
"                         [options]\n"
"\n"
"Black-box search: runs the benchmark CMD (sh -c) on the knobs as found\n"
"(the baseline), then on TRIALS settings chosen by Bayesian optimisation (a\n"
"Gaussian process with a Matern 5/2 kernel, expected improvement, a Latin\n"
"hypercube start) or at random; rechecks the best few against the baseline,\n"
"and reports a gain only if Welch's t-test finds it significant at 5%.\n"
"Every knob is journaled and left as found (SIGINT: stop and roll back;\n"
"after SIGKILL: `anole tune rollback`).\n"
"\n"
"Metrics are read from the benchmark's stdout: a regex (--metric-regex), a\n"
"JSON member (dotted path), or the last 'NAME: VALUE' line. The loss is\n"
"KeenTune's: minus the weighted relative change against the baseline, plus\n"
"100 x change^2 for a strict metric that got worse.\n"
"\n"
"options:\n"
"  -p, --params FILE        the knobs: DOMAIN NAME int|float LO..HI [step S],\n"
"                           or DOMAIN NAME enum A,B,C (docs/anole-tune.md)\n"
"  -b, --bench CMD          the benchmark, run with sh -c; $ANOLE_TUNE_TRIAL is set\n"
"  -m, --metric SPEC        NAME[=max|min][,WEIGHT][,strict] (repeatable; default\n"
"                           max, weight 1)\n"
"      --metric-regex NAME=REGEX  read NAME with an extended regex, group 1\n"
"  -n, --trials N           settings to try (default 40)\n"
"  -r, --rounds R           benchmark runs per trial (default 1)\n"
"      --baseline-rounds N  runs of the baseline (default max(3, R))\n"
"      --recheck K          best settings rechecked at the end (default 3)\n"
"      --bench-timeout S    a run longer than S seconds is killed and fails\n"
"                           its trial (default 300)\n"
"      --max-failures N     failed trials in a row that stop the search (default 5)\n"
"      --algo bo|random     the search (default bo)\n"
"      --seed N             random seed (default 1)\n"
"      --save NAME          write the best setting as profile NAME (in the first\n"
"                           directory of $ANOLE_TUNE_PROFILE_PATH, else\n"
"                           /etc/anole/tune/profiles)\n"
"      --history FILE       every trial as JSON lines (for `anole tune sensitize`)\n"
"      --json               the result as one JSON object\n"
"  -q, --quiet              no progress line\n"
"  -v, --verbose            the benchmark's stderr, and a line per trial\n"
"  -h, --help               this help\n"
"\n"
"Exit status: 0 when the search completed (gain or not), 1 on errors or when\n"
"too many trials failed, 130 when interrupted.\n";

enum { OPT_METRIC_REGEX = 256, OPT_BASELINE_ROUNDS, OPT_RECHECK, OPT_BENCH_TIMEOUT,
       OPT_MAX_FAILURES, OPT_ALGO, OPT_SEED, OPT_SAVE, OPT_HISTORY, OPT_JSON };

static bool parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max || s[0] == '-')
		return false;
	*out = (unsigned)v;
	return true;
}

static int search_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "anole tune search: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n\n%s", search_help);
	return 2;
}

static void print_result(const struct tune_search_opts *o, const struct tune_search_result *r,
			 bool json)
{
	struct strbuf out = STRBUF_INIT;

	if (json) {
		strbuf_addf(&out, "{\"trials\":%u,\"failed\":%u,\"algo\":\"%s\",\"seed\":%" PRIu64
			    ",\"best_trial\":%zu,\"best_loss\":%.10g,\"values\":{",
			    r->trials_run, r->trials_failed,
			    o->algo == TUNE_ALGO_BO ? "bo" : "random", o->seed, r->best_trial,
			    r->best_loss);
		for (size_t i = 0; i < r->nvalues; i++) {
			struct strbuf key = STRBUF_INIT;

			strbuf_addf(&key, "%s %s", tune_domain_name(r->used.v[i].domain),
				    r->used.v[i].name);
			strbuf_addstr(&out, i ? "," : "");
			json_str(&out, key.buf);
			strbuf_addch(&out, ':');
			json_str(&out, r->best_values[i]);
			strbuf_release(&key);
		}
		strbuf_addstr(&out, "},\"metrics\":{");
		for (size_t m = 0; m < o->nmetrics; m++) {
			const struct tune_welch *g = &r->gain[m];

			strbuf_addstr(&out, m ? "," : "");
			json_str(&out, o->metrics[m].name);
			strbuf_addf(&out, ":{\"baseline\":%.10g,\"best\":%.10g,\"diff\":%.10g,"
				    "\"ci95\":[%.10g,%.10g],\"p\":%.6g}", r->baseline_mean[m],
				    r->best_mean[m], g->diff, g->lo, g->hi, g->p);
		}
		strbuf_addf(&out, "},\"loss_test\":{\"test\":\"welch\",\"diff\":%.10g,"
			    "\"ci95\":[%.10g,%.10g],\"t\":%.6g,\"df\":%.6g,\"p\":%.6g},"
			    "\"significant\":%s,\"reached95_trial\":%u,\"saved\":",
			    r->loss_test.diff, r->loss_test.lo, r->loss_test.hi, r->loss_test.t,
			    r->loss_test.df, r->loss_test.p, r->significant ? "true" : "false",
			    r->reached95_trial);
		json_str(&out, r->saved_path);
		strbuf_addstr(&out, "}\n");
	} else {
		strbuf_addf(&out, "search: %u trials (%u failed), %s, seed %" PRIu64 "\n",
			    r->trials_run, r->trials_failed,
			    o->algo == TUNE_ALGO_BO ? "bayesian optimisation" : "random", o->seed);
		if (!r->best_trial) {
			strbuf_addstr(&out, "best: the baseline (no setting beat it on recheck)\n");
		} else {
			strbuf_addf(&out, "best: trial %zu, loss %.4g\n", r->best_trial, r->best_loss);
			for (size_t i = 0; i < r->nvalues; i++)
				strbuf_addf(&out, "  %s %s = %s\n", tune_domain_name(r->used.v[i].domain),
					    r->used.v[i].name, r->best_values[i]);
		}
		for (size_t m = 0; m < o->nmetrics; m++) {
			const struct tune_welch *g = &r->gain[m];
			double b = fabs(r->baseline_mean[m]) > 0 ? fabs(r->baseline_mean[m]) : 1;

			strbuf_addf(&out, "  %s: %.6g -> %.6g (%+.2f%%, 95%% interval %+.2f%% .. "
				    "%+.2f%%)\n", o->metrics[m].name, r->baseline_mean[m],
				    r->best_mean[m], 100 * g->diff / b, 100 * g->lo / b,
				    100 * g->hi / b);
		}
		strbuf_addf(&out, "gain: loss %.4g lower than the baseline's (95%% interval %.4g .. "
			    "%.4g; Welch t = %.3g, df = %.3g, p = %.3g): %s\n", r->loss_test.diff,
			    r->loss_test.lo, r->loss_test.hi, r->loss_test.t, r->loss_test.df,
			    r->loss_test.p, r->significant ? "significant at 5%" :
			    "NOT significant (within noise)");
		if (r->reached95_trial)
			strbuf_addf(&out, "trials to reach 95%% of the best gain: %u\n",
				    r->reached95_trial);
		if (r->saved_path)
			strbuf_addf(&out, "saved as profile %s (%s)\n", o->save, r->saved_path);
	}
	out_flush(&out);
}

static int tune_cmd_search(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "params", required_argument, NULL, 'p' },
		{ "bench", required_argument, NULL, 'b' },
		{ "metric", required_argument, NULL, 'm' },
		{ "metric-regex", required_argument, NULL, OPT_METRIC_REGEX },
		{ "trials", required_argument, NULL, 'n' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "baseline-rounds", required_argument, NULL, OPT_BASELINE_ROUNDS },
		{ "recheck", required_argument, NULL, OPT_RECHECK },
		{ "bench-timeout", required_argument, NULL, OPT_BENCH_TIMEOUT },
		{ "max-failures", required_argument, NULL, OPT_MAX_FAILURES },
		{ "algo", required_argument, NULL, OPT_ALGO },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "save", required_argument, NULL, OPT_SAVE },
		{ "history", required_argument, NULL, OPT_HISTORY },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tune_search_opts o = {
		.trials = 40, .rounds = 1, .recheck = 3, .bench_timeout = 300,
		.max_failures = 5, .algo = TUNE_ALGO_BO, .seed = 1,
	};
	struct tune_metric metrics[TUNE_MAX_METRICS];
	char *regexes[TUNE_MAX_METRICS * 2];
	size_t nregex = 0;
	struct tune_search_result res;
	bool json = false;
	unsigned baseline_rounds = 0;
	int c, ret = 2;

	memset(metrics, 0, sizeof(metrics));
	o.metrics = metrics;
	optind = 1;
	while ((c = getopt_long(argc, argv, "p:b:m:n:r:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': o.params_path = optarg; break;
		case 'b': o.bench = optarg; break;
		case 'm':
			if (o.nmetrics >= TUNE_MAX_METRICS) {
				ret = search_usage("more than %s metrics", "16");
				goto out;
			}
			if (tune_metric_parse(optarg, &metrics[o.nmetrics]))
				goto out;
			o.nmetrics++;
			break;
		case OPT_METRIC_REGEX:
			if (!strchr(optarg, '=') || nregex >= ARRAY_SIZE(regexes)) {
				ret = search_usage("--metric-regex '%s': expected NAME=REGEX", optarg);
				goto out;
			}
			regexes[nregex++] = optarg;
			break;
		case 'n':
			if (!parse_uint(optarg, 1, 100000, &o.trials)) {
				ret = search_usage("--trials '%s': expected 1..100000", optarg);
				goto out;
			}
			break;
		case 'r':
			if (!parse_uint(optarg, 1, 1000, &o.rounds)) {
				ret = search_usage("--rounds '%s': expected 1..1000", optarg);
				goto out;
			}
			break;
		case OPT_BASELINE_ROUNDS:
			if (!parse_uint(optarg, 2, 1000, &baseline_rounds)) {
				ret = search_usage("--baseline-rounds '%s': expected 2..1000", optarg);
				goto out;
			}
			break;
		case OPT_RECHECK:
			if (!parse_uint(optarg, 1, 100, &o.recheck)) {
				ret = search_usage("--recheck '%s': expected 1..100", optarg);
				goto out;
			}
			break;
		case OPT_BENCH_TIMEOUT: {
			char *end;

			errno = 0;
			o.bench_timeout = strtod(optarg, &end);
			if (*end || errno || !(o.bench_timeout > 0) || o.bench_timeout > 1e6) {
				ret = search_usage("--bench-timeout '%s': expected seconds > 0", optarg);
				goto out;
			}
			break;
		}
		case OPT_MAX_FAILURES:
			if (!parse_uint(optarg, 1, 100000, &o.max_failures)) {
				ret = search_usage("--max-failures '%s': expected a count >= 1", optarg);
				goto out;
			}
			break;
		case OPT_ALGO:
			if (!strcmp(optarg, "bo"))
				o.algo = TUNE_ALGO_BO;
			else if (!strcmp(optarg, "random"))
				o.algo = TUNE_ALGO_RANDOM;
			else {
				ret = search_usage("--algo '%s': expected bo or random", optarg);
				goto out;
			}
			break;
		case OPT_SEED: {
			char *end;

			errno = 0;
			o.seed = strtoull(optarg, &end, 10);
			if (!*optarg || *end || errno || optarg[0] == '-') {
				ret = search_usage("--seed '%s': expected an unsigned integer", optarg);
				goto out;
			}
			break;
		}
		case OPT_SAVE: o.save = optarg; break;
		case OPT_HISTORY: o.history = optarg; break;
		case OPT_JSON: json = true; break;
		case 'q': o.quiet = true; break;
		case 'v': o.verbose = true; break;
		case 'h': fputs(search_help, stdout); ret = 0; goto out;
		default: fputs(search_help, stderr); goto out;
		}
	}
	if (optind < argc) {
		ret = search_usage("unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (!o.params_path || !o.bench || !o.nmetrics) {
		ret = search_usage("%s", "--params, --bench and --metric are required");
		goto out;
	}
	for (size_t i = 0; i < nregex; i++) {
		char *eq = strchr(regexes[i], '=');
		bool found = false;

		for (size_t m = 0; m < o.nmetrics; m++)
			if (strlen(metrics[m].name) == (size_t)(eq - regexes[i]) &&
			    !strncmp(metrics[m].name, regexes[i], (size_t)(eq - regexes[i]))) {
				if (tune_metric_set_regex(&metrics[m], eq + 1)) {
					ret = 2;
					goto out;
				}
				found = true;
			}
		if (!found) {
			ret = search_usage("--metric-regex '%s' names no --metric", regexes[i]);
			goto out;
		}
	}
	o.baseline_rounds = baseline_rounds ? baseline_rounds : (o.rounds > 3 ? o.rounds : 3);
	ret = tune_search(&o, &res);
	if (!ret)
		print_result(&o, &res, json);
	ret = ret == -EINTR ? 130 : ret ? 1 : 0;
	tune_search_result_free(&res);
out:
	for (size_t m = 0; m < o.nmetrics; m++)
		tune_metric_free(&metrics[m]);
	return ret;
}

/* ---------------------------------------------------------- sensitize */

static const char sensitize_help[] =
"usage: anole tune sensitize HISTORY [--seed N] [--json]\n"
"\n"
"Which parameters matter, from a search's history (--history): a Gaussian\n"
"process is fitted to the successful trials' losses, and each parameter's\n"
"importance is the variance of its main effect on that model (fANOVA-style:\n"
"the loss predicted along the parameter, averaged over random settings of\n"
"the others), as a share of the sum. Needs 5 successful trials or more.\n"
"\n"
"options:\n"
"      --seed N   seed of the random settings (default 1)\n"
"      --json     [{\"rank\": n, \"param\": ..., \"importance\": share, \"variance\": ...}]\n";

static int tune_cmd_sensitize(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "seed", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct tune_importance *imp;
	struct strbuf out = STRBUF_INIT;
	size_t n, samples;
	uint64_t seed = 1;
	bool json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 's': {
			char *end;

			errno = 0;
			seed = strtoull(optarg, &end, 10);
			if (!*optarg || *end || errno || optarg[0] == '-') {
				fprintf(stderr, "anole tune sensitize: --seed '%s': expected an "
					"unsigned integer\n\n%s", optarg, sensitize_help);
				return 2;
			}
			break;
		}
		case 'h': fputs(sensitize_help, stdout); return 0;
		default: fputs(sensitize_help, stderr); return 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "anole tune sensitize: expected one HISTORY file\n\n%s",
			sensitize_help);
		return 2;
	}
	if (tune_sensitize(argv[optind], seed, &imp, &n, &samples))
		return 1;
	if (json) {
		strbuf_addch(&out, '[');
		for (size_t i = 0; i < n; i++) {
			strbuf_addf(&out, "%s{\"rank\":%zu,\"param\":", i ? "," : "", i + 1);
			json_str(&out, imp[i].param);
			strbuf_addf(&out, ",\"importance\":%.6g,\"variance\":%.6g}",
				    imp[i].importance, imp[i].raw);
		}
		strbuf_addstr(&out, "]\n");
	} else {
		strbuf_addf(&out, "parameter importance from %zu trials (main-effect variance "
			    "on a Gaussian process)\n%-4s %-10s %-12s %s\n", samples, "rank",
			    "importance", "variance", "parameter");
		for (size_t i = 0; i < n; i++)
			strbuf_addf(&out, "%-4zu %9.1f%% %-12.4g %s\n", i + 1,
				    100 * imp[i].importance, imp[i].raw, imp[i].param);
	}
	out_flush(&out);
	tune_importance_free(imp, n);
	return 0;
}

int cmd_tune(int argc, char **argv)
{
	static const struct anole_cmd verbs[] = {
		{ "profile", cmd_profile, "list, show, apply, roll back and verify profiles" },
		{ "search", tune_cmd_search, "find better knob settings with a benchmark" },
		{ "sensitize", tune_cmd_sensitize, "rank parameters by importance from a history" },
		{ "rollback", tune_cmd_rollback, "restore every value the journal saved" },
		{ "accept", tune_cmd_accept, "keep the values, drop the journal" },
		{ "status", tune_cmd_status, "whether a journal is open" },
		{ NULL, NULL, NULL },
	};

	return anole_dispatch("tune", verbs, argc, argv);
}
