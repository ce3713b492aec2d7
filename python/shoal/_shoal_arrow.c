/*
 * _shoal_arrow.c - where the columns of a stored frame lie, in one call.
 *
 * A stored frame is an Arrow IPC stream of exactly one schema message and
 * one record batch (python/shoal/_frames.py writes it so). Reading a pandas
 * frame from it needs, per column, the row and null counts and the
 * position of each buffer - which pyarrow's reader gives only after
 * building a reader, a schema and an Array per column, the largest part
 * of a warm get. batch_layout() reads those numbers straight from the
 * record batch message.
 *
 * The messages are flatbuffers (Arrow's format/Message.fbs): a message is
 * the continuation marker 0xFFFFFFFF, a 32-bit metadata length, the
 * flatbuffer (a root offset to the Message table) and then the message's
 * body. A table starts with a signed 32-bit offset back to its vtable; the
 * vtable lists 16-bit offsets of the table's fields, 0 for a field that is
 * absent. Everything is little-endian.
 *
 * Shared memory is the writer's; nothing in it is trusted. Every offset is
 * checked against the object's size before it is followed, and anything
 * this reader does not expect (a dictionary batch, compression, variadic
 * buffer counts, a legacy stream without continuation markers) makes it
 * answer None: the caller then takes pyarrow's general reader.
 */
#include "_shoal.h"

#include <endian.h>
#include <string.h>

enum {
	MSG_HEADER_TYPE = 1, /* Message fields */
	MSG_HEADER = 2,
	MSG_BODY_LENGTH = 3,
	RB_LENGTH = 0, /* RecordBatch fields */
	RB_NODES = 1,
	RB_BUFFERS = 2,
	RB_COMPRESSION = 3,
	RB_VARIADIC = 4,
	HEADER_SCHEMA = 1, /* MessageHeader union tags */
	HEADER_RECORD_BATCH = 3,
};

/* A flatbuffer of len bytes at p. */
struct fbuf {
	const unsigned char *p;
	size_t len;
};

static int fb_u32(const struct fbuf *b, size_t at, uint32_t *out)
{
	if (at > b->len || b->len - at < 4)
		return -1;
	memcpy(out, b->p + at, 4);
	*out = le32toh(*out);
	return 0;
}

static int fb_i64(const struct fbuf *b, size_t at, int64_t *out)
{
	uint64_t v;

	if (at > b->len || b->len - at < 8)
		return -1;
	memcpy(&v, b->p + at, 8);
	*out = (int64_t)le64toh(v);
	return 0;
}

/* The position of field i of the table at t, 0 if it is absent, -1 if the
 * table or its vtable lies outside the buffer. */
static int64_t fb_field(const struct fbuf *b, size_t t, unsigned i)
{
	uint32_t soff;
	int64_t vt;
	uint16_t vsize, off;

	if (fb_u32(b, t, &soff) < 0)
		return -1;
	vt = (int64_t)t - (int32_t)soff;
	if (vt < 0 || (size_t)vt > b->len || b->len - (size_t)vt < 4)
		return -1;
	memcpy(&vsize, b->p + vt, 2);
	vsize = le16toh(vsize);
	if ((size_t)vt + vsize > b->len)
		return -1;
	if (4 + 2 * (size_t)i + 2 > vsize)
		return 0;
	memcpy(&off, b->p + vt + 4 + 2 * i, 2);
	off = le16toh(off);
	if (off == 0)
		return 0;
	if (t + off >= b->len)
		return -1;
	return (int64_t)(t + off);
}

/* Follows the offset field i of the table at t (a table, vector or
 * string): its position in *out, 0 if absent. -1 if out of bounds. */
static int fb_ref(const struct fbuf *b, size_t t, unsigned i, size_t *out)
{
	int64_t at = fb_field(b, t, i);
	uint32_t rel;

	*out = 0;
	if (at <= 0)
		return (int)at;
	if (fb_u32(b, (size_t)at, &rel) < 0 || rel == 0 ||
	    (size_t)at + rel >= b->len)
		return -1;
	*out = (size_t)at + rel;
	return 0;
}

/* A vector of n structs of 16 bytes (two int64s) at v: *n, or -1. */
static int fb_pairs(const struct fbuf *b, size_t v, size_t *n)
{
	uint32_t count;

	if (fb_u32(b, v, &count) < 0 || (b->len - v - 4) / 16 < count)
		return -1;
	*n = count;
	return 0;
}

/* One message at pos of an object of size bytes: its Message table, the
 * header union's tag and table, the body's position and length. Returns
 * the position after the message, or -1. */
static int64_t read_message(const unsigned char *obj, size_t size, size_t pos,
                            struct fbuf *fb, size_t *header, unsigned *type,
                            size_t *body, int64_t *body_len)
{
	uint32_t mark, len, root;
	int64_t at;
	size_t msg;

	if (pos > size || size - pos < 8)
		return -1;
	memcpy(&mark, obj + pos, 4);
	memcpy(&len, obj + pos + 4, 4);
	len = le32toh(len);
	if (mark != 0xFFFFFFFFu || len == 0 || len > size - pos - 8)
		return -1;
	fb->p = obj + pos + 8;
	fb->len = len;
	if (fb_u32(fb, 0, &root) < 0 || root >= len)
		return -1;
	msg = root;
	at = fb_field(fb, msg, MSG_HEADER_TYPE);
	if (at <= 0)
		return -1;
	*type = fb->p[at];
	if (fb_ref(fb, msg, MSG_HEADER, header) < 0 || *header == 0)
		return -1;
	*body_len = 0;
	at = fb_field(fb, msg, MSG_BODY_LENGTH);
	if (at < 0 || (at > 0 && fb_i64(fb, (size_t)at, body_len) < 0))
		return -1;
	*body = pos + 8 + len;
	if (*body_len < 0 || (uint64_t)*body_len > size - *body)
		return -1;
	return (int64_t)(*body + (size_t)*body_len);
}

/* Packs the n (a, b) int64 pairs of the vector at v into a flat tuple.
 * Buffers (span >= 0) are (offset, length) in a body of span bytes at base:
 * each must lie inside it, and base is added to its offset. NULL with an
 * exception, or Py_None (new ref) when a pair is out of range. */
static PyObject *pairs_tuple(const struct fbuf *fb, size_t v, size_t n,
                             int64_t base, int64_t span)
{
	PyObject *t = PyTuple_New((Py_ssize_t)(2 * n));

	if (!t)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int64_t a, b;
		PyObject *x, *y;

		if (fb_i64(fb, v + 4 + 16 * i, &a) < 0 ||
		    fb_i64(fb, v + 4 + 16 * i + 8, &b) < 0 || a < 0 || b < 0 ||
		    (span >= 0 && (a > span || b > span - a))) {
			Py_DECREF(t);
			Py_RETURN_NONE;
		}
		x = PyLong_FromLongLong(base + a);
		y = PyLong_FromLongLong(b);
		if (!x || !y) {
			Py_XDECREF(x);
			Py_XDECREF(y);
			Py_DECREF(t);
			return NULL;
		}
		PyTuple_SET_ITEM(t, (Py_ssize_t)(2 * i), x);
		PyTuple_SET_ITEM(t, (Py_ssize_t)(2 * i + 1), y);
	}
	return t;
}

/* The layout of a (schema, record batch) stream of size bytes at obj, as
 * described in _shoal.h. */
static PyObject *layout(const unsigned char *obj, size_t size)
{
	struct fbuf fb;
	size_t header, body, nodes, buffers, nn, nb, extra;
	unsigned type;
	int64_t next, body_len, rows = 0, at;
	PyObject *pn, *pb;

	next = read_message(obj, size, 0, &fb, &header, &type, &body,
	                    &body_len);
	if (next < 0 || type != HEADER_SCHEMA)
		Py_RETURN_NONE;
	next = read_message(obj, size, (size_t)next, &fb, &header, &type, &body,
	                    &body_len);
	if (next < 0 || type != HEADER_RECORD_BATCH)
		Py_RETURN_NONE;
	at = fb_field(&fb, header, RB_LENGTH);
	if (at < 0 || (at > 0 && fb_i64(&fb, (size_t)at, &rows) < 0) ||
	    rows < 0)
		Py_RETURN_NONE;
	if (fb_ref(&fb, header, RB_NODES, &nodes) < 0 || nodes == 0 ||
	    fb_pairs(&fb, nodes, &nn) < 0 ||
	    fb_ref(&fb, header, RB_BUFFERS, &buffers) < 0 || buffers == 0 ||
	    fb_pairs(&fb, buffers, &nb) < 0)
		Py_RETURN_NONE;
	if (fb_ref(&fb, header, RB_COMPRESSION, &extra) < 0 || extra)
		Py_RETURN_NONE;
	if (fb_ref(&fb, header, RB_VARIADIC, &extra) < 0 || extra)
		Py_RETURN_NONE;
	pn = pairs_tuple(&fb, nodes, nn, 0, -1);
	if (!pn || pn == Py_None)
		return pn;
	pb = pairs_tuple(&fb, buffers, nb, (int64_t)body, body_len);
	if (!pb || pb == Py_None) {
		Py_DECREF(pn);
		return pb;
	}
	return Py_BuildValue("(L N N)", (long long)rows, pn, pb);
}

PyObject *pyarrow_batch_layout(PyObject *Py_UNUSED(module), PyObject *obj)
{
	Py_buffer view;
	PyObject *out;

	if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
		return NULL;
	out = layout(view.buf, (size_t)view.len);
	PyBuffer_Release(&view);
	return out;
}
