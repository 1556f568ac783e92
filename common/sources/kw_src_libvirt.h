// SPDX-License-Identifier: GPL-2.0
/* kw_libvirt.h - the libvirt source's mapping of libvirt's typed parameters
 * to metric-table samples (exported for tests; the source itself is
 * kw_source_libvirt in kw_collector.h). */
#ifndef KW_LIBVIRT_H
#define KW_LIBVIRT_H

#include <libvirt/libvirt.h>

#include "core/kw_vm.h"

/* Map one virConnectGetAllDomainStats record's parameters (groups state,
 * cpu-total, balloon, vcpu, interface, block) into vm->stats, vm->state,
 * vm->netifs and vm->disks.  Rows that the procfs source also fills (net.*,
 * vcpu.delay, cpu.user/system, vm.vcpus) are only set when absent.  Returns
 * 0 or -ENOMEM. */
int kw_libvirt_map_stats(struct kw_vm *vm, const virTypedParameter *params, int nparams);
/* Map virDomainGetJobStats output (job type and parameters). */
int kw_libvirt_map_job(struct kw_vm *vm, int type, const virTypedParameter *params, int nparams);
/* Map virDomainMemoryStats output (drivers whose bulk stats lack balloon.*). */
int kw_libvirt_map_memstats(struct kw_vm *vm, const virDomainMemoryStatStruct *st, int n);
/* "running", "paused", ... for a virDomainState value. */
const char *kw_libvirt_state_name(int state);

#endif
