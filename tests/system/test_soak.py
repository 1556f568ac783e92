"""Soak: VMs (QEMU look-alike processes and real KVM guests) start and stop
in a loop while `kvmwatch -o json 0.01` (its shortest interval) runs a few thousand collection
cycles; every line must parse, VMs must come and go, and the collector's
memory must stay flat: RSS at cycle ~300 vs. at the end within a small
bound (in the ASan build, where the allocator's quarantine is set to 0, the
bound is larger and LeakSanitizer checks at exit instead)."""
import json
import os
import random
import signal
import subprocess
import threading
import time
import uuid as uuidlib

import pytest

from conftest import build_path, needs_kvm, needs_root
from kwtest import KVMGUEST, KVMWATCH

FAKEQEMU = build_path("bench", "fakeqemu")
TAG = "kwsoak%d" % os.getpid()
CYCLES = int(os.environ.get("KW_SOAK_CYCLES", "3000"))
SECONDS = 75          # stop earlier if the cycles take longer
EARLY = 300           # RSS reference cycle (allocations have settled)

pytestmark = [needs_kvm, needs_root]


def sanitized():
    out = subprocess.run(["nm", "-D", KVMWATCH], capture_output=True, text=True).stdout
    return "__asan_init" in out


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return None


class Churn(threading.Thread):
    """Keeps ~16 fake QEMUs and ~2 real KVM guests alive, replacing one of
    them every few milliseconds (real guests every ~0.3 s)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.fakes, self.reals = [], []
        self.started = 0
        self.rng = random.Random(7)

    def fake(self):
        i = self.started
        self.started += 1
        name = "%s-f%d%s" % (TAG, i, " \"odd\" name" if i % 5 == 0 else "")
        return subprocess.Popen(["qemu-system-x86_64", "-name", "guest=%s,debug-threads=on" % name,
                                 "-uuid", str(uuidlib.uuid4()), "-smp", str(1 + i % 3)],
                                executable=FAKEQEMU, stdin=subprocess.DEVNULL)

    def real(self):
        self.started += 1
        return subprocess.Popen([KVMGUEST, "-name", "guest=%s-r%d,debug-threads=on" % (TAG, self.started),
                                 "--mode", "demo", "--count", "1000", "--irq-period-us", "50000",
                                 "--vcpus", "2", "--seconds", "0.4"],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def run(self):
        self.fakes = [self.fake() for _ in range(16)]
        last_real = 0
        while not self.stop.is_set():
            victim = self.fakes.pop(self.rng.randrange(len(self.fakes)))
            victim.kill()
            victim.wait()
            self.fakes.append(self.fake())
            now = time.monotonic()
            self.reals = [p for p in self.reals if p.poll() is None]
            if now - last_real > 0.3 and len(self.reals) < 2:
                self.reals.append(self.real())
                last_real = now
            time.sleep(0.005)

    def close(self):
        self.stop.set()
        self.join(timeout=30)
        for p in self.fakes + self.reals:
            if p.poll() is None:
                p.kill()
            p.wait()


def test_soak_memory_flat():
    san = sanitized()
    env = dict(os.environ)
    if san:
        env["ASAN_OPTIONS"] = "quarantine_size_mb=0:detect_leaks=1:exitcode=23"
    churn = Churn()
    churn.start()
    kw = subprocess.Popen([KVMWATCH, "-o", "json", "--no-libvirt", "0.01"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, env=env)
    errlines = []
    reader = threading.Thread(target=lambda: errlines.extend(kw.stderr), daemon=True)
    reader.start()
    cycles, names, counts, early, t0 = 0, set(), set(), None, time.monotonic()
    try:
        for line in kw.stdout:
            d = json.loads(line)
            cycles += 1
            mine = [vm for vm in d["vms"] if vm["name"].startswith(TAG)]
            counts.add(len(mine))
            names.update(vm["name"] for vm in mine)
            if cycles == EARLY:
                early = rss_kib(kw.pid)
            if cycles >= CYCLES or time.monotonic() - t0 > SECONDS:
                break
        late = rss_kib(kw.pid)
    finally:
        churn.close()
        kw.send_signal(signal.SIGINT)
        try:
            kw.wait(timeout=60)
        except subprocess.TimeoutExpired:
            kw.kill()
            kw.wait()
        reader.join(timeout=10)
    err = "".join(errlines)
    print("soak: %d cycles, %d VM names, %d..%d of ours at once, RSS %d KiB at cycle %d, %d KiB at the end"
          % (cycles, len(names), min(counts), max(counts), early or -1, EARLY, late or -1))
    assert cycles >= 1000, "only %d cycles in %d s" % (cycles, SECONDS)
    assert early is not None and late is not None
    # VMs really came and went: far more names than alive at once
    assert len(names) > 100, len(names)
    assert any(n.endswith('"odd" name') for n in names)
    assert any("-r" in n for n in names), "no real KVM guest seen"
    bound = 4096 if san else 1024
    assert late - early <= bound, "RSS grew %d KiB between cycle %d and %d (%d -> %d KiB)" % (
        late - early, EARLY, cycles, early, late)
    assert kw.returncode == 0, "kvmwatch exit %d: %s" % (kw.returncode, err[-3000:])
    assert "LeakSanitizer" not in err and "ERROR: AddressSanitizer" not in err, err[-3000:]
