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

static char *http_blob_url(const struct bs_endpoint *ep, const char *digest)
{
	char *url = xmalloc(strlen(ep->base) + 80);

	sprintf(url, "%s/%s", ep->base, digest + 7);
	return url;
}

static int http_read(struct bs_call *c, const char *digest, uint64_t off, void *buf, size_t len)
{
	struct bs_endpoint *ep = c->src->endpoint;
	char *url = http_blob_url(ep, digest);
	int ret = bs_net_read(c, ep, url, digest, off, buf, len);

	free(url);
	return ret;
}

static int http_size(struct bs_call *c, const char *digest, uint64_t *size)
{
	struct bs_endpoint *ep = c->src->endpoint;
	char *url = http_blob_url(ep, digest);
	int ret = bs_net_size(c, ep, url, digest, size, REGISTRY_PULL, false);

	free(url);
	return ret;
}

static void http_close(struct anole_blobstore *bs)
{
	bs_endpoint_free(bs->backend);
}

static const struct blobstore_ops http_ops = {
	.kind = "http",
	.read = http_read,
	.size = http_size,
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
		return anole_error_code(-EINVAL, "blob store '%s': no host", spec);
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
