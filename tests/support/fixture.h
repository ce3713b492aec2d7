/*
 * fixture.h - test support: the fixture of most integration tests, one
 * daemon on a temporary socket (testd) and one client connected to it, as
 * cmocka setup and teardown functions. A test file that includes this
 * header uses struct fx for its state; one that needs more defines its own.
 */
#ifndef SHOAL_FIXTURE_H
#define SHOAL_FIXTURE_H

#include "shoal.h"
#include "testd.h"

struct fx {
	struct testd d;
	shoal_client *c; /* a test may disconnect it and set it NULL */
};

/* cmocka setup: starts a daemon of memory bytes with the NULL-terminated
 * extra `serve` arguments (as testd_start) and connects f->c; *state is
 * the new fixture. Returns 0, or -1 with what failed on stderr (cmocka
 * then fails the test). */
int fx_setup(void **state, const char *memory, ...);

/* cmocka teardown: disconnects f->c (unless NULL), checks every invariant
 * of the store and stops the daemon (testd_finish), frees the fixture.
 * Returns 0, or -1 with what went wrong on stderr. */
int fx_teardown(void **state);

#endif
