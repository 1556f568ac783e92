// SPDX-License-Identifier: GPL-2.0
/* nd_conf.h - kvmwatch.conf, the netdata plugin's INI configuration (same
 * syntax as netdata's own ebpf.d.conf: [section], "key = value", '#' comments). */
#ifndef ND_CONF_H
#define ND_CONF_H

#include <limits.h>
#include <stddef.h>

struct nd_conf {
	char path[PATH_MAX];    /* file read, "" when none was found */
	int update_every;       /* [global] update every; 0 = not set */
	int host_charts;        /* [global] host charts = auto|yes|no: ND_HOST_CHARTS_* */
	unsigned sources;       /* [sources] procfs/libvirt/kvmstat/bpf, 1 << enum kw_source_id */
	char libvirt_uri[256];  /* [sources] libvirt uri */
	unsigned bpf_features;  /* [bpf] keys: KW_BPF_* (kw_feature_from_name) */
	char vms[4096];         /* [filter] vms: netdata simple pattern (default "*") */
	int errors;             /* problems reported on stderr */
};

/* [global] host charts: the kvm_host.* charts netdata's proc.plugin also
 * draws (CPU, memory, pressure, disks, network).  kvm_host.vms (VMs, vCPUs,
 * host CPUs) is charted in every mode. */
enum {
	ND_HOST_CHARTS_NO = 0,
	ND_HOST_CHARTS_YES = 1,
	ND_HOST_CHARTS_AUTO = 2, /* default: no when netdata runs proc.plugin */
};

void nd_conf_defaults(struct nd_conf *cf);
/* Read one file.  A missing file is not an error (returns -ENOENT, nothing
 * reported); every other problem is reported on stderr with file:line and
 * skipped (unknown section/key: ignored; bad value: the default stays).
 * Returns 0 or -errno when the file could not be read at all. */
int nd_conf_load(struct nd_conf *cf, const char *path);
/* Find and read kvmwatch.conf: $NETDATA_USER_CONFIG_DIR (default
 * /etc/netdata), then $NETDATA_STOCK_CONFIG_DIR (default
 * /usr/lib/netdata/conf.d).  The first file that exists wins. */
int nd_conf_find_and_load(struct nd_conf *cf);

/* Does the netdata that runs us run its proc.plugin?  Reads [plugins] proc
 * of netdata.conf in $NETDATA_USER_CONFIG_DIR (default /etc/netdata), with
 * the caller's rights: 0 when it says no/false/off/0, else 1 (also when
 * there is no netdata.conf: proc.plugin is on by default).  path, if not
 * NULL, gets the file looked at. */
int nd_netdata_runs_proc_plugin(char *path, size_t len);

#endif
