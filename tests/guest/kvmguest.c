// SPDX-License-Identifier: GPL-2.0
/* kvmguest: run one of kw_guest's programs in a real KVM VM (for tests and
 * demos).  Looks like QEMU to /proc discovery: accepts `-name guest=NAME,...`
 * and `-uuid UUID` (ignored otherwise) and names its vCPU threads
 * "CPU <n>/KVM".  Prints the result as one JSON object on stdout. */
#include "kw_guest.h"
#include "kvm/kw_decode.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile int stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: kvmguest --mode MODE [options]\n"
		"Run a guest program in a KVM VM and print its result as JSON.\n\n"
		"  --mode pio|mmio|hlt|pages|dirty|irq-pic|irq-ioapic|irq-msi|haltpoll|demo\n"
		"  --count N          N of the mode (outs, writes, halts, pages, interrupts;\n"
		"                     demo: spin iterations per loop)\n"
		"  --vcpus N          number of vCPUs (default 1; extra vCPUs halt)\n"
		"  --halt-poll-ns NS  set KVM_CAP_HALT_POLL (haltpoll default 1000000)\n"
		"  --irq-period-us US haltpoll: gap between interrupts; demo: sleep per HLT\n"
		"  --irqfd            irq-ioapic/irq-msi: inject through a KVM_IRQFD eventfd that a\n"
		"                     separate writer process writes (irqfd_writer_pid in the result)\n"
		"  --seconds S        demo: run this long (default: until SIGINT/SIGTERM)\n"
		"  --timeout S        give up on other modes after S seconds (default 30)\n"
		"  --wait-stdin       print \"ready PID\", wait for a line on stdin, then run\n"
		"  --hold S           keep the VM open S seconds after the program (or until\n"
		"                     stdin EOF with --wait-stdin)\n"
		"  -name guest=NAME,debug-threads=on, -uuid UUID, -id N (Proxmox)   accepted and ignored\n");
}

static int get_ulong(const char *arg, const char *what, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(arg, &end, 0);
	if (errno || end == arg || *end || arg[0] == '-' || v > max) {
		fprintf(stderr, "kvmguest: invalid %s '%s' (0..%lu)\n", what, arg, max);
		return -1;
	}
	*out = v;
	return 0;
}

static int get_double(const char *arg, const char *what, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v >= 0) || v > 1e6) {
		fprintf(stderr, "kvmguest: invalid %s '%s'\n", what, arg);
		return -1;
	}
	*out = v;
	return 0;
}

static void print_stats(const struct kw_guest_stats *st)
{
	printf("{");
	for (unsigned i = 0; i < st->n; i++)
		printf("%s\"%s\":%llu", i ? "," : "", st->s[i].name, (unsigned long long)st->s[i].value);
	printf("}");
}

static void print_json(const struct kw_guest_result *r)
{
	printf("{\"pid\":%d,\"mode\":\"%s\",\"count\":%u,\"vcpus\":%u,\"elapsed\":%.6f,"
	       "\"pio_out\":%llu,\"mmio_write\":%llu,\"irqs_injected\":%llu,\"irqs_handled\":%llu,"
	       "\"dirty_harvested\":%llu,\"dirty_resets\":%llu,\"dirty_pages\":%llu,\"dirty_ring_entries\":%u,\"demo_loops\":%llu,\"halt_poll_ns\":%lld,"
	       "\"irqfd_writer_pid\":%d,"
	       "\"vm_stats\":",
	       (int)getpid(), kw_guest_mode_name(r->mode), r->count, r->vcpus, r->elapsed,
	       (unsigned long long)r->pio_out, (unsigned long long)r->mmio_write,
	       (unsigned long long)r->irqs_injected, (unsigned long long)r->irqs_handled,
	       (unsigned long long)r->dirty_harvested, (unsigned long long)r->dirty_resets,
	       (unsigned long long)r->dirty_pages, r->dirty_ring_entries,
	       (unsigned long long)r->demo_loops, r->halt_poll_ns, r->irqfd_writer_pid);
	print_stats(&r->vm_stats);
	printf(",\"vcpu\":[");
	for (unsigned i = 0; i < r->vcpus; i++) {
		const struct kw_guest_vcpu_result *v = &r->vcpu[i];
		int first = 1;

		printf("%s{\"index\":%u,\"tid\":%d,\"runs\":%llu,\"eintr\":%llu,\"exits\":{", i ? "," : "",
		       i, (int)v->tid, (unsigned long long)v->runs, (unsigned long long)v->eintr);
		for (unsigned e = 0; e < KW_GUEST_NR_EXIT_REASONS; e++) {
			if (!v->exits[e])
				continue;
			if (kw_kvm_uexit_name(e))
				printf("%s\"%s\":%llu", first ? "" : ",", kw_kvm_uexit_name(e),
				       (unsigned long long)v->exits[e]);
			else
				printf("%s\"%u\":%llu", first ? "" : ",", e, (unsigned long long)v->exits[e]);
			first = 0;
		}
		printf("},\"stats\":");
		print_stats(&v->stats);
		printf("}");
	}
	printf("]}\n");
	fflush(stdout);
}

/* Read one line from fd 0 without stdio buffering; 1 = line, 0 = EOF,
 * -1 = error or interrupted. */
static int read_line(void)
{
	char c;

	for (;;) {
		ssize_t n = read(0, &c, 1);

		if (n == 0)
			return 0;
		if (n < 0) {
			if (errno == EINTR && !stop)
				continue;
			return -1;
		}
		if (c == '\n')
			return 1;
	}
}

/* Hold for `secs` seconds, or until stdin reaches EOF when watch_stdin. */
static void hold(double secs, int watch_stdin)
{
	struct timespec end, now;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)secs;
	end.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	while (!stop) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		long long left;
		int timeout;

		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (long long)(end.tv_sec - now.tv_sec) * 1000 + (end.tv_nsec - now.tv_nsec) / 1000000;
		if (left <= 0)
			return;
		timeout = left > 1000 ? 1000 : (int)left;
		if (!watch_stdin) {
			poll(NULL, 0, timeout);
			continue;
		}
		int r = poll(&p, 1, timeout);
		if (r > 0) {
			char buf[256];
			ssize_t n = read(0, buf, sizeof(buf));

			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				return;
		}
	}
}

int main(int argc, char **argv)
{
	enum { O_MODE = 256, O_COUNT, O_VCPUS, O_HPNS, O_PERIOD, O_SECONDS, O_TIMEOUT, O_WAIT,
	       O_HOLD, O_NAME, O_UUID, O_ID, O_IRQFD, O_HELP };
	static const struct option opts[] = {
		{ "mode", required_argument, NULL, O_MODE },
		{ "count", required_argument, NULL, O_COUNT },
		{ "vcpus", required_argument, NULL, O_VCPUS },
		{ "halt-poll-ns", required_argument, NULL, O_HPNS },
		{ "irq-period-us", required_argument, NULL, O_PERIOD },
		{ "seconds", required_argument, NULL, O_SECONDS },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "wait-stdin", no_argument, NULL, O_WAIT },
		{ "hold", required_argument, NULL, O_HOLD },
		{ "name", required_argument, NULL, O_NAME },
		{ "uuid", required_argument, NULL, O_UUID },
		{ "id", required_argument, NULL, O_ID },
		{ "irqfd", no_argument, NULL, O_IRQFD },
		{ "help", no_argument, NULL, O_HELP },
		{ NULL, 0, NULL, 0 },
	};
	struct kw_guest_opts o = { .mode = -1, .halt_poll_ns = KW_GUEST_HALT_POLL_UNSET, .stop = &stop };
	struct kw_guest_result *res = NULL;
	struct kw_guest *g = NULL;
	struct sigaction sa;
	double hold_s = 0;
	int wait_stdin = 0, c, rc = 1;
	unsigned long v;
	char err[512];

	while ((c = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case O_MODE:
			o.mode = kw_guest_mode_from_name(optarg);
			if (o.mode < 0) {
				fprintf(stderr, "kvmguest: unknown mode '%s'\n", optarg);
				return 2;
			}
			break;
		case O_COUNT:
			if (get_ulong(optarg, "count", 0xffffffffUL, &v) < 0)
				return 2;
			o.count = (unsigned)v;
			break;
		case O_VCPUS:
			if (get_ulong(optarg, "vcpus", KW_GUEST_MAX_VCPUS, &v) < 0 || v == 0) {
				if (v == 0)
					fprintf(stderr, "kvmguest: --vcpus must be at least 1\n");
				return 2;
			}
			o.vcpus = (unsigned)v;
			break;
		case O_HPNS:
			if (get_ulong(optarg, "halt-poll-ns", 0xffffffffUL, &v) < 0)
				return 2;
			o.halt_poll_ns = (long long)v;
			break;
		case O_PERIOD:
			if (get_ulong(optarg, "irq-period-us", 10000000UL, &v) < 0)
				return 2;
			o.irq_period_us = (unsigned)v;
			break;
		case O_SECONDS:
			if (get_double(optarg, "seconds", &o.seconds) < 0)
				return 2;
			break;
		case O_TIMEOUT:
			if (get_double(optarg, "timeout", &o.timeout) < 0)
				return 2;
			break;
		case O_WAIT:
			wait_stdin = 1;
			break;
		case O_HOLD:
			if (get_double(optarg, "hold", &hold_s) < 0)
				return 2;
			break;
		case O_NAME:
		case O_UUID:
		case O_ID:
			break;  /* identity for /proc discovery only */
		case O_IRQFD:
			o.irqfd = 1;
			break;
		case O_HELP:
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kvmguest: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (o.mode < 0) {
		fprintf(stderr, "kvmguest: --mode is required\n");
		usage(stderr);
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0) {
		fprintf(stderr, "kvmguest: failed to install signal handlers: %s\n", strerror(errno));
		return 1;
	}
	res = calloc(1, sizeof(*res));
	if (!res) {
		fprintf(stderr, "kvmguest: failed to allocate result: %s\n", strerror(errno));
		return 1;
	}
	g = kw_guest_create(&o, err, sizeof(err));
	if (!g) {
		fprintf(stderr, "kvmguest: %s\n", err);
		goto out;
	}
	if (wait_stdin) {
		int r;

		printf("ready %d\n", (int)getpid());
		fflush(stdout);
		r = read_line();
		if (r <= 0) {
			fprintf(stderr, "kvmguest: failed to read start line from stdin: %s\n",
				r == 0 ? "end of file" : strerror(stop ? EINTR : errno));
			goto out;
		}
	}
	if (kw_guest_start(g, err, sizeof(err)) < 0 || kw_guest_wait(g, res, err, sizeof(err)) < 0) {
		fprintf(stderr, "kvmguest: %s\n", err);
		goto out;
	}
	print_json(res);
	if (hold_s > 0)
		hold(hold_s, wait_stdin);
	rc = 0;
out:
	kw_guest_destroy(g);
	free(res);
	return rc;
}
