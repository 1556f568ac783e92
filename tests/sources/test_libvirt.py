"""The libvirt source: test:///default (no daemon) for the mapping, and a real
libvirtd (private, see lvtest.py) running a KVM domain for the join with its
QEMU process, the bulk stats and surviving a daemon restart."""
import json
import os
import subprocess
import time

import pytest

from conftest import needs_binary, needs_kvm, needs_root
from kwtest import KVMWATCH, find_vm, kvmwatch, kvmwatch_json, wait_for

KIB = 1024

# ------------------------------------------------------------ test:///default


def test_default_test_domain_exact():
    reps = kvmwatch_json("-c", "test:///default", "--no-kvmstat", "--no-host", "0.05", "2")
    rep = reps[-1]
    assert rep["sources"]["libvirt"] == {"available": True}
    vm = find_vm(rep, "test")
    assert vm is not None
    assert vm["uuid"] == "6695eb01-f6a4-8304-79aa-97f2502e193f"
    assert vm["dom_id"] == 1
    assert vm["state"] == "running"
    assert vm["found"] == "libvirt"
    assert vm["pid"] == 0 and vm["vmm"] == "libvirt"
    assert vm["vcpus"] == 2
    m = vm["metrics"]
    assert m["dom.state"] == 1
    assert m["dom.vcpus"] == 2
    assert m["vm.vcpus"] == 2
    assert m["mem.max"] == 8388608 * KIB
    assert m["mem.current"] == 2097152 * KIB
    assert m["balloon.rss"] == 1048576 * KIB
    assert m["balloon.usable"] == 1048576 * KIB
    assert m["balloon.unused"] == 1048576 * KIB
    assert m["balloon.available"] == 2097152 * KIB
    assert m["balloon.disk_caches"] == 262144 * KIB
    for k in ("balloon.swap_in", "balloon.swap_out", "balloon.major_faults", "balloon.minor_faults"):
        assert m[k] == 0, k
    assert m["dom.cpu_time"] > 0
    # counters get rates, gauges do not
    assert "balloon.swap_in" in vm["rates"] and "mem.max" not in vm["rates"]


def test_name_filter_and_text_views():
    r = kvmwatch("-c", "test:///default", "--no-kvmstat", "-p", "test", "--view", "all", "0.05", "1", check=True)
    lines = [l for l in r.stdout.splitlines() if l.startswith("test ")]
    assert any(" mem.current " in l and " 2147483648 " in l for l in lines), r.stdout
    r = kvmwatch("-c", "test:///default", "--no-kvmstat", "--no-procfs", "-l", check=True)
    assert "6695eb01-f6a4-8304-79aa-97f2502e193f" in r.stdout and "libvirt" in r.stdout


def test_bad_uri_unavailable_rest_works():
    r = kvmwatch("-c", "nosuchdriver:///x", "--no-kvmstat", "-o", "json", "0.05", "1")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.splitlines()[-1])
    src = rep["sources"]["libvirt"]
    assert src["available"] is False
    assert src["reason"].startswith("failed to connect to nosuchdriver:///x: ")
    assert r.stderr.count("libvirt source unavailable") == 1
    assert rep["sources"]["procfs"]["available"] is True


def test_no_libvirt_flag_and_bad_args():
    rep = kvmwatch_json("--no-libvirt", "--no-kvmstat", "0.05", "1")[-1]
    assert rep["sources"]["libvirt"] == {"available": False, "reason": "disabled by configuration"}
    r = kvmwatch("-c", "", "0.05", "1")
    assert r.returncode != 0 and "invalid libvirt URI" in r.stderr


# ----------------------------------------------------------- real libvirtd


@pytest.fixture(scope="module")
def domain(libvirtd):
    from lvtest import create_domain
    dom = create_domain(libvirtd, "kwlv")
    yield dom
    libvirtd.virsh("destroy", dom["name"], check=False)


def report_for(lv, dom, *extra):
    reps = kvmwatch_json("-c", lv.uri, "--no-host", "-p", dom["name"], *extra, "0.3", "1")
    return reps[-1], find_vm(reps[-1], dom["name"])


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_real_domain_joined_and_stats(libvirtd, domain):
    rep, vm = report_for(libvirtd, domain)
    assert rep["sources"]["libvirt"] == {"available": True}
    assert vm is not None
    # one VM: the QEMU process (procfs) merged with the domain, joined on pid
    assert len([v for v in rep["vms"] if v["uuid"] == domain["uuid"]]) == 1
    assert vm["pid"] == domain["pid"]
    assert vm["uuid"] == domain["uuid"]
    assert set(vm["found"].split(",")) >= {"proc", "libvirt"}
    assert vm["state"] == "running" and vm["dom_id"] >= 1
    assert vm["vcpus"] == 2 and vm["disks"] == ["vda"] and domain["tap"] in vm["netifs"]
    m = vm["metrics"]
    assert m["dom.state"] == 1 and m["dom.vcpus"] == 2 and m["dom.vcpus_max"] == 2
    assert m["mem.max"] == 96 * 1024 * KIB
    assert m["mem.current"] == 96 * 1024 * KIB
    assert m["balloon.rss"] > 0
    assert set(m["vcpu.time"]) == {"0", "1"} and set(m["vcpu.wait"]) == {"0", "1"}
    for k in ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets"):
        assert domain["tap"] in m["net." + k]
    assert m["disk.capacity"] == {"vda": 2 * 1024 * 1024}
    assert m["disk.physical"] == {"vda": 2 * 1024 * 1024}
    for k in ("rd_reqs", "wr_reqs", "rd_bytes", "wr_bytes", "fl_reqs", "rd_time"):
        assert "vda" in m["disk." + k]
    # KVM stats: through libvirt (QEMU's query-stats) when QEMU holds no
    # stats fd of its own for kvmstat to duplicate
    assert m["kvm.vcpu"]["exits"] > 0
    assert set(k.split(".")[0] for k in m["kvm.vcpu_each"]) == {"0", "1"}
    assert "mmu_cache_miss" in m["kvm.vm"]
    assert m["job.type"] == 0  # no job running


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_remote_style_domain_without_procfs(libvirtd, domain):
    """--no-procfs: the domain is known only to libvirt (as over a remote URI);
    its local pid still comes from libvirt's pidfile."""
    rep, vm = report_for(libvirtd, domain, "--no-procfs", "--no-kvmstat")
    assert vm["found"] == "libvirt"
    assert vm["pid"] == domain["pid"]
    assert vm["metrics"]["dom.vcpus"] == 2 and vm["vcpus"] == 2
    assert vm["metrics"]["vm.vcpus"] == 2
    # the shared rows procfs would have filled come from libvirt
    assert vm["metrics"]["vcpu.delay"].keys() == {"0", "1"}
    assert domain["tap"] in vm["metrics"]["net.rx_bytes"]


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_libvirtd_restart_mid_run(libvirtd, domain):
    kw = subprocess.Popen([KVMWATCH, "-c", libvirtd.uri, "--no-host", "--no-kvmstat", "-o", "json",
                           "-p", domain["name"], "0.2"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []

    def next_vm():
        line = kw.stdout.readline()
        assert line, "kvmwatch exited: %s" % kw.stderr.read()
        lines.append(line)
        return find_vm(json.loads(line), domain["name"])

    try:
        wait_for(lambda: "libvirt" in (next_vm() or {}).get("found", ""), timeout=30, what="libvirt data")
        libvirtd.kill_libvirtd()
        # the VM stays (procfs) without libvirt data
        wait_for(lambda: (lambda v: v and "libvirt" not in v["found"] and v["pid"] == domain["pid"])(next_vm()),
                 timeout=30, what="VM without libvirt")
        for _ in range(5):
            v = next_vm()
            assert v and "dom.state" not in v["metrics"]
        libvirtd.start_libvirtd()
        wait_for(lambda: (lambda v: v and "libvirt" in v["found"] and v["metrics"].get("dom.state") == 1)(next_vm()),
                 timeout=60, what="libvirt data after restart")
        assert kw.poll() is None
    finally:
        kw.terminate()
        _, err = kw.communicate(timeout=30)
    assert err.count("lost the connection to " + libvirtd.uri) == 1, err
    assert err.count("reconnected to " + libvirtd.uri) == 1, err


def test_mem_view_test_domain():
    r = kvmwatch("-c", "test:///default", "--no-kvmstat", "-p", "test", "--view", "mem", "0.05", "1", check=True)
    row = [l.split() for l in r.stdout.splitlines() if l.startswith("test ")]
    assert row == [["test", "0", "running", "1", "8192.0", "2048.0", "-", "1024.0", "1024.0", "1024.0", "2048.0",
                    "0.0", "0.0"]], r.stdout


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_hung_libvirtd_does_not_block(libvirtd, domain):
    """A daemon that stops answering (SIGSTOP) is dropped by keepalive: the
    reports go on without libvirt data, and come back after SIGCONT."""
    import signal
    kw = subprocess.Popen([KVMWATCH, "-c", libvirtd.uri, "--no-host", "--no-kvmstat", "-o", "json",
                           "-p", domain["name"], "0.2"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    times = []

    def next_vm():
        line = kw.stdout.readline()
        assert line, "kvmwatch exited: %s" % kw.stderr.read()
        rep = json.loads(line)
        times.append(rep["time"])
        return find_vm(rep, domain["name"])

    stopped = False
    try:
        wait_for(lambda: "libvirt" in (next_vm() or {}).get("found", ""), timeout=30, what="libvirt data")
        os.kill(libvirtd.libvirtd.pid, signal.SIGSTOP)
        stopped = True
        wait_for(lambda: (lambda v: v and "libvirt" not in v["found"])(next_vm()), timeout=90,
                 what="reports without libvirt while the daemon hangs")
        os.kill(libvirtd.libvirtd.pid, signal.SIGCONT)
        stopped = False
        wait_for(lambda: "libvirt" in (next_vm() or {}).get("found", ""), timeout=90, what="libvirt data again")
    finally:
        if stopped:
            os.kill(libvirtd.libvirtd.pid, signal.SIGCONT)
        kw.terminate()
        _, err = kw.communicate(timeout=30)
    assert err.count("lost the connection to " + libvirtd.uri) == 1, err
    # the stalled cycle's missed ticks are dropped, not caught up in a burst
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) > 0.1, gaps


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_start_while_libvirtd_hangs(libvirtd, domain):
    """Started while the daemon accepts and never answers: opening the
    connection happens off the collection path, reports come every interval
    from the start, and libvirt data arrive when the daemon is back."""
    import signal
    os.kill(libvirtd.libvirtd.pid, signal.SIGSTOP)
    stopped = True
    kw = None
    try:
        kw = subprocess.Popen([KVMWATCH, "-c", libvirtd.uri, "--no-host", "--no-kvmstat", "-o", "json",
                               "-p", domain["name"], "0.25"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
        import queue
        import threading
        lines = queue.Queue()
        threading.Thread(target=lambda: [lines.put(l) for l in kw.stdout], daemon=True).start()
        t0 = time.monotonic()
        reps = []
        while time.monotonic() - t0 < 5:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                raise AssertionError("no report for 5 s: the collector is blocked")
            reps.append((time.monotonic(), json.loads(line)))
        # the first report within the start wait (2 s) plus a cycle; then one per interval
        assert reps[0][0] - t0 < 3.5, reps[0][0] - t0
        gaps = [b[0] - a[0] for a, b in zip(reps, reps[1:])]
        assert len(reps) >= 8 and max(gaps) < 1.0 and min(gaps) > 0.1, gaps
        assert all("libvirt" not in find_vm(r, domain["name"])["found"] for _, r in reps)
        os.kill(libvirtd.libvirtd.pid, signal.SIGCONT)
        stopped = False

        def with_libvirt():
            line = lines.get(timeout=30)
            return "libvirt" in (find_vm(json.loads(line), domain["name"]) or {}).get("found", "")
        wait_for(with_libvirt, timeout=60, what="libvirt data after the daemon came back")
    finally:
        if stopped:
            os.kill(libvirtd.libvirtd.pid, signal.SIGCONT)
        if kw:
            kw.terminate()
            kw.wait(timeout=30)
            err = kw.stderr.read()
    assert err.count("does not answer (connecting in the background)") == 1, err


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_daemon_started_before_libvirtd_retries(libvirtd, domain, tmp_path):
    """A long-running front end (kvmwatch.plugin) started while libvirtd is
    down watches the VM from /proc, says once that it keeps retrying, and
    gets the libvirt charts when libvirtd comes up."""
    from ndproto import Netdata137, StepPlugin
    import time
    conf = tmp_path / "kvmwatch.conf"
    conf.write_text("[sources]\n  libvirt uri = %s\n  kvmstat = no\n[filter]\n  vms = %s\n"
                    % (libvirtd.uri, domain["name"]))
    typ = "kvm_" + domain["name"]
    nd = Netdata137()
    libvirtd.kill_libvirtd()
    try:
        with StepPlugin(config=str(conf)) as p:
            nd.feed(p.step())
            charts = nd.charts_of(typ)
            assert typ + ".cpu" in charts and typ + ".domain" not in charts
            libvirtd.start_libvirtd()
            deadline = time.monotonic() + 60
            while typ + ".domain" not in nd.charts_of(typ):
                assert time.monotonic() < deadline, "no libvirt charts after libvirtd started"
                time.sleep(0.5)
                nd.feed(p.step())
            rest, err = p.close()
        assert err.count("retrying in the background") == 1, err
        assert err.count("reconnected to") == 1, err
    finally:
        if not os.path.exists(libvirtd.sock):
            libvirtd.start_libvirtd()


def test_prometheus_names_of_the_libvirt_exporters():
    """-o prometheus gives libvirt's quantities also under the names and
    labels prometheus-libvirt-exporter uses (exact: the test driver's)."""
    r = kvmwatch("-c", "test:///default", "--no-kvmstat", "-p", "test", "-o", "prometheus", "0.05", "1", check=True)
    lines = {l.rsplit(" ", 1)[0]: l.rsplit(" ", 1)[1] for l in r.stdout.splitlines() if l.startswith("libvirt_")}
    assert lines['libvirt_domain_info_virtual_cpus{domain="test"}'] == "2"
    assert lines['libvirt_domain_info_maximum_memory_bytes{domain="test"}'] == "8589934592"
    assert lines['libvirt_domain_info_memory_usage_bytes{domain="test"}'] == "2147483648"
    assert 'libvirt_domain_info_cpu_time_seconds_total{domain="test"}' in lines
