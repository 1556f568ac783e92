"""kvmwatch's eBPF event modes (-e -s -f -m -d -n -w -i) against the project's
own KVM guests, asserting the exact counts the kernel gives (LAB.md)."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT, needs_btf, needs_kvm, needs_root
from kwtest import KVMWATCH, Guest, kvmwatch, start_attached, stop_attached
from kwuapi import MISSING, have_headers, kernel_expectation, user_expectation

pytestmark = [needs_kvm, needs_root, needs_btf]
needs_headers = pytest.mark.skipif(not have_headers(), reason=MISSING)

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


def run_traced(guest, *flags, env=None, linger=0.0, tracefs=None, select=True):
    """Start kvmwatch -o json -p GUEST FLAGS (select=False: without -p and
    --no-host, every process's events, to see whose they are), wait until it
    says it is attached, let the guest run, stop kvmwatch with SIGINT.
    tracefs=True runs it with tracefs mounted, False without (private mount
    namespace), None as the host is.  Returns (json lines, stderr, guest
    result)."""
    args = [KVMWATCH, "-o", "json"] + (["-p", str(guest.pid)] if select else ["--no-host"]) + \
        [str(f) for f in flags]
    if tracefs is not None:
        args = (WITH_TRACEFS if tracefs else WITHOUT_TRACEFS) + args
    p, err = start_attached(args, env=env)
    try:
        guest.go()
        if linger:
            time.sleep(linger)      # let interval summaries happen (the guest holds)
        res = guest.finish()
        lines, text = stop_attached(p, err)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return lines, text, res


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

@pytest.mark.parametrize("mode,kinds", [
    # MSI routes are delivered in the writer's own write(2); IOAPIC routes
    # by a kworker running the irqfd's inject work
    ("irq-msi", {"msi": 9, "apic": 9, "eoi": 18}),
    ("irq-ioapic", {"gsi": 18, "ioapic": 18, "apic": 9, "eoi": 18}),
])
def test_irqfd_injections_count_for_the_vm_not_the_writer(mode, kinds):
    n = 9
    with Guest(mode, count=n, extra=["--irqfd"]) as g:
        lines, err, res = run_traced(g, "-i", "-s", select=False)
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
        lines, err, res = run_traced(g, "-i", select=False)
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


# ------------------------------------------- replayed in-kernel exits
# kvm_exit/kvm_entry never fire under PVM (LAB.md), so the in-kernel exit
# path is driven with recorded exits: `-e --replay FILE` runs each record
# through exits.bpf.c's replay_exit program (BPF_PROG_TEST_RUN), which calls
# the exit_begin_for/exit_end_for that kvm_exit/kvm_entry use on a real
# host; the stats map, the ring buffer and the tables are the live ones.
# What is not exercised: the kvm_exit tracepoint's own field reading.

def free_pid():
    """A pid no process has: the records of a VM of another host."""
    pid = 3999999
    while os.path.exists("/proc/%d" % pid):
        pid -= 1
    return pid


def replay_records(other):
    """The VMX and user-space exits of the replay VM (no PID), the SVM
    exits of VM `other`; each (isa, reason as written, vcpu, latency ns or
    None, pid or None)."""
    r = []
    r += [("vmx", "48", 0, ns, None) for ns in (1500, 1600, 1700)]
    r += [("vmx", "EPT_VIOLATION", 1, ns, None) for ns in (3000, 3500)]
    r += [("vmx", "30", 0, 600, None), ("vmx", "io_instruction", 1, 700, None), ("vmx", "0x1e", 0, 800, None)]
    r += [("vmx", "0xc", 0, 100000, None), ("vmx", "HLT", 1, 200000, None)]
    r += [("vmx", "99", 0, 50, None)]                  # no such VMX exit reason
    r += [("vmx", "0x80000021", 1, 40, None)]          # failed VM entry (bit 31) + INVALID_STATE
    r += [("user", "io", 0, 2000, None), ("user", "2", 0, 2100, None), ("user", "EINTR", 1, 500, None)]
    r += [("svm", "0x400", 0, ns, other) for ns in (5000, 5000, 9000)] + [("svm", "npf", 1, 20000, other)]
    r += [("svm", "0x7b", 0, 900, other) for _ in range(3)]
    r += [("svm", "0x78", 0, 300000, other), ("svm", "rdpru", 0, 100, other), ("svm", "0xffffffff", 0, 70, other)]
    r += [("svm", "hlt", 1, None, other)]              # its vCPU's last exit: never entered again
    r += [("vmx", "12", 1, None, None)]
    return r


def replay_file(tmp_path, records):
    lines = ["# recorded exits: ISA REASON VCPU LATENCY_NS [PID [TID]]", ""]
    for isa, reason, vcpu, ns, pid in records:
        lines.append("%s %s %d %s%s   # comment" % (isa, reason, vcpu, "-" if ns is None else ns,
                                                   "" if pid is None else " %d" % pid))
    f = tmp_path / "exits.txt"
    f.write_text("\n".join(lines) + "\n")
    return str(f)


def run_replay(*args, json_out=True):
    p = subprocess.Popen([KVMWATCH] + (["-o", "json"] if json_out else []) + [str(a) for a in args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    return p.pid, [json.loads(l) for l in out.splitlines() if l.strip()] if json_out else out, err


def decoded(isa, reason):
    """(code, name) a record's reason must be counted as: the kernel's
    tables name it (kwuapi parses them from the headers)."""
    names = kernel_expectation(isa) if isa != "user" else user_expectation()
    try:
        code = int(reason, 0)
    except ValueError:
        code = next(c for c, (n, s) in names.items() if n.lower() == reason.lower())
    if isa == "vmx":
        code &= 0xffff                                  # the basic exit reason, as live
    return code, names[code][0] if code in names else "REASON_0x%x" % code


def bucket(ns):
    return 0 if ns < 2 else 1 << (ns.bit_length() - 1)


def expected_rows(records, pid_of, per_vcpu=False):
    """{(pid, vcpu or None, isa, reason name): row} as -e -s must show it."""
    rows = {}
    for isa, reason, vcpu, ns, pid in records:
        code, name = decoded(isa, reason)
        r = rows.setdefault((pid_of(pid), vcpu if per_vcpu else None, isa, name),
                            {"code": code, "samples": 0, "lat": []})
        r["samples"] += 1
        if ns is not None:
            r["lat"].append(ns)
    return rows


@needs_headers
def test_replay_exits_stats_json(tmp_path):
    other = free_pid()
    recs = replay_records(other)
    me, lines, err = run_replay("-e", "-s", "--replay", replay_file(tmp_path, recs))
    assert "replaying %d exits from" % len(recs) in err
    assert len(lines) == 1 and lines[0]["final"]
    vms = {v["pid"]: v for v in lines[0]["vms"]}
    # no PID: the replaying kvmwatch's own process, VM "replay"; PID of no
    # VM running here: "pid-N"
    assert sorted(vms) == sorted([me, other])
    assert vms[me]["name"] == "replay" and vms[other]["name"] == "pid-%d" % other
    want = expected_rows(recs, lambda pid: pid or me)
    got = {(pid, None, e["isa"], e["reason"]): e for pid, v in vms.items() for e in v["exits"]}
    assert set(got) == set(want)
    for key, w in want.items():
        g = got[key]
        assert g["code"] == w["code"] and g["samples"] == w["samples"], (key, g)
        assert g["timed"] == len(w["lat"]) and g["time_ns"] == sum(w["lat"]), (key, g)
        hist = {}
        for ns in w["lat"]:
            hist[str(bucket(ns))] = hist.get(str(bucket(ns)), 0) + 1
        assert g["hist_log2_ns"] == hist, (key, g)
        if w["lat"]:
            assert (g["min_ns"], g["max_ns"]) == (min(w["lat"]), max(w["lat"]))
            assert abs(g["avg_ns"] - sum(w["lat"]) / len(w["lat"])) < 0.1
        else:
            assert g["min_ns"] is g["avg_ns"] is g["max_ns"] is None
        isa_total = sum(x["samples"] for k, x in want.items() if k[0] == key[0] and k[2] == key[2])
        assert abs(g["samples_pct"] - 100.0 * w["samples"] / isa_total) < 0.01
    # the same, spelled out: the kernel's names for the codes of the brief
    r = {(k[2], k[3]): g for k, g in got.items()}
    assert (r["vmx", "EPT_VIOLATION"]["samples"], r["vmx", "EPT_VIOLATION"]["code"]) == (5, 48)
    assert r["vmx", "EPT_VIOLATION"]["hist_log2_ns"] == {"1024": 3, "2048": 2}
    assert (r["vmx", "IO_INSTRUCTION"]["samples"], r["vmx", "IO_INSTRUCTION"]["code"]) == (3, 30)
    assert (r["vmx", "HLT"]["samples"], r["vmx", "HLT"]["timed"]) == (3, 2)
    assert r["vmx", "HLT"]["hist_log2_ns"] == {"65536": 1, "131072": 1}
    assert r["vmx", "REASON_0x63"]["samples"] == 1 and r["vmx", "INVALID_STATE"]["code"] == 33
    assert (r["svm", "npf"]["samples"], r["svm", "npf"]["code"]) == (4, 0x400)
    assert r["svm", "npf"]["hist_log2_ns"] == {"4096": 2, "8192": 1, "16384": 1}
    assert (r["svm", "io"]["samples"], r["svm", "io"]["code"]) == (3, 0x7b)
    assert (r["svm", "hlt"]["samples"], r["svm", "hlt"]["timed"], r["svm", "hlt"]["code"]) == (2, 1, 0x78)
    assert r["svm", "rdpru"]["code"] == 0x8e and r["svm", "invalid_guest_state"]["code"] == 0xffffffff
    assert (r["user", "IO"]["samples"], r["user", "EINTR"]["code"]) == (2, 0x10000)


def parse_exit_tables(out):
    """-e -s text: {vm label: {"rows": {(vcpu, isa, reason): [samples, min_us, max_us]},
    "hist": {label: {bucket: count}}, "total": line}}."""
    vms, cur, hist = {}, None, None
    for line in out.splitlines():
        if line.startswith("VM "):
            cur = vms.setdefault(line[3:], {"rows": {}, "hist": {}})
            hist = None
        elif cur is None or not line.strip() or "EXIT REASON" in line or line.strip() == "exits:":
            continue
        elif line.startswith("  total:"):
            cur["total"] = line.strip()
        elif " : " in line:
            left, right = line.split(" : ")
            count = right.split("|")[0].strip()
            if count == "count":
                hist = cur["hist"].setdefault(left.strip(), {})
            elif int(count):
                hist[int(left.split("->")[0])] = int(count)
        else:
            f = line.split()
            cur["rows"][(f[0], f[1], f[2])] = [int(f[3])] + [None if x == "-" else float(x) for x in (f[6], f[8])]
    return vms


@needs_headers
def test_replay_exits_stats_text(tmp_path):
    other = free_pid()
    recs = replay_records(other)
    me, out, err = run_replay("-e", "-s", "--replay", replay_file(tmp_path, recs), json_out=False)
    vms = parse_exit_tables(out)
    assert set(vms) == {"replay (pid %d)" % me, "pid-%d (pid %d)" % (other, other)}
    want = expected_rows(recs, lambda pid: pid or me)
    for label, pid in (("replay (pid %d)" % me, me), ("pid-%d (pid %d)" % (other, other), other)):
        v = vms[label]
        mine = {k: w for k, w in want.items() if k[0] == pid}
        assert v["rows"] == {("all", k[2], k[3]): [w["samples"], min(w["lat"]) / 1e3 if w["lat"] else None,
                                                    max(w["lat"]) / 1e3 if w["lat"] else None]
                             for k, w in mine.items()}
        kernel = sum(w["samples"] for k, w in mine.items() if k[2] != "user")
        user = sum(w["samples"] for k, w in mine.items() if k[2] == "user")
        assert v["total"] == "total: %d exits in the kernel, %d to user space" % (kernel, user)
        # one latency histogram per kind of exit, every reason together
        for isa, lab in (("vmx", "vmx exit ns"), ("svm", "svm exit ns"), ("user", "to user space ns")):
            h = {}
            for k, w in mine.items():
                if k[2] == isa:
                    for ns in w["lat"]:
                        h[bucket(ns)] = h.get(bucket(ns), 0) + 1
            assert v["hist"].get(lab, {}) == h, (label, lab)
    rows = vms["replay (pid %d)" % me]["rows"]
    assert rows["all", "vmx", "EPT_VIOLATION"] == [5, 1.5, 3.5]
    assert vms["pid-%d (pid %d)" % (other, other)]["hist"]["svm exit ns"] == {
        64: 2, 512: 3, 4096: 2, 8192: 1, 16384: 1, 262144: 1}


@needs_headers
def test_replay_exits_stream_and_per_vcpu(tmp_path):
    other = free_pid()
    recs = replay_records(other)
    path = replay_file(tmp_path, recs)
    me, lines, err = run_replay("-e", "--replay", path)
    assert lines[-1]["type"] == "end" and lines[-1]["events"] == len(recs) and lines[-1]["lost_total"] == 0
    ev = [l for l in lines if l["type"] == "exit"]
    timed = [r for r in recs if r[3] is not None]
    # each timed exit as it ended (in the file's order), then the two
    # never entered again, unfinished (in the pending map's order)
    assert len(ev) == len(recs)
    ev = ev[:len(timed)] + sorted(ev[len(timed):], key=lambda e: e["isa"] != "vmx")
    for e, (isa, reason, vcpu, ns, pid) in zip(ev, timed + [r for r in recs if r[3] is None][::-1]):
        code, name = decoded(isa, reason)
        assert (e["isa"], e["reason"], e["code"], e["vcpu"], e["pid"]) == (isa, name, code, vcpu, pid or me)
        assert e["vm"] == ("replay" if pid is None else "pid-%d" % pid)
        assert e["latency_ns"] == ns and e["unfinished"] == (ns is None)
    # the replay VMs' vCPU threads: made up, one per (pid, vCPU), above any real tid
    threads = {}
    for e in ev:
        threads.setdefault((e["pid"], e["vcpu"]), set()).add(e["tid"])
    assert all(len(t) == 1 and min(t) >= 0x40000000 for t in threads.values())
    assert len(set.union(*threads.values())) == len(threads) == 4
    # --per-vcpu: the same counts, split by the records' vCPU
    me, lines, err = run_replay("-e", "-s", "--per-vcpu", "--replay", path)
    want = expected_rows(recs, lambda pid: pid or me, per_vcpu=True)
    got = {(v["pid"], int(e["vcpu"]), e["isa"], e["reason"]): (e["samples"], e["timed"])
           for v in lines[0]["vms"] for e in v["exits"]}
    assert got == {k: (w["samples"], len(w["lat"])) for k, w in want.items()}
    assert got[me, 0, "vmx", "EPT_VIOLATION"] == (3, 3) and got[me, 1, "vmx", "EPT_VIOLATION"] == (2, 2)


def test_replay_attributed_to_a_running_vm(tmp_path):
    """Records naming the pid of a VM running here count for that VM, on
    its vCPU threads; -p selects among the records as on a live host."""
    with Guest("pio", count=1, vcpus=2) as g:
        recs = [("vmx", "48", 0, 1000, g.pid), ("vmx", "48", 1, 2000, g.pid), ("vmx", "30", 1, 3000, g.pid),
                ("vmx", "48", 0, 4000, None)]
        path = replay_file(tmp_path, recs)
        me, lines, err = run_replay("-e", "-s", "--per-vcpu", "-p", g.pid, "--replay", path)
        assert [v["pid"] for v in lines[0]["vms"]] == [g.pid]
        vm = lines[0]["vms"][0]
        assert vm["name"] == g.name
        assert {(e["vcpu"], e["reason"]): e["samples"] for e in vm["exits"]} == {
            ("0", "EPT_VIOLATION"): 1, ("1", "EPT_VIOLATION"): 1, ("1", "IO_INSTRUCTION"): 1}
        me, lines, err = run_replay("-e", "--replay", path)
        g.go()
        res = g.finish()
    tids = {v["index"]: v["tid"] for v in res["vcpu"]}
    ev = [l for l in lines if l["type"] == "exit"]
    assert [(e["vm"], e["pid"], e["tid"], e["vcpu"]) for e in ev[:3]] == [
        (g.name, g.pid, tids[0], 0), (g.name, g.pid, tids[1], 1), (g.name, g.pid, tids[1], 1)]
    assert (ev[3]["vm"], ev[3]["pid"], ev[3]["tid"]) == ("replay", me, 0x40000000)


@pytest.mark.parametrize("content,msg", [
    ("vmx 48 0\n", "exits.txt:1: 3 fields, not ISA REASON VCPU LATENCY_NS [PID [TID]]"),
    ("# x\nvmy 48 0 10\n", "exits.txt:2: invalid ISA 'vmy' (vmx, svm or user)"),
    ("svm NOPE 0 10\n", "exits.txt:1: unknown svm exit reason 'NOPE'"),
    ("vmx 48 0 -5\n", "exits.txt:1: invalid LATENCY_NS '-5'"),
    ("vmx 48 x 5\n", "exits.txt:1: invalid VCPU 'x'"),
    ("vmx 48 0 5 0 0\n", "exits.txt:1: invalid TID '0'"),
])
def test_replay_bad_file(tmp_path, content, msg):
    f = tmp_path / "exits.txt"
    f.write_text(content)
    r = kvmwatch("-e", "--replay", str(f))
    assert r.returncode == 1 and r.stdout == ""
    assert msg in r.stderr, r.stderr


@pytest.mark.parametrize("args", [["--replay", "f"], ["-e", "-f", "--replay", "f"], ["-e", "--replay", "f", "1"],
                                  ["-e", "--replay", "f", "-t", "1"]])
def test_replay_bad_arguments(args):
    r = kvmwatch(*args)
    assert r.returncode == 2 and "--replay replays exits: it needs -e" in r.stderr


def test_replay_non_root_clear_error():
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMWATCH, "-e",
                        "--replay", "-"], input="vmx 48 0 10\n", capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "bpf needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN (root has them)" in r.stderr, r.stderr


def test_replay_from_stdin():
    r = subprocess.run([KVMWATCH, "-e", "-s", "-o", "json", "--replay", "-"], capture_output=True, text=True,
                       timeout=30, input="vmx EPT_VIOLATION 0 1000\nsvm npf 0 2000\nsvm 0x400 0 -\n")
    assert r.returncode == 0, r.stderr
    assert "replaying 3 exits from stdin" in r.stderr
    exits = json.loads(r.stdout)["vms"][0]["exits"]
    assert {(e["isa"], e["reason"]): (e["samples"], e["timed"]) for e in exits} == {
        ("vmx", "EPT_VIOLATION"): (1, 1), ("svm", "npf"): (2, 1)}


# ------------------------------------- --per-vcpu for every family
# A 2-vCPU guest whose program runs on vCPU 0 (vCPU 1 halts): each row
# carries "vcpu" ("0", "1", or null for "other": the VM's threads that are
# no vCPU and injections made from outside it), and the rows of a kind add
# up to the exact totals of LAB.md.

def per_vcpu_run(mode, flag, n=9, extra=()):
    with Guest(mode, count=n, vcpus=2, extra=list(extra)) as g:
        lines, err, res = run_traced(g, flag, "-s", "--per-vcpu")
    return final_vm(lines, g), res


def split(counts):
    """{"V:kind": {...}} -> {kind: {vcpu: count}}, checking each row's "vcpu" member."""
    out = {}
    for key, v in counts.items():
        vc, kind = key.split(":", 1)
        assert v["vcpu"] == (None if vc == "other" else vc), (key, v)
        out.setdefault(kind, {})[v["vcpu"]] = v["count"]
    return out


def test_per_vcpu_exits_and_mmio():
    n = 7
    vm, res = per_vcpu_run("pio", "-e", n)
    io = [e for e in vm["exits"] if e["reason"] == "IO"]
    assert [(e["vcpu"], e["samples"]) for e in io] == [("0", n)]
    # every exit to user space is one of a vCPU's (vCPU 1 halts)
    assert {e["vcpu"] for e in vm["exits"]} <= {"0", "1"}
    vm, res = per_vcpu_run("mmio", "-m", n)
    assert vm["mmio"]["counts"] == {"0:write": {"vcpu": "0", "count": n}}


def test_per_vcpu_faults_are_each_vcpus_pf_fixed():
    k = 9
    vm, res = per_vcpu_run("pages", "-f", k)
    fixed = {str(v["index"]): v["stats"]["pf_fixed"] for v in res["vcpu"]}
    assert sum(fixed.values()) == k + 2 and fixed["0"] >= k
    # a fault with its SPTE installed is what the vCPU's pf_fixed counts
    rows = {f["vcpu"]: f for f in vm["faults"]}
    assert set(rows) <= {"0", "1"}
    assert {v: rows[v]["timed"] if v in rows else 0 for v in fixed} == fixed
    assert all(sum(f["hist_log2_ns"].values()) == f["timed"] for f in rows.values())


def test_per_vcpu_dirty_pages():
    k = 8
    vm, res = per_vcpu_run("dirty", "-d", k)
    assert res["dirty_harvested"] == k
    assert vm["dirty"]["pages"] == k
    assert vm["dirty"]["per_vcpu"] == [{"vcpu": "0", "source": "dirty_ring_push", "pages": k}]


@pytest.mark.parametrize("mode,extra,expect", [
    # injected by the VMM's own non-vCPU thread (other), accepted there,
    # EOIed by vCPU 0
    ("irq-msi", (), {"msi": {None: 9}, "apic": {None: 9}, "eoi": {"0": 18}}),
    # injected by another process through an irqfd: no thread of the VM
    ("irq-msi", ("--irqfd",), {"msi": {None: 9}, "apic": {None: 9}, "eoi": {"0": 18}}),
    # the PIC's acks happen on the vCPU that takes the interrupt
    ("irq-pic", (), {"gsi": {None: 18}, "pic": {None: 18}, "ioapic": {None: 18}, "ack": {"0": 9}}),
])
def test_per_vcpu_irq(mode, extra, expect):
    n = 9
    with Guest(mode, count=n, vcpus=2, extra=list(extra)) as g:
        if extra:
            lines, err, res = run_traced(g, "-i", "-s", "--per-vcpu", select=False)
        else:
            lines, err, res = run_traced(g, "-i", "-s", "--per-vcpu")
    vm = final_vm(lines, g)
    assert res["irqs_handled"] == n
    lat = {k: v for k, v in vm["irq"].items() if "_latency:" in k}
    got = split({k: v for k, v in vm["irq"].items() if k not in lat})
    for kind, want in expect.items():
        assert got.get(kind) == want, (kind, got)
    if mode == "irq-msi":
        vec = 0x31
        assert set(lat) == {"other:accept_latency:%d" % vec, "0:eoi_latency:%d" % vec}, lat
        acc, eoi = lat["other:accept_latency:%d" % vec], lat["0:eoi_latency:%d" % vec]
        assert (acc["vcpu"], eoi["vcpu"]) == (None, "0")
        assert acc["samples"] == eoi["samples"] == n


def test_per_vcpu_wakeups_and_haltpoll():
    n = 9
    vm, res = per_vcpu_run("irq-msi", "-w", n)
    woke = {str(v["index"]): v["stats"]["halt_wakeup"] for v in res["vcpu"]}
    got = {}
    for w in vm["wakeup"]:
        got[w["vcpu"]] = got.get(w["vcpu"], 0) + w["samples"]
    assert got == {v: c for v, c in woke.items() if c} and got["0"] == n
    with Guest("haltpoll", count=200, vcpus=2,
               extra=["--halt-poll-ns", "1000000", "--irq-period-us", "100"]) as g:
        lines, err, res = run_traced(g, "-n", "-s", "--per-vcpu")
    vm = final_vm(lines, g)
    assert vm["haltpoll"] and all(h["vcpu"] == str(h["vcpu_id"]) == "0" for h in vm["haltpoll"]), vm


# ---------------------------------- min/max per interval, since start
# The kernel keeps each interval's aggregates apart (an epoch per
# interval, bpf/kw_helpers.bpf.h): an interval's min_ns/max_ns are its own
# samples', the final report's since start.  A replay file's "interval"
# line ends an interval there, so the samples of each are known.

def test_interval_min_max_replayed(tmp_path):
    f = tmp_path / "exits.txt"
    f.write_text("vmx 48 0 900000\nvmx 48 0 1000\nvmx 48 1 5000\ninterval\n"
                 "vmx 48 0 2000\nvmx 48 0 3000\nvmx 48 1 4000\ninterval\ninterval\n"
                 "vmx 48 0 1500\nuser io 0 50\n")
    me, lines, err = run_replay("-e", "-s", "--replay", str(f))
    assert "replaying 8 exits from" in err
    assert [l["final"] for l in lines] == [False, False, False, True]

    def ept(line):
        vms = [v for v in line["vms"] if v["pid"] == me]
        rows = [e for v in vms for e in v["exits"] if e["reason"] == "EPT_VIOLATION"]
        return [(e["samples"], e["timed"], e["time_ns"], e["min_ns"], e["max_ns"]) for e in rows]
    assert ept(lines[0]) == [(3, 3, 906000, 1000, 900000)]
    assert ept(lines[1]) == [(3, 3, 9000, 2000, 5000 - 1000)]  # the slow one was the first interval's
    assert lines[2]["vms"] == []                                 # nothing in it
    assert ept(lines[3]) == [(7, 7, 916500, 1000, 900000)]       # since start
    # per vCPU, the same split
    me, lines, err = run_replay("-e", "-s", "--per-vcpu", "--replay", str(f))
    rows = [{e["vcpu"]: (e["min_ns"], e["max_ns"]) for v in l["vms"] for e in v["exits"]
             if e["reason"] == "EPT_VIOLATION"} for l in lines]
    assert rows == [{"0": (1000, 900000), "1": (5000, 5000)}, {"0": (2000, 3000), "1": (4000, 4000)}, {},
                    {"0": (1000, 900000), "1": (4000, 5000)}]
    # the text says which
    me, out, err = run_replay("-e", "-s", "--replay", str(f), json_out=False)
    assert out.count("[min/max of the interval]") == 3 and out.count("[min/max since start]") == 1
    tables = [parse_exit_tables(part) for part in out.split("\n--- interval")[1:]]
    assert tables[1]["replay (pid %d)" % me]["rows"][("all", "vmx", "EPT_VIOLATION")] == [3, 2.0, 4.0]


def test_interval_min_max_live_exact():
    """Live exits, 0.1 s intervals: each interval's min/max are in its own
    histogram's lowest and highest buckets, and together the intervals
    give the final report's since-start min, max and timed count."""
    n = 40
    with Guest("pio", count=n, hold=60) as g:
        lines, err, res = run_traced(g, "-e", "-s", "0.1", linger=0.8)
    vm = final_vm(lines, g)
    fin = [e for e in vm["exits"] if e["reason"] == "IO"][0]
    assert fin["samples"] == fin["timed"] == n
    rows = [e for l in lines if not l["final"] for v in l["vms"] if v["pid"] == g.pid
            for e in v["exits"] if e["reason"] == "IO" and e["timed"]]
    assert rows
    for e in rows:
        slots = sorted(int(b) for b in e["hist_log2_ns"])
        assert bucket(e["min_ns"]) == slots[0] and bucket(e["max_ns"]) == slots[-1], e
        assert sum(e["hist_log2_ns"].values()) == e["timed"]
    assert sum(e["timed"] for e in rows) == n
    assert min(e["min_ns"] for e in rows) == fin["min_ns"]
    assert max(e["max_ns"] for e in rows) == fin["max_ns"]
