/*
 * connect.c - opening and closing a client: the socket, the HELLO exchange
 * that brings the arena's fd, the one mapping of the arena, and fork
 * detection.
 *
 * The arena is mapped once, whole, shared and read-only, from the read-only
 * fd the daemon sends. Before the mapping is used, everything the daemon
 * said about it is checked against the file (fstat: a mapping longer than
 * the file would raise SIGBUS) and against the header at offset 0 (magic,
 * format version, sizes). Any mismatch is SHOAL_EARENA; nothing past this
 * file trusts a size that was not checked. A client that creates objects
 * first swaps in a mapping of a writable description (client_write_access,
 * still read-only; window.c opens the pages of each object being created).
 *
 * Restarts: a connection found gone (see transport.c) is replaced on the
 * next call by client_reconnect(), which runs the same socket, HELLO and
 * mapping steps as shoal_connect() and keeps the old mapping in a retired
 * record for as long as the application holds views from it. Each
 * connection has an epoch; nothing of an older epoch is ever sent.
 *
 * Fork: a child handler registered once with pthread_atfork() bumps a
 * process-wide generation. A client remembers the generation it was
 * connected in; in a child the numbers differ and every call returns
 * SHOAL_EFORKED before touching the socket or a lock (a lock may have been
 * held by a parent thread that does not exist in the child).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "client_internal.h"
#include "layout.h"
#include "os.h"

/* Largest HELLO reply body accepted (a fixed struct or an error message). */
#define HELLO_REPLY_MAX 65536
/* File descriptors accepted in one control message (extras are closed). */
#define MAX_FDS 4
/* Kept from a HELLO reply: the arena's, then the published region's. */
#define HELLO_FDS 2

static atomic_uint fork_generation;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static int fork_handler_status;

static void on_fork_child(void)
{
	atomic_fetch_add(&fork_generation, 1);
}

static void register_fork_handler(void)
{
	fork_handler_status = -pthread_atfork(NULL, NULL, on_fork_child);
}

unsigned client_fork_generation(void)
{
	return atomic_load(&fork_generation);
}

/*
 * Makes sure dir is a private directory of this user: creates it 0700 if it
 * is missing, then checks (without following a symlink) that it is a
 * directory, owned by the effective uid, with no group or other access.
 * Returns 0, SHOAL_EUNSAFE or -errno.
 */
static int private_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st) != 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0)
		return SHOAL_EUNSAFE;
	return 0;
}

SHOAL_API int shoal_default_socket(char *buf, size_t size)
{
	const char *env = getenv("SHOAL_SOCKET");
	int n;

	if (!buf)
		return SHOAL_EINVAL;
	if (env && *env) {
		n = snprintf(buf, size, "%s", env);
	} else {
		env = getenv("XDG_RUNTIME_DIR");
		if (env && *env) {
			n = snprintf(buf, size, "%s/shoal.sock", env);
		} else {
			const char *tmp = getenv("TMPDIR");
			char *slash;

			if (!tmp || *tmp != '/')
				tmp = "/tmp";
			n = snprintf(buf, size, "%s/shoal-%u/shoal.sock", tmp,
			             (unsigned)getuid());
			if (n < 0 || (size_t)n >= size)
				return SHOAL_ETOOBIG;
			slash = strrchr(buf, '/');
			*slash = '\0';
			int rc = private_dir(buf);
			*slash = '/';
			return rc;
		}
	}
	if (n < 0 || (size_t)n >= size)
		return SHOAL_ETOOBIG;
	return 0;
}

/* Refuses a daemon that runs as another user. Returns 0, SHOAL_EFOREIGN or
 * -errno. */
static int check_peer(int sock)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return -errno;
	return cred.uid == geteuid() ? 0 : SHOAL_EFOREIGN;
}

SHOAL_API int shoal_id_random(shoal_id *id)
{
	size_t done = 0;

	if (!id)
		return SHOAL_EINVAL;
	while (done < sizeof(id->bytes)) {
		ssize_t n = getrandom(id->bytes + done,
		                      sizeof(id->bytes) - done, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

SHOAL_API const char *shoal_socket_path(const shoal_client *c)
{
	return c ? c->path : NULL;
}

SHOAL_API void shoal_arena_sized(const shoal_client *c, shoal_arena_info *out,
                                 size_t size)
{
	shoal_arena_info a = {0};

	if (!out)
		return;
	if (c)
		a = (shoal_arena_info){.base = c->base,
		                       .map_size = c->map_size,
		                       .capacity = c->capacity,
		                       .data_offset = c->data_offset};
	client_copy_sized(out, size, &a, sizeof(a));
}

/*
 * Connects fd to path, waiting out an interrupted connect. Returns 0,
 * SHOAL_EUNAVAILABLE when nothing listens there, or -errno.
 */
static int connect_path(int fd, const char *path)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	socklen_t len = sizeof(int);
	int err = 0;

	memcpy(addr.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		return 0;
	err = errno;
	if (err == EINTR || err == EINPROGRESS) {
		/* The connect goes on in the background: wait for its end. */
		while (poll(&p, 1, -1) < 0)
			if (errno != EINTR)
				return -errno;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			return -errno;
		if (err == 0)
			return 0;
	}
	if (err == ENOENT || err == ECONNREFUSED)
		return SHOAL_EUNAVAILABLE;
	return -err;
}

/* Keeps the first HELLO_FDS fds of SCM_RIGHTS messages in fds (slots
 * still -1, in order), closes the others. */
static void take_fds(struct msghdr *mh, int *fds)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm;
	     cm = CMSG_NXTHDR(mh, cm)) {
		size_t n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int got;

			memcpy(&got, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			int k = 0;
			while (k < HELLO_FDS && fds[k] >= 0)
				k++;
			if (k < HELLO_FDS)
				fds[k] = got;
			else
				close(got);
		}
	}
}

/*
 * Receives exactly len bytes (the HELLO reply reads exactly what it needs,
 * so no later bytes are consumed here), collecting passed fds in fds
 * (HELLO_FDS of them). Returns 0, SHOAL_EUNAVAILABLE on EOF, SHOAL_EPROTO
 * if control data was truncated, or -errno.
 */
static int recv_exact(int sock, void *buf, size_t len, int *fds)
{
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	size_t done = 0;

	while (done < len) {
		struct iovec iov = {(uint8_t *)buf + done, len - done};
		struct msghdr mh = {.msg_iov = &iov,
		                    .msg_iovlen = 1,
		                    .msg_control = ctl.buf,
		                    .msg_controllen = sizeof(ctl.buf)};
		ssize_t n = os_recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == ECONNRESET ? SHOAL_EUNAVAILABLE
			                           : -errno;
		}
		take_fds(&mh, fds);
		if (mh.msg_flags & MSG_CTRUNC)
			return SHOAL_EPROTO;
		if (n == 0)
			return SHOAL_EUNAVAILABLE;
		done += (size_t)n;
	}
	return 0;
}

/* Sends len bytes. Returns 0, SHOAL_EUNAVAILABLE or -errno. */
static int send_exact(int sock, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = os_send(sock, (const uint8_t *)buf + done,
		                    len - done, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EPIPE || errno == ECONNRESET
			               ? SHOAL_EUNAVAILABLE
			               : -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

/*
 * The HELLO exchange on socket sock with the given flags (0, or
 * PROTO_HELLO_WRITER). On 0, *rep is the checked reply, fds[0] the arena's
 * fd and fds[1] the published region's (-1 when the daemon sent none). On
 * failure fds may still hold fds for the caller to close. Returns 0, the
 * daemon's negative status, SHOAL_EPROTO, SHOAL_EUNAVAILABLE, SHOAL_ENOMEM
 * or -errno.
 */
static int hello(shoal_client *c, int sock, uint32_t flags,
                 struct proto_hello_reply *rep, int fds[HELLO_FDS])
{
	struct {
		struct proto_header h;
		struct proto_hello b;
	} req = {.b = {.proto_version = PROTO_VERSION,
	               .flags = flags,
	               .pid = (uint64_t)getpid()}};
	struct proto_header h;
	struct proto_reply r;
	uint8_t *body = NULL;
	uint32_t id = c->next_request++;
	int rc;

	proto_header_init(&req.h, PROTO_HELLO, id, sizeof(req.b));
	rc = send_exact(sock, &req, sizeof(req));
	if (rc < 0)
		return rc;
	rc = recv_exact(sock, &h, sizeof(h), fds);
	if (rc < 0)
		return rc;
	if (proto_check_header(&h, HELLO_REPLY_MAX) != 0 ||
	    h.type != (PROTO_HELLO | PROTO_REPLY) || h.request_id != id ||
	    h.body_len < sizeof(r))
		return SHOAL_EPROTO;
	body = os_malloc(h.body_len);
	if (!body)
		return SHOAL_ENOMEM;
	rc = recv_exact(sock, body, h.body_len, fds);
	if (rc < 0)
		goto out;
	memcpy(&r, body, sizeof(r));
	if (r.status < 0) {
		rc = r.status;
		goto out;
	}
	if (r.status > 0 || h.body_len != sizeof(*rep) || fds[0] < 0) {
		rc = SHOAL_EPROTO;
		goto out;
	}
	memcpy(rep, body, sizeof(*rep));
out:
	free(body);
	return rc;
}

/*
 * Checks the arena facts of the HELLO reply against the file, maps it
 * read-only and checks its header. The facts a client relies on later come
 * from the reply, not from the shared header (which the daemon re-checks
 * before every HELLO). Returns 0, SHOAL_EARENA, SHOAL_ENOMEM or -errno.
 */
static int map_arena(shoal_client *c, const struct proto_hello_reply *rep,
                     int fd)
{
	const struct layout_header *lh;
	struct stat st;
	void *p;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (rep->map_size < sizeof(*lh) || rep->map_size > SIZE_MAX ||
	    (uint64_t)st.st_size < rep->map_size ||
	    rep->data_offset < sizeof(*lh) ||
	    rep->data_offset > rep->map_size ||
	    rep->capacity > rep->map_size - rep->data_offset)
		return SHOAL_EARENA;
	p = os_mmap(NULL, rep->map_size, PROT_READ, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return errno == ENOMEM ? SHOAL_ENOMEM : -errno;
	c->base = p;
	c->writable = false;
	c->arena_dev = (uint64_t)st.st_dev;
	c->arena_ino = (uint64_t)st.st_ino;
	/* hugetlbfs reports its huge page size: protection changes in those
	 * units there. */
	c->window_page = c->page_size;
	if (st.st_blksize > 0 && (size_t)st.st_blksize > c->page_size &&
	    ((size_t)st.st_blksize & ((size_t)st.st_blksize - 1)) == 0 &&
	    rep->map_size % (uint64_t)st.st_blksize == 0)
		c->window_page = (size_t)st.st_blksize;
	c->map_size = rep->map_size;
	c->capacity = rep->capacity;
	c->data_offset = rep->data_offset;
	c->client_id = rep->client_id;
	lh = p;
	if (lh->magic != LAYOUT_MAGIC || lh->version != LAYOUT_VERSION ||
	    lh->capacity != rep->capacity ||
	    lh->data_offset != rep->data_offset ||
	    lh->map_size != rep->map_size)
		return SHOAL_EARENA;
	c->nchunks = (size_t)((c->map_size + LAYOUT_CHUNK - 1) / LAYOUT_CHUNK);
	c->populated = os_calloc((c->nchunks + 63) / 64, sizeof(uint64_t));
	if (!c->populated)
		return SHOAL_ENOMEM;
	return 0;
}

/*
 * Opens the socket, does the HELLO exchange and maps the arena, into c's
 * fd and mapping fields (which must be empty). On failure c->fd and the
 * mapping may be set, for the caller to close. Returns 0 or what
 * connect_path(), hello() and map_arena() return.
 */
static int open_session(shoal_client *c)
{
	struct proto_hello_reply rep;
	int fds[HELLO_FDS] = {-1, -1};
	int rc;

	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	rc = connect_path(c->fd, c->path);
	if (rc == 0)
		rc = check_peer(c->fd);
	if (rc == 0)
		rc = hello(c, c->fd, 0, &rep, fds);
	if (rc == 0)
		rc = map_arena(c, &rep, fds[0]);
	if (rc == 0)
		client_freelog_map(c, fds[1]);
	for (int i = 0; i < HELLO_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return rc;
}

/* Closes c's connection and forgets its mapping (not unmapped: the caller
 * has unmapped it or moved it to a retired record). */
static void close_session(shoal_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	client_freelog_unmap(c);
	free((void *)c->populated);
	c->populated = NULL;
	c->nchunks = 0;
	c->base = NULL;
	c->map_size = c->capacity = c->data_offset = 0;
	c->rstart = c->rend = 0;
}

static void retired_destroy(struct client_retired *r);

/* Copies the live entries of from into a fresh map. 0 or SHOAL_ENOMEM. */
static int copy_refs(struct client_refmap *to, const struct client_refmap *from,
                     bool views)
{
	struct client_ref *r, *n;

	to->by_id = from->by_id;
	if (client_refmap_reserve(to, client_refmap_count(from)) < 0)
		return SHOAL_ENOMEM;
	for (size_t i = 0; (r = client_refmap_next(from, &i));) {
		if (views && r->count == 0)
			continue; /* released, its RELEASE not sent yet */
		n = client_refmap_insert(to, r->handle, &r->id);
		n->size = r->size;
		n->count = r->count;
	}
	return 0;
}

/*
 * Moves the current mapping, views and unsealed creates to a retired
 * record (or unmaps at once when nothing uses them) and empties the maps,
 * keeping their room. io_lock must be held. Returns 0 or SHOAL_ENOMEM
 * (nothing changed).
 */
static int retire_session(shoal_client *c)
{
	struct client_retired *r = os_calloc(1, sizeof(*r));
	int rc = SHOAL_ENOMEM;

	if (!r)
		return rc;
	pthread_mutex_lock(&c->ref_lock);
	/* Re-pin holds of this connection end with it. */
	for (struct client_retired *o = c->retired; o; o = o->next) {
		struct client_ref *e, *cur;
		if (o->repin_epoch != c->epoch)
			continue;
		for (size_t i = 0; (e = client_refmap_next(&o->views, &i));) {
			cur = e->has_repin ? client_refmap_find(&c->views,
			                                        e->repin, NULL)
			                   : NULL;
			if (cur && cur->repins && cur->count) {
				cur->repins--;
				cur->count--;
			}
			e->has_repin = 0;
		}
		o->repin_epoch = 0;
	}
	if (copy_refs(&r->views, &c->views, true) < 0 ||
	    copy_refs(&r->unsealed, &c->unsealed, false) < 0) {
		pthread_mutex_unlock(&c->ref_lock);
		client_refmap_free(&r->views);
		client_refmap_free(&r->unsealed);
		free(r);
		return rc;
	}
	client_refmap_clear(&c->views);
	client_refmap_clear(&c->view_ids);
	client_refmap_clear(&c->unsealed);
	client_named_forget(c);
	/* Windows of the old creates stay open in the old mapping. */
	client_refmap_clear(&c->edges);
	atomic_store(&c->npending, 0);
	c->deferred_bytes = 0;
	r->base = c->base;
	r->map_size = c->map_size;
	/* A create being filled outside io_lock may still mark it. */
	r->populated = c->populated;
	c->populated = NULL;
	r->epoch = c->epoch;
	r->dev = c->arena_dev;
	r->ino = c->arena_ino;
	r->fd = -1;
	if (client_refmap_count(&r->views) ||
	    client_refmap_count(&r->unsealed)) {
		r->fd = c->fd;
		c->fd = -1;
		r->next = c->retired;
		c->retired = r;
		r = NULL;
	}
	pthread_mutex_unlock(&c->ref_lock);
	retired_destroy(r);
	close_session(c);
	return 0;
}

int client_reconnect(shoal_client *c)
{
	int rc;

	if (c->no_reconnect)
		return SHOAL_EUNAVAILABLE;
	if (c->base) {
		rc = retire_session(c);
		if (rc < 0)
			return rc;
	} else if (c->fd >= 0) {
		close_session(c); /* a reconnect that failed half-way */
	}
	rc = open_session(c);
	if (rc == SHOAL_EUNAVAILABLE && c->restart_hook) {
		close_session(c);
		rc = c->restart_hook(c->restart_ctx, c->path);
		if (rc == 0)
			rc = open_session(c);
	}
	if (rc < 0) {
		if (c->base)
			munmap(c->base, c->map_size);
		close_session(c);
		return rc == SHOAL_ENOMEM || rc == SHOAL_EARENA ||
		                       rc == SHOAL_EPROTO
		               ? rc
		               : SHOAL_EUNAVAILABLE;
	}
	c->epoch++;
	c->deferred_error = 0;
	atomic_store(&c->broken, false);
	client_repin(c);
	return 0;
}

/* Unlinks r from c's list and frees it if it is no longer used. ref_lock
 * must be held; returns r when the caller must unmap and free it. */
static struct client_retired *retired_settle(shoal_client *c,
                                             struct client_retired *r)
{
	if (client_refmap_count(&r->views) || client_refmap_count(&r->unsealed))
		return NULL;
	for (struct client_retired **p = &c->retired; *p; p = &(*p)->next)
		if (*p == r) {
			*p = r->next;
			return r;
		}
	return NULL;
}

static void retired_destroy(struct client_retired *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	munmap(r->base, r->map_size);
	free((void *)r->populated);
	client_refmap_free(&r->views);
	client_refmap_free(&r->unsealed);
	free(r);
}

int client_retired_drop_locked(shoal_client *c, const void *ptr,
                               uint64_t handle, const shoal_id *id,
                               struct client_retired **gone, uint64_t *repin)
{
	const uint8_t *p = ptr;
	struct client_retired *r;
	struct client_ref *ref = NULL;

	*gone = NULL;
	*repin = 0;
	for (r = c->retired; r; r = r->next) {
		if (id) {
			for (size_t i = 0;
			     (ref = client_refmap_next(&r->views, &i));)
				if (memcmp(ref->id.bytes, id->bytes,
				           SHOAL_ID_SIZE) == 0)
					break;
		} else if (p >= r->base && p < r->base + r->map_size) {
			ref = client_refmap_find(&r->views, handle, NULL);
		}
		if (ref)
			break;
	}
	if (!ref)
		return SHOAL_ENOTFOUND;
	int rc = 0;
	if (--ref->count == 0) {
		if (ref->has_repin && r->repin_epoch == c->epoch) {
			*repin = ref->repin;
			rc = 1;
		}
		client_refmap_remove(&r->views, ref);
	}
	*gone = retired_settle(c, r);
	return rc;
}

void client_retired_destroy(struct client_retired *r)
{
	retired_destroy(r);
}

int client_retired_forget_create(shoal_client *c, const shoal_id *id)
{
	struct client_retired *r, *gone = NULL;
	struct client_ref *ref = NULL;

	pthread_mutex_lock(&c->ref_lock);
	for (r = c->retired; r; r = r->next) {
		ref = client_refmap_find(&r->unsealed, 0, id);
		if (ref)
			break;
	}
	if (ref) {
		client_refmap_remove(&r->unsealed, ref);
		gone = retired_settle(c, r);
	}
	pthread_mutex_unlock(&c->ref_lock);
	retired_destroy(gone);
	return ref ? 0 : SHOAL_ENOTFOUND;
}

void client_retired_free(shoal_client *c)
{
	while (c->retired) {
		struct client_retired *r = c->retired;
		c->retired = r->next;
		retired_destroy(r);
	}
}

SHOAL_API void shoal_set_restart_hook(shoal_client *c, shoal_restart_fn fn,
                                      void *ctx)
{
	if (!c || client_check_fork(c) < 0)
		return;
	pthread_mutex_lock(&c->io_lock);
	c->restart_hook = fn;
	c->restart_ctx = fn ? ctx : NULL;
	pthread_mutex_unlock(&c->io_lock);
}

SHOAL_API uint32_t shoal_epoch(const shoal_client *c)
{
	return c ? c->epoch : 0;
}

int client_writer_fd(shoal_client *c, int *fd_out)
{
	struct proto_hello_reply rep;
	struct stat st;
	int sock, fds[HELLO_FDS] = {-1, -1}, rc;

	*fd_out = -1;
	sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		return -errno;
	rc = connect_path(sock, c->path);
	if (rc == 0)
		rc = check_peer(sock);
	if (rc == 0)
		rc = hello(c, sock, PROTO_HELLO_WRITER, &rep, fds);
	int fd = fds[0];
	if (rc < 0)
		goto out;
	/* A daemon restarted since connect has another arena: the mapping
	 * must stay what it is. */
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_dev != c->arena_dev ||
	    (uint64_t)st.st_ino != c->arena_ino ||
	    rep.map_size != c->map_size || rep.capacity != c->capacity ||
	    rep.data_offset != c->data_offset ||
	    (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDWR) {
		rc = SHOAL_EARENA;
		goto out;
	}
	*fd_out = fd;
	fds[0] = -1; /* the caller's now; the other fds are closed */
out:
	for (int i = 0; i < HELLO_FDS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	close(sock);
	return rc;
}

int client_write_access(shoal_client *c)
{
	int fd, rc;

	if (c->writable)
		return 0;
	rc = client_writer_fd(c, &fd);
	if (rc < 0)
		return rc;
	/* In place: views other threads hold stay valid (the kernel swaps
	 * the mapping under its lock; the pages are the same). */
	if (os_mmap(c->base, c->map_size, PROT_READ, MAP_SHARED | MAP_FIXED, fd,
	            0) == MAP_FAILED) {
		rc = errno == ENOMEM ? SHOAL_ENOMEM : -errno;
		close(fd);
		return rc;
	}
	close(fd);
	/* The new mapping has no page tables yet. */
	for (size_t i = 0; i < (c->nchunks + 63) / 64; i++)
		atomic_store(&c->populated[i], 0);
	c->writable = true;
	return 0;
}

/* Frees whatever part of a client exists. Sends nothing. */
static void client_free(shoal_client *c, bool forked)
{
	if (c->fd >= 0)
		close(c->fd);
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->base)
		munmap(c->base, c->map_size);
	client_freelog_unmap(c);
	client_retired_free(c);
	free((void *)c->populated);
	free(c->rbuf);
	free(c->pending);
	free(c->rel_out);
	client_refmap_free(&c->views);
	client_refmap_free(&c->view_ids);
	client_refmap_free(&c->unsealed);
	client_refmap_free(&c->edges);
	/* A forked child may have inherited the locks in a held state;
	 * destroying a held mutex is undefined, so the child leaves them. */
	if (c->locks_ready && !forked) {
		pthread_mutex_destroy(&c->io_lock);
		pthread_mutex_destroy(&c->ref_lock);
	}
	free(c->path);
	free(c);
}

SHOAL_API int shoal_connect(const char *socket_path, shoal_client **out)
{
	char def[sizeof(((struct sockaddr_un *)0)->sun_path)];
	const char *env = getenv("SHOAL_NO_RECONNECT");
	shoal_client *c;
	int rc;

	if (!out)
		return SHOAL_EINVAL;
	*out = NULL;
	pthread_once(&fork_once, register_fork_handler);
	if (fork_handler_status < 0)
		return fork_handler_status;
	if (!socket_path) {
		rc = shoal_default_socket(def, sizeof(def));
		if (rc < 0)
			return rc;
		socket_path = def;
	}
	if (!*socket_path)
		return SHOAL_EINVAL;
	if (strlen(socket_path) >= sizeof(def))
		return SHOAL_ETOOBIG;

	c = os_calloc(1, sizeof(*c));
	if (!c)
		return SHOAL_ENOMEM;
	c->fd = -1;
	c->wake_fd = -1;
	c->generation = client_fork_generation();
	c->next_request = 1;
	c->epoch = 1;
	c->no_reconnect = env && *env && strcmp(env, "0") != 0;
	c->unsealed.by_id = true;
	c->view_ids.by_id = true;
	c->page_size = (size_t)sysconf(_SC_PAGESIZE);
	c->path = os_strdup(socket_path);
	if (!c->path || pthread_mutex_init(&c->io_lock, NULL) != 0) {
		rc = SHOAL_ENOMEM;
		goto fail;
	}
	if (pthread_mutex_init(&c->ref_lock, NULL) != 0) {
		pthread_mutex_destroy(&c->io_lock);
		rc = SHOAL_ENOMEM;
		goto fail;
	}
	c->locks_ready = true;
	rc = client_reader_init(c);
	if (rc == 0)
		rc = client_wake_init(c);
	if (rc < 0)
		goto fail;

	rc = open_session(c);
	if (rc < 0)
		goto fail;
	*out = c;
	return 0;

fail:
	client_free(c, false);
	return rc;
}

SHOAL_API void shoal_disconnect(shoal_client *c)
{
	if (!c)
		return;
	client_free(c, client_check_fork(c) < 0);
}
