/*
 * objects.c - the object calls of the client library: create (and
 * create_from), seal, abort, get, release (by view or by ID), delete,
 * contains, evict, list, stats and put.
 *
 * Each call is one request on the connection (seal sends one and waits for
 * nothing; release sends at most one, see drop_view()). Every offset a reply
 * carries is checked against the mapping before a pointer is formed from it, so
 * a wrong or hostile reply yields SHOAL_EPROTO, never a crash.
 *
 * Holds: create puts the new object in the map of unsealed creates (ID ->
 * handle); seal moves it to the view map with a count of 1, which is the
 * creator's hold; abort drops it. get adds one count per returned view;
 * release takes one away and queues a RELEASE when the last one goes: it
 * rides with the next request for a small object (CLIENT_DEFER_*) and is
 * sent at once for a large one.
 *
 * Memory reservation: a create reply without PROTO_CREATE_BACKED means the
 * daemon does not know that the object's pages exist; the client populates
 * them with MADV_POPULATE_WRITE before handing out the pointer, so a machine
 * that cannot back the object gives SHOAL_EFULL instead of a later SIGBUS.
 * With the flag, the client still populates the whole chunks it has never
 * mapped, which is cheaper than taking one page fault per page. populate.c
 * does the populating, on several CPUs for a large object; create_from
 * copies the caller's segments into the object meanwhile.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "client_internal.h"
#include "layout.h"
#include "os.h"

bool client_range_ok(const shoal_client *c, uint64_t offset, uint64_t size)
{
	return offset >= c->data_offset && offset <= c->map_size &&
	       size <= c->map_size - offset;
}

int client_check_object(const shoal_client *c, const struct proto_object *o)
{
	if (o->status > 0)
		return SHOAL_EPROTO;
	if (o->status < 0)
		return o->status;
	if (o->data_size > UINT64_MAX - o->metadata_size ||
	    !client_range_ok(c, o->offset, o->data_size + o->metadata_size))
		return SHOAL_EPROTO;
	return 0;
}

void client_fill_view(const shoal_client *c, const struct proto_object *o,
                      const uint8_t *id, shoal_view *v)
{
	memcpy(v->id.bytes, id, SHOAL_ID_SIZE);
	v->status = 0;
	v->data_size = o->data_size;
	v->metadata_size = o->metadata_size;
	v->data = c->base + o->offset;
	v->metadata =
	        o->metadata_size ? c->base + o->offset + o->data_size : NULL;
	v->handle = o->handle;
}

/* A view that holds nothing, with the given status. */
static void empty_view(shoal_view *v, const uint8_t *id, int status)
{
	memset(v, 0, sizeof(*v));
	if (id)
		memcpy(v->id.bytes, id, SHOAL_ID_SIZE);
	v->status = status;
}

static bool timeout_ok(int64_t timeout_ms)
{
	return timeout_ms >= SHOAL_WAIT_FOREVER;
}

/* A copy to make into a new object while its memory is reserved. */
struct object_copy {
	const shoal_segment *segs;
	size_t n;
	bool done;
};

/* MADV_POPULATE_WRITE over [off, end) of the mapping, page-rounded, on
 * several CPUs for a large range (populate.c), copying cp's segments into
 * the object at off meanwhile if cp is given. Returns 0 or -errno; EINVAL
 * means the kernel predates the advice. */
static int populate_range(shoal_client *c, const struct client_map *m,
                          uint64_t off, uint64_t end, struct object_copy *cp)
{
	uint64_t mask = c->page_size - 1;
	uint64_t start = off & ~mask;
	bool copied = false;

	end = (end + mask) & ~mask;
	if (end > m->size)
		end = m->size;
	int rc = client_populate(c, m, start, end, off, cp ? cp->segs : NULL,
	                         cp ? cp->n : 0, &copied);
	if (cp)
		cp->done = copied;
	return rc;
}

static bool chunk_populated(const struct client_map *m, size_t k)
{
	return atomic_load(&m->populated[k / 64]) & (1ull << (k % 64));
}

static void mark_chunks(const struct client_map *m, size_t first, size_t end)
{
	for (size_t k = first; k < end; k++)
		atomic_fetch_or(&m->populated[k / 64], 1ull << (k % 64));
}

/*
 * Makes sure the object at [off, off + len) can be written without SIGBUS
 * (backed: the daemon vouches for it) and maps the whole chunks it covers
 * that this client has not mapped yet. Returns 0 or SHOAL_EFULL when the
 * machine cannot back the object.
 */
static int reserve_object(shoal_client *c, const struct client_map *m,
                          uint64_t off, uint64_t len, bool backed,
                          struct object_copy *cp)
{
	size_t first = (size_t)((off + LAYOUT_CHUNK - 1) / LAYOUT_CHUNK);
	size_t end = (size_t)((off + len) / LAYOUT_CHUNK);
	int rc;

	if (len == 0)
		return 0;
	if (!backed) {
		rc = populate_range(c, m, off, off + len, cp);
		/* Without MADV_POPULATE_WRITE (Linux < 5.14) the daemon's
		 * own reservation is all there is. */
		if (rc < 0 && rc != -EINVAL)
			return SHOAL_EFULL;
		if (rc == 0 && first < end)
			mark_chunks(m, first, end);
		return 0;
	}
	for (size_t k = first; k < end;) {
		size_t run = k;

		if (chunk_populated(m, k)) {
			k++;
			continue;
		}
		while (run < end && !chunk_populated(m, run))
			run++;
		rc = populate_range(c, m, (uint64_t)k * LAYOUT_CHUNK,
		                    (uint64_t)run * LAYOUT_CHUNK, NULL);
		if (rc == -EINVAL)
			return 0;
		if (rc < 0)
			return SHOAL_EFULL;
		mark_chunks(m, k, run);
		k = run;
	}
	return 0;
}

/* reserve_object(), then the copy of segs if it was not made meanwhile;
 * a large object from segments is filled by fill.c instead (with fd, a
 * writable arena fd or -1). */
static int populate_object(shoal_client *c, const struct client_map *m,
                           uint64_t off, uint64_t len, bool backed, int fd,
                           const shoal_segment *segs, size_t n)
{
	struct object_copy cp = {.segs = segs, .n = n};
	int rc = client_fill_wants(len, n)
	                 ? client_fill(c, m, off, len, backed, fd, segs, n)
	                 : CLIENT_FILL_DECLINED;

	if (rc != CLIENT_FILL_DECLINED)
		return rc;
	rc = reserve_object(c, m, off, len, backed, n ? &cp : NULL);

	if (rc == 0 && n && !cp.done)
		client_copy_segments(m, off, segs, n);
	return rc;
}

/*
 * The CREATE exchange: on 0, *offset and *backed describe the new object,
 * which is recorded as this client's unsealed create. io_lock must be held.
 */
static int create_locked(shoal_client *c, const shoal_id *id,
                         uint64_t data_size, uint32_t metadata_size,
                         int64_t timeout_ms, uint64_t *offset, bool *backed)
{
	struct proto_create req = {.metadata_size = metadata_size,
	                           .data_size = data_size,
	                           .timeout_ms = timeout_ms};
	struct iovec iov = {&req, sizeof(req)};
	struct proto_create_reply rep;
	const uint8_t *body;
	size_t len;
	int rc;

	memcpy(req.id, id->bytes, SHOAL_ID_SIZE);
	rc = client_refmap_reserve(&c->unsealed, 1);
	if (rc < 0)
		return rc;
	rc = client_call_wait(c, PROTO_CREATE, &iov, 1, sizeof(rep), timeout_ms,
	                      false, &body, &len);
	if (rc == SHOAL_EFULL && c->interrupted)
		return SHOAL_EINTR;
	if (rc < 0)
		return rc;
	memcpy(&rep, body, sizeof(rep));
	if (!client_range_ok(c, rep.offset, data_size + metadata_size) ||
	    client_refmap_find(&c->unsealed, 0, id))
		return SHOAL_EPROTO;
	struct client_ref *u =
	        client_refmap_insert(&c->unsealed, rep.handle, id);
	if (!u) /* cannot happen: room was reserved before the request */
		return SHOAL_ENOMEM;
	u->size = data_size + metadata_size;
	u->offset = rep.offset;
	client_freelog_created(c, rep.offset, u->size);
	*offset = rep.offset;
	*backed = rep.flags & PROTO_CREATE_BACKED;
	/* A reconnect during the call brought a new, read-only mapping. */
	rc = client_write_access(c);
	if (rc < 0)
		return rc;
	/* Only now, and only these pages, become writable in this client. */
	rc = client_window_open(c, rep.offset, u->size);
	if (rc < 0)
		return rc;
	u->window = 1;
	return 0;
}

/* Closes the window of an unsealed object of this client, if open. */
static void close_window(shoal_client *c, struct client_ref *u)
{
	if (u->window) {
		client_window_close(c, u->offset, u->size);
		u->window = 0;
	}
}

SHOAL_API int shoal_create(shoal_client *c, const shoal_id *id,
                           uint64_t data_size, uint32_t metadata_size,
                           int64_t timeout_ms, uint8_t **data,
                           uint8_t **metadata)
{
	return shoal_create_from(c, id, data_size, metadata_size, timeout_ms,
	                         NULL, 0, data, metadata);
}

SHOAL_API int shoal_create_from(shoal_client *c, const shoal_id *id,
                                uint64_t data_size, uint32_t metadata_size,
                                int64_t timeout_ms, const shoal_segment *segs,
                                size_t nsegs, uint8_t **data,
                                uint8_t **metadata)
{
	uint64_t offset = 0;
	bool backed = false;
	int rc, fd = -1;

	if (!c || !id || !data || !timeout_ok(timeout_ms))
		return SHOAL_EINVAL;
	/* Larger than the whole store: full, whatever the timeout. */
	if (data_size > c->capacity || metadata_size > c->capacity - data_size)
		return SHOAL_EFULL;
	if (client_check_segments(data_size + metadata_size, segs, nsegs) < 0)
		return SHOAL_EINVAL;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	/* An unsealed create of this ID from before is not ours to abort. */
	bool had = client_refmap_find(&c->unsealed, 0, id) != NULL;
	rc = client_write_access(c);
	/* Another arena answers: the daemon was restarted, and this client
	 * has not noticed yet. */
	if (rc == SHOAL_EARENA && client_reconnect(c) == 0)
		rc = client_write_access(c);
	if (rc == 0)
		rc = create_locked(c, id, data_size, metadata_size, timeout_ms,
		                   &offset, &backed);
	/* Fresh memory for a large object is written through the file
	 * (fill.c), with a writable fd held for this call only; without it
	 * the pages are populated and copied. */
	if (rc == 0 && !backed &&
	    client_fill_wants(data_size + metadata_size, nsegs))
		(void)client_writer_fd(c, &fd);
	bool made = !had && client_refmap_find(&c->unsealed, 0, id);
	/* From here on another thread may reconnect and replace c's mapping:
	 * the object's stays (retired, while the create is unsealed). */
	struct client_map m;
	client_map_of(c, &m);
	client_end(c);
	if (rc < 0) {
		if (made) /* created, but its window could not be opened */
			shoal_abort(c, id);
		return rc;
	}
	rc = populate_object(c, &m, offset, data_size + metadata_size, backed,
	                     fd, segs, nsegs);
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		shoal_abort(c, id);
		return rc;
	}
	*data = m.base + offset;
	if (metadata)
		*metadata = metadata_size ? m.base + offset + data_size : NULL;
	return 0;
}

SHOAL_API int shoal_seal(shoal_client *c, const shoal_id *id)
{
	struct proto_id_req req = {.flags = PROTO_SEAL_NOREPLY};
	struct iovec iov = {&req, sizeof(req)};
	struct client_ref *r;
	uint64_t handle;
	int rc;

	if (!id)
		return SHOAL_EINVAL;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	r = client_refmap_find(&c->unsealed, 0, id);
	if (!r) {
		/* Created before a reconnect: lost with its daemon. */
		rc = client_retired_forget_create(c, id) == 0
		             ? SHOAL_EUNAVAILABLE
		             : SHOAL_ENOTFOUND;
		goto out;
	}
	handle = r->handle;
	uint64_t size = r->size;
	/* Read-only before anyone can see it sealed: a write after seal
	 * faults here instead of changing what readers get. */
	close_window(c, r);
	pthread_mutex_lock(&c->ref_lock);
	rc = client_reserve_views(c, 1);
	pthread_mutex_unlock(&c->ref_lock);
	if (rc < 0)
		goto out;
	memcpy(req.id, id->bytes, SHOAL_ID_SIZE);
	rc = client_send(c, PROTO_SEAL, &iov, 1);
	/* The object is gone with its daemon. */
	if (rc == SHOAL_EUNAVAILABLE)
		client_refmap_remove(&c->unsealed, r);
	if (rc < 0)
		goto out;
	client_refmap_remove(&c->unsealed, r);
	pthread_mutex_lock(&c->ref_lock);
	client_hold(c, handle, id, size);
	pthread_mutex_unlock(&c->ref_lock);
out:
	client_end(c);
	return rc;
}

/*
 * An object this client did not create (or already sealed) is still asked
 * about, so that the daemon can say which of SHOAL_ESEALED, SHOAL_ENOTOWNER
 * or SHOAL_ENOTFOUND applies; only failures cost this round trip.
 */
SHOAL_API int shoal_abort(shoal_client *c, const shoal_id *id)
{
	struct proto_id_req req = {.flags = 0};
	struct iovec iov = {&req, sizeof(req)};
	struct client_ref *r;
	const uint8_t *body;
	size_t len;
	int rc;

	if (!id)
		return SHOAL_EINVAL;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	if (!client_refmap_find(&c->unsealed, 0, id) &&
	    client_retired_forget_create(c, id) == 0) {
		client_end(c); /* created before a reconnect: already gone */
		return 0;
	}
	memcpy(req.id, id->bytes, SHOAL_ID_SIZE);
	/* Closed before the daemon may hand the block to someone else. */
	r = client_refmap_find(&c->unsealed, 0, id);
	if (r)
		close_window(c, r);
	uint32_t epoch = c->epoch;
	rc = client_call(c, PROTO_ABORT, &iov, 1, sizeof(struct proto_reply),
	                 &body, &len);
	/* Whatever the answer, the daemon no longer keeps it for us. */
	r = client_refmap_find(&c->unsealed, 0, id);
	if (r)
		client_refmap_remove(&c->unsealed, r);
	/* Sent again after a reconnect: the object died with its daemon. */
	if (c->epoch != epoch && client_retired_forget_create(c, id) == 0)
		rc = 0;
	client_end(c);
	return rc;
}

/*
 * Checks a GET reply for n objects and fills the views, counting each
 * returned one. Nothing is counted unless the whole reply is valid.
 * io_lock must be held and the view map reserved for n more.
 */
static int take_get_reply(shoal_client *c, const uint8_t *body, size_t len,
                          const shoal_id *ids, size_t n, shoal_view *views)
{
	const uint8_t *objs = body + sizeof(struct proto_get_reply);
	struct proto_get_reply rep;
	struct proto_object o;

	if (len < sizeof(rep))
		return SHOAL_EPROTO;
	memcpy(&rep, body, sizeof(rep));
	if (rep.count != n || len != sizeof(rep) + n * sizeof(o))
		return SHOAL_EPROTO;
	for (size_t i = 0; i < n; i++) {
		memcpy(&o, objs + i * sizeof(o), sizeof(o));
		if (o.status > 0 ||
		    (o.status == 0 && client_check_object(c, &o) != 0))
			return SHOAL_EPROTO;
	}
	pthread_mutex_lock(&c->ref_lock);
	for (size_t i = 0; i < n; i++) {
		memcpy(&o, objs + i * sizeof(o), sizeof(o));
		if (o.status < 0) {
			empty_view(&views[i], ids[i].bytes, o.status);
			continue;
		}
		client_fill_view(c, &o, ids[i].bytes, &views[i]);
		client_hold(c, o.handle, &ids[i],
		            o.data_size + o.metadata_size);
	}
	pthread_mutex_unlock(&c->ref_lock);
	return 0;
}

/* A get whose wait was interrupted: complete, it stands; otherwise every
 * view is given back and the call says SHOAL_EINTR. io_lock is held (the
 * releases go out with client_end()). */
static int interrupted_get(shoal_client *c, shoal_view *views, size_t n)
{
	size_t got = 0;

	for (size_t i = 0; i < n; i++)
		got += views[i].status == 0;
	if (got == n)
		return 0;
	for (size_t i = 0; i < n; i++)
		shoal_release(c, &views[i]);
	return SHOAL_EINTR;
}

SHOAL_API int shoal_get(shoal_client *c, const shoal_id *ids, size_t n,
                        int64_t timeout_ms, shoal_view *views)
{
	struct proto_get req = {.timeout_ms = timeout_ms};
	struct iovec iov[2];
	const uint8_t *body;
	size_t len;
	int rc;

	if (!c || (n && (!ids || !views)) || !timeout_ok(timeout_ms))
		return SHOAL_EINVAL;
	if (n > SHOAL_BATCH_MAX)
		return SHOAL_ETOOBIG;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	if (n == 0)
		goto out;
	pthread_mutex_lock(&c->ref_lock);
	rc = client_reserve_views(c, n);
	pthread_mutex_unlock(&c->ref_lock);
	if (rc < 0)
		goto out;
	req.count = (uint32_t)n;
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){(void *)ids, n * sizeof(*ids)};
	rc = client_call_wait(c, PROTO_GET, iov, 2, 0, timeout_ms, true, &body,
	                      &len);
	if (rc == 0)
		rc = take_get_reply(c, body, len, ids, n, views);
	if (rc == 0 && c->interrupted)
		rc = interrupted_get(c, views, n);
out:
	client_end(c);
	return rc;
}

/*
 * Drops one view of handle (or, with id, of any handle of that object) and
 * queues a release when the count reaches 0. A small object's release waits
 * for the next request (within the CLIENT_DEFER_* bounds); otherwise the
 * queue is sent at once unless another thread holds io_lock (which then
 * sends it). Returns 0,
 * SHOAL_ENOTFOUND when no view is held, or SHOAL_EUNAVAILABLE when the
 * connection is gone (the view is dropped all the same).
 */
static int drop_view(shoal_client *c, uint64_t handle, const shoal_id *id,
                     const void *ptr)
{
	struct client_retired *gone = NULL;
	struct client_ref *r = NULL;
	uint64_t repin = 0;
	bool defer = false;
	int rc = 0, got;

	pthread_mutex_lock(&c->ref_lock);
	/* A view from before a reconnect is known by where it points. */
	if (!id && c->retired &&
	    (got = client_retired_drop_locked(c, ptr, handle, NULL, &gone,
	                                      &repin)) >= 0)
		goto retired;
	if (id) {
		struct client_ref *byid =
		        client_refmap_find(&c->view_ids, 0, id);

		if (byid)
			r = client_refmap_find(&c->views, byid->handle, NULL);
		/* An older object of the same ID (deleted, still held) is
		 * not indexed: only then scan. */
		if (!r || r->count <= r->repins)
			for (size_t i = 0;
			     (r = client_refmap_next(&c->views, &i));)
				if (r->count > r->repins &&
				    memcmp(r->id.bytes, id->bytes,
				           SHOAL_ID_SIZE) == 0)
					break;
	} else {
		r = client_refmap_find(&c->views, handle, NULL);
	}
	if (r && r->count > 0)
		goto drop;
	if (!id || !c->retired ||
	    (got = client_retired_drop_locked(c, NULL, 0, id, &gone, &repin)) <
	            0) {
		rc = SHOAL_ENOTFOUND;
		goto unlock;
	}
retired:
	/* The last old view of an object that the current connection holds
	 * for it (client_repin): that hold goes now. */
	r = got == 1 ? client_refmap_find(&c->views, repin, NULL) : NULL;
	if (!r || r->repins == 0 || r->count == 0)
		goto unlock;
	r->repins--;
drop:
	if (r->count == 1 && r->size >= CLIENT_NAMED_LARGE)
		client_named_last_view(c, r->handle);
	if (--r->count == 0 && !r->pending) {
		r->pending = 1;
		c->pending[atomic_load(&c->npending)] = r->handle;
		atomic_fetch_add(&c->npending, 1);
		defer = r->size < CLIENT_DEFER_OBJECT &&
		        atomic_load(&c->npending) < CLIENT_DEFER_COUNT &&
		        c->deferred_bytes + r->size < CLIENT_DEFER_BYTES;
		if (defer)
			c->deferred_bytes += r->size;
	} else if (r->pending) {
		defer = true; /* already queued and within the bounds */
	}
unlock:
	pthread_mutex_unlock(&c->ref_lock);
	client_retired_destroy(gone);
	if (rc)
		return rc;
	if (!defer && atomic_load(&c->npending) > 0 &&
	    pthread_mutex_trylock(&c->io_lock) == 0)
		client_end(c);
	return atomic_load(&c->broken) ? SHOAL_EUNAVAILABLE : 0;
}

/* Whether r is still one of c's retired records. ref_lock held. */
static bool retired_listed(const shoal_client *c,
                           const struct client_retired *r)
{
	for (const struct client_retired *x = c->retired; x; x = x->next)
		if (x == r)
			return true;
	return false;
}

/* One object to re-pin: where its old views are. */
struct repin_item {
	struct client_retired *rec;
	uint64_t old_handle;
};

void client_repin(shoal_client *c)
{
	struct repin_item *items = NULL;
	shoal_id *ids = NULL;
	struct proto_get req = {.timeout_ms = 0};
	struct proto_get_reply rep;
	struct proto_object o;
	struct client_ref *e;
	struct iovec iov[2];
	const uint8_t *body;
	size_t n = 0, want = 0, len;

	pthread_mutex_lock(&c->ref_lock);
	for (struct client_retired *r = c->retired; r; r = r->next)
		if (r->dev == c->arena_dev && r->ino == c->arena_ino)
			want += client_refmap_count(&r->views);
	if (want > SHOAL_BATCH_MAX)
		want = SHOAL_BATCH_MAX;
	if (want) {
		items = os_malloc(want * sizeof(*items));
		ids = os_malloc(want * sizeof(*ids));
	}
	for (struct client_retired *r = c->retired;
	     r && items && ids && n < want; r = r->next) {
		if (r->dev != c->arena_dev || r->ino != c->arena_ino)
			continue;
		for (size_t i = 0;
		     n < want && (e = client_refmap_next(&r->views, &i));) {
			items[n] = (struct repin_item){r, e->handle};
			ids[n++] = e->id;
		}
	}
	int rc = n ? client_reserve_views(c, n) : -1;
	pthread_mutex_unlock(&c->ref_lock);
	if (rc < 0)
		goto out;
	req.count = (uint32_t)n;
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){ids, n * sizeof(*ids)};
	if (client_call_once(c, PROTO_GET, iov, 2, 0, &body, &len) < 0 ||
	    len != sizeof(rep) + n * sizeof(o))
		goto out;
	memcpy(&rep, body, sizeof(rep));
	if (rep.count != n)
		goto out;
	pthread_mutex_lock(&c->ref_lock);
	for (size_t i = 0; i < n; i++) {
		memcpy(&o, body + sizeof(rep) + i * sizeof(o), sizeof(o));
		if (o.status != 0 || client_check_object(c, &o) != 0)
			continue;
		client_hold(c, o.handle, &ids[i],
		            o.data_size + o.metadata_size);
		struct client_ref *cur =
		        client_refmap_find(&c->views, o.handle, NULL);
		struct client_retired *r = items[i].rec;
		e = retired_listed(c, r)
		            ? client_refmap_find(&r->views, items[i].old_handle,
		                                 NULL)
		            : NULL;
		if (cur && e && !e->has_repin) {
			e->has_repin = 1;
			e->repin = o.handle;
			r->repin_epoch = c->epoch;
			cur->repins++;
		} else if (cur && --cur->count == 0 && !cur->pending) {
			/* Its old views went meanwhile: give the hold back. */
			cur->pending = 1;
			c->pending[atomic_load(&c->npending)] = cur->handle;
			atomic_fetch_add(&c->npending, 1);
		}
	}
	pthread_mutex_unlock(&c->ref_lock);
out:
	free(items);
	free(ids);
}

SHOAL_API int shoal_release(shoal_client *c, shoal_view *view)
{
	int rc;

	if (!c || !view)
		return SHOAL_EINVAL;
	rc = client_check_fork(c);
	if (rc < 0)
		return rc;
	if (view->status != 0)
		return 0;
	rc = drop_view(c, view->handle, NULL, view->data);
	/* Mark the view as given back, so a second release is a no-op. */
	empty_view(view, view->id.bytes, SHOAL_ENOTFOUND);
	return rc == SHOAL_ENOTFOUND ? 0 : rc;
}

SHOAL_API int shoal_release_id(shoal_client *c, const shoal_id *id)
{
	int rc;

	if (!c || !id)
		return SHOAL_EINVAL;
	rc = client_check_fork(c);
	if (rc < 0)
		return rc;
	return drop_view(c, 0, id, NULL);
}

SHOAL_API int shoal_delete(shoal_client *c, const shoal_id *ids, size_t n,
                           int *results)
{
	struct proto_delete req = {.count = (uint32_t)n};
	struct proto_delete_reply rep;
	struct iovec iov[2];
	const uint8_t *body;
	size_t len;
	int rc;

	if (!c || (n && !ids))
		return SHOAL_EINVAL;
	if (n > SHOAL_BATCH_MAX)
		return SHOAL_ETOOBIG;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	if (n == 0)
		goto out;
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){(void *)ids, n * sizeof(*ids)};
	rc = client_call(c, PROTO_DELETE, iov, 2, 0, &body, &len);
	if (rc < 0)
		goto out;
	if (len < sizeof(rep)) {
		rc = SHOAL_EPROTO;
		goto out;
	}
	memcpy(&rep, body, sizeof(rep));
	if (rep.count != n || len != sizeof(rep) + n * sizeof(int32_t)) {
		rc = SHOAL_EPROTO;
		goto out;
	}
	for (size_t i = 0; results && i < n; i++) {
		int32_t v;

		memcpy(&v, body + sizeof(rep) + i * sizeof(v), sizeof(v));
		results[i] = v;
	}
out:
	client_end(c);
	return rc;
}

SHOAL_API int shoal_contains(shoal_client *c, const shoal_id *id, int *state)
{
	struct proto_id_req req = {.flags = 0};
	struct iovec iov = {&req, sizeof(req)};
	struct proto_contains_reply rep;
	const uint8_t *body;
	size_t len;
	int rc;

	if (!id || !state)
		return SHOAL_EINVAL;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	memcpy(req.id, id->bytes, SHOAL_ID_SIZE);
	rc = client_call_safe(c, PROTO_CONTAINS, &iov, 1, sizeof(rep), &body,
	                      &len);
	if (rc == 0) {
		memcpy(&rep, body, sizeof(rep));
		if (rep.state > SHOAL_STATE_SEALED)
			rc = SHOAL_EPROTO;
		else
			*state = (int)rep.state;
	}
	client_end(c);
	return rc;
}

SHOAL_API int shoal_evict(shoal_client *c, uint64_t nbytes, uint64_t *freed)
{
	struct proto_evict req = {.nbytes = nbytes};
	struct iovec iov = {&req, sizeof(req)};
	struct proto_evict_reply rep;
	const uint8_t *body;
	size_t len;
	int rc = client_begin(c);

	if (rc < 0)
		return rc;
	rc = client_call(c, PROTO_EVICT, &iov, 1, sizeof(rep), &body, &len);
	if (rc == 0 && freed) {
		memcpy(&rep, body, sizeof(rep));
		*freed = rep.freed;
	}
	client_end(c);
	return rc;
}

SHOAL_API int shoal_list(shoal_client *c, uint64_t *cursor,
                         shoal_object_info *out, size_t max, size_t *count)
{
	struct proto_list_reply rep;
	struct proto_list_entry e;
	const uint8_t *entries;
	size_t len;
	int rc;

	if (!cursor || !out || !count || max == 0)
		return SHOAL_EINVAL;
	*count = 0;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	rc = client_list_page(c, PROTO_LIST, *cursor, max, &rep, &entries,
	                      &len);
	if (rc < 0)
		goto out;
	if (len != (size_t)rep.count * sizeof(e)) {
		rc = SHOAL_EPROTO;
		goto out;
	}
	for (size_t i = 0; i < rep.count; i++) {
		memcpy(&e, entries + i * sizeof(e), sizeof(e));
		if (e.state > SHOAL_STATE_SEALED) {
			rc = SHOAL_EPROTO;
			goto out;
		}
		memcpy(out[i].id.bytes, e.id, SHOAL_ID_SIZE);
		out[i].state = (int)e.state;
		out[i].metadata_size = e.metadata_size;
		out[i].data_size = e.data_size;
		out[i].holders = e.holders;
		out[i].names = e.names;
		out[i].create_time_ns = e.create_time_ns;
		out[i].construct_ms = e.construct_ms == PROTO_UNSEALED_MS
		                              ? -1
		                              : (int64_t)e.construct_ms;
	}
	*count = rep.count;
	*cursor = rep.next_cursor;
out:
	client_end(c);
	return rc;
}

SHOAL_API int shoal_get_stats_sized(shoal_client *c, shoal_stats *out,
                                    size_t size)
{
	struct proto_stats_reply rep;
	shoal_stats st;
	const uint8_t *body;
	size_t len;
	int rc;

	if (!out)
		return SHOAL_EINVAL;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	rc = client_call_safe(c, PROTO_STATS, NULL, 0, sizeof(rep), &body,
	                      &len);
	if (rc == 0) {
		memcpy(&rep, body, sizeof(rep));
		st = (shoal_stats){
		        .capacity_bytes = rep.capacity_bytes,
		        .used_bytes = rep.used_bytes,
		        .objects = rep.objects,
		        .sealed_objects = rep.sealed_objects,
		        .pending_deletes = rep.pending_deletes,
		        .names = rep.names,
		        .clients = rep.clients,
		        .evictions = rep.evictions,
		        .evicted_bytes = rep.evicted_bytes,
		        .creates = rep.creates,
		        .gets = rep.gets,
		        .backed_bytes = rep.backed_bytes,
		        .largest_free = rep.largest_free,
		        .uptime_ms = rep.uptime_ms,
		        .expired = rep.expired,
		        .evicted_names = rep.evicted_names,
		        .requests = rep.requests,
		};
		client_copy_sized(out, size, &st, sizeof(st));
	}
	client_end(c);
	return rc;
}

SHOAL_API int shoal_put(shoal_client *c, const shoal_id *id, const void *data,
                        uint64_t data_size, const void *metadata,
                        uint32_t metadata_size)
{
	/* Copied in as the memory is reserved (shoal_create_from). */
	shoal_segment segs[2] = {
	        {.offset = 0, .src = data, .size = data_size},
	        {.offset = data_size, .src = metadata, .size = metadata_size}};
	uint8_t *d;
	int rc;

	if ((data_size && !data) || (metadata_size && !metadata))
		return SHOAL_EINVAL;
	rc = shoal_create_from(c, id, data_size, metadata_size, SHOAL_NO_WAIT,
	                       segs, 2, &d, NULL);
	if (rc < 0)
		return rc;
	rc = shoal_seal(c, id);
	if (rc < 0) {
		shoal_abort(c, id);
		return rc;
	}
	shoal_release_id(c, id);
	return 0;
}
