/*
 * server.c - the daemon's main loop: accepting clients, signals, waking
 * parked requests, dropping stalled clients and trimming freed memory.
 *
 * Everything runs on one thread. Work that follows from a batch of
 * requests (waking waiters, trimming) is done in the before-sleep hook, so
 * a burst of seals wakes each waiter once, not once per seal. The hook also
 * computes how long the loop may sleep: until the nearest deadline of a
 * parked request or a periodic check.
 */
#include "server.h"

#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "os.h"

#define STALL_CHECK_NS       200000000ull /* 200 ms */
#define TRIM_CHUNKS_PER_TURN 16 /* ~32 MiB: a few ms of hole punching */
#define ACCEPT_PAUSE_NS      100000000ull /* 100 ms without fds to spare */
#define CLIENTS_SLACK        16 /* told "too many clients", not just closed */
/* Expiry works in batches until this much time went by in one loop turn;
 * what is left is done in the next turns (the loop does not sleep). */
#define EXPIRE_BATCH     128
#define EXPIRE_BUDGET_NS 1000000ull /* 1 ms */

uint64_t server_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct conn *server_add_conn(struct server *srv, int fd)
{
	struct conn *c = os_calloc(1, sizeof(*c));

	if (c && srv->nconns == srv->conns_cap) {
		uint32_t cap = srv->conns_cap ? srv->conns_cap * 2 : 64;
		struct conn **n = os_realloc(srv->conns, cap * sizeof(*n));
		if (n) {
			srv->conns = n;
			srv->conns_cap = cap;
		}
	}
	if (!c || srv->nconns == srv->conns_cap ||
	    waits_reserve(&srv->waits, (size_t)srv->nconns + 1) ||
	    loop_watch(srv->loop, fd, LOOP_READ, conn_on_event, c)) {
		free(c);
		close(fd);
		return NULL;
	}
	c->srv = srv;
	c->fd = fd;
	c->in_owed_ns = server_now_ns(); /* its hello */
	wait_init(&c->wait, &c->in);
	c->index = srv->nconns;
	srv->conns[srv->nconns++] = c;
	store_client_init(&c->sc, ++srv->next_client_id);
	if (srv->opt.verbose)
		fprintf(stderr, "shoal: client %u connected\n", c->sc.id);
	return c;
}

static void on_accept(struct loop *l, int fd, void *ctx, unsigned events)
{
	struct server *srv = ctx;

	(void)l;
	(void)fd;
	(void)events;
	for (int i = 0; i < 64; i++) {
		int cfd = net_accept(srv->listen_fd);
		/* Far over --max-clients: not even a hello is read (within
		 * the slack, the hello gets a SHOAL_ELIMIT answer). */
		if (cfd >= 0 && srv->nconns >= srv->opt.limits.max_clients +
		                                       CLIENTS_SLACK) {
			close(cfd);
			continue;
		}
		if (cfd == -EMFILE || cfd == -ENFILE || cfd == -ENOBUFS ||
		    cfd == -ENOMEM) {
			/* The connection stays in the backlog and epoll would
			 * report it on every turn: pause accepting instead of
			 * spinning until fds or memory come back. */
			if (loop_mask(srv->loop, srv->listen_fd, 0) == 0)
				srv->accept_resume_ns =
				        server_now_ns() + ACCEPT_PAUSE_NS;
			return;
		}
		if (cfd < 0)
			return;                  /* EAGAIN: all accepted */
		(void)server_add_conn(srv, cfd); /* closed if it failed */
	}
}

static void on_signal(struct loop *l, int fd, void *ctx, unsigned events)
{
	struct signalfd_siginfo si;

	(void)ctx;
	(void)events;
	while (read(fd, &si, sizeof(si)) == sizeof(si))
		if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
			loop_stop(l);
}

#define container_of(p, type, member) \
	((type *)(void *)((char *)(p)-offsetof(type, member)))

/* Answers (or re-parks) every ready request. */
static bool run_ready(struct server *srv)
{
	struct wait *w;
	bool any = false;

	while ((w = waits_pop_ready(&srv->waits))) {
		conn_retry(container_of(w, struct conn, wait), w->final);
		any = true;
	}
	return any;
}

/* Changes whenever space is freed or an object becomes evictable. */
static uint64_t avail_events(const struct server *srv)
{
	return srv->store.objs.lru_pushes + srv->store.objs.released;
}

/*
 * Tries parked creates, smallest first, while they can succeed. Only the
 * smallest can fit first (a block that fits after evicting leaves room for
 * any smaller one too), so this looks at the heap's top only. Whether it
 * can succeed, evicting if need be, is quick to tell: a free block surely
 * large enough (the allocator's size-class bitmaps, O(1)), or the largest
 * stretch that evicting could free (runs.h: O(log n) once the changes it
 * queued are applied, which they would have been anyway). So a parked create
 * is tried in the turn after the change that made room for it, and not
 * before. One that was tried and still failed (out of memory) is not tried
 * again until space changes. Returns whether any was answered.
 */
static bool try_creates(struct server *srv)
{
	struct store *st = &srv->store;
	bool any = false;
	struct wait *w;

	while ((w = waits_smallest_create(&srv->waits))) {
		uint64_t need = layout_align(w->size.key);
		struct conn *c = container_of(w, struct conn, wait);
		if (!alloc_surely_fits(st->alloc, need)) {
			uint64_t seen = avail_events(srv);
			/* The cheap test first: runs_largest applies the
			 * pin queue, which a waiting create must not undo
			 * on every pass when nothing changed. */
			if (srv->avail_seen == seen ||
			    runs_largest(&st->runs, &st->objs) < need)
				break;
			srv->avail_seen = seen;
		}
		conn_retry(c, false);
		if (waits_smallest_create(&srv->waits) == w)
			break; /* still parked (out of memory) */
		any = true;
	}
	return any;
}

/*
 * Wakes parked requests that events or deadlines concern: the waiters of
 * dropped IDs, expired ones, ones the notification hook made ready, and
 * parked creates that may fit now. A woken request may cause events in
 * turn (a create that evicts, later requests of the same connection), so
 * this repeats until quiet, a bounded number of times per turn.
 */
static void wake_parked(struct server *srv)
{
	struct store *st = &srv->store;

	for (int pass = 0; pass < 8; pass++) {
		for (size_t i = 0; i < st->ndropped; i++)
			waits_dropped(&srv->waits, st->dropped[i]);
		st->ndropped = 0;
		waits_expire(&srv->waits, server_now_ns());
		bool any = run_ready(srv);
		any |= try_creates(srv);
		if (!any && !srv->waits.ready_head && !st->ndropped)
			break;
	}
}

struct trim_ctx {
	struct server *srv;
	uint64_t budget;
	uint64_t keep; /* warm reserve still to keep */
	bool failed;
};

static int trim_free_block(void *ctx, uint64_t offset, uint64_t size)
{
	struct trim_ctx *t = ctx;
	long n = arena_trim(&t->srv->arena, offset, size, t->budget, &t->keep);

	if (n < 0) {
		t->failed = true;
		return 1;
	}
	t->budget -= (uint64_t)n;
	return t->budget == 0;
}

/*
 * Returns freed memory beyond the warm reserve to the OS, a bounded amount
 * per turn. The reserve is the free memory at the lowest addresses, where
 * creates look for warm memory first too (store.c). Returns whether more
 * may be left. When the backing refuses, trimming waits for the next free:
 * retrying at once would only spin the loop.
 */
static bool trim_some(struct server *srv)
{
	struct trim_ctx t = {srv, TRIM_CHUNKS_PER_TURN, srv->opt.reserve,
	                     false};

	alloc_foreach_free(srv->store.alloc, trim_free_block, &t);
	if (t.failed && srv->opt.verbose)
		fprintf(stderr, "shoal: cannot give freed memory back to the "
		                "OS; will retry after the next free\n");
	return !t.failed && t.budget == 0;
}

static void drop_stalled(struct server *srv, uint64_t now)
{
	uint64_t limit = srv->opt.stall_ms * 1000000ull;
	uint64_t input_limit = srv->opt.limits.input_timeout_ms * 1000000ull;

	for (uint32_t i = 0; i < srv->nconns;) {
		struct conn *c = srv->conns[i];
		if (c->out_stalled_ns && now - c->out_stalled_ns > limit) {
			fprintf(stderr,
			        "shoal: dropping client %u: it has not read "
			        "its "
			        "replies for %llu ms\n",
			        c->sc.id,
			        (unsigned long long)srv->opt.stall_ms);
			conn_close(c); /* moves the last conn into slot i */
			continue;
		}
		if (c->in_owed_ns && now - c->in_owed_ns > input_limit) {
			fprintf(stderr,
			        "shoal: dropping client %u: it left %s unsent "
			        "for %llu ms (--input-timeout)\n",
			        c->sc.id, c->hello ? "a request" : "its hello",
			        (unsigned long long)
			                srv->opt.limits.input_timeout_ms);
			conn_close(c);
			continue;
		}
		i++;
	}
}

static int before_sleep(struct loop *l, void *ctx)
{
	struct server *srv = ctx;
	uint64_t now, next;
	int timeout = -1;

	(void)l;
	/* The next share of clients that sent more than one turn's, and of
	 * the holds departed clients left. */
	conn_run_backlog(srv);
	bool departing =
	        store_release_departed(&srv->store, STORE_DEPART_SLICE);
	/* Expiry first: the memory it frees may let parked creates go. */
	now = server_now_ns();
	while (store_expire_due(&srv->store, now, EXPIRE_BATCH) ==
	               EXPIRE_BATCH &&
	       server_now_ns() - now < EXPIRE_BUDGET_NS)
		;
	wake_parked(srv);
	if (srv->store.events & STORE_EV_FREED)
		srv->trim_wanted = srv->opt.trim;
	srv->store.events = 0;
	events_flush(srv);
	now = server_now_ns();
	if (now >= srv->next_stall_check_ns) {
		drop_stalled(srv, now);
		srv->next_stall_check_ns = now + STALL_CHECK_NS;
	}
	if (srv->accept_resume_ns && now >= srv->accept_resume_ns &&
	    loop_mask(srv->loop, srv->listen_fd, LOOP_READ) == 0)
		srv->accept_resume_ns = 0;
	if (srv->persisting)
		persist_maybe_compact(&srv->persist);
	/* A trim pass walks the block list (alloc_foreach_free): at most as
	 * often as keeps it under a tenth of the loop's time, however many
	 * small frees ask for it. */
	if (srv->trim_wanted && now >= srv->trim_next_ns) {
		srv->trim_wanted = trim_some(srv);
		uint64_t took = server_now_ns() - now;
		srv->trim_next_ns = now + 10 * took;
	}
	next = srv->next_stall_check_ns;
	if (srv->trim_wanted && srv->trim_next_ns < next)
		next = srv->trim_next_ns;
	if (store_next_expiry(&srv->store) < next)
		next = store_next_expiry(&srv->store);
	if (srv->accept_resume_ns && srv->accept_resume_ns < next)
		next = srv->accept_resume_ns;
	if (waits_next_deadline(&srv->waits) < next)
		next = waits_next_deadline(&srv->waits);
	if (srv->waits.ready_head || srv->store.ndropped ||
	    srv->snapshot_more || srv->backlog_head || departing)
		next = 0; /* more work than one turn does */
	now = server_now_ns();
	if (next != UINT64_MAX) {
		uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
		timeout = ms > 60000 ? 60000 : (int)ms;
	}
	return timeout;
}

/* The store's notification hook: the waiters of what changed, the
 * subscribers, then the name journal. */
static void server_notify(void *ctx, enum store_note note,
                          const struct object *o, const char *name,
                          size_t name_len, uint64_t version)
{
	struct server *srv = ctx;

	if (note == STORE_NOTE_SEALED)
		waits_sealed(&srv->waits, o->id);
	else if (note == STORE_NOTE_NAME_SET)
		waits_named(&srv->waits, name, name_len);
	events_notify(ctx, note, o, name, name_len, version);
	if (srv->persisting)
		persist_note(&srv->persist, note, o, name, name_len, version);
}

/* Opens the arena: with --persist, DIR's lock first and the arena file in
 * DIR (the names come back once the store exists). */
static int open_arena(struct server *srv, bool *reused, char *err, size_t size)
{
	const struct server_options *opt = &srv->opt;
	int rc;

	*reused = false;
	if (!opt->persist_dir)
		return arena_open(&srv->arena, opt->capacity, opt->dir, err,
		                  size);
	rc = persist_lock(&srv->persist, opt->persist_dir, err, size);
	if (rc == 0)
		rc = arena_open_persist(&srv->arena, opt->capacity,
		                        opt->persist_dir, reused, err, size);
	if (rc)
		persist_close(&srv->persist, false);
	return rc;
}

int server_init_state(struct server *srv, const struct server_options *opt,
                      char *err, size_t size)
{
	bool reused;
	int rc;

	memset(srv, 0, sizeof(*srv));
	srv->opt = *opt;
	srv->listen_fd = srv->signal_fd = -1;
	srv->persist.lock_fd = srv->persist.log_fd = -1;
	waits_init(&srv->waits);
	srv->freelog.fd = srv->freelog.ro_fd = -1;
	rc = open_arena(srv, &reused, err, size);
	if (rc)
		return rc;
	rc = store_init(&srv->store, &srv->arena);
	if (rc) {
		snprintf(err, size, "out of memory");
		goto fail;
	}
	if (!opt->no_freelog) {
		rc = freelog_open(&srv->freelog,
		                  opt->freelog_entries ? opt->freelog_entries
		                                       : FREELOG_ENTRIES,
		                  &srv->arena.header, err, size);
		if (rc)
			goto fail;
		if (srv->arena.page_size > srv->freelog.unit)
			srv->freelog.unit = srv->arena.page_size;
		srv->store.freelog = &srv->freelog;
	}
	if (opt->persist_dir) {
		rc = persist_recover(&srv->persist, &srv->store, reused, err,
		                     size);
		if (rc)
			goto fail;
		srv->persisting = true;
	}
	srv->store.notify = server_notify;
	/* After recovery: what a restart brings back is not refused. */
	limit_defaults(&srv->opt.limits, srv->arena.capacity);
	srv->store.max_objects = srv->opt.limits.max_objects;
	srv->store.max_names = srv->opt.limits.max_names;
	srv->store.name_memory = srv->opt.limits.name_memory;
	srv->store.notify_ctx = srv;
	rc = loop_create(&srv->loop);
	if (rc) {
		snprintf(err, size, "cannot create the event loop");
		goto fail;
	}
	loop_before_sleep(srv->loop, before_sleep, srv);
	return 0;
fail:
	server_free(srv);
	return rc;
}

int server_init(struct server *srv, const struct server_options *opt, char *err,
                size_t size)
{
	sigset_t mask;
	int rc;

	rc = server_init_state(srv, opt, err, size);
	if (rc)
		return rc;
	rc = net_listen_unix(opt->socket_path, err, size);
	if (rc < 0)
		goto fail;
	srv->listen_fd = rc;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	srv->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	rc = srv->signal_fd < 0 ? -errno : 0;
	if (rc == 0)
		rc = loop_watch(srv->loop, srv->listen_fd, LOOP_READ, on_accept,
		                srv);
	if (rc == 0)
		rc = loop_watch(srv->loop, srv->signal_fd, LOOP_READ, on_signal,
		                srv);
	if (rc) {
		snprintf(err, size, "cannot set up the event loop");
		goto fail;
	}
	if (opt->prefault && arena_start_prefault(&srv->arena) != 0)
		fprintf(stderr,
		        "shoal: cannot start prefaulting; continuing\n");
	return 0;
fail:
	server_free(srv);
	return rc;
}

int server_run(struct server *srv)
{
	int rc = loop_run(srv->loop);

	srv->stopped = rc == 0;
	return rc;
}

void server_free(struct server *srv)
{
	while (srv->nconns)
		conn_close(srv->conns[srv->nconns - 1]);
	free(srv->conns);
	waits_free(&srv->waits);
	if (srv->listen_fd >= 0) {
		close(srv->listen_fd);
		unlink(srv->opt.socket_path);
	}
	if (srv->signal_fd >= 0)
		close(srv->signal_fd);
	loop_destroy(srv->loop);
	if (srv->opt.persist_dir && srv->persist.lock_fd >= 0)
		persist_close(&srv->persist, srv->persisting && srv->stopped);
	if (srv->store.alloc)
		store_free(&srv->store);
	arena_close(&srv->arena);
	freelog_close(&srv->freelog);
	memset(srv, 0, sizeof(*srv));
	srv->listen_fd = srv->signal_fd = -1;
	srv->freelog.fd = srv->freelog.ro_fd = -1;
}
