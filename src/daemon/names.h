/*
 * names.h - the store's namespace: UTF-8 names (validated by the protocol
 * layer) mapped to object slots and versions, in name order too.
 *
 * Entries live in a slot array and are found through the generic hash
 * table (htab.h) of their slots, keyed with the process seed. They are also
 * kept in byte order of their names, in a treap (a binary search tree whose
 * nodes are heap-ordered by a priority taken from the seeded hash, so its depth
 * is O(log n) whatever the names): prefix listings and deletions visit only the
 * names they return, in O(log n) each. This module only keeps the mapping; what
 * naming means for an object's life (never evicted unless the name is
 * evictable, deleted when its last name goes, expiry) is store.c's job.
 *
 * All of a name's state is in its struct name_entry (what a persistence
 * layer serialises: name, object, version, expire_ns, flags); the other
 * fields are links of the daemon's indexes and are rebuilt on load.
 */
#ifndef SHOAL_NAMES_H
#define SHOAL_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "htab.h"

#define NAME_NIL UINT32_MAX

/* Flags of a name (struct name_entry.flags). */
#define NAME_EVICTABLE 1u /* may be evicted with its object (LRU) */

struct name_entry {
	char *name; /* NUL-terminated copy; NULL for a free slot */
	uint32_t len;
	uint32_t obj; /* object slot */
	uint64_t version;
	/* CLOCK_MONOTONIC time (ns) at which the name expires; 0: never. */
	uint64_t expire_ns;
	uint32_t flags; /* NAME_EVICTABLE */
	/* Index links (not state): */
	uint32_t heap_pos; /* in the store's expiry heap; NAME_NIL: none */
	uint32_t obj_prev, obj_next; /* the other names of obj */
	uint32_t left, right;        /* the name-order treap */
	uint64_t hash;               /* of the name (htab_hash_bytes) */
	uint32_t next;               /* free list */
};

struct names {
	struct name_entry *slots;
	uint32_t nslots, cap;
	uint32_t free_head;
	struct htab index; /* entries: used slots (uint32_t) */
	uint32_t count;
	uint32_t root;  /* of the name-order treap; NAME_NIL when empty */
	uint64_t bytes; /* of all names (limit.h) */
};

int names_init(struct names *n);
void names_free(struct names *n);

/* Returns the slot of name, or NAME_NIL. */
uint32_t names_find(const struct names *n, const char *name, size_t len);

/* Adds a name that is not present, with no expiry, no flags and no links
 * (heap_pos, obj_prev and obj_next NAME_NIL). Returns 0 and *slot, or
 * SHOAL_ENOMEM. */
int names_add(struct names *n, const char *name, size_t len, uint32_t obj,
              uint64_t version, uint32_t *slot);

/* Removes the name in slot. */
void names_remove(struct names *n, uint32_t slot);

/*
 * In name order (bytes compared as unsigned, a name before its
 * extensions): the slot of the first name after key (len bytes), or of the
 * first name at or after it when inclusive; NAME_NIL when there is none.
 */
uint32_t names_seek(const struct names *n, const char *key, size_t len,
                    bool inclusive);

/* The slot of the name after the one in slot, in name order, or NAME_NIL. */
static inline uint32_t names_next(const struct names *n, uint32_t slot);

static inline struct name_entry *names_get(const struct names *n, uint32_t slot)
{
	return &n->slots[slot];
}

static inline uint32_t names_next(const struct names *n, uint32_t slot)
{
	return names_seek(n, n->slots[slot].name, n->slots[slot].len, false);
}

/* Checks the structure. Returns 0 or -1 with a message. */
int names_check(const struct names *n, char *msg, size_t size);

#endif /* SHOAL_NAMES_H */
