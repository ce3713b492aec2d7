/*
 * loop.c - the event loop's fd table and run loop (see loop.h).
 *
 * The fd table is indexed by fd and grows on demand. A handler may unwatch
 * any fd, including ones fired in the same turn: events for an fd are
 * dispatched only if it is still watched with the same handler context,
 * checked just before the call.
 */
#include "loop.h"

#include <stdlib.h>
#include <string.h>

#include "loop_backend.h"
#include "os.h"
#include "shoal.h"

#define LOOP_BATCH 256

struct loop_entry {
	unsigned mask;
	bool used;
	loop_fd_fn *fn;
	void *ctx;
};

struct loop {
	struct loop_backend *backend;
	struct loop_entry *fds;
	int nfds;
	bool stop;
	loop_sleep_fn *before_sleep;
	void *sleep_ctx;
	struct loop_fired fired[LOOP_BATCH];
};

int loop_create(struct loop **out)
{
	struct loop *l = os_calloc(1, sizeof(*l));
	int rc;

	if (!l)
		return SHOAL_ENOMEM;
	rc = loop_backend_create(&l->backend, LOOP_BATCH);
	if (rc) {
		free(l);
		return rc;
	}
	*out = l;
	return 0;
}

void loop_destroy(struct loop *l)
{
	if (!l)
		return;
	loop_backend_destroy(l->backend);
	free(l->fds);
	free(l);
}

int loop_watch(struct loop *l, int fd, unsigned mask, loop_fd_fn *fn, void *ctx)
{
	int rc;

	if (fd < 0)
		return SHOAL_EINVAL;
	if (fd >= l->nfds) {
		int n = l->nfds ? l->nfds : 64;
		while (n <= fd)
			n *= 2;
		struct loop_entry *t =
		        os_realloc(l->fds, (size_t)n * sizeof(*t));
		if (!t)
			return SHOAL_ENOMEM;
		memset(t + l->nfds, 0, (size_t)(n - l->nfds) * sizeof(*t));
		l->fds = t;
		l->nfds = n;
	}
	rc = loop_backend_set(l->backend, fd, mask, !l->fds[fd].used);
	if (rc)
		return rc;
	l->fds[fd] = (struct loop_entry){mask, true, fn, ctx};
	return 0;
}

int loop_mask(struct loop *l, int fd, unsigned mask)
{
	int rc;

	if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
		return SHOAL_EINVAL;
	if (l->fds[fd].mask == mask)
		return 0;
	rc = loop_backend_set(l->backend, fd, mask, 0);
	if (rc == 0)
		l->fds[fd].mask = mask;
	return rc;
}

void loop_unwatch(struct loop *l, int fd)
{
	if (fd < 0 || fd >= l->nfds || !l->fds[fd].used)
		return;
	loop_backend_del(l->backend, fd);
	memset(&l->fds[fd], 0, sizeof(l->fds[fd]));
}

void loop_before_sleep(struct loop *l, loop_sleep_fn *fn, void *ctx)
{
	l->before_sleep = fn;
	l->sleep_ctx = ctx;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

int loop_run_once(struct loop *l, int max_wait_ms)
{
	int timeout = l->before_sleep ? l->before_sleep(l, l->sleep_ctx) : -1;

	if (l->stop)
		return 0;
	if (max_wait_ms >= 0 && (timeout < 0 || timeout > max_wait_ms))
		timeout = max_wait_ms;
	int n = loop_backend_wait(l->backend, l->fired, LOOP_BATCH, timeout);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		int fd = l->fired[i].fd;
		/* Captured before the call: a handler may unwatch. */
		if (fd >= l->nfds || !l->fds[fd].used)
			continue;
		struct loop_entry e = l->fds[fd];
		e.fn(l, fd, e.ctx, l->fired[i].events);
	}
	return n;
}

int loop_run(struct loop *l)
{
	l->stop = false;
	while (!l->stop) {
		int n = loop_run_once(l, -1);
		if (n < 0)
			return n;
	}
	return 0;
}
