// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for reading an OCI image layout (image/oci_layout.c: index,
 * nested indexes, manifest, descriptors), which `anole image convert` and
 * `anole image mount oci:` take from anywhere and `pull` fills from a
 * registry. Blobs are checked against their digests before they are
 * parsed, and any writer can name a blob by its digest: so the harness
 * stores the input under its real digest and size, and the JSON parsing,
 * not the digest check, meets it. The first byte picks the input's role:
 * 0: index.json itself; 1: the manifest an index.json points at; 2: an
 * image index it points at (platform selection, nesting). The rest is the
 * JSON. oci_open() must fail cleanly or return a consistent image.
 */
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/oci.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque) { }

static char dir[PATH_MAX - 64];  /* room for "/blobs/sha256/<hex>" */

static int write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "w");
	int ok = f && fwrite(buf, 1, len, f) == len;

	if (f && fclose(f))
		ok = 0;
	return ok ? 0 : -1;
}

/* Store buf as a blob; its digest in hex (65 bytes). */
static int put_blob(const uint8_t *buf, size_t len, char *hex)
{
	uint8_t dg[32];
	char path[PATH_MAX];

	if (anole_digest(ANOLE_DIGEST_SHA256, buf, len, dg))
		return -1;
	anole_hex(dg, 32, hex);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, hex);
	return write_file(path, buf, len);
}

/*
 * Blobs always present, so that fuzzed JSON can name them by digest and an
 * open can succeed: a config, and a manifest with that config and one
 * layer (fuzz/run.sh builds seeds that point at both).
 */
#define FIXED_CONFIG "{}"
#define FIXED_MANIFEST_FMT \
	"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"," \
	"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\"," \
	"\"digest\":\"sha256:%s\",\"size\":2},\"layers\":[{\"mediaType\":" \
	"\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"sha256:%s\",\"size\":2}]}"

static char cfg[65], man[65];

static void put_fixed(void)
{
	char m[600];

	if (put_blob((const uint8_t *)FIXED_CONFIG, 2, cfg))
		abort();
	snprintf(m, sizeof(m), FIXED_MANIFEST_FMT, cfg, cfg);
	if (put_blob((const uint8_t *)m, strlen(m), man))
		abort();
}

static void remove_layout(void)
{
	char path[PATH_MAX];
	const char *files[] = { "index.json", "oci-layout" };

	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, cfg);
	unlink(path);
	snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, man);
	unlink(path);
	snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/blobs", dir);
	rmdir(path);
	rmdir(dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const types[] = {
		"", "application/vnd.oci.image.manifest.v1+json",
		"application/vnd.oci.image.index.v1+json",
	};
	char path[PATH_MAX], hex[65], index[512];
	struct oci_image img;
	unsigned role;

	if (!dir[0]) {
		anole_log_set_sink(drop_log, NULL);
		snprintf(dir, sizeof(dir), "%s/anole-fuzz-oci.XXXXXX",
			 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
		if (!mkdtemp(dir))
			abort();
		snprintf(path, sizeof(path), "%s/blobs", dir);
		mkdir(path, 0700);
		snprintf(path, sizeof(path), "%s/blobs/sha256", dir);
		mkdir(path, 0700);
		snprintf(path, sizeof(path), "%s/oci-layout", dir);
		write_file(path, "{\"imageLayoutVersion\":\"1.0.0\"}", 30);
		put_fixed();
		atexit(remove_layout);
	}
	if (!size)
		return 0;
	role = data[0] % 3;
	data++;
	size--;
	snprintf(path, sizeof(path), "%s/index.json", dir);
	if (role == 0) {
		if (write_file(path, data, size))
			return 0;
	} else {
		if (put_blob(data, size, hex))
			return 0;
		snprintf(index, sizeof(index),
			 "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"%s\",\"digest\":"
			 "\"sha256:%s\",\"size\":%zu,\"platform\":{\"os\":\"linux\","
			 "\"architecture\":\"amd64\"}}]}", types[role], hex, size);
		if (write_file(path, index, strlen(index)))
			return 0;
	}
	if (!oci_open(&img, dir, NULL, "linux/amd64")) {
		/* consistent: every layer parsed, the metadata layer one of them */
		if (img.metadata_layer >= (int)img.nlayers || (img.accelerated && img.metadata_layer < 0))
			abort();
		for (unsigned i = 0; i < img.nlayers; i++)
			if (!img.layers[i].digest || !img.layers[i].media_type)
				abort();
		oci_close(&img);
	}
	/* one input's blob at a time: the directory must not fill up */
	if (role && strcmp(hex, cfg) && strcmp(hex, man)) {
		snprintf(path, sizeof(path), "%s/blobs/sha256/%s", dir, hex);
		unlink(path);
	}
	return 0;
}
