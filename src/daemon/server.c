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
#define EXPIRE_PER_TURN      4096 /* names expired per loop turn at most */

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
	    loop_watch(srv->loop, fd, LOOP_READ, conn_on_event, c)) {
		free(c);
		close(fd);
		return NULL;
	}
	c->srv = srv;
	c->fd = fd;
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

/* Wakes parked requests that events or deadlines concern. A woken request
 * may cause events in turn (a create that evicts frees nothing net, but a
 * disconnect can), so this repeats until quiet; each pass answers or keeps
 * each parked request once. */
static void wake_parked(struct server *srv)
{
	for (int pass = 0; pass < 8; pass++) {
		unsigned ev = srv->store.events;
		size_t seen = srv->store.ndropped;
		uint64_t now = server_now_ns();
		bool any = false;
		srv->store.events = 0;
		struct conn *c = srv->park_head;
		struct conn *tail = srv->park_tail;
		while (c) {
			struct conn *next = c->park_next;
			bool last = c == tail;
			bool due = c->deadline_ns <= now, dropped;
			struct proto_header h;
			memcpy(&h, c->in, sizeof(h));
			if (commands_wake_on(&srv->store, &h, c->in + sizeof(h),
			                     ev, &dropped) ||
			    due) {
				conn_retry(c, due || dropped);
				any = true;
			}
			if (last)
				break;
			c = next;
		}
		/* Forget the dropped IDs this pass has shown to everyone;
		 * ones added meanwhile are for the next pass. */
		struct store *st = &srv->store;
		if (seen) {
			memmove(st->dropped, st->dropped + seen,
			        (st->ndropped - seen) * SHOAL_ID_SIZE);
			st->ndropped -= seen;
		}
		if (!any || !srv->store.events)
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
		i++;
	}
}

static int before_sleep(struct loop *l, void *ctx)
{
	struct server *srv = ctx;
	uint64_t now, next;
	int timeout = -1;

	(void)l;
	/* Expiry first: the memory it frees may let parked creates go. */
	(void)store_expire_due(&srv->store, server_now_ns(), EXPIRE_PER_TURN);
	if (srv->store.events & STORE_EV_FREED)
		srv->trim_wanted = srv->opt.trim;
	wake_parked(srv);
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
	if (srv->trim_wanted)
		srv->trim_wanted = trim_some(srv);
	if (srv->trim_wanted)
		return 0;
	next = srv->next_stall_check_ns;
	if (store_next_expiry(&srv->store) < next)
		next = store_next_expiry(&srv->store);
	if (srv->accept_resume_ns && srv->accept_resume_ns < next)
		next = srv->accept_resume_ns;
	for (struct conn *c = srv->park_head; c; c = c->park_next)
		if (c->deadline_ns < next)
			next = c->deadline_ns;
	now = server_now_ns();
	if (next != UINT64_MAX) {
		uint64_t ms = next > now ? (next - now + 999999) / 1000000 : 0;
		timeout = ms > 60000 ? 60000 : (int)ms;
	}
	return timeout;
}

/* The store's notification hook: subscribers, then the name journal. */
static void server_notify(void *ctx, enum store_note note,
                          const struct object *o, const char *name,
                          size_t name_len, uint64_t version)
{
	struct server *srv = ctx;

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
	rc = open_arena(srv, &reused, err, size);
	if (rc)
		return rc;
	rc = store_init(&srv->store, &srv->arena);
	if (rc) {
		snprintf(err, size, "out of memory");
		goto fail;
	}
	if (opt->persist_dir) {
		rc = persist_recover(&srv->persist, &srv->store, reused, err,
		                     size);
		if (rc)
			goto fail;
		srv->persisting = true;
	}
	srv->store.notify = server_notify;
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
	memset(srv, 0, sizeof(*srv));
	srv->listen_fd = srv->signal_fd = -1;
}
