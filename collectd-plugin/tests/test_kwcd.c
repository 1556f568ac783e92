// SPDX-License-Identifier: GPL-2.0
/* test_kwcd.c - unit tests of the collectd plugin's logic (no collectd):
 * the metric table against types.db, identifiers, config, grouping.
 * Usage: test_kwcd TYPES_DB */
#include "kwcd_priv.h"
#include "util/kw_util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctest.h"

/* ------------------------------------------------------------ log capture */
static char logbuf[65536];
static void capture(int level, const char *msg, void *arg)
{
	size_t l = strlen(logbuf);

	snprintf(logbuf + l, sizeof(logbuf) - l, "%d %s\n", level, msg);
}

/* --------------------------------------------------- a broken types.db */
struct mutated {
	struct kwcd_typesdb *db;
	const char *type; /* the type to change */
	int how;          /* 0 missing, 1 swap ds names, 2 all ds GAUGE, 3 add a ds */
};
static int mutated_lookup(const char *type, struct kwcd_type *out, void *arg)
{
	struct mutated *m = arg;

	if (kwcd_typesdb_lookup(type, out, m->db))
		return -ENOENT;
	if (strcmp(type, m->type))
		return 0;
	switch (m->how) {
	case 0:
		return -ENOENT;
	case 1: {
		char tmp[KWCD_NAME_MAX];
		memcpy(tmp, out->ds[0].name, sizeof(tmp));
		memcpy(out->ds[0].name, out->ds[1].name, sizeof(tmp));
		memcpy(out->ds[1].name, tmp, sizeof(tmp));
		break;
	}
	case 2:
		for (size_t i = 0; i < out->n; i++)
			out->ds[i].type = KWCD_DS_GAUGE;
		break;
	case 3:
		snprintf(out->ds[out->n].name, KWCD_NAME_MAX, "extra");
		out->ds[out->n++].type = KWCD_DS_DERIVE;
		break;
	}
	return 0;
}

static void test_table(struct kwcd_typesdb *db)
{
	struct kwcd_row rows[KW_METRIC__N];
	struct mutated m = { db, "if_octets", 0 };
	int bad, i, published = 0;

	logbuf[0] = '\0';
	bad = kwcd_table_check(rows, kwcd_typesdb_lookup, db);
	if (bad)
		fprintf(stderr, "table check against types.db:\n%s", logbuf);
	CHECK(bad == 0);
	for (i = 0; i < KW_METRIC__N; i++) {
		const struct kw_metric_def *d = &kw_metrics[i];
		/* every row with a collectd type is published; its kind matches */
		if (d->cd.type && d->cd.type[0]) {
			CHECK(rows[i].publish);
			CHECK((d->kind == KW_GAUGE) == (rows[i].ds_type == KWCD_DS_GAUGE));
			published++;
		}
	}
	printf("table: %d of %d metrics map to valid collectd types\n", published, KW_METRIC__N);
	CHECK(published > 0);

	/* a type missing from types.db */
	logbuf[0] = '\0';
	bad = kwcd_table_check(rows, mutated_lookup, &m);
	CHECK(bad == 2 * 2); /* net.rx/tx_bytes and host.net.rx/tx_bytes */
	CHECK(strstr(logbuf, "metric net.rx_bytes: collectd type \"if_octets\" is not in types.db"));
	CHECK(!rows[KW_M_NET_RX_BYTES].publish && !rows[KW_M_H_NET_TX_BYTES].publish);
	CHECK(rows[KW_M_NET_RX_PKTS].publish);
	/* swapped data sources (rx/tx) */
	m.how = 1;
	logbuf[0] = '\0';
	bad = kwcd_table_check(rows, mutated_lookup, &m);
	CHECK(bad == 4);
	CHECK(strstr(logbuf, "metric net.rx_bytes: data source 0 of type if_octets is \"tx\", which does not fit"));
	/* counters into a GAUGE type */
	m.how = 2;
	logbuf[0] = '\0';
	bad = kwcd_table_check(rows, mutated_lookup, &m);
	CHECK(bad == 4);
	CHECK(strstr(logbuf, "metric net.tx_bytes: a counter metric cannot fill GAUGE data source if_octets:tx"));
	/* a data source no row fills */
	m.how = 3;
	logbuf[0] = '\0';
	bad = kwcd_table_check(rows, mutated_lookup, &m);
	CHECK(bad == 4);
	CHECK(strstr(logbuf, "collectd type if_octets/%s: 3 data sources but the metric table fills only some"));
	/* a gauge */
	m.type = "memory";
	m.how = 0;
	logbuf[0] = '\0';
	bad = kwcd_table_check(rows, mutated_lookup, &m);
	CHECK(bad > 0 && !rows[KW_M_MEM_RSS].publish && rows[KW_M_VCPUS].publish);
}

static void test_typesdb_parse(void)
{
	struct kwcd_type t;

	CHECK(kwcd_typesdb_parse_line("if_octets   rx:DERIVE:0:U, tx:DERIVE:0:U\n", &t) == 1);
	CHECK(t.n == 2 && !strcmp(t.name, "if_octets") && !strcmp(t.ds[1].name, "tx") &&
	      t.ds[1].type == KWCD_DS_DERIVE);
	CHECK(kwcd_typesdb_parse_line("memory value:GAUGE:0:281474976710656", &t) == 1 && t.ds[0].type == KWCD_DS_GAUGE);
	CHECK(kwcd_typesdb_parse_line("# comment", &t) == 0);
	CHECK(kwcd_typesdb_parse_line("   ", &t) == 0);
	CHECK(kwcd_typesdb_parse_line("bad rx:FOO:0:U", &t) == -EINVAL);
	CHECK(kwcd_typesdb_parse_line("bad", &t) == -EINVAL);
	CHECK(kwcd_typesdb_parse_line("bad rx", &t) == -EINVAL);
}

/* ------------------------------------------------------------ identifiers */
static int valid_ident(const char *s)
{
	size_t l = strlen(s);

	if (l == 0 || l > KWCD_NAME_MAX - 1)
		return 0;
	for (; *s; s++)
		if (*s == '/' || (unsigned char)*s < 0x20 || *s == ' ' || *s == '"' || *s == '\'' || *s == 0x7f)
			return 0;
	return 1;
}

static void test_sanitize(void)
{
	char a[KWCD_NAME_MAX], b[KWCD_NAME_MAX], longname[400];

	CHECK(kwcd_sanitize(a, 127, "web01.example-1_x", "host") == 0 && !strcmp(a, "web01.example-1_x"));
	CHECK(kwcd_sanitize(a, 127, "caf\xc3\xa9", NULL) == 0 && !strcmp(a, "caf\xc3\xa9")); /* UTF-8 kept */
	CHECK(kwcd_sanitize(a, 127, "a/b", NULL) == 1 && !strncmp(a, "a_b~", 4) && strlen(a) == 12);
	CHECK(kwcd_sanitize(b, 127, "a b", NULL) == 1 && strcmp(a, b) != 0); /* distinct names stay distinct */
	CHECK(kwcd_sanitize(b, 127, "a_b", NULL) == 0 && strcmp(a, b) != 0);
	CHECK(kwcd_sanitize(a, 127, "evil \"quoted\" 'name'\nline2\t", NULL) == 1 && valid_ident(a));
	CHECK(kwcd_sanitize(a, 127, "\xff\xfe\xc0\xaf", NULL) == 1 && !strncmp(a, "____~", 5)); /* invalid UTF-8 */
	CHECK(kwcd_sanitize(a, 127, "\xed\xa0\x80", NULL) == 1);   /* a surrogate */
	CHECK(kwcd_sanitize(a, 127, "\xc2\x85", NULL) == 1);       /* C1 control */
	CHECK(kwcd_sanitize(a, 127, "host", "host") == 1 && !strncmp(a, "host~", 5) && strlen(a) == 13);
	CHECK(kwcd_sanitize(a, 127, "host", NULL) == 0);
	CHECK(kwcd_sanitize(a, 127, "x~y", NULL) == 1 && strcmp(a, "x~y")); /* '~' is ours */
	memset(longname, 'v', 300);
	longname[300] = '\0';
	CHECK(kwcd_sanitize(a, 127, longname, NULL) == 1 && strlen(a) == 127 && a[118] == '~' && valid_ident(a));
	longname[299] = 'w';
	CHECK(kwcd_sanitize(b, 127, longname, NULL) == 1 && strcmp(a, b) != 0);
	/* a long UTF-8 name is not cut inside a character */
	for (int i = 0; i < 100; i++)
		memcpy(longname + 2 * i, "\xc3\xa9", 2);
	longname[200] = '\0';
	CHECK(kwcd_sanitize(a, 127, longname, NULL) == 1 && strlen(a) <= 127);
	CHECK(strchr(a, '~') && (strchr(a, '~') - a) % 2 == 0);
	CHECK(kwcd_sanitize(a, 127, "", NULL) == 0 && a[0] == '\0');
}

static struct kwcd_value S(const char *s) { return (struct kwcd_value){ .type = KWCD_V_STRING, .s = s }; }
static struct kwcd_value B(int b) { return (struct kwcd_value){ .type = KWCD_V_BOOLEAN, .b = b }; }
static struct kwcd_value N(double n) { return (struct kwcd_value){ .type = KWCD_V_NUMBER, .n = n }; }

static void test_identity(void)
{
	struct kwcd *k = kwcd_new();
	struct kwcd_vmid id = { "web01", "0f0e0d0c-1111-2222-3333-444455556666", 104 };
	struct kwcd_vmid host_named = { "host", "", -1 };
	struct kwcd_vmid hostile = { "my vm/\"1\"", "", -1 };
	struct kwcd_value v[2];
	char out[KWCD_NAME_MAX], err[256];

	kw_strlcpy(k->hostname, "hv1", sizeof(k->hostname));
	kwcd_vm_plugin_instance(k, &id, out);
	CHECK(!strcmp(out, "web01"));
	kwcd_vm_host(k, &id, out);
	CHECK(!strcmp(out, "hv1"));
	kwcd_vm_plugin_instance(k, &host_named, out);
	CHECK(!strncmp(out, "host~", 5) && strcmp(out, kwcd_host_instance(k))); /* never the host totals */
	kwcd_vm_plugin_instance(k, &hostile, out);
	CHECK(valid_ident(out) && !strncmp(out, "my_vm__1_~", 10));
	{
		char longname[301];
		struct kwcd_vmid l = { longname, "", -1 };

		memset(longname, 'a', 300);
		longname[300] = '\0';
		kwcd_vm_plugin_instance(k, &l, out); /* collectdctl's limit */
		CHECK(strlen(out) == KWCD_IDENT_MAX && out[KWCD_IDENT_MAX - 9] == '~');
	}

	v[0] = S("uuid");
	CHECK(kwcd_config_set(k, "PluginInstanceFormat", v, 1, err, sizeof(err)) == 0);
	kwcd_vm_plugin_instance(k, &id, out);
	CHECK(!strcmp(out, id.uuid));
	kwcd_vm_plugin_instance(k, &host_named, out); /* no uuid: the name */
	CHECK(!strncmp(out, "host~", 5));
	v[0] = S("pveid");
	CHECK(kwcd_config_set(k, "PluginInstanceFormat", v, 1, err, sizeof(err)) == 0);
	kwcd_vm_plugin_instance(k, &id, out);
	CHECK(!strcmp(out, "104"));
	v[0] = S("name");
	v[1] = S("uuid");
	CHECK(kwcd_config_set(k, "PluginInstanceFormat", v, 2, err, sizeof(err)) == 0);
	kwcd_vm_plugin_instance(k, &id, out);
	CHECK(!strcmp(out, "web01:0f0e0d0c-1111-2222-3333-444455556666"));
	v[0] = S("hostname");
	v[1] = S("name");
	CHECK(kwcd_config_set(k, "HostnameFormat", v, 2, err, sizeof(err)) == 0);
	kwcd_vm_host(k, &id, out);
	CHECK(!strcmp(out, "hv1:web01"));
	kwcd_free(k);
}

static void test_config(void)
{
	struct kwcd *k = kwcd_new();
	struct kwcd_value v[3];
	char err[512];

	err[0] = '\0';
	v[0] = S("x");
	CHECK(kwcd_config_set(k, "NoSuchKey", v, 1, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "unknown option \"NoSuchKey\""));
	v[0] = S("yes");
	CHECK(kwcd_config_set(k, "IgnoreSelected", v, 1, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "option IgnoreSelected: argument 1 must be a boolean, not a string"));
	v[0] = B(1);
	CHECK(kwcd_config_set(k, "ignoreselected", v, 1, err, sizeof(err)) == 0); /* case-insensitive */
	CHECK(kwcd_config_set(k, "Domain", v, 0, err, sizeof(err)) == -EINVAL);
	v[0] = S("/[unclosed/");
	CHECK(kwcd_config_set(k, "Domain", v, 1, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "option Domain \"/[unclosed/\": bad regular expression"));
	/* regcomp would take gigabytes on these: refused before compiling */
	v[0] = S("/^v++++++++++++++++++++++++m/");
	CHECK(kwcd_config_set(k, "Domain", v, 1, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "too complex"));
	v[0] = S("/((((x{1,50}){1,50}){1,50}))/");
	CHECK(kwcd_config_set(k, "Interface", v, 1, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "too complex"));
	v[0] = S("/^(web|db)-[0-9]{1,3}(-[a-z]+)?$/");
	CHECK(kwcd_config_set(k, "Domain", v, 1, err, sizeof(err)) == 0);
	v[0] = S("relative/proc");
	CHECK(kwcd_config_set(k, "ProcFS", v, 1, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "option ProcFS: \"relative/proc\" is not an absolute path"));
	v[0] = S("name");
	v[1] = S("none");
	CHECK(kwcd_config_set(k, "PluginInstanceFormat", v, 2, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "\"none\" cannot be combined"));
	v[0] = S("hostname");
	CHECK(kwcd_config_set(k, "PluginInstanceFormat", v, 1, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "unknown field \"hostname\""));
	v[0] = S("exits");
	v[1] = S("nosuch");
	CHECK(kwcd_config_set(k, "BPFFeature", v, 2, err, sizeof(err)) == -EINVAL);
	CHECK(strstr(err, "unknown eBPF feature \"nosuch\""));
	v[1] = S("MMIO");
	CHECK(kwcd_config_set(k, "BPFFeature", v, 2, err, sizeof(err)) == 0);
	CHECK(k->cfg.bpf_features == (1u << 0 | 1u << 2));
	v[0] = B(0);
	CHECK(kwcd_config_set(k, "CollectLibvirt", v, 1, err, sizeof(err)) == 0);
	CHECK(kwcd_config_set(k, "CollectKVMStats", v, 1, err, sizeof(err)) == 0);
	CHECK(!(k->cfg.sources & (1u << KW_SRC_LIBVIRT)) && !(k->cfg.sources & (1u << KW_SRC_KVMSTAT)));
	CHECK(k->cfg.sources & (1u << KW_SRC_PROC) && k->cfg.sources & (1u << KW_SRC_BPF));
	v[0] = N(3);
	CHECK(kwcd_config_set(k, "Connection", v, 1, err, sizeof(err)) == -EINVAL);
	v[0] = S("test:///default");
	CHECK(kwcd_config_set(k, "Connection", v, 1, err, sizeof(err)) == 0 &&
	      !strcmp(k->cfg.libvirt_uri, "test:///default"));
	v[0] = S("ho st");
	CHECK(kwcd_config_set(k, "HostInstance", v, 1, err, sizeof(err)) == -EINVAL);
	v[0] = B(0);
	CHECK(kwcd_config_set(k, "CollectHostTotals", v, 1, err, sizeof(err)) == 0 && k->cfg.no_host);
	kwcd_free(k);

	/* cross checks at start */
	k = kwcd_new();
	v[0] = B(0);
	kwcd_config_set(k, "CollectBPF", v, 1, err, sizeof(err));
	v[0] = S("irq");
	kwcd_config_set(k, "BPFFeature", v, 1, err, sizeof(err));
	CHECK(kwcd_start(k, "h", NULL, NULL, err, sizeof(err)) == -1);
	CHECK(strstr(err, "BPFFeature is set but CollectBPF is false"));
	kwcd_free(k);
	k = kwcd_new();
	v[0] = S("none");
	kwcd_config_set(k, "PluginInstanceFormat", v, 1, err, sizeof(err));
	CHECK(kwcd_start(k, "h", NULL, NULL, err, sizeof(err)) == -1);
	CHECK(strstr(err, "PluginInstanceFormat none needs HostnameFormat"));
	kwcd_free(k);
	k = kwcd_new();
	kwcd_config_failed(k);
	CHECK(kwcd_start(k, "h", NULL, NULL, err, sizeof(err)) == -1);
	CHECK(strstr(err, "configuration has errors"));
	kwcd_free(k);
	k = kwcd_new();
	v[0] = B(0);
	kwcd_config_set(k, "CollectProcfs", v, 1, err, sizeof(err));
	kwcd_config_set(k, "CollectLibvirt", v, 1, err, sizeof(err));
	kwcd_config_set(k, "CollectKVMStats", v, 1, err, sizeof(err));
	kwcd_config_set(k, "CollectBPF", v, 1, err, sizeof(err));
	CHECK(kwcd_config_set(k, "CollectQMP", v, 1, err, sizeof(err)) == 0 && !(k->cfg.sources & (1u << KW_SRC_QMP)));
	CHECK(kwcd_start(k, "h", NULL, NULL, err, sizeof(err)) == -1);
	CHECK(strstr(err, "every source is disabled"));
	kwcd_free(k);
}

/* ------------------------------------------------------------ grouping */
#define MAXVL 64
static struct kwcd_vl got[MAXVL];
static int ngot;
static int record(const struct kwcd_vl *vl, void *arg)
{
	if (ngot < MAXVL)
		got[ngot++] = *vl;
	return 0;
}
static const struct kwcd_vl *find_vl(const char *type, const char *ti)
{
	for (int i = 0; i < ngot; i++)
		if (!strcmp(got[i].type, type) && !strcmp(got[i].type_instance, ti))
			return &got[i];
	return NULL;
}

static void test_publish(struct kwcd_typesdb *db)
{
	struct kwcd *k = kwcd_new();
	struct kw_sampleset ss = { 0 };
	struct kwcd_read_stats st = { 0 };
	const struct kwcd_vl *vl;
	struct kwcd_value v[2];
	char err[256];

	CHECK(kwcd_table_check(k->rows, kwcd_typesdb_lookup, db) == 0);
	kw_ss_set_u64(&ss, KW_M_NET_RX_BYTES, "tap0", 1000);
	kw_ss_set_u64(&ss, KW_M_NET_TX_BYTES, "tap0", 2000);
	kw_ss_set_u64(&ss, KW_M_NET_RX_BYTES, "tap1", 5);   /* tx missing: left out */
	kw_ss_set_u64(&ss, KW_M_NET_RX_PKTS, "eth/9", 1);   /* a hostile device name */
	kw_ss_set_u64(&ss, KW_M_NET_TX_PKTS, "eth/9", 2);
	kw_ss_set_u64(&ss, KW_M_CPU_USER, NULL, 7000000);   /* ns -> us */
	kw_ss_set_u64(&ss, KW_M_CPU_SYSTEM, NULL, 3000999);
	kw_ss_set_u64(&ss, KW_M_CPU_GUEST, NULL, 250000000); /* ns -> jiffies */
	kw_ss_set_u64(&ss, KW_M_MEM_RSS, NULL, 4096 * 1000);
	kw_ss_set_u64(&ss, KW_M_VCPU_RUN, "0", 111);
	kw_ss_set_u64(&ss, KW_M_VCPU_RUN, "1", 222);
	kw_ss_set_u64(&ss, KW_M_VCPUS, NULL, 2);
	kw_ss_set_dbl(&ss, KW_M_PSI_CPU_SOME, NULL, 1.5);
	ngot = 0;
	CHECK(kwcd_publish_set(k, &ss, "hv1", "web01", "web01", 1234, record, NULL, &st) == 0);
	CHECK(st.incomplete == 1);
	CHECK(st.dispatched == (size_t)ngot && ngot == 9);
	vl = find_vl("if_octets", "tap0");
	CHECK(vl && vl->n == 2 && vl->v[0].type == KWCD_DS_DERIVE && vl->v[0].derive == 1000 &&
	      vl->v[1].derive == 2000 && !strcmp(vl->host, "hv1") && !strcmp(vl->plugin_instance, "web01") &&
	      vl->time_ns == 1234);
	CHECK(!find_vl("if_octets", "tap1"));
	vl = NULL;
	for (int i = 0; i < ngot; i++)
		if (!strcmp(got[i].type, "if_packets"))
			vl = &got[i];
	CHECK(vl && !strncmp(vl->type_instance, "eth_9~", 6) && vl->v[1].derive == 2);
	vl = find_vl("ps_cputime", "");
	CHECK(vl && vl->n == 2 && vl->v[0].derive == 7000 && vl->v[1].derive == 3000);
	vl = find_vl("cpu", "guest");
	CHECK(vl && vl->n == 1 && vl->v[0].derive == 25);
	vl = find_vl("memory", "rss");
	CHECK(vl && vl->v[0].type == KWCD_DS_GAUGE && vl->v[0].gauge == 4096000.0);
	vl = find_vl("virt_vcpu", "1");
	CHECK(vl && vl->v[0].derive == 222);
	vl = find_vl("vcpu", "");
	CHECK(vl && vl->v[0].gauge == 2.0);
	vl = find_vl("pressure", "cpu-some");
	CHECK(vl && vl->v[0].gauge == 1.5);

	/* Interface list: only tap0 (name or "vm:dev"), then everything but it */
	v[0] = S("web01:tap0");
	CHECK(kwcd_config_set(k, "Interface", v, 1, err, sizeof(err)) == 0);
	ngot = 0;
	kwcd_publish_set(k, &ss, "hv1", "web01", "web01", 1, record, NULL, &st);
	CHECK(find_vl("if_octets", "tap0") && ngot == 8);
	for (int i = 0; i < ngot; i++)
		CHECK(strcmp(got[i].type, "if_packets"));
	kw_ignorelist_set_ignore_selected(k->il_iface, 1);
	ngot = 0;
	kwcd_publish_set(k, &ss, "hv1", "web01", "web01", 1, record, NULL, &st);
	CHECK(!find_vl("if_octets", "tap0") && ngot == 8);
	kw_ss_free(&ss);
	kwcd_free(k);
}

static void test_ignorelist(void)
{
	struct kw_ignorelist *il = kw_ignorelist_create(0);
	char err[128];

	CHECK(!kw_ignorelist_ignored(il, "anything", NULL)); /* empty: collect all */
	CHECK(kw_ignorelist_add(il, "web01", err, sizeof(err)) == 0);
	CHECK(kw_ignorelist_add(il, "/^db-[0-9]+$/", err, sizeof(err)) == 0);
	CHECK(kw_ignorelist_add(il, "", err, sizeof(err)) == -EINVAL);
	CHECK(!kw_ignorelist_ignored(il, "web01", NULL));
	CHECK(!kw_ignorelist_ignored(il, "db-12", NULL));
	CHECK(kw_ignorelist_ignored(il, "db-x", NULL));
	CHECK(kw_ignorelist_ignored(il, "web011", NULL)); /* literal: whole name */
	CHECK(!kw_ignorelist_ignored(il, "x", "web01"));   /* either string */
	kw_ignorelist_set_ignore_selected(il, 1);
	CHECK(kw_ignorelist_ignored(il, "web01", NULL));
	CHECK(!kw_ignorelist_ignored(il, "db-x", NULL));
	CHECK(kw_ignorelist_count(il) == 2);
	kw_ignorelist_free(il);
}

int main(int argc, char **argv)
{
	struct kwcd_typesdb db;
	char err[256];

	if (argc != 2) {
		fprintf(stderr, "usage: %s TYPES_DB\n", argv[0]);
		return 2;
	}
	if (kwcd_typesdb_load(&db, argv[1], err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 2;
	}
	kwcd_log_sink(capture, NULL);
	test_typesdb_parse();
	test_table(&db);
	test_sanitize();
	test_identity();
	test_config();
	test_publish(&db);
	test_ignorelist();
	kwcd_log_sink(NULL, NULL);
	kwcd_typesdb_free(&db);
	if (ctest_failures) {
		fprintf(stderr, "%d check(s) failed\n", ctest_failures);
		return 1;
	}
	printf("all kwcd tests passed\n");
	return 0;
}
