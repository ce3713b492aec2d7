/*
 * os.c - the slow paths of the system seam (see os.h): they run only while
 * a test has set os_fault_hook.
 *
 * A hook's answer is applied here: an errno makes the call fail without
 * reaching the kernel; a short count caps the bytes a read or write may
 * move, which for the message calls means cutting a copy of the iovec list
 * (the caller's list is never changed). Control data (a passed fd) still
 * travels with a cut sendmsg, as with a real short write.
 */
#include "os.h"

#include <sys/uio.h>

os_fault_fn *os_fault_hook;

_Thread_local void *os_fault_addr;

int os__fault(enum os_call call, size_t *len)
{
	os_fault_fn *hook = os_fault_hook;
	long r = hook ? hook(call, *len) : 0;

	if (r < 0) {
		errno = (int)-r;
		return -1;
	}
	if (r > 0 && (size_t)r < *len)
		*len = (size_t)r;
	return 0;
}

/* The most iovec pieces a cut message keeps. */
#define OS_IOV_MAX 64

/*
 * Asks the hook about a message call and, for a short transfer, points
 * cut->msg_iov at a copy of the first pieces holding len bytes. Returns 0
 * or -1 with errno set.
 */
static int fault_msg(enum os_call call, const struct msghdr *msg,
                     struct msghdr *cut, struct iovec *iov)
{
	size_t total = 0, len;

	for (size_t i = 0; i < msg->msg_iovlen; i++)
		total += msg->msg_iov[i].iov_len;
	len = total;
	if (os__fault(call, &len))
		return -1;
	*cut = *msg;
	if (len == total || msg->msg_iovlen > OS_IOV_MAX)
		return 0;
	cut->msg_iov = iov;
	cut->msg_iovlen = 0;
	for (size_t i = 0; i < msg->msg_iovlen && len; i++) {
		iov[i] = msg->msg_iov[i];
		if (iov[i].iov_len > len)
			iov[i].iov_len = len;
		len -= iov[i].iov_len;
		cut->msg_iovlen = i + 1;
	}
	return 0;
}

ssize_t os__sendmsg(int fd, const struct msghdr *msg, int flags)
{
	struct iovec iov[OS_IOV_MAX];
	struct msghdr cut;

	if (fault_msg(OS_SENDMSG, msg, &cut, iov))
		return -1;
	return sendmsg(fd, &cut, flags);
}

ssize_t os__recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct iovec iov[OS_IOV_MAX];
	struct msghdr cut;
	ssize_t n;

	if (fault_msg(OS_RECVMSG, msg, &cut, iov))
		return -1;
	n = recvmsg(fd, &cut, flags);
	/* What the kernel reports back goes to the caller's header. */
	msg->msg_controllen = cut.msg_controllen;
	msg->msg_flags = cut.msg_flags;
	msg->msg_namelen = cut.msg_namelen;
	return n;
}
