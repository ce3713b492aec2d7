/*
 * _shoal_events.c - shoal._shoal.Subscription and shoal.Event: the
 * daemon's notifications (shoal_subscribe and friends in shoal.h).
 *
 * A Subscription owns one shoal_subscription, a connection of its own on
 * which the daemon sends an event for every seal, delete, eviction and name
 * change, in order. next() waits with the GIL released for its whole
 * timeout: the subscription is interruptible, so a signal ends the wait
 * (its handler runs; Ctrl-C raises, others let the wait go on), and
 * close() from another thread interrupts it at once. An event comes back as an
 * Event, a struct sequence (a named tuple) whose kind is a str.
 *
 * Lifetime: close() may be called while another thread waits in next();
 * `busy` counts those waits, and the last one to return frees the
 * shoal_subscription. All of this state is only touched with the GIL held.
 *
 * Fork: a subscription belongs to the process that opened it. In a child,
 * next() raises StoreUnavailable (code EFORKED) without touching the
 * socket, and _after_fork() (called by the Python layer from an at-fork
 * hook) frees the child's copy so that the daemon sees the subscription
 * end when the parent closes it. A child subscribes again on its own: the
 * events between fork and that new subscription are not replayed.
 *
 * The end of a subscription: when the daemon closes it (after an OVERFLOW
 * event, which next() returns first, or when the daemon stops) next()
 * raises StoreUnavailable, with a message that says which.
 *
 * The module also exports the event's wire format (PROTO_* constants; the
 * asserts below pin the offsets that shoal.plasma's struct formats use),
 * for decode_notifications() of bytes read from a notification socket.
 */
#include "_shoal.h"

#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <structmember.h>

#include "protocol.h"

/* shoal/plasma.py reads a header as "<IHHII" and an event as "<II20sIQQ". */
_Static_assert(offsetof(struct proto_header, request_id) == 8, "header");
_Static_assert(offsetof(struct proto_header, body_len) == 12, "header");
_Static_assert(offsetof(struct proto_event, id) == 8, "event layout");
_Static_assert(offsetof(struct proto_event, metadata_size) == 28, "event");
_Static_assert(offsetof(struct proto_event, data_size) == 32, "event");
_Static_assert(offsetof(struct proto_event, version) == 40, "event");

typedef struct {
	PyObject_HEAD shoal_subscription *sub; /* NULL once freed */
	pid_t pid;                             /* process that subscribed */
	int busy;       /* next() calls waiting with the GIL released */
	int closed;     /* close() was called */
	int overflowed; /* an OVERFLOW event was returned */
	int snapshot;
	PyObject *path; /* str, or None for the default socket */
	PyObject *weakrefs;
} pysub_object;

/* The names of enum shoal_event_kind, in order from SHOAL_EVENT_SEALED. */
static const char *const kind_names[] = {
        "sealed",       "deleted",  "evicted",      "name_set",
        "name_deleted", "overflow", "snapshot_end", "name_expired",
        "name_evicted", "name_ttl",
};

#define NKINDS ((int)(sizeof(kind_names) / sizeof(kind_names[0])))

_Static_assert(SHOAL_EVENT_KIND_MAX == NKINDS, "one name per kind");

/* ----------------------------------------------------------------- Event */

static PyStructSequence_Field event_fields[] = {
        {"kind", "'sealed', 'deleted', 'evicted', 'name_set', "
                 "'name_deleted', 'name_expired', 'name_evicted', "
                 "'name_ttl', 'overflow' or 'snapshot_end'"},
        {"id", "the ObjectID (for a name event: the object the name points "
               "or pointed at); None for overflow and snapshot_end"},
        {"data_size", "the object's data size in bytes (0 if no object)"},
        {"metadata_size", "the object's metadata size in bytes"},
        {"name", "the name, for the name_* kinds; else None"},
        {"version", "the name's version, for name events; else 0"},
        {"seq", "1, 2, ... on this subscription"},
        {"expires_ms", "name_ttl: when the name now expires, in ms since "
                       "the Unix epoch; 0 when it no longer expires"},
        {NULL, NULL},
};

static PyStructSequence_Desc event_desc = {
        .name = "shoal.Event",
        .doc = "One notification of a shoal Subscription: (kind, id, "
               "data_size, metadata_size, name, version, seq).",
        .fields = event_fields,
        .n_in_sequence = 7,
};

int pysub_add_types(PyObject *m, pyshoal_state *st)
{
	st->event_type = PyStructSequence_NewType(&event_desc);
	if (!st->event_type ||
	    PyModule_AddObjectRef(m, "Event", (PyObject *)st->event_type) < 0)
		return -1;
	st->event_kinds = PyTuple_New(NKINDS);
	if (!st->event_kinds)
		return -1;
	for (int i = 0; i < NKINDS; i++) {
		PyObject *s = PyUnicode_InternFromString(kind_names[i]);

		if (!s)
			return -1;
		PyTuple_SET_ITEM(st->event_kinds, i, s);
	}
	st->sub_type =
	        (PyTypeObject *)PyType_FromModuleAndSpec(m, &pysub_spec, NULL);
	if (!st->sub_type ||
	    PyModule_AddObjectRef(m, "Subscription", (PyObject *)st->sub_type) <
	            0)
		return -1;
#define KIND(k)                                                           \
	if (PyModule_AddIntConstant(m, "EVENT_" #k, SHOAL_EVENT_##k) < 0) \
	return -1
	KIND(SEALED);
	KIND(DELETED);
	KIND(EVICTED);
	KIND(NAME_SET);
	KIND(NAME_DELETED);
	KIND(OVERFLOW);
	KIND(SNAPSHOT_END);
	KIND(NAME_EXPIRED);
	KIND(NAME_EVICTED);
	KIND(NAME_TTL);
	KIND(KIND_MAX);
#undef KIND
	if (PyModule_AddIntConstant(m, "PROTO_MAGIC", PROTO_MAGIC) < 0 ||
	    PyModule_AddIntConstant(m, "PROTO_VERSION", PROTO_VERSION) < 0 ||
	    PyModule_AddIntConstant(m, "PROTO_EVENT", PROTO_EVENT) < 0 ||
	    PyModule_AddIntConstant(m, "PROTO_HEADER_SIZE",
	                            sizeof(struct proto_header)) < 0 ||
	    PyModule_AddIntConstant(m, "PROTO_EVENT_SIZE",
	                            sizeof(struct proto_event)) < 0)
		return -1;
	return 0;
}

/* A new Event for ev; NULL with an exception set. */
static PyObject *event_new(pyshoal_state *st, const shoal_event *ev)
{
	int named = ev->kind == SHOAL_EVENT_NAME_SET ||
	            ev->kind == SHOAL_EVENT_NAME_DELETED ||
	            ev->kind == SHOAL_EVENT_NAME_EXPIRED ||
	            ev->kind == SHOAL_EVENT_NAME_EVICTED ||
	            ev->kind == SHOAL_EVENT_NAME_TTL;
	int has_id = ev->kind != SHOAL_EVENT_OVERFLOW &&
	             ev->kind != SHOAL_EVENT_SNAPSHOT_END;
	PyObject *e, *items[8];

	if (ev->kind < 1 || ev->kind > NKINDS)
		return pyshoal_raise(st, SHOAL_EPROTO, "Subscription.next");
	items[0] = Py_NewRef(PyTuple_GET_ITEM(st->event_kinds, ev->kind - 1));
	items[1] = has_id ? pyid_new(st, &ev->id) : Py_NewRef(Py_None);
	items[2] = PyLong_FromUnsignedLongLong(ev->data_size);
	items[3] = PyLong_FromUnsignedLong(ev->metadata_size);
	/* Names are UTF-8 when Python wrote them; a C client may have
	 * stored other bytes, which must not make the stream unreadable. */
	items[4] =
	        named ? PyUnicode_DecodeUTF8(ev->name, (Py_ssize_t)ev->name_len,
	                                     "surrogateescape")
	              : Py_NewRef(Py_None);
	items[5] = PyLong_FromUnsignedLongLong(ev->version);
	items[6] = PyLong_FromUnsignedLongLong(ev->seq);
	items[7] = PyLong_FromUnsignedLongLong(ev->expires_ms);
	e = PyStructSequence_New(st->event_type);
	for (int i = 0; i < 8; i++) {
		if (!items[i] || !e) {
			for (int j = i; j < 8; j++)
				Py_XDECREF(items[j]);
			Py_XDECREF(e);
			return NULL;
		}
		PyStructSequence_SetItem(e, i, items[i]);
	}
	return e;
}

/* ---------------------------------------------------------- Subscription */

/* Frees the shoal_subscription (with the GIL released: it unmaps). */
static void sub_free(pysub_object *self)
{
	shoal_subscription *s = self->sub;
	PyThreadState *ts;

	if (!s)
		return;
	self->sub = NULL;
	ts = PyEval_SaveThread();
	shoal_unsubscribe(s);
	PyEval_RestoreThread(ts);
}

/* Raises unless self may be used from this process. */
static int sub_check(pysub_object *self, pyshoal_state *st, const char *what)
{
	if (self->pid != getpid()) {
		pyshoal_raise_msg(
		        st, SHOAL_EFORKED,
		        PyUnicode_FromFormat(
		                "%s: this subscription was opened by process "
		                "%d before a fork; a child must subscribe "
		                "again "
		                "(events are not shared across fork)",
		                what, (int)self->pid));
		return -1;
	}
	if (self->closed || !self->sub) {
		pyshoal_raise_msg(
		        st, SHOAL_ECLOSED,
		        PyUnicode_FromFormat("%s: the subscription is closed",
		                             what));
		return -1;
	}
	return 0;
}

static PyObject *sub_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"path", "snapshot", "ttl", NULL};
	pyshoal_state *st = pyshoal_state_of_type(tp);
	PyObject *path = Py_None, *bytes = NULL;
	shoal_subscription *s = NULL;
	const char *p = NULL;
	pysub_object *self;
	PyThreadState *ts;
	int snapshot = 0, ttl = 0, rc;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "|O$pp:Subscription",
	                                        kwlist, &path, &snapshot, &ttl))
		return NULL;
	if (path != Py_None) {
		if (!PyUnicode_FSConverter(path, &bytes))
			return NULL;
		p = PyBytes_AS_STRING(bytes);
	}
	ts = PyEval_SaveThread();
	rc = shoal_subscribe(p,
	                     (snapshot ? SHOAL_SUBSCRIBE_SNAPSHOT : 0) |
	                             (ttl ? SHOAL_SUBSCRIBE_TTL : 0),
	                     &s);
	PyEval_RestoreThread(ts);
	Py_XDECREF(bytes);
	if (rc < 0) {
		PyObject *what =
		        path == Py_None
		                ? PyUnicode_FromString(
		                          "subscribe to the default socket")
		                : PyUnicode_FromFormat("subscribe to %S", path);

		if (what) {
			pyshoal_raise(st, rc, PyUnicode_AsUTF8(what));
			Py_DECREF(what);
		}
		return NULL;
	}
	self = (pysub_object *)tp->tp_alloc(tp, 0);
	if (!self) {
		shoal_unsubscribe(s);
		return NULL;
	}
	self->sub = s;
	/* Ctrl-C ends a wait in next(); the caller runs the handlers
	 * (pyshoal_wait). */
	shoal_subscription_set_interruptible(s, 1);
	shoal_subscription_set_interrupt_signals(
	        s, pyshoal_wait_signals()->list, pyshoal_wait_signals()->n);
	self->pid = getpid();
	self->snapshot = snapshot;
	self->path = Py_NewRef(path);
	return (PyObject *)self;
}

static void sub_dealloc(PyObject *obj)
{
	pysub_object *self = (pysub_object *)obj;
	PyTypeObject *tp = Py_TYPE(obj);

	if (self->weakrefs)
		PyObject_ClearWeakRefs(obj);
	sub_free(self);
	Py_XDECREF(self->path);
	tp->tp_free(obj);
	Py_DECREF(tp);
}

/* The error for a failed shoal_next_event. */
static PyObject *sub_fail(pysub_object *self, pyshoal_state *st, int rc)
{
	static const char overflow[] =
	        "Subscription.next: the daemon closed the subscription after "
	        "an overflow (events were not read fast enough); subscribe "
	        "again and rebuild what you derived from events";
	static const char gone[] =
	        "Subscription.next: the daemon closed the subscription (it "
	        "stopped or restarted); subscribe again";

	if (rc == SHOAL_EUNAVAILABLE)
		return pyshoal_raise_msg(st, rc,
		                         PyUnicode_FromString(self->overflowed
		                                                      ? overflow
		                                                      : gone));
	if (rc == SHOAL_ECLOSED)
		return pyshoal_raise_msg(
		        st, rc,
		        PyUnicode_FromString("Subscription.next: the "
		                             "subscription was closed"));
	return pyshoal_raise(st, rc, "Subscription.next");
}

struct next_call {
	shoal_subscription *s;
	shoal_event *ev;
};

static int next_fn(void *arg, int64_t timeout_ms)
{
	struct next_call *a = arg;

	return shoal_next_event(a->s, timeout_ms, a->ev);
}

static PyObject *sub_next(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"timeout", NULL};
	pysub_object *self = (pysub_object *)obj;
	pyshoal_state *st = pyshoal_state_of_type(Py_TYPE(obj));
	long long timeout_ms = -1;
	shoal_event ev;
	struct next_call a = {NULL, &ev};
	PyObject *out;
	int rc;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "|L:next", kwlist,
	                                        &timeout_ms))
		return NULL;
	if (sub_check(self, st, "Subscription.next") < 0)
		return NULL;
	a.s = self->sub;
	self->busy++;
	rc = pyshoal_wait(next_fn, &a, timeout_ms, SHOAL_ETIMEDOUT,
	                  &self->closed);
	self->busy--;
	if (rc == SHOAL_ETIMEDOUT) {
		out = Py_NewRef(Py_None);
	} else if (rc == PYSHOAL_PYERR) {
		out = NULL;
	} else if (rc < 0) {
		out = sub_fail(self, st, rc);
	} else {
		if (ev.kind == SHOAL_EVENT_OVERFLOW)
			self->overflowed = 1;
		out = event_new(st,
		                &ev); /* ev.name lives in the subscription */
	}
	if (self->closed && self->busy == 0)
		sub_free(self);
	return out;
}

static PyObject *sub_fileno(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	pysub_object *self = (pysub_object *)obj;
	pyshoal_state *st = pyshoal_state_of_type(Py_TYPE(obj));

	if (!st)
		return NULL;
	if (self->pid != getpid()) {
		sub_check(self, st, "Subscription.fileno"); /* raises */
		return NULL;
	}
	if (self->closed || !self->sub) {
		PyErr_SetString(PyExc_ValueError,
		                "fileno() of a closed subscription");
		return NULL;
	}
	return PyLong_FromLong(shoal_subscription_fd(self->sub));
}

static PyObject *sub_close(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	pysub_object *self = (pysub_object *)obj;

	self->closed = 1;
	/* A waiting next() is woken at once and frees it when it returns. */
	if (self->busy == 0)
		sub_free(self);
	else
		shoal_subscription_interrupt(self->sub);
	Py_RETURN_NONE;
}

/* In a forked child: frees the inherited copy (libshoal does no I/O on a
 * client of another process). The threads counted in busy do not exist
 * in the child. */
static PyObject *sub_after_fork(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	pysub_object *self = (pysub_object *)obj;

	if (self->pid != getpid()) {
		self->busy = 0;
		sub_free(self);
	}
	Py_RETURN_NONE;
}

static PyObject *sub_enter(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	return Py_NewRef(obj);
}

static PyObject *sub_exit(PyObject *obj, PyObject *Py_UNUSED(args))
{
	PyObject *r = sub_close(obj, NULL);

	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

static PyObject *sub_get_closed(PyObject *obj, void *Py_UNUSED(unused))
{
	return PyBool_FromLong(((pysub_object *)obj)->closed);
}

static PyObject *sub_get_snapshot(PyObject *obj, void *Py_UNUSED(unused))
{
	return PyBool_FromLong(((pysub_object *)obj)->snapshot);
}

static PyObject *sub_get_path(PyObject *obj, void *Py_UNUSED(unused))
{
	return Py_NewRef(((pysub_object *)obj)->path);
}

static PyObject *sub_repr(PyObject *obj)
{
	pysub_object *self = (pysub_object *)obj;

	return PyUnicode_FromFormat("<shoal._shoal.Subscription %R%s>",
	                            self->path,
	                            self->closed ? " (closed)" : "");
}

static PyMethodDef sub_methods[] = {
        {"next", (PyCFunction)(void (*)(void))sub_next,
         METH_VARARGS | METH_KEYWORDS,
         "next(timeout=-1) -> Event | None\n\nThe next event, waiting up "
         "to timeout ms (-1: forever, 0: only what has arrived); None when "
         "none came in time. After an 'overflow' event, or when the "
         "daemon stopped, raises StoreUnavailable: subscribe again."},
        {"fileno", sub_fileno, METH_NOARGS,
         "fileno() -> int\n\nThe socket, to wait for readability with "
         "select/poll. Events may already be buffered: call next(0) until "
         "it returns None before waiting on it."},
        {"close", sub_close, METH_NOARGS,
         "close()\n\nEnds the subscription (a next() waiting in another "
         "thread returns within 100 ms)."},
        {"_after_fork", sub_after_fork, METH_NOARGS, NULL},
        {"__enter__", sub_enter, METH_NOARGS, NULL},
        {"__exit__", sub_exit, METH_VARARGS, NULL},
        {NULL, NULL, 0, NULL},
};

static PyGetSetDef sub_getset[] = {
        {"closed", sub_get_closed, NULL, "Whether close() was called.", NULL},
        {"snapshot", sub_get_snapshot, NULL,
         "Whether the subscription started with a snapshot.", NULL},
        {"path", sub_get_path, NULL,
         "The socket path given (None: the default).", NULL},
        {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef sub_members[] = {
        {"__weaklistoffset__", T_PYSSIZET, offsetof(pysub_object, weakrefs),
         READONLY, NULL},
        {NULL, 0, 0, 0, NULL},
};

static PyType_Slot sub_slots[] = {
        {Py_tp_doc,
         "Subscription(path=None, *, snapshot=False)\n--\n\n"
         "The daemon's notifications: an Event for every seal, delete, "
         "eviction and name change, in the order the store made them. "
         "With snapshot, the current objects and names come first (as "
         "'sealed' and 'name_set' events), ended by 'snapshot_end'. "
         "Belongs to the process that opened it."},
        {Py_tp_new, sub_tp_new},
        {Py_tp_dealloc, sub_dealloc},
        {Py_tp_repr, sub_repr},
        {Py_tp_methods, sub_methods},
        {Py_tp_getset, sub_getset},
        {Py_tp_members, sub_members},
        {0, NULL},
};

PyType_Spec pysub_spec = {
        .name = "shoal._shoal.Subscription",
        .basicsize = sizeof(pysub_object),
        .flags = Py_TPFLAGS_DEFAULT,
        .slots = sub_slots,
};
