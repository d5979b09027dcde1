/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation that cannot fail: out of memory aborts, as in git. Everything
 * else returns errors to the caller.
 */
#ifndef ANOLE_XALLOC_H
#define ANOLE_XALLOC_H
#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* Grow *array so that it holds at least `need` items of `size` bytes. */
void xgrow(void *array_ptr, size_t *alloc, size_t need, size_t size);

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + (a) - 1) / (a) * (a))
#define DIV_ROUND_UP(x, a) (((x) + (a) - 1) / (a))
#endif
