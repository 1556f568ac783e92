// SPDX-License-Identifier: GPL-2.0
/* kw_config.h - what a front end asks of the collector: roots, sources,
 * VM selection, eBPF features; and the name <-> bit tables of sources and
 * eBPF features that every front end's configuration parses. */
#ifndef KW_CONFIG_H
#define KW_CONFIG_H

#include <stddef.h>
#include <sys/types.h>

struct kw_vm;

/* The sources, in the order the collector runs them. */
enum kw_source_id { KW_SRC_PROC, KW_SRC_LIBVIRT, KW_SRC_KVMSTAT, KW_SRC_BPF, KW_SRC_QMP, KW_SRC__N };
#define KW_SOURCES_ALL ((1u << KW_SRC__N) - 1)

/* "procfs", "libvirt", "kvmstat", "bpf", "qmp" ("?" out of range). */
const char *kw_source_name(int source);
/* Source id of a name (case-insensitive), -1 if unknown. */
int kw_source_from_name(const char *name);

/* Feature bits (struct kw_config.bpf_features, kvmwatch -e -f -m -d -n -w -i -r). */
enum kw_bpf_feature_bit {
	KW_BPF_BIT_EXITS,
	KW_BPF_BIT_FAULTS,
	KW_BPF_BIT_MMIO,
	KW_BPF_BIT_DIRTY,
	KW_BPF_BIT_HALTPOLL,
	KW_BPF_BIT_WAKEUP,
	KW_BPF_BIT_IRQ,
	KW_BPF_BIT_RUNQ,
	KW_BPF__N
};
#define KW_BPF_EXITS    (1u << KW_BPF_BIT_EXITS)    /* VM exits + exits to user space */
#define KW_BPF_FAULTS   (1u << KW_BPF_BIT_FAULTS)   /* KVM MMU page faults */
#define KW_BPF_MMIO     (1u << KW_BPF_BIT_MMIO)     /* MMIO accesses */
#define KW_BPF_DIRTY    (1u << KW_BPF_BIT_DIRTY)    /* dirty guest pages */
#define KW_BPF_HALTPOLL (1u << KW_BPF_BIT_HALTPOLL) /* halt-polling grow/shrink */
#define KW_BPF_WAKEUP   (1u << KW_BPF_BIT_WAKEUP)   /* vCPU wakeups after halt */
#define KW_BPF_IRQ      (1u << KW_BPF_BIT_IRQ)      /* interrupt injection */
#define KW_BPF_RUNQ     (1u << KW_BPF_BIT_RUNQ)     /* run-queue latency of VM threads */
#define KW_BPF_ALL      ((1u << KW_BPF__N) - 1)


/* "exits", "faults", "mmio", "dirty", "haltpoll", "wakeup", "irq", "runq". */
const char *kw_feature_name(int bit);
/* Feature bit of a name ("exits", "faults"/"mmu", "halt_poll", "halt poll", ...), -1 if unknown. */
int kw_feature_from_name(const char *name);
/* Parse "exits,dirty" / "all" / "none" (also space separated) into a mask.
 * Returns 0, or -EINVAL with err naming the bad word. */
int kw_features_parse(const char *list, unsigned *out, char *err, size_t errlen);

#define KW_ROOT_MAX 1024 /* longest --procfs / --sysfs root */

struct kw_config {
	char procfs[KW_ROOT_MAX];     /* default /proc */
	char sysfs[KW_ROOT_MAX];      /* default /sys */
	unsigned sources;             /* bitmask of 1 << enum kw_source_id */
	char libvirt_uri[256];        /* "" = qemu:///system, quietly idle if no libvirtd */
	int libvirt_retry;            /* libvirtd not up at start: retry in the background
	                               * (long-running front ends); else unavailable */
	pid_t *pids;                  /* only these VMs (by VMM pid), if npids */
	size_t npids;
	char **names;                 /* only these VMs (name, uuid, "vmid:N"), if nnames; any of pids/names */
	size_t nnames;
	int no_host;                  /* skip host totals */
	unsigned bpf_features;        /* eBPF feature bitmask (bpf source) */
	/* Optional extra VM filter (e.g. a front end's name patterns): VMs for
	 * which it returns 0 are dropped before per-VM collection. */
	int (*want_vm)(const struct kw_vm *vm, void *arg);
	void *want_vm_arg;
	/* What the libvirt source gathers beyond its bulk statistics (enum
	 * kw_lv_extra; collectd's virt compatibility asks for them): each costs
	 * calls per domain, so none is on by default. */
	unsigned libvirt_extra;
	unsigned libvirt_xml_refresh_s;   /* re-read a domain's XML after this long (0: only once) */
	char libvirt_meta_ns[256];        /* KW_LV_METADATA: namespace URI of the metadata element */
	char libvirt_meta_xpath[256];     /* ... and the XPath of the value inside it */
};

enum kw_lv_extra {
	KW_LV_INACTIVE = 1u << 0,      /* inactive domains too (their state rows only) */
	KW_LV_VCPUPIN = 1u << 1,       /* vCPU affinity (virDomainGetVcpus per domain) */
	KW_LV_DISK_ERR = 1u << 2,      /* disk error codes (virDomainGetDiskErrors per domain) */
	KW_LV_PERF = 1u << 3,          /* the perf event group of the bulk statistics */
	KW_LV_JOB_PARAMS = 1u << 4,    /* every numeric job statistic as job.param */
	KW_LV_JOB_COMPLETED = 1u << 5, /* job statistics of the last completed job, not the current one */
	KW_LV_XML = 1u << 6,           /* domain XML: interface MAC addresses and numbers, persistence */
	KW_LV_METADATA = 1u << 7,      /* one value of the domain's metadata (libvirt_meta_ns/xpath) */
	KW_LV_EVENTS = 1u << 8,        /* lifecycle events, for kw_collector_dom_events() */
};

void kw_config_defaults(struct kw_config *cfg);
/* Free what kw_config_* allocated (pids, names). */
void kw_config_free(struct kw_config *cfg);
int kw_config_add_pid(struct kw_config *cfg, pid_t pid);
int kw_config_add_name(struct kw_config *cfg, const char *name);
/* Deep copy (pids, names); 0 or -ENOMEM. */
int kw_config_copy(struct kw_config *dst, const struct kw_config *src);

#endif
