/*
 * _shoal_buffer.c - shoal.Buffer: one pinned object in shared memory,
 * exported through the buffer protocol.
 *
 * A Buffer is what every zero-copy result is built on. numpy arrays,
 * memoryviews, pyarrow buffers and pandas frames made from it hold a
 * Py_buffer export of it (and through the export a reference), so the
 * Buffer outlives every one of them. The object stays pinned - the daemon
 * never frees or reuses its memory - until the Buffer dies or release() is
 * called, which refuses while exports are alive (the exports counter, as
 * in CPython's mmap). Deleting or replacing the object's name meanwhile
 * changes nothing for this reader.
 *
 * States (enum pybuf_state):
 *   VIEW     from a get: read-only; dropping it calls shoal_release().
 *   CREATED  from a create: writable until the object is sealed or
 *            aborted. Registered in its connection's `created` dict by weak
 *            reference, so that Client.seal()/abort() (which name the
 *            object by ID, as Plasma did) can find it without keeping it
 *            alive. If it dies (or is released) before the seal, the seal
 *            finds a dead reference and drops the creator's hold at once.
 *   SEALED   the creator's hold after seal: read-only for new exports
 *            (exports taken while CREATED keep their writability; the
 *            buffer protocol cannot revoke them); dropping it calls
 *            shoal_release_id().
 *   DONE     released or aborted: any access raises ValueError.
 *
 * The Buffer keeps its _Connection alive, and with it the arena mapping:
 * in a forked child an inherited Buffer stays readable (the parent's pin
 * keeps the memory) and releasing it is a local no-op.
 */
#include "_shoal.h"

#include <string.h>

#include <structmember.h>

/* Copies larger than this run with the GIL released. */
#define BIG_COPY (64 * 1024)

/* A valid address for zero-length exports (consumers dislike NULL). */
static uint8_t empty_data[1];

static const uint8_t *pybuf_data(pybuf_object *b)
{
	if (b->state == PYBUF_CREATED)
		return b->wdata;
	return b->view.data ? b->view.data : empty_data;
}

PyObject *pybuf_from_view(pyshoal_state *st, pyconn_object *conn,
                          shoal_view *view)
{
	pybuf_object *b =
	        (pybuf_object *)st->buffer_type->tp_alloc(st->buffer_type, 0);

	if (!b) {
		shoal_release(conn->client, view);
		return NULL;
	}
	Py_INCREF(conn);
	b->conn = conn;
	b->view = *view;
	b->state = PYBUF_VIEW;
	return (PyObject *)b;
}

PyObject *pybuf_from_create(pyshoal_state *st, pyconn_object *conn,
                            const shoal_id *id, uint8_t *data, uint64_t size,
                            uint8_t *meta, uint32_t meta_size)
{
	pybuf_object *b =
	        (pybuf_object *)st->buffer_type->tp_alloc(st->buffer_type, 0);
	PyObject *key = NULL, *ref = NULL;

	if (!b)
		goto fail;
	Py_INCREF(conn);
	b->conn = conn;
	b->view.id = *id;
	b->view.data_size = size;
	b->view.data = data ? data : empty_data;
	b->view.metadata = meta;
	b->view.metadata_size = meta_size;
	b->wdata = data ? data : empty_data;
	b->state = PYBUF_CREATED;
	key = PyBytes_FromStringAndSize((const char *)id->bytes, SHOAL_ID_SIZE);
	ref = key ? PyWeakref_NewRef((PyObject *)b, NULL) : NULL;
	if (!ref || PyDict_SetItem(conn->created, key, ref) < 0)
		goto fail;
	Py_DECREF(key);
	Py_DECREF(ref);
	return (PyObject *)b;
fail:
	Py_XDECREF(key);
	Py_XDECREF(ref);
	if (b) {
		/* Not registered: make dealloc forget it, then abort. */
		b->state = PYBUF_DONE;
		Py_DECREF(b);
	}
	shoal_abort(conn->client, id);
	return NULL;
}

/*
 * Drops the pin and moves to DONE. An unsealed create needs nothing here:
 * its registry entry is a weak reference, and a seal that finds it dead or
 * finds this Buffer no longer CREATED drops the creator's hold itself (so
 * nothing is allocated, and nothing can fail, on this path). Keeps the GIL:
 * shoal_release() never waits for a reply or for another thread's request
 * - at most it writes the queued releases in one small send when the
 * connection is idle - while giving up the GIL in every dealloc would make
 * threaded programs wait for it again each time.
 */
static void pybuf_drop(pybuf_object *b)
{
	switch (b->state) {
	case PYBUF_VIEW:
		shoal_release(b->conn->client, &b->view);
		break;
	case PYBUF_SEALED:
		shoal_release_id(b->conn->client, &b->view.id);
		break;
	default:
		break;
	}
	b->state = PYBUF_DONE;
	b->wdata = NULL;
}

static void pybuf_dealloc(PyObject *self)
{
	pybuf_object *b = (pybuf_object *)self;
	PyTypeObject *tp = Py_TYPE(self);
	PyObject *et, *ev, *tb;

	PyErr_Fetch(&et, &ev, &tb);
	if (b->weakrefs)
		PyObject_ClearWeakRefs(self);
	if (b->conn) {
		pybuf_drop(b);
		Py_CLEAR(b->conn);
	}
	PyErr_Restore(et, ev, tb);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static int pybuf_check(pybuf_object *b)
{
	if (b->state == PYBUF_DONE) {
		PyErr_SetString(PyExc_ValueError,
		                "operation on a released shoal buffer");
		return -1;
	}
	return 0;
}

static int pybuf_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	pybuf_object *b = (pybuf_object *)self;
	int readonly = b->state != PYBUF_CREATED;

	if (pybuf_check(b) < 0) {
		view->obj = NULL;
		return -1;
	}
	if ((flags & PyBUF_WRITABLE) && readonly) {
		view->obj = NULL;
		PyErr_SetString(
		        PyExc_BufferError,
		        "shoal buffers are read-only (objects in the "
		        "store are immutable); get(..., copy=True) gives "
		        "a writable copy");
		return -1;
	}
	if (PyBuffer_FillInfo(view, self, (void *)pybuf_data(b),
	                      (Py_ssize_t)b->view.data_size, readonly,
	                      flags) < 0)
		return -1;
	b->exports++;
	return 0;
}

static void pybuf_releasebuffer(PyObject *self, Py_buffer *Py_UNUSED(view))
{
	((pybuf_object *)self)->exports--;
}

static PyObject *pybuf_release(PyObject *self, PyObject *Py_UNUSED(unused))
{
	pybuf_object *b = (pybuf_object *)self;

	if (b->exports > 0) {
		PyErr_Format(PyExc_BufferError,
		             "cannot release a shoal buffer while %zd views of "
		             "it (memoryviews, arrays, frames) are alive",
		             b->exports);
		return NULL;
	}
	pybuf_drop(b);
	Py_RETURN_NONE;
}

static PyObject *pybuf_enter(PyObject *self, PyObject *Py_UNUSED(unused))
{
	return Py_NewRef(self);
}

static PyObject *pybuf_exit(PyObject *self, PyObject *Py_UNUSED(args))
{
	PyObject *r = pybuf_release(self, NULL);

	if (!r)
		return NULL;
	Py_DECREF(r);
	Py_RETURN_FALSE;
}

/*
 * Copies n bytes from src to dst, with the GIL released for large copies.
 * The exports count is raised meanwhile so that another thread cannot
 * release the buffer under the copy.
 */
static void pybuf_copy_out(pybuf_object *b, void *dst, const void *src,
                           size_t n)
{
	PyThreadState *ts;

	if (n < BIG_COPY) {
		memcpy(dst, src, n);
		return;
	}
	b->exports++;
	ts = PyEval_SaveThread();
	memcpy(dst, src, n);
	PyEval_RestoreThread(ts);
	b->exports--;
}

static PyObject *pybuf_to_pybytes(PyObject *self, PyObject *Py_UNUSED(unused))
{
	pybuf_object *b = (pybuf_object *)self;
	PyObject *out;

	if (pybuf_check(b) < 0)
		return NULL;
	out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)b->view.data_size);
	if (out)
		pybuf_copy_out(b, PyBytes_AS_STRING(out), pybuf_data(b),
		               b->view.data_size);
	return out;
}

static PyObject *pybuf_copy(PyObject *self, PyObject *Py_UNUSED(unused))
{
	pybuf_object *b = (pybuf_object *)self;
	PyObject *out;

	if (pybuf_check(b) < 0)
		return NULL;
	out = PyByteArray_FromStringAndSize(NULL,
	                                    (Py_ssize_t)b->view.data_size);
	if (out)
		pybuf_copy_out(b, PyByteArray_AS_STRING(out), pybuf_data(b),
		               b->view.data_size);
	return out;
}

/* write(offset, data): copies a bytes-like object into a created buffer,
 * with the GIL released for large copies. */
static PyObject *pybuf_write(PyObject *self, PyObject *args)
{
	pybuf_object *b = (pybuf_object *)self;
	Py_ssize_t off;
	Py_buffer src;

	if (!PyArg_ParseTuple(args, "ny*:write", &off, &src))
		return NULL;
	if (b->state != PYBUF_CREATED) {
		PyBuffer_Release(&src);
		if (pybuf_check(b) < 0)
			return NULL;
		PyErr_SetString(PyExc_BufferError,
		                "the object is sealed: it cannot be written");
		return NULL;
	}
	if (off < 0 || (uint64_t)off > b->view.data_size ||
	    (uint64_t)src.len > b->view.data_size - (uint64_t)off) {
		PyErr_Format(PyExc_ValueError,
		             "write of %zd bytes at offset %zd does not fit in "
		             "a buffer of %llu bytes",
		             src.len, off,
		             (unsigned long long)b->view.data_size);
		PyBuffer_Release(&src);
		return NULL;
	}
	pybuf_copy_out(b, b->wdata + off, src.buf, (size_t)src.len);
	PyBuffer_Release(&src);
	Py_RETURN_NONE;
}

static PyObject *pybuf_get_id(PyObject *self, void *Py_UNUSED(unused))
{
	pybuf_object *b = (pybuf_object *)self;
	pyshoal_state *st = pyshoal_state_of_type(Py_TYPE(self));

	return st ? pyid_new(st, &b->view.id) : NULL;
}

static PyObject *pybuf_get_size(PyObject *self, void *Py_UNUSED(unused))
{
	return PyLong_FromUnsignedLongLong(
	        ((pybuf_object *)self)->view.data_size);
}

static PyObject *pybuf_get_metadata(PyObject *self, void *Py_UNUSED(unused))
{
	pybuf_object *b = (pybuf_object *)self;

	if (pybuf_check(b) < 0)
		return NULL;
	return PyBytes_FromStringAndSize(
	        (const char *)b->view.metadata,
	        b->view.metadata ? b->view.metadata_size : 0);
}

static PyObject *pybuf_get_readonly(PyObject *self, void *Py_UNUSED(unused))
{
	return PyBool_FromLong(((pybuf_object *)self)->state != PYBUF_CREATED);
}

static PyObject *pybuf_get_released(PyObject *self, void *Py_UNUSED(unused))
{
	return PyBool_FromLong(((pybuf_object *)self)->state == PYBUF_DONE);
}

static PyObject *pybuf_get_address(PyObject *self, void *Py_UNUSED(unused))
{
	pybuf_object *b = (pybuf_object *)self;

	if (pybuf_check(b) < 0)
		return NULL;
	return PyLong_FromVoidPtr((void *)pybuf_data(b));
}

static PyObject *pybuf_get_exports(PyObject *self, void *Py_UNUSED(unused))
{
	return PyLong_FromSsize_t(((pybuf_object *)self)->exports);
}

static Py_ssize_t pybuf_length(PyObject *self)
{
	return (Py_ssize_t)((pybuf_object *)self)->view.data_size;
}

static PyObject *pybuf_richcompare(PyObject *a, PyObject *other, int op)
{
	pybuf_object *b = (pybuf_object *)a;
	Py_buffer o;
	int eq;

	if ((op != Py_EQ && op != Py_NE) || b->state == PYBUF_DONE)
		Py_RETURN_NOTIMPLEMENTED;
	if (PyObject_GetBuffer(other, &o, PyBUF_SIMPLE) < 0) {
		PyErr_Clear();
		Py_RETURN_NOTIMPLEMENTED;
	}
	eq = (uint64_t)o.len == b->view.data_size &&
	     memcmp(pybuf_data(b), o.buf, (size_t)o.len) == 0;
	PyBuffer_Release(&o);
	return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *pybuf_repr(PyObject *self)
{
	static const char *names[] = {"read-only", "writable", "sealed",
	                              "released"};
	pybuf_object *b = (pybuf_object *)self;

	return PyUnicode_FromFormat("<shoal.Buffer %s, %llu bytes>",
	                            names[b->state],
	                            (unsigned long long)b->view.data_size);
}

static PyMethodDef pybuf_methods[] = {
        {"release", pybuf_release, METH_NOARGS,
         "release()\n\nDrops the pin now instead of when the buffer dies. "
         "BufferError while memoryviews or arrays of it are alive. "
         "Idempotent."},
        {"__enter__", pybuf_enter, METH_NOARGS, NULL},
        {"__exit__", pybuf_exit, METH_VARARGS, NULL},
        {"to_pybytes", pybuf_to_pybytes, METH_NOARGS,
         "to_pybytes() -> bytes\n\nA copy of the data."},
        {"copy", pybuf_copy, METH_NOARGS,
         "copy() -> bytearray\n\nA writable private copy of the data."},
        {"write", pybuf_write, METH_VARARGS,
         "write(offset, data)\n\nCopies data into a created, unsealed "
         "buffer at offset (GIL released for large copies)."},
        {NULL, NULL, 0, NULL},
};

static PyGetSetDef pybuf_getset[] = {
        {"id", pybuf_get_id, NULL, "The ObjectID.", NULL},
        {"size", pybuf_get_size, NULL, "Bytes of data.", NULL},
        {"metadata", pybuf_get_metadata, NULL,
         "The object's metadata part (bytes, a copy).", NULL},
        {"readonly", pybuf_get_readonly, NULL,
         "False only for a created, unsealed buffer.", NULL},
        {"released", pybuf_get_released, NULL, "True once released or aborted.",
         NULL},
        {"address", pybuf_get_address, NULL,
         "Address of the data in this process (for zero-copy checks).", NULL},
        {"exports", pybuf_get_exports, NULL,
         "Number of live buffer-protocol exports.", NULL},
        {NULL, NULL, NULL, NULL, NULL},
};

static PyMemberDef pybuf_members[] = {
        {"__weaklistoffset__", T_PYSSIZET, offsetof(pybuf_object, weakrefs),
         READONLY, NULL},
        {NULL, 0, 0, 0, NULL},
};

static PyType_Slot pybuf_slots[] = {
        {Py_tp_doc, "A pinned object in shared memory (no copy). Supports "
                    "the buffer protocol: read-only for objects from a get, "
                    "writable for a created object until it is sealed. The "
                    "object stays pinned until the buffer and every view "
                    "of it are gone, or release() is called."},
        {Py_tp_dealloc, pybuf_dealloc},
        {Py_tp_repr, pybuf_repr},
        {Py_tp_richcompare, pybuf_richcompare},
        {Py_tp_hash, PyObject_HashNotImplemented},
        {Py_tp_methods, pybuf_methods},
        {Py_tp_getset, pybuf_getset},
        {Py_tp_members, pybuf_members},
        {Py_bf_getbuffer, pybuf_getbuffer},
        {Py_bf_releasebuffer, pybuf_releasebuffer},
        {Py_sq_length, pybuf_length},
        {Py_mp_length, pybuf_length},
        {0, NULL},
};

PyType_Spec pybuf_spec = {
        .name = "shoal.Buffer",
        .basicsize = sizeof(pybuf_object),
        .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
        .slots = pybuf_slots,
};
