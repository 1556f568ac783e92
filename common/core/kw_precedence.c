// SPDX-License-Identifier: GPL-2.0
/* kw_precedence.c - which source wins a row that more than one fills.
 *
 * Most rows have one source (the row's own, metrics*.def).  These are
 * filled by several: the first source listed wins, whatever order the
 * sources run in; a source not listed never replaces the row.  Rows not
 * listed: the row's own source first, any other after it. */
#include "core/kw_metrics.h"
#include "util/kw_util.h"

#include <pthread.h>
#include <string.h>

#define P(...) { __VA_ARGS__, KW_SRC__N }

static const struct {
	const char *rows;              /* a row name, or "prefix.*" */
	uint8_t order[KW_SRC__N + 1];  /* best first */
} shared[] = {
	/* the tap's counters: /proc/net/dev, else libvirt's interface stats */
	{ "net.*", P(KW_SRC_PROC, KW_SRC_LIBVIRT) },
	/* the VMM process's CPU time and vCPU run delay: /proc, else libvirt */
	{ "cpu.user", P(KW_SRC_PROC, KW_SRC_LIBVIRT) },
	{ "cpu.system", P(KW_SRC_PROC, KW_SRC_LIBVIRT) },
	{ "vcpu.delay", P(KW_SRC_PROC, KW_SRC_LIBVIRT) },
	{ "vm.vcpus", P(KW_SRC_PROC, KW_SRC_LIBVIRT) },
	/* disks and memory: libvirt (it owns the monitor), else QMP */
	{ "disk.*", P(KW_SRC_LIBVIRT, KW_SRC_QMP) },
	{ "mem.max", P(KW_SRC_LIBVIRT, KW_SRC_QMP) },
	{ "mem.current", P(KW_SRC_LIBVIRT, KW_SRC_QMP) },
	/* KVM's statistics: the binary stats fds, else QEMU's query-stats
	 * through libvirt, else through QMP */
	{ "kvm.*", P(KW_SRC_KVMSTAT, KW_SRC_LIBVIRT, KW_SRC_QMP) },
};

static uint8_t rank[KW_METRIC__N][KW_SRC__N];
static pthread_once_t rank_once = PTHREAD_ONCE_INIT;

static int matches(const char *pattern, const char *name)
{
	size_t n = strlen(pattern);

	if (n >= 2 && !strcmp(pattern + n - 2, ".*"))
		return !strncmp(pattern, name, n - 1);
	return !strcmp(pattern, name);
}

static void build(void)
{
	for (int m = 0; m < KW_METRIC__N; m++) {
		size_t i;

		for (int s = 0; s < KW_SRC__N; s++)
			rank[m][s] = s == kw_metrics[m].source ? 0 : 1;
		for (i = 0; i < KW_ARRAY_SIZE(shared); i++)
			if (matches(shared[i].rows, kw_metrics[m].name))
				break;
		if (i == KW_ARRAY_SIZE(shared))
			continue;
		for (int s = 0; s < KW_SRC__N; s++)
			rank[m][s] = 255;
		for (int k = 0; shared[i].order[k] != KW_SRC__N; k++)
			rank[m][shared[i].order[k]] = (uint8_t)k;
	}
}

int kw_metric_rank(int metric, int source)
{
	if (metric < 0 || metric >= KW_METRIC__N || source < 0 || source >= KW_SRC__N)
		return 255;
	pthread_once(&rank_once, build);
	return rank[metric][source];
}

int kw_ss_put_u64(struct kw_sampleset *ss, int source, int metric, const char *inst, uint64_t v)
{
	const struct kw_sample *s = kw_ss_get(ss, metric, inst);
	int r;

	if (s) {
		int by = s->src < KW_SRC__N ? s->src : kw_metrics[metric].source;

		if (kw_metric_rank(metric, by) < kw_metric_rank(metric, source))
			return 0;
	}
	if (kw_metric_rank(metric, source) == 255 && s)
		return 0;
	r = kw_ss_set_u64(ss, metric, inst, v);
	if (!r)
		((struct kw_sample *)kw_ss_get(ss, metric, inst))->src = (uint8_t)source;
	return r;
}
