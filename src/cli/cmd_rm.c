/*
 * cmd_rm.c - `shoal rm NAME...`: removes names. Each object goes away once
 * no name points at it and nobody holds it. An unknown name is reported
 * and the others still go. `shoal rm --prefix PREFIX` removes every name
 * that starts with PREFIX in one request (atomically) and prints how many
 * went.
 */
#include <string.h>

#include "cli.h"

int cmd_rm(struct cli_ctx *ctx, const struct cli_opts *o)
{
	int status = CLI_OK;

	if (o->prefix) {
		uint64_t n;
		int rc;

		if (o->nargs) {
			cli_error("rm takes names or --prefix, not both");
			return CLI_USAGE;
		}
		rc = shoal_delete_prefix(ctx->client, o->prefix,
		                         strlen(o->prefix), &n);
		if (rc < 0)
			return cli_fail(ctx, o->prefix, rc);
		printf("%llu\n", (unsigned long long)n);
		return CLI_OK;
	}
	if (o->nargs == 0) {
		cli_error("rm needs names or --prefix PREFIX");
		return CLI_USAGE;
	}
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
