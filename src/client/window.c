/*
 * window.c - the writable windows of a creating client over its unsealed
 * objects.
 *
 * A client maps the arena once, read-only. Only the objects it is creating
 * are writable, and only in this client: create opens a window (mprotect
 * PROT_READ | PROT_WRITE over the object's pages), seal and abort close it
 * again before the daemon hears of them. A stray write into sealed data
 * then faults in the buggy process (SIGSEGV) instead of changing what every
 * other process reads.
 *
 * Granularity: objects are 64-byte aligned, protection is per page. A
 * window is rounded out to whole pages, so the bytes of neighbouring
 * objects that share the object's first or last page are writable while it
 * is open (at most one page minus 64 bytes on each side; a 2 MiB page on
 * hugetlbfs). Two unsealed objects of this client may share such a page: a
 * count per edge page (the edges map) keeps it writable until the last
 * window that needs it closes. Interior pages belong to one object only.
 *
 * Invariant: a page of the mapping is writable iff it overlaps an object in
 * the unsealed map whose window flag is set.
 */
#include <errno.h>
#include <sys/mman.h>

#include "client_internal.h"

/* [*lo, *hi): the pages that [off, off + len) touches, len > 0. */
static void span(const shoal_client *c, uint64_t off, uint64_t len,
                 uint64_t *lo, uint64_t *hi)
{
	uint64_t mask = c->window_page - 1;

	*lo = off & ~mask;
	*hi = (off + len + mask) & ~mask;
	if (*hi > c->map_size)
		*hi = c->map_size;
}

static void edge_add(shoal_client *c, uint64_t page)
{
	struct client_ref *r = client_refmap_find(&c->edges, page, NULL);

	if (!r)
		r = client_refmap_insert(&c->edges, page, NULL);
	if (r) /* room was reserved */
		r->count++;
}

/* Drops one use of an edge page; returns whether others still use it. */
static bool edge_drop(shoal_client *c, uint64_t page)
{
	struct client_ref *r = client_refmap_find(&c->edges, page, NULL);

	if (!r)
		return false;
	if (--r->count > 0)
		return true;
	client_refmap_remove(&c->edges, r);
	return false;
}

int client_window_open(shoal_client *c, uint64_t off, uint64_t len)
{
	uint64_t lo, hi;
	int rc;

	if (len == 0)
		return 0;
	span(c, off, len, &lo, &hi);
	rc = client_refmap_reserve(&c->edges, 2);
	if (rc < 0)
		return rc;
	if (mprotect(c->base + lo, hi - lo, PROT_READ | PROT_WRITE) != 0)
		return errno == ENOMEM ? SHOAL_ENOMEM : -errno;
	edge_add(c, lo / c->window_page);
	if (hi - lo > c->window_page)
		edge_add(c, hi / c->window_page - 1);
	return 0;
}

void client_window_close(shoal_client *c, uint64_t off, uint64_t len)
{
	uint64_t lo, hi;
	bool keep_first, keep_last;

	if (len == 0)
		return;
	span(c, off, len, &lo, &hi);
	keep_first = edge_drop(c, lo / c->window_page);
	keep_last = hi - lo > c->window_page
	                    ? edge_drop(c, hi / c->window_page - 1)
	                    : keep_first;
	if (keep_first)
		lo += c->window_page;
	if (keep_last && hi > lo)
		hi -= c->window_page;
	/* Cannot fail for lack of memory in a way that matters: read-only is
	 * the protection the rest of the mapping already has, so the kernel
	 * merges the areas again. A failure leaves the pages writable,
	 * which is what the store was before windows existed. */
	if (hi > lo)
		(void)mprotect(c->base + lo, hi - lo, PROT_READ);
}
