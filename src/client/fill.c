/*
 * fill.c - writing a large new object from its segments (shoal_create_from)
 * on several CPUs, by the cheapest way the kernel offers.
 *
 * Fresh shared memory costs the kernel work per page before a byte can be
 * copied into it (allocating, zeroing, mapping: ~2 us per 4 KiB page), and
 * that work, not the copy, decides how fast a large put is. A pwrite into
 * the arena file costs less than populating the mapping and copying into
 * it: it allocates each page and fills it with the caller's bytes in one
 * pass, with no zeroing of whole pages and no page tables in this process
 * (so the seal's mprotect has less to walk and the creator's RSS does not
 * grow by the object). The kernel serialises writes to one file, so one
 * thread writes; the others populate and copy, as populate.c does.
 *
 * The object is cut into steps (CLIENT_FILL_STEP, aligned in the mapping).
 * The calling thread writes steps from the front with pwrite; helper
 * threads populate and copy steps from the back; they meet where their
 * speeds say, with no fixed split to tune. A step's bytes that no segment
 * covers (IPC headers, padding, the metadata) are reserved with fallocate
 * in a written step, and by the populate in the others: every page of the
 * object is allocated before the pointer is handed out, so nobody ever
 * gets SIGBUS, and a machine that cannot back it gives SHOAL_EFULL (the
 * caller aborts the object: never a half-written object in the store).
 *
 * The writable fd comes from the daemon for this call only (the caller
 * closes it after): between calls the client keeps none (docs/DESIGN.md,
 * trust model). When the file refuses pwrite or fallocate (hugetlbfs,
 * sealed memfd, EOPNOTSUPP, EINVAL), the step is populated and copied
 * instead and the writer turns into one more populating thread; under a
 * file size limit below the object's end (a pwrite past it would raise
 * SIGXFSZ) no step is written. Without a
 * fd (memory the daemon vouches for, or no fd given) every thread copies,
 * populating first only the chunks this client has not mapped.
 *
 * Segments must not overlap (then they are copied in the order given, by
 * the older path in populate.c); they are visited in offset order, found
 * per step by binary search. Helpers exist only during the call and run
 * with every signal blocked. They run outside io_lock, so they use the
 * mapping as the create found it (struct client_map), never c's: another
 * thread may reconnect meanwhile and replace it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "client_internal.h"
#include "layout.h"
#include "os.h"

/* Steps handed out to the threads; whole chunks, so that a step's chunks
 * are populated (or not) by one thread. */
#define CLIENT_FILL_STEP (8u << 20)

/* A rebased segment (width 4 or 8) is written through a buffer this big. */
#define CLIENT_FILL_BOUNCE (256u << 10)

/* A step the file refused to write: populate and copy it instead. */
#define FILL_REFUSED 1

struct fill_job {
	const struct client_map *m; /* the mapping the object lies in */
	int fd;                     /* writable arena fd, or -1 */
	bool reserve; /* the daemon does not vouch for the pages */
	uint64_t obj_off, obj_end;
	uint64_t base, start, end, step, nsteps;
	const shoal_segment *segs;
	const size_t *order; /* segments by offset */
	size_t nsegs;
	uint8_t *bounce;
	pthread_mutex_t lock;
	uint64_t lo, hi; /* steps nobody has taken: [lo, hi) */
	atomic_int error;
	atomic_bool refused; /* the file refused a write */
};

struct fill_helper {
	pthread_t thread;
	struct fill_job *job;
};

bool client_fill_wants(uint64_t len, size_t nsegs)
{
	return nsegs > 0 && len >= CLIENT_FILL_MIN;
}

/* [*lo, *hi): the mapping range of step k. */
static void step_range(const struct fill_job *j, uint64_t k, uint64_t *lo,
                       uint64_t *hi)
{
	uint64_t a = j->base + k * j->step, b = a + j->step;

	*lo = a > j->start ? a : j->start;
	*hi = b < j->end ? b : j->end;
}

/* The next step from the front or the back, or UINT64_MAX. */
static uint64_t take(struct fill_job *j, bool front)
{
	uint64_t k = UINT64_MAX;

	pthread_mutex_lock(&j->lock);
	if (j->lo < j->hi && atomic_load(&j->error) == 0)
		k = front ? j->lo++ : --j->hi;
	pthread_mutex_unlock(&j->lock);
	return k;
}

static void fail(struct fill_job *j, int rc)
{
	int none = 0;

	atomic_compare_exchange_strong(&j->error, &none, rc);
}

/* Index into order of the first segment ending after object byte a. */
static size_t first_segment(const struct fill_job *j, uint64_t a)
{
	size_t lo = 0, hi = j->nsegs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const shoal_segment *s = &j->segs[j->order[mid]];
		if (s->offset + s->size <= a)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* A part of a segment: bytes [from, from + len) of s. */
struct piece {
	const shoal_segment *s;
	uint64_t from, len;
};

/* The pieces of the segments inside object bytes [a, b), in offset order:
 * for (size_t i = first_segment(j, a); next_piece(j, &i, a, b, &p);) */
static bool next_piece(const struct fill_job *j, size_t *i, uint64_t a,
                       uint64_t b, struct piece *p)
{
	if (*i >= j->nsegs)
		return false;
	const shoal_segment *s = &j->segs[j->order[*i]];
	if (s->offset >= b)
		return false;
	(*i)++;
	p->s = s;
	p->from = a > s->offset ? a - s->offset : 0;
	p->len = (s->offset + s->size < b ? s->size : b - s->offset) - p->from;
	return true;
}

/* Copies the segments' bytes of object range [a, b) through the mapping. */
static void copy_range(struct fill_job *j, uint64_t a, uint64_t b)
{
	uint8_t *obj = j->m->base + j->obj_off;
	struct piece p;

	for (size_t i = first_segment(j, a); next_piece(j, &i, a, b, &p);)
		client_copy_piece(obj + p.s->offset + p.from, p.s, p.from,
		                  p.len);
}

/* pwrite of len bytes at file offset off, through short writes and EINTR.
 * Returns 0, FILL_REFUSED or -errno. */
static int write_all(int fd, const uint8_t *p, uint64_t len, uint64_t off)
{
	while (len > 0) {
		ssize_t n = os_pwrite(fd, p, (size_t)len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == ENOSPC || errno == ENOMEM ||
			                       errno == EFBIG ||
			                       errno == EDQUOT || errno == EIO
			               ? -errno
			               : FILL_REFUSED;
		if (n == 0)
			return -ENOSPC;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Writes segment bytes [from, from + len) of s at file offset off. */
static int write_piece(struct fill_job *j, const shoal_segment *s,
                       uint64_t from, uint64_t len, uint64_t off)
{
	if (s->width == 0)
		return write_all(j->fd, (const uint8_t *)s->src + from, len,
		                 off);
	/* Rebased integers: through the bounce buffer (a multiple of 8, and
	 * pieces start on the segment's integers: steps are page-aligned). */
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < CLIENT_FILL_BOUNCE
		                     ? len - done
		                     : CLIENT_FILL_BOUNCE;
		client_copy_piece(j->bounce, s, from + done, n);
		int rc = write_all(j->fd, j->bounce, n, off + done);
		if (rc)
			return rc;
		done += n;
	}
	return 0;
}

/* Allocates the file's pages under [off, off + len). */
static int reserve_gap(struct fill_job *j, uint64_t off, uint64_t len)
{
	while (os_fallocate(j->fd, FALLOC_FL_KEEP_SIZE, (off_t)off,
	                    (off_t)len) != 0) {
		if (errno == EINTR)
			continue;
		return errno == ENOSPC || errno == ENOMEM || errno == EFBIG ||
		                       errno == EDQUOT || errno == EIO
		               ? -errno
		               : FILL_REFUSED;
	}
	return 0;
}

/* Writes step [lo, hi) with pwrite, reserving what no segment covers.
 * Returns 0, FILL_REFUSED or -errno. */
static int write_step(struct fill_job *j, uint64_t lo, uint64_t hi)
{
	uint64_t a = (lo > j->obj_off ? lo : j->obj_off) - j->obj_off;
	uint64_t b = (hi < j->obj_end ? hi : j->obj_end) - j->obj_off;
	uint64_t at = a;
	struct piece p;
	int rc;

	for (size_t i = first_segment(j, a); next_piece(j, &i, a, b, &p);) {
		uint64_t where = p.s->offset + p.from;
		if (where > at &&
		    (rc = reserve_gap(j, j->obj_off + at, where - at)))
			return rc;
		rc = write_piece(j, p.s, p.from, p.len, j->obj_off + where);
		if (rc)
			return rc;
		at = where + p.len;
	}
	if (b > at)
		return reserve_gap(j, j->obj_off + at, b - at);
	return 0;
}

static bool chunk_mapped(const struct client_map *m, size_t k)
{
	return atomic_load(&m->populated[k / 64]) & (1ull << (k % 64));
}

/* Populates (when needed) and copies step [lo, hi). Returns 0 or -errno. */
static int populate_step(struct fill_job *j, uint64_t lo, uint64_t hi)
{
	const struct client_map *m = j->m;
	/* The chunks of the step that lie wholly inside the object. */
	uint64_t olo = lo > j->obj_off ? lo : j->obj_off;
	uint64_t ohi = hi < j->obj_end ? hi : j->obj_end;
	size_t first = (size_t)((olo + LAYOUT_CHUNK - 1) / LAYOUT_CHUNK);
	size_t end = (size_t)(ohi / LAYOUT_CHUNK);
	bool need = j->reserve;

	for (size_t k = first; !need && k < end; k++)
		need = !chunk_mapped(m, k);
	if (need) {
		uint64_t plo = lo, phi = hi;
		if (!j->reserve) { /* vouched for: only whole chunks */
			plo = (uint64_t)first * LAYOUT_CHUNK;
			phi = (uint64_t)end * LAYOUT_CHUNK;
		}
		int rc = phi > plo ? client_populate_span(m->base + plo,
		                                          (size_t)(phi - plo))
		                   : 0;
		/* -EINVAL: a kernel without the advice; the daemon's own
		 * reservation is all there is (as in objects.c). */
		if (rc < 0 && rc != -EINVAL)
			return rc;
		if (rc == 0)
			for (size_t k = first; k < end; k++)
				atomic_fetch_or(&m->populated[k / 64],
				                1ull << (k % 64));
	}
	copy_range(j, olo - j->obj_off, ohi - j->obj_off);
	return 0;
}

/* Takes steps until none is left or one failed; the writer from the
 * front with pwrite while the file takes it. */
static void fill_run(struct fill_job *j, bool writer)
{
	uint64_t k, lo, hi;

	while ((k = take(j, writer)) != UINT64_MAX) {
		int rc = FILL_REFUSED;
		step_range(j, k, &lo, &hi);
		if (writer && j->fd >= 0 && !atomic_load(&j->refused))
			rc = write_step(j, lo, hi);
		if (rc == FILL_REFUSED) {
			if (writer && j->fd >= 0)
				atomic_store(&j->refused, true);
			rc = populate_step(j, lo, hi);
		}
		if (rc < 0)
			fail(j, rc);
	}
}

static void *helper_run(void *arg)
{
	struct fill_helper *h = arg;

	fill_run(h->job, false);
	return NULL;
}

static int by_offset(const void *a, const void *b, void *ctx)
{
	const shoal_segment *segs = ctx;
	uint64_t x = segs[*(const size_t *)a].offset;
	uint64_t y = segs[*(const size_t *)b].offset;

	return x < y ? -1 : x > y;
}

/* The segments' indices by offset, or NULL when they overlap, when a
 * rebased one does not start on its integers (a step boundary could cut
 * one), or without memory. */
static size_t *sort_segments(const shoal_segment *segs, size_t n)
{
	size_t *order = os_malloc(n * sizeof(*order));

	if (!order)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		order[i] = i;
		if (segs[i].width && segs[i].offset % segs[i].width) {
			free(order);
			return NULL;
		}
	}
	qsort_r(order, n, sizeof(*order), by_offset, (void *)segs);
	for (size_t i = 1; i < n; i++) {
		const shoal_segment *p = &segs[order[i - 1]];
		if (p->offset + p->size > segs[order[i]].offset) {
			free(order);
			return NULL;
		}
	}
	return order;
}

/* Whether a pwrite up to end would pass RLIMIT_FSIZE (then the kernel
 * sends SIGXFSZ, which kills by default). */
static bool fsize_limited(uint64_t end)
{
	struct rlimit rl;

	return getrlimit(RLIMIT_FSIZE, &rl) == 0 &&
	       rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < end;
}

int client_fill(shoal_client *c, const struct client_map *m, uint64_t off,
                uint64_t len, bool backed, int fd, const shoal_segment *segs,
                size_t nsegs)
{
	uint64_t mask = c->page_size - 1, wp = m->window_page;
	struct fill_job j = {.m = m,
	                     .fd = backed ? -1 : fd,
	                     .reserve = !backed,
	                     .obj_off = off,
	                     .obj_end = off + len,
	                     .segs = segs,
	                     .nsegs = nsegs};
	struct fill_helper helper[CLIENT_POPULATE_THREADS_LIMIT];
	unsigned threads = client_populate_threads_for(c, len), started = 0;
	int rc;

	if (len == 0 || nsegs == 0)
		return CLIENT_FILL_DECLINED;
	size_t *order = sort_segments(segs, nsegs);
	if (!order)
		return CLIENT_FILL_DECLINED;
	j.order = order;
	if (j.fd >= 0 && fsize_limited(off + len))
		j.fd = -1;
	for (size_t i = 0; j.fd >= 0 && !j.bounce && i < nsegs; i++)
		if (segs[i].width &&
		    !(j.bounce = os_malloc(CLIENT_FILL_BOUNCE)))
			j.fd = -1;
	if (pthread_mutex_init(&j.lock, NULL) != 0) {
		free(j.bounce);
		free(order);
		return CLIENT_FILL_DECLINED;
	}
	j.start = off & ~mask;
	j.end = (off + len + mask) & ~mask;
	if (j.end > m->size)
		j.end = m->size;
	j.step = (CLIENT_FILL_STEP + wp - 1) / wp * wp;
	j.base = j.start / j.step * j.step;
	j.nsteps = (j.end - j.base + j.step - 1) / j.step;
	j.hi = j.nsteps;
	atomic_init(&j.error, 0);
	atomic_init(&j.refused, false);

	while (started + 1 < threads) {
		struct fill_helper *h = &helper[started];
		h->job = &j;
		if (client_thread_start(&h->thread, helper_run, h) != 0)
			break; /* the others take its share */
		started++;
	}
	fill_run(&j, true);
	for (unsigned i = 0; i < started; i++)
		pthread_join(helper[i].thread, NULL);
	rc = atomic_load(&j.error);
	pthread_mutex_destroy(&j.lock);
	free(j.bounce);
	free(order);
	return rc < 0 ? SHOAL_EFULL : 0;
}
