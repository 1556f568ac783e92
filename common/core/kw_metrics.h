// SPDX-License-Identifier: GPL-2.0
/* kw_metrics.h - the metric table (generated from metrics.def) and the
 * per-object sample sets every source fills and every front end reads. */
#ifndef KW_METRICS_H
#define KW_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/kw_config.h"

enum kw_kind { KW_COUNTER, KW_GAUGE };

/* Which object a metric describes, and what its instance string means. */
enum kw_scope {
	KW_SCOPE_HOST,      /* host total, no instance */
	KW_SCOPE_HOST_DISK, /* host block device, instance = device name */
	KW_SCOPE_HOST_NET,  /* host network interface, instance = interface name */
	KW_SCOPE_VM,        /* one VM, no instance */
	KW_SCOPE_VCPU,      /* one vCPU of a VM, instance = vCPU index */
	KW_SCOPE_NETIF,     /* a VM's interface, instance = interface name */
	KW_SCOPE_DISK,      /* a VM's disk, instance = target device (vda) */
	KW_SCOPE_KEY,       /* a VM's keyed counter, instance = key (exit reason, stat name) */
};

/* Chart scopes (netdata charts and CLI groups). */
enum kw_chart_scope { KW_CH_VM, KW_CH_VM_INST, KW_CH_HOST, KW_CH_HOST_INST };

enum kw_chart_id {
#define KW_CHART(e, ...) KW_##e,
#define KW_METRIC(...)
#include "metrics.def"
#undef KW_CHART
#undef KW_METRIC
	KW_CHART__N
};

enum kw_metric_id {
#define KW_CHART(...)
#define KW_METRIC(e, ...) KW_##e,
#include "metrics.def"
#undef KW_CHART
#undef KW_METRIC
	KW_METRIC__N
};

struct kw_chart_def {
	const char *id;       /* chart id suffix: "cpu", "net" (+ "_<dev>") */
	uint8_t scope;        /* enum kw_chart_scope */
	const char *context;  /* netdata context, shared by all VMs: kvm.vm_cpu */
	const char *family;
	const char *title;
	const char *units;
	const char *type;     /* line, area, stacked */
	int priority;
};

struct kw_metric_def {
	const char *name;     /* dotted, stable: JSON keys, CLI columns */
	uint8_t scope;        /* enum kw_scope */
	uint8_t kind;         /* enum kw_kind */
	const char *unit;     /* ns, us, ms, bytes, count, percent, pages */
	uint8_t source;       /* enum kw_source_id */
	struct kw_nd_map {    /* how netdata shows it */
		uint16_t chart;       /* enum kw_chart_id */
		const char *dim;      /* dimension id ("%s" = instance) */
		const char *algo;     /* algorithm */
		int mul, div;
	} nd;
	struct kw_cd_map {    /* how collectd dispatches it */
		const char *type;     /* types.db type */
		const char *ti;       /* type_instance ("%s" = instance) */
		uint8_t ds;           /* index in a multi-value type */
		uint32_t div;         /* divide the raw value by this */
	} cd;
	const char *desc;
};

extern const struct kw_chart_def kw_charts[KW_CHART__N];
extern const struct kw_metric_def kw_metrics[KW_METRIC__N];

/* The unit of one sample: the row's, except where the instance decides --
 * KVM binary stats are one row per kind, and KVM declares a stat named
 * *_ns in nanoseconds (STATS_DESC_TIME_NSEC; *_hist histograms are
 * published as their event count). */
const char *kw_metric_unit(int metric, const char *inst);
int kw_scope_has_instance(int scope);
/* Format a dimension / type instance pattern with the instance. */
void kw_metric_fmt(char *out, size_t len, const char *pattern, const char *inst);

/* ------------------------------------------------------------ samples */
#define KW_INST_MAX 64

struct kw_sample {
	uint16_t metric;            /* enum kw_metric_id */
	char inst[KW_INST_MAX];     /* instance ("" when the scope has none) */
	union {
		uint64_t u;         /* counters and integral gauges */
		double d;           /* gauges with fractions (kind GAUGE, unit percent) */
	} v;
	uint8_t is_double;
	uint8_t src;                /* the source that set it (kw_ss_put_u64), else KW_SRC__N */
};

/* An unordered set of samples belonging to one object (a VM or the host).
 * Sets larger than a few dozen samples (a VM with KVM statistics holds
 * hundreds) are looked up through a hash index built lazily: idx has idx_cap
 * slots (a power of two) holding sample index + 1, covering s[0..idx_n). */
struct kw_sampleset {
	struct kw_sample *s;
	size_t n, cap;
	uint32_t *idx;
	size_t idx_cap, idx_n;
};

void kw_ss_clear(struct kw_sampleset *ss);
void kw_ss_free(struct kw_sampleset *ss);
int kw_ss_copy(struct kw_sampleset *dst, const struct kw_sampleset *src);
/* Set (add or replace) a sample.  inst may be NULL. Returns 0 or -ENOMEM. */
int kw_ss_set_u64(struct kw_sampleset *ss, int metric, const char *inst, uint64_t v);
int kw_ss_set_dbl(struct kw_sampleset *ss, int metric, const char *inst, double v);
/* Add to a sample (created at 0 when missing). */
int kw_ss_add_u64(struct kw_sampleset *ss, int metric, const char *inst, uint64_t v);
const struct kw_sample *kw_ss_get(const struct kw_sampleset *ss, int metric, const char *inst);
/* Value of a sample as a double (0 and returns -1 when missing). */
int kw_ss_value(const struct kw_sampleset *ss, int metric, const char *inst, double *out);
double kw_sample_value(const struct kw_sample *s);
/* Set a row that more than one source fills (kw_precedence.c): kept as it
 * is when a source ranked above this one set it.  0 or -ENOMEM. */
int kw_ss_put_u64(struct kw_sampleset *ss, int source, int metric, const char *inst, uint64_t v);
/* Rank of a source for a row: 0 wins; 255 never fills it when another did. */
int kw_metric_rank(int metric, int source);
/* Sort samples by (metric, instance) so output order is stable. */
void kw_ss_sort(struct kw_sampleset *ss);

#endif
