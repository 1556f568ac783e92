// SPDX-License-Identifier: GPL-2.0
/* fakeqemu: a process that looks like a QEMU VM to /proc discovery, for the
 * scaling benchmark and the soak test: comm "qemu-system-x86", argv as given
 * (run it with argv[0] = "qemu-system-x86_64", e.g. `exec -a`, and
 * -name guest=NAME,debug-threads=on -uuid UUID -smp N), N threads named
 * "CPU n/KVM" and one "IO mon_iothread", all asleep.  It has no KVM VM: the
 * per-VM cost it measures is the /proc part (stat, status, io, schedstat of
 * every thread, cgroup, fds).  Dies with its parent (PR_SET_PDEATHSIG) or on
 * SIGTERM/SIGINT/stdin EOF (with --stdin). */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define MAX_VCPUS 64

static void *sleeper(void *arg)
{
	char name[16];

	snprintf(name, sizeof(name), "%.15s", (const char *)arg);
	pthread_setname_np(pthread_self(), name);
	for (;;)
		pause();
	return NULL;
}

int main(int argc, char **argv)
{
	static char names[MAX_VCPUS + 1][24];
	pthread_attr_t attr;
	long vcpus = 1;
	int i, watch_stdin = 0;
	sigset_t set;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-smp") && i + 1 < argc) {
			char *end;

			vcpus = strtol(argv[i + 1], &end, 10);
			if (end == argv[i + 1] || (*end && *end != ',') || vcpus < 1 || vcpus > MAX_VCPUS) {
				fprintf(stderr, "fakeqemu: invalid -smp '%s' (1..%d)\n", argv[i + 1], MAX_VCPUS);
				return 2;
			}
		} else if (!strcmp(argv[i], "--stdin")) {
			watch_stdin = 1;
		}
	}
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() == 1) {
		fprintf(stderr, "fakeqemu: parent gone or prctl failed: %s\n", strerror(errno));
		return 1;
	}
	prctl(PR_SET_NAME, "qemu-system-x86");
	/* The threads inherit a blocked SIGTERM/SIGINT: the main thread takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	for (i = 0; i <= vcpus; i++) {
		pthread_t t;
		int r;

		if (i < vcpus)
			snprintf(names[i], sizeof(names[i]), "CPU %d/KVM", i);
		else
			snprintf(names[i], sizeof(names[i]), "IO mon_iothread");
		r = pthread_create(&t, &attr, sleeper, names[i]);
		if (r) {
			fprintf(stderr, "fakeqemu: failed to create thread: %s\n", strerror(r));
			return 1;
		}
	}
	if (watch_stdin) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		char buf[64];

		pthread_sigmask(SIG_UNBLOCK, &set, NULL);
		while (poll(&p, 1, -1) >= 0 || errno == EINTR) {
			ssize_t n = read(0, buf, sizeof(buf));
			if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
				break;
		}
		return 0;
	}
	sigwait(&set, &i);
	return 0;
}
