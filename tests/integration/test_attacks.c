/*
 * test_attacks.c - issue 9's hostile-client attacks against a real daemon,
 * scaled down, each asserting what the other clients see: their requests
 * are answered within a deadline while the attack runs, and waiting
 * requests are answered when what they wait for happens (not at their
 * deadline); every resource a client can make the daemon hold has a limit
 * that answers SHOAL_ELIMIT; and the protocol document's rules hold. Each
 * of these failed on the daemon before the fixes (tests/attack/attack.c
 * measures the full-size attacks).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "protocol.h"
#include "raw.h"
#include "shoal.h"
#include "testd.h"

#define BATCH 65536u

struct fx {
	struct testd d;
	shoal_client *c;
};

static int start(void **state, const char *memory)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(testd_start(&f->d, memory, NULL), 0);
	assert_int_equal(shoal_connect(f->d.socket, &f->c), 0);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return start(state, "256M");
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char msg[256];

	if (f->c)
		shoal_disconnect(f->c);
	if (testd_finish(&f->d, msg, sizeof(msg)) != 0)
		fail_msg("daemon check failed: %s", msg);
	free(f);
	return 0;
}

/* Creates and seals n zero-byte objects tag/0..n-1 on fd (which keeps
 * holding them). */
static void seal_many(int fd, uint8_t tag, uint32_t n)
{
	struct raw_msgs m = {0};

	raw_add_created(&m, tag, n, PROTO_SEAL_NOREPLY);
	assert_int_equal(raw_pipeline(fd, &m, n), 0);
	raw_free(&m);
}

/* Parks a GET of ids (n of them) on a new connection; returns it. */
static int park_get(const char *sock, const uint8_t *ids, uint32_t n)
{
	struct raw_msgs m = {0};
	int fd = raw_connect(sock);

	raw_add_get(&m, ids, n, -1);
	raw_write_all(fd, m.p, m.len);
	raw_free(&m);
	return fd;
}

/* Defect 1: parked GETs with large ID lists made every seal retry every
 * parked GET and re-check all of its IDs. 20 GETs of 65,536 IDs wait (one
 * ID absent each); 40 seals of unrelated objects, each awaited, must take
 * well under a second in all (they took ~0.1-0.3 s each). */
static void test_seals_ignore_unrelated_waiters(void **state)
{
	struct fx *f = *state;
	uint8_t *ids = malloc((size_t)BATCH * SHOAL_ID_SIZE);
	int owner = raw_connect(f->d.socket), getters[20];
	int state_;

	assert_non_null(ids);
	seal_many(owner, 0x11, BATCH - 1);
	for (uint32_t i = 0; i < BATCH - 1; i++)
		raw_id(ids + (size_t)i * SHOAL_ID_SIZE, 0x11, i);
	raw_id(ids + (size_t)(BATCH - 1) * SHOAL_ID_SIZE, 0x12, 0);
	for (int k = 0; k < 20; k++)
		getters[k] = park_get(f->d.socket, ids, BATCH);
	/* A round trip on another connection after the GETs were sent: the
	 * daemon has read (most of) them by now. */
	assert_int_equal(shoal_contains(f->c, (shoal_id *)ids, &state_), 0);
	uint64_t t0 = testd_now_ms();
	for (uint32_t i = 0; i < 40; i++) {
		shoal_id id;
		uint8_t *d;
		raw_id(id.bytes, 0x13, i);
		assert_int_equal(shoal_create(f->c, &id, 0, 0, 0, &d, NULL), 0);
		assert_int_equal(shoal_seal(f->c, &id), 0);
		assert_int_equal(shoal_release_id(f->c, &id), 0);
	}
	uint64_t took = testd_now_ms() - t0;
	if (took > 3000)
		fail_msg("40 seals took %llu ms beside 20 parked gets",
		         (unsigned long long)took);
	/* Sealing the absent ID answers every getter, all found. */
	shoal_id last;
	uint8_t *d;
	memcpy(last.bytes, ids + (size_t)(BATCH - 1) * SHOAL_ID_SIZE,
	       SHOAL_ID_SIZE);
	assert_int_equal(shoal_create(f->c, &last, 0, 0, 0, &d, NULL), 0);
	assert_int_equal(shoal_seal(f->c, &last), 0);
	for (int k = 0; k < 20; k++) {
		uint16_t type;
		assert_int_equal(raw_read_reply(getters[k], 10000, &type), 0);
		assert_int_equal(type, PROTO_GET | PROTO_REPLY);
		close(getters[k]);
	}
	assert_int_equal(shoal_release_id(f->c, &last), 0);
	close(owner);
	free(ids);
}

/* Defect 2: a departed creator's dropped IDs were matched against every
 * ID of every parked GET, in square time (4.5 s per getter here). Three
 * GETs of 65,536 absent IDs wait; another client creates 65,536 of them
 * unsealed and leaves. The getters are answered, and another client's
 * round trip is quick. */
static void test_dropped_ids_answer_quickly(void **state)
{
	struct fx *f = *state;
	uint8_t *ids = malloc((size_t)BATCH * SHOAL_ID_SIZE);
	struct raw_msgs m = {0};
	int getters[3];

	assert_non_null(ids);
	for (uint32_t i = 0; i < BATCH; i++)
		raw_id(ids + (size_t)i * SHOAL_ID_SIZE, 0x21, i);
	for (int k = 0; k < 3; k++)
		getters[k] = park_get(f->d.socket, ids, BATCH);
	int creator = raw_connect(f->d.socket);
	for (uint32_t i = 0; i < BATCH; i++)
		raw_add_create(&m, ids + (size_t)i * SHOAL_ID_SIZE, 0, 0);
	assert_int_equal(raw_pipeline(creator, &m, BATCH), 0);
	uint64_t t0 = testd_now_ms();
	close(creator);
	for (int k = 0; k < 3; k++) {
		uint16_t type;
		assert_int_equal(raw_read_reply(getters[k], 30000, &type), 0);
		assert_int_equal(type, PROTO_GET | PROTO_REPLY);
	}
	int st;
	assert_int_equal(shoal_contains(f->c, (shoal_id *)ids, &st), 0);
	assert_int_equal(st, SHOAL_STATE_ABSENT);
	uint64_t took = testd_now_ms() - t0;
	if (took > 6000)
		fail_msg("the daemon took %llu ms over 65,536 dropped IDs",
		         (unsigned long long)took);
	for (int k = 0; k < 3; k++)
		close(getters[k]);
	raw_free(&m);
	free(ids);
}

struct waiter {
	const char *sock;
	int64_t timeout;
};

/* Child: once a byte arrives on go, creates 100 MiB with the timeout;
 * exits 0 on success. Forked before the parent's clients connect, so that
 * it holds none of their sockets. */
static pid_t spawn_big_create(const char *sock, int64_t timeout, int go)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		shoal_client *c;
		shoal_id id;
		uint8_t *d;
		char b;
		if (read(go, &b, 1) != 1)
			_exit(101);
		memset(&id, 0x3b, sizeof(id));
		if (shoal_connect(sock, &c))
			_exit(100);
		int rc = shoal_create(c, &id, 100u << 20, 0, timeout, &d, NULL);
		if (rc == 0)
			rc = shoal_abort(c, &id);
		shoal_disconnect(c);
		_exit(rc == 0 ? 0 : 1);
	}
	return pid;
}

static void expect_exit0(pid_t pid, int timeout_ms)
{
	int st = testd_wait_pid(pid, timeout_ms);

	if (st == -1)
		fail_msg("child still running after %d ms", timeout_ms);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Gives the child time to park its create (if it has not, it simply
 * finds the space free later: the test cannot pass wrongly). */
static void let_it_park(void)
{
	usleep(300 * 1000);
}

/* Defect 3: a CREATE waiting for space was not woken when space became
 * evictable: it succeeded only at its deadline. Release and disconnect,
 * with a long timeout and with -1. */
static void test_create_woken_when_evictable(void **state)
{
	struct fx *f = *state;

	shoal_disconnect(f->c); /* no socket of ours in the child */
	f->c = NULL;
	for (int variant = 0; variant < 2; variant++) {
		shoal_client *a;
		shoal_id id;
		uint8_t *d;
		int go[2];
		assert_int_equal(pipe(go), 0);
		pid_t pid = spawn_big_create(f->d.socket, variant ? -1 : 20000,
		                             go[0]);
		close(go[0]);
		memset(&id, 0x3a, sizeof(id));
		assert_int_equal(shoal_connect(f->d.socket, &a), 0);
		assert_int_equal(
		        shoal_create(a, &id, 200u << 20, 0, 0, &d, NULL), 0);
		assert_int_equal(shoal_seal(a, &id), 0);
		assert_int_equal(write(go[1], "g", 1), 1);
		close(go[1]);
		let_it_park();
		if (variant == 0) {
			assert_int_equal(shoal_release_id(a, &id), 0);
			/* The release has no reply: a round trip makes sure
			 * the daemon has it. */
			int st;
			assert_int_equal(shoal_contains(a, &id, &st), 0);
			shoal_disconnect(a);
		} else {
			shoal_disconnect(a);
		}
		/* Woken at once, not at the 20 s deadline (or never). */
		expect_exit0(pid, 5000);
	}
}

/* Defect 4: parked creates rescanned the whole block list on every free.
 * 256k 64-byte objects, every other one aborted; 10 parked creates that
 * cannot fit; 20 small create+abort cycles must stay quick. */
static void test_frees_do_not_rescan_blocks(void **state)
{
	struct fx *f = *state;
	struct raw_msgs m = {0};
	const uint32_t n = 1u << 18;
	int owner = raw_connect(f->d.socket), parked[10];

	for (uint32_t i = 0; i < n; i++) {
		uint8_t id[SHOAL_ID_SIZE];
		raw_id(id, 0x41, i);
		raw_add_create(&m, id, 64, 0);
	}
	assert_int_equal(raw_pipeline(owner, &m, n), 0);
	raw_reset(&m);
	for (uint32_t i = 0; i < n; i += 2) {
		uint8_t id[SHOAL_ID_SIZE];
		raw_id(id, 0x41, i);
		raw_add_id_req(&m, PROTO_ABORT, id, 0);
	}
	assert_int_equal(raw_pipeline(owner, &m, n / 2), 0);
	for (int k = 0; k < 10; k++) {
		uint8_t id[SHOAL_ID_SIZE];
		parked[k] = raw_connect(f->d.socket);
		raw_reset(&m);
		raw_id(id, 0x42, (uint32_t)k);
		raw_add_create(&m, id, 250u << 20, -1);
		raw_write_all(parked[k], m.p, m.len);
	}
	int st;
	assert_int_equal(shoal_contains(f->c, (shoal_id *)m.p, &st), 0);
	uint64_t t0 = testd_now_ms();
	for (int i = 0; i < 20; i++) {
		shoal_id id;
		uint8_t *d;
		raw_id(id.bytes, 0x43, (uint32_t)i);
		assert_int_equal(shoal_create(f->c, &id, 64, 0, 0, &d, NULL),
		                 0);
		assert_int_equal(shoal_abort(f->c, &id), 0);
	}
	uint64_t took = testd_now_ms() - t0;
	if (took > 3000)
		fail_msg("20 create+abort cycles took %llu ms beside 10 parked "
		         "creates",
		         (unsigned long long)took);
	for (int k = 0; k < 10; k++)
		close(parked[k]);
	close(owner);
	raw_free(&m);
}

/* Starts a daemon of memory bytes with extra arguments (NULL-ended). */
static struct fx *start_with(const char *memory, ...)
{
	struct fx *f = calloc(1, sizeof(*f));
	const char *a[8] = {0};
	va_list ap;
	int n = 0;

	assert_non_null(f);
	va_start(ap, memory);
	for (const char *x; n < 7 && (x = va_arg(ap, const char *));)
		a[n++] = x;
	va_end(ap);
	assert_int_equal(testd_start(&f->d, memory, a[0], a[1], a[2], a[3],
	                             a[4], a[5], a[6], NULL),
	                 0);
	assert_int_equal(shoal_connect(f->d.socket, &f->c), 0);
	return f;
}

/* Whether the daemon has closed fd (EOF after any replies). */
static bool closed_within(int fd, int timeout_ms)
{
	uint64_t end = testd_now_ms() + (uint64_t)timeout_ms;
	char buf[4096];

	while (testd_now_ms() < end) {
		struct pollfd p = {fd, POLLIN, 0};
		if (poll(&p, 1, 100) == 1) {
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n == 0 ||
			    (n < 0 && errno != EINTR && errno != EAGAIN))
				return true;
		}
	}
	return false;
}

/* Defect 5: half-sent requests held the daemon's memory forever. With a
 * small budget for buffered requests, clients that stop half-way are
 * refused (SHOAL_ELIMIT) once it is spent and dropped at the input
 * deadline; so is a client that never says hello. Others go on. */
static void test_half_sent_requests_are_bounded(void **state)
{
	struct fx *f = start_with("16M", "--max-conn-memory", "6M",
	                          "--input-timeout", "2000", NULL);
	enum { N = 8 };
	int fds[N];
	size_t body = PROTO_MAX_REQUEST;
	uint8_t *buf = calloc(1, sizeof(struct proto_header) + body);
	struct proto_header h;
	int refused = 0, st;

	(void)state;
	assert_non_null(buf);
	proto_header_init(&h, PROTO_GET, 7, (uint32_t)body);
	memcpy(buf, &h, sizeof(h));
	int silent = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, f->d.socket, strlen(f->d.socket) + 1);
	assert_int_equal(connect(silent, (struct sockaddr *)&a, sizeof(a)), 0);
	for (int k = 0; k < N; k++) {
		fds[k] = raw_connect(f->d.socket);
		fcntl(fds[k], F_SETFL, O_NONBLOCK);
		size_t off = 0, want = sizeof(h) + body - 1;
		uint64_t end = testd_now_ms() + 1000;
		while (off < want && testd_now_ms() < end) {
			ssize_t w = write(fds[k], buf + off, want - off);
			if (w > 0)
				off += (size_t)w;
			else if (errno == EAGAIN)
				usleep(1000);
			else
				break; /* refused and closed */
		}
		/* The budget holds about two: later ones are told
		 * SHOAL_ELIMIT (or, if the close overtakes the reply, reset).
		 */
		struct pollfd p = {fds[k], POLLIN, 0};
		if (poll(&p, 1, 100) == 1) {
			struct {
				struct proto_header h;
				struct proto_reply r;
			} rep;
			fcntl(fds[k], F_SETFL, 0);
			ssize_t n =
			        recv(fds[k], &rep, sizeof(rep), MSG_WAITALL);
			if (n == (ssize_t)sizeof(rep))
				assert_int_equal(rep.r.status, SHOAL_ELIMIT);
			else
				assert_true(n < 0 && errno == ECONNRESET);
			refused++;
		}
		assert_int_equal(shoal_contains(f->c, (shoal_id *)buf, &st), 0);
	}
	assert_true(refused >= N - 4);
	/* The rest are dropped at the input deadline, the silent one too. */
	for (int k = 0; k < N; k++) {
		assert_true(closed_within(fds[k], 5000));
		close(fds[k]);
	}
	assert_true(closed_within(silent, 5000));
	close(silent);
	/* An idle client that finished its requests is not dropped. */
	usleep(700 * 1000);
	assert_int_equal(shoal_contains(f->c, (shoal_id *)buf, &st), 0);
	free(buf);
	*state = f;
	teardown(state);
}

/* Defect 5: connections were not limited. */
static void test_client_count_is_bounded(void **state)
{
	struct fx *f = start_with("16M", "--max-clients", "3", NULL);
	shoal_client *b, *c;

	(void)state;
	assert_int_equal(shoal_connect(f->d.socket, &b), 0);
	assert_int_equal(shoal_connect(f->d.socket, &c), 0);
	/* f->c, b and c: three. The teardown's check needs a fourth. */
	shoal_client *d = NULL;
	assert_int_equal(shoal_connect(f->d.socket, &d), SHOAL_ELIMIT);
	shoal_disconnect(c);
	/* The daemon sees the disconnect before the next hello. */
	uint64_t end = testd_now_ms() + 5000;
	int rc;
	while ((rc = shoal_connect(f->d.socket, &d)) == SHOAL_ELIMIT &&
	       testd_now_ms() < end)
		usleep(10000);
	assert_int_equal(rc, 0);
	shoal_disconnect(d);
	shoal_disconnect(b);
	*state = f;
	teardown(state);
}

/* Defect 5: names took the daemon's heap without limit. */
static void test_names_are_bounded(void **state)
{
	struct fx *f = start_with("16M", "--max-names", "100",
	                          "--max-name-memory", "32K", NULL);
	shoal_id id;
	uint8_t *d;
	char name[1024];
	int rc = 0, made = 0;

	(void)state;
	memset(&id, 0x5b, sizeof(id));
	assert_int_equal(shoal_create(f->c, &id, 10, 0, 0, &d, NULL), 0);
	assert_int_equal(shoal_seal(f->c, &id), 0);
	for (int i = 0; i < 100 && rc == 0; i++) {
		int n = snprintf(name, sizeof(name), "short-%d", i);
		rc = shoal_set_name(f->c, name, (size_t)n, &id, NULL, NULL);
		made += rc == 0;
	}
	assert_int_equal(made, 100);
	assert_int_equal(shoal_set_name(f->c, "one-more", 8, &id, NULL, NULL),
	                 SHOAL_ELIMIT);
	/* Replacing an existing name takes nothing new. */
	assert_int_equal(shoal_set_name(f->c, "short-1", 7, &id, NULL, NULL),
	                 0);
	/* Bytes: the budget leaves room for few long names. (One short name
	 * stays: the object goes with its last name.) */
	for (int i = 1; i < 100; i++) {
		int n = snprintf(name, sizeof(name), "short-%d", i);
		assert_int_equal(shoal_delete_name(f->c, name, (size_t)n, NULL),
		                 0);
	}
	memset(name, 'n', sizeof(name));
	made = 0;
	rc = 0;
	for (int i = 0; i < 100 && rc == 0; i++) {
		snprintf(name, 8, "%07d", i);
		name[7] = 'n';
		rc = shoal_set_name(f->c, name, sizeof(name), &id, NULL, NULL);
		made += rc == 0;
	}
	assert_int_equal(rc, SHOAL_ELIMIT);
	assert_true(made > 10 && made < 32);
	assert_int_equal(shoal_release_id(f->c, &id), 0);
	*state = f;
	teardown(state);
}

/* Defect 5: objects (metadata in the daemon's heap) were not limited. At
 * the limit, evictable objects make room; held ones do not. */
static void test_objects_are_bounded(void **state)
{
	struct fx *f = start_with("16M", "--max-objects", "500", NULL);
	struct raw_msgs m = {0};
	int owner = raw_connect(f->d.socket);
	shoal_id id;
	uint8_t *d;

	(void)state;
	for (uint32_t i = 0; i < 500; i++) {
		uint8_t x[SHOAL_ID_SIZE];
		raw_id(x, 0x5d, i);
		raw_add_create(&m, x, 0, 0);
	}
	assert_int_equal(raw_pipeline(owner, &m, 500), 0);
	raw_id(id.bytes, 0x5e, 0);
	assert_int_equal(shoal_create(f->c, &id, 0, 0, 0, &d, NULL),
	                 SHOAL_ELIMIT);
	/* Seal them (the owner still holds them): still no room. */
	raw_reset(&m);
	for (uint32_t i = 0; i < 500; i++) {
		uint8_t x[SHOAL_ID_SIZE];
		raw_id(x, 0x5d, i);
		raw_add_id_req(&m, PROTO_SEAL, x, 0);
	}
	assert_int_equal(raw_pipeline(owner, &m, 500), 0);
	assert_int_equal(shoal_create(f->c, &id, 0, 0, 0, &d, NULL),
	                 SHOAL_ELIMIT);
	/* The owner leaves: its objects become evictable, and a create
	 * evicts the least recently released one. */
	close(owner);
	uint64_t end = testd_now_ms() + 5000;
	int rc;
	while ((rc = shoal_create(f->c, &id, 0, 0, 0, &d, NULL)) ==
	               SHOAL_ELIMIT &&
	       testd_now_ms() < end)
		usleep(10000);
	assert_int_equal(rc, 0);
	shoal_stats s;
	assert_int_equal(shoal_get_stats(f->c, &s), 0);
	assert_int_equal(s.evictions, 1);
	assert_int_equal(shoal_abort(f->c, &id), 0);
	raw_free(&m);
	*state = f;
	teardown(state);
}

/* Defect 5: a SNAPSHOT was queued whole, past the event queue, in one
 * turn. Now a subscriber gets all of it as it reads, with a small event
 * queue, and is not dropped for overflow; a subscriber that never reads
 * does not hold the whole snapshot. */
static void test_snapshot_follows_the_reader(void **state)
{
	struct fx *f = start_with("16M", "--event-queue", "64K", NULL);
	shoal_id id;
	uint8_t *d;
	char name[64];
	enum { NAMES = 5000 };

	(void)state;
	memset(&id, 0x5c, sizeof(id));
	assert_int_equal(shoal_create(f->c, &id, 10, 0, 0, &d, NULL), 0);
	assert_int_equal(shoal_seal(f->c, &id), 0);
	for (int i = 0; i < NAMES; i++) {
		int n = snprintf(name, sizeof(name), "snap-%d", i);
		assert_int_equal(
		        shoal_set_name(f->c, name, (size_t)n, &id, NULL, NULL),
		        0);
	}
	/* One that never reads. */
	int idle = raw_connect(f->d.socket);
	struct raw_msgs m = {0};
	struct proto_subscribe sub = {.flags = PROTO_SUBSCRIBE_SNAPSHOT};
	memcpy(raw_add(&m, PROTO_SUBSCRIBE, sizeof(sub)), &sub, sizeof(sub));
	raw_write_all(idle, m.p, m.len);
	/* One that reads. */
	shoal_subscription *s;
	shoal_event ev;
	int names = 0, sealed = 0;
	assert_int_equal(
	        shoal_subscribe(f->d.socket, SHOAL_SUBSCRIBE_SNAPSHOT, &s), 0);
	for (;;) {
		assert_int_equal(shoal_next_event(s, 10000, &ev), 0);
		if (ev.kind == SHOAL_EVENT_SNAPSHOT_END)
			break;
		names += ev.kind == SHOAL_EVENT_NAME_SET;
		sealed += ev.kind == SHOAL_EVENT_SEALED;
	}
	assert_int_equal(names, NAMES);
	assert_int_equal(sealed, 1);
	/* Live events follow. */
	assert_int_equal(shoal_set_name(f->c, "after", 5, &id, NULL, NULL), 0);
	assert_int_equal(shoal_next_event(s, 10000, &ev), 0);
	assert_int_equal(ev.kind, SHOAL_EVENT_NAME_SET);
	assert_string_equal(ev.name, "after");
	shoal_unsubscribe(s);
	int st;
	assert_int_equal(shoal_contains(f->c, &id, &st), 0);
	close(idle);
	assert_int_equal(shoal_release_id(f->c, &id), 0);
	raw_free(&m);
	*state = f;
	teardown(state);
}

/* Defect 10: the daemon and docs/PROTOCOL.md disagreed. */
static void test_protocol_doc_deviations(void **state)
{
	struct fx *f = *state;
	struct raw_msgs m = {0};
	uint16_t type;

	/* An unknown type before HELLO: an error reply, then close. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	memcpy(a.sun_path, f->d.socket, strlen(f->d.socket) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	(void)raw_add(&m, 999, 0);
	raw_write_all(fd, m.p, m.len);
	assert_int_equal(raw_read_reply(fd, 5000, &type), SHOAL_EPROTO);
	assert_true(closed_within(fd, 5000));
	close(fd);
	/* RELEASE of more than 65,536 handles: ETOOBIG. */
	fd = raw_connect(f->d.socket);
	raw_reset(&m);
	uint32_t n = SHOAL_BATCH_MAX + 1;
	struct proto_release rel = {.count = n};
	uint8_t *b = raw_add(&m, PROTO_RELEASE, sizeof(rel) + (size_t)n * 8);
	memcpy(b, &rel, sizeof(rel));
	raw_write_all(fd, m.p, m.len);
	assert_int_equal(raw_read_reply(fd, 5000, &type), SHOAL_ETOOBIG);
	assert_int_equal(type, PROTO_RELEASE | PROTO_REPLY);
	/* Negative timeouts other than -1: EINVAL, for each waiting type. */
	uint8_t id[SHOAL_ID_SIZE];
	raw_id(id, 0x61, 0);
	raw_reset(&m);
	raw_add_get(&m, id, 1, -2);
	raw_add_create(&m, id, 10, -5);
	struct proto_get_name gn = {.timeout_ms = INT64_MIN, .name_len = 1};
	b = raw_add(&m, PROTO_GET_NAME, sizeof(gn) + 1);
	memcpy(b, &gn, sizeof(gn));
	b[sizeof(gn)] = 'x';
	raw_write_all(fd, m.p, m.len);
	for (int i = 0; i < 3; i++)
		assert_int_equal(raw_read_reply(fd, 5000, NULL), SHOAL_EINVAL);
	/* -1 still waits: a get of an absent ID with -1 is not answered. */
	raw_reset(&m);
	raw_add_get(&m, id, 1, -1);
	raw_write_all(fd, m.p, m.len);
	struct pollfd p = {fd, POLLIN, 0};
	assert_int_equal(poll(&p, 1, 300), 0);
	close(fd);
	raw_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_seals_ignore_unrelated_waiters),
	        T(test_dropped_ids_answer_quickly),
	        T(test_frees_do_not_rescan_blocks),
	        T(test_create_woken_when_evictable),
	        T(test_protocol_doc_deviations),
#undef T
	        cmocka_unit_test(test_half_sent_requests_are_bounded),
	        cmocka_unit_test(test_client_count_is_bounded),
	        cmocka_unit_test(test_names_are_bounded),
	        cmocka_unit_test(test_objects_are_bounded),
	        cmocka_unit_test(test_snapshot_follows_the_reader),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("attacks", tests, NULL, NULL);
}
