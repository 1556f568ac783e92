// SPDX-License-Identifier: GPL-2.0
/* kwcd_priv.h - kwcd internals (the plugin state and its table of rows),
 * exposed to its unit tests in collectd-plugin/tests/. */
#ifndef KWCD_PRIV_H
#define KWCD_PRIV_H

#include "kwcd.h"
#include "core/kw_collector.h"
#include "kw_ignorelist.h"

#define KWCD_VIRT_MAPS_MAX 64

/* Compat "virt" (kwcd_virt.c). */
struct kwcd_virt {
	int on;
	int own;                              /* ReportKvmwatchMetrics (default true) */
	unsigned extra;                       /* ExtraStats selectors */
	int bd_source, bd_basename;           /* BlockDeviceFormat source, BlockDeviceFormatBasename */
	int if_fmt;                           /* InterfaceFormat: 0 name, 1 address, 2 number */
	int report_block, report_iface;       /* ReportBlockDevices, ReportNetworkInterfaces */
	int persistent;                       /* PersistentNotification */
	int refresh_s;                        /* RefreshInterval (domain XML re-read) */
	int instances;
	char first_key[32];                   /* the first virt-only option given */
	uint8_t ok[KWCD_VIRT_MAPS_MAX];       /* per mapping: its type is in types.db */
	uint8_t nds[KWCD_VIRT_MAPS_MAX], dstype[KWCD_VIRT_MAPS_MAX];
	uint8_t covered[KW_METRIC__N];        /* rows the mapping dispatches */
	struct kwcd_vprev {
		char key[64];
		uint64_t cpu;                 /* dom.cpu_time at the last read */
		uint64_t cycle;
	} *prev;
	size_t nprev, prevcap;
	size_t prev_next;                     /* where this cycle's next domain probably is in prev */
	uint64_t interval_ns;                 /* collectd's interval (cpu_util) */
	kwcd_notify_fn notify;
	void *notify_arg;
};

struct kwcd {
	struct kw_config cfg;                 /* procfs/sysfs roots, sources, libvirt uri, bpf features */
	struct kw_ignorelist *il_domain, *il_iface, *il_block;
	int ignore_selected;
	int pinst_fmt[KWCD_FMT_MAX], npinst;  /* enum kwcd_field */
	int host_fmt[KWCD_FMT_MAX], nhost;
	char host_instance[KWCD_NAME_MAX];    /* plugin_instance of host totals */
	char hostname[KWCD_NAME_MAX];         /* collectd's Hostname */
	int config_failed;
	int bpf_given;                        /* BPFFeature was set */
	int started;
	struct kwcd_row *rows;                /* per metric */
	struct kw_collector coll;
	/* the identifier each live VM was given: two VMs whose names make the
	 * same identifier get "_<pid>" on the younger, kept while both live */
	struct kwcd_ident {
		char key[64];                 /* kw_vm key */
		char host[KWCD_NAME_MAX], pinst[KWCD_NAME_MAX];
		uint64_t cycle;               /* last cycle it was used */
	} *idents;
	size_t nidents, identcap;
	int host_given, pinst_given;          /* HostnameFormat / PluginInstanceFormat set */
	struct kwcd_virt virt;
};

/* Argument checks shared by the option parsers. */
int kwcd_want(const char *key, const struct kwcd_value *v, int nv, int type, int min, int max, char *err,
	      size_t errlen);
/* Compat "virt": a virt option (0, or -EINVAL with err), or 1 if key is none. */
int kwcd_virt_config(struct kwcd *k, const char *key, const struct kwcd_value *v, int nv, char *err,
		     size_t errlen);
/* Check the virt options and set what the collector must gather.  0 or -1 (err). */
int kwcd_virt_start(struct kwcd *k, kwcd_type_lookup_fn lookup, void *arg, char *err, size_t errlen);
/* Dispatch one collected cycle the way virt would (and kvmwatch's own rows beside). */
int kwcd_virt_read(struct kwcd *k, kwcd_dispatch_fn fn, void *arg, struct kwcd_read_stats *st);
/* host and plugin_instance of a domain as virt's init_value_list makes them. */
void kwcd_virt_ident(const struct kwcd *k, const char *name, const char *uuid, const char *meta, char *host,
		     char *pinst);
size_t kwcd_virt_nmaps(void);
/* Row i of the mapping (docs): 0, or -1 past the end. */
struct kwcd_virt_map_info {
	int metric;
	const char *type, *ti;
	int ds;
	uint32_t div;
	char extra[KWCD_NAME_MAX];   /* ExtraStats selector(s), "" always */
};
int kwcd_virt_map_info(size_t i, struct kwcd_virt_map_info *out);

/* Publish one object's samples (a VM or the host totals) under host and
 * plugin_instance; is_host selects the host-device scopes.  devctx is the
 * "<ctx>:" prefix used for "vm:device" ignorelist matches. */
int kwcd_publish_set(struct kwcd *k, const struct kw_sampleset *ss, const char *host, const char *pinst,
		     const char *devctx, uint64_t time_ns, kwcd_dispatch_fn fn, void *arg,
		     struct kwcd_read_stats *st);

/* BPF feature names accepted by BPFFeature (bit i = 1u << i of cfg.bpf_features). */

#endif
