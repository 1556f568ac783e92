"""Hostile VM names through every front end, with real KVM guests whose
-name holds spaces, quotes, a newline, slashes, 300 characters, bytes that
are not UTF-8, a comma (QEMU's ",,"), printf directives: the CLI's JSON
parses line by line and carries the exact name, every text view keeps one
aligned line per VM in valid UTF-8, collectd's identifiers are valid and
answer getval in a real collectd, the netdata plugin's real output passes
netdata 1.37's parser rules (tests/ndproto.py)."""
import json
import os
import re
import subprocess
import tempfile
import time
import uuid as uuidlib

import pytest

from conftest import build_path, needs_binary, needs_kvm, needs_root
from kwtest import KVMGUEST, kvmwatch, wait_for
from ndproto import Netdata137

TAG = b"kwh%d" % os.getpid()
NAMES = [TAG + b" web 01", TAG + b" q\"uo'te", TAG + b" new\nline", TAG + b" a/b/../c",
         TAG + b" " + b"x" * 300, TAG + b" bad\xff\xfe-\xc3\xa9", TAG + b" tab\t\\%s%n",
         TAG + b" co,mma"]

pytestmark = [needs_kvm, needs_root]


def json_name(raw):
    """The name kvmwatch reports: at most 255 bytes, bytes that are not
    UTF-8 as U+00XX (kw_json_str)."""
    s = raw[:255].decode("utf-8", "surrogateescape")
    return "".join(chr(ord(c) - 0xdc00) if 0xdc80 <= ord(c) <= 0xdcff else c for c in s)


@pytest.fixture(scope="module")
def guests():
    procs = []
    try:
        for n in NAMES:
            p = subprocess.Popen([KVMGUEST.encode(), b"-name", b"guest=" + n.replace(b",", b",,") +
                                  b",debug-threads=on", b"-uuid", str(uuidlib.uuid4()).encode(),
                                  b"--mode", b"demo", b"--count", b"1000", b"--irq-period-us", b"100000"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            procs.append(p)
        pids = {p.pid: n for p, n in zip(procs, NAMES)}

        def all_seen():
            r = kvmwatch("-o", "json", "--no-host", "0.1", "1")
            vms = json.loads(r.stdout.splitlines()[-1])["vms"] if r.stdout.strip() else []
            seen = {vm["pid"]: vm for vm in vms if vm["pid"] in pids}
            return seen if len(seen) == len(pids) and all(v["vcpus"] == 1 for v in seen.values()) else None
        wait_for(all_seen, timeout=20, what="the hostile-named guests with their vCPU thread")
        yield pids
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
            p.stderr.close()


def test_cli_json_exact_names(guests):
    r = kvmwatch("-o", "json", "--view", "all", "0.2", "2", check=True)
    lines = r.stdout.splitlines()
    assert len(lines) == 2
    for line in lines:
        d = json.loads(line)
        mine = {vm["pid"]: vm for vm in d["vms"] if vm["pid"] in guests}
        assert len(mine) == len(NAMES)
        for pid, vm in mine.items():
            assert vm["name"] == json_name(guests[pid]), (vm["name"], guests[pid])


@pytest.mark.parametrize("view", ["summary", "list", "mem", "vcpu"])
def test_cli_text_one_aligned_line_per_vm(guests, view):
    r = kvmwatch("--view", view, "0.2", "1", check=True)
    text = r.stdout.decode() if isinstance(r.stdout, bytes) else r.stdout
    # kvmwatch() decodes strictly as UTF-8: a stray byte would have raised
    assert "\ufffd" not in text
    lines = text.splitlines()
    for pid in guests:
        pat = re.compile(r"^.{24} +%d " % pid)
        hits = [l for l in lines if re.search(r"(^|\s)%d(\s|$)" % pid, l)]
        assert len(hits) == 1, (view, pid, hits)
        assert pat.match(hits[0]), (view, hits[0])
        assert all(ord(c) >= 0x20 for c in hits[0])


def test_collectd_identifiers_valid_and_readable(guests):
    pytest.importorskip("test_collectd")
    from test_collectd import Collectd, HOST
    if subprocess.run(["which", "collectd"], capture_output=True).returncode:
        pytest.skip("needs collectd")
    with Collectd('  Domain "/^%s /"' % TAG.decode()) as cd:
        cd.start()
        prefix = "kvmwatch-%s_" % TAG.decode()

        def ours():
            v = [i for i in cd.listval() if i.split("/")[1].startswith(prefix) and i.endswith("/vcpu")]
            return v if len(v) == len(NAMES) else None
        idents = wait_for(ours, timeout=30, what="collectd identifiers of every VM")
        pinsts = {i.split("/")[1] for i in idents}
        assert len(pinsts) == len(NAMES)  # distinct VMs stay distinct
        for ident in idents:
            host, pinst, tinst = ident.split("/")
            assert host == HOST and tinst == "vcpu"
            assert len(pinst[len("kvmwatch-"):].encode()) <= 63
            assert not re.search(r"[\s\"'\\/\x00-\x1f\x7f]", pinst), pinst
            pinst.encode("utf-8")
            assert cd.getval(ident) == {"value": 1.0}, ident
        # (collectd's unixsock races naming its connection threads: its own noise)
        errs = [l for l in cd.logtext().splitlines() if "[error]" in l and "set_thread_name(" not in l]
        assert errs == [], errs


def test_netdata_plugin_output_accepted(guests, tmp_path):
    with open(tmp_path / "kvmwatch.conf", "w") as f:
        f.write("[filter]\nvms = %s*\n" % TAG.decode())
    env = dict(os.environ, NETDATA_USER_CONFIG_DIR=str(tmp_path), NETDATA_STOCK_CONFIG_DIR=str(tmp_path))
    p = subprocess.Popen([build_path("kvmwatch.plugin"), "1"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env)
    out = b""
    try:
        # two whole cycles: the host's VM chart (sent whatever "host charts" says) begins a third time
        end = time.monotonic() + 30
        while out.count(b'BEGIN "kvm_host.vms"') < 3 and time.monotonic() < end:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
    finally:
        p.kill()
        _, err = p.communicate()
    text = out.decode("utf-8")  # valid UTF-8 throughout
    lines = text.splitlines()
    last = max(i for i, l in enumerate(lines) if l.startswith('BEGIN "kvm_host.vms"'))
    nd = Netdata137().feed(lines[:last])
    vm_types = [t for t in nd.types() if t != "kvm_host"]
    assert len(vm_types) == len(NAMES), (vm_types, err)
    for t in nd.types():
        assert re.match(r"^kvm_[a-z0-9_-]+$", t), t
    labels = {nd.charts[t + ".cpu"]["labels"]["vm_name"] for t in vm_types}
    assert len(labels) == len(NAMES)
    for v in labels:
        assert not set(v) & set("\"'\\\n\r"), v
        assert all(ord(c) >= 0x20 for c in v)
