/*
 * test_faults.c - fault injection through the system seam (src/common/os.h):
 * system calls that fail with EINTR, EAGAIN, ENOMEM, ENOSPC or
 * EOPNOTSUPP, short reads and writes, and the Nth private allocation of an
 * operation failing, for N = 1, 2, ... until the operation succeeds.
 *
 * The daemon runs in this process, on a thread of its own (server_init and
 * server_run on a temporary socket), and real clients (libshoal) talk to it
 * from the test's thread. The fault hook filters by thread, so a plan hits
 * the daemon's calls, the client's, or the prefault thread's. To look inside
 * the daemon the test pauses it (SIGTERM stops its loop, the thread is
 * joined), checks the store and resumes it on a new thread.
 *
 * What every test asserts: the affected request gets an error (and one
 * that says what happened), everything else succeeds, the daemon keeps
 * serving new clients, store_check() holds, used memory returns to 0 once
 * the objects are gone and the clients have left, and the process has as
 * many fds open as before the daemon started. Memory leaks show up in the
 * ASan build (LeakSanitizer at exit).
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "client_internal.h"
#include "os.h"
#include "server.h"
#include "shoal.h"

/* ---- the fault plan ---- */

enum who {
	ONLY_THREAD,   /* calls made by plan.thread */
	OTHER_THREADS, /* calls made by any thread but plan.thread */
};

/*
 * Which calls fail and how: calls is a mask of 1 << enum os_call; action is
 * -errno or a short count; with nth > 0 only the nth matching call is hit,
 * else every period-th one. seen counts matching calls, hits the faults.
 */
static struct {
	unsigned calls;
	enum who who;
	pthread_t thread;
	long action;
	long nth;
	long period;
	atomic_long seen;
	atomic_long hits;
	atomic_long hits_by[OS_CALL_END];
} plan;

static long fault_hook(enum os_call call, size_t len)
{
	bool self;
	long n;

	if (!(plan.calls & (1u << call)))
		return 0;
	self = pthread_equal(pthread_self(), plan.thread);
	if (self != (plan.who == ONLY_THREAD))
		return 0;
	n = atomic_fetch_add(&plan.seen, 1) + 1;
	if (plan.nth ? n != plan.nth : n % plan.period != 0)
		return 0;
	if (plan.action > 0 && (size_t)plan.action >= len)
		return 0; /* nothing to cut */
	atomic_fetch_add(&plan.hits, 1);
	atomic_fetch_add(&plan.hits_by[call], 1);
	return plan.action;
}

#define CALL(c) (1u << (c))

static void inject(unsigned calls, enum who who, pthread_t thread, long action,
                   long nth, long period)
{
	os_fault_hook = NULL;
	plan.calls = calls;
	plan.who = who;
	plan.thread = thread;
	plan.action = action;
	plan.nth = nth;
	plan.period = period > 0 ? period : 1;
	atomic_store(&plan.seen, 0);
	atomic_store(&plan.hits, 0);
	for (int i = 0; i < OS_CALL_END; i++)
		atomic_store(&plan.hits_by[i], 0);
	os_fault_hook = fault_hook;
}

/* Stops injecting; returns the number of faults injected. */
static long stop_faults(void)
{
	os_fault_hook = NULL;
	return atomic_load(&plan.hits);
}

/* ---- the in-process daemon ---- */

static struct {
	struct server srv;
	pthread_t thread;
	char dir[64];
	char sock[128];
	int fds_before;
} D;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own fd */
}

static void *daemon_thread(void *arg)
{
	(void)arg;
	server_run(&D.srv);
	return NULL;
}

static void daemon_resume(void)
{
	assert_int_equal(pthread_create(&D.thread, NULL, daemon_thread, NULL),
	                 0);
}

/* Stops the loop (its signalfd sees the SIGTERM) and joins the thread. */
static void daemon_pause(void)
{
	assert_int_equal(pthread_kill(D.thread, SIGTERM), 0);
	assert_int_equal(pthread_join(D.thread, NULL), 0);
}

static struct server_options daemon_options(uint64_t capacity)
{
	struct server_options opt = {.capacity = capacity,
	                             .socket_path = D.sock,
	                             .debug_checks = true,
	                             .stall_ms = 10000,
	                             .event_queue = 4u << 20};
	return opt;
}

/* Sets up the temporary directory and the socket path. */
static void daemon_paths(void)
{
	strcpy(D.dir, "/tmp/shoal-faults-XXXXXX");
	assert_non_null(mkdtemp(D.dir));
	snprintf(D.sock, sizeof(D.sock), "%s/s.sock", D.dir);
}

static void daemon_start_with(const struct server_options *opt)
{
	char err[256] = "";

	D.fds_before = count_fds();
	daemon_paths();
	if (server_init(&D.srv, opt, err, sizeof(err)) != 0)
		fail_msg("server_init: %s", err);
	daemon_resume();
}

static void daemon_start(uint64_t capacity)
{
	struct server_options opt = daemon_options(capacity);

	daemon_start_with(&opt);
}

/* Checks the store's invariants against the live connections; returns the
 * bytes in use. The daemon must be paused. */
static uint64_t store_ok(void)
{
	struct store_client *clients[64];
	char msg[256] = "";

	assert_true(D.srv.nconns <= 64);
	for (uint32_t i = 0; i < D.srv.nconns; i++)
		clients[i] = &D.srv.conns[i]->sc;
	if (store_check(&D.srv.store, clients, D.srv.nconns, msg,
	                sizeof(msg)) != 0)
		fail_msg("invariant broken: %s", msg);
	return alloc_used(D.srv.store.alloc);
}

static uint64_t daemon_check(void)
{
	daemon_pause();
	uint64_t used = store_ok();
	daemon_resume();
	return used;
}

static uint32_t daemon_conns(void)
{
	daemon_pause();
	uint32_t n = D.srv.nconns;
	daemon_resume();
	return n;
}

/* Waits up to 5 s for the daemon to have n connections. */
static void wait_conns(uint32_t n)
{
	for (int i = 0; i < 5000 && daemon_conns() != n; i++)
		usleep(1000);
	assert_int_equal(daemon_conns(), n);
}

/* Stops the daemon once every client has gone: nothing may be left in use
 * and no fd may be left open. */
static void daemon_stop(void)
{
	wait_conns(0);
	daemon_pause();
	assert_int_equal(store_ok(), 0);
	assert_int_equal(D.srv.store.objs.live, 0);
	server_free(&D.srv);
	rmdir(D.dir);
	assert_int_equal(count_fds(), D.fds_before);
}

/* ---- client helpers ---- */

static shoal_client *must_connect(void)
{
	shoal_client *c = NULL;
	int rc = shoal_connect(D.sock, &c);

	if (rc != 0)
		fail_msg("connect: %s", shoal_strerror(rc));
	return c;
}

static shoal_id make_id(unsigned n)
{
	shoal_id id;

	memset(&id, 0, sizeof(id));
	memcpy(id.bytes, &n, sizeof(n));
	id.bytes[SHOAL_ID_SIZE - 1] = 0x5a;
	return id;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 31 + seed);
}

static bool has_pattern(const uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(i * 31 + seed))
			return false;
	return true;
}

/* Puts a sealed object of size bytes and releases the creator's hold. */
static void must_put(shoal_client *c, unsigned n, size_t size)
{
	shoal_id id = make_id(n);
	uint8_t *data;
	int rc = shoal_create(c, &id, size, 0, 0, &data, NULL);

	if (rc != 0)
		fail_msg("create: %s", shoal_strerror(rc));
	fill_pattern(data, size, n);
	assert_int_equal(shoal_seal(c, &id), 0);
	assert_int_equal(shoal_release_id(c, &id), 0);
	/* A round trip, so that other clients see the seal from now on. */
	int state = -1;
	assert_int_equal(shoal_contains(c, &id, &state), 0);
	assert_int_equal(state, SHOAL_STATE_SEALED);
}

/* Waits for an event of this kind (others are skipped). */
static int wait_event(shoal_subscription *s, int kind, shoal_event *ev)
{
	for (;;) {
		int rc = shoal_next_event(s, 5000, ev);
		if (rc < 0)
			return rc;
		if (ev->kind == kind)
			return 0;
	}
}

/*
 * Everything a client does, checked end to end: a put and a get of 100 KB
 * with their bytes compared, names, listings, a subscription with a
 * snapshot and its events, deletes. Leaves nothing behind.
 */
static void workload(unsigned seed)
{
	shoal_client *c = must_connect(), *d = must_connect();
	shoal_subscription *sub = NULL;
	shoal_id id = make_id(seed);
	shoal_object_info info[4];
	shoal_name_info *names = calloc(4, sizeof(*names));
	shoal_stats stats;
	shoal_view v;
	shoal_event ev;
	uint64_t cursor = 0, version;
	size_t count;
	int res;

	assert_non_null(names);
	must_put(c, seed, 100000);
	/* c's seal has no reply and may reach the daemon after d's get: d
	 * waits for it (a parked get, under the same faults). */
	assert_int_equal(shoal_get(d, &id, 1, 5000, &v), 0);
	assert_int_equal(v.status, 0);
	assert_int_equal(v.data_size, 100000);
	assert_true(has_pattern(v.data, 100000, seed));
	assert_int_equal(shoal_set_name(c, "work", 4, &id, NULL, &version), 0);
	assert_int_equal(
	        shoal_subscribe(D.sock, SHOAL_SUBSCRIBE_SNAPSHOT, &sub), 0);
	assert_int_equal(wait_event(sub, SHOAL_EVENT_NAME_SET, &ev), 0);
	assert_string_equal(ev.name, "work");
	assert_int_equal(wait_event(sub, SHOAL_EVENT_SNAPSHOT_END, &ev), 0);
	assert_int_equal(shoal_release(d, &v), 0);
	assert_int_equal(shoal_get_name(d, "work", 4, 0, &v, &version), 0);
	assert_true(has_pattern(v.data, 100000, seed));
	assert_int_equal(shoal_release(d, &v), 0);
	assert_int_equal(shoal_list(d, &cursor, info, 4, &count), 0);
	assert_int_equal(count, 1);
	cursor = 0;
	char bytes[SHOAL_NAMES_SIZE(4)];
	assert_int_equal(shoal_list_names(d, &cursor, names, 4, bytes,
	                                  sizeof(bytes), &count),
	                 0);
	assert_int_equal(count, 1);
	assert_string_equal(names[0].name, "work");
	assert_int_equal(shoal_delete_name(c, "work", 4, NULL), 0);
	assert_int_equal(wait_event(sub, SHOAL_EVENT_NAME_DELETED, &ev), 0);
	assert_int_equal(wait_event(sub, SHOAL_EVENT_DELETED, &ev), 0);
	assert_int_equal(shoal_delete(c, &id, 1, &res), 0);
	assert_int_equal(res, SHOAL_ENOTFOUND); /* the name took it along */
	assert_int_equal(shoal_get_stats(d, &stats), 0);
	assert_int_equal(stats.used_bytes, 0);
	shoal_unsubscribe(sub);
	shoal_disconnect(c);
	shoal_disconnect(d);
	free(names);
}

/* ---- system call faults ---- */

struct io_fault {
	const char *what;
	long action;
	long period;
};

static const struct io_fault io_faults[] = {
        {"EINTR on every other call", -EINTR, 2},
        {"EINTR on every third call", -EINTR, 3},
        {"a 1-byte transfer on every call", 1, 1},
        {"a 7-byte transfer on every other call", 7, 2},
};

/* The daemon's reads, writes and accepts: the workload succeeds. */
static void test_daemon_io_faults(void **state)
{
	static const struct io_fault eagain = {"EAGAIN on every other call",
	                                       -EAGAIN, 2};
	unsigned calls = CALL(OS_RECV) | CALL(OS_SEND) | CALL(OS_SENDMSG) |
	                 CALL(OS_ACCEPT);

	(void)state;
	daemon_start(4u << 20);
	for (size_t i = 0; i < 5; i++) {
		const struct io_fault *f = i < 4 ? &io_faults[i] : &eagain;
		/* The HELLO reply goes out on a fresh socket, which cannot be
		 * full: EAGAIN there is not a case to handle. */
		inject(i < 4 ? calls : calls & ~CALL(OS_SENDMSG), ONLY_THREAD,
		       D.thread, f->action, 0, f->period);
		workload(100 + (unsigned)i);
		wait_conns(0);
		assert_true(stop_faults() > 0);
		print_message("daemon, %s: %ld recv, %ld send, %ld sendmsg, "
		              "%ld accept faults\n",
		              f->what, atomic_load(&plan.hits_by[OS_RECV]),
		              atomic_load(&plan.hits_by[OS_SEND]),
		              atomic_load(&plan.hits_by[OS_SENDMSG]),
		              atomic_load(&plan.hits_by[OS_ACCEPT]));
		assert_true(atomic_load(&plan.hits_by[OS_RECV]) > 0);
		assert_true(atomic_load(&plan.hits_by[OS_SEND]) > 0);
		assert_int_equal(daemon_check(), 0);
	}
	daemon_stop();
}

/* The client's reads and writes: the workload succeeds. EAGAIN (which a
 * blocking socket returns only on a timeout) is an error for the call. */
static void test_client_io_faults(void **state)
{
	unsigned calls = CALL(OS_READ) | CALL(OS_RECVMSG) | CALL(OS_SEND) |
	                 CALL(OS_SENDMSG);
	shoal_stats stats;

	(void)state;
	daemon_start(4u << 20);
	for (size_t i = 0; i < sizeof(io_faults) / sizeof(io_faults[0]); i++) {
		const struct io_fault *f = &io_faults[i];
		inject(calls, ONLY_THREAD, pthread_self(), f->action, 0,
		       f->period);
		workload(200 + (unsigned)i);
		assert_true(stop_faults() > 0);
		print_message("client, %s: %ld read, %ld recvmsg, %ld send, "
		              "%ld sendmsg faults\n",
		              f->what, atomic_load(&plan.hits_by[OS_READ]),
		              atomic_load(&plan.hits_by[OS_RECVMSG]),
		              atomic_load(&plan.hits_by[OS_SEND]),
		              atomic_load(&plan.hits_by[OS_SENDMSG]));
		assert_true(atomic_load(&plan.hits_by[OS_READ]) > 0);
		assert_true(atomic_load(&plan.hits_by[OS_SENDMSG]) > 0);
		assert_true(atomic_load(&plan.hits_by[OS_RECVMSG]) > 0);
	}

	shoal_client *c = must_connect();
	inject(CALL(OS_READ), ONLY_THREAD, pthread_self(), -EAGAIN, 1, 0);
	assert_int_equal(shoal_get_stats(c, &stats), -EAGAIN);
	assert_int_equal(stop_faults(), 1);
	/* The reply was left unread: the next call opens a new connection
	 * rather than take that reply for its own. */
	assert_int_equal(shoal_epoch(c), 1);
	assert_int_equal(shoal_get_stats(c, &stats), 0);
	assert_int_equal(shoal_epoch(c), 2);
	shoal_disconnect(c);
	c = must_connect();
	assert_int_equal(shoal_get_stats(c, &stats), 0);
	shoal_disconnect(c);
	daemon_stop();
}

/* ---- the Nth allocation ---- */

struct op_ctx {
	shoal_client *setup; /* makes the objects the operation needs */
	shoal_client *c;     /* the client whose request is faulted */
	shoal_subscription *sub;
};

struct op {
	const char *name;
	void (*setup)(struct op_ctx *x);
	/* Runs the request; returns 0 or the error the caller saw. */
	int (*run)(struct op_ctx *x);
	bool connects; /* run() connects x->c itself */
	/* expect at least one allocation in the daemon, in the client */
	bool daemon_allocs, client_allocs;
	/* safe to repeat: when a fault made the daemon drop the connection,
	 * the client sends it again on a new one, where it may succeed */
	bool retried;
};

static void setup_object(struct op_ctx *x)
{
	must_put(x->setup, 1, 5000);
}

static void setup_named(struct op_ctx *x)
{
	shoal_id id = make_id(1);

	must_put(x->setup, 1, 5000);
	assert_int_equal(shoal_set_name(x->setup, "nm", 2, &id, NULL, NULL), 0);
}

static void setup_many(struct op_ctx *x)
{
	for (unsigned i = 0; i < 100; i++)
		must_put(x->setup, 10 + i, 64);
	setup_named(x);
}

static void setup_unsealed(struct op_ctx *x)
{
	shoal_id id = make_id(1);
	uint8_t *data;

	assert_int_equal(shoal_create(x->c, &id, 5000, 0, 0, &data, NULL), 0);
}

static int run_connect(struct op_ctx *x)
{
	return shoal_connect(D.sock, &x->c);
}

static int run_create(struct op_ctx *x)
{
	shoal_id id = make_id(1);
	uint8_t *data, *meta;
	int rc = shoal_create(x->c, &id, 5000, 64, 0, &data, &meta);

	if (rc == 0) {
		memset(data, 1, 5000);
		memset(meta, 2, 64);
	}
	return rc;
}

static int run_seal(struct op_ctx *x)
{
	shoal_id id = make_id(1);
	int state = -1;
	int rc = shoal_seal(x->c, &id);

	/* A seal has no reply: its failure comes with the next request. */
	if (rc == 0)
		rc = shoal_contains(x->c, &id, &state);
	if (rc == 0 && state != SHOAL_STATE_SEALED)
		rc = SHOAL_ENOTSEALED;
	return rc;
}

static int run_get(struct op_ctx *x)
{
	shoal_id ids[3] = {make_id(1), make_id(1), make_id(2)};
	shoal_view v[3];
	int rc = shoal_get(x->c, ids, 3, 0, v);

	if (rc == 0 && (v[0].status || v[1].status))
		rc = v[0].status ? v[0].status : v[1].status;
	if (rc == 0 && v[2].status != SHOAL_ENOTFOUND)
		rc = SHOAL_EPROTO;
	if (rc == 0 && !has_pattern(v[0].data, 5000, 1))
		rc = SHOAL_EPROTO;
	for (int i = 0; i < 3; i++)
		if (v[i].status == 0 && shoal_release(x->c, &v[i]) != 0)
			rc = SHOAL_EPROTO;
	return rc;
}

/* A reply larger than the client's first read buffer. */
static int run_get_batch(struct op_ctx *x)
{
	enum { N = 3000 };
	shoal_id *ids = calloc(N, sizeof(*ids));
	shoal_view *v = calloc(N, sizeof(*v));
	int rc = SHOAL_ENOMEM;

	if (ids && v) {
		for (unsigned i = 0; i < N; i++)
			ids[i] = make_id(i + 1);
		rc = shoal_get(x->c, ids, N, 0, v);
	}
	if (rc == 0 && v[0].status)
		rc = v[0].status;
	if (rc == 0 && v[N - 1].status != SHOAL_ENOTFOUND)
		rc = SHOAL_EPROTO;
	if (rc == 0)
		shoal_release(x->c, &v[0]);
	free(ids);
	free(v);
	return rc;
}

static int run_set_name(struct op_ctx *x)
{
	shoal_id id = make_id(1);
	uint64_t version = 0;

	return shoal_set_name(x->c, "name", 4, &id, &version, &version);
}

static int run_get_name(struct op_ctx *x)
{
	shoal_view v;
	int rc = shoal_get_name(x->c, "nm", 2, 0, &v, NULL);

	if (rc == 0 && !has_pattern(v.data, 5000, 1))
		rc = SHOAL_EPROTO;
	if (rc == 0)
		shoal_release(x->c, &v);
	return rc;
}

static int run_delete_name(struct op_ctx *x)
{
	return shoal_delete_name(x->c, "nm", 2, NULL);
}

static int run_delete(struct op_ctx *x)
{
	shoal_id id = make_id(1);
	int res;
	int rc = shoal_delete(x->c, &id, 1, &res);

	return rc ? rc : res;
}

static int run_list(struct op_ctx *x)
{
	shoal_object_info info[8];
	uint64_t cursor = 0;
	size_t count;
	int rc = shoal_list(x->c, &cursor, info, 8, &count);

	return rc ? rc : count == 1 ? 0 : SHOAL_EPROTO;
}

static int run_list_names(struct op_ctx *x)
{
	shoal_name_info *info = calloc(2, sizeof(*info));
	char bytes[SHOAL_NAMES_SIZE(2)];
	uint64_t cursor = 0;
	size_t count = 0;
	int rc;

	if (!info)
		return SHOAL_ENOMEM;
	rc = shoal_list_names(x->c, &cursor, info, 2, bytes, sizeof(bytes),
	                      &count);
	if (rc == 0 && (count != 1 || strcmp(info[0].name, "nm") != 0))
		rc = SHOAL_EPROTO;
	free(info);
	return rc;
}

/* The snapshot is 100 SEALED events and one NAME_SET, then its end. */
static int run_subscribe(struct op_ctx *x)
{
	shoal_event ev;
	int sealed = 0;
	int rc = shoal_subscribe(D.sock, SHOAL_SUBSCRIBE_SNAPSHOT, &x->sub);

	while (rc == 0) {
		rc = shoal_next_event(x->sub, 5000, &ev);
		if (rc == 0 && ev.kind == SHOAL_EVENT_SEALED)
			sealed++;
		if (rc == 0 && ev.kind == SHOAL_EVENT_SNAPSHOT_END)
			break;
	}
	if (rc == 0 && sealed != 101)
		rc = SHOAL_EPROTO;
	return rc;
}

static const struct op ops[] = {
        {"connect", NULL, run_connect, true, true, true},
        {"create", NULL, run_create, false, true, true},
        {"seal", setup_unsealed, run_seal, false, false, true},
        {"get", setup_object, run_get, false, true, true, true},
        {"get_batch", setup_object, run_get_batch, false, true, true, true},
        {"set_name", setup_object, run_set_name, false, true, false},
        {"get_name", setup_named, run_get_name, false, true, true, true},
        {"delete_name", setup_named, run_delete_name, false, true, false},
        {"delete", setup_object, run_delete, false, true, false},
        {"list", setup_object, run_list, false, true, false, true},
        {"list_names", setup_named, run_list_names, false, true, false, true},
        {"subscribe", setup_many, run_subscribe, true, true, true},
};

/* Removes what the setup and the operation made: names, then objects. */
static void cleanup_store(shoal_client *c)
{
	shoal_id ids[112];
	int res[112];

	shoal_delete_name(c, "nm", 2, NULL);
	shoal_delete_name(c, "name", 4, NULL);
	for (unsigned i = 0; i < 112; i++)
		ids[i] = make_id(i);
	assert_int_equal(shoal_delete(c, ids, 112, res), 0);
}

/*
 * Runs op with its nth allocation failing, in the daemon (daemon true) or in
 * the client. Returns whether the fault was hit; when it was, the operation
 * must have failed.
 */
static bool run_with_failure(const struct op *op, bool daemon, long nth)
{
	struct op_ctx x = {0};
	shoal_stats stats;
	int rc;

	daemon_start(1u << 20);
	x.setup = must_connect();
	if (!op->connects)
		x.c = must_connect();
	if (op->setup)
		op->setup(&x);
	inject(CALL(OS_ALLOC), ONLY_THREAD, daemon ? D.thread : pthread_self(),
	       -ENOMEM, nth, 0);
	rc = op->run(&x);
	bool hit = stop_faults() > 0;
	if (hit && rc == 0 && !(daemon && op->retried))
		fail_msg("%s: allocation %ld failed in the %s, yet the "
		         "operation succeeded",
		         op->name, nth, daemon ? "daemon" : "client");
	if (!hit && rc != 0)
		fail_msg("%s: failed without a fault: %s", op->name,
		         shoal_strerror(rc));
	if (hit && rc != SHOAL_ENOMEM && rc != SHOAL_EUNAVAILABLE &&
	    !(rc == 0 && daemon && op->retried))
		fail_msg("%s: allocation %ld failed in the %s: %s", op->name,
		         nth, daemon ? "daemon" : "client", shoal_strerror(rc));
	/* The client either works or knows it is broken: it never takes a
	 * stale reply for the answer to its next request. */
	if (x.c) {
		rc = shoal_get_stats(x.c, &stats);
		if (rc != 0 && rc != SHOAL_EUNAVAILABLE)
			fail_msg("%s: after allocation %ld failed in the %s, "
			         "the client says %s",
			         op->name, nth, daemon ? "daemon" : "client",
			         shoal_strerror(rc));
	}
	/* The daemon serves on, consistent, and the store cleans up. */
	assert_int_equal(shoal_get_stats(x.setup, &stats), 0);
	(void)daemon_check();
	cleanup_store(x.setup);
	shoal_unsubscribe(x.sub);
	shoal_disconnect(x.c);
	shoal_disconnect(x.setup);
	daemon_stop();
	return hit;
}

static void alloc_failures(bool daemon)
{
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		const struct op *op = &ops[i];
		long n = 1;
		while (run_with_failure(op, daemon, n)) {
			n++;
			assert_true(n < 200);
		}
		print_message("%s: %ld allocations in the %s\n", op->name,
		              n - 1, daemon ? "daemon" : "client");
		if (daemon ? op->daemon_allocs : op->client_allocs)
			assert_true(n > 1);
	}
}

static void test_daemon_alloc_failures(void **state)
{
	(void)state;
	alloc_failures(true);
}

static void test_client_alloc_failures(void **state)
{
	(void)state;
	alloc_failures(false);
}

/* Start-up: the Nth allocation, mmap and the header's madvise. */
static void test_startup_faults(void **state)
{
	struct server_options opt;
	char err[256];
	long n;
	int fds = count_fds();

	(void)state;
	daemon_paths();
	opt = daemon_options(1u << 20);
	for (n = 1; n < 100; n++) {
		inject(CALL(OS_ALLOC), ONLY_THREAD, pthread_self(), -ENOMEM, n,
		       0);
		int rc = server_init(&D.srv, &opt, err, sizeof(err));
		bool hit = stop_faults() > 0;
		if (!hit) {
			assert_int_equal(rc, 0);
			server_free(&D.srv);
			break;
		}
		assert_true(rc < 0);
		assert_true(err[0] != '\0');
		assert_int_equal(count_fds(), fds);
	}
	print_message("server_init: %ld allocations\n", n - 1);
	assert_true(n > 3);

	inject(CALL(OS_MMAP), ONLY_THREAD, pthread_self(), -ENOMEM, 0, 1);
	assert_int_equal(server_init(&D.srv, &opt, err, sizeof(err)), -ENOMEM);
	assert_int_equal(stop_faults(), 1);
	assert_non_null(strstr(err, "cannot map the arena"));
	assert_int_equal(count_fds(), fds);

	inject(CALL(OS_MADVISE), ONLY_THREAD, pthread_self(), -ENOMEM, 0, 1);
	assert_int_equal(server_init(&D.srv, &opt, err, sizeof(err)), -ENOMEM);
	assert_int_equal(stop_faults(), 1);
	assert_non_null(strstr(err, "cannot allocate the arena header"));
	assert_int_equal(count_fds(), fds);
	rmdir(D.dir);
}

/*
 * Trimming freed memory when the backing refuses to punch holes: the daemon
 * must not retry in a busy loop, keeps serving, and trims once it can.
 */
static void test_trim_refused(void **state)
{
	static const long errs[] = {-ENOSPC, -EOPNOTSUPP};
	struct server_options opt = daemon_options(40u << 20);
	shoal_stats stats;
	shoal_id id;

	(void)state;
	opt.trim = true;
	daemon_start_with(&opt);
	shoal_client *c = must_connect();
	for (size_t i = 0; i < 2; i++) {
		inject(CALL(OS_FALLOCATE), ONLY_THREAD, D.thread, errs[i], 0,
		       1);
		/* 18 chunks: more than one turn's trimming budget. */
		must_put(c, 1, 36u << 20);
		id = make_id(1);
		assert_int_equal(shoal_delete(c, &id, 1, NULL), 0);
		usleep(300 * 1000);
		/* One attempt per free, not one per turn of the loop. */
		long tries = atomic_load(&plan.seen);
		assert_true(stop_faults() > 0);
		print_message("fallocate %s: %ld attempts in 300 ms\n",
		              strerror((int)-errs[i]), tries);
		assert_true(tries <= 4);
		assert_int_equal(shoal_get_stats(c, &stats), 0);
		assert_true(stats.backed_bytes >= 32u << 20);
	}
	/* Without faults, the next free trims everything. */
	must_put(c, 2, 64);
	id = make_id(2);
	assert_int_equal(shoal_delete(c, &id, 1, NULL), 0);
	for (int i = 0; i < 500; i++) {
		assert_int_equal(shoal_get_stats(c, &stats), 0);
		if (stats.backed_bytes == 0)
			break;
		usleep(10 * 1000);
	}
	assert_int_equal(stats.backed_bytes, 0);
	shoal_disconnect(c);
	daemon_stop();
}

/* Prefaulting that runs out of memory stops; clients populate themselves. */
static void test_prefault_refused(void **state)
{
	struct server_options opt = daemon_options(8u << 20);
	shoal_stats stats;

	(void)state;
	opt.prefault = true;
	inject(CALL(OS_MADVISE), OTHER_THREADS, pthread_self(), -ENOMEM, 0, 1);
	daemon_start_with(&opt);
	shoal_client *c = must_connect();
	for (int i = 0; i < 500 && atomic_load(&plan.hits) == 0; i++)
		usleep(1000);
	assert_int_equal(stop_faults(), 1);
	must_put(c, 1, 6u << 20);
	shoal_view v;
	shoal_id id = make_id(1);
	assert_int_equal(shoal_get(c, &id, 1, 0, &v), 0);
	assert_true(has_pattern(v.data, 6u << 20, 1));
	shoal_release(c, &v);
	assert_int_equal(shoal_delete(c, &id, 1, NULL), 0);
	assert_int_equal(shoal_get_stats(c, &stats), 0);
	assert_int_equal(stats.used_bytes, 0);
	shoal_disconnect(c);
	daemon_stop();
}

/* A create of size bytes whose page reservation fails with ENOMEM in the
 * threads `who` says: a clean "store full", and the object is dropped. */
static void populate_fails(shoal_client *c, enum who who, uint64_t size)
{
	shoal_id id = make_id(1);
	shoal_stats stats;
	uint8_t *data;
	int state_of;

	inject(CALL(OS_MADVISE), who, pthread_self(), -ENOMEM, 0, 1);
	assert_int_equal(shoal_create(c, &id, size, 0, 0, &data, NULL),
	                 SHOAL_EFULL);
	assert_true(stop_faults() > 0);
	assert_int_equal(shoal_contains(c, &id, &state_of), 0);
	assert_int_equal(state_of, SHOAL_STATE_ABSENT);
	assert_int_equal(shoal_get_stats(c, &stats), 0);
	assert_int_equal(stats.used_bytes, 0);
}

/* The client reserves an object's pages: ENOMEM is a clean "store full" and
 * the object is dropped; EINTR and EAGAIN are retried. */
static void test_populate_refused(void **state)
{
	shoal_id id = make_id(1);
	uint8_t *data;

	(void)state;
	daemon_start(48u << 20);
	shoal_client *c = must_connect();
	populate_fails(c, ONLY_THREAD, 4u << 20);

	static const long retried[] = {-EINTR, -EAGAIN};
	for (int i = 0; i < 2; i++) {
		inject(CALL(OS_MADVISE), ONLY_THREAD, pthread_self(),
		       retried[i], 1, 0);
		assert_int_equal(
		        shoal_create(c, &id, 4u << 20, 0, 0, &data, NULL), 0);
		assert_int_equal(stop_faults(), 1);
		fill_pattern(data, 4u << 20, 1);
		assert_int_equal(shoal_abort(c, &id), 0);
	}

	/* A large object is reserved by helper threads too (populate.c): a
	 * helper that cannot reserve its pages makes the create a clean
	 * "store full" as well. */
	uint64_t big = 40u << 20;
	assert_int_equal(shoal_set_populate_threads(c, 4), 0);
	populate_fails(c, OTHER_THREADS, big);
	/* Under 32 MiB, or with one thread asked for, no helper is
	 * started: faults of other threads change nothing. */
	const struct {
		uint64_t size;
		unsigned threads;
	} alone[] = {{(32u << 20) - 4096, 4}, {big, 1}};
	for (int i = 0; i < 2; i++) {
		shoal_id a = make_id(10 + (unsigned)i);
		assert_int_equal(
		        shoal_set_populate_threads(c, alone[i].threads), 0);
		inject(CALL(OS_MADVISE), OTHER_THREADS, pthread_self(), -ENOMEM,
		       0, 1);
		assert_int_equal(
		        shoal_create(c, &a, alone[i].size, 0, 0, &data, NULL),
		        0);
		assert_int_equal(stop_faults(), 0);
		assert_int_equal(shoal_abort(c, &a), 0);
	}
	assert_int_equal(shoal_set_populate_threads(c, 4), 0);
	/* Helpers retry EINTR; the bytes written are all there. */
	inject(CALL(OS_MADVISE), OTHER_THREADS, pthread_self(), -EINTR, 1, 0);
	assert_int_equal(shoal_create(c, &id, big, 0, 0, &data, NULL), 0);
	assert_int_equal(stop_faults(), 1);
	fill_pattern(data, big, 3);
	assert_int_equal(shoal_seal(c, &id), 0);
	shoal_view v;
	assert_int_equal(shoal_get(c, &id, 1, 0, &v), 0);
	assert_true(has_pattern(v.data, big, 3));
	shoal_release(c, &v);
	assert_int_equal(shoal_release_id(c, &id), 0);
	assert_int_equal(shoal_delete(c, &id, 1, NULL), 0);
	assert_int_equal(shoal_set_populate_threads(c, 17), SHOAL_EINVAL);
	assert_int_equal(shoal_set_populate_threads(NULL, 1), SHOAL_EINVAL);

	/* Mapping the arena fails: connect says so and leaks no fd. */
	wait_conns(1);
	int fds = count_fds();
	shoal_client *d = NULL;
	inject(CALL(OS_MMAP), ONLY_THREAD, pthread_self(), -ENOMEM, 0, 1);
	assert_int_equal(shoal_connect(D.sock, &d), SHOAL_ENOMEM);
	assert_int_equal(stop_faults(), 1);
	assert_null(d);
	wait_conns(1);
	assert_int_equal(count_fds(), fds);
	shoal_disconnect(c);
	daemon_stop();
}

/* ---- a client that dies with its input stuck behind a parked request ---- */

static void send_all_fd(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
		assert_true(k > 0);
		p = (const uint8_t *)p + k;
		n -= (size_t)k;
	}
}

/* Connects a raw socket (the kernel completes it into the backlog). */
static int raw_socket(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, D.sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

/* Says hello on a raw socket; closes the arena fd it gets. */
static void raw_hello(int fd)
{
	struct {
		struct proto_header h;
		struct proto_hello b;
	} m = {.b = {.proto_version = PROTO_VERSION, .pid = 1}};
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint8_t reply[sizeof(struct proto_header) +
	              sizeof(struct proto_hello_reply)];
	size_t got = 0;

	proto_header_init(&m.h, PROTO_HELLO, 1, sizeof(m.b));
	send_all_fd(fd, &m, sizeof(m));
	while (got < sizeof(reply)) {
		struct iovec iov = {reply + got, sizeof(reply) - got};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = ctl.buf,
		                    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
		assert_true(n > 0);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		/* The arena's fd and the published region's. */
		size_t nfds =
		        cm && cm->cmsg_type == SCM_RIGHTS
		                ? (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int)
		                : 0;
		for (size_t i = 0; i < nfds; i++) {
			int passed;
			memcpy(&passed, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(passed));
			close(passed);
		}
		got += (size_t)n;
	}
}

/* Object n made by shoal_create_from() from segs; returns its status. The
 * segments are handed over in reverse order: any order is correct. */
static int create_from(shoal_client *c, unsigned n, uint64_t size,
                       shoal_segment *segs, size_t nsegs)
{
	shoal_id id = make_id(n);
	uint8_t *data;

	for (size_t i = 0; i < nsegs / 2; i++) {
		shoal_segment t = segs[i];
		segs[i] = segs[nsegs - 1 - i];
		segs[nsegs - 1 - i] = t;
	}
	int rc =
	        shoal_create_from(c, &id, size, 0, 0, segs, nsegs, &data, NULL);
	if (rc == 0)
		assert_int_equal(shoal_seal(c, &id), 0);
	return rc;
}

/* Whether object n holds exactly want (size bytes). */
static bool object_is(shoal_client *c, unsigned n, const uint8_t *want,
                      uint64_t size)
{
	shoal_id id = make_id(n);
	shoal_view v;

	assert_int_equal(shoal_get(c, &id, 1, 0, &v), 0);
	bool same = v.data_size == size && memcmp(v.data, want, size) == 0;
	shoal_release(c, &v);
	assert_int_equal(shoal_release_id(c, &id), 0);
	return same;
}

/*
 * shoal_create_from(): the bytes of plain and rebased (4- and 8-byte
 * integer) segments land exactly, for an object copied after its
 * reservation (small) and one copied behind it by several threads
 * (40 MiB); a failed reservation in any thread is a clean "store full",
 * also part-way through the copy of overlapping segments (populate.c);
 * a segment outside the object is refused before anything is created.
 */
static void test_create_from(void **state)
{
	const uint64_t big = 40u << 20;
	uint8_t *src = malloc(big), *want = malloc(big);
	shoal_segment segs[64];
	int state_of;

	(void)state;
	assert_non_null(src);
	assert_non_null(want);
	fill_pattern(src, big, 7);
	daemon_start(96u << 20);
	shoal_client *c = must_connect();
	assert_int_equal(shoal_set_populate_threads(c, 4), 0);
	for (int round = 0; round < 2; round++) {
		uint64_t size = round ? big : (1u << 20) + 24;
		uint64_t part = size / 32 / 8 * 8;
		size_t n = 0;
		/* 32 pieces: plain, 4-byte +5, 8-byte -3 in turn, then the
		 * tail plain. */
		for (uint64_t off = 0; off < size; off += part, n++) {
			uint64_t len = size - off < part || n == 31 ? size - off
			                                            : part;
			uint32_t width = len % 8 ? 0 : (uint32_t)(n % 3) * 4;
			int64_t add = width == 4 ? 5 : width == 8 ? -3 : 0;
			segs[n] = (shoal_segment){off, src + off, len, width,
			                          add};
			for (uint64_t i = 0; i < len;
			     i += width ? width : len) {
				if (width == 4) {
					uint32_t v;
					memcpy(&v, src + off + i, 4);
					v += 5;
					memcpy(want + off + i, &v, 4);
				} else if (width == 8) {
					uint64_t v;
					memcpy(&v, src + off + i, 8);
					v -= 3;
					memcpy(want + off + i, &v, 8);
				} else {
					memcpy(want + off, src + off, len);
				}
			}
			if (off + len == size)
				break;
		}
		n++;
		assert_int_equal(
		        create_from(c, 1 + (unsigned)round, size, segs, n), 0);
		assert_true(object_is(c, 1 + (unsigned)round, want, size));
	}

	/* The reservation fails in a helper, or in the caller part-way (the
	 * objects above are kept, so these land in fresh memory; the caller
	 * writes fresh memory of a large object with pwrite, fill.c). */
	shoal_segment whole = {0, src, big, 0, 0};
	static const struct {
		unsigned calls;
		enum who who;
		long nth;
	} fails[] = {{CALL(OS_MADVISE), OTHER_THREADS, 0},
	             {CALL(OS_PWRITE), ONLY_THREAD, 2}};
	for (int i = 0; i < 2; i++) {
		shoal_id id = make_id(3);
		inject(fails[i].calls, fails[i].who, pthread_self(), -ENOMEM,
		       fails[i].nth, 1);
		assert_int_equal(create_from(c, 3, big, &whole, 1),
		                 SHOAL_EFULL);
		assert_true(stop_faults() > 0);
		assert_int_equal(shoal_contains(c, &id, &state_of), 0);
		assert_int_equal(state_of, SHOAL_STATE_ABSENT);
	}
	/* Overlapping segments are not taken by fill.c: populate.c copies
	 * them behind its reservation. The caller's reservation fails after
	 * its first step was copied (one thread: it takes every step, so the
	 * second is its own). */
	shoal_segment overlap[2] = {{0, src, big, 0, 0},
	                            {4096, src, 4096, 0, 0}};
	assert_int_equal(shoal_set_populate_threads(c, 1), 0);
	inject(CALL(OS_MADVISE), ONLY_THREAD, pthread_self(), -ENOMEM, 2, 1);
	assert_int_equal(create_from(c, 3, big, overlap, 2), SHOAL_EFULL);
	assert_int_equal(stop_faults(), 1);
	shoal_id gone = make_id(3);
	assert_int_equal(shoal_contains(c, &gone, &state_of), 0);
	assert_int_equal(state_of, SHOAL_STATE_ABSENT);
	assert_int_equal(shoal_set_populate_threads(c, 4), 0);

	static const shoal_segment bad[] = {
	        {1, "x", 1u << 20, 0, 0}, /* ends past the object */
	        {0, "xyz", 3, 3, 0},      /* width 3 */
	        {0, "xyzzy", 6, 4, 0},    /* 6 bytes of 4-byte integers */
	        {0, NULL, 8, 0, 0},       /* no source */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		shoal_segment b = bad[i];
		assert_int_equal(create_from(c, 4, 1u << 20, &b, 1),
		                 SHOAL_EINVAL);
	}
	shoal_id ids[2] = {make_id(1), make_id(2)};
	assert_int_equal(shoal_delete(c, ids, 2, NULL), 0);
	shoal_stats stats;
	assert_int_equal(shoal_get_stats(c, &stats), 0);
	assert_int_equal(stats.used_bytes, 0);
	shoal_disconnect(c);
	daemon_stop();
	free(src);
	free(want);
}

/*
 * fill.c: a large object from segments on fresh memory is written with
 * pwrite by the calling thread (and populated and copied by helpers), the
 * bytes no segment covers reserved with fallocate. Every failure of those
 * calls that means "no memory" is a clean SHOAL_EFULL with the object
 * gone; EINTR and short writes are carried on; a file that refuses them
 * (EOPNOTSUPP, EINVAL: hugetlbfs, a sealed file) is populated and copied
 * instead, and the object is right either way.
 */
static void test_fill_faults(void **state)
{
	const uint64_t size = 40u << 20;
	uint8_t *src = malloc(size), *want = malloc(size);
	shoal_stats stats;
	int state_of;

	(void)state;
	assert_non_null(src);
	assert_non_null(want);
	fill_pattern(src, size, 5);
	/* Two segments with gaps before, between and after them; the second
	 * is 8-byte integers rebased by +9. What the caller writes through
	 * the pointer fills the gaps. */
	const uint64_t a0 = 12288 + 64, a1 = 17u << 20, b0 = 21u << 20,
	               b1 = size - 4096;
	shoal_segment segs[2] = {{a0, src + a0, a1 - a0, 0, 0},
	                         {b0, src + b0, b1 - b0, 8, 9}};
	memcpy(want, src, size);
	for (uint64_t i = b0; i < b1; i += 8) {
		uint64_t v;
		memcpy(&v, src + i, 8);
		v += 9;
		memcpy(want + i, &v, 8);
	}
	static const struct {
		unsigned calls;
		long action, nth;
		unsigned threads;
		int rc;
		const char *what;
	} cases[] = {
	        {CALL(OS_PWRITE), -ENOSPC, 1, 1, SHOAL_EFULL, "first pwrite"},
	        {CALL(OS_PWRITE), -ENOSPC, 3, 1, SHOAL_EFULL, "3rd pwrite"},
	        {CALL(OS_PWRITE), -ENOMEM, 2, 4, SHOAL_EFULL, "with helpers"},
	        {CALL(OS_FALLOCATE), -ENOSPC, 1, 1, SHOAL_EFULL, "fallocate"},
	        {CALL(OS_PWRITE), -EINTR, 1, 1, 0, "EINTR"},
	        {CALL(OS_FALLOCATE), -EINTR, 2, 1, 0, "fallocate EINTR"},
	        {CALL(OS_PWRITE), 4000, 0, 1, 0, "short pwrites"},
	        {CALL(OS_PWRITE), -EOPNOTSUPP, 0, 1, 0, "pwrite refused"},
	        {CALL(OS_PWRITE), -EINVAL, 2, 2, 0, "refused part-way"},
	        {CALL(OS_FALLOCATE), -EOPNOTSUPP, 0, 1, 0, "gap refused"},
	        {0, 0, 0, 1, 0, "no fault, one thread"},
	        {0, 0, 0, 4, 0, "no fault, four threads"},
	};
	/* A daemon per case: memory once sealed is vouched for, and a put
	 * there copies without pwrite. */
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		shoal_id id = make_id(50 + i);
		uint8_t *data;
		print_message("%s\n", cases[i].what);
		daemon_start(48u << 20);
		shoal_client *c = must_connect();
		assert_int_equal(
		        shoal_set_populate_threads(c, cases[i].threads), 0);
		inject(cases[i].calls, ONLY_THREAD, pthread_self(),
		       cases[i].action, cases[i].nth, 1);
		int rc = shoal_create_from(c, &id, size, 0, 0, segs, 2, &data,
		                           NULL);
		long hits = stop_faults();
		assert_int_equal(rc, cases[i].rc);
		if (cases[i].calls)
			assert_true(hits > 0);
		if (rc < 0) {
			assert_int_equal(shoal_contains(c, &id, &state_of), 0);
			assert_int_equal(state_of, SHOAL_STATE_ABSENT);
		} else {
			/* The gaps are reserved: writing them cannot fault. */
			memcpy(data, want, a0);
			memcpy(data + a1, want + a1, b0 - a1);
			memcpy(data + b1, want + b1, size - b1);
			assert_int_equal(shoal_seal(c, &id), 0);
			assert_true(object_is(c, 50 + i, want, size));
			assert_int_equal(shoal_delete(c, &id, 1, NULL), 0);
		}
		assert_int_equal(shoal_get_stats(c, &stats), 0);
		assert_int_equal(stats.used_bytes, 0);
		shoal_disconnect(c);
		daemon_stop();
	}
	free(src);
	free(want);
}

/*
 * A client parks a get (waiting forever), sends more than the daemon's
 * input buffer holds behind it, and dies. The daemon must drop it (epoll
 * reports the hang-up on every turn, and the old code spun on it forever
 * with the client's holds pinned) and keep serving.
 */
static void test_hangup_with_full_input(void **state)
{
	struct {
		struct proto_header h;
		struct proto_get g;
		uint8_t id[SHOAL_ID_SIZE];
	} get = {.g = {.timeout_ms = -1, .count = 1}};
	size_t want = sizeof(struct proto_header) + PROTO_MAX_REQUEST + 4096;
	uint8_t *junk = calloc(1, 65536);
	size_t sent = 0;

	(void)state;
	assert_non_null(junk);
	daemon_start(1u << 20);
	int fd = raw_socket();
	raw_hello(fd);
	proto_header_init(&get.h, PROTO_GET, 2, sizeof(get.g) + SHOAL_ID_SIZE);
	send_all_fd(fd, &get, sizeof(get));
	for (int idle = 0; sent < want && idle < 200;) {
		ssize_t n = send(fd, junk, 65536, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			sent += (size_t)n;
			idle = 0;
		} else {
			assert_true(errno == EAGAIN);
			usleep(1000);
			idle++;
		}
	}
	/* Wait until the daemon holds a full input buffer behind the parked
	 * get. */
	bool full = false;
	for (int i = 0; i < 2000 && !full; i++) {
		daemon_pause();
		assert_int_equal(D.srv.nconns, 1);
		assert_true(wait_parked(&D.srv.conns[0]->wait));
		full = D.srv.conns[0]->in_len >=
		       sizeof(struct proto_header) + PROTO_MAX_REQUEST;
		daemon_resume();
		if (!full)
			usleep(1000);
	}
	assert_true(full);
	close(fd);
	wait_conns(0);
	shoal_client *c = must_connect();
	must_put(c, 1, 100);
	shoal_id id = make_id(1);
	assert_int_equal(shoal_delete(c, &id, 1, NULL), 0);
	shoal_disconnect(c);
	free(junk);
	daemon_stop();
}

/*
 * Out of fds (EMFILE on accept): the pending connection stays in the
 * backlog, so the listening socket stays readable. The daemon must pause
 * accepting rather than spin, go on serving its clients, and accept the
 * newcomer once fds are back.
 */
static void test_accept_out_of_fds(void **state)
{
	static const long errs[] = {-EMFILE, -ENFILE, -ENOMEM};
	shoal_stats stats;

	(void)state;
	daemon_start(1u << 20);
	shoal_client *c = must_connect();
	for (int i = 0; i < 3; i++) {
		inject(CALL(OS_ACCEPT), ONLY_THREAD, D.thread, errs[i], 0, 1);
		int fd = raw_socket();
		usleep(300 * 1000);
		assert_int_equal(shoal_get_stats(c, &stats), 0);
		long tries = atomic_load(&plan.seen);
		assert_true(stop_faults() > 0);
		print_message("accept %s: %ld attempts in 300 ms\n",
		              strerror((int)-errs[i]), tries);
		assert_true(tries <= 10);
		raw_hello(fd); /* accepted now */
		close(fd);
	}
	shoal_disconnect(c);
	daemon_stop();
}

/* Publishes n entries in the daemon's freed-range log (paused), as a
 * broken daemon might, then sets its head to head. */
static void publish_raw(const uint64_t (*e)[2], size_t n, uint64_t head)
{
	struct freelog *f = &D.srv.freelog;

	daemon_pause();
	for (size_t i = 0; i < n; i++) {
		struct layout_freed *slot = &f->ring[(f->head + i) & f->mask];
		atomic_store(&slot->offset, e[i][0]);
		atomic_store(&slot->length, e[i][1]);
	}
	f->head = head;
	atomic_store(&f->hdr->freelog_head, head);
	daemon_resume();
}

/* Every madvise of the test thread, checked against the data area of
 * the client's mapping: a DONTNEED outside it (below the base, over the
 * header, past the end into private memory) would zero what it covers. */
static struct {
	pthread_t thread;
	uintptr_t lo, hi; /* the client's data area */
	atomic_long calls, outside;
} watch;

static long watch_madvise(enum os_call call, size_t len)
{
	uintptr_t a = (uintptr_t)os_fault_addr;

	if (call != OS_MADVISE || !pthread_equal(pthread_self(), watch.thread))
		return 0;
	atomic_fetch_add(&watch.calls, 1);
	if (a < watch.lo || a > watch.hi || len > watch.hi - a) {
		atomic_fetch_add(&watch.outside, 1);
		print_message("madvise [%#lx, +%zu) outside [%#lx, %#lx)\n",
		              (unsigned long)a, len, (unsigned long)watch.lo,
		              (unsigned long)watch.hi);
	}
	return 0;
}

/* A client trusts no entry of the freed-range log: entries over the
 * header, past the mapping, of any length, wrapping around, and a head
 * that goes back or far ahead cost it at most an madvise of its own
 * mapping's data area (each call is checked); what it views reads the
 * same. */
static void test_hostile_freelog(void **state)
{
	const uint64_t u = UINT64_MAX;
	(void)state;
	daemon_start(4u << 20);
	shoal_client *c = must_connect();
	watch.thread = pthread_self();
	watch.lo = (uintptr_t)c->base + c->data_offset;
	watch.hi = (uintptr_t)c->base + c->map_size;
	atomic_store(&watch.calls, 0);
	atomic_store(&watch.outside, 0);
	os_fault_hook = watch_madvise;
	shoal_view v;
	shoal_id id = make_id(1);
	must_put(c, 1, 300000);
	assert_int_equal(shoal_get(c, &id, 1, 0, &v), 0);
	assert_true(has_pattern(v.data, v.data_size, 1));
	uint64_t map = D.srv.arena.map_size, h = D.srv.freelog.head;
	const uint64_t bad[][2] = {
	        {0, 4096},       {0, u},           {u - 4095, 8192},
	        {map, 4096},     {map - 4096, u},  {4096, u},
	        {123, 77},       {8192, 0},        {u, u},
	        {4096, map * 2}, {map + 8192, 64}, {4096, 4096},
	};
	size_t n = sizeof(bad) / sizeof(bad[0]);
	int st = -1;

	publish_raw(bad, n, h + n);
	assert_int_equal(shoal_contains(c, &id, &st), 0);
	assert_true(has_pattern(v.data, v.data_size, 1));
	publish_raw(bad, 0, 1); /* back */
	assert_int_equal(shoal_contains(c, &id, &st), 0);
	assert_true(has_pattern(v.data, v.data_size, 1));
	publish_raw(bad, 0, u - 2); /* far ahead, wrapping next */
	assert_int_equal(shoal_contains(c, &id, &st), 0);
	publish_raw(bad, n, u - 2 + n);
	assert_int_equal(shoal_contains(c, &id, &st), 0);
	assert_true(has_pattern(v.data, v.data_size, 1));
	os_fault_hook = NULL;
	assert_true(atomic_load(&watch.calls) > 0);
	assert_int_equal(atomic_load(&watch.outside), 0);
	/* Still a working store. */
	must_put(c, 2, 70000);
	assert_int_equal(shoal_release(c, &v), 0);
	shoal_id two = make_id(2);
	assert_int_equal(shoal_get(c, &two, 1, 0, &v), 0);
	assert_true(has_pattern(v.data, v.data_size, 2));
	assert_int_equal(shoal_release(c, &v), 0);
	shoal_id both[2] = {id, two};
	assert_int_equal(shoal_delete(c, both, 2, NULL), 0);
	shoal_disconnect(c);
	daemon_stop();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_daemon_io_faults),
	        cmocka_unit_test(test_client_io_faults),
	        cmocka_unit_test(test_daemon_alloc_failures),
	        cmocka_unit_test(test_client_alloc_failures),
	        cmocka_unit_test(test_startup_faults),
	        cmocka_unit_test(test_trim_refused),
	        cmocka_unit_test(test_prefault_refused),
	        cmocka_unit_test(test_populate_refused),
	        cmocka_unit_test(test_create_from),
	        cmocka_unit_test(test_fill_faults),
	        cmocka_unit_test(test_hangup_with_full_input),
	        cmocka_unit_test(test_accept_out_of_fds),
	        cmocka_unit_test(test_hostile_freelog),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
