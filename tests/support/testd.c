/*
 * testd.c - starting and stopping a real daemon for tests (see testd.h).
 */
#include "testd.h"

#include "protocol.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

uint64_t testd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

const char *testd_bin(void)
{
	const char *b = getenv("SHOAL_BIN");

	return b && *b ? b : "build/shoal";
}

static bool accepts(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ok;
}

int testd_wait_pid(pid_t pid, int timeout_ms)
{
	uint64_t end = testd_now_ms() + (uint64_t)timeout_ms;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
		if (testd_now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(2000);
	}
}

/* Starts the daemon in d->dir (which exists) with the arguments of ap. */
static int start_in_dir(struct testd *d, const char *memory, va_list ap)
{
	const char *argv[32];
	int argc = 0;

	snprintf(d->socket, sizeof(d->socket), "%s/s.sock", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/daemon.log", d->dir);
	/* SHOAL_WRAP runs the daemon under a tool, e.g. valgrind. */
	static char wrap[512];
	const char *w = getenv("SHOAL_WRAP");
	if (w && *w && strlen(w) < sizeof(wrap)) {
		strcpy(wrap, w);
		for (char *t = strtok(wrap, " "); t && argc < 16;
		     t = strtok(NULL, " "))
			argv[argc++] = t;
	}
	argv[argc++] = testd_bin();
	argv[argc++] = "serve";
	argv[argc++] = "-s";
	argv[argc++] = d->socket;
	argv[argc++] = "-m";
	argv[argc++] = memory;
	argv[argc++] = "--debug-checks";
	for (const char *a; argc < 30 && (a = va_arg(ap, const char *));)
		argv[argc++] = a;
	argv[argc] = NULL;
	d->pid = fork();
	if (d->pid < 0)
		return -1;
	if (d->pid == 0) {
		/* A test that fails half-way must not leave its daemon behind:
		 * it dies with the test process. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open(d->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	/* Generous: under valgrind the daemon takes seconds to start. */
	uint64_t end = testd_now_ms() + 30000;
	while (testd_now_ms() < end) {
		if (accepts(d->socket))
			return 0;
		if (waitpid(d->pid, NULL, WNOHANG) == d->pid) {
			d->pid = 0;
			return -1;
		}
		usleep(2000);
	}
	testd_stop(d);
	return -1;
}

int testd_start(struct testd *d, const char *memory, ...)
{
	va_list ap;
	int rc;

	va_start(ap, memory);
	rc = testd_vstart(d, memory, ap);
	va_end(ap);
	return rc;
}

int testd_vstart(struct testd *d, const char *memory, va_list ap)
{
	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/shoal-test-XXXXXX");
	if (!mkdtemp(d->dir))
		return -1;
	return start_in_dir(d, memory, ap);
}

int testd_restart(struct testd *d, const char *memory, ...)
{
	va_list ap;
	int rc;

	va_start(ap, memory);
	rc = start_in_dir(d, memory, ap);
	va_end(ap);
	return rc;
}

void testd_kill(struct testd *d)
{
	if (d->pid > 0) {
		kill(d->pid, SIGKILL);
		testd_wait_pid(d->pid, 10000);
		d->pid = 0;
	}
}

int testd_stop(struct testd *d)
{
	int status, rc = -1;

	if (d->pid > 0) {
		kill(d->pid, SIGTERM);
		status = testd_wait_pid(d->pid, 10000);
		if (status != -1 && WIFEXITED(status))
			rc = WEXITSTATUS(status);
		d->pid = 0;
	}
	unlink(d->socket);
	unlink(d->log);
	rmdir(d->dir);
	return rc;
}

int testd_check(const char *socket_path, char *msg, size_t size)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct proto_header h;
	struct proto_hello hello = {PROTO_VERSION, 0, (uint64_t)getpid()};
	uint8_t buf[1024];
	int fd, rc = -1;

	snprintf(msg, size, "cannot ask the daemon");
	if (strlen(socket_path) >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto out;
	proto_header_init(&h, PROTO_HELLO, 1, sizeof(hello));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &hello, sizeof(hello));
	proto_header_init(&h, PROTO_DEBUG_CHECK, 2, 0);
	memcpy(buf + 32, &h, sizeof(h));
	if (write(fd, buf, 48) != 48)
		goto out;
	/* The hello reply (56 bytes; its fd is closed with the socket), then
	 * the check's reply. */
	size_t got = 0, want = 56 + 16 + 8;
	uint64_t end = testd_now_ms() + 10000;
	while (got < want && testd_now_ms() < end) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
		if (n <= 0)
			goto out;
		got += (size_t)n;
		if (got >= 72) {
			memcpy(&h, buf + 56, sizeof(h));
			want = 72 + h.body_len;
			if (want >= sizeof(buf))
				goto out;
		}
	}
	if (got < want)
		goto out;
	struct proto_reply r;
	memcpy(&r, buf + 72, sizeof(r));
	buf[got] = 0;
	snprintf(msg, size, "%s", r.status ? (char *)buf + 80 : "ok");
	rc = r.status ? -1 : 0;
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

int testd_finish(struct testd *d, char *msg, size_t size)
{
	int rc = testd_check(d->socket, msg, size);
	int stopped = testd_stop(d);

	if (rc == 0 && stopped != 0) {
		snprintf(msg, size, "the daemon did not stop cleanly (%d)",
		         stopped);
		rc = -1;
	}
	return rc;
}

void testd_id(shoal_id *id, uint8_t fill, unsigned n)
{
	memset(id, fill, sizeof(*id));
	memcpy(id->bytes, &n, sizeof(n));
}

double testd_stress_scale(void)
{
#if defined(__SANITIZE_ADDRESS__)
	const double divisor = 5;
#else
	const double divisor = 1;
#endif
	const char *s = getenv("SHOAL_STRESS_SCALE");
	double v = s ? atof(s) : 1.0;

	return (v > 0 ? v : 1.0) / divisor;
}

unsigned testd_stress_seed(unsigned fallback)
{
	const char *s = getenv("SHOAL_STRESS_SEED");

	return s ? (unsigned)strtoul(s, NULL, 10) : fallback;
}
