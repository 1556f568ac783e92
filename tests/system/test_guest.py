"""The project's own KVM guests: exact counts from the guest's own view
(KVM_RUN exit reasons, vCPU binary stats) checked against the kernel's
tracepoints, plus the tiny multiboot kernel under real QEMU.

Counts verified on the PVM lab machines (see /work/shared/LAB.md)."""
import json
import os
import re
import select
import shutil
import subprocess
import time

import pytest

from conftest import build_path, needs_kvm, needs_root, needs_binary
from kwtrace import Tracer, tasks_of

KVMGUEST = build_path("tests", "kvmguest")
TINY_KERNEL = build_path("tests", "tiny-kernel.elf")
PVM = os.path.exists("/sys/module/kvm_pvm")
PIO_PORT = 0x700
MMIO_GPA = 0x10000

pytestmark = [needs_kvm]


def run_guest(args, events=(), filters=None, timeout=60):
    """Run kvmguest with --wait-stdin; trace `events` for its threads only
    (set_event_pid is written before the guest starts).  Returns (result, counts)."""
    p = subprocess.Popen([KVMGUEST, "--wait-stdin", "--timeout", "20", *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    tracer = None
    try:
        line = p.stdout.readline()
        assert line.startswith("ready "), (line, p.stderr.read())
        pid = int(line.split()[1])
        assert pid == p.pid
        if events:
            tracer = Tracer(events, filters)
            tracer.set_pids(tasks_of(pid))
            tracer.enable()
        p.stdin.write("go\n")
        p.stdin.flush()
        out = p.stdout.readline()
        p.stdin.close()
        rc = p.wait(timeout)
        err = p.stderr.read()
        assert rc == 0, err
        assert err == ""
        res = json.loads(out)
        counts = {}
        if tracer:
            counts = tracer.counts()
            assert tracer.lost() == 0
        return res, counts
    finally:
        if tracer:
            tracer.close()
        if p.poll() is None:
            p.kill()
            p.wait()


def vcpu0(res):
    return res["vcpu"][0]


def stats0(res):
    return res["vcpu"][0]["stats"]


def exits0(res):
    return res["vcpu"][0]["exits"]


# --- guest's own view, no tracing (root not needed) -------------------------

def test_pio_own_view():
    n = 10
    res, _ = run_guest(["--mode", "pio", "--count", str(n)])
    assert exits0(res) == {"io": n, "hlt": 1}
    assert vcpu0(res)["runs"] == n + 1
    assert res["pio_out"] == n
    st = stats0(res)
    assert st["exits"] == n + 1
    assert st["halt_exits"] == 1
    # PVM emulates every real-mode instruction: the `out`s reach user space
    # through the emulator and never count as io_exits.
    assert st["io_exits"] == (0 if PVM else n)


def test_mmio_own_view():
    n = 10
    res, _ = run_guest(["--mode", "mmio", "--count", str(n)])
    assert exits0(res) == {"mmio": n, "hlt": 1}
    assert res["mmio_write"] == n
    assert stats0(res)["mmio_exits"] == n
    assert stats0(res)["exits"] == n + 1


def test_many_pio_and_zero():
    res, _ = run_guest(["--mode", "pio", "--count", "1000"])
    assert exits0(res) == {"io": 1000, "hlt": 1}
    res, _ = run_guest(["--mode", "pio", "--count", "0"])
    assert exits0(res) == {"hlt": 1}


def test_vcpu_threads_identity_and_hold():
    """QEMU-like identity: `CPU n/KVM` threads, -name/-uuid on the command
    line, VM and vCPU fds kept open during --hold until stdin EOF."""
    uuid = "5b1d6c1e-0000-4000-8000-00000000c0de"
    p = subprocess.Popen([KVMGUEST, "-name", "guest=kwtest,debug-threads=on", "-uuid", uuid,
                          "--mode", "hlt", "--count", "3", "--vcpus", "3", "--wait-stdin",
                          "--hold", "30"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        line = p.stdout.readline()
        assert line == f"ready {p.pid}\n"
        comms = {}
        for tid in tasks_of(p.pid):
            with open(f"/proc/{p.pid}/task/{tid}/comm") as f:
                comms[tid] = f.read().strip()
        assert comms[p.pid] == "kvmguest"          # never a vCPU on the main thread
        vcpu_tids = {t: c for t, c in comms.items() if c.endswith("/KVM")}
        assert sorted(vcpu_tids.values()) == ["CPU 0/KVM", "CPU 1/KVM", "CPU 2/KVM"]
        with open(f"/proc/{p.pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert argv[argv.index(b"-name") + 1] == b"guest=kwtest,debug-threads=on"
        assert argv[argv.index(b"-uuid") + 1] == uuid.encode()

        p.stdin.write("go\n")
        p.stdin.flush()
        res = json.loads(p.stdout.readline())
        assert res["pid"] == p.pid and res["vcpus"] == 3
        assert {v["tid"] for v in res["vcpu"]} == set(vcpu_tids)
        assert exits0(res) == {"hlt": 3}
        for v in res["vcpu"][1:]:
            assert v["exits"] == {"hlt": 1}        # extra vCPUs halt once and park
        # still holding: VM and vCPU fds open
        links = [os.readlink(f"/proc/{p.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{p.pid}/fd")]
        assert "anon_inode:kvm-vm" in links
        assert sum(l.startswith("anon_inode:kvm-vcpu:") for l in links) == 3
        assert sum(l.startswith("anon_inode:kvm-vcpu-stats:") for l in links) == 3
        t0 = time.monotonic()
        p.stdin.close()                            # EOF ends the hold
        assert p.wait(10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_demo_moves_everything():
    out = subprocess.run([KVMGUEST, "--mode", "demo", "--seconds", "1", "--vcpus", "2"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["pio_out"] > 0 and res["mmio_write"] > 0 and res["demo_loops"] > 0
    for v in res["vcpu"]:
        assert v["exits"].get("io", 0) > 0
        assert v["exits"].get("mmio", 0) > 0
        assert v["exits"].get("hlt", 0) > 0
        assert v["stats"]["exits"] > 0 and v["stats"]["halt_exits"] > 0
    assert 0.9 < res["elapsed"] < 5


def test_demo_stops_on_sigterm():
    p = subprocess.Popen([KVMGUEST, "--mode", "demo", "--wait-stdin"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().startswith("ready ")
        p.stdin.write("go\n")
        p.stdin.flush()
        # wait until the guest demonstrably loops: the vCPU thread sleeps
        # (voluntary context switch) at every guest HLT
        vcpu = next(t for t in tasks_of(p.pid)
                    if open(f"/proc/{p.pid}/task/{t}/comm").read().strip() == "CPU 0/KVM")
        deadline = time.monotonic() + 10
        while True:
            with open(f"/proc/{p.pid}/task/{vcpu}/status") as f:
                sw = int(re.search(r"\nvoluntary_ctxt_switches:\s+(\d+)", f.read()).group(1))
            if sw >= 5:
                break
            assert time.monotonic() < deadline, "demo guest does not loop"
            time.sleep(0.01)
        p.terminate()
        assert p.wait(10) == 0
        res = json.loads(p.stdout.readline())
        assert res["mode"] == "demo" and res["demo_loops"] >= 5
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@pytest.mark.parametrize("args,msg", [
    (["--mode", "nope"], "unknown mode"),
    (["--mode", "pio", "--count", "x"], "invalid count"),
    (["--mode", "pio", "--vcpus", "0"], "at least 1"),
    (["--count", "3"], "--mode is required"),
    (["--mode", "hlt", "--count", "0"], "failed to create guest: hlt mode needs a count"),
    (["--mode", "pages", "--count", "100000"], "failed to create guest: 100000 pages"),
])
def test_cli_errors(args, msg):
    out = subprocess.run([KVMGUEST, *args], capture_output=True, text=True, timeout=10)
    assert out.returncode != 0
    assert msg in out.stderr
    assert out.stdout == ""


# --- against the kernel's tracepoints ---------------------------------------

@needs_root
def test_pio_tracepoints():
    n = 10
    res, c = run_guest(["--mode", "pio", "--count", str(n)],
                       ["kvm/kvm_pio", "kvm/kvm_userspace_exit", "kvm/kvm_mmio"])
    assert c["kvm_pio"] == n
    assert c["kvm_userspace_exit"] == vcpu0(res)["runs"] == n + 1
    assert c.get("kvm_mmio", 0) == 0


@needs_root
def test_mmio_tracepoints():
    n = 10
    res, c = run_guest(["--mode", "mmio", "--count", str(n)],
                       ["kvm/kvm_mmio", "kvm/kvm_userspace_exit", "kvm/kvm_pio"],
                       {"kvm/kvm_mmio": f"gpa == {MMIO_GPA:#x}"})
    assert c["kvm_mmio"] == n
    assert c["kvm_userspace_exit"] == n + 1
    assert c.get("kvm_pio", 0) == 0


@needs_root
def test_hlt_to_userspace():
    n = 5
    res, c = run_guest(["--mode", "hlt", "--count", str(n)],
                       ["kvm/kvm_userspace_exit", "kvm/kvm_vcpu_wakeup"])
    assert exits0(res) == {"hlt": n}
    assert stats0(res)["halt_exits"] == n
    assert c["kvm_userspace_exit"] == n
    # without an in-kernel LAPIC, HLT goes to user space: no in-kernel wakeups
    assert c.get("kvm_vcpu_wakeup", 0) == 0


@needs_root
def test_pages_fault_counts():
    k = 64
    res, c = run_guest(["--mode", "pages", "--count", str(k)],
                       ["kvmmmu/kvm_mmu_spte_requested", "kvm/kvm_pio"])
    assert exits0(res) == {"io": 1}               # the "done" out
    assert stats0(res)["pf_fixed"] == k + 2       # K data pages + code + stack
    assert c["kvm_mmu_spte_requested"] == k + 2
    assert c["kvm_pio"] == 1


@needs_root
def test_dirty_ring_counts():
    k = 64
    res, c = run_guest(["--mode", "dirty", "--count", str(k)],
                       ["kvm/kvm_dirty_ring_push", "kvm/kvm_dirty_ring_reset",
                        "kvmmmu/kvm_mmu_spte_requested"])
    assert res["dirty_harvested"] == k
    assert res["dirty_pages"] == k
    assert res["dirty_resets"] == 1
    assert stats0(res)["pf_fixed"] == k + 2
    assert c["kvm_dirty_ring_push"] == k
    assert c["kvm_dirty_ring_reset"] == 1
    assert c["kvm_mmu_spte_requested"] == k + 2


IRQ_EVENTS = ["kvm/kvm_set_irq", "kvm/kvm_pic_set_irq", "kvm/kvm_ioapic_set_irq",
              "kvm/kvm_ack_irq", "kvm/kvm_apic_accept_irq", "kvm/kvm_eoi",
              "kvm/kvm_msi_set_irq", "kvm/kvm_vcpu_wakeup", "kvm/kvm_userspace_exit"]

# N = 9 injections each (LAB.md); kvm_eoi for the PIC comes from its auto-EOI.
IRQ_EXPECT = {
    "irq-pic": {"kvm_set_irq": 18, "kvm_pic_set_irq": 18, "kvm_ioapic_set_irq": 18,
                "kvm_ack_irq": 9, "kvm_eoi": 9, "kvm_apic_accept_irq": 0, "kvm_msi_set_irq": 0},
    "irq-ioapic": {"kvm_set_irq": 18, "kvm_pic_set_irq": 0, "kvm_ioapic_set_irq": 18,
                   "kvm_apic_accept_irq": 9, "kvm_eoi": 18, "kvm_msi_set_irq": 0},
    "irq-msi": {"kvm_msi_set_irq": 9, "kvm_apic_accept_irq": 9, "kvm_eoi": 18,
                "kvm_set_irq": 0, "kvm_ioapic_set_irq": 0},
}


@needs_root
@pytest.mark.parametrize("mode", sorted(IRQ_EXPECT))
def test_irq_injection_counts(mode):
    n = 9
    res, c = run_guest(["--mode", mode, "--count", str(n)], IRQ_EVENTS)
    assert res["irqs_injected"] == n
    assert res["irqs_handled"] == n               # the guest handler's own counter
    assert exits0(res) == {"io": 1}               # halts stay in the kernel
    st = stats0(res)
    assert st["irq_injections"] == n
    assert st["halt_exits"] == n
    for ev, want in IRQ_EXPECT[mode].items():
        assert c.get(ev, 0) == want, (ev, dict(c))
    assert c["kvm_vcpu_wakeup"] == n              # one per halt
    assert c["kvm_userspace_exit"] == 1


@needs_root
def test_halt_poll_on_and_off():
    n = 40
    ev = ["kvm/kvm_halt_poll_ns", "kvm/kvm_vcpu_wakeup", "kvm/kvm_msi_set_irq"]
    res, c = run_guest(["--mode", "haltpoll", "--count", str(n), "--halt-poll-ns", "1000000",
                        "--irq-period-us", "100"], ev)
    assert res["halt_poll_ns"] == 1000000
    assert res["irqs_handled"] == n
    assert c["kvm_msi_set_irq"] == n and c["kvm_vcpu_wakeup"] == n
    assert c.get("kvm_halt_poll_ns", 0) > 0
    assert stats0(res)["halt_attempted_poll"] > 0

    res, c = run_guest(["--mode", "haltpoll", "--count", str(n), "--halt-poll-ns", "0",
                        "--irq-period-us", "100"], ev)
    assert res["halt_poll_ns"] == 0
    assert c["kvm_msi_set_irq"] == n and c["kvm_vcpu_wakeup"] == n
    assert c.get("kvm_halt_poll_ns", 0) == 0
    assert stats0(res)["halt_attempted_poll"] == 0


# --- the tiny kernel in real QEMU --------------------------------------------

def _read_until(fd, pattern, timeout, buf=b""):
    """Read fd until the accumulated bytes match the regex `pattern`."""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, buf, re.S):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {pattern!r}; got {buf[-200:]!r}"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            chunk = os.read(fd, 4096)
            assert chunk, f"EOF before {pattern!r}; got {buf[-200:]!r}"
            buf += chunk
    return buf


def _cpu_seconds(pid, tid):
    try:
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@needs_root
@needs_binary("qemu-system-x86_64")
def test_tiny_kernel_in_qemu():
    """QEMU starts paused (-S); the test finds its `CPU 0/KVM` thread, points
    the tracer at it, then `cont`inues through the HMP monitor on stdin."""
    pio, mmio, port, gpa = 25, 17, 0x700, 0xd0000000
    cmd = [shutil.which("qemu-system-x86_64"), "-accel", "kvm", "-name", "guest=kwtiny,debug-threads=on",
           "-kernel", TINY_KERNEL, "-append", f"pio={pio} mmio={mmio} spin=1 port={port:#x} gpa={gpa:#x} exit=0x21",
           "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-display", "none", "-nodefaults",
           "-no-reboot", "-S", "-monitor", "stdio"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the first prompt can precede machine creation; `info cpus` is
        # answered from the main loop, once the vCPU thread exists
        _read_until(p.stdout.fileno(), rb"\(qemu\)", 30)
        p.stdin.write(b"info cpus\n")
        p.stdin.flush()
        out = _read_until(p.stdout.fileno(), rb"CPU #0: thread_id=\d+\D", 30)
        vcpu = int(re.search(rb"CPU #0: thread_id=(\d+)", out).group(1))
        with open(f"/proc/{p.pid}/task/{vcpu}/comm") as f:
            assert f.read().strip() == "CPU 0/KVM"
        tids = tasks_of(p.pid)
        with Tracer(["kvm/kvm_pio", "kvm/kvm_mmio"],
                    {"kvm/kvm_pio": f"port == {port:#x}", "kvm/kvm_mmio": f"gpa == {gpa:#x}"}) as t:
            t.set_pids(tids)
            t.enable()
            p.stdin.write(b"cont\n")
            p.stdin.flush()
            cpu = 0.0
            deadline = time.monotonic() + 45
            while p.poll() is None:                # sample the vCPU's CPU time while it spins
                assert time.monotonic() < deadline, "tiny kernel did not exit"
                s = _cpu_seconds(p.pid, vcpu)
                if s is not None:
                    cpu = max(cpu, s)
                time.sleep(0.05)
            rc = p.wait()
            c = t.counts(set(tids))
            assert t.lost() == 0
        assert rc == (0x21 << 1) | 1, p.stderr.read()
        assert c["kvm_pio"] == pio
        assert c["kvm_mmio"] == mmio
        assert cpu > 0.5                           # the guest burnt CPU on its vCPU thread
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
