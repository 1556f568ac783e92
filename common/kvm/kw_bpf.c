// SPDX-License-Identifier: GPL-2.0
/* kw_bpf.c - loads kvmwatch's BPF objects, picks each hook's program at run
 * time, reads the in-kernel aggregates, streams events.  The collector's
 * source over the aggregates is sources/kw_src_bpf.c. */
#include "kvm/kw_bpf.h"
#include "util/kw_priv.h"
#include "util/kw_util.h"
#include "core/kw_vm.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/membarrier.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "kvmwatch.h"
#include "dirty.skel.h"
#include "exits.skel.h"
#include "faults.skel.h"
#include "haltpoll.skel.h"
#include "irq.skel.h"
#include "mmio.skel.h"
#include "runq.skel.h"
#include "wakeup.skel.h"

/* ---------------------------------------------------- feature table */

enum alt_kind { ALT_FENTRY, ALT_KPROBE, ALT_TP_BTF, ALT_RAW_TP, ALT_TP, ALT_FEXIT, ALT_KRETPROBE, ALT__N };
static const char *const alt_names[ALT__N] = { "fentry", "kprobe", "tp_btf", "raw_tp", "tracepoint", "fexit",
					       "kretprobe" };

struct alt_prog {
	const char *prog;     /* program name in the object */
	int kind;             /* enum alt_kind */
	const char *target;   /* function, or "category:tracepoint" */
};

struct alt {
	const char *prog;
	int kind;
	const char *target;
};

/* Alternatives that are more than one program: the programs loaded and
 * attached with it (all must be possible), and whether it needs the irqfd
 * kallsyms addresses. */
struct alt_group {
	const char *prog;
	struct alt_prog with[6];
	int irqfd_syms;
};
static const struct alt_group alt_groups[] = {
	{ "fentry_kvm_set_irq",
	  { { "fexit_kvm_set_irq", ALT_FEXIT, "kvm_set_irq" },
	    { "fentry_kvm_set_msi", ALT_FENTRY, "kvm_set_msi" },
	    { "fexit_kvm_set_msi", ALT_FEXIT, "kvm_set_msi" },
	    { "fentry_kvm_arch_set_irq_inatomic", ALT_FENTRY, "kvm_arch_set_irq_inatomic" },
	    { "fexit_kvm_arch_set_irq_inatomic", ALT_FEXIT, "kvm_arch_set_irq_inatomic" },
	    { NULL, 0, NULL } }, 0 },
	{ "kprobe_kvm_set_irq",
	  { { "kretprobe_kvm_set_irq", ALT_KRETPROBE, "kvm_set_irq" },
	    { "kprobe_kvm_set_msi", ALT_KPROBE, "kvm_set_msi" },
	    { "kretprobe_kvm_set_msi", ALT_KRETPROBE, "kvm_set_msi" },
	    { "kprobe_kvm_arch_set_irq_inatomic", ALT_KPROBE, "kvm_arch_set_irq_inatomic" },
	    { "kretprobe_kvm_arch_set_irq_inatomic", ALT_KRETPROBE, "kvm_arch_set_irq_inatomic" },
	    { NULL, 0, NULL } }, 0 },
	{ "btf_irqfd_sys_enter",
	  { { "btf_irqfd_sys_exit", ALT_TP_BTF, "raw_syscalls:sys_exit" },
	    { "btf_irqfd_work_start", ALT_TP_BTF, "workqueue:workqueue_execute_start" },
	    { "btf_irqfd_work_end", ALT_TP_BTF, "workqueue:workqueue_execute_end" },
	    { NULL, 0, NULL }, { NULL, 0, NULL }, { NULL, 0, NULL } }, 1 },
	{ "raw_irqfd_sys_enter",
	  { { "raw_irqfd_sys_exit", ALT_RAW_TP, "raw_syscalls:sys_exit" },
	    { "raw_irqfd_work_start", ALT_RAW_TP, "workqueue:workqueue_execute_start" },
	    { "raw_irqfd_work_end", ALT_RAW_TP, "workqueue:workqueue_execute_end" },
	    { NULL, 0, NULL }, { NULL, 0, NULL }, { NULL, 0, NULL } }, 1 },
};

static const struct alt_group *group_of(const struct alt *a)
{
	size_t i;

	for (i = 0; i < sizeof(alt_groups) / sizeof(alt_groups[0]); i++)
		if (!strcmp(alt_groups[i].prog, a->prog))
			return &alt_groups[i];
	return NULL;
}

/* The i-th program that goes with a, NULL past the last. */
static const struct alt_prog *alt_with(const struct alt *a, size_t i)
{
	const struct alt_group *g = group_of(a);

	return g && i < sizeof(g->with) / sizeof(g->with[0]) && g->with[i].prog ? &g->with[i] : NULL;
}

struct hook {
	const char *what;
	int counts;           /* the feature is available if one counting hook attaches */
	struct alt alt[6];
	const char *loses;    /* what is missing when no alternative attaches */
};

struct feat_def {
	void *(*open)(void);
	void (*destroy)(void *skel);
	int (*load)(void *skel);
	struct bpf_object *(*obj)(void *skel);
	struct kw_bpf_cfg *(*cfg)(void *skel);
	void (*prep)(void *skel);  /* set its other read-only data before load */
	struct hook hooks[10];
};

#define SKEL_OPS(n)                                                                                  \
	static void *n##_open(void) { return n##_bpf__open(); }                                      \
	static void n##_destroy(void *s) { n##_bpf__destroy(s); }                                    \
	static int n##_load(void *s) { return n##_bpf__load(s); }                                    \
	static struct bpf_object *n##_obj(void *s) { return ((struct n##_bpf *)s)->obj; }            \
	static struct kw_bpf_cfg *n##_cfg(void *s)                                                   \
	{                                                                                            \
		return (struct kw_bpf_cfg *)&((struct n##_bpf *)s)->rodata->kw_cfg;                  \
	}
#define SKEL(n) n##_open, n##_destroy, n##_load, n##_obj, n##_cfg, NULL
SKEL_OPS(exits)
SKEL_OPS(faults)
SKEL_OPS(mmio)
SKEL_OPS(dirty)
SKEL_OPS(haltpoll)
SKEL_OPS(wakeup)
SKEL_OPS(irq)
SKEL_OPS(runq)

/* The irqfd functions' addresses from kallsyms in one pass (0 when unknown
 * or hidden by kptr_restrict). */
static unsigned long long irqfd_wakeup_addr, irqfd_inject_addr;

static int irqfd_syms(void)
{
	static int done;
	char line[512], name[256], type;
	unsigned long long a;
	FILE *f;

	if (!done) {
		done = 1;
		if ((f = fopen("/proc/kallsyms", "re"))) {
			while ((!irqfd_wakeup_addr || !irqfd_inject_addr) && fgets(line, sizeof(line), f)) {
				/* cheap test first: 120,000 lines */
				if (!strstr(line, " irqfd_") ||
				    sscanf(line, "%llx %c %255s", &a, &type, name) != 3)
					continue;
				if (!strcmp(name, "irqfd_wakeup"))
					irqfd_wakeup_addr = a;
				else if (!strcmp(name, "irqfd_inject"))
					irqfd_inject_addr = a;
			}
			fclose(f);
		}
	}
	return irqfd_wakeup_addr && irqfd_inject_addr;
}

static void irq_prep(void *skel)
{
	struct irq_bpf *s = skel;

	if (irqfd_syms()) {
		s->rodata->kw_irqfd_wakeup = irqfd_wakeup_addr;
		s->rodata->kw_irqfd_inject = irqfd_inject_addr;
	}
}

/* tp_btf first (typed arguments, cheapest), raw_tp where BTF is missing. */
#define BTF_RAW_ALTS(cat, name) { { "btf_" #name, ALT_TP_BTF, #cat ":" #name }, { "raw_" #name, ALT_RAW_TP, #cat ":" #name } }
#define BTF_RAW(name) BTF_RAW_ALTS(kvm, name), NULL
#define BTF_RAW_MMU(name) BTF_RAW_ALTS(kvmmmu, name), NULL
#define BTF_RAW_SCHED(name) BTF_RAW_ALTS(sched, name)

static const struct feat_def feats[KW_BPF__N] = {
	[KW_BPF_BIT_EXITS] = { SKEL(exits), {
		{ "kvm_exit", 1, { { "tp_kvm_exit", ALT_TP, "kvm:kvm_exit" } }, "in-kernel exits are not counted" },
		{ "kvm_entry", 0, BTF_RAW_ALTS(kvm, kvm_entry), "in-kernel exits are not timed" },
		{ "kvm_userspace_exit", 1, { { "btf_kvm_userspace_exit", ALT_TP_BTF, "kvm:kvm_userspace_exit" },
					     { "raw_kvm_userspace_exit", ALT_RAW_TP, "kvm:kvm_userspace_exit" },
					     { "tp_kvm_userspace_exit", ALT_TP, "kvm:kvm_userspace_exit" } },
		  "exits to user space are not counted" },
		{ "ioctl(KVM_RUN)", 0, { { "fentry_kvm_vcpu_ioctl", ALT_FENTRY, "kvm_vcpu_ioctl" },
					 { "kprobe_kvm_vcpu_ioctl", ALT_KPROBE, "kvm_vcpu_ioctl" },
					 { "tp_sys_enter_ioctl", ALT_TP, "syscalls:sys_enter_ioctl" },
					 { "btf_sys_enter", ALT_TP_BTF, "raw_syscalls:sys_enter" },
					 { "raw_sys_enter", ALT_RAW_TP, "raw_syscalls:sys_enter" },
					 { "tp_raw_sys_enter", ALT_TP, "raw_syscalls:sys_enter" } },
		  "exits to user space are not timed" },
	} },
	[KW_BPF_BIT_FAULTS] = { SKEL(faults), {
		{ "kvm_page_fault", 1, BTF_RAW(kvm_page_fault) },
		{ "kvm_mmu_spte_requested", 1, BTF_RAW_MMU(kvm_mmu_spte_requested) },
		{ "kvm_mmu_set_spte", 0, BTF_RAW_MMU(kvm_mmu_set_spte) },
	} },
	[KW_BPF_BIT_MMIO] = { SKEL(mmio), {
		{ "kvm_mmio", 1, BTF_RAW(kvm_mmio) },
		{ "kvm_fast_mmio", 1, BTF_RAW(kvm_fast_mmio) },
	} },
	[KW_BPF_BIT_DIRTY] = { SKEL(dirty), {
		{ "dirty pages", 1, { { "fentry_mark_page_dirty_in_slot", ALT_FENTRY, "mark_page_dirty_in_slot" },
				      { "kprobe_mark_page_dirty_in_slot", ALT_KPROBE, "mark_page_dirty_in_slot" },
				      { "btf_kvm_dirty_ring_push", ALT_TP_BTF, "kvm:kvm_dirty_ring_push" },
				      { "raw_kvm_dirty_ring_push", ALT_RAW_TP, "kvm:kvm_dirty_ring_push" } }, NULL },
	} },
	[KW_BPF_BIT_HALTPOLL] = { SKEL(haltpoll), { { "kvm_halt_poll_ns", 1, BTF_RAW(kvm_halt_poll_ns) } } },
	[KW_BPF_BIT_WAKEUP] = { SKEL(wakeup), { { "kvm_vcpu_wakeup", 1, BTF_RAW(kvm_vcpu_wakeup) } } },
	[KW_BPF_BIT_IRQ] = { irq_open, irq_destroy, irq_load, irq_obj, irq_cfg, irq_prep, {
		{ "kvm_set_irq", 1, BTF_RAW(kvm_set_irq) },
		{ "kvm_pic_set_irq", 1, BTF_RAW(kvm_pic_set_irq) },
		{ "kvm_ioapic_set_irq", 1, BTF_RAW(kvm_ioapic_set_irq) },
		{ "kvm_msi_set_irq", 1, BTF_RAW(kvm_msi_set_irq) },
		{ "kvm_apic_accept_irq", 1, BTF_RAW(kvm_apic_accept_irq) },
		{ "kvm_eoi", 1, BTF_RAW(kvm_eoi) },
		{ "kvm_ack_irq", 1, BTF_RAW(kvm_ack_irq) },
		{ "kvm_inj_virq", 1, BTF_RAW(kvm_inj_virq) },
		/* the VM an injection targets (irq.bpf.c): the functions handed
		 * the struct kvm, else the irqfd paths */
		{ "injection target", 0, {
			{ "fentry_kvm_set_irq", ALT_FENTRY, "kvm_set_irq" },
			{ "kprobe_kvm_set_irq", ALT_KPROBE, "kvm_set_irq" },
			{ "btf_irqfd_sys_enter", ALT_TP_BTF, "raw_syscalls:sys_enter" },
			{ "raw_irqfd_sys_enter", ALT_RAW_TP, "raw_syscalls:sys_enter" } },
		  "interrupts injected through another process's irqfd count for that process" },
	} },
	[KW_BPF_BIT_RUNQ] = { SKEL(runq), {
		{ "sched_wakeup", 1, BTF_RAW_SCHED(sched_wakeup), "wakeups are not timed" },
		{ "sched_wakeup_new", 1, BTF_RAW_SCHED(sched_wakeup_new), "new threads' first waits are not timed" },
		{ "sched_switch", 1, BTF_RAW_SCHED(sched_switch), "no wait ends: nothing is timed" },
	} },
};

/* -------------------------------------------------- run-time probes */

static int tracefs_path(char *out, size_t len, const char *rel)
{
	static const char *const roots[] = { "/sys/kernel/tracing", "/sys/kernel/debug/tracing" };
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(roots); i++) {
		snprintf(out, len, "%s/%s", roots[i], rel);
		if (access(out, F_OK) == 0)
			return 0;
	}
	return -ENOENT;
}

static int tracefs_mounted(void)
{
	char path[512];

	return tracefs_path(path, sizeof(path), "events") == 0;
}

/* "kvm:kvm_exit" exists in tracefs? */
static int tracepoint_exists(const char *target)
{
	char rel[256], path[512];
	const char *colon = strchr(target, ':');

	if (!colon)
		return 0;
	snprintf(rel, sizeof(rel), "events/%.*s/%s", (int)(colon - target), target, colon + 1);
	return tracefs_path(path, sizeof(path), rel) == 0;
}

/* vmlinux BTF, loaded once per kw_bpf_open (freed at its end). */
static struct btf *vmlinux_btf;
static int vmlinux_btf_err;

static struct btf *get_vmlinux_btf(void)
{
	if (!vmlinux_btf && !vmlinux_btf_err) {
		vmlinux_btf = btf__load_vmlinux_btf();
		if (!vmlinux_btf)
			vmlinux_btf_err = errno ? errno : ENOENT;
	}
	errno = vmlinux_btf_err;
	return vmlinux_btf;
}

static void put_vmlinux_btf(void)
{
	btf__free(vmlinux_btf);
	vmlinux_btf = NULL;
	vmlinux_btf_err = 0;
}

/* Find a kernel BTF type (vmlinux, else the KVM modules' BTF); returns its
 * id and the module BTF object fd (0 for vmlinux, caller closes). */
static int find_kernel_btf_id(const char *name, int kind, int *obj_fd)
{
	struct btf *vmlinux = get_vmlinux_btf(), *mod;
	__u32 id = 0;
	int tid = -ENOENT, fd;

	*obj_fd = 0;
	if (!vmlinux)
		return -errno;
	tid = btf__find_by_name_kind(vmlinux, name, kind);
	while (tid < 0) {
		struct bpf_btf_info info;
		char mname[64] = "";
		__u32 ilen = sizeof(info);

		if (bpf_btf_get_next_id(id, &id))
			break;
		fd = bpf_btf_get_fd_by_id(id);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		info.name = (__u64)(uintptr_t)mname;
		info.name_len = sizeof(mname);
		if (bpf_obj_get_info_by_fd(fd, &info, &ilen) || strncmp(mname, "kvm", 3)) {
			close(fd);
			continue;
		}
		mod = btf__load_from_kernel_by_id_split(id, vmlinux);
		if (mod) {
			tid = btf__find_by_name_kind(mod, name, kind);
			btf__free(mod);
		}
		if (tid >= 0)
			*obj_fd = fd;
		else
			close(fd);
	}
	return tid;
}

/* Load a trivial tracing program against the target (like libbpf-tools'
 * probe_tp_btf / fentry_can_attach). 0 or -errno. */
static int probe_tracing(const char *btf_name, int btf_kind, enum bpf_attach_type at)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = at);
	int id, obj_fd, fd, e;

	id = find_kernel_btf_id(btf_name, btf_kind, &obj_fd);
	if (id < 0)
		return -ENOENT;
	opts.attach_btf_id = (__u32)id;
	opts.attach_btf_obj_fd = (__u32)obj_fd;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, NULL, "GPL", insns, KW_ARRAY_SIZE(insns), &opts);
	e = errno;
	if (obj_fd > 0)
		close(obj_fd);
	if (fd < 0)
		return -e;
	close(fd);
	return 0;
}

static int kprobes_supported(void)
{
	char path[512];

	return access("/sys/bus/event_source/devices/kprobe/type", F_OK) == 0 ||
	       tracefs_path(path, sizeof(path), "kprobe_events") == 0;
}

static int ksym_exists(const char *sym)
{
	char line[512];
	size_t n = strlen(sym);
	FILE *f = fopen("/proc/kallsyms", "re");
	int found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p = strchr(line, ' ');
		if (p && (p = strchr(p + 1, ' ')) && !strncmp(p + 1, sym, n) &&
		    (p[1 + n] == '\n' || p[1 + n] == '\t' || p[1 + n] == ' '))
			found = 1;
	}
	fclose(f);
	return found;
}

/* Can this alternative attach here?  0, or -1 with why filled. */
static int probe_alt(const struct alt *a, char *why, size_t len)
{
	char name[160];
	const char *tp = strchr(a->target, ':');
	int r;

	switch (a->kind) {
	case ALT_FENTRY:
		r = probe_tracing(a->target, BTF_KIND_FUNC, BPF_TRACE_FENTRY);
		if (r == -ENOENT)
			snprintf(why, len, "fentry:%s: no BTF for the function", a->target);
		else if (r)
			snprintf(why, len, "fentry:%s: cannot attach (%s)", a->target, strerror(-r));
		return r ? -1 : 0;
	case ALT_FEXIT:
		r = probe_tracing(a->target, BTF_KIND_FUNC, BPF_TRACE_FEXIT);
		if (r == -ENOENT)
			snprintf(why, len, "fexit:%s: no BTF for the function", a->target);
		else if (r)
			snprintf(why, len, "fexit:%s: cannot attach (%s)", a->target, strerror(-r));
		return r ? -1 : 0;
	case ALT_KPROBE:
	case ALT_KRETPROBE:
		if (!kprobes_supported()) {
			snprintf(why, len, "kprobe:%s: kprobes not supported by this kernel", a->target);
			return -1;
		}
		if (!ksym_exists(a->target)) {
			snprintf(why, len, "kprobe:%s: no such kernel symbol", a->target);
			return -1;
		}
		return 0;
	case ALT_TP_BTF:
		snprintf(name, sizeof(name), "btf_trace_%s", tp ? tp + 1 : a->target);
		r = probe_tracing(name, BTF_KIND_TYPEDEF, BPF_TRACE_RAW_TP);
		if (r == -ENOENT)
			snprintf(why, len, "tp_btf:%s: no BTF for the tracepoint", tp ? tp + 1 : a->target);
		else if (r)
			snprintf(why, len, "tp_btf:%s: cannot attach (%s)", tp ? tp + 1 : a->target, strerror(-r));
		return r ? -1 : 0;
	case ALT_RAW_TP:
		/* raw_tp attaches by name, without tracefs: the tracepoint
		 * exists if BTF has its btf_trace_ typedef (or tracefs lists
		 * it); with neither to ask, the attach itself decides. */
		snprintf(name, sizeof(name), "btf_trace_%s", tp ? tp + 1 : a->target);
		if (get_vmlinux_btf()) {
			int obj_fd;

			r = find_kernel_btf_id(name, BTF_KIND_TYPEDEF, &obj_fd);
			if (obj_fd > 0)
				close(obj_fd);
			if (r >= 0 || tracepoint_exists(a->target))
				return 0;
			snprintf(why, len, "raw_tp:%s: tracepoint not found", a->target);
			return -1;
		}
		if (tracefs_mounted() && !tracepoint_exists(a->target)) {
			snprintf(why, len, "raw_tp:%s: tracepoint not found", a->target);
			return -1;
		}
		return 0;
	case ALT_TP:
		if (!tracefs_mounted()) {
			snprintf(why, len, "tracepoint:%s: tracefs is not mounted", a->target);
			return -1;
		}
		if (!tracepoint_exists(a->target)) {
			snprintf(why, len, "tracepoint:%s: tracepoint not found", a->target);
			return -1;
		}
		return 0;
	}
	return -1;
}

/* An alternative with the programs that go with it: all possible here? */
static int probe_alt_all(const struct alt *a, char *why, size_t len)
{
	size_t i;

	const struct alt_group *g = group_of(a);
	const struct alt_prog *wp;

	if (g && g->irqfd_syms && !irqfd_syms()) {
		snprintf(why, len, "%s:%s: /proc/kallsyms gives no address of irqfd_wakeup/irqfd_inject", alt_names[a->kind],
			 a->target);
		return -1;
	}
	if (probe_alt(a, why, len))
		return -1;
	for (i = 0; (wp = alt_with(a, i)); i++) {
		struct alt w = { wp->prog, wp->kind, wp->target };

		if (probe_alt(&w, why, len))
			return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ loader */

#define KW_MAX_LINKS 16

struct feat_state {
	void *skel;
	struct bpf_object *obj;
	int active;
	char why[512];        /* unavailable: why */
	char hooks[256];      /* chosen hooks */
	char notes[768];      /* fallbacks taken */
	char lost[384];       /* hooks lost only because tracefs is not mounted */
	struct bpf_link *links[KW_MAX_LINKS];
	int nlinks;
};

struct kw_bpf {
	struct kw_bpf_opts o;
	unsigned requested;
	unsigned disabled_kinds;
	struct feat_state f[KW_BPF__N];
	struct ring_buffer *rb;
	int events_fd, lost_fd;   /* of the first loaded object (shared) */
	uint64_t epoch;           /* interval aggregates: the current epoch (0: none) */
	kw_bpf_event_fn fn;
	void *fn_arg;
	int handled;
};

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	size_t n;

	if (kw_log_get_level() < KW_LOG_DEBUG)
		return 0;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (n && msg[n - 1] == '\n')
		msg[n - 1] = '\0';
	kw_debug("libbpf%s: %s", level == LIBBPF_WARN ? " warning" : "", msg);
	return 0;
}

static void appendf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void appendf(char *buf, size_t len, const char *fmt, ...)
{
	size_t o = strlen(buf);
	va_list ap;

	if (o + 1 >= len)
		return;
	va_start(ap, fmt);
	vsnprintf(buf + o, len - o, fmt, ap);
	va_end(ap);
}

static unsigned parse_disabled(const char *s)
{
	char buf[128], *save = NULL, *w;
	unsigned m = 0;
	int i;

	if (!s)
		return 0;
	kw_strlcpy(buf, s, sizeof(buf));
	for (w = strtok_r(buf, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
		for (i = 0; i < ALT__N; i++)
			if (!strcmp(w, alt_names[i]))
				break;
		if (i == ALT__N)
			kw_warn("KVMWATCH_BPF_DISABLE: unknown hook kind '%s' ignored "
				"(fentry, kprobe, tp_btf, raw_tp, tracepoint)", w);
		else
			m |= 1u << i;
	}
	return m;
}

/* Can this process use bpf() at all? 0 or -errno. */
static int probe_bpf_allowed(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	int fd = bpf_prog_load(BPF_PROG_TYPE_TRACEPOINT, NULL, "GPL", insns, KW_ARRAY_SIZE(insns), NULL);

	if (fd < 0)
		return -errno;
	close(fd);
	return 0;
}

static void feat_cleanup(const struct feat_def *d, struct feat_state *s)
{
	int i;

	for (i = 0; i < s->nlinks; i++)
		bpf_link__destroy(s->links[i]);
	s->nlinks = 0;
	if (s->skel)
		d->destroy(s->skel);
	s->skel = NULL;
	s->obj = NULL;
	s->active = 0;
}

static int feat_open(struct kw_bpf *b, int bit)
{
	const struct feat_def *d = &feats[bit];
	struct feat_state *s = &b->f[bit];
	const struct alt *chosen[10] = { 0 };
	struct bpf_program *prog;
	struct bpf_map *m;
	struct kw_bpf_cfg *cfg;
	int h, a, counting = 0, err;
	char why[256];

	s->skel = d->open();
	if (!s->skel) {
		snprintf(s->why, sizeof(s->why), "failed to open BPF object: %s", strerror(errno));
		return -1;
	}
	s->obj = d->obj(s->skel);
	/* pick one alternative per hook; autoload only that one */
	bpf_object__for_each_program(prog, s->obj)
		bpf_program__set_autoload(prog, false);
	/* replay (kw_bpf_replay_exit): the replay program alone, attached to nothing */
	if (b->o.replay) {
		prog = bit == KW_BPF_BIT_EXITS ? bpf_object__find_program_by_name(s->obj, "replay_exit") : NULL;
		if (!prog) {
			snprintf(s->why, sizeof(s->why), "only exits can be replayed");
			return -1;
		}
		bpf_program__set_autoload(prog, true);
		kw_strlcpy(s->hooks, "replay", sizeof(s->hooks));
		counting = 1;
	}
	for (h = 0; !b->o.replay && h < (int)KW_ARRAY_SIZE(d->hooks) && d->hooks[h].what; h++) {
		const struct hook *hk = &d->hooks[h];
		char tried[512] = "";

		for (a = 0; a < (int)KW_ARRAY_SIZE(hk->alt) && hk->alt[a].prog; a++) {
			if (b->disabled_kinds & (1u << hk->alt[a].kind)) {
				snprintf(why, sizeof(why), "%s:%s: disabled by KVMWATCH_BPF_DISABLE",
					 alt_names[hk->alt[a].kind], hk->alt[a].target);
			} else if (probe_alt_all(&hk->alt[a], why, sizeof(why)) == 0) {
				chosen[h] = &hk->alt[a];
				break;
			}
			appendf(tried, sizeof(tried), "%s%s", tried[0] ? "; " : "", why);
		}
		if (tried[0])
			appendf(s->notes, sizeof(s->notes), "%s%s: %s%s", s->notes[0] ? "; " : "", hk->what, tried,
				chosen[h] ? "" : " (hook unavailable)");
		if (!chosen[h]) {
			if (strstr(tried, "tracefs is not mounted"))
				appendf(s->lost, sizeof(s->lost), "%s%s", s->lost[0] ? ", " : "",
					hk->loses ? hk->loses : hk->what);
			continue;
		}
		prog = bpf_object__find_program_by_name(s->obj, chosen[h]->prog);
		if (!prog) {
			snprintf(s->why, sizeof(s->why), "BPF object has no program %s", chosen[h]->prog);
			return -1;
		}
		bpf_program__set_autoload(prog, true);
		for (a = 0; alt_with(chosen[h], (size_t)a); a++) {
			const char *wn = alt_with(chosen[h], (size_t)a)->prog;
			struct bpf_program *w = bpf_object__find_program_by_name(s->obj, wn);

			if (!w) {
				snprintf(s->why, sizeof(s->why), "BPF object has no program %s", wn);
				return -1;
			}
			bpf_program__set_autoload(w, true);
		}
		counting |= hk->counts;
	}
	if (!counting) {
		kw_strlcpy(s->why, "no hook can attach on this kernel: ", sizeof(s->why));
		appendf(s->why, sizeof(s->why), "%s", s->notes);
		return -1;
	}
	cfg = d->cfg(s->skel);
	cfg->targ_tgid = (__u32)b->o.targ_tgid;
	cfg->stream = !!b->o.stream;
	cfg->aggregate = !!b->o.aggregate;
	cfg->per_thread = !!b->o.per_thread;
	if (d->prep)
		d->prep(s->skel);
	/* one ring buffer and lost counter for all objects */
	if (b->events_fd >= 0) {
		m = bpf_object__find_map_by_name(s->obj, "events");
		if (!m || bpf_map__reuse_fd(m, b->events_fd) ||
		    !(m = bpf_object__find_map_by_name(s->obj, "lost")) || bpf_map__reuse_fd(m, b->lost_fd)) {
			snprintf(s->why, sizeof(s->why), "failed to share the ring buffer: %s", strerror(errno));
			return -1;
		}
	}
	{
		/* tests make the statistics map small to fill it (ignored when elevated) */
		const char *ents = kw_getenv("KVMWATCH_BPF_STATS_ENTRIES");
		long n;

		if (ents && kw_parse_int(ents, 1, 1 << 20, &n) == 0 &&
		    (m = bpf_object__find_map_by_name(s->obj, "stats")))
			bpf_map__set_max_entries(m, (__u32)n);
		/* no interval reports: the interval map stays (almost) empty */
		if (!b->o.interval && (m = bpf_object__find_map_by_name(s->obj, "ival")))
			bpf_map__set_max_entries(m, 1);
	}
	err = d->load(s->skel);
	if (err) {
		snprintf(s->why, sizeof(s->why), "failed to load BPF programs: %s%s", strerror(-err),
			 err == -EPERM || err == -EACCES ? " (needs CAP_BPF and CAP_PERFMON)" : "");
		return -1;
	}
	if (b->o.interval) {
		/* interval aggregates from the first event on: epoch 1 */
		__u32 zero = 0;
		__u64 one = 1;

		m = bpf_object__find_map_by_name(s->obj, "kw_epoch");
		if (!m || bpf_map_update_elem(bpf_map__fd(m), &zero, &one, BPF_ANY)) {
			snprintf(s->why, sizeof(s->why), "failed to start interval aggregates: %s", strerror(errno));
			return -1;
		}
		b->epoch = 1;
	}
	counting = !!b->o.replay; /* a replay attaches nothing */
	for (h = 0; h < (int)KW_ARRAY_SIZE(d->hooks) && d->hooks[h].what; h++) {
		struct bpf_link *l;

		if (!chosen[h])
			continue;
		{
			/* the programs that go with it first (they undo what it
			 * records), the hook itself last; all or none */
			int first = s->nlinks, nw = 0, w, failed = 0;

			while (alt_with(chosen[h], (size_t)nw))
				nw++;
			for (w = 0; w <= nw && !failed; w++) {
				const char *pn = w < nw ? alt_with(chosen[h], (size_t)w)->prog : chosen[h]->prog;

				prog = bpf_object__find_program_by_name(s->obj, pn);
				l = prog ? bpf_program__attach(prog) : NULL;
				if (!l || s->nlinks >= KW_MAX_LINKS) {
					err = prog ? errno : ENOENT;
					bpf_link__destroy(l);
					appendf(s->notes, sizeof(s->notes), "%sfailed to attach %s (%s:%s): %s",
						s->notes[0] ? "; " : "", pn, alt_names[chosen[h]->kind],
						chosen[h]->target, strerror(err));
					failed = 1;
					break;
				}
				s->links[s->nlinks++] = l;
			}
			if (failed) {
				while (s->nlinks > first)
					bpf_link__destroy(s->links[--s->nlinks]);
				continue;
			}
		}
		counting |= d->hooks[h].counts;
		appendf(s->hooks, sizeof(s->hooks), "%s%s:%s", s->hooks[0] ? "," : "", alt_names[chosen[h]->kind],
			chosen[h]->target);
	}
	if (!counting) {
		kw_strlcpy(s->why, "no hook attached: ", sizeof(s->why));
		appendf(s->why, sizeof(s->why), "%s", s->notes);
		return -1;
	}
	if (b->events_fd < 0) {
		b->events_fd = bpf_map__fd(bpf_object__find_map_by_name(s->obj, "events"));
		b->lost_fd = bpf_map__fd(bpf_object__find_map_by_name(s->obj, "lost"));
	}
	s->active = 1;
	return 0;
}

static int rb_event(void *ctx, void *data, size_t size)
{
	struct kw_bpf *b = ctx;

	if (size < sizeof(struct kw_event))
		return 0;
	b->handled++;
	return b->fn ? b->fn(data, b->fn_arg) : 0;
}

struct kw_bpf *kw_bpf_open(const struct kw_bpf_opts *o, char *err, size_t errlen)
{
	struct kw_bpf *b;
	int bit, r;

	libbpf_set_print(libbpf_log);
	if (!(o->features & KW_BPF_ALL)) {
		snprintf(err, errlen, "no eBPF features requested");
		return NULL;
	}
	if (kw_priv_check("bpf", err, errlen))
		return NULL; /* by name, before the kernel says EPERM */
	r = probe_bpf_allowed();
	if (r) {
		snprintf(err, errlen, "failed to load BPF programs: %s%s", strerror(-r),
			 r == -EPERM || r == -EACCES ? " (eBPF tracing needs CAP_BPF and CAP_PERFMON; "
						       "unprivileged BPF may be disabled)" : "");
		return NULL;
	}
	b = calloc(1, sizeof(*b));
	if (!b) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	b->o = *o;
	b->o.disable = NULL;
	b->requested = o->features & KW_BPF_ALL;
	b->disabled_kinds = parse_disabled(o->disable ? o->disable : kw_getenv("KVMWATCH_BPF_DISABLE"));
	b->events_fd = b->lost_fd = -1;
	for (bit = 0; bit < KW_BPF__N; bit++) {
		if (!(b->requested & (1u << bit)))
			continue;
		if (feat_open(b, bit)) {
			feat_cleanup(&feats[bit], &b->f[bit]);
			kw_debug("eBPF %s: %s", kw_feature_name(bit), b->f[bit].why);
		} else {
			if (b->f[bit].notes[0])
				kw_debug("eBPF %s: using %s (%s)", kw_feature_name(bit), b->f[bit].hooks,
					 b->f[bit].notes);
			if (b->f[bit].lost[0])
				kw_warn("eBPF %s: tracefs is not mounted, so %s "
					"(mount -t tracefs nodev /sys/kernel/tracing)", kw_feature_name(bit), b->f[bit].lost);
		}
	}
	put_vmlinux_btf();
	if (!kw_bpf_active(b)) {
		size_t n = 0;

		n += (size_t)snprintf(err, errlen, "no eBPF feature could be loaded");
		for (bit = 0; bit < KW_BPF__N && n < errlen; bit++)
			if (b->requested & (1u << bit))
				n += (size_t)snprintf(err + n, errlen - n, "; %s: %s", kw_feature_name(bit), b->f[bit].why);
		kw_bpf_close(b);
		return NULL;
	}
	if (o->stream) {
		b->rb = ring_buffer__new(b->events_fd, rb_event, b, NULL);
		if (!b->rb) {
			snprintf(err, errlen, "failed to create ring buffer: %s", strerror(errno));
			kw_bpf_close(b);
			return NULL;
		}
	}
	return b;
}

void kw_bpf_close(struct kw_bpf *b)
{
	int bit;

	if (!b)
		return;
	ring_buffer__free(b->rb);
	for (bit = 0; bit < KW_BPF__N; bit++)
		feat_cleanup(&feats[bit], &b->f[bit]);
	free(b);
}

unsigned kw_bpf_active(const struct kw_bpf *b)
{
	unsigned m = 0;
	int bit;

	for (bit = 0; bit < KW_BPF__N; bit++)
		if (b->f[bit].active)
			m |= 1u << bit;
	return m;
}

const char *kw_bpf_why(const struct kw_bpf *b, int bit)
{
	if (bit < 0 || bit >= KW_BPF__N || !(b->requested & (1u << bit)) || b->f[bit].active)
		return NULL;
	return b->f[bit].why;
}

const char *kw_bpf_hooks(const struct kw_bpf *b, int bit)
{
	return bit >= 0 && bit < KW_BPF__N ? b->f[bit].hooks : "";
}

const char *kw_bpf_notes(const struct kw_bpf *b, int bit)
{
	return bit >= 0 && bit < KW_BPF__N ? b->f[bit].notes : "";
}

int kw_bpf_poll(struct kw_bpf *b, int timeout_ms, kw_bpf_event_fn fn, void *arg)
{
	int r;

	if (!b->rb)
		return -EINVAL;
	b->fn = fn;
	b->fn_arg = arg;
	b->handled = 0;
	r = ring_buffer__poll(b->rb, timeout_ms);
	if (r < 0 && r != -EINTR)
		return r;
	return b->handled;
}

uint64_t kw_bpf_lost(const struct kw_bpf *b)
{
	__u32 zero = 0;
	__u64 v = 0;

	if (b->lost_fd >= 0)
		bpf_map_lookup_elem(b->lost_fd, &zero, &v);
	return v;
}

static int map_fd(struct kw_bpf *b, int bit, const char *name);

uint64_t kw_bpf_dropped(struct kw_bpf *b, int bit)
{
	__u32 zero = 0;
	__u64 v = 0;
	int fd = map_fd(b, bit, "agg_dropped");

	if (fd >= 0)
		bpf_map_lookup_elem(fd, &zero, &v);
	return v;
}

unsigned kw_bpf_stats_capacity(struct kw_bpf *b, int bit)
{
	struct bpf_map *m;

	if (bit < 0 || bit >= KW_BPF__N || !b->f[bit].active ||
	    !(m = bpf_object__find_map_by_name(b->f[bit].obj, "stats")))
		return 0;
	return bpf_map__max_entries(m);
}

/* Remove the entries of a u32-keyed map whose tgid (the key, or the value
 * with by_value) is gone. */
static long prune_u32_map(int fd, int by_value, int (*live)(pid_t tgid, void *arg), void *arg)
{
	__u32 k, next, v, *prev = NULL, *dead = NULL;
	size_t n = 0, cap = 0, i;
	long removed = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (by_value && bpf_map_lookup_elem(fd, &k, &v))
			continue;
		if (live((pid_t)(by_value ? v : k), arg))
			continue;
		if (kw_grow((void **)&dead, &cap, n, sizeof(*dead))) {
			free(dead);
			return -ENOMEM;
		}
		dead[n++] = k;
	}
	for (i = 0; i < n; i++)
		if (bpf_map_delete_elem(fd, &dead[i]) == 0)
			removed++;
	free(dead);
	return removed;
}

int kw_bpf_watch_vm(struct kw_bpf *b, const struct kw_vm *vm)
{
	int vfd = map_fd(b, KW_BPF_BIT_RUNQ, "vms"), tfd = map_fd(b, KW_BPF_BIT_RUNQ, "vcpus"), t;
	__u32 tgid, tid;

	if (vfd < 0 || tfd < 0 || vm->pid <= 0)
		return 0;
	/* added once, never replaced (BPF_NOEXIST): what is there stays
	 * until kw_bpf_prune finds its process gone */
	tgid = (__u32)vm->pid;
	if (!b->o.targ_tgid && bpf_map_update_elem(vfd, &tgid, &tgid, BPF_NOEXIST) && errno != EEXIST)
		return -errno;
	for (t = 0; t < vm->nthreads; t++) {
		if (vm->threads[t].vcpu < 0)
			continue;
		tid = (__u32)vm->threads[t].tid;
		if (bpf_map_update_elem(tfd, &tid, &tgid, BPF_NOEXIST) && errno != EEXIST)
			return -errno;
	}
	return 0;
}

long kw_bpf_prune(struct kw_bpf *b, int (*live)(pid_t tgid, void *arg), void *arg)
{
	struct kw_key k, next, *prev = NULL, *dead = NULL;
	size_t n = 0, cap = 0, i;
	long removed = 0;
	int bit;

	for (bit = 0; bit < KW_BPF__N; bit++) {
		int fd = map_fd(b, bit, "stats");

		if (fd < 0)
			continue;
		/* collect first: deleting while walking restarts the walk */
		n = 0;
		prev = NULL;
		while (bpf_map_get_next_key(fd, prev, &next) == 0) {
			k = next;
			prev = &k;
			if (live((pid_t)k.tgid, arg))
				continue;
			if (kw_grow((void **)&dead, &cap, n, sizeof(*dead))) {
				free(dead);
				return -ENOMEM;
			}
			dead[n++] = k;
		}
		for (i = 0; i < n; i++)
			if (bpf_map_delete_elem(fd, &dead[i]) == 0)
				removed++;
	}
	free(dead);
	/* the run-queue object's watched processes and vCPU threads */
	for (i = 0; i < 2; i++) {
		int fd = map_fd(b, KW_BPF_BIT_RUNQ, i ? "vcpus" : "vms");
		long r = fd < 0 ? 0 : prune_u32_map(fd, (int)i, live, arg);

		if (r < 0)
			return r; /* not counted: they are no aggregates */
	}
	return removed;
}

static int map_fd(struct kw_bpf *b, int bit, const char *name)
{
	struct bpf_map *m;

	if (bit < 0 || bit >= KW_BPF__N || !b->f[bit].active)
		return -ENOENT;
	m = bpf_object__find_map_by_name(b->f[bit].obj, name);
	return m ? bpf_map__fd(m) : -ENOENT;
}

int kw_bpf_foreach_agg(struct kw_bpf *b, int bit, kw_bpf_agg_fn fn, void *arg)
{
	struct kw_key k, next, *prev = NULL;
	struct kw_agg v;
	int fd = map_fd(b, bit, "stats");

	if (fd < 0)
		return fd;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &v))
			continue; /* deleted meanwhile */
		if (fn(&k, &v, arg))
			break;
	}
	return 0;
}

/* An RCU grace period: every BPF program running now has returned (they
 * run under rcu_read_lock; MEMBARRIER_CMD_GLOBAL is synchronize_rcu()).
 * Where membarrier is refused (nohz_full), a pause far longer than any
 * program runs. */
static void grace_period(void)
{
	struct timespec ts = { 0, 20000000 };

	if (syscall(SYS_membarrier, MEMBARRIER_CMD_GLOBAL, 0, 0) == 0)
		return;
	kw_log_once(KW_LOG_DEBUG, "bpf-membarrier", "membarrier(MEMBARRIER_CMD_GLOBAL): %s: interval ends wait 20 ms",
		    strerror(errno));
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

int kw_bpf_ival_next(struct kw_bpf *b, uint64_t *closed)
{
	__u32 zero = 0;
	__u64 next;
	int bit;

	if (!b->epoch)
		return -EINVAL;
	next = b->epoch + 1;
	for (bit = 0; bit < KW_BPF__N; bit++) {
		int fd = map_fd(b, bit, "kw_epoch");

		if (fd >= 0 && bpf_map_update_elem(fd, &zero, &next, BPF_ANY))
			return -errno;
	}
	grace_period();
	*closed = b->epoch;
	b->epoch = next;
	return 0;
}

int kw_bpf_foreach_ival(struct kw_bpf *b, int bit, uint64_t epoch, kw_bpf_agg_fn fn, void *arg)
{
	struct kw_ival_key k, next, *prev = NULL, *done = NULL;
	size_t n = 0, cap = 0, i;
	struct kw_agg v;
	int fd = map_fd(b, bit, "ival"), r = 0;

	if (fd < 0)
		return fd;
	/* the closed epoch's entries (and any older) are written by nobody:
	 * read them all, then delete them (deleting while walking restarts
	 * the walk); the current epoch's are left to fill */
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (k.epoch > epoch)
			continue;
		if (kw_grow((void **)&done, &cap, n, sizeof(*done))) {
			r = -ENOMEM;
			break;
		}
		done[n++] = k;
		if (k.epoch == epoch && !r && bpf_map_lookup_elem(fd, &k, &v) == 0 && fn(&k.k, &v, arg))
			r = 1;
	}
	for (i = 0; i < n; i++)
		bpf_map_delete_elem(fd, &done[i]);
	free(done);
	return r < 0 ? r : 0;
}

int kw_bpf_foreach_addr(struct kw_bpf *b, int bit, kw_bpf_addr_fn fn, void *arg)
{
	struct kw_addr_key k, next, *prev = NULL;
	struct kw_fault_page v; /* the faults' value; mmio and dirty count with one __u64 */
	int fd = map_fd(b, bit, "addrs");

	if (fd < 0)
		return fd;
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		memset(&v, 0, sizeof(v));
		if (bpf_map_lookup_elem(fd, &k, &v))
			continue;
		if (fn(&k, v.count, v.hva, v.pfn, arg))
			break;
	}
	return 0;
}

static int foreach_pending_map(int fd, int kind, kw_bpf_pending_fn fn, void *arg)
{
	__u32 k, next, *prev = NULL;
	struct kw_pending v;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		k = next;
		prev = &k;
		if (bpf_map_lookup_elem(fd, &k, &v))
			continue;
		if (fn(&v, k, kind, arg))
			return 1;
	}
	return 0;
}

int kw_bpf_foreach_pending(struct kw_bpf *b, int bit, kw_bpf_pending_fn fn, void *arg)
{
	int fd;

	if (bit == KW_BPF_BIT_EXITS) {
		if ((fd = map_fd(b, bit, "kexit")) < 0 || foreach_pending_map(fd, KW_PENDING_KEXIT, fn, arg))
			return fd < 0 ? fd : 0;
		if ((fd = map_fd(b, bit, "uexit")) < 0)
			return fd;
		foreach_pending_map(fd, KW_PENDING_UEXIT, fn, arg);
		return 0;
	}
	if (bit == KW_BPF_BIT_FAULTS) {
		if ((fd = map_fd(b, bit, "pending")) < 0)
			return fd;
		foreach_pending_map(fd, KW_PENDING_FAULT, fn, arg);
		return 0;
	}
	return -ENOENT;
}

int kw_bpf_replay_exit(struct kw_bpf *b, const struct kw_replay_exit *r)
{
	struct bpf_program *prog;
	__u64 args[KW_REPLAY__N];
	LIBBPF_OPTS(bpf_test_run_opts, t, .ctx_in = args, .ctx_size_in = sizeof(args));
	int err;

	if (!b->o.replay || !b->f[KW_BPF_BIT_EXITS].active ||
	    !(prog = bpf_object__find_program_by_name(b->f[KW_BPF_BIT_EXITS].obj, "replay_exit")))
		return -EINVAL;
	args[KW_REPLAY_ISA] = r->isa;
	args[KW_REPLAY_REASON] = r->reason;
	args[KW_REPLAY_VCPU] = r->vcpu_id;
	args[KW_REPLAY_LAT] = r->timed ? r->lat_ns : KW_REPLAY_UNTIMED;
	args[KW_REPLAY_TGID] = r->tgid;
	args[KW_REPLAY_TID] = r->tid;
	err = bpf_prog_test_run_opts(bpf_program__fd(prog), &t);
	return err ? -errno : 0;
}
