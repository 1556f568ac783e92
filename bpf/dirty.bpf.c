// SPDX-License-Identifier: GPL-2.0
/* dirty.bpf.c - dirty guest pages (-d).  Preferred hook: the function every
 * dirtying goes through, mark_page_dirty_in_slot (fentry, else kprobe), for
 * slots with dirty tracking enabled; fallback: kvm:kvm_dirty_ring_push,
 * which fires once per page pushed to a vCPU's dirty ring.  Counted per VM,
 * with the most dirtied GFNs in a bounded LRU map. */
#include "kw_helpers.bpf.h"

#define KVM_MEM_LOG_DIRTY_PAGES 1

KW_COMMON_MAPS(1024);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct kw_addr_key);
	__type(value, __u64);
} addrs SEC(".maps");

static __always_inline void on_dirty(__u32 src, __u32 slot, __u64 gfn)
{
	struct kw_addr_key ak = { .tgid = kw_tgid(), .slot = slot, .addr = gfn };
	struct kw_event *e;
	struct kw_key k;

	if (!kw_wanted(&kw_cfg))
		return;
	if (kw_cfg.aggregate) {
		kw_key_init(&k, &kw_cfg, src, 0);
		kw_agg_count_addr(&stats, &addrs, &k, &ak);
	}
	if (kw_cfg.stream && (e = kw_event_reserve(&events, &lost, KW_EV_DIRTY))) {
		e->dirty.gfn = gfn;
		e->dirty.slot = slot;
		e->dirty.src = src;
		bpf_ringbuf_submit(e, 0);
	}
}

static __always_inline void on_mark(const struct kvm_memory_slot *ms, __u64 gfn)
{
	__u32 slot;

	/* mark_page_dirty_in_slot() returns early for these: not a dirtying */
	if (!ms || !(BPF_CORE_READ(ms, flags) & KVM_MEM_LOG_DIRTY_PAGES))
		return;
	slot = ((__u32)BPF_CORE_READ(ms, as_id) << 16) | (__u16)BPF_CORE_READ(ms, id);
	on_dirty(KW_DIRTY_SRC_MARK, slot, gfn - BPF_CORE_READ(ms, base_gfn));
}

SEC("fentry/mark_page_dirty_in_slot")
int BPF_PROG(fentry_mark_page_dirty_in_slot, struct kvm *kvm, const struct kvm_memory_slot *ms, gfn_t gfn)
{
	on_mark(ms, gfn);
	return 0;
}

SEC("kprobe/mark_page_dirty_in_slot")
int BPF_KPROBE(kprobe_mark_page_dirty_in_slot, struct kvm *kvm, const struct kvm_memory_slot *ms, gfn_t gfn)
{
	on_mark(ms, gfn);
	return 0;
}

SEC("tp_btf/kvm_dirty_ring_push")
int BPF_PROG(btf_kvm_dirty_ring_push, struct kvm_dirty_ring *ring, __u32 slot, __u64 offset)
{
	on_dirty(KW_DIRTY_SRC_RING, slot, offset);
	return 0;
}

SEC("raw_tp/kvm_dirty_ring_push")
int BPF_PROG(raw_kvm_dirty_ring_push, struct kvm_dirty_ring *ring, __u32 slot, __u64 offset)
{
	on_dirty(KW_DIRTY_SRC_RING, slot, offset);
	return 0;
}
