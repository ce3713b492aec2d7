/*
 * bench.h - the pieces of shoal-bench, the C benchmark suite, shared
 * between its files.
 *
 * shoal-bench starts its own daemon on a temporary socket, measures every
 * shoal figure next to the baseline it is judged against (a raw Unix-socket
 * round trip, a plain memcpy) in the same run, and reports medians over
 * repetitions as a table and as JSON. Files:
 *
 *   bench.c     options, the order of the runs, placement, main(), helpers
 *   proc.c      the daemon and helper processes: start, pin, stop
 *   baseline.c  what the machine does without shoal: socket RTT, memcpy
 *   small.c     small-object figures: get, put, batch get, 4 clients
 *   large.c     1 GiB figures: put into recycled and fresh memory, get
 *   report.c    samples and medians, the table, the JSON file
 *
 * Conventions: every figure is a struct bench_fig holding the samples of
 * its repetitions; the reported value is their median. A failure anywhere
 * is fatal: bench_fail() prints it and exits, and an exit handler stops the
 * daemon and removes the temporary directory.
 */
#ifndef SHOAL_BENCH_H
#define SHOAL_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shoal.h"

#define BENCH_MAX_REPS 64
#define BENCH_GIB      (1ull << 30)

/* The samples of one figure, one per repetition. */
struct bench_fig {
	double v[BENCH_MAX_REPS];
	int n;
};

void bench_fig_add(struct bench_fig *f, double v);
double bench_fig_median(const struct bench_fig *f);
double bench_fig_min(const struct bench_fig *f);
double bench_fig_max(const struct bench_fig *f);

/* Where client and daemon run. cpu -1 means "not pinned". */
struct bench_placement {
	const char *name; /* "one_cpu" or "split" */
	int index;        /* 0 or 1, in that order */
	int client_cpu;
	int daemon_cpu;
};

/* Run parameters, from the command line. */
struct bench_config {
	const char *shoal_path;
	const char *json_path;
	int reps;       /* repetitions of latency and throughput figures */
	int large_reps; /* repetitions of the 1 GiB figures */
	int ops;        /* operations per repetition of a latency figure */
	double clients_secs;
};

/* The figures measured in one placement. */
struct bench_small {
	struct bench_fig rtt_us, get_us, put_small_us, batch_get_objects_per_s,
	        clients4_ops_per_s, get_1g_us, get_64b_us;
	bool measured;
};

struct bench_large {
	struct bench_fig memcpy_gbps, put_1g_gbps, put_1g_fresh_gbps;
	int recycled_misses; /* recycled puts that landed in fresh memory */
	int fresh_misses;    /* fresh puts that landed in used memory */
};

struct bench_results {
	struct bench_placement place[2];
	struct bench_small small[2];
	struct bench_large large;
	const struct bench_config *cfg;
	pid_t daemon_pid;
	char kernel[128];
	char thp[128], shmem_thp[128];
	char loadavg[128]; /* /proc/loadavg at the start: others' load */
	double total_secs;
};

/* Prints "shoal-bench: <message>" and exits with status 1. */
__attribute__((noreturn, format(printf, 1, 2))) void bench_fail(const char *fmt,
                                                                ...);

/* Fails with the call's name and shoal_strerror(rc) when rc < 0. */
void bench_check(int rc, const char *what);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* Fills n bytes with a non-zero pattern that depends on seed. */
void bench_fill(void *p, size_t n, unsigned seed);

/* A deterministic, run-unique object ID for counter value k. */
void bench_make_id(shoal_id *id, uint64_t k);

/* Writes up to max CPUs the bench was started on to out; returns their
 * number. */
int bench_cpus(int *out, int max);

/* Pins the calling process (pid 0) or every thread of pid to cpu; cpu -1
 * allows every CPU the bench started with. */
void bench_pin(pid_t pid, int cpu);

/* Starts `shoal serve` on a socket in a new temporary directory and waits
 * for it to accept connections (with a deadline). */
pid_t bench_daemon_start(const char *shoal_path, const char *memory);
const char *bench_daemon_socket(void);
/* SIGTERM, wait (SIGKILL after a deadline), remove the directory. */
void bench_daemon_stop(void);

/* Forks a child that runs fn(arg) pinned to cpu and then _exits with its
 * return value. The child dies with the bench (PR_SET_PDEATHSIG). */
pid_t bench_spawn(int cpu, int (*fn)(void *), void *arg);
/* Waits for a child started by bench_spawn; fails unless it exited 0. */
void bench_reap(pid_t pid, const char *what);

/* Baselines (baseline.c). */
struct bench_echo;
struct bench_echo *bench_echo_start(int cpu);
double bench_echo_rtt_us(struct bench_echo *e, int ops);
void bench_echo_stop(struct bench_echo *e);
double bench_memcpy_gbps(void *dst, const void *src, size_t n);

/* Shoal figures (small.c, large.c). */
void bench_small_setup(shoal_client *c, const struct bench_config *cfg);
void bench_small_run(shoal_client *c, const struct bench_config *cfg,
                     const struct bench_placement *p, struct bench_small *s);
void bench_large_run(shoal_client *writer, shoal_client *reader,
                     struct bench_results *r);

/* Output (report.c). */
void bench_report_table(const struct bench_results *r);
void bench_report_json(const struct bench_results *r, const char *path);

#endif /* SHOAL_BENCH_H */
