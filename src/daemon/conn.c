/*
 * conn.c - one client connection: buffered non-blocking reads and writes,
 * framing, and the in-order handling of its requests (see server.h).
 *
 * Limits that keep one client from hurting the others: a request body is at
 * most PROTO_MAX_REQUEST bytes (a larger header closes the connection); at
 * most CONN_READ_BUDGET bytes are read and CONN_TURN_REQUESTS requests
 * handled per turn of the loop (a client that pipelines thousands of small
 * requests is served in slices, with every other client's turn between
 * two slices: its leftover requests wait on the server's backlog list, and
 * it is not read from meanwhile); requests are not read further while
 * CONN_OUT_SOFT_CAP bytes of replies wait to be read; a client whose
 * replies stop draining for stall_ms is dropped.
 * Input and output buffers shrink back after a large message.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server.h"
#include "os.h"

#define CONN_READ_BUDGET   (256u << 10)
#define CONN_BUF_KEEP      (64u << 10)
#define CONN_TURN_REQUESTS 256

static void conn_update_mask(struct conn *c);

/* Says why a client is being dropped or refused. */
static void complain(const struct conn *c, const char *why)
{
	fprintf(stderr, "shoal: dropping client %u (pid %llu): %s\n", c->sc.id,
	        (unsigned long long)c->pid, why);
}

/* Whether growing c's buffers by more bytes would pass the budget of all
 * connections (--max-conn-memory). */
static bool over_budget(const struct conn *c, size_t more)
{
	return c->srv->buffered + more > c->srv->opt.limits.conn_memory;
}

/* The input budget is spent: tell the client (with its request's type and
 * id when the header is in) and close the connection. */
static void refuse_input(struct conn *c)
{
	struct proto_header h = {0};

	if (c->in_len - c->in_off >= sizeof(h))
		memcpy(&h, c->in + c->in_off, sizeof(h));
	complain(c, "its request does not fit in --max-conn-memory");
	conn_reply_error(c, h.type, h.request_id, SHOAL_ELIMIT,
	                 "the daemon's memory for requests in transit "
	                 "(--max-conn-memory) is in use: try again");
	c->closing = true;
}

void *conn_out_reserve(struct conn *c, size_t len)
{
	if (c->out_off && c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (c->out_len + len > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len)
			cap *= 2;
		/* Over the budget of all connections, a client that already
		 * has replies waiting gets no more: it is dropped. */
		if (over_budget(c, cap - c->out_cap) &&
		    c->out_len - c->out_off > CONN_BUF_KEEP) {
			complain(c, "its unread replies are over "
			            "--max-conn-memory");
			c->closing = true;
			return NULL;
		}
		uint8_t *n = os_realloc(c->out, cap);
		if (!n) {
			c->closing = true;
			return NULL;
		}
		c->srv->buffered += cap - c->out_cap;
		c->out = n;
		c->out_cap = cap;
	}
	void *p = c->out + c->out_len;
	c->out_len += len;
	return p;
}

void *conn_reply(struct conn *c, uint16_t type, uint32_t request_id, size_t len)
{
	struct proto_header h;
	uint8_t *p = conn_out_reserve(c, sizeof(h) + len);

	if (!p)
		return NULL;
	proto_header_init(&h, (uint16_t)(type | PROTO_REPLY), request_id,
	                  (uint32_t)len);
	memcpy(p, &h, sizeof(h));
	memset(p + sizeof(h), 0, len);
	return p + sizeof(h);
}

void conn_reply_error(struct conn *c, uint16_t type, uint32_t request_id,
                      int status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	struct proto_reply *r =
	        conn_reply(c, type, request_id, sizeof(*r) + (size_t)n);
	if (!r)
		return;
	struct proto_reply head = {.status = status, .msg_len = (uint32_t)n};
	memcpy(r, &head, sizeof(head));
	memcpy((uint8_t *)r + sizeof(head), msg, (size_t)n);
}

static void shrink(struct conn *c, uint8_t **buf, size_t *cap)
{
	if (*cap > CONN_BUF_KEEP) {
		c->srv->buffered -= *cap;
		free(*buf);
		*buf = NULL;
		*cap = 0;
	}
}

/* Writes what is pending. Returns false if the connection broke. */
static bool conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = os_send(c->fd, c->out + c->out_off,
		                    c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			c->out_stalled_ns = 0;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->out_stalled_ns)
				c->out_stalled_ns = server_now_ns();
			return true;
		}
		return false;
	}
	c->out_off = c->out_len = 0;
	c->out_stalled_ns = 0;
	shrink(c, &c->out, &c->out_cap);
	return true;
}

static size_t out_pending(const struct conn *c)
{
	return c->out_len - c->out_off;
}

/* Files the request at pos as parked. If that fails for want of memory it
 * is answered at once instead (as at its deadline). Returns whether it
 * parked. */
static bool park(struct conn *c, const struct proto_header *h,
                 const uint8_t *body, size_t pos)
{
	struct server *srv = c->srv;

	if (waits_park(&srv->waits, &c->wait, &srv->store, h, body,
	               pos + sizeof(*h), commands_deadline(h, body)) == 0)
		return true;
	return false;
}

/* Whether a whole request starts at offset off of the input. */
static bool request_at(const struct conn *c, size_t off)
{
	struct proto_header h;

	if (c->in_len - off < sizeof(h))
		return false;
	memcpy(&h, c->in + off, sizeof(h));
	return c->in_len - off - sizeof(h) >= h.body_len;
}

/* Whether the client owes the rest of a request it started (or its
 * hello): the input deadline runs meanwhile. */
static bool owes_input(const struct conn *c)
{
	if (c->closing || wait_parked(&c->wait))
		return false;
	if (!c->hello)
		return true;
	if (c->in_len == c->in_off)
		return false;
	return !request_at(c, c->in_off);
}

/* Whether a whole PROTO_CANCEL message starts at offset off of the input. */
static bool cancel_follows(const struct conn *c, size_t off)
{
	struct proto_header h;

	if (c->in_len - off < sizeof(h))
		return false;
	memcpy(&h, c->in + off, sizeof(h));
	return h.type == PROTO_CANCEL && h.body_len == 0 &&
	       proto_check_header(&h, PROTO_MAX_REQUEST) == 0;
}

static void backlog_remove(struct conn *c)
{
	struct server *srv = c->srv;

	if (!c->backlog)
		return;
	if (c->backlog_prev)
		c->backlog_prev->backlog_next = c->backlog_next;
	else
		srv->backlog_head = c->backlog_next;
	if (c->backlog_next)
		c->backlog_next->backlog_prev = c->backlog_prev;
	else
		srv->backlog_tail = c->backlog_prev;
	c->backlog_prev = c->backlog_next = NULL;
	c->backlog = false;
}

static void backlog_add(struct conn *c)
{
	struct server *srv = c->srv;

	if (c->backlog)
		return;
	c->backlog = true;
	c->backlog_next = NULL;
	c->backlog_prev = srv->backlog_tail;
	if (srv->backlog_tail)
		srv->backlog_tail->backlog_next = c;
	else
		srv->backlog_head = c;
	srv->backlog_tail = c;
}

/*
 * Handles complete requests at the front of the input, in order, until one
 * parks, the input runs out, too much output waits, or the turn's share of
 * CONN_TURN_REQUESTS is used (the connection then goes on the backlog).
 * retry_final says how to handle a request that was parked: as a retry (false)
 * or as a final answer because its deadline passed (true).
 */
static void conn_process(struct conn *c, bool retry, bool retry_final)
{
	size_t pos = c->in_off;
	unsigned handled = 0;

	backlog_remove(c);
	while (!c->closing && out_pending(c) < CONN_OUT_SOFT_CAP) {
		struct proto_header h;
		if (c->in_len - pos < sizeof(h))
			break;
		if (handled == CONN_TURN_REQUESTS) {
			if (request_at(c, pos))
				backlog_add(c);
			break;
		}
		memcpy(&h, c->in + pos, sizeof(h));
		int rc = proto_check_header(&h, PROTO_MAX_REQUEST);
		if (rc) {
			/* The stream cannot be resynchronised: say why, close.
			 */
			conn_reply_error(
			        c, h.type, h.request_id, rc,
			        rc == SHOAL_ETOOBIG
			                ? "request of %u bytes is over the "
			                  "limit"
			                : "bad magic or protocol version (%u)",
			        rc == SHOAL_ETOOBIG ? h.body_len : h.version);
			c->closing = true;
			break;
		}
		if (c->in_len - pos - sizeof(h) < h.body_len)
			break;
		const uint8_t *body = c->in + pos + sizeof(h);
		bool was_parked = wait_parked(&c->wait);
		bool final = was_parked && retry_final;
		/* A client that stops waiting sends CANCEL right behind the
		 * request: answer it now, as at its deadline. */
		bool cancelled =
		        cancel_follows(c, pos + sizeof(h) + h.body_len);
		if (was_parked && !retry && !cancelled)
			break;
		if (!was_parked)
			c->srv->requests++;
		enum cmd_result r =
		        commands_dispatch(c, &h, body, final || cancelled);
		if (r == CMD_PARK && !was_parked && !park(c, &h, body, pos))
			r = commands_dispatch(c, &h, body, true);
		if (r == CMD_CLOSE) {
			waits_unpark(&c->srv->waits, &c->wait);
			c->closing = true;
			break;
		}
		if (r == CMD_PARK)
			break;
		if (was_parked)
			waits_unpark(&c->srv->waits, &c->wait);
		pos += sizeof(h) + h.body_len;
		retry = false;
		handled++;
	}
	if (pos != c->in_off) {
		c->in_off = pos;
		if (c->in_off == c->in_len) {
			c->in_off = c->in_len = 0;
			shrink(c, &c->in, &c->in_cap);
		}
		c->in_owed_ns = 0; /* a request went through */
	}
	if (!owes_input(c))
		c->in_owed_ns = 0;
	else if (!c->in_owed_ns)
		c->in_owed_ns = server_now_ns();
}

/* Reads what the socket has, up to the budget. Returns false on EOF or
 * error (the client is gone). */
static bool conn_read(struct conn *c)
{
	size_t budget = CONN_READ_BUDGET;

	while (budget) {
		if (c->in_len == c->in_cap && c->in_off) {
			/* Drop the handled requests from the front; a parked
			 * request there moves with the rest. */
			memmove(c->in, c->in + c->in_off,
			        c->in_len - c->in_off);
			c->in_len -= c->in_off;
			if (wait_parked(&c->wait))
				c->wait.body_off -= c->in_off;
			c->in_off = 0;
		}
		if (c->in_len == c->in_cap) {
			size_t max =
			        sizeof(struct proto_header) + PROTO_MAX_REQUEST;
			if (c->in_cap >= max)
				return true; /* full: wait until processed */
			size_t cap = c->in_cap ? c->in_cap * 2 : 16384;
			/* A large request in front: room for exactly it, so
			 * that a parked one holds no more than it needs. */
			struct proto_header h;
			if (c->in_len >= sizeof(h)) {
				memcpy(&h, c->in, sizeof(h));
				if (h.body_len <= PROTO_MAX_REQUEST &&
				    sizeof(h) + h.body_len > c->in_cap)
					cap = sizeof(h) + h.body_len;
			}
			if (cap > max)
				cap = max;
			if (over_budget(c, cap - c->in_cap)) {
				refuse_input(c);
				return true;
			}
			uint8_t *n = os_realloc(c->in, cap);
			if (!n)
				return false;
			c->srv->buffered += cap - c->in_cap;
			c->in = n;
			c->in_cap = cap;
		}
		size_t want = c->in_cap - c->in_len;
		if (want > budget)
			want = budget;
		ssize_t n = os_recv(c->fd, c->in + c->in_len, want, 0);
		if (n > 0) {
			c->in_len += (size_t)n;
			budget -= (size_t)n;
			if ((size_t)n < want)
				return true;
			continue;
		}
		if (n == 0)
			return false;
		if (errno == EINTR)
			continue;
		return errno == EAGAIN || errno == EWOULDBLOCK;
	}
	return true;
}

static bool in_full(const struct conn *c)
{
	return c->in_len - c->in_off >=
	       sizeof(struct proto_header) + PROTO_MAX_REQUEST;
}

/* Reading is on unless the input is full (a parked request holds it) or
 * replies pile up. */
static void conn_update_mask(struct conn *c)
{
	unsigned mask = 0;

	if (!c->closing && !in_full(c) && !c->backlog &&
	    out_pending(c) < CONN_OUT_SOFT_CAP)
		mask |= LOOP_READ;
	if (out_pending(c))
		mask |= LOOP_WRITE;
	loop_mask(c->srv->loop, c->fd, mask);
}

void conn_settle(struct conn *c)
{
	if (!conn_flush(c) || (c->closing && out_pending(c) == 0)) {
		conn_close(c);
		return;
	}
	conn_update_mask(c);
}

void conn_on_event(struct loop *l, int fd, void *ctx, unsigned events)
{
	struct conn *c = ctx;

	(void)l;
	(void)fd;
	if (events & (LOOP_READ | LOOP_ERROR)) {
		if (!conn_read(c)) {
			conn_close(c);
			return;
		}
		conn_process(c, false, false);
		/* Hung up with the input still full (a parked request at
		 * its front): the client is gone, the rest of what it sent
		 * cannot be read, and epoll would report the hang-up again
		 * on every turn. */
		if ((events & LOOP_ERROR) && in_full(c)) {
			conn_close(c);
			return;
		}
	}
	if (events & LOOP_WRITE) {
		if (!conn_flush(c)) {
			conn_close(c);
			return;
		}
		/* Draining may let held-back requests run. */
		if (!wait_parked(&c->wait))
			conn_process(c, false, false);
	}
	conn_settle(c);
}

/* Handles a parked connection's request again (final: deadline passed). */
void conn_retry(struct conn *c, bool final)
{
	conn_process(c, true, final);
	conn_settle(c);
}

void conn_run_backlog(struct server *srv)
{
	size_t n = 0;

	for (struct conn *c = srv->backlog_head; c; c = c->backlog_next)
		n++;
	/* Each one once: a connection that uses its share again goes back
	 * to the end of the list, for the next turn. */
	while (n-- && srv->backlog_head) {
		struct conn *c = srv->backlog_head;
		backlog_remove(c);
		if (!wait_parked(&c->wait))
			conn_process(c, false, false);
		conn_settle(c);
	}
}

void conn_close(struct conn *c)
{
	struct server *srv = c->srv;

	if (srv->opt.verbose)
		fprintf(stderr, "shoal: client %u (pid %llu) left\n", c->sc.id,
		        (unsigned long long)c->pid);
	waits_unpark(&srv->waits, &c->wait);
	backlog_remove(c);
	events_unsubscribe(c);
	loop_unwatch(srv->loop, c->fd);
	close(c->fd);
	store_client_gone(&srv->store, &c->sc);
	srv->conns[c->index] = srv->conns[--srv->nconns];
	srv->conns[c->index]->index = c->index;
	srv->buffered -= c->in_cap + c->out_cap;
	free(c->in);
	free(c->out);
	free(c);
}
