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
	uint64_t reserved[8]; /* zero; room for a published index */
};

/* Rounds n up to the object alignment. */
static inline uint64_t layout_align(uint64_t n)
{
	return (n + (LAYOUT_ALIGN - 1)) & ~(uint64_t)(LAYOUT_ALIGN - 1);
}

#endif /* SHOAL_LAYOUT_H */
