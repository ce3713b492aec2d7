/*
 * cmd_names.c - the name requests of the cache layer: listing names (with
 * an optional prefix), expiry (EXPIRE, PERSIST), a name's metadata
 * (NAME_INFO) and deletion by prefix. Same rules as commands.c: every body
 * is decoded by protocol.c, handlers never block, a malformed body gets an
 * error reply and the connection goes on.
 *
 * Listing and deleting by prefix walk the name-order index (names.h) from
 * the prefix on: they visit only the names they return or delete, O(log n)
 * each. A listing page resumes after the last name of the previous page,
 * so a name that exists for the whole listing is listed exactly once. A
 * delete is done in one step so that no reader sees half a namespace.
 */
#include <stdlib.h>
#include <string.h>

#include "os.h"
#include "server.h"

#define REPLY_ERR(c, h, rc, ...)                                        \
	do {                                                            \
		conn_reply_error((c), (h)->type, (h)->request_id, (rc), \
		                 __VA_ARGS__);                          \
		return CMD_DONE;                                        \
	} while (0)

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
 * Lists one page in name order. The slots are found first (which may
 * remove expired names), so that the reply is reserved at its exact size:
 * reserving the largest possible page would cost up to 4 MiB however few
 * names there are.
 */
enum cmd_result cmd_names_list(struct conn *c, const struct proto_header *h,
                               const uint8_t *body, bool final)
{
	struct store *st = &c->srv->store;
	struct proto_list_names req;
	struct proto_list_reply head = {0};
	const char *prefix, *after;
	uint32_t *slots;
	bool more;
	int rc = proto_decode_list_names(body, h->body_len, &req, &prefix,
	                                 &after);

	(void) final;
	if (rc)
		REPLY_ERR(c, h, rc, "malformed list");
	uint32_t limit = req.limit == 0 || req.limit > PROTO_LIST_MAX
	                         ? PROTO_LIST_MAX
	                         : req.limit;
	slots = os_malloc(limit * sizeof(*slots));
	if (!slots)
		REPLY_ERR(c, h, SHOAL_ENOMEM, "out of memory");
	store_list_names(st, prefix, req.prefix_len, after, req.after_len,
	                 limit, slots, &head.count, &more);
	head.next_cursor = more ? 1 : 0;
	size_t len = sizeof(head);
	for (uint32_t i = 0; i < head.count; i++)
		len += proto_name_entry_size(
		        names_get(&st->names, slots[i])->len);
	uint8_t *p = conn_reply(c, h->type, h->request_id, len);
	if (p) {
		memcpy(p, &head, sizeof(head));
		p += sizeof(head);
		for (uint32_t i = 0; i < head.count; i++) {
			const struct name_entry *ne =
			        names_get(&st->names, slots[i]);
			struct proto_name_entry e;
			fill_entry(st, ne, &e);
			memcpy(p, &e, sizeof(e));
			memcpy(p + sizeof(e), ne->name, ne->len);
			p += proto_name_entry_size(ne->len); /* pad stays 0 */
		}
	}
	free(slots);
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
