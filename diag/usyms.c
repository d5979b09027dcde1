// SPDX-License-Identifier: Apache-2.0
/* User-space symbols through libdwfl (see usyms.h). */
#include "usyms.h"

#include "anole/xalloc.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct usyms_proc {
	uint32_t pid;
	Dwfl *dwfl; /* NULL: the process could not be read (err) */
	int err;
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

/* The modules PID has mapped now: 0 and *out, or -errno. */
static int proc_read(uint32_t pid, Dwfl **out)
{
	Dwfl *dwfl;
	int ret;

	*out = NULL;
	if (!pid)
		return -EINVAL;
	dwfl = dwfl_begin(&proc_callbacks);
	if (!dwfl)
		return -ENOMEM;
	dwfl_report_begin(dwfl);
	ret = dwfl_linux_proc_report(dwfl, (pid_t)pid);
	if (dwfl_report_end(dwfl, NULL, NULL) != 0 && !ret)
		ret = -1;
	if (ret) {
		/* an errno from reading /proc, or -1 from libdwfl itself */
		dwfl_end(dwfl);
		return ret > 0 ? -ret : -EINVAL;
	}
	*out = dwfl;
	return 0;
}

static struct usyms_proc *proc_find(struct diag_usyms *us, uint32_t pid)
{
	for (size_t i = 0; i < us->n; i++)
		if (us->procs[i].pid == pid)
			return &us->procs[i];
	return NULL;
}

static struct usyms_proc *proc_add(struct diag_usyms *us, uint32_t pid)
{
	struct usyms_proc *p;

	xgrow(&us->procs, &us->alloc, us->n + 1, sizeof(*us->procs));
	p = &us->procs[us->n++];
	*p = (struct usyms_proc){ .pid = pid };
	return p;
}

int diag_usyms_load(struct diag_usyms *us, uint32_t pid)
{
	struct usyms_proc *p = proc_find(us, pid);
	Dwfl *dwfl;
	int ret = proc_read(pid, &dwfl);

	if (!p) {
		p = proc_add(us, pid);
		p->err = ret;
	}
	if (ret)
		return ret; /* what was read before stays */
	if (p->dwfl)
		dwfl_end(p->dwfl);
	p->dwfl = dwfl;
	p->err = 0;
	return 0;
}

static const char *base_name(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path ? path : "?";
}

int diag_usyms_name(struct diag_usyms *us, uint32_t pid, uint64_t addr, unsigned flags,
		    char *buf, size_t len)
{
	struct usyms_proc *p = proc_find(us, pid);
	uint64_t look = (flags & DIAG_USYM_RETURN_ADDR) && addr ? addr - 1 : addr;
	Dwfl_Module *mod;
	const char *name, *mname;
	Dwarf_Addr start = 0;
	GElf_Off off = 0;
	GElf_Sym sym;

	if (!p) {
		diag_usyms_load(us, pid);
		p = proc_find(us, pid);
	}
	mod = p->dwfl ? dwfl_addrmodule(p->dwfl, look) : NULL;
	if (!mod) {
		snprintf(buf, len, "0x%" PRIx64, addr);
		return p->err ? p->err : -ENOENT;
	}
	mname = base_name(dwfl_module_info(mod, NULL, &start, NULL, NULL, NULL, NULL, NULL));
	name = dwfl_module_addrinfo(mod, look, &off, &sym, NULL, NULL, NULL);
	if (!name || !*name) {
		snprintf(buf, len, "%s+0x%" PRIx64, mname, addr - (uint64_t)start);
		return -ENOENT;
	}
	if (flags & DIAG_USYM_OFFSET) /* the offset of ADDR itself, not of the call */
		snprintf(buf, len, "%s+0x%" PRIx64 " (%s)", name, (uint64_t)off + (addr - look),
			 mname);
	else
		snprintf(buf, len, "%s", name);
	return 0;
}
