"""How VMs appear and disappear on a real host: a running kvmwatch (one
report every 0.3 s) and real KVM guests started, exec'd, created late and
killed around it -- with the kernel's process events (the proc connector,
the default as root) and with the /proc walk they replace
(KVMWATCH_PROC_EVENTS=0).  Each way a VM appears is found within a cycle or
two; pid reuse never mixes two processes."""
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import needs_kvm, needs_root
from kwtest import KVMGUEST, KVMWATCH, Guest

pytestmark = [needs_kvm, needs_root]
INTERVAL = 0.3


class Watch:
    """kvmwatch -o json --no-host INTERVAL, its reports read as they come."""

    def __init__(self, events=True, recheck=None):
        env = dict(os.environ, KVMWATCH_PROC_EVENTS="1" if events else "0")
        if recheck is not None:
            env["KVMWATCH_RECHECK_S"] = str(recheck)
        self.p = subprocess.Popen([KVMWATCH, "-v", "-o", "json", "--no-host", str(INTERVAL)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.err = ""

    def report(self, timeout=5.0):
        r, _, _ = select.select([self.p.stdout], [], [], timeout)
        assert r, "no report within %.1f s" % timeout
        line = self.p.stdout.readline()
        assert line, "kvmwatch ended: " + self.p.stderr.read()
        return json.loads(line)

    def wait_for(self, cond, cycles=3):
        """cond(report) within `cycles` reports made from now on (reports
        already waiting in the pipe are older); returns that report."""
        t0 = time.time()
        n = 0
        while n < cycles:
            rep = self.report()
            if rep["time"] < t0:
                continue
            n += 1
            if cond(rep):
                return rep
        raise AssertionError("not within %d cycles: %s" % (cycles, rep))

    def now(self):
        """The first report made from now on."""
        return self.wait_for(lambda r: True, cycles=1)

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                _, self.err = self.p.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                _, self.err = self.p.communicate()
        return self.err

    def __enter__(self):
        self.report()  # the first cycle (a full walk) is done
        return self

    def __exit__(self, *exc):
        self.stop()


def pids(rep):
    return {v["pid"] for v in rep["vms"]}


def names(rep):
    return {v["name"] for v in rep["vms"]}


@pytest.mark.parametrize("events", [True, False], ids=["events", "walk"])
def test_vm_started_and_stopped(events):
    with Watch(events) as w:
        with Guest("demo", name="kwdisc-start-%d" % os.getpid(), wait=False, extra=["--seconds", "30"]) as g:
            w.wait_for(lambda r: g.pid in pids(r), cycles=3)
            g.kill()
            w.wait_for(lambda r: g.pid not in pids(r), cycles=3)
    if events:
        assert "process events (proc connector)" in w.err


@pytest.mark.parametrize("events", [True, False], ids=["events", "walk"])
def test_old_process_that_execs_a_vmm(events):
    """A process older than the re-check window (1 s here) that execs a VMM
    later -- what libvirt's forked child does -- is found at once."""
    name = "kwdisc-exec-%d" % os.getpid()
    sh = subprocess.Popen(["sh", "-c", 'read x; exec "$0" "$@"', KVMGUEST, "-name", "guest=%s" % name,
                           "--mode", "demo", "--seconds", "30"],
                          stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        with Watch(events, recheck=1) as w:
            time.sleep(1.5)   # kvmwatch has seen sh, and it is old now
            assert name not in names(w.now())
            sh.stdin.write("go\n")
            sh.stdin.flush()
            rep = w.wait_for(lambda r: name in names(r), cycles=3)
            assert [v["pid"] for v in rep["vms"] if v["name"] == name] == [sh.pid]
    finally:
        sh.kill()
        sh.wait()


KVM_CREATE_VM = 0xAE01


def test_vmm_that_creates_its_vm_late_is_found_by_its_kvm_fd():
    """No exec, no QEMU name: a process that opens /dev/kvm and creates a VM
    a second after it started is found by the VM fd it holds."""
    code = ("import fcntl, os, sys, time\n"
            "kvm = os.open('/dev/kvm', os.O_RDWR)\n"
            "sys.stdin.readline()\n"
            "vm = fcntl.ioctl(kvm, %d, 0)\n"
            "print('vm', vm, flush=True)\n"
            "sys.stdin.readline()\n" % KVM_CREATE_VM)
    p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        with Watch(True) as w:
            assert p.pid not in pids(w.now())
            p.stdin.write("\n")
            p.stdin.flush()
            assert p.stdout.readline().startswith("vm ")
            rep = w.wait_for(lambda r: p.pid in pids(r), cycles=3)
            vm = [v for v in rep["vms"] if v["pid"] == p.pid][0]
            assert "kvmfd" in vm["found"]
    finally:
        p.kill()
        p.wait()


def spawn_with_pid(want, args, **kw):
    """Start args as pid `want` (ns_last_pid; other forks on the host may
    win the race: a few tries)."""
    for _ in range(20):
        with open("/proc/sys/kernel/ns_last_pid", "w") as f:
            f.write(str(want - 1))
        p = subprocess.Popen(args, **kw)
        if p.pid == want:
            return p
        p.kill()
        p.wait()
    pytest.skip("could not get pid %d back (the host forks too much)" % want)


@pytest.mark.parametrize("events", [True, False], ids=["events", "walk"])
def test_pid_reuse(events):
    """A VM's pid taken by another process, then by another VM: the first is
    gone, the sleeper is no VM, the second VM is a new one."""
    n1, n2 = "kwdisc-reuse1-%d" % os.getpid(), "kwdisc-reuse2-%d" % os.getpid()
    with Watch(events) as w:
        g1 = subprocess.Popen([KVMGUEST, "-name", "guest=" + n1, "--mode", "demo", "--seconds", "30"],
                              stdout=subprocess.DEVNULL)
        pid = g1.pid
        w.wait_for(lambda r: n1 in names(r), cycles=3)
        g1.kill()
        g1.wait()
        sleeper = spawn_with_pid(pid, ["sleep", "30"])
        try:
            rep = w.wait_for(lambda r: n1 not in names(r), cycles=3)
            assert pid not in pids(rep)
            assert pid not in pids(w.now())
        finally:
            sleeper.kill()
            sleeper.wait()
        g2 = spawn_with_pid(pid, [KVMGUEST, "-name", "guest=" + n2, "--mode", "demo", "--seconds", "30"],
                            stdout=subprocess.DEVNULL)
        try:
            rep = w.wait_for(lambda r: n2 in names(r), cycles=3)
            assert [v["name"] for v in rep["vms"] if v["pid"] == pid] == [n2]
        finally:
            g2.kill()
            g2.wait()
