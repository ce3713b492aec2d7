/*
 * events.c - notifications: every seal, delete, eviction and name change
 * becomes a PROTO_EVENT message queued to each subscriber, in the order the
 * store made the changes. A change of a name's expiry alone (EXPIRE,
 * PERSIST) becomes a NAME_TTL event, sent only to the subscribers that
 * asked for it (PROTO_SUBSCRIBE_TTL): older client libraries reject
 * kinds they do not know.
 *
 * Bounded memory: a SNAPSHOT is sent a page at a time as the subscriber
 * reads it, so it never holds more than the event queue either; a
 * subscriber whose unread events pass opt.event_queue bytes gets one
 * OVERFLOW event and is closed once that is written (or
 * dropped by the stall timeout if it never reads). Events are only queued
 * here; they are written in the loop's before-sleep hook, so a burst of
 * changes costs one write per subscriber, and a subscriber is never closed
 * while another connection's request is being handled.
 */
#include <string.h>

#include "server.h"

static void snapshot_done(struct conn *c);

/* Queues one event to c; extra (extra_len bytes, e.g. a NAME_TTL event's
 * struct proto_event_ttl) goes between the event and the name. */
static void queue_ext(struct conn *c, uint32_t kind, const struct object *o,
                      const char *name, size_t name_len, uint64_t version,
                      const void *extra, size_t extra_len)
{
	struct proto_event e = {0};
	struct proto_header h;
	size_t body = sizeof(e) + extra_len + name_len;

	if (c->closing)
		return;
	if (c->out_len - c->out_off > c->srv->opt.event_queue &&
	    kind != SHOAL_EVENT_OVERFLOW) {
		queue_ext(c, SHOAL_EVENT_OVERFLOW, NULL, NULL, 0, 0, NULL, 0);
		c->closing = true;
		return;
	}
	e.kind = kind;
	e.name_len = (uint32_t)name_len;
	if (o) {
		memcpy(e.id, o->id, SHOAL_ID_SIZE);
		e.metadata_size = o->metadata_size;
		e.data_size = o->data_size;
	}
	e.version = version;
	uint8_t *p = conn_out_reserve(c, sizeof(h) + body);
	if (!p)
		return;
	proto_header_init(&h, PROTO_EVENT, ++c->event_seq, (uint32_t)body);
	memcpy(p, &h, sizeof(h));
	memcpy(p + sizeof(h), &e, sizeof(e));
	if (extra_len)
		memcpy(p + sizeof(h) + sizeof(e), extra, extra_len);
	if (name_len)
		memcpy(p + sizeof(h) + sizeof(e) + extra_len, name, name_len);
	c->srv->subs_dirty = true;
}

static void queue(struct conn *c, uint32_t kind, const struct object *o,
                  const char *name, size_t name_len, uint64_t version)
{
	queue_ext(c, kind, o, name, name_len, version, NULL, 0);
}

/* A name's expiry changed: a NAME_TTL event, with the new expiry as wall
 * clock time, to the subscribers that asked for them. */
static void notify_ttl(struct server *srv, const struct object *o,
                       const char *name, size_t name_len, uint64_t version)
{
	uint32_t ns = names_find(&srv->store.names, name, name_len);
	const struct name_entry *e =
	        ns == NAME_NIL ? NULL : names_get(&srv->store.names, ns);
	uint64_t at_ns = store_name_expiry_realtime(&srv->store, e);
	struct proto_event_ttl t = {.expires_ms = (at_ns + 999999) / 1000000};

	for (struct conn *c = srv->subs; c; c = c->sub_next)
		if (c->sub_ttl)
			queue_ext(c, SHOAL_EVENT_NAME_TTL, o, name, name_len,
			          version, &t, sizeof(t));
}

void events_notify(void *ctx, enum store_note note, const struct object *o,
                   const char *name, size_t name_len, uint64_t version)
{
	struct server *srv = ctx;
	static const uint32_t kinds[] = {
	        [STORE_NOTE_SEALED] = SHOAL_EVENT_SEALED,
	        [STORE_NOTE_DELETED] = SHOAL_EVENT_DELETED,
	        [STORE_NOTE_EVICTED] = SHOAL_EVENT_EVICTED,
	        [STORE_NOTE_NAME_SET] = SHOAL_EVENT_NAME_SET,
	        [STORE_NOTE_NAME_DELETED] = SHOAL_EVENT_NAME_DELETED,
	        [STORE_NOTE_NAME_EXPIRED] = SHOAL_EVENT_NAME_EXPIRED,
	        [STORE_NOTE_NAME_EVICTED] = SHOAL_EVENT_NAME_EVICTED,
	};

	if (note == STORE_NOTE_NAME_TTL) {
		notify_ttl(srv, o, name, name_len, version);
		return;
	}
	if (note >= sizeof(kinds) / sizeof(kinds[0]) || kinds[note] == 0)
		return; /* not for subscribers */
	for (struct conn *c = srv->subs; c; c = c->sub_next)
		queue(c, kinds[note], o, name, name_len, version);
}

void events_subscribe(struct conn *c, bool snapshot)
{
	struct server *srv = c->srv;

	c->subscriber = true;
	c->sub_prev = NULL;
	c->sub_next = srv->subs;
	if (srv->subs)
		srv->subs->sub_prev = c;
	srv->subs = c;
	if (!snapshot)
		return;
	/* The snapshot is sent a page at a time as the subscriber reads
	 * (events_flush), never more than half its event queue ahead. */
	c->snapshotting = true;
	c->snap_obj = c->snap_name = 0;
	srv->snapshots++;
	srv->subs_dirty = true;
}

/* Most snapshot entries queued per subscriber per loop turn: a bound on
 * the work of one turn, whatever the store holds. */
#define SNAPSHOT_PER_TURN 1024

/* Queues the next part of c's snapshot, while its unread output is under
 * half its event queue; ends it with SNAPSHOT_END. An entry says the
 * state when it is queued; events of changes made meanwhile are queued
 * in between as they happen, so a subscriber that applies everything in
 * order ends with the store's state. */
static void snapshot_some(struct conn *c)
{
	struct store *st = &c->srv->store;
	uint64_t room = c->srv->opt.event_queue / 2;
	unsigned n = 0;

	for (; c->snap_obj < st->objs.nslots && n < SNAPSHOT_PER_TURN;
	     c->snap_obj++) {
		if (c->closing || c->out_len - c->out_off > room)
			return;
		const struct object *o = objtab_get(&st->objs, c->snap_obj);
		if (o->state == OBJ_SEALED && !o->deleted) {
			queue(c, SHOAL_EVENT_SEALED, o, NULL, 0, 0);
			n++;
		}
	}
	for (; c->snap_name < st->names.nslots && n < SNAPSHOT_PER_TURN;
	     c->snap_name++) {
		if (c->closing || c->out_len - c->out_off > room)
			return;
		const struct name_entry *e = &st->names.slots[c->snap_name];
		if (e->name) {
			queue(c, SHOAL_EVENT_NAME_SET,
			      objtab_get(&st->objs, e->obj), e->name, e->len,
			      e->version);
			n++;
		}
	}
	if (c->closing)
		return;
	if (n == SNAPSHOT_PER_TURN) {
		/* More to send and room for it: the loop must not sleep even
		 * if the socket takes all of this at once. */
		c->srv->snapshot_more = true;
		return;
	}
	queue(c, SHOAL_EVENT_SNAPSHOT_END, NULL, NULL, 0, 0);
	snapshot_done(c);
}

static void snapshot_done(struct conn *c)
{
	if (c->snapshotting) {
		c->snapshotting = false;
		c->srv->snapshots--;
	}
}

void events_unsubscribe(struct conn *c)
{
	if (!c->subscriber)
		return;
	snapshot_done(c);
	if (c->sub_prev)
		c->sub_prev->sub_next = c->sub_next;
	else
		c->srv->subs = c->sub_next;
	if (c->sub_next)
		c->sub_next->sub_prev = c->sub_prev;
	c->subscriber = false;
}

void events_flush(struct server *srv)
{
	srv->snapshot_more = false;
	if (!srv->subs_dirty && !srv->snapshots)
		return;
	srv->subs_dirty = false;
	for (struct conn *c = srv->subs, *next; c; c = next) {
		next = c->sub_next;
		if (c->snapshotting)
			snapshot_some(c);
		conn_settle(c); /* writes; closes after an overflow */
	}
}
