/*
 * expiry.c - the expiry heap of names (see expiry.h).
 *
 * A classic array heap: the children of i are 2i+1 and 2i+2. Every move of
 * a slot in the array writes its new position into the name entry, so
 * heap_pos is always exact.
 */
#include "expiry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "shoal.h"

void expiry_init(struct expiry *x)
{
	memset(x, 0, sizeof(*x));
}

void expiry_free(struct expiry *x)
{
	free(x->heap);
	memset(x, 0, sizeof(*x));
}

static uint64_t key(const struct expiry *x, const struct names *n, uint32_t pos)
{
	return names_get(n, x->heap[pos])->expire_ns;
}

static void place(struct expiry *x, struct names *n, uint32_t pos,
                  uint32_t slot)
{
	x->heap[pos] = slot;
	names_get(n, slot)->heap_pos = pos;
}

static void sift_up(struct expiry *x, struct names *n, uint32_t pos)
{
	uint32_t slot = x->heap[pos];
	uint64_t k = names_get(n, slot)->expire_ns;

	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (key(x, n, parent) <= k)
			break;
		place(x, n, pos, x->heap[parent]);
		pos = parent;
	}
	place(x, n, pos, slot);
}

static void sift_down(struct expiry *x, struct names *n, uint32_t pos)
{
	uint32_t slot = x->heap[pos];
	uint64_t k = names_get(n, slot)->expire_ns;

	for (;;) {
		uint32_t child = 2 * pos + 1;
		if (child >= x->count)
			break;
		if (child + 1 < x->count &&
		    key(x, n, child + 1) < key(x, n, child))
			child++;
		if (k <= key(x, n, child))
			break;
		place(x, n, pos, x->heap[child]);
		pos = child;
	}
	place(x, n, pos, slot);
}

void expiry_remove(struct expiry *x, struct names *n, uint32_t slot)
{
	struct name_entry *e = names_get(n, slot);
	uint32_t pos = e->heap_pos;

	if (pos == NAME_NIL)
		return;
	e->heap_pos = NAME_NIL;
	uint32_t last = x->heap[--x->count];
	if (pos == x->count)
		return;
	place(x, n, pos, last);
	sift_up(x, n, pos);
	sift_down(x, n, names_get(n, last)->heap_pos);
}

int expiry_set(struct expiry *x, struct names *n, uint32_t slot, uint64_t at_ns)
{
	struct name_entry *e = names_get(n, slot);

	if (at_ns == 0) {
		expiry_remove(x, n, slot);
		e->expire_ns = 0;
		return 0;
	}
	if (e->heap_pos == NAME_NIL) {
		if (x->count == x->cap) {
			uint32_t cap = x->cap ? x->cap * 2 : 64;
			uint32_t *h = NULL;
			if (x->cap < NAME_NIL / 4)
				h = os_realloc(x->heap,
				               (size_t)cap * sizeof(*h));
			if (!h)
				return SHOAL_ENOMEM;
			x->heap = h;
			x->cap = cap;
		}
		e->expire_ns = at_ns;
		place(x, n, x->count++, slot);
		sift_up(x, n, e->heap_pos);
		return 0;
	}
	e->expire_ns = at_ns;
	sift_up(x, n, e->heap_pos);
	sift_down(x, n, e->heap_pos);
	return 0;
}

uint64_t expiry_next_ns(const struct expiry *x, const struct names *n)
{
	return x->count ? names_get(n, x->heap[0])->expire_ns : UINT64_MAX;
}

int expiry_check(const struct expiry *x, const struct names *n, char *msg,
                 size_t size)
{
	uint32_t timed = 0;

	for (uint32_t i = 0; i < x->count; i++) {
		uint32_t s = x->heap[i];
		if (s >= n->nslots || !n->slots[s].name ||
		    n->slots[s].heap_pos != i || n->slots[s].expire_ns == 0) {
			snprintf(msg, size, "expiry heap entry %u is stale", i);
			return -1;
		}
		if (i > 0 && key(x, n, (i - 1) / 2) > key(x, n, i)) {
			snprintf(msg, size, "expiry heap out of order at %u",
			         i);
			return -1;
		}
	}
	for (uint32_t s = 0; s < n->nslots; s++)
		if (n->slots[s].name && n->slots[s].expire_ns)
			timed++;
	if (timed != x->count) {
		snprintf(msg, size, "%u names expire, %u in the expiry heap",
		         timed, x->count);
		return -1;
	}
	return 0;
}
