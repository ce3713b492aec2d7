/*
 * u64map.h - an open-addressing hash map from uint64_t keys to uint64_t
 * values, for the daemon's private bookkeeping (a client's held handles,
 * object offsets to slots).
 *
 * Linear probing with backward-shift deletion, so there are no tombstones
 * and lookups stay short after any mix of inserts and removes. Keys are
 * mixed with a per-process random seed so that values a client chooses
 * cannot be used to build long probe chains. Key UINT64_MAX is reserved.
 */
#ifndef SHOAL_U64MAP_H
#define SHOAL_U64MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct u64map {
	uint64_t *keys; /* U64MAP_EMPTY marks an empty slot */
	uint64_t *vals;
	size_t mask; /* capacity - 1; capacity is a power of two or 0 */
	size_t count;
};

#define U64MAP_EMPTY UINT64_MAX

/* An empty map needs no allocation: struct u64map m = {0}. */
void u64map_free(struct u64map *m);

/* Inserts or overwrites key. Returns 0, or SHOAL_ENOMEM (map unchanged). */
int u64map_put(struct u64map *m, uint64_t key, uint64_t val);

/* Looks key up; on a hit stores its value in *val (if not NULL). */
bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *val);

/* Removes key. Returns whether it was present. */
bool u64map_del(struct u64map *m, uint64_t key);

/* Iteration: for (size_t i = 0; u64map_next(m, &i, &k, &v);) ...
 * The map must not be changed during an iteration. */
bool u64map_next(const struct u64map *m, size_t *pos, uint64_t *key,
                 uint64_t *val);

/* The keyed mix used for hashing, exposed for the other tables. */
uint64_t u64map_hash(uint64_t key);

/* Hashes len bytes with the same process seed. */
uint64_t u64map_hash_bytes(const void *data, size_t len);

#endif /* SHOAL_U64MAP_H */
