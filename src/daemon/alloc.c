/*
 * alloc.c - the arena allocator: a two-level segregated fit (TLSF) index
 * over an address-ordered list of blocks, all of it in private memory.
 *
 * The data area [base, base + size) is tiled by blocks, each used or free,
 * each a non-zero multiple of 64 bytes (a "granule") at a 64-byte aligned
 * offset. Nothing is ever read from or written to the arena itself.
 *
 * Every block is a node in one growable array. Nodes name each other by
 * index, never by pointer, so the array may move when realloc grows it.
 * Nodes are linked in address order (prev/next), which makes coalescing on
 * free O(1); nodes released by coalescing go on a spare list for reuse.
 *
 * Free blocks are also linked into size classes (fl, sl): fl is the class
 * of the power of two below the size in granules, and each power-of-two
 * range is split into SL_COUNT linear steps; sizes under SL_COUNT granules
 * get one class each. One bitmap over fl and one per fl over sl say which
 * classes are non-empty, so the first non-empty class at or above a given
 * one is two bit scans away. An allocation rounds the request up to the
 * next class boundary and takes the head of the first non-empty class from
 * there: every block in it is large enough, and the class bounds how much
 * larger it is than the smallest that would do ("good fit"). When nothing
 * is found that way, only blocks in the request's own class can still be
 * large enough, so that one list is scanned for the smallest block that
 * fits. This is what makes capacity exact. The block is carved from its low
 * end and the rest stays free in place.
 *
 * Used blocks are found by offset through the generic hash table (htab.h)
 * of their node indices, keyed by offset / 64. Free blocks are not in it:
 * nothing looks them up by offset.
 *
 * Invariants, all verified by alloc_check():
 *   - the address list tiles [base, base + size) in order, without gaps or
 *     overlap, and no two neighbouring blocks are both free;
 *   - a block is in a size-class list iff it is free, in exactly the one its
 *     size maps to; a bitmap bit is set iff its class (or, for fl, one of
 *     its classes) is non-empty;
 *   - the hash table holds exactly the used blocks; used, nused and nfree
 *     count what the address list holds;
 *   - every node below nlen is either in the address list or spare.
 *
 * Every path that needs more metadata grows it before changing anything,
 * so SHOAL_ENOMEM leaves the allocator as it was. alloc_free() never needs
 * memory. Metadata is never shrunk; it stays at its high-water mark.
 *
 * Cost: alloc and free are O(1) (expected, for the hash) except for the
 * own-class scan, which runs only when no larger class holds a block, that
 * is when the request is within 1/SL_COUNT of the largest free size.
 */
#include "alloc.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "debug.h"
#include "htab.h"
#include "layout.h"
#include "os.h"
#include "shoal.h"

#define GRANULE_SHIFT 6
_Static_assert(LAYOUT_ALIGN == 1u << GRANULE_SHIFT, "granule is LAYOUT_ALIGN");

/* No node: the end of a list. Node indices are below it. */
#define NIL UINT32_MAX

/*
 * Size classes. A size of at most 2^58 - 1 granules (the largest arena)
 * rounded up to a class boundary has fl <= 58 - SL_SHIFT + 1 = 55, so 64
 * first-level classes and one uint64_t bitmap cover every size.
 */
#define SL_SHIFT 4
#define SL_COUNT (1u << SL_SHIFT)
#define FL_COUNT 64

#define NODES_MIN 16

enum node_state { NODE_SPARE, NODE_USED, NODE_FREE };

struct alloc_node {
	uint64_t off;
	uint64_t size;
	uint32_t prev, next; /* neighbours in address order, NIL at the ends */
	uint32_t fprev, fnext; /* free: size-class list; spare: fnext links */
	uint8_t state;         /* enum node_state */
};

struct alloc {
	uint64_t base;
	uint64_t size;
	uint64_t used;  /* bytes in used blocks */
	uint64_t nused; /* used blocks == entries in the hash table */
	uint64_t nfree; /* free blocks */

	struct alloc_node *nodes;
	uint32_t ncap;  /* nodes allocated */
	uint32_t nlen;  /* nodes ever handed out; the rest are fresh */
	uint32_t spare; /* released nodes, linked by fnext */
	uint32_t head;  /* the block at base */

	struct htab used_blocks; /* entries: struct used_block */

	uint64_t fl_map;
	uint32_t sl_map[FL_COUNT];
	uint32_t heads[FL_COUNT][SL_COUNT];
};

static unsigned log2_floor(uint64_t x)
{
	return 63u - (unsigned)__builtin_clzll(x);
}

/* The class holding blocks of g granules (g > 0). */
static void size_class(uint64_t g, unsigned *fl, unsigned *sl)
{
	if (g < SL_COUNT) {
		*fl = 0;
		*sl = (unsigned)g;
	} else {
		unsigned l = log2_floor(g);
		*fl = l - SL_SHIFT + 1;
		*sl = (unsigned)(g >> (l - SL_SHIFT)) - SL_COUNT;
	}
}

/* The smallest class whose every block holds at least g granules. */
static void fit_class(uint64_t g, unsigned *fl, unsigned *sl)
{
	if (g >= SL_COUNT)
		g += (1ull << (log2_floor(g) - SL_SHIFT)) - 1;
	size_class(g, fl, sl);
}

static void index_insert(struct alloc *a, uint32_t i)
{
	struct alloc_node *n = &a->nodes[i];
	unsigned fl, sl;

	SHOAL_ASSERT(n->state == NODE_FREE && n->size >= LAYOUT_ALIGN &&
	             (n->size & (LAYOUT_ALIGN - 1)) == 0);
	size_class(n->size >> GRANULE_SHIFT, &fl, &sl);
	n->fprev = NIL;
	n->fnext = a->heads[fl][sl];
	if (n->fnext != NIL)
		a->nodes[n->fnext].fprev = i;
	a->heads[fl][sl] = i;
	a->sl_map[fl] |= 1u << sl;
	a->fl_map |= 1ull << fl;
}

static void index_remove(struct alloc *a, uint32_t i)
{
	struct alloc_node *n = &a->nodes[i];
	unsigned fl, sl;

	SHOAL_ASSERT(n->state == NODE_FREE);
	size_class(n->size >> GRANULE_SHIFT, &fl, &sl);
	if (n->fnext != NIL)
		a->nodes[n->fnext].fprev = n->fprev;
	if (n->fprev != NIL) {
		a->nodes[n->fprev].fnext = n->fnext;
	} else {
		a->heads[fl][sl] = n->fnext;
		if (n->fnext == NIL) {
			a->sl_map[fl] &= ~(1u << sl);
			if (a->sl_map[fl] == 0)
				a->fl_map &= ~(1ull << fl);
		}
	}
}

/* Head of the first non-empty class at or above (fl, sl), or NIL. */
static uint32_t class_search(const struct alloc *a, unsigned fl, unsigned sl)
{
	uint32_t sl_bits = a->sl_map[fl] & (~0u << sl);

	if (sl_bits == 0) {
		uint64_t fl_bits = a->fl_map & (~0ull << (fl + 1));
		if (fl_bits == 0)
			return NIL;
		fl = (unsigned)__builtin_ctzll(fl_bits);
		sl_bits = a->sl_map[fl];
	}
	return a->heads[fl][__builtin_ctz(sl_bits)];
}

/*
 * A free block of at least need bytes (a multiple of 64), or NIL when there
 * is none. Good fit from the classes above need's; failing that, the
 * smallest fitting block of need's own class.
 */
static uint32_t index_find(const struct alloc *a, uint64_t need)
{
	uint64_t g = need >> GRANULE_SHIFT;
	uint32_t i, best = NIL;
	unsigned fl, sl;

	fit_class(g, &fl, &sl);
	i = class_search(a, fl, sl);
	if (i != NIL)
		return i;
	size_class(g, &fl, &sl);
	for (i = a->heads[fl][sl]; i != NIL; i = a->nodes[i].fnext) {
		uint64_t s = a->nodes[i].size;
		if (s >= need && (best == NIL || s < a->nodes[best].size)) {
			best = i;
			if (s == need)
				break;
		}
	}
	return best;
}

/* Makes sure node_take() has a node to give. 0 or SHOAL_ENOMEM. */
static int node_reserve(struct alloc *a)
{
	struct alloc_node *nodes;
	uint32_t cap;

	if (a->spare != NIL || a->nlen < a->ncap)
		return 0;
	cap = a->ncap > NIL / 2 ? NIL : a->ncap * 2;
	if (cap == a->ncap)
		return SHOAL_ENOMEM;
	nodes = os_realloc(a->nodes, (size_t)cap * sizeof *nodes);
	if (!nodes)
		return SHOAL_ENOMEM;
	a->nodes = nodes;
	a->ncap = cap;
	return 0;
}

/* A node to use; node_reserve() must have succeeded since the last take. */
static uint32_t node_take(struct alloc *a)
{
	uint32_t i = a->spare;

	if (i != NIL)
		a->spare = a->nodes[i].fnext;
	else
		i = a->nlen++;
	return i;
}

static void node_release(struct alloc *a, uint32_t i)
{
	SHOAL_ASSERT(a->nodes[i].state != NODE_SPARE);
	a->nodes[i].state = NODE_SPARE;
	a->nodes[i].fnext = a->spare;
	a->spare = i;
}

/* Unlinks node i from the address list (its neighbours are joined). */
static void node_unlink(struct alloc *a, uint32_t i)
{
	struct alloc_node *n = &a->nodes[i];

	if (n->prev != NIL)
		a->nodes[n->prev].next = n->next;
	if (n->next != NIL)
		a->nodes[n->next].prev = n->prev;
}

/* An entry of the hash table of used blocks: the offset is kept beside the
 * node, so that a lookup reads no node but the one it finds. */
struct used_block {
	uint64_t off;
	uint32_t node;
};

static bool block_at(const void *entry, const void *key)
{
	return ((const struct used_block *)entry)->off ==
	       *(const uint64_t *)key;
}

static uint64_t off_hash(uint64_t off)
{
	return htab_hash_u64(off >> GRANULE_SHIFT);
}

/* The hash entry of the used block at off, or NULL. */
static struct used_block *used_entry(const struct alloc *a, uint64_t off)
{
	if (off & (LAYOUT_ALIGN - 1))
		return NULL;
	return htab_find(&a->used_blocks, off_hash(off), block_at, &off);
}

/* The node of the used block at off, or NIL. */
static uint32_t used_node(const struct alloc *a, uint64_t off)
{
	const struct used_block *e = used_entry(a, off);

	return e ? e->node : NIL;
}

/* Indexes node i, a used block; htab_reserve() has made room. */
static void used_add(struct alloc *a, uint32_t i)
{
	struct used_block e = {a->nodes[i].off, i};
	int rc = htab_insert(&a->used_blocks, off_hash(e.off), &e, NULL);

	SHOAL_ASSERT(rc == 0);
	(void)rc;
}

int alloc_create(uint64_t base, uint64_t size, struct alloc **out)
{
	struct alloc *a;

	if (!out || size == 0 || ((base | size) & (LAYOUT_ALIGN - 1)) ||
	    base > UINT64_MAX - size)
		return SHOAL_EINVAL;
	a = os_realloc(NULL, sizeof *a);
	if (!a)
		return SHOAL_ENOMEM;
	memset(a, 0, sizeof *a);
	memset(a->heads, 0xff, sizeof a->heads); /* NIL */
	a->nodes = os_realloc(NULL, NODES_MIN * sizeof *a->nodes);
	if (!a->nodes)
		goto fail;
	a->base = base;
	a->size = size;
	a->ncap = NODES_MIN;
	a->spare = NIL;
	htab_init(&a->used_blocks, sizeof(struct used_block));
	if (htab_reserve(&a->used_blocks, NODES_MIN / 2))
		goto fail;

	a->head = node_take(a);
	a->nodes[a->head] = (struct alloc_node){
	        .off = base,
	        .size = size,
	        .prev = NIL,
	        .next = NIL,
	        .state = NODE_FREE,
	};
	index_insert(a, a->head);
	a->nfree = 1;
	*out = a;
	return 0;
fail:
	free(a->nodes);
	free(a);
	return SHOAL_ENOMEM;
}

void alloc_destroy(struct alloc *a)
{
	if (!a)
		return;
	htab_free(&a->used_blocks);
	free(a->nodes);
	free(a);
}

/*
 * Finds a free block (see index_find()), reserves the node a split needs
 * and a hash slot before touching anything, then carves the request from
 * the block's low end; the remainder stays free where it is. The
 * remainder's right neighbour is used (free blocks are never adjacent), so
 * no coalescing is needed.
 */
/* Turns free block i (at least need bytes) into a used block of need
 * bytes at its low end; the rest stays free in place. */
static int carve(struct alloc *a, uint32_t i, uint64_t need, uint64_t *offset)
{
	struct alloc_node *b, *r;
	uint32_t j;

	if (a->nodes[i].size > need && node_reserve(a))
		return SHOAL_ENOMEM;
	if (htab_reserve(&a->used_blocks, 1))
		return SHOAL_ENOMEM;

	index_remove(a, i);
	b = &a->nodes[i];
	if (b->size > need) {
		j = node_take(a);
		r = &a->nodes[j];
		*r = (struct alloc_node){
		        .off = b->off + need,
		        .size = b->size - need,
		        .prev = i,
		        .next = b->next,
		        .state = NODE_FREE,
		};
		if (b->next != NIL)
			a->nodes[b->next].prev = j;
		b->next = j;
		b->size = need;
		index_insert(a, j);
	} else {
		a->nfree--;
	}
	b->state = NODE_USED;
	used_add(a, i);
	a->used += need;
	a->nused++;
	*offset = b->off;
	return 0;
}

int alloc_alloc(struct alloc *a, uint64_t size, uint64_t *offset)
{
	uint64_t need;
	uint32_t i;

	if (size > a->size)
		return SHOAL_EFULL;
	need = size == 0 ? LAYOUT_ALIGN : layout_align(size);
	i = index_find(a, need);
	if (i == NIL)
		return SHOAL_EFULL;
	return carve(a, i, need, offset);
}

/*
 * The free block, among those of at least need bytes, whose low end scores
 * highest, or NIL when none scores above 0. Walks the size classes from
 * need's own upwards: O(free blocks of the classes) calls of score.
 */
static uint32_t best_scored(const struct alloc *a, uint64_t need,
                            alloc_score_fn *score, void *ctx)
{
	uint32_t best = NIL;
	uint64_t best_score = 0;
	unsigned fl0, sl0;

	size_class(need >> GRANULE_SHIFT, &fl0, &sl0);
	for (unsigned fl = fl0; fl < FL_COUNT; fl++) {
		if (!(a->fl_map & (1ull << fl)))
			continue;
		for (unsigned sl = fl == fl0 ? sl0 : 0; sl < SL_COUNT; sl++) {
			for (uint32_t i = a->heads[fl][sl]; i != NIL;
			     i = a->nodes[i].fnext) {
				if (a->nodes[i].size < need)
					continue;
				uint64_t v = score(ctx, a->nodes[i].off, need);
				if (v > best_score) {
					best_score = v;
					best = i;
				}
			}
		}
	}
	return best;
}

int alloc_alloc_prefer(struct alloc *a, uint64_t size, alloc_score_fn *score,
                       void *ctx, uint64_t *offset)
{
	uint64_t need;
	uint32_t i;

	if (size > a->size)
		return SHOAL_EFULL;
	need = size == 0 ? LAYOUT_ALIGN : layout_align(size);
	i = best_scored(a, need, score, ctx);
	if (i == NIL)
		i = index_find(a, need);
	if (i == NIL)
		return SHOAL_EFULL;
	return carve(a, i, need, offset);
}

/* Splits free node i at byte `at` (inside it): the high part becomes a new
 * free node after i. The caller has reserved a node. Returns the new node. */
static uint32_t split_free(struct alloc *a, uint32_t i, uint64_t at)
{
	struct alloc_node *b = &a->nodes[i];
	uint32_t j = node_take(a);

	index_remove(a, i);
	a->nodes[j] = (struct alloc_node){
	        .off = at,
	        .size = b->off + b->size - at,
	        .prev = i,
	        .next = b->next,
	        .state = NODE_FREE,
	};
	if (b->next != NIL)
		a->nodes[b->next].prev = j;
	b->next = j;
	b->size = at - b->off;
	index_insert(a, i);
	index_insert(a, j);
	a->nfree++;
	return j;
}

int alloc_claim(struct alloc *a, uint64_t offset, uint64_t size)
{
	uint64_t need = size == 0 ? LAYOUT_ALIGN : layout_align(size);
	uint32_t i;

	if ((offset & (LAYOUT_ALIGN - 1)) || offset < a->base ||
	    need > a->size || offset - a->base > a->size - need)
		return SHOAL_EINVAL;
	for (i = a->head; i != NIL; i = a->nodes[i].next)
		if (a->nodes[i].off + a->nodes[i].size > offset)
			break;
	if (i == NIL || a->nodes[i].state != NODE_FREE ||
	    a->nodes[i].off + a->nodes[i].size < offset + need)
		return SHOAL_EINVAL;
	/* Up to two splits: make room for two fresh nodes and the hash slot
	 * before changing anything. */
	while (a->ncap - a->nlen < 2) {
		uint32_t cap = a->ncap > NIL / 2 ? NIL : a->ncap * 2;
		struct alloc_node *nodes;

		if (cap == a->ncap)
			return SHOAL_ENOMEM;
		nodes = os_realloc(a->nodes, (size_t)cap * sizeof *nodes);
		if (!nodes)
			return SHOAL_ENOMEM;
		a->nodes = nodes;
		a->ncap = cap;
	}
	if (htab_reserve(&a->used_blocks, 1))
		return SHOAL_ENOMEM;
	if (a->nodes[i].off < offset)
		i = split_free(a, i, offset);
	if (a->nodes[i].size > need)
		split_free(a, i, offset + need);
	index_remove(a, i);
	a->nfree--;
	a->nodes[i].state = NODE_USED;
	used_add(a, i);
	a->used += need;
	a->nused++;
	return 0;
}

uint64_t alloc_free(struct alloc *a, uint64_t offset)
{
	uint64_t span_off, span_size;

	return alloc_free_span(a, offset, &span_off, &span_size);
}

/*
 * Frees the used block at offset and merges it with a free neighbour on
 * either side; the merged block keeps the lowest node, the others become
 * spare. Returns the freed size, or 0 (nothing changed) when no used block
 * starts at offset.
 */
uint64_t alloc_free_span(struct alloc *a, uint64_t offset, uint64_t *span_off,
                         uint64_t *span_size)
{
	struct used_block *e = used_entry(a, offset);
	uint32_t i, p, n;
	uint64_t size;

	if (!e)
		return 0;
	i = e->node;
	SHOAL_ASSERT(a->nodes[i].state == NODE_USED &&
	             a->nodes[i].off == offset);
	htab_remove(&a->used_blocks, e);
	size = a->nodes[i].size;
	a->used -= size;
	a->nused--;
	a->nfree++;
	a->nodes[i].state = NODE_FREE;

	p = a->nodes[i].prev;
	if (p != NIL && a->nodes[p].state == NODE_FREE) {
		index_remove(a, p);
		a->nodes[p].size += a->nodes[i].size;
		node_unlink(a, i);
		node_release(a, i);
		a->nfree--;
		i = p;
	}
	n = a->nodes[i].next;
	if (n != NIL && a->nodes[n].state == NODE_FREE) {
		index_remove(a, n);
		a->nodes[i].size += a->nodes[n].size;
		node_unlink(a, n);
		node_release(a, n);
		a->nfree--;
	}
	index_insert(a, i);
	*span_off = a->nodes[i].off;
	*span_size = a->nodes[i].size;
	return size;
}

uint64_t alloc_block_size(const struct alloc *a, uint64_t offset)
{
	uint32_t i = used_node(a, offset);

	return i == NIL ? 0 : a->nodes[i].size;
}

uint64_t alloc_used(const struct alloc *a)
{
	return a->used;
}

/* Scans only the highest non-empty class: any block in a lower class is
 * smaller than every block in it. */
uint64_t alloc_largest_free(const struct alloc *a)
{
	uint64_t largest = 0;
	unsigned fl;

	if (a->fl_map == 0)
		return 0;
	fl = log2_floor(a->fl_map);
	for (uint32_t i = a->heads[fl][log2_floor(a->sl_map[fl])]; i != NIL;
	     i = a->nodes[i].fnext) {
		if (a->nodes[i].size > largest)
			largest = a->nodes[i].size;
	}
	return largest;
}

bool alloc_surely_fits(const struct alloc *a, uint64_t size)
{
	uint64_t need = size == 0 ? LAYOUT_ALIGN : layout_align(size);
	unsigned fl, sl;

	if (need > a->size)
		return false;
	fit_class(need >> GRANULE_SHIFT, &fl, &sl);
	return class_search(a, fl, sl) != NIL;
}

bool alloc_fits_now(const struct alloc *a, uint64_t size)
{
	uint64_t need = size == 0 ? LAYOUT_ALIGN : layout_align(size);

	return need <= a->size && index_find(a, need) != NIL;
}

uint64_t alloc_free_blocks(const struct alloc *a)
{
	return a->nfree;
}

bool alloc_fits_if(const struct alloc *a, uint64_t size,
                   bool (*reclaimable)(void *ctx, uint64_t offset,
                                       uint64_t size),
                   void *ctx)
{
	uint64_t need, run = 0;

	if (size > a->size)
		return false;
	need = size == 0 ? LAYOUT_ALIGN : layout_align(size);
	for (uint32_t i = a->head; i != NIL; i = a->nodes[i].next) {
		const struct alloc_node *n = &a->nodes[i];
		if (n->state == NODE_FREE ||
		    reclaimable(ctx, n->off, n->size)) {
			run += n->size;
			if (run >= need)
				return true;
		} else {
			run = 0;
		}
	}
	return false;
}

int alloc_foreach_free(const struct alloc *a,
                       int (*fn)(void *ctx, uint64_t offset, uint64_t size),
                       void *ctx)
{
	for (uint32_t i = a->head; i != NIL; i = a->nodes[i].next) {
		const struct alloc_node *n = &a->nodes[i];
		if (n->state == NODE_FREE) {
			int rc = fn(ctx, n->off, n->size);
			if (rc)
				return rc;
		}
	}
	return 0;
}

__attribute__((format(printf, 3, 4))) static int
check_fail(char *msg, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (msg && size) {
		va_start(ap, fmt);
		vsnprintf(msg, size, fmt, ap);
		va_end(ap);
	}
	return -1;
}

#define CHECK(cond, ...)                                           \
	do {                                                       \
		if (!(cond))                                       \
			return check_fail(msg, size, __VA_ARGS__); \
	} while (0)

/* The address list: tiling, order, back links, coalescing, counts, and
 * that each used block is found through the hash table. Sets *live to the
 * number of nodes in the list. */
static int check_blocks(const struct alloc *a, uint32_t *live, char *msg,
                        size_t size)
{
	uint64_t end = a->base, used = 0, nused = 0, nfree = 0;
	uint32_t prev = NIL, count = 0;
	int prev_free = 0;

	CHECK(a->head < a->nlen, "head %" PRIu32 " out of range", a->head);
	for (uint32_t i = a->head; i != NIL; i = a->nodes[i].next) {
		const struct alloc_node *n;
		CHECK(i < a->nlen, "node %" PRIu32 " out of range", i);
		CHECK(++count <= a->nlen, "address list has a cycle");
		n = &a->nodes[i];
		CHECK(n->prev == prev, "node %" PRIu32 ": bad prev link", i);
		CHECK(n->off == end,
		      "block at %" PRIu64 " should start at %" PRIu64, n->off,
		      end);
		CHECK(n->size && !(n->size & (LAYOUT_ALIGN - 1)) &&
		              n->size <= a->base + a->size - end,
		      "block at %" PRIu64 " has bad size %" PRIu64, n->off,
		      n->size);
		if (n->state == NODE_USED) {
			used += n->size;
			nused++;
			CHECK(used_node(a, n->off) == i,
			      "used block at %" PRIu64 " not in hash", n->off);
		} else {
			CHECK(n->state == NODE_FREE,
			      "spare node %" PRIu32 " in address list", i);
			CHECK(!prev_free, "free blocks adjacent at %" PRIu64,
			      n->off);
			nfree++;
		}
		prev_free = n->state == NODE_FREE;
		end += n->size;
		prev = i;
	}
	CHECK(end == a->base + a->size, "blocks end at %" PRIu64, end);
	CHECK(used == a->used, "used is %" PRIu64 ", blocks hold %" PRIu64,
	      a->used, used);
	CHECK(nused == a->nused, "nused %" PRIu64 " != %" PRIu64, a->nused,
	      nused);
	CHECK(nfree == a->nfree, "nfree %" PRIu64 " != %" PRIu64, a->nfree,
	      nfree);
	*live = count;
	return 0;
}

/*
 * The size index: bitmaps match list emptiness, each listed node is free
 * and in its own class, back links hold and each list head has no fprev.
 * With those, a node cannot be listed twice (its one fprev fixes its one
 * predecessor, back to a head), so counting nfree listed nodes proves the
 * index holds exactly the free blocks.
 */
static int check_index(const struct alloc *a, char *msg, size_t size)
{
	uint64_t listed = 0;

	for (unsigned fl = 0; fl < FL_COUNT; fl++) {
		CHECK(!!(a->fl_map & (1ull << fl)) == (a->sl_map[fl] != 0),
		      "fl bitmap wrong at %u", fl);
		CHECK((a->sl_map[fl] >> SL_COUNT) == 0, "stray sl bits at %u",
		      fl);
		for (unsigned sl = 0; sl < SL_COUNT; sl++) {
			uint32_t prev = NIL;
			CHECK(!!(a->sl_map[fl] & (1u << sl)) ==
			              (a->heads[fl][sl] != NIL),
			      "sl bitmap wrong at %u/%u", fl, sl);
			for (uint32_t i = a->heads[fl][sl]; i != NIL;
			     i = a->nodes[i].fnext) {
				const struct alloc_node *n;
				unsigned f, s;
				CHECK(i < a->nlen, "listed node out of range");
				CHECK(++listed <= a->nfree,
				      "more listed than free blocks");
				n = &a->nodes[i];
				CHECK(n->state == NODE_FREE,
				      "node %" PRIu32 " listed but not free",
				      i);
				CHECK(n->fprev == prev,
				      "node %" PRIu32 ": bad fprev", i);
				size_class(n->size >> GRANULE_SHIFT, &f, &s);
				CHECK(f == fl && s == sl,
				      "block at %" PRIu64 " in wrong class",
				      n->off);
				prev = i;
			}
		}
	}
	CHECK(listed == a->nfree, "%" PRIu64 " free blocks listed of %" PRIu64,
	      listed, a->nfree);
	return 0;
}

/* The hash table holds exactly the used blocks (check_blocks() found
 * each used block through it), each once. */
static int check_used_blocks(const struct alloc *a, char *msg, size_t size)
{
	const struct used_block *e;
	char hmsg[128];

	CHECK(htab_check(&a->used_blocks, hmsg, sizeof(hmsg)) == 0, "%s", hmsg);
	for (size_t pos = 0; (e = htab_next(&a->used_blocks, &pos));) {
		uint32_t i = e->node;
		CHECK(i < a->nlen && a->nodes[i].state == NODE_USED &&
		              a->nodes[i].off == e->off &&
		              used_entry(a, e->off) == e,
		      "hash entry of node %" PRIu32 " names no used block", i);
	}
	CHECK(a->used_blocks.count == a->nused,
	      "hash holds %zu of %" PRIu64 " used blocks", a->used_blocks.count,
	      a->nused);
	return 0;
}

/* Every node is either live or spare: none leaks. */
static int check_spare(const struct alloc *a, uint32_t live, char *msg,
                       size_t size)
{
	uint32_t count = 0;

	CHECK(a->nlen <= a->ncap, "nlen past ncap");
	for (uint32_t i = a->spare; i != NIL; i = a->nodes[i].fnext) {
		CHECK(i < a->nlen, "spare node out of range");
		CHECK(++count <= a->nlen - live, "spare list too long");
		CHECK(a->nodes[i].state == NODE_SPARE,
		      "node %" PRIu32 " on spare list in use", i);
	}
	CHECK(live + count == a->nlen,
	      "%" PRIu32 " live + %" PRIu32 " spare nodes of %" PRIu32, live,
	      count, a->nlen);
	return 0;
}

#undef CHECK

int alloc_check(const struct alloc *a, char *msg, size_t size)
{
	uint32_t live = 0;

	if (check_blocks(a, &live, msg, size) || check_index(a, msg, size) ||
	    check_used_blocks(a, msg, size) || check_spare(a, live, msg, size))
		return -1;
	if (msg && size)
		msg[0] = '\0';
	return 0;
}
