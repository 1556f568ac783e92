// SPDX-License-Identifier: GPL-2.0
/* kw_guest: the project's own KVM guests (see kw_guest.h). */
#include "kw_guest.h"
#include "kvm/kw_decode.h"
#include "kvm/kw_kstats.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* ------------------------------------------------------------------ */
/* Guest programs.                                                     */
/*                                                                     */
/* Both blobs load at GPA 0x1000.  Real-mode programs run with CS=DS=  */
/* ES=SS=0 (SP=0x7000); the IVT lives at 0 and the interrupt counter at */
/* RM_COUNTER.  Parameters come in registers: ECX = count (PIO, MMIO,  */
/* HLT), ESI = count (IRQ modes) or spin iterations (DEMO).  The 64-bit */
/* program runs at CPL3 with IOPL=3 (natively under PVM): RDI = first  */
/* data page, RCX = number of pages.                                   */
/* ------------------------------------------------------------------ */
#define LOAD_GPA    0x1000u
#define RM_COUNTER  0x0600u
#define RM_STACK    0x7000u
#define RM_MEM_SIZE 0x10000u       /* slot 0 in real-mode programs: 64 KiB */
#define LM_MEM_SIZE 0x200000u      /* slot 0 of the 64-bit program: 2 MiB */
#define LM_GDT      0x0500u
#define LM_TSS      0x4000u
#define LM_PML4     0x10000u
#define LM_PDPT     0x11000u
#define LM_PD       0x12000u
#define LM_PT0      0x13000u       /* maps slot 0 */
#define LM_PT_DATA  0x14000u       /* first page table of the data slot */
#define PIC_VECTOR    0x25u        /* irq_base 0x20 + GSI 5 */
#define IOAPIC_VECTOR 0x30u
#define MSI_VECTOR    0x31u

#define STR_(x) #x
#define STR(x) STR_(x)

__asm__(
	"	.pushsection .rodata.kw_guest,\"a\"\n"
	"	.globl kw_guest_rm_blob, kw_guest_rm_end, kw_guest_rm_pio, kw_guest_rm_mmio\n"
	"	.globl kw_guest_rm_hlt, kw_guest_rm_park, kw_guest_rm_irq, kw_guest_rm_irq_x2apic\n"
	"	.globl kw_guest_rm_isr_pic, kw_guest_rm_isr_lapic, kw_guest_rm_isr_bad, kw_guest_rm_demo\n"
	"	.hidden kw_guest_rm_blob, kw_guest_rm_end, kw_guest_rm_pio, kw_guest_rm_mmio\n"
	"	.hidden kw_guest_rm_hlt, kw_guest_rm_park, kw_guest_rm_irq, kw_guest_rm_irq_x2apic\n"
	"	.hidden kw_guest_rm_isr_pic, kw_guest_rm_isr_lapic, kw_guest_rm_isr_bad, kw_guest_rm_demo\n"
	"	.code16\n"
	"kw_guest_rm_blob:\n"
	/* PIO: ECX x outb to the data port, then hlt */
	"kw_guest_rm_pio:\n"
	"	movw $" STR(KW_GUEST_PIO_PORT) ", %dx\n"
	"	testl %ecx, %ecx\n"
	"	jz 2f\n"
	"1:	outb %al, %dx\n"
	"	decl %ecx\n"
	"	jnz 1b\n"
	"2:	hlt\n"
	"	jmp 2b\n"
	/* MMIO: ECX x byte write to 0x1000:0 = GPA 0x10000 (outside slot 0) */
	"kw_guest_rm_mmio:\n"
	"	movw $(" STR(KW_GUEST_MMIO_GPA) " >> 4), %ax\n"
	"	movw %ax, %es\n"
	"	xorw %di, %di\n"
	"	testl %ecx, %ecx\n"
	"	jz 2f\n"
	"1:	movb %al, %es:(%di)\n"
	"	decl %ecx\n"
	"	jnz 1b\n"
	"2:	hlt\n"
	"	jmp 2b\n"
	/* HLT: hlt forever; the host stops after ECX of them */
	"kw_guest_rm_hlt:\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	/* extra vCPUs */
	"kw_guest_rm_park:\n"
	"	cli\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	/* IRQ modes: halt with IF=1 until the handlers counted ESI interrupts.
	 * cli before the test so no interrupt slips in between the test and
	 * the hlt (sti's shadow covers the hlt). */
	"kw_guest_rm_irq_x2apic:\n"
	"	movl $0x80f, %ecx\n"          /* x2APIC SVR: software enable, spurious 0xff */
	"	movl $0x1ff, %eax\n"
	"	xorl %edx, %edx\n"
	"	wrmsr\n"
	"kw_guest_rm_irq:\n"
	"1:	cli\n"
	"	cmpl %esi, " STR(RM_COUNTER) "\n"
	"	jae 2f\n"
	"	sti\n"
	"	hlt\n"
	"	jmp 1b\n"
	"2:	movw $" STR(KW_GUEST_DONE_PORT) ", %dx\n"
	"	outb %al, %dx\n"
	"3:	hlt\n"
	"	jmp 3b\n"
	/* PIC in auto-EOI mode: nothing to acknowledge */
	"kw_guest_rm_isr_pic:\n"
	"	incl " STR(RM_COUNTER) "\n"
	"	iret\n"
	/* LAPIC (x2APIC): EOI through WRMSR 0x80b, then count */
	"kw_guest_rm_isr_lapic:\n"
	"	pushl %eax\n"
	"	pushl %ecx\n"
	"	pushl %edx\n"
	"	movl $0x80b, %ecx\n"
	"	xorl %eax, %eax\n"
	"	xorl %edx, %edx\n"
	"	wrmsr\n"
	"	popl %edx\n"
	"	popl %ecx\n"
	"	popl %eax\n"
	"	incl " STR(RM_COUNTER) "\n"
	"	iret\n"
	"kw_guest_rm_isr_bad:\n"
	"	movw $" STR(KW_GUEST_ERR_PORT) ", %dx\n"
	"	outb %al, %dx\n"
	"	cli\n"
	"1:	hlt\n"
	"	jmp 1b\n"
	/* DEMO: out, MMIO write, spin ESI iterations, hlt; forever */
	"kw_guest_rm_demo:\n"
	"	movw $(" STR(KW_GUEST_MMIO_GPA) " >> 4), %ax\n"
	"	movw %ax, %es\n"
	"	xorw %di, %di\n"
	"	movw $" STR(KW_GUEST_PIO_PORT) ", %dx\n"
	"1:	outb %al, %dx\n"
	"	movb %al, %es:(%di)\n"
	"	movl %esi, %ecx\n"
	"2:	decl %ecx\n"
	"	jnz 2b\n"
	"	hlt\n"
	"	jmp 1b\n"
	"kw_guest_rm_end:\n"
	"	.code64\n"
	"	.globl kw_guest_lm_blob, kw_guest_lm_end, kw_guest_lm_pages\n"
	"	.hidden kw_guest_lm_blob, kw_guest_lm_end, kw_guest_lm_pages\n"
	"kw_guest_lm_blob:\n"
	"kw_guest_lm_pages:\n"
	"	pushq %rcx\n"               /* touch the stack page: pf_fixed = pages + 2 */
	"	popq %rcx\n"
	"	testq %rcx, %rcx\n"
	"	jz 2f\n"
	"1:	movq %rcx, (%rdi)\n"
	"	addq $4096, %rdi\n"
	"	decq %rcx\n"
	"	jnz 1b\n"
	"2:	movw $" STR(KW_GUEST_DONE_PORT) ", %dx\n"
	"	outb %al, %dx\n"
	"3:	jmp 3b\n"
	"kw_guest_lm_end:\n"
	"	.popsection\n");

#define HIDDEN __attribute__((visibility("hidden")))
extern const unsigned char kw_guest_rm_blob[] HIDDEN, kw_guest_rm_end[] HIDDEN,
	kw_guest_rm_pio[] HIDDEN, kw_guest_rm_mmio[] HIDDEN, kw_guest_rm_hlt[] HIDDEN,
	kw_guest_rm_park[] HIDDEN, kw_guest_rm_irq[] HIDDEN, kw_guest_rm_irq_x2apic[] HIDDEN,
	kw_guest_rm_isr_pic[] HIDDEN, kw_guest_rm_isr_lapic[] HIDDEN, kw_guest_rm_isr_bad[] HIDDEN,
	kw_guest_rm_demo[] HIDDEN;
extern const unsigned char kw_guest_lm_blob[] HIDDEN, kw_guest_lm_end[] HIDDEN,
	kw_guest_lm_pages[] HIDDEN;

#define RM_IP(sym) ((uint64_t)(LOAD_GPA + (unsigned)((sym) - kw_guest_rm_blob)))
#define LM_IP(sym) ((uint64_t)(LOAD_GPA + (unsigned)((sym) - kw_guest_lm_blob)))

/* ------------------------------------------------------------------ */

static const char *const mode_names[KW_GUEST_NR_MODES] = {
	[KW_GUEST_PIO] = "pio", [KW_GUEST_MMIO] = "mmio", [KW_GUEST_HLT] = "hlt",
	[KW_GUEST_PAGES] = "pages", [KW_GUEST_DIRTY] = "dirty",
	[KW_GUEST_IRQ_PIC] = "irq-pic", [KW_GUEST_IRQ_IOAPIC] = "irq-ioapic",
	[KW_GUEST_IRQ_MSI] = "irq-msi", [KW_GUEST_HALTPOLL] = "haltpoll",
	[KW_GUEST_DEMO] = "demo",
};

const char *kw_guest_mode_name(int mode)
{
	if (mode < 0 || mode >= KW_GUEST_NR_MODES)
		return NULL;
	return mode_names[mode];
}

int kw_guest_mode_from_name(const char *name)
{
	for (int i = 0; i < KW_GUEST_NR_MODES; i++)
		if (name && strcmp(name, mode_names[i]) == 0)
			return i;
	return -1;
}

/* ------------------------------------------------------------------ */
/* Binary stats (KVM_GET_STATS_FD)                                     */
/* ------------------------------------------------------------------ */
/* The VM's and each vCPU's stats fd, read with the project's bounded
 * reader (kvm/kw_kstats.h). */
static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void stats_close(struct kw_kstats *s)
{
	kw_kstats_close(s);
}

static int stats_open(struct kw_kstats *s, int kvm_obj_fd, const char *what, char *err, size_t errlen)
{
	int r;

	s->fd = ioctl(kvm_obj_fd, KVM_GET_STATS_FD, NULL);
	if (s->fd < 0) {
		set_err(err, errlen, "failed to get stats fd of %s: %s", what, strerror(errno));
		return -1;
	}
	r = kw_kstats_load(s);
	if (r < 0) {
		set_err(err, errlen, "failed to read stats descriptors of %s: %s", what, strerror(-r));
		kw_kstats_close(s);
		return -1;
	}
	return 0;
}

static int stats_read(struct kw_kstats *s, struct kw_guest_stats *out)
{
	if (kw_kstats_read(s))
		return -1;
	out->n = 0;
	for (unsigned i = 0; i < s->nd && out->n < KW_GUEST_MAX_STATS; i++) {
		snprintf(out->s[out->n].name, KW_GUEST_STAT_NAME, "%s", s->d[i].name);
		out->s[out->n].value = kw_kstats_value(s, i);
		out->n++;
	}
	return 0;
}

/* One stat, by index from kw_kstats_find(). */
static int stats_read_one(struct kw_kstats *s, int idx, uint64_t *v)
{
	return idx < 0 || kw_kstats_read_one(s, (unsigned)idx, v) ? -1 : 0;
}

/* ------------------------------------------------------------------ */
/* VM                                                                   */
/* ------------------------------------------------------------------ */
enum phase { PH_CREATED, PH_RUNNING, PH_ABORT };

struct kw_vcpu {
	struct kw_guest *g;
	unsigned idx;
	int fd;
	struct kvm_run *run;
	size_t run_size;
	struct kvm_dirty_gfn *ring;
	uint32_t ring_next;
	pthread_t thr;
	bool thr_started;
	_Atomic pid_t tid;
	struct kw_kstats stats;
	int halt_idx;           /* index of "halt_exits" in stats */
	uint64_t runs, eintr, hlts;
	uint64_t exits[KW_GUEST_NR_EXIT_REASONS];
};

struct kw_guest {
	struct kw_guest_opts o;
	int kvm_fd, vm_fd;
	uint8_t *mem0, *mem1;
	size_t mem0_size, mem1_size;
	bool lm;                /* 64-bit program */
	bool irqchip;
	uint32_t ring_entries;
	struct kw_kstats vm_stats;
	unsigned nvcpus;
	struct kw_vcpu *vcpus;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool sync_init;
	enum phase phase;
	unsigned threads_ready;
	bool program_done;      /* the BSP finished its program */
	unsigned vcpus_exited;
	unsigned parked;        /* extra vCPUs that reached their final exit */
	bool failed;
	char fail_msg[256];
	_Atomic int abort;

	_Atomic uint64_t pio_out, mmio_write, dirty_harvested, dirty_resets;
	uint8_t *dirty_seen;    /* bitmap of data-slot pages seen in the ring */
	uint64_t dirty_pages;   /* distinct pages in it (only the BSP writes) */
	struct timespec t_start, t_end;
	/* irqfd: the eventfd and the writer process (commands: one byte each) */
	int irqfd, wr_cmd, wr_ack;
	pid_t writer;
};

#define KW_GUEST_MSI_GSI 24u  /* the irqfd route of IRQ_MSI */

static double ts_diff(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void kick_handler(int sig)
{
	(void)sig;
}

static pthread_once_t kick_once = PTHREAD_ONCE_INIT;
static int kick_errno;

static void kick_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;  /* no SA_RESTART: KVM_RUN returns EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(KW_GUEST_KICK_SIGNAL, &sa, NULL) < 0)
		kick_errno = errno;
}

static void guest_fail(struct kw_guest *g, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void guest_fail(struct kw_guest *g, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&g->lock);
	if (!g->failed) {
		g->failed = true;
		va_start(ap, fmt);
		vsnprintf(g->fail_msg, sizeof(g->fail_msg), fmt, ap);
		va_end(ap);
	}
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

/* Collect the vCPU's dirty ring; returns entries harvested or -1. */
static long ring_harvest(struct kw_vcpu *v)
{
	struct kw_guest *g = v->g;
	long n = 0;

	for (;;) {
		struct kvm_dirty_gfn *e = &v->ring[v->ring_next & (g->ring_entries - 1)];
		uint32_t flags = __atomic_load_n(&e->flags, __ATOMIC_ACQUIRE);

		if (!(flags & KVM_DIRTY_GFN_F_DIRTY))
			break;
		if (e->slot != 1 || e->offset >= g->mem1_size / 4096) {
			guest_fail(g, "failed to harvest dirty ring of vCPU %u: unexpected entry slot %u offset %llu",
				   v->idx, e->slot, (unsigned long long)e->offset);
			return -1;
		}
		if (!(g->dirty_seen[e->offset / 8] & (1u << (e->offset % 8)))) {
			g->dirty_seen[e->offset / 8] |= (uint8_t)(1u << (e->offset % 8));
			g->dirty_pages++;
		}
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET, __ATOMIC_RELEASE);
		v->ring_next++;
		n++;
	}
	g->dirty_harvested += (uint64_t)n;
	if (ioctl(g->vm_fd, KVM_RESET_DIRTY_RINGS, 0) < 0) {
		guest_fail(g, "failed to reset dirty rings: %s", strerror(errno));
		return -1;
	}
	g->dirty_resets++;
	return n;
}

static bool mode_is_irq(int mode)
{
	return mode == KW_GUEST_IRQ_PIC || mode == KW_GUEST_IRQ_IOAPIC ||
	       mode == KW_GUEST_IRQ_MSI || mode == KW_GUEST_HALTPOLL;
}

/* Park an extra vCPU (or a DEMO vCPU after abort) until the guest ends. */
static void park_until_abort(struct kw_guest *g)
{
	pthread_mutex_lock(&g->lock);
	g->parked++;
	pthread_cond_broadcast(&g->cond);
	while (!atomic_load(&g->abort))
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
}

/* The vCPU loop.  Returns 1 when the program completed, 0 when aborted,
 * -1 on failure (recorded with guest_fail). */
static int vcpu_loop(struct kw_vcpu *v)
{
	struct kw_guest *g = v->g;
	struct kvm_run *run = v->run;
	int mode = g->o.mode;
	bool bsp = v->idx == 0;

	for (;;) {
		if (atomic_load(&g->abort))
			return 0;
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				v->eintr++;
				continue;
			}
			guest_fail(g, "failed to run vCPU %u: %s", v->idx, strerror(errno));
			return -1;
		}
		v->runs++;
		if (run->exit_reason < KW_GUEST_NR_EXIT_REASONS)
			v->exits[run->exit_reason]++;

		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == KW_GUEST_PIO_PORT &&
			    (mode == KW_GUEST_PIO || mode == KW_GUEST_DEMO)) {
				g->pio_out += run->io.count;
				continue;
			}
			if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == KW_GUEST_DONE_PORT &&
			    !bsp && g->lm) {
				park_until_abort(g);  /* extra vCPU of PAGES/DIRTY */
				return 0;
			}
			if (run->io.direction == KVM_EXIT_IO_OUT && run->io.port == KW_GUEST_DONE_PORT &&
			    bsp && mode != KW_GUEST_DEMO) {
				if (mode == KW_GUEST_DIRTY && ring_harvest(v) < 0)
					return -1;
				return 1;
			}
			if (run->io.port == KW_GUEST_ERR_PORT) {
				guest_fail(g, "failed to run guest program: vCPU %u took an unexpected interrupt",
					   v->idx);
				return -1;
			}
			guest_fail(g, "failed to run guest program: vCPU %u: unexpected %s of port 0x%x",
				   v->idx, run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in", run->io.port);
			return -1;
		case KVM_EXIT_MMIO:
			if (run->mmio.is_write && run->mmio.phys_addr == KW_GUEST_MMIO_GPA &&
			    (mode == KW_GUEST_MMIO || mode == KW_GUEST_DEMO)) {
				g->mmio_write++;
				continue;
			}
			guest_fail(g, "failed to run guest program: vCPU %u: unexpected MMIO %s at 0x%llx",
				   v->idx, run->mmio.is_write ? "write" : "read",
				   (unsigned long long)run->mmio.phys_addr);
			return -1;
		case KVM_EXIT_HLT:
			v->hlts++;
			if (!bsp && mode != KW_GUEST_DEMO) {
				park_until_abort(g);
				return 0;
			}
			if (mode == KW_GUEST_PIO || mode == KW_GUEST_MMIO)
				return 1;
			if (mode == KW_GUEST_HLT) {
				if (v->hlts >= g->o.count)
					return 1;
				continue;
			}
			if (mode == KW_GUEST_DEMO) {
				struct timespec ts = {
					.tv_sec = g->o.irq_period_us / 1000000u,
					.tv_nsec = (long)(g->o.irq_period_us % 1000000u) * 1000L,
				};
				if (atomic_load(&g->abort))
					return 0;
				nanosleep(&ts, NULL);
				continue;
			}
			guest_fail(g, "failed to run guest program: vCPU %u halted unexpectedly", v->idx);
			return -1;
		case KVM_EXIT_DIRTY_RING_FULL:
			if (mode == KW_GUEST_DIRTY && ring_harvest(v) >= 0)
				continue;
			if (mode != KW_GUEST_DIRTY)
				guest_fail(g, "failed to run guest program: vCPU %u: unexpected dirty ring full",
					   v->idx);
			return -1;
		case KVM_EXIT_INTR:
			continue;
		case KVM_EXIT_FAIL_ENTRY:
			guest_fail(g, "failed to enter vCPU %u: hardware entry failure reason 0x%llx",
				   v->idx, (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			return -1;
		case KVM_EXIT_INTERNAL_ERROR:
			guest_fail(g, "failed to run vCPU %u: KVM internal error, suberror %u",
				   v->idx, run->internal.suberror);
			return -1;
		case KVM_EXIT_SHUTDOWN:
			guest_fail(g, "failed to run vCPU %u: guest shutdown (triple fault)", v->idx);
			return -1;
		default:
			guest_fail(g, "failed to run vCPU %u: unexpected exit reason %u (%s)", v->idx,
				   run->exit_reason,
				   kw_kvm_uexit_name(run->exit_reason) ? kw_kvm_uexit_name(run->exit_reason) : "?");
			return -1;
		}
	}
}

static void *vcpu_thread(void *arg)
{
	struct kw_vcpu *v = arg;
	struct kw_guest *g = v->g;
	char name[16];
	enum phase ph;
	int rc;

	snprintf(name, sizeof(name), "CPU %u/KVM", v->idx);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	atomic_store(&v->tid, (pid_t)syscall(SYS_gettid));

	pthread_mutex_lock(&g->lock);
	g->threads_ready++;
	pthread_cond_broadcast(&g->cond);
	while (g->phase == PH_CREATED)
		pthread_cond_wait(&g->cond, &g->lock);
	ph = g->phase;
	pthread_mutex_unlock(&g->lock);
	if (ph != PH_RUNNING)
		return NULL;

	rc = vcpu_loop(v);

	pthread_mutex_lock(&g->lock);
	if (rc == 1 && v->idx == 0) {
		g->program_done = true;
		clock_gettime(CLOCK_MONOTONIC, &g->t_end);
	}
	g->vcpus_exited++;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Setup                                                                */
/* ------------------------------------------------------------------ */
static int set_cpuid(struct kw_guest *g, struct kw_vcpu *v, struct kvm_cpuid2 *cpuid,
		     char *err, size_t errlen)
{
	(void)g;
	if (ioctl(v->fd, KVM_SET_CPUID2, cpuid) < 0) {
		set_err(err, errlen, "failed to set CPUID of vCPU %u: %s", v->idx, strerror(errno));
		return -1;
	}
	return 0;
}

static struct kvm_cpuid2 *get_supported_cpuid(int kvm_fd, char *err, size_t errlen)
{
	for (unsigned n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c) {
			set_err(err, errlen, "failed to allocate CPUID table: %s", strerror(errno));
			return NULL;
		}
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG) {
			set_err(err, errlen, "failed to get supported CPUID: %s", strerror(errno));
			return NULL;
		}
	}
	set_err(err, errlen, "failed to get supported CPUID: %s", strerror(E2BIG));
	return NULL;
}

static void seg16(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->base = (uint64_t)sel << 4;
	s->limit = 0xffff;
	s->type = type;
	s->present = 1;
	s->s = 1;
}

static int setup_rm_vcpu(struct kw_guest *g, struct kw_vcpu *v, char *err, size_t errlen)
{
	struct kvm_sregs sr;
	struct kvm_regs r;
	int mode = g->o.mode;

	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0) {
		set_err(err, errlen, "failed to get sregs of vCPU %u: %s", v->idx, strerror(errno));
		return -1;
	}
	seg16(&sr.cs, 0, 0xb);
	seg16(&sr.ds, 0, 0x3);
	seg16(&sr.es, 0, 0x3);
	seg16(&sr.fs, 0, 0x3);
	seg16(&sr.gs, 0, 0x3);
	seg16(&sr.ss, 0, 0x3);
	sr.idt.base = 0;
	sr.idt.limit = 0x3ff;
	if (mode == KW_GUEST_IRQ_IOAPIC || mode == KW_GUEST_IRQ_MSI || mode == KW_GUEST_HALTPOLL)
		sr.apic_base = 0xfee00000ull | (1ull << 11) /* enable */ | (1ull << 10) /* x2APIC */ |
			       (v->idx == 0 ? (1ull << 8) : 0);
	if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0) {
		set_err(err, errlen, "failed to set sregs of vCPU %u: %s", v->idx, strerror(errno));
		return -1;
	}

	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rsp = RM_STACK;
	if (v->idx != 0 && mode != KW_GUEST_DEMO) {
		r.rip = RM_IP(kw_guest_rm_park);
	} else {
		switch (mode) {
		case KW_GUEST_PIO: r.rip = RM_IP(kw_guest_rm_pio); r.rcx = g->o.count; break;
		case KW_GUEST_MMIO: r.rip = RM_IP(kw_guest_rm_mmio); r.rcx = g->o.count; break;
		case KW_GUEST_HLT: r.rip = RM_IP(kw_guest_rm_hlt); break;
		case KW_GUEST_IRQ_PIC: r.rip = RM_IP(kw_guest_rm_irq); r.rsi = g->o.count; break;
		case KW_GUEST_IRQ_IOAPIC:
		case KW_GUEST_IRQ_MSI:
		case KW_GUEST_HALTPOLL:
			r.rip = RM_IP(kw_guest_rm_irq_x2apic); r.rsi = g->o.count; break;
		case KW_GUEST_DEMO: r.rip = RM_IP(kw_guest_rm_demo); r.rsi = g->o.count; break;
		default: break;
		}
	}
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0) {
		set_err(err, errlen, "failed to set registers of vCPU %u: %s", v->idx, strerror(errno));
		return -1;
	}
	return 0;
}

static void seg64(struct kvm_segment *s, uint16_t sel, uint8_t type, bool code)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = type;
	s->present = 1;
	s->dpl = 3;
	s->s = 1;
	s->l = code;
	s->db = !code;
	s->g = 1;
}

static int setup_lm_vcpu(struct kw_guest *g, struct kw_vcpu *v, char *err, size_t errlen)
{
	struct kvm_sregs sr;
	struct kvm_regs r;

	if (ioctl(v->fd, KVM_GET_SREGS, &sr) < 0) {
		set_err(err, errlen, "failed to get sregs of vCPU %u: %s", v->idx, strerror(errno));
		return -1;
	}
	seg64(&sr.cs, 0x2b, 0xb, true);
	seg64(&sr.ds, 0x23, 0x3, false);
	sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
	memset(&sr.tr, 0, sizeof(sr.tr));
	sr.tr.selector = 0x30;
	sr.tr.base = LM_TSS;
	sr.tr.limit = 0x68 + 8192;
	sr.tr.type = 0xb;
	sr.tr.present = 1;
	memset(&sr.ldt, 0, sizeof(sr.ldt));
	sr.ldt.unusable = 1;
	sr.gdt.base = LM_GDT;
	sr.gdt.limit = 8 * 8 - 1;
	sr.idt.base = 0;
	sr.idt.limit = 0;
	sr.cr3 = LM_PML4;
	sr.cr4 = 1u << 5;                               /* PAE */
	sr.cr0 = 0x80000000u | 0x10000u | 0x20u | 0x10u | 0x2u | 0x1u; /* PG WP NE ET MP PE */
	sr.efer = (1u << 8) | (1u << 10);               /* LME | LMA */
	if (ioctl(v->fd, KVM_SET_SREGS, &sr) < 0) {
		set_err(err, errlen, "failed to set sregs of vCPU %u: %s", v->idx, strerror(errno));
		return -1;
	}
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2 | (3u << 12);                    /* IOPL=3 */
	r.rsp = 0x3000;
	r.rip = LM_IP(kw_guest_lm_pages);
	if (v->idx == 0) {
		r.rdi = KW_GUEST_DATA_GPA;
		r.rcx = g->o.count;
	} else {
		/* extra vCPUs write no page and park at their "done" exit */
		r.rdi = KW_GUEST_DATA_GPA;
		r.rcx = 0;
	}
	if (ioctl(v->fd, KVM_SET_REGS, &r) < 0) {
		set_err(err, errlen, "failed to set registers of vCPU %u: %s", v->idx, strerror(errno));
		return -1;
	}
	return 0;
}

static void write_lm_tables(struct kw_guest *g)
{
	uint8_t *m = g->mem0;
	uint64_t *pml4 = (uint64_t *)(m + LM_PML4), *pdpt = (uint64_t *)(m + LM_PDPT);
	uint64_t *pd = (uint64_t *)(m + LM_PD), *gdt = (uint64_t *)(m + LM_GDT);
	const uint64_t f = 0x7;                 /* present, writable, user */
	size_t pages = g->mem1_size / 4096;

	pml4[0] = LM_PDPT | f;
	pdpt[0] = LM_PD | f;
	pd[0] = LM_PT0 | f;
	for (unsigned i = 0; i < 512; i++)
		((uint64_t *)(m + LM_PT0))[i] = ((uint64_t)i << 12) | f;
	for (size_t i = 0; i < pages; i++) {
		uint64_t *pt = (uint64_t *)(m + LM_PT_DATA + (i / 512) * 4096);

		if (i % 512 == 0)
			pd[1 + i / 512] = (LM_PT_DATA + (i / 512) * 4096) | f;
		pt[i % 512] = (KW_GUEST_DATA_GPA + i * 4096) | f;
	}
	/* GDT: 0 null, 1 kernel code64, 2 kernel data, 4 user data (0x23),
	 * 5 user code64 (0x2b), 6-7 TSS (0x30) */
	gdt[1] = 0x00af9b000000ffffull;
	gdt[2] = 0x00cf93000000ffffull;
	gdt[4] = 0x00cff3000000ffffull;
	gdt[5] = 0x00affb000000ffffull;
	gdt[6] = 0x0000890000002068ull | ((uint64_t)LM_TSS << 16);
	*(uint16_t *)(m + LM_TSS + 0x66) = 0x68;
	m[LM_TSS + 0x68 + 8192] = 0xff;
	gdt[7] = 0;
}

static void write_ivt(struct kw_guest *g)
{
	uint16_t *ivt = (uint16_t *)g->mem0;

	for (unsigned v = 0; v < 256; v++) {
		uint16_t ip = (uint16_t)RM_IP(kw_guest_rm_isr_bad);

		if (v == PIC_VECTOR && g->o.mode == KW_GUEST_IRQ_PIC)
			ip = (uint16_t)RM_IP(kw_guest_rm_isr_pic);
		if ((v == IOAPIC_VECTOR || v == MSI_VECTOR) && g->o.mode != KW_GUEST_IRQ_PIC)
			ip = (uint16_t)RM_IP(kw_guest_rm_isr_lapic);
		ivt[2 * v] = ip;
		ivt[2 * v + 1] = 0;
	}
}

/* The writer: another process that writes the irqfd once per command byte
 * and answers with one byte. */
static void writer_main(int efd, int cmd, int ack)
{
	char c;
	uint64_t one = 1;

	while (read(cmd, &c, 1) == 1) {
		if (write(efd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			c = 'E';
		if (write(ack, &c, 1) != 1)
			break;
	}
	_exit(0);
}

/* KVM_IRQFD for the mode's GSI (IOAPIC: its pin's default route; MSI: a
 * route of its own), written by a forked writer process. */
static int setup_irqfd(struct kw_guest *g, char *err, size_t errlen)
{
	struct kvm_irqfd irqfd = { 0 };
	int cmd[2], ack[2];

	if (g->o.mode != KW_GUEST_IRQ_IOAPIC && g->o.mode != KW_GUEST_IRQ_MSI) {
		set_err(err, errlen, "--irqfd needs mode irq-ioapic or irq-msi");
		return -1;
	}
	if (g->o.mode == KW_GUEST_IRQ_MSI) {
		struct {
			struct kvm_irq_routing r;
			struct kvm_irq_routing_entry e[1];
		} rt;

		memset(&rt, 0, sizeof(rt));
		rt.r.nr = 1;
		rt.e[0].gsi = KW_GUEST_MSI_GSI;
		rt.e[0].type = KVM_IRQ_ROUTING_MSI;
		rt.e[0].u.msi.address_lo = 0xfee00000u;
		rt.e[0].u.msi.data = MSI_VECTOR;
		if (ioctl(g->vm_fd, KVM_SET_GSI_ROUTING, &rt) < 0) {
			set_err(err, errlen, "failed to set the MSI route: %s", strerror(errno));
			return -1;
		}
	}
	g->irqfd = eventfd(0, EFD_CLOEXEC);
	if (g->irqfd < 0) {
		set_err(err, errlen, "failed to create the irqfd eventfd: %s", strerror(errno));
		return -1;
	}
	irqfd.fd = (uint32_t)g->irqfd;
	irqfd.gsi = g->o.mode == KW_GUEST_IRQ_MSI ? KW_GUEST_MSI_GSI : KW_GUEST_IOAPIC_GSI;
	if (ioctl(g->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		set_err(err, errlen, "KVM_IRQFD failed: %s", strerror(errno));
		return -1;
	}
	if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(ack, O_CLOEXEC) < 0) {
		set_err(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	g->writer = fork();
	if (g->writer < 0) {
		set_err(err, errlen, "failed to start the irqfd writer: %s", strerror(errno));
		return -1;
	}
	if (g->writer == 0) {
		close(cmd[1]);
		close(ack[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		writer_main(g->irqfd, cmd[0], ack[1]);
	}
	close(cmd[0]);
	close(ack[1]);
	g->wr_cmd = cmd[1];
	g->wr_ack = ack[0];
	return 0;
}

static int setup_irqchip(struct kw_guest *g, char *err, size_t errlen)
{
	struct kvm_irqchip chip;

	if (ioctl(g->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		set_err(err, errlen, "failed to create irqchip: %s", strerror(errno));
		return -1;
	}
	if (g->o.mode == KW_GUEST_IRQ_PIC) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = KVM_IRQCHIP_PIC_MASTER;
		if (ioctl(g->vm_fd, KVM_GET_IRQCHIP, &chip) < 0) {
			set_err(err, errlen, "failed to get PIC state: %s", strerror(errno));
			return -1;
		}
		chip.chip.pic.irq_base = PIC_VECTOR - KW_GUEST_PIC_GSI;
		chip.chip.pic.imr = (uint8_t)~(1u << KW_GUEST_PIC_GSI);
		chip.chip.pic.init_state = 0;
		chip.chip.pic.auto_eoi = 1;
		chip.chip.pic.elcr = 0;
		if (ioctl(g->vm_fd, KVM_SET_IRQCHIP, &chip) < 0) {
			set_err(err, errlen, "failed to set PIC state: %s", strerror(errno));
			return -1;
		}
	}
	if (g->o.mode == KW_GUEST_IRQ_IOAPIC) {
		memset(&chip, 0, sizeof(chip));
		chip.chip_id = KVM_IRQCHIP_IOAPIC;
		if (ioctl(g->vm_fd, KVM_GET_IRQCHIP, &chip) < 0) {
			set_err(err, errlen, "failed to get IOAPIC state: %s", strerror(errno));
			return -1;
		}
		/* fixed delivery, physical destination APIC 0, edge, unmasked */
		chip.chip.ioapic.redirtbl[KW_GUEST_IOAPIC_GSI].bits = IOAPIC_VECTOR;
		if (ioctl(g->vm_fd, KVM_SET_IRQCHIP, &chip) < 0) {
			set_err(err, errlen, "failed to set IOAPIC state: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int enable_cap(int fd, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap ec;

	memset(&ec, 0, sizeof(ec));
	ec.cap = cap;
	ec.args[0] = arg0;
	return ioctl(fd, KVM_ENABLE_CAP, &ec);
}

static void *map_mem(size_t size, const char *what, char *err, size_t errlen)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (p == MAP_FAILED) {
		set_err(err, errlen, "failed to map %s: %s", what, strerror(errno));
		return NULL;
	}
	return p;
}

static int set_slot(struct kw_guest *g, uint32_t slot, uint32_t flags, uint64_t gpa,
		    void *mem, size_t size, char *err, size_t errlen)
{
	struct kvm_userspace_memory_region mr = {
		.slot = slot, .flags = flags, .guest_phys_addr = gpa,
		.memory_size = size, .userspace_addr = (uint64_t)(uintptr_t)mem,
	};

	if (ioctl(g->vm_fd, KVM_SET_USER_MEMORY_REGION, &mr) < 0) {
		set_err(err, errlen, "failed to set memory slot %u: %s", slot, strerror(errno));
		return -1;
	}
	return 0;
}

static void kick_all(struct kw_guest *g)
{
	pthread_mutex_lock(&g->lock);
	atomic_store(&g->abort, 1);
	if (g->phase == PH_CREATED)
		g->phase = PH_ABORT;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	for (unsigned i = 0; i < g->nvcpus; i++) {
		struct kw_vcpu *v = &g->vcpus[i];

		if (!v->thr_started)
			continue;
		if (v->run)
			__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
		pthread_kill(v->thr, KW_GUEST_KICK_SIGNAL);
	}
}

void kw_guest_destroy(struct kw_guest *g)
{
	if (!g)
		return;
	if (g->sync_init && g->vcpus) {
		kick_all(g);
		for (unsigned i = 0; i < g->nvcpus; i++) {
			if (g->vcpus[i].thr_started) {
				pthread_join(g->vcpus[i].thr, NULL);
				g->vcpus[i].thr_started = false;
			}
		}
	}
	if (g->vcpus) {
		for (unsigned i = 0; i < g->nvcpus; i++) {
			struct kw_vcpu *v = &g->vcpus[i];

			stats_close(&v->stats);
			if (v->ring)
				munmap(v->ring, (size_t)g->ring_entries * sizeof(struct kvm_dirty_gfn));
			if (v->run)
				munmap(v->run, v->run_size);
			if (v->fd >= 0)
				close(v->fd);
		}
		free(g->vcpus);
	}
	stats_close(&g->vm_stats);
	if (g->wr_cmd >= 0)
		close(g->wr_cmd); /* the writer exits at EOF */
	if (g->wr_ack >= 0)
		close(g->wr_ack);
	if (g->writer > 0)
		waitpid(g->writer, NULL, 0);
	if (g->irqfd >= 0)
		close(g->irqfd);
	free(g->dirty_seen);
	if (g->vm_fd >= 0)
		close(g->vm_fd);
	if (g->kvm_fd >= 0)
		close(g->kvm_fd);
	if (g->mem0)
		munmap(g->mem0, g->mem0_size);
	if (g->mem1)
		munmap(g->mem1, g->mem1_size);
	if (g->sync_init) {
		pthread_mutex_destroy(&g->lock);
		pthread_cond_destroy(&g->cond);
	}
	free(g);
}

static int check_opts(struct kw_guest_opts *o, char *err, size_t errlen)
{
	if (o->mode < 0 || o->mode >= KW_GUEST_NR_MODES) {
		set_err(err, errlen, "failed to create guest: unknown mode %d", o->mode);
		return -1;
	}
	if (o->vcpus == 0)
		o->vcpus = 1;
	if (o->vcpus > KW_GUEST_MAX_VCPUS) {
		set_err(err, errlen, "failed to create guest: %u vCPUs (at most %u)", o->vcpus,
			KW_GUEST_MAX_VCPUS);
		return -1;
	}
	if ((o->mode == KW_GUEST_PAGES || o->mode == KW_GUEST_DIRTY) && o->count > KW_GUEST_MAX_PAGES) {
		set_err(err, errlen, "failed to create guest: %u pages (at most %u)", o->count,
			KW_GUEST_MAX_PAGES);
		return -1;
	}
	if (o->mode == KW_GUEST_HLT && o->count == 0) {
		set_err(err, errlen, "failed to create guest: hlt mode needs a count of at least 1");
		return -1;
	}
	if (o->mode == KW_GUEST_HALTPOLL && o->halt_poll_ns == KW_GUEST_HALT_POLL_UNSET)
		o->halt_poll_ns = 1000000;
	if (o->halt_poll_ns < KW_GUEST_HALT_POLL_UNSET || o->halt_poll_ns > 0xffffffffLL) {
		set_err(err, errlen, "failed to create guest: halt_poll_ns %lld out of range",
			o->halt_poll_ns);
		return -1;
	}
	if (o->mode == KW_GUEST_HALTPOLL && o->irq_period_us == 0)
		o->irq_period_us = 100;
	if (o->mode == KW_GUEST_DEMO) {
		if (o->irq_period_us == 0)
			o->irq_period_us = 2000;
		if (o->count == 0)
			o->count = 500;
	}
	if (o->timeout <= 0)
		o->timeout = 30;
	return 0;
}

struct kw_guest *kw_guest_create(const struct kw_guest_opts *opts, char *err, size_t errlen)
{
	struct kw_guest *g;
	struct kvm_cpuid2 *cpuid = NULL;
	int mode, r, run_size;

	pthread_once(&kick_once, kick_install);
	if (kick_errno) {
		set_err(err, errlen, "failed to install kick signal handler: %s", strerror(kick_errno));
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		set_err(err, errlen, "failed to allocate guest: %s", strerror(errno));
		return NULL;
	}
	g->o = *opts;
	g->kvm_fd = g->vm_fd = -1;
	g->irqfd = g->wr_cmd = g->wr_ack = -1;
	g->vm_stats.fd = -1;
	if (check_opts(&g->o, err, errlen) < 0)
		goto fail;
	mode = g->o.mode;
	g->lm = mode == KW_GUEST_PAGES || mode == KW_GUEST_DIRTY;
	g->irqchip = mode_is_irq(mode);

	if (pthread_mutex_init(&g->lock, NULL) != 0) {
		set_err(err, errlen, "failed to initialise mutex: %s", strerror(EAGAIN));
		goto fail;
	}
	if (pthread_cond_init(&g->cond, NULL) != 0) {
		pthread_mutex_destroy(&g->lock);
		set_err(err, errlen, "failed to initialise condition variable: %s", strerror(EAGAIN));
		goto fail;
	}
	g->sync_init = true;

	g->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (g->kvm_fd < 0) {
		set_err(err, errlen, "failed to open /dev/kvm: %s", strerror(errno));
		goto fail;
	}
	r = ioctl(g->kvm_fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		set_err(err, errlen, "failed to check KVM API version: %s",
			r < 0 ? strerror(errno) : "unexpected version");
		goto fail;
	}
	run_size = ioctl(g->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run)) {
		set_err(err, errlen, "failed to get vCPU mmap size: %s",
			run_size < 0 ? strerror(errno) : "too small");
		goto fail;
	}
	do
		g->vm_fd = ioctl(g->kvm_fd, KVM_CREATE_VM, 0);
	while (g->vm_fd < 0 && errno == EINTR);
	if (g->vm_fd < 0) {
		set_err(err, errlen, "failed to create VM: %s", strerror(errno));
		goto fail;
	}
	if (ioctl(g->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SET_TSS_ADDR) > 0 &&
	    ioctl(g->vm_fd, KVM_SET_TSS_ADDR, 0xfffbd000ul) < 0) {
		set_err(err, errlen, "failed to set TSS address: %s", strerror(errno));
		goto fail;
	}

	/* memory */
	g->mem0_size = g->lm ? LM_MEM_SIZE : RM_MEM_SIZE;
	g->mem0 = map_mem(g->mem0_size, "guest memory", err, errlen);
	if (!g->mem0)
		goto fail;
	if (g->lm) {
		memcpy(g->mem0 + LOAD_GPA, kw_guest_lm_blob, (size_t)(kw_guest_lm_end - kw_guest_lm_blob));
		g->mem1_size = (size_t)(g->o.count ? g->o.count : 1) * 4096;
		g->mem1 = map_mem(g->mem1_size, "guest data memory", err, errlen);
		if (!g->mem1)
			goto fail;
		write_lm_tables(g);
	} else {
		memcpy(g->mem0 + LOAD_GPA, kw_guest_rm_blob, (size_t)(kw_guest_rm_end - kw_guest_rm_blob));
		write_ivt(g);
	}
	if (set_slot(g, 0, 0, 0, g->mem0, g->mem0_size, err, errlen) < 0)
		goto fail;
	if (g->mem1 && set_slot(g, 1, mode == KW_GUEST_DIRTY ? KVM_MEM_LOG_DIRTY_PAGES : 0,
				KW_GUEST_DATA_GPA, g->mem1, g->mem1_size, err, errlen) < 0)
		goto fail;

	if (mode == KW_GUEST_DIRTY) {
		int max = ioctl(g->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DIRTY_LOG_RING);
		uint32_t bytes = 4096 * sizeof(struct kvm_dirty_gfn);

		/* room for every page plus KVM's reserved entries, so a run
		 * normally needs no mid-run reset (each reset re-protects the
		 * harvested pages, and the page being written may then be
		 * pushed twice) */
		while (bytes / sizeof(struct kvm_dirty_gfn) < (uint64_t)g->o.count + 1024 &&
		       bytes < (1u << 30))
			bytes *= 2;

		if (max <= 0) {
			set_err(err, errlen, "failed to enable dirty ring: %s",
				max < 0 ? strerror(errno) : "KVM_CAP_DIRTY_LOG_RING not supported");
			goto fail;
		}
		while (bytes > (uint32_t)max)
			bytes /= 2;
		g->ring_entries = bytes / sizeof(struct kvm_dirty_gfn);
		g->dirty_seen = calloc(g->mem1_size / 4096 / 8 + 1, 1);
		if (!g->dirty_seen) {
			set_err(err, errlen, "failed to allocate dirty page bitmap: %s", strerror(errno));
			goto fail;
		}
		if (enable_cap(g->vm_fd, KVM_CAP_DIRTY_LOG_RING, bytes) < 0) {
			set_err(err, errlen, "failed to enable dirty ring: %s", strerror(errno));
			goto fail;
		}
	}
	if (g->o.halt_poll_ns != KW_GUEST_HALT_POLL_UNSET) {
		if (ioctl(g->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_HALT_POLL) <= 0) {
			set_err(err, errlen, "failed to set halt polling: %s",
				"KVM_CAP_HALT_POLL not supported");
			goto fail;
		}
		if (enable_cap(g->vm_fd, KVM_CAP_HALT_POLL, (uint64_t)g->o.halt_poll_ns) < 0) {
			set_err(err, errlen, "failed to set halt polling: %s", strerror(errno));
			goto fail;
		}
	}
	if (g->irqchip && setup_irqchip(g, err, errlen) < 0)
		goto fail;
	if (g->o.irqfd && setup_irqfd(g, err, errlen) < 0)
		goto fail;
	if (stats_open(&g->vm_stats, g->vm_fd, "VM", err, errlen) < 0)
		goto fail;

	cpuid = get_supported_cpuid(g->kvm_fd, err, errlen);
	if (!cpuid)
		goto fail;

	/* vCPUs */
	g->vcpus = calloc(g->o.vcpus, sizeof(*g->vcpus));
	if (!g->vcpus) {
		set_err(err, errlen, "failed to allocate vCPUs: %s", strerror(errno));
		goto fail;
	}
	g->nvcpus = g->o.vcpus;
	for (unsigned i = 0; i < g->nvcpus; i++) {
		struct kw_vcpu *v = &g->vcpus[i];

		v->g = g;
		v->idx = i;
		v->fd = -1;
		v->stats.fd = -1;
		v->tid = -1;
	}
	for (unsigned i = 0; i < g->nvcpus; i++) {
		struct kw_vcpu *v = &g->vcpus[i];
		char what[32];

		v->fd = ioctl(g->vm_fd, KVM_CREATE_VCPU, (unsigned long)i);
		if (v->fd < 0) {
			set_err(err, errlen, "failed to create vCPU %u: %s", i, strerror(errno));
			goto fail;
		}
		v->run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
		if (v->run == MAP_FAILED) {
			v->run = NULL;
			set_err(err, errlen, "failed to map kvm_run of vCPU %u: %s", i, strerror(errno));
			goto fail;
		}
		v->run_size = (size_t)run_size;
		if (mode == KW_GUEST_DIRTY) {
			size_t bytes = (size_t)g->ring_entries * sizeof(struct kvm_dirty_gfn);
			void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd,
				       KVM_DIRTY_LOG_PAGE_OFFSET * sysconf(_SC_PAGESIZE));

			if (p == MAP_FAILED) {
				set_err(err, errlen, "failed to map dirty ring of vCPU %u: %s", i,
					strerror(errno));
				goto fail;
			}
			v->ring = p;
		}
		if (set_cpuid(g, v, cpuid, err, errlen) < 0)
			goto fail;
		if ((g->lm ? setup_lm_vcpu(g, v, err, errlen) : setup_rm_vcpu(g, v, err, errlen)) < 0)
			goto fail;
		snprintf(what, sizeof(what), "vCPU %u", i);
		if (stats_open(&v->stats, v->fd, what, err, errlen) < 0)
			goto fail;
		v->halt_idx = kw_kstats_find(&v->stats, "halt_exits");
	}
	free(cpuid);
	cpuid = NULL;

	/* threads, parked until kw_guest_start() */
	for (unsigned i = 0; i < g->nvcpus; i++) {
		struct kw_vcpu *v = &g->vcpus[i];

		r = pthread_create(&v->thr, NULL, vcpu_thread, v);
		if (r != 0) {
			set_err(err, errlen, "failed to create thread of vCPU %u: %s", i, strerror(r));
			goto fail;
		}
		v->thr_started = true;
	}
	pthread_mutex_lock(&g->lock);
	while (g->threads_ready < g->nvcpus)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	return g;
fail:
	free(cpuid);
	kw_guest_destroy(g);
	return NULL;
}

int kw_guest_start(struct kw_guest *g, char *err, size_t errlen)
{
	pthread_mutex_lock(&g->lock);
	if (g->phase != PH_CREATED) {
		pthread_mutex_unlock(&g->lock);
		set_err(err, errlen, "failed to start guest: %s", "already started or aborted");
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &g->t_start);
	g->phase = PH_RUNNING;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

static void add_ns(struct timespec *t, long long ns)
{
	t->tv_sec += ns / 1000000000LL;
	t->tv_nsec += ns % 1000000000LL;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static bool past(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Is the thread sleeping (blocked in kvm_vcpu_block)?  1 yes, 0 no, -1 error. */
static int thread_sleeping(pid_t tid)
{
	char path[64], buf[512];
	const char *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	p = strrchr(buf, ')');
	if (!p || !p[1] || !p[2])
		return -1;
	return p[2] == 'S';
}

/* Conditions the controller waits for; checked under no lock (atomics
 * and guest memory) with a short poll. */
static int wait_guest(struct kw_guest *g, uint64_t handled, uint64_t halts, bool blocked,
		      const struct timespec *deadline, char *err, size_t errlen)
{
	struct kw_vcpu *bsp = &g->vcpus[0];
	const volatile uint32_t *counter = (const volatile uint32_t *)(g->mem0 + RM_COUNTER);

	for (;;) {
		uint64_t h = 0;
		bool failed, done;

		pthread_mutex_lock(&g->lock);
		failed = g->failed;
		done = g->vcpus_exited > 0;
		pthread_mutex_unlock(&g->lock);
		if (failed)
			return -1;       /* message comes from g->fail_msg */
		if (done) {
			set_err(err, errlen, "failed to run guest program: vCPU thread ended early");
			return -1;
		}
		if (g->o.stop && *g->o.stop) {
			set_err(err, errlen, "failed to run guest program: %s", strerror(EINTR));
			return -1;
		}
		if (stats_read_one(&bsp->stats, bsp->halt_idx, &h) < 0) {
			set_err(err, errlen, "failed to read halt_exits of vCPU 0: %s", strerror(errno));
			return -1;
		}
		if (*counter >= handled && h >= halts) {
			int sl = blocked ? thread_sleeping(atomic_load(&bsp->tid)) : 1;

			if (sl < 0) {
				set_err(err, errlen, "failed to read state of vCPU 0 thread: %s",
					strerror(errno));
				return -1;
			}
			if (sl)
				return 0;
		}
		if (past(deadline)) {
			set_err(err, errlen, "failed to run guest program: %s (guest handled %u of %llu interrupts)",
				strerror(ETIMEDOUT), *counter, (unsigned long long)handled);
			return -1;
		}
		struct timespec ts = { 0, 20000 };
		nanosleep(&ts, NULL);
	}
}

static int inject(struct kw_guest *g, char *err, size_t errlen)
{
	int mode = g->o.mode;

	if (g->o.irqfd) {
		char c = 'w';

		if (write(g->wr_cmd, &c, 1) != 1 || read(g->wr_ack, &c, 1) != 1 || c != 'w') {
			set_err(err, errlen, "the irqfd writer failed");
			return -1;
		}
		return 0;
	}
	if (mode == KW_GUEST_IRQ_PIC || mode == KW_GUEST_IRQ_IOAPIC) {
		struct kvm_irq_level l = {
			.irq = mode == KW_GUEST_IRQ_PIC ? KW_GUEST_PIC_GSI : KW_GUEST_IOAPIC_GSI,
		};

		l.level = 1;
		if (ioctl(g->vm_fd, KVM_IRQ_LINE, &l) < 0)
			goto fail;
		l.level = 0;
		if (ioctl(g->vm_fd, KVM_IRQ_LINE, &l) < 0)
			goto fail;
		return 0;
	}
	struct kvm_msi msi = { .address_lo = 0xfee00000u, .data = MSI_VECTOR };
	int r = ioctl(g->vm_fd, KVM_SIGNAL_MSI, &msi);

	if (r < 0)
		goto fail;
	if (r == 0) {
		set_err(err, errlen, "failed to inject interrupt: MSI was not delivered");
		return -1;
	}
	return 0;
fail:
	set_err(err, errlen, "failed to inject interrupt: %s", strerror(errno));
	return -1;
}

static int drive(struct kw_guest *g, uint64_t *injected, char *err, size_t errlen)
{
	struct timespec deadline;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (g->o.mode == KW_GUEST_DEMO) {
		if (g->o.seconds > 0)
			add_ns(&deadline, (long long)(g->o.seconds * 1e9));
	} else {
		add_ns(&deadline, (long long)(g->o.timeout * 1e9));
	}

	if (mode_is_irq(g->o.mode)) {
		for (unsigned i = 0; i < g->o.count; i++) {
			/* the guest handled i interrupts and sits in its (i+1)-th
			 * hlt; outside HALTPOLL also wait until the vCPU thread is
			 * blocked (past halt polling), so each halt ends in exactly
			 * one wakeup: an interrupt that lands between the HLT and
			 * the block check cancels the halt, one that lands while
			 * polling ends it early */
			if (wait_guest(g, i, (uint64_t)i + 1, g->o.mode != KW_GUEST_HALTPOLL,
				       &deadline, err, errlen) < 0)
				return -1;
			if (g->o.mode == KW_GUEST_HALTPOLL) {
				struct timespec ts = { 0, (long)g->o.irq_period_us * 1000L };
				nanosleep(&ts, NULL);
			}
			if (inject(g, err, errlen) < 0)
				return -1;
			(*injected)++;
		}
	}

	pthread_mutex_lock(&g->lock);
	for (;;) {
		/* without an in-kernel irqchip the extra vCPUs reach a final
		 * HLT (or "done" out) exit: wait for it so their counts are
		 * deterministic; with one they block in KVM_RUN until kicked */
		if (g->failed ||
		    (g->program_done && (g->irqchip || g->parked + 1 >= g->nvcpus)))
			break;
		if (g->o.mode != KW_GUEST_DEMO && !g->program_done && g->vcpus_exited > 0)
			break;      /* the BSP ended without finishing */
		if (g->o.mode == KW_GUEST_DEMO && g->vcpus_exited == g->nvcpus)
			break;
		if (g->o.stop && *g->o.stop)
			break;
		if ((g->o.mode != KW_GUEST_DEMO || g->o.seconds > 0) && past(&deadline))
			break;
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		add_ns(&until, 50 * 1000000LL);  /* re-check *stop every 50 ms */
		pthread_cond_timedwait(&g->cond, &g->lock, &until);
	}
	bool failed = g->failed, done = g->program_done;
	pthread_mutex_unlock(&g->lock);
	if (failed)
		return -1;
	if (g->o.mode == KW_GUEST_DEMO) {
		clock_gettime(CLOCK_MONOTONIC, &g->t_end);
		return 0;
	}
	if (!done) {
		if (g->o.stop && *g->o.stop)
			set_err(err, errlen, "failed to run guest program: %s", strerror(EINTR));
		else if (past(&deadline))
			set_err(err, errlen, "failed to run guest program: %s", strerror(ETIMEDOUT));
		else
			set_err(err, errlen, "failed to run guest program: vCPU thread ended early");
		return -1;
	}
	return 0;
}

int kw_guest_wait(struct kw_guest *g, struct kw_guest_result *res, char *err, size_t errlen)
{
	uint64_t injected = 0;
	int rc;

	if (g->phase != PH_RUNNING) {
		set_err(err, errlen, "failed to wait for guest: %s", "not started");
		return -1;
	}
	rc = drive(g, &injected, err, errlen);
	kick_all(g);
	for (unsigned i = 0; i < g->nvcpus; i++) {
		if (g->vcpus[i].thr_started) {
			pthread_join(g->vcpus[i].thr, NULL);
			g->vcpus[i].thr_started = false;
		}
	}
	if (g->failed) {
		set_err(err, errlen, "%s", g->fail_msg);
		return -1;
	}
	if (rc < 0)
		return -1;

	memset(res, 0, sizeof(*res));
	res->mode = g->o.mode;
	res->count = g->o.count;
	res->vcpus = g->nvcpus;
	res->elapsed = ts_diff(&g->t_start, &g->t_end);
	res->pio_out = g->pio_out;
	res->mmio_write = g->mmio_write;
	res->irqs_injected = injected;
	res->irqfd_writer_pid = g->writer > 0 ? (int)g->writer : 0;
	res->irqs_handled = g->lm ? 0 : *(volatile uint32_t *)(g->mem0 + RM_COUNTER);
	res->dirty_harvested = g->dirty_harvested;
	res->dirty_resets = g->dirty_resets;
	res->dirty_pages = g->dirty_pages;
	res->dirty_ring_entries = g->ring_entries;
	res->halt_poll_ns = g->o.halt_poll_ns;
	if (stats_read(&g->vm_stats, &res->vm_stats) < 0) {
		set_err(err, errlen, "failed to read VM stats: %s", strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < g->nvcpus; i++) {
		struct kw_vcpu *v = &g->vcpus[i];
		struct kw_guest_vcpu_result *vr = &res->vcpu[i];

		vr->tid = atomic_load(&v->tid);
		vr->runs = v->runs;
		vr->eintr = v->eintr;
		memcpy(vr->exits, v->exits, sizeof(vr->exits));
		if (g->o.mode == KW_GUEST_DEMO)
			res->demo_loops += v->hlts;
		if (stats_read(&v->stats, &vr->stats) < 0) {
			set_err(err, errlen, "failed to read stats of vCPU %u: %s", i, strerror(errno));
			return -1;
		}
	}
	return 0;
}

