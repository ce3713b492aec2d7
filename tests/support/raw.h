/*
 * raw.h - test support: a client that speaks the wire protocol directly,
 * as a hostile or buggy client would: pipelined requests, parked requests
 * it never reads the answer of, half-sent messages. Every wait has a
 * deadline; any failure ends the process (a failed test).
 */
#ifndef SHOAL_RAW_H
#define SHOAL_RAW_H

#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

/* Connects to the daemon at path and says hello (the arena fd it sends is
 * closed). Returns the blocking socket. */
int raw_connect(const char *path);

void raw_write_all(int fd, const void *p, size_t n);

/* A growable buffer of requests. */
struct raw_msgs {
	uint8_t *p;
	size_t len, cap;
	size_t count;
};

/* Appends a request of type with a zeroed body of body bytes; returns the
 * body to fill. */
void *raw_add(struct raw_msgs *m, uint16_t type, size_t body);
void raw_add_create(struct raw_msgs *m, const uint8_t *id, uint64_t size,
                    int64_t timeout);
void raw_add_id_req(struct raw_msgs *m, uint16_t type, const uint8_t *id,
                    uint32_t flags);
void raw_add_get(struct raw_msgs *m, const uint8_t *ids, uint32_t n,
                 int64_t timeout);
/* Appends a CREATE of a zero-byte object and its SEAL (with seal_flags)
 * for each of the IDs tag/0..n-1. */
void raw_add_created(struct raw_msgs *m, uint8_t tag, uint32_t n,
                     uint32_t seal_flags);
void raw_reset(struct raw_msgs *m);
void raw_free(struct raw_msgs *m);

/* An ID of tag bytes with n in front. */
void raw_id(uint8_t *id, uint8_t tag, uint32_t n);

/* Reads one reply (waiting at most timeout_ms; -1: 60 s); returns its
 * status, and its type in *type if not NULL. */
int32_t raw_read_reply(int fd, int timeout_ms, uint16_t *type);

/* Sends every request and reads nreplies replies, interleaved so neither
 * side's buffers fill. Returns the number of error replies. */
size_t raw_pipeline(int fd, const struct raw_msgs *m, size_t nreplies);

#endif /* SHOAL_RAW_H */
