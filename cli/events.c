// SPDX-License-Identifier: GPL-2.0
/* events.c - kvmwatch's eBPF event modes (-e -f -m -d -n -w -i -r, combinable):
 * without -s each event is printed as it happens (ring buffer, with lost
 * events counted); with -s the kernel aggregates per VM and reason and
 * summaries are printed every INTERVAL (if given) and at the end, with
 * perf-kvm-stat-like columns.  What each feature prints is its ops record
 * (ev_feat.c); events are attributed to VMs by ev_vms.c. */
#include "events.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ streaming */

static void print_prefix(struct ev_ctx *x, struct ew *w, const struct kw_vm *vm, uint32_t tgid, uint32_t tid,
			 uint64_t ts, const char *type)
{
	int vcpu = ev_vcpu_of(x, vm, (pid_t)tid);
	double t = ts >= x->t0 ? (double)(ts - x->t0) / 1e9 : 0;
	char name[KW_NAME_MAX + 16];

	ev_vm_label(name, sizeof(name), vm, (pid_t)tgid);
	if (w->json) {
		fprintf(w->f, "{\"time\":%.6f,\"type\":\"%s\",\"lost_total\":%llu,\"vm\":", t, type,
			(unsigned long long)x->lost_total);
		kw_json_str(w->f, name);
		fprintf(w->f, ",\"pid\":%u,\"tid\":%u,\"vcpu\":", tgid, tid);
		if (vcpu >= 0)
			fprintf(w->f, "%d", vcpu);
		else
			fputs("null", w->f);
		w->first = 0;
	} else {
		char v[16], safe[4 * 20 + 1];

		if (vcpu >= 0)
			snprintf(v, sizeof(v), "%d", vcpu);
		else
			kw_strlcpy(v, "-", sizeof(v));
		fprintf(w->f, "%12.6f %s %7u %4s %-8s ", t, kw_text_safe(safe, sizeof(safe), name, 20, 1), tid, v, type);
	}
}

static int on_event(const struct kw_event *e, void *arg)
{
	struct ev_ctx *x = arg;
	struct ew w = { stdout, x->o->output == KW_OUT_JSON, 0 };
	const struct kw_vm *vm = ev_vm_of(x, (pid_t)e->tgid);
	const struct ev_feature *f = ev_feature_of(e->type);

	if (!vm && x->filtered)
		return 0;
	x->events++;
	print_prefix(x, &w, vm, e->tgid, e->tid, e->ts, f ? f->type : "?");
	if (f)
		f->event(&w, e);
	else
		ew_eol(&w);
	return ferror(stdout) ? -EPIPE : 0;
}

/* Exits and faults that began but never completed (a vCPU's last exit to
 * user space, say): reported at the end so streamed counts are complete. */
static int on_pending(const struct kw_pending *p, uint32_t tid, int kind, void *arg)
{
	struct ev_ctx *x = arg;
	struct ew w = { stdout, x->o->output == KW_OUT_JSON, 0 };
	const struct kw_vm *vm = ev_vm_of(x, (pid_t)p->tgid);

	if (p->ts < x->t0 || (!vm && x->filtered))
		return 0;
	x->events++;
	print_prefix(x, &w, vm, p->tgid, tid, p->ts, kind == KW_PENDING_FAULT ? "fault" : "exit");
	ev_pending(&w, p, kind);
	return ferror(stdout) ? -EPIPE : 0;
}

/* ------------------------------------------------------------ summaries */

/* One feature's section of one VM's summary: its ops record's header,
 * rows and end. */
static int vm_section(struct ev_ctx *x, struct ew *w, const struct snap *cur, const struct snap *prev, int bit,
		      pid_t tgid, const struct kw_vm *vm, double dt)
{
	const struct ev_feature *f = &ev_features[bit];
	struct vm_rows r = { 0 };
	struct ev_section s = { .x = x, .vm = vm, .tgid = tgid, .dt = dt, .per = x->o->per_vcpu, .r = &r };
	size_t i;

	if (rows_for(x, vm, cur, prev, bit, tgid, s.per, &r))
		return -ENOMEM;
	for (i = 0; i < r.n; i++) {
		s.tot[r.r[i].k.kind % 3] += r.r[i].v.count;
		s.tns[r.r[i].k.kind % 3] += r.r[i].v.sum_ns;
	}
	ew_open(w, kw_feature_name(bit), f->bracket);
	if (f->head)
		f->head(w, &s);
	for (i = 0; f->row && i < r.n; i++)
		f->row(w, &s, &r.r[i], i);
	if (!r.n && f->none && !w->json)
		fprintf(w->f, "  no %s\n", f->none);
	if (f->foot)
		f->foot(w, &s);
	ew_close(w, f->bracket);
	if (f->after)
		f->after(w, &s);
	free(r.r);
	return 0;
}

static int tgid_seen(const pid_t *v, size_t n, pid_t t)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (v[i] == t)
			return 1;
	return 0;
}

/* One summary: every VM with data, every active feature. */
static int summary(struct ev_ctx *x, const struct snap *cur, const struct snap *prev, double dt, int final)
{
	int json = x->o->output == KW_OUT_JSON, bit, first_vm = 1, r = 0;
	struct ew w = { stdout, json, 1 };
	pid_t *tg = NULL;
	size_t ntg = 0, cap = 0, i, j;
	FILE *f = stdout;

	for (bit = 0; bit < KW_BPF__N; bit++)
		for (i = 0; i < cur->a[bit].n; i++) {
			pid_t t = (pid_t)cur->a[bit].r[i].k.tgid;

			if (tgid_seen(tg, ntg, t))
				continue;
			if (kw_grow((void **)&tg, &cap, ntg, sizeof(*tg))) {
				free(tg);
				return -ENOMEM;
			}
			tg[ntg++] = t;
		}
	/* sort by pid for a stable order */
	for (i = 1; i < ntg; i++)
		for (j = i; j > 0 && tg[j - 1] > tg[j]; j--) {
			pid_t t = tg[j];
			tg[j] = tg[j - 1];
			tg[j - 1] = t;
		}
	x->lost_total = kw_bpf_lost(x->b);
	for (bit = 0; bit < KW_BPF__N; bit++) {
		uint64_t d = kw_bpf_dropped(x->b, bit);
		char key[48];

		if (!d)
			continue;
		snprintf(key, sizeof(key), "bpf-full:%d", bit);
		kw_log_once(KW_LOG_WARN, key, "eBPF %s: its statistics map is full (%u entries): %llu events were not "
			    "counted", kw_feature_name(bit), kw_bpf_stats_capacity(x->b, bit), (unsigned long long)d);
	}
	if (json) {
		fputc('{', f);
		cli_json_origin(f);
		fprintf(f, "\"time\":%.3f,\"interval\":%.3f,\"final\":%s,\"lost\":%llu,\"lost_total\":%llu,"
			"\"vms\":[", (double)kw_now_real_ns() / 1e9, dt, final ? "true" : "false",
			(unsigned long long)(final ? x->lost_total : x->lost_total - x->lost_reported),
			(unsigned long long)x->lost_total);
	} else {
		fprintf(f, "\n%s (%.3f s)%s\n", final ? "=== totals" : "--- interval", dt,
			final ? "  [min/max since start]" : "  [min/max of the interval]");
	}
	x->lost_reported = x->lost_total;
	for (i = 0; i < ntg; i++) {
		const struct kw_vm *vm = ev_vm_of(x, tg[i]);
		char name[KW_NAME_MAX + 16];

		if (!vm && x->filtered)
			continue;
		ev_vm_label(name, sizeof(name), vm, tg[i]);
		if (json) {
			fputs(first_vm ? "{\"name\":" : ",{\"name\":", f);
			kw_json_str(f, name);
			fprintf(f, ",\"pid\":%d", tg[i]);
			w.first = 0;
		} else {
			char safe[4 * KW_NAME_MAX + 1];

			fprintf(f, "\nVM %s (pid %d)\n", kw_text_safe(safe, sizeof(safe), name, KW_NAME_MAX, 0), tg[i]);
		}
		first_vm = 0;
		for (bit = 0; bit < KW_BPF__N && !r; bit++) {
			if (!(kw_bpf_active(x->b) & (1u << bit)))
				continue;
			if (!json)
				fprintf(f, " %s:\n", kw_feature_name(bit));
			r = vm_section(x, &w, cur, prev, bit, tg[i], vm, dt);
		}
		if (json)
			fputc('}', f);
	}
	if (json)
		fputs("]}\n", f);
	else if (first_vm)
		fprintf(f, "no events\n");
	free(tg);
	fflush(f);
	return r ? r : ferror(f) ? -EPIPE : 0;
}

/* An interval's summary: the kernel's interval aggregates (or, for the
 * features without, cur - prev, cur taken now); prev becomes cur. */
static int interval_summary(struct ev_ctx *x, struct snap *prev, struct snap *cur, int have_prev, double dt)
{
	struct snap iv = { { { 0 } } }, t;
	int r;

	snap_take(x, cur);
	r = snap_interval(x, cur, have_prev ? prev : NULL, &iv);
	if (r)
		fprintf(stderr, "kvmwatch: failed to read the interval aggregates: %s\n", strerror(-r));
	else
		r = summary(x, &iv, NULL, dt, 0);
	snap_free(&iv);
	t = *prev;
	*prev = *cur;
	*cur = t;
	return r;
}

/* ------------------------------------------------------------- replay */

/* --replay: every record through the exits object's replay program, the
 * stream read as it fills (the summaries read the stats map at the end);
 * with -s, an "interval" line of the file ends an interval there. */
static int replay(struct ev_ctx *x, const struct kw_replay_exit *rec, size_t n, struct snap *prev,
		  struct snap *cur)
{
	uint64_t last = kw_now_mono_ns(), now;
	size_t i;
	int r;

	for (i = 0; i < n && !kw_exiting; i++) {
		if (rec[i].isa == EV_REPLAY_MARK) {
			if (!x->o->stats)
				continue;
			now = kw_now_mono_ns();
			r = interval_summary(x, prev, cur, 1, (double)(now - last) / 1e9);
			last = now;
			if (r)
				return r;
			continue;
		}
		r = kw_bpf_replay_exit(x->b, &rec[i]);
		if (r < 0) {
			fprintf(stderr, "kvmwatch: failed to replay record %zu: %s\n", i + 1, strerror(-r));
			return r;
		}
		if (!x->o->stats && (i % 1024 == 1023 || i + 1 == n)) {
			r = kw_bpf_poll(x->b, 0, on_event, x);
			if (r < 0)
				return r;
		}
	}
	return 0;
}

/* ------------------------------------------------------------- the mode */

static void print_attached(struct ev_ctx *x)
{
	char line[2048] = "";
	size_t o = 0;
	int bit;

	for (bit = 0; bit < KW_BPF__N; bit++) {
		if (!(x->o->events & (1u << bit)))
			continue;
		if (kw_bpf_why(x->b, bit)) {
			kw_warn("eBPF %s unavailable: %s", kw_feature_name(bit), kw_bpf_why(x->b, bit));
			continue;
		}
		if (kw_bpf_notes(x->b, bit)[0])
			kw_info("eBPF %s: fallbacks: %s", kw_feature_name(bit), kw_bpf_notes(x->b, bit));
		if (o < sizeof(line))
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s [%s]", o ? ", " : "",
					      kw_feature_name(bit), kw_bpf_hooks(x->b, bit));
	}
	kw_info("tracing %s attached", line);
}

int cli_run_events(struct cli_opts *o)
{
	struct kw_config cfg = o->cfg;
	struct kw_bpf_opts bo = { 0 };
	struct ev_ctx x;
	struct snap prev = { { { 0 } } }, cur = { { { 0 } } };
	struct kw_replay_exit *rec = NULL;
	size_t nrec = 0, nmarks = 0;
	char err[2048];
	uint64_t start, next, end = 0, step;
	long done = 0;
	int r = 0, have_prev = 0;

	memset(&x, 0, sizeof(x));
	x.o = o;
	if (o->replay && ev_replay_read(o->replay, &rec, &nrec, err, sizeof(err))) {
		fprintf(stderr, "kvmwatch: error: %s\n", err);
		return 1;
	}
	if (o->stats && !o->events)
		o->events = KW_BPF_EXITS; /* -s alone: exit statistics, like perf kvm stat */
	/* the VM table for names and vCPUs: /proc only */
	cfg.sources = 1u << KW_SRC_PROC;
	cfg.bpf_features = 0;
	cfg.no_host = 1;
	if (kw_collector_init(&x.c, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "kvmwatch: %s\n", err);
		free(rec);
		return 1;
	}
	x.filtered = o->cfg.npids || o->cfg.nnames;
	if (kw_collector_collect(&x.c) < 0 && !x.filtered)
		kw_debug("no VMs found yet");
	ev_remember_vcpus(&x);
	x.last_refresh = kw_now_mono_ns();
	if (o->replay && ev_replay_attribute(&x, rec, nrec) < 0) {
		fprintf(stderr, "kvmwatch: out of memory\n");
		r = -ENOMEM;
		goto out;
	}

	bo.features = o->events;
	bo.stream = !o->stats;
	bo.aggregate = o->stats;
	bo.per_thread = o->per_vcpu;
	bo.replay = o->replay != NULL;
	for (size_t i = 0; i < nrec; i++)
		if (rec[i].isa == EV_REPLAY_MARK)
			nmarks++;
	bo.interval = o->stats && (o->interval_given || nmarks);
	if (o->cfg.npids == 1 && !o->cfg.nnames)
		bo.targ_tgid = o->cfg.pids[0];
	else if (o->cfg.nnames && !o->cfg.npids && x.c.vms.n == 1)
		bo.targ_tgid = x.c.vms.vms[0].pid; /* -p NAME of a running VM */
	/* t0 before the programs attach: the "attached" line is the cue for
	 * callers to start their guests, so nothing recorded may predate it */
	x.t0 = kw_now_mono_ns();
	x.b = kw_bpf_open(&bo, err, sizeof(err));
	if (!x.b) {
		fprintf(stderr, "kvmwatch: error: %s\n", err);
		r = -EINVAL;
		goto out;
	}
	ev_remember_vcpus(&x); /* -r: the VMs and vCPU threads to measure */
	start = next = kw_now_mono_ns();
	if (o->stats && snap_take(&x, &prev) == 0)
		have_prev = 1;
	if (o->replay) {
		kw_info("replaying %zu exits from %s through the exits BPF program", nrec - nmarks,
			strcmp(o->replay, "-") ? o->replay : "stdin");
		r = replay(&x, rec, nrec, &prev, &cur);
	} else {
		print_attached(&x);
	}
	if (o->duration > 0)
		end = start + (uint64_t)(o->duration * 1e9);
	step = (uint64_t)(o->interval * 1e9);
	if (o->stats) {
		while (!kw_exiting && !o->replay) {
			uint64_t now, t_prev = next;

			next = o->interval_given ? next + step : (end ? end : ~0ull);
			if (end && next > end)
				next = end;
			if (ev_sleep_until(&x, next) || next == ~0ull)
				break;
			now = kw_now_mono_ns();
			if (o->interval_given && (!end || now < end)) {
				r = interval_summary(&x, &prev, &cur, have_prev, (double)(now - t_prev) / 1e9);
				have_prev = 1;
				if (r)
					break;
				if (o->count > 0 && ++done >= o->count)
					break;
			}
			if (end && now >= end)
				break;
		}
		if (!r) {
			snap_take(&x, &cur);
			r = summary(&x, &cur, NULL, (double)(kw_now_mono_ns() - start) / 1e9, 1);
		}
	} else {
		while (!kw_exiting && !o->replay) {
			int timeout = 100;

			if (end) {
				uint64_t now = kw_now_mono_ns();

				if (now >= end)
					break;
				if (end - now < 100000000ull)
					timeout = (int)((end - now) / 1000000ull) + 1;
			}
			r = kw_bpf_poll(x.b, timeout, on_event, &x);
			x.lost_total = kw_bpf_lost(x.b);
			if (r < 0) {
				if (r != -EPIPE)
					fprintf(stderr, "kvmwatch: failed to read events: %s\n", strerror(-r));
				break;
			}
			r = 0;
			fflush(stdout);
			if (ferror(stdout)) {
				r = -EPIPE;
				break;
			}
			if (ev_all_gone(&x))
				break;
		}
		if (!r) {
			/* what is left in the ring, then exits/faults never completed */
			while ((r = kw_bpf_poll(x.b, 0, on_event, &x)) > 0)
				;
			r = r < 0 ? r : 0;
			if (!r && (o->events & KW_BPF_EXITS))
				kw_bpf_foreach_pending(x.b, KW_BPF_BIT_EXITS, on_pending, &x);
			if (!r && (o->events & KW_BPF_FAULTS))
				kw_bpf_foreach_pending(x.b, KW_BPF_BIT_FAULTS, on_pending, &x);
			fflush(stdout);
			if (ferror(stdout))
				r = -EPIPE;
		}
		x.lost_total = kw_bpf_lost(x.b);
		if (!r && o->output == KW_OUT_JSON) {
			/* the stream's last record: its totals */
			putchar('{');
			cli_json_origin(stdout);
			printf("\"type\":\"end\",\"events\":%llu,\"lost_total\":%llu}\n", (unsigned long long)x.events,
			       (unsigned long long)x.lost_total);
			fflush(stdout);
		}
		kw_info("%llu events, %llu lost", (unsigned long long)x.events, (unsigned long long)x.lost_total);
	}
	snap_free(&prev);
	snap_free(&cur);
	kw_bpf_close(x.b);
out:
	kw_collector_fini(&x.c);
	kw_vmt_free(&x.gone);
	kw_vmt_free(&x.replay);
	free(x.tids);
	free(rec);
	if (r == -EPIPE && kw_output_abandoned)
		return 0; /* stopped while the reader was not reading (see main.c) */
	return r < 0 ? 1 : 0;
}
