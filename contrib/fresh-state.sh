#!/usr/bin/env bash
# Put this machine in the state a fresh one has (LAB.md), so that a green
# test run here means a green run on a fresh machine: tracefs unmounted,
# /dev/kvm root:root 0600 (no udev rule), and none of the daemons or
# programs the tests start left running.  Run as root; CI runs it before
# every test run.
set -uo pipefail
for d in /sys/kernel/debug/tracing /sys/kernel/tracing; do
  while mountpoint -q "$d"; do umount "$d" 2>/dev/null || umount -l "$d" || break; done
done
if [ -c /dev/kvm ]; then
  chown root:root /dev/kvm && chmod 0600 /dev/kvm
fi
# what the tests and the demo start (daemons run in the foreground, by pid)
names=(kvmwatch kvmwatch.plugin kvmguest kwqmptest fakeqemu collectd netdata libvirtd virtlogd virtqemud qemu-system-x86_64 prometheus)
# the tests' private tmux servers (tests/lib/tmuxterm.py: sockets kwtest-*)
for s in /tmp/tmux-"$(id -u)"/kwtest-* /tmp/tmux-"$(id -u)"/kwbench-*; do
  [ -S "$s" ] && tmux -S "$s" kill-server 2>/dev/null
  rm -f "$s"
done
for sig in TERM KILL; do
  for n in "${names[@]}"; do pkill -"$sig" -x "${n:0:15}" 2>/dev/null; done
  sleep 0.5
done
for n in "${names[@]}"; do
  pgrep -x -l "${n:0:15}" >&2 && echo "fresh-state: $n still running" >&2
done
echo "fresh-state: tracefs unmounted, /dev/kvm $(stat -c '%U:%G %a' /dev/kvm 2>/dev/null || echo absent), test daemons stopped"
exit 0
