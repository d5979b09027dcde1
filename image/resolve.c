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
#include "anole/xalloc.h"

#include <errno.h>
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
