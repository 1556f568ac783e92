// SPDX-License-Identifier: GPL-2.0
/* kw_view.c - rows and column values of the views (see kw_view.h; the
 * tables themselves are kw_views.c). */
#include "core/kw_view.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------ units */

struct unit {
	const char *name;
	char family;      /* 't' time, 'b' data, 'c' count */
	double base;      /* in the family's base unit (ns, bytes, 1) */
};

static const struct unit units[] = {
	{ "ns", 't', 1 }, { "us", 't', 1e3 }, { "ms", 't', 1e6 }, { "s", 't', 1e9 },
	{ "bytes", 'b', 1 }, { "KiB", 'b', 1024 }, { "MiB", 'b', 1048576 }, { "GiB", 'b', 1073741824.0 },
	{ "kbit", 'b', 125 }, { "Mbit", 'b', 125000 },
	{ "count", 'c', 1 }, { "", 'c', 1 }, { "pages", 'c', 1 }, { "pages/s", 'c', 1 },
	{ "percent", 'p', 1 }, { "%", 'p', 1 },
};

static const struct unit *unit_of(const char *n, size_t len)
{
	for (size_t i = 0; i < KW_ARRAY_SIZE(units); i++)
		if (strlen(units[i].name) == len && !strncmp(units[i].name, n, len))
			return &units[i];
	return NULL;
}

int kw_unit_factor(const char *from, const char *to, int rate, double *factor)
{
	const struct unit *f = unit_of(from, strlen(from)), *t;
	size_t tl = strlen(to);

	if (!f)
		return -EINVAL;
	if (rate && tl >= 2 && !strcmp(to + tl - 2, "/s"))
		tl -= 2; /* "KiB/s" of a rate: KiB per second */
	t = unit_of(to, tl);
	if (!t)
		return -EINVAL;
	if (t->family == 'p' && f->family == 't' && rate) {
		*factor = f->base / 1e9 * 100; /* time per second: share of one second */
		return 0;
	}
	if (t->family != f->family)
		return -EINVAL;
	*factor = f->base / t->base;
	return 0;
}

/* ------------------------------------------------------------ values */

static double conv(const struct kw_view *v, const struct kw_vcol *col, int metric, int rate, double x)
{
	double f;

	if (kw_unit_factor(kw_metric_unit(metric, NULL), col->unit ? col->unit : "", rate, &f)) {
		const char *what = col->header ? col->header : col->fmt;

		kw_log_once(KW_LOG_WARN, what, "view %s: column %s: %s does not convert to %s", v->name, what,
			    kw_metric_unit(metric, NULL), col->unit ? col->unit : "");
		return x;
	}
	return x * f;
}

/* Per-second rate of one metric for the row: at its instance, or summed over
 * every instance on VM and host rows. */
static double row_rate(const struct kw_vrow_ctx *r, int metric)
{
	double sum = 0, x;
	size_t i;

	if (!kw_scope_has_instance(kw_metrics[metric].scope) || r->inst[0]) {
		kw_rate(r->prev, r->cur, metric, kw_scope_has_instance(kw_metrics[metric].scope) ? r->inst : NULL, r->dt,
			&x);
		return x;
	}
	for (i = 0; i < r->cur->n; i++)
		if (r->cur->s[i].metric == metric && kw_rate(r->prev, r->cur, metric, r->cur->s[i].inst, r->dt, &x) == 0)
			sum += x;
	return sum;
}

static const char *row_inst(const struct kw_vrow_ctx *r, int metric)
{
	return kw_scope_has_instance(kw_metrics[metric].scope) ? r->inst : NULL;
}

int kw_vcol_values(const struct kw_view *v, const struct kw_vcol *col, const struct kw_vrow_ctx *r, double out[2])
{
	int m0 = col->m[0];
	double x, whole = 0;

	out[0] = out[1] = 0;
	if (col->kind == KW_VC_S_RATE) {
		const struct kw_sample *s = r->sample;

		if (!s || kw_metrics[s->metric].kind != KW_COUNTER ||
		    kw_rate(r->prev, r->cur, s->metric, s->inst, r->dt, &out[0]))
			return -1;
		return 1;
	}
	if (m0 < 0)
		return -1;
	if ((col->flags & KW_VC_NEED) && !kw_ss_get(r->cur, m0, row_inst(r, m0)))
		return -1;
	switch (col->kind) {
	case KW_VC_RATE:
		for (int i = 0; i < KW_VC_MAXM && col->m[i] >= 0; i++)
			out[0] += conv(v, col, col->m[i], 1, row_rate(r, col->m[i]));
		return 1;
	case KW_VC_GAUGE:
	case KW_VC_PAIR:
		for (int i = 0; i < (col->kind == KW_VC_PAIR ? 2 : 1); i++) {
			kw_ss_value(r->cur, col->m[i], row_inst(r, col->m[i]), &x);
			out[i] = conv(v, col, col->m[i], 0, x);
		}
		return col->kind == KW_VC_PAIR ? 2 : 1;
	case KW_VC_PER: {
		double n = row_rate(r, col->m[1]);

		/* time per request: the unit of the numerator, per one */
		out[0] = n > 0 ? conv(v, col, m0, 0, row_rate(r, m0) / n) : 0;
		return 1;
	}
	case KW_VC_SHARE:
		for (int i = 0; i < (int)KW_ARRAY_SIZE(v->share) && v->share[i] >= 0; i++)
			whole += row_rate(r, v->share[i]);
		out[0] = 100 * row_rate(r, m0) / (whole > 0 ? whole : 1);
		return 1;
	default:
		return -1;
	}
}

const char *kw_vcol_text(const struct kw_vcol *col, const struct kw_vrow_ctx *r, char *buf, size_t len)
{
	const struct kw_vm *vm = r->vm;
	char tmp[1024];
	const char *s = tmp;
	size_t o = 0;

	tmp[0] = '\0';
	switch (col->kind) {
	case KW_VC_NAME: s = vm ? vm->name : ""; break;
	case KW_VC_PID: snprintf(tmp, sizeof(tmp), "%d", vm ? vm->pid : 0); break;
	case KW_VC_VCPUS: snprintf(tmp, sizeof(tmp), "%d", vm ? vm->nvcpus : 0); break;
	case KW_VC_THREADS: snprintf(tmp, sizeof(tmp), "%d", vm ? vm->nthreads : 0); break;
	case KW_VC_TID: snprintf(tmp, sizeof(tmp), "%d", r->thread ? r->thread->tid : 0); break;
	case KW_VC_VCPU: snprintf(tmp, sizeof(tmp), "%d", r->thread ? r->thread->vcpu : -1); break;
	case KW_VC_INST: s = r->inst; break;
	case KW_VC_UUID: s = vm && vm->uuid[0] ? vm->uuid : "-"; break;
	case KW_VC_PVEID:
		if (vm && vm->pve_id >= 0)
			snprintf(tmp, sizeof(tmp), "%d", vm->pve_id);
		else
			s = "-";
		break;
	case KW_VC_VMM: s = vm ? vm->vmm : ""; break;
	case KW_VC_FOUND:
		if (vm)
			kw_vm_found_str(tmp, sizeof(tmp), vm->found);
		break;
	case KW_VC_NETIFS:
		for (int n = 0; vm && n < vm->nnetifs && o < sizeof(tmp); n++)
			o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "%s%s", n ? "," : "", vm->netifs[n].name);
		if (!tmp[0])
			s = "-";
		break;
	case KW_VC_STATE: s = vm && vm->state[0] ? vm->state : "-"; break;
	case KW_VC_DOMID: snprintf(tmp, sizeof(tmp), "%d", vm ? vm->dom_id : -1); break;
	case KW_VC_S_METRIC: s = r->sample ? kw_metrics[r->sample->metric].name : ""; break;
	case KW_VC_S_INST: s = r->sample && r->sample->inst[0] ? r->sample->inst : "-"; break;
	case KW_VC_S_VALUE:
		if (r->sample && r->sample->is_double)
			snprintf(tmp, sizeof(tmp), "%.2f", r->sample->v.d);
		else if (r->sample)
			snprintf(tmp, sizeof(tmp), "%llu", (unsigned long long)r->sample->v.u);
		break;
	case KW_VC_S_UNIT: s = r->sample ? kw_metric_unit(r->sample->metric, r->sample->inst) : ""; break;
	case KW_VC_LINK: {
		const struct kw_sample *l = col->m[0] >= 0 ? kw_ss_get(r->cur, col->m[0], r->inst) : NULL;

		s = !l ? "-" : l->v.u ? "up" : "down";
		break;
	}
	default: break;
	}
	return kw_text_safe(buf, len, s, col->width && col->kind != KW_VC_S_INST ? col->width : len, 0);
}

/* ------------------------------------------------------------ text */

const char *kw_human(double v, const char *unit, char *buf, size_t len)
{
	static const char sfx[] = "KMGTP";
	const struct unit *u;
	double base = 1, step = 1000;
	size_t ul = strlen(unit ? unit : "");
	int i = -1;

	if (ul >= 2 && !strcmp(unit + ul - 2, "/s"))
		ul -= 2;
	u = unit_of(unit ? unit : "", ul);
	if (u && u->family == 'b') {
		base = u->base;     /* to bytes, or bits for kbit */
		step = 1024;
		if (!strncmp(unit, "kbit", 4) || !strncmp(unit, "Mbit", 4)) {
			base = u->base * 8;
			step = 1000;
		}
	} else if (u && (u->family == 'p' || u->family == 't')) {
		snprintf(buf, len, "%.1f", v); /* percentages and ms/s read best as they are */
		return buf;
	}
	v *= base;
	while (v >= step * 0.9995 && i < (int)sizeof(sfx) - 2) {
		v /= step;
		i++;
	}
	if (i < 0)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, v < 9.995 ? "%.2f%c" : v < 99.95 ? "%.1f%c" : "%.0f%c", v, sfx[i]);
	return buf;
}

const char *kw_vcol_format(const struct kw_view *v, const struct kw_vcol *col, const struct kw_vrow_ctx *r,
			   int human, char *buf, size_t len)
{
	double x[2];

	if (col->kind < KW_VC__TEXT)
		return kw_vcol_text(col, r, buf, len);
	if (kw_vcol_values(v, col, r, x) < 0)
		snprintf(buf, len, "-");
	else if (human)
		kw_human(x[0], col->unit, buf, len);
	else
		snprintf(buf, len, "%.*f", col->prec, x[0]);
	return buf;
}

const char *kw_vline_format(const struct kw_view *v, const struct kw_vrow_ctx *r, char *buf, size_t len)
{
	size_t o = (size_t)snprintf(buf, len, "%s:", v->title ? v->title : v->name);

	for (size_t i = 0; i < v->ncols && o < len; i++) {
		double x[2];

		kw_vcol_values(v, &v->cols[i], r, x);
		o += (size_t)snprintf(buf + o, len - o, i ? "  " : " ");
		if (o < len)
			o += (size_t)snprintf(buf + o, len - o, v->cols[i].fmt, x[0], x[1]);
	}
	return buf;
}

/* ------------------------------------------------------------ rows */

static int has_any(const struct kw_view *v, const struct kw_sampleset *ss, const char *inst)
{
	if (v->row_if[0] < 0)
		return 1;
	for (size_t i = 0; i < KW_ARRAY_SIZE(v->row_if) && v->row_if[i] >= 0; i++)
		if (kw_ss_get(ss, v->row_if[i], inst))
			return 1;
	return 0;
}

static int sample_wanted(const struct kw_view *v, const struct kw_vrow_ctx *r)
{
	const struct kw_sample *s = r->sample;
	double x;
	size_t i;

	if (v->row_if[0] >= 0) {
		for (i = 0; i < KW_ARRAY_SIZE(v->row_if) && v->row_if[i] >= 0; i++)
			if (s->metric == v->row_if[i])
				break;
		if (i == KW_ARRAY_SIZE(v->row_if) || v->row_if[i] < 0)
			return 0;
	}
	if (v->moving && (kw_rate(r->prev, r->cur, s->metric, s->inst, r->dt, &x) || x <= 0))
		return 0;
	return 1;
}

int kw_view_rows(const struct kw_view *v, const struct kw_vmtable *vms, const struct kw_sampleset *host,
		 const struct kw_snapshot *prev, double dt, kw_vrow_fn fn, void *arg)
{
	struct kw_vrow_ctx r = { .dt = dt, .inst = "" };
	char idx[16];
	size_t i, k;
	int n, ret;

	if (v->rows == KW_VROW_HOST || v->rows == KW_VROW_HOST_INST) {
		r.cur = host;
		r.prev = prev && prev->valid ? &prev->host : NULL;
		if (v->rows == KW_VROW_HOST)
			return fn(v, &r, arg);
		for (k = 0; k < host->n; k++) {
			if (host->s[k].metric != v->row_if[0])
				continue;
			r.inst = host->s[k].inst;
			if ((ret = fn(v, &r, arg)))
				return ret;
		}
		return 0;
	}
	for (i = 0; i < vms->n; i++) {
		const struct kw_vm *vm = &vms->vms[i], *p = kw_snapshot_vm(prev, vm->key, i);

		r.vm = vm;
		r.cur = &vm->stats;
		r.prev = p ? &p->stats : NULL;
		r.inst = "";
		switch (v->rows) {
		case KW_VROW_VM:
			if ((ret = fn(v, &r, arg)))
				return ret;
			break;
		case KW_VROW_VCPU:
			for (n = 0; n < vm->nthreads; n++) {
				if (vm->threads[n].vcpu < 0)
					continue;
				snprintf(idx, sizeof(idx), "%d", vm->threads[n].vcpu);
				r.thread = &vm->threads[n];
				r.inst = idx;
				if ((ret = fn(v, &r, arg)))
					return ret;
			}
			r.thread = NULL;
			break;
		case KW_VROW_NETIF:
			for (n = 0; n < vm->nnetifs; n++) {
				r.inst = vm->netifs[n].name;
				if (has_any(v, r.cur, r.inst) && (ret = fn(v, &r, arg)))
					return ret;
			}
			break;
		case KW_VROW_DISK:
			for (n = 0; n < vm->ndisks; n++) {
				r.inst = vm->disks[n].name;
				if (has_any(v, r.cur, r.inst) && (ret = fn(v, &r, arg)))
					return ret;
			}
			break;
		case KW_VROW_SAMPLE:
			for (k = 0; k < vm->stats.n; k++) {
				r.sample = &vm->stats.s[k];
				if (sample_wanted(v, &r) && (ret = fn(v, &r, arg)))
					return ret;
			}
			r.sample = NULL;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* ------------------------------------------------------------ lookup */

const struct kw_view *kw_view_find(const char *name)
{
	for (size_t i = 0; kw_views[i]; i++)
		if (!strcmp(kw_views[i]->name, name))
			return kw_views[i];
	return NULL;
}

int kw_view_col(const struct kw_view *v, const char *key)
{
	for (size_t i = 0; i < v->ncols; i++)
		if (v->cols[i].key && !strcmp(v->cols[i].key, key))
			return (int)i;
	return -1;
}
