// SPDX-License-Identifier: GPL-2.0
/* haltpoll.bpf.c - halt-polling changes (-n): kvm:kvm_halt_poll_ns, counted
 * per VM and vCPU as grow/shrink (stats aux = the last new value). */
#include "kw_helpers.bpf.h"

KW_COMMON_MAPS(4096);

static __always_inline void on_halt_poll(bool grow, __u32 vcpu_id, __u32 new_ns, __u32 old_ns)
{
	struct kw_event *e;
	struct kw_aggs a;
	struct kw_key k;

	if (!kw_wanted(&kw_cfg))
		return;
	if (kw_cfg.aggregate) {
		kw_key_init(&k, &kw_cfg, grow ? 1 : 0, vcpu_id);
		kw_aggs_get(&a, &stats, &k);
		kw_aggs_count(&a);
		kw_aggs_aux_set(&a, new_ns);
	}
	if (kw_cfg.stream && (e = kw_event_reserve(&events, &lost, KW_EV_HALTPOLL))) {
		e->hp.vcpu_id = vcpu_id;
		e->hp.old_ns = old_ns;
		e->hp.new_ns = new_ns;
		e->hp.grow = grow;
		bpf_ringbuf_submit(e, 0);
	}
}

SEC("tp_btf/kvm_halt_poll_ns")
int BPF_PROG(btf_kvm_halt_poll_ns, bool grow, unsigned int vcpu_id, unsigned int new_ns, unsigned int old_ns)
{
	on_halt_poll(grow, vcpu_id, new_ns, old_ns);
	return 0;
}

SEC("raw_tp/kvm_halt_poll_ns")
int BPF_PROG(raw_kvm_halt_poll_ns, bool grow, unsigned int vcpu_id, unsigned int new_ns, unsigned int old_ns)
{
	on_halt_poll(grow, vcpu_id, new_ns, old_ns);
	return 0;
}
