// SPDX-License-Identifier: GPL-2.0
/* demo.c - `kvmwatch --demo`: start the project's tiny demo guest (a real
 * KVM VM created through /dev/kvm, vCPU threads named like QEMU's) as a
 * child process with a QEMU-like command line, watch it, stop it at exit. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "kw_guest.h"
#include "util/kw_util.h"

#define DEMO_NAME "kvmwatch-demo"
#define DEMO_VCPUS "2"

static volatile int demo_stop;

static void demo_on_signal(int sig)
{
	(void)sig;
	demo_stop = 1;
}

/* argv: kvmwatch --demo-guest --ready-fd N -name guest=NAME,debug-threads=on -uuid UUID [--vcpus N] */
int cli_demo_guest_main(int argc, char **argv)
{
	struct kw_guest_opts go = { .mode = KW_GUEST_DEMO, .vcpus = 2, .halt_poll_ns = KW_GUEST_HALT_POLL_UNSET,
				    .stop = &demo_stop };
	struct kw_guest_result *res;
	struct kw_guest *g;
	struct sigaction sa;
	char err[256];
	long fd = -1, v;
	int i;

	for (i = 2; i + 1 < argc; i++) {
		if (!strcmp(argv[i], "--ready-fd") && kw_parse_int(argv[i + 1], 0, INT_MAX, &fd) == 0)
			i++;
		else if (!strcmp(argv[i], "--vcpus") && kw_parse_int(argv[i + 1], 1, KW_GUEST_MAX_VCPUS, &v) == 0)
			go.vcpus = (unsigned)v, i++;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = demo_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() == 1)
		return 1; /* parent already gone */

	res = calloc(1, sizeof(*res));
	if (!res) {
		fprintf(stderr, "kvmwatch demo guest: out of memory\n");
		return 1;
	}
	g = kw_guest_create(&go, err, sizeof(err));
	if (!g || kw_guest_start(g, err, sizeof(err))) {
		fprintf(stderr, "kvmwatch demo guest: %s\n", err);
		kw_guest_destroy(g);
		free(res);
		return 1;
	}
	if (fd >= 0) {
		if (write((int)fd, "ready\n", 6) != 6) {
			/* the parent went away: nothing to demonstrate to */
			demo_stop = 1;
		}
		close((int)fd);
	}
	i = kw_guest_wait(g, res, err, sizeof(err));
	if (i && !demo_stop)
		fprintf(stderr, "kvmwatch demo guest: %s\n", err);
	kw_guest_destroy(g);
	free(res);
	return i && !demo_stop ? 1 : 0;
}

static int read_uuid(char *out, size_t len)
{
	ssize_t r = kw_read_file("/proc/sys/kernel/random/uuid", out, len);

	if (r < 36)
		return -1;
	out[36] = '\0';
	return 0;
}

int cli_run_demo(struct cli_opts *o, int (*run)(struct cli_opts *o))
{
	char uuid[64], fdarg[16], line[16];
	int pfd[2], status, r;
	ssize_t n;
	pid_t pid;

	if (read_uuid(uuid, sizeof(uuid))) {
		fprintf(stderr, "kvmwatch: failed to generate a uuid for the demo guest\n");
		return 1;
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		fprintf(stderr, "kvmwatch: failed to create pipe: %s\n", strerror(errno));
		return 1;
	}
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "kvmwatch: failed to fork the demo guest: %s\n", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		int wfd = dup(pfd[1]); /* without O_CLOEXEC, survives exec */

		snprintf(fdarg, sizeof(fdarg), "%d", wfd);
		execl("/proc/self/exe", "kvmwatch", "--demo-guest", "--ready-fd", fdarg, "-name",
		      "guest=" DEMO_NAME ",debug-threads=on", "-uuid", uuid, "--vcpus", DEMO_VCPUS, (char *)NULL);
		fprintf(stderr, "kvmwatch: failed to exec the demo guest: %s\n", strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	n = read(pfd[0], line, sizeof(line));
	close(pfd[0]);
	if (n <= 0) {
		waitpid(pid, &status, 0);
		fprintf(stderr, "kvmwatch: failed to start the demo guest (needs read/write access to /dev/kvm)\n");
		return 1;
	}
	fprintf(stderr, "kvmwatch: demo guest '%s' running as pid %d (uuid %s)\n", DEMO_NAME, pid, uuid);
	r = run(o);
	kill(pid, SIGTERM);
	waitpid(pid, &status, 0);
	return r;
}
