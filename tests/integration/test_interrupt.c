/*
 * test_interrupt.c - integration tests: waits that end early on
 * shoal_interrupt() or on a signal (also one that arrived just before the
 * wait slept, with shoal_set_interrupt_signals), a waiting request that
 * costs the daemon one request however long it waits, and
 * shoal_release_id() with two objects of one ID. A real `shoal serve` per test;
 * every wait has a deadline.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "shoal.h"
#include "testd.h"

struct fx {
	struct testd d;
	shoal_client *c;   /* the waiter */
	shoal_client *aux; /* stats and puts */
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(testd_start(&f->d, "4M", NULL), 0);
	assert_int_equal(shoal_connect(f->d.socket, &f->c), 0);
	assert_int_equal(shoal_connect(f->d.socket, &f->aux), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	char msg[256];

	shoal_disconnect(f->c);
	shoal_disconnect(f->aux);
	if (testd_finish(&f->d, msg, sizeof(msg)) != 0)
		fail_msg("daemon check failed: %s", msg);
	free(f);
	return 0;
}

static void id_of(shoal_id *id, unsigned n)
{
	testd_id(id, 0x77, n);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint64_t requests(shoal_client *c)
{
	shoal_stats s;

	assert_int_equal(shoal_get_stats(c, &s), 0);
	return s.requests;
}

/* A get of one ID in a thread, with its result. */
struct waiter {
	shoal_client *c;
	shoal_id id;
	int64_t timeout_ms;
	int rc;
	int status;
	volatile int done;
	pthread_t thread;
};

static void *wait_main(void *arg)
{
	struct waiter *w = arg;
	shoal_view v;

	w->rc = shoal_get(w->c, &w->id, 1, w->timeout_ms, &v);
	w->status = v.status;
	if (w->rc == 0 && v.status == 0)
		shoal_release(w->c, &v);
	w->done = 1;
	return NULL;
}

static void start_waiter(struct waiter *w, shoal_client *c, unsigned k,
                         int64_t timeout_ms)
{
	memset(w, 0, sizeof(*w));
	w->c = c;
	id_of(&w->id, k);
	w->timeout_ms = timeout_ms;
	assert_int_equal(pthread_create(&w->thread, NULL, wait_main, w), 0);
}

/* Joins the waiter, failing the test if it is not done within ms. */
static void join_within(struct waiter *w, long ms)
{
	uint64_t end = testd_now_ms() + (uint64_t)ms;

	while (!w->done && testd_now_ms() < end)
		sleep_ms(5);
	if (!w->done)
		fail_msg("the wait did not end within %ld ms", ms);
	pthread_join(w->thread, NULL);
}

static void test_interrupt_ends_a_wait(void **state)
{
	struct fx *f = *state;
	struct waiter w;
	shoal_view v;
	shoal_id id;

	start_waiter(&w, f->c, 1, SHOAL_WAIT_FOREVER);
	sleep_ms(200);
	assert_false(w.done);
	assert_int_equal(shoal_interrupt(f->c), 0);
	join_within(&w, 2000);
	assert_int_equal(w.rc, SHOAL_EINTR);
	/* The connection is still in step: the next calls work. */
	id_of(&id, 1);
	assert_int_equal(shoal_put(f->c, &id, "abc", 3, NULL, 0), 0);
	assert_int_equal(shoal_get(f->c, &id, 1, 0, &v), 0);
	assert_int_equal(v.status, 0);
	assert_memory_equal(v.data, "abc", 3);
	assert_int_equal(shoal_release(f->c, &v), 0);
}

static void test_interrupt_before_the_wait_is_kept(void **state)
{
	struct fx *f = *state;
	shoal_view v;
	shoal_id id;

	id_of(&id, 2);
	assert_int_equal(shoal_interrupt(f->c), 0);
	assert_int_equal(shoal_get(f->c, &id, 1, SHOAL_WAIT_FOREVER, &v),
	                 SHOAL_EINTR);
	assert_int_not_equal(v.status, 0);
	/* Used up: the next wait runs to its deadline. */
	uint64_t t0 = testd_now_ms();
	assert_int_equal(shoal_get(f->c, &id, 1, 100, &v), 0);
	assert_int_equal(v.status, SHOAL_ENOTFOUND);
	assert_true(testd_now_ms() - t0 >= 90);
}

static void test_complete_get_is_not_interrupted(void **state)
{
	struct fx *f = *state;
	shoal_view v;
	shoal_id id;

	id_of(&id, 3);
	assert_int_equal(shoal_put(f->aux, &id, "x", 1, NULL, 0), 0);
	assert_int_equal(shoal_interrupt(f->c), 0);
	assert_int_equal(shoal_get(f->c, &id, 1, SHOAL_WAIT_FOREVER, &v), 0);
	assert_int_equal(v.status, 0);
	assert_int_equal(shoal_release(f->c, &v), 0);
}

static void on_usr1(int sig)
{
	(void)sig;
}

static void test_signal_interrupts_only_when_asked(void **state)
{
	struct fx *f = *state;
	struct sigaction sa;
	struct waiter w;
	shoal_id id;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART: poll fails with EINTR */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR1, &sa, NULL), 0);

	/* Not interruptible: the wait goes on after the handler. */
	start_waiter(&w, f->c, 4, SHOAL_WAIT_FOREVER);
	sleep_ms(100);
	pthread_kill(w.thread, SIGUSR1);
	sleep_ms(200);
	assert_false(w.done);
	id_of(&id, 4);
	assert_int_equal(shoal_put(f->aux, &id, "y", 1, NULL, 0), 0);
	join_within(&w, 2000);
	assert_int_equal(w.rc, 0);
	assert_int_equal(w.status, 0);

	/* Interruptible: the signal ends it. A signal that lands before the
	 * thread sleeps is not seen (no interrupt signals are set here), so
	 * it is sent again until the wait ends, however loaded the machine. */
	shoal_set_interruptible(f->c, 1);
	start_waiter(&w, f->c, 5, SHOAL_WAIT_FOREVER);
	for (int i = 0; i < 100 && !w.done; i++) {
		sleep_ms(100);
		if (!w.done)
			pthread_kill(w.thread, SIGUSR1);
	}
	join_within(&w, 2000);
	assert_int_equal(w.rc, SHOAL_EINTR);
	signal(SIGUSR1, SIG_DFL);
}

static volatile sig_atomic_t usr2_seen;

static void on_usr2(int sig)
{
	(void)sig;
	usr2_seen++;
}

/*
 * Blocks SIGUSR2, makes it pending (as if it arrived after the caller's
 * last check for signals and before the wait), then calls wait(f) and
 * returns what it returned, with *ms how long it took; restores the mask.
 */
static int wait_with_pending_signal(struct fx *f, int (*wait)(struct fx *),
                                    uint64_t *ms)
{
	sigset_t usr2, old;
	uint64_t t0;
	int rc;

	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	usr2_seen = 0;
	assert_int_equal(pthread_sigmask(SIG_BLOCK, &usr2, &old), 0);
	assert_int_equal(raise(SIGUSR2), 0);
	assert_int_equal(usr2_seen, 0); /* pending, not handled */
	t0 = testd_now_ms();
	rc = wait(f);
	*ms = testd_now_ms() - t0;
	assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
	assert_int_equal(usr2_seen, 1);
	return rc;
}

static int get_for_a_while(struct fx *f)
{
	shoal_view v;
	shoal_id id;

	id_of(&id, 11);
	return shoal_get(f->c, &id, 1, 1500, &v);
}

static int next_event_for_a_while(struct fx *f)
{
	const int usr2 = SIGUSR2;
	shoal_subscription *s;
	shoal_event ev;
	int rc;

	assert_int_equal(shoal_subscribe(f->d.socket, 0, &s), 0);
	shoal_subscription_set_interruptible(s, 1);
	assert_int_equal(shoal_subscription_set_interrupt_signals(s, &usr2, 1),
	                 0);
	rc = shoal_next_event(s, 1500, &ev);
	shoal_unsubscribe(s);
	return rc;
}

static void test_signal_just_before_the_wait_ends_it(void **state)
{
	struct fx *f = *state;
	const int usr2 = SIGUSR2, bad = 999;
	struct sigaction sa;
	uint64_t ms;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr2;
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGUSR2, &sa, NULL), 0);
	shoal_set_interruptible(f->c, 1);

	/* Without interrupt signals the wait cannot see a signal that came
	 * before it slept: it runs to its end. */
	assert_int_equal(wait_with_pending_signal(f, get_for_a_while, &ms), 0);
	assert_true(ms >= 1400);

	/* With them, the pending signal is delivered in the sleep and ends
	 * it at once, for gets and for subscriptions. */
	assert_int_equal(shoal_set_interrupt_signals(f->c, &usr2, 1), 0);
	assert_int_equal(wait_with_pending_signal(f, get_for_a_while, &ms),
	                 SHOAL_EINTR);
	assert_true(ms < 1000);
	assert_int_equal(
	        wait_with_pending_signal(f, next_event_for_a_while, &ms),
	        SHOAL_EINTR);
	assert_true(ms < 1000);
	/* The connection is still in step after the interrupted get. */
	assert_int_equal(shoal_contains(f->c, &(shoal_id){{0}}, &(int){0}), 0);
	assert_int_equal(shoal_set_interrupt_signals(NULL, &usr2, 1),
	                 SHOAL_EINVAL);
	assert_int_equal(shoal_set_interrupt_signals(f->c, &bad, 1),
	                 SHOAL_EINVAL);
	assert_int_equal(shoal_set_interrupt_signals(f->c, NULL, 1),
	                 SHOAL_EINVAL);
	signal(SIGUSR2, SIG_DFL);
}

static void test_waiting_costs_one_request(void **state)
{
	struct fx *f = *state;
	struct waiter w;
	uint64_t before, after;

	before = requests(f->aux);
	start_waiter(&w, f->c, 6, 800);
	join_within(&w, 5000);
	assert_int_equal(w.rc, 0);
	assert_int_equal(w.status, SHOAL_ENOTFOUND);
	after = requests(f->aux);
	/* The get and this stats request: no retries while it waited. */
	assert_int_equal(after - before, 2);
}

static void test_interrupt_ends_a_create_wait(void **state)
{
	struct fx *f = *state;
	uint8_t *big, *d, *m;
	shoal_id held, want;
	int state_of;

	id_of(&held, 7);
	id_of(&want, 8);
	/* Held and unsealed: not evictable, so the second create waits. */
	assert_int_equal(shoal_create(f->aux, &held, 3u << 20, 0, 0, &big, &m),
	                 0);
	assert_int_equal(shoal_interrupt(f->c), 0);
	assert_int_equal(shoal_create(f->c, &want, 2u << 20, 0,
	                              SHOAL_WAIT_FOREVER, &d, &m),
	                 SHOAL_EINTR);
	assert_int_equal(shoal_contains(f->c, &want, &state_of), 0);
	assert_int_equal(state_of, SHOAL_STATE_ABSENT);
	assert_int_equal(shoal_abort(f->aux, &held), 0);
}

static void test_release_id_with_two_objects_of_one_id(void **state)
{
	struct fx *f = *state;
	uint8_t *d, *m;
	shoal_id id;
	int res;

	id_of(&id, 9);
	assert_int_equal(shoal_create(f->c, &id, 10, 0, 0, &d, &m), 0);
	assert_int_equal(shoal_seal(f->c, &id), 0);
	/* Deleted while the creator holds it: the ID may be created again. */
	assert_int_equal(shoal_delete(f->aux, &id, 1, &res), 0);
	assert_int_equal(res, 0);
	assert_int_equal(shoal_create(f->c, &id, 20, 0, 0, &d, &m), 0);
	assert_int_equal(shoal_seal(f->c, &id), 0);
	assert_int_equal(shoal_release_id(f->c, &id), 0);
	assert_int_equal(shoal_release_id(f->c, &id), 0);
	assert_int_equal(shoal_release_id(f->c, &id), SHOAL_ENOTFOUND);
}

static void test_subscription_interrupt(void **state)
{
	struct fx *f = *state;
	shoal_subscription *s;
	shoal_event ev;
	uint64_t t0;
	shoal_id id;

	assert_int_equal(shoal_subscribe(f->d.socket, 0, &s), 0);
	assert_int_equal(shoal_subscription_interrupt(s), 0);
	t0 = testd_now_ms();
	assert_int_equal(shoal_next_event(s, SHOAL_WAIT_FOREVER, &ev),
	                 SHOAL_EINTR);
	assert_true(testd_now_ms() - t0 < 1000);
	/* Nothing is lost: the next event still arrives. */
	id_of(&id, 10);
	assert_int_equal(shoal_put(f->aux, &id, "e", 1, NULL, 0), 0);
	assert_int_equal(shoal_next_event(s, 5000, &ev), 0);
	assert_int_equal(ev.kind, SHOAL_EVENT_SEALED);
	assert_memory_equal(ev.id.bytes, id.bytes, SHOAL_ID_SIZE);
	/* A timeout still runs to its end. */
	t0 = testd_now_ms();
	assert_int_equal(shoal_next_event(s, 100, &ev), SHOAL_ETIMEDOUT);
	assert_true(testd_now_ms() - t0 >= 90);
	shoal_unsubscribe(s);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_interrupt_ends_a_wait),
	        T(test_interrupt_before_the_wait_is_kept),
	        T(test_complete_get_is_not_interrupted),
	        T(test_signal_interrupts_only_when_asked),
	        T(test_signal_just_before_the_wait_ends_it),
	        T(test_waiting_costs_one_request),
	        T(test_interrupt_ends_a_create_wait),
	        T(test_release_id_with_two_objects_of_one_id),
	        T(test_subscription_interrupt),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
