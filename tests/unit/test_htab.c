/*
 * test_htab.c - the generic hash table (src/common/htab.c) against a naive
 * model (an array indexed by key), through many incremental growths:
 * inserts, removals, lookups, reserves, clears and iteration in a seeded
 * random order, with htab_check() along the way; probe runs of one shared
 * hash; growth that moves a bounded number of entries per call; a failed
 * allocation that changes nothing; the keyed hashes; entries of every
 * size copied byte for byte; the daemon's u64map on top of it.
 *
 * SHOAL_TEST_SCALE scales the random test (see test_alloc.c);
 * SHOAL_TEST_SEED picks its seed, which a failure prints.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "htab.h"
#include "os.h"
#include "shoal.h"
#include "u64map.h"

struct kv {
	uint64_t key, val;
};

static bool kv_eq(const void *e, const void *key)
{
	return ((const struct kv *)e)->key == *(const uint64_t *)key;
}

static void check_ok(const struct htab *t)
{
	char msg[160];

	if (htab_check(t, msg, sizeof(msg)))
		fail_msg("htab_check: %s", msg);
}

static struct kv *find(const struct htab *t, uint64_t k)
{
	return htab_find(t, htab_hash_u64(k), kv_eq, &k);
}

static double scale(void)
{
	const char *s = getenv("SHOAL_TEST_SCALE");
	double v = s ? atof(s) : 1.0;

	return v > 0 ? v : 1.0;
}

static uint64_t rng;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The whole table against the model: every key's presence and value,
 * and iteration visiting each entry once. */
static void compare(const struct htab *t, const bool *present,
                    const uint64_t *value, size_t keys)
{
	size_t want = 0, seen = 0, pos = 0;
	struct kv *e;

	for (uint64_t k = 0; k < keys; k++) {
		e = find(t, k);
		assert_int_equal(e != NULL, present[k]);
		if (e)
			assert_true(e->val == value[k]);
		want += present[k];
	}
	while ((e = htab_next(t, &pos))) {
		assert_true(e->key < keys && present[e->key]);
		assert_true(e->val == value[e->key]);
		seen++;
	}
	assert_int_equal(seen, want);
	assert_int_equal(t->count, want);
}

/*
 * Random operations on a key space that grows and shrinks in waves, so the
 * table grows many times and removals and inserts land in the middle of
 * moves. Checks every operation's result against the model.
 */
static void test_matches_model(void **state)
{
	enum { KEYS = 1 << 16 };
	static bool present[KEYS];
	static uint64_t value[KEYS];
	const char *s = getenv("SHOAL_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : 20261129;
	long ops = (long)(600000 * scale());
	struct htab t;
	size_t moving_ops = 0;

	(void)state;
	rng = seed;
	memset(present, 0, sizeof(present));
	htab_init(&t, sizeof(struct kv));
	for (long op = 0; op < ops; op++) {
		/* The live key range breathes: 64 keys up to all of them. */
		uint64_t span = 64 + (uint64_t)((op / 1000) % 64) * (KEYS / 64);
		uint64_t k = rnd() % (span > KEYS ? KEYS : span);
		uint64_t r = rnd() % 100;
		struct kv *e = find(&t, k);

		if (e == NULL && present[k])
			fail_msg("seed %llu op %ld: key %llu lost",
			         (unsigned long long)seed, op,
			         (unsigned long long)k);
		assert_int_equal(e != NULL, present[k]);
		if (e)
			assert_true(e->val == value[k]);
		moving_ops += htab_moving(&t);
		if (r < 55) { /* insert or overwrite */
			if (e) {
				e->val = (uint64_t)op;
			} else {
				struct kv n = {k, (uint64_t)op};
				void *at = NULL;
				assert_int_equal(htab_insert(&t,
				                             htab_hash_u64(k),
				                             &n, &at),
				                 0);
				assert_true(at == find(&t, k));
				present[k] = true;
			}
			value[k] = (uint64_t)op;
		} else if (r < 97) {
			if (e) {
				htab_remove(&t, e);
				present[k] = false;
				assert_null(find(&t, k));
			}
		} else if (r < 99) {
			/* A reserve makes room that inserts then use without
			 * growing again. */
			size_t extra = (size_t)(rnd() % 64);
			assert_int_equal(htab_reserve(&t, extra), 0);
			assert_true(htab_room(&t) >= t.count + extra);
		} else if (rnd() % 200 == 0) {
			htab_clear(&t);
			memset(present, 0, sizeof(present));
			assert_int_equal(t.count, 0);
		}
		if (op % 9973 == 0) {
			check_ok(&t);
			compare(&t, present, value, KEYS);
		}
	}
	check_ok(&t);
	compare(&t, present, value, KEYS);
	/* Removals were in flight during growths, not only between them. */
	assert_true(moving_ops > 1000);
	htab_free(&t);
}

/* Small tables, checked after every operation: each growth from 8 slots
 * on, with removals of keys still in the old array. */
static void test_every_step_checked(void **state)
{
	enum { KEYS = 300 };
	bool present[KEYS] = {0};
	uint64_t value[KEYS] = {0};
	struct htab t;

	(void)state;
	rng = 99;
	htab_init(&t, sizeof(struct kv));
	for (int op = 0; op < 40000; op++) {
		uint64_t k = rnd() % (op < 20000 ? KEYS : KEYS / 3);
		struct kv *e = find(&t, k);
		assert_int_equal(e != NULL, present[k]);
		if (e && rnd() % 3 == 0) {
			htab_remove(&t, e);
			present[k] = false;
		} else if (!e) {
			struct kv n = {k, (uint64_t)op};
			assert_int_equal(
			        htab_insert(&t, htab_hash_u64(k), &n, NULL), 0);
			present[k] = true;
			value[k] = (uint64_t)op;
		}
		check_ok(&t);
	}
	compare(&t, present, value, KEYS);
	htab_free(&t);
}

/* Keys that share one hash stay findable after removals in the middle of
 * their probe run (backward shift), across growths. */
static void test_shared_hash(void **state)
{
	struct htab t;
	struct kv n;

	(void)state;
	htab_init(&t, sizeof(struct kv));
	for (uint64_t k = 0; k < 200; k++) {
		n = (struct kv){k, k * 3};
		assert_int_equal(htab_insert(&t, 42, &n, NULL), 0);
		check_ok(&t);
	}
	for (uint64_t k = 0; k < 200; k += 3) {
		htab_remove(&t, htab_find(&t, 42, kv_eq, &k));
		check_ok(&t);
	}
	for (uint64_t k = 0; k < 200; k++) {
		struct kv *e = htab_find(&t, 42, kv_eq, &k);
		assert_int_equal(e != NULL, k % 3 != 0);
		if (e)
			assert_true(e->val == k * 3);
	}
	htab_free(&t);
}

/*
 * Growth is spread over later calls: no insert moves more than a step's
 * worth of the old array (HTAB_MOVE_STEP slots, plus the rest of the probe
 * run it stopped in), and the current array never passes 3/4 full.
 */
static void test_growth_is_incremental(void **state)
{
	enum { N = 1 << 20 };
	struct htab t;
	size_t growths = 0, worst = 0;

	(void)state;
	htab_init(&t, sizeof(struct kv));
	for (uint64_t k = 0; k < N; k++) {
		size_t old_before = t.old.count;
		bool was_moving = htab_moving(&t);
		struct kv n = {k, k};

		assert_int_equal(htab_insert(&t, htab_hash_u64(k), &n, NULL),
		                 0);
		if (!was_moving && htab_moving(&t)) {
			growths++;
			old_before = t.old.count + HTAB_MOVE_STEP;
		}
		size_t moved = old_before - t.old.count;
		if (htab_moving(&t) && moved > worst)
			worst = moved;
		/* The current array never passes 3/4. */
		assert_true(t.cur.count <= htab_room(&t));
	}
	/* From 8 slots to 2^21: every growth after the first few went
	 * through a move. */
	assert_true(growths >= 10);
	/* A step stops only between probe runs; at 3/4 load the longest
	 * run among 2^20 slots is a few hundred. Moving all at once would
	 * be 393,216 entries in one call. */
	assert_true(worst <= 1024);
	check_ok(&t);
	for (uint64_t k = 0; k < N; k += 4099)
		assert_non_null(find(&t, k));
	htab_free(&t);
}

static long fail_countdown = -1;

static long fail_alloc(enum os_call call, size_t len)
{
	(void)len;
	if (call != OS_ALLOC || fail_countdown < 0)
		return 0;
	if (fail_countdown == 0)
		return -ENOMEM;
	fail_countdown--;
	return 0;
}

static int stop_failing(void **state)
{
	(void)state;
	os_fault_hook = NULL;
	fail_countdown = -1;
	return 0;
}

/* A growth whose allocation fails returns SHOAL_ENOMEM with every entry
 * still there; a reserve made before never needs memory. */
static void test_enomem_changes_nothing(void **state)
{
	struct htab t;
	int fails = 0;

	(void)state;
	htab_init(&t, sizeof(struct kv));
	os_fault_hook = fail_alloc;
	for (uint64_t k = 0; k < 5000; k++) {
		struct kv n = {k, k};
		fail_countdown = (long)(k % 2); /* fail the 1st or 2nd alloc */
		int rc = htab_insert(&t, htab_hash_u64(k), &n, NULL);
		fail_countdown = -1;
		if (rc) {
			assert_int_equal(rc, SHOAL_ENOMEM);
			fails++;
			assert_null(find(&t, k));
			assert_int_equal(
			        htab_insert(&t, htab_hash_u64(k), &n, NULL), 0);
		}
		check_ok(&t);
	}
	assert_true(fails >= 8);
	for (uint64_t k = 0; k < 5000; k++)
		assert_non_null(find(&t, k));
	/* Reserved room: inserts succeed with every allocation failing. */
	assert_int_equal(htab_reserve(&t, 20000), 0);
	fail_countdown = 0;
	for (uint64_t k = 5000; k < 25000; k++) {
		struct kv n = {k, k};
		assert_int_equal(htab_insert(&t, htab_hash_u64(k), &n, NULL),
		                 0);
	}
	fail_countdown = -1;
	check_ok(&t);
	assert_int_equal(t.count, 25000);
	htab_free(&t);
}

/* The keyed hashes: deterministic within a process, sensitive to every
 * byte and to the length. */
static void test_hashes(void **state)
{
	uint8_t a[40] = {0}, b[40] = {0};

	(void)state;
	assert_true(htab_hash_u64(1) == htab_hash_u64(1));
	assert_true(htab_hash_u64(1) != htab_hash_u64(2));
	for (size_t len = 1; len <= sizeof(a); len++) {
		assert_true(htab_hash_bytes(a, len) == htab_hash_bytes(b, len));
		assert_true(htab_hash_bytes(a, len) !=
		            htab_hash_bytes(a, len - 1));
		b[len - 1] = 1;
		assert_true(htab_hash_bytes(a, len) != htab_hash_bytes(b, len));
		b[len - 1] = 0;
	}
}

/* Entries of test_entry_sizes: the key in the first min(esize, 8) bytes
 * (keys under 2^16), then bytes that depend on key and position. */
static size_t entry_size;

static void make_entry(uint8_t *e, uint64_t key)
{
	memcpy(e, &key, entry_size < 8 ? entry_size : 8);
	for (size_t i = 8; i < entry_size; i++)
		e[i] = (uint8_t)(key * 131 + i * 7 + 1);
}

static bool entry_eq(const void *e, const void *key)
{
	return memcmp(e, key, entry_size < 8 ? entry_size : 8) == 0;
}

/*
 * Entries of every size the table copies differently (4 bytes, under 8,
 * 8 to 128 in two overlapping halves, over 128) keep every byte through
 * inserts, growths (moves) and removals mid-move (backward shifts).
 */
static void test_entry_sizes(void **state)
{
	static const size_t sizes[] = {4,  5,  8,  9,  16, 17,  24,  32,
	                               33, 40, 64, 65, 72, 100, 128, 129};
	enum { N = 3000 };
	uint8_t want[256];

	(void)state;
	for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
		struct htab t;

		entry_size = sizes[z];
		htab_init(&t, entry_size);
		for (uint64_t k = 0; k < N; k++) {
			make_entry(want, k);
			assert_int_equal(
			        htab_insert(&t, htab_hash_u64(k), want, NULL),
			        0);
			uint64_t d = k / 2; /* inserted before */
			if (k % 2 == 0 && d % 3 == 1) {
				void *e = htab_find(&t, htab_hash_u64(d),
				                    entry_eq, &d);
				assert_non_null(e);
				htab_remove(&t, e);
			}
		}
		check_ok(&t);
		for (uint64_t k = 0; k < N; k++) {
			uint8_t *e =
			        htab_find(&t, htab_hash_u64(k), entry_eq, &k);
			bool removed = k % 3 == 1 && k * 2 < N;
			assert_int_equal(e == NULL, removed);
			make_entry(want, k);
			if (e && memcmp(e, want, entry_size) != 0)
				fail_msg("entry of %zu bytes, key %llu changed",
				         entry_size, (unsigned long long)k);
		}
		htab_free(&t);
	}
}

/* u64map against a model: put overwrites, add does not, del removes. */
static void test_u64map(void **state)
{
	enum { KEYS = 512 };
	uint64_t value[KEYS];
	bool present[KEYS] = {0};
	struct u64map m = {0};

	(void)state;
	rng = 7;
	for (int op = 0; op < 20000; op++) {
		uint64_t k = rnd() % KEYS, v = rnd(), got;
		int r = (int)(rnd() % 3);
		if (r == 0) {
			assert_int_equal(u64map_put(&m, k, v), 0);
			present[k] = true;
			value[k] = v;
		} else if (r == 1) {
			assert_int_equal(u64map_add(&m, k, v), !present[k]);
			if (!present[k])
				value[k] = v;
			present[k] = true;
		} else {
			assert_int_equal(u64map_del(&m, k), present[k]);
			present[k] = false;
		}
		assert_int_equal(u64map_get(&m, k, &got), present[k]);
		if (present[k])
			assert_true(got == value[k]);
	}
	size_t n = 0;
	for (uint64_t k = 0; k < KEYS; k++)
		n += present[k];
	assert_int_equal(u64map_count(&m), n);
	assert_int_equal(u64map_add(&m, UINT64_MAX, 1), SHOAL_EINVAL);
	assert_int_equal(u64map_put(&m, UINT64_MAX, 1), SHOAL_EINVAL);
	u64map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_matches_model),
	        cmocka_unit_test(test_every_step_checked),
	        cmocka_unit_test(test_shared_hash),
	        cmocka_unit_test(test_growth_is_incremental),
	        cmocka_unit_test_teardown(test_enomem_changes_nothing,
	                                  stop_failing),
	        cmocka_unit_test(test_hashes),
	        cmocka_unit_test(test_entry_sizes),
	        cmocka_unit_test(test_u64map),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
