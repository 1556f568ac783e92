"""The Debian packages: dpkg-buildpackage builds kvmwatch, collectd-kvmwatch
and netdata-plugin-kvmwatch from a copy of the tree, lintian finds no
error, and each front end runs from the package's installed paths."""
import glob
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, needs_binary, needs_root

pytestmark = [needs_root, needs_binary("dpkg-buildpackage"), needs_binary("lintian"), needs_binary("git")]


@pytest.fixture(scope="module")
def packages(tmp_path_factory):
    top = tmp_path_factory.mktemp("deb")
    src = top / "kvmwatch"
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True).stdout.decode().split("\0")
    for f in filter(None, files):
        if not os.path.lexists(os.path.join(ROOT, f)):
            continue  # deleted in the work tree
        os.makedirs(os.path.dirname(os.path.join(src, f)), exist_ok=True)
        shutil.copy2(os.path.join(ROOT, f), os.path.join(src, f), follow_symlinks=False)
    r = subprocess.run(["dpkg-buildpackage", "-b", "-us", "-uc"], cwd=src, capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return top


def test_three_packages_and_lintian(packages):
    with open(os.path.join(ROOT, "VERSION")) as f:
        version = f.read().strip()
    debs = sorted(os.path.basename(p) for p in glob.glob(str(packages / "*.deb")) if "-dbgsym_" not in p)
    names = [d.split("_")[0] for d in debs]
    assert names == ["collectd-kvmwatch", "kvmwatch", "netdata-plugin-kvmwatch"], debs
    assert all(d.split("_")[1] == version for d in debs), (debs, version)
    changes = glob.glob(str(packages / "*.changes"))
    r = subprocess.run(["lintian", "--no-tag-display-limit"] + changes, capture_output=True, text=True, timeout=600)
    errors = [l for l in r.stdout.splitlines() if l.startswith("E:")]
    assert not errors, r.stdout


def contents(packages, name):
    deb = glob.glob(str(packages / ("%s_*.deb" % name)))[0]
    return subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True, check=True).stdout, deb


def test_installed_paths_and_front_ends(packages, tmp_path):
    want = {
        "kvmwatch": ["./usr/bin/kvmwatch", "./usr/share/man/man8/kvmwatch.8.gz",
                     "./usr/share/bash-completion/completions/kvmwatch",
                     "./lib/systemd/system/kvmwatch-serve.service"],
        "collectd-kvmwatch": ["./usr/lib/collectd/kvmwatch.so", "./etc/collectd/collectd.conf.d/kvmwatch.conf",
                              "./usr/share/man/man5/collectd-kvmwatch.5.gz",
                              "./usr/share/doc/collectd-kvmwatch/collectd-metrics.md.gz"],
        "netdata-plugin-kvmwatch": ["./usr/lib/netdata/plugins.d/kvmwatch.plugin",
                                    "./usr/lib/netdata/conf.d/kvmwatch.conf",
                                    "./usr/lib/netdata/conf.d/health.d/kvmwatch.conf",
                                    "./usr/share/man/man8/kvmwatch.plugin.8.gz"],
    }
    root = tmp_path / "root"
    for name, paths in want.items():
        listing, deb = contents(packages, name)
        for p in paths:
            assert (" " + p + "\n") in listing or listing.rstrip().endswith(" " + p), (name, p, listing)
        subprocess.run(["dpkg-deb", "-x", deb, str(root)], check=True)
    with open(os.path.join(ROOT, "VERSION")) as f:
        version = f.read().strip()
    r = subprocess.run([str(root / "usr/bin/kvmwatch"), "--version"], capture_output=True, text=True, timeout=30)
    assert r.stdout.strip() == "kvmwatch " + version
    r = subprocess.run([str(root / "usr/bin/kvmwatch"), "--no-libvirt", "-o", "json", "0.1", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and '"vms":' in r.stdout
    r = subprocess.run([str(root / "usr/lib/netdata/plugins.d/kvmwatch.plugin"), "-V"], capture_output=True,
                       text=True, timeout=30)
    assert r.stdout.strip() == "kvmwatch.plugin " + version
    syms = subprocess.run(["nm", "-D", "--defined-only", str(root / "usr/lib/collectd/kvmwatch.so")],
                          capture_output=True, text=True, check=True).stdout.split()
    assert syms[-1] == "module_register" and len(syms) == 3
    # the unit points at the packaged binary and is neither enabled nor started by the package
    unit = (root / "lib/systemd/system/kvmwatch-serve.service").read_text()
    assert "ExecStart=/usr/bin/kvmwatch serve" in unit


def test_netdata_plugin_gets_its_capabilities(packages, tmp_path):
    """The package's postinst sets the plugin's group, mode and capabilities
    (run here against an extracted copy)."""
    _, deb = contents(packages, "netdata-plugin-kvmwatch")
    ctl = tmp_path / "ctl"
    subprocess.run(["dpkg-deb", "-e", deb, str(ctl)], check=True)
    post = (ctl / "postinst").read_text()
    assert "setcap cap_dac_read_search,cap_sys_ptrace,cap_bpf,cap_perfmon+ep" in post
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", deb, str(root)], check=True)
    plugin = root / "usr/lib/netdata/plugins.d/kvmwatch.plugin"
    script = post.replace("PLUGIN=/usr/lib/netdata/plugins.d/kvmwatch.plugin", "PLUGIN=%s" % plugin)
    r = subprocess.run(["sh", "-c", script, "postinst", "configure"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    caps = subprocess.run(["getcap", str(plugin)], capture_output=True, text=True).stdout
    assert "cap_dac_read_search,cap_sys_ptrace,cap_perfmon,cap_bpf=ep" in caps.replace(" ", ""), caps
