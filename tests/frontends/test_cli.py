"""The kvmwatch CLI against real KVM guests (the project's own guest
generator and a real QEMU), and its handling of bad input."""
import json
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT, build_path, needs_kvm, needs_root, needs_binary
from kwtest import KVMWATCH, Guest, kvmwatch, kvmwatch_json, find_vm, wait_for

FIX = os.path.join(ROOT, "tests", "fixtures", "qemu1")
FIXARGS = ["--procfs", FIX + "/proc", "--sysfs", FIX + "/sys"]


@pytest.mark.parametrize("args,msg", [
    (["0"], "invalid interval '0'"),
    (["abc"], "invalid interval 'abc'"),
    (["1", "0"], "invalid count '0'"),
    (["1", "x"], "invalid count 'x'"),
    (["-o", "xml"], "invalid output format 'xml'"),
    (["--view", "bogus"], "invalid view 'bogus'"),
    (["-t", "-1"], "invalid time '-1'"),
    (["-p", ""], "empty VM name"),
    (["1", "2", "3"], "Usage"),
    (["--sort", "bogus"], "invalid sort key 'bogus'"),
    (["--limit", "0"], "invalid limit '0'"),
])
def test_bad_arguments(args, msg):
    r = kvmwatch(*args)
    assert r.returncode != 0
    assert msg in r.stderr
    assert r.stdout == ""


def test_json_one_object_per_interval():
    reps = kvmwatch_json(*FIXARGS, "0.01", "3")
    assert len(reps) == 3
    for r in reps:
        # schema 1 (docs/json-schema.md): who made the record, then the cycle
        assert set(r) == {"schema", "hostname", "machine_id", "dmi_uuid", "time", "interval", "sources", "host",
                          "vms"}
        assert r["schema"] == 1 and r["hostname"] == os.uname().nodename
        assert r["sources"]["procfs"] == {"available": True}
        for vm in r["vms"]:
            assert set(vm) == {"name", "uuid", "pid", "pve_id", "vmm", "found", "state", "vcpus", "threads",
                               "netifs", "dom_id", "disks", "metrics", "rates"}
        assert r["interval"] > 0


@pytest.mark.parametrize("view,header", [
    ("summary", "CPU%"), ("vcpu", "STEAL%"), ("net", "RX_kbit/s"), ("host", "R_LAT_ms"), ("all", "METRIC"),
])
def test_text_views(view, header):
    r = kvmwatch(*FIXARGS, "--view", view, "0.01", "1", check=True)
    assert header in r.stdout
    if view == "net":
        assert "kwfixtap0" in r.stdout and "tap100i0" in r.stdout
    if view == "vcpu":
        rows = [l for l in r.stdout.splitlines() if l.startswith("fixture-vm")]
        assert len(rows) == 2


def test_sort_and_limit():
    def names(*args):
        r = kvmwatch(*FIXARGS, *args, "0.01", "1", check=True)
        return [l.split()[0] for l in r.stdout.splitlines()[3:]]
    assert names() == ["demo-fix", "fixture-vm", "pve-web,prod"]          # by name
    assert names("--sort", "pid") == ["pve-web,prod", "fixture-vm", "demo-fix"]
    # highest RSS first (the two QEMU captures tie and fall back to name order)
    assert names("--sort", "rss", "--limit", "2") == ["fixture-vm", "pve-web,prod"]
    assert names("--limit", "1") == ["demo-fix"]


@needs_kvm
def test_real_guest_found_with_identity_and_growing_cpu():
    with Guest("demo", vcpus=2, name="kwtest-cli-demo") as g:
        g.go()
        reps = kvmwatch_json("-p", g.name, "0.3", "3")
        vms = [find_vm(r, g.name) for r in reps]
        assert all(vms), "guest not found in every report"
        vm = vms[-1]
        assert vm["pid"] == g.pid
        assert vm["uuid"] == g.uuid
        assert vm["vcpus"] == 2
        assert sorted(t["vcpu"] for t in vm["threads"] if t["vcpu"] >= 0) == [0, 1]
        assert "kvmfd" in vm["found"]
        cpu = [v["metrics"]["cpu.user"] + v["metrics"]["cpu.system"] for v in vms]
        assert cpu[0] < cpu[2], cpu
        run = [sum(v["metrics"]["vcpu.run"].values()) for v in vms]
        assert run[0] < run[1] < run[2], run
        assert vm["rates"]["cpu.vcpu_total"] > 0
        # only the requested VM is reported
        assert [v["name"] for v in reps[-1]["vms"]] == [g.name]


@needs_kvm
@needs_root
def test_vm_vanishing_while_watching():
    """Guests start and exit while kvmwatch collects every 50 ms: no error,
    VMs appear and disappear."""
    w = subprocess.Popen([KVMWATCH, "-o", "json", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        for i in range(6):
            g = Guest("demo", name="kwtest-vanish-%d" % i).start()
            g.go()
            time.sleep(0.15)
            g.kill()
    finally:
        w.send_signal(signal.SIGINT)
        out, err = w.communicate(timeout=20)
    assert w.returncode == 0, err
    assert "error" not in err
    seen = set()
    for line in out.splitlines():
        for vm in json.loads(line)["vms"]:
            seen.add(vm["name"])
    assert {"kwtest-vanish-%d" % i for i in range(6)} & seen


@needs_kvm
def test_demo_flag_starts_and_stops_a_real_guest():
    r = kvmwatch("--demo", "-o", "json", "-p", "kvmwatch-demo", "0.3", "2", check=True)
    reps = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(reps) == 2
    vm = find_vm(reps[-1], "kvmwatch-demo")
    assert vm and vm["vcpus"] == 2
    assert vm["rates"]["cpu.vcpu_total"] > 0
    assert "demo guest 'kvmwatch-demo' running as pid %d" % vm["pid"] in r.stderr
    wait_for(lambda: not os.path.exists("/proc/%d" % vm["pid"]), what="demo guest to exit")


def test_closed_pipe_ends_quietly():
    p = subprocess.Popen([KVMWATCH] + FIXARGS + ["0.02"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.readline()
    p.stdout.close()
    rc = p.wait(timeout=20)
    assert rc == 1
    assert p.stderr.read() == b""


def test_sigint_while_the_reader_stopped_reading():
    """SIGINT while kvmwatch is blocked writing to a full pipe nobody reads:
    it still stops (the write is interrupted after a grace period), rc 0."""
    p = subprocess.Popen([KVMWATCH] + FIXARGS + ["-o", "json", "0.01"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdout.readline()
    import array, fcntl, termios

    def unread():
        n = array.array("i", [0])
        fcntl.ioctl(p.stdout.fileno(), termios.FIONREAD, n)
        return n[0]
    # the pipe is full (what is unread stops growing): kvmwatch is blocked in write()
    last = [-1]

    def full():
        n, last[0] = unread(), unread()
        time.sleep(0.3)
        return n > 16384 and unread() == n
    wait_for(full, timeout=30, what="a full pipe")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=30) == 0
    assert p.stderr.read() == b""


def test_sigint_and_time_limit():
    p = subprocess.Popen([KVMWATCH] + FIXARGS + ["0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    p.stdout.readline()
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=20) == 0
    reps = kvmwatch_json(*FIXARGS, "-t", "1", "0.5")
    assert len(reps) == 2


@needs_kvm
@needs_root
@needs_binary("qemu-system-x86_64")
@needs_binary("setpriv")
def test_without_root_degrades_with_one_message(tmp_path):
    """As an unprivileged user: /proc/PID/io and fd are unreadable. The VM is
    still found (QEMU by name) with CPU and memory metrics, and the missing
    pieces are named once."""
    pidfile = tmp_path / "q.pid"
    q = subprocess.run(["qemu-system-x86_64", "-accel", "kvm", "-name", "guest=kwtest-noroot,debug-threads=on",
                        "-uuid", "11111111-2222-4333-8444-555555555555", "-smp", "2", "-m", "32", "-S",
                        "-display", "none", "-nodefaults", "-daemonize", "-pidfile", str(pidfile)],
                       capture_output=True, text=True, timeout=60)
    assert q.returncode == 0, q.stderr
    pid = int(pidfile.read_text())
    try:
        r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMWATCH, "-o", "json",
                            "-p", str(pid), "0.2", "2"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        reps = [json.loads(l) for l in r.stdout.splitlines()]
        vm = find_vm(reps[-1], "kwtest-noroot")
        assert vm["uuid"] == "11111111-2222-4333-8444-555555555555"
        assert vm["vcpus"] == 2
        assert "cpu.user" in vm["metrics"] and "mem.rss" in vm["metrics"]
        assert "io.rchar" not in vm["metrics"]
        assert r.stderr.count("per-VM I/O metrics need root") == 1
        assert r.stderr.count("cannot read /proc/%d/fd" % pid) == 1
    finally:
        os.kill(pid, signal.SIGKILL)


@needs_kvm
@needs_binary("qemu-system-x86_64")
def test_real_qemu_with_tiny_kernel(tmp_path):
    """A real qemu-system-x86_64 -accel kvm booting the project's tiny kernel
    (spinning forever): kvmwatch finds it by name with its uuid, pid, vCPU
    count, and a CPU time that grows."""
    from conftest import build_path
    uuid = "c0ffee00-1234-4567-89ab-0123456789ab"
    pidfile = tmp_path / "q.pid"
    q = subprocess.run(["qemu-system-x86_64", "-accel", "kvm", "-name", "guest=kwtest-qemu,debug-threads=on",
                        "-uuid", uuid, "-smp", "2", "-m", "32", "-kernel", build_path("tests", "tiny-kernel.elf"),
                        "-append", "spin=forever", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                        "-display", "none", "-nodefaults", "-no-reboot", "-daemonize", "-pidfile", str(pidfile)],
                       capture_output=True, text=True, timeout=60)
    assert q.returncode == 0, q.stderr
    pid = int(pidfile.read_text())
    try:
        reps = kvmwatch_json("-p", "kwtest-qemu", "1", "3")
        vms = [find_vm(r, "kwtest-qemu") for r in reps]
        assert all(vms)
        vm = vms[-1]
        assert vm["pid"] == pid
        assert vm["uuid"] == uuid
        assert vm["vcpus"] == 2
        assert vm["vmm"] == "qemu-system-x86"
        assert "proc" in vm["found"]
        assert sorted(t["vcpu"] for t in vm["threads"] if t["vcpu"] >= 0) == [0, 1]
        cpu = [v["metrics"]["cpu.user"] + v["metrics"]["cpu.system"] for v in vms]
        assert cpu[0] < cpu[1] < cpu[2], cpu
        run0 = [v["metrics"]["vcpu.run"]["0"] for v in vms]
        assert run0[0] < run0[1] < run0[2], run0
        # CPU 0 spins: its thread ran for most of each 1 s interval
        assert vm["rates"]["vcpu.run"]["0"] > 0.3e9
        r = kvmwatch("-l", check=True)
        line = [l for l in r.stdout.splitlines() if l.startswith("kwtest-qemu")][0].split()
        assert line[1] == str(pid) and line[2] == uuid
    finally:
        os.kill(pid, signal.SIGKILL)


IO_WORKERS = r"""
import mmap, os, sys, threading, time
fn = sys.argv[1]
def worker():
    fd = os.open(fn, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 1 << 20)
    for i in range(48):
        os.preadv(fd, [buf], (i % 16) << 20)
    os.close(fd)
    done.wait()
done = threading.Event()
ts = [threading.Thread(target=worker) for _ in range(3)]
[t.start() for t in ts]
time.sleep(1.5)                        # every read done: the counters stand still
print("ready", flush=True)
sys.stdin.read()
done.set()
"""


def _blkio_ticks(path):
    with open(path) as f:
        return int(f.read().rsplit(")", 1)[1].split()[39])     # field 42


@needs_root
def test_io_wait_sums_every_thread(tmp_path):
    """QEMU does block I/O in worker threads: IOW is their sum (field test:
    only the main thread's, 0.0 while the workers waited ~200 ms/s)."""
    data = "/var/tmp/kwtest-iow-%d" % os.getpid()
    with open(data, "wb") as f:
        f.write(os.urandom(16 << 20))
    script = tmp_path / "iow.py"
    script.write_text(IO_WORKERS)
    with open("/proc/sys/kernel/task_delayacct") as f:
        saved = f.read().strip()
    name = "kwtest-iow-%d" % os.getpid()
    p = None
    try:
        with open("/proc/sys/kernel/task_delayacct", "w") as f:
            f.write("1")
        p = subprocess.Popen(["qemu-system-x86_64", str(script), data, "-name", "guest=" + name],
                             executable="/usr/bin/python3", stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        main = _blkio_ticks("/proc/%d/stat" % p.pid)
        total = sum(_blkio_ticks("/proc/%d/task/%s/stat" % (p.pid, t)) for t in os.listdir("/proc/%d/task" % p.pid))
        assert main == 0 and total > 0, (main, total)
        rep = kvmwatch_json("-p", name, "--no-host", "0.1", "1")[-1]
        vm = find_vm(rep, name)
        hz = os.sysconf("SC_CLK_TCK")
        assert vm["metrics"]["io.blkio_delay"] == total * (1000000000 // hz)
        # delay accounting off: said once, with how to enable it; no 0 shown
        with open("/proc/sys/kernel/task_delayacct", "w") as f:
            f.write("0")
        r = kvmwatch("-p", name, "--no-host", "0.1", "2")
        assert r.stderr.count("delay accounting is off (kernel.task_delayacct = 0)") == 1, r.stderr
        assert "sysctl kernel.task_delayacct=1" in r.stderr
        row = [l for l in r.stdout.splitlines() if l.startswith(name)]
        assert row and all(l.split()[11] == "-" for l in row), r.stdout
    finally:
        with open("/proc/sys/kernel/task_delayacct", "w") as f:
            f.write(saved)
        if p:
            p.kill()
            p.wait()
        os.unlink(data)


@needs_kvm
@needs_root
def test_hidepid_proc_is_said():
    """/proc with hidepid=2 (a new proc instance in a private mount
    namespace): the unprivileged user is told why it sees no VMs."""
    with Guest("demo", wait=False) as g:
        time.sleep(0.2)
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
                            'mount -t proc -o hidepid=2 proc /proc && exec "$@"', "sh",
                            "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMWATCH, "-o", "json",
                            "0.2", "1"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stderr.count("/proc is mounted with hidepid=invisible: other users' processes (their VMs) are "
                              "invisible to this user") == 1, r.stderr
        assert not [v for v in json.loads(r.stdout.splitlines()[-1])["vms"] if v["pid"] == g.pid]
        # root sees through it, and says nothing
        r = subprocess.run(["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
                            'mount -t proc -o hidepid=2 proc /proc && exec "$@"', "sh", KVMWATCH, "-o", "json",
                            "0.2", "1"], capture_output=True, text=True, timeout=60)
        assert "hidepid" not in r.stderr
        assert [v for v in json.loads(r.stdout.splitlines()[-1])["vms"] if v["pid"] == g.pid]


def test_version_from_one_place():
    """The version is the file VERSION, for the CLI and the netdata plugin."""
    with open(os.path.join(ROOT, "VERSION")) as f:
        version = f.read().strip()
    r = kvmwatch("--version", check=True)
    assert r.stdout.strip() == "kvmwatch " + version
    r = subprocess.run([build_path("kvmwatch.plugin"), "-V"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.strip() == "kvmwatch.plugin " + version


def test_bash_completion():
    """contrib/kvmwatch.bash-completion completes subcommands, options (from
    --help) and their values (views from --view's own list)."""
    comp = os.path.join(ROOT, "contrib", "kvmwatch.bash-completion")

    def complete(*words):
        script = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kvmwatch; echo "${COMPREPLY[*]}"'
        r = subprocess.run(["bash", "-c", script, "x", comp, KVMWATCH] + list(words), capture_output=True,
                           text=True, timeout=30, check=True)
        return r.stdout.split()
    assert complete("t") == ["top"]
    assert complete("--vie") == ["--view"]
    assert complete("--view", "d") == ["disk"]
    assert complete("-o", "p") == ["prometheus"]
    assert "--output-file" in complete("--output")


def test_build_honours_packagers_flags():
    """CPPFLAGS/CFLAGS/LDFLAGS (dpkg-buildflags) come after the project's own
    flags instead of replacing them; WERROR=0 drops -Werror."""
    from conftest import BUILD
    r = subprocess.run(["make", "-n", "-B", "-C", ROOT, "O=" + os.path.relpath(BUILD, ROOT), "CFLAGS=-O1 -g0",
                        "CPPFLAGS=-D_FORTIFY_SOURCE=2", "LDFLAGS=-Wl,-z,relro", "WERROR=0",
                        os.path.relpath(build_path("kvmwatch"), ROOT)],
                       capture_output=True, text=True, timeout=120, check=True)
    cc = [l for l in r.stdout.splitlines() if " -c cli/main.c " in l][0]
    assert "-I%s/common" % ROOT in cc and "-std=gnu11" in cc and "-Werror" not in cc
    assert cc.index("-D_FORTIFY_SOURCE=2") < cc.index("-O1 -g0")
    rel = os.path.relpath(build_path("kvmwatch"), ROOT)
    link = [l for l in r.stdout.splitlines() if " -o %s " % rel in l]
    assert link and "-Wl,-z,relro" in link[0], r.stdout[-2000:]


def test_help_prints_examples_verbatim():
    r = kvmwatch("--help", check=True)
    assert r.stdout.count("Usage:") == 1 and "USAGE" not in r.stdout
    assert "\n  kvmwatch -p web01 -t 10   # only VM web01 (name, uuid or pid), for 10 seconds\n" in r.stdout
    assert "\n  kvmwatch --view disk 5    # per-VM per-disk IOPS, throughput and latency (libvirt or QMP)\n" in r.stdout
    assert r.stdout.rstrip().endswith("Report bugs to the kvmwatch issue tracker.")
