/*
 * subscribe.c - notification subscriptions (see shoal.h).
 *
 * A subscription is an ordinary client connection (HELLO, arena mapping and
 * all) that has sent SUBSCRIBE; from then on it only reads PROTO_EVENT
 * messages through the client's buffered reader. Waiting with a timeout
 * sleeps on the socket only when no whole event is buffered yet, together
 * with the client's wake-up eventfd (shoal_subscription_interrupt) and,
 * when the subscription is interruptible, ending on EINTR (client_sleep):
 * nothing is outstanding with the daemon, so an interrupted wait just
 * returns SHOAL_EINTR. The name of the last event lives in the
 * subscription, so that shoal_event carries a pointer, not the bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "client_internal.h"
#include "os.h"

struct shoal_subscription {
	shoal_client *c;
	char name[SHOAL_NAME_MAX + 1]; /* of the last event */
};

SHOAL_API int shoal_subscribe(const char *socket_path, unsigned flags,
                              shoal_subscription **out)
{
	struct proto_subscribe req = {
	        .flags = flags &
	                 (SHOAL_SUBSCRIBE_SNAPSHOT | SHOAL_SUBSCRIBE_TTL)};
	struct iovec iov = {.iov_base = &req, .iov_len = sizeof(req)};
	shoal_subscription *s;
	const uint8_t *reply;
	size_t len;
	int rc;

	if (!out)
		return SHOAL_EINVAL;
	s = os_calloc(1, sizeof(*s));
	if (!s)
		return SHOAL_ENOMEM;
	rc = shoal_connect(socket_path, &s->c);
	if (rc < 0) {
		free(s);
		return rc;
	}
	rc = client_begin(s->c);
	if (rc == 0) {
		rc = client_call(s->c, PROTO_SUBSCRIBE, &iov, 1,
		                 sizeof(struct proto_reply), &reply, &len);
		client_end(s->c);
	}
	if (rc < 0) {
		shoal_unsubscribe(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* Whether a whole message is already buffered. */
static bool have_message(const shoal_client *c)
{
	struct proto_header h;

	if (client_buffered(c) < sizeof(h))
		return false;
	memcpy(&h, c->rbuf + c->rstart, sizeof(h));
	return client_buffered(c) - sizeof(h) >= h.body_len;
}

/* Decodes an event into *ev, its name into name (SHOAL_NAME_MAX + 1
 * bytes). Returns 0 or SHOAL_EPROTO. */
static int decode_event(const struct proto_header *h, const uint8_t *body,
                        char *name, shoal_event *ev)
{
	struct proto_event e;
	struct proto_event_ttl t = {0};
	size_t extra;

	if (h->type != PROTO_EVENT || h->body_len < sizeof(e))
		return SHOAL_EPROTO;
	memcpy(&e, body, sizeof(e));
	extra = e.kind == SHOAL_EVENT_NAME_TTL ? sizeof(t) : 0;
	if (e.name_len > SHOAL_NAME_MAX ||
	    h->body_len != sizeof(e) + extra + e.name_len || e.kind < 1 ||
	    e.kind > SHOAL_EVENT_KIND_MAX)
		return SHOAL_EPROTO;
	memcpy(&t, body + sizeof(e), extra);
	memset(ev, 0, sizeof(*ev));
	ev->kind = (int)e.kind;
	memcpy(ev->id.bytes, e.id, SHOAL_ID_SIZE);
	ev->data_size = e.data_size;
	ev->metadata_size = e.metadata_size;
	ev->version = e.version;
	ev->seq = h->request_id;
	ev->expires_ms = t.expires_ms;
	memcpy(name, body + sizeof(e) + extra, e.name_len);
	name[e.name_len] = '\0';
	ev->name = name;
	ev->name_len = e.name_len;
	return 0;
}

SHOAL_API int shoal_next_event_sized(shoal_subscription *s, int64_t timeout_ms,
                                     shoal_event *ev, size_t size)
{
	struct proto_header h;
	const uint8_t *body;
	shoal_event out;
	int rc;

	if (!s || !ev)
		return SHOAL_EINVAL;
	rc = client_begin(s->c);
	if (rc < 0)
		return rc;
	if (!have_message(s->c))
		rc = client_sleep(s->c, timeout_ms, true);
	if (rc == 0)
		rc = client_read_message(s->c, &h, &body);
	if (rc == 0)
		rc = decode_event(&h, body, s->name, &out);
	if (rc == 0)
		client_copy_sized(ev, size, &out, sizeof(out));
	client_end(s->c);
	return rc;
}

SHOAL_API int shoal_subscription_interrupt(shoal_subscription *s)
{
	return s ? shoal_interrupt(s->c) : SHOAL_EINVAL;
}

SHOAL_API void shoal_subscription_set_interruptible(shoal_subscription *s,
                                                    int on)
{
	if (s)
		shoal_set_interruptible(s->c, on);
}

SHOAL_API int shoal_subscription_set_interrupt_signals(shoal_subscription *s,
                                                       const int *signals,
                                                       size_t count)
{
	return s ? shoal_set_interrupt_signals(s->c, signals, count)
	         : SHOAL_EINVAL;
}

SHOAL_API int shoal_subscription_fd(const shoal_subscription *s)
{
	return s ? s->c->fd : -1;
}

SHOAL_API void shoal_unsubscribe(shoal_subscription *s)
{
	if (!s)
		return;
	shoal_disconnect(s->c);
	free(s);
}
