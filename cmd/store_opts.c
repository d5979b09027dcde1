// SPDX-License-Identifier: Apache-2.0
/* Blob-store and registry options shared by the commands (store_opts.h). */
#include "store_opts.h"

#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static int usage(const char *cmd, const char *msg)
{
	fprintf(stderr, "anole %s: %s\nTry 'anole %s --help'.\n", cmd, msg, cmd);
	return 2;
}

static bool parse_uint(const char *s, unsigned long long max, unsigned long long *out)
{
	return !anole_parse_size(s, out) && *out <= max;
}

int store_cli_opt(struct store_cli *c, const char *cmd, int opt, const char *arg)
{
	unsigned long long v;

	switch (opt) {
	case STORE_OPT_RETRIES:
		if (!parse_uint(arg, 100, &v))
			return usage(cmd, "--retries takes a number up to 100");
		c->o.retries = v ? (unsigned)v : ANOLE_BLOBSTORE_NO_RETRIES;
		return 0;
	case STORE_OPT_TIMEOUT:
		if (!parse_uint(arg, 24ull * 3600 * 1000, &v) || !v)
			return usage(cmd, "--timeout takes a positive number of milliseconds");
		c->o.timeout_ms = (unsigned)v;
		return 0;
	case STORE_OPT_BACKOFF:
		if (!parse_uint(arg, 60000, &v) || !v)
			return usage(cmd, "--backoff takes 1 to 60000 milliseconds");
		c->o.backoff_ms = (unsigned)v;
		return 0;
	case STORE_OPT_INSECURE:
		xgrow(&c->insecure, &c->insecure_alloc, c->ninsecure + 1, sizeof(*c->insecure));
		c->insecure[c->ninsecure++] = arg;
		c->o.insecure_hosts = c->insecure;
		c->o.ninsecure_hosts = (unsigned)c->ninsecure;
		return 0;
	case STORE_OPT_AUTH_FILE:
		c->o.auth_file = arg;
		return 0;
	case STORE_OPT_CA_FILE:
		c->o.ca_file = arg;
		return 0;
	case STORE_OPT_REGISTRIES_CONF:
		c->o.registries_conf = arg;
		return 0;
	default:
		/* called for every option the command did not take itself */
		return usage(cmd, "unknown option");
	}
}

void store_cli_release(struct store_cli *c)
{
	free(c->insecure);
	c->insecure = NULL;
	c->ninsecure = c->insecure_alloc = 0;
}
