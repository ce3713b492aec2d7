/*
 * test_reconnect.c - clients ride through a daemon restart: the next call
 * reconnects and succeeds, safe calls are repeated, others fail with
 * SHOAL_EUNAVAILABLE, views from before stay valid and releasing them never
 * touches the new daemon's holds; the restart hook starts a daemon.
 *
 * Each test SIGKILLs a real daemon and starts a new one on the same socket.
 */
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
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "os.h"
#include "shoal.h"
#include "testd.h"

#define MEMORY "32M"

static void put_named(shoal_client *c, const char *name, const char *text,
                      shoal_id *id)
{
	shoal_id_random(id);
	assert_int_equal(shoal_put(c, id, text, strlen(text) + 1, NULL, 0), 0);
	assert_int_equal(shoal_set_name(c, name, strlen(name), id, NULL, NULL),
	                 0);
}

/* Holders of an object, from the daemon's listing (0 if not listed). */
static uint32_t holders_of(shoal_client *c, const shoal_id *id)
{
	shoal_object_info info[64];
	uint64_t cursor = 0;
	size_t n;

	assert_int_equal(shoal_list(c, &cursor, info, 64, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (memcmp(info[i].id.bytes, id->bytes, SHOAL_ID_SIZE) == 0)
			return info[i].holders;
	return 0;
}

/* After a restart (with --persist, so the name is still there), the next
 * call succeeds on the first try; a view from before stays readable and
 * keeps its memory pinned in the new daemon (same arena file) until it is
 * released, and its release never drops a hold it does not own. */
static void test_next_call_succeeds_and_old_views_stay(void **state)
{
	struct testd d;
	char pdir[300];
	shoal_client *c;
	shoal_view old, now;
	shoal_id id;

	(void)state;
	memset(&d, 0, sizeof(d));
	snprintf(d.dir, sizeof(d.dir), "/tmp/shoal-test-XXXXXX");
	assert_non_null(mkdtemp(d.dir));
	snprintf(pdir, sizeof(pdir), "%s/p", d.dir);
	assert_int_equal(testd_restart(&d, MEMORY, "--persist", pdir, NULL), 0);
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	assert_int_equal(shoal_epoch(c), 1);
	put_named(c, "cfg", "version one", &id);
	assert_int_equal(shoal_get_name(c, "cfg", 3, 0, &old, NULL), 0);

	testd_kill(&d);
	assert_int_equal(testd_restart(&d, MEMORY, "--persist", pdir, NULL), 0);
	/* The first call after the restart succeeds. */
	assert_int_equal(shoal_get_name(c, "cfg", 3, 0, &now, NULL), 0);
	assert_int_equal(shoal_epoch(c), 2);
	assert_string_equal((const char *)now.data, "version one");
	assert_string_equal((const char *)old.data, "version one");
	assert_ptr_not_equal(old.data, now.data); /* another mapping */
	assert_int_equal(holders_of(c, &id), 1);
	assert_int_equal(shoal_release(c, &now), 0);
	shoal_stats st;
	assert_int_equal(shoal_get_stats(c, &st), 0); /* flushes releases */
	/* The new daemon reopened the same arena file: the old view is
	 * pinned there too, so replacing the name and filling the store
	 * does not reuse its memory. */
	assert_int_equal(holders_of(c, &id), 1);
	shoal_id id2;
	put_named(c, "cfg", "version two", &id2);
	assert_int_equal(shoal_get_stats(c, &st), 0);
	assert_int_equal(st.pending_deletes, 1);
	static uint8_t junk[1 << 20];
	memset(junk, 'X', sizeof(junk));
	for (int i = 0; i < 24; i++) {
		shoal_id_random(&id2);
		assert_int_equal(
		        shoal_put(c, &id2, junk, sizeof(junk), NULL, 0), 0);
	}
	assert_string_equal((const char *)old.data, "version one");
	/* Its release is local, and then lets the new daemon free it. */
	assert_int_equal(shoal_release(c, &old), 0);
	assert_int_equal(shoal_get_stats(c, &st), 0);
	assert_int_equal(st.pending_deletes, 0);
	assert_int_equal(holders_of(c, &id), 0);
	shoal_disconnect(c);
	testd_stop(&d);
	char path[400];
	for (const char *f = "arena\0names.log\0lock\0"; *f;
	     f += strlen(f) + 1) {
		snprintf(path, sizeof(path), "%s/%s", pdir, f);
		unlink(path);
	}
	rmdir(pdir);
	rmdir(d.dir);
}

/* Without --persist: a put after the restart succeeds at once (its
 * request found the old connection gone before it was written); an object
 * created before cannot be sealed; while no daemon runs, calls fail with
 * SHOAL_EUNAVAILABLE and the first call after a start succeeds. */
static void test_unsafe_calls_and_no_daemon(void **state)
{
	struct testd d;
	shoal_client *c;
	shoal_id id, id2;
	uint8_t *data;
	int st;

	(void)state;
	assert_int_equal(testd_start(&d, MEMORY, NULL), 0);
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	shoal_id_random(&id);
	assert_int_equal(shoal_create(c, &id, 1000, 0, 0, &data, NULL), 0);
	memset(data, 7, 1000);

	testd_kill(&d);
	/* No daemon: a clear "unavailable", again and again. */
	assert_int_equal(shoal_contains(c, &id, &st), SHOAL_EUNAVAILABLE);
	assert_int_equal(shoal_contains(c, &id, &st), SHOAL_EUNAVAILABLE);
	assert_int_equal(testd_restart(&d, MEMORY, NULL), 0);
	/* The unsealed object died with its daemon. */
	assert_int_equal(shoal_seal(c, &id), SHOAL_EUNAVAILABLE);
	assert_int_equal(shoal_abort(c, &id), SHOAL_ENOTFOUND);
	shoal_id_random(&id2);
	assert_int_equal(shoal_put(c, &id2, "x", 1, NULL, 0), 0);
	assert_int_equal(shoal_contains(c, &id2, &st), 0);
	assert_int_equal(st, SHOAL_STATE_SEALED);

	/* Killed while idle: the next put is sent on a new connection, by
	 * a client that created before and by one that never did. */
	shoal_client *c2;
	assert_int_equal(shoal_connect(d.socket, &c2), 0);
	testd_kill(&d);
	assert_int_equal(testd_restart(&d, MEMORY, NULL), 0);
	uint32_t before = shoal_epoch(c);
	assert_int_equal(shoal_put(c, &id2, "y", 1, NULL, 0), 0);
	assert_int_equal(shoal_epoch(c), before + 1);
	shoal_id_random(&id2);
	assert_int_equal(shoal_put(c2, &id2, "z", 1, NULL, 0), 0);
	assert_int_equal(shoal_epoch(c2), 2);
	shoal_disconnect(c2);
	/* A create from before a restart is gone: abort says so quietly. */
	shoal_id_random(&id);
	assert_int_equal(shoal_create(c, &id, 64, 0, 0, &data, NULL), 0);
	testd_kill(&d);
	assert_int_equal(testd_restart(&d, MEMORY, NULL), 0);
	assert_int_equal(shoal_get_stats(c, &(shoal_stats){0}), 0);
	assert_int_equal(shoal_abort(c, &id), 0);
	shoal_disconnect(c);
	testd_stop(&d);
}

struct hook_ctx {
	struct testd *d;
	int calls;
	atomic_bool killed; /* the test is done with the old daemon */
};

static int start_daemon(void *ctx, const char *path)
{
	struct hook_ctx *h = ctx;
	uint64_t end = testd_now_ms() + 20000;

	/* The old daemon's EOF may arrive before the test has reaped it. */
	while (!atomic_load(&h->killed) && testd_now_ms() < end)
		usleep(1000);
	assert_string_equal(path, h->d->socket);
	h->calls++;
	return testd_restart(h->d, MEMORY, NULL) == 0 ? 0 : SHOAL_EUNAVAILABLE;
}

struct waiter {
	shoal_client *c;
	int rc;
	char text[32];
};

static void *wait_for_name(void *arg)
{
	struct waiter *w = arg;
	shoal_view v;

	w->rc = shoal_get_name(w->c, "late", 4, 20000, &v, NULL);
	if (w->rc == 0) {
		snprintf(w->text, sizeof(w->text), "%s", (const char *)v.data);
		shoal_release(w->c, &v);
	}
	return NULL;
}

/* The restart hook starts a daemon when the reconnect finds none, and a
 * get by name that was waiting when the daemon died is sent again to the
 * new one (a safe call) and answered there. */
static void test_restart_hook_and_safe_retry(void **state)
{
	struct testd d;
	struct hook_ctx h = {&d, 0, false};
	struct waiter w = {0};
	shoal_client *c;
	pthread_t t;
	shoal_id id;

	(void)state;
	assert_int_equal(testd_start(&d, MEMORY, NULL), 0);
	assert_int_equal(shoal_connect(d.socket, &w.c), 0);
	shoal_set_restart_hook(w.c, start_daemon, &h);
	assert_int_equal(pthread_create(&t, NULL, wait_for_name, &w), 0);
	usleep(200000); /* let it park */
	testd_kill(&d);
	atomic_store(&h.killed, true);
	/* The waiter's reconnect starts the daemon through the hook. */
	uint64_t end = testd_now_ms() + 20000;
	while (shoal_connect(d.socket, &c) != 0) {
		assert_true(testd_now_ms() < end);
		usleep(5000);
	}
	usleep(200000); /* let the waiter park again */
	put_named(c, "late", "set after the restart", &id);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_string_equal(w.text, "set after the restart");
	assert_int_equal(h.calls, 1);
	assert_int_equal(shoal_epoch(w.c), 2);
	shoal_disconnect(c);
	shoal_disconnect(w.c);
	testd_stop(&d);
}

/*
 * A reconnect while another thread fills a large put (shoal_create_from
 * with helper threads, outside io_lock). The fault hook holds every large
 * madvise and pwrite of the fill until the other thread has reconnected,
 * then refuses them (EINVAL: a kernel without the advice, a file that
 * refuses pwrite), so every thread copies through the mapping. The copy
 * must go to the put's own (old, retired) mapping, never to the new
 * daemon's read-only one or through freed memory; the put then fails at
 * seal like any create from before a restart. Runs in a child process, so
 * that a crash is a failure of this test.
 */
#define BIG_PUT (64u << 20)

static atomic_bool fill_entered, fill_released;
static pthread_t caller_thread;
/* Whether the held pwrite goes ahead once released (else every one is
 * refused); then the pwrites asked for after the release are counted. */
static bool pwrite_through;
static atomic_bool pwrite_held;
static atomic_int pwrites_after;

static long hold_fill(enum os_call call, size_t len)
{
	if ((call != OS_MADVISE && call != OS_PWRITE) || len < (1u << 20) ||
	    pthread_equal(pthread_self(), caller_thread))
		return 0;
	if (call == OS_PWRITE && pwrite_through &&
	    atomic_load(&fill_released)) {
		atomic_fetch_add(&pwrites_after, 1);
		return 0;
	}
	atomic_store(&fill_entered, true);
	if (call == OS_PWRITE)
		atomic_store(&pwrite_held, true);
	uint64_t end = testd_now_ms() + 20000;
	while (!atomic_load(&fill_released) && testd_now_ms() < end)
		usleep(1000);
	return call == OS_PWRITE && pwrite_through ? 0 : -EINVAL;
}

struct big_put {
	shoal_client *c;
	uint8_t *src;
	int create_rc, seal_rc;
};

static void *do_big_put(void *arg)
{
	struct big_put *p = arg;
	shoal_segment seg = {.src = p->src, .size = BIG_PUT};
	uint8_t *data;
	shoal_id id;

	shoal_id_random(&id);
	p->create_rc = shoal_create_from(p->c, &id, BIG_PUT, 0, 0, &seg, 1,
	                                 &data, NULL);
	p->seal_rc = p->create_rc == 0 ? shoal_seal(p->c, &id)
	                               : shoal_abort(p->c, &id);
	return NULL;
}

/* The child: 0 when all went as it should, else the step that failed. */
static int reconnect_during_fill_child(const char *socket, int to_parent,
                                       int from_parent, bool wait_parent)
{
	struct big_put p = {.create_rc = 1, .seal_rc = 1};
	shoal_stats st;
	pthread_t t;
	char b;
	int rc = 0;

	if (shoal_connect(socket, &p.c) != 0)
		return 10;
	shoal_set_populate_threads(p.c, 2);
	p.src = malloc(BIG_PUT);
	if (!p.src)
		return 11;
	memset(p.src, 0x5a, BIG_PUT);
	caller_thread = pthread_self();
	os_fault_hook = hold_fill;
	if (pthread_create(&t, NULL, do_big_put, &p) != 0)
		return 12;
	uint64_t end = testd_now_ms() + 20000;
	while ((!atomic_load(&fill_entered) ||
	        (pwrite_through && !atomic_load(&pwrite_held))) &&
	       testd_now_ms() < end)
		usleep(1000);
	if (!atomic_load(&fill_entered) ||
	    (pwrite_through && !atomic_load(&pwrite_held)))
		rc = 13;
	/* The parent restarts the daemon; this thread's next call
	 * reconnects while the put's threads wait in the hook. */
	if (write(to_parent, "k", 1) != 1 || read(from_parent, &b, 1) != 1)
		rc = rc ? rc : 14;
	if (!rc && shoal_get_stats(p.c, &st) != 0)
		rc = 15;
	if (!rc && shoal_epoch(p.c) != 2)
		rc = 16;
	/* Reconnected: the parent may now give the put's block to another
	 * object before the put's threads go on. */
	if (wait_parent &&
	    (write(to_parent, "c", 1) != 1 || read(from_parent, &b, 1) != 1))
		rc = rc ? rc : 20;
	atomic_store(&fill_released, true);
	pthread_join(t, NULL);
	os_fault_hook = NULL;
	/* The put wrote into the old daemon's object, which died with it. */
	if (!rc && p.create_rc != 0)
		rc = 17;
	if (!rc && p.seal_rc != SHOAL_EUNAVAILABLE)
		rc = 18;
	/* Only the pwrite under way at the reconnect reached the file. */
	if (!rc && atomic_load(&pwrites_after) != 0)
		rc = 21;
	/* The new daemon works for this client. */
	shoal_id id;
	shoal_id_random(&id);
	if (!rc && shoal_put(p.c, &id, "after", 6, NULL, 0) != 0)
		rc = 19;
	shoal_disconnect(p.c);
	free(p.src);
	return rc;
}

/* How a test runs reconnect_during_fill_child: the memory of the daemon
 * it restarts (and its --persist directory, or NULL), whether the fill's
 * writer is let through the pwrite under way, and what the parent does
 * once the child has reconnected (NULL: nothing, and the child does not
 * wait for it). */
struct fill_run {
	const char *memory;
	const char *pdir;
	bool pwrite_through;
	void (*reconnected)(struct testd *d, void *arg);
	void *arg;
};

/* Forks the child; when the put's threads are held, kills and restarts
 * the daemon and lets the child reconnect. Returns the child's status
 * (testd_wait_pid). */
static int run_fill_child(struct testd *d, const struct fill_run *run)
{
	int up[2], down[2], rc;
	char b;

	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		pwrite_through = run->pwrite_through;
		/* exit, not _exit: a sanitizer build checks for leaks. */
		exit(reconnect_during_fill_child(d->socket, up[1], down[0],
		                                 run->reconnected != NULL));
	}
	close(up[1]);
	close(down[0]);
	/* EOF here means the child ended early; the status says how. */
	if (read(up[0], &b, 1) == 1) {
		testd_kill(d);
		rc = run->pdir ? testd_restart(d, run->memory, "--persist",
		                               run->pdir, NULL)
		               : testd_restart(d, run->memory, NULL);
		assert_int_equal(rc, 0);
		assert_int_equal(write(down[1], "r", 1), 1);
		if (run->reconnected && read(up[0], &b, 1) == 1) {
			run->reconnected(d, run->arg);
			assert_int_equal(write(down[1], "g", 1), 1);
		}
	}
	int status = testd_wait_pid(pid, 60000);
	close(up[0]);
	close(down[1]);
	return status;
}

/* The child ended by itself with status 0. */
static void assert_child_ok(int status)
{
	assert_true(status != -1);
	/* The signal that killed the child, if one did. */
	assert_int_equal(WIFSIGNALED(status) ? WTERMSIG(status) : 0, 0);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_reconnect_during_large_put(void **state)
{
	struct testd d;
	struct fill_run run = {.memory = "256M"};

	(void)state;
	assert_int_equal(testd_start(&d, "256M", NULL), 0);
	int status = run_fill_child(&d, &run);
	testd_stop(&d);
	assert_child_ok(status);
}

/* Memory of the persisted arena below: any two objects of BIG_PUT and
 * NEW_OBJECT bytes in it overlap. */
#define SMALL_ARENA "100M"
#define NEW_OBJECT  (80u << 20)

static void start_persisted(struct testd *d, char *pdir, size_t size)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/shoal-test-XXXXXX");
	assert_non_null(mkdtemp(d->dir));
	snprintf(pdir, size, "%s/p", d->dir);
	assert_int_equal(testd_restart(d, SMALL_ARENA, "--persist", pdir, NULL),
	                 0);
}

/* Another client's new object, which must lie where the lost create lay:
 * created, filled with 0xa7 and sealed; its ID in *id. */
static void put_pattern(const char *socket, shoal_id *id)
{
	shoal_client *c;
	uint8_t *data;

	assert_int_equal(shoal_connect(socket, &c), 0);
	shoal_id_random(id);
	assert_int_equal(shoal_create(c, id, NEW_OBJECT, 0, 0, &data, NULL), 0);
	memset(data, 0xa7, NEW_OBJECT);
	assert_int_equal(shoal_seal(c, id), 0);
	shoal_disconnect(c);
}

/* Whether every byte of the object is still 0xa7, read by a new client. */
static void check_pattern(const char *socket, const shoal_id *id)
{
	shoal_client *c;
	shoal_view v;
	size_t bad = 0;

	assert_int_equal(shoal_connect(socket, &c), 0);
	assert_int_equal(shoal_get(c, id, 1, 0, &v), 0);
	assert_int_equal(v.data_size, NEW_OBJECT);
	for (size_t i = 0; i < NEW_OBJECT; i++)
		bad += ((const uint8_t *)v.data)[i] != 0xa7;
	assert_int_equal(bad, 0);
	assert_int_equal(shoal_release(c, &v), 0);
	shoal_disconnect(c);
}

/* The new object that takes the lost put's block (fill_run.reconnected). */
struct new_object {
	shoal_id id;
	bool put;
};

static void put_new_object(struct testd *d, void *arg)
{
	struct new_object *o = arg;

	put_pattern(d->socket, &o->id);
	o->put = true;
}

/*
 * As above, but the daemon is restarted with --persist, so it reopens the
 * same arena file, and another client's object takes the lost put's block
 * before the put's threads go on. Whatever they still write must not reach
 * that object.
 */
static void test_large_put_after_persisted_restart(void **state)
{
	struct testd d;
	char pdir[300];
	struct new_object o = {.put = false};
	struct fill_run run = {.memory = SMALL_ARENA,
	                       .pdir = pdir,
	                       .reconnected = put_new_object,
	                       .arg = &o};

	(void)state;
	start_persisted(&d, pdir, sizeof(pdir));
	int status = run_fill_child(&d, &run);
	if (o.put)
		check_pattern(d.socket, &o.id);
	testd_stop(&d);
	assert_child_ok(status);
	assert_true(o.put);
}

/*
 * The fill's writer is held inside a pwrite (the call under way, which is
 * let through) while the client reconnects: it asks for no pwrite after
 * that, so nothing more of the lost object reaches the arena file.
 */
static void test_no_pwrite_after_reconnect(void **state)
{
	struct testd d;
	char pdir[300];
	struct fill_run run = {
	        .memory = SMALL_ARENA, .pdir = pdir, .pwrite_through = true};

	(void)state;
	start_persisted(&d, pdir, sizeof(pdir));
	int status = run_fill_child(&d, &run);
	testd_stop(&d);
	assert_child_ok(status);
}

/*
 * An application that keeps writing through the pointer of a create from
 * before a --persist restart, after this client reconnected: the restarted
 * daemon's object at that place stays intact, and the seal fails.
 */
static void test_writes_after_persisted_restart(void **state)
{
	struct testd d;
	char pdir[300];
	shoal_client *c;
	shoal_stats st;
	uint8_t *data;
	shoal_id lost, id;

	(void)state;
	start_persisted(&d, pdir, sizeof(pdir));
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	shoal_id_random(&lost);
	assert_int_equal(shoal_create(c, &lost, BIG_PUT, 0, 0, &data, NULL), 0);
	memset(data, 0x11, BIG_PUT);
	testd_kill(&d);
	assert_int_equal(
	        testd_restart(&d, SMALL_ARENA, "--persist", pdir, NULL), 0);
	assert_int_equal(shoal_get_stats(c, &st), 0); /* reconnects */
	assert_int_equal(shoal_epoch(c), 2);
	put_pattern(d.socket, &id);
	memset(data, 0x22, BIG_PUT);
	assert_int_equal(shoal_seal(c, &lost), SHOAL_EUNAVAILABLE);
	check_pattern(d.socket, &id);
	shoal_disconnect(c);
	testd_stop(&d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_next_call_succeeds_and_old_views_stay),
	        cmocka_unit_test(test_unsafe_calls_and_no_daemon),
	        cmocka_unit_test(test_restart_hook_and_safe_retry),
	        cmocka_unit_test(test_reconnect_during_large_put),
	        cmocka_unit_test(test_large_put_after_persisted_restart),
	        cmocka_unit_test(test_writes_after_persisted_restart),
	        cmocka_unit_test(test_no_pwrite_after_reconnect),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
