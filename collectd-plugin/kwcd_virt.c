// SPDX-License-Identifier: GPL-2.0
/* kwcd_virt.c - Compat "virt": what collectd 5.12's virt plugin (src/virt.c)
 * dispatches, for the same libvirt domains, with its identifiers, types and
 * units, from kvmwatch's collector.
 *
 * The table below is the whole mapping: a metric-table row (filled by the
 * libvirt source from the same libvirt data virt reads: the bulk domain
 * statistics are what virDomainGetInfo, virDomainBlockStatsFlags,
 * virDomainInterfaceStats, virDomainMemoryStats, virDomainGetCPUStats and
 * virDomainGetVcpus return) to virt's type, type instance and data source,
 * the ExtraStats selector that enables it and how its value is scaled.
 * Where virt's output is not what its code means to send, kvmwatch sends
 * what is meant and says so (docs: collectd-plugin/README.md):
 * swap_io and ps_pagefaults are DERIVE types that virt fills with gauge
 * bits; kvmwatch sends the integer.  Everything else is virt's, including
 * total_time_in_ms-flush-*, which virt divides from ns by 1000 (so it is in
 * microseconds) -- dashboards built on it keep their scale.
 *
 * kvmwatch's own metrics (procfs, KVM binary stats, eBPF, QMP, and libvirt
 * rows virt does not have) are dispatched beside them under plugin
 * "kvmwatch" with the same host and plugin instance (ReportKvmwatchMetrics). */
#include "kwcd_priv.h"
#include "util/kw_util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ExtraStats selectors, named as virt names them. */
enum {
	VX_DISK = 1u << 0, VX_PCPU = 1u << 1, VX_CPU_UTIL = 1u << 2, VX_DOMAIN_STATE = 1u << 3,
	VX_PERF = 1u << 4, VX_VCPUPIN = 1u << 5, VX_DISK_ERR = 1u << 6, VX_FS_INFO = 1u << 7,
	VX_JOB_COMPLETED = 1u << 8, VX_JOB_BACKGROUND = 1u << 9, VX_DISK_ALLOCATION = 1u << 10,
	VX_DISK_CAPACITY = 1u << 11, VX_DISK_PHYSICAL = 1u << 12, VX_MEMORY = 1u << 13, VX_VCPU = 1u << 14,
};

static const struct {
	const char *name;
	unsigned bit;
} vx_names[] = {
	{ "disk", VX_DISK }, { "pcpu", VX_PCPU }, { "cpu_util", VX_CPU_UTIL }, { "domain_state", VX_DOMAIN_STATE },
	{ "perf", VX_PERF }, { "vcpupin", VX_VCPUPIN }, { "disk_err", VX_DISK_ERR }, { "fs_info", VX_FS_INFO },
	{ "job_stats_completed", VX_JOB_COMPLETED }, { "job_stats_background", VX_JOB_BACKGROUND },
	{ "disk_allocation", VX_DISK_ALLOCATION }, { "disk_capacity", VX_DISK_CAPACITY },
	{ "disk_physical", VX_DISK_PHYSICAL }, { "memory", VX_MEMORY }, { "vcpu", VX_VCPU },
};

/* How a mapped value is named and when it is sent. */
enum {
	VF_ALL_STATES = 1u << 0, /* also for domains that are not running (domain_state) */
	VF_DISK = 1u << 1,       /* instance is a disk: BlockDeviceFormat, BlockDevice list */
	VF_NET = 1u << 2,        /* instance is an interface: InterfaceFormat, InterfaceDevice list */
	VF_SOURCE = 1u << 3,     /* only disks with a source (virDomainGetBlockInfo) */
	VF_ANY_POSITIVE = 1u << 4, /* sent only when one of its values is > 0 (swap_io, ps_pagefaults) */
};

struct vmap {
	int metric;
	const char *type;
	const char *ti;     /* type instance, "%s" = (formatted) instance, NULL none */
	uint8_t ds;         /* data source index; entries of one value list are adjacent, ds 0 first */
	uint32_t div;
	unsigned need;      /* ExtraStats bits, 0 always */
	unsigned flags;
};

/* The mapping (virt.c 5.12: cpu_submit, memory_submit, vcpu_submit,
 * vcpu_pin_submit, get_pcpu_stats, submit_domain_state, get_memory_stats,
 * disk_block_stats_submit, disk_err_submit, get_if_dev_stats, perf_submit,
 * job_stats_submit). */
static const struct vmap vmaps[] = {
	{ KW_M_DOM_CPU_TIME, "virt_cpu_total", NULL, 0, 1, 0, 0 },
	{ KW_M_DOM_MEM_CUR, "memory", "total", 0, 1, 0, 0 },
	{ KW_M_DOM_VCPU_TIME, "virt_vcpu", "%s", 0, 1, VX_VCPU, 0 },
	{ KW_M_DOM_VCPU_PIN, "cpu_affinity", "%s", 0, 1, VX_VCPUPIN, 0 },
	{ KW_M_DOM_CPU_USER, "ps_cputime", NULL, 0, 1, VX_PCPU, 0 },
	{ KW_M_DOM_CPU_SYS, "ps_cputime", NULL, 1, 1, VX_PCPU, 0 },
	{ KW_M_DOM_STATE, "domain_state", NULL, 0, 1, VX_DOMAIN_STATE, VF_ALL_STATES },
	{ KW_M_DOM_STATE_REASON, "domain_state", NULL, 1, 1, VX_DOMAIN_STATE, VF_ALL_STATES },
	/* virDomainMemoryStats tags, KiB * 1024 (libvirt's bytes here) */
	{ KW_M_DOM_MEM_CUR, "memory", "actual_balloon", 0, 1, VX_MEMORY, 0 },
	{ KW_M_BAL_UNUSED, "memory", "unused", 0, 1, VX_MEMORY, 0 },
	{ KW_M_BAL_AVAIL, "memory", "available", 0, 1, VX_MEMORY, 0 },
	{ KW_M_BAL_RSS, "memory", "rss", 0, 1, VX_MEMORY, 0 },
	{ KW_M_BAL_USABLE, "memory", "usable", 0, 1, VX_MEMORY, 0 },
	{ KW_M_BAL_CACHES, "memory", "disk_caches", 0, 1, VX_MEMORY, 0 },
	{ KW_M_BAL_SWAP_IN, "swap_io", "in", 0, 1024, VX_MEMORY, VF_ANY_POSITIVE },
	{ KW_M_BAL_SWAP_OUT, "swap_io", "out", 0, 1024, VX_MEMORY, VF_ANY_POSITIVE },
	{ KW_M_BAL_MINFLT, "ps_pagefaults", NULL, 0, 1, VX_MEMORY, VF_ANY_POSITIVE },
	{ KW_M_BAL_MAJFLT, "ps_pagefaults", NULL, 1, 1, VX_MEMORY, VF_ANY_POSITIVE },
	/* block devices */
	{ KW_M_DISK_RD_REQS, "disk_ops", "%s", 0, 1, 0, VF_DISK },
	{ KW_M_DISK_WR_REQS, "disk_ops", "%s", 1, 1, 0, VF_DISK },
	{ KW_M_DISK_RD_BYTES, "disk_octets", "%s", 0, 1, 0, VF_DISK },
	{ KW_M_DISK_WR_BYTES, "disk_octets", "%s", 1, 1, 0, VF_DISK },
	{ KW_M_DISK_RD_TIME, "disk_time", "%s", 0, 1, VX_DISK, VF_DISK },
	{ KW_M_DISK_WR_TIME, "disk_time", "%s", 1, 1, VX_DISK, VF_DISK },
	{ KW_M_DISK_FL_REQS, "total_requests", "flush-%s", 0, 1, VX_DISK, VF_DISK },
	{ KW_M_DISK_FL_TIME, "total_time_in_ms", "flush-%s", 0, 1000, VX_DISK, VF_DISK },
	{ KW_M_DISK_ALLOC, "disk_allocation", "%s", 0, 1, VX_DISK_ALLOCATION, VF_DISK | VF_SOURCE },
	{ KW_M_DISK_CAPACITY, "disk_capacity", "%s", 0, 1, VX_DISK_CAPACITY, VF_DISK | VF_SOURCE },
	{ KW_M_DISK_PHYSICAL, "disk_physical", "%s", 0, 1, VX_DISK_PHYSICAL, VF_DISK | VF_SOURCE },
	{ KW_M_DISK_ERROR_CODE, "disk_error", "%s", 0, 1, VX_DISK_ERR, 0 },
	/* interfaces */
	{ KW_M_NET_RX_BYTES, "if_octets", "%s", 0, 1, 0, VF_NET },
	{ KW_M_NET_TX_BYTES, "if_octets", "%s", 1, 1, 0, VF_NET },
	{ KW_M_NET_RX_PKTS, "if_packets", "%s", 0, 1, 0, VF_NET },
	{ KW_M_NET_TX_PKTS, "if_packets", "%s", 1, 1, 0, VF_NET },
	{ KW_M_NET_RX_ERRS, "if_errors", "%s", 0, 1, 0, VF_NET },
	{ KW_M_NET_TX_ERRS, "if_errors", "%s", 1, 1, 0, VF_NET },
	{ KW_M_NET_RX_DROP, "if_dropped", "%s", 0, 1, 0, VF_NET },
	{ KW_M_NET_TX_DROP, "if_dropped", "%s", 1, 1, 0, VF_NET },
	/* perf events: virt replaces the '.' of "perf.NAME" with '_' */
	{ KW_M_DOM_PERF, "perf", "perf_%s", 0, 1, VX_PERF, 0 },
	{ KW_M_JOB_PARAM, "job_stats", "%s", 0, 1, VX_JOB_COMPLETED | VX_JOB_BACKGROUND, 0 },
};
#define NVMAPS (sizeof(vmaps) / sizeof(vmaps[0]))
_Static_assert(NVMAPS <= KWCD_VIRT_MAPS_MAX, "KWCD_VIRT_MAPS_MAX");

/* virt's notification texts (domain_states[], domain_reasons[][]). */
static const char *const state_text[] = {
	"no state", "the domain is running", "the domain is blocked on resource", "the domain is paused by user",
	"the domain is being shut down", "the domain is shut off", "the domain is crashed",
	"the domain is suspended by guest power management",
};

static const char *reason_text(int state, int reason)
{
	static const char *const running[] = { "the reason is unknown", "normal startup from boot",
		"migrated from another host", "restored from a state file", "restored from snapshot",
		"returned from paused state", "returned from migration", "returned from failed save process",
		"returned from pmsuspended due to wakeup event", "resumed from crashed",
		"running in post-copy migration mode" };
	static const char *const paused[] = { "the reason is unknown", "paused on user request",
		"paused for offline migration", "paused for save", "paused for offline core dump",
		"paused due to a disk I/O error", "paused due to a watchdog event",
		"paused after restoring from snapshot", "paused during shutdown process",
		"paused while creating a snapshot", "paused due to a guest crash", "the domain is being started",
		"paused for post-copy migration", "paused after failed post-copy" };
	static const char *const shutoff[] = { "the reason is unknown", "normal shutdown", "forced poweroff",
		"domain crashed", "migrated to another host", "saved to a file", "domain failed to start",
		"restored from a snapshot which was taken while domain was shutoff",
		"daemon decides to kill domain during reconnection processing" };
	static const char *const shutdown[] = { "the reason is unknown", "shutting down on user request" };
	static const char *const crashed[] = { "the reason is unknown", "domain panicked" };
	static const char *const unknown_only[] = { "the reason is unknown" };
	const char *const *t;
	size_t n;

	switch (state) {
	case 1: t = running; n = KW_ARRAY_SIZE(running); break;
	case 3: t = paused; n = KW_ARRAY_SIZE(paused); break;
	case 5: t = shutoff; n = KW_ARRAY_SIZE(shutoff); break;
	case 4: t = shutdown; n = KW_ARRAY_SIZE(shutdown); break;
	case 6: t = crashed; n = KW_ARRAY_SIZE(crashed); break;
	case 0: case 2: case 7: t = unknown_only; n = 1; break;
	default: return NULL;
	}
	return reason >= 0 && (size_t)reason < n ? t[reason] : NULL;
}

/* =========================================================== configuration */
static int virt_option(struct kwcd *k, const char *key, const struct kwcd_value *v, int nv, char *err,
		       size_t errlen);

int kwcd_virt_config(struct kwcd *k, const char *key, const struct kwcd_value *v, int nv, char *err,
		     size_t errlen)
{
	struct kwcd_virt *x = &k->virt;
	int r;

	if (!strcasecmp(key, "Compat")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 1, err, errlen)))
			return r;
		if (!strcasecmp(v[0].s, "virt"))
			x->on = 1;
		else if (!strcasecmp(v[0].s, "none") || !strcasecmp(v[0].s, "kvmwatch"))
			x->on = 0;
		else {
			snprintf(err, errlen, "option Compat: unknown mode \"%s\" (expected \"virt\" or \"none\")", v[0].s);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcasecmp(key, "ReportKvmwatchMetrics")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_BOOLEAN, 1, 1, err, errlen)))
			return r;
		x->own = v[0].b;
		return 0;
	}
	if ((r = virt_option(k, key, v, nv, err, errlen)) == 0 && !x->first_key[0])
		kw_strlcpy(x->first_key, key, sizeof(x->first_key));
	return r;
}

/* virt's own options: only meaningful with Compat "virt". */
static int virt_option(struct kwcd *k, const char *key, const struct kwcd_value *v, int nv, char *err,
		       size_t errlen)
{
	struct kwcd_virt *x = &k->virt;
	int r;

	if (!strcasecmp(key, "RefreshInterval") || !strcasecmp(key, "Instances")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_NUMBER, 1, 1, err, errlen)))
			return r;
		if (!strcasecmp(key, "Instances")) {
			if (v[0].n < 1 || v[0].n > 128) {
				snprintf(err, errlen, "option Instances: %g is not 1 to 128", v[0].n);
				return -EINVAL;
			}
			x->instances = (int)v[0].n;
		} else {
			x->refresh_s = v[0].n <= 0 ? 0 : v[0].n > 86400 ? 86400 : (int)v[0].n;
		}
		return 0;
	}
	if (!strcasecmp(key, "BlockDeviceFormat")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 1, err, errlen)))
			return r;
		if (strcasecmp(v[0].s, "target") && strcasecmp(v[0].s, "source")) {
			snprintf(err, errlen, "option BlockDeviceFormat: unknown format \"%s\" (target or source)", v[0].s);
			return -EINVAL;
		}
		x->bd_source = !strcasecmp(v[0].s, "source");
		return 0;
	}
	if (!strcasecmp(key, "InterfaceFormat")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 1, err, errlen)))
			return r;
		if (!strcasecmp(v[0].s, "name"))
			x->if_fmt = 0;
		else if (!strcasecmp(v[0].s, "address"))
			x->if_fmt = 1;
		else if (!strcasecmp(v[0].s, "number"))
			x->if_fmt = 2;
		else {
			snprintf(err, errlen, "option InterfaceFormat: unknown format \"%s\" (name, address or number)",
				 v[0].s);
			return -EINVAL;
		}
		return 0;
	}
	if (!strcasecmp(key, "BlockDeviceFormatBasename") || !strcasecmp(key, "PersistentNotification") ||
	    !strcasecmp(key, "ReportBlockDevices") || !strcasecmp(key, "ReportNetworkInterfaces")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_BOOLEAN, 1, 1, err, errlen)))
			return r;
		if (!strcasecmp(key, "BlockDeviceFormatBasename"))
			x->bd_basename = v[0].b;
		else if (!strcasecmp(key, "PersistentNotification"))
			x->persistent = v[0].b;
		else if (!strcasecmp(key, "ReportBlockDevices"))
			x->report_block = v[0].b;
		else
			x->report_iface = v[0].b;
		return 0;
	}
	if (!strcasecmp(key, "HostnameMetadataNS") || !strcasecmp(key, "HostnameMetadataXPath")) {
		char *dst = !strcasecmp(key, "HostnameMetadataNS") ? k->cfg.libvirt_meta_ns : k->cfg.libvirt_meta_xpath;

		if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 1, err, errlen)))
			return r;
		if (strlen(v[0].s) >= sizeof(k->cfg.libvirt_meta_ns)) {
			snprintf(err, errlen, "option %s: longer than %zu bytes", key, sizeof(k->cfg.libvirt_meta_ns) - 1);
			return -EINVAL;
		}
		kw_strlcpy(dst, v[0].s, sizeof(k->cfg.libvirt_meta_ns));
		return 0;
	}
	if (!strcasecmp(key, "ExtraStats")) {
		char buf[512], *save = NULL, *w;
		unsigned bits = 0;
		int nw = 0;

		if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 1, err, errlen)))
			return r;
		kw_strlcpy(buf, v[0].s, sizeof(buf));
		for (w = strtok_r(buf, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
			size_t j;

			if (++nw > 15) {
				snprintf(err, errlen, "option ExtraStats: more than 15 selectors");
				return -EINVAL;
			}
			for (j = 0; j < KW_ARRAY_SIZE(vx_names); j++)
				if (!strcasecmp(w, vx_names[j].name))
					break;
			if (j == KW_ARRAY_SIZE(vx_names)) {
				snprintf(err, errlen, "option ExtraStats: unknown selector \"%s\"", w);
				return -EINVAL;
			}
			bits |= vx_names[j].bit;
		}
		if ((bits & VX_JOB_COMPLETED) && (bits & VX_JOB_BACKGROUND)) {
			snprintf(err, errlen, "option ExtraStats: job_stats_completed and job_stats_background cannot "
				 "be collected at the same time");
			return -EINVAL;
		}
		x->extra = bits;
		return 0;
	}
	return 1; /* not a virt option */
}

int kwcd_virt_start(struct kwcd *k, kwcd_type_lookup_fn lookup, void *arg, char *err, size_t errlen)
{
	struct kwcd_virt *x = &k->virt;
	size_t i;

	if (!x->on) {
		if (x->first_key[0]) {
			snprintf(err, errlen, "not starting: %s is an option of collectd's virt plugin: add "
				 "Compat \"virt\" to <Plugin kvmwatch> to use it", x->first_key);
			return -1;
		}
		return 0;
	}
	if (!(k->cfg.sources & (1u << KW_SRC_LIBVIRT))) {
		snprintf(err, errlen, "not starting: Compat \"virt\" reports libvirt domains: CollectLibvirt is false");
		return -1;
	}
	if (x->extra & VX_FS_INFO) {
		kw_warn("ExtraStats fs_info is not collected: it needs a read-write libvirt connection (guest "
			"agent), and kvmwatch only opens read-only ones");
		x->extra &= ~(unsigned)VX_FS_INFO;
	}
	if (x->instances > 1)
		kw_info("Instances %d: kvmwatch reads every domain with one bulk call per cycle; the option has "
			"no effect", x->instances);
	k->cfg.libvirt_extra |= KW_LV_XML;
	k->cfg.libvirt_xml_refresh_s = (unsigned)x->refresh_s;
	if (x->extra & VX_VCPUPIN)
		k->cfg.libvirt_extra |= KW_LV_VCPUPIN;
	if (x->extra & VX_DISK_ERR)
		k->cfg.libvirt_extra |= KW_LV_DISK_ERR;
	if (x->extra & VX_PERF)
		k->cfg.libvirt_extra |= KW_LV_PERF;
	if (x->extra & (VX_JOB_COMPLETED | VX_JOB_BACKGROUND))
		k->cfg.libvirt_extra |= KW_LV_JOB_PARAMS;
	if (x->extra & VX_JOB_COMPLETED)
		k->cfg.libvirt_extra |= KW_LV_JOB_COMPLETED;
	if ((x->extra & VX_DOMAIN_STATE) || x->persistent)
		k->cfg.libvirt_extra |= KW_LV_INACTIVE;
	if (!x->persistent)
		k->cfg.libvirt_extra |= KW_LV_EVENTS;
	for (i = 0; i < (size_t)k->nhost; i++)
		if (k->host_fmt[i] == KWCD_F_METADATA)
			k->cfg.libvirt_extra |= KW_LV_METADATA;
	for (i = 0; i < (size_t)k->npinst; i++)
		if (k->pinst_fmt[i] == KWCD_F_METADATA)
			k->cfg.libvirt_extra |= KW_LV_METADATA;
	/* every type virt uses, as this daemon's types.db has it */
	for (i = 0; i < NVMAPS; i++) {
		struct kwcd_type t;

		x->ok[i] = 0;
		if (lookup(vmaps[i].type, &t, arg)) {
			kw_err("Compat virt: type %s is not in types.db: not dispatched", vmaps[i].type);
			continue;
		}
		if (vmaps[i].ds >= t.n) {
			kw_err("Compat virt: type %s has %zu data sources, not %d", vmaps[i].type, t.n, vmaps[i].ds + 1);
			continue;
		}
		x->ok[i] = 1;
		x->nds[i] = (uint8_t)t.n;
		x->dstype[i] = (uint8_t)t.ds[vmaps[i].ds].type;
	}
	/* rows virt covers are not repeated among kvmwatch's own metrics */
	for (i = 0; i < NVMAPS; i++)
		x->covered[vmaps[i].metric] = 1;
	return 0;
}

/* ============================================================ identifiers */

/* A value as virt copies it into an identifier (sstrncpy: at most 127
 * bytes), with what collectd cannot carry made safe: control characters and
 * invalid UTF-8 become '_' (virt passes them through). */
static void clean(char *out, const char *in)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t o = 0;

	while (*p && o < KWCD_NAME_MAX - 1) {
		size_t n = 1;

		if (*p >= 0x80) {
			n = (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : (*p & 0xf8) == 0xf0 ? 4 : 0;
			for (size_t i = 1; n && i < n; i++)
				if ((p[i] & 0xc0) != 0x80)
					n = 0;
			if (!n || o + n > KWCD_NAME_MAX - 1) {
				if (!n) {
					out[o++] = '_';
					p++;
					continue;
				}
				break;
			}
			memcpy(out + o, p, n);
			o += n;
			p += n;
			continue;
		}
		out[o++] = *p < 0x20 || *p == 0x7f ? '_' : (char)*p;
		p++;
	}
	out[o] = '\0';
}

static void append(char *out, const char *s)
{
	size_t n = strlen(out);

	if (n < KWCD_NAME_MAX - 1)
		kw_strlcpy(out + n, s, KWCD_NAME_MAX - n);
}

/* init_value_list: HostnameFormat / PluginInstanceFormat fields joined by
 * ':' (a field after the first always gets its ':', as in virt). */
static void virt_field_join(const struct kwcd *k, const int *fmt, int n, const char *name, const char *uuid,
			    const char *meta, char *out)
{
	char raw[KWCD_NAME_MAX];
	int i;

	raw[0] = '\0';
	for (i = 0; i < n; i++) {
		if (fmt[i] == KWCD_F_NONE)
			break;
		if (i > 0)
			append(raw, ":");
		switch (fmt[i]) {
		case KWCD_F_HOSTNAME: append(raw, k->hostname); break;
		case KWCD_F_NAME: append(raw, name); break;
		case KWCD_F_UUID: append(raw, uuid); break;
		case KWCD_F_METADATA: append(raw, meta); break;
		default: break;
		}
	}
	clean(out, raw);
}

void kwcd_virt_ident(const struct kwcd *k, const char *name, const char *uuid, const char *meta, char *host,
		     char *pinst)
{
	virt_field_join(k, k->host_fmt, k->nhost, name, uuid, meta, host);
	virt_field_join(k, k->pinst_fmt, k->npinst, name, uuid, meta, pinst);
}

/* The device name virt would use for a disk / interface instance; 0 to
 * report it, -1 to leave it out (ignored, not in the domain XML, no source). */
static int disk_name(const struct kwcd *k, const struct kw_vm *vm, const char *inst, unsigned flags, char *out)
{
	const struct kw_disk *d = kw_vm_disk(vm, inst);
	const char *dev = inst, *shown;
	char match[KW_NAME_MAX + KW_DISK_SOURCE_MAX + 2];

	if (!k->virt.report_block)
		return -1;
	if (k->virt.bd_source || (flags & VF_SOURCE)) {
		if (!d || !d->source[0])
			return -1;
		if (k->virt.bd_source)
			dev = d->source;
	}
	snprintf(match, sizeof(match), "%s:%s", vm->name, dev);
	if (kw_ignorelist_ignored(k->il_block, match, NULL))
		return -1;
	shown = dev;
	if (k->virt.bd_source && k->virt.bd_basename) {
		const char *slash = strrchr(dev, '/');

		if (slash && slash[1])
			shown = slash + 1;
	}
	clean(out, shown);
	return 0;
}

static int net_name(const struct kwcd *k, const struct kw_vm *vm, const char *inst, char *out)
{
	const struct kw_netif *f = kw_vm_netif(vm, inst);
	char match[KW_NAME_MAX + 32], num[24];
	const char *key;

	if (!k->virt.report_iface)
		return -1;
	/* virt's list is the domain XML's interfaces with a target and a MAC */
	if (!f || f->number <= 0 || !f->mac[0])
		return -1;
	snprintf(num, sizeof(num), "%d", f->number);
	key = k->virt.if_fmt == 1 ? f->mac : k->virt.if_fmt == 2 ? num : f->name;
	snprintf(match, sizeof(match), "%s:%s", vm->name, key);
	if (kw_ignorelist_ignored(k->il_iface, match, NULL))
		return -1;
	if (k->virt.if_fmt == 2)
		snprintf(out, KWCD_NAME_MAX, "interface-%d", f->number);
	else
		clean(out, key);
	return 0;
}

/* ============================================================== publishing */
static void put_value(struct kwcd_vl *vl, int i, int dstype, uint64_t u, double d, int is_double, uint32_t div)
{
	vl->v[i].type = dstype;
	if (dstype == KWCD_DS_GAUGE) {
		vl->v[i].gauge = (is_double ? d : (double)u) / (double)div;
	} else {
		if (is_double)
			u = d > 0 ? (uint64_t)d : 0;
		u /= div;
		vl->v[i].counter = u;
		vl->v[i].derive = u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
	}
}

static void vl_init(struct kwcd_vl *vl, const char *host, const char *pinst, const char *type, const char *ti,
		    uint64_t t)
{
	memset(vl, 0, sizeof(*vl));
	kw_strlcpy(vl->host, host, sizeof(vl->host));
	kw_strlcpy(vl->plugin, "virt", sizeof(vl->plugin));
	kw_strlcpy(vl->plugin_instance, pinst, sizeof(vl->plugin_instance));
	kw_strlcpy(vl->type, type, sizeof(vl->type));
	kw_strlcpy(vl->type_instance, ti ? ti : "", sizeof(vl->type_instance));
	vl->time_ns = t;
}

static void send(struct kwcd_vl *vl, kwcd_dispatch_fn fn, void *arg, struct kwcd_read_stats *st)
{
	if (fn(vl, arg))
		st->failed++;
	else
		st->dispatched++;
}

/* percent-virt_cpu_total (ExtraStats cpu_util): virt's cpu_ns_to_percent,
 * with the previous cycle's CPU time of the same domain. */
static void cpu_util(struct kwcd *k, const struct kw_vm *vm, const char *host, const char *pinst,
		     kwcd_dispatch_fn fn, void *arg, struct kwcd_read_stats *st)
{
	struct kwcd_virt *x = &k->virt;
	const struct kw_sample *s = kw_ss_get(&vm->stats, KW_M_DOM_CPU_TIME, NULL);
	struct kwcd_vprev *p = NULL;
	double cpus = 0, secs = (double)x->interval_ns / 1e9;
	size_t i;

	if (!s)
		return;
	/* the domains come in the same order every cycle: try where the
	 * previous one's successor was, then look */
	i = x->prev_next;
	if (i < x->nprev && !strcmp(x->prev[i].key, vm->key))
		p = &x->prev[i];
	for (i = 0; !p && i < x->nprev; i++)
		if (!strcmp(x->prev[i].key, vm->key))
			p = &x->prev[i];
	if (!p) {
		if (kw_grow((void **)&x->prev, &x->prevcap, x->nprev, sizeof(*x->prev)))
			return;
		p = &x->prev[x->nprev++];
		memset(p, 0, sizeof(*p));
		kw_strlcpy(p->key, vm->key, sizeof(p->key));
	}
	kw_ss_value(&k->coll.host, KW_M_H_LV_CPUS, NULL, &cpus);
	if (p->cpu && s->v.u && cpus > 0 && secs > 0) {
		struct kwcd_vl vl;

		vl_init(&vl, host, pinst, "percent", "virt_cpu_total", k->coll.ts_real_ns);
		vl.n = 1;
		vl.v[0].type = KWCD_DS_GAUGE;
		vl.v[0].gauge = 100.0 * (double)(s->v.u - p->cpu) / (secs * cpus * 1e9);
		send(&vl, fn, arg, st);
	}
	p->cpu = s->v.u;
	p->cycle = k->coll.cycle;
	x->prev_next = (size_t)(p - x->prev) + 1;
}

static int publish_vm(struct kwcd *k, const struct kw_vm *vm, const char *host, const char *pinst,
		      kwcd_dispatch_fn fn, void *arg, struct kwcd_read_stats *st)
{
	struct kwcd_virt *x = &k->virt;
	int running = !strcmp(vm->state, "running");
	size_t g, i;

	for (g = 0; g < NVMAPS;) {
		const struct vmap *m = &vmaps[g];
		size_t ng = 1;

		while (g + ng < NVMAPS && vmaps[g + ng].ds > 0 && !strcmp(vmaps[g + ng].type, m->type) &&
		       (m->ti == vmaps[g + ng].ti || (m->ti && vmaps[g + ng].ti && !strcmp(m->ti, vmaps[g + ng].ti))))
			ng++;
		if ((m->need && !(x->extra & m->need)) || (!running && !(m->flags & VF_ALL_STATES)) || !x->ok[g]) {
			g += ng;
			continue;
		}
		for (i = 0; i < vm->stats.n; i++) {
			const struct kw_sample *s = &vm->stats.s[i], *part;
			struct kwcd_vl vl;
			char dev[KWCD_NAME_MAX], ti[KWCD_NAME_MAX * 2];
			int positive = 0, missing = 0;
			size_t j;

			if (s->metric != m->metric)
				continue;
			if (m->flags & VF_DISK) {
				if (disk_name(k, vm, s->inst, m->flags, dev))
					continue;
			} else if (m->flags & VF_NET) {
				if (net_name(k, vm, s->inst, dev))
					continue;
			} else {
				clean(dev, s->inst);
			}
			if (m->ti)
				snprintf(ti, sizeof(ti), m->ti, dev);
			vl_init(&vl, host, pinst, m->type, m->ti ? ti : NULL, k->coll.ts_real_ns);
			vl.n = x->nds[g];
			for (j = 0; j < ng; j++) {
				part = j == 0 ? s : kw_ss_get(&vm->stats, vmaps[g + j].metric, s->inst);
				if (!part || !x->ok[g + j]) {
					missing = 1;
					break;
				}
				if (kw_sample_value(part) > 0)
					positive = 1;
				put_value(&vl, vmaps[g + j].ds, x->dstype[g + j], part->v.u, part->v.d, part->is_double,
					  vmaps[g + j].div);
			}
			if (missing || ng != vl.n || ((m->flags & VF_ANY_POSITIVE) && !positive)) {
				if (missing || ng != vl.n)
					st->incomplete++;
				continue;
			}
			send(&vl, fn, arg, st);
		}
		g += ng;
	}
	if ((x->extra & VX_CPU_UTIL) && running)
		cpu_util(k, vm, host, pinst, fn, arg, st);
	return 0;
}

static void notify_state(struct kwcd *k, const char *name, const char *uuid, const char *meta, int state,
			 int reason, uint64_t t)
{
	struct kwcd_notif n;
	const char *rs = reason_text(state, reason);

	if (!k->virt.notify || state < 0 || state >= (int)KW_ARRAY_SIZE(state_text))
		return;
	if (!rs) {
		kw_err("Compat virt: invalid reason (%d) for domain state: %s", reason, state_text[state]);
		return;
	}
	memset(&n, 0, sizeof(n));
	n.severity = state == 2 || state == 3 || state == 7 ? KWCD_NOTIF_WARNING
		     : state == 6			   ? KWCD_NOTIF_FAILURE
							   : KWCD_NOTIF_OKAY;
	/* virt's switch has no case for PMSUSPENDED (its #ifdef names a macro
	 * that does not exist): it logs "Unrecognized domain state" and sends
	 * nothing; kvmwatch sends it as a warning, which is what virt means. */
	snprintf(n.message, sizeof(n.message), "Domain state: %s. Reason: %s", state_text[state], rs);
	kwcd_virt_ident(k, name, uuid, meta, n.host, n.plugin_instance);
	kw_strlcpy(n.plugin, "virt", sizeof(n.plugin));
	kw_strlcpy(n.type, "domain_state", sizeof(n.type));
	n.time_ns = t;
	k->virt.notify(&n, k->virt.notify_arg);
}

static void notifications(struct kwcd *k)
{
	struct kw_dom_event ev[64];
	size_t n, i, j;

	if (k->virt.persistent) {
		/* PersistentNotification: every persistent domain's state, every read */
		for (i = 0; i < k->coll.vms.n; i++) {
			const struct kw_vm *vm = &k->coll.vms.vms[i];
			double state, reason = 0;

			if (!(vm->found & KW_FOUND_LIBVIRT) || kw_ss_value(&vm->stats, KW_M_DOM_STATE, NULL, &state))
				continue;
			/* an inactive domain is a persistent one */
			if (vm->lv_persistent == 0 || (vm->lv_persistent < 0 && vm->dom_id >= 0))
				continue;
			kw_ss_value(&vm->stats, KW_M_DOM_STATE_REASON, NULL, &reason);
			notify_state(k, vm->name, vm->uuid, vm->lv_meta, (int)state, (int)reason, k->coll.ts_real_ns);
		}
		return;
	}
	while ((n = kw_collector_dom_events(&k->coll, ev, KW_ARRAY_SIZE(ev))) > 0) {
		for (i = 0; i < n; i++) {
			const char *meta = "";

			for (j = 0; j < k->coll.vms.n; j++)
				if (!strcasecmp(k->coll.vms.vms[j].uuid, ev[i].uuid))
					meta = k->coll.vms.vms[j].lv_meta;
			notify_state(k, ev[i].name, ev[i].uuid, meta, ev[i].state, ev[i].reason, ev[i].time_ns);
		}
		if (n < KW_ARRAY_SIZE(ev))
			break;
	}
}

int kwcd_virt_read(struct kwcd *k, kwcd_dispatch_fn fn, void *arg, struct kwcd_read_stats *st)
{
	size_t i;

	notifications(k);
	k->virt.prev_next = 0;
	for (i = 0; i < k->coll.vms.n; i++) {
		const struct kw_vm *vm = &k->coll.vms.vms[i];
		char host[KWCD_NAME_MAX], pinst[KWCD_NAME_MAX];

		if (!(vm->found & KW_FOUND_LIBVIRT)) {
			/* not a libvirt domain: virt would not see it; its own metrics only */
			if (k->virt.own) {
				kwcd_virt_ident(k, vm->name, vm->uuid, "", host, pinst);
				if (kwcd_publish_set(k, &vm->stats, host, pinst, vm->name, k->coll.ts_real_ns, fn, arg,
						     st) == -ENOMEM)
					return -ENOMEM;
			}
			continue;
		}
		/* virt's Domain list matches the domain name only */
		if (kw_ignorelist_ignored(k->il_domain, vm->name, NULL)) {
			st->vms_ignored++;
			continue;
		}
		kwcd_virt_ident(k, vm->name, vm->uuid, vm->lv_meta, host, pinst);
		publish_vm(k, vm, host, pinst, fn, arg, st);
		if (k->virt.own && kwcd_publish_set(k, &vm->stats, host, pinst, vm->name, k->coll.ts_real_ns, fn, arg,
						    st) == -ENOMEM)
			return -ENOMEM;
		st->vms++;
	}
	/* forget the CPU time of domains gone */
	for (i = 0; i < k->virt.nprev;)
		if (k->virt.prev[i].cycle + 1 < k->coll.cycle)
			k->virt.prev[i] = k->virt.prev[--k->virt.nprev];
		else
			i++;
	return 0;
}

void kwcd_set_notify(struct kwcd *k, kwcd_notify_fn fn, void *arg)
{
	k->virt.notify = fn;
	k->virt.notify_arg = arg;
}

void kwcd_set_interval(struct kwcd *k, uint64_t interval_ns)
{
	k->virt.interval_ns = interval_ns;
}

size_t kwcd_virt_nmaps(void) { return NVMAPS; }

int kwcd_virt_map_info(size_t i, struct kwcd_virt_map_info *out)
{
	size_t j;

	if (i >= NVMAPS)
		return -1;
	out->metric = vmaps[i].metric;
	out->type = vmaps[i].type;
	out->ti = vmaps[i].ti;
	out->ds = vmaps[i].ds;
	out->div = vmaps[i].div;
	out->extra[0] = '\0';
	for (j = 0; j < KW_ARRAY_SIZE(vx_names); j++)
		if (vmaps[i].need & vx_names[j].bit) {
			if (out->extra[0])
				append(out->extra, " or ");
			append(out->extra, vx_names[j].name);
		}
	return 0;
}
