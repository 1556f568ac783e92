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
