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


INTERNAL_PLUGINS = ("proc", "diskspace", "cgroups", "tc", "idlejitter", "timex", "checks", "apps", "ebpf",
                    "python.d", "charts.d", "go.d", "node.d", "fping", "ioping", "perf", "slabinfo", "nfacct",
                    "cups", "freeipmi", "statsd", "netdata monitoring")


class Netdata:
    """netdata -D with a private config, running as user netdata: the plugin
    gets its privileges from file capabilities, as `make install` sets them.

    plugins: netdata's own plugins to run beside kvmwatch (all others off).
    installed: a DESTDIR of `make install-netdata` and the flavour's
    (plugins dir, stock config dir) in it: netdata runs the plugin and reads
    the stock configuration and alerts from there instead of a copy.
    health: run netdata's health engine (user alerts from conf/health.d)."""

    def __init__(self, base, conf_text, plugins=(), installed=None, health=False, extra=""):
        self.base = base
        self.port = free_port()
        d = {k: os.path.join(base, k) for k in ("conf", "stock", "plugins", "cache", "lib", "log", "lock")}
        for p in d.values():
            os.makedirs(p)
        os.makedirs(os.path.join(d["conf"], "health.d"))
        if installed:
            dest, plugins_dir, stock_dir = installed
            d["plugins"] = os.path.join(dest, plugins_dir)
            d["stock"] = os.path.join(dest, stock_dir)
            self.plugin = os.path.join(d["plugins"], "kvmwatch.plugin")
        else:
            self.plugin = os.path.join(d["plugins"], "kvmwatch.plugin")
            shutil.copy(PLUGIN, self.plugin)
            shutil.chown(self.plugin, "root", "netdata")
            os.chmod(self.plugin, 0o750)
            subprocess.run(["setcap", "cap_dac_read_search,cap_sys_ptrace+ep", self.plugin], check=True)
        for k in ("cache", "lib", "log", "lock"):
            shutil.chown(d[k], "netdata", "netdata")
        with open(os.path.join(d["conf"], "kvmwatch.conf"), "w") as f:
            f.write(conf_text)
        self.dirs = d
        self.errlog = os.path.join(d["log"], "error.log")
        self.pidfile = os.path.join(base, "netdata.pid")
        plugins_conf = "\n".join("\t%s = %s" % (p, "yes" if p in plugins else "no") for p in INTERNAL_PLUGINS)
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
	health config = {conf}/health.d
	stock health config = {stock}/health.d
[logs]
	error = {log}/error.log
	access = none
	debug = none
[web]
	bind to = 127.0.0.1:{port}
[plugins]
	enable running new plugins = no
	check for new plugins every = 3600
{plugins_conf}
	kvmwatch = yes
[health]
	enabled = {health}
	script to execute on alarm = /bin/true
	run at least every seconds = 2
[ml]
	enabled = no
[registry]
	enabled = no
[statsd]
	enabled = no
[cloud]
	conversation log = no
{extra}""".format(port=self.port, plugins_conf=plugins_conf, health="yes" if health else "no", extra=extra, **d))
        self.proc = None

    def start(self):
        env = dict(os.environ)
        self.proc = subprocess.Popen([NETDATA, "-D", "-c", self.conf, "-P", self.pidfile],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        wait_for(lambda: self.get("/api/v1/info") or self.proc.poll() is not None, timeout=60, interval=0.2,
                 what="netdata web API")
        if self.proc.poll() is not None:
            raise AssertionError("netdata exited (%s): %s %s" % (self.proc.returncode, self.proc.stderr.read()[-2000:],
                                                                 self.error_log()[-2000:]))
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

    def alarms(self):
        body = self.get("/api/v1/alarms?all")
        return json.loads(body)["alarms"] if body else {}

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
        for pid in plugin_pids(self.plugin):
            os.kill(pid, signal.SIGKILL)


def wait_charts(nd, want, timeout=60):
    """The charts once every id in want is there."""
    end = time.monotonic() + timeout
    while True:
        c = nd.charts()
        if all(w in c for w in want):
            return c
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for charts %s in netdata (it has %s): %s" % (
                sorted(want), sorted(c)[:80], nd.error_log()[-4000:]))
        time.sleep(0.5)


def vcpu_threads(pid):
    tids = []
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
            if re.match(r"CPU \d+/KVM", f.read()):
                tids.append(int(t))
    return tids


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
        # host charts = auto, and this netdata.conf turns proc.plugin off: all host charts
        assert "kvm_host.cpu" in charts and "kvm_host.mem" in charts

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


@needs_kvm
@needs_root
@needs_binary("netdata")
@needs_binary("setcap")
def test_beside_proc_plugin_priorities_and_host_charts():
    """With netdata's proc.plugin running (netdata's default): the kvm_host
    charts it duplicates are off (host charts = auto), kvm_host.vms stays;
    every kvmwatch chart has its priority in kvmwatch's block and none of
    netdata's own charts has one there."""
    from ndprio import KVMWATCH_HOST, KVMWATCH_VM
    base = tempfile.mkdtemp(prefix="kw-netdata-")
    os.chmod(base, 0o755)
    guest = Guest(mode="demo", vcpus=2, extra=["--seconds", "300"])
    nd = None
    try:
        guest.start()
        guest.go()
        typ = "kvm_" + guest.name.lower()
        nd = Netdata(base, "[filter]\n\tvms = %s\n" % guest.name, plugins=("proc",)).start()
        charts = wait_charts(nd, {"system.cpu", "system.ram", typ + ".cpu", typ + ".vcpu_steal", "kvm_host.vms"})
        time.sleep(2.5)  # every chart of a few more cycles
        charts = nd.charts()
        assert sorted(c for c in charts if c.startswith("kvm_host.")) == ["kvm_host.vms"], \
            sorted(c for c in charts if c.startswith("kvm_host."))
        ours = {c: v["priority"] for c, v in charts.items() if v["plugin"] == "kvmwatch.plugin"}
        theirs = {c: v["priority"] for c, v in charts.items() if v["plugin"] != "kvmwatch.plugin"}
        assert len(ours) > 8 and len(theirs) > 20, (ours, theirs)
        assert theirs["system.cpu"] == 100
        for c, prio in ours.items():
            lo, hi = KVMWATCH_HOST if c.startswith("kvm_host.") else KVMWATCH_VM
            assert lo <= prio <= hi, (c, prio)
        assert not [c for c, prio in theirs.items() if KVMWATCH_HOST[0] <= prio <= KVMWATCH_VM[1]]
        assert not set(ours.values()) & set(theirs.values())
        # within one VM every chart has its own priority
        vm = [p for c, p in ours.items() if c.startswith(typ + ".")]
        assert len(vm) == len(set(vm))
        # kvmwatch's sections come after netdata's system ones
        assert min(ours.values()) > max(p for c, p in theirs.items() if c.startswith("system."))
    finally:
        guest.kill()
        if nd:
            nd.stop()
        shutil.rmtree(base, ignore_errors=True)


def _quick_alerts(stock):
    """The stock alerts with minutes made seconds, for a test that cannot
    wait 10 minutes: same templates (named *_test), contexts, lookups,
    calculations and thresholds; windows 10 s, evaluated every 2 s, no
    notification delay."""
    text = re.sub(r"(?m)^(\s*template:\s*)(\S+)", r"\1\2_test", stock)
    text = text.replace("$kvm_vm_exits_5m_rate", "$kvm_vm_exits_5m_rate_test")
    text = re.sub(r"(lookup:\s*\w+\s+)-\d+[ms]\b", r"\1-10s", text)
    text = re.sub(r"(?m)^(\s*every:\s*)\S+", r"\g<1>2s", text)
    return re.sub(r"(?m)^\s*delay:.*\n", "", text)


@needs_kvm
@needs_root
@needs_binary("netdata")
@needs_binary("setcap")
def test_stock_alerts_load_and_steal_raises_them():
    """`make install-netdata NETDATA_FLAVOUR=netdata` into a DESTDIR; a
    netdata with health on runs the plugin and reads the stock alerts from
    that tree (/usr/libexec/netdata/plugins.d, /usr/lib/netdata/conf.d
    [/health.d]).  Every stock template is attached to the real guest's
    charts.  The guest's two busy vCPUs and a busy loop share one host CPU:
    each vCPU waits on the run queue about 2/3 of the time, and the same
    templates with 10-second windows go CRITICAL: VM steal (per vCPU:
    the $vcpus chart variable) and the per-vCPU run-queue delay."""
    import pathlib
    from test_netdata_plugin import _make_install
    tmp_path = pathlib.Path(tempfile.mkdtemp(prefix="kw-netdata-"))  # the netdata user reaches it
    dest = tmp_path / "root"
    r = _make_install(dest, "NETDATA_FLAVOUR=netdata", "PREFIX=/usr", dirs=False)
    assert r.returncode == 0, r.stderr
    plugins_dir, stock_dir = "usr/libexec/netdata/plugins.d", "usr/lib/netdata/conf.d"
    stock_alerts = dest / stock_dir / "health.d" / "kvmwatch.conf"
    base = str(tmp_path / "nd")
    os.makedirs(base)
    for p in (tmp_path, base):
        os.chmod(p, 0o755)
    guest = Guest(mode="demo", vcpus=2, extra=["--seconds", "300", "--count", "5000000"])
    nd = hog = None
    try:
        guest.start()
        guest.go()
        typ = "kvm_" + guest.name.lower()
        cpu = sorted(os.sched_getaffinity(0))[0]
        hog = subprocess.Popen(["sh", "-c", "while :; do :; done"])
        os.sched_setaffinity(hog.pid, {cpu})
        vcpus = vcpu_threads(guest.pid)
        assert len(vcpus) == 2
        for t in vcpus:
            os.sched_setaffinity(t, {cpu})
        nd = Netdata(base, "[filter]\n\tvms = %s\n" % guest.name, installed=(str(dest), plugins_dir, stock_dir),
                     health=True)
        with open(os.path.join(nd.dirs["conf"], "health.d", "kvmwatch-test.conf"), "w") as f:
            f.write(_quick_alerts(stock_alerts.read_text()))
        nd.start()
        charts = wait_charts(nd, {typ + ".steal", typ + ".vcpu_steal", typ + ".kvm_vcpu"})
        assert charts[typ + ".steal"]["plugin"] == "kvmwatch.plugin"

        # the stock file, as installed, is loaded and its templates attached
        want = {typ + ".steal.kvm_vm_steal", typ + ".vcpu_steal.kvm_vcpu_run_delay_vcpu0",
                typ + ".vcpu_steal.kvm_vcpu_run_delay_vcpu1", typ + ".kvm_vcpu.kvm_vm_exits_5m_rate",
                typ + ".kvm_vcpu.kvm_vm_exits_jump"}
        if typ + ".io_wait" in charts:
            want.add(typ + ".io_wait.kvm_vm_io_wait")
        if typ + ".pressure" in charts:
            want.add(typ + ".pressure.kvm_vm_io_pressure")
        alarms = wait_for(lambda: (lambda a: a if want <= set(a) else None)(nd.alarms()), timeout=60,
                          interval=0.5, what="the stock alarms on the guest's charts")
        for k in want:
            assert str(stock_alerts) in alarms[k]["source"], alarms[k]
            assert alarms[k]["chart"] == k.rsplit(".", 1)[0] and alarms[k]["type"] == "Virtual Machine", alarms[k]
        # ... and evaluated: the same templates with short windows raise
        steal = typ + ".steal.kvm_vm_steal_test"

        def raised():
            a = nd.alarms()
            return a if all(a.get(k, {}).get("status") in ("WARNING", "CRITICAL") for k in
                            (steal, typ + ".vcpu_steal.kvm_vcpu_run_delay_test_vcpu0",
                             typ + ".vcpu_steal.kvm_vcpu_run_delay_test_vcpu1")) else None

        alarms = wait_for(raised, timeout=90, interval=1, what="steal alarms to be raised: %s" % {
            k: (v["status"], v.get("value")) for k, v in nd.alarms().items() if "_test" in k})
        # per vCPU (the chart variable $vcpus = 2), not the sum over both (~133%)
        assert 30 <= alarms[steal]["value"] <= 100, alarms[steal]
        # the exit-rate jump evaluates too, against the other template's value
        # ($kvm_vm_exits_5m_rate_test): the same window, no jump
        jump = alarms[typ + ".kvm_vcpu.kvm_vm_exits_jump_test"]
        assert jump["status"] == "CLEAR" and 0 < jump["value"] <= 100.5, jump
        # the stock alarms are those templates: same lookups, calculations
        # and thresholds; only their windows are minutes, so netdata waits for
        # that much data before it evaluates them
        stock_after = {"kvm_vm_steal": -600, "kvm_vcpu_run_delay_vcpu0": -60, "kvm_vm_exits_5m_rate": -300,
                       "kvm_vm_exits_jump": -10}
        for k in want:
            a, t = alarms[k], alarms[k.replace(".kvm_vcpu_run_delay_", ".kvm_vcpu_run_delay_test_") if "delay" in k
                                     else k + "_test"]
            for f in ("lookup_method", "lookup_options", "lookup_dimensions", "calc", "warn", "crit", "units"):
                assert (a.get(f) or "") == (t.get(f) or "").replace("_test", ""), (k, f, a.get(f), t.get(f))
            if a["name"] in stock_after:
                assert a["lookup_after"] == stock_after[a["name"]], a
        log = nd.error_log()
        assert not [l for l in log.splitlines() if "kvmwatch" in l and "health" in l.lower() and
                    ("error" in l.lower() or "ignor" in l.lower() or "unknown" in l.lower())], log[-3000:]
    finally:
        if hog:
            hog.kill()
            hog.wait()
        guest.kill()
        if nd:
            nd.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)


CGROUP_NAME_SH = "/usr/lib/netdata/plugins.d/cgroup-name.sh"  # Debian: netdata-plugins-bash


@needs_kvm
@needs_root
@needs_binary("netdata")
@needs_binary("setcap")
@needs_binary("libvirtd")
@pytest.mark.skipif(not os.path.exists(CGROUP_NAME_SH), reason="needs netdata's cgroup-name.sh (netdata-plugins-bash)")
def test_labels_join_cgroups_plugin_charts_of_a_libvirt_domain():
    """A real libvirt domain, netdata running cgroups.plugin (with its own
    cgroup-name.sh) beside kvmwatch: kvmwatch's charts of the domain carry
    cgroup_name = the name cgroups.plugin charts that domain's cgroup under
    (cgroup_<cgroup_name>.cpu, ...) and cgroup = its path."""
    from lvtest import Libvirtd, domain_xml
    import uuid as uuidlib
    base = tempfile.mkdtemp(prefix="kw-netdata-")
    os.chmod(base, 0o755)
    lv = Libvirtd().start()
    nd = None
    try:
        name = "kwndcg-%d" % os.getpid()
        disk = os.path.join(lv.tmp, "disk.raw")
        with open(disk, "wb") as f:
            f.truncate(2 * 1024 * 1024)
        xml = os.path.join(lv.tmp, "dom.xml")
        with open(xml, "w") as f:
            f.write(domain_xml(name, str(uuidlib.uuid4()), disk, "kwndcg%d" % (os.getpid() % 10000), vcpus=2))
        lv.virsh("create", xml)
        pid = lv.qemu_pid(name)
        with open("/proc/%d/cgroup" % pid) as f:
            cgroups = f.read()
        typ = "kvm_" + name.lower()
        nd = Netdata(base, "[filter]\n\tvms = %s\n" % name, plugins=("cgroups",), extra="""[plugin:cgroups]
	check for new cgroups every = 1
	script to get cgroup names = {sh}
	script to get cgroup network interfaces = /bin/false
""".format(sh=CGROUP_NAME_SH)).start()
        charts = wait_charts(nd, {typ + ".cpu"})
        labels = charts[typ + ".cpu"]["chart_labels"]
        assert labels.get("cgroup_name"), (labels, cgroups)
        cg = labels["cgroup_name"]
        # the same name cgroups.plugin gave that cgroup
        charts = wait_charts(nd, {"cgroup_%s.cpu" % cg}, timeout=90)
        assert charts["cgroup_%s.cpu" % cg]["plugin"] == "cgroups.plugin"
        assert labels["cgroup"] in cgroups and labels["vm_name"] == name
        # every chart of the domain carries them (per-device ones too)
        mine = [c for c in charts.values() if c["id"].startswith(typ + ".")]
        assert len(mine) > 5 and all(c["chart_labels"].get("cgroup_name") == cg for c in mine)
    finally:
        if nd:
            nd.stop()
        lv.stop()
        shutil.rmtree(base, ignore_errors=True)
