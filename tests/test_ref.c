// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of the image-reference parser (image/ref.c): every transport,
 * the parts each yields, and each kind of malformed reference refused with
 * a message naming the wrong part. TAP output, like test_core.
 */
#include "anole/error.h"
#include "anole/ref.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static char last_error[512];

static void keep_log(enum anole_log_level level, const char *msg, void *opaque)
{
	(void)level;
	(void)opaque;
	snprintf(last_error, sizeof(last_error), "%s", msg);
}

static bool eq(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

/* A reference that parses, and the parts it must give. */
static void ok(const char *text, enum anole_ref_transport plain, enum anole_ref_transport t,
	       const char *path, const char *registry, const char *repo, const char *tag,
	       const char *digest)
{
	struct anole_ref r;
	int ret = anole_ref_parse(text, plain, &r);

	CHECK(!ret && r.transport == t && eq(r.path, path) && eq(r.registry, registry) &&
	      eq(r.repository, repo) && eq(r.tag, tag) && eq(r.digest, digest),
	      "'%s' parses (%d: transport %d path %s registry %s repository %s tag %s digest %s)",
	      text, ret, r.transport, r.path, r.registry, r.repository, r.tag, r.digest);
	anole_ref_free(&r);
}

/* A reference refused, with a message holding `says`. */
static void bad(const char *text, enum anole_ref_transport plain, const char *says)
{
	struct anole_ref r;
	int ret;

	last_error[0] = '\0';
	ret = anole_ref_parse(text, plain, &r);
	CHECK(ret == -EINVAL && strstr(last_error, says) && !r.path && !r.registry && !r.tag,
	      "'%s' is refused naming '%s' (%d: %s)", text, says, ret, last_error);
	anole_ref_free(&r);
}

#define D0 "sha256:0000000000000000000000000000000000000000000000000000000000000000"

int main(void)
{
	struct anole_ref r, s;
	char *text;

	setvbuf(stdout, NULL, _IOLBF, 0);
	anole_log_set_sink(keep_log, NULL);

	/* oci: */
	ok("oci:layout", ANOLE_REF_PATH, ANOLE_REF_OCI, "layout", NULL, NULL, NULL, NULL);
	ok("oci:layout:v1", ANOLE_REF_PATH, ANOLE_REF_OCI, "layout", NULL, NULL, "v1", NULL);
	ok("oci:/srv/a:b/layout", ANOLE_REF_PATH, ANOLE_REF_OCI, "/srv/a:b/layout", NULL, NULL, NULL, NULL);
	ok("oci:/srv/a:b/layout:1.0_rc-2", ANOLE_REF_PATH, ANOLE_REF_OCI, "/srv/a:b/layout", NULL, NULL,
	   "1.0_rc-2", NULL);
	ok("layout:v1", ANOLE_REF_OCI, ANOLE_REF_OCI, "layout", NULL, NULL, "v1", NULL);
	bad("oci:", ANOLE_REF_PATH, "no layout directory");
	bad("oci::v1", ANOLE_REF_PATH, "no layout directory");
	bad("oci:dir:", ANOLE_REF_PATH, "empty tag");
	bad("oci:dir:-x", ANOLE_REF_PATH, "the tag is not");
	bad("oci:dir:a b", ANOLE_REF_PATH, "the tag is not");

	/* a plain path */
	ok("image.erofs", ANOLE_REF_PATH, ANOLE_REF_PATH, "image.erofs", NULL, NULL, NULL, NULL);
	ok("./dir:with:colons/img", ANOLE_REF_PATH, ANOLE_REF_PATH, "./dir:with:colons/img", NULL, NULL,
	   NULL, NULL);
	bad("", ANOLE_REF_PATH, "empty image reference");
	bad("http://host/x", ANOLE_REF_PATH, "unknown transport");
	bad("dokcer://host/x", ANOLE_REF_OCI, "unknown transport");

	/* docker:// */
	ok("docker://localhost:5000/a/b", ANOLE_REF_PATH, ANOLE_REF_DOCKER, NULL, "localhost:5000", "a/b",
	   NULL, NULL);
	ok("docker://127.0.0.1:5000/a/b:v2", ANOLE_REF_PATH, ANOLE_REF_DOCKER, NULL, "127.0.0.1:5000", "a/b",
	   "v2", NULL);
	ok("docker://[::1]:5000/x__y.z-w/q@" D0, ANOLE_REF_PATH, ANOLE_REF_DOCKER, NULL, "[::1]:5000",
	   "x__y.z-w/q", NULL, D0);
	ok("docker://r.example.com/ns/repo:1.0@" D0, ANOLE_REF_PATH, ANOLE_REF_DOCKER, NULL,
	   "r.example.com", "ns/repo", "1.0", D0);
	bad("docker://", ANOLE_REF_PATH, "no repository");
	bad("docker://host", ANOLE_REF_PATH, "no repository");
	bad("docker:///repo", ANOLE_REF_PATH, "no registry host");
	bad("docker://host/", ANOLE_REF_PATH, "the repository is empty");
	bad("docker://host/a//b", ANOLE_REF_PATH, "empty component");
	bad("docker://host/a/", ANOLE_REF_PATH, "ends with '/'");
	bad("docker://host/Upper", ANOLE_REF_PATH, "upper-case");
	bad("docker://host/a..b", ANOLE_REF_PATH, "separator");
	bad("docker://host/a___b", ANOLE_REF_PATH, "separator");
	bad("docker://host/-a", ANOLE_REF_PATH, "does not start with");
	bad("docker://host/a$b", ANOLE_REF_PATH, "outside [a-z0-9._/-]");
	bad("docker://ho_st/a", ANOLE_REF_PATH, "host character");
	bad("docker://-host/a", ANOLE_REF_PATH, "empty label or one starting with '-'");
	bad("docker://host:0/a", ANOLE_REF_PATH, "port");
	bad("docker://host:65536/a", ANOLE_REF_PATH, "port");
	bad("docker://host:/a", ANOLE_REF_PATH, "empty port");
	bad("docker://[::1/a", ANOLE_REF_PATH, "without ']'");
	bad("docker://host/a:", ANOLE_REF_PATH, "the tag is not");
	bad("docker://host/a:.x", ANOLE_REF_PATH, "the tag is not");
	bad("docker://host/a@sha256:00", ANOLE_REF_PATH, "digest");
	bad("docker://host/a@md5:" "0000000000000000000000000000000000000000000000000000000000000000",
	    ANOLE_REF_PATH, "digest");
	{
		char tag[ANOLE_REF_TAG_MAX + 64];

		snprintf(tag, sizeof(tag), "docker://h/r:%0*d", ANOLE_REF_TAG_MAX, 0);
		ok(tag, ANOLE_REF_PATH, ANOLE_REF_DOCKER, NULL, "h", "r", tag + strlen("docker://h/r:"), NULL);
		snprintf(tag, sizeof(tag), "docker://h/r:%0*d", ANOLE_REF_TAG_MAX + 1, 0);
		bad(tag, ANOLE_REF_PATH, "the tag is not");
	}

	/* archives */
	ok("oci-archive:img.tar", ANOLE_REF_PATH, ANOLE_REF_OCI_ARCHIVE, "img.tar", NULL, NULL, NULL, NULL);
	ok("oci-archive:img.tar:v1", ANOLE_REF_PATH, ANOLE_REF_OCI_ARCHIVE, "img.tar", NULL, NULL, "v1", NULL);
	ok("docker-archive:img.tar:reg:5000/a/b:v1", ANOLE_REF_PATH, ANOLE_REF_DOCKER_ARCHIVE, "img.tar",
	   NULL, NULL, "reg:5000/a/b:v1", NULL);
	bad("docker-archive:", ANOLE_REF_PATH, "no archive file");
	bad("docker-archive:img.tar:a b", ANOLE_REF_PATH, "image name");

	/* helpers */
	anole_ref_parse("docker://127.0.0.1:5000/a/b@" D0, ANOLE_REF_PATH, &r);
	text = anole_ref_store(&r);
	CHECK(!strcmp(text, "docker://127.0.0.1:5000/a/b"), "store spec of a registry reference (%s)", text);
	free(text);
	CHECK(!strcmp(anole_ref_reference(&r), D0), "a digest is what the registry is asked for");
	anole_ref_parse("docker://127.0.0.1:5000/c:t", ANOLE_REF_PATH, &s);
	CHECK(anole_ref_same_registry(&r, &s), "same registry");
	CHECK(!strcmp(anole_ref_reference(&s), "t"), "else the tag");
	anole_ref_free(&s);
	anole_ref_parse("docker://127.0.0.1:5001/c", ANOLE_REF_PATH, &s);
	CHECK(!anole_ref_same_registry(&r, &s), "another port is another registry");
	CHECK(!strcmp(anole_ref_reference(&s), "latest"), "else latest");
	anole_ref_free(&s);
	anole_ref_free(&r);
	anole_ref_parse("oci:/a:b/c:v1", ANOLE_REF_PATH, &r);
	text = anole_ref_format(&r);
	CHECK(!strcmp(text, "oci:/a:b/c:v1"), "format gives the reference back (%s)", text);
	free(text);
	anole_ref_free(&r);

	printf("1..%d\n", ntests);
	printf("# %d tests, %d passed, %d failed\n", ntests, ntests - nfailed, nfailed);
	return nfailed ? 1 : 0;
}
