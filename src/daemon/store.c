/*
 * store.c - the store's semantics (see store.h for the rules).
 *
 * Every change of an object's holders, names or deletion goes through
 * settle(), which decides in one place whether the object is now to be
 * freed, evictable, or neither. Invariants checked by store_check():
 *   - each in-use slot owns exactly one allocator block, found by offset in
 *     by_offset, and the blocks' sizes add up to alloc_used();
 *   - in_lru == (sealed && !deleted && keep_names == 0 && holders == 0);
 *   - holders == the number of clients whose holds contain the handle,
 *     plus the departed clients whose holds not yet released contain it;
 *   - names == the number of name entries pointing at the slot, keep_names
 *     the number of those without NAME_EVICTABLE, the names of a slot are
 *     exactly its name_head list, and every named object is sealed and not
 *     deleted;
 *   - the expiry heap holds exactly the names with an expiry (expiry.c);
 *   - deleted_held == the number of deleted slots still in use.
 */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "debug.h"
#include "layout.h"
#include "limit.h"
#include "os.h"

static uint64_t monotonic_ns(void);

static uint64_t now_ns(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t monotonic_ns(void)
{
	return now_ns(CLOCK_MONOTONIC);
}

int store_init(struct store *st, struct arena *a)
{
	int rc;

	memset(st, 0, sizeof(*st));
	st->arena = a;
	st->clock = monotonic_ns;
	expiry_init(&st->expiry);
	st->start_ns = now_ns(CLOCK_MONOTONIC);
	rc = alloc_create(a->data_offset, a->capacity, &st->alloc);
	runs_init(&st->runs, a->data_offset, a->capacity);
	if (rc)
		return rc;
	if (objtab_init(&st->objs) || names_init(&st->names)) {
		store_free(st);
		return SHOAL_ENOMEM;
	}
	return 0;
}

void store_free(struct store *st)
{
	alloc_destroy(st->alloc);
	objtab_free(&st->objs);
	names_free(&st->names);
	expiry_free(&st->expiry);
	u64map_free(&st->by_offset);
	free(st->dropped);
	while (st->departed) {
		struct store_departed *d = st->departed;
		st->departed = d->next;
		u64map_free(&d->creating);
		u64map_free(&d->holds);
		free(d);
	}
	memset(st, 0, sizeof(*st));
}

void store_client_init(struct store_client *sc, uint32_t id)
{
	memset(sc, 0, sizeof(*sc));
	sc->id = id;
}

static void note(struct store *st, enum store_note n, const struct object *o,
                 const char *name, size_t len, uint64_t version)
{
	if (st->notify)
		st->notify(st->notify_ctx, n, o, name, len, version);
}

/* Frees an object's memory and slot. It must be deleted and unheld. */
static void destroy(struct store *st, uint32_t slot)
{
	struct object *o = objtab_get(&st->objs, slot);

	SHOAL_ASSERT(o->state != OBJ_FREE && o->holders == 0);
	SHOAL_ASSERT(o->deleted && o->names == 0);
	SHOAL_ASSERT(st->deleted_held > 0);
	st->deleted_held--;
	if (o->state == OBJ_SEALED) {
		SHOAL_ASSERT(st->sealed > 0);
		st->sealed--;
	}
	SHOAL_ASSERT(alloc_block_size(st->alloc, o->offset) == o->block_size);
	runs_drop(&st->runs, &st->objs, slot);
	uint64_t span_off = 0, span_len = 0;
	alloc_free_span(st->alloc, o->offset, &span_off, &span_len);
	freelog_note(st->freelog, o->offset, o->block_size, span_off, span_len);
	u64map_del(&st->by_offset, o->offset);
	objtab_release_slot(&st->objs, slot);
	st->events |= STORE_EV_FREED;
}

/* Puts an object where its holders, names and deletion say it belongs:
 * freed, or in the LRU (evictable), or pinned. */
static void settle(struct store *st, uint32_t slot)
{
	struct object *o = objtab_get(&st->objs, slot);

	SHOAL_ASSERT(o->state != OBJ_FREE);
	SHOAL_ASSERT(!o->deleted || o->names == 0);
	if (o->holders == 0 && o->deleted) {
		destroy(st, slot);
		return;
	}
	if (o->holders == 0 && o->state == OBJ_SEALED && o->keep_names == 0)
		lru_push(&st->objs, slot);
	else
		lru_remove(&st->objs, slot);
	runs_want(&st->runs, &st->objs, slot, !o->in_lru);
}

/* Takes an object out of lookups; it is freed once nobody holds it. */
static void delete_object(struct store *st, uint32_t slot, enum store_note n)
{
	struct object *o = objtab_get(&st->objs, slot);

	if (o->deleted)
		return;
	if (o->state == OBJ_SEALED)
		note(st, n, o, NULL, 0, 0);
	objtab_unlink(&st->objs, slot);
	st->deleted_held++;
	settle(st, slot);
}

static int hold(struct store *st, struct store_client *sc, uint32_t slot)
{
	uint64_t h = objtab_handle(&st->objs, slot);
	struct object *o = objtab_get(&st->objs, slot);
	int rc;

	rc = u64map_add(&sc->holds, h, 0);
	if (rc <= 0)
		return rc; /* held already, or out of memory */
	SHOAL_ASSERT(o->state == OBJ_SEALED || o->holders == 0);
	o->holders++;
	settle(st, slot);
	SHOAL_ASSERT(!o->in_lru);
	return 0;
}

static void unhold(struct store *st, uint32_t slot)
{
	struct object *o = objtab_get(&st->objs, slot);

	SHOAL_ASSERT(o->state != OBJ_FREE && o->holders > 0);
	o->holders--;
	settle(st, slot);
}

/* Whether the block at offset is evictable (for the check: the runs index
 * answers the same question in O(log n) otherwise). */
static bool evictable_at(void *ctx, uint64_t offset, uint64_t size)
{
	struct store *st = ctx;
	uint64_t slot;

	(void)size;
	return u64map_get(&st->by_offset, offset, &slot) &&
	       objtab_get(&st->objs, (uint32_t)slot)->in_lru;
}

/* Points the name in ns at slot (its names list, counts). */
static void link_name(struct store *st, uint32_t ns, uint32_t slot)
{
	struct name_entry *e = names_get(&st->names, ns);
	struct object *o = objtab_get(&st->objs, slot);

	e->obj = slot;
	e->obj_prev = NAME_NIL;
	e->obj_next = o->names ? o->name_head : NAME_NIL;
	if (o->names)
		names_get(&st->names, o->name_head)->obj_prev = ns;
	o->name_head = ns;
	o->names++;
	if (!(e->flags & NAME_EVICTABLE))
		o->keep_names++;
}

/* Takes the name in ns off its object's list and counts (it still points
 * at it). */
static void unlink_name(struct store *st, uint32_t ns)
{
	struct name_entry *e = names_get(&st->names, ns);
	struct object *o = objtab_get(&st->objs, e->obj);

	if (e->obj_prev != NAME_NIL)
		names_get(&st->names, e->obj_prev)->obj_next = e->obj_next;
	else
		o->name_head = e->obj_next;
	if (e->obj_next != NAME_NIL)
		names_get(&st->names, e->obj_next)->obj_prev = e->obj_prev;
	e->obj_prev = e->obj_next = NAME_NIL;
	o->names--;
	if (!(e->flags & NAME_EVICTABLE))
		o->keep_names--;
}

/* Removes the name in ns from every index and the table, telling
 * subscribers why (n). Its object is left to the caller. */
static void remove_name(struct store *st, uint32_t ns, enum store_note n)
{
	struct name_entry *e = names_get(&st->names, ns);

	note(st, n, objtab_get(&st->objs, e->obj), e->name, e->len, e->version);
	expiry_remove(&st->expiry, &st->names, ns);
	unlink_name(st, ns);
	names_remove(&st->names, ns);
}

/* Removes a name; its object is deleted when that was its last name. */
static void drop_name(struct store *st, uint32_t ns, enum store_note n)
{
	uint32_t slot = names_get(&st->names, ns)->obj;

	remove_name(st, ns, n);
	if (objtab_get(&st->objs, slot)->names == 0)
		delete_object(st, slot, STORE_NOTE_DELETED);
	else
		settle(st, slot);
}

/* Evicts one object; returns its size as created (data + metadata), which
 * is what evict() reports, as Plasma did: the block rounding stays inside. */
static uint64_t evict_one(struct store *st, uint32_t slot)
{
	struct object *o = objtab_get(&st->objs, slot);
	uint64_t size = o->data_size + o->metadata_size;

	st->evictions++;
	st->evicted_bytes += size;
	/* Only evictable names are left on an object in the LRU. */
	while (o->names) {
		st->evicted_names++;
		remove_name(st, o->name_head, STORE_NOTE_NAME_EVICTED);
	}
	delete_object(st, slot, STORE_NOTE_EVICTED);
	return size;
}

/* Finds room for block bytes, evicting only if that is sure to succeed. */
static int make_room(struct store *st, uint64_t block, uint64_t *offset)
{
	int rc = arena_alloc_warm(st->arena, st->alloc, block, offset);

	if (rc != SHOAL_EFULL)
		return rc;
	/* Evicting everything evictable would leave no stretch this large:
	 * evict nothing. */
	if (st->objs.lru_count == 0 ||
	    block > runs_largest(&st->runs, &st->objs))
		return SHOAL_EFULL;
	while (rc == SHOAL_EFULL && st->objs.lru_head != OBJ_NIL) {
		evict_one(st, st->objs.lru_head);
		rc = alloc_alloc(st->alloc, block, offset);
	}
	return rc;
}

int store_create(struct store *st, struct store_client *sc, const uint8_t *id,
                 uint64_t data_size, uint32_t metadata_size, uint64_t *offset,
                 uint64_t *handle, bool *backed)
{
	uint64_t total, block, off;
	uint32_t slot;
	int rc;

	if (objtab_find(&st->objs, id) != OBJ_NIL)
		return SHOAL_EEXISTS;
	if (data_size > st->arena->requested ||
	    data_size + metadata_size > st->arena->requested)
		return SHOAL_EFULL;
	/* Every slot in use counts, deleted ones that readers hold too: each
	 * costs the daemon's memory until it is freed. */
	if (st->max_objects &&
	    (uint64_t)st->objs.live + st->deleted_held >= st->max_objects) {
		if (st->objs.lru_head == OBJ_NIL)
			return SHOAL_ELIMIT;
		evict_one(st, st->objs.lru_head);
	}
	total = data_size + metadata_size;
	block = layout_align(total ? total : 1);
	rc = make_room(st, block, &off);
	if (rc)
		return rc;
	rc = objtab_add(&st->objs, id, &slot);
	if (rc)
		goto fail_block;
	uint64_t h = objtab_handle(&st->objs, slot);
	if ((rc = u64map_put(&st->by_offset, off, slot)) != 0)
		goto fail_slot;
	if ((rc = u64map_put(&sc->creating, h, 0)) != 0)
		goto fail_offset;
	if ((rc = u64map_put(&sc->holds, h, 0)) != 0)
		goto fail_creating;
	struct object *o = objtab_get(&st->objs, slot);
	o->state = OBJ_CREATED;
	o->creator = sc->id;
	o->holders = 1;
	o->offset = off;
	o->data_size = data_size;
	o->metadata_size = metadata_size;
	o->block_size = alloc_block_size(st->alloc, off);
	o->create_time_ns = now_ns(CLOCK_REALTIME);
	o->name_head = NAME_NIL;
	runs_want(&st->runs, &st->objs, slot, true); /* held by its creator */
	st->creates++;
	arena_mark_touched(st->arena, off, total);
	*offset = off;
	*handle = h;
	*backed = arena_is_backed(st->arena, off, total);
	return 0;

fail_creating:
	u64map_del(&sc->creating, h);
fail_offset:
	u64map_del(&st->by_offset, off);
fail_slot:
	objtab_release_slot(&st->objs, slot);
fail_block:
	alloc_free(st->alloc, off);
	return rc;
}

/* Finds the caller's own unsealed object. */
static int own_unsealed(struct store *st, struct store_client *sc,
                        const uint8_t *id, uint32_t *slot)
{
	uint32_t s = objtab_find(&st->objs, id);

	if (s == OBJ_NIL)
		return SHOAL_ENOTFOUND;
	if (objtab_get(&st->objs, s)->state == OBJ_SEALED)
		return SHOAL_ESEALED;
	if (objtab_get(&st->objs, s)->creator != sc->id)
		return SHOAL_ENOTOWNER;
	*slot = s;
	return 0;
}

int store_seal(struct store *st, struct store_client *sc, const uint8_t *id)
{
	uint32_t slot;
	int rc = own_unsealed(st, sc, id, &slot);

	if (rc)
		return rc;
	struct object *o = objtab_get(&st->objs, slot);
	o->state = OBJ_SEALED;
	o->seal_time_ns = now_ns(CLOCK_REALTIME);
	st->sealed++;
	u64map_del(&sc->creating, objtab_handle(&st->objs, slot));
	/* The creator reserved the pages before writing (or was told they
	 * were reserved already). */
	arena_mark_backed(st->arena, o->offset,
	                  o->data_size + o->metadata_size);
	st->events |= STORE_EV_SEALED;
	note(st, STORE_NOTE_SEALED, o, NULL, 0, 0);
	settle(st, slot);
	return 0;
}

int store_abort(struct store *st, struct store_client *sc, const uint8_t *id)
{
	uint32_t slot;
	int rc = own_unsealed(st, sc, id, &slot);

	if (rc)
		return rc;
	uint64_t h = objtab_handle(&st->objs, slot);
	u64map_del(&sc->creating, h);
	u64map_del(&sc->holds, h);
	objtab_get(&st->objs, slot)->holders--;
	delete_object(st, slot, STORE_NOTE_DELETED);
	return 0;
}

int store_get(struct store *st, struct store_client *sc, const uint8_t *id,
              uint32_t *slot)
{
	uint32_t s = objtab_find(&st->objs, id);
	int rc;

	if (s == OBJ_NIL || objtab_get(&st->objs, s)->state != OBJ_SEALED)
		return SHOAL_ENOTFOUND;
	rc = hold(st, sc, s);
	if (rc)
		return rc;
	st->gets++;
	*slot = s;
	return 0;
}

void store_release(struct store *st, struct store_client *sc, uint64_t handle)
{
	uint32_t slot = objtab_from_handle(&st->objs, handle);

	/* The creator's hold of an unsealed object goes with seal or abort. */
	if (slot == OBJ_NIL || u64map_get(&sc->creating, handle, NULL))
		return;
	if (!u64map_del(&sc->holds, handle))
		return;
	unhold(st, slot);
}

int store_delete(struct store *st, const uint8_t *id)
{
	uint32_t slot = objtab_find(&st->objs, id);

	if (slot == OBJ_NIL)
		return SHOAL_ENOTFOUND;
	if (objtab_get(&st->objs, slot)->state != OBJ_SEALED)
		return SHOAL_ENOTSEALED;
	if (objtab_get(&st->objs, slot)->names > 0)
		return SHOAL_EEXISTS;
	delete_object(st, slot, STORE_NOTE_DELETED);
	return 0;
}

int store_contains(const struct store *st, const uint8_t *id)
{
	uint32_t slot = objtab_find(&st->objs, id);

	if (slot == OBJ_NIL)
		return SHOAL_STATE_ABSENT;
	return objtab_get(&st->objs, slot)->state == OBJ_SEALED
	               ? SHOAL_STATE_SEALED
	               : SHOAL_STATE_CREATED;
}

uint64_t store_evict(struct store *st, uint64_t nbytes)
{
	uint64_t freed = 0;

	while (freed < nbytes && st->objs.lru_head != OBJ_NIL)
		freed += evict_one(st, st->objs.lru_head);
	return freed;
}

/* Removes an expired name. */
static void expire_one(struct store *st, uint32_t ns)
{
	st->expired++;
	drop_name(st, ns, STORE_NOTE_NAME_EXPIRED);
}

uint32_t store_find_name(struct store *st, const char *name, size_t len)
{
	uint32_t ns = names_find(&st->names, name, len);

	if (ns == NAME_NIL)
		return NAME_NIL;
	if (!store_name_live(names_get(&st->names, ns), st->clock())) {
		expire_one(st, ns);
		return NAME_NIL;
	}
	return ns;
}

/* The expiry time of a ttl from now; 0 for none. */
static int expiry_time(struct store *st, uint64_t ttl_ms, uint64_t *at)
{
	if (ttl_ms > SHOAL_TTL_MAX_MS)
		return SHOAL_ETOOBIG;
	*at = ttl_ms ? st->clock() + ttl_ms * 1000000ull : 0;
	return 0;
}

int store_set_name(struct store *st, const char *name, size_t len,
                   const uint8_t *id, bool cas, uint64_t expected,
                   uint64_t *version)
{
	return store_set_name_ttl(st, name, len, id, cas, expected, 0, 0,
	                          version);
}

int store_set_name_ttl(struct store *st, const char *name, size_t len,
                       const uint8_t *id, bool cas, uint64_t expected,
                       uint64_t ttl_ms, uint32_t flags, uint64_t *version)
{
	uint32_t slot, ns;
	uint64_t at;
	int rc;

	if (flags & ~NAME_EVICTABLE)
		return SHOAL_EINVAL;
	rc = expiry_time(st, ttl_ms, &at);
	if (rc)
		return rc;
	/* The name first: if it has expired, removing it may delete the
	 * object it pointed at, which then is not there to be named. */
	ns = store_find_name(st, name, len);
	slot = objtab_find(&st->objs, id);
	if (slot == OBJ_NIL)
		return SHOAL_ENOTFOUND;
	if (objtab_get(&st->objs, slot)->state != OBJ_SEALED)
		return SHOAL_ENOTSEALED;
	if (cas &&
	    expected !=
	            (ns == NAME_NIL ? 0 : names_get(&st->names, ns)->version))
		return SHOAL_EVERSION;
	uint64_t v = st->last_version + 1;
	if (ns == NAME_NIL && st->max_names &&
	    (st->names.count >= st->max_names ||
	     st->names.bytes +
	                     (st->names.count + 1) * (uint64_t)NAME_COST_BYTES +
	                     len >
	             st->name_memory))
		return SHOAL_ELIMIT;
	if (ns == NAME_NIL) {
		rc = names_add(&st->names, name, len, slot, v, &ns);
		if (rc)
			return rc;
		rc = expiry_set(&st->expiry, &st->names, ns, at);
		if (rc) {
			names_remove(&st->names, ns);
			return rc;
		}
		names_get(&st->names, ns)->flags = flags;
		link_name(st, ns, slot);
	} else {
		/* Only the heap can fail: before anything changes. */
		rc = expiry_set(&st->expiry, &st->names, ns, at);
		if (rc)
			return rc;
		struct name_entry *e = names_get(&st->names, ns);
		uint32_t old = e->obj;
		/* The old object is settled only once the name points at the
		 * new one, so naming the same object again changes nothing. */
		unlink_name(st, ns);
		e->flags = flags;
		e->version = v;
		link_name(st, ns, slot);
		if (old != slot) {
			if (objtab_get(&st->objs, old)->names == 0)
				delete_object(st, old, STORE_NOTE_DELETED);
			else
				settle(st, old);
		}
	}
	st->last_version = v;
	settle(st, slot);
	st->events |= STORE_EV_NAMED;
	note(st, STORE_NOTE_NAME_SET, objtab_get(&st->objs, slot), name, len,
	     v);
	*version = v;
	return 0;
}

int store_get_name(struct store *st, struct store_client *sc, const char *name,
                   size_t len, uint32_t *slot, uint64_t *version)
{
	uint32_t ns = store_find_name(st, name, len);
	int rc;

	if (ns == NAME_NIL)
		return SHOAL_ENOTFOUND;
	struct name_entry *e = names_get(&st->names, ns);
	rc = hold(st, sc, e->obj);
	if (rc)
		return rc;
	st->gets++;
	*slot = e->obj;
	*version = e->version;
	return 0;
}

int store_delete_name(struct store *st, const char *name, size_t len, bool cas,
                      uint64_t expected)
{
	uint32_t ns = store_find_name(st, name, len);

	if (ns == NAME_NIL)
		return cas && expected != 0 ? SHOAL_EVERSION : SHOAL_ENOTFOUND;
	if (cas && names_get(&st->names, ns)->version != expected)
		return SHOAL_EVERSION;
	drop_name(st, ns, STORE_NOTE_NAME_DELETED);
	return 0;
}

/* Tells the hook that the expiry of the name in ns changed. */
static void note_ttl(struct store *st, uint32_t ns)
{
	const struct name_entry *e = names_get(&st->names, ns);

	note(st, STORE_NOTE_NAME_TTL, objtab_get(&st->objs, e->obj), e->name,
	     e->len, e->version);
}

int store_expire_name(struct store *st, const char *name, size_t len,
                      uint64_t ttl_ms)
{
	uint32_t ns = store_find_name(st, name, len);
	uint64_t at;
	int rc;

	if (ns == NAME_NIL)
		return SHOAL_ENOTFOUND;
	rc = expiry_time(st, ttl_ms, &at);
	if (rc)
		return rc;
	if (at == 0) {
		expire_one(st, ns);
		return 0;
	}
	rc = expiry_set(&st->expiry, &st->names, ns, at);
	if (rc == 0)
		note_ttl(st, ns);
	return rc;
}

int store_persist_name(struct store *st, const char *name, size_t len)
{
	uint32_t ns = store_find_name(st, name, len);

	if (ns == NAME_NIL)
		return SHOAL_ENOTFOUND;
	if (names_get(&st->names, ns)->expire_ns == 0)
		return 0;
	(void)expiry_set(&st->expiry, &st->names, ns, 0); /* cannot fail */
	note_ttl(st, ns);
	return 0;
}

static bool has_prefix(const struct name_entry *e, const char *prefix,
                       size_t len)
{
	return e->len >= len && memcmp(e->name, prefix, len) == 0;
}

/* The first name at or after where a listing of prefix after `after`
 * starts. */
static uint32_t list_start(const struct names *n, const char *prefix,
                           size_t plen, const char *after, size_t alen)
{
	size_t common = plen < alen ? plen : alen;
	int c = memcmp(after, prefix, common);

	if (alen == 0 || c < 0 || (c == 0 && alen < plen))
		return names_seek(n, prefix, plen, true); /* after < prefix */
	return names_seek(n, after, alen, false);
}

void store_list_names(struct store *st, const char *prefix, size_t plen,
                      const char *after, size_t alen, uint32_t max,
                      uint32_t *out, uint32_t *count, bool *more)
{
	uint64_t now = st->clock();
	uint32_t s = list_start(&st->names, prefix, plen, after, alen);
	uint32_t k = 0;

	while (s != NAME_NIL &&
	       has_prefix(names_get(&st->names, s), prefix, plen)) {
		uint32_t next = names_next(&st->names, s);
		if (!store_name_live(names_get(&st->names, s), now)) {
			expire_one(st, s);
		} else {
			if (k == max)
				break;
			out[k++] = s;
		}
		s = next;
	}
	*count = k;
	*more = s != NAME_NIL &&
	        has_prefix(names_get(&st->names, s), prefix, plen);
}

void store_delete_prefix(struct store *st, const char *prefix, size_t len,
                         uint64_t *count)
{
	uint64_t now = st->clock(), n = 0;
	uint32_t s = names_seek(&st->names, prefix, len, true);

	while (s != NAME_NIL &&
	       has_prefix(names_get(&st->names, s), prefix, len)) {
		/* The successor first: removal frees the name. */
		uint32_t next = names_next(&st->names, s);
		if (!store_name_live(names_get(&st->names, s), now)) {
			expire_one(st, s);
		} else {
			drop_name(st, s, STORE_NOTE_NAME_DELETED);
			n++;
		}
		s = next;
	}
	*count = n;
}

uint64_t store_expire_due(struct store *st, uint64_t now_ns, uint64_t max)
{
	uint64_t n = 0;
	uint32_t ns;

	while (n < max && (ns = expiry_first(&st->expiry)) != NAME_NIL &&
	       names_get(&st->names, ns)->expire_ns <= now_ns) {
		expire_one(st, ns);
		n++;
	}
	return n;
}

uint64_t store_next_expiry(const struct store *st)
{
	return expiry_next_ns(&st->expiry, &st->names);
}

uint64_t store_name_expiry_realtime(const struct store *st,
                                    const struct name_entry *e)
{
	uint64_t mono, real;

	if (!e || e->expire_ns == 0)
		return 0;
	mono = st->clock();
	real = now_ns(CLOCK_REALTIME);
	return e->expire_ns > mono ? real + (e->expire_ns - mono) : real;
}

int64_t store_name_ttl_ms(const struct store *st, const struct name_entry *e)
{
	uint64_t now = st->clock();

	if (e->expire_ns == 0)
		return -1;
	if (e->expire_ns <= now)
		return 0;
	return (int64_t)((e->expire_ns - now + 999999) / 1000000);
}

int store_restore_object(struct store *st, const uint8_t *id, uint64_t offset,
                         uint64_t data_size, uint32_t metadata_size,
                         uint64_t create_time_ns, uint32_t *slot)
{
	uint64_t total = data_size + metadata_size;
	uint32_t s;
	int rc;

	if (data_size > st->arena->capacity || total > st->arena->capacity)
		return SHOAL_EINVAL;
	if (objtab_find(&st->objs, id) != OBJ_NIL)
		return SHOAL_EEXISTS;
	rc = alloc_claim(st->alloc, offset, total ? total : 1);
	if (rc)
		return rc;
	rc = objtab_add(&st->objs, id, &s);
	if (rc)
		goto fail_block;
	rc = u64map_put(&st->by_offset, offset, s);
	if (rc) {
		objtab_release_slot(&st->objs, s);
		goto fail_block;
	}
	struct object *o = objtab_get(&st->objs, s);
	o->state = OBJ_SEALED;
	o->offset = offset;
	o->data_size = data_size;
	o->metadata_size = metadata_size;
	o->block_size = alloc_block_size(st->alloc, offset);
	o->create_time_ns = create_time_ns;
	o->seal_time_ns = create_time_ns; /* not recorded: taken as instant */
	o->name_head = NAME_NIL;
	st->sealed++;
	arena_mark_touched(st->arena, offset, total);
	settle(st, s);
	*slot = s;
	return 0;
fail_block:
	alloc_free(st->alloc, offset);
	return rc;
}

int store_restore_name(struct store *st, const char *name, size_t len,
                       uint32_t slot, uint64_t version, uint32_t flags,
                       uint64_t expire_ns)
{
	uint32_t ns;
	int rc;

	if (names_find(&st->names, name, len) != NAME_NIL)
		return SHOAL_EEXISTS;
	rc = names_add(&st->names, name, len, slot, version, &ns);
	if (rc)
		return rc;
	rc = expiry_set(&st->expiry, &st->names, ns, expire_ns);
	if (rc) {
		names_remove(&st->names, ns);
		return rc;
	}
	names_get(&st->names, ns)->flags = flags & NAME_EVICTABLE;
	link_name(st, ns, slot);
	if (version > st->last_version)
		st->last_version = version;
	settle(st, slot);
	return 0;
}

/* Remembers a dropped ID so that its waiters are answered. If memory runs
 * out the waiters simply wait for their deadline. */
static void record_dropped(struct store *st, const uint8_t *id)
{
	if (st->ndropped == st->dropped_cap) {
		size_t cap = st->dropped_cap ? st->dropped_cap * 2 : 16;
		void *n = os_realloc(st->dropped, cap * SHOAL_ID_SIZE);
		if (!n)
			return;
		st->dropped = n;
		st->dropped_cap = cap;
	}
	memcpy(st->dropped[st->ndropped++], id, SHOAL_ID_SIZE);
	st->events |= STORE_EV_DROPPED;
}

/* Drops a departed client's unsealed object (its waiters are told). */
static void drop_unsealed(struct store *st, uint64_t h)
{
	uint32_t slot = objtab_from_handle(&st->objs, h);

	if (slot == OBJ_NIL)
		return;
	record_dropped(st, objtab_get(&st->objs, slot)->id);
	delete_object(st, slot, STORE_NOTE_DELETED);
}

static void release_hold(struct store *st, uint64_t h)
{
	uint32_t slot = objtab_from_handle(&st->objs, h);

	if (slot != OBJ_NIL)
		unhold(st, slot);
}

void store_client_gone(struct store *st, struct store_client *sc)
{
	struct store_departed *d = NULL;
	uint64_t h;

	if (u64map_count(&sc->creating) + u64map_count(&sc->holds) >
	    STORE_DEPART_SLICE)
		d = os_calloc(1, sizeof(*d));
	if (!d) {
		/* Few objects (or no memory to defer them): all at once,
		 * unsealed objects first (the holds pass frees them). */
		for (size_t i = 0; u64map_next(&sc->creating, &i, &h, NULL);)
			drop_unsealed(st, h);
		u64map_free(&sc->creating);
		for (size_t i = 0; u64map_next(&sc->holds, &i, &h, NULL);)
			release_hold(st, h);
		u64map_free(&sc->holds);
		return;
	}
	d->creating = sc->creating;
	d->holds = sc->holds;
	memset(&sc->creating, 0, sizeof(sc->creating));
	memset(&sc->holds, 0, sizeof(sc->holds));
	if (st->departed_tail)
		st->departed_tail->next = d;
	else
		st->departed = d;
	st->departed_tail = d;
	store_release_departed(st, STORE_DEPART_SLICE);
}

bool store_release_departed(struct store *st, size_t budget)
{
	uint64_t h;

	while (budget && st->departed) {
		struct store_departed *d = st->departed;
		while (budget &&
		       u64map_next(&d->creating, &d->creating_pos, &h, NULL)) {
			drop_unsealed(st, h);
			budget--;
		}
		while (budget && u64map_next(&d->holds, &d->pos, &h, NULL)) {
			release_hold(st, h);
			budget--;
		}
		if (budget == 0)
			break;
		st->departed = d->next;
		if (!st->departed)
			st->departed_tail = NULL;
		u64map_free(&d->creating);
		u64map_free(&d->holds);
		free(d);
	}
	return st->departed != NULL;
}

void store_stats(const struct store *st, uint64_t clients, shoal_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->capacity_bytes = st->arena->requested;
	out->used_bytes = alloc_used(st->alloc);
	out->objects = st->objs.live;
	out->sealed_objects = st->sealed;
	out->pending_deletes = st->deleted_held;
	out->names = st->names.count;
	out->clients = clients;
	out->evictions = st->evictions;
	out->evicted_bytes = st->evicted_bytes;
	out->creates = st->creates;
	out->gets = st->gets;
	out->backed_bytes = arena_backed_bytes(st->arena);
	out->largest_free = alloc_largest_free(st->alloc);
	out->uptime_ms = (now_ns(CLOCK_MONOTONIC) - st->start_ns) / 1000000;
	out->expired = st->expired;
	out->evicted_names = st->evicted_names;
}

#define FAIL(...)                                 \
	do {                                      \
		snprintf(msg, size, __VA_ARGS__); \
		return -1;                        \
	} while (0)

static int check_object(const struct store *st, uint32_t s,
                        struct store_client *const *clients, size_t nclients,
                        const uint32_t *name_refs, const uint32_t *departed,
                        char *msg, size_t size)
{
	const struct object *o = objtab_get(&st->objs, s);
	uint64_t h = objtab_handle(&st->objs, s), at;
	uint32_t holders = departed[s];

	if (!u64map_get(&st->by_offset, o->offset, &at) || at != s)
		FAIL("object %u is not found by its offset", s);
	if (alloc_block_size(st->alloc, o->offset) != o->block_size)
		FAIL("object %u's block size disagrees with the allocator", s);
	if (o->block_size < o->data_size + o->metadata_size)
		FAIL("object %u is larger than its block", s);
	for (size_t c = 0; c < nclients; c++)
		if (u64map_get(&clients[c]->holds, h, NULL))
			holders++;
	if (holders != o->holders)
		FAIL("object %u has %u holders, counted %u", s, o->holders,
		     holders);
	if (name_refs[s] != o->names)
		FAIL("object %u has %u names, counted %u", s, o->names,
		     name_refs[s]);
	uint32_t listed = 0, keep = 0;
	for (uint32_t ns = o->names ? o->name_head : NAME_NIL;
	     ns != NAME_NIL && listed <= o->names;
	     ns = st->names.slots[ns].obj_next) {
		if (ns >= st->names.nslots)
			FAIL("object %u's name list is broken", s);
		const struct name_entry *e = &st->names.slots[ns];
		if (!e->name || e->obj != s)
			FAIL("object %u's name list is broken", s);
		listed++;
		keep += !(e->flags & NAME_EVICTABLE);
	}
	if (listed != o->names || keep != o->keep_names)
		FAIL("object %u lists %u names (%u kept), counted %u (%u)", s,
		     listed, keep, o->names, o->keep_names);
	if (o->names && (o->deleted || o->state != OBJ_SEALED))
		FAIL("named object %u is deleted or unsealed", s);
	bool evictable = o->state == OBJ_SEALED && !o->deleted &&
	                 o->keep_names == 0 && o->holders == 0;
	if (evictable != o->in_lru)
		FAIL("object %u is %sin the LRU", s, o->in_lru ? "" : "not ");
	if (o->pin_want == o->in_lru)
		FAIL("object %u is %swanted pinned", s,
		     o->pin_want ? "" : "not ");
	if (o->deleted && o->holders == 0)
		FAIL("object %u is deleted and unheld but not freed", s);
	return 0;
}

int store_check(struct store *st, struct store_client *const *clients,
                size_t nclients, char *msg, size_t size)
{
	uint64_t used = 0, deleted = 0, sealed = 0, inuse = 0;
	uint32_t *name_refs, *departed = NULL;
	int rc = -1;

	if (alloc_check(st->alloc, msg, size) ||
	    objtab_check(&st->objs, msg, size) ||
	    names_check(&st->names, msg, size) ||
	    expiry_check(&st->expiry, &st->names, msg, size) ||
	    runs_check(&st->runs, &st->objs, msg, size))
		return -1;
	/* The runs index against a walk of every block. */
	uint64_t largest = runs_largest(&st->runs, &st->objs);
	uint64_t down = largest & ~(uint64_t)(LAYOUT_ALIGN - 1);
	if ((down &&
	     !alloc_fits_if(st->alloc, down, evictable_at, (void *)st)) ||
	    alloc_fits_if(st->alloc, down + LAYOUT_ALIGN, evictable_at,
	                  (void *)st))
		FAIL("the largest stretch evicting could free is not %llu "
		     "bytes",
		     (unsigned long long)largest);
	name_refs = os_calloc(st->objs.nslots + 1, sizeof(*name_refs));
	if (!name_refs)
		FAIL("out of memory");
	for (uint32_t n = 0; n < st->names.nslots; n++) {
		const struct name_entry *e = &st->names.slots[n];
		if (!e->name)
			continue;
		if (e->obj >= st->objs.nslots) {
			snprintf(msg, size, "name %s points past the objects",
			         e->name);
			goto out;
		}
		name_refs[e->obj]++;
	}
	/* Holds of departed clients not released yet count as holders. */
	departed = os_calloc(st->objs.nslots + 1, sizeof(*departed));
	if (!departed) {
		snprintf(msg, size, "out of memory");
		goto out;
	}
	for (const struct store_departed *d = st->departed; d; d = d->next) {
		uint64_t h;
		for (size_t i = d->pos; u64map_next(&d->holds, &i, &h, NULL);) {
			uint32_t slot = objtab_from_handle(&st->objs, h);
			if (slot != OBJ_NIL)
				departed[slot]++;
		}
	}
	for (uint32_t s = 0; s < st->objs.nslots; s++) {
		const struct object *o = objtab_get(&st->objs, s);
		if (o->state == OBJ_FREE)
			continue;
		if (check_object(st, s, clients, nclients, name_refs, departed,
		                 msg, size))
			goto out;
		used += o->block_size;
		inuse++;
		deleted += o->deleted;
		sealed += o->state == OBJ_SEALED;
	}
	if (used != alloc_used(st->alloc)) {
		snprintf(msg, size,
		         "objects take %llu bytes, allocator says %llu",
		         (unsigned long long)used,
		         (unsigned long long)alloc_used(st->alloc));
		goto out;
	}
	if (deleted != st->deleted_held || sealed != st->sealed) {
		snprintf(msg, size, "deleted/sealed counters are off");
		goto out;
	}
	if (u64map_count(&st->by_offset) != inuse) {
		snprintf(msg, size, "offset map has stale entries");
		goto out;
	}
	rc = 0;
out:
	free(name_refs);
	free(departed);
	return rc;
}
