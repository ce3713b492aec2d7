/*
 * test_abi.c - integration tests of the public structs' layout rules (see
 * SHOAL_ABI_VERSION in shoal.h): names travel as pointer and length into
 * storage with a documented owner, not as 1 KiB arrays inside the structs;
 * a listing's names go into the caller's buffer, and a small buffer ends a
 * page early without losing or repeating a name; structs passed one at a
 * time are filled to the size the caller was compiled with, so a program
 * built against an older (smaller) struct keeps its bytes beyond it, and
 * one built against a larger struct gets zeros there. A real `shoal serve`
 * per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shoal.h"
#include "fixture.h"
#include "testd.h"

#define CANARY 0xa5

static int setup(void **state)
{
	return fx_setup(state, "4M", NULL);
}

/* Puts a one-byte object under name (len bytes). */
static void put_named(shoal_client *c, unsigned n, const char *name, size_t len)
{
	shoal_id id;

	testd_id(&id, 0xc3, n);
	assert_int_equal(shoal_put(c, &id, "x", 1, NULL, 0), 0);
	assert_int_equal(shoal_set_name(c, name, len, &id, NULL, NULL), 0);
}

/* Whether the n bytes at p are all b. */
static bool all_bytes(const void *p, size_t n, uint8_t b)
{
	for (size_t i = 0; i < n; i++)
		if (((const uint8_t *)p)[i] != b)
			return false;
	return true;
}

static void test_structs_carry_no_name_array(void **state)
{
	(void)state;
	/* A name of SHOAL_NAME_MAX bytes no longer sits inside them. */
	assert_true(sizeof(shoal_name_info) < 128);
	assert_true(sizeof(shoal_event) < 128);
}

/* A *_sized() call under test: fills size bytes at out. Returns its code. */
typedef int fill_fn(shoal_client *c, void *out, size_t size);

/*
 * Calls fill as a program built against an older header would (size old,
 * the struct without its later fields) and as one built against a newer
 * header (size bytes and 32 more): the first keeps its bytes beyond old,
 * the second gets zeros beyond size. Leaves the newer fill in out (room
 * for size + 32 bytes).
 */
static void check_fills_callers_size(shoal_client *c, fill_fn *fill,
                                     uint8_t *out, size_t size, size_t old)
{
	memset(out, CANARY, size + 32);
	assert_int_equal(fill(c, out, old), 0);
	assert_true(all_bytes(out + old, size + 32 - old, CANARY));
	memset(out, CANARY, size + 32);
	assert_int_equal(fill(c, out, size + 32), 0);
	assert_true(all_bytes(out + size, 32, 0));
}

static int fill_stats(shoal_client *c, void *out, size_t size)
{
	return shoal_get_stats_sized(c, out, size);
}

static int fill_arena(shoal_client *c, void *out, size_t size)
{
	shoal_arena_sized(c, out, size);
	return 0;
}

static void test_stats_fill_the_callers_size(void **state)
{
	struct fx *f = *state;
	union {
		shoal_stats s;
		uint8_t bytes[sizeof(shoal_stats) + 32];
	} buf;

	check_fills_callers_size(f->c, fill_stats, buf.bytes, sizeof(buf.s),
	                         offsetof(shoal_stats, requests));
	assert_int_equal(buf.s.capacity_bytes, 4u << 20);
	assert_true(buf.s.requests > 0);
	assert_int_equal(shoal_get_stats_sized(f->c, NULL, sizeof(buf.s)),
	                 SHOAL_EINVAL);
}

static void test_arena_info_fills_the_callers_size(void **state)
{
	struct fx *f = *state;
	union {
		shoal_arena_info a;
		uint8_t bytes[sizeof(shoal_arena_info) + 32];
	} buf;
	shoal_arena_info a;

	check_fills_callers_size(f->c, fill_arena, buf.bytes, sizeof(buf.a),
	                         offsetof(shoal_arena_info, data_offset));
	assert_int_equal(buf.a.capacity, 4u << 20);
	assert_true(buf.a.data_offset > 0);
	/* The macro passes the caller's sizeof. */
	shoal_arena(f->c, &a);
	assert_int_equal(a.data_offset, buf.a.data_offset);
}

static void test_event_names_live_in_the_subscription(void **state)
{
	struct fx *f = *state;
	char *longest = malloc(SHOAL_NAME_MAX);
	shoal_subscription *s;
	shoal_event ev;
	shoal_id id;

	assert_non_null(longest);
	memset(longest, 'n', SHOAL_NAME_MAX);
	assert_int_equal(shoal_subscribe(f->d.socket, 0, &s), 0);
	put_named(f->c, 1, longest, SHOAL_NAME_MAX);
	assert_int_equal(shoal_next_event(s, 5000, &ev), 0);
	assert_int_equal(ev.kind, SHOAL_EVENT_SEALED);
	assert_non_null(ev.name);
	assert_int_equal(ev.name_len, 0);
	assert_string_equal(ev.name, "");
	assert_int_equal(shoal_next_event(s, 5000, &ev), 0);
	assert_int_equal(ev.kind, SHOAL_EVENT_NAME_SET);
	assert_int_equal(ev.name_len, SHOAL_NAME_MAX);
	assert_memory_equal(ev.name, longest, SHOAL_NAME_MAX);
	assert_int_equal(ev.name[SHOAL_NAME_MAX], '\0');
	/* An older program's smaller struct keeps its bytes beyond it. */
	struct {
		shoal_event e;
		uint8_t after[16];
	} buf;
	size_t old = offsetof(shoal_event, name);
	memset(&buf, CANARY, sizeof(buf));
	testd_id(&id, 0xc3, 2);
	assert_int_equal(shoal_put(f->c, &id, "y", 1, NULL, 0), 0);
	assert_int_equal(shoal_next_event_sized(s, 5000, &buf.e, old), 0);
	assert_int_equal(buf.e.kind, SHOAL_EVENT_SEALED);
	assert_memory_equal(buf.e.id.bytes, id.bytes, SHOAL_ID_SIZE);
	assert_true(
	        all_bytes((uint8_t *)&buf + old, sizeof(buf) - old, CANARY));
	shoal_unsubscribe(s);
	free(longest);
}

static void test_name_stat_points_at_the_argument(void **state)
{
	struct fx *f = *state;
	const char name[] = "stat-me";
	shoal_name_info info;

	put_named(f->c, 3, name, strlen(name));
	assert_int_equal(shoal_name_stat(f->c, name, strlen(name), &info), 0);
	assert_ptr_equal(info.name, name);
	assert_int_equal(info.name_len, strlen(name));
	assert_int_equal(info.data_size, 1);
}

enum { NAMES = 50, NAME_LEN = 300 };

/* The n-th long name of the listing tests, into buf (NAME_LEN bytes). */
static void long_name(char *buf, unsigned n)
{
	memset(buf, 'a' + n % 26, NAME_LEN);
	buf[0] = 'L';
	buf[1] = (char)('0' + n / 10);
	buf[2] = (char)('0' + n % 10);
}

static void put_long_names(shoal_client *c)
{
	char name[NAME_LEN];

	for (unsigned i = 0; i < NAMES; i++) {
		long_name(name, i);
		put_named(c, 10 + i, name, NAME_LEN);
	}
}

/* Checks the n names of a page: each the next long name in order, its
 * bytes NUL-terminated in the buffer [bytes, bytes + size). */
static void check_page(const shoal_name_info *page, size_t n, const char *bytes,
                       size_t size, unsigned *next)
{
	char want[NAME_LEN];

	for (size_t i = 0; i < n; i++, (*next)++) {
		long_name(want, *next);
		assert_int_equal(page[i].name_len, NAME_LEN);
		assert_memory_equal(page[i].name, want, NAME_LEN);
		assert_int_equal(page[i].name[NAME_LEN], '\0');
		assert_true(page[i].name >= bytes &&
		            page[i].name + NAME_LEN < bytes + size);
	}
}

static void test_small_names_buffer_ends_pages_early(void **state)
{
	struct fx *f = *state;
	/* Room for three names of NAME_LEN + 1 bytes. */
	char bytes[SHOAL_NAME_MAX + 1];
	shoal_name_info page[64];
	uint64_t cursor = 0;
	unsigned next = 0, pages = 0;
	size_t n;

	put_long_names(f->c);
	do {
		assert_int_equal(shoal_list_names_prefix(f->c, "L", 1, &cursor,
		                                         page, 64, bytes,
		                                         sizeof(bytes), &n),
		                 0);
		assert_true(n >= 1 && n <= 3);
		check_page(page, n, bytes, sizeof(bytes), &next);
		pages++;
	} while (cursor != 0);
	assert_int_equal(next, NAMES);
	assert_true(pages >= NAMES / 3);

	/* The stateless listing says there is more, and resumes after. */
	const char *after = NULL;
	size_t after_len = 0;
	char last[NAME_LEN];
	int more;
	next = 0;
	do {
		assert_int_equal(shoal_list_names_after(
		                         f->c, "L", 1, after, after_len, page,
		                         64, bytes, sizeof(bytes), &n, &more),
		                 0);
		assert_true(n >= 1 && n <= 3);
		check_page(page, n, bytes, sizeof(bytes), &next);
		memcpy(last, page[n - 1].name, NAME_LEN);
		after = last;
		after_len = NAME_LEN;
	} while (more);
	assert_int_equal(next, NAMES);

	/* A buffer that might not hold one name is refused. */
	cursor = 0;
	assert_int_equal(shoal_list_names(f->c, &cursor, page, 64, bytes,
	                                  SHOAL_NAME_MAX, &n),
	                 SHOAL_EINVAL);
	assert_int_equal(shoal_list_names(f->c, &cursor, page, 64, NULL,
	                                  sizeof(bytes), &n),
	                 SHOAL_EINVAL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, fx_teardown)
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_structs_carry_no_name_array),
	        T(test_stats_fill_the_callers_size),
	        T(test_arena_info_fills_the_callers_size),
	        T(test_event_names_live_in_the_subscription),
	        T(test_name_stat_points_at_the_argument),
	        T(test_small_names_buffer_ends_pages_early),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
