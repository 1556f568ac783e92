// SPDX-License-Identifier: GPL-2.0
/* ev_exits.c - exit reasons outside tracing: --list-exit-reasons (every
 * reason -e names, and where each name is from) and the --replay file (the
 * records, and the VMs and vCPU threads they are counted for). */
#include "events.h"
#include "kvm/kw_decode.h"
#include "util/kw_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------ --list-exit-reasons */

int cli_list_exit_reasons(struct cli_opts *o)
{
	static const unsigned order[] = { KW_ISA_VMX, KW_ISA_SVM, KW_ISA_USER };
	int json = o->output == KW_OUT_JSON, first = 1;
	size_t i, k, n;

	if (json) {
		putchar('{');
		cli_json_origin(stdout);
		fputs("\"exit_reasons\":[", stdout);
	} else {
		printf("%-4s %10s %10s  %-28s %s\n", "ISA", "CODE", "HEX", "NAME", "SOURCE");
	}
	for (k = 0; k < KW_ARRAY_SIZE(order); k++) {
		struct kw_exit_reason *r;

		if (!(o->list_exits & (1u << order[k])))
			continue;
		n = kw_kvm_exit_reasons(order[k], NULL, 0);
		r = calloc(n ? n : 1, sizeof(*r));
		if (!r) {
			fprintf(stderr, "kvmwatch: out of memory\n");
			return 1;
		}
		kw_kvm_exit_reasons(order[k], r, n);
		for (i = 0; i < n; i++) {
			if (json) {
				printf("%s{\"isa\":\"%s\",\"code\":%u,\"name\":", first ? "" : ",", kw_kvm_isa_name(r[i].isa),
				       r[i].code);
				kw_json_str(stdout, r[i].name);
				printf(",\"source\":\"%s\"}", r[i].source);
			} else {
				char hex[16];

				snprintf(hex, sizeof(hex), "0x%x", r[i].code);
				printf("%-4s %10u %10s  %-28s %s\n", kw_kvm_isa_name(r[i].isa), r[i].code, hex, r[i].name,
				       r[i].source);
			}
			first = 0;
		}
		free(r);
	}
	if (json)
		fputs("]}\n", stdout);
	fflush(stdout);
	return ferror(stdout) ? 1 : 0;
}

/* ------------------------------------------------------ --replay FILE */

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

/* One record: ISA REASON VCPU LATENCY_NS [PID [TID]]. */
static int parse_record(char *line, struct kw_replay_exit *r, char *why, size_t len)
{
	char *f[7], *save = NULL, *w;
	int nf = 0, isa;
	uint64_t v;

	for (w = strtok_r(line, " \t\r\n", &save); w && nf < 7; w = strtok_r(NULL, " \t\r\n", &save))
		f[nf++] = w;
	if (nf < 4 || nf > 6) {
		snprintf(why, len, "%d fields, not ISA REASON VCPU LATENCY_NS [PID [TID]]", nf);
		return -1;
	}
	memset(r, 0, sizeof(*r));
	if ((isa = kw_kvm_isa_parse(f[0])) < 0) {
		snprintf(why, len, "invalid ISA '%s' (vmx, svm or user)", f[0]);
		return -1;
	}
	r->isa = (uint32_t)isa;
	if (parse_u64(f[1], 0xffffffffull, &v) == 0) {
		r->reason = (uint32_t)v;
	} else if (kw_kvm_exit_code(r->isa, f[1], &r->reason)) {
		snprintf(why, len, "unknown %s exit reason '%s' (a number, or a name of kvmwatch --list-exit-reasons %s)",
			 f[0], f[1], kw_kvm_isa_name(r->isa));
		return -1;
	}
	if (parse_u64(f[2], KW_REPLAY_MAX_VCPU, &v)) {
		snprintf(why, len, "invalid VCPU '%s' (0 to %d)", f[2], KW_REPLAY_MAX_VCPU);
		return -1;
	}
	r->vcpu_id = (uint32_t)v;
	if (!strcmp(f[3], "-")) {
		r->timed = 0;
	} else if (parse_u64(f[3], 1ull << 62, &r->lat_ns) == 0) {
		r->timed = 1;
	} else {
		snprintf(why, len, "invalid LATENCY_NS '%s' (nanoseconds, or - for an exit never entered again)", f[3]);
		return -1;
	}
	if (nf > 4) {
		if (parse_u64(f[4], 0x7fffffff, &v)) {
			snprintf(why, len, "invalid PID '%s'", f[4]);
			return -1;
		}
		r->tgid = (uint32_t)v;
	}
	if (nf > 5) {
		if (parse_u64(f[5], 0x7fffffff, &v) || !v) {
			snprintf(why, len, "invalid TID '%s'", f[5]);
			return -1;
		}
		r->tid = (uint32_t)v;
	}
	return 0;
}

int ev_replay_read(const char *path, struct kw_replay_exit **out, size_t *n, char *err, size_t errlen)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "re") : stdin;
	struct kw_replay_exit *r = NULL;
	size_t cap = 0, len = 0;
	char *line = NULL, why[256];
	unsigned lineno = 0;
	ssize_t got;

	*out = NULL;
	*n = 0;
	if (!f) {
		snprintf(err, errlen, "--replay %s: %s", path, strerror(errno));
		return -1;
	}
	while ((got = getline(&line, &len, f)) >= 0) {
		char *hash = strchr(line, '#'), *p = line;

		lineno++;
		if (hash)
			*hash = '\0';
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (!*p)
			continue;
		if (kw_grow((void **)&r, &cap, *n, sizeof(*r))) {
			snprintf(err, errlen, "--replay %s: out of memory", path);
			goto fail;
		}
		if (!strncmp(p, "interval", 8) && !p[8 + strspn(p + 8, " \t\r\n")]) {
			memset(&r[*n], 0, sizeof(r[*n]));
			r[(*n)++].isa = EV_REPLAY_MARK;
			continue;
		}
		if (parse_record(p, &r[*n], why, sizeof(why))) {
			snprintf(err, errlen, "--replay %s:%u: %s", path, lineno, why);
			goto fail;
		}
		(*n)++;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "--replay %s: %s", path, strerror(errno));
		goto fail;
	}
	free(line);
	if (f != stdin)
		fclose(f);
	*out = r;
	return 0;
fail:
	free(line);
	free(r);
	*n = 0;
	if (f != stdin)
		fclose(f);
	return -1;
}

/* The replay VM of pid: made on first use ("replay" for the records without
 * a pid, which the replaying kvmwatch runs as its own; "pid-N" for a pid
 * that is no running VM).  NULL when -p leaves it out, or ENOMEM. */
static struct kw_vm *replay_vm(struct ev_ctx *x, pid_t pid, int own)
{
	struct kw_vm *vm = kw_vmt_find_pid(&x->replay, pid);
	size_t i;

	if (vm)
		return vm;
	if (x->filtered) {
		for (i = 0; i < x->o->cfg.npids && x->o->cfg.pids[i] != pid; i++)
			;
		if (i == x->o->cfg.npids)
			return NULL;
	}
	if (!(vm = kw_vmt_add(&x->replay)))
		return NULL;
	vm->pid = pid;
	snprintf(vm->key, sizeof(vm->key), "replay:%d", (int)pid);
	if (own)
		kw_strlcpy(vm->name, "replay", sizeof(vm->name));
	else
		snprintf(vm->name, sizeof(vm->name), "pid-%d", (int)pid);
	kw_strlcpy(vm->vmm, "replay", sizeof(vm->vmm));
	return vm;
}

/* The thread of vCPU vcpu of vm, 0 if none. */
static pid_t thread_of(const struct kw_vm *vm, int vcpu)
{
	int i;

	for (i = 0; i < vm->nthreads; i++)
		if (vm->threads[i].vcpu == vcpu)
			return vm->threads[i].tid;
	return 0;
}

static int has_thread(const struct kw_vm *vm, pid_t tid)
{
	int i;

	for (i = 0; i < vm->nthreads; i++)
		if (vm->threads[i].tid == tid)
			return 1;
	return 0;
}

/* The made-up thread of vCPU vcpu of process pid: one per (pid, vcpu),
 * numbered from KW_REPLAY_TID_BASE up.  0 on ENOMEM. */
struct synth_tid {
	pid_t pid;
	uint32_t vcpu;
};

static uint32_t synthetic_tid(struct synth_tid **t, size_t *n, size_t *cap, pid_t pid, uint32_t vcpu)
{
	size_t i;

	for (i = 0; i < *n; i++)
		if ((*t)[i].pid == pid && (*t)[i].vcpu == vcpu)
			return KW_REPLAY_TID_BASE + (uint32_t)i;
	if (kw_grow((void **)t, cap, *n, sizeof(**t)))
		return 0;
	(*t)[*n].pid = pid;
	(*t)[*n].vcpu = vcpu;
	return KW_REPLAY_TID_BASE + (uint32_t)(*n)++;
}

int ev_replay_attribute(struct ev_ctx *x, struct kw_replay_exit *r, size_t n)
{
	struct synth_tid *st = NULL;
	size_t nst = 0, cap = 0, i;
	pid_t self = getpid();
	int err = 0;

	for (i = 0; i < n && !err; i++) {
		int own = !r[i].tgid;
		pid_t pid = own ? self : (pid_t)r[i].tgid;
		const struct kw_vm *live = own ? NULL : kw_vmt_find_pid(&x->c.vms, pid);
		struct kw_vm *vm = NULL;

		if (r[i].isa == EV_REPLAY_MARK)
			continue;
		r[i].tgid = (uint32_t)pid;
		/* a VM running here: its vCPU thread of that index */
		if (live && !r[i].tid)
			r[i].tid = (uint32_t)thread_of(live, (int)r[i].vcpu_id);
		if (!r[i].tid && !(r[i].tid = synthetic_tid(&st, &nst, &cap, pid, r[i].vcpu_id)))
			err = -ENOMEM;
		if (live || err)
			continue;
		vm = replay_vm(x, pid, own);
		if (!vm)
			err = x->filtered ? 0 : -ENOMEM; /* not selected: the kernel's filter or the summary drops it */
		else if (!has_thread(vm, (pid_t)r[i].tid) && kw_vm_add_thread(vm, (pid_t)r[i].tid, (int)r[i].vcpu_id))
			err = -ENOMEM;
	}
	free(st);
	return err;
}
