/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tune/: `anole tune` (docs/anole-tune.md), KeenTune's two halves in one
 * library: knobs with a crash-safe journal, static profiles, and a
 * benchmark-driven search (Bayesian optimisation on a Gaussian process, or
 * random search) whose best result becomes a profile.
 */
#ifndef ANOLE_TUNE_H
#define ANOLE_TUNE_H
#include "anole/strbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------------ knobs */
enum tune_domain {
	TUNE_SYSCTL,    /* /proc/sys, name a.b.c */
	TUNE_SYSFS,     /* a file below /sys, name relative to it (globs allowed) */
	TUNE_CPU,       /* cpufreq of every CPU: governor, ... */
	TUNE_DEBUGFS,   /* /sys/kernel/debug, e.g. sched/migration_cost_ns */
	TUNE_FILE,      /* any file, absolute path: the value is written to it */
	TUNE_COMMAND,   /* a program: `PROG get` prints the value, `PROG set V` sets it */
	TUNE_NDOMAINS
};

enum tune_type { TUNE_INT, TUNE_FLOAT, TUNE_ENUM };

const char *tune_domain_name(enum tune_domain d);
int tune_domain_parse(const char *s, enum tune_domain *d);

/* One line of a parameter file. */
struct tune_param {
	enum tune_domain domain;
	char *name;
	enum tune_type type;
	double lo, hi, step;   /* INT/FLOAT; step 0: none (INT moves by 1) */
	char **choices;        /* ENUM */
	size_t nchoices;
	char *dflt;            /* "default V", NULL if none */
	char *run;             /* COMMAND: the program */
	unsigned line;
};

struct tune_params {
	struct tune_param *v;
	size_t n;
};

#define TUNE_MAX_PARAMS 64

/*
 * Parse a parameter file's text (what names it in errors). On error the
 * message names the line and nothing is returned (out is empty).
 */
int tune_params_parse(const char *text, size_t len, const char *what, struct tune_params *out);
int tune_params_load(const char *path, struct tune_params *out);
void tune_params_free(struct tune_params *p);

/* A parameter's value for a point u in [0,1] (snapped to its grid), and back. */
char *tune_param_value(const struct tune_param *p, double u);
int tune_param_unit(const struct tune_param *p, const char *value, double *u);

/*
 * Where a knob lives on this machine: the files it names (sysfs globs and
 * cpu knobs name several) or, for COMMAND, the program once. A knob this
 * kernel lacks gives -ENOENT and no warning (callers warn once, naming it).
 * Scheduler sysctls that moved to debugfs (5.13+) and back are mapped:
 * *domain may change.
 */
struct tune_target {
	enum tune_domain domain;
	char *path;             /* file, or the program for COMMAND */
};
int tune_resolve(enum tune_domain domain, const char *name, const char *run,
		 struct tune_target **targets, size_t *n);
void tune_targets_free(struct tune_target *t, size_t n);
/* Why a knob may be missing, for the warning ("" if nothing to add). */
const char *tune_missing_hint(enum tune_domain domain, const char *name);

/* The value a target holds now, as it would be written back ("[mq-deadline]
 * none" reads as "mq-deadline"); trailing newline dropped. */
int tune_target_get(const struct tune_target *t, char **value);
/* Write a value. Does not journal: use tune_journal_set. */
int tune_target_set(const struct tune_target *t, const char *value);
/* Write a file whole under its final name (lib/fileio's anole_output:
 * temporary file, then rename). 0 or a logged -errno. */
int tune_write_output(const char *path, const char *data, size_t len);
/* mkdir -p; -errno, not logged. */
int tune_mkdir_p(const char *dir, mode_t mode);
/* The journal's and the applied record's fields: lowercase hex, "-" empty. */
void tune_hex_add(struct strbuf *sb, const char *p, size_t n);
bool tune_hex_decode(const char *s, struct strbuf *sb);
/* Two values the same for the kernel (whitespace runs compare equal). */
bool tune_value_same(const char *a, const char *b);

/* ---------------------------------------------------------------- journal */
/*
 * Every change goes through a journal in the state directory: the old value
 * (the file's exact bytes) is saved and fsync'd before a knob is first
 * written, so `anole tune rollback` can restore it after a crash or SIGKILL.
 * While a journal is open no other tune command may change anything.
 */
struct tune_journal;

/* $ANOLE_TUNE_STATE, else /var/lib/anole/tune. */
const char *tune_state_dir(void);
void tune_set_state_dir(const char *dir);

/* purpose: "profile" or "search". -EBUSY (logged, with what to do) when a
 * journal is left over. A profile journal that completed is rolled back
 * first when purpose is "profile" (switching profiles). */
int tune_journal_begin(const char *purpose, struct tune_journal **j);
/* Save the target's old value (first time only), then write value. */
int tune_journal_set(struct tune_journal *j, const struct tune_target *t, const char *value);
/* Mark complete (a profile stays applied until rollback or accept). */
int tune_journal_done(struct tune_journal *j, const char *note);
/* Restore every saved value but keep the journal (a search measuring its
 * baseline again). */
int tune_journal_restore(struct tune_journal *j);
/* Restore every saved value, newest first, and remove the journal. */
int tune_journal_rollback(struct tune_journal *j);
void tune_journal_close(struct tune_journal *j);

struct tune_journal_info {
	bool exists, done;
	char purpose[16];
	long pid;
	size_t nsaved;
	char *note;             /* what was applied (profile names) */
};
int tune_journal_status(struct tune_journal_info *info);
void tune_journal_info_free(struct tune_journal_info *info);
/* From disk: restore all (returns the count restored, or -errno if some
 * failed: the journal is then kept). 0 when there is nothing to do. */
int tune_rollback(void);
/* Forget the journal: keep the values as they are now. */
int tune_accept(void);

/* --------------------------------------------------------------- profiles */
struct tune_setting {
	enum tune_domain domain;
	char *name;
	char *value;
	char *run;              /* COMMAND */
	char *from;             /* profile that set it */
};

struct tune_profile {
	char *name;
	char *summary;
	char *path;
	struct tune_setting *v; /* includes resolved, later ones override */
	size_t n;
};

/* Profile search path: $ANOLE_TUNE_PROFILE_PATH (colon-separated), then
 * /etc/anole/tune/profiles, then the profiles shipped with anole. */
int tune_profile_dirs(char ***dirs, size_t *n);
/* Where --save writes: the first directory of the path. */
const char *tune_profile_save_dir(void);
int tune_profile_parse(const char *text, size_t len, const char *what, const char *name,
		       struct tune_profile *out);
int tune_profile_load(const char *name, struct tune_profile *out);
/* A name a profile may have (letters, digits, '.', '_', '-'; not starting
 * with '.' or '-'; at most 64): what load takes and search --save writes. */
bool tune_profile_name_valid(const char *s);
void tune_profile_free(struct tune_profile *p);
struct tune_profile_entry {
	char *name, *summary, *path;
};
int tune_profile_list(struct tune_profile_entry **list, size_t *n);
void tune_profile_list_free(struct tune_profile_entry *list, size_t n);

struct tune_apply_report {
	size_t applied, missing, failed;
	struct strbuf missing_names;    /* "domain name" lines */
};
int tune_profile_apply(char **names, size_t n, struct tune_apply_report *rep);
void tune_apply_report_release(struct tune_apply_report *rep);

struct tune_drift {
	enum tune_domain domain;
	char *path, *expected, *actual;  /* actual NULL: unreadable */
};
/* Compare the applied profile with the machine now. */
int tune_profile_verify(char **applied_names, struct tune_drift **drift, size_t *ndrift,
			size_t *nchecked);
void tune_drift_free(struct tune_drift *d, size_t n);

/* ---------------------------------------------------------------- metrics */
struct tune_metric {
	char *name;
	bool maximize;
	double weight;
	bool strict;            /* must not get worse than the baseline */
	char *regex;            /* first group is the value; NULL: NAME: VALUE or JSON */
	void *compiled;
};

#define TUNE_MAX_METRICS 16

int tune_metric_parse(const char *spec, struct tune_metric *m);
int tune_metric_set_regex(struct tune_metric *m, const char *regex);
void tune_metric_free(struct tune_metric *m);
/* The metric's value in a benchmark's output: its regex, else a JSON
 * object's member (dotted path), else the last "NAME: VALUE" line. */
int tune_metric_extract(struct tune_metric *m, const char *out, size_t len, double *value);

/*
 * KeenTune's loss, lower is better: minus the weighted relative change of
 * each metric against the baseline (signed so that better is positive), plus
 * TUNE_STRICT_PENALTY * change^2 for a strict metric that got worse.
 */
#define TUNE_STRICT_PENALTY 100.0
double tune_loss(const struct tune_metric *m, size_t nm, const double *values,
		 const double *baseline);

/* ------------------------------------------------------------------ stats */
struct tune_welch {
	double diff, lo, hi;    /* mean(a) - mean(b), 95% interval */
	double t, df, p;        /* two-sided */
};
int tune_welch(const double *a, size_t na, const double *b, size_t nb, struct tune_welch *w);

/* ------------------------------------------------------- Gaussian process */
struct tune_gp;
/* Fit to n points x (n*d, in [0,1]) with values y: Matern 5/2 ARD kernel,
 * hyperparameters by maximum marginal likelihood (NLopt). */
int tune_gp_fit(const double *x, const double *y, size_t n, size_t d, uint64_t seed,
		struct tune_gp **gp);
void tune_gp_predict(const struct tune_gp *gp, const double *x, double *mean, double *sd);
void tune_gp_free(struct tune_gp *gp);
/* Expected improvement (minimisation) below best. */
double tune_ei(double mean, double sd, double best);

/* A small, seedable generator (splitmix64 + xoshiro256**). */
struct tune_rng { uint64_t s[4]; };
void tune_rng_seed(struct tune_rng *r, uint64_t seed);
uint64_t tune_rng_next(struct tune_rng *r);
double tune_rng_unit(struct tune_rng *r);
/* n points of a Latin hypercube in [0,1]^d, row-major */
void tune_lhs(struct tune_rng *r, size_t n, size_t d, double *out);

/* ----------------------------------------------------------------- search */
enum tune_algo { TUNE_ALGO_BO, TUNE_ALGO_RANDOM };

struct tune_search_opts {
	const char *params_path;
	const char *bench;
	struct tune_metric *metrics;
	size_t nmetrics;
	unsigned trials;        /* default 40 */
	unsigned rounds;        /* benchmark runs per trial, default 1 */
	unsigned baseline_rounds; /* default max(3, rounds) */
	unsigned recheck;       /* best candidates rechecked at the end, default 3 */
	double bench_timeout;   /* seconds, default 300 */
	unsigned max_failures;  /* in a row, default 5 */
	enum tune_algo algo;
	uint64_t seed;
	const char *save;       /* profile name */
	const char *history;    /* JSON lines */
	bool quiet;
	bool verbose;           /* the benchmark's stderr passes through */
};

struct tune_search_result {
	unsigned trials_run, trials_failed;
	bool interrupted, stopped_on_failures;
	size_t best_trial;      /* 0: baseline stayed best */
	double best_loss;
	char **best_values;     /* per usable parameter */
	size_t nvalues;
	struct tune_params used;        /* the parameters searched */
	double *baseline_mean, *best_mean;   /* per metric */
	struct tune_welch *gain;        /* per metric: best - baseline */
	bool significant;       /* every weighted metric's interval */
	struct tune_welch loss_test;    /* baseline loss - best loss */
	unsigned reached95_trial;       /* first trial within 5% of the best gain */
	char *saved_path;
};

int tune_search(const struct tune_search_opts *o, struct tune_search_result *res);
void tune_search_result_free(struct tune_search_result *res);

/* -------------------------------------------------------------- sensitize */
struct tune_importance {
	char *param;            /* "domain name" */
	double importance;      /* share of the total, 0..1 */
	double raw;             /* increase in squared error when permuted */
};
int tune_sensitize(const char *history_path, uint64_t seed, struct tune_importance **imp,
		   size_t *n, size_t *nsamples);
void tune_importance_free(struct tune_importance *imp, size_t n);

#endif
