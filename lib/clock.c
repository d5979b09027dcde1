// SPDX-License-Identifier: Apache-2.0
#include "anole/clock.h"

#include <time.h>

double anole_mono_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
