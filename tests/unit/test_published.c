/*
 * test_published.c - the daemon's log of freed ranges (freelog.c) against a
 * naive model: after every free, the log holds one new entry exactly when
 * the free left some whole page free that was not before, and the entry
 * is exactly those pages. The model keeps one bit per 64-byte granule.
 * Also: a flood of frees of tiny blocks logs at most one entry per page,
 * and the region's header says what a client checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "freelog.h"
#include "testd.h"

#define BASE  4096u
#define AREA  (1u << 20)
#define GRAN  64u
#define NGRAN (AREA / GRAN)
/* The log's unit: LAYOUT_FREELOG_UNIT, or larger (a huge page). */
static uint64_t page_unit = LAYOUT_FREELOG_UNIT;
#define PAGE      page_unit
#define NPAGE     ((BASE + AREA + PAGE - 1) / PAGE) /* pages from offset 0 */
#define MAX_NPAGE ((BASE + AREA) / LAYOUT_FREELOG_UNIT + 1)

struct model {
	uint8_t used[NGRAN]; /* 1: the granule is in a used block */
	struct alloc *a;
	struct freelog f;
	uint64_t seen; /* log entries checked so far */
};

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void model_open(struct model *m)
{
	struct layout_header h = {.daemon_pid = 1, .start_time_ns = 2};
	char err[128];

	memset(m, 0, sizeof(*m));
	assert_int_equal(alloc_create(BASE, AREA, &m->a), 0);
	if (freelog_open(&m->f, 1u << 16, &h, err, sizeof(err)) != 0)
		fail_msg("freelog_open: %s", err);
	m->f.unit = page_unit;
}

static void model_close(struct model *m)
{
	alloc_destroy(m->a);
	freelog_close(&m->f);
}

/* Page p is [p * PAGE, (p + 1) * PAGE) of the arena file: free when all
 * of it lies in the area and no granule of it is used. */
static bool page_free(const struct model *m, uint64_t p)
{
	if (p * PAGE < BASE || (p + 1) * PAGE > BASE + AREA)
		return false;
	for (uint64_t g = (p * PAGE - BASE) / GRAN;
	     g < ((p + 1) * PAGE - BASE) / GRAN; g++)
		if (m->used[g])
			return false;
	return true;
}

static void set_used(struct model *m, uint64_t off, uint64_t size, uint8_t v)
{
	for (uint64_t g = (off - BASE) / GRAN; g < (off - BASE + size) / GRAN;
	     g++)
		m->used[g] = v;
}

/* Frees the block at off (size bytes) and checks what was logged. */
static void model_free(struct model *m, uint64_t off, uint64_t size)
{
	uint64_t span_off, span_len;
	bool was_free[MAX_NPAGE];

	for (uint64_t p = 0; p < NPAGE; p++)
		was_free[p] = page_free(m, p);
	assert_int_equal(alloc_free_span(m->a, off, &span_off, &span_len),
	                 size);
	freelog_note(&m->f, off, size, span_off, span_len);
	set_used(m, off, size, 0);
	/* The pages this free made whole: one contiguous run. */
	uint64_t lo = UINT64_MAX, hi = 0;
	for (uint64_t p = 0; p < NPAGE; p++)
		if (!was_free[p] && page_free(m, p)) {
			if (lo == UINT64_MAX)
				lo = p;
			assert_int_equal(p, lo + (hi > lo ? hi - lo : 0));
			hi = p + 1;
		}
	uint64_t head = atomic_load(&m->f.hdr->freelog_head);
	if (lo == UINT64_MAX) {
		assert_int_equal(head, m->seen);
		return;
	}
	assert_int_equal(head, m->seen + 1);
	const struct layout_freed *e = &m->f.ring[m->seen & m->f.mask];
	assert_int_equal(atomic_load(&e->offset), lo * PAGE);
	assert_int_equal(atomic_load(&e->length), (hi - lo) * PAGE);
	m->seen++;
}

static void test_log_matches_the_model(void **state)
{
	static struct model m;
	struct {
		uint64_t off, size;
	} live[512];
	size_t nlive = 0;
	uint64_t seed = testd_stress_seed(12345) | 1;
	long ops = (long)(20000 * testd_stress_scale());

	(void)state;
	model_open(&m);
	for (long i = 0; i < ops; i++) {
		if (nlive < 512 && (nlive == 0 || rnd(&seed) % 2)) {
			static const uint64_t sizes[] = {
			        0, 64, 200, 4096, 5000, 12288, 40000};
			uint64_t size = sizes[rnd(&seed) % 7], off;

			if (alloc_alloc(m.a, size, &off) != 0)
				continue;
			size = alloc_block_size(m.a, off);
			set_used(&m, off, size, 1);
			live[nlive].off = off;
			live[nlive++].size = size;
		} else {
			size_t k = rnd(&seed) % nlive;

			model_free(&m, live[k].off, live[k].size);
			live[k] = live[--nlive];
		}
	}
	while (nlive) {
		nlive--;
		model_free(&m, live[nlive].off, live[nlive].size);
	}
	assert_true(m.seen > 0);
	model_close(&m);
}

/* The same with the unit of a 64 KiB "huge page": a page freed piece by
 * piece is logged, whole, by the free that completes it. */
static void test_log_matches_the_model_huge_unit(void **state)
{
	page_unit = 64 * 1024;
	test_log_matches_the_model(state);
	page_unit = LAYOUT_FREELOG_UNIT;
}

/* Two objects share one huge page: freeing the first logs nothing (the
 * page still holds the second), freeing the second logs the page. */
static void test_huge_page_freed_in_two_pieces(void **state)
{
	static struct model m;
	uint64_t x, y, span_off, span_len;

	(void)state;
	page_unit = 64 * 1024;
	model_open(&m);
	/* Fill up to the first whole unit, so that x and y share one. */
	uint64_t pad;
	assert_int_equal(alloc_alloc(m.a, PAGE - BASE, &pad), 0);
	assert_int_equal(alloc_alloc(m.a, PAGE / 2, &x), 0);
	assert_int_equal(alloc_alloc(m.a, PAGE / 2, &y), 0);
	assert_int_equal(x, PAGE);
	assert_int_equal(y, PAGE + PAGE / 2);
	alloc_free_span(m.a, x, &span_off, &span_len);
	freelog_note(&m.f, x, PAGE / 2, span_off, span_len);
	assert_int_equal(atomic_load(&m.f.hdr->freelog_head), 0);
	alloc_free_span(m.a, y, &span_off, &span_len);
	freelog_note(&m.f, y, PAGE / 2, span_off, span_len);
	assert_int_equal(atomic_load(&m.f.hdr->freelog_head), 1);
	assert_int_equal(atomic_load(&m.f.ring[0].offset), PAGE);
	assert_int_equal(atomic_load(&m.f.ring[0].length), PAGE);
	page_unit = LAYOUT_FREELOG_UNIT;
	model_close(&m);
}

/* Zero-byte objects, freed in any order: at most one entry per page. */
static void test_tiny_frees_log_little(void **state)
{
	static struct model m;
	static uint64_t offs[AREA / GRAN];
	uint64_t seed = 99;
	size_t n = 0;

	(void)state;
	model_open(&m);
	for (uint64_t off; alloc_alloc(m.a, 0, &off) == 0;)
		offs[n++] = off;
	assert_int_equal(n, AREA / GRAN);
	for (size_t i = n - 1; i > 0; i--) { /* shuffle */
		size_t j = rnd(&seed) % (i + 1);
		uint64_t t = offs[i];
		offs[i] = offs[j];
		offs[j] = t;
	}
	for (size_t i = 0; i < n; i++) {
		uint64_t span_off, span_len;
		assert_int_equal(
		        alloc_free_span(m.a, offs[i], &span_off, &span_len),
		        GRAN);
		freelog_note(&m.f, offs[i], GRAN, span_off, span_len);
	}
	assert_true(atomic_load(&m.f.hdr->freelog_head) <= NPAGE);
	model_close(&m);
}

static void test_region_header(void **state)
{
	struct layout_header h = {.daemon_pid = 7, .start_time_ns = 8};
	struct freelog f;
	char err[128];

	(void)state;
	assert_true(freelog_open(&f, 1000, &h, err, sizeof(err)) < 0);
	assert_int_equal(freelog_open(&f, 64, &h, err, sizeof(err)), 0);
	assert_int_equal(f.hdr->magic, LAYOUT_PUB_MAGIC);
	assert_int_equal(f.hdr->version, LAYOUT_PUB_VERSION);
	assert_int_equal(f.hdr->daemon_pid, 7);
	assert_int_equal(f.hdr->start_time_ns, 8);
	assert_int_equal(f.hdr->freelog_entries, 64);
	assert_true(f.hdr->freelog_offset + 64 * sizeof(struct layout_freed) <=
	            f.hdr->region_size);
	assert_int_equal(atomic_load(&f.hdr->freelog_head), 0);
	/* Nothing whole: a 64-byte block between live neighbours. */
	freelog_note(&f, BASE + 64, 64, BASE + 64, 64);
	assert_int_equal(atomic_load(&f.hdr->freelog_head), 0);
	freelog_close(&f);
	freelog_note(NULL, BASE, PAGE, BASE, PAGE); /* no log: nothing */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_log_matches_the_model),
	        cmocka_unit_test(test_log_matches_the_model_huge_unit),
	        cmocka_unit_test(test_huge_page_freed_in_two_pieces),
	        cmocka_unit_test(test_tiny_frees_log_little),
	        cmocka_unit_test(test_region_header),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
