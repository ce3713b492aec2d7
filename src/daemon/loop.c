/*
 * loop.c - the event loop's fd table and run loop (see loop.h).
 *
 * The fd table is indexed by fd and grows on demand. A handler may unwatch
 * any fd, including ones fired in the same turn, and the fd number may be
 * reused at once (a connection closed, another accepted): events for an fd
 * are dispatched only if it is still the registration that was watched
 * when the wait returned. Each registration gets a serial number, taken
 * for every fired fd before any handler runs and compared just before the
 * call.
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
	uint64_t serial; /* of this registration */
};

struct loop {
	struct loop_backend *backend;
	struct loop_entry *fds;
	int nfds;
	bool stop;
	loop_sleep_fn *before_sleep;
	void *sleep_ctx;
	uint64_t next_serial;
	struct loop_fired fired[LOOP_BATCH];
	uint64_t fired_serial[LOOP_BATCH];
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
	bool fresh = !l->fds[fd].used;
	rc = loop_backend_set(l->backend, fd, mask, fresh);
	if (rc)
		return rc;
	uint64_t serial = fresh ? ++l->next_serial : l->fds[fd].serial;
	l->fds[fd] = (struct loop_entry){mask, true, fn, ctx, serial};
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
		l->fired_serial[i] =
		        fd < l->nfds && l->fds[fd].used ? l->fds[fd].serial : 0;
	}
	for (int i = 0; i < n; i++) {
		int fd = l->fired[i].fd;
		/* Unwatched, or watched again for someone else, by an
		 * earlier handler of this turn: these events are stale. */
		if (fd >= l->nfds || !l->fds[fd].used ||
		    l->fds[fd].serial != l->fired_serial[i])
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
