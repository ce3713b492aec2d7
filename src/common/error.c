/*
 * error.c - the one table of shoal's error codes and their descriptions.
 *
 * Codes are negative: -errno for system errors, SHOAL_E* (from -1000 down)
 * for shoal's own. shoal_strerror() never returns NULL and never allocates,
 * so it is safe anywhere, including in signal-free error paths of the daemon.
 */
#include <string.h>

#include "shoal.h"

static const struct {
	int code;
	const char *text;
} error_table[] = {
        {SHOAL_OK, "success"},
        {SHOAL_ENOTFOUND, "no such object or name"},
        {SHOAL_EEXISTS, "an object with this ID already exists"},
        {SHOAL_EFULL, "the store is full: free or evict objects, or start it "
                      "with a larger -m"},
        {SHOAL_EUNAVAILABLE,
         "the store is unavailable: no shoal daemon serves this socket"},
        {SHOAL_EPROTO,
         "protocol error: malformed message or mismatched versions"},
        {SHOAL_ETIMEDOUT, "timed out"},
        {SHOAL_ENOTSEALED, "the object is not sealed yet"},
        {SHOAL_ESEALED, "the object is already sealed"},
        {SHOAL_ENOTOWNER,
         "only the client that created an object may seal or abort it"},
        {SHOAL_EVERSION,
         "version mismatch: the name was changed by someone else"},
        {SHOAL_EFORKED, "the client was connected in the parent process: "
                        "connect again in the child"},
        {SHOAL_ETOOBIG, "a size, count or name is over its limit"},
        {SHOAL_EARENA, "the store's shared memory has an unknown format"},
        {SHOAL_EINVAL, "invalid argument"},
        {SHOAL_ENOMEM, "out of memory"},
        {SHOAL_EBUSY, "the store is busy: try again"},
        {SHOAL_ECLOSED, "the client is closed"},
        {SHOAL_ELIMIT, "a limit of the daemon was reached (clients, "
                       "objects, names or memory: see shoal serve --help)"},
        {SHOAL_EFOREIGN, "the daemon on this socket runs as another user: "
                         "refusing to use it"},
        {SHOAL_EUNSAFE, "the socket's directory is not private: it must be "
                        "owned by this user and closed to others (mode "
                        "0700)"},
        {SHOAL_EINTR, "the wait was interrupted"},
};

const char *shoal_strerror(int code)
{
	for (size_t i = 0; i < sizeof(error_table) / sizeof(error_table[0]);
	     i++)
		if (error_table[i].code == code)
			return error_table[i].text;
	if (code < 0 && code > -4096)
		return strerror(-code);
	return "unknown error";
}
