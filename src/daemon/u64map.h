/*
 * u64map.h - a map from uint64_t keys to uint64_t values for the daemon's
 * private bookkeeping (a client's held handles, object offsets to slots),
 * on the generic hash table (htab.h): keyed hashing, linear probing,
 * backward-shift deletion. Key UINT64_MAX is reserved.
 */
#ifndef SHOAL_U64MAP_H
#define SHOAL_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "htab.h"

/* An empty map needs no allocation: struct u64map m = {0}. */
struct u64map {
	struct htab t; /* entries: struct { uint64_t key, val; } */
};

void u64map_free(struct u64map *m);

/* Inserts or overwrites key. Returns 0, SHOAL_EINVAL (key UINT64_MAX) or
 * SHOAL_ENOMEM (map unchanged). */
int u64map_put(struct u64map *m, uint64_t key, uint64_t val);

/* Inserts key with val if it is absent. Returns 1 (inserted), 0 (present,
 * its value unchanged), SHOAL_EINVAL (key UINT64_MAX) or SHOAL_ENOMEM (map
 * unchanged). */
int u64map_add(struct u64map *m, uint64_t key, uint64_t val);

/* Looks key up; on a hit stores its value in *val (if not NULL). */
bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *val);

/* Removes key. Returns whether it was present. */
bool u64map_del(struct u64map *m, uint64_t key);

/* Number of keys. */
static inline size_t u64map_count(const struct u64map *m)
{
	return m->t.count;
}

/* Iteration: for (size_t i = 0; u64map_next(m, &i, &k, &v);) ...
 * The map must not be changed during an iteration. */
bool u64map_next(const struct u64map *m, size_t *pos, uint64_t *key,
                 uint64_t *val);

#endif /* SHOAL_U64MAP_H */
