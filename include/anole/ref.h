/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Image references: the one parser for the transports anole's commands
 * take (docs/oci.md, "Image references"):
 *
 *   oci:DIR[:TAG]                               an OCI image layout
 *   docker://HOST[:PORT]/REPO[:TAG][@DIGEST]    an image in a registry
 *   oci-archive:FILE[:TAG]                      a tar of an OCI layout
 *   docker-archive:FILE[:NAME]                  `docker save` output
 *   PATH                                        no transport: the caller says
 *                                               what a plain path is
 *
 * Parsing touches nothing: no file system, no network. Every part is
 * validated (the registry's host and port, the repository's grammar from
 * the OCI distribution spec, the tag's, the digest's), and an error names
 * the part that is wrong.
 */
#ifndef ANOLE_REF_H
#define ANOLE_REF_H
#include <stdbool.h>

enum anole_ref_transport {
	ANOLE_REF_PATH,             /* no prefix: a file (mount) */
	ANOLE_REF_OCI,              /* oci: */
	ANOLE_REF_DOCKER,           /* docker:// */
	ANOLE_REF_OCI_ARCHIVE,      /* oci-archive: */
	ANOLE_REF_DOCKER_ARCHIVE,   /* docker-archive: */
};

struct anole_ref {
	enum anole_ref_transport transport;
	char *path;         /* PATH, OCI (the layout directory), *_ARCHIVE (the file) */
	char *registry;     /* DOCKER: HOST[:PORT] */
	char *repository;   /* DOCKER: REPO, e.g. "library/debian" */
	char *tag;          /* NULL when none was given */
	char *digest;       /* DOCKER: "sha256:<64 hex>" when given (@DIGEST) */
};

#define ANOLE_REF_TAG_MAX   128     /* the distribution spec's tag grammar */
#define ANOLE_REF_NAME_MAX  255     /* HOST/REPO, as the distribution spec bounds it */

/*
 * Parse text into ref (free it with anole_ref_free, also after an error).
 * A text without a transport prefix is parsed as `plain`: ANOLE_REF_PATH
 * keeps it whole, ANOLE_REF_OCI reads it as DIR[:TAG]. Returns 0, or
 * -EINVAL after logging an error that names the wrong part.
 */
int anole_ref_parse(const char *text, enum anole_ref_transport plain, struct anole_ref *ref);
void anole_ref_free(struct anole_ref *ref);

/* DOCKER: the blob store spec of the repository, docker://HOST/REPO. */
char *anole_ref_store(const struct anole_ref *ref);
/* DOCKER: what to ask the registry for: the digest, else the tag, else
 * "latest". */
const char *anole_ref_reference(const struct anole_ref *ref);
/* The reference written back in canonical form (to free). */
char *anole_ref_format(const struct anole_ref *ref);
/* Both DOCKER references and on the same registry (cross-repository
 * blob mounts are possible). */
bool anole_ref_same_registry(const struct anole_ref *a, const struct anole_ref *b);

/*
 * Resolving a reference to an accelerated image into what a mount (or a
 * chunk dictionary) reads: its metadata image and where its blobs are.
 *   oci:     the metadata layer of the layout's image; blobs: the layout
 *   docker:  the manifest and metadata layer fetched into cache_dir/oci;
 *            blobs: the registry's repository (read lazily)
 *   a path:  the file itself; blobs: not known (NULL)
 * Archives are refused (convert them). Implemented in image/resolve.c,
 * above the layout and registry modules.
 */
struct anole_blobstore_opts;
struct anole_resolved_image {
	char *image;        /* the metadata (EROFS) image file */
	char *blobs;        /* blob store spec, or NULL */
	char *layout;       /* oci: the layout directory, else NULL */
};
int anole_ref_resolve(const struct anole_ref *ref, const char *platform, const char *cache_dir,
		      const struct anole_blobstore_opts *sopts, struct anole_resolved_image *out);
void anole_resolved_image_free(struct anole_resolved_image *r);
/* With a manifest digest a policy pinned (anole/policy.h): the resolved
 * metadata image must be the one the signed manifest names, its digest
 * checked now, before anything mounts it. 0 or -EKEYREJECTED/-EBADMSG. */
int anole_ref_check_pinned(const struct anole_ref *ref, const char *pinned,
			   const struct anole_resolved_image *img);
#endif
