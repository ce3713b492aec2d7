/*
 * debug.c - the failure path of SHOAL_ASSERT (see debug.h). Present in
 * every build so that objects built with and without SHOAL_DEBUG link
 * together; only debug builds call it.
 */
#include "debug.h"

#include <stdio.h>
#include <stdlib.h>

void shoal__assert_fail(const char *cond, const char *file, int line)
        __attribute__((noreturn));

void shoal__assert_fail(const char *cond, const char *file, int line)
{
	fprintf(stderr, "shoal: internal check failed: %s (%s:%d)\n", cond,
	        file, line);
	abort();
}
