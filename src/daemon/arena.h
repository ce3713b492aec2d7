/*
 * arena.h - the shared-memory arena: its file, its header, and which parts
 * of it are backed by allocated pages.
 *
 * The arena is a memfd (sealed against growing and shrinking, so no client
 * can truncate it under the others) or an unlinked file in a directory the
 * user names (e.g. a hugetlbfs or tmpfs mount). The daemon maps it only to
 * write the header and to prefault; it never reads or writes object bytes.
 * Pages are reserved by the creating client (see PROTO_CREATE_BACKED); the
 * daemon remembers, per LAYOUT_CHUNK, which chunks are known to be backed,
 * and forgets a chunk when it trims it.
 */
#ifndef SHOAL_ARENA_H
#define SHOAL_ARENA_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "layout.h"

#define ARENA_PAGE    4096u /* granule of the page bits */
#define ARENA_BACKED  1u    /* every page of the chunk is allocated */
#define ARENA_TOUCHED 2u    /* some page of the chunk may be allocated */
#define ARENA_BUSY    4u    /* being populated or punched (see arena.c) */

struct arena {
	int fd;
	/* A read-only description of the same file: what clients get, so
	 * that they cannot write, punch holes or truncate through it. */
	int ro_fd;
	uint8_t *base;
	uint64_t map_size;
	uint64_t page_size; /* the backing's page: a huge page on hugetlbfs */
	uint64_t capacity;  /* the allocator's area: requested rounded to 64 */
	uint64_t requested; /* capacity as asked for: what clients are told */
	uint64_t data_offset;
	uint64_t nchunks;
	_Atomic uint8_t *chunks; /* ARENA_BACKED | ARENA_TOUCHED per chunk */
	/* One bit per ARENA_PAGE: known backed, for chunks not wholly known
	 * (small objects). Main thread only. */
	uint64_t *pages;
	char backing[256]; /* "memfd" or the directory, for messages */
	/* What the header page must say; clients' bugs may overwrite the
	 * shared copy, this one is private. */
	struct layout_header header;
	bool prefault_running;
	atomic_bool prefault_stop;
	pthread_t prefault_thread;
};

/*
 * Creates the arena for capacity bytes (rounded up to 64) backed by a memfd,
 * or by an unlinked file in dir when dir is not NULL. Refuses a capacity the
 * backing cannot hold (more than the machine's memory, or than the free
 * space of dir's filesystem). On failure writes a message for the user into
 * err (size bytes) and returns a negative code.
 */
int arena_open(struct arena *a, uint64_t capacity, const char *dir, char *err,
               size_t size);

/* Rewrites the header page if it differs from what the daemon wrote (a
 * creator whose window shares the page, e.g. on hugetlbfs, may have
 * scribbled over it). Returns true if it had to. */
bool arena_repair_header(struct arena *a);

/*
 * Like arena_open(), for `serve --persist DIR`: the arena is the file
 * DIR/arena, kept after the daemon ends. If it exists and holds an arena
 * header, its contents are kept (*reused is set): the objects that
 * persist.c restores are still there, whether the last daemon stopped or
 * was killed (the page cache keeps a file's bytes when its writer dies). It
 * is resized to the new capacity; only the header is rewritten.
 */
int arena_open_persist(struct arena *a, uint64_t capacity, const char *dir,
                       bool *reused, char *err, size_t size);

/* Stops the prefault thread, unmaps and closes. */
void arena_close(struct arena *a);

/* Whether every page of [off, off + len) is known backed: its chunk is, or
 * the page itself is (after a sealed object covered part of it). */
bool arena_is_backed(const struct arena *a, uint64_t off, uint64_t len);

/* Marks the pages that [off, off + len) overlaps as backed (the creator
 * populated them, rounded out to pages), and every chunk whose pages are
 * then all backed. */
void arena_mark_backed(struct arena *a, uint64_t off, uint64_t len);

/* Marks every chunk that [off, off + len) overlaps as possibly holding
 * allocated pages (so that trimming knows where to look). */
void arena_mark_touched(struct arena *a, uint64_t off, uint64_t len);

/* Returns the pages of the touched chunks fully inside [off, off + len) to
 * the OS (the range must hold no object) and forgets them; stops after
 * max_chunks chunks. With keep, the first *keep bytes of touched chunks met
 * stay (the warm reserve) and *keep goes down by what was kept. A chunk the
 * prefault thread is populating is skipped. Returns the number of chunks
 * trimmed, or -errno when the backing refused to free a chunk (which then
 * keeps its flags). */
long arena_trim(struct arena *a, uint64_t off, uint64_t len,
                uint64_t max_chunks, uint64_t *keep);

struct alloc;

/* Requests from this size on look for warm memory first. */
#define ARENA_WARM_MIN (2ull << 20)

/*
 * Allocates size bytes from al. A request of at least ARENA_WARM_MIN goes
 * where most of its chunks are already backed, if any free place has
 * some: reusing warm pages makes a put run at memcpy speed instead of
 * paying a page fault per 4 KiB, and keeps the memory a store uses, and
 * the pages every reader maps, from wandering over the arena refresh after
 * refresh. Smaller requests, and large ones when nothing is warm, take
 * the allocator's good fit. Returns as alloc_alloc does.
 */
int arena_alloc_warm(struct arena *a, struct alloc *al, uint64_t size,
                     uint64_t *offset);

/* Bytes in chunks known backed fully inside [off, off + len): how warm a
 * place for a new object is. */
uint64_t arena_warm_bytes(const struct arena *a, uint64_t off, uint64_t len);

/* Bytes in chunks known to be backed. */
uint64_t arena_backed_bytes(const struct arena *a);

/* Starts a background thread that populates the whole arena, chunk by
 * chunk, marking chunks backed as it goes. Returns 0 or -errno. */
int arena_start_prefault(struct arena *a);

#endif /* SHOAL_ARENA_H */
