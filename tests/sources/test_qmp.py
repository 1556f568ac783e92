"""The QMP source: the strict JSON reader (kwqmptest json), QMP sockets found on
QEMU command lines, a real QEMU with a Proxmox-style command line, a monitor
held busy by another client, no root, and fake QMP servers sending exact,
erroneous, malformed, truncated and hostile replies."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import ROOT, build_path, needs_binary, needs_kvm, needs_root
from kwtest import KVMWATCH, find_vm, kvmwatch, kvmwatch_json

KWQMPTEST = build_path("tests", "kwqmptest")
FAKE = os.path.join(ROOT, "tests", "qmp", "fake_qmp.py")


def jparse(text, *opts):
    data = text if isinstance(text, bytes) else text.encode()
    r = subprocess.run([KWQMPTEST, "json"] + list(opts), input=data, capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode()


# ------------------------------------------------------------ JSON reader

VALID = [
    "{}", "[]", "0", "-0", "1.5e-3", "-12.25E+2", "123456789012345678901234567890", '""', "true", "false", "null",
    ' \t\r\n{ "a" : [ 1 , 2 ] }\n ',
    '{"return": [{"device": "drive-virtio0", "stats": {"rd_bytes": 0, "idle_time_ns": 5}}], "id": 7}',
    r'"\"\\\/\b\f\n\r\t"', r'"\u00e9\u20ac\ud83d\ude00\u0041"', '"caf\u00e9 \U0001f600 \u20ac"',
    '{"a": {"b": {"c": [[[[{"d": null}]]]]}}}', '{"dup": 1, "dup": 2}', "[" * 32 + "]" * 32,
]


@pytest.mark.parametrize("text", VALID)
def test_json_valid(text):
    rc, out = jparse(text)
    assert rc == 0, out
    assert json.loads(out) == json.loads(text)


INVALID = [
    ('{"a":1,}', "expected a string key"), ("[1,]", "unexpected character"), ("{'a':1}", "expected a string key"),
    ("NaN", "unexpected character"), ("01", "unexpected data after the value"), ("1.", "truncated"),
    (".5", "unexpected character"), ("+1", "unexpected character"), ("-", "truncated"), ("1e", "truncated"),
    ("1.e5", "invalid number"), ('"a\x01b"', "control character 0x01"), (r'"\q"', "invalid escape"),
    (r'"\u12G4"', "invalid \\u escape"), (r'"\ud800"', "unpaired high surrogate"),
    (r'"\udc00"', "unpaired low surrogate"), (r'"\ud800\u0041"', "unpaired high surrogate"),
    (b'"\xff"', "invalid UTF-8"), (b'"\xc0\xaf"', "invalid UTF-8"), (b'"\xed\xa0\x80"', "invalid UTF-8"),
    (b'"\xf4\x90\x80\x80"', "invalid UTF-8"), ('{"a" 1}', "expected ':'"), ("{1:2}", "expected a string key"),
    ("[1 2]", "expected ',' or ']'"), ('{"a":1 "b":2}', "expected ',' or '}'"), ("{} x", "unexpected data"),
    ("{}{}", "unexpected data"), ("]", "unexpected character"), ("trux", "invalid literal"), ("", "truncated"),
]


@pytest.mark.parametrize("text,why", INVALID)
def test_json_invalid(text, why):
    rc, out = jparse(text)
    assert rc == 1 and out.startswith("error: EINVAL: ") and why in out, out


@pytest.mark.parametrize("text", ['{"return": [1, 2', '"abc', '{"a":', "[", r'"\u12', r'"\ud83d', "tru",
                                  b'"\xe2\x82', '{"a": 1'])
def test_json_truncated(text):
    rc, out = jparse(text)
    assert rc == 1 and "error: EINVAL: truncated" in out, out
    # in a stream, the same input is incomplete: more bytes may follow
    rc, out = jparse(text, "--stream")
    assert rc == 3 and out.startswith("incomplete"), out


def test_json_hostile():
    # deep nesting: refused at the depth limit, no stack exhaustion
    rc, out = jparse("[" * 100000 + "]" * 100000)
    assert rc == 1 and "E2BIG" in out and "nested deeper than 32" in out
    rc, out = jparse("[" * 5 + "]" * 5, "--max-depth", "4")
    assert rc == 1 and "nested deeper than 4" in out
    rc, out = jparse("[" * 4 + "]" * 4, "--max-depth", "4")
    assert rc == 0
    # too many values
    rc, out = jparse("[" + ",".join(["0"] * 300000) + "]")
    assert rc == 1 and "E2BIG" in out and "more than 262144 values" in out
    rc, out = jparse("[" + ",".join(["0"] * 99) + "]", "--max-tokens", "100")
    assert rc == 0 and json.loads(out) == [0] * 99
    rc, out = jparse("[" + ",".join(["0"] * 100) + "]", "--max-tokens", "100")
    assert rc == 1 and "E2BIG" in out
    # big but valid
    big = "x" * (1 << 20)
    rc, out = jparse('{"s": "%s", "n": %s}' % (big, "9" * 5000))
    assert rc == 0 and out == '{"s":"%s","n":%s}\n' % (big, "9" * 5000)
    # U+0000 cannot become a C string: refused on access
    rc, out = jparse(r'{"status": "run\u0000ning"}')
    assert rc == 1 and "U+0000" in out
    # random bytes never crash it
    for seed in range(40):
        blob = os.urandom(64 + seed * 16)
        rc, _ = jparse(blob)
        assert rc in (0, 1)
        rc, _ = jparse(b'{"a": "' + blob, "--stream")
        assert rc in (0, 1, 3)


def test_json_stream():
    rc, out = jparse('{}{"a":1}\r\n[2] "x" 3 ')
    assert rc == 1 and "unexpected data" in out
    rc, out = jparse('{}{"a":1}\r\n[2] "x" {"b":', "--stream")
    assert rc == 3 and out.splitlines()[:4] == ["{}", '{"a":1}', "[2]", '"x"']


@pytest.mark.parametrize("num,expect", [
    ("0", "u64 0 i64 0"), ("18446744073709551615", "u64 18446744073709551615 i64 ERANGE"),
    ("18446744073709551616", "u64 ERANGE i64 ERANGE"), ("9223372036854775807", "u64 9223372036854775807 i64 9223372036854775807"),
    ("-9223372036854775808", "u64 ERANGE i64 -9223372036854775808"), ("-9223372036854775809", "u64 ERANGE i64 ERANGE"),
    ("-1", "u64 ERANGE i64 -1"), ("1.0", "u64 EINVAL i64 EINVAL"), ("1e3", "u64 EINVAL i64 EINVAL"),
    ('"1"', "u64 EINVAL i64 EINVAL")])
def test_json_numbers(num, expect):
    r = subprocess.run([KWQMPTEST, "num", num], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == expect


# ----------------------------------------------------- command-line forms

Q = "qemu-system-x86_64"
PVE = ["/usr/bin/kvm", "-id", "777", "-name", "vm777,debug-threads=on", "-no-shutdown",
       "-chardev", "socket,id=qmp,path=/var/run/qemu-server/777.qmp,server=on,wait=off",
       "-mon", "chardev=qmp,mode=control",
       "-chardev", "socket,id=qmp-event,path=/var/run/qmeventd.sock,reconnect=5",
       "-mon", "chardev=qmp-event,mode=control", "-pidfile", "/var/run/qemu-server/777.pid", "-daemonize"]


@pytest.mark.parametrize("argv,qmp", [
    (PVE, "/var/run/qemu-server/777.qmp"),
    ([Q, "-qmp", "unix:/run/q.sock,server=on,wait=off"], "/run/q.sock"),
    ([Q, "-qmp", "unix:/run/q.sock,server,nowait"], "/run/q.sock"),
    ([Q, "-qmp-pretty", "unix:/run/q,,x.sock,server=on"], "/run/q,x.sock"),
    ([Q, "--qmp", "unix:rel.sock,server=yes"], "rel.sock"),
    # without server QEMU connects out as a client: nothing to connect to
    ([Q, "-qmp", "unix:/run/q.sock"], ""),
    ([Q, "-qmp", "unix:/run/q.sock,server=off"], ""),
    ([Q, "-qmp", "tcp:127.0.0.1:4444,server=on"], ""),
    # -mon before -chardev, implied keys
    ([Q, "-mon", "mon0,mode=control", "-chardev", "socket,path=/a.sock,id=mon0,server=on,wait=off"], "/a.sock"),
    ([Q, "-chardev", "backend=socket,id=m,path=/b.sock,server", "-mon", "chardev=m,mode=control,pretty=on"],
     "/b.sock"),
    # a human monitor (mode readline, the default) is no QMP
    ([Q, "-chardev", "socket,id=hmp,path=/h.sock,server=on", "-mon", "chardev=hmp"], ""),
    ([Q, "-chardev", "socket,id=hmp,path=/h.sock,server=on", "-mon", "chardev=hmp,mode=readline"], ""),
    # a client chardev, fd passing (libvirt), an abstract socket, a pty: no path to connect to
    ([Q, "-chardev", "socket,id=c,path=/c.sock", "-mon", "chardev=c,mode=control"], ""),
    ([Q, "-chardev", "socket,id=charmonitor,fd=23,server=on,wait=off", "-mon",
      "chardev=charmonitor,id=monitor,mode=control"], ""),
    ([Q, "-chardev", "socket,id=c,path=abs,abstract=on,server=on", "-mon", "chardev=c,mode=control"], ""),
    ([Q, "-chardev", "pty,id=c", "-mon", "chardev=c,mode=control"], ""),
    # the first QMP server wins; -mon ids that match no chardev are ignored
    ([Q, "-mon", "chardev=nope,mode=control", "-qmp", "unix:/first,server=on", "-chardev",
      "socket,id=s,path=/second,server=on", "-mon", "chardev=s,mode=control"], "/first"),
    # an option value missing at the end of argv
    ([Q, "-qmp"], ""),
])
def test_cmdline_qmp_socket(argv, qmp):
    r = subprocess.run([KWQMPTEST, "cmdline"] + argv, capture_output=True, text=True, timeout=30)
    got = json.loads(r.stdout)
    assert got["qmp"] == qmp
    if argv is PVE:
        assert got == {"qemu": True, "name": "vm777", "pve_id": 777, "qmp": qmp}


# ------------------------------------------------------------ fake QMP

class FakeQemu:
    """A process that looks like QEMU (argv[0], -name, a QMP socket on its
    command line) and serves QMP in a mode of tests/qmp/fake_qmp.py."""

    def __init__(self, tmp, name, mode="good", form="chardev", sock=None, serve=True, cwd=None):
        self.name = "kwtest-qmp-%s-%d" % (name, os.getpid())
        self.sock = sock or str(tmp / (name + ".qmp"))
        self.log = str(tmp / (name + ".log"))
        self.accepts_log = str(tmp / (name + ".accepts"))
        args = ["qemu-system-x86_64", FAKE, "--mode", mode, "--log", self.log, "--accepts", self.accepts_log,
                "-name", "guest=%s,debug-threads=on" % self.name]
        if form == "chardev":
            args += ["-chardev", "socket,id=qmp,path=%s,server=on,wait=off" % self.sock,
                     "-mon", "chardev=qmp,mode=control"]
        else:
            args += ["-qmp", "unix:%s,server=on,wait=off" % self.sock]
        if not serve:
            args += ["--serve", "none"]
        self.proc = subprocess.Popen(args, executable=sys.executable, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, cwd=cwd)
        line = self.proc.stdout.readline()
        assert line.strip() == "ready", line
        self.pid = self.proc.pid

    def commands(self):
        try:
            with open(self.log) as f:
                return [json.loads(l)["execute"] for l in f]
        except FileNotFoundError:
            return []

    def accepts(self):
        """Connections the fake monitor accepted."""
        try:
            with open(self.accepts_log) as f:
                return len(f.readlines())
        except FileNotFoundError:
            return 0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def fakes():
    made = []
    yield made
    for f in made:
        f.stop()


def run_json(names, *args, timeout=60):
    cmd = ["-o", "json"]
    for n in names:
        cmd += ["-p", n]
    r = kvmwatch(*(cmd + list(args)), timeout=timeout)
    assert r.returncode == 0, r.stderr
    return [json.loads(l) for l in r.stdout.splitlines()], r.stderr


def test_fake_qmp_exact_mapping(tmp_path, fakes):
    """Every QMP field lands in its row with the exact value; the empty CD-ROM
    drive is left out, the -device id names a disk without -drive id, events
    between replies are skipped, escaped keys decode, stats schemas are read
    once, and query-stats fills the kvm.* rows (the fake holds no KVM fds)."""
    f = FakeQemu(tmp_path, "good")
    fakes.append(f)
    reps, err = run_json([f.name], "1", "2")
    assert "qmp:" not in err, err
    assert reps[-1]["sources"]["qmp"] == {"available": True}
    vm = find_vm(reps[-1], f.name)
    m = vm["metrics"]
    assert vm["pid"] == f.pid and vm["state"] == "paused"
    assert vm["disks"] == ["drive-scsi0", "virtio-disk1"]
    assert m["disk.rd_bytes"] == {"drive-scsi0": 1000001, "virtio-disk1": 0}
    assert m["disk.wr_bytes"]["drive-scsi0"] == 2000002
    assert m["disk.rd_reqs"] == {"drive-scsi0": 11, "virtio-disk1": 9}
    assert m["disk.wr_reqs"]["drive-scsi0"] == 22 and m["disk.fl_reqs"]["drive-scsi0"] == 3
    assert m["disk.rd_time"]["drive-scsi0"] == 44000000 and m["disk.wr_time"]["drive-scsi0"] == 55000000
    assert m["disk.fl_time"]["drive-scsi0"] == 6000000
    assert m["disk.allocation"]["drive-scsi0"] == 7340032
    assert m["disk.capacity"] == {"drive-scsi0": 10737418240, "virtio-disk1": 1048576}
    assert m["disk.physical"] == {"drive-scsi0": 1234567168, "virtio-disk1": 4096}
    assert m["disk.unmap_reqs"]["drive-scsi0"] == 7 and m["disk.unmap_bytes"]["drive-scsi0"] == 8192
    assert m["disk.unmap_time"]["drive-scsi0"] == 900
    assert m["disk.rd_failed"]["drive-scsi0"] == 1 and m["disk.wr_failed"]["drive-scsi0"] == 2
    assert m["disk.fl_failed"]["drive-scsi0"] == 0
    assert m["disk.rd_invalid"]["drive-scsi0"] == 4 and m["disk.wr_invalid"]["drive-scsi0"] == 5
    assert m["disk.fl_invalid"]["drive-scsi0"] == 6
    assert m["disk.idle_time"] == {"drive-scsi0": 123456789}  # absent before a disk's first request
    assert m["mem.current"] == 1073741824 and m["mem.max"] == 2147483648 + 536870912
    assert m["kvm.vcpu"] == {"exits": 123, "halt_wait_hist": 10}
    assert m["kvm.vcpu_each"] == {"0.exits": 100, "1.exits": 23, "0.halt_wait_hist": 6, "1.halt_wait_hist": 4}
    assert m["kvm.vcpu_gauge"] == {"blocking": 1, "halt_poll_max": 50}
    assert m["kvm.vm"] == {"remote_tlb_flush": 9}
    assert m["kvm.vm_gauge"] == {"pages_4k": 512, "max_mmu_rmap_size": 7}
    assert "cpu.user" in m and "mem.rss" in m  # /proc as always
    cmds = f.commands()
    assert cmds.count("qmp_capabilities") == 3  # one session per cycle
    assert cmds.count("query-stats-schemas") == 1
    assert cmds.count("query-stats") == 6
    # the disk view: rates over the interval (the fake's counters stand still)
    r = kvmwatch("--view", "disk", "-p", f.name, "1", "1", check=True)
    rows = [l.split() for l in r.stdout.splitlines() if l.startswith(f.name)]
    assert [(x[2], x[-1]) for x in rows] == [("drive-scsi0", "10240.0"), ("virtio-disk1", "1.0")]
    r = kvmwatch("--view", "mem", "-p", f.name, "1", "1", check=True)
    row = [l.split() for l in r.stdout.splitlines() if l.startswith(f.name)][0]
    assert row[2] == "paused" and row[4:6] == ["2560.0", "1024.0"]


def test_fake_qmp_forms_and_paths(tmp_path, fakes):
    """-qmp unix:PATH,server=on; a path relative to QEMU's working directory;
    a path longer than sun_path (reached through its directory's fd)."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    a = FakeQemu(tmp_path, "qmpopt", form="qmp")
    b = FakeQemu(tmp_path, "rel", sock="rel.qmp", cwd=str(tmp_path))
    c = FakeQemu(tmp_path, "long", sock=str(deep / "long.qmp"))
    fakes.extend([a, b, c])
    assert len(c.sock) > 108
    reps, err = run_json([a.name, b.name, c.name], "0.2", "1")
    for f in (a, b, c):
        vm = find_vm(reps[-1], f.name)
        assert vm["metrics"]["disk.capacity"]["drive-scsi0"] == 10737418240, (f.name, err)


def test_fake_qmp_bad_replies(tmp_path, fakes):
    """Errors, malformed, truncated, non-JSON, hostile, oversized, silent,
    slow and mis-addressed replies: an error for that VM only (its /proc
    metrics stay), one message per VM, no hang, no crash; a good VM next to
    them gets all its data."""
    good = FakeQemu(tmp_path, "good2")
    bad = {m: FakeQemu(tmp_path, m, mode=m) for m in
           ("errors", "malformed", "truncated", "garbage", "deep", "huge", "silent", "slow", "badid", "nul")}
    fakes.append(good)
    fakes.extend(bad.values())
    # bounded (the subprocess timeout): 3 cycles, at most 1.5 s per VM each
    reps, err = run_json([good.name] + [f.name for f in bad.values()], "1", "2", timeout=120)
    g = find_vm(reps[-1], good.name)
    assert g["metrics"]["disk.rd_reqs"] == {"drive-scsi0": 11, "virtio-disk1": 9}
    for mode, f in bad.items():
        vm = find_vm(reps[-1], f.name)
        assert vm is not None and "cpu.user" in vm["metrics"], mode
    # QMP error replies skip their query quietly; the session goes on
    e = find_vm(reps[-1], bad["errors"].name)
    assert not any(k.startswith(("disk.", "kvm.")) for k in e["metrics"]) and "mem.current" not in e["metrics"]
    assert bad["errors"].commands().count("query-memory-size-summary") == 3
    assert "kwtest-qmp-errors" not in err
    # what came before the bad reply is kept
    mal = find_vm(reps[-1], bad["malformed"].name)
    assert mal["state"] == "paused" and "disk.rd_reqs" not in mal["metrics"]
    tr = find_vm(reps[-1], bad["truncated"].name)
    assert tr["metrics"]["disk.capacity"]["drive-scsi0"] == 10737418240 and "disk.rd_reqs" not in tr["metrics"]
    assert find_vm(reps[-1], bad["nul"].name)["state"] == ""
    expect = {"malformed": "query-block: malformed message: unexpected character 0x5d",
              "truncated": "truncated message: the connection closed after",
              "garbage": "malformed message: unexpected character 0x48",
              "deep": "nested deeper than 32",
              "huge": "a message is larger than 4194304 bytes",
              "slow": "query-status: no complete message in time",
              "badid": "query-status: no complete message in time"}
    for mode, why in expect.items():
        lines = [l for l in err.splitlines() if "qmp: VM %s " % bad[mode].name in l]
        assert len(lines) == 1 and why in lines[0], (mode, lines, err)
    # silent: like a monitor busy with another client: debug level only
    assert bad["silent"].name not in err
    assert bad["nul"].name not in err


def test_fake_qmp_socket_trouble(tmp_path, fakes):
    """A socket path that does not exist; a socket served by another process
    than the VM's (never spoken to); a libvirt monitor path (left alone)."""
    real = FakeQemu(tmp_path, "owner")
    missing = FakeQemu(tmp_path, "missing", sock=str(tmp_path / "nonexistent.qmp"), serve=False)
    thief = FakeQemu(tmp_path, "thief", sock=real.sock, serve=False)
    lv = FakeQemu(tmp_path, "lv", sock="/run/libvirt/qemu/kwtest-nonexistent.monitor", serve=False)
    fakes.extend([real, missing, thief, lv])
    r = kvmwatch("-v", "-o", "json", "-p", missing.name, "-p", thief.name, "-p", lv.name, "0.2", "3")
    assert r.returncode == 0, r.stderr
    reps = [json.loads(l) for l in r.stdout.splitlines()]
    for f in (missing, thief, lv):
        vm = find_vm(reps[-1], f.name)
        assert "cpu.user" in vm["metrics"] and "disk.rd_reqs" not in vm["metrics"]
    lines = [l for l in r.stderr.splitlines() if missing.name in l]
    assert len(lines) == 1 and "No such file or directory; no QMP data for it" in lines[0], r.stderr
    lines = [l for l in r.stderr.splitlines() if thief.name in l]
    assert len(lines) == 1 and "is not a socket the VM's process (pid %d) listens on: not used" % thief.pid \
        in lines[0], r.stderr
    assert real.accepts() == 0  # checked before connecting: never connected
    lines = [l for l in r.stderr.splitlines() if lv.name in l]
    assert len(lines) == 1 and "managed by libvirt" in lines[0]
    # --no-qmp: the source is off
    reps = kvmwatch_json("--no-qmp", "-p", real.name, "0.2", "1")
    assert reps[-1]["sources"]["qmp"] == {"available": False, "reason": "disabled by configuration"}
    assert "disk.rd_reqs" not in find_vm(reps[-1], real.name)["metrics"]
    assert real.commands() == []


# ------------------------------------------------------------ real QEMU

DISK_SIZE = 3 * 1048576 + 4096


@pytest.fixture(scope="module")
def pve_qemu(tmp_path_factory):
    """qemu-system-x86_64 -accel kvm with a Proxmox-style command line (stock
    QEMU has no -id: that is Proxmox's patch; the rest is as qemu-server
    writes it) booting the tiny kernel, with a raw virtio disk and a balloon."""
    tmp = tmp_path_factory.mktemp("pve")
    disk = tmp / "d.raw"
    with open(disk, "wb") as f:
        f.truncate(DISK_SIZE)
    name = "kwtest-qmp-777-%d" % os.getpid()
    pidfile = tmp / "777.pid"
    sock = tmp / "777.qmp"
    q = subprocess.run([
        "qemu-system-x86_64", "-accel", "kvm", "-name", "%s,debug-threads=on" % name, "-no-shutdown",
        "-chardev", "socket,id=qmp,path=%s,server=on,wait=off" % sock, "-mon", "chardev=qmp,mode=control",
        "-chardev", "socket,id=qmp-event,path=%s/qmeventd.sock,reconnect=5" % tmp,
        "-mon", "chardev=qmp-event,mode=control", "-pidfile", str(pidfile), "-daemonize",
        "-smp", "1", "-m", "64", "-kernel", build_path("tests", "tiny-kernel.elf"), "-append", "spin=forever",
        "-drive", "file=%s,format=raw,if=none,id=drive-virtio0" % disk,
        "-device", "virtio-blk-pci,drive=drive-virtio0", "-device", "virtio-balloon-pci",
        "-display", "none", "-nodefaults", "-no-reboot"], capture_output=True, text=True, timeout=60)
    assert q.returncode == 0, q.stderr
    pid = int(pidfile.read_text())
    yield {"name": name, "pid": pid, "sock": str(sock), "disk": disk}
    os.kill(pid, signal.SIGKILL)


real_qemu = [needs_kvm, needs_root, needs_binary("qemu-system-x86_64")]


def apply(marks):
    def wrap(fn):
        for m in marks:
            fn = m(fn)
        return fn
    return wrap


@apply(real_qemu)
def test_real_qemu_proxmox_style(pve_qemu):
    reps = kvmwatch_json("-p", pve_qemu["name"], "1", "2")
    vm = find_vm(reps[-1], pve_qemu["name"])
    m = vm["metrics"]
    assert vm["pid"] == pve_qemu["pid"] and vm["state"] == "running"
    assert vm["disks"] == ["drive-virtio0"]
    assert m["disk.capacity"] == {"drive-virtio0": DISK_SIZE} == {"drive-virtio0": os.path.getsize(pve_qemu["disk"])}
    assert m["disk.physical"] == {"drive-virtio0": os.stat(pve_qemu["disk"]).st_blocks * 512}
    for k in ("disk.rd_reqs", "disk.wr_reqs", "disk.fl_reqs", "disk.rd_bytes", "disk.wr_bytes", "disk.rd_time",
              "disk.wr_time", "disk.allocation", "disk.rd_failed", "disk.wr_failed", "disk.unmap_reqs"):
        assert m[k] == {"drive-virtio0": 0}, k
    assert "disk.idle_time" not in m  # no request yet
    assert m["mem.current"] == 64 << 20 and m["mem.max"] == 64 << 20
    # QEMU 7.2 holds no KVM stats fds (kvmstat reads nothing): query-stats fills kvm.*
    assert m["kvm.vcpu"]["exits"] > 0 and m["kvm.vcpu_each"]["0.exits"] == m["kvm.vcpu"]["exits"]
    assert "pages_4k" in m["kvm.vm_gauge"]
    assert reps[-1]["sources"]["qmp"]["available"] is True
    r = kvmwatch("--view", "disk", "-p", pve_qemu["name"], "1", "1", check=True)
    row = [l.split() for l in r.stdout.splitlines() if l.startswith(pve_qemu["name"][:24])][0]
    assert row[2] == "drive-virtio0" and row[3:5] == ["0.0", "0.0"] and row[-1] == "3.0"


@apply(real_qemu)
def test_real_qemu_busy_monitor(pve_qemu):
    """Another client (Proxmox's qm/pvestatd) holds the monitor: kvmwatch
    does not wait for it, says so at debug level, keeps the /proc metrics;
    once the client leaves, QMP data is back."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(pve_qemu["sock"])
    assert b'"QMP"' in s.recv(4096)
    try:
        r = kvmwatch("-v", "-o", "json", "-p", pve_qemu["name"], "0.5", "3", timeout=60)
        assert r.returncode == 0, r.stderr
        reps = [json.loads(l) for l in r.stdout.splitlines()]
        assert len(reps) == 3
        for rep in reps:
            vm = find_vm(rep, pve_qemu["name"])
            assert "cpu.user" in vm["metrics"] and "mem.rss" in vm["metrics"]
            assert not any(k.startswith("disk.") for k in vm["metrics"])
        busy = [l for l in r.stderr.splitlines() if "qmp: VM %s" % pve_qemu["name"] in l]
        assert len(busy) == 4 and all("serving another client" in l and "skipped this cycle" in l for l in busy)
        r = kvmwatch("-o", "json", "-p", pve_qemu["name"], "0.5", "1")
        assert "qmp:" not in r.stderr  # busy is not worth a message without -v
    finally:
        s.close()
    # QEMU accepts the connections that queued meanwhile (closed: EOF), then ours
    reps = kvmwatch_json("-p", pve_qemu["name"], "0.5", "3")
    assert find_vm(reps[-1], pve_qemu["name"])["metrics"]["disk.capacity"] == {"drive-virtio0": DISK_SIZE}


@apply(real_qemu + [needs_binary("setpriv")])
def test_real_qemu_without_root(pve_qemu):
    """As an unprivileged user the root-owned QMP socket is out of reach: the
    VM lacks QMP data, one message says why."""
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", KVMWATCH, "-o", "json",
                        "-p", str(pve_qemu["pid"]), "0.2", "3"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    reps = [json.loads(l) for l in r.stdout.splitlines()]
    vm = find_vm(reps[-1], pve_qemu["name"])
    assert "cpu.user" in vm["metrics"] and not any(k.startswith(("disk.", "mem.current")) for k in vm["metrics"])
    lines = [l for l in r.stderr.splitlines() if "qmp:" in l]
    assert len(lines) == 1 and "Permission denied" in lines[0], r.stderr
    assert "without access to their QMP sockets (run as root)" in lines[0]


def test_trickling_monitors_do_not_stretch_the_cycle(tmp_path, fakes):
    """Five monitors that accept and trickle bytes made every 1 s cycle take
    7.5-9 s (1.5 s each, one after another).  All monitors are asked at
    once within a budget; the slow ones are skipped, backed off, said once."""
    slow = [FakeQemu(tmp_path, "trickle%d" % i, mode="trickle") for i in range(5)]
    good = FakeQemu(tmp_path, "good3")
    fakes.extend(slow + [good])
    t0 = time.monotonic()
    reps, err = run_json([good.name] + [f.name for f in slow], "0.5", "6", timeout=60)
    took = time.monotonic() - t0
    # 7 collections at 0.5 s: the budget (0.5 s) is spent once per cycle, not once per monitor
    assert took < 6.5, took
    gaps = [b["time"] - a["time"] for a, b in zip(reps, reps[1:])]
    assert max(gaps) < 1.2, gaps
    assert find_vm(reps[-1], good.name)["metrics"]["disk.rd_reqs"] == {"drive-scsi0": 11, "virtio-disk1": 9}
    for f in slow:
        lines = [l for l in err.splitlines() if f.name in l]
        assert len(lines) == 1 and "does not answer within the cycle's budget (500 ms)" in lines[0], err
    # backed off: asked in fewer cycles than there were
    assert all(f.commands().count("qmp_capabilities") < 7 for f in slow)
