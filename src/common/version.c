/*
 * version.c - the library's version at run time, for a program to compare
 * with the header it was compiled against (SHOAL_VERSION_STRING).
 */
#include "shoal.h"

SHOAL_API const char *shoal_version(void)
{
	return SHOAL_VERSION_STRING;
}
