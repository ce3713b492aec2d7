/*
 * names.c - the name table (see names.h).
 *
 * Invariants: a slot is in use iff its name is not NULL; the hash index
 * (the generic table, htab.h, of slot numbers) holds every used slot once
 * and nothing else; free slots form the free list; count is the number of used
 * slots; the used slots form one treap from root, in strictly increasing name
 * order from left to right, each node's priority (the high half of its hash) at
 * least its children's.
 */
#include "names.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "os.h"
#include "shoal.h"
#include "htab.h"

int names_init(struct names *n)
{
	memset(n, 0, sizeof(*n));
	n->free_head = NAME_NIL;
	n->root = NAME_NIL;
	htab_init(&n->index, sizeof(uint32_t));
	return 0;
}

void names_free(struct names *n)
{
	for (uint32_t i = 0; i < n->nslots; i++)
		free(n->slots[i].name);
	free(n->slots);
	htab_free(&n->index);
	memset(n, 0, sizeof(*n));
}

/* A name looked up in the index: entries are slots, compared by name. */
struct name_key {
	const struct names *n;
	const char *name;
	size_t len;
};

static bool slot_has_name(const void *entry, const void *key)
{
	const struct name_key *k = key;
	uint32_t s;

	memcpy(&s, entry, sizeof(s));
	const struct name_entry *e = &k->n->slots[s];
	return e->len == k->len && memcmp(e->name, k->name, k->len) == 0;
}

static uint32_t *find_entry(const struct names *n, const char *name, size_t len,
                            uint64_t hash)
{
	struct name_key k = {n, name, len};

	return htab_find(&n->index, hash, slot_has_name, &k);
}

uint32_t names_find(const struct names *n, const char *name, size_t len)
{
	const uint32_t *e =
	        find_entry(n, name, len, htab_hash_bytes(name, len));
	uint32_t s;

	if (!e)
		return NAME_NIL;
	memcpy(&s, e, sizeof(s));
	return s;
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
	if (htab_reserve(&n->index, 1)) {
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
	e->hash = htab_hash_bytes(name, len);
	e->next = NAME_NIL;
	/* Cannot fail: reserved above. */
	htab_insert(&n->index, e->hash, &s, NULL);
	order_insert(n, s);
	n->count++;
	n->bytes += len;
	*slot = s;
	return 0;
}

void names_remove(struct names *n, uint32_t slot)
{
	struct name_entry *e = &n->slots[slot];
	uint32_t *at = find_entry(n, e->name, e->len, e->hash);

	SHOAL_ASSERT(at && *at == slot);
	if (at)
		htab_remove(&n->index, at);
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

	uint32_t used = 0;
	const uint32_t *e;
	char hmsg[128];

	if (htab_check(&n->index, hmsg, sizeof(hmsg))) {
		if (msg)
			snprintf(msg, size, "names: %s", hmsg);
		return -1;
	}
	for (size_t pos = 0; (e = htab_next(&n->index, &pos));) {
		uint32_t s;
		memcpy(&s, e, sizeof(s));
		if (s >= n->nslots || !n->slots[s].name ||
		    find_entry(n, n->slots[s].name, n->slots[s].len,
		               n->slots[s].hash) != e) {
			if (msg)
				snprintf(msg, size,
				         "name hash broken at slot %u", s);
			return -1;
		}
	}
	for (uint32_t s = 0; s < n->nslots; s++)
		if (n->slots[s].name)
			used++;
	if (used != n->index.count || used != n->count) {
		if (msg)
			snprintf(msg, size,
			         "%u names used, %zu hashed, count %u", used,
			         n->index.count, n->count);
		return -1;
	}
	return 0;
}
