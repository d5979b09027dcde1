/* SPDX-License-Identifier: Apache-2.0 */
/* Uploading a build's transport blobs to a registry as they are written
 * (blobsend.c), for convert. */
#ifndef ANOLE_BLOBSEND_H
#define ANOLE_BLOBSEND_H
#include "anole/blobstore.h"
#include "anole/image.h"

#include <stdbool.h>

struct blob_sender;
/* bs (a registry store) is used by the sender's thread until finish. */
int blob_sender_start(struct blob_sender **out, struct anole_blobstore *bs);
/* For anole_build_opts.blob_follow. */
const struct anole_blob_follow *blob_sender_follow(struct blob_sender *s);
/* After the build: with commit (it succeeded), the rest is sent and every
 * blob sent whole is committed; without, every upload is cancelled.
 * Returns the number committed; frees s (NULL: 0). */
unsigned blob_sender_finish(struct blob_sender *s, bool commit);
#endif
