/*
 * runs.c - the pinned-object treap behind runs.h.
 *
 * Invariants (runs_check): in-order offsets increase and blocks do not
 * overlap; a parent's priority is at least its children's; a node's
 * pin_gap is the space from its block's end to its successor's offset (or
 * the range's end); its pin_max is the largest pin_gap in its subtree;
 * the nodes are exactly the slots with pinned set; the queue holds
 * exactly the slots whose pin_want differs from pinned, each once, and
 * each such slot's pin_queued is 1 + its index.
 */
#include "runs.h"

#include <stdbool.h>
#include <stdio.h>

#include "debug.h"
#include "htab.h"

static inline struct object *node(const struct objtab *t, uint32_t s)
{
	return objtab_get(t, s);
}

static uint64_t prio(uint32_t s)
{
	return htab_hash_u64(s);
}

static uint64_t max_of(const struct objtab *t, uint32_t s)
{
	return s == OBJ_NIL ? 0 : node(t, s)->pin_max;
}

static void pull(struct objtab *t, uint32_t s)
{
	struct object *o = node(t, s);
	uint64_t m = o->pin_gap, l = max_of(t, o->pin_left),
	         r = max_of(t, o->pin_right);

	o->pin_max = m > l ? (m > r ? m : r) : (l > r ? l : r);
}

static uint32_t rotate_right(struct objtab *t, uint32_t s)
{
	uint32_t l = node(t, s)->pin_left;

	node(t, s)->pin_left = node(t, l)->pin_right;
	node(t, l)->pin_right = s;
	pull(t, s);
	pull(t, l);
	return l;
}

static uint32_t rotate_left(struct objtab *t, uint32_t s)
{
	uint32_t r = node(t, s)->pin_right;

	node(t, s)->pin_right = node(t, r)->pin_left;
	node(t, r)->pin_left = s;
	pull(t, s);
	pull(t, r);
	return r;
}

static uint32_t insert(struct objtab *t, uint32_t root, uint32_t x)
{
	if (root == OBJ_NIL)
		return x;
	struct object *o = node(t, root);
	if (node(t, x)->offset < o->offset) {
		o->pin_left = insert(t, o->pin_left, x);
		if (prio(o->pin_left) > prio(root))
			return rotate_right(t, root);
	} else {
		o->pin_right = insert(t, o->pin_right, x);
		if (prio(o->pin_right) > prio(root))
			return rotate_left(t, root);
	}
	pull(t, root);
	return root;
}

/* Joins two treaps, every offset of a below every offset of b. */
static uint32_t merge(struct objtab *t, uint32_t a, uint32_t b)
{
	if (a == OBJ_NIL)
		return b;
	if (b == OBJ_NIL)
		return a;
	if (prio(a) > prio(b)) {
		node(t, a)->pin_right = merge(t, node(t, a)->pin_right, b);
		pull(t, a);
		return a;
	}
	node(t, b)->pin_left = merge(t, a, node(t, b)->pin_left);
	pull(t, b);
	return b;
}

static uint32_t remove_at(struct objtab *t, uint32_t root, uint64_t off)
{
	SHOAL_ASSERT(root != OBJ_NIL);
	struct object *o = node(t, root);
	if (off == o->offset) {
		uint32_t m = merge(t, o->pin_left, o->pin_right);
		o->pin_left = o->pin_right = OBJ_NIL;
		return m;
	}
	if (off < o->offset)
		o->pin_left = remove_at(t, o->pin_left, off);
	else
		o->pin_right = remove_at(t, o->pin_right, off);
	pull(t, root);
	return root;
}

/* Recomputes the maxima on the path to the node at off. */
static void refresh(struct objtab *t, uint32_t root, uint64_t off)
{
	if (root == OBJ_NIL)
		return;
	struct object *o = node(t, root);
	if (off < o->offset)
		refresh(t, o->pin_left, off);
	else if (off > o->offset)
		refresh(t, o->pin_right, off);
	pull(t, root);
}

/* The pinned neighbours of offset off (itself pinned or not). */
static void neighbours(const struct objtab *t, uint32_t s, uint64_t off,
                       uint32_t *pred, uint32_t *succ)
{
	*pred = *succ = OBJ_NIL;
	while (s != OBJ_NIL) {
		const struct object *o = node(t, s);
		if (o->offset < off) {
			*pred = s;
			s = o->pin_right;
		} else if (o->offset > off) {
			*succ = s;
			s = o->pin_left;
		} else {
			for (uint32_t p = o->pin_left; p != OBJ_NIL;
			     p = node(t, p)->pin_right)
				*pred = p;
			for (uint32_t q = o->pin_right; q != OBJ_NIL;
			     q = node(t, q)->pin_left)
				*succ = q;
			return;
		}
	}
}

static uint64_t gap_to(const struct runs *r, const struct objtab *t, uint32_t s,
                       uint32_t succ)
{
	const struct object *o = node(t, s);
	uint64_t next = succ == OBJ_NIL ? r->end : node(t, succ)->offset;

	SHOAL_ASSERT(next >= o->offset + o->block_size);
	return next - (o->offset + o->block_size);
}

void runs_init(struct runs *r, uint64_t base, uint64_t size)
{
	r->base = base;
	r->end = base + size;
	r->root = OBJ_NIL;
	r->count = 0;
	r->nqueue = 0;
}

static void pin(struct runs *r, struct objtab *t, uint32_t slot)
{
	struct object *o = node(t, slot);
	uint32_t pred, succ;

	SHOAL_ASSERT(!o->pinned);
	neighbours(t, r->root, o->offset, &pred, &succ);
	o->pin_left = o->pin_right = OBJ_NIL;
	o->pin_gap = gap_to(r, t, slot, succ);
	o->pin_max = o->pin_gap;
	o->pinned = true;
	if (pred != OBJ_NIL)
		node(t, pred)->pin_gap = gap_to(r, t, pred, slot);
	r->root = insert(t, r->root, slot);
	if (pred != OBJ_NIL)
		refresh(t, r->root, node(t, pred)->offset);
	r->count++;
}

static void unpin(struct runs *r, struct objtab *t, uint32_t slot)
{
	struct object *o = node(t, slot);
	uint32_t pred, succ;

	SHOAL_ASSERT(o->pinned && r->count > 0);
	neighbours(t, r->root, o->offset, &pred, &succ);
	r->root = remove_at(t, r->root, o->offset);
	o->pinned = false;
	if (pred != OBJ_NIL) {
		node(t, pred)->pin_gap = gap_to(r, t, pred, succ);
		refresh(t, r->root, node(t, pred)->offset);
	}
	r->count--;
}

static void dequeue(struct runs *r, struct objtab *t, struct object *o)
{
	uint32_t i = o->pin_queued - 1, last = r->queue[--r->nqueue];

	r->queue[i] = last;
	node(t, last)->pin_queued = i + 1;
	o->pin_queued = 0;
}

void runs_flush(struct runs *r, struct objtab *t)
{
	for (uint32_t i = 0; i < r->nqueue; i++) {
		uint32_t s = r->queue[i];
		struct object *o = node(t, s);

		SHOAL_ASSERT(o->pin_queued == i + 1 &&
		             o->pin_want != o->pinned);
		o->pin_queued = 0;
		if (o->pin_want)
			pin(r, t, s);
		else
			unpin(r, t, s);
	}
	r->nqueue = 0;
}

void runs_want(struct runs *r, struct objtab *t, uint32_t slot, bool want)
{
	struct object *o = node(t, slot);

	o->pin_want = want;
	if (want == o->pinned) {
		if (o->pin_queued)
			dequeue(r, t, o); /* undone before anyone looked */
		return;
	}
	if (o->pin_queued)
		return;
	if (r->nqueue == RUNS_QUEUE_MAX)
		runs_flush(r, t);
	r->queue[r->nqueue++] = slot;
	o->pin_queued = r->nqueue;
}

void runs_drop(struct runs *r, struct objtab *t, uint32_t slot)
{
	struct object *o = node(t, slot);

	if (o->pin_queued)
		dequeue(r, t, o);
	if (o->pinned)
		unpin(r, t, slot);
	o->pin_want = false;
}

uint64_t runs_largest(struct runs *r, struct objtab *t)
{
	uint32_t s;

	runs_flush(r, t);
	s = r->root;
	if (s == OBJ_NIL)
		return r->end - r->base;
	while (node(t, s)->pin_left != OBJ_NIL)
		s = node(t, s)->pin_left;
	uint64_t head = node(t, s)->offset - r->base;
	uint64_t inner = node(t, r->root)->pin_max;
	return head > inner ? head : inner;
}

struct walk {
	const struct runs *r;
	const struct objtab *t;
	uint32_t prev; /* the previous node in order */
	uint32_t seen;
	char *msg;
	size_t size;
};

#define FAIL(...)                                       \
	do {                                            \
		snprintf(w->msg, w->size, __VA_ARGS__); \
		return -1;                              \
	} while (0)

/* In-order walk of the subtree at s (at most depth levels deep). */
static int walk(struct walk *w, uint32_t s, unsigned depth)
{
	if (s == OBJ_NIL)
		return 0;
	if (depth == 0 || s >= w->t->nslots)
		FAIL("pinned treap is too deep or points past the slots");
	const struct object *o = node(w->t, s);
	if (o->pin_left != OBJ_NIL && prio(o->pin_left) > prio(s))
		FAIL("pinned treap: heap order broken at slot %u", s);
	if (o->pin_right != OBJ_NIL && prio(o->pin_right) > prio(s))
		FAIL("pinned treap: heap order broken at slot %u", s);
	if (walk(w, o->pin_left, depth - 1))
		return -1;
	if (!o->pinned || o->state == OBJ_FREE)
		FAIL("slot %u is in the pinned treap but not pinned", s);
	if (w->prev == OBJ_NIL) {
		if (o->offset < w->r->base)
			FAIL("pinned object %u lies before the arena", s);
	} else {
		const struct object *p = node(w->t, w->prev);
		if (p->offset + p->block_size > o->offset)
			FAIL("pinned objects %u and %u overlap or are out of "
			     "order",
			     w->prev, s);
		if (p->pin_gap != o->offset - (p->offset + p->block_size))
			FAIL("pinned object %u's gap is wrong", w->prev);
	}
	w->prev = s;
	w->seen++;
	if (walk(w, o->pin_right, depth - 1))
		return -1;
	uint64_t m = o->pin_gap;
	if (o->pin_left != OBJ_NIL && node(w->t, o->pin_left)->pin_max > m)
		m = node(w->t, o->pin_left)->pin_max;
	if (o->pin_right != OBJ_NIL && node(w->t, o->pin_right)->pin_max > m)
		m = node(w->t, o->pin_right)->pin_max;
	if (o->pin_max != m)
		FAIL("pinned object %u's subtree maximum is wrong", s);
	return 0;
}

int runs_check(const struct runs *r, const struct objtab *t, char *msg,
               size_t size)
{
	struct walk wk = {r, t, OBJ_NIL, 0, msg, size}, *w = &wk;
	uint32_t pinned = 0;

	if (walk(w, r->root, 200))
		return -1;
	if (w->prev != OBJ_NIL) {
		const struct object *p = node(t, w->prev);
		if (p->offset + p->block_size > r->end ||
		    p->pin_gap != r->end - (p->offset + p->block_size))
			FAIL("the last pinned object's gap is wrong");
	}
	uint32_t lagging = 0;
	for (uint32_t s = 0; s < t->nslots; s++) {
		const struct object *o = node(t, s);
		if (o->state == OBJ_FREE) {
			if (o->pin_queued || o->pinned)
				FAIL("free slot %u is pinned or queued", s);
			continue;
		}
		pinned += o->pinned;
		lagging += o->pin_want != o->pinned;
		if ((o->pin_want != o->pinned) != (o->pin_queued != 0))
			FAIL("slot %u is %squeued", s,
			     o->pin_queued ? "" : "not ");
		if (o->pin_queued && (o->pin_queued > r->nqueue ||
		                      r->queue[o->pin_queued - 1] != s))
			FAIL("slot %u's queue place is wrong", s);
	}
	if (pinned != w->seen || w->seen != r->count)
		FAIL("%u objects pinned, %u in the treap, count %u", pinned,
		     w->seen, r->count);
	if (lagging != r->nqueue)
		FAIL("%u objects queued, %u lag behind", r->nqueue, lagging);
	return 0;
}
