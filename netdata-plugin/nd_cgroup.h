// SPDX-License-Identifier: GPL-2.0
/* nd_cgroup.h - a VM's cgroup as netdata's cgroups.plugin names it, so that
 * kvmwatch's charts of a VM carry labels that join them with the
 * cgroup_<name>.* charts cgroups.plugin draws for the same VM.
 *
 * netdata 1.37's cgroups.plugin (collectors/cgroups.plugin/sys_fs_cgroup.c
 * and cgroup-name.sh):
 *   - reads cgroup v2 when <sysfs>/fs/cgroup is a cgroup2 file system, else
 *     the v1 cpuacct, blkio, memory and devices hierarchies (a path is one
 *     cgroup in all of them);
 *   - skips libvirt's sub-cgroups (enable patterns !*\/vcpu* !*\/emulator
 *     !*\/libvirt) and charts the VM's own cgroup above them;
 *   - turns the path into an id (leading '/' dropped, every byte but
 *     [a-z0-9._-] mapped like netdata_fix_chart_id: upper case folded,
 *     ',' -> '.', others -> '_'), renames it with cgroup-name.sh (libvirt
 *     with systemd: machine.slice_machine-qemu_x2dN_x2dNAME.scope ->
 *     qemu_NAME; libvirt without systemd: machine_qemu-N-NAME.libvirt-qemu
 *     -> qemu_qemu_N-NAME; Proxmox: qemu.slice_ID.scope -> qemu_<VM name>;
 *     any other cgroup keeps its id), fixes that again and turns '.' into
 *     '-': the chart id, charted as type cgroup_<id>, and from netdata 1.39
 *     on also the label cgroup_name=<id>. */
#ifndef ND_CGROUP_H
#define ND_CGROUP_H

#include <stddef.h>
#include <sys/types.h>

#define ND_CGROUP_MAX 256

/* 1 when <sysfs>/fs/cgroup is cgroup2 (netdata then reads v2 paths). */
int nd_cgroup_unified(const char *sysfs);

/* The cgroup of pid that cgroups.plugin charts for it, from
 * <procfs>/<pid>/cgroup, libvirt's trailing sub-cgroups (emulator, vcpuN,
 * iothreadN, libvirt) removed: the v2 line ("0::") when unified; else the
 * first of the v1 hierarchies cgroups.plugin walks (cpuacct, blkio, memory,
 * devices) where it is not "/" ("/" when it is in none; the "0::" line when
 * there is no v1 line at all).  Returns 0, or -errno (out = ""). */
int nd_cgroup_of_pid(const char *procfs, pid_t pid, int unified, char *out, size_t len);

/* cgroups.plugin's chart id for a cgroup path (see above); vm_name is used
 * for Proxmox (is_pve) cgroups.  "" for the root cgroup. */
void nd_cgroup_name(const char *path, const char *vm_name, int is_pve, char *out, size_t len);

#endif
