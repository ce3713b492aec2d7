/*
 * limit.c - the limits' defaults and options (see limit.h). The checks
 * themselves sit where each resource is taken: conn.c and server.c
 * (connections, buffered bytes, input deadline), store.c (objects,
 * names), events.c (snapshots).
 */
#include "limit.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>

static uint64_t at_least(uint64_t v, uint64_t floor)
{
	return v > floor ? v : floor;
}

void limit_defaults(struct limits *l, uint64_t capacity)
{
	if (!l->max_clients)
		l->max_clients = 1024;
	if (!l->conn_memory)
		l->conn_memory = at_least(capacity / 8, 64u << 20);
	if (!l->input_timeout_ms)
		l->input_timeout_ms = 10000;
	if (!l->max_objects)
		l->max_objects = at_least(capacity / 1024, 65536);
	if (!l->max_names)
		l->max_names = at_least(capacity / 1024, 65536);
	if (!l->name_memory)
		l->name_memory = at_least(capacity / 16, 16u << 20);
}

static int count(const char *arg, uint64_t *out)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(arg, &end, 10);
	if (errno || *end || end == arg || *arg == '-' || v == 0)
		return -1;
	*out = v;
	return 0;
}

int limit_option(struct limits *l, int c, const char *arg,
                 int (*parse_size)(const char *s, uint64_t *out))
{
	static const char *const names[] = {
	        "--max-clients", "--max-conn-memory", "--input-timeout",
	        "--max-objects", "--max-names",       "--max-name-memory",
	};
	uint64_t *fields[] = {
	        &l->max_clients, &l->conn_memory, &l->input_timeout_ms,
	        &l->max_objects, &l->max_names,   &l->name_memory,
	};
	int i = c - LIMITS_OPT_FIRST;
	int rc;

	if (i < 0 || i >= (int)(sizeof(fields) / sizeof(fields[0])))
		return 0;
	if (i == 1 || i == 5)
		rc = parse_size(arg, fields[i]) || *fields[i] == 0 ? -1 : 0;
	else
		rc = count(arg, fields[i]);
	if (rc) {
		fprintf(stderr, "shoal serve: bad %s '%s' (a number above 0)\n",
		        names[i], arg);
		return -1;
	}
	return 1;
}

void limit_usage(FILE *f)
{
	fprintf(f,
	        "Limits (over one: the request fails with SHOAL_ELIMIT; "
	        "defaults follow -m):\n"
	        "      --max-clients N     connections at once (default "
	        "1024)\n"
	        "      --max-conn-memory SIZE  buffered requests and replies "
	        "of all\n"
	        "                        connections (default: -m / 8, at "
	        "least 64M)\n"
	        "      --input-timeout MS  drop a client that leaves a request "
	        "half-sent,\n"
	        "                        or sends no hello, this long "
	        "(default 10000)\n"
	        "      --max-objects N     objects at once (default: -m / 1K, "
	        "at least 65536)\n"
	        "      --max-names N       names at once (default: -m / 1K, "
	        "at least 65536)\n"
	        "      --max-name-memory SIZE  bytes of all names, 64 more "
	        "each\n"
	        "                        (default: -m / 16, at least 16M)\n");
}
