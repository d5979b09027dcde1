// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of lib/sign.c: for ECDSA P-256, SM2 and Ed25519, keys written
 * as PEM and loaded back, signatures that verify, and every way one must
 * not (other data, a flipped or cut signature, another key); keys anole
 * refuses (RSA, P-384, encrypted, garbage, public for signing); the
 * signature payload and trust-policy parsers (strictness, scope lookup). When the
 * `openssl` command is on PATH, signatures are checked in both directions
 * against it, the SM2 ones with the standard user ID.
 */
#include "anole/error.h"
#include "anole/policy.h"
#include "anole/sign.h"
#include "anole/signature.h"
#include "anole/strbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/wait.h>

#include "tap.h"

static char tmpdir[] = "/tmp/anole-test-sign.XXXXXX";

static void write_file(const char *name, const void *data, size_t len)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
		perror(path);
		exit(2);
	}
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	struct strbuf cmd = STRBUF_INIT;
	va_list ap;
	int st;

	strbuf_addf(&cmd, "cd %s && ", tmpdir);
	va_start(ap, fmt);
	strbuf_vaddf(&cmd, fmt, ap);
	va_end(ap);
	strbuf_addstr(&cmd, " >/dev/null 2>&1");
	st = system(cmd.buf);
	strbuf_release(&cmd);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static struct strbuf read_file(const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	char path[256], buf[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "rb");
	strbuf_init(&sb, 0);
	if (!f)
		return sb;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_add(&sb, buf, n);
	fclose(f);
	return sb;
}

static const char payload[] = "{\"critical\":{\"type\":\"cosign container image signature\"}}";

static void test_alg(enum anole_sign_alg alg, bool have_openssl)
{
	const char *name = anole_sign_alg_name(alg);
	struct anole_sign_key *gen = NULL, *priv = NULL, *pub = NULL, *other = NULL;
	struct strbuf pem = STRBUF_INIT, pubpem = STRBUF_INIT, sig = STRBUF_INIT, bad = STRBUF_INIT;
	char privname[64], pubname[64];
	int ret;

	snprintf(privname, sizeof(privname), "%s.key", name);
	snprintf(pubname, sizeof(pubname), "%s.pub", name);
	CHECK(anole_sign_key_generate(alg, &gen) == 0, "%s: generate", name);
	if (!gen)
		return;
	CHECK(anole_sign_key_private_pem(gen, &pem) == 0 && strstr(pem.buf, "PRIVATE KEY"),
	      "%s: private PEM", name);
	CHECK(anole_sign_key_public_pem(gen, &pubpem) == 0 && strstr(pubpem.buf, "BEGIN PUBLIC KEY"),
	      "%s: public PEM", name);
	write_file(privname, pem.buf, pem.len);
	write_file(pubname, pubpem.buf, pubpem.len);
	CHECK(anole_sign_key_load("/nonexistent/x.pem", true, &priv) == -ENOENT,
	      "%s: missing key file is -ENOENT", name);
	/* a FIFO with no writer: read as empty, an error at once, not a
	 * reader blocked forever (fopen blocked in open) */
	char fifo[256];
	snprintf(fifo, sizeof(fifo), "%s/%s.fifo", tmpdir, name);
	CHECK(mkfifo(fifo, 0600) == 0, "%s: mkfifo", name);
	CHECK(anole_sign_key_load(fifo, false, &priv) == -EINVAL && !priv,
	      "%s: a FIFO with no writer named as a key is -EINVAL (\"%s\")", name,
	      anole_last_error());
	CHECK(anole_sign_key_load(tmpdir, false, &priv) == -EISDIR && !priv,
	      "%s: a directory named as a key is -EISDIR", name);
	/* a pipe with its key written (a shell's <(...)) is read whole */
	int pfd[2];
	if (pipe(pfd) == 0) {
		char pipepath[64];
		struct anole_sign_key *piped = NULL;
		CHECK(write(pfd[1], pubpem.buf, pubpem.len) == (ssize_t)pubpem.len, "%s: pipe", name);
		close(pfd[1]);
		snprintf(pipepath, sizeof(pipepath), "/proc/self/fd/%d", pfd[0]);
		CHECK(anole_sign_key_load(pipepath, false, &piped) == 0 && piped &&
		      anole_sign_key_alg(piped) == alg, "%s: a key from a pipe loads", name);
		anole_sign_key_free(piped);
		close(pfd[0]);
	}

	char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, privname);
	CHECK(anole_sign_key_load(path, true, &priv) == 0 && priv && anole_sign_key_alg(priv) == alg &&
	      anole_sign_key_is_private(priv), "%s: load private key, algorithm from the key", name);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, pubname);
	CHECK(anole_sign_key_load(path, false, &pub) == 0 && pub && anole_sign_key_alg(pub) == alg &&
	      !anole_sign_key_is_private(pub), "%s: load public key", name);
	CHECK(anole_sign_key_load(path, true, &other) == -EINVAL && !other,
	      "%s: a public key where a private one is needed is -EINVAL", name);
	if (!priv || !pub)
		goto out;

	CHECK(anole_sign(priv, payload, strlen(payload), &sig) == 0 && sig.len > 0, "%s: sign", name);
	CHECK(anole_verify(pub, payload, strlen(payload), sig.buf, sig.len) == 0,
	      "%s: verify with the public key", name);
	CHECK(anole_verify(priv, payload, strlen(payload), sig.buf, sig.len) == 0,
	      "%s: verify with the private key's public half", name);
	CHECK(anole_sign(pub, payload, 3, &bad) == -EINVAL, "%s: signing with a public key is -EINVAL",
	      name);
	CHECK(anole_verify(pub, payload, strlen(payload) - 1, sig.buf, sig.len) == -EBADMSG,
	      "%s: shorter data does not verify", name);
	{
		char copy[sizeof(payload)];

		memcpy(copy, payload, sizeof(payload));
		copy[5] ^= 1;
		CHECK(anole_verify(pub, copy, strlen(copy), sig.buf, sig.len) == -EBADMSG,
		      "%s: one bit flipped in the data does not verify", name);
	}
	for (size_t i = 0; i < sig.len; i += sig.len / 7 + 1) {
		strbuf_reset(&bad);
		strbuf_add(&bad, sig.buf, sig.len);
		bad.buf[i] ^= 0x10;
		ret = anole_verify(pub, payload, strlen(payload), bad.buf, bad.len);
		CHECK(ret == -EBADMSG, "%s: signature byte %zu flipped: -EBADMSG (%d)", name, i, ret);
	}
	CHECK(anole_verify(pub, payload, strlen(payload), sig.buf, sig.len - 1) == -EBADMSG,
	      "%s: cut signature does not verify", name);
	CHECK(anole_verify(pub, payload, strlen(payload), sig.buf, 0) == -EBADMSG,
	      "%s: empty signature does not verify", name);
	CHECK(anole_sign_key_generate(alg, &other) == 0 &&
	      anole_verify(other, payload, strlen(payload), sig.buf, sig.len) == -EBADMSG,
	      "%s: another key's signature does not verify", name);
	/* ECDSA and SM2 are randomised: two signatures differ, both verify */
	if (alg != ANOLE_SIGN_ED25519) {
		strbuf_reset(&bad);
		CHECK(anole_sign(priv, payload, strlen(payload), &bad) == 0 &&
		      (bad.len != sig.len || memcmp(bad.buf, sig.buf, sig.len)) &&
		      anole_verify(pub, payload, strlen(payload), bad.buf, bad.len) == 0,
		      "%s: a second signature differs and verifies", name);
	}

	if (have_openssl && alg != ANOLE_SIGN_ED25519) {
		const char *md = alg == ANOLE_SIGN_SM2 ? "-sm3" : "-sha256";
		const char *id = alg == ANOLE_SIGN_SM2 ? "-sigopt distid:" ANOLE_SM2_DEFAULT_ID : "";
		struct strbuf osig;

		write_file("payload", payload, strlen(payload));
		write_file("sig", sig.buf, sig.len);
		CHECK(sh("openssl dgst %s -verify %s -signature sig %s payload", md, pubname, id) == 0,
		      "%s: `openssl dgst %s -verify %s` accepts anole's signature", name, md, id);
		if (alg == ANOLE_SIGN_SM2)
			/* the proof that the ID is in: OpenSSL's empty default fails */
			CHECK(sh("openssl dgst -sm3 -verify %s -signature sig payload", pubname) != 0,
			      "sm2: without the standard ID openssl rejects it (the ID is hashed in)");
		CHECK(sh("openssl dgst %s -sign %s %s -out osig payload", md, privname, id) == 0,
		      "%s: openssl signs", name);
		osig = read_file("osig");
		CHECK(osig.len > 0 && anole_verify(pub, payload, strlen(payload), osig.buf, osig.len) == 0,
		      "%s: anole accepts `openssl dgst -sign`'s signature", name);
		strbuf_release(&osig);
	}
	if (have_openssl && alg == ANOLE_SIGN_ED25519) {
		struct strbuf osig;

		write_file("payload", payload, strlen(payload));
		write_file("sig", sig.buf, sig.len);
		CHECK(sh("openssl pkeyutl -verify -rawin -pubin -inkey %s -in payload -sigfile sig",
			 pubname) == 0, "ed25519: `openssl pkeyutl -verify` accepts anole's signature");
		CHECK(sh("openssl pkeyutl -sign -rawin -inkey %s -in payload -out osig", privname) == 0,
		      "ed25519: openssl signs");
		osig = read_file("osig");
		CHECK(osig.len == 64 && anole_verify(pub, payload, strlen(payload), osig.buf, osig.len) == 0,
		      "ed25519: anole accepts openssl's signature");
		strbuf_release(&osig);
	}
out:
	anole_sign_key_free(gen);
	anole_sign_key_free(priv);
	anole_sign_key_free(pub);
	anole_sign_key_free(other);
	strbuf_release(&pem);
	strbuf_release(&pubpem);
	strbuf_release(&sig);
	strbuf_release(&bad);
}

static void test_refused_keys(bool have_openssl)
{
	struct anole_sign_key *k = NULL;
	const char garbage[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
	char path[256];

	CHECK(anole_sign_key_from_pem(garbage, sizeof(garbage) - 1, false, "garbage", &k) == -EINVAL &&
	      !k, "a PEM block that is no key is -EINVAL");
	CHECK(anole_sign_key_from_pem("", 0, false, "empty", &k) == -EINVAL && !k,
	      "an empty file is -EINVAL");
	CHECK(strstr(anole_last_error(), "empty") != NULL, "the message names the source (\"%s\")",
	      anole_last_error());
	if (!have_openssl)
		return;
	struct { const char *gen, *file; int err; const char *what; } cases[] = {
		{ "openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 -out rsa.pem",
		  "rsa.pem", -ENOTSUP, "an RSA key is -ENOTSUP" },
		{ "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-384 -out p384.pem",
		  "p384.pem", -ENOTSUP, "a P-384 key is -ENOTSUP" },
		{ "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-128-cbc "
		  "-pass pass:secret -out enc.pem", "enc.pem", -EINVAL,
		  "an encrypted key is -EINVAL, never a prompt" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (sh("%s", cases[i].gen) != 0) {
			CHECK(0, "cannot run: %s", cases[i].gen);
			continue;
		}
		snprintf(path, sizeof(path), "%s/%s", tmpdir, cases[i].file);
		CHECK(anole_sign_key_load(path, true, &k) == cases[i].err && !k, "%s (\"%s\")",
		      cases[i].what, anole_last_error());
	}
	/* an SM2 key made by the openssl command loads as SM2 */
	if (sh("openssl genpkey -algorithm SM2 -out osm2.pem") == 0) {
		snprintf(path, sizeof(path), "%s/osm2.pem", tmpdir);
		CHECK(anole_sign_key_load(path, true, &k) == 0 && k &&
		      anole_sign_key_alg(k) == ANOLE_SIGN_SM2, "openssl's SM2 key loads as SM2");
		anole_sign_key_free(k);
		k = NULL;
	}
	if (sh("openssl ecparam -name prime256v1 -genkey -noout -out trad.pem") == 0) {
		snprintf(path, sizeof(path), "%s/trad.pem", tmpdir);
		CHECK(anole_sign_key_load(path, true, &k) == 0 && k &&
		      anole_sign_key_alg(k) == ANOLE_SIGN_ECDSA_P256,
		      "a traditional 'EC PRIVATE KEY' (cosign's own is PKCS#8 either way) loads");
		anole_sign_key_free(k);
	}
}


static void test_payload(void)
{
	const char *dg = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	struct strbuf sb = STRBUF_INIT;
	struct anole_sig_payload p;
	char doc[1024];

	anole_sig_payload_make(dg, "reg.example:5000/a/b:v1", &sb);
	CHECK(anole_sig_payload_parse(sb.buf, sb.len, &p) == 0 && !strcmp(p.manifest_digest, dg) &&
	      !strcmp(p.docker_reference, "reg.example:5000/a/b:v1"), "payload: make, parse back");
	anole_sig_payload_free(&p);
	/* cosign's own form: optional null */
#define CRIT(type, digest, extra) "{\"critical\":{\"identity\":{\"docker-reference\":\"r/a\"}," \
	"\"image\":{\"docker-manifest-digest\":\"" digest "\"},\"type\":\"" type "\"" extra "},"
	snprintf(doc, sizeof(doc), "%s", CRIT("cosign container image signature",
		 "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "")
		 "\"optional\":null}");
	CHECK(anole_sig_payload_parse(doc, strlen(doc), &p) == 0, "payload: optional null (cosign)");
	anole_sig_payload_free(&p);
	struct { const char *doc, *why; } bad[] = {
		{ CRIT("cosign container image signature", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "") "}",
		  "optional missing" },
		{ CRIT("cosign container image signature", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", ",\"x\":1") "\"optional\":null}",
		  "an unknown critical field" },
		{ CRIT("atomic container signature", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "") "\"optional\":null}",
		  "another type" },
		{ CRIT("cosign container image signature", "sha256:0123", "") "\"optional\":null}",
		  "a short digest" },
		{ CRIT("cosign container image signature", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "") "\"optional\":null,\"optional\":{}}",
		  "a duplicate key" },
		{ CRIT("cosign container image signature", "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "") "\"optional\":[]}",
		  "optional an array" },
		{ "[1]", "not an object" },
		{ "{\"critical\":", "cut JSON" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(anole_sig_payload_parse(bad[i].doc, strlen(bad[i].doc), &p) == -EBADMSG,
		      "payload refused: %s", bad[i].why);
#undef CRIT
	strbuf_release(&sb);
}

static void test_policy(void)
{
	struct anole_policy *pol = NULL;
	char *pinned = NULL, doc[2048], img[300];

	struct { const char *doc, *why; } bad[] = {
		{ "{\"default\":[{\"type\":\"signedByX\"}]}", "an unknown type" },
		{ "{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"keyData\":\"AA==\"}]}", "two key sources" },
		{ "{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"x\":{}}]}", "an unknown sigstoreSigned field" },
		{ "{\"default\":[{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"signedIdentity\":{\"type\":\"matchNothing\"}}]}", "an unknown identity type" },
		{ "{\"default\":[]}", "an empty default" },
		{ "{\"transports\":{}}", "no default" },
		{ "{\"default\":[{\"type\":\"reject\"}],\"x\":1}", "an unknown top-level field" },
		{ "{\"default\":[{\"type\":\"reject\",\"x\":1}]}", "a field of reject" },
		{ "{\"default\":[{\"type\":\"sigstoreSigned\",\"keyData\":\"not base64!\"}]}", "keyData not base64" },
		{ "{\"default\":[{\"type\":\"sigstoreSigned\",\"keyData\":\"AAAA\"}]}", "keyData not a PEM key" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(anole_policy_parse(bad[i].doc, strlen(bad[i].doc), "t", &pol) == -EINVAL && !pol,
		      "policy refused: %s", bad[i].why);
	}
	/* what anole cannot check refuses the images it applies to, only those */
	{
		const char *unsup[] = {
			"{\"type\":\"signedBy\",\"keyType\":\"GPGKeys\",\"keyPath\":\"/k\"}",
			"{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"fulcio\":{}}",
			"{\"type\":\"sigstoreSigned\",\"keyPath\":\"/k\",\"signedIdentity\":{\"type\":\"matchRepository\"}}",
		};
		for (size_t i = 0; i < sizeof(unsup) / sizeof(unsup[0]); i++) {
			snprintf(doc, sizeof(doc), "{\"default\":[{\"type\":\"insecureAcceptAnything\"}],"
				 "\"transports\":{\"docker\":{\"reg.example.com\":[%s]}}}", unsup[i]);
			pol = NULL;
			CHECK(anole_policy_parse(doc, strlen(doc), "t", &pol) == 0 && pol &&
			      anole_policy_check(pol, "docker://reg.example.com/a:v1", NULL, &pinned) == -EKEYREJECTED &&
			      strstr(anole_last_error(), "cannot check") &&
			      anole_policy_check(pol, "/some/file.erofs", NULL, &pinned) == 0,
			      "unsupported requirement %zu refuses its scope only (\"%s\")", i, anole_last_error());
			anole_policy_free(pol);
		}
	}
	/* scopes: a file under tmpdir/ok is accepted, one under tmpdir/no rejected,
	 * anything else falls to the default (reject) */
	snprintf(doc, sizeof(doc),
		 "{\"default\":[{\"type\":\"reject\"}],\"transports\":{\"file\":{"
		 "\"%s/ok\":[{\"type\":\"insecureAcceptAnything\"}],"
		 "\"%s/no\":[{\"type\":\"reject\"}]}}}", tmpdir, tmpdir);
	CHECK(anole_policy_parse(doc, strlen(doc), "t", &pol) == 0 && pol, "policy with file scopes");
	if (!pol)
		return;
	snprintf(img, sizeof(img), "%s/ok/sub/img.erofs", tmpdir);
	CHECK(anole_policy_check(pol, img, NULL, &pinned) == 0 && !pinned,
	      "a file under an accepting parent scope passes, nothing pinned");
	snprintf(img, sizeof(img), "%s/no/img.erofs", tmpdir);
	CHECK(anole_policy_check(pol, img, NULL, &pinned) == -EACCES, "a file under a rejecting scope");
	CHECK(anole_policy_check(pol, "/elsewhere/img.erofs", NULL, &pinned) == -EACCES,
	      "the default rejects the rest");
	CHECK(anole_policy_check(pol, "docker://127.0.0.1:1/a/b:v1", NULL, &pinned) == -EACCES,
	      "another transport falls to the default");
	anole_policy_free(pol);
	/* docker: the most specific scope wins: repo over host */
	snprintf(doc, sizeof(doc),
		 "{\"default\":[{\"type\":\"insecureAcceptAnything\"}],\"transports\":{\"docker\":{"
		 "\"reg.example.com\":[{\"type\":\"reject\"}],"
		 "\"reg.example.com/team/app\":[{\"type\":\"insecureAcceptAnything\"}],"
		 "\"*.example.org\":[{\"type\":\"reject\"}]}}}");
	CHECK(anole_policy_parse(doc, strlen(doc), "t", &pol) == 0 && pol, "policy with docker scopes");
	if (!pol)
		return;
	CHECK(anole_policy_check(pol, "docker://reg.example.com/team/app:v1", NULL, &pinned) == 0,
	      "docker: the repository's scope over the host's");
	CHECK(anole_policy_check(pol, "docker://reg.example.com/team/other:v1", NULL, &pinned) == -EACCES,
	      "docker: the host's scope for another repository");
	CHECK(anole_policy_check(pol, "docker://a.b.example.org/x:v1", NULL, &pinned) == -EACCES,
	      "docker: a *.DOMAIN wildcard");
	CHECK(anole_policy_check(pol, "docker://other.example.net/x:v1", NULL, &pinned) == 0,
	      "docker: the default for the rest");
	anole_policy_free(pol);
}

int main(void)
{
	bool have_openssl;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	have_openssl = sh("openssl version") == 0;
	if (!have_openssl)
		printf("# the openssl command is missing: cross-checks against it are skipped\n");
	test_alg(ANOLE_SIGN_ECDSA_P256, have_openssl);
	test_alg(ANOLE_SIGN_SM2, have_openssl);
	test_alg(ANOLE_SIGN_ED25519, have_openssl);
	test_refused_keys(have_openssl);
	test_payload();
	test_policy();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			printf("# could not remove %s\n", tmpdir);
	}
	printf("1..%d\n", ntests);
	printf("# %d tests, %d passed, %d failed\n", ntests, ntests - nfailed, nfailed);
	return nfailed ? 1 : 0;
}
