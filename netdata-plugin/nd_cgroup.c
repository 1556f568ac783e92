// SPDX-License-Identifier: GPL-2.0
/* nd_cgroup.c - cgroups.plugin's name of a VM's cgroup (see nd_cgroup.h). */
#include "nd_cgroup.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>
#include <sys/vfs.h>

#define CGROUP2_MAGIC 0x63677270 /* CGROUP2_SUPER_MAGIC */

int nd_cgroup_unified(const char *sysfs)
{
	char path[4096];
	struct statfs sf;

	snprintf(path, sizeof(path), "%s/fs/cgroup", sysfs);
	return statfs(path, &sf) == 0 && (unsigned long)sf.f_type == CGROUP2_MAGIC;
}

/* Is the last path component one of libvirt's sub-cgroups? */
static int libvirt_sub(const char *c)
{
	const char *d = NULL;

	if (!strcmp(c, "emulator") || !strcmp(c, "libvirt"))
		return 1;
	if (kw_startswith(c, "vcpu"))
		d = c + 4;
	else if (kw_startswith(c, "iothread"))
		d = c + 8;
	if (!d || !*d)
		return 0;
	for (; *d; d++)
		if (!isdigit((unsigned char)*d))
			return 0;
	return 1;
}

static int has_controller(const char *list, size_t n, const char *want)
{
	size_t w = strlen(want);
	const char *p = list, *end = list + n;

	while (p < end) {
		const char *c = memchr(p, ',', (size_t)(end - p));
		size_t l = c ? (size_t)(c - p) : (size_t)(end - p);

		if (l == w && !memcmp(p, want, w))
			return 1;
		p += l + 1;
	}
	return 0;
}

/* Drop libvirt's sub-cgroups at the end of path. */
static void strip_libvirt_subs(char *path)
{
	char *slash;

	while ((slash = strrchr(path, '/')) && slash != path && libvirt_sub(slash + 1))
		*slash = '\0';
}

/* The v1 hierarchies cgroups.plugin walks, in its order. */
static const char *const v1_walked[] = { "cpuacct", "blkio", "memory", "devices" };

int nd_cgroup_of_pid(const char *procfs, pid_t pid, int unified, char *out, size_t len)
{
	char buf[4096], path[ND_CGROUP_MAX];
	const char *v2 = NULL, *v1[KW_ARRAY_SIZE(v1_walked)] = { NULL }, *p;
	size_t i, n;
	ssize_t r;

	*out = '\0';
	if ((r = kw_read_filef(buf, sizeof(buf), "%s/%d/cgroup", procfs, (int)pid)) < 0)
		return (int)r;
	/* "ID:CONTROLLERS:PATH" per line */
	for (p = buf; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		const char *c1 = strchr(p, ':'), *c2, *nl = strchr(p, '\n');

		if (!c1 || (nl && c1 > nl) || !(c2 = strchr(c1 + 1, ':')) || (nl && c2 > nl))
			continue;
		if (kw_startswith(p, "0::"))
			v2 = c2 + 1;
		for (i = 0; i < KW_ARRAY_SIZE(v1_walked); i++)
			if (!v1[i] && has_controller(c1 + 1, (size_t)(c2 - c1 - 1), v1_walked[i]))
				v1[i] = c2 + 1;
	}
	/* v1: the first walked hierarchy that has the VM below its root (a
	 * cgroup is one id in all of them); v2, or no v1 line at all: "0::" */
	for (i = 0; !unified && i < KW_ARRAY_SIZE(v1_walked); i++) {
		if (!v1[i] || (n = strcspn(v1[i], "\n")) >= sizeof(path))
			continue;
		memcpy(path, v1[i], n);
		path[n] = '\0';
		strip_libvirt_subs(path);
		if (strcmp(path, "/"))
			break;
	}
	if (unified || i == KW_ARRAY_SIZE(v1_walked)) {
		int any_v1 = 0;

		for (i = 0; i < KW_ARRAY_SIZE(v1_walked); i++)
			any_v1 |= v1[i] != NULL;
		if (!unified && any_v1) {
			kw_strlcpy(path, "/", sizeof(path));
		} else {
			if (!v2)
				return -ENOENT;
			if ((n = strcspn(v2, "\n")) >= sizeof(path))
				return -ENAMETOOLONG;
			memcpy(path, v2, n);
			path[n] = '\0';
			strip_libvirt_subs(path);
		}
	}
	if (kw_strlcpy(out, path, len) >= len) {
		*out = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/* netdata_fix_chart_id(): [A-Z] folded, [a-z0-9._-] kept, ',' -> '.',
 * everything else '_'. */
static void fix_chart_id(char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c >= 'A' && c <= 'Z')
			*s = (char)(c - 'A' + 'a');
		else if (c == ',')
			*s = '.';
		else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_'))
			*s = '_';
	}
}

/* cgroup_chart_id_strdupz(): "/" for "", the leading '/' dropped, fixed. */
static void chart_id(char *out, size_t len, const char *s)
{
	if (!*s)
		s = "/";
	if (*s == '/' && s[1])
		s++;
	kw_strlcpy(out, s, len);
	fix_chart_id(out);
}

/* sed 's/RE//' (all = 'g'), extended regular expressions. */
static void sed_delete(char *s, const char *re, int all)
{
	regex_t rx;
	regmatch_t m;
	size_t off = 0;

	if (regcomp(&rx, re, REG_EXTENDED))
		return;
	while (regexec(&rx, s + off, 1, &m, off ? REG_NOTBOL : 0) == 0) {
		size_t so = off + (size_t)m.rm_so, eo = off + (size_t)m.rm_eo;

		if (eo == so) { /* an empty match deletes nothing: move on */
			if (!s[so])
				break;
			off = so + 1;
			continue;
		}
		memmove(s + so, s + eo, strlen(s + eo) + 1);
		if (!all)
			break;
		off = so;
	}
	regfree(&rx);
}

static int matches(const char *s, const char *re)
{
	regex_t rx;
	int r;

	if (regcomp(&rx, re, REG_EXTENDED | REG_NOSUB))
		return 0;
	r = regexec(&rx, s, 0, NULL, 0) == 0;
	regfree(&rx);
	return r;
}

void nd_cgroup_name(const char *path, const char *vm_name, int is_pve, char *out, size_t len)
{
	char id[ND_CGROUP_MAX * 2], name[ND_CGROUP_MAX * 2 + 8];
	char *dot;

	*out = '\0';
	if (!*path || !strcmp(path, "/"))
		return;
	chart_id(id, sizeof(id), path);
	/* cgroup-name.sh, in its order, for what VMs live in */
	if (matches(id, "machine.slice_machine.*-qemu")) {
		/* libvirt + systemd-machined: machine.slice_machine-qemu_x2d1_x2dweb01.scope */
		sed_delete(id, "machine.slice_machine.*-qemu", 0);
		sed_delete(id, "[/_]x2d[[:digit:]]*", 0);
		sed_delete(id, "[/_]x2d", 1);
		sed_delete(id, "\\.scope", 1);
		snprintf(name, sizeof(name), "qemu_%s", id);
	} else if (matches(id, "machine_.*\\.libvirt-qemu")) {
		/* libvirt without systemd: machine_qemu-1-web01.libvirt-qemu */
		char *dash;

		sed_delete(id, "^machine_", 0);
		sed_delete(id, "\\.libvirt-qemu$", 0);
		if ((dash = strchr(id, '-')))
			*dash = '_';
		snprintf(name, sizeof(name), "qemu_%s", id);
	} else if (is_pve && matches(id, "qemu.slice_([0-9]+).scope")) {
		/* Proxmox: the name: line of /etc/pve/qemu-server/ID.conf, which
		 * Proxmox also passes as -name */
		snprintf(name, sizeof(name), "qemu_%s", vm_name);
	} else {
		kw_strlcpy(name, id, sizeof(name));
	}
	if (strlen(name) > 100)
		name[100] = '\0';
	chart_id(out, len, name);
	for (dot = out; (dot = strchr(dot, '.')); dot++)
		*dot = '-';
}
