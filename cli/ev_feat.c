// SPDX-License-Identifier: GPL-2.0
/* ev_feat.c - one ops record per eBPF feature (like perf kvm stat's
 * kvm_events_ops): how its events stream and how its summary table reads,
 * each field written once for text and JSON (ev_write.c). */
#include "events.h"
#include "kvm/kw_decode.h"
#include "util/kw_util.h"

#include <string.h>

/* A row's vCPU: "all" without --per-vcpu, else its index, or "other" for
 * the VM's threads that are no vCPU and injections made from outside it. */
static const char *vcpu_col(const struct ev_section *s, const struct agg_row *row, char *buf, size_t len)
{
	if (!s->per || row->vcpu == EV_VCPU_ALL)
		return "all";
	if (row->vcpu == EV_VCPU_OTHER)
		return "other";
	snprintf(buf, len, "%d", row->vcpu);
	return buf;
}

/* The row's vCPU column (tfmt) and JSON member "vcpu": its index as a
 * string, null for "other"; without --per-vcpu "all" if always, else none. */
static void ew_vcpu(struct ew *w, const struct ev_section *s, const struct agg_row *row, const char *tfmt,
		    int always)
{
	char vc[24];
	const char *v = vcpu_col(s, row, vc, sizeof(vc));

	if (s->per && row->vcpu == EV_VCPU_OTHER) {
		ew_null(w, "vcpu", NULL);
		ew_s(w, NULL, tfmt, v);
	} else {
		ew_s(w, s->per || always ? "vcpu" : NULL, tfmt, v);
	}
}

static const char *delivery_mode(unsigned dm)
{
	static const char *const n[8] = { "fixed", "lowest", "smi", "res3", "nmi", "init", "sipi", "extint" };
	return n[dm & 7];
}

/* ------------------------------------------------------------ exits */

static void exit_fields(struct ew *w, unsigned isa, unsigned reason, int timed, uint64_t lat, int unfinished)
{
	char buf[64];

	ew_s(w, "isa", "%-4s", kw_kvm_isa_name(isa));
	ew_s(w, "reason", " %-24s", kw_kvm_exit_name(isa, reason, buf, sizeof(buf)));
	ew_u(w, "code", NULL, reason);
	ew_latency(w, "latency_ns", "latency", timed, lat);
	ew_b(w, "unfinished", "%s", unfinished, " (unfinished)", "");
	ew_eol(w);
}

static void exit_event(struct ew *w, const struct kw_event *e)
{
	exit_fields(w, e->exit.isa, e->exit.reason, e->exit.timed, e->exit.lat_ns, 0);
}

static void exit_head(struct ew *w, const struct ev_section *s)
{
	if (!w->json)
		fprintf(w->f, "  %-5s %-4s %-28s %10s %9s %8s %10s %10s %10s\n", "VCPU", "ISA", "EXIT REASON",
			"SAMPLES", "SAMPLES%", "TIME%", "MIN_us", "AVG_us", "MAX_us");
}

static void exit_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i)
{
	unsigned isa = row->k.kind % 3;
	double sp = s->tot[isa] ? 100.0 * (double)row->v.count / (double)s->tot[isa] : 0;
	double tp = s->tns[isa] ? 100.0 * (double)row->v.sum_ns / (double)s->tns[isa] : 0;
	char buf[64];

	ew_elem(w, i);
	ew_vcpu(w, s, row, "  %-5s", 0);
	ew_s(w, "isa", " %-4s", kw_kvm_isa_name(row->k.kind));
	ew_s(w, "reason", " %-28s", kw_kvm_exit_name(row->k.kind, row->k.reason, buf, sizeof(buf)));
	ew_u(w, "code", NULL, row->k.reason);
	ew_u(w, NULL, " %10llu", row->v.count);
	ew_f(w, "samples_pct", " %8.2f%%", sp, 2);
	ew_f(w, "time_pct", " %7.2f%%", tp, 2);
	ew_lat_stats(w, &row->v);
	ew_hist(w, &row->v, NULL);
	ew_text(w, "\n");
	ew_elem_end(w);
}

static void exit_foot(struct ew *w, const struct ev_section *s)
{
	static const unsigned isas[] = { KW_ISA_VMX, KW_ISA_SVM, KW_ISA_USER };
	static const char *const label[] = { [KW_ISA_USER] = "to user space ns", [KW_ISA_VMX] = "vmx exit ns",
					     [KW_ISA_SVM] = "svm exit ns" };
	size_t i, k;
	int j;

	if (w->json)
		return; /* each row has its hist_log2_ns */
	fprintf(w->f, "  total: %llu exits in the kernel, %llu to user space\n",
		(unsigned long long)(s->tot[KW_ISA_VMX] + s->tot[KW_ISA_SVM]), (unsigned long long)s->tot[KW_ISA_USER]);
	/* the latency distribution of each kind of exit, all reasons together */
	for (k = 0; k < KW_ARRAY_SIZE(isas); k++) {
		struct kw_agg h;

		memset(&h, 0, sizeof(h));
		for (i = 0; i < s->r->n; i++)
			if (s->r->r[i].k.kind == isas[k])
				for (j = 0; j < KW_HIST_SLOTS; j++)
					h.slots[j] += s->r->r[i].v.slots[j];
		ew_hist(w, &h, label[isas[k]]);
	}
}

/* ----------------------------------------------------------- faults */

static void fault_fields(struct ew *w, uint64_t addr, uint64_t ec, uint64_t gfn, uint64_t hva, uint64_t pfn,
			 unsigned src, unsigned level, int timed, uint64_t lat, int unfinished)
{
	char ecs[96];

	kw_kvm_pferr_str(ec, ecs, sizeof(ecs));
	ew_u(w, "addr", "addr=0x%llx", addr);
	ew_u(w, "error_code", " error=0x%llx", ec);
	ew_s(w, "error", "(%s)", ecs);
	if (gfn == ~0ull)
		ew_null(w, "gfn", " gfn=-");
	else
		ew_u(w, "gfn", " gfn=0x%llx", gfn);
	if (hva)
		ew_u(w, "hva", " hva=0x%llx", hva);
	else
		ew_null(w, "hva", " hva=-");
	if (pfn)
		ew_u(w, "pfn", " pfn=0x%llx", pfn);
	else
		ew_null(w, "pfn", " pfn=-");
	ew_u(w, "level", " level=%llu", level);
	ew_s(w, "source", NULL, src == KW_FAULT_SRC_PF ? "kvm_page_fault" : "kvm_mmu_spte_requested");
	ew_latency(w, "latency_ns", "latency", timed, lat);
	ew_b(w, "unfinished", "%s", unfinished, " (unfinished)", "");
	ew_eol(w);
}

static void fault_event(struct ew *w, const struct kw_event *e)
{
	fault_fields(w, e->fault.addr, e->fault.error_code, e->fault.gfn, e->fault.hva, e->fault.pfn, e->fault.src,
		     e->fault.level, e->fault.lat_ns != 0, e->fault.lat_ns, 0);
}

static void fault_head(struct ew *w, const struct ev_section *s)
{
	if (!w->json)
		fprintf(w->f, "  %-5s %-8s %10s %10s %10s %10s %10s\n", "VCPU", "", "SAMPLES", "TIMED", "MIN_us",
			"AVG_us", "MAX_us");
}

/* Faults and wakeups: one row per vCPU (and how the vCPU woke), timed. */
static void timed_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i, int wake)
{
	ew_elem(w, i);
	ew_vcpu(w, s, row, "  %-5s", 1);
	ew_s(w, wake ? "how" : NULL, " %-8s", wake ? kw_kvm_wakeup_how(row->k.kind) : "");
	ew_u(w, NULL, " %10llu", row->v.count);
	ew_u(w, wake ? "valid" : NULL, " %10llu", wake ? row->v.aux : row->v.timed);
	ew_lat_stats(w, &row->v);
	ew_text(w, "\n");
	ew_hist(w, &row->v, wake ? "halt ns" : "fault ns");
	ew_elem_end(w);
}

static void fault_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i)
{
	timed_row(w, s, row, i, 0);
}

/* The most faulted pages, with their hva and pfn: "fault_pages" beside "faults". */
static void fault_after(struct ew *w, const struct ev_section *s)
{
	ew_top(w, s->x, KW_BPF_BIT_FAULTS, s->tgid);
}

/* ------------------------------------------------------------- mmio */

static void mmio_event(struct ew *w, const struct kw_event *e)
{
	ew_s(w, "access", "%-16s", kw_kvm_mmio_type(e->mmio.type));
	ew_u(w, "gpa", " gpa=0x%llx", e->mmio.gpa);
	ew_u(w, "len", " len=%llu", e->mmio.len);
	ew_u(w, "val", " val=0x%llx", e->mmio.val);
	ew_eol(w);
}

/* MMIO and IRQs: a count per kind (per vCPU with --per-vcpu). */
static void count_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, const char *name,
		      int coalesced)
{
	char vc[24], key[64];
	const char *v = vcpu_col(s, row, vc, sizeof(vc));

	snprintf(key, sizeof(key), "%s%s%s", s->per ? v : "", s->per ? ":" : "", name);
	ew_open(w, key, '{');
	ew_vcpu(w, s, row, "  %-5s", 0);
	ew_s(w, NULL, " %-16s", name);
	ew_u(w, "count", " %10llu", row->v.count);
	if (coalesced)
		ew_u(w, "coalesced", "  coalesced %llu", row->v.aux);
	ew_text(w, "\n");
	ew_close(w, '{');
}

static void mmio_head(struct ew *w, const struct ev_section *s)
{
	ew_open(w, "counts", '{');
}

static void mmio_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i)
{
	count_row(w, s, row, kw_kvm_mmio_type(row->k.kind), 0);
}

static void mmio_foot(struct ew *w, const struct ev_section *s)
{
	ew_close(w, '{');
	ew_top(w, s->x, KW_BPF_BIT_MMIO, s->tgid);
}

/* ------------------------------------------------------------ dirty */

static void dirty_event(struct ew *w, const struct kw_event *e)
{
	ew_u(w, "slot", "slot=%llu", e->dirty.slot);
	ew_u(w, "gfn", " gfn=0x%llx", e->dirty.gfn);
	ew_s(w, "source", " (%s)", e->dirty.src == KW_DIRTY_SRC_MARK ? "mark_page_dirty_in_slot" : "dirty_ring_push");
	ew_eol(w);
}

static void dirty_head(struct ew *w, const struct ev_section *s)
{
	double rate = s->dt > 0 ? (double)s->r->total_count / s->dt : 0.0;

	ew_u(w, "pages", "  dirtied pages: %llu", s->r->total_count);
	ew_f(w, "rate", " (%.1f pages/s)\n", rate, 1);
	if (s->per)
		ew_open(w, "per_vcpu", '[');
}

/* --per-vcpu: the pages each vCPU (its dirty ring) dirtied, per source. */
static void dirty_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i)
{
	if (!s->per)
		return;
	ew_elem(w, i);
	ew_vcpu(w, s, row, "  %-5s", 0);
	ew_s(w, "source", " %-24s", row->k.kind == KW_DIRTY_SRC_MARK ? "mark_page_dirty_in_slot" : "dirty_ring_push");
	ew_u(w, "pages", " %10llu\n", row->v.count);
	ew_elem_end(w);
}

static void dirty_foot(struct ew *w, const struct ev_section *s)
{
	if (s->per)
		ew_close(w, '[');
	ew_top(w, s->x, KW_BPF_BIT_DIRTY, s->tgid);
}

/* --------------------------------------------------------- haltpoll */

static void haltpoll_event(struct ew *w, const struct kw_event *e)
{
	ew_u(w, "vcpu_id", "vcpu_id=%llu", e->hp.vcpu_id);
	ew_s(w, "change", " %-6s", kw_kvm_haltpoll_change(e->hp.grow));
	ew_u(w, "old_ns", " halt_poll_ns %llu", e->hp.old_ns);
	ew_u(w, "new_ns", " -> %llu", e->hp.new_ns);
	ew_eol(w);
}

static void haltpoll_head(struct ew *w, const struct ev_section *s)
{
	if (!w->json)
		fprintf(w->f, "  %s%-8s %-6s %10s %16s\n", s->per ? "VCPU  " : "", "VCPU_ID", "CHANGE", "COUNT",
			"LAST_NS");
}

/* Keyed by KVM's vcpu_id; --per-vcpu adds the thread's vCPU index. */
static void haltpoll_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i)
{
	ew_elem(w, i);
	if (s->per)
		ew_vcpu(w, s, row, "  %-5s", 0);
	ew_u(w, "vcpu_id", s->per ? " %-8llu" : "  %-8llu", row->k.reason);
	ew_s(w, "change", " %-6s", kw_kvm_haltpoll_change(row->k.kind));
	ew_u(w, "count", " %10llu", row->v.count);
	ew_u(w, "last_ns", " %16llu\n", row->v.aux); /* aux: the last halt_poll_ns */
	ew_elem_end(w);
}

/* ----------------------------------------------------------- wakeup */

static void wakeup_event(struct ew *w, const struct kw_event *e)
{
	ew_s(w, "how", "%-6s", kw_kvm_wakeup_how(e->wake.waited));
	ew_u(w, "halt_ns", NULL, e->wake.ns);
	ew_f(w, NULL, " halted %.3fus", (double)e->wake.ns / 1e3, 0);
	ew_b(w, "valid", " polling %s", e->wake.valid, "valid", "invalid");
	ew_eol(w);
}

static void wakeup_head(struct ew *w, const struct ev_section *s)
{
	if (!w->json)
		fprintf(w->f, "  %-5s %-8s %10s %10s %10s %10s %10s\n", "VCPU", "HOW", "SAMPLES", "VALID", "MIN_us",
			"AVG_us", "MAX_us");
}

static void wakeup_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i)
{
	timed_row(w, s, row, i, 1);
}

/* -------------------------------------------------------------- irq */

static void irq_event(struct ew *w, const struct kw_event *e)
{
	uint64_t a = e->irq.a, b = e->irq.b;

	ew_s(w, "kind", "%-6s ", kw_kvm_irq_kind(e->irq.kind));
	switch (e->irq.kind) {
	case KW_IRQ_SET:
		ew_u(w, "gsi", "gsi=%llu", e->irq.pin);
		ew_i(w, "level", " level=%lld", (int32_t)b);
		break;
	case KW_IRQ_PIC:
		ew_s(w, "chip", "chip=%s", a ? "slave" : "master");
		ew_u(w, "pin", " pin=%llu", e->irq.pin);
		ew_u(w, "elcr", " elcr=%llu", b & 0xff);
		ew_u(w, "imr", " imr=%llu", (b >> 8) & 0xff);
		ew_b(w, "coalesced", " coalesced=%s", e->irq.coalesced, "true", "false");
		break;
	case KW_IRQ_IOAPIC:
		/* redirection entry: vector 0-7, delivery mode 8-10, dest mode 11,
		 * trigger 15, mask 16, destination 56-63 */
		ew_u(w, "pin", "pin=%llu", e->irq.pin);
		ew_u(w, "vector", " vector=%llu", a & 0xff);
		ew_s(w, "delivery", " delivery=%s", delivery_mode((unsigned)(a >> 8)));
		ew_s(w, "dest_mode", " dest_mode=%s", (a >> 11) & 1 ? "logical" : "physical");
		ew_s(w, "trigger", " trigger=%s", (a >> 15) & 1 ? "level" : "edge");
		ew_b(w, "masked", " masked=%s", (a >> 16) & 1, "true", "false");
		ew_u(w, "dest", " dest=%llu", a >> 56);
		ew_b(w, "coalesced", " coalesced=%s", e->irq.coalesced, "true", "false");
		break;
	case KW_IRQ_MSI:
		/* address: dest id 12-19, dest mode 2; data: vector 0-7, delivery 8-10, trigger 15 */
		ew_u(w, "address", "address=0x%llx", a);
		ew_u(w, "data", " data=0x%llx", b);
		ew_u(w, "dest", " dest=%llu", (a >> 12) & 0xff);
		ew_s(w, "dest_mode", " dest_mode=%s", (a >> 2) & 1 ? "logical" : "physical");
		ew_u(w, "vector", " vector=%llu", b & 0xff);
		ew_s(w, "delivery", " delivery=%s", delivery_mode((unsigned)(b >> 8)));
		ew_s(w, "trigger", " trigger=%s", (b >> 15) & 1 ? "level" : "edge");
		break;
	case KW_IRQ_APIC:
		ew_u(w, "apicid", "apicid=%llu", e->irq.pin);
		ew_u(w, "vector", " vector=%llu", a);
		ew_s(w, "delivery", " delivery=%s", delivery_mode((unsigned)((b & 0xffff) >> 8)));
		ew_s(w, "trigger", " trigger=%s", (b >> 16) ? "level" : "edge");
		break;
	case KW_IRQ_EOI:
		/* the kernel passes -1 when no interrupt was in service */
		if (e->irq.pin == UINT32_MAX)
			ew_null(w, "vector", "vector=none");
		else
			ew_u(w, "vector", "vector=%llu", e->irq.pin);
		break;
	case KW_IRQ_ACK:
		ew_u(w, "irqchip", "irqchip=%llu", a);
		ew_u(w, "pin", " pin=%llu", e->irq.pin);
		break;
	case KW_IRQ_VIRQ:
		ew_u(w, "vector", "vector=%llu", e->irq.pin);
		ew_b(w, "soft", " soft=%s", b & 1, "true", "false");
		ew_b(w, "reinjected", " reinjected=%s", b & 2, "true", "false");
		break;
	}
	if (e->irq.kind == KW_IRQ_APIC || e->irq.kind == KW_IRQ_EOI)
		ew_latency(w, "latency_ns", "latency",
			   e->irq.lat_ns != 0, e->irq.lat_ns);
	if (e->irq.via_tgid)
		ew_u(w, "via_pid", " via pid %llu", e->irq.via_tgid);
	ew_eol(w);
}

/* Injection latency of one vector: to acceptance by a LAPIC, to the EOI
 * (text: count, then min/avg/max in us and the histogram). */
static void irq_latency_row(struct ew *w, const struct ev_section *s, const struct agg_row *row)
{
	int eoi = row->k.kind == KW_IRQ_LAT_EOI;
	char key[64], label[48], vc[24];
	const char *v = vcpu_col(s, row, vc, sizeof(vc));

	/* per vCPU: acceptance on the injecting thread ("other" when made
	 * from outside the VM or by a thread that is no vCPU), EOI on the
	 * vCPU that EOIs */
	snprintf(key, sizeof(key), "%s%s%s_latency:%u", s->per ? v : "", s->per ? ":" : "", eoi ? "eoi" : "accept",
		 row->k.reason);
	snprintf(label, sizeof(label), "%s latency v%u", eoi ? "to-eoi" : "to-accept", row->k.reason);
	ew_open(w, key, '{');
	ew_s(w, "stage", NULL, eoi ? "eoi" : "accept");
	ew_u(w, "vector", NULL, row->k.reason);
	ew_vcpu(w, s, row, "  %-5s", 0);
	ew_s(w, NULL, " %-22s", label);
	ew_u(w, "count", " %10llu", row->v.count);
	ew_lat_stats(w, &row->v);
	ew_text(w, " us\n");
	ew_hist(w, &row->v, eoi ? "inject->eoi ns" : "inject->accept ns");
	ew_close(w, '{');
}

static void irq_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i)
{
	if (row->k.kind == KW_IRQ_LAT_ACCEPT || row->k.kind == KW_IRQ_LAT_EOI) {
		irq_latency_row(w, s, row);
		return;
	}
	count_row(w, s, row, kw_kvm_irq_kind(row->k.kind), row->k.kind == KW_IRQ_PIC || row->k.kind == KW_IRQ_IOAPIC);
}

/* ------------------------------------------------------------- runq */

static const char *runq_kind(unsigned kind)
{
	static const char *const n[KW_RUNQ__N] = { "wakeup", "wakeup_new", "preempt" };
	return kind < KW_RUNQ__N ? n[kind] : "?";
}

/* The upper bound of the log2 bucket (slot i: [2^i, 2^(i+1)) ns, slot 0 from
 * 0) the q-quantile of the timed samples falls in: the true value is at
 * most this and more than half of it (slot 0: below 2 ns). */
static uint64_t hist_quantile(const struct kw_agg *v, double q)
{
	uint64_t total = 0, rank, cum = 0;
	int i;

	for (i = 0; i < KW_HIST_SLOTS; i++)
		total += v->slots[i];
	if (!total)
		return 0;
	rank = (uint64_t)(q * (double)total);
	if ((double)rank < q * (double)total)
		rank++;
	if (!rank)
		rank = 1;
	for (i = 0; i < KW_HIST_SLOTS; i++) {
		cum += v->slots[i];
		if (cum >= rank)
			break;
	}
	return i >= KW_HIST_SLOTS - 1 ? ~0ull : 1ull << (i + 1);
}

static void runq_event(struct ew *w, const struct kw_event *e)
{
	ew_s(w, "kind", "%-10s", runq_kind(e->runq.kind));
	ew_s(w, "threads", " %-5s", e->runq.vcpu_thread ? "vcpu" : "other");
	ew_u(w, "latency_ns", NULL, e->runq.lat_ns);
	ew_f(w, NULL, " waited %.3fus", (double)e->runq.lat_ns / 1e3, 0);
	ew_u(w, "cpu", " cpu=%llu", e->runq.cpu);
	if (e->runq.prev_tid)
		ew_u(w, "prev_tid", " after tid %llu", e->runq.prev_tid);
	else
		ew_null(w, "prev_tid", " (was running)");
	ew_eol(w);
}

static void runq_head(struct ew *w, const struct ev_section *s)
{
	if (!w->json)
		fprintf(w->f, "  %-7s %-10s %10s %10s %10s %10s %10s %10s %10s\n", "VCPU", "KIND", "SAMPLES", "RUNNING",
			"P50_us<=", "P99_us<=", "MIN_us", "AVG_us", "MAX_us");
}

static void runq_row(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i)
{
	uint64_t p50 = hist_quantile(&row->v, 0.50), p99 = hist_quantile(&row->v, 0.99);
	int vcpu = row->k.reason ? ev_vcpu_of(s->x, s->vm, (pid_t)row->k.tid) : -1;
	char vc[24], label[48];

	if (!row->k.reason)
		kw_strlcpy(vc, "other", sizeof(vc));
	else if (!s->per)
		kw_strlcpy(vc, "vcpus", sizeof(vc));
	else
		ev_vcpu_str(s->x, vc, sizeof(vc), s->vm, row->k.tid);
	ew_elem(w, i);
	ew_s(w, "threads", NULL, row->k.reason ? "vcpu" : "other");
	if (s->per && row->k.reason) {
		if (vcpu >= 0)
			ew_i(w, "vcpu", NULL, vcpu);
		else
			ew_null(w, "vcpu", NULL);
		ew_u(w, "tid", NULL, row->k.tid);
	}
	ew_s(w, NULL, "  %-7s", vc);
	ew_s(w, "kind", " %-10s", runq_kind(row->k.kind));
	ew_u(w, NULL, " %10llu", row->v.count);
	ew_u(w, "running", " %10llu", row->v.aux); /* woken while still on their CPU: 0 ns */
	if (row->v.timed) {
		ew_u(w, "p50_ns", NULL, p50);
		ew_u(w, "p99_ns", NULL, p99);
		ew_f(w, NULL, " %10.3f", (double)p50 / 1e3, 0);
		ew_f(w, NULL, " %10.3f", (double)p99 / 1e3, 0);
	} else {
		ew_null(w, "p50_ns", "          -");
		ew_null(w, "p99_ns", "          -");
	}
	ew_lat_stats(w, &row->v);
	ew_text(w, "\n");
	snprintf(label, sizeof(label), "%s %s ns", vc, runq_kind(row->k.kind));
	ew_hist(w, &row->v, label);
	ew_elem_end(w);
}

/* ------------------------------------------------------------ table */

const struct ev_feature ev_features[KW_BPF__N] = {
	[KW_BPF_BIT_EXITS] = { KW_BPF_BIT_EXITS, KW_EV_EXIT, "exit", exit_event, '[', exit_head, exit_row,
			       exit_foot, NULL },
	[KW_BPF_BIT_FAULTS] = { KW_BPF_BIT_FAULTS, KW_EV_FAULT, "fault", fault_event, '[', fault_head, fault_row,
				NULL, "MMU faults", fault_after },
	[KW_BPF_BIT_MMIO] = { KW_BPF_BIT_MMIO, KW_EV_MMIO, "mmio", mmio_event, '{', mmio_head, mmio_row, mmio_foot,
			      "MMIO accesses" },
	[KW_BPF_BIT_DIRTY] = { KW_BPF_BIT_DIRTY, KW_EV_DIRTY, "dirty", dirty_event, '{', dirty_head, dirty_row,
			       dirty_foot, NULL },
	[KW_BPF_BIT_HALTPOLL] = { KW_BPF_BIT_HALTPOLL, KW_EV_HALTPOLL, "haltpoll", haltpoll_event, '[',
				  haltpoll_head, haltpoll_row, NULL, "halt-polling changes" },
	[KW_BPF_BIT_WAKEUP] = { KW_BPF_BIT_WAKEUP, KW_EV_WAKEUP, "wakeup", wakeup_event, '[', wakeup_head,
				wakeup_row, NULL, "wakeups" },
	[KW_BPF_BIT_IRQ] = { KW_BPF_BIT_IRQ, KW_EV_IRQ, "irq", irq_event, '{', NULL, irq_row, NULL, "interrupts" },
	[KW_BPF_BIT_RUNQ] = { KW_BPF_BIT_RUNQ, KW_EV_RUNQ, "runq", runq_event, '[', runq_head, runq_row, NULL,
			      "run-queue waits" },
};

const struct ev_feature *ev_feature_of(unsigned ev_type)
{
	for (int i = 0; i < KW_BPF__N; i++)
		if ((unsigned)ev_features[i].ev_type == ev_type)
			return &ev_features[i];
	return NULL;
}

void ev_pending(struct ew *w, const struct kw_pending *p, int kind)
{
	if (kind == KW_PENDING_FAULT)
		fault_fields(w, p->addr, p->error_code, p->gfn, p->hva, p->pfn, p->isa, 0, 0, 0, 1);
	else
		exit_fields(w, kind == KW_PENDING_UEXIT ? KW_ISA_USER : p->isa, p->reason, 0, 0, 1);
}
