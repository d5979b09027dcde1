// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of tune/'s numbers: Welch's t-test against a hand-computed
 * case, KeenTune's loss (signs, weights, the strict penalty), metric
 * extraction from each output form, the unit-cube mapping of knobs, and
 * the Gaussian process recovering a smooth function it was fitted to.
 */
#include "tap.h"
#include "tune.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_welch(void)
{
	/* a: mean 3, var 2.5; b: mean 6, var 10 -> se = sqrt(0.5 + 2),
	 * t = -3 / 1.5811 = -1.8974, df = 2.5^2 / (0.5^2/4 + 2^2/4) = 5.8824 */
	double a[] = { 1, 2, 3, 4, 5 }, b[] = { 2, 4, 6, 8, 10 };
	struct tune_welch w;

	CHECK(tune_welch(a, 5, b, 5, &w) == 0, "welch runs");
	CHECK(fabs(w.diff + 3) < 1e-12, "welch diff %g", w.diff);
	CHECK(fabs(w.t + 1.897367) < 1e-5, "welch t %g", w.t);
	CHECK(fabs(w.df - 5.882353) < 1e-5, "welch df %g", w.df);
	/* p of |t| = 1.897 at 5.88 df lies between the t table's 0.10 (1.943
	 * at 6 df) and 0.20 (1.440); and the interval holds 0 */
	CHECK(w.p > 0.10 && w.p < 0.12, "welch p %g", w.p);
	CHECK(w.lo < 0 && w.hi > 0 && fabs((w.lo + w.hi) / 2 + 3) < 1e-9, "welch interval %g..%g",
	      w.lo, w.hi);
	CHECK(tune_welch(a, 1, b, 5, &w) == -EINVAL, "welch needs two samples each");
}

static void test_loss(void)
{
	struct tune_metric m[2];
	double base[2] = { 100, 10 }, v[2];

	tune_metric_parse("rps", &m[0]);
	tune_metric_parse("p99=min,0.5,strict", &m[1]);
	CHECK(m[0].maximize && m[0].weight == 1 && !m[0].strict, "rps defaults");
	CHECK(!m[1].maximize && m[1].weight == 0.5 && m[1].strict, "p99 parsed");
	v[0] = 110; v[1] = 10;
	CHECK(fabs(tune_loss(m, 2, v, base) + 0.1) < 1e-12, "10%% more rps: loss -0.1");
	v[0] = 100; v[1] = 9;
	CHECK(fabs(tune_loss(m, 2, v, base) + 0.05) < 1e-12, "10%% lower p99 at weight 0.5");
	v[0] = 100; v[1] = 12;
	/* strict and 20% worse: 0.5 * 0.2 + 100 * 0.2^2 */
	CHECK(fabs(tune_loss(m, 2, v, base) - 4.1) < 1e-9, "strict penalty %g",
	      tune_loss(m, 2, v, base));
	tune_metric_free(&m[0]);
	tune_metric_free(&m[1]);
	CHECK(tune_metric_parse("x=up", &m[0]) == -EINVAL, "bad goal refused");
	CHECK(tune_metric_parse("x,-1", &m[0]) == -EINVAL, "negative weight refused");
}

static void test_extract(void)
{
	struct tune_metric m;
	double v = 0;
	const char *lines = "rps: 5\nnoise\nrps: 1234.5 requests/s\nrpsx: 9\n";
	const char *json = "{\"a\": {\"rps\": 77.5}, \"rps\": \"12 ops\"}";
	const char *jsonl = "start\n{\"rps\": 3}\n{\"other\": 1}\n";

	tune_metric_parse("rps", &m);
	CHECK(!tune_metric_extract(&m, lines, strlen(lines), &v) && v == 1234.5,
	      "NAME: VALUE, last wins, units ignored: %g", v);
	CHECK(!tune_metric_extract(&m, json, strlen(json), &v) && v == 12, "JSON string: %g", v);
	CHECK(!tune_metric_extract(&m, jsonl, strlen(jsonl), &v) && v == 3, "JSON line: %g", v);
	CHECK(tune_metric_extract(&m, "nothing\n", 8, &v) == -ENOENT, "missing metric");
	tune_metric_free(&m);
	tune_metric_parse("a.rps", &m);
	CHECK(!tune_metric_extract(&m, json, strlen(json), &v) && v == 77.5, "JSON path: %g", v);
	CHECK(!tune_metric_set_regex(&m, "Requests/sec: *([0-9.]+)"), "regex compiles");
	CHECK(!tune_metric_extract(&m, "Requests/sec:  99.25\n", 21, &v) && v == 99.25,
	      "regex group: %g", v);
	CHECK(tune_metric_set_regex(&m, "(") == -EINVAL, "bad regex refused");
	tune_metric_free(&m);
}

static void test_units(void)
{
	struct tune_params ps;
	const char *text = "file /a int 0..100 step 10\nfile /b enum x,y,z\nfile /c float 0..1\n";
	double u;
	char *s;

	CHECK(!tune_params_parse(text, strlen(text), "t", &ps) && ps.n == 3, "params parse");
	s = tune_param_value(&ps.v[0], 0.34);
	CHECK(!strcmp(s, "30"), "int snapped to its step: %s", s);
	free(s);
	s = tune_param_value(&ps.v[1], 0.99);
	CHECK(!strcmp(s, "z"), "enum cell: %s", s);
	free(s);
	CHECK(!tune_param_unit(&ps.v[1], "y", &u) && fabs(u - 0.5) < 1e-12, "enum centre %g", u);
	CHECK(tune_param_unit(&ps.v[0], "101", &u) == -ERANGE, "outside the range");
	tune_params_free(&ps);
}

static void test_gp(void)
{
	/* f(x, y) = sin(3x) + y^2 on a 6x6 grid; predict between the points */
	double x[72], y[36];
	struct tune_gp *gp;
	size_t n = 0;

	for (int i = 0; i < 6; i++)
		for (int k = 0; k < 6; k++) {
			x[2 * n] = i / 5.0;
			x[2 * n + 1] = k / 5.0;
			y[n] = sin(3 * x[2 * n]) + x[2 * n + 1] * x[2 * n + 1];
			n++;
		}
	CHECK(!tune_gp_fit(x, y, n, 2, 1, &gp), "gp fits");
	double worst = 0, sdmax = 0;
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < 5; k++) {
			double p[2] = { (i + 0.5) / 5, (k + 0.5) / 5 }, m, sd;

			tune_gp_predict(gp, p, &m, &sd);
			double err = fabs(m - (sin(3 * p[0]) + p[1] * p[1]));
			worst = err > worst ? err : worst;
			sdmax = sd > sdmax ? sd : sdmax;
		}
	/* the function spans ~2; a grid of spacing 0.2 pins it to a few % */
	CHECK(worst < 0.05, "gp predicts between its points: worst error %g", worst);
	CHECK(sdmax > 0 && sdmax < 0.2, "gp uncertainty between points %g", sdmax);
	CHECK(tune_ei(0, 1, 0) > 0.39 && tune_ei(0, 1, 0) < 0.40, "EI at the best: phi(0)");
	tune_gp_free(gp);
}

int main(void)
{
	test_welch();
	test_loss();
	test_extract();
	test_units();
	test_gp();
	printf("1..%d\n", ntests);
	printf("# %d tests, %d passed, %d failed\n", ntests, ntests - nfailed, nfailed);
	return nfailed ? 1 : 0;
}
