/* SPDX-License-Identifier: Apache-2.0 */
/* Shared between the files of os/ (not a public interface). */
#ifndef ANOLE_OS_INTERNAL_H
#define ANOLE_OS_INTERNAL_H
#include "anole/chunkfetch.h"
#include "anole/digest.h"
#include "anole/ref.h"

#include <stdbool.h>
#include <stdint.h>

struct anole_sign_key;
struct anole_blobstore;
struct anole_blobstore_opts;
struct strbuf;

#define OS_MANIFEST_MAX (64u << 10)
#define OS_SIG_MAX 1024u
/* os push's chunk size: one EROFS block (see os_push) */
#define OS_PUSH_CHUNK 4096u

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

/* The rootfs of an image reference (os build --from), unpacked under
 * scratch; *rootfs is its path (to free). */
int os_rootfs_from_ref(const char *text, const char *policy_file,
		       const struct anole_blobstore_opts *sopts, const char *scratch, char **rootfs);

/* An OS image published by os push, read from its store (os upgrade REF). */
struct os_remote {
	struct anole_resolved_image res;
	struct anole_blobstore *bs;
	struct anole_fetch_stats stats;   /* the metadata image counted in */
	uint64_t metadata_bytes;
};
/* Resolve the reference, fetch manifest.json and manifest.sig into man and
 * sig (not verified: the caller does that before anything else). */
int os_remote_open(struct os_remote *r, const char *text, const char *scratch,
		   const struct anole_blobstore_opts *sopts, struct strbuf *man, struct strbuf *sig);
void os_remote_close(struct os_remote *r);
/* Where each file of the image goes: fd at off (max bytes). */
struct os_sink { int fd; uint64_t off, max; };
/* Bytes already on this machine that chunks may be copied from (the slot
 * in use, its kernel and initramfs): fd at off, len bytes. */
struct os_local { int fd; uint64_t off, len; };
/* Write the image's files into their sinks, taking every chunk that one of
 * locals holds from there, then check each file against the signed
 * manifest m. */
struct anole_progress;
int os_remote_extract(struct os_remote *r, const struct os_manifest *m,
		      const struct os_sink sinks[OS_NFILES], const struct os_local *locals,
		      unsigned nlocals, const char *what);
#endif
