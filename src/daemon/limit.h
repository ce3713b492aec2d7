/*
 * limit.h - what one client can make the daemon hold, and the options
 * that bound it (`shoal serve --help`).
 *
 * Every resource the daemon keeps for a client has a limit: connections
 * (count, buffered bytes of all of them, time to finish a request or to say
 * hello), objects (count: their metadata lives in the daemon's heap, not
 * the arena), names (count and bytes) and subscribers' snapshots (bounded
 * by the event queue). A limit that is hit is answered with SHOAL_ELIMIT
 * and a message naming the option; nothing else changes. Defaults follow
 * the arena's size, so that the daemon's own memory stays a fraction of
 * what it serves.
 */
#ifndef SHOAL_LIMIT_H
#define SHOAL_LIMIT_H

#include <stdint.h>
#include <stdio.h>

struct limits {
	uint64_t max_clients;      /* connections at once */
	uint64_t conn_memory;      /* buffered bytes of all connections */
	uint64_t input_timeout_ms; /* a half-sent request, or no hello yet */
	uint64_t max_objects;      /* objects at once (any state) */
	uint64_t max_names;        /* names at once */
	uint64_t name_memory; /* bytes of names, NAME_COST_BYTES each more */
};

/* What a name costs beyond its bytes (its entry, hash slot, allocation). */
#define NAME_COST_BYTES 64u

/* Fills the limits left at 0 with the defaults for an arena of capacity
 * bytes. */
void limit_defaults(struct limits *l, uint64_t capacity);

/* The long options (and their getopt values, LIMITS_OPT_FIRST on). */
#define LIMITS_OPT_FIRST 0x1000
#define LIMITS_LONGOPTS                                                       \
	{"max-clients", required_argument, NULL, LIMITS_OPT_FIRST + 0},       \
	        {"max-conn-memory", required_argument, NULL,                  \
	         LIMITS_OPT_FIRST + 1},                                       \
	        {"input-timeout", required_argument, NULL,                    \
	         LIMITS_OPT_FIRST + 2},                                       \
	        {"max-objects", required_argument, NULL,                      \
	         LIMITS_OPT_FIRST + 3},                                       \
	        {"max-names", required_argument, NULL, LIMITS_OPT_FIRST + 4}, \
	{                                                                     \
		"max-name-memory", required_argument, NULL,                   \
		        LIMITS_OPT_FIRST + 5                                  \
	}

/*
 * Handles getopt value c with its argument if it is one of the limits'
 * options, sizes read with parse_size (serve.c's: "64M", "1.5G"): returns
 * 1 (taken), 0 (not a limits option) or -1 (a bad value; the message is
 * printed).
 */
int limit_option(struct limits *l, int c, const char *arg,
                 int (*parse_size)(const char *s, uint64_t *out));

/* Prints the options' lines of `shoal serve --help`. */
void limit_usage(FILE *f);

#endif /* SHOAL_LIMIT_H */
