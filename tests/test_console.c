// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the console's parsers of untrusted input: the Prometheus
 * text format (console/promtext.c: names, labels with escapes, special
 * values, timestamps, comments, a malformed line and its number) and the
 * remote-diagnosis allow-list (lib/diag_policy.c: the argument vector it
 * builds and everything it refuses).
 */
#include "console.h"
#include "anole/diag_policy.h"
#include "tap.h"

#include <errno.h>
#include <math.h>
#include <string.h>

struct got {
	int n;
	char names[8][64], labels[8][128];
	double values[8];
};

static int collect(const struct console_sample *s, void *arg)
{
	struct got *g = arg;

	if (g->n < 8) {
		snprintf(g->names[g->n], sizeof(g->names[0]), "%.*s", (int)s->name_len, s->name);
		snprintf(g->labels[g->n], sizeof(g->labels[0]), "%.*s", (int)s->labels_len, s->labels);
		g->values[g->n] = s->value;
	}
	g->n++;
	return 0;
}

static int parse(const char *text, struct got *g, unsigned *bad)
{
	memset(g, 0, sizeof(*g));
	*bad = 0;
	return console_promtext_parse(text, strlen(text), collect, g, bad);
}

static void test_promtext(void)
{
	struct got g;
	unsigned bad;
	int ret;

	ret = parse("# HELP a_total Things.\n# TYPE a_total counter\na_total 42\n"
		    "b{x=\"1\",y=\"a\\\"b\\\\c\\nd\"} -2.5e3 1700000000000\n"
		    "\n  c{} +Inf\nd NaN\ne{z=\"\",} -Inf\nf:g 0x1F\n", &g, &bad);
	CHECK(ret == -EINVAL && bad == 9, "a hex value is refused on its line (ret %d, line %u)",
	      ret, bad);
	CHECK(g.n == 5, "the five samples before it are handed over (%d)", g.n);
	CHECK(!strcmp(g.names[0], "a_total") && g.values[0] == 42 && !g.labels[0][0],
	      "a plain sample");
	CHECK(!strcmp(g.names[1], "b") && g.values[1] == -2500 &&
	      !strcmp(g.labels[1], "x=\"1\",y=\"a\\\"b\\\\c\\nd\""),
	      "labels with escapes, kept as written, and a timestamp skipped");
	CHECK(!strcmp(g.names[2], "c") && isinf(g.values[2]) && g.values[2] > 0 && !g.labels[2][0],
	      "+Inf and empty braces");
	CHECK(isnan(g.values[3]), "NaN");
	CHECK(!strcmp(g.labels[4], "z=\"\"") && isinf(g.values[4]) && g.values[4] < 0,
	      "a trailing comma is dropped from the labels; -Inf");

	static const char *const bad_lines[] = {
		"a\n", "a b\n", "1a 1\n", "a{x=1} 1\n", "a{x=\"1\" 1\n", "a{x=\"1\\q\"} 1\n",
		"a{=\"1\"} 1\n", "a{x=\"1\"}1\n", "a 1 2 3\n", "a infinity\n", "a{x=\"1\"", "a 1e\n",
	};
	for (size_t i = 0; i < sizeof(bad_lines) / sizeof(bad_lines[0]); i++) {
		ret = parse(bad_lines[i], &g, &bad);
		CHECK(ret == -EINVAL && bad == 1 && g.n == 0, "malformed line %zu refused", i);
	}
	ret = parse("a 1\r\nb 2", &g, &bad);
	CHECK(!ret && g.n == 2 && g.values[1] == 2, "CRLF and a last line without a newline");
}

static int policy(const char *json, char ***argv, struct strbuf *err)
{
	json_t *v = json_loads(json, 0, NULL);
	int ret = anole_diag_policy_check(json_string_value(json_object_get(v, "tool")),
					  json_object_get(v, "duration"),
					  json_object_get(v, "options"), argv, err);

	json_decref(v);
	return ret;
}

static void test_policy(void)
{
	struct strbuf err = STRBUF_INIT;
	char **argv = NULL;
	int ret;

	ret = policy("{\"tool\":\"runqlat\",\"duration\":5,\"options\":{\"pid\":42,\"milliseconds\":true,"
		     "\"tids\":false}}", &argv, &err);
	CHECK(!ret && argv && !strcmp(argv[0], "runqlat") && !strcmp(argv[1], "--json") &&
	      !strcmp(argv[2], "--duration") && !strcmp(argv[3], "5"), "the fixed arguments");
	{
		struct strbuf all = STRBUF_INIT;

		for (size_t i = 4; argv && argv[i]; i++)
			strbuf_addf(&all, "%s ", argv[i]);
		CHECK(all.buf && (!strcmp(all.buf, "--pid 42 -m ") || !strcmp(all.buf, "-m --pid 42 ")),
		      "the options: a flag for true, none for false (%s)", all.buf ? all.buf : "");
		strbuf_release(&all);
	}
	anole_diag_argv_free(argv);

	static const char *const refused[] = {
		"{\"tool\":\"bash\",\"duration\":5}",
		"{\"tool\":\"runqlat\",\"duration\":0}",
		"{\"tool\":\"runqlat\",\"duration\":61}",
		"{\"tool\":\"runqlat\",\"duration\":2.5}",
		"{\"tool\":\"runqlat\",\"duration\":\"5\"}",
		"{\"tool\":\"runqlat\"}",
		"{\"tool\":\"runqlat\",\"duration\":5,\"options\":{\"cgroup\":\"/\"}}",
		"{\"tool\":\"runqlat\",\"duration\":5,\"options\":{\"pid\":\"1\"}}",
		"{\"tool\":\"runqlat\",\"duration\":5,\"options\":{\"pid\":0}}",
		"{\"tool\":\"runqlat\",\"duration\":5,\"options\":{\"pid\":1.5}}",
		"{\"tool\":\"runqlat\",\"duration\":5,\"options\":{\"milliseconds\":1}}",
		"{\"tool\":\"runqlat\",\"duration\":5,\"options\":[\"-m\"]}",
		"{\"tool\":\"profile\",\"duration\":5,\"options\":{\"frequency\":100000}}",
		"{\"tool\":\"tcpretrans\",\"duration\":5,\"options\":{\"pid\":1}}",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		argv = NULL;
		strbuf_reset(&err);
		ret = policy(refused[i], &argv, &err);
		CHECK(ret == -EINVAL && !argv && err.len, "refused: %s (%s)", refused[i],
		      err.buf ? err.buf : "");
	}
	strbuf_release(&err);
}

int main(void)
{
	test_promtext();
	test_policy();
	printf("1..%d\n# %d tests, %d passed, %d failed\n", ntests, ntests, ntests - nfailed,
	       nfailed);
	return nfailed ? 1 : 0;
}
