/*
 * _shoal.c - the module `shoal._shoal`: module state, the exception
 * hierarchy, ObjectID and the module-level functions.
 *
 * Multi-phase initialisation (PEP 489): every type and exception lives in
 * the module state, so the module can be loaded in several interpreters and
 * reloaded without sharing anything. Types find their module state through
 * PyType_GetModuleByDef (a walk of the MRO on older Pythons).
 *
 * Errors: libshoal returns negative codes; pyshoal_raise() turns each into
 * one exception class, under one base `shoal.Error`. Classes that mean
 * something to generic Python code also derive from the matching builtin:
 * ObjectNotFound is a KeyError (a missing name in the mapping API),
 * StoreUnavailable a ConnectionError (an OSError, as Plasma's connect
 * raised), Timeout a TimeoutError, TooBig and InvalidArgument ValueErrors.
 * Every exception carries the libshoal code in its `code` attribute.
 */
#include "_shoal.h"

#include <string.h>
#include <time.h>

static struct PyModuleDef pyshoal_module;

int64_t pyshoal_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

pyshoal_state *pyshoal_state_of_module(PyObject *module)
{
	return (pyshoal_state *)PyModule_GetState(module);
}

/* Finds the module state from an instance's type, also for subclasses
 * defined in Python. Never fails for our own types. */
pyshoal_state *pyshoal_state_of_type(PyTypeObject *tp)
{
#if PY_VERSION_HEX >= 0x030B0000
	PyObject *m = PyType_GetModuleByDef(tp, &pyshoal_module);

	if (!m)
		return NULL;
	return pyshoal_state_of_module(m);
#else
	for (; tp; tp = tp->tp_base) {
		if (tp->tp_flags & Py_TPFLAGS_HEAPTYPE) {
			PyObject *m = PyType_GetModule(tp);

			if (m && PyModule_GetDef(m) == &pyshoal_module)
				return pyshoal_state_of_module(m);
			PyErr_Clear();
		}
	}
	PyErr_SetString(PyExc_TypeError, "not a shoal type");
	return NULL;
#endif
}

/* ---------------------------------------------------------------- errors */

static PyObject *error_class(pyshoal_state *st, int code)
{
	switch (code) {
	case SHOAL_ENOTFOUND:
		return st->object_not_found;
	case SHOAL_EEXISTS:
		return st->object_exists;
	case SHOAL_EFULL:
		return st->store_full;
	case SHOAL_EUNAVAILABLE:
	case SHOAL_ECLOSED:
	case SHOAL_EFORKED:
		return st->store_unavailable;
	case SHOAL_EPROTO:
	case SHOAL_EARENA:
		return st->protocol_error;
	case SHOAL_ETIMEDOUT:
		return st->timeout;
	case SHOAL_ENOTSEALED:
		return st->not_sealed;
	case SHOAL_ESEALED:
		return st->already_sealed;
	case SHOAL_ENOTOWNER:
		return st->not_owner;
	case SHOAL_EVERSION:
		return st->version_conflict;
	case SHOAL_ETOOBIG:
		return st->too_big;
	case SHOAL_EINVAL:
		return st->invalid;
	case SHOAL_EBUSY:
		return st->busy;
	case SHOAL_EFOREIGN:
	case SHOAL_EUNSAFE:
		return PyExc_PermissionError;
	default:
		return NULL;
	}
}

PyObject *pyshoal_raise_msg(pyshoal_state *st, int code, PyObject *msg)
{
	PyObject *cls, *exc, *val;

	if (!msg)
		return NULL;
	if (code == SHOAL_ENOMEM || code == -ENOMEM) {
		Py_DECREF(msg);
		return PyErr_NoMemory();
	}
	cls = error_class(st, code);
	if (!cls) {
		/* A system error: an OSError with errno and context. */
		exc = PyObject_CallFunction(PyExc_OSError, "iO", -code, msg);
		Py_DECREF(msg);
		if (exc) {
			PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
			Py_DECREF(exc);
		}
		return NULL;
	}
	exc = PyObject_CallOneArg(cls, msg);
	Py_DECREF(msg);
	if (!exc)
		return NULL;
	val = PyLong_FromLong(code);
	if (val) {
		PyObject_SetAttrString(exc, "code", val);
		Py_DECREF(val);
	}
	PyErr_SetObject(cls, exc);
	Py_DECREF(exc);
	return NULL;
}

PyObject *pyshoal_raise(pyshoal_state *st, int code, const char *what)
{
	return pyshoal_raise_msg(
	        st, code,
	        PyUnicode_FromFormat("%s: %s", what, shoal_strerror(code)));
}

/* -------------------------------------------------------------- ObjectID */

int pyid_parse(pyshoal_state *st, PyObject *obj, shoal_id *out)
{
	Py_buffer b;

	if (Py_IS_TYPE(obj, st->id_type)) {
		*out = ((pyid_object *)obj)->id;
		return 0;
	}
	if (PyUnicode_Check(obj)) {
		PyErr_Format(PyExc_TypeError,
		             "an object ID is an ObjectID or 20 bytes, not str "
		             "(names are looked up with get/[] by name)");
		return -1;
	}
	if (PyObject_GetBuffer(obj, &b, PyBUF_SIMPLE) < 0) {
		PyErr_Format(
		        PyExc_TypeError,
		        "an object ID is an ObjectID or 20 bytes, not %.100s",
		        Py_TYPE(obj)->tp_name);
		return -1;
	}
	if (b.len != SHOAL_ID_SIZE) {
		PyErr_Format(PyExc_ValueError,
		             "an object ID must be %d bytes, got %zd",
		             SHOAL_ID_SIZE, b.len);
		PyBuffer_Release(&b);
		return -1;
	}
	memcpy(out->bytes, b.buf, SHOAL_ID_SIZE);
	PyBuffer_Release(&b);
	return 0;
}

PyObject *pyid_new(pyshoal_state *st, const shoal_id *id)
{
	pyid_object *o = (pyid_object *)st->id_type->tp_alloc(st->id_type, 0);

	if (o)
		o->id = *id;
	return (PyObject *)o;
}

static PyObject *pyid_tp_new(PyTypeObject *tp, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"binary", NULL};
	pyshoal_state *st = pyshoal_state_of_type(tp);
	PyObject *bin;
	pyid_object *o;
	shoal_id id;

	if (!st ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "O:ObjectID", kwlist, &bin))
		return NULL;
	if (Py_IS_TYPE(bin, st->id_type)) {
		id = ((pyid_object *)bin)->id;
	} else {
		Py_buffer b;

		if (PyUnicode_Check(bin)) {
			/* Plasma's ObjectID("hello") was a ValueError. */
			PyErr_Format(PyExc_ValueError,
			             "ObjectID() takes %d bytes, not a str",
			             SHOAL_ID_SIZE);
			return NULL;
		}
		if (PyObject_GetBuffer(bin, &b, PyBUF_SIMPLE) < 0) {
			PyErr_Clear();
			PyErr_Format(PyExc_TypeError,
			             "ObjectID() takes 20 bytes, not %.100s",
			             Py_TYPE(bin)->tp_name);
			return NULL;
		}
		if (b.len != SHOAL_ID_SIZE) {
			PyErr_Format(PyExc_ValueError,
			             "Object ID must be %d bytes, is %zd bytes",
			             SHOAL_ID_SIZE, b.len);
			PyBuffer_Release(&b);
			return NULL;
		}
		memcpy(id.bytes, b.buf, SHOAL_ID_SIZE);
		PyBuffer_Release(&b);
	}
	o = (pyid_object *)tp->tp_alloc(tp, 0);
	if (o)
		o->id = id;
	return (PyObject *)o;
}

static void pyid_dealloc(PyObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);

	tp->tp_free(self);
	Py_DECREF(tp);
}

static PyObject *pyid_binary(PyObject *self, PyObject *Py_UNUSED(unused))
{
	return PyBytes_FromStringAndSize(
	        (const char *)((pyid_object *)self)->id.bytes, SHOAL_ID_SIZE);
}

static PyObject *pyid_hex(PyObject *self, PyObject *Py_UNUSED(unused))
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *b = ((pyid_object *)self)->id.bytes;
	char out[2 * SHOAL_ID_SIZE];

	for (int i = 0; i < SHOAL_ID_SIZE; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	return PyUnicode_FromStringAndSize(out, sizeof(out));
}

static PyObject *pyid_from_random(PyObject *cls, PyObject *Py_UNUSED(unused))
{
	pyshoal_state *st = pyshoal_state_of_type((PyTypeObject *)cls);
	pyid_object *o;
	shoal_id id;
	int rc;

	if (!st)
		return NULL;
	rc = shoal_id_random(&id);
	if (rc < 0)
		return pyshoal_raise(st, rc, "ObjectID.from_random");
	o = (pyid_object *)((PyTypeObject *)cls)
	            ->tp_alloc((PyTypeObject *)cls, 0);
	if (o)
		o->id = id;
	return (PyObject *)o;
}

static PyObject *pyid_reduce(PyObject *self, PyObject *Py_UNUSED(unused))
{
	PyObject *bin = pyid_binary(self, NULL);
	PyObject *r;

	if (!bin)
		return NULL;
	r = Py_BuildValue("O(N)", (PyObject *)Py_TYPE(self), bin);
	return r;
}

static PyObject *pyid_repr(PyObject *self)
{
	PyObject *hex = pyid_hex(self, NULL);
	PyObject *r;

	if (!hex)
		return NULL;
	r = PyUnicode_FromFormat("ObjectID(%U)", hex);
	Py_DECREF(hex);
	return r;
}

/* FNV-1a over the 20 bytes: IDs are usually random, but user-chosen ones
 * (b"a" * 20) must hash well too. */
static Py_hash_t pyid_hash(PyObject *self)
{
	const uint8_t *b = ((pyid_object *)self)->id.bytes;
	uint64_t h = 0xcbf29ce484222325ull;

	for (int i = 0; i < SHOAL_ID_SIZE; i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	if ((Py_hash_t)h == -1)
		h = 2;
	return (Py_hash_t)h;
}

static PyObject *pyid_richcompare(PyObject *a, PyObject *b, int op)
{
	int c;

	if (!PyObject_TypeCheck(b, Py_TYPE(a)) &&
	    !PyObject_TypeCheck(a, Py_TYPE(b)))
		Py_RETURN_NOTIMPLEMENTED;
	c = memcmp(((pyid_object *)a)->id.bytes, ((pyid_object *)b)->id.bytes,
	           SHOAL_ID_SIZE);
	Py_RETURN_RICHCOMPARE(c, 0, op);
}

static PyMethodDef pyid_methods[] = {
        {"binary", pyid_binary, METH_NOARGS,
         "binary() -> bytes\n\nThe 20 bytes of the ID."},
        {"hex", pyid_hex, METH_NOARGS,
         "hex() -> str\n\nThe ID as 40 hexadecimal digits."},
        {"__bytes__", pyid_binary, METH_NOARGS, NULL},
        {"from_random", pyid_from_random, METH_NOARGS | METH_CLASS,
         "from_random() -> ObjectID\n\nA new ID of 20 random bytes "
         "(getrandom(2))."},
        {"__reduce__", pyid_reduce, METH_NOARGS, NULL},
        {NULL, NULL, 0, NULL},
};

static PyType_Slot pyid_slots[] = {
        {Py_tp_doc, "ObjectID(binary)\n--\n\n"
                    "The ID of an object in the store: 20 bytes (Plasma's "
                    "size). Hashable, comparable and picklable; "
                    "ValueError for a wrong length or a str."},
        {Py_tp_new, pyid_tp_new},
        {Py_tp_dealloc, pyid_dealloc},
        {Py_tp_repr, pyid_repr},
        {Py_tp_hash, pyid_hash},
        {Py_tp_richcompare, pyid_richcompare},
        {Py_tp_methods, pyid_methods},
        {0, NULL},
};

static PyType_Spec pyid_spec = {
        .name = "shoal.ObjectID",
        .basicsize = sizeof(pyid_object),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
        .slots = pyid_slots,
};

/* ------------------------------------------------------ module functions */

static PyObject *mod_default_socket(PyObject *module,
                                    PyObject *Py_UNUSED(unused))
{
	char buf[4096];
	int rc = shoal_default_socket(buf, sizeof(buf));

	if (rc < 0)
		return pyshoal_raise(pyshoal_state_of_module(module), rc,
		                     rc == SHOAL_EUNSAFE ? buf
		                                         : "default_socket");
	return PyUnicode_DecodeFSDefault(buf);
}

static PyObject *mod_strerror(PyObject *Py_UNUSED(module), PyObject *arg)
{
	int code = PyLong_AsLong(arg);

	if (code == -1 && PyErr_Occurred())
		return NULL;
	return PyUnicode_FromString(shoal_strerror(code));
}

static PyMethodDef pyshoal_functions[] = {
        {"default_socket", mod_default_socket, METH_NOARGS,
         "default_socket() -> str\n\nThe socket path used when none is "
         "given: $SHOAL_SOCKET, else $XDG_RUNTIME_DIR/shoal.sock, else "
         "/tmp/shoal-<uid>/shoal.sock."},
        {"strerror", mod_strerror, METH_O,
         "strerror(code) -> str\n\nThe description of a libshoal error "
         "code."},
        {"ensure_daemon", (PyCFunction)(void (*)(void))pyspawn_ensure_daemon,
         METH_VARARGS | METH_KEYWORDS,
         "ensure_daemon(binary, path, args=(), timeout=10.0) -> bool\n\n"
         "Makes sure a daemon serves the socket path, starting "
         "`binary serve -s path *args` detached if none does. Many "
         "processes may call it at once: an flock on '<path>.lock' lets "
         "exactly one start the daemon. Returns True if this call started "
         "it. Raises StoreUnavailable (with the daemon's log) if it did "
         "not come up within timeout seconds."},
        {"batch_layout", pyarrow_batch_layout, METH_O,
         "batch_layout(buffer) -> (rows, nodes, buffers) or None\n\n"
         "Where the columns of a stored frame lie: for an Arrow IPC stream "
         "of a schema and a record batch, the batch's row count, its field "
         "nodes as a flat tuple of (length, null_count) and its buffers as "
         "a flat tuple of (position in buffer, length). None for any other "
         "stream or one that does not check."},
        {NULL, NULL, 0, NULL},
};

/* ---------------------------------------------------- module life cycle */

static int add_exception(PyObject *m, PyObject **slot, const char *name,
                         PyObject *base, PyObject *builtin, const char *doc)
{
	PyObject *bases;
	char full[128];

	snprintf(full, sizeof(full), "shoal.%s", name);
	bases = builtin ? PyTuple_Pack(2, base, builtin)
	                : PyTuple_Pack(1, base);
	if (!bases)
		return -1;
	*slot = PyErr_NewExceptionWithDoc(full, doc, bases, NULL);
	Py_DECREF(bases);
	if (!*slot)
		return -1;
	return PyModule_AddObjectRef(m, name, *slot);
}

static int add_exceptions(PyObject *m, pyshoal_state *st)
{
	st->error = PyErr_NewExceptionWithDoc(
	        "shoal.Error",
	        "Base class of every error of shoal. `code` holds the "
	        "libshoal error code.",
	        NULL, NULL);
	if (!st->error || PyModule_AddObjectRef(m, "Error", st->error) < 0)
		return -1;
#define EXC(field, name, builtin, doc)                                       \
	if (add_exception(m, &st->field, name, st->error, builtin, doc) < 0) \
	return -1
	EXC(store_full, "StoreFull", NULL,
	    "The store cannot hold the object, even after evicting every "
	    "evictable object. Delete names, evict, or start the daemon with "
	    "a larger -m.");
	EXC(object_exists, "ObjectExists", NULL,
	    "An object with this ID already exists.");
	EXC(object_not_found, "ObjectNotFound", PyExc_KeyError,
	    "No such object or name (also a KeyError).");
	EXC(store_unavailable, "StoreUnavailable", PyExc_ConnectionError,
	    "No daemon serves the socket, or it went away. The next call "
	    "reconnects.");
	EXC(timeout, "Timeout", PyExc_TimeoutError, "The wait ran out.");
	EXC(version_conflict, "VersionConflict", NULL,
	    "Compare-and-set failed: the name was changed by someone else "
	    "(or does not exist / already exists).");
	EXC(not_sealed, "ObjectNotSealed", NULL,
	    "The object is not sealed yet.");
	EXC(already_sealed, "ObjectSealed", NULL,
	    "The object is already sealed.");
	EXC(not_owner, "NotOwner", NULL,
	    "Only the client that created an object may seal or abort it.");
	EXC(protocol_error, "ProtocolError", NULL,
	    "The daemon speaks another protocol or arena format: use a "
	    "shoal package and daemon of the same version.");
	EXC(too_big, "TooBig", PyExc_ValueError,
	    "A size, count or name is over its limit.");
	EXC(invalid, "InvalidArgument", PyExc_ValueError,
	    "An invalid argument (e.g. an empty name).");
	EXC(busy, "Busy", NULL, "The daemon is overloaded; try again.");
#undef EXC
	return 0;
}

static int add_type(PyObject *m, PyTypeObject **slot, PyType_Spec *spec,
                    const char *name)
{
	*slot = (PyTypeObject *)PyType_FromModuleAndSpec(m, spec, NULL);
	if (!*slot)
		return -1;
	if (!name)
		return 0;
	return PyModule_AddObjectRef(m, name, (PyObject *)*slot);
}

static int pyshoal_exec(PyObject *m)
{
	pyshoal_state *st = pyshoal_state_of_module(m);

	if (add_exceptions(m, st) < 0)
		return -1;
	if (add_type(m, &st->id_type, &pyid_spec, "ObjectID") < 0 ||
	    add_type(m, &st->conn_type, &pyconn_spec, "_Connection") < 0 ||
	    add_type(m, &st->buffer_type, &pybuf_spec, "Buffer") < 0 ||
	    add_type(m, &st->client_type, &pyclient_spec, "Client") < 0 ||
	    pysub_add_types(m, st) < 0)
		return -1;
	if (PyModule_AddStringConstant(m, "__version__", SHOAL_VERSION_STRING) <
	            0 ||
	    PyModule_AddIntConstant(m, "ID_SIZE", SHOAL_ID_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "NAME_MAX", SHOAL_NAME_MAX) < 0 ||
	    PyModule_AddIntConstant(m, "META_MAX", SHOAL_META_MAX) < 0 ||
	    PyModule_AddIntConstant(m, "BATCH_MAX", SHOAL_BATCH_MAX) < 0 ||
	    PyModule_AddIntConstant(m, "PART_ALIGN", PYSHOAL_PART_ALIGN) < 0 ||
	    PyModule_AddIntConstant(m, "WAIT_FOREVER", SHOAL_WAIT_FOREVER) <
	            0 ||
	    PyModule_AddIntConstant(m, "STATE_ABSENT", SHOAL_STATE_ABSENT) <
	            0 ||
	    PyModule_AddIntConstant(m, "STATE_CREATED", SHOAL_STATE_CREATED) <
	            0 ||
	    PyModule_AddIntConstant(m, "STATE_SEALED", SHOAL_STATE_SEALED) <
	            0 ||
	    PyModule_AddIntConstant(m, "NAME_EVICTABLE", SHOAL_NAME_EVICTABLE) <
	            0 ||
	    PyModule_AddObject(m, "TTL_MAX_MS",
	                       PyLong_FromUnsignedLongLong(SHOAL_TTL_MAX_MS)) <
	            0)
		return -1;
#define CODE(c)                                            \
	if (PyModule_AddIntConstant(m, #c, SHOAL_##c) < 0) \
	return -1
	CODE(ENOTFOUND);
	CODE(EEXISTS);
	CODE(EFULL);
	CODE(EUNAVAILABLE);
	CODE(EPROTO);
	CODE(ETIMEDOUT);
	CODE(ENOTSEALED);
	CODE(ESEALED);
	CODE(ENOTOWNER);
	CODE(EVERSION);
	CODE(EFORKED);
	CODE(ETOOBIG);
	CODE(EARENA);
	CODE(EINVAL);
	CODE(ENOMEM);
	CODE(EBUSY);
	CODE(ECLOSED);
	CODE(EFOREIGN);
	CODE(EUNSAFE);
	CODE(ELIMIT);
	CODE(EINTR);
#undef CODE
	return 0;
}

#define STATE_OBJECTS(X)     \
	X(id_type)           \
	X(conn_type)         \
	X(buffer_type)       \
	X(client_type)       \
	X(sub_type)          \
	X(event_type)        \
	X(event_kinds)       \
	X(error)             \
	X(store_full)        \
	X(object_exists)     \
	X(object_not_found)  \
	X(store_unavailable) \
	X(timeout)           \
	X(version_conflict)  \
	X(not_sealed)        \
	X(already_sealed)    \
	X(not_owner)         \
	X(protocol_error)    \
	X(too_big)           \
	X(invalid)           \
	X(busy)

static int pyshoal_traverse(PyObject *m, visitproc visit, void *arg)
{
	pyshoal_state *st = pyshoal_state_of_module(m);

	if (!st)
		return 0;
#define VISIT(f) Py_VISIT(st->f);
	STATE_OBJECTS(VISIT)
#undef VISIT
	return 0;
}

static int pyshoal_clear(PyObject *m)
{
	pyshoal_state *st = pyshoal_state_of_module(m);

	if (!st)
		return 0;
#define CLEAR(f) Py_CLEAR(st->f);
	STATE_OBJECTS(CLEAR)
#undef CLEAR
	return 0;
}

static void pyshoal_free(void *m)
{
	pyshoal_clear((PyObject *)m);
}

static PyModuleDef_Slot pyshoal_slots[] = {
        {Py_mod_exec, pyshoal_exec},
        {0, NULL},
};

static struct PyModuleDef pyshoal_module = {
        PyModuleDef_HEAD_INIT,
        .m_name = "shoal._shoal",
        .m_doc = "The C core of the shoal Python package: libshoal with the "
                 "GIL released around every blocking call.",
        .m_size = sizeof(pyshoal_state),
        .m_methods = pyshoal_functions,
        .m_slots = pyshoal_slots,
        .m_traverse = pyshoal_traverse,
        .m_clear = pyshoal_clear,
        .m_free = pyshoal_free,
};

PyMODINIT_FUNC PyInit__shoal(void)
{
	return PyModuleDef_Init(&pyshoal_module);
}
