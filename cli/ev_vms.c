// SPDX-License-Identifier: GPL-2.0
/* ev_vms.c - attributing events to VMs: the VM table (procfs only) gives
 * tgid -> VM and tid -> vCPU; VMs that start during the run are found by a
 * rescan, VMs that exit keep their identity for their last events. */
#include "events.h"
#include "util/kw_util.h"

#include <errno.h>
#include <string.h>

void ev_remember_vcpus(struct ev_ctx *x)
{
	size_t i, k;
	int t;

	for (i = 0; i < x->c.vms.n; i++) {
		const struct kw_vm *vm = &x->c.vms.vms[i];

		/* -r measures the threads of the VMs it knows */
		if (x->b)
			kw_bpf_watch_vm(x->b, vm);
		for (t = 0; t < vm->nthreads; t++) {
			if (vm->threads[t].vcpu < 0)
				continue;
			for (k = 0; k < x->ntids && x->tids[k].tid != vm->threads[t].tid; k++)
				;
			if (k < x->ntids) {
				x->tids[k].vcpu = vm->threads[t].vcpu;
				continue;
			}
			if (kw_grow((void **)&x->tids, &x->tidcap, x->ntids, sizeof(*x->tids)))
				return;
			x->tids[x->ntids].tid = vm->threads[t].tid;
			x->tids[x->ntids++].vcpu = vm->threads[t].vcpu;
		}
	}
}

/* Rescan the VMs; the ones that went away are kept (identity only) in
 * x->gone so their late events are still attributed to them. */
static int refresh(struct ev_ctx *x)
{
	struct kw_vmtable before = { 0 };
	size_t i;
	int r;

	for (i = 0; i < x->c.vms.n; i++) {
		struct kw_vm *v = kw_vmt_add(&before);

		if (!v || kw_vm_copy(v, &x->c.vms.vms[i])) {
			if (v)
				before.n--;
			kw_vmt_free(&before);
			return -ENOMEM;
		}
		kw_ss_free(&v->stats);
	}
	r = kw_collector_collect(&x->c);
	ev_remember_vcpus(x);
	for (i = 0; r >= 0 && i < before.n; i++) {
		struct kw_vm *v;

		size_t k;

		if (kw_vmt_find_key(&x->c.vms, before.vms[i].key) || kw_vmt_find_key(&x->gone, before.vms[i].key))
			continue;
		for (k = 0; k < x->gone.n;)      /* the newest VM of a pid wins */
			if (x->gone.vms[k].pid == before.vms[i].pid)
				kw_vmt_remove_at(&x->gone, k);
			else
				k++;
		if (!(v = kw_vmt_add(&x->gone)) || kw_vm_copy(v, &before.vms[i])) {
			if (v)
				x->gone.n--;
			r = -ENOMEM;
		}
	}
	kw_vmt_free(&before);
	return r;
}

const struct kw_vm *ev_vm_of(struct ev_ctx *x, pid_t tgid)
{
	const struct kw_vm *vm = kw_vmt_find_pid(&x->c.vms, tgid);
	uint64_t now;

	if (vm || (vm = kw_vmt_find_pid(&x->replay, tgid)))
		return vm;
	/* a VM started after us: rescan, at most every 200 ms; a VM that
	 * exited is found among the gone */
	now = kw_now_mono_ns();
	if (now - x->last_refresh < 200000000ull)
		return kw_vmt_find_pid(&x->gone, tgid);
	x->last_refresh = now;
	if (refresh(x) < 0)
		return NULL;
	vm = kw_vmt_find_pid(&x->c.vms, tgid);
	return vm ? vm : kw_vmt_find_pid(&x->gone, tgid);
}

/* -p given and every VM it selected has exited (like perf stat -p): the
 * run ends with its final report.  Checked at most every 250 ms. */
int ev_all_gone(struct ev_ctx *x)
{
	uint64_t now = kw_now_mono_ns();

	/* -r: VMs (and vCPU threads) that appeared are watched within a second */
	if (x->b && (kw_bpf_active(x->b) & KW_BPF_RUNQ) && now - x->last_refresh >= 1000000000ull) {
		x->last_refresh = now;
		refresh(x);
	}
	if (!x->filtered)
		return 0;
	if (x->c.vms.n)
		x->had_vms = 1;
	if (!x->had_vms || now - x->last_gone_check < 250000000ull)
		return 0;
	x->last_gone_check = now;
	if (now - x->last_refresh >= 200000000ull) {
		x->last_refresh = now;
		if (refresh(x) < 0)
			return 0;
	}
	if (x->c.vms.n)
		return 0;
	kw_info("every VM selected with -p has exited");
	return 1;
}

/* Sleep until t (monotonic ns), waking to check all_gone.  1 when the run
 * should end (a signal, or the VMs are gone). */
int ev_sleep_until(struct ev_ctx *x, uint64_t t)
{
	for (;;) {
		uint64_t now = kw_now_mono_ns(), step = now + 250000000ull;

		if (kw_exiting)
			return 1;
		if (t != ~0ull && now >= t)
			return 0;
		if (kw_sleep_until(t != ~0ull && t < step ? t : step, &kw_exiting))
			return 1;
		if (ev_all_gone(x))
			return 1;
	}
}

int ev_vcpu_of(const struct ev_ctx *x, const struct kw_vm *vm, pid_t tid)
{
	size_t k;
	int i;

	for (i = 0; vm && i < vm->nthreads; i++)
		if (vm->threads[i].tid == tid)
			return vm->threads[i].vcpu;
	for (k = 0; vm && k < x->ntids; k++)
		if (x->tids[k].tid == tid)
			return x->tids[k].vcpu;
	return -1;
}

void ev_vcpu_str(const struct ev_ctx *x, char *out, size_t len, const struct kw_vm *vm, uint32_t tid)
{
	int v = ev_vcpu_of(x, vm, (pid_t)tid);

	if (v >= 0)
		snprintf(out, len, "%d", v);
	else
		snprintf(out, len, "tid%u", tid);
}

void ev_vm_label(char *out, size_t len, const struct kw_vm *vm, pid_t tgid)
{
	if (vm)
		snprintf(out, len, "%s", vm->name);
	else
		snprintf(out, len, "pid-%d", tgid);
}

