/* SPDX-License-Identifier: Apache-2.0 */
/* A progress line on stderr, shown only on a terminal and never with --quiet. */
#ifndef ANOLE_PROGRESS_H
#define ANOLE_PROGRESS_H
#include <stdbool.h>
#include <stdint.h>

struct anole_progress;

/* Global switch set by --quiet; progress is also off when stderr is no tty. */
void anole_progress_set_quiet(bool quiet);

/* total 0 = unknown. unit "B" shows bytes with IEC units, else counts. */
struct anole_progress *anole_progress_start(const char *title, uint64_t total,
					     const char *unit);
/* Thread-safe; cheap (redraws at most ~10 times a second). */
void anole_progress_add(struct anole_progress *p, uint64_t n);
void anole_progress_set(struct anole_progress *p, uint64_t done);
void anole_progress_done(struct anole_progress *p);
#endif
