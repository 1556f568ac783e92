// SPDX-License-Identifier: GPL-2.0
/* kw_procfs_parse.c - the /proc and /sys text parsers of the procfs source
 * (see kw_procfs_parse.h). */
#include "sources/kw_procfs_parse.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- parsing */

/* Split the fields of /proc/PID/stat after the comm.  Returns the number of
 * fields stored in f[] (f[0] is field 3, "state"), or -EINVAL. comm receives
 * the process name. */
int kw_parse_pid_stat(const char *buf, char *comm, size_t commlen, uint64_t *f, int max)
{
	const char *l = strchr(buf, '('), *r = strrchr(buf, ')');
	int n = 0;

	if (!l || !r || r < l)
		return -EINVAL;
	if (comm) {
		size_t len = (size_t)(r - l - 1);
		if (len >= commlen)
			len = commlen - 1;
		memcpy(comm, l + 1, len);
		comm[len] = '\0';
	}
	r++;
	while (*r == ' ')
		r++;
	if (!*r)
		return -EINVAL;
	/* state is a letter */
	f[n++] = (uint64_t)(unsigned char)*r++;
	while (n < max) {
		char *end;
		unsigned long long v;

		while (*r == ' ')
			r++;
		if (!*r || *r == '\n')
			break;
		/* strtoull: fields such as rsslim are 2^64-1, priority may be
		 * negative (wraps; not used). */
		v = strtoull(r, &end, 10);
		if (end == r || (*end != ' ' && *end != '\n' && *end != '\0'))
			return -EINVAL;
		f[n++] = (uint64_t)v;
		r = end;
	}
	return n;
}
/* stat field numbers (1-based as in proc(5)) -> index in f[] */

/* Value of "Key:  123 kB" lines (status, meminfo). Returns 0 or -1. */
int kw_parse_kv_field(const char *buf, const char *key, uint64_t *out)
{
	size_t kl = strlen(key);
	const char *p = buf;

	while (p && *p) {
		if (!strncmp(p, key, kl) && p[kl] == ':') {
			char *end;
			unsigned long long v;

			p += kl + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			if (!isdigit((unsigned char)*p))
				return -1;
			v = strtoull(p, &end, 10);
			while (*end == ' ')
				end++;
			if (!strncmp(end, "kB", 2))
				v *= 1024;
			*out = v;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

/* "some avg10=1.23 avg60=... total=456" */
int kw_parse_psi_line(const char *buf, const char *kind, double *avg10, uint64_t *total)
{
	const char *p = buf;
	size_t kl = strlen(kind);

	while (p && *p) {
		if (!strncmp(p, kind, kl) && p[kl] == ' ') {
			const char *a = strstr(p, "avg10="), *t = strstr(p, "total=");
			const char *eol = strchr(p, '\n');
			char *end;

			if (!a || !t || (eol && (a > eol || t > eol)))
				return -1;
			*avg10 = strtod(a + 6, &end);
			if (end == a + 6)
				return -1;
			*total = strtoull(t + 6, &end, 10);
			if (end == t + 6)
				return -1;
			return 0;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

int kw_parse_stat_cpu(const char *buf, unsigned long long v[10])
{
	int n;

	if (strncmp(buf, "cpu ", 4))
		return -EINVAL;
	n = sscanf(buf + 4, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
		   &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	return n < 4 ? -EINVAL : n;
}

int kw_parse_diskstats_line(const char *line, char *name, size_t namelen, unsigned long long f[11])
{
	char fmt[96];
	unsigned maj, min;

	if (namelen < 2)
		return -EINVAL;
	snprintf(fmt, sizeof(fmt), "%%u %%u %%%zus %%llu %%llu %%llu %%llu %%llu %%llu %%llu %%llu %%llu %%llu %%llu",
		 namelen - 1);
	return sscanf(line, fmt, &maj, &min, name, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8],
		      &f[9], &f[10]) == 14 ? 0 : -EINVAL;
}

int kw_parse_netdev_line(char *line, size_t namelen, char **name, uint64_t v[16])
{
	char *colon = strchr(line, ':'), *n = line;
	unsigned long long t[16];
	int i;

	if (!colon)
		return -EINVAL; /* header lines */
	*colon = '\0';
	while (*n == ' ')
		n++;
	if (!*n || strlen(n) >= namelen)
		return -EINVAL;
	if (sscanf(colon + 1, "%llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
		   &t[0], &t[1], &t[2], &t[3], &t[4], &t[5], &t[6], &t[7], &t[8], &t[9], &t[10], &t[11], &t[12],
		   &t[13], &t[14], &t[15]) != 16)
		return -EINVAL;
	for (i = 0; i < 16; i++)
		v[i] = t[i];
	*name = n;
	return 0;
}

