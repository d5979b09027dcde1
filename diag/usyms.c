// SPDX-License-Identifier: Apache-2.0
/* User-space symbolizer over libdwfl (see usyms.h). */
#include "usyms.h"

#include <elfutils/libdwfl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct usyms {
	Dwfl *dwfl;
	int pid;
};

static char *debuginfo_path;

static const Dwfl_Callbacks proc_callbacks = {
	.find_elf = dwfl_linux_proc_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.debuginfo_path = &debuginfo_path,
};

int usyms_open(int pid, struct usyms **out)
{
	struct usyms *u;
	int ret;

	*out = NULL;
	if (pid <= 0)
		return -EINVAL;
	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->pid = pid;
	u->dwfl = dwfl_begin(&proc_callbacks);
	if (!u->dwfl) {
		free(u);
		return -ENOMEM;
	}
	dwfl_report_begin(u->dwfl);
	ret = dwfl_linux_proc_report(u->dwfl, pid);
	if (dwfl_report_end(u->dwfl, NULL, NULL) != 0 && !ret)
		ret = -1;
	if (ret) {
		/* an errno from reading /proc, or -1 from libdwfl itself */
		dwfl_end(u->dwfl);
		free(u);
		return ret > 0 ? -ret : -EINVAL;
	}
	*out = u;
	return 0;
}

static const char *base_name(const char *path)
{
	const char *slash = path ? strrchr(path, '/') : NULL;

	return slash ? slash + 1 : path;
}

int usyms_resolve(struct usyms *u, uint64_t addr, int is_return, char *buf, size_t len)
{
	/* a return address follows its call: look the call up */
	uint64_t lookup = is_return && addr ? addr - 1 : addr;
	Dwfl_Module *mod = u ? dwfl_addrmodule(u->dwfl, lookup) : NULL;
	const char *modname, *name;
	GElf_Off off = 0;
	GElf_Sym sym;

	if (!mod) {
		snprintf(buf, len, "0x%" PRIx64, addr);
		return -ENOENT;
	}
	modname = base_name(dwfl_module_info(mod, NULL, NULL, NULL, NULL, NULL, NULL, NULL));
	name = dwfl_module_addrinfo(mod, lookup, &off, &sym, NULL, NULL, NULL);
	if (!name || !*name) {
		snprintf(buf, len, "0x%" PRIx64 " (%s)", addr, modname ? modname : "?");
		return -ENOENT;
	}
	snprintf(buf, len, "%s+0x%" PRIx64 " (%s)", name, (uint64_t)off + (lookup != addr),
		 modname ? modname : "?");
	return 0;
}

void usyms_close(struct usyms *u)
{
	if (!u)
		return;
	dwfl_end(u->dwfl);
	free(u);
}
