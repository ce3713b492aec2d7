/*
 * net.c - Unix socket helpers (see net.h).
 *
 * Stale sockets: a socket file whose connect() is refused belongs to a dead
 * daemon and is unlinked; one that accepts means a live daemon, and we
 * refuse to start rather than steal its path. The socket is bound under a
 * 0177 umask (mode 0600) so that it is never, even briefly, open to other
 * users.
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "os.h"
#include "shoal.h"

static int fill_addr(struct sockaddr_un *sa, const char *path)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return SHOAL_ETOOBIG;
	strcpy(sa->sun_path, path);
	return 0;
}

/* Whether a daemon accepts connections at path. */
static int path_is_served(const struct sockaddr_un *sa)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return 0;
	do
		rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	while (rc != 0 && errno == EINTR);
	close(fd);
	return rc == 0;
}

int net_listen_unix(const char *path, char *err, size_t size)
{
	struct sockaddr_un sa;
	struct stat stt;
	int fd, rc;

	if (fill_addr(&sa, path)) {
		snprintf(err, size,
		         "socket path is too long (%zu bytes, at most %zu): %s",
		         strlen(path), sizeof(sa.sun_path) - 1, path);
		return SHOAL_ETOOBIG;
	}
	if (lstat(path, &stt) == 0) {
		if (!S_ISSOCK(stt.st_mode)) {
			snprintf(err, size,
			         "%s exists and is not a socket: remove it or "
			         "choose another path with -s",
			         path);
			return SHOAL_EEXISTS;
		}
		if (path_is_served(&sa)) {
			snprintf(err, size,
			         "a shoal daemon is already serving %s", path);
			return SHOAL_EEXISTS;
		}
		unlink(path); /* stale: its daemon is gone */
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		rc = -errno;
		snprintf(err, size, "socket: %s", strerror(errno));
		return rc;
	}
	mode_t old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0 || listen(fd, SOMAXCONN) != 0) {
		rc = -errno;
		snprintf(err, size, "cannot listen on %s: %s", path,
		         strerror(errno));
		close(fd);
		return rc;
	}
	return fd;
}

int net_accept(int listen_fd)
{
	int fd;

	do
		fd = os_accept4(listen_fd, NULL, NULL,
		                SOCK_NONBLOCK | SOCK_CLOEXEC);
	while (fd < 0 && errno == EINTR);
	return fd < 0 ? -errno : fd;
}

long net_send_with_fd(int sock, const void *buf, size_t len, int fd)
{
	return net_send_with_fds(sock, buf, len, &fd, 1);
}

long net_send_with_fds(int sock, const void *buf, size_t len, const int *fds,
                       int nfds)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(NET_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds < 1 || nfds > NET_MAX_FDS)
		return -EINVAL;
	memset(&ctl, 0, sizeof(ctl));
	msg.msg_control = ctl.buf;
	msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
	memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
	do
		n = os_sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : (long)n;
}
