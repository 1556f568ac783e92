// SPDX-License-Identifier: GPL-2.0
/* kw_decode.c - names of KVM exit reasons, MMIO types, IRQ kinds and
 * page-fault error bits (see kw_decode.h). */
#include "kvm/kw_decode.h"
#include "util/kw_util.h"

#include <asm/kvm.h> /* exception vectors used by SVM_EXIT_REASONS */
#include <asm/svm.h>
#include <asm/vmx.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/kvm.h>

#include "kvmwatch.h"
#include "kw_exit_defines.h" /* generated: exit_defines.sh */

/* Exits to user space: every KVM_EXIT_* reason of <linux/kvm.h> (the other
 * architectures' too, so no code goes unnamed), and the one newer than the
 * oldest headers kvmwatch builds with. */
#ifdef KVM_EXIT_MEMORY_FAULT
_Static_assert(KVM_EXIT_MEMORY_FAULT == 39, "KVM_EXIT_MEMORY_FAULT moved");
#define MEMORY_FAULT_SOURCE "define"
#else
#define MEMORY_FAULT_SOURCE "kvmwatch" /* 6.8+; linux/kvm.h here is older */
#endif
static const struct uexit_name {
	unsigned code;
	const char *name, *source;
} uexit_names[] = {
#define UX(c, n) { KVM_EXIT_##c, n, "define" }
	UX(UNKNOWN, "unknown"), UX(EXCEPTION, "exception"), UX(IO, "io"), UX(HYPERCALL, "hypercall"),
	UX(DEBUG, "debug"), UX(HLT, "hlt"), UX(MMIO, "mmio"), UX(IRQ_WINDOW_OPEN, "irq_window_open"),
	UX(SHUTDOWN, "shutdown"), UX(FAIL_ENTRY, "fail_entry"), UX(INTR, "intr"), UX(SET_TPR, "set_tpr"),
	UX(TPR_ACCESS, "tpr_access"), UX(S390_SIEIC, "s390_sieic"), UX(S390_RESET, "s390_reset"),
	UX(DCR, "dcr"), UX(NMI, "nmi"), UX(INTERNAL_ERROR, "internal_error"), UX(OSI, "osi"),
	UX(PAPR_HCALL, "papr_hcall"), UX(S390_UCONTROL, "s390_ucontrol"), UX(WATCHDOG, "watchdog"),
	UX(S390_TSCH, "s390_tsch"), UX(EPR, "epr"), UX(SYSTEM_EVENT, "system_event"),
	UX(S390_STSI, "s390_stsi"), UX(IOAPIC_EOI, "ioapic_eoi"), UX(HYPERV, "hyperv"),
	UX(ARM_NISV, "arm_nisv"), UX(X86_RDMSR, "x86_rdmsr"), UX(X86_WRMSR, "x86_wrmsr"),
	UX(DIRTY_RING_FULL, "dirty_ring_full"), UX(AP_RESET_HOLD, "ap_reset_hold"),
	UX(X86_BUS_LOCK, "x86_bus_lock"), UX(XEN, "xen"), UX(RISCV_SBI, "riscv_sbi"),
	UX(RISCV_CSR, "riscv_csr"), UX(NOTIFY, "notify"),
#undef UX
	{ 39, "memory_fault", MEMORY_FAULT_SOURCE },
};

const char *kw_kvm_uexit_name(unsigned reason)
{
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(uexit_names); i++)
		if (uexit_names[i].code == reason)
			return uexit_names[i].name;
	return NULL;
}

/* In-kernel exits: the kernel's own tables (what its kvm_exit trace prints),
 * then every other code its headers define (exit_defines.sh). */
struct reason_name {
	unsigned long code;
	const char *name;
};
static const struct reason_name vmx_reasons[] = { VMX_EXIT_REASONS };
static const struct reason_name svm_reasons[] = { SVM_EXIT_REASONS };
static const struct reason_name vmx_defines[] = { KW_VMX_EXIT_DEFINES };
static const struct reason_name svm_defines[] = { KW_SVM_EXIT_DEFINES };

static const struct reason_tables {
	const struct reason_name *table, *defines;
	size_t ntable, ndefines;
} kexit_tables[] = {
	[KW_ISA_VMX] = { vmx_reasons, vmx_defines, KW_ARRAY_SIZE(vmx_reasons), KW_ARRAY_SIZE(vmx_defines) },
	[KW_ISA_SVM] = { svm_reasons, svm_defines, KW_ARRAY_SIZE(svm_reasons), KW_ARRAY_SIZE(svm_defines) },
};

/* kvm_exit's exit_reason is 32 bits: SVM_EXIT_ERR (-1) is 0xffffffff there. */
static const struct reason_name *find_code(const struct reason_name *t, size_t n, uint32_t code)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((uint32_t)t[i].code == code)
			return &t[i];
	return NULL;
}

/* The name of an in-kernel exit and where it is from (NULL: unnamed). */
static const char *kexit_name(unsigned isa, uint32_t code, const char **source)
{
	const struct reason_tables *t;
	const struct reason_name *r;

	if (isa != KW_ISA_VMX && isa != KW_ISA_SVM)
		return NULL;
	t = &kexit_tables[isa];
	if ((r = find_code(t->table, t->ntable, code))) {
		*source = "table";
		return r->name;
	}
	if ((r = find_code(t->defines, t->ndefines, code))) {
		*source = "define";
		return r->name;
	}
	return NULL;
}

static void upper(char *buf, size_t len, const char *s)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < len; i++)
		buf[i] = (char)toupper((unsigned char)s[i]);
	buf[i] = '\0';
}

const char *kw_kvm_exit_name(unsigned isa, unsigned reason, char *buf, size_t len)
{
	const char *s, *src;

	if (isa == KW_ISA_USER) {
		if (reason == KW_UEXIT_EINTR)
			return "EINTR";
		if (reason == KW_UEXIT_ERROR)
			return "ERROR";
		s = kw_kvm_uexit_name(reason);
		if (s) {
			upper(buf, len, s);
			return buf;
		}
	} else if ((s = kexit_name(isa, reason, &src))) {
		return s;
	}
	snprintf(buf, len, "%s_0x%x", isa == KW_ISA_USER ? "EXIT" : "REASON", reason);
	return buf;
}

static int reason_cmp(const void *pa, const void *pb)
{
	const struct kw_exit_reason *a = pa, *b = pb;

	return a->code < b->code ? -1 : a->code > b->code;
}

/* One listed reason, named as kw_kvm_exit_name names it. */
static void put(struct kw_exit_reason *out, size_t max, size_t *n, unsigned isa, uint32_t code, const char *source)
{
	if (*n < max) {
		struct kw_exit_reason *r = &out[*n];
		const char *s = kw_kvm_exit_name(isa, code, r->name, sizeof(r->name));

		if (s != r->name)
			kw_strlcpy(r->name, s, sizeof(r->name));
		r->isa = isa;
		r->code = code;
		r->source = source;
	}
	(*n)++;
}

size_t kw_kvm_exit_reasons(unsigned isa, struct kw_exit_reason *out, size_t max)
{
	size_t n = 0, i;

	if (isa == KW_ISA_USER) {
		for (i = 0; i < KW_ARRAY_SIZE(uexit_names); i++)
			put(out, max, &n, isa, uexit_names[i].code, uexit_names[i].source);
		put(out, max, &n, isa, KW_UEXIT_EINTR, "kvmwatch");
		put(out, max, &n, isa, KW_UEXIT_ERROR, "kvmwatch");
	} else if (isa == KW_ISA_VMX || isa == KW_ISA_SVM) {
		const struct reason_tables *t = &kexit_tables[isa];

		/* a code named twice keeps its first name, as kw_kvm_exit_name finds it */
		for (i = 0; i < t->ntable; i++)
			if (!find_code(t->table, i, (uint32_t)t->table[i].code))
				put(out, max, &n, isa, (uint32_t)t->table[i].code, "table");
		for (i = 0; i < t->ndefines; i++) {
			uint32_t c = (uint32_t)t->defines[i].code;

			if (!find_code(t->table, t->ntable, c) && !find_code(t->defines, i, c))
				put(out, max, &n, isa, c, "define");
		}
	}
	if ((n < max ? n : max) > 1)
		qsort(out, n < max ? n : max, sizeof(*out), reason_cmp);
	return n;
}

static int name_eq(const char *a, const char *b)
{
	for (; *a && *b; a++, b++) {
		int x = tolower((unsigned char)*a), y = tolower((unsigned char)*b);

		if (x == ' ')
			x = '_';
		if (y == ' ')
			y = '_';
		if (x != y)
			return 0;
	}
	return *a == *b;
}

int kw_kvm_exit_code(unsigned isa, const char *name, uint32_t *code)
{
	struct kw_exit_reason r[512];
	size_t n = kw_kvm_exit_reasons(isa, r, KW_ARRAY_SIZE(r)), i;

	for (i = 0; i < n && i < KW_ARRAY_SIZE(r); i++)
		if (name_eq(name, r[i].name)) {
			*code = r[i].code;
			return 0;
		}
	return -1;
}

int kw_kvm_isa_parse(const char *s)
{
	static const char *const n[] = { [KW_ISA_USER] = "user", [KW_ISA_VMX] = "vmx", [KW_ISA_SVM] = "svm" };
	size_t i;

	for (i = 0; i < KW_ARRAY_SIZE(n); i++)
		if (!strcmp(s, n[i]) || (s[0] == (char)('0' + i) && !s[1]))
			return (int)i;
	return -1;
}

const char *kw_kvm_isa_name(unsigned isa)
{
	return isa == KW_ISA_VMX ? "vmx" : isa == KW_ISA_SVM ? "svm" : isa == KW_ISA_USER ? "user" : "?";
}

const char *kw_kvm_mmio_type(unsigned type)
{
	static const char *const n[] = { "read_unsatisfied", "read", "write", "fast" };
	return type < KW_ARRAY_SIZE(n) ? n[type] : "?";
}

const char *kw_kvm_irq_kind(unsigned kind)
{
	static const char *const n[KW_IRQ__N] = { "gsi", "pic", "ioapic", "msi", "apic", "eoi", "ack", "virq" };
	return kind < KW_IRQ__N ? n[kind] : "?";
}

void kw_kvm_pferr_str(uint64_t ec, char *buf, size_t len)
{
	static const struct { int bit; const char *n; } bits[] = {
		{ 0, "P" }, { 1, "W" }, { 2, "U" }, { 3, "RSVD" }, { 4, "F" }, { 5, "PK" }, { 6, "SS" },
		{ 15, "SGX" }, { 32, "GUEST_FINAL" }, { 33, "GUEST_PAGE" }, { 48, "IMPLICIT" }, { 49, "PRIVATE" },
	};
	size_t o = 0, i;

	buf[0] = '\0';
	for (i = 0; i < KW_ARRAY_SIZE(bits) && o < len; i++)
		if (ec & (1ull << bits[i].bit))
			o += (size_t)snprintf(buf + o, len - o, "%s%s", o ? "|" : "", bits[i].n);
	if (!buf[0])
		kw_strlcpy(buf, "-", len);
}


const char *kw_kvm_haltpoll_change(int grow)
{
	return grow ? "grow" : "shrink";
}

const char *kw_kvm_wakeup_how(int waited)
{
	return waited ? "waited" : "polled";
}
