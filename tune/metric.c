// SPDX-License-Identifier: Apache-2.0
/*
 * Metrics read from a benchmark's output, KeenTune's loss over them, the
 * statistics that decide whether a gain is real (Welch's t-test, GSL's t
 * distribution), and the search's random numbers.
 */
#include "tune.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <gsl/gsl_cdf.h>
#include <jansson.h>
#include <math.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

int tune_metric_parse(const char *spec, struct tune_metric *m)
{
	char *copy = xstrdup(spec), *save = NULL, *first, *eq, *tok;
	int ret = 0;

	memset(m, 0, sizeof(*m));
	m->maximize = true;
	m->weight = 1;
	first = strtok_r(copy, ",", &save);
	if (!first)
		goto bad;
	if ((eq = strchr(first, '='))) {
		*eq = '\0';
		if (!strcmp(eq + 1, "max"))
			m->maximize = true;
		else if (!strcmp(eq + 1, "min"))
			m->maximize = false;
		else
			goto bad;
	}
	if (!*first || strlen(first) > 128)
		goto bad;
	for (const char *p = first; *p; p++)
		if (isspace((unsigned char)*p) || !isprint((unsigned char)*p))
			goto bad;
	m->name = xstrdup(first);
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *end;
		double w;

		if (!strcmp(tok, "strict")) {
			m->strict = true;
			continue;
		}
		errno = 0;
		w = strtod(tok, &end);
		if (*end || errno || !isfinite(w) || w < 0)
			goto bad;
		m->weight = w;
	}
	free(copy);
	return 0;
bad:
	ret = anole_error_code(EINVAL, "metric '%s': expected NAME[=max|min][,WEIGHT][,strict] "
			       "(WEIGHT a number >= 0)", spec);
	free(copy);
	tune_metric_free(m);
	return ret;
}

int tune_metric_set_regex(struct tune_metric *m, const char *regex)
{
	regex_t *re = xmalloc(sizeof(*re));
	int r = regcomp(re, regex, REG_EXTENDED | REG_NEWLINE);

	if (r) {
		char msg[256];

		regerror(r, re, msg, sizeof(msg));
		free(re);
		return anole_error_code(EINVAL, "metric %s: regex '%s': %s", m->name, regex, msg);
	}
	if (m->compiled) {
		regfree(m->compiled);
		free(m->compiled);
	}
	free(m->regex);
	m->regex = xstrdup(regex);
	m->compiled = re;
	return 0;
}

void tune_metric_free(struct tune_metric *m)
{
	free(m->name);
	free(m->regex);
	if (m->compiled) {
		regfree(m->compiled);
		free(m->compiled);
	}
	memset(m, 0, sizeof(*m));
}

/* A number at the start of s (units may follow: "1234.5 requests/s"). */
static bool leading_number(const char *s, size_t n, double *v)
{
	char buf[64], *end;
	size_t k = 0;

	while (n && isspace((unsigned char)*s)) {
		s++;
		n--;
	}
	while (k < n && k < sizeof(buf) - 1 && (isdigit((unsigned char)s[k]) ||
						 strchr("+-.eE", s[k])))
		k++;
	memcpy(buf, s, k);
	buf[k] = '\0';
	if (!k)
		return false;
	errno = 0;
	*v = strtod(buf, &end);
	return end != buf && !errno && isfinite(*v);
}

static bool json_lookup(json_t *root, const char *path, double *v)
{
	char *copy = xstrdup(path), *save = NULL;
	json_t *cur = root;

	/* the whole name first (a key may have dots), then a dotted path */
	if (json_is_object(root) && json_object_get(root, path))
		cur = json_object_get(root, path);
	else
		for (char *k = strtok_r(copy, ".", &save); k && cur; k = strtok_r(NULL, ".", &save))
			cur = json_is_object(cur) ? json_object_get(cur, k) : NULL;
	free(copy);
	if (json_is_number(cur)) {
		*v = json_number_value(cur);
		return isfinite(*v);
	}
	if (json_is_string(cur))
		return leading_number(json_string_value(cur), json_string_length(cur), v);
	return false;
}

int tune_metric_extract(struct tune_metric *m, const char *out, size_t len, double *value)
{
	size_t namelen = strlen(m->name);
	bool found = false;
	const char *p, *end = out + len;

	if (m->compiled) {
		regmatch_t mt[2];
		char *text = xstrndup(out, len);
		int r = regexec(m->compiled, text, 2, mt, 0);

		if (!r) {
			int g = mt[1].rm_so >= 0 ? 1 : 0;

			found = leading_number(text + mt[g].rm_so, (size_t)(mt[g].rm_eo - mt[g].rm_so),
					       value);
		}
		free(text);
		return found ? 0 : -ENOENT;
	}
	/* JSON: the whole output, else its last JSON line that has the name */
	for (p = out; p < end && isspace((unsigned char)*p); p++)
		;
	if (p < end && (*p == '{' || *p == '[')) {
		json_t *root = json_loadb(out, len, 0, NULL);

		if (root) {
			found = json_lookup(root, m->name, value);
			json_decref(root);
			if (found)
				return 0;
		}
	}
	for (p = out; p < end;) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *q = p;
		double v;

		while (q < le && isspace((unsigned char)*q))
			q++;
		if (q < le && *q == '{') {
			json_t *root = json_loadb(q, (size_t)(le - q), 0, NULL);

			if (root) {
				if (json_lookup(root, m->name, &v)) {
					*value = v;
					found = true;
				}
				json_decref(root);
			}
		} else if ((size_t)(le - q) > namelen && !memcmp(q, m->name, namelen)) {
			/* NAME: VALUE or NAME=VALUE, the last one wins */
			const char *r = q + namelen;

			while (r < le && (*r == ' ' || *r == '\t'))
				r++;
			if (r < le && (*r == ':' || *r == '=') &&
			    leading_number(r + 1, (size_t)(le - r - 1), &v)) {
				*value = v;
				found = true;
			}
		}
		p = nl ? nl + 1 : end;
	}
	return found ? 0 : -ENOENT;
}

double tune_loss(const struct tune_metric *m, size_t nm, const double *values,
		 const double *baseline)
{
	double loss = 0;

	for (size_t i = 0; i < nm; i++) {
		double base = fabs(baseline[i]) > 1e-12 ? fabs(baseline[i]) : 1e-12;
		double change = (values[i] - baseline[i]) / base;

		if (!m[i].maximize)
			change = -change;
		loss -= m[i].weight * change;
		if (m[i].strict && change < 0)
			loss += TUNE_STRICT_PENALTY * change * change;
	}
	return loss;
}

static void mean_var(const double *a, size_t n, double *mean, double *var)
{
	double s = 0, ss = 0;

	for (size_t i = 0; i < n; i++)
		s += a[i];
	*mean = s / n;
	for (size_t i = 0; i < n; i++)
		ss += (a[i] - *mean) * (a[i] - *mean);
	*var = n > 1 ? ss / (n - 1) : 0;
}

int tune_welch(const double *a, size_t na, const double *b, size_t nb, struct tune_welch *w)
{
	double ma, va, mb, vb, sa, sb, se, q;

	memset(w, 0, sizeof(*w));
	if (na < 2 || nb < 2)
		return -EINVAL;
	mean_var(a, na, &ma, &va);
	mean_var(b, nb, &mb, &vb);
	sa = va / na;
	sb = vb / nb;
	se = sqrt(sa + sb);
	w->diff = ma - mb;
	if (se <= 0) {
		/* no spread at all: the difference is what it is */
		w->lo = w->hi = w->diff;
		w->df = (double)(na + nb - 2);
		w->t = w->diff == 0 ? 0 : copysign(INFINITY, w->diff);
		w->p = w->diff == 0 ? 1 : 0;
		return 0;
	}
	/* Welch-Satterthwaite degrees of freedom */
	w->df = (sa + sb) * (sa + sb) /
		((sa * sa) / (na - 1) + (sb * sb) / (nb - 1));
	w->t = w->diff / se;
	w->p = 2 * gsl_cdf_tdist_Q(fabs(w->t), w->df);
	q = gsl_cdf_tdist_Pinv(0.975, w->df);
	w->lo = w->diff - q * se;
	w->hi = w->diff + q * se;
	return 0;
}

/* ------------------------------------------------------------- random */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void tune_rng_seed(struct tune_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t tune_rng_next(struct tune_rng *r)
{
	uint64_t result = rotl(r->s[1] * 5, 7) * 9, t = r->s[1] << 17;

	r->s[2] ^= r->s[0];
	r->s[3] ^= r->s[1];
	r->s[1] ^= r->s[2];
	r->s[0] ^= r->s[3];
	r->s[2] ^= t;
	r->s[3] = rotl(r->s[3], 45);
	return result;
}

double tune_rng_unit(struct tune_rng *r)
{
	return (double)(tune_rng_next(r) >> 11) * 0x1.0p-53;
}

void tune_lhs(struct tune_rng *r, size_t n, size_t d, double *out)
{
	size_t *perm = xmalloc(n * sizeof(*perm));

	for (size_t j = 0; j < d; j++) {
		for (size_t i = 0; i < n; i++)
			perm[i] = i;
		for (size_t i = n; i > 1; i--) {
			size_t k = (size_t)(tune_rng_next(r) % i), t = perm[i - 1];

			perm[i - 1] = perm[k];
			perm[k] = t;
		}
		for (size_t i = 0; i < n; i++)
			out[i * d + j] = (perm[i] + tune_rng_unit(r)) / n;
	}
	free(perm);
}
