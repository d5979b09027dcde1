/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Errors and logging. Library code never exits: it reports through
 * anole_error(), which logs the message and returns a negative errno,
 * and the caller passes that value up to the command.
 *
 * The one sign convention, as in the kernel: every library function that
 * can fail returns 0 (or a count, a size, a descriptor) on success and a
 * negative errno on failure, never -1 with errno set and never a positive
 * errno. anole_error() and anole_error_code() take the errno as errno holds
 * it, positive (errno, EINVAL, or -ret for a failed call's ret), and return
 * its negative: `return anole_error_code(EINVAL, ...)`. A value from a call
 * that returns positive errnos (pthread_*, getaddrinfo's EAI_SYSTEM aside)
 * is made negative where it enters the library.
 */
#ifndef ANOLE_ERROR_H
#define ANOLE_ERROR_H
#include <stdarg.h>

enum anole_log_level { ANOLE_LOG_ERROR, ANOLE_LOG_WARN, ANOLE_LOG_INFO, ANOLE_LOG_DEBUG };

typedef void (*anole_log_sink)(enum anole_log_level level, const char *msg, void *opaque);

/* Messages above this level are dropped. Default: ANOLE_LOG_WARN. */
void anole_log_set_level(enum anole_log_level level);
enum anole_log_level anole_log_get_level(void);
/* Replace the stderr sink (e.g. a daemon's log file); NULL restores stderr. */
void anole_log_set_sink(anole_log_sink sink, void *opaque);
/* Program name shown before messages on stderr ("anole"). */
void anole_log_set_prog(const char *prog);

void anole_log(enum anole_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void anole_logv(enum anole_log_level level, const char *fmt, va_list ap);

/*
 * Log an error and return -errnum (or -EIO when errnum is 0), errnum being
 * a positive errno; ": strerror(errnum)" is appended. (A negative errnum is
 * taken as its absolute value, without the suffix: a slip that stays an
 * error, but write the positive form.)
 */
int anole_error(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, without the strerror suffix: for format errors with a code. */
int anole_error_code(int errnum, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define anole_warn(...)  anole_log(ANOLE_LOG_WARN, __VA_ARGS__)
#define anole_info(...)  anole_log(ANOLE_LOG_INFO, __VA_ARGS__)
#define anole_debug(...) anole_log(ANOLE_LOG_DEBUG, __VA_ARGS__)

/* The last error message of this thread, "" if none. */
const char *anole_last_error(void);

#endif
