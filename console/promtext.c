// SPDX-License-Identifier: Apache-2.0
/*
 * The Prometheus text format, as agents (or anything answering at their
 * address) send it: untrusted, so every step is bounded by the buffer's
 * length and the result never points outside it. fuzz/fuzz_promtext.c.
 */
#include "console.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool name_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c)
{
	return name_start(c) || (c >= '0' && c <= '9');
}

/* The value: a float, "+Inf", "-Inf" or "NaN" (strtod on a bounded copy). */
static int parse_value(const char *p, const char *end, double *v, const char **next)
{
	char buf[64], *e;
	size_t n = 0;

	while (p + n < end && p[n] != ' ' && p[n] != '\t' && p[n] != '\r')
		n++;
	if (!n || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, p, n);
	buf[n] = '\0';
	if (!strcmp(buf, "+Inf") || !strcmp(buf, "Inf"))
		*v = INFINITY;
	else if (!strcmp(buf, "-Inf"))
		*v = -INFINITY;
	else if (!strcmp(buf, "NaN"))
		*v = NAN;
	else {
		/* strtod also takes hex and "infinity": the format does not */
		for (size_t i = 0; i < n; i++)
			if (!strchr("0123456789+-.eE", buf[i]))
				return -EINVAL;
		*v = strtod(buf, &e);
		if (*e)
			return -EINVAL;
	}
	*next = p + n;
	return 0;
}

static int parse_line(const char *p, const char *end, struct console_sample *s)
{
	const char *q = p;

	if (q == end || !name_start(*q))
		return -EINVAL;
	while (q < end && name_char(*q))
		q++;
	s->name = p;
	s->name_len = (size_t)(q - p);
	s->labels = q;
	s->labels_len = 0;
	if (q < end && *q == '{') {
		const char *l = ++q;

		/* name="value" pairs, comma separated, an optional trailing comma */
		while (q < end && *q != '}') {
			if (!name_start(*q))
				return -EINVAL;
			while (q < end && name_char(*q))
				q++;
			if (q + 1 >= end || q[0] != '=' || q[1] != '"')
				return -EINVAL;
			q += 2;
			while (q < end && *q != '"') {
				if (*q == '\\') {
					if (q + 1 >= end || !strchr("\\\"n", q[1]))
						return -EINVAL;
					q++;
				}
				q++;
			}
			if (q >= end)
				return -EINVAL;
			q++; /* the closing quote */
			if (q < end && *q == ',')
				q++;
			else if (q < end && *q != '}')
				return -EINVAL;
		}
		if (q >= end)
			return -EINVAL;
		s->labels = l;
		s->labels_len = (size_t)(q - l);
		if (s->labels_len && l[s->labels_len - 1] == ',')
			s->labels_len--;
		q++;
	}
	if (q >= end || (*q != ' ' && *q != '\t'))
		return -EINVAL;
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	if (parse_value(q, end, &s->value, &q))
		return -EINVAL;
	/* an optional timestamp (integer milliseconds), ignored */
	while (q < end && (*q == ' ' || *q == '\t'))
		q++;
	if (q < end && *q == '-')
		q++;
	while (q < end && *q >= '0' && *q <= '9')
		q++;
	while (q < end && (*q == ' ' || *q == '\t' || *q == '\r'))
		q++;
	return q == end ? 0 : -EINVAL;
}

int console_promtext_parse(const char *text, size_t len,
			   int (*fn)(const struct console_sample *s, void *arg), void *arg,
			   unsigned *bad_line)
{
	const char *p = text, *end = text + len;
	unsigned line = 0;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end, *q = p;
		struct console_sample s;
		int ret;

		line++;
		while (q < le && (*q == ' ' || *q == '\t'))
			q++;
		if (q < le && *q != '#' && !(le - q == 1 && *q == '\r')) {
			if (parse_line(q, le, &s)) {
				if (bad_line)
					*bad_line = line;
				return -EINVAL;
			}
			ret = fn(&s, arg);
			if (ret)
				return ret;
		}
		p = nl ? nl + 1 : end;
	}
	return 0;
}
