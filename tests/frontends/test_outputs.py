"""--output-file: reports appended to a file and reopened on SIGHUP (for
logrotate), or sent to a log sink over TCP or UDP without ever blocking the
collection: buffered while the peer is away, reconnected, drops counted."""
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import ROOT
from kwtest import KVMWATCH, free_port, kvmwatch, wait_for

FIX = os.path.join(ROOT, "tests", "fixtures", "qemu1")
FIXARGS = ["--procfs", FIX + "/proc", "--sysfs", FIX + "/sys", "--no-libvirt"]


def records(text):
    return [json.loads(l) for l in text.splitlines() if l.strip()]


class Server(threading.Thread):
    """A TCP log sink: accepts one peer at a time, keeps what it sends."""

    def __init__(self, port=0, read=True, rcvbuf=None):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.read = read
        self.data = b""
        self.conns = []
        self.stop = False

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.conns.append(c)
            while self.read and not self.stop:
                c.settimeout(0.2)
                try:
                    b = c.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not b:
                    break
                self.data += b

    def close(self):
        self.stop = True
        self.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def test_tcp_sink_buffers_until_the_peer_comes():
    """The sink is down at start: records wait, and all arrive once it listens."""
    port = free_port()
    p = subprocess.Popen([KVMWATCH, "-o", "json", "--output-file", "tcp://127.0.0.1:%d" % port] + FIXARGS +
                         ["0.25", "8"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.7)
    srv = Server(port)
    srv.start()
    try:
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
        wait_for(lambda: srv.data.count(b"\n") >= 8, 10, what="the eight records")
        reps = records(srv.data.decode())
        assert len(reps) == 8 and all(r["schema"] == 1 and r["hostname"] for r in reps)
        assert [r["time"] for r in reps] == sorted(r["time"] for r in reps)
        assert out == ""  # nothing went to stdout
    finally:
        srv.close()


def test_tcp_peer_that_never_reads_does_not_block():
    """A peer that accepts and never reads (4 KiB receive buffer): once the
    kernel's send buffer (up to 4 MiB) and kvmwatch's (1 MiB) are full the
    records are dropped, the run ends on time and says how many."""
    srv = Server(read=False, rcvbuf=4096)
    srv.start()
    try:
        t0 = time.monotonic()
        r = kvmwatch("-o", "json", "--output-file", "tcp://127.0.0.1:%d" % srv.port, "--view", "all",
                     *FIXARGS, "0.01", "1000", timeout=90)
        took = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        assert "records are dropped" in r.stderr and "records dropped" in r.stderr, r.stderr
        assert took < 60, took  # 1000 cycles of 10 ms (~9 MiB of records), never waiting for the peer
    finally:
        srv.close()


def test_udp_sink_one_record_per_datagram():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(10)
    try:
        r = kvmwatch("-o", "json", "--output-file", "udp://127.0.0.1:%d" % s.getsockname()[1], *FIXARGS,
                     "0.1", "3", check=True)
        got = [json.loads(s.recv(65536)) for _ in range(3)]
        assert all(g["schema"] == 1 for g in got) and len({g["time"] for g in got}) == 3
    finally:
        s.close()


def test_file_is_reopened_on_sighup(tmp_path):
    log = tmp_path / "kvmwatch.json"
    p = subprocess.Popen([KVMWATCH, "-o", "json", "--output-file", str(log)] + FIXARGS + ["0.2", "10"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: log.exists() and log.read_text().count("\n") >= 3, 15, what="three records")
        os.rename(log, tmp_path / "kvmwatch.json.1")  # what logrotate does
        p.send_signal(signal.SIGHUP)
        out, err = p.communicate(timeout=30)
        assert p.returncode == 0, err
    finally:
        if p.poll() is None:
            p.kill()
    first = records((tmp_path / "kvmwatch.json.1").read_text())
    second = records(log.read_text())
    assert len(first) + len(second) == 10 and len(second) >= 1
    assert first[-1]["time"] < second[0]["time"]


def test_bad_outputs_are_clear_errors(tmp_path):
    r = kvmwatch("--output-file", "tcp://nohostport", *FIXARGS, "0.1", "1")
    assert r.returncode == 1 and "invalid address 'nohostport'" in r.stderr
    r = kvmwatch("-o", "prometheus", "--output-file", "udp://127.0.0.1:9", *FIXARGS, "0.1", "1")
    assert r.returncode == 1 and "a Prometheus exposition goes to a file" in r.stderr
    r = kvmwatch("--output-file", str(tmp_path / "no" / "such" / "dir"), *FIXARGS, "0.1", "1")
    assert r.returncode == 1 and "cannot open" in r.stderr
