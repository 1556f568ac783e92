/* events.c - kvmwatch's eBPF event modes (-e -f -m -d -n -w -i, combinable):
 * without -s each event is printed as it happens (ring buffer, with lost
 * events counted); with -s the kernel aggregates per VM and reason and
 * summaries are printed every INTERVAL (if given) and at the end, with
 * perf-kvm-stat-like columns.  Events are attributed to VMs through the VM
 * table (tgid -> name, tid -> vCPU). */
#include "cli.h"
#include "kvm/kw_bpf.h"
#include "kvm/kw_decode.h"
#include "util/kw_util.h"
#include <linux/types.h>

#include "kvmwatch.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ev_ctx {
	struct cli_opts *o;
	struct kw_collector c;
	struct kw_bpf *b;
	uint64_t t0;              /* monotonic ns at attach */
	uint64_t last_refresh;
	uint64_t last_gone_check;
	int had_vms;              /* a VM selected by -p was seen */
	uint64_t events;
	uint64_t lost_total;      /* events the kernel could not queue, as of the last ring read */
	uint64_t lost_reported;   /* lost_total at the previous summary */
	int filtered;             /* -p given: drop events of other processes */
	int err;
	struct kw_vmtable gone;   /* VMs that exited during the run: their last
				   * events may still be in the ring or pending */
	struct tidvcpu {
		pid_t tid;
		int vcpu;
	} *tids;                  /* every vCPU thread seen: a vCPU that ended
				   * before its VM still has its index */
	size_t ntids, tidcap;
};

static struct ev_ctx *ev_self; /* for vcpu_of's memory */

static void remember_vcpus(struct ev_ctx *x)
{
	size_t i, k;
	int t;

	for (i = 0; i < x->c.vms.n; i++) {
		const struct kw_vm *vm = &x->c.vms.vms[i];

		for (t = 0; t < vm->nthreads; t++) {
			if (vm->threads[t].vcpu < 0)
				continue;
			for (k = 0; k < x->ntids && x->tids[k].tid != vm->threads[t].tid; k++)
				;
			if (k < x->ntids) {
				x->tids[k].vcpu = vm->threads[t].vcpu;
				continue;
			}
			if (kw_grow((void **)&x->tids, &x->tidcap, x->ntids, sizeof(*x->tids)))
				return;
			x->tids[x->ntids].tid = vm->threads[t].tid;
			x->tids[x->ntids++].vcpu = vm->threads[t].vcpu;
		}
	}
}

/* ------------------------------------------------------- VM attribution */

/* Rescan the VMs; the ones that went away are kept (identity only) in
 * x->gone so their late events are still attributed to them. */
static int refresh(struct ev_ctx *x)
{
	struct kw_vmtable before = { 0 };
	size_t i;
	int r;

	for (i = 0; i < x->c.vms.n; i++) {
		struct kw_vm *v = kw_vmt_add(&before);

		if (!v || kw_vm_copy(v, &x->c.vms.vms[i])) {
			if (v)
				before.n--;
			kw_vmt_free(&before);
			return -ENOMEM;
		}
		kw_ss_free(&v->stats);
	}
	r = kw_collector_collect(&x->c);
	remember_vcpus(x);
	for (i = 0; r >= 0 && i < before.n; i++) {
		struct kw_vm *v;

		size_t k;

		if (kw_vmt_find_key(&x->c.vms, before.vms[i].key) || kw_vmt_find_key(&x->gone, before.vms[i].key))
			continue;
		for (k = 0; k < x->gone.n;)      /* the newest VM of a pid wins */
			if (x->gone.vms[k].pid == before.vms[i].pid)
				kw_vmt_remove_at(&x->gone, k);
			else
				k++;
		if (!(v = kw_vmt_add(&x->gone)) || kw_vm_copy(v, &before.vms[i])) {
			if (v)
				x->gone.n--;
			r = -ENOMEM;
		}
	}
	kw_vmt_free(&before);
	return r;
}

static const struct kw_vm *vm_of(struct ev_ctx *x, pid_t tgid)
{
	const struct kw_vm *vm = kw_vmt_find_pid(&x->c.vms, tgid);
	uint64_t now;

	if (vm)
		return vm;
	/* a VM started after us: rescan, at most every 200 ms; a VM that
	 * exited is found among the gone */
	now = kw_now_mono_ns();
	if (now - x->last_refresh < 200000000ull)
		return kw_vmt_find_pid(&x->gone, tgid);
	x->last_refresh = now;
	if (refresh(x) < 0)
		return NULL;
	vm = kw_vmt_find_pid(&x->c.vms, tgid);
	return vm ? vm : kw_vmt_find_pid(&x->gone, tgid);
}

/* -p given and every VM it selected has exited (like perf stat -p): the
 * run ends with its final report.  Checked at most every 250 ms. */
static int all_gone(struct ev_ctx *x)
{
	uint64_t now = kw_now_mono_ns();

	if (!x->filtered)
		return 0;
	if (x->c.vms.n)
		x->had_vms = 1;
	if (!x->had_vms || now - x->last_gone_check < 250000000ull)
		return 0;
	x->last_gone_check = now;
	if (now - x->last_refresh >= 200000000ull) {
		x->last_refresh = now;
		if (refresh(x) < 0)
			return 0;
	}
	if (x->c.vms.n)
		return 0;
	kw_info("every VM selected with -p has exited");
	return 1;
}

/* Sleep until t (monotonic ns), waking to check all_gone.  1 when the run
 * should end (a signal, or the VMs are gone). */
static int sleep_until(struct ev_ctx *x, uint64_t t)
{
	for (;;) {
		uint64_t now = kw_now_mono_ns(), step = now + 250000000ull;

		if (kw_exiting)
			return 1;
		if (t != ~0ull && now >= t)
			return 0;
		if (kw_sleep_until(t != ~0ull && t < step ? t : step, &kw_exiting))
			return 1;
		if (all_gone(x))
			return 1;
	}
}

static int vcpu_of(const struct kw_vm *vm, pid_t tid)
{
	int i;

	size_t k;

	for (i = 0; vm && i < vm->nthreads; i++)
		if (vm->threads[i].tid == tid)
			return vm->threads[i].vcpu;
	for (k = 0; vm && ev_self && k < ev_self->ntids; k++)
		if (ev_self->tids[k].tid == tid)
			return ev_self->tids[k].vcpu;
	return -1;
}

static void vm_label(char *out, size_t len, const struct kw_vm *vm, pid_t tgid)
{
	if (vm)
		snprintf(out, len, "%s", vm->name);
	else
		snprintf(out, len, "pid-%d", tgid);
}

/* ------------------------------------------------------------ streaming */

static void print_prefix(struct ev_ctx *x, const struct kw_vm *vm, uint32_t tgid, uint32_t tid, uint64_t ts,
			 const char *type)
{
	FILE *f = stdout;
	int vcpu = vcpu_of(vm, (pid_t)tid);
	double t = ts >= x->t0 ? (double)(ts - x->t0) / 1e9 : 0;
	char name[KW_NAME_MAX + 16];

	vm_label(name, sizeof(name), vm, (pid_t)tgid);
	if (x->o->output == KW_OUT_JSON) {
		fprintf(f, "{\"time\":%.6f,\"type\":\"%s\",\"lost_total\":%llu,\"vm\":", t, type,
			(unsigned long long)x->lost_total);
		kw_json_str(f, name);
		fprintf(f, ",\"pid\":%u,\"tid\":%u,\"vcpu\":", tgid, tid);
		if (vcpu >= 0)
			fprintf(f, "%d", vcpu);
		else
			fputs("null", f);
	} else {
		char v[16];

		if (vcpu >= 0)
			snprintf(v, sizeof(v), "%d", vcpu);
		else
			kw_strlcpy(v, "-", sizeof(v));
		char safe[4 * 20 + 1];

		fprintf(f, "%12.6f %s %7u %4s %-8s ", t, kw_text_safe(safe, sizeof(safe), name, 20, 1), tid, v, type);
	}
}

static void print_lat(FILE *f, int json, const char *key, int timed, uint64_t ns)
{
	if (json) {
		fprintf(f, ",\"%s\":", key);
		if (timed)
			fprintf(f, "%llu", (unsigned long long)ns);
		else
			fputs("null", f);
	} else if (timed) {
		fprintf(f, " %s=%.3fus", key, (double)ns / 1e3);
	} else {
		fprintf(f, " %s=-", key);
	}
}

static void print_exit(struct ev_ctx *x, uint32_t isa, uint32_t reason, int timed, uint64_t lat, int unfinished)
{
	int json = x->o->output == KW_OUT_JSON;
	char buf[64];
	const char *n = kw_kvm_exit_name(isa, reason, buf, sizeof(buf));

	if (json) {
		fprintf(stdout, ",\"isa\":\"%s\",\"reason\":", kw_kvm_isa_name(isa));
		kw_json_str(stdout, n);
		fprintf(stdout, ",\"code\":%u", reason);
	} else {
		fprintf(stdout, "%-4s %-24s", kw_kvm_isa_name(isa), n);
	}
	print_lat(stdout, json, json ? "latency_ns" : "latency", timed, lat);
	if (json)
		fprintf(stdout, ",\"unfinished\":%s}\n", unfinished ? "true" : "false");
	else
		fprintf(stdout, "%s\n", unfinished ? " (unfinished)" : "");
}

static void print_fault(struct ev_ctx *x, uint64_t addr, uint64_t ec, uint64_t gfn, uint32_t src, int timed,
			uint64_t lat, uint32_t level, int unfinished)
{
	int json = x->o->output == KW_OUT_JSON;
	const char *s = src == KW_FAULT_SRC_PF ? "kvm_page_fault" : "kvm_mmu_spte_requested";
	char ecs[96];

	kw_kvm_pferr_str(ec, ecs, sizeof(ecs));
	if (json) {
		fprintf(stdout, ",\"addr\":%llu,\"error_code\":%llu,\"error\":\"%s\",\"gfn\":", (unsigned long long)addr,
			(unsigned long long)ec, ecs);
		if (gfn == ~0ull)
			fputs("null", stdout);
		else
			fprintf(stdout, "%llu", (unsigned long long)gfn);
		fprintf(stdout, ",\"level\":%u,\"source\":\"%s\"", level, s);
		print_lat(stdout, 1, "latency_ns", timed, lat);
		fprintf(stdout, ",\"unfinished\":%s}\n", unfinished ? "true" : "false");
	} else {
		fprintf(stdout, "addr=0x%llx error=0x%llx(%s) gfn=", (unsigned long long)addr, (unsigned long long)ec, ecs);
		if (gfn == ~0ull)
			fputs("-", stdout);
		else
			fprintf(stdout, "0x%llx", (unsigned long long)gfn);
		fprintf(stdout, " level=%u", level);
		print_lat(stdout, 0, "latency", timed, lat);
		fprintf(stdout, "%s\n", unfinished ? " (unfinished)" : "");
	}
}

static const char *delivery_mode(unsigned dm)
{
	static const char *const n[8] = { "fixed", "lowest", "smi", "res3", "nmi", "init", "sipi", "extint" };
	return n[dm & 7];
}

static void print_irq(const struct kw_event *e, int json)
{
	FILE *f = stdout;
	const char *k = kw_kvm_irq_kind(e->irq.kind);
	uint64_t a = e->irq.a, b = e->irq.b;

	if (json)
		fprintf(f, ",\"kind\":\"%s\"", k);
	else
		fprintf(f, "%-6s ", k);
	switch (e->irq.kind) {
	case KW_IRQ_SET:
		fprintf(f, json ? ",\"gsi\":%u,\"level\":%d" : "gsi=%u level=%d", e->irq.pin, (int)(int32_t)b);
		break;
	case KW_IRQ_PIC:
		fprintf(f, json ? ",\"chip\":\"%s\",\"pin\":%u,\"elcr\":%u,\"imr\":%u,\"coalesced\":%s"
				: "chip=%s pin=%u elcr=%u imr=%u coalesced=%s",
			a ? "slave" : "master", e->irq.pin, (unsigned)(b & 0xff), (unsigned)((b >> 8) & 0xff),
			e->irq.coalesced ? "true" : "false");
		break;
	case KW_IRQ_IOAPIC:
		/* redirection entry: vector 0-7, delivery mode 8-10, dest mode 11,
		 * trigger 15, mask 16, destination 56-63 */
		fprintf(f, json ? ",\"pin\":%u,\"vector\":%u,\"delivery\":\"%s\",\"dest_mode\":\"%s\",\"trigger\":\"%s\",\"masked\":%s,\"dest\":%u,\"coalesced\":%s"
				: "pin=%u vector=%u delivery=%s dest_mode=%s trigger=%s masked=%s dest=%u coalesced=%s",
			e->irq.pin, (unsigned)(a & 0xff), delivery_mode((unsigned)(a >> 8)), (a >> 11) & 1 ? "logical" : "physical",
			(a >> 15) & 1 ? "level" : "edge", (a >> 16) & 1 ? "true" : "false", (unsigned)(a >> 56),
			e->irq.coalesced ? "true" : "false");
		break;
	case KW_IRQ_MSI:
		/* address: dest id 12-19, dest mode 2; data: vector 0-7, delivery 8-10, trigger 15 */
		fprintf(f, json ? ",\"address\":%llu,\"data\":%llu,\"dest\":%u,\"dest_mode\":\"%s\",\"vector\":%u,\"delivery\":\"%s\",\"trigger\":\"%s\""
				: "address=0x%llx data=0x%llx dest=%u dest_mode=%s vector=%u delivery=%s trigger=%s",
			(unsigned long long)a, (unsigned long long)b, (unsigned)((a >> 12) & 0xff),
			(a >> 2) & 1 ? "logical" : "physical", (unsigned)(b & 0xff), delivery_mode((unsigned)(b >> 8)),
			(b >> 15) & 1 ? "level" : "edge");
		break;
	case KW_IRQ_APIC:
		fprintf(f, json ? ",\"apicid\":%u,\"vector\":%u,\"delivery\":\"%s\",\"trigger\":\"%s\""
				: "apicid=%u vector=%u delivery=%s trigger=%s",
			e->irq.pin, (unsigned)a, delivery_mode((unsigned)((b & 0xffff) >> 8)), (b >> 16) ? "level" : "edge");
		break;
	case KW_IRQ_EOI:
		/* the kernel passes -1 when no interrupt was in service */
		if (e->irq.pin == UINT32_MAX)
			fputs(json ? ",\"vector\":null" : "vector=none", f);
		else
			fprintf(f, json ? ",\"vector\":%u" : "vector=%u", e->irq.pin);
		break;
	case KW_IRQ_ACK:
		fprintf(f, json ? ",\"irqchip\":%u,\"pin\":%u" : "irqchip=%u pin=%u", (unsigned)a, e->irq.pin);
		break;
	case KW_IRQ_VIRQ:
		fprintf(f, json ? ",\"vector\":%u,\"soft\":%s,\"reinjected\":%s" : "vector=%u soft=%s reinjected=%s",
			e->irq.pin, b & 1 ? "true" : "false", b & 2 ? "true" : "false");
		break;
	}
	fputs(json ? "}\n" : "\n", f);
}

static int on_event(const struct kw_event *e, void *arg)
{
	struct ev_ctx *x = arg;
	int json = x->o->output == KW_OUT_JSON;
	const struct kw_vm *vm = vm_of(x, (pid_t)e->tgid);
	static const char *const types[] = { "?", "exit", "fault", "mmio", "dirty", "haltpoll", "wakeup", "irq" };
	FILE *f = stdout;

	if (!vm && x->filtered)
		return 0;
	x->events++;
	print_prefix(x, vm, e->tgid, e->tid, e->ts, e->type < KW_ARRAY_SIZE(types) ? types[e->type] : "?");
	switch (e->type) {
	case KW_EV_EXIT:
		print_exit(x, e->exit.isa, e->exit.reason, e->exit.timed, e->exit.lat_ns, 0);
		break;
	case KW_EV_FAULT:
		print_fault(x, e->fault.addr, e->fault.error_code, e->fault.gfn, e->fault.src, e->fault.lat_ns != 0,
			    e->fault.lat_ns, e->fault.level, 0);
		break;
	case KW_EV_MMIO:
		fprintf(f, json ? ",\"access\":\"%s\",\"gpa\":%llu,\"len\":%u,\"val\":%llu}\n"
				: "%-16s gpa=0x%llx len=%u val=0x%llx\n",
			kw_kvm_mmio_type(e->mmio.type), (unsigned long long)e->mmio.gpa, e->mmio.len,
			(unsigned long long)e->mmio.val);
		break;
	case KW_EV_DIRTY:
		fprintf(f, json ? ",\"slot\":%u,\"gfn\":%llu,\"source\":\"%s\"}\n" : "slot=%u gfn=0x%llx (%s)\n",
			e->dirty.slot, (unsigned long long)e->dirty.gfn,
			e->dirty.src == KW_DIRTY_SRC_MARK ? "mark_page_dirty_in_slot" : "dirty_ring_push");
		break;
	case KW_EV_HALTPOLL:
		fprintf(f, json ? ",\"vcpu_id\":%u,\"change\":\"%s\",\"old_ns\":%u,\"new_ns\":%u}\n"
				: "vcpu_id=%u %-6s halt_poll_ns %u -> %u\n",
			e->hp.vcpu_id, e->hp.grow ? "grow" : "shrink", e->hp.old_ns, e->hp.new_ns);
		break;
	case KW_EV_WAKEUP:
		if (json)
			fprintf(f, ",\"how\":\"%s\",\"halt_ns\":%llu,\"valid\":%s}\n",
				e->wake.waited ? "waited" : "polled", (unsigned long long)e->wake.ns,
				e->wake.valid ? "true" : "false");
		else
			fprintf(f, "%-6s halted %.3fus polling %s\n", e->wake.waited ? "waited" : "polled",
				(double)e->wake.ns / 1e3, e->wake.valid ? "valid" : "invalid");
		break;
	case KW_EV_IRQ:
		print_irq(e, json);
		break;
	default:
		fputs(json ? "}\n" : "\n", f);
	}
	if (ferror(f))
		return -EPIPE;
	return 0;
}

/* Exits and faults that began but never completed (a vCPU's last exit to
 * user space, say): reported at the end so streamed counts are complete. */
static int on_pending(const struct kw_pending *p, uint32_t tid, int kind, void *arg)
{
	struct ev_ctx *x = arg;
	const struct kw_vm *vm = vm_of(x, (pid_t)p->tgid);

	if (p->ts < x->t0 || (!vm && x->filtered))
		return 0;
	x->events++;
	if (kind == KW_PENDING_FAULT) {
		print_prefix(x, vm, p->tgid, tid, p->ts, "fault");
		print_fault(x, p->addr, p->error_code, p->gfn, p->isa, 0, 0, 0, 1);
	} else {
		print_prefix(x, vm, p->tgid, tid, p->ts, "exit");
		print_exit(x, kind == KW_PENDING_UEXIT ? KW_ISA_USER : p->isa, p->reason, 0, 0, 1);
	}
	return ferror(stdout) ? -EPIPE : 0;
}

/* ------------------------------------------------------------ summaries */

struct agg_row {
	struct kw_key k;
	struct kw_agg v;
};

struct agg_set {
	struct agg_row *r;
	size_t n, cap;
};

struct addr_row {
	struct kw_addr_key k;
	uint64_t count;
};

struct snap {
	struct agg_set a[KW_BPF__N];
};

static int collect_agg(const struct kw_key *k, const struct kw_agg *v, void *arg)
{
	struct agg_set *s = arg;

	if (kw_grow((void **)&s->r, &s->cap, s->n, sizeof(*s->r)))
		return -ENOMEM;
	s->r[s->n].k = *k;
	s->r[s->n].v = *v;
	s->n++;
	return 0;
}

static void snap_free(struct snap *s)
{
	int i;

	for (i = 0; i < KW_BPF__N; i++) {
		free(s->a[i].r);
		s->a[i].r = NULL;
		s->a[i].n = s->a[i].cap = 0;
	}
}

static int snap_take(struct ev_ctx *x, struct snap *s)
{
	int i;

	for (i = 0; i < KW_BPF__N; i++) {
		s->a[i].n = 0;
		if (kw_bpf_active(x->b) & (1u << i))
			kw_bpf_foreach_agg(x->b, i, collect_agg, &s->a[i]);
	}
	return 0;
}

static const struct kw_agg *snap_find(const struct snap *s, int bit, const struct kw_key *k)
{
	size_t i;

	for (i = 0; s && i < s->a[bit].n; i++)
		if (!memcmp(&s->a[bit].r[i].k, k, sizeof(*k)))
			return &s->a[bit].r[i].v;
	return NULL;
}

/* cur - prev for counters, sums, slots and aux counts; min/max stay
 * cumulative (the kernel keeps them since start). */
static struct kw_agg agg_delta(const struct kw_agg *cur, const struct kw_agg *prev, int bit)
{
	struct kw_agg d = *cur;
	int i;

	if (!prev)
		return d;
	d.count -= prev->count;
	d.timed -= prev->timed;
	d.sum_ns -= prev->sum_ns;
	for (i = 0; i < KW_HIST_SLOTS; i++)
		d.slots[i] -= prev->slots[i];
	if (bit != KW_BPF_BIT_HALTPOLL) /* there aux is the last halt_poll_ns */
		d.aux -= prev->aux;
	return d;
}

/* One VM's rows of a feature (with deltas), merged per (kind, reason[, tid]). */
struct vm_rows {
	struct agg_row *r;
	size_t n, cap;
	uint64_t total_count, total_ns;
};

static int rows_for(const struct snap *cur, const struct snap *prev, int bit, pid_t tgid, int per_tid,
		    struct vm_rows *out)
{
	size_t i, j;

	out->n = 0;
	out->total_count = out->total_ns = 0;
	for (i = 0; i < cur->a[bit].n; i++) {
		const struct agg_row *c = &cur->a[bit].r[i];
		struct kw_agg d;
		struct kw_key k = c->k;

		if (c->k.tgid != (uint32_t)tgid)
			continue;
		d = agg_delta(&c->v, snap_find(prev, bit, &c->k), bit);
		if (!per_tid)
			k.tid = 0;
		for (j = 0; j < out->n; j++)
			if (!memcmp(&out->r[j].k, &k, sizeof(k)))
				break;
		if (j == out->n) {
			if (kw_grow((void **)&out->r, &out->cap, out->n, sizeof(*out->r)))
				return -ENOMEM;
			memset(&out->r[j], 0, sizeof(out->r[j]));
			out->r[j].k = k;
			out->n++;
		}
		{
			struct kw_agg *m = &out->r[j].v;
			int s;

			m->count += d.count;
			m->timed += d.timed;
			m->sum_ns += d.sum_ns;
			if (d.min_ns && (!m->min_ns || d.min_ns < m->min_ns))
				m->min_ns = d.min_ns;
			if (d.max_ns > m->max_ns)
				m->max_ns = d.max_ns;
			if (bit == KW_BPF_BIT_HALTPOLL)
				m->aux = d.aux;
			else
				m->aux += d.aux;
			for (s = 0; s < KW_HIST_SLOTS; s++)
				m->slots[s] += d.slots[s];
		}
		out->total_count += d.count;
		out->total_ns += d.sum_ns;
	}
	return 0;
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct agg_row *a = pa, *b = pb;

	if (a->v.count != b->v.count)
		return a->v.count < b->v.count ? 1 : -1;
	if (a->k.tid != b->k.tid)
		return a->k.tid < b->k.tid ? -1 : 1;
	if (a->k.kind != b->k.kind)
		return a->k.kind < b->k.kind ? -1 : 1;
	return a->k.reason < b->k.reason ? -1 : a->k.reason > b->k.reason;
}

static void print_hist_text(FILE *f, const struct kw_agg *v, const char *unit_label)
{
	int i, lo = -1, hi = -1;
	uint64_t max = 0;

	for (i = 0; i < KW_HIST_SLOTS; i++) {
		if (v->slots[i]) {
			if (lo < 0)
				lo = i;
			hi = i;
			if (v->slots[i] > max)
				max = v->slots[i];
		}
	}
	if (lo < 0)
		return;
	fprintf(f, "    %24s : %-10s |%-40s|\n", unit_label, "count", "distribution");
	for (i = lo; i <= hi; i++) {
		char range[48], bar[41];
		int w = (int)(v->slots[i] * 40 / max), k;

		snprintf(range, sizeof(range), "%llu -> %llu", i ? 1ull << i : 0ull, (1ull << (i + 1)) - 1);
		for (k = 0; k < 40; k++)
			bar[k] = k < w ? '*' : ' ';
		bar[40] = '\0';
		fprintf(f, "    %24s : %-10llu |%s|\n", range, (unsigned long long)v->slots[i], bar);
	}
}

static void json_hist(FILE *f, const struct kw_agg *v)
{
	int i, first = 1;

	fputs(",\"hist_log2_ns\":{", f);
	for (i = 0; i < KW_HIST_SLOTS; i++) {
		if (!v->slots[i])
			continue;
		fprintf(f, "%s\"%llu\":%llu", first ? "" : ",", i ? 1ull << i : 0ull, (unsigned long long)v->slots[i]);
		first = 0;
	}
	fputc('}', f);
}

static void json_lat(FILE *f, const struct kw_agg *v)
{
	fprintf(f, ",\"samples\":%llu,\"timed\":%llu,\"time_ns\":%llu", (unsigned long long)v->count,
		(unsigned long long)v->timed, (unsigned long long)v->sum_ns);
	if (v->timed)
		fprintf(f, ",\"min_ns\":%llu,\"avg_ns\":%.1f,\"max_ns\":%llu", (unsigned long long)v->min_ns,
			(double)v->sum_ns / (double)v->timed, (unsigned long long)v->max_ns);
	else
		fputs(",\"min_ns\":null,\"avg_ns\":null,\"max_ns\":null", f);
}

struct top_ctx {
	pid_t tgid;
	struct addr_row *r;
	size_t n, cap;
};

static int collect_addr(const struct kw_addr_key *k, uint64_t count, void *arg)
{
	struct top_ctx *t = arg;

	if (k->tgid != (uint32_t)t->tgid)
		return 0;
	if (kw_grow((void **)&t->r, &t->cap, t->n, sizeof(*t->r)))
		return -ENOMEM;
	t->r[t->n].k = *k;
	t->r[t->n].count = count;
	t->n++;
	return 0;
}

static int addr_cmp(const void *pa, const void *pb)
{
	const struct addr_row *a = pa, *b = pb;

	if (a->count != b->count)
		return a->count < b->count ? 1 : -1;
	return a->k.addr < b->k.addr ? -1 : a->k.addr > b->k.addr;
}

#define TOP_N 10

static void print_top(struct ev_ctx *x, int bit, pid_t tgid, int json)
{
	struct top_ctx t = { .tgid = tgid };
	size_t i;

	kw_bpf_foreach_addr(x->b, bit, collect_addr, &t);
	if (t.n > 1)
		qsort(t.r, t.n, sizeof(*t.r), addr_cmp);
	if (json) {
		fputs(",\"top\":[", stdout);
		for (i = 0; i < t.n && i < TOP_N; i++) {
			if (bit == KW_BPF_BIT_DIRTY)
				fprintf(stdout, "%s{\"slot\":%u,\"gfn\":%llu,\"count\":%llu}", i ? "," : "",
					t.r[i].k.slot, (unsigned long long)t.r[i].k.addr, (unsigned long long)t.r[i].count);
			else
				fprintf(stdout, "%s{\"type\":\"%s\",\"gpa\":%llu,\"count\":%llu}", i ? "," : "",
					kw_kvm_mmio_type(t.r[i].k.slot), (unsigned long long)t.r[i].k.addr,
					(unsigned long long)t.r[i].count);
		}
		fputc(']', stdout);
	} else if (t.n) {
		fprintf(stdout, "  top %s (since start):\n", bit == KW_BPF_BIT_DIRTY ? "GFNs" : "GPAs");
		for (i = 0; i < t.n && i < TOP_N; i++) {
			if (bit == KW_BPF_BIT_DIRTY)
				fprintf(stdout, "    slot %-6u gfn 0x%-12llx %10llu\n", t.r[i].k.slot,
					(unsigned long long)t.r[i].k.addr, (unsigned long long)t.r[i].count);
			else
				fprintf(stdout, "    %-16s gpa 0x%-12llx %10llu\n", kw_kvm_mmio_type(t.r[i].k.slot),
					(unsigned long long)t.r[i].k.addr, (unsigned long long)t.r[i].count);
		}
	}
	free(t.r);
}

static void lat_cols_text(FILE *f, const struct kw_agg *v)
{
	if (v->timed)
		fprintf(f, " %10.3f %10.3f %10.3f", (double)v->min_ns / 1e3, (double)v->sum_ns / (double)v->timed / 1e3,
			(double)v->max_ns / 1e3);
	else
		fprintf(f, " %10s %10s %10s", "-", "-", "-");
}

static void vcpu_str(char *out, size_t len, const struct kw_vm *vm, uint32_t tid)
{
	int v = vcpu_of(vm, (pid_t)tid);

	if (v >= 0)
		snprintf(out, len, "%d", v);
	else
		snprintf(out, len, "tid%u", tid);
}

/* One feature's section of one VM's summary. */
static int vm_section(struct ev_ctx *x, const struct snap *cur, const struct snap *prev, int bit, pid_t tgid,
		      const struct kw_vm *vm, double dt, int *first_sec)
{
	int json = x->o->output == KW_OUT_JSON, per = x->o->per_vcpu;
	struct vm_rows r = { 0 };
	FILE *f = stdout;
	size_t i;
	char buf[64], vc[24];

	if (rows_for(cur, prev, bit, tgid, per, &r))
		return -ENOMEM;
	if (r.n > 1)
		qsort(r.r, r.n, sizeof(*r.r), row_cmp);
	if (json)
		fprintf(f, "%s\"%s\":", *first_sec ? "" : ",", kw_feature_name(bit));
	*first_sec = 0;
	switch (bit) {
	case KW_BPF_BIT_EXITS: {
		uint64_t tot[3] = { 0 }, tns[3] = { 0 };

		for (i = 0; i < r.n; i++) {
			tot[r.r[i].k.kind % 3] += r.r[i].v.count;
			tns[r.r[i].k.kind % 3] += r.r[i].v.sum_ns;
		}
		if (!json)
			fprintf(f, "  %-5s %-4s %-28s %10s %9s %8s %10s %10s %10s\n", "VCPU", "ISA", "EXIT REASON",
				"SAMPLES", "SAMPLES%", "TIME%", "MIN_us", "AVG_us", "MAX_us");
		else
			fputc('[', f);
		for (i = 0; i < r.n; i++) {
			const struct agg_row *w = &r.r[i];
			unsigned isa = w->k.kind % 3;
			double sp = tot[isa] ? 100.0 * (double)w->v.count / (double)tot[isa] : 0;
			double tp = tns[isa] ? 100.0 * (double)w->v.sum_ns / (double)tns[isa] : 0;
			const char *n = kw_kvm_exit_name(w->k.kind, w->k.reason, buf, sizeof(buf));

			if (per)
				vcpu_str(vc, sizeof(vc), vm, w->k.tid);
			else
				kw_strlcpy(vc, "all", sizeof(vc));
			if (json) {
				fprintf(f, "%s{\"isa\":\"%s\",\"reason\":", i ? "," : "", kw_kvm_isa_name(w->k.kind));
				kw_json_str(f, n);
				fprintf(f, ",\"code\":%u", w->k.reason);
				if (per)
					fprintf(f, ",\"vcpu\":\"%s\"", vc);
				fprintf(f, ",\"samples_pct\":%.2f,\"time_pct\":%.2f", sp, tp);
				json_lat(f, &w->v);
				json_hist(f, &w->v);
				fputc('}', f);
			} else {
				fprintf(f, "  %-5s %-4s %-28s %10llu %8.2f%% %7.2f%%", vc, kw_kvm_isa_name(w->k.kind), n,
					(unsigned long long)w->v.count, sp, tp);
				lat_cols_text(f, &w->v);
				fputc('\n', f);
			}
		}
		if (json)
			fputc(']', f);
		else
			fprintf(f, "  total: %llu exits in the kernel, %llu to user space\n",
				(unsigned long long)(tot[KW_ISA_VMX] + tot[KW_ISA_SVM]),
				(unsigned long long)tot[KW_ISA_USER]);
		break;
	}
	case KW_BPF_BIT_FAULTS:
	case KW_BPF_BIT_WAKEUP: {
		const char *label = bit == KW_BPF_BIT_FAULTS ? "MMU faults" : "wakeups";

		if (json)
			fputc('[', f);
		else
			fprintf(f, "  %-5s %-8s %10s %10s %10s %10s %10s\n", "VCPU", bit == KW_BPF_BIT_WAKEUP ? "HOW" : "",
				"SAMPLES", bit == KW_BPF_BIT_WAKEUP ? "VALID" : "TIMED", "MIN_us", "AVG_us", "MAX_us");
		for (i = 0; i < r.n; i++) {
			const struct agg_row *w = &r.r[i];
			const char *how = bit == KW_BPF_BIT_WAKEUP ? (w->k.kind ? "waited" : "polled") : "";

			if (per)
				vcpu_str(vc, sizeof(vc), vm, w->k.tid);
			else
				kw_strlcpy(vc, "all", sizeof(vc));
			if (json) {
				fprintf(f, "%s{", i ? "," : "");
				if (bit == KW_BPF_BIT_WAKEUP)
					fprintf(f, "\"how\":\"%s\",\"valid\":%llu,", how, (unsigned long long)w->v.aux);
				fprintf(f, "\"vcpu\":\"%s\"", vc);
				json_lat(f, &w->v);
				json_hist(f, &w->v);
				fputc('}', f);
			} else {
				fprintf(f, "  %-5s %-8s %10llu %10llu", vc, how, (unsigned long long)w->v.count,
					(unsigned long long)(bit == KW_BPF_BIT_WAKEUP ? w->v.aux : w->v.timed));
				lat_cols_text(f, &w->v);
				fputc('\n', f);
				print_hist_text(f, &w->v, bit == KW_BPF_BIT_WAKEUP ? "halt ns" : "fault ns");
			}
		}
		if (json)
			fputc(']', f);
		else if (!r.n)
			fprintf(f, "  no %s\n", label);
		break;
	}
	case KW_BPF_BIT_MMIO:
	case KW_BPF_BIT_IRQ: {
		if (json)
			fputs(bit == KW_BPF_BIT_MMIO ? "{\"counts\":{" : "{", f);
		for (i = 0; i < r.n; i++) {
			const struct agg_row *w = &r.r[i];
			const char *n = bit == KW_BPF_BIT_MMIO ? kw_kvm_mmio_type(w->k.kind) : kw_kvm_irq_kind(w->k.kind);

			if (per)
				vcpu_str(vc, sizeof(vc), vm, w->k.tid);
			if (json) {
				fprintf(f, "%s\"%s%s%s\":{\"count\":%llu", i ? "," : "", per ? vc : "", per ? ":" : "", n,
					(unsigned long long)w->v.count);
				if (bit == KW_BPF_BIT_IRQ && (w->k.kind == KW_IRQ_PIC || w->k.kind == KW_IRQ_IOAPIC))
					fprintf(f, ",\"coalesced\":%llu", (unsigned long long)w->v.aux);
				fputc('}', f);
			} else {
				fprintf(f, "  %-5s %-16s %10llu", per ? vc : "all", n, (unsigned long long)w->v.count);
				if (bit == KW_BPF_BIT_IRQ && (w->k.kind == KW_IRQ_PIC || w->k.kind == KW_IRQ_IOAPIC))
					fprintf(f, "  coalesced %llu", (unsigned long long)w->v.aux);
				fputc('\n', f);
			}
		}
		if (json)
			fputc('}', f);
		else if (!r.n)
			fprintf(f, "  no %s\n", bit == KW_BPF_BIT_MMIO ? "MMIO accesses" : "interrupts");
		if (bit == KW_BPF_BIT_MMIO) {
			print_top(x, bit, tgid, json);
			if (json)
				fputc('}', f);
		}
		break;
	}
	case KW_BPF_BIT_DIRTY:
		if (json)
			fprintf(f, "{\"pages\":%llu,\"rate\":%.1f", (unsigned long long)r.total_count,
				dt > 0 ? (double)r.total_count / dt : 0.0);
		else
			fprintf(f, "  dirtied pages: %llu (%.1f pages/s)\n", (unsigned long long)r.total_count,
				dt > 0 ? (double)r.total_count / dt : 0.0);
		print_top(x, bit, tgid, json);
		if (json)
			fputc('}', f);
		break;
	case KW_BPF_BIT_HALTPOLL:
		if (json)
			fputc('[', f);
		else
			fprintf(f, "  %-8s %-6s %10s %16s\n", "VCPU_ID", "CHANGE", "COUNT", "LAST_NS");
		for (i = 0; i < r.n; i++) {
			const struct agg_row *w = &r.r[i];

			if (json)
				fprintf(f, "%s{\"vcpu_id\":%u,\"change\":\"%s\",\"count\":%llu,\"last_ns\":%llu}",
					i ? "," : "", w->k.reason, w->k.kind ? "grow" : "shrink",
					(unsigned long long)w->v.count, (unsigned long long)w->v.aux);
			else
				fprintf(f, "  %-8u %-6s %10llu %16llu\n", w->k.reason, w->k.kind ? "grow" : "shrink",
					(unsigned long long)w->v.count, (unsigned long long)w->v.aux);
		}
		if (json)
			fputc(']', f);
		else if (!r.n)
			fprintf(f, "  no halt-polling changes\n");
		break;
	}
	free(r.r);
	return 0;
}

static int tgid_seen(const pid_t *v, size_t n, pid_t t)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == t)
			return 1;
	return 0;
}

/* One summary: every VM with data, every active feature. */
static int summary(struct ev_ctx *x, const struct snap *cur, const struct snap *prev, double dt, int final)
{
	int json = x->o->output == KW_OUT_JSON, bit, first_vm = 1, r = 0;
	pid_t *tg = NULL;
	size_t ntg = 0, cap = 0, i, j;
	FILE *f = stdout;

	for (bit = 0; bit < KW_BPF__N; bit++)
		for (i = 0; i < cur->a[bit].n; i++) {
			pid_t t = (pid_t)cur->a[bit].r[i].k.tgid;

			if (tgid_seen(tg, ntg, t))
				continue;
			if (kw_grow((void **)&tg, &cap, ntg, sizeof(*tg))) {
				free(tg);
				return -ENOMEM;
			}
			tg[ntg++] = t;
		}
	/* sort by pid for a stable order */
	for (i = 1; i < ntg; i++)
		for (j = i; j > 0 && tg[j - 1] > tg[j]; j--) {
			pid_t t = tg[j];
			tg[j] = tg[j - 1];
			tg[j - 1] = t;
		}
	x->lost_total = kw_bpf_lost(x->b);
	for (bit = 0; bit < KW_BPF__N; bit++) {
		uint64_t d = kw_bpf_dropped(x->b, bit);
		char key[48];

		if (!d)
			continue;
		snprintf(key, sizeof(key), "bpf-full:%d", bit);
		kw_log_once(KW_LOG_WARN, key, "eBPF %s: its statistics map is full (%u entries): %llu events were not "
			    "counted", kw_feature_name(bit), kw_bpf_stats_capacity(x->b, bit), (unsigned long long)d);
	}
	if (json)
		fprintf(f, "{\"time\":%.3f,\"interval\":%.3f,\"final\":%s,\"lost\":%llu,\"lost_total\":%llu,"
			"\"vms\":[", (double)kw_now_real_ns() / 1e9, dt, final ? "true" : "false",
			(unsigned long long)(final ? x->lost_total : x->lost_total - x->lost_reported),
			(unsigned long long)x->lost_total);
	else
		fprintf(f, "\n%s (%.3f s)%s\n", final ? "=== totals" : "--- interval", dt,
			final ? "" : "  [min/max since start]");
	x->lost_reported = x->lost_total;
	for (i = 0; i < ntg; i++) {
		const struct kw_vm *vm = vm_of(x, tg[i]);
		char name[KW_NAME_MAX + 16];
		int first_sec = 1;

		if (!vm && x->filtered)
			continue;
		vm_label(name, sizeof(name), vm, tg[i]);
		if (json) {
			fputs(first_vm ? "{\"name\":" : ",{\"name\":", f);
			kw_json_str(f, name);
			fprintf(f, ",\"pid\":%d,", tg[i]);
		} else {
			char safe[4 * KW_NAME_MAX + 1];

			fprintf(f, "\nVM %s (pid %d)\n", kw_text_safe(safe, sizeof(safe), name, KW_NAME_MAX, 0), tg[i]);
		}
		first_vm = 0;
		for (bit = 0; bit < KW_BPF__N && !r; bit++) {
			if (!(kw_bpf_active(x->b) & (1u << bit)))
				continue;
			if (!json)
				fprintf(f, " %s:\n", kw_feature_name(bit));
			r = vm_section(x, cur, prev, bit, tg[i], vm, dt, &first_sec);
		}
		if (json)
			fputc('}', f);
	}
	if (json)
		fputs("]}\n", f);
	else if (first_vm)
		fprintf(f, "no events\n");
	free(tg);
	fflush(f);
	return r ? r : ferror(f) ? -EPIPE : 0;
}

/* ------------------------------------------------------------- the mode */

static void print_attached(struct ev_ctx *x)
{
	char line[2048] = "";
	size_t o = 0;
	int bit;

	for (bit = 0; bit < KW_BPF__N; bit++) {
		if (!(x->o->events & (1u << bit)))
			continue;
		if (kw_bpf_why(x->b, bit)) {
			kw_warn("eBPF %s unavailable: %s", kw_feature_name(bit), kw_bpf_why(x->b, bit));
			continue;
		}
		if (kw_bpf_notes(x->b, bit)[0])
			kw_info("eBPF %s: fallbacks: %s", kw_feature_name(bit), kw_bpf_notes(x->b, bit));
		if (o < sizeof(line))
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s [%s]", o ? ", " : "",
					      kw_feature_name(bit), kw_bpf_hooks(x->b, bit));
	}
	kw_info("tracing %s attached", line);
}

int cli_run_events(struct cli_opts *o)
{
	struct kw_config cfg = o->cfg;
	struct kw_bpf_opts bo = { 0 };
	struct ev_ctx x;
	struct snap prev = { { { 0 } } }, cur = { { { 0 } } };
	char err[2048];
	uint64_t start, next, end = 0, step;
	long done = 0;
	int r = 0, have_prev = 0;

	memset(&x, 0, sizeof(x));
	x.o = o;
	if (o->stats && !o->events)
		o->events = KW_BPF_EXITS; /* -s alone: exit statistics, like perf kvm stat */
	/* the VM table for names and vCPUs: /proc only */
	cfg.sources = 1u << KW_SRC_PROC;
	cfg.bpf_features = 0;
	cfg.no_host = 1;
	if (kw_collector_init(&x.c, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "kvmwatch: %s\n", err);
		return 1;
	}
	x.filtered = o->cfg.npids || o->cfg.nnames;
	ev_self = &x;
	if (kw_collector_collect(&x.c) < 0 && !x.filtered)
		kw_debug("no VMs found yet");
	remember_vcpus(&x);
	x.last_refresh = kw_now_mono_ns();

	bo.features = o->events;
	bo.stream = !o->stats;
	bo.aggregate = o->stats;
	bo.per_thread = o->per_vcpu;
	if (o->cfg.npids == 1 && !o->cfg.nnames)
		bo.targ_tgid = o->cfg.pids[0];
	else if (o->cfg.nnames && !o->cfg.npids && x.c.vms.n == 1)
		bo.targ_tgid = x.c.vms.vms[0].pid; /* -p NAME of a running VM */
	/* t0 before the programs attach: the "attached" line is the cue for
	 * callers to start their guests, so nothing recorded may predate it */
	x.t0 = kw_now_mono_ns();
	x.b = kw_bpf_open(&bo, err, sizeof(err));
	if (!x.b) {
		fprintf(stderr, "kvmwatch: error: %s\n", err);
		kw_collector_fini(&x.c);
		kw_vmt_free(&x.gone);
		return 1;
	}
	print_attached(&x);
	start = next = kw_now_mono_ns();
	if (o->duration > 0)
		end = start + (uint64_t)(o->duration * 1e9);
	step = (uint64_t)(o->interval * 1e9);
	if (o->stats) {
		if (snap_take(&x, &prev) == 0)
			have_prev = 1;
		while (!kw_exiting) {
			uint64_t now, t_prev = next;

			next = o->interval_given ? next + step : (end ? end : ~0ull);
			if (end && next > end)
				next = end;
			if (sleep_until(&x, next) || next == ~0ull)
				break;
			now = kw_now_mono_ns();
			if (o->interval_given && (!end || now < end)) {
				snap_take(&x, &cur);
				r = summary(&x, &cur, have_prev ? &prev : NULL, (double)(now - t_prev) / 1e9, 0);
				{
					struct snap t = prev;
					prev = cur;
					cur = t;
				}
				if (r)
					break;
				if (o->count > 0 && ++done >= o->count)
					break;
			}
			if (end && now >= end)
				break;
		}
		if (!r) {
			snap_take(&x, &cur);
			r = summary(&x, &cur, NULL, (double)(kw_now_mono_ns() - start) / 1e9, 1);
		}
	} else {
		while (!kw_exiting) {
			int timeout = 100;

			if (end) {
				uint64_t now = kw_now_mono_ns();

				if (now >= end)
					break;
				if (end - now < 100000000ull)
					timeout = (int)((end - now) / 1000000ull) + 1;
			}
			r = kw_bpf_poll(x.b, timeout, on_event, &x);
			x.lost_total = kw_bpf_lost(x.b);
			if (r < 0) {
				if (r != -EPIPE)
					fprintf(stderr, "kvmwatch: failed to read events: %s\n", strerror(-r));
				break;
			}
			r = 0;
			fflush(stdout);
			if (ferror(stdout)) {
				r = -EPIPE;
				break;
			}
			if (all_gone(&x))
				break;
		}
		if (!r) {
			/* what is left in the ring, then exits/faults never completed */
			while ((r = kw_bpf_poll(x.b, 0, on_event, &x)) > 0)
				;
			r = r < 0 ? r : 0;
			if (!r && (o->events & KW_BPF_EXITS))
				kw_bpf_foreach_pending(x.b, KW_BPF_BIT_EXITS, on_pending, &x);
			if (!r && (o->events & KW_BPF_FAULTS))
				kw_bpf_foreach_pending(x.b, KW_BPF_BIT_FAULTS, on_pending, &x);
			fflush(stdout);
			if (ferror(stdout))
				r = -EPIPE;
		}
		x.lost_total = kw_bpf_lost(x.b);
		if (!r && o->output == KW_OUT_JSON) {
			/* the stream's last record: its totals */
			printf("{\"type\":\"end\",\"events\":%llu,\"lost_total\":%llu}\n", (unsigned long long)x.events,
			       (unsigned long long)x.lost_total);
			fflush(stdout);
		}
		kw_info("%llu events, %llu lost", (unsigned long long)x.events, (unsigned long long)x.lost_total);
	}
	snap_free(&prev);
	snap_free(&cur);
	kw_bpf_close(x.b);
	kw_collector_fini(&x.c);
	kw_vmt_free(&x.gone);
	free(x.tids);
	ev_self = NULL;
	if (r == -EPIPE && kw_output_abandoned)
		return 0; /* stopped while the reader was not reading (see main.c) */
	return r < 0 ? 1 : 0;
}
