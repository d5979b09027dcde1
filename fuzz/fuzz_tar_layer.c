// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the tar-layer path of the builder (OCI conversion):
 * the input is one layer above a fixed lower layer, merged with overlay
 * semantics into an image and blobs under a private directory. Hostile
 * tars must give an error or a sound image: never a crash, a leak, a hang,
 * or a file written anywhere but the output and the blob directory.
 */

#include "anole/compress.h"
#include "anole/error.h"
#include "anole/image.h"
#include "anole/progress.h"

#include <dirent.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque) { }

static char root[200];   /* TMPDIR may be deep (tests/run.sh) */

static void clean_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char p[PATH_MAX];

		if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
		unlink(p);
	}
	closedir(d);
}

/* The lower layer: a directory, a file, and a hard-link target. */
static void write_lower(const char *path)
{
	static const char *names[] = { "etc/", "etc/passwd", "bin/", "bin/sh" };
	FILE *f = fopen(path, "w");
	char hdr[512];

	for (size_t i = 0; f && i < 4; i++) {
		bool dir = names[i][strlen(names[i]) - 1] == '/';
		unsigned sum = 0;

		memset(hdr, 0, sizeof(hdr));
		snprintf(hdr, 100, "%s", names[i]);
		snprintf(hdr + 100, 8, "%07o", dir ? 0755 : 0644);
		snprintf(hdr + 108, 8, "%07o", 0);
		snprintf(hdr + 116, 8, "%07o", 0);
		snprintf(hdr + 124, 12, "%011o", dir ? 0 : 5);
		snprintf(hdr + 136, 12, "%011o", 1700000000);
		hdr[156] = dir ? '5' : '0';
		memcpy(hdr + 257, "ustar", 6);
		memcpy(hdr + 263, "00", 2);
		memset(hdr + 148, ' ', 8);
		for (int k = 0; k < 512; k++)
			sum += (unsigned char)hdr[k];
		snprintf(hdr + 148, 8, "%06o", sum);
		fwrite(hdr, 1, 512, f);
		if (!dir) {
			char data[512] = "hello";

			fwrite(data, 1, 512, f);
		}
	}
	if (f) {
		memset(hdr, 0, sizeof(hdr));
		fwrite(hdr, 1, 512, f);
		fwrite(hdr, 1, 512, f);
		fclose(f);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char lower[256], upper[256], out[256], blobs[256];
	const char *layers[2] = { lower, upper };
	struct anole_build_opts o = { 0 };
	struct anole_build_stats st = { 0 };
	FILE *f;

	if (!root[0]) {
		snprintf(root, sizeof(root), "%s/anole-fuzz-tar.XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(root))
			abort();
		anole_log_set_sink(drop_log, NULL);
		anole_progress_set_quiet(true);
	}
	snprintf(lower, sizeof(lower), "%s/lower.tar", root);
	snprintf(upper, sizeof(upper), "%s/upper.tar", root);
	snprintf(out, sizeof(out), "%s/out.img", root);
	snprintf(blobs, sizeof(blobs), "%s/blobs", root);
	write_lower(lower);
	f = fopen(upper, "w");
	if (!f)
		abort();
	fwrite(data, 1, size, f);
	fclose(f);

	o.output = out;
	o.layers = layers;
	o.nlayers = 2;
	o.blob_dir = blobs;
	o.chunk_size = 4096;
	o.compress = "none";
	o.have_timestamp = o.have_uuid = true;
	anole_image_build(&o, &st);
	anole_build_stats_free(&st);
	clean_dir(blobs);
	unlink(out);
	return 0;
}
