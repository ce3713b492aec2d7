/*
 * debug.h - internal invariant checks, in the style of mimalloc's
 * mi_assert_internal and Redis's serverAssert.
 *
 * SHOAL_ASSERT(cond) is compiled in when SHOAL_DEBUG is defined (the
 * Makefile defines it for the builds `make test` runs: DEBUG=1 and every
 * SANITIZE= build) and is a no-op in release builds, where it does not
 * even evaluate cond. A failed check prints the condition, file and line
 * and aborts: it marks a bug in shoal, never bad input, so it must only
 * state what the code itself guarantees. Keep the checks cheap (O(1));
 * whole-structure checks belong in the *_check() functions.
 */
#ifndef SHOAL_DEBUG_H
#define SHOAL_DEBUG_H

#ifdef SHOAL_DEBUG
void shoal__assert_fail(const char *cond, const char *file, int line)
        __attribute__((noreturn));
#define SHOAL_ASSERT(cond) \
	((cond) ? (void)0 : shoal__assert_fail(#cond, __FILE__, __LINE__))
#else
#define SHOAL_ASSERT(cond) ((void)0)
#endif

#endif /* SHOAL_DEBUG_H */
