/*
 * cmd_expire.c - a name's time to live from the command line:
 * `shoal expire NAME SECONDS` (0: expire now), `shoal ttl NAME` (prints the
 * seconds left with millisecond precision, or "none"), `shoal persist NAME`.
 * An unknown name is exit status 1 with one line on stderr.
 */
#include <string.h>

#include "cli.h"

int cmd_expire(struct cli_ctx *ctx, const struct cli_opts *o)
{
	const char *name = o->args[0];
	uint64_t ms;
	int rc;

	if (cli_parse_seconds(o->args[1], SHOAL_TTL_MAX_MS, &ms) < 0) {
		cli_error("expire wants a number of seconds, not '%s'",
		          o->args[1]);
		return CLI_USAGE;
	}
	rc = shoal_expire(ctx->client, name, strlen(name), ms);
	if (rc == SHOAL_ENOTFOUND)
		return cli_no_such_name(name);
	return rc < 0 ? cli_fail(ctx, name, rc) : CLI_OK;
}

int cmd_ttl(struct cli_ctx *ctx, const struct cli_opts *o)
{
	const char *name = o->args[0];
	int64_t ms;
	int rc = shoal_ttl(ctx->client, name, strlen(name), &ms);

	if (rc == SHOAL_ENOTFOUND)
		return cli_no_such_name(name);
	if (rc < 0)
		return cli_fail(ctx, name, rc);
	if (ms < 0)
		printf("none\n");
	else
		printf("%lld.%03lld\n", (long long)(ms / 1000),
		       (long long)(ms % 1000));
	return CLI_OK;
}

int cmd_persist(struct cli_ctx *ctx, const struct cli_opts *o)
{
	const char *name = o->args[0];
	int rc = shoal_persist(ctx->client, name, strlen(name));

	if (rc == SHOAL_ENOTFOUND)
		return cli_no_such_name(name);
	return rc < 0 ? cli_fail(ctx, name, rc) : CLI_OK;
}
