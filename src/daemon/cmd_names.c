/*
 * cmd_names.c - the name requests of the cache layer: listing names (with
 * an optional prefix), expiry (EXPIRE, PERSIST), a name's metadata
 * (NAME_INFO) and deletion by prefix. Same rules as commands.c: every body
 * is decoded by protocol.c, handlers never block, a malformed body gets an
 * error reply and the connection goes on.
 *
 * Listing by prefix and deleting by prefix walk the name slots: a listing
 * page looks at no more than PROTO_LIST_SCAN slots, so one request never
 * holds the loop for long; a delete is one pass over the table, done in
 * one step so that no reader sees half a namespace.
 */
#include <string.h>

#include "server.h"

#define REPLY_ERR(c, h, rc, ...)                                        \
	do {                                                            \
		conn_reply_error((c), (h)->type, (h)->request_id, (rc), \
		                 __VA_ARGS__);                          \
		return CMD_DONE;                                        \
	} while (0)

static bool has_prefix(const struct name_entry *e, const char *prefix,
                       size_t len)
{
	return e->len >= len && memcmp(e->name, prefix, len) == 0;
}

static void fill_entry(const struct store *st, const struct name_entry *ne,
                       struct proto_name_entry *e)
{
	const struct object *o = objtab_get(&st->objs, ne->obj);

	memset(e, 0, sizeof(*e));
	memcpy(e->id, o->id, SHOAL_ID_SIZE);
	e->name_len = ne->len;
	e->version = ne->version;
	e->data_size = o->data_size;
	e->metadata_size = o->metadata_size;
	e->flags = ne->flags & NAME_EVICTABLE ? PROTO_ENTRY_EVICTABLE : 0;
	e->ttl_ms = store_name_ttl_ms(st, ne);
}

/*
 * The reply is reserved at its exact size, found by a first pass over the
 * page: reserving (and zeroing) the largest possible page would cost up to
 * 4 MiB per LIST_NAMES however few names there are.
 */
enum cmd_result cmd_names_list(struct conn *c, const struct proto_header *h,
                               const uint8_t *body, bool final)
{
	struct store *st = &c->srv->store;
	const struct names *n = &st->names;
	struct proto_list_names req;
	struct proto_list_reply head = {0};
	size_t len = sizeof(head);
	const char *prefix;
	uint64_t s, end, now = st->clock();
	int rc = proto_decode_list_names(body, h->body_len, &req, &prefix);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed list");
	uint32_t limit = req.limit == 0 || req.limit > PROTO_LIST_MAX
	                         ? PROTO_LIST_MAX
	                         : req.limit;
	uint64_t scan_end = req.cursor + PROTO_LIST_SCAN;
	for (end = req.cursor;
	     end < n->nslots && end < scan_end && head.count < limit; end++) {
		const struct name_entry *ne = &n->slots[end];
		if (store_name_live(ne, now) &&
		    has_prefix(ne, prefix, req.prefix_len)) {
			len += proto_name_entry_size(ne->len);
			head.count++;
		}
	}
	head.next_cursor = end < n->nslots ? end : 0;
	uint8_t *p = conn_reply(c, h->type, h->request_id, len);
	if (!p)
		return CMD_DONE;
	memcpy(p, &head, sizeof(head));
	p += sizeof(head);
	for (s = req.cursor; s < end; s++) {
		const struct name_entry *ne = &n->slots[s];
		if (!store_name_live(ne, now) ||
		    !has_prefix(ne, prefix, req.prefix_len))
			continue;
		struct proto_name_entry e;
		fill_entry(st, ne, &e);
		memcpy(p, &e, sizeof(e));
		memcpy(p + sizeof(e), ne->name, ne->len);
		p += proto_name_entry_size(ne->len); /* padding stays zero */
	}
	return CMD_DONE;
}

enum cmd_result cmd_names_expire(struct conn *c, const struct proto_header *h,
                                 const uint8_t *body, bool final)
{
	struct proto_expire req;
	const char *name;
	int rc = proto_decode_expire(body, h->body_len, &req, &name);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed name or request");
	rc = store_expire_name(&c->srv->store, name, req.name_len, req.ttl_ms);
	if (rc == SHOAL_ETOOBIG)
		REPLY_ERR(c, h, rc, "a time to live over %llu ms",
		          (unsigned long long)SHOAL_TTL_MAX_MS);
	if (rc)
		REPLY_ERR(c, h, rc, "%s", shoal_strerror(rc));
	(void)conn_reply(c, h->type, h->request_id, sizeof(struct proto_reply));
	return CMD_DONE;
}

enum cmd_result cmd_names_persist(struct conn *c, const struct proto_header *h,
                                  const uint8_t *body, bool final)
{
	struct proto_name_req req;
	const char *name;
	int rc = proto_decode_name_req(body, h->body_len, &req, &name);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed name or request");
	rc = store_persist_name(&c->srv->store, name, req.name_len);
	if (rc)
		REPLY_ERR(c, h, rc, "%s", shoal_strerror(rc));
	(void)conn_reply(c, h->type, h->request_id, sizeof(struct proto_reply));
	return CMD_DONE;
}

enum cmd_result cmd_names_info(struct conn *c, const struct proto_header *h,
                               const uint8_t *body, bool final)
{
	struct store *st = &c->srv->store;
	struct proto_name_req req;
	struct proto_name_info_reply rep = {0};
	const char *name;
	int rc = proto_decode_name_req(body, h->body_len, &req, &name);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed name or request");
	uint32_t ns = store_find_name(st, name, req.name_len);
	if (ns == NAME_NIL)
		REPLY_ERR(c, h, SHOAL_ENOTFOUND, "%s",
		          shoal_strerror(SHOAL_ENOTFOUND));
	fill_entry(st, names_get(&st->names, ns), &rep.e);
	void *p = conn_reply(c, h->type, h->request_id, sizeof(rep));
	if (p)
		memcpy(p, &rep, sizeof(rep));
	return CMD_DONE;
}

enum cmd_result cmd_names_delete_prefix(struct conn *c,
                                        const struct proto_header *h,
                                        const uint8_t *body, bool final)
{
	struct proto_name_req req;
	struct proto_count_reply rep = {0};
	const char *prefix;
	int rc = proto_decode_prefix_req(body, h->body_len, &req, &prefix);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed prefix or request");
	store_delete_prefix(&c->srv->store, prefix, req.name_len, &rep.count);
	void *p = conn_reply(c, h->type, h->request_id, sizeof(rep));
	if (p)
		memcpy(p, &rep, sizeof(rep));
	return CMD_DONE;
}
