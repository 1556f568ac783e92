// SPDX-License-Identifier: GPL-2.0
/* nd_chart.c - the plugins.d protocol side of kvmwatch.plugin (see nd_chart.h). */
#include "nd_chart.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ND_PLUGIN "kvmwatch.plugin"
#define ND_HOST_TYPE "kvm_host"

/* ------------------------------------------------------------ sanitising */

void nd_sanitize_type(char *out, size_t len, const char *name)
{
	const unsigned char *s = (const unsigned char *)name;
	size_t o, n = 0;
	int last_us = 0;

	o = (size_t)snprintf(out, len, "kvm_");
	if (o >= len)
		return;
	for (; *s && n < ND_VMNAME_MAX && o + 1 < len; s++) {
		unsigned char ch = *s;

		if (isalnum(ch) && ch < 0x80) {
			out[o++] = (char)tolower(ch);
			last_us = 0;
		} else if (ch == '-' || ch == '_') {
			out[o++] = (char)ch;
			last_us = 0;
		} else if (!last_us) {
			out[o++] = '_';
			last_us = 1;
		} else {
			continue;
		}
		n++;
	}
	out[o] = '\0';
}

void nd_sanitize_id(char *out, size_t len, const char *s, size_t maxchars)
{
	size_t o = 0;

	for (; *s && o < maxchars && o + 1 < len; s++) {
		unsigned char ch = (unsigned char)*s;
		out[o++] = (ch < 0x80 && (isalnum(ch) || ch == '-' || ch == '_')) ? (char)ch : '_';
	}
	out[o] = '\0';
}

void nd_sanitize_text(char *out, size_t len, const char *str, size_t maxbytes)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t o = 0;

	if (maxbytes > len - 1)
		maxbytes = len - 1;
	while (*s) {
		size_t n = kw_utf8_len(s);

		if (n == 1 && (*s < 0x20 || *s == 0x7f || *s == '"' || *s == '\'' || *s == '\\' || *s == '`'))
			n = 0;
		if (n == 0) {
			if (o + 1 > maxbytes)
				break;
			out[o++] = '_';
			s++;
			continue;
		}
		if (o + n > maxbytes)
			break;
		memcpy(out + o, s, n);
		o += n;
		s += n;
	}
	out[o] = '\0';
}

/* ---------------------------------------------------------------- state */

void nd_state_init(struct nd_state *st, FILE *out, int update_every)
{
	memset(st, 0, sizeof(*st));
	st->out = out;
	st->update_every = update_every;
	st->host_all = 1;
	st->host.is_host = 1;
	kw_strlcpy(st->host.key, "host", sizeof(st->host.key));
	kw_strlcpy(st->host.type, ND_HOST_TYPE, sizeof(st->host.type));
}

static void chart_free(struct nd_chart *ch)
{
	free(ch->dims);
	ch->dims = NULL;
	ch->ndims = ch->cap = 0;
}

static void obj_free(struct nd_obj *o)
{
	size_t i;

	for (i = 0; i < o->ncharts; i++)
		chart_free(&o->charts[i]);
	free(o->charts);
	o->charts = NULL;
	o->ncharts = o->cap = 0;
}

void nd_state_free(struct nd_state *st)
{
	size_t i;

	for (i = 0; i < st->nvms; i++)
		obj_free(&st->vms[i]);
	free(st->vms);
	obj_free(&st->host);
	st->vms = NULL;
	st->nvms = st->cap = 0;
}

/* ----------------------------------------------------------- emitting */

static int is_inst_chart(const struct kw_chart_def *cd)
{
	return cd->scope == KW_CH_VM_INST || cd->scope == KW_CH_HOST_INST;
}

static void emit_chart(struct nd_state *st, const struct nd_obj *o, const struct nd_chart *ch, int obsolete)
{
	const struct kw_chart_def *cd = &kw_charts[ch->chart];
	char title[512], dev[ND_LABEL_MAX + 1];
	const char *dot = strchr(ch->id, '.');

	nd_sanitize_text(dev, sizeof(dev), ch->inst, 64);
	if (o->is_host)
		snprintf(title, sizeof(title), "%s%s%s", cd->title, *dev ? " " : "", dev);
	else if (*dev)
		snprintf(title, sizeof(title), "%s (%s, %s)", cd->title, o->name, dev);
	else
		snprintf(title, sizeof(title), "%s (%s)", cd->title, o->name);
	fprintf(st->out, "CHART \"%s\" \"%s\" \"%s\" \"%s\" \"%s\" \"%s\" \"%s\" %d %d \"%s\" \"%s\" \"%s\"\n",
		ch->id, dot ? dot + 1 : ch->id, title, cd->units, cd->family, cd->context, cd->type,
		cd->priority, st->update_every, obsolete ? "obsolete" : "", ND_PLUGIN, o->is_host ? "host" : "vm");
}

static void emit_definition(struct nd_state *st, const struct nd_obj *o, const struct nd_chart *ch)
{
	char dev[ND_LABEL_MAX + 1];
	size_t i;

	emit_chart(st, o, ch, 0);
	for (i = 0; i < ch->ndims; i++) {
		const struct kw_metric_def *m = &kw_metrics[ch->dims[i].metric];

		fprintf(st->out, "DIMENSION \"%s\" \"%s\" \"%s\" %d %d \"\"\n", ch->dims[i].id, ch->dims[i].id,
			m->nd.algo, m->nd.mul ? m->nd.mul : 1, m->nd.div ? m->nd.div : 1);
	}
	/* CLABEL needs three arguments and must follow a CHART (netdata 1.37). */
	if (!o->is_host) {
		fprintf(st->out, "CLABEL \"vm_name\" \"%s\" 1\n", *o->name ? o->name : "_");
		if (*o->uuid)
			fprintf(st->out, "CLABEL \"uuid\" \"%s\" 1\n", o->uuid);
		if (o->pid > 0)
			fprintf(st->out, "CLABEL \"pid\" \"%d\" 1\n", o->pid);
		if (*o->vmm)
			fprintf(st->out, "CLABEL \"vmm\" \"%s\" 1\n", o->vmm);
		if (*o->cgroup_name) {
			nd_sanitize_text(dev, sizeof(dev), o->cgroup, ND_LABEL_MAX);
			fprintf(st->out, "CLABEL \"cgroup\" \"%s\" 1\n", dev);
			fprintf(st->out, "CLABEL \"cgroup_name\" \"%s\" 1\n", o->cgroup_name);
		}
	}
	if (*ch->inst) {
		nd_sanitize_text(dev, sizeof(dev), ch->inst, ND_LABEL_MAX);
		fprintf(st->out, "CLABEL \"device\" \"%s\" 1\n", dev);
	}
	/* netdata 1.37 disables a plugin whose CLABEL_COMMIT follows no CLABEL. */
	if (!o->is_host || *ch->inst)
		fprintf(st->out, "CLABEL_COMMIT\n");
}

/* The integer netdata receives.  Integral samples go as they are (the
 * row's multiplier/divisor scale them); fractional gauges (PSI percent) are
 * sent as value * divisor / |multiplier| so the chart shows the value
 * itself with the row's precision. */
static int64_t set_value(const struct kw_metric_def *m, const struct kw_sample *s)
{
	if (s->is_double) {
		int mul = m->nd.mul ? abs(m->nd.mul) : 1, div = m->nd.div ? m->nd.div : 1;
		double v = s->v.d * (double)div / (double)mul;

		if (!isfinite(v))
			return 0;
		if (v >= 9.2e18)
			return INT64_MAX;
		if (v <= -9.2e18)
			return -INT64_MAX;
		return (int64_t)llround(v);
	}
	return s->v.u > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)s->v.u;
}

/* ------------------------------------------------------ chart bookkeeping */

/* Host charts netdata's proc.plugin also draws: system.cpu, system.ram /
 * mem.*, system.*_pressure, disk.* / disk_ops.* / disk_util.*, net.* /
 * net_packets.* / net_errors.* / net_drops.*.  kvm_host.vms is kvmwatch's
 * own. */
static int proc_plugin_draws(int chart)
{
	switch (chart) {
	case KW_CH_HOST_CPU:
	case KW_CH_HOST_MEM:
	case KW_CH_HOST_PSI:
	case KW_CH_HOST_DISK_OPS:
	case KW_CH_HOST_DISK_IO:
	case KW_CH_HOST_DISK_TIME:
	case KW_CH_HOST_NET:
	case KW_CH_HOST_NET_PKTS:
		return 1;
	default:
		return 0;
	}
}

static struct nd_chart *find_chart(struct nd_obj *o, int chart, const char *inst)
{
	size_t i;

	for (i = 0; i < o->ncharts; i++)
		if (o->charts[i].chart == chart && !strcmp(o->charts[i].inst, inst))
			return &o->charts[i];
	return NULL;
}

static struct nd_chart *add_chart(struct nd_obj *o, int chart, const char *inst)
{
	const struct kw_chart_def *cd = &kw_charts[chart];
	char id[ND_ID_MAX + 1], dev[ND_DEV_MAX + 1];
	struct nd_chart *ch;
	size_t i, room;

	if (*inst) {
		/* type "." id "_" dev <= ND_ID_MAX */
		size_t used = strlen(o->type) + 1 + strlen(cd->id) + 1;

		room = used + 1 < ND_ID_MAX ? ND_ID_MAX - used : 1;
		nd_sanitize_id(dev, sizeof(dev), inst, room < ND_DEV_MAX ? room : ND_DEV_MAX);
		if (snprintf(id, sizeof(id), "%s.%s_%s", o->type, cd->id, dev) >= (int)sizeof(id))
			return NULL; /* cannot happen: room was computed above */
	} else if (snprintf(id, sizeof(id), "%s.%s", o->type, cd->id) >= (int)sizeof(id)) {
		return NULL;
	}
	for (i = 0; i < o->ncharts; i++) {
		if (!strcmp(o->charts[i].id, id)) {
			char key[512];
			snprintf(key, sizeof(key), "nd-chart-collide:%s:%s", o->key, id);
			kw_log_once(KW_LOG_WARN, key,
				    "chart %s: devices '%s' and '%s' have the same sanitised name; the second is not charted",
				    id, o->charts[i].inst, inst);
			return NULL;
		}
	}
	if (kw_grow((void **)&o->charts, &o->cap, o->ncharts, sizeof(*o->charts)))
		return NULL;
	ch = &o->charts[o->ncharts++];
	memset(ch, 0, sizeof(*ch));
	ch->chart = (uint16_t)chart;
	kw_strlcpy(ch->inst, inst, sizeof(ch->inst));
	kw_strlcpy(ch->id, id, sizeof(ch->id));
	ch->need_def = 1;
	return ch;
}

static struct nd_dim *get_dim(struct nd_obj *o, struct nd_chart *ch, int metric, const char *inst)
{
	const struct kw_metric_def *m = &kw_metrics[metric];
	char raw[256], id[ND_DIM_MAX + 1];
	struct nd_dim *d;
	size_t i;

	kw_metric_fmt(raw, sizeof(raw), m->nd.dim, inst);
	nd_sanitize_id(id, sizeof(id), raw, ND_DIM_MAX);
	if (!*id)
		kw_strlcpy(id, "_", sizeof(id));
	for (i = 0; i < ch->ndims; i++) {
		d = &ch->dims[i];
		if (strcmp(d->id, id))
			continue;
		if (d->metric == metric && !strcmp(d->inst, inst))
			return d;
		{
			char key[512];
			snprintf(key, sizeof(key), "nd-dim-collide:%s:%s:%s", o->key, ch->id, id);
			kw_log_once(KW_LOG_WARN, key,
				    "chart %s: %s[%s] and %s[%s] map to the same dimension '%s'; the second is not charted",
				    ch->id, kw_metrics[d->metric].name, d->inst, m->name, inst, id);
		}
		return NULL;
	}
	if (kw_grow((void **)&ch->dims, &ch->cap, ch->ndims, sizeof(*ch->dims)))
		return NULL;
	d = &ch->dims[ch->ndims++];
	memset(d, 0, sizeof(*d));
	kw_strlcpy(d->id, id, sizeof(d->id));
	d->metric = (uint16_t)metric;
	kw_strlcpy(d->inst, inst, sizeof(d->inst));
	ch->need_def = 1; /* the chart must be re-sent before its next BEGIN */
	return d;
}

/* Route every sample of one object to its chart and dimension. */
static int route(struct nd_state *st, struct nd_obj *o, const struct kw_sampleset *ss)
{
	size_t i;

	for (i = 0; i < ss->n; i++) {
		const struct kw_sample *s = &ss->s[i];
		const struct kw_metric_def *m;
		const struct kw_chart_def *cd;
		struct nd_chart *ch;
		struct nd_dim *d;
		int inst_chart;

		if (s->metric >= KW_METRIC__N)
			continue;
		m = &kw_metrics[s->metric];
		if (m->nd.chart >= KW_CHART__N)
			continue;
		if (o->is_host && !st->host_all && proc_plugin_draws(m->nd.chart))
			continue;
		cd = &kw_charts[m->nd.chart];
		inst_chart = is_inst_chart(cd);
		if (o->is_host != (cd->scope == KW_CH_HOST || cd->scope == KW_CH_HOST_INST) ||
		    (inst_chart && !*s->inst)) {
			char key[128];
			snprintf(key, sizeof(key), "nd-scope:%s", m->name);
			kw_log_once(KW_LOG_WARN, key, "metric %s does not fit chart %s (scope): not charted",
				    m->name, cd->id);
			continue;
		}
		ch = find_chart(o, m->nd.chart, inst_chart ? s->inst : "");
		if (!ch && !(ch = add_chart(o, m->nd.chart, inst_chart ? s->inst : "")))
			continue;
		if (!(d = get_dim(o, ch, s->metric, s->inst)))
			continue;
		d->val = set_value(m, s);
		d->val_cycle = st->cycle;
		ch->cycle = st->cycle;
	}
	return 0;
}

/* Send what one object collected this cycle; obsolete its per-device charts
 * whose device is gone. */
static void flush_obj(struct nd_state *st, struct nd_obj *o, uint64_t ts_ns)
{
	size_t i = 0, k;

	while (i < o->ncharts) {
		struct nd_chart *ch = &o->charts[i];

		if (ch->cycle != st->cycle) {
			if (*ch->inst) {
				if (!ch->need_def)
					emit_chart(st, o, ch, 1);
				chart_free(ch);
				o->charts[i] = o->charts[--o->ncharts];
				continue;
			}
			i++;
			continue;
		}
		if (ch->need_def) {
			emit_definition(st, o, ch);
			ch->need_def = 0;
		}
		if (ch->last_ns && ts_ns > ch->last_ns)
			fprintf(st->out, "BEGIN \"%s\" %" PRIu64 "\n", ch->id, (ts_ns - ch->last_ns) / 1000);
		else
			fprintf(st->out, "BEGIN \"%s\"\n", ch->id);
		for (k = 0; k < ch->ndims; k++)
			if (ch->dims[k].val_cycle == st->cycle)
				fprintf(st->out, "SET \"%s\" = %" PRId64 "\n", ch->dims[k].id, ch->dims[k].val);
		/* a chart variable for alerts (health.d/kvmwatch.conf divides by it) */
		if (!o->is_host && o->nvcpus > 0 && ch->vcpus_sent != o->nvcpus) {
			fprintf(st->out, "VARIABLE CHART \"vcpus\" = %d\n", o->nvcpus);
			ch->vcpus_sent = o->nvcpus;
		}
		fprintf(st->out, "END\n");
		ch->last_ns = ts_ns;
		i++;
	}
}

static void obsolete_obj(struct nd_state *st, struct nd_obj *o)
{
	size_t i;

	for (i = 0; i < o->ncharts; i++)
		if (!o->charts[i].need_def)
			emit_chart(st, o, &o->charts[i], 1);
}

/* ---------------------------------------------------------- VM identity */

static int type_taken(const struct nd_state *st, const char *type)
{
	size_t i;

	if (!strcmp(type, ND_HOST_TYPE))
		return 1;
	for (i = 0; i < st->nvms; i++)
		if (!strcmp(st->vms[i].type, type))
			return 1;
	return 0;
}

/* kvm_<name>; when another live VM (or the host charts) already has it,
 * kvm_<name>_<pid> (or _<uuid prefix>), then a counter. */
static void assign_type(struct nd_state *st, struct nd_obj *o, const struct kw_vm *vm)
{
	char base[ND_VMNAME_MAX + 8], t[ND_ID_MAX + 1], sfx[48];
	unsigned n;

	nd_sanitize_type(base, sizeof(base), *vm->name ? vm->name : "vm");
	if (!type_taken(st, base)) {
		kw_strlcpy(o->type, base, sizeof(o->type));
		return;
	}
	if (vm->pid > 0)
		snprintf(sfx, sizeof(sfx), "%d", vm->pid);
	else
		nd_sanitize_id(sfx, sizeof(sfx), *vm->uuid ? vm->uuid : vm->key, 8);
	if (snprintf(t, sizeof(t), "%s_%s", base, sfx) >= (int)sizeof(t))
		t[sizeof(t) - 1] = '\0';
	for (n = 2; type_taken(st, t); n++)
		if (snprintf(t, sizeof(t), "%s_%s_%u", base, sfx, n) >= (int)sizeof(t))
			t[sizeof(t) - 1] = '\0';
	kw_log(KW_LOG_INFO, "VM '%s' (pid %d) charted as %s: %s is taken", o->name, vm->pid, t, base);
	kw_strlcpy(o->type, t, sizeof(o->type));
}

static struct nd_obj *find_vm(struct nd_state *st, const char *key)
{
	size_t i;

	for (i = 0; i < st->nvms; i++)
		if (!strcmp(st->vms[i].key, key))
			return &st->vms[i];
	return NULL;
}

/* The VM's cgroup and cgroups.plugin's name for it; a change (a VM moved
 * into its cgroup after we found it) re-sends its charts' labels. */
static void update_cgroup(struct nd_state *st, struct nd_obj *o, const struct kw_vm *vm)
{
	char cg[ND_CGROUP_MAX];
	size_t i;

	if (!st->procfs || o->pid <= 0 || nd_cgroup_of_pid(st->procfs, o->pid, st->cgroup_unified, cg, sizeof(cg)))
		return; /* unreadable: keep what we had */
	if (!strcmp(cg, o->cgroup))
		return;
	kw_strlcpy(o->cgroup, cg, sizeof(o->cgroup));
	nd_cgroup_name(cg, vm->name, vm->pve_id >= 0, o->cgroup_name, sizeof(o->cgroup_name));
	for (i = 0; i < o->ncharts; i++)
		o->charts[i].need_def = 1;
}

int nd_publish(struct nd_state *st, const struct kw_collector *c)
{
	size_t i;

	st->cycle++;
	/* 1. known VMs */
	for (i = 0; i < c->vms.n; i++) {
		struct nd_obj *o = find_vm(st, c->vms.vms[i].key);
		if (o)
			o->cycle = st->cycle;
	}
	/* 2. VMs that went away: obsolete their charts, free their names */
	for (i = 0; i < st->nvms;) {
		if (st->vms[i].cycle != st->cycle) {
			kw_log(KW_LOG_INFO, "VM '%s' (pid %d) went away: its charts %s.* are obsolete", st->vms[i].name,
			       st->vms[i].pid, st->vms[i].type);
			obsolete_obj(st, &st->vms[i]);
			obj_free(&st->vms[i]);
			st->vms[i] = st->vms[--st->nvms];
			continue;
		}
		i++;
	}
	/* 3. new VMs */
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		struct nd_obj *o;

		if (find_vm(st, vm->key))
			continue;
		if (kw_grow((void **)&st->vms, &st->cap, st->nvms, sizeof(*st->vms)))
			return -ENOMEM;
		o = &st->vms[st->nvms];
		memset(o, 0, sizeof(*o));
		kw_strlcpy(o->key, vm->key, sizeof(o->key));
		nd_sanitize_text(o->name, sizeof(o->name), vm->name, ND_LABEL_MAX);
		nd_sanitize_text(o->uuid, sizeof(o->uuid), vm->uuid, sizeof(o->uuid) - 1);
		nd_sanitize_text(o->vmm, sizeof(o->vmm), vm->vmm, sizeof(o->vmm) - 1);
		o->pid = vm->pid;
		o->cycle = st->cycle;
		assign_type(st, o, vm);
		st->nvms++;
	}
	/* 4. samples */
	for (i = 0; i < c->vms.n; i++) {
		struct nd_obj *o = find_vm(st, c->vms.vms[i].key);

		if (!o)
			continue;
		o->nvcpus = c->vms.vms[i].nvcpus;
		update_cgroup(st, o, &c->vms.vms[i]);
		route(st, o, &c->vms.vms[i].stats);
		flush_obj(st, o, c->ts_mono_ns);
	}
	route(st, &st->host, &c->host);
	flush_obj(st, &st->host, c->ts_mono_ns);
	return 0;
}
