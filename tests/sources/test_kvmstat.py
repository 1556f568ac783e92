"""The kvmstat source: KVM binary statistics (KVM_GET_STATS_FD) of a real
guest (tests/guest/kvmguest), reached with pidfd_open + pidfd_getfd."""
import os
import subprocess
import time

import pytest

from conftest import needs_kvm, needs_root
from kwtest import KVMWATCH, Guest, find_vm, kvmwatch, kvmwatch_json, wait_for


def vm_report(guest, *extra):
    reps = kvmwatch_json("--no-libvirt", "--no-host", "-p", guest.pid, *extra, "0.05", "1")
    vm = find_vm(reps[-1], guest.name)
    assert vm is not None, reps
    return reps[-1], vm


def settled(guest, stat, want, metric="kvm.vcpu"):
    """Poll until the guest's vCPU stat (summed, or kvm.vcpu_each) reaches
    want; return the VM."""
    def probe():
        _, vm = vm_report(guest)
        return vm if vm["metrics"].get(metric, {}).get(stat) == want else None
    return wait_for(probe, timeout=30, interval=0.1, what="%s %s == %d" % (metric, stat, want))


def check_against_guest(vm, result):
    """Every cumulative vCPU stat kvmwatch read equals what the guest read
    from its own stats fds after the program (nothing runs after it)."""
    want = {}
    for v in result["vcpu"]:
        for k, x in v["stats"].items():
            if k in vm["metrics"]["kvm.vcpu"]:
                want[k] = want.get(k, 0) + x
    assert want, "no common stats"
    for k, x in want.items():
        assert vm["metrics"]["kvm.vcpu"][k] == x, k
    for v in result["vcpu"]:
        for k, x in v["stats"].items():
            key = "%d.%s" % (v["index"], k)
            if key in vm["metrics"]["kvm.vcpu_each"]:
                assert vm["metrics"]["kvm.vcpu_each"][key] == x, key


@needs_kvm
@needs_root
def test_mmio_exits_exact():
    n = 9
    with Guest(mode="mmio", count=n, hold=60) as g:
        rep, vm = vm_report(g)
        assert rep["sources"]["kvmstat"] == {"available": True}
        assert vm["metrics"]["kvm.vcpu"]["mmio_exits"] == 0  # parked before go
        g.go()
        vm = settled(g, "mmio_exits", n)
        _, vm = vm_report(g)  # stable once the program ended
        m = vm["metrics"]
        assert m["kvm.vcpu"]["mmio_exits"] == n
        assert m["kvm.vcpu"]["halt_exits"] == 1
        assert m["kvm.vcpu"]["exits"] == n + 1  # one KVM_RUN return per write, one HLT
        assert m["kvm.vcpu_each"]["0.mmio_exits"] == n
        # the descriptors' types: counters vs gauges, VM-level stats too
        assert "blocking" in m["kvm.vcpu_gauge"] and "blocking" not in m["kvm.vcpu"]
        assert "mmu_cache_miss" in m["kvm.vm"]
        assert "pages_4k" in m["kvm.vm_gauge"]
        # histograms are summed over their buckets, as counters
        assert "halt_wait_hist" in m["kvm.vcpu"]
        res = g.finish()
    assert res["mmio_write"] == n
    check_against_guest(vm, res)
    for k, x in res["vm_stats"].items():
        if k in vm["metrics"]["kvm.vm"]:
            assert vm["metrics"]["kvm.vm"][k] == x, k


@needs_kvm
@needs_root
def test_halt_and_pio_exits_two_vcpus():
    n = 6
    with Guest(mode="hlt", count=n, hold=60) as g:
        g.go()
        vm = settled(g, "halt_exits", n)
        res = g.finish()
    assert vm["metrics"]["kvm.vcpu_each"]["0.halt_exits"] == n
    check_against_guest(vm, res)

    with Guest(mode="pio", count=n, vcpus=2, hold=60) as g:
        g.go()
        vm = settled(g, "0.exits", n + 1, metric="kvm.vcpu_each")
        time.sleep(0.3)  # vCPU 1 halts on its own; let it settle too
        _, vm = vm_report(g)
        res = g.finish()
    # the BSP does N outs and a HLT; io_exits counts exits that KVM took as
    # port I/O (0 where the emulator completes them, as under PVM; N on VMX)
    bsp = res["vcpu"][0]
    assert bsp["exits"]["io"] == n
    assert vm["metrics"]["kvm.vcpu_each"]["0.exits"] == bsp["runs"]
    assert vm["metrics"]["kvm.vcpu"]["io_exits"] == sum(v["stats"]["io_exits"] for v in res["vcpu"])
    assert set(k.split(".")[0] for k in vm["metrics"]["kvm.vcpu_each"]) == {"0", "1"}
    check_against_guest(vm, res)


@needs_kvm
@needs_root
def test_pf_fixed_pages():
    k = 12
    with Guest(mode="pages", count=k, hold=60) as g:
        g.go()
        vm = settled(g, "pf_fixed", k + 2)
        res = g.finish()
    check_against_guest(vm, res)


@needs_kvm
@needs_root
def test_fds_closed_when_vm_goes_away():
    """kvmwatch holds dup'ed stats fds only while the VM exists."""
    g = Guest(mode="hlt", count=1, hold=120).start()
    kw = subprocess.Popen([KVMWATCH, "--no-libvirt", "--no-host", "-o", "json", "-p", g.name, "0.1"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        def kvm_fds():
            n = 0
            for fd in os.listdir("/proc/%d/fd" % kw.pid):
                try:
                    if "kvm-" in os.readlink("/proc/%d/fd/%s" % (kw.pid, fd)):
                        n += 1
                except OSError:
                    pass
            return n
        wait_for(lambda: kvm_fds() == 2, timeout=20, what="VM + vCPU stats fds held")
        g.kill()
        wait_for(lambda: kvm_fds() == 0, timeout=20, what="stats fds closed")
        assert kw.poll() is None  # still running
    finally:
        g.kill()
        kw.terminate()
        _, err = kw.communicate(timeout=20)
    assert "error" not in err


def test_non_root_unavailable_with_reason():
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMWATCH,
                        "--no-libvirt", "-o", "json", "0.05", "1"], capture_output=True, text=True, timeout=60)
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to nobody")
    assert r.returncode == 0, r.stderr
    import json
    rep = json.loads(r.stdout.splitlines()[-1])
    src = rep["sources"]["kvmstat"]
    assert src["available"] is False
    assert src["reason"].startswith("kvmstat needs CAP_SYS_PTRACE (root has it): ")
    assert r.stderr.count("kvmstat source unavailable") == 1


def test_disabled_by_flag():
    rep = kvmwatch_json("--no-libvirt", "--no-kvmstat", "0.05", "1")[-1]
    assert rep["sources"]["kvmstat"] == {"available": False, "reason": "disabled by configuration"}


def test_fixture_procfs_unavailable(tmp_path):
    (tmp_path / "stat").write_text("cpu  1 2 3 4 5 6 7 8 9 10\ncpu0 1 2 3 4 5 6 7 8 9 10\n")
    r = kvmwatch("--no-libvirt", "--procfs", tmp_path, "-o", "json", "0.05", "1")
    assert r.returncode == 0, r.stderr
    import json
    src = json.loads(r.stdout.splitlines()[-1])["sources"]["kvmstat"]
    assert src["available"] is False and "local processes only" in src["reason"]


@needs_kvm
@needs_root
def test_kvm_view_shows_moving_stats():
    with Guest(mode="demo", hold=60, extra=["--seconds", "20"]) as g:
        g.go()
        r = kvmwatch("--no-libvirt", "--no-host", "-p", g.pid, "--view", "kvm", "0.5", "1", check=True)
        g.kill()
    rows = {l.split()[2]: l.split() for l in r.stdout.splitlines() if l.startswith(g.name + " ")}
    assert "exits" in rows, r.stdout
    assert float(rows["exits"][3]) > 0 and int(rows["exits"][4]) > 0


@needs_kvm
@needs_root
def test_units_follow_the_stat_not_the_row():
    """halt_wait_ns is nanoseconds (KVM's STATS_DESC_TIME_NSEC), not a count
    (field test: 'count' in --view all, a bare 2e9 RATE/s in --view kvm)."""
    with Guest("demo", wait=False) as g:
        time.sleep(0.3)
        r = kvmwatch("--view", "all", "--no-host", "-p", str(g.pid), "0.2", "2", check=True)
        rows = {(l.split()[1], l.split()[2]): l.split()[-1] for l in r.stdout.splitlines()[1:] if len(l.split()) >= 5}
        assert rows[("kvm.vcpu", "halt_wait_ns")] == "ns"
        assert rows[("kvm.vcpu", "exits")] == "count"
        assert rows[("kvm.vcpu", "halt_poll_success_hist")] == "count"   # a histogram: its events
        r = kvmwatch("--view", "kvm", "--no-host", "-p", str(g.pid), "0.2", "2", check=True)
        head = [l for l in r.stdout.splitlines() if l.startswith("VM ")][0].split()
        assert head[-3:] == ["RATE/s", "TOTAL", "UNIT"]
        units = {l.split()[2]: l.split()[-1] for l in r.stdout.splitlines() if l.startswith(g.name)}
        assert units and all(u == ("ns" if s.endswith("_ns") else "count") for s, u in units.items()), units
