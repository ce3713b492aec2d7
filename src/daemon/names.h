/*
 * names.h - the store's namespace: UTF-8 names (validated by the protocol
 * layer) mapped to object slots and versions.
 *
 * Entries live in a slot array (so that a listing cursor is a stable slot
 * index) and are found through a chained hash keyed with the process seed.
 * This module only keeps the mapping; what naming means for an object's
 * life (never evicted, deleted when its last name goes) is store.c's job.
 */
#ifndef SHOAL_NAMES_H
#define SHOAL_NAMES_H

#include <stddef.h>
#include <stdint.h>

#define NAME_NIL UINT32_MAX

struct name_entry {
	char *name; /* NUL-terminated copy; NULL for a free slot */
	uint32_t len;
	uint32_t obj; /* object slot */
	uint64_t version;
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
};

int names_init(struct names *n);
void names_free(struct names *n);

/* Returns the slot of name, or NAME_NIL. */
uint32_t names_find(const struct names *n, const char *name, size_t len);

/* Adds a name that is not present. Returns 0 and *slot, or SHOAL_ENOMEM. */
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
