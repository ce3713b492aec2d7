/*
 * _shoal_names.c - the Client methods of the cache layer: a name's time to
 * live (expire, persist), its metadata (name_info), deleting a namespace
 * (delete_prefix), and the daemon's process ID (for `shoal stop`-like
 * tools). Each is one round trip with the GIL released, like the methods in
 * _shoal_ops.c.
 */
#include "_shoal.h"

PyObject *pyname_info_tuple(pyshoal_state *st, const shoal_name_info *n)
{
	/* Names are UTF-8 when Python wrote them; a C client may have stored
	 * other bytes, which must not make a listing fail. */
	PyObject *name = PyUnicode_DecodeUTF8(n->name, (Py_ssize_t)n->name_len,
	                                      "surrogateescape");

	if (!name)
		return NULL;
	return Py_BuildValue("(N N K K I I L)", name, pyid_new(st, &n->id),
	                     (unsigned long long)n->version,
	                     (unsigned long long)n->data_size,
	                     (unsigned)n->metadata_size, (unsigned)n->flags,
	                     (long long)n->ttl_ms);
}

/* Runs a name call on self's connection with the GIL released. A missing
 * name raises ObjectNotFound(name). Returns rc (< 0 with an exception). */
typedef int name_fn(shoal_client *c, const char *name, size_t len, void *arg);

static int call_named(PyObject *obj, PyObject *nameobj, const char *what,
                      name_fn *fn, void *arg)
{
	pyclient_object *self = (pyclient_object *)obj;
	pyshoal_state *st = pyclient_state(self);
	const char *name;
	Py_ssize_t nlen;
	pyconn_object *c;
	PyThreadState *ts;
	int rc;

	if (!st || pyclient_parse_name(nameobj, &name, &nlen) < 0)
		return -1;
	c = pyclient_conn(self);
	if (!c)
		return -1;
	ts = PyEval_SaveThread();
	rc = fn(c->client, name, (size_t)nlen, arg);
	PyEval_RestoreThread(ts);
	if (rc == SHOAL_ENOTFOUND)
		PyErr_SetObject(st->object_not_found, nameobj);
	else if (rc < 0)
		pyclient_fail(self, c, rc, what);
	Py_DECREF(c);
	return rc;
}

static int do_expire(shoal_client *c, const char *name, size_t len, void *arg)
{
	return shoal_expire(c, name, len, *(unsigned long long *)arg);
}

PyObject *pynames_expire(PyObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = {"name", "ttl", NULL};
	PyObject *nameobj;
	unsigned long long ttl;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "OK:expire", kwlist,
	                                 &nameobj, &ttl))
		return NULL;
	if (call_named(self, nameobj, "expire", do_expire, &ttl) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static int do_persist(shoal_client *c, const char *name, size_t len, void *arg)
{
	(void)arg;
	return shoal_persist(c, name, len);
}

PyObject *pynames_persist(PyObject *self, PyObject *nameobj)
{
	if (call_named(self, nameobj, "persist", do_persist, NULL) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static int do_info(shoal_client *c, const char *name, size_t len, void *arg)
{
	return shoal_name_stat(c, name, len, arg);
}

PyObject *pynames_name_info(PyObject *self, PyObject *nameobj)
{
	pyshoal_state *st = pyclient_state((pyclient_object *)self);
	shoal_name_info info;

	/* info.name is the bytes of nameobj, which outlives the call. */
	if (!st || call_named(self, nameobj, "name_info", do_info, &info) < 0)
		return NULL;
	return pyname_info_tuple(st, &info);
}

PyObject *pynames_delete_prefix(PyObject *obj, PyObject *prefixobj)
{
	pyclient_object *self = (pyclient_object *)obj;
	const char *prefix;
	Py_ssize_t len;
	uint64_t count = 0;
	pyconn_object *c;
	PyThreadState *ts;
	int rc;

	if (!PyUnicode_Check(prefixobj)) {
		PyErr_Format(PyExc_TypeError, "a prefix is a str, not %.100s",
		             Py_TYPE(prefixobj)->tp_name);
		return NULL;
	}
	prefix = PyUnicode_AsUTF8AndSize(prefixobj, &len);
	if (!prefix)
		return NULL;
	c = pyclient_conn(self);
	if (!c)
		return NULL;
	ts = PyEval_SaveThread();
	rc = shoal_delete_prefix(c->client, prefix, (size_t)len, &count);
	PyEval_RestoreThread(ts);
	if (rc < 0)
		pyclient_fail(self, c, rc, "delete_prefix");
	Py_DECREF(c);
	if (rc < 0)
		return NULL;
	return PyLong_FromUnsignedLongLong(count);
}

PyObject *pynames_daemon_pid(PyObject *obj, PyObject *unused)
{
	pyclient_object *self = (pyclient_object *)obj;
	int64_t pid = 0;
	pyconn_object *c;
	int rc;

	(void)unused;
	c = pyclient_conn(self);
	if (!c)
		return NULL;
	rc = shoal_daemon_pid(c->client, &pid);
	if (rc < 0)
		pyclient_fail(self, c, rc, "daemon_pid");
	Py_DECREF(c);
	if (rc < 0)
		return NULL;
	return PyLong_FromLongLong(pid);
}
