// SPDX-License-Identifier: Apache-2.0
#include "anole/xalloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *check(void *p)
{
	if (!p) {
		fputs("anole: fatal: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xmalloc(size_t n) { return check(malloc(n ? n : 1)); }
void *xcalloc(size_t nmemb, size_t size) { return check(calloc(nmemb ? nmemb : 1, size ? size : 1)); }
void *xrealloc(void *p, size_t n) { return check(realloc(p, n ? n : 1)); }
char *xstrdup(const char *s) { return check(strdup(s)); }
char *xstrndup(const char *s, size_t n) { return check(strndup(s, n)); }

void *xmemdup(const void *p, size_t n)
{
	void *q = xmalloc(n);

	if (n)
		memcpy(q, p, n);
	return q;
}

void xgrow(void *array_ptr, size_t *alloc, size_t need, size_t size)
{
	void **array = array_ptr;
	size_t n = *alloc;

	if (need <= n)
		return;
	n = n < 16 ? 16 : n;
	while (n < need)
		n = n / 2 * 3;
	if (n > (size_t)-1 / size)
		check(NULL);
	*array = xrealloc(*array, n * size);
	*alloc = n;
}
