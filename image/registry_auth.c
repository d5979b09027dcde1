// SPDX-License-Identifier: Apache-2.0
/*
 * Registry authentication (registry_auth.h): docker config.json
 * credentials, WWW-Authenticate challenges (RFC 7235), bearer tokens from
 * the realm (the distribution token protocol), and the cache of the
 * Authorization values that worked.
 */
#include "registry_auth.h"

#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define TOKEN_BODY_MAX (256u << 10)
#define DEFAULT_TOKEN_LIFE 60          /* seconds, when the realm does not say */

struct registry_auth {
	char *host, *repo, *auth_file;
	bool plain_http;

	pthread_mutex_t lock;           /* the fields below */
	bool creds_loaded;
	char *basic;                    /* "Basic <base64 user:pass>" or NULL */
	char *creds_from;               /* the auth file it came from */
	char *authz[REGISTRY_ACCESS_N]; /* Authorization values that worked */
	uint64_t authz_expiry[REGISTRY_ACCESS_N]; /* monotonic ms; 0: none */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

bool registry_is_docker_hub(const char *host)
{
	return !strcasecmp(host, "docker.io") || !strcasecmp(host, "index.docker.io") ||
	       !strcasecmp(host, "registry-1.docker.io");
}

struct registry_auth *registry_auth_new(const char *host, const char *repo,
					const char *auth_file, bool plain_http)
{
	struct registry_auth *a = xcalloc(1, sizeof(*a));

	a->host = xstrdup(host);
	a->repo = xstrdup(repo ? repo : "");
	a->auth_file = auth_file ? xstrdup(auth_file) : NULL;
	a->plain_http = plain_http;
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

void registry_auth_free(struct registry_auth *a)
{
	if (!a)
		return;
	for (int i = 0; i < REGISTRY_ACCESS_N; i++)
		free(a->authz[i]);
	free(a->basic);
	free(a->creds_from);
	free(a->host);
	free(a->repo);
	free(a->auth_file);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* ------------------------------------------------------------ credentials */

/* Does a key of "auths" ("host:port", "https://host/v1/", ...) name our host? */
static bool auth_key_matches(const struct registry_auth *a, const char *key)
{
	const char *p = strstr(key, "://");
	size_t n;
	char *k;
	bool match;

	p = p ? p + 3 : key;
	n = strcspn(p, "/");
	k = xstrndup(p, n);
	match = !strcasecmp(k, a->host) ||
		(registry_is_docker_hub(a->host) && registry_is_docker_hub(k));
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
static char *auth_file_path(const struct registry_auth *a, bool *explicit)
{
	const char *env;
	char *p;

	*explicit = true;
	if (a->auth_file)
		return xstrdup(a->auth_file);
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
static char *get_basic(struct registry_auth *a)
{
	char *res;

	pthread_mutex_lock(&a->lock);
	if (!a->creds_loaded) {
		bool explicit;
		char *path = auth_file_path(a, &explicit);
		json_error_t jerr;
		json_t *root = NULL, *auths, *entry;
		const char *key;

		a->creds_loaded = true;
		if (path && (explicit || access(path, F_OK) == 0))
			root = json_load_file(path, 0, &jerr);
		if (path && !root && (explicit || access(path, F_OK) == 0))
			anole_warn("cannot read auth file %s: %s (going on without credentials)",
				   path, jerr.text);
		auths = json_object_get(root, "auths");
		json_object_foreach(auths, key, entry) {
			if (auth_key_matches(a, key) && (a->basic = basic_from_entry(entry)))
				break;
		}
		if (root && !a->basic && (json_object_get(root, "credsStore") ||
					  json_object_get(root, "credHelpers")))
			anole_debug("%s: credential helpers are not supported; no inline "
				    "credentials for %s", path, a->host);
		json_decref(root);
		a->creds_from = path;
	}
	res = a->basic ? xstrdup(a->basic) : NULL;
	pthread_mutex_unlock(&a->lock);
	return res;
}

char *registry_auth_cached(struct registry_auth *a, enum registry_access acc)
{
	char *res = NULL;

	pthread_mutex_lock(&a->lock);
	for (int c = (int)acc; c < REGISTRY_ACCESS_N && !res; c++) {  /* push also pulls */
		if (a->authz[c] && (!a->authz_expiry[c] || a->authz_expiry[c] > now_ms()))
			res = xstrdup(a->authz[c]);
	}
	pthread_mutex_unlock(&a->lock);
	return res;
}

static void authz_set(struct registry_auth *a, enum registry_access acc, const char *value,
		      uint64_t expiry)
{
	pthread_mutex_lock(&a->lock);
	free(a->authz[acc]);
	a->authz[acc] = xstrdup(value);
	a->authz_expiry[acc] = expiry;
	pthread_mutex_unlock(&a->lock);
}

/* ------------------------------------------------------------ challenges */

void registry_challenge_release(struct registry_challenge *ch)
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

static void challenge_set(struct registry_challenge *ch, const char *key, size_t klen,
			  struct strbuf *val)
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
unsigned registry_parse_challenges(const char *v, struct registry_challenge *ch, unsigned max)
{
	const char *p = v;
	unsigned n = 0;

	while (n < max) {
		struct registry_challenge *c = &ch[n];
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
					registry_challenge_release(c);
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

/* ------------------------------------------------------------ answers */

static int refuse(struct registry_auth_answer *ans, int err, enum anole_http_failure failure,
		  long status, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int refuse(struct registry_auth_answer *ans, int err, enum anole_http_failure failure,
		  long status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ans->error, sizeof(ans->error), fmt, ap);
	va_end(ap);
	ans->failure = failure;
	ans->status = status;
	return err;
}

static char *token_url(const struct registry_auth *a, const struct registry_challenge *ch,
		       enum registry_access acc)
{
	struct strbuf url = STRBUF_INIT;
	char *scope, *e;

	if (ch->scope && (acc == REGISTRY_PULL || strstr(ch->scope, "push"))) {
		scope = xstrdup(ch->scope);
	} else {
		scope = xmalloc(strlen(a->repo) + 40);
		sprintf(scope, "repository:%s:%s", a->repo,
			acc == REGISTRY_PUSH ? "pull,push" : "pull");
	}
	strbuf_addstr(&url, ch->realm);
	strbuf_addch(&url, strchr(ch->realm, '?') ? '&' : '?');
	if (ch->service) {
		e = anole_http_escape(ch->service);
		strbuf_addf(&url, "service=%s&", e);
		free(e);
	}
	e = anole_http_escape(scope);
	strbuf_addf(&url, "scope=%s", e);
	free(e);
	free(scope);
	return strbuf_detach(&url, NULL);
}

static int fetch_token(struct registry_auth *a, struct anole_http *http,
		       const struct registry_challenge *ch, enum registry_access acc,
		       struct registry_auth_answer *ans)
{
	struct strbuf body = STRBUF_INIT;
	struct anole_http_response tr;
	struct anole_http_request q = { .method = "GET", .follow_redirects = true,
					.body_out = &body, .body_max = TOKEN_BODY_MAX };
	char *basic = get_basic(a), *url;
	const char *token;
	json_t *doc = NULL;
	json_int_t life = DEFAULT_TOKEN_LIFE;
	int ret;

	if (!ch->realm || (strncasecmp(ch->realm, "https://", 8) &&
			   strncasecmp(ch->realm, "http://", 7))) {
		free(basic);
		return refuse(ans, -EACCES, ANOLE_HTTP_OK, 401,
			      "HTTP 401 with a Bearer challenge that has no http(s) realm");
	}
	if (!strncasecmp(ch->realm, "http://", 7) && !a->plain_http && basic) {
		anole_warn("not sending credentials for %s to the plain-http token realm %s",
			   a->host, ch->realm);
		free(basic);
		basic = NULL;
	}
	url = token_url(a, ch, acc);
	q.url = url;
	q.authorization = basic;
	anole_http_response_init(&tr);
	ret = anole_http_request(http, &q, &tr);
	ans->requests += tr.requests;
	ans->exchanged = true;
	if (ret) {
		ret = refuse(ans, ret, tr.failure, 0, "token request to %s: %s", ch->realm,
			     tr.error);
	} else if (tr.status == 401 || tr.status == 403) {
		ret = refuse(ans, -EACCES, ANOLE_HTTP_OK, tr.status,
			     "token request to %s: HTTP %ld (%s)", ch->realm, tr.status,
			     basic ? "the credentials were rejected" :
			     "anonymous access denied; no credentials for this registry");
	} else if (tr.status != 200) {
		ret = refuse(ans, -EACCES, ANOLE_HTTP_OK, tr.status,
			     "token request to %s: HTTP %ld %s", ch->realm, tr.status, tr.reason);
	} else if (!(doc = json_loadb(body.buf, body.len, 0, NULL)) ||
		   (!(token = json_string_value(json_object_get(doc, "token"))) &&
		    !(token = json_string_value(json_object_get(doc, "access_token")))) ||
		   !*token) {
		ret = refuse(ans, -EACCES, ANOLE_HTTP_OK, tr.status,
			     "token request to %s: no token in the answer", ch->realm);
	} else {
		json_t *ei = json_object_get(doc, "expires_in");
		uint64_t expiry;

		if (json_is_integer(ei) && json_integer_value(ei) > 0)
			life = json_integer_value(ei);
		if (life > 30)
			life -= 10;     /* renew a little early */
		expiry = now_ms() + (uint64_t)life * 1000;
		ans->authorization = xmalloc(strlen(token) + 8);
		sprintf(ans->authorization, "Bearer %s", token);
		authz_set(a, acc, ans->authorization, expiry);
	}
	json_decref(doc);
	anole_http_response_release(&tr);
	strbuf_release(&body);
	free(url);
	free(basic);
	return ret;
}

static int answer_basic(struct registry_auth *a, enum registry_access acc, const char *sent,
			struct registry_auth_answer *ans)
{
	char *basic = get_basic(a);

	if (!basic)
		return refuse(ans, -EACCES, ANOLE_HTTP_OK, 401,
			      "HTTP 401: %s wants credentials and %s has none for it", a->host,
			      a->creds_from ? a->creds_from : "no auth file");
	if (sent && !strcmp(sent, basic)) {
		free(basic);
		return refuse(ans, -EACCES, ANOLE_HTTP_OK, 401,
			      "HTTP 401: the credentials for %s from %s were rejected", a->host,
			      a->creds_from);
	}
	ans->exchanged = true;
	authz_set(a, acc, basic, 0);
	ans->authorization = basic;
	return 0;
}

int registry_auth_answer(struct registry_auth *a, struct anole_http *http,
			 const struct anole_http_response *r, enum registry_access acc,
			 const char *sent, struct registry_auth_answer *ans)
{
	struct registry_challenge bearer = { 0 }, basic = { 0 };
	bool have_bearer = false, have_basic = false;
	int ret;

	memset(ans, 0, sizeof(*ans));
	for (unsigned i = 0;; i++) {
		char *v = anole_http_header(r, "WWW-Authenticate", i);
		struct registry_challenge c[4];
		unsigned n;

		if (!v)
			break;
		n = registry_parse_challenges(v, c, ARRAY_SIZE(c));
		for (unsigned k = 0; k < n; k++) {
			if (!strcasecmp(c[k].scheme, "Bearer") && !have_bearer) {
				bearer = c[k];
				have_bearer = true;
			} else if (!strcasecmp(c[k].scheme, "Basic") && !have_basic) {
				basic = c[k];
				have_basic = true;
			} else {
				registry_challenge_release(&c[k]);
			}
		}
		free(v);
	}
	if (have_bearer) {
		if (sent && !strncmp(sent, "Bearer ", 7) && bearer.error &&
		    !strcmp(bearer.error, "insufficient_scope"))
			ret = refuse(ans, -EACCES, ANOLE_HTTP_OK, 401,
				     "HTTP 401: the token does not grant %s",
				     bearer.scope ? bearer.scope : "this access");
		else
			ret = fetch_token(a, http, &bearer, acc, ans);
	} else if (have_basic) {
		ret = answer_basic(a, acc, sent, ans);
	} else {
		ret = refuse(ans, -EACCES, ANOLE_HTTP_OK, 401,
			     "HTTP 401 without a Bearer or Basic challenge");
	}
	registry_challenge_release(&bearer);
	registry_challenge_release(&basic);
	return ret;
}
