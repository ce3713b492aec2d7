/*
 * u64map.c - uint64_t -> uint64_t map over the generic hash table (see
 * u64map.h). Entries are {key, val} pairs; a zeroed map is empty and gets
 * its entry size on first insert.
 */
#include "u64map.h"

#include <string.h>

#include "shoal.h"

struct pair {
	uint64_t key, val;
};

static bool key_eq(const void *entry, const void *key)
{
	uint64_t k;

	memcpy(&k, entry, sizeof(k));
	return k == *(const uint64_t *)key;
}

static struct pair *find(const struct u64map *m, uint64_t key)
{
	return htab_find(&m->t, htab_hash_u64(key), key_eq, &key);
}

void u64map_free(struct u64map *m)
{
	htab_free(&m->t);
}

int u64map_put(struct u64map *m, uint64_t key, uint64_t val)
{
	struct pair *p;

	if (key == UINT64_MAX)
		return SHOAL_EINVAL;
	if ((p = find(m, key)) != NULL) {
		p->val = val;
		return 0;
	}
	if (m->t.esize == 0)
		htab_init(&m->t, sizeof(struct pair));
	struct pair n = {key, val};
	return htab_insert(&m->t, htab_hash_u64(key), &n, NULL);
}

bool u64map_get(const struct u64map *m, uint64_t key, uint64_t *val)
{
	struct pair *p = find(m, key);

	if (!p)
		return false;
	if (val)
		*val = p->val;
	return true;
}

bool u64map_del(struct u64map *m, uint64_t key)
{
	struct pair *p = find(m, key);

	if (!p)
		return false;
	htab_remove(&m->t, p);
	return true;
}

bool u64map_next(const struct u64map *m, size_t *pos, uint64_t *key,
                 uint64_t *val)
{
	struct pair *p = htab_next(&m->t, pos);

	if (!p)
		return false;
	if (key)
		*key = p->key;
	if (val)
		*val = p->val;
	return true;
}
