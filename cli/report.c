// SPDX-License-Identifier: GPL-2.0
/* report.c - kvmwatch's periodic per-VM reports: aligned text tables of the
 * views (core/kw_views.c: summary, vcpu, net, host, list, all, mem, kvm,
 * disk) printed by one function, and JSON (every row of the metric table),
 * one object per interval.  Rates come from deltas between two cycles. */
#include "cli.h"
#include "core/kw_view.h"
#include "prom.h"
#include "sink.h"
#include "util/kw_util.h"

#include <errno.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ text views */

static void print_time_header(FILE *f, const struct kw_collector *c)
{
	time_t t = (time_t)(c->ts_real_ns / 1000000000ull);
	struct tm tm;
	char buf[64];

	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	fprintf(f, "\n%s  %zu VM%s\n", buf, c->vms.n, c->vms.n == 1 ? "" : "s");
}

int cli_sort_key(const char *name)
{
	const struct kw_view *v = kw_view_find("summary");
	int i;

	if (!strcmp(name, "name"))
		return CLI_SORT_NAME;
	if (!strcmp(name, "pid"))
		return CLI_SORT_PID;
	i = kw_view_col(v, name);
	return i >= 0 && v->cols[i].kind > KW_VC__TEXT ? i : -3;
}

/* One cell of a table section, padded to its column. */
static void print_cell(FILE *f, const struct kw_view *v, const struct kw_vcol *col, const struct kw_vrow_ctx *r)
{
	char txt[1024], cell[1024 + 64];

	kw_vcol_format(v, col, r, 0, txt, sizeof(txt));
	if (!col->width)
		fputs(txt, f);
	else if (col->kind == KW_VC_NAME || col->kind == KW_VC_INST) /* pad by display columns */
		fputs(kw_text_safe(cell, sizeof(cell), txt, col->width, 1), f);
	else
		fprintf(f, (col->flags & KW_VC_LEFT) ? "%-*s" : "%*s", col->width, txt);
}

static int print_row(const struct kw_view *v, const struct kw_vrow_ctx *r, void *arg)
{
	FILE *f = arg;
	char line[2048];
	size_t i;

	if (v->style == KW_VSTYLE_LINE) {
		fprintf(f, "%s\n", kw_vline_format(v, r, line, sizeof(line)));
		return 0;
	}
	for (i = 0; i < v->ncols; i++) {
		if (i)
			fputc(' ', f);
		print_cell(f, v, &v->cols[i], r);
	}
	fputc('\n', f);
	return 0;
}

static void print_header(FILE *f, const struct kw_view *v)
{
	size_t i;

	if (v->style == KW_VSTYLE_LINE)
		return;
	for (i = 0; i < v->ncols; i++) {
		const struct kw_vcol *col = &v->cols[i];

		if (i)
			fputc(' ', f);
		if (!col->width)
			fputs(col->header, f);
		else
			fprintf(f, (col->flags & KW_VC_LEFT) ? "%-*s" : "%*s", col->width, col->header);
	}
	fputc('\n', f);
}

/* Summary rows, kept to sort them by a column (--sort) and cut (--limit). */
struct sorted {
	struct kw_vrow_ctx *r;
	size_t n, cap;
};

static int keep_row(const struct kw_view *v, const struct kw_vrow_ctx *r, void *arg)
{
	struct sorted *s = arg;

	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		struct kw_vrow_ctx *p = realloc(s->r, cap * sizeof(*p));

		if (!p)
			return -ENOMEM;
		s->r = p;
		s->cap = cap;
	}
	s->r[s->n++] = *r;
	return 0;
}

static const struct kw_view *sort_view;
static int sort_col;

static double sort_value(const struct kw_vrow_ctx *r)
{
	double x[2];

	return kw_vcol_values(sort_view, &sort_view->cols[sort_col], r, x) < 0 ? -1 : x[0];
}

static int row_cmp(const void *pa, const void *pb)
{
	const struct kw_vrow_ctx *a = pa, *b = pb;

	if (sort_col == CLI_SORT_PID)
		return a->vm->pid < b->vm->pid ? -1 : a->vm->pid > b->vm->pid;
	if (sort_col >= 0) {
		double x = sort_value(a), y = sort_value(b);

		if (x != y)
			return x < y ? 1 : -1;
	}
	return strcmp(a->vm->name, b->vm->name);
}

/* Print a view: each section's header and rows (the summary sorted and cut
 * as --sort and --limit say). */
static void print_view(FILE *f, const struct kw_view *v, const struct cli_opts *o, const struct kw_collector *c,
		       const struct kw_snapshot *prev, double dt)
{
	for (; v; v = v->next) {
		print_header(f, v);
		if (strcmp(v->name, "summary")) {
			kw_view_rows(v, &c->vms, &c->host, prev, dt, print_row, f);
			continue;
		}
		struct sorted s = { 0 };
		size_t i, n;

		if (kw_view_rows(v, &c->vms, &c->host, prev, dt, keep_row, &s)) {
			fprintf(stderr, "kvmwatch: out of memory\n");
			free(s.r);
			return;
		}
		sort_view = v;
		sort_col = o->sort;
		if (o->sort != CLI_SORT_NAME)
			qsort(s.r, s.n, sizeof(*s.r), row_cmp);
		n = o->limit > 0 && (size_t)o->limit < s.n ? (size_t)o->limit : s.n;
		for (i = 0; i < n; i++)
			print_row(v, &s.r[i], f);
		free(s.r);
	}
}

static void print_named(FILE *f, int view, const struct cli_opts *o, const struct kw_collector *c,
			const struct kw_snapshot *prev, double dt)
{
	print_view(f, kw_views[view], o, c, prev, dt);
}

/* ------------------------------------------------------------------ JSON */

static void json_samples(FILE *f, const struct kw_sampleset *ss, const struct kw_sampleset *prev, double dt,
			 int rates)
{
	size_t i;
	int first = 1, open_obj = 0, last_metric = -1;

	fputc('{', f);
	for (i = 0; i < ss->n; i++) {
		const struct kw_sample *s = &ss->s[i];
		const struct kw_metric_def *d = &kw_metrics[s->metric];
		double r;

		if (rates && (d->kind != KW_COUNTER || kw_rate(prev, ss, s->metric, s->inst, dt, &r)))
			continue;
		if (s->metric != last_metric) {
			if (open_obj)
				fputc('}', f);
			open_obj = 0;
			if (!first)
				fputc(',', f);
			first = 0;
			kw_json_str(f, d->name);
			fputc(':', f);
			if (kw_scope_has_instance(d->scope)) {
				fputc('{', f);
				open_obj = 1;
			}
		} else {
			fputc(',', f);
		}
		last_metric = s->metric;
		if (open_obj) {
			kw_json_str(f, s->inst);
			fputc(':', f);
		}
		if (rates)
			fprintf(f, "%.3f", r);
		else if (s->is_double)
			fprintf(f, "%.2f", isfinite(s->v.d) ? s->v.d : 0.0);
		else
			fprintf(f, "%llu", (unsigned long long)s->v.u);
	}
	if (open_obj)
		fputc('}', f);
	fputc('}', f);
}

/* Who made a record: the host's name, machine id and DMI uuid (read once;
 * the DMI uuid only where readable, i.e. as root). */
void cli_json_origin(FILE *f)
{
	static char host[256], machine[64], dmi[64];
	static int done;

	if (!done) {
		done = 1;
		if (gethostname(host, sizeof(host)))
			host[0] = '\0';
		host[sizeof(host) - 1] = '\0';
		if (kw_read_file("/etc/machine-id", machine, sizeof(machine)) > 0)
			machine[strcspn(machine, "\n")] = '\0';
		if (kw_read_file("/sys/class/dmi/id/product_uuid", dmi, sizeof(dmi)) > 0)
			dmi[strcspn(dmi, "\n")] = '\0';
	}
	fprintf(f, "\"schema\":%d,\"hostname\":", KW_JSON_SCHEMA);
	kw_json_str(f, host);
	fputs(",\"machine_id\":", f);
	if (machine[0])
		kw_json_str(f, machine);
	else
		fputs("null", f);
	fputs(",\"dmi_uuid\":", f);
	if (dmi[0])
		kw_json_str(f, dmi);
	else
		fputs("null", f);
	fputc(',', f);
}

static void json_report(FILE *f, const struct kw_collector *c, const struct kw_snapshot *prev, double dt)
{
	size_t i, k;
	int n;

	fputc('{', f);
	cli_json_origin(f);
	fprintf(f, "\"time\":%.3f,\"interval\":%.3f,\"sources\":{", (double)c->ts_real_ns / 1e9, dt);
	for (k = 0; k < KW_SRC__N; k++) {
		const struct kw_source_state *s = &c->src[k];

		fprintf(f, "%s\"%s\":{\"available\":%s", k ? "," : "", kw_source_name((int)k),
			s->available ? "true" : "false");
		if (!s->available) {
			fputs(",\"reason\":", f);
			kw_json_str(f, s->ops || s->why[0] ? s->why : "not built in");
		}
		fputc('}', f);
	}
	fputs("},\"host\":{\"metrics\":", f);
	json_samples(f, &c->host, NULL, dt, 0);
	fputs(",\"rates\":", f);
	json_samples(f, &c->host, prev->valid ? &prev->host : NULL, dt, 1);
	fputs("},\"vms\":[", f);
	for (i = 0; i < c->vms.n; i++) {
		const struct kw_vm *vm = &c->vms.vms[i];
		const struct kw_vm *p = kw_snapshot_vm(prev, vm->key, i);
		char found[64];

		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		kw_json_str(f, vm->name);
		fputs(",\"uuid\":", f);
		if (vm->uuid[0])
			kw_json_str(f, vm->uuid);
		else
			fputs("null", f);
		fprintf(f, ",\"pid\":%d,\"pve_id\":", vm->pid);
		if (vm->pve_id >= 0)
			fprintf(f, "%d", vm->pve_id);
		else
			fputs("null", f);
		fputs(",\"vmm\":", f);
		kw_json_str(f, vm->vmm);
		kw_vm_found_str(found, sizeof(found), vm->found);
		fputs(",\"found\":", f);
		kw_json_str(f, found);
		fputs(",\"state\":", f);
		kw_json_str(f, vm->state);
		fputs(",\"dom_id\":", f);
		if (vm->dom_id >= 0)
			fprintf(f, "%d", vm->dom_id);
		else
			fputs("null", f);
		fputs(",\"disks\":[", f);
		for (n = 0; n < vm->ndisks; n++) {
			if (n)
				fputc(',', f);
			kw_json_str(f, vm->disks[n].name);
		}
		fputc(']', f);
		fprintf(f, ",\"vcpus\":%d,\"threads\":[", vm->nvcpus);
		for (n = 0; n < vm->nthreads; n++)
			fprintf(f, "%s{\"tid\":%d,\"vcpu\":%d}", n ? "," : "", vm->threads[n].tid, vm->threads[n].vcpu);
		fputs("],\"netifs\":[", f);
		for (n = 0; n < vm->nnetifs; n++) {
			if (n)
				fputc(',', f);
			kw_json_str(f, vm->netifs[n].name);
		}
		fputs("],\"metrics\":", f);
		json_samples(f, &vm->stats, NULL, dt, 0);
		fputs(",\"rates\":", f);
		json_samples(f, &vm->stats, p ? &p->stats : NULL, dt, 1);
		fputc('}', f);
	}
	fputs("]}\n", f);
}

/* ------------------------------------------------------------ main loop */

static void report(FILE *f, const struct cli_opts *o, const struct kw_collector *c, const struct kw_snapshot *prev,
		   double dt)
{
	if (o->output == KW_OUT_PROM) {
		struct cli_src src[KW_SRC__N];

		cli_src_states(c, src);
		cli_prom_write(f, &c->vms, &c->host, src, -1);
	} else if (o->output == KW_OUT_JSON) {
		json_report(f, c, prev, dt);
	} else {
		print_time_header(f, c);
		print_named(f, o->view, o, c, prev, dt);
	}
	fflush(f);
}

/* One report into a sink (--output-file): rendered in memory first. */
static int report_to_sink(struct kw_sink *k, const struct cli_opts *o, const struct kw_collector *c,
			  const struct kw_snapshot *prev, double dt)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int r;

	if (!f)
		return -ENOMEM;
	report(f, o, c, prev, dt);
	r = fclose(f) ? -ENOMEM : kw_sink_write(k, buf, len);
	free(buf);
	return r;
}

static void on_hangup(int sig)
{
	kw_sink_reopen = 1;
}

int cli_run_metrics(struct cli_opts *o)
{
	struct kw_sink sink = { .fd = -1 };
	struct kw_collector c;
	struct kw_snapshot prev = { 0 };
	char err[512];
	unsigned long long start, next, step;
	long done = 0;
	int r;

	if (o->output_file[0]) {
		if (kw_sink_open(&sink, o->output_file, o->output == KW_OUT_PROM, err, sizeof(err)) < 0) {
			fprintf(stderr, "kvmwatch: %s\n", err);
			return 1;
		}
		if (sink.kind == KW_SINK_FILE) {
			/* logrotate: SIGHUP reopens the file */
			struct sigaction sa;

			memset(&sa, 0, sizeof(sa));
			sa.sa_handler = on_hangup;
			sa.sa_flags = SA_RESTART;
			sigaction(SIGHUP, &sa, NULL);
		}
	}
	r = kw_collector_init(&c, &o->cfg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "kvmwatch: %s\n", err);
		if (o->output_file[0])
			kw_sink_close(&sink);
		return 1;
	}
	r = kw_collector_collect(&c);
	if (r < 0) {
		fprintf(stderr, "kvmwatch: failed to collect: %s\n", strerror(-r));
		kw_collector_fini(&c);
		return 1;
	}
	/* The list view needs no rates: print at once. */
	if (o->view == KW_VIEW_LIST && o->output == KW_OUT_TEXT) {
		struct kw_snapshot none = { 0 };

		print_named(stdout, KW_VIEW_LIST, o, &c, &none, 0);
		if (o->output_file[0])
			kw_sink_close(&sink);
		kw_collector_fini(&c);
		return ferror(stdout) ? 1 : 0;
	}
	step = (unsigned long long)(o->interval * 1e9);
	start = next = kw_now_mono_ns();
	while (!kw_exiting && (o->count < 0 || done < o->count)) {
		double dt;

		if (kw_snapshot_take(&prev, &c)) {
			r = -ENOMEM;
			break;
		}
		next += step;
		{
			/* ticks a slow cycle missed are dropped, not caught up
			 * in a burst of reports a millisecond apart */
			uint64_t now = kw_now_mono_ns();

			while (next <= now)
				next += step;
		}
		if (o->duration > 0 && next > start + (unsigned long long)(o->duration * 1e9))
			next = start + (unsigned long long)(o->duration * 1e9);
		if (kw_sleep_until(next, &kw_exiting))
			break;
		r = kw_collector_collect(&c);
		if (r < 0) {
			fprintf(stderr, "kvmwatch: failed to collect: %s\n", strerror(-r));
			break;
		}
		dt = (double)(c.ts_mono_ns - prev.ts_mono_ns) / 1e9;
		if (o->output_file[0]) {
			r = report_to_sink(&sink, o, &c, &prev, dt);
			if (r < 0) {
				fprintf(stderr, "kvmwatch: failed to write %s: %s\n", o->output_file, strerror(-r));
				break;
			}
		} else {
			report(stdout, o, &c, &prev, dt);
			if (ferror(stdout)) {
				if (kw_output_abandoned) {
					r = 0; /* stopped while the reader was not reading */
					break;
				}
				/* A closed pipe (the reader is done) ends quietly. */
				if (errno != EPIPE)
					fprintf(stderr, "kvmwatch: failed to write report: %s\n", strerror(errno));
				r = -EPIPE;
				break;
			}
		}
		done++;
		if (o->duration > 0 && kw_now_mono_ns() >= start + (unsigned long long)(o->duration * 1e9))
			break;
		r = 0;
	}
	if (o->output_file[0])
		kw_sink_close(&sink);
	kw_snapshot_free(&prev);
	kw_collector_fini(&c);
	return r < 0 ? 1 : 0;
}
