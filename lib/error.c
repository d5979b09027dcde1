// SPDX-License-Identifier: Apache-2.0
#include "anole/error.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static enum anole_log_level log_level = ANOLE_LOG_WARN;
static anole_log_sink log_sink;
static void *log_opaque;
static const char *log_prog = "anole";
static _Thread_local char last_error[1024];

void anole_log_set_level(enum anole_log_level level) { log_level = level; }
enum anole_log_level anole_log_get_level(void) { return log_level; }
void anole_log_set_prog(const char *prog) { log_prog = prog; }

void anole_log_set_sink(anole_log_sink sink, void *opaque)
{
	log_sink = sink;
	log_opaque = opaque;
}

static const char *level_word(enum anole_log_level level)
{
	switch (level) {
	case ANOLE_LOG_ERROR: return "error";
	case ANOLE_LOG_WARN: return "warning";
	case ANOLE_LOG_INFO: return "info";
	default: return "debug";
	}
}

static void emit(enum anole_log_level level, const char *msg)
{
	if (level > log_level)
		return;
	if (log_sink) {
		log_sink(level, msg, log_opaque);
		return;
	}
	if (level == ANOLE_LOG_INFO)
		fprintf(stderr, "%s\n", msg);
	else
		fprintf(stderr, "%s: %s: %s\n", log_prog, level_word(level), msg);
}

void anole_logv(enum anole_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	emit(level, msg);
}

void anole_log(enum anole_log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	anole_logv(level, fmt, ap);
	va_end(ap);
}

static int report(int errnum, int with_strerror, const char *fmt, va_list ap)
{
	int n = vsnprintf(last_error, sizeof(last_error), fmt, ap);

	if (n < 0)
		n = 0;
	if (with_strerror && errnum > 0 && (size_t)n < sizeof(last_error))
		snprintf(last_error + n, sizeof(last_error) - n, ": %s", strerror(errnum));
	emit(ANOLE_LOG_ERROR, last_error);
	if (errnum < 0)
		errnum = -errnum;
	return errnum ? -errnum : -EIO;
}

int anole_error(int errnum, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = report(errnum, 1, fmt, ap);
	va_end(ap);
	return ret;
}

int anole_error_code(int errnum, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = report(errnum, 0, fmt, ap);
	va_end(ap);
	return ret;
}

const char *anole_last_error(void) { return last_error; }
