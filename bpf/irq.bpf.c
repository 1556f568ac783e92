// SPDX-License-Identifier: GPL-2.0
/* irq.bpf.c - interrupt injection (-i): GSI level changes (kvm_set_irq), the
 * in-kernel PIC, IOAPIC and MSI routes (with coalesced = already pending),
 * delivery to a local APIC, EOIs, PIC acks and injection into a vCPU
 * (kvm_inj_virq).  Counted per VM and kind (stats aux = coalesced). */
#include "kw_helpers.bpf.h"

KW_COMMON_MAPS(4096);

static __always_inline void on_irq(__u32 kind, __u32 pin, __u64 a, __u64 b, bool coalesced)
{
	struct kw_event *e;
	struct kw_agg *g;
	struct kw_key k;

	if (!kw_wanted(&kw_cfg))
		return;
	if (kw_cfg.aggregate) {
		kw_key_init(&k, &kw_cfg, kind, 0);
		g = kw_agg_get(&stats, &k);
		if (g) {
			kw_agg_count(g);
			if (coalesced)
				__sync_fetch_and_add(&g->aux, 1);
		}
	}
	if (kw_cfg.stream && (e = kw_event_reserve(&events, &lost, KW_EV_IRQ))) {
		e->irq.kind = kind;
		e->irq.pin = pin;
		e->irq.a = a;
		e->irq.b = b;
		e->irq.coalesced = coalesced;
		bpf_ringbuf_submit(e, 0);
	}
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
