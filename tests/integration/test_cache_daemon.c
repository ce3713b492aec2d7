/*
 * test_cache_daemon.c - names with a time to live, evictable names and
 * namespaces against a real daemon: expiry on time (seen as an event) and
 * in ttl order, a reader keeping the memory of an expired name, evictable
 * names making room for puts that would otherwise fail, listing and
 * deleting by prefix over many pages, name metadata, the new counters, and
 * the daemon's pid as `shoal stop` finds it. Every wait has a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "raw.h"
#include "shoal.h"
#include "fixture.h"
#include "testd.h"

static int setup(void **state)
{
	return fx_setup(state, "4M", NULL);
}

static int teardown(void **state)
{
	return fx_teardown(state);
}

/* Puts n bytes of value k under name (ttl_ms, flags). Returns the create's
 * status. */
static int put_named(shoal_client *c, const char *name, size_t n, uint8_t k,
                     uint64_t ttl_ms, unsigned flags)
{
	shoal_id id;
	uint8_t *data;
	int rc;

	assert_int_equal(shoal_id_random(&id), 0);
	rc = shoal_create(c, &id, n, 0, 0, &data, NULL);
	if (rc)
		return rc;
	memset(data, k, n);
	assert_int_equal(shoal_seal(c, &id), 0);
	rc = shoal_set_name_ttl(c, name, strlen(name), &id, NULL, ttl_ms, flags,
	                        NULL);
	assert_int_equal(shoal_release_id(c, &id), 0);
	return rc;
}

static bool has_name(shoal_client *c, const char *name)
{
	shoal_name_info info;
	int rc = shoal_name_stat(c, name, strlen(name), &info);

	assert_true(rc == 0 || rc == SHOAL_ENOTFOUND);
	return rc == 0;
}

/* The next event of kind (others skipped), within 5 s. */
static void next_of(shoal_subscription *s, int kind, shoal_event *ev)
{
	uint64_t end = testd_now_ms() + 5000;

	do {
		assert_true(testd_now_ms() < end);
		assert_int_equal(shoal_next_event(s, 5000, ev), 0);
	} while (ev->kind != kind);
}

static void test_ttl_expires_on_time(void **state)
{
	struct fx *f = *state;
	shoal_subscription *s;
	shoal_event ev;
	shoal_stats st;
	int64_t ttl;

	assert_int_equal(shoal_subscribe(f->d.socket, 0, &s), 0);
	uint64_t t0 = testd_now_ms();
	assert_int_equal(put_named(f->c, "soon", 1000, 1, 300, 0), 0);
	assert_int_equal(shoal_ttl(f->c, "soon", 4, &ttl), 0);
	assert_true(ttl > 0 && ttl <= 300);
	next_of(s, SHOAL_EVENT_NAME_EXPIRED, &ev);
	uint64_t took = testd_now_ms() - t0;
	assert_string_equal(ev.name, "soon");
	/* Never early. Late by a few ms on an idle machine; the bound is
	 * wide because the machine running the tests is shared. */
	print_message("expiry of a 300 ms ttl seen after %llu ms\n",
	              (unsigned long long)took);
	assert_true(took >= 300);
	assert_true(took < 300 + 250);
	next_of(s, SHOAL_EVENT_DELETED, &ev);
	assert_false(has_name(f->c, "soon"));
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.names, 0);
	assert_int_equal(st.used_bytes, 0);
	shoal_unsubscribe(s);
}

static void test_expiry_order(void **state)
{
	struct fx *f = *state;
	static const unsigned ttls[] = {120, 40, 200, 80, 160, 20};
	shoal_subscription *s;
	shoal_event ev;

	assert_int_equal(shoal_subscribe(f->d.socket, 0, &s), 0);
	for (unsigned i = 0; i < 6; i++) {
		char name[16];
		snprintf(name, sizeof(name), "t%u", ttls[i]);
		assert_int_equal(put_named(f->c, name, 64, 1, ttls[i], 0), 0);
	}
	/* One without expiry, and one whose ttl is taken away. */
	assert_int_equal(put_named(f->c, "keep", 64, 1, 0, 0), 0);
	assert_int_equal(put_named(f->c, "saved", 64, 1, 10, 0), 0);
	assert_int_equal(shoal_persist(f->c, "saved", 5), 0);
	static const char *order[] = {"t20",  "t40",  "t80",
	                              "t120", "t160", "t200"};
	for (unsigned i = 0; i < 6; i++) {
		next_of(s, SHOAL_EVENT_NAME_EXPIRED, &ev);
		assert_string_equal(ev.name, order[i]);
	}
	assert_true(has_name(f->c, "keep"));
	assert_true(has_name(f->c, "saved"));
	int64_t ttl;
	assert_int_equal(shoal_ttl(f->c, "saved", 5, &ttl), 0);
	assert_int_equal(ttl, -1);
	/* expire 0: gone at once. */
	assert_int_equal(shoal_expire(f->c, "keep", 4, 0), 0);
	assert_false(has_name(f->c, "keep"));
	assert_int_equal(shoal_expire(f->c, "keep", 4, 10), SHOAL_ENOTFOUND);
	assert_int_equal(shoal_persist(f->c, "keep", 4), SHOAL_ENOTFOUND);
	assert_int_equal(shoal_expire(f->c, "saved", 5, SHOAL_TTL_MAX_MS + 1),
	                 SHOAL_ETOOBIG);
	shoal_unsubscribe(s);
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* EXPIRE and PERSIST are NAME_TTL events, with the new expiry as wall
 * clock time, for the subscribers that ask for them and no one else. */
static void test_ttl_change_events(void **state)
{
	struct fx *f = *state;
	shoal_subscription *with, *without;
	shoal_event ev;
	shoal_name_info info;

	assert_int_equal(
	        shoal_subscribe(f->d.socket, SHOAL_SUBSCRIBE_TTL, &with), 0);
	assert_int_equal(shoal_subscribe(f->d.socket, 0, &without), 0);
	assert_int_equal(put_named(f->c, "cfg", 64, 1, 0, 0), 0);
	assert_int_equal(shoal_name_stat(f->c, "cfg", 3, &info), 0);
	uint64_t before = wall_ms();
	assert_int_equal(shoal_expire(f->c, "cfg", 3, 60000), 0);
	uint64_t after = wall_ms();
	next_of(with, SHOAL_EVENT_NAME_TTL, &ev);
	assert_string_equal(ev.name, "cfg");
	assert_memory_equal(ev.id.bytes, info.id.bytes, SHOAL_ID_SIZE);
	assert_int_equal(ev.version, info.version); /* unchanged */
	assert_in_range(ev.expires_ms, before + 60000, after + 60000 + 1);
	assert_int_equal(shoal_persist(f->c, "cfg", 3), 0);
	assert_int_equal(shoal_next_event(with, 5000, &ev), 0);
	assert_int_equal(ev.kind, SHOAL_EVENT_NAME_TTL);
	assert_int_equal(ev.expires_ms, 0);
	/* A persist of a name without a ttl changes nothing: no event. */
	assert_int_equal(shoal_persist(f->c, "cfg", 3), 0);
	assert_int_equal(shoal_delete_name(f->c, "cfg", 3, NULL), 0);
	next_of(with, SHOAL_EVENT_NAME_DELETED, &ev);
	assert_int_equal(ev.expires_ms, 0);
	/* The other subscriber saw the set and the delete, nothing between. */
	next_of(without, SHOAL_EVENT_NAME_SET, &ev);
	assert_int_equal(shoal_next_event(without, 5000, &ev), 0);
	while (ev.kind != SHOAL_EVENT_NAME_DELETED) {
		assert_int_not_equal(ev.kind, SHOAL_EVENT_NAME_TTL);
		assert_int_equal(shoal_next_event(without, 5000, &ev), 0);
	}
	shoal_unsubscribe(with);
	shoal_unsubscribe(without);
}

static void test_reader_keeps_expired_value(void **state)
{
	struct fx *f = *state;
	shoal_view v;
	shoal_stats st;

	assert_int_equal(put_named(f->c, "r", 100000, 7, 0, 0), 0);
	assert_int_equal(shoal_get_name(f->c, "r", 1, 0, &v, NULL), 0);
	assert_int_equal(shoal_expire(f->c, "r", 1, 0), 0);
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	assert_int_equal(st.pending_deletes, 1);
	for (size_t i = 0; i < v.data_size; i++)
		if (v.data[i] != 7)
			fail_msg("byte %zu changed under its reader", i);
	assert_int_equal(shoal_release(f->c, &v), 0);
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	assert_int_equal(st.pending_deletes, 0);
	assert_int_equal(st.used_bytes, 0);
}

static void test_evictable_names_make_room(void **state)
{
	struct fx *f = *state;
	shoal_name_info info;
	shoal_stats st;
	char name[32];

	/* A plain name takes a quarter; then 3x the store's size of
	 * evictable puts all succeed, the oldest making room. */
	assert_int_equal(put_named(f->c, "plain", 1u << 20, 1, 0, 0), 0);
	for (unsigned i = 0; i < 24; i++) {
		snprintf(name, sizeof(name), "cache:%u", i);
		assert_int_equal(put_named(f->c, name, 512u << 10, 2, 0,
		                           SHOAL_NAME_EVICTABLE),
		                 0);
	}
	assert_true(has_name(f->c, "plain"));
	assert_true(has_name(f->c, "cache:23"));
	assert_false(has_name(f->c, "cache:0"));
	assert_int_equal(shoal_name_stat(f->c, "cache:23", 8, &info), 0);
	assert_int_equal(info.flags, SHOAL_NAME_EVICTABLE);
	assert_int_equal(info.ttl_ms, -1);
	assert_int_equal(info.data_size, 512u << 10);
	assert_int_equal(shoal_name_stat(f->c, "plain", 5, &info), 0);
	assert_int_equal(info.flags, 0);
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	assert_true(st.evicted_names >= 18);
	assert_int_equal(st.evicted_names, st.evictions);
	/* Plain names are never evicted: a put needing the plain name's
	 * memory fails, and evicts nothing. */
	uint64_t before = st.evictions;
	assert_int_equal(put_named(f->c, "big", (3u << 20) + 4096, 3, 0, 0),
	                 SHOAL_EFULL);
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	assert_int_equal(st.evictions, before);
	assert_true(has_name(f->c, "plain"));
}

static void test_prefix_list_and_delete(void **state)
{
	struct fx *f = *state;
	shoal_name_info *page = calloc(64, sizeof(*page));
	char *bytes = malloc(SHOAL_NAMES_SIZE(64));
	const size_t nbytes = SHOAL_NAMES_SIZE(64);
	char name[32];
	uint64_t cursor, count;
	size_t n, total;

	assert_non_null(page);
	assert_non_null(bytes);
	for (unsigned i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "a:%u", i);
		assert_int_equal(
		        put_named(f->c, name, 8, 1, i % 2 ? 60000 : 0, 0), 0);
		snprintf(name, sizeof(name), "b:%u", i);
		assert_int_equal(put_named(f->c, name, 8, 1, 0, 0), 0);
	}
	total = 0;
	cursor = 0;
	unsigned with_ttl = 0;
	char last[32] = "";
	do {
		assert_int_equal(shoal_list_names_prefix(f->c, "a:", 2, &cursor,
		                                         page, 64, bytes,
		                                         nbytes, &n),
		                 0);
		for (size_t i = 0; i < n; i++) {
			assert_memory_equal(page[i].name, "a:", 2);
			with_ttl += page[i].ttl_ms > 0;
			/* In name order, across pages too. */
			assert_true(strcmp(page[i].name, last) > 0);
			snprintf(last, sizeof(last), "%s", page[i].name);
		}
		total += n;
	} while (cursor != 0);
	assert_int_equal(total, 300);
	assert_int_equal(with_ttl, 150);
	/* A cursor belongs to the client's current listing. */
	cursor = 0;
	assert_int_equal(shoal_list_names_prefix(f->c, "a:", 2, &cursor, page,
	                                         10, bytes, nbytes, &n),
	                 0);
	assert_int_not_equal(cursor, 0);
	uint64_t stale = cursor;
	assert_int_equal(shoal_list_names_prefix(f->c, "a:", 2, &cursor, page,
	                                         10, bytes, nbytes, &n),
	                 0);
	assert_int_equal(shoal_list_names_prefix(f->c, "a:", 2, &stale, page,
	                                         10, bytes, nbytes, &n),
	                 SHOAL_EINVAL);
	/* Two listings interleaved on one client (two threads, say) each
	 * go on from where they were. */
	uint64_t ca = 0, cb = 0;
	size_t na = 0, nb = 0;
	do {
		if (ca || na == 0) {
			assert_int_equal(shoal_list_names_prefix(
			                         f->c, "a:", 2, &ca, page, 7,
			                         bytes, nbytes, &n),
			                 0);
			na += n;
		}
		if (cb || nb == 0) {
			assert_int_equal(shoal_list_names_prefix(
			                         f->c, "b:", 2, &cb, page, 11,
			                         bytes, nbytes, &n),
			                 0);
			nb += n;
		}
	} while (ca || cb);
	assert_int_equal(na, 300);
	assert_int_equal(nb, 300);
	assert_int_equal(shoal_delete_prefix(f->c, "a:", 2, &count), 0);
	assert_int_equal(count, 300);
	cursor = 0;
	assert_int_equal(shoal_list_names_prefix(f->c, "a:", 2, &cursor, page,
	                                         64, bytes, nbytes, &n),
	                 0);
	assert_int_equal(n, 0);
	assert_int_equal(cursor, 0);
	assert_true(has_name(f->c, "b:299"));
	/* The empty prefix is every name. */
	assert_int_equal(shoal_delete_prefix(f->c, "", 0, &count), 0);
	assert_int_equal(count, 300);
	shoal_stats st;
	assert_int_equal(shoal_get_stats(f->c, &st), 0);
	assert_int_equal(st.names, 0);
	assert_int_equal(st.used_bytes, 0);
	/* Bad prefixes fail without a round trip. */
	assert_int_equal(shoal_delete_prefix(f->c, "\xff", 1, &count),
	                 SHOAL_EINVAL);
	assert_int_equal(shoal_list_names_prefix(f->c, NULL, 0, &cursor, page,
	                                         64, bytes, nbytes, &n),
	                 SHOAL_EINVAL);
	free(bytes);
	free(page);
}

static void test_daemon_pid(void **state)
{
	struct fx *f = *state;
	int64_t pid = 0;

	assert_int_equal(shoal_daemon_pid(f->c, &pid), 0);
	/* With $SHOAL_WRAP (valgrind) the daemon is the wrapper's child
	 * image of the same pid. */
	assert_int_equal(pid, f->d.pid);
}

/* Malformed bodies of the name requests get an error reply each, and the
 * connection goes on: a valid request behind them is answered. */
static void test_malformed_name_requests(void **state)
{
	struct fx *f = *state;
	struct raw_msgs m = {0};
	int fd = raw_connect(f->d.socket);
	uint16_t type;

	/* Bodies are built aside and copied: raw_add's need not be
	 * aligned. EXPIRE announcing a longer name than it carries. */
	struct proto_expire e = {.ttl_ms = 5, .name_len = 9};
	uint8_t *b = raw_add(&m, PROTO_EXPIRE, sizeof(e) + 3);
	memcpy(b, &e, sizeof(e));
	memcpy(b + sizeof(e), "abc", 3);
	/* PERSIST with an invalid UTF-8 name. */
	struct proto_name_req n = {.name_len = 1};
	b = raw_add(&m, PROTO_PERSIST, sizeof(n) + 1);
	memcpy(b, &n, sizeof(n));
	b[sizeof(n)] = 0xff;
	/* NAME_INFO of an empty name. */
	n.name_len = 0;
	memcpy(raw_add(&m, PROTO_NAME_INFO, sizeof(n)), &n, sizeof(n));
	/* DELETE_PREFIX with a prefix over the limit. */
	n.name_len = SHOAL_NAME_MAX + 1;
	memcpy(raw_add(&m, PROTO_DELETE_PREFIX, sizeof(n)), &n, sizeof(n));
	/* LIST_NAMES whose after does not fit the body. */
	struct proto_list_names l = {.after_len = 4};
	memcpy(raw_add(&m, PROTO_LIST_NAMES, sizeof(l)), &l, sizeof(l));
	/* SET_NAME with an unknown flag. */
	struct proto_set_name sn = {.flags = 0x80, .name_len = 1};
	b = raw_add(&m, PROTO_SET_NAME, sizeof(sn) + 1);
	memcpy(b, &sn, sizeof(sn));
	b[sizeof(sn)] = 'x';
	/* A valid listing last. */
	l.after_len = 0;
	memcpy(raw_add(&m, PROTO_LIST_NAMES, sizeof(l)), &l, sizeof(l));
	assert_int_equal(raw_pipeline(fd, &m, 0), 0);
	static const int32_t want[] = {SHOAL_EPROTO, SHOAL_EINVAL,
	                               SHOAL_EINVAL, SHOAL_ETOOBIG,
	                               SHOAL_EPROTO, SHOAL_EINVAL};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		assert_int_equal(raw_read_reply(fd, 5000, &type), want[i]);
	assert_int_equal(raw_read_reply(fd, 5000, &type), 0);
	assert_int_equal(type, PROTO_LIST_NAMES | PROTO_REPLY);
	raw_free(&m);
	close(fd);
}

static void test_bad_names_cost_no_round_trip(void **state)
{
	struct fx *f = *state;
	char *longer = malloc(SHOAL_NAME_MAX + 1);
	const char *bad[] = {NULL, "\xff", "a\0b", longer};
	const size_t len[] = {1, 1, 3, SHOAL_NAME_MAX + 1};
	const int want[] = {SHOAL_EINVAL, SHOAL_EINVAL, SHOAL_EINVAL,
	                    SHOAL_ETOOBIG};
	shoal_id id = {{0}};
	shoal_name_info info;
	shoal_stats before, after;
	shoal_view v;
	int64_t ttl;

	assert_non_null(longer);
	memset(longer, 'x', SHOAL_NAME_MAX + 1);
	assert_int_equal(shoal_get_stats(f->c, &before), 0);
	for (int i = 0; i < 4; i++) {
		const char *n = bad[i];
		size_t l = len[i];

		assert_int_equal(shoal_set_name(f->c, n, l, &id, NULL, NULL),
		                 want[i]);
		assert_int_equal(shoal_get_name(f->c, n, l, 0, &v, NULL),
		                 want[i]);
		assert_int_equal(shoal_delete_name(f->c, n, l, NULL), want[i]);
		assert_int_equal(shoal_expire(f->c, n, l, 1000), want[i]);
		assert_int_equal(shoal_persist(f->c, n, l), want[i]);
		assert_int_equal(shoal_name_stat(f->c, n, l, &info), want[i]);
		assert_int_equal(shoal_ttl(f->c, n, l, &ttl), want[i]);
		assert_int_equal(shoal_delete_prefix(f->c, n, l, NULL),
		                 want[i]);
	}
	/* Nothing but the second stats request reached the daemon. */
	assert_int_equal(shoal_get_stats(f->c, &after), 0);
	assert_int_equal(after.requests - before.requests, 1);
	free(longer);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_ttl_expires_on_time, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_expiry_order, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_ttl_change_events, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_reader_keeps_expired_value,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_evictable_names_make_room,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_prefix_list_and_delete,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_daemon_pid, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_malformed_name_requests,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_bad_names_cost_no_round_trip, setup, teardown),
	};
	return cmocka_run_group_tests_name("cache", tests, NULL, NULL);
}
