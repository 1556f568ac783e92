// SPDX-License-Identifier: GPL-2.0
/* kw_views.c - the views: what each --view (and the interactive screen)
 * shows, as columns over the metric table.  One row per column:
 *   header, key, width, decimals, display unit, metrics.
 * Units convert from the metric's own (metrics*.def) to the column's. */
#include "core/kw_view.h"

#define M(...) { __VA_ARGS__, -1 }
#define NOM { -1 }
/* attribute columns */
#define ATTR(h, k, kind, w, fl) { h, k, kind, w, 0, fl, NULL, NULL, NOM }
#define NAME_COL ATTR("VM", "name", KW_VC_NAME, 24, KW_VC_LEFT)
#define PID_COL  ATTR("PID", "pid", KW_VC_PID, 8, 0)
/* number columns */
#define RATE(h, k, w, p, u, ...)  { h, k, KW_VC_RATE, w, p, 0, u, NULL, M(__VA_ARGS__) }
#define RATE_NEED(h, k, w, p, u, ...) { h, k, KW_VC_RATE, w, p, KW_VC_NEED, u, NULL, M(__VA_ARGS__) }
#define GAUGE(h, k, w, p, u, m)   { h, k, KW_VC_GAUGE, w, p, 0, u, NULL, M(m) }
#define GAUGE_NEED(h, k, w, p, u, m) { h, k, KW_VC_GAUGE, w, p, KW_VC_NEED, u, NULL, M(m) }
#define PER(h, k, w, p, u, num, den) { h, k, KW_VC_PER, w, p, 0, u, NULL, M(num, den) }
/* line sections: printf format of the value(s) */
#define LINE(fmt, kind, u, ...)   { NULL, NULL, kind, 0, 0, 0, u, fmt, M(__VA_ARGS__) }
#define SECTION(id, rowkind, c, ...) \
	{ .name = id, .rows = rowkind, .cols = c, .ncols = sizeof(c) / sizeof(c[0]), __VA_ARGS__ }
#define ROW_IF(...) .row_if = { __VA_ARGS__, -1 }
#define NO_ROW_IF .row_if = { -1 }

/* ---------------------------------------------------------- summary */
/* What each VM uses: the summary's columns, the screen's list too (there
 * GUEST% starts hidden and FLT/s is a column narrower). */
#define VM_CPU_COLS(guest_flags) \
	RATE("CPU%", "cpu", 7, 1, "%", KW_M_CPU_USER, KW_M_CPU_SYSTEM), \
	{ "GUEST%", "guest", KW_VC_RATE, 7, 1, guest_flags, "%", NULL, M(KW_M_CPU_GUEST) }, \
	RATE("STEAL%", "steal", 7, 1, "%", KW_M_STEAL_VCPU, KW_M_STEAL_OTHER), \
	RATE("OTHER%", "other", 7, 1, "%", KW_M_CPU_OTHER), \
	GAUGE("RSS_MiB", "rss", 9, 1, "MiB", KW_M_MEM_RSS)
#define VM_FAULTS_COL(width) RATE("FLT/s", "faults", width, 0, "/s", KW_M_MINFLT, KW_M_MAJFLT)
/* IOW "-": not measured (kernel.task_delayacct off) */
#define VM_IO_COLS \
	RATE("RD_KiB/s", "read", 9, 1, "KiB/s", KW_M_IO_RBYTES), \
	RATE("WR_KiB/s", "write", 9, 1, "KiB/s", KW_M_IO_WBYTES), \
	RATE_NEED("IOW_ms/s", "iowait", 8, 1, "ms/s", KW_M_IO_DELAY), \
	RATE("RX_kbit/s", "rx", 10, 1, "kbit/s", KW_M_NET_RX_BYTES), \
	RATE("TX_kbit/s", "tx", 10, 1, "kbit/s", KW_M_NET_TX_BYTES)
#define VCPUS_COL ATTR("VCPU", "vcpus", KW_VC_VCPUS, 4, 0)

static const struct kw_vcol summary_cols[] = {
	NAME_COL,
	PID_COL,
	VCPUS_COL,
	VM_CPU_COLS(0),
	VM_FAULTS_COL(8),
	VM_IO_COLS,
};
static const struct kw_view view_summary = SECTION("summary", KW_VROW_VM, summary_cols, NO_ROW_IF);

/* ------------------------------------------------------------- vcpu */
static const struct kw_vcol vcpu_cols[] = {
	NAME_COL,
	PID_COL,
	ATTR("TID", "tid", KW_VC_TID, 8, 0),
	ATTR("VCPU", "vcpu", KW_VC_VCPU, 5, 0),
	RATE("RUN%", "run", 7, 1, "%", KW_M_VCPU_RUN),
	RATE("STEAL%", "steal", 7, 1, "%", KW_M_VCPU_DELAY),
};
static const struct kw_view view_vcpu = SECTION("vcpu", KW_VROW_VCPU, vcpu_cols, NO_ROW_IF);

/* -------------------------------------------------------------- net */
static const struct kw_vcol net_cols[] = {
	NAME_COL,
	ATTR("IFACE", "iface", KW_VC_INST, 15, KW_VC_LEFT),
	RATE("RX_kbit/s", "rx", 10, 1, "kbit/s", KW_M_NET_RX_BYTES),
	RATE("TX_kbit/s", "tx", 10, 1, "kbit/s", KW_M_NET_TX_BYTES),
	RATE("RX_pkt/s", "rx_pkts", 9, 1, "/s", KW_M_NET_RX_PKTS),
	RATE("TX_pkt/s", "tx_pkts", 9, 1, "/s", KW_M_NET_TX_PKTS),
	RATE("RX_err", "rx_errs", 7, 1, "/s", KW_M_NET_RX_ERRS),
	RATE("TX_err", "tx_errs", 7, 1, "/s", KW_M_NET_TX_ERRS),
	RATE("RX_drop", "rx_drops", 7, 1, "/s", KW_M_NET_RX_DROP),
	RATE("TX_drop", "tx_drops", 7, 1, "/s", KW_M_NET_TX_DROP),
	{ "LINK", "link", KW_VC_LINK, 4, 0, 0, "", NULL, M(KW_M_NET_UP) },
};
static const struct kw_view view_net = SECTION("net", KW_VROW_NETIF, net_cols, NO_ROW_IF);

/* ------------------------------------------------------------- host */
static const struct kw_vcol host_cpu_cols[] = {
	LINE("%.0f cpus", KW_VC_GAUGE, "", KW_M_H_CPUS),
	LINE("user %.1f%%", KW_VC_SHARE, "%", KW_M_H_CPU_USER),
	LINE("nice %.1f%%", KW_VC_SHARE, "%", KW_M_H_CPU_NICE),
	LINE("system %.1f%%", KW_VC_SHARE, "%", KW_M_H_CPU_SYSTEM),
	LINE("idle %.1f%%", KW_VC_SHARE, "%", KW_M_H_CPU_IDLE),
	LINE("iowait %.1f%%", KW_VC_SHARE, "%", KW_M_H_CPU_IOWAIT),
	LINE("irq %.1f%%", KW_VC_SHARE, "%", KW_M_H_CPU_IRQ),
	LINE("softirq %.1f%%", KW_VC_SHARE, "%", KW_M_H_CPU_SOFTIRQ),
	LINE("steal %.1f%%", KW_VC_SHARE, "%", KW_M_H_CPU_STEAL),
};
static const struct kw_vcol host_mem_cols[] = {
	LINE("total %.0f MiB", KW_VC_GAUGE, "MiB", KW_M_H_MEM_TOTAL),
	LINE("free %.0f MiB", KW_VC_GAUGE, "MiB", KW_M_H_MEM_FREE),
	LINE("available %.0f MiB", KW_VC_GAUGE, "MiB", KW_M_H_MEM_AVAIL),
	LINE("cached %.0f MiB", KW_VC_GAUGE, "MiB", KW_M_H_MEM_CACHED),
	LINE("swap free %.0f/%.0f MiB", KW_VC_PAIR, "MiB", KW_M_H_MEM_SWAPF, KW_M_H_MEM_SWAPT),
};
static const struct kw_vcol host_psi_cols[] = {
	LINE("cpu %.2f%%", KW_VC_GAUGE, "%", KW_M_H_PSI_CPU_SOME),
	LINE("memory %.2f/%.2f%%", KW_VC_PAIR, "%", KW_M_H_PSI_MEM_SOME, KW_M_H_PSI_MEM_FULL),
	LINE("io %.2f/%.2f%% (some/full, avg10)", KW_VC_PAIR, "%", KW_M_H_PSI_IO_SOME, KW_M_H_PSI_IO_FULL),
};
static const struct kw_vcol host_disk_cols[] = {
	ATTR("DEVICE", "device", KW_VC_INST, 12, KW_VC_LEFT),
	RATE("R_IOPS", "r_iops", 8, 1, "/s", KW_M_H_DISK_READS),
	RATE("W_IOPS", "w_iops", 8, 1, "/s", KW_M_H_DISK_WRITES),
	RATE("R_KiB/s", "read", 10, 1, "KiB/s", KW_M_H_DISK_RBYTES),
	RATE("W_KiB/s", "write", 10, 1, "KiB/s", KW_M_H_DISK_WBYTES),
	/* latency = time spent / requests completed, over the interval */
	PER("R_LAT_ms", "r_lat", 9, 2, "ms", KW_M_H_DISK_RTIME, KW_M_H_DISK_READS),
	PER("W_LAT_ms", "w_lat", 9, 2, "ms", KW_M_H_DISK_WTIME, KW_M_H_DISK_WRITES),
	RATE("UTIL%", "util", 6, 1, "%", KW_M_H_DISK_IOTIME),
};
static const struct kw_vcol host_net_cols[] = {
	ATTR("IFACE", "iface", KW_VC_INST, 15, KW_VC_LEFT),
	RATE("RX_kbit/s", "rx", 10, 1, "kbit/s", KW_M_H_NET_RX_BYTES),
	RATE("TX_kbit/s", "tx", 10, 1, "kbit/s", KW_M_H_NET_TX_BYTES),
	RATE("RX_pkt/s", "rx_pkts", 9, 1, "/s", KW_M_H_NET_RX_PKTS),
	RATE("TX_pkt/s", "tx_pkts", 9, 1, "/s", KW_M_H_NET_TX_PKTS),
	RATE("RX_err", "rx_errs", 7, 1, "/s", KW_M_H_NET_RX_ERRS),
	RATE("TX_err", "tx_errs", 7, 1, "/s", KW_M_H_NET_TX_ERRS),
	{ "LINK", "link", KW_VC_LINK, 4, 0, 0, "", NULL, M(KW_M_H_NET_UP) },
};
#define HOST_CPU_STATES KW_M_H_CPU_USER, KW_M_H_CPU_NICE, KW_M_H_CPU_SYSTEM, KW_M_H_CPU_IDLE, KW_M_H_CPU_IOWAIT, \
	KW_M_H_CPU_IRQ, KW_M_H_CPU_SOFTIRQ, KW_M_H_CPU_STEAL
static const struct kw_view host_net = SECTION("", KW_VROW_HOST_INST, host_net_cols, ROW_IF(KW_M_H_NET_RX_BYTES));
static const struct kw_view host_disk = SECTION("", KW_VROW_HOST_INST, host_disk_cols, ROW_IF(KW_M_H_DISK_READS),
						.next = &host_net);
static const struct kw_view host_psi = SECTION("", KW_VROW_HOST, host_psi_cols, NO_ROW_IF, .style = KW_VSTYLE_LINE,
					       .title = "host psi", .next = &host_disk);
static const struct kw_view host_mem = SECTION("", KW_VROW_HOST, host_mem_cols, NO_ROW_IF, .style = KW_VSTYLE_LINE,
					       .title = "host mem", .next = &host_psi);
static const struct kw_view view_host = SECTION("host", KW_VROW_HOST, host_cpu_cols, NO_ROW_IF,
						.style = KW_VSTYLE_LINE, .title = "host cpu",
						.share = { HOST_CPU_STATES, -1 }, .next = &host_mem);

/* ------------------------------------------------------------- list */
static const struct kw_vcol list_cols[] = {
	NAME_COL,
	PID_COL,
	ATTR("UUID", "uuid", KW_VC_UUID, 36, KW_VC_LEFT),
	ATTR("PVEID", "pve_id", KW_VC_PVEID, 6, 0),
	ATTR("VCPU", "vcpus", KW_VC_VCPUS, 5, 0),
	ATTR("THREADS", "threads", KW_VC_THREADS, 7, 0),
	ATTR("VMM", "vmm", KW_VC_VMM, 18, KW_VC_LEFT),
	ATTR("FOUND", "found", KW_VC_FOUND, 14, KW_VC_LEFT),
	ATTR("NETIFS", "netifs", KW_VC_NETIFS, 0, KW_VC_LEFT),
};
static const struct kw_view view_list = SECTION("list", KW_VROW_VM, list_cols, NO_ROW_IF);

/* -------------------------------------------------------------- all */
static const struct kw_vcol all_cols[] = {
	NAME_COL,
	ATTR("METRIC", "metric", KW_VC_S_METRIC, 28, KW_VC_LEFT),
	ATTR("INSTANCE", "instance", KW_VC_S_INST, 16, KW_VC_LEFT),
	ATTR("VALUE", "value", KW_VC_S_VALUE, 20, 0),
	{ "RATE/s", "rate", KW_VC_S_RATE, 14, 1, 0, "", NULL, NOM },
	ATTR("UNIT", "unit", KW_VC_S_UNIT, 0, KW_VC_LEFT),
};
static const struct kw_view view_all = SECTION("all", KW_VROW_SAMPLE, all_cols, NO_ROW_IF);

/* -------------------------------------------------------------- mem */
static const struct kw_vcol mem_cols[] = {
	NAME_COL,
	PID_COL,
	ATTR("STATE", "state", KW_VC_STATE, 9, KW_VC_LEFT),
	ATTR("DOMID", "dom_id", KW_VC_DOMID, 5, 0),
	GAUGE_NEED("MAX_MiB", "max", 9, 1, "MiB", KW_M_DOM_MEM_MAX),
	GAUGE_NEED("CUR_MiB", "current", 9, 1, "MiB", KW_M_DOM_MEM_CUR),
	GAUGE_NEED("RSS_MiB", "rss", 9, 1, "MiB", KW_M_MEM_RSS),
	GAUGE_NEED("BRSS_MiB", "balloon_rss", 9, 1, "MiB", KW_M_BAL_RSS),
	GAUGE_NEED("USABLE", "usable", 9, 1, "MiB", KW_M_BAL_USABLE),
	GAUGE_NEED("UNUSED", "unused", 9, 1, "MiB", KW_M_BAL_UNUSED),
	GAUGE_NEED("AVAIL", "available", 9, 1, "MiB", KW_M_BAL_AVAIL),
	RATE("SWAP_KiB/s", "swap", 9, 1, "KiB/s", KW_M_BAL_SWAP_IN, KW_M_BAL_SWAP_OUT),
	RATE("MAJFL/s", "major_faults", 8, 1, "/s", KW_M_BAL_MAJFLT),
};
static const struct kw_view view_mem = SECTION("mem", KW_VROW_VM, mem_cols, NO_ROW_IF);

/* -------------------------------------------------------------- kvm */
/* Every cumulative KVM binary stat (vCPU stats summed over vCPUs) that
 * moved in the interval, as a rate. */
static const struct kw_vcol kvm_cols[] = {
	NAME_COL,
	PID_COL,
	ATTR("KVM_STAT", "stat", KW_VC_S_INST, 28, KW_VC_LEFT),
	{ "RATE/s", "rate", KW_VC_S_RATE, 14, 1, 0, "", NULL, NOM },
	ATTR("TOTAL", "total", KW_VC_S_VALUE, 20, 0),
	ATTR("UNIT", "unit", KW_VC_S_UNIT, 0, KW_VC_LEFT),
};
static const struct kw_view view_kvm = SECTION("kvm", KW_VROW_SAMPLE, kvm_cols, ROW_IF(KW_M_KVM_VCPU, KW_M_KVM_VM),
					       .moving = 1);

/* ------------------------------------------------------------- disk */
/* Per VM and disk (libvirt or QMP rows): IOPS, throughput, latency (time
 * spent / requests completed over the interval), failed requests, capacity. */
static const struct kw_vcol disk_cols[] = {
	NAME_COL,
	PID_COL,
	ATTR("DISK", "disk", KW_VC_INST, 16, KW_VC_LEFT),
	RATE("R_IOPS", "r_iops", 8, 1, "/s", KW_M_DISK_RD_REQS),
	RATE("W_IOPS", "w_iops", 8, 1, "/s", KW_M_DISK_WR_REQS),
	RATE("R_KiB/s", "read", 10, 1, "KiB/s", KW_M_DISK_RD_BYTES),
	RATE("W_KiB/s", "write", 10, 1, "KiB/s", KW_M_DISK_WR_BYTES),
	PER("R_LAT_ms", "r_lat", 9, 2, "ms", KW_M_DISK_RD_TIME, KW_M_DISK_RD_REQS),
	PER("W_LAT_ms", "w_lat", 9, 2, "ms", KW_M_DISK_WR_TIME, KW_M_DISK_WR_REQS),
	RATE("FL/s", "flushes", 7, 1, "/s", KW_M_DISK_FL_REQS),
	RATE("FAIL/s", "failed", 7, 1, "/s", KW_M_DISK_RD_FAILED, KW_M_DISK_WR_FAILED, KW_M_DISK_FL_FAILED),
	GAUGE_NEED("CAP_MiB", "capacity", 10, 1, "MiB", KW_M_DISK_CAPACITY),
};
/* a disk with neither requests nor a capacity this cycle has no data */
static const struct kw_view view_disk = SECTION("disk", KW_VROW_DISK, disk_cols,
						ROW_IF(KW_M_DISK_RD_REQS, KW_M_DISK_CAPACITY));

/* -------------------------------------------------------------- top */
/* The interactive screen's VM list (kvmwatch top); KW_VC_HIDE columns are
 * off until its field selector turns them on. */
static const struct kw_vcol top_cols[] = {
	NAME_COL,
	ATTR("PVEID", "pve_id", KW_VC_PVEID, 5, 0),
	ATTR("PID", "pid", KW_VC_PID, 8, KW_VC_HIDE),
	ATTR("STATE", "state", KW_VC_STATE, 8, KW_VC_LEFT),
	VCPUS_COL,
	VM_CPU_COLS(KW_VC_HIDE),
	VM_FAULTS_COL(7),
	VM_IO_COLS,
	{ "DISK_R/s", "disk_read", KW_VC_RATE, 9, 1, KW_VC_HIDE, "KiB/s", NULL, M(KW_M_DISK_RD_BYTES) },
	{ "DISK_W/s", "disk_write", KW_VC_RATE, 9, 1, KW_VC_HIDE, "KiB/s", NULL, M(KW_M_DISK_WR_BYTES) },
	ATTR("UUID", "uuid", KW_VC_UUID, 36, KW_VC_LEFT | KW_VC_HIDE),
};
static const struct kw_view view_top = SECTION("top", KW_VROW_VM, top_cols, NO_ROW_IF);

/* The screen's drill-down: one VM's threads (vCPUs; the others as one row
 * in the VM's own columns) and its migration job. */
static const struct kw_vcol thread_cols[] = {
	ATTR("TID", "tid", KW_VC_TID, 8, 0),
	ATTR("VCPU", "vcpu", KW_VC_VCPU, 5, 0),
	RATE("RUN%", "run", 7, 1, "%", KW_M_VCPU_RUN),
	RATE("STEAL%", "steal", 7, 1, "%", KW_M_VCPU_DELAY),
};
static const struct kw_view view_threads = SECTION("threads", KW_VROW_VCPU, thread_cols, NO_ROW_IF);
static const struct kw_vcol other_cols[] = {
	RATE("OTHER%", "other", 7, 1, "%", KW_M_CPU_OTHER),
	RATE("OTHER_STEAL%", "other_steal", 12, 1, "%", KW_M_STEAL_OTHER),
	GAUGE("THREADS", "threads", 7, 0, "", KW_M_THREADS),
};
static const struct kw_view view_other_threads = SECTION("other_threads", KW_VROW_VM, other_cols, NO_ROW_IF);
static const struct kw_vcol mig_cols[] = {
	GAUGE("TYPE", "type", 4, 0, "", KW_M_JOB_TYPE),
	GAUGE("ELAPSED_s", "elapsed", 9, 1, "s", KW_M_JOB_ELAPSED),
	GAUGE("TOTAL_MiB", "total", 9, 1, "MiB", KW_M_JOB_DATA_TOTAL),
	GAUGE("DONE_MiB", "processed", 9, 1, "MiB", KW_M_JOB_DATA_PROC),
	GAUGE("LEFT_MiB", "remaining", 9, 1, "MiB", KW_M_JOB_DATA_REM),
	GAUGE("DIRTY_pg/s", "dirty_rate", 10, 0, "pages/s", KW_M_JOB_DIRTY_RATE),
	GAUGE("ITER", "iteration", 5, 0, "", KW_M_JOB_ITERATION),
	GAUGE("DOWNTIME_ms", "downtime", 11, 0, "ms", KW_M_JOB_DOWNTIME),
};
static const struct kw_view view_migration = SECTION("migration", KW_VROW_VM, mig_cols, ROW_IF(KW_M_JOB_TYPE));
/* Exit reasons counted by the eBPF aggregates (bpf source, --bpf exits). */
static const struct kw_vcol exits_cols[] = {
	ATTR("EXITS", "metric", KW_VC_S_METRIC, 24, KW_VC_LEFT),
	ATTR("REASON", "reason", KW_VC_S_INST, 28, KW_VC_LEFT),
	{ "RATE/s", "rate", KW_VC_S_RATE, 12, 1, 0, "", NULL, NOM },
	ATTR("TOTAL", "total", KW_VC_S_VALUE, 14, 0),
};
static const struct kw_view view_exits = SECTION("exits", KW_VROW_SAMPLE, exits_cols,
						 ROW_IF(KW_M_BPF_EXITS, KW_M_BPF_UEXITS));

const struct kw_view *const kw_views[] = {
	&view_summary, &view_vcpu, &view_net, &view_host, &view_list, &view_all, &view_mem, &view_kvm, &view_disk,
	&view_top, &view_threads, &view_other_threads, &view_migration, &view_exits,
	NULL,
};
