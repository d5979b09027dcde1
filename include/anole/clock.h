/* SPDX-License-Identifier: Apache-2.0 */
/* The one monotonic clock helper: intervals, deadlines, rates. */
#ifndef ANOLE_CLOCK_H
#define ANOLE_CLOCK_H

/* Seconds of CLOCK_MONOTONIC (not the wall clock: steps of it do not move
 * intervals measured with this). */
double anole_mono_seconds(void);
#endif
