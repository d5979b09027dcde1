// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for image references (image/ref.c): the input is a
 * reference as a user would type it, parsed with each default transport.
 * A parse either fails (and leaves nothing allocated) or gives parts that
 * satisfy the grammar the parser promises; formatting a parsed reference
 * and parsing that again must give the same parts.
 */
#include "anole/error.h"
#include "anole/ref.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque)
{
	(void)level;
	(void)msg;
	(void)opaque;
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static void check(const struct anole_ref *r)
{
	switch (r->transport) {
	case ANOLE_REF_DOCKER:
		if (!r->registry || !*r->registry || !r->repository || !*r->repository || r->path)
			abort();
		if (strchr(r->registry, '/') || strchr(r->repository, ':') || strchr(r->repository, '@'))
			abort();
		if (r->tag && (!*r->tag || strlen(r->tag) > ANOLE_REF_TAG_MAX || strchr(r->tag, '/')))
			abort();
		if (r->digest && strlen(r->digest) != 71)
			abort();
		break;
	default:
		if (!r->path || !*r->path || r->registry || r->repository || r->digest)
			abort();
		if (r->transport != ANOLE_REF_DOCKER_ARCHIVE && r->tag && strchr(r->tag, ':'))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum anole_ref_transport plain[] = { ANOLE_REF_PATH, ANOLE_REF_OCI };
	char *text = malloc(size + 1);

	anole_log_set_sink(drop_log, NULL);
	memcpy(text, data, size);
	text[size] = '\0';      /* a command-line argument has no NUL inside */
	for (size_t k = 0; k < sizeof(plain) / sizeof(plain[0]); k++) {
		struct anole_ref r, again;
		char *back;

		if (anole_ref_parse(text, plain[k], &r)) {
			if (r.path || r.registry || r.repository || r.tag || r.digest)
				abort();        /* an error leaves nothing to free */
			continue;
		}
		check(&r);
		back = anole_ref_format(&r);
		if (anole_ref_parse(back, plain[k], &again))
			abort();        /* what the parser made must parse */
		if (again.transport != r.transport || !same(again.path, r.path) ||
		    !same(again.registry, r.registry) || !same(again.repository, r.repository) ||
		    !same(again.tag, r.tag) || !same(again.digest, r.digest))
			abort();
		anole_ref_free(&again);
		free(back);
		anole_ref_free(&r);
	}
	free(text);
	return 0;
}
