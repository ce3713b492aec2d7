/*
 * alloc.h - the arena allocator: which byte ranges of the data area hold
 * objects and which are free.
 *
 * All of its state lives in the daemon's private memory; the arena itself is
 * never read or written here, so no client can corrupt it. It hands out
 * offsets, not pointers. Blocks are multiples of LAYOUT_ALIGN (64) bytes at
 * 64-byte aligned offsets. Guarantees:
 *   - exact capacity: a request fits whenever some free block is at least as
 *     large as the request rounded up to 64 bytes (in an empty allocator, a
 *     request of the whole size fits);
 *   - complete coalescing: two free blocks are never adjacent, so after
 *     every block is freed there is exactly one free block of the whole size;
 *   - operations are O(log n) or better in the number of blocks (no scans
 *     over all blocks on alloc or free). The one exception, in alloc.c's
 *     two-level segregated fit: a request within 1/16 of the largest free
 *     size scans the free blocks of its own size class, as does
 *     alloc_largest_free() for the highest class. alloc_fits_if(),
 *     alloc_foreach_free() and alloc_check() are O(blocks);
 *     alloc_alloc_prefer() is O(free blocks at least as large as asked).
 */
#ifndef SHOAL_ALLOC_H
#define SHOAL_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct alloc; /* opaque */

/*
 * Creates an allocator over [base, base + size). base and size must be
 * multiples of 64 and size > 0. Returns 0 and *out, SHOAL_EINVAL, or
 * SHOAL_ENOMEM.
 */
int alloc_create(uint64_t base, uint64_t size, struct alloc **out);

/* Frees the allocator and all its metadata. NULL is a no-op. */
void alloc_destroy(struct alloc *a);

/*
 * Allocates a block of at least size bytes (rounded up to 64; size 0 is
 * taken as 64). On success *offset is the block's start. Returns 0,
 * SHOAL_EFULL when no free block is large enough (nothing changes), or
 * SHOAL_ENOMEM when private memory for metadata ran out (nothing changes).
 */
int alloc_alloc(struct alloc *a, uint64_t size, uint64_t *offset);

/* A score for placing a block of size bytes at offset (see
 * alloc_alloc_prefer); 0 means "no better than any other". */
typedef uint64_t alloc_score_fn(void *ctx, uint64_t offset, uint64_t size);

/*
 * Like alloc_alloc, but among the free blocks that can hold the request it
 * takes the one whose low end scores highest (the daemon scores how much of
 * the range is already backed by memory, so that warm pages are reused
 * first); when no block scores above 0, the usual good fit. Costs one call
 * of score per free block of the request's size class and above: meant for
 * large requests, where that is small next to writing the block. Returns as
 * alloc_alloc does.
 */
int alloc_alloc_prefer(struct alloc *a, uint64_t size, alloc_score_fn *score,
                       void *ctx, uint64_t *offset);

/*
 * Allocates exactly [offset, offset + size) (size rounded up to 64; offset
 * 64-byte aligned), which must lie inside one free block: for rebuilding
 * the allocator from the extents of objects that survived a restart. The
 * free block is found by walking the address list from the start, so
 * claiming extents in descending offset order costs O(1) each (the block
 * that holds the next one is always the first). Returns 0, SHOAL_EINVAL when
 * the range is not inside one free block, or SHOAL_ENOMEM (nothing changes).
 */
int alloc_claim(struct alloc *a, uint64_t offset, uint64_t size);

/*
 * Frees the block that starts at offset and returns its size. offset must be
 * the start of an allocated block (anything else is a bug in the caller; it
 * is detected and returns 0 without changing anything).
 */
uint64_t alloc_free(struct alloc *a, uint64_t offset);

/* alloc_free(), also giving the free block that the freed one became part
 * of, merged with its free neighbours: [*span_off, *span_off + *span_size)
 * (left unset when it returns 0). */
uint64_t alloc_free_span(struct alloc *a, uint64_t offset, uint64_t *span_off,
                         uint64_t *span_size);

/* Size of the allocated block at offset, or 0 if none starts there. */
uint64_t alloc_block_size(const struct alloc *a, uint64_t offset);

/* Bytes in allocated blocks. */
uint64_t alloc_used(const struct alloc *a);

/* Size of the largest free block (0 when none). */
uint64_t alloc_largest_free(const struct alloc *a);

/*
 * Whether alloc_alloc(size) would succeed, answered from the size-class
 * bitmaps alone in O(1): true only when a class above size's own holds a
 * block. A block of size's own class that would fit is not looked for, so
 * false means "not sure", for callers that must not scan.
 */
bool alloc_surely_fits(const struct alloc *a, uint64_t size);

/* Whether alloc_alloc(size) would succeed: alloc_surely_fits(), then the
 * scan of size's own class that alloc_alloc() would do. */
bool alloc_fits_now(const struct alloc *a, uint64_t size);

/* Number of free blocks (1 for an empty allocator). */
uint64_t alloc_free_blocks(const struct alloc *a);

/*
 * Would a block of size bytes fit if every allocated block for which
 * reclaimable(ctx, offset, size) returns true were freed? Looks for a run of
 * adjacent free-or-reclaimable blocks of total size >= size. O(blocks); for
 * the slow path of a create that does not fit.
 */
bool alloc_fits_if(const struct alloc *a, uint64_t size,
                   bool (*reclaimable)(void *ctx, uint64_t offset,
                                       uint64_t size),
                   void *ctx);

/* Calls fn for every free block in address order; stops early when fn
 * returns non-zero and returns that value, else 0. */
int alloc_foreach_free(const struct alloc *a,
                       int (*fn)(void *ctx, uint64_t offset, uint64_t size),
                       void *ctx);

/*
 * Checks every invariant of the structure (blocks tile the range in order,
 * no two adjacent free blocks, the size index holds exactly the free blocks,
 * the used count matches). Returns 0, or -1 and writes what is broken to
 * msg (size bytes) when msg is not NULL.
 */
int alloc_check(const struct alloc *a, char *msg, size_t size);

#endif /* SHOAL_ALLOC_H */
