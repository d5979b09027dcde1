/* SPDX-License-Identifier: Apache-2.0 */
/*
 * containers-registries.conf(5): which registry serves an image name, with
 * which mirrors, over plain HTTP or not, or not at all (blocked). The
 * version 2 format ([[registry]] tables with prefix, location, insecure,
 * blocked, mirror-by-digest-only and [[registry.mirror]] with location,
 * insecure, pull-from-mirror) and the version 1 lists ([registries.insecure],
 * [registries.block]). Short-name settings (unqualified-search-registries,
 * short-name-mode, [aliases]) and credential-helpers are read and left to
 * the tools that resolve short names: anole takes fully qualified names.
 */
#ifndef ANOLE_REGISTRIES_CONF_H
#define ANOLE_REGISTRIES_CONF_H
#include <stdbool.h>
#include <stddef.h>

struct registries_conf;

/*
 * Read the configuration: path when given (that file alone, which must
 * exist); else $CONTAINERS_REGISTRIES_CONF; else
 * ~/.config/containers/registries.conf when it exists, else
 * /etc/containers/registries.conf (absent: empty), each followed by the
 * *.conf drop-ins of its registries.conf.d directory in name order (a
 * drop-in's [[registry]] replaces the one with the same prefix). Errors
 * name the file and line.
 */
int registries_conf_load(struct registries_conf **out, const char *path);
/* An empty configuration, and one more file's text merged into it (as a
 * drop-in): for tests and the fuzzer. */
struct registries_conf *registries_conf_new(void);
int registries_conf_add(struct registries_conf *rc, const char *text, size_t len,
			const char *name);
void registries_conf_free(struct registries_conf *rc);

struct registry_mirror {
	char *name;                     /* "host[:port]/repo" of the mirror */
	bool insecure;
	bool tags, digests;             /* may serve manifests by tag / by digest */
};

/* What the configuration says for one image name. */
struct registry_plan {
	bool blocked;
	char *origin;                   /* "host[:port]/repo" after location rewriting */
	bool insecure;                  /* of the origin */
	struct registry_mirror *mirrors;
	size_t nmirrors;
	char *from;                     /* "FILE:LINE" of the [[registry]] applied,
	                                   NULL when none */
};

/* The plan for name ("host[:port]/repo", no tag): the [[registry]] whose
 * prefix is the longest match, or the name as it is. Fails when a rewrite
 * leaves no repository. */
int registries_conf_resolve(const struct registries_conf *rc, const char *name,
			    struct registry_plan *plan);
void registry_plan_release(struct registry_plan *plan);
#endif
