/*
 * protocol.c - header checks and request decoders for the wire protocol.
 *
 * These are the only functions that interpret bytes received from a socket.
 * Each decoder checks the body length against the fixed struct and the
 * variable part the struct announces before anything is read, and copies the
 * fixed part out so that callers never read unaligned or out-of-bounds
 * memory. Invariant: a decoder returning 0 has proven that every byte the
 * caller will read lies inside the body.
 */
#include "protocol.h"

#include <string.h>

int proto_check_header(const struct proto_header *h, uint32_t max_body)
{
	if (h->magic != PROTO_MAGIC || h->version != PROTO_VERSION)
		return SHOAL_EPROTO;
	if (h->body_len > max_body)
		return SHOAL_ETOOBIG;
	return 0;
}

void proto_header_init(struct proto_header *h, uint16_t type,
                       uint32_t request_id, uint32_t body_len)
{
	h->magic = PROTO_MAGIC;
	h->version = PROTO_VERSION;
	h->type = type;
	h->request_id = request_id;
	h->body_len = body_len;
}

int proto_decode_fixed(const void *body, size_t len, void *out,
                       size_t fixed_size)
{
	if (len != fixed_size)
		return SHOAL_EPROTO;
	memcpy(out, body, fixed_size);
	return 0;
}

/* Decodes a fixed struct followed by count items of item_size bytes. */
static int decode_array(const void *body, size_t len, void *out,
                        size_t fixed_size, uint32_t count, size_t item_size,
                        const uint8_t **tail)
{
	if (count > SHOAL_BATCH_MAX)
		return SHOAL_ETOOBIG;
	if (len != fixed_size + (size_t)count * item_size)
		return SHOAL_EPROTO;
	(void)out;
	*tail = (const uint8_t *)body + fixed_size;
	return 0;
}

int proto_decode_get(const void *body, size_t len, struct proto_get *out,
                     const uint8_t **ids)
{
	if (len < sizeof(*out))
		return SHOAL_EPROTO;
	memcpy(out, body, sizeof(*out));
	return decode_array(body, len, out, sizeof(*out), out->count,
	                    SHOAL_ID_SIZE, ids);
}

int proto_decode_release(const void *body, size_t len,
                         struct proto_release *out, const uint8_t **handles)
{
	if (len < sizeof(*out))
		return SHOAL_EPROTO;
	memcpy(out, body, sizeof(*out));
	return decode_array(body, len, out, sizeof(*out), out->count,
	                    sizeof(uint64_t), handles);
}

int proto_decode_delete(const void *body, size_t len, struct proto_delete *out,
                        const uint8_t **ids)
{
	if (len < sizeof(*out))
		return SHOAL_EPROTO;
	memcpy(out, body, sizeof(*out));
	return decode_array(body, len, out, sizeof(*out), out->count,
	                    SHOAL_ID_SIZE, ids);
}

/* Decodes a fixed struct followed by a name of name_len bytes. */
static int decode_named(const void *body, size_t len, size_t fixed_size,
                        uint32_t name_len, const char **name)
{
	if (name_len > SHOAL_NAME_MAX)
		return SHOAL_ETOOBIG;
	if (len != fixed_size + name_len)
		return SHOAL_EPROTO;
	*name = (const char *)body + fixed_size;
	return proto_check_name(*name, name_len);
}

/* Each request that is a fixed struct with a name_len field, then the
 * name: checks the length, copies the struct, points *name at the name. */
#define DECODE_NAMED(fn, type)                                              \
	int fn(const void *body, size_t len, type *out, const char **name)  \
	{                                                                   \
		if (len < sizeof(*out))                                     \
			return SHOAL_EPROTO;                                \
		memcpy(out, body, sizeof(*out));                            \
		return decode_named(body, len, sizeof(*out), out->name_len, \
		                    name);                                  \
	}

DECODE_NAMED(proto_decode_set_name, struct proto_set_name)
DECODE_NAMED(proto_decode_get_name, struct proto_get_name)
DECODE_NAMED(proto_decode_delete_name, struct proto_delete_name)
DECODE_NAMED(proto_decode_expire, struct proto_expire)
DECODE_NAMED(proto_decode_name_req, struct proto_name_req)

#undef DECODE_NAMED

/* Decodes a fixed struct followed by a prefix of prefix_len bytes, which
 * may be empty. */
static int decode_prefix(const void *body, size_t len, size_t fixed_size,
                         uint32_t prefix_len, const char **prefix)
{
	if (prefix_len == 0) {
		*prefix = (const char *)body + fixed_size;
		return len == fixed_size ? 0 : SHOAL_EPROTO;
	}
	return decode_named(body, len, fixed_size, prefix_len, prefix);
}

int proto_decode_prefix_req(const void *body, size_t len,
                            struct proto_name_req *out, const char **prefix)
{
	if (len < sizeof(*out))
		return SHOAL_EPROTO;
	memcpy(out, body, sizeof(*out));
	return decode_prefix(body, len, sizeof(*out), out->name_len, prefix);
}

int proto_decode_list_names(const void *body, size_t len,
                            struct proto_list_names *out, const char **prefix,
                            const char **after)
{
	int rc;

	if (len < sizeof(*out))
		return SHOAL_EPROTO;
	memcpy(out, body, sizeof(*out));
	if (out->prefix_len > SHOAL_NAME_MAX || out->after_len > SHOAL_NAME_MAX)
		return SHOAL_ETOOBIG;
	if (len != sizeof(*out) + (size_t)out->prefix_len + out->after_len)
		return SHOAL_EPROTO;
	rc = decode_prefix(body, sizeof(*out) + out->prefix_len, sizeof(*out),
	                   out->prefix_len, prefix);
	if (rc == 0)
		rc = decode_prefix((const char *)body + out->prefix_len,
		                   len - out->prefix_len, sizeof(*out),
		                   out->after_len, after);
	return rc;
}

/*
 * UTF-8 validation after RFC 3629: no overlong forms, no surrogates, nothing
 * above U+10FFFF. NUL is refused too, so that names print as C strings.
 */
int proto_check_name(const char *name, size_t len)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t i = 0;

	if (len == 0)
		return SHOAL_EINVAL;
	if (len > SHOAL_NAME_MAX)
		return SHOAL_ETOOBIG;
	while (i < len) {
		unsigned c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return SHOAL_EINVAL;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return SHOAL_EINVAL;
		}
		if (len - i - 1 < n)
			return SHOAL_EINVAL;
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return SHOAL_EINVAL;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((n == 2 &&
		     (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return SHOAL_EINVAL;
		i += n + 1;
	}
	return 0;
}
