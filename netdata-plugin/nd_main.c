// SPDX-License-Identifier: GPL-2.0
/* nd_main.c - kvmwatch.plugin: a netdata external plugin publishing every
 * metric of kvmwatch's collector (see nd_chart.h for the charts).
 *
 * netdata runs it as `kvmwatch.plugin UPDATE_EVERY` and reads the plugins.d
 * protocol from its stdout; everything on stderr goes to netdata's
 * error.log. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/kw_collector.h"
#include "kw_pattern.h"
#include "util/kw_priv.h"
#include "util/kw_util.h"
#include "nd_chart.h"
#include "nd_conf.h"

#include "kw_version.h"

static volatile sig_atomic_t exiting;

/* netdata stops a plugin with SIGTERM and expects it gone at once, even
 * when a write to a pipe nobody reads is blocked: the signal interrupts
 * that write (no SA_RESTART), and a second later SIGALRM points stdout at
 * /dev/null so no further write of this cycle can block again. */
#define STOP_GRACE_S 1

static void on_signal(int sig)
{
	(void)sig;
	exiting = 1;
	alarm(STOP_GRACE_S);
}

static void on_alarm(int sig)
{
	int fd = open("/dev/null", O_WRONLY);

	(void)sig;
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
}

static void log_sink(int level, const char *msg, void *arg)
{
	(void)arg;
	fprintf(stderr, "kvmwatch.plugin: %s%s\n",
		level <= KW_LOG_ERR ? "ERROR: " : level == KW_LOG_WARN ? "WARNING: " : "", msg);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kvmwatch.plugin [OPTION...] [UPDATE_EVERY]\n"
		"netdata external plugin: charts of every KVM virtual machine on this host.\n\n"
		"  UPDATE_EVERY        seconds between collections (netdata passes it; default 1);\n"
		"                      [global] update every in kvmwatch.conf may raise it\n"
		"  --config FILE       read FILE instead of kvmwatch.conf from\n"
		"                      $NETDATA_USER_CONFIG_DIR / $NETDATA_STOCK_CONFIG_DIR\n"
		"  --procfs DIR        proc filesystem (default $NETDATA_HOST_PREFIX/proc)\n"
		"  --sysfs DIR         sys filesystem (default $NETDATA_HOST_PREFIX/sys)\n"
		"  --dev-kvm PATH      KVM device checked at start (default $NETDATA_HOST_PREFIX/dev/kvm)\n"
		"  --step              collect once per line read on stdin and end each cycle\n"
		"                      with a '# ... done' line (tests); exit on EOF\n"
		"  -v, --verbose       informational messages on stderr\n"
		"  -V, --version, -h, --help\n\n"
		"Prints DISABLE and exits when KVM is absent: no PATH, no SYSFS/module/kvm,\n"
		"no VM process found and no libvirt connection.\n");
}

static int want_vm(const struct kw_vm *vm, void *arg)
{
	const struct kw_pattern *p = arg;

	return kw_pattern_match(p, vm->name) || (*vm->uuid && kw_pattern_match(p, vm->uuid));
}

/* Flush and check the pipe to netdata.  Returns 0, or -1 when netdata is gone. */
static int flush_out(void)
{
	if (fflush(stdout) == 0 && !ferror(stdout))
		return exiting ? -1 : 0;
	if (exiting)
		return -1; /* the write was interrupted by SIGTERM: just go */
	if (errno == EPIPE)
		kw_warn("netdata closed the pipe (EPIPE): exiting");
	else
		kw_err("failed to write to netdata: %s: exiting", strerror(errno));
	return -1;
}

static void disable(const char *why)
{
	kw_err("%s: disabling the plugin", why);
	fputs("DISABLE\n", stdout);
	fflush(stdout);
}

/* A libvirt URI the plugin may open with capabilities: the local QEMU
 * driver (qemu:///system or qemu:///session), optionally through a socket
 * (?socket=: connecting needs write access to it, which no capability of
 * ours gives).  Every other driver or parameter may read files in-process. */
static int local_qemu_uri(const char *uri)
{
	const char *q;

	if (!kw_startswith(uri, "qemu:///system") && !kw_startswith(uri, "qemu:///session") &&
	    !kw_startswith(uri, "qemu+unix:///system") && !kw_startswith(uri, "qemu+unix:///session"))
		return 0;
	q = strchr(uri, '?');
	if (!q)
		return !strcmp(strchr(uri, ':') + 4, "system") || !strcmp(strchr(uri, ':') + 4, "session");
	return kw_startswith(q, "?socket=") && !strchr(q, '&');
}

/* With capabilities, the plugin reads /proc and /sys through whatever root
 * it was told (NETDATA_HOST_PREFIX, --procfs, --sysfs: its caller's choice).
 * A root that is not a real procfs/sysfs only root controls would let the
 * caller point privileged reads at files of its choosing (symlinks to
 * /etc/shadow as a "cmdline"): then the plugin gives up every capability
 * and sees what its user could see anyway. */
static void untrusted_roots_lose_privilege(struct kw_config *cfg)
{
	static const struct {
		const char *name;
		long magic;
		const char *dflt;
	} fs[2] = { { "procfs", 0x9fa0 /* PROC_SUPER_MAGIC */, "/proc" },
		    { "sysfs", 0x62656572 /* SYSFS_MAGIC */, "/sys" } };
	char *roots[2] = { cfg->procfs, cfg->sysfs };
	char canon[PATH_MAX], why[PATH_MAX + 128];
	int i, r;

	for (i = 0; i < 2; i++) {
		if (!strcmp(roots[i], fs[i].dflt))
			continue;
		if (kw_priv_trusted_root(roots[i], fs[i].magic, fs[i].name, canon, sizeof(canon), why, sizeof(why)) == 0 &&
		    strlen(canon) < sizeof(cfg->procfs)) {
			kw_strlcpy(roots[i], canon, sizeof(cfg->procfs));
			continue;
		}
		r = kw_priv_drop_all();
		kw_warn("%s root %s: %s: running without capabilities%s%s", fs[i].name, roots[i], why,
			r ? " (dropping them failed: " : "", r ? strerror(-r) : "");
		if (r) {
			kw_err("refusing to run with capabilities on an untrusted %s root", fs[i].name);
			exit(1);
		}
		return;
	}
}

static int path_prefixed(char *out, size_t len, const char *prefix, const char *path)
{
	return snprintf(out, len, "%s%s", prefix, path) >= (int)len ? -1 : 0;
}

int main(int argc, char **argv)
{
	enum { OPT_CONFIG = 1000, OPT_PROCFS, OPT_SYSFS, OPT_DEVKVM, OPT_STEP };
	static const struct option opts[] = {
		{ "config", required_argument, NULL, OPT_CONFIG },
		{ "procfs", required_argument, NULL, OPT_PROCFS },
		{ "sysfs", required_argument, NULL, OPT_SYSFS },
		{ "dev-kvm", required_argument, NULL, OPT_DEVKVM },
		{ "step", no_argument, NULL, OPT_STEP },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *procfs = NULL, *sysfs = NULL, *devkvm = NULL;
	const char *prefix = getenv("NETDATA_HOST_PREFIX");
	char path[PATH_MAX], err[512];
	struct kw_pattern pat = { 0 };
	struct kw_collector c;
	struct kw_config cfg;
	struct nd_conf cf;
	struct nd_state st;
	struct sigaction sa;
	uint64_t next;
	long update_every = 1;
	int step = 0, verbose = 0, o, rc = 0;

	kw_log_set_sink(log_sink, NULL);
	while ((o = getopt_long(argc, argv, "vVh", opts, NULL)) != -1) {
		switch (o) {
		case OPT_CONFIG: config = optarg; break;
		case OPT_PROCFS: procfs = optarg; break;
		case OPT_SYSFS: sysfs = optarg; break;
		case OPT_DEVKVM: devkvm = optarg; break;
		case OPT_STEP: step = 1; break;
		case 'v': verbose = 1; break;
		case 'V': printf("kvmwatch.plugin " KW_VERSION "\n"); return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	for (; optind < argc; optind++) {
		if (!strcmp(argv[optind], "debug")) {
			verbose = 1;
		} else if (kw_parse_int(argv[optind], 1, 86400, &update_every)) {
			kw_err("invalid UPDATE_EVERY '%s' (seconds, 1 to 86400)", argv[optind]);
			usage(stderr);
			return 1;
		}
	}
	kw_log_set_level(verbose ? KW_LOG_DEBUG : KW_LOG_WARN);

	/* Signals: netdata stops plugins with SIGTERM; it also starts them with
	 * SIGPIPE ignored, and so do we: a closed pipe is EPIPE on write. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);

	nd_conf_defaults(&cf);
	if (config)
		nd_conf_load(&cf, config) == -ENOENT ? kw_err("config %s: %s (using defaults)", config, strerror(ENOENT))
						     : (void)0;
	else
		nd_conf_find_and_load(&cf);
	if (cf.update_every > update_every)
		update_every = cf.update_every;
	if (kw_pattern_parse(&pat, cf.vms)) {
		kw_err("out of memory");
		return 1;
	}

	kw_config_defaults(&cfg);
	if (!prefix)
		prefix = "";
	if ((procfs ? kw_strlcpy(cfg.procfs, procfs, sizeof(cfg.procfs)) >= sizeof(cfg.procfs)
		    : path_prefixed(cfg.procfs, sizeof(cfg.procfs), prefix, "/proc")) ||
	    (sysfs ? kw_strlcpy(cfg.sysfs, sysfs, sizeof(cfg.sysfs)) >= sizeof(cfg.sysfs)
		   : path_prefixed(cfg.sysfs, sizeof(cfg.sysfs), prefix, "/sys"))) {
		disable("procfs/sysfs path too long");
		return 1;
	}
	if (kw_priv_elevated())
		untrusted_roots_lose_privilege(&cfg);
	cfg.sources = cf.sources;
	cfg.no_host = 0; /* kvm_host.vms in every mode; see host_all below */
	cfg.bpf_features = cf.bpf_features;
	kw_strlcpy(cfg.libvirt_uri, cf.libvirt_uri, sizeof(cfg.libvirt_uri));
	if (kw_priv_elevated() && cfg.libvirt_uri[0] && !local_qemu_uri(cfg.libvirt_uri)) {
		/* test:///FILE and other drivers read files in this process */
		int r = kw_priv_drop_all();

		kw_warn("libvirt uri %s is not a qemu:/// URI: running without capabilities", cfg.libvirt_uri);
		if (r) {
			kw_err("refusing to run with capabilities: dropping them failed: %s", strerror(-r));
			return 1;
		}
	}
	cfg.libvirt_retry = 1; /* netdata may start before libvirtd */
	cfg.want_vm = want_vm;
	cfg.want_vm_arg = &pat;

	if (!(cfg.sources & KW_SOURCES_ALL)) {
		disable("every source is disabled in [sources] of kvmwatch.conf");
		kw_pattern_free(&pat);
		return 1;
	}
	if (kw_collector_init(&c, &cfg, err, sizeof(err))) {
		disable(err);
		kw_pattern_free(&pat);
		return 1;
	}
	if (!kw_collector_any_source(&c)) {
		disable("no source is available");
		rc = 1;
		goto out;
	}
	if (devkvm)
		kw_strlcpy(path, devkvm, sizeof(path));
	else
		path_prefixed(path, sizeof(path), prefix, "/dev/kvm");

	nd_state_init(&st, stdout, (int)update_every);
	if (cf.host_charts == ND_HOST_CHARTS_AUTO) {
		char ndconf[PATH_MAX];

		st.host_all = !nd_netdata_runs_proc_plugin(ndconf, sizeof(ndconf));
		kw_info("host charts = auto: %s (proc.plugin is %s in %s)",
			st.host_all ? "all kvm_host charts" : "kvm_host.vms only, proc.plugin draws the rest",
			st.host_all ? "off" : "on", ndconf);
	} else {
		st.host_all = cf.host_charts == ND_HOST_CHARTS_YES;
	}
	st.procfs = c.cfg.procfs;
	st.cgroup_unified = nd_cgroup_unified(c.cfg.sysfs);
	next = kw_now_mono_ns();
	for (;;) {
		int r;

		if (step) {
			char line[64];
			if (!fgets(line, sizeof(line), stdin))
				break;
		}
		if (exiting)
			break;
		r = kw_collector_collect(&c);
		if (r == -ENOMEM) {
			kw_err("out of memory: exiting");
			rc = 1;
			break;
		}
		if (c.cycle == 1 && !kw_collector_kvm_here(&c, path)) {
			char msg[PATH_MAX * 2 + 128];
			snprintf(msg, sizeof(msg),
				 "no KVM on this host (%s and %s/module/kvm absent, no VM process, libvirt unavailable)",
				 path, c.cfg.sysfs);
			disable(msg);
			rc = 1;
			break;
		}
		if (r < 0)
			kw_log_once(KW_LOG_ERR, "nd-collect", "collection failed: %s (will retry)", strerror(-r));
		else
			kw_log_forget("nd-collect");
		if (nd_publish(&st, &c) == -ENOMEM) {
			kw_err("out of memory: exiting");
			rc = 1;
			break;
		}
		/* --step (tests): a comment line marks the end of each cycle. */
		if (step)
			printf("# kvmwatch.plugin cycle %llu done\n", (unsigned long long)c.cycle);
		if (flush_out())
			break;
		if (step)
			continue;
		/* Drift-free: the next tick is a fixed multiple of UPDATE_EVERY
		 * from the start; ticks missed by a slow cycle are skipped. */
		next += (uint64_t)update_every * 1000000000ull;
		{
			uint64_t now = kw_now_mono_ns();
			while (next <= now)
				next += (uint64_t)update_every * 1000000000ull;
		}
		if (kw_sleep_until(next, &exiting))
			break;
	}
	nd_state_free(&st);
out:
	kw_collector_fini(&c);
	kw_pattern_free(&pat);
	return rc;
}
