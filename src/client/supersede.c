/*
 * supersede.c - a reader drops the pages of a superseded named object from
 * its own mapping, at the get that sees the name's new value.
 *
 * Every range the daemon frees leaves each client's mapping at the
 * client's next call anyway (freelog.c). But a named object is freed only
 * when no reader holds it any more: a worker that got the old frame and let
 * it go keeps its pages mapped until the slowest other worker lets go too
 * and then makes a call. For large values this client drops them earlier,
 * itself: it remembers, for each name that gave it a large object, the
 * object it last gave (a small table, the oldest entry making room). When a
 * get by name returns another object and this client holds no view of the
 * old one any more, the old range leaves this process's page tables
 * (client_zap: MADV_DONTNEED, which on a MAP_SHARED mapping only drops
 * page-table entries; see freelog.c for why that is always safe); while
 * views are held, it is dropped when the last goes. The part of the old
 * range that the new object covers, and pages shared with neighbours, are
 * kept.
 *
 * Every drop is made with io_lock held, so that the mapping cannot be
 * replaced or unmapped meanwhile (a reconnect needs io_lock): at the get,
 * or, when the last view goes, by whoever holds io_lock next in
 * client_end() (drop_view() takes it when it is free).
 */
#include <string.h>

#include "client_internal.h"

/* Drops the old range except what the name's new object covers and the
 * places where this client wrote large objects itself (a loader that reads
 * back what it put: its next put lands there, see freelog.c). */
static void zap_range(shoal_client *c, uint64_t off, uint64_t len,
                      uint64_t keep_off, uint64_t keep_len)
{
	struct client_range keep = {keep_off, keep_len};

	client_zap_unkept(c, off, len, &keep);
}

/* Keeps old to be dropped when the last view of its handle goes; the
 * first deferred drop makes room (its pages then stay mapped). ref_lock
 * must be held. */
static void defer_drop(shoal_client *c, const struct client_superseded *old)
{
	struct client_superseded *d = c->superseded;

	for (size_t i = 0; i < CLIENT_NAMED_MAX; i++)
		if (d[i].size == 0 ||
		    (d[i].handle == old->handle && !d[i].ready)) {
			d[i] = *old;
			return;
		}
	if (d[0].ready)
		atomic_fetch_sub(&c->named_ready, 1);
	memmove(&d[0], &d[1], (CLIENT_NAMED_MAX - 1) * sizeof(*d));
	d[CLIENT_NAMED_MAX - 1] = *old;
}

void client_named_seen(shoal_client *c, const char *name, size_t name_len,
                       uint64_t handle, uint64_t offset, uint64_t size)
{
	struct client_named *e = NULL, *oldest = &c->named[0];
	struct client_superseded old;
	struct client_ref *r;
	uint64_t hash;
	bool zap = false;

	if (size < CLIENT_NAMED_LARGE)
		return;
	hash = htab_hash_bytes(name, name_len);
	pthread_mutex_lock(&c->ref_lock);
	for (size_t i = 0; i < CLIENT_NAMED_MAX; i++) {
		struct client_named *n = &c->named[i];

		if (n->size && n->hash == hash) {
			e = n;
			break;
		}
		if (n->seq < oldest->seq)
			oldest = n;
	}
	c->named_seq++;
	if (!e || e->handle == handle) {
		if (!e)
			e = oldest;
		*e = (struct client_named){hash, c->named_seq, handle, offset,
		                           size};
		goto unlock;
	}
	old = (struct client_superseded){e->handle, e->offset, e->size, offset,
	                                 size};
	*e = (struct client_named){hash, c->named_seq, handle, offset, size};
	r = client_refmap_find(&c->views, old.handle, NULL);
	if (!r || r->count == 0)
		zap = true;
	else
		defer_drop(c, &old);
unlock:
	pthread_mutex_unlock(&c->ref_lock);
	if (zap)
		zap_range(c, old.offset, old.size, old.keep_offset,
		          old.keep_size);
}

void client_named_last_view(shoal_client *c, uint64_t handle)
{
	for (size_t i = 0; i < CLIENT_NAMED_MAX; i++) {
		struct client_superseded *d = &c->superseded[i];

		if (d->size && d->handle == handle && !d->ready) {
			d->ready = 1;
			atomic_fetch_add(&c->named_ready, 1);
		}
	}
}

void client_named_flush(shoal_client *c)
{
	struct client_superseded d[CLIENT_NAMED_MAX];
	size_t n = 0;

	pthread_mutex_lock(&c->ref_lock);
	for (size_t i = 0; i < CLIENT_NAMED_MAX; i++)
		if (c->superseded[i].ready) {
			d[n++] = c->superseded[i];
			memset(&c->superseded[i], 0, sizeof(d[0]));
		}
	atomic_store(&c->named_ready, 0);
	pthread_mutex_unlock(&c->ref_lock);
	for (size_t i = 0; i < n; i++)
		zap_range(c, d[i].offset, d[i].size, d[i].keep_offset,
		          d[i].keep_size);
}

void client_named_forget(shoal_client *c)
{
	memset(c->named, 0, sizeof(c->named));
	memset(c->superseded, 0, sizeof(c->superseded));
	atomic_store(&c->named_ready, 0);
}
