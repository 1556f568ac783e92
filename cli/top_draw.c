// SPDX-License-Identifier: GPL-2.0
/* top_draw.c - the screens of kvmwatch top: the VM list with its header,
 * one VM's tabs, the network, storage and thread-tree views, and the help,
 * log and field overlays.  Cells come from the views (kw_vcol_format). */
#include "top.h"
#include "util/kw_util.h"

#include <curses.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const tab_names[TAB__N] = { "vCPU", "memory", "network", "block", "KVM", "migration" };

/* Write s at (y, x), at most to the right edge. */
static void put(int y, int x, const char *s)
{
	if (y < 0 || y >= LINES || x >= COLS)
		return;
	mvaddnstr(y, x, s, COLS - x);
}

static void putf(int y, int x, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void putf(int y, int x, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	put(y, x, buf);
}

/* A cell padded to its column (by display columns). */
static void cell(char *out, size_t len, const struct kw_vcol *col, const char *txt)
{
	char safe[1024];

	if (!col->width) {
		kw_text_safe(out, len, txt, 256, 0);
		return;
	}
	kw_text_safe(safe, sizeof(safe), txt, col->width, 0);
	if (col->flags & KW_VC_LEFT || col->kind == KW_VC_NAME || col->kind == KW_VC_INST)
		kw_text_safe(out, len, safe, col->width, 1);
	else
		snprintf(out, len, "%*s", col->width, safe);
}

/* One table row of view v (only the columns on, if shown is given). */
static void row_line(char *out, size_t len, const struct top *t, const struct kw_view *v,
		     const unsigned char *shown, const struct kw_vrow_ctx *r)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < v->ncols && o + 1 < len; i++) {
		char txt[512], c[2048];

		if (shown && !shown[i])
			continue;
		kw_vcol_format(v, &v->cols[i], r, t->human, txt, sizeof(txt));
		cell(c, sizeof(c), &v->cols[i], txt);
		o += (size_t)snprintf(out + o, len - o, "%s%s", o ? " " : "", c);
	}
}

static void head_line(char *out, size_t len, const struct kw_view *v, const unsigned char *shown, int sort_col,
		      int reverse, int utf8)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < v->ncols && o + 1 < len; i++) {
		const struct kw_vcol *col = &v->cols[i];
		char h[96];

		if (shown && !shown[i])
			continue;
		snprintf(h, sizeof(h), "%s%s", col->header,
			 (int)i == sort_col ? (reverse ? (utf8 ? "\xe2\x86\x91" : "^") : (utf8 ? "\xe2\x86\x93" : "v")) : "");
		if (!col->width)
			o += (size_t)snprintf(out + o, len - o, "%s%s", o ? " " : "", h);
		else if (col->flags & KW_VC_LEFT || col->kind == KW_VC_NAME || col->kind == KW_VC_INST)
			o += (size_t)snprintf(out + o, len - o, "%s%-*s", o ? " " : "", col->width + ((int)i == sort_col && utf8 ? 2 : 0), h);
		else
			o += (size_t)snprintf(out + o, len - o, "%s%*s", o ? " " : "", col->width + ((int)i == sort_col && utf8 ? 2 : 0), h);
	}
}

/* A sparkline of the last w values (0..top, at least max of the values). */
static void spark(char *out, size_t len, const struct top *t, const char *key, int w, double top)
{
	static const char *const blocks[] = { " ", "\xe2\x96\x81", "\xe2\x96\x82", "\xe2\x96\x83", "\xe2\x96\x84",
					      "\xe2\x96\x85", "\xe2\x96\x86", "\xe2\x96\x87", "\xe2\x96\x88" };
	static const char ascii[] = " .:-=+*#@";
	const struct top_spark *s = top_spark_get(t, key);
	double max = top;
	size_t o = 0;
	int i, from;

	out[0] = '\0';
	if (!s)
		return;
	from = s->n > w ? s->n - w : 0;
	for (i = from; i < s->n; i++)
		if (s->v[i] > max)
			max = s->v[i];
	for (i = from; i < s->n && o + 4 < len; i++) {
		int lvl = max > 0 ? (int)(s->v[i] / max * 8 + 0.5) : 0;

		if (lvl > 8)
			lvl = 8;
		if (s->v[i] > 0 && lvl == 0)
			lvl = 1;
		if (t->utf8)
			o += (size_t)snprintf(out + o, len - o, "%s", blocks[lvl]);
		else
			out[o++] = ascii[lvl], out[o] = '\0';
	}
}

/* ------------------------------------------------------------ header */

static void source_states(char *out, size_t len, const struct top *t)
{
	size_t o = 0;

	out[0] = '\0';
	for (int k = 0; k < KW_SRC__N && o + 1 < len; k++) {
		const struct cli_src *s = &t->src[k];
		char why[200];
		const char *state;

		if (!s->on)
			state = "off";
		else if (s->available && !s->connected)
			state = "reconnecting";
		else if (s->available)
			state = "on";
		else {
			/* the reason's first clause: the log ('l') has the rest */
			const char *w = s->why[0] ? s->why : "unavailable";
			const char *cut = strstr(w, ": ");

			snprintf(why, sizeof(why), "off (%.*s)", cut && cut - w < 60 ? (int)(cut - w) : 60, w);
			state = why;
		}
		o += (size_t)snprintf(out + o, len - o, "%s%s: %s", o ? "  " : "", kw_source_name(k), state);
	}
}

static int draw_header(struct top *t)
{
	char buf[4096], ts[32];
	time_t now = (time_t)(t->cur.ts_real_ns / 1000000000ull);
	double age = (double)(kw_now_mono_ns() - t->updated_ns) / 1e9;
	char stale[48] = "";
	struct tm tm;
	const struct kw_view *hv = kw_view_find("host");
	struct kw_vrow_ctx r = top_ctx(t, NULL);
	int y = 0;

	localtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%H:%M:%S", &tm);
	/* a cycle late by more than an interval and a second: the numbers are old */
	if (!t->paused && age > t->interval + 1)
		snprintf(stale, sizeof(stale), "  [stale: %.0f s]", age);
	attron(A_REVERSE | A_BOLD);
	snprintf(buf, sizeof(buf), " kvmwatch top  %s  %zu VM%s (%zu on the host)  every %.2g s%s%s%s%s%s", ts,
		 t->cur.vms.n, t->cur.vms.n == 1 ? "" : "s", t->host_vms, t->interval, t->paused ? "  [paused]" : "",
		 stale, t->human ? "  [human units]" : "", t->filter[0] ? "  filter: " : "", t->filter);
	putf(y, 0, "%-*s", COLS, buf);
	attroff(A_REVERSE | A_BOLD);
	y++;
	/* the host view's line sections: cpu, mem, psi */
	for (const struct kw_view *v = hv; v && v->style == KW_VSTYLE_LINE; v = v->next)
		put(y++, 0, kw_vline_format(v, &r, buf, sizeof(buf)));
	source_states(buf, sizeof(buf), t);
	if (has_colors())
		attron(COLOR_PAIR(1));
	put(y++, 0, buf);
	if (has_colors())
		attroff(COLOR_PAIR(1));
	return y;
}

static void draw_footer(struct top *t, const char *keys)
{
	char buf[512];

	if (t->editing) {
		snprintf(buf, sizeof(buf), "filter (name, uuid, pid, vmid:N; Enter applies, Esc cancels): %s", t->edit);
		attron(A_BOLD);
		putf(LINES - 1, 0, "%-*s", COLS, buf);
		attroff(A_BOLD);
		return;
	}
	attron(A_REVERSE);
	putf(LINES - 1, 0, "%-*s", COLS, keys);
	attroff(A_REVERSE);
}

/* ------------------------------------------------------------ VM list */

static void draw_list(struct top *t, int y)
{
	char buf[4096];
	size_t n, i;
	const struct kw_vm **v = top_rows(t, &n);
	int rows = LINES - 1 - (y + 1);

	head_line(buf, sizeof(buf), t->list, t->shown, t->sort_col, t->reverse, t->utf8);
	attron(A_BOLD | A_UNDERLINE);
	putf(y++, 0, "%-*s", COLS, buf);
	attroff(A_BOLD | A_UNDERLINE);
	if (!v)
		return;
	if (t->sel < t->first)
		t->first = t->sel;
	if (rows > 0 && t->sel >= t->first + rows)
		t->first = t->sel - rows + 1;
	if (!n)
		put(y, 0, t->filter[0] ? "no VM matches the filter (Esc clears it)" : "no VMs found");
	for (i = (size_t)t->first; i < n && (int)(i - (size_t)t->first) < rows; i++) {
		struct kw_vrow_ctx r = top_ctx(t, v[i]);

		row_line(buf, sizeof(buf), t, t->list, t->shown, &r);
		if ((int)i == t->sel)
			attron(A_REVERSE);
		putf(y + (int)(i - (size_t)t->first), 0, "%-*s", COLS, buf);
		if ((int)i == t->sel)
			attroff(A_REVERSE);
	}
	free(v);
}

/* ------------------------------------------------------------ one VM */

static const struct kw_vm *selected(const struct top *t)
{
	return t->sel_key[0] ? kw_vmt_find_key((struct kw_vmtable *)&t->cur.vms, t->sel_key) : NULL;
}

struct vm_rows_arg {
	const struct top *t;
	const struct kw_vm *vm;
	int y, skip;
	int spark_kind;     /* 0 none, 1 vcpu run/steal, 2 netif rx/tx */
	unsigned char shown[TOP_MAXCOLS];  /* the view's columns but the VM's name and pid */
};

static int vm_row(const struct kw_view *v, const struct kw_vrow_ctx *r, void *arg)
{
	struct vm_rows_arg *a = arg;
	char buf[4096], s1[512], s2[512], key[200];

	if (r->vm != a->vm)
		return 0;
	if (a->skip > 0) {
		a->skip--;
		return 0;
	}
	if (a->y >= LINES - 1)
		return 1;
	row_line(buf, sizeof(buf), a->t, v, a->shown, r);
	s1[0] = s2[0] = '\0';
	if (a->spark_kind == 1) {
		snprintf(key, sizeof(key), "%s vcpu%s run", a->vm->key, r->inst);
		spark(s1, sizeof(s1), a->t, key, 30, 100);
		snprintf(key, sizeof(key), "%s vcpu%s steal", a->vm->key, r->inst);
		spark(s2, sizeof(s2), a->t, key, 30, 100);
	} else if (a->spark_kind == 2) {
		snprintf(key, sizeof(key), "%s if %s rx", a->vm->key, r->inst);
		spark(s1, sizeof(s1), a->t, key, 30, 0);
		snprintf(key, sizeof(key), "%s if %s tx", a->vm->key, r->inst);
		spark(s2, sizeof(s2), a->t, key, 30, 0);
	}
	if (a->spark_kind)
		putf(a->y++, 0, "%s  |%s|  |%s|", buf, s1, s2);
	else
		put(a->y++, 0, buf);
	return 0;
}

static int vm_table(struct top *t, const struct kw_vm *vm, const char *view, int y, int sparks, const char *extra)
{
	const struct kw_view *v = kw_view_find(view);
	struct vm_rows_arg a = { t, vm, y + 1, t->first, sparks, { 0 } };
	char buf[2048];

	for (size_t i = 0; i < v->ncols && i < TOP_MAXCOLS; i++)
		a.shown[i] = v->cols[i].kind != KW_VC_NAME && v->cols[i].kind != KW_VC_PID;
	head_line(buf, sizeof(buf), v, a.shown, -1, 0, 0);
	attron(A_BOLD | A_UNDERLINE);
	putf(y, 0, "%s%s", buf, extra ? extra : "");
	attroff(A_BOLD | A_UNDERLINE);
	kw_view_rows(v, &t->cur.vms, &t->cur.host, &t->prev, t->dt, vm_row, &a);
	if (a.y == y + 1)
		put(a.y++, 2, "(nothing here for this VM)");
	return a.y;
}

/* A view's columns for one VM, one per line: "HEADER  value". */
static int vm_fields(struct top *t, const struct kw_vm *vm, const char *view, int y)
{
	const struct kw_view *v = kw_view_find(view);
	struct kw_vrow_ctx r = top_ctx(t, vm);
	char txt[512];

	for (size_t i = 0; i < v->ncols && y < LINES - 1; i++) {
		if (v->cols[i].kind == KW_VC_NAME || v->cols[i].kind == KW_VC_PID)
			continue;
		putf(y++, 2, "%-14s %s", v->cols[i].header, kw_vcol_format(v, &v->cols[i], &r, t->human, txt, sizeof(txt)));
	}
	return y;
}

static void draw_vm(struct top *t, int y)
{
	const struct kw_vm *vm = selected(t);
	char buf[1024], s[512], key[200];
	size_t o = 0;

	if (!vm) {
		put(y, 0, "the VM is gone (Esc returns to the list)");
		return;
	}
	kw_text_safe(s, sizeof(s), vm->name, 64, 0);
	if (vm->pve_id >= 0)
		o = (size_t)snprintf(buf, sizeof(buf), "%s (pid %d, vmid %d, %s) ", s, vm->pid, vm->pve_id,
				     vm->state[0] ? vm->state : "running");
	else
		o = (size_t)snprintf(buf, sizeof(buf), "%s (pid %d, %s) ", s, vm->pid, vm->state[0] ? vm->state : "running");
	attron(A_BOLD);
	put(y, 0, buf);
	attroff(A_BOLD);
	for (int k = 0; k < TAB__N; k++) {
		if (k == t->tab)
			attron(A_REVERSE);
		putf(y, (int)o, " %s ", tab_names[k]);
		if (k == t->tab)
			attroff(A_REVERSE);
		o += strlen(tab_names[k]) + 3;
	}
	y += 2;
	switch (t->tab) {
	case TAB_VCPU: {
		struct kw_vrow_ctx r = top_ctx(t, vm);
		const struct kw_view *ov = kw_view_find("other_threads");
		char txt[256];

		y = vm_table(t, vm, "threads", y, 1, "  RUN% (last 30)                   STEAL%");
		y++;
		o = (size_t)snprintf(buf, sizeof(buf), "other threads:");
		for (size_t i = 0; i < ov->ncols; i++)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o, "  %s %s", ov->cols[i].header,
					      kw_vcol_format(ov, &ov->cols[i], &r, t->human, txt, sizeof(txt)));
		put(y++, 0, buf);
		snprintf(key, sizeof(key), "%s cpu", vm->key);
		spark(s, sizeof(s), t, key, 60, 100);
		putf(y++, 0, "VM CPU%%  |%s|", s);
		break;
	}
	case TAB_MEM:
		y = vm_fields(t, vm, "mem", y);
		{
			struct kw_vrow_ctx r = top_ctx(t, vm);
			const struct kw_view *tv = t->list;
			int fi = kw_view_col(tv, "faults");
			char txt[64];

			putf(y++, 2, "%-14s %s", "FAULTS/s", kw_vcol_format(tv, &tv->cols[fi], &r, t->human, txt, sizeof(txt)));
		}
		snprintf(key, sizeof(key), "%s rss", vm->key);
		spark(s, sizeof(s), t, key, 60, 0);
		putf(y + 1, 2, "RSS  |%s|", s);
		break;
	case TAB_NET:
		vm_table(t, vm, "net", y, 2, "  RX (last 30)                     TX");
		break;
	case TAB_BLOCK:
		vm_table(t, vm, "disk", y, 0, NULL);
		break;
	case TAB_KVM:
		y = vm_table(t, vm, "kvm", y, 0, NULL);
		if (!t->src[KW_SRC_BPF].available)
			putf(y + 1, 0, "exit reasons: %s", t->src[KW_SRC_BPF].why[0] ? t->src[KW_SRC_BPF].why : "eBPF is off");
		else
			vm_table(t, vm, "exits", y + 1, 0, NULL);
		break;
	case TAB_MIG: {
		struct kw_vrow_ctx r = top_ctx(t, vm);
		double type = 0, total = 0, done = 0;

		kw_ss_value(r.cur, KW_M_JOB_TYPE, NULL, &type);
		if (type <= 0) {
			put(y, 2, t->src[KW_SRC_LIBVIRT].available && t->src[KW_SRC_LIBVIRT].connected
					  ? "no migration or other job is running"
									  : "job progress comes from libvirt, which is not connected");
			break;
		}
		y = vm_table(t, vm, "migration", y, 0, NULL);
		kw_ss_value(r.cur, KW_M_JOB_DATA_TOTAL, NULL, &total);
		kw_ss_value(r.cur, KW_M_JOB_DATA_PROC, NULL, &done);
		if (total > 0) {
			int w = COLS - 20 > 10 ? COLS - 20 : 10, fill = (int)(done / total * w);

			o = (size_t)snprintf(buf, sizeof(buf), "  [");
			for (int i = 0; i < w && o + 2 < sizeof(buf); i++)
				buf[o++] = i < fill ? '#' : '.';
			snprintf(buf + o, sizeof(buf) - o, "] %5.1f%%", 100 * done / total);
			put(y + 1, 0, buf);
		}
		break;
	}
	}
}

/* ------------------------------------------------------------ views */

struct host_arg {
	struct top *t;
	int y;
};

static int host_row(const struct kw_view *v, const struct kw_vrow_ctx *r, void *arg)
{
	struct host_arg *a = arg;
	struct top *t = a->t;
	int *y = &a->y;
	char buf[2048], owner[300] = "";

	if (!strcmp(v->cols[0].key, "iface")) {
		/* fw*, lo: hidden unless 'a' */
		if (!t->all_ifaces && (!strcmp(r->inst, "lo") || kw_startswith(r->inst, "fw")))
			return 0;
		for (size_t i = 0; i < t->cur.vms.n && !owner[0]; i++)
			for (int n = 0; n < t->cur.vms.vms[i].nnetifs; n++)
				if (!strcmp(t->cur.vms.vms[i].netifs[n].name, r->inst))
					kw_text_safe(owner, sizeof(owner), t->cur.vms.vms[i].name, 40, 0);
	}
	if (*y >= LINES - 1)
		return 1;
	row_line(buf, sizeof(buf), t, v, NULL, r);
	putf((*y)++, 0, "%s  %s", buf, owner[0] ? owner : (!strcmp(v->cols[0].key, "iface") ? "-" : ""));
	return 0;
}

static void draw_host_section(struct top *t, int y, const char *first_key, const char *extra)
{
	const struct kw_view *v = kw_view_find("host");
	char buf[2048];
	struct host_arg arg = { t, 0 };

	for (; v && (v->style != KW_VSTYLE_TABLE || strcmp(v->cols[0].key, first_key)); v = v->next)
		;
	if (!v)
		return;
	head_line(buf, sizeof(buf), v, NULL, -1, 0, 0);
	attron(A_BOLD | A_UNDERLINE);
	putf(y++, 0, "%s%s", buf, extra);
	attroff(A_BOLD | A_UNDERLINE);
	arg.y = y;
	kw_view_rows(v, &t->cur.vms, &t->cur.host, &t->prev, t->dt, host_row, &arg);
}

static void draw_tree(struct top *t, int y)
{
	size_t n;
	const struct kw_vm **v = top_rows(t, &n);
	const struct kw_view *tv = kw_view_find("threads");
	int line = 0;

	attron(A_BOLD | A_UNDERLINE);
	putf(y++, 0, "%-40s %8s %5s %7s %7s %7s", "VM / THREAD", "TID", "VCPU", "RUN%", "STEAL%", "SHARE%");
	attroff(A_BOLD | A_UNDERLINE);
	for (size_t i = 0; v && i < n && y < LINES - 1; i++) {
		struct kw_vrow_ctx r = top_ctx(t, v[i]);
		double cpu = 0, x[2];
		char name[200], idx[16], run[32], steal[32];

		kw_vcol_values(t->list, &t->list->cols[kw_view_col(t->list, "cpu")], &r, x);
		cpu = x[0];
		if (line++ >= t->first) {
			kw_text_safe(name, sizeof(name), v[i]->name, 40, 1);
			attron(A_BOLD);
			putf(y++, 0, "%s %8d %5s %7.1f", name, v[i]->pid, "", cpu);
			attroff(A_BOLD);
		}
		for (int k = 0; k < v[i]->nthreads && y < LINES - 1; k++) {
			const struct kw_thread *th = &v[i]->threads[k];

			if (line++ < t->first)
				continue;
			if (th->vcpu < 0) {
				putf(y++, 0, "  %s %8d %5s %7s %7s %7s", kw_text_safe(name, sizeof(name), t->utf8 ? "\xe2\x94\x94 other thread" : "` other thread", 38, 1),
				     th->tid, "-", "-", "-", "-");
				continue;
			}
			snprintf(idx, sizeof(idx), "%d", th->vcpu);
			r.inst = idx;
			r.thread = th;
			kw_vcol_format(tv, &tv->cols[kw_view_col(tv, "run")], &r, 0, run, sizeof(run));
			kw_vcol_format(tv, &tv->cols[kw_view_col(tv, "steal")], &r, 0, steal, sizeof(steal));
			kw_vcol_values(tv, &tv->cols[kw_view_col(tv, "run")], &r, x);
			putf(y++, 0, "  %s %8d %5d %7s %7s %7.1f", kw_text_safe(name, sizeof(name), t->utf8 ? "\xe2\x94\x94 vCPU thread" : "` vCPU thread", 38, 1),
			     th->tid, th->vcpu, run, steal, cpu > 0 ? 100 * x[0] / cpu : 0.0);
			r.inst = "";
			r.thread = NULL;
		}
	}
	free(v);
}

/* ------------------------------------------------------------ overlays */

static const char *const help[] = {
	"kvmwatch top - keys",
	"",
	"  q          quit                    ? h        this help",
	"  Enter ->   open the selected VM    Esc <-     back to the list",
	"  Tab        next tab of the VM      Shift-Tab  previous tab",
	"  Up Down PgUp PgDn Home End         move",
	"  < >        sort by the previous / next column",
	"  r          reverse the order",
	"  P M N S O  sort by CPU%, RSS, name, steal, other (again: reverse)",
	"  D W X T F  sort by read, write, rx, tx, faults",
	"  /          filter: name, uuid, pid or vmid:N (Esc clears)",
	"  f          choose the columns      u          human units",
	"  p space    pause                   + -        interval (0.25-60 s)",
	"  l          the log (warnings)      a          all interfaces",
	"  n s t      network, storage and thread-tree views",
	"  v          back to the VM list",
	"",
	"Any key closes this help.",
};

static void box_at(int y, int x, int h, int w)
{
	for (int i = 0; i < h; i++)
		mvhline(y + i, x, ' ', w);
	mvhline(y, x, ACS_HLINE, w);
	mvhline(y + h - 1, x, ACS_HLINE, w);
	mvvline(y, x, ACS_VLINE, h);
	mvvline(y, x + w - 1, ACS_VLINE, h);
	mvaddch(y, x, ACS_ULCORNER);
	mvaddch(y, x + w - 1, ACS_URCORNER);
	mvaddch(y + h - 1, x, ACS_LLCORNER);
	mvaddch(y + h - 1, x + w - 1, ACS_LRCORNER);
}

static void draw_overlay(struct top *t)
{
	int h, w, y0, x0;

	if (t->overlay == OV_HELP) {
		h = (int)KW_ARRAY_SIZE(help) + 2;
		w = 80 < COLS ? 80 : COLS;
		y0 = LINES > h ? (LINES - h) / 2 : 0;
		x0 = (COLS - w) / 2;
		box_at(y0, x0, h, w);
		for (size_t i = 0; i < KW_ARRAY_SIZE(help); i++)
			mvaddnstr(y0 + 1 + (int)i, x0 + 2, help[i], w - 4);
	} else if (t->overlay == OV_LOG) {
		h = LINES - 4 > 5 ? LINES - 4 : 5;
		w = COLS - 4 > 20 ? COLS - 4 : COLS;
		box_at(2, 2, h, w);
		mvaddnstr(2, 4, " log (any key closes) ", w - 6);
		pthread_mutex_lock(&t->log_lock);
		if (!t->nlog)
			mvaddnstr(3, 4, "no messages", w - 6);
		for (int i = 0; i < t->nlog && i < h - 2; i++) {
			int k = (t->logpos - (t->nlog < h - 2 ? t->nlog : h - 2) + i + TOP_LOG) % TOP_LOG;
			char safe[1024];

			kw_text_safe(safe, sizeof(safe), t->log[k], (size_t)(w - 6), 0);
			mvaddnstr(3 + i, 4, safe, w - 6);
		}
		pthread_mutex_unlock(&t->log_lock);
	} else if (t->overlay == OV_FIELDS) {
		h = (int)t->list->ncols + 4;
		w = 54;
		y0 = LINES > h ? (LINES - h) / 2 : 0;
		x0 = COLS > w ? (COLS - w) / 2 : 0;
		box_at(y0, x0, h, w);
		mvaddnstr(y0 + 1, x0 + 2, "columns: space toggles, s sorts, Esc closes", w - 4);
		for (size_t i = 0; i < t->list->ncols; i++) {
			if ((int)i == t->field_cur)
				attron(A_REVERSE);
			mvprintw(y0 + 3 + (int)i, x0 + 2, "[%c] %-12s %-20s", t->shown[i] ? 'x' : ' ', t->list->cols[i].header,
				 t->list->cols[i].key);
			if ((int)i == t->field_cur)
				attroff(A_REVERSE);
		}
	}
}

void top_draw(struct top *t)
{
	int y;

	erase();
	y = draw_header(t) + 1;
	switch (t->screen) {
	case SCR_LIST:
		draw_list(t, y);
		draw_footer(t, " q quit  ? help  Enter open  / filter  f fields  < > sort  u units  p pause  + - interval  n s t views  l log");
		break;
	case SCR_VM:
		draw_vm(t, y);
		draw_footer(t, " Tab next tab  Esc back  u units  p pause  + - interval  q quit");
		break;
	case SCR_NET:
		put(y++, 0, "network: host interfaces (a: fw* and lo too)");
		draw_host_section(t, y, "iface", "  VM");
		draw_footer(t, " v list  s storage  t tree  a all interfaces  q quit");
		break;
	case SCR_STORAGE:
		put(y++, 0, "storage: host disks");
		draw_host_section(t, y, "device", "");
		draw_footer(t, " v list  n network  t tree  q quit");
		break;
	case SCR_TREE:
		draw_tree(t, y);
		draw_footer(t, " v list  n network  s storage  Up Down scroll  q quit");
		break;
	}
	draw_overlay(t);
	refresh();
}
