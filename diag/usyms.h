/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User-space symbols of the diag tools' user stacks: addresses in a process
 * named from its mappings (/proc/PID/maps) and the ELF symbol tables of
 * its executable and libraries, through elfutils' libdwfl. The process must
 * still exist when its stack is symbolised.
 */
#ifndef ANOLE_DIAG_USYMS_H
#define ANOLE_DIAG_USYMS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The processes looked at so far, each read once; use one per report
 * (a process may exec between reports). */
struct diag_usyms;

struct diag_usyms *diag_usyms_new(void);
void diag_usyms_free(struct diag_usyms *us);

/*
 * Name the code at ADDR in process PID into buf: "function", else
 * "module+0xOFFSET" (no symbol), else "0xADDR" (no mapping, or the process
 * is gone). True if a function was found. RETURN_ADDR: ADDR is a return
 * address (any frame but the innermost), looked up one byte back so a call
 * at a function's end is not attributed to the next function.
 */
bool diag_usyms_name(struct diag_usyms *us, uint32_t pid, uint64_t addr, bool return_addr,
		     char *buf, size_t len);

#endif
