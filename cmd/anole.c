// SPDX-License-Identifier: Apache-2.0
/* anole: one front door, `anole <group> <verb> [options]`. */
#include "anole.h"
#include "anole/error.h"
#include "anole/fileio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ANOLE_VERSION
#define ANOLE_VERSION "0.1.0"
#endif

static int cmd_version(int argc, char **argv)
{
	printf("anole %s\n", ANOLE_VERSION);
	return 0;
}

static const struct anole_cmd groups[] = {
	{ "image", cmd_image, "build, check, inspect and unpack EROFS images" },
	{ "blob", cmd_blob, "read and store blobs in a directory, web server or registry" },
	{ "diag", cmd_diag, "eBPF diagnosis tools that adapt to the running kernel" },
	{ "monitor", cmd_monitor, "always-on agent serving system, cgroup and eBPF metrics to Prometheus" },
	{ "version", cmd_version, "print the version" },
	{ "features", cmd_features, "list the optional parts this anole was built with" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *f, const char *group, const struct anole_cmd *cmds)
{
	fprintf(f, "usage: anole %s%s<command> [options]\n\n", group ? group : "",
		group ? " " : "");
	fprintf(f, "commands:\n");
	for (const struct anole_cmd *c = cmds; c->name; c++)
		fprintf(f, "  %-10s %s\n", c->name, c->summary);
	fprintf(f, "\nRun 'anole %s%s<command> --help' for a command's options.\n",
		group ? group : "", group ? " " : "");
}

int anole_dispatch(const char *group, const struct anole_cmd *cmds, int argc, char **argv)
{
	const char *verb = argc > 1 ? argv[1] : NULL;

	if (!verb) {
		usage(stderr, group, cmds);
		return 2;
	}
	if (!strcmp(verb, "--help") || !strcmp(verb, "-h") || !strcmp(verb, "help")) {
		usage(stdout, group, cmds);
		return 0;
	}
	for (const struct anole_cmd *c = cmds; c->name; c++)
		if (!strcmp(c->name, verb))
			return c->run(argc - 1, argv + 1);
	fprintf(stderr, "anole: '%s%s%s' is not a command\n\n", group ? group : "",
		group ? " " : "", verb);
	usage(stderr, group, cmds);
	return 2;
}


int main(int argc, char **argv)
{
	anole_output_cleanup_on_signals();
	return anole_dispatch(NULL, groups, argc, argv);
}
