/*
 * transport.c - requests and replies on a client's connection, and the
 * queue of releases that ride along with them.
 *
 * Writes go out with sendmsg(MSG_NOSIGNAL) in a loop that survives EINTR and
 * short writes, so a dead daemon shows up as EPIPE, never as SIGPIPE. Replies
 * come through a buffered reader: one read() usually brings a whole reply,
 * and bytes beyond it stay in the buffer for the next one. Every header is
 * checked (magic, version, length limit, type, request id) and the body is
 * handed to the caller only as (pointer, length).
 *
 * Failure model: EOF, ECONNRESET or EPIPE mean the daemon went away; a
 * header that does not frame the stream means we lost sync. Both mark the
 * client broken. The next request then opens a new connection first
 * (client_reconnect(), connect.c); a request whose write found the
 * connection gone is sent again on a new one at once, since no daemon saw
 * it, and client_call_safe() also repeats a request whose reply never came.
 * A broken connection that is not replaced stays open until
 * shoal_disconnect(): while it is open a live daemon keeps this client's
 * objects pinned, so views the application still reads are never freed
 * under it.
 *
 * Releases: shoal_release() only queues a handle (see client_internal.h).
 * Whoever holds io_lock sends the queue in front of its next request, in the
 * same write, and again before it unlocks; the unlock re-checks the queue
 * so that a release queued while the lock was held is never left behind.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client_internal.h"
#include "os.h"

#define RBUF_INITIAL (64u << 10)
#define MAX_IOV      8

static int mark_broken(shoal_client *c, int code)
{
	atomic_store(&c->broken, true);
	return code;
}

static int io_error(shoal_client *c, int err)
{
	if (err == EPIPE || err == ECONNRESET || err == ENOTCONN)
		return mark_broken(c, SHOAL_EUNAVAILABLE);
	return mark_broken(c, -err);
}

/*
 * Writes all iov pieces (which it consumes) to the socket. Returns 0,
 * SHOAL_EUNAVAILABLE or -errno; any failure marks the client broken.
 */
static int send_all(shoal_client *c, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		struct msghdr mh = {.msg_iov = iov, .msg_iovlen = iovcnt};
		ssize_t n = os_sendmsg(c->fd, &mh, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return io_error(c, errno);
		}
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/*
 * Takes the queued releases whose count is still 0 out of the view map and
 * copies their handles to c->rel_out. Handles re-acquired since they were
 * queued stay held and are not released. Returns their number.
 * io_lock must be held.
 */
static size_t take_releases(shoal_client *c)
{
	size_t n = 0;

	pthread_mutex_lock(&c->ref_lock);
	for (size_t i = 0; i < atomic_load(&c->npending); i++) {
		struct client_ref *r =
		        client_refmap_find(&c->views, c->pending[i], NULL);

		if (!r || !r->pending)
			continue;
		r->pending = 0;
		if (r->count == 0) {
			struct client_ref *byid =
			        client_refmap_find(&c->view_ids, 0, &r->id);

			if (byid && byid->handle == r->handle)
				client_refmap_remove(&c->view_ids, byid);
			c->rel_out[n++] = r->handle;
			client_refmap_remove(&c->views, r);
		}
	}
	atomic_store(&c->npending, 0);
	c->deferred_bytes = 0;
	pthread_mutex_unlock(&c->ref_lock);
	return n;
}

/* Header and fixed part of one RELEASE message. */
struct release_msg {
	struct proto_header h;
	struct proto_release r;
};

static void release_msg_init(shoal_client *c, struct release_msg *m,
                             size_t count)
{
	proto_header_init(&m->h, PROTO_RELEASE, c->next_request++,
	                  (uint32_t)(sizeof(m->r) + count * sizeof(uint64_t)));
	m->r.count = (uint32_t)count;
	m->r.pad = 0;
}

/*
 * Sends the queued releases, then (unless type is 0) one request of that type
 * whose body is iov; *id receives the request's id. Everything goes out in
 * as few writes as possible: releases beyond the last SHOAL_BATCH_MAX handles
 * go alone, the rest in the write of the request. Request ids increase in
 * the order messages are written. A broken client drops the queue without
 * sending. io_lock must be held. Returns 0, SHOAL_EINVAL (too many pieces),
 * SHOAL_ETOOBIG (body over PROTO_MAX_REQUEST), SHOAL_EUNAVAILABLE or -errno.
 */
static int send_request(shoal_client *c, uint16_t type, const struct iovec *iov,
                        int iovcnt, uint32_t *id)
{
	struct iovec all[MAX_IOV + 3];
	struct release_msg msg;
	struct proto_header h;
	size_t body_len = 0;
	size_t n, done = 0;
	int k = 0;
	int rc;

	if (iovcnt > MAX_IOV)
		return SHOAL_EINVAL;
	for (int i = 0; i < iovcnt; i++)
		body_len += iov[i].iov_len;
	if (body_len > PROTO_MAX_REQUEST)
		return SHOAL_ETOOBIG;
	n = atomic_load(&c->npending) ? take_releases(c) : 0;
	if (atomic_load(&c->broken))
		return SHOAL_EUNAVAILABLE;
	while (n - done > SHOAL_BATCH_MAX) {
		release_msg_init(c, &msg, SHOAL_BATCH_MAX);
		all[0] = (struct iovec){&msg, sizeof(msg)};
		all[1] = (struct iovec){c->rel_out + done,
		                        SHOAL_BATCH_MAX * sizeof(uint64_t)};
		rc = send_all(c, all, 2);
		if (rc < 0)
			return rc;
		done += SHOAL_BATCH_MAX;
	}
	if (n > done) {
		release_msg_init(c, &msg, n - done);
		all[k++] = (struct iovec){&msg, sizeof(msg)};
		all[k++] = (struct iovec){c->rel_out + done,
		                          (n - done) * sizeof(uint64_t)};
	}
	if (type) {
		*id = c->next_request++;
		proto_header_init(&h, type, *id, (uint32_t)body_len);
		all[k++] = (struct iovec){&h, sizeof(h)};
		for (int i = 0; i < iovcnt; i++)
			all[k++] = iov[i];
	}
	return k ? send_all(c, all, k) : 0;
}

int client_begin(shoal_client *c)
{
	int rc;

	if (!c)
		return SHOAL_EINVAL;
	rc = client_check_fork(c);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->io_lock);
	if (atomic_load(&c->broken) && client_reconnect(c) < 0) {
		client_end(c);
		return SHOAL_EUNAVAILABLE;
	}
	client_freelog_check(c);
	return 0;
}

void client_end(shoal_client *c)
{
	for (;;) {
		if (atomic_load(&c->npending) > 0)
			send_request(c, 0, NULL, 0, NULL);
		/* Superseded named objects whose last view went (their
		 * releases were queued with them). */
		if (atomic_load(&c->named_ready) > 0)
			client_named_flush(c);
		pthread_mutex_unlock(&c->io_lock);
		/* A release queued after the flush above found the lock
		 * taken and left its handle to us. */
		if (atomic_load(&c->npending) == 0)
			return;
		if (pthread_mutex_trylock(&c->io_lock) != 0)
			return; /* the new holder sends it */
	}
}

/*
 * Makes sure the buffer holds at least `need` unread bytes, reading from the
 * socket as required. Returns 0, SHOAL_EUNAVAILABLE (EOF or reset),
 * SHOAL_ENOMEM or -errno. Every failure marks the client broken: a reply
 * left half read would be taken for the answer to the next request (and a
 * GET reply not taken leaves objects pinned that only a disconnect
 * releases).
 */
static int fill(shoal_client *c, size_t need)
{
	if (c->rcap - c->rstart < need) {
		size_t have = c->rend - c->rstart;

		memmove(c->rbuf, c->rbuf + c->rstart, have);
		c->rstart = 0;
		c->rend = have;
		if (c->rcap < need) {
			uint8_t *p = os_realloc(c->rbuf, need);

			if (!p)
				return mark_broken(c, SHOAL_ENOMEM);
			c->rbuf = p;
			c->rcap = need;
		}
	}
	while (c->rend - c->rstart < need) {
		ssize_t n;

		if (c->waiting) {
			int rc = client_wait_readable(c);

			if (rc < 0)
				return mark_broken(c, rc);
		}
		n = os_read(c->fd, c->rbuf + c->rend, c->rcap - c->rend);

		if (n == 0)
			return mark_broken(c, SHOAL_EUNAVAILABLE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return io_error(c, errno);
		}
		c->rend += (size_t)n;
	}
	return 0;
}

/* Allocates the read buffer once (see client_internal.h). */
int client_reader_init(shoal_client *c)
{
	if (!c->rbuf) {
		c->rbuf = os_malloc(RBUF_INITIAL);
		if (!c->rbuf)
			return SHOAL_ENOMEM;
		c->rcap = RBUF_INITIAL;
	}
	return 0;
}

/*
 * Reads one whole message. *h receives its header, *body its body (valid
 * until the next read). Returns 0, SHOAL_EPROTO for a header that does not
 * frame the stream (the client is then broken), or what fill() returns.
 */
int client_read_message(shoal_client *c, struct proto_header *h,
                        const uint8_t **body)
{
	int rc = client_reader_init(c);

	if (rc < 0)
		return mark_broken(c, rc);
	rc = fill(c, sizeof(*h));
	if (rc < 0)
		return rc;
	memcpy(h, c->rbuf + c->rstart, sizeof(*h));
	if (proto_check_header(h, PROTO_MAX_REPLY) != 0)
		return mark_broken(c, SHOAL_EPROTO);
	rc = fill(c, sizeof(*h) + h->body_len);
	if (rc < 0)
		return rc;
	*body = c->rbuf + c->rstart + sizeof(*h);
	c->rstart += sizeof(*h) + h->body_len;
	if (c->rstart == c->rend)
		c->rstart = c->rend = 0;
	return 0;
}

/* Status of a reply body, or SHOAL_EPROTO if it has none or a positive one. */
static int reply_status(const uint8_t *body, size_t len)
{
	struct proto_reply r;

	if (len < sizeof(r))
		return SHOAL_EPROTO;
	memcpy(&r, body, sizeof(r));
	if (r.status > 0)
		return SHOAL_EPROTO;
	return r.status;
}

int client_send_raw(shoal_client *c, const void *buf, size_t len)
{
	struct iovec iov = {(void *)buf, len};

	return send_all(c, &iov, 1);
}

int client_send(shoal_client *c, uint16_t type, const struct iovec *iov,
                int iovcnt)
{
	uint32_t id;

	return send_request(c, type, iov, iovcnt, &id);
}

/*
 * One request and its reply (see client_call()). *written says whether the
 * request went out whole, i.e. whether a daemon may have acted on it.
 */
static int call_once(shoal_client *c, uint16_t type, const struct iovec *iov,
                     int iovcnt, size_t fixed_len, const uint8_t **reply,
                     size_t *len, bool *written)
{
	struct proto_header h;
	uint32_t id;
	const uint8_t *body;
	int rc;

	*written = false;
	rc = send_request(c, type, iov, iovcnt, &id);
	if (rc < 0)
		return rc;
	*written = true;
	for (;;) {
		rc = client_read_message(c, &h, &body);
		if (rc < 0)
			return rc;
		if (h.type == (PROTO_SEAL | PROTO_REPLY) &&
		    h.request_id != id) {
			/* The failure of an earlier no-reply seal. */
			rc = reply_status(body, h.body_len);
			c->deferred_error = rc < 0 ? rc : SHOAL_EPROTO;
			continue;
		}
		if (h.type != (type | PROTO_REPLY) || h.request_id != id)
			return mark_broken(c, SHOAL_EPROTO);
		break;
	}
	rc = reply_status(body, h.body_len);
	if (rc < 0)
		return rc;
	if (fixed_len && h.body_len != fixed_len)
		return SHOAL_EPROTO;
	*reply = body;
	*len = h.body_len;
	return 0;
}

/* Sends the request again on a new connection if the old one was lost
 * before it was written, or (safe) at any point. */
static int call_retrying(shoal_client *c, uint16_t type,
                         const struct iovec *iov, int iovcnt, size_t fixed_len,
                         const uint8_t **reply, size_t *len, bool safe)
{
	bool written;
	int rc = call_once(c, type, iov, iovcnt, fixed_len, reply, len,
	                   &written);

	if (rc != SHOAL_EUNAVAILABLE || (written && !safe) ||
	    client_reconnect(c) < 0)
		return rc;
	return call_once(c, type, iov, iovcnt, fixed_len, reply, len, &written);
}

int client_call_once(shoal_client *c, uint16_t type, const struct iovec *iov,
                     int iovcnt, size_t fixed_len, const uint8_t **reply,
                     size_t *len)
{
	bool written;

	return call_once(c, type, iov, iovcnt, fixed_len, reply, len, &written);
}

int client_call(shoal_client *c, uint16_t type, const struct iovec *iov,
                int iovcnt, size_t fixed_len, const uint8_t **reply,
                size_t *len)
{
	return call_retrying(c, type, iov, iovcnt, fixed_len, reply, len,
	                     false);
}

int client_call_safe(shoal_client *c, uint16_t type, const struct iovec *iov,
                     int iovcnt, size_t fixed_len, const uint8_t **reply,
                     size_t *len)
{
	return call_retrying(c, type, iov, iovcnt, fixed_len, reply, len, true);
}

int client_list_page(shoal_client *c, uint16_t type, uint64_t cursor,
                     size_t max, struct proto_list_reply *rep,
                     const uint8_t **entries, size_t *len)
{
	struct proto_list req = {
	        .cursor = cursor,
	        .limit = max < PROTO_LIST_MAX ? (uint32_t)max : PROTO_LIST_MAX};
	struct iovec iov = {&req, sizeof(req)};
	const uint8_t *body;
	size_t n;
	int rc = client_call_safe(c, type, &iov, 1, 0, &body, &n);

	if (rc < 0)
		return rc;
	if (n < sizeof(*rep))
		return SHOAL_EPROTO;
	memcpy(rep, body, sizeof(*rep));
	if (rep->count > req.limit)
		return SHOAL_EPROTO;
	*entries = body + sizeof(*rep);
	*len = n - sizeof(*rep);
	return 0;
}

int client_reserve_views(shoal_client *c, size_t extra)
{
	size_t cap;
	int rc = client_refmap_reserve(&c->views, extra);

	if (rc == 0)
		rc = client_refmap_reserve(&c->view_ids, extra);
	if (rc < 0)
		return rc;
	cap = client_refmap_room(&c->views);
	if (cap > c->pending_cap) {
		uint64_t *p = os_realloc(c->pending, cap * sizeof(*p));

		if (!p)
			return SHOAL_ENOMEM;
		c->pending = p;
		p = os_realloc(c->rel_out, cap * sizeof(*p));
		if (!p)
			return SHOAL_ENOMEM;
		c->rel_out = p;
		c->pending_cap = cap;
	}
	return 0;
}

void client_hold(shoal_client *c, uint64_t handle, const shoal_id *id,
                 uint64_t size)
{
	bool added;
	struct client_ref *r =
	        client_refmap_upsert(&c->views, handle, id, &added);

	if (!r || added) {
		/* The same ID may name a deleted object still held and a new
		 * one: the index keeps the latest, drop_view() scans for the
		 * rare others. */
		struct client_ref *byid =
		        client_refmap_upsert(&c->view_ids, handle, id, &added);

		if (r)
			r->size = size;
		if (byid)
			byid->handle = handle;
	}
	/* Without room (a caller that did not reserve) the hold is kept
	 * forever rather than released while in use. */
	if (r)
		r->count++;
}
