// SPDX-License-Identifier: Apache-2.0
/*
 * libFuzzer target for the qos agent's configuration (qos/config.c over
 * lib/toml.c). Every value accepted must be within its documented range,
 * every string NUL-terminated within its buffer, and every error message
 * must name a line. The same bytes as a CPU list (cpuset.cpus): what
 * parses must format back to the same set.
 */
#include "anole/error.h"
#include "qos.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void drop_log(enum anole_log_level level, const char *msg, void *opaque) { }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qos_config c;
	int ret;

	anole_log_set_sink(drop_log, NULL);
	qos_config_defaults(&c);
	ret = qos_config_parse_text(&c, "f", (const char *)data, size);
	if (ret) {
		/* "f:LINE: ..." */
		const char *e = anole_last_error();
		if (strncmp(e, "f:", 2) || e[2] < '0' || e[2] > '9')
			abort();
	} else {
		if (c.cpu_suppress.threshold_percent < 1 || c.cpu_suppress.threshold_percent > 100 ||
		    c.memory.squeeze_ratio_percent < 10 || c.interval_ms < 10 ||
		    c.blkio.ndevices > 8 || memchr(c.name, 0, sizeof(c.name)) == NULL ||
		    !c.name[0] || c.name[0] == '.' || strchr(c.name, '/'))
			abort();
		for (int i = 0; i < QOS_NCLASSES; i++)
			for (size_t k = 0; k < c.nadopt[i]; k++)
				if (c.adopt[i][k].rel[0] != '/' || strstr(c.adopt[i][k].rel, "/.."))
					abort();
		if ((strcmp(c.cpu_suppress.mode, "auto") && strcmp(c.cpu_suppress.mode, "quota") &&
		     strcmp(c.cpu_suppress.mode, "cpuset")) ||
		    c.interference.decrease_percent < 1 || c.interference.decrease_percent > 90 ||
		    (c.interference.latency_file[0] && c.interference.latency_file[0] != '/') ||
		    (c.interference.enabled && !c.cpu_suppress.enabled))
			abort();
	}
	qos_config_free(&c);

	char *text = malloc(size + 1), list[8192];
	struct qos_cpumask m, back;
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (!qos_cpulist_parse(text, &m)) {
		qos_cpulist_format(&m, list, sizeof(list));
		if (qos_cpulist_parse(list, &back) || memcmp(&m, &back, sizeof(m)))
			abort();
	}
	free(text);
	return 0;
}
