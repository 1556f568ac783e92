// SPDX-License-Identifier: GPL-2.0
/* kw_src_bpf.c - the bpf source of the collector: the in-kernel aggregates
 * of cfg.bpf_features (kvm/kw_bpf.c loads and attaches them) as metric rows
 * (metrics_bpf.def), per VM; entries of VMs that are gone are pruned. */
#include "core/kw_collector.h"
#include "kvm/kw_bpf.h"
#include "kvm/kw_decode.h"
#include "util/kw_priv.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/types.h>

#include "kvmwatch.h"

/* ------------------------------------------------- metric-table rows */

struct read_ctx {
	pid_t tgid;
	int bit;
	struct kw_sampleset *ss;
	int err;
};

static void add(struct read_ctx *c, int metric, const char *inst, uint64_t v)
{
	if (kw_ss_add_u64(c->ss, metric, inst, v))
		c->err = -ENOMEM;
}

static int read_agg(const struct kw_key *k, const struct kw_agg *v, void *arg)
{
	struct read_ctx *c = arg;
	char buf[64];
	const char *n;

	if (k->tgid != (__u32)c->tgid)
		return 0;
	switch (c->bit) {
	case KW_BPF_BIT_EXITS:
		n = kw_kvm_exit_name(k->kind, k->reason, buf, sizeof(buf));
		add(c, k->kind == KW_ISA_USER ? KW_M_BPF_UEXITS : KW_M_BPF_EXITS, n, v->count);
		add(c, k->kind == KW_ISA_USER ? KW_M_BPF_UEXIT_TIME : KW_M_BPF_EXIT_TIME, n, v->sum_ns);
		break;
	case KW_BPF_BIT_FAULTS:
		add(c, KW_M_BPF_MMU_FAULTS, NULL, v->count);
		add(c, KW_M_BPF_MMU_FAULT_TIME, NULL, v->sum_ns);
		break;
	case KW_BPF_BIT_MMIO:
		add(c, KW_M_BPF_MMIO, kw_kvm_mmio_type(k->kind), v->count);
		break;
	case KW_BPF_BIT_DIRTY:
		add(c, KW_M_BPF_DIRTY, NULL, v->count);
		break;
	case KW_BPF_BIT_HALTPOLL:
		add(c, KW_M_BPF_HALTPOLL, kw_kvm_haltpoll_change(k->kind), v->count);
		break;
	case KW_BPF_BIT_WAKEUP:
		add(c, KW_M_BPF_WAKEUPS, kw_kvm_wakeup_how(k->kind), v->count);
		add(c, KW_M_BPF_HALT_TIME, NULL, v->sum_ns);
		break;
	case KW_BPF_BIT_IRQ:
		if (k->kind >= KW_IRQ__N)
			break; /* injection latencies (KW_IRQ_LAT_*): the event mode's */
		add(c, KW_M_BPF_IRQ, kw_kvm_irq_kind(k->kind), v->count);
		if (k->kind == KW_IRQ_PIC || k->kind == KW_IRQ_IOAPIC)
			add(c, KW_M_BPF_IRQ_COALESCED, kw_kvm_irq_kind(k->kind), v->aux);
		break;
	case KW_BPF_BIT_RUNQ:
		/* waits measured (timed), not events: of every kind together */
		add(c, KW_M_BPF_RUNQ_WAITS, k->reason ? "vcpu" : "other", v->timed);
		add(c, KW_M_BPF_RUNQ_WAIT, k->reason ? "vcpu" : "other", v->sum_ns);
		break;
	}
	return c->err;
}

int kw_bpf_read_vm(struct kw_bpf *b, pid_t tgid, struct kw_sampleset *ss)
{
	struct read_ctx c = { .tgid = tgid, .ss = ss };
	int bit;

	for (bit = 0; bit < KW_BPF__N && !c.err; bit++) {
		if (!(kw_bpf_active(b) & (1u << bit)))
			continue;
		c.bit = bit;
		/* counters that exist even at zero, so rates start at once */
		if (bit == KW_BPF_BIT_FAULTS) {
			add(&c, KW_M_BPF_MMU_FAULTS, NULL, 0);
			add(&c, KW_M_BPF_MMU_FAULT_TIME, NULL, 0);
		} else if (bit == KW_BPF_BIT_DIRTY) {
			add(&c, KW_M_BPF_DIRTY, NULL, 0);
		} else if (bit == KW_BPF_BIT_HALTPOLL) {
			add(&c, KW_M_BPF_HALTPOLL, kw_kvm_haltpoll_change(1), 0);
			add(&c, KW_M_BPF_HALTPOLL, kw_kvm_haltpoll_change(0), 0);
		} else if (bit == KW_BPF_BIT_WAKEUP) {
			add(&c, KW_M_BPF_WAKEUPS, kw_kvm_wakeup_how(1), 0);
			add(&c, KW_M_BPF_WAKEUPS, kw_kvm_wakeup_how(0), 0);
			add(&c, KW_M_BPF_HALT_TIME, NULL, 0);
		} else if (bit == KW_BPF_BIT_RUNQ) {
			add(&c, KW_M_BPF_RUNQ_WAITS, "vcpu", 0);
			add(&c, KW_M_BPF_RUNQ_WAITS, "other", 0);
			add(&c, KW_M_BPF_RUNQ_WAIT, "vcpu", 0);
			add(&c, KW_M_BPF_RUNQ_WAIT, "other", 0);
		}
		kw_bpf_foreach_agg(b, bit, read_agg, &c);
	}
	return c.err;
}

/* ------------------------------------------------- collector source */

static int src_init(struct kw_collector *c, void **state, char *why, size_t whylen)
{
	struct kw_bpf_opts o = { .features = c->cfg.bpf_features, .aggregate = 1 };
	struct kw_bpf *b;
	int bit;

	if (!(c->cfg.bpf_features & KW_BPF_ALL)) {
		snprintf(why, whylen, "no eBPF features requested");
		return -ECANCELED;
	}
	if (c->cfg.npids == 1 && !c->cfg.nnames)
		o.targ_tgid = c->cfg.pids[0];
	b = kw_bpf_open(&o, why, whylen);
	if (!b)
		return -1;
	for (bit = 0; bit < KW_BPF__N; bit++)
		if (kw_bpf_why(b, bit))
			kw_warn("eBPF %s unavailable: %s", kw_feature_name(bit), kw_bpf_why(b, bit));
	*state = b;
	return 0;
}

static int vm_live(pid_t tgid, void *arg)
{
	const struct kw_collector *c = arg;
	size_t i;

	for (i = 0; i < c->vms.n; i++)
		if (c->vms.vms[i].pid == tgid && c->vms.vms[i].seen)
			return 1;
	return 0;
}

/* After the other sources found this cycle's VMs: entries of VMs that are
 * gone are removed (the maps are plain hashes: left alone they fill, and a
 * new VM's events would not be counted at all), and a map that did fill is
 * said once per feature. */
static int src_discover(struct kw_collector *c, void *state)
{
	struct kw_bpf *b = state;
	int bit;

	if (kw_bpf_prune(b, vm_live, c) == -ENOMEM)
		return -ENOMEM;
	for (bit = 0; bit < KW_BPF__N; bit++) {
		uint64_t d = kw_bpf_dropped(b, bit);
		char key[48];

		if (!d)
			continue;
		snprintf(key, sizeof(key), "bpf-full:%d", bit);
		kw_log_once(KW_LOG_WARN, key, "eBPF %s: its statistics map is full (%u entries): %llu events were not "
			    "counted; entries of VMs that exited are removed each cycle", kw_feature_name(bit),
			    kw_bpf_stats_capacity(b, bit), (unsigned long long)d);
	}
	return 0;
}

static int src_collect_vm(struct kw_collector *c, void *state, struct kw_vm *vm)
{
	int r;

	(void)c;
	if (vm->pid <= 0)
		return 0;
	/* its threads are this cycle's (procfs ran first): watch them */
	r = kw_bpf_watch_vm(state, vm);
	if (r)
		kw_log_once(KW_LOG_WARN, "bpf-runq-watch", "eBPF runq: cannot watch VM %s (pid %d): %s", vm->name,
			    vm->pid, strerror(-r));
	return kw_bpf_read_vm(state, vm->pid, &vm->stats);
}

static void src_fini(struct kw_collector *c, void *state)
{
	(void)c;
	kw_bpf_close(state);
}

const struct kw_source_ops kw_source_bpf = {
	.id = KW_SRC_BPF,
	.name = "bpf",
	.init = src_init,
	.discover = src_discover,
	.collect_vm = src_collect_vm,
	.fini = src_fini,
};
