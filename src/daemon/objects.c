/*
 * objects.c - the object table (see objects.h).
 *
 * Invariants: every slot below nslots is either OBJ_FREE and on the free
 * list, or in use; an in-use slot is in the ID hash iff it is not deleted;
 * the ID hash holds each live ID once; the LRU list links exactly the slots
 * with in_lru set, in release order. The ID hash is the generic table
 * (htab.h) of slot numbers, keyed with the process seed so that chosen IDs
 * cannot build long probe runs.
 */
#include "objects.h"

#include "debug.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "htab.h"

int objtab_init(struct objtab *t)
{
	memset(t, 0, sizeof(*t));
	t->free_head = OBJ_NIL;
	t->lru_head = t->lru_tail = OBJ_NIL;
	htab_init(&t->ids, sizeof(uint32_t));
	return 0;
}

void objtab_free(struct objtab *t)
{
	free(t->slots);
	htab_free(&t->ids);
	memset(t, 0, sizeof(*t));
}

/* An ID looked up in the table: entries are slots, compared by their ID. */
struct id_key {
	const struct objtab *t;
	const uint8_t *id;
};

static bool slot_has_id(const void *entry, const void *key)
{
	const struct id_key *k = key;
	uint32_t s;

	memcpy(&s, entry, sizeof(s));
	return memcmp(k->t->slots[s].id, k->id, SHOAL_ID_SIZE) == 0;
}

static uint32_t *find_entry(const struct objtab *t, const uint8_t *id)
{
	struct id_key k = {t, id};

	return htab_find(&t->ids, htab_hash_bytes(id, SHOAL_ID_SIZE),
	                 slot_has_id, &k);
}

uint32_t objtab_find(const struct objtab *t, const uint8_t *id)
{
	const uint32_t *e = find_entry(t, id);
	uint32_t s;

	if (!e)
		return OBJ_NIL;
	memcpy(&s, e, sizeof(s));
	return s;
}

int objtab_add(struct objtab *t, const uint8_t *id, uint32_t *slot)
{
	uint32_t s;

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
	o->id_next = OBJ_NIL;
	if (htab_insert(&t->ids, htab_hash_bytes(id, SHOAL_ID_SIZE), &s,
	                NULL)) {
		/* Back to the free list, as it was (a fresh slot stays
		 * counted in nslots, free). */
		o->id_next = t->free_head;
		t->free_head = s;
		return SHOAL_ENOMEM;
	}
	t->live++;
	*slot = s;
	return 0;
}

void objtab_unlink(struct objtab *t, uint32_t slot)
{
	struct object *o = &t->slots[slot];
	uint32_t *e = o->deleted ? NULL : find_entry(t, o->id);

	SHOAL_ASSERT(o->deleted || (e && *e == slot));
	if (e) {
		htab_remove(&t->ids, e);
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
	SHOAL_ASSERT(o->state != OBJ_FREE);
	SHOAL_ASSERT(o->lru_prev == OBJ_NIL && o->lru_next == OBJ_NIL);
	SHOAL_ASSERT(t->lru_tail == OBJ_NIL ||
	             t->slots[t->lru_tail].lru_next == OBJ_NIL);
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
	SHOAL_ASSERT(o->lru_prev == OBJ_NIL
	                     ? t->lru_head == slot
	                     : t->slots[o->lru_prev].lru_next == slot);
	SHOAL_ASSERT(o->lru_next == OBJ_NIL
	                     ? t->lru_tail == slot
	                     : t->slots[o->lru_next].lru_prev == slot);
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

	char hmsg[128];
	if (htab_check(&t->ids, hmsg, sizeof(hmsg)))
		FAIL("ID hash: %s", hmsg);
	const uint32_t *e;
	for (size_t pos = 0; (e = htab_next(&t->ids, &pos));) {
		uint32_t s;
		memcpy(&s, e, sizeof(s));
		if (s >= t->nslots)
			FAIL("ID hash points past the slots");
		if (t->slots[s].state == OBJ_FREE || t->slots[s].deleted)
			FAIL("slot %u in the ID hash is free or deleted", s);
		if (objtab_find(t, t->slots[s].id) != s)
			FAIL("ID of slot %u is in the hash twice", s);
		hashed++;
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
