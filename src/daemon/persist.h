/*
 * persist.h - names that survive a restart (`shoal serve --persist DIR`).
 *
 * DIR holds three files: `arena` (the arena itself, a plain file that
 * outlives the daemon: see arena_open_persist()), `names.log` (the name
 * journal) and `lock` (flocked by the daemon that uses DIR, so that two
 * daemons never share one).
 *
 * The journal is a header and a sequence of records, each with its own
 * CRC-32C: "name N points at object (id, offset, sizes, version, expiry,
 * flags)" or "name N is gone". Every name change appends its record with one
 * write() from the store's notification hook, before the request's reply is
 * queued: the bytes are then in the page cache, which a killed process does not
 * take with it. Nothing is fsync'd on the request path and object bytes are
 * never read or copied: the arena file itself keeps them.
 *
 * At start, the journal is replayed (up to the first record that does not
 * check: a write cut short by the kill), the surviving named objects are
 * put back at their old offsets (the allocator is rebuilt from their
 * extents), and a compacted journal replaces the old one. A name therefore
 * comes back with its last value whose record was written, which is a
 * sealed, complete object: a name is set only to a sealed object, and the
 * object a name leaves is freed (and its memory reusable) only after the
 * record that replaces it was written.
 *
 * What survives what:
 *   - the daemon killed (SIGKILL, crash, OOM): every name change that was
 *     answered, same machine boot;
 *   - a clean stop (SIGTERM, `shoal stop`): everything; the arena and the
 *     journal are fsync'd and a "clean" record ends the journal, so on a
 *     disk-backed DIR this also holds across a reboot;
 *   - a machine crash or power loss after an unclean end: nothing (the
 *     journal's boot ID differs and it has no clean record, so its names are
 *     dropped rather than pointed at memory that may not have reached the
 *     disk). On tmpfs (/dev/shm) nothing survives a reboot anyway.
 * Unnamed objects never survive.
 */
#ifndef SHOAL_PERSIST_H
#define SHOAL_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct persist {
	char *dir;
	int lock_fd;
	int log_fd;
	int arena_fd;
	struct store *st;
	uint64_t seq;            /* last record's sequence number */
	uint64_t log_bytes;      /* size of names.log */
	uint64_t snapshot_bytes; /* size of the last compacted journal */
	bool failed;             /* a write failed: reported once */
	uint8_t boot_id[16];
	/* What the last start found, for the start-up line and tests. */
	uint64_t restored_names, restored_objects, dropped_names;
	char restore_note[160];
};

/*
 * Creates DIR (mode 0700) if needed and takes its lock. Call before the
 * arena is opened. Returns 0, or a negative code with a message in err
 * (e.g. another daemon uses DIR).
 */
int persist_lock(struct persist *p, const char *dir, char *err, size_t size);

/*
 * Replays DIR's journal into st (over an arena opened with
 * arena_open_persist(); arena_reused as it reported) and starts a new,
 * compacted journal. Returns 0, or a negative code with a message in err.
 */
int persist_recover(struct persist *p, struct store *st, bool arena_reused,
                    char *err, size_t size);

/* The store's notification hook's part: journals name changes. */
void persist_note(struct persist *p, enum store_note note,
                  const struct object *o, const char *name, size_t name_len,
                  uint64_t version);

/* Rewrites the journal when it has grown well past what the live names
 * need. Called from the loop's before-sleep hook; cheap when not due. */
void persist_maybe_compact(struct persist *p);

/*
 * Ends persistence. With clean (a normal stop), first makes the arena and
 * the journal durable and marks the journal clean. Releases the lock.
 */
void persist_close(struct persist *p, bool clean);

#endif /* SHOAL_PERSIST_H */
