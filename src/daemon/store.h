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
 *   - evictable = sealed, not deleted, no holders, and no name other than
 *     evictable names; these sit in the LRU in the order they became
 *     evictable, and evicting one removes its (evictable) names too;
 *   - a create that does not fit evicts least recently released objects
 *     until it fits, but only if evicting every evictable object would make
 *     room: otherwise it fails and evicts nothing;
 *   - a name points at a sealed object; setting it is one step, so readers
 *     see the old or the new object; the object a name leaves is deleted
 *     once no other name points at it;
 *   - a name may expire: from its expire_ns on it is gone for every lookup
 *     (a lookup that finds it expired removes it at once), and the loop
 *     removes due names from the expiry heap before it sleeps; its object
 *     goes like that of a deleted name.
 */
#ifndef SHOAL_STORE_H
#define SHOAL_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alloc.h"
#include "arena.h"
#include "expiry.h"
#include "freelog.h"
#include "names.h"
#include "objects.h"
#include "runs.h"
#include "u64map.h"

struct store_client {
	uint32_t id;
	struct u64map holds;    /* handles this client holds */
	struct u64map creating; /* handles of its unsealed objects */
};

/* The holds of a departed client still being released, a slice per loop
 * turn (store_release_departed). */
struct store_departed {
	struct store_departed *next;
	/* Its unsealed objects, dropped first (their waiters are answered
	 * slice by slice); neither map changes while it is worked through. */
	struct u64map creating;
	size_t creating_pos; /* u64map_next cursor: dropped before it */
	struct u64map holds;
	size_t pos; /* u64map_next cursor: released before it */
};

/* Objects of a departed client dropped or released at once; more wait for
 * later slices of this size. */
#define STORE_DEPART_SLICE 1024

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
	STORE_NOTE_NAME_EXPIRED = 6, /* the name reached its expiry */
	STORE_NOTE_NAME_EVICTED = 7, /* evicted with its object */
	/* A name's expiry changed (EXPIRE, PERSIST) and nothing else: for
	 * the name journal; subscribers are not told. */
	STORE_NOTE_NAME_TTL = 8,
};

struct store {
	struct arena *arena;
	struct alloc *alloc;
	struct objtab objs;
	struct names names;
	struct expiry expiry;    /* names with an expiry, soonest first */
	struct u64map by_offset; /* block offset -> slot, for eviction */
	struct runs runs;        /* the largest space evicting could free */
	uint64_t last_version;
	unsigned events;
	uint64_t deleted_held; /* deleted objects waiting for holders */
	uint64_t sealed;
	uint64_t creates, gets, evictions, evicted_bytes;
	uint64_t expired, evicted_names; /* names gone by expiry, eviction */
	/* CLOCK_MONOTONIC ns; tests may replace it to control expiry. */
	uint64_t (*clock)(void);
	uint64_t start_ns;
	/* IDs of unsealed objects dropped because their creator left, since
	 * the caller last cleared ndropped (STORE_EV_DROPPED). */
	uint8_t (*dropped)[SHOAL_ID_SIZE];
	size_t ndropped, dropped_cap;
	/* Departed clients whose holds are still being released, oldest
	 * first. */
	struct store_departed *departed, *departed_tail;
	/* Optional hook for subscribers; called after the change. */
	void (*notify)(void *ctx, enum store_note note, const struct object *o,
	               const char *name, size_t name_len, uint64_t version);
	void *notify_ctx;
	/* Limits (limit.h); 0: none. Over one: SHOAL_ELIMIT. At the object
	 * limit a create first evicts the least recently released object. */
	uint64_t max_objects, max_names, name_memory;
	/* Where frees that leave whole pages free are published for
	 * clients (freelog.h); NULL: nowhere. */
	struct freelog *freelog;
};

/* Creates the store over an open arena. Returns 0 or SHOAL_ENOMEM. */
int store_init(struct store *st, struct arena *a);
void store_free(struct store *st);

void store_client_init(struct store_client *sc, uint32_t id);

/* The client is gone: its unsealed objects are dropped (and their IDs
 * listed in st->dropped) and everything it held is released: at once up to
 * STORE_DEPART_SLICE of them, the rest by store_release_departed() (a
 * client that held or was creating a million objects must not stall the
 * others while they go). Until then its unsealed objects are still there,
 * unsealed. sc is empty afterwards. */
void store_client_gone(struct store *st, struct store_client *sc);

/* Drops up to `budget` unsealed objects or holds of departed clients.
 * Returns whether some remain. */
bool store_release_departed(struct store *st, size_t budget);

/*
 * Creates an object for sc, which then holds it. *offset is where its data
 * starts (metadata follows the data); *backed says whether its pages are
 * known to be allocated already (see PROTO_CREATE_BACKED).
 * Returns 0; SHOAL_EEXISTS; SHOAL_EFULL (it cannot fit even after evicting
 * every evictable object; nothing was evicted); SHOAL_ELIMIT (max_objects
 * objects exist and none is evictable); SHOAL_ENOMEM.
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

/* Returns the enum shoal_state of a live object. */
int store_contains(const struct store *st, const uint8_t *id);

/* Evicts least recently released objects until nbytes are freed or none is
 * left. Returns the bytes freed. */
uint64_t store_evict(struct store *st, uint64_t nbytes);

/* Returns 0 and *version; SHOAL_ENOTFOUND; SHOAL_ENOTSEALED; SHOAL_EVERSION;
 * SHOAL_ENOMEM. The name must be valid (proto_check_name). The name gets no
 * expiry and no flags (store_set_name_ttl with 0, 0). */
int store_set_name(struct store *st, const char *name, size_t len,
                   const uint8_t *id, bool cas, uint64_t expected,
                   uint64_t *version);

/*
 * store_set_name() with an expiry ttl_ms from now (0: none) and flags
 * (NAME_EVICTABLE). Setting a name replaces its expiry and flags. Returns
 * what store_set_name() returns, and SHOAL_ETOOBIG for ttl_ms over
 * SHOAL_TTL_MAX_MS or SHOAL_EINVAL for unknown flags.
 */
int store_set_name_ttl(struct store *st, const char *name, size_t len,
                       const uint8_t *id, bool cas, uint64_t expected,
                       uint64_t ttl_ms, uint32_t flags, uint64_t *version);

/* The slot of a live name (one that has not expired), or NAME_NIL. A name
 * found expired is removed now. */
uint32_t store_find_name(struct store *st, const char *name, size_t len);

/* Whether a name entry is live at now_ns (lists skip the others). */
static inline bool store_name_live(const struct name_entry *e, uint64_t now_ns)
{
	return e->name && (e->expire_ns == 0 || e->expire_ns > now_ns);
}

/* Gives a name an expiry ttl_ms from now; 0 expires it now. Returns 0,
 * SHOAL_ENOTFOUND, SHOAL_ETOOBIG (over SHOAL_TTL_MAX_MS) or SHOAL_ENOMEM. */
int store_expire_name(struct store *st, const char *name, size_t len,
                      uint64_t ttl_ms);

/* Takes a name's expiry away. Returns 0 or SHOAL_ENOTFOUND. */
int store_persist_name(struct store *st, const char *name, size_t len);

/*
 * Finds, in name order, up to max live names that start with prefix (plen
 * bytes; 0: any) and come after `after` (alen bytes; 0: from the first);
 * their slots go to out, their number to *count, and *more says whether
 * more such names follow. Expired names met on the way are removed. O(log
 * n) per name visited.
 */
void store_list_names(struct store *st, const char *prefix, size_t plen,
                      const char *after, size_t alen, uint32_t max,
                      uint32_t *out, uint32_t *count, bool *more);

/* Removes every live name that starts with prefix (len 0: every name), in
 * one step, visiting only those names. *count receives how many went. */
void store_delete_prefix(struct store *st, const char *prefix, size_t len,
                         uint64_t *count);

/* Removes names whose expiry is at or before now_ns, at most max of them.
 * Returns how many were removed. */
uint64_t store_expire_due(struct store *st, uint64_t now_ns, uint64_t max);

/* When the next name expires (CLOCK_MONOTONIC ns), or UINT64_MAX. */
uint64_t store_next_expiry(const struct store *st);

/* Remaining time to live of a name entry in ms, rounded up (at least 1
 * while live), or -1 when it has no expiry. */
int64_t store_name_ttl_ms(const struct store *st, const struct name_entry *e);

/* A name entry's expiry as CLOCK_REALTIME ns (what other processes and
 * hosts can compare), or 0 when e is NULL or has no expiry. */
uint64_t store_name_expiry_realtime(const struct store *st,
                                    const struct name_entry *e);

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
 * object with its old version, flags (NAME_EVICTABLE) and expiry
 * (CLOCK_MONOTONIC ns, 0: none), and raises last_version to it, so that
 * versions keep increasing across restarts. Returns 0, SHOAL_EEXISTS,
 * SHOAL_ENOMEM. Neither notifies.
 */
int store_restore_object(struct store *st, const uint8_t *id, uint64_t offset,
                         uint64_t data_size, uint32_t metadata_size,
                         uint64_t create_time_ns, uint32_t *slot);
int store_restore_name(struct store *st, const char *name, size_t len,
                       uint32_t slot, uint64_t version, uint32_t flags,
                       uint64_t expire_ns);

/* Fills the counters of a STATS reply. */
void store_stats(const struct store *st, uint64_t clients, shoal_stats *out);

/*
 * Checks every invariant of the store, against the given live clients:
 * allocator, object table, names, block accounting, LRU membership, holder
 * counts. It applies the runs index's queued changes (after checking the
 * queue) to compare the largest stretch with the blocks. Returns 0, or -1
 * with the first broken one in msg.
 */
int store_check(struct store *st, struct store_client *const *clients,
                size_t nclients, char *msg, size_t size);

#endif /* SHOAL_STORE_H */
