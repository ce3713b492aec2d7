/*
 * cmd_get.c - `shoal get NAME [FILE|-]`: writes the data of the object
 * named NAME to FILE or stdout.
 *
 * get writes straight from the shared-memory view (no copy in this
 * process) and opens FILE only once the name is known to exist, so an
 * unknown name leaves an existing FILE untouched.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

/* Writes len bytes. Returns 0 or -errno. */
static int write_full(int fd, const uint8_t *p, uint64_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (uint64_t)n;
	}
	return 0;
}

/* Writes the view to FILE (NULL or "-": stdout). Returns an exit status. */
static int write_view(const shoal_view *v, const char *file)
{
	bool to_stdout = !file || !strcmp(file, "-");
	const char *label = to_stdout ? "stdout" : file;
	int fd = STDOUT_FILENO;
	int rc;

	if (!to_stdout) {
		fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
		if (fd < 0) {
			cli_error("cannot open %s: %s", file, strerror(errno));
			return CLI_ERROR;
		}
	}
	rc = write_full(fd, v->data, v->data_size);
	if (!to_stdout && close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc < 0) {
		cli_error("cannot write %s: %s", label, strerror(-rc));
		return CLI_ERROR;
	}
	return CLI_OK;
}

int cmd_get(struct cli_ctx *ctx, const struct cli_opts *o)
{
	const char *name = o->args[0];
	shoal_view v;
	int status;
	int rc;

	rc = shoal_get_name(ctx->client, name, strlen(name), SHOAL_NO_WAIT, &v,
	                    NULL);
	if (rc == SHOAL_ENOTFOUND)
		return cli_no_such_name(name);
	if (rc < 0)
		return cli_fail(ctx, name, rc);
	status = write_view(&v, o->nargs > 1 ? o->args[1] : NULL);
	shoal_release(ctx->client, &v);
	return status;
}
