/*
 * freelog.h - the published region and its log of freed ranges (the
 * layout is in layout.h; the daemon writes it, clients read it).
 */
#ifndef SHOAL_FREELOG_H
#define SHOAL_FREELOG_H

#include <stddef.h>
#include <stdint.h>

#include "layout.h"

/* Slots of the ring: 1 MiB of entries. A client that falls this many
 * entries behind drops its whole mapping instead (src/client/freelog.c). */
#define FREELOG_ENTRIES 65536u

struct freelog {
	int fd;
	int ro_fd; /* what clients get: read-only */
	uint8_t *base;
	uint64_t size;
	struct layout_published *hdr;
	struct layout_freed *ring;
	uint64_t mask; /* entries - 1 */
	/* What entries are whole multiples of: LAYOUT_FREELOG_UNIT after
	 * freelog_open; the arena's page size when that is larger (a huge
	 * page on hugetlbfs, where a client can drop only whole huge pages:
	 * with 4 KiB units, a huge page freed piece by piece would never be
	 * logged whole and never leave any mapping). A power of two. */
	uint64_t unit;
	uint64_t head; /* the daemon's own copy: never read back */
};

/*
 * Creates the published region (a sealed memfd of a header page and a
 * ring of `entries` slots, a power of two) for the arena whose header is
 * arena_hdr, and allocates its pages at once, so that writing it later can
 * never fault. On failure writes a message into err and returns a negative
 * code; f is then closed.
 */
int freelog_open(struct freelog *f, uint64_t entries,
                 const struct layout_header *arena_hdr, char *err, size_t size);

void freelog_close(struct freelog *f);

/*
 * The block [off, off + len) of the arena was freed and, merged with its
 * free neighbours, is now the free stretch [span_off, span_off + span_len).
 * Logs the whole pages (of f->unit bytes) that this free made free: those of
 * the stretch that the block overlaps (pages shared with a live neighbour stay
 * out; a page that the block shared with earlier frees is in). Nothing when
 * there is none, e.g. for most small blocks. O(1), no system call. f may be
 * NULL or closed (nothing is logged).
 */
void freelog_note(struct freelog *f, uint64_t off, uint64_t len,
                  uint64_t span_off, uint64_t span_len);

#endif /* SHOAL_FREELOG_H */
