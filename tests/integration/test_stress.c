/*
 * test_stress.c - the store under load and under crashes, against a real
 * daemon.
 *
 * Crash storm: P client processes do random creates, seals, gets, releases,
 * deletes, name sets and waits while the test SIGKILLs random clients at
 * random moments and starts new ones. With every client gone, the daemon's
 * invariants hold (its debug check), used memory is exactly what the
 * remaining sealed, unheld objects occupy, nothing is pending deletion, and
 * the daemon's open fds and memory are back where they started.
 *
 * Load: 64 clients x 10,000 mixed operations all succeed, and a client that
 * sends requests without reading replies is capped and then dropped.
 *
 * Scale: SHOAL_STRESS_SCALE (default 1; `make stress` runs 10); sanitizer
 * builds run a fifth of the work. Seed: SHOAL_STRESS_SEED.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "protocol.h"
#include "shoal.h"
#include "testd.h"

/* Open fds of a process. */
static int count_fds(pid_t pid)
{
	char path[64];
	struct dirent *e;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Resident private (anonymous) memory of a process, in KiB. */
static long rss_anon_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Fails the test unless the daemon's invariants hold. */
static void debug_check(const char *path)
{
	char msg[256];

	if (testd_check(path, msg, sizeof(msg)) != 0)
		fail_msg("daemon invariant broken: %s", msg);
}

/* One storm client: random operations until killed or done. */
static void storm_client(const char *path, unsigned s, int ops)
{
	shoal_client *c;
	shoal_view held[16];
	int nheld = 0;

	if (shoal_connect(path, &c))
		_exit(100);
	for (int i = 0; i < ops; i++) {
		shoal_id id;
		unsigned k = (unsigned)rand_r(&s) % 256;
		uint8_t *data;
		char name[16];
		memset(&id, 0x77, sizeof(id));
		memcpy(id.bytes, &k, sizeof(k));
		snprintf(name, sizeof(name), "n%u", k % 16);
		switch (rand_r(&s) % 9) {
		case 0:
		case 1: {
			uint64_t size = (uint64_t)(rand_r(&s) % 65536);
			int rc = shoal_create(c, &id, size, 0,
			                      rand_r(&s) % 16 ? 0 : 5, &data,
			                      NULL);
			if (rc == 0) {
				if (size)
					memset(data, (int)k, size);
				if (rand_r(&s) % 5 == 0)
					shoal_abort(c, &id);
				else {
					shoal_seal(c, &id);
					shoal_release_id(c, &id);
				}
			}
			break;
		}
		case 2:
		case 3:
			if (nheld < 16 &&
			    shoal_get(c, &id, 1, rand_r(&s) % 20 ? 0 : 2,
			              &held[nheld]) == 0 &&
			    held[nheld].status == 0)
				nheld++;
			break;
		case 4:
			if (nheld)
				shoal_release(c, &held[--nheld]);
			break;
		case 5:
			shoal_delete(c, &id, 1, NULL);
			break;
		case 6:
			shoal_set_name(c, name, strlen(name), &id, NULL, NULL);
			break;
		case 7:
			if (rand_r(&s) % 4 == 0)
				shoal_delete_name(c, name, strlen(name), NULL);
			else if (nheld < 16 &&
			         shoal_get_name(c, name, strlen(name),
			                        rand_r(&s) % 20 ? 0 : 2,
			                        &held[nheld], NULL) == 0)
				nheld++;
			break;
		case 8: {
			/* Create and leave unsealed: dropped if killed. */
			if (shoal_create(c, &id, 4096, 0, 0, &data, NULL) == 0)
				shoal_abort(c, &id);
			break;
		}
		}
	}
	while (nheld)
		shoal_release(c, &held[--nheld]);
	shoal_disconnect(c);
	_exit(0);
}

static void test_crash_storm(void **state)
{
	struct testd d;
	shoal_client *c;
	unsigned s = testd_stress_seed(20261125u);
	int procs = 6;
	int rounds = (int)(150 * testd_stress_scale()) + 4;
	pid_t pids[6];

	(void)state;
	assert_int_equal(testd_start(&d, "2M", NULL), 0);
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	/* Warm the daemon's tables so that what they keep is not counted. */
	int fds0 = count_fds(d.pid);
	long rss0 = rss_anon_kb(d.pid);
	shoal_disconnect(c);
	fds0--; /* c's connection */
	for (int i = 0; i < procs; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			storm_client(d.socket, s + (unsigned)i, 1 << 30);
	}
	for (int r = 0; r < rounds; r++) {
		usleep((useconds_t)(rand_r(&s) % 30000));
		int victim = rand_r(&s) % procs;
		kill(pids[victim], SIGKILL);
		assert_true(testd_wait_pid(pids[victim], 10000) != -1);
		pids[victim] = fork();
		if (pids[victim] == 0)
			storm_client(d.socket, s + 1000u + (unsigned)r,
			             1 << 30);
	}
	for (int i = 0; i < procs; i++) {
		kill(pids[i], SIGKILL);
		assert_true(testd_wait_pid(pids[i], 10000) != -1);
	}
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	shoal_stats st;
	uint64_t end = testd_now_ms() + 10000;
	do {
		assert_int_equal(shoal_get_stats(c, &st), 0);
		assert_true(testd_now_ms() < end);
	} while (st.clients != 1);
	debug_check(d.socket);
	print_message("storm: %d kills, %llu creates, %llu gets, %llu objects "
	              "left, %llu evictions\n",
	              rounds, (unsigned long long)st.creates,
	              (unsigned long long)st.gets,
	              (unsigned long long)st.objects,
	              (unsigned long long)st.evictions);
	/* The storm must have done real work for the checks to mean much. */
	assert_true(st.creates > (uint64_t)(rounds * 20));
	assert_true(st.evictions > 0);
	assert_int_equal(st.pending_deletes, 0);
	/* Used memory is exactly what the remaining objects occupy: every
	 * one is sealed and unheld, and listing them adds up. */
	uint64_t cursor = 0, used = 0, count = 0;
	shoal_object_info info[64];
	size_t n;
	do {
		assert_int_equal(shoal_list(c, &cursor, info, 64, &n), 0);
		for (size_t i = 0; i < n; i++) {
			assert_int_equal(info[i].state, SHOAL_STATE_SEALED);
			assert_int_equal(info[i].holders, 0);
			uint64_t sz = info[i].data_size + info[i].metadata_size;
			used += sz ? (sz + 63) / 64 * 64 : 64;
			count++;
		}
	} while (cursor);
	assert_int_equal(count, st.objects);
	assert_int_equal(used, st.used_bytes);
	/* Evicting the unnamed ones and dropping the names empties it. */
	uint64_t freed;
	assert_int_equal(shoal_evict(c, UINT64_MAX, &freed), 0);
	shoal_name_info *names = calloc(64, sizeof(*names));
	char *bytes = malloc(SHOAL_NAMES_SIZE(64));
	cursor = 0;
	do {
		assert_int_equal(shoal_list_names(c, &cursor, names, 64, bytes,
		                                  SHOAL_NAMES_SIZE(64), &n),
		                 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(shoal_delete_name(c, names[i].name,
			                                   names[i].name_len,
			                                   NULL),
			                 0);
	} while (cursor);
	free(bytes);
	free(names);
	assert_int_equal(shoal_get_stats(c, &st), 0);
	assert_int_equal(st.used_bytes, 0);
	assert_int_equal(st.objects, 0);
	shoal_disconnect(c);
	end = testd_now_ms() + 5000;
	while (count_fds(d.pid) != fds0 && testd_now_ms() < end)
		usleep(10000);
	assert_int_equal(count_fds(d.pid), fds0);
	long rss1 = rss_anon_kb(d.pid);
	/* Tables may keep their peak size; nothing grows without bound. */
	if (rss1 - rss0 > 32 * 1024)
		fail_msg("daemon private memory grew from %ld to %ld KiB", rss0,
		         rss1);
	assert_int_equal(testd_stop(&d), 0);
}

static void load_client(const char *path, int id, int ops)
{
	shoal_client *c;
	unsigned s = (unsigned)id * 7919u;

	if (shoal_connect(path, &c))
		_exit(100);
	for (int i = 0; i < ops; i++) {
		shoal_id oid;
		shoal_view v;
		uint8_t *data;
		int k = i % 50;
		memset(&oid, 0, sizeof(oid));
		memcpy(oid.bytes, &id, sizeof(id));
		memcpy(oid.bytes + 4, &k, sizeof(k));
		switch (rand_r(&s) % 4) {
		case 0:
			if (shoal_create(c, &oid, 1024, 0, 0, &data, NULL) ==
			    0) {
				memset(data, 1, 1024);
				if (shoal_seal(c, &oid) ||
				    shoal_release_id(c, &oid))
					_exit(1);
			}
			break;
		case 1:
			if (shoal_get(c, &oid, 1, 0, &v))
				_exit(2);
			if (v.status == 0 && shoal_release(c, &v))
				_exit(3);
			break;
		case 2: {
			int r;
			if (shoal_delete(c, &oid, 1, &r))
				_exit(4);
			break;
		}
		case 3: {
			shoal_stats st;
			if (shoal_get_stats(c, &st))
				_exit(5);
			break;
		}
		}
	}
	shoal_disconnect(c);
	_exit(0);
}

static void test_load_64_clients(void **state)
{
	struct testd d;
	enum { CLIENTS = 64 };
	pid_t pids[CLIENTS];
	int ops = (int)(10000 * testd_stress_scale());

	(void)state;
	assert_int_equal(testd_start(&d, "64M", NULL), 0);
	long rss0 = rss_anon_kb(d.pid);
	for (int i = 0; i < CLIENTS; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			load_client(d.socket, i + 1, ops);
	}
	for (int i = 0; i < CLIENTS; i++) {
		int st = testd_wait_pid(pids[i], 300000);
		assert_true(st != -1 && WIFEXITED(st));
		if (WEXITSTATUS(st) != 0)
			fail_msg("client %d failed with %d", i,
			         WEXITSTATUS(st));
	}
	long rss1 = rss_anon_kb(d.pid);
	if (rss1 - rss0 > 32 * 1024)
		fail_msg("daemon private memory grew from %ld to %ld KiB", rss0,
		         rss1);
	shoal_client *c;
	assert_int_equal(shoal_connect(d.socket, &c), 0);
	debug_check(d.socket);
	shoal_disconnect(c);
	assert_int_equal(testd_stop(&d), 0);
}

static void test_client_that_never_reads(void **state)
{
	struct testd d;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct proto_header h;
	struct proto_hello hello = {PROTO_VERSION, 0, 0};
	uint8_t buf[64];

	(void)state;
	assert_int_equal(testd_start(&d, "4M", "--stall-timeout", "500", NULL),
	                 0);
	long rss0 = rss_anon_kb(d.pid);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memcpy(sa.sun_path, d.socket, strlen(d.socket) + 1);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	proto_header_init(&h, PROTO_HELLO, 1, sizeof(hello));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &hello, sizeof(hello));
	assert_int_equal(write(fd, buf, 32), 32);
	/* Stats requests, whose replies are never read: 200k of them would
	 * be 25 MB of replies. */
	int flags = MSG_DONTWAIT | MSG_NOSIGNAL;
	long sent = 0;
	uint64_t end = testd_now_ms() + 20000;
	bool dropped = false;
	while (testd_now_ms() < end && sent < 200000) {
		proto_header_init(&h, PROTO_STATS, (uint32_t)sent + 2, 0);
		ssize_t n = send(fd, &h, sizeof(h), flags);
		if (n == (ssize_t)sizeof(h)) {
			sent++;
			continue;
		}
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			dropped = true;
			break;
		}
		usleep(1000); /* the daemon stopped reading: wait */
	}
	/* The daemon stopped reading us and, after the stall timeout,
	 * dropped the connection. */
	if (!dropped) {
		uint64_t e2 = testd_now_ms() + 10000;
		shoal_client *c;
		shoal_stats st;
		assert_int_equal(shoal_connect(d.socket, &c), 0);
		do {
			assert_int_equal(shoal_get_stats(c, &st), 0);
			assert_true(testd_now_ms() < e2);
			usleep(20000);
		} while (st.clients != 1);
		shoal_disconnect(c);
	}
	assert_true(sent < 200000);
	long rss1 = rss_anon_kb(d.pid);
	if (rss1 - rss0 > 8 * 1024)
		fail_msg("daemon memory grew from %ld to %ld KiB", rss0, rss1);
	close(fd);
	assert_int_equal(testd_stop(&d), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_crash_storm),
	        cmocka_unit_test(test_load_64_clients),
	        cmocka_unit_test(test_client_that_never_reads),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("stress", tests, NULL, NULL);
}
