// SPDX-License-Identifier: GPL-2.0
/* runq.bpf.c - run-queue latency of VM threads (-r), like libbpf-tools'
 * runqlat but only for the threads of watched VMs and attributed to them:
 * the time from sched_wakeup / sched_wakeup_new, or from being preempted
 * while still runnable, to sched_switch putting the thread on a CPU.
 *
 * Which processes are VMs is user space's knowledge: the loader fills `vms`
 * (tgids; kw_cfg.targ_tgid instead when one VM is selected) and `vcpus`
 * (vCPU thread ids).  Every other task costs one hash lookup per event.
 *
 * Stats key: tgid, tid (vCPU threads; 0 for the VM's other threads), kind
 * (enum kw_runq_kind), reason (1 vCPU thread, 0 other).  count = events of
 * the kind (wakeups counted at the wakeup, so wakeup count = the number of
 * sched_wakeup hits of those threads); timed/sum/slots = waits measured.  A
 * wakeup of a thread that was still on its CPU (woken before it got to
 * schedule out) waited 0 ns: a 0 ns sample (and aux), so every wakeup has
 * exactly one sample once its thread has run.  A preempted thread woken
 * before it ran again continues as a wakeup sample (its preemption has no
 * sample). */
#include "kw_helpers.bpf.h"

#define TASK_RUNNING 0

KW_COMMON_MAPS(16384);

/* VM processes to watch (key tgid; the loader's kw_bpf_watch_vm).  Not
 * preallocated, like vcpus: a preallocated hash reuses a deleted or
 * replaced element at once, and a lookup of another key walking the bucket
 * meanwhile can miss its key (an event of a watched thread lost); these
 * free their elements after an RCU grace period. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} vms SEC(".maps");

/* vCPU threads (key tid, value tgid). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
} vcpus SEC(".maps");

struct runq_start {
	__u64 ts;
	__u32 kind;
	__u32 tgid;
};

/* Threads waiting on a run queue (key tid); not preallocated either (every
 * wait deletes its entry). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct runq_start);
} start SEC(".maps");

static __always_inline bool watched(__u32 tgid)
{
	if (kw_cfg.targ_tgid)
		return tgid == kw_cfg.targ_tgid;
	return bpf_map_lookup_elem(&vms, &tgid) != NULL;
}

/* The since-start and (interval reports) this interval's aggregates. */
static __always_inline void runq_aggs(struct kw_aggs *p, __u32 tgid, __u32 tid, __u32 kind)
{
	struct kw_key k;
	bool vcpu = bpf_map_lookup_elem(&vcpus, &tid) != NULL;

	k.tgid = tgid;
	k.tid = vcpu ? tid : 0;
	k.kind = kind;
	k.reason = vcpu;
	kw_aggs_get(p, &stats, &k);
}

static __always_inline void count_event(__u32 tgid, __u32 tid, __u32 kind)
{
	struct kw_aggs a;

	if (kw_cfg.aggregate) {
		runq_aggs(&a, tgid, tid, kind);
		kw_aggs_count(&a);
	}
}

/* The wait of thread tid (kind, begun at st->ts) ended after ns. */
static __always_inline void sample(__u32 tgid, __u32 tid, __u32 kind, __u64 ns, bool running, __u32 prev_tid)
{
	struct kw_event *e;
	struct kw_aggs a;

	if (kw_cfg.aggregate) {
		runq_aggs(&a, tgid, tid, kind);
		kw_aggs_latency(&a, ns);
		if (running)
			kw_aggs_aux_add(&a, 1);
	}
	if (kw_cfg.stream && (e = kw_event_reserve(&events, &lost, KW_EV_RUNQ))) {
		e->tgid = tgid;
		e->tid = tid;
		e->runq.lat_ns = ns;
		e->runq.kind = kind;
		e->runq.vcpu_thread = bpf_map_lookup_elem(&vcpus, &tid) != NULL;
		e->runq.cpu = bpf_get_smp_processor_id();
		e->runq.prev_tid = prev_tid;
		bpf_ringbuf_submit(e, 0);
	}
}

static __always_inline void enqueue(__u32 tgid, __u32 tid, __u32 kind, __u64 now)
{
	struct runq_start s = { .ts = now, .kind = kind, .tgid = tgid };
	__u32 z = 0;
	__u64 *d;

	if (bpf_map_update_elem(&start, &tid, &s, BPF_ANY) && (d = bpf_map_lookup_elem(&agg_dropped, &z)))
		__sync_fetch_and_add(d, 1);
}

static __always_inline void on_wakeup(struct task_struct *p, __u32 kind)
{
	__u32 tgid = BPF_CORE_READ(p, tgid), tid = BPF_CORE_READ(p, pid);
	struct runq_start *old;
	__u64 now;

	if (!watched(tgid))
		return;
	now = bpf_ktime_get_ns();
	old = bpf_map_lookup_elem(&start, &tid);
	/* an earlier wakeup of a thread that has not been switched out since:
	 * it was on its CPU, it did not wait */
	if (old && old->kind != KW_RUNQ_PREEMPT)
		sample(tgid, tid, old->kind, 0, true, 0);
	count_event(tgid, tid, kind);
	enqueue(tgid, tid, kind, now);
}

static __always_inline void on_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
				      unsigned int prev_state)
{
	__u32 ptid = BPF_CORE_READ(prev, pid), ntid = BPF_CORE_READ(next, pid);
	struct runq_start *s;
	__u64 now = bpf_ktime_get_ns();

	/* prev: a wakeup while it was still running waited 0 ns; still
	 * runnable (preempted, or yielding): its wait begins */
	s = bpf_map_lookup_elem(&start, &ptid);
	if (s) {
		if (s->kind != KW_RUNQ_PREEMPT)
			sample(s->tgid, ptid, s->kind, 0, true, 0);
		bpf_map_delete_elem(&start, &ptid);
	}
	if (ptid && (preempt || prev_state == TASK_RUNNING)) {
		__u32 tgid = BPF_CORE_READ(prev, tgid);

		if (watched(tgid)) {
			count_event(tgid, ptid, KW_RUNQ_PREEMPT);
			enqueue(tgid, ptid, KW_RUNQ_PREEMPT, now);
		}
	}
	/* next: its wait ends */
	s = bpf_map_lookup_elem(&start, &ntid);
	if (s) {
		sample(s->tgid, ntid, s->kind, now > s->ts ? now - s->ts : 0, false, ptid);
		bpf_map_delete_elem(&start, &ntid);
	}
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(btf_sched_wakeup, struct task_struct *p)
{
	on_wakeup(p, KW_RUNQ_WAKEUP);
	return 0;
}

SEC("raw_tp/sched_wakeup")
int BPF_PROG(raw_sched_wakeup, struct task_struct *p)
{
	on_wakeup(p, KW_RUNQ_WAKEUP);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(btf_sched_wakeup_new, struct task_struct *p)
{
	on_wakeup(p, KW_RUNQ_WAKEUP_NEW);
	return 0;
}

SEC("raw_tp/sched_wakeup_new")
int BPF_PROG(raw_sched_wakeup_new, struct task_struct *p)
{
	on_wakeup(p, KW_RUNQ_WAKEUP_NEW);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(btf_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	on_switch(preempt, prev, next, prev_state);
	return 0;
}

SEC("raw_tp/sched_switch")
int BPF_PROG(raw_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	on_switch(preempt, prev, next, prev_state);
	return 0;
}
