// SPDX-License-Identifier: GPL-2.0
/* kwcd_doc.c - prints docs/collectd-metrics.md from the tables: how every
 * metric-table row is dispatched natively (plugin kvmwatch) and what
 * Compat "virt" dispatches (plugin virt).  `make collectd-doc` rewrites the
 * file; a test checks the committed one is what this prints. */
#include "kwcd_priv.h"

#include <stdio.h>
#include <string.h>

/* The unit of a dispatched value: the row's unit divided by div. */
static const char *unit_of(const char *unit, uint32_t div)
{
	static const struct {
		const char *unit;
		uint32_t div;
		const char *shown;
	} t[] = {
		{ "ns", 1, "ns" }, { "ns", 1000, "µs" }, { "ns", 1000000, "ms" }, { "ns", 10000000, "jiffies (1/100 s)" }, { "ns", 1000000000, "s" },
		{ "us", 1, "µs" }, { "us", 1000, "ms" }, { "ms", 1, "ms" }, { "ms", 1000, "s" },
		{ "bytes", 1, "bytes" }, { "bytes", 1024, "KiB" },
	};
	size_t i;

	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(unit, t[i].unit) && div == t[i].div)
			return t[i].shown;
	return div == 1 ? unit : "?";
}

static const char *ds_name(const char *type, int ds, struct kwcd_typesdb *db)
{
	static struct kwcd_type t;

	if (kwcd_typesdb_lookup(type, &t, db) || ds >= (int)t.n)
		return "?";
	return t.ds[ds].name;
}

int main(int argc, char **argv)
{
	struct kwcd_typesdb db = { 0 };
	char err[256];
	size_t i;

	if (argc != 2 || kwcd_typesdb_load(&db, argv[1], err, sizeof(err))) {
		fprintf(stderr, "usage: %s TYPES_DB (%s)\n", argv[0], argc == 2 ? err : "no file");
		return 2;
	}
	printf("# collectd identifiers of kvmwatch.so\n\n"
	       "Generated from the metric table (common/core/metrics*.def, the CD() column) and\n"
	       "collectd-plugin/kwcd_virt.c by `make collectd-doc`; do not edit.\n\n"
	       "## Native mode (plugin `kvmwatch`)\n\n"
	       "Host totals are `<Hostname>/kvmwatch-host/...`; a VM is `<host>/kvmwatch-<vm>/...`\n"
	       "(HostnameFormat, PluginInstanceFormat).  `%%s` is the instance (vCPU, device, key).\n"
	       "Types shared with collectd's own plugins carry their units: `ps_cputime` in µs\n"
	       "and `ps_pagefaults` of the host process (processes), `cpu` in jiffies (cpu),\n"
	       "`disk_time` in ms (disk), `virt_cpu_total`/`virt_vcpu` in ns (virt).\n\n"
	       "| metric | collectd type-type instance | data source | unit |\n|---|---|---|---|\n");
	for (i = 0; i < KW_METRIC__N; i++) {
		const struct kw_metric_def *m = &kw_metrics[i];

		if (!m->cd.type[0])
			continue;
		printf("| `%s` | `%s%s%s` | %s | %s |\n", m->name, m->cd.type, m->cd.ti[0] ? "-" : "", m->cd.ti,
		       ds_name(m->cd.type, m->cd.ds, &db), unit_of(m->unit, m->cd.div));
	}
	printf("\nNot dispatched natively:");
	for (i = 0; i < KW_METRIC__N; i++)
		if (!kw_metrics[i].cd.type[0])
			printf(" `%s`", kw_metrics[i].name);
	printf("\n\n## Compat \"virt\" (plugin `virt`)\n\n"
	       "What collectd 5.12's virt plugin dispatches, from the same libvirt data; the\n"
	       "host is `<domain name>` by default (HostnameFormat), `%%s` the vCPU, disk\n"
	       "(BlockDeviceFormat) or interface (InterfaceFormat).  Also\n"
	       "`percent-virt_cpu_total` (ExtraStats cpu_util, from `dom.cpu_time`) and the\n"
	       "`domain_state` notifications.\n\n"
	       "| virt type-type instance | data source | from | ExtraStats | unit |\n|---|---|---|---|---|\n");
	for (i = 0; i < kwcd_virt_nmaps(); i++) {
		struct kwcd_virt_map_info v;
		const struct kw_metric_def *m;

		kwcd_virt_map_info(i, &v);
		m = &kw_metrics[v.metric];
		printf("| `%s%s%s` | %s | `%s` | %s | %s |\n", v.type, v.ti ? "-" : "", v.ti ? v.ti : "",
		       ds_name(v.type, v.ds, &db), m->name, v.extra[0] ? v.extra : "always",
		       v.div == 1000 && !strcmp(m->unit, "ns") && !strcmp(v.type, "total_time_in_ms")
			       ? "µs (virt's ns / 1000)"
		       : v.div == 1024 && !strcmp(m->unit, "bytes") ? "KiB"
								   : unit_of(m->unit, v.div));
	}
	kwcd_typesdb_free(&db);
	return 0;
}
