// SPDX-License-Identifier: GPL-2.0
/* kw_priv.c - capability checks by name, the privilege table, and opening
 * caller-chosen paths with the caller's own rights (kw_priv.h). */
#include "util/kw_priv.h"
#include "util/kw_util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>
#include <sys/capability.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/stat.h>
#include <limits.h>

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

/* The one list of what kvmwatch does with privilege.  SECURITY.md explains
 * each row; the netdata plugin's install gives exactly the union of these
 * capabilities (netdata-plugin/module.mk, checked by tests). */
const struct kw_priv_need kw_priv_needs[] = {
	{ "procfs", { KW_CAP_SYS_PTRACE, KW_CAP_DAC_READ_SEARCH }, -1,
	  "other users' VMM processes: listing /proc/PID/fd (a 0500 directory of its owner) takes "
	  "CAP_DAC_READ_SEARCH, reading its links, io and fdinfo takes ptrace read access" },
	{ "kvmstat", { KW_CAP_SYS_PTRACE, -1 }, -1,
	  "reaching a VMM's KVM stats fds takes pidfd_getfd (ptrace access); finding them in another user's "
	  "/proc/PID/fd is procfs's CAP_DAC_READ_SEARCH" },
	{ "bpf", { KW_CAP_BPF, KW_CAP_PERFMON }, KW_CAP_SYS_ADMIN,
	  "loading eBPF programs and attaching them to KVM tracepoints and kernel functions" },
	{ "tracefs", { KW_CAP_DAC_READ_SEARCH, -1 }, -1,
	  "reading tracepoint ids in tracefs (root-only files) for hooks that have only a tracepoint form, "
	  "such as kvm:kvm_exit" },
	{ "qmp", { -1, -1 }, -1,
	  "none: kvmwatch connects only to a monitor socket the VM process itself listens on, and file "
	  "permissions decide (no CAP_DAC_OVERRIDE)" },
	{ "libvirt", { -1, -1 }, -1, "none: a read-only libvirt connection; libvirt's own access control decides "
	  "(with capabilities, only qemu:/// URIs: other drivers read files in-process)" },
};
const size_t kw_priv_nneeds = KW_ARRAY_SIZE(kw_priv_needs);

const struct kw_priv_need *kw_priv_need(const char *what)
{
	size_t i;

	for (i = 0; i < kw_priv_nneeds; i++)
		if (!strcmp(kw_priv_needs[i].what, what))
			return &kw_priv_needs[i];
	return NULL;
}

const char *kw_cap_name(int cap)
{
	switch (cap) {
	case KW_CAP_DAC_READ_SEARCH: return "CAP_DAC_READ_SEARCH";
	case KW_CAP_SYS_PTRACE: return "CAP_SYS_PTRACE";
	case KW_CAP_SYS_ADMIN: return "CAP_SYS_ADMIN";
	case KW_CAP_PERFMON: return "CAP_PERFMON";
	case KW_CAP_BPF: return "CAP_BPF";
	}
	return "CAP_?";
}

int kw_priv_elevated(void)
{
	return getauxval(AT_SECURE) != 0;
}

int kw_priv_has(int cap)
{
	cap_flag_value_t v = CAP_CLEAR;
	cap_t c;

	if (cap < 0 || !CAP_IS_SUPPORTED(cap))
		return 0;
	c = cap_get_proc();
	if (!c)
		return 0;
	if (cap_get_flag(c, (cap_value_t)cap, CAP_EFFECTIVE, &v))
		v = CAP_CLEAR;
	cap_free(c);
	return v == CAP_SET;
}

int kw_priv_check(const char *what, char *why, size_t len)
{
	const struct kw_priv_need *n = kw_priv_need(what);
	int i, all = 1;

	if (!n)
		return 0;
	for (i = 0; i < 2 && n->caps[i] >= 0; i++)
		all &= kw_priv_has(n->caps[i]);
	if (all || (n->alt >= 0 && kw_priv_has(n->alt)))
		return 0;
	if (n->caps[1] >= 0)
		snprintf(why, len, "%s needs %s and %s%s%s (root has them): %s", what, kw_cap_name(n->caps[0]),
			 kw_cap_name(n->caps[1]), n->alt >= 0 ? ", or " : "", n->alt >= 0 ? kw_cap_name(n->alt) : "",
			 n->why);
	else
		snprintf(why, len, "%s needs %s (root has it): %s", what, kw_cap_name(n->caps[0]), n->why);
	return -EPERM;
}

const char *kw_getenv(const char *name)
{
	return secure_getenv(name);
}

/* Run the open with the caller's rights.  Not elevated: our rights are the
 * caller's.  Elevated: no effective capability and the real ids as fs ids
 * for the duration (capabilities are per thread: other threads keep theirs). */
struct as_caller {
	cap_t saved;
	int caps_cleared;
	uid_t fsuid;
	gid_t fsgid;
	int ids_set;
};

static int caller_enter(struct as_caller *s)
{
	cap_t none;

	memset(s, 0, sizeof(*s));
	if (!kw_priv_elevated())
		return 0;
	s->saved = cap_get_proc();
	none = s->saved ? cap_dup(s->saved) : NULL;
	if (!none || cap_clear_flag(none, CAP_EFFECTIVE) || cap_set_proc(none)) {
		int e = errno ? errno : EPERM;
		cap_free(none);
		cap_free(s->saved);
		s->saved = NULL;
		errno = e;
		return -1; /* refuse rather than open with privilege */
	}
	cap_free(none);
	s->caps_cleared = 1;
	if (geteuid() != getuid() || getegid() != getgid()) {
		s->fsgid = (gid_t)setfsgid(getgid());
		s->fsuid = (uid_t)setfsuid(getuid());
		s->ids_set = 1;
	}
	return 0;
}

static void caller_leave(struct as_caller *s)
{
	int e = errno;

	if (s->ids_set) {
		setfsuid(s->fsuid);
		setfsgid(s->fsgid);
	}
	if (s->caps_cleared && cap_set_proc(s->saved))
		kw_warn("cannot restore capabilities after opening a file as the caller: %s", strerror(errno));
	cap_free(s->saved);
	errno = e;
}

int kw_priv_open_as_caller(const char *path, int flags)
{
	struct as_caller s;
	int fd;

	if (caller_enter(&s))
		return -1;
	fd = open(path, flags | O_CLOEXEC);
	caller_leave(&s);
	return fd;
}

FILE *kw_priv_fopen_as_caller(const char *path, const char *mode)
{
	int flags = strchr(mode, 'w') ? O_WRONLY | O_CREAT | O_TRUNC : O_RDONLY;
	int fd = kw_priv_open_as_caller(path, flags);
	FILE *f;

	if (fd < 0)
		return NULL;
	f = fdopen(fd, strchr(mode, 'w') ? "w" : "r");
	if (!f) {
		int e = errno;
		close(fd);
		errno = e;
	}
	return f;
}

int kw_priv_drop_all(void)
{
	cap_t none = cap_init();
	int r = 0;

	if (!none)
		return -errno;
	if (cap_set_proc(none))
		r = -errno;
	cap_free(none);
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	return r;
}

int kw_priv_drop(int cap)
{
	cap_value_t v = (cap_value_t)cap;
	cap_t c;
	int r = 0;

	if (!CAP_IS_SUPPORTED(cap))
		return 0;
	c = cap_get_proc();
	if (!c)
		return -errno;
	if (cap_set_flag(c, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) || cap_set_flag(c, CAP_PERMITTED, 1, &v, CAP_CLEAR) ||
	    cap_set_flag(c, CAP_INHERITABLE, 1, &v, CAP_CLEAR) || cap_set_proc(c))
		r = -errno;
	cap_free(c);
	return r;
}

/* Is every directory from / down to path owned by root and writable by no
 * one else (sticky directories on the way aside)?  Then nobody but root can
 * change where path leads. */
static int root_owned_chain(const char *path, char *why, size_t wlen)
{
	char buf[PATH_MAX];
	size_t i, n = strlen(path);
	struct stat sb;

	if (n >= sizeof(buf)) {
		snprintf(why, wlen, "path too long");
		return -1;
	}
	if (lstat("/", &sb) || sb.st_uid != 0 || (sb.st_mode & 022)) {
		snprintf(why, wlen, "/ is not root's, or others can write it");
		return -1;
	}
	for (i = 1; i <= n; i++) {
		if (i < n && path[i] != '/')
			continue;
		memcpy(buf, path, i);
		buf[i] = '\0';
		/* a sticky directory (/tmp) is fine on the way: no one else can
		 * rename or replace the root-owned entry that must follow */
		if (lstat(buf, &sb) || !S_ISDIR(sb.st_mode) || sb.st_uid != 0 ||
		    ((sb.st_mode & 022) && (i == n || !(sb.st_mode & S_ISVTX)))) {
			snprintf(why, wlen, "%s is not a root-owned directory that only root can write", buf);
			return -1;
		}
	}
	return 0;
}

int kw_priv_trusted_root(const char *path, long fstype, const char *fsname, char *canon, size_t len, char *why,
			 size_t wlen)
{
	struct as_caller s;
	struct statfs sfs;
	struct statx stx;
	char *rp;
	int r = -1;

	snprintf(why, wlen, "not trusted");
	if (caller_enter(&s)) {
		snprintf(why, wlen, "cannot drop capabilities to resolve %s: %s", path, strerror(errno));
		return -1;
	}
	rp = realpath(path, NULL);
	caller_leave(&s);
	if (!rp) {
		snprintf(why, wlen, "cannot resolve %s: %s", path, strerror(errno));
		return -1;
	}
	/* the root of a mount of that filesystem, not a directory inside one
	 * (/proc/self/fd is root-owned procfs too, full of the caller's links) */
	if (statfs(rp, &sfs) || (long)sfs.f_type != fstype)
		snprintf(why, wlen, "%s is not a %s mount", rp, fsname);
	else if (statx(AT_FDCWD, rp, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS, &stx) ||
		 !(stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) || !(stx.stx_attributes & STATX_ATTR_MOUNT_ROOT))
		snprintf(why, wlen, "%s is not the root of a %s mount", rp, fsname);
	else if (strlen(rp) >= len)
		snprintf(why, wlen, "%s: path too long", rp);
	else if (root_owned_chain(rp, why, wlen) == 0)
		r = 0;
	if (r == 0)
		kw_strlcpy(canon, rp, len);
	free(rp);
	return r;
}
