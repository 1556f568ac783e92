// SPDX-License-Identifier: GPL-2.0
/* kw_view.h - views as data: what the CLI's text views (and the
 * interactive screen) show, as tables of columns over the metric table.
 *
 * A view is one or more sections; a section has one row per VM, vCPU,
 * interface, disk, sample or host device, and columns that are either an
 * attribute of the row (name, pid, interface, ...) or a number computed
 * from metric-table rows: a rate, a gauge, a ratio of two rates (time per
 * request) or a share of a whole.  Numbers are converted from the metric's
 * own unit (metrics*.def) to the column's display unit by kw_unit_factor():
 * no front end divides by 1e7 or 1048576 itself. */
#ifndef KW_VIEW_H
#define KW_VIEW_H

#include <stddef.h>
#include <stdint.h>

#include "core/kw_collector.h"

/* What one row of a section is. */
enum kw_vrow {
	KW_VROW_VM,        /* each VM */
	KW_VROW_VCPU,      /* each vCPU thread of each VM (inst = vCPU index) */
	KW_VROW_NETIF,     /* each interface of each VM */
	KW_VROW_DISK,      /* each disk of each VM */
	KW_VROW_SAMPLE,    /* each sample of each VM (filtered by row_if) */
	KW_VROW_HOST,      /* the host, once */
	KW_VROW_HOST_INST, /* each instance of the host metric row_if[0] (device, interface) */
};

/* Column kinds: attributes of the row, then numbers. */
enum kw_vc {
	KW_VC_NAME, KW_VC_PID, KW_VC_VCPUS, KW_VC_TID, KW_VC_VCPU, KW_VC_INST, KW_VC_UUID, KW_VC_PVEID,
	KW_VC_THREADS, KW_VC_VMM, KW_VC_FOUND, KW_VC_NETIFS, KW_VC_STATE, KW_VC_DOMID,
	KW_VC_S_METRIC,    /* sample rows: the metric's name */
	KW_VC_S_INST,      /* sample rows: the instance ("-" if none) */
	KW_VC_S_VALUE,     /* sample rows: the raw value */
	KW_VC_S_UNIT,      /* sample rows: the sample's unit */
	KW_VC_LINK,        /* "up" / "down" from the gauge m[0] at the row's instance, "-" if none */
	KW_VC__TEXT,       /* kinds below are numbers */
	KW_VC_S_RATE,      /* sample rows: per-second rate of a counter */
	KW_VC_RATE,        /* sum of the per-second rates of m[] */
	KW_VC_GAUGE,       /* value of m[0] */
	KW_VC_PAIR,        /* line sections: values of m[0] and m[1] */
	KW_VC_PER,         /* rate(m[0]) / rate(m[1]), 0 when m[1] did not move: time per request */
	KW_VC_SHARE,       /* rate(m[0]) as a part of the sum of the section's share[] rates */
};

#define KW_VC_LEFT 0x1     /* left-aligned */
#define KW_VC_NEED 0x2     /* "-" when m[0] has no sample */
#define KW_VC_HIDE 0x4     /* the interactive screen: off until the field selector turns it on */
#define KW_VC_MAXM 4

struct kw_vcol {
	const char *header;   /* "CPU%" */
	const char *key;      /* "cpu": --sort, the screen's field names */
	uint8_t kind;         /* enum kw_vc */
	uint8_t width, prec;  /* text columns: width 0 = as long as it is (last column) */
	uint8_t flags;        /* KW_VC_* */
	const char *unit;     /* display unit of numbers: "%", "MiB", "KiB/s", "kbit/s", "ms/s", "ms", "/s", "" */
	const char *fmt;      /* line sections: printf format of the values ("user %.1f%%") */
	int16_t m[KW_VC_MAXM];/* metrics (enum kw_metric_id), -1 after the last */
};

enum kw_vstyle { KW_VSTYLE_TABLE, KW_VSTYLE_LINE };

struct kw_view {
	const char *name;     /* --view name (sections after the first: "" ) */
	uint8_t rows;         /* enum kw_vrow */
	uint8_t style;        /* enum kw_vstyle */
	const char *title;    /* line sections: "host cpu" */
	const struct kw_vcol *cols;
	size_t ncols;
	int16_t row_if[3];    /* rows only where one of these has a sample; HOST_INST: its instances */
	uint8_t moving;       /* sample rows: only counters whose rate is > 0 */
	int16_t share[10];    /* KW_VC_SHARE: the whole (-1 after the last) */
	const struct kw_view *next; /* next section of the same view */
};

/* Every view, by name ("summary", "vcpu", "net", "host", "list", "all",
 * "mem", "kvm", "disk"), NULL-terminated. */
extern const struct kw_view *const kw_views[];
const struct kw_view *kw_view_find(const char *name);
/* Column of a view's first section by key, -1 if none. */
int kw_view_col(const struct kw_view *v, const char *key);

/* One row being shown. */
struct kw_vrow_ctx {
	const struct kw_vm *vm;             /* NULL on host rows */
	const struct kw_sampleset *cur;     /* the row's object now ... */
	const struct kw_sampleset *prev;    /* ... and at the cycle before (NULL: none) */
	double dt;                          /* seconds between them */
	const char *inst;                   /* the row's instance, "" if none */
	const struct kw_thread *thread;     /* VCPU rows */
	const struct kw_sample *sample;     /* SAMPLE rows */
};

/* Call fn for each row of a section over the VMs and host samples of one
 * cycle (a collector's, or a snapshot's), prev the cycle before (fn returns
 * non-zero to stop). */
typedef int (*kw_vrow_fn)(const struct kw_view *v, const struct kw_vrow_ctx *r, void *arg);
int kw_view_rows(const struct kw_view *v, const struct kw_vmtable *vms, const struct kw_sampleset *host,
		 const struct kw_snapshot *prev, double dt, kw_vrow_fn fn, void *arg);

/* A number column's values (two for PAIR), converted to its unit.  Returns
 * how many, or -1 when missing (a NEED column without its sample, a rate of
 * something that is not a counter). */
int kw_vcol_values(const struct kw_view *v, const struct kw_vcol *col, const struct kw_vrow_ctx *r, double out[2]);
/* A text column's value: printable (control characters and invalid UTF-8
 * as '?'), cut to the column's width. */
const char *kw_vcol_text(const struct kw_vcol *col, const struct kw_vrow_ctx *r, char *buf, size_t len);

/* A cell as text, not padded: a text column's value, a number with the
 * column's decimals (human: scaled with K/M/G/T to a few digits, for the
 * interactive screen), "-" when missing.  Returns buf. */
const char *kw_vcol_format(const struct kw_view *v, const struct kw_vcol *col, const struct kw_vrow_ctx *r,
			   int human, char *buf, size_t len);
/* A line section's one line: "title: col  col  ...".  Returns buf. */
const char *kw_vline_format(const struct kw_view *v, const struct kw_vrow_ctx *r, char *buf, size_t len);
/* v in the column's unit, human-scaled ("1.5G", "320K", "12.0"). */
const char *kw_human(double v, const char *unit, char *buf, size_t len);

/* Factor from a metric's unit to a display unit; rate: the value is per
 * second (then "%" of a time unit means share of one second, and a display
 * unit ending in "/s" is the rate's).  0, or -EINVAL if they do not convert. */
int kw_unit_factor(const char *from, const char *to, int rate, double *factor);

#endif
