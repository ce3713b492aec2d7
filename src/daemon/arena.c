/*
 * arena.c - creating, checking and trimming the shared-memory arena (see
 * arena.h).
 *
 * Sizing: the file is the header page plus the capacity, rounded up to the
 * backing's page size (a huge page on hugetlbfs). A capacity larger than
 * the machine's memory, or than the free space of the directory's
 * filesystem, is refused before anything is created, with a message that
 * says what to do: this is where Docker's 64 MiB /dev/shm is caught, instead
 * of a client dying of SIGBUS later.
 *
 * Chunk flags are bytes written by the main thread and the prefault thread
 * with atomics. ARENA_BACKED must never be set on a chunk whose pages are
 * not all allocated: a client told "backed" writes without reserving, and
 * the no-SIGBUS promise rests on that. A stale "not backed" only costs a
 * client one redundant populate. Populating (prefault thread) and punching
 * (trim, main thread) a chunk therefore exclude each other: each first
 * claims the chunk by setting ARENA_BUSY with a compare-and-swap, and the
 * other skips a busy chunk. Without the claim, the prefault thread could
 * populate a chunk, the trim punch it, and the prefault thread then mark
 * the hole backed. The main thread's other updates only add bits
 * (fetch-or), which a claim keeps.
 */
#include "arena.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "layout.h"
#include "os.h"
#include "shoal.h"
#include "size.h"

static uint64_t round_up(uint64_t n, uint64_t to)
{
	return (n + to - 1) / to * to;
}

static uint64_t machine_memory(void)
{
	struct sysinfo si;

	if (sysinfo(&si) != 0)
		return 0;
	return (uint64_t)si.totalram * si.mem_unit;
}

/* Opens an unlinked file in dir. Returns the fd or -errno. */
static int open_in_dir(const char *dir)
{
	char path[4096];
	int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd >= 0)
		return fd;
	/* Some filesystems (hugetlbfs among them) refuse O_TMPFILE. */
	if (snprintf(path, sizeof(path), "%s/.shoal-arena-XXXXXX", dir) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	return fd;
}

static int check_dir_space(const char *dir, uint64_t file_size,
                           uint64_t have_now, uint64_t *page, char *err,
                           size_t size)
{
	struct statvfs sv;
	char need[32], have[32];

	if (statvfs(dir, &sv) != 0) {
		int e = errno;
		snprintf(err, size, "cannot use directory %s: %s", dir,
		         strerror(e));
		return -e;
	}
	if (sv.f_bsize > 4096)
		*page = sv.f_bsize;
	/* An arena file that exists already holds have_now bytes of it. */
	uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize + have_now;
	uint64_t want = round_up(file_size, *page);
	if (want > avail) {
		size_format(want, need, sizeof(need));
		size_format(avail, have, sizeof(have));
		snprintf(
		        err, size,
		        "a store of %s does not fit in %s, which has %s free "
		        "(Docker gives /dev/shm only 64 MiB: run the container "
		        "with --shm-size, or use a smaller -m)",
		        need, dir, have);
		return SHOAL_EFULL;
	}
	return 0;
}

/* Resets a and sets its capacity, refusing one larger than the machine's
 * memory. Returns 0 or a negative code with a message in err. */
static int arena_set_capacity(struct arena *a, uint64_t capacity, char *err,
                              size_t size)
{
	uint64_t mem = machine_memory();
	char want[32], have[32];

	memset(a, 0, sizeof(*a));
	a->fd = -1;
	a->ro_fd = -1;
	if (capacity == 0) {
		snprintf(err, size, "the capacity must be at least 1 byte");
		return SHOAL_EINVAL;
	}
	a->requested = capacity;
	a->capacity =
	        (capacity + LAYOUT_ALIGN - 1) & ~(uint64_t)(LAYOUT_ALIGN - 1);
	if (mem && a->capacity > mem) {
		size_format(a->capacity, want, sizeof(want));
		size_format(mem, have, sizeof(have));
		snprintf(err, size,
		         "a store of %s is larger than this machine's memory "
		         "(%s): use a smaller -m",
		         want, have);
		return SHOAL_EFULL;
	}
	return 0;
}

/*
 * The part of opening shared by every backing, once a->fd is open: sizes
 * the file to the header plus the capacity (rounded to page), seals a memfd
 * against resizing, maps it, and writes the header. On failure the caller
 * closes the arena. Returns 0 or a negative code with a message in err.
 */
static int arena_setup(struct arena *a, uint64_t file_size, uint64_t page,
                       bool seal, char *err, size_t size)
{
	int rc;

	a->map_size = round_up(file_size, page);
	a->page_size = page;
	a->data_offset = LAYOUT_HEADER_SIZE;
	if (ftruncate(a->fd, (off_t)a->map_size) != 0) {
		rc = -errno;
		snprintf(err, size, "cannot size the arena: %s", strerror(-rc));
		return rc;
	}
	/* A client could otherwise shrink the memfd and make every other
	 * client fault with SIGBUS. */
	if (seal)
		(void)fcntl(a->fd, F_ADD_SEALS,
		            F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
	/* Clients get a read-only description (reopened through /proc, which
	 * works for a memfd and an unlinked file alike): with it they can map
	 * the arena only read-only, and cannot pwrite, fallocate or
	 * ftruncate. Seals only protect a memfd; this protects -d files too. */
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", a->fd);
	a->ro_fd = open(self, O_RDONLY | O_CLOEXEC);
	if (a->ro_fd < 0) {
		rc = -errno;
		snprintf(err, size,
		         "cannot open the arena read-only through %s: %s (is "
		         "/proc mounted?)",
		         self, strerror(-rc));
		return rc;
	}
	a->base = os_mmap(NULL, a->map_size, PROT_READ | PROT_WRITE, MAP_SHARED,
	                  a->fd, 0);
	if (a->base == MAP_FAILED) {
		rc = -errno;
		a->base = NULL;
		snprintf(err, size, "cannot map the arena: %s", strerror(-rc));
		return rc;
	}
	a->nchunks = (a->map_size + LAYOUT_CHUNK - 1) / LAYOUT_CHUNK;
	a->chunks = os_calloc(a->nchunks, 1);
	a->pages = os_calloc(a->nchunks * (LAYOUT_CHUNK / ARENA_PAGE / 64),
	                     sizeof(uint64_t));
	if (!a->chunks || !a->pages) {
		rc = SHOAL_ENOMEM;
		snprintf(err, size, "out of memory");
		return rc;
	}
	struct layout_header h = {
	        .magic = LAYOUT_MAGIC,
	        .version = LAYOUT_VERSION,
	        .header_size = LAYOUT_HEADER_SIZE,
	        .capacity = a->requested,
	        .data_offset = a->data_offset,
	        .map_size = a->map_size,
	        .daemon_pid = (uint64_t)getpid(),
	};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	h.start_time_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	/* The header page is the first write: on a backing that cannot give
	 * even one page this fails cleanly instead of raising SIGBUS. */
	if (os_madvise(a->base, LAYOUT_HEADER_SIZE, MADV_POPULATE_WRITE) != 0 &&
	    errno != EINVAL) {
		rc = -errno;
		snprintf(err, size, "cannot allocate the arena header: %s",
		         strerror(-rc));
		return rc;
	}
	a->header = h;
	memcpy(a->base, &h, sizeof(h));
	return 0;
}

int arena_open(struct arena *a, uint64_t capacity, const char *dir, char *err,
               size_t size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	int rc;

	rc = arena_set_capacity(a, capacity, err, size);
	if (rc)
		return rc;
	uint64_t file_size = LAYOUT_HEADER_SIZE + a->capacity;
	if (dir) {
		rc = check_dir_space(dir, file_size, 0, &page, err, size);
		if (rc)
			return rc;
		rc = open_in_dir(dir);
		if (rc < 0) {
			snprintf(err, size, "cannot create the arena in %s: %s",
			         dir, strerror(-rc));
			return rc;
		}
		a->fd = rc;
		snprintf(a->backing, sizeof(a->backing), "file in %s", dir);
	} else {
		a->fd = memfd_create("shoal-arena",
		                     MFD_CLOEXEC | MFD_ALLOW_SEALING);
		if (a->fd < 0) {
			rc = -errno;
			snprintf(err, size, "memfd_create: %s", strerror(-rc));
			return rc;
		}
		snprintf(a->backing, sizeof(a->backing), "memfd");
	}
	rc = arena_setup(a, file_size, page, !dir, err, size);
	if (rc)
		arena_close(a);
	return rc;
}

int arena_open_persist(struct arena *a, uint64_t capacity, const char *dir,
                       bool *reused, char *err, size_t size)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct layout_header old;
	char path[4096];
	struct stat sb;
	int rc;

	*reused = false;
	rc = arena_set_capacity(a, capacity, err, size);
	if (rc)
		return rc;
	if (snprintf(path, sizeof(path), "%s/arena", dir) >=
	    (int)sizeof(path)) {
		snprintf(err, size, "the directory name %s is too long", dir);
		return -ENAMETOOLONG;
	}
	a->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (a->fd < 0 || fstat(a->fd, &sb) != 0) {
		rc = -errno;
		snprintf(err, size, "cannot open the arena %s: %s", path,
		         strerror(-rc));
		goto fail;
	}
	if (!S_ISREG(sb.st_mode)) {
		rc = SHOAL_EINVAL;
		snprintf(err, size, "%s is not a regular file", path);
		goto fail;
	}
	if (pread(a->fd, &old, sizeof(old), 0) == (ssize_t)sizeof(old) &&
	    old.magic == LAYOUT_MAGIC && old.version == LAYOUT_VERSION &&
	    old.data_offset == LAYOUT_HEADER_SIZE)
		*reused = true;
	uint64_t file_size = LAYOUT_HEADER_SIZE + a->capacity;
	rc = check_dir_space(dir, file_size, (uint64_t)sb.st_blocks * 512,
	                     &page, err, size);
	if (rc)
		goto fail;
	snprintf(a->backing, sizeof(a->backing), "%.240s", path);
	rc = arena_setup(a, file_size, page, false, err, size);
	if (rc)
		goto fail;
	return 0;
fail:
	arena_close(a);
	return rc;
}

void arena_close(struct arena *a)
{
	if (a->prefault_running) {
		atomic_store(&a->prefault_stop, true);
		pthread_join(a->prefault_thread, NULL);
		a->prefault_running = false;
	}
	if (a->base)
		munmap(a->base, a->map_size);
	if (a->fd >= 0)
		close(a->fd);
	if (a->ro_fd >= 0)
		close(a->ro_fd);
	free((void *)a->chunks);
	free(a->pages);
	memset(a, 0, sizeof(*a));
	a->fd = -1;
	a->ro_fd = -1;
}

bool arena_repair_header(struct arena *a)
{
	if (!a->base || memcmp(a->base, &a->header, sizeof(a->header)) == 0)
		return false;
	memcpy(a->base, &a->header, sizeof(a->header));
	return true;
}

/* The chunks fully inside [off, off + len): [*first, *end). */
static void inner_chunks(const struct arena *a, uint64_t off, uint64_t len,
                         uint64_t *first, uint64_t *end)
{
	uint64_t stop = off + len;

	*first = (off + LAYOUT_CHUNK - 1) / LAYOUT_CHUNK;
	*end = stop / LAYOUT_CHUNK;
	if (stop >= a->map_size)
		*end = a->nchunks; /* the last chunk may be short */
	if (*end < *first)
		*end = *first;
}

static bool page_backed(const struct arena *a, uint64_t p)
{
	return a->pages[p / 64] & (1ull << (p % 64));
}

/* Every page that [off, off + len) overlaps, not only the whole chunks: an
 * object that shares a chunk with others is vouched for only when its own
 * pages are known backed, so a small object never gets the flag for free. */
bool arena_is_backed(const struct arena *a, uint64_t off, uint64_t len)
{
	uint64_t c = off / LAYOUT_CHUNK;
	uint64_t end = len ? (off + len - 1) / LAYOUT_CHUNK + 1 : c;

	if (end > a->nchunks)
		end = a->nchunks;
	for (; c < end; c++) {
		if (atomic_load_explicit(&a->chunks[c], memory_order_relaxed) &
		    ARENA_BACKED)
			continue;
		uint64_t lo = c * LAYOUT_CHUNK > off ? c * LAYOUT_CHUNK : off;
		uint64_t hi = (c + 1) * LAYOUT_CHUNK < off + len
		                      ? (c + 1) * LAYOUT_CHUNK
		                      : off + len;
		for (uint64_t p = lo / ARENA_PAGE; p <= (hi - 1) / ARENA_PAGE;
		     p++)
			if (!page_backed(a, p))
				return false;
	}
	return true;
}

void arena_mark_backed(struct arena *a, uint64_t off, uint64_t len)
{
	const uint64_t per = LAYOUT_CHUNK / ARENA_PAGE / 64;
	uint64_t c, end;

	if (len == 0)
		return;
	if (off + len > a->map_size)
		len = a->map_size - off;
	for (uint64_t p = off / ARENA_PAGE; p <= (off + len - 1) / ARENA_PAGE;
	     p++)
		a->pages[p / 64] |= 1ull << (p % 64);
	/* A chunk whose pages are now all known backed is backed. */
	for (c = off / LAYOUT_CHUNK; c <= (off + len - 1) / LAYOUT_CHUNK; c++) {
		uint64_t all = ~0ull;
		for (uint64_t w = 0; w < per; w++)
			all &= a->pages[c * per + w];
		if (all == ~0ull)
			atomic_fetch_or_explicit(&a->chunks[c],
			                         ARENA_BACKED | ARENA_TOUCHED,
			                         memory_order_relaxed);
	}
	inner_chunks(a, off, len, &c, &end);
	for (; c < end; c++)
		atomic_fetch_or_explicit(&a->chunks[c],
		                         ARENA_BACKED | ARENA_TOUCHED,
		                         memory_order_relaxed);
}

void arena_mark_touched(struct arena *a, uint64_t off, uint64_t len)
{
	if (len == 0)
		return;
	for (uint64_t c = off / LAYOUT_CHUNK;
	     c <= (off + len - 1) / LAYOUT_CHUNK && c < a->nchunks; c++)
		atomic_fetch_or_explicit(&a->chunks[c], ARENA_TOUCHED,
		                         memory_order_relaxed);
}

/* Claims chunk c for populating or punching: sets ARENA_BUSY if it is not
 * set. Returns whether it did, with the flags before in *was. */
static bool claim(struct arena *a, uint64_t c, uint8_t *was)
{
	uint8_t f = atomic_load(&a->chunks[c]);

	while (!(f & ARENA_BUSY))
		if (atomic_compare_exchange_weak(&a->chunks[c], &f,
		                                 (uint8_t)(f | ARENA_BUSY))) {
			*was = f;
			return true;
		}
	return false;
}

long arena_trim(struct arena *a, uint64_t off, uint64_t len,
                uint64_t max_chunks, uint64_t *keep)
{
	uint64_t c, end;
	uint8_t was;
	long done = 0;

	inner_chunks(a, off, len, &c, &end);
	for (; c < end && (uint64_t)done < max_chunks; c++) {
		if (!(atomic_load(&a->chunks[c]) & ARENA_TOUCHED))
			continue;
		if (keep && *keep >= LAYOUT_CHUNK) {
			*keep -= LAYOUT_CHUNK; /* part of the warm reserve */
			continue;
		}
		/* A busy chunk is being populated: it stays, for now. */
		if (!claim(a, c, &was))
			continue;
		uint64_t start = c * LAYOUT_CHUNK;
		uint64_t n = LAYOUT_CHUNK;
		if (start + n > a->map_size)
			n = a->map_size - start;
		/* While busy the chunk is not "backed" for creates (the
		 * prefault thread only adds bits to a chunk it has claimed). */
		atomic_fetch_and(&a->chunks[c], (uint8_t)~ARENA_BACKED);
		/* A failure (EOPNOTSUPP on a filesystem that cannot punch
		 * holes, EIO, ...) would fail again at once: stop, so that
		 * the caller does not retry in a loop. */
		if (os_fallocate(a->fd,
		                 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		                 (off_t)start, (off_t)n) != 0) {
			int e = errno;
			atomic_store(&a->chunks[c], was);
			return -e;
		}
		atomic_store(&a->chunks[c], 0);
		memset(&a->pages[c * (LAYOUT_CHUNK / ARENA_PAGE / 64)], 0,
		       LAYOUT_CHUNK / ARENA_PAGE / 8);
		done++;
	}
	return done;
}

uint64_t arena_warm_bytes(const struct arena *a, uint64_t off, uint64_t len)
{
	uint64_t c, end, n = 0;

	inner_chunks(a, off, len, &c, &end);
	for (; c < end; c++)
		if (atomic_load_explicit(&a->chunks[c], memory_order_relaxed) &
		    ARENA_BACKED)
			n += LAYOUT_CHUNK;
	return n;
}

uint64_t arena_backed_bytes(const struct arena *a)
{
	uint64_t n = 0;

	for (uint64_t c = 0; c < a->nchunks; c++)
		if (atomic_load_explicit(&a->chunks[c], memory_order_relaxed) &
		    ARENA_BACKED)
			n += LAYOUT_CHUNK;
	return n > a->map_size ? a->map_size : n;
}

static uint64_t warm_score(void *ctx, uint64_t offset, uint64_t size)
{
	return arena_warm_bytes(ctx, offset, size);
}

int arena_alloc_warm(struct arena *a, struct alloc *al, uint64_t size,
                     uint64_t *offset)
{
	if (size < ARENA_WARM_MIN)
		return alloc_alloc(al, size, offset);
	return alloc_alloc_prefer(al, size, warm_score, a, offset);
}

static void *prefault_main(void *arg)
{
	struct arena *a = arg;
	uint8_t was;

	for (uint64_t c = 0; c < a->nchunks; c++) {
		if (atomic_load(&a->prefault_stop))
			break;
		/* A busy chunk is being punched: it is free memory given
		 * back, not ours to fill. */
		if (!claim(a, c, &was))
			continue;
		if (was & ARENA_BACKED) {
			atomic_fetch_and(&a->chunks[c], (uint8_t)~ARENA_BUSY);
			continue;
		}
		uint64_t start = c * LAYOUT_CHUNK;
		uint64_t n = LAYOUT_CHUNK;
		if (start + n > a->map_size)
			n = a->map_size - start;
		if (os_madvise(a->base + start, n, MADV_POPULATE_WRITE) != 0) {
			/* out of memory: leave the rest to clients */
			atomic_fetch_and(&a->chunks[c], (uint8_t)~ARENA_BUSY);
			break;
		}
		atomic_fetch_or(&a->chunks[c], ARENA_BACKED | ARENA_TOUCHED);
		atomic_fetch_and(&a->chunks[c], (uint8_t)~ARENA_BUSY);
	}
	return NULL;
}

int arena_start_prefault(struct arena *a)
{
	int rc = pthread_create(&a->prefault_thread, NULL, prefault_main, a);

	if (rc)
		return -rc;
	a->prefault_running = true;
	return 0;
}
