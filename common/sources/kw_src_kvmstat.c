// SPDX-License-Identifier: GPL-2.0
/* kw_src_kvmstat.c - the KVM binary statistics source (KVM_GET_STATS_FD).
 *
 * For each VMM process the collector found, the VM's and vCPUs' statistics
 * file descriptors are brought into this process with pidfd_open +
 * pidfd_getfd (root): a stats fd the VMM already holds
 * (anon_inode:kvm-vm-stats, anon_inode:kvm-vcpu-stats:N) is duplicated as
 * is; otherwise the VM / vCPU fd (anon_inode:kvm-vm, anon_inode:kvm-vcpu:N)
 * is duplicated and KVM_GET_STATS_FD is tried on it (kernels refuse that
 * ioctl from another process's mm with EIO: then the VM is reported once and
 * skipped).  Stats are discovered by name from the descriptors, which are
 * read once per fd; the fds and descriptors are cached per VM and closed when
 * the VM goes away.  Only /proc and the binary stats interface are used: no
 * eBPF, no libvirt. */
#include "core/kw_collector.h"
#include "kvm/kw_kstats.h"
#include "util/kw_priv.h"
#include "util/kw_util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

#define RESCAN_CYCLES 5 /* re-look for missing vCPU stats fds this often, */
#define RESCAN_IDLE 60  /* but only when its number of fds changed, or after this many */
#define KW_KSTATS_MAX_VCPUS 4096 /* stats fds of one VM: x86 KVM_MAX_VCPUS */

/* One stats fd (the VM's, or one vCPU's) with its descriptors. */
struct kstat_fd {
	struct kw_kstats ks;  /* the fd and its descriptors */
	int vcpu;             /* -1: VM-level */
};

struct kstat_vm {
	char key[64];
	pid_t pid;
	int pidfd;
	struct kstat_fd *fds;
	int nfds;
	int have_vm;       /* a VM-level stats fd is among fds */
	int nvcpu;         /* vCPU stats fds among fds */
	uint64_t last_scan, last_check;
	uint64_t seen_cycle;
	long fd_count;     /* its open fds when last scanned (st_size of /proc/PID/fd, Linux >= 6.2; 0 before) */
};

struct kvmstat_state {
	dev_t anon_dev;               /* the kernel's shared anon inode (eventfd's, KVM's) */
	ino_t anon_ino;
	struct kw_vmcache vms;        /* struct kstat_vm */
	struct kw_sampleset tmp;   /* one VM's sums, then set over libvirt's copy */
};

static int sys_pidfd_open(pid_t pid) { return (int)syscall(SYS_pidfd_open, pid, 0); }
static int sys_pidfd_getfd(int pidfd, int fd) { return (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0); }

/* ------------------------------------------------------ descriptors */

static void kfd_close(struct kstat_fd *k)
{
	kw_kstats_close(&k->ks);
	k->vcpu = 0;
}

/* Is fd, as this process holds it, the KVM anon inode named want
 * ("kvm-vm-stats", "kvm-vcpu-stats:3", "kvm-vm", ...)?  The check is made
 * on the duplicated descriptor itself: what the VMM's /proc link said
 * before pidfd_getfd may have changed since (it owns its fd table). */
static int is_kvm_fd(const struct kvmstat_state *st, int fd, const char *want)
{
	char path[64], link[96], exp[96];
	struct stat sb;
	ssize_t n;

	if (fstat(fd, &sb) || sb.st_dev != st->anon_dev || sb.st_ino != st->anon_ino)
		return 0;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n <= 0)
		return 0;
	link[n] = '\0';
	snprintf(exp, sizeof(exp), "anon_inode:%s", want);
	return !strcmp(link, exp);
}

static void want_name(char *out, size_t len, const char *base, int vcpu)
{
	if (vcpu < 0)
		snprintf(out, len, "%s", base);
	else
		snprintf(out, len, "%s:%d", base, vcpu);
}

/* --------------------------------------------------------- fd cache */

static void kvm_close(struct kstat_vm *v)
{
	int i;

	for (i = 0; i < v->nfds; i++)
		kfd_close(&v->fds[i]);
	free(v->fds);
	v->fds = NULL;
	v->nfds = v->nvcpu = v->have_vm = 0;
	if (v->pidfd >= 0)
		close(v->pidfd);
	v->pidfd = -1;
}

static int has_vcpu(const struct kstat_vm *v, int idx)
{
	int i;

	for (i = 0; i < v->nfds; i++)
		if (v->fds[i].vcpu == idx)
			return 1;
	return 0;
}

/* Take ownership of a stats fd: check what it is, load its descriptors and
 * add it.  A descriptor that is not the KVM stats fd it should be is
 * closed and never read. */
static int add_stats_fd(const struct kvmstat_state *st, struct kstat_vm *v, int fd, int vcpu)
{
	struct kstat_fd *p, k = { .ks = { .fd = fd }, .vcpu = vcpu };
	char want[48];
	int r;

	want_name(want, sizeof(want), vcpu < 0 ? "kvm-vm-stats" : "kvm-vcpu-stats", vcpu);
	if (!is_kvm_fd(st, fd, want)) {
		close(fd);
		return -EBADF;
	}
	if (vcpu >= 0 && v->nvcpu >= KW_KSTATS_MAX_VCPUS) {
		close(fd);
		return -E2BIG;
	}
	r = kw_kstats_load(&k.ks);
	if (r < 0) {
		kfd_close(&k);
		return r;
	}
	p = realloc(v->fds, ((size_t)v->nfds + 1) * sizeof(*p));
	if (!p) {
		kfd_close(&k);
		return -ENOMEM;
	}
	v->fds = p;
	v->fds[v->nfds++] = k;
	if (vcpu < 0)
		v->have_vm = 1;
	else
		v->nvcpu++;
	return 0;
}

/* Parse "anon_inode:kvm-vcpu:3" style links: prefix then the index. */
static int link_index(const char *link, const char *prefix)
{
	long v;

	if (!kw_startswith(link, prefix) || kw_parse_int(link + strlen(prefix), 0, 65535, &v))
		return -1;
	return (int)v;
}

struct fdref {
	int fd, vcpu;
};

/* Look through the VMM's fds for stats fds (dup them) and VM/vCPU fds (dup
 * them and ask KVM for a stats fd).  Returns 0 or -errno. */
static int scan_vmm(struct kw_collector *c, const struct kvmstat_state *st, struct kstat_vm *v,
		    const struct kw_vm *vm)
{
	char path[PATH_MAX], link[128];
	struct fdref *plain = NULL;
	size_t nplain = 0, cap = 0, i;
	struct dirent *de;
	int eio = 0, r = 0, forged = 0;
	char want[48];
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/fd", KW_PROC(c), v->pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		long fdnum;
		ssize_t n;
		int idx = -2, fd;

		if (kw_parse_int(de->d_name, 0, INT32_MAX, &fdnum))
			continue;
		snprintf(path, sizeof(path), "%s/%d/fd/%ld", KW_PROC(c), v->pid, fdnum);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strcmp(link, "anon_inode:kvm-vm-stats")) {
			idx = -1;
		} else if ((idx = link_index(link, "anon_inode:kvm-vcpu-stats:")) < 0) {
			int vi = !strcmp(link, "anon_inode:kvm-vm") ? -1 : link_index(link, "anon_inode:kvm-vcpu:");

			if (vi >= 0 || !strcmp(link, "anon_inode:kvm-vm")) {
				if (kw_grow((void **)&plain, &cap, nplain, sizeof(*plain)) == 0) {
					plain[nplain].fd = (int)fdnum;
					plain[nplain].vcpu = vi;
					nplain++;
				}
			}
			continue;
		}
		if (idx < 0 ? v->have_vm : has_vcpu(v, idx))
			continue;
		fd = sys_pidfd_getfd(v->pidfd, (int)fdnum);
		if (fd < 0)
			continue; /* closed meanwhile */
		if ((r = add_stats_fd(st, v, fd, idx)) == -ENOMEM)
			break;
		if (r == -EBADF)
			forged = 1;
		r = 0;
	}
	closedir(d);
	/* VM / vCPU fds whose stats fd the VMM does not hold. */
	for (i = 0; i < nplain && r != -ENOMEM; i++) {
		int fd, sfd;

		if (plain[i].vcpu < 0 ? v->have_vm : has_vcpu(v, plain[i].vcpu))
			continue;
		fd = sys_pidfd_getfd(v->pidfd, plain[i].fd);
		if (fd < 0)
			continue;
		want_name(want, sizeof(want), plain[i].vcpu < 0 ? "kvm-vm" : "kvm-vcpu", plain[i].vcpu);
		if (!is_kvm_fd(st, fd, want)) {
			close(fd); /* swapped since the link was read: no ioctl on it */
			forged = 1;
			continue;
		}
		sfd = ioctl(fd, KVM_GET_STATS_FD, NULL);
		if (sfd < 0 && errno == EIO)
			eio = 1;
		close(fd);
		if (sfd >= 0 && add_stats_fd(st, v, sfd, plain[i].vcpu) == -ENOMEM)
			r = -ENOMEM;
	}
	free(plain);
	if (forged) {
		char key[96];

		snprintf(key, sizeof(key), "kvmstat-forged:%s", v->key);
		kw_log_once(KW_LOG_WARN, key,
			    "kvmstat: VM %s (pid %d): a descriptor named as a KVM fd in /proc was something else when "
			    "taken: ignored", vm->name, v->pid);
	}
	if (!v->nfds && nplain) {
		char key[96];

		snprintf(key, sizeof(key), "kvmstat-nofd:%s", v->key);
		kw_log_once(KW_LOG_INFO, key,
			    "kvmstat: VM %s (pid %d) holds no KVM stats fds and KVM_GET_STATS_FD on its VM/vCPU fds "
			    "failed%s: no KVM binary stats for it", vm->name, v->pid,
			    eio ? " (EIO: KVM refuses VM ioctls from another process)" : "");
	}
	return r;
}

static struct kstat_vm *cache_get(struct kvmstat_state *st, const struct kw_vm *vm)
{
	int created;
	struct kstat_vm *v = kw_vmcache_get(&st->vms, vm->key, &created);

	if (v && created) {
		v->pid = vm->pid;
		v->pidfd = -1;
	}
	return v;
}

/* Is the pid still the process the collector found (start time)? */
static int same_process(struct kw_collector *c, const struct kw_vm *vm)
{
	char buf[1024];
	const char *p;
	unsigned long long st = 0;
	int field;

	if (!vm->starttime)
		return 1;
	if (kw_read_filef(buf, sizeof(buf), "%s/%d/stat", KW_PROC(c), vm->pid) <= 0)
		return 0;
	p = strrchr(buf, ')');
	if (!p)
		return 0;
	/* field 3 follows ") "; starttime is field 22 */
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", &st) != 1)
		return 0;
	return st == vm->starttime;
}

/* --------------------------------------------------------- callbacks */

static int kvmstat_init(struct kw_collector *c, void **state, char *why, size_t whylen)
{
	struct kvmstat_state *st;
	struct stat sb;
	int pidfd, fd;

	if (strcmp(c->cfg.procfs, "/proc")) {
		snprintf(why, whylen, "KVM stats are read from local processes only (procfs root is %s)",
			 c->cfg.procfs);
		return -ECANCELED; /* expected with a fixture or remote /proc */
	}
	if (kw_priv_check("kvmstat", why, whylen))
		return -EPERM;
	pidfd = sys_pidfd_open(getpid());
	if (pidfd < 0) {
		int e = errno;
		snprintf(why, whylen, "failed to open pidfd: %s%s", strerror(e),
			 e == ENOSYS ? " (pidfd_open needs Linux 5.3)" : "");
		return -e;
	}
	fd = sys_pidfd_getfd(pidfd, pidfd);
	if (fd < 0) {
		int e = errno;
		close(pidfd);
		snprintf(why, whylen, "failed to duplicate a file descriptor with pidfd_getfd: %s%s", strerror(e),
			 e == ENOSYS ? " (pidfd_getfd needs Linux 5.6)" : "");
		return -e;
	}
	close(fd);
	close(pidfd);
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	/* KVM's fds live on the kernel's one shared anon inode, as eventfd's do */
	fd = eventfd(0, EFD_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		free(st);
		snprintf(why, whylen, "failed to create an eventfd: %s", strerror(e));
		return -e;
	}
	close(fd);
	st->anon_dev = sb.st_dev;
	st->anon_ino = sb.st_ino;
	st->vms.size = sizeof(struct kstat_vm);
	*state = st;
	return 0;
}

static int pid_changed(const void *item, const struct kw_vm *vm)
{
	return ((const struct kstat_vm *)item)->pid != vm->pid;
}

static void drop_vm(void *item)
{
	kvm_close(item);
}

/* Close the fds of VMs that left the table (they pin the VM in the kernel). */
static int kvmstat_discover(struct kw_collector *c, void *state)
{
	struct kvmstat_state *st = state;

	kw_vmcache_prune(&st->vms, &c->vms, pid_changed, drop_vm);
	return 0;
}

static void publish(struct kw_sampleset *ss, const struct kstat_fd *k)
{
	char inst[KW_INST_MAX];
	unsigned i;

	for (i = 0; i < k->ks.nd; i++) {
		const struct kw_kstats_desc *d = &k->ks.d[i];
		uint64_t v = kw_kstats_value(&k->ks, i); /* histograms: events = sum of buckets */
		if (k->vcpu < 0) {
			if (d->type == KVM_STATS_TYPE_INSTANT || d->type == KVM_STATS_TYPE_PEAK)
				kw_ss_set_u64(ss, KW_M_KVM_VM_GAUGE, d->name, v);
			else
				kw_ss_set_u64(ss, KW_M_KVM_VM, d->name, v);
			continue;
		}
		if (d->type == KVM_STATS_TYPE_INSTANT) {
			kw_ss_add_u64(ss, KW_M_KVM_VCPU_GAUGE, d->name, v);
		} else if (d->type == KVM_STATS_TYPE_PEAK) {
			const struct kw_sample *s = kw_ss_get(ss, KW_M_KVM_VCPU_GAUGE, d->name);

			if (!s || s->v.u < v)
				kw_ss_set_u64(ss, KW_M_KVM_VCPU_GAUGE, d->name, v);
		} else {
			kw_ss_add_u64(ss, KW_M_KVM_VCPU, d->name, v);
			snprintf(inst, sizeof(inst), "%d.%s", k->vcpu, d->name);
			kw_ss_set_u64(ss, KW_M_KVM_VCPU_EACH, inst, v);
		}
	}
}

/* How many fds the process has open (0: the kernel does not say, -1 error). */
static long fd_count(struct kw_collector *c, pid_t pid)
{
	char path[PATH_MAX];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%d/fd", KW_PROC(c), pid);
	return stat(path, &sb) ? -1 : (long)sb.st_size;
}

static int kvmstat_collect_vm(struct kw_collector *c, void *state, struct kw_vm *vm)
{
	struct kvmstat_state *st = state;
	struct kstat_vm *v;
	struct pollfd pfd;
	int i, need_scan;

	if (vm->pid <= 0)
		return 0;
	v = cache_get(st, vm);
	if (!v)
		return -ENOMEM;
	need_scan = !v->last_scan || (v->nvcpu < vm->nvcpus && c->cycle - v->last_check >= RESCAN_CYCLES);
	if (need_scan && v->last_scan && c->cycle - v->last_scan < RESCAN_IDLE) {
		/* a vCPU's (stats) fd is a new fd: none, no need to look */
		long n = fd_count(c, vm->pid);

		v->last_check = c->cycle;
		need_scan = n <= 0 || n != v->fd_count;
	}
	if (!v->nfds && !need_scan)
		return 0; /* no KVM stats fds (not a KVM VMM, or refused): nothing held, nothing to read */
	if (v->pidfd < 0) {
		v->pidfd = sys_pidfd_open(vm->pid);
		if (v->pidfd < 0)
			return errno == ESRCH ? -ESRCH : errno == EMFILE || errno == ENFILE ? -errno : 0;
		if (!same_process(c, vm)) {
			kvm_close(v);
			return -ESRCH;
		}
	}
	/* The process exited: our fds would keep its VM alive in the kernel. */
	pfd.fd = v->pidfd;
	pfd.events = POLLIN;
	if (poll(&pfd, 1, 0) > 0) {
		kvm_close(v);
		return -ESRCH;
	}
	if (need_scan) {
		v->last_scan = v->last_check = c->cycle;
		v->fd_count = fd_count(c, vm->pid);
		if (scan_vmm(c, st, v, vm) == -ENOMEM)
			return -ENOMEM;
		if (!v->nfds) {
			/* nothing to read: hold no pidfd until the next rescan */
			close(v->pidfd);
			v->pidfd = -1;
			return 0;
		}
	}
	kw_ss_clear(&st->tmp);
	for (i = 0; i < v->nfds; i++) {
		struct kstat_fd *k = &v->fds[i];
		if (kw_kstats_read(&k->ks))
			continue;
		publish(&st->tmp, k);
	}
	/* set, not add: libvirt or QMP may have filled the same rows (the
	 * binary stats win: core/kw_precedence.c) */
	for (i = 0; i < (int)st->tmp.n; i++)
		if (kw_ss_put_u64(&vm->stats, KW_SRC_KVMSTAT, st->tmp.s[i].metric, st->tmp.s[i].inst, st->tmp.s[i].v.u))
			return -ENOMEM;
	return 0;
}

static void kvmstat_fini(struct kw_collector *c, void *state)
{
	struct kvmstat_state *st = state;

	if (!st)
		return;
	kw_vmcache_free(&st->vms, drop_vm);
	kw_ss_free(&st->tmp);
	free(st);
}

const struct kw_source_ops kw_source_kvmstat = {
	.id = KW_SRC_KVMSTAT,
	.name = "kvmstat",
	.init = kvmstat_init,
	.discover = kvmstat_discover,
	.collect_vm = kvmstat_collect_vm,
	.fini = kvmstat_fini,
};
