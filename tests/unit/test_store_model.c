/*
 * test_store_model.c - the store against a naive reference model, in the
 * way SQLite tests its structures: random operations from two clients,
 * each result compared with what the model says it must be, and the
 * model's counts compared with the store's every few hundred steps.
 *
 * The model knows objects (by ID while live; kept while deleted and still
 * held), who created and who holds each, names, and deletion. It cannot
 * know where memory runs out, so a create may fail with SHOAL_EFULL, and
 * evictions are learnt from the store's notification hook; the model then
 * checks that the evicted object was evictable (sealed, not deleted, no
 * names, no holders).
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

#define CAP     (1u << 20)
#define IDS     48
#define NAMES   8
#define RECORDS 8192

struct mobj {
	bool used;
	unsigned n; /* ID number */
	int state;  /* SHOAL_STATE_CREATED or _SEALED */
	unsigned creator;
	bool held[2];
	unsigned names;
	bool deleted;
	uint64_t handle;
};

struct model {
	struct mobj rec[RECORDS];
	int live[IDS];    /* record of each live ID, or -1 */
	int named[NAMES]; /* record each name points at, or -1 */
	unsigned evicted;
};

static struct model M;
static struct arena arena;
static struct store st;
static struct store_client cl[2];

static void make_id(uint8_t *id, unsigned n)
{
	memset(id, 0x33, SHOAL_ID_SIZE);
	memcpy(id, &n, sizeof(n));
}

static void name_of(char *buf, unsigned k)
{
	snprintf(buf, 8, "nm%u", k);
}

/* Frees a deleted record once nobody holds it. */
static void maybe_free(int r)
{
	struct mobj *o = &M.rec[r];

	if (o->deleted && !o->held[0] && !o->held[1])
		o->used = false;
}

static void model_delete(int r)
{
	M.live[M.rec[r].n] = -1;
	M.rec[r].deleted = true;
	maybe_free(r);
}

/* The store's hook: evictions are the one thing the model cannot
 * predict. */
static void on_note(void *ctx, enum store_note note, const struct object *o,
                    const char *name, size_t len, uint64_t version)
{
	unsigned n;

	(void)ctx;
	(void)name;
	(void)len;
	(void)version;
	if (note != STORE_NOTE_EVICTED)
		return;
	memcpy(&n, o->id, sizeof(n));
	assert_true(n < IDS);
	int r = M.live[n];
	assert_true(r >= 0);
	struct mobj *m = &M.rec[r];
	if (m->state != SHOAL_STATE_SEALED || m->names || m->held[0] ||
	    m->held[1])
		fail_msg("object %u evicted while not evictable", n);
	M.evicted++;
	model_delete(r);
}

static int new_record(void)
{
	for (int r = 0; r < RECORDS; r++)
		if (!M.rec[r].used) {
			memset(&M.rec[r], 0, sizeof(M.rec[r]));
			M.rec[r].used = true;
			return r;
		}
	fail_msg("model out of records");
	return -1;
}

static void compare_counts(void)
{
	uint32_t live = 0, named = 0;
	uint64_t deleted_held = 0;
	char msg[256];

	for (unsigned n = 0; n < IDS; n++) {
		uint8_t id[SHOAL_ID_SIZE];
		make_id(id, n);
		int want = M.live[n] < 0 ? SHOAL_STATE_ABSENT
		                         : M.rec[M.live[n]].state;
		assert_int_equal(store_contains(&st, id), want);
		live += M.live[n] >= 0;
		if (M.live[n] >= 0) {
			uint32_t slot = objtab_find(&st.objs, id);
			const struct mobj *m = &M.rec[M.live[n]];
			assert_int_equal(objtab_get(&st.objs, slot)->holders,
			                 m->held[0] + m->held[1]);
			assert_int_equal(objtab_get(&st.objs, slot)->names,
			                 m->names);
		}
	}
	for (int r = 0; r < RECORDS; r++)
		deleted_held += M.rec[r].used && M.rec[r].deleted;
	for (unsigned k = 0; k < NAMES; k++)
		named += M.named[k] >= 0;
	assert_int_equal(st.objs.live, live);
	assert_int_equal(st.names.count, named);
	assert_int_equal(st.deleted_held, deleted_held);
	struct store_client *c[] = {&cl[0], &cl[1]};
	if (store_check(&st, c, 2, msg, sizeof(msg)))
		fail_msg("store check: %s", msg);
}

static void op_create(unsigned c, unsigned n, uint64_t size)
{
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	bool backed;

	make_id(id, n);
	int rc = store_create(&st, &cl[c], id, size, 0, &off, &h, &backed);
	if (M.live[n] >= 0) {
		assert_int_equal(rc, SHOAL_EEXISTS);
		return;
	}
	if (rc == SHOAL_EFULL)
		return;
	assert_int_equal(rc, 0);
	int r = new_record();
	M.rec[r].n = n;
	M.rec[r].state = SHOAL_STATE_CREATED;
	M.rec[r].creator = c;
	M.rec[r].held[c] = true;
	M.rec[r].handle = h;
	M.live[n] = r;
}

/* Seal (abort false) or abort: the same checks. */
static void op_finish(unsigned c, unsigned n, bool abort)
{
	uint8_t id[SHOAL_ID_SIZE];
	int r = M.live[n], want = 0;

	make_id(id, n);
	int rc = abort ? store_abort(&st, &cl[c], id)
	               : store_seal(&st, &cl[c], id);
	if (r < 0)
		want = SHOAL_ENOTFOUND;
	else if (M.rec[r].state == SHOAL_STATE_SEALED)
		want = SHOAL_ESEALED;
	else if (M.rec[r].creator != c)
		want = SHOAL_ENOTOWNER;
	assert_int_equal(rc, want);
	if (rc)
		return;
	if (abort) {
		M.rec[r].held[c] = false;
		model_delete(r);
	} else {
		M.rec[r].state = SHOAL_STATE_SEALED;
	}
}

static void op_get(unsigned c, unsigned n)
{
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t slot;
	int r = M.live[n];

	make_id(id, n);
	int rc = store_get(&st, &cl[c], id, &slot);
	if (r < 0 || M.rec[r].state != SHOAL_STATE_SEALED) {
		assert_int_equal(rc, SHOAL_ENOTFOUND);
		return;
	}
	assert_int_equal(rc, 0);
	assert_true(objtab_handle(&st.objs, slot) == M.rec[r].handle);
	M.rec[r].held[c] = true;
}

/* Releases a random record's handle (live or deleted, held or not). */
static void op_release(unsigned c, int r)
{
	struct mobj *m = &M.rec[r];

	if (!m->used)
		return;
	store_release(&st, &cl[c], m->handle);
	/* The creator's hold of an unsealed object stays. */
	if (m->state == SHOAL_STATE_CREATED && m->creator == c)
		return;
	m->held[c] = false;
	maybe_free(r);
}

static void op_delete(unsigned n)
{
	uint8_t id[SHOAL_ID_SIZE];
	int r = M.live[n], want = 0;

	make_id(id, n);
	int rc = store_delete(&st, id);
	if (r < 0)
		want = SHOAL_ENOTFOUND;
	else if (M.rec[r].state != SHOAL_STATE_SEALED)
		want = SHOAL_ENOTSEALED;
	else if (M.rec[r].names)
		want = SHOAL_EEXISTS;
	assert_int_equal(rc, want);
	if (rc == 0)
		model_delete(r);
}

static void unname(int r)
{
	if (--M.rec[r].names == 0)
		model_delete(r);
}

static void op_set_name(unsigned k, unsigned n)
{
	uint8_t id[SHOAL_ID_SIZE];
	char name[8];
	uint64_t v;
	int r = M.live[n], want = 0;

	make_id(id, n);
	name_of(name, k);
	int rc = store_set_name(&st, name, strlen(name), id, false, 0, &v);
	if (r < 0)
		want = SHOAL_ENOTFOUND;
	else if (M.rec[r].state != SHOAL_STATE_SEALED)
		want = SHOAL_ENOTSEALED;
	assert_int_equal(rc, want);
	if (rc)
		return;
	int old = M.named[k];
	M.rec[r].names++;
	M.named[k] = r;
	if (old >= 0)
		unname(old);
}

static void op_delete_name(unsigned k)
{
	char name[8];

	name_of(name, k);
	int rc = store_delete_name(&st, name, strlen(name), false, 0);
	int r = M.named[k];
	assert_int_equal(rc, r < 0 ? SHOAL_ENOTFOUND : 0);
	if (r < 0)
		return;
	M.named[k] = -1;
	unname(r);
}

static void op_client_gone(unsigned c)
{
	store_client_gone(&st, &cl[c]);
	store_client_init(&cl[c], c + 1);
	for (int r = 0; r < RECORDS; r++) {
		struct mobj *m = &M.rec[r];
		if (!m->used)
			continue;
		if (!m->deleted && m->state == SHOAL_STATE_CREATED &&
		    m->creator == c) {
			m->held[c] = false;
			model_delete(r);
			continue;
		}
		m->held[c] = false;
		maybe_free(r);
	}
}

static void test_store_matches_model(void **state)
{
	char err[256];
	unsigned seed = 2026;

	(void)state;
	memset(&M, 0, sizeof(M));
	for (int n = 0; n < IDS; n++)
		M.live[n] = -1;
	for (int k = 0; k < NAMES; k++)
		M.named[k] = -1;
	assert_int_equal(arena_open(&arena, CAP, NULL, err, sizeof(err)), 0);
	assert_int_equal(store_init(&st, &arena), 0);
	st.notify = on_note;
	store_client_init(&cl[0], 1);
	store_client_init(&cl[1], 2);
	for (int i = 0; i < 150000; i++) {
		seed = seed * 1103515245u + 12345u;
		unsigned x = seed >> 8;
		unsigned c = x & 1, n = (x >> 1) % IDS, k = (x >> 7) % NAMES;
		switch ((x >> 11) % 11) {
		case 0:
		case 1:
			op_create(c, n, (x >> 15) % (CAP / 6));
			break;
		case 2:
			op_finish(c, n, false);
			break;
		case 3:
			op_finish(c, n, (x >> 15) % 3 != 0 ? false : true);
			break;
		case 4:
			op_get(c, n);
			break;
		case 5:
			op_release(c, (int)((x >> 15) % 64));
			break;
		case 6:
			op_delete(n);
			break;
		case 7:
			op_set_name(k, n);
			break;
		case 8:
			op_delete_name(k);
			break;
		case 9:
			if ((x >> 15) % 50 == 0)
				(void)store_evict(&st, CAP / 4);
			break;
		default:
			if ((x >> 15) % 200 == 0)
				op_client_gone(c);
			break;
		}
		if (i % 499 == 0)
			compare_counts();
	}
	compare_counts();
	/* The run must have reached the interesting states. */
	assert_true(M.evicted > 0);
	op_client_gone(0);
	op_client_gone(1);
	compare_counts();
	store_free(&st);
	arena_close(&arena);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_store_matches_model),
	};
	return cmocka_run_group_tests_name("store model", tests, NULL, NULL);
}
