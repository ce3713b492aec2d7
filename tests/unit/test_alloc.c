/*
 * test_alloc.c - unit tests of the arena allocator (src/daemon/alloc.c).
 *
 * Small tests pin each promise of alloc.h: exact capacity, rounding and
 * alignment, complete coalescing, rejection of bad frees, alloc_fits_if()
 * and alloc_foreach_free(). A seeded differential test runs long random
 * sequences against a naive model (a sorted array of segments) that follows
 * the allocator's placements and decides independently whether a request
 * must fit; a longevity test checks that no capacity is lost over millions
 * of operations; a fault test makes metadata growth fail through the
 * system seam (os.h) and checks that SHOAL_ENOMEM changes nothing. Every test
 * ends with alloc_check().
 *
 * SHOAL_TEST_SCALE (a positive number, default 1, or 0.5 under
 * AddressSanitizer) scales the random tests' operation counts;
 * SHOAL_TEST_SEED picks their seed, which a failure prints.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "layout.h"
#include "os.h"
#include "shoal.h"

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define KB (1024ull)
#define MB (1024ull * KB)

/* A non-zero, 64-aligned base, as the daemon uses (the header page). */
#define BASE LAYOUT_HEADER_SIZE

/*
 * The allocator's metadata allocations (its nodes and its hash table) go
 * through the system seam (os.h); this hook makes them fail. While
 * fail_countdown is 0 every one fails; while positive it counts down the
 * ones that may still succeed; -1 disables failures.
 */
static long fail_countdown = -1;
static unsigned long fail_hits;

static long fail_alloc(enum os_call call, size_t len)
{
	(void)len;
	if (call != OS_ALLOC)
		return 0;
	if (fail_countdown == 0) {
		fail_hits++;
		return -ENOMEM;
	}
	if (fail_countdown > 0)
		fail_countdown--;
	return 0;
}

static void check_ok(const struct alloc *a)
{
	char msg[256];

	if (alloc_check(a, msg, sizeof msg) != 0)
		fail_msg("alloc_check: %s", msg);
}

static struct alloc *create(uint64_t size)
{
	struct alloc *a = NULL;

	assert_int_equal(alloc_create(BASE, size, &a), 0);
	assert_non_null(a);
	return a;
}

static uint64_t must_alloc(struct alloc *a, uint64_t size)
{
	uint64_t off = UINT64_MAX;

	assert_int_equal(alloc_alloc(a, size, &off), 0);
	return off;
}

/* ---- Free-list snapshots through alloc_foreach_free(). ---- */

struct span {
	uint64_t off, size;
};

struct spans {
	struct span v[64];
	size_t n;
};

static int collect(void *ctx, uint64_t off, uint64_t size)
{
	struct spans *s = ctx;

	assert_true(s->n < 64);
	s->v[s->n++] = (struct span){off, size};
	return 0;
}

static struct spans free_spans(const struct alloc *a)
{
	struct spans s = {.n = 0};

	assert_int_equal(alloc_foreach_free(a, collect, &s), 0);
	return s;
}

/* ---- Deterministic tests. ---- */

static void test_create_rejects_bad_arguments(void **state)
{
	struct alloc *a = NULL;

	(void)state;
	assert_int_equal(alloc_create(BASE, 0, &a), SHOAL_EINVAL);
	assert_int_equal(alloc_create(BASE, 100, &a), SHOAL_EINVAL);
	assert_int_equal(alloc_create(BASE + 1, 4096, &a), SHOAL_EINVAL);
	assert_int_equal(alloc_create(UINT64_MAX - 63, 128, &a), SHOAL_EINVAL);
	assert_null(a);
	alloc_destroy(NULL);

	/* The largest range there is works, and holds one block of it. */
	assert_int_equal(alloc_create(0, UINT64_MAX - 63, &a), 0);
	assert_int_equal(alloc_largest_free(a), UINT64_MAX - 63);
	assert_int_equal(alloc_alloc(a, UINT64_MAX, &(uint64_t){0}),
	                 SHOAL_EFULL);
	assert_int_equal(alloc_alloc(a, UINT64_MAX - 63, &(uint64_t){0}), 0);
	assert_int_equal(alloc_used(a), UINT64_MAX - 63);
	check_ok(a);
	alloc_destroy(a);
}

static void test_empty_holds_exactly_capacity(void **state)
{
	const uint64_t size = 10 * MB + 64 * 7;
	struct alloc *a = create(size);
	struct spans s;
	uint64_t off = 0;

	(void)state;
	assert_int_equal(alloc_free_blocks(a), 1);
	assert_int_equal(alloc_largest_free(a), size);
	assert_int_equal(alloc_used(a), 0);
	assert_int_equal(alloc_alloc(a, size + 1, &off), SHOAL_EFULL);
	assert_int_equal(alloc_used(a), 0);

	off = must_alloc(a, size);
	assert_int_equal(off, BASE);
	assert_int_equal(alloc_used(a), size);
	assert_int_equal(alloc_block_size(a, off), size);
	assert_int_equal(alloc_free_blocks(a), 0);
	assert_int_equal(alloc_largest_free(a), 0);
	assert_int_equal(alloc_alloc(a, 1, &off), SHOAL_EFULL);
	check_ok(a);

	assert_int_equal(alloc_free(a, BASE), size);
	s = free_spans(a);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.v[0].off, BASE);
	assert_int_equal(s.v[0].size, size);
	assert_int_equal(alloc_free_blocks(a), 1);
	assert_int_equal(alloc_used(a), 0);
	check_ok(a);
	alloc_destroy(a);
}

static void test_rounding_and_alignment(void **state)
{
	static const struct {
		uint64_t ask, get;
	} cases[] = {
	        {0, 64},      {1, 64},           {63, 64},
	        {64, 64},     {65, 128},         {127, 128},
	        {128, 128},   {1000, 1024},      {4097, 4160},
	        {MB - 1, MB}, {MB + 1, MB + 64}, {3 * MB + 65, 3 * MB + 128},
	};
	struct alloc *a = create(64 * MB);
	uint64_t total = 0;

	(void)state;
	for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
		uint64_t off = must_alloc(a, cases[k].ask);
		assert_int_equal(off % LAYOUT_ALIGN, 0);
		assert_true(off >= BASE &&
		            off + cases[k].get <= BASE + 64 * MB);
		assert_int_equal(alloc_block_size(a, off), cases[k].get);
		if (cases[k].get > 64)
			assert_int_equal(alloc_block_size(a, off + 64), 0);
		assert_int_equal(alloc_block_size(a, off + 1), 0);
		total += cases[k].get;
		assert_int_equal(alloc_used(a), total);
	}
	/* Sizes near UINT64_MAX must not wrap around when rounded. */
	assert_int_equal(alloc_alloc(a, UINT64_MAX, &(uint64_t){0}),
	                 SHOAL_EFULL);
	assert_int_equal(alloc_alloc(a, UINT64_MAX - 62, &(uint64_t){0}),
	                 SHOAL_EFULL);
	assert_int_equal(alloc_used(a), total);
	check_ok(a);
	alloc_destroy(a);
}

static void test_free_coalesces_both_sides(void **state)
{
	struct alloc *a = create(64 * 10);
	uint64_t off[10];
	struct spans s;

	(void)state;
	for (int k = 0; k < 10; k++)
		off[k] = must_alloc(a, 64);
	assert_int_equal(alloc_free_blocks(a), 0);

	assert_int_equal(alloc_free(a, off[2]), 64);
	assert_int_equal(alloc_free(a, off[4]), 64);
	assert_int_equal(alloc_free_blocks(a), 2);
	assert_int_equal(alloc_free(a, off[3]), 64); /* joins 2..4 */
	assert_int_equal(alloc_free_blocks(a), 1);
	s = free_spans(a);
	assert_int_equal(s.v[0].off, off[2]);
	assert_int_equal(s.v[0].size, 3 * 64);

	assert_int_equal(alloc_free(a, off[9]), 64); /* last block */
	assert_int_equal(alloc_free(a, off[0]), 64); /* first block */
	assert_int_equal(alloc_free(a, off[1]), 64); /* joins 0..4 */
	assert_int_equal(alloc_free(a, off[5]), 64); /* joins 0..5 */
	s = free_spans(a);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.v[0].off, BASE);
	assert_int_equal(s.v[0].size, 6 * 64);
	assert_int_equal(s.v[1].off, off[9]);
	check_ok(a);

	/* The merged run is reused in one piece. */
	assert_int_equal(must_alloc(a, 6 * 64), BASE);
	for (int k = 0; k < 6; k++)
		assert_int_equal(alloc_free(a, off[k]), k ? 0 : 6 * 64);
	for (int k = 6; k < 9; k++)
		assert_int_equal(alloc_free(a, off[k]), 64);
	assert_int_equal(alloc_free_blocks(a), 1);
	assert_int_equal(alloc_largest_free(a), 64 * 10);
	check_ok(a);
	alloc_destroy(a);
}

/*
 * A block that fits only inside its own size class: 35 granules lie in the
 * class [34, 36), so a good-fit search for 35 starts at [36, 38) and finds
 * nothing. Capacity is exact only if the own class is scanned too.
 */
static void test_fit_from_own_class(void **state)
{
	const uint64_t rest = 1000 * 64;
	struct alloc *a = create(35 * 64 + 64 + 34 * 64 + 64 + rest);
	uint64_t big, small, pin1, pin2, off;

	(void)state;
	big = must_alloc(a, 35 * 64);
	pin1 = must_alloc(a, 64);
	small = must_alloc(a, 34 * 64);
	pin2 = must_alloc(a, 64);
	must_alloc(a, rest);
	assert_int_equal(alloc_free(a, big), 35 * 64);
	assert_int_equal(alloc_free(a, small), 34 * 64);
	assert_int_equal(alloc_largest_free(a), 35 * 64);

	assert_int_equal(alloc_alloc(a, 35 * 64 + 1, &off), SHOAL_EFULL);
	assert_int_equal(must_alloc(a, 35 * 64 - 10), big);
	assert_int_equal(alloc_largest_free(a), 34 * 64);
	assert_int_equal(alloc_alloc(a, 34 * 64 + 1, &off), SHOAL_EFULL);
	assert_int_equal(must_alloc(a, 34 * 64), small);
	assert_int_equal(alloc_largest_free(a), 0);
	assert_int_equal(alloc_block_size(a, pin1), 64);
	assert_int_equal(alloc_block_size(a, pin2), 64);
	check_ok(a);
	alloc_destroy(a);
}

static void test_bad_free_changes_nothing(void **state)
{
	struct alloc *a = create(64 * KB);
	uint64_t x, y, used;
	struct spans before, after;

	(void)state;
	x = must_alloc(a, 256);
	y = must_alloc(a, 128);
	must_alloc(a, 64);
	assert_int_equal(alloc_free(a, y), 128);
	used = alloc_used(a);
	before = free_spans(a);

	const uint64_t bad[] = {
	        x + 1,
	        x + 64,
	        x + 192,
	        y,              /* already free */
	        BASE + 64 * KB, /* the end */
	        0,
	        UINT64_MAX,
	        UINT64_MAX - 63,
	        BASE - 64,
	};
	for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
		assert_int_equal(alloc_free(a, bad[k]), 0);
		assert_int_equal(alloc_block_size(a, bad[k]), 0);
	}
	after = free_spans(a);
	assert_int_equal(alloc_used(a), used);
	assert_int_equal(after.n, before.n);
	assert_memory_equal(after.v, before.v, before.n * sizeof before.v[0]);
	assert_int_equal(alloc_block_size(a, x), 256);
	check_ok(a);
	alloc_destroy(a);
}

/* Reclaimable when the block's offset is in the context's list. */
struct victims {
	const uint64_t *off;
	size_t n;
	unsigned calls;
};

static bool is_victim(void *ctx, uint64_t off, uint64_t size)
{
	struct victims *v = ctx;

	assert_true(size > 0 && size % 64 == 0);
	v->calls++;
	for (size_t k = 0; k < v->n; k++) {
		if (v->off[k] == off)
			return true;
	}
	return false;
}

static void test_fits_if_reclaimable(void **state)
{
	struct alloc *a = create(64 * 16);
	uint64_t b[8];

	(void)state;
	/* Blocks of 2 granules; free b[2] and b[5]: [u u f u u f u u]. */
	for (int k = 0; k < 8; k++)
		b[k] = must_alloc(a, 128);
	alloc_free(a, b[2]);
	alloc_free(a, b[5]);

	struct victims none = {NULL, 0, 0};
	assert_true(alloc_fits_if(a, 128, is_victim, &none));
	assert_false(alloc_fits_if(a, 129, is_victim, &none));
	assert_true(none.calls > 0);

	/* b[3], b[4] reclaimable: b[2..5] is a run of 8 granules. */
	const uint64_t mid[] = {b[3], b[4]};
	struct victims v = {mid, 2, 0};
	assert_true(alloc_fits_if(a, 8 * 64, is_victim, &v));
	assert_false(alloc_fits_if(a, 8 * 64 + 1, is_victim, &v));

	/* b[1] and b[6]: runs b[1..2] and b[5..6], which do not join. */
	const uint64_t apart[] = {b[1], b[6]};
	struct victims e = {apart, 2, 0};
	assert_true(alloc_fits_if(a, 4 * 64, is_victim, &e));
	assert_false(alloc_fits_if(a, 5 * 64, is_victim, &e));

	/* Everything reclaimable: the whole range. */
	struct victims all = {b, 8, 0};
	assert_true(alloc_fits_if(a, 16 * 64, is_victim, &all));
	assert_false(alloc_fits_if(a, 16 * 64 + 1, is_victim, &all));
	assert_false(alloc_fits_if(a, UINT64_MAX, is_victim, &all));
	check_ok(a);
	alloc_destroy(a);
}

static int stop_at_second(void *ctx, uint64_t off, uint64_t size)
{
	unsigned *seen = ctx;

	(void)off;
	(void)size;
	return ++*seen == 2 ? 42 : 0;
}

static void test_foreach_free_order_and_stop(void **state)
{
	struct alloc *a = create(64 * KB);
	uint64_t b[20];
	struct spans s;
	unsigned seen = 0;

	(void)state;
	for (int k = 0; k < 20; k++)
		b[k] = must_alloc(a, 64 * (uint64_t)(k + 1));
	/* Free in scrambled order so that no list order is address order. */
	const int order[] = {17, 3, 11, 7, 15, 1, 13, 5, 9};
	for (size_t k = 0; k < sizeof order / sizeof order[0]; k++)
		alloc_free(a, b[order[k]]);

	s = free_spans(a);
	assert_int_equal(s.n, 10); /* the nine and the tail */
	for (size_t k = 0; k < 9; k++) {
		assert_int_equal(s.v[k].off, b[2 * k + 1]);
		assert_int_equal(s.v[k].size, 64 * (2 * k + 2));
	}
	assert_int_equal(s.v[9].off, b[19] + 64 * 20);
	assert_int_equal(alloc_foreach_free(a, stop_at_second, &seen), 42);
	assert_int_equal(seen, 2);
	check_ok(a);
	alloc_destroy(a);
}

/* A million small blocks: the hash table and node array grow and stay
 * consistent, and freeing every other block leaves that many free ones. */
static void test_many_blocks(void **state)
{
	const uint64_t n = SANITIZED ? 200000 : 1000000;
	struct alloc *a = create(n * 128);
	uint64_t *off = malloc(n * sizeof *off);

	(void)state;
	assert_non_null(off);
	for (uint64_t k = 0; k < n; k++)
		off[k] = must_alloc(a, 1 + k % 128);
	assert_int_equal(alloc_free_blocks(a), 1);
	for (uint64_t k = 0; k < n; k += 2)
		assert_int_equal(alloc_free(a, off[k]),
		                 64 * (1 + (k % 128) / 64));
	assert_int_equal(alloc_free_blocks(a), n / 2 + 1);
	check_ok(a);
	for (uint64_t k = 1; k < n; k += 2)
		alloc_free(a, off[k]);
	assert_int_equal(alloc_free_blocks(a), 1);
	assert_int_equal(alloc_largest_free(a), n * 128);
	assert_int_equal(alloc_used(a), 0);
	check_ok(a);
	free(off);
	alloc_destroy(a);
}

/* Claiming exact extents (restart recovery) carves them where asked, in
 * any order, refuses overlaps and ranges outside, and the claimed blocks
 * free and coalesce like allocated ones. */
static void test_claim_extents(void **state)
{
	struct alloc *a = create(64 * 1024);
	const uint64_t at[] = {BASE + 64 * 900, BASE + 64 * 10, BASE,
	                       BASE + 64 * 1023, BASE + 64 * 400};
	const uint64_t len[] = {64 * 5, 100, 64, 64, 64 * 300};

	(void)state;
	for (size_t k = 0; k < 5; k++) {
		assert_int_equal(alloc_claim(a, at[k], len[k]), 0);
		assert_int_equal(alloc_block_size(a, at[k]),
		                 (len[k] + 63) / 64 * 64);
		check_ok(a);
	}
	/* Overlapping a claimed block, unaligned, or past the end. */
	assert_int_equal(alloc_claim(a, BASE + 64 * 899, 128), SHOAL_EINVAL);
	assert_int_equal(alloc_claim(a, BASE + 64 * 11, 64), SHOAL_EINVAL);
	assert_int_equal(alloc_claim(a, BASE + 64 * 50 + 8, 64), SHOAL_EINVAL);
	assert_int_equal(alloc_claim(a, BASE + 64 * 1024, 64), SHOAL_EINVAL);
	assert_int_equal(alloc_claim(a, BASE + 64 * 1020, 64 * 5),
	                 SHOAL_EINVAL);
	check_ok(a);
	assert_int_equal(alloc_used(a), 64 * (5 + 2 + 1 + 1 + 300));
	/* The gaps are free blocks that normal allocations use. */
	assert_int_equal(alloc_largest_free(a), 64 * (400 - 12));
	for (size_t k = 0; k < 5; k++)
		alloc_free(a, at[k]);
	assert_int_equal(alloc_free_blocks(a), 1);
	assert_int_equal(alloc_largest_free(a), 64 * 1024);
	check_ok(a);
	/* Descending order, many blocks: each claim is at the front. */
	for (uint64_t k = 1024; k-- > 0;)
		if (k % 3)
			assert_int_equal(alloc_claim(a, BASE + 64 * k, 64), 0);
	check_ok(a);
	assert_int_equal(alloc_free_blocks(a), 342);
	alloc_destroy(a);
}

/* ---- Fault injection. ---- */

struct snapshot {
	uint64_t used, free_blocks, largest, sum;
};

static int fold(void *ctx, uint64_t off, uint64_t size)
{
	uint64_t *sum = ctx;

	*sum = (*sum ^ off) * 0x100000001b3ull + size;
	return 0;
}

static struct snapshot snap(const struct alloc *a)
{
	struct snapshot s = {alloc_used(a), alloc_free_blocks(a),
	                     alloc_largest_free(a), 0};

	alloc_foreach_free(a, fold, &s.sum);
	return s;
}

static int stop_failing(void **state)
{
	(void)state;
	fail_countdown = -1;
	os_fault_hook = NULL;
	return 0;
}

static void test_enomem_changes_nothing(void **state)
{
	struct alloc *a = NULL;
	struct snapshot after;
	uint64_t off[64], x;
	unsigned ok = 0, k, enomem = 0;

	(void)state;
	os_fault_hook = fail_alloc;
	/* Creation fails cleanly at each of its allocations. */
	for (long n = 0; n < 4; n++) {
		fail_countdown = n;
		assert_int_equal(alloc_create(BASE, MB, &a), SHOAL_ENOMEM);
		assert_null(a);
	}
	fail_countdown = 4;
	assert_int_equal(alloc_create(BASE, MB, &a), 0);

	/* With growth failing, allocation works while metadata has room,
	 * then fails with SHOAL_ENOMEM, changing nothing. */
	fail_countdown = 0;
	fail_hits = 0;
	for (k = 0; k < 64; k++) {
		struct snapshot before = snap(a);
		int rc = alloc_alloc(a, 64 * (k % 3 + 1), &off[ok]);
		if (rc == 0) {
			ok++;
			continue;
		}
		assert_int_equal(rc, SHOAL_ENOMEM);
		enomem++;
		after = snap(a);
		assert_int_equal(after.used, before.used);
		assert_int_equal(after.free_blocks, before.free_blocks);
		assert_int_equal(after.largest, before.largest);
		assert_int_equal(after.sum, before.sum);
		check_ok(a);
	}
	assert_true(ok >= 8 && ok < 64);
	assert_int_equal(enomem, 64 - ok);
	assert_true(fail_hits > 0);

	/* Freeing never needs memory; neither does an exact fit. */
	for (k = 0; k < ok; k++)
		assert_true(alloc_free(a, off[k]) > 0);
	assert_int_equal(alloc_free_blocks(a), 1);
	assert_int_equal(alloc_alloc(a, MB, &x), 0);
	assert_int_equal(alloc_free(a, x), MB);

	/* Once memory is back, the same requests succeed. */
	fail_countdown = -1;
	for (k = 0; k < 64; k++)
		off[k] = must_alloc(a, 64 * (k % 3 + 1));
	check_ok(a);
	for (k = 0; k < 64; k++)
		alloc_free(a, off[k]);
	assert_int_equal(alloc_free_blocks(a), 1);
	check_ok(a);
	alloc_destroy(a);
}

/* ---- Random tests. ---- */

static uint64_t rng_state;
static uint64_t seed;
static uint64_t op_no; /* for failure messages */

static uint64_t rnd(void)
{
	/* splitmix64 */
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static uint64_t rnd_between(uint64_t lo, uint64_t hi)
{
	return lo + rnd() % (hi - lo + 1);
}

/* Log-uniform in [lo, hi]: every magnitude equally often. */
static uint64_t rnd_log(uint64_t lo, uint64_t hi)
{
	unsigned l0 = 63 - (unsigned)__builtin_clzll(lo);
	unsigned l1 = 63 - (unsigned)__builtin_clzll(hi);
	unsigned l = (unsigned)rnd_between(l0, l1);
	uint64_t a = l == l0 ? lo : 1ull << l;
	uint64_t b = l == l1 ? hi : (2ull << l) - 1;
	return rnd_between(a, b);
}

static double test_scale(void)
{
	const char *env = getenv("SHOAL_TEST_SCALE");

	if (env && *env) {
		double s = strtod(env, NULL);
		if (s > 0)
			return s;
	}
	return SANITIZED ? 0.5 : 1.0;
}

static uint64_t scaled(uint64_t ops)
{
	double n = (double)ops * test_scale();
	return n < 1000 ? 1000 : (uint64_t)n;
}

static void seed_rng(uint64_t salt)
{
	const char *env = getenv("SHOAL_TEST_SEED");

	seed = env && *env ? strtoull(env, NULL, 0) : 0x5eed0a110c;
	rng_state = seed ^ salt;
	op_no = 0;
}

#define EXPECT(cond)                                                \
	do {                                                        \
		if (!(cond))                                        \
			fail_msg("%s: failed at op %" PRIu64        \
			         " (SHOAL_TEST_SEED=%#" PRIx64 ")", \
			         #cond, op_no, seed);               \
	} while (0)

/* Live blocks, for picking one to free at random. */
struct live {
	uint64_t *off;
	size_t n, cap;
};

static void live_add(struct live *l, uint64_t off)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 1024;
		l->off = realloc(l->off, l->cap * sizeof *l->off);
		assert_non_null(l->off);
	}
	l->off[l->n++] = off;
}

static uint64_t live_take(struct live *l, size_t k)
{
	uint64_t off = l->off[k];

	l->off[k] = l->off[--l->n];
	return off;
}

/*
 * The reference model: the range as a sorted array of segments, free or
 * used, neighbouring free segments always merged. It does not choose
 * placements (those are the allocator's business); it checks that each one
 * lies inside a free segment, and decides by linear search whether a
 * request must fit.
 */
struct seg {
	uint64_t off, size;
	bool used;
};

struct model {
	struct seg *s;
	size_t n, cap;
	uint64_t base, size, used;
};

static void model_init(struct model *m, uint64_t base, uint64_t size)
{
	m->cap = 1024;
	m->s = malloc(m->cap * sizeof *m->s);
	assert_non_null(m->s);
	m->s[0] = (struct seg){base, size, false};
	m->n = 1;
	m->base = base;
	m->size = size;
	m->used = 0;
}

/* Index of the segment holding off (which must be in range). */
static size_t model_find(const struct model *m, uint64_t off)
{
	size_t lo = 0, hi = m->n; /* s[lo].off <= off < s[hi].off */

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->s[mid].off <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

/* Size of the used segment starting at off, or 0. */
static uint64_t model_used_at(const struct model *m, uint64_t off)
{
	size_t k;

	if (off < m->base || off >= m->base + m->size)
		return 0;
	k = model_find(m, off);
	return m->s[k].off == off && m->s[k].used ? m->s[k].size : 0;
}

static uint64_t model_largest_free(const struct model *m)
{
	uint64_t largest = 0;

	for (size_t k = 0; k < m->n; k++) {
		if (!m->s[k].used && m->s[k].size > largest)
			largest = m->s[k].size;
	}
	return largest;
}

static uint64_t model_free_blocks(const struct model *m)
{
	uint64_t n = 0;

	for (size_t k = 0; k < m->n; k++)
		n += !m->s[k].used;
	return n;
}

/* Marks [off, off + size) used, splitting the free segment it must lie in
 * into up to three pieces. False if it does not lie in one free segment. */
static bool model_take(struct model *m, uint64_t off, uint64_t size)
{
	struct seg piece[3];
	size_t np = 0, k;
	uint64_t end;

	if (off < m->base || off >= m->base + m->size)
		return false;
	k = model_find(m, off);
	end = m->s[k].off + m->s[k].size;
	if (m->s[k].used || size > end - off)
		return false;
	if (off > m->s[k].off)
		piece[np++] =
		        (struct seg){m->s[k].off, off - m->s[k].off, false};
	piece[np++] = (struct seg){off, size, true};
	if (off + size < end)
		piece[np++] = (struct seg){off + size, end - off - size, false};
	if (m->n + 2 > m->cap) {
		m->cap *= 2;
		m->s = realloc(m->s, m->cap * sizeof *m->s);
		assert_non_null(m->s);
	}
	memmove(&m->s[k + np], &m->s[k + 1], (m->n - k - 1) * sizeof *m->s);
	memcpy(&m->s[k], piece, np * sizeof *piece);
	m->n += np - 1;
	m->used += size;
	return true;
}

/* Frees the used segment starting at off and merges; returns its size, or
 * 0 when no used segment starts there. */
static uint64_t model_release(struct model *m, uint64_t off)
{
	size_t k, first, last;
	uint64_t size;

	if (off < m->base || off >= m->base + m->size)
		return 0;
	k = model_find(m, off);
	if (m->s[k].off != off || !m->s[k].used)
		return 0;
	size = m->s[k].size;
	m->used -= size;
	first = k > 0 && !m->s[k - 1].used ? k - 1 : k;
	last = k + 1 < m->n && !m->s[k + 1].used ? k + 1 : k;
	m->s[first].used = false;
	m->s[first].size = m->s[last].off + m->s[last].size - m->s[first].off;
	memmove(&m->s[first + 1], &m->s[last + 1],
	        (m->n - last - 1) * sizeof *m->s);
	m->n -= last - first;
	return size;
}

struct cursor {
	const struct model *m;
	size_t k;
	bool ok;
};

/* Checks each free block against the model's next free segment. */
static int match_free(void *ctx, uint64_t off, uint64_t size)
{
	struct cursor *c = ctx;

	while (c->k < c->m->n && c->m->s[c->k].used)
		c->k++;
	if (c->k == c->m->n || c->m->s[c->k].off != off ||
	    c->m->s[c->k].size != size) {
		c->ok = false;
		return 1;
	}
	c->k++;
	return 0;
}

static void expect_same_free_blocks(const struct alloc *a,
                                    const struct model *m)
{
	struct cursor c = {m, 0, true};

	EXPECT(alloc_foreach_free(a, match_free, &c) == 0 && c.ok);
	while (c.k < m->n && m->s[c.k].used)
		c.k++;
	EXPECT(c.k == m->n);
	EXPECT(alloc_free_blocks(a) == model_free_blocks(m));
	EXPECT(alloc_largest_free(a) == model_largest_free(m));
}

/* Request sizes, from one to several MB with rare huge ones. */
static uint64_t mixed_size(void)
{
	unsigned r = (unsigned)(rnd() % 1000);

	if (r < 5)
		return 0;
	if (r < 300)
		return rnd_log(1, 512);
	if (r < 600)
		return rnd_log(512, 64 * KB);
	if (r < 850)
		return rnd_log(64 * KB, MB);
	if (r < 985)
		return rnd_log(MB, 8 * MB);
	return rnd_log(8 * MB, 96 * MB);
}

static uint64_t small_size(void)
{
	unsigned r = (unsigned)(rnd() % 100);

	if (r < 70)
		return rnd_between(1, 512);
	if (r < 98)
		return rnd_log(512, 8 * KB);
	return rnd_log(8 * KB, 128 * KB);
}

/*
 * Runs ops random operations against both the allocator and the model.
 * Allocation is chosen with a probability that changes every few thousand
 * operations, so the arena swings between nearly empty and full (where most
 * requests fail). Some requests ask for exactly the largest free block, or
 * one byte more: the edge of exact capacity. After every operation the
 * allocator and the model agree on fit or not and on used bytes; every 1024
 * operations they agree on the whole free list and alloc_check() passes.
 */
static void run_differential(uint64_t size, uint64_t (*gen)(void), uint64_t ops)
{
	struct alloc *a = create(size);
	struct model m;
	struct live live = {NULL, 0, 0};
	unsigned p_alloc = 50, fits = 0, fulls = 0;

	model_init(&m, BASE, size);
	for (op_no = 0; op_no < ops; op_no++) {
		if (op_no % 4096 == 0)
			p_alloc = (unsigned)rnd_between(30, 80);
		unsigned r = (unsigned)(rnd() % 100);
		if (live.n == 0 || r < p_alloc) {
			uint64_t ask = gen(), off, need;
			unsigned edge = (unsigned)(rnd() % 100);
			if (edge < 3)
				ask = model_largest_free(&m);
			else if (edge < 5)
				ask = model_largest_free(&m) + 1;
			need = ask == 0 ? 64 : layout_align(ask);
			bool must_fit = model_largest_free(&m) >= need;
			int rc = alloc_alloc(a, ask, &off);
			EXPECT(rc == 0 || rc == SHOAL_EFULL);
			EXPECT((rc == 0) == must_fit);
			if (rc == 0) {
				EXPECT(off % 64 == 0);
				EXPECT(model_take(&m, off, need));
				EXPECT(alloc_block_size(a, off) == need);
				live_add(&live, off);
				fits++;
			} else {
				fulls++;
			}
		} else if (r < p_alloc + 2) {
			/* A bad free: unaligned, inside a block, or the start
			 * of a free block (when the block after is one). */
			uint64_t off = live.off[rnd() % live.n];
			uint64_t bad = off + rnd_between(1, 3 * 64);
			if (rnd() % 2)
				bad = off + m.s[model_find(&m, off)].size;
			if (bad < BASE + size && model_used_at(&m, bad) == 0) {
				EXPECT(alloc_free(a, bad) == 0);
				EXPECT(alloc_block_size(a, bad) == 0);
			}
		} else {
			uint64_t off = live_take(&live, rnd() % live.n);
			uint64_t want = model_release(&m, off);
			EXPECT(want > 0);
			EXPECT(alloc_free(a, off) == want);
		}
		EXPECT(alloc_used(a) == m.used);
		if (op_no % 1024 == 0) {
			expect_same_free_blocks(a, &m);
			check_ok(a);
		}
	}
	/* Both outcomes must have been exercised for the test to mean much
	 * (unless SHOAL_TEST_SCALE made the run tiny). */
	if (ops >= 50000)
		assert_true(fits > ops / 10 && fulls > ops / 100);
	expect_same_free_blocks(a, &m);
	check_ok(a);

	while (live.n)
		EXPECT(alloc_free(a, live_take(&live, 0)) > 0);
	assert_int_equal(alloc_used(a), 0);
	assert_int_equal(alloc_free_blocks(a), 1);
	assert_int_equal(alloc_largest_free(a), size);
	check_ok(a);
	free(live.off);
	free(m.s);
	alloc_destroy(a);
}

static void test_differential_mixed_sizes(void **state)
{
	(void)state;
	seed_rng(1);
	run_differential(512 * MB, mixed_size, scaled(1000000));
}

static void test_differential_small_blocks(void **state)
{
	(void)state;
	seed_rng(2);
	run_differential(2 * MB, small_size, scaled(1000000));
}

/*
 * Millions of mixed-size allocations and frees with no model, swinging
 * between empty and full; used bytes always equal the live blocks' sizes,
 * and once everything is freed the whole range is one free block again.
 */
static void test_longevity_no_capacity_lost(void **state)
{
	const uint64_t size = 256 * MB + 64 * 12345;
	const uint64_t ops = scaled(4000000);
	struct alloc *a = create(size);
	struct live live = {NULL, 0, 0};
	uint64_t used = 0, off;
	unsigned p_alloc = 50;

	(void)state;
	seed_rng(3);
	for (op_no = 0; op_no < ops; op_no++) {
		if (op_no % 50000 == 0)
			p_alloc = (unsigned)rnd_between(20, 85);
		if (live.n == 0 || rnd() % 100 < p_alloc) {
			uint64_t ask = rnd() % 4 ? small_size() : mixed_size();
			int rc = alloc_alloc(a, ask, &off);
			EXPECT(rc == 0 || rc == SHOAL_EFULL);
			if (rc == 0) {
				used += alloc_block_size(a, off);
				live_add(&live, off);
			}
		} else {
			used -= alloc_free(a, live_take(&live, rnd() % live.n));
		}
		EXPECT(alloc_used(a) == used);
		if (op_no % 262144 == 0)
			check_ok(a);
	}
	check_ok(a);
	while (live.n)
		EXPECT(alloc_free(a, live_take(&live, rnd() % live.n)) > 0);
	assert_int_equal(alloc_used(a), 0);
	assert_int_equal(alloc_free_blocks(a), 1);
	assert_int_equal(alloc_largest_free(a), size);
	assert_int_equal(must_alloc(a, size), BASE);
	assert_int_equal(alloc_free(a, BASE), size);
	check_ok(a);
	free(live.off);
	alloc_destroy(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_create_rejects_bad_arguments),
	        cmocka_unit_test(test_empty_holds_exactly_capacity),
	        cmocka_unit_test(test_rounding_and_alignment),
	        cmocka_unit_test(test_free_coalesces_both_sides),
	        cmocka_unit_test(test_fit_from_own_class),
	        cmocka_unit_test(test_bad_free_changes_nothing),
	        cmocka_unit_test(test_fits_if_reclaimable),
	        cmocka_unit_test(test_foreach_free_order_and_stop),
	        cmocka_unit_test(test_many_blocks),
	        cmocka_unit_test(test_claim_extents),
	        cmocka_unit_test_teardown(test_enomem_changes_nothing,
	                                  stop_failing),
	        cmocka_unit_test(test_differential_mixed_sizes),
	        cmocka_unit_test(test_differential_small_blocks),
	        cmocka_unit_test(test_longevity_no_capacity_lost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
