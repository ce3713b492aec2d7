/*
 * runs.h - the largest stretch of arena space that evicting can free, kept
 * up to date as objects change, so that a create that must evict knows in
 * O(1) whether evicting can make room, and a parked create is tried again
 * by the change that makes room for it (not by a timer).
 *
 * The allocator's blocks tile the arena. An object's block is pinned while
 * the object is not evictable (held, unsealed, named, or deleted but still
 * read); everything else (free blocks, evictable objects) is reclaimable.
 * Evicting every evictable object turns each stretch between two pinned
 * blocks into one free block (free space coalesces completely), so a
 * create of n bytes can succeed, evicting if need be, exactly when the
 * largest gap between neighbouring pinned blocks (or the arena's ends) is
 * at least n.
 *
 * The pinned objects form a treap ordered by offset, with priorities from
 * the seeded hash of their slot (so its depth is O(log n) whatever the
 * offsets). Each node knows the gap to its successor and the largest gap
 * in its subtree. Pinning and unpinning are O(log n), the largest gap
 * O(log n) (the walk to the first node). The nodes are the object table's
 * slots (struct object's pin_* fields); links are slot indices, so the
 * table may move.
 *
 * Changes are applied lazily. The treap is only read when a create must
 * evict or waits for room, but objects are pinned and unpinned on every
 * get and release (a reader's hold pins an evictable object), usually in
 * pairs: a get of an unheld object pins it, its release unpins it. So
 * runs_want() records the state an object should have and queues it if
 * the treap differs; a change undone before the treap is read leaves the
 * queue again and costs O(1). runs_largest() applies the queue first, and
 * a full queue (RUNS_QUEUE_MAX) is applied at once, so the treap work is
 * never more than if every change were applied as it happens, and one
 * call never does more than RUNS_QUEUE_MAX of it.
 */
#ifndef SHOAL_RUNS_H
#define SHOAL_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objects.h"

/* Objects whose treap state may lag behind what runs_want() said. */
#define RUNS_QUEUE_MAX 1024

struct runs {
	uint64_t base, end; /* the allocator's range */
	uint32_t root;      /* slot, or OBJ_NIL */
	uint32_t count;     /* objects in the treap */
	/* Slots whose pin_want differs from pinned (each slot's pin_queued
	 * is 1 + its index here). */
	uint32_t nqueue;
	uint32_t queue[RUNS_QUEUE_MAX];
};

void runs_init(struct runs *r, uint64_t base, uint64_t size);

/* Says whether an object (its offset and block_size set) is pinned from
 * now on. O(1), unless the queue is full and is applied. */
void runs_want(struct runs *r, struct objtab *t, uint32_t slot, bool pin);

/* Takes an object whose slot is about to be freed out of the index. */
void runs_drop(struct runs *r, struct objtab *t, uint32_t slot);

/* Applies the queued changes to the treap. */
void runs_flush(struct runs *r, struct objtab *t);

/* The largest block that evicting every evictable object would leave
 * (applies the queue first). */
uint64_t runs_largest(struct runs *r, struct objtab *t);

/* Checks the treap: order, priorities, gaps, subtree maxima, and that it
 * holds exactly the objects flagged pinned; and the queue: exactly the
 * objects whose pin_want differs from pinned. Returns 0 or -1 with a
 * message. */
int runs_check(const struct runs *r, const struct objtab *t, char *msg,
               size_t size);

#endif /* SHOAL_RUNS_H */
