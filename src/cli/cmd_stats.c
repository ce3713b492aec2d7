/*
 * cmd_stats.c - `shoal stats [--json]`: every counter of shoal_stats, as
 * "key value" lines for people (sizes also in human units) or as one JSON
 * object whose keys are the field names.
 */
#include <stddef.h>

#include "cli.h"

struct stat_field {
	const char *key;
	size_t offset;
	bool bytes; /* also shown in human units */
};

#define FIELD(name, bytes)                                \
	{                                                 \
#name, offsetof(shoal_stats, name), bytes \
	}

static const struct stat_field fields[] = {
        FIELD(capacity_bytes, true),
        FIELD(used_bytes, true),
        FIELD(objects, false),
        FIELD(sealed_objects, false),
        FIELD(pending_deletes, false),
        FIELD(names, false),
        FIELD(clients, false),
        FIELD(evictions, false),
        FIELD(evicted_bytes, true),
        FIELD(creates, false),
        FIELD(gets, false),
        FIELD(backed_bytes, true),
        FIELD(largest_free, true),
        FIELD(uptime_ms, false),
        FIELD(expired, false),
        FIELD(evicted_names, false),
        FIELD(requests, false),
};

#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static uint64_t field_value(const shoal_stats *s, const struct stat_field *f)
{
	return *(const uint64_t *)((const char *)s + f->offset);
}

static void print_json(const shoal_stats *s, const char *socket)
{
	printf("{");
	for (size_t i = 0; i < NFIELDS; i++)
		printf("%s\"%s\": %llu", i ? ", " : "", fields[i].key,
		       (unsigned long long)field_value(s, &fields[i]));
	cli_tier_json(stdout, socket);
	printf("}\n");
}

static void print_human(const shoal_stats *s)
{
	for (size_t i = 0; i < NFIELDS; i++) {
		uint64_t v = field_value(s, &fields[i]);
		char buf[32];

		printf("%-16s %llu", fields[i].key, (unsigned long long)v);
		if (fields[i].bytes)
			printf(" (%s)", size_format(v, buf, sizeof(buf)));
		if (fields[i].offset == offsetof(shoal_stats, used_bytes) &&
		    s->capacity_bytes)
			printf(" %.1f%%",
			       100.0 * (double)v / (double)s->capacity_bytes);
		printf("\n");
	}
}

int cmd_stats(struct cli_ctx *ctx, const struct cli_opts *o)
{
	shoal_stats s;
	int rc = shoal_get_stats(ctx->client, &s);

	if (rc < 0)
		return cli_fail(ctx, "stats", rc);
	if (o->json)
		print_json(&s, ctx->socket);
	else {
		print_human(&s);
		cli_tier_human(stdout, ctx->socket);
	}
	return CLI_OK;
}
