/*
 * client_internal.h - what the files of the client library share: the
 * client structure, its reference maps and its request transport.
 *
 * A client is one Unix socket connection to the daemon plus one MAP_SHARED
 * mapping of the daemon's arena. Two locks guard it:
 *
 *   io_lock   serialises requests: the socket, the read buffer, request
 *             ids, the map of unsealed creates and the broken flag. A
 *             thread holds it across a whole request/reply exchange.
 *   ref_lock  guards the view counts (views) and the queue of pending
 *             releases. It is only ever held for a few memory operations,
 *             never across a system call that can block, so shoal_release()
 *             never waits for another thread's request.
 *
 * Lock order: io_lock before ref_lock.
 *
 * Reference invariant: the daemon keeps one "holds" mark per (client,
 * object); the client keeps, per daemon handle, the number of views it
 * handed out. A count goes from 0 to 1 only while io_lock is held (it is
 * done when a reply is processed), so a thread that holds io_lock and sees a
 * count of 0 knows it stays 0 until it sends the RELEASE. A handle whose
 * count drops to 0 is queued (pending) and sent in the next write on the
 * socket (at once for a large object); if a get re-acquires it before that, the
 * queued release is dropped instead of sent, because the daemon already
 * processed the get.
 */
#ifndef SHOAL_CLIENT_INTERNAL_H
#define SHOAL_CLIENT_INTERNAL_H

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "htab.h"
#include "layout.h"
#include "protocol.h"
#include "shoal.h"

_Static_assert(sizeof(shoal_id) == SHOAL_ID_SIZE, "shoal_id has no padding");

/* One entry of a reference map. */
struct client_ref {
	uint64_t handle;
	shoal_id id;
	uint64_t size;   /* data + metadata bytes of the object */
	uint64_t offset; /* unsealed map: where the object lies */
	uint32_t count;  /* views handed out (views map); windows (edges map) */
	uint8_t pending; /* handle sits in the pending-release queue */
	uint8_t window;  /* unsealed map: its pages are open for writing */
	/* Views map: how many of count are re-pins of old views (see
	 * client_repin). Retired views map: with has_repin, the handle of the
	 * re-pin hold in the connection of epoch repin_epoch. */
	uint32_t repins;
	uint8_t has_repin;
	uint64_t repin;
};

/*
 * A hash map of struct client_ref (the generic table, htab.h), keyed by
 * handle or (with by_id) by object ID. A zeroed struct with by_id set as
 * needed is an empty map.
 */
struct client_refmap {
	struct htab t;
	bool by_id;
};

/* Makes room so that `extra` more inserts cannot fail. Returns 0 or
 * SHOAL_ENOMEM (map unchanged). */
int client_refmap_reserve(struct client_refmap *m, size_t extra);

/* Entries the map can hold before it must grow (at least count + extra
 * after a reserve). */
static inline size_t client_refmap_room(const struct client_refmap *m)
{
	return htab_room(&m->t);
}

/* Entries in the map. */
static inline size_t client_refmap_count(const struct client_refmap *m)
{
	return m->t.count;
}

/* Finds the entry of handle (or of id, in a by_id map), or NULL. */
struct client_ref *client_refmap_find(const struct client_refmap *m,
                                      uint64_t handle, const shoal_id *id);

/* Inserts an absent key with count 0. Never allocates: returns NULL when the
 * map has no room (cannot happen after a reserve). */
struct client_ref *client_refmap_insert(struct client_refmap *m,
                                        uint64_t handle, const shoal_id *id);

/* Finds the entry of the key, or inserts it with count 0 (*added says
 * which), hashing the key once. NULL only when it must insert and the map
 * has no room. */
struct client_ref *client_refmap_upsert(struct client_refmap *m,
                                        uint64_t handle, const shoal_id *id,
                                        bool *added);

/* Removes an entry returned by find, insert or upsert (other pointers into the
 * map are invalid afterwards, as they are after an insert). */
void client_refmap_remove(struct client_refmap *m, struct client_ref *r);

/* Iteration: for (size_t i = 0; (r = client_refmap_next(m, &i));) ... */
struct client_ref *client_refmap_next(const struct client_refmap *m,
                                      size_t *pos);

void client_refmap_free(struct client_refmap *m);

/* Empties the map, keeping its room. */
void client_refmap_clear(struct client_refmap *m);

/*
 * What a client keeps of a connection that ended while the application
 * still held views of it or was writing an unsealed object: the mapping
 * (so the views stay valid) and their counts. It is unmapped when the last
 * such view is given back. Nothing here is ever sent to a daemon: the
 * daemon these handles belonged to is gone, and a handle of the old epoch
 * could name another object in the new one.
 */
struct client_retired {
	struct client_retired *next;
	/* The old socket, kept open: if its daemon still lives (the
	 * connection was dropped or lost sync), it keeps the views pinned. */
	int fd;
	uint8_t *base;
	uint64_t map_size;
	uint32_t epoch;
	uint64_t dev, ino;    /* the arena file */
	uint32_t repin_epoch; /* epoch of this record's re-pin holds, or 0 */
	/* The mapping's populated bitmap: a create being filled in another
	 * thread may still use it (struct client_map). */
	_Atomic uint64_t *populated;
	struct client_refmap views;    /* by handle: view counts */
	struct client_refmap unsealed; /* by id: creates never sealed */
};

/*
 * Superseded named objects (supersede.c): objects of at least
 * CLIENT_NAMED_LARGE bytes got by name; for CLIENT_NAMED_MAX names, the one
 * each last gave (by a hash of the name: a collision only costs re-faults).
 */
#define CLIENT_NAMED_LARGE (32ull << 20)
#define CLIENT_NAMED_MAX   64

struct client_named {
	uint64_t hash; /* of the name */
	uint64_t seq;  /* when last seen; the smallest makes room */
	uint64_t handle, offset, size;
};

/* A range to drop from the mapping when the last view of handle goes,
 * except the part the name's new object covers. */
struct client_superseded {
	uint64_t handle, offset, size;
	uint64_t keep_offset, keep_size;
	uint8_t ready; /* the last view went: drop at the next client_end */
};

/* A range of the mapping. */
struct client_range {
	uint64_t offset, size;
};

/* Where this client wrote large objects (CLIENT_NAMED_LARGE and up): the
 * freed-range log never drops those ranges from its mapping (freelog.c).
 * Overlapping ones are merged up to twice the new object's size (touching
 * ones are not); the least recently written makes room. */
#define CLIENT_KEPT 16

struct client_kept {
	uint64_t offset, size;
	uint64_t seq; /* when last written; 0: unused */
};

/* Name listings that may be in progress at once on one client. */
#define CLIENT_LISTINGS 8

struct shoal_client {
	int fd;
	unsigned generation; /* fork generation at connect */
	char *path;

	uint8_t *base; /* the arena mapping */
	uint64_t map_size;
	uint64_t capacity;
	uint64_t data_offset;
	uint64_t client_id;
	size_t page_size;
	/* Granule of mprotect on the mapping (the page size, or the huge
	 * page size of a hugetlbfs arena). */
	size_t window_page;
	/* The arena file, to check that the writable description obtained
	 * later (client_write_access) is of the same file, and to know it
	 * again after a reconnect (client_repin). */
	uint64_t arena_dev, arena_ino;

	/* Chunks (LAYOUT_CHUNK) of the arena this client has populated in its
	 * page tables, updated without locks: set by creates, cleared when
	 * client_zap drops a whole chunk. */
	_Atomic uint64_t *populated;
	size_t nchunks;

	pthread_mutex_t io_lock;
	pthread_mutex_t ref_lock;
	bool locks_ready;

	/* Restarts (io_lock): the connection's number, 1 at connect and one
	 * more per reconnect; the hook that may start a daemon. */
	uint32_t epoch;
	shoal_restart_fn restart_hook;
	void *restart_ctx;
	bool no_reconnect; /* SHOAL_NO_RECONNECT: fail instead */
	/* ref_lock: mappings of ended connections still in use. */
	struct client_retired *retired;

	/* io_lock */
	uint32_t next_request;
	int deferred_error; /* status of the last failed no-reply seal */
	uint8_t *rbuf;      /* buffered reader: bytes [rstart, rend) unread */
	size_t rcap, rstart, rend;
	struct client_refmap unsealed; /* by id: creates not yet sealed */
	/* The mapping was replaced by one of a writable description (still
	 * PROT_READ outside windows); see client_write_access(). */
	bool writable;
	/* By handle = page index: how many open windows have their first or
	 * last page there (pages shared by two unsealed objects). */
	struct client_refmap edges;
	uint64_t *rel_out;  /* scratch for RELEASE bodies */
	atomic_bool broken; /* connection lost or out of sync */
	bool waiting;       /* the request in flight may wait (interrupt.c) */
	bool interrupted;   /* ... and was cancelled: PROTO_CANCEL was sent */

	/* The wake-up eventfd of shoal_interrupt() (-1 if none), and whether
	 * an EINTR ends a wait too (shoal_set_interruptible). */
	int wake_fd;
	atomic_bool interruptible;
	/* Signals unblocked while sleeping (shoal_set_interrupt_signals). */
	bool has_intr_signals;
	sigset_t intr_signals;

	/* ref_lock */
	struct client_refmap views; /* by handle: view counts */
	/* by id: the handle of the latest view of each object, so that
	 * shoal_release_id() finds it without a scan (see client_hold). */
	struct client_refmap view_ids;
	uint64_t *pending;  /* handles whose count reached 0 */
	size_t pending_cap; /* == capacity of pending and rel_out */
	atomic_size_t npending;
	/* Bytes of the small objects whose releases wait in pending for the
	 * next request (see client_defer_release). */
	uint64_t deferred_bytes;

	/* io_lock: where name listings resume (names.c): for the last
	 * CLIENT_LISTINGS pages handed out, the cursor and the page's last
	 * name. Listings in several threads at once each find their own. */
	uint64_t list_seq;
	struct client_listing {
		uint64_t cursor; /* 0: unused */
		uint32_t after_len;
		char after[SHOAL_NAME_MAX];
	} listings[CLIENT_LISTINGS];

	/* ref_lock: superseded named objects (supersede.c). Emptied at
	 * reconnect (the handles and the mapping were the old connection's). */
	struct client_named named[CLIENT_NAMED_MAX];
	uint64_t named_seq;
	struct client_superseded superseded[CLIENT_NAMED_MAX];
	atomic_size_t named_ready; /* entries of superseded with ready set */

	/* Threads that populate a large new object (populate.c); 0: as many
	 * as the process has CPUs, up to a few. */
	unsigned populate_threads;

	/* io_lock: the published region of the current connection's daemon
	 * (freelog.c; NULL if it sent none), how far this client has acted
	 * on its log of freed ranges, and the ranges the log leaves mapped. */
	const struct layout_published *pub;
	uint64_t pub_size;
	const struct layout_freed *freelog;
	uint64_t freelog_mask;
	uint64_t freelog_pos;       /* entries before it were acted on */
	uint64_t freelog_seen;      /* entries before it were counted in ... */
	uint64_t freelog_bytes;     /* ... the bytes waiting since pos */
	uint64_t freelog_overflows; /* times it dropped the whole mapping */
	struct client_kept kept[CLIENT_KEPT];
	uint64_t kept_seq;
};

/*
 * Releases of small objects are not sent on their own: they ride in the
 * write of the client's next request, which saves the daemon a wake-up per
 * release (most of the cost of a small get on a busy CPU). The bound keeps
 * what an idle client may pin small: at most CLIENT_DEFER_COUNT releases
 * and CLIENT_DEFER_BYTES bytes wait; larger objects are released at once.
 */
#define CLIENT_DEFER_OBJECT (64u << 10)
#define CLIENT_DEFER_BYTES  (1u << 20)
#define CLIENT_DEFER_COUNT  64

/* Current fork generation of this process (incremented in every child). */
unsigned client_fork_generation(void);

/* Returns SHOAL_EFORKED if c was connected by an ancestor process. */
static inline int client_check_fork(const shoal_client *c)
{
	return c->generation == client_fork_generation() ? 0 : SHOAL_EFORKED;
}

/*
 * Starts a request: checks the fork generation, takes io_lock and checks
 * that the connection is usable; a connection lost earlier is opened again
 * first (client_reconnect). Returns 0 with io_lock held, or SHOAL_EINVAL
 * (c NULL), SHOAL_EFORKED or SHOAL_EUNAVAILABLE without it.
 */
int client_begin(shoal_client *c);

/*
 * Replaces a lost connection with a new one to the same socket path (the
 * restart hook may start a daemon when nobody listens). The old mapping
 * and the views and unsealed creates of the old connection move to a
 * retired record; pending releases are dropped (their daemon is gone).
 * io_lock must be held. Returns 0, SHOAL_EUNAVAILABLE, or what connecting
 * returns; on failure the client stays broken and may try again.
 */
int client_reconnect(shoal_client *c);

/*
 * Drops one view from the retired connection whose mapping holds ptr (by
 * handle), or, with id, from any retired connection. ref_lock must be held.
 * Returns 0; 1 when that was the last view of an object re-pinned in the
 * current connection, whose hold (handle *repin) the caller drops next; or
 * SHOAL_ENOTFOUND when no retired connection has it. *gone is
 * a retired record that is no longer used, for the caller to pass to
 * client_retired_destroy() once ref_lock is dropped (or NULL).
 */
int client_retired_drop_locked(shoal_client *c, const void *ptr,
                               uint64_t handle, const shoal_id *id,
                               struct client_retired **gone, uint64_t *repin);

/*
 * After a reconnect to a daemon that uses the same arena file as a retired
 * connection (`serve --persist`: the restarted daemon reopens the file),
 * gets, with timeout 0, the objects that the application still views from
 * that connection: the new daemon then keeps their memory as long as the
 * old views live (a view is otherwise not pinned in the new daemon, which
 * could free and reuse the block under it). Best effort: objects the new
 * daemon does not have are not protected. io_lock must be held.
 */
void client_repin(shoal_client *c);

/* One request and its reply on the current connection, never sent again on
 * a new one (see client_call()). io_lock must be held. */
int client_call_once(shoal_client *c, uint16_t type, const struct iovec *iov,
                     int iovcnt, size_t fixed_len, const uint8_t **reply,
                     size_t *len);

/* Unmaps and frees a retired record (NULL is a no-op). */
void client_retired_destroy(struct client_retired *r);

/* Forgets an unsealed create of a retired connection. Returns 0 or
 * SHOAL_ENOTFOUND. Takes ref_lock. */
int client_retired_forget_create(shoal_client *c, const shoal_id *id);

/* Unmaps and frees every retired connection. */
void client_retired_free(shoal_client *c);

/* Ends a request: sends the releases queued meanwhile and drops io_lock. */
void client_end(shoal_client *c);

/*
 * Sends one request of type `type` whose body is the iovcnt pieces of iov
 * (queued releases go first in the same write), then reads its reply. On 0,
 * *reply points at the reply body (len bytes, at least a proto_reply whose
 * status is 0), valid until the next read on c; the caller copies fields out
 * with memcpy, as the body need not be aligned. A reply with exactly
 * fixed_len bytes is required unless fixed_len is 0 (the caller checks
 * variable bodies itself). io_lock must be held.
 * Returns 0; the negative status of the reply; SHOAL_EPROTO for a malformed
 * reply; SHOAL_ETOOBIG for a request over PROTO_MAX_REQUEST;
 * SHOAL_EUNAVAILABLE when the daemon went away; SHOAL_ENOMEM; or -errno.
 */
int client_call(shoal_client *c, uint16_t type, const struct iovec *iov,
                int iovcnt, size_t fixed_len, const uint8_t **reply,
                size_t *len);

/*
 * Restarts: client_call() sends a request again on a new connection when
 * the old one was found gone before the request was written (no daemon
 * can have seen it). client_call_safe() also does so when the connection
 * went away after it was written: for requests that change nothing or
 * (get, get by name, contains, lists, stats). Not a compare-and-set of a
 * name: one that was applied would then be reported as a conflict. One new
 * connection per call at most.
 */
int client_call_safe(shoal_client *c, uint16_t type, const struct iovec *iov,
                     int iovcnt, size_t fixed_len, const uint8_t **reply,
                     size_t *len);

/*
 * Asks for one page of a listing (PROTO_LIST or PROTO_LIST_NAMES) from
 * cursor, at most max entries. On 0, *rep is the reply's fixed part (its
 * count checked against the limit) and *entries, *len the bytes after it,
 * valid until the next read on c. io_lock must be held. Returns 0, or what
 * client_call() returns (SHOAL_EPROTO for a malformed reply).
 */
int client_list_page(shoal_client *c, uint16_t type, uint64_t cursor,
                     size_t max, struct proto_list_reply *rep,
                     const uint8_t **entries, size_t *len);

/*
 * client_call() for a request that may wait timeout_ms: while it waits,
 * shoal_interrupt() (or an EINTR, when interruptible) sends PROTO_CANCEL,
 * after which the daemon answers at once and c->interrupted is set, for the
 * caller to turn an incomplete answer into SHOAL_EINTR. safe: sent again
 * after a reconnect like client_call_safe(). io_lock must be held. Returns
 * what client_call() returns.
 */
int client_call_wait(shoal_client *c, uint16_t type, const struct iovec *iov,
                     int iovcnt, size_t fixed_len, int64_t timeout_ms,
                     bool safe, const uint8_t **reply, size_t *len);

/* Creates c->wake_fd. Returns 0 or -errno. */
int client_wake_init(shoal_client *c);

/*
 * Sleeps until c's socket is readable (or hung up) or timeout_ms runs out
 * (-1: no limit), also watching the wake-up fd when wake is set. Sleeps in
 * ppoll(2) with c's interrupt signals unblocked (interrupt.c). Returns 0,
 * SHOAL_ETIMEDOUT, SHOAL_EINTR (the wake-up fd fired, and was drained, or
 * a signal interrupted an interruptible client), or -errno.
 */
int client_sleep(shoal_client *c, int64_t timeout_ms, bool wake);

/* Sleeps until the socket is readable, cancelling the wait on an interrupt
 * (see interrupt.c). io_lock must be held. Returns 0, or -errno /
 * SHOAL_EUNAVAILABLE when the cancel could not be sent. */
int client_wait_readable(shoal_client *c);

/* Writes len raw bytes (a whole message) to the socket. io_lock must be
 * held. Returns 0, SHOAL_EUNAVAILABLE or -errno (the client is then
 * broken). */
int client_send_raw(shoal_client *c, const void *buf, size_t len);

/* Sends a request that gets no reply (SEAL with PROTO_SEAL_NOREPLY).
 * io_lock must be held. Returns 0, SHOAL_EUNAVAILABLE or -errno. */
int client_send(shoal_client *c, uint16_t type, const struct iovec *iov,
                int iovcnt);

/*
 * Makes room for `extra` more handles in the view map and the release
 * queues. io_lock and ref_lock must be held. Returns 0 or SHOAL_ENOMEM.
 */
int client_reserve_views(shoal_client *c, size_t extra);

/* Adds one view of handle (object id, size bytes of data and metadata) to
 * the view map, which must have room (client_reserve_views). io_lock and
 * ref_lock must be held. */
void client_hold(shoal_client *c, uint64_t handle, const shoal_id *id,
                 uint64_t size);

/*
 * Checks an object description from a reply: status 0 and a range inside
 * the data area of the mapping. Returns 0, the object's negative status, or
 * SHOAL_EPROTO.
 */
int client_check_object(const shoal_client *c, const struct proto_object *o);

/* Fills a view from a checked object (does not count it). */
void client_fill_view(const shoal_client *c, const struct proto_object *o,
                      const uint8_t *id, shoal_view *v);

/* Allocates the read buffer (done at connect, so that a request is never
 * sent without room for its reply). Returns 0 or SHOAL_ENOMEM. */
int client_reader_init(shoal_client *c);

/*
 * Reads one whole message. *h receives its header, *body its body (valid
 * until the next read). io_lock must be held. Returns 0, SHOAL_EPROTO for a
 * header that does not frame the stream, SHOAL_EUNAVAILABLE, SHOAL_ENOMEM
 * or -errno; every failure leaves the client broken.
 */
int client_read_message(shoal_client *c, struct proto_header *h,
                        const uint8_t **body);

/* Bytes received and not yet read as messages. */
/* Copies the library's struct src (src_size bytes) to the caller's dst of
 * dst_size bytes (see SHOAL_ABI_VERSION): what fits, zeros beyond. */
static inline void client_copy_sized(void *dst, size_t dst_size,
                                     const void *src, size_t src_size)
{
	memcpy(dst, src, dst_size < src_size ? dst_size : src_size);
	if (dst_size > src_size)
		memset((char *)dst + src_size, 0, dst_size - src_size);
}

static inline size_t client_buffered(const shoal_client *c)
{
	return c->rend - c->rstart;
}

/* Whether [offset, offset + size) lies in the data area of the mapping. */
bool client_range_ok(const shoal_client *c, uint64_t offset, uint64_t size);

/*
 * Gives this client the right to open windows: once per connection, asks
 * the daemon (on a second, short connection) for the arena's writable
 * description, checks it is the same file, maps it over the read-only
 * mapping in place (MAP_FIXED, still PROT_READ) and closes it at once, so
 * that the client never keeps a writable fd. io_lock must be held.
 * Returns 0, SHOAL_EARENA (another arena answered), SHOAL_EFOREIGN,
 * SHOAL_EUNAVAILABLE, SHOAL_EPROTO, SHOAL_ENOMEM or -errno.
 */
int client_write_access(shoal_client *c);

/*
 * Makes the pages of [off, off + len) writable (rounded out to
 * window_page: the neighbours sharing the first and last page are writable
 * too, see docs/DESIGN.md). io_lock must be held, after
 * client_write_access(). Returns 0, SHOAL_ENOMEM (no room in the edge map,
 * or the kernel's limit on mappings) or -errno.
 */
int client_window_open(shoal_client *c, uint64_t off, uint64_t len);

/* Makes the pages of a window read-only again, except a first or last page
 * that another open window still needs. io_lock must be held. */
void client_window_close(shoal_client *c, uint64_t off, uint64_t len);

/*
 * What filling a new object needs of the mapping, copied while io_lock is
 * held: once the create's request ends, another thread may reconnect and
 * replace c's mapping. The old mapping and its populated bitmap then live
 * on in a retired record as long as the create stays unsealed (which the
 * filling call's caller ends), so these stay valid meanwhile.
 */
struct client_map {
	uint8_t *base;
	uint64_t size;
	size_t window_page;
	_Atomic uint64_t *populated;
};

/* Copies c's current mapping into *m. io_lock must be held. */
static inline void client_map_of(const shoal_client *c, struct client_map *m)
{
	m->base = c->base;
	m->size = c->map_size;
	m->window_page = c->window_page;
	m->populated = c->populated;
}

/* Most threads shoal_set_populate_threads() accepts. */
#define CLIENT_POPULATE_THREADS_LIMIT 16

/*
 * MADV_POPULATE_WRITE over [start, end) of mapping m (page-aligned), by
 * several threads when the range is large (populate.c). With segments
 * (checked by client_check_segments), also copies them into the object at
 * mapping offset obj_off while the pages are being reserved, and sets
 * *copied when it did (else the caller copies them after a success).
 * Returns 0 or the first -errno; -EINVAL means the kernel predates the
 * advice.
 */
int client_populate(shoal_client *c, const struct client_map *m, uint64_t start,
                    uint64_t end, uint64_t obj_off, const shoal_segment *segs,
                    size_t nsegs, bool *copied);

/* MADV_POPULATE_WRITE over [p, p + len). Returns 0 or -errno. */
int client_populate_span(uint8_t *p, size_t len);

/* Threads to reserve or fill len bytes with: 1 under 32 MiB, else as
 * shoal_set_populate_threads() says, at most one per 16 MiB. */
unsigned client_populate_threads_for(const shoal_client *c, uint64_t len);

/* Starts a helper thread with a small stack and every signal blocked.
 * Returns 0 or pthread_create's error. */
int client_thread_start(pthread_t *t, void *(*fn)(void *), void *arg);

/* Copies bytes [from, from + len) of segment s to dst (rebased for a width;
 * from and len are multiples of it). */
void client_copy_piece(uint8_t *dst, const shoal_segment *s, uint64_t from,
                       uint64_t len);

/* Objects from this size on are filled by client_fill(). */
#define CLIENT_FILL_MIN (32u << 20)

/* Whether client_fill() would take an object of len bytes and nsegs
 * segments (so that a writable fd is worth asking for). */
bool client_fill_wants(uint64_t len, size_t nsegs);

/* client_fill() did nothing: the caller reserves and copies as before. */
#define CLIENT_FILL_DECLINED 1

/*
 * Writes the segments (checked by client_check_segments) into the new
 * object at mapping offset off (len bytes) and makes sure every page of it
 * is allocated (backed: the daemon vouches for it already), on several
 * threads (fill.c). m is the mapping the object lies in (copied under
 * io_lock: c's own may be replaced meanwhile). With fd (a writable arena fd, or
 * -1), fresh memory is written with pwrite and its gaps reserved with
 * fallocate. Returns 0, SHOAL_EFULL (the machine cannot back the object: the
 * caller aborts it), or CLIENT_FILL_DECLINED (overlapping segments, a rebased
 * segment that does not start on its integers, no memory: nothing was done).
 */
int client_fill(shoal_client *c, const struct client_map *m, uint64_t off,
                uint64_t len, bool backed, int fd, const shoal_segment *segs,
                size_t nsegs);

/*
 * Asks the daemon, on a second short connection, for the arena's writable
 * description and checks it is the file this client maps. On 0, *fd is it,
 * for the caller to close. io_lock must be held. Returns 0, SHOAL_EARENA,
 * SHOAL_EFOREIGN, SHOAL_EUNAVAILABLE, SHOAL_EPROTO, SHOAL_ENOMEM or -errno.
 */
int client_writer_fd(shoal_client *c, int *fd);

/* Copies the segments into the object at mapping offset obj_off. */
void client_copy_segments(const struct client_map *m, uint64_t obj_off,
                          const shoal_segment *segs, size_t n);

/* 0 if every segment lies in an object of size bytes and has a width of 0,
 * 4 or 8 dividing its size; else SHOAL_EINVAL. */
int client_check_segments(uint64_t size, const shoal_segment *segs, size_t n);

/*
 * Drops [off, off + len) of the mapping from this process's page tables,
 * except the keep ranges (nkeep of them, sorted by offset), rounded inwards
 * to the mapping's granule; clears the populated bits of the whole chunks
 * dropped. The data stays in the arena (see freelog.c). io_lock must be
 * held (the mapping must not change).
 */
void client_zap(shoal_client *c, uint64_t off, uint64_t len,
                const struct client_range *keep, size_t nkeep);

/* client_zap() of [off, off + len) except the places where this client
 * wrote large objects (freelog.c) and also (if not NULL). */
void client_zap_unkept(shoal_client *c, uint64_t off, uint64_t len,
                       const struct client_range *also);

/* Maps the published region of fd (from the HELLO reply) after the arena
 * and starts following its log at its current head. A region that does
 * not check out is ignored: the client then follows no log. */
void client_freelog_map(shoal_client *c, int fd);

/* Unmaps the published region and forgets the kept ranges. */
void client_freelog_unmap(shoal_client *c);

/* Ranges of the log are dropped in batches, once this many bytes or
 * entries wait, so that small objects coming and going do not cost every
 * client a system call per free (freelog.c). */
#define CLIENT_FREELOG_BYTES   (1u << 20)
#define CLIENT_FREELOG_ENTRIES 64

/* More entries than this waiting (a client idle while the store freed
 * much): one pass over the whole mapping (as a client a ring behind does)
 * instead of up to one madvise per entry. */
#define CLIENT_FREELOG_MANY 4096

/* Counts the ranges freed since this client last looked, and drops the
 * waiting ones once they make a batch (freelog.c). io_lock must be held. */
void client_freelog_apply(shoal_client *c);

/* Called at every call's start, io_lock held: one load when nothing was
 * freed. */
static inline void client_freelog_check(shoal_client *c)
{
	if (c->pub &&
	    atomic_load_explicit(&c->pub->freelog_head, memory_order_acquire) !=
	            c->freelog_seen)
		client_freelog_apply(c);
}

/* This client created an object at [offset, offset + size): a large one
 * joins the ranges the log leaves mapped (merged with those it overlaps,
 * up to twice its size). io_lock must be held. */
void client_freelog_created(shoal_client *c, uint64_t offset, uint64_t size);

/*
 * A get of name returned the object handle at [offset, offset + size) of
 * the mapping (after client_hold). If the name last gave this client
 * another large object, its pages leave this process's page tables: now
 * when no view of it is held, else once the last goes. io_lock must be
 * held (the mapping must not change); takes ref_lock.
 */
void client_named_seen(shoal_client *c, const char *name, size_t name_len,
                       uint64_t handle, uint64_t offset, uint64_t size);

/* The last view of handle was given back: if a get by name superseded it,
 * its range is dropped at the next client_named_flush(). ref_lock must be
 * held; the caller's release of handle is queued in pending (so that
 * client_end() runs after this). */
void client_named_last_view(shoal_client *c, uint64_t handle);

/* Drops the ranges client_named_last_view() made ready. io_lock must be
 * held; takes ref_lock. */
void client_named_flush(shoal_client *c);

/* Forgets every name and deferred drop. ref_lock must be held. */
void client_named_forget(shoal_client *c);

#endif /* SHOAL_CLIENT_INTERNAL_H */
