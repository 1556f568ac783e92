"""Shared pytest fixtures for kvmwatch's tests.

The suites mirror the code: tests/sources/ (one file per source),
tests/frontends/ (CLI, collectd, netdata), tests/system/ (security, hostile
input, soak, fuzzing, the guest); the helpers they share are in tests/lib/.

Tests that need /dev/kvm, root, BTF or a daemon skip with the reason where
those are missing; on the project's CI machines everything is present.
"""
import os
import shutil
import subprocess
import sys
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "lib"))
BUILD = os.environ.get("KW_BUILD", os.path.join(ROOT, "build"))


def build_path(*parts):
    return os.path.join(BUILD, *parts)


@pytest.fixture(scope="session")
def build():
    return BUILD


@pytest.fixture(scope="module")
def libvirtd():
    """A private libvirtd (tests/lib/lvtest.py) for the tests of one module."""
    from lvtest import Libvirtd
    lv = Libvirtd().start()
    yield lv
    lv.stop()


def have_kvm():
    return os.path.exists("/dev/kvm") and os.access("/dev/kvm", os.R_OK | os.W_OK)


def is_root():
    return os.geteuid() == 0


needs_kvm = pytest.mark.skipif(not have_kvm(), reason="needs read/write /dev/kvm")
needs_root = pytest.mark.skipif(not is_root(), reason="needs root")
needs_btf = pytest.mark.skipif(not os.path.exists("/sys/kernel/btf/vmlinux"),
                               reason="needs kernel BTF (/sys/kernel/btf/vmlinux)")


def needs_binary(name):
    return pytest.mark.skipif(shutil.which(name) is None, reason=f"needs {name} installed")


# A failing test leaves no process behind: every process a test body starts
# with subprocess (directly or through a helper) and that still runs when the
# test ends -- passed or failed -- is killed.  Fixtures' daemons are theirs
# to stop: only processes started during the call phase are reaped here,
# and a fixture's daemon that a test restarts is marked `outlives_test`.
_popen_init = subprocess.Popen.__init__
_started = []


def _tracking_init(self, *args, **kwargs):
    _popen_init(self, *args, **kwargs)
    _started.append(self)


subprocess.Popen.__init__ = _tracking_init


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    first = len(_started)
    try:
        yield
    finally:
        left = [p for p in _started[first:] if p.poll() is None and not getattr(p, "outlives_test", False)]
        del _started[first:]
        for p in left:
            p.kill()
        for p in left:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
