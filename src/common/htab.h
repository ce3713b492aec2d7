/*
 * htab.h - the one generic hash table of shoal: the daemon's private
 * bookkeeping (objects by ID, names, the allocator's used blocks, waiters,
 * u64map) and the client library's reference maps all use it.
 *
 * The table stores fixed-size entries (esize bytes, chosen at init) next to
 * a 32-bit fingerprint of each entry's hash. The caller hashes its key with
 * htab_hash_u64() or htab_hash_bytes() (keyed with a per-process random
 * seed, so keys a client chooses cannot build long probe chains) and says
 * how to compare an entry with a key; the table never needs to hash a key
 * itself, since growing and deleting use the stored fingerprints.
 *
 * Linear probing, at most 3/4 full, backward-shift deletion (no
 * tombstones). Fingerprint 0 marks an empty slot.
 *
 * Growth is incremental, as Redis's dict rehashes: when the table must
 * grow, a slot array twice as large becomes the current one and the old
 * one is moved into it a few probe runs per insert or remove
 * (HTAB_MOVE_STEP slots at least), so no single call copies the whole
 * table. Lookups look in both arrays meanwhile. The move always ends
 * before the new array could fill up. The only calls that may still move
 * everything at once are a reserve (or an insert) that needs more room
 * than the growth in progress gives.
 *
 * Pointers to entries stay valid until the next insert, reserve, clear or
 * remove on the same table.
 */
#ifndef SHOAL_HTAB_H
#define SHOAL_HTAB_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Slots of the old array visited per insert or remove while growing. */
#define HTAB_MOVE_STEP 32

/* One slot array. */
struct htab_slots {
	uint32_t *fp;     /* fingerprints; 0: empty */
	uint8_t *entries; /* esize bytes per slot */
	size_t mask;      /* capacity - 1; capacity is a power of two or 0 */
	size_t count;
};

struct htab {
	struct htab_slots cur; /* inserts go here */
	struct htab_slots old; /* being moved into cur; empty when not */
	size_t move_start;     /* an empty slot of old where moving began */
	size_t moved;          /* slots of old visited so far */
	size_t esize;
	size_t count; /* entries in both arrays */
};

/* Says whether entry holds key. */
typedef bool htab_eq_fn(const void *entry, const void *key);

/* An empty table needs no allocation. */
void htab_init(struct htab *t, size_t esize);

/* Frees the slots; the table is empty (and usable) afterwards. */
void htab_free(struct htab *t);

/* Removes every entry and keeps the room of the current array. */
void htab_clear(struct htab *t);

/* The process's hash seed: 0 until htab__seed_init() sets it. */
extern _Atomic uint64_t htab__seed;
uint64_t htab__seed_init(void);

/* A strong 64-bit finaliser (in the style of splitmix64). */
static inline uint64_t htab__mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	x ^= x >> 31;
	return x;
}

static inline uint64_t htab__seed_get(void)
{
	uint64_t s = atomic_load_explicit(&htab__seed, memory_order_relaxed);

	return __builtin_expect(s != 0, 1) ? s : htab__seed_init();
}

/* Keyed hashes (seeded once per process; thread-safe). */
static inline uint64_t htab_hash_u64(uint64_t key)
{
	return htab__mix(key ^ htab__seed_get());
}

uint64_t htab_hash_bytes(const void *data, size_t len);

static inline uint32_t htab__fingerprint(uint64_t hash)
{
	uint32_t f = (uint32_t)(hash ^ (hash >> 32));

	return f ? f : 1;
}

/* Looks key up in one array. */
static inline void *htab__find_in(const struct htab *t,
                                  const struct htab_slots *a, uint32_t f,
                                  htab_eq_fn *eq, const void *key)
{
	if (!a->fp)
		return NULL;
	for (size_t i = f & a->mask; a->fp[i]; i = (i + 1) & a->mask)
		if (a->fp[i] == f && eq(a->entries + i * t->esize, key))
			return a->entries + i * t->esize;
	return NULL;
}

/*
 * The entry for key with this hash, or NULL. Changes nothing. Inline, so
 * that the comparison a caller passes is inlined too.
 */
static inline void *htab_find(const struct htab *t, uint64_t hash,
                              htab_eq_fn *eq, const void *key)
{
	uint32_t f = htab__fingerprint(hash);
	void *e = htab__find_in(t, &t->cur, f, eq, key);

	if (!e && t->old.fp)
		e = htab__find_in(t, &t->old, f, eq, key);
	return e;
}

/*
 * Makes room so that `extra` more inserts cannot fail (nor allocate).
 * Returns 0 or SHOAL_ENOMEM with the entries unchanged.
 */
int htab_reserve(struct htab *t, size_t extra);

/*
 * Adds a copy of entry (esize bytes) under hash; the caller has made sure
 * the key is not present. Returns 0 and, if out is not NULL, where the copy
 * is; or SHOAL_ENOMEM with the entries unchanged (never after a reserve
 * that covers it).
 */
int htab_insert(struct htab *t, uint64_t hash, const void *entry, void **out);

/* Removes an entry that htab_find(), htab_insert() or htab_next()
 * returned. */
void htab_remove(struct htab *t, void *entry);

/* Iteration: for (size_t i = 0; (e = htab_next(t, &i));) ...
 * The table must not change during an iteration. */
void *htab_next(const struct htab *t, size_t *pos);

/* Entries the current array holds before it must grow (after a reserve:
 * at least count + extra). */
static inline size_t htab_room(const struct htab *t)
{
	return t->cur.fp ? (t->cur.mask + 1) / 4 * 3 : 0;
}

/* Whether a growth is being moved. */
static inline bool htab_moving(const struct htab *t)
{
	return t->old.fp != NULL;
}

/* Checks the structure (each entry reachable from its home slot in its
 * array, the counts, the part of the old array already moved is empty).
 * Returns 0, or -1 with a message. */
int htab_check(const struct htab *t, char *msg, size_t size);

#endif /* SHOAL_HTAB_H */
