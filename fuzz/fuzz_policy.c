// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the untrusted documents of signing (image/policy.c,
 * image/signature.c). The first byte picks the parser:
 *   even: a containers-policy.json; a parse either fails cleanly or gives a
 *         policy that checks a file reference (a reject or accept verdict,
 *         or a refusal: no key files exist) without crashing;
 *   odd:  a simple-signing payload; a parse that succeeds gives a valid
 *         sha256 digest and a non-empty identity, and the payload anole
 *         makes of them parses back to the same.
 */
#include "anole/blobstore.h"
#include "anole/error.h"
#include "anole/policy.h"
#include "anole/signature.h"
#include "anole/strbuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque)
{
	(void)level;
	(void)msg;
	(void)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool init;

	if (!init) {
		anole_log_set_sink(drop_log, NULL);
		init = true;
	}
	if (size < 1)
		return 0;
	if (!(data[0] & 1)) {
		struct anole_policy *p = NULL;
		char *pinned = NULL;

		if (anole_policy_parse((const char *)data + 1, size - 1, "fuzz", &p) == 0) {
			if (!p)
				abort();
			/* a path that does not exist: verdicts come from the rules alone */
			(void)anole_policy_check(p, "/nonexistent/anole-fuzz/img.erofs", NULL, &pinned);
			free(pinned);
			anole_policy_free(p);
		} else if (p) {
			abort();
		}
	} else {
		struct anole_sig_payload pl, again;
		struct strbuf sb = STRBUF_INIT;

		if (anole_sig_payload_parse(data + 1, size - 1, &pl) == 0) {
			if (anole_digest_ref_check(pl.manifest_digest) || !pl.docker_reference[0])
				abort();
			anole_sig_payload_make(pl.manifest_digest, pl.docker_reference, &sb);
			if (anole_sig_payload_parse(sb.buf, sb.len, &again) ||
			    strcmp(again.manifest_digest, pl.manifest_digest) ||
			    strcmp(again.docker_reference, pl.docker_reference))
				abort();
			anole_sig_payload_free(&again);
			anole_sig_payload_free(&pl);
		}
		strbuf_release(&sb);
	}
	return 0;
}
