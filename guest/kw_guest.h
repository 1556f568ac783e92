// SPDX-License-Identifier: GPL-2.0
/* kw_guest: the project's own KVM guests.
 *
 * Creates a real VM through /dev/kvm and runs one small guest program whose
 * effects on KVM's counters and tracepoints are exact and repeatable (see
 * /work/shared/LAB.md).  vCPUs run on their own threads named like QEMU's
 * ("CPU <n>/KVM"); the calling thread only sets up, injects interrupts and
 * collects the result.
 *
 * Use: kw_guest_create() / kw_guest_start() / kw_guest_wait() /
 * kw_guest_destroy(), split so a caller can let a monitor attach between
 * create and start, and keep the fds open after the program.
 *
 * Errors are reported as "failed to <verb> <object>: <strerror>" in err and
 * a -1 (or NULL) return.
 */
#ifndef KW_GUEST_H
#define KW_GUEST_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum kw_guest_mode {
	KW_GUEST_PIO = 0,   /* real mode: count x `out` to KW_GUEST_PIO_PORT, then hlt  */
	KW_GUEST_MMIO,      /* real mode: count x byte write to KW_GUEST_MMIO_GPA, hlt  */
	KW_GUEST_HLT,       /* real mode: count x hlt (each one a KVM_EXIT_HLT)         */
	KW_GUEST_PAGES,     /* 64-bit CPL3: write count fresh 4 KiB pages, `out` done  */
	KW_GUEST_DIRTY,     /* as PAGES, data slot dirty-logged through the dirty ring */
	KW_GUEST_IRQ_PIC,   /* real mode + in-kernel irqchip: count x KVM_IRQ_LINE GSI 5 */
	KW_GUEST_IRQ_IOAPIC,/* count x KVM_IRQ_LINE GSI 18 (IOAPIC pin 18, edge)        */
	KW_GUEST_IRQ_MSI,   /* count x KVM_SIGNAL_MSI                                   */
	KW_GUEST_HALTPOLL,  /* MSI every irq_period_us with KVM_CAP_HALT_POLL set       */
	KW_GUEST_DEMO,      /* PIO+MMIO+spin+HLT loop on every vCPU until *stop/seconds */
	KW_GUEST_NR_MODES
};

#define KW_GUEST_PIO_PORT   0x0700u      /* data port of PIO/DEMO modes */
#define KW_GUEST_DONE_PORT  0x0701u      /* "program finished" port (PAGES, DIRTY, IRQ) */
#define KW_GUEST_ERR_PORT   0x0702u      /* guest took an unexpected interrupt */
#define KW_GUEST_MMIO_GPA   0x00010000u  /* unbacked GPA written by MMIO/DEMO modes */
#define KW_GUEST_DATA_GPA   0x00200000u  /* first data page of PAGES/DIRTY (slot 1) */

#define KW_GUEST_PIC_GSI    5u
#define KW_GUEST_IOAPIC_GSI 18u
#define KW_GUEST_MAX_VCPUS  64u
#define KW_GUEST_MAX_PAGES  65536u       /* PAGES/DIRTY count limit (256 MiB) */
#define KW_GUEST_HALT_POLL_UNSET (-1LL)

/* Signal the library uses to kick vCPU threads out of KVM_RUN; a no-op
 * handler (no SA_RESTART) is installed for it by kw_guest_create(). */
#define KW_GUEST_KICK_SIGNAL SIGUSR2

struct kw_guest_opts {
	int mode;                  /* enum kw_guest_mode */
	unsigned count;            /* N of the mode; DEMO: spin iterations per loop (0: default) */
	unsigned vcpus;            /* >= 1 (0 means 1); extra vCPUs only halt (all run in DEMO) */
	long long halt_poll_ns;    /* KVM_CAP_HALT_POLL value; KW_GUEST_HALT_POLL_UNSET: leave
	                            * the module default (HALTPOLL mode then uses 1000000) */
	unsigned irq_period_us;    /* HALTPOLL: gap between interrupts (0: 100);
	                            * DEMO: host sleep per guest HLT (0: 2000) */
	double seconds;            /* DEMO: stop after this long (0: only *stop) */
	volatile int *stop;        /* optional: non-zero aborts (DEMO: ends) the program */
	double timeout;            /* other modes: give up after this long (0: 30 s) */
	int irqfd;                 /* IRQ_IOAPIC / IRQ_MSI: inject through a KVM_IRQFD eventfd
	                            * written by a separate writer process */
};

#define KW_GUEST_NR_EXIT_REASONS 64  /* KVM_EXIT_* values below this are counted */
#define KW_GUEST_MAX_STATS 96
#define KW_GUEST_STAT_NAME 48        /* KVM_STATS_NAME_SIZE */

/* One binary-stats snapshot (KVM_GET_STATS_FD); histogram stats are summed. */
struct kw_guest_stats {
	unsigned n;
	struct {
		char name[KW_GUEST_STAT_NAME];
		uint64_t value;
	} s[KW_GUEST_MAX_STATS];
};

struct kw_guest_vcpu_result {
	pid_t tid;                                   /* the "CPU n/KVM" thread */
	uint64_t runs;                               /* KVM_RUN calls that returned 0 */
	uint64_t eintr;                              /* KVM_RUN returns with EINTR (kicks) */
	uint64_t exits[KW_GUEST_NR_EXIT_REASONS];    /* returns by run->exit_reason */
	struct kw_guest_stats stats;                 /* vCPU fd binary stats, at the end */
};

struct kw_guest_result {
	int mode;
	unsigned count, vcpus;
	double elapsed;              /* seconds from start to end of the program */
	uint64_t pio_out;            /* writes seen at KW_GUEST_PIO_PORT */
	uint64_t mmio_write;         /* writes seen at KW_GUEST_MMIO_GPA */
	uint64_t irqs_injected;      /* interrupts the host raised */
	uint64_t irqs_handled;       /* the guest handler's own counter */
	uint64_t dirty_harvested;    /* dirty-ring entries collected (DIRTY) */
	uint64_t dirty_resets;       /* KVM_RESET_DIRTY_RINGS calls (DIRTY) */
	uint64_t dirty_pages;        /* distinct data pages among them (DIRTY) */
	uint32_t dirty_ring_entries; /* ring size chosen (DIRTY; >= count + 1024 if KVM allows) */
	uint64_t demo_loops;         /* DEMO: guest loop iterations (all vCPUs) */
	long long halt_poll_ns;      /* value given to KVM_CAP_HALT_POLL, or -1 */
	int irqfd_writer_pid;        /* the process that wrote the irqfd (irqfd), else 0 */
	struct kw_guest_stats vm_stats;              /* VM fd binary stats, at the end */
	struct kw_guest_vcpu_result vcpu[KW_GUEST_MAX_VCPUS];
};

struct kw_guest;

/* Name <-> mode ("pio", "mmio", "hlt", "pages", "dirty", "irq-pic",
 * "irq-ioapic", "irq-msi", "haltpoll", "demo"). */
const char *kw_guest_mode_name(int mode);
int kw_guest_mode_from_name(const char *name);

/* Create the VM, memory, vCPUs and their threads (parked until start). */
struct kw_guest *kw_guest_create(const struct kw_guest_opts *o, char *err, size_t errlen);
/* Release the vCPU threads. */
int kw_guest_start(struct kw_guest *g, char *err, size_t errlen);
/* Drive the program (interrupt injection), wait for it, fill *r.  The VM
 * and vCPU fds stay open until kw_guest_destroy(). */
int kw_guest_wait(struct kw_guest *g, struct kw_guest_result *r, char *err, size_t errlen);
/* Stop the threads and free everything; safe on NULL and at any stage. */
void kw_guest_destroy(struct kw_guest *g);

#endif
