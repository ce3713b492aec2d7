/*
 * refmap.c - the client's small hash maps of references: daemon handle ->
 * view count (plus the object's ID), and object ID -> handle of an unsealed
 * create.
 *
 * Open addressing with linear probing and backward-shift deletion, so a
 * removal leaves no tombstone and probe chains stay as short as the load
 * allows. The load factor stays at or below 3/4; client_refmap_reserve() is
 * the only place that allocates, so callers reserve before a request and
 * can then insert without a failure path. Keys are the client's own handles
 * and IDs, not an adversary's, so a fixed multiplicative mix suffices.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "os.h"

#define REFMAP_MIN_CAPACITY 16

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ull;
	x ^= x >> 33;
	return x;
}

static uint64_t hash_id(const shoal_id *id)
{
	uint64_t a, b;
	uint32_t c;

	memcpy(&a, id->bytes, 8);
	memcpy(&b, id->bytes + 8, 8);
	memcpy(&c, id->bytes + 16, 4);
	return mix64(a ^ mix64(b ^ mix64(c)));
}

static size_t slot_of(const struct client_refmap *m, uint64_t handle,
                      const shoal_id *id)
{
	return (size_t)(m->by_id ? hash_id(id) : mix64(handle)) & m->mask;
}

static bool same_key(const struct client_refmap *m, const struct client_ref *r,
                     uint64_t handle, const shoal_id *id)
{
	if (m->by_id)
		return memcmp(r->id.bytes, id->bytes, SHOAL_ID_SIZE) == 0;
	return r->handle == handle;
}

/* Places an entry in a map known to have a free slot and not to hold its key.
 */
static struct client_ref *place(struct client_refmap *m,
                                const struct client_ref *src)
{
	size_t i = slot_of(m, src->handle, &src->id);

	while (m->slots[i].used)
		i = (i + 1) & m->mask;
	m->slots[i] = *src;
	m->slots[i].used = 1;
	m->count++;
	return &m->slots[i];
}

int client_refmap_reserve(struct client_refmap *m, size_t extra)
{
	size_t need = m->count + extra;
	size_t cap = client_refmap_capacity(m);
	size_t new_cap = cap ? cap : REFMAP_MIN_CAPACITY;
	struct client_ref *old = m->slots;
	struct client_ref *fresh;

	if (need > SIZE_MAX / 8)
		return SHOAL_ENOMEM;
	while (need * 4 > new_cap * 3)
		new_cap *= 2;
	if (new_cap == cap)
		return 0;
	fresh = os_calloc(new_cap, sizeof(*fresh));
	if (!fresh)
		return SHOAL_ENOMEM;
	m->slots = fresh;
	m->mask = new_cap - 1;
	m->count = 0;
	for (size_t i = 0; i < cap; i++)
		if (old[i].used)
			place(m, &old[i]);
	free(old);
	return 0;
}

struct client_ref *client_refmap_find(const struct client_refmap *m,
                                      uint64_t handle, const shoal_id *id)
{
	if (!m->slots)
		return NULL;
	for (size_t i = slot_of(m, handle, id);; i = (i + 1) & m->mask) {
		struct client_ref *r = &m->slots[i];

		if (!r->used)
			return NULL;
		if (same_key(m, r, handle, id))
			return r;
	}
}

struct client_ref *client_refmap_insert(struct client_refmap *m,
                                        uint64_t handle, const shoal_id *id)
{
	struct client_ref src = {.handle = handle};

	if ((m->count + 1) * 4 > client_refmap_capacity(m) * 3)
		return NULL;
	if (id)
		src.id = *id;
	return place(m, &src);
}

void client_refmap_remove(struct client_refmap *m, struct client_ref *r)
{
	size_t hole = (size_t)(r - m->slots);
	size_t i = hole;

	/* Backward shift: move up every later entry of the probe run whose
	 * home slot does not lie strictly between the hole and itself. */
	for (;;) {
		size_t home;

		i = (i + 1) & m->mask;
		if (!m->slots[i].used)
			break;
		home = slot_of(m, m->slots[i].handle, &m->slots[i].id);
		if (((i - home) & m->mask) >= ((i - hole) & m->mask)) {
			m->slots[hole] = m->slots[i];
			hole = i;
		}
	}
	memset(&m->slots[hole], 0, sizeof(m->slots[hole]));
	m->count--;
}

struct client_ref *client_refmap_next(const struct client_refmap *m,
                                      size_t *pos)
{
	size_t cap = client_refmap_capacity(m);

	while (*pos < cap) {
		struct client_ref *r = &m->slots[(*pos)++];

		if (r->used)
			return r;
	}
	return NULL;
}

void client_refmap_free(struct client_refmap *m)
{
	free(m->slots);
	m->slots = NULL;
	m->mask = 0;
	m->count = 0;
}

void client_refmap_clear(struct client_refmap *m)
{
	if (m->slots)
		memset(m->slots, 0, (m->mask + 1) * sizeof(*m->slots));
	m->count = 0;
}
