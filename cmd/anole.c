// SPDX-License-Identifier: Apache-2.0
/* anole: one front door, `anole <group> <verb> [options]`. */
#include "anole.h"
#include "anole/error.h"
#include "anole/fileio.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ANOLE_VERSION
#error "ANOLE_VERSION comes from meson's project version"
#endif

static const char version_usage[] =
"usage: anole version [--json]\n"
"       anole --version | -V\n"
"\n"
"Print anole's version and exit.\n";

static int cmd_version(int argc, char **argv)
{
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			fputs(version_usage, stdout);
			return 0;
		} else {
			fprintf(stderr, "anole version: unknown argument '%s'\n%s", argv[i],
				version_usage);
			return 2;
		}
	}
	if (json)
		printf("{\"version\":\"%s\"}\n", ANOLE_VERSION);
	else
		printf("anole %s\n", ANOLE_VERSION);
	return 0;
}

static const struct anole_cmd groups[] = {
	{ "image", cmd_image, "build, check, inspect and unpack EROFS images" },
	{ "blob", cmd_blob, "read and store blobs in a directory, web server or registry" },
	{ "diag", cmd_diag, "eBPF diagnosis tools that adapt to the running kernel" },
	{ "monitor", cmd_monitor, "always-on agent serving system, cgroup and eBPF metrics to Prometheus" },
	{ "console", cmd_console, "operations console: hosts, metrics, diagnoses, alerts, audit" },
	{ "qos", cmd_qos, "colocation node agent: LS and BE classes, CPU/memory/I/O isolation" },
	{ "tune", cmd_tune, "tuning: expert profiles and a benchmark-driven search" },
	{ "os", cmd_os, "atomic, read-only OS images with A/B slots, signed upgrades and rollback" },
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
	if (!group)
		fprintf(f, "'anole --version' (or -V) prints the version.\n");
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
	/* as git, skopeo and mkfs.erofs take it */
	if (argc > 1 && (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")))
		return cmd_version(argc - 1, argv + 1);
	return anole_dispatch(NULL, groups, argc, argv);
}
