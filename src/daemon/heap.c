/*
 * heap.c - binary min-heap of embedded items (see heap.h).
 *
 * Invariants (heap_check): v[i]->pos == i, and no item's key is smaller
 * than its parent's.
 */
#include "heap.h"

#include <stdlib.h>

#include "debug.h"
#include "os.h"
#include "shoal.h"

void heap_free(struct heap *h)
{
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}

int heap_reserve(struct heap *h, size_t n)
{
	if (n <= h->cap)
		return 0;
	size_t cap = h->cap ? h->cap : 16;
	while (cap < n)
		cap *= 2;
	struct heap_item **v = os_realloc(h->v, cap * sizeof(*v));
	if (!v)
		return SHOAL_ENOMEM;
	h->v = v;
	h->cap = cap;
	return 0;
}

static void set(struct heap *h, size_t i, struct heap_item *it)
{
	h->v[i] = it;
	it->pos = i;
}

static void sift_up(struct heap *h, size_t i)
{
	struct heap_item *it = h->v[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (h->v[p]->key <= it->key)
			break;
		set(h, i, h->v[p]);
		i = p;
	}
	set(h, i, it);
}

static void sift_down(struct heap *h, size_t i)
{
	struct heap_item *it = h->v[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && h->v[c + 1]->key < h->v[c]->key)
			c++;
		if (it->key <= h->v[c]->key)
			break;
		set(h, i, h->v[c]);
		i = c;
	}
	set(h, i, it);
}

int heap_push(struct heap *h, struct heap_item *it)
{
	SHOAL_ASSERT(it->pos == HEAP_NONE);
	if (h->n == h->cap && heap_reserve(h, h->n + 1))
		return SHOAL_ENOMEM;
	h->v[h->n] = it;
	it->pos = h->n++;
	sift_up(h, it->pos);
	return 0;
}

void heap_remove(struct heap *h, struct heap_item *it)
{
	size_t i = it->pos;

	if (i == HEAP_NONE)
		return;
	SHOAL_ASSERT(i < h->n && h->v[i] == it);
	it->pos = HEAP_NONE;
	struct heap_item *last = h->v[--h->n];
	if (i == h->n)
		return;
	set(h, i, last);
	if (i > 0 && h->v[(i - 1) / 2]->key > last->key)
		sift_up(h, i);
	else
		sift_down(h, i);
}

int heap_check(const struct heap *h)
{
	for (size_t i = 0; i < h->n; i++) {
		if (h->v[i]->pos != i)
			return -1;
		if (i > 0 && h->v[(i - 1) / 2]->key > h->v[i]->key)
			return -1;
	}
	return 0;
}
