/*
 * large.c - the 1 GiB figures: put into never-touched and into recycled
 * arena memory against a plain memcpy, and get latency against object
 * size.
 *
 * A put is shoal_create() of 1 GiB, memcpy from a faulted-in non-zero
 * source, shoal_seal() and shoal_release_id(), timed as a whole.
 *
 * Fresh and recycled are told apart by what the store reports, not
 * assumed: the daemon's backed_bytes (arena memory known to have pages)
 * grows by about 1 GiB when a put lands in never-touched memory, and by at
 * most a couple of chunks at the object's edges when it lands in memory a
 * deleted object used. The fresh puts come first, while the arena is new:
 * each keeps its object so the next one lands beyond it (the 4 GiB daemon
 * holds three). Then they are deleted, and each recycled put reuses their
 * memory and is deleted in turn. A put in the wrong kind of memory is
 * counted and reported, so a change in the allocator cannot silently turn
 * one figure into the other.
 *
 * The memcpy baseline copies between two private 1 GiB buffers, both
 * written once beforehand; its repetitions are interleaved with the
 * recycled puts. Transparent huge pages are left as the system has them
 * (the report prints the setting), the arena gets 4 KiB pages.
 *
 * get_1g_vs_64b: the reader gets and releases one 1 GiB object and one
 * 64-byte object, cfg->ops times each per repetition, in both placements;
 * the figure is the time of the get calls alone (see get_loop).
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "bench.h"

#define EDGE_SLACK (16ull << 20) /* chunks at an object's edges */

static uint64_t next_id = 1ull << 40; /* apart from small.c's IDs */

static void new_id(shoal_id *id)
{
	bench_make_id(id, next_id++);
}

static uint8_t *map_filled(size_t n, unsigned seed)
{
	void *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		bench_fail("mmap of %zu bytes: %s", n, strerror(errno));
	bench_fill(p, n, seed); /* faults every page in */
	return p;
}

static uint64_t backed_bytes(shoal_client *c)
{
	shoal_stats st;

	bench_check(shoal_get_stats(c, &st), "shoal_get_stats");
	return st.backed_bytes;
}

/*
 * Puts 1 GiB from src under id and returns GB/s; *newly receives how much
 * arena memory became backed by it.
 */
static double put_1g(shoal_client *c, const shoal_id *id, const uint8_t *src,
                     uint64_t *newly)
{
	uint64_t b0 = backed_bytes(c);
	uint64_t t0, t1;
	uint8_t *data;

	t0 = bench_now_ns();
	bench_check(
	        shoal_create(c, id, BENCH_GIB, 0, SHOAL_NO_WAIT, &data, NULL),
	        "shoal_create (1 GiB)");
	memcpy(data, src, BENCH_GIB);
	bench_check(shoal_seal(c, id), "shoal_seal");
	bench_check(shoal_release_id(c, id), "shoal_release_id");
	t1 = bench_now_ns();
	*newly = backed_bytes(c) - b0;
	return (double)BENCH_GIB / (double)(t1 - t0);
}

static void delete_one(shoal_client *c, const shoal_id *id)
{
	int result;

	bench_check(shoal_delete(c, id, 1, &result), "shoal_delete");
	bench_check(result, "shoal_delete");
}

static void fresh_puts(shoal_client *c, const struct bench_config *cfg,
                       const uint8_t *src, struct bench_large *l)
{
	shoal_id ids[BENCH_MAX_REPS];
	uint64_t newly;

	for (int i = 0; i < cfg->large_reps; i++) {
		new_id(&ids[i]);
		bench_fig_add(&l->put_1g_fresh_gbps,
		              put_1g(c, &ids[i], src, &newly));
		if (newly < BENCH_GIB - EDGE_SLACK)
			l->fresh_misses++;
	}
	for (int i = 0; i < cfg->large_reps; i++)
		delete_one(c, &ids[i]);
}

static void recycled_puts(shoal_client *c, const struct bench_config *cfg,
                          uint8_t *dst, const uint8_t *src,
                          struct bench_large *l)
{
	for (int rep = -1; rep < cfg->reps; rep++) {
		double copy = bench_memcpy_gbps(dst, src, BENCH_GIB);
		uint64_t newly;
		double put;
		shoal_id id;

		new_id(&id);
		put = put_1g(c, &id, src, &newly);
		delete_one(c, &id);
		if (rep < 0)
			continue; /* warm-up */
		bench_fig_add(&l->memcpy_gbps, copy);
		bench_fig_add(&l->put_1g_gbps, put);
		if (newly > EDGE_SLACK)
			l->recycled_misses++;
	}
}

/*
 * get + release of id, n times; returns the µs per call that shoal_get()
 * took. The release is left out of the timing: a large object's release is
 * sent at once (to give its memory back promptly) while a small one's rides
 * with the next request, so timing both would compare release policies,
 * not gets.
 */
static double get_loop(shoal_client *c, const shoal_id *id, uint64_t size,
                       uint8_t first, int n)
{
	uint64_t total = 0;
	shoal_view v;

	for (int i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		bench_check(shoal_get(c, id, 1, SHOAL_NO_WAIT, &v),
		            "shoal_get");
		total += bench_now_ns() - t0;
		if (v.status != 0 || v.data_size != size || v.data[0] != first)
			bench_fail("get of a present object: %s",
			           shoal_strerror(v.status));
		bench_check(shoal_release(c, &v), "shoal_release");
	}
	return (double)total / 1e3 / n;
}

static void get_sizes(shoal_client *writer, shoal_client *reader,
                      const uint8_t *src, struct bench_results *r)
{
	const struct bench_config *cfg = r->cfg;
	shoal_id big, small;
	uint64_t newly;
	uint8_t *data;

	new_id(&big);
	new_id(&small);
	put_1g(writer, &big, src, &newly);
	bench_check(
	        shoal_create(writer, &small, 64, 0, SHOAL_NO_WAIT, &data, NULL),
	        "shoal_create");
	memcpy(data, src, 64);
	bench_check(shoal_seal(writer, &small), "shoal_seal");
	bench_check(shoal_release_id(writer, &small), "shoal_release_id");

	for (int i = 0; i < 2; i++) {
		const struct bench_placement *p = &r->place[i];
		struct bench_small *s = &r->small[i];

		if (p->daemon_cpu < 0)
			continue;
		bench_pin(0, p->client_cpu);
		bench_pin(r->daemon_pid, p->daemon_cpu);
		get_loop(reader, &big, BENCH_GIB, src[0], cfg->ops);
		get_loop(reader, &small, 64, src[0], cfg->ops);
		for (int rep = 0; rep < cfg->reps; rep++) {
			bench_fig_add(&s->get_1g_us,
			              get_loop(reader, &big, BENCH_GIB, src[0],
			                       cfg->ops));
			bench_fig_add(
			        &s->get_64b_us,
			        get_loop(reader, &small, 64, src[0], cfg->ops));
		}
	}
	delete_one(writer, &big);
	delete_one(writer, &small);
}

void bench_large_run(shoal_client *writer, shoal_client *reader,
                     struct bench_results *r)
{
	const struct bench_config *cfg = r->cfg;
	uint8_t *src = map_filled(BENCH_GIB, 11);
	uint8_t *dst = map_filled(BENCH_GIB, 12);

	fresh_puts(writer, cfg, src, &r->large);
	recycled_puts(writer, cfg, dst, src, &r->large);
	get_sizes(writer, reader, src, r);
	munmap(src, BENCH_GIB);
	munmap(dst, BENCH_GIB);
}
