/*
 * loop.h - a small event loop: a table of file descriptors with read/write
 * handlers, one "before sleep" hook that runs before each wait and says how
 * long the wait may last (the daemon's timers are deadlines it computes
 * there), and a stop flag. One thread; handlers run to completion.
 */
#ifndef SHOAL_LOOP_H
#define SHOAL_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#define LOOP_READ  1u
#define LOOP_WRITE 2u
#define LOOP_ERROR 4u /* reported only: hang-up or error on the fd */

struct loop;

typedef void loop_fd_fn(struct loop *l, int fd, void *ctx, unsigned events);
/* Returns the longest the loop may sleep, in ms (-1: no limit). */
typedef int loop_sleep_fn(struct loop *l, void *ctx);

/* Returns 0 and *out, or -errno. */
int loop_create(struct loop **out);
void loop_destroy(struct loop *l);

/* Watches fd for mask (LOOP_READ | LOOP_WRITE), replacing an earlier
 * registration; mask 0 keeps the fd registered but quiet. Returns 0,
 * SHOAL_ENOMEM or -errno. */
int loop_watch(struct loop *l, int fd, unsigned mask, loop_fd_fn *fn,
               void *ctx);

/* Changes the mask of a watched fd. */
int loop_mask(struct loop *l, int fd, unsigned mask);

/* Stops watching fd (before it is closed). */
void loop_unwatch(struct loop *l, int fd);

void loop_before_sleep(struct loop *l, loop_sleep_fn *fn, void *ctx);

/* Runs until loop_stop(). Returns 0 or -errno when waiting failed. */
int loop_run(struct loop *l);

/*
 * One turn of the loop: the before-sleep hook, one wait of at most what the
 * hook allows and at most max_wait_ms (-1: no cap; 0: poll), and the
 * handlers of the fds that fired. Does not wait when loop_stop() was called
 * (the stop flag is left set). For callers that drive the loop themselves
 * (the fuzz harness). Returns the number of fds that fired, or -errno.
 */
int loop_run_once(struct loop *l, int max_wait_ms);
void loop_stop(struct loop *l);

#endif /* SHOAL_LOOP_H */
