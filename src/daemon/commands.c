/*
 * commands.c - one handler per request type: decode (every length checked
 * by protocol.c), call the store, encode the reply.
 *
 * Handlers never block and never close a connection themselves: a request
 * that must wait returns CMD_PARK and is called again with final set when
 * its deadline passes; a protocol violation returns CMD_CLOSE after
 * queueing an error reply. A malformed body of a known type gets an error
 * reply and the connection goes on (the framing is intact).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layout.h"
#include "net.h"
#include "os.h"
#include "server.h"

typedef enum cmd_result handler(struct conn *c, const struct proto_header *h,
                                const uint8_t *body, bool final);

#define REPLY_ERR(c, h, rc, ...)                                        \
	do {                                                            \
		conn_reply_error((c), (h)->type, (h)->request_id, (rc), \
		                 __VA_ARGS__);                          \
		return CMD_DONE;                                        \
	} while (0)

/* Only -1 (SHOAL_WAIT_FOREVER) of the negative timeouts means anything. */
static const char bad_timeout[] =
        "a timeout is a number of ms, 0 (do not wait) or -1 (no limit)";

static void fill_object(const struct object *o, uint64_t handle,
                        struct proto_object *e)
{
	e->status = 0;
	e->metadata_size = o->metadata_size;
	e->offset = o->offset;
	e->data_size = o->data_size;
	e->handle = handle;
}

static enum cmd_result cmd_hello(struct conn *c, const struct proto_header *h,
                                 const uint8_t *body, bool final)
{
	struct server *srv = c->srv;
	struct proto_hello req;
	struct {
		struct proto_header h;
		struct proto_hello_reply r;
	} msg;

	(void) final;
	if (c->hello || c->out_len != c->out_off) {
		conn_reply_error(c, h->type, h->request_id, SHOAL_EPROTO,
		                 "hello sent twice");
		return CMD_CLOSE;
	}
	if (proto_decode_fixed(body, h->body_len, &req, sizeof(req))) {
		conn_reply_error(c, h->type, h->request_id, SHOAL_EPROTO,
		                 "malformed hello");
		return CMD_CLOSE;
	}
	if (srv->nconns > srv->opt.limits.max_clients) {
		conn_reply_error(c, h->type, h->request_id, SHOAL_ELIMIT,
		                 "%u clients are connected, the most this "
		                 "daemon serves (--max-clients)",
		                 srv->nconns - 1);
		return CMD_CLOSE;
	}
	if (req.proto_version != PROTO_VERSION) {
		conn_reply_error(c, h->type, h->request_id, SHOAL_EPROTO,
		                 "protocol version %u is not served (this "
		                 "daemon speaks %u)",
		                 req.proto_version, PROTO_VERSION);
		return CMD_CLOSE;
	}
	memset(&msg, 0, sizeof(msg));
	proto_header_init(&msg.h, PROTO_HELLO | PROTO_REPLY, h->request_id,
	                  sizeof(msg.r));
	msg.r.map_size = srv->arena.map_size;
	msg.r.capacity = srv->arena.requested;
	msg.r.data_offset = srv->arena.data_offset;
	msg.r.client_id = c->sc.id;
	/* Every client checks the header at connect; a stray write into it
	 * must not lock new clients out until a restart. */
	if (arena_repair_header(&srv->arena))
		fprintf(stderr, "shoal: the arena header had been overwritten "
		                "by a client; restored it\n");
	/* A reader's HELLO also brings the published region (freelog.h),
	 * second; a writer's short connection needs only the arena. */
	int fds[2] = {srv->arena.ro_fd, srv->freelog.ro_fd};
	int nfds = srv->freelog.ro_fd >= 0 ? 2 : 1;
	if (req.flags & PROTO_HELLO_WRITER) {
		fds[0] = srv->arena.fd;
		nfds = 1;
	}
	long n = net_send_with_fds(c->fd, &msg, sizeof(msg), fds, nfds);
	if (n <= 0)
		return CMD_CLOSE; /* a fresh socket always takes 56 bytes */
	if ((size_t)n < sizeof(msg)) {
		uint8_t *rest = conn_out_reserve(c, sizeof(msg) - (size_t)n);
		if (!rest)
			return CMD_CLOSE;
		memcpy(rest, (uint8_t *)&msg + n, sizeof(msg) - (size_t)n);
	}
	c->hello = true;
	c->pid = req.pid;
	return CMD_DONE;
}

static enum cmd_result cmd_create(struct conn *c, const struct proto_header *h,
                                  const uint8_t *body, bool final)
{
	struct server *srv = c->srv;
	struct proto_create req;
	struct proto_create_reply rep = {0};
	bool backed = false;

	if (proto_decode_fixed(body, h->body_len, &req, sizeof(req)))
		REPLY_ERR(c, h, SHOAL_EPROTO, "malformed create");
	if (req.timeout_ms < SHOAL_WAIT_FOREVER)
		REPLY_ERR(c, h, SHOAL_EINVAL, "%s", bad_timeout);
	uint64_t total = req.data_size + req.metadata_size;
	if (req.data_size > srv->arena.requested ||
	    total > srv->arena.requested)
		REPLY_ERR(c, h, SHOAL_EFULL,
		          "an object of %llu bytes is larger than the store "
		          "(%llu bytes): start it with a larger -m",
		          (unsigned long long)req.data_size,
		          (unsigned long long)srv->arena.requested);
	int rc = store_create(&srv->store, &c->sc, req.id, req.data_size,
	                      req.metadata_size, &rep.offset, &rep.handle,
	                      &backed);
	if (rc == SHOAL_EFULL && req.timeout_ms != 0 && !final)
		return CMD_PARK;
	if (rc == SHOAL_EFULL)
		REPLY_ERR(c, h, rc,
		          "store full: %llu bytes do not fit even after "
		          "evicting every unused object",
		          (unsigned long long)total);
	if (rc)
		REPLY_ERR(c, h, rc, "%s", shoal_strerror(rc));
	rep.flags = backed ? PROTO_CREATE_BACKED : 0;
	void *p = conn_reply(c, h->type, h->request_id, sizeof(rep));
	if (p)
		memcpy(p, &rep, sizeof(rep));
	return CMD_DONE;
}

static enum cmd_result cmd_seal(struct conn *c, const struct proto_header *h,
                                const uint8_t *body, bool final)
{
	struct proto_id_req req;

	(void) final;
	if (proto_decode_fixed(body, h->body_len, &req, sizeof(req)))
		REPLY_ERR(c, h, SHOAL_EPROTO, "malformed seal");
	int rc = h->type == PROTO_SEAL
	                 ? store_seal(&c->srv->store, &c->sc, req.id)
	                 : store_abort(&c->srv->store, &c->sc, req.id);
	if (rc)
		REPLY_ERR(c, h, rc, "%s", shoal_strerror(rc));
	if (h->type == PROTO_SEAL && (req.flags & PROTO_SEAL_NOREPLY))
		return CMD_DONE;
	void *p = conn_reply(c, h->type, h->request_id,
	                     sizeof(struct proto_reply));
	(void)p;
	return CMD_DONE;
}

static bool all_sealed(const struct store *st, const uint8_t *ids, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (store_contains(st, ids + (size_t)i * SHOAL_ID_SIZE) !=
		    SHOAL_STATE_SEALED)
			return false;
	return true;
}

static enum cmd_result cmd_get(struct conn *c, const struct proto_header *h,
                               const uint8_t *body, bool final)
{
	struct store *st = &c->srv->store;
	struct proto_get req;
	const uint8_t *ids;
	int rc = proto_decode_get(body, h->body_len, &req, &ids);

	if (rc)
		REPLY_ERR(c, h, rc, "malformed get");
	if (req.timeout_ms < SHOAL_WAIT_FOREVER)
		REPLY_ERR(c, h, SHOAL_EINVAL, "%s", bad_timeout);
	if (req.timeout_ms != 0 && !final && !all_sealed(st, ids, req.count))
		return CMD_PARK;
	size_t len = sizeof(struct proto_get_reply) +
	             (size_t)req.count * sizeof(struct proto_object);
	uint8_t *p = conn_reply(c, h->type, h->request_id, len);
	if (!p)
		return CMD_DONE;
	struct proto_get_reply head = {.count = req.count};
	memcpy(p, &head, sizeof(head));
	for (uint32_t i = 0; i < req.count; i++) {
		struct proto_object e = {0};
		uint32_t slot;
		rc = store_get(st, &c->sc, ids + (size_t)i * SHOAL_ID_SIZE,
		               &slot);
		if (rc == 0)
			fill_object(objtab_get(&st->objs, slot),
			            objtab_handle(&st->objs, slot), &e);
		else
			e.status = rc;
		memcpy(p + sizeof(head) + i * sizeof(e), &e, sizeof(e));
	}
	return CMD_DONE;
}

static enum cmd_result cmd_release(struct conn *c, const struct proto_header *h,
                                   const uint8_t *body, bool final)
{
	struct proto_release req;
	const uint8_t *handles;

	(void) final;
	int rc = proto_decode_release(body, h->body_len, &req, &handles);
	if (rc)
		REPLY_ERR(c, h, rc,
		          rc == SHOAL_ETOOBIG
		                  ? "a release of more than 65,536 handles"
		                  : "malformed release");
	for (uint32_t i = 0; i < req.count; i++) {
		uint64_t handle;
		memcpy(&handle, handles + (size_t)i * sizeof(handle),
		       sizeof(handle));
		store_release(&c->srv->store, &c->sc, handle);
	}
	return CMD_DONE;
}

static enum cmd_result cmd_delete(struct conn *c, const struct proto_header *h,
                                  const uint8_t *body, bool final)
{
	struct proto_delete req;
	const uint8_t *ids;
	int rc = proto_decode_delete(body, h->body_len, &req, &ids);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed delete");
	size_t len = sizeof(struct proto_delete_reply) +
	             (size_t)req.count * sizeof(int32_t);
	uint8_t *p = conn_reply(c, h->type, h->request_id, len);
	if (!p)
		return CMD_DONE;
	struct proto_delete_reply head = {.count = req.count};
	memcpy(p, &head, sizeof(head));
	for (uint32_t i = 0; i < req.count; i++) {
		int32_t r = store_delete(&c->srv->store,
		                         ids + (size_t)i * SHOAL_ID_SIZE);
		memcpy(p + sizeof(head) + i * sizeof(r), &r, sizeof(r));
	}
	return CMD_DONE;
}

static enum cmd_result cmd_contains(struct conn *c,
                                    const struct proto_header *h,
                                    const uint8_t *body, bool final)
{
	struct proto_id_req req;
	struct proto_contains_reply rep = {0};

	(void) final;
	if (proto_decode_fixed(body, h->body_len, &req, sizeof(req)))
		REPLY_ERR(c, h, SHOAL_EPROTO, "malformed contains");
	rep.state = (uint32_t)store_contains(&c->srv->store, req.id);
	void *p = conn_reply(c, h->type, h->request_id, sizeof(rep));
	if (p)
		memcpy(p, &rep, sizeof(rep));
	return CMD_DONE;
}

static uint32_t list_limit(uint32_t asked)
{
	return asked == 0 || asked > PROTO_LIST_MAX ? PROTO_LIST_MAX : asked;
}

/*
 * Listing replies are reserved at their exact size, found by a first pass
 * over the page: reserving (and zeroing) the largest possible page would
 * cost up to 4 MiB per LIST_NAMES however few names there are.
 */
static enum cmd_result cmd_list(struct conn *c, const struct proto_header *h,
                                const uint8_t *body, bool final)
{
	const struct objtab *t = &c->srv->store.objs;
	struct proto_list req;
	struct proto_list_reply head = {0};
	uint64_t s, end;

	(void) final;
	if (proto_decode_fixed(body, h->body_len, &req, sizeof(req)))
		REPLY_ERR(c, h, SHOAL_EPROTO, "malformed list");
	uint32_t limit = list_limit(req.limit);
	for (end = req.cursor; end < t->nslots && head.count < limit; end++) {
		const struct object *o = objtab_get(t, (uint32_t)end);
		if (o->state != OBJ_FREE && !o->deleted)
			head.count++;
	}
	head.next_cursor = end < t->nslots ? end : 0;
	uint8_t *p = conn_reply(
	        c, h->type, h->request_id,
	        sizeof(head) +
	                (size_t)head.count * sizeof(struct proto_list_entry));
	if (!p)
		return CMD_DONE;
	memcpy(p, &head, sizeof(head));
	p += sizeof(head);
	for (s = req.cursor; s < end; s++) {
		const struct object *o = objtab_get(t, (uint32_t)s);
		if (o->state == OBJ_FREE || o->deleted)
			continue;
		struct proto_list_entry e = {0};
		memcpy(e.id, o->id, SHOAL_ID_SIZE);
		e.state = o->state == OBJ_SEALED ? SHOAL_STATE_SEALED
		                                 : SHOAL_STATE_CREATED;
		e.data_size = o->data_size;
		e.metadata_size = o->metadata_size;
		e.holders = o->holders;
		e.create_time_ns = o->create_time_ns;
		e.names = o->names;
		e.construct_ms = PROTO_UNSEALED_MS;
		if (o->state == OBJ_SEALED) {
			uint64_t ms = o->seal_time_ns > o->create_time_ns
			                      ? (o->seal_time_ns -
			                         o->create_time_ns) /
			                                1000000u
			                      : 0;
			e.construct_ms = ms < PROTO_UNSEALED_MS
			                         ? (uint32_t)ms
			                         : PROTO_UNSEALED_MS - 1;
		}
		memcpy(p, &e, sizeof(e));
		p += sizeof(e);
	}
	return CMD_DONE;
}

static enum cmd_result cmd_evict(struct conn *c, const struct proto_header *h,
                                 const uint8_t *body, bool final)
{
	struct proto_evict req;
	struct proto_evict_reply rep = {0};

	(void) final;
	if (proto_decode_fixed(body, h->body_len, &req, sizeof(req)))
		REPLY_ERR(c, h, SHOAL_EPROTO, "malformed evict");
	rep.freed = store_evict(&c->srv->store, req.nbytes);
	void *p = conn_reply(c, h->type, h->request_id, sizeof(rep));
	if (p)
		memcpy(p, &rep, sizeof(rep));
	return CMD_DONE;
}

/* The wait it cancels was ended by conn_process(), which saw this message
 * behind it; alone (the wait had ended anyway) it does nothing. */
static enum cmd_result cmd_cancel(struct conn *c, const struct proto_header *h,
                                  const uint8_t *body, bool final)
{
	(void)body;
	(void) final;
	if (h->body_len != 0)
		REPLY_ERR(c, h, SHOAL_EPROTO, "malformed cancel");
	return CMD_DONE;
}

static enum cmd_result cmd_stats(struct conn *c, const struct proto_header *h,
                                 const uint8_t *body, bool final)
{
	struct proto_stats_reply rep = {0};
	shoal_stats s;

	(void)body;
	(void) final;
	if (h->body_len != 0)
		REPLY_ERR(c, h, SHOAL_EPROTO, "malformed stats");
	store_stats(&c->srv->store, c->srv->nconns, &s);
	s.requests = c->srv->requests;
	_Static_assert(sizeof(rep) - sizeof(rep.r) == sizeof(s),
	               "stats reply mirrors shoal_stats");
	memcpy((uint8_t *)&rep + sizeof(rep.r), &s, sizeof(s));
	void *p = conn_reply(c, h->type, h->request_id, sizeof(rep));
	if (p)
		memcpy(p, &rep, sizeof(rep));
	return CMD_DONE;
}

static enum cmd_result cmd_set_name(struct conn *c,
                                    const struct proto_header *h,
                                    const uint8_t *body, bool final)
{
	struct proto_set_name req;
	struct proto_version_reply rep = {0};
	const char *name;
	int rc = proto_decode_set_name(body, h->body_len, &req, &name);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed name or request");
	if (req.flags & ~(PROTO_NAME_CAS | PROTO_NAME_EVICTABLE))
		REPLY_ERR(c, h, SHOAL_EINVAL, "unknown set-name flags 0x%x",
		          req.flags);
	rc = store_set_name_ttl(
	        &c->srv->store, name, req.name_len, req.id,
	        req.flags & PROTO_NAME_CAS, req.expected_version, req.ttl_ms,
	        req.flags & PROTO_NAME_EVICTABLE ? NAME_EVICTABLE : 0,
	        &rep.version);
	if (rc)
		REPLY_ERR(c, h, rc, "%s", shoal_strerror(rc));
	void *p = conn_reply(c, h->type, h->request_id, sizeof(rep));
	if (p)
		memcpy(p, &rep, sizeof(rep));
	return CMD_DONE;
}

static enum cmd_result cmd_get_name(struct conn *c,
                                    const struct proto_header *h,
                                    const uint8_t *body, bool final)
{
	struct store *st = &c->srv->store;
	struct proto_get_name req;
	struct proto_get_name_reply rep = {0};
	const char *name;
	uint32_t slot;
	int rc = proto_decode_get_name(body, h->body_len, &req, &name);

	if (rc)
		REPLY_ERR(c, h, rc, "malformed name or request");
	if (req.timeout_ms < SHOAL_WAIT_FOREVER)
		REPLY_ERR(c, h, SHOAL_EINVAL, "%s", bad_timeout);
	rc = store_get_name(st, &c->sc, name, req.name_len, &slot,
	                    &rep.version);
	if (rc == SHOAL_ENOTFOUND && req.timeout_ms != 0 && !final)
		return CMD_PARK;
	if (rc)
		REPLY_ERR(c, h, rc, "%s", shoal_strerror(rc));
	const struct object *o = objtab_get(&st->objs, slot);
	memcpy(rep.id, o->id, SHOAL_ID_SIZE);
	fill_object(o, objtab_handle(&st->objs, slot), &rep.object);
	void *p = conn_reply(c, h->type, h->request_id, sizeof(rep));
	if (p)
		memcpy(p, &rep, sizeof(rep));
	return CMD_DONE;
}

static enum cmd_result cmd_delete_name(struct conn *c,
                                       const struct proto_header *h,
                                       const uint8_t *body, bool final)
{
	struct proto_delete_name req;
	const char *name;
	int rc = proto_decode_delete_name(body, h->body_len, &req, &name);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed name or request");
	rc = store_delete_name(&c->srv->store, name, req.name_len,
	                       req.flags & PROTO_NAME_CAS,
	                       req.expected_version);
	if (rc)
		REPLY_ERR(c, h, rc, "%s", shoal_strerror(rc));
	(void)conn_reply(c, h->type, h->request_id, sizeof(struct proto_reply));
	return CMD_DONE;
}

static enum cmd_result cmd_debug_check(struct conn *c,
                                       const struct proto_header *h,
                                       const uint8_t *body, bool final)
{
	struct server *srv = c->srv;
	struct store_client **clients;
	char msg[256] = "";

	(void)body;
	(void) final;
	if (!srv->opt.debug_checks)
		REPLY_ERR(c, h, SHOAL_EINVAL,
		          "consistency checks are off (serve --debug-checks)");
	clients = os_calloc(srv->nconns + 1, sizeof(*clients));
	if (!clients)
		REPLY_ERR(c, h, SHOAL_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < srv->nconns; i++)
		clients[i] = &srv->conns[i]->sc;
	int rc = store_check(&srv->store, clients, srv->nconns, msg,
	                     sizeof(msg));
	free(clients);
	if (rc)
		REPLY_ERR(c, h, SHOAL_EPROTO, "invariant broken: %s", msg);
	(void)conn_reply(c, h->type, h->request_id, sizeof(struct proto_reply));
	return CMD_DONE;
}

static enum cmd_result cmd_subscribe(struct conn *c,
                                     const struct proto_header *h,
                                     const uint8_t *body, bool final)
{
	struct proto_subscribe req;

	(void) final;
	if (proto_decode_fixed(body, h->body_len, &req, sizeof(req)))
		REPLY_ERR(c, h, SHOAL_EPROTO, "malformed subscribe");
	if (!conn_reply(c, h->type, h->request_id, sizeof(struct proto_reply)))
		return CMD_DONE;
	c->sub_ttl = req.flags & PROTO_SUBSCRIBE_TTL;
	events_subscribe(c, req.flags & PROTO_SUBSCRIBE_SNAPSHOT);
	return CMD_DONE;
}

static handler *const handlers[PROTO_TYPE_END] = {
        [PROTO_HELLO] = cmd_hello,
        [PROTO_CREATE] = cmd_create,
        [PROTO_SEAL] = cmd_seal,
        [PROTO_ABORT] = cmd_seal,
        [PROTO_GET] = cmd_get,
        [PROTO_RELEASE] = cmd_release,
        [PROTO_DELETE] = cmd_delete,
        [PROTO_CONTAINS] = cmd_contains,
        [PROTO_LIST] = cmd_list,
        [PROTO_EVICT] = cmd_evict,
        [PROTO_STATS] = cmd_stats,
        [PROTO_SET_NAME] = cmd_set_name,
        [PROTO_GET_NAME] = cmd_get_name,
        [PROTO_DELETE_NAME] = cmd_delete_name,
        [PROTO_LIST_NAMES] = cmd_names_list,
        [PROTO_SUBSCRIBE] = cmd_subscribe,
        [PROTO_DEBUG_CHECK] = cmd_debug_check,
        [PROTO_CANCEL] = cmd_cancel,
        [PROTO_EXPIRE] = cmd_names_expire,
        [PROTO_PERSIST] = cmd_names_persist,
        [PROTO_NAME_INFO] = cmd_names_info,
        [PROTO_DELETE_PREFIX] = cmd_names_delete_prefix,
};

enum cmd_result commands_dispatch(struct conn *c, const struct proto_header *h,
                                  const uint8_t *body, bool final)
{
	if (h->type >= PROTO_TYPE_END || !handlers[h->type]) {
		conn_reply_error(c, h->type, h->request_id, SHOAL_EPROTO,
		                 "unknown request type %u", h->type);
		/* Before a hello, nothing says the peer speaks shoal. */
		return c->hello ? CMD_DONE : CMD_CLOSE;
	}
	if (c->subscriber) {
		conn_reply_error(c, h->type, h->request_id, SHOAL_EPROTO,
		                 "a subscription takes no requests");
		return CMD_CLOSE;
	}
	if (!c->hello && h->type != PROTO_HELLO) {
		conn_reply_error(c, h->type, h->request_id, SHOAL_EPROTO,
		                 "the first request must be a hello");
		return CMD_CLOSE;
	}
	return handlers[h->type](c, h, body, final);
}

uint64_t commands_deadline(const struct proto_header *h, const uint8_t *body)
{
	int64_t timeout = -1;

	/* Only parkable requests get here, already decoded once. */
	if (h->type == PROTO_GET)
		memcpy(&timeout, body + offsetof(struct proto_get, timeout_ms),
		       sizeof(timeout));
	else if (h->type == PROTO_GET_NAME)
		memcpy(&timeout,
		       body + offsetof(struct proto_get_name, timeout_ms),
		       sizeof(timeout));
	else if (h->type == PROTO_CREATE)
		memcpy(&timeout,
		       body + offsetof(struct proto_create, timeout_ms),
		       sizeof(timeout));
	if (timeout < 0)
		return UINT64_MAX;
	if ((uint64_t)timeout > UINT64_MAX / 2000000ull)
		return UINT64_MAX;
	return server_now_ns() + (uint64_t)timeout * 1000000ull;
}
