/*
 * test_freelog.c - memory the store frees leaves the page tables of every
 * client that touched it, at that client's next call, whatever frees it
 * (a delete, an expiring name, an eviction) and whatever its size; the
 * data of objects placed there later reads correctly; a client that fell
 * more than the log behind drops what it maps; a creator keeps the range
 * of its last large creates mapped.
 *
 * What a page-table entry is: the present bit of /proc/self/pagemap for
 * the page's address in this process (mincore would report the page
 * cache, which keeps freed pages of the warm reserve). Two clients in one
 * process have two mappings of the arena, so each is checked on its own.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "shoal.h"
#include "testd.h"

#define KiB  (1ull << 10)
#define MiB  (1ull << 20)
#define PAGE 4096u

static struct testd d;

/* Pages of [p, p + len) (inner whole pages) present in this process's
 * page tables. */
static size_t present_pages(const void *p, size_t len)
{
	uintptr_t lo = ((uintptr_t)p + PAGE - 1) / PAGE;
	uintptr_t hi = ((uintptr_t)p + len) / PAGE;
	size_t n = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	assert_true(fd >= 0);
	for (uintptr_t pg = lo; pg < hi;) {
		uint64_t e[512];
		size_t k = hi - pg < 512 ? hi - pg : 512;
		ssize_t got = pread(fd, e, k * 8, (off_t)(pg * 8));

		assert_int_equal(got, (ssize_t)(k * 8));
		for (size_t i = 0; i < k; i++)
			n += e[i] >> 63;
		pg += k;
	}
	close(fd);
	return n;
}

static size_t pages_in(size_t len)
{
	return len / PAGE;
}

/* Reads every byte; whether all are v. */
static bool all_bytes(const uint8_t *p, size_t n, int v)
{
	bool ok = true;

	for (size_t i = 0; i < n; i++)
		ok &= p[i] == (uint8_t)v;
	return ok;
}

/* Creates, fills with v and seals an object of size bytes. */
static void put_fill(shoal_client *c, const shoal_id *id, size_t size, int v)
{
	uint8_t *data, *meta;

	assert_int_equal(shoal_create(c, id, size, 0, 0, &data, &meta), 0);
	memset(data, v, size);
	assert_int_equal(shoal_seal(c, id), 0);
	assert_int_equal(shoal_release_id(c, id), 0);
}

/* Gets id in c, checks that it reads v throughout and lets it go; returns
 * where it lies in c's mapping and leaves its pages in c's page tables. */
static const uint8_t *read_once(shoal_client *c, const shoal_id *id,
                                size_t size, int v)
{
	shoal_view view;

	assert_int_equal(shoal_get(c, id, 1, 0, &view), 0);
	assert_int_equal(view.status, 0);
	assert_int_equal(view.data_size, size);
	assert_true(all_bytes(view.data, size, v));
	const uint8_t *p = view.data;
	assert_int_equal(shoal_release(c, &view), 0);
	return p;
}

/* A call that goes to the daemon and changes nothing. */
static void any_call(shoal_client *c)
{
	int state;
	shoal_id none;

	testd_id(&none, 0xf1, 9999);
	assert_int_equal(shoal_contains(c, &none, &state), 0);
}

static int setup(void **state)
{
	(void)state;
	/* A warm reserve above everything freed: nothing is hole-punched, so
	 * only the log can drop freed pages from a client's page tables. */
	return testd_start(&d, "128M", "--reserve", "120M", NULL);
}

static int setup_small_log(void **state)
{
	(void)state;
	return testd_start(&d, "128M", "--reserve", "120M", "--freelog-entries",
	                   "16", NULL);
}

static int teardown(void **state)
{
	char msg[256];

	(void)state;
	return testd_finish(&d, msg, sizeof(msg));
}

/* An unnamed object of a few hundred pages, read by one client and
 * deleted by another, leaves the reader's page tables at the reader's next
 * call; a new object put there reads correctly. */
static void test_deleted_object_leaves_the_reader(void **state)
{
	const size_t size = 1600 * KiB; /* a batch by itself (>= 1 MiB) */
	shoal_client *w, *r;
	shoal_id a, b;
	int res;

	(void)state;
	assert_int_equal(shoal_connect(d.socket, &w), 0);
	assert_int_equal(shoal_connect(d.socket, &r), 0);
	testd_id(&a, 0xf1, 1);
	testd_id(&b, 0xf1, 2);
	put_fill(w, &a, size, 0x11);
	const uint8_t *p = read_once(r, &a, size, 0x11);
	assert_true(present_pages(p, size) >= pages_in(size) - 1);

	assert_int_equal(shoal_delete(w, &a, 1, &res), 0);
	assert_int_equal(res, 0);
	any_call(r);
	assert_int_equal(present_pages(p, size), 0);

	/* The freed block is reused: the reader sees the new data. */
	put_fill(w, &b, size, 0x22);
	const uint8_t *q = read_once(r, &b, size, 0x22);
	assert_ptr_equal(q, p);
	shoal_disconnect(r);
	shoal_disconnect(w);
}

/* Small objects leave the reader in batches (of 64 ranges or 1 MiB):
 * after 63 frees of 8 KiB (one range each) and a call they are all still
 * mapped; the 64th makes a batch, and at the next call none is mapped any
 * more. */
static void test_small_objects_leave_in_batches(void **state)
{
	const size_t size = 8 * KiB, n = 70;
	shoal_client *w, *r;
	shoal_id ids[70];
	const uint8_t *at[70];
	int res;

	(void)state;
	assert_int_equal(shoal_connect(d.socket, &w), 0);
	assert_int_equal(shoal_connect(d.socket, &r), 0);
	for (unsigned i = 0; i < n; i++) {
		testd_id(&ids[i], 0xf4, i);
		put_fill(w, &ids[i], size, 0x60 + (int)i);
	}
	for (unsigned i = 0; i < n; i++) {
		at[i] = read_once(r, &ids[i], size, 0x60 + (int)i);
		assert_true(present_pages(at[i], size) >= 1);
	}
	any_call(r); /* takes the last release, which waits for a call */
	for (unsigned i = 0; i < 63; i++) {
		assert_int_equal(shoal_delete(w, &ids[i], 1, &res), 0);
		assert_int_equal(res, 0);
	}
	any_call(r);
	for (unsigned i = 0; i < 63; i++)
		if (present_pages(at[i], size) == 0)
			fail_msg("object %u left before its batch", i);
	for (unsigned i = 63; i < n; i++) {
		assert_int_equal(shoal_delete(w, &ids[i], 1, &res), 0);
		assert_int_equal(res, 0);
		if (i == 63) {
			any_call(r);
			for (unsigned k = 0; k < 64; k++)
				if (present_pages(at[k], size))
					fail_msg("object %u still mapped", k);
		}
	}
	/* 6 more: less than a batch; one more call does not drop them
	 * either. */
	any_call(r);
	for (unsigned i = 64; i < n; i++)
		assert_true(present_pages(at[i], size) > 0);
	shoal_disconnect(r);
	shoal_disconnect(w);
}

/* A reader that finds very many ranges waiting (more than 4096) drops its
 * whole mapping in one pass rather than an madvise per range: an object
 * it read and that is still live leaves its page tables too, and reads
 * the same afterwards. */
static void test_many_waiting_ranges_drop_everything(void **state)
{
	const size_t size = 256 * KiB;
	shoal_client *w, *r;
	shoal_id a, x;
	int res;

	(void)state;
	assert_int_equal(shoal_connect(d.socket, &w), 0);
	assert_int_equal(shoal_connect(d.socket, &r), 0);
	testd_id(&a, 0xf6, 1);
	put_fill(w, &a, size, 0x66);
	const uint8_t *p = read_once(r, &a, size, 0x66);
	any_call(r);
	assert_true(present_pages(p, size) >= pages_in(size) - 1);
	for (unsigned i = 0; i < 4200; i++) {
		testd_id(&x, 0xf7, i);
		put_fill(w, &x, 8 * KiB, 0x01);
		assert_int_equal(shoal_delete(w, &x, 1, &res), 0);
		assert_int_equal(res, 0);
	}
	any_call(r);
	assert_int_equal(present_pages(p, size), 0);
	read_once(r, &a, size, 0x66);
	shoal_disconnect(r);
	shoal_disconnect(w);
}

/* The same when the object goes because its name expired. */
static void test_expired_name_leaves_the_reader(void **state)
{
	const size_t size = 2 * MiB + 100;
	shoal_client *w, *r;
	shoal_id a;

	(void)state;
	assert_int_equal(shoal_connect(d.socket, &w), 0);
	assert_int_equal(shoal_connect(d.socket, &r), 0);
	testd_id(&a, 0xf1, 3);
	put_fill(w, &a, size, 0x33);
	assert_int_equal(
	        shoal_set_name_ttl(w, "tile", 4, &a, NULL, 50, 0, NULL), 0);
	const uint8_t *p = read_once(r, &a, size, 0x33);
	assert_true(present_pages(p, size) >= pages_in(size) - 1);

	/* Expired once gone from the store (deadline 10 s). */
	uint64_t until = testd_now_ms() + 10000;
	int state_ = SHOAL_STATE_SEALED;
	while (state_ != SHOAL_STATE_ABSENT && testd_now_ms() < until) {
		usleep(20000);
		assert_int_equal(shoal_contains(w, &a, &state_), 0);
	}
	assert_int_equal(state_, SHOAL_STATE_ABSENT);
	any_call(r);
	assert_int_equal(present_pages(p, size), 0);
	shoal_disconnect(r);
	shoal_disconnect(w);
}

/* A client more than the log behind drops its whole mapping; the objects
 * it still views read correctly afterwards. */
static void test_a_client_a_ring_behind_drops_everything(void **state)
{
	const size_t size = 64 * KiB;
	shoal_client *w, *r;
	shoal_view held;
	shoal_id ids[40];
	int res;

	(void)state;
	assert_int_equal(shoal_connect(d.socket, &w), 0);
	assert_int_equal(shoal_connect(d.socket, &r), 0);
	for (unsigned i = 0; i < 40; i++) {
		testd_id(&ids[i], 0xf2, i);
		put_fill(w, &ids[i], size, (int)i + 1);
	}
	/* The reader views object 0 and has read all of them. */
	assert_int_equal(shoal_get(r, &ids[0], 1, 0, &held), 0);
	const uint8_t *first = read_once(r, &ids[1], size, 2);
	for (unsigned i = 2; i < 40; i++)
		read_once(r, &ids[i], size, (int)i + 1);
	assert_true(all_bytes(held.data, size, 1));
	assert_true(present_pages(first, 39 * size) >= pages_in(39 * size) - 2);
	/* 20 frees, every other object: 20 entries, more than the 16 slots
	 * (neighbours never merge). */
	for (unsigned i = 1; i < 40; i += 2) {
		assert_int_equal(shoal_delete(w, &ids[i], 1, &res), 0);
		assert_int_equal(res, 0);
	}
	any_call(r);
	/* Everything went, the live objects too; the held one reads right. */
	assert_int_equal(present_pages(first, 39 * size), 0);
	assert_true(all_bytes(held.data, size, 1));
	for (unsigned i = 2; i < 40; i += 2)
		read_once(r, &ids[i], size, (int)i + 1);
	assert_int_equal(shoal_release(r, &held), 0);
	shoal_disconnect(r);
	shoal_disconnect(w);
}

/* A name refreshed with large objects: a reader drops the old values'
 * pages, the loader keeps the range of its last creates mapped (its next
 * put into that memory then needs no page faults). */
static void test_the_creator_keeps_its_recent_large_ranges(void **state)
{
	const size_t size = 34 * MiB; /* a large create (>= 32 MiB) */
	shoal_client *w, *r;
	shoal_id a, b;

	(void)state;
	assert_int_equal(shoal_connect(d.socket, &w), 0);
	assert_int_equal(shoal_connect(d.socket, &r), 0);
	testd_id(&a, 0xf3, 1);
	testd_id(&b, 0xf3, 2);
	put_fill(w, &a, size, 0x44);
	assert_int_equal(shoal_set_name(w, "frame", 5, &a, NULL, NULL), 0);
	/* The loader reads its value back by name, as a reader would. */
	shoal_view va, vb;
	assert_int_equal(shoal_get_name(w, "frame", 5, 0, &va, NULL), 0);
	const uint8_t *pw = va.data;
	assert_int_equal(shoal_release(w, &va), 0);
	const uint8_t *pr = read_once(r, &a, size, 0x44);

	put_fill(w, &b, size, 0x55); /* a is named: b lands elsewhere */
	assert_int_equal(shoal_set_name(w, "frame", 5, &b, NULL, NULL), 0);
	/* Superseding a by name drops it from a reader, not from where the
	 * loader wrote it. */
	assert_int_equal(shoal_get_name(w, "frame", 5, 0, &vb, NULL), 0);
	assert_int_equal(shoal_release(w, &vb), 0);
	any_call(w);
	any_call(r);
	/* a was freed: gone from the reader, kept by its creator. */
	assert_int_equal(present_pages(pr, size), 0);
	assert_true(present_pages(pw, size) >= pages_in(size) - 1);
	shoal_disconnect(r);
	shoal_disconnect(w);
}

/* A client that reconnects to a restarted daemon follows the new
 * daemon's log (its own region, from its current head). */
static void test_reconnect_follows_the_new_daemon(void **state)
{
	const size_t size = 1600 * KiB;
	shoal_client *w, *r;
	shoal_id a;
	int res;

	(void)state;
	assert_int_equal(shoal_connect(d.socket, &r), 0);
	any_call(r);
	testd_kill(&d);
	assert_int_equal(testd_restart(&d, "128M", "--reserve", "120M", NULL),
	                 0);
	any_call(r); /* reconnects */
	assert_int_equal(shoal_epoch(r), 2);
	assert_int_equal(shoal_connect(d.socket, &w), 0);
	testd_id(&a, 0xf5, 1);
	put_fill(w, &a, size, 0x77);
	const uint8_t *p = read_once(r, &a, size, 0x77);
	assert_true(present_pages(p, size) >= pages_in(size) - 1);
	assert_int_equal(shoal_delete(w, &a, 1, &res), 0);
	assert_int_equal(res, 0);
	any_call(r);
	assert_int_equal(present_pages(p, size), 0);
	shoal_disconnect(r);
	shoal_disconnect(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_deleted_object_leaves_the_reader, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_small_objects_leave_in_batches, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_many_waiting_ranges_drop_everything, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_expired_name_leaves_the_reader, setup, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_a_client_a_ring_behind_drops_everything,
	                setup_small_log, teardown),
	        cmocka_unit_test_setup_teardown(
	                test_the_creator_keeps_its_recent_large_ranges, setup,
	                teardown),
	        cmocka_unit_test_setup_teardown(
	                test_reconnect_follows_the_new_daemon, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
