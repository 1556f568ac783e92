// SPDX-License-Identifier: GPL-2.0
/* kw_ignorelist.h - select or ignore names (VMs, interfaces, block devices)
 * with the semantics of collectd's utils/ignorelist: an entry is a literal
 * name or a POSIX extended regular expression written as "/regex/"; an empty
 * list selects everything; otherwise a name is collected when it matches an
 * entry, or, with ignore_selected set, when it matches none.
 *
 * collectd-dev ships only ignorelist.h: the implementation is linked into
 * each of collectd's own plugins and not exported by the daemon, so external
 * plugins cannot link it.  This is the same behaviour for kvmwatch. */
#ifndef KW_IGNORELIST_H
#define KW_IGNORELIST_H

#include <stddef.h>

struct kw_ignorelist;

struct kw_ignorelist *kw_ignorelist_create(int ignore_selected);
void kw_ignorelist_free(struct kw_ignorelist *il);
void kw_ignorelist_set_ignore_selected(struct kw_ignorelist *il, int ignore_selected);
/* Add a literal name or "/regex/".  Returns 0, -EINVAL (empty entry or a
 * regex that does not compile: err says why) or -ENOMEM. */
int kw_ignorelist_add(struct kw_ignorelist *il, const char *entry, char *err, size_t errlen);
size_t kw_ignorelist_count(const struct kw_ignorelist *il);
/* 1 when `name` is to be ignored, 0 when it is to be collected.  With
 * alt != NULL an entry matches when it matches either string (e.g. "tap0" and
 * "vm1:tap0").  An empty list ignores nothing. */
int kw_ignorelist_ignored(const struct kw_ignorelist *il, const char *name, const char *alt);

#endif
