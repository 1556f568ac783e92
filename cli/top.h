// SPDX-License-Identifier: GPL-2.0
/* top.h - kvmwatch top, the interactive screen: state shared by top.c
 * (collection, keys, the main loop) and top_draw.c (the screens).  Every
 * column comes from the views of core/kw_views.c ("top", "threads",
 * "other_threads", "mem", "net", "disk", "kvm", "migration", "host"). */
#ifndef KW_CLI_TOP_H
#define KW_CLI_TOP_H

#include <pthread.h>

#include "bg.h"
#include "cli.h"
#include "core/kw_view.h"

#define TOP_SPARK 60          /* samples a sparkline keeps */
#define TOP_LOG 200           /* log lines kept for the overlay */
#define TOP_MAXCOLS 64

enum top_screen { SCR_LIST, SCR_VM, SCR_NET, SCR_STORAGE, SCR_TREE };
enum top_tab { TAB_VCPU, TAB_MEM, TAB_NET, TAB_BLOCK, TAB_KVM, TAB_MIG, TAB__N };
enum top_overlay { OV_NONE, OV_HELP, OV_LOG, OV_FIELDS };

struct top_spark {
	char key[160];        /* VM key + what */
	float v[TOP_SPARK];   /* oldest first */
	int n;
	uint64_t cycle;       /* last cycle it was fed */
};

struct top {
	/* The collector runs on a thread of its own (bg.c) and publishes each
	 * cycle; the screen takes the newest when it is not paused.  A slow
	 * source never holds the keys. */
	struct cli_bg bg;
	double interval;
	/* what the screen shows */
	struct kw_snapshot cur, prev;
	struct cli_src src[KW_SRC__N];
	size_t host_vms;
	uint64_t seen_seq, cycle;
	uint64_t updated_ns;                   /* when cur came */
	double dt;
	const struct kw_view *list;            /* the "top" view */
	unsigned char shown[TOP_MAXCOLS];      /* its columns on screen */
	int sort_col;                          /* column of the list, -1: by name */
	int reverse;
	int human;
	int paused;
	char filter[128];
	int editing;                           /* the filter line is being typed */
	char edit[128];
	int overlay;                           /* enum top_overlay */
	int field_cur;
	int sel, first;                        /* selected row, first row shown */
	char sel_key[KW_NAME_MAX + 64];        /* the selected VM (kept across cycles) */
	int screen, tab;
	int all_ifaces;                        /* network view: fw* and lo too */
	int utf8;
	struct top_spark *sp;
	size_t nsp, spcap;
	pthread_mutex_t log_lock;              /* messages come from the sources' threads too */
	char log[TOP_LOG][320];
	int nlog, logpos;
	uint64_t refreshes;
};

/* The VMs the list shows (filter applied), sorted; *n of them. */
const struct kw_vm **top_rows(struct top *t, size_t *n);
/* A row context for one VM (or the host when vm is NULL). */
struct kw_vrow_ctx top_ctx(const struct top *t, const struct kw_vm *vm);
/* The sparkline of key, or NULL. */
const struct top_spark *top_spark_get(const struct top *t, const char *key);

/* top_draw.c */
void top_draw(struct top *t);

#endif
