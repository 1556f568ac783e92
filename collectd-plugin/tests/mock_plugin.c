// SPDX-License-Identifier: GPL-2.0
/* mock_plugin.c - collectd's plugin API mocked, linked with the real glue
 * (kvmwatch.o): drives module_register, the config/init/read/shutdown
 * callbacks with oconfig trees and records dispatched value lists and log
 * lines.
 *
 * Usage: test_glue TYPES_DB [VM_NAME VCPUS]
 *   With a VM name (a running guest), also checks its value lists. */
#include "collectd/core/daemon/collectd.h"
#include "collectd/core/daemon/plugin.h"
#include "collectd/core/utils/common/common.h"

#include "kwcd.h"

#include <math.h>

void module_register(void);

/* ----------------------------------------------------------- the mocks */
char *hostname_g = "mockhost";

static int (*config_cb)(oconfig_item_t *);
static int (*init_cb)(void);
static int (*shutdown_cb)(void);
static plugin_read_cb read_cb;
static char read_name[64];
static char logs[1 << 16];

#define MAXVL 4096
static value_list_t vls[MAXVL];
static value_t vals[MAXVL][4];
static int nvl;

static struct kwcd_typesdb db;
static data_set_t ds_cache[512];
static data_source_t src_cache[512][KWCD_DS_MAX];
static int nds;

char *sstrncpy(char *dest, const char *src, size_t n)
{
	strncpy(dest, src, n);
	if (n)
		dest[n - 1] = '\0';
	return dest;
}

void plugin_log(int level, const char *format, ...)
{
	size_t l = strlen(logs);
	va_list ap;

	snprintf(logs + l, sizeof(logs) - l, "[%d] ", level);
	l = strlen(logs);
	va_start(ap, format);
	vsnprintf(logs + l, sizeof(logs) - l, format, ap);
	va_end(ap);
	l = strlen(logs);
	snprintf(logs + l, sizeof(logs) - l, "\n");
}

int plugin_register_complex_config(const char *type, int (*callback)(oconfig_item_t *))
{
	config_cb = callback;
	return 0;
}

int plugin_register_init(const char *name, plugin_init_cb callback)
{
	init_cb = callback;
	return 0;
}

int plugin_register_shutdown(const char *name, plugin_shutdown_cb callback)
{
	shutdown_cb = callback;
	return 0;
}

int plugin_register_complex_read(const char *group, const char *name, plugin_read_cb callback,
				 cdtime_t interval, user_data_t const *user_data)
{
	read_cb = callback;
	snprintf(read_name, sizeof(read_name), "%s", name);
	return 0;
}

const data_set_t *plugin_get_ds(const char *name)
{
	struct kwcd_type t;
	int i;

	for (i = 0; i < nds; i++)
		if (!strcmp(ds_cache[i].type, name))
			return &ds_cache[i];
	if (kwcd_typesdb_lookup(name, &t, &db) || nds == 512)
		return NULL;
	sstrncpy(ds_cache[nds].type, t.name, sizeof(ds_cache[nds].type));
	ds_cache[nds].ds_num = t.n;
	ds_cache[nds].ds = src_cache[nds];
	for (i = 0; i < (int)t.n; i++) {
		sstrncpy(src_cache[nds][i].name, t.ds[i].name, DATA_MAX_NAME_LEN);
		src_cache[nds][i].type = t.ds[i].type;
	}
	return &ds_cache[nds++];
}

static int notifications;

int plugin_dispatch_notification(const notification_t *n)
{
	(void)n;
	notifications++;
	return 0;
}

cdtime_t plugin_get_interval(void)
{
	return TIME_T_TO_CDTIME_T(10);
}

int plugin_dispatch_values(value_list_t const *vl)
{
	if (nvl >= MAXVL || vl->values_len > 4)
		return -1;
	vls[nvl] = *vl;
	memcpy(vals[nvl], vl->values, vl->values_len * sizeof(value_t));
	vls[nvl].values = vals[nvl];
	nvl++;
	return 0;
}

/* ----------------------------------------------------------- the tests */
#include "ctest.h"

/* A <Plugin kvmwatch> block from "Key" "value"... lines; values "true",
 * "false" become booleans, "#N" numbers. */
static oconfig_item_t *block(const char *const *lines, int n)
{
	oconfig_item_t *ci = calloc(1, sizeof(*ci));
	int i;

	ci->key = strdup("Plugin");
	ci->children = calloc((size_t)n, sizeof(*ci->children));
	ci->children_num = n;
	for (i = 0; i < n; i++) {
		oconfig_item_t *c = &ci->children[i];
		char *copy = strdup(lines[i]), *save = NULL, *tok;

		c->key = strdup(strtok_r(copy, " ", &save));
		c->values = calloc(8, sizeof(*c->values));
		c->parent = ci;
		while ((tok = strtok_r(NULL, " ", &save)) && c->values_num < 8) {
			oconfig_value_t *v = &c->values[c->values_num++];
			if (!strcmp(tok, "true") || !strcmp(tok, "false")) {
				v->type = OCONFIG_TYPE_BOOLEAN;
				v->value.boolean = !strcmp(tok, "true");
			} else if (tok[0] == '#') {
				v->type = OCONFIG_TYPE_NUMBER;
				v->value.number = atof(tok + 1);
			} else {
				v->type = OCONFIG_TYPE_STRING;
				v->value.string = strdup(tok);
			}
		}
		free(copy);
	}
	return ci;
}

static void block_free(oconfig_item_t *ci)
{
	for (int i = 0; i < ci->children_num; i++) {
		oconfig_item_t *c = &ci->children[i];
		for (int j = 0; j < c->values_num; j++)
			if (c->values[j].type == OCONFIG_TYPE_STRING)
				free(c->values[j].value.string);
		free(c->values);
		free(c->key);
	}
	free(ci->children);
	free(ci->key);
	free(ci);
}

static const value_list_t *find(const char *pinst, const char *type, const char *ti)
{
	for (int i = nvl - 1; i >= 0; i--)
		if (!strcmp(vls[i].plugin_instance, pinst) && !strcmp(vls[i].type, type) &&
		    !strcmp(vls[i].type_instance, ti))
			return &vls[i];
	return NULL;
}

static int run_config(const char *const *lines, int n)
{
	oconfig_item_t *ci = block(lines, n);
	int r = config_cb(ci);

	block_free(ci);
	return r;
}

int main(int argc, char **argv)
{
	char err[256], dir[] = "/tmp/kwcd-glue-XXXXXX", link[300], procfs_opt[320];
	const char *vm = argc >= 4 ? argv[2] : NULL;
	int vcpus = argc >= 4 ? atoi(argv[3]) : 0;
	const value_list_t *vl;

	if (argc < 2 || kwcd_typesdb_load(&db, argv[1], err, sizeof(err))) {
		fprintf(stderr, "usage: %s TYPES_DB [VM VCPUS] (%s)\n", argv[0], argc < 2 ? "" : err);
		return 2;
	}
	module_register();
	CHECK(config_cb && init_cb && read_cb && shutdown_cb && !strcmp(read_name, "kvmwatch"));

	/* 1. a bad key: config fails with the message, init refuses */
	{
		const char *const bad[] = { "CollectHostTotals true", "Bogus \"x\"", "IgnoreSelected yes" };
		logs[0] = '\0';
		CHECK(run_config(bad, 3) == -1);
		CHECK(strstr(logs, "[3] kvmwatch plugin: unknown option \"Bogus\""));
		CHECK(strstr(logs, "[3] kvmwatch plugin: option IgnoreSelected: argument 1 must be a boolean, not a string"));
		CHECK(init_cb() == -1);
		CHECK(strstr(logs, "kvmwatch plugin: not starting: the <Plugin kvmwatch> configuration has errors"));
		CHECK(read_cb(NULL) == -1); /* never started */
		shutdown_cb();
	}
	/* 2. a procfs root that goes away and comes back */
	CHECK(mkdtemp(dir) != NULL);
	snprintf(link, sizeof(link), "%s/proc", dir);
	CHECK(symlink("/proc", link) == 0);
	snprintf(procfs_opt, sizeof(procfs_opt), "ProcFS %s", link);
	{
		const char *const good[] = { procfs_opt, "CollectLibvirt false", "CollectBPF false",
					     "CollectKVMStats false", "PluginInstanceFormat name" };
		logs[0] = '\0';
		nvl = 0;
		CHECK(run_config(good, 5) == 0);
		CHECK(init_cb() == 0);
		CHECK(!strstr(logs, "[3]"));
		CHECK(read_cb(NULL) == 0);
		vl = find("host", "memory", "total");
		CHECK(vl && vl->values_len == 1 && vl->values[0].gauge > 0 && !strcmp(vl->host, "mockhost") &&
		      !strcmp(vl->plugin, "kvmwatch") && vl->time > 0);
		vl = find("host", "cpu", "idle");
		CHECK(vl && vl->values[0].derive > 0);
		vl = find("host", "count", "cpus");
		CHECK(vl && vl->values[0].gauge >= 1);
		for (int i = 0; i < nvl; i++) { /* every identifier part is valid */
			CHECK(vls[i].plugin_instance[0] && !strchr(vls[i].plugin_instance, '/') &&
			      !strchr(vls[i].type_instance, '/') && plugin_get_ds(vls[i].type) &&
			      plugin_get_ds(vls[i].type)->ds_num == vls[i].values_len);
		}
		if (vm) {
			vl = find(vm, "vcpu", "");
			CHECK(vl && vl->values[0].gauge == vcpus);
			vl = find(vm, "ps_cputime", "");
			CHECK(vl && vl->values_len == 2);
			vl = find(vm, "virt_vcpu", "0");
			CHECK(vl && vl->values[0].derive > 0);
			vl = find(vm, "memory", "rss");
			CHECK(vl && vl->values[0].gauge > 0);
			printf("vm %s: %d vcpus, rss %.0f bytes\n", vm, vcpus, vl ? vl->values[0].gauge : NAN);
		}
		printf("dispatched %d value lists\n", nvl);
		CHECK(unlink(link) == 0);
		logs[0] = '\0';
		CHECK(read_cb(NULL) == -1);
		CHECK(strstr(logs, "[3] kvmwatch plugin: failed to collect from"));
		CHECK(symlink("/proc", link) == 0);
		nvl = 0;
		CHECK(read_cb(NULL) == 0 && find("host", "memory", "total"));
		shutdown_cb();
		unlink(link);
		rmdir(dir);
	}
	/* 3. Domain list selects only the given VM; a missing ProcFS root refuses to start */
	if (vm) {
		char dom[300];
		const char *const sel[] = { dom, "CollectHostTotals false" };

		snprintf(dom, sizeof(dom), "Domain %s", vm);
		nvl = 0;
		CHECK(run_config(sel, 2) == 0 && init_cb() == 0 && read_cb(NULL) == 0);
		CHECK(nvl > 0);
		for (int i = 0; i < nvl; i++)
			CHECK(!strcmp(vls[i].plugin_instance, vm));
		shutdown_cb();
	}
	{
		const char *const missing[] = { "ProcFS /nonexistent/proc" };
		logs[0] = '\0';
		CHECK(run_config(missing, 1) == 0 && init_cb() == -1);
		CHECK(strstr(logs, "kvmwatch plugin: procfs root /nonexistent/proc: No such file or directory"));
		shutdown_cb();
	}
	kwcd_typesdb_free(&db);
	if (ctest_failures) {
		fprintf(stderr, "%d check(s) failed; log:\n%s", ctest_failures, logs);
		return 1;
	}
	printf("all glue tests passed\n");
	return 0;
}
