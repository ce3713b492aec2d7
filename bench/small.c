/*
 * small.c - the small-object figures: get, put, batch get and four
 * clients at once, each in the placement the caller has set up.
 *
 * Pools. bench_small_setup() has the writer client create every object
 * the gets will read before anything is timed: one fresh slice of 64-byte
 * objects per placement and repetition (so each measured get is of a
 * present object the reader has never held), a pool of 100 x 100 for the
 * batch gets and one of 1,000 per child for the four-client run. Those two
 * are reused: every get there is released again, so the next pass finds
 * them present and unheld.
 *
 * What one operation is. get: shoal_get() of one ID, read the first data
 * byte, shoal_release(). put: shoal_create() of 64 bytes, memcpy of 64
 * non-zero bytes, shoal_seal(), shoal_release_id() (the creator's hold).
 * batch: one shoal_get() of 100 IDs, then shoal_release() of the 100
 * views. The time of a repetition divided by its operations is one
 * sample; the figure is the median sample.
 *
 * Four clients: four forked children, each with its own connection and
 * pool slice, pinned to the client CPU. The bench sends each a start time
 * over a pipe; each runs get + release until start + D and writes back
 * its count. One sample is the sum of the counts over D.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"

#define OBJ_SIZE   64
#define BATCH      100
#define BATCHES    100
#define CLIENTS    4
#define CLIENT_OBJ 1000

static shoal_id *get_pool; /* [placement][rep + warm-up][ops] */
static shoal_id batch_pool[BATCH * BATCHES];
static shoal_id client_pool[CLIENTS][CLIENT_OBJ];
static uint64_t next_id = 1;
static uint8_t payload[OBJ_SIZE];

static void new_id(shoal_id *id)
{
	bench_make_id(id, next_id++);
}

/* Creates, writes, seals and releases one 64-byte object. */
static void put_one(shoal_client *c, const shoal_id *id)
{
	uint8_t *data;

	bench_check(
	        shoal_create(c, id, OBJ_SIZE, 0, SHOAL_NO_WAIT, &data, NULL),
	        "shoal_create");
	memcpy(data, payload, OBJ_SIZE);
	bench_check(shoal_seal(c, id), "shoal_seal");
	bench_check(shoal_release_id(c, id), "shoal_release_id");
}

static void fill_pool(shoal_client *c, shoal_id *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		new_id(&ids[i]);
		put_one(c, &ids[i]);
	}
}

static size_t get_slice_len(const struct bench_config *cfg)
{
	return (size_t)cfg->ops;
}

static shoal_id *get_slice(const struct bench_config *cfg, int placement,
                           int rep)
{
	return get_pool +
	       ((size_t)placement * (size_t)(cfg->reps + 1) + (size_t)rep) *
	               get_slice_len(cfg);
}

void bench_small_setup(shoal_client *c, const struct bench_config *cfg)
{
	size_t n = 2 * (size_t)(cfg->reps + 1) * get_slice_len(cfg);

	bench_fill(payload, sizeof(payload), 7);
	get_pool = calloc(n, sizeof(*get_pool));
	if (!get_pool)
		bench_fail("out of memory");
	fill_pool(c, get_pool, n);
	fill_pool(c, batch_pool, BATCH * BATCHES);
	for (int i = 0; i < CLIENTS; i++)
		fill_pool(c, client_pool[i], CLIENT_OBJ);
}

/* get + release of one present 64-byte object. */
static void get_one(shoal_client *c, const shoal_id *id)
{
	shoal_view v;

	bench_check(shoal_get(c, id, 1, SHOAL_NO_WAIT, &v), "shoal_get");
	if (v.status != 0 || v.data_size != OBJ_SIZE || v.data[0] != payload[0])
		bench_fail("get of a present object: status %s, %llu bytes",
		           shoal_strerror(v.status),
		           (unsigned long long)v.data_size);
	bench_check(shoal_release(c, &v), "shoal_release");
}

static double get_us(shoal_client *c, const shoal_id *ids, int n)
{
	uint64_t t0 = bench_now_ns();

	for (int i = 0; i < n; i++)
		get_one(c, &ids[i]);
	return (double)(bench_now_ns() - t0) / 1e3 / n;
}

static double put_us(shoal_client *c, int n)
{
	shoal_id *ids = malloc((size_t)n * sizeof(*ids));
	uint64_t t0;
	double us;

	if (!ids)
		bench_fail("out of memory");
	for (int i = 0; i < n; i++)
		new_id(&ids[i]);
	t0 = bench_now_ns();
	for (int i = 0; i < n; i++)
		put_one(c, &ids[i]);
	us = (double)(bench_now_ns() - t0) / 1e3 / n;
	free(ids);
	return us;
}

/* One pass over the batch pool; returns objects per second. */
static double batch_pass(shoal_client *c)
{
	shoal_view v[BATCH];
	uint64_t t0 = bench_now_ns();

	for (int b = 0; b < BATCHES; b++) {
		bench_check(shoal_get(c, &batch_pool[b * BATCH], BATCH,
		                      SHOAL_NO_WAIT, v),
		            "shoal_get (batch)");
		for (int i = 0; i < BATCH; i++)
			if (v[i].status != 0 || v[i].data[0] != payload[0])
				bench_fail("batch get: status %s",
				           shoal_strerror(v[i].status));
		for (int i = 0; i < BATCH; i++)
			bench_check(shoal_release(c, &v[i]), "shoal_release");
	}
	return BATCH * BATCHES * 1e9 / (double)(bench_now_ns() - t0);
}

struct client_job {
	int index;
	int go_fd;     /* read: a start time in ns, 0 to stop */
	int result_fd; /* write: operations done */
	double secs;
};

static int client_main(void *arg)
{
	const struct client_job *job = arg;
	const shoal_id *ids = client_pool[job->index];
	shoal_client *c;
	uint64_t start;

	bench_check(shoal_connect(bench_daemon_socket(), &c), "shoal_connect");
	while (read(job->go_fd, &start, sizeof(start)) == sizeof(start) &&
	       start != 0) {
		uint64_t end = start + (uint64_t)(job->secs * 1e9);
		uint64_t ops = 0;

		while (bench_now_ns() < end)
			get_one(c, &ids[ops++ % CLIENT_OBJ]);
		if (write(job->result_fd, &ops, sizeof(ops)) != sizeof(ops))
			return 1;
	}
	shoal_disconnect(c);
	return 0;
}

static void clients_run(const struct bench_config *cfg,
                        const struct bench_placement *p, struct bench_fig *f)
{
	struct client_job job[CLIENTS];
	pid_t pid[CLIENTS];
	int go[2], result[2];
	uint64_t zero = 0;

	if (pipe(go) < 0 || pipe(result) < 0)
		bench_fail("pipe: %s", strerror(errno));
	for (int i = 0; i < CLIENTS; i++) {
		job[i] = (struct client_job){i, go[0], result[1],
		                             cfg->clients_secs};
		pid[i] = bench_spawn(p->client_cpu, client_main, &job[i]);
	}
	for (int rep = -1; rep < cfg->reps; rep++) {
		uint64_t start = bench_now_ns(), total = 0, ops;

		for (int i = 0; i < CLIENTS; i++)
			if (write(go[1], &start, sizeof(start)) !=
			    sizeof(start))
				bench_fail("pipe write: %s", strerror(errno));
		for (int i = 0; i < CLIENTS; i++) {
			if (read(result[0], &ops, sizeof(ops)) != sizeof(ops))
				bench_fail("a client process died");
			total += ops;
		}
		if (rep >= 0) /* rep -1 is the warm-up */
			bench_fig_add(f, (double)total / cfg->clients_secs);
	}
	for (int i = 0; i < CLIENTS; i++)
		if (write(go[1], &zero, sizeof(zero)) != sizeof(zero))
			bench_fail("pipe write: %s", strerror(errno));
	for (int i = 0; i < CLIENTS; i++)
		bench_reap(pid[i], "a client process");
	close(go[0]);
	close(go[1]);
	close(result[0]);
	close(result[1]);
}

void bench_small_run(shoal_client *c, const struct bench_config *cfg,
                     const struct bench_placement *p, struct bench_small *s)
{
	int pi = p->index;
	struct bench_echo *echo = bench_echo_start(p->daemon_cpu);
	int n = cfg->ops;

	/* Warm-up: slice 0 of this placement is not counted. */
	bench_echo_rtt_us(echo, n);
	get_us(c, get_slice(cfg, pi, 0), n);
	put_us(c, n);
	for (int rep = 1; rep <= cfg->reps; rep++) {
		bench_fig_add(&s->rtt_us, bench_echo_rtt_us(echo, n));
		bench_fig_add(&s->get_us,
		              get_us(c, get_slice(cfg, pi, rep), n));
		bench_fig_add(&s->put_small_us, put_us(c, n));
	}
	bench_echo_stop(echo);

	batch_pass(c);
	for (int rep = 0; rep < cfg->reps; rep++)
		bench_fig_add(&s->batch_get_objects_per_s, batch_pass(c));
	clients_run(cfg, p, &s->clients4_ops_per_s);
	s->measured = true;
}
