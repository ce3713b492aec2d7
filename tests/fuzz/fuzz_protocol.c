/*
 * fuzz_protocol.c - libFuzzer harness for the wire protocol's decoders
 * (src/common/protocol.c), the only code that interprets bytes from a
 * socket.
 *
 * The first input byte picks the function, the rest is the message (copied
 * into a buffer of exactly its size, so that ASan sees any read past it):
 *
 *   0  proto_check_header     1  proto_decode_fixed (next byte: struct)
 *   2  proto_decode_get       3  proto_decode_release
 *   4  proto_decode_delete    5  proto_decode_set_name
 *   6  proto_decode_get_name  7  proto_decode_delete_name
 *   8  proto_check_name       9  proto_decode_expire
 *  10  proto_decode_name_req 11  proto_decode_prefix_req
 *  12  proto_decode_list_names
 *
 * Oracles: a decoder that returns 0 must have proven what it promises (the
 * body is exactly the fixed struct plus the announced variable part, within
 * the limits; a name is valid), and every byte it points at is read; a
 * decoder that fails must say SHOAL_EPROTO or SHOAL_ETOOBIG (or, for names,
 * SHOAL_EINVAL). proto_check_name is compared with an independent
 * validator written from the table of well-formed UTF-8 sequences in
 * RFC 3629 (section 4).
 *
 * tests/unit/test_fuzz_replay.c includes this file to replay the corpus with
 * gcc; it renames LLVMFuzzerTestOneInput and defines FUZZ_FAIL, so every
 * helper here is static and prefixed pz_.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#ifndef FUZZ_FAIL
#define FUZZ_FAIL(...)                        \
	do {                                  \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr);          \
		abort();                      \
	} while (0)
#endif

/* Reads every byte of [p, p + n) so that ASan checks the range. */
static void pz_touch(const uint8_t *p, size_t n)
{
	volatile uint8_t sum = 0;

	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	(void)sum;
}

/* RFC 3629 table: the byte ranges of each well-formed sequence. */
static int pz_ref_name(const uint8_t *s, size_t len)
{
	static const struct {
		uint8_t lo[4], hi[4];
		int n;
	} forms[] = {
	        {{0x01}, {0x7f}, 1},
	        {{0xc2, 0x80}, {0xdf, 0xbf}, 2},
	        {{0xe0, 0xa0, 0x80}, {0xe0, 0xbf, 0xbf}, 3},
	        {{0xe1, 0x80, 0x80}, {0xec, 0xbf, 0xbf}, 3},
	        {{0xed, 0x80, 0x80}, {0xed, 0x9f, 0xbf}, 3},
	        {{0xee, 0x80, 0x80}, {0xef, 0xbf, 0xbf}, 3},
	        {{0xf0, 0x90, 0x80, 0x80}, {0xf0, 0xbf, 0xbf, 0xbf}, 4},
	        {{0xf1, 0x80, 0x80, 0x80}, {0xf3, 0xbf, 0xbf, 0xbf}, 4},
	        {{0xf4, 0x80, 0x80, 0x80}, {0xf4, 0x8f, 0xbf, 0xbf}, 4},
	};

	if (len == 0)
		return SHOAL_EINVAL;
	if (len > SHOAL_NAME_MAX)
		return SHOAL_ETOOBIG;
	for (size_t i = 0; i < len;) {
		int n = 0;
		for (size_t f = 0; f < sizeof(forms) / sizeof(forms[0]) && !n;
		     f++) {
			int k = forms[f].n;
			if (len - i < (size_t)k)
				continue;
			int ok = 1;
			for (int j = 0; j < k && ok; j++)
				ok = s[i + j] >= forms[f].lo[j] &&
				     s[i + j] <= forms[f].hi[j];
			if (ok)
				n = k;
		}
		if (!n)
			return SHOAL_EINVAL;
		i += (size_t)n;
	}
	return 0;
}

static void pz_name(const uint8_t *p, size_t n)
{
	int rc = proto_check_name((const char *)p, n);
	int ref = pz_ref_name(p, n);

	if (rc != ref)
		FUZZ_FAIL("proto_check_name says %d, RFC 3629 says %d", rc,
		          ref);
}

static void pz_header(const uint8_t *p, size_t n)
{
	struct proto_header h;

	if (n < sizeof(h))
		return;
	memcpy(&h, p, sizeof(h));
	int rc = proto_check_header(&h, PROTO_MAX_REQUEST);
	int ok = h.magic == PROTO_MAGIC && h.version == PROTO_VERSION;
	int want = !ok                              ? SHOAL_EPROTO
	           : h.body_len > PROTO_MAX_REQUEST ? SHOAL_ETOOBIG
	                                            : 0;
	if (rc != want)
		FUZZ_FAIL("proto_check_header says %d, expected %d", rc, want);
}

static void pz_fixed(const uint8_t *p, size_t n)
{
	static const size_t sizes[] = {
	        sizeof(struct proto_hello),  sizeof(struct proto_create),
	        sizeof(struct proto_id_req), sizeof(struct proto_list),
	        sizeof(struct proto_evict),  sizeof(struct proto_subscribe),
	};
	uint8_t out[64];

	if (n == 0)
		return;
	size_t fixed = sizes[p[0] % (sizeof(sizes) / sizeof(sizes[0]))];
	int rc = proto_decode_fixed(p + 1, n - 1, out, fixed);
	if ((rc == 0) != (n - 1 == fixed) || (rc && rc != SHOAL_EPROTO))
		FUZZ_FAIL("proto_decode_fixed(%zu of %zu) says %d", n - 1,
		          fixed, rc);
	if (rc == 0 && memcmp(out, p + 1, fixed) != 0)
		FUZZ_FAIL("proto_decode_fixed copied the wrong bytes");
}

/* Checks a decoded array: count items of size bytes after fixed bytes. */
static void pz_array(int rc, const uint8_t *body, size_t n, size_t fixed,
                     uint32_t count, size_t size, const uint8_t *tail)
{
	if (rc == 0) {
		if (count > SHOAL_BATCH_MAX ||
		    n != fixed + (size_t)count * size || tail != body + fixed)
			FUZZ_FAIL("array decoder accepted %u items in %zu "
			          "bytes",
			          count, n);
		pz_touch(tail, (size_t)count * size);
	} else if (rc != SHOAL_EPROTO && rc != SHOAL_ETOOBIG) {
		FUZZ_FAIL("array decoder returned %d", rc);
	} else if (n >= fixed && count <= SHOAL_BATCH_MAX &&
	           n == fixed + (size_t)count * size) {
		FUZZ_FAIL("array decoder refused a well-formed body");
	}
}

/* Checks a decoded name of name_len bytes after fixed bytes. */
static void pz_named(int rc, const uint8_t *body, size_t n, size_t fixed,
                     uint32_t name_len, const char *name)
{
	if (rc == 0) {
		if (n != fixed + name_len ||
		    (const uint8_t *)name != body + fixed)
			FUZZ_FAIL("name decoder accepted %u bytes of name in "
			          "%zu",
			          name_len, n);
		if (pz_ref_name((const uint8_t *)name, name_len) != 0)
			FUZZ_FAIL("name decoder accepted an invalid name");
	} else if (rc != SHOAL_EPROTO && rc != SHOAL_ETOOBIG &&
	           rc != SHOAL_EINVAL) {
		FUZZ_FAIL("name decoder returned %d", rc);
	} else if (n >= fixed && n == fixed + (size_t)name_len &&
	           pz_ref_name(body + fixed, name_len) == 0) {
		FUZZ_FAIL("name decoder refused a well-formed body");
	}
}

/* Checks a decoded prefix: like a name, but it may be empty. */
static void pz_prefix(int rc, const uint8_t *body, size_t n, size_t fixed,
                      uint32_t len, const char *prefix)
{
	if (len != 0) {
		pz_named(rc, body, n, fixed, len, prefix);
		return;
	}
	if ((rc == 0) != (n == fixed) || (rc && rc != SHOAL_EPROTO))
		FUZZ_FAIL("prefix decoder says %d for an empty prefix in %zu "
		          "bytes",
		          rc, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *tail = NULL;
	const char *name = NULL;
	uint8_t *b;
	size_t n;
	int rc;

	if (size == 0)
		return 0;
	n = size - 1;
	b = malloc(n ? n : 1);
	if (!b)
		return 0;
	memcpy(b, data + 1, n);
	switch (data[0] % 13) {
	case 0:
		pz_header(b, n);
		break;
	case 1:
		pz_fixed(b, n);
		break;
	case 2: {
		struct proto_get g = {0};
		rc = proto_decode_get(b, n, &g, &tail);
		pz_array(rc, b, n, sizeof(g), g.count, SHOAL_ID_SIZE, tail);
		break;
	}
	case 3: {
		struct proto_release r = {0};
		rc = proto_decode_release(b, n, &r, &tail);
		pz_array(rc, b, n, sizeof(r), r.count, sizeof(uint64_t), tail);
		break;
	}
	case 4: {
		struct proto_delete d = {0};
		rc = proto_decode_delete(b, n, &d, &tail);
		pz_array(rc, b, n, sizeof(d), d.count, SHOAL_ID_SIZE, tail);
		break;
	}
	case 5: {
		struct proto_set_name s = {0};
		rc = proto_decode_set_name(b, n, &s, &name);
		pz_named(rc, b, n, sizeof(s), s.name_len, name);
		break;
	}
	case 6: {
		struct proto_get_name g = {0};
		rc = proto_decode_get_name(b, n, &g, &name);
		pz_named(rc, b, n, sizeof(g), g.name_len, name);
		break;
	}
	case 7: {
		struct proto_delete_name d = {0};
		rc = proto_decode_delete_name(b, n, &d, &name);
		pz_named(rc, b, n, sizeof(d), d.name_len, name);
		break;
	}
	case 9: {
		struct proto_expire e = {0};
		rc = proto_decode_expire(b, n, &e, &name);
		pz_named(rc, b, n, sizeof(e), e.name_len, name);
		break;
	}
	case 10: {
		struct proto_name_req r = {0};
		rc = proto_decode_name_req(b, n, &r, &name);
		pz_named(rc, b, n, sizeof(r), r.name_len, name);
		break;
	}
	case 11: {
		struct proto_name_req r = {0};
		rc = proto_decode_prefix_req(b, n, &r, &name);
		pz_prefix(rc, b, n, sizeof(r), r.name_len, name);
		break;
	}
	case 12: {
		struct proto_list_names l = {0};
		const char *after = NULL;
		rc = proto_decode_list_names(b, n, &l, &name, &after);
		if (rc == 0) {
			if (l.prefix_len > SHOAL_NAME_MAX ||
			    l.after_len > SHOAL_NAME_MAX ||
			    n != sizeof(l) + (size_t)l.prefix_len +
			                    l.after_len ||
			    (const uint8_t *)name != b + sizeof(l) ||
			    (const uint8_t *)after !=
			            b + sizeof(l) + l.prefix_len ||
			    (l.prefix_len && pz_ref_name((const uint8_t *)name,
			                                 l.prefix_len)) ||
			    (l.after_len &&
			     pz_ref_name((const uint8_t *)after, l.after_len)))
				FUZZ_FAIL("list-names decoder accepted a bad "
				          "body");
			pz_touch((const uint8_t *)name,
			         (size_t)l.prefix_len + l.after_len);
		} else if (rc != SHOAL_EPROTO && rc != SHOAL_ETOOBIG &&
		           rc != SHOAL_EINVAL) {
			FUZZ_FAIL("list-names decoder returned %d", rc);
		}
		break;
	}
	default:
		pz_name(b, n);
		break;
	}
	free(b);
	return 0;
}
