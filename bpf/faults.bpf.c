// SPDX-License-Identifier: GPL-2.0
/* faults.bpf.c - KVM MMU page faults (-f).
 *
 * A fault is counted once: at kvm:kvm_page_fault where that fires, else at
 * kvmmmu:kvm_mmu_spte_requested (which is what fires for shadow/PVM MMUs and
 * for every fault that gets a mapping).  Its latency runs from there to the
 * kvmmmu:kvm_mmu_set_spte that installs the gfn on the same thread.  Each
 * hook has a tp_btf and a raw_tp program; the loader picks one at run time.
 * The gfn's host virtual address and pfn come from the struct
 * kvm_page_fault the MMU tracepoint is handed (Linux 5.16+: its slot and
 * pfn; before, kvm_mmu_spte_requested had other arguments and -f does not
 * load); faults are also counted per page (addrs), with them. */
#include "kw_helpers.bpf.h"

#define GFN_UNSET (~0ull)

KW_COMMON_MAPS(16384);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct kw_pending);
} pending SEC(".maps");

/* Faults per guest page, with its hva and pfn (bounded: LRU). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct kw_addr_key);
	__type(value, struct kw_fault_page);
} addrs SEC(".maps");

static __always_inline void page_count(const struct kw_pending *p)
{
	struct kw_addr_key ak = { .tgid = p->tgid, .slot = p->slot, .addr = p->gfn };
	struct kw_fault_page *v, nv = { .count = 1, .hva = p->hva, .pfn = p->pfn };

	if (!kw_cfg.aggregate || p->gfn == GFN_UNSET)
		return;
	v = bpf_map_lookup_elem(&addrs, &ak);
	if (!v) {
		bpf_map_update_elem(&addrs, &ak, &nv, BPF_NOEXIST);
		return;
	}
	__sync_fetch_and_add(&v->count, 1);
	v->hva = p->hva;
	v->pfn = p->pfn;
}

/* hva and pfn of the fault's gfn (struct kvm_page_fault, 5.16+): the
 * memslot maps gfn to userspace_addr + (gfn - base_gfn) pages; pfn is what
 * KVM resolved it to before kvm_mmu_spte_requested. */
static __always_inline void page_of(struct kvm_page_fault *f, __u64 gfn, struct kw_pending *p)
{
	struct kvm_memory_slot *slot = BPF_CORE_READ(f, slot);

	p->pfn = BPF_CORE_READ(f, pfn);
	if (slot) {
		p->hva = BPF_CORE_READ(slot, userspace_addr) + ((gfn - BPF_CORE_READ(slot, base_gfn)) << 12);
		p->slot = (__u32)BPF_CORE_READ(slot, id);
	}
}

static __always_inline void fault_emit(const struct kw_pending *p, __u64 lat, int timed, __u32 level)
{
	struct kw_event *e;

	if (!kw_cfg.stream || !(e = kw_event_reserve(&events, &lost, KW_EV_FAULT)))
		return;
	e->ts = p->ts;
	e->fault.addr = p->addr;
	e->fault.error_code = p->error_code;
	e->fault.gfn = p->gfn;
	e->fault.src = p->isa;
	e->fault.lat_ns = timed ? lat : 0;
	e->fault.level = level;
	e->fault.hva = p->hva;
	e->fault.pfn = p->pfn;
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void fault_begin(__u32 src, __u64 addr, __u64 ec, __u64 gfn, __u32 vcpu_id,
					struct kvm_page_fault *f)
{
	struct kw_pending p = { .ts = bpf_ktime_get_ns(), .tgid = kw_tgid(), .isa = src, .vcpu_id = vcpu_id,
				.addr = addr, .error_code = ec, .gfn = gfn };
	__u32 tid = kw_tid();
	struct kw_pending *old;
	struct kw_aggs a;
	struct kw_key k;

	if (!kw_wanted(&kw_cfg))
		return;
	if (f)
		page_of(f, gfn, &p);
	old = bpf_map_lookup_elem(&pending, &tid);
	if (old) {
		/* the fault kvm_page_fault announced reaches the MMU: same fault */
		if (src == KW_FAULT_SRC_SPTE && old->isa == KW_FAULT_SRC_PF && old->gfn == GFN_UNSET) {
			old->gfn = gfn;
			old->hva = p.hva;
			old->pfn = p.pfn;
			old->slot = p.slot;
			page_count(old);
			return;
		}
		/* the previous fault ended without a mapping (e.g. MMIO) */
		fault_emit(old, 0, 0, 0);
	}
	if (kw_cfg.aggregate) {
		kw_key_init(&k, &kw_cfg, 0, 0);
		kw_aggs_get(&a, &stats, &k);
		kw_aggs_count(&a);
	}
	page_count(&p);
	bpf_map_update_elem(&pending, &tid, &p, BPF_ANY);
}

static __always_inline void fault_end(__u64 gfn, __u32 level)
{
	__u32 tid = kw_tid();
	struct kw_pending *p = bpf_map_lookup_elem(&pending, &tid);
	struct kw_aggs a;
	struct kw_key k;
	__u64 lat;

	if (!p || p->gfn != gfn)
		return;
	lat = bpf_ktime_get_ns() - p->ts;
	if (kw_cfg.aggregate) {
		kw_key_init(&k, &kw_cfg, 0, 0);
		kw_aggs_get(&a, &stats, &k);
		kw_aggs_latency(&a, lat);
	}
	fault_emit(p, lat, 1, level);
	bpf_map_delete_elem(&pending, &tid);
}

static __always_inline void on_page_fault(struct kvm_vcpu *vcpu, __u64 addr, __u64 ec)
{
	fault_begin(KW_FAULT_SRC_PF, addr, ec, GFN_UNSET, BPF_CORE_READ(vcpu, vcpu_id), NULL);
}

static __always_inline void on_spte_requested(struct kvm_page_fault *f)
{
	fault_begin(KW_FAULT_SRC_SPTE, BPF_CORE_READ(f, addr), BPF_CORE_READ(f, error_code), BPF_CORE_READ(f, gfn),
		    0, f);
}

SEC("tp_btf/kvm_page_fault")
int BPF_PROG(btf_kvm_page_fault, struct kvm_vcpu *vcpu, __u64 addr, __u64 ec)
{
	on_page_fault(vcpu, addr, ec);
	return 0;
}

SEC("raw_tp/kvm_page_fault")
int BPF_PROG(raw_kvm_page_fault, struct kvm_vcpu *vcpu, __u64 addr, __u64 ec)
{
	on_page_fault(vcpu, addr, ec);
	return 0;
}

SEC("tp_btf/kvm_mmu_spte_requested")
int BPF_PROG(btf_kvm_mmu_spte_requested, struct kvm_page_fault *f)
{
	on_spte_requested(f);
	return 0;
}

SEC("raw_tp/kvm_mmu_spte_requested")
int BPF_PROG(raw_kvm_mmu_spte_requested, struct kvm_page_fault *f)
{
	on_spte_requested(f);
	return 0;
}

SEC("tp_btf/kvm_mmu_set_spte")
int BPF_PROG(btf_kvm_mmu_set_spte, int level, gfn_t gfn)
{
	fault_end(gfn, level);
	return 0;
}

SEC("raw_tp/kvm_mmu_set_spte")
int BPF_PROG(raw_kvm_mmu_set_spte, int level, gfn_t gfn)
{
	fault_end(gfn, level);
	return 0;
}
