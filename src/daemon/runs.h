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
 */
#ifndef SHOAL_RUNS_H
#define SHOAL_RUNS_H

#include <stddef.h>
#include <stdint.h>

#include "objects.h"

struct runs {
	uint64_t base, end; /* the allocator's range */
	uint32_t root;      /* slot, or OBJ_NIL */
	uint32_t count;     /* pinned objects */
};

void runs_init(struct runs *r, uint64_t base, uint64_t size);

/* Pins or unpins an object (its offset and block_size set, its pinned
 * flag saying where it is now). */
void runs_pin(struct runs *r, struct objtab *t, uint32_t slot);
void runs_unpin(struct runs *r, struct objtab *t, uint32_t slot);

/* The largest block that evicting every evictable object would leave. */
uint64_t runs_largest(const struct runs *r, const struct objtab *t);

/* Checks the treap: order, priorities, gaps, subtree maxima, and that it
 * holds exactly the objects flagged pinned. Returns 0 or -1 with a
 * message. */
int runs_check(const struct runs *r, const struct objtab *t, char *msg,
               size_t size);

#endif /* SHOAL_RUNS_H */
