// SPDX-License-Identifier: GPL-2.0
/* kw_procev.c - the kernel's process events (the proc connector: netlink
 * NETLINK_CONNECTOR, CN_IDX_PROC): which processes were created, exec'd a
 * new program or exited since the last cycle, so the procfs source looks
 * only at those and at the VMs it knows instead of every process on the
 * host.  Needs CAP_NET_ADMIN in the initial user and pid namespaces; where
 * it cannot be had the source walks /proc as before. */
#include "sources/kw_procev.h"
#include "util/kw_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/cn_proc.h>
#include <linux/connector.h>
#include <linux/netlink.h>
#include <sys/socket.h>

struct kw_procev {
	int fd;
};

/* One netlink message: header, connector message, the operation. */
static int send_op(int fd, enum proc_cn_mcast_op op)
{
	char buf[NLMSG_SPACE(sizeof(struct cn_msg) + sizeof(enum proc_cn_mcast_op))] __attribute__((aligned(8)));
	struct nlmsghdr *nl = (struct nlmsghdr *)buf;
	struct cn_msg *cn = NLMSG_DATA(nl);
	size_t len = NLMSG_LENGTH(sizeof(*cn) + sizeof(op));

	memset(buf, 0, sizeof(buf));
	nl->nlmsg_len = (__u32)len;
	nl->nlmsg_type = NLMSG_DONE;
	cn->id.idx = CN_IDX_PROC;
	cn->id.val = CN_VAL_PROC;
	cn->len = sizeof(op);
	memcpy(cn->data, &op, sizeof(op));
	return send(fd, buf, len, 0) == (ssize_t)len ? 0 : -errno;
}

int kw_procev_open(struct kw_procev **out, char *why, size_t whylen)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = CN_IDX_PROC };
	struct kw_procev *p;
	int fd, r, sz = 4 << 20;

	*out = NULL;
	fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_CONNECTOR);
	if (fd < 0) {
		snprintf(why, whylen, "no proc connector socket: %s", strerror(errno));
		return -errno;
	}
	/* room for a burst between two cycles (SO_RCVBUFFORCE needs CAP_NET_ADMIN, like the connector) */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	sa.nl_pid = 0;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || (r = send_op(fd, PROC_CN_MCAST_LISTEN)) < 0) {
		r = -errno;
		snprintf(why, whylen, "the proc connector is not available: %s%s", strerror(-r),
			 r == -EPERM || r == -EACCES ? " (needs CAP_NET_ADMIN)" : "");
		close(fd);
		return r;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		close(fd);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	p->fd = fd;
	*out = p;
	return 0;
}

static void *nop_thread(void *arg)
{
	return arg;
}

/* The process event in one netlink message, validated and copied out (the
 * payload is only 4-byte aligned).  1, or 0 for anything else. */
static int proc_event_of(const struct nlmsghdr *h, struct proc_event *ev)
{
	const struct cn_msg *cn;

	if (h->nlmsg_type == NLMSG_ERROR || h->nlmsg_type == NLMSG_NOOP ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(*cn) + sizeof(*ev)))
		return 0;
	cn = NLMSG_DATA(h);
	if (cn->id.idx != CN_IDX_PROC || cn->id.val != CN_VAL_PROC || cn->len < sizeof(*ev))
		return 0;
	memcpy(ev, cn->data, sizeof(*ev));
	return 1;
}

/* The connector answers a LISTEN with nothing, and a process that has no
 * right to it (another pid namespace) simply receives nothing: the first
 * drain cannot tell.  kw_procev_check() makes an event -- a thread of our
 * own, which the connector reports as a fork in this process -- and waits
 * for it.  0, or -ETIMEDOUT. */
int kw_procev_check(struct kw_procev *p, int timeout_ms)
{
	pid_t me = getpid();
	pthread_t t;
	int seen = 0, waited = 0;

	if (pthread_create(&t, NULL, nop_thread, NULL))
		return -EAGAIN;
	pthread_join(t, NULL);
	while (!seen && waited <= timeout_ms) {
		char buf[8192] __attribute__((aligned(NLMSG_ALIGNTO)));
		ssize_t n = recv(p->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EAGAIN) {
				usleep(1000);
				waited++;
			} else if (errno != EINTR && errno != ENOBUFS) {
				break;
			}
			continue;
		}
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct proc_event ev;

			if (proc_event_of(h, &ev) && ev.what == PROC_EVENT_FORK &&
			    ev.event_data.fork.child_tgid == me && ev.event_data.fork.child_pid != me)
				seen = 1;
		}
	}
	return seen ? 0 : -ETIMEDOUT;
}

int kw_procev_drain(struct kw_procev *p, kw_procev_fn fn, void *arg)
{
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	int lost = 0;

	for (;;) {
		ssize_t n = recv(p->fd, buf, sizeof(buf), 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) { /* the socket overflowed: events lost */
				lost = 1;
				continue;
			}
			if (errno == EAGAIN)
				break;
			return -errno;
		}
		if (n == 0)
			break;
		for (struct nlmsghdr *h = (void *)buf; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			struct proc_event ev;

			if (!proc_event_of(h, &ev))
				continue;
			switch (ev.what) {
			case PROC_EVENT_FORK:
				/* a new process, not a new thread of one */
				if (ev.event_data.fork.child_pid == ev.event_data.fork.child_tgid)
					fn(ev.event_data.fork.child_tgid, KW_PROCEV_NEW, arg);
				break;
			case PROC_EVENT_EXEC:
				fn(ev.event_data.exec.process_tgid, KW_PROCEV_EXEC, arg);
				break;
			case PROC_EVENT_EXIT:
				if (ev.event_data.exit.process_pid == ev.event_data.exit.process_tgid)
					fn(ev.event_data.exit.process_tgid, KW_PROCEV_EXIT, arg);
				break;
			default:
				break;
			}
		}
	}
	return lost ? -ENOBUFS : 0;
}

void kw_procev_close(struct kw_procev *p)
{
	if (!p)
		return;
	send_op(p->fd, PROC_CN_MCAST_IGNORE);
	close(p->fd);
	free(p);
}
