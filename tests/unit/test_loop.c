/*
 * test_loop.c - the event loop's promises (loop.c, loop_epoll.c): an event
 * is dispatched only to the registration that was watched when the wait
 * returned, even when an earlier handler of the same turn closed that fd
 * and the number was reused for a new one; a deadline the before-sleep
 * hook gives ends the wait on time, an earlier one included, without
 * arming the kernel's timer again at every wait while it stays the same,
 * and still when arming the timer fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"
#include "os.h"

struct turn {
	struct loop *l;
	int fds[2];      /* the two watched read ends */
	int peers[2];    /* their write ends */
	int fresh_peer;  /* write end of the replacement */
	int first;       /* which handler ran first, -1: none */
	int stale_calls; /* calls of the replacement's handler */
};

static void on_fresh(struct loop *l, int fd, void *ctx, unsigned events)
{
	struct turn *t = ctx;

	(void)l;
	(void)fd;
	(void)events;
	t->stale_calls++;
}

/* The first handler to run swaps the other fd for a new socket under the
 * same number, watched by on_fresh with nothing to read. */
static void on_old(struct loop *l, int fd, void *ctx, unsigned events)
{
	struct turn *t = ctx;
	int me = fd == t->fds[0] ? 0 : 1;
	char buf[8];

	(void)events;
	(void)!read(fd, buf, sizeof(buf));
	if (t->first >= 0)
		return;
	t->first = me;
	int other = t->fds[1 - me], sp[2];
	loop_unwatch(l, other);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	assert_int_equal(dup2(sp[0], other), other);
	close(sp[0]);
	t->fresh_peer = sp[1];
	assert_int_equal(loop_watch(l, other, LOOP_READ, on_fresh, t), 0);
}

static void test_stale_events_are_dropped(void **state)
{
	struct turn t = {.first = -1};
	int a[2], b[2];

	(void)state;
	assert_int_equal(loop_create(&t.l), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, a), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, b), 0);
	t.fds[0] = a[0];
	t.fds[1] = b[0];
	assert_int_equal(loop_watch(t.l, a[0], LOOP_READ, on_old, &t), 0);
	assert_int_equal(loop_watch(t.l, b[0], LOOP_READ, on_old, &t), 0);
	assert_int_equal(write(a[1], "x", 1), 1);
	assert_int_equal(write(b[1], "y", 1), 1);
	/* Both are ready: one turn reports both. */
	assert_int_equal(loop_run_once(t.l, 1000), 2);
	assert_int_not_equal(t.first, -1);
	assert_int_equal(t.stale_calls, 0);
	/* The replacement is served normally from the next turn on. */
	assert_int_equal(write(t.fresh_peer, "z", 1), 1);
	assert_int_equal(loop_run_once(t.l, 1000), 1);
	assert_int_equal(t.stale_calls, 1);
	loop_destroy(t.l);
	close(a[0]);
	close(a[1]);
	close(b[0]);
	close(b[1]);
	close(t.fresh_peer);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A before-sleep hook that asks for the wait to end at an absolute
 * deadline, in whole ms rounded up, as the daemon's does. */
struct deadline {
	uint64_t at_ns;
	int reads; /* calls of on_ready */
};

static int until_deadline(struct loop *l, void *ctx)
{
	const struct deadline *d = ctx;
	uint64_t now = mono_ns();

	(void)l;
	return d->at_ns > now ? (int)((d->at_ns - now + 999999) / 1000000) : 0;
}

static void on_ready(struct loop *l, int fd, void *ctx, unsigned events)
{
	(void)l;
	(void)fd;
	(void)events;
	((struct deadline *)ctx)->reads++; /* leaves the byte: fires again */
}

static long timer_calls;
static long timer_result;

static long count_timer(enum os_call call, size_t len)
{
	(void)len;
	if (call != OS_TIMER)
		return 0;
	timer_calls++;
	return timer_result;
}

static int stop_hook(void **state)
{
	(void)state;
	os_fault_hook = NULL;
	return 0;
}

/* Runs turns until one reports no event; returns how long they took. */
static uint64_t ns_until_idle_turn(struct loop *l)
{
	uint64_t t0 = mono_ns();

	while (mono_ns() - t0 < 10000000000ull)
		if (loop_run_once(l, -1) == 0)
			break;
	return mono_ns() - t0;
}

/* A deadline 40 ms away ends a wait with nothing ready: not before it,
 * and not much after (the machine may be busy: 500 ms of leeway). */
static void check_deadline_ends_wait(struct loop *l, struct deadline *d)
{
	d->at_ns = mono_ns() + 40000000ull;
	uint64_t took = ns_until_idle_turn(l);
	assert_true(mono_ns() >= d->at_ns);
	assert_true(took < 540000000ull);
}

/* A loop whose hook asks for d's deadline, and perhaps a watched socket
 * with a byte to read that is never read (ready at every turn). */
struct timed {
	struct deadline d;
	struct loop *l;
	int sp[2];
};

static void timed_start(struct timed *t)
{
	memset(t, 0, sizeof(*t));
	t->sp[0] = t->sp[1] = -1;
	assert_int_equal(loop_create(&t->l), 0);
	loop_before_sleep(t->l, until_deadline, &t->d);
}

static void timed_ready(struct timed *t)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, t->sp), 0);
	assert_int_equal(loop_watch(t->l, t->sp[0], LOOP_READ, on_ready, &t->d),
	                 0);
	assert_int_equal(write(t->sp[1], "x", 1), 1);
}

static void timed_end(struct timed *t)
{
	loop_destroy(t->l);
	for (int i = 0; i < 2; i++)
		if (t->sp[i] >= 0)
			close(t->sp[i]);
}

static void test_deadline_ends_wait(void **state)
{
	struct timed t;

	(void)state;
	timed_start(&t);
	check_deadline_ends_wait(t.l, &t.d);
	/* A far deadline while an fd is ready, then an earlier one: the
	 * earlier one ends the wait, not the far one. */
	timed_ready(&t);
	t.d.at_ns = mono_ns() + 5000000000ull;
	assert_int_equal(loop_run_once(t.l, -1), 1);
	loop_unwatch(t.l, t.sp[0]);
	check_deadline_ends_wait(t.l, &t.d);
	timed_end(&t);
}

/* While the deadline stays the same, the timer is armed once, not at
 * every wait; the timer's own expiry is never reported as an event. */
static void test_same_deadline_arms_once(void **state)
{
	struct timed t;

	(void)state;
	timed_start(&t);
	timed_ready(&t);
	t.d.at_ns = mono_ns() + 60000000000ull;
	timer_calls = 0;
	timer_result = 0;
	os_fault_hook = count_timer;
	for (int i = 0; i < 200; i++)
		assert_int_equal(loop_run_once(t.l, -1), 1);
	os_fault_hook = NULL;
	assert_int_equal(t.d.reads, 200);
	assert_int_equal(timer_calls, 1);
	loop_unwatch(t.l, t.sp[0]);
	/* Expired: the turn it ends reports nothing, and the next deadline
	 * is armed anew. */
	check_deadline_ends_wait(t.l, &t.d);
	check_deadline_ends_wait(t.l, &t.d);
	timed_end(&t);
}

/* When the timer cannot be armed, the deadline goes to the wait itself. */
static void test_deadline_without_timer(void **state)
{
	struct timed t;

	(void)state;
	timed_start(&t);
	timer_calls = 0;
	timer_result = -ENODEV;
	os_fault_hook = count_timer;
	check_deadline_ends_wait(t.l, &t.d);
	check_deadline_ends_wait(t.l, &t.d);
	os_fault_hook = NULL;
	assert_true(timer_calls >= 2);
	timed_end(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stale_events_are_dropped),
	        cmocka_unit_test_teardown(test_deadline_ends_wait, stop_hook),
	        cmocka_unit_test_teardown(test_same_deadline_arms_once,
	                                  stop_hook),
	        cmocka_unit_test_teardown(test_deadline_without_timer,
	                                  stop_hook),
	};
	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
