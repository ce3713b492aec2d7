/*
 * test_waits.c - the heap against a naive reference model (the hash table
 * has its own, test_htab.c), and the parked-request index: a seal wakes only
 * the waiters of its ID and counts down what each still waits for; a dropped ID
 * answers its waiters at once; a name set wakes only that name's waiters;
 * deadlines come out in order; creates by size.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "store.h"
#include "waits.h"

/* ---- heap against a scan ---- */

static void test_heap_matches_model(void **state)
{
	enum { N = 300 };
	static struct heap_item items[N];
	struct heap h = {0};
	unsigned seed = 7;

	(void)state;
	for (int i = 0; i < N; i++)
		items[i].pos = HEAP_NONE;
	for (int op = 0; op < 20000; op++) {
		seed = seed * 1103515245u + 12345u;
		struct heap_item *it = &items[(seed >> 8) % N];
		if (it->pos == HEAP_NONE) {
			it->key = (seed >> 4) % 1000;
			assert_int_equal(heap_push(&h, it), 0);
		} else {
			heap_remove(&h, it);
			assert_true(it->pos == HEAP_NONE);
		}
		uint64_t min = UINT64_MAX;
		size_t in = 0;
		for (int i = 0; i < N; i++)
			if (items[i].pos != HEAP_NONE) {
				in++;
				if (items[i].key < min)
					min = items[i].key;
			}
		assert_int_equal(h.n, in);
		if (in)
			assert_true(heap_top(&h)->key == min);
		else
			assert_null(heap_top(&h));
		if (op % 1000 == 0)
			assert_int_equal(heap_check(&h), 0);
	}
	heap_free(&h);
}

/* ---- the wait index ---- */

#define CAP (1u << 20)

struct fx {
	struct arena arena;
	struct store st;
	struct store_client owner;
	struct waits ws;
	/* Three parked "connections": each an input buffer and a record. */
	uint8_t *in[3];
	struct wait w[3];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_int_equal(arena_open(&f->arena, CAP, NULL, err, sizeof(err)), 0);
	assert_int_equal(store_init(&f->st, &f->arena), 0);
	store_client_init(&f->owner, 1);
	waits_init(&f->ws);
	for (int i = 0; i < 3; i++)
		wait_init(&f->w[i], &f->in[i]);
	*state = f;
	return 0;
}

static void check(struct fx *f)
{
	char msg[128];

	if (waits_check(&f->ws, msg, sizeof(msg)))
		fail_msg("%s", msg);
}

static int teardown(void **state)
{
	struct fx *f = *state;

	check(f);
	for (int i = 0; i < 3; i++) {
		waits_unpark(&f->ws, &f->w[i]);
		free(f->in[i]);
	}
	assert_int_equal(f->ws.parked, 0);
	assert_int_equal(f->ws.bytes, 0);
	assert_int_equal(f->ws.by_id.count, 0);
	assert_int_equal(f->ws.by_name.count, 0);
	waits_free(&f->ws);
	store_client_gone(&f->st, &f->owner);
	store_free(&f->st);
	arena_close(&f->arena);
	free(f);
	return 0;
}

static void make_id(uint8_t *id, unsigned n)
{
	memset(id, 0x77, SHOAL_ID_SIZE);
	memcpy(id, &n, sizeof(n));
}

/* Writes a GET of the given IDs into connection k's input and parks it. */
static void park_get(struct fx *f, int k, const unsigned *ids, uint32_t n,
                     uint64_t deadline)
{
	size_t body = sizeof(struct proto_get) + (size_t)n * SHOAL_ID_SIZE;
	struct proto_header h;
	struct proto_get g = {.timeout_ms = -1, .count = n};

	proto_header_init(&h, PROTO_GET, 1, (uint32_t)body);
	f->in[k] = realloc(f->in[k], sizeof(h) + body);
	memcpy(f->in[k], &h, sizeof(h));
	memcpy(f->in[k] + sizeof(h), &g, sizeof(g));
	for (uint32_t i = 0; i < n; i++)
		make_id(f->in[k] + sizeof(h) + sizeof(g) + i * SHOAL_ID_SIZE,
		        ids[i]);
	assert_int_equal(waits_park(&f->ws, &f->w[k], &f->st, &h,
	                            f->in[k] + sizeof(h), sizeof(h), deadline),
	                 0);
	check(f);
}

static void park_name(struct fx *f, int k, const char *name)
{
	size_t len = strlen(name);
	size_t body = sizeof(struct proto_get_name) + len;
	struct proto_header h;
	struct proto_get_name g = {.timeout_ms = -1, .name_len = (uint32_t)len};

	proto_header_init(&h, PROTO_GET_NAME, 1, (uint32_t)body);
	f->in[k] = realloc(f->in[k], sizeof(h) + body);
	memcpy(f->in[k], &h, sizeof(h));
	memcpy(f->in[k] + sizeof(h), &g, sizeof(g));
	memcpy(f->in[k] + sizeof(h) + sizeof(g), name, len);
	assert_int_equal(waits_park(&f->ws, &f->w[k], &f->st, &h,
	                            f->in[k] + sizeof(h), sizeof(h),
	                            UINT64_MAX),
	                 0);
}

static void park_create(struct fx *f, int k, uint64_t size, uint64_t deadline)
{
	struct proto_header h;
	struct proto_create c = {.data_size = size, .timeout_ms = -1};

	make_id(c.id, 1000 + (unsigned)k);
	proto_header_init(&h, PROTO_CREATE, 1, sizeof(c));
	f->in[k] = realloc(f->in[k], sizeof(h) + sizeof(c));
	memcpy(f->in[k], &h, sizeof(h));
	memcpy(f->in[k] + sizeof(h), &c, sizeof(c));
	assert_int_equal(waits_park(&f->ws, &f->w[k], &f->st, &h,
	                            f->in[k] + sizeof(h), sizeof(h), deadline),
	                 0);
}

static void put(struct fx *f, unsigned n)
{
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	bool backed;

	make_id(id, n);
	assert_int_equal(
	        store_create(&f->st, &f->owner, id, 10, 0, &off, &h, &backed),
	        0);
	assert_int_equal(store_seal(&f->st, &f->owner, id), 0);
}

static void seal_note(struct fx *f, unsigned n)
{
	uint8_t id[SHOAL_ID_SIZE];

	make_id(id, n);
	waits_sealed(&f->ws, id);
	check(f);
}

static void test_seal_wakes_only_its_waiters(void **state)
{
	struct fx *f = *state;
	const unsigned a[] = {1, 2, 3, 2}; /* 2 twice */
	const unsigned b[] = {3, 4};

	put(f, 1); /* sealed already: not waited for */
	park_get(f, 0, a, 4, UINT64_MAX);
	park_get(f, 1, b, 2, UINT64_MAX);
	assert_int_equal(f->w[0].remaining, 3);
	assert_int_equal(f->w[1].remaining, 2);
	seal_note(f, 9); /* nobody waits for 9 */
	seal_note(f, 2);
	assert_int_equal(f->w[0].remaining, 1);
	assert_int_equal(f->w[1].remaining, 2); /* untouched */
	assert_null(f->ws.ready_head);
	seal_note(f, 3); /* both wait for 3 */
	assert_int_equal(f->w[1].remaining, 1);
	assert_ptr_equal(waits_pop_ready(&f->ws), &f->w[0]);
	assert_true(f->w[0].final);
	assert_null(waits_pop_ready(&f->ws));
	waits_unpark(&f->ws, &f->w[0]);
	check(f);
	seal_note(f, 3); /* consumed already: no effect */
	assert_int_equal(f->w[1].remaining, 1);
	seal_note(f, 4);
	assert_ptr_equal(waits_pop_ready(&f->ws), &f->w[1]);
}

static void test_dropped_answers_at_once(void **state)
{
	struct fx *f = *state;
	const unsigned a[] = {5, 6};
	uint8_t id[SHOAL_ID_SIZE];

	park_get(f, 0, a, 2, UINT64_MAX);
	park_get(f, 1, a + 1, 1, UINT64_MAX);
	make_id(id, 7);
	waits_dropped(&f->ws, id); /* nobody's */
	assert_null(f->ws.ready_head);
	make_id(id, 6);
	waits_dropped(&f->ws, id);
	struct wait *x = waits_pop_ready(&f->ws), *y = waits_pop_ready(&f->ws);
	assert_true((x == &f->w[0] && y == &f->w[1]) ||
	            (x == &f->w[1] && y == &f->w[0]));
	assert_true(x->final && y->final);
	assert_int_equal(f->w[0].remaining, 2); /* nothing was sealed */
}

static void test_name_wakes_its_waiters(void **state)
{
	struct fx *f = *state;

	park_name(f, 0, "frame");
	park_name(f, 1, "frame");
	park_name(f, 2, "other");
	check(f);
	waits_named(&f->ws, "fram", 4);
	assert_null(f->ws.ready_head);
	waits_named(&f->ws, "frame", 5);
	struct wait *x = waits_pop_ready(&f->ws), *y = waits_pop_ready(&f->ws);
	assert_non_null(x);
	assert_non_null(y);
	assert_true(x != &f->w[2] && y != &f->w[2] && x != y);
	assert_false(x->final);
	assert_null(waits_pop_ready(&f->ws));
	/* Still filed until answered: a second set wakes them again. */
	waits_named(&f->ws, "frame", 5);
	assert_non_null(waits_pop_ready(&f->ws));
	waits_unpark(&f->ws, &f->w[1]);
	check(f);
	waits_named(&f->ws, "frame", 5);
	assert_ptr_equal(waits_pop_ready(&f->ws), &f->w[0]);
	assert_null(waits_pop_ready(&f->ws));
}

static void test_deadlines_and_sizes_in_order(void **state)
{
	struct fx *f = *state;
	const unsigned a[] = {1};

	park_create(f, 0, 5000, 300);
	park_create(f, 1, 100, UINT64_MAX);
	park_get(f, 2, a, 1, 200);
	assert_ptr_equal(waits_smallest_create(&f->ws), &f->w[1]);
	assert_true(waits_next_deadline(&f->ws) == 200);
	waits_expire(&f->ws, 199);
	assert_null(f->ws.ready_head);
	waits_expire(&f->ws, 250);
	assert_ptr_equal(waits_pop_ready(&f->ws), &f->w[2]);
	assert_true(f->w[2].final);
	assert_true(waits_next_deadline(&f->ws) == 300);
	waits_unpark(&f->ws, &f->w[1]);
	assert_ptr_equal(waits_smallest_create(&f->ws), &f->w[0]);
	waits_expire(&f->ws, UINT64_MAX - 1);
	assert_ptr_equal(waits_pop_ready(&f->ws), &f->w[0]);
	assert_true(waits_next_deadline(&f->ws) == UINT64_MAX);
}

/* The index finds a record's bytes through the connection's buffer
 * pointer: the buffer may move while it is parked. */
static void test_buffer_may_move(void **state)
{
	struct fx *f = *state;
	const unsigned a[] = {8, 9};

	park_get(f, 0, a, 2, UINT64_MAX);
	size_t len = sizeof(struct proto_header) + sizeof(struct proto_get) +
	             2 * SHOAL_ID_SIZE;
	uint8_t *moved = malloc(len + 4096);
	assert_non_null(moved);
	memcpy(moved, f->in[0], len);
	memset(f->in[0], 0, len);
	free(f->in[0]);
	f->in[0] = moved;
	seal_note(f, 9);
	assert_int_equal(f->w[0].remaining, 1);
	seal_note(f, 8);
	assert_ptr_equal(waits_pop_ready(&f->ws), &f->w[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_heap_matches_model),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	        T(test_seal_wakes_only_its_waiters),
	        T(test_dropped_answers_at_once),
	        T(test_name_wakes_its_waiters),
	        T(test_deadlines_and_sizes_in_order),
	        T(test_buffer_may_move),
#undef T
	};
	return cmocka_run_group_tests_name("waits", tests, NULL, NULL);
}
