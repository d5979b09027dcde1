// SPDX-License-Identifier: Apache-2.0
/*
 * Image references (anole/ref.h). The grammar of each part follows the
 * OCI distribution spec (repository components, tags) and RFC 3986 (a
 * host, a bracketed IPv6 address, a port); the reference is untrusted text
 * from the command line, so every part is checked here, once, and nothing
 * below has to guess at a malformed one.
 */
#include "anole/ref.h"
#include "anole/blobstore.h"
#include "anole/error.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *prefix;
	enum anole_ref_transport transport;
} prefixes[] = {
	{ "docker://", ANOLE_REF_DOCKER },
	{ "oci-archive:", ANOLE_REF_OCI_ARCHIVE },
	{ "docker-archive:", ANOLE_REF_DOCKER_ARCHIVE },
	{ "oci:", ANOLE_REF_OCI },
};

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* [A-Za-z0-9_][A-Za-z0-9_.-]{0,127} */
static bool valid_tag(const char *t, size_t n)
{
	if (!n || n > ANOLE_REF_TAG_MAX || !(is_alnum(t[0]) || t[0] == '_'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(is_alnum(t[i]) || t[i] == '_' || t[i] == '.' || t[i] == '-'))
			return false;
	return true;
}

/*
 * path-component := [a-z0-9]+ (separator [a-z0-9]+)*
 * separator      := [_.] | __ | [-]+
 * repository     := path-component (/ path-component)*
 */
static const char *repo_error(const char *r, size_t n)
{
	size_t i = 0;

	if (!n)
		return "is empty";
	while (i < n) {
		if (!is_lower_alnum(r[i]))
			return r[i] == '/' ? "has an empty component" :
			       (r[i] >= 'A' && r[i] <= 'Z') ? "has an upper-case letter (repositories are lower case)" :
			       "has a component that does not start with [a-z0-9]";
		while (i < n && is_lower_alnum(r[i]))
			i++;
		if (i == n)
			break;
		if (r[i] == '/') {
			i++;
			if (i == n)
				return "ends with '/'";
			continue;
		}
		if (r[i] == '.' || r[i] == '_') {
			i += (r[i] == '_' && i + 1 < n && r[i + 1] == '_') ? 2 : 1;
		} else if (r[i] == '-') {
			while (i < n && r[i] == '-')
				i++;
		} else if (r[i] >= 'A' && r[i] <= 'Z') {
			return "has an upper-case letter (repositories are lower case)";
		} else {
			return "has a character outside [a-z0-9._/-]";
		}
		if (i == n || !is_lower_alnum(r[i]))
			return "has a separator ('.', '_', '__' or '-') not followed by [a-z0-9]";
	}
	return NULL;
}

/* HOST[:PORT]: DNS labels or an IPv4 address, or [IPv6]; port 1..65535 */
static const char *host_error(const char *h, size_t n)
{
	size_t end = n;
	const char *colon;

	if (!n)
		return "no registry host";
	if (h[0] == '[') {
		const char *rb = memchr(h, ']', n);

		if (!rb)
			return "an IPv6 address without ']'";
		if (rb == h + 1)
			return "an empty IPv6 address";
		for (const char *p = h + 1; p < rb; p++)
			if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') ||
			      (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
				return "a character outside an IPv6 address in '[...]'";
		end = (size_t)(rb - h) + 1;
		if (end < n && h[end] != ':')
			return "text after the IPv6 address that is not ':PORT'";
	} else {
		colon = memchr(h, ':', n);
		end = colon ? (size_t)(colon - h) : n;
		if (!end)
			return "no registry host";
		for (size_t i = 0; i < end; i++) {
			char c = h[i];

			if (!(is_alnum(c) || c == '.' || c == '-'))
				return "a host character outside [A-Za-z0-9.-]";
			if ((c == '.' || c == '-') && (i == 0 || h[i - 1] == '.'))
				return "a host with an empty label or one starting with '-'";
		}
		if (h[end - 1] == '.' || h[end - 1] == '-')
			return "a host ending in '.' or '-'";
	}
	if (end < n) {          /* ":PORT" */
		unsigned long port = 0;

		if (end + 1 == n)
			return "an empty port";
		for (size_t i = end + 1; i < n; i++) {
			if (h[i] < '0' || h[i] > '9' || i - end > 5)
				return "a port that is not a number from 1 to 65535";
			port = port * 10 + (unsigned long)(h[i] - '0');
		}
		if (!port || port > 65535)
			return "a port that is not a number from 1 to 65535";
	}
	return NULL;
}

static int bad(const char *text, const char *what)
{
	return anole_error_code(EINVAL, "image reference '%s': %s", text, what);
}

/* docker://HOST[:PORT]/REPO[:TAG][@DIGEST] */
static int parse_docker(const char *text, const char *s, struct anole_ref *ref)
{
	const char *slash = strchr(s, '/'), *at = strchr(s, '@'), *name_end, *colon;
	const char *err;

	if (!slash || (at && at < slash))
		return bad(text, "no repository (docker://HOST[:PORT]/REPO[:TAG][@DIGEST])");
	if ((err = host_error(s, (size_t)(slash - s))))
		return bad(text, err);
	name_end = at ? at : s + strlen(s);
	if (at && anole_digest_ref_check(at + 1))  /* sha256: the one anole verifies with */
		return bad(text, "the digest after '@' is not sha256:<64 lower-case hex digits>");
	/* a ':' after the last '/' of the name starts the tag */
	colon = NULL;
	for (const char *p = name_end; p > slash; p--)
		if (p[-1] == '/')
			break;
		else if (p[-1] == ':')
			colon = p - 1;
	if ((size_t)((colon ? colon : name_end) - s) > ANOLE_REF_NAME_MAX)
		return bad(text, "HOST/REPO is longer than 255 characters");
	if ((err = repo_error(slash + 1, (size_t)((colon ? colon : name_end) - slash - 1))))
		return anole_error_code(EINVAL, "image reference '%s': the repository %s", text, err);
	if (colon && !valid_tag(colon + 1, (size_t)(name_end - colon - 1)))
		return bad(text, "the tag is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}");
	ref->registry = xstrndup(s, (size_t)(slash - s));
	ref->repository = xstrndup(slash + 1, (size_t)((colon ? colon : name_end) - slash - 1));
	if (colon)
		ref->tag = xstrndup(colon + 1, (size_t)(name_end - colon - 1));
	if (at)
		ref->digest = xstrdup(at + 1);
	return 0;
}

/*
 * DIR[:TAG] (oci:, oci-archive:): a ':' after the last '/' starts the tag,
 * so a directory may hold colons ("oci:/srv/a:b/layout:v1").
 * FILE[:NAME] (docker-archive:): NAME is what `docker save` recorded,
 * REPO:TAG or TAG, and may itself hold ':' and '/', so the first ':'
 * ends the file.
 */
static int parse_path_tag(const char *text, const char *s, enum anole_ref_transport t,
			  struct anole_ref *ref)
{
	const char *colon;
	size_t plen;

	if (t == ANOLE_REF_DOCKER_ARCHIVE) {
		colon = strchr(s, ':');
	} else {
		const char *slash = strrchr(s, '/');

		colon = strchr(slash ? slash : s, ':');
	}
	plen = colon ? (size_t)(colon - s) : strlen(s);
	if (!plen)
		return bad(text, t == ANOLE_REF_OCI ? "no layout directory" : "no archive file");
	if (plen >= PATH_MAX)
		return bad(text, "the path is longer than PATH_MAX");
	if (colon && t == ANOLE_REF_DOCKER_ARCHIVE) {
		const char *name = colon + 1;
		size_t n = strlen(name);

		if (!n || n > ANOLE_REF_NAME_MAX + 1 + ANOLE_REF_TAG_MAX)
			return bad(text, "the image name after the file is empty or too long");
		for (size_t i = 0; i < n; i++)
			if ((unsigned char)name[i] <= ' ' || name[i] == 0x7f || name[i] == '@')
				return bad(text, "the image name after the file has a space, control character or '@'");
	} else if (colon && !valid_tag(colon + 1, strlen(colon + 1))) {
		return bad(text, colon[1] ? "the tag is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}" :
				  "an empty tag after ':'");
	}
	ref->path = xstrndup(s, plen);
	if (colon)
		ref->tag = xstrdup(colon + 1);
	return 0;
}

int anole_ref_parse(const char *text, enum anole_ref_transport plain, struct anole_ref *ref)
{
	enum anole_ref_transport t = plain;
	const char *s = text;
	int ret;

	memset(ref, 0, sizeof(*ref));
	if (!text || !*text)
		return anole_error_code(EINVAL, "an empty image reference");
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		size_t n = strlen(prefixes[i].prefix);

		if (!strncmp(text, prefixes[i].prefix, n)) {
			t = prefixes[i].transport;
			s = text + n;
			break;
		}
	}
	if (s == text && t == ANOLE_REF_DOCKER)
		return bad(text, "a registry reference starts with docker://");
	if (s == text && (t == ANOLE_REF_OCI_ARCHIVE || t == ANOLE_REF_DOCKER_ARCHIVE))
		t = ANOLE_REF_PATH;     /* an archive always names its transport */
	if (s == text) {
		const char *sep = strstr(text, "://");

		/* "dokcer://h/r", "http://h/x": a transport anole does not know,
		 * not a file name with "://" in it */
		if (sep && !memchr(text, '/', (size_t)(sep - text)))
			return bad(text, "unknown transport (oci:, docker://, oci-archive:, docker-archive:)");
	}
	if (s == text && t == ANOLE_REF_PATH) {
		if (strlen(text) >= PATH_MAX)
			return bad(text, "the path is longer than PATH_MAX");
		ref->transport = ANOLE_REF_PATH;
		ref->path = xstrdup(text);
		return 0;
	}
	ref->transport = t;
	ret = t == ANOLE_REF_DOCKER ? parse_docker(text, s, ref) : parse_path_tag(text, s, t, ref);
	if (ret)
		anole_ref_free(ref);
	return ret;
}

void anole_ref_free(struct anole_ref *ref)
{
	free(ref->path);
	free(ref->registry);
	free(ref->repository);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof(*ref));
}

char *anole_ref_store(const struct anole_ref *ref)
{
	struct strbuf s = STRBUF_INIT;

	strbuf_addf(&s, "docker://%s/%s", ref->registry ? ref->registry : "",
		    ref->repository ? ref->repository : "");
	return strbuf_detach(&s, NULL);
}

const char *anole_ref_reference(const struct anole_ref *ref)
{
	return ref->digest ? ref->digest : ref->tag ? ref->tag : "latest";
}

char *anole_ref_format(const struct anole_ref *ref)
{
	struct strbuf s = STRBUF_INIT;

	switch (ref->transport) {
	case ANOLE_REF_DOCKER:
		strbuf_addf(&s, "docker://%s/%s", ref->registry, ref->repository);
		break;
	case ANOLE_REF_OCI: strbuf_addf(&s, "oci:%s", ref->path); break;
	case ANOLE_REF_OCI_ARCHIVE: strbuf_addf(&s, "oci-archive:%s", ref->path); break;
	case ANOLE_REF_DOCKER_ARCHIVE: strbuf_addf(&s, "docker-archive:%s", ref->path); break;
	case ANOLE_REF_PATH: strbuf_addstr(&s, ref->path); break;
	}
	if (ref->tag)
		strbuf_addf(&s, ":%s", ref->tag);
	if (ref->digest)
		strbuf_addf(&s, "@%s", ref->digest);
	return strbuf_detach(&s, NULL);
}

bool anole_ref_same_registry(const struct anole_ref *a, const struct anole_ref *b)
{
	return a->transport == ANOLE_REF_DOCKER && b->transport == ANOLE_REF_DOCKER &&
	       !strcmp(a->registry, b->registry);
}
