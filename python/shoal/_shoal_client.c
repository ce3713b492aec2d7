/*
 * _shoal_client.c - shoal._shoal.Client and its connections (the methods
 * that talk to the daemon are in _shoal_ops.c).
 *
 * A Client is bound to a socket path, not to one connection. Each call
 * takes the current _Connection and opens a new one when there is none, when
 * the process forked since it was opened (the inherited one belongs to the
 * parent: libshoal answers SHOAL_EFORKED on it), or when the daemon went
 * away on an earlier call and libshoal could not reconnect it.
 *
 * Restarts: libshoal reconnects a connection by itself on the next call
 * after its daemon went away, and repeats the calls that are safe to
 * repeat, so the first call after a restart succeeds. With `autostart`
 * set, each connection's restart hook starts a daemon (pyspawn_ensure,
 * under the same lock as at connect: exactly one among many processes)
 * when the reconnect finds none. A call that still fails raises
 * StoreUnavailable, and the next call opens a new connection.
 *
 * Calls that may wait (get or get_name with a timeout other than 0) run on
 * a spare connection from a small pool: libshoal serialises the requests of
 * one connection, and a wait must not hold up the other threads' requests.
 * Every libshoal call runs with the GIL released. Connections are
 * interruptible (shoal_set_interruptible): a signal ends a wait at once, so
 * Ctrl-C works without cutting waits into slices (see _shoal_ops.c).
 *
 * Everything that touches Python objects (the pool, the current
 * connection, a connection's `created` dict) runs with the GIL held, and a
 * connection swapped out while another thread used it stays alive through
 * that thread's reference: no locks of our own.
 *
 * Object and name arguments: IDs are ObjectID or 20 bytes; names are str
 * (UTF-8). Timeouts are integer milliseconds (-1 forever, 0 no wait); the
 * Python layer converts from seconds.
 */
#include "_shoal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <structmember.h>

#include "layout.h"

/* ------------------------------------------------------------ connection */

static void pyconn_dealloc(PyObject *self)
{
	pyconn_object *c = (pyconn_object *)self;
	PyTypeObject *tp = Py_TYPE(self);

	if (c->client) {
		/* Unmapping a large arena takes milliseconds. */
		PyThreadState *ts = PyEval_SaveThread();

		shoal_disconnect(c->client);
		PyEval_RestoreThread(ts);
	}
	Py_XDECREF(c->created);
	Py_XDECREF(c->autostart);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyType_Slot pyconn_slots[] = {
        {Py_tp_doc, "One connection to the daemon and its arena mapping "
                    "(internal)."},
        {Py_tp_dealloc, pyconn_dealloc},
        {0, NULL},
};

PyType_Spec pyconn_spec = {
        .name = "shoal._Connection",
        .basicsize = sizeof(pyconn_object),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
        .slots = pyconn_slots,
};

/*
 * Opens a connection to path with the GIL released. Returns a new
 * reference; or NULL with *rc set to the libshoal code (no exception set)
 * or to PYSHOAL_PYERR (an exception set).
 */
static pyconn_object *pyconn_open(pyshoal_state *st, const char *path, int *rc)
{
	pyconn_object *c;
	shoal_client *client = NULL;
	PyThreadState *ts;

	ts = PyEval_SaveThread();
	*rc = shoal_connect(path, &client);
	PyEval_RestoreThread(ts);
	if (*rc < 0)
		return NULL;
	c = (pyconn_object *)st->conn_type->tp_alloc(st->conn_type, 0);
	if (!c || !(c->created = PyDict_New())) {
		if (c)
			c->client = client;
		else
			shoal_disconnect(client);
		Py_XDECREF(c);
		*rc = PYSHOAL_PYERR;
		return NULL;
	}
	c->client = client;
	c->pid = getpid();
	/* A signal (Ctrl-C) ends a wait; the caller runs the handlers
	 * (pyshoal_wait). */
	shoal_set_interruptible(client, 1);
	shoal_set_interrupt_signals(client, pyshoal_wait_signals()->list,
	                            pyshoal_wait_signals()->n);
	return c;
}

static int pyconn_usable(pyconn_object *c)
{
	return c && !c->broken && c->pid == getpid();
}

/* Marks c broken after a code that means its socket is gone. */
static void pyconn_note(pyconn_object *c, int rc)
{
	if (rc == SHOAL_EUNAVAILABLE || rc == SHOAL_EPROTO ||
	    rc == SHOAL_EFORKED || rc == SHOAL_ECLOSED)
		c->broken = 1;
}

/* ---------------------------------------------------------------- client */

pyshoal_state *pyclient_state(pyclient_object *self)
{
	return pyshoal_state_of_type(Py_TYPE(self));
}

/*
 * libshoal's restart hook: starts a daemon as connect() would. Runs inside
 * a libshoal call, which released the GIL; takes it for the spawn. An
 * error is reported as unraisable: the failed call raises StoreUnavailable.
 */
static int pyconn_restart_hook(void *ctx, const char *path)
{
	pyconn_object *c = ctx;
	PyGILState_STATE g = PyGILState_Ensure();
	const char *bin;
	PyObject *args;
	long long tmo;
	int rc = SHOAL_EUNAVAILABLE;

	if (PyArg_ParseTuple(c->autostart, "sOL", &bin, &args, &tmo) &&
	    pyspawn_ensure(c->st, bin, args, path, tmo) >= 0)
		rc = 0;
	if (PyErr_Occurred())
		PyErr_WriteUnraisable(NULL);
	PyGILState_Release(g);
	return rc;
}

/*
 * Opens a new connection for self, starting a daemon first when none
 * serves the path and autostart is set. Returns a new reference or NULL
 * with an exception set.
 */
static pyconn_object *client_open(pyclient_object *self)
{
	pyshoal_state *st = pyclient_state(self);
	pyconn_object *c;
	int rc;

	if (!st)
		return NULL;
	if (self->closed) {
		pyshoal_raise(st, SHOAL_ECLOSED, "shoal client");
		return NULL;
	}
	c = pyconn_open(st, self->path, &rc);
	if (!c && rc == SHOAL_EUNAVAILABLE && self->autostart != Py_None) {
		const char *bin;
		PyObject *args;
		long long tmo;

		if (!PyArg_ParseTuple(self->autostart, "sOL", &bin, &args,
		                      &tmo))
			return NULL;
		if (pyspawn_ensure(st, bin, args, self->path, tmo) < 0)
			return NULL;
		c = pyconn_open(st, self->path, &rc);
	}
	if (c && self->autostart != Py_None) {
		Py_INCREF(self->autostart);
		c->autostart = self->autostart;
		c->st = st;
		shoal_set_restart_hook(c->client, pyconn_restart_hook, c);
	}
	if (!c && rc != PYSHOAL_PYERR) {
		PyObject *what =
		        PyUnicode_FromFormat("connect to %s", self->path);

		if (what) {
			pyshoal_raise(st, rc, PyUnicode_AsUTF8(what));
			Py_DECREF(what);
		}
	}
	return c;
}

/* The current connection (a new reference), reconnecting if needed. */
pyconn_object *pyclient_conn(pyclient_object *self)
{
	pyconn_object *c = self->conn;

	if (pyconn_usable(c)) {
		Py_INCREF(c);
		return c;
	}
	c = client_open(self);
	if (!c)
		return NULL;
	/* Another thread may have reconnected while the GIL was released. */
	if (pyconn_usable(self->conn)) {
		Py_DECREF(c);
		c = self->conn;
	} else {
		Py_XSETREF(self->conn, c);
	}
	Py_INCREF(c);
	return c;
}

/* A connection for a call that may wait: a spare one, or a new one. */
static pyconn_object *client_wait_conn(pyclient_object *self)
{
	Py_ssize_t n;

	while ((n = PyList_GET_SIZE(self->pool)) > 0) {
		pyconn_object *c =
		        (pyconn_object *)PyList_GET_ITEM(self->pool, n - 1);

		Py_INCREF(c);
		if (PyList_SetSlice(self->pool, n - 1, n, NULL) < 0) {
			Py_DECREF(c);
			return NULL;
		}
		if (pyconn_usable(c))
			return c;
		Py_DECREF(c);
	}
	return client_open(self);
}

/* Gives a wait connection back (steals the reference). */
static void client_put_back(pyclient_object *self, pyconn_object *c)
{
	if (pyconn_usable(c) && !self->closed &&
	    PyList_GET_SIZE(self->pool) < PYSHOAL_POOL_MAX)
		PyList_Append(self->pool, (PyObject *)c);
	Py_DECREF(c);
}

pyconn_object *pyclient_conn_for(pyclient_object *self, int64_t timeout_ms)
{
	return timeout_ms != 0 ? client_wait_conn(self) : pyclient_conn(self);
}

void pyclient_done_with(pyclient_object *self, pyconn_object *c,
                        int64_t timeout_ms)
{
	if (timeout_ms != 0)
		client_put_back(self, c);
	else
		Py_DECREF(c);
}

/* Raises for a failed call on c and marks c broken if needed. */
PyObject *pyclient_fail(pyclient_object *self, pyconn_object *c, int rc,
                        const char *what)
{
	if (c)
		pyconn_note(c, rc);
	if (rc == SHOAL_EUNAVAILABLE) {
		/* The daemon went away: the other connections went with it,
		 * and must not fail one more call each. */
		if (self->conn)
			self->conn->broken = 1;
		if (self->pool)
			PyList_SetSlice(self->pool, 0,
			                PyList_GET_SIZE(self->pool), NULL);
	}
	if (rc == PYSHOAL_PYERR)
		return NULL;
	return pyshoal_raise(pyclient_state(self), rc, what);
}

int64_t pyclient_time_left(int64_t timeout_ms, int64_t deadline)
{
	int64_t left;

	if (timeout_ms <= 0)
		return timeout_ms;
	left = deadline - pyshoal_now_ms();
	return left > 0 ? left : 0;
}

int pyclient_wait_over(int64_t timeout_ms, int64_t deadline)
{
	return timeout_ms == 0 ||
	       (timeout_ms > 0 && pyshoal_now_ms() >= deadline);
}

const struct pyshoal_signals *pyshoal_wait_signals(void)
{
	/* A blocked fault signal would kill the process instead. */
	static const int faults[] = {SIGSEGV, SIGBUS,  SIGFPE,
	                             SIGILL,  SIGTRAP, SIGSYS};
	static struct pyshoal_signals sigs;
	static int ready;

	if (ready) /* filled once, under the GIL */
		return &sigs;
	sigfillset(&sigs.set);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(&sigs.set, faults[i]);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&sigs.set, sig) == 1)
			sigs.list[sigs.n++] = sig;
	ready = 1;
	return &sigs;
}

int pyshoal_wait(pyshoal_wait_fn *fn, void *arg, int64_t timeout_ms,
                 int timeout_rc, const int *closed)
{
	int64_t deadline = pyshoal_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		int64_t left = pyclient_time_left(timeout_ms, deadline);
		PyThreadState *ts;
		sigset_t old;
		int rc;

		/* A signal that arrives once they are blocked stays pending
		 * until the call sleeps with them unblocked; one that came
		 * before runs its handler here. */
		if (left != 0) {
			pthread_sigmask(SIG_BLOCK, &pyshoal_wait_signals()->set,
			                &old);
			if (PyErr_CheckSignals() < 0) {
				pthread_sigmask(SIG_SETMASK, &old, NULL);
				return PYSHOAL_PYERR;
			}
		}
		ts = PyEval_SaveThread();
		rc = fn(arg, left);
		PyEval_RestoreThread(ts);
		if (left != 0) /* delivers what is still pending */
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != SHOAL_EINTR)
			return rc;
		if (closed && *closed)
			return SHOAL_ECLOSED;
		if (PyErr_CheckSignals() < 0)
			return PYSHOAL_PYERR;
		if (pyclient_wait_over(timeout_ms, deadline))
			return timeout_rc;
	}
}

int pyclient_call(pyclient_object *self, const char *what, PyObject *missing,
                  pyclient_fn *fn, void *arg)
{
	pyshoal_state *st = pyclient_state(self);
	pyconn_object *c = st ? pyclient_conn(self) : NULL;
	PyThreadState *ts;
	int rc;

	if (!c)
		return -1; /* with the exception of pyclient_conn */
	ts = PyEval_SaveThread();
	rc = fn(c->client, arg);
	PyEval_RestoreThread(ts);
	if (rc == SHOAL_ENOTFOUND && missing)
		PyErr_SetObject(st->object_not_found, missing);
	else if (rc < 0)
		pyclient_fail(self, c, rc, what);
	Py_DECREF(c);
	return rc;
}

int pyclient_parse_name(PyObject *obj, const char **name, Py_ssize_t *len)
{
	if (!PyUnicode_Check(obj)) {
		PyErr_Format(PyExc_TypeError, "a name is a str, not %.100s",
		             Py_TYPE(obj)->tp_name);
		return -1;
	}
	*name = PyUnicode_AsUTF8AndSize(obj, len);
	return *name ? 0 : -1;
}

/* expected_version: None (unconditional) or an int (0: must not exist). */
int pyclient_parse_version(PyObject *obj, uint64_t *v, const uint64_t **pv)
{
	*pv = NULL;
	if (!obj || obj == Py_None)
		return 0;
	*v = PyLong_AsUnsignedLongLong(obj);
	if (*v == (uint64_t)-1 && PyErr_Occurred())
		return -1;
	*pv = v;
	return 0;
}

static int client_init(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path", "autostart", NULL};
	pyclient_object *self = (pyclient_object *)obj;
	PyObject *path = Py_None, *autostart = Py_None, *bytes = NULL;
	char def[4096];
	const char *p;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$O:Client", kwlist, &path,
	                                 &autostart))
		return -1;
	if (self->path) {
		PyErr_SetString(PyExc_RuntimeError, "Client already set up");
		return -1;
	}
	if (autostart != Py_None &&
	    (!PyTuple_Check(autostart) || PyTuple_GET_SIZE(autostart) != 3)) {
		PyErr_SetString(
		        PyExc_TypeError,
		        "autostart is None or (binary, args, timeout_ms)");
		return -1;
	}
	if (path == Py_None) {
		int rc = shoal_default_socket(def, sizeof(def));

		if (rc < 0) {
			pyshoal_raise(pyclient_state(self), rc,
			              rc == SHOAL_EUNSAFE ? def
			                                  : "default socket");
			return -1;
		}
		p = def;
	} else {
		if (!PyUnicode_FSConverter(path, &bytes))
			return -1;
		p = PyBytes_AS_STRING(bytes);
	}
	self->path = PyMem_Malloc(strlen(p) + 1);
	if (!self->path) {
		Py_XDECREF(bytes);
		PyErr_NoMemory();
		return -1;
	}
	strcpy(self->path, p);
	Py_XDECREF(bytes);
	self->pool = PyList_New(0);
	if (!self->pool)
		return -1;
	Py_INCREF(autostart);
	Py_XSETREF(self->autostart, autostart);
	self->conn = client_open(self);
	return self->conn ? 0 : -1;
}

static void client_dealloc(PyObject *obj)
{
	pyclient_object *self = (pyclient_object *)obj;
	PyTypeObject *tp = Py_TYPE(obj);

	PyObject_GC_UnTrack(obj);
	if (self->weakrefs)
		PyObject_ClearWeakRefs(obj);
	Py_CLEAR(self->conn);
	Py_CLEAR(self->pool);
	Py_CLEAR(self->autostart);
	PyMem_Free(self->path);
	tp->tp_free(obj);
	Py_DECREF(tp);
}

static int client_traverse(PyObject *obj, visitproc visit, void *arg)
{
	pyclient_object *self = (pyclient_object *)obj;

	Py_VISIT(Py_TYPE(obj));
	Py_VISIT(self->pool);
	Py_VISIT(self->autostart);
	return 0;
}

static int client_clear(PyObject *obj)
{
	pyclient_object *self = (pyclient_object *)obj;

	Py_CLEAR(self->pool);
	Py_CLEAR(self->autostart);
	return 0;
}

/* ----------------------------------------------------------- life cycle */

/* Drops the client's connection and spare connections (Buffers of them
 * keep them alive as long as they need). */
static void drop_conns(pyclient_object *self)
{
	Py_CLEAR(self->conn);
	if (self->pool)
		PyList_SetSlice(self->pool, 0, PyList_GET_SIZE(self->pool),
		                NULL);
}

static PyObject *client_close(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	pyclient_object *self = (pyclient_object *)obj;

	self->closed = 1;
	drop_conns(self);
	Py_RETURN_NONE;
}

/* Drops the connections inherited from the parent (called in a forked
 * child). */
static PyObject *client_after_fork(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	drop_conns((pyclient_object *)obj);
	Py_RETURN_NONE;
}

static PyObject *client_reconnect(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	pyclient_object *self = (pyclient_object *)obj;
	pyconn_object *c;

	if (self->conn)
		self->conn->broken = 1;
	c = pyclient_conn(self);
	if (!c)
		return NULL;
	Py_DECREF(c);
	Py_RETURN_NONE;
}

static PyObject *client_get_path(PyObject *obj, void *Py_UNUSED(unused))
{
	return PyUnicode_DecodeFSDefault(((pyclient_object *)obj)->path);
}

static PyObject *client_get_closed(PyObject *obj, void *Py_UNUSED(unused))
{
	return PyBool_FromLong(((pyclient_object *)obj)->closed);
}

/* (capacity, daemon pid, arena base address, mapped bytes) of the current
 * connection, connecting if needed. */
static PyObject *client_get_arena(PyObject *obj, void *Py_UNUSED(unused))
{
	pyconn_object *c = pyclient_conn((pyclient_object *)obj);
	const struct layout_header *h;
	shoal_arena_info a;
	PyObject *r;

	if (!c)
		return NULL;
	shoal_arena(c->client, &a);
	h = (const struct layout_header *)a.base;
	r = Py_BuildValue("{s:K s:K s:K s:K}", "capacity",
	                  (unsigned long long)a.capacity, "daemon_pid",
	                  (unsigned long long)h->daemon_pid, "base",
	                  (unsigned long long)(uintptr_t)a.base, "map_size",
	                  (unsigned long long)a.map_size);
	Py_DECREF(c);
	return r;
}

static PyObject *client_repr(PyObject *obj)
{
	pyclient_object *self = (pyclient_object *)obj;

	return PyUnicode_FromFormat("<shoal._shoal.Client %s%s>",
	                            self->path ? self->path : "?",
	                            self->closed ? " (closed)" : "");
}

#define KW    (METH_VARARGS | METH_KEYWORDS)
#define FN(f) (PyCFunction)(void (*)(void))(f)

static PyMethodDef client_methods[] = {
        {"create", FN(pyops_create), KW,
         "create(id, size, metadata=b'', timeout=0, segments=None) -> "
         "Buffer\n\n"
         "Creates an object and returns its writable data. timeout (ms) "
         "waits for space instead of raising StoreFull at once. segments: "
         "(offset, source, source_offset, size, width, add) tuples copied "
         "in while the object's memory is reserved (see "
         "shoal_create_from)."},
        {"seal", FN(pyops_seal), KW,
         "seal(id, name=None, expected_version=None) -> int | None\n\n"
         "Seals a created object; with name, then points the name at it "
         "(compare-and-set with expected_version; on failure the object "
         "is deleted). Returns the name's new version."},
        {"abort", pyops_abort, METH_O,
         "abort(id)\n\nDrops an unsealed object this client created."},
        {"put", FN(pyops_put), KW,
         "put(id, parts, metadata=b'', name=None, expected_version=None, "
         "timeout=0) -> int | None\n\nCreates an object holding the "
         "bytes-like parts, each starting at a multiple of PART_ALIGN, "
         "seals it, optionally names it, and drops the creator's hold; "
         "copies run with the GIL released."},
        {"get", FN(pyops_get), KW,
         "get(ids, timeout=0) -> list[Buffer | None]\n\nGets objects in "
         "one round trip, waiting up to timeout ms (-1: forever) for "
         "missing ones; None for objects not available in time."},
        {"get_name", FN(pyops_get_name), KW,
         "get_name(name, timeout=0) -> (Buffer, version)\n\nResolves a "
         "name and pins its object in one round trip, waiting up to "
         "timeout ms for the name to appear. ObjectNotFound otherwise."},
        {"set_name", FN(pyops_set_name), KW,
         "set_name(name, id, expected_version=None, ttl=0, evictable=False) "
         "-> int\n\nttl: time to live in ms (0: none)."},
        {"delete_name", FN(pyops_delete_name), KW,
         "delete_name(name, expected_version=None)"},
        {"list_names", FN(pyops_list_names), KW,
         "list_names(prefix=None) -> list[(name, ObjectID, version, "
         "data_size, metadata_size, flags, ttl_ms)]\n\nttl_ms is -1 for a "
         "name without expiry; flags has NAME_EVICTABLE."},
        {"expire", FN(pynames_expire), KW,
         "expire(name, ttl)\n\nGives a name a time to live of ttl ms "
         "(0: it expires now). ObjectNotFound if there is no such name."},
        {"persist", pynames_persist, METH_O,
         "persist(name)\n\nTakes a name's time to live away."},
        {"name_info", pynames_name_info, METH_O,
         "name_info(name) -> (name, ObjectID, version, data_size, "
         "metadata_size, flags, ttl_ms)\n\nOne name's metadata; "
         "ObjectNotFound if there is no such name."},
        {"delete_prefix", pynames_delete_prefix, METH_O,
         "delete_prefix(prefix) -> int\n\nDeletes every name starting "
         "with prefix ('' : every name) in one step; returns how many."},
        {"daemon_pid", pynames_daemon_pid, METH_NOARGS,
         "daemon_pid() -> int\n\nThe daemon's process ID (SO_PEERCRED)."},
        {"delete", pyops_delete, METH_O,
         "delete(ids) -> list[int]\n\nDeletes objects; per ID 0 or a "
         "negative code."},
        {"contains", pyops_contains, METH_O,
         "contains(id) -> int\n\nSTATE_ABSENT, STATE_CREATED or "
         "STATE_SEALED."},
        {"evict", pyops_evict, METH_O,
         "evict(nbytes) -> int\n\nEvicts unnamed, unheld objects; returns "
         "the bytes freed."},
        {"list", pyops_list, METH_NOARGS,
         "list() -> list[(ObjectID, state, data_size, metadata_size, "
         "holders, names, create_time_ns, construct_ms)]"},
        {"stats", pyops_stats, METH_NOARGS,
         "stats() -> dict\n\nThe store's counters, with the keys of "
         "`shoal stats --json`."},
        {"close", client_close, METH_NOARGS,
         "close()\n\nDrops the connections; buffers still alive keep "
         "theirs until they die."},
        {"reconnect", client_reconnect, METH_NOARGS,
         "reconnect()\n\nOpens a new connection now."},
        {"_after_fork", client_after_fork, METH_NOARGS, NULL},
        {NULL, NULL, 0, NULL},
};

static PyGetSetDef client_getset[] = {
        {"path", client_get_path, NULL, "The socket path.", NULL},
        {"closed", client_get_closed, NULL, "Whether close() was called.",
         NULL},
        {"arena", client_get_arena, NULL,
         "dict(capacity, daemon_pid, base, map_size) of the arena.", NULL},
        {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef client_members[] = {
        {"__weaklistoffset__", T_PYSSIZET, offsetof(pyclient_object, weakrefs),
         READONLY, NULL},
        {NULL, 0, 0, 0, NULL},
};

static PyType_Slot client_slots[] = {
        {Py_tp_doc, "Client(path=None, *, autostart=None)\n--\n\n"
                    "A client of the daemon at path (default: "
                    "default_socket()). Reconnects by itself after a fork "
                    "or after the daemon went away. autostart = (binary, "
                    "args, timeout_ms) starts a daemon when none serves "
                    "the path."},
        {Py_tp_init, client_init},
        {Py_tp_new, PyType_GenericNew},
        {Py_tp_dealloc, client_dealloc},
        {Py_tp_traverse, client_traverse},
        {Py_tp_clear, client_clear},
        {Py_tp_repr, client_repr},
        {Py_tp_methods, client_methods},
        {Py_tp_getset, client_getset},
        {Py_tp_members, client_members},
        {0, NULL},
};

PyType_Spec pyclient_spec = {
        .name = "shoal._shoal.Client",
        .basicsize = sizeof(pyclient_object),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
        .slots = client_slots,
};
