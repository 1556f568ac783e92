// SPDX-License-Identifier: GPL-2.0
/* kw_config.c - the collector's configuration and the name tables of
 * sources and eBPF features. */
#include "core/kw_config.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const source_names[KW_SRC__N] = { "procfs", "libvirt", "kvmstat", "bpf", "qmp" };

const char *kw_source_name(int source)
{
	return source >= 0 && source < KW_SRC__N ? source_names[source] : "?";
}

int kw_source_from_name(const char *name)
{
	for (int i = 0; i < KW_SRC__N; i++)
		if (!strcasecmp(name, source_names[i]))
			return i;
	return -1;
}

static const char *const feature_names[KW_BPF__N] = { "exits", "faults", "mmio", "dirty", "haltpoll", "wakeup", "irq", "runq" };

const char *kw_feature_name(int bit)
{
	return bit >= 0 && bit < KW_BPF__N ? feature_names[bit] : "?";
}

int kw_feature_from_name(const char *name)
{
	/* Canonical names plus the spellings the front ends' configs use
	 * (collectd "halt_poll", netdata "halt poll", "mmu", plurals);
	 * compared case-insensitively without spaces, '_' and '-'. */
	static const struct { const char *n; int bit; } alias[] = {
		{ "exit", KW_BPF_BIT_EXITS }, { "mmu", KW_BPF_BIT_FAULTS }, { "fault", KW_BPF_BIT_FAULTS },
		{ "wakeups", KW_BPF_BIT_WAKEUP }, { "irqs", KW_BPF_BIT_IRQ },
		{ "runqlat", KW_BPF_BIT_RUNQ }, { "runqueue", KW_BPF_BIT_RUNQ },
	};
	char norm[32];
	size_t o = 0, i;

	for (; *name && o + 1 < sizeof(norm); name++)
		if (*name != ' ' && *name != '_' && *name != '-')
			norm[o++] = (char)tolower((unsigned char)*name);
	norm[o] = '\0';
	if (*name)
		return -1;
	for (i = 0; i < KW_BPF__N; i++)
		if (!strcmp(norm, feature_names[i]))
			return (int)i;
	for (i = 0; i < KW_ARRAY_SIZE(alias); i++)
		if (!strcmp(norm, alias[i].n))
			return alias[i].bit;
	return -1;
}

int kw_features_parse(const char *list, unsigned *out, char *err, size_t errlen)
{
	char buf[256], *save = NULL, *w;
	unsigned m = 0;
	int i;

	if (kw_strlcpy(buf, list, sizeof(buf)) >= sizeof(buf)) {
		snprintf(err, errlen, "eBPF feature list too long");
		return -EINVAL;
	}
	for (w = strtok_r(buf, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
		if (!strcmp(w, "all")) {
			m |= KW_BPF_ALL;
			continue;
		}
		if (!strcmp(w, "none"))
			continue;
		i = kw_feature_from_name(w);
		if (i < 0) {
			snprintf(err, errlen, "unknown eBPF feature '%s' (exits, faults, mmio, dirty, haltpoll, wakeup, irq, runq, all, none)", w);
			return -EINVAL;
		}
		m |= 1u << i;
	}
	*out = m;
	return 0;
}

void kw_config_defaults(struct kw_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	kw_strlcpy(cfg->procfs, "/proc", sizeof(cfg->procfs));
	kw_strlcpy(cfg->sysfs, "/sys", sizeof(cfg->sysfs));
	cfg->sources = KW_SOURCES_ALL;
	cfg->bpf_features = 0;
}

void kw_config_free(struct kw_config *cfg)
{
	size_t i;

	free(cfg->pids);
	for (i = 0; i < cfg->nnames; i++)
		free(cfg->names[i]);
	free(cfg->names);
	cfg->pids = NULL;
	cfg->names = NULL;
	cfg->npids = cfg->nnames = 0;
}

int kw_config_add_pid(struct kw_config *cfg, pid_t pid)
{
	pid_t *p = realloc(cfg->pids, (cfg->npids + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	p[cfg->npids++] = pid;
	cfg->pids = p;
	return 0;
}

int kw_config_add_name(struct kw_config *cfg, const char *name)
{
	char **p = realloc(cfg->names, (cfg->nnames + 1) * sizeof(*p));

	if (!p)
		return -ENOMEM;
	cfg->names = p;
	if (!(p[cfg->nnames] = strdup(name)))
		return -ENOMEM;
	cfg->nnames++;
	return 0;
}

int kw_config_copy(struct kw_config *dst, const struct kw_config *src)
{
	size_t i;

	*dst = *src;
	dst->pids = NULL;
	dst->names = NULL;
	dst->npids = dst->nnames = 0;
	for (i = 0; i < src->npids; i++)
		if (kw_config_add_pid(dst, src->pids[i]))
			return -ENOMEM;
	for (i = 0; i < src->nnames; i++)
		if (kw_config_add_name(dst, src->names[i]))
			return -ENOMEM;
	return 0;
}

/* Every VM holds fds (a pidfd, KVM stats fds per vCPU) and every /proc read
 * opens one: the soft limit (often 1024) is raised to the hard one, as
 * the kernel allows without privilege. */
