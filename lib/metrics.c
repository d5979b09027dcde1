// SPDX-License-Identifier: Apache-2.0
/* Prometheus text exposition format writer (see anole/metrics.h). */
#include "anole/metrics.h"

#include <math.h>
#include <string.h>

void anole_metrics_family(struct strbuf *sb, const char *name, const char *type,
			  const char *help)
{
	strbuf_addf(sb, "# HELP %s ", name);
	/* HELP text escapes only backslash and newline */
	for (const char *p = help; *p; p++) {
		if (*p == '\\')
			strbuf_addstr(sb, "\\\\");
		else if (*p == '\n')
			strbuf_addstr(sb, "\\n");
		else
			strbuf_addch(sb, *p);
	}
	strbuf_addf(sb, "\n# TYPE %s %s\n", name, type);
}

void anole_metrics_label(struct strbuf *labels, const char *name, const char *value)
{
	if (labels->len)
		strbuf_addch(labels, ',');
	strbuf_addf(labels, "%s=\"", name);
	for (const char *p = value; *p; p++) {
		if (*p == '\\' || *p == '"')
			strbuf_addch(labels, '\\');
		if (*p == '\n')
			strbuf_addstr(labels, "\\n");
		else
			strbuf_addch(labels, *p);
	}
	strbuf_addch(labels, '"');
}

static void sample_name(struct strbuf *sb, const char *name, const char *labels)
{
	strbuf_addstr(sb, name);
	if (labels && *labels)
		strbuf_addf(sb, "{%s}", labels);
	strbuf_addch(sb, ' ');
}

void anole_metrics_u64(struct strbuf *sb, const char *name, const char *labels, uint64_t v)
{
	sample_name(sb, name, labels);
	strbuf_addf(sb, "%llu\n", (unsigned long long)v);
}

/* Go's float syntax: +Inf, -Inf, NaN; 15 digits keep 2^-n * 1e-6 exact */
static void add_double(struct strbuf *sb, double v)
{
	if (isnan(v))
		strbuf_addstr(sb, "NaN");
	else if (isinf(v))
		strbuf_addstr(sb, v > 0 ? "+Inf" : "-Inf");
	else
		strbuf_addf(sb, "%.15g", v);
}

void anole_metrics_double(struct strbuf *sb, const char *name, const char *labels, double v)
{
	sample_name(sb, name, labels);
	add_double(sb, v);
	strbuf_addch(sb, '\n');
}

void anole_metrics_one_u64(struct strbuf *sb, const char *name, const char *type,
			   const char *help, const char *labels, uint64_t v)
{
	anole_metrics_family(sb, name, type, help);
	anole_metrics_u64(sb, name, labels, v);
}

void anole_metrics_log2_histogram(struct strbuf *sb, const char *name, const char *labels,
				  const uint64_t *slots, unsigned nslots, double scale,
				  double sum)
{
	const char *sep = labels && *labels ? "," : "";
	uint64_t cum = 0;

	if (!labels)
		labels = "";
	for (unsigned i = 0; i < nslots; i++) {
		cum += slots[i];
		strbuf_addf(sb, "%s_bucket{%s%sle=\"", name, labels, sep);
		if (i + 1 < nslots && i + 1 < 64)
			add_double(sb, scale * (double)(1ULL << (i + 1)));
		else
			strbuf_addstr(sb, "+Inf");
		strbuf_addf(sb, "\"} %llu\n", (unsigned long long)cum);
	}
	if (!nslots)
		strbuf_addf(sb, "%s_bucket{%s%sle=\"+Inf\"} 0\n", name, labels, sep);
	strbuf_addf(sb, "%s_sum%s%s%s ", name, *labels ? "{" : "", labels, *labels ? "}" : "");
	add_double(sb, sum);
	strbuf_addf(sb, "\n%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
		    *labels ? "}" : "", (unsigned long long)cum);
}
