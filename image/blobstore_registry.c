// SPDX-License-Identifier: Apache-2.0
/*
 * Registry blob stores: docker://HOST[:PORT]/REPO, the OCI distribution API.
 * Blobs are read with Range (GET /v2/REPO/blobs/DIGEST), pushed as one
 * monolithic upload (POST then PUT), linked across repositories (mount);
 * manifests are read and written by tag or digest. Authentication is
 * registry_auth.c's, per endpoint. Reads may come from mirrors first
 * (registries.conf); writes always go to the registry as named.
 */
#include "blobstore_impl.h"
#include "registries_conf.h"

#include "anole/digest.h"
#include "anole/error.h"
#include "anole/xalloc.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MANIFEST_ACCEPT "Accept: application/vnd.oci.image.index.v1+json, " \
	"application/vnd.oci.image.manifest.v1+json, " \
	"application/vnd.docker.distribution.manifest.list.v2+json, " \
	"application/vnd.docker.distribution.manifest.v2+json"
#define MAX_MANIFEST (4u << 20)

struct registry_store {
	struct bs_endpoint *push;       /* writes: the registry as named */
};

static bool is_loopback_host(const char *host)
{
	struct in_addr a;

	if (!strcasecmp(host, "localhost") || !strcmp(host, "[::1]") || !strcmp(host, "::1"))
		return true;
	return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* "host[:port]" -> host without the port ("[v6]" kept bracketed). */
static char *host_name(const char *hostport)
{
	const char *colon;

	if (hostport[0] == '[') {
		const char *rb = strchr(hostport, ']');

		return xstrndup(hostport, rb ? (size_t)(rb - hostport + 1) : strlen(hostport));
	}
	colon = strrchr(hostport, ':');
	return xstrndup(hostport, colon ? (size_t)(colon - hostport) : strlen(hostport));
}

static bool valid_repo(const char *repo)
{
	bool start = true;

	if (!*repo)
		return false;
	for (const char *p = repo; *p; p++) {
		char c = *p;

		if (c == '/') {
			if (start)
				return false;
			start = true;
			continue;
		}
		if (!(islower((unsigned char)c) || isdigit((unsigned char)c) || c == '.' ||
		      c == '_' || c == '-'))
			return false;
		start = false;
	}
	return !start;
}

/* Plain HTTP for loopback and the hosts the user named. */
static bool speaks_plain_http(const struct anole_blobstore *bs, const char *hostport)
{
	char *name = host_name(hostport);
	bool plain = is_loopback_host(name);

	for (unsigned i = 0; i < bs->o.ninsecure_hosts && !plain; i++) {
		const char *h = bs->o.insecure_hosts[i];

		plain = !strcasecmp(h, hostport) || !strcasecmp(h, name);
	}
	free(name);
	return plain;
}

static struct bs_endpoint *registry_endpoint(const struct anole_blobstore *bs,
					     const char *hostport, const char *repo,
					     bool plain_http)
{
	char *base = xmalloc(strlen(hostport) + 32);
	struct bs_endpoint *ep;

	sprintf(base, "%s://%s", plain_http ? "http" : "https",
		registry_is_docker_hub(hostport) ? "registry-1.docker.io" : hostport);
	ep = bs_endpoint_new(base, hostport, repo, plain_http, bs->o.auth_file);
	free(base);
	return ep;
}

/* ------------------------------------------------------------ blobs */

/* An upload session's URL (its Location, absolute), or NULL. */
static char *session_url(const struct anole_http_response *r, const char *request_url)
{
	char *loc = anole_http_header(r, "Location", 0);
	char *abs = loc ? anole_http_resolve_url(r->url ? r->url : request_url, loc) : NULL;

	free(loc);
	return abs;
}

/* The PUT that ends an upload session: its URL with ?digest= (or &digest=:
 * the session's own query parameters, e.g. _state, are kept). */
static void commit_url(struct strbuf *out, const char *session, const char *digest)
{
	char *esc = anole_http_escape(digest);

	strbuf_reset(out);
	strbuf_addf(out, "%s%cdigest=%s", session, strchr(session, '?') ? '&' : '?', esc);
	free(esc);
}

/* Monolithic upload: POST an upload session, PUT the bytes to its Location. */
static int registry_put(struct anole_blobstore *bs, const char *digest, int fd, uint64_t size,
			const char *path)
{
	static const char *const put_headers[] = { "Content-Type: application/octet-stream" };
	struct registry_store *rs = bs->backend;
	struct bs_endpoint *ep = rs->push;
	struct bs_call c = { .bs = bs, .retries = bs->retries };
	struct strbuf uploads = STRBUF_INIT, put_url = STRBUF_INIT;
	struct anole_http_request post = { .method = "POST", .body = "", .body_len = 0 };
	struct anole_http_request put = {
		.method = "PUT", .headers = put_headers, .nheaders = 1, .no_timeout = true,
		.body_from_fd = true, .body_fd = fd, .body_off = 0, .body_len = size,
	};
	struct anole_http_response r;
	struct bs_attempt a = { 0 };
	uint64_t have;
	int ret;

	ret = bs_net_size(&c, ep, digest, &have, REGISTRY_PUSH, true);
	if (!ret) {
		anole_info("%s: %s already has %s", path, bs->spec, digest);
		return 1;
	}
	if (ret != -ENOENT)
		return ret;

	strbuf_addf(&uploads, "%s/v2/%s/blobs/uploads/", ep->base, ep->repo);
	post.url = uploads.buf;
	anole_http_response_init(&r);
	for (;;) {
		char *abs;

		ret = bs_judge(&c, &a, &post, &r, bs_send(&c, ep, &a, &post, &r, REGISTRY_PUSH, true));
		if (ret == 1)
			continue;
		if (ret)
			break;
		if (r.status != 202 && r.status != 201) {
			ret = bs_status_error(&c, &post, &r, digest, false);
			break;
		}
		abs = session_url(&r, uploads.buf);
		if (!abs) {
			ret = bs_fail(&c, -EPROTO, "POST %s: HTTP %ld without a usable Location",
				      uploads.buf, r.status);
			break;
		}
		commit_url(&put_url, abs, digest);
		free(abs);
		put.url = put_url.buf;
		{
			uint64_t before = r.bytes_sent;

			ret = bs_send(&c, ep, &a, &put, &r, REGISTRY_PUSH,
				      anole_http_same_origin(put_url.buf, ep->base));
			if (!ret && r.status >= 200 && r.status <= 299)
				bs_count(&bs->n_bytes_sent, r.bytes_sent - before);
		}
		ret = bs_judge(&c, &a, &put, &r, ret);
		if (ret == 1)
			continue;       /* a new session: the old one may be spent */
		if (!ret && (r.status < 200 || r.status > 299))
			ret = bs_status_error(&c, &put, &r, digest, false);
		break;
	}
	anole_http_response_release(&r);
	strbuf_release(&uploads);
	strbuf_release(&put_url);
	return ret;
}

/*
 * An upload in parts (anole_blob_upload): one attempt per request, quiet,
 * as the caller falls back to a monolithic upload on any failure.
 */
static int upload_request(struct anole_blobstore *bs, struct anole_http_request *q,
			  long want, char **next_url)
{
	struct registry_store *rs = bs->backend;
	struct bs_call c = { .bs = bs, .retries = 0, .quiet = true };
	struct anole_http_response r;
	int ret;

	anole_http_response_init(&r);
	ret = bs_request(&c, rs->push, q, &r, REGISTRY_PUSH);
	if (!ret && r.status != want)
		ret = bs_fail(&c, EIO, "%s %s: HTTP %ld, not %ld", q->method, q->url, r.status, want);
	if (!ret && q->body_from_fd)
		bs_count(&bs->n_bytes_sent, r.bytes_sent);
	if (!ret && next_url) {
		char *abs = session_url(&r, q->url);

		if (!abs)
			ret = bs_fail(&c, EPROTO, "%s %s: HTTP %ld without a usable Location",
				      q->method, q->url, r.status);
		free(*next_url);
		*next_url = abs;
	}
	if (ret)
		anole_info("%s: upload in parts given up: %s", bs->spec, c.why);
	anole_http_response_release(&r);
	return ret;
}

static int registry_upload_begin(struct anole_blobstore *bs, char **url)
{
	struct registry_store *rs = bs->backend;
	struct strbuf uploads = STRBUF_INIT;
	struct anole_http_request post = { .method = "POST", .body = "", .body_len = 0 };
	int ret;

	strbuf_addf(&uploads, "%s/v2/%s/blobs/uploads/", rs->push->base, rs->push->repo);
	post.url = uploads.buf;
	*url = NULL;
	ret = upload_request(bs, &post, 202, url);
	strbuf_release(&uploads);
	return ret;
}

static int registry_upload_part(struct anole_blobstore *bs, char **url, int fd, uint64_t off,
				uint64_t len)
{
	char range[64];
	const char *headers[] = { "Content-Type: application/octet-stream", range };
	struct anole_http_request patch = {
		.method = "PATCH", .headers = headers, .nheaders = 2, .no_timeout = true,
		.body_from_fd = true, .body_fd = fd, .body_off = off, .body_len = len,
	};
	char *at = xstrdup(*url);
	int ret;

	if (!len) {
		free(at);
		return 0;
	}
	/* distribution's form: first-last, inclusive, no unit */
	snprintf(range, sizeof(range), "Content-Range: %llu-%llu", (unsigned long long)off,
		 (unsigned long long)(off + len - 1));
	patch.url = at;
	ret = upload_request(bs, &patch, 202, url);
	free(at);
	return ret;
}

static int registry_upload_commit(struct anole_blobstore *bs, const char *url, const char *digest)
{
	struct anole_http_request put = { .method = "PUT", .body = "", .body_len = 0 };
	struct strbuf u = STRBUF_INIT;
	int ret;

	commit_url(&u, url, digest);
	put.url = u.buf;
	ret = upload_request(bs, &put, 201, NULL);
	strbuf_release(&u);
	return ret;
}

/* Whether the repository has a tag: 1, 0 (none, or no such repository),
 * or a failure (quiet: the caller takes the careful path). */
static int registry_has_tags(struct anole_blobstore *bs)
{
	struct registry_store *rs = bs->backend;
	struct bs_call c = { .bs = bs, .retries = bs->retries, .quiet = true };
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	struct anole_http_request get = { .method = "GET", .body_out = &body, .body_max = 64 << 10 };
	struct anole_http_response r;
	json_t *j = NULL, *tags;
	int ret;

	strbuf_addf(&url, "%s/v2/%s/tags/list?n=1", rs->push->base, rs->push->repo);
	get.url = url.buf;
	anole_http_response_init(&r);
	ret = bs_request(&c, rs->push, &get, &r, REGISTRY_PULL);
	if (!ret && r.status == 404) {
		ret = 0;                /* NAME_UNKNOWN: not even the repository */
	} else if (!ret && r.status == 200 && (j = json_loadb(body.buf, body.len, 0, NULL))) {
		tags = json_object_get(j, "tags");
		ret = json_is_array(tags) && json_array_size(tags) > 0;
	} else if (!ret) {
		ret = -EIO;
	}
	json_decref(j);
	anole_http_response_release(&r);
	strbuf_release(&url);
	strbuf_release(&body);
	return ret;
}

/* Best effort: a session left behind expires in the registry anyway. */
static void registry_upload_cancel(struct anole_blobstore *bs, const char *url)
{
	struct anole_http_request del = { .method = "DELETE", .url = url };

	if (url)
		upload_request(bs, &del, 204, NULL);
}

/* ------------------------------------------------------------ manifests */

static char *manifest_url(const struct bs_endpoint *ep, const char *reference)
{
	struct strbuf u = STRBUF_INIT;

	strbuf_addf(&u, "%s/v2/%s/manifests/%s", ep->base, ep->repo, reference);
	return strbuf_detach(&u, NULL);
}

static int registry_get_manifest(struct bs_call *c, const char *reference, struct strbuf *out,
				 char **media_type)
{
	static const char *const headers[] = { MANIFEST_ACCEPT };
	struct bs_endpoint *ep = c->src->endpoint;
	struct anole_http_request q = { .method = "GET", .follow_redirects = true,
					.headers = headers, .nheaders = 1,
					.body_out = out, .body_max = MAX_MANIFEST };
	struct anole_http_response r;
	struct bs_attempt a = { 0 };
	char *url = manifest_url(ep, reference);
	int ret;

	q.url = url;
	anole_http_response_init(&r);
	do {
		strbuf_reset(out);
		ret = bs_judge(c, &a, &q, &r, bs_send(c, ep, &a, &q, &r, REGISTRY_PULL, true));
	} while (ret == 1);
	if (!ret && r.status == 404)
		ret = c->quiet || c->quiet_missing ? -ENOENT :
		      bs_fail(c, ENOENT, "%s: no manifest %s (GET %s)", c->bs->spec, reference, url);
	else if (!ret && (r.status < 200 || r.status > 299))
		ret = bs_status_error(c, &q, &r, reference, false);
	if (!ret && media_type) {
		char *ct = anole_http_header(&r, "Content-Type", 0);
		char *semi = ct ? strchr(ct, ';') : NULL;

		if (semi)
			*semi = '\0';
		*media_type = ct;
	}
	anole_http_response_release(&r);
	free(url);
	return ret;
}

static int registry_put_manifest(struct anole_blobstore *bs, const char *reference,
				 const char *media_type, const void *data, size_t len)
{
	struct registry_store *rs = bs->backend;
	struct bs_call c = { .bs = bs, .retries = bs->retries };
	struct strbuf ct = STRBUF_INIT;
	const char *headers[1];
	struct anole_http_request q = { .method = "PUT", .follow_redirects = false,
					.headers = headers, .nheaders = 1,
					.body = data, .body_len = len };
	struct anole_http_response r;
	char *url = manifest_url(rs->push, reference);
	int ret;

	strbuf_addf(&ct, "Content-Type: %s", media_type);
	headers[0] = ct.buf;
	q.url = url;
	anole_http_response_init(&r);
	ret = bs_request(&c, rs->push, &q, &r, REGISTRY_PUSH);
	if (!ret && (r.status < 200 || r.status > 299))
		ret = bs_status_error(&c, &q, &r, reference, false);
	anole_http_response_release(&r);
	free(url);
	strbuf_release(&ct);
	return ret;
}

/* Cross-repository mount: ask the registry to link a blob it already holds
 * in repository `from` into this one (no bytes move). 0 when mounted,
 * -ENOENT when the registry declined (the caller uploads instead). */
static int registry_mount_from(struct anole_blobstore *bs, const char *digest, const char *from)
{
	struct registry_store *rs = bs->backend;
	struct bs_call c = { .bs = bs, .retries = bs->retries };
	struct anole_http_request post = { .method = "POST", .body = "", .body_len = 0 };
	struct anole_http_response r;
	struct strbuf url = STRBUF_INIT;
	char *esc_d, *esc_f;
	int ret;

	if (!from || !valid_repo(from))
		return -ENOENT;
	esc_d = anole_http_escape(digest);
	esc_f = anole_http_escape(from);
	strbuf_addf(&url, "%s/v2/%s/blobs/uploads/?mount=%s&from=%s", rs->push->base,
		    rs->push->repo, esc_d, esc_f);
	free(esc_d);
	free(esc_f);
	post.url = url.buf;
	anole_http_response_init(&r);
	ret = bs_request(&c, rs->push, &post, &r, REGISTRY_PUSH);
	if (!ret)
		ret = r.status == 201 ? 0 : -ENOENT;   /* 202: an upload session instead */
	anole_http_response_release(&r);
	strbuf_release(&url);
	return ret;
}

static void registry_close(struct anole_blobstore *bs)
{
	struct registry_store *rs = bs->backend;

	if (!rs)
		return;
	for (unsigned i = 0; i < bs->nsources; i++)
		if (bs->sources[i].endpoint != rs->push)
			bs_endpoint_free(bs->sources[i].endpoint);
	bs_endpoint_free(rs->push);
	free(rs);
}

static const struct blobstore_ops registry_ops = {
	.kind = "registry",
	.read = bs_source_read,
	.size = bs_source_size,
	.get_manifest = registry_get_manifest,
	.put = registry_put,
	.put_manifest = registry_put_manifest,
	.mount_from = registry_mount_from,
	.upload_begin = registry_upload_begin,
	.upload_part = registry_upload_part,
	.upload_commit = registry_upload_commit,
	.upload_cancel = registry_upload_cancel,
	.has_tags = registry_has_tags,
	.close = registry_close,
};

/* "host[:port]/repo" of a registries.conf plan into an endpoint. */
static int plan_endpoint(const struct anole_blobstore *bs, const char *name, bool insecure,
			 const char *from, struct bs_endpoint **out)
{
	const char *slash = strchr(name, '/');
	char *host;

	if (!slash || slash == name || !valid_repo(slash + 1))
		return anole_error_code(EINVAL, "%s: '%s' is not a valid HOST[:PORT]/REPO", from,
					name);
	host = xstrndup(name, (size_t)(slash - name));
	*out = registry_endpoint(bs, host, slash + 1, insecure || speaks_plain_http(bs, host));
	free(host);
	return 0;
}

/*
 * The sources of reads from registries.conf (registries_conf.h): its
 * mirrors for this name in order, then its location (the name itself
 * unless rewritten). Writes go to the registry as named.
 */
static int add_sources(struct anole_blobstore *bs, struct registry_store *rs, const char *host,
		       const char *repo, const char *name)
{
	struct registries_conf *rc = NULL;
	struct registry_plan plan;
	struct bs_endpoint *ep;
	struct strbuf label = STRBUF_INIT;
	int ret = registries_conf_load(&rc, bs->o.registries_conf);

	if (!ret)
		ret = registries_conf_resolve(rc, name, &plan);
	registries_conf_free(rc);
	if (ret)
		return ret;
	if (plan.blocked) {
		ret = anole_error_code(EACCES, "%s: the registry is blocked (blocked = true in %s)",
				       bs->spec, plan.from);
		goto out;
	}
	/* insecure = true for its prefix: plain HTTP to it too */
	rs->push = registry_endpoint(bs, host, repo, plan.insecure || speaks_plain_http(bs, host));
	for (size_t i = 0; i < plan.nmirrors; i++) {
		struct bs_source *src;

		ret = plan_endpoint(bs, plan.mirrors[i].name, plan.mirrors[i].insecure, plan.from,
				    &ep);
		if (ret)
			goto out;
		strbuf_reset(&label);
		strbuf_addf(&label, "mirror %s of %s", plan.mirrors[i].name, bs->spec);
		src = bs_add_source(bs, label.buf, true, ep);
		src->tags = plan.mirrors[i].tags;
		src->digests = plan.mirrors[i].digests;
		anole_debug("%s: mirror %s (%s%s%s)", bs->spec, plan.mirrors[i].name, plan.from,
			    src->tags ? "" : ", digests only", src->digests ? "" : ", tags only");
	}
	strbuf_reset(&label);
	if (!strcmp(plan.origin, name)) {
		ep = rs->push;
		strbuf_addstr(&label, bs->spec);
	} else {
		ret = plan_endpoint(bs, plan.origin, plan.insecure, plan.from, &ep);
		if (ret)
			goto out;
		strbuf_addf(&label, "%s (location of %s in %s)", plan.origin, bs->spec, plan.from);
	}
	bs_add_source(bs, label.buf, false, ep);
out:
	strbuf_release(&label);
	registry_plan_release(&plan);
	return ret;
}

int blobstore_registry_open(struct anole_blobstore *bs, const char *rest)
{
	const char *slash = strchr(rest, '/');
	struct registry_store *rs;
	char *host, *repo, *name;
	size_t rlen;
	int ret;

	bs->ops = &registry_ops;
	if (!slash || slash == rest || !slash[1])
		return anole_error_code(EINVAL, "blob store '%s': expected docker://HOST[:PORT]/REPO",
					bs->spec);
	rlen = strlen(slash + 1);
	while (rlen && slash[1 + rlen - 1] == '/')
		rlen--;
	repo = xstrndup(slash + 1, rlen);
	if (!valid_repo(repo)) {
		free(repo);
		return anole_error_code(EINVAL, "blob store '%s': bad repository name (lower-case "
					"letters, digits, '.', '_', '-', separated by '/'; no tag)",
					bs->spec);
	}
	host = xstrndup(rest, (size_t)(slash - rest));
	if (registry_is_docker_hub(host) && !strchr(repo, '/')) {
		char *lib = xmalloc(strlen(repo) + 9);

		sprintf(lib, "library/%s", repo);
		free(repo);
		repo = lib;
	}
	rs = xcalloc(1, sizeof(*rs));
	bs->backend = rs;
	/* registries.conf names Docker Hub docker.io */
	name = xmalloc(strlen(host) + strlen(repo) + 16);
	sprintf(name, "%s/%s", registry_is_docker_hub(host) ? "docker.io" : host, repo);
	ret = add_sources(bs, rs, host, repo, name);
	free(name);
	free(host);
	free(repo);
	return ret ? ret : bs_net_init(bs);
}
