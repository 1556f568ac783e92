// SPDX-License-Identifier: GPL-2.0
/* kw_collector.c - runs the sources in order each cycle and keeps the VM table. */
#include "core/kw_collector.h"
#include "sources/kw_sources.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* Every source, in the order they run: discovery merges later sources' VMs
 * into the ones procfs found. */
static const struct kw_source_ops *const sources[] = {
	&kw_source_procfs,
	&kw_source_libvirt,
	&kw_source_kvmstat,
	&kw_source_bpf,
	&kw_source_qmp,
};

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		kw_debug("cannot raise the open-files limit: %s", strerror(errno));
}

void kw_collector_fd_exhausted(int e, const char *what)
{
	/* loud, and never taken for a VM that went away */
	kw_log_once(KW_LOG_ERR, "fd-exhausted", "out of file descriptors (%s) while reading %s: VMs may be missing "
		    "data; raise the open-files limit (ulimit -n, LimitNOFILE=)", strerror(e),
		    what);
}

int kw_collector_init(struct kw_collector *c, const struct kw_config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat sb;
	size_t i;

	memset(c, 0, sizeof(*c));
	raise_nofile();
	if (kw_config_copy(&c->cfg, cfg)) {
		snprintf(err, errlen, "out of memory");
		kw_config_free(&c->cfg);
		return -ENOMEM;
	}
	if (stat(c->cfg.procfs, &sb) || !S_ISDIR(sb.st_mode)) {
		int e = errno;

		if (e == 0 || S_ISDIR(sb.st_mode) == 0)
			e = access(c->cfg.procfs, F_OK) ? ENOENT : ENOTDIR;
		snprintf(err, errlen, "procfs root %s: %s", c->cfg.procfs, strerror(e));
		kw_config_free(&c->cfg);
		return -e;
	}
	snprintf(path, sizeof(path), "%s/stat", c->cfg.procfs);
	if (access(path, R_OK)) {
		int e = errno;
		snprintf(err, errlen, "procfs root %s is not a proc filesystem (%s: %s)", c->cfg.procfs, path,
			 strerror(e));
		kw_config_free(&c->cfg);
		return -e;
	}
	for (i = 0; i < KW_ARRAY_SIZE(sources); i++) {
		const struct kw_source_ops *ops = sources[i];
		struct kw_source_state *s = &c->src[ops->id];

		s->ops = ops;
		s->enabled = !!(c->cfg.sources & (1u << ops->id));
		if (!s->enabled) {
			snprintf(s->why, sizeof(s->why), "disabled by configuration");
			continue;
		}
		if (ops->init) {
			int r = ops->init(c, &s->state, s->why, sizeof(s->why));

			if (r == -ECANCELED) {
				kw_debug("%s source idle: %s", ops->name, s->why);
				continue;
			}
			if (r < 0) {
				kw_warn("%s source unavailable: %s", ops->name, s->why);
				continue;
			}
		}
		s->available = 1;
	}
	return 0;
}

int kw_collector_has(const struct kw_collector *c, int source)
{
	return source >= 0 && source < KW_SRC__N && c->src[source].available;
}

int kw_collector_any_source(const struct kw_collector *c)
{
	for (int k = 0; k < KW_SRC__N; k++)
		if (c->src[k].available)
			return 1;
	return 0;
}

int kw_collector_kvm_here(const struct kw_collector *c, const char *dev_kvm)
{
	char mod[KW_ROOT_MAX + 16];

	if (c->host_vms || (dev_kvm && access(dev_kvm, F_OK) == 0)) /* host_vms: every VM seen, filtered or not */
		return 1;
	if (snprintf(mod, sizeof(mod), "%s/module/kvm", c->cfg.sysfs) < (int)sizeof(mod) && access(mod, F_OK) == 0)
		return 1;
	for (int k = 0; k < KW_SRC__N; k++) {
		const struct kw_source_state *s = &c->src[k];

		if (s->available && s->ops->connected && s->ops->connected(c, s->state))
			return 1;
	}
	return 0;
}

int kw_pve_selector(const char *s, long *id)
{
	const char *v = kw_startswith(s, "vmid:") ? s + 5 : kw_startswith(s, "pve:") ? s + 4 : NULL;

	return v && kw_parse_int(v, 0, 0x7fffffff, id) == 0;
}

int kw_collector_wants(const struct kw_collector *c, const struct kw_vm *vm)
{
	size_t i;
	long id;

	if (c->cfg.want_vm && !c->cfg.want_vm(vm, c->cfg.want_vm_arg))
		return 0;
	if (!c->cfg.npids && !c->cfg.nnames)
		return 1;
	/* -p is repeatable and means "any of these" */
	for (i = 0; i < c->cfg.npids; i++)
		if (vm->pid == c->cfg.pids[i])
			return 1;
	for (i = 0; i < c->cfg.nnames; i++) {
		const char *n = c->cfg.names[i];

		if (kw_pve_selector(n, &id) ? vm->pve_id == id : !strcmp(vm->name, n) || !strcasecmp(vm->uuid, n))
			return 1;
	}
	return 0;
}

/* Is a source that finds VMs as processes (procfs) up? */
static int counts_processes(const struct kw_collector *c)
{
	for (int k = 0; k < KW_SRC__N; k++)
		if (c->src[k].available && (c->src[k].ops->flags & KW_SRC_F_PROCESSES))
			return 1;
	return 0;
}

int kw_collector_collect(struct kw_collector *c)
{
	size_t i, k;
	int r, any = 0;

	c->cycle++;
	c->ts_mono_ns = kw_now_mono_ns();
	c->ts_real_ns = kw_now_real_ns();
	for (i = 0; i < c->vms.n; i++)
		c->vms.vms[i].seen = 0;

	/* 1. discovery */
	for (k = 0; k < KW_SRC__N; k++) {
		struct kw_source_state *s = &c->src[k];

		if (!s->available || !s->ops->discover)
			continue;
		r = s->ops->discover(c, s->state);
		if (r == -ENOMEM)
			return r;
		if ((r == -EMFILE || r == -ENFILE) && (s->ops->flags & KW_SRC_F_PROCESSES)) {
			/* no fd to scan with: the VMs we know are not gone */
			kw_collector_fd_exhausted(-r, c->cfg.procfs);
			for (i = 0; i < c->vms.n; i++)
				c->vms.vms[i].seen = 1;
		} else if (r < 0 && (s->ops->flags & KW_SRC_F_PROCESSES)) {
			kw_log_once(KW_LOG_WARN, "procfs-discover", "failed to scan %s: %s", c->cfg.procfs, strerror(-r));
		}
	}
	/* 2. drop VMs no source saw, and filtered ones (host.vms counts all) */
	c->host_vms = c->host_vcpus = 0;
	for (i = 0; i < c->vms.n;) {
		if (c->vms.vms[i].seen) {
			c->host_vms++;
			c->host_vcpus += (uint64_t)c->vms.vms[i].nvcpus;
		}
		if (!c->vms.vms[i].seen || !kw_collector_wants(c, &c->vms.vms[i]))
			kw_vmt_remove_at(&c->vms, i);
		else
			i++;
	}
	/* 3. host */
	kw_ss_clear(&c->host);
	if (!c->cfg.no_host) {
		for (k = 0; k < KW_SRC__N; k++) {
			struct kw_source_state *s = &c->src[k];

			if (!s->available || !s->ops->collect_host)
				continue;
			r = s->ops->collect_host(c, s->state, &c->host);
			if (r == 0)
				any = 1;
			else if ((s->ops->flags & KW_SRC_F_PROCESSES) && (r == -ENOENT || r == -ENOTDIR))
				return r;
		}
	} else {
		any = 1;
	}
	/* 4. VMs */
	for (i = 0; i < c->vms.n;) {
		struct kw_vm *vm = &c->vms.vms[i];
		int gone = 0;

		kw_ss_clear(&vm->stats);
		for (k = 0; k < KW_SRC__N && !gone; k++) {
			struct kw_source_state *s = &c->src[k];

			if (!s->available || !s->ops->collect_vm)
				continue;
			r = s->ops->collect_vm(c, s->state, vm);
			if ((r == -ENOENT || r == -ESRCH) && (s->ops->flags & KW_SRC_F_PROCESSES) &&
			    !(vm->found & KW_FOUND_LIBVIRT))
				gone = 1; /* the process exited mid-scan */
			else if (r == -EMFILE || r == -ENFILE)
				kw_collector_fd_exhausted(-r, s->ops->name);
			else if (r == -ENOMEM)
				return r;
		}
		if (gone) {
			kw_debug("VM %s (pid %d) went away during the scan", vm->name, vm->pid);
			kw_vmt_remove_at(&c->vms, i);
			continue;
		}
		kw_ss_sort(&vm->stats);
		i++;
	}
	if (counts_processes(c) && !c->cfg.no_host) {
		kw_ss_set_u64(&c->host, KW_M_H_VMS, NULL, c->host_vms);
		kw_ss_set_u64(&c->host, KW_M_H_VCPUS, NULL, c->host_vcpus);
	}
	kw_ss_sort(&c->host);
	kw_vmt_sort(&c->vms);
	return any || c->vms.n ? 0 : -EIO;
}

void kw_collector_fini(struct kw_collector *c)
{
	size_t k;

	for (k = 0; k < KW_SRC__N; k++) {
		struct kw_source_state *s = &c->src[k];

		if (s->available && s->ops->fini)
			s->ops->fini(c, s->state);
		s->available = 0;
		s->state = NULL;
	}
	kw_vmt_free(&c->vms);
	kw_ss_free(&c->host);
	kw_config_free(&c->cfg);
}

size_t kw_collector_dom_events(struct kw_collector *c, struct kw_dom_event *out, size_t max)
{
	size_t k, n = 0;

	for (k = 0; k < KW_SRC__N && n < max; k++) {
		struct kw_source_state *s = &c->src[k];

		if (s->available && s->ops->take_events)
			n += s->ops->take_events(c, s->state, out + n, max - n);
	}
	return n;
}

const struct kw_vm *kw_snapshot_vm(const struct kw_snapshot *s, const char *key, size_t hint)
{
	if (!s || !s->valid)
		return NULL;
	if (hint < s->vms.n && !strcmp(s->vms.vms[hint].key, key))
		return &s->vms.vms[hint];
	for (size_t i = 0; i < s->vms.n; i++)
		if (!strcmp(s->vms.vms[i].key, key))
			return &s->vms.vms[i];
	return NULL;
}

int kw_snapshot_take(struct kw_snapshot *s, const struct kw_collector *c)
{
	size_t i;

	kw_snapshot_free(s);
	for (i = 0; i < c->vms.n; i++) {
		struct kw_vm *vm = kw_vmt_add(&s->vms);
		if (!vm || kw_vm_copy(vm, &c->vms.vms[i])) {
			if (vm)
				s->vms.n--;
			kw_snapshot_free(s);
			return -ENOMEM;
		}
	}
	if (kw_ss_copy(&s->host, &c->host)) {
		kw_snapshot_free(s);
		return -ENOMEM;
	}
	s->ts_mono_ns = c->ts_mono_ns;
	s->ts_real_ns = c->ts_real_ns;
	s->valid = 1;
	return 0;
}

void kw_snapshot_free(struct kw_snapshot *s)
{
	kw_vmt_free(&s->vms);
	kw_ss_free(&s->host);
	s->valid = 0;
}

int kw_rate(const struct kw_sampleset *prev, const struct kw_sampleset *cur, int metric, const char *inst,
	    double dt_s, double *out)
{
	const struct kw_sample *a = prev ? kw_ss_get(prev, metric, inst) : NULL;
	const struct kw_sample *b = kw_ss_get(cur, metric, inst);

	*out = 0;
	if (!a || !b || dt_s <= 0 || b->v.u < a->v.u)
		return -1;
	*out = (double)(b->v.u - a->v.u) / dt_s;
	return 0;
}
