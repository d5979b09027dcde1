// SPDX-License-Identifier: Apache-2.0
/*
 * Replays inputs through a fuzz target without libFuzzer: each FILE argument
 * (a directory: each regular file in it, in name order) is read whole and
 * passed to LLVMFuzzerTestOneInput once. Built with -Dfuzz_replay=true, so
 * that a corpus can run where libFuzzer cannot: on cross builds under
 * user-mode QEMU (make check-cross), with gcc. A crash is the failure; the
 * name of the input is printed before it is run, so that it shows which.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path, int verbose)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 1 << 16, len = 0, n;
	uint8_t *buf = malloc(cap);
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *b = realloc(buf, cap * 2);
			if (!b) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	int bad = ferror(f);
	fclose(f);
	if (!buf || bad) {
		fprintf(stderr, "%s: %s\n", path, buf ? "read error" : "out of memory");
		free(buf);
		return -1;
	}
	if (verbose)
		fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
	LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	int verbose = getenv("REPLAY_VERBOSE") != NULL, errors = 0, runs = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			errors += run_file(argv[i], verbose) < 0;
			runs++;
			continue;
		}
		struct dirent **ents;
		int n = scandir(argv[i], &ents, NULL, by_name);
		if (n < 0) {
			perror(argv[i]);
			errors++;
			continue;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];
			struct stat fst;
			snprintf(path, sizeof(path), "%s/%s", argv[i], ents[j]->d_name);
			if (stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
				errors += run_file(path, verbose) < 0;
				runs++;
			}
			free(ents[j]);
		}
		free(ents);
	}
	printf("replayed %d inputs, %d unreadable\n", runs, errors);
	return errors ? 1 : 0;
}
