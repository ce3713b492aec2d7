/*
 * cmd_rm.c - `shoal rm NAME...`: removes names. Each object goes away once
 * no name points at it and nobody holds it. An unknown name is reported
 * and the others still go.
 */
#include <string.h>

#include "cli.h"

int cmd_rm(struct cli_ctx *ctx, const struct cli_opts *o)
{
	int status = CLI_OK;

	for (int i = 0; i < o->nargs; i++) {
		const char *name = o->args[i];
		int rc = shoal_delete_name(ctx->client, name, strlen(name),
		                           NULL);

		if (rc == SHOAL_ENOTFOUND) {
			status = cli_no_such_name(name);
		} else if (rc < 0) {
			status = cli_fail(ctx, name, rc);
			if (rc == SHOAL_EUNAVAILABLE)
				break;
		}
	}
	return status;
}
