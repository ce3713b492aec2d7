/*
 * test_turns.c - one client cannot hold up the others for long: in one
 * turn of the daemon's loop, a connection gets a bounded share of work
 * however much it sent, and a departed client's holds are released a
 * slice per turn, so another client's request waits for at most a share,
 * never for the whole flood (issue 9's attack 5d: a client pipelining
 * 262,144 creates and seals, then leaving, stalled other clients for tens
 * of milliseconds on an idle machine and seconds on a busy one).
 *
 * The daemon runs in this process (server_init_state(), clients on
 * socketpairs, turns driven with loop_run_once()), so the tests count work
 * per turn instead of timing it: no result depends on the machine's load.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "raw.h"
#include "server.h"
#include "shoal.h"

/* More than any one turn may handle for one client: two shares (its own
 * event and the backlog pass of the same turn) with room to spare. */
#define TURN_MAX_REQUESTS 1024
/* The same for a departed client's holds (STORE_DEPART_SLICE twice). */
#define TURN_MAX_RELEASES (2 * STORE_DEPART_SLICE)

/* Our end of a client's socketpair and the replies read from it. */
struct cl {
	int fd;
	uint8_t *buf;
	size_t len, cap;
	size_t replies, errors;
	/* With keep set, the handles of successful create replies. */
	bool keep;
	uint64_t *handles;
	size_t nhandles, hcap;
};

struct fx {
	struct server srv;
	struct cl a, b;
};

static void cl_connect(struct fx *f, struct cl *c)
{
	int sv[2];
	struct {
		struct proto_header h;
		struct proto_hello b;
	} m = {.b = {.proto_version = PROTO_VERSION, .pid = 1}};

	memset(c, 0, sizeof(*c));
	assert_int_equal(socketpair(AF_UNIX,
	                            SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
	                            0, sv),
	                 0);
	assert_non_null(server_add_conn(&f->srv, sv[0]));
	c->fd = sv[1];
	proto_header_init(&m.h, PROTO_HELLO, 1, sizeof(m.b));
	assert_int_equal(send(c->fd, &m, sizeof(m), 0), (ssize_t)sizeof(m));
}

static void keep_handle(struct cl *c, const uint8_t *body)
{
	struct proto_create_reply r;

	memcpy(&r, body, sizeof(r));
	if (c->nhandles == c->hcap) {
		c->hcap = c->hcap ? c->hcap * 2 : 1024;
		c->handles = realloc(c->handles, c->hcap * sizeof(r.handle));
		assert_non_null(c->handles);
	}
	c->handles[c->nhandles++] = r.handle;
}

/* Reads what the daemon sent (closing any fds passed) and counts the whole
 * replies, and those with an error status. */
static void cl_drain(struct cl *c)
{
	for (;;) {
		union {
			char buf[CMSG_SPACE(4 * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 1 << 17;
			c->buf = realloc(c->buf, c->cap);
			assert_non_null(c->buf);
		}
		struct iovec iov = {c->buf + c->len, c->cap - c->len};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = ctl.buf,
		                    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC);
		if (n <= 0) {
			assert_true(n < 0 && errno == EAGAIN);
			break;
		}
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm;
		     cm = CMSG_NXTHDR(&mh, cm)) {
			size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (size_t i = 0; i < k; i++) {
				int fd;
				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(fd),
				       sizeof(fd));
				close(fd);
			}
		}
		c->len += (size_t)n;
	}
	size_t pos = 0;
	struct proto_header h;
	struct proto_reply r;
	while (c->len - pos >= sizeof(h) + sizeof(r)) {
		memcpy(&h, c->buf + pos, sizeof(h));
		if (c->len - pos - sizeof(h) < h.body_len)
			break;
		memcpy(&r, c->buf + pos + sizeof(h), sizeof(r));
		c->replies++;
		c->errors += r.status != 0;
		if (c->keep && r.status == 0 &&
		    h.type == (PROTO_CREATE | PROTO_REPLY))
			keep_handle(c, c->buf + pos + sizeof(h));
		pos += sizeof(h) + h.body_len;
	}
	memmove(c->buf, c->buf + pos, c->len - pos);
	c->len -= pos;
}

/* One turn of the loop; returns the requests it dispatched. */
static uint64_t turn(struct fx *f)
{
	uint64_t before = f->srv.requests;

	assert_true(loop_run_once(f->srv.loop, 0) >= 0);
	cl_drain(&f->a);
	cl_drain(&f->b);
	return f->srv.requests - before;
}

static void check(struct fx *f)
{
	struct store_client *clients[4];
	char msg[256];

	assert_true(f->srv.nconns <= 4);
	for (uint32_t i = 0; i < f->srv.nconns; i++)
		clients[i] = &f->srv.conns[i]->sc;
	if (store_check(&f->srv.store, clients, f->srv.nconns, msg,
	                sizeof(msg)))
		fail_msg("store_check: %s", msg);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct server_options opt = {
	        .capacity = 64u << 20,
	        .stall_ms = 3600 * 1000,
	        .event_queue = 4u << 20,
	        .limits = {.max_objects = 1u << 20},
	};
	char err[256];

	assert_non_null(f);
	if (server_init_state(&f->srv, &opt, err, sizeof(err)))
		fail_msg("server_init_state: %s", err);
	cl_connect(f, &f->a);
	cl_connect(f, &f->b);
	for (int t = 0; t < 10 && (f->a.replies < 1 || f->b.replies < 1); t++)
		turn(f);
	assert_int_equal(f->a.replies, 1);
	assert_int_equal(f->b.replies, 1);
	f->a.replies = f->b.replies = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->a.fd >= 0)
		close(f->a.fd);
	close(f->b.fd);
	server_free(&f->srv);
	free(f->a.buf);
	free(f->b.buf);
	free(f->a.handles);
	free(f);
	return 0;
}

/* Sends as much of m as the socket takes without the daemon reading;
 * returns the number of whole requests sent. */
static size_t send_what_fits(int fd, const struct raw_msgs *m)
{
	size_t sent = 0, whole = 0, pos = 0;

	while (sent < m->len) {
		ssize_t n = send(fd, m->p + sent, m->len - sent, MSG_NOSIGNAL);
		if (n < 0) {
			assert_true(errno == EAGAIN);
			break;
		}
		sent += (size_t)n;
	}
	for (;;) {
		struct proto_header h;
		if (m->len - pos < sizeof(h))
			break;
		memcpy(&h, m->p + pos, sizeof(h));
		if (pos + sizeof(h) + h.body_len > sent)
			break;
		pos += sizeof(h) + h.body_len;
		whole++;
	}
	return whole;
}

/* B's CONTAINS, sent while A's flood waits. */
static void ask_b(struct fx *f)
{
	struct raw_msgs m = {0};
	uint8_t id[SHOAL_ID_SIZE];

	raw_id(id, 0x77, 0);
	raw_add_id_req(&m, PROTO_CONTAINS, id, 0);
	assert_int_equal(send(f->b.fd, m.p, m.len, 0), (ssize_t)m.len);
	raw_free(&m);
}

/* Sends m from A, a socket-full at a time, and turns until A has `more`
 * further replies (B's replies are counted meanwhile). */
static void a_exchange(struct fx *f, const struct raw_msgs *m, size_t more)
{
	size_t off = 0, replies = f->a.replies + more;

	for (int t = 0; t < 100000 && (off < m->len || f->a.replies < replies);
	     t++) {
		if (off < m->len) {
			ssize_t k = send(f->a.fd, m->p + off, m->len - off,
			                 MSG_NOSIGNAL);
			if (k > 0)
				off += (size_t)k;
		}
		turn(f);
	}
	assert_int_equal(f->a.replies, replies);
}

/* Creates and seals n zero-byte objects from A (which holds them). */
static void a_creates(struct fx *f, uint8_t tag, uint32_t n)
{
	struct raw_msgs m = {0};

	raw_add_created(&m, tag, n, PROTO_SEAL_NOREPLY);
	a_exchange(f, &m, n);
	assert_int_equal(f->a.errors, 0);
	raw_free(&m);
}

/*
 * A pipelines thousands of creates and seals; B asks one question. After
 * one turn B has its answer and A has been served no more than a share;
 * the rest of A's requests are answered over the next turns, in order and
 * all of them. (Before, one turn handled everything A had sent.)
 */
static void test_flood_is_served_in_slices(void **state)
{
	struct fx *f = *state;
	struct raw_msgs m = {0};
	raw_add_created(&m, 0x5d, 4096, PROTO_SEAL_NOREPLY);
	size_t sent = send_what_fits(f->a.fd, &m);
	/* Enough for several shares, whatever the socket buffer size. */
	assert_true(sent >= 4 * TURN_MAX_REQUESTS);
	ask_b(f);

	uint64_t handled = turn(f);
	assert_int_equal(f->b.replies, 1);
	assert_int_equal(f->b.errors, 0);
	if (handled > TURN_MAX_REQUESTS + 1)
		fail_msg("one turn handled %llu requests of one client",
		         (unsigned long long)handled);
	assert_true(f->a.replies < sent / 2);

	/* The rest comes in later turns, a share at a time. */
	int turns = 1;
	for (; turns < 1000 && f->a.replies < sent / 2; turns++) {
		handled = turn(f);
		if (handled > TURN_MAX_REQUESTS)
			fail_msg("turn %d handled %llu requests", turns,
			         (unsigned long long)handled);
		check(f);
	}
	assert_int_equal(f->a.replies, sent / 2); /* creates (seals: none) */
	assert_int_equal(f->a.errors, 0);
	assert_true(turns >= 4);
	raw_free(&m);
	check(f);
}

/* A leaves, and B asks a question behind that: the turn that sees A go
 * answers B and closes A's connection. */
static void a_leaves(struct fx *f)
{
	close(f->a.fd);
	f->a.fd = -1;
	ask_b(f);
	assert_true(loop_run_once(f->srv.loop, 0) >= 0);
	cl_drain(&f->b);
	assert_int_equal(f->b.replies, 1);
	assert_int_equal(f->srv.nconns, 1);
}

/* Objects nobody holds any more (evictable). */
static uint32_t unheld(const struct fx *f)
{
	const struct objtab *t = &f->srv.store.objs;
	uint32_t n = 0;

	for (uint32_t s = 0; s < t->nslots; s++) {
		const struct object *o = objtab_get(t, s);
		n += o->state == OBJ_SEALED && o->holders == 0;
	}
	return n;
}

/*
 * A holds 20,000 objects and leaves. The turn that sees it go answers B
 * and releases a slice of A's holds; the rest are released over the next
 * turns, after which every object is unheld (evictable), as if all had
 * gone at once. (Before, the departure released everything in one turn.)
 */
static void test_departure_is_released_in_slices(void **state)
{
	struct fx *f = *state;
	const uint32_t n = 20000;

	a_creates(f, 0xd0, n);
	assert_int_equal(unheld(f), 0);
	a_leaves(f);
	uint32_t released = unheld(f);
	if (released > TURN_MAX_RELEASES)
		fail_msg("one turn released %u holds of a departed client",
		         released);
	check(f); /* holds still to release count as holders */

	int turns = 1;
	for (; turns < 1000 && f->srv.store.departed; turns++) {
		uint32_t before = unheld(f);
		assert_true(loop_run_once(f->srv.loop, 0) >= 0);
		assert_true(unheld(f) - before <= TURN_MAX_RELEASES);
		check(f);
	}
	assert_null(f->srv.store.departed);
	assert_int_equal(unheld(f), n);
	assert_true(turns >= 5);
	check(f);
}

/* A small departure is released at once, as before. */
static void test_small_departure_is_immediate(void **state)
{
	struct fx *f = *state;

	a_creates(f, 0xd1, 100);
	close(f->a.fd);
	f->a.fd = -1;
	assert_true(loop_run_once(f->srv.loop, 0) >= 0);
	assert_int_equal(f->srv.nconns, 1);
	assert_null(f->srv.store.departed);
	assert_int_equal(unheld(f), 100);
	check(f);
}

/* Live objects (in the ID table: unsealed ones not dropped yet count). */
static uint32_t live(const struct fx *f)
{
	return f->srv.store.objs.live;
}

/*
 * A leaves while creating 20,000 objects (unsealed). The turn that sees it
 * go drops a slice of them; the rest go over the next turns, each a
 * bounded share, and every invariant holds between slices. (Before, all
 * were dropped in that one turn: ~30 ms with 65,536 of them, in which no
 * other client was answered.)
 */
static void test_unsealed_departure_is_dropped_in_slices(void **state)
{
	struct fx *f = *state;
	struct raw_msgs m = {0};
	const uint32_t n = 20000;

	for (uint32_t i = 0; i < n; i++) {
		uint8_t id[SHOAL_ID_SIZE];
		raw_id(id, 0xd2, i);
		raw_add_create(&m, id, 0, 0);
	}
	a_exchange(f, &m, n);
	assert_int_equal(f->a.errors, 0);
	assert_int_equal(live(f), n);
	a_leaves(f);
	if (n - live(f) > TURN_MAX_RELEASES)
		fail_msg("one turn dropped %u objects of a departed client",
		         n - live(f));
	check(f);

	int turns = 1;
	for (; turns < 1000 && f->srv.store.departed; turns++) {
		uint32_t before = live(f);
		assert_true(loop_run_once(f->srv.loop, 0) >= 0);
		assert_true(before - live(f) <= TURN_MAX_RELEASES);
		check(f);
	}
	assert_null(f->srv.store.departed);
	assert_int_equal(live(f), 0);
	assert_int_equal(alloc_used(f->srv.store.alloc), 0);
	assert_true(turns >= 5);
	raw_free(&m);
}

/* A releases the objects of every step-th handle, n of them (batches of
 * at most SHOAL_BATCH_MAX); a CONTAINS behind the releases (which have no
 * reply) says when the daemon has them. */
static void a_releases(struct fx *f, const uint64_t *handles, uint32_t n,
                       uint32_t step)
{
	struct raw_msgs m = {0};
	uint8_t id[SHOAL_ID_SIZE];

	for (uint32_t done = 0; done < n;) {
		uint32_t k =
		        n - done < SHOAL_BATCH_MAX ? n - done : SHOAL_BATCH_MAX;
		struct proto_release rel = {.count = k};
		uint8_t *p =
		        raw_add(&m, PROTO_RELEASE, sizeof(rel) + (size_t)k * 8);
		memcpy(p, &rel, sizeof(rel));
		for (uint32_t i = 0; i < k; i++, done++)
			memcpy(p + sizeof(rel) + (size_t)i * 8,
			       &handles[(size_t)done * step], 8);
	}
	raw_id(id, 0x77, 1);
	raw_add_id_req(&m, PROTO_CONTAINS, id, 0);
	a_exchange(f, &m, 1);
	assert_int_equal(f->a.errors, 0);
	raw_free(&m);
}

/*
 * A parked create that can fit only by evicting is answered in the turn
 * after the change that made room for it. A holds 262,144 small objects
 * (16 MiB) and a 20 MiB one; 28 MiB are free; B waits to create 30 MiB.
 * A releases every other small object: their bytes would be enough, but
 * each lies between two held ones, so nothing can fit and B waits on. A
 * releases the 20 MiB object: evicting it makes room, and B has its
 * object after the next turn. (Before, whether a create could fit by
 * evicting took a walk of every block, so such a create was tried at most
 * as often as kept those walks under a tenth of the loop's time: B waited
 * on a timer after the walk the first release caused.)
 */
static void test_parked_create_woken_by_room_to_evict(void **state)
{
	struct fx *f = *state;
	const uint32_t n = 262144;
	struct raw_msgs m = {0};
	uint8_t id[SHOAL_ID_SIZE];

	f->a.keep = true;
	a_creates(f, 0xe0, n);
	raw_id(id, 0xe1, 0);
	raw_add_create(&m, id, 20u << 20, 0);
	raw_add_id_req(&m, PROTO_SEAL, id, PROTO_SEAL_NOREPLY);
	a_exchange(f, &m, 1);
	assert_int_equal(f->a.nhandles, n + 1);
	assert_int_equal(f->a.errors, 0);

	raw_reset(&m);
	raw_id(id, 0xe2, 0);
	raw_add_create(&m, id, 30u << 20, -1);
	assert_int_equal(send(f->b.fd, m.p, m.len, 0), (ssize_t)m.len);
	for (int t = 0; t < 3; t++)
		turn(f);
	assert_int_equal(f->b.replies, 0);

	a_releases(f, f->a.handles, n / 2, 2);
	for (int t = 0; t < 3; t++)
		turn(f);
	assert_int_equal(f->b.replies, 0); /* no stretch large enough */
	check(f);

	a_releases(f, &f->a.handles[n], 1, 1);
	turn(f);
	assert_int_equal(f->b.replies, 1);
	assert_int_equal(f->b.errors, 0);
	assert_true(f->srv.store.evictions >= 1);
	check(f);
	raw_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_flood_is_served_in_slices,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_departure_is_released_in_slices, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_small_departure_is_immediate, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_unsealed_departure_is_dropped_in_slices, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_parked_create_woken_by_room_to_evict, setup,
	                teardown),
	};

	return cmocka_run_group_tests_name("turns", tests, NULL, NULL);
}
