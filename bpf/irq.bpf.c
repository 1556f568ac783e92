// SPDX-License-Identifier: GPL-2.0
/* irq.bpf.c - interrupt injection (-i): GSI level changes (kvm_set_irq), the
 * in-kernel PIC, IOAPIC and MSI routes (with coalesced = already pending),
 * delivery to a local APIC, EOIs, PIC acks and injection into a vCPU
 * (kvm_inj_virq).  Counted per VM and kind (stats aux = coalesced).
 *
 * Attribution.  The KVM irq tracepoints carry no struct kvm, and most
 * interrupts on a real host are injected by another context than the VM's
 * own threads: an irqfd eventfd written by vhost, VFIO or another process
 * (MSI routes are delivered in the writer's context, others by a kworker
 * running irqfd_inject).  So the VM an injection targets is recorded per
 * thread before the tracepoints fire, by whichever of these loads here
 * (the loader picks at run time):
 *   fentry/fexit, else kprobe/kretprobe, on kvm_set_irq, kvm_set_msi and
 *     kvm_arch_set_irq_inatomic, which are handed the struct kvm;
 *   else the irqfd paths themselves: a write(2) to an eventfd (raw
 *     sys_enter/sys_exit) whose wait queue holds an irqfd (entry func ==
 *     irqfd_wakeup), and a kworker running an irqfd's inject work
 *     (workqueue_execute_start/end with func == irqfd_inject); the two
 *     kernel addresses come from /proc/kallsyms.
 * Without any of them an injection counts for the process that made it.
 *
 * Latency.  An injection (a GSI going up: kvm_set_irq, whose IOAPIC route
 * is serviced within it; an MSI) records its time on the injecting thread;
 * the LAPIC accepting a vector on that thread (delivery is synchronous)
 * gives the injection-to-acceptance latency, the guest's EOI of that vector
 * the injection-to-EOI latency: log2 histograms in the stats map under
 * kinds KW_IRQ_LAT_ACCEPT / KW_IRQ_LAT_EOI, reason = vector.  An interrupt
 * the IOAPIC delivers later (masked, remote IRR) has no acceptance sample. */
#include "kw_helpers.bpf.h"

KW_COMMON_MAPS(4096);

/* kallsyms addresses for the irqfd fallback (0: not known, fallback off) */
const volatile __u64 kw_irqfd_wakeup = 0;
const volatile __u64 kw_irqfd_inject = 0;

#define NR_WRITE_X86_64 1
#define PEND_MAX_NS 1000000000ull  /* older injections are not matched */

/* Thread -> the VM (userspace_pid) its current injection targets. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u32);
} target SEC(".maps");

/* Thread -> time of the injection it is making (a GSI going up, an MSI),
 * until the LAPIC accepts it on that thread (delivery is synchronous) or
 * the GSI goes down again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, __u64);
} inj_ts SEC(".maps");

struct vec_key {
	__u32 tgid;
	__u32 vector;
};

/* (VM, vector) -> time of the accepted injection not yet EOIed */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct vec_key);
	__type(value, __u64);
} pend_eoi SEC(".maps");

/* The VM this thread's injection targets: recorded target, else itself. */
static __always_inline __u32 irq_tgid(__u32 *via)
{
	__u32 tid = kw_tid(), *t = bpf_map_lookup_elem(&target, &tid);

	*via = 0;
	if (t && *t && *t != kw_tgid()) {
		*via = kw_tgid();
		return *t;
	}
	return kw_tgid();
}

/* A latency sample of the current thread (tid 0: made for the VM from
 * outside it, via != 0), per vector. */
static __always_inline void latency(__u32 tgid, __u32 via, __u32 kind, __u32 vector, __u64 lat,
				    struct kw_event *e)
{
	struct kw_aggs g;
	struct kw_key k;

	if (e)
		e->irq.lat_ns = lat;
	if (!kw_cfg.aggregate)
		return;
	kw_key_init_for(&k, &kw_cfg, tgid, via ? 0 : kw_tid(), kind, vector);
	kw_aggs_get(&g, &stats, &k);
	kw_aggs_count(&g);
	kw_aggs_latency(&g, lat);
}

/* The latency bookkeeping of one event (e: its stream record or NULL). */
static __always_inline void irq_latency(__u32 tgid, __u32 via, __u32 kind, __u32 pin, __u64 a, __u64 b,
					struct kw_event *e)
{
	struct vec_key vk = { .tgid = tgid };
	__u64 now = bpf_ktime_get_ns(), *t;
	__u32 tid = kw_tid();

	switch (kind) {
	case KW_IRQ_SET:
		/* b: the level; the IOAPIC or PIC route is serviced within it */
		if (b)
			bpf_map_update_elem(&inj_ts, &tid, &now, BPF_ANY);
		else
			bpf_map_delete_elem(&inj_ts, &tid);
		return;
	case KW_IRQ_MSI:
		bpf_map_update_elem(&inj_ts, &tid, &now, BPF_ANY);
		return;
	case KW_IRQ_APIC:
		vk.vector = a & 0xff;
		t = bpf_map_lookup_elem(&inj_ts, &tid);
		if (t && now - *t < PEND_MAX_NS) {
			latency(tgid, via, KW_IRQ_LAT_ACCEPT, vk.vector, now - *t, e);
			bpf_map_update_elem(&pend_eoi, &vk, t, BPF_ANY);
		}
		if (t)
			bpf_map_delete_elem(&inj_ts, &tid);
		return;
	case KW_IRQ_EOI:
		vk.vector = pin & 0xff;
		t = bpf_map_lookup_elem(&pend_eoi, &vk);
		if (t && now - *t < PEND_MAX_NS)
			latency(tgid, via, KW_IRQ_LAT_EOI, vk.vector, now - *t, e);
		if (t)
			bpf_map_delete_elem(&pend_eoi, &vk);
		return;
	default:
		return;
	}
}

static __always_inline void on_irq(__u32 kind, __u32 pin, __u64 a, __u64 b, bool coalesced)
{
	struct kw_event *e = NULL;
	struct kw_aggs g;
	struct kw_key k;
	__u32 via, tgid = irq_tgid(&via);

	if (kw_cfg.targ_tgid && tgid != kw_cfg.targ_tgid)
		return;
	if (kw_cfg.aggregate) {
		kw_key_init(&k, &kw_cfg, kind, 0);
		k.tgid = tgid;
		if (via)
			k.tid = 0; /* not one of the VM's threads */
		kw_aggs_get(&g, &stats, &k);
		kw_aggs_count(&g);
		if (coalesced)
			kw_aggs_aux_add(&g, 1);
	}
	if (kw_cfg.stream && (e = kw_event_reserve(&events, &lost, KW_EV_IRQ))) {
		e->tgid = tgid;
		if (via)
			e->tid = 0;
		e->irq.kind = kind;
		e->irq.pin = pin;
		e->irq.a = a;
		e->irq.b = b;
		e->irq.coalesced = coalesced;
		e->irq.via_tgid = via;
	}
	irq_latency(tgid, via, kind, pin, a, b, e);
	if (e)
		bpf_ringbuf_submit(e, 0);
}

/* Each hook as a tp_btf and a raw_tp program (same body). */
#define KW_IRQ_HOOK(tp, args, body)                  \
	SEC("tp_btf/" #tp) int BPF_PROG(btf_##tp, args) \
	{                                            \
		body;                                \
		return 0;                            \
	}                                            \
	SEC("raw_tp/" #tp) int BPF_PROG(raw_##tp, args) \
	{                                            \
		body;                                \
		return 0;                            \
	}
#define ARGS(...) __VA_ARGS__

KW_IRQ_HOOK(kvm_set_irq, ARGS(unsigned int gsi, int level, int src),
	    on_irq(KW_IRQ_SET, gsi, gsi, (__u64)(__u32)level, false))
KW_IRQ_HOOK(kvm_pic_set_irq, ARGS(__u8 chip, __u8 pin, __u8 elcr, __u8 imr, bool coalesced),
	    on_irq(KW_IRQ_PIC, pin, chip, elcr | ((__u64)imr << 8), coalesced))
KW_IRQ_HOOK(kvm_ioapic_set_irq, ARGS(__u64 e, int pin, bool coalesced),
	    on_irq(KW_IRQ_IOAPIC, pin, e, 0, coalesced))
KW_IRQ_HOOK(kvm_msi_set_irq, ARGS(__u64 address, __u64 data),
	    on_irq(KW_IRQ_MSI, 0, address, data, false))
KW_IRQ_HOOK(kvm_apic_accept_irq, ARGS(__u32 apicid, __u16 dm, __u16 tm, __u8 vec),
	    on_irq(KW_IRQ_APIC, apicid, vec, dm | ((__u64)tm << 16), false))
KW_IRQ_HOOK(kvm_eoi, ARGS(struct kvm_lapic *apic, int vector),
	    on_irq(KW_IRQ_EOI, vector, 0, 0, false))
KW_IRQ_HOOK(kvm_ack_irq, ARGS(unsigned int irqchip, unsigned int pin),
	    on_irq(KW_IRQ_ACK, pin, irqchip, 0, false))
KW_IRQ_HOOK(kvm_inj_virq, ARGS(unsigned int vector, bool soft, bool reinjected),
	    on_irq(KW_IRQ_VIRQ, vector, vector, soft | ((__u64)reinjected << 1), false))

/* ------------------------------------------------ attribution: struct kvm */

static __always_inline void target_set(__u32 pid)
{
	__u32 tid = kw_tid();

	if (pid)
		bpf_map_update_elem(&target, &tid, &pid, BPF_ANY);
}

static __always_inline void target_clear(void)
{
	__u32 tid = kw_tid();

	bpf_map_delete_elem(&target, &tid);
}

static __always_inline void target_kvm(struct kvm *kvm)
{
	target_set((__u32)BPF_CORE_READ(kvm, userspace_pid));
}

/* fentry/fexit and kprobe/kretprobe of a function handed the struct kvm
 * (args: its parameters up to the kvm one): the target is set on entry
 * and cleared on return. */
#define KW_TARGET_HOOKS(fn, args)                                   \
	SEC("fentry/" #fn) int BPF_PROG(fentry_##fn, args)          \
	{                                                           \
		target_kvm(kvm);                                    \
		return 0;                                           \
	}                                                           \
	SEC("fexit/" #fn) int BPF_PROG(fexit_##fn)                  \
	{                                                           \
		target_clear();                                     \
		return 0;                                           \
	}                                                           \
	SEC("kprobe/" #fn) int BPF_KPROBE(kprobe_##fn, args)        \
	{                                                           \
		target_kvm(kvm);                                    \
		return 0;                                           \
	}                                                           \
	SEC("kretprobe/" #fn) int BPF_KRETPROBE(kretprobe_##fn)     \
	{                                                           \
		target_clear();                                     \
		return 0;                                           \
	}

KW_TARGET_HOOKS(kvm_set_irq, ARGS(struct kvm *kvm))
KW_TARGET_HOOKS(kvm_set_msi, ARGS(void *e, struct kvm *kvm))
KW_TARGET_HOOKS(kvm_arch_set_irq_inatomic, ARGS(void *e, struct kvm *kvm))

/* --------------------------------------------- attribution: the irqfd paths */

/* The VM of an irqfd whose wait queue entry this is, or 0. */
static __always_inline __u32 irqfd_wait_vm(struct wait_queue_entry *w)
{
	struct kvm_kernel_irqfd *irqfd;

	if (!w || (__u64)BPF_CORE_READ(w, func) != kw_irqfd_wakeup)
		return 0;
	irqfd = (void *)((char *)w - bpf_core_field_offset(struct kvm_kernel_irqfd, wait));
	return (__u32)BPF_CORE_READ(irqfd, kvm, userspace_pid);
}

/* write(fd): is fd an eventfd with an irqfd waiting on it?  Its VM, or 0. */
static __always_inline __u32 eventfd_vm(long fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds, *f = NULL;
	struct eventfd_ctx *ctx;
	struct list_head *head, *pos;
	__u32 vm;
	int i;

	if (!fdt || fd < 0 || fd >= (long)BPF_CORE_READ(fdt, max_fds))
		return 0;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_core_read(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	ctx = BPF_CORE_READ(f, private_data);
	if (!ctx)
		return 0;
	head = (void *)((char *)ctx + bpf_core_field_offset(struct eventfd_ctx, wqh) +
			bpf_core_field_offset(struct wait_queue_head, head));
	pos = BPF_CORE_READ(ctx, wqh.head.next);
	/* an eventfd has few waiters: the irqfd, maybe a poller */
	for (i = 0; i < 4 && pos && pos != head; i++) {
		vm = irqfd_wait_vm((void *)((char *)pos - bpf_core_field_offset(struct wait_queue_entry, entry)));
		if (vm)
			return vm;
		pos = BPF_CORE_READ(pos, next);
	}
	return 0;
}

static __always_inline void irqfd_sys_enter(struct pt_regs *regs, long id)
{
	if (id != NR_WRITE_X86_64 || !kw_irqfd_wakeup)
		return;
	target_set(eventfd_vm((long)BPF_CORE_READ(regs, di)));
}

static __always_inline void irqfd_sys_exit(struct pt_regs *regs)
{
	if (BPF_CORE_READ(regs, orig_ax) == NR_WRITE_X86_64)
		target_clear();
}

static __always_inline void irqfd_work_start(struct work_struct *work)
{
	struct kvm_kernel_irqfd *irqfd;

	if (!kw_irqfd_inject || (__u64)BPF_CORE_READ(work, func) != kw_irqfd_inject)
		return;
	irqfd = (void *)((char *)work - bpf_core_field_offset(struct kvm_kernel_irqfd, inject));
	target_set((__u32)BPF_CORE_READ(irqfd, kvm, userspace_pid));
}

/* (the work may be freed by now: its func is not read, and a tp_btf
 * program cannot take the function pointer argument) */
static __always_inline void irqfd_work_end(void)
{
	target_clear();
}

SEC("tp_btf/sys_enter")
int BPF_PROG(btf_irqfd_sys_enter, struct pt_regs *regs, long id)
{
	irqfd_sys_enter(regs, id);
	return 0;
}

SEC("raw_tp/sys_enter")
int BPF_PROG(raw_irqfd_sys_enter, struct pt_regs *regs, long id)
{
	irqfd_sys_enter(regs, id);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(btf_irqfd_sys_exit, struct pt_regs *regs, long ret)
{
	irqfd_sys_exit(regs);
	return 0;
}

SEC("raw_tp/sys_exit")
int BPF_PROG(raw_irqfd_sys_exit, struct pt_regs *regs, long ret)
{
	irqfd_sys_exit(regs);
	return 0;
}

SEC("tp_btf/workqueue_execute_start")
int BPF_PROG(btf_irqfd_work_start, struct work_struct *work)
{
	irqfd_work_start(work);
	return 0;
}

SEC("raw_tp/workqueue_execute_start")
int BPF_PROG(raw_irqfd_work_start, struct work_struct *work)
{
	irqfd_work_start(work);
	return 0;
}

SEC("tp_btf/workqueue_execute_end")
int BPF_PROG(btf_irqfd_work_end)
{
	irqfd_work_end();
	return 0;
}

SEC("raw_tp/workqueue_execute_end")
int BPF_PROG(raw_irqfd_work_end)
{
	irqfd_work_end();
	return 0;
}
