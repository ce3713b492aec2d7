/*
 * freelog.c - the published region: a memfd the daemon writes and clients
 * map read-only, holding the log of freed ranges (layout.h).
 *
 * Why a log: memory freed into the warm reserve stays backed, and every
 * client that ever touched its pages keeps them in its page tables (its
 * RSS counts them) until it drops them itself; only hole punching drops
 * pages from every mapping at once, and the reserve is exactly what is not
 * punched. As a reserve of 1.5 GiB is reused by short-lived objects placed
 * all over it, each reader would end up mapping most of it. So each free
 * that leaves whole pages free is published here, and a client drops those
 * pages from its mapping at its next call (src/client/freelog.c).
 *
 * The daemon only writes: the head is kept privately and stored after the
 * entry, with release order, so a reader that sees the head sees the entry.
 * Nothing here is ever read back, so no client can mislead the daemon
 * through it (and clients cannot write it anyway: they get a read-only
 * description). Logging is two stores and a store of the head per free
 * that frees at least one whole page: no system call, no allocation, so a
 * flood of tiny frees costs the daemon nothing more (and logs nothing).
 *
 * The region's pages are allocated at start, so that a write to it can
 * never raise SIGBUS in the daemon when memory is short later.
 */
#include "freelog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "os.h"

static uint64_t round_up(uint64_t n, uint64_t to)
{
	return (n + to - 1) / to * to;
}

int freelog_open(struct freelog *f, uint64_t entries,
                 const struct layout_header *arena_hdr, char *err, size_t size)
{
	uint64_t hdr_size = round_up(sizeof(struct layout_published), 4096);
	char self[64];
	int rc;

	memset(f, 0, sizeof(*f));
	f->fd = f->ro_fd = -1;
	if (entries == 0 || (entries & (entries - 1))) {
		snprintf(err, size, "the freed-range log needs a power of two");
		return -EINVAL;
	}
	f->size = hdr_size + entries * sizeof(struct layout_freed);
	f->fd = memfd_create("shoal-published",
	                     MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f->fd < 0) {
		rc = -errno;
		snprintf(err, size, "memfd_create: %s", strerror(-rc));
		goto fail;
	}
	if (ftruncate(f->fd, (off_t)f->size) != 0) {
		rc = -errno;
		snprintf(err, size, "cannot size the published region: %s",
		         strerror(-rc));
		goto fail;
	}
	(void)fcntl(f->fd, F_ADD_SEALS,
	            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", f->fd);
	f->ro_fd = open(self, O_RDONLY | O_CLOEXEC);
	if (f->ro_fd < 0) {
		rc = -errno;
		snprintf(err, size,
		         "cannot open the published region read-only: %s",
		         strerror(-rc));
		goto fail;
	}
	f->base = os_mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED,
	                  f->fd, 0);
	if (f->base == MAP_FAILED) {
		rc = -errno;
		f->base = NULL;
		snprintf(err, size, "cannot map the published region: %s",
		         strerror(-rc));
		goto fail;
	}
	/* EINVAL: a kernel before 5.14; the pages are then allocated by the
	 * header write below and by the first pass over the ring. */
	if (os_madvise(f->base, f->size, MADV_POPULATE_WRITE) != 0 &&
	    errno != EINVAL) {
		rc = -errno;
		snprintf(err, size, "cannot allocate the published region: %s",
		         strerror(-rc));
		goto fail;
	}
	f->hdr = (struct layout_published *)f->base;
	f->ring = (struct layout_freed *)(f->base + hdr_size);
	f->mask = entries - 1;
	f->unit = LAYOUT_FREELOG_UNIT;
	*f->hdr = (struct layout_published){
	        .magic = LAYOUT_PUB_MAGIC,
	        .version = LAYOUT_PUB_VERSION,
	        .header_size = (uint32_t)hdr_size,
	        .region_size = f->size,
	        .daemon_pid = arena_hdr->daemon_pid,
	        .start_time_ns = arena_hdr->start_time_ns,
	        .freelog_offset = hdr_size,
	        .freelog_entries = entries,
	};
	return 0;
fail:
	freelog_close(f);
	return rc;
}

void freelog_close(struct freelog *f)
{
	if (f->base)
		munmap(f->base, f->size);
	if (f->fd >= 0)
		close(f->fd);
	if (f->ro_fd >= 0)
		close(f->ro_fd);
	memset(f, 0, sizeof(*f));
	f->fd = f->ro_fd = -1;
}

void freelog_note(struct freelog *f, uint64_t off, uint64_t len,
                  uint64_t span_off, uint64_t span_len)
{
	uint64_t u, lo, hi;
	struct layout_freed *e;

	if (!f || !f->ring)
		return;
	u = f->unit;
	/* Whole pages of the free stretch ... */
	lo = round_up(span_off, u);
	hi = (span_off + span_len) / u * u;
	/* ... that this block overlaps. */
	if (lo < off / u * u)
		lo = off / u * u;
	if (hi > round_up(off + len, u))
		hi = round_up(off + len, u);
	if (lo >= hi)
		return;
	e = &f->ring[f->head & f->mask];
	/* The slot's previous entry is overwritten: a reader that reads the
	 * new values and then (after its acquire fence) the head must see
	 * the head that made this slot reusable, and so know it was
	 * overwritten (src/client/freelog.c). No-op on x86. */
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&e->offset, lo, memory_order_relaxed);
	atomic_store_explicit(&e->length, hi - lo, memory_order_relaxed);
	f->head++;
	atomic_store_explicit(&f->hdr->freelog_head, f->head,
	                      memory_order_release);
}
