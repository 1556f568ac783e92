// SPDX-License-Identifier: GPL-2.0
/* kvmwatch.c - collectd glue for the kvmwatch read plugin.
 *
 * Only this translation unit sees collectd's headers (its config.h defines
 * hundreds of macros); everything else is in kwcd.c, which knows nothing of
 * collectd.  module_register only registers callbacks; the <Plugin kvmwatch>
 * block is parsed into kwcd; init starts the collector (and refuses to when
 * the configuration had errors); read dispatches one cycle and returns -1 on
 * failure so the daemon backs off and retries. */
#include "collectd/core/daemon/collectd.h"
#include "collectd/core/daemon/plugin.h"
#include "collectd/core/utils/common/common.h"

#include "kwcd.h"

#define PLUGIN_NAME "kvmwatch"

_Static_assert(KWCD_NAME_MAX == DATA_MAX_NAME_LEN, "identifier length");
_Static_assert(KWCD_DS_COUNTER == DS_TYPE_COUNTER && KWCD_DS_GAUGE == DS_TYPE_GAUGE &&
		       KWCD_DS_DERIVE == DS_TYPE_DERIVE && KWCD_DS_ABSOLUTE == DS_TYPE_ABSOLUTE,
	       "data source types");

static struct kwcd *kw_plugin;

static struct kwcd *get_plugin(void)
{
	if (!kw_plugin)
		kw_plugin = kwcd_new();
	return kw_plugin;
}

static void log_to_collectd(int level, const char *msg, void *arg)
{
	plugin_log(level, PLUGIN_NAME " plugin: %s", msg);
}

static int kvmwatch_config(oconfig_item_t *ci)
{
	struct kwcd *k = get_plugin();
	int i, failed = 0;

	if (!k) {
		ERROR(PLUGIN_NAME " plugin: out of memory");
		return -1;
	}
	for (i = 0; i < ci->children_num; i++) {
		oconfig_item_t *c = ci->children + i;
		struct kwcd_value v[64];
		char err[512];
		int j, nv = c->values_num;

		if (c->children_num > 0) {
			ERROR(PLUGIN_NAME " plugin: option %s: unexpected block", c->key);
			failed = 1;
			continue;
		}
		if (nv > (int)STATIC_ARRAY_SIZE(v)) {
			ERROR(PLUGIN_NAME " plugin: option %s: too many arguments (%d)", c->key, nv);
			failed = 1;
			continue;
		}
		for (j = 0; j < nv; j++) {
			const oconfig_value_t *ov = &c->values[j];

			memset(&v[j], 0, sizeof(v[j]));
			if (ov->type == OCONFIG_TYPE_STRING) {
				v[j].type = KWCD_V_STRING;
				v[j].s = ov->value.string;
			} else if (ov->type == OCONFIG_TYPE_NUMBER) {
				v[j].type = KWCD_V_NUMBER;
				v[j].n = ov->value.number;
			} else {
				v[j].type = KWCD_V_BOOLEAN;
				v[j].b = ov->value.boolean;
			}
		}
		if (kwcd_config_set(k, c->key, v, nv, err, sizeof(err))) {
			ERROR(PLUGIN_NAME " plugin: %s", err);
			failed = 1;
		}
	}
	if (failed) {
		kwcd_config_failed(k);
		return -1;
	}
	return 0;
}

/* types.db as the daemon loaded it. */
static int lookup_type(const char *type, struct kwcd_type *out, void *arg)
{
	const data_set_t *ds = plugin_get_ds(type);
	size_t i;

	if (!ds)
		return -ENOENT;
	memset(out, 0, sizeof(*out));
	sstrncpy(out->name, ds->type, sizeof(out->name));
	out->n = ds->ds_num < KWCD_DS_MAX ? ds->ds_num : KWCD_DS_MAX;
	for (i = 0; i < out->n; i++) {
		sstrncpy(out->ds[i].name, ds->ds[i].name, sizeof(out->ds[i].name));
		out->ds[i].type = ds->ds[i].type;
	}
	return 0;
}

static void notify(const struct kwcd_notif *kn, void *arg);

static int kvmwatch_init(void)
{
	struct kwcd *k = get_plugin();
	char err[512];

	if (!k) {
		ERROR(PLUGIN_NAME " plugin: out of memory");
		return -1;
	}
	kwcd_log_sink(log_to_collectd, NULL);
	kwcd_set_notify(k, notify, NULL);
	if (kwcd_start(k, hostname_g, lookup_type, NULL, err, sizeof(err))) {
		ERROR(PLUGIN_NAME " plugin: %s", err);
		return -1;
	}
	return 0;
}

static int dispatch(const struct kwcd_vl *kvl, void *arg)
{
	value_t values[KWCD_DS_MAX];
	value_list_t vl = VALUE_LIST_INIT;
	size_t i;

	for (i = 0; i < kvl->n; i++) {
		switch (kvl->v[i].type) {
		case KWCD_DS_GAUGE:
			values[i].gauge = kvl->v[i].gauge;
			break;
		case KWCD_DS_DERIVE:
			values[i].derive = kvl->v[i].derive;
			break;
		case KWCD_DS_COUNTER:
			values[i].counter = kvl->v[i].counter;
			break;
		default:
			values[i].absolute = kvl->v[i].counter;
			break;
		}
	}
	vl.values = values;
	vl.values_len = kvl->n;
	vl.time = NS_TO_CDTIME_T(kvl->time_ns);
	sstrncpy(vl.host, kvl->host, sizeof(vl.host));
	sstrncpy(vl.plugin, kvl->plugin[0] ? kvl->plugin : PLUGIN_NAME, sizeof(vl.plugin));
	sstrncpy(vl.plugin_instance, kvl->plugin_instance, sizeof(vl.plugin_instance));
	sstrncpy(vl.type, kvl->type, sizeof(vl.type));
	sstrncpy(vl.type_instance, kvl->type_instance, sizeof(vl.type_instance));
	return plugin_dispatch_values(&vl);
}

static void notify(const struct kwcd_notif *kn, void *arg)
{
	notification_t n;

	_Static_assert(KWCD_NOTIF_FAILURE == NOTIF_FAILURE && KWCD_NOTIF_WARNING == NOTIF_WARNING &&
			       KWCD_NOTIF_OKAY == NOTIF_OKAY,
		       "notification severities");
	memset(&n, 0, sizeof(n));
	n.severity = kn->severity;
	n.time = NS_TO_CDTIME_T(kn->time_ns);
	sstrncpy(n.message, kn->message, sizeof(n.message));
	sstrncpy(n.host, kn->host, sizeof(n.host));
	sstrncpy(n.plugin, kn->plugin, sizeof(n.plugin));
	sstrncpy(n.plugin_instance, kn->plugin_instance, sizeof(n.plugin_instance));
	sstrncpy(n.type, kn->type, sizeof(n.type));
	sstrncpy(n.type_instance, kn->type_instance, sizeof(n.type_instance));
	plugin_dispatch_notification(&n);
}

static int kvmwatch_read(user_data_t *ud)
{
	struct kwcd_read_stats st;
	char err[512];

	if (!kw_plugin)
		return -1;
	kwcd_set_interval(kw_plugin, CDTIME_T_TO_NS(plugin_get_interval()));
	if (kwcd_read(kw_plugin, dispatch, NULL, &st, err, sizeof(err))) {
		ERROR(PLUGIN_NAME " plugin: %s", err);
		return -1;
	}
	if (st.failed)
		WARNING(PLUGIN_NAME " plugin: %zu of %zu value lists were not dispatched", st.failed,
			st.failed + st.dispatched);
	return 0;
}

static int kvmwatch_shutdown(void)
{
	kwcd_free(kw_plugin);
	kw_plugin = NULL;
	kwcd_log_sink(NULL, NULL);
	return 0;
}

void module_register(void)
{
	plugin_register_complex_config(PLUGIN_NAME, kvmwatch_config);
	plugin_register_init(PLUGIN_NAME, kvmwatch_init);
	plugin_register_complex_read(NULL, PLUGIN_NAME, kvmwatch_read, 0, NULL);
	plugin_register_shutdown(PLUGIN_NAME, kvmwatch_shutdown);
}
