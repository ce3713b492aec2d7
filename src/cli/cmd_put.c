/*
 * cmd_put.c - `shoal put [--ttl SECONDS] [--evictable] NAME [FILE|-]`:
 * stores bytes as a new object and points NAME at it, replacing what NAME
 * pointed at atomically (and its ttl and flags: a put without --ttl makes
 * a name that never expires).
 *
 * The object gets a random ID and empty metadata. From a regular file (also
 * a file redirected to stdin) the size is known first, so the bytes are
 * read() straight into the shared-memory object: no intermediate copy.
 * From a pipe or terminal the size is unknown: the bytes are read into a
 * growable buffer, then copied into the object. The order create, write,
 * seal, set_name, release keeps the new object held until its name points
 * at it, so it cannot be evicted in between; readers of NAME see the old
 * object or the new one, never nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define SLURP_INITIAL (1u << 20)
#define CREATE_TRIES  3

/* Where the bytes come from. */
struct source {
	const char *label; /* for messages */
	int fd;
	bool sized;    /* a regular file: size is known */
	uint64_t size; /* bytes to store */
	uint8_t *buf;  /* unsized input, read whole */
};

/*
 * Reads up to len bytes into dst, stopping early only at end of file.
 * *got receives the bytes read. Returns 0 or -errno.
 */
static int read_full(int fd, uint8_t *dst, uint64_t len, uint64_t *got)
{
	*got = 0;
	while (*got < len) {
		ssize_t n = read(fd, dst + *got, len - *got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		*got += (uint64_t)n;
	}
	return 0;
}

/* Opens FILE, or stdin for NULL or "-", and finds out whether its size is
 * known. Returns 0 or CLI_ERROR (with a message). */
static int open_source(const char *arg, struct source *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (!arg || !strcmp(arg, "-")) {
		s->fd = STDIN_FILENO;
		s->label = "stdin";
	} else {
		s->fd = open(arg, O_RDONLY | O_CLOEXEC);
		s->label = arg;
		if (s->fd < 0) {
			cli_error("cannot open %s: %s", arg, strerror(errno));
			return CLI_ERROR;
		}
	}
	if (fstat(s->fd, &st) < 0) {
		cli_error("cannot read %s: %s", s->label, strerror(errno));
		return CLI_ERROR;
	}
	if (S_ISDIR(st.st_mode)) {
		cli_error("cannot read %s: %s", s->label, strerror(EISDIR));
		return CLI_ERROR;
	}
	if (S_ISREG(st.st_mode)) {
		off_t pos = lseek(s->fd, 0, SEEK_CUR);

		if (pos < 0 || pos > st.st_size)
			pos = 0;
		s->sized = true;
		s->size = (uint64_t)(st.st_size - pos);
	}
	return 0;
}

/* Reads unsized input whole into s->buf. Returns 0 or CLI_ERROR. */
static int slurp(struct source *s)
{
	size_t cap = SLURP_INITIAL;

	s->buf = malloc(cap);
	for (;;) {
		uint64_t got;
		uint8_t *p;
		int rc;

		if (!s->buf) {
			cli_error("out of memory reading %s", s->label);
			return CLI_ERROR;
		}
		rc = read_full(s->fd, s->buf + s->size, cap - s->size, &got);
		if (rc < 0) {
			cli_error("cannot read %s: %s", s->label,
			          strerror(-rc));
			return CLI_ERROR;
		}
		s->size += got;
		if (s->size < cap)
			return 0;
		cap *= 2;
		p = realloc(s->buf, cap);
		if (!p)
			free(s->buf);
		s->buf = p;
	}
}

/* Writes the source's bytes into the object. Returns 0 or CLI_ERROR. */
static int fill(struct source *s, uint8_t *data)
{
	uint8_t extra;
	uint64_t got;
	int rc;

	if (!s->sized) {
		if (s->size)
			memcpy(data, s->buf, s->size);
		return 0;
	}
	rc = read_full(s->fd, data, s->size, &got);
	/* One more byte tells whether the file grew while it was read. */
	if (rc == 0 && got == s->size)
		rc = read_full(s->fd, &extra, 1, &got);
	else if (rc == 0)
		got = 1;
	if (rc < 0) {
		cli_error("cannot read %s: %s", s->label, strerror(-rc));
		return CLI_ERROR;
	}
	if (got != 0) {
		cli_error("%s changed size while it was read", s->label);
		return CLI_ERROR;
	}
	return 0;
}

/* Creates an object of size bytes under a fresh random ID. Returns 0 or a
 * library error code. */
static int create_object(struct cli_ctx *ctx, uint64_t size, shoal_id *id,
                         uint8_t **data)
{
	int rc = SHOAL_EEXISTS;

	for (int i = 0; i < CREATE_TRIES && rc == SHOAL_EEXISTS; i++) {
		rc = shoal_id_random(id);
		if (rc < 0)
			return rc;
		rc = shoal_create(ctx->client, id, size, 0, SHOAL_NO_WAIT, data,
		                  NULL);
	}
	return rc;
}

/* Explains a failed create. Returns CLI_ERROR. */
static int create_failed(struct cli_ctx *ctx, const char *name, uint64_t size,
                         int rc)
{
	shoal_arena_info a;
	char want[32], cap[32];

	shoal_arena(ctx->client, &a);
	if (rc != SHOAL_EFULL || size <= a.capacity)
		return cli_fail(ctx, name, rc);
	cli_error("%s: %s is larger than the store (capacity %s)", name,
	          size_format(size, want, sizeof(want)),
	          size_format(a.capacity, cap, sizeof(cap)));
	return CLI_ERROR;
}

/* Seals the written object and points name at it, with the options'
 * ttl and flags. Returns an exit status. */
static int publish(struct cli_ctx *ctx, const struct cli_opts *o,
                   const char *name, const shoal_id *id)
{
	uint64_t ttl_ms = 0;

	int rc = shoal_seal(ctx->client, id);

	if (rc < 0) {
		shoal_abort(ctx->client, id);
		return cli_fail(ctx, name, rc);
	}
	if (o->ttl)
		(void)cli_parse_seconds(o->ttl, SHOAL_TTL_MAX_MS, &ttl_ms);
	rc = shoal_set_name_ttl(ctx->client, name, strlen(name), id, NULL,
	                        ttl_ms, o->evictable ? SHOAL_NAME_EVICTABLE : 0,
	                        NULL);
	shoal_release_id(ctx->client, id);
	if (rc < 0) {
		/* Nothing refers to the new object: do not leave it behind. */
		shoal_delete(ctx->client, id, 1, NULL);
		return cli_fail(ctx, name, rc);
	}
	return CLI_OK;
}

int cmd_put(struct cli_ctx *ctx, const struct cli_opts *o)
{
	const char *name = o->args[0];
	struct source src;
	uint8_t *data;
	shoal_id id;
	int status;
	int rc;

	status = open_source(o->nargs > 1 ? o->args[1] : NULL, &src);
	if (status == 0 && !src.sized)
		status = slurp(&src);
	if (status != 0)
		goto out;
	rc = create_object(ctx, src.size, &id, &data);
	if (rc < 0) {
		status = create_failed(ctx, name, src.size, rc);
		goto out;
	}
	status = fill(&src, data);
	if (status != 0) {
		shoal_abort(ctx->client, &id);
		goto out;
	}
	status = publish(ctx, o, name, &id);
out:
	free(src.buf);
	if (src.fd > STDIN_FILENO)
		close(src.fd);
	return status;
}
