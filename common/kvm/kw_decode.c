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
#include <string.h>
#include <linux/kvm.h>

#include "kvmwatch.h"

static const char *const uexit_names[64] = {
	[KVM_EXIT_UNKNOWN] = "unknown", [KVM_EXIT_EXCEPTION] = "exception",
	[KVM_EXIT_IO] = "io", [KVM_EXIT_HYPERCALL] = "hypercall",
	[KVM_EXIT_DEBUG] = "debug", [KVM_EXIT_HLT] = "hlt", [KVM_EXIT_MMIO] = "mmio",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "irq_window_open", [KVM_EXIT_SHUTDOWN] = "shutdown",
	[KVM_EXIT_FAIL_ENTRY] = "fail_entry", [KVM_EXIT_INTR] = "intr",
	[KVM_EXIT_SET_TPR] = "set_tpr", [KVM_EXIT_TPR_ACCESS] = "tpr_access",
	[KVM_EXIT_NMI] = "nmi", [KVM_EXIT_INTERNAL_ERROR] = "internal_error",
	[KVM_EXIT_SYSTEM_EVENT] = "system_event", [KVM_EXIT_IOAPIC_EOI] = "ioapic_eoi",
	[KVM_EXIT_HYPERV] = "hyperv", [KVM_EXIT_X86_RDMSR] = "x86_rdmsr",
	[KVM_EXIT_X86_WRMSR] = "x86_wrmsr", [KVM_EXIT_DIRTY_RING_FULL] = "dirty_ring_full",
	[KVM_EXIT_AP_RESET_HOLD] = "ap_reset_hold", [KVM_EXIT_X86_BUS_LOCK] = "x86_bus_lock",
	[KVM_EXIT_XEN] = "xen", [KVM_EXIT_NOTIFY] = "notify",
	[39] = "memory_fault",  /* KVM_EXIT_MEMORY_FAULT (6.8+ headers) */
};

const char *kw_kvm_uexit_name(unsigned reason)
{
	return reason < KW_ARRAY_SIZE(uexit_names) ? uexit_names[reason] : NULL;
}

struct reason_name {
	unsigned long code;
	const char *name;
};
static const struct reason_name vmx_reasons[] = { VMX_EXIT_REASONS };
static const struct reason_name svm_reasons[] = { SVM_EXIT_REASONS };

const char *kw_kvm_exit_name(unsigned isa, unsigned reason, char *buf, size_t len)
{
	const struct reason_name *t = NULL;
	size_t n = 0, i;
	const char *s;

	if (isa == KW_ISA_USER) {
		if (reason == KW_UEXIT_EINTR)
			return "EINTR";
		if (reason == KW_UEXIT_ERROR)
			return "ERROR";
		s = kw_kvm_uexit_name(reason);
		if (s) {
			for (i = 0; s[i] && i + 1 < len; i++)
				buf[i] = (char)toupper((unsigned char)s[i]);
			buf[i] = '\0';
			return buf;
		}
	} else if (isa == KW_ISA_VMX) {
		t = vmx_reasons;
		n = KW_ARRAY_SIZE(vmx_reasons);
	} else if (isa == KW_ISA_SVM) {
		t = svm_reasons;
		n = KW_ARRAY_SIZE(svm_reasons);
	}
	for (i = 0; i < n; i++)
		if (t[i].code == reason || (isa == KW_ISA_SVM && (unsigned)t[i].code == reason))
			return t[i].name;
	snprintf(buf, len, "%s_0x%x", isa == KW_ISA_USER ? "EXIT" : "REASON", reason);
	return buf;
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
