/*
 * test_persist.c - `serve --persist DIR`: names that survive the daemon's
 * death, against a real daemon that the tests SIGKILL and start again.
 *
 * Values are self-checking: an object written for (name i, generation g)
 * has a length and contents derived from (i, g) and ends with a checksum
 * of the rest, so a reader can tell a complete value of a known generation
 * from a torn or foreign one.
 *
 * Kill storm: writer processes replace (and sometimes delete) names as
 * fast as they can, recording in shared memory the generation each name is
 * being set to (pending) and the last one the daemon acknowledged
 * (committed); the test SIGKILLs the daemon at a random moment, restarts
 * it and checks that every name holds its committed generation or the one
 * that was in flight, complete, and never anything else.
 *
 * Scale: SHOAL_STRESS_SCALE (default 1; `make stress` runs 10); sanitizer
 * builds run a fifth of the rounds. Seed: SHOAL_STRESS_SEED.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "shoal.h"
#include "testd.h"

#define MEMORY   "64M"
#define NNAMES   24
#define NWRITERS 3

static uint64_t mix(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* The length of value (i, g): 24 bytes to ~1.5 MiB. */
static size_t value_len(unsigned i, unsigned g)
{
	uint64_t r = mix((uint64_t)i << 32 | g);
	unsigned shift = (unsigned)(r % 18) + 5;

	return 24 + (size_t)(r >> 8) % ((size_t)1 << shift);
}

static uint64_t fnv(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;

	while (n--)
		h = (h ^ *p++) * 0x100000001b3ull;
	return h;
}

/* Writes value (i, g) into buf (value_len(i, g) bytes). */
static void value_fill(uint8_t *buf, unsigned i, unsigned g)
{
	size_t n = value_len(i, g);
	uint64_t head = (uint64_t)i << 32 | g, x = head, sum;

	memcpy(buf, &head, 8);
	for (size_t k = 8; k < n - 8; k += 8) {
		size_t m = n - 8 - k < 8 ? n - 8 - k : 8;
		x = mix(x);
		memcpy(buf + k, &x, m);
	}
	sum = fnv(buf, n - 8);
	memcpy(buf + n - 8, &sum, 8);
}

/* Decodes a value: 0 and *g if it is a complete value of name i. */
static int value_check(const uint8_t *p, size_t n, unsigned i, unsigned *g)
{
	uint64_t head, sum;

	if (n < 24)
		return -1;
	memcpy(&head, p, 8);
	if ((unsigned)(head >> 32) != i)
		return -1;
	*g = (unsigned)head;
	if (value_len(i, *g) != n)
		return -1;
	memcpy(&sum, p + n - 8, 8);
	return fnv(p, n - 8) == sum ? 0 : -1;
}

static void name_of(unsigned i, char *buf, size_t size)
{
	snprintf(buf, size, "frame/%02u", i);
}

/* Puts value (i, g) as a new object; *id receives its ID. */
static int put_value(shoal_client *c, unsigned i, unsigned g, shoal_id *id)
{
	size_t n = value_len(i, g);
	uint8_t *data;
	int rc;

	shoal_id_random(id);
	rc = shoal_create(c, id, n, 0, 0, &data, NULL);
	if (rc)
		return rc;
	value_fill(data, i, g);
	rc = shoal_seal(c, id);
	if (rc == 0)
		shoal_release_id(c, id);
	return rc;
}

static int set_value(shoal_client *c, unsigned i, unsigned g)
{
	char name[32];
	shoal_id id;
	int rc = put_value(c, i, g, &id);

	if (rc)
		return rc;
	name_of(i, name, sizeof(name));
	return shoal_set_name(c, name, strlen(name), &id, NULL, NULL);
}

/* The generation name i holds (0: absent), or -1 for a torn or foreign
 * value. */
static int read_value(shoal_client *c, unsigned i, uint64_t *version)
{
	char name[32];
	shoal_view v;
	unsigned g;
	int rc;

	name_of(i, name, sizeof(name));
	rc = shoal_get_name(c, name, strlen(name), 0, &v, version);
	if (rc == SHOAL_ENOTFOUND)
		return 0;
	if (rc)
		return -1;
	rc = value_check(v.data, v.data_size, i, &g);
	shoal_release(c, &v);
	return rc ? -1 : (int)g;
}

static void rm_dir(const char *dir)
{
	static const char *files[] = {"arena", "names.log", "names.log.new",
	                              "lock"};
	char path[512];

	for (size_t k = 0; k < sizeof(files) / sizeof(*files); k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[k]);
		unlink(path);
	}
	rmdir(dir);
}

struct pd {
	struct testd d;
	char pdir[300];
};

static void pd_start(struct pd *p)
{
	memset(&p->d, 0, sizeof(p->d));
	snprintf(p->d.dir, sizeof(p->d.dir), "/tmp/shoal-test-XXXXXX");
	assert_non_null(mkdtemp(p->d.dir));
	snprintf(p->pdir, sizeof(p->pdir), "%s/p", p->d.dir);
	assert_int_equal(
	        testd_restart(&p->d, MEMORY, "--persist", p->pdir, NULL), 0);
}

static void pd_restart(struct pd *p)
{
	assert_int_equal(
	        testd_restart(&p->d, MEMORY, "--persist", p->pdir, NULL), 0);
}

static void pd_check(struct pd *p)
{
	char msg[512];

	if (testd_check(p->d.socket, msg, sizeof(msg)) != 0)
		fail_msg("daemon check failed: %s", msg);
}

static void pd_end(struct pd *p)
{
	testd_stop(&p->d); /* keeps d.dir: the persist dir is in it */
	rm_dir(p->pdir);
	rmdir(p->d.dir);
}

/* Names, versions and bytes come back after SIGKILL; unnamed objects do
 * not; versions keep increasing; the allocator knows the restored blocks
 * (a create of the largest free block fits exactly, and no more). */
static void test_names_survive_kill(void **state)
{
	struct pd p;
	shoal_client *c;
	shoal_id anon, id;
	uint64_t v1 = 0, v2 = 0, v;
	int st;

	(void)state;
	pd_start(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(set_value(c, 1, 1), 0);
	assert_int_equal(set_value(c, 2, 1), 0);
	assert_int_equal(set_value(c, 2, 2), 0); /* a replace */
	assert_int_equal(set_value(c, 3, 1), 0);
	assert_int_equal(shoal_delete_name(c, "frame/03", 8, NULL), 0);
	assert_int_equal(put_value(c, 4, 1, &anon), 0); /* never named */
	assert_int_equal(read_value(c, 1, &v1), 1);
	assert_int_equal(read_value(c, 2, &v2), 2);
	shoal_disconnect(c);

	testd_kill(&p.d);
	pd_restart(&p);
	pd_check(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(read_value(c, 1, &v), 1);
	assert_int_equal(v, v1);
	assert_int_equal(read_value(c, 2, &v), 2);
	assert_int_equal(v, v2);
	assert_int_equal(read_value(c, 3, &v), 0);
	assert_int_equal(shoal_contains(c, &anon, &st), 0);
	assert_int_equal(st, SHOAL_STATE_ABSENT);
	/* Versions go on from where they were: a CAS on the old one works. */
	assert_int_equal(put_value(c, 2, 3, &id), 0);
	assert_int_equal(shoal_set_name(c, "frame/02", 8, &id, &v2, &v), 0);
	assert_true(v > v2);

	shoal_stats s;
	assert_int_equal(shoal_get_stats(c, &s), 0);
	assert_int_equal(s.names, 2);
	assert_int_equal(s.objects, 2);
	uint8_t *data;
	shoal_id_random(&id);
	assert_int_equal(
	        shoal_create(c, &id, s.largest_free + 1, 0, 0, &data, NULL),
	        SHOAL_EFULL);
	assert_int_equal(
	        shoal_create(c, &id, s.largest_free, 0, 0, &data, NULL), 0);
	assert_int_equal(shoal_abort(c, &id), 0);
	shoal_disconnect(c);
	pd_check(&p);
	pd_end(&p);
}

/* A name's ttl and evictable flag come back after SIGKILL; a ttl that ran
 * out while the daemon was down expires at once after the restart; ttl
 * changes (expire, persist) are journaled too. */
static void test_ttl_and_flags_survive_kill(void **state)
{
	struct pd p;
	shoal_client *c;
	shoal_name_info info;
	shoal_id id;
	shoal_stats s;

	(void)state;
	pd_start(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(put_value(c, 1, 1, &id), 0);
	assert_int_equal(shoal_set_name_ttl(c, "long", 4, &id, NULL, 600000,
	                                    SHOAL_NAME_EVICTABLE, NULL),
	                 0);
	assert_int_equal(
	        shoal_set_name_ttl(c, "short", 5, &id, NULL, 200, 0, NULL), 0);
	assert_int_equal(
	        shoal_set_name_ttl(c, "kept", 4, &id, NULL, 200, 0, NULL), 0);
	assert_int_equal(shoal_persist(c, "kept", 4), 0);
	assert_int_equal(shoal_set_name(c, "later", 5, &id, NULL, NULL), 0);
	assert_int_equal(shoal_expire(c, "later", 5, 300000), 0);
	shoal_disconnect(c);

	testd_kill(&p.d);
	usleep(300000); /* "short" runs out while the daemon is down */
	pd_restart(&p);
	pd_check(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(shoal_name_stat(c, "long", 4, &info), 0);
	assert_int_equal(info.flags, SHOAL_NAME_EVICTABLE);
	assert_true(info.ttl_ms > 590000 && info.ttl_ms <= 600000);
	assert_int_equal(shoal_name_stat(c, "later", 5, &info), 0);
	assert_int_equal(info.flags, 0);
	assert_true(info.ttl_ms > 290000 && info.ttl_ms <= 300000);
	assert_int_equal(shoal_name_stat(c, "kept", 4, &info), 0);
	assert_int_equal(info.ttl_ms, -1);
	assert_int_equal(shoal_name_stat(c, "short", 5, &info),
	                 SHOAL_ENOTFOUND);
	assert_int_equal(shoal_get_stats(c, &s), 0);
	assert_int_equal(s.names, 3);
	assert_int_equal(s.expired, 1);
	shoal_disconnect(c);
	pd_check(&p);
	pd_end(&p);
}

/* A clean stop keeps everything too, and a second daemon on the same
 * directory is refused. */
static void test_clean_stop_and_lock(void **state)
{
	struct pd p;
	struct testd other;
	shoal_client *c;
	uint64_t v;

	(void)state;
	pd_start(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(set_value(c, i, 7), 0);
	shoal_disconnect(c);
	/* Same directory, other socket: the lock refuses it. */
	assert_int_equal(testd_start(&other, MEMORY, "--persist", p.pdir, NULL),
	                 -1);
	rmdir(other.dir);
	kill(p.d.pid, SIGTERM);
	assert_true(WIFEXITED(testd_wait_pid(p.d.pid, 10000)));
	p.d.pid = 0;
	pd_restart(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	for (unsigned i = 0; i < 10; i++)
		assert_int_equal(read_value(c, i, &v), 7);
	shoal_disconnect(c);
	pd_end(&p);
}

/* A journal whose last record was cut short (or followed by garbage)
 * still gives back everything before it. */
static void test_torn_journal_tail(void **state)
{
	struct pd p;
	shoal_client *c;
	char path[512];
	uint64_t v;

	(void)state;
	pd_start(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(set_value(c, 1, 5), 0);
	assert_int_equal(set_value(c, 2, 5), 0);
	shoal_disconnect(c);
	testd_kill(&p.d);

	snprintf(path, sizeof(path), "%s/names.log", p.pdir);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	/* Cut the last record in half, then add noise. */
	assert_int_equal(truncate(path, sb.st_size - 40), 0);
	int fd = open(path, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "SRECgarbage-garbage-garbage!", 28), 28);
	close(fd);

	pd_restart(&p);
	pd_check(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(read_value(c, 1, &v), 5);
	assert_int_equal(read_value(c, 2, &v), 0); /* its record was torn */
	/* The new journal is whole again: a further change survives. */
	assert_int_equal(set_value(c, 3, 5), 0);
	shoal_disconnect(c);
	testd_kill(&p.d);
	pd_restart(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(read_value(c, 1, &v), 5);
	assert_int_equal(read_value(c, 3, &v), 5);
	shoal_disconnect(c);
	pd_end(&p);
}

/* A name's time to live and flags come back; a name whose time ran out
 * while no daemon ran does not; a removed expiry stays removed. */
static void test_ttl_and_flags_survive(void **state)
{
	struct pd p;
	shoal_client *c;
	shoal_name_info info;
	shoal_id id;
	int64_t ttl;

	(void)state;
	pd_start(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(put_value(c, 1, 1, &id), 0);
	assert_int_equal(shoal_set_name_ttl(c, "frame/01", 8, &id, NULL,
	                                    3600 * 1000, SHOAL_NAME_EVICTABLE,
	                                    NULL),
	                 0);
	assert_int_equal(put_value(c, 2, 1, &id), 0);
	assert_int_equal(
	        shoal_set_name_ttl(c, "frame/02", 8, &id, NULL, 300, 0, NULL),
	        0);
	assert_int_equal(put_value(c, 3, 1, &id), 0);
	assert_int_equal(
	        shoal_set_name_ttl(c, "frame/03", 8, &id, NULL, 400, 0, NULL),
	        0);
	assert_int_equal(shoal_persist(c, "frame/03", 8), 0); /* no expiry */
	assert_int_equal(put_value(c, 4, 1, &id), 0);
	assert_int_equal(shoal_set_name(c, "frame/04", 8, &id, NULL, NULL), 0);
	assert_int_equal(shoal_expire(c, "frame/04", 8, 3600 * 1000), 0);
	shoal_disconnect(c);
	testd_kill(&p.d);
	usleep(600 * 1000);

	pd_restart(&p);
	pd_check(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	assert_int_equal(shoal_name_stat(c, "frame/01", 8, &info), 0);
	assert_int_equal(info.flags, SHOAL_NAME_EVICTABLE);
	assert_true(info.ttl_ms > 3500 * 1000 && info.ttl_ms <= 3600 * 1000);
	assert_int_equal(shoal_ttl(c, "frame/02", 8, &ttl), SHOAL_ENOTFOUND);
	assert_int_equal(shoal_ttl(c, "frame/03", 8, &ttl), 0);
	assert_int_equal(ttl, -1);
	assert_int_equal(shoal_ttl(c, "frame/04", 8, &ttl), 0);
	assert_true(ttl > 3500 * 1000 && ttl <= 3600 * 1000);
	uint64_t v;
	assert_int_equal(read_value(c, 1, &v), 1);
	assert_int_equal(read_value(c, 3, &v), 1);
	shoal_disconnect(c);
	pd_end(&p);
}

/* A journal with random bytes changed never crashes the daemon or hands
 * out a wrong value: each name comes back with a complete value of a
 * generation it had, or not at all (a damaged record and what follows it
 * are dropped). */
static void test_corrupt_journal(void **state)
{
	unsigned rounds = (unsigned)(20 * testd_stress_scale());
	unsigned restored = 0, dropped = 0;
	struct pd p;
	shoal_client *c;
	char path[512];

	(void)state;
	if (rounds < 5)
		rounds = 5;
	srand(testd_stress_seed(20261129u) + 1);
	pd_start(&p);
	snprintf(path, sizeof(path), "%s/names.log", p.pdir);
	for (unsigned r = 0; r < rounds; r++) {
		assert_int_equal(shoal_connect(p.d.socket, &c), 0);
		for (unsigned i = 0; i < 8; i++)
			assert_int_equal(set_value(c, i, r * 8 + i + 1), 0);
		shoal_disconnect(c);
		testd_kill(&p.d);

		int fd = open(path, O_RDWR);
		struct stat sb;
		assert_true(fd >= 0 && fstat(fd, &sb) == 0);
		for (int k = 0; k < 1 + rand() % 4; k++) {
			uint8_t b = (uint8_t)rand();
			off_t at = (off_t)((unsigned)rand() % sb.st_size);
			assert_int_equal(pwrite(fd, &b, 1, at), 1);
		}
		close(fd);

		pd_restart(&p);
		pd_check(&p);
		assert_int_equal(shoal_connect(p.d.socket, &c), 0);
		for (unsigned i = 0; i < 8; i++) {
			uint64_t v;
			int g = read_value(c, i, &v);
			assert_true(g >= 0); /* never torn or foreign */
			if (g == 0) {
				dropped++;
				continue;
			}
			assert_true((unsigned)g % 8 == (i + 1) % 8);
			restored++;
		}
		shoal_disconnect(c);
	}
	print_message("corrupt journal: %u rounds, %u names restored, %u "
	              "dropped\n",
	              rounds, restored, dropped);
	pd_end(&p);
}

/* Many name changes make the journal compact itself while serving: it
 * stays small, and a kill at any moment after still restores every name
 * with its last version. */
static void test_journal_compaction(void **state)
{
	const unsigned names = 100, rounds = 400;
	struct pd p;
	shoal_client *c;
	shoal_id ids[100];
	uint64_t last[100];
	char path[512], name[32];
	struct stat sb;

	(void)state;
	pd_start(&p);
	snprintf(path, sizeof(path), "%s/names.log", p.pdir);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	for (unsigned i = 0; i < names; i++)
		assert_int_equal(put_value(c, i, 1, &ids[i]), 0);
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned i = 0; i < names; i++) {
			/* Each set of the same object writes a record. */
			name_of(i, name, sizeof(name));
			assert_int_equal(shoal_set_name(c, name, strlen(name),
			                                &ids[i], NULL,
			                                &last[i]),
			                 0);
		}
	shoal_disconnect(c);
	assert_int_equal(stat(path, &sb), 0);
	/* 40,000 records of ~130 bytes would be 5 MB: it was compacted. */
	assert_true(sb.st_size < (5 << 20));
	testd_kill(&p.d);
	pd_restart(&p);
	pd_check(&p);
	assert_int_equal(shoal_connect(p.d.socket, &c), 0);
	for (unsigned i = 0; i < names; i++) {
		uint64_t v;
		assert_int_equal(read_value(c, i, &v), 1);
		assert_int_equal(v, last[i]);
	}
	shoal_disconnect(c);
	pd_end(&p);
}

struct storm_state {
	unsigned committed[NNAMES]; /* last generation acknowledged */
	unsigned pending[NNAMES];   /* being set now; 0 = delete pending */
	unsigned busy[NNAMES];      /* a change is in flight */
	unsigned ops;
};

/* One writer: replaces (and now and then deletes) its names until the
 * daemon goes away, and leaves unsealed and unnamed objects about so that
 * freed blocks get reused. */
static void storm_writer(const char *socket, struct storm_state *ss, unsigned w,
                         unsigned rseed)
{
	shoal_client *c;
	char name[32];
	uint8_t *data;
	shoal_id id;

	if (shoal_connect(socket, &c))
		_exit(0);
	srand(rseed);
	for (;;) {
		unsigned i =
		        w + NWRITERS * ((unsigned)rand() % (NNAMES / NWRITERS));
		unsigned g = ss->committed[i] > ss->pending[i]
		                     ? ss->committed[i] + 1
		                     : ss->pending[i] + 1;
		int rc;

		name_of(i, name, sizeof(name));
		if (rand() % 8 == 0) {
			shoal_id_random(&id);
			if (shoal_create(c, &id,
			                 4096 + (unsigned)rand() % 65536, 0, 0,
			                 &data, NULL) == 0 &&
			    rand() % 2)
				shoal_abort(c, &id);
		}
		if (rand() % 10 == 0) {
			ss->pending[i] = 0;
			__atomic_store_n(&ss->busy[i], 1, __ATOMIC_SEQ_CST);
			rc = shoal_delete_name(c, name, strlen(name), NULL);
			if (rc != 0 && rc != SHOAL_ENOTFOUND)
				break;
			ss->committed[i] = 0;
		} else {
			/* The replace is in flight from its first byte. */
			ss->pending[i] = g;
			__atomic_store_n(&ss->busy[i], 1, __ATOMIC_SEQ_CST);
			rc = put_value(c, i, g, &id);
			if (rc == SHOAL_EFULL) {
				ss->pending[i] = ss->committed[i];
				__atomic_store_n(&ss->busy[i], 0,
				                 __ATOMIC_SEQ_CST);
				continue;
			}
			if (rc)
				break;
			rc = shoal_set_name(c, name, strlen(name), &id, NULL,
			                    NULL);
			if (rc)
				break;
			ss->committed[i] = g;
		}
		__atomic_store_n(&ss->busy[i], 0, __ATOMIC_SEQ_CST);
		__atomic_add_fetch(&ss->ops, 1, __ATOMIC_SEQ_CST);
	}
	_exit(0);
}

/* SIGKILL the daemon at random moments of replaces; after each restart
 * every name holds its acknowledged value or the one in flight, whole. */
static void test_kill_storm(void **state)
{
	unsigned rounds = (unsigned)(12 * testd_stress_scale());
	unsigned old_kept = 0, new_won = 0, in_flight = 0, torn = 0;
	unsigned lost_acked = 0, checked = 0, ops = 0;
	struct storm_state *ss;
	struct pd p;

	(void)state;
	if (rounds < 3)
		rounds = 3;
	srand(testd_stress_seed(20261129u));
	ss = mmap(NULL, sizeof(*ss), PROT_READ | PROT_WRITE,
	          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(ss != MAP_FAILED);
	memset(ss, 0, sizeof(*ss));
	pd_start(&p);
	for (unsigned round = 0; round < rounds; round++) {
		pid_t writers[NWRITERS];
		unsigned delay_ms = 5 + (unsigned)rand() % 150;

		ss->ops = 0;
		for (unsigned w = 0; w < NWRITERS; w++) {
			unsigned rs = (unsigned)rand();
			writers[w] = fork();
			assert_true(writers[w] >= 0);
			if (writers[w] == 0)
				storm_writer(p.d.socket, ss, w, rs);
		}
		/* Kill only once the writers are busy. */
		uint64_t end = testd_now_ms() + 10000;
		while (__atomic_load_n(&ss->ops, __ATOMIC_SEQ_CST) < 3 &&
		       testd_now_ms() < end)
			usleep(1000);
		usleep(delay_ms * 1000);
		testd_kill(&p.d);
		for (unsigned w = 0; w < NWRITERS; w++)
			assert_int_not_equal(testd_wait_pid(writers[w], 10000),
			                     -1);
		ops += ss->ops;

		pd_restart(&p);
		pd_check(&p);
		shoal_client *c;
		assert_int_equal(shoal_connect(p.d.socket, &c), 0);
		for (unsigned i = 0; i < NNAMES; i++) {
			uint64_t v;
			int g = read_value(c, i, &v);
			bool busy = ss->busy[i];
			checked++;
			if (g < 0) {
				torn++;
				continue;
			}
			if (busy) {
				in_flight++;
				if ((unsigned)g == ss->pending[i])
					new_won++;
				else if ((unsigned)g == ss->committed[i])
					old_kept++;
				else
					lost_acked++;
			} else if ((unsigned)g != ss->committed[i]) {
				lost_acked++;
			}
			ss->committed[i] = (unsigned)g;
			ss->pending[i] = (unsigned)g;
			ss->busy[i] = 0;
		}
		shoal_disconnect(c);
	}
	print_message("kill storm: %u rounds, %u operations, %u name checks; "
	              "%u changes in flight at the kill: %u kept the old "
	              "value, %u the new one; %u torn, %u acknowledged "
	              "changes lost\n",
	              rounds, ops, checked, in_flight, old_kept, new_won, torn,
	              lost_acked);
	assert_int_equal(torn, 0);
	assert_int_equal(lost_acked, 0);
	assert_int_equal(old_kept + new_won, in_flight);
	munmap(ss, sizeof(*ss));
	pd_end(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_names_survive_kill),
	        cmocka_unit_test(test_ttl_and_flags_survive_kill),
	        cmocka_unit_test(test_clean_stop_and_lock),
	        cmocka_unit_test(test_torn_journal_tail),
	        cmocka_unit_test(test_ttl_and_flags_survive),
	        cmocka_unit_test(test_corrupt_journal),
	        cmocka_unit_test(test_journal_compaction),
	        cmocka_unit_test(test_kill_storm),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
