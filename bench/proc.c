/*
 * proc.c - the processes of a benchmark run: the daemon under test, helper
 * children, and where each of them runs.
 *
 * The daemon is `<shoal> serve -s <tmpdir>/sock -m <size>` with its output
 * in <tmpdir>/daemon.log (shown if it fails to start). Start-up waits for a
 * successful shoal_connect() with a deadline and notices a daemon that
 * exits early. An exit handler and a handler of SIGINT, SIGTERM and SIGHUP,
 * acting only in the bench process itself, stop the daemon (SIGTERM, then
 * SIGKILL after a deadline) and remove the directory, so a failing or
 * interrupted run leaves nothing behind. Every child also gets
 * PR_SET_PDEATHSIG, so none outlives a bench that is killed.
 *
 * Pinning uses sched_setaffinity on every thread of a process (a daemon
 * may run helper threads). "cpu -1" means the CPUs the bench was started
 * with, recorded on first use.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define START_DEADLINE_MS 10000
#define STOP_DEADLINE_MS  5000

static cpu_set_t initial_cpus;
static bool have_initial_cpus;

static struct {
	pid_t pid;
	pid_t owner; /* the bench process; children never stop the daemon */
	char dir[64];
	char sock[128];
	char log[128];
} daemon_proc;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static void save_initial_cpus(void)
{
	if (have_initial_cpus)
		return;
	if (sched_getaffinity(0, sizeof(initial_cpus), &initial_cpus) < 0)
		bench_fail("sched_getaffinity: %s", strerror(errno));
	have_initial_cpus = true;
}

int bench_cpus(int *out, int max)
{
	int n = 0;

	save_initial_cpus();
	for (int cpu = 0; cpu < CPU_SETSIZE && n < max; cpu++)
		if (CPU_ISSET(cpu, &initial_cpus))
			out[n++] = cpu;
	return n;
}

static void pin_task(pid_t tid, int cpu)
{
	cpu_set_t set;

	if (cpu < 0) {
		set = initial_cpus;
	} else {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
	}
	/* ESRCH: the thread has just exited, nothing to pin. */
	if (sched_setaffinity(tid, sizeof(set), &set) < 0 && errno != ESRCH)
		bench_fail("sched_setaffinity(%d, cpu %d): %s", (int)tid, cpu,
		           strerror(errno));
}

void bench_pin(pid_t pid, int cpu)
{
	char path[64];
	struct dirent *e;
	DIR *d;

	save_initial_cpus();
	if (pid == 0) {
		pin_task(0, cpu);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		bench_fail("%s: %s", path, strerror(errno));
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			pin_task((pid_t)atoi(e->d_name), cpu);
	closedir(d);
}

static void show_log(void)
{
	char buf[4096];
	FILE *f = fopen(daemon_proc.log, "r");
	size_t n;

	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	fprintf(stderr, "--- daemon log ---\n%s------------------\n", buf);
}

/* SIGINT, SIGTERM, SIGHUP: the same clean-up with async-signal-safe calls
 * only, then die of the signal. */
static void on_signal(int sig)
{
	if (getpid() == daemon_proc.owner) {
		if (daemon_proc.pid > 0) {
			kill(daemon_proc.pid, SIGTERM);
			waitpid(daemon_proc.pid, NULL, 0);
		}
		unlink(daemon_proc.sock);
		unlink(daemon_proc.log);
		rmdir(daemon_proc.dir);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void at_exit_stop(void)
{
	if (getpid() == daemon_proc.owner)
		bench_daemon_stop();
}

pid_t bench_daemon_start(const char *shoal_path, const char *memory)
{
	uint64_t deadline;
	pid_t pid;
	int status;

	snprintf(daemon_proc.dir, sizeof(daemon_proc.dir),
	         "/tmp/shoal-bench-XXXXXX");
	if (!mkdtemp(daemon_proc.dir))
		bench_fail("mkdtemp: %s", strerror(errno));
	snprintf(daemon_proc.sock, sizeof(daemon_proc.sock), "%s/sock",
	         daemon_proc.dir);
	snprintf(daemon_proc.log, sizeof(daemon_proc.log), "%s/daemon.log",
	         daemon_proc.dir);
	daemon_proc.owner = getpid();
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bench_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		int fd = open(daemon_proc.log, O_WRONLY | O_CREAT | O_TRUNC,
		              0600);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != daemon_proc.owner)
			_exit(1);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(shoal_path, shoal_path, "serve", "-s", daemon_proc.sock,
		      "-m", memory, (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", shoal_path, strerror(errno));
		_exit(127);
	}
	daemon_proc.pid = pid;
	atexit(at_exit_stop);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	deadline = bench_now_ns() + START_DEADLINE_MS * 1000000ull;
	for (;;) {
		shoal_client *c;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			daemon_proc.pid = 0;
			show_log();
			bench_fail("the daemon exited during start-up (%s %d)",
			           WIFEXITED(status) ? "exit status" : "signal",
			           WIFEXITED(status) ? WEXITSTATUS(status)
			                             : WTERMSIG(status));
		}
		if (shoal_connect(daemon_proc.sock, &c) == 0) {
			shoal_disconnect(c);
			return pid;
		}
		if (bench_now_ns() > deadline) {
			show_log();
			bench_fail("the daemon did not accept connections "
			           "within %d ms",
			           START_DEADLINE_MS);
		}
		sleep_ms(5);
	}
}

const char *bench_daemon_socket(void)
{
	return daemon_proc.sock;
}

void bench_daemon_stop(void)
{
	pid_t pid = daemon_proc.pid;
	uint64_t deadline = bench_now_ns() + STOP_DEADLINE_MS * 1000000ull;
	int status;

	daemon_proc.pid = 0;
	if (pid > 0) {
		kill(pid, SIGTERM);
		while (waitpid(pid, &status, WNOHANG) == 0) {
			if (bench_now_ns() > deadline) {
				fprintf(stderr,
				        "shoal-bench: the daemon ignored "
				        "SIGTERM; killing it\n");
				kill(pid, SIGKILL);
				waitpid(pid, &status, 0);
				break;
			}
			sleep_ms(2);
		}
	}
	/* Also after a failed start, when there is no daemon to stop. */
	if (daemon_proc.dir[0]) {
		unlink(daemon_proc.sock);
		unlink(daemon_proc.log);
		rmdir(daemon_proc.dir);
		daemon_proc.dir[0] = '\0';
	}
}

pid_t bench_spawn(int cpu, int (*fn)(void *), void *arg)
{
	pid_t parent = getpid();
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		bench_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		bench_pin(0, cpu);
		_exit(fn(arg));
	}
	return pid;
}

void bench_reap(pid_t pid, const char *what)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			bench_fail("waitpid: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		bench_fail("%s (pid %d) failed: status 0x%x", what, (int)pid,
		           status);
}
