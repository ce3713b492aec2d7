/*
 * names.c - the name table (see names.h).
 *
 * Invariants: a slot is in use iff its name is not NULL; every used slot is
 * in exactly one hash chain, the one of its hash; free slots form the free
 * list; count is the number of used slots.
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
	n->bytes -= e->len;
	free(e->name);
	e->name = NULL;
	e->next = n->free_head;
	n->free_head = slot;
	n->count--;
}

int names_check(const struct names *n, char *msg, size_t size)
{
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
