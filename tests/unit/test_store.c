/*
 * test_store.c - the store's semantics without sockets: life cycle, holds,
 * deferred delete, eviction order, "store full evicts nothing", names and
 * compare-and-set, client departure. Every test ends with store_check()
 * over all its clients.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "layout.h"
#include "store.h"

#define CAP (1u << 20) /* 1 MiB */

struct fixture {
	struct arena arena;
	struct store st;
	struct store_client a, b;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_int_equal(arena_open(&f->arena, CAP, NULL, err, sizeof(err)), 0);
	assert_int_equal(store_init(&f->st, &f->arena), 0);
	store_client_init(&f->a, 1);
	store_client_init(&f->b, 2);
	*state = f;
	return 0;
}

static void check(struct fixture *f)
{
	struct store_client *cl[] = {&f->a, &f->b};
	char msg[256] = "";

	if (store_check(&f->st, cl, 2, msg, sizeof(msg)) != 0)
		fail_msg("invariant broken: %s", msg);
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	check(f);
	store_client_gone(&f->st, &f->a);
	store_client_gone(&f->st, &f->b);
	check(f);
	store_free(&f->st);
	arena_close(&f->arena);
	free(f);
	return 0;
}

static void make_id(uint8_t *id, unsigned n)
{
	memset(id, 0, SHOAL_ID_SIZE);
	memcpy(id, &n, sizeof(n));
}

/* Creates and seals object n of size bytes for client c, then releases the
 * creator's hold. */
static void put(struct fixture *f, struct store_client *c, unsigned n,
                uint64_t size)
{
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	bool backed;

	make_id(id, n);
	assert_int_equal(
	        store_create(&f->st, c, id, size, 0, &off, &h, &backed), 0);
	assert_int_equal(store_seal(&f->st, c, id), 0);
	store_release(&f->st, c, h);
}

static void test_life_cycle(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	uint32_t slot;
	bool backed;

	make_id(id, 1);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, 100, 10, &off, &h, &backed), 0);
	assert_int_equal(off % LAYOUT_ALIGN, 0);
	assert_true(off >= f->arena.data_offset);
	/* Unsealed: invisible to gets, exists for creates. */
	assert_int_equal(store_get(&f->st, &f->b, id, &slot), SHOAL_ENOTFOUND);
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_CREATED);
	assert_int_equal(
	        store_create(&f->st, &f->b, id, 1, 0, &off, &h, &backed),
	        SHOAL_EEXISTS);
	assert_int_equal(store_seal(&f->st, &f->b, id), SHOAL_ENOTOWNER);
	assert_int_equal(store_delete(&f->st, id), SHOAL_ENOTSEALED);
	assert_int_equal(store_seal(&f->st, &f->a, id), 0);
	assert_int_equal(store_seal(&f->st, &f->a, id), SHOAL_ESEALED);
	assert_int_equal(store_abort(&f->st, &f->a, id), SHOAL_ESEALED);
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_SEALED);
	assert_int_equal(store_get(&f->st, &f->b, id, &slot), 0);
	assert_int_equal(objtab_get(&f->st.objs, slot)->data_size, 100);
	assert_int_equal(objtab_get(&f->st.objs, slot)->metadata_size, 10);
	assert_int_equal(objtab_get(&f->st.objs, slot)->holders, 2);
	/* A second get by the same client does not count twice. */
	assert_int_equal(store_get(&f->st, &f->b, id, &slot), 0);
	assert_int_equal(objtab_get(&f->st.objs, slot)->holders, 2);
	check(f);
	store_release(&f->st, &f->a, h);
	store_release(&f->st, &f->b, objtab_handle(&f->st.objs, slot));
	assert_int_equal(objtab_get(&f->st.objs, slot)->holders, 0);
	assert_true(objtab_get(&f->st.objs, slot)->in_lru);
	assert_int_equal(store_delete(&f->st, id), 0);
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_ABSENT);
	assert_int_equal(alloc_used(f->st.alloc), 0);
}

static void test_abort_frees(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	bool backed;

	make_id(id, 7);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, 5000, 0, &off, &h, &backed), 0);
	assert_int_equal(store_abort(&f->st, &f->b, id), SHOAL_ENOTOWNER);
	assert_int_equal(store_abort(&f->st, &f->a, id), 0);
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_ABSENT);
	assert_int_equal(alloc_used(f->st.alloc), 0);
	/* The ID may be created again. */
	assert_int_equal(
	        store_create(&f->st, &f->a, id, 1, 0, &off, &h, &backed), 0);
	assert_int_equal(store_abort(&f->st, &f->a, id), 0);
}

static void test_deferred_delete(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h, off2, h2;
	uint32_t slot;
	bool backed;

	put(f, &f->a, 1, 4096);
	make_id(id, 1);
	assert_int_equal(store_get(&f->st, &f->b, id, &slot), 0);
	off = objtab_get(&f->st.objs, slot)->offset;
	h = objtab_handle(&f->st.objs, slot);
	assert_int_equal(store_delete(&f->st, id), 0);
	/* Gone for lookups, still allocated for the reader. */
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_ABSENT);
	assert_int_equal(f->st.deleted_held, 1);
	assert_int_equal(alloc_used(f->st.alloc), 4096);
	/* The same ID can be created anew and gets other memory. */
	assert_int_equal(
	        store_create(&f->st, &f->a, id, 4096, 0, &off2, &h2, &backed),
	        0);
	assert_true(off2 != off);
	assert_int_equal(store_seal(&f->st, &f->a, id), 0);
	store_release(&f->st, &f->a, h2);
	check(f);
	store_release(&f->st, &f->b, h);
	assert_int_equal(f->st.deleted_held, 0);
	assert_int_equal(alloc_used(f->st.alloc), 4096);
	/* A stale handle is ignored. */
	store_release(&f->st, &f->b, h);
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_SEALED);
}

static void test_eviction_lru_order(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	uint32_t slot;
	bool backed;

	/* Four quarter-size objects fill the store. */
	for (unsigned i = 1; i <= 4; i++)
		put(f, &f->a, i, CAP / 4);
	/* Touch 1 again so that 2 is the least recently released. */
	make_id(id, 1);
	assert_int_equal(store_get(&f->st, &f->b, id, &slot), 0);
	store_release(&f->st, &f->b, objtab_handle(&f->st.objs, slot));
	make_id(id, 5);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, CAP / 4, 0, &off, &h, &backed),
	        0);
	assert_int_equal(f->st.evictions, 1);
	make_id(id, 2);
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_ABSENT);
	for (unsigned i = 1; i <= 4; i++) {
		make_id(id, i);
		assert_int_equal(store_contains(&f->st, id),
		                 i == 2 ? SHOAL_STATE_ABSENT
		                        : SHOAL_STATE_SEALED);
	}
	make_id(id, 5);
	assert_int_equal(store_abort(&f->st, &f->a, id), 0);
}

static void test_full_evicts_nothing(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	uint32_t slot;
	bool backed;

	put(f, &f->a, 1, CAP / 2);
	put(f, &f->a, 2, CAP / 2);
	/* Hold object 2: only object 1 is evictable, half the store. */
	make_id(id, 2);
	assert_int_equal(store_get(&f->st, &f->b, id, &slot), 0);
	make_id(id, 3);
	assert_int_equal(store_create(&f->st, &f->a, id, CAP / 2 + 64, 0, &off,
	                              &h, &backed),
	                 SHOAL_EFULL);
	assert_int_equal(f->st.evictions, 0);
	make_id(id, 1);
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_SEALED);
	/* Larger than the store: full, nothing evicted. */
	make_id(id, 4);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, CAP + 1, 0, &off, &h, &backed),
	        SHOAL_EFULL);
	assert_int_equal(f->st.evictions, 0);
	/* Exactly what eviction can free fits. */
	make_id(id, 3);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, CAP / 2, 0, &off, &h, &backed),
	        0);
	assert_int_equal(f->st.evictions, 1);
	assert_int_equal(store_abort(&f->st, &f->a, id), 0);
	store_release(&f->st, &f->b, objtab_handle(&f->st.objs, slot));
}

static void test_exact_capacity(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	bool backed;

	make_id(id, 1);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, CAP + 1, 0, &off, &h, &backed),
	        SHOAL_EFULL);
	assert_int_equal(store_create(&f->st, &f->a, id, CAP - 100, 100, &off,
	                              &h, &backed),
	                 0);
	assert_int_equal(alloc_used(f->st.alloc), CAP);
	assert_int_equal(store_abort(&f->st, &f->a, id), 0);
}

static void test_names(void **state)
{
	struct fixture *f = *state;
	uint8_t id1[SHOAL_ID_SIZE], id2[SHOAL_ID_SIZE];
	uint64_t v1, v2, v;
	uint32_t slot;

	put(f, &f->a, 1, 1000);
	put(f, &f->a, 2, 2000);
	make_id(id1, 1);
	make_id(id2, 2);
	assert_int_equal(store_set_name(&f->st, "df", 2, id1, true, 0, &v1), 0);
	/* CAS with a wrong version fails and changes nothing. */
	assert_int_equal(store_set_name(&f->st, "df", 2, id2, true, 0, &v),
	                 SHOAL_EVERSION);
	assert_int_equal(store_get_name(&f->st, &f->b, "df", 2, &slot, &v), 0);
	assert_int_equal(v, v1);
	assert_memory_equal(objtab_get(&f->st.objs, slot)->id, id1,
	                    SHOAL_ID_SIZE);
	/* Named objects cannot be deleted or evicted. */
	assert_int_equal(store_delete(&f->st, id1), SHOAL_EEXISTS);
	store_release(&f->st, &f->b, objtab_handle(&f->st.objs, slot));
	assert_false(objtab_get(&f->st.objs, slot)->in_lru);
	assert_int_equal(store_evict(&f->st, CAP), 2000);
	assert_int_equal(store_contains(&f->st, id1), SHOAL_STATE_SEALED);
	/* Object 2 was evicted; a new 2 replaces the name. */
	put(f, &f->a, 2, 2000);
	assert_int_equal(store_get_name(&f->st, &f->b, "df", 2, &slot, &v), 0);
	assert_int_equal(store_set_name(&f->st, "df", 2, id2, true, v1, &v2),
	                 0);
	assert_true(v2 > v1);
	/* The old object is deleted but b still reads it. */
	assert_int_equal(store_contains(&f->st, id1), SHOAL_STATE_ABSENT);
	assert_int_equal(objtab_get(&f->st.objs, slot)->data_size, 1000);
	assert_int_equal(f->st.deleted_held, 1);
	store_release(&f->st, &f->b, objtab_handle(&f->st.objs, slot));
	assert_int_equal(f->st.deleted_held, 0);
	assert_int_equal(alloc_used(f->st.alloc), 2048);
	/* Naming the same object again keeps it. */
	assert_int_equal(store_set_name(&f->st, "df", 2, id2, false, 0, &v), 0);
	assert_int_equal(store_contains(&f->st, id2), SHOAL_STATE_SEALED);
	assert_int_equal(store_delete_name(&f->st, "df", 2, true, v2),
	                 SHOAL_EVERSION);
	assert_int_equal(store_delete_name(&f->st, "df", 2, true, v), 0);
	assert_int_equal(store_contains(&f->st, id2), SHOAL_STATE_ABSENT);
	assert_int_equal(store_delete_name(&f->st, "df", 2, false, 0),
	                 SHOAL_ENOTFOUND);
	assert_int_equal(alloc_used(f->st.alloc), 0);
}

static void test_name_needs_sealed(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h, v;
	bool backed;

	make_id(id, 9);
	assert_int_equal(store_set_name(&f->st, "x", 1, id, false, 0, &v),
	                 SHOAL_ENOTFOUND);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, 10, 0, &off, &h, &backed), 0);
	assert_int_equal(store_set_name(&f->st, "x", 1, id, false, 0, &v),
	                 SHOAL_ENOTSEALED);
	assert_int_equal(store_abort(&f->st, &f->a, id), 0);
}

static void test_client_gone(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	uint32_t slot;
	bool backed;

	put(f, &f->a, 1, 100);
	make_id(id, 1);
	assert_int_equal(store_get(&f->st, &f->b, id, &slot), 0);
	assert_int_equal(store_delete(&f->st, id), 0);
	make_id(id, 2);
	assert_int_equal(
	        store_create(&f->st, &f->b, id, 100, 0, &off, &h, &backed), 0);
	store_client_gone(&f->st, &f->b);
	store_client_init(&f->b, 3);
	assert_int_equal(store_contains(&f->st, id), SHOAL_STATE_ABSENT);
	assert_int_equal(alloc_used(f->st.alloc), 0);
	assert_int_equal(f->st.deleted_held, 0);
}

/* Random operations from two clients against the invariant check. */
static void test_random_ops(void **state)
{
	struct fixture *f = *state;
	struct store_client *cl[] = {&f->a, &f->b};
	uint64_t handles[2][64] = {{0}};
	unsigned seed = 12345;

	srand(seed);
	for (int i = 0; i < 200000; i++) {
		struct store_client *c = cl[rand() % 2];
		uint8_t id[SHOAL_ID_SIZE];
		uint64_t off, h, v;
		uint32_t slot;
		bool backed;
		unsigned n = (unsigned)rand() % 64;
		int op = rand() % 8;
		make_id(id, n);
		switch (op) {
		case 0:
			if (store_create(&f->st, c, id,
			                 (uint64_t)(rand() % (CAP / 8)), 0,
			                 &off, &h, &backed) == 0 &&
			    rand() % 4 == 0)
				store_abort(&f->st, c, id);
			break;
		case 1:
			store_seal(&f->st, c, id);
			break;
		case 2:
			if (store_get(&f->st, c, id, &slot) == 0)
				handles[c->id - 1][n] =
				        objtab_handle(&f->st.objs, slot);
			break;
		case 3:
			store_release(&f->st, c, handles[c->id - 1][n]);
			break;
		case 4:
			store_delete(&f->st, id);
			break;
		case 5: {
			char name[8];
			snprintf(name, sizeof(name), "n%u", n % 8);
			store_set_name(&f->st, name, strlen(name), id, false, 0,
			               &v);
			break;
		}
		case 6: {
			char name[8];
			snprintf(name, sizeof(name), "n%u", n % 8);
			store_delete_name(&f->st, name, strlen(name), false, 0);
			break;
		}
		case 7:
			if (rand() % 100 == 0)
				store_evict(&f->st, CAP / 4);
			break;
		}
		if (i % 997 == 0)
			check(f);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_life_cycle, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_abort_frees, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_deferred_delete, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_eviction_lru_order, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_full_evicts_nothing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_exact_capacity, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_names, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_name_needs_sealed, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_client_gone, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_random_ops, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
