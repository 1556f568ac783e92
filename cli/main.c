// SPDX-License-Identifier: GPL-2.0
/* main.c - kvmwatch: watch KVM virtual machines from the host.
 * argp option parsing and mode dispatch; the modes live in their own files. */
#include <argp.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "core/kw_view.h"
#include "kvm/kw_decode.h"
#include "util/kw_priv.h"
#include "util/kw_util.h"

#include "kw_version.h"

volatile sig_atomic_t kw_exiting;
volatile sig_atomic_t kw_output_abandoned;

const char *argp_program_version = "kvmwatch " KW_VERSION;
const char *argp_program_bug_address = "the kvmwatch issue tracker";

static const char doc[] =
	"kvmwatch -- watch KVM virtual machines from the host.\n"
	"\n"
	"Finds every VM (QEMU processes, any process holding a KVM VM, Proxmox ids, tap interfaces) and prints "
	"per-VM resource use every INTERVAL seconds (default 1), COUNT times (default: until interrupted), like "
	"vmstat; `top' is the interactive screen, `serve' a Prometheus endpoint."
	"\vViews: summary (default), vcpu, net, host, list, all (every metric with its rate), mem (state, "
	"memory and balloon: libvirt or QMP), kvm (KVM binary stats: exits and faults per second), disk (per "
	"VM disk: IOPS, KiB/s, latency, failed requests, capacity), top (the screen's columns).";

/* Printed as they are after the option list (argp would re-wrap them). */
static const char examples[] =
	"Examples:\n"
	"  kvmwatch 1 5              # five one-second per-VM summaries\n"
	"  kvmwatch -l               # list the VMs found and exit\n"
	"  kvmwatch -o json 2 3      # three JSON reports, two seconds apart\n"
	"  kvmwatch --view vcpu      # per-vCPU run time and steal\n"
	"  kvmwatch -p web01 -t 10   # only VM web01 (name, uuid or pid), for 10 seconds\n"
	"  kvmwatch --demo 1 5       # start the project's tiny demo guest and watch it\n"
	"  kvmwatch top              # the interactive screen (? for its keys)\n"
	"  kvmwatch serve --listen 127.0.0.1:9977 15   # Prometheus /metrics\n"
	"  kvmwatch -e -p web01      # stream web01's VM exits (eBPF, needs root)\n"
	"  kvmwatch -e -f -s -t 10   # exit and MMU fault statistics after 10 seconds\n"
	"  kvmwatch -s -e 1          # exit statistics every second, like perf kvm stat live\n"
	"  kvmwatch -d -s -o json    # dirty page counts, rates and top GFNs as JSON\n"
	"  kvmwatch -e -s --replay exits.txt  # recorded exits through the BPF aggregation\n"
	"  kvmwatch --list-exit-reasons svm   # the SVM exit codes and names -e uses\n"
	"  kvmwatch --bpf all --view all  # per-VM metrics including the eBPF counters\n"
	"  kvmwatch --view disk 5    # per-VM per-disk IOPS, throughput and latency (libvirt or QMP)\n";

static const char args_doc[] = "[INTERVAL [COUNT]]\ntop [INTERVAL]\nserve [--listen ADDR:PORT] [INTERVAL]";

enum {
	OPT_PROCFS = 1000,
	OPT_OUTPUT_FILE,
	OPT_LISTEN,
	OPT_SYSFS,
	OPT_VIEW,
	OPT_SORT,
	OPT_LIMIT,
	OPT_NO_HOST,
	OPT_DEMO,
	OPT_PER_VCPU,
	OPT_BPF,
	OPT_NO_PROCFS,
	OPT_NO_LIBVIRT,
	OPT_NO_KVMSTAT,
	OPT_NO_QMP,
	OPT_PRIVILEGES,
	OPT_LIST_EXITS,
	OPT_REPLAY,
};

static const struct argp_option options[] = {
	{ "output", 'o', "FORMAT", 0, "Output format: text (default), json (one object per interval) or prometheus (the text exposition, e.g. for node_exporter's textfile collector with --output-file)", 0 },
	{ "output-file", OPT_OUTPUT_FILE, "FILE|tcp://HOST:PORT|udp://HOST:PORT", 0, "Reports to FILE (appended; reopened on SIGHUP; with -o prometheus replaced atomically) or a log sink (never blocking: buffered, reconnected, drops counted)", 0 },
	{ "listen", OPT_LISTEN, "ADDR:PORT", 0, "serve: where /metrics listens (default 127.0.0.1:9977; :PORT for every address)", 0 },
	{ "view", OPT_VIEW, "VIEW", 0, "summary, vcpu, net, host, list, all, mem, kvm, disk, top (and the screen's threads, other_threads, migration, exits)", 0 },
	{ "sort", OPT_SORT, "KEY", 0, "Summary order: name (default), pid, or highest first by cpu, guest, steal, other, rss, "
	  "faults, read, write, iowait, rx, tx", 0 },
	{ "limit", OPT_LIMIT, "N", 0, "Summary: show at most N VMs (with --sort: the top N)", 0 },
	{ "list", 'l', NULL, 0, "List the VMs found and exit (same as --view list, once)", 0 },
	{ "pid", 'p', "PID|NAME", 0, "Only this VM: VMM pid, VM name, uuid or vmid:N (Proxmox VMID); "
	  "repeatable: any of them", 0 },
	{ "time", 't', "SECONDS", 0, "Stop after SECONDS", 0 },
	{ "procfs", OPT_PROCFS, "DIR", 0, "Read the proc filesystem at DIR (default /proc)", 0 },
	{ "sysfs", OPT_SYSFS, "DIR", 0, "Read the sys filesystem at DIR (default /sys)", 0 },
	{ "no-host", OPT_NO_HOST, NULL, 0, "Do not collect host totals", 0 },
	{ "connection", 'c', "URI", 0, "libvirt connection URI (default qemu:///system; e.g. "
	  "qemu+ssh://host/system with --procfs at that host's mounted /proc)", 0 },
	{ "no-libvirt", OPT_NO_LIBVIRT, NULL, 0, "Do not use libvirt", 0 },
	{ "no-kvmstat", OPT_NO_KVMSTAT, NULL, 0, "Do not read KVM binary statistics (KVM_GET_STATS_FD)", 0 },
	{ "no-qmp", OPT_NO_QMP, NULL, 0, "Do not ask QEMU's QMP sockets (VMs without libvirt: disks, balloon, KVM stats)", 0 },
	{ "no-procfs", OPT_NO_PROCFS, NULL, 0, "Do not scan /proc for VMM processes (libvirt domains only)", 0 },
	{ "demo", OPT_DEMO, NULL, 0, "Start the project's tiny demo guest (a real KVM VM) and watch it", 0 },
	{ "privileges", OPT_PRIVILEGES, NULL, 0, "Print which capability each source needs and why, and which of "
	  "them this process has; then exit", 0 },
	{ "verbose", 'v', NULL, 0, "Verbose messages (and libbpf's own log)", 0 },
	{ NULL, 0, NULL, 0, "eBPF event tracing (root; flags combine; events stream unless -s):", 1 },
	{ "exits", 'e', NULL, 0, "VM exits: reason, count, latency (in-kernel and to user space)", 1 },
	{ "stats", 's', NULL, 0, "Aggregate in the kernel and print summaries every INTERVAL (if given) and at the end", 1 },
	{ "faults", 'f', NULL, 0, "KVM MMU page faults: address, error code, latency", 1 },
	{ "mmio", 'm', NULL, 0, "MMIO accesses: type, GPA, length, value", 1 },
	{ "dirty", 'd', NULL, 0, "Dirty guest pages: per VM count and rate, top GFNs", 1 },
	{ "halt-poll", 'n', NULL, 0, "Halt-polling changes: grow/shrink, old -> new, per vCPU", 1 },
	{ "wakeups", 'w', NULL, 0, "vCPU wakeups: halt duration histogram, waited/polled", 1 },
	{ "irq", 'i', NULL, 0, "IRQ injection: PIC/IOAPIC/MSI/LAPIC with line, vector, delivery, coalesced", 1 },
	{ "runq", 'r', NULL, 0, "Run-queue latency of the VMs' threads (wakeup or preemption -> running), vCPU threads "
	  "apart from the others: log2 histograms with p50/p99", 1 },
	{ "per-vcpu", OPT_PER_VCPU, NULL, 0, "With -s: break statistics down per vCPU", 1 },
	{ "replay", OPT_REPLAY, "FILE", 0, "With -e: instead of tracing, run recorded exits (lines ISA REASON VCPU "
	  "LATENCY_NS [PID [TID]], e.g. from a host's kvm_exit/kvm_entry trace; - for stdin) through the exits BPF "
	  "program (BPF_PROG_TEST_RUN) and print them as -e or -e -s would", 1 },
	{ "list-exit-reasons", OPT_LIST_EXITS, "vmx|svm|user", OPTION_ARG_OPTIONAL, "Print every exit reason -e names "
	  "(code, name, where the name is from: the kernel's table, a uapi define, kvmwatch) and exit; -o json "
	  "applies", 1 },
	{ "bpf", OPT_BPF, "LIST", 0, "Metric views: add the eBPF counters of LIST (exits,faults,mmio,dirty,haltpoll,wakeup,irq,runq or all)", 1 },
	{ 0 }
};

static int parse_seconds(const char *arg, double min, double max, double *out)
{
	double v;

	if (kw_parse_double(arg, &v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The privilege table (kw_priv.c), as SECURITY.md explains it. */
static int print_privileges(void)
{
	size_t i;
	int k;

	for (i = 0; i < kw_priv_nneeds; i++) {
		const struct kw_priv_need *n = &kw_priv_needs[i];
		char caps[128] = "-";
		size_t o = 0;

		for (k = 0; k < 2 && n->caps[k] >= 0; k++)
			o += (size_t)snprintf(caps + o, sizeof(caps) - o, "%s%s%s", k ? "+" : "", kw_cap_name(n->caps[k]),
					      kw_priv_has(n->caps[k]) ? "" : "(missing)");
		if (n->alt >= 0)
			snprintf(caps + o, sizeof(caps) - o, " or %s%s", kw_cap_name(n->alt),
				 kw_priv_has(n->alt) ? "" : "(missing)");
		printf("%-8s %-48s %s\n", n->what, caps, n->why);
	}
	return 0;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct cli_opts *o = state->input;
	long l;

	switch (key) {
	case 'o':
		if (!strcmp(arg, "text"))
			o->output = KW_OUT_TEXT;
		else if (!strcmp(arg, "json"))
			o->output = KW_OUT_JSON;
		else if (!strcmp(arg, "prometheus"))
			o->output = KW_OUT_PROM;
		else
			argp_error(state, "invalid output format '%s' (text, json or prometheus)", arg);
		break;
	case OPT_OUTPUT_FILE:
		if (kw_strlcpy(o->output_file, arg, sizeof(o->output_file)) >= sizeof(o->output_file) || !*arg)
			argp_error(state, "invalid --output-file '%s'", arg);
		break;
	case OPT_LISTEN:
		if (kw_strlcpy(o->listen, arg, sizeof(o->listen)) >= sizeof(o->listen))
			argp_error(state, "--listen too long");
		break;
	case OPT_VIEW: {
		size_t i;

		for (i = 0; kw_views[i]; i++)
			if (!strcmp(arg, kw_views[i]->name))
				break;
		if (!kw_views[i]) {
			char names[512];
			size_t n = 0;

			for (i = 0; kw_views[i] && n < sizeof(names); i++)
				n += (size_t)snprintf(names + n, sizeof(names) - n, "%s%s", i ? ", " : "", kw_views[i]->name);
			argp_error(state, "invalid view '%s' (%s)", arg, names);
		}
		o->view = (int)i;
		break;
	}
	case OPT_SORT:
		o->sort = cli_sort_key(arg);
		if (o->sort == -3)
			argp_error(state, "invalid sort key '%s' (name, pid, cpu, guest, steal, other, rss, faults, read, "
				   "write, iowait, rx, tx)", arg);
		break;
	case OPT_LIMIT:
		if (kw_parse_int(arg, 1, 0x7fffffff, &o->limit))
			argp_error(state, "invalid limit '%s' (a number >= 1)", arg);
		break;
	case 'l':
		o->view = KW_VIEW_LIST;
		break;
	case 'p':
		if (kw_parse_int(arg, 1, 0x7fffffff, &l) == 0) {
			if (kw_config_add_pid(&o->cfg, (pid_t)l))
				argp_failure(state, 1, ENOMEM, "failed to add pid");
		} else if (!*arg) {
			argp_error(state, "empty VM name");
		} else if (kw_config_add_name(&o->cfg, arg)) {
			argp_failure(state, 1, ENOMEM, "failed to add name");
		}
		break;
	case 't':
		if (parse_seconds(arg, 0.001, 86400.0 * 365, &o->duration))
			argp_error(state, "invalid time '%s' (seconds, > 0)", arg);
		break;
	case OPT_PROCFS:
		if (kw_strlcpy(o->cfg.procfs, arg, sizeof(o->cfg.procfs)) >= sizeof(o->cfg.procfs))
			argp_error(state, "procfs path too long");
		break;
	case OPT_SYSFS:
		if (kw_strlcpy(o->cfg.sysfs, arg, sizeof(o->cfg.sysfs)) >= sizeof(o->cfg.sysfs))
			argp_error(state, "sysfs path too long");
		break;
	case OPT_NO_HOST:
		o->cfg.no_host = 1;
		break;
	case 'c':
		if (!*arg || kw_strlcpy(o->cfg.libvirt_uri, arg, sizeof(o->cfg.libvirt_uri)) >= sizeof(o->cfg.libvirt_uri))
			argp_error(state, "invalid libvirt URI '%s' (empty or too long)", arg);
		break;
	case OPT_NO_PROCFS:
		o->cfg.sources &= ~(1u << KW_SRC_PROC);
		break;
	case OPT_NO_LIBVIRT:
		o->cfg.sources &= ~(1u << KW_SRC_LIBVIRT);
		break;
	case OPT_NO_KVMSTAT:
		o->cfg.sources &= ~(1u << KW_SRC_KVMSTAT);
		break;
	case OPT_NO_QMP:
		o->cfg.sources &= ~(1u << KW_SRC_QMP);
		break;
	case OPT_DEMO:
		o->demo = 1;
		break;
	case OPT_PRIVILEGES:
		exit(print_privileges());
	case 'v':
		o->verbose++;
		break;
	case 'e': o->events |= KW_BPF_EXITS; break;
	case 'f': o->events |= KW_BPF_FAULTS; break;
	case 'm': o->events |= KW_BPF_MMIO; break;
	case 'd': o->events |= KW_BPF_DIRTY; break;
	case 'n': o->events |= KW_BPF_HALTPOLL; break;
	case 'w': o->events |= KW_BPF_WAKEUP; break;
	case 'i': o->events |= KW_BPF_IRQ; break;
	case 'r': o->events |= KW_BPF_RUNQ; break;
	case 's': o->stats = 1; break;
	case OPT_PER_VCPU: o->per_vcpu = 1; break;
	case OPT_REPLAY:
		if (!*arg)
			argp_error(state, "empty --replay file name");
		o->replay = arg;
		break;
	case OPT_LIST_EXITS: {
		int isa = arg ? kw_kvm_isa_parse(arg) : -1;

		if (arg && isa < 0)
			argp_error(state, "invalid --list-exit-reasons '%s' (vmx, svm or user)", arg);
		/* no argument: all of them, unless ISA names follow (below) */
		o->list_exits |= arg ? 1u << isa : ~0u;
		break;
	}
	case OPT_BPF: {
		char err[256];

		if (kw_features_parse(arg, &o->cfg.bpf_features, err, sizeof(err)))
			argp_error(state, "%s", err);
		o->bpf_given = 1;
		break;
	}
	case ARGP_KEY_ARG:
		if (o->list_exits && kw_kvm_isa_parse(arg) >= 0 && (arg[0] < '0' || arg[0] > '9')) {
			/* --list-exit-reasons vmx svm */
			o->list_exits = (o->list_exits == ~0u ? 0 : o->list_exits) | 1u << kw_kvm_isa_parse(arg);
			state->arg_num--; /* not INTERVAL */
		} else if (state->arg_num == 0) {
			if (parse_seconds(arg, 0.01, 86400, &o->interval))
				argp_error(state, "invalid interval '%s' (seconds, 0.01 to 86400)", arg);
			o->interval_given = 1;
		} else if (state->arg_num == 1) {
			if (kw_parse_int(arg, 1, 0x7fffffff, &o->count))
				argp_error(state, "invalid count '%s' (a number >= 1)", arg);
		} else {
			argp_usage(state);
		}
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

/* Output blocked on a reader that stopped reading must not outlive a stop
 * request: writes restart after SIGINT/SIGTERM (a live reader gets whole
 * lines), and a SIGALRM two seconds later interrupts one still blocked
 * and abandons the output. */
#define STOP_GRACE_S 2

static void on_signal(int sig)
{
	(void)sig;
	kw_exiting = 1;
	alarm(STOP_GRACE_S);
}

static void on_alarm(int sig)
{
	/* The reader is gone for good: interrupt the blocked write and send
	 * the rest of the output nowhere, so the stop completes. */
	int fd = open("/dev/null", O_WRONLY);

	(void)sig;
	if (fd >= 0) {
		dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	kw_output_abandoned = 1;
}

int main(int argc, char **argv)
{
	static const struct argp argp = { options, parse_opt, args_doc, doc, NULL, NULL, NULL };
	struct cli_opts o;
	struct sigaction sa;
	int r;

	memset(&o, 0, sizeof(o));
	kw_config_defaults(&o.cfg);
	o.interval = 1;
	o.sort = CLI_SORT_NAME;
	o.count = -1;
	/* The demo guest takes QEMU-like identity arguments: don't let argp see them. */
	if (argc > 1 && !strcmp(argv[1], "--demo-guest"))
		return cli_demo_guest_main(argc, argv);
	/* kvmwatch top|serve [options] [INTERVAL]: the interactive screen,
	 * the Prometheus endpoint */
	if (argc > 1 && (!strcmp(argv[1], "top") || !strcmp(argv[1], "serve"))) {
		if (!strcmp(argv[1], "top"))
			o.top = 1;
		else
			o.serve = 1;
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	/* --help: argp's list, then the examples as written */
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-?")) {
			argp_help(&argp, stdout, ARGP_HELP_STD_HELP & ~ARGP_HELP_BUG_ADDR, "kvmwatch");
			printf("\n%s\nReport bugs to %s.\n", examples, argp_program_bug_address);
			kw_config_free(&o.cfg);
			return 0;
		}
	if (argp_parse(&argp, argc, argv, 0, NULL, &o))
		return 2;
	if (o.verbose)
		kw_log_set_level(KW_LOG_DEBUG);
	if (o.list_exits) {
		r = o.output == KW_OUT_PROM ? 2 : cli_list_exit_reasons(&o);
		if (r == 2)
			fprintf(stderr, "kvmwatch: --list-exit-reasons prints text or json\n");
		kw_config_free(&o.cfg);
		return r;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/* Restart interrupted writes (a report blocked on a full pipe must not
	 * turn into a write error); the interval sleep still ends at once. */
	sa.sa_flags = SA_RESTART;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sa.sa_handler = on_alarm;
	sa.sa_flags = 0; /* no SA_RESTART: the blocked write fails with EINTR */
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN); /* a closed pipe shows up as EPIPE on write */

	if ((o.events || o.stats) && o.view != KW_VIEW_SUMMARY) {
		fprintf(stderr, "kvmwatch: the eBPF event flags (-e -s -f -m -d -n -w -i) cannot be combined with "
				"--view or -l\n");
		kw_config_free(&o.cfg);
		return 2;
	}
	if (o.replay && (o.events != KW_BPF_EXITS || o.interval_given || o.duration > 0 || o.demo || o.top ||
			 o.serve)) {
		fprintf(stderr, "kvmwatch: --replay replays exits: it needs -e (with -s, --per-vcpu, -p, -o json if "
				"wanted) and takes no other event flag, INTERVAL, -t, --demo, top or serve\n");
		kw_config_free(&o.cfg);
		return 2;
	}
	if (o.per_vcpu && !o.stats) {
		fprintf(stderr, "kvmwatch: --per-vcpu needs -s\n");
		kw_config_free(&o.cfg);
		return 2;
	}
	if (o.top && (o.events || o.stats || o.view != KW_VIEW_SUMMARY)) {
		fprintf(stderr, "kvmwatch: top has its own views: the event flags and --view do not apply\n");
		kw_config_free(&o.cfg);
		return 2;
	}
	if (o.serve && (o.events || o.stats || o.top)) {
		fprintf(stderr, "kvmwatch: serve exports the metric table: the event flags do not apply\n");
		kw_config_free(&o.cfg);
		return 2;
	}
	if (o.output == KW_OUT_PROM && (o.events || o.stats)) {
		fprintf(stderr, "kvmwatch: -o prometheus is for the metric reports, not the event modes\n");
		kw_config_free(&o.cfg);
		return 2;
	}
	if (o.demo == 1)
		r = cli_run_demo(&o, o.serve ? cli_run_serve : o.top ? cli_run_top
							     : o.events || o.stats ? cli_run_events : cli_run_metrics);
	else if (o.serve)
		r = cli_run_serve(&o);
	else if (o.top)
		r = cli_run_top(&o);
	else if (o.events || o.stats)
		r = cli_run_events(&o);
	else
		r = cli_run_metrics(&o);
	kw_config_free(&o.cfg);
	return r;
}
