"""kvmwatch.plugin inside a real netdata 1.37 (only this plugin enabled,
memory database, private directories and port) while a real KVM guest runs."""
import json
import re
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

from conftest import needs_binary, needs_kvm, needs_root
from kwtest import Guest, wait_for
from ndproto import PLUGIN

NETDATA = shutil.which("netdata") or "/usr/sbin/netdata"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def plugin_pids(path):
    """Live (non-zombie) processes running the plugin copy at path."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            if os.readlink("/proc/%s/exe" % d) != path:
                continue
            with open("/proc/%s/stat" % d) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state not in ("Z", "X"):
            pids.append(int(d))
    return pids


class Netdata:
    """netdata -D with a private config, running as user netdata: the plugin
    gets its privileges from file capabilities, as `make install` sets them."""

    def __init__(self, base, conf_text):
        self.base = base
        self.port = free_port()
        d = {k: os.path.join(base, k) for k in ("conf", "stock", "plugins", "cache", "lib", "log", "lock")}
        for p in d.values():
            os.makedirs(p)
        self.dirs = d
        self.plugin = os.path.join(d["plugins"], "kvmwatch.plugin")
        shutil.copy(PLUGIN, self.plugin)
        shutil.chown(self.plugin, "root", "netdata")
        os.chmod(self.plugin, 0o750)
        subprocess.run(["setcap", "cap_dac_read_search,cap_sys_ptrace+ep", self.plugin], check=True)
        for k in ("cache", "lib", "log", "lock"):
            shutil.chown(d[k], "netdata", "netdata")
        with open(os.path.join(d["conf"], "kvmwatch.conf"), "w") as f:
            f.write(conf_text)
        self.errlog = os.path.join(d["log"], "error.log")
        self.pidfile = os.path.join(base, "netdata.pid")
        plugins = "\n".join("\t%s = no" % p for p in (
            "proc", "diskspace", "cgroups", "tc", "idlejitter", "timex", "checks", "apps", "ebpf",
            "python.d", "charts.d", "go.d", "node.d", "fping", "ioping", "perf", "slabinfo", "nfacct",
            "cups", "freeipmi", "statsd", "netdata monitoring"))
        self.conf = os.path.join(d["conf"], "netdata.conf")
        with open(self.conf, "w") as f:
            f.write("""[global]
	run as user = netdata
	hostname = kwtest
[db]
	mode = ram
	update every = 1
[directories]
	config = {conf}
	stock config = {stock}
	plugins = {plugins}
	cache = {cache}
	lib = {lib}
	log = {log}
	lock = {lock}
	home = {lib}
	web = /usr/share/netdata/web
[logs]
	error = {log}/error.log
	access = none
	debug = none
[web]
	bind to = 127.0.0.1:{port}
[plugins]
	enable running new plugins = no
	check for new plugins every = 3600
{plugins_off}
	kvmwatch = yes
[health]
	enabled = no
[ml]
	enabled = no
[registry]
	enabled = no
[statsd]
	enabled = no
[cloud]
	conversation log = no
""".format(port=self.port, plugins_off=plugins, **d))
        self.proc = None

    def start(self):
        env = dict(os.environ)
        self.proc = subprocess.Popen([NETDATA, "-D", "-c", self.conf, "-P", self.pidfile],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        wait_for(lambda: self.get("/api/v1/info"), timeout=60, interval=0.2, what="netdata web API")
        return self

    def get(self, path):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path), timeout=5) as r:
                return r.read().decode("utf-8", "replace")
        except OSError:
            return None

    def charts(self):
        body = self.get("/api/v1/charts")
        return json.loads(body)["charts"] if body else {}

    def error_log(self):
        try:
            with open(self.errlog, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@needs_kvm
@needs_root
@needs_binary("netdata")
@needs_binary("setcap")
def test_plugin_in_real_netdata():
    base = tempfile.mkdtemp(prefix="kw-netdata-")
    os.chmod(base, 0o755)
    guest = Guest(mode="demo", vcpus=2, extra=["--seconds", "300"])
    nd = None
    try:
        guest.start()
        guest.go()
        typ = "kvm_" + guest.name.lower()
        # only our guest: other engineers' VMs may run on this machine
        nd = Netdata(base, "[filter]\n\tvms = %s\n" % guest.name).start()

        charts = wait_for(lambda: (lambda c: c if typ + ".vcpu" in c and "kvm_host.vms" in c else None)(nd.charts()),
                          timeout=60, interval=0.5, what="the guest's charts in netdata: " + nd.error_log()[-3000:])
        vcpu = charts[typ + ".vcpu"]
        assert sorted(vcpu["dimensions"]) == ["vcpu0", "vcpu1"]
        assert vcpu["context"] == "kvm.vm_vcpu" and vcpu["family"] == "cpu"
        cpu = charts[typ + ".cpu"]
        assert cpu["context"] == "kvm.vm_cpu" and cpu["units"] == "percentage"
        assert cpu["plugin"] == "kvmwatch.plugin" and cpu["module"] == "vm"
        assert [c for c in charts if c.startswith("kvm_")] and all(
            c.startswith((typ + ".", "kvm_host.")) for c in charts if c.startswith("kvm_"))

        # values: vCPU count and CPU time of a spinning demo guest
        def metrics():
            body = nd.get("/api/v1/allmetrics?format=shell") or ""
            return {m.group(1): int(m.group(2)) for m in re.finditer(r'^(NETDATA_\w+)="(-?\d+)"', body, re.M)}

        prefix = "NETDATA_" + typ.upper().replace("-", "_")
        m = wait_for(lambda: (lambda v: v if v.get(prefix + "_CPU_SPLIT_VCPU_THREADS", 0) > 0
                              else None)(metrics()), timeout=30, interval=0.5, what="vCPU CPU time > 0")
        assert m[prefix + "_THREADS_VCPUS"] == 2

        def stored_vcpus():
            body = nd.get("/api/v1/data?chart=%s.threads&dimensions=vcpus&after=-30&format=json" % typ)
            return [row[1] for row in json.loads(body)["data"] if row[1] is not None] if body else None

        vals = wait_for(stored_vcpus, timeout=30, interval=0.5, what="stored vcpus values")
        assert set(vals) == {2}, vals
        # CLABELs arrived
        labels = nd.charts()[typ + ".cpu"]["chart_labels"]
        assert (labels["vm_name"], labels["uuid"], labels["pid"]) == (guest.name, guest.uuid, str(guest.pid))

        # least privilege: the plugin runs as user netdata with only the file
        # capabilities it was given (and still found the root-owned guest
        # through its KVM file descriptor)
        pids = plugin_pids(nd.plugin)
        assert len(pids) == 1, pids
        with open("/proc/%d/status" % pids[0]) as f:
            status = dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)
        assert int(status["Uid"].split()[0]) == pwd.getpwnam("netdata").pw_uid
        cap_eff = int(status["CapEff"], 16)
        assert cap_eff == (1 << 2) | (1 << 19), hex(cap_eff)  # CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE

        # the VM exits: its charts are obsoleted (netdata hides obsolete charts)
        guest.kill()
        wait_for(lambda: not any(c.startswith(typ + ".") for c in nd.charts()), timeout=30, interval=0.5,
                 what="the guest's charts to be obsoleted")
        assert "kvm_host.vms" in nd.charts()

        log = nd.error_log()
        for line in log.splitlines():
            if "kvmwatch" in line:
                assert "Disabling" not in line and "disconnected" not in line, line

        # netdata dies: the plugin notices (EPIPE) and exits
        assert plugin_pids(nd.plugin) == pids
        nd.stop()
        wait_for(lambda: not plugin_pids(nd.plugin), timeout=30, interval=0.2, what="the plugin to exit")
    finally:
        guest.kill()
        if nd:
            nd.stop()
            for pid in plugin_pids(nd.plugin):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(base, ignore_errors=True)
