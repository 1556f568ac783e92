// SPDX-License-Identifier: GPL-2.0
/* top.c - `kvmwatch top [INTERVAL]`: the interactive screen (ncurses).
 *
 * The same collector and the same views as the text reports: the VM list
 * is the "top" view, the drill-down tabs are the vcpu/mem/net/disk/kvm
 * views restricted to one VM.  This file collects on its own clock, keeps
 * sparkline histories, owns the keys and the main loop; top_draw.c paints.
 * While the screen is up, library messages go to the log overlay ('l'),
 * not to the terminal. */
#include "top.h"
#include "util/kw_util.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <langinfo.h>
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static void log_sink(int level, const char *msg, void *arg)
{
	struct top *t = arg;
	char stamp[16];
	time_t now = time(NULL);
	struct tm tm;

	if (level > kw_log_get_level())
		return;
	localtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	pthread_mutex_lock(&t->log_lock);
	snprintf(t->log[t->logpos], sizeof(t->log[0]), "%s %s %s", stamp,
		 level <= KW_LOG_ERR ? "error" : level <= KW_LOG_WARN ? "warning" : "info", msg);
	t->logpos = (t->logpos + 1) % TOP_LOG;
	if (t->nlog < TOP_LOG)
		t->nlog++;
	pthread_mutex_unlock(&t->log_lock);
}

/* ------------------------------------------------------------ rows */

struct kw_vrow_ctx top_ctx(const struct top *t, const struct kw_vm *vm)
{
	struct kw_vrow_ctx r = { .dt = t->dt, .inst = "" };
	const struct kw_vm *p;

	if (!vm) {
		r.cur = &t->cur.host;
		r.prev = t->prev.valid ? &t->prev.host : NULL;
		return r;
	}
	r.vm = vm;
	r.cur = &vm->stats;
	p = kw_snapshot_vm(&t->prev, vm->key, (size_t)(vm - t->cur.vms.vms));
	r.prev = p ? &p->stats : NULL;
	return r;
}

/* '/' filter: part of the name or uuid (any case), the pid, or the Proxmox id
 * ("vmid:N" as -p takes it, or a number that is either). */
static int wanted(const struct top *t, const struct kw_vm *vm)
{
	const char *f = t->filter;
	long n;

	if (!*f)
		return 1;
	if (kw_pve_selector(f, &n))
		return vm->pve_id == n;
	if (kw_parse_int(f, 0, 0x7fffffff, &n) == 0 && (vm->pid == n || vm->pve_id == n))
		return 1;
	return strcasestr(vm->name, f) || strcasestr(vm->uuid, f);
}

/* A row of the list with its sort key computed once. */
struct sort_row {
	const struct kw_vm *vm;
	double num;
	char text[128];
};

static int sort_reverse;

static int row_cmp(const void *pa, const void *pb)
{
	const struct sort_row *a = pa, *b = pb;
	int c = a->num < b->num ? 1 : a->num > b->num ? -1 : 0; /* numbers: highest first */

	if (!c)
		c = strcmp(a->text, b->text);
	if (!c)
		c = strcmp(a->vm->name, b->vm->name);
	if (!c)
		c = (a->vm->pid > b->vm->pid) - (a->vm->pid < b->vm->pid);
	return sort_reverse ? -c : c;
}

/* The list's rows, computed once per cycle, sort order and filter (the
 * screen asks several times a cycle). */
const struct kw_vm **top_rows(struct top *t, size_t *n)
{
	const struct kw_vcol *col = t->sort_col >= 0 ? &t->list->cols[t->sort_col] : NULL;
	struct sort_row *r;
	const struct kw_vm **v;
	size_t i, k = 0;

	*n = 0;
	r = calloc(t->cur.vms.n ? t->cur.vms.n : 1, sizeof(*r));
	v = calloc(t->cur.vms.n ? t->cur.vms.n : 1, sizeof(*v));
	if (!r || !v) {
		free(r);
		free(v);
		return NULL;
	}
	for (i = 0; i < t->cur.vms.n; i++) {
		const struct kw_vm *vm = &t->cur.vms.vms[i];
		struct kw_vrow_ctx c;
		double x[2];

		if (!wanted(t, vm))
			continue;
		r[k].vm = vm;
		c = top_ctx(t, vm);
		if (col && col->kind > KW_VC__TEXT)
			r[k].num = kw_vcol_values(t->list, col, &c, x) < 0 ? -1 : x[0];
		else if (col && (col->kind == KW_VC_PID || col->kind == KW_VC_PVEID || col->kind == KW_VC_VCPUS))
			r[k].num = atof(kw_vcol_text(col, &c, r[k].text, sizeof(r[k].text))), r[k].text[0] = 0;
		else if (col && col->kind != KW_VC_NAME)
			kw_vcol_text(col, &c, r[k].text, sizeof(r[k].text));
		k++;
	}
	sort_reverse = t->reverse;
	qsort(r, k, sizeof(*r), row_cmp);
	for (i = 0; i < k; i++)
		v[i] = r[i].vm;
	free(r);
	*n = k;
	return v;
}

/* ------------------------------------------------------------ sparklines */

/* The histories are sorted by key: a lookup is a binary search (the screen
 * feeds some six per VM each cycle).  Where key is, or would go. */
static size_t spark_pos(const struct top *t, const char *key, int *found)
{
	size_t lo = 0, hi = t->nsp;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(t->sp[mid].key, key);

		if (!c) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

const struct top_spark *top_spark_get(const struct top *t, const char *key)
{
	int found;
	size_t i = spark_pos(t, key, &found);

	return found ? &t->sp[i] : NULL;
}

static void spark_feed(struct top *t, const char *key, double v)
{
	int found;
	size_t i = spark_pos(t, key, &found);
	struct top_spark *s;

	if (!found) {
		if (kw_grow((void **)&t->sp, &t->spcap, t->nsp, sizeof(*t->sp)))
			return;
		memmove(&t->sp[i + 1], &t->sp[i], (t->nsp - i) * sizeof(*t->sp));
		t->nsp++;
		memset(&t->sp[i], 0, sizeof(t->sp[i]));
		kw_strlcpy(t->sp[i].key, key, sizeof(t->sp[i].key));
	}
	s = &t->sp[i];
	if (s->n == TOP_SPARK)
		memmove(s->v, s->v + 1, sizeof(s->v[0]) * (TOP_SPARK - 1));
	else
		s->n++;
	s->v[s->n - 1] = (float)v;
	s->cycle = t->cycle;
}

/* A view's column resolved once per cycle, not once per VM. */
struct hist_col {
	const struct kw_view *v;
	const struct kw_vcol *col;
};

static struct hist_col hist_col(const char *view, const char *key)
{
	struct hist_col h = { kw_view_find(view), NULL };
	int i = h.v ? kw_view_col(h.v, key) : -1;

	h.col = i >= 0 ? &h.v->cols[i] : NULL;
	return h;
}

/* One value of a column for a row, for a history. */
static double col_value(struct hist_col h, const struct kw_vrow_ctx *r)
{
	double x[2] = { 0, 0 };

	if (h.col)
		kw_vcol_values(h.v, h.col, r, x);
	return x[0];
}

static void feed_histories(struct top *t)
{
	struct hist_col cpu = hist_col("top", "cpu"), rss = hist_col("top", "rss"), run = hist_col("threads", "run"),
			steal = hist_col("threads", "steal"), rx = hist_col("net", "rx"), tx = hist_col("net", "tx");
	char key[160], idx[16];
	size_t i, k;
	int n;

	for (i = 0; i < t->cur.vms.n; i++) {
		const struct kw_vm *vm = &t->cur.vms.vms[i];
		struct kw_vrow_ctx r = top_ctx(t, vm);

		snprintf(key, sizeof(key), "%s cpu", vm->key);
		spark_feed(t, key, col_value(cpu, &r));
		snprintf(key, sizeof(key), "%s rss", vm->key);
		spark_feed(t, key, col_value(rss, &r));
		for (n = 0; n < vm->nthreads; n++) {
			if (vm->threads[n].vcpu < 0)
				continue;
			snprintf(idx, sizeof(idx), "%d", vm->threads[n].vcpu);
			r.inst = idx;
			r.thread = &vm->threads[n];
			snprintf(key, sizeof(key), "%s vcpu%s run", vm->key, idx);
			spark_feed(t, key, col_value(run, &r));
			snprintf(key, sizeof(key), "%s vcpu%s steal", vm->key, idx);
			spark_feed(t, key, col_value(steal, &r));
		}
		r.thread = NULL;
		for (n = 0; n < vm->nnetifs; n++) {
			r.inst = vm->netifs[n].name;
			snprintf(key, sizeof(key), "%s if %s rx", vm->key, r.inst);
			spark_feed(t, key, col_value(rx, &r));
			snprintf(key, sizeof(key), "%s if %s tx", vm->key, r.inst);
			spark_feed(t, key, col_value(tx, &r));
		}
	}
	/* forget the histories of VMs gone for a while (the order stays) */
	for (i = k = 0; i < t->nsp; i++)
		if (t->cycle - t->sp[i].cycle <= 10)
			t->sp[k++] = t->sp[i];
	t->nsp = k;
}

/* ------------------------------------------------------------ collection */

/* Take the collector's newest cycle for the screen (not while paused).
 * Returns 1 when there was one. */
static int take(struct top *t)
{
	struct kw_snapshot old;
	int took = 0;

	pthread_mutex_lock(&t->bg.lock);
	if (!t->paused && t->bg.seq != t->seen_seq && t->bg.pub.valid) {
		old = t->prev;
		t->prev = t->cur;
		t->cur = t->bg.pub;
		t->bg.pub = old; /* the collector's next snapshot replaces it */
		memcpy(t->src, t->bg.src, sizeof(t->src));
		t->host_vms = t->bg.host_vms;
		t->seen_seq = t->bg.seq;
		took = 1;
	}
	pthread_mutex_unlock(&t->bg.lock);
	if (!took)
		return 0;
	t->updated_ns = kw_now_mono_ns();
	t->cycle++;
	t->dt = t->prev.valid ? (double)(t->cur.ts_mono_ns - t->prev.ts_mono_ns) / 1e9 : 0;
	feed_histories(t);
	t->refreshes++;
	return 1;
}

/* ------------------------------------------------------------ keys */

static const double steps[] = { 0.25, 0.5, 1, 2, 3, 5, 10, 30, 60 };

static void set_interval(struct top *t, int dir)
{
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(steps) && steps[i] < t->interval - 1e-9; i++)
		;
	if (dir > 0)
		i = i < KW_ARRAY_SIZE(steps) && steps[i] <= t->interval + 1e-9 ? i + 1 : i;
	else
		i = i > 0 ? i - 1 : 0;
	if (i >= KW_ARRAY_SIZE(steps))
		i = KW_ARRAY_SIZE(steps) - 1;
	t->interval = steps[i];
	cli_bg_set_interval(&t->bg, t->interval);
}

static void sort_by(struct top *t, const char *key)
{
	int i = kw_view_col(t->list, key);

	if (i < 0)
		return;
	t->reverse = t->sort_col == i ? !t->reverse : 0;
	t->sort_col = i;
	t->shown[i] = 1;
}

static void sort_step(struct top *t, int dir)
{
	int n = (int)t->list->ncols, i = t->sort_col;

	for (int k = 0; k < n; k++) {
		i = (i + dir + n) % n;
		if (t->shown[i])
			break;
	}
	t->sort_col = i;
	t->reverse = 0;
}

/* The list's selection by VM key, so it follows the VM when rows move. */
static void select_row(struct top *t, int row)
{
	size_t n;
	const struct kw_vm **v = top_rows(t, &n);

	if (row >= (int)n)
		row = (int)n - 1;
	if (row < 0)
		row = 0;
	t->sel = row;
	if (v && n)
		kw_strlcpy(t->sel_key, v[row]->key, sizeof(t->sel_key));
	free(v);
}

static int page(void)
{
	return LINES > 10 ? LINES - 8 : 1;
}

static int on_key(struct top *t, int ch)
{
	if (t->editing) {
		size_t l = strlen(t->edit);

		if (ch == 27) {
			t->editing = 0;
		} else if (ch == '\n' || ch == KEY_ENTER) {
			kw_strlcpy(t->filter, t->edit, sizeof(t->filter));
			t->editing = 0;
			select_row(t, 0);
		} else if ((ch == KEY_BACKSPACE || ch == 127 || ch == 8) && l) {
			t->edit[l - 1] = '\0';
		} else if (ch >= 32 && ch < 127 && l + 1 < sizeof(t->edit)) {
			t->edit[l] = (char)ch;
			t->edit[l + 1] = '\0';
		}
		return 0;
	}
	if (t->overlay == OV_FIELDS) {
		switch (ch) {
		case KEY_UP: case 'k': t->field_cur = t->field_cur > 0 ? t->field_cur - 1 : 0; break;
		case KEY_DOWN: case 'j':
			if (t->field_cur + 1 < (int)t->list->ncols)
				t->field_cur++;
			break;
		case ' ': case '\n': case KEY_ENTER:
			if (t->list->cols[t->field_cur].kind != KW_VC_NAME) /* the name stays */
				t->shown[t->field_cur] = !t->shown[t->field_cur];
			break;
		case 's': t->sort_col = t->field_cur; t->shown[t->field_cur] = 1; break;
		case 27: case 'f': case 'q': t->overlay = OV_NONE; break;
		}
		return 0;
	}
	if (t->overlay != OV_NONE && ch != 'q') {
		if (ch != KEY_RESIZE) /* any key closes the help and the log */
			t->overlay = OV_NONE;
		return 0;
	}
	switch (ch) {
	case 'q': case 'Q': return 1;
	case '?': case 'h': case KEY_F(1): t->overlay = OV_HELP; break;
	case 'l': t->overlay = OV_LOG; break;
	case 'f': t->overlay = OV_FIELDS; t->field_cur = 0; break;
	case 'u': t->human = !t->human; break;
	case 'p': case ' ': t->paused = !t->paused; break;
	case '+': case '=': set_interval(t, 1); break;
	case '-': case '_': set_interval(t, -1); break;
	case '/': t->editing = 1; kw_strlcpy(t->edit, t->filter, sizeof(t->edit)); break;
	case '<': case ',': sort_step(t, -1); break;
	case '>': case '.': sort_step(t, 1); break;
	case 'r': case 'I': t->reverse = !t->reverse; break;
	case 'P': sort_by(t, "cpu"); break;
	case 'M': sort_by(t, "rss"); break;
	case 'N': sort_by(t, "name"); break;
	case 'S': sort_by(t, "steal"); break;
	case 'O': sort_by(t, "other"); break;
	case 'D': sort_by(t, "read"); break;
	case 'W': sort_by(t, "write"); break;
	case 'X': sort_by(t, "rx"); break;
	case 'T': sort_by(t, "tx"); break;
	case 'F': sort_by(t, "faults"); break;
	case 'n': t->screen = SCR_NET; t->first = 0; break;
	case 's': t->screen = SCR_STORAGE; t->first = 0; break;
	case 't': t->screen = SCR_TREE; t->first = 0; break;
	case 'v': case '1': t->screen = SCR_LIST; break;
	case 'a': t->all_ifaces = !t->all_ifaces; break;
	case 27:
		if (t->screen != SCR_LIST)
			t->screen = SCR_LIST;
		else if (t->filter[0])
			t->filter[0] = '\0';
		break;
	case '\n': case KEY_ENTER: case KEY_RIGHT:
		if (t->screen == SCR_LIST && t->sel_key[0]) {
			t->screen = SCR_VM;
			t->tab = TAB_VCPU;
		}
		break;
	case KEY_LEFT:
		if (t->screen == SCR_VM)
			t->screen = SCR_LIST;
		break;
	case '\t': if (t->screen == SCR_VM) t->tab = (t->tab + 1) % TAB__N; break;
	case KEY_BTAB: if (t->screen == SCR_VM) t->tab = (t->tab + TAB__N - 1) % TAB__N; break;
	case KEY_UP: case 'k': if (t->screen == SCR_LIST) select_row(t, t->sel - 1); else if (t->first) t->first--; break;
	case KEY_DOWN: case 'j': if (t->screen == SCR_LIST) select_row(t, t->sel + 1); else t->first++; break;
	case KEY_PPAGE: if (t->screen == SCR_LIST) select_row(t, t->sel - page()); else t->first = t->first > page() ? t->first - page() : 0; break;
	case KEY_NPAGE: if (t->screen == SCR_LIST) select_row(t, t->sel + page()); else t->first += page(); break;
	case KEY_HOME: case 'g': if (t->screen == SCR_LIST) select_row(t, 0); else t->first = 0; break;
	case KEY_END: case 'G': if (t->screen == SCR_LIST) select_row(t, 1 << 30); break;
	case KEY_RESIZE: clear(); break;
	}
	return 0;
}

/* After a cycle rows may have moved: find the selected VM again. */
static void keep_selection(struct top *t)
{
	size_t n, i;
	const struct kw_vm **v = top_rows(t, &n);

	if (!v)
		return;
	for (i = 0; i < n; i++)
		if (!strcmp(v[i]->key, t->sel_key))
			break;
	if (i < n)
		t->sel = (int)i;
	else if (n)
		kw_strlcpy(t->sel_key, v[t->sel < (int)n ? t->sel : (int)n - 1]->key, sizeof(t->sel_key));
	else
		t->sel_key[0] = '\0';
	if (t->sel >= (int)n)
		t->sel = n ? (int)n - 1 : 0;
	free(v);
}

/* ------------------------------------------------------------ main loop */

static void on_hangup(int sig)
{
	kw_exiting = 1;
}

int cli_run_top(struct cli_opts *o)
{
	static struct top t;
	struct kw_config cfg = o->cfg;
	struct sigaction sa;
	char err[512];
	SCREEN *scr;
	int quit = 0, dirty = 1;

	memset(&t, 0, sizeof(t));
	pthread_mutex_init(&t.log_lock, NULL);
	t.interval = o->interval_given ? o->interval : 1;
	if (t.interval < 0.25)
		t.interval = 0.25;
	t.list = kw_view_find("top");
	for (size_t i = 0; i < t.list->ncols && i < TOP_MAXCOLS; i++)
		t.shown[i] = !(t.list->cols[i].flags & KW_VC_HIDE);
	t.sort_col = kw_view_col(t.list, "cpu");
	if (!isatty(STDOUT_FILENO) || !isatty(STDIN_FILENO)) {
		fprintf(stderr, "kvmwatch: top needs a terminal (for reports to a file or pipe: kvmwatch [INTERVAL])\n");
		return 2;
	}
	/* eBPF exit reasons for the KVM tab, where the privilege allows it */
	if (!o->bpf_given)
		cfg.bpf_features = KW_BPF_EXITS;
	/* the screen stays up: a libvirtd that comes later is taken */
	cfg.libvirt_retry = 1;
	/* messages go to the overlay, not across the screen */
	kw_log_set_sink(log_sink, &t);
	if (cli_bg_init(&t.bg, &cfg, t.interval, err, sizeof(err)) < 0) {
		kw_log_set_sink(NULL, NULL);
		fprintf(stderr, "kvmwatch: %s\n", err);
		return 1;
	}
	take(&t);
	/* the terminal is given back on SIGHUP too */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hangup;
	sigaction(SIGHUP, &sa, NULL);
	setlocale(LC_ALL, "");
	t.utf8 = !strcmp(nl_langinfo(CODESET), "UTF-8");
	scr = newterm(NULL, stdout, stdin);
	if (!scr) {
		kw_log_set_sink(NULL, NULL);
		cli_bg_fini(&t.bg);
		fprintf(stderr, "kvmwatch: cannot use this terminal (TERM=%s)\n", getenv("TERM") ? getenv("TERM") : "");
		return 1;
	}
	set_escdelay(25);
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	if (has_colors()) {
		start_color();
		use_default_colors();
		init_pair(1, COLOR_CYAN, -1);
	}
	if (cli_bg_start(&t.bg)) {
		endwin();
		delscreen(scr);
		kw_log_set_sink(NULL, NULL);
		cli_bg_fini(&t.bg);
		fprintf(stderr, "kvmwatch: cannot start the collector thread\n");
		return 1;
	}
	keep_selection(&t);
	nodelay(stdscr, TRUE);
	/* Sleep until a key, a cycle published, or (not paused) the numbers
	 * grow stale; no polling in between. */
	while (!quit && !kw_exiting && !t.bg.failed) {
		struct pollfd pf[2] = { { STDIN_FILENO, POLLIN, 0 }, { t.bg.wake_fd[0], POLLIN, 0 } };
		int ch, r;

		if (take(&t)) {
			keep_selection(&t);
			dirty = 1;
			if (o->count > 0 && (long)t.refreshes > o->count)
				break;
		}
		if (dirty) {
			top_draw(&t);
			dirty = 0;
		}
		r = poll(pf, 2, t.paused ? -1 : (int)((t.interval + 1) * 1000));
		if (r == 0 && !t.paused)
			dirty = 1; /* "stale" counts on */
		if (r > 0 && (pf[1].revents & POLLIN))
			cli_bg_drain(&t.bg);
		/* keys, and KEY_RESIZE after SIGWINCH (poll: EINTR) */
		while ((ch = getch()) != ERR) {
			quit |= on_key(&t, ch);
			dirty = 1;
		}
	}
	endwin();
	delscreen(scr);
	cli_bg_fini(&t.bg);
	kw_log_set_sink(NULL, NULL);
	kw_snapshot_free(&t.cur);
	kw_snapshot_free(&t.prev);
	free(t.sp);
	if (t.bg.failed) {
		fprintf(stderr, "kvmwatch: out of memory\n");
		return 1;
	}
	return 0;
}
