/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What a remote diagnosis may run: the console (console/) checks a request
 * against this before queueing it, and the agent (monitor/) checks it again
 * before running it, so a console that is wrong or compromised still cannot
 * make an agent run anything else. A diagnosis is one `anole diag` tool with
 * --json, --duration within the limit and only the options listed here, each
 * with a typed, bounded value; the argument vector is built from these
 * tables, never from the request's text.
 */
#ifndef ANOLE_DIAG_POLICY_H
#define ANOLE_DIAG_POLICY_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "anole/strbuf.h"

/*
 * A name the console protocol carries (a host's, a user's): 1 to 64 of
 * A-Z a-z 0-9 . _ -, not starting with . or -. The agent checks its own
 * before registering; the console checks every one it is given.
 */
bool anole_console_name_valid(const char *s);

#define ANOLE_DIAG_MAX_DURATION 60      /* seconds */
#define ANOLE_DIAG_MAX_OUTPUT (1u << 20) /* bytes of --json output kept */

enum anole_diag_opt_type { ANOLE_DIAG_OPT_BOOL, ANOLE_DIAG_OPT_INT };

struct anole_diag_option {
	const char *name;    /* the JSON key: "pid", "milliseconds" */
	const char *flag;    /* the tool's option: "--pid", "-m" */
	enum anole_diag_opt_type type;
	long min, max;       /* ANOLE_DIAG_OPT_INT bounds */
	const char *help;
};

struct anole_diag_policy {
	const char *tool;
	const char *kind;    /* "histogram", "events", "stacks", "snapshot": how to show it */
	const struct anole_diag_option *options; /* ended by { NULL } */
};

/* Every tool a remote diagnosis may use, ended by { NULL }. */
extern const struct anole_diag_policy anole_diag_policies[];
const struct anole_diag_policy *anole_diag_policy_find(const char *tool);

/*
 * Check tool, duration (seconds) and options (a JSON object or NULL) and,
 * when argv is not NULL, build the arguments after "anole diag": TOOL
 * --json --duration N OPTIONS... (a NULL-terminated array of at most
 * ANOLE_DIAG_MAX_ARGS strings, to free with anole_diag_argv_free).
 * 0, or -EINVAL with why in err (an unknown tool, an option outside the
 * allow-list, a value out of range, a duration over the limit).
 */
#define ANOLE_DIAG_MAX_ARGS 64
int anole_diag_policy_check(const char *tool, json_t *duration, json_t *options,
			    char ***argv, struct strbuf *err);
void anole_diag_argv_free(char **argv);

/* The allow-list as JSON: [{"tool","kind","max_duration","options":[...]}]. */
json_t *anole_diag_policy_json(void);
#endif
