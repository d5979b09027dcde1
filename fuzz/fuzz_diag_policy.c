// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the remote-diagnosis allow-list
 * (lib/diag_policy.c): the input is a request body as the console receives
 * it ({"tool","duration","options"}). Whatever it holds, an accepted
 * request gives an argument vector that starts with a listed tool, --json
 * and --duration, whose every other element is a flag of that tool's
 * allow-list or a decimal number: nothing of the input's text gets through.
 */
#include "anole/diag_policy.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static bool is_number(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct strbuf err = STRBUF_INIT;
	const struct anole_diag_policy *p;
	char **argv = NULL;
	size_t n = 0;

	if (!body)
		return 0;
	if (anole_diag_policy_check(json_string_value(json_object_get(body, "tool")),
				    json_object_get(body, "duration"), json_object_get(body, "options"),
				    &argv, &err)) {
		if (argv || !err.len)
			abort();
		goto out;
	}
	p = anole_diag_policy_find(argv[0]);
	if (!p || strcmp(argv[1], "--json") || strcmp(argv[2], "--duration") || !is_number(argv[3]))
		abort();
	for (n = 4; argv[n]; n++) {
		bool known = is_number(argv[n]);

		for (const struct anole_diag_option *o = p->options; o->name && !known; o++)
			known = !strcmp(o->flag, argv[n]);
		if (!known || n >= ANOLE_DIAG_MAX_ARGS - 1)
			abort();
	}
	anole_diag_argv_free(argv);
out:
	strbuf_release(&err);
	json_decref(body);
	return 0;
}
