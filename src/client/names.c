/*
 * names.c - the name calls of the client library: set, get, delete and
 * list names.
 *
 * Names are checked here with the same rule the daemon applies
 * (proto_check_name: 1..SHOAL_NAME_MAX bytes of UTF-8 without NUL), so a
 * bad name fails without a round trip. A name travels as name_len bytes
 * after its request's fixed struct; list replies carry each name padded to
 * 8 bytes, and every entry is bounds-checked before it is copied out.
 */
#include <string.h>

#include "client_internal.h"

SHOAL_API int shoal_set_name(shoal_client *c, const char *name, size_t name_len,
                             const shoal_id *id,
                             const uint64_t *expected_version,
                             uint64_t *version)
{
	struct proto_set_name req = {.name_len = (uint32_t)name_len};
	struct proto_version_reply rep;
	struct iovec iov[2];
	const uint8_t *body;
	size_t len;
	int rc;

	if (!name || !id)
		return SHOAL_EINVAL;
	rc = proto_check_name(name, name_len);
	if (rc < 0)
		return rc;
	memcpy(req.id, id->bytes, SHOAL_ID_SIZE);
	if (expected_version) {
		req.flags = PROTO_NAME_CAS;
		req.expected_version = *expected_version;
	}
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){(void *)name, name_len};
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	rc = client_call(c, PROTO_SET_NAME, iov, 2, sizeof(rep), &body, &len);
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

	if (!name || !view || timeout_ms < SHOAL_WAIT_FOREVER)
		return SHOAL_EINVAL;
	memset(view, 0, sizeof(*view));
	view->status = SHOAL_ENOTFOUND;
	rc = proto_check_name(name, name_len);
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
	                      timeout_ms, &body, &len);
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
	struct iovec iov[2];
	const uint8_t *body;
	size_t len;
	int rc;

	if (!name)
		return SHOAL_EINVAL;
	rc = proto_check_name(name, name_len);
	if (rc < 0)
		return rc;
	if (expected_version) {
		req.flags = PROTO_NAME_CAS;
		req.expected_version = *expected_version;
	}
	iov[0] = (struct iovec){&req, sizeof(req)};
	iov[1] = (struct iovec){(void *)name, name_len};
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	rc = client_call(c, PROTO_DELETE_NAME, iov, 2,
	                 sizeof(struct proto_reply), &body, &len);
	client_end(c);
	return rc;
}

/*
 * Decodes the count name entries of a LIST_NAMES reply (the bytes after
 * its fixed part: len of them) into out. Returns 0 or SHOAL_EPROTO.
 */
static int decode_names(const uint8_t *p, size_t len, uint32_t count,
                        shoal_name_info *out)
{
	struct proto_name_entry e;
	size_t pos = 0;

	for (uint32_t i = 0; i < count; i++) {
		size_t size;

		if (len - pos < sizeof(e))
			return SHOAL_EPROTO;
		memcpy(&e, p + pos, sizeof(e));
		if (e.name_len == 0 || e.name_len > SHOAL_NAME_MAX)
			return SHOAL_EPROTO;
		size = proto_name_entry_size(e.name_len);
		if (len - pos < size)
			return SHOAL_EPROTO;
		memcpy(out[i].name, p + pos + sizeof(e), e.name_len);
		out[i].name[e.name_len] = '\0';
		memcpy(out[i].id.bytes, e.id, SHOAL_ID_SIZE);
		out[i].version = e.version;
		out[i].data_size = e.data_size;
		out[i].metadata_size = e.metadata_size;
		pos += size;
	}
	return pos == len ? 0 : SHOAL_EPROTO;
}

SHOAL_API int shoal_list_names(shoal_client *c, uint64_t *cursor,
                               shoal_name_info *out, size_t max, size_t *count)
{
	struct proto_list_reply rep;
	const uint8_t *entries;
	size_t len;
	int rc;

	if (!cursor || !out || !count || max == 0)
		return SHOAL_EINVAL;
	*count = 0;
	rc = client_begin(c);
	if (rc < 0)
		return rc;
	rc = client_list_page(c, PROTO_LIST_NAMES, *cursor, max, &rep, &entries,
	                      &len);
	if (rc == 0)
		rc = decode_names(entries, len, rep.count, out);
	if (rc == 0) {
		*count = rep.count;
		*cursor = rep.next_cursor;
	}
	client_end(c);
	return rc;
}
