/*
 * server.h - the daemon's state: the listening socket, the connections,
 * the store, and the requests that are waiting (parked).
 *
 * A connection's requests are handled strictly in order. A get, get-name
 * or create that has to wait is "parked": it stays at the front of the
 * connection's input buffer, is decoded once into a wait record indexed by
 * what it waits for (waits.h), and is handled again when that happens (a
 * seal of one of its IDs, its name set, space freed or made evictable) or
 * when its deadline passes; the connection's later requests wait behind
 * it. Nothing
 * a client does blocks the loop: reads and writes are non-blocking and
 * buffered per connection, input and output are capped per connection.
 */
#ifndef SHOAL_SERVER_H
#define SHOAL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arena.h"
#include "limit.h"
#include "loop.h"
#include "persist.h"
#include "protocol.h"
#include "store.h"
#include "waits.h"

/* Output beyond which a connection's further requests are not read until
 * the client reads its replies. */
#define CONN_OUT_SOFT_CAP (1u << 20)

struct server_options {
	uint64_t capacity;
	const char *socket_path;
	const char *dir;
	const char *persist_dir; /* --persist: names survive restarts */
	bool prefault;
	bool trim;        /* give free memory beyond reserve back to the OS */
	uint64_t reserve; /* free bytes kept backed when trimming */
	bool verbose;
	bool debug_checks; /* allow PROTO_DEBUG_CHECK */
	uint64_t stall_ms; /* drop a client that reads nothing this long */
	/* unread event bytes before a subscriber overflows */
	uint64_t event_queue;
	struct limits limits; /* 0s: defaults for the capacity */
	/* slots of the freed-range log (freelog.h); 0: FREELOG_ENTRIES */
	uint64_t freelog_entries;
	bool no_freelog; /* publish no region at all */
};

struct conn {
	struct server *srv;
	int fd;
	uint32_t index; /* in srv->conns */
	struct store_client sc;
	uint64_t pid;
	bool hello;
	bool closing; /* drop once the output is flushed */
	/* Input: bytes [in_off, in_len) of in are not handled yet; handled
	 * ones are dropped from the front only when room is needed, so a
	 * slice of requests costs no copy of the rest. */
	uint8_t *in;
	size_t in_off, in_len, in_cap;
	uint8_t *out;
	size_t out_off, out_len, out_cap;
	uint64_t out_stalled_ns; /* when output last stopped draining; 0 */
	/* Since when the client owes us input: a hello, or the rest of a
	 * half-sent request (--input-timeout); 0: it owes nothing. */
	uint64_t in_owed_ns;
	/* SNAPSHOT in progress: the next object and name slots to send. */
	bool snapshotting;
	uint32_t snap_obj, snap_name;
	/* Subscribers: the connection only receives events. */
	bool subscriber;
	bool sub_ttl; /* asked for NAME_TTL events */
	uint32_t event_seq;
	struct conn *sub_prev, *sub_next;
	/* Parking: the request at the front of in (waits.h). */
	struct wait wait;
	/* Complete requests left in in after a turn's share (conn.c). */
	bool backlog;
	struct conn *backlog_prev, *backlog_next;
};

struct server {
	struct server_options opt;
	struct loop *loop;
	struct arena arena;
	struct store store;
	int listen_fd;
	int signal_fd;
	struct conn **conns;
	uint32_t nconns, conns_cap;
	uint32_t next_client_id;
	struct waits waits; /* parked requests */
	uint64_t buffered;  /* bytes of all connections' buffers */
	uint32_t snapshots; /* subscribers with a snapshot in progress */
	bool snapshot_more; /* one stopped at its per-turn share */
	/* A parked create that can fit only by evicting is tried once per
	 * change of space (the store's count of frees and LRU pushes, when
	 * it was last tried). */
	uint64_t avail_seen;
	struct conn *subs; /* subscribers */
	/* Connections with requests left over from their turn's share, in
	 * the order they are served. */
	struct conn *backlog_head, *backlog_tail;
	bool subs_dirty; /* events were queued since the last flush */
	uint64_t next_stall_check_ns;
	uint64_t accept_resume_ns; /* accepting paused until then; 0: not */
	bool trim_wanted;
	uint64_t requests; /* requests dispatched (a waiting one counts once) */
	uint64_t trim_next_ns; /* trim passes are rate-limited */
	bool persisting;       /* opt.persist_dir is in use */
	bool stopped;          /* the loop ended on a signal: a clean stop */
	struct persist persist;
	/* The published region (freed-range log) clients map read-only. */
	struct freelog freelog;
};

/* Sets up arena, store, socket and loop. Returns 0, or a negative code with
 * a message for the user in err. */
int server_init(struct server *srv, const struct server_options *opt, char *err,
                size_t size);

/*
 * The part of server_init() without the socket, the signals and prefaulting:
 * arena, store and loop, with the before-sleep hook installed. For callers
 * that add connections themselves (server_add_conn) and drive the loop with
 * loop_run_once(): the fuzz harness and in-process tests. server_free()
 * undoes it. Returns 0, or a negative code with a message in err.
 */
int server_init_state(struct server *srv, const struct server_options *opt,
                      char *err, size_t size);

/* Serves fd (a connected stream socket, non-blocking, close-on-exec) as a
 * new client, which takes ownership of it. Returns the connection, or NULL
 * when memory ran out (fd is then closed). */
struct conn *server_add_conn(struct server *srv, int fd);

/* Serves until SIGTERM/SIGINT. Returns 0 or a negative code. */
int server_run(struct server *srv);

/* Closes every connection and frees everything; removes the socket file. */
void server_free(struct server *srv);

uint64_t server_now_ns(void);

/* Connection layer (conn.c) used by the command handlers. */

/* Reserves len bytes of output and returns where to write them, or NULL
 * (the connection is then marked closing). */
void *conn_out_reserve(struct conn *c, size_t len);

/* Appends a reply header and body prefix; returns the body to fill (len
 * bytes), starting with a struct proto_reply whose status is set to 0. */
void *conn_reply(struct conn *c, uint16_t type, uint32_t request_id,
                 size_t len);

/* Appends an error reply with a message. */
void conn_reply_error(struct conn *c, uint16_t type, uint32_t request_id,
                      int status, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

void conn_close(struct conn *c);

/* After anything happened on c: writes what is queued, closes it if due
 * (freeing c), and sets what the loop watches for. */
void conn_settle(struct conn *c);

/* The loop's handler for a connection's fd. */
void conn_on_event(struct loop *l, int fd, void *ctx, unsigned events);

/* Handles a parked connection's request again; final when its deadline has
 * passed. May close and free c. */
void conn_retry(struct conn *c, bool final);

/* Serves each connection with leftover requests its next share (once per
 * loop turn, from the before-sleep hook). May close connections. */
void conn_run_backlog(struct server *srv);

/* Notifications (events.c). */

/* The store's notification hook: queues an event to every subscriber. */
void events_notify(void *ctx, enum store_note note, const struct object *o,
                   const char *name, size_t name_len, uint64_t version);

/* Makes c a subscriber; with snapshot, queues the current objects and names
 * first. */
void events_subscribe(struct conn *c, bool snapshot);

/* Takes c off the subscriber list (on close). */
void events_unsubscribe(struct conn *c);

/* Writes queued events out (before the loop sleeps). */
void events_flush(struct server *srv);

/* Command layer (commands.c). */
enum cmd_result {
	CMD_DONE = 0,
	CMD_PARK = 1,  /* wait: handle again on an event or the deadline */
	CMD_CLOSE = 2, /* protocol violation: drop the client */
};

/* Handles one request. final is true when a parked request's deadline has
 * passed: it must be answered now. */
enum cmd_result commands_dispatch(struct conn *c, const struct proto_header *h,
                                  const uint8_t *body, bool final);

/* Name requests (cmd_names.c): LIST_NAMES, EXPIRE, PERSIST, NAME_INFO,
 * DELETE_PREFIX. */
enum cmd_result cmd_names_list(struct conn *c, const struct proto_header *h,
                               const uint8_t *body, bool final);
enum cmd_result cmd_names_expire(struct conn *c, const struct proto_header *h,
                                 const uint8_t *body, bool final);
enum cmd_result cmd_names_persist(struct conn *c, const struct proto_header *h,
                                  const uint8_t *body, bool final);
enum cmd_result cmd_names_info(struct conn *c, const struct proto_header *h,
                               const uint8_t *body, bool final);
enum cmd_result cmd_names_delete_prefix(struct conn *c,
                                        const struct proto_header *h,
                                        const uint8_t *body, bool final);

/* Deadline of a request that is about to park, from its timeout. */
uint64_t commands_deadline(const struct proto_header *h, const uint8_t *body);

#endif /* SHOAL_SERVER_H */
