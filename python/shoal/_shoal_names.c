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

struct named_call {
	name_fn *fn;
	const char *name;
	size_t len;
	void *arg;
};

static int named_fn(shoal_client *c, void *arg)
{
	struct named_call *a = arg;

	return a->fn(c, a->name, a->len, a->arg);
}

static int call_named(PyObject *obj, PyObject *nameobj, const char *what,
                      name_fn *fn, void *arg)
{
	struct named_call a = {fn, NULL, 0, arg};
	Py_ssize_t nlen;

	if (pyclient_parse_name(nameobj, &a.name, &nlen) < 0)
		return -1;
	a.len = (size_t)nlen;
	return pyclient_call((pyclient_object *)obj, what, nameobj, named_fn,
	                     &a);
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

struct prefix_call {
	const char *prefix;
	Py_ssize_t len;
	uint64_t count;
};

static int delete_prefix_fn(shoal_client *c, void *arg)
{
	struct prefix_call *a = arg;

	return shoal_delete_prefix(c, a->prefix, (size_t)a->len, &a->count);
}

PyObject *pynames_delete_prefix(PyObject *obj, PyObject *prefixobj)
{
	struct prefix_call a = {0};

	if (!PyUnicode_Check(prefixobj)) {
		PyErr_Format(PyExc_TypeError, "a prefix is a str, not %.100s",
		             Py_TYPE(prefixobj)->tp_name);
		return NULL;
	}
	a.prefix = PyUnicode_AsUTF8AndSize(prefixobj, &a.len);
	if (!a.prefix || pyclient_call((pyclient_object *)obj, "delete_prefix",
	                               NULL, delete_prefix_fn, &a) < 0)
		return NULL;
	return PyLong_FromUnsignedLongLong(a.count);
}

static int daemon_pid_fn(shoal_client *c, void *arg)
{
	return shoal_daemon_pid(c, arg);
}

PyObject *pynames_daemon_pid(PyObject *obj, PyObject *Py_UNUSED(unused))
{
	int64_t pid = 0;

	if (pyclient_call((pyclient_object *)obj, "daemon_pid", NULL,
	                  daemon_pid_fn, &pid) < 0)
		return NULL;
	return PyLong_FromLongLong(pid);
}
