"""What procfs keeps of a VM between cycles on the host's /proc (its files
open and read with pread, the fd table and threads scanned again only when
they may have changed): a tap fd added to a running VM, a tap swapped in
for another fd (same fd count), a vCPU thread that ends and is replaced
(same thread count) -- each found within the documented bound, with the
same exact values as without kept files (KVMWATCH_KEEP_FDS=0)."""
import json
import os
import select
import subprocess
import sys
import time

import pytest

from conftest import needs_root
from kwtest import KVMWATCH, find_vm

pytestmark = [needs_root]
INTERVAL = 0.2

# A QEMU look-alike (argv[0] qemu-system-x86_64) with two vCPU threads that
# does what stdin says: "tap NAME" opens a tap (a new fd), "swaptap NAME"
# puts a tap on an fd number already open (the fd count stays), "vcpu N"
# ends the thread "CPU N/KVM" and starts another of that name.
VMM = r"""
import ctypes, fcntl, os, struct, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
def named(name, ready, stop):
    libc.prctl(15, name.encode(), 0, 0, 0)
    ready.set()
    stop.wait()
vcpus = {}
def start(i):
    ev, ready = threading.Event(), threading.Event()
    t = threading.Thread(target=named, args=("CPU %d/KVM" % i, ready, ev))
    t.start()
    ready.wait()                 # named before anyone looks
    vcpus[i] = (t, ev)
for i in range(2):
    start(i)
spare = os.open("/dev/null", os.O_RDONLY)
def tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", name.encode(), 0x0002 | 0x1000))
    return fd
held = []
print("ready", flush=True)
for line in sys.stdin:
    cmd, arg = line.split()
    if cmd == "tap":
        held.append(tap(arg))
    elif cmd == "swaptap":
        fd = tap(arg)
        os.dup2(fd, spare)
        os.close(fd)
    elif cmd == "vcpu":
        t, ev = vcpus.pop(int(arg))
        ev.set()
        t.join()
        start(int(arg))
    tids = {}
    for tid in os.listdir("/proc/self/task"):
        with open("/proc/self/task/%s/comm" % tid) as f:
            tids[f.read().strip()] = int(tid)
    print(" ".join("%s=%d" % (k.replace(" ", "_"), v) for k, v in tids.items()), flush=True)
"""


class Watch:
    def __init__(self, name, **env):
        e = dict(os.environ, **{k: str(v) for k, v in env.items()})
        self.p = subprocess.Popen([KVMWATCH, "-o", "json", "--no-host", "-p", name, str(INTERVAL)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e)

    def report(self, timeout=5.0):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert r, "no report within %.1f s" % timeout
        line = self.p.stdout.readline()
        assert line, "kvmwatch ended: " + self.p.stderr.read()
        return json.loads(line)

    def wait_vm(self, name, cond, cycles):
        """cond(vm) within `cycles` reports made from now on."""
        t0, n, vm = time.time(), 0, None
        while n < cycles:
            rep = self.report()
            if rep["time"] < t0:
                continue
            n += 1
            vm = find_vm(rep, name)
            if vm and cond(vm):
                return vm, n
        raise AssertionError("not within %d cycles: %s" % (cycles, vm))

    def stop(self):
        self.p.kill()
        self.p.wait()


class Vmm:
    def __init__(self, tmp_path, name):
        script = tmp_path / "vmm.py"
        script.write_text(VMM)
        self.name = name
        self.p = subprocess.Popen(["qemu-system-x86_64", str(script), "-name", "guest=" + name],
                                  executable=sys.executable, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  text=True)
        assert self.p.stdout.readline().strip() == "ready"

    def do(self, cmd):
        self.p.stdin.write(cmd + "\n")
        self.p.stdin.flush()
        return dict(kv.rsplit("=", 1) for kv in self.p.stdout.readline().split())

    def stop(self):
        self.p.kill()
        self.p.wait()


def schedstat(pid, tid):
    with open("/proc/%d/task/%d/schedstat" % (pid, tid)) as f:
        return [int(x) for x in f.read().split()]


@pytest.fixture
def vmm(tmp_path):
    v = Vmm(tmp_path, "kwtest-cache-%d" % os.getpid())
    yield v
    v.stop()


@pytest.mark.parametrize("keep", ["default", "0"])
def test_tap_added_to_running_vm(vmm, keep):
    """A new tap fd changes the fd count: found the next cycle, with the
    periodic rescan out of the way (KVMWATCH_RESCAN_CYCLES=100000)."""
    env = {"KVMWATCH_RESCAN_CYCLES": 100000}
    if keep != "default":
        env["KVMWATCH_KEEP_FDS"] = keep
    w = Watch(vmm.name, **env)
    tap = "kwtc%d" % (os.getpid() % 100000)
    try:
        vm, _ = w.wait_vm(vmm.name, lambda v: v.get("vcpus") == 2, 10)
        assert tap not in vm["metrics"].get("net.rx_bytes", {})
        for _ in range(3):
            w.report()                 # several cycles with the fd table unchanged
        vmm.do("tap " + tap)
        vm, n = w.wait_vm(vmm.name, lambda v: tap in v["metrics"].get("net.rx_bytes", {}), 3)
        assert vm["metrics"]["net.rx_bytes"][tap] == 0
    finally:
        w.stop()


def test_tap_swapped_in_found_within_rescan(vmm):
    """A tap put on an fd number already open (the fd count stays): found
    by the periodic rescan, within KVMWATCH_RESCAN_CYCLES cycles."""
    w = Watch(vmm.name, KVMWATCH_RESCAN_CYCLES=4)
    tap = "kwts%d" % (os.getpid() % 100000)
    try:
        w.wait_vm(vmm.name, lambda v: v.get("vcpus") == 2, 10)
        vmm.do("swaptap " + tap)
        w.wait_vm(vmm.name, lambda v: tap in v["metrics"].get("net.rx_bytes", {}), 4 + 2)
    finally:
        w.stop()


@pytest.mark.parametrize("keep", ["default", "0"])
def test_vcpu_thread_replaced(vmm, keep):
    """A vCPU thread ends and another of the same name starts (the thread
    count stays): its row follows the new thread the next cycle or the one
    after (the old thread's file fails, the threads are scanned again),
    with the new thread's exact schedstat; no periodic rescan needed."""
    env = {"KVMWATCH_RESCAN_CYCLES": 100000}
    if keep != "default":
        env["KVMWATCH_KEEP_FDS"] = keep
    w = Watch(vmm.name, **env)
    try:
        w.wait_vm(vmm.name, lambda v: v.get("vcpus") == 2, 10)
        for _ in range(2):
            w.report()
        tids = vmm.do("vcpu 1")
        new = int(tids["CPU_1/KVM"])
        run, delay, _ = schedstat(vmm.p.pid, new)   # asleep from now on: the counters stand still
        time.sleep(0.05)
        assert schedstat(vmm.p.pid, new)[:2] == [run, delay]
        vm, _ = w.wait_vm(vmm.name, lambda v: v["metrics"]["vcpu.run"].get("1") == run, 3)
        assert vm["metrics"]["vcpu.delay"]["1"] == delay
        assert vm["vcpus"] == 2 and vm["metrics"]["vm.vcpus"] == 2
        t0 = int(tids["CPU_0/KVM"])
        assert vm["metrics"]["vcpu.run"]["0"] == schedstat(vmm.p.pid, t0)[0]
    finally:
        w.stop()


def test_no_swap_values_equal_status(vmm):
    """Without swap devices VmSwap is 0 and status is not read: the RSS
    from stat is the same count as status's VmRSS."""
    with open("/proc/swaps") as f:
        if len(f.read().splitlines()) > 1:
            pytest.skip("this host has swap devices")
    w = Watch(vmm.name)
    try:
        vm, _ = w.wait_vm(vmm.name, lambda v: v.get("vcpus") == 2, 10)
        with open("/proc/%d/status" % vmm.p.pid) as f:
            st = dict(l.split(":", 1) for l in f.read().splitlines())
        assert vm["metrics"]["mem.swap"] == 0
        assert vm["metrics"]["mem.rss"] == int(st["VmRSS"].split()[0]) * 1024
    finally:
        w.stop()
