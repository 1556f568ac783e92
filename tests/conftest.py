"""Shared pytest fixtures for kvmwatch's tests.

Tests that need /dev/kvm, root, BTF or a daemon skip with the reason where
those are missing; on the project's CI machines everything is present.
"""
import os
import shutil
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("KW_BUILD", os.path.join(ROOT, "build"))


def build_path(*parts):
    return os.path.join(BUILD, *parts)


@pytest.fixture(scope="session")
def build():
    return BUILD


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
