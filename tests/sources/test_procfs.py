"""The /proc + /sys source on fixture trees copied from real processes
(tests/fixtures/qemu1: a real qemu-system-x86_64 with two vCPUs and a tap,
the project's demo guest, and a Proxmox-style copy with cgroup PSI), and on
damaged copies of them."""
import os
import json
import subprocess
import time
import shutil

import pytest

from conftest import ROOT
from kwtest import KVMWATCH, kvmwatch, kvmwatch_json, find_vm

FIX = os.path.join(ROOT, "tests", "fixtures", "qemu1")
PROC = os.path.join(FIX, "proc")
SYS = os.path.join(FIX, "sys")
TICK_NS = 10**9 // os.sysconf("SC_CLK_TCK")

QEMU_PID, PVE_PID, DEMO_PID = 8674, 4242, 9379


def report(proc=PROC, sys_=SYS, *extra):
    reps = kvmwatch_json("--procfs", proc, "--sysfs", sys_, *extra, "0.01", "1")
    assert len(reps) == 1
    return reps[0]


def stat_fields(proc, pid, tid=None):
    path = "%s/%d/stat" % (proc, pid) if tid is None else "%s/%d/task/%d/stat" % (proc, pid, tid)
    data = open(path).read()
    return ["", "", ""] + data[data.rindex(")") + 2:].split()   # index = proc(5) field number - 1 + 1


def schedstat(proc, pid, tid):
    return [int(x) for x in open("%s/%d/task/%d/schedstat" % (proc, pid, tid)).read().split()]


def comm(proc, pid, tid):
    return open("%s/%d/task/%d/comm" % (proc, pid, tid)).read().strip()


def tids(proc, pid):
    return sorted(int(t) for t in os.listdir("%s/%d/task" % (proc, pid)))


def kv(path, key):
    for line in open(path):
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@pytest.fixture
def tree(tmp_path):
    """A private copy of the fixture tree to damage."""
    dst = tmp_path / "t"
    shutil.copytree(FIX, dst, symlinks=True)
    return str(dst / "proc"), str(dst / "sys")


def test_discovery_identity():
    r = report()
    names = sorted(vm["name"] for vm in r["vms"])
    assert names == ["demo-fix", "fixture-vm", "pve-web,prod"]
    q = find_vm(r, "fixture-vm")
    assert q["pid"] == QEMU_PID
    assert q["uuid"] == "6f1d1c2e-8a3b-4c5d-9e0f-112233445566"
    assert q["pve_id"] is None
    assert q["vcpus"] == 2
    assert [t["vcpu"] for t in q["threads"] if t["vcpu"] >= 0] == [0, 1]
    assert len(q["threads"]) == 4
    assert q["netifs"] == ["kwfixtap0"]          # from fdinfo "iff:" of /dev/net/tun
    assert q["found"] == "proc,kvmfd"
    assert q["vmm"] == "qemu-system-x86"
    p = find_vm(r, "pve-web,prod")                # ",," in -name is a literal comma
    assert p["pve_id"] == 100
    assert p["uuid"] == "aabbccdd-0000-4000-8000-000000000100"
    assert sorted(p["netifs"]) == ["tap100i0", "tap100i1"]   # -netdev ifname= and Proxmox naming
    d = find_vm(r, "demo-fix")                    # not QEMU: found by its KVM VM fd
    assert d["found"] == "kvmfd"
    assert d["vcpus"] == 1
    assert d["uuid"] == "0b0e7c5a-1111-4222-8333-944455556666"


def test_vm_metrics_exact():
    r = report()
    m = find_vm(r, "fixture-vm")["metrics"]
    f = stat_fields(PROC, QEMU_PID)
    assert m["cpu.user"] == int(f[14]) * TICK_NS
    assert m["cpu.system"] == int(f[15]) * TICK_NS
    assert m["cpu.guest"] == int(f[43]) * TICK_NS
    assert m["io.blkio_delay"] == int(f[42]) * TICK_NS
    assert m["mem.minflt"] == int(f[10])
    assert m["mem.majflt"] == int(f[12])
    assert m["mem.vsize"] == int(f[23])
    assert m["vm.threads"] == int(f[20]) == 4
    assert m["vm.vcpus"] == 2
    assert m["mem.rss"] == kv("%s/%d/status" % (PROC, QEMU_PID), "VmRSS") * 1024
    io = dict(line.split(": ") for line in open("%s/%d/io" % (PROC, QEMU_PID)).read().splitlines())
    for k in ("rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes", "cancelled_write_bytes"):
        assert m["io." + k] == int(io[k]), k
    vrun = vdelay = orun = odelay = slices = 0
    for t in tids(PROC, QEMU_PID):
        run, delay, sl = schedstat(PROC, QEMU_PID, t)
        slices += sl
        c = comm(PROC, QEMU_PID, t)
        if c.startswith("CPU "):
            idx = c.split()[1].split("/")[0]
            assert m["vcpu.run"][idx] == run
            assert m["vcpu.delay"][idx] == delay
            vrun += run
            vdelay += delay
        else:
            orun += run
            odelay += delay
    assert m["cpu.vcpu_total"] == vrun
    assert m["cpu.vcpu_steal"] == vdelay
    assert m["cpu.other_total"] == orun
    assert m["cpu.other_steal"] == odelay
    assert m["cpu.timeslices"] == slices
    # tap counters seen from the guest: the tap's transmit is the VM's receive
    assert m["net.rx_bytes"] == {"kwfixtap0": 654321}
    assert m["net.tx_bytes"] == {"kwfixtap0": 123456}
    assert m["net.rx_packets"] == {"kwfixtap0": 987}
    assert m["net.tx_packets"] == {"kwfixtap0": 789}
    assert m["net.rx_errors"] == {"kwfixtap0": 7}
    assert m["net.tx_errors"] == {"kwfixtap0": 5}
    assert m["net.rx_drops"] == {"kwfixtap0": 8}
    assert m["net.tx_drops"] == {"kwfixtap0": 6}
    # the real QEMU runs in the root cgroup: no per-VM PSI is claimed for it
    assert not any(k.startswith("psi.") for k in m)


def test_cgroup_psi_exact():
    m = find_vm(report(), "pve-web,prod")["metrics"]
    assert m["psi.cpu.some"] == 1.5
    assert m["psi.cpu.full"] == 0.5
    assert m["psi.io.some"] == 12.25
    assert m["psi.io.full"] == 10.0
    assert m["psi.cpu.some_time"] == 123456
    assert m["psi.memory.full_time"] == 500
    assert m["psi.io.some_time"] == 777777
    assert m["psi.io.full_time"] == 666666
    assert m["net.rx_bytes"] == {"tap100i0": 4000, "tap100i1": 5000}


def test_host_metrics_exact():
    r = report()
    h = r["host"]["metrics"]
    cpu = open(PROC + "/stat").readline().split()
    for i, k in enumerate(["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest"]):
        assert h["host.cpu." + k] == int(cpu[i + 1]) * TICK_NS, k
    assert h["host.cpus"] == sum(1 for l in open(PROC + "/stat") if l[:3] == "cpu" and l[3].isdigit())
    assert h["host.mem.total"] == kv(PROC + "/meminfo", "MemTotal") * 1024
    assert h["host.mem.available"] == kv(PROC + "/meminfo", "MemAvailable") * 1024
    assert h["host.vms"] == 3
    assert h["host.vcpus"] == 5
    disks = {}
    for line in open(PROC + "/diskstats"):
        f = line.split()
        if os.path.isdir(os.path.join(SYS, "block", f[2])) and not f[2].startswith(("loop", "ram", "zram")):
            disks[f[2]] = f
    assert set(h["host.disk.reads"]) == set(disks)
    for name, f in disks.items():
        assert h["host.disk.reads"][name] == int(f[3])
        assert h["host.disk.read_bytes"][name] == int(f[5]) * 512
        assert h["host.disk.write_bytes"][name] == int(f[9]) * 512
        assert h["host.disk.io_time"][name] == int(f[12])
    assert "lo" not in h["host.net.rx_bytes"]
    assert h["host.net.rx_bytes"]["kwfixtap0"] == 123456
    psi = open(PROC + "/pressure/io").readline()
    assert h["host.psi.io.some"] == float(psi.split()[1].split("=")[1])


def test_pid_and_name_filters():
    r = report(PROC, SYS, "-p", str(QEMU_PID))
    assert [vm["name"] for vm in r["vms"]] == ["fixture-vm"]
    r = report(PROC, SYS, "-p", "aabbccdd-0000-4000-8000-000000000100")
    assert [vm["name"] for vm in r["vms"]] == ["pve-web,prod"]
    r = report(PROC, SYS, "-p", "demo-fix")
    assert [vm["name"] for vm in r["vms"]] == ["demo-fix"]


def test_truncated_stat_skips_only_that_vm(tree):
    proc, sys_ = tree
    path = "%s/%d/stat" % (proc, QEMU_PID)
    data = open(path).read()
    open(path, "w").write(data[:data.index(")") + 5])   # cut after the state field
    r = kvmwatch("--procfs", proc, "--sysfs", sys_, "-o", "json", "0.01", "1")
    assert r.returncode == 0
    assert "stat: malformed" in r.stderr
    import json
    names = sorted(vm["name"] for vm in json.loads(r.stdout)["vms"])
    assert names == ["demo-fix", "pve-web,prod"]


def test_garbage_files_degrade(tree):
    proc, sys_ = tree
    base = "%s/%d" % (proc, QEMU_PID)
    open(base + "/status", "w").write("\x00\xffgarbage\nVmRSS:\n")
    open(base + "/io", "w").write("")
    open(base + "/task/%d/schedstat" % tids(proc, QEMU_PID)[-1], "w").write("not numbers\n")
    open(proc + "/meminfo", "w").write("MemTotal: lots\n")
    open(proc + "/stat", "w").write("intr 1 2 3\n")
    with open(proc + "/net/dev", "a") as f:
        f.write("broken: 1 2 3\nnocolon\n")
    r = report(proc, sys_)
    m = find_vm(r, "fixture-vm")["metrics"]
    f = stat_fields(proc, QEMU_PID)
    assert m["mem.rss"] == int(f[24]) * os.sysconf("SC_PAGE_SIZE")   # falls back to stat's rss
    assert not any(k.startswith("io.") and k != "io.blkio_delay" for k in m)
    assert set(m["vcpu.run"]) == {"0"}            # the unreadable vCPU 1 thread is left out
    assert m["cpu.user"] == int(f[14]) * TICK_NS
    h = r["host"]["metrics"]
    assert "host.cpu.user" not in h and "host.mem.total" not in h
    assert "broken" not in h["host.net.rx_bytes"] and h["host.net.rx_bytes"]["kwfixtap0"] == 123456
    assert len(r["vms"]) == 3


def test_unterminated_cmdline(tree):
    proc, sys_ = tree
    path = "%s/%d/cmdline" % (proc, PVE_PID)
    data = open(path, "rb").read()
    cut = data.index(b"-netdev") + 12                  # last argument cut short, no final NUL
    open(path, "wb").write(data[:cut])
    p = find_vm(report(proc, sys_), "pve-web,prod")
    assert p["pve_id"] == 100 and p["uuid"] == "aabbccdd-0000-4000-8000-000000000100"
    # the cut -netdev argument is ignored; Proxmox naming (tap<id>i<n>) still finds both taps
    assert sorted(p["netifs"]) == ["tap100i0", "tap100i1"]


def test_process_vanishing_mid_scan(tree):
    """A pid directory that lost its files between readdir and read (the
    process exited) is skipped without an error; one whose threads vanished
    still reports what is readable."""
    proc, sys_ = tree
    for n in ("stat", "status", "io", "cgroup"):
        os.unlink("%s/%d/%s" % (proc, DEMO_PID, n))
    shutil.rmtree("%s/%d/task" % (proc, QEMU_PID))
    r = kvmwatch("--procfs", proc, "--sysfs", sys_, "-o", "json", "0.01", "1")
    assert r.returncode == 0, r.stderr
    assert "error" not in r.stderr
    import json
    rep = json.loads(r.stdout)
    assert sorted(vm["name"] for vm in rep["vms"]) == ["fixture-vm", "pve-web,prod"]
    q = find_vm(rep, "fixture-vm")
    assert q["vcpus"] == 0 and "cpu.user" in q["metrics"] and "vcpu.run" not in q["metrics"]


def test_nonexistent_procfs_is_an_error(tmp_path):
    r = kvmwatch("--procfs", str(tmp_path / "nope"), "-l")
    assert r.returncode != 0
    assert "procfs root %s: No such file or directory" % (tmp_path / "nope") in r.stderr
    r = kvmwatch("--procfs", str(tmp_path), "-l")
    assert r.returncode != 0
    assert "is not a proc filesystem" in r.stderr


def _fake_vms(n, prefix):
    fq = os.path.join(os.environ.get("KW_BUILD", os.path.join(ROOT, "build")),
                      "bench", "fakeqemu")
    procs = []
    for i in range(n):
        name = "%s-%03d" % (prefix, i)
        procs.append(subprocess.Popen(["bash", "-c", 'exec -a qemu-system-x86_64 "$0" "$@"', fq, "-name",
                                       "guest=%s,debug-threads=on" % name, "-smp", "2"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL))
    return procs


def test_many_vms_under_a_low_fd_limit():
    """172 VMs under ulimit -n 120 showed as 1 VM, silently: now the soft
    limit is raised, no fd is held for a VM with nothing to read, and
    running out of fds is said, never taken for VMs that went away."""
    prefix = "kwtest-fd-%d" % os.getpid()
    procs = _fake_vms(150, prefix)
    try:
        time.sleep(0.5)
        # soft 100, hard 200: raised to 200, which is enough
        r = subprocess.run(["prlimit", "--nofile=100:200", KVMWATCH, "-o", "json", "--no-libvirt", "--no-qmp",
                            "0.2", "3"], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        for line in r.stdout.splitlines():
            assert len([v for v in json.loads(line)["vms"] if v["name"].startswith(prefix)]) == 150
        assert "out of file descriptors" not in r.stderr
        # hard limit 4: not even one spare fd; said loudly, and no VM found is ever dropped
        r = subprocess.run(["prlimit", "--nofile=4:4", KVMWATCH, "-o", "json", "--no-libvirt", "--no-qmp",
                            "0.2", "4"], capture_output=True, text=True, timeout=120)
        counts = [len([v for v in json.loads(l)["vms"] if v["name"].startswith(prefix)])
                  for l in r.stdout.splitlines()]
        assert "out of file descriptors (Too many open files)" in r.stderr, r.stderr
        assert counts == sorted(counts), counts         # never fewer than before
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
