// SPDX-License-Identifier: Apache-2.0
#include "anole/image.h"
#include <errno.h>
int anole_image_check(const struct anole_check_opts *opts, struct anole_check_result *res) { return -ENOSYS; }
