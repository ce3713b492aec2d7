/*
 * persist.c - the name journal of `serve --persist DIR` (see persist.h).
 *
 * Journal layout (little-endian, every record 8-byte aligned):
 *
 *   header   struct journal_header: magic, format version, the boot ID of
 *            the machine boot that wrote it, CRC-32C of the header
 *   records  struct journal_rec, then a body by type, then the name bytes,
 *            zero-padded to 8; crc covers everything after the crc field
 *
 * A SET record carries the name's flags and its expiry as CLOCK_REALTIME
 * (the daemon keeps expiry on CLOCK_MONOTONIC, which does not survive a
 * reboot); a ttl change (EXPIRE, PERSIST) is written as a new SET. A name
 * whose expiry passed while the daemon was down comes back and expires at
 * once, as any expired name does.
 *
 * Torn records: a record is appended by one write() of a few hundred bytes
 * from one thread, so only the last record can be cut short (by a SIGKILL
 * between pages, or a full disk). Replay stops at the first record whose
 * magic, length or CRC does not check; a failed write is cut off again with
 * ftruncate() so that later records are never stranded behind it. A bad
 * record with good ones after it is damage, not a torn write: the names
 * before it could point at blocks reused since, so none is restored.
 *
 * Trust: the arena's bytes outlive the daemon in the page cache, not on
 * disk. A journal is replayed only if it was written in this machine boot
 * (its header's boot ID is the current one), or if it ends with a clean
 * record, written after the arena and the journal were fsync'd at a normal
 * stop. Otherwise its names are dropped: they might point at memory that
 * never reached the disk.
 *
 * Memory reuse: the store frees the object a name leaves in the same call
 * that sets the name again, and this hook writes the record in that call,
 * before any other request can allocate the freed block. So whatever
 * record is last in the journal, its object's block was never reused.
 */
#include "persist.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "layout.h"
#include "os.h"
#include "shoal.h"

#define JOURNAL_MAGIC   0x4c4e524a4c414f53ull /* "SOALJRNL" */
#define JOURNAL_VERSION 1
#define REC_MAGIC       0x43455253u /* "SREC" */

/* Compaction: when the journal is this much larger than its last compacted
 * size, plus a floor so that small stores never compact. */
#define COMPACT_FLOOR (4u << 20)

enum rec_type {
	REC_SET = 1,   /* a name points at an object */
	REC_DEL = 2,   /* a name is gone */
	REC_CLEAN = 3, /* a normal stop: everything before is durable */
};

struct journal_header {
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;
	uint8_t boot_id[16];
	uint64_t created_ns;
	uint64_t last_version; /* the store's, when the journal was started */
	uint64_t reserved[2];
	uint32_t pad;
	uint32_t crc; /* of the bytes before it */
};

struct journal_rec {
	uint32_t magic;
	uint32_t crc; /* of the record's bytes after this field */
	uint32_t len; /* of the whole record, padding included */
	uint16_t type;
	uint16_t name_len;
	uint64_t seq;
};

struct journal_set {
	uint8_t id[SHOAL_ID_SIZE];
	uint32_t metadata_size;
	uint64_t version;
	uint64_t offset;
	uint64_t data_size;
	uint64_t create_time_ns;
	uint64_t expire_ns; /* a name's TTL as CLOCK_REALTIME; 0: none */
	uint32_t flags;     /* a name's flags (NAME_EVICTABLE) */
	uint32_t reserved;
};

struct journal_del {
	uint64_t version;
};

_Static_assert(sizeof(struct journal_header) == 72, "header layout");
_Static_assert(sizeof(struct journal_rec) == 24, "record layout");
_Static_assert(sizeof(struct journal_set) == 72, "set layout");

/* Largest record: a SET with the longest name. */
#define REC_MAX                                                    \
	(sizeof(struct journal_rec) + sizeof(struct journal_set) + \
	 SHOAL_NAME_MAX + 8)

/* ----------------------------------------------------------- CRC-32C */

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0x82f63b78u & (0u - (c & 1u)));
		crc_table[i] = c;
	}
}

static uint32_t crc32c(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t c = ~0u;

	while (len--)
		c = crc_table[(c ^ *p++) & 0xff] ^ (c >> 8);
	return ~c;
}

/* ------------------------------------------------------------ helpers */

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* The kernel's boot ID (a UUID) as 16 bytes; zeros if unreadable. */
static void read_boot_id(uint8_t out[16])
{
	char buf[64];
	size_t k = 0;
	ssize_t n;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	memset(out, 0, 16);
	if (fd < 0)
		return;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return;
	for (ssize_t i = 0; i + 1 < n && k < 16; i++) {
		unsigned v;
		if (buf[i] == '-')
			continue;
		if (sscanf(buf + i, "%2x", &v) != 1)
			return;
		out[k++] = (uint8_t)v;
		i++;
	}
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int path_in(const struct persist *p, const char *file, char *out,
                   size_t size)
{
	if (snprintf(out, size, "%s/%s", p->dir, file) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/*
 * Encodes one record into buf (REC_MAX bytes). For REC_SET, o and version
 * describe the object and e (may be NULL) the name's expiry and flags; for
 * REC_DEL, version is the name's last version. Returns the record's length.
 */
static size_t encode(uint8_t *buf, uint64_t seq, enum rec_type type,
                     const struct object *o, const char *name, size_t len,
                     uint64_t version, const struct store *st,
                     const struct name_entry *e)
{
	struct journal_rec r = {.magic = REC_MAGIC,
	                        .type = (uint16_t)type,
	                        .name_len = (uint16_t)len,
	                        .seq = seq};
	size_t body = 0, total;

	if (type == REC_SET) {
		struct journal_set s = {
		        .metadata_size = o->metadata_size,
		        .version = version,
		        .offset = o->offset,
		        .data_size = o->data_size,
		        .create_time_ns = o->create_time_ns,
		        .expire_ns = store_name_expiry_realtime(st, e),
		        .flags = e ? e->flags : 0};
		memcpy(s.id, o->id, SHOAL_ID_SIZE);
		memcpy(buf + sizeof(r), &s, sizeof(s));
		body = sizeof(s);
	} else if (type == REC_DEL) {
		struct journal_del d = {.version = version};
		memcpy(buf + sizeof(r), &d, sizeof(d));
		body = sizeof(d);
	}
	memcpy(buf + sizeof(r) + body, name, len);
	total = (sizeof(r) + body + len + 7) & ~(size_t)7;
	memset(buf + sizeof(r) + body + len, 0, total - sizeof(r) - body - len);
	r.len = (uint32_t)total;
	memcpy(buf, &r, sizeof(r));
	r.crc = crc32c(buf + 8, total - 8);
	memcpy(buf + 4, &r.crc, sizeof(r.crc));
	return total;
}

/* Appends one record to the journal; on failure cuts the journal back to
 * its last whole record and says so once. */
static void append(struct persist *p, const uint8_t *rec, size_t len)
{
	int rc = write_all(p->log_fd, rec, len);

	if (rc == 0) {
		p->log_bytes += len;
		return;
	}
	(void)!ftruncate(p->log_fd, (off_t)p->log_bytes);
	if (!p->failed)
		fprintf(stderr,
		        "shoal: cannot write the name journal in %s: %s; name "
		        "changes from now on may not survive a restart\n",
		        p->dir, strerror(-rc));
	p->failed = true;
}

/* ------------------------------------------------------------ writing */

static int write_header(int fd, const uint8_t boot_id[16],
                        uint64_t last_version)
{
	struct journal_header h = {.magic = JOURNAL_MAGIC,
	                           .version = JOURNAL_VERSION,
	                           .header_size = sizeof(h),
	                           .created_ns = realtime_ns(),
	                           .last_version = last_version};

	memcpy(h.boot_id, boot_id, 16);
	h.crc = crc32c(&h, offsetof(struct journal_header, crc));
	return write_all(fd, &h, sizeof(h));
}

/*
 * Writes a journal of the store's current names to DIR/names.log.new and
 * renames it over names.log; with sync, fsyncs the file and the directory
 * (at start, where a moment does not matter). On 0 the new journal is
 * open for appending in p->log_fd (the old fd is closed).
 */
static int write_snapshot(struct persist *p, bool sync)
{
	char tmp[4096], path[4096];
	uint8_t *buf = NULL;
	size_t cap = 1u << 20, used = 0;
	uint64_t bytes = sizeof(struct journal_header);
	int fd = -1, rc;

	if ((rc = path_in(p, "names.log.new", tmp, sizeof(tmp))) ||
	    (rc = path_in(p, "names.log", path, sizeof(path))))
		return rc;
	buf = os_malloc(cap);
	if (!buf)
		return SHOAL_ENOMEM;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
	          0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_header(fd, p->boot_id, p->st->last_version);
	for (uint32_t i = 0; rc == 0 && i < p->st->names.nslots; i++) {
		const struct name_entry *e = names_get(&p->st->names, i);
		if (!e->name)
			continue;
		if (cap - used < REC_MAX) {
			rc = write_all(fd, buf, used);
			used = 0;
		}
		size_t n = encode(buf + used, ++p->seq, REC_SET,
		                  objtab_get(&p->st->objs, e->obj), e->name,
		                  e->len, e->version, p->st, e);
		used += n;
		bytes += n;
	}
	if (rc == 0 && used)
		rc = write_all(fd, buf, used);
	if (rc == 0 && sync && fsync(fd) != 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc == 0 && sync) {
		int dfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	if (rc == 0) {
		if (p->log_fd >= 0)
			close(p->log_fd);
		p->log_fd = fd;
		fd = -1;
		p->log_bytes = p->snapshot_bytes = bytes;
		p->failed = false;
	} else {
		unlink(tmp);
	}
out:
	if (fd >= 0)
		close(fd);
	free(buf);
	return rc;
}

void persist_note(struct persist *p, enum store_note note,
                  const struct object *o, const char *name, size_t name_len,
                  uint64_t version)
{
	uint8_t rec[REC_MAX];
	size_t len;

	if (p->log_fd < 0)
		return;
	if (note == STORE_NOTE_NAME_SET || note == STORE_NOTE_NAME_TTL) {
		uint32_t ns = names_find(&p->st->names, name, name_len);
		len = encode(rec, ++p->seq, REC_SET, o, name, name_len, version,
		             p->st,
		             ns == NAME_NIL ? NULL
		                            : names_get(&p->st->names, ns));
	} else if (note == STORE_NOTE_NAME_DELETED ||
	           note == STORE_NOTE_NAME_EXPIRED ||
	           note == STORE_NOTE_NAME_EVICTED) /* gone like a delete */
		len = encode(rec, ++p->seq, REC_DEL, NULL, name, name_len,
		             version, NULL, NULL);
	else
		return;
	append(p, rec, len);
}

void persist_maybe_compact(struct persist *p)
{
	if (p->log_fd < 0 ||
	    p->log_bytes < 2 * p->snapshot_bytes + COMPACT_FLOOR)
		return;
	int rc = write_snapshot(p, false);
	if (rc)
		fprintf(stderr,
		        "shoal: cannot compact the name journal in %s: %s\n",
		        p->dir, shoal_strerror(rc));
	if (rc)
		p->snapshot_bytes = p->log_bytes; /* retry after more growth */
}

/* ----------------------------------------------------------- recovery */

struct replay {
	struct names names;       /* name -> index into sets */
	struct journal_set *sets; /* the SET record of each name's value */
	uint32_t nsets, cap;
	bool clean; /* the last record is a clean stop */
	uint64_t records;
	uint64_t max_version; /* of every record and the header */
};

/* Applies one checked record to the replay table. Returns 0 or
 * SHOAL_ENOMEM. */
static int replay_one(struct replay *r, const struct journal_rec *h,
                      const uint8_t *body)
{
	uint32_t ns;
	const char *name;

	r->clean = h->type == REC_CLEAN;
	if (h->type == REC_SET) {
		struct journal_set s;
		memcpy(&s, body, sizeof(s));
		name = (const char *)body + sizeof(s);
		if (r->nsets == r->cap) {
			uint32_t cap = r->cap ? r->cap * 2 : 64;
			void *n = os_realloc(r->sets, cap * sizeof(s));
			if (!n)
				return SHOAL_ENOMEM;
			r->sets = n;
			r->cap = cap;
		}
		r->sets[r->nsets] = s;
		if (s.version > r->max_version)
			r->max_version = s.version;
		ns = names_find(&r->names, name, h->name_len);
		if (ns == NAME_NIL)
			return names_add(&r->names, name, h->name_len,
			                 r->nsets++, s.version, &ns);
		names_get(&r->names, ns)->obj = r->nsets++;
		names_get(&r->names, ns)->version = s.version;
	} else if (h->type == REC_DEL) {
		name = (const char *)body + sizeof(struct journal_del);
		ns = names_find(&r->names, name, h->name_len);
		if (ns != NAME_NIL)
			names_remove(&r->names, ns);
	}
	return 0;
}

/* The size of a record type's fixed body, or -1 for an unknown type. */
static long body_size(uint16_t type)
{
	switch (type) {
	case REC_SET:
		return sizeof(struct journal_set);
	case REC_DEL:
		return sizeof(struct journal_del);
	case REC_CLEAN:
		return 0;
	default:
		return -1;
	}
}

/* Whether a whole, checked record starts at off; *rec receives its
 * header. */
static bool record_ok(const uint8_t *data, size_t size, size_t off,
                      struct journal_rec *rec)
{
	long fixed;

	if (off + sizeof(*rec) > size)
		return false;
	memcpy(rec, data + off, sizeof(*rec));
	fixed = body_size(rec->type);
	return rec->magic == REC_MAGIC && fixed >= 0 && rec->len % 8 == 0 &&
	       rec->len <= size - off &&
	       rec->len >= sizeof(*rec) + (size_t)fixed + rec->name_len &&
	       rec->name_len <= SHOAL_NAME_MAX &&
	       (rec->type == REC_CLEAN || rec->name_len > 0) &&
	       rec->crc == crc32c(data + off + 8, rec->len - 8);
}

/*
 * Whether a good record follows a bad one at off. Only the last write can
 * be cut short (by a kill or a full disk), so a bad record followed by
 * good ones is damage (a disk error, a stray write): replaying the records
 * before it would bring back names whose later records are lost, and
 * whose old blocks may have been reused since. Records are 8-byte aligned,
 * so the search steps by 8.
 */
static bool damaged_after(const uint8_t *data, size_t size, size_t off)
{
	struct journal_rec rec;

	for (off += 8; off + sizeof(rec) <= size; off += 8)
		if (record_ok(data, size, off, &rec))
			return true;
	return false;
}

/*
 * Reads DIR/names.log into r. *trusted says whether its names may be used
 * (see the file comment). A missing journal is an empty one. Returns 0,
 * SHOAL_ENOMEM or -errno.
 */
static int replay_file(struct persist *p, struct replay *r, bool *trusted)
{
	struct journal_header h;
	char path[4096];
	uint8_t *data = NULL;
	struct stat sb;
	size_t off, size;
	bool damaged = false;
	int fd, rc = 0;

	*trusted = false;
	if ((rc = path_in(p, "names.log", path, sizeof(path))))
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (fstat(fd, &sb) != 0) {
		rc = -errno;
		goto out;
	}
	size = (size_t)sb.st_size;
	if (size < sizeof(h))
		goto out;
	data = os_malloc(size);
	if (!data) {
		rc = SHOAL_ENOMEM;
		goto out;
	}
	for (off = 0; off < size;) {
		ssize_t n = pread(fd, data + off, size - off, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			size = off;
			break;
		}
		off += (size_t)n;
	}
	memcpy(&h, data, sizeof(h));
	if (size < sizeof(h) || h.magic != JOURNAL_MAGIC ||
	    h.version != JOURNAL_VERSION || h.header_size != sizeof(h) ||
	    h.crc != crc32c(&h, offsetof(struct journal_header, crc))) {
		snprintf(p->restore_note, sizeof(p->restore_note),
		         "the name journal has no valid header");
		goto out;
	}
	r->max_version = h.last_version;
	for (off = sizeof(h); off + sizeof(struct journal_rec) <= size;) {
		struct journal_rec rec;
		if (!record_ok(data, size, off, &rec)) {
			damaged = damaged_after(data, size, off);
			break; /* a torn tail, or damage */
		}
		rc = replay_one(r, &rec, data + off + sizeof(rec));
		if (rc)
			goto out;
		if (rec.seq > p->seq)
			p->seq = rec.seq;
		r->records++;
		off += rec.len;
	}
	if (damaged) {
		snprintf(
		        p->restore_note, sizeof(p->restore_note),
		        "the name journal is damaged before its end: its names "
		        "are dropped rather than risk pointing at reused "
		        "memory");
	} else if (memcmp(h.boot_id, p->boot_id, 16) == 0) {
		*trusted = true;
	} else if (r->clean) {
		*trusted = true;
	} else {
		snprintf(p->restore_note, sizeof(p->restore_note),
		         "the machine restarted since the daemon that wrote "
		         "the names ended without a clean stop: its names are "
		         "dropped");
	}
out:
	free(data);
	close(fd);
	return rc;
}

/* Order of restoring: descending offset (so that alloc_claim() is O(1)),
 * then by ID so that two names of one object are neighbours. */
static int cmp_sets(const void *a, const void *b)
{
	const struct journal_set *x = a, *y = b;

	if (x->offset != y->offset)
		return x->offset < y->offset ? 1 : -1;
	return memcmp(x->id, y->id, SHOAL_ID_SIZE);
}

/* Puts r's named objects and names into the store. */
/* A journal's CLOCK_REALTIME expiry as this daemon's CLOCK_MONOTONIC
 * (0: none; already past: now, so that the loop expires it at once). */
static uint64_t restored_expiry(const struct store *st, uint64_t real)
{
	uint64_t mono = st->clock(), now = realtime_ns();

	if (real == 0)
		return 0;
	return real > now ? mono + (real - now) : mono;
}

static int restore(struct persist *p, struct replay *r)
{
	struct store *st = p->st;
	struct journal_set *live;
	uint32_t *slot_of; /* per entry of live: the store slot, or OBJ_NIL */
	uint32_t n = 0;
	int rc = 0;

	live = os_calloc(r->names.count ? r->names.count : 1, sizeof(*live));
	slot_of = os_calloc(r->names.count ? r->names.count : 1,
	                    sizeof(*slot_of));
	if (!live || !slot_of) {
		rc = SHOAL_ENOMEM;
		goto out;
	}
	/* One entry per distinct set record that a name still uses. */
	for (uint32_t i = 0; i < r->names.nslots; i++) {
		struct name_entry *e = names_get(&r->names, i);
		if (e->name)
			live[n++] = r->sets[e->obj];
	}
	qsort(live, n, sizeof(*live), cmp_sets);
	for (uint32_t i = 0; i < n; i++) {
		const struct journal_set *s = &live[i];
		uint32_t slot = OBJ_NIL;
		if (i > 0 && slot_of[i - 1] != OBJ_NIL &&
		    live[i - 1].offset == s->offset &&
		    memcmp(live[i - 1].id, s->id, SHOAL_ID_SIZE) == 0) {
			slot_of[i] = slot_of[i - 1];
			continue;
		}
		rc = store_restore_object(st, s->id, s->offset, s->data_size,
		                          s->metadata_size, s->create_time_ns,
		                          &slot);
		if (rc == SHOAL_ENOMEM)
			goto out;
		rc = 0;
		slot_of[i] = slot;
		if (slot != OBJ_NIL)
			p->restored_objects++;
	}
	/* Names: find each name's object among the restored ones. */
	for (uint32_t i = 0; i < r->names.nslots; i++) {
		struct name_entry *e = names_get(&r->names, i);
		if (!e->name)
			continue;
		const struct journal_set *s = &r->sets[e->obj];
		size_t lo = 0, hi = n;
		while (lo < hi) { /* first entry not before s */
			size_t mid = (lo + hi) / 2;
			if (cmp_sets(&live[mid], s) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo == n || cmp_sets(&live[lo], s) != 0 ||
		    slot_of[lo] == OBJ_NIL ||
		    store_restore_name(
		            st, e->name, e->len, slot_of[lo], e->version,
		            s->flags, restored_expiry(st, s->expire_ns)) != 0) {
			p->dropped_names++;
			continue;
		}
		p->restored_names++;
	}
	if (r->max_version > st->last_version)
		st->last_version = r->max_version;
out:
	free(live);
	free(slot_of);
	return rc;
}

/* ------------------------------------------------------------- public */

int persist_lock(struct persist *p, const char *dir, char *err, size_t size)
{
	char path[4096];
	int rc;

	memset(p, 0, sizeof(*p));
	p->lock_fd = p->log_fd = p->arena_fd = -1;
	crc_init();
	read_boot_id(p->boot_id);
	p->dir = os_strdup(dir);
	if (!p->dir) {
		snprintf(err, size, "out of memory");
		return SHOAL_ENOMEM;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, size, "cannot create %s: %s", dir, strerror(-rc));
		return rc;
	}
	if ((rc = path_in(p, "lock", path, sizeof(path)))) {
		snprintf(err, size, "the directory name %s is too long", dir);
		return rc;
	}
	p->lock_fd =
	        open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (p->lock_fd < 0) {
		rc = -errno;
		snprintf(err, size, "cannot open %s: %s", path, strerror(-rc));
		return rc;
	}
	if (flock(p->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		rc = -errno;
		snprintf(err, size,
		         rc == -EWOULDBLOCK
		                 ? "another shoal daemon uses %s (its lock "
		                   "is taken)"
		                 : "cannot lock %s",
		         dir);
		return rc;
	}
	return 0;
}

int persist_recover(struct persist *p, struct store *st, bool arena_reused,
                    char *err, size_t size)
{
	struct replay r = {0};
	bool trusted = false;
	int rc;

	p->st = st;
	p->arena_fd = st->arena->fd;
	rc = names_init(&r.names);
	if (rc == 0)
		rc = replay_file(p, &r, &trusted);
	if (rc == 0 && trusted && !arena_reused && r.names.count > 0)
		snprintf(p->restore_note, sizeof(p->restore_note),
		         "the arena file was missing or not an arena: the "
		         "journal's names are dropped");
	else if (rc == 0 && trusted)
		rc = restore(p, &r);
	if (rc == 0 && !(trusted && arena_reused))
		p->dropped_names = r.names.count;
	names_free(&r.names);
	free(r.sets);
	if (rc == 0)
		rc = write_snapshot(p, true);
	if (rc) {
		snprintf(err, size, "cannot recover the names in %s: %s",
		         p->dir, shoal_strerror(rc));
		return rc;
	}
	return 0;
}

void persist_close(struct persist *p, bool clean)
{
	if (p->log_fd >= 0 && clean && !p->failed) {
		uint8_t rec[REC_MAX];
		size_t len = encode(rec, ++p->seq, REC_CLEAN, NULL, "", 0, 0,
		                    NULL, NULL);
		/* The clean record may only follow durable data. */
		if (fdatasync(p->arena_fd) == 0 &&
		    write_all(p->log_fd, rec, len) == 0)
			(void)fdatasync(p->log_fd);
	}
	if (p->log_fd >= 0)
		close(p->log_fd);
	if (p->lock_fd >= 0)
		close(p->lock_fd);
	free(p->dir);
	memset(p, 0, sizeof(*p));
	p->lock_fd = p->log_fd = p->arena_fd = -1;
}
