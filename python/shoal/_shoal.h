/*
 * _shoal.h - what the files of the Python extension `shoal._shoal` share.
 *
 * The extension is a thin, GIL-aware wrapper of libshoal (include/shoal.h),
 * built from the same C sources. It has five heap types, all reached from
 * the module state (multi-phase init, no static types, no globals):
 *
 *   ObjectID     20 immutable bytes; hashable, picklable.
 *   _Connection  one shoal_client (one socket + one arena mapping) and the
 *                process that opened it. Not visible to users. A Buffer
 *                keeps its Connection alive, so the arena stays mapped while
 *                any view of it lives - also in a forked child, and also
 *                after the Client switched to a new connection.
 *   Buffer       one pinned object: a read-only view from a get, or the
 *                writable space of a create. It exports the buffer protocol
 *                and counts its exports; the object is released (the pin
 *                dropped) when the last export and reference go.
 *   Client       what the Python layer talks to: owns the current
 *                Connection, replaces it after a fork or after the daemon
 *                went away, and keeps a few spare connections for calls
 *                that wait (so that a long wait in one thread does not hold
 *                up the requests of the others).
 *   Subscription one shoal_subscription: the daemon's notifications, each
 *                returned as an Event (a struct sequence, also a heap
 *                type).
 *
 * Every call into libshoal that can block runs with the GIL released. A wait
 * on the daemon is one request; a signal ends it early (the connections are
 * interruptible), the handlers run, and it goes on unless one raised, so
 * Ctrl-C works at once and a waiting call costs the daemon nothing. All
 * Python-level state (dicts, reference counts, Connection swaps) is only
 * touched with the GIL held, so the extension needs no locks of its own and
 * nothing it holds can be left locked in a forked child.
 */
#ifndef SHOAL_PY_SHOAL_H
#define SHOAL_PY_SHOAL_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

#include "shoal.h"

/* Parts written by Client.put start at multiples of this (Arrow's
 * alignment; also what the arena guarantees for the object's start). */
#define PYSHOAL_PART_ALIGN 64

/* Spare connections kept for waiting calls. */
#define PYSHOAL_POOL_MAX 4

typedef struct pyshoal_state {
	PyTypeObject *id_type;
	PyTypeObject *conn_type;
	PyTypeObject *buffer_type;
	PyTypeObject *client_type;
	PyTypeObject *sub_type;
	PyTypeObject *event_type; /* struct sequence shoal.Event */
	PyObject *event_kinds;    /* tuple of str, index kind - 1 */

	PyObject *error; /* shoal.Error, base of all below */
	PyObject *store_full;
	PyObject *object_exists;
	PyObject *object_not_found;  /* also a KeyError */
	PyObject *store_unavailable; /* also a ConnectionError (OSError) */
	PyObject *timeout;           /* also a TimeoutError */
	PyObject *version_conflict;
	PyObject *not_sealed;
	PyObject *already_sealed;
	PyObject *not_owner;
	PyObject *protocol_error;
	PyObject *too_big; /* also a ValueError */
	PyObject *invalid; /* also a ValueError */
	PyObject *busy;
} pyshoal_state;

typedef struct {
	PyObject_HEAD shoal_id id;
} pyid_object;

typedef struct {
	PyObject_HEAD shoal_client *client;
	pid_t pid;  /* process that connected */
	int broken; /* the daemon went away: open a new connection */
	/* Creates of this connection not yet sealed or aborted: id bytes ->
	 * a weak reference to the writable Buffer. Once that Buffer died or
	 * was released (the reference is dead, or the Buffer is no longer
	 * CREATED), seal drops the creator's hold at once. */
	PyObject *created;
	/* For libshoal's restart hook: the Client's autostart (a strong
	 * reference, or NULL) and the module state. */
	PyObject *autostart;
	pyshoal_state *st;
} pyconn_object;

enum pybuf_state {
	PYBUF_VIEW = 0,    /* from a get: release with shoal_release() */
	PYBUF_CREATED = 1, /* being written: writable, not yet sealed */
	PYBUF_SEALED = 2,  /* the creator's hold after seal */
	PYBUF_DONE = 3,    /* released or aborted: no memory behind it */
};

typedef struct {
	PyObject_HEAD pyconn_object *conn; /* strong: keeps the arena mapped */
	shoal_view view;    /* id, sizes and pointers in every state */
	uint8_t *wdata;     /* writable data pointer while CREATED */
	int state;          /* enum pybuf_state */
	Py_ssize_t exports; /* live Py_buffer exports */
	PyObject *weakrefs;
} pybuf_object;

typedef struct {
	PyObject_HEAD char *path; /* socket path (PyMem) */
	pyconn_object *conn;      /* current connection, or NULL */
	PyObject *pool;           /* list of spare connections for waits */
	PyObject *autostart;      /* None or (binary, args tuple, timeout_ms) */
	int closed;
	PyObject *weakrefs;
} pyclient_object;

/* _shoal.c */
pyshoal_state *pyshoal_state_of_type(PyTypeObject *tp);
pyshoal_state *pyshoal_state_of_module(PyObject *module);
/* Sets the exception that matches code (a negative shoal or errno code),
 * with "what: description" as message. Returns NULL for convenience. */
PyObject *pyshoal_raise(pyshoal_state *st, int code, const char *what);
/* The same with msg (a str, stolen; NULL: an exception is already set) as
 * the whole message. */
PyObject *pyshoal_raise_msg(pyshoal_state *st, int code, PyObject *msg);
/* Parses an ObjectID or a 20-byte bytes-like object. Returns 0 or -1 with
 * an exception set. */
int pyid_parse(pyshoal_state *st, PyObject *obj, shoal_id *out);
PyObject *pyid_new(pyshoal_state *st, const shoal_id *id);
/* Milliseconds of CLOCK_MONOTONIC. */
int64_t pyshoal_now_ms(void);

/* _shoal_buffer.c */
extern PyType_Spec pybuf_spec;
/* A new Buffer over view (status 0), taking over its pin. On failure the
 * view is released and NULL returned with an exception set. */
PyObject *pybuf_from_view(pyshoal_state *st, pyconn_object *conn,
                          shoal_view *view);
/* A new writable Buffer for a fresh create; registers it in
 * conn->created. On failure the create is aborted. */
PyObject *pybuf_from_create(pyshoal_state *st, pyconn_object *conn,
                            const shoal_id *id, uint8_t *data, uint64_t size,
                            uint8_t *meta, uint32_t meta_size);

/* A Python exception is set (returned where libshoal codes are expected). */
#define PYSHOAL_PYERR 1

/* _shoal_client.c: the Client type and its connections */
extern PyType_Spec pyconn_spec;
extern PyType_Spec pyclient_spec;
pyshoal_state *pyclient_state(pyclient_object *self);
/* The current connection (a new reference), reconnecting after a fork or
 * a lost daemon; NULL with an exception set. */
pyconn_object *pyclient_conn(pyclient_object *self);
/* Like pyclient_conn, but a spare connection when timeout_ms is not 0 (a
 * call that may wait). Give it back with pyclient_done_with(). */
pyconn_object *pyclient_conn_for(pyclient_object *self, int64_t timeout_ms);
void pyclient_done_with(pyclient_object *self, pyconn_object *c,
                        int64_t timeout_ms);
/* Raises the exception of rc (nothing for PYSHOAL_PYERR) and marks c
 * broken when rc means its socket is gone. Returns NULL. */
PyObject *pyclient_fail(pyclient_object *self, pyconn_object *c, int rc,
                        const char *what);
/* The timeout to pass on for a wait ending at deadline (timeout_ms as given:
 * -1 forever, 0 no wait); whether the wait is over. */
int64_t pyclient_time_left(int64_t timeout_ms, int64_t deadline);
int pyclient_wait_over(int64_t timeout_ms, int64_t deadline);

/* The signals that end a wait: every signal but those the kernel raises
 * for a fault of the thread, as a set to block and as the list for
 * shoal_set_interrupt_signals(). */
struct pyshoal_signals {
	sigset_t set;
	int list[NSIG];
	size_t n;
};
const struct pyshoal_signals *pyshoal_wait_signals(void);

/* One libshoal call that may wait up to timeout_ms, on arg's behalf. */
typedef int pyshoal_wait_fn(void *arg, int64_t timeout_ms);

/*
 * Runs a call that may wait timeout_ms (-1 forever) with the GIL released,
 * as often as signals interrupt it: after each SHOAL_EINTR the Python
 * signal handlers run, and the call goes on for the time left. A signal is
 * never lost to the moment before the call sleeps: the wait signals are
 * blocked in this thread from the last check for signals until the call
 * sleeps with them unblocked (shoal_set_interrupt_signals), so one that
 * arrives in between ends the sleep at once.
 * Returns fn's result; timeout_rc when the time ran out after an interrupt;
 * SHOAL_ECLOSED when *closed (may be NULL) was set meanwhile; or
 * PYSHOAL_PYERR when a handler raised (Ctrl-C).
 */
int pyshoal_wait(pyshoal_wait_fn *fn, void *arg, int64_t timeout_ms,
                 int timeout_rc, const int *closed);
/* One libshoal call that does not wait, on arg's behalf. */
typedef int pyclient_fn(shoal_client *c, void *arg);
/* Runs fn on self's connection with the GIL released. A failure raises:
 * SHOAL_ENOTFOUND as ObjectNotFound(missing) when missing is not NULL,
 * any other code as pyclient_fail does (what names the call). Returns
 * fn's code; < 0 (also when no connection could be had) means an exception
 * is set. */
int pyclient_call(pyclient_object *self, const char *what, PyObject *missing,
                  pyclient_fn *fn, void *arg);
/* A str name as UTF-8 (borrowed from obj). 0 or -1 with an exception. */
int pyclient_parse_name(PyObject *obj, const char **name, Py_ssize_t *len);
/* expected_version: None gives *pv NULL, an int gives *pv = v. */
int pyclient_parse_version(PyObject *obj, uint64_t *v, const uint64_t **pv);

/* How a name is set: compare-and-set (ev NULL: none), time to live in ms
 * (0: none) and SHOAL_NAME_* flags. */
struct pyname_opts {
	const uint64_t *ev;
	uint64_t ttl_ms;
	unsigned flags;
};

/* _shoal_ops.c: the Client methods that talk to the daemon (see the
 * method table in _shoal_client.c for their Python signatures) */
PyObject *pyops_create(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pyops_seal(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pyops_abort(PyObject *self, PyObject *id);
PyObject *pyops_put(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pyops_get(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pyops_get_name(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pyops_set_name(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pyops_delete_name(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pyops_list_names(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pyops_delete(PyObject *self, PyObject *ids);
PyObject *pyops_contains(PyObject *self, PyObject *id);
PyObject *pyops_evict(PyObject *self, PyObject *nbytes);
PyObject *pyops_list(PyObject *self, PyObject *unused);
PyObject *pyops_stats(PyObject *self, PyObject *unused);

/* _shoal_names.c: expiry, a name's metadata, prefixes, the daemon's pid */
/* The tuple (name, ObjectID, version, data_size, metadata_size, flags,
 * ttl_ms) of a shoal_name_info; NULL with an exception set. */
PyObject *pyname_info_tuple(pyshoal_state *st, const shoal_name_info *n);
PyObject *pynames_expire(PyObject *self, PyObject *args, PyObject *kw);
PyObject *pynames_persist(PyObject *self, PyObject *name);
PyObject *pynames_name_info(PyObject *self, PyObject *name);
PyObject *pynames_delete_prefix(PyObject *self, PyObject *prefix);
PyObject *pynames_daemon_pid(PyObject *self, PyObject *unused);

/* _shoal_events.c: Subscription and Event */
extern PyType_Spec pysub_spec;
/* Creates Event and Subscription and adds them and the EVENT_* constants
 * to m. 0 or -1 with an exception set. */
int pysub_add_types(PyObject *m, pyshoal_state *st);

/* _shoal_spawn.c */
/*
 * Makes sure a daemon serves path: takes an flock on "<path>.lock", checks
 * again, and if nobody serves the socket starts `binary serve -s path
 * args...` detached (new session, stdio to /dev/null and "<path>.log"),
 * then waits up to timeout_ms for it to answer. Returns 1 if it started
 * one, 0 if one was already serving; -1 with an exception set on failure
 * (StoreUnavailable carrying the tail of the daemon's log).
 * Call with the GIL held; it is released while waiting.
 */
int pyspawn_ensure(pyshoal_state *st, const char *binary, PyObject *args,
                   const char *path, int64_t timeout_ms);
PyObject *pyspawn_ensure_daemon(PyObject *module, PyObject *args,
                                PyObject *kwargs);

/* _shoal_arrow.c */
/*
 * batch_layout(buffer): for an Arrow IPC stream that starts with a schema
 * message and then a record batch (how stored frames are written), the
 * tuple (rows, nodes, buffers): nodes flat (length, null_count) per field
 * node, buffers flat (position in buffer, length) per body buffer, in the
 * message's order. None for any other stream, or one whose offsets do not
 * lie inside buffer (nothing in it is trusted). NULL with an exception if
 * obj has no buffer interface.
 */
PyObject *pyarrow_batch_layout(PyObject *module, PyObject *obj);

#endif /* SHOAL_PY_SHOAL_H */
