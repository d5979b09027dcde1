// SPDX-License-Identifier: Apache-2.0
/*
 * The dynamic half: a black-box search over knobs driven by a benchmark.
 *
 *   baseline   the benchmark on the knobs as found, max(3, rounds) times
 *   trials     a Latin hypercube, then Bayesian optimisation (expected
 *              improvement on a Gaussian process, gp.c), or random points;
 *              a trial that beats the best so far is run again (its rounds
 *              doubled) before it counts, against the winner's curse
 *   recheck    the best few and the baseline (restored from the journal),
 *              interleaved so that a drifting machine hits both alike
 *   verdict    Welch's t-test on the recheck's per-round losses, best
 *              against baseline: a gain is reported only if significant at 5%
 *
 * Every knob is journaled before its first write and restored at the end,
 * on failure and on SIGINT; after a SIGKILL the journal is left for
 * `anole tune rollback`.
 */
#include "tune.h"
#include "anole/clock.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <nlopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

struct knob {
	struct tune_param *p;
	struct tune_target *t;
	size_t nt;
	char *found;            /* the first target's value as found */
	double found_u;         /* its unit position, NAN if outside the range */
	char *applied;          /* what this search last wrote to all its targets;
				   NULL: not known (never written, or restored) */
};

struct trial {
	unsigned no;            /* 0: the baseline */
	const char *kind;
	double *u;
	char **values;
	double *samples;        /* rounds x metrics */
	size_t nrounds;
	double loss;            /* of the mean metrics against the baseline's */
	bool ok;
	size_t recheck_from;    /* the first of its rounds run in the recheck */
};

/* The rounds of a trial from `from` on (no copy: do not free). */
static struct trial rounds_from(const struct trial *t, size_t from, size_t nm)
{
	struct trial v = *t;

	v.samples = t->samples + from * nm;
	v.nrounds = t->nrounds - from;
	return v;
}

struct search {
	const struct tune_search_opts *o;
	struct knob *k;
	size_t d;
	size_t nm;
	struct tune_journal *j;
	struct trial base;
	struct trial *t;
	size_t nt;
	struct tune_rng rng;
	FILE *hist;
	bool tty;
	double best_loss;
	size_t best;            /* index into t + 1; 0: none */
};

/* --------------------------------------------------------- benchmark */

/*
 * Run the benchmark once: its stdout is captured, its stderr passes through
 * only with --verbose. A hang past the timeout, or a stop signal, kills its
 * whole process group.
 */
static int run_bench(const struct tune_search_opts *o, unsigned trial, struct strbuf *out,
		     struct strbuf *why)
{
	int pfd[2], status = 0;
	double deadline = anole_mono_seconds() + o->bench_timeout;
	pid_t pid;
	bool killed = false, timed_out = false;
	char trialenv[32];

	strbuf_reset(out);
	if (pipe2(pfd, O_CLOEXEC))
		return anole_error(errno, "pipe");
	snprintf(trialenv, sizeof(trialenv), "%u", trial);
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return anole_error(errno, "fork");
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		setpgid(0, 0);
		if (devnull >= 0) {
			dup2(devnull, 0);
			if (!o->verbose)
				dup2(devnull, 2);
		}
		dup2(pfd[1], 1);
		setenv("ANOLE_TUNE_TRIAL", trialenv, 1);
		execl("/bin/sh", "sh", "-c", o->bench, (char *)NULL);
		_exit(127);
	}
	setpgid(pid, pid);
	close(pfd[1]);
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		double left = deadline - anole_mono_seconds();
		char buf[8192];
		ssize_t r;

		if (stop_signal || left <= 0) {
			timed_out = !stop_signal;
			killed = true;
			kill(-pid, SIGKILL);
			break;
		}
		r = poll(&p, 1, left > 1 ? 1000 : (int)(left * 1000) + 1);
		if (r <= 0)
			continue;
		r = read(pfd[0], buf, sizeof(buf));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out->len < (16u << 20))
			strbuf_add(out, buf, (size_t)r);
	}
	close(pfd[0]);
	/* stdout closed: wait for the exit, still within the deadline */
	for (;;) {
		pid_t w = waitpid(pid, &status, killed ? 0 : WNOHANG);

		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			status = 0;
			break;
		}
		if (!killed && (stop_signal || anole_mono_seconds() > deadline)) {
			timed_out = !stop_signal;
			killed = true;
			kill(-pid, SIGKILL);
			continue;
		}
		if (!killed)
			usleep(10000);
	}
	/* whatever it left behind in its group goes too */
	kill(-pid, SIGKILL);
	if (stop_signal) {
		strbuf_addstr(why, "stopped by a signal");
		return -EINTR;
	}
	if (timed_out) {
		strbuf_addf(why, "benchmark hung: killed after %.0f s (--bench-timeout)",
			    o->bench_timeout);
		return -ETIMEDOUT;
	}
	if (WIFSIGNALED(status)) {
		strbuf_addf(why, "benchmark killed by signal %d", WTERMSIG(status));
		return -EIO;
	}
	if (WEXITSTATUS(status)) {
		strbuf_addf(why, "benchmark exited with status %d", WEXITSTATUS(status));
		return -EIO;
	}
	return 0;
}

/* Run rounds of the benchmark; samples appended to tr. */
static int measure(struct search *s, struct trial *tr, unsigned rounds, struct strbuf *why)
{
	struct strbuf out = STRBUF_INIT;
	int ret = 0;

	for (unsigned r = 0; r < rounds && !ret; r++) {
		double *row;

		ret = run_bench(s->o, tr->no, &out, why);
		if (ret)
			break;
		tr->samples = xrealloc(tr->samples, (tr->nrounds + 1) * s->nm * sizeof(double));
		row = tr->samples + tr->nrounds * s->nm;
		for (size_t m = 0; m < s->nm && !ret; m++)
			if (tune_metric_extract(&s->o->metrics[m], out.buf ? out.buf : "", out.len,
						&row[m])) {
				strbuf_addf(why, "no metric '%s' in the benchmark's output",
					    s->o->metrics[m].name);
				ret = -ENODATA;
			}
		if (!ret)
			tr->nrounds++;
	}
	strbuf_release(&out);
	return ret;
}

static void trial_means(const struct search *s, const struct trial *tr, double *mean)
{
	for (size_t m = 0; m < s->nm; m++) {
		double sum = 0;

		for (size_t r = 0; r < tr->nrounds; r++)
			sum += tr->samples[r * s->nm + m];
		mean[m] = tr->nrounds ? sum / tr->nrounds : NAN;
	}
}

static double trial_loss(const struct search *s, const struct trial *tr)
{
	double mean[TUNE_MAX_METRICS], base[TUNE_MAX_METRICS];

	trial_means(s, tr, mean);
	trial_means(s, &s->base, base);
	return tune_loss(s->o->metrics, s->nm, mean, base);
}

/* per-round losses, for the t-test */
static double *round_losses(const struct search *s, const struct trial *tr)
{
	double base[TUNE_MAX_METRICS];
	double *l = xmalloc((tr->nrounds ? tr->nrounds : 1) * sizeof(double));

	trial_means(s, &s->base, base);
	for (size_t r = 0; r < tr->nrounds; r++)
		l[r] = tune_loss(s->o->metrics, s->nm, tr->samples + r * s->nm, base);
	return l;
}

/* ------------------------------------------------------------ history */

static void json_str(struct strbuf *sb, const char *s)
{
	if (s)
		strbuf_add_json_string(sb, s, strlen(s));
	else
		strbuf_addstr(sb, "null");
}

static void json_num(struct strbuf *sb, double v)
{
	if (isfinite(v))
		strbuf_addf(sb, "%.10g", v);
	else
		strbuf_addstr(sb, "null");
}

static void hist_line(struct search *s, struct strbuf *sb)
{
	strbuf_addch(sb, '\n');
	if (s->hist) {
		fwrite(sb->buf, 1, sb->len, s->hist);
		fflush(s->hist);
	}
	strbuf_release(sb);
}

static void hist_header(struct search *s)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "{\"type\":\"search\",\"algo\":\"%s\",\"seed\":%llu,\"trials\":%u,"
		    "\"rounds\":%u,\"bench\":", s->o->algo == TUNE_ALGO_BO ? "bo" : "random",
		    (unsigned long long)s->o->seed, s->o->trials, s->o->rounds);
	json_str(&sb, s->o->bench);
	strbuf_addstr(&sb, ",\"params\":[");
	for (size_t i = 0; i < s->d; i++) {
		const struct tune_param *p = s->k[i].p;

		strbuf_addf(&sb, "%s{\"domain\":\"%s\",\"name\":", i ? "," : "",
			    tune_domain_name(p->domain));
		json_str(&sb, p->name);
		strbuf_addf(&sb, ",\"type\":\"%s\"", p->type == TUNE_INT ? "int" :
			    p->type == TUNE_FLOAT ? "float" : "enum");
		if (p->type == TUNE_ENUM) {
			strbuf_addstr(&sb, ",\"choices\":[");
			for (size_t c = 0; c < p->nchoices; c++) {
				strbuf_addstr(&sb, c ? "," : "");
				json_str(&sb, p->choices[c]);
			}
			strbuf_addch(&sb, ']');
		} else {
			strbuf_addstr(&sb, ",\"lo\":");
			json_num(&sb, p->lo);
			strbuf_addstr(&sb, ",\"hi\":");
			json_num(&sb, p->hi);
			strbuf_addstr(&sb, ",\"step\":");
			json_num(&sb, p->step);
		}
		if (p->run) {
			strbuf_addstr(&sb, ",\"run\":");
			json_str(&sb, p->run);
		}
		strbuf_addch(&sb, '}');
	}
	strbuf_addstr(&sb, "],\"metrics\":[");
	for (size_t m = 0; m < s->nm; m++) {
		const struct tune_metric *mt = &s->o->metrics[m];

		strbuf_addf(&sb, "%s{\"name\":", m ? "," : "");
		json_str(&sb, mt->name);
		strbuf_addf(&sb, ",\"goal\":\"%s\",\"weight\":", mt->maximize ? "max" : "min");
		json_num(&sb, mt->weight);
		strbuf_addf(&sb, ",\"strict\":%s}", mt->strict ? "true" : "false");
	}
	strbuf_addstr(&sb, "]}");
	hist_line(s, &sb);
}

static void hist_trial(struct search *s, const char *type, const struct trial *tr,
		       const char *error)
{
	struct strbuf sb = STRBUF_INIT;

	strbuf_addf(&sb, "{\"type\":\"%s\",\"trial\":%u,\"kind\":\"%s\",\"values\":{", type,
		    tr->no, tr->kind);
	for (size_t i = 0; i < s->d; i++) {
		struct strbuf key = STRBUF_INIT;

		strbuf_addf(&key, "%s %s", tune_domain_name(s->k[i].p->domain), s->k[i].p->name);
		strbuf_addstr(&sb, i ? "," : "");
		json_str(&sb, key.buf);
		strbuf_addch(&sb, ':');
		json_str(&sb, tr->values ? tr->values[i] : s->k[i].found);
		strbuf_release(&key);
	}
	strbuf_addstr(&sb, "},\"metrics\":{");
	for (size_t m = 0; m < s->nm; m++) {
		strbuf_addstr(&sb, m ? "," : "");
		json_str(&sb, s->o->metrics[m].name);
		strbuf_addstr(&sb, ":[");
		for (size_t r = 0; r < tr->nrounds; r++) {
			strbuf_addstr(&sb, r ? "," : "");
			json_num(&sb, tr->samples[r * s->nm + m]);
		}
		strbuf_addch(&sb, ']');
	}
	strbuf_addf(&sb, "},\"ok\":%s,\"loss\":", tr->ok ? "true" : "false");
	json_num(&sb, tr->ok ? tr->loss : NAN);
	strbuf_addstr(&sb, ",\"best_loss\":");
	json_num(&sb, s->best_loss);
	strbuf_addstr(&sb, ",\"error\":");
	json_str(&sb, error);
	strbuf_addch(&sb, '}');
	hist_line(s, &sb);
}

/* ---------------------------------------------------------- proposals */

static void snap(struct search *s, const double *u, char **values, double *us)
{
	for (size_t i = 0; i < s->d; i++) {
		values[i] = tune_param_value(s->k[i].p, u[i]);
		if (tune_param_unit(s->k[i].p, values[i], &us[i]))
			us[i] = u[i];
	}
}

static bool seen_before(struct search *s, char **values)
{
	for (size_t t = 0; t < s->nt; t++) {
		bool same = s->t[t].values != NULL;

		for (size_t i = 0; i < s->d && same; i++)
			same = !strcmp(s->t[t].values[i], values[i]);
		if (same)
			return true;
	}
	return false;
}

struct ei_ctx {
	struct tune_gp *gp;
	double best;
};

static double neg_ei(unsigned n, const double *x, double *grad, void *opaque)
{
	struct ei_ctx *c = opaque;
	double m, sd;

	(void)n;
	(void)grad;
	tune_gp_predict(c->gp, x, &m, &sd);
	return -tune_ei(m, sd, c->best);
}

struct cand {
	double ei;
	double *u;
};

static int cmp_cand(const void *a, const void *b)
{
	double x = ((const struct cand *)a)->ei, y = ((const struct cand *)b)->ei;

	return x > y ? -1 : x < y;
}

/*
 * The next point by expected improvement: many random candidates and
 * perturbations of the best points so far, the best few refined by NLopt
 * (BOBYQA) within the unit cube. false when the surrogate cannot be fitted.
 */
static bool propose_bo(struct search *s, double *u)
{
	size_t d = s->d, n = 0, ncand, top = 5;
	double *x = xmalloc((s->nt + 1) * d * sizeof(double));
	double *y = xmalloc((s->nt + 1) * sizeof(double));
	struct tune_gp *gp;
	struct ei_ctx c;
	struct cand *cands;
	double *lo = xcalloc(d, sizeof(double)), *hi = xcalloc(d, sizeof(double));
	bool base_in = true, ok = false;

	for (size_t i = 0; i < d; i++)
		base_in &= !isnan(s->k[i].found_u);
	if (base_in) {
		for (size_t i = 0; i < d; i++)
			x[i] = s->k[i].found_u;
		y[n++] = 0;     /* the baseline's loss against itself */
	}
	for (size_t t = 0; t < s->nt; t++)
		if (s->t[t].ok) {
			memcpy(x + n * d, s->t[t].u, d * sizeof(double));
			y[n++] = s->t[t].loss;
		}
	if (n < 2 || tune_gp_fit(x, y, n, d, tune_rng_next(&s->rng), &gp)) {
		free(x);
		free(y);
		free(lo);
		free(hi);
		return false;
	}
	c.gp = gp;
	c.best = INFINITY;
	for (size_t i = 0; i < n; i++)
		if (y[i] < c.best)
			c.best = y[i];
	ncand = 1000 + 200 * d + top * 100;
	cands = xcalloc(ncand, sizeof(*cands));
	/* the best points so far, for the local candidates */
	size_t order[5] = { 0 }, norder = 0;
	for (size_t i = 0; i < n; i++) {
		size_t pos = norder < top ? norder++ : top;

		while (pos > 0 && y[i] < y[order[pos - 1]]) {
			if (pos < top)
				order[pos] = order[pos - 1];
			pos--;
		}
		if (pos < top)
			order[pos] = i;
	}
	for (size_t k = 0; k < ncand; k++) {
		cands[k].u = xmalloc(d * sizeof(double));
		if (k < 1000 + 200 * d || !norder) {
			for (size_t i = 0; i < d; i++)
				cands[k].u[i] = tune_rng_unit(&s->rng);
		} else {
			const double *centre = x + order[(k % norder)] * d;

			for (size_t i = 0; i < d; i++) {
				/* Box-Muller: sd 0.08 of the range */
				double g = sqrt(-2 * log(1 - tune_rng_unit(&s->rng))) *
					   cos(2 * M_PI * tune_rng_unit(&s->rng));
				double v = centre[i] + 0.08 * g;

				cands[k].u[i] = v < 0 ? 0 : v > 1 ? 1 : v;
			}
		}
		cands[k].ei = -neg_ei((unsigned)d, cands[k].u, NULL, &c);
	}
	qsort(cands, ncand, sizeof(*cands), cmp_cand);
	for (size_t i = 0; i < d; i++)
		hi[i] = 1;
	for (size_t k = 0; k < 3 && k < ncand; k++) {
		nlopt_opt opt = nlopt_create(NLOPT_LN_BOBYQA, (unsigned)d);
		double f;

		nlopt_set_lower_bounds(opt, lo);
		nlopt_set_upper_bounds(opt, hi);
		nlopt_set_min_objective(opt, neg_ei, &c);
		nlopt_set_maxeval(opt, 40 + 20 * (int)d);
		nlopt_set_xtol_rel(opt, 1e-3);
		f = -cands[k].ei;
		if (nlopt_optimize(opt, cands[k].u, &f) >= 0)
			cands[k].ei = -f;
		nlopt_destroy(opt);
	}
	qsort(cands, 3 < ncand ? 3 : ncand, sizeof(*cands), cmp_cand);
	/* the best candidate whose grid point was not tried yet */
	for (size_t k = 0; k < ncand && !ok; k++) {
		char **values = xcalloc(d, sizeof(char *));
		double *us = xmalloc(d * sizeof(double));

		snap(s, cands[k].u, values, us);
		if (!seen_before(s, values)) {
			memcpy(u, cands[k].u, d * sizeof(double));
			ok = true;
		}
		for (size_t i = 0; i < d; i++)
			free(values[i]);
		free(values);
		free(us);
	}
	for (size_t k = 0; k < ncand; k++)
		free(cands[k].u);
	free(cands);
	tune_gp_free(gp);
	free(x);
	free(y);
	free(lo);
	free(hi);
	return ok;
}

/* ---------------------------------------------------------- applying */

/*
 * Set the knobs of a point. A knob that holds the value already (the last
 * point had it too) is not written again: a cpu knob is a file per CPU, a
 * command knob a program run, and a search changes few enum knobs per trial.
 */
static int apply_values(struct search *s, char **values)
{
	for (size_t i = 0; i < s->d; i++) {
		struct knob *kb = &s->k[i];

		if (kb->applied && !strcmp(kb->applied, values[i]))
			continue;
		free(kb->applied);
		kb->applied = NULL;
		for (size_t k = 0; k < kb->nt; k++) {
			int ret = tune_journal_set(s->j, &kb->t[k], values[i]);

			if (ret)
				return ret;
		}
		kb->applied = xstrdup(values[i]);
	}
	return 0;
}

/* The journal put the knobs back as found: what apply_values wrote is gone. */
static int restore_found(struct search *s)
{
	for (size_t i = 0; i < s->d; i++) {
		free(s->k[i].applied);
		s->k[i].applied = NULL;
	}
	return tune_journal_restore(s->j);
}

static void progress(struct search *s, unsigned n, const char *what)
{
	if (!s->tty || s->o->quiet)
		return;
	fprintf(stderr, "\r\033[Ktrial %u/%u %s", n, s->o->trials, what);
	if (s->best) {
		const struct trial *b = &s->t[s->best - 1];
		double mean[TUNE_MAX_METRICS];

		trial_means(s, b, mean);
		fprintf(stderr, "  best: trial %u loss %.4g (%s %.6g)", b->no, s->best_loss,
			s->o->metrics[0].name, mean[0]);
	}
	fflush(stderr);
}

static void trial_free(struct trial *t, size_t d)
{
	if (t->values)
		for (size_t i = 0; i < d; i++)
			free(t->values[i]);
	free(t->values);
	free(t->u);
	free(t->samples);
}

/* ------------------------------------------------------------ search */

static int save_profile(struct search *s, const struct trial *best, struct tune_search_result *res)
{
	struct strbuf path = STRBUF_INIT, sb = STRBUF_INIT;
	const char *dir = tune_profile_save_dir();
	int ret;

	strbuf_addf(&path, "%s/%s.conf", dir, s->o->save);
	strbuf_addf(&sb, "# written by anole tune search (%s, seed %llu): best of %u trials\n"
		    "[main]\nsummary=found by anole tune search: loss %.4g against the baseline%s\n",
		    s->o->algo == TUNE_ALGO_BO ? "bo" : "random", (unsigned long long)s->o->seed,
		    s->o->trials, res->best_loss,
		    res->significant ? " (significant)" : " (within noise)");
	for (int d = 0; d < TUNE_NDOMAINS; d++) {
		bool header = false;

		for (size_t i = 0; i < s->d; i++) {
			const struct tune_param *p = s->k[i].p;

			if (p->domain != (enum tune_domain)d)
				continue;
			if (!header)
				strbuf_addf(&sb, "[%s]\n", tune_domain_name(p->domain));
			header = true;
			strbuf_addf(&sb, "%s=%s\n", p->name, best->values[i]);
			if (p->run)
				strbuf_addf(&sb, "%s.run=%s\n", p->name, p->run);
		}
	}
	/* the save directory may be new (/etc/anole/tune/profiles); if it
	 * cannot be made, the output below says why */
	tune_mkdir_p(dir, 0755);
	ret = tune_write_output(path.buf, sb.buf, sb.len);
	if (!ret)
		res->saved_path = strbuf_detach(&path, NULL);
	strbuf_release(&path);
	strbuf_release(&sb);
	return ret;
}

static int cmp_loss_idx(const void *a, const void *b, void *opaque)
{
	const struct trial *t = opaque;
	double x = t[*(const size_t *)a].loss, y = t[*(const size_t *)b].loss;

	return x < y ? -1 : x > y;
}

int tune_search(const struct tune_search_opts *o, struct tune_search_result *res)
{
	struct tune_params ps;
	struct search s;
	struct strbuf why = STRBUF_INIT;
	struct sigaction sa, old[3];
	static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	unsigned failures = 0, n_init;
	int ret;

	memset(res, 0, sizeof(*res));
	memset(&s, 0, sizeof(s));
	if (!o->nmetrics || o->nmetrics > TUNE_MAX_METRICS)
		return anole_error_code(EINVAL, "search: 1 to %d metrics (--metric)",
					TUNE_MAX_METRICS);
	/* before the search, not after it: a name tune_profile_load takes */
	if (o->save && !tune_profile_name_valid(o->save))
		return anole_error_code(EINVAL, "--save: '%s' is not a profile name", o->save);
	if ((ret = tune_params_load(o->params_path, &ps)))
		return ret;
	s.o = o;
	s.nm = o->nmetrics;
	s.best_loss = INFINITY;
	s.tty = isatty(2);
	tune_rng_seed(&s.rng, o->seed);
	s.k = xcalloc(ps.n, sizeof(*s.k));
	/* the knobs this kernel has; each one missing is named once */
	for (size_t i = 0; i < ps.n; i++) {
		struct knob *k = &s.k[s.d];
		int r = tune_resolve(ps.v[i].domain, ps.v[i].name, ps.v[i].run, &k->t, &k->nt);

		if (r == -ENOENT) {
			anole_warn("%s:%u: %s %s is not on this kernel: left out of the search%s",
				   o->params_path, ps.v[i].line, tune_domain_name(ps.v[i].domain),
				   ps.v[i].name, tune_missing_hint(ps.v[i].domain, ps.v[i].name));
			continue;
		}
		if (r) {
			ret = anole_error_code(EINVAL, "%s:%u: %s %s is not a valid knob name",
					       o->params_path, ps.v[i].line,
					       tune_domain_name(ps.v[i].domain), ps.v[i].name);
			goto out_knobs;
		}
		k->p = &ps.v[i];
		k->found_u = NAN;
		/* an absent file knob has no value yet (it is created, then removed) */
		if (k->t[0].domain == TUNE_FILE && access(k->t[0].path, F_OK)) {
			k->found = NULL;
		} else if (!tune_target_get(&k->t[0], &k->found)) {
			if (tune_param_unit(k->p, k->found, &k->found_u))
				k->found_u = NAN;
		} else if (k->t[0].domain != TUNE_FILE) {
			ret = anole_error_code(EIO, "%s %s: cannot read its value",
					       tune_domain_name(k->p->domain), k->p->name);
			s.d++;
			goto out_knobs;
		}
		if (isnan(k->found_u) && k->p->dflt)
			tune_param_unit(k->p, k->p->dflt, &k->found_u);
		s.d++;
	}
	if (!s.d) {
		ret = anole_error_code(ENOENT, "%s: none of its knobs is on this kernel",
				       o->params_path);
		goto out_knobs;
	}
	if (o->history) {
		s.hist = fopen(o->history, "we");
		if (!s.hist) {
			ret = anole_error(errno, "%s", o->history);
			goto out_knobs;
		}
	}
	if ((ret = tune_journal_begin("search", &s.j)))
		goto out_hist;

	stop_signal = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &sa, &old[i]);

	hist_header(&s);
	/* ---- baseline: the knobs as found */
	s.base.kind = "baseline";
	progress(&s, 0, "baseline");
	ret = measure(&s, &s.base, o->baseline_rounds, &why);
	s.base.ok = !ret;
	s.base.loss = 0;
	hist_trial(&s, "baseline", &s.base, ret ? why.buf : NULL);
	if (ret) {
		if (ret != -EINTR)
			ret = anole_error_code(EIO, "the baseline failed: %s", why.buf);
		goto out_rollback;
	}

	/* ---- trials */
	n_init = (unsigned)(2 * s.d + 1);
	if (n_init < 5)
		n_init = 5;
	if (n_init > 10)
		n_init = 10;
	if (n_init > o->trials)
		n_init = o->trials;
	double *lhs = xmalloc((n_init ? n_init : 1) * s.d * sizeof(double));
	tune_lhs(&s.rng, n_init, s.d, lhs);
	for (unsigned n = 1; n <= o->trials && !stop_signal; n++) {
		struct trial tr = { .no = n };
		char *error = NULL;
		int r;

		tr.u = xmalloc(s.d * sizeof(double));
		tr.values = xcalloc(s.d, sizeof(char *));
		if (o->algo == TUNE_ALGO_RANDOM) {
			tr.kind = "random";
			for (size_t i = 0; i < s.d; i++)
				tr.u[i] = tune_rng_unit(&s.rng);
		} else if (n <= n_init) {
			tr.kind = "lhs";
			memcpy(tr.u, lhs + (n - 1) * s.d, s.d * sizeof(double));
		} else {
			tr.kind = "bo";
			if (!propose_bo(&s, tr.u)) {
				tr.kind = "random";
				for (size_t i = 0; i < s.d; i++)
					tr.u[i] = tune_rng_unit(&s.rng);
			}
		}
		{
			double *us = xmalloc(s.d * sizeof(double));

			snap(&s, tr.u, tr.values, us);
			memcpy(tr.u, us, s.d * sizeof(double));
			free(us);
		}
		progress(&s, n, tr.kind);
		strbuf_reset(&why);
		r = apply_values(&s, tr.values);
		if (r) {
			strbuf_addf(&why, "could not apply: %s", anole_last_error());
		} else {
			r = measure(&s, &tr, o->rounds, &why);
			if (!r) {
				tr.loss = trial_loss(&s, &tr);
				/* a new best is run again before it counts */
				if (tr.loss < s.best_loss && !stop_signal) {
					r = measure(&s, &tr, o->rounds, &why);
					if (!r)
						tr.loss = trial_loss(&s, &tr);
				}
			}
		}
		tr.ok = !r;
		if (r == -EINTR) {
			trial_free(&tr, s.d);
			break;
		}
		s.t = xrealloc(s.t, (s.nt + 1) * sizeof(*s.t));
		s.t[s.nt++] = tr;
		if (tr.ok && tr.loss < s.best_loss) {
			s.best_loss = tr.loss;
			s.best = s.nt;
		}
		error = tr.ok ? NULL : why.buf;
		hist_trial(&s, "trial", &tr, error);
		res->trials_run++;
		if (!tr.ok) {
			res->trials_failed++;
			if (o->verbose || !s.tty)
				anole_warn("trial %u failed: %s", n, why.buf);
			if (++failures >= o->max_failures) {
				res->stopped_on_failures = true;
				ret = anole_error_code(EIO, "%u trials failed in a row (the last: %s): "
						       "search stopped", failures, why.buf);
				break;
			}
		} else {
			failures = 0;
		}
		if (o->verbose)
			anole_info("trial %u: loss %.4g", n, tr.ok ? tr.loss : NAN);
	}
	free(lhs);
	if (s.tty && !o->quiet)
		fputc('\n', stderr);
	if (stop_signal) {
		res->interrupted = true;
		ret = anole_error_code(EINTR, "search interrupted by signal %d: rolled back",
				       (int)stop_signal);
		goto out_rollback;
	}
	if (ret)
		goto out_rollback;

	/* ---- recheck: the best few against the baseline, interleaved */
	size_t *idx = xmalloc((s.nt ? s.nt : 1) * sizeof(size_t)), nok = 0, nre;
	for (size_t t = 0; t < s.nt; t++)
		if (s.t[t].ok)
			idx[nok++] = t;
	qsort_r(idx, nok, sizeof(size_t), cmp_loss_idx, s.t);
	nre = nok < o->recheck ? nok : o->recheck;
	unsigned rr = o->rounds > 3 ? o->rounds : 3;
	s.base.recheck_from = s.base.nrounds;
	for (size_t k = 0; k < nre; k++)
		s.t[idx[k]].recheck_from = s.t[idx[k]].nrounds;
	for (unsigned r = 0; r < rr && nre && !ret && !stop_signal; r++) {
		progress(&s, o->trials, "recheck");
		if ((ret = restore_found(&s)))
			break;
		strbuf_reset(&why);
		if ((ret = measure(&s, &s.base, 1, &why)))
			break;
		for (size_t k = 0; k < nre && !ret; k++) {
			struct trial *tr = &s.t[idx[k]];

			if (!(ret = apply_values(&s, tr->values)))
				ret = measure(&s, tr, 1, &why);
		}
	}
	if (s.tty && !o->quiet)
		fputc('\n', stderr);
	if (ret) {
		if (stop_signal) {
			res->interrupted = true;
			ret = anole_error_code(EINTR, "search interrupted by signal %d: rolled back",
					       (int)stop_signal);
		} else {
			ret = anole_error_code(EIO, "the recheck failed: %s", why.buf[0] ? why.buf :
					       anole_last_error());
		}
		free(idx);
		goto out_rollback;
	}
	/*
	 * The verdict uses the recheck's rounds only: they were interleaved,
	 * so a machine whose speed changed since the baseline (load from
	 * elsewhere) affects both sides alike; the search's earlier rounds
	 * were not.
	 */
	struct trial full_base = s.base;
	s.base = rounds_from(&full_base, full_base.recheck_from, s.nm);
	hist_trial(&s, "recheck", &s.base, NULL);
	s.best = 0;
	s.best_loss = 0;
	for (size_t k = 0; k < nre; k++) {
		struct trial *tr = &s.t[idx[k]];
		struct trial v = rounds_from(tr, tr->recheck_from, s.nm);

		tr->loss = trial_loss(&s, &v);
		v.loss = tr->loss;
		hist_trial(&s, "recheck", &v, NULL);
		if (tr->loss < s.best_loss) {
			s.best_loss = tr->loss;
			s.best = idx[k] + 1;
		}
	}
	free(idx);

	/* ---- the verdict */
	res->best_loss = s.best_loss;
	res->baseline_mean = xcalloc(s.nm, sizeof(double));
	res->best_mean = xcalloc(s.nm, sizeof(double));
	res->gain = xcalloc(s.nm, sizeof(struct tune_welch));
	trial_means(&s, &s.base, res->baseline_mean);
	{
		struct trial bv = s.best ? rounds_from(&s.t[s.best - 1], s.t[s.best - 1].recheck_from,
						       s.nm) : s.base;
		const struct trial *b = &bv;
		double *lb = round_losses(&s, &s.base), *lt = round_losses(&s, b);
		double *xa = xmalloc((b->nrounds + 1) * sizeof(double));
		double *xb = xmalloc((s.base.nrounds + 1) * sizeof(double));

		trial_means(&s, b, res->best_mean);
		res->best_trial = s.best ? b->no : 0;
		tune_welch(lb, s.base.nrounds, lt, b->nrounds, &res->loss_test);
		for (size_t m = 0; m < s.nm; m++) {
			for (size_t r = 0; r < b->nrounds; r++)
				xa[r] = b->samples[r * s.nm + m];
			for (size_t r = 0; r < s.base.nrounds; r++)
				xb[r] = s.base.samples[r * s.nm + m];
			tune_welch(xa, b->nrounds, xb, s.base.nrounds, &res->gain[m]);
		}
		res->significant = s.best && res->loss_test.p < 0.05 && res->loss_test.lo > 0;
		res->nvalues = s.d;
		res->best_values = xcalloc(s.d, sizeof(char *));
		for (size_t i = 0; i < s.d; i++)
			res->best_values[i] = xstrdup(s.best ? b->values[i] :
						      s.k[i].found ? s.k[i].found : "");
		free(lb);
		free(lt);
		free(xa);
		free(xb);
	}
	/* trials to reach 95% of the best gain seen during the search */
	{
		double top = 0, run = INFINITY;

		for (size_t t = 0; t < s.nt; t++)
			if (s.t[t].ok && s.t[t].loss < top)
				top = s.t[t].loss;
		for (size_t t = 0; t < s.nt && top < 0; t++) {
			if (s.t[t].ok && s.t[t].loss < run)
				run = s.t[t].loss;
			if (run <= 0.95 * top) {
				res->reached95_trial = s.t[t].no;
				break;
			}
		}
	}
	{
		struct strbuf sb = STRBUF_INIT;

		strbuf_addf(&sb, "{\"type\":\"result\",\"best_trial\":%zu,\"best_loss\":",
			    res->best_trial);
		json_num(&sb, res->best_loss);
		strbuf_addstr(&sb, ",\"loss_p\":");
		json_num(&sb, res->loss_test.p);
		strbuf_addf(&sb, ",\"significant\":%s,\"reached95_trial\":%u}",
			    res->significant ? "true" : "false", res->reached95_trial);
		hist_line(&s, &sb);
	}
	s.base = full_base;
	if (o->save && s.best)
		ret = save_profile(&s, &s.t[s.best - 1], res);
	else if (o->save)
		anole_warn("--save %s: nothing beat the baseline; no profile written", o->save);

out_rollback:
	{
		int r = tune_journal_rollback(s.j);

		if (r && !ret)
			ret = r;
	}
	tune_journal_close(s.j);
	for (int i = 0; i < 3; i++)
		sigaction(sigs[i], &old[i], NULL);
	if (stop_signal && s.hist) {
		struct strbuf sb = STRBUF_INIT;

		strbuf_addf(&sb, "{\"type\":\"interrupted\",\"signal\":%d}", (int)stop_signal);
		hist_line(&s, &sb);
	}
out_hist:
	if (s.hist)
		fclose(s.hist);
out_knobs:
	res->used.v = xcalloc(s.d ? s.d : 1, sizeof(struct tune_param));
	/* hand the searched parameters over, for printing */
	for (size_t i = 0; i < s.d; i++) {
		res->used.v[i] = *s.k[i].p;
		memset(s.k[i].p, 0, sizeof(struct tune_param));
		tune_targets_free(s.k[i].t, s.k[i].nt);
		free(s.k[i].found);
		free(s.k[i].applied);
	}
	res->used.n = s.d;
	free(s.k);
	tune_params_free(&ps);
	for (size_t t = 0; t < s.nt; t++)
		trial_free(&s.t[t], s.d);
	free(s.t);
	trial_free(&s.base, s.d);
	strbuf_release(&why);
	return ret;
}

void tune_search_result_free(struct tune_search_result *res)
{
	for (size_t i = 0; i < res->nvalues; i++)
		free(res->best_values[i]);
	free(res->best_values);
	tune_params_free(&res->used);
	free(res->baseline_mean);
	free(res->best_mean);
	free(res->gain);
	free(res->saved_path);
	memset(res, 0, sizeof(*res));
}
