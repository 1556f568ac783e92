// SPDX-License-Identifier: GPL-2.0
/* kwcd.h - the collectd plugin's logic, independent of collectd's headers:
 * the <Plugin kvmwatch> configuration model, collectd identifiers for VMs and
 * host totals, the metric-table check against types.db, and grouping one
 * cycle's samples into collectd value lists.  kvmwatch.c is the thin glue to
 * collectd's plugin API; tests drive this file directly and through the glue
 * with the plugin API mocked.
 *
 * This header deliberately includes nothing of collectd nor of common/ (the
 * glue includes collectd's config.h with its ~360 macros). */
#ifndef KWCD_H
#define KWCD_H

#include <stddef.h>
#include <stdint.h>

#define KWCD_NAME_MAX 128 /* collectd's DATA_MAX_NAME_LEN, NUL included */
#define KWCD_DS_MAX 16
/* Longest host / plugin_instance / type_instance kvmwatch produces.  The
 * daemon takes 127 bytes, but libcollectdclient (collectdctl, LCC_NAME_LEN 64)
 * truncates at 63: keep every value addressable with collectdctl. */
#define KWCD_IDENT_MAX 63

/* Data source types, numbered like collectd's DS_TYPE_* (the glue asserts it). */
enum kwcd_ds_type { KWCD_DS_COUNTER = 0, KWCD_DS_GAUGE = 1, KWCD_DS_DERIVE = 2, KWCD_DS_ABSOLUTE = 3 };

/* One types.db type. */
struct kwcd_type {
	char name[KWCD_NAME_MAX];
	size_t n;
	struct {
		char name[KWCD_NAME_MAX];
		int type; /* enum kwcd_ds_type */
	} ds[KWCD_DS_MAX];
};

/* Look a type up (collectd: plugin_get_ds; tests: a parsed types.db).
 * Returns 0 and fills out, or -ENOENT. */
typedef int (*kwcd_type_lookup_fn)(const char *type, struct kwcd_type *out, void *arg);

/* A parsed types.db file (kwcd_typesdb_lookup is a kwcd_type_lookup_fn). */
struct kwcd_typesdb {
	struct kwcd_type *t;
	size_t n;
};
int kwcd_typesdb_load(struct kwcd_typesdb *db, const char *path, char *err, size_t errlen);
int kwcd_typesdb_parse_line(const char *line, struct kwcd_type *out);
int kwcd_typesdb_lookup(const char *type, struct kwcd_type *out, void *db);
void kwcd_typesdb_free(struct kwcd_typesdb *db);

/* ----------------------------------------------------- metric table check */
/* Per row of the metric table: is it published, and how. */
struct kwcd_row {
	uint8_t publish;  /* 1: row maps to a valid collectd type */
	uint8_t ds_type;  /* enum kwcd_ds_type of its data source */
	uint8_t ds_num;   /* data sources of its type */
	uint16_t gauge_mask; /* which data sources of its type are GAUGE */
};
/* Check every row's cd_type/cd_ds against `lookup`: type exists, ds index in
 * range, kind matches (COUNTER -> DERIVE/COUNTER/ABSOLUTE, GAUGE -> GAUGE),
 * the ds name fits the metric (rx/tx, read/write, user/syst, ...), every
 * data source of a multi-value type is filled by exactly one row.  Bad rows
 * are logged (kw_log error) and not published.  rows has one entry per
 * metric (kwcd_nmetrics()).  Returns the number of bad rows. */
int kwcd_table_check(struct kwcd_row *rows, kwcd_type_lookup_fn lookup, void *arg);
size_t kwcd_nmetrics(void);

/* ------------------------------------------------------ configuration */
enum kwcd_value_type { KWCD_V_STRING, KWCD_V_NUMBER, KWCD_V_BOOLEAN };
struct kwcd_value {
	int type; /* enum kwcd_value_type */
	const char *s;
	double n;
	int b;
};

struct kwcd;

/* Fields of PluginInstanceFormat / HostnameFormat. */
enum kwcd_field { KWCD_F_NONE, KWCD_F_HOSTNAME, KWCD_F_NAME, KWCD_F_UUID, KWCD_F_PVEID, KWCD_F_METADATA };
#define KWCD_FMT_MAX 4

struct kwcd *kwcd_new(void);
void kwcd_free(struct kwcd *k);
/* Apply one config option (case-insensitive key, like collectd).  Returns 0,
 * or -EINVAL with err saying what is wrong (unknown key, bad value). */
int kwcd_config_set(struct kwcd *k, const char *key, const struct kwcd_value *v, int nv, char *err,
		    size_t errlen);
/* Remember that configuration failed: kwcd_start then refuses to start. */
void kwcd_config_failed(struct kwcd *k);
/* Cross-check the configuration, check the metric table against `lookup`
 * and start the collector.  hostname: collectd's Hostname.  Returns 0, or
 * -1 with err filled (the plugin must not start). */
int kwcd_start(struct kwcd *k, const char *hostname, kwcd_type_lookup_fn lookup, void *arg, char *err,
	       size_t errlen);

/* ------------------------------------------------------- value lists */
struct kwcd_vl {
	char host[KWCD_NAME_MAX];
	char plugin[KWCD_NAME_MAX];   /* "kvmwatch", or "virt" (Compat "virt") */
	char plugin_instance[KWCD_NAME_MAX];
	char type[KWCD_NAME_MAX];
	char type_instance[KWCD_NAME_MAX];
	uint64_t time_ns;  /* realtime of the cycle */
	size_t n;
	struct {
		int type; /* enum kwcd_ds_type */
		double gauge;
		int64_t derive;
		uint64_t counter; /* COUNTER and ABSOLUTE */
	} v[KWCD_DS_MAX];
};
typedef int (*kwcd_dispatch_fn)(const struct kwcd_vl *vl, void *arg);

/* A notification (Compat "virt": virt's domain_state notifications). */
enum kwcd_severity { KWCD_NOTIF_FAILURE = 1, KWCD_NOTIF_WARNING = 2, KWCD_NOTIF_OKAY = 4 };
struct kwcd_notif {
	int severity;  /* enum kwcd_severity, numbered like collectd's NOTIF_* */
	char message[256];
	char host[KWCD_NAME_MAX], plugin[KWCD_NAME_MAX], plugin_instance[KWCD_NAME_MAX];
	char type[KWCD_NAME_MAX], type_instance[KWCD_NAME_MAX];
	uint64_t time_ns;
};
typedef void (*kwcd_notify_fn)(const struct kwcd_notif *n, void *arg);
/* Where notifications go (none until set). */
void kwcd_set_notify(struct kwcd *k, kwcd_notify_fn fn, void *arg);
/* collectd's read interval (Compat "virt" cpu_util uses it as virt does). */
void kwcd_set_interval(struct kwcd *k, uint64_t interval_ns);

struct kwcd_read_stats {
	size_t vms;         /* VMs published */
	size_t vms_ignored; /* VMs left out by the Domain list */
	size_t dispatched;  /* value lists dispatched */
	size_t incomplete;  /* multi-value counters left out: a data source had no sample */
	size_t failed;      /* dispatch callback errors */
};

/* One read: collect and dispatch.  Returns 0, or -1 with err filled when
 * nothing could be read (collectd then backs off and retries). */
int kwcd_read(struct kwcd *k, kwcd_dispatch_fn fn, void *arg, struct kwcd_read_stats *st, char *err,
	      size_t errlen);

/* Route the library's log (kw_log) to fn(level, msg); level is a syslog
 * level (3 err, 4 warning, 6 info, 7 debug) as collectd's plugin_log takes. */
void kwcd_log_sink(void (*fn)(int level, const char *msg, void *arg), void *arg);

/* ------------------------------------------------- identifiers (tests) */
/* Make `in` a valid collectd identifier part in out (KWCD_NAME_MAX): keeps
 * [A-Za-z0-9._-] and well-formed UTF-8 of U+00A0 and above, replaces every
 * other byte ('/', space, quotes, control characters, invalid UTF-8, ':')
 * with '_'.  When anything was replaced, the result would be longer than
 * maxlen bytes (at most KWCD_NAME_MAX - 1; kvmwatch uses KWCD_IDENT_MAX), or it equals `reserved` (the host-totals instance), it is
 * shortened at a character boundary and "~" + 8 hex digits of a hash of the
 * original bytes is appended, so distinct names stay distinct.  Returns 1 if
 * the name was altered, 0 if copied unchanged. */
int kwcd_sanitize(char *out, size_t maxlen, const char *in, const char *reserved);

/* Identity of a VM for formatting (a subset of struct kw_vm). */
struct kwcd_vmid {
	const char *name;
	const char *uuid;  /* "" unknown */
	int pve_id;        /* -1 unknown */
};
/* Format host / plugin_instance for a VM according to the configuration. */
void kwcd_vm_host(const struct kwcd *k, const struct kwcd_vmid *id, char *out);
void kwcd_vm_plugin_instance(const struct kwcd *k, const struct kwcd_vmid *id, char *out);
const char *kwcd_host_instance(const struct kwcd *k);

#endif
