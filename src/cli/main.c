/*
 * main.c - the `shoal` command: finds the subcommand, parses its options,
 * connects to the store and runs it.
 *
 * Options may come before the subcommand (`shoal -s PATH ls`) or among its
 * operands (`shoal ls --json -s PATH`); `--` ends options, and `-` alone is
 * an operand (stdin or stdout). `serve` is handed to the daemon with its
 * arguments untouched (a -s given before it is passed on). Every other
 * subcommand connects once, to -s PATH or to shoal_default_socket()
 * ($SHOAL_SOCKET, ...), and a store that is not running is one line of
 * error, not errno text. `stop` finds the daemon's pid through its
 * connection and waits for the process to end.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "cli.h"
#include "daemon.h"

struct command {
	const char *name;
	const char *operands; /* synopsis after the options */
	const char *summary;
	bool json;     /* accepts --json */
	unsigned opts; /* more options it accepts: CLI_OPT_* */
	int min_args;  /* operands */
	int max_args;  /* -1: no limit */
	int names;     /* leading operands that are names; -1: all */
	int (*run)(struct cli_ctx *ctx, const struct cli_opts *o);
};

static const struct command commands[] = {
        {.name = "stats",
         .operands = "",
         .summary = "print the store's counters",
         .json = true,
         .run = cmd_stats},
        {.name = "ls",
         .operands = "[--prefix PREFIX]",
         .summary = "list objects and names (with TTL and flags)",
         .json = true,
         .opts = CLI_OPT_PREFIX,
         .run = cmd_ls},
        {.name = "put",
         .operands = "[--ttl SECONDS] [--evictable] NAME [FILE|-]",
         .summary = "store FILE (default: stdin) under NAME, replacing it "
                    "atomically; --ttl: NAME expires after SECONDS; "
                    "--evictable: the store may evict it when full",
         .opts = CLI_OPT_TTL | CLI_OPT_EVICTABLE,
         .min_args = 1,
         .max_args = 2,
         .names = 1,
         .run = cmd_put},
        {.name = "get",
         .operands = "NAME [FILE|-]",
         .summary = "write the object named NAME to FILE (default: stdout)",
         .min_args = 1,
         .max_args = 2,
         .names = 1,
         .run = cmd_get},
        {.name = "rm",
         .operands = "NAME... | --prefix PREFIX",
         .summary = "remove names, or every name starting with PREFIX in "
                    "one step (their objects go when unused)",
         .opts = CLI_OPT_PREFIX,
         .min_args = 0,
         .max_args = -1,
         .names = -1,
         .run = cmd_rm},
        {.name = "expire",
         .operands = "NAME SECONDS",
         .summary = "make NAME expire SECONDS from now (0: now)",
         .min_args = 2,
         .max_args = 2,
         .names = 1,
         .run = cmd_expire},
        {.name = "ttl",
         .operands = "NAME",
         .summary = "print the seconds NAME has left, or 'none'",
         .min_args = 1,
         .max_args = 1,
         .names = 1,
         .run = cmd_ttl},
        {.name = "persist",
         .operands = "NAME",
         .summary = "make NAME never expire",
         .min_args = 1,
         .max_args = 1,
         .names = 1,
         .run = cmd_persist},
        {.name = "stop",
         .operands = "[--timeout SECONDS]",
         .summary = "stop the daemon (SIGTERM) and wait up to SECONDS "
                    "(default 10) for it to exit",
         .opts = CLI_OPT_TIMEOUT,
         .run = cmd_stop},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: shoal [-s SOCKET] COMMAND [ARGS]\n"
	           "\n"
	           "A shared-memory object store for one host.\n"
	           "\n"
	           "commands:\n"
	           "  serve [OPTIONS]      run the store (see 'shoal serve "
	           "--help')\n");
	for (size_t i = 0; i < NCOMMANDS; i++) {
		char syn[96];

		snprintf(syn, sizeof(syn), "%s%s%s%s", commands[i].name,
		         commands[i].json ? " [--json]" : "",
		         *commands[i].operands ? " " : "",
		         commands[i].operands);
		if (strlen(syn) > 20)
			fprintf(f, "  %s\n  %-20s %s\n", syn, "",
			        commands[i].summary);
		else
			fprintf(f, "  %-20s %s\n", syn, commands[i].summary);
	}
	fprintf(f, "\n"
	           "options:\n"
	           "  -s, --socket PATH    the store's socket (default: "
	           "$SHOAL_SOCKET,\n"
	           "                       else $XDG_RUNTIME_DIR/shoal.sock, "
	           "else /tmp/shoal-UID/shoal.sock)\n"
	           "  -h, --help           show this help\n"
	           "  -V, --version        show the version\n"
	           "\n"
	           "Exit status: 0 success, 1 error, 2 usage error.\n");
}

static void command_usage(FILE *f, const struct command *cmd)
{
	fprintf(f, "usage: shoal %s [-s SOCKET]%s%s%s\n%s\n", cmd->name,
	        cmd->json ? " [--json]" : "", *cmd->operands ? " " : "",
	        cmd->operands, cmd->summary);
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
	fputs("shoal: ", stderr);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'shoal %s%s--help'.\n", cmd ? cmd : "",
	        cmd ? " " : "");
	return CLI_USAGE;
}

/* Outcome of parsing an option. */
enum opt_result { OPT_NONE, OPT_TAKEN, OPT_HELP, OPT_VERSION, OPT_BAD };

/*
 * Parses the option at argv[*i] that every place accepts (-s/--socket, -h,
 * -V), advancing *i past its value. Returns OPT_NONE when argv[*i] is none
 * of them.
 */
static enum opt_result common_option(int argc, char **argv, int *i,
                                     const char **socket)
{
	const char *a = argv[*i];

	if (!strcmp(a, "-h") || !strcmp(a, "--help"))
		return OPT_HELP;
	if (!strcmp(a, "-V") || !strcmp(a, "--version"))
		return OPT_VERSION;
	if (!strncmp(a, "--socket=", 9)) {
		*socket = a + 9;
		return OPT_TAKEN;
	}
	if (!strcmp(a, "-s") || !strcmp(a, "--socket")) {
		if (*i + 1 >= argc)
			return OPT_BAD;
		*socket = argv[++*i];
		return OPT_TAKEN;
	}
	if (!strncmp(a, "-s", 2)) {
		*socket = a + 2;
		return OPT_TAKEN;
	}
	return OPT_NONE;
}

/* Takes the value of option name at argv[*i] ("--name V" or
 * "--name=V"). Returns OPT_NONE when argv[*i] is not that option. */
static enum opt_result valued(const char *name, int argc, char **argv, int *i,
                              const char **value)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return OPT_NONE;
	if (argv[*i][n] == '=') {
		*value = argv[*i] + n + 1;
		return OPT_TAKEN;
	}
	if (argv[*i][n] != '\0')
		return OPT_NONE;
	if (*i + 1 >= argc)
		return OPT_BAD;
	*value = argv[++*i];
	return OPT_TAKEN;
}

/* Parses an option of cmd's own (CLI_OPT_*) at argv[*i]. */
static enum opt_result command_option(const struct command *cmd, int argc,
                                      char **argv, int *i, struct cli_opts *o)
{
	enum opt_result r = OPT_NONE;

	if ((cmd->opts & CLI_OPT_EVICTABLE) &&
	    !strcmp(argv[*i], "--evictable")) {
		o->evictable = true;
		return OPT_TAKEN;
	}
	if (cmd->opts & CLI_OPT_TTL)
		r = valued("--ttl", argc, argv, i, &o->ttl);
	if (r == OPT_NONE && (cmd->opts & CLI_OPT_PREFIX))
		r = valued("--prefix", argc, argv, i, &o->prefix);
	if (r == OPT_NONE && (cmd->opts & CLI_OPT_TIMEOUT))
		r = valued("--timeout", argc, argv, i, &o->timeout);
	return r;
}

/*
 * Parses a subcommand's arguments (argv[0] is its name) into *o. Operands
 * are collected in place at the front of argv + 1. Returns -1 to go on,
 * else an exit status (after --help, --version or a usage error).
 */
static int parse_command(const struct command *cmd, int argc, char **argv,
                         struct cli_opts *o)
{
	bool options = true;

	o->args = argv + 1;
	o->nargs = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!options || a[0] != '-' || !strcmp(a, "-")) {
			o->args[o->nargs++] = argv[i];
			continue;
		}
		if (!strcmp(a, "--")) {
			options = false;
			continue;
		}
		if (cmd->json && !strcmp(a, "--json")) {
			o->json = true;
			continue;
		}
		switch (command_option(cmd, argc, argv, &i, o)) {
		case OPT_TAKEN:
			continue;
		case OPT_BAD:
			return usage_error(cmd->name,
			                   "option '%s' needs a value", a);
		default:
			break;
		}
		switch (common_option(argc, argv, &i, &o->socket)) {
		case OPT_TAKEN:
			continue;
		case OPT_HELP:
			command_usage(stdout, cmd);
			return CLI_OK;
		case OPT_VERSION:
			printf("shoal %s\n", SHOAL_VERSION_STRING);
			return CLI_OK;
		case OPT_BAD:
			return usage_error(cmd->name,
			                   "option '%s' needs a value", a);
		case OPT_NONE:
			return usage_error(cmd->name, "unknown option '%s'", a);
		}
	}
	if (o->nargs < cmd->min_args)
		return usage_error(cmd->name, "'%s' needs more arguments",
		                   cmd->name);
	if (cmd->max_args >= 0 && o->nargs > cmd->max_args)
		return usage_error(cmd->name, "too many arguments for '%s'",
		                   cmd->name);
	/* Values, like names, are checked before connecting. */
	uint64_t ms;
	if (o->ttl &&
	    (cli_parse_seconds(o->ttl, SHOAL_TTL_MAX_MS, &ms) < 0 || ms == 0))
		return usage_error(cmd->name,
		                   "--ttl wants a positive number of seconds, "
		                   "not '%s'",
		                   o->ttl);
	if (o->timeout && cli_parse_seconds(o->timeout, UINT32_MAX, &ms) < 0)
		return usage_error(
		        cmd->name,
		        "--timeout wants a number of seconds, not '%s'",
		        o->timeout);
	if (o->prefix && *o->prefix && cli_check_name(o->prefix) != 0)
		return CLI_USAGE;
	/* Names are checked before connecting: a bad one is a usage error. */
	for (int i = 0; i < o->nargs && (cmd->names < 0 || i < cmd->names); i++)
		if (cli_check_name(o->args[i]) != 0)
			return CLI_USAGE;
	return -1;
}

/* Connects for a subcommand and runs it. */
static int run_command(const struct command *cmd, const struct cli_opts *o)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	struct cli_ctx ctx = {0};
	int status;
	int rc;

	if (o->socket) {
		snprintf(path, sizeof(path), "%s", o->socket);
	} else if ((rc = shoal_default_socket(path, sizeof(path))) < 0) {
		if (rc == SHOAL_ETOOBIG) {
			cli_error("the default socket path is too long; use "
			          "-s PATH");
			return CLI_USAGE;
		}
		cli_error("cannot use the default socket %s: %s", path,
		          shoal_strerror(rc));
		return CLI_ERROR;
	}
	ctx.socket = path;
	rc = shoal_connect(o->socket ? o->socket : path, &ctx.client);
	if (rc == SHOAL_EUNAVAILABLE) {
		cli_error("no store at %s (start one with 'shoal serve')",
		          path);
		return CLI_ERROR;
	}
	if (rc == SHOAL_ETOOBIG) {
		cli_error("socket path too long: %s", o->socket);
		return CLI_USAGE;
	}
	if (rc < 0) {
		cli_error("cannot connect to %s: %s", path, shoal_strerror(rc));
		return CLI_ERROR;
	}
	status = cmd->run(&ctx, o);
	shoal_disconnect(ctx.client);
	if (fflush(stdout) != 0 && status == CLI_OK) {
		cli_error("cannot write the output");
		status = CLI_ERROR;
	}
	return status;
}

/*
 * Runs the daemon. A socket given before `serve` is passed on as
 * `-s PATH` right after it.
 */
static int run_serve(int argc, char **argv, const char *socket)
{
	char **args;
	int status;

	if (!socket)
		return daemon_main(argc, argv);
	args = calloc((size_t)argc + 3, sizeof(*args));
	if (!args) {
		cli_error("out of memory");
		return CLI_ERROR;
	}
	args[0] = argv[0];
	args[1] = "-s";
	args[2] = (char *)socket;
	for (int i = 1; i < argc; i++)
		args[i + 2] = argv[i];
	status = daemon_main(argc + 2, args);
	free(args);
	return status;
}

int main(int argc, char **argv)
{
	struct cli_opts o = {0};
	int i;

	for (i = 1; i < argc && argv[i][0] == '-' && strcmp(argv[i], "-");
	     i++) {
		switch (common_option(argc, argv, &i, &o.socket)) {
		case OPT_TAKEN:
			continue;
		case OPT_HELP:
			usage(stdout);
			return CLI_OK;
		case OPT_VERSION:
			printf("shoal %s\n", SHOAL_VERSION_STRING);
			return CLI_OK;
		case OPT_BAD:
			return usage_error(NULL, "option '%s' needs a value",
			                   argv[i]);
		case OPT_NONE:
			return usage_error(NULL, "unknown option '%s'",
			                   argv[i]);
		}
	}
	if (i >= argc) {
		usage(stderr);
		return CLI_USAGE;
	}
	if (!strcmp(argv[i], "serve"))
		return run_serve(argc - i, argv + i, o.socket);
	if (!strcmp(argv[i], "help")) {
		usage(stdout);
		return CLI_OK;
	}
	for (size_t k = 0; k < NCOMMANDS; k++) {
		int status;

		if (strcmp(argv[i], commands[k].name))
			continue;
		status = parse_command(&commands[k], argc - i, argv + i, &o);
		if (status >= 0)
			return status;
		return run_command(&commands[k], &o);
	}
	return usage_error(NULL, "unknown command '%s'", argv[i]);
}
