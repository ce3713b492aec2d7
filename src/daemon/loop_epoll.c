/*
 * loop_epoll.c - the epoll backend of the event loop. Level-triggered, so a
 * handler that stops reading early (to be fair to other clients) is called
 * again on the next turn.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "loop.h"
#include "loop_backend.h"
#include "os.h"
#include "shoal.h"

struct loop_backend {
	int epfd;
	int max;
	struct epoll_event *events;
};

int loop_backend_create(struct loop_backend **out, int max_events)
{
	struct loop_backend *b = os_calloc(1, sizeof(*b));

	if (!b)
		return SHOAL_ENOMEM;
	b->events = os_calloc((size_t)max_events, sizeof(*b->events));
	b->max = max_events;
	b->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!b->events || b->epfd < 0) {
		int rc = b->events ? -errno : SHOAL_ENOMEM;
		if (b->epfd >= 0)
			close(b->epfd);
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
	if (max > b->max)
		max = b->max;
	int n = epoll_wait(b->epfd, b->events, max, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		unsigned e = 0;
		if (b->events[i].events & EPOLLIN)
			e |= LOOP_READ;
		if (b->events[i].events & EPOLLOUT)
			e |= LOOP_WRITE;
		if (b->events[i].events & (EPOLLERR | EPOLLHUP))
			e |= LOOP_ERROR;
		fired[i].fd = b->events[i].data.fd;
		fired[i].events = e;
	}
	return n;
}
