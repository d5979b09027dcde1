// SPDX-License-Identifier: Apache-2.0
/*
 * `anole console`: the operations console (docs/anole-console.md).
 *   anole console serve --listen ADDR --data DIR [options]
 *   anole console user add NAME --role ROLE --data DIR   (password on stdin)
 *   anole console token create --data DIR [--note TEXT] [--json]
 * Options and output only: the console itself is console/.
 */
#include "anole.h"
#include "anole/daemon.h"
#include "anole/error.h"
#include "anole/xalloc.h"
#include "console.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int usage_error(const char *verb, const char *msg)
{
	fprintf(stderr, "anole console %s: %s\nTry 'anole console %s --help'.\n", verb, msg, verb);
	return 2;
}

static int parse_seconds(const char *s, double min, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min) || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static const char serve_help[] =
"usage: anole console serve --listen ADDR --data DIR [options]\n"
"\n"
"Serve the operations console: the JSON API under /api/v1/ and the web page,\n"
"for agents started with 'anole monitor --console URL --token-file F'. Hosts,\n"
"users, sessions, agent tokens, diagnoses, alert rules and events, the audit\n"
"log and a short-retention metric store are kept in DIR/console.db (SQLite).\n"
"\n"
"options:\n"
"  -l, --listen ADDR          HTTP address: HOST:PORT, [IPv6]:PORT or :PORT\n"
"      --data DIR             the console's data directory (created, mode 0700)\n"
"      --tls-listen ADDR      also serve HTTPS there, with:\n"
"      --tls-cert FILE        the certificate chain (PEM)\n"
"      --tls-key FILE         its private key (PEM)\n"
"      --web-dir DIR          the web page's files (default: the installed ones)\n"
"      --prometheus URL       Prometheus is the metric store: charts read its\n"
"                             /api/v1/query_range, DIR/prometheus/targets.json\n"
"                             lists the agents for its file_sd_configs\n"
"      --scrape-interval S    seconds between scrapes of each agent (default 15)\n"
"      --retention S          seconds of samples kept (default 86400)\n"
"      --heartbeat-interval S seconds between agent heartbeats (default 5); an\n"
"                             idle agent's is held that long, answered at once\n"
"                             when a diagnosis is queued for it\n"
"      --missed-heartbeats N  a host is down after N missed heartbeats (default 3)\n"
"      --pid-file FILE        write the console's pid there\n"
"      --port-file FILE       write the bound HTTP port there (for --listen :0)\n"
"  -v, --verbose              more log\n"
"  -h, --help                 this help\n"
"\n"
"SIGINT, SIGTERM or SIGHUP stop it. Create users with 'anole console user add'\n"
"and agent tokens with 'anole console token create'.\n";

enum { OPT_DATA = 256, OPT_TLS_LISTEN, OPT_TLS_CERT, OPT_TLS_KEY, OPT_WEB_DIR, OPT_PROMETHEUS,
       OPT_SCRAPE, OPT_RETENTION, OPT_HEARTBEAT, OPT_MISSED, OPT_PID_FILE, OPT_PORT_FILE,
       OPT_ROLE, OPT_NOTE, OPT_JSON };

static int console_serve_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "data", required_argument, NULL, OPT_DATA },
		{ "tls-listen", required_argument, NULL, OPT_TLS_LISTEN },
		{ "tls-cert", required_argument, NULL, OPT_TLS_CERT },
		{ "tls-key", required_argument, NULL, OPT_TLS_KEY },
		{ "web-dir", required_argument, NULL, OPT_WEB_DIR },
		{ "prometheus", required_argument, NULL, OPT_PROMETHEUS },
		{ "scrape-interval", required_argument, NULL, OPT_SCRAPE },
		{ "retention", required_argument, NULL, OPT_RETENTION },
		{ "heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT },
		{ "missed-heartbeats", required_argument, NULL, OPT_MISSED },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "port-file", required_argument, NULL, OPT_PORT_FILE },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct console_serve_opts o = { .scrape_interval = 15, .retention = 86400,
					.heartbeat_interval = 5, .missed_heartbeats = 3 };
	double missed;
	int opt, verbose = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "l:vh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'l': o.listen = optarg; break;
		case OPT_DATA: o.data_dir = optarg; break;
		case OPT_TLS_LISTEN: o.tls_listen = optarg; break;
		case OPT_TLS_CERT: o.tls_cert = optarg; break;
		case OPT_TLS_KEY: o.tls_key = optarg; break;
		case OPT_WEB_DIR: o.web_dir = optarg; break;
		case OPT_PROMETHEUS:
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8))
				return usage_error("serve", "--prometheus takes an http:// or https:// URL");
			o.prometheus = optarg;
			break;
		case OPT_SCRAPE:
			if (parse_seconds(optarg, 1, 3600, &o.scrape_interval))
				return usage_error("serve", "--scrape-interval takes 1 to 3600 seconds");
			break;
		case OPT_RETENTION:
			if (parse_seconds(optarg, 60, 90 * 86400, &o.retention))
				return usage_error("serve", "--retention takes 60 to 7776000 seconds");
			break;
		case OPT_HEARTBEAT:
			if (parse_seconds(optarg, 0.2, 600, &o.heartbeat_interval))
				return usage_error("serve", "--heartbeat-interval takes 0.2 to 600 seconds");
			break;
		case OPT_MISSED:
			if (parse_seconds(optarg, 1, 100, &missed) || missed != (double)(unsigned)missed)
				return usage_error("serve", "--missed-heartbeats takes 1 to 100");
			o.missed_heartbeats = (unsigned)missed;
			break;
		case OPT_PID_FILE: o.pid_file = optarg; break;
		case OPT_PORT_FILE: o.port_file = optarg; break;
		case 'v': verbose++; break;
		case 'h': fputs(serve_help, stdout); return 0;
		default: return usage_error("serve", "bad option");
		}
	}
	if (optind < argc)
		return usage_error("serve", "takes no arguments");
	if (!o.listen || !o.data_dir)
		return usage_error("serve", "--listen ADDR and --data DIR are required");
	if (!o.tls_listen != !o.tls_cert || !o.tls_cert != !o.tls_key)
		return usage_error("serve", "--tls-listen, --tls-cert and --tls-key go together");
	anole_log_set_level(verbose ? ANOLE_LOG_DEBUG : ANOLE_LOG_INFO);
	return console_serve(&o) ? 1 : 0;
}

static const char user_help[] =
"usage: anole console user add NAME --role viewer|operator|admin --data DIR\n"
"\n"
"Create user NAME (or change its role and password), the password read from\n"
"standard input (one line). Only a salted scrypt hash of it is stored. Roles:\n"
"viewers read; operators also run diagnoses and edit alert rules; admins also\n"
"manage users and agent tokens. Changing a user ends its sessions.\n"
"\n"
"options:\n"
"      --role ROLE   viewer, operator or admin\n"
"      --data DIR    the console's data directory\n"
"  -h, --help        this help\n";

static int console_user_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "role", required_argument, NULL, OPT_ROLE },
		{ "data", required_argument, NULL, OPT_DATA },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = NULL, *data = NULL, *name;
	char password[1100];
	size_t n;
	int opt, ret;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_ROLE: role = optarg; break;
		case OPT_DATA: data = optarg; break;
		case 'h': fputs(user_help, stdout); return 0;
		default: return usage_error("user", "bad option");
		}
	}
	if (argc - optind != 2 || strcmp(argv[optind], "add"))
		return usage_error("user", "usage: user add NAME --role ROLE --data DIR");
	name = argv[optind + 1];
	if (!role || !data)
		return usage_error("user", "--role and --data are required");
	if (strcmp(role, "viewer") && strcmp(role, "operator") && strcmp(role, "admin"))
		return usage_error("user", "--role is viewer, operator or admin");
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "password for %s: ", name);
	if (!fgets(password, sizeof(password), stdin)) {
		fprintf(stderr, "anole console user: no password on standard input\n");
		return 1;
	}
	n = strlen(password);
	while (n && (password[n - 1] == '\n' || password[n - 1] == '\r'))
		password[--n] = '\0';
	ret = console_user_add(data, name, role, password);
	OPENSSL_cleanse(password, sizeof(password));
	if (ret)
		return 1;
	printf("user %s (%s) saved\n", name, role);
	return 0;
}

static const char token_help[] =
"usage: anole console token create --data DIR [--note TEXT] [--json]\n"
"\n"
"Create an agent token and print it (once: only its SHA-256 is stored). Put\n"
"it in a file of mode 0600 on the host and start the agent with\n"
"'anole monitor --console URL --token-file FILE'.\n"
"\n"
"options:\n"
"      --data DIR    the console's data directory\n"
"      --note TEXT   what the token is for\n"
"      --json        {\"token\":\"...\"}\n"
"  -h, --help        this help\n";

static int console_token_cmd(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "data", required_argument, NULL, OPT_DATA },
		{ "note", required_argument, NULL, OPT_NOTE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *data = NULL, *note = NULL;
	char *token = NULL;
	bool json = false;
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_DATA: data = optarg; break;
		case OPT_NOTE: note = optarg; break;
		case OPT_JSON: json = true; break;
		case 'h': fputs(token_help, stdout); return 0;
		default: return usage_error("token", "bad option");
		}
	}
	if (argc - optind != 1 || strcmp(argv[optind], "create"))
		return usage_error("token", "usage: token create --data DIR");
	if (!data)
		return usage_error("token", "--data is required");
	if (console_token_create(data, note, &token))
		return 1;
	if (json)
		printf("{\"token\":\"%s\"}\n", token);
	else
		printf("%s\n", token);
	free(token);
	return 0;
}

int cmd_console(int argc, char **argv)
{
	static const struct anole_cmd cmds[] = {
		{ "serve", console_serve_cmd, "serve the console: API, web page, metric store" },
		{ "user", console_user_cmd, "add a user (user add NAME --role ROLE)" },
		{ "token", console_token_cmd, "create an agent token (token create)" },
		{ NULL, NULL, NULL },
	};

	return anole_dispatch("console", cmds, argc, argv);
}
