// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for registries.conf (image/registries_conf.c over
 * lib/toml.c): the input is a configuration file, read as a drop-in into
 * an empty configuration and then asked about a few image names (Docker
 * Hub, ports, wildcard subdomains, location rewrites). Every resolved name
 * must be a HOST/REPO, and every error message must name a line.
 */
#include "anole/error.h"
#include "anole/toml.h"
#include "registries_conf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque) { }

static void check_name(const char *name)
{
	const char *slash = strchr(name, '/');

	if (!slash || slash == name || !slash[1])
		abort();        /* a plan must never name a registry without a repository */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = {
		"docker.io/library/alpine", "example.com/foo/bar", "127.0.0.1:5000/a/b",
		"a.b.example.com:443/x/y", "registry.com/image", "localhost/x",
	};
	struct registries_conf *rc = registries_conf_new();
	char err[256];
	struct toml_value *doc;

	anole_log_set_sink(drop_log, NULL);
	/* the TOML reader alone: an error names its line */
	doc = toml_parse((const char *)data, size, err, sizeof(err));
	if (!doc && strncmp(err, "line ", 5))
		abort();
	toml_free(doc);
	if (!registries_conf_add(rc, (const char *)data, size, "fuzz.conf")) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			struct registry_plan plan;

			if (registries_conf_resolve(rc, names[i], &plan))
				continue;
			check_name(plan.origin);
			for (size_t m = 0; m < plan.nmirrors; m++)
				check_name(plan.mirrors[m].name);
			registry_plan_release(&plan);
		}
	}
	registries_conf_free(rc);
	return 0;
}
