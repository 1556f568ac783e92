// SPDX-License-Identifier: GPL-2.0
/* kw_src_qmp.c - the QMP source: per-disk I/O, capacity, balloon and KVM stats
 * straight from QEMU's monitor, for VMs no libvirt manages.
 *
 * Every monitor is asked at once, one session thread per VM, within one
 * budget per cycle (KW_QMP_CYCLE_MS); a monitor that misses it is backed off.
 * The greeting must come within KW_QMP_GREETING_MS (a monitor busy with
 * another client is skipped this cycle, said at debug level).  A malformed
 * reply ends that VM's session only.  VMs libvirt manages are left alone:
 * libvirtd owns their monitor.  The client itself is kvm/kw_qmp.c. */
#include "core/kw_collector.h"
#include "kvm/kw_kstats.h"
#include "kvm/kw_qmp.h"
#include "util/kw_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ source */

enum qcmd { Q_STATUS, Q_BLOCK, Q_BLOCKSTATS, Q_BALLOON, Q_MEMSIZE, Q_SCHEMAS, Q_CPUS, Q_STATS, Q__N };
static const char *const qcmd_name[Q__N] = { "query-status", "query-block", "query-blockstats", "query-balloon",
					     "query-memory-size-summary", "query-stats-schemas", "query-cpus-fast",
					     "query-stats" };

enum { KS_COUNTER, KS_INSTANT, KS_PEAK };

struct qstat_def {
	char name[48];
	uint8_t vcpu;   /* target vcpu (1) or vm (0) */
	uint8_t kind;   /* KS_* */
};

struct qmp_vm {
	char key[64];
	unsigned unsupported;        /* 1 << enum qcmd: CommandNotFound */
	int have_schema;
	struct qstat_def *defs;      /* sorted by (vcpu, name) */
	size_t ndefs, defcap;
	/* this cycle's session, on a thread of its own (all VMs at once) */
	pthread_t th;
	int running;
	struct kw_vm scratch;        /* what the session found (identity copied in) */
	char path[KW_QMP_PATH_MAX];
	const char *procfs;
	uint64_t deadline_ns;
	int result;                  /* KW_QMP_* */
	char err[256];
	unsigned skip, skip_left;    /* backoff (cycles) after a monitor missed the budget */
};

struct qmp_state {
	struct kw_vmcache vms;        /* struct qmp_vm */
};

struct qcpu {
	char qom[128];
	int index;
};

static int shape_error(struct kw_qmp *q, enum qcmd c, const char *what)
{
	snprintf(q->err, sizeof(q->err), "%s: unexpected reply (%s)", qcmd_name[c], what);
	return KW_QMP_PROTO;
}

/* Run a command unless this QEMU lacks it. KW_QMP_ERROR: skip the query. */
static int run(struct kw_qmp *q, struct qmp_vm *v, const struct kw_vm *vm, enum qcmd c, const char *args)
{
	int r;

	if (v->unsupported & (1u << c))
		return KW_QMP_ERROR;
	r = kw_qmp_cmd(q, qcmd_name[c], args);
	if (r == KW_QMP_ERROR) {
		if (!strcmp(q->eclass, "CommandNotFound"))
			v->unsupported |= 1u << c;
		kw_debug("qmp: VM %s (pid %d): %s: skipped", vm->name, vm->pid, q->err);
	}
	return r;
}

/* What one monitor may return: QEMU's own limits are far above what a VM
 * has (a disk per PCI slot, ~60 KVM stats per target, KVM's vCPU limit). */
#define QMP_MAX_DISKS 64
#define QMP_MAX_DEFS  512   /* KVM stat definitions (vm + vcpu) */
#define QMP_MAX_CPUS  1024
#define QMP_MAX_ROWS  32768 /* KVM stat rows set from one session */

static const char *const cap_what[] = { "disks", "KVM stat definitions", "vCPUs", "KVM stat values" };

/* Said once per VM and kind (what: one of cap_what): the monitor returned
 * more than we take. */
static void capped(const struct kw_vm *vm, const char *what, unsigned limit)
{
	char key[160];

	snprintf(key, sizeof(key), "qmp-cap:%s:%s", what, vm->key);
	kw_log_once(KW_LOG_WARN, key, "qmp: VM %s (pid %d): the monitor returned more than %u %s: the rest are "
		    "ignored", vm->name, vm->pid, limit, what);
}

/* Block device names become instances: QEMU ids are [A-Za-z0-9._-]. */
static int good_name(const char *s)
{
	if (!*s || strlen(s) >= KW_DISK_MAX)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '.' || *s == '_' || *s == '-'))
			return 0;
	return 1;
}

/* The -drive id ("device"), else the -device id from the qdev path
 * (/machine/peripheral/ID/...), else the block node name.  nodeobj holds
 * "node-name" (query-block: "inserted", query-blockstats: the entry). */
static int disk_name(const struct kw_json *j, int e, int nodeobj, char *out, size_t len)
{
	char qdev[256];

	if (kw_json_strcpy(j, kw_json_get(j, e, "device"), out, len) > 0 && good_name(out))
		return 0;
	if (kw_json_strcpy(j, kw_json_get(j, e, "qdev"), qdev, sizeof(qdev)) > 0 &&
	    kw_startswith(qdev, "/machine/peripheral/")) {
		const char *id = qdev + strlen("/machine/peripheral/");
		size_t n = strcspn(id, "/");

		if (n < len) {
			memcpy(out, id, n);
			out[n] = '\0';
			if (good_name(out))
				return 0;
		}
	}
	if (kw_json_strcpy(j, kw_json_get(j, nodeobj, "node-name"), out, len) > 0 && good_name(out))
		return 0;
	return -1;
}

struct media {
	char (*names)[KW_DISK_MAX];
	size_t n, cap;
	int known;                   /* query-block answered */
};

static int media_has(const struct media *m, const char *name)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		if (!strcmp(m->names[i], name))
			return 1;
	return 0;
}

static int map_block(struct kw_qmp *q, struct kw_vm *vm, struct media *m)
{
	const struct kw_json *j = &q->j;
	int e, k, n;

	if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
		return shape_error(q, Q_BLOCK, "return is not an array");
	m->known = 1;
	n = (int)j->t[q->ret].size;
	for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
		char name[KW_DISK_MAX];
		int ins = kw_json_get_type(j, e, "inserted", KW_JSON_OBJECT), img;
		uint64_t v;

		if (ins < 0 || disk_name(j, e, ins, name, sizeof(name)))
			continue; /* no medium (an empty CD-ROM drive) */
		if (media_has(m, name))
			continue;
		if (m->n >= QMP_MAX_DISKS) {
			capped(vm, "disks", QMP_MAX_DISKS);
			break;
		}
		if (kw_grow((void **)&m->names, &m->cap, m->n, sizeof(*m->names)))
			return KW_QMP_NOMEM;
		kw_strlcpy(m->names[m->n++], name, KW_DISK_MAX);
		if (kw_vm_add_disk(vm, name) == -ENOMEM)
			return KW_QMP_NOMEM;
		img = kw_json_get_type(j, ins, "image", KW_JSON_OBJECT);
		if (!kw_json_u64(j, kw_json_get(j, img, "virtual-size"), &v) &&
		    kw_ss_put_u64(&vm->stats, KW_SRC_QMP, KW_M_DISK_CAPACITY, name, v))
			return KW_QMP_NOMEM;
		if (!kw_json_u64(j, kw_json_get(j, img, "actual-size"), &v) &&
		    kw_ss_put_u64(&vm->stats, KW_SRC_QMP, KW_M_DISK_PHYSICAL, name, v))
			return KW_QMP_NOMEM;
	}
	return KW_QMP_OK;
}

static const struct {
	const char *field;
	int metric;
} blockstats_map[] = {
	{ "rd_bytes", KW_M_DISK_RD_BYTES },
	{ "wr_bytes", KW_M_DISK_WR_BYTES },
	{ "rd_operations", KW_M_DISK_RD_REQS },
	{ "wr_operations", KW_M_DISK_WR_REQS },
	{ "flush_operations", KW_M_DISK_FL_REQS },
	{ "rd_total_time_ns", KW_M_DISK_RD_TIME },
	{ "wr_total_time_ns", KW_M_DISK_WR_TIME },
	{ "flush_total_time_ns", KW_M_DISK_FL_TIME },
	{ "wr_highest_offset", KW_M_DISK_ALLOC },
	{ "unmap_operations", KW_M_DISK_UNMAP_REQS },
	{ "unmap_bytes", KW_M_DISK_UNMAP_BYTES },
	{ "unmap_total_time_ns", KW_M_DISK_UNMAP_TIME },
	{ "failed_rd_operations", KW_M_DISK_RD_FAILED },
	{ "failed_wr_operations", KW_M_DISK_WR_FAILED },
	{ "failed_flush_operations", KW_M_DISK_FL_FAILED },
	{ "invalid_rd_operations", KW_M_DISK_RD_INVALID },
	{ "invalid_wr_operations", KW_M_DISK_WR_INVALID },
	{ "invalid_flush_operations", KW_M_DISK_FL_INVALID },
	{ "idle_time_ns", KW_M_DISK_IDLE },
};

static int map_blockstats(struct kw_qmp *q, struct kw_vm *vm, const struct media *m)
{
	const struct kw_json *j = &q->j;
	int e, k, n, ndisks = 0;
	size_t f;

	if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
		return shape_error(q, Q_BLOCKSTATS, "return is not an array");
	n = (int)j->t[q->ret].size;
	for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
		int st = kw_json_get_type(j, e, "stats", KW_JSON_OBJECT);
		char name[KW_DISK_MAX];

		if (st < 0 || disk_name(j, e, e, name, sizeof(name)))
			continue;
		if (m->known && !media_has(m, name))
			continue; /* no medium */
		if (++ndisks > QMP_MAX_DISKS) {
			capped(vm, "disks", QMP_MAX_DISKS);
			break;
		}
		if (kw_vm_add_disk(vm, name) == -ENOMEM)
			return KW_QMP_NOMEM;
		for (f = 0; f < KW_ARRAY_SIZE(blockstats_map); f++) {
			uint64_t v;

			if (!kw_json_u64(j, kw_json_get(j, st, blockstats_map[f].field), &v) &&
			    kw_ss_put_u64(&vm->stats, KW_SRC_QMP, blockstats_map[f].metric, name, v))
				return KW_QMP_NOMEM;
		}
	}
	return KW_QMP_OK;
}

/* ----------------------------------------------------- KVM statistics */

static int def_cmp(const void *pa, const void *pb)
{
	const struct qstat_def *a = pa, *b = pb;

	if (a->vcpu != b->vcpu)
		return a->vcpu < b->vcpu ? -1 : 1;
	return strcmp(a->name, b->name);
}

static const struct qstat_def *find_def(const struct qmp_vm *v, int vcpu, const char *name)
{
	struct qstat_def key;

	memset(&key, 0, sizeof(key));
	key.vcpu = (uint8_t)vcpu;
	kw_strlcpy(key.name, name, sizeof(key.name));
	return v->ndefs ? bsearch(&key, v->defs, v->ndefs, sizeof(*v->defs), def_cmp) : NULL;
}

/* query-stats-schemas: which KVM stats are counters, instant values or peaks. */
static int map_schema(struct kw_qmp *q, struct qmp_vm *v, const struct kw_vm *vm)
{
	const struct kw_json *j = &q->j;
	int e, k, n;

	if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
		return shape_error(q, Q_SCHEMAS, "return is not an array");
	v->ndefs = 0;
	n = (int)j->t[q->ret].size;
	for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
		int tgt = kw_json_get(j, e, "target"), st = kw_json_get_type(j, e, "stats", KW_JSON_ARRAY), s, i, ns;
		int vcpu;

		if (!kw_json_streq(j, kw_json_get(j, e, "provider"), "kvm") || st < 0)
			continue;
		if (kw_json_streq(j, tgt, "vcpu"))
			vcpu = 1;
		else if (kw_json_streq(j, tgt, "vm"))
			vcpu = 0;
		else
			continue;
		ns = (int)j->t[st].size;
		for (i = 0, s = kw_json_first(j, st); i < ns; i++, s = kw_json_next(j, s)) {
			int type = kw_json_get(j, s, "type");
			struct qstat_def d;

			memset(&d, 0, sizeof(d));
			if (kw_json_strcpy(j, kw_json_get(j, s, "name"), d.name, sizeof(d.name)) <= 0 ||
			    !kw_kstats_name_ok(d.name))
				continue;
			if (kw_json_streq(j, type, "cumulative") || kw_json_streq(j, type, "linear-histogram") ||
			    kw_json_streq(j, type, "log2-histogram"))
				d.kind = KS_COUNTER; /* histograms: events = sum of the buckets */
			else if (kw_json_streq(j, type, "instant"))
				d.kind = KS_INSTANT;
			else if (kw_json_streq(j, type, "peak"))
				d.kind = KS_PEAK;
			else
				continue;
			d.vcpu = (uint8_t)vcpu;
			if (v->ndefs >= QMP_MAX_DEFS) {
				capped(vm, "KVM stat definitions", QMP_MAX_DEFS);
				goto done;
			}
			if (kw_grow((void **)&v->defs, &v->defcap, v->ndefs, sizeof(*v->defs)))
				return KW_QMP_NOMEM;
			v->defs[v->ndefs++] = d;
		}
	}
done:
	if (v->ndefs > 1)
		qsort(v->defs, v->ndefs, sizeof(*v->defs), def_cmp);
	v->have_schema = 1;
	return KW_QMP_OK;
}

/* A stat's value: a number, a boolean, or a histogram (summed). */
static int stat_value(const struct kw_json *j, int val, uint64_t *out)
{
	int b, e, k, n;

	if (!kw_json_u64(j, val, out))
		return 0;
	if (!kw_json_bool(j, val, &b)) {
		*out = (uint64_t)b;
		return 0;
	}
	if (kw_json_type(j, val) != KW_JSON_ARRAY)
		return -1;
	*out = 0;
	n = (int)j->t[val].size;
	for (k = 0, e = kw_json_first(j, val); k < n; k++, e = kw_json_next(j, e)) {
		uint64_t x;

		if (kw_json_u64(j, e, &x))
			return -1;
		*out += x;
	}
	return 0;
}

/* The rows of metrics_kvmstat.def, as the kvmstat source fills them. */
static int put_stat(struct kw_vm *vm, int vcpu, const struct qstat_def *d, uint64_t v)
{
	const struct kw_sample *s;
	char inst[KW_INST_MAX];

	if (vcpu < 0)
		return kw_ss_set_u64(&vm->stats, d->kind == KS_COUNTER ? KW_M_KVM_VM : KW_M_KVM_VM_GAUGE, d->name, v);
	switch (d->kind) {
	case KS_INSTANT:
		return kw_ss_add_u64(&vm->stats, KW_M_KVM_VCPU_GAUGE, d->name, v);
	case KS_PEAK:
		s = kw_ss_get(&vm->stats, KW_M_KVM_VCPU_GAUGE, d->name);
		return s && s->v.u >= v ? 0 : kw_ss_set_u64(&vm->stats, KW_M_KVM_VCPU_GAUGE, d->name, v);
	default:
		snprintf(inst, sizeof(inst), "%d.%s", vcpu, d->name);
		if (kw_ss_set_u64(&vm->stats, KW_M_KVM_VCPU_EACH, inst, v))
			return -ENOMEM;
		return kw_ss_add_u64(&vm->stats, KW_M_KVM_VCPU, d->name, v);
	}
}

static int map_stats(struct kw_qmp *q, const struct qmp_vm *v, struct kw_vm *vm, const struct qcpu *cpus,
		     size_t ncpus, int vcpu_target, unsigned *rows)
{
	const struct kw_json *j = &q->j;
	int e, k, n;

	if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
		return shape_error(q, Q_STATS, "return is not an array");
	n = (int)j->t[q->ret].size;
	for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
		int st = kw_json_get_type(j, e, "stats", KW_JSON_ARRAY), s, i, ns, vcpu = -1;
		char qom[128];

		if (!kw_json_streq(j, kw_json_get(j, e, "provider"), "kvm") || st < 0)
			continue;
		if (vcpu_target) {
			size_t c;

			if (kw_json_strcpy(j, kw_json_get(j, e, "qom-path"), qom, sizeof(qom)) <= 0)
				continue;
			for (c = 0; c < ncpus && vcpu < 0; c++)
				if (!strcmp(cpus[c].qom, qom))
					vcpu = cpus[c].index;
			if (vcpu < 0)
				continue; /* a vCPU added since query-cpus-fast */
		}
		ns = (int)j->t[st].size;
		for (i = 0, s = kw_json_first(j, st); i < ns; i++, s = kw_json_next(j, s)) {
			const struct qstat_def *d;
			char name[48];
			uint64_t val;

			if (kw_json_strcpy(j, kw_json_get(j, s, "name"), name, sizeof(name)) <= 0 ||
			    !(d = find_def(v, vcpu_target, name)) || stat_value(j, kw_json_get(j, s, "value"), &val))
				continue;
			if (++*rows > QMP_MAX_ROWS) {
				capped(vm, "KVM stat values", QMP_MAX_ROWS);
				return KW_QMP_OK;
			}
			if (put_stat(vm, vcpu, d, val))
				return KW_QMP_NOMEM;
		}
	}
	return KW_QMP_OK;
}

static int has_kvm_rows(const struct kw_vm *vm)
{
	size_t i;

	for (i = 0; i < vm->stats.n; i++) {
		int m = vm->stats.s[i].metric;

		if (m == KW_M_KVM_VCPU || m == KW_M_KVM_VM || m == KW_M_KVM_VCPU_GAUGE || m == KW_M_KVM_VM_GAUGE ||
		    m == KW_M_KVM_VCPU_EACH)
			return 1;
	}
	return 0;
}

/* query-stats (QEMU >= 7.1): QEMU holds the KVM stats fds that KVM refuses
 * to other processes; only when the kvmstat source read nothing. */
static int kvm_stats(struct kw_qmp *q, struct qmp_vm *v, struct kw_vm *vm)
{
	struct qcpu *cpus = NULL;
	size_t ncpus = 0, cap = 0;
	unsigned rows = 0;
	int r, e, k, n;

	if (!v->have_schema) {
		r = run(q, v, vm, Q_SCHEMAS, NULL);
		if (r == KW_QMP_OK)
			r = map_schema(q, v, vm);
		if (r)
			return r;
	}
	if (!v->ndefs)
		return KW_QMP_OK; /* no KVM provider (TCG) */
	r = run(q, v, vm, Q_CPUS, NULL);
	if (r == KW_QMP_OK) {
		const struct kw_json *j = &q->j;

		if (kw_json_type(j, q->ret) != KW_JSON_ARRAY)
			return shape_error(q, Q_CPUS, "return is not an array");
		n = (int)j->t[q->ret].size;
		for (k = 0, e = kw_json_first(j, q->ret); k < n; k++, e = kw_json_next(j, e)) {
			int64_t idx;

			if (kw_json_i64(j, kw_json_get(j, e, "cpu-index"), &idx) || idx < 0 || idx > 65535)
				continue;
			if (ncpus >= QMP_MAX_CPUS) {
				capped(vm, "vCPUs", QMP_MAX_CPUS);
				break;
			}
			if (kw_grow((void **)&cpus, &cap, ncpus, sizeof(*cpus))) {
				free(cpus);
				return KW_QMP_NOMEM;
			}
			if (kw_json_strcpy(j, kw_json_get(j, e, "qom-path"), cpus[ncpus].qom, sizeof(cpus[0].qom)) <= 0)
				continue;
			cpus[ncpus++].index = (int)idx;
		}
		r = run(q, v, vm, Q_STATS, "{\"target\":\"vcpu\"}");
		if (r == KW_QMP_OK)
			r = map_stats(q, v, vm, cpus, ncpus, 1, &rows);
	}
	free(cpus);
	if (r != KW_QMP_OK && r != KW_QMP_ERROR)
		return r;
	r = run(q, v, vm, Q_STATS, "{\"target\":\"vm\"}");
	if (r == KW_QMP_OK)
		r = map_stats(q, v, vm, NULL, 0, 0, &rows);
	return r;
}

/* One session's queries; returns the first fatal status (or OK). */
static int session(struct kw_qmp *q, struct qmp_vm *v, struct kw_vm *vm)
{
	struct media m = { NULL, 0, 0, 0 };
	const struct kw_json *j = &q->j;
	uint64_t a, b;
	int r;

#define STEP(expr)                                             \
	do {                                                   \
		r = (expr);                                    \
		if (r != KW_QMP_OK && r != KW_QMP_ERROR)      \
			goto out;                              \
	} while (0)

	STEP(run(q, v, vm, Q_STATUS, NULL));
	if (r == KW_QMP_OK &&
	    kw_json_strcpy(j, kw_json_get(j, q->ret, "status"), vm->state, sizeof(vm->state)) < 0)
		vm->state[0] = '\0';
	STEP(run(q, v, vm, Q_BLOCK, NULL));
	if (r == KW_QMP_OK)
		STEP(map_block(q, vm, &m));
	STEP(run(q, v, vm, Q_BLOCKSTATS, NULL));
	if (r == KW_QMP_OK)
		STEP(map_blockstats(q, vm, &m));
	/* no balloon device: DeviceNotActive, skipped */
	STEP(run(q, v, vm, Q_BALLOON, NULL));
	if (r == KW_QMP_OK && !kw_json_u64(j, kw_json_get(j, q->ret, "actual"), &a) &&
	    kw_ss_put_u64(&vm->stats, KW_SRC_QMP, KW_M_DOM_MEM_CUR, NULL, a))
		STEP(KW_QMP_NOMEM);
	STEP(run(q, v, vm, Q_MEMSIZE, NULL));
	if (r == KW_QMP_OK && !kw_json_u64(j, kw_json_get(j, q->ret, "base-memory"), &a)) {
		if (kw_json_u64(j, kw_json_get(j, q->ret, "plugged-memory"), &b))
			b = 0;
		if (kw_ss_put_u64(&vm->stats, KW_SRC_QMP, KW_M_DOM_MEM_MAX, NULL, a + b))
			STEP(KW_QMP_NOMEM);
	}
	if (!has_kvm_rows(vm))
		STEP(kvm_stats(q, v, vm));
	r = KW_QMP_OK;
#undef STEP
out:
	free(m.names);
	return r;
}

static void forget_keys(const char *vmkey)
{
	static const char *const kinds[] = { "nosock", "notours", "proto", "libvirt" };
	char key[128];
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(kinds); i++) {
		snprintf(key, sizeof(key), "qmp-%s:%s", kinds[i], vmkey);
		kw_log_forget(key);
	}
}


static void report(const struct kw_vm *vm, int r, const struct kw_qmp *q)
{
	char key[128];

	switch (r) {
	case KW_QMP_BUSY:
		kw_debug("qmp: VM %s (pid %d): %s; skipped this cycle", vm->name, vm->pid, q->err);
		break;
	case KW_QMP_NOSOCK:
		snprintf(key, sizeof(key), "qmp-nosock:%s", vm->key);
		kw_log_once(KW_LOG_INFO, key, "qmp: VM %s (pid %d): %s; no QMP data for it", vm->name, vm->pid,
			    q->err);
		break;
	case KW_QMP_DENIED:
		kw_log_once(KW_LOG_WARN, "qmp-denied", "qmp: VM %s (pid %d): %s: VMs lack QMP data (per-disk I/O, "
			    "balloon) without access to their QMP sockets (run as root)", vm->name, vm->pid, q->err);
		break;
	case KW_QMP_LIBVIRT:
		snprintf(key, sizeof(key), "qmp-libvirt:%s", vm->key);
		kw_log_once(KW_LOG_DEBUG, key, "qmp: VM %s (pid %d): %s: managed by libvirt, not asked", vm->name,
			    vm->pid, q->err);
		break;
	case KW_QMP_NOTOURS:
		snprintf(key, sizeof(key), "qmp-notours:%s", vm->key);
		kw_log_once(KW_LOG_WARN, key, "qmp: VM %s (pid %d): %s: not used", vm->name, vm->pid, q->err);
		break;
	case KW_QMP_TIMEOUT:
	case KW_QMP_PROTO:
		snprintf(key, sizeof(key), "qmp-proto:%s", vm->key);
		kw_log_once(KW_LOG_WARN, key, "qmp: VM %s (pid %d): %s; QMP data of this VM are incomplete while "
			    "this lasts", vm->name, vm->pid, q->err);
		kw_debug("qmp: VM %s (pid %d): %s", vm->name, vm->pid, q->err);
		break;
	default:
		break;
	}
}

/* The session of one VM, on its own thread: everything it touches is
 * v's (the cache does not move while sessions run) and its scratch VM. */
static void *session_main(void *arg)
{
	struct qmp_vm *v = arg;
	uint64_t now = kw_now_mono_ns();
	unsigned ms = v->deadline_ns > now ? (unsigned)((v->deadline_ns - now) / 1000000) : 1;
	struct kw_qmp q;
	int r;

	r = kw_qmp_open(&q, v->procfs, v->path, v->scratch.pid, KW_QMP_GREETING_MS < ms ? KW_QMP_GREETING_MS : ms,
			ms ? ms : 1);
	if (r == KW_QMP_OK) {
		r = session(&q, v, &v->scratch);
		kw_qmp_close(&q);
	}
	v->result = r;
	kw_strlcpy(v->err, q.err, sizeof(v->err));
	return NULL;
}

static void join_session(struct qmp_vm *v)
{
	if (!v->running)
		return;
	pthread_join(v->th, NULL);
	v->running = 0;
}

static struct qmp_vm *cache_find(struct qmp_state *st, const char *key)
{
	size_t i;

	for (i = 0; i < st->vms.n; i++) {
		struct qmp_vm *v = kw_vmcache_at(&st->vms, i);

		if (!strcmp(v->key, key))
			return v;
	}
	return NULL;
}

/* Should this VM's monitor be asked?  norm receives its normalised path. */
static int wants_qmp(struct kw_collector *c, struct kw_vm *vm, char *norm, size_t len)
{
	char key[128];

	if (!vm->seen || vm->pid <= 0 || !vm->qmp[0] || !kw_collector_wants(c, vm))
		return 0;
	/* with "..", only the canonical path of the opened file can say
	 * whether it is libvirt's (checked in sock_connect) */
	if (kw_qmp_normalize(norm, len, vm->qmp))
		kw_strlcpy(norm, vm->qmp, len);
	if ((vm->found & KW_FOUND_LIBVIRT) || kw_qmp_libvirt_socket(norm)) {
		snprintf(key, sizeof(key), "qmp-libvirt:%s", vm->key);
		kw_log_once(KW_LOG_DEBUG, key, "qmp: VM %s (pid %d) is managed by libvirt: its monitor %s is "
			    "libvirtd's, not asked", vm->name, vm->pid, vm->qmp);
		return 0;
	}
	return 1;
}

/* Merge what a session found, where another source (libvirt) did not. */
static int merge(struct kw_vm *vm, const struct kw_vm *s)
{
	size_t i;
	int d;

	if (s->state[0])
		kw_strlcpy(vm->state, s->state, sizeof(vm->state));
	for (d = 0; d < s->ndisks; d++)
		if (kw_vm_add_disk(vm, s->disks[d].name) == -ENOMEM)
			return -ENOMEM;
	for (i = 0; i < s->stats.n; i++)
		if (kw_ss_put_u64(&vm->stats, KW_SRC_QMP, s->stats.s[i].metric, s->stats.s[i].inst, s->stats.s[i].v.u))
			return -ENOMEM;
	return 0;
}

static int qmp_collect_vm(struct kw_collector *c, void *state, struct kw_vm *vm)
{
	struct qmp_state *st = state;
	struct qmp_vm *v = cache_find(st, vm->key);
	struct kw_qmp q;
	char key[160];
	int r;

	if (!v || !v->running)
		return 0;
	join_session(v);
	r = v->result;
	if (r == KW_QMP_OK)
		forget_keys(vm->key);
	if (merge(vm, &v->scratch))
		r = KW_QMP_NOMEM;
	if (r == KW_QMP_TIMEOUT) {
		/* greeted, then missed the cycle's budget: skipped for 1, 2, 4 ...
		 * 32 cycles (a busy monitor -- another client holds it -- is
		 * tried every cycle: it costs only the greeting wait, in parallel) */
		v->skip = v->skip ? (v->skip < 32 ? v->skip * 2 : 32) : 1;
		v->skip_left = v->skip;
		snprintf(key, sizeof(key), "qmp-slow:%s", vm->key);
		kw_log_once(KW_LOG_WARN, key, "qmp: VM %s (pid %d): %s: its monitor does not answer within the "
			    "cycle's budget (%u ms); asked less often while this lasts", vm->name, vm->pid, v->err,
			    KW_QMP_CYCLE_MS);
	} else if (r == KW_QMP_OK) {
		v->skip = 0;
		snprintf(key, sizeof(key), "qmp-slow:%s", vm->key);
		kw_log_forget(key);
	}
	memset(&q, 0, sizeof(q));
	kw_strlcpy(q.err, v->err, sizeof(q.err));
	if (r != KW_QMP_TIMEOUT)
		report(vm, r, &q);
	return r == KW_QMP_NOMEM ? -ENOMEM : 0;
}

static void drop_vm(void *item)
{
	struct qmp_vm *v = item;
	char key[160];
	size_t i;

	join_session(v);
	kw_vm_free(&v->scratch);
	forget_keys(v->key);
	for (i = 0; i < KW_ARRAY_SIZE(cap_what); i++) {
		snprintf(key, sizeof(key), "qmp-cap:%s:%s", cap_what[i], v->key);
		kw_log_forget(key);
	}
	snprintf(key, sizeof(key), "qmp-slow:%s", v->key);
	kw_log_forget(key);
	free(v->defs);
}

/* Every monitor is asked at once: the cache is settled (last cycle's
 * sessions joined, gone VMs dropped, new ones added) and then one session
 * per VM starts on its own thread, all with the same deadline; each VM's
 * collect_vm takes its results.  One slow monitor costs the cycle at most
 * the budget, never a budget per monitor. */
static int qmp_discover(struct kw_collector *c, void *state)
{
	struct qmp_state *st = state;
	char norm[KW_QMP_PATH_MAX];
	uint64_t deadline;
	size_t i;
	int created;

	for (i = 0; i < st->vms.n; i++)
		join_session(kw_vmcache_at(&st->vms, i));
	kw_vmcache_prune(&st->vms, &c->vms, NULL, drop_vm);
	for (i = 0; i < c->vms.n; i++)
		if (wants_qmp(c, &c->vms.vms[i], norm, sizeof(norm)) && !kw_vmcache_get(&st->vms, c->vms.vms[i].key,
											&created))
			return -ENOMEM;
	deadline = kw_now_mono_ns() + (uint64_t)KW_QMP_CYCLE_MS * 1000000ull;
	for (i = 0; i < c->vms.n; i++) {
		struct kw_vm *vm = &c->vms.vms[i];
		struct qmp_vm *v;

		if (!wants_qmp(c, vm, norm, sizeof(norm)) || !(v = cache_find(st, vm->key)))
			continue;
		if (v->skip_left) {
			v->skip_left--;
			continue;
		}
		kw_vm_free(&v->scratch);
		memset(&v->scratch, 0, sizeof(v->scratch));
		kw_strlcpy(v->scratch.key, vm->key, sizeof(v->scratch.key));
		kw_strlcpy(v->scratch.name, vm->name, sizeof(v->scratch.name));
		v->scratch.pid = vm->pid;
		v->scratch.found = vm->found;
		v->scratch.pve_id = vm->pve_id;
		v->scratch.dom_id = vm->dom_id;
		kw_strlcpy(v->path, norm, sizeof(v->path));
		v->procfs = KW_PROC(c);
		v->deadline_ns = deadline;
		v->result = KW_QMP_PROTO;
		v->err[0] = '\0';
		if (pthread_create(&v->th, NULL, session_main, v) == 0)
			v->running = 1;
		else
			kw_log_once(KW_LOG_WARN, "qmp-thread", "qmp: cannot start a session thread: %s", strerror(errno));
	}
	return 0;
}

static int qmp_init(struct kw_collector *c, void **state, char *why, size_t whylen)
{
	struct qmp_state *st;
	int r;

	if (strcmp(c->cfg.procfs, "/proc")) {
		snprintf(why, whylen, "QMP sockets are reached for local processes only (procfs root is %s)",
			 c->cfg.procfs);
		return -ECANCELED;
	}
	if (!kw_collector_has(c, KW_SRC_PROC)) {
		snprintf(why, whylen, "the QMP socket comes from the QEMU command line: needs the procfs source");
		return -ECANCELED;
	}
	if ((r = kw_qmp_diag_works())) {
		snprintf(why, whylen, "monitor sockets cannot be verified before connecting: Unix socket diagnostics "
			 "(sock_diag, CONFIG_UNIX_DIAG) failed: %s", strerror(-r));
		return -ENOTSUP;
	}
	st = calloc(1, sizeof(*st));
	if (!st) {
		snprintf(why, whylen, "out of memory");
		return -ENOMEM;
	}
	st->vms.size = sizeof(struct qmp_vm);
	*state = st;
	return 0;
}

static void qmp_fini(struct kw_collector *c, void *state)
{
	struct qmp_state *st = state;

	if (!st)
		return;
	kw_vmcache_free(&st->vms, drop_vm);
	free(st);
}

const struct kw_source_ops kw_source_qmp = {
	.id = KW_SRC_QMP,
	.name = "qmp",
	.init = qmp_init,
	.discover = qmp_discover,
	.collect_vm = qmp_collect_vm,
	.fini = qmp_fini,
};
