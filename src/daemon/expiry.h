/*
 * expiry.h - the expiry index of names: a binary min-heap of name slots
 * ordered by their expire_ns, so that the next name to expire is found in
 * O(1) and a name is added, moved or removed in O(log n). Each name entry
 * keeps its position in the heap (heap_pos), which is what makes removal
 * and update O(log n) instead of a search.
 *
 * Unlike heap.h (pointers to items embedded in structs that never move),
 * this heap holds slot indices: name entries live in an array that moves
 * when it grows.
 *
 * The heap only orders; store.c decides what expiry means (the name goes,
 * its object is freed once no reader holds it). Invariants (expiry_check):
 * every entry's expire_ns is not below its parent's; a name is in the heap
 * iff its expire_ns is non-zero, and heap[e->heap_pos] is its slot.
 */
#ifndef SHOAL_EXPIRY_H
#define SHOAL_EXPIRY_H

#include <stddef.h>
#include <stdint.h>

#include "names.h"

struct expiry {
	uint32_t *heap; /* name slots */
	uint32_t count, cap;
};

void expiry_init(struct expiry *x);
void expiry_free(struct expiry *x);

/*
 * Sets the expiry of the name in slot to at_ns (0: none), adding it to,
 * moving it in or removing it from the heap. Returns 0, or SHOAL_ENOMEM
 * when the heap cannot grow (the name's expiry is then unchanged).
 */
int expiry_set(struct expiry *x, struct names *n, uint32_t slot,
               uint64_t at_ns);

/* Removes the name in slot from the heap, if it is there (before the name
 * is removed from the table). Its expire_ns is left as it was. */
void expiry_remove(struct expiry *x, struct names *n, uint32_t slot);

/* The slot of the name that expires first, or NAME_NIL. */
static inline uint32_t expiry_first(const struct expiry *x)
{
	return x->count ? x->heap[0] : NAME_NIL;
}

/* When the first name expires (CLOCK_MONOTONIC ns), or UINT64_MAX. */
uint64_t expiry_next_ns(const struct expiry *x, const struct names *n);

/* Checks the heap against the name table. Returns 0 or -1 with a message. */
int expiry_check(const struct expiry *x, const struct names *n, char *msg,
                 size_t size);

#endif /* SHOAL_EXPIRY_H */
