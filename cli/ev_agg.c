// SPDX-License-Identifier: GPL-2.0
/* ev_agg.c - the in-kernel aggregates: snapshots of every feature's stats
 * map, interval deltas, one VM's rows, and the statistics columns,
 * histograms and top-address lists every feature's table shares. */
#include "events.h"
#include "kvm/kw_decode.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct addr_row {
	struct kw_addr_key k;
	uint64_t count;
	uint64_t hva, pfn;    /* faults */
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

void snap_free(struct snap *s)
{
	int i;

	for (i = 0; i < KW_BPF__N; i++) {
		free(s->a[i].r);
		s->a[i].r = NULL;
		s->a[i].n = s->a[i].cap = 0;
	}
}

int snap_take(struct ev_ctx *x, struct snap *s)
{
	int i;

	for (i = 0; i < KW_BPF__N; i++) {
		s->a[i].n = 0;
		if (kw_bpf_active(x->b) & (1u << i))
			kw_bpf_foreach_agg(x->b, i, collect_agg, &s->a[i]);
	}
	return 0;
}

static struct kw_agg agg_delta(const struct kw_agg *cur, const struct kw_agg *prev, int bit);
static const struct kw_agg *snap_find(const struct snap *s, int bit, const struct kw_key *k);

int snap_interval(struct ev_ctx *x, const struct snap *cur, const struct snap *prev, struct snap *out)
{
	uint64_t epoch;
	size_t j;
	int i, r;

	if ((r = kw_bpf_ival_next(x->b, &epoch)) < 0)
		return r;
	for (i = 0; i < KW_BPF__N; i++) {
		out->a[i].n = 0;
		if (!(kw_bpf_active(x->b) & (1u << i)))
			continue;
		if (EV_IVAL_BITS & (1u << i)) {
			if ((r = kw_bpf_foreach_ival(x->b, i, epoch, collect_agg, &out->a[i])) < 0)
				return r;
			continue;
		}
		/* a feature that makes no interval aggregates: the difference of
		 * the snapshots, min/max unknown */
		for (j = 0; j < cur->a[i].n; j++) {
			struct kw_agg d = agg_delta(&cur->a[i].r[j].v, snap_find(prev, i, &cur->a[i].r[j].k), i);

			d.min_ns = d.max_ns = EV_MINMAX_UNKNOWN;
			if (collect_agg(&cur->a[i].r[j].k, &d, &out->a[i]))
				return -ENOMEM;
		}
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

static int merge_rows(struct ev_ctx *x, const struct kw_vm *vm, const struct snap *cur, const struct snap *prev,
		      int bit, pid_t tgid, int per_tid, struct vm_rows *out)
{
	size_t i, j;

	out->n = 0;
	out->total_count = out->total_ns = 0;
	for (i = 0; i < cur->a[bit].n; i++) {
		const struct agg_row *c = &cur->a[bit].r[i];
		struct kw_agg d;
		struct kw_key k = c->k;
		int vcpu = EV_VCPU_ALL;

		if (c->k.tgid != (uint32_t)tgid)
			continue;
		d = agg_delta(&c->v, snap_find(prev, bit, &c->k), bit);
		/* per vCPU: the vCPU index of the thread; every other thread
		 * of the VM (and injections made from outside it, tid 0) is
		 * "other" */
		if (!per_tid) {
			k.tid = 0;
		} else if ((vcpu = ev_vcpu_of(x, vm, (pid_t)k.tid)) < 0) {
			vcpu = EV_VCPU_OTHER;
			k.tid = 0;
		}
		for (j = 0; j < out->n; j++)
			if (out->r[j].vcpu == vcpu && out->r[j].k.kind == k.kind && out->r[j].k.reason == k.reason)
				break;
		if (j == out->n) {
			if (kw_grow((void **)&out->r, &out->cap, out->n, sizeof(*out->r)))
				return -ENOMEM;
			memset(&out->r[j], 0, sizeof(out->r[j]));
			out->r[j].k = k;
			out->r[j].vcpu = vcpu;
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
	if (a->vcpu != b->vcpu) /* vCPUs in order, other last */
		return (unsigned)a->vcpu < (unsigned)b->vcpu ? -1 : 1;
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

void ew_hist(struct ew *w, const struct kw_agg *v, const char *text_label)
{
	int i, first = 1;

	if (!w->json) {
		if (text_label)
			print_hist_text(w->f, v, text_label);
		return;
	}
	ew_open(w, "hist_log2_ns", '{');
	for (i = 0; i < KW_HIST_SLOTS; i++) {
		if (!v->slots[i])
			continue;
		fprintf(w->f, "%s\"%llu\":%llu", first ? "" : ",", i ? 1ull << i : 0ull, (unsigned long long)v->slots[i]);
		first = 0;
	}
	ew_close(w, '{');
}

void ew_lat_stats(struct ew *w, const struct kw_agg *v)
{
	int known = v->timed && v->max_ns != EV_MINMAX_UNKNOWN;
	double avg = v->timed ? (double)v->sum_ns / (double)v->timed : 0;

	ew_u(w, "samples", NULL, v->count);
	ew_u(w, "timed", NULL, v->timed);
	ew_u(w, "time_ns", NULL, v->sum_ns);
	/* JSON in ns, the text table in us; min/max unknown: null */
	if (known) {
		ew_u(w, "min_ns", NULL, v->min_ns);
		ew_f(w, NULL, " %10.3f", (double)v->min_ns / 1e3, 0);
	} else {
		ew_null(w, "min_ns", "          -");
	}
	if (v->timed) {
		ew_f(w, "avg_ns", NULL, avg, 1);
		ew_f(w, NULL, " %10.3f", avg / 1e3, 0);
	} else {
		ew_null(w, "avg_ns", "          -");
	}
	if (known) {
		ew_u(w, "max_ns", NULL, v->max_ns);
		ew_f(w, NULL, " %10.3f", (double)v->max_ns / 1e3, 0);
	} else {
		ew_null(w, "max_ns", "          -");
	}
}

struct top_ctx {
	pid_t tgid;
	struct addr_row *r;
	size_t n, cap;
};

static int collect_addr(const struct kw_addr_key *k, uint64_t count, uint64_t hva, uint64_t pfn, void *arg)
{
	struct top_ctx *t = arg;

	if (k->tgid != (uint32_t)t->tgid)
		return 0;
	if (kw_grow((void **)&t->r, &t->cap, t->n, sizeof(*t->r)))
		return -ENOMEM;
	t->r[t->n].k = *k;
	t->r[t->n].count = count;
	t->r[t->n].hva = hva;
	t->r[t->n].pfn = pfn;
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

void ew_top(struct ew *w, struct ev_ctx *x, int bit, pid_t tgid)
{
	struct top_ctx t = { .tgid = tgid };
	size_t i;

	kw_bpf_foreach_addr(x->b, bit, collect_addr, &t);
	if (t.n > 1)
		qsort(t.r, t.n, sizeof(*t.r), addr_cmp);
	if (w->json) {
		ew_open(w, bit == KW_BPF_BIT_FAULTS ? "fault_pages" : "top", '[');
		for (i = 0; i < t.n && i < TOP_N; i++) {
			if (bit == KW_BPF_BIT_FAULTS)
				fprintf(w->f, "%s{\"slot\":%u,\"gfn\":%llu,\"hva\":%llu,\"pfn\":%llu,\"count\":%llu}",
					i ? "," : "", t.r[i].k.slot, (unsigned long long)t.r[i].k.addr,
					(unsigned long long)t.r[i].hva, (unsigned long long)t.r[i].pfn,
					(unsigned long long)t.r[i].count);
			else if (bit == KW_BPF_BIT_DIRTY)
				fprintf(w->f, "%s{\"slot\":%u,\"gfn\":%llu,\"count\":%llu}", i ? "," : "",
					t.r[i].k.slot, (unsigned long long)t.r[i].k.addr, (unsigned long long)t.r[i].count);
			else
				fprintf(w->f, "%s{\"type\":\"%s\",\"gpa\":%llu,\"count\":%llu}", i ? "," : "",
					kw_kvm_mmio_type(t.r[i].k.slot), (unsigned long long)t.r[i].k.addr,
					(unsigned long long)t.r[i].count);
		}
		ew_close(w, '[');
	} else if (t.n) {
		fprintf(w->f, "  top %s (since start):\n", bit == KW_BPF_BIT_MMIO ? "GPAs" : "GFNs");
		for (i = 0; i < t.n && i < TOP_N; i++) {
			if (bit == KW_BPF_BIT_FAULTS)
				fprintf(w->f, "    slot %-6u gfn 0x%-12llx hva 0x%-14llx pfn 0x%-10llx %10llu\n",
					t.r[i].k.slot, (unsigned long long)t.r[i].k.addr, (unsigned long long)t.r[i].hva,
					(unsigned long long)t.r[i].pfn, (unsigned long long)t.r[i].count);
			else if (bit == KW_BPF_BIT_DIRTY)
				fprintf(w->f, "    slot %-6u gfn 0x%-12llx %10llu\n", t.r[i].k.slot,
					(unsigned long long)t.r[i].k.addr, (unsigned long long)t.r[i].count);
			else
				fprintf(w->f, "    %-16s gpa 0x%-12llx %10llu\n", kw_kvm_mmio_type(t.r[i].k.slot),
					(unsigned long long)t.r[i].k.addr, (unsigned long long)t.r[i].count);
		}
	}
	free(t.r);
}

int rows_for(struct ev_ctx *x, const struct kw_vm *vm, const struct snap *cur, const struct snap *prev, int bit,
	     pid_t tgid, int per_tid, struct vm_rows *out)
{
	int r = merge_rows(x, vm, cur, prev, bit, tgid, per_tid, out);

	if (!r && out->n > 1)
		qsort(out->r, out->n, sizeof(*out->r), row_cmp);
	return r;
}
