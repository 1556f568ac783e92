// SPDX-License-Identifier: GPL-2.0
/* kw_helpers.bpf.h - inline helpers shared by kvmwatch's BPF programs:
 * filtering, log2 latency histograms, event emission with lost-event
 * accounting.  Maps are declared by each program file (KW_COMMON_MAPS), but
 * for agg_dropped, which kw_agg_get counts into. */
#ifndef KW_HELPERS_BPF_H
#define KW_HELPERS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "kvmwatch.h"

/* Every program file declares these (the loader shares `events` and `lost`
 * between objects with bpf_map__reuse_fd so one ring buffer carries all). */
#define KW_COMMON_MAPS(stats_entries)                                        \
	const volatile struct kw_bpf_cfg kw_cfg = {};                        \
	struct {                                                             \
		__uint(type, BPF_MAP_TYPE_RINGBUF);                          \
		__uint(max_entries, KW_RINGBUF_BYTES);                       \
	} events SEC(".maps");                                               \
	struct {                                                             \
		__uint(type, BPF_MAP_TYPE_ARRAY);                            \
		__uint(max_entries, 1);                                      \
		__type(key, __u32);                                          \
		__type(value, __u64);                                        \
	} lost SEC(".maps");                                                 \
	struct {                                                             \
		__uint(type, BPF_MAP_TYPE_HASH);                             \
		__uint(max_entries, stats_entries);                          \
		__type(key, struct kw_key);                                  \
		__type(value, struct kw_agg);                                \
	} stats SEC(".maps")

static __always_inline __u32 kw_tgid(void)
{
	return bpf_get_current_pid_tgid() >> 32;
}

static __always_inline __u32 kw_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

/* Does process tgid (kw_wanted: the current one) pass the targ_tgid filter? */
static __always_inline bool kw_wanted_tgid(const volatile struct kw_bpf_cfg *cfg, __u32 tgid)
{
	return !cfg->targ_tgid || tgid == cfg->targ_tgid;
}

static __always_inline bool kw_wanted(const volatile struct kw_bpf_cfg *cfg)
{
	return kw_wanted_tgid(cfg, kw_tgid());
}

static __always_inline __u32 kw_log2(__u64 v)
{
	__u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFull) << 5; v >>= shift; r = shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

/* Events an aggregate could not be made for (the stats map was full): the
 * loader says so, and prunes the entries of VMs that are gone. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} agg_dropped SEC(".maps");

/* The interval aggregates (see struct kw_ival_key): the epoch user space
 * sets (0: no interval reports, nothing recorded) and the entries per
 * (key, epoch).  Not preallocated: only what an interval touches. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} kw_epoch SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KW_IVAL_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct kw_ival_key);
	__type(value, struct kw_agg);
} ival SEC(".maps");

/* Look a stats (or ival) entry up, creating it (zeroed) if missing. */
static __always_inline struct kw_agg *kw_agg_get_any(void *map, const void *key)
{
	static const struct kw_agg zero = {};
	struct kw_agg *a = bpf_map_lookup_elem(map, key);
	__u32 z = 0;
	__u64 *d;

	if (a)
		return a;
	bpf_map_update_elem(map, key, &zero, BPF_NOEXIST);
	a = bpf_map_lookup_elem(map, key);
	if (!a && (d = bpf_map_lookup_elem(&agg_dropped, &z)))
		__sync_fetch_and_add(d, 1);
	return a;
}

static __always_inline struct kw_agg *kw_agg_get(void *map, const struct kw_key *key)
{
	return kw_agg_get_any(map, key);
}

/* This interval's aggregate of key, NULL when there are no interval
 * reports (epoch 0).  The epoch is read once: the entry is the one of the
 * interval this program run belongs to. */
static __always_inline struct kw_agg *kw_ival_get(const struct kw_key *key)
{
	struct kw_ival_key ik = { .k = *key };
	__u32 z = 0;
	__u64 *ep = bpf_map_lookup_elem(&kw_epoch, &z);

	if (!ep)
		return NULL;
	ik.epoch = *(volatile __u64 *)ep;
	if (!ik.epoch)
		return NULL;
	return kw_agg_get_any(&ival, &ik);
}

static __always_inline void kw_agg_count(struct kw_agg *a)
{
	__sync_fetch_and_add(&a->count, 1);
}

/* Count one event in its (VM, kind) aggregate and in a bounded per-address
 * (GPA / GFN) LRU counter map. */
static __always_inline void kw_agg_count_addr(void *stats, void *addrs, const struct kw_key *k,
					      const struct kw_addr_key *ak)
{
	static const __u64 one = 1;
	struct kw_agg *a = kw_agg_get(stats, k), *i = kw_ival_get(k);
	__u64 *n;

	if (a)
		kw_agg_count(a);
	if (i)
		kw_agg_count(i);
	n = bpf_map_lookup_elem(addrs, ak);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(addrs, ak, &one, BPF_NOEXIST);
}

/* Add one latency sample: count of timed samples, sum, min/max, log2 slot. */
static __always_inline void kw_agg_latency(struct kw_agg *a, __u64 ns)
{
	__u32 slot = kw_log2(ns);
	__u64 old;
	int i;

	if (slot >= KW_HIST_SLOTS)
		slot = KW_HIST_SLOTS - 1;
	__sync_fetch_and_add(&a->timed, 1);
	__sync_fetch_and_add(&a->sum_ns, ns);
	__sync_fetch_and_add(&a->slots[slot], 1);
	/* min/max with compare-and-swap: vCPUs of one VM update concurrently */
	for (i = 0; i < 4; i++) {
		old = a->min_ns;
		if (old && old <= ns)
			break;
		if (__sync_val_compare_and_swap(&a->min_ns, old, ns) == old)
			break;
	}
	for (i = 0; i < 4; i++) {
		old = a->max_ns;
		if (old >= ns)
			break;
		if (__sync_val_compare_and_swap(&a->max_ns, old, ns) == old)
			break;
	}
}

/* An event's since-start aggregate and (interval reports) this interval's:
 * get both with kw_aggs_get, update both with kw_aggs_*.  Use these rather
 * than kw_agg_get + kw_agg_count/kw_agg_latency, which make the since-start
 * one alone (an interval report then has no min/max for the rows). */
struct kw_aggs {
	struct kw_agg *all, *ival;
};

static __always_inline void kw_aggs_get(struct kw_aggs *p, void *stats, const struct kw_key *k)
{
	p->all = kw_agg_get(stats, k);
	p->ival = kw_ival_get(k);
}

static __always_inline void kw_aggs_count(struct kw_aggs *p)
{
	if (p->all)
		kw_agg_count(p->all);
	if (p->ival)
		kw_agg_count(p->ival);
}

static __always_inline void kw_aggs_latency(struct kw_aggs *p, __u64 ns)
{
	if (p->all)
		kw_agg_latency(p->all, ns);
	if (p->ival)
		kw_agg_latency(p->ival, ns);
}

static __always_inline void kw_aggs_aux_add(struct kw_aggs *p, __u64 n)
{
	if (p->all)
		__sync_fetch_and_add(&p->all->aux, n);
	if (p->ival)
		__sync_fetch_and_add(&p->ival->aux, n);
}

static __always_inline void kw_aggs_aux_set(struct kw_aggs *p, __u64 v)
{
	if (p->all)
		p->all->aux = v;
	if (p->ival)
		p->ival->aux = v;
}

/* The stats key of an event of thread tid of process tgid (kw_key_init: the
 * current thread). */
static __always_inline void kw_key_init_for(struct kw_key *k, const volatile struct kw_bpf_cfg *cfg, __u32 tgid,
					    __u32 tid, __u32 kind, __u32 reason)
{
	k->tgid = tgid;
	k->tid = cfg->per_thread ? tid : 0;
	k->kind = kind;
	k->reason = reason;
}

static __always_inline void kw_key_init(struct kw_key *k, const volatile struct kw_bpf_cfg *cfg, __u32 kind,
					__u32 reason)
{
	kw_key_init_for(k, cfg, kw_tgid(), kw_tid(), kind, reason);
}

/* Reserve an event in the ring buffer; counts a lost event when full. */
static __always_inline struct kw_event *kw_event_reserve(void *ringbuf, void *lostmap, __u32 type)
{
	struct kw_event *e = bpf_ringbuf_reserve(ringbuf, sizeof(*e), 0);
	__u32 zero = 0;
	__u64 *l;

	if (!e) {
		l = bpf_map_lookup_elem(lostmap, &zero);
		if (l)
			__sync_fetch_and_add(l, 1);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->type = type;
	e->tgid = kw_tgid();
	e->tid = kw_tid();
	e->ts = bpf_ktime_get_ns();
	return e;
}

char LICENSE[] SEC("license") = "GPL";

#endif
