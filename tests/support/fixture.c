/*
 * fixture.c - test support: the one-daemon, one-client fixture of
 * fixture.h. It reports failures by return value and on stderr, not
 * through cmocka, so that the programs linking test support without
 * cmocka (the attack tool) link it too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "fixture.h"

int fx_setup(void **state, const char *memory, ...)
{
	struct fx *f = calloc(1, sizeof(*f));
	va_list ap;
	int rc;

	if (!f) {
		fprintf(stderr, "fixture: out of memory\n");
		return -1;
	}
	va_start(ap, memory);
	rc = testd_vstart(&f->d, memory, ap);
	va_end(ap);
	if (rc != 0) {
		fprintf(stderr, "fixture: the daemon did not start\n");
		free(f);
		return -1;
	}
	rc = shoal_connect(f->d.socket, &f->c);
	if (rc != 0) {
		fprintf(stderr, "fixture: connect: %s\n", shoal_strerror(rc));
		testd_stop(&f->d);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

int fx_teardown(void **state)
{
	struct fx *f = *state;
	char msg[256];
	int rc;

	if (f->c)
		shoal_disconnect(f->c);
	rc = testd_finish(&f->d, msg, sizeof(msg));
	if (rc != 0)
		fprintf(stderr, "fixture: %s\n", msg);
	free(f);
	return rc;
}
