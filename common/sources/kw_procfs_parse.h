// SPDX-License-Identifier: GPL-2.0
/* kw_parse.h - the /proc and /sys text parsers of the procfs source
 * (kw_procfs.c), exposed for the fuzz targets (tests/fuzz/).  Each takes a
 * NUL-terminated buffer as read from the file and never reads past it. */
#ifndef KW_PARSE_H
#define KW_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* /proc/PID/stat: comm (cut to commlen - 1) and the fields after it: f[0] is
 * field 3 (state, as its character code), f[i] field i + 3.  Returns the
 * number of fields stored (at most max), or -EINVAL. */
int kw_parse_pid_stat(const char *buf, char *comm, size_t commlen, uint64_t *f, int max);
/* Index in kw_parse_pid_stat's f[] of stat field n (1-based as in proc(5)). */
#define KW_SF(n) ((n) - 3)

/* "Key:   123 kB" (status, meminfo, io): value of key (kB multiplied to
 * bytes).  Returns 0, or -1 when the key is missing or not a number. */
int kw_parse_kv_field(const char *buf, const char *key, uint64_t *out);

/* PSI: the "some" / "full" line's avg10 and total.  0 or -1. */
int kw_parse_psi_line(const char *buf, const char *kind, double *avg10, uint64_t *total);

/* /proc/stat first line "cpu  user nice system idle ...": up to 10 values.
 * Returns how many were read (at least 4), or -EINVAL. */
int kw_parse_stat_cpu(const char *buf, unsigned long long v[10]);

/* One /proc/diskstats line: device name (< namelen bytes) and the 11
 * classic counters after it.  0, or -EINVAL for a short/malformed line. */
int kw_parse_diskstats_line(const char *line, char *name, size_t namelen, unsigned long long f[11]);

/* One /proc/net/dev line "  name: 16 counters" (modified in place: the
 * colon becomes a NUL).  *name points into line.  0, or -EINVAL for header
 * lines, names of namelen bytes or more and malformed counters. */
int kw_parse_netdev_line(char *line, size_t namelen, char **name, uint64_t v[16]);

#endif
