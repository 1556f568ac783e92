// SPDX-License-Identifier: GPL-2.0
/* kw_qmp.c - a minimal, bounded QMP client.
 *
 * A QMP monitor serves one client at a time: while Proxmox's qm/pvestatd (or
 * anyone) is connected, a new connection waits unaccepted and no greeting
 * comes.  So every step is non-blocking with a deadline.  Replies are read
 * with the strict, bounded JSON reader (kw_json.h); a malformed, truncated or
 * oversized reply ends the session.  Before connecting, the socket must be
 * one the VM's own process listens on (sock_diag, the inode it holds) and
 * owned by the VM's user; SO_PEERCRED is checked after: a process that merely
 * looks like QEMU cannot make a privileged kvmwatch talk to some other
 * daemon's socket. */
#include "kvm/kw_qmp.h"
#include "util/kw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/unix_diag.h>

/* ------------------------------------------------------------ client */

static int remaining_ms(uint64_t deadline_ns)
{
	uint64_t now = kw_now_mono_ns();

	if (now >= deadline_ns)
		return 0;
	return (int)((deadline_ns - now + 999999) / 1000000);
}

static int errno_status(int e)
{
	switch (e) {
	case EACCES:
	case EPERM:
		return KW_QMP_DENIED;
	case EAGAIN:
		return KW_QMP_BUSY; /* the listen backlog is full */
	case ENOMEM:
	case ENOBUFS:
		return KW_QMP_NOMEM;
	default:
		return KW_QMP_NOSOCK; /* ENOENT, ECONNREFUSED, ENOTSOCK, ENOTDIR, EPROTOTYPE, ... */
	}
}

/* A socket of libvirt's: libvirtd holds that monitor for itself.  path is
 * normalised (kw_qmp_normalize) or canonical (the link of a held fd). */
int kw_qmp_libvirt_socket(const char *path)
{
	return kw_startswith(path, "/var/lib/libvirt/") || kw_startswith(path, "/run/libvirt/") ||
	       kw_startswith(path, "/var/run/libvirt/") || strstr(path, "/libvirt/qemu/") != NULL;
}

int kw_qmp_normalize(char *out, size_t len, const char *path)
{
	size_t o = 0;
	const char *p = path;

	if (!len)
		return -ENAMETOOLONG;
	while (*p) {
		const char *e = strchr(p, '/');
		size_t n = e ? (size_t)(e - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* "//" and "/./": nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			return -EINVAL; /* where ".." leads depends on symlinks: not guessed */
		} else {
			if (o + (o || path[0] == '/') + n >= len)
				return -ENAMETOOLONG;
			if (o || path[0] == '/')
				out[o++] = '/';
			memcpy(out + o, p, n);
			o += n;
		}
		p += n;
		if (*p == '/')
			p++;
	}
	if (o == 0) {
		if (len < 2)
			return -ENAMETOOLONG;
		out[o++] = path[0] == '/' ? '/' : '.';
	}
	out[o] = '\0';
	return 0;
}

#define QMP_MAX_SOCKETS 4096 /* socket fds of one VMM looked at */

/* Socket inode (sockfs) of the listening Unix socket bound to the file with
 * vfs (dev, ino), looked up by inode through sock_diag.  1: sock_ino is that
 * listener; 0: it is not; -errno: sock_diag cannot say. */
static int unix_listener_is(int nl, uint32_t sock_ino, dev_t dev, ino_t ino)
{
	struct {
		struct nlmsghdr nlh;
		struct unix_diag_req r;
	} req;
	union {
		struct nlmsghdr nlh;
		char buf[1024];
	} rsp;
	const struct unix_diag_msg *m;
	const struct rtattr *a;
	ssize_t n;
	int len;

	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = sock_ino;
	req.r.udiag_show = UDIAG_SHOW_VFS;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
	if (send(nl, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		return -errno;
	n = recv(nl, &rsp, sizeof(rsp), 0);
	if (n < (ssize_t)sizeof(struct nlmsghdr) || !NLMSG_OK(&rsp.nlh, (size_t)n))
		return -EIO;
	if (rsp.nlh.nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(&rsp.nlh);
		/* ENOENT: not a Unix socket of this network namespace */
		return e->error == -ENOENT ? 0 : (e->error ? e->error : -EIO);
	}
	if (rsp.nlh.nlmsg_type != SOCK_DIAG_BY_FAMILY || rsp.nlh.nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EIO;
	m = NLMSG_DATA(&rsp.nlh);
	if (m->udiag_ino != sock_ino || m->udiag_state != 10 /* TCP_LISTEN */)
		return 0;
	len = (int)(rsp.nlh.nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (a = (const struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
		const struct unix_diag_vfs *v = RTA_DATA(a);

		if (a->rta_type == UNIX_DIAG_VFS && RTA_PAYLOAD(a) >= sizeof(*v))
			/* the kernel's internal dev_t: major << 20 | minor */
			return v->udiag_vfs_ino == (uint32_t)ino && v->udiag_vfs_dev >> 20 == major(dev) &&
			       (v->udiag_vfs_dev & 0xfffff) == minor(dev);
	}
	return 0;
}

int kw_qmp_diag_works(void)
{
	struct sockaddr_un sa;
	struct stat sb;
	char dir[] = "/tmp/kvmwatch-diag-XXXXXX";
	int ls, nl, r;

	if (!mkdtemp(dir))
		return -errno;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/s", dir);
	ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	/* sb: the socket (sockfs inode); fsb: the file it is bound to */
	if (ls < 0 || nl < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) || listen(ls, 1) || fstat(ls, &sb)) {
		r = -errno;
	} else {
		struct stat fsb;

		r = stat(sa.sun_path, &fsb) ? -errno
					    : unix_listener_is(nl, (uint32_t)sb.st_ino, fsb.st_dev, fsb.st_ino);
		r = r == 1 ? 0 : r == 0 ? -EOPNOTSUPP : r;
	}
	if (ls >= 0)
		close(ls);
	if (nl >= 0)
		close(nl);
	unlink(sa.sun_path);
	rmdir(dir);
	return r;
}

/* Does the VM process itself hold, and listen on, the socket bound to the
 * file st describes?  Its fds are walked for socket:[N] links and each is
 * asked about by inode.  0 yes, KW_QMP_NOTOURS no (q->err says why), or
 * another status. */
static int vm_listens_on(struct kw_qmp *q, const char *procfs, pid_t pid, const char *path, const struct stat *st)
{
	char dpath[PATH_MAX], lpath[PATH_MAX + 256], link[64];
	struct dirent *de;
	int nl, r = 0, e = 0, nsock = 0;
	DIR *d;

	snprintf(dpath, sizeof(dpath), "%s/%d/fd", procfs, pid);
	d = opendir(dpath);
	if (!d) {
		e = errno;
		snprintf(q->err, sizeof(q->err), "cannot list the fds of pid %d to check %s: %s", pid, path,
			 strerror(e));
		return e == ENOENT ? KW_QMP_NOSOCK : errno_status(e);
	}
	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0) {
		e = errno;
		closedir(d);
		snprintf(q->err, sizeof(q->err), "cannot check who listens on %s: sock_diag: %s", path, strerror(e));
		return KW_QMP_NOTOURS;
	}
	while (r == 0 && (de = readdir(d))) {
		unsigned long sino;

		if (nsock >= QMP_MAX_SOCKETS) {
			e = E2BIG;
			break;
		}
		char *end;
		ssize_t n;

		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		snprintf(lpath, sizeof(lpath), "%s/%s", dpath, de->d_name);
		n = readlink(lpath, link, sizeof(link) - 1);
		if (n <= 9)
			continue;
		link[n] = '\0';
		if (strncmp(link, "socket:[", 8))
			continue;
		errno = 0;
		sino = strtoul(link + 8, &end, 10);
		if (errno || *end != ']' || sino > UINT32_MAX)
			continue;
		nsock++;
		r = unix_listener_is(nl, (uint32_t)sino, st->st_dev, st->st_ino);
		if (r < 0) {
			e = -r;
			r = 0;
		}
	}
	closedir(d);
	close(nl);
	if (r > 0)
		return 0;
	if (e == E2BIG)
		snprintf(q->err, sizeof(q->err), "the VM's process holds more than %d sockets: %s not checked further",
			 QMP_MAX_SOCKETS, path);
	else if (e && e != ENOENT)
		snprintf(q->err, sizeof(q->err), "cannot check who listens on %s: sock_diag: %s", path, strerror(e));
	else
		snprintf(q->err, sizeof(q->err), "%s is not a socket the VM's process (pid %d) listens on", path, pid);
	return KW_QMP_NOTOURS;
}

/* Real and effective uid of the process (status "Uid:"; the /proc/PID
 * owner is root for non-dumpable processes).  0 or -errno. */
static int proc_uids(const char *procfs, pid_t pid, uid_t *ruid, uid_t *euid)
{
	char buf[4096];
	const char *p;
	unsigned long r, e;

	if (kw_read_filef(buf, sizeof(buf), "%s/%d/status", procfs, pid) <= 0)
		return errno ? -errno : -ENOENT;
	p = strstr(buf, "\nUid:");
	if (!p || sscanf(p + 5, "%lu %lu", &r, &e) != 2)
		return -EINVAL;
	*ruid = (uid_t)r;
	*euid = (uid_t)e;
	return 0;
}

/* Is this process in our network namespace?  sock_diag sees only ours. */
static int same_netns(const char *procfs, pid_t pid)
{
	char path[PATH_MAX];
	struct stat a, b;

	snprintf(path, sizeof(path), "%s/%d/ns/net", procfs, pid);
	if (stat(path, &a) || stat("/proc/self/ns/net", &b))
		return 1; /* cannot tell: let the lookup decide */
	return a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Connect to the VM's monitor.  With a pid, everything is checked before
 * any connection is made, on the file kvmwatch holds: the path must be a
 * Unix socket owned by the VM's user or root, bound to a socket the VM
 * process itself holds and listens on; the connection goes through that
 * same file (/proc/self/fd/N), so a rename between check and connect
 * changes nothing; and the peer is checked again (SO_PEERCRED). */
static int sock_connect(struct kw_qmp *q, const char *procfs, const char *path, pid_t pid)
{
	struct sockaddr_un sa;
	char full[PATH_MAX + 64];
	struct stat sb;
	uid_t vm_uid = 0, vm_euid = 0;
	int pfd, r, e;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (path[0] == '/') {
		kw_strlcpy(full, path, sizeof(full));
	} else if (pid > 0) {
		/* relative to the directory QEMU was started in */
		snprintf(full, sizeof(full), "%s/%d/cwd/%s", procfs, pid, path);
	} else {
		snprintf(q->err, sizeof(q->err), "relative socket path %s without a process", path);
		return KW_QMP_NOSOCK;
	}
	pfd = open(full, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (pfd < 0) {
		e = errno;
		snprintf(q->err, sizeof(q->err), "cannot open %s: %s", path, strerror(e));
		return errno_status(e == ELOOP ? ENOTSOCK : e);
	}
	if (fstat(pfd, &sb) || !S_ISSOCK(sb.st_mode)) {
		close(pfd);
		snprintf(q->err, sizeof(q->err), "%s is not a socket", path);
		return KW_QMP_NOTOURS;
	}
	if (pid > 0) {
		char self[64], canon[PATH_MAX];
		ssize_t n;

		/* where the path really led (symlinks, "//", cwd): libvirt's? */
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pfd);
		n = readlink(self, canon, sizeof(canon) - 1);
		if (n <= 0 || n == (ssize_t)sizeof(canon) - 1) {
			close(pfd);
			snprintf(q->err, sizeof(q->err), "cannot tell where %s leads", path);
			return KW_QMP_NOTOURS;
		}
		canon[n] = '\0';
		if (kw_qmp_libvirt_socket(canon)) {
			close(pfd);
			snprintf(q->err, sizeof(q->err), "%s leads to libvirt's monitor socket %.160s", path, canon);
			return KW_QMP_LIBVIRT;
		}
		if ((r = proc_uids(procfs, pid, &vm_uid, &vm_euid))) {
			close(pfd);
			snprintf(q->err, sizeof(q->err), "cannot read the user of pid %d: %s", pid, strerror(-r));
			return r == -ENOENT || r == -ESRCH ? KW_QMP_NOSOCK : KW_QMP_NOTOURS;
		}
		if (sb.st_uid != vm_uid && sb.st_uid != vm_euid && sb.st_uid != 0) {
			close(pfd);
			snprintf(q->err, sizeof(q->err), "%s belongs to uid %u, not to the VM's user (uid %u) or root",
				 path, (unsigned)sb.st_uid, (unsigned)vm_euid);
			return KW_QMP_NOTOURS;
		}
		if (!same_netns(procfs, pid)) {
			close(pfd);
			snprintf(q->err, sizeof(q->err), "the VM is in another network namespace: who listens on %s "
				 "cannot be verified", path);
			return KW_QMP_NOTOURS;
		}
		if ((r = vm_listens_on(q, procfs, pid, path, &sb))) {
			close(pfd);
			return r;
		}
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d", pfd);
	q->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (q->fd < 0) {
		e = errno;
		close(pfd);
		snprintf(q->err, sizeof(q->err), "failed to create a socket: %s", strerror(e));
		return e == ENOMEM || e == ENOBUFS ? KW_QMP_NOMEM : KW_QMP_PROTO;
	}
	r = connect(q->fd, (struct sockaddr *)&sa, sizeof(sa));
	e = errno;
	close(pfd);
	if (r < 0) {
		snprintf(q->err, sizeof(q->err), "cannot connect to %s: %s%s", path, strerror(e),
			 e == EAGAIN ? " (backlog full: the monitor is serving another client)" : "");
		return errno_status(e);
	}
	if (pid > 0) {
		struct ucred cr;
		socklen_t l = sizeof(cr);

		memset(&cr, 0, sizeof(cr));
		if (getsockopt(q->fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) || cr.pid != pid) {
			snprintf(q->err, sizeof(q->err), "%s is served by pid %d, not by the VM's process", path,
				 (int)cr.pid);
			return KW_QMP_NOTOURS;
		}
	}
	return KW_QMP_OK;
}

/* Worth parsing now?  A message is an object: complete only when the last
 * non-blank byte is '}'; QEMU ends each with a newline; and anything not
 * starting like an object is malformed at once (no waiting for more). */
static int maybe_complete(const char *b, size_t n)
{
	size_t i = 0;

	while (i < n && (b[i] == '\n' || b[i] == '\r' || b[i] == ' ' || b[i] == '\t'))
		i++;
	if (i < n && b[i] != '{')
		return 1;
	if (n && b[n - 1] == '\n')
		return 1;
	while (n && (b[n - 1] == '\r' || b[n - 1] == ' ' || b[n - 1] == '\t'))
		n--;
	return n && b[n - 1] == '}';
}

/* The next message (asynchronous events skipped) into q->j. */
static int read_msg(struct kw_qmp *q, uint64_t deadline_ns)
{
	int eof = 0;

	for (;;) {
		struct pollfd pfd;
		ssize_t r;
		int ms;

		if (q->msg_len) {
			memmove(q->buf, q->buf + q->msg_len, q->len - q->msg_len);
			q->len -= q->msg_len;
			q->msg_len = 0;
		}
		if (q->len && (eof || maybe_complete(q->buf, q->len))) {
			r = kw_json_parse(&q->j, q->buf, q->len);
			if (r > 0) {
				q->msg_len = (size_t)r;
				if (kw_json_type(&q->j, 0) != KW_JSON_OBJECT) {
					snprintf(q->err, sizeof(q->err), "a message is not a JSON object");
					return KW_QMP_PROTO;
				}
				if (kw_json_get(&q->j, 0, "event") >= 0)
					continue; /* asynchronous event */
				return KW_QMP_OK;
			}
			if (r == -ENOMEM)
				return KW_QMP_NOMEM;
			if (r != -EAGAIN) {
				snprintf(q->err, sizeof(q->err), "malformed message: %s", q->j.err);
				return KW_QMP_PROTO;
			}
		}
		if (eof) {
			if (q->len)
				snprintf(q->err, sizeof(q->err), "truncated message: the connection closed after %zu bytes "
					 "of it", q->len);
			else
				snprintf(q->err, sizeof(q->err), "the connection closed");
			return KW_QMP_PROTO;
		}
		if (q->len >= KW_QMP_MAX_MSG) {
			snprintf(q->err, sizeof(q->err), "a message is larger than %u bytes", KW_QMP_MAX_MSG);
			return KW_QMP_PROTO;
		}
		ms = remaining_ms(deadline_ns);
		if (ms == 0) {
			snprintf(q->err, sizeof(q->err), "no complete message in time (%zu bytes received)", q->len);
			return KW_QMP_TIMEOUT;
		}
		pfd.fd = q->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, ms);
		if (r < 0 && errno != EINTR) {
			snprintf(q->err, sizeof(q->err), "poll failed: %s", strerror(errno));
			return KW_QMP_PROTO;
		}
		if (r <= 0)
			continue; /* deadline checked above */
		if (q->cap - q->len < 4096) {
			size_t want = q->cap ? q->cap * 2 : 16384;
			char *nb;

			if (want > KW_QMP_MAX_MSG)
				want = KW_QMP_MAX_MSG;
			if (want <= q->len) {
				snprintf(q->err, sizeof(q->err), "a message is larger than %u bytes", KW_QMP_MAX_MSG);
				return KW_QMP_PROTO;
			}
			if (!(nb = realloc(q->buf, want)))
				return KW_QMP_NOMEM;
			q->buf = nb;
			q->cap = want;
		}
		r = recv(q->fd, q->buf + q->len, q->cap - q->len, MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			snprintf(q->err, sizeof(q->err), "failed to read: %s", strerror(errno));
			return KW_QMP_PROTO;
		}
		if (r == 0)
			eof = 1;
		q->len += (size_t)r;
	}
}

static int send_all(struct kw_qmp *q, const char *s, size_t n)
{
	while (n) {
		ssize_t w = send(q->fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0) {
			struct pollfd pfd = { q->fd, POLLOUT, 0 };
			int ms;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN) {
				snprintf(q->err, sizeof(q->err), "failed to send: %s", strerror(errno));
				return KW_QMP_PROTO;
			}
			if ((ms = remaining_ms(q->deadline_ns)) == 0) {
				snprintf(q->err, sizeof(q->err), "could not send in time");
				return KW_QMP_TIMEOUT;
			}
			poll(&pfd, 1, ms);
			continue;
		}
		s += w;
		n -= (size_t)w;
	}
	return KW_QMP_OK;
}

int kw_qmp_cmd(struct kw_qmp *q, const char *cmd, const char *args)
{
	char msg[512], why[200];
	int n, r;

	q->ret = -1;
	q->eclass[0] = '\0';
	q->id++;
	if (args)
		n = snprintf(msg, sizeof(msg), "{\"execute\":\"%s\",\"arguments\":%s,\"id\":%u}\n", cmd, args, q->id);
	else
		n = snprintf(msg, sizeof(msg), "{\"execute\":\"%s\",\"id\":%u}\n", cmd, q->id);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		snprintf(q->err, sizeof(q->err), "%s: command too long", cmd);
		return KW_QMP_PROTO;
	}
	if ((r = send_all(q, msg, (size_t)n)))
		goto fail;
	for (;;) {
		int id, ret, er;
		uint64_t v;

		if ((r = read_msg(q, q->deadline_ns)))
			goto fail;
		id = kw_json_get(&q->j, 0, "id");
		ret = kw_json_get(&q->j, 0, "return");
		er = kw_json_get_type(&q->j, 0, "error", KW_JSON_OBJECT);
		/* an error without id: QEMU could not read our command at all */
		if (id >= 0 && (kw_json_u64(&q->j, id, &v) || v != q->id))
			continue; /* not the reply to this command */
		if (id < 0 && er < 0) {
			snprintf(q->err, sizeof(q->err), "%s: unexpected message without id", cmd);
			return KW_QMP_PROTO;
		}
		if (ret >= 0) {
			q->ret = ret;
			return KW_QMP_OK;
		}
		if (er >= 0) {
			int cl = kw_json_get(&q->j, er, "class"), desc = kw_json_get(&q->j, er, "desc");
			char d[160] = "";

			if (kw_json_strcpy(&q->j, cl, q->eclass, sizeof(q->eclass)) < 0)
				kw_strlcpy(q->eclass, "?", sizeof(q->eclass));
			if (kw_json_strcpy(&q->j, desc, d, sizeof(d)) < 0)
				kw_strlcpy(d, "(no description)", sizeof(d));
			snprintf(q->err, sizeof(q->err), "%s: %s: %s", cmd, q->eclass, d);
			return KW_QMP_ERROR;
		}
		snprintf(q->err, sizeof(q->err), "%s: reply holds neither return nor error", cmd);
		return KW_QMP_PROTO;
	}
fail:
	kw_strlcpy(why, q->err, sizeof(why));
	snprintf(q->err, sizeof(q->err), "%s: %s", cmd, why);
	return r;
}

void kw_qmp_close(struct kw_qmp *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	free(q->buf);
	q->buf = NULL;
	q->len = q->cap = q->msg_len = 0;
	kw_json_free(&q->j);
}

int kw_qmp_open(struct kw_qmp *q, const char *procfs, const char *path, pid_t pid, unsigned greeting_ms,
		unsigned session_ms)
{
	uint64_t now = kw_now_mono_ns(), greet;
	int r;

	memset(q, 0, sizeof(*q));
	q->fd = -1;
	q->ret = -1;
	kw_json_init(&q->j, KW_QMP_MAX_TOKENS, KW_QMP_MAX_DEPTH);
	q->deadline_ns = now + (uint64_t)session_ms * 1000000;
	greet = now + (uint64_t)greeting_ms * 1000000;
	if (greet > q->deadline_ns)
		greet = q->deadline_ns;
	if ((r = sock_connect(q, procfs, path, pid)))
		goto fail;
	r = read_msg(q, greet);
	if (r == KW_QMP_TIMEOUT) {
		snprintf(q->err, sizeof(q->err), "no greeting on %s within %u ms: the monitor is serving another "
			 "client", path, greeting_ms);
		r = KW_QMP_BUSY;
	}
	if (r)
		goto fail;
	if (kw_json_get_type(&q->j, 0, "QMP", KW_JSON_OBJECT) < 0) {
		snprintf(q->err, sizeof(q->err), "%s: the first message is no QMP greeting", path);
		r = KW_QMP_PROTO;
		goto fail;
	}
	r = kw_qmp_cmd(q, "qmp_capabilities", NULL);
	if (r == KW_QMP_ERROR)
		r = KW_QMP_PROTO;
	if (r)
		goto fail;
	return KW_QMP_OK;
fail:
	kw_qmp_close(q);
	return r;
}

