"""Unit tests of the collectd plugin (C, built by collectd-plugin/module.mk):
the logic without collectd, and the real glue with collectd's plugin API mocked."""
import subprocess

from conftest import build_path, needs_kvm
from kwtest import Guest

TYPES_DB = "/usr/share/collectd/types.db"


def run(*args):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_kwcd_logic():
    out = run(build_path("collectd-plugin", "tests", "test_kwcd"), TYPES_DB)
    assert "all kwcd tests passed" in out
    assert "table: " in out


def test_glue_without_vm():
    out = run(build_path("collectd-plugin", "tests", "test_glue"), TYPES_DB)
    assert "all glue tests passed" in out


@needs_kvm
def test_glue_with_vm():
    with Guest(mode="demo", vcpus=2, name="kwcd-glue-%d" % __import__("os").getpid()) as g:
        g.go()
        out = run(build_path("collectd-plugin", "tests", "test_glue"), TYPES_DB, g.name, 2)
        assert "vm %s: 2 vcpus" % g.name in out
        assert "all glue tests passed" in out


def test_metric_doc_is_what_the_tables_say():
    """docs/collectd-metrics.md is generated (make collectd-doc): the committed
    file is what the tables print now."""
    import os
    from conftest import ROOT
    out = run(build_path("collectd-plugin", "kwcd_doc"), TYPES_DB)
    with open(os.path.join(ROOT, "docs", "collectd-metrics.md")) as f:
        assert f.read() == out, "docs/collectd-metrics.md is stale: run make collectd-doc"


# Units of the types collectd's own plugins dispatch (processes, cpu, disk,
# interface, memory, virt): a native kvmwatch value of the same type carries
# the same unit, or kvmwatch uses another type.
COLLECTD_UNITS = {
    "ps_cputime": "µs", "cpu": "jiffies (1/100 s)", "disk_time": "ms", "virt_cpu_total": "ns",
    "virt_vcpu": "ns", "memory": "bytes", "if_octets": "bytes", "disk_octets": "bytes",
    "total_time_in_ms": "ms", "ps_vm": "bytes", "ps_rss": "bytes", "io_octets": "bytes",
    "ps_disk_octets": "bytes", "duration": "s", "total_bytes": "bytes", "bytes": "bytes",
}
# virt's types whose meaning kvmwatch's rows do not have: never dispatched natively
VIRT_ONLY = ("swap_io", "disk_error", "domain_state", "cpu_affinity", "job_stats", "perf")


def test_native_types_carry_collectd_units():
    out = run(build_path("collectd-plugin", "kwcd_doc"), TYPES_DB)
    native = out.split("## Compat")[0]
    rows = [l.split("|")[1:-1] for l in native.splitlines() if l.startswith("| `")]
    assert len(rows) > 100
    seen = set()
    for metric, ident, ds, unit in rows:
        t = ident.strip(" `").split("-")[0]
        assert t not in VIRT_ONLY, (metric, ident)
        if t in COLLECTD_UNITS:
            seen.add(t)
            assert unit.strip() == COLLECTD_UNITS[t], (metric, ident, unit)
    assert {"ps_cputime", "cpu", "disk_time", "virt_vcpu", "memory", "if_octets"} <= seen
