/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Registry authentication for one registry host and repository: the
 * credentials of a docker config.json, the answer to a 401's
 * WWW-Authenticate challenges (a Bearer token from the realm, or Basic
 * credentials), and the Authorization values that worked, cached per kind
 * of access until they expire. Thread-safe.
 */
#ifndef ANOLE_REGISTRY_AUTH_H
#define ANOLE_REGISTRY_AUTH_H
#include "anole/http.h"

#include <stdbool.h>

enum registry_access { REGISTRY_PULL, REGISTRY_PUSH, REGISTRY_ACCESS_N };

struct registry_auth;

/* host: "host[:port]" as named by the user (credentials are looked up by
 * it); repo: the repository (token scopes); auth_file: NULL for the
 * defaults ($REGISTRY_AUTH_FILE, $DOCKER_CONFIG, ~/.docker/config.json);
 * plain_http: the registry itself is spoken to over plain HTTP. */
struct registry_auth *registry_auth_new(const char *host, const char *repo,
					const char *auth_file, bool plain_http);
void registry_auth_free(struct registry_auth *a);

/* The Authorization value to send first (a copy), or NULL. A push token
 * also serves pulls. */
char *registry_auth_cached(struct registry_auth *a, enum registry_access acc);

/* The outcome of answering a challenge. */
struct registry_auth_answer {
	char *authorization;            /* the value to send now (owned) */
	unsigned requests;              /* HTTP requests made (token realm) */
	bool exchanged;                 /* a token fetched or Basic credentials sent */
	/* on failure, what the retry judgement needs and the reason */
	enum anole_http_failure failure; /* of the token request, or ANOLE_HTTP_OK
	                                    when `status` ended it */
	long status;
	char error[256];
};

/*
 * Answer the 401 in r; sent is the Authorization it refused (or NULL).
 * 0 with ans->authorization set, or a negative errno with ans->error,
 * ans->failure and ans->status set.
 */
int registry_auth_answer(struct registry_auth *a, struct anole_http *http,
			 const struct anole_http_response *r, enum registry_access acc,
			 const char *sent, struct registry_auth_answer *ans);

/* docker.io, index.docker.io, registry-1.docker.io */
bool registry_is_docker_hub(const char *host);

/* The challenges of one WWW-Authenticate value (exposed for tests). */
struct registry_challenge {
	char scheme[16];
	char *realm, *service, *scope, *error;
};
unsigned registry_parse_challenges(const char *value, struct registry_challenge *ch,
				   unsigned max);
void registry_challenge_release(struct registry_challenge *ch);
#endif
