/*
 * names.c - the name table (see names.h).
 *
 * Invariants: a slot is in use iff its name is not NULL; every used slot is
 * in exactly one hash chain, the one of its hash; free slots form the free
 * list; count is the number of used slots; the used slots form one treap
 * from root, in strictly increasing name order from left to right, each
 * node's priority (the high half of its hash) at least its children's.
 */
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "shoal.h"
#include "u64map.h"

int names_init(struct names *n)
{
	memset(n, 0, sizeof(*n));
	n->free_head = NAME_NIL;
	n->root = NAME_NIL;
	n->nbuckets = 64;
	n->buckets = os_malloc(n->nbuckets * sizeof(*n->buckets));
	if (!n->buckets)
		return SHOAL_ENOMEM;
	memset(n->buckets, 0xff, n->nbuckets * sizeof(*n->buckets));
	return 0;
}

void names_free(struct names *n)
{
	for (uint32_t i = 0; i < n->nslots; i++)
		free(n->slots[i].name);
	free(n->slots);
	free(n->buckets);
	memset(n, 0, sizeof(*n));
}

uint32_t names_find(const struct names *n, const char *name, size_t len)
{
	uint64_t h = u64map_hash_bytes(name, len);

	for (uint32_t s = n->buckets[h & (n->nbuckets - 1)]; s != NAME_NIL;
	     s = n->slots[s].next) {
		const struct name_entry *e = &n->slots[s];
		if (e->hash == h && e->len == len &&
		    memcmp(e->name, name, len) == 0)
			return s;
	}
	return NAME_NIL;
}

/* Orders two names: bytes as unsigned, then the shorter first. */
static int name_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	return c ? c : (alen > blen) - (alen < blen);
}

static uint32_t prio(const struct names *n, uint32_t s)
{
	return (uint32_t)(n->slots[s].hash >> 32);
}

/* Splits the treap t into the names before key (*l) and the rest (*r). */
static void split(struct names *n, uint32_t t, const char *key, size_t len,
                  uint32_t *l, uint32_t *r)
{
	if (t == NAME_NIL) {
		*l = *r = NAME_NIL;
		return;
	}
	struct name_entry *e = &n->slots[t];
	if (name_cmp(e->name, e->len, key, len) < 0) {
		split(n, e->right, key, len, &e->right, r);
		*l = t;
	} else {
		split(n, e->left, key, len, l, &e->left);
		*r = t;
	}
}

/* Joins two treaps, every name of a before every name of b. */
static uint32_t merge(struct names *n, uint32_t a, uint32_t b)
{
	if (a == NAME_NIL)
		return b;
	if (b == NAME_NIL)
		return a;
	if (prio(n, a) >= prio(n, b)) {
		n->slots[a].right = merge(n, n->slots[a].right, b);
		return a;
	}
	n->slots[b].left = merge(n, a, n->slots[b].left);
	return b;
}

static void order_insert(struct names *n, uint32_t s)
{
	struct name_entry *e = &n->slots[s];
	uint32_t *link = &n->root;

	while (*link != NAME_NIL && prio(n, *link) >= prio(n, s)) {
		const struct name_entry *t = &n->slots[*link];
		link = name_cmp(e->name, e->len, t->name, t->len) < 0
		               ? &n->slots[*link].left
		               : &n->slots[*link].right;
	}
	split(n, *link, e->name, e->len, &e->left, &e->right);
	*link = s;
}

static void order_remove(struct names *n, uint32_t s)
{
	const struct name_entry *e = &n->slots[s];
	uint32_t *link = &n->root;

	while (*link != s && *link != NAME_NIL) {
		const struct name_entry *t = &n->slots[*link];
		link = name_cmp(e->name, e->len, t->name, t->len) < 0
		               ? &n->slots[*link].left
		               : &n->slots[*link].right;
	}
	if (*link == s)
		*link = merge(n, e->left, e->right);
}

uint32_t names_seek(const struct names *n, const char *key, size_t len,
                    bool inclusive)
{
	uint32_t t = n->root, best = NAME_NIL;

	while (t != NAME_NIL) {
		const struct name_entry *e = &n->slots[t];
		int c = name_cmp(e->name, e->len, key, len);
		if (c > 0 || (inclusive && c == 0)) {
			best = t;
			t = e->left;
		} else {
			t = e->right;
		}
	}
	return best;
}

static int rehash(struct names *n, uint32_t nbuckets)
{
	uint32_t *b = os_malloc((size_t)nbuckets * sizeof(*b));

	if (!b)
		return SHOAL_ENOMEM;
	memset(b, 0xff, (size_t)nbuckets * sizeof(*b));
	for (uint32_t s = 0; s < n->nslots; s++) {
		struct name_entry *e = &n->slots[s];
		if (!e->name)
			continue;
		e->next = b[e->hash & (nbuckets - 1)];
		b[e->hash & (nbuckets - 1)] = s;
	}
	free(n->buckets);
	n->buckets = b;
	n->nbuckets = nbuckets;
	return 0;
}

int names_add(struct names *n, const char *name, size_t len, uint32_t obj,
              uint64_t version, uint32_t *slot)
{
	char *copy = os_malloc(len + 1);
	uint32_t s;

	if (!copy)
		return SHOAL_ENOMEM;
	if (n->free_head == NAME_NIL && n->nslots == n->cap) {
		uint32_t cap = n->cap ? n->cap * 2 : 64;
		struct name_entry *ns = NULL;
		if (n->cap < NAME_NIL / 2)
			ns = os_realloc(n->slots, (size_t)cap * sizeof(*ns));
		if (!ns) {
			free(copy);
			return SHOAL_ENOMEM;
		}
		n->slots = ns;
		n->cap = cap;
	}
	if (n->count + 1 > n->nbuckets && rehash(n, n->nbuckets * 2)) {
		free(copy);
		return SHOAL_ENOMEM;
	}
	if (n->free_head != NAME_NIL) {
		s = n->free_head;
		n->free_head = n->slots[s].next;
	} else {
		s = n->nslots++;
	}
	memcpy(copy, name, len);
	copy[len] = '\0';
	struct name_entry *e = &n->slots[s];
	e->name = copy;
	e->len = (uint32_t)len;
	e->obj = obj;
	e->version = version;
	e->expire_ns = 0;
	e->flags = 0;
	e->heap_pos = e->obj_prev = e->obj_next = NAME_NIL;
	e->hash = u64map_hash_bytes(name, len);
	e->next = n->buckets[e->hash & (n->nbuckets - 1)];
	n->buckets[e->hash & (n->nbuckets - 1)] = s;
	order_insert(n, s);
	n->count++;
	n->bytes += len;
	*slot = s;
	return 0;
}

void names_remove(struct names *n, uint32_t slot)
{
	struct name_entry *e = &n->slots[slot];
	uint32_t *link = &n->buckets[e->hash & (n->nbuckets - 1)];

	while (*link != NAME_NIL && *link != slot)
		link = &n->slots[*link].next;
	if (*link == slot)
		*link = e->next;
	order_remove(n, slot);
	n->bytes -= e->len;
	free(e->name);
	e->name = NULL;
	e->next = n->free_head;
	n->free_head = slot;
	n->count--;
}

/* Checks the treap under t: order against the bounds lo/hi (slots, or
 * NAME_NIL for none), priorities; counts its nodes into *seen. */
static int check_order(const struct names *n, uint32_t t, uint32_t lo,
                       uint32_t hi, uint32_t *seen)
{
	if (t == NAME_NIL)
		return 0;
	if (t >= n->nslots || !n->slots[t].name || ++*seen > n->count)
		return -1;
	const struct name_entry *e = &n->slots[t];
	if (lo != NAME_NIL &&
	    name_cmp(n->slots[lo].name, n->slots[lo].len, e->name, e->len) >= 0)
		return -1;
	if (hi != NAME_NIL &&
	    name_cmp(e->name, e->len, n->slots[hi].name, n->slots[hi].len) >= 0)
		return -1;
	if ((e->left != NAME_NIL && e->left < n->nslots &&
	     prio(n, e->left) > prio(n, t)) ||
	    (e->right != NAME_NIL && e->right < n->nslots &&
	     prio(n, e->right) > prio(n, t)))
		return -1;
	return check_order(n, e->left, lo, t, seen) ||
	       check_order(n, e->right, t, hi, seen);
}

int names_check(const struct names *n, char *msg, size_t size)
{
	uint32_t ordered = 0;

	if (check_order(n, n->root, NAME_NIL, NAME_NIL, &ordered) ||
	    ordered != n->count) {
		if (msg)
			snprintf(msg, size, "the name order is broken");
		return -1;
	}

	uint32_t chained = 0, used = 0;

	for (uint32_t b = 0; b < n->nbuckets; b++)
		for (uint32_t s = n->buckets[b]; s != NAME_NIL;
		     s = n->slots[s].next) {
			if (s >= n->nslots || !n->slots[s].name ||
			    (n->slots[s].hash & (n->nbuckets - 1)) != b ||
			    ++chained > n->nslots) {
				if (msg)
					snprintf(msg, size,
					         "name hash broken at slot %u",
					         s);
				return -1;
			}
		}
	for (uint32_t s = 0; s < n->nslots; s++)
		if (n->slots[s].name)
			used++;
	if (used != chained || used != n->count) {
		if (msg)
			snprintf(msg, size,
			         "%u names used, %u hashed, count %u", used,
			         chained, n->count);
		return -1;
	}
	return 0;
}
