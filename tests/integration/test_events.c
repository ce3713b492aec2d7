/*
 * test_events.c - notifications against a real daemon: event order and
 * content, the snapshot, many subscribers, and a subscriber that does not
 * read (it overflows and is dropped; everyone else goes on).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shoal.h"
#include "fixture.h"
#include "testd.h"

static int setup(void **state)
{
	return fx_setup(state, "16M", "--event-queue", "64K", NULL);
}

static int teardown(void **state)
{
	return fx_teardown(state);
}

static void put(shoal_client *c, unsigned k, size_t n, shoal_id *id)
{
	uint8_t *data;

	memset(id, 0x5a, sizeof(*id));
	memcpy(id->bytes, &k, sizeof(k));
	assert_int_equal(shoal_create(c, id, n, 0, 0, &data, NULL), 0);
	memset(data, 1, n);
	assert_int_equal(shoal_seal(c, id), 0);
	assert_int_equal(shoal_release_id(c, id), 0);
}

static void expect(shoal_subscription *s, int kind, const shoal_id *id,
                   const char *name)
{
	shoal_event ev;

	assert_int_equal(shoal_next_event(s, 5000, &ev), 0);
	assert_int_equal(ev.kind, kind);
	if (id)
		assert_memory_equal(ev.id.bytes, id->bytes, SHOAL_ID_SIZE);
	if (name)
		assert_string_equal(ev.name, name);
}

static void test_event_stream(void **state)
{
	struct fx *f = *state;
	shoal_subscription *s;
	shoal_event ev;
	shoal_id a, b;
	uint64_t v;

	assert_int_equal(shoal_subscribe(f->d.socket, 0, &s), 0);
	assert_int_equal(shoal_next_event(s, 0, &ev), SHOAL_ETIMEDOUT);
	put(f->c, 1, 100, &a);
	assert_int_equal(shoal_set_name(f->c, "df", 2, &a, NULL, &v), 0);
	put(f->c, 2, 200, &b);
	assert_int_equal(shoal_set_name(f->c, "df", 2, &b, NULL, NULL), 0);
	assert_int_equal(shoal_delete_name(f->c, "df", 2, NULL), 0);
	put(f->c, 3, 300, &a);
	uint64_t freed;
	assert_int_equal(shoal_evict(f->c, 1, &freed), 0);

	shoal_id id1, id3;
	memset(&id1, 0x5a, sizeof(id1));
	memset(&id3, 0x5a, sizeof(id3));
	unsigned one = 1, three = 3;
	memcpy(id1.bytes, &one, sizeof(one));
	memcpy(id3.bytes, &three, sizeof(three));
	expect(s, SHOAL_EVENT_SEALED, &id1, "");
	assert_int_equal(shoal_next_event(s, 5000, &ev), 0);
	assert_int_equal(ev.kind, SHOAL_EVENT_NAME_SET);
	assert_string_equal(ev.name, "df");
	assert_int_equal(ev.version, v);
	expect(s, SHOAL_EVENT_SEALED, &b, NULL);
	/* Re-pointing the name deletes the object it left. */
	expect(s, SHOAL_EVENT_DELETED, &id1, NULL);
	expect(s, SHOAL_EVENT_NAME_SET, &b, "df");
	expect(s, SHOAL_EVENT_NAME_DELETED, &b, "df");
	expect(s, SHOAL_EVENT_DELETED, &b, NULL);
	expect(s, SHOAL_EVENT_SEALED, &id3, NULL);
	expect(s, SHOAL_EVENT_EVICTED, &id3, NULL);
	assert_int_equal(shoal_next_event(s, 50, &ev), SHOAL_ETIMEDOUT);
	shoal_unsubscribe(s);
}

static void test_snapshot_and_many_subscribers(void **state)
{
	struct fx *f = *state;
	shoal_subscription *subs[20];
	shoal_event ev;
	shoal_id a, b;

	put(f->c, 1, 10, &a);
	put(f->c, 2, 10, &b);
	assert_int_equal(shoal_set_name(f->c, "n", 1, &b, NULL, NULL), 0);
	for (int i = 0; i < 20; i++)
		assert_int_equal(
		        shoal_subscribe(f->d.socket,
		                        i == 0 ? SHOAL_SUBSCRIBE_SNAPSHOT : 0,
		                        &subs[i]),
		        0);
	int sealed = 0, named = 0;
	do {
		assert_int_equal(shoal_next_event(subs[0], 5000, &ev), 0);
		sealed += ev.kind == SHOAL_EVENT_SEALED;
		named += ev.kind == SHOAL_EVENT_NAME_SET;
	} while (ev.kind != SHOAL_EVENT_SNAPSHOT_END);
	assert_int_equal(sealed, 2);
	assert_int_equal(named, 1);
	shoal_id c;
	put(f->c, 3, 10, &c);
	for (int i = 0; i < 20; i++) {
		expect(subs[i], SHOAL_EVENT_SEALED, &c, NULL);
		shoal_unsubscribe(subs[i]);
	}
}

static void test_slow_subscriber_is_dropped(void **state)
{
	struct fx *f = *state;
	shoal_subscription *slow, *fast;
	shoal_stats st;
	shoal_event ev;

	assert_int_equal(shoal_subscribe(f->d.socket, 0, &slow), 0);
	assert_int_equal(shoal_subscribe(f->d.socket, 0, &fast), 0);
	/* 20,000 events, far more than the 64 KiB queue and the socket's
	 * buffer; the fast subscriber keeps up, the slow one reads nothing. */
	for (unsigned i = 0; i < 10000; i++) {
		shoal_id id;
		put(f->c, i, 64, &id);
		assert_int_equal(shoal_delete(f->c, &id, 1, NULL), 0);
		expect(fast, SHOAL_EVENT_SEALED, &id, NULL);
		expect(fast, SHOAL_EVENT_DELETED, &id, NULL);
	}
	/* The slow one finds an overflow at the end of what it can read. */
	int rc, last = 0;
	uint64_t end = testd_now_ms() + 20000;
	while ((rc = shoal_next_event(slow, 5000, &ev)) == 0) {
		last = ev.kind;
		assert_true(testd_now_ms() < end);
	}
	assert_int_equal(last, SHOAL_EVENT_OVERFLOW);
	assert_int_equal(rc, SHOAL_EUNAVAILABLE);
	shoal_unsubscribe(slow);
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	assert_int_equal(st.clients, 2); /* f->c and fast */
	shoal_unsubscribe(fast);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_event_stream, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(
	                test_snapshot_and_many_subscribers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_slow_subscriber_is_dropped,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests_name("events", tests, NULL, NULL);
}
