/*
 * interrupt.c - waits that another thread or a signal can end early.
 *
 * A call that may wait (a get or name get with a timeout, a create that
 * waits for space) is one request: the daemon parks it and answers at the
 * event or at the deadline, and the client sleeps in poll(2) on its socket
 * meanwhile, so a waiting client costs the daemon nothing. Each client also
 * owns an eventfd, the wake-up fd: shoal_interrupt() (async-signal-safe)
 * makes it readable. With shoal_set_interruptible(), an EINTR from poll
 * (a signal whose handler was installed without SA_RESTART, as CPython
 * installs its handlers) counts the same.
 *
 * Ending a wait early keeps the connection in step: the client sends
 * PROTO_CANCEL right behind the waiting request, the daemon answers that
 * request at once with what it has (as at its deadline), and the client
 * reads that answer as usual. The caller then sees SHOAL_EINTR unless the
 * answer was complete anyway (see client_internal.h: waiting, interrupted).
 *
 * An interrupt that arrives while nothing waits stays pending in the
 * eventfd and ends the next wait at once: no wake-up is lost to a race
 * with the start of a wait. A signal has the same race (its handler may run
 * after the caller's last check and before poll), closed by
 * shoal_set_interrupt_signals(): the caller blocks those signals before its
 * check, and the client sleeps in ppoll(2) with them unblocked, so one
 * that came in between is delivered inside the sleep and ends it.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "client_internal.h"

int client_wake_init(shoal_client *c)
{
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	return c->wake_fd < 0 ? -errno : 0;
}

/* Asks the daemon to answer the waiting request now. io_lock is held. */
static int cancel_wait(shoal_client *c)
{
	struct proto_header h;

	c->interrupted = true;
	proto_header_init(&h, PROTO_CANCEL, c->next_request++, 0);
	return client_send_raw(c, &h, sizeof(h));
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The calling thread's signal mask without c's interrupt signals: what the
 * thread sleeps with. Returns NULL when the mask is to stay as it is. */
static const sigset_t *sleep_mask(const shoal_client *c, sigset_t *mask)
{
	if (!c->has_intr_signals || !atomic_load(&c->interruptible))
		return NULL;
	pthread_sigmask(SIG_SETMASK, NULL, mask);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&c->intr_signals, sig) == 1)
			sigdelset(mask, sig);
	return mask;
}

int client_sleep(shoal_client *c, int64_t timeout_ms, bool wake)
{
	struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
	                      {.fd = c->wake_fd, .events = POLLIN}};
	int64_t deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	sigset_t buf;
	const sigset_t *mask = sleep_mask(c, &buf);

	for (;;) {
		struct timespec ts, *t = NULL;
		int n;

		if (timeout_ms >= 0) {
			int64_t left = deadline - now_ms();

			left = left < 0 ? 0 : left;
			ts.tv_sec = left / 1000;
			ts.tv_nsec = (left % 1000) * 1000000;
			t = &ts;
		}
		n = ppoll(p, wake && c->wake_fd >= 0 ? 2 : 1, t, mask);
		if (n < 0) {
			if (errno != EINTR)
				return -errno;
			if (atomic_load(&c->interruptible))
				return SHOAL_EINTR;
		} else if (n == 0) {
			return SHOAL_ETIMEDOUT;
		} else if (p[0].revents) {
			return 0; /* data, or a hang-up that read() reports */
		} else if (p[1].revents & POLLIN) {
			uint64_t v;

			while (read(c->wake_fd, &v, sizeof(v)) < 0 &&
			       errno == EINTR)
				;
			return SHOAL_EINTR;
		}
	}
}

int client_wait_readable(shoal_client *c)
{
	for (;;) {
		/* Once cancelled, the answer is on its way: only the socket. */
		int rc = client_sleep(c, -1, !c->interrupted);

		if (rc != SHOAL_EINTR)
			return rc;
		if (!c->interrupted) {
			rc = cancel_wait(c);
			if (rc < 0)
				return rc;
		}
	}
}

int client_call_wait(shoal_client *c, uint16_t type, const struct iovec *iov,
                     int iovcnt, size_t fixed_len, int64_t timeout_ms,
                     bool safe, const uint8_t **reply, size_t *len)
{
	int rc;

	c->waiting = timeout_ms != 0;
	c->interrupted = false;
	rc = safe ? client_call_safe(c, type, iov, iovcnt, fixed_len, reply,
	                             len)
	          : client_call(c, type, iov, iovcnt, fixed_len, reply, len);
	c->waiting = false;
	return rc;
}

/* Async-signal-safe: one write(2), and errno is left as it was. */
SHOAL_API int shoal_interrupt(shoal_client *c)
{
	uint64_t one = 1;
	int saved = errno, rc = 0;

	if (!c || c->wake_fd < 0)
		return SHOAL_EINVAL;
	while (write(c->wake_fd, &one, sizeof(one)) < 0) {
		if (errno == EAGAIN)
			break; /* the counter is full: pending already */
		if (errno != EINTR) {
			rc = -errno;
			break;
		}
	}
	errno = saved;
	return rc;
}

SHOAL_API void shoal_set_interruptible(shoal_client *c, int on)
{
	if (c)
		atomic_store(&c->interruptible, on != 0);
}

SHOAL_API int shoal_set_interrupt_signals(shoal_client *c, const int *signals,
                                          size_t count)
{
	sigset_t set;

	if (!c || (!signals && count))
		return SHOAL_EINVAL;
	sigemptyset(&set);
	for (size_t i = 0; i < count; i++)
		if (sigaddset(&set, signals[i]) < 0)
			return SHOAL_EINVAL;
	c->intr_signals = set;
	c->has_intr_signals = count > 0;
	return 0;
}
