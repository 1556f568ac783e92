// SPDX-License-Identifier: GPL-2.0
/* kwbench: time kvmwatch's collection cycle (kw_collector_collect) the way a
 * front end runs it, for the scaling benchmark (bench/run).
 *
 *   kwbench --prefix P --vms N [--vcpus V] [--cycles K] [--timeout S]
 *           [--sources procfs,libvirt,kvmstat,bpf] [--no-host]
 *
 * Waits (up to --timeout) until exactly N VMs whose name starts with P are
 * found with V vCPU threads in all (the benchmark's own fake/real VMs; other
 * VMs on the host are filtered out before per-VM collection, as a front end's
 * Domain/vms filter does), runs one warm-up cycle, then K timed cycles: CPU
 * time of the process (CLOCK_PROCESS_CPUTIME_ID) and wall time (monotonic)
 * per cycle.  Prints one JSON object: per-cycle mean/median/min/max in
 * microseconds, microseconds per VM, RSS now and peak (getrusage), and how
 * many /proc entries the discovery walked. */
#include "core/kw_collector.h"
#include "util/kw_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct filter {
	const char *prefix;
	size_t len;
};

static int want_vm(const struct kw_vm *vm, void *arg)
{
	const struct filter *f = arg;

	return !strncmp(vm->name, f->prefix, f->len);
}

static double now_us(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int dbl_cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void print_stats(const char *key, double *v, int n, size_t vms)
{
	double sum = 0;
	int i;

	for (i = 0; i < n; i++)
		sum += v[i];
	qsort(v, (size_t)n, sizeof(*v), dbl_cmp);
	printf("\"%s\":{\"mean\":%.1f,\"median\":%.1f,\"min\":%.1f,\"max\":%.1f,\"per_vm_median\":%.2f}", key,
	       sum / n, v[n / 2], v[0], v[n - 1], vms ? v[n / 2] / (double)vms : 0.0);
}

static long vm_rss_kb(void)
{
	char buf[4096];
	const char *p;

	if (kw_read_file("/proc/self/status", buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "VmRSS:")))
		return -1;
	return strtol(p + 6, NULL, 10);
}

static size_t count_procs(const char *procfs)
{
	DIR *d = opendir(procfs);
	struct dirent *de;
	size_t n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d)))
		n += isdigit((unsigned char)de->d_name[0]) != 0;
	closedir(d);
	return n;
}

static int parse_sources(const char *s, unsigned *out)
{
	char *dup = strdup(s), *tok, *save = NULL;
	int r = 0;

	if (!dup)
		return -ENOMEM;
	*out = 0;
	for (tok = strtok_r(dup, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int i, found = 0;

		for (i = 0; i < KW_SRC__N; i++)
			if (!strcmp(tok, kw_source_name(i))) {
				*out |= 1u << i;
				found = 1;
			}
		if (!found) {
			fprintf(stderr, "kwbench: unknown source '%s'\n", tok);
			r = -EINVAL;
		}
	}
	free(dup);
	return r;
}

static long get_long(const char *arg, const char *what, long min, long max)
{
	long v;

	if (kw_parse_int(arg, min, max, &v)) {
		fprintf(stderr, "kwbench: invalid %s '%s' (%ld..%ld)\n", what, arg, min, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	enum { O_PREFIX = 256, O_VMS, O_VCPUS, O_CYCLES, O_TIMEOUT, O_SOURCES, O_NOHOST };
	static const struct option opts[] = {
		{ "prefix", required_argument, NULL, O_PREFIX }, { "vms", required_argument, NULL, O_VMS },
		{ "vcpus", required_argument, NULL, O_VCPUS },   { "cycles", required_argument, NULL, O_CYCLES },
		{ "timeout", required_argument, NULL, O_TIMEOUT }, { "sources", required_argument, NULL, O_SOURCES },
		{ "no-host", no_argument, NULL, O_NOHOST },      { NULL, 0, NULL, 0 },
	};
	struct filter flt = { NULL, 0 };
	struct kw_collector c;
	struct kw_config cfg;
	struct rusage ru;
	long nvms = -1, vcpus = -1, cycles = 20, timeout = 60;
	double *cpu, *wall, deadline;
	size_t i, vcpu_total = 0;
	char err[512];
	int opt, k;

	kw_config_defaults(&cfg);
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case O_PREFIX: flt.prefix = optarg; flt.len = strlen(optarg); break;
		case O_VMS: nvms = get_long(optarg, "--vms", 0, 1000000); break;
		case O_VCPUS: vcpus = get_long(optarg, "--vcpus", 0, 10000000); break;
		case O_CYCLES: cycles = get_long(optarg, "--cycles", 1, 1000000); break;
		case O_TIMEOUT: timeout = get_long(optarg, "--timeout", 1, 3600); break;
		case O_SOURCES:
			if (parse_sources(optarg, &cfg.sources))
				return 2;
			break;
		case O_NOHOST: cfg.no_host = 1; break;
		default:
			fprintf(stderr, "usage: kwbench --prefix P --vms N [--vcpus V] [--cycles K] [--timeout S] "
					"[--sources LIST] [--no-host]\n");
			return 2;
		}
	}
	if (!flt.prefix || nvms < 0) {
		fprintf(stderr, "kwbench: --prefix and --vms are required\n");
		return 2;
	}
	cfg.want_vm = want_vm;
	cfg.want_vm_arg = &flt;
	if (kw_collector_init(&c, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "kwbench: %s\n", err);
		return 1;
	}
	/* Wait until every VM of ours is there with all its vCPU threads. */
	deadline = now_us(CLOCK_MONOTONIC) + (double)timeout * 1e6;
	for (;;) {
		int ok;

		if (kw_collector_collect(&c) < 0 && nvms) {
			fprintf(stderr, "kwbench: collection failed\n");
			kw_collector_fini(&c);
			return 1;
		}
		ok = c.vms.n == (size_t)nvms;
		for (i = 0, vcpu_total = 0; i < c.vms.n; i++)
			vcpu_total += (size_t)c.vms.vms[i].nvcpus;
		if (ok && (vcpus < 0 || vcpu_total == (size_t)vcpus))
			break;
		if (now_us(CLOCK_MONOTONIC) > deadline) {
			fprintf(stderr, "kwbench: timed out: %zu VMs named %s* with %zu vCPUs found, expected %ld "
					"with %ld\n", c.vms.n, flt.prefix, vcpu_total, nvms, vcpus);
			kw_collector_fini(&c);
			return 1;
		}
		usleep(20000);
	}
	cpu = calloc((size_t)cycles, sizeof(*cpu));
	wall = calloc((size_t)cycles, sizeof(*wall));
	if (!cpu || !wall) {
		fprintf(stderr, "kwbench: out of memory\n");
		return 1;
	}
	for (k = 0; k < cycles; k++) {
		double c0 = now_us(CLOCK_PROCESS_CPUTIME_ID), w0 = now_us(CLOCK_MONOTONIC);

		if (kw_collector_collect(&c) < 0 && nvms) {
			fprintf(stderr, "kwbench: collection failed\n");
			return 1;
		}
		cpu[k] = now_us(CLOCK_PROCESS_CPUTIME_ID) - c0;
		wall[k] = now_us(CLOCK_MONOTONIC) - w0;
	}
	for (i = 0, vcpu_total = 0; i < c.vms.n; i++)
		vcpu_total += (size_t)c.vms.vms[i].nvcpus;
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"vms\":%zu,\"vcpus\":%zu,\"procs\":%zu,\"cycles\":%ld,", c.vms.n, vcpu_total,
	       count_procs(cfg.procfs), cycles);
	print_stats("cpu_us", cpu, (int)cycles, c.vms.n);
	printf(",");
	print_stats("wall_us", wall, (int)cycles, c.vms.n);
	printf(",\"rss_kb\":%ld,\"maxrss_kb\":%ld}\n", vm_rss_kb(), ru.ru_maxrss);
	free(cpu);
	free(wall);
	kw_collector_fini(&c);
	return 0;
}
