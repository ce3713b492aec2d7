/*
 * _shoal_spawn.c - starting a detached daemon when none serves a socket.
 *
 * shoal.connect() calls this when connecting failed with "unavailable".
 * Many processes may do so at once (every gunicorn worker starting), and
 * exactly one daemon must come up. So:
 *
 *   1. take an exclusive flock on "<socket>.lock" (created 0600, never
 *      removed: removing a lock file races with its next user), polling
 *      with a deadline rather than blocking without one;
 *   2. under the lock, try to connect again - an earlier holder may have
 *      started the daemon meanwhile;
 *   3. if still nobody serves the socket, start `shoal serve -s SOCKET
 *      ARGS...` detached: fork, setsid, fork again (the daemon is then
 *      nobody's child - it outlives the caller and never becomes its
 *      zombie), stdin from /dev/null, stdout and stderr appended to
 *      "<socket>.log", working directory /, signal mask and the dispositions
 *      Python changed reset, every inherited fd above 2 closed at exec;
 *   4. wait, still under the lock, until a connect succeeds, the daemon
 *      exits (its pid came back through a pipe) or the deadline passes;
 *      the error then quotes the end of the log (e.g. the daemon's own
 *      explanation that -m does not fit in /dev/shm).
 *
 * Between fork and exec the children call only async-signal-safe
 * functions: the parent may have other threads, whose locks the children
 * inherit in whatever state they were.
 */
#include "_shoal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* _Fork (glibc 2.34) forks without running pthread_atfork handlers, which
 * may take locks that other threads of the parent held. */
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 34)
#define spawn_fork _Fork
#else
#define spawn_fork fork
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

/* Longest log tail quoted in an error. */
#define LOG_TAIL 2048

/* Messages from the children on the status pipe. */
enum { MSG_PID = 1, MSG_EXEC_ERRNO = 2 };

struct spawn_msg {
	int kind;
	int value;
};

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Takes an exclusive flock on fd, polling until deadline. Returns 0 or
 * -errno (-ETIMEDOUT at the deadline). GIL released by the caller. */
static int lock_until(int fd, int64_t deadline)
{
	for (;;) {
		if (flock(fd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR)
			return -errno;
		if (pyshoal_now_ms() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(10);
	}
}

/* Whether a daemon answers on path now. */
static int served(const char *path)
{
	shoal_client *c = NULL;
	int rc = shoal_connect(path, &c);

	if (rc == 0)
		shoal_disconnect(c);
	return rc == 0;
}

/* Marks every fd above 2 close-on-exec (close_range when the kernel has it,
 * else a bounded loop). Async-signal-safe. */
static void cloexec_from_3(void)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, 3u, ~0u, CLOSE_RANGE_CLOEXEC) == 0)
		return;
#endif
	for (int fd = 3; fd < 65536; fd++) {
		int fl = fcntl(fd, F_GETFD);

		if (fl >= 0)
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
}

/*
 * The grandchild: becomes the daemon. Only async-signal-safe calls.
 * Never returns.
 */
static void exec_daemon(const char *binary, char *const argv[], int devnull,
                        int logfd, int wfd)
{
	static const int sigs[] = {SIGPIPE, SIGINT,  SIGTERM, SIGHUP,
	                           SIGQUIT, SIGXFSZ, SIGCHLD};
	struct spawn_msg m = {MSG_EXEC_ERRNO, 0};
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], SIG_DFL);
	if (dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
		goto fail;
	if (chdir("/") < 0)
		goto fail;
	cloexec_from_3();
	execv(binary, argv);
fail:
	m.value = errno;
	(void)!write(wfd, &m, sizeof(m));
	_exit(127);
}

/*
 * Forks twice; the grandchild execs the daemon. Returns the pid of the
 * daemon, or -errno. Collects the intermediate child. Called with the GIL
 * held, like os.fork, but without Python's fork hooks: the children never
 * run Python code, only async-signal-safe calls up to the exec.
 */
static pid_t spawn_detached(const char *binary, char *const argv[], int devnull,
                            int logfd, int *exec_errno)
{
	struct spawn_msg m;
	int p[2];
	pid_t mid, daemon_pid = -1;
	ssize_t n;
	int status;

	*exec_errno = 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	mid = spawn_fork();
	if (mid < 0) {
		int e = errno;

		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (mid == 0) {
		pid_t d;

		close(p[0]);
		setsid();
		d = spawn_fork();
		if (d == 0)
			exec_daemon(binary, argv, devnull, logfd, p[1]);
		m.kind = MSG_PID;
		m.value = d < 0 ? -errno : (int)d;
		(void)!write(p[1], &m, sizeof(m));
		_exit(0);
	}
	close(p[1]);
	while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
		;
	/* Read until every write end is closed: the daemon's closes at exec. */
	while ((n = read(p[0], &m, sizeof(m))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (n != sizeof(m))
			break;
		if (m.kind == MSG_PID)
			daemon_pid = m.value;
		else if (m.kind == MSG_EXEC_ERRNO)
			*exec_errno = m.value;
	}
	close(p[0]);
	if (daemon_pid < 0)
		return daemon_pid == -1 ? -ECHILD : daemon_pid;
	return daemon_pid;
}

/* Reads the last LOG_TAIL bytes of the log into buf (NUL-terminated). */
static void log_tail(int logfd, char *buf, size_t size)
{
	struct stat st;
	off_t off = 0;
	ssize_t n;

	buf[0] = 0;
	if (fstat(logfd, &st) < 0)
		return;
	if (st.st_size > (off_t)(size - 1))
		off = st.st_size - (off_t)(size - 1);
	n = pread(logfd, buf, size - 1, off);
	if (n < 0)
		n = 0;
	buf[n] = 0;
}

/* Builds argv: binary serve -s path args... (PyMem; strings borrowed from
 * the Python objects, which outlive the call). */
static char **build_argv(const char *binary, PyObject *args, const char *path,
                         PyObject **seq_out)
{
	PyObject *seq = PySequence_Fast(args, "daemon args must be a sequence");
	Py_ssize_t n;
	char **argv;

	*seq_out = seq;
	if (!seq)
		return NULL;
	n = PySequence_Fast_GET_SIZE(seq);
	argv = PyMem_Calloc((size_t)n + 5, sizeof(char *));
	if (!argv) {
		PyErr_NoMemory();
		return NULL;
	}
	argv[0] = (char *)binary;
	argv[1] = "serve";
	argv[2] = "-s";
	argv[3] = (char *)path;
	for (Py_ssize_t i = 0; i < n; i++) {
		argv[4 + i] = (char *)PyUnicode_AsUTF8(
		        PySequence_Fast_GET_ITEM(seq, i));
		if (!argv[4 + i]) {
			PyMem_Free(argv);
			return NULL;
		}
	}
	return argv;
}

/* Opens "<path><suffix>" with flags, mode 0600, close-on-exec. */
static int open_beside(const char *path, const char *suffix, int flags)
{
	char name[4200];

	if ((size_t)snprintf(name, sizeof(name), "%s%s", path, suffix) >=
	    sizeof(name)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return open(name, flags | O_CLOEXEC, 0600);
}

int pyspawn_ensure(pyshoal_state *st, const char *binary, PyObject *args,
                   const char *path, int64_t timeout_ms)
{
	int64_t deadline = pyshoal_now_ms() + timeout_ms;
	int lockfd = -1, logfd = -1, devnull = -1, exec_errno = 0;
	PyObject *seq = NULL;
	char **argv = NULL;
	PyThreadState *ts;
	pid_t pid = 0;
	int rc = 0, up = 0, started = 0;
	char tail[LOG_TAIL];

	tail[0] = 0;
	argv = build_argv(binary, args, path, &seq);
	if (!argv)
		goto out_py;
	lockfd = open_beside(path, ".lock", O_RDWR | O_CREAT);
	if (lockfd < 0) {
		PyErr_Format(
		        st->store_unavailable,
		        "cannot start a shoal daemon: lock file %s.lock: %s",
		        path, strerror(errno));
		goto out_py;
	}
	ts = PyEval_SaveThread();
	rc = lock_until(lockfd, deadline);
	if (rc == 0)
		up = served(path);
	PyEval_RestoreThread(ts);
	if (rc < 0) {
		PyErr_Format(st->store_unavailable,
		             "cannot start a shoal daemon: lock %s.lock: %s",
		             path, strerror(-rc));
		goto out_py;
	}
	if (up)
		goto out_py;

	logfd = open_beside(path, ".log", O_WRONLY | O_CREAT | O_APPEND);
	devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (logfd < 0 || devnull < 0) {
		PyErr_Format(st->store_unavailable,
		             "cannot start a shoal daemon: %s.log: %s", path,
		             strerror(errno));
		goto out_py;
	}
	pid = spawn_detached(binary, argv, devnull, logfd, &exec_errno);
	if (pid < 0 || exec_errno) {
		PyErr_Format(st->store_unavailable,
		             "cannot start the shoal daemon %s: %s "
		             "(install shoal, or set $SHOAL_BIN)",
		             binary, strerror(exec_errno ? exec_errno : -pid));
		goto out_py;
	}
	started = 1;
	ts = PyEval_SaveThread();
	while (!(up = served(path)) && pyshoal_now_ms() < deadline) {
		if (kill(pid, 0) < 0 && errno == ESRCH)
			break; /* it exited: its log says why */
		sleep_ms(10);
	}
	PyEval_RestoreThread(ts);
	if (!up) {
		int lfd = open_beside(path, ".log", O_RDONLY);

		if (lfd >= 0) {
			log_tail(lfd, tail, sizeof(tail));
			close(lfd);
		}
		PyErr_Format(st->store_unavailable,
		             "started `%s serve -s %s` (pid %d) but it did not "
		             "come up within %lld ms; its log %s.log ends "
		             "with:\n%s",
		             binary, path, (int)pid, (long long)timeout_ms,
		             path, tail);
		started = -1;
	}
out_py:
	if (lockfd >= 0)
		close(lockfd); /* drops the flock */
	if (logfd >= 0)
		close(logfd);
	if (devnull >= 0)
		close(devnull);
	PyMem_Free(argv);
	Py_XDECREF(seq);
	if (PyErr_Occurred())
		return -1;
	return started;
}

PyObject *pyspawn_ensure_daemon(PyObject *module, PyObject *args,
                                PyObject *kwargs)
{
	static char *kwlist[] = {"binary", "path", "args", "timeout", NULL};
	pyshoal_state *st = pyshoal_state_of_module(module);
	PyObject *bin = NULL, *path = NULL, *dargs = NULL;
	double timeout = 10.0;
	int rc;

	if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&O&|Od:ensure_daemon",
	                                 kwlist, PyUnicode_FSConverter, &bin,
	                                 PyUnicode_FSConverter, &path, &dargs,
	                                 &timeout))
		goto fail;
	if (!dargs)
		dargs = PyTuple_New(0);
	else
		Py_INCREF(dargs);
	if (!dargs)
		goto fail;
	rc = pyspawn_ensure(st, PyBytes_AS_STRING(bin), dargs,
	                    PyBytes_AS_STRING(path), (int64_t)(timeout * 1000));
	Py_DECREF(dargs);
	Py_DECREF(bin);
	Py_DECREF(path);
	if (rc < 0)
		return NULL;
	return PyBool_FromLong(rc > 0);
fail:
	Py_XDECREF(bin);
	Py_XDECREF(path);
	return NULL;
}
