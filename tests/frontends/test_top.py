"""kvmwatch top, the interactive screen, in a real terminal (tmux) against
real KVM guests: the list and its header, sorting, the filter, the field
selector, human units, pause and interval keys, the drill-down tabs, the
network/storage/tree views, the help and log overlays, quitting."""
import json
import os
import re
import signal
import subprocess

import pytest

from conftest import needs_kvm, needs_root
from kwtest import KVMWATCH, Guest
from tmuxterm import Tmux, have_tmux

pytestmark = [needs_kvm, needs_root,
              pytest.mark.skipif(not have_tmux(), reason="needs tmux (a real terminal for the screen)")]


@pytest.fixture
def term():
    t = Tmux(160, 42)
    yield t
    t.kill()


@pytest.fixture
def guests():
    """A busy guest (two vCPUs spinning) and an idle one (one vCPU, mostly halted)."""
    tag = os.getpid()
    busy = Guest("demo", vcpus=2, name="kwtop-busy-%d" % tag, wait=False)
    idle = Guest("demo", vcpus=1, name="kwtop-idle-%d" % tag, wait=False, extra=["--count", "1", "--irq-period-us", "200000"])
    busy.start()
    idle.start()
    yield busy, idle
    busy.kill()
    idle.kill()


def start_top(term, guests, *extra):
    busy, idle = guests
    libvirt = [] if "-c" in extra else ["--no-libvirt"]
    term.start([KVMWATCH, "top"] + libvirt + ["-p", str(busy.pid), "-p", str(idle.pid)] + list(extra) + ["0.5"])
    # the second cycle has rates: the busy guest's CPU% is no longer 0
    return term.wait(lambda s: busy.name in s and idle.name in s and "2 VMs" in s, what="both guests listed")


def list_rows(screen, names):
    """The guests in screen order."""
    order = []
    for line in screen.splitlines():
        for n in names:
            if line.startswith(n):
                order.append(n)
    return order


def cpu_of(screen, name):
    for line in screen.splitlines():
        if line.startswith(name):
            return float(line.split()[4])  # VM PVEID STATE VCPU CPU%
    raise AssertionError(name)


def test_list_header_and_sorting(term, guests):
    busy, idle = guests
    start_top(term, guests)
    s = term.wait(lambda s: cpu_of(s, busy.name) > 20, what="the busy guest's CPU%")
    # header: host lines, VM count, interval, each source's state
    assert "host cpu: " in s and "host mem: " in s and "host psi: " in s
    assert "every 0.5 s" in s
    assert "procfs: on" in s and "libvirt: off" in s and "kvmstat: on" in s
    # the VCPU column is exact
    rows = {l.split()[0]: l.split() for l in s.splitlines() if l.startswith("kwtop-")}
    assert rows[busy.name][3] == "2" and rows[idle.name][3] == "1"
    # default order: CPU% highest first
    assert list_rows(s, [busy.name, idle.name]) == [busy.name, idle.name]
    assert "CPU%\u2193" in s
    # N: by name (busy < idle), N again: reversed
    term.keys("N")
    s = term.wait(lambda s: "VM\u2193" in s, what="sorted by name")
    assert list_rows(s, [busy.name, idle.name]) == [busy.name, idle.name]
    term.keys("N")
    s = term.wait(lambda s: "VM\u2191" in s, what="reversed")
    assert list_rows(s, [busy.name, idle.name]) == [idle.name, busy.name]
    # > moves the sort to the next column
    term.keys(">")
    term.wait(lambda s: "PVEID\u2193" in s, what="sorted by the next column")
    term.keys("q")
    assert term.exited() == 0


def test_filter_fields_units_pause_interval(term, guests):
    busy, idle = guests
    start_top(term, guests)
    term.keys("/")
    term.keys(*idle.name)
    term.keys("Enter")
    s = term.wait(lambda s: "filter: " + idle.name in s and busy.name not in s, what="the filter applied")
    assert idle.name in s
    term.keys("Escape")
    term.wait(lambda s: busy.name in s and "filter:" not in s, what="the filter cleared")
    # by pid
    term.keys("/", *str(busy.pid), "Enter")
    term.wait(lambda s: busy.name in s and idle.name not in s, what="the filter by pid")
    term.keys("Escape")
    # f: the field selector turns GUEST% on
    term.keys("f")
    s = term.wait_text("columns: space toggles")
    assert "[ ] GUEST%" in s and "[x] CPU%" in s
    for _ in range(6):  # VM PVEID PID STATE VCPU CPU% GUEST%
        term.keys("Down")
    term.keys("Space", "Escape")
    s = term.wait(lambda s: "GUEST%" in s and "columns:" not in s, what="GUEST% shown")
    # u: human units (RSS with a suffix)
    term.keys("u")
    s = term.wait(lambda s: "[human units]" in s, what="human units")
    rss = [l for l in s.splitlines() if l.startswith(busy.name)][0]
    assert re.search(r"\b\d+(\.\d+)?M\b", rss), rss
    # p pauses, + and - change the interval
    term.keys("p")
    term.wait_text("[paused]")
    term.keys("p", "-")
    s = term.wait_text("every 0.25 s")
    term.keys("+", "+")        # 0.25 -> 0.5 -> 1
    term.wait_text("every 1 s")
    term.keys("q")
    assert term.exited() == 0


def test_drill_down_tabs(term, guests):
    busy, idle = guests
    start_top(term, guests)
    term.wait(lambda s: cpu_of(s, busy.name) > 20, what="rates")
    term.keys("Enter")  # the busy guest is selected (first row)
    s = term.wait(lambda s: "(pid %d" % busy.pid in s and "RUN%" in s, what="the vCPU tab")
    tids = sorted(int(t) for t in os.listdir("/proc/%d/task" % busy.pid)
                  if open("/proc/%d/task/%s/comm" % (busy.pid, t)).read().startswith("CPU "))
    vcpu_lines = [l.split() for l in s.splitlines() if re.match(r"^\s+\d+\s+[01]\s", l)]
    assert sorted(int(l[0]) for l in vcpu_lines) == tids and len(tids) == 2
    assert "other threads:" in s
    term.keys("Tab")
    s = term.wait_text("RSS_MiB")
    assert "MAJFL/s" in s
    term.keys("Tab", "Tab", "Tab")  # network, block, KVM
    s = term.wait_text("KVM_STAT")
    assert re.search(r"^exits\s+\d", s, re.M), s
    assert "bpf.userspace_exits" in s  # root: exit reasons from the eBPF aggregates
    term.keys("Tab")
    term.wait_text("job progress comes from libvirt")
    term.keys("Escape")
    term.wait(lambda s: "CPU%" in s and idle.name in s, what="back to the list")
    term.keys("q")
    assert term.exited() == 0


def test_views_and_overlays(term, guests):
    busy, idle = guests
    start_top(term, guests, "-c", "qemu:///system?socket=/nonexistent/libvirt-sock")
    # a source that failed says so in the header, and its warning waits in the log
    term.wait_text("libvirt: reconnecting")
    term.keys("l")
    s = term.wait_text("log (any key closes)")
    assert "warning libvirt: failed to connect" in s and "nonexistent" in s
    term.keys("x")
    term.wait(lambda s: "log (any key" not in s, what="the log closed")
    term.keys("?")
    term.wait_text("kvmwatch top - keys")
    term.keys("x")
    term.keys("n")
    s = term.wait_text("network: host interfaces")
    assert "IFACE" in s and "RX_kbit/s" in s
    term.keys("s")
    s = term.wait_text("storage: host disks")
    assert "R_IOPS" in s
    term.keys("t")
    s = term.wait_text("VM / THREAD")
    assert s.count("vCPU thread") == 3  # two of busy's, one of idle's
    term.keys("v")
    term.wait(lambda s: "CPU%" in s and busy.name in s, what="the list again")
    term.keys("q")
    assert term.exited() == 0


def test_needs_a_terminal(tmp_path):
    r = subprocess.run([KVMWATCH, "top", "--no-libvirt"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=20)
    assert r.returncode == 2
    assert "top needs a terminal" in r.stderr


def test_network_view_hides_firewall_bridges(term):
    """In a network namespace of its own with a Proxmox-style firewall
    bridge and a plain interface: fw* is hidden until 'a'."""
    # sysfs shows the network namespace of whoever mounted it: mount our own
    setup = ("mount -t sysfs sysfs /sys && "
             "ip link add fwbr100i0 type veth peer name eth7 && ip link add eth8 type veth peer name eth9 && "
             "ip link set fwbr100i0 up && ip link set eth7 up && exec \"$0\" \"$@\"")
    term.start(["unshare", "-n", "-m", "--propagation", "private", "sh", "-c", setup, KVMWATCH, "top",
                "--no-libvirt", "0.5"])
    term.wait_text("kvmwatch top")
    term.keys("n")
    s = term.wait(lambda s: re.search(r"^eth7\s", s, re.M), what="eth7 in the network view")
    assert not re.search(r"^fwbr100i0\s", s, re.M), s
    # link state: eth7 and its peer are up, eth8 is down
    assert re.search(r"^eth7\s.*\sup\s+-$", s, re.M) and re.search(r"^eth8\s.*\sdown\s+-$", s, re.M), s
    term.keys("a")
    term.wait(lambda s: re.search(r"^fwbr100i0\s", s, re.M), what="fw* shown with 'a'")
    term.keys("q")
    assert term.exited() == 0


@pytest.mark.parametrize("size", [(80, 24), (200, 60)])
def test_sizes_and_values_agree_with_json(size, guests):
    """At 80x24 and 200x60 the list shows both guests; RSS and vCPUs agree
    with -o json of the same moment."""
    busy, idle = guests
    t = Tmux(*size)
    try:
        start_top(t, guests)
        s = t.wait(lambda s: cpu_of(s, busy.name) > 20, what="rates")
        r = subprocess.run([KVMWATCH, "-o", "json", "--no-libvirt", "-p", str(busy.pid), "0.2", "1"],
                           capture_output=True, text=True, timeout=30, check=True)
        vm = [v for v in json.loads(r.stdout)["vms"] if v["pid"] == busy.pid][0]
        row = [l.split() for l in s.splitlines() if l.startswith(busy.name)][0]
        assert int(row[3]) == vm["vcpus"] == 2
        if size[0] >= 100:  # RSS_MiB fits at 200 columns (at 80 the row is cut)
            rss = float(row[7])  # VM PVEID STATE VCPU CPU% STEAL% OTHER% RSS_MiB
            assert abs(rss - vm["metrics"]["mem.rss"] / 1048576) < 0.5, (rss, vm["metrics"]["mem.rss"])
        lines = s.splitlines()
        assert len(lines) <= size[1] and all(len(l) <= size[0] for l in lines)
        t.keys("q")
        assert t.exited() == 0
    finally:
        t.kill()


def test_without_root_says_what_is_missing(term):
    term.start(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMWATCH, "top", "--no-libvirt", "0.5"])
    s = term.wait_text("kvmstat: off (kvmstat needs CAP_SYS_PTRACE")
    assert "bpf: off (bpf needs CAP_BPF" in s
    assert "procfs: on" in s
    term.keys("q")
    assert term.exited() == 0


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP"])
def test_signals_restore_the_terminal(term, tmp_path, sig):
    """stty -a before and after kvmwatch top is stopped by a signal: the same."""
    script = tmp_path / "run.sh"
    script.write_text('stty -a > "$1/before"; "$2" top --no-libvirt 0.5; echo "rc $?" > "$1/rc"; stty -a > "$1/after"\n')
    term.start(["sh", str(script), str(tmp_path), KVMWATCH])
    term.wait_text("kvmwatch top")
    pid = int(subprocess.run(["pgrep", "-f", "%s top --no-libvirt 0.5" % KVMWATCH], capture_output=True, text=True)
              .stdout.split()[0])
    os.kill(pid, getattr(signal, "SIG" + sig))
    term.exited()
    assert (tmp_path / "rc").read_text().strip() == "rc 0"
    assert (tmp_path / "after").read_text() == (tmp_path / "before").read_text()


def test_follows_terminal_resizes(term, guests):
    busy, idle = guests
    start_top(term, guests)
    term.resize(80, 24)
    s = term.wait(lambda s: all(len(l) <= 80 for l in s.splitlines()) and busy.name in s
                  and len(s.splitlines()) <= 24, what="the screen at 80x24")
    term.resize(200, 50)
    s = term.wait(lambda s: "TX_kbit/s" in s, what="every column back at 200 columns")
    term.keys("q")
    assert term.exited() == 0
