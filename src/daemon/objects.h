/*
 * objects.h - the object table: every object the daemon knows, in a slot
 * array, found by ID through the generic hash table (htab.h), and the LRU list
 * of the ones that may be evicted.
 *
 * A slot index plus the slot's generation make an object's handle, which
 * clients use to release it: a stale handle (the slot was freed and reused)
 * never matches. A deleted object that readers still hold keeps its slot but
 * leaves the ID hash, so its ID can be created again meanwhile. All links
 * are 32-bit slot indices (OBJ_NIL for none), never pointers, so the slot
 * array may move when it grows.
 */
#ifndef SHOAL_OBJECTS_H
#define SHOAL_OBJECTS_H

#include <stdbool.h>
#include <stdint.h>

#include "htab.h"
#include "shoal.h"

#define OBJ_NIL UINT32_MAX

enum obj_state {
	OBJ_FREE = 0, /* slot unused */
	OBJ_CREATED = 1,
	OBJ_SEALED = 2,
};

struct object {
	uint8_t id[SHOAL_ID_SIZE];
	uint8_t state;    /* enum obj_state */
	bool deleted;     /* out of the ID hash; freed when holders reach 0 */
	uint32_t gen;     /* bumped each time the slot is freed */
	uint32_t holders; /* clients holding it (each counts once) */
	uint32_t names;   /* names pointing at it */
	uint32_t keep_names; /* of them, names that are not evictable */
	uint32_t name_head;  /* first of its names (names.h obj_next list) */
	uint32_t creator;    /* client id of the creator */
	uint32_t id_next;    /* free-slot list */
	uint32_t lru_prev, lru_next;
	bool in_lru;
	uint32_t metadata_size;
	uint64_t offset;
	uint64_t data_size;
	uint64_t block_size;
	uint64_t create_time_ns;
	uint64_t seal_time_ns; /* CLOCK_REALTIME at seal; 0 while unsealed */
	/* runs.h: a pinned (unevictable) object's node in the treap of
	 * pinned objects by offset; pinned says whether it is in the
	 * treap, pin_want whether it should be, pin_queued (1 + index) where
	 * it waits in the queue of changes (0: not queued). */
	bool pinned;
	bool pin_want;
	uint32_t pin_queued;
	uint32_t pin_left, pin_right;
	uint64_t pin_gap; /* free or evictable bytes up to the next pinned */
	uint64_t pin_max; /* largest pin_gap in this subtree */
};

struct objtab {
	struct object *slots;
	uint32_t nslots; /* slots in use or on the free list */
	uint32_t cap;    /* allocated slots */
	uint32_t free_head;
	struct htab ids;             /* live IDs: entries are slots */
	uint32_t live;               /* objects in the ID hash */
	uint32_t lru_head, lru_tail; /* head: least recently released */
	uint32_t lru_count;
	uint64_t lru_bytes; /* block bytes of the objects in the LRU */
	/* Monotonic counts of LRU pushes and freed slots: a change says space
	 * may have become available (for parked creates). */
	uint64_t lru_pushes, released;
};

int objtab_init(struct objtab *t);
void objtab_free(struct objtab *t);

/* Finds a live (not deleted) object by ID. Returns its slot or OBJ_NIL. */
uint32_t objtab_find(const struct objtab *t, const uint8_t *id);

/*
 * Takes a free slot for a new object with this ID (which must not be live)
 * and links it into the ID hash; the caller fills in the rest. Returns 0 and
 * *slot, or SHOAL_ENOMEM with nothing changed.
 */
int objtab_add(struct objtab *t, const uint8_t *id, uint32_t *slot);

/* Takes a live object out of the ID hash (for a deferred delete). */
void objtab_unlink(struct objtab *t, uint32_t slot);

/* Returns an unlinked, unheld object's slot to the free list. */
void objtab_release_slot(struct objtab *t, uint32_t slot);

/* The handle of an object, and the slot of a handle if it is current. */
uint64_t objtab_handle(const struct objtab *t, uint32_t slot);
uint32_t objtab_from_handle(const struct objtab *t, uint64_t handle);

static inline struct object *objtab_get(const struct objtab *t, uint32_t slot)
{
	return &t->slots[slot];
}

/* LRU of evictable objects: push at the tail (most recent), pop the head. */
void lru_push(struct objtab *t, uint32_t slot);
void lru_remove(struct objtab *t, uint32_t slot);

/* Checks the table's structure. Returns 0 or -1 with a message. */
int objtab_check(const struct objtab *t, char *msg, size_t size);

#endif /* SHOAL_OBJECTS_H */
