/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A strict TOML 1.0 reader for configuration files (containers-
 * registries.conf(5) first): tables, arrays of tables, dotted and quoted
 * keys, basic and literal strings (also multi-line), integers, booleans,
 * arrays and inline tables. Floats and dates, which no file read with it
 * uses, are refused with a clear error rather than misread. Every value
 * records its line, so that the reader of a document can name the line of
 * a wrong value too. Input is untrusted: bounded in size, nesting depth and
 * number of keys; fuzzed (fuzz/fuzz_registries_conf.c).
 */
#ifndef ANOLE_TOML_H
#define ANOLE_TOML_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOML_MAX_INPUT (1u << 20)      /* bytes */

enum toml_type { TOML_STRING, TOML_INTEGER, TOML_BOOL, TOML_ARRAY, TOML_TABLE };

struct toml_value;

struct toml_keyval {
	char *key;
	struct toml_value *value;
};

struct toml_value {
	enum toml_type type;
	unsigned line;                  /* where it was defined (1-based) */
	union {
		char *string;           /* NUL-terminated; may not hold NUL */
		int64_t integer;
		bool boolean;
		struct {
			struct toml_value **items;
			size_t n, alloc;
		} array;
		struct {
			struct toml_keyval *kv;  /* in the order of the document */
			size_t n, alloc;
		} table;
	} u;
	/* bookkeeping of the parser (TOML's rules on redefining tables) */
	unsigned char origin;
};

/*
 * Parse a document into its root table. NULL on a syntax error, with
 * "line N: what is wrong" in err.
 */
struct toml_value *toml_parse(const char *text, size_t len, char *err, size_t errsize);
void toml_free(struct toml_value *v);

/* The value of key in a table, or NULL (also when t is not a table). */
const struct toml_value *toml_get(const struct toml_value *t, const char *key);
const char *toml_type_name(enum toml_type type);
#endif
