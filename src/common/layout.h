/*
 * layout.h - the layout of the shared-memory arena, read by every client.
 *
 * The arena is one file (a memfd, or an unlinked file in `serve -d DIR`)
 * that the daemon creates and passes to each client once. It begins with a
 * header page that the daemon writes before any client connects and never
 * changes afterwards; objects live in the data area that follows, each at a
 * 64-byte aligned offset from the start of the file. Nothing in the arena is
 * trusted by the daemon: the allocator's metadata lives in its private
 * memory. A client checks magic and format version before using anything.
 */
#ifndef SHOAL_LAYOUT_H
#define SHOAL_LAYOUT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define LAYOUT_MAGIC       0x414e524c414f4853ull /* "SHOALRNA" */
#define LAYOUT_VERSION     1
#define LAYOUT_HEADER_SIZE 4096u /* the data area starts here */
#define LAYOUT_ALIGN       64u   /* every object starts on this boundary */
/* Granule in which the daemon tracks which parts of the arena are backed by
 * allocated pages (see PROTO_CREATE_BACKED). */
#define LAYOUT_CHUNK (2u << 20)

struct layout_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint64_t capacity;    /* bytes of the data area usable by objects */
	uint64_t data_offset; /* == header_size */
	/* size of the file: header + capacity, rounded to whole pages */
	uint64_t map_size;
	uint64_t daemon_pid;
	uint64_t start_time_ns;
	/* zero; was room for a published index, which lives in the
	 * published region instead (below) */
	uint64_t reserved[8];
};

/*
 * The published region: a second shared file (always a memfd, whatever the
 * arena's backing) that the daemon creates at start, writes alone and sends
 * read-only to each client beside the arena at HELLO (docs/PROTOCOL.md). It
 * is a separate file so that no client can ever write it (a creator's
 * window on the arena's first huge page would otherwise reach it), so that
 * it is per daemon (never persisted with `--persist`'s arena file), and so
 * that what joins it later (a read-only object index) can be sized on its
 * own. It begins with this header; the daemon never reads any of it back.
 *
 * The freed-range log: a ring of freelog_entries entries (a power of two)
 * at freelog_offset. Entry i (counted from 0 since the daemon started) sits
 * in slot i % freelog_entries; freelog_head is the number of entries ever
 * written. The daemon writes an entry, then stores the head with release
 * order. Each entry is a range of whole LAYOUT_FREELOG_UNIT pages of the
 * arena (offsets from the start of the arena file) that has just become
 * free and stays backed: a client drops those pages from its own mapping.
 * A reader that read entries [pos, head) and then finds the head at most
 * freelog_entries - 1 ahead of pos has read them whole; otherwise some
 * were overwritten while it read (see src/client/freelog.c).
 */
#define LAYOUT_PUB_MAGIC    0x4255504c414f4853ull /* "SHOALPUB" */
#define LAYOUT_PUB_VERSION  1
#define LAYOUT_FREELOG_UNIT 4096u

/* Fields are atomics: a reader may read a slot while the daemon rewrites
 * it (the reader then finds out from the head, and drops the entry). */
struct layout_freed {
	_Atomic uint64_t offset; /* a multiple of LAYOUT_FREELOG_UNIT */
	_Atomic uint64_t length; /* ditto, not 0 */
};

struct layout_published {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint64_t region_size; /* bytes of the file */
	/* the arena header's daemon_pid and start_time_ns: the region goes
	 * with that arena */
	uint64_t daemon_pid;
	uint64_t start_time_ns;
	uint64_t freelog_offset;  /* bytes from the start of the region */
	uint64_t freelog_entries; /* slots of the ring, a power of two */
	uint64_t reserved[9];     /* zero; room for a published index */
	/* alone on its cache line: the one word that changes */
	_Alignas(64) _Atomic uint64_t freelog_head;
};

_Static_assert(sizeof(struct layout_freed) == 16, "freed entry layout");
_Static_assert(offsetof(struct layout_published, freelog_head) == 128,
               "published header layout");

/* Rounds n up to the object alignment. */
static inline uint64_t layout_align(uint64_t n)
{
	return (n + (LAYOUT_ALIGN - 1)) & ~(uint64_t)(LAYOUT_ALIGN - 1);
}

#endif /* SHOAL_LAYOUT_H */
