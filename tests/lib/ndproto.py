"""Helpers for kvmwatch.plugin tests: a fake /proc + /sys tree with QEMU-like
VMs, a runner for the plugin's --step mode, and a checker that applies the
rules netdata 1.37's plugins.d parser enforces."""
import os
import re
import shutil
import subprocess

from conftest import build_path

PLUGIN = build_path("kvmwatch.plugin")

CLK_TCK = os.sysconf("SC_CLK_TCK")


class FakeHost:
    """A procfs/sysfs fixture tree.  add_vm() writes a QEMU process (stat,
    cmdline, status, io, cgroup, vCPU threads with schedstat, taps in the
    command line); remove_vm() deletes it, as if it exited."""

    def __init__(self, root, kvm_module=True):
        self.root = str(root)
        self.proc = os.path.join(self.root, "proc")
        self.sys = os.path.join(self.root, "sys")
        os.makedirs(os.path.join(self.proc, "net"), exist_ok=True)
        os.makedirs(os.path.join(self.proc, "pressure"), exist_ok=True)
        os.makedirs(os.path.join(self.sys, "block"), exist_ok=True)
        if kvm_module:
            os.makedirs(os.path.join(self.sys, "module", "kvm"), exist_ok=True)
        self.w("proc/stat", "cpu  100 0 50 1000 5 0 1 0 20 0\ncpu0 100 0 50 1000 5 0 1 0 20 0\n"
               "intr 0\nctxt 0\nbtime 0\n")
        self.w("proc/meminfo", "MemTotal: 1000 kB\nMemFree: 500 kB\nMemAvailable: 700 kB\n"
               "Buffers: 10 kB\nCached: 100 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n")
        self.w("proc/uptime", "100000.00 1000.00\n")
        self.w("proc/diskstats", "")
        self.w("proc/pressure/cpu", "some avg10=1.25 avg60=0.00 avg300=0.00 total=1000\n")
        self.taps = {}
        self.write_netdev()
        self.vms = {}

    def w(self, rel, data, mode="w"):
        p = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, mode) as f:
            f.write(data)

    def write_netdev(self):
        lines = ["Inter-|   Receive                                                |  Transmit",
                 " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed"]
        lines.append("    lo: 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0")
        for name, v in sorted(self.taps.items()):
            lines.append("%6s: %d %d 0 0 0 0 0 0 %d %d 0 0 0 0 0 0" % (name, v, v // 100, v * 2, v // 50))
        self.w("proc/net/dev", "\n".join(lines) + "\n")

    def add_vm(self, pid, name, vcpus=2, uuid=None, taps=(), utime=100, cgroup=None, psi_avg10=None):
        """name may be str or bytes (non-UTF-8)."""
        if isinstance(name, str):
            name = name.encode()
        d = "proc/%d" % pid
        argv = [b"/usr/bin/qemu-system-x86_64", b"-name", b"guest=" + name + b",debug-threads=on"]
        if uuid:
            argv += [b"-uuid", uuid.encode()]
        for t in taps:
            argv += [b"-netdev", b"tap,id=n0,ifname=" + t.encode()]
            self.taps[t] = 1000
        self.w(d + "/cmdline", b"\0".join(argv) + b"\0", "wb")
        self.vms[pid] = dict(vcpus=vcpus, utime=utime, cgroup=cgroup)
        self.write_vm(pid)
        self.w(d + "/status", "Name:\tqemu-system-x86\nVmRSS:\t2048 kB\nVmSwap:\t0 kB\n")
        self.w(d + "/io", "rchar: 10\nwchar: 20\nsyscr: 1\nsyscw: 2\nread_bytes: 4096\n"
               "write_bytes: 8192\ncancelled_write_bytes: 0\n")
        self.w(d + "/cgroup", "0::%s\n" % (cgroup or "/"))
        os.makedirs(os.path.join(self.proc, str(pid), "fd"), exist_ok=True)
        if cgroup and psi_avg10 is not None:
            for res in ("cpu", "memory", "io"):
                self.w("sys/fs/cgroup%s/%s.pressure" % (cgroup, res),
                       "some avg10=%.2f avg60=0.00 avg300=0.00 total=5000\n"
                       "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n" % psi_avg10)
        self.write_netdev()

    def write_vm(self, pid):
        vm = self.vms[pid]
        d = "proc/%d" % pid
        nthreads = vm["vcpus"] + 1
        f = [0] * 53
        f[3] = "S"
        f[10], f[12] = 50, 1
        f[14], f[15] = vm["utime"], vm["utime"] // 2
        f[20] = nthreads
        f[22] = 5000
        f[23], f[24] = 100 << 20, 512
        f[43] = vm["utime"] // 2
        self.w(d + "/stat", "%d (qemu-system-x86) " % pid + " ".join(str(x) for x in f[3:]) + "\n")
        tdir = os.path.join(self.proc, str(pid), "task")
        shutil.rmtree(tdir, ignore_errors=True)
        threads = [(pid, "qemu-system-x86")] + [(pid + 1 + i, "CPU %d/KVM" % i) for i in range(vm["vcpus"])]
        for tid, comm in threads:
            self.w("%s/task/%d/comm" % (d, tid), comm + "\n")
            self.w("%s/task/%d/schedstat" % (d, tid), "%d %d %d\n" % (vm["utime"] * 1000000, 1000, 10))

    def set_vcpus(self, pid, n):
        self.vms[pid]["vcpus"] = n
        self.write_vm(pid)

    def tick(self, pid, add=100):
        self.vms[pid]["utime"] += add
        self.write_vm(pid)

    def remove_vm(self, pid):
        shutil.rmtree(os.path.join(self.proc, str(pid)))
        del self.vms[pid]


class StepPlugin:
    """kvmwatch.plugin --step over a FakeHost: step() runs one cycle and
    returns its protocol lines."""

    def __init__(self, host=None, config=None, extra=(), env=None, devkvm=None):
        args = [PLUGIN, "--step"]
        if host is not None:
            args += ["--procfs", host.proc, "--sysfs", host.sys]
            args += ["--dev-kvm", devkvm or os.path.join(host.root, "dev", "kvm")]
        args += ["--config", config or "/dev/null"]
        args += list(extra) + ["1"]
        self.args = args
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env)
        self.lines = []

    def step(self):
        try:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass  # exited before reading (DISABLE at start)
        out = []
        while True:
            line = self.proc.stdout.readline()
            if not line:
                break  # exited (DISABLE)
            line = line.decode("utf-8", "surrogateescape").rstrip("\n")
            if line.startswith("# kvmwatch.plugin cycle"):
                break
            out.append(line)
        self.lines += out
        return out

    def close(self, timeout=30):
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        rest = self.proc.stdout.read().decode("utf-8", "surrogateescape")
        err = self.proc.stderr.read().decode("utf-8", "replace")
        self.proc.wait(timeout=timeout)
        return rest, err

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def split_words(line):
    """A port of netdata 1.37's quoted_strings_splitter with the pluginsd
    separators (white space and '='): a quote opens only at the start of a
    word, a backslash skips the next character."""
    s = list(line) + ["\0"]
    sep = " \t\r\n\f\v="
    starts, i, quote = [], 0, None
    while s[i] in sep and s[i] != "\0":
        i += 1
    if s[i] in "'\"":
        quote = s[i]
        i += 1
    starts.append(i)
    while s[i] != "\0":
        if s[i] == "\\" and s[i + 1] != "\0":
            i += 2
        elif quote and s[i] == quote:
            quote = None
            s[i] = " "
        elif not quote and s[i] in sep:
            s[i] = "\0"
            i += 1
            while s[i] != "\0" and s[i] in sep:
                i += 1
            if s[i] in "'\"":
                quote = s[i]
                i += 1
            if s[i] == "\0":
                break
            starts.append(i)
        else:
            i += 1
    words = []
    for st in starts:
        e = st
        while s[e] != "\0":
            e += 1
        words.append("".join(s[st:e]))
    return words


INT_RE = re.compile(r"^-?(0|[1-9][0-9]*)$")


class Netdata137:
    """Feeds protocol lines through the rules of netdata 1.37's parser and
    keeps the resulting charts.  Raises AssertionError where netdata would
    disable the plugin or crash."""

    def __init__(self):
        self.charts = {}     # id -> dict(words, dims{id: words}, labels{}, obsolete)
        self.values = {}     # (chart, dim) -> last int value
        self.cur = None      # chart of the last CHART (for DIMENSION/CLABEL)
        self.begun = None
        self.events = []     # (kind, chart, extra)

    def feed(self, lines):
        for line in lines:
            assert "\n" not in line and "\r" not in line, line
            w = split_words(line)
            if not w or not w[0]:
                continue
            kw = w[0]
            if kw == "CHART":
                assert len(w) >= 10, line
                cid = w[1]
                assert "." in cid and len(cid) <= 200, line
                typ, _, ident = cid.partition(".")
                assert typ and ident, line
                opts = w[10] if len(w) > 10 else ""
                ch = self.charts.setdefault(cid, dict(dims={}, labels={}, obsolete=False))
                ch.update(words=w, title=w[3], units=w[4], family=w[5], context=w[6],
                          type=w[7], priority=int(w[8]), obsolete="obsolete" in opts)
                self.events.append(("obsolete" if ch["obsolete"] else "chart", cid, None))
                self.cur = cid
                self.pending_labels = {}
            elif kw == "DIMENSION":
                assert self.cur, "DIMENSION without CHART: " + line
                assert len(w) >= 6, line
                int(w[4], 0), int(w[5], 0)
                self.charts[self.cur]["dims"][w[1]] = w
                self.events.append(("dim", self.cur, w[1]))
            elif kw == "CLABEL":
                assert self.cur, "CLABEL without CHART: " + line
                assert len(w) == 4, "CLABEL needs exactly 3 arguments: %r -> %r" % (line, w)
                int(w[3])
                self.pending_labels[w[1]] = w[2]
            elif kw == "CLABEL_COMMIT":
                assert self.cur, line
                assert self.pending_labels, "CLABEL_COMMIT without CLABEL (netdata 1.37 disables the plugin)"
                self.charts[self.cur]["labels"] = dict(self.pending_labels)
            elif kw == "BEGIN":
                assert self.begun is None, "BEGIN inside BEGIN: " + line
                assert w[1] in self.charts, "BEGIN on unknown chart (netdata disables the plugin): " + line
                if len(w) > 2:
                    assert INT_RE.match(w[2]), line
                self.begun = w[1]
                self.cur = None
                self.events.append(("begin", w[1], w[2] if len(w) > 2 else None))
            elif kw == "SET":
                assert self.begun, "SET without BEGIN: " + line
                assert len(w) == 3, line
                assert w[1] in self.charts[self.begun]["dims"], \
                    "SET on unknown dimension (netdata disables the plugin): %s in %s" % (line, self.begun)
                assert INT_RE.match(w[2]), "SET value must be a base-10 integer without leading zeros: " + line
                self.values[(self.begun, w[1])] = int(w[2])
            elif kw == "VARIABLE":
                # pluginsd_variable(): [GLOBAL|HOST|LOCAL|CHART] name = value;
                # a chart variable needs a chart (after CHART or in BEGIN..END)
                chart = self.begun or self.cur
                scope = "CHART" if chart else "HOST"
                rest = w[1:]
                if rest and rest[0] in ("GLOBAL", "HOST", "LOCAL", "CHART"):
                    scope = "HOST" if rest[0] in ("GLOBAL", "HOST") else "CHART"
                    rest = rest[1:]
                assert rest and rest[0], "VARIABLE without a name (netdata disables the plugin): " + line
                assert scope == "HOST" or chart, "CHART VARIABLE without a chart (netdata disables the plugin): " + line
                assert len(rest) == 2, "VARIABLE needs exactly a name and a value: " + line
                float(rest[1])
                if scope == "CHART":
                    self.charts[chart].setdefault("variables", {})[rest[0]] = float(rest[1])
                self.events.append(("variable", chart, rest[0]))
            elif kw == "END":
                assert self.begun, line
                self.begun = None
            elif kw == "DISABLE":
                self.events.append(("disable", None, None))
            elif kw.startswith("#"):
                pass
            else:
                raise AssertionError("unknown keyword: " + line)
        return self

    def types(self):
        return sorted({c.partition(".")[0] for c in self.charts})

    def charts_of(self, typ):
        return {c: v for c, v in self.charts.items() if c.partition(".")[0] == typ}
