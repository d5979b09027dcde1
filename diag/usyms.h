/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User-space symbols of the diag tools' user stacks (profile, offcputime,
 * nosched, memleak): addresses in a process named from its mappings
 * (/proc/PID/maps: executable, libraries, vdso) and the ELF symbol tables
 * of those files, or separate debug info found by build ID, through
 * elfutils' libdwfl. The process must exist when it is first read; what
 * was read stays usable after it is gone. Errors are -errno; nothing is
 * printed.
 */
#ifndef ANOLE_DIAG_USYMS_H
#define ANOLE_DIAG_USYMS_H
#include <stddef.h>
#include <stdint.h>

/* The processes read so far, each read once (on its first name) unless
 * reloaded: tools that see many processes use one per report (a process
 * may exec between reports); one that follows a process keeps it and
 * reloads before each report. */
struct diag_usyms;

struct diag_usyms *diag_usyms_new(void);
void diag_usyms_free(struct diag_usyms *us);

/*
 * Read the modules PID has mapped now (libraries dlopen()ed since the last
 * read), replacing those read before: 0, or -errno if the process cannot
 * be read (gone, not allowed), in which case what was read before stays.
 */
int diag_usyms_load(struct diag_usyms *us, uint32_t pid);

enum {
	/* ADDR is a return address (every frame but the innermost of a
	 * sampled stack; every frame of a stack taken at a function's
	 * return): looked up one byte back, at the call, so a call that is
	 * its function's last instruction is not put in the next function */
	DIAG_USYM_RETURN_ADDR = 1,
	/* "function+0xOFFSET (module)" instead of "function" */
	DIAG_USYM_OFFSET = 2,
};

/*
 * Name the code at ADDR in process PID into buf: "function" (with
 * DIAG_USYM_OFFSET: "function+0xOFFSET (module)") and return 0; if no
 * symbol covers it, "module+0xOFFSET" (from the module's start) and
 * -ENOENT; if no module does, or the process could not be read, "0xADDR"
 * and -ENOENT or the error of reading it.
 */
int diag_usyms_name(struct diag_usyms *us, uint32_t pid, uint64_t addr, unsigned flags,
		    char *buf, size_t len);

#endif
