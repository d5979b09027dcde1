/* SPDX-License-Identifier: Apache-2.0 */
/*
 * anole os: read-only, atomic, signed OS images on an A/B disk.
 *
 * An OS image is a tar of, in this order: manifest.json, manifest.sig (the
 * signature of manifest.json's bytes, lib/sign.c), vmlinuz, initrd.img and
 * root.erofs. The manifest names each file's size and digest (SM3 with an
 * SM2 key, else SHA-256). Its layout on disk: docs/anole-os.md.
 */
#ifndef ANOLE_OS_H
#define ANOLE_OS_H
#include <stdbool.h>
#include <stdint.h>

struct strbuf;
struct anole_blobstore_opts;

#define ANOLE_OS_DEFAULT_TRIES 3

struct anole_os_build_opts {
	const char *rootfs;         /* a root tree with /boot/vmlinuz-KVER, /lib/modules/KVER,
	                               /sbin/init and a static /bin/busybox */
	const char *version;        /* 1..31 chars of [A-Za-z0-9._+-] */
	const char *key;            /* private key PEM (ECDSA P-256, SM2, Ed25519) */
	const char *output;
	const char *compress;       /* EROFS data compression; NULL: "lz4hc" */
	const char *helper;         /* the static anole-os-boot; NULL: beside anole */
	const char *extra_modules;  /* comma-separated modules for the initramfs */
	/* or, instead of rootfs: an image reference (oci:DIR[:TAG],
	 * docker://..., oci-archive:, docker-archive:; anole/ref.h), an OCI
	 * image of tar layers or an anole image, unpacked into a scratch tree */
	const char *from;
	const char *policy;         /* with from: containers-policy.json(5); NULL:
	                               /etc/containers/policy.json if present */
	const struct anole_blobstore_opts *store;
};
int anole_os_build(const struct anole_os_build_opts *opts, struct strbuf *report);

struct anole_os_install_opts {
	const char *image;
	const char *disk;
	const char *pubkey;         /* trust anchor, stored on the disk */
	uint64_t size;              /* 0: slots + boot + data */
	uint64_t slot_size;         /* 0: max(256 MiB, 2 x root image) */
	uint64_t data_size;         /* 0: 256 MiB (ignored with size) */
};
int anole_os_install(const struct anole_os_install_opts *opts);

/* Verify image against the disk's key, write the slot not in use, and make
 * it the next boot with `tries` tries (0: ANOLE_OS_DEFAULT_TRIES). */
int anole_os_upgrade(const char *image, const char *disk, unsigned tries, struct strbuf *report);
/*
 * The same from an image reference as well as from a file: image may be an
 * OS image published with anole_os_push (docker://HOST/REPO:TAG or
 * oci:DIR:TAG). Its manifest and signature are fetched and verified first;
 * then only the chunks the slot in use lacks are fetched (the rest is
 * copied from that slot, its kernel and initramfs), each chunk checked by
 * its digest and every file by the signed manifest. json: report as JSON,
 * with the bytes fetched.
 */
struct anole_os_upgrade_opts {
	const char *image;          /* an OS image file, or a reference */
	const char *disk;
	unsigned tries;
	const struct anole_blobstore_opts *store;
	bool json;
};
int anole_os_upgrade_ref(const struct anole_os_upgrade_opts *opts, struct strbuf *report);

/* Publish an OS image as an anole chunked image (one file per member of its
 * tar, chunks of chunk_size, default one 4 KiB EROFS block) at dest
 * (docker://HOST/REPO:TAG or oci:DIR:TAG). */
struct anole_os_push_opts {
	const char *image;
	const char *dest;
	uint64_t chunk_size;
	const struct anole_blobstore_opts *store;
};
int anole_os_push(const struct anole_os_push_opts *opts, struct strbuf *report, bool json);

/* Make the other slot (it must hold a valid image) the next boot. */
int anole_os_rollback(const char *disk, struct strbuf *report);
int anole_os_status(const char *disk, bool json, struct strbuf *out);
/* Check slot's image against its signed manifest; slot -1: the running
 * slot on the system booted from disk, else the one booted next. */
int anole_os_verify(const char *disk, int slot, bool json, struct strbuf *out);
/* Mark slot good; -1: the running slot (an error unless disk is the one the
 * system booted from: from outside, the caller names the slot). */
int anole_os_mark_good(const char *disk, int slot, struct strbuf *report);
/* Inside a booted anole OS, the disk its initramfs recorded in
 * /run/anole-os/disk (the default of the commands above); else NULL. */
const char *anole_os_booted_disk(void);
/* The slot the initramfs mounted (/run/anole-os/slot) when disk is the one
 * this system booted from; else -1. Upgrade never writes it. */
int anole_os_running_slot(const char *disk);
#endif
