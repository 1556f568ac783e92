// SPDX-License-Identifier: GPL-2.0
/* wakeup.bpf.c - vCPU wakeups (-w): kvm:kvm_vcpu_wakeup, one per halt, with
 * how long the vCPU was halted (log2 histogram) and whether it waited
 * (scheduled out) or was woken while polling. */
#include "kw_helpers.bpf.h"

KW_COMMON_MAPS(4096);

static __always_inline void on_wakeup(__u64 ns, bool waited, bool valid)
{
	struct kw_event *e;
	struct kw_aggs a;
	struct kw_key k;

	if (!kw_wanted(&kw_cfg))
		return;
	if (kw_cfg.aggregate) {
		kw_key_init(&k, &kw_cfg, waited ? 1 : 0, 0);
		kw_aggs_get(&a, &stats, &k);
		kw_aggs_count(&a);
		kw_aggs_latency(&a, ns);
		if (valid)
			kw_aggs_aux_add(&a, 1);
	}
	if (kw_cfg.stream && (e = kw_event_reserve(&events, &lost, KW_EV_WAKEUP))) {
		e->wake.ns = ns;
		e->wake.waited = waited;
		e->wake.valid = valid;
		bpf_ringbuf_submit(e, 0);
	}
}

SEC("tp_btf/kvm_vcpu_wakeup")
int BPF_PROG(btf_kvm_vcpu_wakeup, __u64 ns, bool waited, bool valid)
{
	on_wakeup(ns, waited, valid);
	return 0;
}

SEC("raw_tp/kvm_vcpu_wakeup")
int BPF_PROG(raw_kvm_vcpu_wakeup, __u64 ns, bool waited, bool valid)
{
	on_wakeup(ns, waited, valid);
	return 0;
}
