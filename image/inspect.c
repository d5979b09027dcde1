// SPDX-License-Identifier: Apache-2.0
#include "anole/image.h"
#include <errno.h>
int anole_image_inspect(const struct anole_inspect_opts *opts, struct strbuf *out) { return -ENOSYS; }
