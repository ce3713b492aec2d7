/*
 * test_loop.c - the event loop's promise (loop.c): an event is dispatched
 * only to the registration that was watched when the wait returned, even
 * when an earlier handler of the same turn closed that fd and the number
 * was reused for a new one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "loop.h"

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

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_stale_events_are_dropped),
	};
	return cmocka_run_group_tests_name("loop", tests, NULL, NULL);
}
