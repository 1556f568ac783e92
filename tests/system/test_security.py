"""Attacks by an unprivileged user on the privileged front ends (SECURITY.md).

Each attack runs for real as user nobody (setpriv) -- against a copy of the
netdata plugin carrying the capabilities `make install` gives it, or against
the root CLI through a process, fd or socket nobody controls -- and the test
asserts the exact outcome: nothing of a protected file in any output, forged
KVM stats never published and memory bounded, no connection to a socket the
VM does not own, a hostile monitor capped, log lines escaped.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import ROOT, needs_binary, needs_kvm, needs_root
from kwtest import KVMWATCH, build_path

pytestmark = [needs_root, needs_binary("setpriv"), needs_binary("setcap"), needs_binary("strace")]

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
FAKE_QMP = os.path.join(ROOT, "tests", "qmp", "fake_qmp.py")


def module_caps():
    """The capabilities `make install-netdata` gives the plugin."""
    with open(os.path.join(ROOT, "netdata-plugin", "module.mk")) as f:
        m = re.search(r"^NETDATA_PLUGIN_CAPS\s*\?=\s*(\S+)\+ep$", f.read(), re.M)
    return m.group(1)


@pytest.fixture
def shared():
    """A directory nobody can reach (pytest's tmp_path is root's 0700)."""
    d = tempfile.mkdtemp(prefix="kwsec-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def capped_plugin(shared):
    """kvmwatch.plugin installed as `make install-netdata` does: 0750
    root:<nobody's group>, with the file capabilities of module.mk."""
    p = os.path.join(shared, "kvmwatch.plugin")
    shutil.copy(build_path("kvmwatch.plugin"), p)
    os.chown(p, 0, 65534)
    os.chmod(p, 0o750)
    subprocess.run(["setcap", module_caps() + "+ep", p], check=True)
    return p


def nobody_dir(shared, name, mode=0o755):
    d = os.path.join(shared, name)
    os.mkdir(d)
    os.chown(d, 65534, 65534)
    os.chmod(d, mode)
    return d


def cap_sets(pid):
    caps = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("CapEff:", "CapPrm:")):
                k, v = line.split(":")
                caps[k] = int(v, 16)
    return caps


def shadow_secrets():
    """Whole lines of /etc/shadow and every password field worth a name."""
    with open("/etc/shadow") as f:
        lines = [l.rstrip("\n") for l in f if l.strip()]
    return lines + [l.split(":")[1] for l in lines if len(l.split(":")[1]) >= 8]


# ------------------------------------------------- 1. the netdata plugin

def run_plugin_as_nobody(plugin, *args, env=None):
    return subprocess.run(NOBODY + [plugin, "--step"] + list(args) + ["1"], input="", capture_output=True,
                          text=True, timeout=60, env=env)


def test_plugin_config_is_read_with_the_callers_rights(capped_plugin):
    r = run_plugin_as_nobody(capped_plugin, "--config", "/etc/shadow")
    out = r.stdout + r.stderr
    assert "config /etc/shadow:0: cannot read: Permission denied (using defaults)" in r.stderr, r.stderr
    assert not [s for s in shadow_secrets() if s in out]


def test_plugin_config_dirs_from_the_environment(capped_plugin, shared):
    # a directory only root may read, holding a kvmwatch.conf with secrets
    secret = os.path.join(shared, "rootonly")
    os.mkdir(secret, 0o700)
    with open(os.path.join(secret, "kvmwatch.conf"), "w") as f:
        f.write("SECRET-TOKEN-7f3a9\n[global]\nSECRET-KEY-51c2 = SECRET-VALUE-e0d4\n")
    env = dict(os.environ, NETDATA_USER_CONFIG_DIR=secret, NETDATA_STOCK_CONFIG_DIR=secret)
    r = run_plugin_as_nobody(capped_plugin, env=env)
    assert "SECRET-" not in r.stdout + r.stderr
    assert "config %s/kvmwatch.conf:0: cannot read: Permission denied (using defaults)" % secret in r.stderr


def test_plugin_config_errors_quote_no_line(capped_plugin, shared):
    # even a file the caller may read: errors name the line, never its text
    conf = os.path.join(shared, "kv.conf")
    with open(conf, "w") as f:
        f.write("LINE-TEXT-a81f\n[LINE-TEXT-b22c\n")
    os.chmod(conf, 0o644)
    r = run_plugin_as_nobody(capped_plugin, "--config", conf)
    assert "LINE-TEXT" not in r.stdout + r.stderr
    assert "config %s:1: expected 'key = value': line ignored" % conf in r.stderr
    assert "config %s:2: malformed section header (expected '[name]')" % conf in r.stderr


def test_plugin_untrusted_proc_root_drops_every_capability(capped_plugin, shared):
    # nobody's own tree, a "VM" whose command line is /etc/shadow
    root = nobody_dir(shared, "evil")
    proc = os.path.join(root, "proc")
    pid = os.path.join(proc, "4242")
    os.makedirs(pid)
    os.symlink("/etc/shadow", os.path.join(pid, "cmdline"))
    with open(os.path.join(pid, "comm"), "w") as f:
        f.write("qemu-system-x86\n")
    shutil.copy("/proc/stat", os.path.join(proc, "stat"))
    for dirpath, dirs, files in os.walk(root):
        for n in dirs + files:
            os.lchown(os.path.join(dirpath, n), 65534, 65534)
    env = dict(os.environ, NETDATA_HOST_PREFIX=root)
    p = subprocess.Popen(NOBODY + [capped_plugin, "--step", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        p.stdin.write("\n")
        p.stdin.flush()
        p.stdout.readline()              # one cycle done
        caps = cap_sets(p.pid)
        p.stdin.close()
        p.wait(timeout=30)
        out, err = p.stdout.read(), p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert caps == {"CapEff": 0, "CapPrm": 0}, caps
    assert "procfs root %s/proc: %s/proc is not a procfs mount: running without capabilities" % (root, root) \
        in err, err
    assert not [s for s in shadow_secrets() if s in out + err]


def test_plugin_holds_only_the_capabilities_it_was_given(capped_plugin):
    p = subprocess.Popen(NOBODY + [capped_plugin, "--step", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        p.stdin.write("\n")
        p.stdin.flush()
        p.stdout.readline()
        caps = cap_sets(p.pid)
    finally:
        p.kill()
        p.wait()
    dac, ptrace, perfmon, bpf = 1 << 2, 1 << 19, 1 << 38, 1 << 39
    assert caps["CapEff"] == caps["CapPrm"] == dac | ptrace | perfmon | bpf, caps


def test_plugin_libvirt_test_driver_loses_privilege(capped_plugin, shared):
    # libvirt's test driver reads its file in our process (with our capabilities)
    conf = os.path.join(shared, "lv.conf")
    with open(conf, "w") as f:
        f.write("[sources]\nlibvirt uri = test:///etc/shadow\n")
    os.chmod(conf, 0o644)
    p = subprocess.Popen(NOBODY + [capped_plugin, "--config", conf, "--step", "debug", "1"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        p.stdin.write("\n")
        p.stdin.flush()
        p.stdout.readline()
        caps = cap_sets(p.pid)
        p.stdin.close()
        p.wait(timeout=30)
        out, err = p.stdout.read(), p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert caps == {"CapEff": 0, "CapPrm": 0}, caps
    assert "libvirt uri test:///etc/shadow is not a qemu:/// URI: running without capabilities" in err, err
    assert not [x for x in shadow_secrets() if x in out + err]


def test_plugin_proc_subdirectory_is_no_proc_root(capped_plugin):
    # /proc/self/fd is root-owned procfs, and full of links the caller made
    r = run_plugin_as_nobody(capped_plugin, "--procfs", "/proc/self/fd")
    assert re.search(r"procfs root /proc/self/fd: /proc/\d+/fd is not the root of a procfs mount: running without "
                     r"capabilities", r.stderr), r.stderr


def test_privilege_table_is_what_install_gives():
    r = subprocess.run([KVMWATCH, "--privileges"], capture_output=True, text=True, timeout=30, check=True)
    rows = {l.split()[0]: l.split()[1] for l in r.stdout.splitlines()}
    assert set(rows) == {"procfs", "kvmstat", "bpf", "tracefs", "qmp", "libvirt"}
    assert rows["qmp"] == rows["libvirt"] == "-"
    needed = set()
    for caps in rows.values():
        needed |= {c.replace("(missing)", "").lower() for c in caps.split("+") if c != "-"}
    assert needed == set(module_caps().split(","))


def test_secure_getenv_for_the_bpf_knob(capped_plugin, shared):
    # KVMWATCH_BPF_DISABLE steers privileged work: ignored in a capability binary
    conf = os.path.join(shared, "bpf.conf")
    with open(conf, "w") as f:
        f.write("[bpf]\nexits = yes\n")
    os.chmod(conf, 0o644)
    env = dict(os.environ, KVMWATCH_BPF_DISABLE="fentry,kprobe,tp_btf,raw_tp,tracepoint")
    r = run_plugin_as_nobody(capped_plugin, "--config", conf, "debug", env=env)
    assert "disabled by KVMWATCH_BPF_DISABLE" not in r.stderr, r.stderr
    assert "no eBPF feature could be loaded" not in r.stderr, r.stderr


# ----------------------------------------------- 2. forged KVM stats fds

ATTACKER = r"""
import fcntl, os, sys
kvm = os.open("/dev/kvm", os.O_RDWR)
vm = fcntl.ioctl(kvm, 0xAE01, 0)                  # KVM_CREATE_VM
def high(fd, to):                                 # out of the way: /proc lists fds in order
    os.dup2(fd, to)
    os.close(fd)
    return to
stats = []
for i in range(int(sys.argv[2])):
    vcpu = high(fcntl.ioctl(vm, 0xAE41, i), 2000 + i)             # KVM_CREATE_VCPU
    stats.append(high(fcntl.ioctl(vcpu, 0xAECE, 0), 1000 + i))    # KVM_GET_STATS_FD: kvm-vcpu-stats:i
evil = os.open(sys.argv[1], os.O_RDONLY)
slots = [500 + i for i in range(len(stats))]
print("ready", flush=True)
while True:                                       # what /proc shows, then what pidfd_getfd takes
    for s, fd in zip(slots, stats):
        os.dup2(fd, s)
    for s in slots:
        os.dup2(evil, s)
"""


def forged_stats_file(path):
    """A kvm_stats_header with hostile descriptors: a name with a quote and a
    newline, and a stat 1 GiB into a (sparse) data block that a trusting
    reader allocates and reads whole."""
    names = [b'evil_injected"x\nFAKE y', b"evil_huge"]
    descs = b""
    for i, n in enumerate(names):
        size, offset = (1, 0) if i == 0 else (65535, 1 << 30)
        descs += struct.pack("<IhHII", 0, 0, size, offset, 0) + n.ljust(48, b"\0")
    hdr = struct.pack("<IIIIII", 0, 48, len(names), 24, 24, 24 + len(descs))
    with open(path, "wb") as f:
        f.write(hdr + descs + b"\x41" * 64)
        f.truncate(24 + len(descs) + (1 << 30) + 65535 * 8)
    os.chmod(path, 0o644)


@needs_kvm
def test_swapped_stats_fd_never_published(shared):
    """A kvm-group user's process that looks like QEMU keeps swapping its
    vCPU stats fds with a forged file, racing kvmwatch's readlink and
    pidfd_getfd.  kvmwatch checks what it took: the forged file is seen,
    said, and never read; memory stays bounded."""
    evil = os.path.join(shared, "evil.stats")
    forged_stats_file(evil)
    script = os.path.join(shared, "attacker.py")
    with open(script, "w") as f:
        f.write(ATTACKER)
    node = os.path.join(shared, "kvm")
    os.mknod(node, 0o660 | 0o020000, os.makedev(10, 232))
    os.chown(node, 0, _gid("kvm") or 65534)
    os.chmod(node, 0o660)
    name = "kwtest-forger-%d" % os.getpid()
    # nobody in group kvm, with a /dev/kvm it may open, in its own mount namespace
    cmd = ["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
           'mount --bind "$0" /dev/kvm && exec "$@"', node] + \
          ["setpriv", "--reuid=65534", "--regid=65534", "--groups=%d" % os.stat(node).st_gid] + \
          ["bash", "-c", 'exec -a qemu-system-x86_64 "$0" "$@"', sys.executable, script, evil, "48",
           "-name", "guest=%s" % name, "-smp", "48"]
    atk = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert atk.stdout.readline().strip() == "ready"
        seen, outs = 0, ""
        for attempt in range(8):
            # strace widens the window between readlink and pidfd_getfd to
            # 20 ms, so the attacker wins about half of the fds
            out, err, status, ru = run_measured(
                ["/usr/bin/strace", "-qq", "-f", "-o", "/dev/null", "-e", "trace=pidfd_getfd", "-e",
                 "inject=pidfd_getfd:delay_enter=20000", KVMWATCH, "-o", "json", "--no-qmp", "--no-libvirt",
                 "-p", name, "0.05", "3"], shared)
            assert status == 0, err
            outs += out + err
            assert "evil" not in out + err and "FAKE" not in out + err
            assert ru.ru_maxrss < 128 * 1024, ru.ru_maxrss       # KiB: far from the 1 GiB it took
            rep = json.loads(out.splitlines()[-1])
            vm = [v for v in rep["vms"] if v["name"] == name]
            assert len(vm) == 1, rep
            seen += err.count("a descriptor named as a KVM fd in /proc was something else when taken: ignored")
            if seen:
                break
        assert seen, "the race was never won by the attacker in 8 runs: nothing was tested\n" + outs[-2000:]
    finally:
        atk.kill()
        atk.wait()


def run_measured(args, d):
    """Run args to the end; (stdout, stderr, exit status, its own rusage)."""
    with open(os.path.join(d, "out"), "w+") as o, open(os.path.join(d, "err"), "w+") as e:
        # LeakSanitizer cannot run under ptrace (strace): leaks are checked elsewhere
        env = dict(os.environ, ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":"))
        pid = os.posix_spawn(args[0], args, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, o.fileno(), 1), (os.POSIX_SPAWN_DUP2, e.fileno(), 2)])
        try:
            _, status, ru = os.wait4(pid, 0)
        except BaseException:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise
        o.seek(0)
        e.seek(0)
        return o.read(), e.read(), os.waitstatus_to_exitcode(status), ru


def _gid(name):
    import grp
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


# ------------------------------------------------ 3. QMP sockets and monitors

class NobodyQemu:
    """A process of nobody's that looks like QEMU and names a QMP socket;
    it serves QMP there (mode of fake_qmp.py) or names someone else's."""

    def __init__(self, shared, name, sock, mode="good", serve=True):
        self.name = name
        self.accepts_log = os.path.join(shared, name + ".accepts")
        script = os.path.join(shared, "fake_qmp.py")
        if not os.path.exists(script):
            shutil.copy(FAKE_QMP, script)
            os.chmod(script, 0o644)
        args = [sys.executable, script, "--mode", mode, "-name", "guest=%s,debug-threads=on" % name,
                "-qmp", "unix:%s,server=on,wait=off" % sock]
        if not serve:
            args += ["--serve", "none"]
        self.proc = subprocess.Popen(NOBODY + ["bash", "-c", 'exec -a qemu-system-x86_64 "$0" "$@"'] + args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=shared)
        assert self.proc.stdout.readline().strip() == "ready"
        self.pid = self.proc.pid

    def stop(self):
        self.proc.kill()
        self.proc.wait()


class Decoy:
    """Another service's socket (root's, world-connectable): counts accepts."""

    def __init__(self, path):
        self.path = path
        self.log = path + ".accepts"
        code = ("import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\n"
                "import os; os.chmod(sys.argv[1], 0o777)\ns.listen(8)\nprint('ready', flush=True)\n"
                "while True:\n c,_=s.accept()\n open(sys.argv[2],'a').write('accepted\\n')\n c.close()\n")
        self.proc = subprocess.Popen([sys.executable, "-c", code, path, self.log], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def accepts(self):
        try:
            with open(self.log) as f:
                return len(f.readlines())
        except FileNotFoundError:
            return 0

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def test_decoy_socket_never_connected(shared):
    decoy = Decoy(os.path.join(shared, "service.sock"))
    # the same socket named three ways, one with "//" and "/./"
    names = ["kwtest-thief-a-%d" % os.getpid(), "kwtest-thief-b-%d" % os.getpid()]
    thieves = [NobodyQemu(shared, names[0], decoy.path, serve=False),
               NobodyQemu(shared, names[1], shared + "//./service.sock", serve=False)]
    try:
        r = subprocess.run([KVMWATCH, "-o", "json", "--no-kvmstat", "-p", names[0], "-p", names[1], "0.1", "5"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert decoy.accepts() == 0
        for t in thieves:
            lines = [l for l in r.stderr.splitlines() if t.name in l]
            assert len(lines) == 1 and ("is not a socket the VM's process (pid %d) listens on: not used" % t.pid
                                        ) in lines[0], r.stderr
    finally:
        for t in thieves:
            t.stop()
        decoy.stop()


def test_socket_of_another_user_never_connected(shared):
    # a monitor nobody's fake VM really serves, but whose file another uid owns
    d = nobody_dir(shared, "mon", 0o777)
    sock = os.path.join(d, "m.sock")
    name = "kwtest-owner-%d" % os.getpid()
    vm = NobodyQemu(shared, name, sock)
    try:
        os.chown(sock, 4242, 4242)
        r = subprocess.run([KVMWATCH, "-o", "json", "--no-kvmstat", "-p", name, "0.1", "3"], capture_output=True,
                           text=True, timeout=60)
        assert "%s belongs to uid 4242, not to the VM's user (uid 65534) or root: not used" % sock in r.stderr, \
            r.stderr
        rep = json.loads(r.stdout.splitlines()[-1])
        assert "disk.rd_reqs" not in [v for v in rep["vms"] if v["name"] == name][0]["metrics"]
    finally:
        vm.stop()


def test_vm_in_another_network_namespace_not_asked(shared):
    """sock_diag sees our namespace only: such a monitor cannot be verified"""
    d = nobody_dir(shared, "netns", 0o777)
    name = "kwtest-netns-%d" % os.getpid()
    script = os.path.join(shared, "fake_qmp.py")
    shutil.copy(FAKE_QMP, script)
    os.chmod(script, 0o644)
    sock = os.path.join(d, "n.sock")
    p = subprocess.Popen(["unshare", "-n", "--"] + NOBODY +
                         ["bash", "-c", 'exec -a qemu-system-x86_64 "$0" "$@"', sys.executable, script,
                          "--accepts", sock + ".accepts", "-name", "guest=" + name, "-qmp",
                          "unix:%s,server=on,wait=off" % sock], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, cwd=shared)
    try:
        assert p.stdout.readline().strip() == "ready"
        r = subprocess.run([KVMWATCH, "-o", "json", "--no-kvmstat", "-p", name, "0.1", "2"], capture_output=True,
                           text=True, timeout=60)
        lines = [l for l in r.stderr.splitlines() if name in l]
        assert len(lines) == 1 and "the VM is in another network namespace: who listens on %s cannot be " \
            "verified: not used" % sock in lines[0], r.stderr
        assert not os.path.exists(sock + ".accepts")
    finally:
        p.kill()
        p.wait()


@pytest.mark.parametrize("path,norm", [
    ("/run//libvirt/libvirt-sock", "/run/libvirt/libvirt-sock"),
    ("/run/./libvirt/qemu/x.monitor", "/run/libvirt/qemu/x.monitor"),
    ("//var/lib/libvirt//qemu/d.monitor", "/var/lib/libvirt/qemu/d.monitor"),
    ("/tmp/../run/libvirt/libvirt-sock", None),     # left to the canonical path of the opened file
    ("rel//a/./b.sock", "rel/a/b.sock"),
])
def test_paths_normalised_before_the_libvirt_filter(path, norm):
    r = subprocess.run([build_path("tests", "kwqmptest"), "normalize", path], capture_output=True, text=True,
                       timeout=30)
    assert (r.returncode, r.stdout.strip()) == ((0, norm) if norm else (1, "Invalid argument"))


def test_libvirt_path_in_disguise_left_alone(shared):
    name = "kwtest-lvpath-%d" % os.getpid()
    vm = NobodyQemu(shared, name, "/run//libvirt/qemu/kwtest.monitor", serve=False)
    try:
        r = subprocess.run([KVMWATCH, "-v", "-o", "json", "--no-kvmstat", "-p", name, "0.1", "2"],
                           capture_output=True, text=True, timeout=60)
        lines = [l for l in r.stderr.splitlines() if name in l]
        assert len(lines) == 1 and "managed by libvirt" in lines[0], r.stderr
    finally:
        vm.stop()


def test_hostile_monitor_capped_and_escaped(shared):
    """nobody's monitor answers 300 disks, 10,000 KVM stats and error text
    with a newline and terminal escapes; the VM's name carries them too."""
    d = nobody_dir(shared, "flood", 0o777)
    name = "kwtest-flood-%d\nkvmwatch: error: FORGED\x1b[2J" % os.getpid()
    vm = NobodyQemu(shared, name, os.path.join(d, "f.sock"), mode="flood")
    try:
        r = subprocess.run([KVMWATCH, "-v", "-o", "json", "--no-kvmstat", "-p", str(vm.pid), "0.2", "3"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        rep = json.loads(r.stdout.splitlines()[-1])
        v = [x for x in rep["vms"] if x["pid"] == vm.pid][0]
        assert v["name"] == name                       # JSON escapes it; the value is intact
        assert len(v["metrics"]["disk.rd_bytes"]) == 64
        assert len(v["metrics"]["kvm.vm"]) == 512
        # every line of the log is one of ours; no escape reaches the terminal
        assert all(l.startswith("kvmwatch: ") for l in r.stderr.splitlines()), r.stderr
        assert "\x1b" not in r.stderr and "\x07" not in r.stderr and "\u0085" not in r.stderr
        assert "the monitor returned more than 64 disks: the rest are ignored" in r.stderr
        assert "the monitor returned more than 512 KVM stat definitions: the rest are ignored" in r.stderr
        assert "no\\nkvmwatch: error: FORGED line \\x1b[2J\\x1b]0;title\\x07 \\xc2\\x85end" in r.stderr
        # the text report escapes the name too
        t = subprocess.run([KVMWATCH, "--no-kvmstat", "--no-qmp", "-p", str(vm.pid), "0.1", "1"],
                           capture_output=True, text=True, timeout=60)
        assert "\x1b" not in t.stdout
        assert not [l for l in t.stdout.splitlines() if l.startswith("kvmwatch: error")]
    finally:
        vm.stop()
