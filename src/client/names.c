/*
 * names.c - the name calls of the client library: set, get, delete and
 * list names; expiry, a name's metadata and namespaces (prefixes).
 *
 * Names are checked here with the same rule the daemon applies
 * (proto_check_name: 1..SHOAL_NAME_MAX bytes of UTF-8 without NUL), so a
 * bad name fails without a round trip. A name travels as name_len bytes
 * after its request's fixed struct; list replies carry each name padded to
 * 8 bytes, and every entry is bounds-checked before it is copied out.
 * Listed names are copied into the caller's names buffer (shoal_name_info
 * points into it): a page ends early when that buffer is full, and the
 * listing resumes after the last name given, as after any page.
 * A get by name also tells supersede.c which object the name gave, so the
 * pages of the one it replaced can leave this process's mapping.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "client_internal.h"

/* Checks a name argument as the daemon will (proto_check_name); a prefix
 * may also be empty. Returns 0, SHOAL_EINVAL or SHOAL_ETOOBIG. */
static int check_name(const char *name, size_t len, bool prefix)
{
	if (!name)
		return SHOAL_EINVAL;
	return prefix && len == 0 ? 0 : proto_check_name(name, len);
}

/*
 * Sends a request of type: the fixed part req, then the name (checked
 * first, as a prefix when prefix is set). Copies the reply (exactly
 * fixed_len bytes, or a bare status when 0) to out. Returns 0, the check's
 * error or the call's.
 */
static int name_call(shoal_client *c, uint16_t type, const void *req,
                     size_t req_len, const char *name, size_t name_len,
                     bool prefix, void *out, size_t fixed_len)
{
	struct iovec iov[2] = {{(void *)req, req_len},
	                       {(void *)name, name_len}};
	const uint8_t *body;
	size_t len;
	int rc = check_name(name, name_len, prefix);

	if (rc == 0)
		rc = client_begin(c);
	if (rc < 0)
		return rc;
	rc = client_call(c, type, iov, 2,
	                 fixed_len ? fixed_len : sizeof(struct proto_reply),
	                 &body, &len);
	if (rc == 0 && out)
		memcpy(out, body, fixed_len);
	client_end(c);
	return rc;
}

SHOAL_API int shoal_set_name(shoal_client *c, const char *name, size_t name_len,
                             const shoal_id *id,
                             const uint64_t *expected_version,
                             uint64_t *version)
{
	return shoal_set_name_ttl(c, name, name_len, id, expected_version, 0, 0,
	                          version);
}

SHOAL_API int shoal_set_name_ttl(shoal_client *c, const char *name,
                                 size_t name_len, const shoal_id *id,
                                 const uint64_t *expected_version,
                                 uint64_t ttl_ms, unsigned flags,
                                 uint64_t *version)
{
	struct proto_set_name req = {.name_len = (uint32_t)name_len,
	                             .ttl_ms = ttl_ms};
	struct proto_version_reply rep;
	struct iovec iov[2];
	const uint8_t *body;
	size_t len;
	int rc;

	if (!id || (flags & ~SHOAL_NAME_EVICTABLE))
		return SHOAL_EINVAL;
	rc = check_name(name, name_len, false);
	if (rc < 0)
		return rc;
	if (ttl_ms > SHOAL_TTL_MAX_MS)
		return SHOAL_ETOOBIG;
	memcpy(req.id, id->bytes, SHOAL_ID_SIZE);
	if (expected_version) {
		req.flags = PROTO_NAME_CAS;
		req.expected_version = *expected_version;
	}
	if (flags & SHOAL_NAME_EVICTABLE)
		req.flags |= PROTO_NAME_EVICTABLE;
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){(void *)name, name_len};
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	uint32_t epoch = c->epoch;
	/* Not repeated when the reply is lost, even as a compare-and-set: a
	 * set that was applied would be reported as SHOAL_EVERSION, and a
	 * caller's read-modify-write loop would then apply its change twice. */
	rc = client_call(c, PROTO_SET_NAME, iov, 2, sizeof(rep), &body, &len);
	/* Sent again to a new daemon, which never had an unnamed object of
	 * the old one: the object was lost in the restart. */
	if (rc == SHOAL_ENOTFOUND && c->epoch != epoch)
		rc = SHOAL_EUNAVAILABLE;
	if (rc == 0 && version) {
		memcpy(&rep, body, sizeof(rep));
		*version = rep.version;
	}
	client_end(c);
	return rc;
}

SHOAL_API int shoal_get_name(shoal_client *c, const char *name, size_t name_len,
                             int64_t timeout_ms, shoal_view *view,
                             uint64_t *version)
{
	struct proto_get_name req = {.timeout_ms = timeout_ms,
	                             .name_len = (uint32_t)name_len};
	struct proto_get_name_reply rep;
	struct iovec iov[2];
	const uint8_t *body;
	size_t len;
	int rc;

	if (!view || timeout_ms < SHOAL_WAIT_FOREVER)
		return SHOAL_EINVAL;
	memset(view, 0, sizeof(*view));
	view->status = SHOAL_ENOTFOUND;
	rc = check_name(name, name_len, false);
	if (rc < 0)
		return rc;
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){(void *)name, name_len};
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&c->ref_lock);
	rc = client_reserve_views(c, 1);
	pthread_mutex_unlock(&c->ref_lock);
	if (rc < 0)
		goto out;
	rc = client_call_wait(c, PROTO_GET_NAME, iov, 2, sizeof(rep),
	                      timeout_ms, true, &body, &len);
	if (rc == SHOAL_ENOTFOUND && c->interrupted)
		rc = SHOAL_EINTR;
	if (rc < 0)
		goto out;
	memcpy(&rep, body, sizeof(rep));
	rc = client_check_object(c, &rep.object);
	if (rc < 0)
		goto out;
	client_fill_view(c, &rep.object, rep.id, view);
	pthread_mutex_lock(&c->ref_lock);
	client_hold(c, rep.object.handle, &view->id,
	            rep.object.data_size + rep.object.metadata_size);
	pthread_mutex_unlock(&c->ref_lock);
	client_named_seen(c, name, name_len, rep.object.handle,
	                  rep.object.offset,
	                  rep.object.data_size + rep.object.metadata_size);
	if (version)
		*version = rep.version;
out:
	client_end(c);
	return rc;
}

SHOAL_API int shoal_delete_name(shoal_client *c, const char *name,
                                size_t name_len,
                                const uint64_t *expected_version)
{
	struct proto_delete_name req = {.name_len = (uint32_t)name_len};

	if (expected_version) {
		req.flags = PROTO_NAME_CAS;
		req.expected_version = *expected_version;
	}
	return name_call(c, PROTO_DELETE_NAME, &req, sizeof(req), name,
	                 name_len, false, NULL, 0);
}

/* Fills the fields of out from a name entry (not the name). */
static void fill_info(const struct proto_name_entry *e, shoal_name_info *out)
{
	memcpy(out->id.bytes, e->id, SHOAL_ID_SIZE);
	out->version = e->version;
	out->data_size = e->data_size;
	out->metadata_size = e->metadata_size;
	out->flags =
	        e->flags & PROTO_ENTRY_EVICTABLE ? SHOAL_NAME_EVICTABLE : 0;
	out->ttl_ms = e->ttl_ms < 0 ? -1 : e->ttl_ms;
}

/* The caller's buffer for the names of a page. */
struct name_buf {
	char *p;
	size_t size, used;
};

/*
 * Decodes the count name entries of a LIST_NAMES reply (the bytes after
 * its fixed part: len of them) into out, their names into nb, as many as
 * nb holds. Returns 0 with *taken entries decoded, or SHOAL_EPROTO.
 */
static int decode_names(const uint8_t *p, size_t len, uint32_t count,
                        shoal_name_info *out, struct name_buf *nb,
                        uint32_t *taken)
{
	struct proto_name_entry e;
	size_t pos = 0;
	uint32_t i;

	for (i = 0; i < count; i++) {
		size_t size;

		if (len - pos < sizeof(e))
			return SHOAL_EPROTO;
		memcpy(&e, p + pos, sizeof(e));
		if (e.name_len == 0 || e.name_len > SHOAL_NAME_MAX)
			return SHOAL_EPROTO;
		size = proto_name_entry_size(e.name_len);
		if (len - pos < size)
			return SHOAL_EPROTO;
		if (nb->size - nb->used < (size_t)e.name_len + 1)
			break; /* the rest comes on the next page */
		char *name = nb->p + nb->used;
		memcpy(name, p + pos + sizeof(e), e.name_len);
		name[e.name_len] = '\0';
		nb->used += (size_t)e.name_len + 1;
		out[i].name = name;
		out[i].name_len = e.name_len;
		fill_info(&e, &out[i]);
		pos += size;
	}
	*taken = i;
	return i < count || pos == len ? 0 : SHOAL_EPROTO;
}

SHOAL_API int shoal_list_names(shoal_client *c, uint64_t *cursor,
                               shoal_name_info *out, size_t max, char *names,
                               size_t names_size, size_t *count)
{
	return shoal_list_names_prefix(c, "", 0, cursor, out, max, names,
	                               names_size, count);
}

/* Checks the arguments common to the listings and clears their results.
 * Returns 0 or SHOAL_EINVAL. */
static int check_page_args(const shoal_name_info *out, size_t max,
                           const char *names, size_t names_size, size_t *count)
{
	if (!out || !count || max == 0 || !names ||
	    names_size < SHOAL_NAME_MAX + 1)
		return SHOAL_EINVAL;
	*count = 0;
	return 0;
}

/*
 * One LIST_NAMES page after `after` (alen bytes; 0: from the first), with
 * io_lock held. Returns 0 with *count names in out (their bytes in names)
 * and *more, or an error.
 */
static int list_page(shoal_client *c, const char *prefix, size_t plen,
                     const char *after, size_t alen, shoal_name_info *out,
                     size_t max, char *names, size_t names_size, size_t *count,
                     int *more)
{
	struct proto_list_names req = {0};
	struct proto_list_reply rep;
	struct name_buf nb = {names, names_size, 0};
	struct iovec iov[3];
	const uint8_t *body;
	uint32_t taken = 0;
	size_t len;
	int rc;

	req.limit = max < PROTO_LIST_MAX ? (uint32_t)max : PROTO_LIST_MAX;
	req.prefix_len = (uint32_t)plen;
	req.after_len = (uint32_t)alen;
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){(void *)prefix, plen};
	iov[2] = (struct iovec){(void *)after, alen};
	rc = client_call(c, PROTO_LIST_NAMES, iov, 3, 0, &body, &len);
	if (rc == 0 && len < sizeof(rep))
		rc = SHOAL_EPROTO;
	if (rc == 0) {
		memcpy(&rep, body, sizeof(rep));
		if (rep.count > req.limit)
			rc = SHOAL_EPROTO;
	}
	if (rc == 0)
		rc = decode_names(body + sizeof(rep), len - sizeof(rep),
		                  rep.count, out, &nb, &taken);
	if (rc == 0 && rep.next_cursor && rep.count == 0)
		rc = SHOAL_EPROTO; /* "more", but nothing to resume after */
	if (rc == 0) {
		*count = taken;
		*more = rep.next_cursor != 0 || taken < rep.count;
	}
	return rc;
}

SHOAL_API int shoal_list_names_after(shoal_client *c, const char *prefix,
                                     size_t prefix_len, const char *after,
                                     size_t after_len, shoal_name_info *out,
                                     size_t max, char *names, size_t names_size,
                                     size_t *count, int *more)
{
	int rc;

	if (!more || (!after && after_len) ||
	    check_page_args(out, max, names, names_size, count) < 0)
		return SHOAL_EINVAL;
	*more = 0;
	rc = check_name(prefix, prefix_len, true);
	if (rc == 0 && after_len)
		rc = proto_check_name(after, after_len);
	if (rc < 0)
		return rc;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	rc = list_page(c, prefix, prefix_len, after ? after : "", after_len,
	               out, max, names, names_size, count, more);
	client_end(c);
	return rc;
}

SHOAL_API int shoal_list_names_prefix(shoal_client *c, const char *prefix,
                                      size_t prefix_len, uint64_t *cursor,
                                      shoal_name_info *out, size_t max,
                                      char *names, size_t names_size,
                                      size_t *count)
{
	struct client_listing *pos = NULL;
	int rc, more = 0;

	if (!cursor || check_page_args(out, max, names, names_size, count) < 0)
		return SHOAL_EINVAL;
	rc = check_name(prefix, prefix_len, true);
	if (rc < 0)
		return rc;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	/* A continued listing resumes after the last name it was given. */
	if (*cursor != 0) {
		pos = &c->listings[*cursor % CLIENT_LISTINGS];
		if (pos->cursor != *cursor) {
			client_end(c);
			return SHOAL_EINVAL;
		}
	}
	rc = list_page(c, prefix, prefix_len, pos ? pos->after : "",
	               pos ? pos->after_len : 0, out, max, names, names_size,
	               count, &more);
	if (rc == 0) {
		if (pos)
			pos->cursor = 0; /* used up */
		*cursor = 0;
		if (more) {
			const shoal_name_info *last = &out[*count - 1];
			if (++c->list_seq == 0)
				c->list_seq = 1;
			pos = &c->listings[c->list_seq % CLIENT_LISTINGS];
			pos->after_len = (uint32_t)last->name_len;
			memcpy(pos->after, last->name, pos->after_len);
			*cursor = pos->cursor = c->list_seq;
		}
	}
	client_end(c);
	return rc;
}

SHOAL_API int shoal_expire(shoal_client *c, const char *name, size_t name_len,
                           uint64_t ttl_ms)
{
	struct proto_expire req = {.ttl_ms = ttl_ms,
	                           .name_len = (uint32_t)name_len};

	if (ttl_ms > SHOAL_TTL_MAX_MS)
		return SHOAL_ETOOBIG;
	return name_call(c, PROTO_EXPIRE, &req, sizeof(req), name, name_len,
	                 false, NULL, 0);
}

SHOAL_API int shoal_persist(shoal_client *c, const char *name, size_t name_len)
{
	struct proto_name_req req = {.name_len = (uint32_t)name_len};

	return name_call(c, PROTO_PERSIST, &req, sizeof(req), name, name_len,
	                 false, NULL, 0);
}

SHOAL_API int shoal_name_stat(shoal_client *c, const char *name,
                              size_t name_len, shoal_name_info *out)
{
	struct proto_name_req req = {.name_len = (uint32_t)name_len};
	struct proto_name_info_reply rep;
	int rc;

	if (!out)
		return SHOAL_EINVAL;
	rc = name_call(c, PROTO_NAME_INFO, &req, sizeof(req), name, name_len,
	               false, &rep, sizeof(rep));
	if (rc < 0)
		return rc;
	memset(out, 0, sizeof(*out));
	out->name = name;
	out->name_len = name_len;
	fill_info(&rep.e, out);
	return 0;
}

SHOAL_API int shoal_ttl(shoal_client *c, const char *name, size_t name_len,
                        int64_t *ttl_ms)
{
	shoal_name_info info;
	int rc;

	if (!ttl_ms)
		return SHOAL_EINVAL;
	rc = shoal_name_stat(c, name, name_len, &info);
	if (rc == 0)
		*ttl_ms = info.ttl_ms;
	return rc;
}

SHOAL_API int shoal_delete_prefix(shoal_client *c, const char *prefix,
                                  size_t prefix_len, uint64_t *count)
{
	struct proto_name_req req = {.name_len = (uint32_t)prefix_len};
	struct proto_count_reply rep;
	int rc = name_call(c, PROTO_DELETE_PREFIX, &req, sizeof(req), prefix,
	                   prefix_len, true, &rep, sizeof(rep));

	if (rc == 0 && count)
		*count = rep.count;
	return rc;
}

SHOAL_API int shoal_daemon_pid(shoal_client *c, int64_t *pid)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int rc;

	if (!pid)
		return SHOAL_EINVAL;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		rc = -errno;
	else if (cred.pid <= 0)
		rc = SHOAL_EUNAVAILABLE;
	else
		*pid = cred.pid;
	client_end(c);
	return rc;
}
