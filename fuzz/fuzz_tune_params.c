// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for `anole tune` parameter files (tune/knob.c): a parse
 * either fails and leaves nothing, or gives parameters whose ranges are not
 * empty, whose defaults lie inside them, and whose every grid value maps to
 * a unit position in [0,1] and back to the same value.
 */
#include "anole/error.h"
#include "tune.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque)
{
	(void)level;
	(void)msg;
	(void)opaque;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const double probes[] = { 0, 0.1, 0.25, 0.5, 0.77, 0.999, 1 };
	struct tune_params ps;

	anole_log_set_sink(drop_log, NULL);
	if (tune_params_parse((const char *)data, size, "fuzz", &ps)) {
		if (ps.v || ps.n)
			abort();
		return 0;
	}
	if (!ps.n || ps.n > TUNE_MAX_PARAMS)
		abort();
	for (size_t i = 0; i < ps.n; i++) {
		const struct tune_param *p = &ps.v[i];
		double u;

		if (p->type != TUNE_ENUM && !(p->lo < p->hi))
			abort();
		if (p->type == TUNE_ENUM && p->nchoices < 2)
			abort();
		if (p->dflt && tune_param_unit(p, p->dflt, &u))
			abort();
		if ((p->domain == TUNE_COMMAND) != (p->run != NULL))
			abort();
		for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
			char *v = tune_param_value(p, probes[k]), *again;

			if (tune_param_unit(p, v, &u) || u < 0 || u > 1)
				abort();
			again = tune_param_value(p, u);
			if (p->type != TUNE_FLOAT && strcmp(again, v))
				abort();
			free(again);
			free(v);
		}
	}
	tune_params_free(&ps);
	return 0;
}
