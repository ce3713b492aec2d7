/*
 * runner.c - test support: every cmocka test in its own process, with its
 * own deadline, as libuv's test/runner.c does, so that a hang or a crash
 * names its test and does not take the rest of the group with it.
 *
 * Each test binary's main() calls cmocka_run_group_tests(), which is a
 * macro for _cmocka_run_group_tests(). This file defines that function in
 * the test binary itself, so the binary's calls come here (the executable's
 * definition comes first in symbol lookup); the real one in libcmocka is
 * reached through dlsym(RTLD_NEXT). No test file needs to change.
 *
 *   - Without SHOAL_TEST_ONLY in the environment (the parent): runs the
 *     binary again for each test, with SHOAL_TEST_ONLY=<name>, in its own
 *     process group, and waits at most SHOAL_TEST_TIMEOUT seconds (default
 *     300). A child that runs out of time is killed with its group (the
 *     daemons it started included); one that dies of a signal before
 *     cmocka could count it is reported. Either way the parent prints
 *     cmocka's "[  FAILED  ] 1 test(s)" line for it, so tests/run.sh counts
 *     it, and names the test. Returns the number of failed tests.
 *   - With SHOAL_TEST_ONLY=name (a child): runs that one test of the
 *     group, with the group's setup and teardown, in this process.
 *   - SHOAL_TEST_INPROC=1 runs the whole group in one process as cmocka
 *     would (for a debugger).
 */
#include <dlfcn.h>
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

typedef int run_fn(const char *group_name, const struct CMUnitTest *tests,
                   size_t num_tests, CMFixtureFunction group_setup,
                   CMFixtureFunction group_teardown);

static run_fn *real_run(void)
{
	run_fn *fn = (run_fn *)dlsym(RTLD_NEXT, "_cmocka_run_group_tests");

	if (!fn) {
		fprintf(stderr, "runner: libcmocka's _cmocka_run_group_tests "
		                "not found\n");
		exit(2);
	}
	return fn;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs test i in a child; returns 0 if it passed, 1 if it failed. */
static int run_child(const struct CMUnitTest *t, unsigned timeout_s)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid < 0) {
		printf("[  FAILED  ] 1 test(s): %s (cannot fork: %s)\n",
		       t->name, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		setpgid(0, 0);
		setenv("SHOAL_TEST_ONLY", t->name, 1);
		char *argv[] = {"test", NULL};
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	setpgid(pid, pid);
	uint64_t end = now_ms() + (uint64_t)timeout_s * 1000u;
	int status;
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR) {
			printf("[  FAILED  ] 1 test(s): %s (lost: %s)\n",
			       t->name, strerror(errno));
			return 1;
		}
		if (now_ms() >= end) {
			kill(-pid, SIGKILL);
			waitpid(pid, &status, 0);
			printf("[  FAILED  ] 1 test(s), listed below:\n"
			       "[  FAILED  ] %s (timed out after %u s)\n",
			       t->name, timeout_s);
			return 1;
		}
		usleep(2000);
	}
	/* Whatever the test left behind (a daemon it started) goes too. */
	kill(-pid, SIGKILL);
	if (WIFSIGNALED(status)) {
		printf("[  FAILED  ] 1 test(s), listed below:\n"
		       "[  FAILED  ] %s (killed by signal %d)\n",
		       t->name, WTERMSIG(status));
		return 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
		printf("[  FAILED  ] 1 test(s): %s (cannot run itself)\n",
		       t->name);
		return 1;
	}
	/* cmocka counted it (its exit status is its number of failures). */
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

int _cmocka_run_group_tests(const char *group_name,
                            const struct CMUnitTest *tests, size_t num_tests,
                            CMFixtureFunction group_setup,
                            CMFixtureFunction group_teardown);

int _cmocka_run_group_tests(const char *group_name,
                            const struct CMUnitTest *tests, size_t num_tests,
                            CMFixtureFunction group_setup,
                            CMFixtureFunction group_teardown)
{
	const char *only = getenv("SHOAL_TEST_ONLY");
	const char *inproc = getenv("SHOAL_TEST_INPROC");
	const char *t = getenv("SHOAL_TEST_TIMEOUT");
	unsigned timeout_s = t && atoi(t) > 0 ? (unsigned)atoi(t) : 300;
	int failed = 0;

	if (inproc && *inproc == '1')
		return real_run()(group_name, tests, num_tests, group_setup,
		                  group_teardown);
	if (only) {
		for (size_t i = 0; i < num_tests; i++)
			if (strcmp(tests[i].name, only) == 0)
				return real_run()(group_name, &tests[i], 1,
				                  group_setup, group_teardown);
		printf("[  FAILED  ] 1 test(s): no test %s\n", only);
		return 1;
	}
	printf("[==========] %s: %zu test(s), one process each, %u s each at "
	       "most\n",
	       group_name, num_tests, timeout_s);
	for (size_t i = 0; i < num_tests; i++)
		failed += run_child(&tests[i], timeout_s);
	printf("[==========] %s: %zu test(s), %d failed\n", group_name,
	       num_tests, failed);
	return failed;
}
