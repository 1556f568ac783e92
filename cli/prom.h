// SPDX-License-Identifier: GPL-2.0
/* prom.h - the Prometheus text exposition of one cycle (prom.c). */
#ifndef KW_CLI_PROM_H
#define KW_CLI_PROM_H

#include <stdio.h>

#include "bg.h"

/* Write every VM's and the host's samples, the sources' states and the
 * cycle's duration (cycle_s < 0: not known).  0, -ENOMEM or -EIO. */
int cli_prom_write(FILE *f, const struct kw_vmtable *vms, const struct kw_sampleset *host,
		   const struct cli_src *src, double cycle_s);

#endif
