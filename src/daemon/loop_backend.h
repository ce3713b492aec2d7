/*
 * loop_backend.h - what loop.c needs from the kernel's readiness API; the
 * one backend is epoll (loop_epoll.c).
 */
#ifndef SHOAL_LOOP_BACKEND_H
#define SHOAL_LOOP_BACKEND_H

struct loop_fired {
	int fd;
	unsigned events; /* LOOP_* */
};

struct loop_backend;

int loop_backend_create(struct loop_backend **out, int max_events);
void loop_backend_destroy(struct loop_backend *b);
/* Registers (add true) or changes fd's interest. Returns 0 or -errno. */
int loop_backend_set(struct loop_backend *b, int fd, unsigned mask, int add);
void loop_backend_del(struct loop_backend *b, int fd);
/* Waits up to timeout_ms; fills fired; returns the count or -errno
 * (EINTR is returned as 0 events). */
int loop_backend_wait(struct loop_backend *b, struct loop_fired *fired, int max,
                      int timeout_ms);

#endif /* SHOAL_LOOP_BACKEND_H */
