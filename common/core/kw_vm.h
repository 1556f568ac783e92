// SPDX-License-Identifier: GPL-2.0
/* kw_vm.h - the VM table: one entry per virtual machine, merged from every
 * source (QEMU/VMM process in /proc, libvirt domain, ...). */
#ifndef KW_VM_H
#define KW_VM_H

#include <stdint.h>
#include <sys/types.h>

#include "core/kw_metrics.h"

#define KW_NAME_MAX 256
#define KW_UUID_MAX 40
#define KW_IFNAME_MAX 16
#define KW_QMP_PATH_MAX 256

struct kw_thread {
	pid_t tid;
	int vcpu;               /* vCPU index, -1 for other threads */
	uint64_t blkio_last;    /* its delayacct block I/O ticks at the last read */
};

struct kw_netif {
	char name[KW_IFNAME_MAX];
	char mac[18];            /* from the libvirt domain XML (KW_LV_XML), "" unknown */
	int number;              /* 1-based position among the XML's interfaces with a target, 0 unknown */
};

#define KW_DISK_MAX 32

#define KW_DISK_SOURCE_MAX 256

struct kw_disk {
	char name[KW_DISK_MAX];   /* guest target device (vda), from libvirt */
	char source[KW_DISK_SOURCE_MAX]; /* host file or device behind it (libvirt block.N.path), "" none */
};

/* How the VM was found. */
enum kw_found {
	KW_FOUND_PROC = 1u << 0,    /* QEMU-like process in /proc */
	KW_FOUND_KVMFD = 1u << 1,   /* process holding a KVM VM file descriptor */
	KW_FOUND_LIBVIRT = 1u << 2, /* libvirt domain */
};

struct kw_vm {
	char key[64];                /* stable identity: "pid:<pid>:<starttime>" or "uuid:<uuid>" */
	pid_t pid;                   /* VMM process, 0 when unknown (remote libvirt) */
	uint64_t starttime;          /* process start time (clock ticks since boot) */
	char name[KW_NAME_MAX];      /* -name guest=NAME / libvirt name / "pid-<pid>" */
	char uuid[KW_UUID_MAX];      /* "" when unknown */
	int pve_id;                  /* Proxmox VMID (-id N), -1 when not Proxmox */
	char vmm[32];                /* process comm: qemu-system-x86, firecracker, ... */
	unsigned found;              /* enum kw_found bits */
	int nvcpus;                  /* vCPU threads seen */
	struct kw_thread *threads;
	int nthreads;
	size_t threads_cap;
	struct kw_netif *netifs;
	int nnetifs;
	struct kw_disk *disks;
	int ndisks;
	char cgroup[256];            /* cgroup v2 path of the process ("" unknown) */
	char qmp[KW_QMP_PATH_MAX];   /* QMP server socket from the command line ("" none) */
	/* libvirt */
	int dom_id;                  /* -1 when not known to libvirt */
	char state[16];              /* running, paused, ... ("" unknown) */
	int lv_persistent;           /* KW_LV_XML: 1 persistent, 0 transient, -1 unknown */
	char lv_meta[128];           /* KW_LV_METADATA: the metadata value ("" none) */
	/* bookkeeping */
	uint64_t first_seen_ns;
	uint64_t blkio_ticks;        /* block I/O delay of all its threads, ever (threads that ended included) */
	int seen;                    /* found in the current scan */
	struct kw_sampleset stats;   /* this cycle's samples */
};

struct kw_vmtable {
	struct kw_vm *vms;
	size_t n, cap;
	/* key -> position + 1 (open addressing), a cache kw_vmt_find_key keeps:
	 * entries [0, idx_n) are in it; add appends (indexed at the next
	 * lookup, once its key is set), remove and sort invalidate it. */
	uint32_t *idx;
	size_t idx_cap, idx_n;
};

void kw_vm_free(struct kw_vm *vm);
/* Deep copy (threads, netifs, stats). Returns 0 or -ENOMEM. */
int kw_vm_copy(struct kw_vm *dst, const struct kw_vm *src);
int kw_vm_add_thread(struct kw_vm *vm, pid_t tid, int vcpu);
int kw_vm_add_netif(struct kw_vm *vm, const char *ifname);
int kw_vm_has_netif(const struct kw_vm *vm, const char *ifname);
int kw_vm_add_disk(struct kw_vm *vm, const char *dev);
/* A VM's disk / interface by name, NULL if it has none (like strchr: the
 * result is writable when the VM is). */
struct kw_disk *kw_vm_disk(const struct kw_vm *vm, const char *dev);
struct kw_netif *kw_vm_netif(const struct kw_vm *vm, const char *ifname);

struct kw_vm *kw_vmt_find_key(struct kw_vmtable *t, const char *key);
struct kw_vm *kw_vmt_find_pid(struct kw_vmtable *t, pid_t pid);
struct kw_vm *kw_vmt_find_uuid(struct kw_vmtable *t, const char *uuid);
struct kw_vm *kw_vmt_find_name(struct kw_vmtable *t, const char *name);
/* Append a zeroed VM (dom_id/pve_id = -1). NULL on ENOMEM. Pointers into the
 * table are invalidated by the next add. */
struct kw_vm *kw_vmt_add(struct kw_vmtable *t);
void kw_vmt_remove_at(struct kw_vmtable *t, size_t i);
void kw_vmt_free(struct kw_vmtable *t);
/* Sort by name then pid, for stable output. */
void kw_vmt_sort(struct kw_vmtable *t);

/* Per-VM state a source keeps across cycles (open fds, schemas): items of
 * `size` bytes, each starting with `char key[64]`, the VM's key.  Looked
 * up through a hash index of keys (idx, rebuilt when items move). */
struct kw_vmcache {
	void *items;
	size_t n, cap, size;
	uint32_t *idx;
	size_t idx_cap, idx_n;
};
#define KW_VMCACHE_INIT(type) { NULL, 0, 0, sizeof(type), NULL, 0, 0 }
#define kw_vmcache_at(c, i) ((void *)((char *)(c)->items + (i) * (c)->size))
/* The item of a VM, added zeroed (key set, *created = 1) when missing. NULL on ENOMEM. */
void *kw_vmcache_get(struct kw_vmcache *c, const char *key, int *created);
/* Drop (after drop(item)) the items of VMs no longer in t, or for which
 * stale(item, vm) says so (stale may be NULL). */
void kw_vmcache_prune(struct kw_vmcache *c, struct kw_vmtable *t,
		      int (*stale)(const void *item, const struct kw_vm *vm), void (*drop)(void *item));
/* Drop every item and free the cache. */
void kw_vmcache_free(struct kw_vmcache *c, void (*drop)(void *item));

/* Parse a VMM command line (NUL-separated argv as in /proc/PID/cmdline, len
 * bytes) for identity: -name guest=NAME,... or -name NAME, -uuid, Proxmox
 * -id N, tap interfaces named in -netdev tap,ifname=X, and the QMP server
 * socket (-qmp unix:PATH,server=on / -chardev socket,id=X,path=PATH,server=on
 * with -mon chardev=X,mode=control; the first one).  Fields not present are
 * left unchanged. Returns 1 if argv[0] looks like QEMU, else 0. */
int kw_parse_qemu_cmdline(const char *cmdline, size_t len, struct kw_vm *vm);
/* "proc,kvmfd,libvirt": how a VM was found (KW_FOUND_*). */
void kw_vm_found_str(char *out, size_t len, unsigned found);
/* Is this comm/argv[0] basename a QEMU/KVM VMM? */
int kw_is_qemu_name(const char *name);
/* "CPU 3/KVM" -> 3; -1 for other thread names. */
int kw_vcpu_from_comm(const char *comm);

#endif
