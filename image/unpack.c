// SPDX-License-Identifier: Apache-2.0
#include "anole/image.h"
#include <errno.h>
int anole_image_unpack(const struct anole_unpack_opts *opts) { return -ENOSYS; }
