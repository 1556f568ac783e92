// SPDX-License-Identifier: GPL-2.0
/* kw_sources.h - the collector's sources, one per file in this folder, in
 * the order the collector runs them (core/kw_collector.c).  Only the
 * collector refers to them: front ends ask the collector. */
#ifndef KW_SOURCES_H
#define KW_SOURCES_H

#include "core/kw_collector.h"

extern const struct kw_source_ops kw_source_procfs;   /* kw_src_procfs.c */
extern const struct kw_source_ops kw_source_libvirt;  /* kw_src_libvirt.c */
extern const struct kw_source_ops kw_source_kvmstat;  /* kw_src_kvmstat.c */
extern const struct kw_source_ops kw_source_bpf;      /* kw_src_bpf.c */
extern const struct kw_source_ops kw_source_qmp;      /* kw_src_qmp.c */


#endif
