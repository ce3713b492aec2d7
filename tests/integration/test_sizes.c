/*
 * test_sizes.c - integration tests: the sizes a client is told are the ones
 * it asked for. The daemon rounds blocks up to 64 bytes inside; capacity,
 * evict(), notifications and listings report requested bytes, metadata of
 * any size lives in the arena like data, and a listing says how long each
 * object took from create to seal. A real `shoal serve` per test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "shoal.h"
#include "fixture.h"
#include "testd.h"

static int setup(void **state)
{
	/* Not a multiple of 64: the rounding must not show. */
	return fx_setup(state, "10000000", NULL);
}

static void id_of(shoal_id *id, unsigned n)
{
	testd_id(id, 0x5a, n);
}

static void put_sized(shoal_client *c, unsigned k, uint64_t data, uint32_t meta)
{
	shoal_id id;
	uint8_t *d, *m;

	id_of(&id, k);
	assert_int_equal(shoal_create(c, &id, data, meta, 0, &d, &m), 0);
	memset(d, 1, data);
	if (meta)
		memset(m, 2, meta);
	assert_int_equal(shoal_seal(c, &id), 0);
	assert_int_equal(shoal_release_id(c, &id), 0);
}

static void test_capacity_is_exact(void **state)
{
	struct fx *f = *state;
	shoal_arena_info a;
	shoal_stats s;
	shoal_id id;
	uint8_t *d, *m;

	shoal_arena(f->c, &a);
	assert_int_equal(a.capacity, 10000000);
	assert_int_equal(shoal_get_stats(f->c, &s), 0);
	assert_int_equal(s.capacity_bytes, 10000000);
	id_of(&id, 1);
	assert_int_equal(shoal_create(f->c, &id, 9999999, 2, 0, &d, &m),
	                 SHOAL_EFULL);
	/* Exactly the capacity fits, data and metadata together. */
	put_sized(f->c, 1, 9999000, 1000);
}

static void test_evict_reports_requested_bytes(void **state)
{
	struct fx *f = *state;
	uint64_t freed = 0;

	put_sized(f->c, 1, 1000, 0);
	put_sized(f->c, 2, 409, 130);
	/* The releases ride with this request; LRU order is 1 then 2. */
	assert_int_equal(shoal_evict(f->c, 1, &freed), 0);
	assert_int_equal(freed, 1000);
	assert_int_equal(shoal_evict(f->c, 1, &freed), 0);
	assert_int_equal(freed, 409 + 130);
	assert_int_equal(shoal_evict(f->c, 1, &freed), 0);
	assert_int_equal(freed, 0);
}

static void test_metadata_of_any_size(void **state)
{
	struct fx *f = *state;
	const uint32_t meta = 5u << 20; /* over the old 1 MiB limit */
	shoal_view v;
	shoal_id id;

	put_sized(f->c, 7, 3, meta);
	id_of(&id, 7);
	assert_int_equal(shoal_get(f->c, &id, 1, 0, &v), 0);
	assert_int_equal(v.status, 0);
	assert_int_equal(v.data_size, 3);
	assert_int_equal(v.metadata_size, meta);
	assert_int_equal(v.metadata[0], 2);
	assert_int_equal(v.metadata[meta - 1], 2);
	assert_int_equal(shoal_release(f->c, &v), 0);
}

static const shoal_object_info *find(const shoal_object_info *objs, size_t n,
                                     unsigned k)
{
	shoal_id id;

	id_of(&id, k);
	for (size_t i = 0; i < n; i++)
		if (memcmp(objs[i].id.bytes, id.bytes, SHOAL_ID_SIZE) == 0)
			return &objs[i];
	fail_msg("object %u is not listed", k);
	return NULL;
}

static void test_list_construct_time(void **state)
{
	struct fx *f = *state;
	struct timespec pause = {0, 250 * 1000 * 1000};
	shoal_object_info objs[8];
	uint64_t cursor = 0;
	size_t n = 0;
	shoal_id id;
	uint8_t *d, *m;

	id_of(&id, 3);
	assert_int_equal(shoal_create(f->c, &id, 10, 0, 0, &d, &m), 0);
	assert_int_equal(shoal_list(f->c, &cursor, objs, 8, &n), 0);
	assert_int_equal(find(objs, n, 3)->construct_ms, -1);
	nanosleep(&pause, NULL);
	assert_int_equal(shoal_seal(f->c, &id), 0);
	cursor = 0;
	assert_int_equal(shoal_list(f->c, &cursor, objs, 8, &n), 0);
	assert_in_range(find(objs, n, 3)->construct_ms, 240, 60000);
	assert_int_equal(shoal_release_id(f->c, &id), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, fx_teardown)
	const struct CMUnitTest tests[] = {
	        T(test_capacity_is_exact),
	        T(test_evict_reports_requested_bytes),
	        T(test_metadata_of_any_size),
	        T(test_list_construct_time),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
