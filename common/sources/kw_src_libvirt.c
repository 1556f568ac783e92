// SPDX-License-Identifier: GPL-2.0
/* kw_src_libvirt.c - the libvirt source.
 *
 * One virConnectGetAllDomainStats call per cycle (no per-domain round trips
 * for the bulk data) gives every active domain's state, CPU, balloon, vCPU,
 * interface and block statistics; virDomainGetJobStats adds job (migration)
 * progress of running domains.  A domain is joined to the VMM process the
 * procfs source found by pid (libvirt's pidfile <rundir>/qemu/NAME.pid, for
 * local URIs), then uuid, then name; a domain without a local process (a
 * remote URI) becomes its own VM with key "uuid:<uuid>".
 *
 * The connection is read-only, kept alive with libvirt keepalive messages
 * (driven by libvirt's default event loop on a thread of its own, so a hung
 * daemon is dropped within seconds), and re-opened with exponential backoff
 * after an outage; an outage is logged once, the recovery once.  Opening
 * never happens on the collection path: virConnectOpen to a daemon that
 * accepts and never answers (SIGSTOP) blocks for as long as it hangs, so it
 * runs on a thread of its own and the collector takes the connection when
 * it is there. */
#include "core/kw_collector.h"
#include "sources/kw_src_libvirt.h"
#include "util/kw_util.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <libvirt/virterror.h>

#define KEEPALIVE_INTERVAL 2   /* seconds between keepalive probes */
#define KEEPALIVE_COUNT 2      /* unanswered probes before the connection is closed */
#define BACKOFF_MAX_S 30
#define LV_START_WAIT_MS 2000  /* at start, how long the first open may take before it goes on in the background */

#define STATS_GROUPS (VIR_DOMAIN_STATS_STATE | VIR_DOMAIN_STATS_CPU_TOTAL | VIR_DOMAIN_STATS_BALLOON | \
		      VIR_DOMAIN_STATS_VCPU | VIR_DOMAIN_STATS_INTERFACE | VIR_DOMAIN_STATS_BLOCK | STATS_VM)
/* VIR_DOMAIN_STATS_VM (libvirt >= 8.9: the VM-level KVM stats); daemons that
 * do not know a group skip it (no ENFORCE_STATS flag) */
#define STATS_VM (1 << 10)

struct lv_dom {
	char uuid[VIR_UUID_STRING_BUFLEN];
	virDomainStatsRecordPtr rec;
};

/* Lifecycle events (KW_LV_EVENTS): filled by libvirt's event-loop thread,
 * taken by the collector.  Shared by the source and the registration
 * (refs): libvirt drops its reference with the callback's free function,
 * after any callback still running, so neither frees it under the other. */
struct lv_evq {
	pthread_mutex_t mu;
	int refs;
	struct kw_dom_event ev[KW_DOM_EVENTS_MAX];
	size_t n;
	uint64_t lost;
};

/* What a domain's XML said (KW_LV_XML, KW_LV_METADATA), re-read every
 * libvirt_xml_refresh_s. */
struct lv_xml {
	char key[64];                   /* the VM's key (kw_vmcache) */
	uint64_t next_ns;               /* when to read it again, 0 never */
	struct kw_lv_iface ifaces[KW_LV_IFACES_MAX];
	int nifaces;
	int persistent;                 /* -1 unknown */
	char meta[128];
};

/* One virConnectOpenReadOnly in flight on a detached thread.  Shared by
 * that thread and the source (refs): whoever drops it last frees it, so a
 * source that stops while the open hangs does not wait for it. */
struct lv_opener {
	pthread_mutex_t mu;
	int refs;
	int done;
	virConnectPtr conn;
	char uri[256];
	char err[512];
};

struct libvirt_state {
	virConnectPtr conn;
	struct lv_opener *opener;       /* an open in flight, or NULL */
	char uri[256];
	char piddir[PATH_MAX];          /* "" = no pidfile join (remote, session) */
	virDomainStatsRecordPtr *recs;
	int nrecs;
	struct lv_dom *doms;
	size_t ndoms, domcap;
	unsigned flags;                 /* for virConnectGetAllDomainStats */
	unsigned groups;                /* its statistics groups */
	int down;                       /* in an outage */
	uint64_t down_since_ns;
	uint64_t next_try_ns;
	unsigned backoff_s;
	int outage_level;            /* level of the outage line; recovery is logged alike */
	int job_unsupported;
	int info_unsupported;
	/* extras (kw_config.libvirt_extra) */
	unsigned extra;
	unsigned xml_refresh_s;
	char meta_ns[256], meta_xpath[256];
	virConnectPtr setup_conn;       /* the connection node info / events were set up on */
	virNodeInfo node;
	int node_ok;
	struct lv_evq *evq;
	int cb_id;                      /* event callback on conn, -1 none */
	struct kw_vmcache xml;          /* struct lv_xml per VM */
	int vcpus_unsupported, diskerr_unsupported, meta_unsupported, cpustats_unsupported;
};

/* ------------------------------------------------------------ mapping */

const char *kw_libvirt_state_name(int state)
{
	static const char *const n[] = { "nostate", "running", "blocked", "paused", "shutdown", "shutoff",
					  "crashed", "pmsuspended" };
	return state >= 0 && state < (int)KW_ARRAY_SIZE(n) ? n[state] : "unknown";
}

static int param_u64(const virTypedParameter *p, uint64_t *out)
{
	switch (p->type) {
	case VIR_TYPED_PARAM_INT: *out = p->value.i < 0 ? 0 : (uint64_t)p->value.i; return 0;
	case VIR_TYPED_PARAM_UINT: *out = p->value.ui; return 0;
	case VIR_TYPED_PARAM_LLONG: *out = p->value.l < 0 ? 0 : (uint64_t)p->value.l; return 0;
	case VIR_TYPED_PARAM_ULLONG: *out = p->value.ul; return 0;
	case VIR_TYPED_PARAM_DOUBLE: *out = p->value.d < 0 ? 0 : (uint64_t)p->value.d; return 0;
	case VIR_TYPED_PARAM_BOOLEAN: *out = p->value.b ? 1 : 0; return 0;
	default: return -1;
	}
}

struct field_map {
	const char *name;
	int metric;
	uint64_t mul;     /* KiB -> bytes */
	int shared;       /* fill only when absent */
};

static const struct field_map balloon_map[] = {
	{ "current", KW_M_DOM_MEM_CUR, 1024, 0 }, { "maximum", KW_M_DOM_MEM_MAX, 1024, 0 },
	{ "rss", KW_M_BAL_RSS, 1024, 0 }, { "usable", KW_M_BAL_USABLE, 1024, 0 },
	{ "unused", KW_M_BAL_UNUSED, 1024, 0 }, { "available", KW_M_BAL_AVAIL, 1024, 0 },
	{ "disk_caches", KW_M_BAL_CACHES, 1024, 0 }, { "swap_in", KW_M_BAL_SWAP_IN, 1024, 0 },
	{ "swap_out", KW_M_BAL_SWAP_OUT, 1024, 0 }, { "major_fault", KW_M_BAL_MAJFLT, 1, 0 },
	{ "minor_fault", KW_M_BAL_MINFLT, 1, 0 },
};

static const struct field_map net_map[] = {
	{ "rx.bytes", KW_M_NET_RX_BYTES, 1, 1 }, { "rx.pkts", KW_M_NET_RX_PKTS, 1, 1 },
	{ "rx.errs", KW_M_NET_RX_ERRS, 1, 1 }, { "rx.drop", KW_M_NET_RX_DROP, 1, 1 },
	{ "tx.bytes", KW_M_NET_TX_BYTES, 1, 1 }, { "tx.pkts", KW_M_NET_TX_PKTS, 1, 1 },
	{ "tx.errs", KW_M_NET_TX_ERRS, 1, 1 }, { "tx.drop", KW_M_NET_TX_DROP, 1, 1 },
};

static const struct field_map block_map[] = {
	{ "rd.reqs", KW_M_DISK_RD_REQS, 1, 0 }, { "rd.bytes", KW_M_DISK_RD_BYTES, 1, 0 },
	{ "rd.times", KW_M_DISK_RD_TIME, 1, 0 }, { "wr.reqs", KW_M_DISK_WR_REQS, 1, 0 },
	{ "wr.bytes", KW_M_DISK_WR_BYTES, 1, 0 }, { "wr.times", KW_M_DISK_WR_TIME, 1, 0 },
	{ "fl.reqs", KW_M_DISK_FL_REQS, 1, 0 }, { "fl.times", KW_M_DISK_FL_TIME, 1, 0 },
	{ "errors", KW_M_DISK_ERRORS, 1, 0 }, { "capacity", KW_M_DISK_CAPACITY, 1, 0 },
	{ "allocation", KW_M_DISK_ALLOC, 1, 0 }, { "physical", KW_M_DISK_PHYSICAL, 1, 0 },
};

static const struct field_map vcpu_map[] = {
	{ "time", KW_M_DOM_VCPU_TIME, 1, 0 }, { "wait", KW_M_DOM_VCPU_WAIT, 1, 0 },
	{ "delay", KW_M_VCPU_DELAY, 1, 1 },
};

static const struct field_map *find_field(const struct field_map *m, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(m[i].name, name))
			return &m[i];
	return NULL;
}

static int put(struct kw_vm *vm, const struct field_map *f, const char *inst, uint64_t v)
{
	return f->shared ? kw_ss_put_u64(&vm->stats, KW_SRC_LIBVIRT, f->metric, inst, v * f->mul)
			 : kw_ss_set_u64(&vm->stats, f->metric, inst, v * f->mul);
}

/* "net.3.rx.bytes" with prefix "net." -> index 3, rest "rx.bytes". */
static int split_indexed(const char *field, const char *prefix, unsigned *idx, const char **rest)
{
	const char *p;
	char *end;
	unsigned long v;

	if (!kw_startswith(field, prefix))
		return -1;
	p = field + strlen(prefix);
	if (*p < '0' || *p > '9')
		return -1;
	v = strtoul(p, &end, 10);
	if (*end != '.' || v > 65535)
		return -1;
	*idx = (unsigned)v;
	*rest = end + 1;
	return 0;
}

/* Device names of net.N.name / block.N.name, by index. */
static const char *dev_name(const virTypedParameter *params, int n, const char *prefix, unsigned idx)
{
	char want[64];
	int i;

	snprintf(want, sizeof(want), "%s%u.name", prefix, idx);
	for (i = 0; i < n; i++)
		if (params[i].type == VIR_TYPED_PARAM_STRING && !strcmp(params[i].field, want))
			return params[i].value.s;
	return NULL;
}

/* KVM binary stats that QEMU's query-stats passes through libvirt:
 * vcpu.N.NAME.sum (cumulative), .cur (instant), .max (peak); vm.NAME.*.
 * The same rows as the kvmstat source, which overrides them when it reads
 * the VM's stats fds itself. */
static int kvm_stat(struct kw_vm *vm, int vcpu, const char *rest, uint64_t v)
{
	const char *dot = strrchr(rest, '.');
	char name[48], inst[KW_INST_MAX];
	size_t len;

	if (!dot || (len = (size_t)(dot - rest)) == 0 || len >= sizeof(name))
		return 0;
	memcpy(name, rest, len);
	name[len] = '\0';
	if (!strcmp(dot, ".sum")) {
		if (vcpu < 0)
			return kw_ss_set_u64(&vm->stats, KW_M_KVM_VM, name, v);
		snprintf(inst, sizeof(inst), "%d.%s", vcpu, name);
		if (kw_ss_set_u64(&vm->stats, KW_M_KVM_VCPU_EACH, inst, v))
			return -ENOMEM;
		return kw_ss_add_u64(&vm->stats, KW_M_KVM_VCPU, name, v);
	}
	if (!strcmp(dot, ".cur") || !strcmp(dot, ".max")) {
		const struct kw_sample *s;

		if (vcpu < 0)
			return kw_ss_set_u64(&vm->stats, KW_M_KVM_VM_GAUGE, name, v);
		if (dot[1] == 'c')
			return kw_ss_add_u64(&vm->stats, KW_M_KVM_VCPU_GAUGE, name, v);
		s = kw_ss_get(&vm->stats, KW_M_KVM_VCPU_GAUGE, name);
		return s && s->v.u >= v ? 0 : kw_ss_set_u64(&vm->stats, KW_M_KVM_VCPU_GAUGE, name, v);
	}
	return 0;
}

int kw_libvirt_map_stats(struct kw_vm *vm, const virTypedParameter *params, int n)
{
	int i, r = 0;

	for (i = 0; i < n && r != -ENOMEM; i++) {
		const virTypedParameter *p = &params[i];
		const struct field_map *f;
		const char *rest, *dev;
		char inst[16];
		unsigned idx;
		uint64_t v;

		if (param_u64(p, &v)) {
			/* strings: names are read by index below; a disk's source path here */
			if (p->type == VIR_TYPED_PARAM_STRING && !split_indexed(p->field, "block.", &idx, &rest) &&
			    !strcmp(rest, "path") && (dev = dev_name(params, n, "block.", idx)) &&
			    strlen(dev) < KW_DISK_MAX) {
				struct kw_disk *d;

				if (kw_vm_add_disk(vm, dev) == -ENOMEM)
					return -ENOMEM;
				if ((d = kw_vm_disk(vm, dev)))
					kw_strlcpy(d->source, p->value.s, sizeof(d->source));
			}
			continue;
		}
		if (!strcmp(p->field, "state.state")) {
			r = kw_ss_set_u64(&vm->stats, KW_M_DOM_STATE, NULL, v);
			kw_strlcpy(vm->state, kw_libvirt_state_name((int)v), sizeof(vm->state));
		} else if (!strcmp(p->field, "state.reason")) {
			r = kw_ss_set_u64(&vm->stats, KW_M_DOM_STATE_REASON, NULL, v);
		} else if (!strcmp(p->field, "cpu.time")) {
			r = kw_ss_set_u64(&vm->stats, KW_M_DOM_CPU_TIME, NULL, v);
		} else if (!strcmp(p->field, "cpu.user")) {
			r = kw_ss_put_u64(&vm->stats, KW_SRC_LIBVIRT, KW_M_CPU_USER, NULL, v);
			if (!r)
				r = kw_ss_set_u64(&vm->stats, KW_M_DOM_CPU_USER, NULL, v);
		} else if (!strcmp(p->field, "cpu.system")) {
			r = kw_ss_put_u64(&vm->stats, KW_SRC_LIBVIRT, KW_M_CPU_SYSTEM, NULL, v);
			if (!r)
				r = kw_ss_set_u64(&vm->stats, KW_M_DOM_CPU_SYS, NULL, v);
		} else if (kw_startswith(p->field, "perf.") && p->field[5] && strlen(p->field + 5) < KW_INST_MAX) {
			r = kw_ss_set_u64(&vm->stats, KW_M_DOM_PERF, p->field + 5, v);
		} else if (kw_startswith(p->field, "balloon.")) {
			if ((f = find_field(balloon_map, KW_ARRAY_SIZE(balloon_map), p->field + 8)))
				r = put(vm, f, NULL, v);
		} else if (!strcmp(p->field, "vcpu.current")) {
			r = kw_ss_set_u64(&vm->stats, KW_M_DOM_VCPUS, NULL, v);
			if (!r)
				r = kw_ss_put_u64(&vm->stats, KW_SRC_LIBVIRT, KW_M_VCPUS, NULL, v);
			if (vm->nthreads == 0 && v < 65536)
				vm->nvcpus = (int)v; /* no local threads: libvirt's count */
		} else if (!strcmp(p->field, "vcpu.maximum")) {
			r = kw_ss_set_u64(&vm->stats, KW_M_DOM_VCPUS_MAX, NULL, v);
		} else if (!split_indexed(p->field, "vcpu.", &idx, &rest)) {
			if ((f = find_field(vcpu_map, KW_ARRAY_SIZE(vcpu_map), rest))) {
				snprintf(inst, sizeof(inst), "%u", idx);
				r = put(vm, f, inst, v);
			} else {
				r = kvm_stat(vm, (int)idx, rest, v);
			}
		} else if (kw_startswith(p->field, "vm.")) {
			r = kvm_stat(vm, -1, p->field + 3, v);
		} else if (!split_indexed(p->field, "net.", &idx, &rest)) {
			if (!(f = find_field(net_map, KW_ARRAY_SIZE(net_map), rest)) ||
			    !(dev = dev_name(params, n, "net.", idx)) || strlen(dev) >= KW_IFNAME_MAX)
				continue;
			if (kw_vm_add_netif(vm, dev) == -ENOMEM)
				return -ENOMEM;
			r = put(vm, f, dev, v);
		} else if (!split_indexed(p->field, "block.", &idx, &rest)) {
			if (!(f = find_field(block_map, KW_ARRAY_SIZE(block_map), rest)) ||
			    !(dev = dev_name(params, n, "block.", idx)) || strlen(dev) >= KW_DISK_MAX)
				continue;
			if (kw_vm_add_disk(vm, dev) == -ENOMEM)
				return -ENOMEM;
			r = put(vm, f, dev, v);
		}
	}
	return r == -ENOMEM ? r : 0;
}

int kw_libvirt_map_job(struct kw_vm *vm, int type, const virTypedParameter *params, int n, int all)
{
	static const struct field_map job_map[] = {
		{ VIR_DOMAIN_JOB_TIME_ELAPSED, KW_M_JOB_ELAPSED, 1, 0 },
		{ VIR_DOMAIN_JOB_DOWNTIME, KW_M_JOB_DOWNTIME, 1, 0 },
		{ VIR_DOMAIN_JOB_DATA_TOTAL, KW_M_JOB_DATA_TOTAL, 1, 0 },
		{ VIR_DOMAIN_JOB_DATA_PROCESSED, KW_M_JOB_DATA_PROC, 1, 0 },
		{ VIR_DOMAIN_JOB_DATA_REMAINING, KW_M_JOB_DATA_REM, 1, 0 },
		{ VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, KW_M_JOB_DIRTY_RATE, 1, 0 },
		{ VIR_DOMAIN_JOB_MEMORY_ITERATION, KW_M_JOB_ITERATION, 1, 0 },
	};
	int i;

	if (kw_ss_set_u64(&vm->stats, KW_M_JOB_TYPE, NULL, type < 0 ? 0 : (uint64_t)type))
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const struct field_map *f = find_field(job_map, KW_ARRAY_SIZE(job_map), params[i].field);
		uint64_t v;

		if (param_u64(&params[i], &v))
			continue;
		if (f && put(vm, f, NULL, v))
			return -ENOMEM;
		if (all && strlen(params[i].field) < KW_INST_MAX &&
		    kw_ss_set_u64(&vm->stats, KW_M_JOB_PARAM, params[i].field, v))
			return -ENOMEM;
	}
	return 0;
}

int kw_libvirt_map_memstats(struct kw_vm *vm, const virDomainMemoryStatStruct *st, int n)
{
	static const struct { int tag; int metric; uint64_t mul; } map[] = {
		{ VIR_DOMAIN_MEMORY_STAT_ACTUAL_BALLOON, KW_M_DOM_MEM_CUR, 1024 },
		{ VIR_DOMAIN_MEMORY_STAT_RSS, KW_M_BAL_RSS, 1024 },
		{ VIR_DOMAIN_MEMORY_STAT_USABLE, KW_M_BAL_USABLE, 1024 },
		{ VIR_DOMAIN_MEMORY_STAT_UNUSED, KW_M_BAL_UNUSED, 1024 },
		{ VIR_DOMAIN_MEMORY_STAT_AVAILABLE, KW_M_BAL_AVAIL, 1024 },
		{ VIR_DOMAIN_MEMORY_STAT_DISK_CACHES, KW_M_BAL_CACHES, 1024 },
		{ VIR_DOMAIN_MEMORY_STAT_SWAP_IN, KW_M_BAL_SWAP_IN, 1024 },
		{ VIR_DOMAIN_MEMORY_STAT_SWAP_OUT, KW_M_BAL_SWAP_OUT, 1024 },
		{ VIR_DOMAIN_MEMORY_STAT_MAJOR_FAULT, KW_M_BAL_MAJFLT, 1 },
		{ VIR_DOMAIN_MEMORY_STAT_MINOR_FAULT, KW_M_BAL_MINFLT, 1 },
	};
	int i;
	size_t k;

	for (i = 0; i < n; i++)
		for (k = 0; k < KW_ARRAY_SIZE(map); k++)
			if (st[i].tag == map[k].tag &&
			    kw_ss_set_u64(&vm->stats, map[k].metric, NULL, st[i].val * map[k].mul))
				return -ENOMEM;
	return 0;
}

/* ---------------------------------------------------------- connection */

static void silent_error(void *arg, virErrorPtr err)
{
	(void)arg;
	(void)err; /* errors are fetched with virGetLastError and logged by us */
}

static int event_loop_ok;

static void *event_loop(void *arg)
{
	(void)arg;
	for (;;)
		if (virEventRunDefaultImpl() < 0)
			usleep(100000);
	return NULL;
}

static void libvirt_global_init(void)
{
	pthread_t t;

	virSetErrorFunc(NULL, silent_error);
	if (virInitialize() < 0)
		return;
	/* Keepalive needs an event loop: libvirt's default one on its own thread. */
	if (virEventRegisterDefaultImpl() == 0 && pthread_create(&t, NULL, event_loop, NULL) == 0) {
		pthread_detach(t);
		event_loop_ok = 1;
	}
}

static const char *last_error(void)
{
	virErrorPtr e = virGetLastError();

	return e && e->message ? e->message : "unknown libvirt error";
}

static int last_error_code(void)
{
	virErrorPtr e = virGetLastError();

	return e ? e->code : VIR_ERR_OK;
}

static void opener_put(struct lv_opener *o)
{
	int last;

	pthread_mutex_lock(&o->mu);
	last = --o->refs == 0;
	pthread_mutex_unlock(&o->mu);
	if (!last)
		return;
	if (o->conn)
		virConnectClose(o->conn); /* nobody took it */
	pthread_mutex_destroy(&o->mu);
	free(o);
}

static void *opener_main(void *arg)
{
	struct lv_opener *o = arg;
	virConnectPtr conn = virConnectOpenReadOnly(o->uri);

	pthread_mutex_lock(&o->mu);
	o->conn = conn;
	if (!conn)
		snprintf(o->err, sizeof(o->err), "failed to connect to %s: %s", o->uri, last_error());
	o->done = 1;
	pthread_mutex_unlock(&o->mu);
	virResetLastError();
	opener_put(o);
	return NULL;
}

/* Start an open unless one is in flight.  0 or -errno. */
static int lv_open_start(struct libvirt_state *st)
{
	struct lv_opener *o;
	pthread_attr_t at;
	pthread_t t;
	int r;

	if (st->opener)
		return 0;
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	pthread_mutex_init(&o->mu, NULL);
	o->refs = 2;
	kw_strlcpy(o->uri, st->uri, sizeof(o->uri));
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	r = pthread_create(&t, &at, opener_main, o);
	pthread_attr_destroy(&at);
	if (r) {
		pthread_mutex_destroy(&o->mu);
		free(o);
		return -r;
	}
	st->opener = o;
	return 0;
}

/* Has the open in flight finished?  1 with st->conn set, 0 still running,
 * -1 failed (err says why). */
static int lv_open_poll(struct libvirt_state *st, char *err, size_t errlen)
{
	struct lv_opener *o = st->opener;
	virConnectPtr conn;

	if (!o)
		return -1;
	pthread_mutex_lock(&o->mu);
	if (!o->done) {
		pthread_mutex_unlock(&o->mu);
		return 0;
	}
	conn = o->conn;
	o->conn = NULL;
	kw_strlcpy(err, o->err, errlen);
	pthread_mutex_unlock(&o->mu);
	opener_put(o);
	st->opener = NULL;
	if (!conn)
		return -1;
	st->conn = conn;
	/* 1: the peer does not do keepalive; -1: a local driver (no daemon) */
	if (event_loop_ok)
		virConnectSetKeepAlive(st->conn, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT);
	return 1;
}

/* Open, waiting at most wait_ms (at start: a healthy daemon answers in
 * milliseconds; a hung one is left to the background).  0 connected,
 * -EINPROGRESS still opening, -ECONNREFUSED failed (err). */
static int lv_open(struct libvirt_state *st, unsigned wait_ms, char *err, size_t errlen)
{
	uint64_t end = kw_now_mono_ns() + (uint64_t)wait_ms * 1000000ull;
	int r;

	if ((r = lv_open_start(st))) {
		snprintf(err, errlen, "cannot start a thread to connect to %s: %s", st->uri, strerror(-r));
		return -ECONNREFUSED;
	}
	for (;;) {
		r = lv_open_poll(st, err, errlen);
		if (r > 0)
			return 0;
		if (r < 0)
			return -ECONNREFUSED;
		if (kw_now_mono_ns() >= end) {
			snprintf(err, errlen, "%s does not answer (connecting in the background)", st->uri);
			return -EINPROGRESS;
		}
		usleep(2000);
	}
}

static void events_off(struct libvirt_state *st);
static void conn_setup(struct libvirt_state *st);

static void lv_lost(struct libvirt_state *st, const char *why)
{
	if (st->conn) {
		events_off(st);
		st->setup_conn = NULL;
		virConnectClose(st->conn);
		st->conn = NULL;
	}
	if (!st->down) {
		st->down = 1;
		st->down_since_ns = kw_now_mono_ns();
		st->outage_level = KW_LOG_WARN;
		kw_log_once(KW_LOG_WARN, "libvirt-outage", "libvirt: lost the connection to %s (%s); VMs are still "
			    "watched without libvirt data, reconnecting in the background", st->uri, why);
	}
	st->backoff_s = 1;
	st->next_try_ns = kw_now_mono_ns() + 1000000000ull;
}

/* Connected now?  Reconnects (with backoff) after an outage. */
static int lv_connected(struct libvirt_state *st)
{
	char err[512];
	uint64_t now;
	int r;

	if (st->conn && virConnectIsAlive(st->conn) == 1)
		return 1;
	if (st->conn)
		lv_lost(st, "connection closed");
	now = kw_now_mono_ns();
	if (!st->opener && now < st->next_try_ns)
		return 0;
	if (!st->opener && lv_open_start(st))
		return 0;
	r = lv_open_poll(st, err, sizeof(err));
	if (r == 0)
		return 0; /* still opening: this cycle goes on without libvirt */
	if (r < 0) {
		kw_debug("libvirt: %s", err);
		st->backoff_s = st->backoff_s ? st->backoff_s * 2 : 1;
		if (st->backoff_s > BACKOFF_MAX_S)
			st->backoff_s = BACKOFF_MAX_S;
		st->next_try_ns = now + st->backoff_s * 1000000000ull;
		return 0;
	}
	if (st->down) {
		kw_log(st->outage_level, "libvirt: reconnected to %s after %.1f s", st->uri,
			(double)(kw_now_mono_ns() - st->down_since_ns) / 1e9);
		kw_log_forget("libvirt-outage");
		st->down = 0;
	}
	st->backoff_s = 0;
	return 1;
}

/* A call failed: was it the connection?  Returns 1 if it was (now closed). */
static int lv_check_conn(struct libvirt_state *st)
{
	int code = last_error_code();

	if (!st->conn)
		return 1;
	if (virConnectIsAlive(st->conn) != 1 || code == VIR_ERR_SYSTEM_ERROR || code == VIR_ERR_RPC ||
	    code == VIR_ERR_NO_CONNECT || code == VIR_ERR_INVALID_CONN) {
		lv_lost(st, last_error());
		return 1;
	}
	return 0;
}

/* ----------------------------------------------------------- discovery */

static void free_records(struct libvirt_state *st)
{
	if (st->recs)
		virDomainStatsRecordListFree(st->recs);
	st->recs = NULL;
	st->nrecs = 0;
	st->ndoms = 0;
}

static pid_t read_pidfile(const struct libvirt_state *st, const char *name)
{
	char buf[64];
	long pid;

	if (!st->piddir[0] || strchr(name, '/'))
		return 0;
	if (kw_read_filef(buf, sizeof(buf), "%s/%s.pid", st->piddir, name) <= 0)
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	return kw_parse_int(buf, 1, INT32_MAX, &pid) ? 0 : (pid_t)pid;
}

/* Did procfs have to invent this name ("comm-pid")? */
static int fallback_name(const struct kw_vm *vm)
{
	char want[KW_NAME_MAX + 16];

	snprintf(want, sizeof(want), "%s-%d", vm->vmm, vm->pid);
	return !vm->name[0] || !strcmp(vm->name, want);
}

static int merge_domain(struct kw_collector *c, struct libvirt_state *st, virDomainStatsRecordPtr rec)
{
	char uuid[VIR_UUID_STRING_BUFLEN], key[64];
	const char *name = virDomainGetName(rec->dom);
	unsigned int id = virDomainGetID(rec->dom);
	struct kw_vm *vm = NULL;
	pid_t pid;

	if (!name || virDomainGetUUIDString(rec->dom, uuid) < 0)
		return 0;
	pid = read_pidfile(st, name);
	if (pid > 0)
		vm = kw_vmt_find_pid(&c->vms, pid);
	if (!vm)
		vm = kw_vmt_find_uuid(&c->vms, uuid);
	if (!vm) {
		vm = kw_vmt_find_name(&c->vms, name);
		if (vm && vm->uuid[0] && strcasecmp(vm->uuid, uuid))
			vm = NULL; /* same name, different VM */
	}
	if (!vm) {
		snprintf(key, sizeof(key), "uuid:%s", uuid);
		vm = kw_vmt_find_key(&c->vms, key);
		if (!vm) {
			vm = kw_vmt_add(&c->vms);
			if (!vm)
				return -ENOMEM;
			kw_strlcpy(vm->key, key, sizeof(vm->key));
			kw_strlcpy(vm->vmm, "libvirt", sizeof(vm->vmm));
			vm->first_seen_ns = kw_now_mono_ns();
		}
		/* Without procfs, the pidfile still names the local process. */
		if (pid > 0 && !kw_collector_has(c, KW_SRC_PROC))
			vm->pid = pid;
	}
	vm->seen = 1;
	vm->found |= KW_FOUND_LIBVIRT;
	vm->dom_id = id == (unsigned int)-1 ? -1 : (int)id;
	if (!vm->uuid[0])
		kw_strlcpy(vm->uuid, uuid, sizeof(vm->uuid));
	if (fallback_name(vm))
		kw_strlcpy(vm->name, name, sizeof(vm->name));
	if (kw_grow((void **)&st->doms, &st->domcap, st->ndoms, sizeof(*st->doms)))
		return -ENOMEM;
	kw_strlcpy(st->doms[st->ndoms].uuid, uuid, sizeof(st->doms[st->ndoms].uuid));
	st->doms[st->ndoms].rec = rec;
	st->ndoms++;
	return 0;
}

static int libvirt_discover(struct kw_collector *c, void *state)
{
	struct libvirt_state *st = state;
	size_t i;
	int n, r = 0;

	free_records(st);
	for (i = 0; i < c->vms.n; i++) {
		struct kw_vm *vm = &c->vms.vms[i];

		if (vm->found & KW_FOUND_LIBVIRT) {
			vm->found &= ~(unsigned)KW_FOUND_LIBVIRT;
			vm->dom_id = -1;
			vm->state[0] = '\0';
		}
	}
	if (!lv_connected(st))
		return 0;
	conn_setup(st);
	if (st->extra & (KW_LV_XML | KW_LV_METADATA))
		kw_vmcache_prune(&st->xml, &c->vms, NULL, NULL);
	n = virConnectGetAllDomainStats(st->conn, st->groups, &st->recs, st->flags);
	if (n < 0 && (st->flags & VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT) &&
	    last_error_code() == VIR_ERR_INVALID_ARG && virConnectIsAlive(st->conn) == 1) {
		/* a driver that does not know NOWAIT */
		st->flags &= ~(unsigned)VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;
		n = virConnectGetAllDomainStats(st->conn, st->groups, &st->recs, st->flags);
	}
	if (n < 0) {
		st->recs = NULL;
		if (!lv_check_conn(st))
			kw_log_once(KW_LOG_WARN, "libvirt-stats", "libvirt: failed to get domain stats from %s: %s",
				    st->uri, last_error());
		return 0;
	}
	st->nrecs = n;
	for (i = 0; i < (size_t)n && r == 0; i++)
		r = merge_domain(c, st, st->recs[i]);
	return r;
}

/* --------------------------------------------------------- per-VM data */

static virDomainStatsRecordPtr find_record(struct libvirt_state *st, const char *uuid)
{
	size_t i;

	for (i = 0; i < st->ndoms; i++)
		if (!strcasecmp(st->doms[i].uuid, uuid))
			return st->doms[i].rec;
	return NULL;
}

static int has_param(const virDomainStatsRecordPtr rec, const char *name)
{
	int i;

	for (i = 0; i < rec->nparams; i++)
		if (!strcmp(rec->params[i].field, name))
			return 1;
	return 0;
}

/* Drivers whose bulk stats lack the balloon/vcpu groups (e.g. test://):
 * virDomainGetInfo and virDomainMemoryStats instead. */
static int fallback_cpu(struct libvirt_state *st, struct kw_vm *vm, virDomainPtr dom);

static int fallback_info(struct libvirt_state *st, struct kw_vm *vm, virDomainPtr dom)
{
	virDomainMemoryStatStruct ms[VIR_DOMAIN_MEMORY_STAT_NR];
	virDomainInfo info;
	int n;

	if (st->info_unsupported || !st->conn)
		return 0;
	if (virDomainGetInfo(dom, &info) < 0) {
		if (last_error_code() == VIR_ERR_NO_SUPPORT)
			st->info_unsupported = 1;
		else
			lv_check_conn(st); /* or the domain vanished: nothing to add */
		return 0;
	}
	if (kw_ss_set_u64(&vm->stats, KW_M_DOM_MEM_MAX, NULL, (uint64_t)info.maxMem * 1024) ||
	    kw_ss_set_u64(&vm->stats, KW_M_DOM_MEM_CUR, NULL, (uint64_t)info.memory * 1024) ||
	    kw_ss_set_u64(&vm->stats, KW_M_DOM_VCPUS, NULL, info.nrVirtCpu) ||
	    kw_ss_set_u64(&vm->stats, KW_M_DOM_CPU_TIME, NULL, info.cpuTime) ||
	    kw_ss_put_u64(&vm->stats, KW_SRC_LIBVIRT, KW_M_VCPUS, NULL, info.nrVirtCpu))
		return -ENOMEM;
	if (vm->nthreads == 0)
		vm->nvcpus = info.nrVirtCpu;
	if (!st->cpustats_unsupported && fallback_cpu(st, vm, dom))
		return -ENOMEM;
	n = virDomainMemoryStats(dom, ms, VIR_DOMAIN_MEMORY_STAT_NR, 0);
	if (n < 0) {
		lv_check_conn(st);
		return 0;
	}
	return kw_libvirt_map_memstats(vm, ms, n);
}

/* The same drivers: user and system time (virDomainGetCPUStats, total). */
static int fallback_cpu(struct libvirt_state *st, struct kw_vm *vm, virDomainPtr dom)
{
	virTypedParameter params[8];
	int n, i;

	memset(params, 0, sizeof(params));
	n = virDomainGetCPUStats(dom, params, KW_ARRAY_SIZE(params), -1, 1, 0);
	if (n < 0) {
		if (last_error_code() == VIR_ERR_NO_SUPPORT)
			st->cpustats_unsupported = 1;
		return 0;
	}
	for (i = 0; i < n && i < (int)KW_ARRAY_SIZE(params); i++) {
		uint64_t v;

		if (param_u64(&params[i], &v))
			continue;
		if (!strcmp(params[i].field, VIR_DOMAIN_CPU_STATS_USERTIME) &&
		    (kw_ss_set_u64(&vm->stats, KW_M_DOM_CPU_USER, NULL, v) ||
		     kw_ss_put_u64(&vm->stats, KW_SRC_LIBVIRT, KW_M_CPU_USER, NULL, v)))
			break;
		if (!strcmp(params[i].field, VIR_DOMAIN_CPU_STATS_SYSTEMTIME) &&
		    (kw_ss_set_u64(&vm->stats, KW_M_DOM_CPU_SYS, NULL, v) ||
		     kw_ss_put_u64(&vm->stats, KW_SRC_LIBVIRT, KW_M_CPU_SYSTEM, NULL, v)))
			break;
	}
	virTypedParamsClear(params, n < (int)KW_ARRAY_SIZE(params) ? n : (int)KW_ARRAY_SIZE(params));
	return i < n ? -ENOMEM : 0;
}

/* And interface counters of the domain XML's interfaces (virDomainInterfaceStats). */
static int fallback_net(struct kw_vm *vm, virDomainPtr dom)
{
	static const struct { size_t off; int metric; } fields[] = {
		{ offsetof(virDomainInterfaceStatsStruct, rx_bytes), KW_M_NET_RX_BYTES },
		{ offsetof(virDomainInterfaceStatsStruct, tx_bytes), KW_M_NET_TX_BYTES },
		{ offsetof(virDomainInterfaceStatsStruct, rx_packets), KW_M_NET_RX_PKTS },
		{ offsetof(virDomainInterfaceStatsStruct, tx_packets), KW_M_NET_TX_PKTS },
		{ offsetof(virDomainInterfaceStatsStruct, rx_errs), KW_M_NET_RX_ERRS },
		{ offsetof(virDomainInterfaceStatsStruct, tx_errs), KW_M_NET_TX_ERRS },
		{ offsetof(virDomainInterfaceStatsStruct, rx_drop), KW_M_NET_RX_DROP },
		{ offsetof(virDomainInterfaceStatsStruct, tx_drop), KW_M_NET_TX_DROP },
	};
	int i;
	size_t f;

	for (i = 0; i < vm->nnetifs; i++) {
		virDomainInterfaceStatsStruct is;
		const char *name = vm->netifs[i].name;

		if (vm->netifs[i].number <= 0 || virDomainInterfaceStats(dom, name, &is, sizeof(is)) < 0)
			continue;
		for (f = 0; f < KW_ARRAY_SIZE(fields); f++) {
			long long v;

			memcpy(&v, (const char *)&is + fields[f].off, sizeof(v));
			if (v >= 0 && kw_ss_put_u64(&vm->stats, KW_SRC_LIBVIRT, fields[f].metric, name, (uint64_t)v))
				return -ENOMEM;
		}
	}
	return 0;
}

static int job_stats(struct libvirt_state *st, struct kw_vm *vm, virDomainPtr dom)
{
	virTypedParameterPtr params = NULL;
	int type = 0, n = 0, r;

	if (st->job_unsupported || !st->conn)
		return 0;
	if (virDomainGetJobStats(dom, &type, &params, &n,
				 (st->extra & KW_LV_JOB_COMPLETED) ? VIR_DOMAIN_JOB_STATS_COMPLETED : 0) < 0) {
		int code = last_error_code();

		if (code == VIR_ERR_NO_SUPPORT || (code == VIR_ERR_INVALID_ARG && (st->extra & KW_LV_JOB_COMPLETED))) {
			st->job_unsupported = 1;
			kw_debug("libvirt: %s has no job statistics: %s", st->uri, last_error());
		} else if (code != VIR_ERR_NO_DOMAIN && code != VIR_ERR_OPERATION_INVALID) {
			lv_check_conn(st);
		}
		return 0;
	}
	r = kw_libvirt_map_job(vm, type, params, n, !!(st->extra & KW_LV_JOB_PARAMS));
	virTypedParamsFree(params, n);
	return r;
}

/* ------------------------------------------------------------ extras */

/* libvirt's lifecycle event -> the state and reason virDomainGetState then
 * reports (collectd's virt plugin maps them the same way). */
int kw_libvirt_event_state(int event, int detail, int *reason)
{
	switch (event) {
	case VIR_DOMAIN_EVENT_STARTED:
		switch (detail) {
		case VIR_DOMAIN_EVENT_STARTED_BOOTED: *reason = VIR_DOMAIN_RUNNING_BOOTED; break;
		case VIR_DOMAIN_EVENT_STARTED_MIGRATED: *reason = VIR_DOMAIN_RUNNING_MIGRATED; break;
		case VIR_DOMAIN_EVENT_STARTED_RESTORED: *reason = VIR_DOMAIN_RUNNING_RESTORED; break;
		case VIR_DOMAIN_EVENT_STARTED_FROM_SNAPSHOT: *reason = VIR_DOMAIN_RUNNING_FROM_SNAPSHOT; break;
		case VIR_DOMAIN_EVENT_STARTED_WAKEUP: *reason = VIR_DOMAIN_RUNNING_WAKEUP; break;
		default: *reason = VIR_DOMAIN_RUNNING_UNKNOWN; break;
		}
		return VIR_DOMAIN_RUNNING;
	case VIR_DOMAIN_EVENT_SUSPENDED:
		switch (detail) {
		case VIR_DOMAIN_EVENT_SUSPENDED_PAUSED: *reason = VIR_DOMAIN_PAUSED_USER; break;
		case VIR_DOMAIN_EVENT_SUSPENDED_MIGRATED: *reason = VIR_DOMAIN_PAUSED_MIGRATION; break;
		case VIR_DOMAIN_EVENT_SUSPENDED_IOERROR: *reason = VIR_DOMAIN_PAUSED_IOERROR; break;
		case VIR_DOMAIN_EVENT_SUSPENDED_WATCHDOG: *reason = VIR_DOMAIN_PAUSED_WATCHDOG; break;
		case VIR_DOMAIN_EVENT_SUSPENDED_FROM_SNAPSHOT: *reason = VIR_DOMAIN_PAUSED_FROM_SNAPSHOT; break;
		case VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY: *reason = VIR_DOMAIN_PAUSED_POSTCOPY; break;
		case VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY_FAILED: *reason = VIR_DOMAIN_PAUSED_POSTCOPY_FAILED; break;
		default: *reason = VIR_DOMAIN_PAUSED_UNKNOWN; break;
		}
		return VIR_DOMAIN_PAUSED;
	case VIR_DOMAIN_EVENT_RESUMED:
		switch (detail) {
		case VIR_DOMAIN_EVENT_RESUMED_UNPAUSED: *reason = VIR_DOMAIN_RUNNING_UNPAUSED; break;
		case VIR_DOMAIN_EVENT_RESUMED_MIGRATED: *reason = VIR_DOMAIN_RUNNING_MIGRATED; break;
		case VIR_DOMAIN_EVENT_RESUMED_FROM_SNAPSHOT: *reason = VIR_DOMAIN_RUNNING_FROM_SNAPSHOT; break;
		case VIR_DOMAIN_EVENT_RESUMED_POSTCOPY: *reason = VIR_DOMAIN_RUNNING_POSTCOPY; break;
		default: *reason = VIR_DOMAIN_RUNNING_UNKNOWN; break;
		}
		return VIR_DOMAIN_RUNNING;
	case VIR_DOMAIN_EVENT_STOPPED:
		switch (detail) {
		case VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN: *reason = VIR_DOMAIN_SHUTOFF_SHUTDOWN; break;
		case VIR_DOMAIN_EVENT_STOPPED_DESTROYED: *reason = VIR_DOMAIN_SHUTOFF_DESTROYED; break;
		case VIR_DOMAIN_EVENT_STOPPED_CRASHED: *reason = VIR_DOMAIN_SHUTOFF_CRASHED; break;
		case VIR_DOMAIN_EVENT_STOPPED_MIGRATED: *reason = VIR_DOMAIN_SHUTOFF_MIGRATED; break;
		case VIR_DOMAIN_EVENT_STOPPED_SAVED: *reason = VIR_DOMAIN_SHUTOFF_SAVED; break;
		case VIR_DOMAIN_EVENT_STOPPED_FAILED: *reason = VIR_DOMAIN_SHUTOFF_FAILED; break;
		case VIR_DOMAIN_EVENT_STOPPED_FROM_SNAPSHOT: *reason = VIR_DOMAIN_SHUTOFF_FROM_SNAPSHOT; break;
		default: *reason = VIR_DOMAIN_SHUTOFF_UNKNOWN; break;
		}
		return VIR_DOMAIN_SHUTOFF;
	case VIR_DOMAIN_EVENT_SHUTDOWN:
		*reason = detail == VIR_DOMAIN_EVENT_SHUTDOWN_FINISHED || detail == VIR_DOMAIN_EVENT_SHUTDOWN_GUEST ||
					  detail == VIR_DOMAIN_EVENT_SHUTDOWN_HOST
				  ? VIR_DOMAIN_SHUTDOWN_USER
				  : VIR_DOMAIN_SHUTDOWN_UNKNOWN;
		return VIR_DOMAIN_SHUTDOWN;
	case VIR_DOMAIN_EVENT_PMSUSPENDED:
		*reason = detail == VIR_DOMAIN_EVENT_PMSUSPENDED_DISK ? VIR_DOMAIN_PMSUSPENDED_DISK_UNKNOWN
								       : VIR_DOMAIN_PMSUSPENDED_UNKNOWN;
		return VIR_DOMAIN_PMSUSPENDED;
	case VIR_DOMAIN_EVENT_CRASHED:
		*reason = detail == VIR_DOMAIN_EVENT_CRASHED_PANICKED ? VIR_DOMAIN_CRASHED_PANICKED
								       : VIR_DOMAIN_CRASHED_UNKNOWN;
		return VIR_DOMAIN_CRASHED;
	default:
		*reason = VIR_DOMAIN_NOSTATE_UNKNOWN;
		return VIR_DOMAIN_NOSTATE;
	}
}

static void evq_put(void *arg)
{
	struct lv_evq *q = arg;
	int last;

	pthread_mutex_lock(&q->mu);
	last = --q->refs == 0;
	pthread_mutex_unlock(&q->mu);
	if (last) {
		pthread_mutex_destroy(&q->mu);
		free(q);
	}
}

/* On libvirt's event-loop thread. */
static int lifecycle_cb(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *arg)
{
	struct lv_evq *q = arg;
	struct kw_dom_event e;
	const char *name = virDomainGetName(dom);

	(void)conn;
	memset(&e, 0, sizeof(e));
	kw_strlcpy(e.name, name ? name : "", sizeof(e.name));
	if (virDomainGetUUIDString(dom, e.uuid) < 0)
		e.uuid[0] = '\0';
	e.state = kw_libvirt_event_state(event, detail, &e.reason);
	e.time_ns = kw_now_real_ns();
	pthread_mutex_lock(&q->mu);
	if (q->n < KW_DOM_EVENTS_MAX)
		q->ev[q->n++] = e;
	else
		q->lost++;
	pthread_mutex_unlock(&q->mu);
	return 0;
}

static void events_off(struct libvirt_state *st)
{
	if (st->cb_id >= 0 && st->setup_conn)
		virConnectDomainEventDeregisterAny(st->setup_conn, st->cb_id);
	st->cb_id = -1;
}

/* A new connection: what the extras need of it. */
static void conn_setup(struct libvirt_state *st)
{
	if (st->setup_conn == st->conn)
		return;
	st->setup_conn = st->conn;
	st->cb_id = -1;
	st->node_ok = virNodeGetInfo(st->conn, &st->node) == 0;
	if (!(st->extra & KW_LV_EVENTS) || !st->evq)
		return;
	if (!event_loop_ok) {
		kw_log_once(KW_LOG_WARN, "libvirt-events", "libvirt: no event loop, domain state changes are not "
			    "reported as they happen");
		return;
	}
	pthread_mutex_lock(&st->evq->mu);
	st->evq->refs++;
	pthread_mutex_unlock(&st->evq->mu);
	st->cb_id = virConnectDomainEventRegisterAny(st->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
						     VIR_DOMAIN_EVENT_CALLBACK(lifecycle_cb), st->evq, evq_put);
	if (st->cb_id < 0) {
		evq_put(st->evq);
		kw_log_once(KW_LOG_WARN, "libvirt-events", "libvirt: cannot watch domain lifecycle events on %s: %s",
			    st->uri, last_error());
	}
}

static size_t libvirt_take_events(struct kw_collector *c, void *state, struct kw_dom_event *out, size_t max)
{
	struct libvirt_state *st = state;
	size_t n;
	uint64_t lost;

	(void)c;
	if (!st || !st->evq)
		return 0;
	pthread_mutex_lock(&st->evq->mu);
	n = st->evq->n < max ? st->evq->n : max;
	memcpy(out, st->evq->ev, n * sizeof(*out));
	memmove(st->evq->ev, st->evq->ev + n, (st->evq->n - n) * sizeof(*out));
	st->evq->n -= n;
	lost = st->evq->lost;
	st->evq->lost = 0;
	pthread_mutex_unlock(&st->evq->mu);
	if (lost)
		kw_warn("libvirt: %llu domain events lost (more than %d between two cycles)",
			(unsigned long long)lost, KW_DOM_EVENTS_MAX);
	return n;
}

/* Interface MAC addresses and numbers, persistence and metadata, from the
 * domain XML read at most every xml_refresh_s. */
static int xml_facts(struct libvirt_state *st, struct kw_vm *vm, virDomainPtr dom)
{
	struct lv_xml *x;
	int created, i;
	uint64_t now = kw_now_mono_ns();

	if (!(x = kw_vmcache_get(&st->xml, vm->key, &created)))
		return -ENOMEM;
	if (created || (x->next_ns && now >= x->next_ns)) {
		x->next_ns = st->xml_refresh_s ? now + st->xml_refresh_s * 1000000000ull : 0;
		if (st->extra & KW_LV_XML) {
			char *xml = virDomainGetXMLDesc(dom, 0);

			if (xml) {
				int n = kw_libvirt_xml_ifaces(xml, x->ifaces, KW_LV_IFACES_MAX);

				x->nifaces = n < 0 ? 0 : n;
				free(xml);
			} else if (lv_check_conn(st)) {
				x->next_ns = 1; /* read it again once connected */
			}
			x->persistent = virDomainIsPersistent(dom);
		}
		if ((st->extra & KW_LV_METADATA) && !st->meta_unsupported) {
			char *meta = virDomainGetMetadata(dom, VIR_DOMAIN_METADATA_ELEMENT,
							  st->meta_ns[0] ? st->meta_ns : KW_LV_META_NS,
							  VIR_DOMAIN_AFFECT_CURRENT);

			x->meta[0] = '\0';
			if (meta) {
				if (kw_libvirt_meta_value(meta, st->meta_xpath, x->meta, sizeof(x->meta)) == -EINVAL)
					kw_log_once(KW_LOG_WARN, "libvirt-meta", "libvirt: metadata of '%s' or the "
						    "XPath \"%s\" does not parse", vm->name, st->meta_xpath);
				free(meta);
			} else if (last_error_code() == VIR_ERR_NO_SUPPORT) {
				st->meta_unsupported = 1;
			}
		}
	}
	for (i = 0; i < x->nifaces; i++) {
		struct kw_netif *f;

		if (kw_vm_add_netif(vm, x->ifaces[i].name) == -ENOMEM)
			return -ENOMEM;
		if ((f = kw_vm_netif(vm, x->ifaces[i].name))) {
			kw_strlcpy(f->mac, x->ifaces[i].mac, sizeof(f->mac));
			f->number = x->ifaces[i].number;
		}
	}
	vm->lv_persistent = x->persistent;
	kw_strlcpy(vm->lv_meta, x->meta, sizeof(vm->lv_meta));
	return 0;
}

/* vCPU affinity maps (and vCPU times where the bulk stats have none). */
static int vcpu_info(struct libvirt_state *st, struct kw_vm *vm, virDomainPtr dom)
{
	int nv = (int)(vm->nvcpus > 0 ? vm->nvcpus : 0), maxcpus, maplen, n, i, cpu, r = 0;
	virVcpuInfoPtr info;
	unsigned char *maps;
	double d;

	if (st->vcpus_unsupported || !st->node_ok)
		return 0;
	if (kw_ss_value(&vm->stats, KW_M_DOM_VCPUS, NULL, &d) == 0)
		nv = (int)d;
	maxcpus = (int)VIR_NODEINFO_MAXCPUS(st->node);
	if (nv <= 0 || nv > 4096 || maxcpus <= 0 || maxcpus > 8192)
		return 0;
	maplen = VIR_CPU_MAPLEN(maxcpus);
	info = calloc((size_t)nv, sizeof(*info));
	maps = calloc((size_t)nv, (size_t)maplen);
	if (!info || !maps) {
		free(info);
		free(maps);
		return -ENOMEM;
	}
	n = virDomainGetVcpus(dom, info, nv, maps, maplen);
	if (n < 0) {
		if (last_error_code() == VIR_ERR_NO_SUPPORT) {
			st->vcpus_unsupported = 1;
			kw_log_once(KW_LOG_WARN, "libvirt-vcpus", "libvirt: %s gives no vCPU affinity: %s", st->uri,
				    last_error());
		}
		n = 0;
	}
	for (i = 0; i < n && !r; i++) {
		char inst[KW_INST_MAX];

		snprintf(inst, sizeof(inst), "%d", (int)info[i].number);
		if (!kw_ss_get(&vm->stats, KW_M_DOM_VCPU_TIME, inst))
			r = kw_ss_set_u64(&vm->stats, KW_M_DOM_VCPU_TIME, inst, info[i].cpuTime);
		for (cpu = 0; cpu < maxcpus && !r && (st->extra & KW_LV_VCPUPIN); cpu++) {
			snprintf(inst, sizeof(inst), "vcpu_%d-cpu_%d", i, cpu);
			r = kw_ss_set_u64(&vm->stats, KW_M_DOM_VCPU_PIN, inst,
					  VIR_CPU_USABLE(maps, maplen, i, cpu) ? 1 : 0);
		}
	}
	free(info);
	free(maps);
	return r;
}

static int disk_errors(struct libvirt_state *st, struct kw_vm *vm, virDomainPtr dom)
{
	virDomainDiskError errs[KW_DISK_MAX];
	int n, i, r = 0;

	if (st->diskerr_unsupported)
		return 0;
	n = virDomainGetDiskErrors(dom, errs, KW_DISK_MAX, 0);
	if (n < 0) {
		if (last_error_code() == VIR_ERR_NO_SUPPORT)
			st->diskerr_unsupported = 1;
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (!r && errs[i].disk && strlen(errs[i].disk) < KW_DISK_MAX)
			r = kw_ss_set_u64(&vm->stats, KW_M_DISK_ERROR_CODE, errs[i].disk,
					  errs[i].error < 0 ? 0 : (uint64_t)errs[i].error);
		free(errs[i].disk);
	}
	return r;
}

static int libvirt_collect_host(struct kw_collector *c, void *state, struct kw_sampleset *host)
{
	struct libvirt_state *st = state;

	(void)c;
	if (!st || !st->node_ok || !st->conn)
		return 0;
	if (kw_ss_set_u64(host, KW_M_H_LV_CPUS, NULL, st->node.cpus) ||
	    kw_ss_set_u64(host, KW_M_H_LV_MAXCPUS, NULL, VIR_NODEINFO_MAXCPUS(st->node)))
		return -ENOMEM;
	return 0;
}

static int libvirt_collect_vm(struct kw_collector *c, void *state, struct kw_vm *vm)
{
	struct libvirt_state *st = state;
	virDomainStatsRecordPtr rec;
	int r;

	if (!(vm->found & KW_FOUND_LIBVIRT) || !(rec = find_record(st, vm->uuid)))
		return 0;
	r = kw_libvirt_map_stats(vm, rec->params, rec->nparams);
	if (r)
		return r;
	if (!virDomainIsActive(rec->dom))
		return 0; /* an inactive domain (KW_LV_INACTIVE): its state only */
	if (!has_param(rec, "balloon.current") && (r = fallback_info(st, vm, rec->dom)))
		return r;
	if ((st->extra & (KW_LV_XML | KW_LV_METADATA)) && (r = xml_facts(st, vm, rec->dom)))
		return r;
	if ((st->extra & KW_LV_XML) && !has_param(rec, "net.count") && (r = fallback_net(vm, rec->dom)))
		return r;
	if (!strcmp(vm->state, "running")) {
		if ((st->extra & KW_LV_VCPUPIN || !has_param(rec, "vcpu.0.time")) && (r = vcpu_info(st, vm, rec->dom)))
			return r;
		if ((st->extra & KW_LV_DISK_ERR) && (r = disk_errors(st, vm, rec->dom)))
			return r;
	}
	if (!strcmp(vm->state, "running") || !strcmp(vm->state, "paused"))
		r = job_stats(st, vm, rec->dom);
	return r;
}

/* ------------------------------------------------------------ lifecycle */

/* Where libvirt's QEMU driver keeps NAME.pid for a local system URI. */
static void pidfile_dir(const struct kw_collector *c, const char *uri, char *out, size_t len)
{
	const char *sock;

	out[0] = '\0';
	if (strcmp(c->cfg.procfs, "/proc"))
		return; /* another host's proc: its pidfiles are not here */
	if (!kw_startswith(uri, "qemu:///system") && !kw_startswith(uri, "qemu+unix:///system"))
		return;
	sock = strstr(uri, "socket=");
	if (sock) {
		/* a daemon with its own run dir: <rundir>/libvirt-sock -> <rundir>/qemu */
		size_t n = strcspn(sock + 7, "&");
		const char *slash;

		slash = memrchr(sock + 7, '/', n);
		if (slash && (size_t)(slash - (sock + 7)) + 6 < len)
			snprintf(out, len, "%.*s/qemu", (int)(slash - (sock + 7)), sock + 7);
		return;
	}
	kw_strlcpy(out, "/run/libvirt/qemu", len);
}

static int libvirt_init(struct kw_collector *c, void **state, char *why, size_t whylen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct libvirt_state *st;

	int r;

	pthread_once(&once, libvirt_global_init);
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	kw_strlcpy(st->uri, c->cfg.libvirt_uri[0] ? c->cfg.libvirt_uri : "qemu:///system", sizeof(st->uri));
	st->flags = VIR_CONNECT_GET_ALL_DOMAINS_STATS_ACTIVE | VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT;
	st->groups = STATS_GROUPS;
	st->extra = c->cfg.libvirt_extra;
	st->xml_refresh_s = c->cfg.libvirt_xml_refresh_s;
	st->cb_id = -1;
	st->xml = (struct kw_vmcache)KW_VMCACHE_INIT(struct lv_xml);
	kw_strlcpy(st->meta_ns, c->cfg.libvirt_meta_ns, sizeof(st->meta_ns));
	kw_strlcpy(st->meta_xpath, c->cfg.libvirt_meta_xpath, sizeof(st->meta_xpath));
	if (st->extra & KW_LV_INACTIVE)
		st->flags |= VIR_CONNECT_GET_ALL_DOMAINS_STATS_INACTIVE;
	if (st->extra & KW_LV_PERF)
		st->groups |= VIR_DOMAIN_STATS_PERF;
	if (st->extra & KW_LV_EVENTS) {
		if (!(st->evq = calloc(1, sizeof(*st->evq)))) {
			free(st);
			snprintf(why, whylen, "out of memory");
			return -ENOMEM;
		}
		pthread_mutex_init(&st->evq->mu, NULL);
		st->evq->refs = 1;
	}
	pidfile_dir(c, st->uri, st->piddir, sizeof(st->piddir));
	if ((r = lv_open(st, LV_START_WAIT_MS, why, whylen)) == -EINPROGRESS) {
		/* a daemon that accepts and does not answer: keep watching without
		 * it, the connection is taken when (if) it comes */
		st->outage_level = KW_LOG_WARN;
		kw_log_once(st->outage_level, "libvirt-outage", "libvirt: %s", why);
		st->down = 1;
		st->down_since_ns = kw_now_mono_ns();
	} else if (r < 0 && c->cfg.libvirt_retry) {
		/* A daemon started before libvirtd: keep trying with backoff;
		 * lv_connected() says when it is back. */
		/* quiet (info) for the default URI: most hosts without libvirt never start it */
		st->outage_level = c->cfg.libvirt_uri[0] ? KW_LOG_WARN : KW_LOG_INFO;
		kw_log_once(st->outage_level, "libvirt-outage", "libvirt: %s; retrying in the background", why);
		st->down = 1;
		st->down_since_ns = kw_now_mono_ns();
		st->backoff_s = 1;
		st->next_try_ns = st->down_since_ns + 1000000000ull;
	} else if (!st->conn) {
		free(st);
		/* No libvirtd at the default URI is normal (plain QEMU, Proxmox):
		 * idle quietly; an explicitly configured URI that fails is a warning. */
		return c->cfg.libvirt_uri[0] ? -ECONNREFUSED : -ECANCELED;
	}
	*state = st;
	return 0;
}

static int libvirt_connected(const struct kw_collector *c, const void *state)
{
	const struct libvirt_state *st = state;

	return st && st->conn;
}

static void libvirt_fini(struct kw_collector *c, void *state)
{
	struct libvirt_state *st = state;

	if (!st)
		return;
	free_records(st);
	free(st->doms);
	if (st->opener)
		opener_put(st->opener); /* a hung open finishes (and closes) on its own */
	if (st->conn) {
		if (st->setup_conn == st->conn)
			events_off(st);
		virConnectClose(st->conn);
	}
	if (st->evq)
		evq_put(st->evq);
	kw_vmcache_free(&st->xml, NULL);
	free(st);
}

const struct kw_source_ops kw_source_libvirt = {
	.id = KW_SRC_LIBVIRT,
	.name = "libvirt",
	.init = libvirt_init,
	.discover = libvirt_discover,
	.collect_host = libvirt_collect_host,
	.collect_vm = libvirt_collect_vm,
	.fini = libvirt_fini,
	.connected = libvirt_connected,
	.take_events = libvirt_take_events,
};
