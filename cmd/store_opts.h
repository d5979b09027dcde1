/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The options of every command that talks to a blob store or a registry
 * (anole blob *, anole image convert/pull/push/mount): one spelling, one
 * range, one help text.
 */
#ifndef ANOLE_CMD_STORE_OPTS_H
#define ANOLE_CMD_STORE_OPTS_H
#include "anole/blobstore.h"

#include <getopt.h>
#include <stddef.h>

/* above every command's own option codes */
enum { STORE_OPT_RETRIES = 0x1000, STORE_OPT_TIMEOUT, STORE_OPT_BACKOFF, STORE_OPT_INSECURE,
       STORE_OPT_AUTH_FILE, STORE_OPT_CA_FILE, STORE_OPT_REGISTRIES_CONF };

#define STORE_LONGOPTS \
	{ "retries", required_argument, NULL, STORE_OPT_RETRIES }, \
	{ "timeout", required_argument, NULL, STORE_OPT_TIMEOUT }, \
	{ "backoff", required_argument, NULL, STORE_OPT_BACKOFF }, \
	{ "insecure-registry", required_argument, NULL, STORE_OPT_INSECURE }, \
	{ "auth-file", required_argument, NULL, STORE_OPT_AUTH_FILE }, \
	{ "ca-file", required_argument, NULL, STORE_OPT_CA_FILE }, \
	{ "registries-conf", required_argument, NULL, STORE_OPT_REGISTRIES_CONF }

#define STORE_HELP \
"      --retries N        extra attempts after a transient failure (default 4)\n" \
"      --timeout MS       limit for each request, in milliseconds (default\n" \
"                         30000); a request that receives nothing for\n" \
"                         min(MS, 10000) ms is abandoned too\n" \
"      --backoff MS       delay before the first retry, doubled for each\n" \
"                         further one up to 5 s (default 100)\n" \
"      --insecure-registry HOST[:PORT]\n" \
"                         speak plain HTTP to this registry (repeatable;\n" \
"                         localhost and 127.0.0.0/8 always are)\n" \
"      --auth-file FILE   registry credentials, docker config.json format\n" \
"                         (default: $REGISTRY_AUTH_FILE, $DOCKER_CONFIG/config.json,\n" \
"                         ~/.docker/config.json)\n" \
"      --ca-file FILE     verify https servers against these PEM CA certificates\n" \
"                         (default: $SSL_CERT_FILE, else the system's)\n" \
"      --registries-conf FILE\n" \
"                         registry mirrors, locations, insecure and blocked\n" \
"                         registries, containers-registries.conf(5) format\n" \
"                         (default: $CONTAINERS_REGISTRIES_CONF, else\n" \
"                         /etc/containers/registries.conf and its .d drop-ins)\n"

struct store_cli {
	struct anole_blobstore_opts o;
	const char **insecure;
	size_t ninsecure, insecure_alloc;
};

/*
 * Apply opt, one the command's own switch did not take: 0 when it is one of
 * STORE_LONGOPTS; else 2, a usage error reported as "anole CMD: ..." (cmd:
 * "image mount"), an unknown option included.
 */
int store_cli_opt(struct store_cli *c, const char *cmd, int opt, const char *arg);
void store_cli_release(struct store_cli *c);

#endif
