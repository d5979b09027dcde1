/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the files of os/ (not a public interface). */
#ifndef ANOLE_OS_INTERNAL_H
#define ANOLE_OS_INTERNAL_H
#include "anole/digest.h"

#include <stdbool.h>
#include <stdint.h>

struct anole_sign_key;
struct strbuf;

/* The members of an OS image, in their order in the tar. */
enum { OS_F_KERNEL, OS_F_INITRD, OS_F_ROOT, OS_NFILES };
extern const char *const os_file_names[OS_NFILES];

struct os_manifest {
	char version[32];
	char kernel_release[128];
	enum anole_digest_alg alg;
	uint64_t size[OS_NFILES];
	uint8_t digest[OS_NFILES][ANOLE_DIGEST_MAX];
};

/* Parse manifest.json (untrusted until its signature verified). */
int os_manifest_parse(const char *json, size_t len, const char *what, struct os_manifest *m);
/* Check a version string (the boot state holds 31 chars). */
int os_version_check(const char *v);

/* Run argv (argv[0] looked up in PATH); a failure is a logged -errno naming
 * the program. stdout_path: NULL inherits, else stdout goes to that file. */
int os_run(char *const argv[], const char *stdout_path);
#endif
