// SPDX-License-Identifier: GPL-2.0
/* kvmwatch.h - types shared by kvmwatch's BPF programs (bpf/NAME.bpf.c) and
 * their loader (common/kvm/kw_bpf.c).  Only fixed-size __u32/__u64 structs. */
#ifndef KW_BPF_ABI_H
#define KW_BPF_ABI_H

#define KW_HIST_SLOTS 32      /* log2 nanosecond slots: [2^i, 2^(i+1)) ns */
#define KW_RINGBUF_BYTES (1u << 20)

/* kvm_exit's isa field (arch/x86/kvm/trace.h); 0 = exits to user space,
 * whose reason is a KVM_EXIT_* value. */
#define KW_ISA_USER 0
#define KW_ISA_VMX 1
#define KW_ISA_SVM 2
/* User-space exit "reasons" for KVM_RUN returning an error (errno < 0). */
#define KW_UEXIT_EINTR 0x10000
#define KW_UEXIT_ERROR 0x10001

/* Run-time configuration, set by the loader before load (rodata). */
struct kw_bpf_cfg {
	__u32 targ_tgid;      /* only this VMM process (0 = all) */
	__u8 stream;          /* send each event to the ring buffer */
	__u8 aggregate;       /* count in the stats map */
	__u8 per_thread;      /* stats keyed per thread (vCPU) too */
	__u8 pad;
};

enum kw_ev_type {
	KW_EV_EXIT = 1,       /* exit: isa 1/2 = kvm_exit, 0 = exit to user space */
	KW_EV_FAULT,
	KW_EV_MMIO,
	KW_EV_DIRTY,
	KW_EV_HALTPOLL,
	KW_EV_WAKEUP,
	KW_EV_IRQ,
	KW_EV_RUNQ,
};

/* Sources of a fault event. */
#define KW_FAULT_SRC_PF 1     /* kvm:kvm_page_fault */
#define KW_FAULT_SRC_SPTE 2   /* kvmmmu:kvm_mmu_spte_requested */
/* Sources of a dirty page event. */
#define KW_DIRTY_SRC_MARK 1   /* mark_page_dirty_in_slot (gfn absolute) */
#define KW_DIRTY_SRC_RING 2   /* kvm:kvm_dirty_ring_push (gfn = offset in slot) */

/* IRQ event kinds (stats key .kind). */
enum kw_irq_kind {
	KW_IRQ_SET = 0,       /* kvm_set_irq: a GSI level change (a = gsi, b = level) */
	KW_IRQ_PIC,           /* kvm_pic_set_irq (pin, a = chip, b = elcr | imr << 8) */
	KW_IRQ_IOAPIC,        /* kvm_ioapic_set_irq (pin, a = redirection entry) */
	KW_IRQ_MSI,           /* kvm_msi_set_irq (a = address, b = data) */
	KW_IRQ_APIC,          /* kvm_apic_accept_irq (pin = apicid, a = vector, b = dm | tm << 16) */
	KW_IRQ_EOI,           /* kvm_eoi (pin = vector) */
	KW_IRQ_ACK,           /* kvm_ack_irq (pin, a = irqchip) */
	KW_IRQ_VIRQ,          /* kvm_inj_virq (pin = vector, b = soft | reinjected << 1) */
	KW_IRQ__N
};
/* Latency kinds of the irq stats map (reason = vector): injection (IOAPIC
 * pin up, MSI) to acceptance by a LAPIC, and to the guest's EOI. */
#define KW_IRQ_LAT_ACCEPT 16
#define KW_IRQ_LAT_EOI 17

/* Run-queue waits (runq.bpf.c, stats key .kind; .reason = 1 for vCPU
 * threads, whose .tid is kept, 0 for the VM's other threads, tid 0). */
enum kw_runq_kind {
	KW_RUNQ_WAKEUP = 0,   /* sched_wakeup -> running (count = wakeups) */
	KW_RUNQ_WAKEUP_NEW,   /* sched_wakeup_new (a new thread) -> running */
	KW_RUNQ_PREEMPT,      /* preempted, still runnable (sched_switch prev) -> running again */
	KW_RUNQ__N
};

struct kw_event {
	__u32 type;           /* enum kw_ev_type */
	__u32 tgid, tid;
	__u32 pad;
	__u64 ts;             /* CLOCK_MONOTONIC ns */
	union {
		struct { __u32 reason, isa; __u64 lat_ns; __u32 vcpu_id; __u32 timed; } exit;
		struct { __u64 addr, error_code, gfn, lat_ns; __u32 level, src; __u64 hva, pfn; } fault;
		struct { __u64 gpa, val; __u32 type, len; } mmio;
		struct { __u64 gfn; __u32 slot, src; } dirty;
		struct { __u32 vcpu_id, old_ns, new_ns, grow; } hp;
		struct { __u64 ns; __u32 waited, valid; } wake;
		struct { __u64 a, b, lat_ns; __u32 kind, pin, coalesced, via_tgid; } irq;
		struct { __u64 lat_ns; __u32 kind, vcpu_thread, cpu, prev_tid; } runq; /* tgid/tid: the thread that waited */
	};
};

/* Key of every object's `stats` map.  What kind/reason mean depends on the
 * object: exits (kind = isa, reason = exit reason), faults (kind = source),
 * mmio (kind = type), dirty (kind = source), haltpoll (kind = grow, reason =
 * vcpu_id), wakeup (kind = waited), irq (kind = enum kw_irq_kind), runq (kind =
 * enum kw_runq_kind, reason = vCPU thread). */
struct kw_key {
	__u32 tgid;
	__u32 tid;            /* 0 unless cfg.per_thread */
	__u32 kind;
	__u32 reason;
};

struct kw_agg {
	__u64 count;          /* events */
	__u64 timed;          /* events with a latency (count of sum/slots) */
	__u64 sum_ns;
	__u64 min_ns, max_ns;
	__u64 aux;            /* object specific: coalesced irqs, last halt_poll_ns */
	__u64 slots[KW_HIST_SLOTS];
};

/* Interval aggregates (-s INTERVAL): the same kw_agg, per (stats key,
 * epoch), in each object's `ival` map, made while the object's `kw_epoch`
 * (array of 1) is non-zero.  User space ends an interval by storing epoch
 * + 1, waiting for an RCU grace period (every program that read the old
 * epoch has returned: they run under rcu_read_lock), then reading and
 * deleting the entries of the old epoch, which nothing writes any more:
 * every field, min_ns and max_ns too, is exactly that interval's. */
struct kw_ival_key {
	struct kw_key k;
	__u64 epoch;
};
#define KW_IVAL_ENTRIES 16384

/* An exit or fault in progress on a thread (LRU maps kexit/uexit/pending,
 * keyed by tid; the loader reports what is left at the end). */
struct kw_pending {
	__u64 ts;
	__u32 tgid;
	__u32 reason, isa;    /* exits; faults: isa = source */
	__u32 vcpu_id;
	__u64 addr, error_code, gfn;  /* faults */
	__u64 hva, pfn;               /* faults: host virtual address and frame of the gfn (0 unknown) */
	__u32 slot, pad;              /* faults: memslot id */
};

/* Value of the faults object's per-page map (key: kw_addr_key, slot =
 * memslot id, addr = gfn). */
struct kw_fault_page {
	__u64 count, hva, pfn;
};

/* The context of exits.bpf.c's replay_exit program (BPF_PROG_TEST_RUN's
 * ctx_in, one __u64 per argument; kw_bpf_replay_exit). */
enum kw_replay_arg {
	KW_REPLAY_ISA, KW_REPLAY_REASON, KW_REPLAY_VCPU,
	KW_REPLAY_LAT,        /* ns from the exit to the next entry, KW_REPLAY_UNTIMED: none */
	KW_REPLAY_TGID, KW_REPLAY_TID,  /* 0: the calling process / thread */
	KW_REPLAY__N
};
#define KW_REPLAY_UNTIMED (~0ull)

/* Key of the bounded (LRU) per-address maps: mmio GPAs, dirty GFNs. */
struct kw_addr_key {
	__u32 tgid;
	__u32 slot;           /* mmio: type; dirty: memslot id */
	__u64 addr;           /* mmio: gpa; dirty: gfn */
};

#endif
