"""kvmwatch's eBPF event modes (-e -s -f -m -d -n -w -i) against the project's
own KVM guests, asserting the exact counts the kernel gives (LAB.md)."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT, needs_btf, needs_kvm, needs_root
from kwtest import KVMWATCH, Guest, kvmwatch

pytestmark = [needs_kvm, needs_root, needs_btf]

MMIO_GPA = 0x10000


# Run a command in a private mount namespace with tracefs mounted, or with
# it unmounted, whatever the host has: the machine itself is never changed.
TRACEFS_DIRS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
WITH_TRACEFS = ["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
                "mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing || exit 99; "
                'exec "$0" "$@"']
WITHOUT_TRACEFS = ["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
                   "for d in %s; do while mountpoint -q $d; do umount -l $d || exit 99; done; done; "
                   'exec "$0" "$@"' % " ".join(TRACEFS_DIRS)]


def run_traced(guest, *flags, env=None, linger=0.0, tracefs=None):
    """Start kvmwatch -o json -p GUEST FLAGS, wait until it says it is
    attached, let the guest run, stop kvmwatch with SIGINT.  tracefs=True
    runs it with tracefs mounted, False without (private mount namespace),
    None as the host is.  Returns (json lines, stderr, guest result)."""
    args = [KVMWATCH, "-o", "json", "-p", str(guest.pid)] + [str(f) for f in flags]
    if tracefs is not None:
        args = (WITH_TRACEFS if tracefs else WITHOUT_TRACEFS) + args
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    err = []
    try:
        while True:
            line = p.stderr.readline()
            if not line:
                raise AssertionError("kvmwatch exited before attaching: %s" % "".join(err))
            err.append(line)
            if "tracing" in line and "attached" in line:
                break
        guest.go()
        if linger:
            time.sleep(linger)      # let interval summaries happen (the guest holds)
        res = guest.finish()
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
        out, rest = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, "".join(err) + rest
    return [json.loads(l) for l in out.splitlines() if l.strip()], "".join(err) + rest, res


def final_vm(lines, guest):
    finals = [l for l in lines if l.get("final")]
    assert len(finals) == 1, lines
    vms = [v for v in finals[0]["vms"] if v["pid"] == guest.pid]
    assert len(vms) == 1, finals[0]
    assert vms[0]["name"] == guest.name
    return vms[0]


def exits_by_reason(vm, isa="user"):
    return {e["reason"]: e["samples"] for e in vm["exits"] if e["isa"] == isa}


# ---------------------------------------------------------------- exits

def test_exits_stream_pio():
    n = 7
    with Guest("pio", count=n) as g:
        lines, err, res = run_traced(g, "-e")
    assert res["pio_out"] == n
    exits = [l for l in lines if l["type"] == "exit"]
    assert all(l["pid"] == g.pid and l["vm"] == g.name and l["vcpu"] == 0 for l in exits)
    io = [l for l in exits if l["reason"] == "IO"]
    hlt = [l for l in exits if l["reason"] == "HLT"]
    assert len(io) == n and len(hlt) == 1 and len(exits) == n + 1
    # every IO exit was followed by KVM_RUN: timed; the final HLT never was
    assert all(l["latency_ns"] is not None and l["latency_ns"] > 0 for l in io)
    assert hlt[0]["unfinished"] and hlt[0]["latency_ns"] is None
    assert "0 lost" in err


def test_exits_stats_mmio():
    n = 5
    with Guest("mmio", count=n) as g:
        lines, err, res = run_traced(g, "-e", "-s", tracefs=True)
    vm = final_vm(lines, g)
    assert exits_by_reason(vm) == {"MMIO": n, "HLT": 1}
    mmio = [e for e in vm["exits"] if e["reason"] == "MMIO"][0]
    assert mmio["timed"] == n and mmio["min_ns"] <= mmio["avg_ns"] <= mmio["max_ns"]
    assert sum(mmio["hist_log2_ns"].values()) == n
    assert abs(mmio["samples_pct"] - 100.0 * n / (n + 1)) < 0.01
    # kvm_exit/kvm_entry are attached where they exist (they never fire under PVM)
    assert "tracepoint:kvm:kvm_exit" in err


@pytest.mark.parametrize("disable,hook", [
    # the cheapest that attaches here (LAB.md: no fentry, no kprobes on PVM)
    ("", ("fentry:kvm_vcpu_ioctl", "kprobe:kvm_vcpu_ioctl", "tp_btf:raw_syscalls:sys_enter")),
    ("fentry,kprobe", ("tp_btf:raw_syscalls:sys_enter",)),
    ("fentry,kprobe,tp_btf", ("raw_tp:raw_syscalls:sys_enter",)),
])
def test_exits_timed_without_tracefs(disable, hook):
    """A fresh host has no tracefs: exits to user space are still counted
    and every one timed, and the one thing lost is said in one line."""
    n = 6
    env = dict(os.environ, KVMWATCH_BPF_DISABLE=disable)
    with Guest("pio", count=n) as g:
        lines, err, res = run_traced(g, "-e", "-s", "-v", env=env, tracefs=False)
    vm = final_vm(lines, g)
    assert exits_by_reason(vm) == {"IO": n, "HLT": 1}
    io = [e for e in vm["exits"] if e["reason"] == "IO"][0]
    assert io["timed"] == n and sum(io["hist_log2_ns"].values()) == n
    assert 0 < io["min_ns"] <= io["avg_ns"] <= io["max_ns"]
    attached = [l for l in err.splitlines() if l.startswith("kvmwatch: tracing exits [")]
    assert len(attached) == 1, err
    chosen = attached[0].split("[")[1].split("]")[0].split(",")
    assert len([h for h in chosen if h in hook]) == 1, attached
    lost = [l for l in err.splitlines() if "tracefs is not mounted, so" in l]
    assert lost == ["kvmwatch: warning: eBPF exits: tracefs is not mounted, so in-kernel exits are not counted "
                    "(mount -t tracefs nodev /sys/kernel/tracing)"], err


def test_exits_stats_per_vcpu_interval():
    n = 4
    with Guest("pio", count=n, vcpus=2, hold=60) as g:
        lines, err, res = run_traced(g, "-e", "-s", "--per-vcpu", "0.2", linger=0.5)
    assert any(not l["final"] for l in lines)          # interval summaries
    vm = final_vm(lines, g)
    io = [e for e in vm["exits"] if e["reason"] == "IO"]
    assert len(io) == 1 and io[0]["vcpu"] == "0" and io[0]["samples"] == n
    # per-interval deltas add up to at most the totals (the last interval
    # is cut short by the end)
    per_interval = sum(e["samples"] for l in lines if not l["final"] for v in l["vms"]
                       if v["pid"] == g.pid for e in v["exits"] if e["reason"] == "IO")
    assert per_interval <= n


# ----------------------------------------------------------- MMU, MMIO

def test_faults_pages():
    k = 9
    with Guest("pages", count=k) as g:
        lines, err, res = run_traced(g, "-f", "-s")
    vm = final_vm(lines, g)
    pf_fixed = res["vcpu"][0]["stats"]["pf_fixed"]
    assert pf_fixed == k + 2
    assert sum(f["samples"] for f in vm["faults"]) == k + 2
    assert sum(f["timed"] for f in vm["faults"]) == k + 2   # each got its SPTE
    # per page, with its host address and frame (the 10 most faulted)
    pages = vm["fault_pages"]
    assert len(pages) == 10 and all(p["count"] == 1 for p in pages)
    assert all(p["hva"] and p["pfn"] for p in pages)
    # hva = slot's userspace_addr + (gfn - base_gfn) pages: gfn -> hva is a
    # fixed offset within a memslot, and distinct gfns have distinct frames
    for slot in {p["slot"] for p in pages}:
        offs = {p["hva"] - p["gfn"] * 4096 for p in pages if p["slot"] == slot}
        assert len(offs) == 1, pages
    assert len({p["pfn"] for p in pages}) == len({(p["slot"], p["gfn"]) for p in pages})


def test_faults_stream():
    k = 6
    with Guest("pages", count=k) as g:
        lines, err, res = run_traced(g, "-f")
    faults = [l for l in lines if l["type"] == "fault"]
    assert len(faults) == k + 2
    assert all(f["source"] == "kvm_mmu_spte_requested" and f["gfn"] is not None for f in faults)
    assert all(f["hva"] and f["pfn"] and f["hva"] % 4096 == 0 for f in faults)
    # the guest's data pages are consecutive gfns: consecutive hvas
    by_gfn = sorted((f["gfn"], f["hva"]) for f in faults)
    assert all(h2 - h1 == (g2 - g1) * 4096 for (g1, h1), (g2, h2) in zip(by_gfn, by_gfn[1:])
               if g2 - g1 == 1)
    # the data pages are written: error code has W; latency measured
    writes = [f for f in faults if "W" in f["error"].split("|")]
    assert len(writes) >= k
    assert all(f["latency_ns"] is not None for f in faults)


def test_mmio_stats_and_stream():
    n = 6
    with Guest("mmio", count=n) as g:
        lines, err, res = run_traced(g, "-m", "-s")
    vm = final_vm(lines, g)
    assert vm["mmio"]["counts"] == {"write": {"count": n}}
    assert vm["mmio"]["top"] == [{"type": "write", "gpa": MMIO_GPA, "count": n}]
    with Guest("mmio", count=n) as g:
        lines, err, res = run_traced(g, "-m")
    ev = [l for l in lines if l["type"] == "mmio"]
    assert len(ev) == n and all(e["gpa"] == MMIO_GPA and e["access"] == "write" for e in ev)


# ---------------------------------------------------------------- dirty

def test_dirty_ring_fallback():
    k = 8
    with Guest("dirty", count=k) as g:
        lines, err, res = run_traced(g, "-d", "-s")
    assert res["dirty_harvested"] == k
    vm = final_vm(lines, g)
    assert vm["dirty"]["pages"] == k
    assert sum(t["count"] for t in vm["dirty"]["top"]) == k
    # fentry/kprobe cannot hook mark_page_dirty_in_slot here: reported, and
    # the tracepoint path is used instead
    assert "fentry:mark_page_dirty_in_slot: cannot attach" in err
    assert "dirty [tp_btf:kvm:kvm_dirty_ring_push]" in err


def test_dirty_stream():
    k = 5
    with Guest("dirty", count=k) as g:
        lines, err, res = run_traced(g, "-d")
    ev = [l for l in lines if l["type"] == "dirty"]
    assert len(ev) == k
    assert sorted(e["gfn"] for e in ev) == list(range(k))


# ------------------------------------------------------------------ IRQs

@pytest.mark.parametrize("mode,expect", [
    ("irq-pic", {"gsi": 18, "pic": 18, "ioapic": 18, "ack": 9}),
    ("irq-ioapic", {"gsi": 18, "ioapic": 18, "apic": 9, "eoi": 18}),
    ("irq-msi", {"msi": 9, "apic": 9, "eoi": 18}),
])
def test_irq_injection(mode, expect):
    with Guest(mode, count=9) as g:
        lines, err, res = run_traced(g, "-i", "-s")
    assert res["irqs_handled"] == 9
    vm = final_vm(lines, g)
    got = {k: v["count"] for k, v in vm["irq"].items()}
    # kvm_inj_virq/kvm_eoi may be absent from a mode: compare the LAB set
    for k, v in expect.items():
        assert got.get(k) == v, (k, got)
    for k in ("pic", "ioapic", "msi"):
        if k not in expect:
            assert k not in got, got


def test_irq_stream_fields():
    with Guest("irq-msi", count=3) as g:
        lines, err, res = run_traced(g, "-i")
    msi = [l for l in lines if l["type"] == "irq" and l["kind"] == "msi"]
    assert len(msi) == 3
    assert all(m["delivery"] == "fixed" and m["trigger"] == "edge" and m["vector"] > 0 for m in msi)
    apic = [l for l in lines if l["type"] == "irq" and l["kind"] == "apic"]
    assert len(apic) == 3 and {a["vector"] for a in apic} == {msi[0]["vector"]}


# ------------------------------------------------- halt-poll, wakeups

def test_wakeups_equal_halts():
    n = 9
    with Guest("irq-msi", count=n) as g:
        lines, err, res = run_traced(g, "-w", "-s")
    vm = final_vm(lines, g)
    total = sum(w["samples"] for w in vm["wakeup"])
    assert total == n == res["vcpu"][0]["stats"]["halt_wakeup"]
    assert sum(sum(w["hist_log2_ns"].values()) for w in vm["wakeup"]) == n


def test_haltpoll_with_cap():
    with Guest("haltpoll", count=200, extra=["--halt-poll-ns", "1000000", "--irq-period-us", "100"]) as g:
        lines, err, res = run_traced(g, "-n", "-s")
    vm = final_vm(lines, g)
    assert sum(h["count"] for h in vm["haltpoll"]) > 0
    with Guest("haltpoll", count=100, extra=["--halt-poll-ns", "1000000"]) as g:
        lines, err, res = run_traced(g, "-n")
    ev = [l for l in lines if l["type"] == "haltpoll"]
    assert ev and all(e["change"] in ("grow", "shrink") for e in ev)
    assert all((e["new_ns"] > e["old_ns"]) == (e["change"] == "grow") for e in ev)


def test_haltpoll_without_cap():
    with Guest("haltpoll", count=100, extra=["--halt-poll-ns", "0"]) as g:
        lines, err, res = run_traced(g, "-n", "-s")
    assert res["halt_poll_ns"] == 0
    vm = [v for v in lines[-1]["vms"] if v["pid"] == g.pid]
    assert sum(h["count"] for v in vm for h in v["haltpoll"]) == 0


# ------------------------------------------------------- filter, combos

def test_pid_filter_excludes_other_guest():
    n, m = 4, 11
    with Guest("pio", count=n, name="kwtest-bpf-a-%d" % os.getpid()) as a, \
            Guest("pio", count=m, name="kwtest-bpf-b-%d" % os.getpid()) as b:
        b.go()
        lines, err, res = run_traced(a, "-e", "-m", "-s")
        b.finish()
    final = [l for l in lines if l["final"]][0]
    assert [v["pid"] for v in final["vms"]] == [a.pid]
    assert exits_by_reason(final["vms"][0]) == {"IO": n, "HLT": 1}


def test_pid_filter_by_name():
    n = 3
    with Guest("pio", count=n) as a, Guest("pio", count=5) as b:
        b.go()
        args = [KVMWATCH, "-o", "json", "-p", a.name, "-e", "-s"]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while "attached" not in p.stderr.readline():
            pass
        a.go()
        a.finish()
        b.finish()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
    final = json.loads(out.splitlines()[-1])
    assert [v["name"] for v in final["vms"]] == [a.name]
    assert exits_by_reason(final["vms"][0]) == {"IO": n, "HLT": 1}


def test_all_flags_combined_text():
    with Guest("irq-pic", count=3) as g:
        args = [KVMWATCH, "-p", str(g.pid), "-e", "-f", "-m", "-d", "-n", "-w", "-i", "-s"]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while "attached" not in p.stderr.readline():
            pass
        g.go()
        g.finish()
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    assert "SAMPLES%" in out and "TIME%" in out and "MIN_us" in out
    assert "VM %s (pid %d)" % (g.name, g.pid) in out
    for sec in ("exits:", "faults:", "mmio:", "dirty:", "haltpoll:", "wakeup:", "irq:"):
        assert sec in out


# -------------------------------------------------------- fallbacks, errors

def test_fallback_raw_tp_when_tp_btf_disabled():
    n = 5
    env = dict(os.environ, KVMWATCH_BPF_DISABLE="tp_btf")
    with Guest("pio", count=n) as g:
        lines, err, res = run_traced(g, "-e", "-s", env=env, tracefs=True)
    assert "raw_tp:kvm:kvm_entry" in err and "raw_tp:kvm:kvm_userspace_exit" in err
    assert "tp_btf:kvm:kvm_userspace_exit: disabled by KVMWATCH_BPF_DISABLE" in err
    assert exits_by_reason(final_vm(lines, g)) == {"IO": n, "HLT": 1}


def test_fallback_raw_syscalls():
    n = 4
    env = dict(os.environ, KVMWATCH_BPF_DISABLE="tp_btf,tracepoint")
    with Guest("dirty", count=n) as g:
        lines, err, res = run_traced(g, "-d", "-s", env=env)
    assert "dirty [raw_tp:kvm:kvm_dirty_ring_push]" in err
    assert final_vm(lines, g)["dirty"]["pages"] == n


def test_feature_unavailable_others_keep_running():
    n = 3
    env = dict(os.environ, KVMWATCH_BPF_DISABLE="fentry,kprobe,tp_btf,raw_tp")
    with Guest("pio", count=n) as g:
        lines, err, res = run_traced(g, "-e", "-d", "-s", "-v", env=env, tracefs=True)
    assert "eBPF dirty unavailable: no hook can attach on this kernel" in err
    # only tracepoints are left, through tracefs
    assert "tracepoint:kvm:kvm_userspace_exit" in err and "tracepoint:syscalls:sys_enter_ioctl" in err
    assert exits_by_reason(final_vm(lines, g)) == {"IO": n, "HLT": 1}


def test_nothing_attachable_is_an_error():
    env = dict(os.environ, KVMWATCH_BPF_DISABLE="fentry,kprobe,tp_btf,raw_tp")
    r = kvmwatch("-d", "-t", "1", env=env)
    assert r.returncode != 0
    assert "no eBPF feature could be loaded" in r.stderr and "dirty:" in r.stderr


@pytest.mark.parametrize("flag", ["-e", "-f", "-m", "-d", "-n", "-w", "-i", "-s"])
def test_non_root_clear_error(flag):
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMWATCH, flag,
                        "-t", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "bpf needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN (root has them)" in r.stderr, r.stderr


def test_bad_flags():
    r = kvmwatch("--bpf", "bogus")
    assert r.returncode != 0 and "unknown eBPF feature 'bogus'" in r.stderr
    r = kvmwatch("--per-vcpu", "-e")
    assert r.returncode == 2 and "--per-vcpu needs -s" in r.stderr
    r = kvmwatch("-e", "-l")
    assert r.returncode == 2


def test_closed_pipe():
    with Guest("pio", count=2000) as g:
        p = subprocess.Popen([KVMWATCH, "-p", str(g.pid), "-e"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        err = ""
        while "attached" not in err:
            line = p.stderr.readline()
            assert line, "kvmwatch exited before attaching: " + err
            err += line
        p.stdout.close()
        g.go()
        g.finish()
        rc = p.wait(timeout=30)
    assert rc == 1


# ------------------------------------------ collector source (metric table)

def test_collector_source_idle_without_features():
    r = kvmwatch("-o", "json", "--no-host", "0.1", "1", check=True)
    src = json.loads(r.stdout.splitlines()[0])["sources"]["bpf"]
    assert src == {"available": False, "reason": "no eBPF features requested"}


def test_collector_source_metric_rows():
    n = 6
    with Guest("pio", count=n, hold=60) as g:
        p = subprocess.Popen([KVMWATCH, "-o", "json", "--no-host", "-p", str(g.pid), "--bpf", "exits,mmio,irq",
                              "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            first = json.loads(p.stdout.readline())      # attached and reporting
            assert first["sources"]["bpf"]["available"] is True
            g.go()
            m = {}
            while not m.get("bpf.userspace_exits", {}).get("HLT"):
                rep = json.loads(p.stdout.readline())
                vm = [v for v in rep["vms"] if v["pid"] == g.pid]
                assert vm, rep
                m = vm[0]["metrics"]
            g.finish()
        finally:
            p.kill()
            p.wait()
    assert m["bpf.userspace_exits"] == {"IO": n, "HLT": 1}
    assert m["bpf.userspace_exit_time"]["IO"] > 0


def test_collector_source_non_root_degrades():
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMWATCH, "-o", "json",
                        "--no-host", "--bpf", "all", "0.1", "1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.splitlines()[0])
    assert rep["sources"]["procfs"]["available"] is True
    assert rep["sources"]["bpf"]["available"] is False
    assert "bpf needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN (root has them)" in rep["sources"]["bpf"]["reason"]
    assert "bpf source unavailable" in r.stderr


def test_build_without_btf_is_a_clear_error(tmp_path):
    root = ROOT
    out = tmp_path / "b"
    r = subprocess.run(["make", "-C", root, "O=%s" % out, "VMLINUX_BTF=/nonexistent/vmlinux",
                        "%s/bpf/vmlinux.h" % out], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "kernel BTF /nonexistent/vmlinux not readable" in r.stderr
    assert not (out / "bpf" / "vmlinux.h").exists()


def test_build_needs_no_btf_on_the_build_host(tmp_path):
    """The BPF programs build from the shipped vmlinux.h: with the build
    host's /sys/kernel/btf hidden (a private mount namespace) every skeleton
    still builds, and the header is the shipped one."""
    out = tmp_path / "b"
    arch = {"x86_64": "x86", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    shipped = os.path.join(ROOT, "bpf", "vmlinux", "vmlinux_%s.h" % arch)
    if not os.path.exists(shipped):
        pytest.skip("no vmlinux.h shipped for %s" % arch)
    env = {k: v for k, v in os.environ.items() if k not in ("VMLINUX_BTF", "KVM_BTF")}
    skels = ["%s/bpf/%s.skel.h" % (out, n) for n in ("exits", "faults", "mmio", "dirty", "haltpoll", "wakeup", "irq")]
    r = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                        'mount -t tmpfs none /sys/kernel/btf && exec "$@"', "sh",
                        "make", "-C", ROOT, "O=%s" % out] + skels, capture_output=True, text=True, timeout=300,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "bpftool btf dump" not in r.stdout
    with open(shipped, "rb") as a, open(out / "bpf" / "vmlinux.h", "rb") as b:
        assert a.read() == b.read()
    assert all(os.path.getsize(k) > 1000 for k in skels)


# ------------------------------------------- -p selection, lost, end of run

def test_p_repeated_means_any_of_them():
    """-p PID -p NAME selects both VMs (field test: 0 VMs), in event mode."""
    with Guest("pio", count=3, name="kwtest-any-a-%d" % os.getpid()) as a, \
            Guest("pio", count=5, name="kwtest-any-b-%d" % os.getpid()) as b:
        p = subprocess.Popen([KVMWATCH, "-o", "json", "-s", "-p", str(a.pid), "-p", b.name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        err = ""
        while "attached" not in err:
            line = p.stderr.readline()
            assert line, err
            err += line
        a.go()
        b.go()
        a.finish()
        b.finish()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=30)
    lines = [json.loads(l) for l in out.splitlines()]
    assert exits_by_reason(final_vm(lines, a)) == {"IO": 3, "HLT": 1}
    assert exits_by_reason(final_vm(lines, b)) == {"IO": 5, "HLT": 1}


def test_stream_json_carries_lost_and_ends_with_totals():
    n = 4
    with Guest("pio", count=n) as g:
        lines, err, res = run_traced(g, "-e")
    exits = [l for l in lines if l["type"] == "exit"]
    assert len(exits) == n + 1 and all(l["lost_total"] == 0 for l in exits)
    end = lines[-1]
    assert {k: end[k] for k in ("type", "events", "lost_total")} == {"type": "end", "events": n + 1, "lost_total": 0}
    assert end["schema"] == 1 and end["hostname"] == os.uname().nodename


def test_summary_json_lost_per_interval_and_total():
    with Guest("pio", count=3, hold=60) as g:
        lines, err, res = run_traced(g, "-s", "0.2", linger=0.5)
    assert any(not l["final"] for l in lines)
    assert all(l["lost"] == 0 and l["lost_total"] == 0 for l in lines)


@pytest.mark.parametrize("flags", [["-e"], ["-s"], ["-s", "0.2"]])
def test_run_ends_when_every_selected_vm_is_gone(flags):
    """like perf stat -p: the VM exits, kvmwatch prints its final report and exits 0"""
    with Guest("pio", count=2) as g:
        p = subprocess.Popen([KVMWATCH, "-o", "json", "-p", str(g.pid)] + flags, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        err = ""
        while "attached" not in err:
            line = p.stderr.readline()
            assert line, err
            err += line
        g.go()
        g.finish()                   # the guest process exits
        out, rest = p.communicate(timeout=10)
    assert p.returncode == 0, err + rest
    assert "every VM selected with -p has exited" in rest
    lines = [json.loads(l) for l in out.splitlines()]
    if "-e" in flags:
        assert lines[-1]["type"] == "end" and lines[-1]["events"] == 3
    else:
        assert exits_by_reason(final_vm(lines, g)) == {"IO": 2, "HLT": 1}


def test_metric_mode_any_of_and_vmid_and_host_count():
    with Guest("demo", name="kwtest-sel-a-%d" % os.getpid(), wait=False) as a, \
            Guest("demo", name="kwtest-sel-b-%d" % os.getpid(), extra=["-id", "4242"], wait=False) as b:
        time.sleep(0.3)
        both = json.loads(kvmwatch("-o", "json", "-p", str(a.pid), "-p", "vmid:4242", "0.1", "1",
                                   check=True).stdout.splitlines()[-1])
        assert sorted(v["name"] for v in both["vms"]) == sorted([a.name, b.name])
        vm_b = [v for v in both["vms"] if v["name"] == b.name][0]
        assert vm_b["pve_id"] == 4242
        one = json.loads(kvmwatch("-o", "json", "-p", "pve:4242", "0.1", "1", check=True).stdout.splitlines()[-1])
        assert [v["name"] for v in one["vms"]] == [b.name]
        # host.vms is the host's count, not the selection's
        assert one["host"]["metrics"]["host.vms"] >= 2


def test_stats_map_pruned_for_gone_vms():
    """The statistics maps are plain hashes: after enough short-lived VMs a
    new VM's events were not counted at all, and nothing said so.  Entries
    of VMs that are gone are removed each cycle; a full map is said."""
    env = dict(os.environ, KVMWATCH_BPF_STATS_ENTRIES="4")   # MMIO: one entry per VM and kind
    p = subprocess.Popen([KVMWATCH, "-o", "json", "--no-host", "--bpf", "mmio", "0.2"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = json.loads(p.stdout.readline())
        assert first["sources"]["bpf"]["available"] is True
        # eight VMs at once: twice what the map holds
        many = [Guest("mmio", count=3, name="kwtest-prune-%d-%d" % (os.getpid(), i)) for i in range(8)]
        try:
            for g in many:
                g.start()
            for g in many:
                g.go()
            for g in many:
                g.finish()
        finally:
            for g in many:
                g.kill()
        for _ in range(3):                      # cycles that see them gone
            p.stdout.readline()
        n = 5
        with Guest("mmio", count=n, hold=60) as g:
            g.go()
            m = {}
            for _ in range(50):
                rep = json.loads(p.stdout.readline())
                vm = [v for v in rep["vms"] if v["pid"] == g.pid]
                m = vm[0]["metrics"] if vm else {}
                if sum(m.get("bpf.mmio", {}).values()) >= n:
                    break
            g.finish()
    finally:
        p.kill()
        p.wait()
    err = p.stderr.read()
    assert sum(m["bpf.mmio"].values()) == n, m
    assert err.count("eBPF mmio: its statistics map is full (4 entries)") == 1, err


def test_eoi_without_vector_and_wakeup_valid_flag_labelled():
    """Field test item 5: the kernel's kvm_eoi vector -1 (no vector) printed
    as 4294967295; the wakeup tracepoint's 'valid' flag was counted as
    POLL_OK.  Both are shown for what the kernel means."""
    with Guest("irq-ioapic", count=9) as g:
        lines, err, res = run_traced(g, "-i")
    eoi = [l for l in lines if l.get("type") == "irq" and l["kind"] == "eoi"]
    assert len(eoi) == 18
    assert all(e["vector"] is None or 0 <= e["vector"] <= 255 for e in eoi), eoi
    n = 9
    with Guest("irq-msi", count=n) as g:
        lines, err, res = run_traced(g, "-w")
    ev = [l for l in lines if l.get("type") == "wakeup"]
    assert len(ev) == n and all(isinstance(e["valid"], bool) for e in ev), ev
    with Guest("irq-msi", count=n) as g:
        lines, err, res = run_traced(g, "-w", "-s")
    vm = final_vm(lines, g)
    assert sum(w["samples"] for w in vm["wakeup"]) == n
    assert all(isinstance(w["valid"], int) and 0 <= w["valid"] <= w["samples"] for w in vm["wakeup"])
    assert not any("poll_ok" in w for w in vm["wakeup"])


# ------------------------------------------ irqfd: attribution, latency

def run_all_traced(guest, *flags):
    """run_traced without -p: every process's events, to see whose they are."""
    args = [KVMWATCH, "-o", "json", "--no-host"] + [str(f) for f in flags]
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    try:
        while True:
            line = p.stderr.readline()
            if not line:
                raise AssertionError("kvmwatch exited before attaching: %s" % "".join(err))
            err.append(line)
            if "tracing" in line and "attached" in line:
                break
        guest.go()
        res = guest.finish()
        p.send_signal(signal.SIGINT)
        out, rest = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, "".join(err) + rest
    return [json.loads(l) for l in out.splitlines() if l.strip()], "".join(err) + rest, res


@pytest.mark.parametrize("mode,kinds", [
    # MSI routes are delivered in the writer's own write(2); IOAPIC routes
    # by a kworker running the irqfd's inject work
    ("irq-msi", {"msi": 9, "apic": 9, "eoi": 18}),
    ("irq-ioapic", {"gsi": 18, "ioapic": 18, "apic": 9, "eoi": 18}),
])
def test_irqfd_injections_count_for_the_vm_not_the_writer(mode, kinds):
    n = 9
    with Guest(mode, count=n, extra=["--irqfd"]) as g:
        lines, err, res = run_all_traced(g, "-i", "-s")
    writer = res["irqfd_writer_pid"]
    assert res["irqs_handled"] == n and writer and writer != g.pid
    assert "tp_btf:raw_syscalls:sys_enter" in err, err
    vm = final_vm(lines, g)
    got = {k: v["count"] for k, v in vm["irq"].items() if "count" in v}
    for k, v in kinds.items():
        assert got.get(k) == v, (k, got)
    finals = [l for l in lines if l.get("final")]
    assert not [v for v in finals[0]["vms"] if v["pid"] == writer]
    # the stream: every event is the VM's, made via another process
    with Guest(mode, count=n, extra=["--irqfd"]) as g:
        lines, err, res = run_all_traced(g, "-i")
    writer = res["irqfd_writer_pid"]
    ev = [l for l in lines if l.get("type") == "irq"]
    assert ev and all(e["pid"] == g.pid for e in ev), {(e["pid"], e["kind"]) for e in ev}
    # the writer made the MSI injections, the kworker the IOAPIC ones
    made = [e for e in ev if e["kind"] in ("msi", "ioapic", "gsi", "apic")]
    assert made and all(e.get("via_pid") not in (None, g.pid) for e in made)
    if mode == "irq-msi":
        assert {e["via_pid"] for e in made} == {writer}


@pytest.mark.parametrize("mode", ["irq-msi", "irq-ioapic"])
def test_irq_latency_per_vector(mode):
    """Every injection is accepted once and EOIed once: n samples of each
    latency for the mode's vector, in -s and on the stream's events."""
    n = 9
    vector = 0x31 if mode == "irq-msi" else 0x30
    with Guest(mode, count=n) as g:
        lines, err, res = run_traced(g, "-i", "-s")
    vm = final_vm(lines, g)
    assert vm["irq"]["apic"]["count"] == n  # exact counts stay
    acc = vm["irq"]["accept_latency:%d" % vector]
    eoi = vm["irq"]["eoi_latency:%d" % vector]
    for lat in (acc, eoi):
        assert lat["vector"] == vector and lat["samples"] == n
        assert sum(lat["hist_log2_ns"].values()) == n
        assert 0 < lat["min_ns"] <= lat["avg_ns"] <= lat["max_ns"] < 1e9
    assert eoi["min_ns"] >= acc["min_ns"]  # the EOI comes after the acceptance
    with Guest(mode, count=n) as g:
        lines, err, res = run_traced(g, "-i")
    apic = [l for l in lines if l.get("type") == "irq" and l["kind"] == "apic"]
    assert len(apic) == n and all(a["latency_ns"] > 0 for a in apic)
    eois = [l for l in lines if l.get("type") == "irq" and l["kind"] == "eoi" and l["latency_ns"]]
    assert len(eois) == n
