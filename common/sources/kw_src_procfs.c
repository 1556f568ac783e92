// SPDX-License-Identifier: GPL-2.0
/* kw_src_procfs.c - the /proc + /sys source: finds VMM processes (QEMU by name,
 * any process holding a KVM VM fd), their vCPU threads and tap interfaces,
 * and reads per-VM and host metrics.  Everything is read below the
 * configured procfs/sysfs roots so it runs on fixture trees. */
#include "core/kw_collector.h"
#include "sources/kw_procev.h"
#include "sources/kw_procfs_parse.h"
#include "util/kw_priv.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define STAT_BUF 4096
#define BIG_BUF (256 * 1024)
#define SF(n) KW_SF(n)

/* A process that was checked and is not a VMM: skip its fds next time.
 * Processes younger than RECHECK_TICKS are re-checked (a VMM may create its VM
 * after start-up). */
struct neg_entry {
	pid_t pid;
	uint64_t starttime;
	uint32_t seen_cycle;
	uint32_t comm_hash;     /* an exec changes the name: looked at again */
	uint64_t young_until;   /* re-examined until then (uptime ticks): start-up or exec + RECHECK */
};

static uint32_t comm_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

/* Host network interface counters, read once per cycle from net/dev. */
struct netdev {
	char name[KW_IFNAME_MAX];
	uint64_t v[16];
};

/* What is kept of a VM found in the host's /proc between cycles: its /proc
 * files open (read with pread: an open file stays bound to its process or
 * thread, and once that has exited reads fail with ESRCH even when the id
 * is reused), the stat discovery read this cycle (collection uses it), and
 * when its fd table and threads were last scanned.  The fd table (taps,
 * the KVM fd) is scanned again the cycle after the number of open fds
 * changed (st_size of /proc/PID/fd, Linux >= 6.2), the threads (vCPUs) and
 * cgroup the cycle after the thread count changed or a thread's file
 * failed (it ended: a same-count swap is seen too), and both at least every
 * rescan_cycles cycles (KVMWATCH_RESCAN_CYCLES, default 30; VMs spread over
 * them): an fd swapped for another or a cgroup move is seen within that. */
struct pthr {
	pid_t tid;
	int sched_fd, stat_fd;   /* task/TID/schedstat, task/TID/stat; -1 closed */
};

#define PV_NF 48

struct pvm {
	pid_t pid;
	uint64_t starttime;
	int stat_fd, io_fd, status_fd, statm_fd, fddir_fd;
	int psi_fd[3];           /* cpu, memory, io .pressure of psi_cg */
	char psi_cg[256];
	uint32_t stat_cycle;     /* the cycle f[] was read in (0: none) */
	int nf;
	uint64_t f[PV_NF];
	long fd_count;           /* open fds at the last fd scan (-1 unknown) */
	uint32_t fd_scan, thr_scan; /* cycles of the last scans (0: never) */
	uint64_t nthreads;       /* stat's thread count at the last thread scan */
	int thr_again;           /* scan the threads again next cycle */
	struct pthr *thr;        /* parallel to the VM's threads after a scan */
	int nthr;
	size_t thrcap;
};

struct procfs_state {
	long clk_tck;
	long page_size;
	struct neg_entry *neg;
	size_t nneg, negcap;
	uint32_t cycle;
	uint64_t uptime_ticks;
	int delayacct;             /* kernel.task_delayacct (read each cycle) */
	struct netdev *nd;
	size_t nnd, ndcap;
	char *buf;                 /* BIG_BUF scratch */
	/* Discovery by the kernel's process events (kw_procev.c): after one
	 * full walk of /proc, a cycle looks only at the VMs it knows, the
	 * processes created or exec'd since the last cycle and those still
	 * young enough to create a VM; NULL: every process, every cycle. */
	struct kw_procev *ev;
	int ev_walked;             /* walked /proc since the events started (or were lost) */
	struct dirty { pid_t pid; int exec; } *dirty;
	size_t ndirty, dirtycap;
	uint64_t recheck_ticks;    /* a non-VMM process younger than this is re-examined */
	uint64_t considered;       /* processes looked at in the last discovery (benchmarks) */
	pid_t *filtered;           /* VMMs found but not selected (-p, filters): the collector
	                            * drops them, host.vms still counts them every cycle */
	size_t nfiltered, filteredcap;
	/* kept /proc files (the host's /proc only; fixture trees change under us) */
	int keep;                  /* per-VM state (struct pvm) kept at all */
	struct pvm **pv;           /* open addressing by pid, pv_cap slots */
	size_t npv, pv_cap;
	long nkept, kept_max;      /* open fds kept, and the budget (KVMWATCH_KEEP_FDS) */
	uint32_t rescan_cycles;
	pid_t self;                /* this process: no VMM, and its own fds are many */
	int no_swap;               /* swaps lists no device: VmSwap is 0, status not read */
};

#define DIRTY_MAX 65536          /* more new processes than this in one cycle: walk instead */

/* ------------------------------------------------------- kept files */

/* Read a /proc file (seq_file: one read returns it whole) through *fd:
 * pread when it is open, else opened from the path and kept open while
 * the budget allows (fd NULL: never kept).  As kw_read_file: the bytes
 * read, NUL-terminated, or -errno; a kept fd that fails is closed (its
 * process or thread has exited: ESRCH). */
__attribute__((format(printf, 5, 6)))
static ssize_t kread(struct procfs_state *st, int *fd, char *buf, size_t len, const char *fmt, ...)
{
	int kept = fd && *fd >= 0, f;
	size_t got = 0;

	if (kept) {
		f = *fd;
	} else {
		char path[PATH_MAX];
		va_list ap;
		int n;

		va_start(ap, fmt);
		n = vsnprintf(path, sizeof(path), fmt, ap);
		va_end(ap);
		if (n < 0 || (size_t)n >= sizeof(path))
			return -ENAMETOOLONG;
		f = open(path, O_RDONLY | O_CLOEXEC);
		if (f < 0)
			return -errno;
	}
	while (got < len - 1) {
		size_t want = len - 1 - got;
		ssize_t r = pread(f, buf + got, want, (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;

			close(f);
			if (kept) {
				*fd = -1;
				st->nkept--;
			}
			buf[0] = '\0';
			return -e;
		}
		got += (size_t)r;
		if ((size_t)r < want)
			break; /* a short read is the end of a seq_file */
	}
	buf[got] = '\0';
	if (!kept) {
		if (fd && st->nkept < st->kept_max) {
			*fd = f;
			st->nkept++;
		} else {
			close(f);
		}
	}
	return (ssize_t)got;
}

static void kclose(struct procfs_state *st, int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		st->nkept--;
	}
	*fd = -1;
}

static void pv_close_files(struct procfs_state *st, struct pvm *v)
{
	int i;

	kclose(st, &v->stat_fd);
	kclose(st, &v->io_fd);
	kclose(st, &v->status_fd);
	kclose(st, &v->statm_fd);
	kclose(st, &v->fddir_fd);
	for (i = 0; i < 3; i++)
		kclose(st, &v->psi_fd[i]);
	for (i = 0; i < v->nthr; i++) {
		kclose(st, &v->thr[i].sched_fd);
		kclose(st, &v->thr[i].stat_fd);
	}
}

static void pv_free(struct procfs_state *st, struct pvm *v)
{
	pv_close_files(st, v);
	free(v->thr);
	free(v);
}

static size_t pv_slot(const struct procfs_state *st, pid_t pid)
{
	size_t mask = st->pv_cap - 1, h = ((uint32_t)pid * 2654435761u) & mask;

	while (st->pv[h] && st->pv[h]->pid != pid)
		h = (h + 1) & mask;
	return h;
}

static struct pvm *pv_find(const struct procfs_state *st, pid_t pid)
{
	return st->pv_cap ? st->pv[pv_slot(st, pid)] : NULL;
}

/* Rebuild the table with room for n entries, keeping those for which
 * keep(v) says so (NULL: all); the others are freed. */
static int pv_rehash(struct procfs_state *st, size_t n, int (*keep)(struct procfs_state *, struct pvm *, void *),
		     void *arg)
{
	struct pvm **old = st->pv;
	size_t oldcap = st->pv_cap, cap = 64, i;

	while (cap < n * 2)
		cap *= 2;
	if (!(st->pv = calloc(cap, sizeof(*st->pv)))) {
		st->pv = old;
		return -ENOMEM;
	}
	st->pv_cap = cap;
	st->npv = 0;
	for (i = 0; i < oldcap; i++) {
		struct pvm *v = old[i];

		if (!v)
			continue;
		if (keep && !keep(st, v, arg)) {
			pv_free(st, v);
			continue;
		}
		st->pv[pv_slot(st, v->pid)] = v;
		st->npv++;
	}
	free(old);
	return 0;
}

/* The kept state of a VM (pid, start time), made (or reset: the pid was
 * reused) as needed.  NULL when nothing is kept (fixtures, ENOMEM). */
static struct pvm *pv_get(struct procfs_state *st, pid_t pid, uint64_t starttime)
{
	struct pvm *v;
	int i;

	if (!st->keep)
		return NULL;
	if ((st->npv + 1) * 2 > st->pv_cap && pv_rehash(st, st->npv + 1, NULL, NULL))
		return NULL;
	v = st->pv[pv_slot(st, pid)];
	if (v && v->starttime == starttime)
		return v;
	if (v) {
		pv_close_files(st, v);
		free(v->thr);
	} else if (!(v = malloc(sizeof(*v)))) {
		return NULL;
	} else {
		st->pv[pv_slot(st, pid)] = v;
		st->npv++;
	}
	memset(v, 0, sizeof(*v));
	v->pid = pid;
	v->starttime = starttime;
	v->stat_fd = v->io_fd = v->status_fd = v->statm_fd = v->fddir_fd = -1;
	for (i = 0; i < 3; i++)
		v->psi_fd[i] = -1;
	v->fd_count = -1;
	return v;
}

/* The periodic rescan: every rescan_cycles cycles, VMs spread over them. */
static int pv_due(const struct procfs_state *st, const struct pvm *v)
{
	return (st->cycle + (uint32_t)v->pid) % st->rescan_cycles == 0;
}

static int pv_is_vm(struct procfs_state *st, struct pvm *v, void *arg)
{
	struct kw_collector *c = arg;
	char key[64];

	snprintf(key, sizeof(key), "pid:%d:%llu", v->pid, (unsigned long long)v->starttime);
	return kw_vmt_find_key(&c->vms, key) != NULL;
}

/* Number of fds the process has open: st_size of its fd directory (Linux
 * >= 6.2; 0 before, so only the periodic rescan applies), -1 unknown. */
static long pv_fd_count(struct kw_collector *c, struct procfs_state *st, struct pvm *v)
{
	char path[PATH_MAX];
	struct stat sb;

	snprintf(path, sizeof(path), "%s/%d/fd", KW_PROC(c), v->pid);
	if (v->fddir_fd < 0 && st->nkept < st->kept_max &&
	    (v->fddir_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0)
		st->nkept++;
	if (v->fddir_fd >= 0)
		return fstat(v->fddir_fd, &sb) ? -1 : (long)sb.st_size;
	return stat(path, &sb) ? -1 : (long)sb.st_size;
}

/* After a thread scan: the kept files of threads still there move to
 * their new position, those of threads gone are closed. */
static void pv_sync_threads(struct procfs_state *st, struct pvm *v, const struct kw_vm *vm)
{
	struct pthr *nt = NULL;
	int i, k;

	if (vm->nthreads && !(nt = malloc((size_t)vm->nthreads * sizeof(*nt)))) {
		for (k = 0; k < v->nthr; k++) {
			kclose(st, &v->thr[k].sched_fd);
			kclose(st, &v->thr[k].stat_fd);
		}
		v->nthr = 0; /* read by path this cycle */
		return;
	}
	for (i = 0; i < vm->nthreads; i++) {
		nt[i].tid = vm->threads[i].tid;
		nt[i].sched_fd = nt[i].stat_fd = -1;
		for (k = 0; k < v->nthr; k++)
			if (v->thr[k].tid == nt[i].tid) {
				nt[i] = v->thr[k];
				v->thr[k].sched_fd = v->thr[k].stat_fd = -1;
				break;
			}
	}
	for (k = 0; k < v->nthr; k++) {
		kclose(st, &v->thr[k].sched_fd);
		kclose(st, &v->thr[k].stat_fd);
	}
	free(v->thr);
	v->thr = nt;
	v->nthr = vm->nthreads;
	v->thrcap = (size_t)vm->nthreads;
}

/* The kept files of thread i of vm, NULL when they do not match it. */
static struct pthr *pv_thread(struct pvm *v, const struct kw_vm *vm, int i)
{
	return v && v->nthr == vm->nthreads && v->thr[i].tid == vm->threads[i].tid ? &v->thr[i] : NULL;
}

static struct pvm *pv_of(const struct procfs_state *st, const struct kw_vm *vm)
{
	struct pvm *v = st->keep ? pv_find(st, vm->pid) : NULL;

	return v && v->starttime == vm->starttime ? v : NULL;
}

static uint64_t ticks_to_ns(const struct procfs_state *st, uint64_t t)
{
	return t * (1000000000ull / (uint64_t)st->clk_tck);
}

/* --------------------------------------------------------- host metrics */

static int read_host_stat(struct kw_collector *c, struct procfs_state *st, struct kw_sampleset *ss)
{
	static const int m[] = { KW_M_H_CPU_USER, KW_M_H_CPU_NICE, KW_M_H_CPU_SYSTEM, KW_M_H_CPU_IDLE,
				 KW_M_H_CPU_IOWAIT, KW_M_H_CPU_IRQ, KW_M_H_CPU_SOFTIRQ, KW_M_H_CPU_STEAL,
				 KW_M_H_CPU_GUEST };
	char *buf = st->buf, *p;
	ssize_t r = kw_read_filef(buf, BIG_BUF, "%s/stat", KW_PROC(c));
	unsigned long long v[10] = { 0 };
	uint64_t cpus = 0;
	int n, i;

	if (r < 0)
		return (int)r;
	if (strncmp(buf, "cpu ", 4)) {
		kw_log_once(KW_LOG_WARN, "host-stat-format", "%s/stat: unexpected format, host CPU metrics skipped", KW_PROC(c));
		return -EINVAL;
	}
	n = kw_parse_stat_cpu(buf, v);
	if (n < 0) {
		kw_log_once(KW_LOG_WARN, "host-stat-format", "%s/stat: malformed cpu line, host CPU metrics skipped", KW_PROC(c));
		return -EINVAL;
	}
	for (i = 0; i < n && i < (int)KW_ARRAY_SIZE(m); i++)
		kw_ss_set_u64(ss, m[i], NULL, ticks_to_ns(st, v[i]));
	for (p = buf; (p = strstr(p, "\ncpu")); p += 4)
		if (isdigit((unsigned char)p[4]))
			cpus++;
	kw_ss_set_u64(ss, KW_M_H_CPUS, NULL, cpus);
	return 0;
}

static int read_host_meminfo(struct kw_collector *c, struct procfs_state *st, struct kw_sampleset *ss)
{
	static const struct { const char *k; int m; } map[] = {
		{ "MemTotal", KW_M_H_MEM_TOTAL }, { "MemFree", KW_M_H_MEM_FREE },
		{ "MemAvailable", KW_M_H_MEM_AVAIL }, { "Buffers", KW_M_H_MEM_BUFFERS },
		{ "Cached", KW_M_H_MEM_CACHED }, { "SwapTotal", KW_M_H_MEM_SWAPT },
		{ "SwapFree", KW_M_H_MEM_SWAPF },
	};
	uint64_t v, hp_total, hp_free, hp_size;
	ssize_t r = kw_read_filef(st->buf, BIG_BUF, "%s/meminfo", KW_PROC(c));
	size_t i;

	if (r < 0)
		return (int)r;
	for (i = 0; i < KW_ARRAY_SIZE(map); i++)
		if (kw_parse_kv_field(st->buf, map[i].k, &v) == 0)
			kw_ss_set_u64(ss, map[i].m, NULL, v);
	if (kw_parse_kv_field(st->buf, "HugePages_Total", &hp_total) == 0 &&
	    kw_parse_kv_field(st->buf, "HugePages_Free", &hp_free) == 0 &&
	    kw_parse_kv_field(st->buf, "Hugepagesize", &hp_size) == 0) {
		kw_ss_set_u64(ss, KW_M_H_MEM_HUGET, NULL, hp_total * hp_size);
		kw_ss_set_u64(ss, KW_M_H_MEM_HUGEF, NULL, hp_free * hp_size);
	}
	return 0;
}

/* PSI files for the host (procfs/pressure) or a cgroup (sysfs/fs/cgroup/X);
 * fds: the cpu, memory and io files kept open (NULL: opened each time). */
static void read_psi(struct procfs_state *st, int *fds, const char *dir, const char *suffix, char *buf,
		     struct kw_sampleset *ss, int host)
{
	static const struct { const char *res; const char *kind; int hm; int vm; int vmt; } map[] = {
		{ "cpu", "some", KW_M_H_PSI_CPU_SOME, KW_M_PSI_CPU_SOME, KW_M_PSI_CPU_SOME_T },
		{ "cpu", "full", -1, KW_M_PSI_CPU_FULL, -1 },
		{ "memory", "some", KW_M_H_PSI_MEM_SOME, KW_M_PSI_MEM_SOME, KW_M_PSI_MEM_SOME_T },
		{ "memory", "full", KW_M_H_PSI_MEM_FULL, KW_M_PSI_MEM_FULL, KW_M_PSI_MEM_FULL_T },
		{ "io", "some", KW_M_H_PSI_IO_SOME, KW_M_PSI_IO_SOME, KW_M_PSI_IO_SOME_T },
		{ "io", "full", KW_M_H_PSI_IO_FULL, KW_M_PSI_IO_FULL, KW_M_PSI_IO_FULL_T },
	};
	const char *last = NULL;
	int ok = 0, res = -1;
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(map); i++) {
		double avg;
		uint64_t total;

		if (!last || strcmp(last, map[i].res)) {
			res++;
			ok = kread(st, fds ? &fds[res] : NULL, buf, STAT_BUF, "%s/%s%s", dir, map[i].res, suffix) > 0;
			last = map[i].res;
		}
		if (!ok || kw_parse_psi_line(buf, map[i].kind, &avg, &total))
			continue;
		if (host) {
			if (map[i].hm >= 0)
				kw_ss_set_dbl(ss, map[i].hm, NULL, avg);
		} else {
			kw_ss_set_dbl(ss, map[i].vm, NULL, avg);
			if (map[i].vmt >= 0)
				kw_ss_set_u64(ss, map[i].vmt, NULL, total);
		}
	}
}

static int is_whole_disk(struct kw_collector *c, const char *name, int have_sysblock)
{
	char path[PATH_MAX];

	if (kw_startswith(name, "loop") || kw_startswith(name, "ram") || kw_startswith(name, "zram"))
		return 0;
	if (!have_sysblock)
		return 1;
	snprintf(path, sizeof(path), "%s/block/%s", KW_SYS(c), name);
	return access(path, F_OK) == 0;
}

static int read_host_diskstats(struct kw_collector *c, struct procfs_state *st, struct kw_sampleset *ss)
{
	char path[PATH_MAX], *line, *save = NULL;
	ssize_t r = kw_read_filef(st->buf, BIG_BUF, "%s/diskstats", KW_PROC(c));
	int have_sysblock;

	if (r < 0)
		return (int)r;
	snprintf(path, sizeof(path), "%s/block", KW_SYS(c));
	have_sysblock = access(path, F_OK) == 0;
	for (line = strtok_r(st->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		unsigned long long f[11];

		if (kw_parse_diskstats_line(line, name, sizeof(name), f) || strlen(name) >= KW_INST_MAX ||
		    !is_whole_disk(c, name, have_sysblock))
			continue;
		kw_ss_set_u64(ss, KW_M_H_DISK_READS, name, f[0]);
		kw_ss_set_u64(ss, KW_M_H_DISK_RBYTES, name, f[2] * 512);
		kw_ss_set_u64(ss, KW_M_H_DISK_RTIME, name, f[3]);
		kw_ss_set_u64(ss, KW_M_H_DISK_WRITES, name, f[4]);
		kw_ss_set_u64(ss, KW_M_H_DISK_WBYTES, name, f[6] * 512);
		kw_ss_set_u64(ss, KW_M_H_DISK_WTIME, name, f[7]);
		kw_ss_set_u64(ss, KW_M_H_DISK_INFLIGHT, name, f[8]);
		kw_ss_set_u64(ss, KW_M_H_DISK_IOTIME, name, f[9]);
		kw_ss_set_u64(ss, KW_M_H_DISK_WIOTIME, name, f[10]);
	}
	return 0;
}

/* net/dev columns: rx bytes packets errs drop fifo frame compressed multicast,
 * tx bytes packets errs drop fifo colls carrier compressed */
enum { ND_RXB, ND_RXP, ND_RXE, ND_RXD, ND_TXB = 8, ND_TXP, ND_TXE, ND_TXD };

/* Is the interface up with a carrier?  1, 0, or -1 when sysfs does not
 * say (no such tree, a name that is no plain file name). */
static int link_up(struct kw_collector *c, const char *name)
{
	char buf[32];
	uint64_t flags;

	if (!*name || *name == '.' || strchr(name, '/'))
		return -1;
	if (kw_read_filef(buf, sizeof(buf), "%s/class/net/%s/flags", KW_SYS(c), name) <= 0)
		return -1;
	flags = strtoull(buf, NULL, 16); /* "0x1003" */
	if (!(flags & 1)) /* IFF_UP */
		return 0;
	/* carrier: "1"; reading it fails (EINVAL) while the interface is down */
	return kw_read_filef(buf, sizeof(buf), "%s/class/net/%s/carrier", KW_SYS(c), name) > 0 && buf[0] == '1';
}

static int read_netdev(struct kw_collector *c, struct procfs_state *st)
{
	char *line, *save = NULL;
	ssize_t r = kw_read_filef(st->buf, BIG_BUF, "%s/net/dev", KW_PROC(c));

	st->nnd = 0;
	if (r < 0)
		return (int)r;
	for (line = strtok_r(st->buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct netdev *d;
		char *name;

		if (kw_grow((void **)&st->nd, &st->ndcap, st->nnd, sizeof(*st->nd)))
			return -ENOMEM;
		d = &st->nd[st->nnd];
		if (kw_parse_netdev_line(line, KW_IFNAME_MAX, &name, d->v))
			continue; /* header lines, malformed counters */
		kw_strlcpy(d->name, name, sizeof(d->name));
		st->nnd++;
	}
	return 0;
}

static const struct netdev *find_netdev(const struct procfs_state *st, const char *name)
{
	size_t i;

	for (i = 0; i < st->nnd; i++)
		if (!strcmp(st->nd[i].name, name))
			return &st->nd[i];
	return NULL;
}

static int procfs_collect_host(struct kw_collector *c, void *state, struct kw_sampleset *ss)
{
	struct procfs_state *st = state;
	char dir[PATH_MAX];
	size_t i;
	int r, up, ok = 0;

	r = read_host_stat(c, st, ss);
	if (r == -ENOENT || r == -ENOTDIR)
		return r; /* the procfs root itself is gone */
	ok |= r == 0;
	ok |= read_host_meminfo(c, st, ss) == 0;
	snprintf(dir, sizeof(dir), "%s/pressure", KW_PROC(c));
	read_psi(st, NULL, dir, "", st->buf, ss, 1);
	if (read_host_diskstats(c, st, ss) == -EACCES)
		kw_log_once(KW_LOG_WARN, "host-diskstats", "cannot read %s/diskstats: %s", KW_PROC(c), strerror(EACCES));
	/* net/dev was read by discovery this cycle */
	for (i = 0; i < st->nnd; i++) {
		const struct netdev *d = &st->nd[i];

		if (!strcmp(d->name, "lo"))
			continue;
		kw_ss_set_u64(ss, KW_M_H_NET_RX_BYTES, d->name, d->v[ND_RXB]);
		kw_ss_set_u64(ss, KW_M_H_NET_TX_BYTES, d->name, d->v[ND_TXB]);
		kw_ss_set_u64(ss, KW_M_H_NET_RX_PKTS, d->name, d->v[ND_RXP]);
		kw_ss_set_u64(ss, KW_M_H_NET_TX_PKTS, d->name, d->v[ND_TXP]);
		kw_ss_set_u64(ss, KW_M_H_NET_RX_ERRS, d->name, d->v[ND_RXE]);
		kw_ss_set_u64(ss, KW_M_H_NET_TX_ERRS, d->name, d->v[ND_TXE]);
		kw_ss_set_u64(ss, KW_M_H_NET_RX_DROP, d->name, d->v[ND_RXD]);
		kw_ss_set_u64(ss, KW_M_H_NET_TX_DROP, d->name, d->v[ND_TXD]);
		/* sysfs only where a row asks: discovery reads net/dev with --no-host too */
		if ((up = link_up(c, d->name)) >= 0)
			kw_ss_set_u64(ss, KW_M_H_NET_UP, d->name, (uint64_t)up);
	}
	return ok ? 0 : -EIO;
}

/* ------------------------------------------------------------ discovery */

/* The process's entry: 1 the same process as checked before (*young: still
 * in its re-check window), -1 the pid was reused or it exec'd since (a new
 * window starts), 0 unknown. */
static int neg_lookup(struct procfs_state *st, pid_t pid, uint64_t starttime, const char *comm, int *young)
{
	size_t i;

	*young = 0;
	for (i = 0; i < st->nneg; i++) {
		if (st->neg[i].pid == pid) {
			if (st->neg[i].starttime != starttime || st->neg[i].comm_hash != comm_hash(comm))
				return -1;
			st->neg[i].seen_cycle = st->cycle;
			*young = st->uptime_ticks <= st->neg[i].young_until;
			return 1;
		}
	}
	return 0;
}

static uint64_t neg_young_until(const struct procfs_state *st, pid_t pid)
{
	size_t i;

	for (i = 0; i < st->nneg; i++)
		if (st->neg[i].pid == pid)
			return st->neg[i].young_until;
	return 0;
}

/* Remember a process that is no VMM (yet): re-examined until young_until. */
static void neg_add(struct procfs_state *st, pid_t pid, uint64_t starttime, const char *comm, uint64_t young_until)
{
	size_t i;

	for (i = 0; i < st->nneg; i++)
		if (st->neg[i].pid == pid)
			break;
	if (i == st->nneg) {
		if (kw_grow((void **)&st->neg, &st->negcap, st->nneg, sizeof(*st->neg)))
			return;
		st->nneg++;
	}
	st->neg[i].pid = pid;
	st->neg[i].starttime = starttime;
	st->neg[i].seen_cycle = st->cycle;
	st->neg[i].comm_hash = comm_hash(comm);
	st->neg[i].young_until = young_until;
}

static void neg_expire(struct procfs_state *st)
{
	size_t i = 0;

	while (i < st->nneg) {
		if (st->neg[i].seen_cycle != st->cycle)
			st->neg[i] = st->neg[--st->nneg];
		else
			i++;
	}
}

/* Scan /proc/PID/fd: does it hold a KVM VM fd, and which tap devices does it
 * hold (fdinfo "iff:" of /dev/net/tun fds)?  Returns 1 if a kvm-vm fd was
 * seen, 0 if not, -errno if the fd directory is unreadable. */
static int scan_fds(struct kw_collector *c, pid_t pid, struct kw_vm *vm, char *buf)
{
	char path[PATH_MAX], link[256];
	struct dirent *de;
	int kvm = 0;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/fd", KW_PROC(c), pid);
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		ssize_t n;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%d/fd/%s", KW_PROC(c), pid, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = '\0';
		if (!strcmp(link, "anon_inode:kvm-vm")) {
			kvm = 1;
		} else if (vm && !strcmp(link, "/dev/net/tun")) {
			const char *iff;

			if (kw_read_filef(buf, STAT_BUF, "%s/%d/fdinfo/%s", KW_PROC(c), pid, de->d_name) <= 0)
				continue;
			iff = strstr(buf, "iff:");
			if (iff) {
				char name[KW_IFNAME_MAX];
				size_t len;

				iff += 4;
				while (*iff == ' ' || *iff == '\t')
					iff++;
				len = strcspn(iff, "\n \t");
				if (len && len < sizeof(name)) {
					memcpy(name, iff, len);
					name[len] = '\0';
					kw_vm_add_netif(vm, name);
				}
			}
		}
	}
	closedir(d);
	return kvm;
}

/* Proxmox names taps tap<VMID>i<N>. */
static void add_pve_taps(struct procfs_state *st, struct kw_vm *vm)
{
	char pre[32];
	size_t i, pl;

	if (vm->pve_id < 0)
		return;
	pl = (size_t)snprintf(pre, sizeof(pre), "tap%di", vm->pve_id);
	for (i = 0; i < st->nnd; i++) {
		const char *n = st->nd[i].name;
		if (!strncmp(n, pre, pl) && isdigit((unsigned char)n[pl]))
			kw_vm_add_netif(vm, n);
	}
}

/* Read the threads of a VM: which are vCPUs. */
static int scan_threads(struct kw_collector *c, struct kw_vm *vm, char *buf)
{
	char path[PATH_MAX];
	struct kw_thread *old = NULL;
	struct dirent *de;
	int nold = vm->nthreads, i, k;
	DIR *d;

	snprintf(path, sizeof(path), "%s/%d/task", KW_PROC(c), vm->pid);
	d = opendir(path);
	if (!d)
		return -errno;
	/* what each thread had accumulated (block I/O delay) survives the rescan */
	if (nold && !(old = malloc((size_t)nold * sizeof(*old)))) {
		closedir(d);
		return -ENOMEM;
	}
	if (nold)
		memcpy(old, vm->threads, (size_t)nold * sizeof(*old));
	vm->nthreads = vm->nvcpus = 0;
	while ((de = readdir(d))) {
		long tid;

		if (kw_parse_int(de->d_name, 1, INT32_MAX, &tid))
			continue;
		if (kw_read_filef(buf, 256, "%s/%d/task/%ld/comm", KW_PROC(c), vm->pid, tid) < 0)
			continue; /* thread exited */
		buf[strcspn(buf, "\n")] = '\0';
		if (kw_vm_add_thread(vm, (pid_t)tid, kw_vcpu_from_comm(buf))) {
			closedir(d);
			free(old);
			return -ENOMEM;
		}
	}
	closedir(d);
	for (i = 0; i < vm->nthreads; i++)
		for (k = 0; k < nold; k++)
			if (old[k].tid == vm->threads[i].tid) {
				vm->threads[i].blkio_last = old[k].blkio_last;
				break;
			}
	free(old);
	return 0;
}

static void read_cgroup(struct kw_collector *c, struct kw_vm *vm, char *buf)
{
	const char *p;

	vm->cgroup[0] = '\0';
	if (kw_read_filef(buf, STAT_BUF, "%s/%d/cgroup", KW_PROC(c), vm->pid) <= 0)
		return;
	/* cgroup v2 line: "0::/path" */
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (kw_startswith(p, "0::")) {
			size_t len = strcspn(p + 3, "\n");
			if (len < sizeof(vm->cgroup)) {
				memcpy(vm->cgroup, p + 3, len);
				vm->cgroup[len] = '\0';
			}
			return;
		}
	}
}

/* Look at one /proc entry; add it to the VM table if it is a VMM. */
/* Look at one process: a VMM (new or known)?  force: it exec'd since the
 * last look, whatever the negative cache says. */
static int consider_pid(struct kw_collector *c, struct procfs_state *st, pid_t pid, int force)
{
	char *buf = st->buf, comm[64], key[64];
	uint64_t f[64];
	ssize_t r;
	int n, neg, kvmfd = 0, is_qemu, young = 0;
	uint64_t young_until = 0;
	struct kw_vm tmp, *vm;
	struct pvm *pv = st->keep ? pv_find(st, pid) : NULL;
	long fdn;

	if (pid == st->self)
		return 0;
	st->considered++;
	r = -1;
	if (pv && pv->stat_fd >= 0)
		r = kread(st, &pv->stat_fd, buf, STAT_BUF, "-"); /* fails (ESRCH) once it has exited */
	if (r <= 0)
		r = kw_read_filef(buf, STAT_BUF, "%s/%d/stat", KW_PROC(c), pid);
	if (r == -EMFILE || r == -ENFILE) {
		/* out of fds is not "gone": a VM we know stays */
		kw_collector_fd_exhausted((int)-r, KW_PROC(c));
		if ((vm = kw_vmt_find_pid(&c->vms, pid)))
			vm->seen = 1;
		return 0;
	}
	if (r <= 0)
		return 0; /* gone, or kernel thread noise */
	n = kw_parse_pid_stat(buf, comm, sizeof(comm), f, 64);
	if (n < SF(22) + 1) {
		kw_log_once(KW_LOG_WARN, "malformed-stat", "%s/%d/stat: malformed, process skipped", KW_PROC(c), pid);
		return 0;
	}
	snprintf(key, sizeof(key), "pid:%d:%llu", pid, (unsigned long long)f[SF(22)]);

	/* Known VM: keep its identity, refresh threads/taps below. */
	vm = kw_vmt_find_key(&c->vms, key);
	if (!vm) {
		neg = neg_lookup(st, pid, f[SF(22)], comm, &young);
		if (neg == 1 && !force && !young)
			return 0;
		/* the window to create a VM: from start-up, or from an exec seen
		 * (an exec event, or a new name under the same start time) */
		if (force || neg == -1)
			young_until = st->uptime_ticks + st->recheck_ticks;
		else if (neg == 0)
			young_until = f[SF(22)] + st->recheck_ticks;
		else
			young_until = st->uptime_ticks; /* still young: keep it (set below) */
		memset(&tmp, 0, sizeof(tmp));
		tmp.pve_id = -1;
		tmp.dom_id = -1;
		r = kw_read_filef(buf, BIG_BUF, "%s/%d/cmdline", KW_PROC(c), pid);
		is_qemu = r > 0 && kw_parse_qemu_cmdline(buf, (size_t)r, &tmp);
		is_qemu |= kw_is_qemu_name(comm);
		if (!is_qemu) {
			/* Kernel threads have an empty cmdline and cannot be VMMs. */
			if (r <= 0) {
				neg_add(st, pid, f[SF(22)], comm, neg == 1 ? neg_young_until(st, pid) : young_until);
				kw_vm_free(&tmp);
				return 0;
			}
			kvmfd = scan_fds(c, pid, NULL, buf);
			if (kvmfd <= 0) {
				neg_add(st, pid, f[SF(22)], comm, neg == 1 ? neg_young_until(st, pid) : young_until);
				kw_vm_free(&tmp);
				return 0;
			}
		}
		vm = kw_vmt_add(&c->vms);
		if (!vm) {
			kw_vm_free(&tmp);
			return -ENOMEM;
		}
		*vm = tmp;
		kw_strlcpy(vm->key, key, sizeof(vm->key));
		vm->pid = pid;
		vm->starttime = f[SF(22)];
		kw_strlcpy(vm->vmm, comm, sizeof(vm->vmm));
		vm->found |= is_qemu ? KW_FOUND_PROC : 0;
		vm->found |= kvmfd > 0 ? KW_FOUND_KVMFD : 0;
		vm->first_seen_ns = kw_now_mono_ns();
		if (!vm->name[0])
			snprintf(vm->name, sizeof(vm->name), "%s-%d", comm, pid);
	}
	vm->seen = 1;
	if (!kw_collector_wants(c, vm)) {
		/* not selected (-p, filters): counted in host.vms/vcpus only */
		if (!kw_grow((void **)&st->filtered, &st->filteredcap, st->nfiltered, sizeof(*st->filtered)))
			st->filtered[st->nfiltered++] = pid;
		return scan_threads(c, vm, buf) == -ENOMEM ? -ENOMEM : 0;
	}
	/* What is kept of it: this stat for collection, its files open. */
	if ((pv = pv_get(st, pid, vm->starttime))) {
		pv->nf = n < PV_NF ? n : PV_NF;
		memcpy(pv->f, f, (size_t)pv->nf * sizeof(*f));
		pv->stat_cycle = st->cycle;
		if (pv->stat_fd < 0)
			kread(st, &pv->stat_fd, buf, STAT_BUF, "%s/%d/stat", KW_PROC(c), pid);
	}
	/* Taps: fds (root), the command line (already parsed), Proxmox naming.
	 * The fd table again only when the number of fds changed, or after
	 * rescan_cycles (a tap, a KVM fd are new fds). */
	fdn = pv ? pv_fd_count(c, st, pv) : -1;
	if (!pv || !pv->fd_scan || fdn != pv->fd_count || pv_due(st, pv)) {
		r = scan_fds(c, pid, vm, buf);
		if (r == -EACCES || r == -EPERM)
			kw_log_once(KW_LOG_WARN, "fd-eacces",
				    "cannot read %s/%d/fd (%s): tap interfaces passed as file descriptors are not "
				    "attributed (run as root)", KW_PROC(c), pid, strerror((int)-r));
		else if (r > 0)
			vm->found |= KW_FOUND_KVMFD;
		if (pv) {
			pv->fd_scan = st->cycle;
			pv->fd_count = fdn;
		}
	}
	add_pve_taps(st, vm);
	/* Threads and cgroup again when the thread count changed (and the
	 * cycle after: a new thread names itself once it runs), a thread's
	 * file failed, or after rescan_cycles. */
	if (!pv || !pv->thr_scan || pv->thr_again || f[SF(20)] != pv->nthreads ||
	    pv_due(st, pv)) {
		if (scan_threads(c, vm, buf) == -ENOMEM)
			return -ENOMEM;
		read_cgroup(c, vm, buf);
		if (pv) {
			pv->thr_again = pv->thr_scan && f[SF(20)] != pv->nthreads;
			pv->thr_scan = st->cycle;
			pv->nthreads = f[SF(20)];
			pv_sync_threads(st, pv, vm);
		}
	}
	return 0;
}

/* Look at pid this cycle (exec: it exec'd since the last look). */
static int dirty_add(struct procfs_state *st, pid_t pid, int exec)
{
	if (kw_grow((void **)&st->dirty, &st->dirtycap, st->ndirty, sizeof(*st->dirty)))
		return -ENOMEM;
	st->dirty[st->ndirty].pid = pid;
	st->dirty[st->ndirty++].exec = exec;
	return 0;
}

static void on_procev(pid_t pid, int what, void *arg)
{
	struct procfs_state *st = arg;

	if (what == KW_PROCEV_EXIT || !st->ev_walked)
		return; /* an exited VM is not seen again; before the walk, the walk sees all */
	if (st->ndirty >= DIRTY_MAX || dirty_add(st, pid, what == KW_PROCEV_EXEC)) {
		st->ev_walked = 0; /* a fork storm (or no memory): walk /proc once more instead */
		st->ndirty = 0;
	}
}

static int dirty_cmp(const void *pa, const void *pb)
{
	const struct dirty *a = pa, *b = pb;

	return a->pid != b->pid ? (a->pid < b->pid ? -1 : 1) : b->exec - a->exec;
}

/* A cycle with process events: the known VMs, the processes new or
 * exec'd since the last cycle, and the young ones not yet VMMs. */
static int discover_by_events(struct kw_collector *c, struct procfs_state *st)
{
	size_t i;
	int r = 0;

	for (i = 0; i < c->vms.n && r == 0; i++)
		if (c->vms.vms[i].pid > 0 && (c->vms.vms[i].found & (KW_FOUND_PROC | KW_FOUND_KVMFD)))
			r = dirty_add(st, c->vms.vms[i].pid, 0);
	for (i = 0; i < st->nneg && r == 0; i++)
		if (st->uptime_ticks <= st->neg[i].young_until)
			r = dirty_add(st, st->neg[i].pid, 0);
	/* the VMMs not selected, known only here (they are noted again below) */
	for (i = 0; i < st->nfiltered && r == 0; i++)
		r = dirty_add(st, st->filtered[i], 0);
	st->nfiltered = 0;
	/* each pid once, an exec first */
	if (st->ndirty > 1)
		qsort(st->dirty, st->ndirty, sizeof(*st->dirty), dirty_cmp);
	for (i = 0; i < st->ndirty && r == 0; i++)
		if (i == 0 || st->dirty[i].pid != st->dirty[i - 1].pid)
			r = consider_pid(c, st, st->dirty[i].pid, st->dirty[i].exec);
	st->ndirty = 0;
	return r;
}

static int procfs_discover(struct kw_collector *c, void *state)
{
	struct procfs_state *st = state;
	char path[PATH_MAX], buf[128];
	struct dirent *de;
	DIR *d;
	int r = 0;

	st->cycle++;
	st->considered = 0;
	if (st->ev) {
		r = kw_procev_drain(st->ev, on_procev, st);
		if (r == -ENOBUFS) {
			kw_debug("process events were lost: walking %s", KW_PROC(c));
			st->ev_walked = 0;
			st->ndirty = 0;
		} else if (r < 0) {
			kw_warn("process events failed (%s): VMs are found by walking %s every cycle", strerror(-r),
				KW_PROC(c));
			kw_procev_close(st->ev);
			st->ev = NULL;
		}
		r = 0;
	}
	read_netdev(c, st);
	if (st->keep) {
		/* the kept state of VMs that left the table goes (their files close) */
		if (st->npv && pv_rehash(st, st->npv, pv_is_vm, c) == -ENOMEM)
			return -ENOMEM;
		/* "Filename Type Size Used Priority" and a line per swap device */
		const char *nl = kw_read_filef(st->buf, STAT_BUF, "%s/swaps", KW_PROC(c)) > 0 ? strchr(st->buf, '\n') : NULL;

		st->no_swap = nl && !nl[1];
	}
	if (kw_read_filef(buf, sizeof(buf), "%s/uptime", KW_PROC(c)) > 0)
		st->uptime_ticks = (uint64_t)(strtod(buf, NULL) * (double)st->clk_tck);
	/* absent (old kernels: delay accounting always on when built in) counts as on */
	st->delayacct = !(kw_read_filef(buf, sizeof(buf), "%s/sys/kernel/task_delayacct", KW_PROC(c)) > 0 &&
			  buf[0] == '0');
	if (st->delayacct)
		kw_log_forget("delayacct-off");
	if (c->cfg.npids && !c->cfg.nnames && c->cfg.no_host) {
		size_t i;
		/* Only the requested pids: no full /proc walk (with host totals
		 * the walk is needed anyway: host.vms counts every VM). */
		for (i = 0; i < c->cfg.npids && r == 0; i++)
			r = consider_pid(c, st, c->cfg.pids[i], 0);
		st->ndirty = 0;
		return r;
	}
	if (st->ev && st->ev_walked) {
		r = discover_by_events(c, st);
		neg_expire(st); /* old non-VMMs leave the cache: their exec is an event */
		return r;
	}
	st->ndirty = 0;
	st->nfiltered = 0;
	snprintf(path, sizeof(path), "%s", KW_PROC(c));
	d = opendir(path);
	if (!d)
		return -errno;
	while ((de = readdir(d)) && r == 0) {
		long pid;

		if (!isdigit((unsigned char)de->d_name[0]) || kw_parse_int(de->d_name, 1, INT32_MAX, &pid))
			continue;
		r = consider_pid(c, st, (pid_t)pid, 0);
	}
	closedir(d);
	neg_expire(st);
	if (st->ev && r == 0)
		st->ev_walked = 1;
	return r;
}

/* ------------------------------------------------------- per-VM metrics */

/* Block I/O delay of the whole VM process.  /proc/PID/stat's field 42 is
 * the main thread's only, and QEMU does its I/O in worker threads: every
 * thread is read and what each adds is accumulated, so threads that end
 * (QEMU's pool workers do) lose nothing.  Needs delay accounting
 * (kernel.task_delayacct, often 0): said once, and no value instead of 0. */
static void read_thread_blkio(struct kw_collector *c, struct procfs_state *st, struct kw_vm *vm, struct pvm *pv)
{
	uint64_t f[48];
	char comm[64];
	int i, have = 0;

	if (!st->delayacct) {
		kw_log_once(KW_LOG_WARN, "delayacct-off",
			    "delay accounting is off (kernel.task_delayacct = 0): per-VM block I/O wait (IOW, "
			    "io.blkio_delay) is not measured; enable it with 'sysctl kernel.task_delayacct=1' or "
			    "the 'delayacct' boot parameter");
		return;
	}
	for (i = 0; i < vm->nthreads; i++) {
		struct kw_thread *t = &vm->threads[i];
		struct pthr *pt = pv_thread(pv, vm, i);

		if (kread(st, pt ? &pt->stat_fd : NULL, st->buf, STAT_BUF, "%s/%d/task/%d/stat", KW_PROC(c), vm->pid,
			  t->tid) <= 0 ||
		    kw_parse_pid_stat(st->buf, comm, sizeof(comm), f, 48) <= SF(42)) {
			if (pv)
				pv->thr_again = 1;
			continue; /* thread exited since the scan */
		}
		have = 1;
		if (f[SF(42)] >= t->blkio_last)
			vm->blkio_ticks += f[SF(42)] - t->blkio_last;
		t->blkio_last = f[SF(42)];
	}
	if (have)
		kw_ss_set_u64(&vm->stats, KW_M_IO_DELAY, NULL, ticks_to_ns(st, vm->blkio_ticks));
}

static void read_thread_schedstats(struct kw_collector *c, struct procfs_state *st, struct kw_vm *vm,
				   struct pvm *pv)
{
	uint64_t vrun = 0, vdelay = 0, orun = 0, odelay = 0, slices = 0;
	int i, have = 0;

	for (i = 0; i < vm->nthreads; i++) {
		const struct kw_thread *t = &vm->threads[i];
		struct pthr *pt = pv_thread(pv, vm, i);
		unsigned long long run, delay, sl;
		char inst[16];

		if (kread(st, pt ? &pt->sched_fd : NULL, st->buf, 256, "%s/%d/task/%d/schedstat", KW_PROC(c), vm->pid,
			  t->tid) <= 0) {
			if (pv)
				pv->thr_again = 1; /* the threads are scanned again next cycle */
			continue; /* thread exited since the scan */
		}
		if (sscanf(st->buf, "%llu %llu %llu", &run, &delay, &sl) != 3)
			continue;
		have = 1;
		slices += sl;
		if (t->vcpu >= 0) {
			vrun += run;
			vdelay += delay;
			snprintf(inst, sizeof(inst), "%d", t->vcpu);
			kw_ss_set_u64(&vm->stats, KW_M_VCPU_RUN, inst, run);
			kw_ss_set_u64(&vm->stats, KW_M_VCPU_DELAY, inst, delay);
		} else {
			orun += run;
			odelay += delay;
		}
	}
	if (!have)
		return;
	kw_ss_set_u64(&vm->stats, KW_M_CPU_VCPU, NULL, vrun);
	kw_ss_set_u64(&vm->stats, KW_M_STEAL_VCPU, NULL, vdelay);
	kw_ss_set_u64(&vm->stats, KW_M_CPU_OTHER, NULL, orun);
	kw_ss_set_u64(&vm->stats, KW_M_STEAL_OTHER, NULL, odelay);
	kw_ss_set_u64(&vm->stats, KW_M_TIMESLICES, NULL, slices);
}

static void read_pid_io(struct kw_collector *c, struct procfs_state *st, struct kw_vm *vm, struct pvm *pv)
{
	static const struct { const char *k; int m; } map[] = {
		{ "rchar", KW_M_IO_RCHAR }, { "wchar", KW_M_IO_WCHAR }, { "syscr", KW_M_IO_SYSCR },
		{ "syscw", KW_M_IO_SYSCW }, { "read_bytes", KW_M_IO_RBYTES }, { "write_bytes", KW_M_IO_WBYTES },
		{ "cancelled_write_bytes", KW_M_IO_CWBYTES },
	};
	ssize_t r = kread(st, pv ? &pv->io_fd : NULL, st->buf, STAT_BUF, "%s/%d/io", KW_PROC(c), vm->pid);
	size_t i;
	uint64_t v;

	if (r == -EACCES || r == -EPERM) {
		kw_log_once(KW_LOG_WARN, "pid-io-eacces",
			    "cannot read %s/%d/io (%s): per-VM I/O metrics need root", KW_PROC(c), vm->pid,
			    strerror((int)-r));
		return;
	}
	if (r <= 0)
		return;
	for (i = 0; i < KW_ARRAY_SIZE(map); i++)
		if (kw_parse_kv_field(st->buf, map[i].k, &v) == 0)
			kw_ss_set_u64(&vm->stats, map[i].m, NULL, v);
}

static void read_vm_net(struct kw_collector *c, struct procfs_state *st, struct kw_vm *vm)
{
	int i, up;

	for (i = 0; i < vm->nnetifs; i++) {
		const struct netdev *d = find_netdev(st, vm->netifs[i].name);
		const char *n = vm->netifs[i].name;

		if (!d)
			continue;
		/* A tap's receive is the guest's transmit. */
		kw_ss_set_u64(&vm->stats, KW_M_NET_RX_BYTES, n, d->v[ND_TXB]);
		kw_ss_set_u64(&vm->stats, KW_M_NET_TX_BYTES, n, d->v[ND_RXB]);
		kw_ss_set_u64(&vm->stats, KW_M_NET_RX_PKTS, n, d->v[ND_TXP]);
		kw_ss_set_u64(&vm->stats, KW_M_NET_TX_PKTS, n, d->v[ND_RXP]);
		kw_ss_set_u64(&vm->stats, KW_M_NET_RX_ERRS, n, d->v[ND_TXE]);
		kw_ss_set_u64(&vm->stats, KW_M_NET_TX_ERRS, n, d->v[ND_RXE]);
		kw_ss_set_u64(&vm->stats, KW_M_NET_RX_DROP, n, d->v[ND_TXD]);
		kw_ss_set_u64(&vm->stats, KW_M_NET_TX_DROP, n, d->v[ND_RXD]);
		if ((up = link_up(c, n)) >= 0)
			kw_ss_set_u64(&vm->stats, KW_M_NET_UP, n, (uint64_t)up);
	}
}

static int procfs_collect_vm(struct kw_collector *c, void *state, struct kw_vm *vm)
{
	struct procfs_state *st = state;
	uint64_t f[64], v;
	struct pvm *pv;
	ssize_t r;
	int n;

	if (vm->pid <= 0)
		return 0;
	pv = pv_of(st, vm);
	if (pv && pv->stat_cycle == st->cycle) {
		/* read by discovery this cycle */
		n = pv->nf;
		memcpy(f, pv->f, (size_t)n * sizeof(*f));
	} else {
		r = kread(st, pv ? &pv->stat_fd : NULL, st->buf, STAT_BUF, "%s/%d/stat", KW_PROC(c), vm->pid);
		if (r == -EMFILE || r == -ENFILE)
			return (int)r; /* said by the collector; the VM stays */
		if (r == -ENOENT || r == -ESRCH || r == 0)
			return -ENOENT;
		if (r < 0)
			return (int)r;
		n = kw_parse_pid_stat(st->buf, NULL, 0, f, 64);
	}
	if (n < SF(24) + 1) {
		kw_log_once(KW_LOG_WARN, "malformed-stat", "%s/%d/stat: malformed, process skipped", KW_PROC(c), vm->pid);
		return -EINVAL;
	}
	if (f[SF(22)] != vm->starttime)
		return -ENOENT; /* pid reused by another process */
	kw_ss_set_u64(&vm->stats, KW_M_CPU_USER, NULL, ticks_to_ns(st, f[SF(14)]));
	kw_ss_set_u64(&vm->stats, KW_M_CPU_SYSTEM, NULL, ticks_to_ns(st, f[SF(15)]));
	kw_ss_set_u64(&vm->stats, KW_M_MINFLT, NULL, f[SF(10)]);
	kw_ss_set_u64(&vm->stats, KW_M_MAJFLT, NULL, f[SF(12)]);
	kw_ss_set_u64(&vm->stats, KW_M_THREADS, NULL, f[SF(20)]);
	kw_ss_set_u64(&vm->stats, KW_M_MEM_VSIZE, NULL, f[SF(23)]);
	kw_ss_set_u64(&vm->stats, KW_M_MEM_RSS, NULL, f[SF(24)] * (uint64_t)st->page_size);
	if (n > SF(43))
		kw_ss_set_u64(&vm->stats, KW_M_CPU_GUEST, NULL, ticks_to_ns(st, f[SF(43)]));
	kw_ss_set_u64(&vm->stats, KW_M_VCPUS, NULL, (uint64_t)vm->nvcpus);

	/* status for VmSwap and VmRSS (stat's RSS is approximate); without swap
	 * devices VmSwap is 0 and statm's resident is VmRSS (the same counters),
	 * an eighth of the cost */
	if (pv && st->no_swap) {
		unsigned long long pages;

		if (kread(st, &pv->statm_fd, st->buf, 256, "%s/%d/statm", KW_PROC(c), vm->pid) > 0 &&
		    sscanf(st->buf, "%*u %llu", &pages) == 1)
			kw_ss_set_u64(&vm->stats, KW_M_MEM_RSS, NULL, (uint64_t)pages * (uint64_t)st->page_size);
		kw_ss_set_u64(&vm->stats, KW_M_MEM_SWAP, NULL, 0);
	} else if (kread(st, pv ? &pv->status_fd : NULL, st->buf, STAT_BUF, "%s/%d/status", KW_PROC(c), vm->pid) > 0) {
		if (kw_parse_kv_field(st->buf, "VmRSS", &v) == 0)
			kw_ss_set_u64(&vm->stats, KW_M_MEM_RSS, NULL, v);
		if (kw_parse_kv_field(st->buf, "VmSwap", &v) == 0)
			kw_ss_set_u64(&vm->stats, KW_M_MEM_SWAP, NULL, v);
	}
	read_pid_io(c, st, vm, pv);
	read_thread_schedstats(c, st, vm, pv);
	read_thread_blkio(c, st, vm, pv);
	read_vm_net(c, st, vm);
	if (vm->cgroup[0] && strcmp(vm->cgroup, "/")) {
		char dir[PATH_MAX];
		int *fds = NULL;

		if (pv) {
			if (strcmp(pv->psi_cg, vm->cgroup)) { /* moved: the old cgroup's files are closed */
				for (int i = 0; i < 3; i++)
					kclose(st, &pv->psi_fd[i]);
				kw_strlcpy(pv->psi_cg, vm->cgroup, sizeof(pv->psi_cg));
			}
			fds = pv->psi_fd;
		}
		snprintf(dir, sizeof(dir), "%s/fs/cgroup%s", KW_SYS(c), vm->cgroup);
		read_psi(st, fds, dir, ".pressure", st->buf, &vm->stats, 0);
	}
	return 0;
}

/* ------------------------------------------------------------ lifecycle */

/* /proc mounted hidepid=1/2 (invisible/noaccess/ptraceable) hides other
 * users' processes: a kvmwatch without CAP_SYS_PTRACE (and not in the
 * mount's gid= group) would report "0 VMs" and nothing else.  Said once,
 * with what to do. */
static void check_hidepid(const struct kw_collector *c)
{
	char line[4096], root[PATH_MAX];
	FILE *f;

	if (kw_priv_has(KW_CAP_SYS_PTRACE) || !realpath(KW_PROC(c), root))
		return;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX], *sep, *opts, *h, *g;
		long gid = -1;

		/* id parent maj:min root mountpoint opts ... - fstype source superopts */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) != 1 || strcmp(mnt, root) ||
		    !(sep = strstr(line, " - proc ")))
			continue;
		opts = strchr(sep + 8, ' ');
		if (!opts || !(h = strstr(opts, "hidepid=")))
			continue;
		h += 8;
		if (!strncmp(h, "0", 1) || !strncmp(h, "off", 3))
			continue;
		if ((g = strstr(opts, "gid=")))
			gid = strtol(g + 4, NULL, 10);
		if (gid >= 0) {
			gid_t groups[256];
			int n = getgroups(256, groups), i;

			if (getegid() == (gid_t)gid)
				continue;
			for (i = 0; i < n; i++)
				if (groups[i] == (gid_t)gid)
					break;
			if (n > 0 && i < n)
				continue;
		}
		kw_log_once(KW_LOG_WARN, "hidepid", "%s is mounted with hidepid=%.*s: other users' processes (their "
			    "VMs) are invisible to this user; run as root, with CAP_SYS_PTRACE, or in the mount's gid= "
			    "group", root, (int)strcspn(h, ", \n"), h);
		break;
	}
	fclose(f);
}

static int procfs_init(struct kw_collector *c, void **state, char *why, size_t whylen)
{
	struct procfs_state *st = calloc(1, sizeof(*st));

	if (!st || !(st->buf = malloc(BIG_BUF))) {
		free(st);
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	st->self = getpid();
	st->clk_tck = sysconf(_SC_CLK_TCK);
	if (st->clk_tck <= 0)
		st->clk_tck = 100;
	st->page_size = sysconf(_SC_PAGESIZE);
	if (st->page_size <= 0)
		st->page_size = 4096;
	check_hidepid(c);
	{
		const char *k = kw_getenv("KVMWATCH_KEEP_FDS"), *rc = kw_getenv("KVMWATCH_RESCAN_CYCLES");
		struct rlimit rl;
		long v;

		/* The host's /proc only: files of a fixture tree are replaced under us. */
		st->keep = !strcmp(KW_PROC(c), "/proc");
		/* the collector raised the soft limit to the hard one: half of it
		 * (about 4.5 KiB of kernel memory each: the file, a seq_file page) */
		st->kept_max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
				       rl.rlim_cur >= 2048 ? (long)(rl.rlim_cur / 2) : rl.rlim_cur == RLIM_INFINITY ? 65536 : 0;
		if (k && kw_parse_int(k, 0, 1L << 30, &v) == 0 && v < st->kept_max)
			st->kept_max = v;
		st->rescan_cycles = 30;
		if (rc && kw_parse_int(rc, 1, 1000000, &v) == 0)
			st->rescan_cycles = (uint32_t)v;
	}
	{
		const char *v = kw_getenv("KVMWATCH_RECHECK_S"), *e = kw_getenv("KVMWATCH_PROC_EVENTS");
		long s = 30;
		char ewhy[160];

		if (v && kw_parse_int(v, 0, 3600, &s))
			s = 30;
		st->recheck_ticks = (uint64_t)s * (uint64_t)st->clk_tck;
		/* the host's own /proc only: the events name the host's pids */
		if (!strcmp(KW_PROC(c), "/proc") && !(e && !strcmp(e, "0"))) {
			if (kw_procev_open(&st->ev, ewhy, sizeof(ewhy)) == 0 && kw_procev_check(st->ev, 200) < 0) {
				kw_strlcpy(ewhy, "the proc connector delivers no events here", sizeof(ewhy));
				kw_procev_close(st->ev);
				st->ev = NULL;
			}
			if (st->ev)
				kw_debug("VMs are found from the kernel's process events (proc connector)");
			else
				kw_debug("%s: VMs are found by walking /proc every cycle", ewhy);
		}
	}
	*state = st;
	return 0;
}

static void procfs_fini(struct kw_collector *c, void *state)
{
	struct procfs_state *st = state;

	if (!st)
		return;
	kw_procev_close(st->ev);
	for (size_t i = 0; i < st->pv_cap; i++)
		if (st->pv[i])
			pv_free(st, st->pv[i]);
	free(st->pv);
	free(st->dirty);
	free(st->filtered);
	free(st->neg);
	free(st->nd);
	free(st->buf);
	free(st);
}

const struct kw_source_ops kw_source_procfs = {
	.id = KW_SRC_PROC,
	.name = "procfs",
	.flags = KW_SRC_F_PROCESSES,
	.init = procfs_init,
	.discover = procfs_discover,
	.collect_host = procfs_collect_host,
	.collect_vm = procfs_collect_vm,
	.fini = procfs_fini,
};
