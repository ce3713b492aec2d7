/*
 * test_cache.c - the cache semantics of names without sockets: time to
 * live (expiry at the exact time, lazily on lookup and by the loop's pass,
 * expire/persist, a reader keeps its memory), evictable names (LRU order
 * with anonymous objects, plain names never evicted, nothing evicted when
 * it would not help), deletion by prefix, the notifications of all of
 * these, and a differential test of the expiry heap against a naive
 * reference model. The store's clock is replaced by a variable, so nothing
 * here sleeps. Every test ends with store_check().
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
#define MS  1000000ull

static uint64_t fake_now = 1000 * MS;

static uint64_t fake_clock(void)
{
	return fake_now;
}

/* Notifications seen, in order. */
struct seen {
	enum store_note note;
	char name[32];
	uint8_t id0;
};

struct fixture {
	struct arena arena;
	struct store st;
	struct store_client a, b;
	struct seen notes[64];
	size_t nnotes;
};

static void on_note(void *ctx, enum store_note n, const struct object *o,
                    const char *name, size_t len, uint64_t version)
{
	struct fixture *f = ctx;

	(void)version;
	if (f->nnotes == 64)
		return;
	struct seen *s = &f->notes[f->nnotes++];
	s->note = n;
	s->id0 = o ? o->id[0] : 0;
	snprintf(s->name, sizeof(s->name), "%.*s", (int)len, name ? name : "");
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char err[256];

	assert_non_null(f);
	assert_int_equal(arena_open(&f->arena, CAP, NULL, err, sizeof(err)), 0);
	assert_int_equal(store_init(&f->st, &f->arena), 0);
	f->st.clock = fake_clock;
	f->st.notify = on_note;
	f->st.notify_ctx = f;
	store_client_init(&f->a, 1);
	store_client_init(&f->b, 2);
	fake_now = 1000 * MS;
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

/* Creates and seals object n of size bytes, then releases the creator's
 * hold. */
static void put(struct fixture *f, unsigned n, uint64_t size)
{
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	bool backed;

	make_id(id, n);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, size, 0, &off, &h, &backed), 0);
	assert_int_equal(store_seal(&f->st, &f->a, id), 0);
	store_release(&f->st, &f->a, h);
}

/* Names object n as name, with ttl_ms and flags. */
static void name(struct fixture *f, const char *nm, unsigned n, uint64_t ttl_ms,
                 uint32_t flags)
{
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t v;

	make_id(id, n);
	assert_int_equal(store_set_name_ttl(&f->st, nm, strlen(nm), id, false,
	                                    0, ttl_ms, flags, &v),
	                 0);
}

static bool exists(struct fixture *f, const char *nm)
{
	return store_find_name(&f->st, nm, strlen(nm)) != NAME_NIL;
}

static int state_of(struct fixture *f, unsigned n)
{
	uint8_t id[SHOAL_ID_SIZE];

	make_id(id, n);
	return store_contains(&f->st, id);
}

static int64_t ttl_of(struct fixture *f, const char *nm)
{
	uint32_t ns = store_find_name(&f->st, nm, strlen(nm));

	assert_int_not_equal(ns, NAME_NIL);
	return store_name_ttl_ms(&f->st, names_get(&f->st.names, ns));
}

static void test_ttl_expires_on_time(void **state)
{
	struct fixture *f = *state;

	put(f, 1, 1000);
	name(f, "t", 1, 100, 0);
	assert_int_equal(ttl_of(f, "t"), 100);
	assert_int_equal(store_next_expiry(&f->st), fake_now + 100 * MS);
	fake_now += 100 * MS - 1;
	assert_int_equal(store_expire_due(&f->st, fake_now, 100), 0);
	assert_true(exists(f, "t"));
	assert_int_equal(ttl_of(f, "t"), 1); /* rounded up */
	fake_now += 1;
	assert_int_equal(store_expire_due(&f->st, fake_now, 100), 1);
	assert_false(exists(f, "t"));
	assert_int_equal(state_of(f, 1), SHOAL_STATE_ABSENT);
	assert_int_equal(alloc_used(f->st.alloc), 0);
	assert_int_equal(f->st.expired, 1);
	assert_int_equal(store_next_expiry(&f->st), UINT64_MAX);
	/* name_set, name_expired, then the object's deletion. */
	assert_int_equal(f->nnotes, 4);
	assert_int_equal(f->notes[2].note, STORE_NOTE_NAME_EXPIRED);
	assert_string_equal(f->notes[2].name, "t");
	assert_int_equal(f->notes[3].note, STORE_NOTE_DELETED);
}

static void test_lookup_expires_lazily(void **state)
{
	struct fixture *f = *state;
	uint32_t slot;
	uint64_t v;

	put(f, 1, 100);
	name(f, "t", 1, 10, 0);
	fake_now += 10 * MS;
	/* The loop has not run yet: a lookup finds the name dead. */
	assert_int_equal(store_get_name(&f->st, &f->b, "t", 1, &slot, &v),
	                 SHOAL_ENOTFOUND);
	assert_int_equal(f->st.expired, 1);
	assert_int_equal(store_expire_due(&f->st, fake_now, 100), 0);
	/* An expired name counts as absent for compare-and-set. */
	put(f, 2, 100);
	name(f, "u", 2, 10, 0);
	fake_now += 20 * MS;
	uint8_t id[SHOAL_ID_SIZE];
	make_id(id, 3);
	put(f, 3, 100);
	assert_int_equal(
	        store_set_name_ttl(&f->st, "u", 1, id, true, 0, 0, 0, &v), 0);
	assert_int_equal(ttl_of(f, "u"), -1);
	assert_int_equal(state_of(f, 2), SHOAL_STATE_ABSENT);
}

static void test_reader_keeps_memory(void **state)
{
	struct fixture *f = *state;
	uint32_t slot;
	uint64_t v;

	put(f, 1, 4096);
	name(f, "t", 1, 5, 0);
	assert_int_equal(store_get_name(&f->st, &f->b, "t", 1, &slot, &v), 0);
	uint64_t h = objtab_handle(&f->st.objs, slot);
	fake_now += 5 * MS;
	assert_int_equal(store_expire_due(&f->st, fake_now, 100), 1);
	assert_false(exists(f, "t"));
	/* Gone for lookups, still in memory for its reader. */
	assert_int_equal(state_of(f, 1), SHOAL_STATE_ABSENT);
	assert_int_equal(f->st.deleted_held, 1);
	assert_true(alloc_used(f->st.alloc) >= 4096);
	check(f);
	store_release(&f->st, &f->b, h);
	assert_int_equal(alloc_used(f->st.alloc), 0);
}

static void test_expire_persist_and_reset(void **state)
{
	struct fixture *f = *state;

	put(f, 1, 100);
	put(f, 2, 100);
	name(f, "a", 1, 0, 0);
	name(f, "b", 2, 50, 0);
	assert_int_equal(ttl_of(f, "a"), -1);
	assert_int_equal(store_expire_name(&f->st, "a", 1, 30), 0);
	assert_int_equal(ttl_of(f, "a"), 30);
	assert_int_equal(store_next_expiry(&f->st), fake_now + 30 * MS);
	assert_int_equal(store_persist_name(&f->st, "a", 1), 0);
	assert_int_equal(ttl_of(f, "a"), -1);
	assert_int_equal(store_next_expiry(&f->st), fake_now + 50 * MS);
	/* Setting a name again replaces its ttl. */
	name(f, "b", 2, 0, 0);
	assert_int_equal(ttl_of(f, "b"), -1);
	assert_int_equal(store_next_expiry(&f->st), UINT64_MAX);
	assert_int_equal(store_expire_name(&f->st, "zz", 2, 5),
	                 SHOAL_ENOTFOUND);
	assert_int_equal(store_persist_name(&f->st, "zz", 2), SHOAL_ENOTFOUND);
	assert_int_equal(
	        store_expire_name(&f->st, "a", 1, SHOAL_TTL_MAX_MS + 1),
	        SHOAL_ETOOBIG);
	/* ttl 0 expires now. */
	assert_int_equal(store_expire_name(&f->st, "a", 1, 0), 0);
	assert_false(exists(f, "a"));
	assert_int_equal(f->st.expired, 1);
	assert_int_equal(state_of(f, 1), SHOAL_STATE_ABSENT);
	/* A second name keeps the object when the first expires. */
	name(f, "c", 2, 10, 0);
	fake_now += 10 * MS;
	assert_int_equal(store_expire_due(&f->st, fake_now, 100), 1);
	assert_int_equal(state_of(f, 2), SHOAL_STATE_SEALED);
	assert_true(exists(f, "b"));
}

static void test_evictable_names_lru(void **state)
{
	struct fixture *f = *state;
	uint8_t id[SHOAL_ID_SIZE];
	uint64_t off, h;
	uint32_t slot;
	uint64_t v;
	bool backed;

	/* Four quarters: two evictable names, one plain name, one anonymous
	 * object. */
	for (unsigned i = 1; i <= 4; i++)
		put(f, i, CAP / 4);
	name(f, "e1", 1, 0, NAME_EVICTABLE);
	name(f, "plain", 2, 0, 0);
	name(f, "e3", 3, 0, NAME_EVICTABLE);
	/* Naming counts as a use: the LRU is 4, 3, 1 once e1 is read. */
	assert_int_equal(store_get_name(&f->st, &f->b, "e1", 2, &slot, &v), 0);
	store_release(&f->st, &f->b, objtab_handle(&f->st.objs, slot));
	f->nnotes = 0;
	make_id(id, 5);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, CAP / 2, 0, &off, &h, &backed),
	        0);
	assert_int_equal(f->st.evictions, 2);
	assert_int_equal(f->st.evicted_names, 1);
	assert_false(exists(f, "e3"));
	assert_true(exists(f, "e1"));
	assert_true(exists(f, "plain"));
	assert_int_equal(state_of(f, 3), SHOAL_STATE_ABSENT);
	assert_int_equal(state_of(f, 4), SHOAL_STATE_ABSENT);
	/* Object 4, then e3's name before its object. */
	assert_int_equal(f->nnotes, 3);
	assert_int_equal(f->notes[0].note, STORE_NOTE_EVICTED);
	assert_int_equal(f->notes[0].id0, 4);
	assert_int_equal(f->notes[1].note, STORE_NOTE_NAME_EVICTED);
	assert_string_equal(f->notes[1].name, "e3");
	assert_int_equal(f->notes[2].note, STORE_NOTE_EVICTED);
	assert_int_equal(f->notes[2].id0, 3);
	check(f);
	/* Needing the plain name's quarter too: nothing can make room, so
	 * nothing is evicted. */
	make_id(id, 6);
	assert_int_equal(
	        store_create(&f->st, &f->a, id, CAP / 2, 0, &off, &h, &backed),
	        SHOAL_EFULL);
	assert_true(exists(f, "e1"));
	assert_int_equal(f->st.evictions, 2);
	make_id(id, 5);
	assert_int_equal(store_abort(&f->st, &f->a, id), 0);
}

static void test_mixed_names_pin(void **state)
{
	struct fixture *f = *state;
	uint32_t slot;

	uint8_t id[SHOAL_ID_SIZE];
	uint64_t v;

	put(f, 1, 100);
	name(f, "e", 1, 0, NAME_EVICTABLE);
	make_id(id, 1);
	slot = objtab_find(&f->st.objs, id);
	assert_true(objtab_get(&f->st.objs, slot)->in_lru);
	/* A plain name on the same object pins it. */
	name(f, "p", 1, 0, 0);
	assert_false(objtab_get(&f->st.objs, slot)->in_lru);
	assert_int_equal(store_evict(&f->st, CAP), 0);
	/* Re-setting the plain name as evictable unpins it. */
	name(f, "p", 1, 0, NAME_EVICTABLE);
	assert_true(objtab_get(&f->st.objs, slot)->in_lru);
	name(f, "p", 1, 0, 0);
	assert_int_equal(store_delete_name(&f->st, "p", 1, false, 0), 0);
	assert_true(objtab_get(&f->st.objs, slot)->in_lru);
	check(f);
	assert_true(store_evict(&f->st, 1) > 0);
	assert_false(exists(f, "e"));
	assert_int_equal(f->st.evicted_names, 1);
	assert_int_equal(state_of(f, 1), SHOAL_STATE_ABSENT);
	/* Unknown flags are refused. */
	put(f, 2, 100);
	make_id(id, 2);
	assert_int_equal(
	        store_set_name_ttl(&f->st, "x", 1, id, false, 0, 0, 8, &v),
	        SHOAL_EINVAL);
	assert_int_equal(store_set_name_ttl(&f->st, "x", 1, id, false, 0,
	                                    SHOAL_TTL_MAX_MS + 1, 0, &v),
	                 SHOAL_ETOOBIG);
}

static void test_delete_prefix(void **state)
{
	struct fixture *f = *state;
	uint64_t n;
	uint32_t slot;
	uint64_t v;

	for (unsigned i = 1; i <= 6; i++)
		put(f, i, 100);
	name(f, "ns1:a", 1, 0, 0);
	name(f, "ns1:b", 2, 0, NAME_EVICTABLE);
	name(f, "ns1:c", 3, 10, 0);
	name(f, "ns12", 4, 0, 0);
	name(f, "ns2:a", 5, 0, 0);
	name(f, "ns1:alias", 5, 0, 0);
	assert_int_equal(store_get_name(&f->st, &f->b, "ns1:a", 5, &slot, &v),
	                 0);
	fake_now += 10 * MS; /* ns1:c has expired, not yet removed */
	store_delete_prefix(&f->st, "ns1:", 4, &n);
	assert_int_equal(n, 3);
	assert_int_equal(f->st.expired, 1);
	assert_false(exists(f, "ns1:a"));
	assert_false(exists(f, "ns1:alias"));
	assert_true(exists(f, "ns12"));
	assert_true(exists(f, "ns2:a"));
	/* Object 5 keeps its other name; 1 waits for its reader. */
	assert_int_equal(state_of(f, 5), SHOAL_STATE_SEALED);
	assert_int_equal(state_of(f, 2), SHOAL_STATE_ABSENT);
	assert_int_equal(f->st.deleted_held, 1);
	check(f);
	store_release(&f->st, &f->b, objtab_handle(&f->st.objs, slot));
	store_delete_prefix(&f->st, "zz", 2, &n);
	assert_int_equal(n, 0);
	store_delete_prefix(&f->st, "", 0, &n);
	assert_int_equal(n, 2);
	assert_int_equal(f->st.names.count, 0);
	/* Object 6 was never named: it stays, evictable. */
	assert_int_equal(state_of(f, 6), SHOAL_STATE_SEALED);
}

/*
 * Differential test: random sets (with and without ttl), expires, persists,
 * deletes and clock steps against a reference model that keeps, per name,
 * whether it exists and when it expires, and finds the due names by a full
 * scan. After each expiry pass the store's live names must be the model's.
 */
#define REF_NAMES 48

static void test_expiry_reference(void **state)
{
	struct fixture *f = *state;
	struct {
		bool live;
		uint64_t at; /* 0: none */
	} ref[REF_NAMES] = {{0}};
	uint64_t expired = 0;
	unsigned seed = 4242;

	for (unsigned i = 1; i <= 8; i++)
		put(f, i, 64);
	srand(seed);
	for (int step = 0; step < 60000; step++) {
		unsigned k = (unsigned)rand() % REF_NAMES;
		char nm[16];
		uint64_t ttl = (uint64_t)(rand() % 50);
		snprintf(nm, sizeof(nm), "k%u", k);
		switch (rand() % 6) {
		case 0:
		case 1: {
			uint8_t id[SHOAL_ID_SIZE];
			uint64_t v;
			unsigned obj = 1 + (unsigned)rand() % 8;
			if (ref[k].live && ref[k].at && ref[k].at <= fake_now) {
				/* found dead by the lookup */
				assert_false(exists(f, nm));
				expired++;
			}
			if (state_of(f, obj) != SHOAL_STATE_SEALED)
				put(f, obj, 64);
			make_id(id, obj);
			assert_int_equal(
			        store_set_name_ttl(&f->st, nm, strlen(nm), id,
			                           false, 0, ttl, 0, &v),
			        0);
			ref[k].live = true;
			ref[k].at = ttl ? fake_now + ttl * MS : 0;
			break;
		}
		case 2: {
			bool live = ref[k].live &&
			            (!ref[k].at || ref[k].at > fake_now);
			if (ref[k].live && !live) {
				expired++;
				ref[k].live = false;
			}
			int rc = store_expire_name(&f->st, nm, strlen(nm), ttl);
			assert_int_equal(rc, live ? 0 : SHOAL_ENOTFOUND);
			if (live && ttl == 0) {
				ref[k].live = false;
				expired++;
			} else if (live) {
				ref[k].at = fake_now + ttl * MS;
			}
			break;
		}
		case 3: {
			bool live = ref[k].live &&
			            (!ref[k].at || ref[k].at > fake_now);
			if (ref[k].live && !live) {
				expired++;
				ref[k].live = false;
			}
			assert_int_equal(
			        store_persist_name(&f->st, nm, strlen(nm)),
			        live ? 0 : SHOAL_ENOTFOUND);
			if (live)
				ref[k].at = 0;
			break;
		}
		case 4: {
			bool live = ref[k].live &&
			            (!ref[k].at || ref[k].at > fake_now);
			if (ref[k].live && !live)
				expired++;
			assert_int_equal(store_delete_name(&f->st, nm,
			                                   strlen(nm), false,
			                                   0),
			                 live ? 0 : SHOAL_ENOTFOUND);
			ref[k].live = false;
			break;
		}
		case 5:
			fake_now += (uint64_t)(rand() % 20) * MS;
			for (unsigned j = 0; j < REF_NAMES; j++)
				if (ref[j].live && ref[j].at &&
				    ref[j].at <= fake_now) {
					ref[j].live = false;
					expired++;
				}
			store_expire_due(&f->st, fake_now, UINT64_MAX);
			assert_int_equal(f->st.expired, expired);
			for (unsigned j = 0; j < REF_NAMES; j++) {
				char m[16];
				snprintf(m, sizeof(m), "k%u", j);
				assert_int_equal(names_find(&f->st.names, m,
				                            strlen(m)) !=
				                         NAME_NIL,
				                 ref[j].live);
			}
			break;
		}
		if (step % 997 == 0)
			check(f);
	}
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Differential test of the name-order index against a sorted array: random
 * adds and removes of names (short, sharing prefixes, some of them
 * prefixes of others), then a walk with names_seek/names_next must list
 * exactly the sorted names, and seeks must land where a scan of the sorted
 * array says.
 */
static void test_name_order_reference(void **state)
{
	struct names n;
	char *present[512];
	size_t npresent = 0;
	char msg[128];

	(void)state;
	assert_int_equal(names_init(&n), 0);
	srand(777);
	for (int step = 0; step < 20000; step++) {
		char key[8];
		int len = 1 + rand() % 4;
		for (int i = 0; i < len; i++)
			key[i] = "ab\xc3\xa9"[rand() % 4];
		key[len] = '\0';
		uint32_t s = names_find(&n, key, (size_t)len);
		if (s == NAME_NIL && npresent < 512) {
			assert_int_equal(
			        names_add(&n, key, (size_t)len, 0, 1, &s), 0);
			present[npresent++] = strdup(key);
		} else if (s != NAME_NIL) {
			names_remove(&n, s);
			for (size_t i = 0; i < npresent; i++)
				if (!strcmp(present[i], key)) {
					free(present[i]);
					present[i] = present[--npresent];
					break;
				}
		}
		if (step % 97)
			continue;
		if (names_check(&n, msg, sizeof(msg)) != 0)
			fail_msg("%s", msg);
		qsort(present, npresent, sizeof(*present), cmp_str);
		size_t i = 0;
		for (s = names_seek(&n, "", 0, true); s != NAME_NIL;
		     s = names_next(&n, s), i++) {
			assert_true(i < npresent);
			assert_string_equal(names_get(&n, s)->name, present[i]);
		}
		assert_int_equal(i, npresent);
		/* A seek lands on the first name at / after the key. */
		size_t first = 0, after = 0;
		while (first < npresent && strcmp(present[first], key) < 0)
			first++;
		after = first;
		while (after < npresent && strcmp(present[after], key) <= 0)
			after++;
		s = names_seek(&n, key, strlen(key), true);
		if (first == npresent)
			assert_int_equal(s, NAME_NIL);
		else
			assert_string_equal(names_get(&n, s)->name,
			                    present[first]);
		s = names_seek(&n, key, strlen(key), false);
		if (after == npresent)
			assert_int_equal(s, NAME_NIL);
		else
			assert_string_equal(names_get(&n, s)->name,
			                    present[after]);
	}
	for (size_t i = 0; i < npresent; i++)
		free(present[i]);
	names_free(&n);
}

/*
 * Paged listing by prefix while names come and go: a name that exists for
 * the whole listing is listed exactly once, pages come in name order, and
 * nothing outside the prefix appears.
 */
static void test_list_pages_under_change(void **state)
{
	struct fixture *f = *state;
	uint32_t slots[7], count;
	char after[64] = "";
	bool more = true;
	int seen[600] = {0}; /* ns:000..ns:599 */
	char last[64] = "";

	put(f, 1, 64);
	name(f, "anchor", 1, 0, 0);
	for (int i = 0; i < 200; i++) {
		char nm[32];
		snprintf(nm, sizeof(nm), "ns:%03d", i);
		name(f, nm, 1, i % 3 == 0 ? 1 : 0, 0);
	}
	name(f, "nt:0", 1, 0, 0);
	fake_now += 1 * MS; /* every third name has expired */
	srand(99);
	while (more) {
		store_list_names(&f->st, "ns:", 3, after, strlen(after), 7,
		                 slots, &count, &more);
		assert_true(count <= 7);
		assert_true(!more || count > 0);
		for (uint32_t i = 0; i < count; i++) {
			const char *nm =
			        names_get(&f->st.names, slots[i])->name;
			assert_memory_equal(nm, "ns:", 3);
			assert_true(strcmp(nm, last) > 0);
			snprintf(last, sizeof(last), "%s", nm);
			seen[atoi(nm + 3)]++;
		}
		if (count)
			snprintf(after, sizeof(after), "%s", last);
		/* Meanwhile: new names (ns:5xx) and deletions of odd ones. */
		char nm[32];
		snprintf(nm, sizeof(nm), "ns:5%02d", rand() % 100);
		name(f, nm, 1, 0, 0);
		snprintf(nm, sizeof(nm), "ns:%03d", 1 + 2 * (rand() % 100));
		store_delete_name(&f->st, nm, strlen(nm), false, 0);
	}
	for (int i = 0; i < 200; i++)
		if (i % 3 == 0)
			assert_int_equal(seen[i], 0); /* expired */
		else if (i % 2 == 0)
			assert_int_equal(seen[i], 1); /* there all along */
		else
			assert_true(seen[i] <= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_ttl_expires_on_time, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_lookup_expires_lazily,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_reader_keeps_memory, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_expire_persist_and_reset,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_evictable_names_lru, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_mixed_names_pin, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_delete_prefix, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_expiry_reference, setup,
	                                        teardown),
	        cmocka_unit_test(test_name_order_reference),
	        cmocka_unit_test_setup_teardown(test_list_pages_under_change,
	                                        setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
