// SPDX-License-Identifier: GPL-2.0
/* kw_metrics.c - the metric table and sample sets. */
#include "core/kw_metrics.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const struct kw_chart_def kw_charts[KW_CHART__N] = {
#define KW_CHART(e, id, scope, ctx, fam, title, units, type, prio) \
	[KW_##e] = { id, KW_CH_##scope, ctx, fam, title, units, type, prio },
#define KW_METRIC(...)
#include "metrics.def"
#undef KW_CHART
#undef KW_METRIC
};

const struct kw_metric_def kw_metrics[KW_METRIC__N] = {
#define KW_CHART(...)
/* ND(chart, dim, algo, mul, div): how netdata shows the row;
 * CD(type, type_instance, ds, div): how collectd dispatches it. */
#define ND(chart, dim, algo, mul, div) KW_##chart, dim, algo, mul, div
#define CD(type, ti, ds, div) type, ti, ds, div
#define KW_METRIC(e, name, scope, kind, unit, src, nd, cd, desc) \
	[KW_##e] = { name, KW_SCOPE_##scope, KW_##kind, unit, KW_SRC_##src, { nd }, { cd }, desc },
#include "metrics.def"
#undef KW_CHART
#undef KW_METRIC
};

int kw_scope_has_instance(int scope)
{
	return scope != KW_SCOPE_HOST && scope != KW_SCOPE_VM;
}

void kw_metric_fmt(char *out, size_t len, const char *pattern, const char *inst)
{
	const char *p = strstr(pattern, "%s");

	if (!p) {
		kw_strlcpy(out, pattern, len);
		return;
	}
	snprintf(out, len, "%.*s%s%s", (int)(p - pattern), pattern, inst ? inst : "", p + 2);
}

/* Below this many samples a linear scan is as fast as hashing. */
#define KW_SS_LINEAR 24

static void idx_reset(struct kw_sampleset *ss)
{
	if (ss->idx && ss->idx_n)
		memset(ss->idx, 0, ss->idx_cap * sizeof(*ss->idx));
	ss->idx_n = 0;
}

void kw_ss_clear(struct kw_sampleset *ss)
{
	ss->n = 0;
	idx_reset(ss);
}

void kw_ss_free(struct kw_sampleset *ss)
{
	free(ss->s);
	free(ss->idx);
	ss->s = NULL;
	ss->idx = NULL;
	ss->n = ss->cap = 0;
	ss->idx_cap = ss->idx_n = 0;
}

int kw_ss_copy(struct kw_sampleset *dst, const struct kw_sampleset *src)
{
	dst->n = 0;
	idx_reset(dst);
	if (src->n == 0)
		return 0;
	if (dst->cap < src->n) {
		struct kw_sample *p = realloc(dst->s, src->n * sizeof(*p));
		if (!p)
			return -ENOMEM;
		dst->s = p;
		dst->cap = src->n;
	}
	memcpy(dst->s, src->s, src->n * sizeof(*src->s));
	dst->n = src->n;
	return 0;
}

static uint32_t sample_hash(int metric, const char *inst)
{
	uint32_t h = 2166136261u ^ (uint32_t)metric;

	h *= 16777619u;
	for (; *inst; inst++) {
		h ^= (unsigned char)*inst;
		h *= 16777619u;
	}
	return h;
}

static void idx_insert(struct kw_sampleset *ss, size_t i)
{
	size_t mask = ss->idx_cap - 1, h = sample_hash(ss->s[i].metric, ss->s[i].inst) & mask;

	while (ss->idx[h])
		h = (h + 1) & mask;
	ss->idx[h] = (uint32_t)i + 1;
}

/* Bring the index up to date with s[0..n).  The index is a cache: it is
 * updated from const lookups too.  Returns -1 when it cannot be used (out of
 * memory): the caller scans linearly. */
static int idx_sync(struct kw_sampleset *ss)
{
	if (ss->idx_n > ss->n)
		idx_reset(ss); /* cleared behind our back */
	if (ss->n * 2 > ss->idx_cap) {
		size_t cap = ss->idx_cap ? ss->idx_cap : 64;
		uint32_t *p;

		while (ss->n * 2 > cap)
			cap *= 2;
		if (cap > UINT32_MAX)
			return -1;
		p = calloc(cap, sizeof(*p));
		if (!p)
			return -1;
		free(ss->idx);
		ss->idx = p;
		ss->idx_cap = cap;
		ss->idx_n = 0;
	}
	for (; ss->idx_n < ss->n; ss->idx_n++)
		idx_insert(ss, ss->idx_n);
	return 0;
}

static struct kw_sample *find(const struct kw_sampleset *css, int metric, const char *inst)
{
	struct kw_sampleset *ss = (struct kw_sampleset *)css;
	char cut[KW_INST_MAX];
	size_t i;

	if (!inst)
		inst = "";
	if (strnlen(inst, KW_INST_MAX) >= KW_INST_MAX) {
		/* stored instances are cut to KW_INST_MAX - 1 bytes: look up the same */
		kw_strlcpy(cut, inst, sizeof(cut));
		inst = cut;
	}
	if (ss->n >= KW_SS_LINEAR && idx_sync(ss) == 0) {
		size_t mask = ss->idx_cap - 1, h = sample_hash(metric, inst) & mask;

		for (; ss->idx[h]; h = (h + 1) & mask) {
			struct kw_sample *s = &ss->s[ss->idx[h] - 1];

			if (s->metric == metric && !strcmp(s->inst, inst))
				return s;
		}
		return NULL;
	}
	for (i = 0; i < ss->n; i++)
		if (ss->s[i].metric == metric && !strcmp(ss->s[i].inst, inst))
			return &ss->s[i];
	return NULL;
}

static struct kw_sample *get_or_add(struct kw_sampleset *ss, int metric, const char *inst)
{
	struct kw_sample *s = find(ss, metric, inst);

	if (s)
		return s;
	if (kw_grow((void **)&ss->s, &ss->cap, ss->n, sizeof(*ss->s)))
		return NULL;
	s = &ss->s[ss->n++];
	memset(s, 0, sizeof(*s));
	s->metric = (uint16_t)metric;
	s->src = KW_SRC__N;
	kw_strlcpy(s->inst, inst ? inst : "", sizeof(s->inst));
	return s;
}

int kw_ss_set_u64(struct kw_sampleset *ss, int metric, const char *inst, uint64_t v)
{
	struct kw_sample *s = get_or_add(ss, metric, inst);

	if (!s)
		return -ENOMEM;
	s->v.u = v;
	s->is_double = 0;
	return 0;
}

int kw_ss_set_dbl(struct kw_sampleset *ss, int metric, const char *inst, double v)
{
	struct kw_sample *s = get_or_add(ss, metric, inst);

	if (!s)
		return -ENOMEM;
	s->v.d = v;
	s->is_double = 1;
	return 0;
}

int kw_ss_add_u64(struct kw_sampleset *ss, int metric, const char *inst, uint64_t v)
{
	struct kw_sample *s = get_or_add(ss, metric, inst);

	if (!s)
		return -ENOMEM;
	s->v.u += v;
	return 0;
}

const struct kw_sample *kw_ss_get(const struct kw_sampleset *ss, int metric, const char *inst)
{
	return find(ss, metric, inst);
}

double kw_sample_value(const struct kw_sample *s)
{
	return s->is_double ? s->v.d : (double)s->v.u;
}

int kw_ss_value(const struct kw_sampleset *ss, int metric, const char *inst, double *out)
{
	const struct kw_sample *s = find(ss, metric, inst);

	*out = s ? kw_sample_value(s) : 0;
	return s ? 0 : -1;
}

/* Instances that are numbers (vCPU indexes) sort numerically. */
static int inst_cmp(const char *a, const char *b)
{
	char *ea, *eb;
	unsigned long x = strtoul(a, &ea, 10), y = strtoul(b, &eb, 10);

	if (*a && *b && !*ea && !*eb)
		return x < y ? -1 : x > y;
	return strcmp(a, b);
}

static int sample_cmp(const void *pa, const void *pb)
{
	const struct kw_sample *a = pa, *b = pb;

	if (a->metric != b->metric)
		return a->metric < b->metric ? -1 : 1;
	return inst_cmp(a->inst, b->inst);
}

void kw_ss_sort(struct kw_sampleset *ss)
{
	if (ss->n > 1) {
		qsort(ss->s, ss->n, sizeof(*ss->s), sample_cmp);
		idx_reset(ss); /* positions moved */
	}
}

const char *kw_metric_unit(int metric, const char *inst)
{
	size_t n;

	if (metric < 0 || metric >= KW_METRIC__N)
		return "";
	switch (metric) {
	case KW_M_KVM_VCPU:
	case KW_M_KVM_VCPU_EACH:
	case KW_M_KVM_VCPU_GAUGE:
	case KW_M_KVM_VM:
	case KW_M_KVM_VM_GAUGE:
		n = inst ? strlen(inst) : 0;
		if (n > 3 && !strcmp(inst + n - 3, "_ns"))
			return "ns";
		break;
	default:
		break;
	}
	return kw_metrics[metric].unit;
}
