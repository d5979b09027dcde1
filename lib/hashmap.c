// SPDX-License-Identifier: Apache-2.0
#include "anole/hashmap.h"
#include "anole/xalloc.h"

#include <stdlib.h>

void anole_hashmap_init(struct anole_hashmap *map, anole_hashmap_eq eq)
{
	map->mask = 63;
	map->count = 0;
	map->slots = xcalloc(map->mask + 1, sizeof(*map->slots));
	map->eq = eq;
}

void anole_hashmap_free(struct anole_hashmap *map)
{
	free(map->slots);
	map->slots = NULL;
	map->count = 0;
}

void *anole_hashmap_get(const struct anole_hashmap *map, uint64_t hash, const void *key)
{
	size_t i = (size_t)hash & map->mask;

	for (;; i = (i + 1) & map->mask) {
		const struct anole_hashmap_slot *s = &map->slots[i];

		if (!s->entry)
			return NULL;
		if (s->hash == hash && map->eq(s->entry, key))
			return s->entry;
	}
}

static void insert_slot(struct anole_hashmap_slot *slots, size_t mask, uint64_t hash, void *entry)
{
	size_t i = (size_t)hash & mask;

	while (slots[i].entry)
		i = (i + 1) & mask;
	slots[i].hash = hash;
	slots[i].entry = entry;
}

void anole_hashmap_put(struct anole_hashmap *map, uint64_t hash, void *entry)
{
	if ((map->count + 1) * 4 > (map->mask + 1) * 3) {
		size_t newmask = map->mask * 2 + 1;
		struct anole_hashmap_slot *slots = xcalloc(newmask + 1, sizeof(*slots));

		for (size_t i = 0; i <= map->mask; i++)
			if (map->slots[i].entry)
				insert_slot(slots, newmask, map->slots[i].hash, map->slots[i].entry);
		free(map->slots);
		map->slots = slots;
		map->mask = newmask;
	}
	insert_slot(map->slots, map->mask, hash, entry);
	map->count++;
}

void *anole_hashmap_next(const struct anole_hashmap *map, size_t *pos)
{
	/* a freed map has no slots but keeps its mask */
	while (map->slots && *pos <= map->mask) {
		void *entry = map->slots[(*pos)++].entry;

		if (entry)
			return entry;
	}
	return NULL;
}

uint64_t anole_hash_u64(uint64_t key)
{
	/* the first half of MurmurHash3's fmix64: each step is invertible */
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdULL;
	key ^= key >> 33;
	return key;
}

uint64_t anole_hash_bytes(const void *data, size_t len, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ seed;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return anole_hash_u64(h);
}
