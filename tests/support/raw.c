/*
 * raw.c - test support: the wire protocol spoken directly (see raw.h).
 */
#include "raw.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static uint32_t next_rid = 1;

__attribute__((noreturn, format(printf, 1, 2))) static void
raw_fail(const char *fmt, ...);

#include <stdarg.h>

static void raw_fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "raw client: ");
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

int raw_connect(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (strlen(path) >= sizeof(a.sun_path))
		raw_fail("socket path too long");
	memcpy(a.sun_path, path, strlen(path) + 1);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
		raw_fail("connect: %s", strerror(errno));
	struct {
		struct proto_header h;
		struct proto_hello b;
	} m = {.b = {.proto_version = PROTO_VERSION, .pid = 1}};
	proto_header_init(&m.h, PROTO_HELLO, next_rid++, sizeof(m.b));
	raw_write_all(fd, &m, sizeof(m));
	struct pollfd p = {fd, POLLIN, 0};
	if (poll(&p, 1, 30000) != 1)
		raw_fail("no hello reply");
	uint8_t buf[sizeof(struct proto_header) +
	            sizeof(struct proto_hello_reply)];
	/* Room for more fds than the daemon sends (the arena and the
	 * published region): none is cut off, and every one is closed. */
	char cbuf[CMSG_SPACE(4 * sizeof(int))];
	struct iovec iov = {buf, sizeof(buf)};
	struct msghdr msg = {.msg_iov = &iov,
	                     .msg_iovlen = 1,
	                     .msg_control = cbuf,
	                     .msg_controllen = sizeof(cbuf)};
	if (recvmsg(fd, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC) <= 0)
		raw_fail("hello reply");
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < k; i++) {
			int pfd;
			memcpy(&pfd, CMSG_DATA(cm) + i * sizeof(pfd),
			       sizeof(pfd));
			close(pfd);
		}
	}
	return fd;
}

void raw_write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			raw_fail("write: %s", strerror(errno));
		p = (const uint8_t *)p + w;
		n -= (size_t)w;
	}
}

void *raw_add(struct raw_msgs *m, uint16_t type, size_t body)
{
	size_t need = sizeof(struct proto_header) + body;

	if (m->len + need > m->cap) {
		m->cap = (m->len + need) * 2;
		m->p = realloc(m->p, m->cap);
		if (!m->p)
			raw_fail("out of memory");
	}
	struct proto_header h;
	proto_header_init(&h, type, next_rid++, (uint32_t)body);
	memcpy(m->p + m->len, &h, sizeof(h));
	uint8_t *b = m->p + m->len + sizeof(h);
	memset(b, 0, body);
	m->len += need;
	m->count++;
	return b;
}

void raw_id(uint8_t *id, uint8_t tag, uint32_t n)
{
	memset(id, tag, SHOAL_ID_SIZE);
	memcpy(id, &n, sizeof(n));
}

void raw_add_create(struct raw_msgs *m, const uint8_t *id, uint64_t size,
                    int64_t timeout)
{
	struct proto_create c = {0};

	memcpy(c.id, id, SHOAL_ID_SIZE);
	c.data_size = size;
	c.timeout_ms = timeout;
	memcpy(raw_add(m, PROTO_CREATE, sizeof(c)), &c, sizeof(c));
}

void raw_add_id_req(struct raw_msgs *m, uint16_t type, const uint8_t *id,
                    uint32_t flags)
{
	struct proto_id_req r = {.flags = flags};

	memcpy(r.id, id, SHOAL_ID_SIZE);
	memcpy(raw_add(m, type, sizeof(r)), &r, sizeof(r));
}

void raw_add_get(struct raw_msgs *m, const uint8_t *ids, uint32_t n,
                 int64_t timeout)
{
	struct proto_get g = {.timeout_ms = timeout, .count = n};
	uint8_t *b =
	        raw_add(m, PROTO_GET, sizeof(g) + (size_t)n * SHOAL_ID_SIZE);

	memcpy(b, &g, sizeof(g));
	memcpy(b + sizeof(g), ids, (size_t)n * SHOAL_ID_SIZE);
}

void raw_add_created(struct raw_msgs *m, uint8_t tag, uint32_t n,
                     uint32_t seal_flags)
{
	for (uint32_t i = 0; i < n; i++) {
		uint8_t id[SHOAL_ID_SIZE];
		raw_id(id, tag, i);
		raw_add_create(m, id, 0, 0);
		raw_add_id_req(m, PROTO_SEAL, id, seal_flags);
	}
}

void raw_reset(struct raw_msgs *m)
{
	m->len = m->count = 0;
}

void raw_free(struct raw_msgs *m)
{
	free(m->p);
	memset(m, 0, sizeof(*m));
}

static void read_full(int fd, void *p, size_t n, int timeout_ms)
{
	size_t got = 0;

	while (got < n) {
		struct pollfd pf = {fd, POLLIN, 0};
		if (poll(&pf, 1, timeout_ms) != 1)
			raw_fail("no reply within %d ms", timeout_ms);
		ssize_t r = read(fd, (uint8_t *)p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			raw_fail("read reply: %s", r ? strerror(errno) : "EOF");
		got += (size_t)r;
	}
}

int32_t raw_read_reply(int fd, int timeout_ms, uint16_t *type)
{
	static uint8_t body[PROTO_MAX_REPLY];
	struct proto_header h;
	int32_t st = 0;

	if (timeout_ms < 0)
		timeout_ms = 60000;
	read_full(fd, &h, sizeof(h), timeout_ms);
	if (h.body_len > sizeof(body))
		raw_fail("reply of %u bytes", h.body_len);
	read_full(fd, body, h.body_len, timeout_ms);
	if (h.body_len >= sizeof(st))
		memcpy(&st, body, sizeof(st));
	if (type)
		*type = h.type;
	return st;
}

size_t raw_pipeline(int fd, const struct raw_msgs *m, size_t nreplies)
{
	size_t off = 0, got = 0, errors = 0;
	int fl = fcntl(fd, F_GETFL);

	while (off < m->len || got < nreplies) {
		struct pollfd p = {fd, POLLIN, 0};
		if (off < m->len)
			p.events |= POLLOUT;
		if (poll(&p, 1, 30000) <= 0)
			raw_fail("pipeline stalled");
		while (got < nreplies && (p.revents & POLLIN)) {
			if (raw_read_reply(fd, 30000, NULL) < 0)
				errors++;
			got++;
			p.revents = 0;
			poll(&p, 1, 0);
		}
		if (off < m->len) {
			fcntl(fd, F_SETFL, fl | O_NONBLOCK);
			ssize_t w = write(fd, m->p + off, m->len - off);
			fcntl(fd, F_SETFL, fl);
			if (w > 0)
				off += (size_t)w;
			else if (w < 0 && errno != EAGAIN && errno != EINTR)
				raw_fail("pipeline write: %s", strerror(errno));
		}
	}
	return errors;
}
