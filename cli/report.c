/* report.c - kvmwatch's periodic per-VM reports: aligned text tables (views
 * summary, vcpu, net, host, list, all, mem, kvm, disk) and JSON, one object per interval.
 * Everything is driven by the metric table; rates come from deltas between
 * two collection cycles. */
#include "cli.h"
#include "util/kw_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ helpers */

/* Sum of per-second rates of a metric over all its instances. */
static double rate_sum(const struct kw_sampleset *prev, const struct kw_sampleset *cur, int metric, double dt)
{
	double sum = 0, r;
	size_t i;

	for (i = 0; i < cur->n; i++)
		if (cur->s[i].metric == metric && kw_rate(prev, cur, metric, cur->s[i].inst, dt, &r) == 0)
			sum += r;
	return sum;
}

static double gauge(const struct kw_sampleset *ss, int metric)
{
	double v;

	kw_ss_value(ss, metric, NULL, &v);
	return v;
}

static const struct kw_vm *prev_vm(const struct kw_snapshot *prev, const struct kw_vm *vm)
{
	size_t i;

	if (!prev->valid)
		return NULL;
	for (i = 0; i < prev->vms.n; i++)
		if (!strcmp(prev->vms.vms[i].key, vm->key))
			return &prev->vms.vms[i];
	return NULL;
}

/* Printable copy of a name for the text table (kw_text_safe): control
 * characters and invalid UTF-8 become '?', at most maxw characters, padded
 * to maxw columns so the table stays aligned with multibyte names. */
static void printable(char *out, size_t len, const char *in, size_t maxw)
{
	kw_text_safe(out, len, in, maxw, 1);
}

static void print_time_header(FILE *f, const struct kw_collector *c)
{
	time_t t = (time_t)(c->ts_real_ns / 1000000000ull);
	struct tm tm;
	char buf[64];

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(f, "\n%s  %zu VM%s\n", buf, c->vms.n, c->vms.n == 1 ? "" : "s");
}

/* ------------------------------------------------------------ text views */

/* Summary columns; --sort takes their keys (descending), "name" and "pid". */
enum { SC_CPU, SC_GUEST, SC_STEAL, SC_OTHER, SC_RSS, SC_FLT, SC_RD, SC_WR, SC_IOW, SC_RX, SC_TX, SC__N };
static const char *const sort_keys[SC__N] = { "cpu", "guest", "steal", "other", "rss", "faults",
					      "read", "write", "iowait", "rx", "tx" };

int cli_sort_key(const char *name)
{
	int i;

	if (!strcmp(name, "name"))
		return CLI_SORT_NAME;
	if (!strcmp(name, "pid"))
		return CLI_SORT_PID;
	for (i = 0; i < SC__N; i++)
		if (!strcmp(name, sort_keys[i]))
			return i;
	return -3;
}

struct sum_row {
	const struct kw_vm *vm;
	double v[SC__N];
};

static int sort_col;

static int row_cmp(const void *pa, const void *pb)
{
	const struct sum_row *a = pa, *b = pb;

	if (sort_col == CLI_SORT_PID)
		return a->vm->pid < b->vm->pid ? -1 : a->vm->pid > b->vm->pid;
	if (sort_col >= 0 && a->v[sort_col] != b->v[sort_col])
		return a->v[sort_col] < b->v[sort_col] ? 1 : -1;
	return strcmp(a->vm->name, b->vm->name);
}

static void view_summary(FILE *f, const struct cli_opts *o, const struct kw_collector *c,
			 const struct kw_snapshot *prev, double dt)
{
	struct sum_row *rows = calloc(c->vms.n ? c->vms.n : 1, sizeof(*rows));
	size_t i, n;

	if (!rows) {
		fprintf(stderr, "kvmwatch: out of memory\n");
		return;
	}
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = prev_vm(prev, vm);
		const struct kw_sampleset *ps = p ? &p->stats : NULL;
		const struct kw_sampleset *cs = &vm->stats;
		double *v = rows[i].v;

		rows[i].vm = vm;
		v[SC_CPU] = (rate_sum(ps, cs, KW_M_CPU_USER, dt) + rate_sum(ps, cs, KW_M_CPU_SYSTEM, dt)) / 1e7;
		v[SC_GUEST] = rate_sum(ps, cs, KW_M_CPU_GUEST, dt) / 1e7;
		v[SC_STEAL] = (rate_sum(ps, cs, KW_M_STEAL_VCPU, dt) + rate_sum(ps, cs, KW_M_STEAL_OTHER, dt)) / 1e7;
		v[SC_OTHER] = rate_sum(ps, cs, KW_M_CPU_OTHER, dt) / 1e7;
		v[SC_RSS] = gauge(cs, KW_M_MEM_RSS) / 1048576.0;
		v[SC_FLT] = rate_sum(ps, cs, KW_M_MINFLT, dt) + rate_sum(ps, cs, KW_M_MAJFLT, dt);
		v[SC_RD] = rate_sum(ps, cs, KW_M_IO_RBYTES, dt) / 1024;
		v[SC_WR] = rate_sum(ps, cs, KW_M_IO_WBYTES, dt) / 1024;
		/* -1: not measured (delay accounting off), shown as "-" */
		v[SC_IOW] = kw_ss_get(cs, KW_M_IO_DELAY, NULL) ? rate_sum(ps, cs, KW_M_IO_DELAY, dt) / 1e6 : -1;
		v[SC_RX] = rate_sum(ps, cs, KW_M_NET_RX_BYTES, dt) * 8 / 1000;
		v[SC_TX] = rate_sum(ps, cs, KW_M_NET_TX_BYTES, dt) * 8 / 1000;
	}
	sort_col = o->sort;
	if (o->sort != CLI_SORT_NAME)
		qsort(rows, c->vms.n, sizeof(*rows), row_cmp);
	n = o->limit > 0 && (size_t)o->limit < c->vms.n ? (size_t)o->limit : c->vms.n;
	fprintf(f, "%-24s %8s %4s %7s %7s %7s %7s %9s %8s %9s %9s %8s %10s %10s\n", "VM", "PID", "VCPU", "CPU%",
		"GUEST%", "STEAL%", "OTHER%", "RSS_MiB", "FLT/s", "RD_KiB/s", "WR_KiB/s", "IOW_ms/s", "RX_kbit/s",
		"TX_kbit/s");
	for (i = 0; i < n; i++) {
		const double *v = rows[i].v;
		char name[128], iow[32];

		printable(name, sizeof(name), rows[i].vm->name, 24);
		if (v[SC_IOW] < 0)
			kw_strlcpy(iow, "-", sizeof(iow));
		else
			snprintf(iow, sizeof(iow), "%.1f", v[SC_IOW]);
		fprintf(f, "%-24s %8d %4d %7.1f %7.1f %7.1f %7.1f %9.1f %8.0f %9.1f %9.1f %8s %10.1f %10.1f\n", name,
			rows[i].vm->pid, rows[i].vm->nvcpus, v[SC_CPU], v[SC_GUEST], v[SC_STEAL], v[SC_OTHER], v[SC_RSS],
			v[SC_FLT], v[SC_RD], v[SC_WR], iow, v[SC_RX], v[SC_TX]);
	}
	free(rows);
}

static void view_vcpu(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	size_t i;
	int t;

	fprintf(f, "%-24s %8s %8s %5s %7s %7s\n", "VM", "PID", "TID", "VCPU", "RUN%", "STEAL%");
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = prev_vm(prev, vm);
		char name[128];

		printable(name, sizeof(name), vm->name, 24);
		for (t = 0; t < vm->nthreads; t++) {
			const struct kw_thread *th = &vm->threads[t];
			char inst[16];
			double run, steal;

			if (th->vcpu < 0)
				continue;
			snprintf(inst, sizeof(inst), "%d", th->vcpu);
			kw_rate(p ? &p->stats : NULL, &vm->stats, KW_M_VCPU_RUN, inst, dt, &run);
			kw_rate(p ? &p->stats : NULL, &vm->stats, KW_M_VCPU_DELAY, inst, dt, &steal);
			fprintf(f, "%-24s %8d %8d %5d %7.1f %7.1f\n", name, vm->pid, th->tid, th->vcpu, run / 1e7,
				steal / 1e7);
		}
	}
}

static void view_net(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	size_t i;
	int n;

	fprintf(f, "%-24s %-15s %10s %10s %9s %9s %7s %7s %7s %7s\n", "VM", "IFACE", "RX_kbit/s", "TX_kbit/s",
		"RX_pkt/s", "TX_pkt/s", "RX_err", "TX_err", "RX_drop", "TX_drop");
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = prev_vm(prev, vm);
		const struct kw_sampleset *ps = p ? &p->stats : NULL;
		char name[128];

		printable(name, sizeof(name), vm->name, 24);
		for (n = 0; n < vm->nnetifs; n++) {
			const char *ifn = vm->netifs[n].name;
			double v[8];
			static const int m[8] = { KW_M_NET_RX_BYTES, KW_M_NET_TX_BYTES, KW_M_NET_RX_PKTS,
						  KW_M_NET_TX_PKTS, KW_M_NET_RX_ERRS, KW_M_NET_TX_ERRS,
						  KW_M_NET_RX_DROP, KW_M_NET_TX_DROP };
			char ifs[4 * 15 + 1];
			int k;

			for (k = 0; k < 8; k++)
				kw_rate(ps, &vm->stats, m[k], ifn, dt, &v[k]);
			fprintf(f, "%-24s %s %10.1f %10.1f %9.1f %9.1f %7.1f %7.1f %7.1f %7.1f\n", name,
				kw_text_safe(ifs, sizeof(ifs), ifn, 15, 1),
				v[0] * 8 / 1000, v[1] * 8 / 1000, v[2], v[3], v[4], v[5], v[6], v[7]);
		}
	}
}

static void view_host(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	static const int cpu[] = { KW_M_H_CPU_USER, KW_M_H_CPU_NICE, KW_M_H_CPU_SYSTEM, KW_M_H_CPU_IDLE,
				   KW_M_H_CPU_IOWAIT, KW_M_H_CPU_IRQ, KW_M_H_CPU_SOFTIRQ, KW_M_H_CPU_STEAL };
	const struct kw_sampleset *ps = prev->valid ? &prev->host : NULL, *cs = &c->host;
	double r[KW_ARRAY_SIZE(cpu)], total = 0;
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(cpu); i++) {
		kw_rate(ps, cs, cpu[i], NULL, dt, &r[i]);
		total += r[i];
	}
	if (total <= 0)
		total = 1;
	fprintf(f, "host cpu: %.0f cpus  user %.1f%%  nice %.1f%%  system %.1f%%  idle %.1f%%  iowait %.1f%%  "
		   "irq %.1f%%  softirq %.1f%%  steal %.1f%%\n",
		gauge(cs, KW_M_H_CPUS), 100 * r[0] / total, 100 * r[1] / total, 100 * r[2] / total,
		100 * r[3] / total, 100 * r[4] / total, 100 * r[5] / total, 100 * r[6] / total, 100 * r[7] / total);
	fprintf(f, "host mem: total %.0f MiB  free %.0f MiB  available %.0f MiB  cached %.0f MiB  swap free %.0f/%.0f MiB\n",
		gauge(cs, KW_M_H_MEM_TOTAL) / 1048576, gauge(cs, KW_M_H_MEM_FREE) / 1048576,
		gauge(cs, KW_M_H_MEM_AVAIL) / 1048576, gauge(cs, KW_M_H_MEM_CACHED) / 1048576,
		gauge(cs, KW_M_H_MEM_SWAPF) / 1048576, gauge(cs, KW_M_H_MEM_SWAPT) / 1048576);
	fprintf(f, "host psi: cpu %.2f%%  memory %.2f/%.2f%%  io %.2f/%.2f%% (some/full, avg10)\n",
		gauge(cs, KW_M_H_PSI_CPU_SOME), gauge(cs, KW_M_H_PSI_MEM_SOME), gauge(cs, KW_M_H_PSI_MEM_FULL),
		gauge(cs, KW_M_H_PSI_IO_SOME), gauge(cs, KW_M_H_PSI_IO_FULL));
	fprintf(f, "%-12s %8s %8s %10s %10s %9s %9s %6s\n", "DEVICE", "R_IOPS", "W_IOPS", "R_KiB/s", "W_KiB/s",
		"R_LAT_ms", "W_LAT_ms", "UTIL%");
	for (i = 0; i < cs->n; i++) {
		const char *d = cs->s[i].inst;
		double rd, wr, rb, wb, rt, wt, io;

		if (cs->s[i].metric != KW_M_H_DISK_READS)
			continue;
		kw_rate(ps, cs, KW_M_H_DISK_READS, d, dt, &rd);
		kw_rate(ps, cs, KW_M_H_DISK_WRITES, d, dt, &wr);
		kw_rate(ps, cs, KW_M_H_DISK_RBYTES, d, dt, &rb);
		kw_rate(ps, cs, KW_M_H_DISK_WBYTES, d, dt, &wb);
		kw_rate(ps, cs, KW_M_H_DISK_RTIME, d, dt, &rt);
		kw_rate(ps, cs, KW_M_H_DISK_WTIME, d, dt, &wt);
		kw_rate(ps, cs, KW_M_H_DISK_IOTIME, d, dt, &io);
		/* latency = time spent / requests completed, over the interval */
		fprintf(f, "%-12s %8.1f %8.1f %10.1f %10.1f %9.2f %9.2f %6.1f\n", d, rd, wr, rb / 1024, wb / 1024,
			rd > 0 ? rt / rd : 0, wr > 0 ? wt / wr : 0, io / 10);
	}
	fprintf(f, "%-15s %10s %10s %9s %9s %7s %7s\n", "IFACE", "RX_kbit/s", "TX_kbit/s", "RX_pkt/s", "TX_pkt/s",
		"RX_err", "TX_err");
	for (i = 0; i < cs->n; i++) {
		const char *d = cs->s[i].inst;
		double v[6];

		if (cs->s[i].metric != KW_M_H_NET_RX_BYTES)
			continue;
		kw_rate(ps, cs, KW_M_H_NET_RX_BYTES, d, dt, &v[0]);
		kw_rate(ps, cs, KW_M_H_NET_TX_BYTES, d, dt, &v[1]);
		kw_rate(ps, cs, KW_M_H_NET_RX_PKTS, d, dt, &v[2]);
		kw_rate(ps, cs, KW_M_H_NET_TX_PKTS, d, dt, &v[3]);
		kw_rate(ps, cs, KW_M_H_NET_RX_ERRS, d, dt, &v[4]);
		kw_rate(ps, cs, KW_M_H_NET_TX_ERRS, d, dt, &v[5]);
		fprintf(f, "%-15s %10.1f %10.1f %9.1f %9.1f %7.1f %7.1f\n", d, v[0] * 8 / 1000, v[1] * 8 / 1000, v[2],
			v[3], v[4], v[5]);
	}
}

static void found_str(char *out, size_t len, unsigned found)
{
	snprintf(out, len, "%s%s%s", found & KW_FOUND_PROC ? "proc," : "", found & KW_FOUND_KVMFD ? "kvmfd," : "",
		 found & KW_FOUND_LIBVIRT ? "libvirt," : "");
	if (*out)
		out[strlen(out) - 1] = '\0';
}

static void view_list(FILE *f, const struct kw_collector *c)
{
	size_t i;
	int n;

	fprintf(f, "%-24s %8s %-36s %6s %5s %7s %-18s %-14s %s\n", "VM", "PID", "UUID", "PVEID", "VCPU", "THREADS",
		"VMM", "FOUND", "NETIFS");
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		char name[128], found[64], pve[16];

		printable(name, sizeof(name), vm->name, 24);
		found_str(found, sizeof(found), vm->found);
		if (vm->pve_id >= 0)
			snprintf(pve, sizeof(pve), "%d", vm->pve_id);
		else
			kw_strlcpy(pve, "-", sizeof(pve));
		fprintf(f, "%-24s %8d %-36s %6s %5d %7d %-18s %-14s ", name, vm->pid, vm->uuid[0] ? vm->uuid : "-",
			pve, vm->nvcpus, vm->nthreads, vm->vmm, found);
		for (n = 0; n < vm->nnetifs; n++)
			fprintf(f, "%s%s", n ? "," : "", vm->netifs[n].name);
		fprintf(f, "%s\n", vm->nnetifs ? "" : "-");
	}
}

/* A gauge in MiB, "-" when the VM has no such sample. */
static const char *gauge_mib(char *buf, size_t len, const struct kw_sampleset *ss, int metric)
{
	double v;

	if (kw_ss_value(ss, metric, NULL, &v))
		return "-";
	snprintf(buf, len, "%.1f", v / 1048576.0);
	return buf;
}

/* libvirt's view of memory: domain state, balloon and guest memory stats. */
static void view_mem(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	size_t i;

	fprintf(f, "%-24s %8s %-9s %5s %9s %9s %9s %9s %9s %9s %9s %9s %8s\n", "VM", "PID", "STATE", "DOMID",
		"MAX_MiB", "CUR_MiB", "RSS_MiB", "BRSS_MiB", "USABLE", "UNUSED", "AVAIL", "SWAP_KiB/s", "MAJFL/s");
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = prev_vm(prev, vm);
		const struct kw_sampleset *ps = p ? &p->stats : NULL, *cs = &vm->stats;
		char name[128], b[7][32];

		printable(name, sizeof(name), vm->name, 24);
		fprintf(f, "%-24s %8d %-9s %5d %9s %9s %9s %9s %9s %9s %9s %9.1f %8.1f\n", name, vm->pid,
			vm->state[0] ? vm->state : "-", vm->dom_id, gauge_mib(b[0], 32, cs, KW_M_DOM_MEM_MAX),
			gauge_mib(b[1], 32, cs, KW_M_DOM_MEM_CUR), gauge_mib(b[2], 32, cs, KW_M_MEM_RSS),
			gauge_mib(b[3], 32, cs, KW_M_BAL_RSS), gauge_mib(b[4], 32, cs, KW_M_BAL_USABLE),
			gauge_mib(b[5], 32, cs, KW_M_BAL_UNUSED), gauge_mib(b[6], 32, cs, KW_M_BAL_AVAIL),
			(rate_sum(ps, cs, KW_M_BAL_SWAP_IN, dt) + rate_sum(ps, cs, KW_M_BAL_SWAP_OUT, dt)) / 1024,
			rate_sum(ps, cs, KW_M_BAL_MAJFLT, dt));
	}
}

/* KVM binary stats per VM: every cumulative vCPU stat (summed over vCPUs)
 * that moved in the interval, as a rate. */
static void view_kvm(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	size_t i, k;

	fprintf(f, "%-24s %8s %-28s %14s %20s %s\n", "VM", "PID", "KVM_STAT", "RATE/s", "TOTAL", "UNIT");
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = prev_vm(prev, vm);
		char name[128];

		printable(name, sizeof(name), vm->name, 24);
		for (k = 0; k < vm->stats.n; k++) {
			const struct kw_sample *s = &vm->stats.s[k];
			double r;

			if (s->metric != KW_M_KVM_VCPU && s->metric != KW_M_KVM_VM)
				continue;
			if (kw_rate(p ? &p->stats : NULL, &vm->stats, s->metric, s->inst, dt, &r) || r <= 0)
				continue;
			fprintf(f, "%-24s %8d %-28s %14.1f %20llu %s\n", name, vm->pid, s->inst, r,
				(unsigned long long)s->v.u, kw_metric_unit(s->metric, s->inst));
		}
	}
}

/* Per VM and disk (libvirt or QMP rows): IOPS, throughput, latency (time
 * spent / requests completed over the interval), failed requests, capacity. */
static void view_disk(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	static const int failed[] = { KW_M_DISK_RD_FAILED, KW_M_DISK_WR_FAILED, KW_M_DISK_FL_FAILED };
	size_t i, k;
	int n;

	fprintf(f, "%-24s %8s %-16s %8s %8s %10s %10s %9s %9s %7s %7s %10s\n", "VM", "PID", "DISK", "R_IOPS",
		"W_IOPS", "R_KiB/s", "W_KiB/s", "R_LAT_ms", "W_LAT_ms", "FL/s", "FAIL/s", "CAP_MiB");
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = prev_vm(prev, vm);
		const struct kw_sampleset *ps = p ? &p->stats : NULL, *cs = &vm->stats;
		char name[128], dev[72], cap[32];

		printable(name, sizeof(name), vm->name, 24);
		for (n = 0; n < vm->ndisks; n++) {
			const char *d = vm->disks[n].name;
			double rd, wr, rb, wb, rt, wt, fl, fail = 0, v;

			if (!kw_ss_get(cs, KW_M_DISK_RD_REQS, d) && !kw_ss_get(cs, KW_M_DISK_CAPACITY, d))
				continue; /* no data this cycle */
			kw_rate(ps, cs, KW_M_DISK_RD_REQS, d, dt, &rd);
			kw_rate(ps, cs, KW_M_DISK_WR_REQS, d, dt, &wr);
			kw_rate(ps, cs, KW_M_DISK_RD_BYTES, d, dt, &rb);
			kw_rate(ps, cs, KW_M_DISK_WR_BYTES, d, dt, &wb);
			kw_rate(ps, cs, KW_M_DISK_RD_TIME, d, dt, &rt);
			kw_rate(ps, cs, KW_M_DISK_WR_TIME, d, dt, &wt);
			kw_rate(ps, cs, KW_M_DISK_FL_REQS, d, dt, &fl);
			for (k = 0; k < KW_ARRAY_SIZE(failed); k++)
				if (kw_rate(ps, cs, failed[k], d, dt, &v) == 0)
					fail += v;
			if (kw_ss_value(cs, KW_M_DISK_CAPACITY, d, &v) == 0)
				snprintf(cap, sizeof(cap), "%.1f", v / 1048576.0);
			else
				kw_strlcpy(cap, "-", sizeof(cap));
			printable(dev, sizeof(dev), d, 16);
			fprintf(f, "%-24s %8d %-16s %8.1f %8.1f %10.1f %10.1f %9.2f %9.2f %7.1f %7.1f %10s\n", name,
				vm->pid, dev, rd, wr, rb / 1024, wb / 1024, rd > 0 ? rt / rd / 1e6 : 0,
				wr > 0 ? wt / wr / 1e6 : 0, fl, fail, cap);
		}
	}
}

/* Every sample of every VM: name, instance, value, per-second rate. */
static void view_all(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	size_t i, k;

	fprintf(f, "%-24s %-28s %-16s %20s %14s %s\n", "VM", "METRIC", "INSTANCE", "VALUE", "RATE/s", "UNIT");
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = prev_vm(prev, vm);
		char name[128];

		printable(name, sizeof(name), vm->name, 24);
		for (k = 0; k < vm->stats.n; k++) {
			const struct kw_sample *s = &vm->stats.s[k];
			const struct kw_metric_def *d = &kw_metrics[s->metric];
			double r;

			char inst[4 * KW_INST_MAX];

			fprintf(f, "%-24s %-28s %-16s ", name, d->name,
				s->inst[0] ? kw_text_safe(inst, sizeof(inst), s->inst, KW_INST_MAX, 0) : "-");
			if (s->is_double)
				fprintf(f, "%20.2f ", s->v.d);
			else
				fprintf(f, "%20llu ", (unsigned long long)s->v.u);
			if (d->kind == KW_COUNTER && kw_rate(p ? &p->stats : NULL, &vm->stats, s->metric, s->inst, dt, &r) == 0)
				fprintf(f, "%14.1f", r);
			else
				fprintf(f, "%14s", "-");
			fprintf(f, " %s\n", kw_metric_unit(s->metric, s->inst));
		}
	}
}

/* ------------------------------------------------------------------ JSON */

static void json_samples(FILE *f, const struct kw_sampleset *ss, const struct kw_sampleset *prev, double dt,
			 int rates)
{
	size_t i;
	int first = 1, open_obj = 0, last_metric = -1;

	fputc('{', f);
	for (i = 0; i < ss->n; i++) {
		const struct kw_sample *s = &ss->s[i];
		const struct kw_metric_def *d = &kw_metrics[s->metric];
		double r;

		if (rates && (d->kind != KW_COUNTER || kw_rate(prev, ss, s->metric, s->inst, dt, &r)))
			continue;
		if (s->metric != last_metric) {
			if (open_obj)
				fputc('}', f);
			open_obj = 0;
			if (!first)
				fputc(',', f);
			first = 0;
			kw_json_str(f, d->name);
			fputc(':', f);
			if (kw_scope_has_instance(d->scope)) {
				fputc('{', f);
				open_obj = 1;
			}
		} else {
			fputc(',', f);
		}
		last_metric = s->metric;
		if (open_obj) {
			kw_json_str(f, s->inst);
			fputc(':', f);
		}
		if (rates)
			fprintf(f, "%.3f", r);
		else if (s->is_double)
			fprintf(f, "%.2f", isfinite(s->v.d) ? s->v.d : 0.0);
		else
			fprintf(f, "%llu", (unsigned long long)s->v.u);
	}
	if (open_obj)
		fputc('}', f);
	fputc('}', f);
}

static void json_report(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	size_t i, k;
	int n;

	fprintf(f, "{\"time\":%.3f,\"interval\":%.3f,\"sources\":{", (double)c->ts_real_ns / 1e9, dt);
	for (k = 0; k < KW_SRC__N; k++) {
		const struct kw_source_state *s = &c->src[k];

		fprintf(f, "%s\"%s\":{\"available\":%s", k ? "," : "", kw_source_name((int)k),
			s->available ? "true" : "false");
		if (!s->available) {
			fputs(",\"reason\":", f);
			kw_json_str(f, s->ops || s->why[0] ? s->why : "not built in");
		}
		fputc('}', f);
	}
	fputs("},\"host\":{\"metrics\":", f);
	json_samples(f, &c->host, NULL, dt, 0);
	fputs(",\"rates\":", f);
	json_samples(f, &c->host, prev->valid ? &prev->host : NULL, dt, 1);
	fputs("},\"vms\":[", f);
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = prev_vm(prev, vm);
		char found[64];

		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		kw_json_str(f, vm->name);
		fputs(",\"uuid\":", f);
		if (vm->uuid[0])
			kw_json_str(f, vm->uuid);
		else
			fputs("null", f);
		fprintf(f, ",\"pid\":%d,\"pve_id\":", vm->pid);
		if (vm->pve_id >= 0)
			fprintf(f, "%d", vm->pve_id);
		else
			fputs("null", f);
		fputs(",\"vmm\":", f);
		kw_json_str(f, vm->vmm);
		found_str(found, sizeof(found), vm->found);
		fputs(",\"found\":", f);
		kw_json_str(f, found);
		fputs(",\"state\":", f);
		kw_json_str(f, vm->state);
		fputs(",\"dom_id\":", f);
		if (vm->dom_id >= 0)
			fprintf(f, "%d", vm->dom_id);
		else
			fputs("null", f);
		fputs(",\"disks\":[", f);
		for (n = 0; n < vm->ndisks; n++) {
			if (n)
				fputc(',', f);
			kw_json_str(f, vm->disks[n].name);
		}
		fputc(']', f);
		fprintf(f, ",\"vcpus\":%d,\"threads\":[", vm->nvcpus);
		for (n = 0; n < vm->nthreads; n++)
			fprintf(f, "%s{\"tid\":%d,\"vcpu\":%d}", n ? "," : "", vm->threads[n].tid, vm->threads[n].vcpu);
		fputs("],\"netifs\":[", f);
		for (n = 0; n < vm->nnetifs; n++) {
			if (n)
				fputc(',', f);
			kw_json_str(f, vm->netifs[n].name);
		}
		fputs("],\"metrics\":", f);
		json_samples(f, &vm->stats, NULL, dt, 0);
		fputs(",\"rates\":", f);
		json_samples(f, &vm->stats, p ? &p->stats : NULL, dt, 1);
		fputc('}', f);
	}
	fputs("]}\n", f);
}

/* ------------------------------------------------------------ main loop */

static void report(FILE *f, const struct cli_opts *o, const struct kw_collector *c, const struct kw_snapshot *prev,
		   double dt)
{
	if (o->output == KW_OUT_JSON) {
		json_report(f, c, prev, dt);
	} else {
		print_time_header(f, c);
		switch (o->view) {
		case KW_VIEW_VCPU: view_vcpu(f, c, prev, dt); break;
		case KW_VIEW_NET: view_net(f, c, prev, dt); break;
		case KW_VIEW_HOST: view_host(f, c, prev, dt); break;
		case KW_VIEW_LIST: view_list(f, c); break;
		case KW_VIEW_METRICS: view_all(f, c, prev, dt); break;
		case KW_VIEW_MEM: view_mem(f, c, prev, dt); break;
		case KW_VIEW_KVM: view_kvm(f, c, prev, dt); break;
		case KW_VIEW_DISK: view_disk(f, c, prev, dt); break;
		default: view_summary(f, o, c, prev, dt); break;
		}
	}
	fflush(f);
}

int cli_run_metrics(struct cli_opts *o)
{
	struct kw_collector c;
	struct kw_snapshot prev = { 0 };
	char err[512];
	unsigned long long start, next, step;
	long done = 0;
	int r;

	r = kw_collector_init(&c, &o->cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "kvmwatch: %s\n", err);
		return 1;
	}
	r = kw_collector_collect(&c);
	if (r < 0) {
		fprintf(stderr, "kvmwatch: failed to collect: %s\n", strerror(-r));
		kw_collector_fini(&c);
		return 1;
	}
	/* The list view needs no rates: print at once. */
	if (o->view == KW_VIEW_LIST && o->output == KW_OUT_TEXT) {
		view_list(stdout, &c);
		kw_collector_fini(&c);
		return ferror(stdout) ? 1 : 0;
	}
	step = (unsigned long long)(o->interval * 1e9);
	start = next = kw_now_mono_ns();
	while (!kw_exiting && (o->count < 0 || done < o->count)) {
		double dt;

		if (kw_snapshot_take(&prev, &c)) {
			r = -ENOMEM;
			break;
		}
		next += step;
		{
			/* ticks a slow cycle missed are dropped, not caught up
			 * in a burst of reports a millisecond apart */
			uint64_t now = kw_now_mono_ns();

			while (next <= now)
				next += step;
		}
		if (o->duration > 0 && next > start + (unsigned long long)(o->duration * 1e9))
			next = start + (unsigned long long)(o->duration * 1e9);
		if (kw_sleep_until(next, &kw_exiting))
			break;
		r = kw_collector_collect(&c);
		if (r < 0) {
			fprintf(stderr, "kvmwatch: failed to collect: %s\n", strerror(-r));
			break;
		}
		dt = (double)(c.ts_mono_ns - prev.ts_mono_ns) / 1e9;
		report(stdout, o, &c, &prev, dt);
		if (ferror(stdout)) {
			if (kw_output_abandoned) {
				r = 0; /* stopped while the reader was not reading */
				break;
			}
			/* A closed pipe (the reader is done) ends quietly. */
			if (errno != EPIPE)
				fprintf(stderr, "kvmwatch: failed to write report: %s\n", strerror(errno));
			r = -EPIPE;
			break;
		}
		done++;
		if (o->duration > 0 && kw_now_mono_ns() >= start + (unsigned long long)(o->duration * 1e9))
			break;
		r = 0;
	}
	kw_snapshot_free(&prev);
	kw_collector_fini(&c);
	return r < 0 ? 1 : 0;
}
