/*
 * size.h - byte counts for people: "977 KiB", "5.9 GiB" (binary units,
 * three significant digits at most, like ls -h). Used by the CLI and by the
 * daemon's messages.
 */
#ifndef SHOAL_SIZE_H
#define SHOAL_SIZE_H

#include <stddef.h>
#include <stdint.h>

/* Writes bytes as a human-readable size into buf (size bytes) and returns
 * buf. */
const char *size_format(uint64_t bytes, char *buf, size_t size);

#endif /* SHOAL_SIZE_H */
