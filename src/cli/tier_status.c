/*
 * tier_status.c - the "tier" part of `shoal stats`: the status of the
 * host's shoal-tier process (python/shoal/tier.py), which replaces the
 * small JSON object SOCKET.tier.json atomically (write + rename) every
 * fraction of a second. The daemon knows nothing of the tier; the CLI
 * merges the file so that one command shows both.
 *
 * The tier holds an flock on SOCKET.tier.lock for its whole life, so
 * whether it runs is known without trusting a pid in the file: if the lock
 * can be taken, no tier runs, and the file (if any) is stale.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cli.h"

/* Longest status file merged; the tier's is a few hundred bytes. */
#define TIER_STATUS_MAX 4096

/* 1 if a tier process holds SOCKET.tier.lock, 0 if not, -1 if there is no
 * lock file (no tier was ever attached). */
static int tier_running(const char *socket)
{
	char path[4096];
	int fd, rc;

	if (snprintf(path, sizeof(path), "%s.tier.lock", socket) >=
	    (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = flock(fd, LOCK_SH | LOCK_NB) == 0 ? 0 : (errno == EWOULDBLOCK);
	close(fd);
	return rc;
}

/* Reads SOCKET.tier.json into buf (NUL-terminated, trimmed). Returns its
 * length if it looks like one JSON object, else -1. */
static int tier_read(const char *socket, char *buf, size_t cap)
{
	char path[4096];
	size_t n = 0;
	ssize_t got;
	int fd;

	if (snprintf(path, sizeof(path), "%s.tier.json", socket) >=
	    (int)sizeof(path))
		return -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	while (n < cap - 1 && (got = read(fd, buf + n, cap - 1 - n)) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		n += (size_t)got;
	}
	close(fd);
	buf[n] = '\0';
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n < 2 || n >= cap - 1 || buf[0] != '{' || buf[n - 1] != '}' ||
	    strchr(buf, '\n'))
		return -1;
	return (int)n;
}

void cli_tier_json(FILE *f, const char *socket)
{
	char buf[TIER_STATUS_MAX];
	int running = tier_running(socket);

	if (running < 0)
		return; /* no tier attached to this daemon */
	if (running && tier_read(socket, buf, sizeof(buf)) > 0)
		fprintf(f, ", \"tier\": %s", buf);
	else
		fprintf(f, ", \"tier\": {\"running\": false, \"connected\": "
		           "false}");
}

void cli_tier_human(FILE *f, const char *socket)
{
	char buf[TIER_STATUS_MAX];
	int running = tier_running(socket);

	if (running < 0)
		return;
	if (running && tier_read(socket, buf, sizeof(buf)) > 0)
		fprintf(f, "%-16s %s\n", "tier", buf);
	else
		fprintf(f, "%-16s not running\n", "tier");
}
