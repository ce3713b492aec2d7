/*
 * populate.c - reserving the pages of a new object before its creator
 * writes them, on several CPUs when the object is large.
 *
 * A create that the daemon cannot vouch for is populated with
 * MADV_POPULATE_WRITE before its pointer is handed out, so that a machine
 * that cannot back it gives SHOAL_EFULL instead of a SIGBUS later (see
 * objects.c). On fresh shared memory that costs ~2 us per 4 KiB page, paid
 * by the CPU that runs it (allocating, zeroing and inserting the page,
 * mapping it): for a 2 GiB frame, about a second, five times its copy. The
 * cost is per CPU, so a large range is split between helper threads and
 * the calling thread, each taking the next step of the range in turn.
 *
 * The helpers live only inside the call: they are created for a range of
 * at least two slices (CLIENT_POPULATE_SLICE each; small creates never
 * start a thread), joined before it returns, and run with every signal
 * blocked, so a signal reaches the caller as before. Nothing outlives the
 * call, so there is nothing to stop at fork or disconnect. A helper that
 * cannot be started leaves its share to the others. The first failure
 * stops every thread before its next step and is what the call returns.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "client_internal.h"
#include "os.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Each thread takes at least this much of a range; the range is handed out
 * in steps of this size (rounded up to whole mapping pages). */
#define CLIENT_POPULATE_SLICE (16u << 20)

/* Threads used by default: the CPUs this process may run on, at most this
 * many. Beyond a few the kernel's page allocator and the memory cgroup's
 * counters serialise them anyway. */
#define CLIENT_POPULATE_THREADS_MAX 4

/* Stack of a helper: it calls madvise and nothing else. */
#define CLIENT_POPULATE_STACK (64u << 10)

struct populate_job {
	uint8_t *base;
	uint64_t end;
	uint64_t step;
	_Atomic uint64_t next; /* start of the next step to take */
	atomic_int error;      /* first failure (-errno), or 0 */
};

/* A helper thread and the step it takes first. */
struct populate_helper {
	pthread_t thread;
	struct populate_job *job;
	uint64_t first;
};

/* MADV_POPULATE_WRITE over [p, p + len). Returns 0 or -errno. */
static int populate_span(uint8_t *p, size_t len)
{
	while (os_madvise(p, len, MADV_POPULATE_WRITE) < 0)
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	return 0;
}

/* Populates the step at off unless a thread has failed already. */
static void job_step(struct populate_job *j, uint64_t off)
{
	if (off >= j->end || atomic_load(&j->error) != 0)
		return;
	uint64_t len = j->end - off < j->step ? j->end - off : j->step;
	int rc = populate_span(j->base + off, (size_t)len);
	if (rc < 0) {
		int none = 0;
		atomic_compare_exchange_strong(&j->error, &none, rc);
	}
}

/* Takes the steps nobody has taken until none is left or one failed. */
static void job_rest(struct populate_job *j)
{
	while (atomic_load(&j->error) == 0) {
		uint64_t off = atomic_fetch_add(&j->next, j->step);
		if (off >= j->end)
			break;
		job_step(j, off);
	}
}

/* A helper's first step is its own, so that every helper started does its
 * share even when the caller is scheduled first; then it takes what is
 * left. */
static void *helper_run(void *arg)
{
	struct populate_helper *h = arg;

	job_step(h->job, h->first);
	job_rest(h->job);
	return NULL;
}

/* The CPUs this process may run on (at least 1). */
static unsigned cpus_allowed(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return (unsigned)CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static unsigned threads_for(const shoal_client *c, uint64_t len)
{
	unsigned want = c->populate_threads;

	if (want == 0) {
		want = cpus_allowed();
		if (want > CLIENT_POPULATE_THREADS_MAX)
			want = CLIENT_POPULATE_THREADS_MAX;
	}
	if (want > CLIENT_POPULATE_THREADS_LIMIT)
		want = CLIENT_POPULATE_THREADS_LIMIT;
	uint64_t slices = len / CLIENT_POPULATE_SLICE;
	return slices < want ? (unsigned)(slices ? slices : 1) : want;
}

int client_populate(shoal_client *c, uint64_t start, uint64_t end)
{
	uint64_t wp = c->window_page;
	struct populate_job j = {.base = c->base, .end = end};
	struct populate_helper helper[CLIENT_POPULATE_THREADS_LIMIT];
	unsigned threads = threads_for(c, end - start), started = 0;

	if (end <= start)
		return 0;
	if (threads < 2)
		return populate_span(c->base + start, (size_t)(end - start));
	/* Step k (k < threads) is the first of thread k, the caller's 0. */
	j.step = (CLIENT_POPULATE_SLICE + wp - 1) / wp * wp;
	atomic_init(&j.next, start + threads * j.step);
	atomic_init(&j.error, 0);

	pthread_attr_t attr;
	sigset_t all, old;
	bool attr_ok = pthread_attr_init(&attr) == 0;
	if (attr_ok)
		pthread_attr_setstacksize(&attr, CLIENT_POPULATE_STACK);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	while (started + 1 < threads) {
		struct populate_helper *h = &helper[started];
		h->job = &j;
		h->first = start + (started + 1) * j.step;
		if (pthread_create(&h->thread, attr_ok ? &attr : NULL,
		                   helper_run, h) != 0)
			break; /* the caller takes its first step */
		started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (attr_ok)
		pthread_attr_destroy(&attr);
	job_step(&j, start);
	for (unsigned k = started + 1; k < threads; k++)
		job_step(&j, start + k * j.step);
	job_rest(&j);
	for (unsigned i = 0; i < started; i++)
		pthread_join(helper[i].thread, NULL);
	return atomic_load(&j.error);
}

SHOAL_API int shoal_set_populate_threads(shoal_client *c, unsigned threads)
{
	if (!c || threads > CLIENT_POPULATE_THREADS_LIMIT)
		return SHOAL_EINVAL;
	c->populate_threads = threads;
	return 0;
}
