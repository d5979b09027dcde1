/* SPDX-License-Identifier: Apache-2.0 */
/*
 * User-space symbols of a live process, through elfutils' libdwfl: the
 * ELF files mapped in /proc/PID/maps (executable, libraries, vdso), their
 * symbol tables and, where installed, separate debug info. Errors are
 * -errno; nothing is printed.
 */
#ifndef ANOLE_DIAG_USYMS_H
#define ANOLE_DIAG_USYMS_H
#include <stddef.h>
#include <stdint.h>

struct usyms;

/* Read the modules PID has mapped now (a later dlopen needs a new open). */
int usyms_open(int pid, struct usyms **out);
/*
 * Write "func+0xoff (module)" for an address of the process into buf, and
 * return 0; if no symbol covers it, "0xaddr (module)" or "0xaddr" and
 * -ENOENT. For a return address (a stack frame other than the innermost),
 * set is_return: the call is looked up, at addr - 1, in case it was the
 * function's last instruction.
 */
int usyms_resolve(struct usyms *u, uint64_t addr, int is_return, char *buf, size_t len);
void usyms_close(struct usyms *u);

#endif
