/*
 * cli.h - what the files of the `shoal` command line tool share: parsed
 * options, the subcommand table entries and output helpers.
 *
 * Conventions of every subcommand: exit status 0 on success, 1 for an
 * operational error (with one line on stderr starting "shoal: "), 2 for a
 * usage error. Data goes to stdout, messages to stderr.
 */
#ifndef SHOAL_CLI_H
#define SHOAL_CLI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "shoal.h"
#include "size.h"

#define CLI_OK    0
#define CLI_ERROR 1
#define CLI_USAGE 2

/* Options and operands of one subcommand. */
struct cli_opts {
	const char *socket;  /* -s PATH, or NULL for the default */
	bool json;           /* --json */
	const char *ttl;     /* --ttl SECONDS, or NULL */
	bool evictable;      /* --evictable */
	const char *prefix;  /* --prefix PREFIX, or NULL */
	const char *timeout; /* --timeout SECONDS, or NULL */
	int nargs;           /* operands */
	char **args;
};

/* The connected client and the path it talks to, for messages. */
struct cli_ctx {
	shoal_client *client;
	const char *socket; /* the resolved socket path */
};

/* Prints "shoal: " and the formatted message and a newline to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Reports a failed library call: a lost daemon as one line naming the
 * socket, anything else as "shoal: WHAT: description". Returns CLI_ERROR.
 */
int cli_fail(const struct cli_ctx *ctx, const char *what, int code);

/* Checks a name given on the command line; prints a usage error and returns
 * CLI_USAGE if it is not one, else 0. */
int cli_check_name(const char *name);

/* Reports an unknown name. Returns CLI_ERROR. */
int cli_no_such_name(const char *name);

/* Writes id as 40 lowercase hex digits plus NUL into buf[41]. */
const char *cli_id_hex(const shoal_id *id, char *buf);

/* Writes s as a JSON string literal (with quotes) to f. */
void cli_json_string(FILE *f, const char *s);

/* Writes s for a terminal: control bytes (and every byte >= 0x80 if s is
 * not valid UTF-8) as \xNN, the rest verbatim. */
void cli_print_name(FILE *f, const char *s);

/* The host's shoal-tier status (tier_status.c): `, "tier": {...}` for
 * stats --json, or a "tier ..." line; nothing if no tier was attached. */
void cli_tier_json(FILE *f, const char *socket);
void cli_tier_human(FILE *f, const char *socket);

/* Subcommands (cmd_*.c). Each returns an exit status. */
int cmd_stats(struct cli_ctx *ctx, const struct cli_opts *o);
int cmd_ls(struct cli_ctx *ctx, const struct cli_opts *o);
int cmd_put(struct cli_ctx *ctx, const struct cli_opts *o);
int cmd_get(struct cli_ctx *ctx, const struct cli_opts *o);
int cmd_rm(struct cli_ctx *ctx, const struct cli_opts *o);
int cmd_expire(struct cli_ctx *ctx, const struct cli_opts *o);
int cmd_ttl(struct cli_ctx *ctx, const struct cli_opts *o);
int cmd_persist(struct cli_ctx *ctx, const struct cli_opts *o);
int cmd_stop(struct cli_ctx *ctx, const struct cli_opts *o);

/* Options a subcommand may take besides -s, -h, -V (struct command.opts). */
#define CLI_OPT_JSON      1u
#define CLI_OPT_TTL       2u
#define CLI_OPT_EVICTABLE 4u
#define CLI_OPT_PREFIX    8u
#define CLI_OPT_TIMEOUT   16u

/*
 * Parses a duration in seconds (decimal, fractions allowed, e.g. "60" or
 * "0.5") into whole milliseconds, rounded up so that a positive duration
 * is never 0. Returns 0, or -1 for anything else (negative, not a number,
 * over max_ms).
 */
int cli_parse_seconds(const char *s, uint64_t max_ms, uint64_t *ms);

#endif /* SHOAL_CLI_H */
