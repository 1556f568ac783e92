// SPDX-License-Identifier: GPL-2.0
/* The /proc text parsers of the procfs source (common/sources/kw_procfs_parse.h).  The
 * first input byte picks the parser, the rest is the file's contents:
 * 0 /proc/PID/stat, 1 status/meminfo/io "Key: value", 2 PSI, 3 /proc/stat,
 * 4 diskstats, 5 net/dev. */
#include "fuzz.h"
#include "sources/kw_procfs_parse.h"

static void each_line(char *buf, void (*fn)(char *line))
{
	char *save = NULL, *line;

	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		fn(line);
}

static void disk_line(char *line)
{
	char name[64];
	unsigned long long f[11];

	if (kw_parse_diskstats_line(line, name, sizeof(name), f) == 0)
		FUZZ_CHECK(strlen(name) < sizeof(name));
}

static void netdev_line(char *line)
{
	char *name;
	uint64_t v[16];

	if (kw_parse_netdev_line(line, 16, &name, v) == 0)
		FUZZ_CHECK(*name && strlen(name) < 16);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = { "VmRSS", "VmSwap", "MemTotal", "HugePages_Total", "rchar",
					    "cancelled_write_bytes", "Hugepagesize" };
	char *s, comm[64];
	uint64_t f[64], v;
	unsigned long long c[10];
	double avg;
	size_t i;
	int n;

	if (size < 1)
		return 0;
	fuzz_init();
	s = fuzz_str(data + 1, size - 1);
	switch (data[0] % 6) {
	case 0:
		comm[0] = '\0'; /* an input without "(comm)" leaves it unwritten */
		n = kw_parse_pid_stat(s, comm, sizeof(comm), f, 64);
		FUZZ_CHECK(n <= 64);
		FUZZ_CHECK(n < 0 || strnlen(comm, sizeof(comm)) < sizeof(comm));
		kw_parse_pid_stat(s, NULL, 0, f, 3);
		break;
	case 1:
		for (i = 0; i < KW_ARRAY_SIZE(keys); i++)
			kw_parse_kv_field(s, keys[i], &v);
		break;
	case 2:
		kw_parse_psi_line(s, "some", &avg, &v);
		kw_parse_psi_line(s, "full", &avg, &v);
		break;
	case 3:
		n = kw_parse_stat_cpu(s, c);
		FUZZ_CHECK(n == -22 || (n >= 4 && n <= 10));
		break;
	case 4:
		each_line(s, disk_line);
		break;
	case 5:
		each_line(s, netdev_line);
		break;
	}
	free(s);
	return 0;
}
