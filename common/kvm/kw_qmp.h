// SPDX-License-Identifier: GPL-2.0
/* kw_qmp.h - a minimal QMP (QEMU Machine Protocol) client.
 *
 * The QMP source (sources/kw_src_qmp.c, KW_SRC_QMP) reaches QEMU VMs that no libvirt
 * manages (plain QEMU, Proxmox VE) over the QMP server socket named on their
 * command line (kw_vm.qmp): per cycle and VM one short session -
 * connect, greeting, qmp_capabilities, query-status, query-block,
 * query-blockstats, query-balloon, query-memory-size-summary and, when the
 * kvmstat source read nothing for the VM, query-stats - then disconnect.
 * Rows: metrics_qmp.def plus the shared disk/memory/KVM rows. */
#ifndef KW_QMP_H
#define KW_QMP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "kvm/kw_json.h"

/* Limits of one session. */
#define KW_QMP_GREETING_MS 250      /* a monitor busy with another client never greets */
#define KW_QMP_SESSION_MS 1500      /* everything else, per VM (one session on its own) */
#define KW_QMP_CYCLE_MS 500         /* the collector's budget: every monitor is asked at once */
#define KW_QMP_MAX_MSG (4u << 20)   /* one reply, bytes */
#define KW_QMP_MAX_TOKENS 262144    /* JSON values in one reply */
#define KW_QMP_MAX_DEPTH 32

/* How a connection attempt or exchange failed (besides 0 = fine). */
enum kw_qmp_status {
	KW_QMP_OK = 0,
	KW_QMP_BUSY,        /* connect backlog full, or no greeting in time: another client holds it */
	KW_QMP_NOSOCK,      /* no socket there, or nobody listening (ENOENT, ECONNREFUSED, ...) */
	KW_QMP_DENIED,      /* EACCES/EPERM: not allowed to connect */
	KW_QMP_NOTOURS,     /* not a socket the VM's own process listens on */
	KW_QMP_LIBVIRT,     /* the path leads to a libvirt monitor: libvirtd's, not asked */
	KW_QMP_TIMEOUT,     /* no (complete) reply in time */
	KW_QMP_PROTO,       /* malformed, truncated, oversized or unexpected message; closed early */
	KW_QMP_ERROR,       /* the command answered {"error": ...}: skip that query */
	KW_QMP_NOMEM,
};

struct kw_qmp {
	int fd;
	char *buf;                   /* received, not yet consumed */
	size_t len, cap;
	size_t msg_len;              /* bytes of the message the tokens describe */
	uint64_t deadline_ns;        /* CLOCK_MONOTONIC */
	unsigned id;                 /* last command id */
	struct kw_json j;            /* the current message */
	int ret;                     /* its "return" token (or the greeting's "QMP") */
	char eclass[48];             /* KW_QMP_ERROR: error class (CommandNotFound, ...) */
	char err[256];               /* why, for messages */
};

/* Connect to the QMP socket at path (relative paths: to pid's working
 * directory), check that pid listens on it (SO_PEERCRED; pid <= 0: no check),
 * read the greeting and negotiate capabilities.  Returns enum kw_qmp_status;
 * on failure q is closed.  procfs is the /proc root for relative paths. */
/* path without "//" and "/./"; -EINVAL if it has ".." (where that leads
 * depends on symlinks), -ENAMETOOLONG.  Filters match normalised paths. */
int kw_qmp_normalize(char *out, size_t len, const char *path);

int kw_qmp_open(struct kw_qmp *q, const char *procfs, const char *path, pid_t pid, unsigned greeting_ms,
		unsigned session_ms);
/* Run one command (args: a JSON object text or NULL).  KW_QMP_OK: q->ret is
 * the "return" value's token in q->j (valid until the next call);
 * KW_QMP_ERROR: q->eclass / q->err say why, the session goes on; anything
 * else ends the session. */
int kw_qmp_cmd(struct kw_qmp *q, const char *cmd, const char *args);
void kw_qmp_close(struct kw_qmp *q);

/* Is path (normalised, or canonical) a socket of libvirt's?  libvirtd holds
 * those monitors for itself: never asked. */
int kw_qmp_libvirt_socket(const char *path);
/* Can sock_diag look up Unix sockets by inode here (CONFIG_UNIX_DIAG)?
 * Asked about a listening socket of our own.  0 or -errno. */
int kw_qmp_diag_works(void);

#endif
