// SPDX-License-Identifier: GPL-2.0
/* kwcd.c - the collectd plugin's logic without collectd: configuration,
 * identifiers, the metric-table check and grouping samples into value lists. */
#include "kwcd_priv.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The eBPF feature groups (one per CLI feature flag: -e -f -m -d -n -w -i);
 * BPFFeature "x" sets bit 1u << index in cfg.bpf_features. */

size_t kwcd_nmetrics(void) { return KW_METRIC__N; }

/* ================================================================ types.db */
static int ds_type_from(const char *s)
{
	if (!strcasecmp(s, "GAUGE"))
		return KWCD_DS_GAUGE;
	if (!strcasecmp(s, "DERIVE"))
		return KWCD_DS_DERIVE;
	if (!strcasecmp(s, "COUNTER"))
		return KWCD_DS_COUNTER;
	if (!strcasecmp(s, "ABSOLUTE"))
		return KWCD_DS_ABSOLUTE;
	return -1;
}

/* "name ds:TYPE:min:max, ds:TYPE:min:max" -> 1, comment/blank -> 0, malformed -> -EINVAL */
int kwcd_typesdb_parse_line(const char *line, struct kwcd_type *out)
{
	const char *p = line;
	size_t len;

	memset(out, 0, sizeof(*out));
	while (isspace((unsigned char)*p))
		p++;
	if (!*p || *p == '#')
		return 0;
	len = strcspn(p, " \t");
	if (len == 0 || len >= sizeof(out->name))
		return -EINVAL;
	memcpy(out->name, p, len);
	p += len;
	for (;;) {
		char field[3 * KWCD_NAME_MAX], *c1, *c2;
		size_t fl;
		int t;

		while (isspace((unsigned char)*p) || *p == ',')
			p++;
		if (!*p || *p == '#')
			break;
		fl = strcspn(p, ", \t\r\n");
		if (fl >= sizeof(field) || out->n >= KWCD_DS_MAX)
			return -EINVAL;
		memcpy(field, p, fl);
		field[fl] = '\0';
		p += fl;
		c1 = strchr(field, ':');
		if (!c1 || c1 == field || (size_t)(c1 - field) >= KWCD_NAME_MAX)
			return -EINVAL;
		*c1++ = '\0';
		c2 = strchr(c1, ':');
		if (!c2)
			return -EINVAL;
		*c2 = '\0';
		if ((t = ds_type_from(c1)) < 0)
			return -EINVAL;
		kw_strlcpy(out->ds[out->n].name, field, KWCD_NAME_MAX);
		out->ds[out->n].type = t;
		out->n++;
	}
	return out->n ? 1 : -EINVAL;
}

int kwcd_typesdb_load(struct kwcd_typesdb *db, const char *path, char *err, size_t errlen)
{
	char line[4096];
	FILE *f = fopen(path, "re");
	size_t cap = 0;
	int lineno = 0;

	memset(db, 0, sizeof(*db));
	if (!f) {
		snprintf(err, errlen, "failed to open %s: %s", path, strerror(errno));
		return -errno;
	}
	while (fgets(line, sizeof(line), f)) {
		struct kwcd_type t;
		int r = kwcd_typesdb_parse_line(line, &t);

		lineno++;
		if (r == 0)
			continue;
		if (r < 0) {
			snprintf(err, errlen, "%s:%d: malformed type", path, lineno);
			fclose(f);
			kwcd_typesdb_free(db);
			return -EINVAL;
		}
		if (kw_grow((void **)&db->t, &cap, db->n, sizeof(*db->t))) {
			snprintf(err, errlen, "out of memory");
			fclose(f);
			kwcd_typesdb_free(db);
			return -ENOMEM;
		}
		db->t[db->n++] = t;
	}
	fclose(f);
	return 0;
}

int kwcd_typesdb_lookup(const char *type, struct kwcd_type *out, void *arg)
{
	const struct kwcd_typesdb *db = arg;
	size_t i;

	for (i = 0; i < db->n; i++) {
		if (!strcmp(db->t[i].name, type)) {
			*out = db->t[i];
			return 0;
		}
	}
	return -ENOENT;
}

void kwcd_typesdb_free(struct kwcd_typesdb *db)
{
	free(db->t);
	db->t = NULL;
	db->n = 0;
}

/* ========================================================== table check */
/* Words a metric's name or netdata dimension must contain to fill a data
 * source of that name (catches swapped rx/tx, read/write, ... indexes). */
static const struct {
	const char *ds;
	const char *words[6];
} ds_words[] = {
	{ "rx", { "rx", "receiv", "read", "rchar", NULL } },
	{ "tx", { "tx", "sent", "send", "transmit", "write", "wchar" } },
	{ "read", { "read", "rchar", "syscr", NULL } },
	{ "write", { "write", "wchar", "syscw", NULL } },
	{ "user", { "user", NULL } },
	{ "syst", { "syst", NULL } },
	{ "minflt", { "minflt", "minor", NULL } },
	{ "majflt", { "majflt", "major", NULL } },
	{ "io_time", { "io_time", "busy", NULL } },
	{ "weighted_io_time", { "weighted", NULL } },
};

/* 1 fits, 0 does not, -1 no rule for this ds name */
static int ds_name_fits(const struct kw_metric_def *m, const char *ds)
{
	size_t i, j;

	for (i = 0; i < KW_ARRAY_SIZE(ds_words); i++) {
		if (strcmp(ds_words[i].ds, ds))
			continue;
		for (j = 0; j < KW_ARRAY_SIZE(ds_words[i].words) && ds_words[i].words[j]; j++)
			if (strstr(m->name, ds_words[i].words[j]) || strstr(m->nd.dim, ds_words[i].words[j]))
				return 1;
		return 0;
	}
	return -1;
}

static int host_side(int scope)
{
	return scope == KW_SCOPE_HOST || scope == KW_SCOPE_HOST_DISK || scope == KW_SCOPE_HOST_NET;
}

static int same_group(const struct kw_metric_def *a, const struct kw_metric_def *b)
{
	return host_side(a->scope) == host_side(b->scope) && !strcmp(a->cd.type, b->cd.type) &&
	       !strcmp(a->cd.ti, b->cd.ti);
}

static const char *ds_type_name(int t)
{
	static const char *const n[] = { "COUNTER", "GAUGE", "DERIVE", "ABSOLUTE" };
	return t >= 0 && t < 4 ? n[t] : "?";
}

int kwcd_table_check(struct kwcd_row *rows, kwcd_type_lookup_fn lookup, void *arg)
{
	int i, j, bad = 0;
	uint8_t *bad_row = calloc(KW_METRIC__N, 1);

	if (!bad_row)
		return -ENOMEM;
	memset(rows, 0, KW_METRIC__N * sizeof(*rows));
	/* each row on its own */
	for (i = 0; i < KW_METRIC__N; i++) {
		const struct kw_metric_def *m = &kw_metrics[i];
		struct kwcd_type t;
		int dt, fits;

		if (!m->cd.type || !m->cd.type[0])
			continue; /* not published to collectd */
		if (lookup(m->cd.type, &t, arg)) {
			kw_err("metric %s: collectd type \"%s\" is not in types.db", m->name, m->cd.type);
			bad_row[i] = 1;
			continue;
		}
		if (m->cd.ds >= t.n) {
			kw_err("metric %s: data source index %u out of range: type %s has %zu data source%s",
			       m->name, m->cd.ds, m->cd.type, t.n, t.n == 1 ? "" : "s");
			bad_row[i] = 1;
			continue;
		}
		dt = t.ds[m->cd.ds].type;
		if ((m->kind == KW_GAUGE) != (dt == KWCD_DS_GAUGE)) {
			kw_err("metric %s: a %s metric cannot fill %s data source %s:%s", m->name,
			       m->kind == KW_GAUGE ? "gauge" : "counter", ds_type_name(dt), m->cd.type,
			       t.ds[m->cd.ds].name);
			bad_row[i] = 1;
			continue;
		}
		fits = ds_name_fits(m, t.ds[m->cd.ds].name);
		if (t.n > 1 && fits == 0) {
			kw_err("metric %s: data source %u of type %s is \"%s\", which does not fit this metric",
			       m->name, m->cd.ds, m->cd.type, t.ds[m->cd.ds].name);
			bad_row[i] = 1;
			continue;
		}
		if (m->cd.div == 0) {
			kw_err("metric %s: collectd divisor is 0", m->name);
			bad_row[i] = 1;
			continue;
		}
		rows[i].ds_type = (uint8_t)dt;
		rows[i].ds_num = (uint8_t)t.n;
		for (j = 0; j < (int)t.n; j++)
			if (t.ds[j].type == KWCD_DS_GAUGE)
				rows[i].gauge_mask |= (uint16_t)(1u << j);
	}
	/* groups: rows sharing (host/VM side, type, type_instance pattern) fill
	 * one value list: each data source exactly once */
	for (i = 0; i < KW_METRIC__N; i++) {
		const struct kw_metric_def *m = &kw_metrics[i];
		unsigned seen = 0, dup = 0, group_bad = 0;
		int first = 1;

		if (!m->cd.type || !m->cd.type[0] || !rows[i].ds_num)
			continue;
		for (j = 0; j < i; j++)
			if (kw_metrics[j].cd.type && same_group(&kw_metrics[j], m) && rows[j].ds_num)
				first = 0;
		if (!first)
			continue; /* checked with the group's first row */
		for (j = i; j < KW_METRIC__N; j++) {
			const struct kw_metric_def *o = &kw_metrics[j];

			if (!o->cd.type || !o->cd.type[0] || !same_group(o, m))
				continue;
			if (bad_row[j])
				group_bad = 1;
			if (!rows[j].ds_num)
				continue;
			if (seen & (1u << o->cd.ds))
				dup = 1;
			seen |= 1u << o->cd.ds;
		}
		if (dup)
			kw_err("collectd type %s/%s: two metrics fill the same data source", m->cd.type,
			       m->cd.ti[0] ? m->cd.ti : "(no type instance)");
		else if (!group_bad && seen != (1u << rows[i].ds_num) - 1)
			kw_err("collectd type %s/%s: %u data sources but the metric table fills only some of them",
			       m->cd.type, m->cd.ti[0] ? m->cd.ti : "(no type instance)", rows[i].ds_num);
		if (dup || group_bad || seen != (1u << rows[i].ds_num) - 1) {
			for (j = i; j < KW_METRIC__N; j++)
				if (kw_metrics[j].cd.type && same_group(&kw_metrics[j], m))
					bad_row[j] = 1;
		}
	}
	for (i = 0; i < KW_METRIC__N; i++) {
		if (bad_row[i]) {
			bad++;
			rows[i].publish = 0;
		} else {
			rows[i].publish = rows[i].ds_num > 0;
		}
	}
	free(bad_row);
	return bad;
}

/* ========================================================== identifiers */
static uint32_t fnv1a(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* Length of a well-formed UTF-8 sequence at p for a code point >= U+00A0
 * (no C1 controls), else 0. */
static size_t utf8_ok(const unsigned char *p)
{
	size_t n = kw_utf8_len(p);

	if (n < 2 || (p[0] == 0xC2 && p[1] < 0xA0))
		return 0;
	return n;
}

/* joined: `in` is parts already sanitised and joined with ':' (keep ':' and
 * the parts' '~' hash suffixes; only the length and `reserved` apply). */
static int sanitize_ex(char *out, size_t maxlen, const char *in, const char *reserved, int joined)
{
	char tmp[1024];
	size_t o = 0, i = 0, keep;
	int altered = 0, toolong = 0;

	if (maxlen > KWCD_NAME_MAX - 1)
		maxlen = KWCD_NAME_MAX - 1;
	while (in[i]) {
		unsigned char c = (unsigned char)in[i];
		size_t n = 1;

		if (isalnum(c) || c == '.' || c == '_' || c == '-' || (joined && (c == ':' || c == '~'))) {
			if (c >= 0x80) /* isalnum in a non-C locale */
				goto bad;
		} else if (c >= 0x80 && (n = utf8_ok((const unsigned char *)in + i))) {
			/* kept */
		} else {
		bad:
			n = 1;
			altered = 1;
			if (o + 1 >= sizeof(tmp)) {
				toolong = 1;
				break;
			}
			tmp[o++] = '_';
			i++;
			continue;
		}
		if (o + n >= sizeof(tmp)) {
			toolong = 1;
			break;
		}
		memcpy(tmp + o, in + i, n);
		o += n;
		i += n;
	}
	tmp[o] = '\0';
	if (!altered && !toolong && o <= maxlen && !(reserved && !strcmp(tmp, reserved))) {
		memcpy(out, tmp, o + 1);
		return 0;
	}
	keep = o;
	if (keep > maxlen - 9)
		keep = maxlen - 9;
	while (keep > 0 && ((unsigned char)tmp[keep] & 0xC0) == 0x80)
		keep--; /* do not split a UTF-8 sequence */
	snprintf(out, maxlen + 1, "%.*s~%08x", (int)keep, tmp, fnv1a(in));
	return 1;
}

int kwcd_sanitize(char *out, size_t maxlen, const char *in, const char *reserved)
{
	return sanitize_ex(out, maxlen, in, reserved, 0);
}

static void field_value(const struct kwcd *k, int f, const struct kwcd_vmid *id, char *out)
{
	char num[16];

	switch (f) {
	case KWCD_F_HOSTNAME:
		kwcd_sanitize(out, KWCD_IDENT_MAX, k->hostname, NULL);
		return;
	case KWCD_F_UUID:
		if (id->uuid && id->uuid[0]) {
			kwcd_sanitize(out, KWCD_IDENT_MAX, id->uuid, NULL);
			return;
		}
		break; /* unknown: the name */
	case KWCD_F_PVEID:
		if (id->pve_id >= 0) {
			snprintf(num, sizeof(num), "%d", id->pve_id);
			kw_strlcpy(out, num, KWCD_NAME_MAX);
			return;
		}
		break;
	case KWCD_F_NONE:
		out[0] = '\0';
		return;
	}
	kwcd_sanitize(out, KWCD_IDENT_MAX, id->name && id->name[0] ? id->name : "unnamed", NULL);
}

static void format_fields(const struct kwcd *k, const int *fmt, int n, const struct kwcd_vmid *id,
			  const char *reserved, char *out)
{
	char joined[KWCD_FMT_MAX * KWCD_NAME_MAX + KWCD_FMT_MAX], part[KWCD_NAME_MAX];
	int i;

	joined[0] = '\0';
	for (i = 0; i < n; i++) {
		field_value(k, fmt[i], id, part);
		if (i)
			strcat(joined, ":");
		strcat(joined, part);
	}
	if (!joined[0]) {
		out[0] = '\0';
		return;
	}
	sanitize_ex(out, KWCD_IDENT_MAX, joined, reserved, 1);
}

void kwcd_vm_host(const struct kwcd *k, const struct kwcd_vmid *id, char *out)
{
	format_fields(k, k->host_fmt, k->nhost, id, NULL, out);
}

void kwcd_vm_plugin_instance(const struct kwcd *k, const struct kwcd_vmid *id, char *out)
{
	format_fields(k, k->pinst_fmt, k->npinst, id, k->host_instance, out);
}

const char *kwcd_host_instance(const struct kwcd *k) { return k->host_instance; }

/* ======================================================= configuration */
struct kwcd *kwcd_new(void)
{
	struct kwcd *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	kw_config_defaults(&k->cfg);
	k->cfg.libvirt_retry = 1; /* collectd may start before libvirtd */
	k->il_domain = kw_ignorelist_create(0);
	k->il_iface = kw_ignorelist_create(0);
	k->il_block = kw_ignorelist_create(0);
	k->rows = calloc(KW_METRIC__N, sizeof(*k->rows));
	if (!k->il_domain || !k->il_iface || !k->il_block || !k->rows) {
		kwcd_free(k);
		return NULL;
	}
	k->pinst_fmt[0] = KWCD_F_NAME;
	k->npinst = 1;
	k->host_fmt[0] = KWCD_F_HOSTNAME;
	k->nhost = 1;
	kw_strlcpy(k->host_instance, "host", sizeof(k->host_instance));
	kw_strlcpy(k->hostname, "localhost", sizeof(k->hostname));
	k->virt.own = 1;
	k->virt.report_block = 1;
	k->virt.report_iface = 1;
	k->virt.refresh_s = 60;
	return k;
}

void kwcd_free(struct kwcd *k)
{
	if (!k)
		return;
	if (k->started)
		kw_collector_fini(&k->coll);
	kw_config_free(&k->cfg);
	kw_ignorelist_free(k->il_domain);
	kw_ignorelist_free(k->il_iface);
	kw_ignorelist_free(k->il_block);
	free(k->rows);
	free(k->idents);
	free(k->virt.prev);
	free(k);
}

void kwcd_config_failed(struct kwcd *k) { k->config_failed = 1; }

static const char *vtype_name(int t)
{
	return t == KWCD_V_STRING ? "a string" : t == KWCD_V_NUMBER ? "a number" : "a boolean";
}

int kwcd_want(const char *key, const struct kwcd_value *v, int nv, int type, int min, int max, char *err,
		size_t errlen)
{
	int i;

	if (nv < min || nv > max) {
		if (min == max)
			snprintf(err, errlen, "option %s takes %d %s argument%s, got %d", key, min,
				 type == KWCD_V_STRING ? "string" : "boolean", min == 1 ? "" : "s", nv);
		else
			snprintf(err, errlen, "option %s takes %d to %d string arguments, got %d", key, min, max, nv);
		return -EINVAL;
	}
	for (i = 0; i < nv; i++) {
		if (v[i].type != type) {
			snprintf(err, errlen, "option %s: argument %d must be %s, not %s", key, i + 1,
				 vtype_name(type), vtype_name(v[i].type));
			return -EINVAL;
		}
	}
	return 0;
}

static int set_list(struct kw_ignorelist *il, const char *key, const struct kwcd_value *v, int nv, char *err,
		    size_t errlen)
{
	char why[256];
	int i, r;

	if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 64, err, errlen)))
		return r;
	for (i = 0; i < nv; i++) {
		if ((r = kw_ignorelist_add(il, v[i].s, why, sizeof(why)))) {
			snprintf(err, errlen, "option %s \"%s\": %s", key, v[i].s, why);
			return r;
		}
	}
	return 0;
}

static int set_format(const char *key, const struct kwcd_value *v, int nv, int *fmt, int *n, int pinst,
		      char *err, size_t errlen)
{
	static const struct {
		const char *name;
		int f;
	} names[] = { { "name", KWCD_F_NAME }, { "uuid", KWCD_F_UUID }, { "pveid", KWCD_F_PVEID },
		      { "hostname", KWCD_F_HOSTNAME }, { "none", KWCD_F_NONE }, { "metadata", KWCD_F_METADATA } };
	int i, r;
	size_t j;

	if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, KWCD_FMT_MAX, err, errlen)))
		return r;
	for (i = 0; i < nv; i++) {
		for (j = 0; j < KW_ARRAY_SIZE(names); j++)
			if (!strcasecmp(v[i].s, names[j].name))
				break;
		if (j == KW_ARRAY_SIZE(names) || (pinst && names[j].f == KWCD_F_HOSTNAME) ||
		    (!pinst && names[j].f == KWCD_F_NONE)) {
			snprintf(err, errlen, "option %s: unknown field \"%s\" (expected %s)", key, v[i].s,
				 pinst ? "name, uuid, pveid, metadata or none" : "hostname, name, uuid, pveid or metadata");
			return -EINVAL;
		}
		if (names[j].f == KWCD_F_NONE && nv > 1) {
			snprintf(err, errlen, "option %s: \"none\" cannot be combined with other fields", key);
			return -EINVAL;
		}
		fmt[i] = names[j].f;
	}
	*n = nv;
	return 0;
}

static int set_root(char *dst, size_t len, const char *key, const struct kwcd_value *v, int nv, char *err,
		    size_t errlen)
{
	int r;

	if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 1, err, errlen)))
		return r;
	if (v[0].s[0] != '/') {
		snprintf(err, errlen, "option %s: \"%s\" is not an absolute path", key, v[0].s);
		return -EINVAL;
	}
	if (strlen(v[0].s) >= len) {
		snprintf(err, errlen, "option %s: path longer than %zu bytes", key, len - 1);
		return -EINVAL;
	}
	kw_strlcpy(dst, v[0].s, len);
	return 0;
}

static int set_source(struct kwcd *k, int src, const char *key, const struct kwcd_value *v, int nv, char *err,
		      size_t errlen)
{
	int r;

	if ((r = kwcd_want(key, v, nv, KWCD_V_BOOLEAN, 1, 1, err, errlen)))
		return r;
	if (v[0].b)
		k->cfg.sources |= 1u << src;
	else
		k->cfg.sources &= ~(1u << src);
	return 0;
}

int kwcd_config_set(struct kwcd *k, const char *key, const struct kwcd_value *v, int nv, char *err,
		    size_t errlen)
{
	int r, i;

	if ((r = kwcd_virt_config(k, key, v, nv, err, errlen)) <= 0)
		return r;
	if (!strcasecmp(key, "Connection")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 1, err, errlen)))
			return r;
		if (!v[0].s[0] || strlen(v[0].s) >= sizeof(k->cfg.libvirt_uri)) {
			snprintf(err, errlen, "option %s: URI must be 1 to %zu bytes", key,
				 sizeof(k->cfg.libvirt_uri) - 1);
			return -EINVAL;
		}
		kw_strlcpy(k->cfg.libvirt_uri, v[0].s, sizeof(k->cfg.libvirt_uri));
		return 0;
	}
	if (!strcasecmp(key, "Domain"))
		return set_list(k->il_domain, key, v, nv, err, errlen);
	if (!strcasecmp(key, "Interface") || !strcasecmp(key, "InterfaceDevice"))
		return set_list(k->il_iface, key, v, nv, err, errlen);
	if (!strcasecmp(key, "BlockDevice"))
		return set_list(k->il_block, key, v, nv, err, errlen);
	if (!strcasecmp(key, "IgnoreSelected")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_BOOLEAN, 1, 1, err, errlen)))
			return r;
		k->ignore_selected = v[0].b;
		return 0;
	}
	if (!strcasecmp(key, "CollectProcfs"))
		return set_source(k, KW_SRC_PROC, key, v, nv, err, errlen);
	if (!strcasecmp(key, "CollectLibvirt"))
		return set_source(k, KW_SRC_LIBVIRT, key, v, nv, err, errlen);
	if (!strcasecmp(key, "CollectKVMStats"))
		return set_source(k, KW_SRC_KVMSTAT, key, v, nv, err, errlen);
	if (!strcasecmp(key, "CollectBPF"))
		return set_source(k, KW_SRC_BPF, key, v, nv, err, errlen);
	if (!strcasecmp(key, "CollectQMP"))
		return set_source(k, KW_SRC_QMP, key, v, nv, err, errlen);
	if (!strcasecmp(key, "BPFFeature")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 16, err, errlen)))
			return r;
		for (i = 0; i < nv; i++) {
			int bit;

			if (!strcasecmp(v[i].s, "all")) {
				k->cfg.bpf_features |= KW_BPF_ALL;
				continue;
			}
			bit = kw_feature_from_name(v[i].s);
			if (bit < 0) {
				snprintf(err, errlen,
					 "option %s: unknown eBPF feature \"%s\" (expected all, exits, mmu, mmio, "
					 "dirty, halt_poll, wakeup or irq)",
					 key, v[i].s);
				return -EINVAL;
			}
			k->cfg.bpf_features |= 1u << bit;
		}
		k->bpf_given = 1;
		return 0;
	}
	if (!strcasecmp(key, "CollectHostTotals")) {
		if ((r = kwcd_want(key, v, nv, KWCD_V_BOOLEAN, 1, 1, err, errlen)))
			return r;
		k->cfg.no_host = !v[0].b;
		return 0;
	}
	if (!strcasecmp(key, "HostInstance")) {
		char clean[KWCD_NAME_MAX];

		if ((r = kwcd_want(key, v, nv, KWCD_V_STRING, 1, 1, err, errlen)))
			return r;
		if (!v[0].s[0] || kwcd_sanitize(clean, KWCD_IDENT_MAX, v[0].s, NULL)) {
			snprintf(err, errlen, "option %s: \"%s\" is not a valid plugin instance (use letters, digits, "
				 "'.', '_', '-')", key, v[0].s);
			return -EINVAL;
		}
		kw_strlcpy(k->host_instance, v[0].s, sizeof(k->host_instance));
		return 0;
	}
	if (!strcasecmp(key, "PluginInstanceFormat")) {
		k->pinst_given = 1;
		return set_format(key, v, nv, k->pinst_fmt, &k->npinst, 1, err, errlen);
	}
	if (!strcasecmp(key, "HostnameFormat")) {
		k->host_given = 1;
		return set_format(key, v, nv, k->host_fmt, &k->nhost, 0, err, errlen);
	}
	if (!strcasecmp(key, "ProcFS"))
		return set_root(k->cfg.procfs, sizeof(k->cfg.procfs), key, v, nv, err, errlen);
	if (!strcasecmp(key, "SysFS"))
		return set_root(k->cfg.sysfs, sizeof(k->cfg.sysfs), key, v, nv, err, errlen);
	snprintf(err, errlen,
		 "unknown option \"%s\" (known: Connection, Domain, Interface, BlockDevice, IgnoreSelected, "
		 "CollectProcfs, CollectLibvirt, CollectKVMStats, CollectBPF, CollectQMP, BPFFeature, "
		 "CollectHostTotals, HostInstance, PluginInstanceFormat, HostnameFormat, ProcFS, SysFS, Compat, "
		 "ReportKvmwatchMetrics, and with Compat \"virt\" those of collectd's virt plugin)",
		 key);
	return -EINVAL;
}

static int fmt_has(const int *fmt, int n, int f)
{
	int i;

	for (i = 0; i < n; i++)
		if (fmt[i] == f)
			return 1;
	return 0;
}

static int fmt_has_vm(const int *fmt, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (fmt[i] == KWCD_F_NAME || fmt[i] == KWCD_F_UUID || fmt[i] == KWCD_F_PVEID)
			return 1;
	return 0;
}

int kwcd_start(struct kwcd *k, const char *hostname, kwcd_type_lookup_fn lookup, void *arg, char *err,
	       size_t errlen)
{
	int bad;

	if (k->config_failed) {
		snprintf(err, errlen, "not starting: the <Plugin kvmwatch> configuration has errors (see above)");
		return -1;
	}
	if (k->started) {
		snprintf(err, errlen, "already started");
		return -1;
	}
	if (!(k->cfg.sources & KW_SOURCES_ALL)) {
		snprintf(err, errlen, "not starting: every source is disabled (CollectProcfs, CollectLibvirt, "
			 "CollectKVMStats, CollectBPF and CollectQMP are all false)");
		return -1;
	}
	if (k->virt.on) {
		/* virt's defaults: host = the domain name, no plugin instance */
		if (!k->host_given) {
			k->host_fmt[0] = KWCD_F_NAME;
			k->nhost = 1;
		}
		if (!k->pinst_given) {
			k->pinst_fmt[0] = KWCD_F_NONE;
			k->npinst = 1;
		}
		if (fmt_has(k->host_fmt, k->nhost, KWCD_F_PVEID) || fmt_has(k->pinst_fmt, k->npinst, KWCD_F_PVEID)) {
			snprintf(err, errlen, "not starting: the pveid field is kvmwatch's, not virt's: not with Compat "
				 "\"virt\"");
			return -1;
		}
	} else {
		if (fmt_has(k->host_fmt, k->nhost, KWCD_F_METADATA) ||
		    fmt_has(k->pinst_fmt, k->npinst, KWCD_F_METADATA)) {
			snprintf(err, errlen, "not starting: the metadata field needs Compat \"virt\"");
			return -1;
		}
	}
	if (kwcd_virt_start(k, lookup, arg, err, errlen))
		return -1;
	if (!k->virt.on && k->npinst == 1 && k->pinst_fmt[0] == KWCD_F_NONE && !fmt_has_vm(k->host_fmt, k->nhost)) {
		snprintf(err, errlen, "not starting: PluginInstanceFormat none needs HostnameFormat to include "
			 "name, uuid or pveid, or all VMs would share one identifier");
		return -1;
	}
	if (k->bpf_given && !(k->cfg.sources & (1u << KW_SRC_BPF))) {
		snprintf(err, errlen, "not starting: BPFFeature is set but CollectBPF is false");
		return -1;
	}
	if (!k->bpf_given)
		k->cfg.bpf_features = KW_BPF_ALL;
	kw_ignorelist_set_ignore_selected(k->il_domain, k->ignore_selected);
	kw_ignorelist_set_ignore_selected(k->il_iface, k->ignore_selected);
	kw_ignorelist_set_ignore_selected(k->il_block, k->ignore_selected);
	if (hostname && hostname[0])
		kw_strlcpy(k->hostname, hostname, sizeof(k->hostname));
	bad = kwcd_table_check(k->rows, lookup, arg);
	if (bad < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (bad)
		kw_err("%d metric table row%s not published: %s not match types.db (see above)", bad,
		       bad == 1 ? "" : "s", bad == 1 ? "it does" : "they do");
	if (kw_collector_init(&k->coll, &k->cfg, err, errlen) < 0)
		return -1;
	k->started = 1;
	return 0;
}

/* ============================================================ publishing */
struct ent {
	const char *type;
	char ti[KWCD_NAME_MAX];
	int metric;
	const struct kw_sample *s;
};

static int ent_cmp(const void *pa, const void *pb)
{
	const struct ent *a = pa, *b = pb;
	int r = strcmp(a->type, b->type);

	if (r)
		return r;
	if ((r = strcmp(a->ti, b->ti)))
		return r;
	return (int)kw_metrics[a->metric].cd.ds - (int)kw_metrics[b->metric].cd.ds;
}

static void set_value(struct kwcd_vl *vl, int i, int dstype, const struct kw_sample *s, uint32_t div)
{
	vl->v[i].type = dstype;
	if (dstype == KWCD_DS_GAUGE) {
		vl->v[i].gauge = kw_sample_value(s) / (double)div;
	} else {
		uint64_t u = s->is_double ? (s->v.d > 0 ? (uint64_t)s->v.d : 0) : s->v.u;

		u /= div;
		vl->v[i].counter = u;
		vl->v[i].derive = u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)u;
	}
}

int kwcd_publish_set(struct kwcd *k, const struct kw_sampleset *ss, const char *host, const char *pinst,
		     const char *devctx, uint64_t time_ns, kwcd_dispatch_fn fn, void *arg,
		     struct kwcd_read_stats *st)
{
	struct ent *e;
	size_t i, n = 0, g;

	if (!ss->n)
		return 0;
	if (!(e = calloc(ss->n, sizeof(*e))))
		return -ENOMEM;
	for (i = 0; i < ss->n; i++) {
		const struct kw_sample *s = &ss->s[i];
		const struct kw_metric_def *m;
		char raw[KW_INST_MAX + KWCD_NAME_MAX], alt[KWCD_NAME_MAX + KW_INST_MAX + 2];
		struct kw_ignorelist *il = NULL;

		if (s->metric >= KW_METRIC__N || !k->rows[s->metric].publish || (k->virt.on && k->virt.covered[s->metric]))
			continue;
		m = &kw_metrics[s->metric];
		if (m->scope == KW_SCOPE_NETIF || m->scope == KW_SCOPE_HOST_NET)
			il = k->il_iface;
		else if (m->scope == KW_SCOPE_DISK || m->scope == KW_SCOPE_HOST_DISK)
			il = k->il_block;
		if (il) {
			snprintf(alt, sizeof(alt), "%s:%s", devctx, s->inst);
			if (kw_ignorelist_ignored(il, s->inst, alt))
				continue;
		}
		kw_metric_fmt(raw, sizeof(raw), m->cd.ti, s->inst);
		kwcd_sanitize(e[n].ti, KWCD_IDENT_MAX, raw, NULL);
		e[n].type = m->cd.type;
		e[n].metric = s->metric;
		e[n].s = s;
		n++;
	}
	qsort(e, n, sizeof(*e), ent_cmp);
	for (g = 0; g < n;) {
		const struct kwcd_row *row = &k->rows[e[g].metric];
		struct kwcd_vl vl;
		unsigned have = 0, full;
		size_t j;

		memset(&vl, 0, sizeof(vl));
		kw_strlcpy(vl.host, host, sizeof(vl.host));
		kw_strlcpy(vl.plugin, "kvmwatch", sizeof(vl.plugin));
		kw_strlcpy(vl.plugin_instance, pinst, sizeof(vl.plugin_instance));
		kw_strlcpy(vl.type, e[g].type, sizeof(vl.type));
		kw_strlcpy(vl.type_instance, e[g].ti, sizeof(vl.type_instance));
		vl.time_ns = time_ns;
		vl.n = row->ds_num;
		full = (1u << vl.n) - 1;
		for (j = 0; j < vl.n; j++) {
			vl.v[j].type = KWCD_DS_GAUGE;
			vl.v[j].gauge = NAN;
		}
		for (j = g; j < n && !strcmp(e[j].type, e[g].type) && !strcmp(e[j].ti, e[g].ti); j++) {
			const struct kw_metric_def *m = &kw_metrics[e[j].metric];

			set_value(&vl, m->cd.ds, k->rows[e[j].metric].ds_type, e[j].s, m->cd.div);
			have |= 1u << m->cd.ds;
		}
		g = j;
		/* A data source without a sample this cycle: a GAUGE is sent as NaN
		 * (unknown); a counter cannot be, and 0 would read as a reset, so
		 * the value list is left out this cycle. */
		if ((have | row->gauge_mask) != full) {
			if (st)
				st->incomplete++;
			kw_debug("%s/%s-%s: a data source has no sample this cycle, not dispatched", pinst, vl.type,
				 vl.type_instance);
			continue;
		}
		if (fn(&vl, arg)) {
			if (st)
				st->failed++;
		} else if (st) {
			st->dispatched++;
		}
	}
	free(e);
	return 0;
}

static int vm_ident(struct kwcd *k, const struct kw_vm *vm, const struct kwcd_vmid *id, char *host, char *pinst);

int kwcd_read(struct kwcd *k, kwcd_dispatch_fn fn, void *arg, struct kwcd_read_stats *st, char *err,
	      size_t errlen)
{
	struct kwcd_read_stats local;
	size_t i;
	int r;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (!k->started) {
		snprintf(err, errlen, "not started");
		return -1;
	}
	r = kw_collector_collect(&k->coll);
	if (r < 0) {
		snprintf(err, errlen, "failed to collect from %s: %s", k->cfg.procfs, strerror(-r));
		return -1;
	}
	/* host totals are kvmwatch's own metrics: with Compat "virt" only when asked */
	if (!k->cfg.no_host && (!k->virt.on || k->virt.own) &&
	    kwcd_publish_set(k, &k->coll.host, k->hostname, k->host_instance, k->host_instance,
			     k->coll.ts_real_ns, fn, arg, st) == -ENOMEM) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (k->virt.on) {
		if (kwcd_virt_read(k, fn, arg, st) == -ENOMEM) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		return 0;
	}
	for (i = 0; i < k->coll.vms.n; i++) {
		const struct kw_vm *vm = &k->coll.vms.vms[i];
		struct kwcd_vmid id = { vm->name, vm->uuid, vm->pve_id };
		char host[KWCD_NAME_MAX], pinst[KWCD_NAME_MAX];

		if (kw_ignorelist_ignored(k->il_domain, vm->name, vm->uuid[0] ? vm->uuid : NULL)) {
			st->vms_ignored++;
			continue;
		}
		if (vm_ident(k, vm, &id, host, pinst)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		if (kwcd_publish_set(k, &vm->stats, host, pinst, vm->name, k->coll.ts_real_ns, fn, arg, st) ==
		    -ENOMEM) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		st->vms++;
	}
	return 0;
}

static struct kwcd_ident *ident_find(struct kwcd *k, const char *key)
{
	size_t i;

	for (i = 0; i < k->nidents; i++)
		if (!strcmp(k->idents[i].key, key))
			return &k->idents[i];
	return NULL;
}

static int ident_taken(const struct kwcd *k, const char *host, const char *pinst, const char *key)
{
	size_t i;

	if (!strcmp(pinst, k->host_instance) && !strcmp(host, k->hostname))
		return 1; /* the host totals' */
	for (i = 0; i < k->nidents; i++)
		if (strcmp(k->idents[i].key, key) && !strcmp(k->idents[i].host, host) &&
		    !strcmp(k->idents[i].pinst, pinst) && k->idents[i].cycle + 1 >= k->coll.cycle)
			return 1;
	return 0;
}

/* host and plugin_instance of a VM: from the formats, unless another live
 * VM already has that identifier (two VMs named alike: collectd would take
 * them for one, "value too old", and lose one's data) -- then "_<pid>" (a
 * counter after it if need be) on the plugin_instance, or on the host when
 * the plugin_instance is empty.  A VM keeps what it was given while it lives. */
static int vm_ident(struct kwcd *k, const struct kw_vm *vm, const struct kwcd_vmid *id, char *host, char *pinst)
{
	struct kwcd_ident *e = ident_find(k, vm->key);
	char base_h[KWCD_NAME_MAX], base_p[KWCD_NAME_MAX], sfx[32];
	unsigned n;
	size_t i;

	if (e) {
		e->cycle = k->coll.cycle;
		kw_strlcpy(host, e->host, KWCD_NAME_MAX);
		kw_strlcpy(pinst, e->pinst, KWCD_NAME_MAX);
		return 0;
	}
	kwcd_vm_host(k, id, base_h);
	kwcd_vm_plugin_instance(k, id, base_p);
	kw_strlcpy(host, base_h, KWCD_NAME_MAX);
	kw_strlcpy(pinst, base_p, KWCD_NAME_MAX);
	for (n = 1; ident_taken(k, host, pinst, vm->key); n++) {
		char *part = base_p[0] ? pinst : host;
		const char *base = base_p[0] ? base_p : base_h;
		size_t room;

		if (n == 1)
			snprintf(sfx, sizeof(sfx), "_%d", (int)vm->pid);
		else
			snprintf(sfx, sizeof(sfx), "_%d_%u", (int)vm->pid, n);
		room = KWCD_IDENT_MAX > strlen(sfx) ? KWCD_IDENT_MAX - strlen(sfx) : 0;
		snprintf(part, KWCD_NAME_MAX, "%.*s%s", (int)(strlen(base) < room ? strlen(base) : room), base, sfx);
		if (n == 1)
			kw_log(KW_LOG_INFO, "VM '%s' (pid %d) is reported as %s/%s: another VM has %s/%s", vm->name,
			       (int)vm->pid, host, pinst, base_h, base_p);
	}
	/* forget VMs gone since the last cycle */
	for (i = 0; i < k->nidents;)
		if (k->idents[i].cycle + 1 < k->coll.cycle)
			k->idents[i] = k->idents[--k->nidents];
		else
			i++;
	if (kw_grow((void **)&k->idents, &k->identcap, k->nidents, sizeof(*k->idents)))
		return -ENOMEM;
	e = &k->idents[k->nidents++];
	kw_strlcpy(e->key, vm->key, sizeof(e->key));
	kw_strlcpy(e->host, host, sizeof(e->host));
	kw_strlcpy(e->pinst, pinst, sizeof(e->pinst));
	e->cycle = k->coll.cycle;
	return 0;
}

void kwcd_log_sink(void (*fn)(int level, const char *msg, void *arg), void *arg)
{
	kw_log_set_sink(fn, arg);
}
