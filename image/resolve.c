// SPDX-License-Identifier: Apache-2.0
/*
 * From an image reference to the files a mount reads (anole/ref.h). Above
 * the layout (oci_layout.c) and registry (oci_registry.c) modules, so that
 * the library's mount and convert --chunk-dict, not the command layer,
 * know what oci: and docker:// mean.
 */
#include "anole/error.h"
#include "anole/oci.h"
#include "anole/ref.h"
#include "anole/signature.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int anole_ref_resolve(const struct anole_ref *ref, const char *platform, const char *cache_dir,
		      const struct anole_blobstore_opts *sopts, struct anole_resolved_image *out)
{
	struct oci_image img;
	char *text;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	switch (ref->transport) {
	case ANOLE_REF_PATH:
		out->image = xstrdup(ref->path);
		return 0;
	case ANOLE_REF_OCI:
		ret = oci_open(&img, ref->path, ref->tag, platform);
		if (ret)
			return ret;
		if (!img.accelerated) {
			text = anole_ref_format(ref);
			ret = anole_error_code(EINVAL, "%s is not an anole image: convert it first (anole image convert)",
					       text);
			free(text);
		} else {
			out->image = oci_blob_path(ref->path, img.layers[img.metadata_layer].digest);
			out->blobs = xstrdup(ref->path);
			out->layout = xstrdup(ref->path);
		}
		oci_close(&img);
		return ret;
	case ANOLE_REF_DOCKER:
		if (!cache_dir)
			return anole_error_code(EINVAL, "a registry image needs a cache directory");
		ret = oci_fetch_metadata(ref, platform, cache_dir, sopts, &out->image, &out->blobs);
		if (ret)
			anole_resolved_image_free(out);
		return ret;
	case ANOLE_REF_OCI_ARCHIVE:
	case ANOLE_REF_DOCKER_ARCHIVE:
		break;
	}
	text = anole_ref_format(ref);
	ret = anole_error_code(EINVAL, "%s: an image archive cannot be mounted or used as a chunk dictionary; convert it first",
			       text);
	free(text);
	return ret;
}

void anole_resolved_image_free(struct anole_resolved_image *r)
{
	free(r->image);
	free(r->blobs);
	free(r->layout);
	memset(r, 0, sizeof(*r));
}

/*
 * After a policy pinned the signed manifest (anole/policy.h): the metadata
 * image about to be mounted is the one that manifest names, byte for byte.
 * docker://: the caller resolved by the pinned digest, so the manifest was
 * fetched by it and checked; the image file is named by its layer digest.
 * oci: the layout's tag may have moved since the check: its manifest must
 * still be the pinned one. A plain file: its own digest was signed.
 */
int anole_ref_check_pinned(const struct anole_ref *ref, const char *pinned,
			   const struct anole_resolved_image *img)
{
	const char *base = strrchr(img->image, '/');
	char digest[72];
	int ret;

	if (ref->transport == ANOLE_REF_PATH)
		return anole_file_check_digest(img->image, pinned);
	if (ref->transport == ANOLE_REF_OCI) {
		struct oci_image oi;

		ret = oci_open(&oi, ref->path, ref->tag, NULL);
		if (ret)
			return ret;
		if (strcmp(oi.manifest.digest, pinned))
			ret = anole_error_code(EKEYREJECTED, "%s: the image changed after its signature "
					       "was verified (manifest %s, signed %s): refused",
					       ref->path, oi.manifest.digest, pinned);
		else if (!oi.accelerated || !(base = strrchr(img->image, '/')) ||
			 strcmp(base + 1, oi.layers[oi.metadata_layer].digest + 7))
			ret = anole_error_code(EKEYREJECTED, "%s: the metadata image is not the one "
					       "the signed manifest names: refused", ref->path);
		oci_close(&oi);
		if (ret)
			return ret;
	}
	if (!base || strlen(base + 1) != 64)
		return anole_error_code(EKEYREJECTED, "%s: not named by its digest: cannot check it "
					"against the signed manifest", img->image);
	snprintf(digest, sizeof(digest), "sha256:%s", base + 1);
	return anole_file_check_digest(img->image, digest);
}
