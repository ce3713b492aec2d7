/*
 * u64map.c - open-addressing uint64_t -> uint64_t map (see u64map.h).
 *
 * Invariants: capacity is 0 or a power of two; count <= capacity * 3 / 4;
 * every key sits in the probe run that starts at its home slot, with no
 * empty slot between the home slot and the key (backward-shift deletion
 * keeps this without tombstones).
 */
#include "u64map.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "os.h"
#include "shoal.h"

static uint64_t hash_seed;
static bool hash_seeded;

static uint64_t seed(void)
{
	if (!hash_seeded) {
		if (getrandom(&hash_seed, sizeof(hash_seed), GRND_NONBLOCK) !=
		    sizeof(hash_seed))
			hash_seed = (uint64_t)(uintptr_t)&hash_seed ^
			            0x9e3779b97f4a7c15ull;
		hash_seeded = true;
	}
	return hash_seed;
}

/* A strong 64-bit finaliser (in the style of splitmix64) over a seeded key. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t u64map_hash(uint64_t key)
{
	return mix(key ^ seed());
}

uint64_t u64map_hash_bytes(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = mix(seed() ^ (len * 0x9e3779b97f4a7c15ull));

	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h = mix(h ^ w) + 0x632be59bd9b4e019ull;
		p += 8;
		len -= 8;
	}
	if (len) {
		uint64_t w = 0;
		memcpy(&w, p, len);
		h = mix(h ^ w ^ ((uint64_t)len << 56));
	}
	return mix(h);
}

void u64map_free(struct u64map *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static size_t capacity(const struct u64map *m)
{
	return m->keys ? m->mask + 1 : 0;
}

static void insert_fresh(struct u64map *m, uint64_t key, uint64_t val)
{
	size_t i = u64map_hash(key) & m->mask;

	while (m->keys[i] != U64MAP_EMPTY)
		i = (i + 1) & m->mask;
	m->keys[i] = key;
	m->vals[i] = val;
	m->count++;
}

static int grow(struct u64map *m)
{
	size_t old_cap = capacity(m);
	size_t cap = old_cap ? old_cap * 2 : 8;
	struct u64map n = {0};

	n.keys = os_malloc(cap * sizeof(*n.keys));
	n.vals = os_malloc(cap * sizeof(*n.vals));
	if (!n.keys || !n.vals) {
		free(n.keys);
		free(n.vals);
		return SHOAL_ENOMEM;
	}
	memset(n.keys, 0xff, cap * sizeof(*n.keys));
	n.mask = cap - 1;
	for (size_t i = 0; i < old_cap; i++)
		if (m->keys[i] != U64MAP_EMPTY)
			insert_fresh(&n, m->keys[i], m->vals[i]);
	u64map_free(m);
	*m = n;
	return 0;
}

static bool find(const struct u64map *m, uint64_t key, size_t *pos)
{
	if (!m->keys)
		return false;
	for (size_t i = u64map_hash(key) & m->mask;; i = (i + 1) & m->mask) {
		if (m->keys[i] == key) {
			*pos = i;
			return true;
		}
		if (m->keys[i] == U64MAP_EMPTY)
			return false;
	}
}

int u64map_put(struct u64map *m, uint64_t key, uint64_t val)
{
	size_t pos;

	if (key == U64MAP_EMPTY)
		return SHOAL_EINVAL;
	if (find(m, key, &pos)) {
		m->vals[pos] = val;
		return 0;
	}
	if ((m->count + 1) * 4 > capacity(m) * 3) {
		int rc = grow(m);
		if (rc)
			return rc;
	}
	insert_fresh(m, key, val);
	return 0;
}

bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *val)
{
	size_t pos;

	if (!find(m, key, &pos))
		return false;
	if (val)
		*val = m->vals[pos];
	return true;
}

bool u64map_del(struct u64map *m, uint64_t key)
{
	size_t i, j;

	if (!find(m, key, &i))
		return false;
	/* Backward shift: pull later members of the run into the hole when
	 * their home slot does not lie cyclically in (i, j]. */
	for (j = (i + 1) & m->mask; m->keys[j] != U64MAP_EMPTY;
	     j = (j + 1) & m->mask) {
		size_t home = u64map_hash(m->keys[j]) & m->mask;
		bool in_range = (i <= j) ? (home > i && home <= j)
		                         : (home > i || home <= j);
		if (!in_range) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->keys[i] = U64MAP_EMPTY;
	m->count--;
	return true;
}

bool u64map_next(const struct u64map *m, size_t *pos, uint64_t *key,
                 uint64_t *val)
{
	for (size_t cap = capacity(m); *pos < cap; (*pos)++) {
		if (m->keys[*pos] != U64MAP_EMPTY) {
			if (key)
				*key = m->keys[*pos];
			if (val)
				*val = m->vals[*pos];
			(*pos)++;
			return true;
		}
	}
	return false;
}
