// SPDX-License-Identifier: Apache-2.0
/* `anole image sign|verify|keygen`: options over image/signature.c. */
#include "anole.h"
#include "store_opts.h"
#include "anole/error.h"
#include "anole/fileio.h"
#include "anole/sign.h"
#include "anole/signature.h"
#include "anole/strbuf.h"
#include "anole/xalloc.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { OPT_KEY = 256, OPT_IDENTITY, OPT_JSON, OPT_ALG };

#define MAX_KEYS 16

static int usage_error(const char *verb, const char *msg)
{
	fprintf(stderr, "anole image %s: %s\nTry 'anole image %s --help'.\n", verb, msg, verb);
	return 2;
}

static const char sign_help[] =
"usage: anole image sign --key KEY.pem [options] REF\n"
"       anole image verify --key PUB.pem [--key PUB2.pem...] [options] REF\n"
"\n"
"Sign an image, or check that it is signed. REF is docker://HOST/REPO[:TAG]\n"
"(a registry), oci:DIR[:TAG] (a layout) or an image file. The algorithm is\n"
"the key's: ECDSA P-256 (with SHA-256), SM2 (with SM3 and the ID\n"
"1234567812345678) or Ed25519; keys are PEM files (see anole image keygen,\n"
"or openssl genpkey).\n"
"\n"
"Signatures are stored as sigstore/cosign stores them: a simple-signing\n"
"payload naming the manifest's digest and the image's name, in tag\n"
"sha256-<digest>.sig beside the image, so that skopeo and podman verify\n"
"them with a containers-policy.json sigstoreSigned rule (ECDSA, Ed25519).\n"
"An image file gets FILE.sig beside it. Signing adds to the signatures\n"
"already there. verify exits 0 when one signature verifies with one of the\n"
"keys and names the manifest the image has now, 1 when none does.\n"
"\n"
"options:\n"
"      --key FILE         private key (sign) or public key (verify; repeatable)\n"
"      --identity NAME    the docker-reference signed (default HOST/REPO:TAG),\n"
"                         or required of the signature (verify; default: for\n"
"                         docker:// the reference itself, as containers/image's\n"
"                         matchRepoDigestOrExact; not checked for oci: and files)\n"
STORE_HELP
"      --json             print the result as JSON\n"
"  -h, --help             this help\n";

static void print_result(const char *verb, const char *ref, const struct anole_sig_result *r,
			 bool json)
{
	if (json) {
		struct strbuf s = STRBUF_INIT;

		strbuf_addstr(&s, "{\"image\":");
		strbuf_add_json_string(&s, ref, strlen(ref));
		strbuf_addf(&s, ",\"manifest\":\"%s\",\"identity\":", r->manifest_digest);
		strbuf_add_json_string(&s, r->docker_reference, strlen(r->docker_reference));
		strbuf_addf(&s, ",\"algorithm\":\"%s\",\"signatures\":%u,\"where\":",
			    anole_sign_alg_name(r->alg), r->signatures);
		strbuf_add_json_string(&s, r->where, strlen(r->where));
		strbuf_addf(&s, ",\"%s\":true}", verb);
		puts(s.buf);
		strbuf_release(&s);
	} else if (!strcmp(verb, "signed")) {
		printf("signed %s: manifest %s as %s (%s) in %s (%u signature%s)\n", ref,
		       r->manifest_digest, r->docker_reference, anole_sign_alg_name(r->alg), r->where,
		       r->signatures, r->signatures == 1 ? "" : "s");
	} else {
		printf("verified %s: manifest %s signed as %s (%s) in %s\n", ref, r->manifest_digest,
		       r->docker_reference, anole_sign_alg_name(r->alg), r->where);
	}
}

static int sign_or_verify(int argc, char **argv, bool sign)
{
	static const struct option longopts[] = {
		{ "key", required_argument, NULL, OPT_KEY },
		{ "identity", required_argument, NULL, OPT_IDENTITY },
		STORE_LONGOPTS,
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *verb = sign ? "sign" : "verify";
	const char *keyfiles[MAX_KEYS], *identity = NULL;
	struct anole_sign_key *keys[MAX_KEYS] = { 0 };
	struct store_cli store = { 0 };
	struct anole_sig_result r;
	size_t nkeys = 0;
	bool json = false;
	int opt, ret = 0;

	while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (opt) {
		case OPT_KEY:
			if (nkeys == MAX_KEYS || (sign && nkeys == 1)) {
				store_cli_release(&store);
				return usage_error(verb, sign ? "takes one --key" : "takes at most 16 keys");
			}
			keyfiles[nkeys++] = optarg;
			break;
		case OPT_IDENTITY: identity = optarg; break;
		case OPT_JSON: json = true; break;
		case 'h': fputs(sign_help, stdout); store_cli_release(&store); return 0;
		default:
			if ((ret = store_cli_opt(&store, sign ? "image sign" : "image verify", opt,
						 optarg))) {
				store_cli_release(&store);
				return ret;
			}
		}
	}
	if (argc - optind != 1 || !nkeys) {
		store_cli_release(&store);
		return usage_error(verb, "takes --key FILE and one image reference");
	}
	for (size_t i = 0; i < nkeys && !ret; i++)
		ret = anole_sign_key_load(keyfiles[i], sign, &keys[i]);
	if (!ret && sign) {
		ret = anole_image_sign(argv[optind], keys[0], identity, &store.o, &r);
	} else if (!ret) {
		ret = anole_image_verify(argv[optind], (const struct anole_sign_key *const *)keys,
					 nkeys, identity, &store.o, &r);
	}
	if (!ret) {
		print_result(sign ? "signed" : "verified", argv[optind], &r, json);
		anole_sig_result_free(&r);
	}
	for (size_t i = 0; i < nkeys; i++)
		anole_sign_key_free(keys[i]);
	store_cli_release(&store);
	return ret ? 1 : 0;
}

int cmd_image_sign(int argc, char **argv) { return sign_or_verify(argc, argv, true); }
int cmd_image_verify(int argc, char **argv) { return sign_or_verify(argc, argv, false); }

static const char keygen_help[] =
"usage: anole image keygen [--algorithm ecdsa-p256|sm2|ed25519] -o KEY.pem\n"
"\n"
"Write a new private key to KEY.pem (PKCS#8 PEM, mode 0600) and its public\n"
"key to KEY.pub (KEY without .pem, plus .pub), for anole image sign and\n"
"verify, skopeo's sigstoreSigned keyPath and openssl. Neither file may\n"
"exist already. Default algorithm: ecdsa-p256 (what cosign and skopeo\n"
"check); sm2 signs with SM2/SM3.\n"
"\n"
"options:\n"
"  -a, --algorithm ALG    ecdsa-p256 (default), sm2 or ed25519\n"
"  -o, --output FILE      the private key file\n"
"  -h, --help             this help\n";

static int write_new(const char *path, const struct strbuf *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode), ret;

	if (fd < 0)
		return anole_error(errno, "cannot create %s", path);
	ret = write_full(fd, data->buf, data->len);
	if (!ret && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (ret) {
		unlink(path);
		return anole_error(-ret, "cannot write %s", path);
	}
	return 0;
}

int cmd_image_keygen(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "algorithm", required_argument, NULL, 'a' },
		{ "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum anole_sign_alg alg = ANOLE_SIGN_ECDSA_P256;
	struct strbuf priv = STRBUF_INIT, pub = STRBUF_INIT, pubpath = STRBUF_INIT;
	struct anole_sign_key *key = NULL;
	const char *out = NULL;
	size_t n;
	int opt, ret;

	while ((opt = getopt_long(argc, argv, "a:o:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'a':
			if (anole_sign_alg_from_name(optarg, &alg))
				return 2;
			break;
		case 'o': out = optarg; break;
		case 'h': fputs(keygen_help, stdout); return 0;
		default: return usage_error("keygen", "unknown option");
		}
	}
	if (!out || optind != argc)
		return usage_error("keygen", "takes -o KEY.pem and nothing else");
	n = strlen(out);
	strbuf_add(&pubpath, out, n > 4 && !strcmp(out + n - 4, ".pem") ? n - 4 : n);
	strbuf_addstr(&pubpath, ".pub");
	ret = anole_sign_key_generate(alg, &key);
	if (!ret)
		ret = anole_sign_key_private_pem(key, &priv);
	if (!ret)
		ret = anole_sign_key_public_pem(key, &pub);
	if (!ret && access(pubpath.buf, F_OK) == 0)
		ret = anole_error_code(EEXIST, "%s exists already", pubpath.buf);
	if (!ret)
		ret = write_new(out, &priv, 0600);
	if (!ret) {
		ret = write_new(pubpath.buf, &pub, 0644);
		if (ret)
			unlink(out);
	}
	if (!ret)
		printf("%s key: %s (private), %s (public)\n", anole_sign_alg_name(alg), out,
		       pubpath.buf);
	anole_sign_key_free(key);
	if (priv.buf)
		memset(priv.buf, 0, priv.len);
	strbuf_release(&priv);
	strbuf_release(&pub);
	strbuf_release(&pubpath);
	return ret ? 1 : 0;
}
