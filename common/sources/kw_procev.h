// SPDX-License-Identifier: GPL-2.0
/* kw_procev.h - process creation, exec and exit events from the kernel's
 * proc connector (for the procfs source's discovery). */
#ifndef KW_PROCEV_H
#define KW_PROCEV_H

#include <stddef.h>
#include <sys/types.h>

struct kw_procev;

enum kw_procev_what {
	KW_PROCEV_NEW,   /* a process was created (fork) */
	KW_PROCEV_EXEC,  /* it runs a new program */
	KW_PROCEV_EXIT,  /* it exited */
};
typedef void (*kw_procev_fn)(pid_t pid, int what, void *arg);

/* Subscribe.  0, or -errno with why filled (no CAP_NET_ADMIN, not in the
 * initial namespaces, no connector). */
int kw_procev_open(struct kw_procev **out, char *why, size_t whylen);
/* Does it deliver events here?  0, or -ETIMEDOUT. */
int kw_procev_check(struct kw_procev *p, int timeout_ms);
/* Every queued event to fn, oldest first.  0; -ENOBUFS when some were lost
 * (the caller must look at every process again); -errno on failure. */
int kw_procev_drain(struct kw_procev *p, kw_procev_fn fn, void *arg);
void kw_procev_close(struct kw_procev *p);

#endif
