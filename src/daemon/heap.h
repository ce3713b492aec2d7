/*
 * heap.h - a binary min-heap of items embedded in the caller's structs,
 * ordered by a 64-bit key. Each item knows its position, so any item can be
 * removed or re-keyed in O(log n); the minimum is found in O(1).
 *
 * The daemon keeps parked requests' deadlines and parked creates' sizes in
 * heaps (waits.c), so that neither the loop's sleep time nor a free needs
 * to look at every parked request.
 */
#ifndef SHOAL_HEAP_H
#define SHOAL_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HEAP_NONE SIZE_MAX

struct heap_item {
	uint64_t key;
	size_t pos; /* index in the heap, or HEAP_NONE when not in one */
};

struct heap {
	struct heap_item **v;
	size_t n, cap;
};

/* An empty heap needs no allocation: struct heap h = {0}. */
void heap_free(struct heap *h);

/* Makes room for n items in all, so that heap_push() cannot fail below
 * that. Returns 0 or SHOAL_ENOMEM. */
int heap_reserve(struct heap *h, size_t n);

/* Adds an item that is in no heap. Returns 0 or SHOAL_ENOMEM (when more
 * items than reserved are pushed and memory runs out). */
int heap_push(struct heap *h, struct heap_item *it);

/* Removes an item from the heap (a no-op when it is in none). */
void heap_remove(struct heap *h, struct heap_item *it);

/* The item with the smallest key, or NULL. */
static inline struct heap_item *heap_top(const struct heap *h)
{
	return h->n ? h->v[0] : NULL;
}

/* Checks the heap property and positions. Returns 0 or -1. */
int heap_check(const struct heap *h);

#endif /* SHOAL_HEAP_H */
