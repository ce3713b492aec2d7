/*
 * fuzz_daemon.c - libFuzzer harness for the daemon's request handling.
 *
 * Each input runs a whole daemon in-process, without a listening socket:
 * server_init_state() gives the arena (a memfd), the store and the
 * loop; every fake client is a socketpair whose daemon end is handed to
 * server_add_conn(). The input is a script of records that write bytes into
 * the clients' ends, run turns of the real loop (loop_run_once: the
 * before-sleep hook, epoll, conn_on_event), disconnect clients and expire
 * the deadlines of parked requests. Record format, one byte first:
 *
 *   op & 3         the client (0..3), connected on first use
 *   (op >> 2) & 7  0-3: write: u16 little-endian length, then that many
 *                       bytes (fewer if the input ends)
 *                  4:   run 1 + (next byte % 8) turns; with op & 0x20,
 *                       the (1 + following byte % 32)th private
 *                       allocation of the daemon in those turns fails
 *                       (through the os.h seam), to reach the paths that
 *                       handle ENOMEM from any state
 *                  5:   disconnect the client (close its end)
 *                  6:   expire every parked request's deadline and
 *                       every name's time to live
 *                  7:   write a valid HELLO (so scripts need not spell it)
 *
 * Oracles: after every batch of turns, store_check() over the live
 * clients; every message the daemon sends is well framed (magic, version,
 * length within PROTO_MAX_REPLY), is a reply or an event, and a successful
 * reply has exactly the size its type implies. At the end every client
 * disconnects: then no connection may remain, nothing may be held, no
 * unsealed or deleted object may survive, and store_check() must pass
 * again. ASan and UBSan (the fuzz build and `make test`'s sanitizer build)
 * catch memory errors and leaks.
 *
 * tests/unit/test_fuzz_replay.c includes this file to replay the corpus with
 * gcc; it renames LLVMFuzzerTestOneInput and defines FUZZ_FAIL, so every
 * helper here is static and prefixed dz_.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "os.h"
#include "server.h"

#ifndef FUZZ_FAIL
#define FUZZ_FAIL(...)                        \
	do {                                  \
		fprintf(stderr, __VA_ARGS__); \
		fputc('\n', stderr);          \
		abort();                      \
	} while (0)
#endif

#define DZ_CLIENTS 4
/* Three whole LAYOUT_CHUNKs in the data area, so that trimming has work;
 * the daemon never touches object bytes, so the size costs nothing. */
#define DZ_CAPACITY (6u << 20)
#define DZ_SETTLE   32 /* turns allowed for the daemon to go quiet */

struct dz_client {
	int fd; /* our end of the socketpair; -1: not connected */
	uint8_t *buf;
	size_t len, cap;
};

struct dz_state {
	struct server srv;
	struct dz_client cl[DZ_CLIENTS];
};

/* Size of a successful reply's body, or 0 when it varies (checked apart). */
static size_t dz_reply_size(uint16_t type)
{
	switch (type) {
	case PROTO_HELLO:
		return sizeof(struct proto_hello_reply);
	case PROTO_CREATE:
		return sizeof(struct proto_create_reply);
	case PROTO_CONTAINS:
		return sizeof(struct proto_contains_reply);
	case PROTO_EVICT:
		return sizeof(struct proto_evict_reply);
	case PROTO_STATS:
		return sizeof(struct proto_stats_reply);
	case PROTO_SET_NAME:
		return sizeof(struct proto_version_reply);
	case PROTO_GET_NAME:
		return sizeof(struct proto_get_name_reply);
	case PROTO_NAME_INFO:
		return sizeof(struct proto_name_info_reply);
	case PROTO_DELETE_PREFIX:
		return sizeof(struct proto_count_reply);
	case PROTO_EXPIRE:
	case PROTO_PERSIST:
	case PROTO_SEAL:
	case PROTO_ABORT:
	case PROTO_DELETE_NAME:
	case PROTO_SUBSCRIBE:
	case PROTO_DEBUG_CHECK:
		return sizeof(struct proto_reply);
	default:
		return 0;
	}
}

/* Checks a LIST_NAMES reply body: count entries, each padded to 8. */
static void dz_check_names_reply(const uint8_t *b, size_t len)
{
	struct proto_list_reply head;
	size_t pos = sizeof(head);

	memcpy(&head, b, sizeof(head));
	for (uint32_t i = 0; i < head.count; i++) {
		struct proto_name_entry e;
		if (len - pos < sizeof(e))
			FUZZ_FAIL("list-names reply ends inside entry %u", i);
		memcpy(&e, b + pos, sizeof(e));
		if (e.name_len == 0 || e.name_len > SHOAL_NAME_MAX ||
		    len - pos < proto_name_entry_size(e.name_len))
			FUZZ_FAIL("list-names entry %u has a bad name", i);
		if (proto_check_name((const char *)b + pos + sizeof(e),
		                     e.name_len))
			FUZZ_FAIL("list-names entry %u: invalid name", i);
		pos += proto_name_entry_size(e.name_len);
	}
	if (pos != len)
		FUZZ_FAIL("list-names reply has %zu stray bytes", len - pos);
}

/* Checks one complete message from the daemon. */
static void dz_check_message(const struct proto_header *h, const uint8_t *b)
{
	struct proto_reply r;
	uint32_t count;

	if (h->type == PROTO_EVENT) {
		struct proto_event e;
		if (h->body_len < sizeof(e))
			FUZZ_FAIL("short event");
		memcpy(&e, b, sizeof(e));
		if (h->body_len != sizeof(e) + e.name_len ||
		    e.kind < SHOAL_EVENT_SEALED ||
		    e.kind > SHOAL_EVENT_KIND_MAX)
			FUZZ_FAIL("malformed event (kind %u)", e.kind);
		return;
	}
	if (!(h->type & PROTO_REPLY))
		FUZZ_FAIL("daemon sent a request (type %u)", h->type);
	if (h->body_len < sizeof(r))
		FUZZ_FAIL("reply without a status");
	memcpy(&r, b, sizeof(r));
	if (r.status > 0)
		FUZZ_FAIL("positive status %d", r.status);
	if (r.status < 0) {
		if (h->body_len != sizeof(r) + r.msg_len)
			FUZZ_FAIL("error reply of %u bytes, message of %u",
			          h->body_len, r.msg_len);
		return;
	}
	uint16_t type = (uint16_t)(h->type & ~PROTO_REPLY);
	size_t want = dz_reply_size(type);
	switch (type) {
	case PROTO_GET:
	case PROTO_DELETE:
	case PROTO_LIST:
		if (h->body_len < 16)
			FUZZ_FAIL("short reply to type %u", type);
		memcpy(&count, b + (type == PROTO_LIST ? 16 : 8),
		       sizeof(count));
		want = (type == PROTO_LIST ? 24 : 16) +
		       (size_t)count * (type == PROTO_GET      ? 32
		                        : type == PROTO_DELETE ? 4
		                                               : 56);
		break;
	case PROTO_LIST_NAMES:
		if (h->body_len < sizeof(struct proto_list_reply))
			FUZZ_FAIL("short list-names reply");
		dz_check_names_reply(b, h->body_len);
		want = h->body_len;
		break;
	default:
		break;
	}
	if (want == 0)
		FUZZ_FAIL("successful reply to unknown type %u", type);
	if (h->body_len != want)
		FUZZ_FAIL("reply to type %u has %u bytes, expected %zu", type,
		          h->body_len, want);
}

/* Parses and drops the complete messages in a client's buffer. */
static void dz_parse(struct dz_client *cl)
{
	size_t pos = 0;

	while (cl->len - pos >= sizeof(struct proto_header)) {
		struct proto_header h;
		memcpy(&h, cl->buf + pos, sizeof(h));
		if (proto_check_header(&h, PROTO_MAX_REPLY))
			FUZZ_FAIL("daemon sent a bad header");
		if (cl->len - pos - sizeof(h) < h.body_len)
			break;
		dz_check_message(&h, cl->buf + pos + sizeof(h));
		pos += sizeof(h) + h.body_len;
	}
	memmove(cl->buf, cl->buf + pos, cl->len - pos);
	cl->len -= pos;
}

static void dz_disconnect(struct dz_client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	cl->fd = -1;
	free(cl->buf);
	cl->buf = NULL;
	cl->len = cl->cap = 0;
}

/* Reads what the daemon sent to a client, closing any passed fd (the
 * arena's, with each HELLO reply). */
static void dz_drain(struct dz_client *cl)
{
	while (cl->fd >= 0) {
		union {
			char buf[CMSG_SPACE(4 * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		if (cl->cap - cl->len < 65536) {
			size_t cap = cl->cap ? cl->cap * 2 : 65536 * 2;
			uint8_t *n = realloc(cl->buf, cap);
			if (!n)
				FUZZ_FAIL("out of memory");
			cl->buf = n;
			cl->cap = cap;
		}
		struct iovec iov = {cl->buf + cl->len, cl->cap - cl->len};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = ctl.buf,
		                    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = recvmsg(cl->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n > 0) {
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
			     cm = CMSG_NXTHDR(&mh, cm)) {
				size_t k = (cm->cmsg_len - CMSG_LEN(0)) /
				           sizeof(int);
				for (size_t i = 0; i < k; i++) {
					int fd;
					memcpy(&fd,
					       CMSG_DATA(cm) + i * sizeof(fd),
					       sizeof(fd));
					close(fd);
				}
			}
			cl->len += (size_t)n;
			dz_parse(cl);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		dz_disconnect(cl); /* the daemon closed it */
	}
}

static void dz_check(struct dz_state *s)
{
	struct store_client *clients[256];
	char msg[256] = "";
	uint32_t n = s->srv.nconns;

	if (n > 256)
		FUZZ_FAIL("%u connections from %d clients", n, DZ_CLIENTS);
	for (uint32_t i = 0; i < n; i++)
		clients[i] = &s->srv.conns[i]->sc;
	if (store_check(&s->srv.store, clients, n, msg, sizeof(msg)))
		FUZZ_FAIL("invariant broken: %s", msg);
}

/* Allocations left until the one that fails; 0: none fails. */
static long dz_alloc_countdown;

static long dz_alloc_hook(enum os_call call, size_t len)
{
	(void)len;
	if (call != OS_ALLOC || dz_alloc_countdown == 0)
		return 0;
	return --dz_alloc_countdown == 0 ? -ENOMEM : 0;
}

/*
 * Runs turns of the loop, with the fail_at-th allocation failing if
 * fail_at > 0, then checks the store (after the batch only: the check walks
 * the whole allocator and would dominate the run).
 */
static void dz_turns_failing(struct dz_state *s, int turns, long fail_at)
{
	dz_alloc_countdown = fail_at;
	os_fault_hook = fail_at ? dz_alloc_hook : NULL;
	for (int t = 0; t < turns; t++) {
		int n = loop_run_once(s->srv.loop, 0);
		if (n < 0)
			FUZZ_FAIL("loop failed: %d", n);
		for (int k = 0; k < DZ_CLIENTS; k++)
			dz_drain(&s->cl[k]);
	}
	os_fault_hook = NULL;
	dz_check(s);
}

static void dz_turns(struct dz_state *s, int turns)
{
	dz_turns_failing(s, turns, 0);
}

static void dz_connect(struct dz_state *s, int k)
{
	int sv[2];

	if (s->cl[k].fd >= 0)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	               sv))
		FUZZ_FAIL("socketpair: %s", strerror(errno));
	if (!server_add_conn(&s->srv, sv[0])) {
		close(sv[1]);
		return;
	}
	s->cl[k].fd = sv[1];
}

/* Writes everything, running the daemon while the socket is full. */
static void dz_write(struct dz_state *s, int k, const uint8_t *p, size_t len)
{
	for (int stuck = 0; len && s->cl[k].fd >= 0 && stuck < DZ_SETTLE;) {
		ssize_t n = send(s->cl[k].fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			dz_disconnect(&s->cl[k]); /* the daemon closed it */
			return;
		}
		dz_turns(s, 1);
		stuck++;
	}
}

static void dz_hello(struct dz_state *s, int k)
{
	struct {
		struct proto_header h;
		struct proto_hello b;
	} m = {.b = {.proto_version = PROTO_VERSION, .pid = 1}};

	proto_header_init(&m.h, PROTO_HELLO, 1, sizeof(m.b));
	dz_write(s, k, (const uint8_t *)&m, sizeof(m));
}

static void dz_expire(struct dz_state *s)
{
	for (uint32_t i = 0; i < s->srv.nconns; i++)
		if (wait_parked(&s->srv.conns[i]->wait))
			waits_wake(&s->srv.waits, &s->srv.conns[i]->wait, true);
	/* Time jumps for names too: every ttl runs out. */
	(void)store_expire_due(&s->srv.store, UINT64_MAX, UINT64_MAX);
}

/* Everyone leaves; then only sealed, unheld objects may remain. */
static void dz_finish(struct dz_state *s)
{
	struct store *st = &s->srv.store;

	dz_turns(s, 4);
	dz_expire(s);
	dz_turns(s, 2);
	for (int k = 0; k < DZ_CLIENTS; k++)
		dz_disconnect(&s->cl[k]);
	/* A departed client's holds go a slice per turn. */
	for (int t = 0;
	     t < DZ_SETTLE && (s->srv.nconns || s->srv.store.departed); t++)
		dz_turns(s, 1);
	if (s->srv.nconns)
		FUZZ_FAIL("%u connections outlive their clients",
		          s->srv.nconns);
	if (s->srv.waits.parked || s->srv.subs)
		FUZZ_FAIL("parked or subscribed connections left");
	for (uint32_t i = 0; i < st->objs.nslots; i++) {
		const struct object *o = objtab_get(&st->objs, i);
		if (o->state == OBJ_FREE)
			continue;
		if (o->state != OBJ_SEALED || o->deleted || o->holders)
			FUZZ_FAIL("object %u survives its clients (state %u, "
			          "deleted %d, holders %u)",
			          i, o->state, o->deleted, o->holders);
	}
	if (st->deleted_held)
		FUZZ_FAIL("%llu deleted objects still held",
		          (unsigned long long)st->deleted_held);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct dz_state s;
	struct server_options opt = {
	        .capacity = DZ_CAPACITY,
	        .trim = true,
	        .debug_checks = true,
	        .stall_ms = 3600 * 1000,
	        .event_queue = 4096, /* small, so overflows happen */
	};
	char err[256];
	size_t pos = 0;

	memset(&s, 0, sizeof(s));
	for (int k = 0; k < DZ_CLIENTS; k++)
		s.cl[k].fd = -1;
	if (server_init_state(&s.srv, &opt, err, sizeof(err)))
		FUZZ_FAIL("cannot start the daemon: %s", err);
	while (pos < size) {
		uint8_t op = data[pos++];
		int k = op & 3;
		switch ((op >> 2) & 7) {
		case 4: {
			int turns = 1 + (pos < size ? data[pos++] % 8 : 0);
			long fail_at = 0;
			if ((op & 0x20) && pos < size)
				fail_at = 1 + data[pos++] % 32;
			dz_turns_failing(&s, turns, fail_at);
			break;
		}
		case 5:
			dz_disconnect(&s.cl[k]);
			break;
		case 6:
			dz_expire(&s);
			break;
		case 7:
			dz_connect(&s, k);
			dz_hello(&s, k);
			break;
		default: {
			size_t len = 0;
			if (size - pos >= 2) {
				len = (size_t)data[pos] | (size_t)data[pos + 1]
				                                  << 8;
				pos += 2;
			} else {
				pos = size;
			}
			if (len > size - pos)
				len = size - pos;
			dz_connect(&s, k);
			dz_write(&s, k, data + pos, len);
			pos += len;
			break;
		}
		}
	}
	dz_finish(&s);
	dz_check(&s);
	server_free(&s.srv);
	return 0;
}
