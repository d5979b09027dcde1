// SPDX-License-Identifier: Apache-2.0
/* `anole image mount|umount|stats|cache`: lazy mounts from a blob store. */
#include "anole.h"
#include "store_opts.h"
#include "anole/policy.h"
#include "anole/cipher.h"
#include "anole/error.h"
#include "anole/httpd.h"
#include "anole/image.h"
#include "anole/lazy.h"
#include "anole/progress.h"
#include "anole/ref.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OPT_BLOBS = 300, OPT_CACHE, OPT_MODE, OPT_PREFETCH, OPT_RECORD, OPT_METRICS, OPT_NO_DIRECT,
       OPT_READ_TIMEOUT, OPT_METRICS_TOKEN_FILE,
       OPT_LAZY, OPT_JSON, OPT_MAX_SIZE, OPT_POLICY, OPT_DECRYPT_KEY };

static int usage_error(const char *verb, const char *msg)
{
	fprintf(stderr, "anole image %s: %s\nTry 'anole image %s --help'.\n", verb, msg, verb);
	return 2;
}

static const char mount_help[] =
"usage: anole image mount IMAGE MOUNTPOINT --blobs STORE [options]\n"
"       anole image mount oci:DIR[:TAG] MOUNTPOINT [options]\n"
"       anole image mount docker://HOST/REPO[:TAG] MOUNTPOINT [options]\n"
"\n"
"Mount an image built with `anole image build --blob-dir` before its data is\n"
"downloaded: chunks are fetched from STORE when first read, verified by\n"
"digest, and kept in a local cache. Returns when the mount is ready; a\n"
"daemon serves it until `anole image umount`.\n"
"\n"
"STORE is a directory, http(s)://HOST/PREFIX (GET PREFIX/<hex> with Range),\n"
"or docker://HOST[:PORT]/REPO (an OCI registry's blobs; anonymous or Bearer\n"
"auth from ~/.docker/config.json or $REGISTRY_AUTH_FILE). HTTP(S)_PROXY is\n"
"honoured, so a P2P or caching proxy can sit in front.\n"
"\n"
"options:\n"
"      --blobs STORE        where the image's blobs are (required)\n"
"      --cache DIR          chunk cache (default /var/cache/anole as root,\n"
"                           else ~/.cache/anole); survives restarts\n"
"      --mode MODE          kernel: the kernel's EROFS over FUSE-served blobs\n"
"                           (default as root); fuse: the tree served by FUSE\n"
"                           (no root needed)\n"
"  -f, --foreground         do not daemonize; log to stderr\n"
"      --prefetch LIST      fetch the files listed (one path per line) in the\n"
"                           background, in order\n"
"      --record FILE        at unmount, write the files in the order they were\n"
"                           first read (a prefetch list for next time)\n"
"      --metrics ADDR       serve Prometheus metrics on /metrics at HOST:PORT,\n"
"                           [IPv6]:PORT or :PORT (all addresses)\n"
"      --metrics-token-file FILE\n"
"                           /metrics answers only \"Authorization: Bearer TOKEN\",\n"
"                           TOKEN the file's one line (mode 0600); else 401\n"
"      --no-direct          kernel mode: serve blobs that are complete in the\n"
"                           cache through FUSE too (by default the kernel reads\n"
"                           them straight from the cache)\n"
"      --read-timeout SECONDS\n"
"                           a read waiting for the blob store fails with EIO\n"
"                           after this long, whatever the retries left\n"
"                           (default 30; 0: wait as long as the store retries)\n"
"      --policy FILE        trust policy, containers-policy.json(5) (default:\n"
"                           /etc/containers/policy.json if it exists): an image\n"
"                           it requires to be signed (sigstoreSigned) is refused\n"
"                           unless a signature verifies, before any of its data\n"
"                           is used; the signed manifest is then the one mounted\n"
"      --decrypt-key KEY    the key file an encrypted image was built with\n"
"                           (build/convert --encrypt-key); without it, or with\n"
"                           another, an encrypted image is refused\n"
STORE_HELP
"  -h, --help               this help\n";

int cmd_image_mount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "blobs", required_argument, NULL, OPT_BLOBS },
		{ "cache", required_argument, NULL, OPT_CACHE },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "foreground", no_argument, NULL, 'f' },
		{ "prefetch", required_argument, NULL, OPT_PREFETCH },
		{ "record", required_argument, NULL, OPT_RECORD },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "metrics-token-file", required_argument, NULL, OPT_METRICS_TOKEN_FILE },
		{ "no-direct", no_argument, NULL, OPT_NO_DIRECT },
		{ "read-timeout", required_argument, NULL, OPT_READ_TIMEOUT },
		{ "policy", required_argument, NULL, OPT_POLICY },
		{ "decrypt-key", required_argument, NULL, OPT_DECRYPT_KEY },
		STORE_LONGOPTS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static char *metrics_token;
	struct store_cli store = { 0 };
	struct anole_mount_opts o = { .store = &store.o };
	struct anole_policy *policy = NULL;
	const char *policy_file = NULL, *decrypt_key_file = NULL;
	/* static: the daemon forked from here reads them until it exits */
	static struct anole_chunk_key keys[2];
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "fh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_BLOBS: o.blobs = optarg; break;
		case OPT_CACHE: o.cache_dir = optarg; break;
		case OPT_MODE:
			if (!strcmp(optarg, "kernel"))
				o.mode = ANOLE_MOUNT_KERNEL;
			else if (!strcmp(optarg, "fuse"))
				o.mode = ANOLE_MOUNT_FUSE;
			else
				return usage_error("mount", "--mode is kernel or fuse");
			break;
		case 'f': o.foreground = true; break;
		case OPT_PREFETCH: o.prefetch_list = optarg; break;
		case OPT_RECORD: o.record_file = optarg; break;
		case OPT_METRICS: o.metrics_addr = optarg; break;
		case OPT_METRICS_TOKEN_FILE:
			/* read now: the daemon leaves the directory a relative path names;
			 * kept in a static, as the daemon uses it until it exits */
			free(metrics_token);
			metrics_token = NULL;
			if (anole_httpd_read_token(optarg, &metrics_token)) {
				store_cli_release(&store);
				return 1;
			}
			o.metrics_token = metrics_token;
			break;
		case OPT_NO_DIRECT: o.no_direct = true; break;
		case OPT_POLICY: policy_file = optarg; break;
		case OPT_DECRYPT_KEY: decrypt_key_file = optarg; break;
		case OPT_READ_TIMEOUT: {
			char *end;
			double s = strtod(optarg, &end);

			if (end == optarg || *end || !(s >= 0 && s <= 86400) || (s > 0 && s < 0.001)) {
				store_cli_release(&store);
				return usage_error("mount", "--read-timeout takes seconds, 0 to 86400 "
						   "(e.g. 30 or 2.5)");
			}
			o.read_timeout_ms = s == 0 ? LAZY_NO_TIMEOUT : (unsigned)(s * 1000 + 0.5);
			break;
		}
		case 'h': fputs(mount_help, stdout); store_cli_release(&store); return 0;
		default:
			if ((ret = store_cli_opt(&store, "image mount", opt, optarg))) {
				store_cli_release(&store);
				return ret;
			}
		}
	}
	if (argc - optind != 2) {
		store_cli_release(&store);
		return usage_error("mount", "takes an image and a mount point");
	}
	o.image = argv[optind];
	o.mountpoint = argv[optind + 1];
	/* oci: and docker:// references are resolved by the library; a plain
	 * image file needs to be told where its blobs are */
	if (!o.blobs) {
		struct anole_ref ref;
		bool plain;

		if (anole_ref_parse(o.image, ANOLE_REF_PATH, &ref)) {
			store_cli_release(&store);
			return 1;
		}
		plain = ref.transport == ANOLE_REF_PATH;
		anole_ref_free(&ref);
		if (plain) {
			store_cli_release(&store);
			return usage_error("mount", "--blobs STORE is required");
		}
	}
	if (decrypt_key_file) {
		/* one key file, the keys of either cipher: the image says which */
		if (anole_chunk_key_load(decrypt_key_file, ANOLE_CIPHER_AES256_CTR, &keys[0]) ||
		    anole_chunk_key_load(decrypt_key_file, ANOLE_CIPHER_SM4_CTR, &keys[1])) {
			store_cli_release(&store);
			return 1;
		}
		o.decrypt_keys = keys;
		o.ndecrypt_keys = 2;
	}
	ret = anole_policy_load(policy_file, &policy);
	o.policy = policy;
	if (!ret)
		ret = anole_image_mount(&o);
	anole_policy_free(policy);
	store_cli_release(&store);
	return ret ? 1 : 0;
}

static const char umount_help[] =
"usage: anole image umount MOUNTPOINT [--lazy]\n"
"\n"
"Unmount a lazy mount and stop its daemon. A busy mount is refused unless\n"
"--lazy, which detaches it (it goes away when its last file is closed).\n";

int cmd_image_umount(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "lazy", no_argument, NULL, OPT_LAZY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool lazy = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "lh", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_LAZY: case 'l': lazy = true; break;
		case 'h': fputs(umount_help, stdout); return 0;
		default: return usage_error("umount", "unknown option");
		}
	}
	if (argc - optind != 1)
		return usage_error("umount", "takes a mount point");
	return anole_image_umount(argv[optind], lazy) ? 1 : 0;
}

static const char stats_help[] =
"usage: anole image stats MOUNTPOINT [--json]\n"
"\n"
"Counters of a lazy mount: bytes and chunks fetched, requests, cache hits\n"
"and misses, errors, prefetch progress, fetch latency histogram.\n";

int cmd_image_stats(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct strbuf out = STRBUF_INIT;
	bool json = false;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON: json = true; break;
		case 'h': fputs(stats_help, stdout); return 0;
		default: return usage_error("stats", "unknown option");
		}
	}
	if (argc - optind != 1)
		return usage_error("stats", "takes a mount point");
	ret = anole_image_stats(argv[optind], json, &out);
	if (!ret)
		fputs(out.buf, stdout);
	strbuf_release(&out);
	return ret ? 1 : 0;
}

static const char cache_help[] =
"usage: anole image cache ls [--cache DIR] [--json]\n"
"       anole image cache gc --max-size SIZE [--cache DIR] [--json]\n"
"\n"
"ls: the cached blobs, their size, chunks present, last use, and whether a\n"
"mount uses them. gc: evict blobs no mount uses, least recently used first,\n"
"until the cache is at most SIZE (e.g. 10G).\n";

int cmd_image_cache(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "cache", required_argument, NULL, OPT_CACHE },
		{ "max-size", required_argument, NULL, OPT_MAX_SIZE },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *verb;
	char *defdir = NULL;
	unsigned long long max = 0;
	bool json = false, have_max = false;
	int opt, ret = 0;

	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(cache_help, argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	verb = argv[1];
	argc--;
	argv++;
	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_CACHE: dir = optarg; break;
		case OPT_MAX_SIZE:
			if (anole_parse_size(optarg, &max))
				return usage_error("cache", "--max-size takes a size like 10G");
			have_max = true;
			break;
		case OPT_JSON: json = true; break;
		case 'h': fputs(cache_help, stdout); return 0;
		default: return usage_error("cache", "unknown option");
		}
	}
	if (!dir)
		dir = defdir = anole_default_cache_dir();
	if (!strcmp(verb, "ls")) {
		struct lazy_cache_entry *v;
		size_t n;

		ret = lazy_cache_list(dir, &v, &n);
		if (!ret && json)
			fputs("[", stdout);
		for (size_t i = 0; !ret && i < n; i++) {
			if (json)
				printf("%s{\"blob\":\"sha256:%s\",\"bytes\":%llu,\"chunks_present\":%llu,"
				       "\"last_used\":%lld,\"in_use\":%s}", i ? "," : "", v[i].hex,
				       (unsigned long long)v[i].bytes,
				       (unsigned long long)v[i].chunks_present,
				       (long long)v[i].last_used, v[i].in_use ? "true" : "false");
			else
				printf("sha256:%s %12llu bytes %8llu chunks%s\n", v[i].hex,
				       (unsigned long long)v[i].bytes,
				       (unsigned long long)v[i].chunks_present,
				       v[i].in_use ? " (in use)" : "");
		}
		if (!ret && json)
			fputs("]\n", stdout);
		if (!ret)
			free(v);
	} else if (!strcmp(verb, "gc")) {
		uint64_t freed = 0;

		if (!have_max) {
			free(defdir);
			return usage_error("cache", "gc needs --max-size");
		}
		ret = lazy_cache_gc(dir, max, &freed);
		if (ret >= 0) {
			if (json)
				printf("{\"evicted\":%d,\"freed_bytes\":%llu}\n", ret,
				       (unsigned long long)freed);
			else
				printf("evicted %d blob%s, freed %llu bytes\n", ret, ret == 1 ? "" : "s",
				       (unsigned long long)freed);
			ret = 0;
		}
	} else {
		free(defdir);
		return usage_error("cache", "verbs are ls and gc");
	}
	free(defdir);
	return ret ? 1 : 0;
}
