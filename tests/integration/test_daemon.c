/*
 * test_daemon.c - integration tests: a real `shoal serve` per test on a
 * temporary socket, driven through the public C API from several processes.
 * Every wait has a deadline; every test ends with the daemon's own
 * consistency check and a clean SIGTERM exit.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "protocol.h"
#include "shoal.h"
#include "fixture.h"
#include "testd.h"

static int setup(void **state)
{
	return fx_setup(state, "16M", NULL);
}

static void id_of(shoal_id *id, unsigned n)
{
	testd_id(id, 0xab, n);
}

/* Puts n bytes of value v under object k. */
static void put_fill(shoal_client *c, unsigned k, size_t n, int v)
{
	shoal_id id;
	uint8_t *data, *meta;

	/* Small objects carry 3 bytes of metadata; large ones none, so that
	 * a put of the whole capacity fits exactly. */
	uint32_t m = n < (1u << 20) ? 3 : 0;
	id_of(&id, k);
	assert_int_equal(shoal_create(c, &id, n, m, 0, &data, &meta), 0);
	memset(data, v, n);
	if (m)
		memcpy(meta, "abc", 3);
	assert_int_equal(shoal_seal(c, &id), 0);
	assert_int_equal(shoal_release_id(c, &id), 0);
}

static bool all_bytes(const uint8_t *p, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)v)
			return false;
	return true;
}

static shoal_stats stats(shoal_client *c)
{
	shoal_stats s;

	assert_int_equal(shoal_get_stats(c, &s), 0);
	return s;
}

/* Runs fn in a child process with its own connection; returns its pid. */
static pid_t spawn(const char *socket, void (*fn)(shoal_client *, void *),
                   void *arg)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		shoal_client *c;
		if (shoal_connect(socket, &c) != 0)
			_exit(100);
		fn(c, arg);
		shoal_disconnect(c);
		_exit(0);
	}
	return pid;
}

static void expect_exit0(pid_t pid, int timeout_ms)
{
	int st = testd_wait_pid(pid, timeout_ms);

	assert_true(st != -1);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void child_put(shoal_client *c, void *arg)
{
	put_fill(c, *(unsigned *)arg, 100000, 7);
}

static void test_cross_process_roundtrip(void **state)
{
	struct fx *f = *state;
	unsigned k = 1;
	shoal_view v;
	shoal_id id;

	expect_exit0(spawn(f->d.socket, child_put, &k), 10000);
	id_of(&id, 1);
	assert_int_equal(shoal_get(f->c, &id, 1, 0, &v), 0);
	assert_int_equal(v.status, 0);
	assert_int_equal(v.data_size, 100000);
	assert_int_equal(v.metadata_size, 3);
	assert_memory_equal(v.metadata, "abc", 3);
	assert_true(all_bytes(v.data, v.data_size, 7));
	assert_int_equal((uintptr_t)v.data % 64, 0);
	assert_int_equal(shoal_release(f->c, &v), 0);
}

static void test_get_timeouts_and_duplicates(void **state)
{
	struct fx *f = *state;
	shoal_id ids[3];
	shoal_view v[3];

	id_of(&ids[0], 1);
	id_of(&ids[1], 2);
	put_fill(f->c, 1, 10, 1);
	/* Poll: the missing object is reported, the present one returned. */
	assert_int_equal(shoal_get(f->c, ids, 2, 0, v), 0);
	assert_int_equal(v[0].status, 0);
	assert_int_equal(v[1].status, SHOAL_ENOTFOUND);
	shoal_release(f->c, &v[0]);
	/* A bounded wait ends near its deadline. */
	uint64_t t0 = testd_now_ms();
	assert_int_equal(shoal_get(f->c, &ids[1], 1, 200, v), 0);
	uint64_t waited = testd_now_ms() - t0;
	assert_int_equal(v[0].status, SHOAL_ENOTFOUND);
	assert_true(waited >= 190 && waited < 5000);
	/* Duplicate IDs: each view counts and is released on its own. */
	ids[1] = ids[0];
	ids[2] = ids[0];
	assert_int_equal(shoal_get(f->c, ids, 3, 0, v), 0);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(v[i].status, 0);
		assert_ptr_equal(v[i].data, v[0].data);
	}
	shoal_release(f->c, &v[0]);
	shoal_release(f->c, &v[1]);
	assert_int_equal(shoal_delete(f->c, ids, 1, NULL), 0);
	/* Still held by the third view: memory is not freed yet. */
	assert_int_equal(stats(f->c).pending_deletes, 1);
	shoal_release(f->c, &v[2]);
	assert_int_equal(stats(f->c).pending_deletes, 0);
	assert_int_equal(stats(f->c).used_bytes, 0);
}

static void child_delayed_put(shoal_client *c, void *arg)
{
	usleep(150000);
	put_fill(c, *(unsigned *)arg, 4096, 9);
}

static void test_get_waits_for_seal(void **state)
{
	struct fx *f = *state;
	unsigned k = 5;
	shoal_view v;
	shoal_id id;

	id_of(&id, 5);
	pid_t pid = spawn(f->d.socket, child_delayed_put, &k);
	assert_int_equal(shoal_get(f->c, &id, 1, 10000, &v), 0);
	assert_int_equal(v.status, 0);
	assert_true(all_bytes(v.data, 4096, 9));
	shoal_release(f->c, &v);
	expect_exit0(pid, 10000);
}

/* Creates object k and then blocks (to be killed mid-create). */
static void child_create_and_hang(shoal_client *c, void *arg)
{
	shoal_id id;
	uint8_t *data;

	id_of(&id, *(unsigned *)arg);
	if (shoal_create(c, &id, 1 << 20, 0, 0, &data, NULL) != 0)
		_exit(3);
	memset(data, 1, 1000);
	pause();
}

static void test_creator_killed_mid_create(void **state)
{
	struct fx *f = *state;
	unsigned k = 9;
	shoal_view v;
	shoal_id id;
	int st;

	id_of(&id, 9);
	pid_t pid = spawn(f->d.socket, child_create_and_hang, &k);
	uint64_t end = testd_now_ms() + 10000;
	do {
		assert_int_equal(shoal_contains(f->c, &id, &st), 0);
		assert_true(testd_now_ms() < end);
		usleep(1000);
	} while (st != SHOAL_STATE_CREATED);
	/* A getter waiting forever is answered as soon as the creator dies. */
	pid_t killer = fork();
	if (killer == 0) {
		usleep(100000);
		kill(pid, SIGKILL);
		_exit(0);
	}
	uint64_t t0 = testd_now_ms();
	assert_int_equal(shoal_get(f->c, &id, 1, 20000, &v), 0);
	assert_int_equal(v.status, SHOAL_ENOTFOUND);
	assert_true(testd_now_ms() - t0 < 10000);
	testd_wait_pid(pid, 5000);
	expect_exit0(killer, 5000);
	assert_int_equal(shoal_contains(f->c, &id, &st), 0);
	assert_int_equal(st, SHOAL_STATE_ABSENT);
	assert_int_equal(stats(f->c).used_bytes, 0);
	/* The ID is free again. */
	put_fill(f->c, 9, 10, 1);
}

static void child_wait_forever(shoal_client *c, void *arg)
{
	shoal_id id;
	shoal_view v;

	id_of(&id, *(unsigned *)arg);
	shoal_get(c, &id, 1, -1, &v);
	_exit(5);
}

static void child_hold(shoal_client *c, void *arg)
{
	shoal_id id;
	shoal_view v;

	id_of(&id, *(unsigned *)arg);
	if (shoal_get(c, &id, 1, 0, &v) != 0 || v.status != 0)
		_exit(4);
	pause();
}

static void test_killed_while_waiting_or_holding(void **state)
{
	struct fx *f = *state;
	unsigned missing = 77, present = 1;

	put_fill(f->c, 1, 5000, 3);
	pid_t waiter = spawn(f->d.socket, child_wait_forever, &missing);
	pid_t holder = spawn(f->d.socket, child_hold, &present);
	uint64_t end = testd_now_ms() + 10000;
	while (stats(f->c).clients < 3)
		assert_true(testd_now_ms() < end);
	usleep(50000);
	shoal_id id;
	id_of(&id, 1);
	assert_int_equal(shoal_delete(f->c, &id, 1, NULL), 0);
	assert_int_equal(stats(f->c).pending_deletes, 1);
	kill(waiter, SIGKILL);
	kill(holder, SIGKILL);
	testd_wait_pid(waiter, 5000);
	testd_wait_pid(holder, 5000);
	end = testd_now_ms() + 10000;
	while (stats(f->c).clients > 1)
		assert_true(testd_now_ms() < end);
	assert_int_equal(stats(f->c).pending_deletes, 0);
	assert_int_equal(stats(f->c).used_bytes, 0);
}

static void test_create_larger_than_store(void **state)
{
	struct fx *f = *state;
	shoal_stats s = stats(f->c);
	shoal_id id;
	uint8_t *data;

	id_of(&id, 1);
	assert_int_equal(shoal_create(f->c, &id, s.capacity_bytes + 1, 0, 0,
	                              &data, NULL),
	                 SHOAL_EFULL);
	assert_int_equal(
	        shoal_create(f->c, &id, s.capacity_bytes, 0, 0, &data, NULL),
	        0);
	data[0] = 1;
	data[s.capacity_bytes - 1] = 2;
	assert_int_equal(shoal_abort(f->c, &id), 0);
	assert_int_equal(stats(f->c).used_bytes, 0);
}

static void test_full_evicts_nothing(void **state)
{
	struct fx *f = *state;
	uint64_t cap = stats(f->c).capacity_bytes;
	shoal_id ids[2];
	shoal_view v;
	uint8_t *data;

	put_fill(f->c, 1, cap / 2, 1);
	put_fill(f->c, 2, cap / 2, 2);
	id_of(&ids[0], 1);
	id_of(&ids[1], 3);
	assert_int_equal(shoal_get(f->c, &ids[0], 1, 0, &v), 0);
	assert_int_equal(
	        shoal_create(f->c, &ids[1], cap / 2 + 1, 0, 0, &data, NULL),
	        SHOAL_EFULL);
	assert_int_equal(stats(f->c).evictions, 0);
	assert_int_equal(stats(f->c).objects, 2);
	/* What eviction can free does fit, and evicts exactly object 2. */
	assert_int_equal(
	        shoal_create(f->c, &ids[1], cap / 2, 0, 0, &data, NULL), 0);
	assert_int_equal(stats(f->c).evictions, 1);
	assert_int_equal(stats(f->c).evicted_bytes, cap / 2);
	assert_true(all_bytes(v.data, cap / 2, 1));
	shoal_release(f->c, &v);
	assert_int_equal(shoal_abort(f->c, &ids[1]), 0);
}

static void child_hold_briefly(shoal_client *c, void *arg)
{
	shoal_id id;
	shoal_view v;

	id_of(&id, *(unsigned *)arg);
	if (shoal_get(c, &id, 1, 0, &v) != 0 || v.status != 0)
		_exit(4);
	usleep(400000);
}

static void test_create_waits_for_space(void **state)
{
	struct fx *f = *state;
	uint64_t cap = stats(f->c).capacity_bytes;
	unsigned k = 1;
	shoal_object_info info;
	uint64_t cursor;
	shoal_id id;
	uint8_t *data;
	size_t n;

	put_fill(f->c, 1, cap, 1);
	pid_t pid = spawn(f->d.socket, child_hold_briefly, &k);
	uint64_t end = testd_now_ms() + 10000;
	do {
		cursor = 0;
		assert_int_equal(shoal_list(f->c, &cursor, &info, 1, &n), 0);
		assert_true(testd_now_ms() < end);
	} while (n != 1 || info.holders != 1);
	/* Held: it cannot be evicted; a bounded wait runs out. */
	id_of(&id, 2);
	uint64_t t0 = testd_now_ms();
	assert_int_equal(shoal_create(f->c, &id, 1000, 0, 100, &data, NULL),
	                 SHOAL_EFULL);
	assert_true(testd_now_ms() - t0 >= 90);
	assert_int_equal(stats(f->c).evictions, 0);
	/* A longer wait succeeds once the holder leaves. */
	assert_int_equal(shoal_create(f->c, &id, cap, 0, 10000, &data, NULL),
	                 0);
	assert_int_equal(stats(f->c).evictions, 1);
	assert_int_equal(shoal_abort(f->c, &id), 0);
	expect_exit0(pid, 5000);
}

/* Writer: replaces name "frame" n times with objects filled by version. */
static void child_writer(shoal_client *c, void *arg)
{
	int n = *(int *)arg;

	for (int i = 1; i <= n; i++) {
		shoal_id id;
		uint8_t *data;
		if (shoal_id_random(&id) ||
		    shoal_create(c, &id, 65536, 0, -1, &data, NULL))
			_exit(7);
		memset(data, i & 0xff, 65536);
		if (shoal_seal(c, &id) ||
		    shoal_set_name(c, "frame", 5, &id, NULL, NULL) ||
		    shoal_release_id(c, &id))
			_exit(8);
	}
}

static void child_reader(shoal_client *c, void *arg)
{
	int n = *(int *)arg;
	uint64_t last = 0;

	for (int i = 0; i < n; i++) {
		shoal_view v;
		uint64_t version;
		if (shoal_get_name(c, "frame", 5, 5000, &v, &version) != 0)
			_exit(9); /* never "not found" once set */
		if (v.data_size != 65536 ||
		    !all_bytes(v.data, 65536, v.data[0]))
			_exit(10); /* torn or changed under the reader */
		if (version < last)
			_exit(11);
		last = version;
		shoal_release(c, &v);
	}
}

static void test_atomic_name_replacement(void **state)
{
	struct fx *f = *state;
	int writes = 2000, reads = 3000;
	pid_t r[3];

	put_fill(f->c, 1, 65536, 0);
	shoal_id id;
	id_of(&id, 1);
	assert_int_equal(shoal_set_name(f->c, "frame", 5, &id, NULL, NULL), 0);
	pid_t w = spawn(f->d.socket, child_writer, &writes);
	for (int i = 0; i < 3; i++)
		r[i] = spawn(f->d.socket, child_reader, &reads);
	expect_exit0(w, 60000);
	for (int i = 0; i < 3; i++)
		expect_exit0(r[i], 60000);
	/* Only the last frame remains. */
	shoal_stats s = stats(f->c);
	assert_int_equal(s.names, 1);
	assert_int_equal(s.objects, 1);
	assert_int_equal(s.used_bytes, 65536);
}

static void test_names_cas_and_wait(void **state)
{
	struct fx *f = *state;
	shoal_id a, b;
	uint64_t v1, v2, zero = 0;
	shoal_view v;

	put_fill(f->c, 1, 100, 1);
	put_fill(f->c, 2, 200, 2);
	id_of(&a, 1);
	id_of(&b, 2);
	assert_int_equal(shoal_set_name(f->c, "x", 1, &a, &zero, &v1), 0);
	assert_int_equal(shoal_set_name(f->c, "x", 1, &b, &zero, NULL),
	                 SHOAL_EVERSION);
	assert_int_equal(shoal_set_name(f->c, "x", 1, &b, &v1, &v2), 0);
	assert_int_equal(shoal_get_name(f->c, "x", 1, 0, &v, NULL), 0);
	assert_int_equal(v.data_size, 200);
	shoal_release(f->c, &v);
	assert_int_equal(shoal_get_name(f->c, "nope", 4, 0, &v, NULL),
	                 SHOAL_ENOTFOUND);
	assert_int_equal(shoal_get_name(f->c, "x\xff", 2, 0, &v, NULL),
	                 SHOAL_EINVAL);
	assert_int_equal(shoal_get_name(f->c, "", 0, 0, &v, NULL),
	                 SHOAL_EINVAL);
	char longname[SHOAL_NAME_MAX + 2];
	memset(longname, 'a', sizeof(longname));
	assert_int_equal(
	        shoal_set_name(f->c, longname, SHOAL_NAME_MAX, &b, NULL, NULL),
	        0);
	assert_int_equal(shoal_set_name(f->c, longname, SHOAL_NAME_MAX + 1, &b,
	                                NULL, NULL),
	                 SHOAL_ETOOBIG);
	/* Wait for a name that another process sets later. */
	pid_t pid = fork();
	if (pid == 0) {
		shoal_client *c;
		usleep(100000);
		if (shoal_connect(f->d.socket, &c))
			_exit(1);
		put_fill(c, 3, 300, 3);
		shoal_id id;
		id_of(&id, 3);
		_exit(shoal_set_name(c, "later", 5, &id, NULL, NULL) ? 2 : 0);
	}
	assert_int_equal(shoal_get_name(f->c, "later", 5, 10000, &v, NULL), 0);
	assert_int_equal(v.data_size, 300);
	shoal_release(f->c, &v);
	expect_exit0(pid, 5000);
	/* Listing names page by page. */
	uint64_t cursor = 0;
	size_t total = 0, n;
	shoal_name_info *info = calloc(2, sizeof(*info));
	char bytes[SHOAL_NAMES_SIZE(2)];
	do {
		assert_int_equal(shoal_list_names(f->c, &cursor, info, 2, bytes,
		                                  sizeof(bytes), &n),
		                 0);
		total += n;
	} while (cursor);
	free(info);
	assert_int_equal(total, 3);
}

static void test_list_objects(void **state)
{
	struct fx *f = *state;
	shoal_object_info info[7];
	uint64_t cursor = 0;
	size_t n, total = 0;

	for (unsigned i = 0; i < 20; i++)
		put_fill(f->c, i, i * 10, 1);
	do {
		assert_int_equal(shoal_list(f->c, &cursor, info, 7, &n), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(info[i].state, SHOAL_STATE_SEALED);
		total += n;
	} while (cursor);
	assert_int_equal(total, 20);
	uint64_t freed;
	assert_int_equal(shoal_evict(f->c, UINT64_MAX, &freed), 0);
	assert_true(freed > 0);
	assert_int_equal(stats(f->c).objects, 0);
}

/* Raw connection: sends bytes, returns the fd. */
static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

static void test_garbage_and_half_messages(void **state)
{
	struct fx *f = *state;
	uint8_t junk[4096];
	int g = raw_connect(f->d.socket);
	int half = raw_connect(f->d.socket);
	int big = raw_connect(f->d.socket);

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 7 + 3);
	assert_int_equal(write(g, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	/* Half a header from one client, half a body from another. */
	struct proto_header h;
	proto_header_init(&h, PROTO_HELLO, 1, 16);
	assert_int_equal(write(half, &h, 10), 10);
	proto_header_init(&h, PROTO_HELLO, 1, PROTO_MAX_REQUEST + 1);
	assert_int_equal(write(big, &h, sizeof(h)), (ssize_t)sizeof(h));
	/* Everyone else is served normally meanwhile. */
	put_fill(f->c, 1, 1000, 1);
	shoal_id id;
	shoal_view v;
	id_of(&id, 1);
	assert_int_equal(shoal_get(f->c, &id, 1, 0, &v), 0);
	shoal_release(f->c, &v);
	/* The garbage and oversized clients are closed by the daemon. */
	char buf[256];
	for (int fd = g; fd; fd = fd == g ? big : 0) {
		ssize_t n;
		uint64_t end = testd_now_ms() + 5000;
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			assert_true(testd_now_ms() < end);
		assert_int_equal(n, 0);
	}
	close(g);
	close(big);
	close(half);
	/* Unknown type after hello: an error reply, the connection lives. */
	shoal_client *c2;
	assert_int_equal(shoal_connect(f->d.socket, &c2), 0);
	shoal_disconnect(c2);
}

static void test_fork_detected(void **state)
{
	struct fx *f = *state;
	shoal_stats s;

	pid_t pid = fork();
	if (pid == 0) {
		int rc = shoal_get_stats(f->c, &s);
		shoal_disconnect(f->c); /* frees locally, sends nothing */
		_exit(rc == SHOAL_EFORKED ? 0 : 1);
	}
	expect_exit0(pid, 5000);
	/* The parent's connection is untouched. */
	assert_int_equal(shoal_get_stats(f->c, &s), 0);
}

static void test_mixed_cycles_keep_capacity(void **state)
{
	struct fx *f = *state;
	uint64_t cap = stats(f->c).capacity_bytes;
	shoal_id ids[64];
	bool live[64] = {false};
	unsigned seed = 42;

	for (int i = 0; i < 64; i++)
		id_of(&ids[i], (unsigned)i + 1000);
	for (int i = 0; i < 20000; i++) {
		int k = rand_r(&seed) % 64;
		if (live[k]) {
			assert_int_equal(shoal_delete(f->c, &ids[k], 1, NULL),
			                 0);
			live[k] = false;
		} else {
			uint8_t *data;
			uint64_t size = (uint64_t)rand_r(&seed) % (cap / 32);
			int rc = shoal_create(f->c, &ids[k], size, 0, 0, &data,
			                      NULL);
			if (rc == SHOAL_EFULL)
				continue;
			assert_int_equal(rc, 0);
			assert_int_equal(shoal_seal(f->c, &ids[k]), 0);
			assert_int_equal(shoal_release_id(f->c, &ids[k]), 0);
			live[k] = true;
		}
	}
	uint64_t freed;
	assert_int_equal(shoal_evict(f->c, UINT64_MAX, &freed), 0);
	shoal_stats s = stats(f->c);
	assert_int_equal(s.used_bytes, 0);
	assert_int_equal(s.largest_free, cap);
	/* The whole capacity is one object again. */
	put_fill(f->c, 1, cap, 5);
}

static void test_daemon_gone(void **state)
{
	struct fx *f = *state;
	shoal_stats s;

	put_fill(f->c, 1, 10, 1);
	assert_int_equal(testd_stop(&f->d), 0);
	assert_int_equal(shoal_get_stats(f->c, &s), SHOAL_EUNAVAILABLE);
	assert_int_equal(shoal_get_stats(f->c, &s), SHOAL_EUNAVAILABLE);
	shoal_disconnect(f->c);
	f->c = NULL;
	assert_int_equal(shoal_connect(f->d.socket, &f->c), SHOAL_EUNAVAILABLE);
	/* A new daemon on the same path: connecting works again. */
	struct testd d2 = f->d;
	assert_int_equal(testd_start(&f->d, "4M", NULL), 0);
	(void)d2;
	assert_int_equal(shoal_connect(f->d.socket, &f->c), 0);
	assert_int_equal(shoal_get_stats(f->c, &s), 0);
	assert_int_equal(s.objects, 0);
}

/* Holders of object k as another client sees them. */
static uint32_t holders_of(shoal_client *c, unsigned k)
{
	shoal_object_info info[64];
	uint64_t cursor = 0;
	size_t n;
	shoal_id id;

	id_of(&id, k);
	do {
		assert_int_equal(shoal_list(c, &cursor, info, 64, &n), 0);
		for (size_t i = 0; i < n; i++)
			if (memcmp(info[i].id.bytes, id.bytes, SHOAL_ID_SIZE) ==
			    0)
				return info[i].holders;
	} while (cursor);
	fail_msg("object %u not listed", k);
	return 0;
}

static void test_release_batching_is_bounded(void **state)
{
	struct fx *f = *state;
	shoal_client *other;
	shoal_view v[100];
	shoal_id id;

	assert_int_equal(shoal_connect(f->d.socket, &other), 0);
	for (unsigned k = 0; k < 100; k++)
		put_fill(f->c, k, 100, 1);
	put_fill(f->c, 1000, 1 << 20, 2);
	/* A small object's release waits for this client's next request. */
	id_of(&id, 0);
	assert_int_equal(shoal_get(f->c, &id, 1, 0, &v[0]), 0);
	shoal_release(f->c, &v[0]);
	assert_int_equal(holders_of(other, 0), 1);
	shoal_stats st;
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	assert_int_equal(holders_of(other, 0), 0);
	/* A large object's release goes at once. */
	id_of(&id, 1000);
	assert_int_equal(shoal_get(f->c, &id, 1, 0, &v[0]), 0);
	shoal_release(f->c, &v[0]);
	uint64_t end = testd_now_ms() + 5000;
	while (holders_of(other, 1000) != 0)
		assert_true(testd_now_ms() < end);
	/* No more than 64 small releases wait. */
	for (unsigned k = 0; k < 100; k++) {
		id_of(&id, k);
		assert_int_equal(shoal_get(f->c, &id, 1, 0, &v[k]), 0);
	}
	for (unsigned k = 0; k < 100; k++)
		shoal_release(f->c, &v[k]);
	unsigned pinned = 0;
	end = testd_now_ms() + 5000;
	do {
		pinned = 0;
		for (unsigned k = 0; k < 100; k++)
			pinned += holders_of(other, k);
		assert_true(testd_now_ms() < end);
	} while (pinned > 64);
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	for (unsigned k = 0; k < 100; k++)
		assert_int_equal(holders_of(other, k), 0);
	shoal_disconnect(other);
}

/* Shared memory (shmem) of the whole machine, in KiB. */
/* KiB of memory the daemon's arena memfd has allocated (its st_blocks),
 * found through /proc/PID/fd: a figure of this store alone, unlike the
 * machine-wide Shmem, which other processes move. -1 if not found. */
static long arena_kb(pid_t pid)
{
	char dir[64], path[320], target[256];
	long kb = -1;
	struct dirent *e;
	struct stat st;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	DIR *dp = opendir(dir);
	while (dp && kb < 0 && (e = readdir(dp)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		ssize_t n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "/memfd:shoal-arena", 18) == 0 &&
		    stat(path, &st) == 0)
			kb = (long)(st.st_blocks / 2);
	}
	if (dp)
		closedir(dp);
	return kb;
}

static void test_prefault_backs_the_arena(void **state)
{
	struct testd d;
	shoal_client *c;
	shoal_stats s;
	shoal_id id;
	uint8_t *data;

	(void)state;
	assert_int_equal(testd_start(&d, "64M", "--prefault", NULL), 0);
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	/* It serves while it prefaults, and finishes within the deadline. */
	uint64_t end = testd_now_ms() + 20000;
	do {
		assert_int_equal(shoal_get_stats(c, &s), 0);
		assert_true(testd_now_ms() < end);
		usleep(5000);
	} while (s.backed_bytes < s.capacity_bytes);
	/* A create now reports its pages as backed: nothing to reserve. */
	id_of(&id, 1);
	assert_int_equal(shoal_create(c, &id, 8 << 20, 0, 0, &data, NULL), 0);
	memset(data, 3, 8 << 20);
	assert_int_equal(shoal_abort(c, &id), 0);
	shoal_disconnect(c);
	assert_int_equal(testd_stop(&d), 0);
}

static void test_trim_returns_memory(void **state)
{
	struct testd d;
	shoal_client *c;
	shoal_stats s;
	shoal_id id;
	uint8_t *data;
	const uint64_t size = 48u << 20;

	(void)state;
	assert_int_equal(testd_start(&d, "64M", "--trim", NULL), 0);
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	long before = arena_kb(d.pid);
	assert_true(before >= 0);
	id_of(&id, 1);
	assert_int_equal(shoal_create(c, &id, size, 0, 0, &data, NULL), 0);
	memset(data, 3, size);
	assert_int_equal(shoal_seal(c, &id), 0);
	assert_int_equal(shoal_release_id(c, &id), 0);
	assert_int_equal(shoal_get_stats(c, &s), 0);
	assert_true(s.backed_bytes >= size - 4 * (2u << 20));
	long during = arena_kb(d.pid);
	assert_true(during - before > 40 * 1024);
	assert_int_equal(shoal_delete(c, &id, 1, NULL), 0);
	uint64_t end = testd_now_ms() + 10000;
	do {
		assert_int_equal(shoal_get_stats(c, &s), 0);
		assert_true(testd_now_ms() < end);
		usleep(5000);
	} while (s.backed_bytes > 0);
	/* The machine got the memory back. */
	assert_true(during - arena_kb(d.pid) > 40 * 1024);
	shoal_disconnect(c);
	assert_int_equal(testd_stop(&d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, fx_teardown)
	        T(test_cross_process_roundtrip),
	        T(test_get_timeouts_and_duplicates),
	        T(test_get_waits_for_seal),
	        T(test_creator_killed_mid_create),
	        T(test_killed_while_waiting_or_holding),
	        T(test_create_larger_than_store),
	        T(test_full_evicts_nothing),
	        T(test_create_waits_for_space),
	        T(test_atomic_name_replacement),
	        T(test_names_cas_and_wait),
	        T(test_list_objects),
	        T(test_garbage_and_half_messages),
	        T(test_fork_detected),
	        T(test_mixed_cycles_keep_capacity),
	        T(test_daemon_gone),
	        T(test_release_batching_is_bounded),
#undef T
	        cmocka_unit_test(test_prefault_backs_the_arena),
	        cmocka_unit_test(test_trim_returns_memory),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("daemon", tests, NULL, NULL);
}
