// SPDX-License-Identifier: GPL-2.0
/* kw_bpf.h - kvmwatch's eBPF loader: KVM event tracing (VM exits, MMU faults,
 * MMIO, dirty pages, halt-polling, wakeups, IRQ injection).
 *
 * Each feature is one BPF object (bpf/X.bpf.c) whose hooks are chosen at run
 * time (fentry > kprobe > tp_btf > raw_tp > tracepoint, whichever this kernel
 * can attach).  A feature whose hooks cannot attach is unavailable with a
 * reason; the others keep running.  Counters and log2 latency histograms are
 * aggregated in the kernel per VM (tgid); events can also be streamed through
 * one ring buffer (with lost-event accounting).
 *
 * The feature bits and names are the core's configuration (core/kw_config.h);
 * the decoders of what events carry are kvm/kw_decode.h; the collector source
 * over the aggregates is sources/kw_src_bpf.c. */
#ifndef KW_BPF_H
#define KW_BPF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/kw_config.h"
#include "core/kw_metrics.h"

struct kw_bpf_opts {
	unsigned features;    /* KW_BPF_* */
	pid_t targ_tgid;      /* only this VMM process (0 = all), filtered in the kernel */
	int stream;           /* send events to the ring buffer (kw_bpf_poll) */
	int aggregate;        /* count in the kernel (kw_bpf_foreach_agg, kw_bpf_read_vm) */
	int per_thread;       /* aggregate per thread (vCPU) too */
	int interval;         /* interval aggregates too (kw_bpf_ival_next) */
	/* Hook kinds not to use, e.g. to exercise fallbacks: a comma list of
	 * fentry, kprobe, tp_btf, raw_tp, tracepoint (NULL: the environment
	 * variable KVMWATCH_BPF_DISABLE). */
	const char *disable;
	/* Replay recorded exits instead of tracing (features = exits only):
	 * load the exits object's replay program, attach nothing; feed it
	 * with kw_bpf_replay_exit. */
	int replay;
};

struct kw_bpf;
struct kw_event;
struct kw_key;
struct kw_agg;
struct kw_addr_key;
struct kw_pending;

/* Load and attach every requested feature that this kernel supports.
 * Returns NULL (err says why) when none could be: no root, no BTF, nothing
 * attachable.  libbpf's own messages go to kw_log at debug level. */
struct kw_bpf *kw_bpf_open(const struct kw_bpf_opts *o, char *err, size_t errlen);
void kw_bpf_close(struct kw_bpf *b);
/* Features that are loaded and attached. */
unsigned kw_bpf_active(const struct kw_bpf *b);
/* Why a requested feature is unavailable (NULL when active or not requested). */
const char *kw_bpf_why(const struct kw_bpf *b, int bit);
/* The hooks a feature uses, e.g. "tp_btf:kvm_dirty_ring_push". */
const char *kw_bpf_hooks(const struct kw_bpf *b, int bit);
/* Notes on hooks that were skipped (fallbacks taken), "" if none. */
const char *kw_bpf_notes(const struct kw_bpf *b, int bit);

/* Stream: call fn for each event; returns events handled or -errno. */
typedef int (*kw_bpf_event_fn)(const struct kw_event *e, void *arg);
int kw_bpf_poll(struct kw_bpf *b, int timeout_ms, kw_bpf_event_fn fn, void *arg);
/* Events the kernel could not queue (ring buffer full). */
uint64_t kw_bpf_lost(const struct kw_bpf *b);

/* Events of feature bit for which no aggregate could be made (its
 * statistics map was full), and that map's size. */
uint64_t kw_bpf_dropped(struct kw_bpf *b, int bit);
unsigned kw_bpf_stats_capacity(struct kw_bpf *b, int bit);

/* Run-queue latency (KW_BPF_RUNQ) is measured for the threads of the VMs
 * user space names: watch vm's process (unless the loader was given one
 * targ_tgid) and mark its vCPU threads, whose waits are kept per thread.
 * Call again when threads appear; kw_bpf_prune forgets gone processes.
 * 0 or -errno (no-op without the feature). */
struct kw_vm;
int kw_bpf_watch_vm(struct kw_bpf *b, const struct kw_vm *vm);

/* Remove the aggregates of every process live() says is gone.  Returns
 * how many, or -ENOMEM. */
long kw_bpf_prune(struct kw_bpf *b, int (*live)(pid_t tgid, void *arg), void *arg);

/* Aggregates of one feature (fn returns non-zero to stop). */
typedef int (*kw_bpf_agg_fn)(const struct kw_key *k, const struct kw_agg *v, void *arg);
int kw_bpf_foreach_agg(struct kw_bpf *b, int bit, kw_bpf_agg_fn fn, void *arg);
/* Interval aggregates (opts.interval): the aggregates of the events of one
 * interval, every field exact (min_ns/max_ns too, which the since-start
 * stats cannot give by difference).  kw_bpf_ival_next ends the current
 * interval (*closed: its epoch) and starts the next; kw_bpf_foreach_ival
 * then calls fn with each aggregate of that epoch and deletes them. */
int kw_bpf_ival_next(struct kw_bpf *b, uint64_t *closed);
int kw_bpf_foreach_ival(struct kw_bpf *b, int bit, uint64_t epoch, kw_bpf_agg_fn fn, void *arg);
/* Per-address counters (mmio GPAs, dirty GFNs, fault GFNs with their hva
 * and pfn; 0 for the others), bounded LRU maps. */
typedef int (*kw_bpf_addr_fn)(const struct kw_addr_key *k, uint64_t count, uint64_t hva, uint64_t pfn, void *arg);
int kw_bpf_foreach_addr(struct kw_bpf *b, int bit, kw_bpf_addr_fn fn, void *arg);
/* Exits/faults still in progress (begun, never completed), e.g. a vCPU's
 * last exit to user space. */
enum kw_pending_kind { KW_PENDING_KEXIT, KW_PENDING_UEXIT, KW_PENDING_FAULT };
typedef int (*kw_bpf_pending_fn)(const struct kw_pending *p, uint32_t tid, int kind, void *arg);
int kw_bpf_foreach_pending(struct kw_bpf *b, int bit, kw_bpf_pending_fn fn, void *arg);

/* One recorded exit, replayed through the exits object's own exit path
 * (exit_begin_for/exit_end_for of bpf/exits.bpf.c, the code kvm_exit + kvm_entry,
 * or kvm_userspace_exit + the next KVM_RUN, run on a live host) with
 * BPF_PROG_TEST_RUN: counted, timed (lat_ns, if timed) and streamed for
 * thread tid of process tgid as if it had happened there.  The kvm_exit
 * tracepoint's own field reading is not exercised.  0 or -errno. */
struct kw_replay_exit {
	uint32_t isa;         /* KW_ISA_USER, KW_ISA_VMX, KW_ISA_SVM */
	uint32_t reason;      /* kvm_exit's exit_reason (VMX: flags in bits 16-31 dropped as live) */
	uint32_t vcpu_id;
	uint32_t tgid, tid;   /* 0: the calling process / thread */
	int timed;            /* 0: never entered again (left in progress, like a vCPU's last exit) */
	uint64_t lat_ns;      /* exit to the next entry */
};
int kw_bpf_replay_exit(struct kw_bpf *b, const struct kw_replay_exit *r);

/* Add one VM's aggregated counters to ss as metric-table rows. */
int kw_bpf_read_vm(struct kw_bpf *b, pid_t tgid, struct kw_sampleset *ss);

#endif
