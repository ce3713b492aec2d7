/*
 * freelog.c - a client drops from its own mapping the pages that the store
 * freed: it follows the daemon's log of freed ranges (layout.h, the
 * published region) and MADV_DONTNEEDs each range.
 *
 * Why: the daemon keeps a warm reserve of freed memory backed and punches
 * holes only beyond it. A process keeps every page it ever read or wrote
 * in its page tables (and its RSS) as long as the page stays backed, so a
 * worker of an app whose objects come and go all over the reserve (cache
 * entries, callback outputs, a refreshed frame) would end up mapping most
 * of the reserve. On a MAP_SHARED mapping of the arena file, MADV_DONTNEED
 * only drops page-table entries: the pages and their data stay in the file,
 * so dropping a range is safe even when it holds a new object by then (its
 * pages are faulted in again on access), and the mapping's protection
 * (read-only, or a writer's open window) is kept.
 *
 * When: at the start of every call that goes to the daemon (client_begin,
 * with io_lock held, so the mapping cannot be replaced meanwhile). When
 * nothing was freed that costs one load of the log's head. New entries are
 * counted, and dropped once CLIENT_FREELOG_BYTES or CLIENT_FREELOG_ENTRIES
 * of them wait (overlapping and touching ranges merged into one madvise):
 * a store where small objects come and go would otherwise cost every
 * client an madvise per free (a fifth of a small put and delete). What
 * waits stays mapped meanwhile: at most a megabyte, or 63 small ranges.
 *
 * Trust: the region is mapped read-only from a read-only fd; still, every
 * entry is clipped to the data area of the mapping, and a ring that wrapped
 * while it was being read is detected from the head (re-read after the
 * entries): nothing read from it can do more than an madvise of part of
 * this client's own mapping, which never changes data.
 *
 * Falling behind: a client more than a ring behind (idle while the store
 * freed many ranges) cannot know which ranges it missed; it drops its whole
 * mapping instead, except what it keeps (below) and the objects it is
 * writing (up to 64 of them). Objects it still views are faulted in again
 * when read: correct, and bounded to once per ring. A client that finds
 * more than CLIENT_FREELOG_MANY entries waiting does the same: one pass
 * over the mapping instead of up to tens of thousands of madvise calls in
 * one call of its own.
 *
 * Kept: a process that creates large objects (a loader refreshing a frame)
 * puts each into warm memory that it mapped when it wrote an earlier
 * value; dropping those pages would make every put map them again (~0.3
 * us a page: a fifth of a put into recycled memory). So the places where
 * this client wrote large objects are never dropped by the log: up to
 * CLIENT_KEPT ranges, overlapping ones merged up to twice the new object's
 * size (adjacent ones are not merged), the least recently written making
 * room. So what is kept is bounded: CLIENT_KEPT ranges, each at most
 * twice the object last written there. A refreshed frame that wanders
 * among a few places of the warm reserve (the app's other values take the
 * place the old one left) then finds each of them mapped, as before the
 * log existed; a loader of many large values keeps only the places of the
 * last CLIENT_KEPT it wrote. Only large creates count: readers and small
 * writers keep nothing.
 */
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "client_internal.h"
#include "layout.h"
#include "os.h"

/* Entries read from the ring before checking that they were not
 * overwritten meanwhile and acting on them. */
#define READ_BATCH 128

/* Drops [s, e) of the mapping (granule-aligned) and clears the populated
 * bits of the whole chunks in it. */
static void zap_aligned(shoal_client *c, uint64_t s, uint64_t e)
{
	if (s >= e)
		return;
	if (os_madvise(c->base + s, (size_t)(e - s), MADV_DONTNEED) < 0)
		return;
	/* Whole chunks zapped are no longer in the page tables: a create
	 * there populates them again (objects.c). */
	for (uint64_t k = (s + LAYOUT_CHUNK - 1) / LAYOUT_CHUNK;
	     (k + 1) * LAYOUT_CHUNK <= e; k++)
		atomic_fetch_and(&c->populated[k / 64], ~(1ull << (k % 64)));
}

void client_zap(shoal_client *c, uint64_t off, uint64_t len,
                const struct client_range *keep, size_t nkeep)
{
	uint64_t g = c->window_page ? c->window_page : c->page_size;
	uint64_t end, cur;

	if (!c->base || off >= c->map_size)
		return;
	end = len > c->map_size - off ? c->map_size : off + len;
	cur = off;
	for (size_t i = 0; i < nkeep && cur < end; i++) {
		uint64_t ks = keep[i].offset, ke = ks + keep[i].size;

		if (keep[i].size == 0 || ke <= cur || ks >= end)
			continue;
		if (ks > cur)
			zap_aligned(c, (cur + g - 1) / g * g, ks / g * g);
		cur = ke;
	}
	if (cur < end)
		zap_aligned(c, (cur + g - 1) / g * g, end / g * g);
}

/* Sorts a few ranges by offset (insertion sort: n is small). */
static void sort_ranges(struct client_range *r, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct client_range x = r[i];
		size_t j = i;

		for (; j > 0 && r[j - 1].offset > x.offset; j--)
			r[j] = r[j - 1];
		r[j] = x;
	}
}

/* The ranges the log never drops, sorted; returns their number. */
static size_t kept_ranges(const shoal_client *c, struct client_range *out)
{
	size_t n = 0;

	for (size_t i = 0; i < CLIENT_KEPT; i++)
		if (c->kept[i].seq)
			out[n++] = (struct client_range){c->kept[i].offset,
			                                 c->kept[i].size};
	sort_ranges(out, n);
	return n;
}

/* The unsealed objects drop_all leaves mapped: a client writing more at
 * once has the others' pages faulted in again as it writes them. */
#define DROP_ALL_UNSEALED 64

/* Fell behind: drops the whole data area except the kept ranges and (up
 * to DROP_ALL_UNSEALED of) the objects this client is writing. */
static void drop_all(shoal_client *c, struct client_range *keep, size_t nkeep)
{
	struct client_range all[CLIENT_KEPT + DROP_ALL_UNSEALED];
	struct client_ref *r;
	size_t n = nkeep;

	memcpy(all, keep, nkeep * sizeof(*keep));
	for (size_t i = 0; n < sizeof(all) / sizeof(all[0]) &&
	                   (r = client_refmap_next(&c->unsealed, &i));)
		all[n++] = (struct client_range){r->offset, r->size};
	sort_ranges(all, n);
	client_zap(c, c->data_offset, c->map_size - c->data_offset, all, n);
	c->freelog_overflows++;
}

/* Drops the entries [pos, head): returns false when some were overwritten
 * before they were read (the caller then drops everything). */
static bool drop_entries(shoal_client *c, uint64_t pos, uint64_t head,
                         const struct client_range *keep, size_t nkeep)
{
	const uint64_t slots = c->freelog_mask + 1;
	struct client_range got[READ_BATCH];

	while (pos != head) {
		uint64_t n = head - pos < READ_BATCH ? head - pos : READ_BATCH;
		size_t k = 0;

		for (uint64_t i = 0; i < n; i++) {
			const struct layout_freed *e =
			        &c->freelog[(pos + i) & c->freelog_mask];
			uint64_t off = atomic_load_explicit(
			        &e->offset, memory_order_relaxed);
			uint64_t len = atomic_load_explicit(
			        &e->length, memory_order_relaxed);
			struct client_range *last = k ? &got[k - 1] : NULL;

			if (len > UINT64_MAX - off)
				len = UINT64_MAX - off;
			/* Overlapping or touching ranges: one madvise. */
			if (last && off <= last->offset + last->size &&
			    off + len >= last->offset) {
				uint64_t end = off + len;
				if (end < last->offset + last->size)
					end = last->offset + last->size;
				if (off < last->offset)
					last->offset = off;
				last->size = end - last->offset;
			} else {
				got[k++] = (struct client_range){off, len};
			}
		}
		/* Were they overwritten while being read? Then the ring
		 * wrapped past pos: as if more than a ring behind. */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&c->pub->freelog_head,
		                         memory_order_relaxed) -
		            pos >=
		    slots)
			return false;
		for (size_t i = 0; i < k; i++) {
			uint64_t off = got[i].offset, len = got[i].size;

			if (off < c->data_offset) { /* never the header */
				if (len <= c->data_offset - off)
					continue;
				len -= c->data_offset - off;
				off = c->data_offset;
			}
			client_zap(c, off, len, keep, nkeep);
		}
		pos += n;
	}
	return true;
}

void client_freelog_apply(shoal_client *c)
{
	const uint64_t slots = c->freelog_mask + 1;
	struct client_range keep[CLIENT_KEPT];
	uint64_t head = atomic_load_explicit(&c->pub->freelog_head,
	                                     memory_order_acquire);
	uint64_t pos = c->freelog_pos;
	size_t nkeep;

	/* More than a ring behind, or a head that went backwards (nothing
	 * the daemon writes): what was missed is unknown. Very many entries
	 * waiting: one pass over the mapping costs less than an madvise
	 * each. */
	if (head - pos >= slots || c->freelog_seen - pos > head - pos ||
	    head - pos > CLIENT_FREELOG_MANY)
		goto overflow;
	/* Count what waits; a torn read here only moves the batch. */
	for (uint64_t i = c->freelog_seen; i != head; i++) {
		uint64_t len = atomic_load_explicit(
		        &c->freelog[i & c->freelog_mask].length,
		        memory_order_relaxed);

		c->freelog_bytes +=
		        len < CLIENT_FREELOG_BYTES ? len : CLIENT_FREELOG_BYTES;
	}
	c->freelog_seen = head;
	if (c->freelog_bytes < CLIENT_FREELOG_BYTES &&
	    head - pos < CLIENT_FREELOG_ENTRIES)
		return;
	nkeep = kept_ranges(c, keep);
	if (!drop_entries(c, pos, head, keep, nkeep))
		goto overflow;
	c->freelog_pos = head;
	c->freelog_bytes = 0;
	return;
overflow:
	nkeep = kept_ranges(c, keep);
	drop_all(c, keep, nkeep);
	c->freelog_pos = c->freelog_seen = head;
	c->freelog_bytes = 0;
}

void client_zap_unkept(shoal_client *c, uint64_t off, uint64_t len,
                       const struct client_range *also)
{
	struct client_range keep[CLIENT_KEPT + 1];
	size_t n = kept_ranges(c, keep);

	if (also && also->size)
		keep[n++] = *also;
	sort_ranges(keep, n);
	client_zap(c, off, len, keep, n);
}

void client_freelog_created(shoal_client *c, uint64_t offset, uint64_t size)
{
	uint64_t end = offset + size;
	struct client_kept *slot = NULL;

	if (size < CLIENT_NAMED_LARGE)
		return;
	for (size_t i = 0; i < CLIENT_KEPT; i++) {
		struct client_kept *k = &c->kept[i];

		/* Only ranges that overlap (adjacent ones stay apart), and
		 * only up to twice the new object: merging touching ranges
		 * let a loader of many values keep one range over all it
		 * ever wrote, however long ago. An overlapping range that
		 * would grow past that stays as it is, beside the new one
		 * (client_zap takes overlapping kept ranges). */
		if (k->seq && k->offset < end && offset < k->offset + k->size) {
			uint64_t lo = k->offset < offset ? k->offset : offset;
			uint64_t hi = k->offset + k->size > end
			                      ? k->offset + k->size
			                      : end;

			if (hi - lo <= 2 * size) {
				offset = lo;
				end = hi;
				k->seq = 0; /* merged into the new one */
			}
		}
		if (!slot || (slot->seq && k->seq < slot->seq))
			slot = k;
	}
	*slot = (struct client_kept){offset, end - offset, ++c->kept_seq};
}

/* Whether p, a mapping of size bytes, is a published region of the
 * daemon whose arena header is h, with its ring inside it. */
static bool region_ok(const struct layout_published *p, uint64_t size,
                      const struct layout_header *h)
{
	return size >= sizeof(*p) && p->magic == LAYOUT_PUB_MAGIC &&
	       p->version == LAYOUT_PUB_VERSION && p->region_size == size &&
	       p->daemon_pid == h->daemon_pid &&
	       p->start_time_ns == h->start_time_ns && p->freelog_entries > 0 &&
	       (p->freelog_entries & (p->freelog_entries - 1)) == 0 &&
	       p->freelog_offset % _Alignof(struct layout_freed) == 0 &&
	       p->freelog_offset >= sizeof(*p) && p->freelog_offset <= size &&
	       p->freelog_entries <=
	               (size - p->freelog_offset) / sizeof(struct layout_freed);
}

void client_freelog_map(shoal_client *c, int fd)
{
	struct layout_header h;
	struct layout_published ph;
	struct stat st;
	void *m;

	if (fd < 0 || !c->base || fstat(fd, &st) != 0 ||
	    (uint64_t)st.st_size < sizeof(struct layout_published) ||
	    (uint64_t)st.st_size > SIZE_MAX)
		return;
	m = os_mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return;
	memcpy(&h, c->base, sizeof(h));
	/* Checked and used from a private copy: the shared header could
	 * change between the check and the use. */
	memcpy(&ph, m, sizeof(ph));
	if (!region_ok(&ph, (uint64_t)st.st_size, &h)) {
		munmap(m, (size_t)st.st_size);
		return;
	}
	c->pub = m;
	c->pub_size = (uint64_t)st.st_size;
	c->freelog = (const struct layout_freed *)((const uint8_t *)m +
	                                           ph.freelog_offset);
	c->freelog_mask = ph.freelog_entries - 1;
	/* What was freed before this mapping existed is not in it. */
	c->freelog_pos = atomic_load_explicit(&c->pub->freelog_head,
	                                      memory_order_acquire);
	c->freelog_seen = c->freelog_pos;
	c->freelog_bytes = 0;
}

void client_freelog_unmap(shoal_client *c)
{
	if (c->pub)
		munmap((void *)c->pub, (size_t)c->pub_size);
	c->pub = NULL;
	c->pub_size = 0;
	c->freelog = NULL;
	c->freelog_mask = 0;
	c->freelog_pos = c->freelog_seen = c->freelog_bytes = 0;
	memset(c->kept, 0, sizeof(c->kept));
	c->kept_seq = 0;
}
