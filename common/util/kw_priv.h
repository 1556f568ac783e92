// SPDX-License-Identifier: GPL-2.0
/* kw_priv.h - least privilege: which capability serves which source, and
 * how kvmwatch uses privilege it holds (SECURITY.md).
 *
 * kvmwatch runs as root (CLI, collectd) or with file capabilities (netdata
 * plugin) and reads what unprivileged users control.  The rules here:
 *  - capabilities are checked by name, per source, from one table;
 *  - a path the caller chose (a config file) is opened with the caller's
 *    own rights, never with the capabilities given for collection;
 *  - environment variables that steer privileged work are read with
 *    secure_getenv (ignored when the binary runs with elevated rights). */
#ifndef KW_PRIV_H
#define KW_PRIV_H

#include <stddef.h>
#include <stdio.h>

/* Capabilities kvmwatch may use (linux/capability.h numbers). */
enum kw_cap {
	KW_CAP_DAC_READ_SEARCH = 2,
	KW_CAP_SYS_PTRACE = 19,
	KW_CAP_SYS_ADMIN = 21,
	KW_CAP_PERFMON = 38,
	KW_CAP_BPF = 39,
};

/* One row per use of privilege: what needs it, which capabilities (all of
 * them; alt: an older single capability that also does), and why. */
struct kw_priv_need {
	const char *what;          /* "kvmstat", "bpf", ... */
	int caps[2];               /* -1 terminated */
	int alt;                   /* -1: none */
	const char *why;
};

extern const struct kw_priv_need kw_priv_needs[];
extern const size_t kw_priv_nneeds;

/* The row for what, or NULL. */
const struct kw_priv_need *kw_priv_need(const char *what);

/* Running with more rights than the caller (setuid, file capabilities:
 * AT_SECURE)? */
int kw_priv_elevated(void);

/* Is cap in the effective set?  1, 0. */
int kw_priv_has(int cap);

/* 0 if what's capabilities are effective; else -EPERM and why is e.g.
 * "kvmstat needs CAP_SYS_PTRACE: reaching a VMM's KVM stats fds takes
 * pidfd_getfd (ptrace access to the VMM)". */
int kw_priv_check(const char *what, char *why, size_t len);

/* The capability's name ("CAP_SYS_PTRACE"). */
const char *kw_cap_name(int cap);

/* getenv for settings that steer privileged work: NULL when elevated. */
const char *kw_getenv(const char *name);

/* Open / fopen a path chosen by the caller with the caller's own rights:
 * effective capabilities are cleared (and the fs ids set to the real ids)
 * for the open, then restored.  -1/NULL with errno on failure. */
int kw_priv_open_as_caller(const char *path, int flags);
FILE *kw_priv_fopen_as_caller(const char *path, const char *mode);

/* Give up every capability for good (effective, permitted, inheritable,
 * ambient, and the bounding set where allowed).  0 or -errno. */
int kw_priv_drop_all(void);

/* Remove one capability from the effective and permitted sets for good.
 * 0 or -errno. */
int kw_priv_drop(int cap);

/* A filesystem root given by the caller (--procfs, NETDATA_HOST_PREFIX)
 * that a privileged process may read through: path resolves (as the
 * caller) to a mount of fstype (PROC_SUPER_MAGIC, ...) whose every
 * directory is root's and writable only by root.  0 with the resolved path
 * in canon, or -1 with why. */
int kw_priv_trusted_root(const char *path, long fstype, const char *fsname, char *canon, size_t len, char *why,
			 size_t wlen);

#endif
