// SPDX-License-Identifier: GPL-2.0
/* kw_collector.h - one collection cycle over every enabled source: discover
 * VMs, merge them into the VM table, and fill per-VM and host samples. */
#ifndef KW_COLLECTOR_H
#define KW_COLLECTOR_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/kw_config.h"
#include "core/kw_metrics.h"
#include "core/kw_vm.h"

struct kw_collector;

/* A change of a libvirt domain's state (KW_LV_EVENTS): libvirt's lifecycle
 * event mapped to the state and reason virDomainGetState would report. */
struct kw_dom_event {
	char name[KW_NAME_MAX];
	char uuid[KW_UUID_MAX];
	int state;            /* virDomainState */
	int reason;           /* the state's reason enum (virDomainRunningReason, ...) */
	uint64_t time_ns;     /* realtime when the event arrived */
};
#define KW_DOM_EVENTS_MAX 256 /* queued between two cycles; more are counted as lost */

/* A source of VMs and/or metrics.  Every callback is optional. */
struct kw_source_ops {
	int id;               /* enum kw_source_id */
	const char *name;
	unsigned flags;       /* KW_SRC_F_* */
	/* Set up; on failure return <0 and say why: the source is then reported
	 * unavailable once and the others keep working.  -ECANCELED means the
	 * configuration asks nothing of this source: unavailable, no warning. */
	int (*init)(struct kw_collector *c, void **state, char *why, size_t whylen);
	/* Add or merge VMs into c->vms (mark them seen). */
	int (*discover)(struct kw_collector *c, void *state);
	/* Fill host samples. */
	int (*collect_host)(struct kw_collector *c, void *state, struct kw_sampleset *host);
	/* Fill one VM's samples.  -ENOENT/-ESRCH: the VM vanished (dropped from
	 * this cycle without error). */
	int (*collect_vm)(struct kw_collector *c, void *state, struct kw_vm *vm);
	void (*fini)(struct kw_collector *c, void *state);
	/* A source that may be up but not connected (it retries): is it
	 * connected now? */
	int (*connected)(const struct kw_collector *c, const void *state);
	/* Move up to max queued domain events into out (oldest first). */
	size_t (*take_events)(struct kw_collector *c, void *state, struct kw_dom_event *out, size_t max);
};

/* The source finds VMs as processes: its discovery failing is the
 * collector's failure (said; out of fds keeps the VMs known), ENOENT while
 * reading a VM means the process exited (dropped unless another source
 * manages it), ENOENT on the host files means the root is gone, and it
 * counts host.vms / host.vcpus. */
#define KW_SRC_F_PROCESSES 0x1

struct kw_source_state {
	const struct kw_source_ops *ops;
	void *state;
	int enabled;
	int available;
	char why[256];                /* why unavailable */
};

struct kw_collector {
	struct kw_config cfg;
	struct kw_vmtable vms;        /* VMs of the last cycle with their samples */
	struct kw_sampleset host;     /* host samples of the last cycle */
	uint64_t ts_mono_ns, ts_real_ns;
	uint64_t cycle;
	size_t host_vms;              /* VMs found on the host this cycle, filtered or not */
	uint64_t host_vcpus;
	struct kw_source_state src[KW_SRC__N];
	void *priv;                   /* procfs discovery caches */
};


/* Validate the configuration (procfs root exists and is a proc filesystem
 * tree) and initialise the enabled sources.  Returns 0, or -errno with err
 * filled when the collector cannot work at all. */
int kw_collector_init(struct kw_collector *c, const struct kw_config *cfg, char *err, size_t errlen);
/* One cycle.  Returns 0, or -errno when nothing at all could be read (e.g.
 * procfs root disappeared). */
int kw_collector_collect(struct kw_collector *c);
void kw_collector_fini(struct kw_collector *c);
/* Domain lifecycle events queued since the last call (KW_LV_EVENTS), up to
 * max, oldest first.  Returns how many were stored in out. */
size_t kw_collector_dom_events(struct kw_collector *c, struct kw_dom_event *out, size_t max);
/* "vmid:100" (or "pve:100") selects a Proxmox VMID: 1 and *id, else 0. */
int kw_pve_selector(const char *s, long *id);
/* Does the VM pass the pid / name filters? */
int kw_collector_wants(const struct kw_collector *c, const struct kw_vm *vm);

/* Say (once, as an error) that EMFILE/ENFILE (e) hit while reading what. */
void kw_collector_fd_exhausted(int e, const char *what);
/* Is a source usable this run? */
int kw_collector_has(const struct kw_collector *c, int source);
/* Is any source usable? */
int kw_collector_any_source(const struct kw_collector *c);
/* Is there anything to watch here: KVM on this host (dev_kvm exists, or
 * SYSFS/module/kvm), a VM found in the last cycle, or a source that manages
 * VMs (libvirt) connected? */
int kw_collector_kvm_here(const struct kw_collector *c, const char *dev_kvm);

/* A copy of one cycle's results, for front ends that compute deltas. */
struct kw_snapshot {
	struct kw_vmtable vms;
	struct kw_sampleset host;
	uint64_t ts_mono_ns, ts_real_ns;
	int valid;
};
int kw_snapshot_take(struct kw_snapshot *s, const struct kw_collector *c);
void kw_snapshot_free(struct kw_snapshot *s);
/* The VM of a snapshot with this key, NULL if none (or the snapshot is not
 * valid).  hint: where it probably is -- the index of the same VM in the
 * next cycle's table, sorted the same way. */
const struct kw_vm *kw_snapshot_vm(const struct kw_snapshot *s, const char *key, size_t hint);
/* Per-second rate of a counter between two sample sets; returns -1 when the
 * sample is missing in either or the counter went backwards (reset). */
int kw_rate(const struct kw_sampleset *prev, const struct kw_sampleset *cur, int metric,
	    const char *inst, double dt_s, double *out);

/* Helpers for sources: procfs/sysfs paths. */
#define KW_PROC(c) ((c)->cfg.procfs)
#define KW_SYS(c) ((c)->cfg.sysfs)

#endif
