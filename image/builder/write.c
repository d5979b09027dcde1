// SPDX-License-Identifier: Apache-2.0
#include "anole/image.h"
#include <errno.h>
int anole_image_build(const struct anole_build_opts *opts, struct anole_build_stats *st) { return -ENOSYS; }
