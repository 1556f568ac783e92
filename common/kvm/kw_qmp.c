/* kw_qmp.c - the QMP source: per-disk I/O, capacity, balloon and KVM stats
 * straight from QEMU's monitor, for VMs no libvirt manages.
 *
 * A QMP monitor serves one client at a time: while Proxmox's qm/pvestatd (or
 * anyone) is connected, a new connection waits unaccepted and no greeting
 * comes.  So every step is non-blocking with a deadline: the greeting must
 * come within KW_QMP_GREETING_MS (else the VM is skipped this cycle, said at
 * debug level) and the whole session ends within KW_QMP_SESSION_MS.  Replies
 * are read with the strict, bounded JSON reader (kw_json.h); a malformed,
 * truncated or oversized reply ends that VM's session only.  The socket is
 * used only if the VM's own process listens on it (SO_PEERCRED): a process
 * that merely looks like QEMU cannot make a privileged kvmwatch talk to some
 * other daemon's socket.  VMs libvirt manages are left alone: libvirtd owns
 * their monitor. */
#include "kw_collector.h"
#include "kw_qmp.h"
#include "kw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
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
static int libvirt_socket(const char *path)
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

/* Can sock_diag look up Unix sockets by inode here (CONFIG_UNIX_DIAG)?
 * Asked about a listening socket of our own.  0 or -errno. */
static int unix_diag_works(void);

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

static int unix_diag_works(void)
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
		if (libvirt_socket(canon)) {
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

/* ------------------------------------------------------------ source */

enum qcmd { Q_STATUS, Q_BLOCK, Q_BLOCKSTATS, Q_BALLOON, Q_MEMSIZE, Q_SCHEMAS, Q_CPUS, Q_STATS, Q__N };
static const char *const qcmd_name[Q__N] = { "query-status", "query-block", "query-blockstats", "query-balloon",
					     "query-memory-size-summary", "query-stats-schemas", "query-cpus-fast",
					     "query-stats" };

enum { KS_COUNTER, KS_INSTANT, KS_PEAK };

struct qstat_def {
	char name[48];
	uint8_t vcpu;   /* target vcpu (1) or vm (0) */
	uint8_t kind;   /* KS_* */
};

struct qmp_vm {
	char key[64];
	unsigned unsupported;        /* 1 << enum qcmd: CommandNotFound */
	int have_schema;
	struct qstat_def *defs;      /* sorted by (vcpu, name) */
	size_t ndefs, defcap;
	/* this cycle's session, on a thread of its own (all VMs at once) */
	pthread_t th;
	int running;
	struct kw_vm scratch;        /* what the session found (identity copied in) */
	char path[KW_QMP_PATH_MAX];
	const char *procfs;
	uint64_t deadline_ns;
	int result;                  /* KW_QMP_* */
	char err[256];
	unsigned skip, skip_left;    /* backoff (cycles) after a monitor missed the budget */
};

struct qmp_state {
	struct kw_vmcache vms;        /* struct qmp_vm */
};

struct qcpu {
	char qom[128];
	int index;
};

/* Set a shared row only when another source (libvirt) did not. */
static int set_absent(struct kw_vm *vm, int metric, const char *inst, uint64_t v)
{
	if (kw_ss_get(&vm->stats, metric, inst))
		return 0;
	return kw_ss_set_u64(&vm->stats, metric, inst, v);
}

static int shape_error(struct kw_qmp *q, enum qcmd c, const char *what)
{
	snprintf(q->err, sizeof(q->err), "%s: unexpected reply (%s)", qcmd_name[c], what);
	return KW_QMP_PROTO;
}

/* Run a command unless this QEMU lacks it. KW_QMP_ERROR: skip the query. */
static int run(struct kw_qmp *q, struct qmp_vm *v, const struct kw_vm *vm, enum qcmd c, const char *args)
{
	int r;

	if (v->unsupported & (1u << c))
		return KW_QMP_ERROR;
	r = kw_qmp_cmd(q, qcmd_name[c], args);
	if (r == KW_QMP_ERROR) {
		if (!strcmp(q->eclass, "CommandNotFound"))
			v->unsupported |= 1u << c;
		kw_debug("qmp: VM %s (pid %d): %s: skipped", vm->name, vm->pid, q->err);
	}
	return r;
}

/* What one monitor may return: QEMU's own limits are far above what a VM
 * has (a disk per PCI slot, ~60 KVM stats per target, KVM's vCPU limit). */
#define QMP_MAX_DISKS 64
#define QMP_MAX_DEFS  512   /* KVM stat definitions (vm + vcpu) */
#define QMP_MAX_CPUS  1024
#define QMP_MAX_ROWS  32768 /* KVM stat rows set from one session */

static const char *const cap_what[] = { "disks", "KVM stat definitions", "vCPUs", "KVM stat values" };

/* Said once per VM and kind (what: one of cap_what): the monitor returned
 * more than we take. */
static void capped(const struct kw_vm *vm, const char *what, unsigned limit)
{
	char key[160];

	snprintf(key, sizeof(key), "qmp-cap:%s:%s", what, vm->key);
	kw_log_once(KW_LOG_WARN, key, "qmp: VM %s (pid %d): the monitor returned more than %u %s: the rest are "
		    "ignored", vm->name, vm->pid, limit, what);
}

/* KVM's stat names: lower-case identifiers. */
static int stat_name_ok(const char *n)
{
	if (!*n)
		return 0;
	for (; *n; n++)
		if (!((*n >= 'a' && *n <= 'z') || (*n >= '0' && *n <= '9') || *n == '_'))
			return 0;
	return 1;
}

/* Block device names become instances: QEMU ids are [A-Za-z0-9._-]. */
static int good_name(const char *s)
{
	if (!*s || strlen(s) >= KW_DISK_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* The -drive id ("device"), else the -device id from the qdev path
 * (/machine/peripheral/ID/...), else the block node name.  nodeobj holds
 * "node-name" (query-block: "inserted", query-blockstats: the entry). */
static int disk_name(const struct kw_json *j, int e, int nodeobj, char *out, size_t len)
{
	char qdev[256];

	if (kw_json_strcpy(j, kw_json_get(j, e, "device"), out, len) > 0 && good_name(out))
		return 0;
	if (kw_json_strcpy(j, kw_json_get(j, e, "qdev"), qdev, sizeof(qdev)) > 0 &&
	    kw_startswith(qdev, "/machine/peripheral/")) {
		const char *id = qdev + strlen("/machine/peripheral/");
		size_t n = strcspn(id, "/");

		if (n < len) {
			memcpy(out, id, n);
			out[n] = '\0';
			if (good_name(out))
				return 0;
		}
	}
	if (kw_json_strcpy(j, kw_json_get(j, nodeobj, "node-name"), out, len) > 0 && good_name(out))
		return 0;
	return -1;
}

struct media {
	char (*names)[KW_DISK_MAX];
	size_t n, cap;
	int known;                   /* query-block answered */
};

static int media_has(const struct media *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (!strcmp(m->names[i], name))
			return 1;
	return 0;
}

static int map_block(struct kw_qmp *q, struct kw_vm *vm, struct media *m)
{
	const struct kw_json *j = &q->j;
	int e, k, n;

	if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
		return shape_error(q, Q_BLOCK, "return is not an array");
	m->known = 1;
	n = (int)j->t[q->ret].size;
	for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
		char name[KW_DISK_MAX];
		int ins = kw_json_get_type(j, e, "inserted", KW_JSON_OBJECT), img;
		uint64_t v;

		if (ins < 0 || disk_name(j, e, ins, name, sizeof(name)))
			continue; /* no medium (an empty CD-ROM drive) */
		if (media_has(m, name))
			continue;
		if (m->n >= QMP_MAX_DISKS) {
			capped(vm, "disks", QMP_MAX_DISKS);
			break;
		}
		if (kw_grow((void **)&m->names, &m->cap, m->n, sizeof(*m->names)))
			return KW_QMP_NOMEM;
		kw_strlcpy(m->names[m->n++], name, KW_DISK_MAX);
		if (kw_vm_add_disk(vm, name) == -ENOMEM)
			return KW_QMP_NOMEM;
		img = kw_json_get_type(j, ins, "image", KW_JSON_OBJECT);
		if (!kw_json_u64(j, kw_json_get(j, img, "virtual-size"), &v) &&
		    set_absent(vm, KW_M_DISK_CAPACITY, name, v))
			return KW_QMP_NOMEM;
		if (!kw_json_u64(j, kw_json_get(j, img, "actual-size"), &v) &&
		    set_absent(vm, KW_M_DISK_PHYSICAL, name, v))
			return KW_QMP_NOMEM;
	}
	return KW_QMP_OK;
}

static const struct {
	const char *field;
	int metric;
} blockstats_map[] = {
	{ "rd_bytes", KW_M_DISK_RD_BYTES },
	{ "wr_bytes", KW_M_DISK_WR_BYTES },
	{ "rd_operations", KW_M_DISK_RD_REQS },
	{ "wr_operations", KW_M_DISK_WR_REQS },
	{ "flush_operations", KW_M_DISK_FL_REQS },
	{ "rd_total_time_ns", KW_M_DISK_RD_TIME },
	{ "wr_total_time_ns", KW_M_DISK_WR_TIME },
	{ "flush_total_time_ns", KW_M_DISK_FL_TIME },
	{ "wr_highest_offset", KW_M_DISK_ALLOC },
	{ "unmap_operations", KW_M_DISK_UNMAP_REQS },
	{ "unmap_bytes", KW_M_DISK_UNMAP_BYTES },
	{ "unmap_total_time_ns", KW_M_DISK_UNMAP_TIME },
	{ "failed_rd_operations", KW_M_DISK_RD_FAILED },
	{ "failed_wr_operations", KW_M_DISK_WR_FAILED },
	{ "failed_flush_operations", KW_M_DISK_FL_FAILED },
	{ "invalid_rd_operations", KW_M_DISK_RD_INVALID },
	{ "invalid_wr_operations", KW_M_DISK_WR_INVALID },
	{ "invalid_flush_operations", KW_M_DISK_FL_INVALID },
	{ "idle_time_ns", KW_M_DISK_IDLE },
};

static int map_blockstats(struct kw_qmp *q, struct kw_vm *vm, const struct media *m)
{
	const struct kw_json *j = &q->j;
	int e, k, n, ndisks = 0;
	size_t f;

	if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
		return shape_error(q, Q_BLOCKSTATS, "return is not an array");
	n = (int)j->t[q->ret].size;
	for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
		int st = kw_json_get_type(j, e, "stats", KW_JSON_OBJECT);
		char name[KW_DISK_MAX];

		if (st < 0 || disk_name(j, e, e, name, sizeof(name)))
			continue;
		if (m->known && !media_has(m, name))
			continue; /* no medium */
		if (++ndisks > QMP_MAX_DISKS) {
			capped(vm, "disks", QMP_MAX_DISKS);
			break;
		}
		if (kw_vm_add_disk(vm, name) == -ENOMEM)
			return KW_QMP_NOMEM;
		for (f = 0; f < KW_ARRAY_SIZE(blockstats_map); f++) {
			uint64_t v;

			if (!kw_json_u64(j, kw_json_get(j, st, blockstats_map[f].field), &v) &&
			    set_absent(vm, blockstats_map[f].metric, name, v))
				return KW_QMP_NOMEM;
		}
	}
	return KW_QMP_OK;
}

/* ----------------------------------------------------- KVM statistics */

static int def_cmp(const void *pa, const void *pb)
{
	const struct qstat_def *a = pa, *b = pb;

	if (a->vcpu != b->vcpu)
		return a->vcpu < b->vcpu ? -1 : 1;
	return strcmp(a->name, b->name);
}

static const struct qstat_def *find_def(const struct qmp_vm *v, int vcpu, const char *name)
{
	struct qstat_def key;

	memset(&key, 0, sizeof(key));
	key.vcpu = (uint8_t)vcpu;
	kw_strlcpy(key.name, name, sizeof(key.name));
	return v->ndefs ? bsearch(&key, v->defs, v->ndefs, sizeof(*v->defs), def_cmp) : NULL;
}

/* query-stats-schemas: which KVM stats are counters, instant values or peaks. */
static int map_schema(struct kw_qmp *q, struct qmp_vm *v, const struct kw_vm *vm)
{
	const struct kw_json *j = &q->j;
	int e, k, n;

	if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
		return shape_error(q, Q_SCHEMAS, "return is not an array");
	v->ndefs = 0;
	n = (int)j->t[q->ret].size;
	for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
		int tgt = kw_json_get(j, e, "target"), st = kw_json_get_type(j, e, "stats", KW_JSON_ARRAY), s, i, ns;
		int vcpu;

		if (!kw_json_streq(j, kw_json_get(j, e, "provider"), "kvm") || st < 0)
			continue;
		if (kw_json_streq(j, tgt, "vcpu"))
			vcpu = 1;
		else if (kw_json_streq(j, tgt, "vm"))
			vcpu = 0;
		else
			continue;
		ns = (int)j->t[st].size;
		for (i = 0, s = kw_json_first(j, st); i < ns; i++, s = kw_json_next(j, s)) {
			int type = kw_json_get(j, s, "type");
			struct qstat_def d;

			memset(&d, 0, sizeof(d));
			if (kw_json_strcpy(j, kw_json_get(j, s, "name"), d.name, sizeof(d.name)) <= 0 ||
			    !stat_name_ok(d.name))
				continue;
			if (kw_json_streq(j, type, "cumulative") || kw_json_streq(j, type, "linear-histogram") ||
			    kw_json_streq(j, type, "log2-histogram"))
				d.kind = KS_COUNTER; /* histograms: events = sum of the buckets */
			else if (kw_json_streq(j, type, "instant"))
				d.kind = KS_INSTANT;
			else if (kw_json_streq(j, type, "peak"))
				d.kind = KS_PEAK;
			else
				continue;
			d.vcpu = (uint8_t)vcpu;
			if (v->ndefs >= QMP_MAX_DEFS) {
				capped(vm, "KVM stat definitions", QMP_MAX_DEFS);
				goto done;
			}
			if (kw_grow((void **)&v->defs, &v->defcap, v->ndefs, sizeof(*v->defs)))
				return KW_QMP_NOMEM;
			v->defs[v->ndefs++] = d;
		}
	}
done:
	if (v->ndefs > 1)
		qsort(v->defs, v->ndefs, sizeof(*v->defs), def_cmp);
	v->have_schema = 1;
	return KW_QMP_OK;
}

/* A stat's value: a number, a boolean, or a histogram (summed). */
static int stat_value(const struct kw_json *j, int val, uint64_t *out)
{
	int b, e, k, n;

	if (!kw_json_u64(j, val, out))
		return 0;
	if (!kw_json_bool(j, val, &b)) {
		*out = (uint64_t)b;
		return 0;
	}
	if (kw_json_type(j, val) != KW_JSON_ARRAY)
		return -1;
	*out = 0;
	n = (int)j->t[val].size;
	for (k = 0, e = kw_json_first(j, val); k < n; k++, e = kw_json_next(j, e)) {
		uint64_t x;

		if (kw_json_u64(j, e, &x))
			return -1;
		*out += x;
	}
	return 0;
}

/* The rows of metrics_kvmstat.def, as the kvmstat source fills them. */
static int put_stat(struct kw_vm *vm, int vcpu, const struct qstat_def *d, uint64_t v)
{
	const struct kw_sample *s;
	char inst[KW_INST_MAX];

	if (vcpu < 0)
		return kw_ss_set_u64(&vm->stats, d->kind == KS_COUNTER ? KW_M_KVM_VM : KW_M_KVM_VM_GAUGE, d->name, v);
	switch (d->kind) {
	case KS_INSTANT:
		return kw_ss_add_u64(&vm->stats, KW_M_KVM_VCPU_GAUGE, d->name, v);
	case KS_PEAK:
		s = kw_ss_get(&vm->stats, KW_M_KVM_VCPU_GAUGE, d->name);
		return s && s->v.u >= v ? 0 : kw_ss_set_u64(&vm->stats, KW_M_KVM_VCPU_GAUGE, d->name, v);
	default:
		snprintf(inst, sizeof(inst), "%d.%s", vcpu, d->name);
		if (kw_ss_set_u64(&vm->stats, KW_M_KVM_VCPU_EACH, inst, v))
			return -ENOMEM;
		return kw_ss_add_u64(&vm->stats, KW_M_KVM_VCPU, d->name, v);
	}
}

static int map_stats(struct kw_qmp *q, const struct qmp_vm *v, struct kw_vm *vm, const struct qcpu *cpus,
		     size_t ncpus, int vcpu_target, unsigned *rows)
{
	const struct kw_json *j = &q->j;
	int e, k, n;

	if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
		return shape_error(q, Q_STATS, "return is not an array");
	n = (int)j->t[q->ret].size;
	for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
		int st = kw_json_get_type(j, e, "stats", KW_JSON_ARRAY), s, i, ns, vcpu = -1;
		char qom[128];

		if (!kw_json_streq(j, kw_json_get(j, e, "provider"), "kvm") || st < 0)
			continue;
		if (vcpu_target) {
			size_t c;

			if (kw_json_strcpy(j, kw_json_get(j, e, "qom-path"), qom, sizeof(qom)) <= 0)
				continue;
			for (c = 0; c < ncpus && vcpu < 0; c++)
				if (!strcmp(cpus[c].qom, qom))
					vcpu = cpus[c].index;
			if (vcpu < 0)
				continue; /* a vCPU added since query-cpus-fast */
		}
		ns = (int)j->t[st].size;
		for (i = 0, s = kw_json_first(j, st); i < ns; i++, s = kw_json_next(j, s)) {
			const struct qstat_def *d;
			char name[48];
			uint64_t val;

			if (kw_json_strcpy(j, kw_json_get(j, s, "name"), name, sizeof(name)) <= 0 ||
			    !(d = find_def(v, vcpu_target, name)) || stat_value(j, kw_json_get(j, s, "value"), &val))
				continue;
			if (++*rows > QMP_MAX_ROWS) {
				capped(vm, "KVM stat values", QMP_MAX_ROWS);
				return KW_QMP_OK;
			}
			if (put_stat(vm, vcpu, d, val))
				return KW_QMP_NOMEM;
		}
	}
	return KW_QMP_OK;
}

static int has_kvm_rows(const struct kw_vm *vm)
{
	size_t i;

	for (i = 0; i < vm->stats.n; i++) {
		int m = vm->stats.s[i].metric;

		if (m == KW_M_KVM_VCPU || m == KW_M_KVM_VM || m == KW_M_KVM_VCPU_GAUGE || m == KW_M_KVM_VM_GAUGE ||
		    m == KW_M_KVM_VCPU_EACH)
			return 1;
	}
	return 0;
}

/* query-stats (QEMU >= 7.1): QEMU holds the KVM stats fds that KVM refuses
 * to other processes; only when the kvmstat source read nothing. */
static int kvm_stats(struct kw_qmp *q, struct qmp_vm *v, struct kw_vm *vm)
{
	struct qcpu *cpus = NULL;
	size_t ncpus = 0, cap = 0;
	unsigned rows = 0;
	int r, e, k, n;

	if (!v->have_schema) {
		r = run(q, v, vm, Q_SCHEMAS, NULL);
		if (r == KW_QMP_OK)
			r = map_schema(q, v, vm);
		if (r)
			return r;
	}
	if (!v->ndefs)
		return KW_QMP_OK; /* no KVM provider (TCG) */
	r = run(q, v, vm, Q_CPUS, NULL);
	if (r == KW_QMP_OK) {
		const struct kw_json *j = &q->j;

		if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
			return shape_error(q, Q_CPUS, "return is not an array");
		n = (int)j->t[q->ret].size;
		for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
			int64_t idx;

			if (kw_json_i64(j, kw_json_get(j, e, "cpu-index"), &idx) || idx < 0 || idx > 65535)
				continue;
			if (ncpus >= QMP_MAX_CPUS) {
				capped(vm, "vCPUs", QMP_MAX_CPUS);
				break;
			}
			if (kw_grow((void **)&cpus, &cap, ncpus, sizeof(*cpus))) {
				free(cpus);
				return KW_QMP_NOMEM;
			}
			if (kw_json_strcpy(j, kw_json_get(j, e, "qom-path"), cpus[ncpus].qom, sizeof(cpus[0].qom)) <= 0)
				continue;
			cpus[ncpus++].index = (int)idx;
		}
		r = run(q, v, vm, Q_STATS, "{\"target\":\"vcpu\"}");
		if (r == KW_QMP_OK)
			r = map_stats(q, v, vm, cpus, ncpus, 1, &rows);
	}
	free(cpus);
	if (r != KW_QMP_OK && r != KW_QMP_ERROR)
		return r;
	r = run(q, v, vm, Q_STATS, "{\"target\":\"vm\"}");
	if (r == KW_QMP_OK)
		r = map_stats(q, v, vm, NULL, 0, 0, &rows);
	return r;
}

/* One session's queries; returns the first fatal status (or OK). */
static int session(struct kw_qmp *q, struct qmp_vm *v, struct kw_vm *vm)
{
	struct media m = { NULL, 0, 0, 0 };
	const struct kw_json *j = &q->j;
	uint64_t a, b;
	int r;

#define STEP(expr)                                             \
	do {                                                   \
		r = (expr);                                    \
		if (r != KW_QMP_OK && r != KW_QMP_ERROR)      \
			goto out;                              \
	} while (0)

	STEP(run(q, v, vm, Q_STATUS, NULL));
	if (r == KW_QMP_OK &&
	    kw_json_strcpy(j, kw_json_get(j, q->ret, "status"), vm->state, sizeof(vm->state)) < 0)
		vm->state[0] = '\0';
	STEP(run(q, v, vm, Q_BLOCK, NULL));
	if (r == KW_QMP_OK)
		STEP(map_block(q, vm, &m));
	STEP(run(q, v, vm, Q_BLOCKSTATS, NULL));
	if (r == KW_QMP_OK)
		STEP(map_blockstats(q, vm, &m));
	/* no balloon device: DeviceNotActive, skipped */
	STEP(run(q, v, vm, Q_BALLOON, NULL));
	if (r == KW_QMP_OK && !kw_json_u64(j, kw_json_get(j, q->ret, "actual"), &a) &&
	    set_absent(vm, KW_M_DOM_MEM_CUR, NULL, a))
		STEP(KW_QMP_NOMEM);
	STEP(run(q, v, vm, Q_MEMSIZE, NULL));
	if (r == KW_QMP_OK && !kw_json_u64(j, kw_json_get(j, q->ret, "base-memory"), &a)) {
		if (kw_json_u64(j, kw_json_get(j, q->ret, "plugged-memory"), &b))
			b = 0;
		if (set_absent(vm, KW_M_DOM_MEM_MAX, NULL, a + b))
			STEP(KW_QMP_NOMEM);
	}
	if (!has_kvm_rows(vm))
		STEP(kvm_stats(q, v, vm));
	r = KW_QMP_OK;
#undef STEP
out:
	free(m.names);
	return r;
}

static void forget_keys(const char *vmkey)
{
	static const char *const kinds[] = { "nosock", "notours", "proto", "libvirt" };
	char key[128];
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(kinds); i++) {
		snprintf(key, sizeof(key), "qmp-%s:%s", kinds[i], vmkey);
		kw_log_forget(key);
	}
}


static void report(const struct kw_vm *vm, int r, const struct kw_qmp *q)
{
	char key[128];

	switch (r) {
	case KW_QMP_BUSY:
		kw_debug("qmp: VM %s (pid %d): %s; skipped this cycle", vm->name, vm->pid, q->err);
		break;
	case KW_QMP_NOSOCK:
		snprintf(key, sizeof(key), "qmp-nosock:%s", vm->key);
		kw_log_once(KW_LOG_INFO, key, "qmp: VM %s (pid %d): %s; no QMP data for it", vm->name, vm->pid,
			    q->err);
		break;
	case KW_QMP_DENIED:
		kw_log_once(KW_LOG_WARN, "qmp-denied", "qmp: VM %s (pid %d): %s: VMs lack QMP data (per-disk I/O, "
			    "balloon) without access to their QMP sockets (run as root)", vm->name, vm->pid, q->err);
		break;
	case KW_QMP_LIBVIRT:
		snprintf(key, sizeof(key), "qmp-libvirt:%s", vm->key);
		kw_log_once(KW_LOG_DEBUG, key, "qmp: VM %s (pid %d): %s: managed by libvirt, not asked", vm->name,
			    vm->pid, q->err);
		break;
	case KW_QMP_NOTOURS:
		snprintf(key, sizeof(key), "qmp-notours:%s", vm->key);
		kw_log_once(KW_LOG_WARN, key, "qmp: VM %s (pid %d): %s: not used", vm->name, vm->pid, q->err);
		break;
	case KW_QMP_TIMEOUT:
	case KW_QMP_PROTO:
		snprintf(key, sizeof(key), "qmp-proto:%s", vm->key);
		kw_log_once(KW_LOG_WARN, key, "qmp: VM %s (pid %d): %s; QMP data of this VM are incomplete while "
			    "this lasts", vm->name, vm->pid, q->err);
		kw_debug("qmp: VM %s (pid %d): %s", vm->name, vm->pid, q->err);
		break;
	default:
		break;
	}
}

/* The session of one VM, on its own thread: everything it touches is
 * v's (the cache does not move while sessions run) and its scratch VM. */
static void *session_main(void *arg)
{
	struct qmp_vm *v = arg;
	uint64_t now = kw_now_mono_ns();
	unsigned ms = v->deadline_ns > now ? (unsigned)((v->deadline_ns - now) / 1000000) : 1;
	struct kw_qmp q;
	int r;

	r = kw_qmp_open(&q, v->procfs, v->path, v->scratch.pid, KW_QMP_GREETING_MS < ms ? KW_QMP_GREETING_MS : ms,
			ms ? ms : 1);
	if (r == KW_QMP_OK) {
		r = session(&q, v, &v->scratch);
		kw_qmp_close(&q);
	}
	v->result = r;
	kw_strlcpy(v->err, q.err, sizeof(v->err));
	return NULL;
}

static void join_session(struct qmp_vm *v)
{
	if (!v->running)
		return;
	pthread_join(v->th, NULL);
	v->running = 0;
}

static struct qmp_vm *cache_find(struct qmp_state *st, const char *key)
{
	size_t i;

	for (i = 0; i < st->vms.n; i++) {
		struct qmp_vm *v = kw_vmcache_at(&st->vms, i);

		if (!strcmp(v->key, key))
			return v;
	}
	return NULL;
}

/* Should this VM's monitor be asked?  norm receives its normalised path. */
static int wants_qmp(struct kw_collector *c, struct kw_vm *vm, char *norm, size_t len)
{
	char key[128];

	if (!vm->seen || vm->pid <= 0 || !vm->qmp[0] || !kw_collector_wants(c, vm))
		return 0;
	/* with "..", only the canonical path of the opened file can say
	 * whether it is libvirt's (checked in sock_connect) */
	if (kw_qmp_normalize(norm, len, vm->qmp))
		kw_strlcpy(norm, vm->qmp, len);
	if ((vm->found & KW_FOUND_LIBVIRT) || libvirt_socket(norm)) {
		snprintf(key, sizeof(key), "qmp-libvirt:%s", vm->key);
		kw_log_once(KW_LOG_DEBUG, key, "qmp: VM %s (pid %d) is managed by libvirt: its monitor %s is "
			    "libvirtd's, not asked", vm->name, vm->pid, vm->qmp);
		return 0;
	}
	return 1;
}

/* Merge what a session found, where another source (libvirt) did not. */
static int merge(struct kw_vm *vm, const struct kw_vm *s)
{
	size_t i;
	int d;

	if (s->state[0])
		kw_strlcpy(vm->state, s->state, sizeof(vm->state));
	for (d = 0; d < s->ndisks; d++)
		if (kw_vm_add_disk(vm, s->disks[d].name) == -ENOMEM)
			return -ENOMEM;
	for (i = 0; i < s->stats.n; i++)
		if (set_absent(vm, s->stats.s[i].metric, s->stats.s[i].inst, s->stats.s[i].v.u))
			return -ENOMEM;
	return 0;
}

static int qmp_collect_vm(struct kw_collector *c, void *state, struct kw_vm *vm)
{
	struct qmp_state *st = state;
	struct qmp_vm *v = cache_find(st, vm->key);
	struct kw_qmp q;
	char key[160];
	int r;

	if (!v || !v->running)
		return 0;
	join_session(v);
	r = v->result;
	if (r == KW_QMP_OK)
		forget_keys(vm->key);
	if (merge(vm, &v->scratch))
		r = KW_QMP_NOMEM;
	if (r == KW_QMP_TIMEOUT) {
		/* greeted, then missed the cycle's budget: skipped for 1, 2, 4 ...
		 * 32 cycles (a busy monitor -- another client holds it -- is
		 * tried every cycle: it costs only the greeting wait, in parallel) */
		v->skip = v->skip ? (v->skip < 32 ? v->skip * 2 : 32) : 1;
		v->skip_left = v->skip;
		snprintf(key, sizeof(key), "qmp-slow:%s", vm->key);
		kw_log_once(KW_LOG_WARN, key, "qmp: VM %s (pid %d): %s: its monitor does not answer within the "
			    "cycle's budget (%u ms); asked less often while this lasts", vm->name, vm->pid, v->err,
			    KW_QMP_CYCLE_MS);
	} else if (r == KW_QMP_OK) {
		v->skip = 0;
		snprintf(key, sizeof(key), "qmp-slow:%s", vm->key);
		kw_log_forget(key);
	}
	memset(&q, 0, sizeof(q));
	kw_strlcpy(q.err, v->err, sizeof(q.err));
	if (r != KW_QMP_TIMEOUT)
		report(vm, r, &q);
	return r == KW_QMP_NOMEM ? -ENOMEM : 0;
}

static void drop_vm(void *item)
{
	struct qmp_vm *v = item;
	char key[160];
	size_t i;

	join_session(v);
	kw_vm_free(&v->scratch);
	forget_keys(v->key);
	for (i = 0; i < KW_ARRAY_SIZE(cap_what); i++) {
		snprintf(key, sizeof(key), "qmp-cap:%s:%s", cap_what[i], v->key);
		kw_log_forget(key);
	}
	snprintf(key, sizeof(key), "qmp-slow:%s", v->key);
	kw_log_forget(key);
	free(v->defs);
}

/* Every monitor is asked at once: the cache is settled (last cycle's
 * sessions joined, gone VMs dropped, new ones added) and then one session
 * per VM starts on its own thread, all with the same deadline; each VM's
 * collect_vm takes its results.  One slow monitor costs the cycle at most
 * the budget, never a budget per monitor. */
static int qmp_discover(struct kw_collector *c, void *state)
{
	struct qmp_state *st = state;
	char norm[KW_QMP_PATH_MAX];
	uint64_t deadline;
	size_t i;
	int created;

	for (i = 0; i < st->vms.n; i++)
		join_session(kw_vmcache_at(&st->vms, i));
	kw_vmcache_prune(&st->vms, &c->vms, NULL, drop_vm);
	for (i = 0; i < c->vms.n; i++)
		if (wants_qmp(c, &c->vms.vms[i], norm, sizeof(norm)) && !kw_vmcache_get(&st->vms, c->vms.vms[i].key,
											&created))
			return -ENOMEM;
	deadline = kw_now_mono_ns() + (uint64_t)KW_QMP_CYCLE_MS * 1000000ull;
	for (i = 0; i < c->vms.n; i++) {
		struct kw_vm *vm = &c->vms.vms[i];
		struct qmp_vm *v;

		if (!wants_qmp(c, vm, norm, sizeof(norm)) || !(v = cache_find(st, vm->key)))
			continue;
		if (v->skip_left) {
			v->skip_left--;
			continue;
		}
		kw_vm_free(&v->scratch);
		memset(&v->scratch, 0, sizeof(v->scratch));
		kw_strlcpy(v->scratch.key, vm->key, sizeof(v->scratch.key));
		kw_strlcpy(v->scratch.name, vm->name, sizeof(v->scratch.name));
		v->scratch.pid = vm->pid;
		v->scratch.found = vm->found;
		v->scratch.pve_id = vm->pve_id;
		v->scratch.dom_id = vm->dom_id;
		kw_strlcpy(v->path, norm, sizeof(v->path));
		v->procfs = KW_PROC(c);
		v->deadline_ns = deadline;
		v->result = KW_QMP_PROTO;
		v->err[0] = '\0';
		if (pthread_create(&v->th, NULL, session_main, v) == 0)
			v->running = 1;
		else
			kw_log_once(KW_LOG_WARN, "qmp-thread", "qmp: cannot start a session thread: %s", strerror(errno));
	}
	return 0;
}

static int qmp_init(struct kw_collector *c, void **state, char *why, size_t whylen)
{
	struct qmp_state *st;
	int r;

	if (strcmp(c->cfg.procfs, "/proc")) {
		snprintf(why, whylen, "QMP sockets are reached for local processes only (procfs root is %s)",
			 c->cfg.procfs);
		return -ECANCELED;
	}
	if (!kw_collector_has(c, KW_SRC_PROC)) {
		snprintf(why, whylen, "the QMP socket comes from the QEMU command line: needs the procfs source");
		return -ECANCELED;
	}
	if ((r = unix_diag_works())) {
		snprintf(why, whylen, "monitor sockets cannot be verified before connecting: Unix socket diagnostics "
			 "(sock_diag, CONFIG_UNIX_DIAG) failed: %s", strerror(-r));
		return -ENOTSUP;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	st->vms.size = sizeof(struct qmp_vm);
	*state = st;
	return 0;
}

static void qmp_fini(struct kw_collector *c, void *state)
{
	struct qmp_state *st = state;

	if (!st)
		return;
	kw_vmcache_free(&st->vms, drop_vm);
	free(st);
}

const struct kw_source_ops kw_source_qmp = {
	.id = KW_SRC_QMP,
	.name = "qmp",
	.init = qmp_init,
	.discover = qmp_discover,
	.collect_vm = qmp_collect_vm,
	.fini = qmp_fini,
};
