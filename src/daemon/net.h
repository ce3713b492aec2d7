/*
 * net.h - Unix socket helpers for the daemon: every fd they return is
 * non-blocking and close-on-exec, and every call retries on EINTR.
 */
#ifndef SHOAL_NET_H
#define SHOAL_NET_H

#include <stddef.h>

/*
 * Listens on a Unix stream socket at path, created mode 0600. A socket file
 * left by a dead daemon is replaced; one that a live daemon still serves is
 * refused. Returns the fd, or a negative code with a message for the user in
 * err: SHOAL_ETOOBIG (path too long), SHOAL_EEXISTS (a daemon serves it), or
 * -errno.
 */
int net_listen_unix(const char *path, char *err, size_t size);

/* Accepts a connection. Returns its fd, or -errno (-EAGAIN when none). */
int net_accept(int listen_fd);

/* Sends len bytes with fd attached as SCM_RIGHTS. Returns the bytes sent
 * or -errno. */
long net_send_with_fd(int sock, const void *buf, size_t len, int fd);

/* Most fds net_send_with_fds() attaches. */
#define NET_MAX_FDS 2

/* Sends len bytes with nfds fds (1 to NET_MAX_FDS) attached as one
 * SCM_RIGHTS message, in order. Returns the bytes sent or -errno. */
long net_send_with_fds(int sock, const void *buf, size_t len, const int *fds,
                       int nfds);

#endif /* SHOAL_NET_H */
