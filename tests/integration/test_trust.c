/*
 * test_trust.c - what a buggy client can and cannot do to the others (the
 * trust model of docs/DESIGN.md): sealed data is read-only in every client,
 * a client's arena fd cannot write, punch or truncate, the daemon repairs
 * its own header, a stranger's daemon is refused, the default socket lives
 * in a private directory, and no put of any size dies of SIGBUS on a backing
 * that runs out.
 *
 * Tests that need root (mounting a tmpfs, running a process as another uid)
 * skip with a message otherwise. A real daemon per test; every wait has a
 * deadline; crashes happen in forked children, whose fate is asserted.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "layout.h"
#include "protocol.h"
#include "shoal.h"
#include "testd.h"

/* The uid and gid a "stranger" runs as (nobody on Debian). */
#define STRANGER 65534

static void id_of(shoal_id *id, unsigned n)
{
	memset(id, 0x5a, sizeof(*id));
	memcpy(id->bytes, &n, sizeof(n));
}

static void debug_check(const char *path)
{
	char msg[256];

	if (testd_check(path, msg, sizeof(msg)) != 0)
		fail_msg("daemon check failed: %s", msg);
}

/* The daemon and the tmpfs of the running test, for the teardown. */
static struct testd g_d;
static bool g_d_running;

static int start_daemon(const char *memory, const char *a1, const char *a2)
{
	int rc = testd_start(&g_d, memory, a1, a2, NULL);

	g_d_running = rc == 0;
	return rc;
}

static int stop_daemon(void)
{
	g_d_running = false;
	return testd_stop(&g_d);
}

/* fork() for a child that may crash on purpose: cmocka's handlers would
 * catch the signal in the child and carry on with the test run. */
static pid_t fork_child(void)
{
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		signal(SIGBUS, SIG_DFL);
		signal(SIGSEGV, SIG_DFL);
	}
	return pid;
}

/* Waits for a child; returns its wait status (fails the test on timeout). */
static int wait_child(pid_t pid, int timeout_ms)
{
	int st = testd_wait_pid(pid, timeout_ms);

	if (st == -1)
		fail_msg("child %d did not finish in %d ms", (int)pid,
		         timeout_ms);
	return st;
}

static void expect_exit(pid_t pid, int code)
{
	int st = wait_child(pid, 20000);

	if (WIFSIGNALED(st))
		fail_msg("child died of signal %d", WTERMSIG(st));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), code);
}

static void expect_signal(pid_t pid, int sig)
{
	int st = wait_child(pid, 20000);

	if (WIFEXITED(st))
		fail_msg("child exited with %d instead of dying of signal %d",
		         WEXITSTATUS(st), sig);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), sig);
}

/* Puts n bytes of value v under object k and leaves nothing held. */
static int put_fill(shoal_client *c, unsigned k, size_t n, int v)
{
	shoal_id id;
	uint8_t *buf = malloc(n ? n : 1);
	int rc;

	assert_non_null(buf);
	memset(buf, v, n);
	id_of(&id, k);
	rc = shoal_put(c, &id, buf, n, NULL, 0);
	free(buf);
	return rc;
}

static bool all_bytes(const uint8_t *p, size_t n, int v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)v)
			return false;
	return true;
}

/* Gets object k (must be present) into *v. */
static void get_one(shoal_client *c, unsigned k, shoal_view *v)
{
	shoal_id id;

	id_of(&id, k);
	assert_int_equal(shoal_get(c, &id, 1, 0, v), 0);
	assert_int_equal(v->status, 0);
}

/* --- a tmpfs of our own ------------------------------------------------ */

struct mnt {
	char dir[256];
	bool mounted;
};
static struct mnt g_mnt;

/* Mounts a tmpfs of `size` (e.g. "48m") on a fresh directory, or skips the
 * test when this process may not mount. */
static void mount_tmpfs(struct mnt *m, const char *size)
{
	char opts[64];

	snprintf(m->dir, sizeof(m->dir), "/tmp/shoal-trust-mnt.XXXXXX");
	assert_non_null(mkdtemp(m->dir));
	snprintf(opts, sizeof(opts), "size=%s", size);
	if (mount("tmpfs", m->dir, "tmpfs", 0, opts) != 0) {
		int e = errno;
		rmdir(m->dir);
		fprintf(stderr,
		        "note: skipped: cannot mount a tmpfs (%s); run as root "
		        "to test a backing that runs out\n",
		        strerror(e));
		skip();
	}
	m->mounted = true;
}

static void unmount_tmpfs(struct mnt *m)
{
	if (m->mounted) {
		umount2(m->dir, MNT_DETACH);
		rmdir(m->dir);
	}
	m->mounted = false;
}

/* Whatever a failed test left behind. */
static int teardown(void **state)
{
	(void)state;
	if (g_d_running)
		stop_daemon();
	unmount_tmpfs(&g_mnt);
	return 0;
}

/* Fills the filesystem of dir with a file until it is full; returns the
 * file's path in path. */
static void fill_fs(const char *dir, char *path, size_t size)
{
	static uint8_t block[1 << 20];
	int fd;

	memset(block, 0x77, sizeof(block));
	snprintf(path, size, "%s/filler", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	for (size_t chunk = sizeof(block); chunk >= 4096;) {
		ssize_t n = write(fd, block, chunk);
		if (n < 0 && errno == ENOSPC) {
			chunk /= 2;
			continue;
		}
		assert_true(n > 0);
	}
	close(fd);
}

/* In a child with its own connection: puts n bytes as object k and exits
 * 0 when the put gave `want`, 1 otherwise (a SIGBUS shows as a signal). */
static pid_t spawn_put(const char *socket, unsigned k, size_t n, int want)
{
	pid_t pid = fork_child();

	if (pid == 0) {
		shoal_client *c;
		if (shoal_connect(socket, &c) != 0)
			_exit(100);
		int rc = put_fill(c, k, n, 0x3c);
		shoal_disconnect(c);
		if (rc != want)
			fprintf(stderr, "put of %zu bytes: %s (%d)\n", n,
			        shoal_strerror(rc), rc);
		_exit(rc == want ? 0 : 1);
	}
	return pid;
}

/*
 * Issue 9, defect 9: `serve -m 40M -d` on a 48 MiB tmpfs that another file
 * has filled. A put of any size must come back as SHOAL_EFULL; a small
 * object (inside one 2 MiB chunk) used to be reported backed and its writer
 * died of SIGBUS. Once the filler is gone the same puts succeed.
 */
static void test_no_sigbus_when_backing_runs_out(void **state)
{
	static const size_t sizes[] = {64, 4096, 64 << 10, 3 << 20};
	struct testd *d = &g_d;
	char filler[300];
	shoal_client *c;
	(void)state;

	mount_tmpfs(&g_mnt, "48m");
	assert_int_equal(start_daemon("40M", "-d", g_mnt.dir), 0);
	fill_fs(g_mnt.dir, filler, sizeof(filler));
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		expect_exit(spawn_put(d->socket, i, sizes[i], SHOAL_EFULL), 0);
	assert_int_equal(unlink(filler), 0);
	for (unsigned i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		expect_exit(spawn_put(d->socket, 10 + i, sizes[i], 0), 0);
	assert_int_equal(shoal_connect(d->socket, &c), 0);
	shoal_view v;
	get_one(c, 12, &v);
	assert_true(all_bytes(v.data, v.data_size, 0x3c));
	shoal_release(c, &v);
	shoal_disconnect(c);
	debug_check(d->socket);
	assert_int_equal(stop_daemon(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_teardown(name, teardown)
	        T(test_no_sigbus_when_backing_runs_out),
#undef T
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("trust", tests, NULL, NULL);
}
