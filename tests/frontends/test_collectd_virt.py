"""Compat "virt": kvmwatch.so in a real collectd 5.12 beside collectd's own
virt plugin (/usr/lib/collectd/virt.so) in a second collectd, both reading
the same libvirt domains with the same <Plugin> block -- libvirt's
test:///default (no daemon) and a real libvirtd running a QEMU/KVM domain.
Identifier sets must be equal; values exact where both read the same
counter of an idle device, within a tolerance for moving ones."""
import glob
import os
import re
import time

import pytest

from conftest import needs_binary, needs_kvm, needs_root
from kwtest import wait_for
from test_collectd import HOST, Collectd, errors_in

pytestmark = [needs_binary("collectd"), needs_binary("collectdctl"),
              pytest.mark.skipif(not os.path.exists("/usr/lib/collectd/virt.so"),
                                 reason="collectd's virt plugin (collectd-core) is not installed")]

ALL_EXTRA = ("cpu_util disk pcpu domain_state vcpu vcpupin memory disk_err perf "
             "disk_allocation disk_capacity disk_physical job_stats_background")


def virt_idents(cd):
    return sorted(i for i in cd.listval() if i.split("/")[1].split("-")[0] == "virt")


def pair(block, kw_extra='CollectProcfs false\nCollectKVMStats false\nCollectBPF false\nCollectQMP false\n'):
    """collectd + virt and collectd + kvmwatch (Compat virt), same block."""
    virt = Collectd(block, plugin="virt", plugin_dir="/usr/lib/collectd")
    kw = Collectd(block + '\nCompat "virt"\n' + kw_extra)
    return virt, kw


def settle(virt, kw, want=None, timeout=60):
    """Wait until both publish the same virt identifiers (and want, if given)."""
    state = {}

    def same():
        a, b = virt_idents(virt), virt_idents(kw)
        state["a"], state["b"] = a, b
        return a and a == b and (want is None or want(a))
    try:
        wait_for(same, timeout=timeout, interval=0.5, what="the same identifiers from virt and kvmwatch")
    except AssertionError:
        a, b = set(state.get("a", [])), set(state.get("b", []))
        raise AssertionError("only virt: %s\nonly kvmwatch: %s\nkvmwatch log:\n%s" %
                             (sorted(a - b), sorted(b - a), kw.logtext()[-3000:]))
    return state["a"]


def kw_errors(cd):
    return [l for l in errors_in(cd.logtext()) if "kvmwatch" in l]


# ------------------------------------------------------------ test:///default

BLOCKS = {
    "defaults": 'Connection "test:///default"',
    "every_extra": 'Connection "test:///default"\nExtraStats "%s"' % ALL_EXTRA,
    "formats": 'Connection "test:///default"\nHostnameFormat "hostname" "name" "uuid"\n'
               'PluginInstanceFormat "uuid" "name"\nInterfaceFormat "address"\nExtraStats "vcpu pcpu"',
    "number": 'Connection "test:///default"\nInterfaceFormat "number"\nExtraStats "cpu_util"',
    "ignore_devices": 'Connection "test:///default"\nBlockDevice "test:vda"\nInterfaceDevice "test:testnet0"\n'
                      'IgnoreSelected true\nExtraStats "disk_err"',
    "select_other": 'Connection "test:///default"\nDomain "nosuch"',
    "no_devices": 'Connection "test:///default"\nReportBlockDevices false\nReportNetworkInterfaces false\n'
                  'ExtraStats "disk_err domain_state"',
}


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_same_identifiers_as_virt_on_the_test_driver(name):
    virt, kw = pair(BLOCKS[name])
    with virt, kw:
        virt.start()
        kw.start()
        if name == "select_other":
            time.sleep(3)  # both publish nothing of the domain "test"
            assert virt_idents(virt) == [] and virt_idents(kw) == []
            return
        idents = settle(virt, kw)
        hosts = {i.split("/")[0] for i in idents}
        if name == "formats":
            uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f"
            assert hosts == {"%s:test:%s" % (HOST, uuid)}
            assert {i.split("/")[1] for i in idents} == {"virt-%s:test" % uuid}
            assert any(re.search(r"/if_octets-([0-9a-f]{2}:){5}[0-9a-f]{2}$", i) for i in idents)
        else:
            assert hosts == {"test"}
        if name == "number":
            assert "test/virt/if_octets-interface-1" in idents
            wait_for(lambda: kw.getval("test/virt/percent-virt_cpu_total"), timeout=10, what="cpu_util")
        if name == "every_extra":
            # values libvirt's test driver keeps fixed: exactly virt's
            for ident in idents:
                t = ident.split("/")[2]
                if t.startswith(("memory-", "cpu_affinity-", "domain_state", "disk_error")):
                    assert kw.getval(ident) == virt.getval(ident), ident
            assert kw.getval("test/virt/domain_state") == {"state": 1.0, "reason": 0.0}
            for ident in ("test/virt/percent-virt_cpu_total", "test/virt/virt_vcpu-0"):
                wait_for(lambda: virt.getval(ident) and kw.getval(ident), timeout=10, what=ident)
                a, b = virt.getval(ident)["value"], kw.getval(ident)["value"]
                assert a == pytest.approx(b, rel=0.05), ident
        if name == "ignore_devices":
            # (virt reports disk errors per domain, whatever BlockDevice says)
            assert not any(("-vda" in i and "disk_error" not in i) or "testnet0" in i for i in idents)
            assert "test/virt/disk_error-vda" in idents
        if name == "no_devices":
            assert not any(t in i for i in idents for t in ("disk_ops", "disk_octets", "if_"))
            assert "test/virt/disk_error-vda" in idents  # ExtraStats disk_err is per domain
        assert kw_errors(kw) == []
        # kvmwatch's own metrics beside them, under their own plugin name
        assert {i.split("/")[1].split("-")[0] for i in kw.listval()} <= {"virt", "kvmwatch"}


def test_pasted_virt_block_needs_compat_and_says_so():
    block = """Connection "test:///default"
RefreshInterval 60
Domain "test"
BlockDevice "test:vda"
BlockDeviceFormat "target"
BlockDeviceFormatBasename false
InterfaceDevice "test:testnet0"
IgnoreSelected false
HostnameMetadataNS "http://openstack.org/xmlns/libvirt/nova/1.0"
HostnameMetadataXPath "/instance/name/text()"
HostnameFormat "name"
PluginInstanceFormat "none"
InterfaceFormat "name"
Instances 1
ExtraStats "%s fs_info"
PersistentNotification false
ReportBlockDevices true
ReportNetworkInterfaces true""" % ALL_EXTRA
    with Collectd(block) as kw:  # no Compat line: refused, with the way out named
        kw.start(wait_sock=False)
        wait_for(lambda: "not starting" in kw.logtext() or kw.proc.poll() is not None, timeout=20,
                 what="the refusal")
        assert re.search(r'RefreshInterval is an option of collectd.s virt plugin: add Compat "virt"',
                         kw.logtext()), kw.logtext()
    with Collectd(block + '\nCompat "virt"\n') as kw:
        kw.start()
        wait_for(lambda: "test/virt/memory-total" in kw.listval(), timeout=20, what="virt identifiers")
        log = kw.logtext()
        assert "fs_info is not collected: it needs a read-write libvirt connection" in log
        assert not [l for l in errors_in(log) if "[error]" in l], log


def test_only_virt_identifiers_without_kvmwatch_metrics():
    """ReportKvmwatchMetrics false: what virt dispatches and nothing else
    (no kvmwatch rows, no host totals)."""
    virt, kw = pair('Connection "test:///default"\nExtraStats "vcpu"',
                    kw_extra="ReportKvmwatchMetrics false\nCollectBPF false\n")
    with virt, kw:
        virt.start()
        kw.start()
        idents = settle(virt, kw)
        time.sleep(1.5)
        assert sorted(kw.listval()) == sorted(idents) == virt_idents(virt)


def test_persistent_notifications_like_virt():
    block = 'Connection "test:///default"\nPersistentNotification true'
    virt, kw = pair(block)
    with virt, kw:
        virt.start()
        kw.start()
        pat = re.compile(r"Notification: severity = (\w+), host = (\S+), plugin = virt, type = domain_state, "
                         r"message = (.*)$", re.M)
        wait_for(lambda: pat.search(virt.logtext()) and pat.search(kw.logtext()), timeout=20,
                 what="domain_state notifications")
        a, b = set(pat.findall(virt.logtext())), set(pat.findall(kw.logtext()))
        assert a == b == {("OKAY", "test", "Domain state: the domain is running. Reason: the reason is unknown")}


# ----------------------------------------------------------- real libvirtd

@pytest.fixture(scope="module")
def domain(libvirtd):
    from lvtest import create_domain
    dom = create_domain(libvirtd, "kwcv")
    yield dom
    libvirtd.virsh("destroy", dom["name"], check=False)


def csv_last(cd, host, ident_dir, name):
    rows = []
    for path in sorted(glob.glob(os.path.join(cd.csv, host, ident_dir, name + "-*"))):
        with open(path) as f:
            rows += [[float(x) for x in line.strip().split(",")] for line in f if line[0].isdigit()]
    return sorted(rows)[-1][1:] if rows else None


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_same_as_virt_on_a_real_domain(libvirtd, domain):
    name = domain["name"]
    block = ('Connection "%s"\nExtraStats "%s"\nBlockDeviceFormat "source"\nBlockDeviceFormatBasename true'
             % (libvirtd.uri, ALL_EXTRA))
    virt, kw = pair(block, kw_extra="")  # every kvmwatch source on: its own metrics beside
    with virt, kw:
        virt.start()
        kw.start()
        idents = settle(virt, kw, want=lambda a: any("virt_vcpu-1" in i for i in a) and
                        any("percent-virt_cpu_total" in i for i in a))
        disk = os.path.basename(domain["disk"])
        tap = domain["tap"]
        for want in ("virt_cpu_total", "memory-total", "virt_vcpu-0", "virt_vcpu-1", "ps_cputime",
                     "domain_state", "disk_ops-" + disk, "disk_octets-" + disk, "disk_time-" + disk,
                     "total_requests-flush-" + disk, "total_time_in_ms-flush-" + disk,
                     "disk_capacity-" + disk, "disk_allocation-" + disk, "disk_physical-" + disk,
                     "if_octets-" + tap, "if_packets-" + tap, "if_errors-" + tap, "if_dropped-" + tap,
                     "memory-actual_balloon", "memory-rss", "cpu_affinity-vcpu_1-cpu_0",
                     "percent-virt_cpu_total"):
            assert "%s/virt/%s" % (name, want) in idents, (want, idents)
        time.sleep(2.5)  # a few more reads of the idle devices by both
        # the guest does no disk or network I/O after boot: the counters
        # both read from libvirt are the same numbers
        for t in ("disk_ops-" + disk, "disk_octets-" + disk, "disk_time-" + disk, "if_octets-" + tap,
                  "if_packets-" + tap, "if_dropped-" + tap, "total_requests-flush-" + disk,
                  "total_time_in_ms-flush-" + disk, "disk_capacity-" + disk, "memory-total"):
            a, b = csv_last(virt, name, "virt", t), csv_last(kw, name, "virt", t)
            assert a is not None and a == b, (t, a, b)
        assert csv_last(kw, name, "virt", "domain_state") == [1.0, 1.0]  # running, booted
        # moving values: within a tolerance of virt's
        for t in ("virt_cpu_total", "virt_vcpu-0"):
            a, b = csv_last(virt, name, "virt", t)[0], csv_last(kw, name, "virt", t)[0]
            assert a == pytest.approx(b, rel=0.2, abs=2e8), (t, a, b)
        # units: ns like virt (a busy-ish QEMU boots in ~1 s of CPU, far above µs counts)
        assert csv_last(kw, name, "virt", "virt_cpu_total")[0] > 1e8
        # kvmwatch's own metrics of the same VM beside virt's, same host
        own = [i for i in kw.listval() if i.startswith(name + "/kvmwatch/")]
        for t in ("cpu-steal-vcpu", "ps_cputime", "threads", "memory-rss"):
            assert "%s/kvmwatch/%s" % (name, t) in own, (t, own)
        # rows virt already reports are not repeated there
        assert not [i for i in own if i.split("/")[2].startswith(("disk_ops", "if_octets", "virt_cpu_total"))]
        assert kw_errors(kw) == [], kw.logtext()[-3000:]


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_lifecycle_notifications_like_virt(libvirtd, domain):
    name = domain["name"]
    block = 'Connection "%s"' % libvirtd.uri
    virt, kw = pair(block)
    pat = re.compile(r"Notification: severity = (\w+), host = %s, plugin = virt, type = domain_state, "
                     r"message = (.*)$" % re.escape(name), re.M)
    with virt, kw:
        virt.start()
        kw.start()
        settle(virt, kw)
        libvirtd.virsh("suspend", name)
        time.sleep(1.5)
        libvirtd.virsh("resume", name)
        want = {("WARNING", "Domain state: the domain is paused by user. Reason: paused on user request"),
                ("OKAY", "Domain state: the domain is running. Reason: returned from paused state")}
        wait_for(lambda: set(pat.findall(virt.logtext())) >= want and set(pat.findall(kw.logtext())) >= want,
                 timeout=20, what="suspend/resume notifications from both")
        assert set(pat.findall(kw.logtext())) == set(pat.findall(virt.logtext()))


@needs_kvm
@needs_root
@needs_binary("libvirtd")
def test_metadata_hostname_like_virt(libvirtd, domain):
    """HostnameFormat/PluginInstanceFormat metadata: OpenStack's nova
    metadata element, read with the default namespace and XPath, and a
    custom XPath to an attribute."""
    name = domain["name"]
    libvirtd.virsh("metadata", name, "--uri", "http://openstack.org/xmlns/libvirt/nova/1.0", "--key", "nova",
                   "--set", "<instance><name>web-7</name><owner id='tenant-42'/></instance>", "--live")
    block = ('Connection "%s"\nHostnameFormat "metadata" "name"\nPluginInstanceFormat "metadata"\n'
             'HostnameMetadataXPath "/instance/owner/@id"\nReportBlockDevices false' % libvirtd.uri)
    virt, kw = pair(block)
    with virt, kw:
        virt.start()
        kw.start()
        idents = settle(virt, kw)
        assert {i.split("/")[0] for i in idents} == {"tenant-42:" + name}
        assert {i.split("/")[1] for i in idents} == {"virt-tenant-42"}
    virt, kw = pair('Connection "%s"\nHostnameFormat "metadata"' % libvirtd.uri)
    with virt, kw:
        virt.start()
        kw.start()
        assert {i.split("/")[0] for i in settle(virt, kw)} == {"web-7"}
