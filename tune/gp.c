// SPDX-License-Identifier: Apache-2.0
/*
 * The search's surrogate: a Gaussian process on [0,1]^d with a Matern 5/2
 * kernel, one length scale per parameter (ARD), so that sensitize can also
 * use it. Hyperparameters (log length scales, log signal and noise
 * variances) maximise the log marginal likelihood, found by NLopt's BOBYQA
 * from a few starts; the linear algebra (Cholesky factor, triangular
 * solves) is GSL's.
 */
#include "tune.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <gsl/gsl_blas.h>
#include <gsl/gsl_cdf.h>
#include <gsl/gsl_errno.h>
#include <gsl/gsl_linalg.h>
#include <gsl/gsl_matrix.h>
#include <gsl/gsl_randist.h>
#include <gsl/gsl_vector.h>
#include <math.h>
#include <nlopt.h>
#include <stdlib.h>
#include <string.h>

struct tune_gp {
	size_t n, d;
	double *x;              /* n*d */
	double ymean, ystd;
	double *ell;            /* d length scales */
	double sf2, sn2;
	gsl_matrix *L;          /* Cholesky factor of K + sn2 I */
	gsl_vector *alpha;      /* (K + sn2 I)^-1 y (standardised) */
};

static double matern52(const double *a, const double *b, const double *ell, size_t d,
		       double sf2)
{
	double r2 = 0, r;

	for (size_t j = 0; j < d; j++) {
		double t = (a[j] - b[j]) / ell[j];

		r2 += t * t;
	}
	r = sqrt(5 * r2);
	return sf2 * (1 + r + r * r / 3) * exp(-r);
}

struct fit_ctx {
	const double *x;
	const double *y;        /* standardised */
	size_t n, d;
	gsl_matrix *K;
	gsl_vector *yv, *a;
	double *ell;
};

/* K + sn2 I, factorised in place; false if not positive definite */
static bool factor(const double *x, size_t n, size_t d, const double *ell, double sf2,
		   double sn2, gsl_matrix *K)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k <= i; k++) {
			double v = matern52(x + i * d, x + k * d, ell, d, sf2);

			if (i == k)
				v += sn2 + 1e-9;
			gsl_matrix_set(K, i, k, v);
			gsl_matrix_set(K, k, i, v);
		}
	return gsl_linalg_cholesky_decomp1(K) == GSL_SUCCESS;
}

/* theta = (log ell_1..d, log sf2, log sn2): the negative log marginal likelihood */
static double nll(unsigned nt, const double *theta, double *grad, void *opaque)
{
	struct fit_ctx *c = opaque;
	double sf2 = exp(theta[c->d]), sn2 = exp(theta[c->d + 1]), quad, logdet = 0;

	(void)nt;
	(void)grad;
	for (size_t j = 0; j < c->d; j++)
		c->ell[j] = exp(theta[j]);
	if (!factor(c->x, c->n, c->d, c->ell, sf2, sn2, c->K))
		return 1e30;
	gsl_linalg_cholesky_solve(c->K, c->yv, c->a);
	gsl_blas_ddot(c->yv, c->a, &quad);
	for (size_t i = 0; i < c->n; i++)
		logdet += log(gsl_matrix_get(c->K, i, i));
	return 0.5 * quad + logdet + 0.5 * c->n * log(2 * M_PI);
}

int tune_gp_fit(const double *x, const double *y, size_t n, size_t d, uint64_t seed,
		struct tune_gp **out)
{
	struct tune_gp *gp;
	struct fit_ctx c;
	size_t nt = d + 2;
	double *theta, *best, *lo, *hi, best_f = INFINITY, sum = 0, ss = 0;
	double *ys;
	struct tune_rng rng;

	*out = NULL;
	if (!n || !d)
		return -EINVAL;
	gsl_set_error_handler_off();
	tune_rng_seed(&rng, seed);
	gp = xcalloc(1, sizeof(*gp));
	gp->n = n;
	gp->d = d;
	gp->x = xmemdup(x, n * d * sizeof(double));
	gp->ell = xcalloc(d, sizeof(double));
	for (size_t i = 0; i < n; i++)
		sum += y[i];
	gp->ymean = sum / n;
	for (size_t i = 0; i < n; i++)
		ss += (y[i] - gp->ymean) * (y[i] - gp->ymean);
	gp->ystd = n > 1 ? sqrt(ss / (n - 1)) : 0;
	if (!(gp->ystd > 1e-12))
		gp->ystd = 1;
	ys = xmalloc(n * sizeof(double));
	for (size_t i = 0; i < n; i++)
		ys[i] = (y[i] - gp->ymean) / gp->ystd;

	c.x = gp->x;
	c.y = ys;
	c.n = n;
	c.d = d;
	c.K = gsl_matrix_alloc(n, n);
	c.yv = gsl_vector_alloc(n);
	c.a = gsl_vector_alloc(n);
	c.ell = gp->ell;
	for (size_t i = 0; i < n; i++)
		gsl_vector_set(c.yv, i, ys[i]);

	theta = xcalloc(nt, sizeof(double));
	best = xcalloc(nt, sizeof(double));
	lo = xcalloc(nt, sizeof(double));
	hi = xcalloc(nt, sizeof(double));
	/* length scales from 1/100 to 10 times the unit cube; a signal of
	 * 0.05..20 standardised variances; noise from nearly none to all */
	for (size_t j = 0; j < d; j++) {
		lo[j] = log(0.01);
		hi[j] = log(10.0);
	}
	lo[d] = log(0.05);
	hi[d] = log(20.0);
	lo[d + 1] = log(1e-6);
	hi[d + 1] = log(1.0);
	for (int start = 0; start < 3; start++) {
		nlopt_opt opt = nlopt_create(NLOPT_LN_BOBYQA, (unsigned)nt);
		double f = INFINITY;

		for (size_t j = 0; j < d; j++)
			theta[j] = start == 0 ? log(0.3) :
				   lo[j] + (hi[j] - lo[j]) * (0.2 + 0.5 * tune_rng_unit(&rng));
		theta[d] = start == 0 ? 0 : log(0.2 + 2 * tune_rng_unit(&rng));
		theta[d + 1] = start == 0 ? log(0.01) : log(1e-4 + 0.1 * tune_rng_unit(&rng));
		nlopt_set_lower_bounds(opt, lo);
		nlopt_set_upper_bounds(opt, hi);
		nlopt_set_min_objective(opt, nll, &c);
		nlopt_set_maxeval(opt, 60 + 30 * (int)nt);
		nlopt_set_xtol_rel(opt, 1e-4);
		if (nlopt_optimize(opt, theta, &f) < 0)
			f = nll((unsigned)nt, theta, NULL, &c);
		if (f < best_f) {
			best_f = f;
			memcpy(best, theta, nt * sizeof(double));
		}
		nlopt_destroy(opt);
	}
	if (!isfinite(best_f) || best_f >= 1e29) {
		/* no hyperparameters factorise: fall back to a noisy, smooth fit */
		for (size_t j = 0; j < d; j++)
			best[j] = log(0.3);
		best[d] = 0;
		best[d + 1] = log(0.5);
	}
	for (size_t j = 0; j < d; j++)
		gp->ell[j] = exp(best[j]);
	gp->sf2 = exp(best[d]);
	gp->sn2 = exp(best[d + 1]);
	gp->L = c.K;
	gp->alpha = c.a;
	if (!factor(gp->x, n, d, gp->ell, gp->sf2, gp->sn2, gp->L)) {
		gp->sn2 += 0.1;
		factor(gp->x, n, d, gp->ell, gp->sf2, gp->sn2, gp->L);
	}
	gsl_linalg_cholesky_solve(gp->L, c.yv, gp->alpha);
	gsl_vector_free(c.yv);
	free(ys);
	free(theta);
	free(best);
	free(lo);
	free(hi);
	*out = gp;
	return 0;
}

void tune_gp_predict(const struct tune_gp *gp, const double *x, double *mean, double *sd)
{
	gsl_vector *k = gsl_vector_alloc(gp->n);
	double m, var;

	for (size_t i = 0; i < gp->n; i++)
		gsl_vector_set(k, i, matern52(x, gp->x + i * gp->d, gp->ell, gp->d, gp->sf2));
	gsl_blas_ddot(k, gp->alpha, &m);
	/* var = k(x,x) - |L^-1 k|^2 */
	gsl_blas_dtrsv(CblasLower, CblasNoTrans, CblasNonUnit, gp->L, k);
	var = gp->sf2 - gsl_blas_dnrm2(k) * gsl_blas_dnrm2(k);
	if (var < 1e-12)
		var = 1e-12;
	*mean = gp->ymean + gp->ystd * m;
	*sd = gp->ystd * sqrt(var);
	gsl_vector_free(k);
}

void tune_gp_free(struct tune_gp *gp)
{
	if (!gp)
		return;
	gsl_matrix_free(gp->L);
	gsl_vector_free(gp->alpha);
	free(gp->x);
	free(gp->ell);
	free(gp);
}

double tune_ei(double mean, double sd, double best)
{
	double z;

	if (sd <= 0)
		return best > mean ? best - mean : 0;
	z = (best - mean) / sd;
	return (best - mean) * gsl_cdf_ugaussian_P(z) + sd * gsl_ran_ugaussian_pdf(z);
}
