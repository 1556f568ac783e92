"""kvmwatch.plugin at the protocol level: fixture /proc trees driven cycle by
cycle (--step), every line checked against netdata 1.37's parser rules."""
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import needs_kvm, needs_root
from kwtest import Guest
from ndproto import FakeHost, Netdata137, StepPlugin, PLUGIN, split_words

TYPE_RE = re.compile(r"^kvm_[a-z0-9_-]+$")


def run_steps(host, n=2, **kw):
    nd = Netdata137()
    with StepPlugin(host, **kw) as p:
        for _ in range(n):
            nd.feed(p.step())
        rest, err = p.close()
    nd.feed([l for l in rest.splitlines()])
    return nd, err


def test_charts_dimensions_labels_from_table(tmp_path):
    h = FakeHost(tmp_path / "h")
    h.add_vm(4242, "web01", vcpus=2, uuid="6f1d1c2e-8a3b-4c5d-9e0f-112233445566", taps=["kwtap0"],
             cgroup="/machine/web01", psi_avg10=0.05)
    conf = tmp_path / "kvmwatch.conf"
    conf.write_text("[global]\nhost charts = yes\n")
    nd, err = run_steps(h, config=str(conf))
    assert "ERROR" not in err, err
    c = nd.charts
    cpu = c["kvm_web01.cpu"]
    assert (cpu["context"], cpu["family"], cpu["units"], cpu["type"], cpu["priority"]) == \
        ("kvm.vm_cpu", "cpu", "percentage", "stacked", 47000)
    assert cpu["dims"]["user"][3:6] == ["incremental", "1", "10000000"]
    assert cpu["labels"] == {"vm_name": "web01", "uuid": "6f1d1c2e-8a3b-4c5d-9e0f-112233445566",
                             "pid": "4242", "vmm": "qemu-system-x86",
                             "cgroup": "/machine/web01", "cgroup_name": "machine_web01"}
    # the chart variable alerts divide by
    assert cpu["variables"] == {"vcpus": 2} and c["kvm_web01.steal"]["variables"] == {"vcpus": 2}
    # vCPU dimensions from the "vcpu%s" pattern, one per vCPU thread
    assert sorted(c["kvm_web01.vcpu"]["dims"]) == ["vcpu0", "vcpu1"]
    assert nd.values[("kvm_web01.threads", "vcpus")] == 2
    # per-device chart: <chart id>_<device>, with a device label
    net = c["kvm_web01.net_kwtap0"]
    assert net["context"] == "kvm.vm_net" and net["labels"]["device"] == "kwtap0"
    assert net["dims"]["sent"][4] == "-8"
    # a tap's tx is the guest's rx
    assert nd.values[("kvm_web01.net_kwtap0", "received")] == 2000
    # fractional PSI gauge: 0.05 % sent as 5 with divisor 100
    assert c["kvm_web01.pressure"]["dims"]["cpu_some"][5] == "100"
    assert nd.values[("kvm_web01.pressure", "cpu_some")] == 5
    # host charts
    assert nd.values[("kvm_host.vms", "vms")] == 1
    assert nd.values[("kvm_host.vms", "vcpus")] == 2
    assert nd.values[("kvm_host.pressure", "cpu_some")] == 125
    assert c["kvm_host.cpu"]["context"] == "kvm.host_cpu"
    # second cycle: BEGIN carries the microseconds since the last update
    begins = [e for e in nd.events if e[0] == "begin" and e[1] == "kvm_web01.cpu"]
    assert begins[0][2] is None and int(begins[1][2]) > 0


def test_hostile_vm_names(tmp_path):
    h = FakeHost(tmp_path)
    names = {
        101: "my vm 'one' \"two\"",
        102: "line\nbreak",
        103: "a/b/../c",
        104: "x" * 300,
        105: b"bad\xff\xfeutf8-\xc3\xa9",
        106: "host",
        107: "Web_01",
        108: "web 01",
        109: "007",
        110: "",
    }
    for pid, n in names.items():
        h.add_vm(pid * 100, n, vcpus=1)
    nd, err = run_steps(h)
    types = nd.types()
    vm_types = [t for t in types if t != "kvm_host"]
    assert len(vm_types) == len(names), types
    for t in types:
        assert TYPE_RE.match(t), t
        assert len(t) <= 4 + 64 + 1 + 10, t
    # the host's type is reserved; two names that sanitise alike are told apart
    host_vm = [t for t in vm_types if nd.charts[t + ".cpu"]["labels"]["vm_name"] == "host"]
    assert host_vm == ["kvm_host_10600"]
    assert "kvm_web_01" in types and "kvm_web_01_10800" in types
    for cid, ch in nd.charts.items():
        for v in list(ch["labels"].values()) + [ch["title"]]:
            assert not set(v) & set("\"'\\\n\r`"), (cid, v)
            v.encode("utf-8")
    labels = {nd.charts[t + ".cpu"]["labels"]["vm_name"] for t in vm_types}
    assert "my vm _one_ _two_" in labels and "line_break" in labels and "a/b/../c" in labels
    assert "bad__utf8-\u00e9" in labels
    assert "kvm_" + "x" * 64 in types


def test_vm_vanishing_obsoletes_its_charts(tmp_path):
    h = FakeHost(tmp_path)
    h.add_vm(5000, "keep", vcpus=1, taps=["kwtapk"])
    h.add_vm(6000, "gone", vcpus=2, taps=["kwtapg"])
    nd = Netdata137()
    with StepPlugin(h) as p:
        nd.feed(p.step())
        gone = sorted(nd.charts_of("kvm_gone"))
        assert "kvm_gone.net_kwtapg" in gone and "kvm_gone.vcpu" in gone
        h.remove_vm(6000)
        out = p.step()
        nd.feed(out)
        obsoleted = sorted(split_words(l)[1] for l in out if l.startswith("CHART") and '"obsolete"' in l)
        assert obsoleted == gone
        assert not any(l.startswith('BEGIN "kvm_gone.') for l in out)
        assert any(l.startswith('BEGIN "kvm_keep.cpu"') for l in out)
        # the same VM name back with a new process: same type, charts revived
        h.add_vm(7000, "gone", vcpus=2)
        out = p.step()
        nd.feed(out)
        assert nd.charts["kvm_gone.cpu"]["obsolete"] is False
        assert nd.charts["kvm_gone.cpu"]["labels"]["pid"] == "7000"
        # a per-device chart whose device left (the tap) is obsoleted alone
        del h.taps["kwtapk"]
        h.write_netdev()
        out = p.step()
        nd.feed(out)
        assert nd.charts["kvm_keep.net_kwtapk"]["obsolete"] is True
        assert nd.charts["kvm_keep.cpu"]["obsolete"] is False
        _, err = p.close()
    assert "ERROR" not in err, err


def test_new_vcpu_redefines_chart_before_set(tmp_path):
    h = FakeHost(tmp_path)
    h.add_vm(8000, "grow", vcpus=1)
    nd = Netdata137()
    with StepPlugin(h) as p:
        nd.feed(p.step())
        assert sorted(nd.charts["kvm_grow.vcpu"]["dims"]) == ["vcpu0"]
        h.set_vcpus(8000, 3)
        out = p.step()
        nd.feed(out)  # raises if vcpu1/vcpu2 were SET before being defined
        chart = out.index(next(l for l in out if l.startswith('CHART "kvm_grow.vcpu"')))
        begin = out.index('BEGIN "kvm_grow.vcpu" ' + out[[i for i, l in enumerate(out)
                                                         if l.startswith('BEGIN "kvm_grow.vcpu"')][0]].split()[-1])
        assert chart < begin
        dims = [split_words(l)[1] for l in out[chart:begin] if l.startswith("DIMENSION")]
        assert dims == ["vcpu0", "vcpu1", "vcpu2"]
        assert nd.values[("kvm_grow.threads", "vcpus")] == 3
        # nothing new: no redefinition
        out = p.step()
        assert not any(l.startswith('CHART "kvm_grow.') for l in out)
        p.close()


def test_host_charts_auto_follows_netdatas_proc_plugin(tmp_path):
    """host charts = auto (the default): the kvm_host charts proc.plugin also
    draws (system.cpu, system.ram, disk.*, net.*, pressure) only when the
    netdata.conf in NETDATA_USER_CONFIG_DIR turns proc.plugin off;
    kvm_host.vms (VMs, vCPUs, host CPUs) always."""
    h = FakeHost(tmp_path / "h")
    h.add_vm(2100, "hc", vcpus=2, taps=["kwtaph"])
    h.w("proc/diskstats", "   8       0 sda 10 0 80 5 20 0 160 7 0 12 12 0 0 0 0\n")
    os.makedirs(os.path.join(h.sys, "block", "sda"))
    ndconf = tmp_path / "etc"
    ndconf.mkdir()
    duplicates = {"kvm_host.cpu", "kvm_host.mem", "kvm_host.pressure", "kvm_host.disk_ops_sda",
                  "kvm_host.disk_io_sda", "kvm_host.disk_time_sda", "kvm_host.net_kwtaph",
                  "kvm_host.net_packets_kwtaph"}

    def host_charts(conf_text=None, **kw):
        conf = tmp_path / "kvmwatch.conf"
        conf.write_text(conf_text or "")
        env = dict(os.environ, NETDATA_USER_CONFIG_DIR=str(ndconf))
        nd, err = run_steps(h, n=1, config=str(conf), env=env, extra=["-v"])
        assert nd.values[("kvm_host.vms", "vms")] == 1 and nd.values[("kvm_host.vms", "vcpus")] == 2
        return set(nd.charts_of("kvm_host")), err

    # no netdata.conf: proc.plugin runs (netdata's default)
    got, err = host_charts()
    assert got == {"kvm_host.vms"}, got
    assert "host charts = auto: kvm_host.vms only" in err and str(ndconf / "netdata.conf") in err
    for text in ("[plugins]\n\tproc = yes\n", "[plugins]\n\t# proc = no\n\tcgroups = no\n",
                 "[plugin:proc]\n\tproc = no\n[plugins]\n"):
        (ndconf / "netdata.conf").write_text(text)
        assert host_charts()[0] == {"kvm_host.vms"}, text
    (ndconf / "netdata.conf").write_text("[global]\n\thostname = x\n[plugins]\n\tPROC = No\n")
    got, err = host_charts()
    assert got == duplicates | {"kvm_host.vms"}, got
    assert "host charts = auto: all kvm_host charts (proc.plugin is off" in err
    # explicit values win over netdata.conf
    assert host_charts("[global]\nhost charts = no\n")[0] == {"kvm_host.vms"}
    (ndconf / "netdata.conf").write_text("[plugins]\nproc = yes\n")
    assert host_charts("[global]\nhost charts = yes\n")[0] == duplicates | {"kvm_host.vms"}
    assert host_charts("[global]\nhost charts = auto\n")[0] == {"kvm_host.vms"}
    got, err = host_charts("[global]\nhost charts = sometimes\n")
    assert "invalid 'host charts' value 'sometimes' (auto, yes or no)" in err and got == {"kvm_host.vms"}


def test_cgroup_labels_name_the_vm_as_cgroups_plugin_does(tmp_path):
    """CLABELs cgroup and cgroup_name: the VM's cgroup (libvirt's emulator/
    vcpuN/libvirt sub-cgroups removed) and the name netdata's cgroups.plugin
    gives it (its charts are cgroup_<cgroup_name>.*; netdata >= 1.39 also
    labels them cgroup_name=<it>), following cgroup-name.sh of 1.37."""
    h = FakeHost(tmp_path / "h")
    vms = {
        # libvirt with systemd-machined, cgroup v2: QEMU in .../libvirt/emulator
        3100: ("web-01", "/machine.slice/machine-qemu\\x2d3\\x2dweb\\x2d01.scope/libvirt/emulator",
               "/machine.slice/machine-qemu_x2d3_x2dweb_x2d01.scope", "qemu_web01"),
        # libvirt without systemd (cgroup v1 style partition), upper case folded
        3200: ("DB01", "/machine/qemu-7-DB01.libvirt-qemu/emulator",
               "/machine/qemu-7-DB01.libvirt-qemu", "qemu_qemu_7-db01"),
        # a vCPU thread's cgroup left alone as the process's is libvirt's
        3300: ("pinned", "/machine.slice/machine-qemu\\x2d12\\x2dpinned.scope/vcpu0",
               "/machine.slice/machine-qemu_x2d12_x2dpinned.scope", "qemu_pinned"),
        # anything else keeps its path as name, dots made dashes
        3400: ("plain", "/kvm/plain.vm", "/kvm/plain.vm", "kvm_plain-vm"),
    }
    for pid, (name, cg, _, _) in vms.items():
        h.add_vm(pid, name, vcpus=1, cgroup=cg)
    # Proxmox: qemu.slice/ID.scope, named after the VM (-id marks Proxmox)
    h.add_vm(3500, "pve-vm", vcpus=1, cgroup="/qemu.slice/101.scope")
    h.w("proc/3500/cmdline", b"/usr/bin/kvm\0-id\0" + b"101\0-name\0pve-vm,debug-threads=on\0", "wb")
    # cgroup v1 (the fixture's sys/fs/cgroup is no cgroup2): the cpuacct line wins
    h.add_vm(3600, "v1", vcpus=1)
    h.w("proc/3600/cgroup", "12:memory:/other\n4:cpu,cpuacct:/machine/qemu-9-v1.libvirt-qemu/vcpu1\n0::/\n")
    # libvirt without cpuacct (this lab's hybrid hosts): the next walked
    # hierarchy, blkio, has it
    h.add_vm(3650, "hybrid", vcpus=1)
    h.w("proc/3650/cgroup", "7:blkio:/machine/qemu-2-hybrid.libvirt-qemu\n4:memory:/machine/qemu-2-hybrid.libvirt-qemu\n"
        "2:cpuacct:/\n1:cpu:/machine/qemu-2-hybrid.libvirt-qemu/emulator\n0::/machine/qemu-2-hybrid.libvirt-qemu/emulator\n")
    # the root cgroup: no cgroup labels
    h.add_vm(3700, "rooted", vcpus=1)
    nd = Netdata137()
    with StepPlugin(h) as p:
        nd.feed(p.step())
        for pid, (name, _, path, cgname) in vms.items():
            labels = nd.charts["kvm_%s.cpu" % name.lower()]["labels"]
            assert (labels["cgroup"], labels["cgroup_name"]) == (path, cgname), (name, labels)
        labels = nd.charts["kvm_pve-vm.cpu"]["labels"]
        assert (labels["cgroup"], labels["cgroup_name"]) == ("/qemu.slice/101.scope", "qemu_pve-vm")
        labels = nd.charts["kvm_v1.cpu"]["labels"]
        assert (labels["cgroup"], labels["cgroup_name"]) == ("/machine/qemu-9-v1.libvirt-qemu", "qemu_qemu_9-v1")
        labels = nd.charts["kvm_hybrid.cpu"]["labels"]
        assert (labels["cgroup"], labels["cgroup_name"]) == ("/machine/qemu-2-hybrid.libvirt-qemu", "qemu_qemu_2-hybrid")
        assert "cgroup" not in nd.charts["kvm_rooted.cpu"]["labels"]
        # every per-device and per-VM chart of a VM carries them
        assert all(c["labels"].get("cgroup_name") == "qemu_web01" for c in nd.charts_of("kvm_web-01").values())
        # a VM moved into its cgroup after it was found: its charts are
        # defined again with the labels
        h.w("proc/3700/cgroup", "0::/machine.slice/machine-qemu\\x2d20\\x2drooted.scope\n")
        out = p.step()
        nd.feed(out)
        assert any(l.startswith('CHART "kvm_rooted.cpu"') for l in out)
        assert not any(l.startswith('CHART "kvm_web-01.cpu"') for l in out)
        assert nd.charts["kvm_rooted.cpu"]["labels"]["cgroup_name"] == "qemu_rooted"
        _, err = p.close()
    assert "ERROR" not in err, err


def test_vcpus_chart_variable_follows_the_vm(tmp_path):
    h = FakeHost(tmp_path)
    h.add_vm(2200, "var", vcpus=2)
    nd = Netdata137()
    with StepPlugin(h) as p:
        out = p.step()
        nd.feed(out)
        assert nd.charts["kvm_var.steal"]["variables"] == {"vcpus": 2}
        # sent inside BEGIN..END, once per chart while it does not change
        assert sum(1 for l in out if l.startswith("VARIABLE")) == len(nd.charts_of("kvm_var"))
        out = p.step()
        assert not any(l.startswith("VARIABLE") for l in out)
        h.set_vcpus(2200, 4)
        nd.feed(p.step())
        assert nd.charts["kvm_var.steal"]["variables"] == {"vcpus": 4}
        assert "variables" not in nd.charts["kvm_host.vms"]
        p.close()


def test_values_are_plain_integers(tmp_path):
    h = FakeHost(tmp_path)
    h.add_vm(9000, "zero", vcpus=1, utime=0, cgroup="/z", psi_avg10=0.0)
    # Netdata137 rejects any SET value that is not base 10 without leading zeros
    nd, _ = run_steps(h, n=3)
    assert nd.values[("kvm_zero.cpu", "user")] == 0
    assert nd.values[("kvm_zero.pressure", "cpu_some")] == 0
    assert nd.values[("kvm_zero.mem", "rss")] == 2048 * 1024


def test_disable_without_kvm(tmp_path):
    h = FakeHost(tmp_path, kvm_module=False)
    with StepPlugin(h) as p:
        out = p.step()
        rest, err = p.close()
    assert out == ["DISABLE"]
    assert p.proc.returncode == 1
    assert "no KVM on this host" in err and "module/kvm absent" in err
    # KVM module present (or /dev/kvm): no DISABLE, host charts published
    os.makedirs(os.path.join(h.sys, "module", "kvm"))
    nd, err = run_steps(h, n=1)
    assert ("disable", None, None) not in nd.events
    assert "kvm_host.vms" in nd.charts
    # /dev/kvm alone is enough too
    os.rmdir(os.path.join(h.sys, "module", "kvm"))
    devkvm = tmp_path / "kvm"
    devkvm.write_text("")
    nd, _ = run_steps(h, n=1, devkvm=str(devkvm))
    assert "kvm_host.vms" in nd.charts
    # but a VM process alone is also proof of KVM
    h.add_vm(3000, "lonely", vcpus=1)
    nd, _ = run_steps(h, n=1)
    assert "kvm_lonely.cpu" in nd.charts


def test_disable_when_procfs_missing(tmp_path):
    with StepPlugin(extra=["--procfs", str(tmp_path / "nope")]) as p:
        out = p.step()
        _, err = p.close()
    assert out == ["DISABLE"] and p.proc.returncode == 1
    assert "procfs root" in err


def test_config_filter_sources_and_bad_keys(tmp_path):
    h = FakeHost(tmp_path / "host")
    h.add_vm(1100, "web-a", vcpus=1)
    h.add_vm(1200, "web-test", vcpus=1)
    h.add_vm(1300, "db", vcpus=1)
    conf = tmp_path / "kvmwatch.conf"
    conf.write_text("[global]\n  update every = abc\n  host charts = no\n  colour = red\n"
                    "[sources]\n  procfs = yes\n  bpf = maybe\n  libvirt uri = test:///default\n"
                    "[bpf]\n  exits = yes\n  halt poll = yes\n  bogus = yes\n"
                    "[nonsense]\n  x = 1\n"
                    "this line has no equals sign\n"
                    "[filter]\n  vms = !*-test web-*\n")
    nd, err = run_steps(h, n=1, config=str(conf))
    # db: no match, web-test: excluded; host charts = no: only kvmwatch's own
    assert nd.types() == ["kvm_host", "kvm_web-a"]
    assert sorted(nd.charts_of("kvm_host")) == ["kvm_host.vms"]
    for msg in ("kvmwatch.conf:2: invalid 'update every' value 'abc'",
                "kvmwatch.conf:4: unknown key 'colour'",
                "kvmwatch.conf:7: invalid value 'maybe' for source 'bpf'",
                "kvmwatch.conf:12: unknown key 'bogus'",
                "kvmwatch.conf:13: unknown section [nonsense]",
                "kvmwatch.conf:15: expected 'key = value'"):
        assert msg in err, (msg, err)
    assert "x" not in [l for l in err.splitlines() if ":14:" in l]  # keys of an unknown section: one message
    # every source disabled: nothing can be collected
    conf.write_text("[sources]\nprocfs = no\nlibvirt = no\nkvmstat = no\nbpf = no\nqmp = no\n")
    with StepPlugin(h, config=str(conf)) as p:
        out = p.step()
        _, err = p.close()
    assert out == ["DISABLE"] and "every source is disabled" in err


def test_config_lookup_and_host_prefix(tmp_path):
    h = FakeHost(tmp_path / "host")
    h.add_vm(1400, "pref", vcpus=1)
    h.add_vm(1500, "other", vcpus=1)
    user, stock = tmp_path / "user", tmp_path / "stock"
    user.mkdir()
    stock.mkdir()
    (stock / "kvmwatch.conf").write_text("[filter]\nvms = other\n")
    env = dict(os.environ, NETDATA_HOST_PREFIX=h.root, NETDATA_USER_CONFIG_DIR=str(user),
               NETDATA_STOCK_CONFIG_DIR=str(stock))
    env.pop("NETDATA_UPDATE_EVERY", None)

    def types():
        p = subprocess.Popen([PLUGIN, "--step", "1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=env, text=True)
        out, err = p.communicate("\n", timeout=30)
        return Netdata137().feed([l for l in out.splitlines()]).types(), err

    # stock config used when the user has none; /proc and /sys under the prefix
    assert types()[0] == ["kvm_host", "kvm_other"]
    (user / "kvmwatch.conf").write_text("[filter]\nvms = pref\n")
    assert types()[0] == ["kvm_host", "kvm_pref"]


def test_exits_on_epipe(tmp_path):
    """netdata gone: the pipe closes, the plugin sees EPIPE and exits by itself
    (not killed by SIGPIPE)."""
    h = FakeHost(tmp_path)
    h.add_vm(1600, "pipe", vcpus=1)
    p = subprocess.Popen([PLUGIN, "--procfs", h.proc, "--sysfs", h.sys, "--config", "/dev/null", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert p.stdout.readline().startswith(b"CHART")
        p.stdout.close()
        p.wait(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, p.returncode
    assert b"netdata closed the pipe (EPIPE): exiting" in p.stderr.read()


def test_sigterm_exits_cleanly(tmp_path):
    h = FakeHost(tmp_path)
    p = subprocess.Popen([PLUGIN, "--procfs", h.proc, "--sysfs", h.sys, "--config", "/dev/null", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert p.stdout.readline().startswith(b"CHART")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 0


def test_sigterm_exits_within_a_second_while_a_write_is_blocked(tmp_path):
    """netdata stopped reading (a hung netdata): the plugin's write blocks on
    the full pipe.  SIGTERM still ends it within about a second (field
    test: 20-34 s, until EPIPE)."""
    import fcntl
    h = FakeHost(tmp_path)
    for i in range(20):
        h.add_vm(1700 + i, "blocked%02d" % i, vcpus=4)
    p = subprocess.Popen([PLUGIN, "--procfs", h.proc, "--sysfs", h.sys, "--config", "/dev/null", "--step", "1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        fl = fcntl.fcntl(p.stdin.fileno(), fcntl.F_GETFL)
        fcntl.fcntl(p.stdin.fileno(), fcntl.F_SETFL, fl | os.O_NONBLOCK)
        try:
            os.write(p.stdin.fileno(), b"\n" * 60000)   # cycles until its stdout is full
        except BlockingIOError:
            pass
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:            # blocked in write(2) on stdout
            with open("/proc/%d/syscall" % p.pid) as f:
                sc = f.read().split()
            if sc and sc[0] == "1" and int(sc[1], 16) == 1:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the plugin never blocked writing to its full pipe")
        time.sleep(0.3)
        t0 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert rc == 0 and took < 1.8, (rc, took)


def test_bad_arguments():
    r = subprocess.run([PLUGIN, "0"], capture_output=True, text=True)
    assert r.returncode == 1 and "invalid UPDATE_EVERY '0'" in r.stderr
    r = subprocess.run([PLUGIN, "--nope"], capture_output=True, text=True)
    assert r.returncode == 1


@needs_kvm
@needs_root
def test_real_guest_vcpus_and_cpu(tmp_path):
    with Guest(mode="demo", vcpus=3, extra=["--seconds", "120"]) as g:
        g.go()
        conf = tmp_path / "kvmwatch.conf"
        conf.write_text("[filter]\nvms = %s\n" % g.name)
        nd = Netdata137()
        with StepPlugin(config=str(conf)) as p:
            for _ in range(3):
                nd.feed(p.step())
                time.sleep(0.3)
            p.close()
        typ = "kvm_" + g.name.lower()
        assert nd.types() == ["kvm_host", typ]
        assert sorted(nd.charts[typ + ".vcpu"]["dims"]) == ["vcpu0", "vcpu1", "vcpu2"]
        assert nd.values[(typ + ".threads", "vcpus")] == 3
        assert nd.charts[typ + ".cpu"]["labels"]["uuid"] == g.uuid
        assert nd.charts[typ + ".cpu"]["labels"]["pid"] == str(g.pid)
        assert nd.values[(typ + ".cpu_split", "vcpu_threads")] > 0


def _make_install(tmp_path, *extra, dirs=True):
    from conftest import BUILD, ROOT
    rel = os.path.relpath(BUILD, ROOT)
    args = ["make", "-s", "-C", ROOT, "install-netdata", "O=" + rel, "DESTDIR=" + str(tmp_path)]
    if dirs:
        args += ["NETDATA_PLUGINS_DIR=/usr/lib/netdata/plugins.d", "NETDATA_STOCK_CONFIG_DIR=/usr/lib/netdata/conf.d"]
    if rel.endswith("san"):
        args.append("SAN=1")
    return subprocess.run(args + list(extra), capture_output=True, text=True, timeout=300)


@needs_root
def test_make_install_least_privilege(tmp_path):
    import grp
    import stat
    r = _make_install(tmp_path)
    assert r.returncode == 0, r.stderr
    plugin = tmp_path / "usr/lib/netdata/plugins.d/kvmwatch.plugin"
    st = plugin.stat()
    assert stat.S_IMODE(st.st_mode) == 0o750 and not st.st_mode & (stat.S_ISUID | stat.S_ISGID)
    assert st.st_uid == 0 and grp.getgrgid(st.st_gid).gr_name == "netdata"
    caps = subprocess.run(["getcap", str(plugin)], capture_output=True, text=True).stdout
    assert caps.split()[-1] == "cap_dac_read_search,cap_sys_ptrace,cap_perfmon,cap_bpf=ep", caps
    assert (tmp_path / "usr/lib/netdata/conf.d/kvmwatch.conf").exists()
    assert (tmp_path / "usr/lib/netdata/conf.d/health.d/kvmwatch.conf").exists()
    # the stock config parses without a single complaint
    with StepPlugin(FakeHost(tmp_path / "h"), config=str(tmp_path / "usr/lib/netdata/conf.d/kvmwatch.conf")) as p:
        p.step()
        _, err = p.close()
    assert "config" not in err, err


@needs_root
def test_make_install_without_setcap(tmp_path):
    r = _make_install(tmp_path, "SETCAP=/nonexistent/setcap")
    assert r.returncode == 0, r.stderr
    assert "setcap not found" in r.stderr
    plugin = tmp_path / "usr/lib/netdata/plugins.d/kvmwatch.plugin"
    assert subprocess.run(["getcap", str(plugin)], capture_output=True, text=True).stdout.strip() == ""


@needs_root
def test_make_install_netdata_flavours(tmp_path):
    """NETDATA_FLAVOUR=debian|netdata|static puts the plugin, kvmwatch.conf
    and the stock alerts where that netdata looks (Debian's packages;
    netdata's own packages and netdata-installer.sh; the static build in
    /opt/netdata); auto picks the one installed under NETDATA_DETECT_ROOT."""
    import grp
    import stat
    from conftest import ROOT
    layouts = {
        "debian": ("usr/lib/netdata/plugins.d", "usr/lib/netdata/conf.d"),
        "netdata": ("usr/libexec/netdata/plugins.d", "usr/lib/netdata/conf.d"),
        "static": ("opt/netdata/usr/libexec/netdata/plugins.d", "opt/netdata/usr/lib/netdata/conf.d"),
    }
    with open(os.path.join(ROOT, "netdata-plugin", "health.d", "kvmwatch.conf")) as f:
        alerts = f.read()

    def installed(dest):
        return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())

    for flavour, (plugins, stock) in layouts.items():
        dest = tmp_path / flavour
        r = _make_install(dest, "NETDATA_FLAVOUR=" + flavour, "PREFIX=/usr", dirs=False)
        assert r.returncode == 0, r.stderr
        assert "netdata flavour %s: /%s, /%s" % (flavour, plugins, stock) in r.stdout, r.stdout
        assert installed(dest) == sorted([plugins + "/kvmwatch.plugin", stock + "/kvmwatch.conf",
                                          stock + "/health.d/kvmwatch.conf",
                                          "usr/share/man/man8/kvmwatch.plugin.8"]), installed(dest)
        st = (dest / plugins / "kvmwatch.plugin").stat()
        assert stat.S_IMODE(st.st_mode) == 0o750 and grp.getgrgid(st.st_gid).gr_name == "netdata"
        assert (dest / stock / "health.d" / "kvmwatch.conf").read_text() == alerts
    # auto: the first of static, netdata, debian installed under NETDATA_DETECT_ROOT
    root = tmp_path / "root"
    root.mkdir()
    for make_dir, flavour in ((None, "debian"), ("usr/libexec/netdata/plugins.d", "netdata"),
                              ("opt/netdata/usr/libexec/netdata/plugins.d", "static")):
        if make_dir:
            (root / make_dir).mkdir(parents=True)
        dest = tmp_path / ("auto-" + flavour)
        r = _make_install(dest, "NETDATA_DETECT_ROOT=" + str(root), dirs=False)
        assert r.returncode == 0 and "netdata flavour " + flavour in r.stdout, (flavour, r.stdout, r.stderr)
        assert (dest / layouts[flavour][0] / "kvmwatch.plugin").exists()
    # one directory set explicitly wins over the flavour's
    dest = tmp_path / "override"
    r = _make_install(dest, "NETDATA_FLAVOUR=static", "NETDATA_PLUGINS_DIR=/srv/nd/plugins.d", dirs=False)
    assert r.returncode == 0, r.stderr
    assert (dest / "srv/nd/plugins.d/kvmwatch.plugin").exists()
    assert (dest / "opt/netdata/usr/lib/netdata/conf.d/health.d/kvmwatch.conf").exists()
    r = _make_install(tmp_path / "bad", "NETDATA_FLAVOUR=redhat", dirs=False)
    assert r.returncode != 0 and "NETDATA_FLAVOUR=redhat: expected auto, debian, netdata or static" in r.stderr


def test_update_every_from_config_never_below_netdata(tmp_path):
    h = FakeHost(tmp_path / "h")
    h.add_vm(1700, "slow", vcpus=1)
    conf = tmp_path / "kvmwatch.conf"
    conf.write_text("[global]\nupdate every = 5\n")

    def update_every(args):
        p = subprocess.run([PLUGIN, "--step", "--procfs", h.proc, "--sysfs", h.sys, "--config", str(conf)] + args,
                           input="\n", capture_output=True, text=True, timeout=30)
        nd = Netdata137().feed(p.stdout.splitlines())
        return {int(c["words"][9]) for c in nd.charts.values()}

    assert update_every(["1"]) == {5}
    assert update_every(["10"]) == {10}


def _table_charts():
    """(id, scope, priority) of every KW_CHART row of the metric table."""
    import re
    from conftest import ROOT
    rows = []
    for f in ("metrics.def", "metrics_libvirt.def", "metrics_kvmstat.def", "metrics_bpf.def", "metrics_qmp.def"):
        with open(os.path.join(ROOT, "common", "core", f)) as fh:
            rows += [(m.group(1), m.group(2), int(m.group(3))) for m in re.finditer(
                r'^KW_CHART\(\w+,\s*"([^"]+)",\s*(\w+),.*, (\d+)\)\s*$', fh.read(), re.M)]
    return rows


def test_chart_priorities_are_unique():
    """Every chart of the table has a priority of its own (1500-1503 were
    used by the libvirt domain/job charts and the eBPF exit charts)."""
    prios = [p for _, _, p in _table_charts()]
    assert len(prios) > 50 and len(prios) == len(set(prios))


def test_chart_priorities_in_kvmwatch_block_clear_of_netdata():
    """Host charts in 46000-46999, VM charts in 47000-48999: after every
    cgroup chart of netdata 1.37 (cgroups.plugin 40000-43011, ebpf.plugin's
    cgroup charts 45000-45803), clear of every NETDATA_CHART_PRIO_* value
    (kvm_host.cpu was 100, system.cpu's) and of every block netdata's own
    plugins fill."""
    from ndprio import KVMWATCH_HOST, KVMWATCH_VM, NETDATA_137_ALL_H, NETDATA_137_BLOCKS
    rows = _table_charts()
    assert len(NETDATA_137_ALL_H) == 226 and 100 in NETDATA_137_ALL_H  # system.cpu
    for cid, scope, prio in rows:
        lo, hi = KVMWATCH_HOST if scope.startswith("HOST") else KVMWATCH_VM
        assert lo <= prio <= hi, (cid, scope, prio)
        assert prio not in NETDATA_137_ALL_H, (cid, prio)
        for blo, bhi, who in NETDATA_137_BLOCKS:
            assert not blo <= prio <= bhi, (cid, prio, who)
    # the sections: kvm_host first, then the VMs; the VMs' own order kept
    host = {c: p for c, s, p in rows if s.startswith("HOST")}
    vm = {c: p for c, s, p in rows if s.startswith("VM")}
    assert host["vms"] == min(host.values()) and vm["cpu"] == min(vm.values())
    assert vm["cpu"] < vm["steal"] < vm["mem"] < vm["io"] < vm["net"] < vm["disk_ops"] < vm["kvm_vcpu"]
