/*
 * test_fuzz_replay.c - replays the fuzz corpora with the normal compiler, so
 * that `make test` (plain and ASan+UBSan) runs every seed and every crasher
 * the fuzzer ever found, without clang.
 *
 * The harnesses are included as source: each one's LLVMFuzzerTestOneInput
 * is renamed, and FUZZ_FAIL (which the fuzz build makes an abort) becomes a
 * cmocka failure that names the input. Inputs are read from
 * tests/fuzz/corpus/<harness>/ relative to the repository root (the tests'
 * working directory), or from $SHOAL_FUZZ_CORPUS when set.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static const char *replay_input; /* the file being replayed */

static void replay_fail(const char *fmt, ...)
        __attribute__((format(printf, 1, 2)));

static void replay_fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fail_msg("%s: %s", replay_input, msg);
}

#define FUZZ_FAIL(...) replay_fail(__VA_ARGS__)

#define LLVMFuzzerTestOneInput fuzz_protocol_input
#include "../fuzz/fuzz_protocol.c"
#undef LLVMFuzzerTestOneInput

#define LLVMFuzzerTestOneInput fuzz_daemon_input
#include "../fuzz/fuzz_daemon.c"
#undef LLVMFuzzerTestOneInput

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads a whole file into a buffer of exactly its size. */
static uint8_t *read_input(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc(n ? (size_t)n : 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*size = (size_t)n;
	return buf;
}

/* Runs fn over every file in the harness's corpus; returns their number. */
static size_t replay(const char *harness,
                     int (*fn)(const uint8_t *data, size_t size))
{
	const char *root = getenv("SHOAL_FUZZ_CORPUS");
	char dir[512], path[1024];
	char **names = NULL;
	size_t count = 0, cap = 0;
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%s",
	         root && *root ? root : "tests/fuzz/corpus", harness);
	d = opendir(dir);
	if (!d)
		fail_msg("cannot open the corpus %s (run from the repository "
		         "root)",
		         dir);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			assert_non_null(names);
		}
		names[count] = strdup(e->d_name);
		assert_non_null(names[count++]);
	}
	closedir(d);
	qsort(names, count, sizeof(*names), by_name);
	for (size_t i = 0; i < count; i++) {
		size_t size;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		uint8_t *data = read_input(path, &size);
		replay_input = path;
		assert_int_equal(fn(data, size), 0);
		free(data);
		free(names[i]);
	}
	free(names);
	print_message("replayed %zu inputs of %s\n", count, dir);
	return count;
}

static void test_replay_protocol(void **state)
{
	(void)state;
	/* Fewer files than the seeds means the corpus is missing. */
	assert_true(replay("fuzz_protocol", fuzz_protocol_input) >= 17);
}

static void test_replay_daemon(void **state)
{
	(void)state;
	assert_true(replay("fuzz_daemon", fuzz_daemon_input) >= 41);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_replay_protocol),
	        cmocka_unit_test(test_replay_daemon),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
