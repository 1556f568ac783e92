// SPDX-License-Identifier: GPL-2.0
/* nd_chart.h - publishes the collector's VM table and host samples as
 * netdata plugins.d charts, iterating the metric table (kw_charts[] /
 * kw_metrics[]) generically.
 *
 *   VM charts     type "kvm_<vm>" (sanitised, see nd_sanitize_type), id = the
 *                 table's chart id; KW_CH_VM_INST charts get "_<device>".
 *   host charts   type "kvm_host".
 *   dimensions    the metric's dim pattern with "%s" = the sample instance.
 *   labels        vm_name, uuid, pid, vmm, cgroup, cgroup_name (VM charts),
 *                 device (per-device charts); chart variable $vcpus (VM charts).
 *   host charts   those proc.plugin also draws only with host_all.
 *
 * A chart is (re)defined (CHART + every DIMENSION + CLABELs) before the
 * first BEGIN that needs it, and again whenever a new dimension appears (a
 * new vCPU, exit reason, ...): netdata 1.37 kills a plugin that SETs an
 * unknown dimension.  Charts of VMs that went away, and per-device charts
 * whose device went away, are sent again with the "obsolete" option. */
#ifndef ND_CHART_H
#define ND_CHART_H

#include <stdint.h>
#include <stdio.h>

#include "core/kw_collector.h"
#include "nd_cgroup.h"

#define ND_ID_MAX 200       /* netdata 1.37: "type.id" at most 200 characters */
#define ND_VMNAME_MAX 64    /* sanitised VM name part of the type */
#define ND_DEV_MAX 64       /* sanitised device part of a chart id */
#define ND_DIM_MAX 100
#define ND_LABEL_MAX 200

struct nd_dim {
	char id[ND_DIM_MAX + 1];
	uint16_t metric;
	char inst[KW_INST_MAX];     /* the sample's raw instance */
	int64_t val;
	uint64_t val_cycle;
};

struct nd_chart {
	uint16_t chart;             /* enum kw_chart_id */
	char inst[KW_INST_MAX];     /* raw device of an instance chart, "" otherwise */
	char id[ND_ID_MAX + 1];     /* "type.id" */
	struct nd_dim *dims;
	size_t ndims, cap;
	int need_def;
	uint64_t last_ns;           /* collection time of the last BEGIN, 0 = never */
	int vcpus_sent;             /* value of its chart variable $vcpus netdata has, 0 = none */
	uint64_t cycle;             /* last cycle with a value */
};

struct nd_obj {
	char key[64];               /* kw_vm.key, "host" for the host */
	char type[ND_ID_MAX + 1];   /* kvm_<vm> / kvm_host */
	char name[ND_LABEL_MAX + 1];/* label-safe VM name */
	char uuid[KW_UUID_MAX];
	char vmm[32];
	int pid;
	int nvcpus;                 /* the chart variable $vcpus of its charts */
	int is_pve;
	char cgroup[ND_CGROUP_MAX]; /* its cgroup as cgroups.plugin sees it, "" unknown */
	char cgroup_name[ND_CGROUP_MAX]; /* cgroups.plugin's name for it (cgroup_<name>.*) */
	int is_host;
	uint64_t cycle;             /* last cycle the VM was seen */
	struct nd_chart *charts;
	size_t ncharts, cap;
};

struct nd_state {
	FILE *out;
	int update_every;
	int host_all;               /* also the kvm_host.* charts proc.plugin draws */
	const char *procfs;         /* where <pid>/cgroup is read, NULL: no cgroup labels */
	int cgroup_unified;         /* cgroups.plugin reads cgroup v2 (nd_cgroup_unified) */
	uint64_t cycle;
	struct nd_obj host;
	struct nd_obj *vms;
	size_t nvms, cap;
};

/* host_all = 1, procfs = NULL; set them after init. */
void nd_state_init(struct nd_state *st, FILE *out, int update_every);
void nd_state_free(struct nd_state *st);
/* Publish one collection cycle.  Returns 0 or -ENOMEM; write errors show up
 * on st->out (the caller flushes and checks for EPIPE). */
int nd_publish(struct nd_state *st, const struct kw_collector *c);

/* "kvm_" + name: [a-z0-9_-] only (other bytes, runs of them, become one
 * '_'), at most ND_VMNAME_MAX characters of name. */
void nd_sanitize_type(char *out, size_t len, const char *name);
/* Chart id / dimension id characters: [A-Za-z0-9_-], others -> '_'. */
void nd_sanitize_id(char *out, size_t len, const char *s, size_t maxchars);
/* A value that can stand between double quotes on a plugins.d line: valid
 * UTF-8 kept; quotes, backslashes, control characters and invalid bytes
 * -> '_'; at most maxbytes bytes (cut at a character boundary). */
void nd_sanitize_text(char *out, size_t len, const char *s, size_t maxbytes);

#endif
