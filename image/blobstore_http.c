// SPDX-License-Identifier: Apache-2.0
/*
 * Web-server blob stores: http(s)://HOST[:PORT]/PREFIX holding PREFIX/<hex>,
 * read with Range requests; read-only. Requests carry nothing that defeats
 * a cache in between (no Cache-Control, no Pragma, no query): a blob's bytes
 * never change, so any HTTP cache may keep them (docs/anole-blob.md).
 */
#include "blobstore_impl.h"

#include "anole/error.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void http_close(struct anole_blobstore *bs)
{
	bs_endpoint_free(bs->backend);
}

static const struct blobstore_ops http_ops = {
	.kind = "http",
	.read = bs_source_read,
	.size = bs_source_size,
	.close = http_close,
};

int blobstore_http_open(struct anole_blobstore *bs, const char *spec)
{
	size_t len = strlen(spec);
	const char *hostp = strstr(spec, "://") + 3;
	struct bs_endpoint *ep;
	char *base, *host;

	bs->ops = &http_ops;
	if (!*hostp || *hostp == '/')
		return anole_error_code(EINVAL, "blob store '%s': no host", spec);
	while (len && spec[len - 1] == '/')
		len--;
	base = xstrndup(spec, len);
	host = xstrndup(hostp, strcspn(hostp, "/?#"));
	ep = bs_endpoint_new(base, host, NULL, !strncasecmp(spec, "http:", 5), bs->o.auth_file);
	bs->backend = ep;
	bs_add_source(bs, spec, false, ep);
	free(base);
	free(host);
	return bs_net_init(bs);
}
