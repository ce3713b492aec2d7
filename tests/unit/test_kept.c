/*
 * test_kept.c - the ranges a client keeps mapped where it wrote large
 * objects (src/client/freelog.c, client_freelog_created): bounded however
 * many large objects it writes, adjacent or not, and a value refreshed
 * among a few places keeps each of them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client_internal.h"

#define MiB (1ull << 20)

/* Whether [off, off + size) lies inside one kept range. */
static bool kept(const shoal_client *c, uint64_t off, uint64_t size)
{
	for (size_t i = 0; i < CLIENT_KEPT; i++)
		if (c->kept[i].seq && c->kept[i].offset <= off &&
		    off + size <= c->kept[i].offset + c->kept[i].size)
			return true;
	return false;
}

static uint64_t kept_bytes(const shoal_client *c)
{
	uint64_t n = 0;

	for (size_t i = 0; i < CLIENT_KEPT; i++)
		if (c->kept[i].seq)
			n += c->kept[i].size;
	return n;
}

/* A loader that writes 200 large values one after the other (each freed
 * before the next, the allocator placing them side by side): it keeps
 * the places of the last CLIENT_KEPT only, not one range over all. */
static void test_adjacent_large_creates_stay_bounded(void **state)
{
	static shoal_client c;
	const uint64_t size = CLIENT_NAMED_LARGE, base = 4096;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (uint64_t i = 0; i < 200; i++)
		client_freelog_created(&c, base + i * size, size);
	assert_true(kept_bytes(&c) <= CLIENT_KEPT * 2 * size);
	assert_false(kept(&c, base, size));
	for (uint64_t i = 200 - CLIENT_KEPT; i < 200; i++)
		assert_true(kept(&c, base + i * size, size));
}

/* Overlapping creates merge, but never past twice the new object. */
static void test_overlapping_creates_merge_up_to_twice(void **state)
{
	static shoal_client c;
	const uint64_t size = 40 * MiB;

	(void)state;
	memset(&c, 0, sizeof(c));
	for (uint64_t i = 0; i < 100; i++)
		client_freelog_created(&c, 4096 + i * (size / 2), size);
	assert_true(kept_bytes(&c) <= CLIENT_KEPT * 2 * size);
	for (size_t i = 0; i < CLIENT_KEPT; i++)
		assert_true(c.kept[i].size <= 2 * size);
	assert_true(kept(&c, 4096 + 99 * (size / 2), size));
}

/* A frame refreshed under one name wanders among a few places of the
 * reserve (the app's other values fill the one it left): every place
 * stays kept, so each put finds its pages mapped. */
static void test_a_wandering_frame_keeps_its_places(void **state)
{
	static shoal_client c;
	const uint64_t size = 409 * MiB;
	const uint64_t places[] = {4096, 4096 + size, 4096 + 2 * size + 8192,
	                           4096 + 64 * MiB};

	(void)state;
	memset(&c, 0, sizeof(c));
	for (unsigned i = 0; i < 100; i++)
		client_freelog_created(&c, places[i % 4], size);
	for (unsigned i = 0; i < 4; i++)
		assert_true(kept(&c, places[i], size));
}

/* Small creates keep nothing. */
static void test_small_creates_keep_nothing(void **state)
{
	static shoal_client c;

	(void)state;
	memset(&c, 0, sizeof(c));
	client_freelog_created(&c, 4096, CLIENT_NAMED_LARGE - 1);
	assert_int_equal(kept_bytes(&c), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_adjacent_large_creates_stay_bounded),
	        cmocka_unit_test(test_overlapping_creates_merge_up_to_twice),
	        cmocka_unit_test(test_a_wandering_frame_keeps_its_places),
	        cmocka_unit_test(test_small_creates_keep_nothing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
