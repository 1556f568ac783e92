// SPDX-License-Identifier: GPL-2.0
/* events.h - the pieces of kvmwatch's eBPF event modes (cli/ev_*.c):
 *   ev_vms.c    attributing events to VMs (tgid -> VM, tid -> vCPU)
 *   ev_write.c  text and JSON behind one small writer
 *   ev_agg.c    in-kernel aggregates: snapshots, interval deltas, rows
 *   ev_feat.c   one ops record per feature: its stream event, its table
 *   ev_exits.c  --list-exit-reasons, the --replay file and its VMs
 *   events.c    streaming and summaries, the two main loops, the replay */
#ifndef KW_CLI_EVENTS_H
#define KW_CLI_EVENTS_H

#include <stdio.h>
#include <linux/types.h>

#include "cli.h"
#include "kvm/kw_bpf.h"
#include "kvmwatch.h"

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
	struct kw_vmtable gone;   /* VMs that exited during the run: their last
				   * events may still be in the ring or pending */
	struct tidvcpu {
		pid_t tid;
		int vcpu;
	} *tids;                  /* every vCPU thread seen: a vCPU that ended
				   * before its VM still has its index */
	size_t ntids, tidcap;
	struct kw_vmtable replay; /* --replay: the VMs of records whose pid is
				   * no running VM (ev_replay_attribute) */
};

/* ------------------------------------------------------ ev_vms.c */
void ev_remember_vcpus(struct ev_ctx *x);
/* The VM of a process: the table, else a rescan (at most every 200 ms),
 * else the VMs that exited during the run; NULL if none. */
const struct kw_vm *ev_vm_of(struct ev_ctx *x, pid_t tgid);
/* -p given and every VM it selected has exited (checked every 250 ms). */
int ev_all_gone(struct ev_ctx *x);
/* Sleep until t (monotonic ns, ~0 = forever); 1 when the run should end. */
int ev_sleep_until(struct ev_ctx *x, uint64_t t);
/* vCPU index of a thread of vm, -1 if it is not one. */
int ev_vcpu_of(const struct ev_ctx *x, const struct kw_vm *vm, pid_t tid);
/* "3", or "tid1234" for a thread that is no vCPU. */
void ev_vcpu_str(const struct ev_ctx *x, char *out, size_t len, const struct kw_vm *vm, uint32_t tid);
/* The VM's name, or "pid-N" for a process not in the table. */
void ev_vm_label(char *out, size_t len, const struct kw_vm *vm, pid_t tgid);

/* ---------------------------------------------------- ev_write.c */
/* Every field is written for both outputs at once: JSON as ,"key":value
 * (key NULL: not in JSON), text through its printf format (tfmt NULL: not
 * in the text).  Numbers are decimal in JSON whatever tfmt shows. */
struct ew {
	FILE *f;
	int json;
	int first;    /* no comma before the next JSON member */
};
void ew_u(struct ew *w, const char *key, const char *tfmt, unsigned long long v);
void ew_i(struct ew *w, const char *key, const char *tfmt, long long v);
void ew_s(struct ew *w, const char *key, const char *tfmt, const char *s);
/* true/false in JSON; tfmt gets t or f */
void ew_b(struct ew *w, const char *key, const char *tfmt, int b, const char *t, const char *f);
/* JSON with prec decimals */
void ew_f(struct ew *w, const char *key, const char *tfmt, double v, int prec);
/* JSON null / text literal */
void ew_null(struct ew *w, const char *key, const char *text);
/* Literal text (JSON: nothing). */
void ew_text(struct ew *w, const char *s);
/* JSON "key":{ / [ (with a comma unless first) and the closing bracket. */
void ew_open(struct ew *w, const char *key, char bracket);
void ew_close(struct ew *w, char bracket);
/* One element of an array: {, and its end }. */
void ew_elem(struct ew *w, size_t i);
void ew_elem_end(struct ew *w);
/* A latency: "key":ns or null; text " key=1.234us" or " key=-". */
void ew_latency(struct ew *w, const char *jkey, const char *tkey, int timed, uint64_t ns);
/* End of a line of text, "}\n" of a JSON record. */
void ew_eol(struct ew *w);

/* ------------------------------------------------------ ev_agg.c */
struct agg_row {
	struct kw_key k;
	struct kw_agg v;
	int vcpu;         /* rows_for: the vCPU index, EV_VCPU_OTHER, EV_VCPU_ALL */
};
#define EV_VCPU_ALL (-2)    /* no --per-vcpu: every thread together */
#define EV_VCPU_OTHER (-1)  /* the VM's threads that are no vCPU, and injections made from outside it */
/* The features whose BPF objects make interval aggregates (kw_aggs_*,
 * bpf/kw_helpers.bpf.h): their interval rows, min/max included, are the
 * interval's own; the others' are snapshot differences without min/max. */
#define EV_MINMAX_UNKNOWN UINT64_MAX /* min_ns = max_ns: not known (printed as null) */
#define EV_IVAL_BITS (KW_BPF_EXITS | KW_BPF_FAULTS | KW_BPF_MMIO | KW_BPF_DIRTY | KW_BPF_HALTPOLL | \
		      KW_BPF_WAKEUP | KW_BPF_IRQ | KW_BPF_RUNQ)

struct agg_set {
	struct agg_row *r;
	size_t n, cap;
};

struct snap {
	struct agg_set a[KW_BPF__N];
};

/* One VM's rows of a feature over an interval, merged per (kind, reason[, tid]). */
struct vm_rows {
	struct agg_row *r;
	size_t n, cap;
	uint64_t total_count, total_ns;
};

int snap_take(struct ev_ctx *x, struct snap *s);
/* End the current interval: out gets its aggregates (the kernel's interval
 * aggregates; for the features without, cur - prev).  0 or -errno. */
int snap_interval(struct ev_ctx *x, const struct snap *cur, const struct snap *prev, struct snap *out);
void snap_free(struct snap *s);
/* The rows of one VM and feature between prev (NULL: since start) and cur,
 * sorted by count. */
int rows_for(struct ev_ctx *x, const struct kw_vm *vm, const struct snap *cur, const struct snap *prev, int bit,
	     pid_t tgid, int per_tid, struct vm_rows *out);
/* Samples, time and min/avg/max: JSON members, or text columns. */
void ew_lat_stats(struct ew *w, const struct kw_agg *v);
/* The log2 histogram: a JSON member, or (text_label) a text histogram. */
void ew_hist(struct ew *w, const struct kw_agg *v, const char *text_label);
/* The most frequent addresses of a feature with per-address maps (mmio GPAs, dirty GFNs). */
void ew_top(struct ew *w, struct ev_ctx *x, int bit, pid_t tgid);

/* ----------------------------------------------------- ev_exits.c */
/* Replay records without a TID (of no VM running here) run on made-up
 * threads, one per (PID, VCPU), numbered from KW_REPLAY_TID_BASE up (above
 * any real tid: pid_max is at most 2^22). */
#define KW_REPLAY_TID_BASE 0x40000000u
#define KW_REPLAY_MAX_VCPU 65535
/* A record that is the line "interval": with -s, an interval ends there
 * (its summary printed; replayed exits have no clock of their own). */
#define EV_REPLAY_MARK UINT32_MAX
/* Read a --replay file ("-": stdin): one record per line, ISA REASON VCPU
 * LATENCY_NS [PID [TID]] or "interval" (isa EV_REPLAY_MARK), '#' comments.  0, or -1 with err ("FILE:LINE: why"). */
int ev_replay_read(const char *path, struct kw_replay_exit **out, size_t *n, char *err, size_t errlen);
/* Give each record its process and thread: no PID = the replaying kvmwatch
 * (the VM "replay"); a VM running here = its vCPU thread of that index;
 * any other PID = a VM "pid-N".  Makes x->replay.  0 or -ENOMEM. */
int ev_replay_attribute(struct ev_ctx *x, struct kw_replay_exit *r, size_t n);

/* ----------------------------------------------------- ev_feat.c */
/* One VM's section of a feature in a summary. */
struct ev_section {
	struct ev_ctx *x;
	const struct kw_vm *vm;
	pid_t tgid;
	double dt;
	int per;                    /* --per-vcpu */
	const struct vm_rows *r;
	uint64_t tot[3], tns[3];    /* per kind: counts, time (exits: per isa) */
};

/* What perf kvm stat calls kvm_events_ops: everything a feature shows. */
struct ev_feature {
	int bit;                    /* KW_BPF_BIT_* */
	int ev_type;                /* KW_EV_* it streams */
	const char *type;           /* its events' "type" */
	/* one streamed event, after the common prefix */
	void (*event)(struct ew *w, const struct kw_event *e);
	/* a summary section: JSON bracket, text header, one row, the end */
	char bracket;               /* '[' rows are an array, '{' an object */
	void (*head)(struct ew *w, const struct ev_section *s);
	void (*row)(struct ew *w, const struct ev_section *s, const struct agg_row *row, size_t i);
	void (*foot)(struct ew *w, const struct ev_section *s);
	const char *none;           /* text when the VM has no rows */
	void (*after)(struct ew *w, const struct ev_section *s); /* after the section: a sibling key */
};

extern const struct ev_feature ev_features[KW_BPF__N];
/* The feature of a streamed event type, NULL if unknown. */
const struct ev_feature *ev_feature_of(unsigned ev_type);
/* Exits and faults still in progress at the end (kind: enum kw_pending_kind). */
void ev_pending(struct ew *w, const struct kw_pending *p, int kind);

#endif
