/*
 * attack.c - the hostile-client attacks of issue 9 against a real daemon,
 * with another client's round trip measured before and during each.
 *
 *   build/attack BIN N [SECONDS]
 *
 * starts `BIN serve -m 256M` (plus $ATTACK_SERVE_ARGS) on a temporary
 * socket, runs attack N (1-4, or "5a".."5d") and prints one line per phase: the
 * prober's round trips (a CONTAINS every 5 ms from its own connection) as
 * median, p99 and max in ms, plus the daemon's peak RSS where it matters. The
 * attacks speak the wire protocol directly (tests/attack is outside the library
 * on purpose: a hostile client need not use it). Every wait has a deadline.
 *
 * This is a measuring tool, not a test: `make attack` builds it, the lead's
 * figures come from it; the pass/fail checks of the same defects are in
 * tests/integration/test_limits.c and test_daemon.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "protocol.h"
#include "raw.h"
#include "shoal.h"

static char sock_path[100];
static char dir_path[64];
static pid_t daemon_pid;

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	exit(2);
}

/* ---- the daemon ---- */

/* A failed raw request aborts (raw.c): take the daemon along. */
static void on_abort(int sig)
{
	if (daemon_pid > 0)
		kill(daemon_pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void start_daemon(const char *bin, const char *mem, char *const extra[])
{
	snprintf(dir_path, sizeof(dir_path), "/tmp/shoal-attack-XXXXXX");
	if (!mkdtemp(dir_path))
		die("mkdtemp: %s", strerror(errno));
	snprintf(sock_path, sizeof(sock_path), "%s/s.sock", dir_path);
	daemon_pid = fork();
	if (daemon_pid == 0) {
		char *argv[32] = {(char *)bin, "serve", "-s",
		                  sock_path,   "-m",    (char *)mem};
		int n = 6;
		for (int i = 0; extra && extra[i] && n < 30; i++)
			argv[n++] = extra[i];
		argv[n] = NULL;
		int fd = open("/dev/null", O_WRONLY);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(bin, argv);
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		shoal_client *c;
		if (shoal_connect(sock_path, &c) == 0) {
			shoal_disconnect(c);
			return;
		}
		usleep(10000);
	}
	die("daemon did not start");
}

static void stop_daemon(void)
{
	kill(daemon_pid, SIGKILL);
	waitpid(daemon_pid, NULL, 0);
	unlink(sock_path);
	rmdir(dir_path);
}

static long daemon_rss_kb(void)
{
	char path[64], line[256];
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* ---- the prober ---- */

#define MAX_SAMPLES 200000
static uint32_t samples[MAX_SAMPLES]; /* us */
static uint8_t sample_phase[MAX_SAMPLES];
static volatile int phase;
static volatile bool prober_stop;
static size_t nsamples;

static void *prober(void *arg)
{
	shoal_client *c;
	shoal_id id;
	int state;

	(void)arg;
	memset(&id, 0x5a, sizeof(id));
	if (shoal_connect(sock_path, &c))
		die("prober cannot connect");
	while (!prober_stop && nsamples < MAX_SAMPLES) {
		uint64_t t0 = now_us();
		int ph = phase;
		if (shoal_contains(c, &id, &state))
			die("prober: contains failed");
		uint64_t dt = now_us() - t0;
		sample_phase[nsamples] = (uint8_t)ph;
		samples[nsamples++] =
		        dt > UINT32_MAX ? UINT32_MAX : (uint32_t)dt;
		usleep(5000);
	}
	shoal_disconnect(c);
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *label, int ph)
{
	static uint32_t v[MAX_SAMPLES];
	size_t n = 0;

	for (size_t i = 0; i < nsamples; i++)
		if (sample_phase[i] == ph)
			v[n++] = samples[i];
	if (n == 0) {
		printf("%-28s no samples\n", label);
		return;
	}
	qsort(v, n, sizeof(v[0]), cmp_u32);
	printf("%-28s n=%-5zu median %8.3f ms  p99 %9.3f ms  max %9.3f ms\n",
	       label, n, v[n / 2] / 1000.0, v[(n * 99) / 100] / 1000.0,
	       v[n - 1] / 1000.0);
}

static pthread_t prober_thread;

static void prober_start(void)
{
	phase = 0;
	if (pthread_create(&prober_thread, NULL, prober, NULL))
		die("pthread_create");
}

static void prober_end(void)
{
	prober_stop = true;
	pthread_join(prober_thread, NULL);
}

/* ---- raw protocol (tests/support/raw.h) ---- */

static int raw_connect_here(void)
{
	return raw_connect(sock_path);
}

static void sleep_ms(unsigned ms)
{
	usleep(ms * 1000u);
}

/* After the set-up: one quiet second measured as the baseline, then the
 * attack phase starts. */
static void baseline(void)
{
	phase = 3;
	sleep_ms(1000);
	phase = 1;
}

/* ---- attacks ---- */

#define BATCH 65536u

/* 1: 50 connections park GETs of 65,536 IDs (one absent); a client seals
 * one object every 50 ms. */
static void attack1(unsigned secs)
{
	struct raw_msgs m = {0};
	uint8_t *ids = malloc((size_t)BATCH * SHOAL_ID_SIZE);
	int owner = raw_connect_here();

	for (uint32_t i = 0; i < BATCH - 1; i++) {
		raw_id(ids + (size_t)i * SHOAL_ID_SIZE, 0x11, i);
		raw_add_create(&m, ids + (size_t)i * SHOAL_ID_SIZE, 0, 0);
		raw_add_id_req(&m, PROTO_SEAL, ids + (size_t)i * SHOAL_ID_SIZE,
		               0);
	}
	if (raw_pipeline(owner, &m, m.count))
		die("attack 1 set-up failed");
	raw_id(ids + (size_t)(BATCH - 1) * SHOAL_ID_SIZE, 0x12, 0); /* absent */
	baseline();
	int getters[50];
	for (int k = 0; k < 50; k++) {
		getters[k] = raw_connect_here();
		raw_reset(&m);
		raw_add_get(&m, ids, BATCH, -1);
		raw_write_all(getters[k], m.p, m.len);
	}
	int sealer = raw_connect_here();
	uint64_t end = now_us() + secs * 1000000ull;
	for (uint32_t i = 0; now_us() < end; i++) {
		uint8_t id[SHOAL_ID_SIZE];
		raw_id(id, 0x13, i);
		raw_reset(&m);
		raw_add_create(&m, id, 0, 0);
		raw_add_id_req(&m, PROTO_SEAL, id, 0);
		raw_pipeline(sealer, &m, 2);
		sleep_ms(50);
	}
	phase = 2;
	for (int k = 0; k < 50; k++)
		close(getters[k]);
	close(sealer);
	close(owner);
	free(ids);
	free(m.p);
}

/* 2: one client parks a GET of 65,536 absent IDs; another pipelines
 * 65,536 unsealed zero-byte CREATEs and disconnects. Three rounds. */
static void attack2(unsigned secs)
{
	struct raw_msgs m = {0};
	uint8_t *ids = malloc((size_t)BATCH * SHOAL_ID_SIZE);

	(void)secs;
	baseline();
	for (uint32_t round = 0; round < 3; round++) {
		for (uint32_t i = 0; i < BATCH; i++)
			raw_id(ids + (size_t)i * SHOAL_ID_SIZE,
			       (uint8_t)(0x21 + round), i);
		int getter = raw_connect_here();
		raw_reset(&m);
		raw_add_get(&m, ids, BATCH, -1);
		raw_write_all(getter, m.p, m.len);
		sleep_ms(200);
		int creator = raw_connect_here();
		raw_reset(&m);
		for (uint32_t i = 0; i < BATCH; i++) {
			uint8_t id[SHOAL_ID_SIZE];
			raw_id(id, (uint8_t)(0x31 + round), i);
			raw_add_create(&m, id, 0, 0);
		}
		raw_pipeline(creator, &m, m.count);
		close(creator);
		uint64_t t0 = now_us();
		sleep_ms(2000);
		(void)t0;
		close(getter);
	}
	phase = 2;
	free(ids);
	free(m.p);
}

struct a3 {
	int64_t timeout;
	int rc;
	uint64_t done_us;
};

static void *a3_creator(void *arg)
{
	struct a3 *b = arg;
	shoal_client *c;
	shoal_id id;
	uint8_t *d, *md;

	memset(&id, 0x3b, sizeof(id));
	if (shoal_connect(sock_path, &c))
		die("a3 connect");
	b->rc = shoal_create(c, &id, 100u << 20, 0, b->timeout, &d, &md);
	b->done_us = now_us();
	if (b->rc == 0)
		shoal_abort(c, &id);
	shoal_disconnect(c);
	return NULL;
}

/* 3: A holds a sealed 200 MiB object; B creates 100 MiB with a 5 s
 * timeout; A releases (variant 0) or disconnects (variant 1). Prints how
 * long B waited after A let go. */
static void attack3(unsigned secs)
{
	(void)secs;
	baseline();
	for (int variant = 0; variant < 2; variant++) {
		shoal_client *a;
		shoal_id id;
		uint8_t *d, *md;
		memset(&id, 0x3a, sizeof(id));
		if (shoal_connect(sock_path, &a))
			die("a3 connect");
		int rc = shoal_create(a, &id, 200u << 20, 0, 0, &d, &md);
		if (rc)
			die("a3 create: %s", shoal_strerror(rc));
		if (shoal_seal(a, &id))
			die("a3 seal");
		struct a3 b = {.timeout = 5000};
		pthread_t t;
		pthread_create(&t, NULL, a3_creator, &b);
		sleep_ms(300);
		uint64_t t0 = now_us();
		if (variant == 0)
			shoal_release_id(a, &id);
		else
			shoal_disconnect(a);
		pthread_join(t, NULL);
		printf("attack 3 (%s): B's create %s %.1f ms after A let go\n",
		       variant ? "disconnect" : "release",
		       b.rc ? shoal_strerror(b.rc) : "succeeded",
		       (b.done_us - t0) / 1000.0);
		if (variant == 0) {
			shoal_delete(a, &id, 1, NULL);
			shoal_disconnect(a);
		} else {
			shoal_client *c;
			shoal_connect(sock_path, &c);
			shoal_delete(c, &id, 1, NULL);
			shoal_disconnect(c);
		}
	}
}

/* 4: 1M 64-byte objects, every other one aborted; 20 parked 200 MiB
 * creates; a small create+abort every 20 ms. */
static void attack4(unsigned secs)
{
	struct raw_msgs m = {0};
	int owner = raw_connect_here();
	const uint32_t n = 1u << 20;

	for (uint32_t base = 0; base < n; base += BATCH) {
		raw_reset(&m);
		for (uint32_t i = base; i < base + BATCH; i++) {
			uint8_t id[SHOAL_ID_SIZE];
			raw_id(id, 0x41, i);
			raw_add_create(&m, id, 64, 0);
		}
		if (raw_pipeline(owner, &m, m.count))
			die("attack 4 create failed");
	}
	for (uint32_t base = 0; base < n; base += BATCH) {
		raw_reset(&m);
		for (uint32_t i = base; i < base + BATCH; i += 2) {
			uint8_t id[SHOAL_ID_SIZE];
			raw_id(id, 0x41, i);
			raw_add_id_req(&m, PROTO_ABORT, id, 0);
		}
		if (raw_pipeline(owner, &m, m.count))
			die("attack 4 abort failed");
	}
	baseline();
	int parked[20];
	for (int k = 0; k < 20; k++) {
		uint8_t id[SHOAL_ID_SIZE];
		raw_id(id, 0x42, (uint32_t)k);
		parked[k] = raw_connect_here();
		raw_reset(&m);
		raw_add_create(&m, id, 200u << 20, -1);
		raw_write_all(parked[k], m.p, m.len);
	}
	int churn = raw_connect_here();
	uint64_t end = now_us() + secs * 1000000ull;
	for (uint32_t i = 0; now_us() < end; i++) {
		uint8_t id[SHOAL_ID_SIZE];
		raw_id(id, 0x43, i);
		raw_reset(&m);
		raw_add_create(&m, id, 64, 0);
		raw_add_id_req(&m, PROTO_ABORT, id, 0);
		raw_pipeline(churn, &m, 2);
		sleep_ms(20);
	}
	phase = 2;
	for (int k = 0; k < 20; k++)
		close(parked[k]);
	close(churn);
	close(owner);
	free(m.p);
}

/* 5a: 1,000 connections each send 2 MiB - 1 of a 2 MiB request, then go
 * idle. Reports how many the daemon still keeps after secs. */
static void attack5a(unsigned secs)
{
	enum { N = 1000 };
	static int fds[N];
	size_t body = PROTO_MAX_REQUEST;
	uint8_t *buf = calloc(1, sizeof(struct proto_header) + body);
	struct proto_header h;

	proto_header_init(&h, PROTO_GET, 7, (uint32_t)body);
	memcpy(buf, &h, sizeof(h));
	baseline();
	for (int k = 0; k < N; k++) {
		fds[k] = raw_connect_here();
		fcntl(fds[k], F_SETFL, O_NONBLOCK);
		size_t off = 0, want = sizeof(h) + body - 1;
		uint64_t end = now_us() + 2000000;
		while (off < want && now_us() < end) {
			ssize_t w = write(fds[k], buf + off, want - off);
			if (w > 0)
				off += (size_t)w;
			else if (errno == EAGAIN)
				usleep(100);
			else
				break; /* refused and closed by the daemon */
		}
	}
	printf("attack 5a: daemon peak RSS %ld MiB after 1,000 half-sent "
	       "requests\n",
	       daemon_rss_kb() / 1024);
	/* Past the new daemon's default input deadline (10 s). */
	sleep_ms(secs * 1000);
	int open_ = 0, refused = 0;
	for (int k = 0; k < N; k++) {
		struct proto_header rh;
		ssize_t r = recv(fds[k], &rh, sizeof(rh), MSG_DONTWAIT);
		if (r < 0 && errno == EAGAIN)
			open_++; /* nothing said, still open */
		else if (r == (ssize_t)sizeof(rh))
			refused++; /* an error reply (SHOAL_ELIMIT) */
		close(fds[k]);
	}
	phase = 2;
	printf("attack 5a: after %u s, %d of %d half-sent connections still "
	       "open, %d refused with an error reply, the rest closed\n",
	       secs, open_, N, refused);
	free(buf);
}

/* 5b: names of 1,024 bytes, as many as the daemon takes (up to 200k). */
static void attack5b(unsigned secs)
{
	shoal_client *c;
	shoal_id id;
	uint8_t *d, *md;
	char name[1024];
	uint32_t made = 0;
	int rc = 0;

	(void)secs;
	memset(&id, 0x5b, sizeof(id));
	if (shoal_connect(sock_path, &c) ||
	    shoal_create(c, &id, 0, 0, 0, &d, &md) || shoal_seal(c, &id))
		die("5b set-up");
	baseline();
	memset(name, 'n', sizeof(name));
	for (uint32_t i = 0; i < 200000; i++) {
		snprintf(name, 16, "%015u", i);
		name[15] = 'n';
		rc = shoal_set_name(c, name, sizeof(name), &id, NULL, NULL);
		if (rc)
			break;
		made++;
	}
	phase = 2;
	printf("attack 5b: %u names set (%s), daemon peak RSS %ld MiB\n", made,
	       rc ? shoal_strerror(rc) : "no error", daemon_rss_kb() / 1024);
	shoal_disconnect(c);
}

/* 5c: 200k names, then SNAPSHOT subscribers that never read. */
static void attack5c(unsigned secs)
{
	shoal_client *c;
	shoal_id id;
	uint8_t *d, *md;
	char name[64];
	uint32_t made = 0;

	(void)secs;
	memset(&id, 0x5c, sizeof(id));
	if (shoal_connect(sock_path, &c) ||
	    shoal_create(c, &id, 0, 0, 0, &d, &md) || shoal_seal(c, &id))
		die("5c set-up");
	for (uint32_t i = 0; i < 200000; i++) {
		int n = snprintf(name, sizeof(name), "snapshot-name-%u", i);
		if (shoal_set_name(c, name, (size_t)n, &id, NULL, NULL))
			break;
		made++;
	}
	long before = daemon_rss_kb();
	baseline();
	int subs[4];
	for (int k = 0; k < 4; k++) {
		subs[k] = raw_connect_here();
		struct raw_msgs m = {0};
		struct proto_subscribe s = {.flags = PROTO_SUBSCRIBE_SNAPSHOT};
		memcpy(raw_add(&m, PROTO_SUBSCRIBE, sizeof(s)), &s, sizeof(s));
		raw_write_all(subs[k], m.p, m.len);
		free(m.p);
		sleep_ms(500);
	}
	sleep_ms(1000);
	phase = 2;
	printf("attack 5c: %u names; daemon peak RSS %ld MiB before, %ld MiB "
	       "with 4 snapshot subscribers\n",
	       made, before / 1024, daemon_rss_kb() / 1024);
	for (int k = 0; k < 4; k++)
		close(subs[k]);
	shoal_disconnect(c);
}

/* 5d: zero-byte objects, as many as the daemon takes (up to 1M). */
static void attack5d(unsigned secs)
{
	struct raw_msgs m = {0};
	int owner = raw_connect_here();
	uint32_t made = 0;
	bool full = false;

	(void)secs;
	baseline();
	for (uint32_t base = 0; base < (1u << 20) && !full; base += BATCH) {
		raw_reset(&m);
		for (uint32_t i = base; i < base + BATCH; i++) {
			uint8_t id[SHOAL_ID_SIZE];
			raw_id(id, 0x5d, i);
			raw_add_create(&m, id, 0, 0);
			raw_add_id_req(&m, PROTO_SEAL, id, 0);
		}
		/* A failed create fails its seal too. */
		size_t errors = raw_pipeline(owner, &m, 2 * BATCH);
		made += BATCH - (uint32_t)(errors / 2);
		full = errors != 0;
	}
	phase = 2;
	printf("attack 5d: %u zero-byte objects created, daemon peak RSS %ld "
	       "MiB\n",
	       made, daemon_rss_kb() / 1024);
	close(owner);
	free(m.p);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: attack SHOAL_BIN N [SECONDS]\n");
		return 2;
	}
	const char *which = argv[2];
	unsigned secs = argc > 3 ? (unsigned)atoi(argv[3]) : 5;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGABRT, on_abort);
	/* Extra daemon options, e.g. a limit raised to run an attack whole:
	 * ATTACK_SERVE_ARGS="--max-conn-memory 1G". */
	char *extra[16] = {0}, *args = getenv("ATTACK_SERVE_ARGS");
	for (int n = 0; args && n < 15; n++) {
		extra[n] = strtok(n ? NULL : args, " ");
		if (!extra[n])
			break;
	}
	start_daemon(argv[1], "256M", extra);
	prober_start();
	if (!strcmp(which, "1"))
		attack1(secs);
	else if (!strcmp(which, "2"))
		attack2(secs);
	else if (!strcmp(which, "3"))
		attack3(secs);
	else if (!strcmp(which, "4"))
		attack4(secs);
	else if (!strcmp(which, "5a"))
		attack5a(secs);
	else if (!strcmp(which, "5b"))
		attack5b(secs);
	else if (!strcmp(which, "5c"))
		attack5c(secs);
	else if (!strcmp(which, "5d"))
		attack5d(secs);
	else
		die("unknown attack %s", which);
	sleep_ms(200);
	prober_end();
	char label[64];
	snprintf(label, sizeof(label), "attack %s: baseline", which);
	report(label, 3);
	snprintf(label, sizeof(label), "attack %s: under attack", which);
	report(label, 1);
	stop_daemon();
	return 0;
}
