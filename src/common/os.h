/*
 * os.h - the thin seam between shoal and the system: every system call that
 * can fail for reasons outside shoal's control (reads and writes on
 * sockets, accept, mmap, madvise, fallocate, pwrite into the arena, arming
 * the loop's timer) and every private allocation of the daemon and the
 * client go through an os_ wrapper, so that tests can make them fail
 * (SQLite's fault injection, in miniature).
 *
 * In a normal run the wrappers are the plain calls plus one test of a
 * pointer that stays NULL: os_fault_hook. A test sets the hook; it is then
 * asked before each wrapped call and may let the call run, make it fail
 * with an errno (EINTR, EAGAIN, ENOMEM, ENOSPC, ...), or, for reads and
 * writes, let it transfer fewer bytes than asked (short reads and writes).
 * The hook is called from whichever thread makes the call (the arena's
 * prefault thread too); a hook that counts or filters by thread must be
 * thread-safe.
 *
 * free() needs no wrapper: it cannot fail.
 */
#ifndef SHOAL_OS_H
#define SHOAL_OS_H

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <unistd.h>

enum os_call {
	OS_READ,
	OS_RECV,
	OS_RECVMSG,
	OS_SEND,
	OS_SENDMSG,
	OS_ACCEPT,
	OS_MMAP,
	OS_MADVISE,
	OS_FALLOCATE,
	OS_ALLOC, /* malloc, calloc, realloc, strdup */
	OS_PWRITE,
	OS_TIMER, /* timerfd_settime */
	OS_CALL_END
};

/*
 * A fault hook: asked before each wrapped call with the call and its size
 * (bytes to transfer, map, advise or allocate; 0 for accept). Returns 0 to
 * let the call run; -E to make it fail with errno E (a pointer-returning
 * call then returns NULL or MAP_FAILED); or, for the reads and writes, a
 * positive n below the size to transfer at most n bytes.
 */
typedef long os_fault_fn(enum os_call call, size_t len);

/* NULL except while a test injects faults. */
extern os_fault_fn *os_fault_hook;

/* Asks the hook. Returns 0 (with *len perhaps lowered) or -1 with errno
 * set. Only called when the hook is set. */
int os__fault(enum os_call call, size_t *len);

/* The slow paths of the message calls, which must cut the iovec list. */
ssize_t os__sendmsg(int fd, const struct msghdr *msg, int flags);
ssize_t os__recvmsg(int fd, struct msghdr *msg, int flags);

#define OS__FAULT(call, lenp)                          \
	(__builtin_expect(os_fault_hook != NULL, 0) && \
	 os__fault((call), (lenp)))

static inline ssize_t os_read(int fd, void *buf, size_t len)
{
	if (OS__FAULT(OS_READ, &len))
		return -1;
	return read(fd, buf, len);
}

static inline ssize_t os_recv(int fd, void *buf, size_t len, int flags)
{
	if (OS__FAULT(OS_RECV, &len))
		return -1;
	return recv(fd, buf, len, flags);
}

static inline ssize_t os_send(int fd, const void *buf, size_t len, int flags)
{
	if (OS__FAULT(OS_SEND, &len))
		return -1;
	return send(fd, buf, len, flags);
}

static inline ssize_t os_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (__builtin_expect(os_fault_hook != NULL, 0))
		return os__sendmsg(fd, msg, flags);
	return sendmsg(fd, msg, flags);
}

static inline ssize_t os_recvmsg(int fd, struct msghdr *msg, int flags)
{
	if (__builtin_expect(os_fault_hook != NULL, 0))
		return os__recvmsg(fd, msg, flags);
	return recvmsg(fd, msg, flags);
}

static inline int os_accept4(int fd, struct sockaddr *addr, socklen_t *alen,
                             int flags)
{
	size_t len = 0;

	if (OS__FAULT(OS_ACCEPT, &len))
		return -1;
	return accept4(fd, addr, alen, flags);
}

static inline void *os_mmap(void *addr, size_t len, int prot, int flags, int fd,
                            off_t off)
{
	if (OS__FAULT(OS_MMAP, &len))
		return MAP_FAILED;
	return mmap(addr, len, prot, flags, fd, off);
}

/* The address of the madvise the hook is being asked about (the hook
 * sees only its length): lets a test check where a call would act. */
extern _Thread_local void *os_fault_addr;

static inline int os_madvise(void *addr, size_t len, int advice)
{
	if (__builtin_expect(os_fault_hook != NULL, 0)) {
		os_fault_addr = addr;
		if (os__fault(OS_MADVISE, &len))
			return -1;
	}
	return madvise(addr, len, advice);
}

static inline int os_fallocate(int fd, int mode, off_t off, off_t len)
{
	size_t n = (size_t)len;

	if (OS__FAULT(OS_FALLOCATE, &n))
		return -1;
	return fallocate(fd, mode, off, len);
}

static inline ssize_t os_pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (OS__FAULT(OS_PWRITE, &len))
		return -1;
	return pwrite(fd, buf, len, off);
}

static inline int os_timerfd_settime(int fd, int flags,
                                     const struct itimerspec *its)
{
	size_t n = 0;

	if (OS__FAULT(OS_TIMER, &n))
		return -1;
	return timerfd_settime(fd, flags, its, NULL);
}

static inline void *os_malloc(size_t size)
{
	if (OS__FAULT(OS_ALLOC, &size))
		return NULL;
	return malloc(size);
}

static inline void *os_calloc(size_t count, size_t size)
{
	size_t total = count * size;

	if (OS__FAULT(OS_ALLOC, &total))
		return NULL;
	return calloc(count, size);
}

static inline void *os_realloc(void *p, size_t size)
{
	if (OS__FAULT(OS_ALLOC, &size))
		return NULL;
	return realloc(p, size);
}

static inline char *os_strdup(const char *s)
{
	size_t len = strlen(s) + 1;
	char *p = os_malloc(len);

	if (p)
		memcpy(p, s, len);
	return p;
}

#endif /* SHOAL_OS_H */
