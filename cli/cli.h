// SPDX-License-Identifier: GPL-2.0
/* cli.h - options shared by the kvmwatch CLI's modes. */
#ifndef KW_CLI_H
#define KW_CLI_H

#include <signal.h>
#include <stdio.h>

#include "core/kw_collector.h"

enum kw_out { KW_OUT_TEXT, KW_OUT_JSON, KW_OUT_PROM };

/* The version of the JSON records' layout (docs/json-schema.md). */
#define KW_JSON_SCHEMA 1
/* Index in kw_views[] (core/kw_views.c). */
enum cli_view { KW_VIEW_SUMMARY, KW_VIEW_VCPU, KW_VIEW_NET, KW_VIEW_HOST, KW_VIEW_LIST, KW_VIEW_METRICS,
	       KW_VIEW_MEM, KW_VIEW_KVM, KW_VIEW_DISK };

struct cli_opts {
	struct kw_config cfg;
	double interval;          /* seconds between reports */
	long count;               /* reports, -1 = until interrupted */
	double duration;          /* -t: stop after this many seconds (0 = no limit) */
	int output;               /* enum kw_out */
	int view;                 /* enum cli_view: index in kw_views[] */
	int verbose;
	int demo;                 /* start the demo guest */
	unsigned events;          /* eBPF event feature flags (-e -f -m -d -n -w -i) */
	int stats;                /* -s */
	int per_vcpu;             /* per-vCPU breakdown in event summaries */
	int sort;                 /* summary order: CLI_SORT_NAME, _PID or a column (cli_sort_key) */
	long limit;               /* summary: at most this many VMs (0 = all) */
	int interval_given;       /* INTERVAL was on the command line */
	int top;                  /* kvmwatch top: the interactive screen */
	int serve;                /* kvmwatch serve: the Prometheus endpoint */
	char listen[128];         /* serve --listen ADDR:PORT */
	char output_file[4096];   /* --output FILE: each report replaces it (written atomically) */
	int bpf_given;            /* --bpf was on the command line */
	unsigned list_exits;      /* --list-exit-reasons: bits 1 << isa (KW_ISA_*) to list */
	const char *replay;       /* -e --replay FILE: recorded exits to replay ("-": stdin) */
};

#define CLI_SORT_NAME (-1)
#define CLI_SORT_PID (-2)
/* --sort key -> column, CLI_SORT_NAME, CLI_SORT_PID, or -3 if unknown. */
int cli_sort_key(const char *name);

extern volatile sig_atomic_t kw_exiting;
/* Set when a stop request found the output blocked on a reader that stopped
 * reading: the rest went to /dev/null, and that is not an error. */
extern volatile sig_atomic_t kw_output_abandoned;

/* Periodic per-VM metric reports (summary/vcpu/net/host/list views). */
int cli_run_metrics(struct cli_opts *o);
/* The members every JSON record starts with: "schema", "hostname",
 * "machine_id", "dmi_uuid" and a trailing comma (report.c). */
void cli_json_origin(FILE *f);
/* kvmwatch serve: a Prometheus /metrics endpoint (serve.c). */
int cli_run_serve(struct cli_opts *o);
/* kvmwatch top: the interactive screen (top.c). */
int cli_run_top(struct cli_opts *o);
/* eBPF event modes (-e -f -m -d -n -w -i, -s): events.c. */
int cli_run_events(struct cli_opts *o);
/* --list-exit-reasons: every exit reason -e names (ev_exits.c). */
int cli_list_exit_reasons(struct cli_opts *o);
/* --demo: start the demo guest child, run `run` (metric reports or event
 * tracing), stop the guest. */
int cli_run_demo(struct cli_opts *o, int (*run)(struct cli_opts *o));
/* The demo guest child process itself (argv[1] == "--demo-guest"). */
int cli_demo_guest_main(int argc, char **argv);

#endif
