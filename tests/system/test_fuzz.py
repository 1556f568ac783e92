"""libFuzzer targets (tests/fuzz/, clang -fsanitize=fuzzer,address,undefined)
for every /proc, /sys and configuration parser, each run for a bounded time
(KW_FUZZ_SECONDS, default 10; `make fuzz` runs them longer) from a seed
corpus built from tests/fixtures and the shipped configuration files.  A
crash, sanitizer report, failed invariant (FUZZ_CHECK), leak or timeout
fails the test with the fuzzer's report and the reproducer's path."""
import glob
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ROOT, build_path

SECONDS = int(os.environ.get("KW_FUZZ_SECONDS", "10"))
FIX = os.path.join(ROOT, "tests", "fixtures")

HOSTILE = [
    b"web 01", b'q"uote', b"new\nline", b"a/b/../c", b"x" * 300, b"caf\xc3\xa9", b"bad\xff\xfeutf8",
    b"\xed\xa0\x80surrogate", b"tab\there", b"back\\slash", b"emoji\xf0\x9f\x98\x80", b"\x7fdel",
]

QEMU_ARGV = [
    b"/usr/bin/qemu-system-x86_64\0-name\0guest=vm1,debug-threads=on\0-uuid\0"
    b"6b8b4567-327b-4c2a-9fd2-1234567890ab\0-smp\02\0-netdev\0tap,id=n0,ifname=tap0,script=no\0",
    b"qemu-kvm\0-id\0100\0-name\0pve,,vm\0-netdev\0{\"type\":\"tap\",\"ifname\":\"tap100i0\"}\0",
    b"kvm\0--name\0guest=a,,b\0-net\0tap,ifname=t/x\0-uuid\0bad\0",
]

COLLECTD = [
    b"Domain\t/^web/\nIgnoreSelected\ttrue\nInterface\ttap0\nBlockDevice\t/vd[a-z]/\n",
    b"PluginInstanceFormat\tname\tuuid\nHostnameFormat\thostname\tname\nHostInstance\thost\n",
    b"CollectBPF\tfalse\nCollectLibvirt\ttrue\nConnection\tqemu:///system\nBPFFeature\texits\tmmio\n",
    b"ProcFS\t/proc\nSysFS\t/sys\nCollectHostTotals\tfalse\nCollectKVMStats\t1\nInterfaceDevice\tname\n",
    b"Domain\t/[/\nUnknownKey\tx\nPluginInstanceFormat\n",
]


def fixture_files(pattern):
    return sorted(glob.glob(os.path.join(FIX, "*", pattern), recursive=True))


def seeds(target):
    """(name, bytes) seeds for one target."""
    out = []

    def add_files(pattern, prefix=b""):
        for p in fixture_files(pattern):
            with open(p, "rb") as f:
                out.append((os.path.relpath(p, FIX).replace("/", "_"), prefix + f.read()))

    if target == "fuzz_cmdline":
        add_files("proc/*/cmdline")
        out += [("argv%d" % i, a) for i, a in enumerate(QEMU_ARGV)]
        out += [("hostile%d" % i, b"qemu-system-x86_64\0-name\0guest=" + h + b"\0")
                for i, h in enumerate(HOSTILE)]
    elif target == "fuzz_procfs":
        add_files("proc/*/stat", b"\0")
        add_files("proc/*/task/*/stat", b"\0")
        add_files("proc/*/status", b"\1")
        add_files("proc/*/io", b"\1")
        add_files("proc/meminfo", b"\1")
        add_files("proc/pressure/*", b"\2")
        add_files("sys/**/*.pressure", b"\2")
        add_files("proc/stat", b"\3")
        add_files("proc/diskstats", b"\4")
        add_files("proc/net/dev", b"\5")
        out.append(("stat_hostile", b"\0" + b"42 (a) b) R " + b"1 " * 60 + b"\n"))
    elif target == "fuzz_vcpu_comm":
        add_files("proc/*/task/*/comm")
        out += [("c%d" % i, c) for i, c in enumerate([b"CPU 0/KVM", b"fc_vcpu 3", b"vcpu12", b"crosvm_vcpu7",
                                                        b"CPU 99999/KVM", b"qemu-system-x86"])]
    elif target == "fuzz_json":
        add_files("proc/*/cmdline")
        out += [("h%d" % i, h) for i, h in enumerate(HOSTILE)]
    elif target == "fuzz_qmpjson":
        out += [("greeting", b'{"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": ""},'
                             b' "capabilities": ["oob"]}}\r\n{"return": {}}\r\n'),
                ("blockstats", b'{"return": [{"device": "drive-virtio0", "stats": {"rd_bytes": 0, "wr_bytes": 512,'
                               b' "rd_total_time_ns": 10, "idle_time_ns": 123}, "qdev": "/machine/peripheral/v0"}],'
                               b' "id": 2}\r\n'),
                ("event", b'{"event": "STOP", "timestamp": {"seconds": 1, "microseconds": 2}}\r\n'),
                ("escapes", b'{"return": "\\u00e9\\ud83d\\ude00\\n\\"", "n": -1.5e3, "b": [true, false, null]}'),
                ("deep", b"[" * 70 + b"]" * 70),
                ("truncated", b'{"return": [{"device": "x", "stats": {"rd_b')]
    elif target == "fuzz_pattern":
        out += [("p0", b"!*-test web* db?\nweb1\ndb?\nx-test\n"), ("p1", b"*\n\n"),
                ("p2", b"! !a **b*\nab\n")]
    elif target == "fuzz_ignorelist":
        out += [("i0", b"\0tap0\n/^vm[0-9]+$/\nvm12\n"), ("i1", b"\1/(a|b)*c/\n/[/\nabc\n"),
                ("i2", b"\0" + b"\n".join(HOSTILE) + b"\n")]
    elif target == "fuzz_collectd":
        out += [("c%d" % i, c) for i, c in enumerate(COLLECTD)]
        out += [("hostile", b"\n".join(b"Domain\t" + h for h in HOSTILE))]
    elif target == "fuzz_libvirt_xml":
        iface = (b"<interface type='ethernet'><mac address='52:54:00:12:34:56'/><target dev='vnet0'/>"
                 b"</interface>")
        out += [("domain", b"/instance/name/text()\n<domain><name>a</name><devices>" + iface * 3 +
                 b"<interface type='network'><mac address='52:54:00:00:00:01'/></interface></devices></domain>"),
                ("nova", b"\n<nova:instance xmlns:nova='http://openstack.org/xmlns/libvirt/nova/1.0'>"
                 b"<nova:name>web-1</nova:name></nova:instance>"),
                ("attr", b"/instance/owner/@id\n<instance><owner id='t-42'/></instance>"),
                ("entities", b"//x\n<!DOCTYPE d [<!ENTITY e 'x'>]><d><x>&e;&e;</x></d>"),
                ("hostile", b"/instance/name/text()\n<instance><name>" + b"\n".join(HOSTILE) + b"</name></instance>"),
                ("badxpath", b"///[\n<a/>")]
    elif target == "fuzz_netdata":
        with open(os.path.join(ROOT, "netdata-plugin", "kvmwatch.conf"), "rb") as f:
            out.append(("stock", f.read()))
        out += [("n0", b"[global]\nupdate every = 5\nhost charts = no\n[sources]\nbpf = yes\n"
                       b"libvirt uri = qemu:///system\n[bpf]\nexits = yes\nhalt poll = on\n"
                       b"[filter]\nvms = !*-test *\n"),
                ("n1", b"[nope\nkey\n= v\n[global]\nupdate every = 0x10\n" + b"x" * 9000 + b"\n")]
    return out


TARGETS = sorted(os.path.basename(p)[:-2] for p in glob.glob(os.path.join(ROOT, "tests", "fuzz", "fuzz_*.c")))


def run_target(target, workdir):
    exe = build_path("fuzz", target)
    corpus = os.path.join(workdir, target, "corpus")
    art = os.path.join(workdir, target, "crash-")
    os.makedirs(corpus)
    for name, data in seeds(target):
        with open(os.path.join(corpus, name), "wb") as f:
            f.write(data)
    r = subprocess.run([exe, "-max_total_time=%d" % SECONDS, "-max_len=8192", "-timeout=10",
                        "-rss_limit_mb=2048", "-print_final_stats=1", "-artifact_prefix=" + art, corpus],
                       capture_output=True, text=True, errors="replace", timeout=SECONDS + 120)
    return r, art


@pytest.fixture(scope="module")
def results():
    for t in TARGETS:
        if not os.access(build_path("fuzz", t), os.X_OK):
            pytest.fail("%s not built (make builds it with clang)" % build_path("fuzz", t))
    work = tempfile.mkdtemp(prefix="kwfuzz-")
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as ex:
        futs = {t: ex.submit(run_target, t, work) for t in TARGETS}
        res = {t: f.result() for t, f in futs.items()}
    yield res
    if all(r.returncode == 0 for r, _ in res.values()):
        shutil.rmtree(work, ignore_errors=True)  # else keep the reproducers


def test_every_parser_has_a_target():
    assert set(TARGETS) >= {"fuzz_cmdline", "fuzz_procfs", "fuzz_vcpu_comm", "fuzz_json", "fuzz_pattern",
                            "fuzz_ignorelist", "fuzz_collectd", "fuzz_netdata", "fuzz_qmpjson"}
    for t in TARGETS:
        assert seeds(t), "no seed corpus for %s" % t


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz(results, target):
    r, art = results[target]
    report = (r.stderr[-4000:] + "\n(reproduce: %s %s*)" % (build_path("fuzz", target), art))
    assert r.returncode == 0, report
    runs = [l for l in r.stderr.splitlines() if l.startswith("stat::number_of_executed_units")]
    assert runs and int(runs[0].split(":")[-1]) > 0, report
