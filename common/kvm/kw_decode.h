// SPDX-License-Identifier: GPL-2.0
/* kw_decode.h - names for what KVM events carry: exit reasons (VMX, SVM,
 * KVM_EXIT_* exits to user space), MMIO access types, interrupt kinds and
 * page-fault error codes.  Shared by the eBPF loader's consumers (the CLI's
 * event views) and the project's own guest. */
#ifndef KW_DECODE_H
#define KW_DECODE_H

#include <stddef.h>
#include <stdint.h>

/* Exit reasons: VMX/SVM from the kernel's uapi tables, KVM_EXIT_* for exits
 * to user space (isa 0, upper case); unknown codes print as numbers. */
const char *kw_kvm_exit_name(unsigned isa, unsigned reason, char *buf, size_t len);
/* Lower-case name of a KVM_EXIT_* reason ("io", "mmio", "hlt", ...) or NULL. */
const char *kw_kvm_uexit_name(unsigned reason);
const char *kw_kvm_isa_name(unsigned isa);   /* "user", "vmx", "svm" */
const char *kw_kvm_mmio_type(unsigned type); /* "read_unsatisfied", "read", "write", "fast" */
const char *kw_kvm_irq_kind(unsigned kind);  /* "gsi", "pic", "ioapic", "msi", "apic", "eoi", "ack", "virq" */
/* Halt-polling changes: "grow" / "shrink"; vCPU wakeups: "waited" (halted)
 * / "polled" (woken while polling). */
const char *kw_kvm_haltpoll_change(int grow);
const char *kw_kvm_wakeup_how(int waited);
/* Page fault error code bits, e.g. "P|W|U" ("-" for 0). */
void kw_kvm_pferr_str(uint64_t ec, char *buf, size_t len);

#endif
