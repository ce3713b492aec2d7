/*
 * htab.c - the generic open-addressing hash table (see htab.h).
 *
 * Invariants (htab_check): capacity is 0 or a power of two; count <=
 * capacity * 3 / 4 and equals the number of non-zero fingerprints; each
 * entry's home slot (fingerprint & mask) starts a run of non-empty slots
 * that reaches the entry.
 */
#include "htab.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "debug.h"
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

/* A strong 64-bit finaliser (in the style of splitmix64). */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

uint64_t htab_hash_u64(uint64_t key)
{
	return mix(key ^ seed());
}

uint64_t htab_hash_bytes(const void *data, size_t len)
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

static uint32_t fingerprint(uint64_t hash)
{
	uint32_t f = (uint32_t)(hash ^ (hash >> 32));

	return f ? f : 1;
}

static size_t capacity(const struct htab *t)
{
	return t->fp ? t->mask + 1 : 0;
}

static uint8_t *slot(const struct htab *t, size_t i)
{
	return t->entries + i * t->esize;
}

void htab_init(struct htab *t, size_t esize)
{
	memset(t, 0, sizeof(*t));
	t->esize = esize;
}

void htab_free(struct htab *t)
{
	size_t esize = t->esize;

	free(t->fp);
	free(t->entries);
	htab_init(t, esize);
}

static size_t place(struct htab *t, uint32_t f)
{
	size_t i = f & t->mask;

	while (t->fp[i])
		i = (i + 1) & t->mask;
	t->fp[i] = f;
	t->count++;
	return i;
}

static int grow(struct htab *t)
{
	size_t old_cap = capacity(t);
	size_t cap = old_cap ? old_cap * 2 : 8;
	struct htab n;

	htab_init(&n, t->esize);
	if (cap > ((size_t)1 << 31))
		return SHOAL_ENOMEM; /* fingerprints index at most 2^32 */
	n.fp = os_calloc(cap, sizeof(*n.fp));
	n.entries = os_malloc(cap * t->esize);
	if (!n.fp || !n.entries) {
		free(n.fp);
		free(n.entries);
		return SHOAL_ENOMEM;
	}
	n.mask = cap - 1;
	for (size_t i = 0; i < old_cap; i++)
		if (t->fp[i])
			memcpy(slot(&n, place(&n, t->fp[i])), slot(t, i),
			       t->esize);
	htab_free(t);
	*t = n;
	return 0;
}

void *htab_find(const struct htab *t, uint64_t hash, htab_eq_fn *eq,
                const void *key)
{
	uint32_t f = fingerprint(hash);

	if (!t->fp)
		return NULL;
	for (size_t i = f & t->mask; t->fp[i]; i = (i + 1) & t->mask)
		if (t->fp[i] == f && eq(slot(t, i), key))
			return slot(t, i);
	return NULL;
}

int htab_insert(struct htab *t, uint64_t hash, const void *entry, void **out)
{
	if ((t->count + 1) * 4 > capacity(t) * 3) {
		int rc = grow(t);
		if (rc)
			return rc;
	}
	uint8_t *p = slot(t, place(t, fingerprint(hash)));
	memcpy(p, entry, t->esize);
	if (out)
		*out = p;
	return 0;
}

void htab_remove(struct htab *t, void *entry)
{
	size_t i = (size_t)((uint8_t *)entry - t->entries) / t->esize;

	SHOAL_ASSERT(t->fp && i <= t->mask && t->fp[i] != 0);
	/* Backward shift: pull later members of the run into the hole when
	 * their home slot does not lie cyclically in (i, j]. */
	for (size_t j = (i + 1) & t->mask; t->fp[j]; j = (j + 1) & t->mask) {
		size_t home = t->fp[j] & t->mask;
		bool in_range = (i <= j) ? (home > i && home <= j)
		                         : (home > i || home <= j);
		if (!in_range) {
			t->fp[i] = t->fp[j];
			memcpy(slot(t, i), slot(t, j), t->esize);
			i = j;
		}
	}
	t->fp[i] = 0;
	t->count--;
}

void *htab_next(const struct htab *t, size_t *pos)
{
	for (size_t cap = capacity(t); *pos < cap; (*pos)++)
		if (t->fp[*pos])
			return slot(t, (*pos)++);
	return NULL;
}

int htab_check(const struct htab *t, char *msg, size_t size)
{
	size_t n = 0, cap = capacity(t);

	if (cap & (cap - 1)) {
		snprintf(msg, size, "hash table capacity %zu", cap);
		return -1;
	}
	for (size_t i = 0; i < cap; i++) {
		if (!t->fp[i])
			continue;
		n++;
		for (size_t j = t->fp[i] & t->mask; j != i;
		     j = (j + 1) & t->mask) {
			if (!t->fp[j]) {
				snprintf(msg, size,
				         "hash entry %zu is cut off from its "
				         "home slot",
				         i);
				return -1;
			}
		}
	}
	if (n != t->count || t->count * 4 > cap * 3) {
		snprintf(msg, size, "hash table counts %zu entries, holds %zu",
		         t->count, n);
		return -1;
	}
	return 0;
}
