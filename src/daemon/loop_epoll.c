/*
 * loop_epoll.c - the epoll backend of the event loop. Level-triggered, so a
 * handler that stops reading early (to be fair to other clients) is called
 * again on the next turn.
 *
 * Deadlines. epoll_wait() with a timeout arms a kernel timer for that one
 * wait and cancels it when an fd fires first: on a busy daemon, that is
 * every wait, and it made a one-ID get cost 0.07 round trips more than
 * with no timeout (make bench, one CPU, where the round trip is ~3.5 us).
 * The daemon's deadlines rarely change between waits (the stall check
 * every 200 ms, a name's expiry), so a wait with a timeout arms a timerfd
 * in the epoll set for the absolute deadline instead, and only when the
 * one it holds would not do: it is kept if it expires no later than
 * LOOP_TIMER_SLACK_NS after the new deadline (the hook's deadlines are
 * whole milliseconds anyway) and not before now. One that expires early
 * ends that wait with no event, which the loop takes as a turn with
 * nothing to do; its expiry is read here and never reported. Without a
 * timerfd (or when arming it fails) the timeout goes to epoll_wait().
 */
#include <errno.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"
#include "loop_backend.h"
#include "os.h"
#include "shoal.h"

/* How much later than asked a kept timer may end a wait. */
#define LOOP_TIMER_SLACK_NS 1000000ull

struct loop_backend {
	int epfd;
	int max;
	struct epoll_event *events;
	int timer_fd;      /* in the epoll set; -1: none */
	uint64_t armed_ns; /* CLOCK_MONOTONIC expiry of timer_fd; 0: none */
};

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The timerfd, in the epoll set; -1 if either step fails (deadlines then
 * go to epoll_wait). */
static int timer_create_in(int epfd)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

	if (fd >= 0 && epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Makes the timerfd end a wait of timeout_ms from now (see the top).
 * Returns 0, or -1 if the caller must pass the timeout to epoll_wait. */
static int arm(struct loop_backend *b, int timeout_ms)
{
	uint64_t now = monotonic_ns();
	uint64_t want = now + (uint64_t)timeout_ms * 1000000ull;
	struct itimerspec its = {0};

	if (b->timer_fd < 0)
		return -1;
	if (b->armed_ns > now && b->armed_ns <= want + LOOP_TIMER_SLACK_NS)
		return 0;
	its.it_value.tv_sec = (time_t)(want / 1000000000ull);
	its.it_value.tv_nsec = (long)(want % 1000000000ull);
	if (os_timerfd_settime(b->timer_fd, TFD_TIMER_ABSTIME, &its) < 0) {
		b->armed_ns = 0;
		return -1;
	}
	b->armed_ns = want;
	return 0;
}

int loop_backend_create(struct loop_backend **out, int max_events)
{
	struct loop_backend *b = os_calloc(1, sizeof(*b));

	if (!b)
		return SHOAL_ENOMEM;
	b->events = os_calloc((size_t)max_events, sizeof(*b->events));
	b->max = max_events;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	b->timer_fd = b->epfd >= 0 ? timer_create_in(b->epfd) : -1;
	if (!b->events || b->epfd < 0) {
		int rc = b->events ? -errno : SHOAL_ENOMEM;
		if (b->epfd >= 0)
			close(b->epfd);
		if (b->timer_fd >= 0)
			close(b->timer_fd);
		free(b->events);
		free(b);
		return rc;
	}
	*out = b;
	return 0;
}

void loop_backend_destroy(struct loop_backend *b)
{
	if (!b)
		return;
	close(b->epfd);
	if (b->timer_fd >= 0)
		close(b->timer_fd);
	free(b->events);
	free(b);
}

int loop_backend_set(struct loop_backend *b, int fd, unsigned mask, int add)
{
	struct epoll_event ev = {0};

	ev.data.fd = fd;
	if (mask & LOOP_READ)
		ev.events |= EPOLLIN;
	if (mask & LOOP_WRITE)
		ev.events |= EPOLLOUT;
	if (epoll_ctl(b->epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, fd, &ev))
		return -errno;
	return 0;
}

void loop_backend_del(struct loop_backend *b, int fd)
{
	struct epoll_event ev = {0};

	(void)epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev);
}

int loop_backend_wait(struct loop_backend *b, struct loop_fired *fired, int max,
                      int timeout_ms)
{
	int k = 0;

	if (max > b->max)
		max = b->max;
	if (timeout_ms > 0 && arm(b, timeout_ms) == 0)
		timeout_ms = -1; /* the timerfd ends the wait */
	int n = epoll_wait(b->epfd, b->events, max, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		unsigned e = 0;
		if (b->events[i].data.fd == b->timer_fd) {
			uint64_t expirations;
			(void)!read(b->timer_fd, &expirations,
			            sizeof(expirations));
			b->armed_ns = 0;
			continue;
		}
		if (b->events[i].events & EPOLLIN)
			e |= LOOP_READ;
		if (b->events[i].events & EPOLLOUT)
			e |= LOOP_WRITE;
		if (b->events[i].events & (EPOLLERR | EPOLLHUP))
			e |= LOOP_ERROR;
		fired[k].fd = b->events[i].data.fd;
		fired[k].events = e;
		k++;
	}
	return k;
}
