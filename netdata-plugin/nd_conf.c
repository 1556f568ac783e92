// SPDX-License-Identifier: GPL-2.0
/* nd_conf.c - kvmwatch.conf parsing (see nd_conf.h). */
#include "nd_conf.h"
#include "core/kw_metrics.h"
#include "util/kw_priv.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ND_DEFAULT_USER_CONFIG_DIR "/etc/netdata"
#define ND_DEFAULT_STOCK_CONFIG_DIR "/usr/lib/netdata/conf.d"

void nd_conf_defaults(struct nd_conf *cf)
{
	memset(cf, 0, sizeof(*cf));
	cf->host_charts = ND_HOST_CHARTS_AUTO;
	cf->sources = (1u << KW_SRC__N) - 1;
	kw_strlcpy(cf->vms, "*", sizeof(cf->vms));
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* netdata's boolean words. */
static int parse_bool(const char *v, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1", "auto" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(yes); i++)
		if (!strcasecmp(v, yes[i])) {
			*out = 1;
			return 0;
		}
	for (i = 0; i < KW_ARRAY_SIZE(no); i++)
		if (!strcasecmp(v, no[i])) {
			*out = 0;
			return 0;
		}
	return -EINVAL;
}

enum { SEC_NONE, SEC_GLOBAL, SEC_SOURCES, SEC_BPF, SEC_FILTER, SEC_UNKNOWN };

#define CONF_ERR(cf, path, line, ...)                                               \
	do {                                                                        \
		char m_[512];                                                       \
		snprintf(m_, sizeof(m_), __VA_ARGS__);                              \
		kw_err("config %s:%d: %s", path, line, m_);                         \
		(cf)->errors++;                                                     \
	} while (0)

static void set_bit(unsigned *mask, unsigned bit, int on)
{
	if (on)
		*mask |= 1u << bit;
	else
		*mask &= ~(1u << bit);
}

static void key_value(struct nd_conf *cf, const char *path, int line, int sec, const char *k, const char *v)
{
	int b, bit;
	long l;

	switch (sec) {
	case SEC_GLOBAL:
		if (!strcasecmp(k, "update every")) {
			if (kw_parse_int(v, 1, 86400, &l))
				CONF_ERR(cf, path, line, "invalid 'update every' value '%s' (seconds, 1 to 86400): ignored", v);
			else
				cf->update_every = (int)l;
			return;
		}
		if (!strcasecmp(k, "host charts")) {
			if (!strcasecmp(v, "auto"))
				cf->host_charts = ND_HOST_CHARTS_AUTO;
			else if (parse_bool(v, &b))
				CONF_ERR(cf, path, line, "invalid 'host charts' value '%s' (auto, yes or no): ignored", v);
			else
				cf->host_charts = b ? ND_HOST_CHARTS_YES : ND_HOST_CHARTS_NO;
			return;
		}
		break;
	case SEC_SOURCES:
		if (!strcasecmp(k, "libvirt uri")) {
			if (!*v || strlen(v) >= sizeof(cf->libvirt_uri))
				CONF_ERR(cf, path, line, "invalid 'libvirt uri' '%s': ignored", v);
			else
				kw_strlcpy(cf->libvirt_uri, v, sizeof(cf->libvirt_uri));
			return;
		}
		if ((bit = kw_source_from_name(k)) >= 0) {
			if (parse_bool(v, &b))
				CONF_ERR(cf, path, line, "invalid value '%s' for source '%s' (yes or no): ignored", v, k);
			else
				set_bit(&cf->sources, (unsigned)bit, b);
			return;
		}
		break;
	case SEC_BPF:
		if ((bit = kw_feature_from_name(k)) >= 0) {
			if (parse_bool(v, &b))
				CONF_ERR(cf, path, line, "invalid value '%s' for eBPF feature '%s' (yes or no): ignored", v, k);
			else
				set_bit(&cf->bpf_features, (unsigned)bit, b);
			return;
		}
		break;
	case SEC_FILTER:
		if (!strcasecmp(k, "vms")) {
			if (strlen(v) >= sizeof(cf->vms))
				CONF_ERR(cf, path, line, "'vms' pattern list too long: ignored");
			else
				kw_strlcpy(cf->vms, v, sizeof(cf->vms));
			return;
		}
		break;
	case SEC_UNKNOWN:
		return; /* reported once at the section header */
	default:
		CONF_ERR(cf, path, line, "'%s' outside of a [section]: ignored", k);
		return;
	}
	CONF_ERR(cf, path, line, "unknown key '%s' in this section: ignored", k);
}

int nd_conf_load(struct nd_conf *cf, const char *path)
{
	static const char *const sections[] = { "global", "sources", "bpf", "filter" };
	char buf[8192];
	int line = 0, sec = SEC_NONE;
	/* The path is the caller's choice (--config, NETDATA_*_CONFIG_DIR): it
	 * is opened with the caller's own rights, never with the plugin's
	 * capabilities, and no error quotes what the file holds. */
	FILE *f = kw_priv_fopen_as_caller(path, "r");

	if (!f) {
		int e = errno;
		if (e != ENOENT)
			CONF_ERR(cf, path, 0, "cannot read: %s (using defaults)", strerror(e));
		return -e;
	}
	kw_strlcpy(cf->path, path, sizeof(cf->path));
	while (fgets(buf, sizeof(buf), f)) {
		char *l, *eq;
		size_t i;

		line++;
		if (!strchr(buf, '\n') && !feof(f)) {
			int ch;
			CONF_ERR(cf, path, line, "line too long: ignored");
			while ((ch = fgetc(f)) != EOF && ch != '\n')
				;
			continue;
		}
		l = trim(buf);
		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');

			if (!e || e[1]) {
				CONF_ERR(cf, path, line, "malformed section header (expected '[name]'): following keys "
					 "ignored");
				sec = SEC_UNKNOWN;
				continue;
			}
			*e = '\0';
			l = trim(l + 1);
			sec = SEC_UNKNOWN;
			for (i = 0; i < KW_ARRAY_SIZE(sections); i++)
				if (!strcasecmp(l, sections[i]))
					sec = SEC_GLOBAL + (int)i;
			if (sec == SEC_UNKNOWN)
				CONF_ERR(cf, path, line, "unknown section [%s]: its keys are ignored", l);
			continue;
		}
		eq = strchr(l, '=');
		if (!eq) {
			CONF_ERR(cf, path, line, "expected 'key = value': line ignored");
			continue;
		}
		*eq = '\0';
		key_value(cf, path, line, sec, trim(l), trim(eq + 1));
	}
	if (ferror(f))
		CONF_ERR(cf, path, line, "read error: rest of the file ignored");
	fclose(f);
	return 0;
}

int nd_conf_find_and_load(struct nd_conf *cf)
{
	const char *dirs[2] = { getenv("NETDATA_USER_CONFIG_DIR"), getenv("NETDATA_STOCK_CONFIG_DIR") };
	const char *defs[2] = { ND_DEFAULT_USER_CONFIG_DIR, ND_DEFAULT_STOCK_CONFIG_DIR };
	char path[PATH_MAX];
	int i, r = -ENOENT;

	for (i = 0; i < 2; i++) {
		const char *d = dirs[i] && *dirs[i] ? dirs[i] : defs[i];

		if (snprintf(path, sizeof(path), "%s/kvmwatch.conf", d) >= (int)sizeof(path))
			continue;
		r = nd_conf_load(cf, path);
		if (r != -ENOENT)
			return r;
	}
	return r;
}

int nd_netdata_runs_proc_plugin(char *where, size_t wlen)
{
	const char *dir = getenv("NETDATA_USER_CONFIG_DIR");
	char path[PATH_MAX], buf[4096];
	int in_plugins = 0, on = 1;
	FILE *f;

	if (!dir || !*dir)
		dir = ND_DEFAULT_USER_CONFIG_DIR;
	snprintf(path, sizeof(path), "%s/netdata.conf", dir);
	if (where)
		kw_strlcpy(where, path, wlen);
	if (!(f = kw_priv_fopen_as_caller(path, "r")))
		return 1;
	while (fgets(buf, sizeof(buf), f)) {
		char *l = trim(buf), *eq;
		int b;

		if (*l == '[') {
			char *e = strchr(l, ']');

			if (e)
				*e = '\0';
			in_plugins = !strcasecmp(trim(l + 1), "plugins");
			continue;
		}
		if (!in_plugins || *l == '#' || *l == ';' || !(eq = strchr(l, '=')))
			continue;
		*eq = '\0';
		/* netdata's booleans; "auto" and anything else it reads as on */
		if (!strcasecmp(trim(l), "proc") && parse_bool(trim(eq + 1), &b) == 0)
			on = b;
	}
	fclose(f);
	return on;
}
