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
 * with the start of a wait.
 */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
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

int client_wait_readable(shoal_client *c)
{
	struct pollfd p[2] = {{.fd = c->fd, .events = POLLIN},
	                      {.fd = c->wake_fd, .events = POLLIN}};

	for (;;) {
		/* Once cancelled, the answer is on its way: only the socket. */
		int n = poll(p, c->interrupted || c->wake_fd < 0 ? 1 : 2, -1);
		int rc = 0;

		if (n < 0) {
			if (errno != EINTR)
				return -errno;
			if (!c->interrupted && atomic_load(&c->interruptible))
				rc = cancel_wait(c);
		} else if (p[0].revents) {
			return 0; /* data, or a hang-up that read() reports */
		} else if (!c->interrupted && (p[1].revents & POLLIN)) {
			uint64_t v;

			while (read(c->wake_fd, &v, sizeof(v)) < 0 &&
			       errno == EINTR)
				;
			rc = cancel_wait(c);
		}
		if (rc < 0)
			return rc;
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
