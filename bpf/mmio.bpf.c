// SPDX-License-Identifier: GPL-2.0
/* mmio.bpf.c - MMIO accesses (-m): kvm:kvm_mmio (reads, writes, unsatisfied
 * reads that go to user space) and kvm:kvm_fast_mmio (ioeventfd), counted per
 * VM and type, with the most used GPAs in a bounded LRU map. */
#include "kw_helpers.bpf.h"

#define MMIO_FAST 3 /* after KVM_TRACE_MMIO_READ_UNSATISFIED/READ/WRITE = 0/1/2 */

KW_COMMON_MAPS(1024);

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct kw_addr_key);
	__type(value, __u64);
} addrs SEC(".maps");

static __always_inline void on_mmio(__u32 type, __u32 len, __u64 gpa, __u64 *valp)
{
	struct kw_addr_key ak = { .tgid = kw_tgid(), .slot = type, .addr = gpa };
	struct kw_event *e;
	struct kw_key k;
	__u64 val = 0;

	if (!kw_wanted(&kw_cfg))
		return;
	if (kw_cfg.aggregate) {
		kw_key_init(&k, &kw_cfg, type, 0);
		kw_agg_count_addr(&stats, &addrs, &k, &ak);
	}
	if (kw_cfg.stream && (e = kw_event_reserve(&events, &lost, KW_EV_MMIO))) {
		/* the size as a 64-bit value bounded right before the call
		 * (a 32-bit bound on a reloaded register fails to verify) */
		__u64 sz = (__u64)len & 0xf;

		if (valp && len <= 8 && sz && sz <= 8)
			bpf_probe_read_kernel(&val, sz, valp);
		e->mmio.gpa = gpa;
		e->mmio.val = val;
		e->mmio.type = type;
		e->mmio.len = len;
		bpf_ringbuf_submit(e, 0);
	}
}

SEC("tp_btf/kvm_mmio")
int BPF_PROG(btf_kvm_mmio, int type, int len, __u64 gpa, void *val)
{
	on_mmio(type, len, gpa, val);
	return 0;
}

SEC("raw_tp/kvm_mmio")
int BPF_PROG(raw_kvm_mmio, int type, int len, __u64 gpa, void *val)
{
	on_mmio(type, len, gpa, val);
	return 0;
}

SEC("tp_btf/kvm_fast_mmio")
int BPF_PROG(btf_kvm_fast_mmio, __u64 gpa)
{
	on_mmio(MMIO_FAST, 0, gpa, NULL);
	return 0;
}

SEC("raw_tp/kvm_fast_mmio")
int BPF_PROG(raw_kvm_fast_mmio, __u64 gpa)
{
	on_mmio(MMIO_FAST, 0, gpa, NULL);
	return 0;
}
