/*
 * objects.c - the object table (see objects.h).
 *
 * Invariants: every slot below nslots is either OBJ_FREE and on the free
 * list, or in use; an in-use slot is in the ID hash iff it is not deleted;
 * the ID hash holds each live ID once; the LRU list links exactly the slots
 * with in_lru set, in release order. The hash is keyed with the process
 * seed (u64map_hash_bytes) so that chosen IDs cannot build long chains; it
 * doubles when the live count passes the bucket count.
 */
#include "objects.h"

#include "debug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "u64map.h"

int objtab_init(struct objtab *t)
{
	memset(t, 0, sizeof(*t));
	t->free_head = OBJ_NIL;
	t->lru_head = t->lru_tail = OBJ_NIL;
	t->nbuckets = 64;
	t->buckets = os_malloc(t->nbuckets * sizeof(*t->buckets));
	if (!t->buckets)
		return SHOAL_ENOMEM;
	memset(t->buckets, 0xff, t->nbuckets * sizeof(*t->buckets));
	return 0;
}

void objtab_free(struct objtab *t)
{
	free(t->slots);
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

static uint32_t bucket_of(const struct objtab *t, const uint8_t *id)
{
	return (uint32_t)(u64map_hash_bytes(id, SHOAL_ID_SIZE) &
	                  (t->nbuckets - 1));
}

uint32_t objtab_find(const struct objtab *t, const uint8_t *id)
{
	for (uint32_t s = t->buckets[bucket_of(t, id)]; s != OBJ_NIL;
	     s = t->slots[s].id_next)
		if (memcmp(t->slots[s].id, id, SHOAL_ID_SIZE) == 0)
			return s;
	return OBJ_NIL;
}

static int rehash(struct objtab *t, uint32_t nbuckets)
{
	uint32_t *b = os_malloc((size_t)nbuckets * sizeof(*b));

	if (!b)
		return SHOAL_ENOMEM;
	memset(b, 0xff, (size_t)nbuckets * sizeof(*b));
	for (uint32_t i = 0; i < t->nbuckets; i++) {
		uint32_t s = t->buckets[i];
		while (s != OBJ_NIL) {
			uint32_t next = t->slots[s].id_next;
			uint32_t h =
			        (uint32_t)(u64map_hash_bytes(t->slots[s].id,
			                                     SHOAL_ID_SIZE) &
			                   (nbuckets - 1));
			t->slots[s].id_next = b[h];
			b[h] = s;
			s = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nbuckets;
	return 0;
}

int objtab_add(struct objtab *t, const uint8_t *id, uint32_t *slot)
{
	uint32_t s;

	if (t->live + 1 > t->nbuckets && t->nbuckets < (1u << 30)) {
		int rc = rehash(t, t->nbuckets * 2);
		if (rc)
			return rc;
	}
	if (t->free_head != OBJ_NIL) {
		s = t->free_head;
		t->free_head = t->slots[s].id_next;
	} else {
		if (t->nslots == t->cap) {
			uint32_t cap = t->cap ? t->cap * 2 : 64;
			struct object *n;
			if (t->cap >= OBJ_NIL / 2)
				return SHOAL_ENOMEM;
			n = os_realloc(t->slots, (size_t)cap * sizeof(*n));
			if (!n)
				return SHOAL_ENOMEM;
			t->slots = n;
			t->cap = cap;
		}
		s = t->nslots++;
		t->slots[s].gen = 0;
	}
	struct object *o = &t->slots[s];
	uint32_t gen = o->gen;
	memset(o, 0, sizeof(*o));
	o->gen = gen;
	memcpy(o->id, id, SHOAL_ID_SIZE);
	o->lru_prev = o->lru_next = OBJ_NIL;
	uint32_t h = bucket_of(t, id);
	o->id_next = t->buckets[h];
	t->buckets[h] = s;
	t->live++;
	*slot = s;
	return 0;
}

void objtab_unlink(struct objtab *t, uint32_t slot)
{
	struct object *o = &t->slots[slot];
	uint32_t *link = &t->buckets[bucket_of(t, o->id)];

	while (*link != OBJ_NIL && *link != slot)
		link = &t->slots[*link].id_next;
	if (*link == slot) {
		*link = o->id_next;
		t->live--;
	}
	o->id_next = OBJ_NIL;
	o->deleted = true;
}

void objtab_release_slot(struct objtab *t, uint32_t slot)
{
	struct object *o = &t->slots[slot];

	if (!o->deleted)
		objtab_unlink(t, slot);
	if (o->in_lru)
		lru_remove(t, slot);
	o->state = OBJ_FREE;
	o->deleted = false;
	o->gen++;
	t->released++;
	o->id_next = t->free_head;
	t->free_head = slot;
}

uint64_t objtab_handle(const struct objtab *t, uint32_t slot)
{
	return ((uint64_t)t->slots[slot].gen << 32) | slot;
}

uint32_t objtab_from_handle(const struct objtab *t, uint64_t handle)
{
	uint32_t slot = (uint32_t)handle;

	if (slot >= t->nslots || t->slots[slot].state == OBJ_FREE ||
	    t->slots[slot].gen != (uint32_t)(handle >> 32))
		return OBJ_NIL;
	return slot;
}

void lru_push(struct objtab *t, uint32_t slot)
{
	struct object *o = &t->slots[slot];

	if (o->in_lru)
		lru_remove(t, slot);
	o->lru_prev = t->lru_tail;
	o->lru_next = OBJ_NIL;
	if (t->lru_tail != OBJ_NIL)
		t->slots[t->lru_tail].lru_next = slot;
	else
		t->lru_head = slot;
	t->lru_tail = slot;
	o->in_lru = true;
	t->lru_count++;
	t->lru_bytes += o->block_size;
	t->lru_pushes++;
}

void lru_remove(struct objtab *t, uint32_t slot)
{
	struct object *o = &t->slots[slot];

	if (!o->in_lru)
		return;
	if (o->lru_prev != OBJ_NIL)
		t->slots[o->lru_prev].lru_next = o->lru_next;
	else
		t->lru_head = o->lru_next;
	if (o->lru_next != OBJ_NIL)
		t->slots[o->lru_next].lru_prev = o->lru_prev;
	else
		t->lru_tail = o->lru_prev;
	o->lru_prev = o->lru_next = OBJ_NIL;
	o->in_lru = false;
	SHOAL_ASSERT(t->lru_count > 0 && t->lru_bytes >= o->block_size);
	t->lru_count--;
	t->lru_bytes -= o->block_size;
}

#define FAIL(...)                                         \
	do {                                              \
		if (msg)                                  \
			snprintf(msg, size, __VA_ARGS__); \
		return -1;                                \
	} while (0)

int objtab_check(const struct objtab *t, char *msg, size_t size)
{
	uint32_t hashed = 0, free_count = 0, used = 0, lru = 0, in_lru = 0;

	for (uint32_t i = 0; i < t->nbuckets; i++)
		for (uint32_t s = t->buckets[i]; s != OBJ_NIL;
		     s = t->slots[s].id_next) {
			if (s >= t->nslots)
				FAIL("hash chain points past the slots");
			if (t->slots[s].state == OBJ_FREE ||
			    t->slots[s].deleted)
				FAIL("slot %u in the ID hash is free or "
				     "deleted",
				     s);
			if (bucket_of(t, t->slots[s].id) != i)
				FAIL("slot %u is in the wrong bucket", s);
			if (objtab_find(t, t->slots[s].id) != s)
				FAIL("ID of slot %u is in the hash twice", s);
			if (++hashed > t->nslots)
				FAIL("ID hash has a cycle");
		}
	for (uint32_t s = t->free_head; s != OBJ_NIL; s = t->slots[s].id_next) {
		if (s >= t->nslots || t->slots[s].state != OBJ_FREE)
			FAIL("free list holds slot %u in use", s);
		if (++free_count > t->nslots)
			FAIL("free list has a cycle");
	}
	for (uint32_t s = 0; s < t->nslots; s++) {
		if (t->slots[s].state != OBJ_FREE)
			used++;
		if (t->slots[s].in_lru)
			in_lru++;
	}
	if (hashed != t->live)
		FAIL("live count %u, but %u IDs in the hash", t->live, hashed);
	if (used + free_count != t->nslots)
		FAIL("%u used + %u free slots != %u", used, free_count,
		     t->nslots);
	uint32_t prev = OBJ_NIL;
	uint64_t lru_bytes = 0;
	for (uint32_t s = t->lru_head; s != OBJ_NIL; s = t->slots[s].lru_next) {
		if (!t->slots[s].in_lru || t->slots[s].lru_prev != prev)
			FAIL("LRU list broken at slot %u", s);
		prev = s;
		lru_bytes += t->slots[s].block_size;
		if (++lru > t->nslots)
			FAIL("LRU list has a cycle");
	}
	if (prev != t->lru_tail || lru != in_lru || lru != t->lru_count)
		FAIL("LRU holds %u objects, %u marked, count %u", lru, in_lru,
		     t->lru_count);
	if (lru_bytes != t->lru_bytes)
		FAIL("LRU holds %llu bytes, counted %llu",
		     (unsigned long long)lru_bytes,
		     (unsigned long long)t->lru_bytes);
	return 0;
}
