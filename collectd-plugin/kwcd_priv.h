// SPDX-License-Identifier: GPL-2.0
/* kwcd_priv.h - kwcd internals (the plugin state and its table of rows),
 * exposed to its unit tests in collectd-plugin/tests/. */
#ifndef KWCD_PRIV_H
#define KWCD_PRIV_H

#include "kwcd.h"
#include "core/kw_collector.h"
#include "kw_ignorelist.h"

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
};

/* Publish one object's samples (a VM or the host totals) under host and
 * plugin_instance; is_host selects the host-device scopes.  devctx is the
 * "<ctx>:" prefix used for "vm:device" ignorelist matches. */
int kwcd_publish_set(struct kwcd *k, const struct kw_sampleset *ss, const char *host, const char *pinst,
		     const char *devctx, uint64_t time_ns, kwcd_dispatch_fn fn, void *arg,
		     struct kwcd_read_stats *st);

/* BPF feature names accepted by BPFFeature (bit i = 1u << i of cfg.bpf_features). */

#endif
