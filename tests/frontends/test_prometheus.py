"""Prometheus: `kvmwatch -o prometheus` (with --output-file for node_exporter's
textfile collector) and `kvmwatch serve` (/metrics over libmicrohttpd),
checked by promtool and scraped by a real Prometheus server that answers a
PromQL query about a real guest."""
import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import needs_binary, needs_kvm, needs_root
from kwtest import KVMWATCH, Guest, free_port, kvmwatch, wait_for

pytestmark = [needs_kvm, needs_root, needs_binary("promtool")]


def promtool(text):
    return subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)


def samples(text, family):
    """{labels-text: value} of one family."""
    out = {}
    for line in text.splitlines():
        if line.startswith(family + "{") or line.startswith(family + " "):
            name, value = line.rsplit(" ", 1)
            out[name[len(family):]] = float(value)
    return out


@pytest.fixture
def guest():
    g = Guest("demo", vcpus=2, name='kwprom "q" \\ %d' % os.getpid(), wait=False)
    g.start()
    yield g
    g.kill()


def test_exposition_is_clean(guest):
    r = kvmwatch("-o", "prometheus", "--no-libvirt", "--bpf", "all", "-p", str(guest.pid), "0.3", "1", check=True)
    lint = promtool(r.stdout)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr
    vcpus = samples(r.stdout, "kvmwatch_vm_vcpus")
    name = guest.name.replace("\\", "\\\\").replace('"', '\\"')
    key = '{vm="%s",uuid="%s",pid="%d"}' % (name, guest.uuid, guest.pid)
    assert vcpus == {key: 2}, vcpus
    # the libvirt exporters' names and labels for the same quantities
    assert samples(r.stdout, "libvirt_domain_info_virtual_cpus") == {'{domain="%s"}' % name: 2}
    # base units: CPU time in seconds, memory in bytes, counters _total
    assert samples(r.stdout, "kvmwatch_cpu_user_seconds_total")[key] >= 0
    assert samples(r.stdout, "kvmwatch_mem_rss_bytes")[key] > 1 << 20
    per_vcpu = samples(r.stdout, "kvmwatch_vcpu_run_seconds_total")
    assert sorted(k.rsplit('vcpu="', 1)[1] for k in per_vcpu) == ['0"}', '1"}']
    # every family has HELP and TYPE once
    types = [l.split()[2] for l in r.stdout.splitlines() if l.startswith("# TYPE ")]
    helps = [l.split()[2] for l in r.stdout.splitlines() if l.startswith("# HELP ")]
    assert len(types) == len(set(types)) == len(helps)
    assert samples(r.stdout, "kvmwatch_source_up") == {'{source="procfs"}': 1, '{source="kvmstat"}': 1,
                                                       '{source="bpf"}': 1, '{source="qmp"}': 1}


def test_output_file_replaced_atomically(guest, tmp_path):
    out = tmp_path / "kvmwatch.prom"
    kvmwatch("-o", "prometheus", "--output-file", str(out), "--no-libvirt", "-p", str(guest.pid), "0.2", "3",
             check=True)
    text = out.read_text()
    assert promtool(text).returncode == 0
    assert samples(text, "kvmwatch_vm_vcpus")
    assert os.listdir(tmp_path) == ["kvmwatch.prom"]  # no temporary file left
    assert oct(os.stat(out).st_mode & 0o777) == "0o644"


@pytest.fixture
def serve(guest):
    port = free_port()
    p = subprocess.Popen([KVMWATCH, "serve", "--listen", "127.0.0.1:%d" % port, "--no-libvirt",
                          "-p", str(guest.pid), "0.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = "http://127.0.0.1:%d" % port

    def up():
        try:
            return urllib.request.urlopen(url + "/metrics", timeout=2).status == 200
        except OSError:
            return p.poll() is not None
    wait_for(up, 15, what="kvmwatch serve")
    assert p.poll() is None, p.stderr.read()
    yield url
    p.terminate()
    p.wait(10)


def test_serve_speaks_http(serve, guest):
    r = urllib.request.urlopen(serve + "/metrics", timeout=5)
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = r.read().decode()
    assert promtool(text).returncode == 0
    assert list(samples(text, "kvmwatch_vm_vcpus").values()) == [2]
    assert float(samples(text, "kvmwatch_collect_duration_seconds")[""]) > 0
    assert urllib.request.urlopen(urllib.request.Request(serve + "/metrics", method="HEAD"), timeout=5).status == 200
    assert urllib.request.urlopen(serve + "/", timeout=5).status == 200
    for path, method, status in (("/nope", "GET", 404), ("/metrics", "POST", 405)):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(urllib.request.Request(serve + path, method=method, data=b"" if method == "POST"
                                                          else None), timeout=5)
        assert e.value.code == status


@needs_binary("prometheus")
def test_real_prometheus_scrapes_serve(serve, guest, tmp_path):
    target = serve.split("//", 1)[1]
    cfg = tmp_path / "prometheus.yml"
    cfg.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                   "scrape_configs:\n  - job_name: kvmwatch\n    static_configs:\n      - targets: ['%s']\n" % target)
    port = free_port()
    p = subprocess.Popen(["prometheus", "--config.file=%s" % cfg, "--storage.tsdb.path=%s" % (tmp_path / "data"),
                          "--web.listen-address=127.0.0.1:%d" % port, "--log.level=warn"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        name = guest.name.replace("\\", "\\\\").replace('"', '\\"')

        def query(q):
            u = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": q}))
            try:
                d = json.loads(urllib.request.urlopen(u, timeout=2).read())
            except OSError:
                return None
            return d["data"]["result"] if d.get("status") == "success" else None

        res = wait_for(lambda: query('kvmwatch_vm_vcpus{vm="%s"}' % name), 40, what="Prometheus to scrape the guest")
        assert len(res) == 1 and res[0]["value"][1] == "2" and res[0]["metric"]["job"] == "kvmwatch"
        # the guest spins: its CPU time grows between scrapes
        res = wait_for(lambda: query('rate(kvmwatch_cpu_user_seconds_total{vm="%s"}[5s]) + '
                                     'rate(kvmwatch_cpu_system_seconds_total{vm="%s"}[5s]) > 0.1' % (name, name)),
                       40, what="a CPU rate from Prometheus")
        assert float(res[0]["value"][1]) > 0.1
    finally:
        p.terminate()
        p.wait(20)


def test_bad_listen_is_a_clear_error():
    r = kvmwatch("serve", "--listen", "nonsense")
    assert r.returncode == 2 and "--listen: invalid address 'nonsense'" in r.stderr
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    try:
        r = kvmwatch("serve", "--no-libvirt", "--listen", "127.0.0.1:%d" % s.getsockname()[1], timeout=30)
        assert r.returncode == 1 and "cannot listen on 127.0.0.1:" in r.stderr
    finally:
        s.close()


@needs_binary("systemd-analyze")
def test_installed_unit_and_man_page(tmp_path):
    """make install puts kvmwatch, its man page and the hardened unit of
    serve in place; systemd-analyze verify accepts the unit."""
    from conftest import BUILD, ROOT
    dest = tmp_path / "root"
    subprocess.run(["make", "-s", "-C", ROOT, "install-cli", "O=" + os.path.relpath(BUILD, ROOT),
                    "DESTDIR=%s" % dest, "PREFIX=/usr"], check=True, capture_output=True, timeout=300)
    unit = (dest / "lib/systemd/system/kvmwatch-serve.service").read_text()
    assert "ExecStart=/usr/bin/kvmwatch serve --listen 127.0.0.1:9977 15" in unit
    caps = [l.split("=", 1)[1].split() for l in unit.splitlines() if l.startswith("CapabilityBoundingSet=")][0]
    assert sorted(caps) == ["CAP_BPF", "CAP_DAC_READ_SEARCH", "CAP_PERFMON", "CAP_SYS_PTRACE"]
    local = tmp_path / "kvmwatch-serve.service"
    local.write_text(unit.replace("/usr/bin/kvmwatch", str(dest / "usr/bin/kvmwatch")))
    env = dict(os.environ, MANPATH=str(dest / "usr/share/man"))
    r = subprocess.run(["systemd-analyze", "verify", str(local)], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
    man = subprocess.run(["man", "-l", str(dest / "usr/share/man/man8/kvmwatch.8")], capture_output=True, text=True,
                         env=dict(os.environ, MANWIDTH="80"), timeout=30)
    assert "kvmwatch serve" in man.stdout and "@VERSION@" not in man.stdout
