/*
 * htab.h - one generic open-addressing hash table for the daemon's private
 * bookkeeping.
 *
 * The table stores fixed-size entries (esize bytes, chosen at init) next to
 * a 32-bit fingerprint of each entry's hash. The caller hashes its key with
 * htab_hash_u64() or htab_hash_bytes() (keyed with a per-process random
 * seed, so keys a client chooses cannot build long probe chains) and says
 * how to compare an entry with a key; the table never needs to rehash a key
 * itself, since growing and deleting use the stored fingerprints.
 *
 * Linear probing, at most 3/4 full, backward-shift deletion (no
 * tombstones): every entry sits in the probe run that starts at its home
 * slot, with no empty slot between the two. Fingerprint 0 marks an empty
 * slot. Pointers to entries stay valid until the next insert or remove.
 */
#ifndef SHOAL_HTAB_H
#define SHOAL_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct htab {
	uint32_t *fp;     /* fingerprints; 0: empty */
	uint8_t *entries; /* esize bytes per slot */
	size_t esize;
	size_t mask; /* capacity - 1; capacity is a power of two or 0 */
	size_t count;
};

/* Says whether entry holds key. */
typedef bool htab_eq_fn(const void *entry, const void *key);

/* An empty table needs no allocation. */
void htab_init(struct htab *t, size_t esize);

/* Frees the slots; the table is empty (and usable) afterwards. */
void htab_free(struct htab *t);

/* Keyed hashes (seeded per process). */
uint64_t htab_hash_u64(uint64_t key);
uint64_t htab_hash_bytes(const void *data, size_t len);

/* The entry for key with this hash, or NULL. */
void *htab_find(const struct htab *t, uint64_t hash, htab_eq_fn *eq,
                const void *key);

/*
 * Adds a copy of entry (esize bytes) under hash; the caller has made sure
 * the key is not present. Returns 0 and, if out is not NULL, where the copy
 * is; or SHOAL_ENOMEM with the table unchanged.
 */
int htab_insert(struct htab *t, uint64_t hash, const void *entry, void **out);

/* Removes an entry that htab_find() or htab_next() returned. */
void htab_remove(struct htab *t, void *entry);

/* Iteration: for (size_t i = 0; (e = htab_next(t, &i));) ...
 * The table must not change during an iteration. */
void *htab_next(const struct htab *t, size_t *pos);

/* Checks the structure (each entry reachable from its home slot, the
 * count). Returns 0, or -1 with a message. */
int htab_check(const struct htab *t, char *msg, size_t size);

#endif /* SHOAL_HTAB_H */
