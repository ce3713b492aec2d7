/*
 * cmd_ls.c - `shoal ls [--json] [--prefix PREFIX]`: the store's names (with
 * their time to live and flags), then its objects. With --prefix, only the
 * names that start with PREFIX, and no objects.
 *
 * Both listings are streamed page by page (a store may hold millions of
 * entries), so columns have fixed widths and the variable-width name comes
 * last on its line. --json prints one object {"names": [...], "objects":
 * [...]} with exact byte counts and nanosecond times.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define NAME_PAGE 256
/* Bytes for the names of a page: a page of long names ends early. */
#define NAME_BYTES  (64 * 1024)
#define OBJECT_PAGE 1024

static const char *state_name(int state)
{
	switch (state) {
	case SHOAL_STATE_CREATED:
		return "created";
	case SHOAL_STATE_SEALED:
		return "sealed";
	default:
		return "absent";
	}
}

static void print_name(const shoal_name_info *n, bool json, bool first)
{
	char hex[2 * SHOAL_ID_SIZE + 1];
	char size[32], meta[32], ttl[32];

	cli_id_hex(&n->id, hex);
	if (json) {
		printf("%s\n    {\"name\": ", first ? "" : ",");
		cli_json_string(stdout, n->name);
		printf(", \"id\": \"%s\", \"version\": %llu, \"data_size\": "
		       "%llu, \"metadata_size\": %u, \"ttl_ms\": ",
		       hex, (unsigned long long)n->version,
		       (unsigned long long)n->data_size, n->metadata_size);
		if (n->ttl_ms < 0)
			printf("null");
		else
			printf("%lld", (long long)n->ttl_ms);
		printf(", \"evictable\": %s}",
		       n->flags & SHOAL_NAME_EVICTABLE ? "true" : "false");
		return;
	}
	if (n->ttl_ms < 0)
		snprintf(ttl, sizeof(ttl), "-");
	else
		snprintf(ttl, sizeof(ttl), "%lld.%03llds",
		         (long long)(n->ttl_ms / 1000),
		         (long long)(n->ttl_ms % 1000));
	printf("%-10s %-10s %8llu %12s %-5s  %s  ",
	       size_format(n->data_size, size, sizeof(size)),
	       size_format(n->metadata_size, meta, sizeof(meta)),
	       (unsigned long long)n->version, ttl,
	       n->flags & SHOAL_NAME_EVICTABLE ? "evict" : "-", hex);
	cli_print_name(stdout, n->name);
	printf("\n");
}

static void print_object(const shoal_object_info *o, bool json, bool first)
{
	char hex[2 * SHOAL_ID_SIZE + 1];
	char size[32], meta[32], when[32] = "-";
	time_t t = (time_t)(o->create_time_ns / 1000000000u);
	struct tm tm;

	cli_id_hex(&o->id, hex);
	if (json) {
		printf("%s\n    {\"id\": \"%s\", \"state\": \"%s\", "
		       "\"data_size\": %llu, \"metadata_size\": %u, "
		       "\"holders\": %u, \"names\": %u, \"create_time_ns\": "
		       "%llu}",
		       first ? "" : ",", hex, state_name(o->state),
		       (unsigned long long)o->data_size, o->metadata_size,
		       o->holders, o->names,
		       (unsigned long long)o->create_time_ns);
		return;
	}
	if (o->create_time_ns && localtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s  %-7s  %-10s %-10s %7u %5u  %s\n", hex, state_name(o->state),
	       size_format(o->data_size, size, sizeof(size)),
	       size_format(o->metadata_size, meta, sizeof(meta)), o->holders,
	       o->names, when);
}

/* Streams every name (starting with prefix). Returns 0 or a library error
 * code. */
static int list_names(struct cli_ctx *ctx, const char *prefix, bool json)
{
	shoal_name_info *page = malloc(NAME_PAGE * sizeof(*page));
	char *names = malloc(NAME_BYTES);
	uint64_t cursor = 0;
	bool first = true;
	int rc = 0;

	if (!page || !names) {
		free(page);
		free(names);
		return SHOAL_ENOMEM;
	}
	do {
		size_t n;

		rc = shoal_list_names_prefix(ctx->client, prefix,
		                             strlen(prefix), &cursor, page,
		                             NAME_PAGE, names, NAME_BYTES, &n);
		if (rc < 0)
			break;
		for (size_t i = 0; i < n; i++, first = false) {
			if (first && !json)
				printf("%-10s %-10s %8s %12s %-5s  %-40s  "
				       "%s\n",
				       "SIZE", "META", "VERSION", "TTL",
				       "FLAGS", "ID", "NAME");
			print_name(&page[i], json, first);
		}
	} while (cursor != 0);
	if (rc == 0 && first && !json)
		printf("no names\n");
	free(names);
	free(page);
	return rc;
}

/* Streams every object. Returns 0 or a library error code. */
static int list_objects(struct cli_ctx *ctx, bool json)
{
	shoal_object_info *page = malloc(OBJECT_PAGE * sizeof(*page));
	uint64_t cursor = 0;
	bool first = true;
	int rc = 0;

	if (!page)
		return SHOAL_ENOMEM;
	do {
		size_t n;

		rc = shoal_list(ctx->client, &cursor, page, OBJECT_PAGE, &n);
		if (rc < 0)
			break;
		for (size_t i = 0; i < n; i++, first = false) {
			if (first && !json)
				printf("%-40s  %-7s  %-10s %-10s %7s %5s  "
				       "%s\n",
				       "ID", "STATE", "SIZE", "META", "HOLDERS",
				       "NAMES", "CREATED");
			print_object(&page[i], json, first);
		}
	} while (cursor != 0);
	if (rc == 0 && first && !json)
		printf("no objects\n");
	free(page);
	return rc;
}

int cmd_ls(struct cli_ctx *ctx, const struct cli_opts *o)
{
	int rc;

	if (o->json)
		printf("{\n  \"names\": [");
	rc = list_names(ctx, o->prefix ? o->prefix : "", o->json);
	if (rc < 0)
		return cli_fail(ctx, "ls", rc);
	if (o->prefix) {
		printf(o->json ? "\n  ]\n}\n" : "");
		return CLI_OK;
	}
	printf(o->json ? "\n  ],\n  \"objects\": [" : "\n");
	rc = list_objects(ctx, o->json);
	if (rc < 0)
		return cli_fail(ctx, "ls", rc);
	if (o->json)
		printf("\n  ]\n}\n");
	return CLI_OK;
}
