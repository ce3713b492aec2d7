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
#include <sys/prctl.h>
#include <sys/resource.h>
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
	testd_id(id, 0x5a, n);
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

/*
 * The same after memory was given back: small objects mark their pages
 * backed; once they are deleted and their chunk is punched out (--trim),
 * those pages must not be vouched for any more.
 */
static void test_no_sigbus_after_trim(void **state)
{
	struct testd *d = &g_d;
	char filler[300];
	shoal_client *c;
	shoal_stats st;
	(void)state;

	mount_tmpfs(&g_mnt, "48m");
	assert_int_equal(start_daemon("40M", "-d", g_mnt.dir), 0);
	stop_daemon();
	assert_int_equal(
	        testd_start(&g_d, "40M", "-d", g_mnt.dir, "--trim", NULL), 0);
	g_d_running = true;
	assert_int_equal(shoal_connect(d->socket, &c), 0);
	/* The rest of the first chunk (which holds the header page and is
	 * never punched) is taken, so the small objects go to later chunks. */
	assert_int_equal(put_fill(c, 99, LAYOUT_CHUNK - LAYOUT_HEADER_SIZE, 1),
	                 0);
	for (unsigned i = 0; i < 128; i++)
		assert_int_equal(put_fill(c, 100 + i, 64 << 10, 1), 0);
	assert_int_equal(shoal_get_stats(c, &st), 0);
	assert_true(st.backed_bytes >= (4u << 20));
	for (unsigned i = 0; i < 128; i++) {
		shoal_id id;
		int r;
		id_of(&id, 100 + i);
		assert_int_equal(shoal_delete(c, &id, 1, &r), 0);
	}
	/* Wait until only the first chunk is left backed. */
	uint64_t end = testd_now_ms() + 10000;
	do {
		assert_int_equal(shoal_get_stats(c, &st), 0);
		if (st.backed_bytes <= LAYOUT_CHUNK)
			break;
		usleep(10000);
	} while (testd_now_ms() < end);
	assert_true(st.backed_bytes <= LAYOUT_CHUNK);
	shoal_disconnect(c);
	fill_fs(g_mnt.dir, filler, sizeof(filler));
	expect_exit(spawn_put(d->socket, 1, 64 << 10, SHOAL_EFULL), 0);
	expect_exit(spawn_put(d->socket, 2, 64, SHOAL_EFULL), 0);
	assert_int_equal(unlink(filler), 0);
	expect_exit(spawn_put(d->socket, 3, 64 << 10, 0), 0);
	debug_check(d->socket);
	assert_int_equal(stop_daemon(), 0);
}

/* Byte i of object k in the threaded puts below: every position differs
 * from its neighbours, so a step written twice or not at all shows. */
static uint8_t pattern_byte(size_t i, unsigned k)
{
	return (uint8_t)((i >> 12) * 7 + i * 31 + k);
}

/* Checks that object k holds n bytes of pattern_byte(i, k). */
static void expect_pattern(const char *socket, unsigned k, size_t n)
{
	shoal_client *c;
	shoal_view v;

	assert_int_equal(shoal_connect(socket, &c), 0);
	get_one(c, k, &v);
	assert_int_equal(v.data_size, n);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += v.data[i] != pattern_byte(i, k);
	assert_int_equal(bad, 0);
	shoal_release(c, &v);
	shoal_disconnect(c);
}

/* Whether every page of [p, p + n) is in memory (reserved). */
static bool all_resident(const uint8_t *p, size_t n)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE);
	uintptr_t lo = (uintptr_t)p & ~(pg - 1);
	size_t pages = ((uintptr_t)p + n - lo + pg - 1) / pg;
	unsigned char *vec = malloc(pages);
	bool ok = vec && mincore((void *)lo, pages * pg, vec) == 0;

	for (size_t i = 0; ok && i < pages; i++)
		ok = vec[i] & 1;
	free(vec);
	return ok;
}

/* In a child: creates object k of n bytes with its pages reserved by four
 * threads, checks that every page was reserved before writing a byte,
 * writes the pattern and seals it; exits 0 when the create gave `want`, 1
 * otherwise, 2 when a page was not reserved (a SIGBUS shows as a signal). */
static pid_t spawn_threaded_put(const char *socket, unsigned k, size_t n,
                                int want)
{
	pid_t pid = fork_child();

	if (pid == 0) {
		shoal_client *c;
		shoal_id id;
		uint8_t *data;
		if (shoal_connect(socket, &c) != 0 ||
		    shoal_set_populate_threads(c, 4) != 0)
			_exit(100);
		id_of(&id, k);
		int rc = shoal_create(c, &id, n, 0, 0, &data, NULL);
		if (rc == 0 && !all_resident(data, n))
			_exit(2);
		if (rc == 0) {
			for (size_t i = 0; i < n; i++)
				data[i] = pattern_byte(i, k);
			rc = shoal_seal(c, &id);
		}
		shoal_disconnect(c);
		if (rc != want)
			fprintf(stderr, "threaded put of %zu bytes: %s (%d)\n",
			        n, shoal_strerror(rc), rc);
		_exit(rc == want ? 0 : 1);
	}
	return pid;
}

/*
 * A put of 32 MiB or more has its pages reserved by several threads
 * (populate.c). On a backing that runs out part-way, some threads get
 * their pages and others do not: the put must still be a clean
 * SHOAL_EFULL, never a SIGBUS. Once there is room, the same put writes
 * every byte.
 */
static void test_no_sigbus_threaded_populate(void **state)
{
	struct testd *d = &g_d;
	char filler[300];
	struct stat st;
	size_t n = 64u << 20;
	(void)state;

	mount_tmpfs(&g_mnt, "112m");
	assert_int_equal(start_daemon("100M", "-d", g_mnt.dir), 0);
	fill_fs(g_mnt.dir, filler, sizeof(filler));
	/* 24 MiB left: a step or two of the put find pages, the rest not. */
	assert_int_equal(stat(filler, &st), 0);
	assert_int_equal(truncate(filler, st.st_size - (24 << 20)), 0);
	expect_exit(spawn_threaded_put(d->socket, 1, n, SHOAL_EFULL), 0);
	assert_int_equal(unlink(filler), 0);
	expect_exit(spawn_threaded_put(d->socket, 2, n, 0), 0);
	expect_pattern(d->socket, 2, n);
	debug_check(d->socket);
	assert_int_equal(stop_daemon(), 0);
}

/* In a child: creates object k of n bytes from two segments of the
 * pattern with gaps around them (fill.c writes fresh memory with pwrite
 * and reserves the gaps); with fill_dir, then fills that filesystem to
 * the brim (so that a gap page not reserved at create would SIGBUS);
 * writes the gaps and seals. Exits 0 when the create gave `want`, 1
 * otherwise (a SIGBUS shows as a signal). */
static pid_t spawn_fill_put(const char *socket, unsigned k, size_t n,
                            unsigned threads, int want, const char *fill_dir)
{
	pid_t pid = fork_child();

	if (pid == 0) {
		shoal_client *c;
		shoal_id id;
		uint8_t *data, *src = malloc(n);
		if (!src || shoal_connect(socket, &c) != 0 ||
		    shoal_set_populate_threads(c, threads) != 0)
			_exit(100);
		for (size_t i = 0; i < n; i++)
			src[i] = pattern_byte(i, k);
		size_t a0 = 4096 + 64, a1 = n / 2 - 8192, b0 = n / 2,
		       b1 = n - 100;
		shoal_segment segs[2] = {{a0, src + a0, a1 - a0, 0, 0},
		                         {b0, src + b0, b1 - b0, 0, 0}};
		id_of(&id, k);
		int rc = shoal_create_from(c, &id, n, 0, 0, segs, 2, &data,
		                           NULL);
		char filler[300];
		if (rc == 0 && fill_dir)
			fill_fs(fill_dir, filler, sizeof(filler));
		if (rc == 0) {
			memcpy(data, src, a0);
			memcpy(data + a1, src + a1, b0 - a1);
			memcpy(data + b1, src + b1, n - b1);
			rc = shoal_seal(c, &id);
		}
		shoal_disconnect(c);
		if (rc != want)
			fprintf(stderr,
			        "put of %zu bytes from segments: %s (%d)\n", n,
			        shoal_strerror(rc), rc);
		_exit(rc == want ? 0 : 1);
	}
	return pid;
}

/*
 * A put of 32 MiB or more from segments into fresh memory is written with
 * pwrite by one thread while the others populate and copy (fill.c). On a
 * `-d` tmpfs that runs out part-way, pwrite, fallocate or the populate
 * fails in some thread: the put must be a clean SHOAL_EFULL (never a
 * SIGBUS, never an object left behind), with one thread or several. With
 * room, every byte lands, and the gaps the caller writes after the create
 * were reserved by it: filling the filesystem meanwhile changes nothing.
 */
static void test_no_sigbus_fill_runs_out(void **state)
{
	struct testd *d = &g_d;
	char filler[300];
	struct stat st;
	shoal_stats stats;
	shoal_client *c;
	size_t n = 64u << 20;
	(void)state;

	mount_tmpfs(&g_mnt, "112m");
	assert_int_equal(start_daemon("100M", "-d", g_mnt.dir), 0);
	fill_fs(g_mnt.dir, filler, sizeof(filler));
	assert_int_equal(stat(filler, &st), 0);
	assert_int_equal(truncate(filler, st.st_size - (24 << 20)), 0);
	expect_exit(spawn_fill_put(d->socket, 1, n, 1, SHOAL_EFULL, NULL), 0);
	expect_exit(spawn_fill_put(d->socket, 2, n, 4, SHOAL_EFULL, NULL), 0);
	assert_int_equal(shoal_connect(d->socket, &c), 0);
	assert_int_equal(shoal_get_stats(c, &stats), 0);
	assert_int_equal(stats.objects, 0);
	shoal_disconnect(c);
	assert_int_equal(unlink(filler), 0);
	expect_exit(spawn_fill_put(d->socket, 3, n, 1, 0, g_mnt.dir), 0);
	expect_pattern(d->socket, 3, n);
	debug_check(d->socket);
	assert_int_equal(stop_daemon(), 0);
}

/* Bytes of shared memory mapped in this process (RssShmem), from
 * /proc/self/status. */
static uint64_t rss_shmem(void)
{
	char line[256];
	unsigned long long kb = 0;
	FILE *f = fopen("/proc/self/status", "r");

	assert_non_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "RssShmem: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb << 10;
}

/*
 * A large put into fresh memory with one thread writes the object through
 * the file: the creator's own page tables (and RSS) do not grow by the
 * object, and the seal has no pages to make read-only. Readers get every
 * byte.
 */
static void test_fresh_put_keeps_creator_rss(void **state)
{
	size_t n = 64u << 20;
	uint8_t *src = malloc(n);
	shoal_client *c;
	shoal_id id;
	(void)state;

	assert_non_null(src);
	for (size_t i = 0; i < n; i++)
		src[i] = pattern_byte(i, 4);
	assert_int_equal(start_daemon("100M", NULL, NULL), 0);
	assert_int_equal(shoal_connect(g_d.socket, &c), 0);
	assert_int_equal(shoal_set_populate_threads(c, 1), 0);
	uint64_t before = rss_shmem();
	id_of(&id, 4);
	assert_int_equal(shoal_put(c, &id, src, n, NULL, 0), 0);
	int64_t grew = (int64_t)(rss_shmem() - before);
	if (grew >= (int64_t)n / 8)
		fail_msg(
		        "the creator's RSS grew by %lld bytes for a put of %zu",
		        (long long)grew, n);
	shoal_disconnect(c);
	free(src);
	expect_pattern(g_d.socket, 4, n);
	assert_int_equal(stop_daemon(), 0);
}

/*
 * A process whose file size limit (RLIMIT_FSIZE) lies below the arena's
 * end must still put large objects: a pwrite past the limit would send it
 * SIGXFSZ, which kills by default, so fill.c populates and copies instead.
 */
static void test_put_under_a_file_size_limit(void **state)
{
	size_t n = 48u << 20;
	(void)state;

	assert_int_equal(start_daemon("100M", NULL, NULL), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		struct rlimit rl = {1u << 20, 1u << 20};
		uint8_t *src = malloc(n);
		shoal_client *c;
		shoal_id id;
		if (!src || setrlimit(RLIMIT_FSIZE, &rl) != 0 ||
		    shoal_connect(g_d.socket, &c) != 0)
			_exit(100);
		for (size_t i = 0; i < n; i++)
			src[i] = pattern_byte(i, 5);
		id_of(&id, 5);
		int rc = shoal_put(c, &id, src, n, NULL, 0);
		shoal_disconnect(c);
		_exit(rc == 0 ? 0 : 1);
	}
	expect_exit(pid, 0);
	expect_pattern(g_d.socket, 5, n);
	assert_int_equal(stop_daemon(), 0);
}

/* --- what a client can write ------------------------------------------- */

/*
 * A HELLO by hand, as a buggy or home-made client would send it. Returns
 * the arena fd it brought (and the socket in *sock), or -1.
 */
static int raw_hello(const char *path, uint32_t flags, int *sock,
                     struct proto_hello_reply *out)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct {
		struct proto_header h;
		struct proto_hello b;
	} req = {.b = {.proto_version = PROTO_VERSION,
	               .flags = flags,
	               .pid = (uint64_t)getpid()}};
	struct {
		struct proto_header h;
		struct proto_hello_reply r;
	} rep;
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {&rep, sizeof(rep)};
	struct msghdr mh = {.msg_iov = &iov,
	                    .msg_iovlen = 1,
	                    .msg_control = ctl.buf,
	                    .msg_controllen = sizeof(ctl.buf)};
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), fd = -1;

	assert_true(s >= 0);
	assert_true(strlen(path) < sizeof(a.sun_path));
	memcpy(a.sun_path, path, strlen(path) + 1);
	assert_int_equal(connect(s, (struct sockaddr *)&a, sizeof(a)), 0);
	proto_header_init(&req.h, PROTO_HELLO, 1, sizeof(req.b));
	assert_int_equal(write(s, &req, sizeof(req)), (ssize_t)sizeof(req));
	assert_int_equal(recvmsg(s, &mh, MSG_WAITALL), (ssize_t)sizeof(rep));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_type == SCM_RIGHTS) {
		memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		/* A reader's HELLO also brings the published region. */
		for (size_t i = 1;
		     i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int more;
			memcpy(&more, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			close(more);
		}
	}
	assert_int_equal(rep.r.r.status, 0);
	if (out)
		*out = rep.r;
	*sock = s;
	return fd;
}

/* What the fd every client gets lets it do to the arena: nothing. */
static void check_fd_cannot_write(int fd, uint64_t map_size)
{
	uint8_t junk[64];

	memset(junk, 0xee, sizeof(junk));
	assert_int_equal(fcntl(fd, F_GETFL) & O_ACCMODE, O_RDONLY);
	assert_int_equal(pwrite(fd, junk, sizeof(junk), 4096), -1);
	assert_int_equal(errno, EBADF);
	assert_int_equal(pwrite(fd, junk, 8, 0), -1); /* the header */
	assert_int_equal(fallocate(fd,
	                           FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
	                           4096, 1 << 20),
	                 -1);
	assert_int_equal(errno, EBADF);
	assert_int_not_equal(ftruncate(fd, 0), 0);
	assert_int_not_equal(ftruncate(fd, (off_t)map_size * 2), 0);
	assert_true(mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
	                 0) == MAP_FAILED);
	assert_int_equal(errno, EACCES);
	void *p = mmap(NULL, map_size, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_int_equal(mprotect(p, 4096, PROT_READ | PROT_WRITE), -1);
	assert_int_equal(errno, EACCES);
	munmap(p, map_size);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal((uint64_t)st.st_size, map_size);
}

/*
 * A reader that holds a view of object k (n bytes of value v) while the
 * parent attacks, then reads it all: exits 0 when every byte is still
 * there. Handshake: "r" on *ready once it holds the view, waits for a byte
 * on *go.
 */
static pid_t spawn_holder(const char *socket, unsigned k, int v, int ready[2],
                          int go[2])
{
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	pid_t pid = fork_child();
	if (pid == 0) {
		shoal_client *c;
		shoal_view view;
		shoal_id id;
		char b;
		alarm(30); /* the deadline of a child the parent forgot */
		if (shoal_connect(socket, &c) != 0)
			_exit(100);
		id_of(&id, k);
		if (shoal_get(c, &id, 1, 0, &view) != 0 || view.status != 0)
			_exit(101);
		if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
			_exit(102);
		bool same = all_bytes(view.data, view.data_size, v);
		shoal_release(c, &view);
		shoal_disconnect(c);
		_exit(same ? 0 : 1);
	}
	char b;
	assert_int_equal(read(ready[0], &b, 1), 1);
	return pid;
}

static void attack_with_client_fd(const char *socket)
{
	struct proto_hello_reply rep;
	int ready[2], go[2], sock;
	shoal_client *c;

	assert_int_equal(shoal_connect(socket, &c), 0);
	assert_int_equal(put_fill(c, 1, 1 << 20, 0x42), 0);
	pid_t holder = spawn_holder(socket, 1, 0x42, ready, go);
	int fd = raw_hello(socket, 0, &sock, &rep);
	assert_true(fd >= 0);
	check_fd_cannot_write(fd, rep.map_size);
	close(fd);
	close(sock);
	assert_int_equal(write(go[1], "g", 1), 1);
	expect_exit(holder, 0);
	/* New clients still connect and read it. */
	shoal_client *c2;
	shoal_view v;
	assert_int_equal(shoal_connect(socket, &c2), 0);
	get_one(c2, 1, &v);
	assert_true(all_bytes(v.data, v.data_size, 0x42));
	shoal_release(c2, &v);
	shoal_disconnect(c2);
	shoal_disconnect(c);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
	}
}

/*
 * Issue 9, defect 6: the fd a client gets cannot pwrite, punch holes,
 * truncate, or be mapped writable; a reader holding a view meanwhile sees
 * its bytes unchanged.
 */
static void test_client_fd_is_read_only(void **state)
{
	(void)state;
	assert_int_equal(start_daemon("64M", NULL, NULL), 0);
	attack_with_client_fd(g_d.socket);
	debug_check(g_d.socket);
	assert_int_equal(stop_daemon(), 0);
}

/*
 * Issue 9, defect 7: a -d arena (a plain file: memfd seals do not apply)
 * cannot be truncated through a client's fd; a client that tries gets an
 * error and a reader of a view keeps reading.
 */
static void test_dir_arena_cannot_be_truncated(void **state)
{
	(void)state;
	mount_tmpfs(&g_mnt, "96m");
	assert_int_equal(start_daemon("64M", "-d", g_mnt.dir), 0);
	attack_with_client_fd(g_d.socket);
	debug_check(g_d.socket);
	assert_int_equal(stop_daemon(), 0);
}

/* In a child: connects, gets object k and writes into it; must die. */
static void child_write_sealed(const char *socket, unsigned k)
{
	shoal_client *c;
	shoal_view v;

	if (shoal_connect(socket, &c) != 0)
		_exit(100);
	get_one(c, k, &v);
	((volatile uint8_t *)v.data)[v.data_size / 2] = 0;
	_exit(0);
}

/* In a child: creates object k (n bytes), fills it, seals it, then writes
 * at byte `at` of the pointer create gave (may be past the object). */
static void child_write_after_seal(const char *socket, unsigned k, size_t n,
                                   size_t at)
{
	shoal_client *c;
	shoal_id id;
	uint8_t *d;

	if (shoal_connect(socket, &c) != 0)
		_exit(100);
	id_of(&id, k);
	if (shoal_create(c, &id, n, 0, 0, &d, NULL) != 0)
		_exit(101);
	memset(d, 0x21, n);
	if (shoal_seal(c, &id) != 0)
		_exit(102);
	((volatile uint8_t *)d)[at] = 0;
	_exit(0);
}

/* In a child: creates object k of n bytes and writes at byte `at` of its
 * pointer before sealing (past the object: outside its window). */
static void child_write_outside_window(const char *socket, unsigned k, size_t n,
                                       size_t at)
{
	shoal_client *c;
	shoal_id id;
	uint8_t *d;

	if (shoal_connect(socket, &c) != 0)
		_exit(100);
	id_of(&id, k);
	if (shoal_create(c, &id, n, 0, 0, &d, NULL) != 0)
		_exit(101);
	((volatile uint8_t *)d)[at] = 0;
	_exit(0);
}

/*
 * Issue 9, defect 6: sealed data is read-only in every client, the creator
 * included; a creator can write its own object and nothing a page away
 * from it. Whatever the buggy children tried, the data is intact.
 */
static void test_sealed_data_is_read_only(void **state)
{
	shoal_client *c;
	shoal_view v;
	pid_t pid;
	(void)state;

	assert_int_equal(start_daemon("64M", NULL, NULL), 0);
	assert_int_equal(shoal_connect(g_d.socket, &c), 0);
	assert_int_equal(put_fill(c, 1, 3 << 20, 0x42), 0);
	assert_int_equal(put_fill(c, 2, 100, 0x43), 0);

	if ((pid = fork_child()) == 0)
		child_write_sealed(g_d.socket, 1);
	expect_signal(pid, SIGSEGV);
	if ((pid = fork_child()) == 0)
		child_write_sealed(g_d.socket, 2);
	expect_signal(pid, SIGSEGV);
	if ((pid = fork_child()) == 0)
		child_write_after_seal(g_d.socket, 3, 5000, 10);
	expect_signal(pid, SIGSEGV);
	/* 2 pages past the end of a 5000-byte object: not its page. */
	if ((pid = fork_child()) == 0)
		child_write_outside_window(g_d.socket, 4, 5000, 5000 + 8192);
	expect_signal(pid, SIGSEGV);
	/* And before its start (object 1 lies there, sealed). */
	if ((pid = fork_child()) == 0)
		child_write_outside_window(g_d.socket, 5, 5000, (size_t)-8192);
	expect_signal(pid, SIGSEGV);

	get_one(c, 1, &v);
	assert_true(all_bytes(v.data, v.data_size, 0x42));
	shoal_release(c, &v);
	get_one(c, 2, &v);
	assert_true(all_bytes(v.data, v.data_size, 0x43));
	shoal_release(c, &v);
	get_one(c, 3, &v);
	assert_true(all_bytes(v.data, v.data_size, 0x21));
	shoal_release(c, &v);
	shoal_disconnect(c);
	debug_check(g_d.socket);
	assert_int_equal(stop_daemon(), 0);
}

/*
 * Many unsealed objects of one client share pages: each stays writable
 * until its own seal or abort, whatever the order, and every one becomes
 * read-only after. Run in a child so that a wrong protection shows as a
 * signal, not as a crash of the test.
 */
static void child_many_windows(const char *socket)
{
	enum { N = 300 };
	static uint8_t *d[N];
	static size_t len[N];
	shoal_client *c;
	shoal_id id;

	if (shoal_connect(socket, &c) != 0)
		_exit(100);
	srand(7);
	for (unsigned i = 0; i < N; i++) {
		len[i] = 1 + (size_t)rand() % (i % 10 == 0 ? 20000 : 300);
		id_of(&id, 100 + i);
		if (shoal_create(c, &id, len[i], 0, 0, &d[i], NULL) != 0)
			_exit(101);
	}
	/* Seal or abort in a scrambled order, writing every still-open
	 * object in full after each step. */
	unsigned order[N];
	for (unsigned i = 0; i < N; i++)
		order[i] = i;
	for (unsigned i = N - 1; i > 0; i--) {
		unsigned j = (unsigned)rand() % (i + 1), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	static bool done[N];
	for (unsigned s = 0; s < N; s++) {
		unsigned k = order[s];
		memset(d[k], (int)(k & 0xff), len[k]);
		id_of(&id, 100 + k);
		if ((k % 3 ? shoal_seal(c, &id) : shoal_abort(c, &id)) != 0)
			_exit(102);
		done[k] = true;
		if (s % 16 == 0)
			for (unsigned i = 0; i < N; i++)
				if (!done[i])
					memset(d[i], 1, len[i]);
	}
	for (unsigned i = 0; i < N; i++) {
		if (i % 3 == 0)
			continue;
		shoal_view v;
		id_of(&id, 100 + i);
		if (shoal_get(c, &id, 1, 0, &v) != 0 || v.status != 0 ||
		    !all_bytes(v.data, v.data_size, (int)(i & 0xff)))
			_exit(103);
		shoal_release(c, &v);
	}
	/* Everything is read-only again: this write must fault. */
	((volatile uint8_t *)d[N / 2])[0] = 9;
	_exit(0);
}

static void test_windows_of_many_creates(void **state)
{
	pid_t pid;
	(void)state;

	assert_int_equal(start_daemon("64M", NULL, NULL), 0);
	if ((pid = fork_child()) == 0)
		child_many_windows(g_d.socket);
	expect_signal(pid, SIGSEGV);
	debug_check(g_d.socket);
	assert_int_equal(stop_daemon(), 0);
}

/*
 * Issue 9, defect 6: 8 bytes written over the arena header (here through a
 * writable fd asked for by hand) used to make every new client fail with
 * SHOAL_EARENA until a restart; the daemon now restores its header.
 */
static void test_header_is_repaired(void **state)
{
	struct proto_hello_reply rep;
	shoal_client *c;
	int sock;
	(void)state;

	assert_int_equal(start_daemon("16M", NULL, NULL), 0);
	int fd = raw_hello(g_d.socket, PROTO_HELLO_WRITER, &sock, &rep);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "garbage!", 8, 0), 8);
	close(fd);
	close(sock);
	assert_int_equal(shoal_connect(g_d.socket, &c), 0);
	assert_int_equal(put_fill(c, 1, 1000, 1), 0);
	shoal_disconnect(c);
	debug_check(g_d.socket);
	assert_int_equal(stop_daemon(), 0);
}

/* --- whose daemon, whose directory ------------------------------------- */

/* Skips the test unless this process can become another user. */
static void need_root(const char *what)
{
	if (geteuid() != 0) {
		fprintf(stderr, "note: skipped: %s needs root\n", what);
		skip();
	}
}

/* In a child running as the stranger: `shoal serve -s sock -m 16M`. */
static pid_t serve_as_stranger(const char *sock)
{
	pid_t pid = fork_child();

	if (pid == 0) {
		if (setgid(STRANGER) != 0 || setuid(STRANGER) != 0)
			_exit(126);
		/* Cleared by the uid change; set again so that a failed test
		 * does not leave the daemon behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execl(testd_bin(), testd_bin(), "serve", "-s", sock, "-m",
		      "16M", (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Connects until something other than "unavailable" comes back (10 s). */
static int connect_when_up(const char *sock, shoal_client **c)
{
	uint64_t end = testd_now_ms() + 10000;
	int rc;

	do {
		rc = shoal_connect(sock, c);
		if (rc != SHOAL_EUNAVAILABLE)
			return rc;
		usleep(5000);
	} while (testd_now_ms() < end);
	return rc;
}

static void stop_child(pid_t pid)
{
	kill(pid, SIGTERM);
	wait_child(pid, 10000);
}

/* Runs argv (a shoal subcommand) with stdout+stderr in out; returns the
 * exit status or -1. */
static int run_shoal(char *out, size_t size, const char *a1, const char *a2,
                     const char *a3)
{
	int p[2];
	pid_t pid;
	size_t got = 0;

	assert_int_equal(pipe(p), 0);
	pid = fork_child();
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		close(p[0]);
		execl(testd_bin(), testd_bin(), a1, a2, a3, (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (ssize_t n;
	     got + 1 < size && (n = read(p[0], out + got, size - 1 - got)) > 0;)
		got += (size_t)n;
	out[got] = '\0';
	close(p[0]);
	int st = wait_child(pid, 10000);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/*
 * Issue 9, defect 8: a daemon run by another user is refused, with a clear
 * error, before anything is sent to it.
 */
static void test_stranger_daemon_refused(void **state)
{
	char dir[] = "/tmp/shoal-trust-XXXXXX", sock[300], out[2048];
	shoal_client *c = NULL;
	(void)state;

	need_root("running a daemon as another user");
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0777), 0);
	snprintf(sock, sizeof(sock), "%s/s.sock", dir);
	pid_t pid = serve_as_stranger(sock);
	assert_int_equal(connect_when_up(sock, &c), SHOAL_EFOREIGN);
	assert_null(c);
	assert_int_equal(run_shoal(out, sizeof(out), "stats", "-s", sock), 1);
	if (!strstr(out, "another user"))
		fail_msg("shoal stats said: %s", out);
	stop_child(pid);
	unlink(sock);
	rmdir(dir);
}

/* Sets the environment so that the default socket falls back to
 * tmp/shoal-<uid>/; returns the old values to put back. */
struct env_save {
	char *tmpdir, *xdg, *sock;
};

static char *save_env(const char *name)
{
	const char *v = getenv(name);

	return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *v)
{
	if (v)
		setenv(name, v, 1);
	else
		unsetenv(name);
	free(v);
}

/*
 * Issue 9, defect 8: without XDG_RUNTIME_DIR the default socket is in a
 * directory only the user owns (mode 0700), created if missing; a directory
 * that another user made first (the hijack), one open to others, or a
 * symlink is refused by the library, `shoal serve` and the CLI alike.
 */
static void test_default_socket_in_private_dir(void **state)
{
	char tmp[] = "/tmp/shoal-trust-XXXXXX", want[340], dir[300];
	char path[340], out[2048];
	struct env_save e = {save_env("TMPDIR"), save_env("XDG_RUNTIME_DIR"),
	                     save_env("SHOAL_SOCKET")};
	struct stat st;
	shoal_client *c = NULL;
	(void)state;

	need_root("making a directory as another user");
	assert_non_null(mkdtemp(tmp));
	assert_int_equal(chmod(tmp, 01777), 0);
	setenv("TMPDIR", tmp, 1);
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("SHOAL_SOCKET");
	snprintf(dir, sizeof(dir), "%s/shoal-%u", tmp, (unsigned)getuid());
	snprintf(want, sizeof(want), "%s/shoal.sock", dir);

	/* Created private. */
	assert_int_equal(shoal_default_socket(path, sizeof(path)), 0);
	assert_string_equal(path, want);
	assert_int_equal(lstat(dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0700);
	assert_int_equal(st.st_uid, geteuid());
	/* Open to others: refused. */
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(shoal_default_socket(path, sizeof(path)),
	                 SHOAL_EUNSAFE);
	assert_string_equal(path, want); /* still given, for messages */
	assert_int_equal(rmdir(dir), 0);
	/* A symlink to a private directory: refused. */
	char real[320];
	snprintf(real, sizeof(real), "%s/real", tmp);
	assert_int_equal(mkdir(real, 0700), 0);
	assert_int_equal(symlink(real, dir), 0);
	assert_int_equal(shoal_default_socket(path, sizeof(path)),
	                 SHOAL_EUNSAFE);
	assert_int_equal(unlink(dir), 0);
	assert_int_equal(rmdir(real), 0);

	/* The hijack: the stranger makes the directory first and serves the
	 * default socket in it. */
	pid_t pid = fork_child();
	if (pid == 0) {
		if (setgid(STRANGER) != 0 || setuid(STRANGER) != 0)
			_exit(126);
		_exit(mkdir(dir, 0777) == 0 && chmod(dir, 0777) == 0 ? 0 : 1);
	}
	expect_exit(pid, 0);
	pid = serve_as_stranger(want);
	assert_int_equal(shoal_default_socket(path, sizeof(path)),
	                 SHOAL_EUNSAFE);
	assert_int_equal(shoal_connect(NULL, &c), SHOAL_EUNSAFE);
	assert_null(c);
	/* Even on the explicit path the stranger's daemon is refused. */
	assert_int_equal(connect_when_up(want, &c), SHOAL_EFOREIGN);
	assert_int_equal(run_shoal(out, sizeof(out), "stats", NULL, NULL), 1);
	if (!strstr(out, "not private"))
		fail_msg("shoal stats said: %s", out);
	assert_int_equal(run_shoal(out, sizeof(out), "serve", NULL, NULL), 1);
	if (!strstr(out, "not private") || !strstr(out, want))
		fail_msg("shoal serve said: %s", out);
	stop_child(pid);
	unlink(want);
	rmdir(dir);
	rmdir(tmp);
	restore_env("TMPDIR", e.tmpdir);
	restore_env("XDG_RUNTIME_DIR", e.xdg);
	restore_env("SHOAL_SOCKET", e.sock);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_teardown(name, teardown)
	        T(test_no_sigbus_when_backing_runs_out),
	        T(test_no_sigbus_after_trim),
	        T(test_no_sigbus_threaded_populate),
	        T(test_no_sigbus_fill_runs_out),
	        T(test_fresh_put_keeps_creator_rss),
	        T(test_put_under_a_file_size_limit),
	        T(test_client_fd_is_read_only),
	        T(test_dir_arena_cannot_be_truncated),
	        T(test_sealed_data_is_read_only),
	        T(test_windows_of_many_creates),
	        T(test_header_is_repaired),
	        T(test_stranger_daemon_refused),
	        T(test_default_socket_in_private_dir),
#undef T
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests_name("trust", tests, NULL, NULL);
}
