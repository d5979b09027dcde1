// SPDX-License-Identifier: Apache-2.0
/*
 * Unit tests of qos/journal.c and qos/config.c on plain files: a knob's
 * original bytes come back after a "crash" (the journal left unclosed),
 * per-device lines are restored (or removed) per device, a torn last line
 * is ignored, a damaged state file restores nothing, and configuration
 * errors name their line.
 */
#include "anole/error.h"
#include "qos.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int failures;
#define CHECK(cond) do { if (!(cond)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", \
	__FILE__, __LINE__, #cond); failures++; } } while (0)

static char dir[] = "/tmp/test_qos.XXXXXX";

static void put(const char *name, const char *text)
{
	char p[256];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "w");
	fputs(text, f);
	fclose(f);
}

static const char *get(const char *name)
{
	static char buf[4096];
	char p[256];
	FILE *f;
	size_t n;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	f = fopen(p, "r");
	if (!f)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return buf;
}

static char *path(const char *name)
{
	static char p[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

static void test_journal(void)
{
	struct qos_journal *j;
	unsigned n;
	char state[256];

	snprintf(state, sizeof(state), "%s/t.state", dir);
	put("quota", "-1\n");
	put("odd", "a b\tc\\\n");
	CHECK(qos_journal_open(&j, state) == 0);
	CHECK(qos_knob_set(j, path("quota"), NULL, "20000") == 0);
	CHECK(qos_knob_set(j, path("quota"), NULL, "10000") == 0); /* journaled once */
	CHECK(qos_knob_set(j, path("odd"), NULL, "x") == 0);
	CHECK(qos_journal_count(j) == 2);
	CHECK(!strcmp(get("quota"), "10000"));
	/* a crash: the journal is not closed; the state file restores */
	CHECK(qos_journal_restore_file(state, &n) == 0 && n == 2);
	CHECK(!strcmp(get("quota"), "-1"));     /* the trailing newline is the kernel's */
	CHECK(!strcmp(get("odd"), "a b\tc\\"));
	CHECK(access(state, F_OK) != 0);
	CHECK(qos_journal_restore_file(state, &n) == 0 && n == 0);
	qos_journal_close(j); /* writes the originals again; the file is gone already */

	/* an empty original (v2 cpuset.cpus: inherit) comes back empty */
	put("cpus", "\n");
	CHECK(qos_journal_open(&j, state) == 0);
	CHECK(qos_knob_set(j, path("cpus"), NULL, "1") == 0);
	CHECK(!strcmp(get("cpus"), "1"));
	CHECK(qos_journal_restore_file(state, &n) == 0 && n == 1);
	CHECK(!strcmp(get("cpus"), "\n")); /* what the kernel reads as empty */
	qos_journal_close(j);

	/* reset puts one knob back; close puts the rest back and removes the file */
	CHECK(qos_journal_open(&j, state) == 0);
	CHECK(qos_knob_set(j, path("quota"), NULL, "5000") == 0);
	CHECK(qos_knob_reset(j, path("quota"), NULL) == 0);
	CHECK(!strcmp(get("quota"), "-1"));
	CHECK(qos_knob_set(j, path("quota"), NULL, "7000") == 0);
	CHECK(qos_journal_close(j) == 0);
	CHECK(!strcmp(get("quota"), "-1"));
	CHECK(access(state, F_OK) != 0);

	/* per-device knobs: the device's own value, or 0 (no rule) */
	put("bps", "8:0 100\n");
	CHECK(qos_journal_open(&j, state) == 0);
	CHECK(qos_knob_set(j, path("bps"), "8:0", "5") == 0);
	CHECK(qos_knob_set(j, path("bps"), "254:0", "7") == 0);
	CHECK(!strcmp(get("bps"), "254:0 7"));
	CHECK(qos_journal_restore_file(state, &n) == 0 && n == 2);
	/* a plain file keeps the last write: newest first, so 8:0's is last */
	CHECK(!strcmp(get("bps"), "8:0 100"));
	qos_journal_close(j);

	/* a torn last line is ignored; a damaged one restores nothing */
	put("t.state", "anole-qos-state 1\n");
	char line[512];
	snprintf(line, sizeof(line), "anole-qos-state 1\n");
	for (const char *p = path("quota"); *p; p++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "%02x", (unsigned char)*p);
	strcat(line, " - 3432\n");
	strcat(line, "2f61 - 3");
	put("t.state", line);
	put("quota", "9");
	CHECK(qos_journal_restore_file(state, &n) == 0 && n == 1);
	CHECK(!strcmp(get("quota"), "42"));
	put("t.state", "anole-qos-state 1\nzz - 00\n");
	CHECK(qos_journal_restore_file(state, &n) < 0);
	CHECK(access(state, F_OK) == 0); /* kept for another try */
	put("t.state", "not a state file\n");
	CHECK(qos_journal_restore_file(state, &n) < 0);
	unlink(state);
}

static void test_config(void)
{
	static const struct { const char *text; const char *err; } bad[] = {
		{ "[cpu_suppress]\nthreshold_percent = 0\n", "f:2: " },
		{ "interval_ms = 5\n", "f:1: " },
		{ "\n\n[be]\ncgroups = [\"relative\"]\n", "f:4: " },
		{ "name = \"a/b\"\n", "f:1: " },
		{ "\nname = \"web-be\"\n", "f:2: name 'web-be' ends in '-be'" },
		{ "[blkio]\ndevices = [\"sda\"]\n", "f:2: " },
		{ "[memory]\nenabled = 1\n", "f:2: " },
		{ "nope = 1\n", "f:1: " },
		{ "[ls\n", "f:1" },
		{ "[cpu_suppress]\nmode = \"pinned\"\n", "f:2: " },
		{ "[interference]\nenabled = true\n", "f:2: " }, /* no latency source */
		{ "[interference]\nlatency_file = \"rel\"\n", "f:2: " },
		{ "[probe]\nenabled = true\n[interference]\nenabled = true\n"
		  "decrease_percent = 95\n", "f:5: " },
		{ "[probe]\nenabled = true\n[cpu_suppress]\nenabled = false\n"
		  "[interference]\nenabled = true\n", "f:6: " },
	};
	struct qos_config c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		qos_config_defaults(&c);
		CHECK(qos_config_parse_text(&c, "f", bad[i].text, strlen(bad[i].text)) < 0);
		if (strncmp(anole_last_error(), bad[i].err, strlen(bad[i].err)))
			fprintf(stderr, "case %zu: '%s'\n", i, anole_last_error()), failures++;
		qos_config_free(&c);
	}
	const char *good = "name = \"x\"\ninterval_ms = 250\n[be]\ncgroups = [\"/a/\", \"/b\"]\n"
		"[cpu_suppress]\nthreshold_percent = 80\n[blkio]\ndevices = [\"8:0\"]\nhold_ms = 2500\n";
	qos_config_defaults(&c);
	CHECK(qos_config_parse_text(&c, "f", good, strlen(good)) == 0);
	CHECK(c.interval_ms == 250 && c.cpu_suppress.threshold_percent == 80);
	CHECK(c.nadopt[QOS_BE] == 2 && !strcmp(c.adopt[QOS_BE][0].rel, "/a") &&
	      c.adopt[QOS_BE][1].line == 4);
	CHECK(c.blkio.ndevices == 1 && !strcmp(c.blkio.devices[0], "8:0") && c.blkio.hold_ms == 2500);
	CHECK(c.memory.enabled && c.evict.cooldown_ms == 5000);
	qos_config_free(&c);
}

static void test_cpulist(void)
{
	static const struct { const char *in, *out; unsigned n; } good[] = {
		{ "0-1\n", "0-1", 2 }, { "3", "3", 1 }, { "0,2-4,7", "0,2-4,7", 5 },
		{ "1,0", "0-1", 2 }, { "", "", 0 }, { "1023", "1023", 1 },
		{ "62-65", "62-65", 4 },
	};
	static const char *const bad[] = { "1024", "a", "3-1", "1-", "1,,2", "-1", "1 2" };
	struct qos_cpumask m;
	char buf[64];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK(qos_cpulist_parse(good[i].in, &m) == 0);
		qos_cpulist_format(&m, buf, sizeof(buf));
		CHECK(!strcmp(buf, good[i].out));
		CHECK(qos_cpumask_count(&m) == good[i].n);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (qos_cpulist_parse(bad[i], &m) == 0)
			fprintf(stderr, "cpulist '%s' accepted\n", bad[i]), failures++;
	/* too long for the buffer: whole ranges only */
	CHECK(qos_cpulist_parse("0,2,4,6,8", &m) == 0);
	qos_cpulist_format(&m, buf, 6);
	CHECK(!strcmp(buf, "0,2,4"));
}

static void quiet(enum anole_log_level level, const char *msg, void *opaque) { }

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	anole_log_set_sink(quiet, NULL);
	test_journal();
	test_config();
	test_cpulist();
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd))
		failures++;
	if (failures)
		fprintf(stderr, "%d failure(s)\n", failures);
	return failures ? 1 : 0;
}
