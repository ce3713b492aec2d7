/*
 * bench.c - shoal-bench's entry point: options, the order of the runs and
 * the small helpers every file uses.
 *
 * Usage: shoal-bench --shoal PATH [--json PATH] [--reps N] [--quick]
 *
 * Order of a run. One daemon (4 GiB, so three 1 GiB objects fit side by
 * side in never-touched memory) serves the whole run. Two clients of the
 * bench process talk to it: a writer that creates the object pools and the
 * 1 GiB objects, and a reader that takes the small-object and get
 * measurements, so a measured get is always of an object the reader does
 * not hold. The small-object figures are measured twice, in each placement:
 * "one_cpu" pins the client, the daemon and the baseline's echo process to
 * the first CPU; "split" puts the client on the first CPU and the daemon
 * and echo process on the second. Then come the 1 GiB figures, with
 * everything on the first CPU (the daemon does nothing during a copy).
 *
 * Fairness rules the measuring code keeps: a warm-up pass before the
 * timed ones; non-zero data everywhere (zeros are written twice as fast on
 * this CPU); each latency repetition of a shoal figure is interleaved with
 * one of its baseline, so both see the same machine; the value reported is
 * the median of the repetitions, and a ratio is the median of the
 * per-repetition ratios.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

void bench_fail(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "shoal-bench: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

void bench_check(int rc, const char *what)
{
	if (rc < 0)
		bench_fail("%s: %s", what, shoal_strerror(rc));
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_fill(void *p, size_t n, unsigned seed)
{
	uint64_t *w = p;
	uint64_t x = 0x9e3779b97f4a7c15ull * (seed + 1);
	size_t i;

	/* Word-wise, with the top bit of every byte set: never zero. */
	for (i = 0; i < n / 8; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		w[i] = x | 0x8080808080808080ull;
	}
	for (i = i * 8; i < n; i++)
		((uint8_t *)p)[i] = 0xa5;
}

void bench_make_id(shoal_id *id, uint64_t k)
{
	static uint8_t nonce[12];
	static bool have_nonce;

	/* A random prefix keeps IDs unique across runs sharing a daemon. */
	if (!have_nonce) {
		shoal_id r;

		bench_check(shoal_id_random(&r), "shoal_id_random");
		memcpy(nonce, r.bytes, sizeof(nonce));
		have_nonce = true;
	}
	memcpy(id->bytes, nonce, sizeof(nonce));
	memcpy(id->bytes + sizeof(nonce), &k, sizeof(k));
}

static void usage(FILE *f)
{
	fprintf(f, "usage: shoal-bench --shoal PATH [--json PATH] [--reps N] "
	           "[--quick]\n"
	           "\n"
	           "Starts `PATH serve` on a temporary socket and measures "
	           "shoal against\n"
	           "this machine's baselines; prints a table and writes JSON.\n"
	           "\n"
	           "  --shoal PATH  the shoal binary (required)\n"
	           "  --json PATH   where to write the results\n"
	           "  --reps N      repetitions of each small-object figure "
	           "(default 11)\n"
	           "  --quick       fewer and shorter repetitions (a smoke "
	           "test)\n");
}

static void parse_args(int argc, char **argv, struct bench_config *cfg)
{
	static const struct option opts[] = {
	        {"shoal", required_argument, NULL, 's'},
	        {"json", required_argument, NULL, 'j'},
	        {"reps", required_argument, NULL, 'r'},
	        {"quick", no_argument, NULL, 'q'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			cfg->shoal_path = optarg;
			break;
		case 'j':
			cfg->json_path = optarg;
			break;
		case 'r':
			cfg->reps = atoi(optarg);
			if (cfg->reps < 1 || cfg->reps > BENCH_MAX_REPS - 1)
				bench_fail("--reps must be 1..%d",
				           BENCH_MAX_REPS - 1);
			break;
		case 'q':
			cfg->reps = 3;
			cfg->large_reps = 1;
			cfg->ops = 300;
			cfg->clients_secs = 0.1;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(2);
		}
	}
	if (!cfg->shoal_path || optind < argc) {
		usage(stderr);
		exit(2);
	}
}

static void read_line(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");

	snprintf(buf, size, "unknown");
	if (!f)
		return;
	if (fgets(buf, (int)size, f))
		buf[strcspn(buf, "\n")] = '\0';
	fclose(f);
}

static void describe_machine(struct bench_results *r)
{
	struct utsname u;

	if (uname(&u) == 0)
		snprintf(r->kernel, sizeof(r->kernel), "%s", u.release);
	read_line("/sys/kernel/mm/transparent_hugepage/enabled", r->thp,
	          sizeof(r->thp));
	read_line("/sys/kernel/mm/transparent_hugepage/shmem_enabled",
	          r->shmem_thp, sizeof(r->shmem_thp));
	read_line("/proc/loadavg", r->loadavg, sizeof(r->loadavg));
}

/* Pins the bench process and the daemon as placement p says. */
static void place(const struct bench_results *r,
                  const struct bench_placement *p)
{
	bench_pin(0, p->client_cpu);
	bench_pin(r->daemon_pid, p->daemon_cpu);
}

/* Chooses the placements from the CPUs the bench may use. */
static void choose_placements(struct bench_results *r)
{
	int cpus[2];
	int n = bench_cpus(cpus, 2);

	if (n < 1)
		bench_fail("no CPU to run on");
	r->place[0] = (struct bench_placement){"one_cpu", 0, cpus[0], cpus[0]};
	/* With a single CPU there is no split placement to measure. */
	r->place[1] = (struct bench_placement){"split", 1, cpus[0],
	                                       n > 1 ? cpus[1] : -1};
}

int main(int argc, char **argv)
{
	struct bench_config cfg = {
	        .reps = 11, .large_reps = 3, .ops = 2000, .clients_secs = 0.4};
	struct bench_results r = {.cfg = &cfg};
	shoal_client *writer, *reader;
	uint64_t t0 = bench_now_ns();

	setvbuf(stdout, NULL, _IOLBF, 0);
	parse_args(argc, argv, &cfg);
	describe_machine(&r);
	choose_placements(&r);
	r.daemon_pid = bench_daemon_start(cfg.shoal_path, "4G");
	bench_check(shoal_connect(bench_daemon_socket(), &writer),
	            "shoal_connect");
	bench_check(shoal_connect(bench_daemon_socket(), &reader),
	            "shoal_connect");
	printf("shoal-bench: daemon pid %d on %s; %d repetitions, medians\n",
	       (int)r.daemon_pid, bench_daemon_socket(), cfg.reps);

	place(&r, &r.place[0]);
	bench_small_setup(writer, &cfg);
	for (int i = 0; i < 2; i++) {
		if (r.place[i].daemon_cpu < 0)
			continue;
		printf("shoal-bench: small objects, %s placement\n",
		       r.place[i].name);
		place(&r, &r.place[i]);
		bench_small_run(reader, &cfg, &r.place[i], &r.small[i]);
	}
	printf("shoal-bench: 1 GiB objects\n");
	place(&r, &r.place[0]);
	bench_large_run(writer, reader, &r);

	shoal_disconnect(reader);
	shoal_disconnect(writer);
	bench_daemon_stop();
	bench_pin(0, -1);
	r.total_secs = (double)(bench_now_ns() - t0) / 1e9;
	bench_report_table(&r);
	if (cfg.json_path)
		bench_report_json(&r, cfg.json_path);
	return 0;
}
