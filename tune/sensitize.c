// SPDX-License-Identifier: Apache-2.0
/*
 * `anole tune sensitize`: which parameters matter, from a search's history.
 * A Gaussian process (gp.c) is fitted to the trials' losses; each
 * parameter's importance is the variance of its main effect on the
 * surrogate (fANOVA-style: the prediction averaged over random settings of
 * the other parameters, along a grid of this one), as a share of the sum.
 * Permuting columns was tried first, but a GP that interpolates its points
 * predicts the mean anywhere away from them, so every permutation hurt
 * alike and every parameter came out equal.
 */
#include "tune.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GRID 16          /* points along each parameter */
#define BACKGROUND 128   /* settings of the others averaged over */

static int header_params(json_t *h, struct tune_params *ps, const char *path)
{
	json_t *arr = json_object_get(h, "params"), *e;
	size_t i;

	if (!json_is_array(arr) || !json_array_size(arr) ||
	    json_array_size(arr) > TUNE_MAX_PARAMS)
		return anole_error_code(EINVAL, "%s: the search line has no parameters", path);
	ps->v = xcalloc(json_array_size(arr), sizeof(*ps->v));
	json_array_foreach(arr, i, e) {
		struct tune_param *p = &ps->v[ps->n];
		const char *dom = json_string_value(json_object_get(e, "domain"));
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *type = json_string_value(json_object_get(e, "type"));

		if (!dom || !name || !type || tune_domain_parse(dom, &p->domain))
			return anole_error_code(EINVAL, "%s: parameter %zu is malformed", path, i + 1);
		p->name = xstrdup(name);
		ps->n++;
		if (!strcmp(type, "enum")) {
			json_t *ch = json_object_get(e, "choices"), *c;
			size_t k;

			p->type = TUNE_ENUM;
			if (!json_is_array(ch) || json_array_size(ch) < 2)
				return anole_error_code(EINVAL, "%s: enum %s has no choices", path, name);
			p->choices = xcalloc(json_array_size(ch), sizeof(char *));
			json_array_foreach(ch, k, c) {
				if (!json_is_string(c))
					return anole_error_code(EINVAL, "%s: enum %s: a choice is not a "
								"string", path, name);
				p->choices[p->nchoices++] = xstrdup(json_string_value(c));
			}
		} else if (!strcmp(type, "int") || !strcmp(type, "float")) {
			p->type = type[0] == 'i' ? TUNE_INT : TUNE_FLOAT;
			p->lo = json_number_value(json_object_get(e, "lo"));
			p->hi = json_number_value(json_object_get(e, "hi"));
			p->step = json_number_value(json_object_get(e, "step"));
			if (!(p->lo < p->hi))
				return anole_error_code(EINVAL, "%s: %s has an empty range", path, name);
		} else {
			return anole_error_code(EINVAL, "%s: %s has an unknown type", path, name);
		}
	}
	return 0;
}

void tune_importance_free(struct tune_importance *imp, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(imp[i].param);
	free(imp);
}

static int cmp_imp(const void *a, const void *b)
{
	double x = ((const struct tune_importance *)a)->raw,
	       y = ((const struct tune_importance *)b)->raw;

	return x > y ? -1 : x < y;
}

int tune_sensitize(const char *path, uint64_t seed, struct tune_importance **out, size_t *nout,
		   size_t *nsamples)
{
	FILE *f = fopen(path, "re");
	struct tune_params ps = { NULL, 0 };
	double *x = NULL, *y = NULL;
	size_t n = 0, cap = 0, lineno = 0;
	char *line = NULL;
	size_t lcap = 0;
	ssize_t len;
	int ret = 0;
	struct tune_gp *gp = NULL;

	*out = NULL;
	*nout = 0;
	*nsamples = 0;
	if (!f)
		return anole_error(errno, "%s", path);
	while (!ret && (len = getline(&line, &lcap, f)) > 0) {
		json_error_t jerr;
		json_t *o;
		const char *type;

		lineno++;
		o = json_loadb(line, (size_t)len, 0, &jerr);
		if (!o || !json_is_object(o)) {
			ret = anole_error_code(EINVAL, "%s:%zu: not a JSON object: %s", path, lineno,
					       o ? "" : jerr.text);
			json_decref(o);
			break;
		}
		type = json_string_value(json_object_get(o, "type"));
		if (type && !strcmp(type, "search")) {
			if (ps.n)
				ret = anole_error_code(EINVAL, "%s:%zu: a second search (one history "
						       "per file)", path, lineno);
			else
				ret = header_params(o, &ps, path);
		} else if (type && !strcmp(type, "trial") &&
			   json_is_true(json_object_get(o, "ok"))) {
			json_t *vals = json_object_get(o, "values");
			double loss = json_number_value(json_object_get(o, "loss"));
			bool good = json_is_object(vals) && json_is_number(json_object_get(o, "loss"));

			if (!ps.n) {
				ret = anole_error_code(EINVAL, "%s:%zu: a trial before the search line",
						       path, lineno);
				json_decref(o);
				break;
			}
			if (n == cap) {
				cap = cap ? 2 * cap : 64;
				x = xrealloc(x, cap * ps.n * sizeof(double));
				y = xrealloc(y, cap * sizeof(double));
			}
			for (size_t i = 0; i < ps.n && good; i++) {
				struct strbuf key = STRBUF_INIT;
				const char *v;

				strbuf_addf(&key, "%s %s", tune_domain_name(ps.v[i].domain),
					    ps.v[i].name);
				v = json_string_value(json_object_get(vals, key.buf));
				good = v && !tune_param_unit(&ps.v[i], v, &x[n * ps.n + i]);
				strbuf_release(&key);
			}
			if (good && isfinite(loss)) {
				y[n++] = loss;
			} else {
				ret = anole_error_code(EINVAL, "%s:%zu: a trial's values do not match "
						       "its parameters", path, lineno);
			}
		}
		json_decref(o);
	}
	free(line);
	fclose(f);
	if (!ret && !ps.n)
		ret = anole_error_code(EINVAL, "%s: no search line: not a history of `anole tune "
				       "search --history`", path);
	if (!ret && n < 5)
		ret = anole_error_code(EINVAL, "%s: %zu successful trials; at least 5 are needed",
				       path, n);
	if (!ret)
		ret = tune_gp_fit(x, y, n, ps.n, seed, &gp);
	if (!ret) {
		struct tune_rng rng;
		struct tune_importance *imp = xcalloc(ps.n, sizeof(*imp));
		double *bg = xmalloc(BACKGROUND * ps.n * sizeof(double));
		double *row = xmalloc(ps.n * sizeof(double)), total = 0, m, sd;

		tune_rng_seed(&rng, seed);
		for (size_t i = 0; i < BACKGROUND * ps.n; i++)
			bg[i] = tune_rng_unit(&rng);
		for (size_t j = 0; j < ps.n; j++) {
			double effect[GRID], mean = 0, var = 0;

			/* the main effect of j: the surrogate averaged over the others */
			for (int g = 0; g < GRID; g++) {
				double sum = 0;

				for (int b = 0; b < BACKGROUND; b++) {
					memcpy(row, bg + b * ps.n, ps.n * sizeof(double));
					row[j] = (g + 0.5) / GRID;
					tune_gp_predict(gp, row, &m, &sd);
					sum += m;
				}
				effect[g] = sum / BACKGROUND;
				mean += effect[g] / GRID;
			}
			for (int g = 0; g < GRID; g++)
				var += (effect[g] - mean) * (effect[g] - mean) / GRID;
			imp[j].raw = var;
			total += var;
			struct strbuf name = STRBUF_INIT;
			strbuf_addf(&name, "%s %s", tune_domain_name(ps.v[j].domain), ps.v[j].name);
			imp[j].param = strbuf_detach(&name, NULL);
		}
		for (size_t j = 0; j < ps.n; j++)
			imp[j].importance = total > 0 ? imp[j].raw / total : 0;
		qsort(imp, ps.n, sizeof(*imp), cmp_imp);
		*out = imp;
		*nout = ps.n;
		*nsamples = n;
		free(row);
		free(bg);
	}
	tune_gp_free(gp);
	tune_params_free(&ps);
	free(x);
	free(y);
	return ret;
}
