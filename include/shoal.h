/*
 * shoal.h - the public C API of shoal, a shared-memory object store for one
 * host.
 *
 * A daemon (`shoal serve`) owns one shared-memory arena. A client connects
 * over a Unix socket, receives the arena's file descriptor once and maps it;
 * from then on every object is an (offset, size) inside that mapping, so a
 * get hands out a pointer into shared memory with no copy.
 *
 * Life cycle of an object: shoal_create() reserves space and returns where to
 * write; the creator writes the data (and metadata); shoal_seal() makes it
 * immutable and visible to every client; shoal_abort() drops it instead.
 * shoal_get() returns read-only views of sealed objects and pins them: the
 * daemon never frees or reuses the memory of an object while any client
 * holds it. Each view is given back with shoal_release().
 *
 * Names are the store's own namespace: a UTF-8 name points at a sealed
 * object and carries a version that changes on every set, for
 * compare-and-set. Named objects are never evicted, unless every name of
 * the object was set with SHOAL_NAME_EVICTABLE; the object a name stops
 * pointing at is deleted (once nobody holds it). A name may carry a time to
 * live, after which it goes away as if deleted. Names sharing a prefix form
 * a namespace that can be listed and deleted in one request.
 *
 * Errors: every function that can fail returns an int, 0 on success or a
 * negative code: -errno for system errors, or one of the SHOAL_E* codes
 * below. shoal_strerror() describes any of them. The library never aborts or
 * exits the process.
 *
 * Threads: a shoal_client may be used from several threads; requests are
 * serialised on its connection, so a blocking get in one thread delays the
 * requests of the others (shoal_release() never waits for it). Open a second
 * client for long waits.
 *
 * Fork: a client belongs to the process that connected it. In a forked child
 * every call on an inherited client returns SHOAL_EFORKED without touching
 * the parent's connection; the child calls shoal_disconnect() on it (which
 * then only frees local memory) and connects anew.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Marks the library's exported functions (the build hides the rest). */
#define SHOAL_API __attribute__((visibility("default")))

#define SHOAL_VERSION_MAJOR  0
#define SHOAL_VERSION_MINOR  2
#define SHOAL_VERSION_PATCH  0
#define SHOAL_VERSION_STRING "0.2.0"

/*
 * The ABI version: the shared library's soname is libshoal.so.<this>. It is
 * raised on every change that breaks programs built against an older
 * header (a changed signature, or the layout of a struct that the caller
 * allocates in arrays: shoal_view, shoal_object_info, shoal_name_info,
 * shoal_segment).
 *
 * Structs that only grow, and that the caller passes one at a time
 * (shoal_stats, shoal_arena_info, shoal_event), do not freeze the ABI: their
 * calls are macros that pass sizeof the caller's struct to the library,
 * which fills that many bytes (the fields it knows, zero beyond them). A
 * program built against an older header thus keeps working with a newer
 * library that appended fields, and the other way round.
 */
#define SHOAL_ABI_VERSION 1

/* Size of an object ID in bytes (Plasma's size). */
#define SHOAL_ID_SIZE 20

/* Longest name, in bytes of UTF-8. */
#define SHOAL_NAME_MAX 1024

/* Largest metadata part of one object, in bytes: metadata lives in the arena
 * like data, so any size the store can hold fits, up to what its 32-bit size
 * field carries. */
#define SHOAL_META_MAX UINT32_MAX

/* Largest number of IDs in one get, release or delete request. */
#define SHOAL_BATCH_MAX 65536

/* Longest time to live of a name, in ms (ten years). */
#define SHOAL_TTL_MAX_MS 315360000000ull

/* Timeouts in milliseconds: wait forever, or do not wait at all. */
#define SHOAL_WAIT_FOREVER (-1)
#define SHOAL_NO_WAIT      0

/*
 * Error codes. System errors are returned as -errno; these are shoal's own
 * and never collide with errno values.
 */
enum shoal_error {
	SHOAL_OK = 0,
	SHOAL_ENOTFOUND = -1000, /* no such object or name */
	SHOAL_EEXISTS = -1001,   /* an object with this ID already exists */
	SHOAL_EFULL = -1002,     /* the store cannot hold the object */
	SHOAL_EUNAVAILABLE =
	        -1003,        /* no daemon serves the socket, or it went away */
	SHOAL_EPROTO = -1004, /* a malformed message or a protocol mismatch */
	SHOAL_ETIMEDOUT = -1005,  /* the wait ran out */
	SHOAL_ENOTSEALED = -1006, /* the object is not sealed yet */
	SHOAL_ESEALED = -1007,    /* the object is already sealed */
	SHOAL_ENOTOWNER =
	        -1008,          /* only the creating client may seal or abort */
	SHOAL_EVERSION = -1009, /* compare-and-set: the version did not match */
	SHOAL_EFORKED =
	        -1010, /* the client was connected by the parent process */
	SHOAL_ETOOBIG = -1011, /* a size, count or name is over its limit */
	SHOAL_EARENA =
	        -1012, /* the arena header is not one this library reads */
	SHOAL_EINVAL = -1013,  /* an invalid argument */
	SHOAL_ENOMEM = -1014,  /* out of private memory */
	SHOAL_EBUSY = -1015,   /* the daemon is overloaded; try again */
	SHOAL_ECLOSED = -1016, /* the client has been shut down */
	SHOAL_ELIMIT = -1020,  /* a limit of the daemon was reached */
	SHOAL_EFOREIGN =
	        -1023, /* the daemon on the socket runs as another user */
	SHOAL_EUNSAFE = -1024, /* the socket's directory is not private */
	SHOAL_EINTR = -1029,   /* a wait was interrupted (shoal_interrupt) */
};

/* Returns a static, human-readable description of any code above or of a
 * negated errno. Never NULL. */
SHOAL_API const char *shoal_strerror(int code);

/* The version of the library in use at run time ("0.2.0"; static, never
 * NULL). SHOAL_VERSION_STRING is the version of the header compiled
 * against; the shared library's soname changes on every ABI break
 * (SHOAL_ABI_VERSION). */
SHOAL_API const char *shoal_version(void);

/* An object ID: 20 opaque bytes. */
typedef struct shoal_id {
	uint8_t bytes[SHOAL_ID_SIZE];
} shoal_id;

/* Fills *id with random bytes from getrandom(2). Returns 0 or -errno. */
SHOAL_API int shoal_id_random(shoal_id *id);

/* State of an object as the daemon reports it. */
enum shoal_state {
	SHOAL_STATE_ABSENT = 0,
	SHOAL_STATE_CREATED = 1, /* created, being written, not yet sealed */
	SHOAL_STATE_SEALED = 2,
};

/*
 * A read-only view of a sealed object, as filled in by shoal_get().
 * data and metadata point into the shared arena and stay valid until the
 * view is passed to shoal_release() (or the client is disconnected).
 * metadata is NULL when metadata_size is 0. status is 0 when the object was
 * returned, or SHOAL_ENOTFOUND when it was not available within the timeout;
 * a view with a non-zero status holds nothing and need not be released.
 */
typedef struct shoal_view {
	shoal_id id;
	int status;
	uint32_t metadata_size;
	uint64_t data_size;
	const uint8_t *data;
	const uint8_t *metadata;
	uint64_t handle; /* the daemon's handle of the object; opaque */
} shoal_view;

typedef struct shoal_client shoal_client;

/*
 * Default socket path: $SHOAL_SOCKET if set and non-empty, else
 * $XDG_RUNTIME_DIR/shoal.sock if XDG_RUNTIME_DIR is set, else
 * ${TMPDIR:-/tmp}/shoal-<uid>/shoal.sock. Writes at most size bytes
 * including the NUL.
 *
 * In the last case the directory is what keeps other users out (the way
 * tmux keeps /tmp/tmux-<uid>/): it is created with mode 0700 if missing,
 * and must be a real directory (not a symlink) owned by this user with no
 * access for group or others.
 * Returns 0; SHOAL_ETOOBIG when the path does not fit; SHOAL_EUNSAFE when
 * the directory belongs to someone else or is open to others (buf then
 * still holds the path, for the message); or -errno when it cannot be
 * created.
 */
SHOAL_API int shoal_default_socket(char *buf, size_t size);

/*
 * Connects to the daemon at socket_path (NULL: shoal_default_socket()) and
 * maps its arena. On success *out is a new client owned by the caller, to be
 * freed with shoal_disconnect().
 * The daemon must run as this process's effective user (checked with
 * SO_PEERCRED): clients of one store share a uid.
 * Returns 0; SHOAL_EUNAVAILABLE when no daemon listens there; SHOAL_ETOOBIG
 * for a path longer than a socket address holds; SHOAL_EFOREIGN when the
 * daemon answering there runs as another user (nothing is sent to it);
 * SHOAL_EUNSAFE (default path only, see shoal_default_socket()); SHOAL_EPROTO
 * or SHOAL_EARENA when the daemon speaks another protocol or arena format;
 * SHOAL_ENOMEM; or -errno.
 */
SHOAL_API int shoal_connect(const char *socket_path, shoal_client **out);

/*
 * Closes the connection, unmaps the arena and frees the client. Every view
 * it handed out becomes invalid; the daemon releases everything the client
 * held and drops its unsealed objects. NULL is a no-op.
 */
SHOAL_API void shoal_disconnect(shoal_client *c);

/* The socket path the client connected to (owned by the client). */
SHOAL_API const char *shoal_socket_path(const shoal_client *c);

/*
 * Cancellable waits. A call that waits - shoal_get() or shoal_get_name()
 * with a timeout other than 0, shoal_create() waiting for space - is one
 * request that the daemon answers at the event or the deadline; the client
 * sleeps in poll(2) meanwhile, so a waiting client costs the daemon nothing.
 * Such a wait ends early, without its result, when:
 *   - any thread, or a signal handler, calls shoal_interrupt(c); or
 *   - c is interruptible (shoal_set_interruptible()) and the waiting thread
 *     gets a signal whose handler was installed without SA_RESTART (the
 *     poll fails with EINTR; CPython installs its handlers so).
 * The call then returns SHOAL_EINTR and holds nothing (a get gives back
 * what it had got); a wait whose answer is complete anyway returns it as
 * usual. The connection stays usable: the client tells the daemon to end
 * the wait and reads its answer before returning.
 */

/*
 * Interrupts the wait in progress on c, or, if none is, the next one (it
 * then ends at once): the interrupt is never lost to a race with the start
 * of a wait. Async-signal-safe (one write(2) to an eventfd; errno is
 * preserved) and callable from any thread. Returns 0, SHOAL_EINVAL (c NULL)
 * or -errno.
 */
SHOAL_API int shoal_interrupt(shoal_client *c);

/* on != 0: a signal that interrupts the waiting thread's poll(2) with
 * EINTR ends the wait as shoal_interrupt() does; 0 (the default): waits
 * resume after signal handlers. */
SHOAL_API void shoal_set_interruptible(shoal_client *c, int on);

/*
 * Signals that end a wait even when they arrive just before it starts:
 * after the caller last checked for signals, and before the client sleeps.
 * Without this, the handler of such a signal runs before the wait and the
 * wait then lasts its whole timeout (Ctrl-C seems ignored).
 *   c        an interruptible client (shoal_set_interruptible()).
 *   signals  count signal numbers (copied; NULL or count 0: none, the
 *            default).
 * The caller, around each call that may wait:
 *   1. blocks these signals in the calling thread (pthread_sigmask);
 *   2. checks whether one came already (CPython: PyErr_CheckSignals());
 *   3. makes the call: it sleeps in ppoll(2) with these signals taken out
 *      of the thread's mask, so one that came after step 1 is delivered
 *      there at once and ends the wait with SHOAL_EINTR;
 *   4. restores the thread's signal mask (a signal still pending is
 *      delivered then).
 * Signals that the thread did not block change nothing. Limit: a signal
 * sent to the whole process during steps 1-3 goes to another thread that
 * does not block it, if there is one (the kernel picks); the wait does not
 * see it then. Set before the client is shared between threads.
 * Returns 0, or SHOAL_EINVAL (c NULL, signals NULL with count > 0, or a
 * number that is not a signal; nothing is changed then).
 */
SHOAL_API int shoal_set_interrupt_signals(shoal_client *c, const int *signals,
                                          size_t count);

/*
 * Restarts. When the daemon goes away (it was stopped, crashed, or was
 * restarted), the client's next call opens a new connection to the same
 * socket path and goes on there; it does not fail once first. A call that
 * finds the connection gone before its request was written is simply sent
 * on the new connection. A call whose request was written and whose reply
 * never came is sent again only if it changes nothing: shoal_get,
 * shoal_get_name, shoal_contains, shoal_list, shoal_list_names and
 * shoal_get_stats. Every other call returns SHOAL_EUNAVAILABLE then (its
 * outcome is unknown: e.g. a compare-and-set that the old daemon applied
 * would be reported as a conflict if sent again), and the next call
 * reconnects. Each call tries one new connection at most.
 *
 * What a restart ends: unsealed objects are lost (shoal_seal() returns
 * SHOAL_EUNAVAILABLE for them, shoal_abort() 0); unnamed objects are gone
 * in the new daemon, and named ones too unless it runs with --persist.
 * Views obtained before the restart stay valid until released: the old
 * mapping stays mapped for them, and releasing them sends nothing to the
 * new daemon (whose handles they would not match). With `serve --persist`
 * the new daemon reuses the same arena file; the client then gets the
 * objects of its old views again from it (one batched get), which keeps
 * their memory from being reused until the old views are released. An
 * object the new daemon does not have (an unnamed one) cannot be pinned
 * so: the bytes of such an old view may change once the new daemon reuses
 * its memory. An unsealed object's pages become private to this process
 * when it reconnects: writes through its *data after that (or still made
 * by a shoal_create_from() under way in another thread, which then stops
 * copying) reach nobody else, so they cannot change an object the new
 * daemon placed there; writes before the reconnect do reach the file.
 * Setting SHOAL_NO_RECONNECT=1 in the environment turns
 * reconnecting off (calls then fail with SHOAL_EUNAVAILABLE).
 */

/*
 * Called when reconnecting finds no daemon on the socket path, to start
 * one: returns 0 when a daemon may now be listening (the connection is then
 * tried once more), or a negative code. Runs in the thread of the call
 * that reconnects, with that client's request lock held: it must not use
 * the same client.
 */
typedef int (*shoal_restart_fn)(void *ctx, const char *socket_path);

/* Sets (or, with fn NULL, clears) the restart hook of c. */
SHOAL_API void shoal_set_restart_hook(shoal_client *c, shoal_restart_fn fn,
                                      void *ctx);

/* How many connections c has had: 1 after shoal_connect(), one more per
 * reconnect. */
SHOAL_API uint32_t shoal_epoch(const shoal_client *c);

/*
 * Creates an object of data_size bytes of data and metadata_size bytes of
 * metadata and reserves memory for both, so that writing them can never
 * fault with SIGBUS. On success *data points at data_size writable bytes,
 * 64-byte aligned, and *metadata (if not NULL) at metadata_size writable
 * bytes (NULL when metadata_size is 0). Both stay valid until shoal_seal()
 * or shoal_abort() of the object, and after seal as a read-only view that
 * the caller gives back with shoal_release_id() (sealing does not drop the
 * creator's hold; see shoal_seal()).
 *
 * Only these bytes become writable, and only in this process, until seal or
 * abort: the rest of the arena is mapped read-only in every client, so a
 * write into sealed data, the creator's included, faults (SIGSEGV). Page
 * granularity: the bytes of neighbouring objects that share the object's
 * first or last page are writable too while it is being created. The first
 * create of a client also fetches write access to the arena (a second,
 * short connection; see docs/DESIGN.md, trust model).
 *
 * When the store is full, least-recently-released objects that nobody
 * holds and that have no name (or only evictable names) are evicted, just
 * enough to make room. If even evicting all
 * of them would not make room, nothing is evicted and, with timeout_ms 0,
 * SHOAL_EFULL is returned at once; with timeout_ms > 0 (or
 * SHOAL_WAIT_FOREVER) the daemon waits up to that long for space to be
 * freed, then returns SHOAL_EFULL.
 *
 * Returns 0; SHOAL_EEXISTS if an object with this ID exists in any state;
 * SHOAL_EFULL (also, at once and whatever the timeout, for an object larger
 * than the whole store, data and metadata counted together); SHOAL_EINTR
 * when the wait for space was interrupted; SHOAL_EUNAVAILABLE;
 * SHOAL_EFORKED; SHOAL_ENOMEM (also when the kernel has no room for
 * another protection change: too many unsealed objects); or -errno.
 */
SHOAL_API int shoal_create(shoal_client *c, const shoal_id *id,
                           uint64_t data_size, uint32_t metadata_size,
                           int64_t timeout_ms, uint8_t **data,
                           uint8_t **metadata);

/* One piece of a new object's bytes, for shoal_create_from(). */
typedef struct shoal_segment {
	uint64_t offset; /* where it goes: bytes from the object's start (the
	                    metadata follows the data) */
	const void *src; /* size bytes to copy from */
	uint64_t size;
	/* 0: a plain copy. 4 or 8: the bytes are integers of that width
	 * (native byte order), each written with `add` added, modulo 2^32 or
	 * 2^64 - e.g. the offsets of an Arrow string chunk appended after
	 * others. size is then a multiple of width. */
	uint32_t width;
	int64_t add;
} shoal_segment;

/*
 * shoal_create(), with the object's bytes copied from segs (nsegs of them)
 * in the same call: on memory that must be reserved first, the copy runs
 * right behind the reservation (each piece of a segment is copied once
 * its pages are reserved, and the calling thread reserves pages too when
 * it would wait) instead of after it, so the copy's memory traffic
 * overlaps the kernel's work per page. An object of 32 MiB or more whose
 * segments do not overlap is written through the arena file instead where
 * the memory is fresh: the calling thread pwrites it from the front while
 * the helpers populate and copy from the back (those pages are then not in
 * this process's page tables until it touches them). Segments in
 * ascending offset order overlap best; any order gives the same bytes. Bytes that no segment
 * covers are left as shoal_create() leaves them, for the caller to write
 * through *data before sealing. segs must stay valid during the call. If
 * another thread reconnects during the call (a restart, see above), the
 * copy stops, the call still returns 0, the bytes at *data are unspecified
 * and shoal_seal() returns SHOAL_EUNAVAILABLE.
 * Returns what shoal_create() returns; SHOAL_EINVAL (nothing is created)
 * for a segment that does not lie within the object's data_size +
 * metadata_size bytes, a NULL src with a size, or a bad width.
 */
SHOAL_API int shoal_create_from(shoal_client *c, const shoal_id *id,
                                uint64_t data_size, uint32_t metadata_size,
                                int64_t timeout_ms, const shoal_segment *segs,
                                size_t nsegs, uint8_t **data,
                                uint8_t **metadata);

/*
 * How many threads shoal_create() may use to reserve the memory of a large
 * object. Reserving fresh shared memory costs about 2 us per 4 KiB page on
 * the CPU that does it (a second for 2 GiB, several times the copy of the
 * bytes), so shoal_create() shares the pages of an object of 32 MiB or more
 * between the calling thread and helper threads, at most one thread per
 * 16 MiB. The helpers exist only during the call (joined before it
 * returns, every signal blocked); objects under 32 MiB never start one,
 * nor memory that this client has mapped before.
 * threads: 1 for the calling thread alone; 0 (the default) for the value
 * of the environment variable SHOAL_POPULATE_THREADS (1 to 16) when set,
 * else as many as the CPUs this process may run on, at most 4; at most 16.
 * Returns 0 or SHOAL_EINVAL.
 */
SHOAL_API int shoal_set_populate_threads(shoal_client *c, unsigned threads);

/*
 * Seals an object this client created: it becomes immutable and visible to
 * every client, and clients waiting for it in a get are answered. The seal
 * is sent without waiting for a reply (requests on one connection are
 * handled in order, so the client's next request already sees it sealed).
 * The creator keeps holding the object after sealing, exactly as if it had
 * got it once: call shoal_release_id() when done with the written bytes.
 * Returns 0; SHOAL_ENOTFOUND if this client has no unsealed object with this
 * ID; SHOAL_EUNAVAILABLE (also for an object created before a restart: it
 * is lost, and its bytes were private to this process since the
 * reconnect); SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_seal(shoal_client *c, const shoal_id *id);

/*
 * Drops an unsealed object this client created; its memory is freed and its
 * pointers become invalid. Waiting getters keep waiting (the ID may be
 * created again). Returns 0; SHOAL_ENOTFOUND; SHOAL_ESEALED if it was
 * already sealed; SHOAL_ENOTOWNER if another client created it;
 * SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_abort(shoal_client *c, const shoal_id *id);

/*
 * Gets n objects (n <= SHOAL_BATCH_MAX; duplicate IDs are fine) in one round
 * trip. Waits until every one is sealed or timeout_ms runs out (0: do not
 * wait; SHOAL_WAIT_FOREVER: no limit). views[i] describes ids[i]: status 0
 * and a pinned view, or status SHOAL_ENOTFOUND when the object was not
 * available in time. Each view with status 0 must be given back with
 * shoal_release() (once per view, duplicates included).
 * Returns 0 (even when some objects were not available); SHOAL_EINVAL;
 * SHOAL_ETOOBIG for n over the limit; SHOAL_EINTR when the wait was
 * interrupted before every object came (no view is then held; see
 * shoal_interrupt()); SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_get(shoal_client *c, const shoal_id *ids, size_t n,
                        int64_t timeout_ms, shoal_view *views);

/*
 * Gives back one view obtained from shoal_get(), shoal_get_name() or a
 * sealed shoal_create(). When the client's last view of an object goes, a
 * release is queued for the daemon; it never waits for a reply, nor for a
 * request another thread has in flight. The release of a small object
 * (under 64 KiB) rides in the write of the client's next request, which
 * saves the daemon a wake-up per release; at most 64 such releases and
 * 1 MiB wait, beyond which the queue is sent at once, and larger objects
 * are released at once. (So an idle client may keep up to 1 MiB of small
 * objects pinned until its next call.) The view's pointers are invalid
 * afterwards. Releasing a view with a non-zero status, or one already
 * released, is a no-op returning 0. Returns 0, SHOAL_EFORKED, or
 * SHOAL_EUNAVAILABLE (the view is released locally all the same).
 */
SHOAL_API int shoal_release(shoal_client *c, shoal_view *view);

/* Like shoal_release() for the view of an object known by ID (e.g. the
 * creator's hold after seal). Returns 0, SHOAL_ENOTFOUND if the client holds
 * no view of it, SHOAL_EFORKED or SHOAL_EUNAVAILABLE. */
SHOAL_API int shoal_release_id(shoal_client *c, const shoal_id *id);

/*
 * Deletes n objects. An object that some client holds disappears at once
 * for lookups (get, contains, list) and its ID may be created again, but its
 * memory is freed only after the last holder releases it. A named object is
 * not deleted: delete its names first. results (may be NULL) receives, per
 * ID, 0, SHOAL_ENOTFOUND, SHOAL_ENOTSEALED (unsealed objects are aborted by
 * their creator) or SHOAL_EEXISTS (it still has a name).
 * Returns 0, SHOAL_ETOOBIG, SHOAL_EUNAVAILABLE, SHOAL_EFORKED or -errno.
 */
SHOAL_API int shoal_delete(shoal_client *c, const shoal_id *ids, size_t n,
                           int *results);

/* Sets *state to the object's enum shoal_state. Returns 0,
 * SHOAL_EUNAVAILABLE, SHOAL_EFORKED or -errno. */
SHOAL_API int shoal_contains(shoal_client *c, const shoal_id *id, int *state);

/*
 * Asks the daemon to evict sealed objects that nobody holds and that have no
 * name or only evictable names (SHOAL_NAME_EVICTABLE; the names go with
 * them), least recently released first, until at least nbytes are freed or
 * none is left.
 *   c       the client.
 *   nbytes  bytes to free, counted as objects were created (data +
 *           metadata, not the 64-byte blocks they take); 0 evicts nothing.
 *   freed   (may be NULL) receives the bytes freed, counted the same way;
 *           it may exceed nbytes (whole objects go) or fall short (nothing
 *           more was evictable).
 * Returns 0, SHOAL_EUNAVAILABLE, SHOAL_EFORKED or -errno.
 */
SHOAL_API int shoal_evict(shoal_client *c, uint64_t nbytes, uint64_t *freed);

/* One object as listed by shoal_list(). */
typedef struct shoal_object_info {
	shoal_id id;
	int state; /* enum shoal_state */
	uint32_t metadata_size;
	uint64_t data_size;
	uint32_t holders;        /* clients holding it now */
	uint32_t names;          /* names pointing at it */
	uint64_t create_time_ns; /* CLOCK_REALTIME at create */
	int64_t construct_ms;    /* milliseconds from create to seal; -1
	                            while unsealed */
} shoal_object_info;

/*
 * Lists objects (any state, deleted ones excepted), page by page.
 *   c       the client.
 *   cursor  in: 0 to start, else the value a previous call left; out: the
 *           cursor of the next page, or 0 when the listing is complete.
 *   out     room for max entries, filled with the page's objects.
 *   max     entries out holds (at least 1; a page has at most 4096).
 *   count   receives the number of entries written; a page may hold
 *           fewer than max (even none) while *cursor is not 0.
 * Objects created or deleted during a listing may or may not appear; one
 * that exists for the whole listing appears exactly once.
 * Returns 0; SHOAL_EINVAL (a NULL pointer, max 0); SHOAL_EPROTO;
 * SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno. On failure *cursor is
 * unchanged and *count is 0.
 */
SHOAL_API int shoal_list(shoal_client *c, uint64_t *cursor,
                         shoal_object_info *out, size_t max, size_t *count);

/* Store-wide counters, as `shoal stats` prints them. New counters are
 * appended (see SHOAL_ABI_VERSION): a library older than the header leaves
 * the ones it does not know 0. */
typedef struct shoal_stats {
	uint64_t capacity_bytes; /* the largest total of objects */
	uint64_t used_bytes;     /* bytes taken by objects (64-byte blocks) */
	uint64_t objects;        /* objects that exist (any state) */
	uint64_t sealed_objects;
	uint64_t pending_deletes; /* deleted, still held by a reader */
	uint64_t names;
	uint64_t clients;
	uint64_t evictions; /* objects evicted since start */
	uint64_t evicted_bytes;
	uint64_t creates; /* counters since start */
	uint64_t gets;
	uint64_t backed_bytes; /* arena memory the backing has reserved */
	uint64_t largest_free; /* largest free block: the biggest create that
	                          fits without eviction */
	uint64_t uptime_ms;
	uint64_t expired;       /* names removed by expiry since start */
	uint64_t evicted_names; /* names evicted with their object */
	uint64_t requests; /* requests received since start (a waiting request
	                      counts once, however long it waits) */
} shoal_stats;

/*
 * The store's counters, in one round trip. Call it as
 * shoal_get_stats(c, out), a macro that passes sizeof(*out).
 *   c     the client.
 *   out   receives the counters (see shoal_stats; sizes are the ones asked
 *         for, used_bytes counts 64-byte blocks).
 *   size  bytes of *out: the library writes exactly size bytes, its
 *         counters up to there and zeros after its last one.
 * Returns 0, SHOAL_EINVAL (out NULL), SHOAL_EPROTO, SHOAL_EUNAVAILABLE,
 * SHOAL_EFORKED or -errno.
 */
SHOAL_API int shoal_get_stats_sized(shoal_client *c, shoal_stats *out,
                                    size_t size);
#define shoal_get_stats(c, out) \
	shoal_get_stats_sized((c), (out), sizeof(*(out)))

/*
 * Points name (name_len bytes of UTF-8, 1..SHOAL_NAME_MAX, no NUL) at the
 * sealed object id, atomically: a reader resolving the name sees the old
 * object or the new one, never nothing. The object the name pointed at
 * before is deleted once nobody holds it and no other name points at it.
 * With expected_version != NULL this is a compare-and-set: it succeeds only
 * if the name's current version is *expected_version (0 meaning "the name
 * must not exist"); otherwise SHOAL_EVERSION. *version (may be NULL)
 * receives the name's new version. Versions are unique over the daemon's
 * lifetime and increase.
 * Returns 0; SHOAL_ENOTFOUND if the object does not exist;
 * SHOAL_ENOTSEALED; SHOAL_EVERSION; SHOAL_EINVAL for a name that is empty,
 * not UTF-8 or contains NUL; SHOAL_ETOOBIG; SHOAL_EUNAVAILABLE;
 * SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_set_name(shoal_client *c, const char *name, size_t name_len,
                             const shoal_id *id,
                             const uint64_t *expected_version,
                             uint64_t *version);

/*
 * Resolves name and gets its object in one round trip. If the name does not
 * exist, waits up to timeout_ms for it to be set. On success *view is a
 * pinned view to give back with shoal_release() and *version (may be NULL)
 * the name's version. Returns 0; SHOAL_ENOTFOUND when the name did not
 * exist within the timeout; SHOAL_EINTR when the wait was interrupted;
 * SHOAL_EINVAL; SHOAL_ETOOBIG; SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or
 * -errno.
 *
 * Superseded values leave this process's page tables: for objects of
 * 32 MiB or more, the client remembers which object each name last gave it
 * (the 64 names last read). When a get returns another object for the
 * name, the range of the old one, except what the new one covers, is
 * dropped from this process's mapping (MADV_DONTNEED) once the process
 * holds no view of the old object: at once, or when its last view is
 * released (by that release, or, when another thread's request is in
 * flight, at the end of that request). Nothing else changes: the pages and their data stay in the
 * store (another object placed there since is faulted in again on its
 * next access), and other processes' mappings are untouched. A process
 * that follows a name refreshed many times then maps about one value of
 * it, not every place in the daemon's warm reserve where a value has been
 * (its RSS stays flat).
 */
SHOAL_API int shoal_get_name(shoal_client *c, const char *name, size_t name_len,
                             int64_t timeout_ms, shoal_view *view,
                             uint64_t *version);

/*
 * Removes a name. With expected_version != NULL, only if the name's version
 * is *expected_version (else SHOAL_EVERSION). Its object is deleted once
 * nobody holds it and no other name points at it. Returns 0;
 * SHOAL_ENOTFOUND; SHOAL_EVERSION; SHOAL_EINVAL; SHOAL_ETOOBIG;
 * SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_delete_name(shoal_client *c, const char *name,
                                size_t name_len,
                                const uint64_t *expected_version);

/* Flags of a name (shoal_set_name_ttl, shoal_name_info.flags). */
#define SHOAL_NAME_EVICTABLE 1u /* may be evicted with its object */

/*
 * One name, as shoal_list_names() and shoal_name_stat() describe it.
 * name points at name_len bytes of UTF-8 that the struct does not own:
 * for a listing they are in the caller's names buffer (and NUL-terminated
 * there), valid as long as that buffer; for shoal_name_stat() name is the
 * caller's own name argument.
 */
typedef struct shoal_name_info {
	const char *name;
	size_t name_len;
	shoal_id id;
	uint64_t version;
	uint64_t data_size;
	uint32_t metadata_size;
	uint32_t flags; /* SHOAL_NAME_EVICTABLE */
	int64_t ttl_ms; /* time left to live in ms (rounded up, >= 1), or -1
	                   when the name does not expire */
} shoal_name_info;

/*
 * Lists names page by page, in byte order of their names.
 *   c           the client.
 *   cursor      in: 0 to start, else the value the previous page left;
 *               out: the cursor of the next page, or 0 when the listing is
 *               complete.
 *   out         room for max entries; receives the page's names.
 *   max         entries out holds (at least 1).
 *   names       a buffer of names_size bytes, owned by the caller, that
 *               receives the bytes of the page's names, each followed by a
 *               NUL; out[i].name points into it. SHOAL_NAMES_SIZE(max)
 *               bytes always hold max names; a smaller buffer ends the page
 *               early (the cursor then resumes after the last name given).
 *   names_size  bytes of names: at least SHOAL_NAME_MAX + 1.
 *   count       receives the number of entries written.
 * A name that exists for the whole listing is listed exactly once. A cursor
 * is valid once, on the same client (which remembers where the listing
 * stopped); up to 8 listings may be in progress on one client at once
 * (e.g. in several threads): a cursor older than the 8 pages handed out
 * since fails with SHOAL_EINVAL.
 * Returns 0; SHOAL_EINVAL (NULL arguments, max 0, names_size under
 * SHOAL_NAME_MAX + 1, a cursor that is not the client's current one);
 * SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_list_names(shoal_client *c, uint64_t *cursor,
                               shoal_name_info *out, size_t max, char *names,
                               size_t names_size, size_t *count);

/* Bytes of a names buffer that holds the names of any page of max entries. */
#define SHOAL_NAMES_SIZE(max) ((size_t)(max) * (SHOAL_NAME_MAX + 1))

/*
 * Names with a time to live, evictable names and namespaces.
 *
 * A name set with a time to live (ttl_ms > 0) goes away ttl_ms after it was
 * set, to within a few ms: lookups stop finding it at once, subscribers get
 * a SHOAL_EVENT_NAME_EXPIRED event, and its object is deleted like that of
 * a deleted name (freed once nobody holds it, so no reader loses memory).
 * Setting a name again replaces its time to live and flags.
 *
 * A name set with SHOAL_NAME_EVICTABLE lets its object be evicted: an object
 * whose names are all evictable, that nobody holds, joins the unnamed
 * objects in least-recently-released order, and a create that needs space
 * evicts it (and removes its names, with SHOAL_EVENT_NAME_EVICTED) before
 * it fails or waits. Objects with any other name are never evicted.
 */

/*
 * shoal_set_name() with a time to live and flags. ttl_ms is the time to
 * live in ms, 0 for none (at most SHOAL_TTL_MAX_MS); flags is 0 or
 * SHOAL_NAME_EVICTABLE. The other parameters, the atomicity and the
 * compare-and-set rule are those of shoal_set_name(); a name that has
 * expired counts as absent (version 0).
 * Returns 0; SHOAL_ENOTFOUND if the object does not exist;
 * SHOAL_ENOTSEALED; SHOAL_EVERSION; SHOAL_EINVAL for a bad name or unknown
 * flags; SHOAL_ETOOBIG for a name over SHOAL_NAME_MAX or ttl_ms over
 * SHOAL_TTL_MAX_MS; SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_set_name_ttl(shoal_client *c, const char *name,
                                 size_t name_len, const shoal_id *id,
                                 const uint64_t *expected_version,
                                 uint64_t ttl_ms, unsigned flags,
                                 uint64_t *version);

/*
 * Gives an existing name a time to live of ttl_ms from now (replacing any
 * earlier one); ttl_ms 0 makes it expire now. The name's version does not
 * change. Returns 0; SHOAL_ENOTFOUND if there is no such name;
 * SHOAL_ETOOBIG for ttl_ms over SHOAL_TTL_MAX_MS; SHOAL_EINVAL for a bad
 * name; SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_expire(shoal_client *c, const char *name, size_t name_len,
                           uint64_t ttl_ms);

/*
 * Takes a name's time to live away: it no longer expires. A name without
 * one is left as it is. Returns 0; SHOAL_ENOTFOUND; SHOAL_EINVAL;
 * SHOAL_ETOOBIG; SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_persist(shoal_client *c, const char *name, size_t name_len);

/*
 * Describes one name without getting its object: *out receives its
 * object's ID and sizes, its version, flags and time to live; out->name
 * and out->name_len are name and name_len (the caller's bytes, not copied).
 * Returns 0; SHOAL_ENOTFOUND; SHOAL_EINVAL; SHOAL_ETOOBIG;
 * SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_name_stat(shoal_client *c, const char *name,
                              size_t name_len, shoal_name_info *out);

/*
 * The time a name has left to live: *ttl_ms receives ms (rounded up, at
 * least 1) or -1 when the name does not expire. Returns what
 * shoal_name_stat() returns.
 */
SHOAL_API int shoal_ttl(shoal_client *c, const char *name, size_t name_len,
                        int64_t *ttl_ms);

/*
 * Lists the names that start with prefix (prefix_len bytes of UTF-8, 0 for
 * every name), page by page, with the parameters and rules of
 * shoal_list_names(). The daemon finds them in its name-ordered index: the
 * cost is that of the names returned, not of the whole store.
 * Returns 0; SHOAL_EINVAL (NULL arguments, max 0, names_size too small, a
 * prefix that is not UTF-8 or contains NUL, a stale cursor); SHOAL_ETOOBIG
 * (prefix over SHOAL_NAME_MAX); SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or
 * -errno.
 */
SHOAL_API int shoal_list_names_prefix(shoal_client *c, const char *prefix,
                                      size_t prefix_len, uint64_t *cursor,
                                      shoal_name_info *out, size_t max,
                                      char *names, size_t names_size,
                                      size_t *count);

/*
 * The stateless form of shoal_list_names_prefix(): one page of the names
 * that start with prefix and come after the name `after` (after_len bytes;
 * 0 or NULL: from the first), in name order; out, max, names and
 * names_size as for shoal_list_names(). *more is set to 1 when names
 * follow the last one returned (also when the names buffer ended the page
 * early): call again with it as `after`. Any number of such listings may
 * run at once, in any threads.
 * Returns 0; SHOAL_EINVAL (NULL arguments, max 0, names_size too small, a
 * prefix or after that is not UTF-8); SHOAL_ETOOBIG; SHOAL_EUNAVAILABLE;
 * SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_list_names_after(shoal_client *c, const char *prefix,
                                     size_t prefix_len, const char *after,
                                     size_t after_len, shoal_name_info *out,
                                     size_t max, char *names, size_t names_size,
                                     size_t *count, int *more);

/*
 * Deletes every name that starts with prefix (prefix_len bytes; 0 deletes
 * every name) in one step: no client sees part of the namespace gone. The
 * objects go as with shoal_delete_name(). *count (may be NULL) receives the
 * number of names deleted. Returns 0; SHOAL_EINVAL; SHOAL_ETOOBIG;
 * SHOAL_EUNAVAILABLE; SHOAL_EFORKED; or -errno.
 */
SHOAL_API int shoal_delete_prefix(shoal_client *c, const char *prefix,
                                  size_t prefix_len, uint64_t *count);

/*
 * The process ID of the daemon at the other end of the client's socket, as
 * the kernel reports it (SO_PEERCRED), e.g. to stop it with SIGTERM.
 * Returns 0 and *pid; SHOAL_EINVAL; SHOAL_EFORKED; SHOAL_EUNAVAILABLE when
 * the connection is gone; or -errno.
 */
SHOAL_API int shoal_daemon_pid(shoal_client *c, int64_t *pid);

/*
 * Convenience: creates an object from data/metadata, copies them in, seals
 * it and releases the creator's hold. Returns what shoal_create() returns.
 */
SHOAL_API int shoal_put(shoal_client *c, const shoal_id *id, const void *data,
                        uint64_t data_size, const void *metadata,
                        uint32_t metadata_size);

/* Arena facts, for tools and tests. New fields are appended. */
typedef struct shoal_arena_info {
	const uint8_t *base;  /* the client's mapping of the whole arena */
	uint64_t map_size;    /* bytes mapped */
	uint64_t capacity;    /* capacity in bytes */
	uint64_t data_offset; /* where the object area starts */
} shoal_arena_info;

/* Fills *out (size bytes of it: the fields this library knows, zeros after
 * them) with c's arena facts, all 0 when c is NULL. Call it as
 * shoal_arena(c, out), a macro that passes sizeof(*out). */
SHOAL_API void shoal_arena_sized(const shoal_client *c, shoal_arena_info *out,
                                 size_t size);
#define shoal_arena(c, out) shoal_arena_sized((c), (out), sizeof(*(out)))

/*
 * Notifications. A subscription is a connection of its own on which the
 * daemon sends an event for every seal, delete, eviction and name change,
 * in the order they happen, for cache invalidation across many processes.
 */
enum shoal_event_kind {
	SHOAL_EVENT_SEALED = 1,   /* an object was sealed */
	SHOAL_EVENT_DELETED = 2,  /* an object was deleted (gone for lookups) */
	SHOAL_EVENT_EVICTED = 3,  /* an object was evicted */
	SHOAL_EVENT_NAME_SET = 4, /* a name now points at id, as version */
	SHOAL_EVENT_NAME_DELETED = 5, /* a name was removed */
	SHOAL_EVENT_OVERFLOW = 6,     /* too many unread events: the
	                                 subscription is closed after this */
	SHOAL_EVENT_SNAPSHOT_END = 7, /* the snapshot is complete */
	SHOAL_EVENT_NAME_EXPIRED = 8, /* a name reached its time to live */
	SHOAL_EVENT_NAME_EVICTED = 9, /* an evictable name was evicted with
	                                 its object (an EVICTED event of the
	                                 object follows) */
	SHOAL_EVENT_NAME_TTL = 10,    /* a name's time to live changed
	                                 (shoal_expire, shoal_persist): its
	                                 object and version are unchanged;
	                                 expires_ms says when it now expires.
	                                 Only with SHOAL_SUBSCRIBE_TTL */
};

/* The last event kind (kinds are 1..SHOAL_EVENT_KIND_MAX). */
#define SHOAL_EVENT_KIND_MAX SHOAL_EVENT_NAME_TTL

/*
 * One event. name points at name_len bytes of UTF-8 and a NUL ("" and 0
 * for object events); the subscription owns them, and they stay valid
 * until the next shoal_next_event() or shoal_unsubscribe() on it. Fields
 * are appended (see SHOAL_ABI_VERSION).
 */
typedef struct shoal_event {
	int kind; /* enum shoal_event_kind */
	shoal_id id;
	uint64_t data_size;
	uint32_t metadata_size;
	uint64_t version;
	uint64_t seq; /* 1, 2, ... on this subscription */
	const char *name;
	size_t name_len;
	/* NAME_TTL: when the name now expires, in ms since the Unix epoch
	 * (CLOCK_REALTIME, so that other hosts can compare it); 0: it no
	 * longer expires. 0 for the other kinds. */
	uint64_t expires_ms;
} shoal_event;

typedef struct shoal_subscription shoal_subscription;

/* Ask for the current objects and names first, as SEALED and NAME_SET
 * events, ended by SNAPSHOT_END. */
#define SHOAL_SUBSCRIBE_SNAPSHOT 1u
/* Ask for NAME_TTL events too (a subscriber that does not ask never gets
 * them, so programs built before they existed keep working). */
#define SHOAL_SUBSCRIBE_TTL 2u

/*
 * Opens a subscription to the daemon at socket_path (NULL: the default).
 * flags: 0, or SHOAL_SUBSCRIBE_SNAPSHOT and/or SHOAL_SUBSCRIBE_TTL. *out
 * is owned by the caller, freed with shoal_unsubscribe(). Returns 0,
 * SHOAL_EUNAVAILABLE, SHOAL_ETOOBIG, SHOAL_EPROTO, SHOAL_ENOMEM or -errno.
 */
SHOAL_API int shoal_subscribe(const char *socket_path, unsigned flags,
                              shoal_subscription **out);

/*
 * Waits up to timeout_ms (0: poll; SHOAL_WAIT_FOREVER) for the next event.
 * Call it as shoal_next_event(s, timeout_ms, ev), a macro that passes
 * size = sizeof(*ev): the library writes size bytes of *ev (the fields it
 * knows, zeros after them); the name ev->name points at belongs to s.
 * Returns 0 with *ev filled; SHOAL_ETIMEDOUT; SHOAL_EINTR when the wait
 * was interrupted (shoal_subscription_interrupt(), or a signal when the
 * subscription is interruptible; no event is lost); SHOAL_EUNAVAILABLE when
 * the daemon closed the subscription (after an OVERFLOW event, or when it
 * stopped); SHOAL_EPROTO; or -errno.
 */
SHOAL_API int shoal_next_event_sized(shoal_subscription *s, int64_t timeout_ms,
                                     shoal_event *ev, size_t size);
#define shoal_next_event(s, timeout_ms, ev) \
	shoal_next_event_sized((s), (timeout_ms), (ev), sizeof(*(ev)))

/* Ends the wait of shoal_next_event() on s in progress, or the next one,
 * with SHOAL_EINTR, as shoal_interrupt() does for a client (async-signal-
 * safe, any thread). Returns 0, SHOAL_EINVAL or -errno. */
SHOAL_API int shoal_subscription_interrupt(shoal_subscription *s);

/* on != 0: a signal that interrupts the waiting thread's poll(2) ends
 * shoal_next_event() with SHOAL_EINTR (see shoal_set_interruptible()). */
SHOAL_API void shoal_subscription_set_interruptible(shoal_subscription *s,
                                                    int on);

/* shoal_set_interrupt_signals() for the wait of shoal_next_event(). Returns
 * 0 or SHOAL_EINVAL. */
SHOAL_API int shoal_subscription_set_interrupt_signals(shoal_subscription *s,
                                                       const int *signals,
                                                       size_t count);

/* The subscription's socket, to wait for readability with poll(2). Events
 * may also be buffered already: call shoal_next_event() with timeout 0
 * until it returns SHOAL_ETIMEDOUT before polling. */
SHOAL_API int shoal_subscription_fd(const shoal_subscription *s);

/* Closes the subscription. NULL is a no-op. */
SHOAL_API void shoal_unsubscribe(shoal_subscription *s);

#ifdef __cplusplus
}
#endif

#endif /* SHOAL_H */
