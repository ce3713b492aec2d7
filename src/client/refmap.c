/*
 * refmap.c - the client's hash maps of references: daemon handle -> view
 * count (plus the object's ID), object ID -> handle, and page -> windows,
 * on the generic hash table (htab.h).
 *
 * client_refmap_reserve() is the only place that allocates, so callers
 * reserve before a request and can then insert without a failure path.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"

/* A key: a handle, or an ID in a by_id map. */
struct ref_key {
	uint64_t handle;
	const shoal_id *id;
};

static bool handle_eq(const void *entry, const void *key)
{
	const struct client_ref *r = entry;

	return r->handle == ((const struct ref_key *)key)->handle;
}

static bool id_eq(const void *entry, const void *key)
{
	const struct client_ref *r = entry;

	return memcmp(r->id.bytes, ((const struct ref_key *)key)->id->bytes,
	              SHOAL_ID_SIZE) == 0;
}

static uint64_t key_hash(const struct client_refmap *m, uint64_t handle,
                         const shoal_id *id)
{
	return m->by_id ? htab_hash_bytes(id->bytes, SHOAL_ID_SIZE)
	                : htab_hash_u64(handle);
}

int client_refmap_reserve(struct client_refmap *m, size_t extra)
{
	if (m->t.esize == 0)
		htab_init(&m->t, sizeof(struct client_ref));
	return htab_reserve(&m->t, extra);
}

struct client_ref *client_refmap_find(const struct client_refmap *m,
                                      uint64_t handle, const shoal_id *id)
{
	struct ref_key k = {handle, id};

	if (m->t.count == 0)
		return NULL;
	/* Two calls, so that each inlines its comparison. */
	if (m->by_id)
		return htab_find(&m->t, key_hash(m, handle, id), id_eq, &k);
	return htab_find(&m->t, key_hash(m, handle, id), handle_eq, &k);
}

/* Inserts an absent key under its hash h; NULL without room. */
static struct client_ref *insert(struct client_refmap *m, uint64_t h,
                                 uint64_t handle, const shoal_id *id)
{
	struct client_ref src = {.handle = handle};
	void *at;

	if (m->t.count + 1 > htab_room(&m->t))
		return NULL; /* not reserved: inserting would allocate */
	if (id)
		src.id = *id;
	if (htab_insert(&m->t, h, &src, &at))
		return NULL;
	return at;
}

struct client_ref *client_refmap_insert(struct client_refmap *m,
                                        uint64_t handle, const shoal_id *id)
{
	return insert(m, key_hash(m, handle, id), handle, id);
}

struct client_ref *client_refmap_upsert(struct client_refmap *m,
                                        uint64_t handle, const shoal_id *id,
                                        bool *added)
{
	struct ref_key k = {handle, id};
	uint64_t h = key_hash(m, handle, id);
	struct client_ref *r = m->by_id ? htab_find(&m->t, h, id_eq, &k)
	                                : htab_find(&m->t, h, handle_eq, &k);

	*added = r == NULL;
	return r ? r : insert(m, h, handle, id);
}

void client_refmap_remove(struct client_refmap *m, struct client_ref *r)
{
	htab_remove(&m->t, r);
}

struct client_ref *client_refmap_next(const struct client_refmap *m,
                                      size_t *pos)
{
	return htab_next(&m->t, pos);
}

void client_refmap_free(struct client_refmap *m)
{
	htab_free(&m->t);
}

void client_refmap_clear(struct client_refmap *m)
{
	htab_clear(&m->t);
}
