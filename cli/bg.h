// SPDX-License-Identifier: GPL-2.0
/* bg.h - a collector on a thread of its own, for the front ends that stay
 * up and must never wait for it: the interactive screen (top.c) and the
 * Prometheus endpoint (serve.c).  It collects every interval (missed ticks
 * dropped) and publishes each cycle as a snapshot under its lock; a reader
 * takes the newest one when it wants it. */
#ifndef KW_CLI_BG_H
#define KW_CLI_BG_H

#include <pthread.h>
#include <stdint.h>

#include "core/kw_collector.h"

/* What a front end says of a source. */
struct cli_src {
	int on;               /* asked for */
	int available;
	int connected;        /* sources that reconnect: connected now */
	char why[256];
};

struct cli_bg {
	struct kw_collector c;         /* the thread's only */
	pthread_t th;
	pthread_mutex_t lock;          /* everything below */
	pthread_cond_t wake;
	int wake_fd[2];                /* readable after each published cycle */
	int started, stop;
	int failed;                    /* the thread gave up: -errno */
	double interval;
	struct kw_snapshot pub;        /* the newest cycle */
	struct cli_src src[KW_SRC__N];
	size_t host_vms;
	uint64_t seq;                  /* cycles published */
	double cycle_s;                /* how long the newest cycle took */
};

/* Set up the collector and publish its first cycle (no rates yet).
 * Returns 0, or -errno with err filled. */
int cli_bg_init(struct cli_bg *b, const struct kw_config *cfg, double interval, char *err, size_t errlen);
/* Start the thread.  0 or -errno. */
int cli_bg_start(struct cli_bg *b);
/* Change the interval (wakes the thread). */
void cli_bg_set_interval(struct cli_bg *b, double interval);
/* Stop the thread and free everything. */
void cli_bg_fini(struct cli_bg *b);
/* The sources' states of a collector as the front ends say them. */
void cli_src_states(const struct kw_collector *c, struct cli_src out[KW_SRC__N]);
/* Empty the wake-up pipe (after poll said it is readable). */
void cli_bg_drain(struct cli_bg *b);

#endif
