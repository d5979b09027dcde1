// SPDX-License-Identifier: Apache-2.0
/*
 * A strict TOML 1.0 reader (toml.h): recursive descent over the bytes,
 * one value tree with the line of every value. The rules on defining a
 * table once are kept with a mark per table (where it came from), as the
 * specification states them:
 *   - [a.b] defines a.b; tables on the way (a) may be defined later by [a];
 *   - a.b = 1 defines table a by dotted keys: no header may define it
 *     afterwards, and dotted keys may not reach into a header's table;
 *   - [[a]] appends a table to the array of tables a; [[a.b]] and [a.c]
 *     go into a's last element;
 *   - inline tables and value arrays are complete as written.
 */
#include "anole/toml.h"

#include "anole/xalloc.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32            /* nested arrays and inline tables */
#define MAX_KEYS 4096           /* per table (linear lookups stay cheap) */
#define MAX_ITEMS 65536         /* per array */
#define MAX_KEY_PARTS 32

enum origin {
	ORIGIN_IMPLICIT,        /* a table created on the way to a header's */
	ORIGIN_HEADER,          /* defined by [header] */
	ORIGIN_DOTTED,          /* defined by dotted keys */
	ORIGIN_SEALED,          /* inline table, value array: complete */
	ORIGIN_TABLE_ARRAY,     /* an array of tables ([[header]]) */
	ORIGIN_ROOT,
};

struct parser {
	const char *p, *end;
	unsigned line;
	unsigned depth;
	char *err;
	size_t errsize;
	bool failed;
};

static bool fail(struct parser *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->failed)
		return false;
	ps->failed = true;
	n = snprintf(ps->err, ps->errsize, "line %u: ", ps->line);
	if (n < 0 || (size_t)n >= ps->errsize)
		return false;
	va_start(ap, fmt);
	vsnprintf(ps->err + n, ps->errsize - (size_t)n, fmt, ap);
	va_end(ap);
	return false;
}

/* ------------------------------------------------------------ values */

static struct toml_value *new_value(enum toml_type type, unsigned line, enum origin origin)
{
	struct toml_value *v = xcalloc(1, sizeof(*v));

	v->type = type;
	v->line = line;
	v->origin = (unsigned char)origin;
	return v;
}

void toml_free(struct toml_value *v)
{
	if (!v)
		return;
	switch (v->type) {
	case TOML_STRING:
		free(v->u.string);
		break;
	case TOML_ARRAY:
		for (size_t i = 0; i < v->u.array.n; i++)
			toml_free(v->u.array.items[i]);
		free(v->u.array.items);
		break;
	case TOML_TABLE:
		for (size_t i = 0; i < v->u.table.n; i++) {
			free(v->u.table.kv[i].key);
			toml_free(v->u.table.kv[i].value);
		}
		free(v->u.table.kv);
		break;
	default:
		break;
	}
	free(v);
}

const struct toml_value *toml_get(const struct toml_value *t, const char *key)
{
	if (!t || t->type != TOML_TABLE)
		return NULL;
	for (size_t i = 0; i < t->u.table.n; i++)
		if (!strcmp(t->u.table.kv[i].key, key))
			return t->u.table.kv[i].value;
	return NULL;
}

const char *toml_type_name(enum toml_type type)
{
	switch (type) {
	case TOML_STRING: return "a string";
	case TOML_INTEGER: return "an integer";
	case TOML_BOOL: return "a boolean";
	case TOML_ARRAY: return "an array";
	default: return "a table";
	}
}

static struct toml_value *table_get(struct toml_value *t, const char *key)
{
	return (struct toml_value *)toml_get(t, key);
}

/* Add key (owned from now on) to table t. */
static bool table_add(struct parser *ps, struct toml_value *t, char *key, struct toml_value *v)
{
	if (t->u.table.n >= MAX_KEYS) {
		free(key);
		toml_free(v);
		return fail(ps, "more than %u keys in one table", MAX_KEYS);
	}
	xgrow(&t->u.table.kv, &t->u.table.alloc, t->u.table.n + 1, sizeof(*t->u.table.kv));
	t->u.table.kv[t->u.table.n].key = key;
	t->u.table.kv[t->u.table.n].value = v;
	t->u.table.n++;
	return true;
}

static bool array_add(struct parser *ps, struct toml_value *a, struct toml_value *v)
{
	if (a->u.array.n >= MAX_ITEMS) {
		toml_free(v);
		return fail(ps, "more than %u items in one array", MAX_ITEMS);
	}
	xgrow(&a->u.array.items, &a->u.array.alloc, a->u.array.n + 1, sizeof(*a->u.array.items));
	a->u.array.items[a->u.array.n++] = v;
	return true;
}

/* Inline tables are complete as written, with the tables their dotted keys made. */
static void seal(struct toml_value *v)
{
	if (v->type == TOML_TABLE) {
		v->origin = ORIGIN_SEALED;
		for (size_t i = 0; i < v->u.table.n; i++)
			seal(v->u.table.kv[i].value);
	}
}

/* ------------------------------------------------------------ lexing */

static bool at_end(const struct parser *ps) { return ps->p >= ps->end; }
static int peek(const struct parser *ps, size_t k)
{
	return ps->p + k < ps->end ? (unsigned char)ps->p[k] : -1;
}

static void skip_ws(struct parser *ps)
{
	while (!at_end(ps) && (*ps->p == ' ' || *ps->p == '\t'))
		ps->p++;
}

/* A comment runs to the end of the line; no control characters but tab. */
static bool skip_comment(struct parser *ps)
{
	if (peek(ps, 0) != '#')
		return true;
	for (ps->p++; !at_end(ps) && *ps->p != '\n'; ps->p++) {
		unsigned char c = (unsigned char)*ps->p;

		if (c == '\r' && peek(ps, 1) == '\n')
			continue;
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return fail(ps, "control character 0x%02x in a comment", c);
	}
	return true;
}

/* At a newline (or the end): consume it. */
static bool newline(struct parser *ps)
{
	if (at_end(ps))
		return true;
	if (*ps->p == '\r' && peek(ps, 1) == '\n')
		ps->p++;
	if (*ps->p != '\n')
		return false;
	ps->p++;
	ps->line++;
	return true;
}

/* Whitespace, newlines and comments (inside arrays). */
static bool skip_ws_nl(struct parser *ps)
{
	for (;;) {
		skip_ws(ps);
		if (!skip_comment(ps))
			return false;
		if (at_end(ps) || !(*ps->p == '\n' || (*ps->p == '\r' && peek(ps, 1) == '\n')))
			return true;
		newline(ps);
	}
}

/* After a key/value or a header: only a comment may follow on the line. */
static bool end_of_line(struct parser *ps, const char *after)
{
	skip_ws(ps);
	if (!skip_comment(ps))
		return false;
	if (!newline(ps))
		return fail(ps, "unexpected '%c' after %s (one per line)", *ps->p, after);
	return true;
}

struct sbuf {
	char *buf;
	size_t len, alloc;
};

static void sb_add(struct sbuf *sb, const char *s, size_t n)
{
	xgrow(&sb->buf, &sb->alloc, sb->len + n + 1, 1);
	memcpy(sb->buf + sb->len, s, n);
	sb->len += n;
	sb->buf[sb->len] = '\0';
}

/* The UTF-8 encoding of a scalar value. */
static void sb_utf8(struct sbuf *sb, uint32_t cp)
{
	char out[4];
	size_t n;

	if (cp < 0x80) {
		out[0] = (char)cp;
		n = 1;
	} else if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		n = 2;
	} else if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		n = 3;
	} else {
		out[0] = (char)(0xf0 | (cp >> 18));
		out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
		out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[3] = (char)(0x80 | (cp & 0x3f));
		n = 4;
	}
	sb_add(sb, out, n);
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool escape(struct parser *ps, struct sbuf *sb)
{
	int c = peek(ps, 1);
	uint32_t cp = 0;
	int digits = 0;

	switch (c) {
	case 'b': sb_add(sb, "\b", 1); break;
	case 't': sb_add(sb, "\t", 1); break;
	case 'n': sb_add(sb, "\n", 1); break;
	case 'f': sb_add(sb, "\f", 1); break;
	case 'r': sb_add(sb, "\r", 1); break;
	case '"': sb_add(sb, "\"", 1); break;
	case '\\': sb_add(sb, "\\", 1); break;
	case 'u': digits = 4; break;
	case 'U': digits = 8; break;
	default:
		return fail(ps, "unknown escape '\\%c' in a string", c > 0x20 && c < 0x7f ? c : '?');
	}
	for (int i = 0; i < digits; i++) {
		int h = hexval(peek(ps, 2 + (size_t)i));

		if (h < 0)
			return fail(ps, "'\\%c' wants %d hex digits", c, digits);
		cp = cp << 4 | (uint32_t)h;
	}
	if (digits) {
		if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return fail(ps, "'\\%c%.*s' is not a character anole keeps in a string", c,
				    digits, ps->p + 2);
		sb_utf8(sb, cp);
	}
	ps->p += 2 + digits;
	return true;
}

static bool string_char_ok(struct parser *ps, unsigned char c)
{
	if ((c < 0x20 && c != '\t') || c == 0x7f)
		return fail(ps, "control character 0x%02x in a string (write it as an escape)", c);
	return true;
}

/*
 * A string at ps->p (which starts with a quote): basic "..", literal '..',
 * multi-line """..""" and '''..'''. Returns the new string or NULL.
 */
static char *parse_string(struct parser *ps, bool allow_multiline)
{
	char q = *ps->p;
	bool literal = q == '\'';
	bool multi = peek(ps, 1) == q && peek(ps, 2) == q;
	struct sbuf sb = { NULL, 0, 0 };
	unsigned start_line = ps->line;

	sb_add(&sb, "", 0);
	if (multi) {
		if (!allow_multiline) {
			fail(ps, "a multi-line string cannot be a key");
			goto bad;
		}
		ps->p += 3;
		/* a newline right after the opening quotes is not part of it */
		if (peek(ps, 0) == '\n' || (peek(ps, 0) == '\r' && peek(ps, 1) == '\n'))
			newline(ps);
	} else {
		ps->p++;
	}
	for (;;) {
		unsigned char c;

		if (at_end(ps)) {
			ps->line = start_line;
			fail(ps, "a string that is not closed");
			goto bad;
		}
		c = (unsigned char)*ps->p;
		if (c == (unsigned char)q) {
			if (!multi) {
				ps->p++;
				break;
			}
			if (peek(ps, 1) == q && peek(ps, 2) == q) {
				/* up to two more quotes belong to the string */
				size_t extra = 0;

				while (extra < 2 && peek(ps, 3 + extra) == q)
					extra++;
				sb_add(&sb, ps->p, extra);
				ps->p += 3 + extra;
				break;
			}
			sb_add(&sb, ps->p, 1);
			ps->p++;
			continue;
		}
		if (c == '\n' || (c == '\r' && peek(ps, 1) == '\n')) {
			if (!multi) {
				fail(ps, "a newline in a one-line string");
				goto bad;
			}
			sb_add(&sb, "\n", 1);
			newline(ps);
			continue;
		}
		if (c == '\\' && !literal) {
			if (multi) {
				/* a line-ending backslash: the newline and the
				 * whitespace after it go */
				const char *s = ps->p + 1;

				while (s < ps->end && (*s == ' ' || *s == '\t'))
					s++;
				if (s < ps->end && (*s == '\n' || (*s == '\r' && s + 1 < ps->end &&
								   s[1] == '\n'))) {
					ps->p = s;
					while (!at_end(ps)) {
						if (*ps->p == ' ' || *ps->p == '\t')
							ps->p++;
						else if (!newline(ps))
							break;
					}
					continue;
				}
			}
			if (!escape(ps, &sb))
				goto bad;
			continue;
		}
		if (!string_char_ok(ps, c))
			goto bad;
		sb_add(&sb, ps->p, 1);
		ps->p++;
	}
	return sb.buf;
bad:
	free(sb.buf);
	return NULL;
}

static bool bare_key_char(int c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '-';
}

/* A dotted key into parts[]; returns how many (0 on error). */
static size_t parse_key(struct parser *ps, char **parts)
{
	size_t n = 0;

	for (;;) {
		char *part;

		skip_ws(ps);
		if (n == MAX_KEY_PARTS) {
			fail(ps, "a key of more than %u parts", MAX_KEY_PARTS);
			goto bad;
		}
		if (peek(ps, 0) == '"' || peek(ps, 0) == '\'') {
			part = parse_string(ps, false);
			if (!part)
				goto bad;
		} else {
			const char *s = ps->p;

			while (!at_end(ps) && bare_key_char((unsigned char)*ps->p))
				ps->p++;
			if (ps->p == s) {
				if (at_end(ps) || *ps->p == '\n' || *ps->p == '\r')
					fail(ps, "a key is missing");
				else
					fail(ps, "unexpected '%c' where a key was expected", *ps->p);
				goto bad;
			}
			part = xstrndup(s, (size_t)(ps->p - s));
		}
		parts[n++] = part;
		skip_ws(ps);
		if (peek(ps, 0) != '.')
			return n;
		ps->p++;
	}
bad:
	while (n)
		free(parts[--n]);
	return 0;
}

static void free_parts(char **parts, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(parts[i]);
}

/* ------------------------------------------------------------ values */

static struct toml_value *parse_value(struct parser *ps);

static bool word_at(const struct parser *ps, const char *w)
{
	size_t n = strlen(w);

	return (size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, w, n) &&
	       !bare_key_char(peek(ps, n));
}

static struct toml_value *parse_integer(struct parser *ps)
{
	const char *s = ps->p;
	int base = 10, sign = 1;
	uint64_t acc = 0, limit;
	bool digit_before = false;

	if (*ps->p == '+' || *ps->p == '-') {
		sign = *ps->p == '-' ? -1 : 1;
		ps->p++;
		if (word_at(ps, "inf") || word_at(ps, "nan"))
			goto no_float;
	}
	if (peek(ps, 0) == '0' && (peek(ps, 1) == 'x' || peek(ps, 1) == 'o' || peek(ps, 1) == 'b')) {
		if (ps->p != s) {
			fail(ps, "a sign before a hex, octal or binary integer");
			return NULL;
		}
		base = peek(ps, 1) == 'x' ? 16 : peek(ps, 1) == 'o' ? 8 : 2;
		ps->p += 2;
	} else if (peek(ps, 0) == '0' && peek(ps, 1) >= '0' && peek(ps, 1) <= '9') {
		fail(ps, "an integer with a leading zero");
		return NULL;
	}
	limit = sign < 0 ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (;;) {
		int c = peek(ps, 0), d;

		if (c == '_') {
			if (!digit_before || hexval(peek(ps, 1)) < 0 || hexval(peek(ps, 1)) >= base) {
				fail(ps, "an underscore in an integer must sit between digits");
				return NULL;
			}
			ps->p++;
			digit_before = false;
			continue;
		}
		d = hexval(c);
		if (d < 0 || d >= base)
			break;
		if (acc > (limit - (uint64_t)d) / (uint64_t)base) {
			fail(ps, "an integer out of the 64-bit range");
			return NULL;
		}
		acc = acc * (uint64_t)base + (uint64_t)d;
		digit_before = true;
		ps->p++;
	}
	if (!digit_before) {
		fail(ps, "an integer without digits");
		return NULL;
	}
	if (peek(ps, 0) == '.' || peek(ps, 0) == 'e' || peek(ps, 0) == 'E' || peek(ps, 0) == ':' ||
	    peek(ps, 0) == '-' || peek(ps, 0) == 'T' || peek(ps, 0) == 'Z')
		goto no_float;
	{
		struct toml_value *v = new_value(TOML_INTEGER, ps->line, ORIGIN_SEALED);

		v->u.integer = sign < 0 ? (int64_t)(0 - acc) : (int64_t)acc;
		return v;
	}
no_float:
	{
		/* the input is not NUL-terminated: scan within it */
		size_t n = 0;

		while (s + n < ps->end && !strchr(" \t\r\n,]}#", s[n]))
			n++;
		fail(ps, "'%.*s' is not a value this reader takes: strings are quoted, and floats "
		     "and dates are not supported", (int)(n > 64 ? 64 : n), s);
	}
	return NULL;
}

static struct toml_value *parse_array(struct parser *ps)
{
	struct toml_value *a = new_value(TOML_ARRAY, ps->line, ORIGIN_SEALED);

	ps->p++;        /* [ */
	for (;;) {
		struct toml_value *item;

		if (!skip_ws_nl(ps))
			goto bad;
		if (peek(ps, 0) == ']') {
			ps->p++;
			return a;
		}
		item = parse_value(ps);
		if (!item || !array_add(ps, a, item))
			goto bad;
		if (!skip_ws_nl(ps))
			goto bad;
		if (peek(ps, 0) == ',') {
			ps->p++;
			continue;
		}
		if (peek(ps, 0) == ']') {
			ps->p++;
			return a;
		}
		fail(ps, at_end(ps) ? "an array that is not closed" :
			 "expected ',' or ']' in an array");
		goto bad;
	}
bad:
	toml_free(a);
	return NULL;
}

static bool assign(struct parser *ps, struct toml_value *table, char **parts, size_t n,
		   struct toml_value *v);

static struct toml_value *parse_inline_table(struct parser *ps)
{
	struct toml_value *t = new_value(TOML_TABLE, ps->line, ORIGIN_DOTTED);

	ps->p++;        /* { */
	skip_ws(ps);
	if (peek(ps, 0) == '}') {
		ps->p++;
		seal(t);
		return t;
	}
	for (;;) {
		char *parts[MAX_KEY_PARTS];
		size_t n = parse_key(ps, parts);
		struct toml_value *v;

		if (!n)
			goto bad;
		if (peek(ps, 0) != '=') {
			free_parts(parts, n);
			fail(ps, "expected '=' after a key in an inline table");
			goto bad;
		}
		ps->p++;
		skip_ws(ps);
		v = parse_value(ps);
		if (!v || !assign(ps, t, parts, n, v)) {
			free_parts(parts, n);
			goto bad;
		}
		skip_ws(ps);
		if (peek(ps, 0) == ',') {
			ps->p++;
			continue;
		}
		if (peek(ps, 0) == '}') {
			ps->p++;
			seal(t);
			return t;
		}
		fail(ps, "expected ',' or '}' in an inline table (it stays on one line)");
		goto bad;
	}
bad:
	toml_free(t);
	return NULL;
}

static struct toml_value *parse_value(struct parser *ps)
{
	struct toml_value *v = NULL;
	int c = peek(ps, 0);

	if (ps->depth >= MAX_DEPTH) {
		fail(ps, "arrays or inline tables nested more than %u deep", MAX_DEPTH);
		return NULL;
	}
	ps->depth++;
	if (c == '"' || c == '\'') {
		unsigned line = ps->line;
		char *s = parse_string(ps, true);

		if (s) {
			v = new_value(TOML_STRING, line, ORIGIN_SEALED);
			v->u.string = s;
		}
	} else if (word_at(ps, "true") || word_at(ps, "false")) {
		v = new_value(TOML_BOOL, ps->line, ORIGIN_SEALED);
		v->u.boolean = c == 't';
		ps->p += c == 't' ? 4 : 5;
	} else if (c == '[') {
		v = parse_array(ps);
	} else if (c == '{') {
		v = parse_inline_table(ps);
	} else if ((c >= '0' && c <= '9') || c == '+' || c == '-') {
		v = parse_integer(ps);
	} else if (word_at(ps, "inf") || word_at(ps, "nan")) {
		fail(ps, "floats are not supported by this reader");
	} else if (c < 0 || c == '\n' || c == '\r' || c == '#') {
		fail(ps, "a value is missing");
	} else {
		fail(ps, "unexpected '%c' where a value was expected (strings are quoted)", c);
	}
	ps->depth--;
	return v;
}

/* ------------------------------------------------------------ structure */

static const char *what_defined(const struct toml_value *v)
{
	if (v->type != TOML_TABLE)
		return "a value";
	switch (v->origin) {
	case ORIGIN_HEADER: return "a table";
	case ORIGIN_DOTTED: return "a table of dotted keys";
	default: return "an inline table";
	}
}

/* key.parts... = v in table (dotted keys make or extend their own tables). */
static bool assign(struct parser *ps, struct toml_value *table, char **parts, size_t n,
		   struct toml_value *v)
{
	struct toml_value *t = table;

	for (size_t i = 0; i + 1 < n; i++) {
		struct toml_value *next = table_get(t, parts[i]);

		if (!next) {
			next = new_value(TOML_TABLE, ps->line, ORIGIN_DOTTED);
			if (!table_add(ps, t, parts[i], next)) {
				parts[i] = NULL;
				toml_free(v);
				return false;
			}
			parts[i] = NULL;
		} else if (next->type != TOML_TABLE || next->origin != ORIGIN_DOTTED) {
			toml_free(v);
			return fail(ps, "'%s' is already %s (line %u); dotted keys cannot add to it",
				    parts[i], what_defined(next), next->line);
		}
		t = next;
	}
	if (table_get(t, parts[n - 1])) {
		const struct toml_value *old = table_get(t, parts[n - 1]);

		toml_free(v);
		return fail(ps, "'%s' is defined twice (first on line %u)", parts[n - 1], old->line);
	}
	if (!table_add(ps, t, parts[n - 1], v)) {
		parts[n - 1] = NULL;
		return false;
	}
	parts[n - 1] = NULL;
	free_parts(parts, n);
	return true;
}

/* The table [parts] or a new element of [[parts]]: where key/values go next. */
static struct toml_value *header(struct parser *ps, struct toml_value *root, char **parts,
				 size_t n, bool array)
{
	struct toml_value *t = root, *v;

	for (size_t i = 0; i + 1 < n; i++) {
		struct toml_value *next = table_get(t, parts[i]);

		if (!next) {
			next = new_value(TOML_TABLE, ps->line, ORIGIN_IMPLICIT);
			if (!table_add(ps, t, xstrdup(parts[i]), next))
				return NULL;
		} else if (next->type == TOML_ARRAY && next->origin == ORIGIN_TABLE_ARRAY) {
			next = next->u.array.items[next->u.array.n - 1];
		} else if (next->type != TOML_TABLE || next->origin == ORIGIN_SEALED) {
			fail(ps, "'%s' is already %s (line %u)", parts[i], what_defined(next),
			     next->line);
			return NULL;
		}
		t = next;
	}
	v = table_get(t, parts[n - 1]);
	if (array) {
		struct toml_value *elem;

		if (!v) {
			v = new_value(TOML_ARRAY, ps->line, ORIGIN_TABLE_ARRAY);
			if (!table_add(ps, t, xstrdup(parts[n - 1]), v))
				return NULL;
		} else if (v->type != TOML_ARRAY || v->origin != ORIGIN_TABLE_ARRAY) {
			fail(ps, "[[%s]]: '%s' is already %s (line %u), not an array of tables",
			     parts[n - 1], parts[n - 1], what_defined(v), v->line);
			return NULL;
		}
		elem = new_value(TOML_TABLE, ps->line, ORIGIN_HEADER);
		return array_add(ps, v, elem) ? elem : NULL;
	}
	if (!v) {
		v = new_value(TOML_TABLE, ps->line, ORIGIN_HEADER);
		return table_add(ps, t, xstrdup(parts[n - 1]), v) ? v : NULL;
	}
	if (v->type == TOML_TABLE && v->origin == ORIGIN_IMPLICIT) {
		v->origin = ORIGIN_HEADER;
		v->line = ps->line;
		return v;
	}
	fail(ps, "[%s] is defined twice (it is already %s, line %u)", parts[n - 1],
	     what_defined(v), v->line);
	return NULL;
}

/* UTF-8 as RFC 3629 has it: no overlongs, surrogates or values past U+10FFFF. */
static size_t bad_utf8(const unsigned char *s, size_t len, unsigned *line)
{
	size_t i = 0;

	*line = 1;
	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp, min;

		if (c == '\n')
			(*line)++;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 2; cp = c & 0x1f; min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 3; cp = c & 0x0f; min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 4; cp = c & 0x07; min = 0x10000;
		} else {
			return i + 1;
		}
		if (len - i < n)
			return i + 1;
		for (size_t k = 1; k < n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return i + 1;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return i + 1;
		i += n;
	}
	return 0;
}

struct toml_value *toml_parse(const char *text, size_t len, char *err, size_t errsize)
{
	struct parser ps = { .p = text, .end = text + len, .line = 1, .err = err,
			     .errsize = errsize };
	struct toml_value *root = new_value(TOML_TABLE, 1, ORIGIN_ROOT), *cur = root;

	if (errsize)
		err[0] = '\0';
	if (len > TOML_MAX_INPUT) {
		fail(&ps, "the file is larger than %u bytes", TOML_MAX_INPUT);
		goto bad;
	}
	if (bad_utf8((const unsigned char *)text, len, &ps.line)) {
		fail(&ps, "not valid UTF-8");
		goto bad;
	}
	ps.line = 1;
	while (!at_end(&ps)) {
		char *parts[MAX_KEY_PARTS];
		size_t n;

		skip_ws(&ps);
		if (!skip_comment(&ps))
			goto bad;
		if (at_end(&ps))
			break;
		if (newline(&ps))
			continue;
		if (*ps.p == '\r')
			goto lone_cr;
		if (*ps.p == '[') {
			bool array = peek(&ps, 1) == '[';

			ps.p += array ? 2 : 1;
			n = parse_key(&ps, parts);
			if (!n)
				goto bad;
			if (peek(&ps, 0) != ']' || (array && peek(&ps, 1) != ']')) {
				free_parts(parts, n);
				fail(&ps, "expected '%s' to close the table header", array ? "]]" : "]");
				goto bad;
			}
			ps.p += array ? 2 : 1;
			cur = header(&ps, root, parts, n, array);
			free_parts(parts, n);
			if (!cur || !end_of_line(&ps, "a table header"))
				goto bad;
			continue;
		}
		n = parse_key(&ps, parts);
		if (!n)
			goto bad;
		if (peek(&ps, 0) != '=') {
			free_parts(parts, n);
			fail(&ps, "expected '=' after the key");
			goto bad;
		}
		ps.p++;
		skip_ws(&ps);
		{
			struct toml_value *v = parse_value(&ps);

			if (!v) {
				free_parts(parts, n);
				goto bad;
			}
			if (!assign(&ps, cur, parts, n, v)) {
				free_parts(parts, n);
				goto bad;
			}
		}
		if (!end_of_line(&ps, "a value"))
			goto bad;
	}
	return root;
lone_cr:
	fail(&ps, "a carriage return without a line feed");
bad:
	if (!ps.failed)
		fail(&ps, "syntax error");
	toml_free(root);
	return NULL;
}
