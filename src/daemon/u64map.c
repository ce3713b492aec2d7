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

static struct pair *find_h(const struct u64map *m, uint64_t key, uint64_t h)
{
	return htab_find(&m->t, h, key_eq, &key);
}

static struct pair *find(const struct u64map *m, uint64_t key)
{
	return find_h(m, key, htab_hash_u64(key));
}

void u64map_free(struct u64map *m)
{
	htab_free(&m->t);
}

/* Finds key, or inserts it with val: 1 (inserted), 0 (found: *at is its
 * pair), SHOAL_EINVAL or SHOAL_ENOMEM. The key is hashed once. */
static int find_or_add(struct u64map *m, uint64_t key, uint64_t val,
                       struct pair **at)
{
	uint64_t h = htab_hash_u64(key);

	if (key == UINT64_MAX)
		return SHOAL_EINVAL;
	if ((*at = find_h(m, key, h)) != NULL)
		return 0;
	if (m->t.esize == 0)
		htab_init(&m->t, sizeof(struct pair));
	struct pair n = {key, val};
	int rc = htab_insert(&m->t, h, &n, NULL);
	return rc ? rc : 1;
}

int u64map_put(struct u64map *m, uint64_t key, uint64_t val)
{
	struct pair *p;
	int rc = find_or_add(m, key, val, &p);

	if (rc == 0)
		p->val = val;
	return rc < 0 ? rc : 0;
}

int u64map_add(struct u64map *m, uint64_t key, uint64_t val)
{
	struct pair *p;

	return find_or_add(m, key, val, &p);
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
