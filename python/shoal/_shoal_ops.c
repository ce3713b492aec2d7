/*
 * _shoal_ops.c - the methods of shoal._shoal.Client that talk to the
 * daemon: create/seal/abort/put, get and get_name, names, objects, stats.
 *
 * Each takes a connection from _shoal_client.c (pyclient_conn, or
 * pyclient_conn_for for calls that may wait), runs the libshoal call with
 * the GIL released, and maps a failure with pyclient_fail (which also
 * marks a connection whose socket is gone). A wait is one request with the
 * whole timeout: the connections are interruptible (shoal_set_interruptible),
 * so a signal ends the wait at once with SHOAL_EINTR; the signal's Python
 * handler then runs, and unless it raised (Ctrl-C), the wait goes on for
 * the time that is left (pyshoal_wait). Nothing polls the daemon.
 *
 * Creates are tracked per connection in conn->created (see
 * _shoal_buffer.c) so that seal/abort by ID find the writable Buffer.
 * Client.put and Client.seal with a name keep the creator's hold until the
 * name points at the object: an unnamed, unheld object could be evicted in
 * between.
 */
#include "_shoal.h"

#include <string.h>

/* ------------------------------------------------------------- creating */

struct create_call {
	shoal_client *c;
	const shoal_id *id;
	uint64_t size;
	uint32_t msize;
	const shoal_segment *segs;
	size_t nsegs;
	uint8_t **data, **meta;
};

static int create_fn(void *arg, int64_t timeout_ms)
{
	struct create_call *a = arg;

	return shoal_create_from(a->c, a->id, a->size, a->msize, timeout_ms,
	                         a->segs, a->nsegs, a->data, a->meta);
}

/*
 * shoal_create_from (the nsegs segments copied in while the memory is
 * reserved), waiting up to timeout_ms for space. Returns 0, a libshoal
 * code (SHOAL_EFULL when the time ran out), or PYSHOAL_PYERR (a signal
 * handler raised).
 */
static int waiting_create(pyconn_object *c, const shoal_id *id, uint64_t size,
                          uint32_t msize, int64_t timeout_ms,
                          const shoal_segment *segs, size_t nsegs,
                          uint8_t **data, uint8_t **meta)
{
	struct create_call a = {.c = c->client,
	                        .id = id,
	                        .size = size,
	                        .msize = msize,
	                        .segs = segs,
	                        .nsegs = nsegs,
	                        .data = data,
	                        .meta = meta};

	return pyshoal_wait(create_fn, &a, timeout_ms, SHOAL_EFULL, NULL);
}

/* The segments of Client.create: their sources' Py_buffers, held during
 * the create. */
struct segments {
	shoal_segment *s;
	Py_buffer *v;
	Py_ssize_t n;
};

static void segments_free(struct segments *g)
{
	for (Py_ssize_t i = 0; i < g->n; i++)
		PyBuffer_Release(&g->v[i]);
	PyMem_Free(g->v);
	PyMem_Free(g->s);
}

/*
 * Parses a sequence of (offset, source, source offset, size, width, add)
 * into g: size bytes from the source's bytes at the source offset (which
 * must lie within the source) go to offset in the object; width and add as
 * in shoal_segment. None: no segments. Returns 0, or -1 with an exception.
 */
static int segments_get(PyObject *obj, struct segments *g)
{
	g->s = NULL;
	g->v = NULL;
	g->n = 0;
	if (obj == Py_None)
		return 0;
	PyObject *seq = PySequence_Fast(obj, "segments must be a sequence");
	if (!seq)
		return -1;
	Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
	g->s = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*g->s));
	g->v = PyMem_Calloc(n ? (size_t)n : 1, sizeof(*g->v));
	if (!g->s || !g->v) {
		Py_DECREF(seq);
		segments_free(g);
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *src;
		unsigned long long off, from, size;
		unsigned int width;
		long long add;
		shoal_segment *s = &g->s[i];

		if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i),
		                      "KOKKIL:segment", &off, &src, &from,
		                      &size, &width, &add) ||
		    PyObject_GetBuffer(src, &g->v[i], PyBUF_ANY_CONTIGUOUS) < 0)
			goto fail;
		g->n = i + 1;
		if (from > (unsigned long long)g->v[i].len ||
		    size > (unsigned long long)g->v[i].len - from) {
			PyErr_SetString(PyExc_ValueError,
			                "segment: beyond its source");
			goto fail;
		}
		*s = (shoal_segment){.offset = off,
		                     .src = (const uint8_t *)g->v[i].buf + from,
		                     .size = size,
		                     .width = width,
		                     .add = add};
	}
	Py_DECREF(seq);
	return 0;
fail:
	Py_DECREF(seq);
	segments_free(g);
	return -1;
}

PyObject *pyops_create(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"id",      "size",     "metadata",
	                         "timeout", "segments", NULL};
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	Py_buffer meta = {0};
	PyObject *idobj, *buf, *segobj = Py_None;
	unsigned long long size;
	long long timeout_ms = 0;
	uint8_t *data = NULL, *mdata = NULL;
	struct segments g = {0};
	pyconn_object *c;
	shoal_id id;
	int rc;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "OK|y*LO:create",
	                                        kwlist, &idobj, &size, &meta,
	                                        &timeout_ms, &segobj))
		return NULL;
	if (pyid_parse(st, idobj, &id) < 0 || meta.len > SHOAL_META_MAX) {
		if (!PyErr_Occurred())
			pyshoal_raise(st, SHOAL_ETOOBIG, "create: metadata");
		PyBuffer_Release(&meta);
		return NULL;
	}
	if (segments_get(segobj, &g) < 0) {
		PyBuffer_Release(&meta);
		return NULL;
	}
	c = pyclient_conn(self);
	if (!c) {
		segments_free(&g);
		PyBuffer_Release(&meta);
		return NULL;
	}
	rc = waiting_create(c, &id, size, (uint32_t)meta.len, timeout_ms, g.s,
	                    (size_t)g.n, &data, &mdata);
	segments_free(&g);
	if (rc < 0 || rc == PYSHOAL_PYERR) {
		PyBuffer_Release(&meta);
		pyclient_fail(self, c, rc, "create");
		Py_DECREF(c);
		return NULL;
	}
	if (meta.len)
		memcpy(mdata, meta.buf, (size_t)meta.len);
	PyBuffer_Release(&meta);
	buf = pybuf_from_create(st, c, &id, data, size, mdata,
	                        (uint32_t)meta.len);
	Py_DECREF(c);
	return buf;
}

/* The object a weak reference points at (a new reference), or NULL when it
 * is dead. */
static PyObject *weak_target(PyObject *ref)
{
#if PY_VERSION_HEX >= 0x030D0000
	PyObject *o = NULL;

	if (PyWeakref_GetRef(ref, &o) < 0)
		PyErr_Clear();
	return o;
#else
	PyObject *o = PyWeakref_GetObject(ref); /* borrowed */

	if (!o) {
		PyErr_Clear();
		return NULL;
	}
	return o == Py_None ? NULL : Py_NewRef(o);
#endif
}

/*
 * Finds the created Buffer of id in c->created and removes the entry.
 * Returns the Buffer (a new reference; it is alive and still CREATED),
 * NULL with *orphan set when the Buffer died or was released before, or
 * NULL with *orphan clear when the ID is not there.
 */
static pybuf_object *take_created(pyconn_object *c, const shoal_id *id,
                                  int *orphan)
{
	PyObject *key = PyBytes_FromStringAndSize((const char *)id->bytes,
	                                          SHOAL_ID_SIZE);
	PyObject *v;
	pybuf_object *b = NULL;

	*orphan = 0;
	if (!key) {
		PyErr_Clear();
		return NULL;
	}
	v = PyDict_GetItemWithError(c->created, key);
	if (v) {
		PyObject *o = weak_target(v);

		if (o && ((pybuf_object *)o)->state == PYBUF_CREATED)
			b = (pybuf_object *)o;
		else
			*orphan = 1;
		if (o && !b)
			Py_DECREF(o);
		PyDict_DelItem(c->created, key);
	}
	PyErr_Clear();
	Py_DECREF(key);
	return b;
}

/*
 * Ends the create of id on c with end (shoal_seal or shoal_abort), with
 * the GIL released, and marks the create's writable Buffer, if still alive,
 * sealed or done. *orphan: see take_created. Returns 0, or -1 with an
 * exception.
 */
static int end_create(pyclient_object *self, pyconn_object *c,
                      const shoal_id *id,
                      int (*end)(shoal_client *, const shoal_id *), int *orphan)
{
	PyThreadState *ts = PyEval_SaveThread();
	int rc = end(c->client, id);
	pybuf_object *b;

	PyEval_RestoreThread(ts);
	if (rc < 0) {
		pyclient_fail(self, c, rc,
		              end == shoal_seal ? "seal" : "abort");
		return -1;
	}
	b = take_created(c, id, orphan);
	if (b) {
		b->state = end == shoal_seal ? PYBUF_SEALED : PYBUF_DONE;
		if (b->state == PYBUF_DONE)
			b->wdata = NULL; /* the memory went with the abort */
		Py_DECREF(b);
	}
	return 0;
}

/*
 * Points name at the sealed object id on c (with opts' compare-and-set,
 * time to live and flags); on failure deletes the object (its creator may
 * still hold it; the delete then waits for the release) so that a failed
 * compare-and-set leaves nothing behind. GIL released.
 */
static int name_or_delete(shoal_client *c, const char *name, size_t len,
                          const shoal_id *id, const struct pyname_opts *o,
                          uint64_t *version)
{
	int rc = shoal_set_name_ttl(c, name, len, id, o->ev, o->ttl_ms,
	                            o->flags, version);

	if (rc < 0 && rc != SHOAL_EUNAVAILABLE)
		shoal_delete(c, id, 1, NULL);
	return rc;
}

PyObject *pyops_seal(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"id",  "name",      "expected_version",
	                         "ttl", "evictable", NULL};
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	PyObject *idobj, *nameobj = Py_None, *evobj = Py_None;
	const char *name = NULL;
	Py_ssize_t nlen = 0;
	struct pyname_opts opts = {0};
	unsigned long long ttl = 0;
	int evictable = 0;
	uint64_t evv, version = 0;
	pyconn_object *c;
	PyThreadState *ts;
	shoal_id id;
	int rc = 0, orphan;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "O|OOKp:seal", kwlist,
	                                        &idobj, &nameobj, &evobj, &ttl,
	                                        &evictable))
		return NULL;
	if (pyid_parse(st, idobj, &id) < 0 ||
	    (nameobj != Py_None &&
	     pyclient_parse_name(nameobj, &name, &nlen) < 0) ||
	    pyclient_parse_version(evobj, &evv, &opts.ev) < 0)
		return NULL;
	opts.ttl_ms = ttl;
	opts.flags = evictable ? SHOAL_NAME_EVICTABLE : 0;
	c = pyclient_conn(self);
	if (!c)
		return NULL;
	if (end_create(self, c, &id, shoal_seal, &orphan) < 0) {
		Py_DECREF(c);
		return NULL;
	}
	if (name) {
		ts = PyEval_SaveThread();
		rc = name_or_delete(c->client, name, (size_t)nlen, &id, &opts,
		                    &version);
		PyEval_RestoreThread(ts);
	}
	if (orphan)
		shoal_release_id(c->client, &id);
	if (rc < 0) {
		pyclient_fail(self, c, rc, "seal: set name");
		Py_DECREF(c);
		return NULL;
	}
	Py_DECREF(c);
	if (name)
		return PyLong_FromUnsignedLongLong(version);
	Py_RETURN_NONE;
}

PyObject *pyops_abort(PyObject *obj, PyObject *idobj)
{
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	pyconn_object *c;
	shoal_id id;
	int rc, orphan;

	if (!st || pyid_parse(st, idobj, &id) < 0)
		return NULL;
	c = pyclient_conn(self);
	if (!c)
		return NULL;
	rc = end_create(self, c, &id, shoal_abort, &orphan);
	Py_DECREF(c);
	if (rc < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* Collected Py_buffers of Client.put's parts. */
struct parts {
	Py_buffer *v;
	Py_ssize_t n;
	uint64_t total;
};

static void parts_free(struct parts *p)
{
	for (Py_ssize_t i = 0; i < p->n; i++)
		PyBuffer_Release(&p->v[i]);
	PyMem_Free(p->v);
}

static int parts_get(PyObject *seq_obj, struct parts *p)
{
	PyObject *seq = PySequence_Fast(seq_obj, "parts must be a sequence");
	Py_ssize_t n;

	p->v = NULL;
	p->n = 0;
	p->total = 0;
	if (!seq)
		return -1;
	n = PySequence_Fast_GET_SIZE(seq);
	p->v = PyMem_Calloc(n ? (size_t)n : 1, sizeof(Py_buffer));
	if (!p->v) {
		Py_DECREF(seq);
		PyErr_NoMemory();
		return -1;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *o = PySequence_Fast_GET_ITEM(seq, i);

		if (PyObject_GetBuffer(o, &p->v[i], PyBUF_ANY_CONTIGUOUS) < 0) {
			Py_DECREF(seq);
			parts_free(p);
			return -1;
		}
		p->n = i + 1;
		if (i > 0)
			p->total = (p->total + PYSHOAL_PART_ALIGN - 1) &
			           ~(uint64_t)(PYSHOAL_PART_ALIGN - 1);
		p->total += (uint64_t)p->v[i].len;
	}
	Py_DECREF(seq);
	return 0;
}

/* The parts as segments of the object, then the metadata after them: seg
 * has room for p->n + 1. */
static void parts_segments(const struct parts *p, const Py_buffer *meta,
                           shoal_segment *seg)
{
	uint64_t off = 0;

	for (Py_ssize_t i = 0; i < p->n; i++) {
		if (i > 0)
			off = (off + PYSHOAL_PART_ALIGN - 1) &
			      ~(uint64_t)(PYSHOAL_PART_ALIGN - 1);
		seg[i] = (shoal_segment){.offset = off,
		                         .src = p->v[i].buf,
		                         .size = (uint64_t)p->v[i].len};
		off += (uint64_t)p->v[i].len;
	}
	seg[p->n] = (shoal_segment){.offset = p->total,
	                            .src = meta->buf,
	                            .size = (uint64_t)meta->len};
}

PyObject *pyops_put(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {
	        "id",      "parts", "metadata",  "name", "expected_version",
	        "timeout", "ttl",   "evictable", NULL};
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	PyObject *idobj, *partsobj, *nameobj = Py_None, *evobj = Py_None;
	Py_buffer meta = {0};
	long long timeout_ms = 0;
	const char *name = NULL;
	Py_ssize_t nlen = 0;
	struct pyname_opts opts = {0};
	unsigned long long ttl = 0;
	int evictable = 0;
	uint64_t evv, version = 0;
	uint8_t *data = NULL, *mdata = NULL;
	struct parts p = {0};
	shoal_segment *seg = NULL;
	pyconn_object *c = NULL;
	PyThreadState *ts;
	shoal_id id;
	int rc;

	if (!st ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "OO|y*OOLKp:put", kwlist,
	                                 &idobj, &partsobj, &meta, &nameobj,
	                                 &evobj, &timeout_ms, &ttl, &evictable))
		return NULL;
	opts.ttl_ms = ttl;
	opts.flags = evictable ? SHOAL_NAME_EVICTABLE : 0;
	if (pyid_parse(st, idobj, &id) < 0 ||
	    (nameobj != Py_None &&
	     pyclient_parse_name(nameobj, &name, &nlen) < 0) ||
	    pyclient_parse_version(evobj, &evv, &opts.ev) < 0 ||
	    parts_get(partsobj, &p) < 0)
		goto fail;
	if (meta.len > SHOAL_META_MAX) {
		pyshoal_raise(st, SHOAL_ETOOBIG, "put: metadata");
		goto fail;
	}
	seg = PyMem_Calloc((size_t)p.n + 1, sizeof(*seg));
	if (!seg) {
		PyErr_NoMemory();
		goto fail;
	}
	parts_segments(&p, &meta, seg);
	c = pyclient_conn(self);
	if (!c)
		goto fail;
	/* The parts are copied in as the object's memory is reserved. */
	rc = waiting_create(c, &id, p.total, (uint32_t)meta.len, timeout_ms,
	                    seg, (size_t)p.n + 1, &data, &mdata);
	if (rc < 0 || rc == PYSHOAL_PYERR) {
		pyclient_fail(self, c, rc, "put: create");
		goto fail;
	}
	ts = PyEval_SaveThread();
	rc = shoal_seal(c->client, &id);
	if (rc < 0) {
		shoal_abort(c->client, &id);
	} else {
		if (name)
			rc = name_or_delete(c->client, name, (size_t)nlen, &id,
			                    &opts, &version);
		shoal_release_id(c->client, &id);
	}
	PyEval_RestoreThread(ts);
	if (rc < 0) {
		pyclient_fail(self, c, rc,
		              name ? "put: set name" : "put: seal");
		goto fail;
	}
	Py_DECREF(c);
	PyMem_Free(seg);
	parts_free(&p);
	PyBuffer_Release(&meta);
	if (name)
		return PyLong_FromUnsignedLongLong(version);
	Py_RETURN_NONE;
fail:
	Py_XDECREF(c);
	PyMem_Free(seg);
	if (p.v)
		parts_free(&p);
	PyBuffer_Release(&meta);
	return NULL;
}

/* -------------------------------------------------------------- getting */

struct get_call {
	shoal_client *c;
	const shoal_id *ids;
	size_t n;
	shoal_view *views;
};

static int get_fn(void *arg, int64_t timeout_ms)
{
	struct get_call *a = arg;

	return shoal_get(a->c, a->ids, a->n, timeout_ms, a->views);
}

/*
 * Gets n objects into views in one request, waiting up to timeout_ms.
 * Returns 0 (views with status 0 are pinned), or a libshoal code /
 * PYSHOAL_PYERR with no view held.
 */
static int waiting_get(pyconn_object *c, const shoal_id *ids, size_t n,
                       int64_t timeout_ms, shoal_view *views)
{
	struct get_call a = {c->client, ids, n, views};

	/* Interrupted, nothing is held; when the time ran out then, every
	 * view says SHOAL_ENOTFOUND. */
	return pyshoal_wait(get_fn, &a, timeout_ms, 0, NULL);
}

PyObject *pyops_get(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"ids", "timeout", NULL};
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	PyObject *idsobj, *seq = NULL, *out = NULL;
	long long timeout_ms = 0;
	shoal_id *ids = NULL;
	shoal_view *views = NULL;
	pyconn_object *c = NULL;
	Py_ssize_t n;
	int rc;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "O|L:get", kwlist,
	                                        &idsobj, &timeout_ms))
		return NULL;
	seq = PySequence_Fast(idsobj, "get takes a sequence of IDs");
	if (!seq)
		return NULL;
	n = PySequence_Fast_GET_SIZE(seq);
	if (n > SHOAL_BATCH_MAX) {
		pyshoal_raise(st, SHOAL_ETOOBIG, "get: too many IDs");
		goto out;
	}
	ids = PyMem_Malloc((size_t)n * sizeof(*ids) + 1);
	views = PyMem_Calloc((size_t)n + 1, sizeof(*views));
	if (!ids || !views) {
		PyErr_NoMemory();
		goto out;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		if (pyid_parse(st, PySequence_Fast_GET_ITEM(seq, i), &ids[i]) <
		    0)
			goto out;
	c = pyclient_conn_for(self, timeout_ms);
	if (!c)
		goto out;
	rc = waiting_get(c, ids, (size_t)n, timeout_ms, views);
	if (rc != 0) {
		pyclient_fail(self, c, rc, "get");
		goto out;
	}
	out = PyList_New(n);
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *item;

		if (views[i].status != 0) {
			item = Py_NewRef(Py_None);
		} else if (out) {
			item = pybuf_from_view(st, c, &views[i]);
		} else {
			/* An earlier step failed: release the rest. */
			shoal_release(c->client, &views[i]);
			continue;
		}
		if (!item || !out) {
			Py_XDECREF(item);
			Py_CLEAR(out);
			continue;
		}
		PyList_SET_ITEM(out, i, item);
	}
out:
	if (c)
		pyclient_done_with(self, c, timeout_ms);
	PyMem_Free(ids);
	PyMem_Free(views);
	Py_XDECREF(seq);
	return out;
}

struct get_name_call {
	shoal_client *c;
	const char *name;
	size_t len;
	shoal_view *view;
	uint64_t *version;
};

static int get_name_fn(void *arg, int64_t timeout_ms)
{
	struct get_name_call *a = arg;

	return shoal_get_name(a->c, a->name, a->len, timeout_ms, a->view,
	                      a->version);
}

PyObject *pyops_get_name(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "timeout", NULL};
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	PyObject *nameobj, *buf;
	long long timeout_ms = 0;
	const char *name;
	Py_ssize_t nlen;
	uint64_t version = 0;
	pyconn_object *c;
	shoal_view view;
	int rc;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "O|L:get_name",
	                                        kwlist, &nameobj, &timeout_ms))
		return NULL;
	if (pyclient_parse_name(nameobj, &name, &nlen) < 0)
		return NULL;
	c = pyclient_conn_for(self, timeout_ms);
	if (!c)
		return NULL;
	struct get_name_call a = {c->client, name, (size_t)nlen, &view,
	                          &version};
	rc = pyshoal_wait(get_name_fn, &a, timeout_ms, SHOAL_ENOTFOUND, NULL);
	if (rc == SHOAL_ENOTFOUND) {
		PyErr_SetObject(st->object_not_found, nameobj);
		pyclient_done_with(self, c, timeout_ms);
		return NULL;
	}
	if (rc != 0) {
		pyclient_fail(self, c, rc, "get_name");
		pyclient_done_with(self, c, timeout_ms);
		return NULL;
	}
	buf = pybuf_from_view(st, c, &view);
	pyclient_done_with(self, c, timeout_ms);
	if (!buf)
		return NULL;
	return Py_BuildValue("NK", buf, (unsigned long long)version);
}

/* ---------------------------------------------------------------- names */

/* The arguments of a set_name or delete_name call. */
struct name_call {
	const char *name;
	Py_ssize_t len;
	const shoal_id *id;
	const uint64_t *ev;
	uint64_t ttl, version;
	unsigned flags;
};

static int set_name_fn(shoal_client *c, void *arg)
{
	struct name_call *a = arg;

	return shoal_set_name_ttl(c, a->name, (size_t)a->len, a->id, a->ev,
	                          a->ttl, a->flags, &a->version);
}

static int delete_name_fn(shoal_client *c, void *arg)
{
	struct name_call *a = arg;

	return shoal_delete_name(c, a->name, (size_t)a->len, a->ev);
}

PyObject *pyops_set_name(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "id",        "expected_version",
	                         "ttl",  "evictable", NULL};
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	PyObject *nameobj, *idobj, *evobj = Py_None;
	unsigned long long ttl = 0;
	int evictable = 0;
	struct name_call a = {0};
	uint64_t evv;
	shoal_id id;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "OO|OKp:set_name",
	                                        kwlist, &nameobj, &idobj,
	                                        &evobj, &ttl, &evictable))
		return NULL;
	if (pyclient_parse_name(nameobj, &a.name, &a.len) < 0 ||
	    pyid_parse(st, idobj, &id) < 0 ||
	    pyclient_parse_version(evobj, &evv, &a.ev) < 0)
		return NULL;
	a.id = &id;
	a.ttl = ttl;
	a.flags = evictable ? SHOAL_NAME_EVICTABLE : 0;
	if (pyclient_call(self, "set_name", NULL, set_name_fn, &a) < 0)
		return NULL;
	return PyLong_FromUnsignedLongLong(a.version);
}

PyObject *pyops_delete_name(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "expected_version", NULL};
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	PyObject *nameobj, *evobj = Py_None;
	struct name_call a = {0};
	uint64_t evv;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "O|O:delete_name",
	                                        kwlist, &nameobj, &evobj))
		return NULL;
	if (pyclient_parse_name(nameobj, &a.name, &a.len) < 0 ||
	    pyclient_parse_version(evobj, &evv, &a.ev) < 0 ||
	    pyclient_call(self, "delete_name", nameobj, delete_name_fn, &a) < 0)
		return NULL;
	Py_RETURN_NONE;
}

/* One page of a listing (shoal_list or shoal_list_names, page untyped);
 * ctx is the collector's argument. */
typedef int list_fetch(shoal_client *c, const void *ctx, uint64_t *cursor,
                       void *page, size_t max, size_t *count);
/* The Python tuple of one entry of a page, or NULL with an exception. */
typedef PyObject *list_entry(pyshoal_state *st, const void *entry);

/*
 * Collects a whole paged listing into a list of tuples: fetches pages of
 * page_len entries of entry_size bytes with the GIL released and converts
 * each entry. what names the call in errors.
 */
static PyObject *collect_pages(PyObject *obj, const char *what,
                               size_t entry_size, size_t page_len,
                               list_fetch *fetch, const void *ctx,
                               list_entry *convert)
{
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	uint64_t cursor = 0;
	uint8_t *page;
	PyObject *out;
	pyconn_object *c;
	int rc;

	if (!st)
		return NULL;
	page = PyMem_Malloc(page_len * entry_size);
	out = PyList_New(0);
	c = page && out ? pyclient_conn(self) : NULL;
	if (!page)
		PyErr_NoMemory();
	if (!c)
		goto fail;
	do {
		PyThreadState *ts = PyEval_SaveThread();
		size_t count = 0;

		rc = fetch(c->client, ctx, &cursor, page, page_len, &count);
		PyEval_RestoreThread(ts);
		if (rc < 0) {
			pyclient_fail(self, c, rc, what);
			goto fail;
		}
		for (size_t i = 0; i < count; i++) {
			PyObject *t = convert(st, page + i * entry_size);

			if (!t || PyList_Append(out, t) < 0) {
				Py_XDECREF(t);
				goto fail;
			}
			Py_DECREF(t);
		}
	} while (cursor != 0);
	Py_DECREF(c);
	PyMem_Free(page);
	return out;
fail:
	Py_XDECREF(c);
	Py_XDECREF(out);
	PyMem_Free(page);
	return NULL;
}

/*
 * list_names(prefix=None): pages by name, each page asking for the names
 * after the last one of the previous page (shoal_list_names_after), so
 * listings in several threads on one connection never disturb each other.
 */
PyObject *pyops_list_names(PyObject *obj, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"prefix", NULL};
	enum { PAGE = 256, NAME_BYTES = 64 * 1024 };
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	PyObject *prefixobj = Py_None, *out = NULL;
	const char *prefix = "";
	Py_ssize_t plen = 0;
	shoal_name_info *page = NULL;
	char *after = NULL, *names = NULL;
	size_t alen = 0;
	pyconn_object *c = NULL;
	int more = 1;

	if (!st || !PyArg_ParseTupleAndKeywords(args, kw, "|O:list_names",
	                                        kwlist, &prefixobj))
		return NULL;
	if (prefixobj != Py_None) {
		if (!PyUnicode_Check(prefixobj)) {
			PyErr_Format(PyExc_TypeError,
			             "prefix must be str, not %.100s",
			             Py_TYPE(prefixobj)->tp_name);
			return NULL;
		}
		prefix = PyUnicode_AsUTF8AndSize(prefixobj, &plen);
		if (!prefix)
			return NULL;
	}
	page = PyMem_Malloc(PAGE * sizeof(*page));
	after = PyMem_Malloc(SHOAL_NAME_MAX + 1);
	names = PyMem_Malloc(NAME_BYTES);
	out = PyList_New(0);
	if (!page || !after || !names) {
		PyErr_NoMemory();
		goto fail;
	}
	if (!out || !(c = pyclient_conn(self)))
		goto fail;
	while (more) {
		PyThreadState *ts = PyEval_SaveThread();
		size_t count = 0;
		int rc = shoal_list_names_after(c->client, prefix, (size_t)plen,
		                                after, alen, page, PAGE, names,
		                                NAME_BYTES, &count, &more);
		PyEval_RestoreThread(ts);
		if (rc < 0) {
			pyclient_fail(self, c, rc, "list_names");
			goto fail;
		}
		for (size_t i = 0; i < count; i++) {
			PyObject *t = pyname_info_tuple(st, &page[i]);
			if (!t || PyList_Append(out, t) < 0) {
				Py_XDECREF(t);
				goto fail;
			}
			Py_DECREF(t);
		}
		if (more) {
			alen = page[count - 1].name_len;
			memcpy(after, page[count - 1].name, alen);
		}
	}
	Py_DECREF(c);
	PyMem_Free(page);
	PyMem_Free(after);
	PyMem_Free(names);
	return out;
fail:
	Py_XDECREF(c);
	Py_XDECREF(out);
	PyMem_Free(page);
	PyMem_Free(after);
	PyMem_Free(names);
	return NULL;
}

/* -------------------------------------------------------------- objects */

/* Parses a sequence of IDs into a PyMem array. */
static shoal_id *parse_ids(pyshoal_state *st, PyObject *obj, Py_ssize_t *n)
{
	PyObject *seq = PySequence_Fast(obj, "expected a sequence of IDs");
	shoal_id *ids;

	if (!seq)
		return NULL;
	*n = PySequence_Fast_GET_SIZE(seq);
	ids = PyMem_Malloc((size_t)*n * sizeof(*ids) + 1);
	if (!ids) {
		Py_DECREF(seq);
		PyErr_NoMemory();
		return NULL;
	}
	for (Py_ssize_t i = 0; i < *n; i++) {
		if (pyid_parse(st, PySequence_Fast_GET_ITEM(seq, i), &ids[i]) <
		    0) {
			PyMem_Free(ids);
			Py_DECREF(seq);
			return NULL;
		}
	}
	Py_DECREF(seq);
	return ids;
}

PyObject *pyops_delete(PyObject *obj, PyObject *idsobj)
{
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	PyObject *out = NULL;
	pyconn_object *c = NULL;
	shoal_id *ids;
	int *res = NULL;
	Py_ssize_t n;
	int rc;

	if (!st || !(ids = parse_ids(st, idsobj, &n)))
		return NULL;
	res = PyMem_Malloc((size_t)n * sizeof(*res) + 1);
	if (!res) {
		PyErr_NoMemory();
		goto out;
	}
	c = pyclient_conn(self);
	if (!c)
		goto out;
	for (Py_ssize_t done = 0; done < n;) {
		size_t k = (size_t)(n - done) < SHOAL_BATCH_MAX
		                   ? (size_t)(n - done)
		                   : SHOAL_BATCH_MAX;
		PyThreadState *ts = PyEval_SaveThread();

		rc = shoal_delete(c->client, ids + done, k, res + done);
		PyEval_RestoreThread(ts);
		if (rc < 0) {
			pyclient_fail(self, c, rc, "delete");
			goto out;
		}
		done += (Py_ssize_t)k;
	}
	out = PyList_New(n);
	for (Py_ssize_t i = 0; out && i < n; i++)
		PyList_SET_ITEM(out, i, PyLong_FromLong(res[i]));
out:
	Py_XDECREF(c);
	PyMem_Free(ids);
	PyMem_Free(res);
	return out;
}

struct contains_call {
	shoal_id id;
	int state;
};

static int contains_fn(shoal_client *c, void *arg)
{
	struct contains_call *a = arg;

	return shoal_contains(c, &a->id, &a->state);
}

PyObject *pyops_contains(PyObject *obj, PyObject *idobj)
{
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	struct contains_call a = {.state = 0};

	if (!st || pyid_parse(st, idobj, &a.id) < 0 ||
	    pyclient_call(self, "contains", NULL, contains_fn, &a) < 0)
		return NULL;
	return PyLong_FromLong(a.state);
}

/* in: the bytes to free; out: the bytes freed. */
static int evict_fn(shoal_client *c, void *arg)
{
	uint64_t *bytes = arg;

	return shoal_evict(c, *bytes, bytes);
}

PyObject *pyops_evict(PyObject *obj, PyObject *arg)
{
	unsigned long long nbytes = PyLong_AsUnsignedLongLong(arg);
	uint64_t bytes = nbytes;

	if ((nbytes == (unsigned long long)-1 && PyErr_Occurred()) ||
	    pyclient_call((pyclient_object *)obj, "evict", NULL, evict_fn,
	                  &bytes) < 0)
		return NULL;
	return PyLong_FromUnsignedLongLong(bytes);
}

static int fetch_objects(shoal_client *c, const void *ctx, uint64_t *cursor,
                         void *page, size_t max, size_t *count)
{
	(void)ctx;
	return shoal_list(c, cursor, page, max, count);
}

static PyObject *object_entry(pyshoal_state *st, const void *entry)
{
	const shoal_object_info *o = entry;

	return Py_BuildValue("(N i K I I I K L)", pyid_new(st, &o->id),
	                     o->state, (unsigned long long)o->data_size,
	                     (unsigned)o->metadata_size, (unsigned)o->holders,
	                     (unsigned)o->names,
	                     (unsigned long long)o->create_time_ns,
	                     (long long)o->construct_ms);
}

PyObject *pyops_list(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	return collect_pages(obj, "list", sizeof(shoal_object_info), 1024,
	                     fetch_objects, NULL, object_entry);
}

static int stats_fn(shoal_client *c, void *arg)
{
	return shoal_get_stats(c, (shoal_stats *)arg);
}

PyObject *pyops_stats(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	shoal_stats s;

	if (pyclient_call((pyclient_object *)obj, "stats", NULL, stats_fn, &s) <
	    0)
		return NULL;
#define K(f) #f, (unsigned long long)s.f
	return Py_BuildValue(
	        "{s:K s:K s:K s:K s:K s:K s:K s:K s:K s:K s:K s:K s:K s:K s:K "
	        "s:K s:K}",
	        K(capacity_bytes), K(used_bytes), K(objects), K(sealed_objects),
	        K(pending_deletes), K(names), K(clients), K(evictions),
	        K(evicted_bytes), K(creates), K(gets), K(backed_bytes),
	        K(largest_free), K(uptime_ms), K(expired), K(evicted_names),
	        K(requests));
#undef K
}
