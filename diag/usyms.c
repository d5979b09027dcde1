// SPDX-License-Identifier: Apache-2.0
/* User-space symbols through libdwfl (see usyms.h). */
#include "usyms.h"

#include "anole/xalloc.h"

#include <elfutils/libdwfl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct usyms_proc {
	uint32_t pid;
	Dwfl *dwfl; /* NULL: the process could not be read */
};

struct diag_usyms {
	struct usyms_proc *procs;
	size_t n, alloc;
};

/* The ELF files are found through the process's mappings; separate
 * debuginfo only by build ID under /usr/lib/debug (distributions' dbgsym
 * packages): the standard lookup may also ask debuginfod servers over the
 * network, which a diagnosis tool must not wait for. Symbol tables are
 * enough for names. */
static char *debuginfo_path;
static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_build_id_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

struct diag_usyms *diag_usyms_new(void)
{
	return xcalloc(1, sizeof(struct diag_usyms));
}

void diag_usyms_free(struct diag_usyms *us)
{
	if (!us)
		return;
	for (size_t i = 0; i < us->n; i++)
		if (us->procs[i].dwfl)
			dwfl_end(us->procs[i].dwfl);
	free(us->procs);
	free(us);
}

static Dwfl *proc_dwfl(struct diag_usyms *us, uint32_t pid)
{
	struct usyms_proc *p;

	for (size_t i = 0; i < us->n; i++)
		if (us->procs[i].pid == pid)
			return us->procs[i].dwfl;
	xgrow(&us->procs, &us->alloc, us->n + 1, sizeof(*us->procs));
	p = &us->procs[us->n++];
	p->pid = pid;
	p->dwfl = dwfl_begin(&proc_callbacks);
	if (p->dwfl && (dwfl_linux_proc_report(p->dwfl, (pid_t)pid) ||
			dwfl_report_end(p->dwfl, NULL, NULL))) {
		dwfl_end(p->dwfl);
		p->dwfl = NULL;
	}
	return p->dwfl;
}

bool diag_usyms_name(struct diag_usyms *us, uint32_t pid, uint64_t addr, bool return_addr,
		     char *buf, size_t len)
{
	Dwfl *dwfl = pid ? proc_dwfl(us, pid) : NULL;
	Dwarf_Addr look = return_addr && addr ? addr - 1 : addr, start = 0;
	Dwfl_Module *mod = dwfl ? dwfl_addrmodule(dwfl, look) : NULL;
	const char *name, *mname, *slash;

	if (!mod) {
		snprintf(buf, len, "0x%llx", (unsigned long long)addr);
		return false;
	}
	name = dwfl_module_addrname(mod, look);
	if (name) {
		snprintf(buf, len, "%s", name);
		return true;
	}
	mname = dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL);
	slash = mname ? strrchr(mname, '/') : NULL;
	snprintf(buf, len, "%s+0x%llx", slash ? slash + 1 : mname ? mname : "?",
		 (unsigned long long)(addr - start));
	return false;
}
