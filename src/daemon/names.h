/*
 * names.h - the store's namespace: UTF-8 names (validated by the protocol
 * layer) mapped to object slots and versions.
 *
 * Entries live in a slot array (so that a listing cursor is a stable slot
 * index) and are found through a chained hash keyed with the process seed.
 * This module only keeps the mapping; what naming means for an object's
 * life (never evicted unless the name is evictable, deleted when its last
 * name goes, expiry) is store.c's job.
 *
 * All of a name's state is in its struct name_entry (what a persistence
 * layer serialises: name, object, version, expire_ns, flags); the other
 * fields are links of the daemon's indexes and are rebuilt on load.
 */
#ifndef SHOAL_NAMES_H
#define SHOAL_NAMES_H

#include <stddef.h>
#include <stdint.h>

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
	uint64_t hash;
	uint32_t next; /* hash chain, or free list */
};

struct names {
	struct name_entry *slots;
	uint32_t nslots, cap;
	uint32_t free_head;
	uint32_t *buckets;
	uint32_t nbuckets;
	uint32_t count;
	uint64_t bytes; /* of all names (limits.h) */
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

static inline struct name_entry *names_get(const struct names *n, uint32_t slot)
{
	return &n->slots[slot];
}

/* Checks the structure. Returns 0 or -1 with a message. */
int names_check(const struct names *n, char *msg, size_t size);

#endif /* SHOAL_NAMES_H */
