/*
 * baseline.c - what this machine does without shoal, measured in the same
 * run as shoal's figures: the Unix-socket round trip and memcpy.
 *
 * Round trip: the bench and an echo child share a stream socketpair; the
 * bench writes 64 bytes and blocks until the child has read them and
 * written 64 back. The child runs where the daemon runs, so each
 * placement has its own baseline. This is the floor of any request that
 * waits for a reply; a shoal get or create adds the daemon's work and the
 * library's bookkeeping to it.
 *
 * memcpy: one thread copying between two buffers whose pages are already
 * faulted in, the ceiling of a put that copies into shared memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define MSG 64

struct bench_echo {
	int fd;
	int child_fd;
	pid_t pid;
};

/* Reads or writes exactly MSG bytes. Returns 0, or -1 on EOF or error. */
static int xfer(int fd, uint8_t *buf, bool out)
{
	size_t done = 0;

	while (done < MSG) {
		ssize_t n = out ? write(fd, buf + done, MSG - done)
		                : read(fd, buf + done, MSG - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

static int echo_main(void *arg)
{
	struct bench_echo *e = arg;
	uint8_t buf[MSG];

	close(e->fd);
	while (xfer(e->child_fd, buf, false) == 0)
		if (xfer(e->child_fd, buf, true) < 0)
			return 1;
	return 0; /* EOF: the bench is done */
}

struct bench_echo *bench_echo_start(int cpu)
{
	struct bench_echo *e = calloc(1, sizeof(*e));
	int sv[2];

	if (!e)
		bench_fail("out of memory");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		bench_fail("socketpair: %s", strerror(errno));
	e->fd = sv[0];
	e->child_fd = sv[1];
	e->pid = bench_spawn(cpu, echo_main, e);
	close(e->child_fd);
	return e;
}

double bench_echo_rtt_us(struct bench_echo *e, int ops)
{
	uint8_t buf[MSG];
	uint64_t t0;

	bench_fill(buf, sizeof(buf), 1);
	t0 = bench_now_ns();
	for (int i = 0; i < ops; i++)
		if (xfer(e->fd, buf, true) < 0 || xfer(e->fd, buf, false) < 0)
			bench_fail("echo round trip: %s", strerror(errno));
	return (double)(bench_now_ns() - t0) / 1e3 / ops;
}

void bench_echo_stop(struct bench_echo *e)
{
	close(e->fd);
	bench_reap(e->pid, "the echo process");
	free(e);
}

double bench_memcpy_gbps(void *dst, const void *src, size_t n)
{
	uint64_t t0 = bench_now_ns();
	uint64_t t1;

	memcpy(dst, src, n);
	/* The copy must happen even though nothing reads dst here. */
	__asm__ volatile("" : : "r"(dst) : "memory");
	t1 = bench_now_ns();
	return (double)n / (double)(t1 - t0);
}
