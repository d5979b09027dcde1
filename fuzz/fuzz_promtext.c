// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the console's Prometheus text parser
 * (console/promtext.c): the input is what an agent's /metrics answered.
 * Every sample handed back must lie inside the input, with a name that is
 * a metric name and labels that start and end inside the line.
 */
#include "console.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct bounds {
	const char *start, *end;
};

static int check(const struct console_sample *s, void *arg)
{
	const struct bounds *b = arg;

	if (s->name < b->start || s->name + s->name_len > b->end || !s->name_len)
		abort();
	if (s->labels < b->start || s->labels + s->labels_len > b->end)
		abort();
	for (size_t i = 0; i < s->name_len; i++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_:0123456789",
			    s->name[i]) || s->name[i] == '\0')
			abort();
	if (s->name[0] >= '0' && s->name[0] <= '9')
		abort();
	if (memchr(s->labels, '\n', s->labels_len))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: reading past it is an ASan report */
	char *text = malloc(size ? size : 1);
	struct bounds b = { text, text + size };
	unsigned bad = 0;

	memcpy(text, data, size);
	console_promtext_parse(text, size, check, &b, &bad);
	free(text);
	return 0;
}
