// SPDX-License-Identifier: Apache-2.0
/*
 * Blob stores (see blobstore.h): a local directory, a plain HTTP(S) prefix,
 * or an OCI distribution registry, read by byte range.
 *
 * Network requests go through one retry loop: transient failures
 * (connection errors, timeouts, stalls, short or over-long bodies, 5xx,
 * 408, 429) are tried again after an exponential backoff with jitter, up to
 * the configured number of retries; anything else is judged at once. A 401
 * is answered (Bearer token from the realm, or Basic credentials) and the
 * request sent again, at most twice per attempt; tokens are cached per
 * store and per kind of access (pull, push) until they expire.
 */
#include "anole/blobstore.h"
#include "anole/digest.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/http.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_RETRIES 4
#define DEFAULT_BACKOFF_MS 100
#define MAX_BACKOFF_MS 5000
#define MAX_RETRY_AFTER_MS 10000
#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_STALL_MS 10000
#define DEFAULT_CONNECT_MS 10000
#define TOKEN_BODY_MAX (256u << 10)
#define DEFAULT_TOKEN_LIFE 60          /* seconds, when the realm does not say */
#define MAX_AUTH_ROUNDS 2              /* challenges answered per attempt */
#define COPY_BUF (1u << 20)

enum bs_kind { BS_DIR, BS_HTTP, BS_REGISTRY };
enum { CLS_PULL, CLS_PUSH, CLS_N };

struct anole_blobstore {
	enum bs_kind kind;
	char *spec;
	unsigned retries, backoff_ms;
	char *auth_file;                /* --auth-file, or NULL for the defaults */

	/* dir */
	char *dir;
	bool oci;

	/* http, registry */
	struct anole_http *http;
	char *base;                     /* http: the prefix without a trailing '/';
	                                   registry: scheme://host[:port] */
	char *host;                     /* registry: host[:port] of the spec, for
	                                   credentials and messages */
	char *repo;
	bool plain_http;

	pthread_mutex_t lock;           /* the fields below */
	bool creds_loaded;
	char *basic;                    /* "Basic <base64 user:pass>" or NULL */
	char *creds_from;               /* the auth file it came from */
	char *authz[CLS_N];             /* Authorization values that worked */
	uint64_t authz_expiry[CLS_N];   /* monotonic ms; 0: none */

	atomic_uint_fast64_t n_requests, n_bytes, n_bytes_sent, n_retries, n_failures, n_auth;
};

static void count(atomic_uint_fast64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static unsigned jitter(unsigned max)
{
	static _Thread_local uint64_t state;

	if (!state) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		state = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)(uintptr_t)&state ^ 0x9e3779b97f4a7c15ull;
	}
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return max ? (unsigned)(state % (max + 1)) : 0;
}

int anole_digest_ref_check(const char *digest)
{
	if (!digest || strncmp(digest, "sha256:", 7))
		return -EINVAL;
	for (int i = 0; i < 64; i++) {
		char c = digest[7 + i];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return -EINVAL;
	}
	return digest[71] ? -EINVAL : 0;
}

/* ------------------------------------------------------------ open/close */

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

static bool is_docker_hub(const char *host)
{
	return !strcasecmp(host, "docker.io") || !strcasecmp(host, "index.docker.io") ||
	       !strcasecmp(host, "registry-1.docker.io");
}

static int open_registry(struct anole_blobstore *bs, const char *rest,
			 const struct anole_blobstore_opts *o)
{
	const char *slash = strchr(rest, '/');
	char *name, *repo;
	size_t rlen;
	bool insecure;

	if (!slash || slash == rest || !slash[1])
		return anole_error_code(-EINVAL, "blob store '%s': expected docker://HOST[:PORT]/REPO",
					bs->spec);
	bs->host = xstrndup(rest, (size_t)(slash - rest));
	rlen = strlen(slash + 1);
	while (rlen && slash[1 + rlen - 1] == '/')
		rlen--;
	repo = xstrndup(slash + 1, rlen);
	if (!valid_repo(repo)) {
		free(repo);
		return anole_error_code(-EINVAL, "blob store '%s': bad repository name (lower-case "
					"letters, digits, '.', '_', '-', separated by '/'; no tag)",
					bs->spec);
	}
	if (is_docker_hub(bs->host) && !strchr(repo, '/')) {
		char *lib = xmalloc(strlen(repo) + 9);

		sprintf(lib, "library/%s", repo);
		free(repo);
		repo = lib;
	}
	bs->repo = repo;
	name = host_name(bs->host);
	insecure = is_loopback_host(name);
	for (unsigned i = 0; i < o->ninsecure_hosts && !insecure; i++) {
		const char *h = o->insecure_hosts[i];

		insecure = !strcasecmp(h, bs->host) || !strcasecmp(h, name);
	}
	free(name);
	bs->plain_http = insecure;
	bs->base = xmalloc(strlen(bs->host) + 32);
	sprintf(bs->base, "%s://%s", insecure ? "http" : "https",
		is_docker_hub(bs->host) ? "registry-1.docker.io" : bs->host);
	bs->kind = BS_REGISTRY;
	return 0;
}

static int open_http(struct anole_blobstore *bs, const char *spec)
{
	size_t len = strlen(spec);
	const char *hostp = strstr(spec, "://") + 3;

	if (!*hostp || *hostp == '/')
		return anole_error_code(-EINVAL, "blob store '%s': no host", spec);
	while (len && spec[len - 1] == '/')
		len--;
	bs->base = xstrndup(spec, len);
	bs->host = xstrndup(hostp, strcspn(hostp, "/?#"));
	bs->plain_http = !strncasecmp(spec, "http:", 5);
	bs->kind = BS_HTTP;
	return 0;
}

static int open_dir(struct anole_blobstore *bs, const char *path)
{
	struct stat st;
	char *layout;
	size_t len = strlen(path);

	if (!len)
		return anole_error_code(-EINVAL, "blob store: empty directory name");
	while (len > 1 && path[len - 1] == '/')
		len--;
	bs->dir = xstrndup(path, len);
	if (stat(bs->dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return anole_error(ENOTDIR, "blob store %s", bs->dir);
	layout = xmalloc(len + 16);
	sprintf(layout, "%s/oci-layout", bs->dir);
	bs->oci = access(layout, F_OK) == 0;
	free(layout);
	bs->kind = BS_DIR;
	return 0;
}

int anole_blobstore_open(struct anole_blobstore **out, const char *spec,
			 const struct anole_blobstore_opts *opts)
{
	struct anole_blobstore_opts o = { 0 };
	struct anole_blobstore *bs;
	int ret;

	*out = NULL;
	if (opts)
		o = *opts;
	if (!spec || !*spec)
		return anole_error_code(-EINVAL, "no blob store given");
	bs = xcalloc(1, sizeof(*bs));
	pthread_mutex_init(&bs->lock, NULL);
	bs->spec = xstrdup(spec);
	bs->retries = o.retries == ANOLE_BLOBSTORE_NO_RETRIES ? 0 :
		      o.retries ? o.retries : DEFAULT_RETRIES;
	bs->backoff_ms = o.backoff_ms ? o.backoff_ms : DEFAULT_BACKOFF_MS;
	if (o.auth_file)
		bs->auth_file = xstrdup(o.auth_file);

	if (!strncmp(spec, "docker://", 9))
		ret = open_registry(bs, spec + 9, &o);
	else if (!strncasecmp(spec, "http://", 7) || !strncasecmp(spec, "https://", 8))
		ret = open_http(bs, spec);
	else if (!strncmp(spec, "dir:", 4))
		ret = open_dir(bs, spec + 4);
	else if (strstr(spec, "://"))
		ret = anole_error_code(-EINVAL, "blob store '%s': unknown scheme (dir, http://, "
				       "https://, docker://)", spec);
	else
		ret = open_dir(bs, spec);

	if (!ret && bs->kind != BS_DIR) {
		struct anole_http_opts ho = {
			.timeout_ms = o.timeout_ms ? o.timeout_ms : DEFAULT_TIMEOUT_MS,
			.user_agent = o.user_agent,
			.ca_file = o.ca_file,
		};

		ho.stall_ms = o.stall_ms ? o.stall_ms : DEFAULT_STALL_MS;
		if (ho.stall_ms > ho.timeout_ms)
			ho.stall_ms = ho.timeout_ms;
		ho.connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms :
					DEFAULT_CONNECT_MS;
		if (ho.connect_timeout_ms > ho.timeout_ms)
			ho.connect_timeout_ms = ho.timeout_ms;
		ret = anole_http_new(&bs->http, &ho);
	}
	if (ret) {
		anole_blobstore_close(bs);
		return ret;
	}
	*out = bs;
	return 0;
}

void anole_blobstore_close(struct anole_blobstore *bs)
{
	if (!bs)
		return;
	anole_http_free(bs->http);
	for (int i = 0; i < CLS_N; i++)
		free(bs->authz[i]);
	free(bs->basic);
	free(bs->creds_from);
	free(bs->spec);
	free(bs->auth_file);
	free(bs->dir);
	free(bs->base);
	free(bs->host);
	free(bs->repo);
	pthread_mutex_destroy(&bs->lock);
	free(bs);
}

void anole_blobstore_get_stats(struct anole_blobstore *bs, struct anole_blobstore_stats *st)
{
	st->requests = atomic_load_explicit(&bs->n_requests, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&bs->n_bytes, memory_order_relaxed);
	st->bytes_sent = atomic_load_explicit(&bs->n_bytes_sent, memory_order_relaxed);
	st->retries = atomic_load_explicit(&bs->n_retries, memory_order_relaxed);
	st->failures = atomic_load_explicit(&bs->n_failures, memory_order_relaxed);
	st->auth = atomic_load_explicit(&bs->n_auth, memory_order_relaxed);
}

/* ------------------------------------------------------------ credentials */

/* Does a key of "auths" ("host:port", "https://host/v1/", ...) name our host? */
static bool auth_key_matches(const struct anole_blobstore *bs, const char *key)
{
	const char *p = strstr(key, "://");
	size_t n;
	char *k;
	bool match;

	p = p ? p + 3 : key;
	n = strcspn(p, "/");
	k = xstrndup(p, n);
	match = !strcasecmp(k, bs->host) || (is_docker_hub(bs->host) && is_docker_hub(k));
	free(k);
	return match;
}

static char *basic_from_entry(json_t *entry)
{
	const char *auth = json_string_value(json_object_get(entry, "auth"));
	const char *user = json_string_value(json_object_get(entry, "username"));
	const char *pass = json_string_value(json_object_get(entry, "password"));
	struct strbuf sb = STRBUF_INIT;
	char *b64, *res = NULL;

	if (auth && *auth) {
		uint8_t *raw;
		long n = anole_base64_decode(auth, &raw);

		if (n > 0 && memchr(raw, ':', (size_t)n) && !memchr(raw, '\0', (size_t)n))
			strbuf_add(&sb, raw, (size_t)n);
		free(raw);
	} else if (user && pass) {
		strbuf_addf(&sb, "%s:%s", user, pass);
	}
	if (sb.len) {
		b64 = anole_base64_encode(sb.buf, sb.len);
		res = xmalloc(strlen(b64) + 8);
		sprintf(res, "Basic %s", b64);
		free(b64);
	}
	strbuf_release(&sb);
	return res;
}

/* The auth file to read: explicit, $REGISTRY_AUTH_FILE, $DOCKER_CONFIG, ~/.docker. */
static char *auth_file_path(const struct anole_blobstore *bs, bool *explicit)
{
	const char *env;
	char *p;

	*explicit = true;
	if (bs->auth_file)
		return xstrdup(bs->auth_file);
	if ((env = getenv("REGISTRY_AUTH_FILE")) && *env)
		return xstrdup(env);
	*explicit = false;
	if ((env = getenv("DOCKER_CONFIG")) && *env) {
		p = xmalloc(strlen(env) + 16);
		sprintf(p, "%s/config.json", env);
		return p;
	}
	if ((env = getenv("HOME")) && *env) {
		p = xmalloc(strlen(env) + 32);
		sprintf(p, "%s/.docker/config.json", env);
		return p;
	}
	return NULL;
}

/* "Basic ..." for our host from the auth file, or NULL (a new string). */
static char *get_basic(struct anole_blobstore *bs)
{
	char *res;

	pthread_mutex_lock(&bs->lock);
	if (!bs->creds_loaded) {
		bool explicit;
		char *path = auth_file_path(bs, &explicit);
		json_error_t jerr;
		json_t *root = NULL, *auths, *entry;
		const char *key;

		bs->creds_loaded = true;
		if (path && (explicit || access(path, F_OK) == 0))
			root = json_load_file(path, 0, &jerr);
		if (path && !root && (explicit || access(path, F_OK) == 0))
			anole_warn("cannot read auth file %s: %s (going on without credentials)",
				   path, jerr.text);
		auths = json_object_get(root, "auths");
		json_object_foreach(auths, key, entry) {
			if (auth_key_matches(bs, key) && (bs->basic = basic_from_entry(entry)))
				break;
		}
		if (root && !bs->basic && (json_object_get(root, "credsStore") ||
					   json_object_get(root, "credHelpers")))
			anole_debug("%s: credential helpers are not supported; no inline "
				    "credentials for %s", path, bs->host);
		json_decref(root);
		bs->creds_from = path;
	}
	res = bs->basic ? xstrdup(bs->basic) : NULL;
	pthread_mutex_unlock(&bs->lock);
	return res;
}

static char *authz_get(struct anole_blobstore *bs, int cls)
{
	char *res = NULL;

	pthread_mutex_lock(&bs->lock);
	for (int c = cls; c < CLS_N && !res; c++) {     /* a push token also pulls */
		if (bs->authz[c] && (!bs->authz_expiry[c] || bs->authz_expiry[c] > now_ms()))
			res = xstrdup(bs->authz[c]);
	}
	pthread_mutex_unlock(&bs->lock);
	return res;
}

static void authz_set(struct anole_blobstore *bs, int cls, const char *value, uint64_t expiry)
{
	pthread_mutex_lock(&bs->lock);
	free(bs->authz[cls]);
	bs->authz[cls] = xstrdup(value);
	bs->authz_expiry[cls] = expiry;
	pthread_mutex_unlock(&bs->lock);
}

struct challenge {
	char scheme[16];
	char *realm, *service, *scope, *error;
};

static void challenge_release(struct challenge *ch)
{
	free(ch->realm);
	free(ch->service);
	free(ch->scope);
	free(ch->error);
	memset(ch, 0, sizeof(*ch));
}

static bool tchar(char c)
{
	return c && (isalnum((unsigned char)c) || strchr("!#$%&'*+-.^_`|~", c));
}

static void challenge_set(struct challenge *ch, const char *key, size_t klen, struct strbuf *val)
{
	static const char *const names[] = { "realm", "service", "scope", "error" };
	char **fields[] = { &ch->realm, &ch->service, &ch->scope, &ch->error };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (klen == strlen(names[i]) && !strncasecmp(key, names[i], klen) && !*fields[i]) {
			*fields[i] = strbuf_detach(val, NULL);
			return;
		}
	}
}

/*
 * The challenges of one WWW-Authenticate value (RFC 7235: several may share
 * it), e.g. `Basic realm="r", Bearer realm="https://a/token",service="s"`,
 * into ch[0..max). Returns how many; parsing stops at the first malformed
 * part (a challenge with an unterminated quoted string is dropped).
 */
static unsigned parse_challenges(const char *v, struct challenge *ch, unsigned max)
{
	const char *p = v;
	unsigned n = 0;

	while (n < max) {
		struct challenge *c = &ch[n];
		size_t len;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		for (len = 0; tchar(p[len]); len++)
			;
		if (!len || len >= sizeof(c->scheme) || (p[len] && p[len] != ' ' && p[len] != ','))
			break;
		memset(c, 0, sizeof(*c));
		memcpy(c->scheme, p, len);
		p += len;
		n++;
		for (;;) {      /* auth-params, until the next scheme */
			struct strbuf val = STRBUF_INIT;
			const char *key, *q;
			size_t klen;

			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			for (key = p, klen = 0; tchar(key[klen]); klen++)
				;
			for (q = key + klen; *q == ' ' || *q == '\t'; q++)
				;
			if (!klen || *q != '=')
				break;  /* the end, a new scheme, or a token68 */
			for (q++; *q == ' ' || *q == '\t'; q++)
				;
			if (*q == '"') {
				for (q++; *q && *q != '"'; q++) {
					if (*q == '\\' && q[1])
						q++;
					strbuf_addch(&val, *q);
				}
				if (*q != '"') {        /* unterminated: drop it all */
					strbuf_release(&val);
					challenge_release(c);
					return n - 1;
				}
				q++;
			} else {
				size_t vl = strcspn(q, ", \t");

				strbuf_add(&val, q, vl);
				q += vl;
			}
			challenge_set(c, key, klen, &val);
			strbuf_release(&val);
			p = q;
		}
		/* p: the end, the next scheme, or junk (a token68 is read as one) */
		if (!*p)
			break;
	}
	return n;
}

static int auth_fail(struct anole_http_response *r, int err, bool transient, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int auth_fail(struct anole_http_response *r, int err, bool transient, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->error, sizeof(r->error), fmt, ap);
	va_end(ap);
	r->transient = transient;
	return err;
}

static int fetch_token(struct anole_blobstore *bs, const struct challenge *ch, int cls,
		       struct anole_http_response *r, char **authz)
{
	struct strbuf url = STRBUF_INIT, body = STRBUF_INIT;
	struct anole_http_response tr;
	struct anole_http_request q = { .method = "GET", .follow_redirects = true,
					.body_out = &body, .body_max = TOKEN_BODY_MAX };
	char *basic = get_basic(bs), *scope;
	const char *token;
	json_t *doc = NULL;
	json_int_t life = DEFAULT_TOKEN_LIFE;
	int ret;

	if (!ch->realm || (strncasecmp(ch->realm, "https://", 8) &&
			   strncasecmp(ch->realm, "http://", 7))) {
		free(basic);
		return auth_fail(r, -EACCES, false,
				 "HTTP 401 with a Bearer challenge that has no http(s) realm");
	}
	if (!strncasecmp(ch->realm, "http://", 7) && !bs->plain_http && basic) {
		anole_warn("not sending credentials for %s to the plain-http token realm %s",
			   bs->host, ch->realm);
		free(basic);
		basic = NULL;
	}
	if (ch->scope && (cls == CLS_PULL || strstr(ch->scope, "push"))) {
		scope = xstrdup(ch->scope);
	} else {
		scope = xmalloc(strlen(bs->repo ? bs->repo : "") + 40);
		sprintf(scope, "repository:%s:%s", bs->repo ? bs->repo : "",
			cls == CLS_PUSH ? "pull,push" : "pull");
	}
	strbuf_addstr(&url, ch->realm);
	strbuf_addch(&url, strchr(ch->realm, '?') ? '&' : '?');
	if (ch->service) {
		char *e = anole_http_escape(ch->service);

		strbuf_addf(&url, "service=%s&", e);
		free(e);
	}
	{
		char *e = anole_http_escape(scope);

		strbuf_addf(&url, "scope=%s", e);
		free(e);
	}
	q.url = url.buf;
	q.authorization = basic;
	anole_http_response_init(&tr);
	ret = anole_http_request(bs->http, &q, &tr);
	count(&bs->n_requests, tr.requests);
	count(&bs->n_auth, 1);
	if (ret) {
		ret = auth_fail(r, ret, tr.transient, "token request to %s: %s", ch->realm, tr.error);
	} else if (tr.status == 401 || tr.status == 403) {
		ret = auth_fail(r, -EACCES, false, "token request to %s: HTTP %ld (%s)", ch->realm,
				tr.status, basic ? "the credentials were rejected" :
				"anonymous access denied; no credentials for this registry");
	} else if (tr.status != 200) {
		bool transient = tr.status >= 500 || tr.status == 429 || tr.status == 408;

		ret = auth_fail(r, transient ? -EIO : -EACCES, transient,
				"token request to %s: HTTP %ld %s", ch->realm, tr.status, tr.reason);
	} else if (!(doc = json_loadb(body.buf, body.len, 0, NULL)) ||
		   (!(token = json_string_value(json_object_get(doc, "token"))) &&
		    !(token = json_string_value(json_object_get(doc, "access_token")))) ||
		   !*token) {
		ret = auth_fail(r, -EACCES, false, "token request to %s: no token in the answer",
				ch->realm);
	} else {
		json_t *ei = json_object_get(doc, "expires_in");
		uint64_t expiry;

		if (json_is_integer(ei) && json_integer_value(ei) > 0)
			life = json_integer_value(ei);
		if (life > 30)
			life -= 10;     /* renew a little early */
		expiry = now_ms() + (uint64_t)life * 1000;
		*authz = xmalloc(strlen(token) + 8);
		sprintf(*authz, "Bearer %s", token);
		authz_set(bs, cls, *authz, expiry);
	}
	json_decref(doc);
	anole_http_response_release(&tr);
	strbuf_release(&url);
	strbuf_release(&body);
	free(scope);
	free(basic);
	return ret;
}

/* Answer the 401 in r; sent is the Authorization that it refused (or NULL).
 * 0 with a new Authorization value in *authz, or a negative errno with
 * r->error and r->transient set. */
static int answer_challenge(struct anole_blobstore *bs, struct anole_http_response *r,
			    int cls, const char *sent, char **authz)
{
	struct challenge ch = { 0 }, basic_ch = { 0 };
	bool have_bearer = false, have_basic = false;
	int ret;

	*authz = NULL;
	for (unsigned i = 0;; i++) {
		char *v = anole_http_header(r, "WWW-Authenticate", i);
		struct challenge c[4];
		unsigned n;

		if (!v)
			break;
		n = parse_challenges(v, c, ARRAY_SIZE(c));
		for (unsigned k = 0; k < n; k++) {
			if (!strcasecmp(c[k].scheme, "Bearer") && !have_bearer) {
				ch = c[k];
				have_bearer = true;
			} else if (!strcasecmp(c[k].scheme, "Basic") && !have_basic) {
				basic_ch = c[k];
				have_basic = true;
			} else {
				challenge_release(&c[k]);
			}
		}
		free(v);
	}
	if (have_bearer) {
		if (sent && !strncmp(sent, "Bearer ", 7) && ch.error &&
		    !strcmp(ch.error, "insufficient_scope"))
			ret = auth_fail(r, -EACCES, false, "HTTP 401: the token does not grant %s",
					ch.scope ? ch.scope : "this access");
		else
			ret = fetch_token(bs, &ch, cls, r, authz);
	} else if (have_basic) {
		char *basic = get_basic(bs);

		if (!basic)
			ret = auth_fail(r, -EACCES, false, "HTTP 401: %s wants credentials and %s has "
					"none for it", bs->host,
					bs->creds_from ? bs->creds_from : "no auth file");
		else if (sent && !strcmp(sent, basic))
			ret = auth_fail(r, -EACCES, false, "HTTP 401: the credentials for %s from %s "
					"were rejected", bs->host, bs->creds_from);
		else {
			count(&bs->n_auth, 1);
			authz_set(bs, cls, basic, 0);
			*authz = basic;
			basic = NULL;
			ret = 0;
		}
		free(basic);
	} else {
		ret = auth_fail(r, -EACCES, false, "HTTP 401 without a Bearer or Basic challenge");
	}
	challenge_release(&ch);
	challenge_release(&basic_ch);
	return ret;
}

/* ------------------------------------------------------------ requests */

/* Send q once, answering up to MAX_AUTH_ROUNDS 401 challenges. */
static int bs_send(struct anole_blobstore *bs, struct anole_http_request *q,
		   struct anole_http_response *r, int cls, bool with_auth)
{
	char *authz = with_auth ? authz_get(bs, cls) : NULL;
	int ret;

	for (unsigned round = 0;; round++) {
		unsigned before = r->requests;
		char *next;

		q->authorization = authz;
		ret = anole_http_request(bs->http, q, r);
		count(&bs->n_requests, r->requests - before);
		if (ret || r->status != 401 || !with_auth || round == MAX_AUTH_ROUNDS)
			break;
		ret = answer_challenge(bs, r, cls, authz, &next);
		if (ret)
			break;
		free(authz);
		authz = next;
	}
	q->authorization = NULL;
	free(authz);
	return ret;
}

static bool status_transient(long st)
{
	return st == 408 || st == 429 || (st >= 500 && st != 501 && st != 505);
}

/* ": CODE: message" of an OCI error body, or "". */
static void registry_detail(const struct anole_http_response *r, char *out, size_t size)
{
	json_t *doc, *err;
	const char *code, *msg;

	out[0] = '\0';
	if (!r->errbody.len || !(doc = json_loadb(r->errbody.buf, r->errbody.len, 0, NULL)))
		return;
	err = json_array_get(json_object_get(doc, "errors"), 0);
	code = json_string_value(json_object_get(err, "code"));
	msg = json_string_value(json_object_get(err, "message"));
	if (code || msg)
		snprintf(out, size, ": %s%s%s", code ? code : "", code && msg ? ": " : "",
			 msg ? msg : "");
	json_decref(doc);
}

static void describe(const struct anole_http_response *r, int ret, char *out, size_t size)
{
	char detail[200];

	if (ret) {
		snprintf(out, size, "%s", r->error);
		return;
	}
	registry_detail(r, detail, sizeof(detail));
	snprintf(out, size, "HTTP %ld%s%s%s", r->status, r->reason[0] ? " " : "", r->reason,
		 detail);
}

/*
 * Judge the outcome (ret, r) of one attempt at q. Returns 1 after sleeping
 * when a transient failure should be tried again; 0 when r holds a
 * response for the caller to judge; a negative errno, logged, otherwise.
 */
static int judge(struct anole_blobstore *bs, const struct anole_http_request *q,
		 struct anole_http_response *r, int ret, unsigned *attempt)
{
	bool transient = ret ? r->transient : status_transient(r->status);
	const char *method = q->method ? q->method : "GET";
	char why[400];

	if (!transient) {
		if (ret)
			return anole_error_code(ret, "%s %s: %s", method, q->url, r->error);
		return 0;
	}
	describe(r, ret, why, sizeof(why));
	if (*attempt < bs->retries) {
		unsigned shift = *attempt < 16 ? *attempt : 16;
		uint64_t delay = (uint64_t)bs->backoff_ms << shift;

		if (delay > MAX_BACKOFF_MS)
			delay = MAX_BACKOFF_MS;
		delay += jitter((unsigned)delay / 4);
		if (!ret && r->status == 429) {
			char *ra = anole_http_header(r, "Retry-After", 0);
			char *end;
			unsigned long s = ra ? strtoul(ra, &end, 10) : 0;

			if (ra && end != ra && !*end && s * 1000 > delay)
				delay = s * 1000 > MAX_RETRY_AFTER_MS ? MAX_RETRY_AFTER_MS : s * 1000;
			free(ra);
		}
		(*attempt)++;
		count(&bs->n_retries, 1);
		anole_info("%s %s: %s; retrying in %u ms (attempt %u of %u)", method, q->url, why,
			   (unsigned)delay, *attempt + 1, bs->retries + 1);
		sleep_ms((unsigned)delay);
		return 1;
	}
	return anole_error_code(-EIO, "%s %s: %s (gave up after %u attempt%s)", method, q->url,
				why, *attempt + 1, *attempt ? "s" : "");
}

/* A final non-2xx response as an error (logged unless a quiet 404). */
static int status_error(const struct anole_http_request *q, const struct anole_http_response *r,
			const char *digest, bool quiet_404)
{
	const char *method = q->method ? q->method : "GET";
	char why[400];

	describe(r, 0, why, sizeof(why));
	switch (r->status) {
	case 404:
		if (quiet_404)
			return -ENOENT;
		return anole_error_code(-ENOENT, "blob %s not found: %s %s: %s", digest, method,
					q->url, why);
	case 416:
		return anole_error_code(-ERANGE, "%s %s: %s: the range is beyond the end of the blob",
					method, q->url, why);
	case 401:
	case 403:
		return anole_error_code(-EACCES, "%s %s: %s", method, q->url, why);
	default:
		return anole_error_code(-EIO, "%s %s: unexpected %s", method, q->url, why);
	}
}

static char *blob_url(const struct anole_blobstore *bs, const char *digest)
{
	char *url = xmalloc(strlen(bs->base) + (bs->repo ? strlen(bs->repo) : 0) + 96);

	if (bs->kind == BS_REGISTRY)
		sprintf(url, "%s/v2/%s/blobs/%s", bs->base, bs->repo, digest);
	else
		sprintf(url, "%s/%s", bs->base, digest + 7);
	return url;
}

static int net_read(struct anole_blobstore *bs, const char *digest, uint64_t off, void *buf,
		    size_t len)
{
	char *url = blob_url(bs, digest);
	struct anole_http_request q = { .method = "GET", .url = url, .follow_redirects = true,
					.range_buf = buf, .range_off = off, .range_len = len };
	struct anole_http_response r;
	unsigned attempt = 0;
	int ret;

	anole_http_response_init(&r);
	do
		ret = judge(bs, &q, &r, bs_send(bs, &q, &r, CLS_PULL, true), &attempt);
	while (ret == 1);
	if (!ret && (r.status < 200 || r.status > 299))
		ret = status_error(&q, &r, digest, false);
	if (!ret)
		count(&bs->n_bytes, len);
	anole_http_response_release(&r);
	free(url);
	return ret;
}

/* The total of a "bytes a-b/total" or "bytes * /total" Content-Range. */
static int range_total(const struct anole_http_response *r, uint64_t *size)
{
	char *v = anole_http_header(r, "Content-Range", 0), *slash, *end;
	int ret = -EPROTO;

	if (v && (slash = strchr(v, '/')) && isdigit((unsigned char)slash[1])) {
		errno = 0;
		*size = strtoull(slash + 1, &end, 10);
		if (!errno && !*end)
			ret = 0;
	}
	free(v);
	return ret;
}

static int net_size(struct anole_blobstore *bs, const char *digest, uint64_t *size, int cls,
		    bool quiet_404)
{
	char *url = blob_url(bs, digest);
	struct anole_http_request q = { .method = "HEAD", .url = url, .follow_redirects = true };
	struct anole_http_response r;
	unsigned attempt = 0;
	uint8_t byte;
	int ret;

	anole_http_response_init(&r);
	do
		ret = judge(bs, &q, &r, bs_send(bs, &q, &r, cls, true), &attempt);
	while (ret == 1);
	if (ret)
		goto out;
	if (r.status == 200 && r.content_length >= 0) {
		*size = (uint64_t)r.content_length;
		goto out;
	}
	if (r.status != 200 && r.status != 405 && r.status != 501) {
		ret = status_error(&q, &r, digest, quiet_404);
		goto out;
	}
	/* no HEAD, or no length in its answer: ask for the first byte */
	q.method = "GET";
	q.range_buf = &byte;
	q.range_off = 0;
	q.range_len = 1;
	attempt = 0;
	do {
		ret = bs_send(bs, &q, &r, cls, true);
		if (ret == -ERANGE && r.status == 200)
			ret = 0;        /* an empty body: size 0 */
		ret = judge(bs, &q, &r, ret, &attempt);
	} while (ret == 1);
	if (ret)
		goto out;
	if (r.status == 206 || r.status == 416) {
		ret = range_total(&r, size);
		if (ret)
			ret = anole_error_code(ret, "GET %s: HTTP %ld without a usable Content-Range",
					       url, r.status);
	} else if (r.status == 200 && r.content_length >= 0) {
		*size = (uint64_t)r.content_length;
	} else if (r.status == 200) {
		ret = anole_error_code(-EPROTO, "GET %s: the server tells no size", url);
	} else {
		ret = status_error(&q, &r, digest, quiet_404);
	}
out:
	anole_http_response_release(&r);
	free(url);
	return ret;
}

/* Monolithic upload: POST an upload session, PUT the bytes to its Location. */
static int registry_put(struct anole_blobstore *bs, const char *digest, int fd, uint64_t size,
			const char *path)
{
	static const char *const put_headers[] = { "Content-Type: application/octet-stream" };
	struct strbuf uploads = STRBUF_INIT, put_url = STRBUF_INIT;
	struct anole_http_request post = { .method = "POST", .body = "", .body_len = 0 };
	struct anole_http_request put = {
		.method = "PUT", .headers = put_headers, .nheaders = 1, .no_timeout = true,
		.body_from_fd = true, .body_fd = fd, .body_off = 0, .body_len = size,
	};
	struct anole_http_response r;
	unsigned attempt = 0;
	uint64_t have;
	int ret;

	ret = net_size(bs, digest, &have, CLS_PUSH, true);
	if (!ret) {
		anole_info("%s: %s already has %s", path, bs->spec, digest);
		return 1;
	}
	if (ret != -ENOENT)
		return ret;

	strbuf_addf(&uploads, "%s/v2/%s/blobs/uploads/", bs->base, bs->repo);
	post.url = uploads.buf;
	anole_http_response_init(&r);
	for (;;) {
		char *loc, *abs, *esc;

		ret = judge(bs, &post, &r, bs_send(bs, &post, &r, CLS_PUSH, true), &attempt);
		if (ret == 1)
			continue;
		if (ret)
			break;
		if (r.status != 202 && r.status != 201) {
			ret = status_error(&post, &r, digest, false);
			break;
		}
		loc = anole_http_header(&r, "Location", 0);
		abs = loc ? anole_http_resolve_url(r.url ? r.url : uploads.buf, loc) : NULL;
		free(loc);
		if (!abs) {
			ret = anole_error_code(-EPROTO, "POST %s: HTTP %ld without a usable Location",
					       uploads.buf, r.status);
			break;
		}
		/* keep the session's own query parameters (e.g. _state) */
		esc = anole_http_escape(digest);
		strbuf_reset(&put_url);
		strbuf_addf(&put_url, "%s%cdigest=%s", abs, strchr(abs, '?') ? '&' : '?', esc);
		free(esc);
		free(abs);
		put.url = put_url.buf;
		{
			uint64_t before = r.bytes_sent;

			ret = bs_send(bs, &put, &r, CLS_PUSH,
				      anole_http_same_origin(put_url.buf, bs->base));
			if (!ret && r.status >= 200 && r.status <= 299)
				count(&bs->n_bytes_sent, r.bytes_sent - before);
		}
		ret = judge(bs, &put, &r, ret, &attempt);
		if (ret == 1)
			continue;       /* a new session: the old one may be spent */
		if (!ret && (r.status < 200 || r.status > 299))
			ret = status_error(&put, &r, digest, false);
		break;
	}
	anole_http_response_release(&r);
	strbuf_release(&uploads);
	strbuf_release(&put_url);
	return ret;
}

/* ------------------------------------------------------------ directory */

static char *dir_blob_path(const struct anole_blobstore *bs, const char *digest)
{
	char *p = xmalloc(strlen(bs->dir) + 96);

	if (bs->oci)
		sprintf(p, "%s/blobs/sha256/%s", bs->dir, digest + 7);
	else
		sprintf(p, "%s/%s", bs->dir, digest + 7);
	return p;
}

static int dir_read(struct anole_blobstore *bs, const char *digest, uint64_t off, void *buf,
		    size_t len)
{
	char *path = dir_blob_path(bs, digest);
	int fd, ret;

	count(&bs->n_requests, 1);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = errno == ENOENT ?
		      anole_error_code(-ENOENT, "blob %s not found: %s does not exist", digest, path) :
		      anole_error(errno, "cannot open %s", path);
		free(path);
		return ret;
	}
	ret = pread_full(fd, buf, len, off);
	if (ret == -ENODATA)
		ret = anole_error_code(-ERANGE, "%s: bytes %" PRIu64 "-%" PRIu64 " are beyond the "
				       "end of the blob", path, off, off + len - 1);
	else if (ret)
		ret = anole_error(-ret, "cannot read %s", path);
	else
		count(&bs->n_bytes, len);
	close(fd);
	free(path);
	return ret;
}

static int dir_size(struct anole_blobstore *bs, const char *digest, uint64_t *size)
{
	char *path = dir_blob_path(bs, digest);
	struct stat st;
	int ret = 0;

	count(&bs->n_requests, 1);
	if (stat(path, &st) < 0)
		ret = errno == ENOENT ?
		      anole_error_code(-ENOENT, "blob %s not found: %s does not exist", digest, path) :
		      anole_error(errno, "cannot stat %s", path);
	else if (!S_ISREG(st.st_mode))
		ret = anole_error_code(-EIO, "%s is not a regular file", path);
	else
		*size = (uint64_t)st.st_size;
	free(path);
	return ret;
}

static int mkdir_p(const char *dir)
{
	char *p = xstrdup(dir);
	int ret = 0;

	for (char *s = p + 1;; s++) {
		char c = *s;

		if (c != '/' && c != '\0')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST) {
			ret = anole_error(errno, "cannot create %s", p);
			break;
		}
		*s = c;
		if (!c)
			break;
	}
	free(p);
	return ret;
}

static int dir_put(struct anole_blobstore *bs, const char *digest, int fd, uint64_t size,
		   const char *src)
{
	char *path = dir_blob_path(bs, digest), *slash = strrchr(path, '/');
	struct anole_digest_ctx *ctx = NULL;
	struct anole_output out;
	uint8_t md[ANOLE_DIGEST_MAX];
	char hex[65];
	uint8_t *buf = NULL;
	struct stat st;
	uint64_t off = 0;
	int ret;

	count(&bs->n_requests, 1);
	if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size) {
		free(path);
		return 1;
	}
	*slash = '\0';
	ret = mkdir_p(path);
	*slash = '/';
	if (ret || (ret = anole_output_open(&out, path))) {
		free(path);
		return ret;
	}
	ctx = anole_digest_new(ANOLE_DIGEST_SHA256);
	buf = xmalloc(COPY_BUF);
	if (!ctx)
		ret = anole_error_code(-ENOMEM, "cannot start a digest");
	while (!ret && off < size) {
		size_t n = size - off < COPY_BUF ? (size_t)(size - off) : COPY_BUF;

		ret = pread_full(fd, buf, n, off);
		if (ret) {
			ret = anole_error(-ret, "cannot read %s", src);
			break;
		}
		anole_digest_update(ctx, buf, n);
		ret = write_full(out.fd, buf, n);
		if (ret)
			ret = anole_error(-ret, "cannot write %s", out.tmp_path);
		off += n;
	}
	if (!ret && !(ret = anole_digest_final(ctx, md))) {
		anole_hex(md, 32, hex);
		if (strcmp(hex, digest + 7))
			ret = anole_error_code(-EBADMSG, "%s does not match %s (its sha256 is %s)",
					       src, digest, hex);
	}
	if (ret)
		anole_output_abort(&out);
	else if (!(ret = anole_output_commit(&out)))
		count(&bs->n_bytes_sent, size);
	anole_digest_free(ctx);
	free(buf);
	free(path);
	return ret;
}

/* ------------------------------------------------------------ public */

static int check_digest(const char *digest)
{
	if (anole_digest_ref_check(digest))
		return anole_error_code(-EINVAL, "invalid blob digest '%s' (want sha256:<64 hex>)",
					digest ? digest : "");
	return 0;
}

static int failed(struct anole_blobstore *bs, int ret)
{
	if (ret < 0)
		count(&bs->n_failures, 1);
	return ret;
}

int anole_blobstore_read(struct anole_blobstore *bs, const char *digest, uint64_t off,
			 void *buf, size_t len)
{
	int ret = check_digest(digest);

	if (ret)
		return failed(bs, ret);
	if (!len)
		return 0;
	if (off + len < off)
		return failed(bs, anole_error_code(-ERANGE, "range past 2^64"));
	if (bs->kind == BS_DIR)
		ret = dir_read(bs, digest, off, buf, len);
	else
		ret = net_read(bs, digest, off, buf, len);
	return failed(bs, ret);
}

int anole_blobstore_size(struct anole_blobstore *bs, const char *digest, uint64_t *size)
{
	int ret = check_digest(digest);

	if (ret)
		return failed(bs, ret);
	if (bs->kind == BS_DIR)
		ret = dir_size(bs, digest, size);
	else
		ret = net_size(bs, digest, size, CLS_PULL, false);
	return failed(bs, ret);
}

int anole_blobstore_put(struct anole_blobstore *bs, const char *digest, const char *path)
{
	struct stat st;
	int fd, ret = check_digest(digest);

	if (ret)
		return failed(bs, ret);
	if (bs->kind == BS_HTTP)
		return failed(bs, anole_error_code(-EOPNOTSUPP, "%s: an http(s) blob store is "
						   "read-only; push to a registry or a directory",
						   bs->spec));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return failed(bs, anole_error(errno, "cannot open %s", path));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		ret = anole_error_code(-EINVAL, "%s is not a regular file", path);
		close(fd);
		return failed(bs, ret);
	}
	if (bs->kind == BS_DIR)
		ret = dir_put(bs, digest, fd, (uint64_t)st.st_size, path);
	else
		ret = registry_put(bs, digest, fd, (uint64_t)st.st_size, path);
	close(fd);
	return failed(bs, ret);
}

/* ---- manifests (registry stores only) ---- */

#define MANIFEST_ACCEPT "Accept: application/vnd.oci.image.index.v1+json, " \
	"application/vnd.oci.image.manifest.v1+json, " \
	"application/vnd.docker.distribution.manifest.list.v2+json, " \
	"application/vnd.docker.distribution.manifest.v2+json"
#define MAX_MANIFEST (4u << 20)

static char *manifest_url(const struct anole_blobstore *bs, const char *reference)
{
	struct strbuf u = STRBUF_INIT;

	strbuf_addf(&u, "%s/v2/%s/manifests/%s", bs->base, bs->repo, reference);
	return strbuf_detach(&u, NULL);
}

static bool valid_reference(const char *ref)
{
	if (!ref || !*ref || strlen(ref) > 128)
		return false;
	if (!strncmp(ref, "sha256:", 7))
		return !anole_digest_ref_check(ref);
	for (const char *p = ref; *p; p++)
		if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
			return false;
	return true;
}

int anole_blobstore_get_manifest(struct anole_blobstore *bs, const char *reference,
				 struct strbuf *out, char **media_type)
{
	static const char *const headers[] = { MANIFEST_ACCEPT };
	struct anole_http_request q = { .method = "GET", .follow_redirects = true,
					.headers = headers, .nheaders = 1,
					.body_out = out, .body_max = MAX_MANIFEST };
	struct anole_http_response r;
	unsigned attempt = 0;
	char *url;
	int ret;

	if (bs->kind != BS_REGISTRY)
		return anole_error_code(EOPNOTSUPP, "%s is not a registry", bs->spec);
	if (!valid_reference(reference))
		return anole_error_code(EINVAL, "'%s' is not a tag or a sha256 digest", reference);
	url = manifest_url(bs, reference);
	q.url = url;
	anole_http_response_init(&r);
	do {
		strbuf_reset(out);
		ret = judge(bs, &q, &r, bs_send(bs, &q, &r, CLS_PULL, true), &attempt);
	} while (ret == 1);
	if (!ret && r.status == 404)
		ret = anole_error_code(ENOENT, "%s: no manifest %s (GET %s)", bs->spec, reference, url);
	else if (!ret && (r.status < 200 || r.status > 299))
		ret = status_error(&q, &r, reference, false);
	if (!ret && media_type) {
		char *ct = anole_http_header(&r, "Content-Type", 0);
		char *semi = ct ? strchr(ct, ';') : NULL;

		if (semi)
			*semi = '\0';
		*media_type = ct;
	}
	/* a digest reference must name exactly these bytes */
	if (!ret && !strncmp(reference, "sha256:", 7)) {
		uint8_t d[32];
		char hex[65];

		anole_digest(ANOLE_DIGEST_SHA256, out->buf, out->len, d);
		anole_hex(d, 32, hex);
		if (strcmp(hex, reference + 7))
			ret = anole_error_code(EBADMSG, "%s: manifest %s does not match its digest",
					       bs->spec, reference);
	}
	anole_http_response_release(&r);
	free(url);
	return ret;
}

int anole_blobstore_put_manifest(struct anole_blobstore *bs, const char *reference,
				 const char *media_type, const void *data, size_t len)
{
	struct strbuf ct = STRBUF_INIT;
	const char *headers[1];
	struct anole_http_request q = { .method = "PUT", .follow_redirects = false,
					.headers = headers, .nheaders = 1,
					.body = data, .body_len = len };
	struct anole_http_response r;
	unsigned attempt = 0;
	char *url;
	int ret;

	if (bs->kind != BS_REGISTRY)
		return anole_error_code(EOPNOTSUPP, "%s is not a registry", bs->spec);
	if (!valid_reference(reference))
		return anole_error_code(EINVAL, "'%s' is not a tag or a sha256 digest", reference);
	strbuf_addf(&ct, "Content-Type: %s", media_type);
	headers[0] = ct.buf;
	url = manifest_url(bs, reference);
	q.url = url;
	anole_http_response_init(&r);
	do
		ret = judge(bs, &q, &r, bs_send(bs, &q, &r, CLS_PUSH, true), &attempt);
	while (ret == 1);
	if (!ret && (r.status < 200 || r.status > 299))
		ret = status_error(&q, &r, reference, false);
	anole_http_response_release(&r);
	free(url);
	strbuf_release(&ct);
	return ret;
}

/* Cross-repository mount: ask the registry to link a blob it already holds
 * in repository `from` into this one (no bytes move). 0 when mounted,
 * -ENOENT when the registry declined (the caller uploads instead). */
int anole_blobstore_mount_from(struct anole_blobstore *bs, const char *digest, const char *from)
{
	struct anole_http_request post = { .method = "POST", .body = "", .body_len = 0 };
	struct anole_http_response r;
	struct strbuf url = STRBUF_INIT;
	unsigned attempt = 0;
	char *esc_d, *esc_f;
	int ret;

	if (bs->kind != BS_REGISTRY || !from || !valid_repo(from))
		return -ENOENT;
	esc_d = anole_http_escape(digest);
	esc_f = anole_http_escape(from);
	strbuf_addf(&url, "%s/v2/%s/blobs/uploads/?mount=%s&from=%s", bs->base, bs->repo, esc_d,
		    esc_f);
	free(esc_d);
	free(esc_f);
	post.url = url.buf;
	anole_http_response_init(&r);
	do
		ret = judge(bs, &post, &r, bs_send(bs, &post, &r, CLS_PUSH, true), &attempt);
	while (ret == 1);
	if (!ret)
		ret = r.status == 201 ? 0 : -ENOENT;   /* 202: an upload session instead */
	anole_http_response_release(&r);
	strbuf_release(&url);
	return ret;
}
