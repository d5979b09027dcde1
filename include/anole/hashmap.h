/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A small open-addressing hash map. Callers hash their keys themselves and
 * give an equality function; entries are caller-owned pointers.
 */
#ifndef ANOLE_HASHMAP_H
#define ANOLE_HASHMAP_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef bool (*anole_hashmap_eq)(const void *entry, const void *key);

struct anole_hashmap {
	struct anole_hashmap_slot { uint64_t hash; void *entry; } *slots;
	size_t mask;            /* capacity - 1 (power of two) */
	size_t count;
	anole_hashmap_eq eq;
};

void anole_hashmap_init(struct anole_hashmap *map, anole_hashmap_eq eq);
void anole_hashmap_free(struct anole_hashmap *map);
/* Entry equal to key (same hash and eq() true), or NULL. */
void *anole_hashmap_get(const struct anole_hashmap *map, uint64_t hash, const void *key);
/* Insert entry (no duplicate check: call get first). */
void anole_hashmap_put(struct anole_hashmap *map, uint64_t hash, void *entry);
/*
 * Iteration in slot order (not insertion order), e.g. to free the entries:
 *     size_t pos = 0;
 *     while ((e = anole_hashmap_next(&map, &pos)))
 * Start with *pos = 0; NULL ends it. The map must not change meanwhile.
 */
void *anole_hashmap_next(const struct anole_hashmap *map, size_t *pos);

/* 64-bit FNV-1a, then a final mix: fast, good enough for table hashing. */
uint64_t anole_hash_bytes(const void *data, size_t len, uint64_t seed);
/* An integer key (nid, inode number): a bijective mix, so distinct keys
 * never collide before the table masks them. */
uint64_t anole_hash_u64(uint64_t key);
#endif
