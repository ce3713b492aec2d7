/*
 * htab.c - the generic open-addressing hash table (see htab.h).
 *
 * Invariants (htab_check): each array's capacity is 0 or a power of two;
 * cur.count <= capacity * 3 / 4; each array's count equals its non-zero
 * fingerprints and count == cur.count + old.count; each entry's home slot
 * (fingerprint & mask) starts a run of non-empty slots of its array that
 * reaches the entry; while growing, the slots of old visited so far (from
 * move_start) are empty, and the one at move_start is empty.
 *
 * Why moving by whole runs is safe: in linear probing an entry's home slot
 * lies in the maximal run of non-empty slots that holds it. Moving starts
 * at an empty slot and stops only before an empty slot, so every run of
 * old is either still whole or gone; a lookup in old for a key whose home
 * was in a moved run meets an empty slot at once, and the key is in cur.
 * Removing from old shifts entries back within their own run only, so it
 * never writes into the moved part. Inserts go to cur only.
 */
#include "htab.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "debug.h"
#include "os.h"
#include "shoal.h"

/* 0 until seeded; the client may hash from several threads at once. */
_Atomic uint64_t htab__seed;

uint64_t htab__seed_init(void)
{
	uint64_t fresh = 0, expected = 0;

	if (getrandom(&fresh, sizeof(fresh), GRND_NONBLOCK) != sizeof(fresh))
		fresh = (uint64_t)(uintptr_t)&htab__seed ^
		        0x9e3779b97f4a7c15ull;
	fresh |= 1; /* never 0 */
	/* The first thread's seed wins, so every table agrees. */
	if (!atomic_compare_exchange_strong(&htab__seed, &expected, fresh))
		fresh = expected;
	return fresh;
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

static uint64_t load32(const uint8_t *p)
{
	uint32_t w;

	memcpy(&w, p, sizeof(w));
	return w;
}

/*
 * One multiply and one shift per 8 bytes, then the strong finaliser: IDs
 * (20 bytes) and names are hashed on every request, so this is on the
 * path of every small operation. The 1-7 trailing bytes are read with
 * fixed-size (overlapping) loads, never a variable-length copy.
 */
uint64_t htab_hash_bytes(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = htab__seed_get() ^ (len * 0x9e3779b97f4a7c15ull);
	size_t n = len;

	for (; n >= 8; p += 8, n -= 8) {
		h = (h ^ load64(p)) * 0xd6e8feb86659fd93ull;
		h ^= h >> 32;
	}
	if (n) {
		uint64_t w;
		if (n >= 4)
			w = load32(p) | load32(p + n - 4) << 32;
		else
			w = (uint64_t)p[0] | (uint64_t)p[n / 2] << 8 |
			    (uint64_t)p[n - 1] << 16;
		h = (h ^ w ^ ((uint64_t)n << 56)) * 0xd6e8feb86659fd93ull;
		h ^= h >> 32;
	}
	return htab__mix(h);
}

static size_t capacity(const struct htab_slots *a)
{
	return a->fp ? a->mask + 1 : 0;
}

static uint8_t *slot(const struct htab *t, const struct htab_slots *a, size_t i)
{
	return a->entries + i * t->esize;
}

/*
 * Copies one entry without a call to memcpy (this is most of what an
 * insert, a removal and a move step do): 4 bytes (the object table's
 * slots) at once, and an entry of 8 to 128 bytes as two
 * fixed-size copies that overlap in the middle, which the compiler turns
 * into a few register moves. Entries never overlap each other.
 */
static inline void copy_entry(void *dst, const void *src, size_t esize)
{
	uint8_t *d = dst;
	const uint8_t *s = src;

	if (esize == 4) {
		memcpy(d, s, 4);
	} else if (esize > 128 || esize < 8) {
		memcpy(d, s, esize);
	} else if (esize > 64) {
		memcpy(d, s, 64);
		memcpy(d + esize - 64, s + esize - 64, 64);
	} else if (esize > 32) {
		memcpy(d, s, 32);
		memcpy(d + esize - 32, s + esize - 32, 32);
	} else if (esize > 16) {
		memcpy(d, s, 16);
		memcpy(d + esize - 16, s + esize - 16, 16);
	} else {
		memcpy(d, s, 8);
		memcpy(d + esize - 8, s + esize - 8, 8);
	}
}

static void slots_free(struct htab_slots *a)
{
	free(a->fp);
	free(a->entries);
	memset(a, 0, sizeof(*a));
}

void htab_init(struct htab *t, size_t esize)
{
	memset(t, 0, sizeof(*t));
	t->esize = esize;
}

void htab_free(struct htab *t)
{
	size_t esize = t->esize;

	slots_free(&t->cur);
	slots_free(&t->old);
	htab_init(t, esize);
}

void htab_clear(struct htab *t)
{
	slots_free(&t->old);
	if (t->cur.fp)
		memset(t->cur.fp, 0, capacity(&t->cur) * sizeof(*t->cur.fp));
	t->cur.count = 0;
	t->count = 0;
	t->moved = t->move_start = 0;
}

/* Takes the first empty slot of a's run from f's home; returns it. */
static size_t place(struct htab_slots *a, uint32_t f)
{
	size_t i = f & a->mask;

	while (a->fp[i])
		i = (i + 1) & a->mask;
	a->fp[i] = f;
	a->count++;
	return i;
}

/*
 * Moves entries of old into cur, whole runs at a time, visiting at least
 * `budget` slots (all when budget is SIZE_MAX) and stopping only before an
 * empty slot. Frees old when it is all moved.
 */
static void move_some(struct htab *t, size_t budget)
{
	struct htab_slots *o = &t->old;
	size_t cap = capacity(o);

	while (t->moved < cap) {
		size_t i = (t->move_start + t->moved) & o->mask;
		if (budget == 0 && o->fp[i] == 0)
			return;
		if (o->fp[i]) {
			size_t j = place(&t->cur, o->fp[i]);
			copy_entry(slot(t, &t->cur, j), slot(t, o, i),
			           t->esize);
			o->fp[i] = 0;
			o->count--;
		}
		t->moved++;
		if (budget && budget != SIZE_MAX)
			budget--;
	}
	SHOAL_ASSERT(o->count == 0);
	slots_free(o);
	t->moved = t->move_start = 0;
}

/*
 * Makes cur an array of room for at least need entries, moving the
 * current one into it incrementally. 0, or SHOAL_ENOMEM with the entries
 * unchanged (a growth in progress may have been finished).
 */
static int grow(struct htab *t, size_t need)
{
	size_t cap = capacity(&t->cur) ? capacity(&t->cur) * 2 : 8;
	struct htab_slots n = {0};

	/* Two growths never overlap: finish the one in progress (it ends
	 * by itself before cur fills up, so only a large reserve gets
	 * here while moving). */
	if (htab_moving(t))
		move_some(t, SIZE_MAX);
	while (need > cap / 4 * 3) {
		if (cap >= ((size_t)1 << 31))
			return SHOAL_ENOMEM; /* fingerprints index 2^32 */
		cap *= 2;
	}
	if (cap > ((size_t)1 << 31))
		return SHOAL_ENOMEM;
	/* calloc of a large array maps zero pages: no time is spent on
	 * the part not used yet. */
	n.fp = os_calloc(cap, sizeof(*n.fp));
	n.entries = os_malloc(cap * t->esize);
	if (!n.fp || !n.entries) {
		free(n.fp);
		free(n.entries);
		return SHOAL_ENOMEM;
	}
	n.mask = cap - 1;
	t->old = t->cur;
	t->cur = n;
	t->moved = t->move_start = 0;
	if (t->old.count == 0) {
		slots_free(&t->old);
		return 0;
	}
	/* Start at an empty slot (there is one: old is at most 3/4 full),
	 * so that no run is cut in two. */
	while (t->old.fp[t->move_start])
		t->move_start++;
	return 0;
}

int htab_reserve(struct htab *t, size_t extra)
{
	if (extra > SIZE_MAX / 4 - t->count)
		return SHOAL_ENOMEM;
	if (t->count + extra <= htab_room(t))
		return 0;
	return grow(t, t->count + extra);
}

int htab_insert(struct htab *t, uint64_t hash, const void *entry, void **out)
{
	if (t->count + 1 > htab_room(t)) {
		int rc = grow(t, t->count + 1);
		if (rc)
			return rc;
	}
	if (htab_moving(t))
		move_some(t, HTAB_MOVE_STEP);
	uint8_t *p = slot(t, &t->cur, place(&t->cur, htab__fingerprint(hash)));
	copy_entry(p, entry, t->esize);
	t->count++;
	if (out)
		*out = p;
	return 0;
}

/* Empties slot i of a, pulling later members of its run into the hole
 * when their home slot does not lie cyclically in (i, j]. */
static void remove_at(struct htab *t, struct htab_slots *a, size_t i)
{
	SHOAL_ASSERT(a->fp && i <= a->mask && a->fp[i] != 0);
	for (size_t j = (i + 1) & a->mask; a->fp[j]; j = (j + 1) & a->mask) {
		size_t home = a->fp[j] & a->mask;
		bool in_range = (i <= j) ? (home > i && home <= j)
		                         : (home > i || home <= j);
		if (!in_range) {
			a->fp[i] = a->fp[j];
			copy_entry(slot(t, a, i), slot(t, a, j), t->esize);
			i = j;
		}
	}
	a->fp[i] = 0;
	a->count--;
}

/* Whether p points at a slot of a. */
static bool holds(const struct htab *t, const struct htab_slots *a,
                  const uint8_t *p)
{
	return a->entries && p >= a->entries &&
	       p < a->entries + capacity(a) * t->esize;
}

void htab_remove(struct htab *t, void *entry)
{
	uint8_t *p = entry;
	struct htab_slots *a = holds(t, &t->cur, p) ? &t->cur : &t->old;

	SHOAL_ASSERT(holds(t, a, p));
	remove_at(t, a, (size_t)(p - a->entries) / t->esize);
	t->count--;
	if (htab_moving(t))
		move_some(t, HTAB_MOVE_STEP);
}

void *htab_next(const struct htab *t, size_t *pos)
{
	size_t ccap = capacity(&t->cur), end = ccap + capacity(&t->old);

	for (; *pos < end; (*pos)++) {
		bool in_cur = *pos < ccap;
		const struct htab_slots *a = in_cur ? &t->cur : &t->old;
		size_t i = in_cur ? *pos : *pos - ccap;
		if (a->fp[i]) {
			(*pos)++;
			return slot(t, a, i);
		}
	}
	return NULL;
}

/* Checks one array: capacity, reachability, count. */
static int check_slots(const struct htab_slots *a, const char *which, char *msg,
                       size_t size)
{
	size_t n = 0, cap = capacity(a);

	if (cap & (cap - 1)) {
		snprintf(msg, size, "hash table %s capacity %zu", which, cap);
		return -1;
	}
	for (size_t i = 0; i < cap; i++) {
		if (!a->fp[i])
			continue;
		n++;
		for (size_t j = a->fp[i] & a->mask; j != i;
		     j = (j + 1) & a->mask) {
			if (!a->fp[j]) {
				snprintf(msg, size,
				         "hash entry %zu of %s is cut off "
				         "from its home slot",
				         i, which);
				return -1;
			}
		}
	}
	if (n != a->count) {
		snprintf(msg, size,
		         "hash table %s counts %zu entries, holds %zu", which,
		         a->count, n);
		return -1;
	}
	return 0;
}

int htab_check(const struct htab *t, char *msg, size_t size)
{
	if (check_slots(&t->cur, "array", msg, size) ||
	    check_slots(&t->old, "old array", msg, size))
		return -1;
	if (t->count != t->cur.count + t->old.count ||
	    t->cur.count > htab_room(t)) {
		snprintf(msg, size, "hash table counts %zu entries, holds %zu",
		         t->count, t->cur.count + t->old.count);
		return -1;
	}
	if (t->old.fp) {
		size_t cap = capacity(&t->old);
		if (t->moved >= cap || t->old.fp[t->move_start & t->old.mask]) {
			snprintf(msg, size, "hash table growth out of step");
			return -1;
		}
		for (size_t k = 0; k < t->moved; k++) {
			if (t->old.fp[(t->move_start + k) & t->old.mask]) {
				snprintf(msg, size,
				         "hash slot %zu of the old array is "
				         "left behind",
				         (t->move_start + k) & t->old.mask);
				return -1;
			}
		}
	} else if (t->moved || t->move_start) {
		snprintf(msg, size, "hash table growth out of step");
		return -1;
	}
	return 0;
}
