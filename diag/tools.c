// SPDX-License-Identifier: Apache-2.0
/* The table of diag tools, made from tools.def (the one list of them). */
#include "diag.h"

#include <string.h>

const struct diag_tool *const diag_tools[] = {
#define DIAG_TOOL(name) &diag_tool_##name,
#define DIAG_TOOL_BPF(name) &diag_tool_##name,
#include "tools.def"
#undef DIAG_TOOL
#undef DIAG_TOOL_BPF
	NULL,
};

const struct diag_tool *diag_tool_find(const char *name)
{
	for (size_t i = 0; diag_tools[i]; i++)
		if (!strcmp(diag_tools[i]->name, name))
			return diag_tools[i];
	return NULL;
}
