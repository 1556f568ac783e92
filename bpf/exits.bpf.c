// SPDX-License-Identifier: GPL-2.0
/* exits.bpf.c - VM exits (-e).
 *
 * In-kernel exits: kvm:kvm_exit records (reason, isa) per thread, the next
 * kvm:kvm_entry on that thread gives the handling latency.
 * Exits to user space: kvm:kvm_userspace_exit records the KVM_EXIT_* reason;
 * the thread's next ioctl(KVM_RUN) gives the time user space took to handle
 * it: fentry/kprobe on kvm_vcpu_ioctl (fires for vCPU ioctls only), else
 * syscalls:sys_enter_ioctl, else the raw sys_enter hook (every syscall).
 * The loader picks one program of each alternative pair at run time.
 * replay_exit feeds recorded exits through the same code (--replay). */
#include "kw_helpers.bpf.h"

#define KVM_RUN_CMD 0xAE80
#define NR_IOCTL_X86_64 16

KW_COMMON_MAPS(16384);

/* Thread -> exit in progress.  LRU: threads that end leave entries behind. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct kw_pending);
} kexit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct kw_pending);
} uexit SEC(".maps");

/* An exit of thread tid of process tgid at ts: counted now, timed by the
 * thread's next entry (exit_end_for).  The hooks below pass the current thread
 * and clock; replay_exit passes a recorded exit's. */
static __always_inline void exit_begin_for(void *map, __u32 tgid, __u32 tid, __u64 ts, __u32 isa, __u32 reason,
					   __u32 vcpu_id)
{
	struct kw_pending p = { .ts = ts, .tgid = tgid, .reason = reason, .isa = isa, .vcpu_id = vcpu_id };
	struct kw_aggs a;
	struct kw_key k;

	if (!kw_wanted_tgid(&kw_cfg, tgid))
		return;
	/* counted at the exit, so exits never followed by an entry count too */
	if (kw_cfg.aggregate) {
		kw_key_init_for(&k, &kw_cfg, tgid, tid, isa, reason);
		kw_aggs_get(&a, &stats, &k);
		kw_aggs_count(&a);
	}
	bpf_map_update_elem(map, &tid, &p, BPF_ANY);
}

/* Thread tid enters the guest again at now: its exit in progress is timed. */
static __always_inline void exit_end_for(void *map, __u32 tid, __u64 now)
{
	struct kw_pending *p = bpf_map_lookup_elem(map, &tid);
	struct kw_event *e;
	struct kw_aggs a;
	struct kw_key k;
	__u64 lat;

	if (!p)
		return;
	lat = now - p->ts;
	if (kw_cfg.aggregate) {
		kw_key_init_for(&k, &kw_cfg, p->tgid, tid, p->isa, p->reason);
		kw_aggs_get(&a, &stats, &k);
		kw_aggs_latency(&a, lat);
	}
	if (kw_cfg.stream && (e = kw_event_reserve(&events, &lost, KW_EV_EXIT))) {
		e->tgid = p->tgid;
		e->tid = tid;
		e->ts = p->ts;
		e->exit.reason = p->reason;
		e->exit.isa = p->isa;
		e->exit.vcpu_id = p->vcpu_id;
		e->exit.lat_ns = lat;
		e->exit.timed = 1;
		bpf_ringbuf_submit(e, 0);
	}
	bpf_map_delete_elem(map, &tid);
}

static __always_inline void exit_begin(void *map, __u32 isa, __u32 reason, __u32 vcpu_id)
{
	exit_begin_for(map, kw_tgid(), kw_tid(), bpf_ktime_get_ns(), isa, reason, vcpu_id);
}

static __always_inline void exit_end(void *map)
{
	exit_end_for(map, kw_tid(), bpf_ktime_get_ns());
}

/* kvm_exit's exit_reason as counted: VMX's basic exit reason (bits 16-31
 * are flags; bit 31 = failed VM entry), SVM's exit code as it is. */
static __always_inline __u32 kexit_reason(__u32 isa, __u32 reason)
{
	return isa == KW_ISA_VMX ? reason & 0xffff : reason;
}

/* ---- in-kernel exits: kvm_exit has the reason only in its formatted record */
SEC("tracepoint/kvm/kvm_exit")
int tp_kvm_exit(struct trace_event_raw_kvm_exit *ctx)
{
	__u32 isa = BPF_CORE_READ(ctx, isa), reason = BPF_CORE_READ(ctx, exit_reason);

	exit_begin(&kexit, isa, kexit_reason(isa, reason), BPF_CORE_READ(ctx, vcpu_id));
	return 0;
}

SEC("tp_btf/kvm_entry")
int BPF_PROG(btf_kvm_entry)
{
	exit_end(&kexit);
	return 0;
}

SEC("raw_tp/kvm_entry")
int BPF_PROG(raw_kvm_entry)
{
	exit_end(&kexit);
	return 0;
}

/* ---- exits to user space */
static __always_inline void uexit_begin(__u32 reason, int err)
{
	if (err < 0)
		reason = err == -4 ? KW_UEXIT_EINTR : KW_UEXIT_ERROR;
	exit_begin(&uexit, KW_ISA_USER, reason, 0);
}

SEC("tp_btf/kvm_userspace_exit")
int BPF_PROG(btf_kvm_userspace_exit, __u32 reason, int err)
{
	uexit_begin(reason, err);
	return 0;
}

SEC("raw_tp/kvm_userspace_exit")
int BPF_PROG(raw_kvm_userspace_exit, __u32 reason, int err)
{
	uexit_begin(reason, err);
	return 0;
}

SEC("tracepoint/kvm/kvm_userspace_exit")
int tp_kvm_userspace_exit(struct trace_event_raw_kvm_userspace_exit *ctx)
{
	uexit_begin(BPF_CORE_READ(ctx, reason), BPF_CORE_READ(ctx, errno));
	return 0;
}

/* ---- replay (kvmwatch -e --replay FILE): attached to nothing; the loader
 * runs it with BPF_PROG_TEST_RUN once per recorded exit (ctx: enum
 * kw_replay_arg).  The exit and the entry that ends it go through the same
 * exit_begin_for/exit_end_for as kvm_exit + kvm_entry (isa vmx, svm) or
 * kvm_userspace_exit + KVM_RUN (isa user), with the record's thread and the
 * exit dated lat ns before now. */
SEC("raw_tp")
int replay_exit(__u64 *ctx)
{
	__u32 isa = (__u32)ctx[KW_REPLAY_ISA], reason = (__u32)ctx[KW_REPLAY_REASON];
	__u32 tgid = (__u32)ctx[KW_REPLAY_TGID], tid = (__u32)ctx[KW_REPLAY_TID];
	__u64 lat = ctx[KW_REPLAY_LAT], now = bpf_ktime_get_ns();
	void *map = isa == KW_ISA_USER ? (void *)&uexit : (void *)&kexit;

	if (!tgid)
		tgid = kw_tgid();
	if (!tid)
		tid = kw_tid();
	if (isa != KW_ISA_USER)
		reason = kexit_reason(isa, reason);
	exit_begin_for(map, tgid, tid, lat == KW_REPLAY_UNTIMED ? now : now - lat, isa, reason,
		       (__u32)ctx[KW_REPLAY_VCPU]);
	if (lat != KW_REPLAY_UNTIMED)
		exit_end_for(map, tid, now);
	return 0;
}

/* ---- the next KVM_RUN ends a user-space exit */
SEC("fentry/kvm_vcpu_ioctl")
int BPF_PROG(fentry_kvm_vcpu_ioctl, struct file *filp, unsigned int ioctl)
{
	if (ioctl == KVM_RUN_CMD)
		exit_end(&uexit);
	return 0;
}

SEC("kprobe/kvm_vcpu_ioctl")
int BPF_KPROBE(kprobe_kvm_vcpu_ioctl, struct file *filp, unsigned int ioctl)
{
	if (ioctl == KVM_RUN_CMD)
		exit_end(&uexit);
	return 0;
}

static __always_inline void sys_enter(struct pt_regs *regs, long id)
{
	if (id == NR_IOCTL_X86_64 && (__u32)BPF_CORE_READ(regs, si) == KVM_RUN_CMD)
		exit_end(&uexit);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(btf_sys_enter, struct pt_regs *regs, long id)
{
	sys_enter(regs, id);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_sys_enter, struct pt_regs *regs, long id)
{
	sys_enter(regs, id);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ioctl")
int tp_sys_enter_ioctl(struct syscall_trace_enter *ctx)
{
	unsigned long cmd = 0;

	bpf_probe_read_kernel(&cmd, sizeof(cmd), &ctx->args[1]);
	if ((__u32)cmd == KVM_RUN_CMD)
		exit_end(&uexit);
	return 0;
}

SEC("tracepoint/raw_syscalls/sys_enter")
int tp_raw_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
	if (ctx->id == NR_IOCTL_X86_64 && (__u32)ctx->args[1] == KVM_RUN_CMD)
		exit_end(&uexit);
	return 0;
}
