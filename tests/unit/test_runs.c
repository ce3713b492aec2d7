/*
 * test_runs.c - the index of the largest stretch evicting could free
 * (src/daemon/runs.c) against a naive model: objects with blocks spread
 * over an arena, each wanted pinned or not in a seeded random order, some
 * freed; runs_largest() is compared with the largest gap between the
 * wanted-pinned blocks (and the arena's ends), found by a sort, and
 * runs_check() runs after every step. Besides: a change undone before the
 * index is read never reaches the treap, and a full queue of changes is
 * applied at once.
 *
 * SHOAL_TEST_SCALE scales the random test; SHOAL_TEST_SEED picks its seed,
 * which a failure prints.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "objects.h"
#include "runs.h"

#define BASE  4096u
#define BLOCK 64u

/* An arena of n blocks, one object per block, every other one present. */
struct fixture {
	struct objtab t;
	struct runs r;
	uint32_t n;
	uint32_t *slot; /* by block: its object's slot, or OBJ_NIL */
	bool *want;     /* by block: what the model says */
};

static uint64_t rng;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double scale(void)
{
	const char *s = getenv("SHOAL_TEST_SCALE");
	double v = s ? atof(s) : 1.0;

	return v > 0 ? v : 1.0;
}

static void check_ok(struct fixture *f)
{
	char msg[160];

	if (runs_check(&f->r, &f->t, msg, sizeof(msg)))
		fail_msg("runs_check: %s", msg);
}

/* Puts an object on block b (which has none). */
static void add(struct fixture *f, uint32_t b)
{
	uint8_t id[SHOAL_ID_SIZE] = {0};
	uint32_t s;

	memcpy(id, &b, sizeof(b));
	id[SHOAL_ID_SIZE - 1] = (uint8_t)(rnd() | 1);
	assert_int_equal(objtab_add(&f->t, id, &s), 0);
	struct object *o = objtab_get(&f->t, s);
	o->state = OBJ_SEALED;
	o->offset = BASE + (uint64_t)b * BLOCK;
	o->block_size = BLOCK;
	f->slot[b] = s;
	f->want[b] = false;
}

/* Frees block b's object. */
static void drop(struct fixture *f, uint32_t b)
{
	runs_drop(&f->r, &f->t, f->slot[b]);
	objtab_release_slot(&f->t, f->slot[b]);
	f->slot[b] = OBJ_NIL;
	f->want[b] = false;
}

static void want(struct fixture *f, uint32_t b, bool pin)
{
	runs_want(&f->r, &f->t, f->slot[b], pin);
	f->want[b] = pin;
}

static void setup(struct fixture *f, uint32_t n)
{
	memset(f, 0, sizeof(*f));
	assert_int_equal(objtab_init(&f->t), 0);
	runs_init(&f->r, BASE, (uint64_t)n * BLOCK);
	f->n = n;
	f->slot = calloc(n, sizeof(*f->slot));
	f->want = calloc(n, sizeof(*f->want));
	assert_non_null(f->slot);
	assert_non_null(f->want);
	for (uint32_t b = 0; b < n; b++) {
		f->slot[b] = OBJ_NIL;
		if (b % 2 == 0)
			add(f, b);
	}
}

static void teardown(struct fixture *f)
{
	objtab_free(&f->t);
	free(f->slot);
	free(f->want);
}

/* The largest gap between wanted-pinned blocks, in bytes. */
static uint64_t model_largest(const struct fixture *f)
{
	uint64_t best = 0, run = 0;

	for (uint32_t b = 0; b < f->n; b++) {
		if (f->slot[b] != OBJ_NIL && f->want[b]) {
			run = 0;
			continue;
		}
		run += BLOCK;
		if (run > best)
			best = run;
	}
	return best;
}

static void test_matches_model(void **state)
{
	const char *s = getenv("SHOAL_TEST_SEED");
	uint64_t seed = s ? strtoull(s, NULL, 0) : 20261129;
	long ops = (long)(80000 * scale());
	long flushes = 0, overflows = 0;
	struct fixture f;

	(void)state;
	rng = seed;
	setup(&f, 4096);
	for (long i = 0; i < ops; i++) {
		uint32_t b = (uint32_t)(rnd() % f.n);
		uint64_t r = rnd() % 1000;
		uint32_t before = f.r.nqueue;

		if (f.slot[b] == OBJ_NIL)
			add(&f, b);
		else if (r < 20)
			drop(&f, b);
		else
			want(&f, b, r % 2);
		if (f.r.nqueue < before && before == RUNS_QUEUE_MAX)
			overflows++;
		check_ok(&f);
		/* Long stretches without a reader let the queue fill. */
		if ((i / 10000) % 2 == 0 && rnd() % 50 == 0) {
			uint64_t got = runs_largest(&f.r, &f.t);
			if (got != model_largest(&f))
				fail_msg("seed %llu, step %ld: largest %llu, "
				         "model %llu",
				         (unsigned long long)seed, i,
				         (unsigned long long)got,
				         (unsigned long long)model_largest(&f));
			assert_int_equal(f.r.nqueue, 0);
			flushes++;
		}
	}
	assert_int_equal(runs_largest(&f.r, &f.t), model_largest(&f));
	check_ok(&f);
	/* The run went through both ways of applying the queue. */
	assert_true(flushes > 100);
	assert_true(overflows > 0);
	teardown(&f);
}

static void test_undone_changes_stay_out(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f, 64);
	for (int round = 0; round < 1000; round++) {
		for (uint32_t b = 0; b < 64; b += 2)
			want(&f, b, true);
		assert_int_equal(f.r.nqueue, 32);
		for (uint32_t b = 0; b < 64; b += 2)
			want(&f, b, false);
		assert_int_equal(f.r.nqueue, 0);
	}
	/* Nothing ever reached the treap. */
	assert_int_equal(f.r.count, 0);
	assert_int_equal(f.r.root, OBJ_NIL);
	check_ok(&f);
	assert_int_equal(runs_largest(&f.r, &f.t), 64 * BLOCK);

	/* Pinned ones now: unpinning and pinning again is undone too. */
	want(&f, 10, true);
	want(&f, 30, true);
	assert_int_equal(runs_largest(&f.r, &f.t), 33 * BLOCK);
	assert_int_equal(f.r.count, 2);
	want(&f, 10, false);
	want(&f, 10, true);
	assert_int_equal(f.r.nqueue, 0);
	want(&f, 30, false);
	assert_int_equal(f.r.nqueue, 1);
	assert_int_equal(f.r.count, 2); /* not applied yet */
	check_ok(&f);
	assert_int_equal(runs_largest(&f.r, &f.t), 53 * BLOCK);
	assert_int_equal(f.r.count, 1);
	check_ok(&f);
	teardown(&f);
}

static void test_full_queue_applied(void **state)
{
	struct fixture f;
	uint32_t n = 2 * (RUNS_QUEUE_MAX + 1);

	(void)state;
	setup(&f, n + 2);
	for (uint32_t b = 0; b < n; b += 2)
		want(&f, b, true);
	/* The change that found the queue full applied it at once. */
	assert_int_equal(f.r.count, RUNS_QUEUE_MAX);
	assert_int_equal(f.r.nqueue, 1);
	check_ok(&f);
	assert_int_equal(runs_largest(&f.r, &f.t), 3 * BLOCK);
	assert_int_equal(f.r.count, RUNS_QUEUE_MAX + 1);
	teardown(&f);
}

static void test_drop_queued_and_pinned(void **state)
{
	struct fixture f;

	(void)state;
	setup(&f, 16);
	want(&f, 4, true);
	want(&f, 8, true);
	assert_int_equal(runs_largest(&f.r, &f.t), 7 * BLOCK);
	want(&f, 12, true); /* queued */
	want(&f, 8, false); /* queued, still in the treap */
	drop(&f, 12);
	check_ok(&f);
	drop(&f, 4); /* in the treap */
	check_ok(&f);
	assert_int_equal(f.r.count, 1);
	assert_int_equal(runs_largest(&f.r, &f.t), 16 * BLOCK);
	assert_int_equal(f.r.count, 0);
	check_ok(&f);
	teardown(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_matches_model),
	        cmocka_unit_test(test_undone_changes_stay_out),
	        cmocka_unit_test(test_full_queue_applied),
	        cmocka_unit_test(test_drop_queued_and_pinned),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
