// SPDX-License-Identifier: GPL-2.0
/* kw_libvirt.h - the libvirt source's mapping of libvirt's typed parameters
 * to metric-table samples (exported for tests; the source itself is
 * kw_source_libvirt in kw_collector.h). */
#ifndef KW_LIBVIRT_H
#define KW_LIBVIRT_H

#include <libvirt/libvirt.h>

#include "core/kw_vm.h"

/* Map one virConnectGetAllDomainStats record's parameters (groups state,
 * cpu-total, balloon, vcpu, interface, block) into vm->stats, vm->state,
 * vm->netifs and vm->disks.  Rows that the procfs source also fills (net.*,
 * vcpu.delay, cpu.user/system, vm.vcpus) are only set when absent.  Returns
 * 0 or -ENOMEM. */
int kw_libvirt_map_stats(struct kw_vm *vm, const virTypedParameter *params, int nparams);
/* Map virDomainGetJobStats output (job type and parameters); all: every
 * numeric parameter also as job.param (KW_LV_JOB_PARAMS). */
int kw_libvirt_map_job(struct kw_vm *vm, int type, const virTypedParameter *params, int nparams, int all);
/* Map virDomainMemoryStats output (drivers whose bulk stats lack balloon.*). */
int kw_libvirt_map_memstats(struct kw_vm *vm, const virDomainMemoryStatStruct *st, int n);
/* The domain state and reason virDomainGetState reports after a lifecycle
 * event (virDomainEventType, its detail), as collectd's virt plugin maps
 * them.  Returns the state; *reason gets the reason. */
int kw_libvirt_event_state(int event, int detail, int *reason);

/* ------------------------------------------- domain XML (kw_libvirt_xml.c) */
/* An interface of the domain XML that has a target device. */
struct kw_lv_iface {
	char name[KW_IFNAME_MAX];  /* target dev */
	char mac[18];              /* mac address, "" none */
	int number;                /* 1-based among /domain/devices/interface[target[@dev]] */
};
#define KW_LV_IFACES_MAX 64
/* Interfaces of a domain XML (at most max).  Returns how many, or -EINVAL
 * when the XML does not parse. */
int kw_libvirt_xml_ifaces(const char *xml, struct kw_lv_iface *out, int max);
/* Defaults of collectd's virt plugin for HostnameFormat metadata. */
#define KW_LV_META_NS "http://openstack.org/xmlns/libvirt/nova/1.0"
#define KW_LV_META_XPATH "/instance/name/text()"
/* The one text or attribute node xpath selects in a metadata element (as
 * virDomainGetMetadata returns it) into out.  0, -ENOENT (none or more than
 * one), -EINVAL (no XML, bad XPath). */
int kw_libvirt_meta_value(const char *meta, const char *xpath, char *out, size_t len);

/* "running", "paused", ... for a virDomainState value. */
const char *kw_libvirt_state_name(int state);

#endif
