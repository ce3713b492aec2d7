/*
 * waits.h - parked requests, decoded once into wait records and indexed by
 * what they wait for, as Redis's blocked.c indexes clients blocked on keys.
 *
 * A connection has at most one parked request (its requests are handled in
 * order), so each connection embeds one struct wait. When a request parks,
 * waits_park() reads it once and files the record:
 *   - GET: one node per ID that is not sealed yet, in a hash table keyed
 *     by ID, plus a count of those IDs. A seal consumes that ID's nodes
 *     only; the request is answered when its count reaches zero, when one
 *     of its objects is dropped with its creator, or at its deadline.
 *   - GET_NAME: in a hash table keyed by name; setting the name wakes the
 *     waiters of that name only.
 *   - CREATE: in a min-heap by block size. The smallest parked create is
 *     the only one that can fit first, so a free looks at the heap's top
 *     only (the caller compares it with the allocator; see server.c).
 *   - every record with a deadline: in a min-heap by deadline, so the loop
 *     finds its next timeout, and the expired requests, in O(log n).
 * A woken record goes on the ready list; the server answers (or re-parks)
 * ready requests before the loop sleeps. Nothing here ever scans all
 * parked requests or all IDs of a request after it parked.
 *
 * The request stays in its connection's input buffer while it is parked;
 * a record finds its bytes through the connection's buffer pointer and an
 * offset, so the buffer may move.
 */
#ifndef SHOAL_WAITS_H
#define SHOAL_WAITS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "heap.h"
#include "htab.h"
#include "protocol.h"

struct store;
struct wait;

/* One ID that a parked GET waits for. */
struct wait_node {
	struct wait *w;
	struct wait_node *prev, *next; /* waiters of the same ID */
	uint32_t idx;                  /* the ID's position in the request */
	bool linked;
};

struct wait {
	uint8_t *const *in; /* the connection's input buffer */
	size_t body_off;    /* the request body's offset in *in */
	uint16_t type;      /* enum proto_type; 0 when not parked */
	bool ready;         /* on the ready list */
	bool final;         /* answer it now, whatever the state */
	struct wait *ready_prev, *ready_next;
	struct heap_item deadline; /* key: deadline in ns; if it has one */
	struct heap_item size;     /* CREATE: key: block bytes */
	/* GET */
	struct wait_node *nodes;
	uint32_t nnodes, remaining;
	/* GET_NAME */
	struct wait *name_prev, *name_next;
	uint32_t name_len;
	size_t bytes; /* private memory the record holds beyond itself */
};

struct waits {
	struct htab by_id;   /* entry: struct wait_node *, the list head */
	struct htab by_name; /* entry: struct wait *, the list head */
	struct heap deadlines;
	struct heap creates;
	struct wait *ready_head, *ready_tail;
	uint64_t parked; /* records filed */
	uint64_t bytes;  /* private memory all records hold */
};

void waits_init(struct waits *ws);
void waits_free(struct waits *ws);

/* Prepares a connection's record (unparked); in is where the connection
 * keeps its input buffer pointer. */
void wait_init(struct wait *w, uint8_t *const *in);

static inline bool wait_parked(const struct wait *w)
{
	return w->type != 0;
}

/* Makes room in the heaps for n parked requests, so that parking never
 * fails for want of heap space. Returns 0 or SHOAL_ENOMEM. */
int waits_reserve(struct waits *ws, size_t n);

/*
 * Files a request that has to wait: h and body are the decoded request
 * (its length already checked by its handler), body_off is where the body
 * sits in the input buffer, deadline_ns its deadline (UINT64_MAX: none).
 * Returns 0; or SHOAL_ENOMEM with nothing filed (the caller then answers
 * the request at once).
 */
int waits_park(struct waits *ws, struct wait *w, const struct store *st,
               const struct proto_header *h, const uint8_t *body,
               size_t body_off, uint64_t deadline_ns);

/* Takes a record out of every index (it was answered, or its connection
 * left). A no-op for a record that is not parked. */
void waits_unpark(struct waits *ws, struct wait *w);

/* An object was sealed: its waiters count it. */
void waits_sealed(struct waits *ws, const uint8_t *id);

/* An unsealed object was dropped with its creator: its waiters are
 * answered now. */
void waits_dropped(struct waits *ws, const uint8_t *id);

/* A name was set: its waiters are tried again. */
void waits_named(struct waits *ws, const char *name, size_t len);

/* Puts a parked record on the ready list (final: to be answered now). */
void waits_wake(struct waits *ws, struct wait *w, bool final);

/* Requests whose deadline is at or before now are made ready, final. */
void waits_expire(struct waits *ws, uint64_t now);

/* The nearest deadline, or UINT64_MAX. */
uint64_t waits_next_deadline(const struct waits *ws);

/* Takes the first ready record off the ready list (it stays parked until
 * the caller answers it), or returns NULL. */
struct wait *waits_pop_ready(struct waits *ws);

/* The parked create with the smallest block, or NULL. */
struct wait *waits_smallest_create(const struct waits *ws);

/* Checks the indexes against each other. Returns 0 or -1 with a message. */
int waits_check(const struct waits *ws, char *msg, size_t size);

#endif /* SHOAL_WAITS_H */
