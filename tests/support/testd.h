/*
 * testd.h - test support: start a real daemon on a temporary socket, stop
 * it, and wait for things with a deadline. Every wait here has one.
 */
#ifndef SHOAL_TESTD_H
#define SHOAL_TESTD_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "shoal.h"

struct testd {
	pid_t pid;
	char dir[256];
	char socket[300];
	char log[300];
};

/* Starts `shoal serve -s <tmp>/s.sock --debug-checks` plus the extra
 * arguments (NULL-terminated), and waits up to 30 s until it accepts.
 * The binary is $SHOAL_BIN, else build/shoal; $SHOAL_WRAP (e.g. "valgrind
 * -q") is put in front of it. Returns 0 or -1. */
int testd_start(struct testd *d, const char *memory, ...);

/* testd_start() with the extra arguments in ap. */
int testd_vstart(struct testd *d, const char *memory, va_list ap);

/* Starts a daemon again in the directory of d (same socket, same log,
 * appended), after testd_kill() or a daemon that exited. Returns 0 or -1. */
int testd_restart(struct testd *d, const char *memory, ...);

/* SIGKILLs the daemon and reaps it; its directory stays (for a restart,
 * and testd_stop() cleans it up). */
void testd_kill(struct testd *d);

/* Sends SIGTERM and waits up to 10 s. Returns the exit status (0 for a
 * clean exit), or -1 if it had to be killed or died of a signal. */
int testd_stop(struct testd *d);

/* Milliseconds on the monotonic clock. */
uint64_t testd_now_ms(void);

/* Waits up to timeout_ms for pid to exit; returns its wait status, or -1
 * on timeout (the process is then killed). */
int testd_wait_pid(pid_t pid, int timeout_ms);

/* Asks the daemon (started with --debug-checks) to check every invariant
 * of its store. Returns 0, or -1 with what is broken in msg. */
int testd_check(const char *socket_path, char *msg, size_t size);

/* Ends a test's daemon: checks every invariant of its store (testd_check),
 * then stops it (testd_stop). Returns 0, or -1 with what went wrong in
 * msg; the daemon is stopped either way. */
int testd_finish(struct testd *d, char *msg, size_t size);

/* A test object ID: every byte fill, then n in the first bytes, so tests
 * of one file (one fill) never collide with another file's IDs. */
void testd_id(shoal_id *id, uint8_t fill, unsigned n);

/* How much work a stress test does, as a factor: $SHOAL_STRESS_SCALE
 * (default 1; `make stress` sets 10), a fifth of it in sanitizer builds. */
double testd_stress_scale(void);

/* A stress test's random seed: $SHOAL_STRESS_SEED, else fallback. */
unsigned testd_stress_seed(unsigned fallback);

/* The path of the shoal binary. */
const char *testd_bin(void);

#endif /* SHOAL_TESTD_H */
