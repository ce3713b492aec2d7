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
 *
 * shoal_create_from() also copies the object's bytes in the same call:
 * the copy runs behind the reservation instead of after it. The steps are
 * taken in address order; each piece of a segment waits until every step
 * below its end is done (the count of leading steps done, under a mutex),
 * and the calling thread takes the next step itself rather than sleep. So
 * the copy, which is bound by memory bandwidth, overlaps the reservation,
 * which is bound by the kernel's work per page.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <stdatomic.h>
#include <sys/mman.h>

#include "client_internal.h"
#include "os.h"

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Each thread takes at least this much of a range. */
#define CLIENT_POPULATE_SLICE (16u << 20)

/* The range is handed out in steps of this size (rounded up to whole
 * mapping pages); a copy waits for at most one step ahead of it. */
#define CLIENT_POPULATE_STEP (8u << 20)

/* Threads used by default: the CPUs this process may run on, at most this
 * many, so that a large machine does not start dozens per put (measured on
 * 2 CPUs only: there the kernel's cost per page is the same with 2 threads
 * as with 1, so 2 take half the time). */
#define CLIENT_POPULATE_THREADS_MAX 4

/* Stack of a helper: it calls madvise, memcpy and pwrite, nothing more. */
#define CLIENT_POPULATE_STACK (64u << 10)

struct populate_job {
	uint8_t *base;
	uint64_t start, end;
	uint64_t step;
	_Atomic uint64_t next; /* start of the next step to take */
	atomic_int error;      /* first failure (-errno), or 0 */
	/* With a copy behind the reservation: which steps are done, how many
	 * leading ones (lock), and the condition a waiting copy sleeps on. */
	uint8_t *done;
	uint64_t prefix;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

/* A helper thread and the step it takes first. */
struct populate_helper {
	pthread_t thread;
	struct populate_job *job;
	uint64_t first;
};

int client_populate_span(uint8_t *p, size_t len)
{
	while (os_madvise(p, len, MADV_POPULATE_WRITE) < 0)
		if (errno != EINTR && errno != EAGAIN)
			return -errno;
	return 0;
}

/* Populates the step at off unless a thread has failed already, and tells
 * a waiting copy. */
static void job_step(struct populate_job *j, uint64_t off)
{
	if (off >= j->end || atomic_load(&j->error) != 0)
		return;
	uint64_t len = j->end - off < j->step ? j->end - off : j->step;
	int rc = client_populate_span(j->base + off, (size_t)len);
	if (rc < 0) {
		int none = 0;
		atomic_compare_exchange_strong(&j->error, &none, rc);
	}
	if (!j->done)
		return;
	uint64_t nsteps = (j->end - j->start + j->step - 1) / j->step;
	pthread_mutex_lock(&j->lock);
	j->done[(off - j->start) / j->step] = 1;
	while (j->prefix < nsteps && j->done[j->prefix])
		j->prefix++;
	pthread_cond_broadcast(&j->cond);
	pthread_mutex_unlock(&j->lock);
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

/* Waits until [start, upto) is populated, taking steps itself while any
 * is left. Returns 0 or the job's failure. */
static int job_wait(struct populate_job *j, uint64_t upto)
{
	uint64_t need = (upto - j->start + j->step - 1) / j->step;

	for (;;) {
		pthread_mutex_lock(&j->lock);
		bool ready = j->prefix >= need;
		pthread_mutex_unlock(&j->lock);
		int err = atomic_load(&j->error);
		if (err)
			return err;
		if (ready)
			return 0;
		uint64_t off = atomic_fetch_add(&j->next, j->step);
		if (off < j->end) {
			job_step(j, off);
			continue;
		}
		/* Every step is taken: wait for those in flight. */
		pthread_mutex_lock(&j->lock);
		while (atomic_load(&j->error) == 0 && j->prefix < need)
			pthread_cond_wait(&j->cond, &j->lock);
		pthread_mutex_unlock(&j->lock);
	}
}

/* The rebasing copies: restrict and a local addend let the compiler keep
 * it in a register (a store through dst could otherwise change s->add, so
 * it was loaded again for every integer: a third of a frame put's CPU time
 * for its string offsets). */
static void add32(uint8_t *restrict dst, const uint8_t *restrict src,
                  uint64_t len, uint32_t add)
{
	for (uint64_t i = 0; i < len; i += 4) {
		uint32_t v;
		memcpy(&v, src + i, 4);
		v += add;
		memcpy(dst + i, &v, 4);
	}
}

static void add64(uint8_t *restrict dst, const uint8_t *restrict src,
                  uint64_t len, uint64_t add)
{
	for (uint64_t i = 0; i < len; i += 8) {
		uint64_t v;
		memcpy(&v, src + i, 8);
		v += add;
		memcpy(dst + i, &v, 8);
	}
}

void client_copy_piece(uint8_t *dst, const shoal_segment *s, uint64_t from,
                       uint64_t len)
{
	const uint8_t *src = (const uint8_t *)s->src + from;

	if (s->width == 4)
		add32(dst, src, len, (uint32_t)s->add);
	else if (s->width == 8)
		add64(dst, src, len, (uint64_t)s->add);
	else
		memcpy(dst, src, len);
}

/* Copies the segments into the object that starts at mapping offset
 * obj_off, each piece after its pages are reserved when j is given. Returns
 * 0 or j's failure. */
static int copy_segments(uint8_t *base, uint64_t obj_off,
                         const shoal_segment *segs, size_t n,
                         struct populate_job *j)
{
	for (size_t i = 0; i < n; i++) {
		const shoal_segment *s = &segs[i];
		uint64_t piece = CLIENT_POPULATE_STEP;
		for (uint64_t from = 0; from < s->size; from += piece) {
			uint64_t len =
			        s->size - from < piece ? s->size - from : piece;
			uint64_t at = obj_off + s->offset + from;
			int rc = j ? job_wait(j, at + len) : 0;
			if (rc < 0)
				return rc;
			client_copy_piece(base + at, s, from, len);
		}
	}
	return 0;
}

void client_copy_segments(const struct client_map *m, uint64_t obj_off,
                          const shoal_segment *segs, size_t n)
{
	copy_segments(m->base, obj_off, segs, n, NULL);
}

int client_check_segments(uint64_t size, const shoal_segment *segs, size_t n)
{
	if (n && !segs)
		return SHOAL_EINVAL;
	for (size_t i = 0; i < n; i++) {
		const shoal_segment *s = &segs[i];
		if (s->offset > size || s->size > size - s->offset ||
		    (s->size && !s->src) ||
		    (s->width != 0 && s->width != 4 && s->width != 8) ||
		    (s->width && s->size % s->width))
			return SHOAL_EINVAL;
	}
	return 0;
}

int client_thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, old;
	bool attr_ok = pthread_attr_init(&attr) == 0;

	if (attr_ok)
		pthread_attr_setstacksize(&attr, CLIENT_POPULATE_STACK);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(t, attr_ok ? &attr : NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (attr_ok)
		pthread_attr_destroy(&attr);
	return rc;
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

/* The default count: SHOAL_POPULATE_THREADS (1 to the limit) if set, else
 * the CPUs allowed, at most CLIENT_POPULATE_THREADS_MAX. */
static unsigned default_threads(void)
{
	const char *env = getenv("SHOAL_POPULATE_THREADS");

	if (env && *env) {
		char *end;
		unsigned long n = strtoul(env, &end, 10);
		if (*end == '\0' && n >= 1 &&
		    n <= CLIENT_POPULATE_THREADS_LIMIT)
			return (unsigned)n;
	}
	unsigned n = cpus_allowed();
	return n < CLIENT_POPULATE_THREADS_MAX ? n
	                                       : CLIENT_POPULATE_THREADS_MAX;
}

unsigned client_populate_threads_for(const shoal_client *c, uint64_t len)
{
	if (len < 2ull * CLIENT_POPULATE_SLICE)
		return 1; /* small: no system call to count CPUs either */
	unsigned want =
	        c->populate_threads ? c->populate_threads : default_threads();
	uint64_t slices = len / CLIENT_POPULATE_SLICE;
	return slices < want ? (unsigned)slices : want;
}

int client_populate(shoal_client *c, const struct client_map *m, uint64_t start,
                    uint64_t end, uint64_t obj_off, const shoal_segment *segs,
                    size_t nsegs, bool *copied)
{
	uint64_t wp = m->window_page;
	struct populate_job j = {.base = m->base, .start = start, .end = end};
	struct populate_helper helper[CLIENT_POPULATE_THREADS_LIMIT];
	unsigned threads = client_populate_threads_for(c, end - start),
	         started = 0;

	*copied = false;
	if (end <= start)
		return 0;
	if (threads < 2 && nsegs == 0)
		return client_populate_span(m->base + start,
		                            (size_t)(end - start));
	/* Step k (k < threads) is the first of thread k, the caller's 0. */
	j.step = (CLIENT_POPULATE_STEP + wp - 1) / wp * wp;
	atomic_init(&j.next, start + threads * j.step);
	atomic_init(&j.error, 0);
	if (end - start <= j.step)
		nsegs = 0; /* one step: nothing to overlap */
	if (threads < 2 && nsegs == 0)
		return client_populate_span(m->base + start,
		                            (size_t)(end - start));
	if (nsegs) {
		uint64_t nsteps = (end - start + j.step - 1) / j.step;
		j.done = os_calloc((size_t)nsteps, 1);
		if (j.done && pthread_mutex_init(&j.lock, NULL) != 0) {
			free(j.done);
			j.done = NULL;
		}
		if (j.done && pthread_cond_init(&j.cond, NULL) != 0) {
			pthread_mutex_destroy(&j.lock);
			free(j.done);
			j.done = NULL;
		}
		/* Without room to track the steps: reserve, then copy. */
		if (!j.done)
			nsegs = 0;
	}

	while (started + 1 < threads) {
		struct populate_helper *h = &helper[started];
		h->job = &j;
		h->first = start + (started + 1) * j.step;
		if (client_thread_start(&h->thread, helper_run, h) != 0)
			break; /* the caller takes its first step */
		started++;
	}
	job_step(&j, start);
	for (unsigned k = started + 1; k < threads; k++)
		job_step(&j, start + k * j.step);
	if (nsegs && copy_segments(m->base, obj_off, segs, nsegs, &j) == 0)
		*copied = true;
	job_rest(&j);
	for (unsigned i = 0; i < started; i++)
		pthread_join(helper[i].thread, NULL);
	if (j.done) {
		pthread_cond_destroy(&j.cond);
		pthread_mutex_destroy(&j.lock);
		free(j.done);
	}
	int rc = atomic_load(&j.error);
	if (rc < 0)
		*copied = false;
	return rc;
}

SHOAL_API int shoal_set_populate_threads(shoal_client *c, unsigned threads)
{
	if (!c || threads > CLIENT_POPULATE_THREADS_LIMIT)
		return SHOAL_EINVAL;
	c->populate_threads = threads;
	return 0;
}
