/*
 * test_superseded.c - a reader that follows a name drops the pages of the
 * name's superseded large objects from its own mapping (the arena
 * mapping's Rss: in /proc/self/smaps), while every object's data stays
 * intact, including an object placed later in the old range.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shoal.h"
#include "testd.h"

#define MiB  (1ull << 20)
#define SIZE (40 * MiB) /* above the client's 32 MiB threshold */

static struct testd d;

/* In a child process (another mapping): puts SIZE bytes of v under name. */
static void put_named(const char *name, unsigned k, int v)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		shoal_client *c;
		shoal_id id;
		uint8_t *data, *meta;

		testd_id(&id, 0x5e, k);
		if (shoal_connect(d.socket, &c) != 0 ||
		    shoal_create(c, &id, SIZE, 0, 0, &data, &meta) != 0)
			_exit(1);
		memset(data, v, SIZE);
		if (shoal_seal(c, &id) != 0 ||
		    shoal_set_name(c, name, strlen(name), &id, NULL, NULL) !=
		            0 ||
		    shoal_release_id(c, &id) != 0)
			_exit(2);
		shoal_disconnect(c);
		_exit(0);
	}
	int st = testd_wait_pid(pid, 30000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* Bytes of the mapping that holds p in this process's page tables. */
static uint64_t rss_of_mapping(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool inside = false;
	uint64_t kb = UINT64_MAX;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) {
			inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		} else if (inside && sscanf(line, "Rss: %lu kB", &lo) == 1) {
			kb = lo;
			break;
		}
	}
	fclose(f);
	assert_true(kb != UINT64_MAX);
	return kb * 1024;
}

static bool all_bytes(const uint8_t *p, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)v)
			return false;
	return true;
}

static int setup(void **state)
{
	(void)state;
	/* A warm reserve above every freed object: nothing is hole-punched,
	 * so only the reader can drop its pages. */
	return testd_start(&d, "256M", "--reserve", "200M", NULL);
}

static int teardown(void **state)
{
	char msg[256];

	(void)state;
	return testd_finish(&d, msg, sizeof(msg));
}

static void test_superseded_pages_leave_the_mapping(void **state)
{
	shoal_client *c;
	shoal_view a, b, x;
	const uint8_t *base;

	(void)state;
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	put_named("big", 1, 0x11);
	assert_int_equal(shoal_get_name(c, "big", 3, 0, &a, NULL), 0);
	assert_true(all_bytes(a.data, SIZE, 0x11));
	const uint8_t *a_data = a.data;
	assert_int_equal(shoal_release(c, &a), 0);

	put_named("big", 2, 0x22); /* written while A is named: elsewhere */
	assert_int_equal(shoal_get_name(c, "big", 3, 0, &b, NULL), 0);
	assert_true(b.data >= a_data + SIZE || b.data + SIZE <= a_data);
	assert_true(all_bytes(b.data, SIZE, 0x22));
	base = b.data;
	/* Only B is in the page tables: A's range was dropped. */
	assert_true(rss_of_mapping(base) < SIZE + 4 * MiB);

	/* A third object placed in A's old range reads correctly. */
	put_named("other", 3, 0x33);
	assert_int_equal(shoal_get_name(c, "other", 5, 0, &x, NULL), 0);
	assert_true(x.data < a_data + SIZE && x.data + SIZE > a_data);
	assert_true(all_bytes(x.data, SIZE, 0x33));
	assert_true(all_bytes(b.data, SIZE, 0x22));

	/* B is held while the name moves on to D: B's pages stay until its
	 * last view goes. */
	put_named("big", 4, 0x44);
	assert_int_equal(shoal_release(c, &x), 0);
	shoal_view dv;
	assert_int_equal(shoal_get_name(c, "big", 3, 0, &dv, NULL), 0);
	assert_true(all_bytes(dv.data, SIZE, 0x44));
	assert_true(all_bytes(b.data, SIZE, 0x22));
	uint64_t both = rss_of_mapping(base);
	assert_int_equal(shoal_release(c, &b), 0);
	assert_true(rss_of_mapping(base) + SIZE - 4 * MiB <= both);
	assert_true(all_bytes(dv.data, SIZE, 0x44));
	assert_int_equal(shoal_release(c, &dv), 0);
	shoal_disconnect(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(
	                test_superseded_pages_leave_the_mapping, setup,
	                teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
