/*
 * bench_cache.c - `make bench-cache`: what the cache semantics of names
 * cost, each figure next to its baseline from the same run.
 *
 *   set_ttl_vs_plain     a name set with a ttl (the expiry heap growing to
 *                        N names) against a plain set; target ~1
 *   expiry_late_ms       how late NAME_EXPIRED events arrive after the
 *                        expiry time, p50 / p99 / max, for names whose ttls
 *                        are spread over a second
 *   mass_expiry_rtt      the worst stats round trip of a second client
 *                        while 100,000 names expire at once, against the
 *                        median round trip of the idle daemon: the expiry
 *                        pass is bounded per loop turn
 *   delete_prefix_vs_one deleting N names with one DELETE_PREFIX against N
 *                        DELETE_NAME round trips
 *   list_prefix_vs_all   listing a 100-name namespace among N names against
 *                        listing all N
 *
 * The daemon is started on a temporary socket and stopped at the end.
 * Medians over --reps repetitions (default 5). The machine may be shared:
 * read ratios, not absolute times.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shoal.h"

#define NAMES 20000

static char dir[] = "/tmp/shoal-bench-cache.XXXXXX";
static char sock[256];
static pid_t daemon_pid;

static void fail(const char *what, int rc)
{
	fprintf(stderr, "bench-cache: %s: %s\n", what, shoal_strerror(rc));
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	exit(1);
}

static void check(int rc, const char *what)
{
	if (rc < 0)
		fail(what, rc);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double quantile(double *v, size_t n, double q)
{
	qsort(v, n, sizeof(*v), cmp_double);
	size_t i = (size_t)(q * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void start_daemon(const char *shoal)
{
	if (!mkdtemp(dir))
		fail("mkdtemp", -errno);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	daemon_pid = fork();
	if (daemon_pid == 0) {
		execl(shoal, shoal, "serve", "-s", sock, "-m", "512M",
		      (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 500; i++) {
		shoal_client *c;
		if (shoal_connect(sock, &c) == 0) {
			shoal_disconnect(c);
			return;
		}
		usleep(10000);
	}
	fail("the daemon did not start", SHOAL_EUNAVAILABLE);
}

static void stop_daemon(void)
{
	int status;

	kill(daemon_pid, SIGTERM);
	waitpid(daemon_pid, &status, 0);
	rmdir(dir);
}

/* A sealed 64-byte object, the creator's hold released. */
static void small_object(shoal_client *c, shoal_id *id)
{
	uint8_t *data;

	check(shoal_id_random(id), "id");
	check(shoal_create(c, id, 64, 0, 0, &data, NULL), "create");
	memset(data, 7, 64);
	check(shoal_seal(c, id), "seal");
	check(shoal_release_id(c, id), "release");
}

/* Seconds per set of NAMES distinct names (all on one object). */
static double sets(shoal_client *c, const shoal_id *id, const char *prefix,
                   uint64_t ttl_ms, unsigned flags)
{
	char name[64];
	uint64_t t0 = now_ns();

	for (int i = 0; i < NAMES; i++) {
		snprintf(name, sizeof(name), "%s%d", prefix, i);
		check(shoal_set_name_ttl(c, name, strlen(name), id, NULL,
		                         ttl_ms, flags, NULL),
		      "set_name");
	}
	return (double)(now_ns() - t0) / 1e9 / NAMES;
}

/* Deletes the names under prefix (the object keeps its anchor name). */
static void clear(shoal_client *c, const char *prefix)
{
	uint64_t n;

	check(shoal_delete_prefix(c, prefix, strlen(prefix), &n),
	      "delete_prefix");
}

static double median(double *v, int n)
{
	return quantile(v, (size_t)n, 0.5);
}

int main(int argc, char **argv)
{
	const char *shoal = argc > 1 ? argv[1] : "build/shoal";
	int reps = argc > 2 ? atoi(argv[2]) : 5;
	shoal_client *c, *c2;
	shoal_id id;

	if (reps < 1 || reps > 50)
		reps = 5;
	start_daemon(shoal);
	check(shoal_connect(sock, &c), "connect");
	check(shoal_connect(sock, &c2), "connect");
	small_object(c, &id);
	/* A plain name keeps the object whatever the figures delete. */
	check(shoal_set_name(c, "anchor", 6, &id, NULL, NULL), "set_name");

	/* 1. set with a ttl against a plain set. */
	double plain[50], ttl[50], ratio_set[50];
	for (int r = 0; r < reps; r++) {
		plain[r] = sets(c, &id, "p", 0, 0);
		clear(c, "p");
		ttl[r] = sets(c, &id, "t", 3600 * 1000, SHOAL_NAME_EVICTABLE);
		clear(c, "t");
		ratio_set[r] = ttl[r] / plain[r];
	}
	printf("%-28s %10.2f us\n", "set_plain_us", median(plain, reps) * 1e6);
	printf("%-28s %10.2f us\n", "set_ttl_evictable_us",
	       median(ttl, reps) * 1e6);
	printf("%-28s %10.3f   (target ~1)\n", "set_ttl_vs_plain",
	       median(ratio_set, reps));

	/* 2. expiry lateness, seen by a subscriber. */
	enum { LATE_N = 500 };
	shoal_subscription *sub;
	static double late[LATE_N];
	static uint64_t due[LATE_N];
	check(shoal_subscribe(sock, 0, &sub), "subscribe");
	for (int i = 0; i < LATE_N; i++) {
		char name[32];
		uint64_t ms = 100 + (uint64_t)i * 1000 / LATE_N;
		snprintf(name, sizeof(name), "late%d", i);
		uint64_t t0 = now_ns();
		check(shoal_set_name_ttl(c, name, strlen(name), &id, NULL, ms,
		                         0, NULL),
		      "set_name");
		due[i] = t0 + ms * 1000000ull; /* the earliest it may go */
	}
	int seen = 0;
	while (seen < LATE_N) {
		shoal_event ev;
		check(shoal_next_event(sub, 10000, &ev), "next_event");
		if (ev.kind != SHOAL_EVENT_NAME_EXPIRED)
			continue;
		int i = atoi(ev.name + 4);
		late[seen++] = (double)((int64_t)(now_ns() - due[i])) / 1e6;
	}
	shoal_unsubscribe(sub);
	printf("%-28s %10.2f / %.2f / %.2f ms (p50 / p99 / max)\n",
	       "expiry_late_ms", quantile(late, LATE_N, 0.5),
	       quantile(late, LATE_N, 0.99), quantile(late, LATE_N, 1.0));

	/* 3. the loop stays responsive while 100,000 names expire. */
	enum { MASS = 100000, PROBES = 200000 };
	static double idle[PROBES], during[PROBES];
	shoal_stats st;
	for (int i = 0; i < PROBES; i++) {
		uint64_t t0 = now_ns();
		check(shoal_get_stats(c2, &st), "stats");
		idle[i] = (double)(now_ns() - t0) / 1e3;
	}
	check(shoal_get_stats(c2, &st), "stats");
	uint64_t expired0 = st.expired;
	/* Every name is due at the same moment, target. */
	uint64_t target = now_ns() + 8000000000ull;
	for (int i = 0; i < MASS; i++) {
		char name[32];
		uint64_t now = now_ns();
		if (now + 1000000 >= target)
			fail("the sets took longer than 8 s", SHOAL_ETIMEDOUT);
		snprintf(name, sizeof(name), "mass%d", i);
		check(shoal_set_name_ttl(c, name, strlen(name), &id, NULL,
		                         (target - now) / 1000000, 0, NULL),
		      "set_name");
	}
	while (now_ns() + 20000000 < target)
		usleep(10000);
	int np = 0;
	uint64_t t_start = now_ns();
	do {
		uint64_t t0 = now_ns();
		check(shoal_get_stats(c2, &st), "stats");
		if (np < PROBES)
			during[np++] = (double)(now_ns() - t0) / 1e3;
	} while (st.expired < expired0 + MASS &&
	         now_ns() - t_start < 30000000000ull);
	uint64_t mass_ms = (now_ns() - t_start) / 1000000;
	double idle_med = quantile(idle, PROBES, 0.5);
	double idle_max = quantile(idle, PROBES, 1.0);
	double p50 = quantile(during, (size_t)np, 0.5);
	double p99 = quantile(during, (size_t)np, 0.99);
	double worst = quantile(during, (size_t)np, 1.0);
	printf("%-28s %10.1f us idle median (max %.1f); during expiry %.1f / "
	       "%.1f / %.1f us (p50 / p99 / max, %d probes, %llu ms, %llu "
	       "expired)\n",
	       "mass_expiry_rtt", idle_med, idle_max, p50, p99, worst, np,
	       (unsigned long long)mass_ms, (unsigned long long)st.expired);

	/* 4. delete by prefix against one delete per name. */
	double one[50], pre[50], ratio_del[50];
	for (int r = 0; r < reps; r++) {
		char name[64];
		sets(c, &id, "d:", 0, 0);
		uint64_t t0 = now_ns();
		for (int i = 0; i < NAMES; i++) {
			snprintf(name, sizeof(name), "d:%d", i);
			check(shoal_delete_name(c, name, strlen(name), NULL),
			      "delete_name");
		}
		one[r] = (double)(now_ns() - t0) / 1e9;
		sets(c, &id, "d:", 0, 0);
		uint64_t n;
		t0 = now_ns();
		check(shoal_delete_prefix(c, "d:", 2, &n), "delete_prefix");
		pre[r] = (double)(now_ns() - t0) / 1e9;
		if (n != NAMES)
			fail("delete_prefix count", SHOAL_EPROTO);
		ratio_del[r] = pre[r] / one[r];
	}
	printf("%-28s %10.2f ms for %d names (one by one: %.2f ms; ratio "
	       "%.4f)\n",
	       "delete_prefix_ms", median(pre, reps) * 1e3, NAMES,
	       median(one, reps) * 1e3, median(ratio_del, reps));

	/* 5. listing a small namespace among many names. */
	static shoal_name_info page[256];
	static char bytes[SHOAL_NAMES_SIZE(256)];
	double all[50], few[50], ratio_list[50];
	sets(c, &id, "big:", 0, 0);
	for (int i = 0; i < 100; i++) {
		char name[32];
		snprintf(name, sizeof(name), "small:%d", i);
		check(shoal_set_name(c, name, strlen(name), &id, NULL, NULL),
		      "set_name");
	}
	for (int r = 0; r < reps; r++) {
		uint64_t cursor = 0, t0 = now_ns();
		size_t n, total = 0;
		do {
			check(shoal_list_names(c, &cursor, page, 256, bytes,
			                       sizeof(bytes), &n),
			      "list_names");
			total += n;
		} while (cursor);
		all[r] = (double)(now_ns() - t0) / 1e9;
		t0 = now_ns();
		size_t found = 0;
		do {
			check(shoal_list_names_prefix(c, "small:", 6, &cursor,
			                              page, 256, bytes,
			                              sizeof(bytes), &n),
			      "list_names_prefix");
			found += n;
		} while (cursor);
		few[r] = (double)(now_ns() - t0) / 1e9;
		if (found != 100 || total != NAMES + 101)
			fail("list counts", SHOAL_EPROTO);
		ratio_list[r] = few[r] / all[r];
	}
	printf("%-28s %10.3f ms for 100 of %d names (all: %.3f ms; ratio "
	       "%.3f)\n",
	       "list_prefix_ms", median(few, reps) * 1e3, NAMES + 100,
	       median(all, reps) * 1e3, median(ratio_list, reps));

	shoal_disconnect(c2);
	shoal_disconnect(c);
	stop_daemon();
	return 0;
}
