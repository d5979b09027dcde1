/* SPDX-License-Identifier: Apache-2.0 */
/* runqlat: shared by runqlat.bpf.c and runqlat.c */
#ifndef ANOLE_DIAG_RUNQLAT_H
#define ANOLE_DIAG_RUNQLAT_H
#include "diag_common.h"

#define RUNQLAT_MAX_TASKS 10240

/* -P / -L: a histogram per process or thread, with its name */
struct runqlat_task_hist {
	struct diag_hist hist;
	char comm[DIAG_COMM_LEN];
};

#endif
