/*
 * test_arena.c - which parts of the arena are backed: the prefault thread
 * and trimming never leave a punched chunk marked backed, trimming keeps
 * the warm reserve, and large allocations go to warm memory first.
 *
 * "Backed" is checked against the kernel, not the flags: a chunk the
 * flags call backed must hold no hole in the memfd (lseek SEEK_HOLE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "alloc.h"
#include "arena.h"
#include "layout.h"
#include "os.h"

#define CHUNKS 8
#define CAP    ((uint64_t)CHUNKS * LAYOUT_CHUNK)

static void open_arena(struct arena *a)
{
	char err[256];

	assert_int_equal(arena_open(a, CAP, NULL, err, sizeof(err)), 0);
}

/* Whether chunk c of the memfd has no hole. */
static bool chunk_allocated(const struct arena *a, uint64_t c)
{
	off_t start = (off_t)(c * LAYOUT_CHUNK);
	off_t end = start + LAYOUT_CHUNK;

	if ((uint64_t)end > a->map_size)
		end = (off_t)a->map_size;
	off_t hole = lseek(a->fd, start, SEEK_HOLE);
	assert_true(hole >= start);
	return hole >= end;
}

/* Every chunk flagged backed is allocated in the kernel. */
static void check_flags_true(const struct arena *a)
{
	for (uint64_t c = 0; c < a->nchunks; c++) {
		uint8_t f = atomic_load(&a->chunks[c]);
		assert_false(f & ARENA_BUSY);
		if (f & ARENA_BACKED && !chunk_allocated(a, c))
			fail_msg("chunk %llu is flagged backed but is a hole",
			         (unsigned long long)c);
	}
}

static void wait_prefault(struct arena *a)
{
	pthread_join(a->prefault_thread, NULL);
	a->prefault_running = false;
}

/* The trim runs while the prefault thread holds a chunk: it must leave
 * that chunk alone, and everything flagged backed at the end is. */
static struct arena *hooked;
static uint64_t hook_trimmed = 0;
static int hook_calls;

static long trim_inside_prefault(enum os_call call, size_t len)
{
	(void)len;
	if (call == OS_MADVISE && hooked && hook_calls++ == 2) {
		/* Chunk 2 is claimed by the prefault thread right now. */
		assert_true(atomic_load(&hooked->chunks[2]) & ARENA_BUSY);
		long n = arena_trim(hooked, 0, hooked->map_size, CHUNKS, NULL);
		assert_true(n >= 0);
		hook_trimmed = (uint64_t)n;
		assert_true(atomic_load(&hooked->chunks[2]) & ARENA_BUSY);
	}
	return 0;
}

static void test_trim_skips_a_chunk_being_prefaulted(void **state)
{
	struct arena a;

	(void)state;
	open_arena(&a);
	arena_mark_touched(&a, 0, a.map_size);
	hooked = &a;
	hook_calls = 0;
	os_fault_hook = trim_inside_prefault;
	assert_int_equal(arena_start_prefault(&a), 0);
	wait_prefault(&a);
	os_fault_hook = NULL;
	hooked = NULL;
	/* Chunks 0 and 1 were populated, then punched by the trim; 2 was
	 * skipped; the rest were punched before the thread got there, and
	 * populated after. */
	assert_true(hook_trimmed >= 2);
	check_flags_true(&a);
	for (uint64_t c = 0; c < a.nchunks; c++)
		assert_int_equal(!!(atomic_load(&a.chunks[c]) & ARENA_BACKED),
		                 c >= 2);
	arena_close(&a);
}

/* A chunk a trim has claimed is not populated by the prefault thread. */
static void test_prefault_skips_a_chunk_being_trimmed(void **state)
{
	struct arena a;

	(void)state;
	open_arena(&a);
	atomic_store(&a.chunks[3], ARENA_BUSY | ARENA_TOUCHED);
	assert_int_equal(arena_start_prefault(&a), 0);
	wait_prefault(&a);
	assert_int_equal(atomic_load(&a.chunks[3]), ARENA_BUSY | ARENA_TOUCHED);
	atomic_store(&a.chunks[3], 0);
	check_flags_true(&a);
	assert_false(chunk_allocated(&a, 3));
	arena_close(&a);
}

/* Both at once, many times: whatever the interleaving, no chunk flagged
 * backed is a hole. */
static void test_prefault_and_trim_race(void **state)
{
	(void)state;
	for (int round = 0; round < 40; round++) {
		struct arena a;
		open_arena(&a);
		arena_mark_touched(&a, 0, a.map_size);
		assert_int_equal(arena_start_prefault(&a), 0);
		for (int i = 0; i < 200; i++)
			assert_true(arena_trim(&a, 0, a.map_size, CHUNKS,
			                       NULL) >= 0);
		wait_prefault(&a);
		check_flags_true(&a);
		arena_close(&a);
	}
}

static void populate(struct arena *a, uint64_t off, uint64_t len)
{
	assert_int_equal(madvise(a->base + off, len, MADV_POPULATE_WRITE), 0);
	arena_mark_backed(a, off, len);
}

/* Trimming keeps the first `keep` bytes of touched chunks. */
static void test_trim_keeps_the_reserve(void **state)
{
	struct arena a;
	uint64_t keep = 3 * LAYOUT_CHUNK;

	(void)state;
	open_arena(&a);
	populate(&a, 0, a.map_size);
	assert_int_equal(arena_trim(&a, 0, a.map_size, CHUNKS, &keep),
	                 (long)a.nchunks - 3);
	assert_int_equal(keep, 0);
	assert_int_equal(arena_backed_bytes(&a), 3 * LAYOUT_CHUNK);
	for (uint64_t c = 0; c < a.nchunks; c++)
		assert_int_equal(chunk_allocated(&a, c), c < 3);
	check_flags_true(&a);
	arena_close(&a);
}

/* A large allocation goes where memory is backed, a small one by good
 * fit; with nothing warm, the good fit. */
static void test_large_allocations_reuse_warm_memory(void **state)
{
	struct arena a;
	struct alloc *al;
	uint64_t base, o1, o2, o3, o4;
	const uint64_t big = 2 * LAYOUT_CHUNK;

	(void)state;
	open_arena(&a);
	base = a.data_offset;
	assert_int_equal(alloc_create(base, a.capacity, &al), 0);
	/* Two objects side by side, then a gap of cold memory behind. */
	assert_int_equal(arena_alloc_warm(&a, al, big, &o1), 0);
	assert_int_equal(arena_alloc_warm(&a, al, big, &o2), 0);
	assert_int_equal(o2, o1 + big);
	populate(&a, o2, big);
	assert_int_equal(alloc_free(al, o1), big);
	assert_int_equal(alloc_free(al, o2), big);
	/* One free block: its low end (o1) is cold, only o2's is warm. A
	 * warm-first allocation cannot start mid-block, so it takes o1 as
	 * the good fit would; then the free block behind it starts at o2. */
	assert_int_equal(arena_alloc_warm(&a, al, big, &o3), 0);
	assert_int_equal(o3, o1);
	assert_int_equal(arena_alloc_warm(&a, al, big, &o4), 0);
	assert_int_equal(o4, o2);
	/* Free o4 (warm), keep o3: the next large one goes to o4's place even
	 * though the cold tail would fit it too. */
	assert_int_equal(alloc_free(al, o4), big);
	uint64_t o5;
	assert_int_equal(arena_alloc_warm(&a, al, big - 4096, &o5), 0);
	assert_int_equal(o5, o2);
	/* Small requests keep the good fit. */
	uint64_t s1;
	assert_int_equal(arena_alloc_warm(&a, al, 4096, &s1), 0);
	char msg[256] = "";
	if (alloc_check(al, msg, sizeof(msg)))
		fail_msg("%s", msg);
	alloc_destroy(al);
	arena_close(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_trim_skips_a_chunk_being_prefaulted),
	        cmocka_unit_test(test_prefault_skips_a_chunk_being_trimmed),
	        cmocka_unit_test(test_prefault_and_trim_race),
	        cmocka_unit_test(test_trim_keeps_the_reserve),
	        cmocka_unit_test(test_large_allocations_reuse_warm_memory),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
