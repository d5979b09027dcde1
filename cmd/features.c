// SPDX-License-Identifier: Apache-2.0
/*
 * `anole features`: which optional parts this binary was built with (meson
 * features, anole_features.h), for people and for tests/run.sh, which skips
 * the tests of parts left out. The commands of a part left out are defined
 * here instead, each saying the part is missing and why.
 */
#include "anole.h"
#include "anole/strbuf.h"
#include "anole_features.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

struct feature {
	const char *name;
	bool built;
	const char *why_not;     /* "" when built */
	const char *what;
};

static const struct feature features[] = {
	{ "diag", ANOLE_HAVE_DIAG, ANOLE_WITHOUT_DIAG,
	  "anole diag: eBPF diagnosis tools" },
	{ "monitor", ANOLE_HAVE_MONITOR, ANOLE_WITHOUT_MONITOR,
	  "anole monitor: the metrics agent" },
	{ "console", ANOLE_HAVE_CONSOLE, ANOLE_WITHOUT_CONSOLE,
	  "anole console: the operations console" },
	{ "tune", ANOLE_HAVE_TUNE, ANOLE_WITHOUT_TUNE,
	  "anole tune: profiles and benchmark-driven search" },
	{ "fuse", ANOLE_HAVE_FUSE, ANOLE_WITHOUT_FUSE,
	  "anole image mount/umount/stats/cache: lazy mounts" },
	{ "zstd", ANOLE_HAVE_ZSTD, ANOLE_WITHOUT_ZSTD,
	  "Zstandard pclusters and blob chunks" },
	{ "lz4", ANOLE_HAVE_LZ4, ANOLE_WITHOUT_LZ4, "LZ4 pclusters and blob chunks" },
	{ "lzma", ANOLE_HAVE_LZMA, ANOLE_WITHOUT_LZMA, "MicroLZMA pclusters" },
	{ "deflate", ANOLE_HAVE_DEFLATE, ANOLE_WITHOUT_DEFLATE, "DEFLATE pclusters" },
};

static const char features_help[] =
"usage: anole features [--json]\n"
"\n"
"List the optional parts of anole and whether this binary has them (each is\n"
"a meson feature: -Dname=enabled|disabled|auto). A part left out names the\n"
"reason; its commands exit with status 1 and say so.\n"
"\n"
"options:\n"
"      --json    one JSON object: {\"name\": {\"built\": bool, \"reason\": str}}\n";

int cmd_features(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct strbuf out = STRBUF_INIT;
	bool json = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': json = true; break;
		case 'h': fputs(features_help, stdout); return 0;
		default: fputs(features_help, stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "anole features: unexpected argument '%s'\n\n%s", argv[optind],
			features_help);
		return 2;
	}
	if (json)
		strbuf_addch(&out, '{');
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
		const struct feature *f = &features[i];

		if (json) {
			strbuf_addf(&out, "%s\"%s\":{\"built\":%s", i ? "," : "", f->name,
				    f->built ? "true" : "false");
			if (!f->built) {
				strbuf_addstr(&out, ",\"reason\":");
				strbuf_add_json_string(&out, f->why_not, strlen(f->why_not));
			}
			strbuf_addch(&out, '}');
		} else {
			strbuf_addf(&out, "%-8s %-3s  %s%s%s\n", f->name, f->built ? "yes" : "no",
				    f->what, f->built ? "" : "; not built: ",
				    f->built ? "" : f->why_not);
		}
	}
	if (json)
		strbuf_addstr(&out, "}\n");
	fwrite(out.buf, 1, out.len, stdout);
	strbuf_release(&out);
	return 0;
}

__attribute__((unused)) static int not_built(const char *name)
{
	for (size_t i = 0; i < sizeof(features) / sizeof(features[0]); i++)
		if (!strcmp(features[i].name, name))
			fprintf(stderr, "anole: anole was built without %s: %s (see `anole "
				"features` and docs/architecture.md, \"Optional parts\")\n",
				name, features[i].why_not);
	return 1;
}

#if !ANOLE_HAVE_DIAG
int cmd_diag(int argc, char **argv) { return not_built("diag"); }
#endif
#if !ANOLE_HAVE_MONITOR
int cmd_monitor(int argc, char **argv) { return not_built("monitor"); }
#endif
#if !ANOLE_HAVE_CONSOLE
int cmd_console(int argc, char **argv) { return not_built("console"); }
#endif
#if !ANOLE_HAVE_TUNE
int cmd_tune(int argc, char **argv) { return not_built("tune"); }
#endif
#if !ANOLE_HAVE_FUSE
int cmd_image_mount(int argc, char **argv) { return not_built("fuse"); }
int cmd_image_umount(int argc, char **argv) { return not_built("fuse"); }
int cmd_image_stats(int argc, char **argv) { return not_built("fuse"); }
int cmd_image_cache(int argc, char **argv) { return not_built("fuse"); }
#endif
