/*
 * cmd_stop.c - `shoal stop [--timeout SECONDS]`: stops the daemon serving
 * the socket, e.g. the one connect() started in the background.
 *
 * The daemon's pid comes from the kernel through the connection
 * (SO_PEERCRED, shoal_daemon_pid), not from a pid file that may be stale.
 * The command sends SIGTERM (the daemon finishes its loop turn, closes its
 * clients and removes its socket) and waits for the process to end: with a
 * pidfd when the kernel has them (poll() wakes at the exit, also when the
 * daemon is not our child), else by probing kill(pid, 0) every 10 ms. Exit
 * status 1 when the daemon has not ended within the timeout.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define STOP_DEFAULT_MS 10000

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A pidfd of pid, or -1 (no pidfd_open on this kernel, or pid gone). */
static int pidfd_of(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

/*
 * Waits until pid has ended, at most timeout_ms. A zombie (ended, not yet
 * reaped by its parent) counts as ended. Returns 0 or -1 on timeout.
 */
static int wait_exit(pid_t pid, int pidfd, uint64_t timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;

	for (;;) {
		uint64_t now = now_ms();
		int slice =
		        now >= end ? 0 : (int)(end - now > 10 ? 10 : end - now);

		if (pidfd >= 0) {
			struct pollfd p = {.fd = pidfd, .events = POLLIN};
			int n = poll(&p, 1, (int)(end > now ? end - now : 0));
			if (n > 0)
				return 0;
			if (n == 0)
				return -1;
			if (errno != EINTR)
				pidfd = -1; /* fall back to probing */
			continue;
		}
		if (kill(pid, 0) < 0 && errno == ESRCH)
			return 0;
		if (now >= end)
			return -1;
		poll(NULL, 0, slice);
	}
}

int cmd_stop(struct cli_ctx *ctx, const struct cli_opts *o)
{
	uint64_t timeout = STOP_DEFAULT_MS;
	int64_t pid;
	int rc, pidfd;

	if (o->timeout)
		(void)cli_parse_seconds(o->timeout, UINT32_MAX, &timeout);
	rc = shoal_daemon_pid(ctx->client, &pid);
	if (rc < 0)
		return cli_fail(ctx, "stop", rc);
	/* Our own connection must not keep anything of the daemon's alive. */
	shoal_disconnect(ctx->client);
	ctx->client = NULL;
	pidfd = pidfd_of((pid_t)pid);
	if (kill((pid_t)pid, SIGTERM) < 0) {
		cli_error("cannot stop the daemon (pid %lld): %s",
		          (long long)pid, shoal_strerror(-errno));
		if (pidfd >= 0)
			close(pidfd);
		return CLI_ERROR;
	}
	rc = wait_exit((pid_t)pid, pidfd, timeout);
	if (pidfd >= 0)
		close(pidfd);
	if (rc < 0) {
		cli_error("the daemon (pid %lld) at %s did not exit within "
		          "%llu ms",
		          (long long)pid, ctx->socket,
		          (unsigned long long)timeout);
		return CLI_ERROR;
	}
	return CLI_OK;
}
