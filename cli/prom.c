// SPDX-License-Identifier: GPL-2.0
/* prom.c - one cycle in the Prometheus text exposition format (0.0.4):
 * every row of the metric table, named by the Prometheus conventions from
 * the row itself (kvmwatch_ + its name, base units seconds and bytes, a
 * ratio for percentages, _total on counters), HELP from its description,
 * labels vm/uuid/pid for a VM and vcpu/interface/device/key for its
 * instance.  Used by `kvmwatch serve` and `kvmwatch -o prometheus`. */
#include "prom.h"
#include "kw_version.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The metric table's units in Prometheus' base units. */
static const struct {
	const char *unit, *suffix;
	double scale;
} units[] = {
	{ "ns", "seconds", 1e-9 }, { "us", "seconds", 1e-6 }, { "ms", "seconds", 1e-3 },
	{ "bytes", "bytes", 1 }, { "percent", "ratio", 0.01 }, { "pages", "pages", 1 },
	{ "pages/s", "pages_per_second", 1 }, { "count", "", 1 },
};

static const char *inst_label(int scope)
{
	switch (scope) {
	case KW_SCOPE_VCPU: return "vcpu";
	case KW_SCOPE_NETIF: case KW_SCOPE_HOST_NET: return "interface";
	case KW_SCOPE_DISK: case KW_SCOPE_HOST_DISK: return "device";
	case KW_SCOPE_KEY: return "key";
	default: return NULL;
	}
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && !strcmp(s + a - b, suffix);
}

/* The family of a sample: its name and the factor to its base unit. */
static void family(int metric, const char *inst, char *out, size_t len, double *scale)
{
	const struct kw_metric_def *d = &kw_metrics[metric];
	const char *unit = kw_metric_unit(metric, inst), *suffix = "";
	size_t o, i;

	*scale = 1;
	for (i = 0; i < KW_ARRAY_SIZE(units); i++)
		if (!strcmp(units[i].unit, unit)) {
			suffix = units[i].suffix;
			*scale = units[i].scale;
		}
	o = (size_t)snprintf(out, len, "kvmwatch_");
	for (const char *p = d->name; *p && o + 1 < len; p++)
		out[o++] = isalnum((unsigned char)*p) ? *p : '_';
	out[o] = '\0';
	/* the type and _total are Prometheus' to add: "cpu.other_total" is
	 * kvmwatch_cpu_other_seconds_total, "kvm.vcpu_gauge" kvmwatch_kvm_vcpu */
	if (ends_with(out, "_gauge"))
		out[o -= 6] = '\0';
	else if (d->kind == KW_COUNTER && ends_with(out, "_total"))
		out[o -= 6] = '\0';
	if (*suffix) {
		char want[64];

		snprintf(want, sizeof(want), "_%s", suffix);
		if (!ends_with(out, want))
			snprintf(out + o, len - o, "%s", want);
	}
	if (d->kind == KW_COUNTER && !ends_with(out, "_total"))
		snprintf(out + strlen(out), len - strlen(out), "_total");
}

/* A label value: \, " and newline escaped; invalid UTF-8 as '?'. */
static void label_value(FILE *f, const char *s)
{
	char safe[4 * KW_NAME_MAX + 1];

	kw_text_safe(safe, sizeof(safe), s, KW_NAME_MAX, 0);
	for (const char *p = safe; *p; p++) {
		if (*p == '\\' || *p == '"')
			fputc('\\', f);
		fputc(*p, f);
	}
}

static void help_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

/* Rows whose quantity the libvirt exporters (kumina's, which Debian ships
 * as prometheus-libvirt-exporter) export too: also under their names and
 * labels (domain, target_device), so their dashboards keep working. */
static const struct {
	int metric;
	const char *name;
} exporter[] = {
	{ KW_M_DOM_CPU_TIME, "libvirt_domain_info_cpu_time_seconds_total" },
	{ KW_M_DOM_MEM_MAX, "libvirt_domain_info_maximum_memory_bytes" },
	{ KW_M_DOM_MEM_CUR, "libvirt_domain_info_memory_usage_bytes" },
	{ KW_M_VCPUS, "libvirt_domain_info_virtual_cpus" },
	{ KW_M_DISK_RD_BYTES, "libvirt_domain_block_stats_read_bytes_total" },
	{ KW_M_DISK_RD_REQS, "libvirt_domain_block_stats_read_requests_total" },
	{ KW_M_DISK_WR_BYTES, "libvirt_domain_block_stats_write_bytes_total" },
	{ KW_M_DISK_WR_REQS, "libvirt_domain_block_stats_write_requests_total" },
	{ KW_M_NET_RX_BYTES, "libvirt_domain_interface_stats_receive_bytes_total" },
	{ KW_M_NET_RX_PKTS, "libvirt_domain_interface_stats_receive_packets_total" },
	{ KW_M_NET_RX_ERRS, "libvirt_domain_interface_stats_receive_errors_total" },
	{ KW_M_NET_RX_DROP, "libvirt_domain_interface_stats_receive_drops_total" },
	{ KW_M_NET_TX_BYTES, "libvirt_domain_interface_stats_transmit_bytes_total" },
	{ KW_M_NET_TX_PKTS, "libvirt_domain_interface_stats_transmit_packets_total" },
	{ KW_M_NET_TX_ERRS, "libvirt_domain_interface_stats_transmit_errors_total" },
	{ KW_M_NET_TX_DROP, "libvirt_domain_interface_stats_transmit_drops_total" },
};

/* One line to print: its family sorts the exposition. */
struct line {
	char fam[160];
	int metric;
	int exporter;               /* under a libvirt exporter's name and labels */
	const struct kw_vm *vm;     /* NULL: the host */
	const struct kw_sample *s;
	double scale;
	size_t order;
};

static int line_cmp(const void *pa, const void *pb)
{
	const struct line *a = pa, *b = pb;
	int c = strcmp(a->fam, b->fam);

	return c ? c : (a->order > b->order) - (a->order < b->order);
}

static int add(struct line **v, size_t *n, size_t *cap, const struct kw_vm *vm, const struct kw_sample *s)
{
	struct line *l;

	if (kw_grow((void **)v, cap, *n, sizeof(**v)))
		return -ENOMEM;
	l = &(*v)[*n];
	memset(l, 0, sizeof(*l));
	family(s->metric, s->inst, l->fam, sizeof(l->fam), &l->scale);
	l->metric = s->metric;
	l->vm = vm;
	l->s = s;
	l->order = *n;
	(*n)++;
	for (size_t i = 0; vm && i < KW_ARRAY_SIZE(exporter); i++) {
		if (exporter[i].metric != s->metric)
			continue;
		if (kw_grow((void **)v, cap, *n, sizeof(**v)))
			return -ENOMEM;
		l = &(*v)[*n];
		*l = (*v)[*n - 1];
		kw_strlcpy(l->fam, exporter[i].name, sizeof(l->fam));
		l->exporter = 1;
		l->order = *n;
		(*n)++;
	}
	return 0;
}

static void labels(FILE *f, const struct line *l)
{
	const char *il = inst_label(kw_metrics[l->metric].scope);
	int has_inst = il && l->s->inst[0];

	if (l->exporter) {
		fputs("{domain=\"", f);
		label_value(f, l->vm->name);
		fputc('"', f);
		if (has_inst) {
			fputs(",target_device=\"", f);
			label_value(f, l->s->inst);
			fputc('"', f);
		}
		fputc('}', f);
		return;
	}
	if (!l->vm && !has_inst)
		return;
	fputc('{', f);
	if (l->vm) {
		fputs("vm=\"", f);
		label_value(f, l->vm->name);
		fputc('"', f);
		if (l->vm->uuid[0]) {
			fputs(",uuid=\"", f);
			label_value(f, l->vm->uuid);
			fputc('"', f);
		}
		fprintf(f, ",pid=\"%d\"", l->vm->pid);
	}
	if (has_inst) {
		fprintf(f, "%s%s=\"", l->vm ? "," : "", il);
		label_value(f, l->s->inst);
		fputc('"', f);
	}
	fputc('}', f);
}

static void value(FILE *f, const struct line *l)
{
	double v = kw_sample_value(l->s) * l->scale;
	unsigned long long u = l->s->v.u;

	if (l->s->is_double && !isfinite(v))
		fputs(" NaN\n", f);
	else if (l->s->is_double)
		fprintf(f, " %.9g\n", v);
	else if (l->scale == 1)
		fprintf(f, " %llu\n", u);
	else if (l->scale == 1e-9) /* integral ns, us, ms as exact decimal seconds */
		fprintf(f, " %llu.%09llu\n", u / 1000000000ull, u % 1000000000ull);
	else if (l->scale == 1e-6)
		fprintf(f, " %llu.%06llu\n", u / 1000000ull, u % 1000000ull);
	else if (l->scale == 1e-3)
		fprintf(f, " %llu.%03llu\n", u / 1000ull, u % 1000ull);
	else
		fprintf(f, " %.9g\n", v);
}

int cli_prom_write(FILE *f, const struct kw_vmtable *vms, const struct kw_sampleset *host,
		   const struct cli_src *src, double cycle_s)
{
	struct line *v = NULL;
	size_t n = 0, cap = 0, i;
	const char *last = "";

	for (i = 0; i < host->n; i++)
		if (add(&v, &n, &cap, NULL, &host->s[i])) {
			free(v);
			return -ENOMEM;
		}
	for (i = 0; i < vms->n; i++)
		for (size_t k = 0; k < vms->vms[i].stats.n; k++)
			if (add(&v, &n, &cap, &vms->vms[i], &vms->vms[i].stats.s[k])) {
				free(v);
				return -ENOMEM;
			}
	qsort(v, n, sizeof(*v), line_cmp);

	fputs("# HELP kvmwatch_build_info kvmwatch's version.\n# TYPE kvmwatch_build_info gauge\n", f);
	fprintf(f, "kvmwatch_build_info{version=\"%s\"} 1\n", KW_VERSION);
	if (cycle_s >= 0) {
		fputs("# HELP kvmwatch_collect_duration_seconds How long the newest collection cycle took.\n"
		      "# TYPE kvmwatch_collect_duration_seconds gauge\n", f);
		fprintf(f, "kvmwatch_collect_duration_seconds %.6f\n", cycle_s);
	}
	fputs("# HELP kvmwatch_source_up Whether a source is available (1) or not (0).\n"
	      "# TYPE kvmwatch_source_up gauge\n", f);
	for (int k = 0; k < KW_SRC__N; k++)
		if (src[k].on)
			fprintf(f, "kvmwatch_source_up{source=\"%s\"} %d\n", kw_source_name(k),
				src[k].available && src[k].connected);
	fputs("# HELP kvmwatch_vm_info A VM kvmwatch watches, with its identity.\n# TYPE kvmwatch_vm_info gauge\n", f);
	for (i = 0; i < vms->n; i++) {
		const struct kw_vm *vm = &vms->vms[i];

		fputs("kvmwatch_vm_info{vm=\"", f);
		label_value(f, vm->name);
		fprintf(f, "\",uuid=\"");
		label_value(f, vm->uuid);
		fprintf(f, "\",pid=\"%d\",vmm=\"", vm->pid);
		label_value(f, vm->vmm);
		fputs("\",state=\"", f);
		label_value(f, vm->state);
		fputs("\",pve_id=\"", f);
		if (vm->pve_id >= 0)
			fprintf(f, "%d", vm->pve_id);
		fputs("\"} 1\n", f);
	}
	for (i = 0; i < n; i++) {
		const struct line *l = &v[i];

		if (strcmp(l->fam, last)) {
			fprintf(f, "# HELP %s ", l->fam);
			help_text(f, kw_metrics[l->metric].desc);
			fprintf(f, " (%s%s)\n# TYPE %s %s\n", kw_metrics[l->metric].name,
				l->exporter ? ", as prometheus-libvirt-exporter names it" : "", l->fam,
				kw_metrics[l->metric].kind == KW_COUNTER ? "counter" : "gauge");
			last = l->fam;
		}
		fputs(l->fam, f);
		labels(f, l);
		value(f, l);
	}
	free(v);
	return ferror(f) ? -EIO : 0;
}
