/*
 * output.c - the CLI's message and formatting helpers: error lines, human
 * sizes, hex IDs, and names escaped for JSON or for a terminal.
 *
 * Names are arbitrary UTF-8 (checked by the store), so they may contain
 * control characters; these never reach a terminal or a JSON document raw.
 */
#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#include "cli.h"
#include "protocol.h"

void cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("shoal: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_fail(const struct cli_ctx *ctx, const char *what, int code)
{
	if (code == SHOAL_EUNAVAILABLE)
		cli_error("lost the store at %s (did it stop?)", ctx->socket);
	else
		cli_error("%s: %s", what, shoal_strerror(code));
	return CLI_ERROR;
}

int cli_check_name(const char *name)
{
	int rc = proto_check_name(name, strlen(name));

	if (rc == 0)
		return 0;
	fprintf(stderr, "shoal: invalid name '");
	cli_print_name(stderr, name);
	fprintf(stderr, "': a name is 1 to %d bytes of UTF-8\n",
	        SHOAL_NAME_MAX);
	return CLI_USAGE;
}

const char *cli_id_hex(const shoal_id *id, char *buf)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < SHOAL_ID_SIZE; i++) {
		buf[2 * i] = hex[id->bytes[i] >> 4];
		buf[2 * i + 1] = hex[id->bytes[i] & 15];
	}
	buf[2 * SHOAL_ID_SIZE] = '\0';
	return buf;
}

void cli_json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

void cli_print_name(FILE *f, const char *s)
{
	/* Bytes of invalid UTF-8 are escaped too, so the line stays text. */
	bool utf8 = proto_check_name(s, strlen(s)) == 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p < 0x20 || *p == 0x7f || (*p >= 0x80 && !utf8))
			fprintf(f, "\\x%02x", *p);
		else
			fputc(*p, f);
	}
}

int cli_no_such_name(const char *name)
{
	fprintf(stderr, "shoal: no object named '");
	cli_print_name(stderr, name);
	fprintf(stderr, "'\n");
	return CLI_ERROR;
}

int cli_parse_seconds(const char *s, uint64_t max_ms, uint64_t *ms)
{
	uint64_t whole = 0, frac = 0, scale = 1;
	const char *p = s;

	if (!isdigit((unsigned char)*p) && *p != '.')
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > max_ms / 1000 + 1)
			return -1;
	}
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++)
			if (scale < 1000000000ull) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				scale *= 10;
			}
	}
	if (*p != '\0' || (p == s + 1 && *s == '.'))
		return -1;
	/* frac / scale seconds, rounded up to whole ms */
	uint64_t total = whole * 1000 + (frac * 1000 + scale - 1) / scale;
	if (total > max_ms)
		return -1;
	*ms = total;
	return 0;
}
