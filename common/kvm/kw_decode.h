// SPDX-License-Identifier: GPL-2.0
/* kw_decode.h - names for what KVM events carry: exit reasons (VMX, SVM,
 * KVM_EXIT_* exits to user space), MMIO access types, interrupt kinds and
 * page-fault error codes.  Shared by the eBPF loader's consumers (the CLI's
 * event views) and the project's own guest. */
#ifndef KW_DECODE_H
#define KW_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Exit reasons: VMX/SVM from the kernel's uapi tables (then the other codes
 * its headers define), KVM_EXIT_* for exits to user space (isa 0, upper
 * case); unknown codes print as numbers (REASON_0x.., EXIT_0x..). */
const char *kw_kvm_exit_name(unsigned isa, unsigned reason, char *buf, size_t len);
/* Lower-case name of a KVM_EXIT_* reason ("io", "mmio", "hlt", ...) or NULL. */
const char *kw_kvm_uexit_name(unsigned reason);
const char *kw_kvm_isa_name(unsigned isa);   /* "user", "vmx", "svm" */
/* The isa of a name ("user", "vmx", "svm", or 0, 1, 2); -1 if none. */
int kw_kvm_isa_parse(const char *s);

/* Every exit reason kw_kvm_exit_name names, as `kvmwatch
 * --list-exit-reasons` prints them.  source: "table" (VMX/SVM: the kernel's
 * VMX_EXIT_REASONS/SVM_EXIT_REASONS, what its kvm_exit trace prints),
 * "define" (an EXIT_REASON_*, SVM_EXIT_* or KVM_EXIT_* define of the uapi
 * headers kvmwatch was built with, named after it: prefix dropped, SVM in
 * lower case, user-space exits in upper case) or "kvmwatch" (KVM_RUN
 * failing: EINTR, ERROR; KVM_EXIT_* codes newer than the build's headers). */
struct kw_exit_reason {
	unsigned isa;
	uint32_t code;
	char name[48];
	const char *source;
};
/* The reasons of isa by code into out (at most max); returns how many
 * there are. */
size_t kw_kvm_exit_reasons(unsigned isa, struct kw_exit_reason *out, size_t max);
/* The code of a reason name of isa (case-insensitive, '_' for a space:
 * "ept_violation", "DE_excp"); 0, or -1 if no reason has that name. */
int kw_kvm_exit_code(unsigned isa, const char *name, uint32_t *code);
const char *kw_kvm_mmio_type(unsigned type); /* "read_unsatisfied", "read", "write", "fast" */
const char *kw_kvm_irq_kind(unsigned kind);  /* "gsi", "pic", "ioapic", "msi", "apic", "eoi", "ack", "virq" */
/* Halt-polling changes: "grow" / "shrink"; vCPU wakeups: "waited" (halted)
 * / "polled" (woken while polling). */
const char *kw_kvm_haltpoll_change(int grow);
const char *kw_kvm_wakeup_how(int waited);
/* Page fault error code bits, e.g. "P|W|U" ("-" for 0). */
void kw_kvm_pferr_str(uint64_t ec, char *buf, size_t len);

#endif
