/* SPDX-License-Identifier: Apache-2.0 */
/* Owned, growable byte buffers, always NUL-terminated (git's strbuf idea). */
#ifndef ANOLE_STRBUF_H
#define ANOLE_STRBUF_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *buf;
	size_t len;
	size_t alloc;
};

#define STRBUF_INIT { NULL, 0, 0 }

void strbuf_init(struct strbuf *sb, size_t hint);
void strbuf_release(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_reset(struct strbuf *sb);
void strbuf_setlen(struct strbuf *sb, size_t len);
void strbuf_add(struct strbuf *sb, const void *data, size_t len);
void strbuf_addstr(struct strbuf *sb, const char *s);
void strbuf_addch(struct strbuf *sb, char c);
void strbuf_addzero(struct strbuf *sb, size_t n);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Take ownership of the buffer; sb is reset. Never returns NULL. */
char *strbuf_detach(struct strbuf *sb, size_t *len);
/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
size_t anole_utf8_len(const void *p, size_t n);
/* Text for a terminal: valid UTF-8 as is; controls, other bytes, '\\' (and
 * '"' if escape_quote) as \xNN. */
void strbuf_add_escaped_text(struct strbuf *sb, const char *s, size_t n, bool escape_quote);
/* Append a JSON string literal (quotes and escapes) of raw bytes. */
void strbuf_add_json_string(struct strbuf *sb, const char *s, size_t len);
/* A size with an optional K/M/G (binary) suffix. */
int anole_parse_size(const char *s, unsigned long long *out);
#endif
