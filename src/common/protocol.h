/*
 * protocol.h - shoal's wire protocol: fixed-layout little-endian structs over
 * a Unix stream socket. docs/PROTOCOL.md is the prose version of this file.
 *
 * Every message is a 16-byte header followed by body_len bytes of body. A
 * request's type is one of enum proto_type; its reply carries the same
 * request_id and type | PROTO_REPLY, and its body starts with a
 * struct proto_reply (status, 0 or a negative shoal error code). A reply whose
 * status is negative has no further body but an optional UTF-8 message.
 * Requests on one connection are handled in order, and their replies come
 * back in order. RELEASE never gets a reply; SEAL gets one only on failure
 * (when sent with PROTO_SEAL_NOREPLY).
 *
 * Layout rules: all integers little-endian, every struct naturally aligned
 * with explicit padding (which senders set to zero), sizes checked below
 * with static asserts. Variable parts (ID arrays, names) follow their fixed
 * struct. The decoders in protocol.c check every length before a field is
 * read; nothing else parses bytes from the socket.
 */
#ifndef SHOAL_PROTOCOL_H
#define SHOAL_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shoal's wire structs assume a little-endian host"
#endif

#define PROTO_MAGIC   0x4c4f4853u /* "SHOL" as little-endian bytes */
#define PROTO_VERSION 2

/* Largest body the daemon accepts in a request: a get of SHOAL_BATCH_MAX
 * IDs plus its fixed part fits with room to spare. */
#define PROTO_MAX_REQUEST (2u << 20)
/* Largest body of a reply (list pages are sized to stay below it). */
#define PROTO_MAX_REPLY (8u << 20)
/* Largest page of shoal_list / shoal_list_names in one reply. */
#define PROTO_LIST_MAX 4096

#define PROTO_REPLY 0x8000u

enum proto_type {
	PROTO_HELLO = 1,
	PROTO_CREATE = 2,
	PROTO_SEAL = 3,
	PROTO_ABORT = 4,
	PROTO_GET = 5,
	PROTO_RELEASE = 6,
	PROTO_DELETE = 7,
	PROTO_CONTAINS = 8,
	PROTO_LIST = 9,
	PROTO_EVICT = 10,
	PROTO_STATS = 11,
	PROTO_SET_NAME = 12,
	PROTO_GET_NAME = 13,
	PROTO_DELETE_NAME = 14,
	PROTO_LIST_NAMES = 15,
	PROTO_SUBSCRIBE = 16,
	/* test builds (serve --debug-checks): the invariant check */
	PROTO_DEBUG_CHECK = 17,
	PROTO_EVENT = 18, /* daemon to subscriber only */
	/* names: expiry, metadata, prefixes (cache-core, 19-27) */
	PROTO_EXPIRE = 19,
	PROTO_PERSIST = 20,
	PROTO_NAME_INFO = 21,
	PROTO_DELETE_PREFIX = 22,
	/* Ends the wait of the request sent just before it (that request is
	 * answered at once with what it has); never replied. */
	PROTO_CANCEL = 37,
	PROTO_TYPE_END
};

struct proto_header {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t request_id;
	uint32_t body_len;
};

/* First part of every reply body. */
struct proto_reply {
	int32_t status;
	uint32_t msg_len; /* bytes of UTF-8 message following (errors only) */
};

/* HELLO: the first request of every connection. The reply carries the
 * arena's fd as SCM_RIGHTS ancillary data: opened read-only, unless flags
 * has PROTO_HELLO_WRITER, which a client sends on a second, short
 * connection before its first create (see docs/DESIGN.md, trust model). */
#define PROTO_HELLO_WRITER 1u
struct proto_hello {
	uint32_t proto_version;
	uint32_t flags;
	uint64_t pid;
};
struct proto_hello_reply {
	struct proto_reply r;
	uint64_t map_size; /* bytes to map from offset 0 of the fd */
	uint64_t capacity;
	uint64_t data_offset; /* object offsets are relative to the fd start */
	uint64_t client_id;
};

struct proto_create {
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t metadata_size;
	uint64_t data_size;
	int64_t timeout_ms;
};
/*
 * CREATE reply. flags has PROTO_CREATE_BACKED when every LAYOUT_CHUNK that
 * the object's range overlaps (partly covered ones included) is known to
 * have all its pages allocated in the arena, so every page of the object
 * is. Otherwise the client must reserve the range itself before
 * writing: madvise(MADV_POPULATE_WRITE) over [offset, offset + data_size +
 * metadata_size) of its mapping. If that fails (ENOMEM, EFAULT) the machine
 * cannot back the object: the client aborts it and reports SHOAL_EFULL, and
 * nobody ever faults with SIGBUS. With the flag set, the client may still
 * populate the chunks it has not mapped yet (mapping by populate costs less
 * than one page fault per page).
 */
#define PROTO_CREATE_BACKED 1u
struct proto_create_reply {
	struct proto_reply r;
	uint64_t offset; /* data at offset, metadata at offset + data_size */
	uint64_t handle;
	uint32_t flags;
	uint32_t pad;
};

#define PROTO_SEAL_NOREPLY 1u
/* SEAL and ABORT and CONTAINS take one ID. */
struct proto_id_req {
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t flags;
};

struct proto_contains_reply {
	struct proto_reply r;
	uint32_t state;
	uint32_t pad;
};

/* GET: followed by count IDs of SHOAL_ID_SIZE bytes. */
struct proto_get {
	int64_t timeout_ms;
	uint32_t count;
	uint32_t flags;
};
/* One object in a GET or GET_NAME reply. */
struct proto_object {
	int32_t status;
	uint32_t metadata_size;
	uint64_t offset;
	uint64_t data_size;
	uint64_t handle;
};
/* GET reply: followed by count struct proto_object, in request order. */
struct proto_get_reply {
	struct proto_reply r;
	uint32_t count;
	uint32_t pad;
};

/* RELEASE: followed by count uint64_t handles. No reply. */
struct proto_release {
	uint32_t count;
	uint32_t pad;
};

/* DELETE: followed by count IDs. Reply: followed by count int32_t. */
struct proto_delete {
	uint32_t count;
	uint32_t pad;
};
struct proto_delete_reply {
	struct proto_reply r;
	uint32_t count;
	uint32_t pad;
};

/* LIST and LIST_NAMES. */
struct proto_list {
	uint64_t cursor;
	uint32_t limit;
	uint32_t pad;
};
struct proto_list_reply {
	struct proto_reply r;
	uint64_t next_cursor; /* 0: listing complete */
	uint32_t count;
	uint32_t pad;
};
struct proto_list_entry {
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t state;
	uint64_t data_size;
	uint32_t metadata_size;
	uint32_t holders;
	uint64_t create_time_ns;
	uint32_t names;
	/* Milliseconds from create to seal (saturating), or
	 * PROTO_UNSEALED_MS while the object is not sealed. */
	uint32_t construct_ms;
};
/*
 * LIST_NAMES: names in byte order of their names, at most limit of them:
 * those that start with the prefix_len bytes that follow (0: every name)
 * and come after the after_len bytes that follow the prefix (0: from the
 * first). The reply is a LIST reply whose next_cursor is 1 when more names
 * follow the last one returned (ask again with it as after), else 0; a
 * reply with next_cursor 1 holds at least one name.
 */
struct proto_list_names {
	uint32_t limit;
	uint32_t prefix_len;
	uint32_t after_len;
	uint32_t pad;
};
/* Flags of a name in a name entry (the same values as shoal.h's). */
#define PROTO_ENTRY_EVICTABLE 1u
#define PROTO_UNSEALED_MS     UINT32_MAX
/* A LIST_NAMES entry is followed by name_len bytes, padded to 8. */
struct proto_name_entry {
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t name_len;
	uint64_t version;
	uint64_t data_size;
	uint32_t metadata_size;
	uint32_t flags; /* PROTO_ENTRY_EVICTABLE */
	int64_t ttl_ms; /* ms left, rounded up; -1: no expiry */
};

struct proto_evict {
	uint64_t nbytes;
};
struct proto_evict_reply {
	struct proto_reply r;
	uint64_t freed;
};

struct proto_stats_reply {
	struct proto_reply r;
	uint64_t capacity_bytes;
	uint64_t used_bytes;
	uint64_t objects;
	uint64_t sealed_objects;
	uint64_t pending_deletes;
	uint64_t names;
	uint64_t clients;
	uint64_t evictions;
	uint64_t evicted_bytes;
	uint64_t creates;
	uint64_t gets;
	uint64_t backed_bytes;
	uint64_t largest_free;
	uint64_t uptime_ms;
	uint64_t expired;
	uint64_t evicted_names;
	uint64_t requests;
};

#define PROTO_NAME_CAS       1u
#define PROTO_NAME_EVICTABLE 2u /* SET_NAME: the name may be evicted */
/* SET_NAME: followed by name_len bytes of name. ttl_ms 0: no expiry. */
struct proto_set_name {
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t flags;
	uint64_t expected_version;
	uint64_t ttl_ms;
	uint32_t name_len;
	uint32_t pad;
};
struct proto_version_reply {
	struct proto_reply r;
	uint64_t version;
};

/* GET_NAME: followed by name_len bytes of name. */
struct proto_get_name {
	int64_t timeout_ms;
	uint32_t name_len;
	uint32_t pad;
};
struct proto_get_name_reply {
	struct proto_reply r;
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t pad;
	uint64_t version;
	struct proto_object object;
};

/* DELETE_NAME: followed by name_len bytes of name. */
struct proto_delete_name {
	uint32_t flags;
	uint32_t name_len;
	uint64_t expected_version;
};

/* EXPIRE: followed by name_len bytes of name. ttl_ms 0 expires it now. */
struct proto_expire {
	uint64_t ttl_ms;
	uint32_t name_len;
	uint32_t pad;
};

/* PERSIST and NAME_INFO: followed by name_len bytes of name. DELETE_PREFIX:
 * followed by a prefix of name_len bytes (0: every name). */
struct proto_name_req {
	uint32_t flags;
	uint32_t name_len;
};

/* NAME_INFO reply: the name's entry (name_len set, no name follows). */
struct proto_name_info_reply {
	struct proto_reply r;
	struct proto_name_entry e;
};

/* DELETE_PREFIX reply. */
struct proto_count_reply {
	struct proto_reply r;
	uint64_t count;
};

/*
 * SUBSCRIBE turns the connection into a stream of events: after its reply
 * the daemon sends PROTO_EVENT messages (request_id counts them from 1) and
 * accepts no further requests on it. With PROTO_SUBSCRIBE_SNAPSHOT the
 * stream starts with a SEALED event per sealed object and a NAME_SET event
 * per name, then SNAPSHOT_END. A subscriber that lets more than its
 * queue's worth of events pile up unread gets OVERFLOW and is disconnected.
 */
#define PROTO_SUBSCRIBE_SNAPSHOT 1u
/* Also send NAME_TTL events (never sent to a subscriber without it). */
#define PROTO_SUBSCRIBE_TTL 2u
struct proto_subscribe {
	uint32_t flags;
	uint32_t pad;
};

/* An event; followed by name_len bytes of name for the name events. A
 * NAME_TTL event has a struct proto_event_ttl between the two. */
struct proto_event {
	uint32_t kind; /* enum shoal_event_kind */
	uint32_t name_len;
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t metadata_size;
	uint64_t data_size;
	uint64_t version; /* name events: the name's version */
};

struct proto_event_ttl {
	/* when the name now expires: ms since the Unix epoch; 0: never */
	uint64_t expires_ms;
};

/* DEBUG_CHECK reply: status 0 when every invariant holds, else an error with
 * a message naming the first broken one. */

_Static_assert(sizeof(struct proto_header) == 16, "header layout");
_Static_assert(sizeof(struct proto_reply) == 8, "reply layout");
_Static_assert(sizeof(struct proto_hello) == 16, "hello layout");
_Static_assert(sizeof(struct proto_hello_reply) == 40, "hello reply layout");
_Static_assert(sizeof(struct proto_create) == 40, "create layout");
_Static_assert(sizeof(struct proto_create_reply) == 32, "create reply");
_Static_assert(sizeof(struct proto_id_req) == 24, "id request layout");
_Static_assert(sizeof(struct proto_get) == 16, "get layout");
_Static_assert(sizeof(struct proto_object) == 32, "object layout");
_Static_assert(sizeof(struct proto_list_entry) == 56, "list entry layout");
_Static_assert(sizeof(struct proto_name_entry) == 56, "name entry layout");
_Static_assert(sizeof(struct proto_set_name) == 48, "set name layout");
_Static_assert(sizeof(struct proto_list_names) == 16, "list names layout");
_Static_assert(sizeof(struct proto_expire) == 16, "expire layout");
_Static_assert(sizeof(struct proto_name_req) == 8, "name request layout");
_Static_assert(sizeof(struct proto_name_info_reply) == 64, "name info");
_Static_assert(sizeof(struct proto_get_name_reply) == 72, "get name reply");
_Static_assert(sizeof(struct proto_stats_reply) == 144, "stats reply");
_Static_assert(sizeof(struct proto_event) == 48, "event layout");

/* Bytes a name entry takes in a LIST_NAMES reply. */
static inline size_t proto_name_entry_size(uint32_t name_len)
{
	return sizeof(struct proto_name_entry) +
	       (((size_t)name_len + 7) & ~(size_t)7);
}

/*
 * Checks a header read from the socket: magic, version and a body length
 * within max_body. Returns 0, SHOAL_EPROTO (bad magic/version) or
 * SHOAL_ETOOBIG (body longer than max_body).
 */
int proto_check_header(const struct proto_header *h, uint32_t max_body);

/* Fills a header. */
void proto_header_init(struct proto_header *h, uint16_t type,
                       uint32_t request_id, uint32_t body_len);

/*
 * Request decoders: each checks that body (len bytes) holds the fixed struct
 * and exactly the variable part it announces, then copies the fixed struct to
 * *out (so the body need not be aligned) and points *tail at the variable
 * part. Returns 0 or SHOAL_EPROTO. Limits (SHOAL_BATCH_MAX, SHOAL_NAME_MAX)
 * are checked too: SHOAL_ETOOBIG.
 */
int proto_decode_fixed(const void *body, size_t len, void *out,
                       size_t fixed_size);
int proto_decode_get(const void *body, size_t len, struct proto_get *out,
                     const uint8_t **ids);
int proto_decode_release(const void *body, size_t len,
                         struct proto_release *out, const uint8_t **handles);
int proto_decode_delete(const void *body, size_t len, struct proto_delete *out,
                        const uint8_t **ids);
int proto_decode_set_name(const void *body, size_t len,
                          struct proto_set_name *out, const char **name);
int proto_decode_get_name(const void *body, size_t len,
                          struct proto_get_name *out, const char **name);
int proto_decode_delete_name(const void *body, size_t len,
                             struct proto_delete_name *out, const char **name);
int proto_decode_expire(const void *body, size_t len, struct proto_expire *out,
                        const char **name);
int proto_decode_name_req(const void *body, size_t len,
                          struct proto_name_req *out, const char **name);
/* The prefix decoders accept an empty prefix. */
int proto_decode_prefix_req(const void *body, size_t len,
                            struct proto_name_req *out, const char **prefix);
int proto_decode_list_names(const void *body, size_t len,
                            struct proto_list_names *out, const char **prefix,
                            const char **after);

/* Checks a name: 1..SHOAL_NAME_MAX bytes of valid UTF-8 without NUL.
 * Returns 0, SHOAL_EINVAL or SHOAL_ETOOBIG. */
int proto_check_name(const char *name, size_t len);

#endif /* SHOAL_PROTOCOL_H */
