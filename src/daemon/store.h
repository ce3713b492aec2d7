/*
 * store.h - what the store means: the life cycle of objects and names,
 * holding, deferred deletion and eviction, independent of any socket.
 *
 * The connection layer turns requests into these calls; the unit tests call
 * them directly. A struct store_client is the store's view of one
 * connection: the objects it holds and the unsealed objects it created.
 *
 * Rules (the product contract):
 *   - an object is freed only when it is deleted (or evicted) and no client
 *     holds it, so memory never changes under a reader;
 *   - evictable = sealed, not deleted, no names, no holders; these sit in
 *     the LRU in the order they became evictable;
 *   - a create that does not fit evicts least recently released objects
 *     until it fits, but only if evicting every evictable object would make
 *     room: otherwise it fails and evicts nothing;
 *   - a name points at a sealed object; setting it is one step, so readers
 *     see the old or the new object; the object a name leaves is deleted
 *     once no other name points at it.
 */
#ifndef SHOAL_STORE_H
#define SHOAL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "arena.h"
#include "names.h"
#include "objects.h"
#include "u64map.h"

struct store_client {
	uint32_t id;
	struct u64map holds;    /* handles this client holds */
	struct u64map creating; /* handles of its unsealed objects */
};

/* Bits of store.events: what happened since the caller last cleared it. */
#define STORE_EV_SEALED 1u /* an object was sealed: waiting gets may go */
#define STORE_EV_FREED  2u /* memory was freed: waiting creates may go */
#define STORE_EV_NAMED  4u /* a name was set: waiting name gets may go */
#define STORE_EV_DROPPED                                \
	8u /* a departed client's unsealed objects were \
	    * dropped: their waiters are answered now */

/* What the notification hook is told. */
enum store_note {
	STORE_NOTE_SEALED = 1,
	STORE_NOTE_DELETED = 2, /* deleted (or evicted) and gone for lookups */
	STORE_NOTE_EVICTED = 3,
	STORE_NOTE_NAME_SET = 4,
	STORE_NOTE_NAME_DELETED = 5,
};

struct store {
	struct arena *arena;
	struct alloc *alloc;
	struct objtab objs;
	struct names names;
	struct u64map by_offset; /* block offset -> slot, for eviction */
	uint64_t last_version;
	unsigned events;
	uint64_t deleted_held; /* deleted objects waiting for holders */
	uint64_t sealed;
	uint64_t creates, gets, evictions, evicted_bytes;
	uint64_t start_ns;
	/* IDs of unsealed objects dropped because their creator left, since
	 * the caller last cleared ndropped (STORE_EV_DROPPED). */
	uint8_t (*dropped)[SHOAL_ID_SIZE];
	size_t ndropped, dropped_cap;
	/* Optional hook for subscribers; called after the change. */
	void (*notify)(void *ctx, enum store_note note, const struct object *o,
	               const char *name, size_t name_len, uint64_t version);
	void *notify_ctx;
};

/* Creates the store over an open arena. Returns 0 or SHOAL_ENOMEM. */
int store_init(struct store *st, struct arena *a);
void store_free(struct store *st);

void store_client_init(struct store_client *sc, uint32_t id);

/* The client is gone: its unsealed objects are dropped (and their IDs
 * listed in st->dropped) and everything it held is released. sc is empty
 * afterwards. */
void store_client_gone(struct store *st, struct store_client *sc);

/*
 * Creates an object for sc, which then holds it. *offset is where its data
 * starts (metadata follows the data); *backed says whether its pages are
 * known to be allocated already (see PROTO_CREATE_BACKED).
 * Returns 0; SHOAL_EEXISTS; SHOAL_EFULL (it cannot fit even after evicting
 * every evictable object; nothing was evicted); SHOAL_ENOMEM.
 */
int store_create(struct store *st, struct store_client *sc, const uint8_t *id,
                 uint64_t data_size, uint32_t metadata_size, uint64_t *offset,
                 uint64_t *handle, bool *backed);

/* Returns 0, SHOAL_ENOTFOUND, SHOAL_ESEALED or SHOAL_ENOTOWNER. */
int store_seal(struct store *st, struct store_client *sc, const uint8_t *id);
int store_abort(struct store *st, struct store_client *sc, const uint8_t *id);

/* Gets a sealed object and makes sc hold it. Returns 0 and *slot, or
 * SHOAL_ENOTFOUND (absent or not sealed yet), or SHOAL_ENOMEM. */
int store_get(struct store *st, struct store_client *sc, const uint8_t *id,
              uint32_t *slot);

/* Drops sc's hold of the object with this handle; unknown handles and
 * objects sc does not hold are ignored. */
void store_release(struct store *st, struct store_client *sc, uint64_t handle);

/* Returns 0, SHOAL_ENOTFOUND, SHOAL_ENOTSEALED or SHOAL_EEXISTS (named). */
int store_delete(struct store *st, const uint8_t *id);

/* Whether id is among the dropped IDs. */
bool store_was_dropped(const struct store *st, const uint8_t *id);

/* Returns the enum shoal_state of a live object. */
int store_contains(const struct store *st, const uint8_t *id);

/* Evicts least recently released objects until nbytes are freed or none is
 * left. Returns the bytes freed. */
uint64_t store_evict(struct store *st, uint64_t nbytes);

/* Returns 0 and *version; SHOAL_ENOTFOUND; SHOAL_ENOTSEALED; SHOAL_EVERSION;
 * SHOAL_ENOMEM. The name must be valid (proto_check_name). */
int store_set_name(struct store *st, const char *name, size_t len,
                   const uint8_t *id, bool cas, uint64_t expected,
                   uint64_t *version);

/* Returns 0 with *slot held by sc and *version; SHOAL_ENOTFOUND;
 * SHOAL_ENOMEM. */
int store_get_name(struct store *st, struct store_client *sc, const char *name,
                   size_t len, uint32_t *slot, uint64_t *version);

/* Returns 0, SHOAL_ENOTFOUND or SHOAL_EVERSION. */
int store_delete_name(struct store *st, const char *name, size_t len, bool cas,
                      uint64_t expected);

/*
 * Restart recovery (persist.c). store_restore_object() puts back a sealed
 * object that survived in a persistent arena, at its old offset, unheld
 * and unnamed (give it a name next, or it is evictable). Returns 0 and
 * *slot; SHOAL_EEXISTS (the ID is taken); SHOAL_EINVAL (the extent is not
 * free or not inside the arena); SHOAL_ETOOBIG; SHOAL_ENOMEM.
 * store_restore_name() points a name that does not exist yet at a restored
 * object with its old version, and raises last_version to it, so that
 * versions keep increasing across restarts. Returns 0, SHOAL_EEXISTS,
 * SHOAL_ENOMEM. Neither notifies.
 */
int store_restore_object(struct store *st, const uint8_t *id, uint64_t offset,
                         uint64_t data_size, uint32_t metadata_size,
                         uint64_t create_time_ns, uint32_t *slot);
int store_restore_name(struct store *st, const char *name, size_t len,
                       uint32_t slot, uint64_t version);

/* Fills the counters of a STATS reply. */
void store_stats(const struct store *st, uint64_t clients, shoal_stats *out);

/*
 * Checks every invariant of the store, against the given live clients:
 * allocator, object table, names, block accounting, LRU membership, holder
 * counts. Returns 0, or -1 with the first broken one in msg.
 */
int store_check(const struct store *st, struct store_client *const *clients,
                size_t nclients, char *msg, size_t size);

#endif /* SHOAL_STORE_H */
