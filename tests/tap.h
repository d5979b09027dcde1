/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The C unit tests' one harness: CHECK(cond, fmt, ...) prints a TAP line
 * ("ok N - ..." or "not ok N - ..." with the failed expression and where),
 * and tap_done() prints the plan and a summary and gives the exit status.
 * Included by exactly one file per test program (the state is static).
 */
#ifndef ANOLE_TESTS_TAP_H
#define ANOLE_TESTS_TAP_H
#include <stdarg.h>
#include <stdio.h>

static int ntests, nfailed;

#define CHECK(cond, ...) check_((cond), #cond, __FILE__, __LINE__, __VA_ARGS__)

static void check_(int ok, const char *expr, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void check_(int ok, const char *expr, const char *file, int line, const char *fmt, ...)
{
	va_list ap;

	ntests++;
	printf("%sok %d - ", ok ? "" : "not ", ntests);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!ok) {
		nfailed++;
		printf("#   failed: %s (%s:%d)\n", expr, file, line);
	}
}
#endif
