/*
 * waits.c - the parked-request index (see waits.h).
 *
 * Invariants (waits_check):
 *   - a record is parked iff type != 0; only parked records are in the
 *     heaps, the tables and the ready list;
 *   - a parked GET's remaining == the number of its linked nodes, and each
 *     linked node is in the list of its own ID's table entry; a table
 *     entry's list is never empty (the entry goes with its last node);
 *   - a parked GET_NAME is in the list of its name's entry;
 *   - a parked CREATE is in the size heap; a record with a deadline is in
 *     the deadline heap.
 * Costs: parking a GET of n IDs is O(n) (one lookup per ID); a seal is
 * O(waiters of that ID); a name set O(waiters of that name); everything
 * else O(log parked).
 */
#include "waits.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "os.h"
#include "shoal.h"
#include "store.h"

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p)-offsetof(type, member)))

void waits_init(struct waits *ws)
{
	memset(ws, 0, sizeof(*ws));
	htab_init(&ws->by_id, sizeof(struct wait_node *));
	htab_init(&ws->by_name, sizeof(struct wait *));
}

void waits_free(struct waits *ws)
{
	htab_free(&ws->by_id);
	htab_free(&ws->by_name);
	heap_free(&ws->deadlines);
	heap_free(&ws->creates);
	memset(ws, 0, sizeof(*ws));
}

void wait_init(struct wait *w, uint8_t *const *in)
{
	memset(w, 0, sizeof(*w));
	w->in = in;
	w->deadline.pos = HEAP_NONE;
	w->size.pos = HEAP_NONE;
}

int waits_reserve(struct waits *ws, size_t n)
{
	if (heap_reserve(&ws->deadlines, n) || heap_reserve(&ws->creates, n))
		return SHOAL_ENOMEM;
	return 0;
}

static const uint8_t *body_of(const struct wait *w)
{
	return *w->in + w->body_off;
}

static const uint8_t *node_id(const struct wait_node *n)
{
	return body_of(n->w) + sizeof(struct proto_get) +
	       (size_t)n->idx * SHOAL_ID_SIZE;
}

static const char *wait_name(const struct wait *w)
{
	return (const char *)body_of(w) + sizeof(struct proto_get_name);
}

static bool id_eq(const void *entry, const void *key)
{
	const struct wait_node *head;

	memcpy(&head, entry, sizeof(head));
	return memcmp(node_id(head), key, SHOAL_ID_SIZE) == 0;
}

struct name_key {
	const char *name;
	size_t len;
};

static bool name_eq(const void *entry, const void *key)
{
	const struct name_key *k = key;
	const struct wait *head;

	memcpy(&head, entry, sizeof(head));
	return head->name_len == k->len &&
	       memcmp(wait_name(head), k->name, k->len) == 0;
}

void waits_wake(struct waits *ws, struct wait *w, bool final)
{
	w->final |= final;
	if (w->ready)
		return;
	w->ready = true;
	w->ready_next = NULL;
	w->ready_prev = ws->ready_tail;
	if (ws->ready_tail)
		ws->ready_tail->ready_next = w;
	else
		ws->ready_head = w;
	ws->ready_tail = w;
}

static void unready(struct waits *ws, struct wait *w)
{
	if (!w->ready)
		return;
	if (w->ready_prev)
		w->ready_prev->ready_next = w->ready_next;
	else
		ws->ready_head = w->ready_next;
	if (w->ready_next)
		w->ready_next->ready_prev = w->ready_prev;
	else
		ws->ready_tail = w->ready_prev;
	w->ready_prev = w->ready_next = NULL;
	w->ready = false;
}

/* The table entry (list head) of an ID's waiters, or NULL. */
static void *id_entry(const struct waits *ws, const uint8_t *id)
{
	return htab_find(&ws->by_id, htab_hash_bytes(id, SHOAL_ID_SIZE), id_eq,
	                 id);
}

/* The entry of a name's waiters, or NULL. */
static void *name_entry(const struct waits *ws, const char *name, size_t len)
{
	struct name_key k = {name, len};

	return htab_find(&ws->by_name, htab_hash_bytes(name, len), name_eq, &k);
}

/* Takes a GET's node out of its ID's list; drops the entry with the last
 * node. */
static void node_unlink(struct waits *ws, struct wait_node *n)
{
	if (!n->linked)
		return;
	if (n->prev) {
		n->prev->next = n->next;
	} else {
		void *e = id_entry(ws, node_id(n));
		SHOAL_ASSERT(e != NULL);
		if (n->next)
			memcpy(e, &n->next, sizeof(n->next));
		else
			htab_remove(&ws->by_id, e);
	}
	if (n->next)
		n->next->prev = n->prev;
	n->prev = n->next = NULL;
	n->linked = false;
	SHOAL_ASSERT(n->w->remaining > 0);
	n->w->remaining--;
}

/* Links node n (filled in) at the head of its ID's list. */
static int node_link(struct waits *ws, struct wait_node *n, const uint8_t *id)
{
	uint64_t hash = htab_hash_bytes(id, SHOAL_ID_SIZE);
	void *e = htab_find(&ws->by_id, hash, id_eq, id);

	if (e) {
		memcpy(&n->next, e, sizeof(n->next));
		n->next->prev = n;
		memcpy(e, &n, sizeof(n));
	} else {
		n->next = NULL;
		if (htab_insert(&ws->by_id, hash, &n, NULL))
			return SHOAL_ENOMEM;
	}
	n->prev = NULL;
	n->linked = true;
	n->w->remaining++;
	return 0;
}

static void get_unpark(struct waits *ws, struct wait *w)
{
	for (uint32_t i = 0; i < w->nnodes; i++)
		node_unlink(ws, &w->nodes[i]);
	free(w->nodes);
	w->nodes = NULL;
	w->nnodes = 0;
}

static int get_park(struct waits *ws, struct wait *w, const struct store *st,
                    const uint8_t *body)
{
	struct proto_get req;
	const uint8_t *ids = body + sizeof(req);
	uint32_t n = 0;

	memcpy(&req, body, sizeof(req));
	for (uint32_t i = 0; i < req.count; i++)
		if (store_contains(st, ids + (size_t)i * SHOAL_ID_SIZE) !=
		    SHOAL_STATE_SEALED)
			n++;
	if (n == 0) {
		waits_wake(ws, w, true);
		return 0;
	}
	w->nodes = os_calloc(n, sizeof(*w->nodes));
	if (!w->nodes)
		return SHOAL_ENOMEM;
	w->bytes = (size_t)n * sizeof(*w->nodes);
	for (uint32_t i = 0; i < req.count; i++) {
		const uint8_t *id = ids + (size_t)i * SHOAL_ID_SIZE;
		if (store_contains(st, id) == SHOAL_STATE_SEALED)
			continue;
		struct wait_node *node = &w->nodes[w->nnodes++];
		node->w = w;
		node->idx = i;
		if (node_link(ws, node, id)) {
			get_unpark(ws, w);
			return SHOAL_ENOMEM;
		}
	}
	return 0;
}

static void name_unpark(struct waits *ws, struct wait *w)
{
	if (w->name_prev) {
		w->name_prev->name_next = w->name_next;
	} else {
		void *e = name_entry(ws, wait_name(w), w->name_len);
		SHOAL_ASSERT(e != NULL);
		if (w->name_next)
			memcpy(e, &w->name_next, sizeof(w->name_next));
		else
			htab_remove(&ws->by_name, e);
	}
	if (w->name_next)
		w->name_next->name_prev = w->name_prev;
	w->name_prev = w->name_next = NULL;
}

static int name_park(struct waits *ws, struct wait *w, const uint8_t *body)
{
	struct proto_get_name req;

	memcpy(&req, body, sizeof(req));
	w->name_len = req.name_len;
	struct name_key k = {(const char *)body + sizeof(req), req.name_len};
	uint64_t hash = htab_hash_bytes(k.name, k.len);
	void *e = htab_find(&ws->by_name, hash, name_eq, &k);
	w->name_prev = NULL;
	if (e) {
		memcpy(&w->name_next, e, sizeof(w->name_next));
		w->name_next->name_prev = w;
		memcpy(e, &w, sizeof(w));
		return 0;
	}
	w->name_next = NULL;
	return htab_insert(&ws->by_name, hash, &w, NULL);
}

int waits_park(struct waits *ws, struct wait *w, const struct store *st,
               const struct proto_header *h, const uint8_t *body,
               size_t body_off, uint64_t deadline_ns)
{
	int rc = 0;

	SHOAL_ASSERT(!wait_parked(w) && !w->ready);
	w->type = h->type;
	w->body_off = body_off;
	w->final = false;
	w->bytes = 0;
	switch (h->type) {
	case PROTO_GET:
		rc = get_park(ws, w, st, body);
		break;
	case PROTO_GET_NAME:
		rc = name_park(ws, w, body);
		break;
	case PROTO_CREATE: {
		struct proto_create req;
		memcpy(&req, body, sizeof(req));
		uint64_t total = req.data_size + req.metadata_size;
		w->size.key = total ? total : 1;
		rc = heap_push(&ws->creates, &w->size);
		break;
	}
	default:
		SHOAL_ASSERT(!"only GET, GET_NAME and CREATE park");
		rc = SHOAL_EINVAL;
	}
	if (rc) {
		unready(ws, w);
		w->type = 0;
		w->bytes = 0;
		return rc;
	}
	ws->parked++;
	ws->bytes += w->bytes;
	if (deadline_ns != UINT64_MAX) {
		w->deadline.key = deadline_ns;
		rc = heap_push(&ws->deadlines, &w->deadline);
		if (rc) {
			waits_unpark(ws, w);
			return rc;
		}
	}
	return 0;
}

void waits_unpark(struct waits *ws, struct wait *w)
{
	if (!wait_parked(w))
		return;
	switch (w->type) {
	case PROTO_GET:
		get_unpark(ws, w);
		break;
	case PROTO_GET_NAME:
		name_unpark(ws, w);
		break;
	case PROTO_CREATE:
		heap_remove(&ws->creates, &w->size);
		break;
	}
	heap_remove(&ws->deadlines, &w->deadline);
	unready(ws, w);
	SHOAL_ASSERT(ws->parked > 0 && ws->bytes >= w->bytes);
	ws->parked--;
	ws->bytes -= w->bytes;
	w->bytes = 0;
	w->type = 0;
	w->final = false;
}

void waits_sealed(struct waits *ws, const uint8_t *id)
{
	void *e = id_entry(ws, id);
	struct wait_node *n = NULL;

	if (e)
		memcpy(&n, e, sizeof(n));
	/* Consume the whole list: each unlink of the head rewrites the entry
	 * (and the last one removes it), so follow next pointers taken
	 * before each unlink. */
	while (n) {
		struct wait_node *next = n->next;
		struct wait *w = n->w;
		node_unlink(ws, n);
		if (w->remaining == 0)
			waits_wake(ws, w, true);
		n = next;
	}
}

void waits_dropped(struct waits *ws, const uint8_t *id)
{
	void *e = id_entry(ws, id);
	struct wait_node *n = NULL;

	if (e)
		memcpy(&n, e, sizeof(n));
	for (; n; n = n->next)
		waits_wake(ws, n->w, true);
}

void waits_named(struct waits *ws, const char *name, size_t len)
{
	void *e = name_entry(ws, name, len);
	struct wait *w = NULL;

	if (e)
		memcpy(&w, e, sizeof(w));
	for (; w; w = w->name_next)
		waits_wake(ws, w, false);
}

void waits_expire(struct waits *ws, uint64_t now)
{
	struct heap_item *it;

	/* Expired records leave the heap here: a request that is answered
	 * leaves every index anyway. */
	while ((it = heap_top(&ws->deadlines)) && it->key <= now) {
		heap_remove(&ws->deadlines, it);
		waits_wake(ws, container_of(it, struct wait, deadline), true);
	}
}

uint64_t waits_next_deadline(const struct waits *ws)
{
	struct heap_item *it = heap_top(&ws->deadlines);

	return it ? it->key : UINT64_MAX;
}

struct wait *waits_pop_ready(struct waits *ws)
{
	struct wait *w = ws->ready_head;

	if (w)
		unready(ws, w);
	return w;
}

struct wait *waits_smallest_create(const struct waits *ws)
{
	struct heap_item *it = heap_top(&ws->creates);

	return it ? container_of(it, struct wait, size) : NULL;
}

int waits_check(const struct waits *ws, char *msg, size_t size)
{
	size_t pos = 0;
	void *e;

	if (htab_check(&ws->by_id, msg, size) ||
	    htab_check(&ws->by_name, msg, size))
		return -1;
	if (heap_check(&ws->deadlines) || heap_check(&ws->creates)) {
		snprintf(msg, size, "a wait heap is out of order");
		return -1;
	}
	while ((e = htab_next(&ws->by_id, &pos))) {
		struct wait_node *n;
		memcpy(&n, e, sizeof(n));
		if (!n || n->prev) {
			snprintf(msg, size, "ID wait list has a bad head");
			return -1;
		}
		for (; n; n = n->next) {
			if (!n->linked || n->w->type != PROTO_GET ||
			    (n->next && n->next->prev != n) ||
			    !id_eq(e, node_id(n))) {
				snprintf(msg, size, "ID wait list is broken");
				return -1;
			}
		}
	}
	if (ws->creates.n + ws->by_name.count > ws->parked) {
		snprintf(msg, size, "more waits filed than parked");
		return -1;
	}
	return 0;
}
