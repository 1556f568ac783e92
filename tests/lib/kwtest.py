"""Helpers shared by kvmwatch's tests: the project's own KVM guest
(tests/guest/kvmguest), the kvmwatch CLI, temp dirs, waiting for conditions."""
import json
import os
import signal
import subprocess
import time
import uuid as uuidlib

from conftest import build_path

KVMWATCH = build_path("kvmwatch")
KVMGUEST = build_path("tests", "kvmguest")


class Guest:
    """A real KVM guest run by kvmguest with a QEMU-like identity.

    With wait=True the VM and its vCPU threads exist after start() but the
    guest program only runs after go(); finish() closes stdin (ending --hold)
    and returns kvmguest's JSON result."""

    def __init__(self, mode="demo", count=None, name=None, uuid=None, vcpus=1,
                 extra=(), hold=None, wait=True):
        self.name = name or "kwtest-%s-%d" % (mode, os.getpid())
        self.uuid = uuid or str(uuidlib.uuid4())
        args = [KVMGUEST, "-name", "guest=%s,debug-threads=on" % self.name,
                "-uuid", self.uuid, "--mode", mode, "--vcpus", str(vcpus)]
        if count is not None:
            args += ["--count", str(count)]
        if hold is not None:
            args += ["--hold", str(hold)]
        if wait:
            args.append("--wait-stdin")
        args += list(extra)
        self.args = args
        self.wait = wait
        self.proc = None
        self.pid = None
        self.result = None

    def start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        if self.wait:
            line = self.proc.stdout.readline()
            if not line.startswith("ready "):
                err = self.proc.stderr.read()
                self.proc.kill()
                raise RuntimeError("kvmguest did not start: %r %s" % (line, err))
            self.pid = int(line.split()[1])
        else:
            self.pid = self.proc.pid
        return self

    def go(self):
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def finish(self, timeout=60):
        # communicate() flushes and closes stdin itself (closing it first
        # makes it fail on the closed file)
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise RuntimeError("kvmguest failed (%d): %s" % (self.proc.returncode, err))
        self.result = json.loads(out.strip().splitlines()[-1])
        return self.result

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.kill()


def start_attached(args, env=None):
    """Start kvmwatch (args) and wait until it says its eBPF programs are
    attached.  Returns (Popen, stderr lines so far); kills it if it ends first."""
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    err = []
    while True:
        line = p.stderr.readline()
        if not line:
            p.kill()
            p.wait()
            raise AssertionError("kvmwatch exited before attaching: %s" % "".join(err))
        err.append(line)
        if "tracing" in line and "attached" in line:
            return p, err


def stop_attached(p, err):
    """Stop a kvmwatch from start_attached with SIGINT; it must exit 0.
    Returns (its JSON lines, all of its stderr)."""
    if p.poll() is None:
        p.send_signal(signal.SIGINT)
    out, rest = p.communicate(timeout=30)
    assert p.returncode == 0, "".join(err) + rest
    return [json.loads(l) for l in out.splitlines() if l.strip()], "".join(err) + rest


def kvmwatch(*args, timeout=60, check=False, env=None):
    """Run the kvmwatch CLI; returns CompletedProcess (text)."""
    r = subprocess.run([KVMWATCH] + [str(a) for a in args], capture_output=True, text=True,
                       timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError("kvmwatch %s failed (%d): %s" % (args, r.returncode, r.stderr))
    return r


def kvmwatch_json(*args, timeout=60):
    """Run kvmwatch -o json and parse one JSON object per line."""
    r = kvmwatch("-o", "json", *args, timeout=timeout, check=True)
    return [json.loads(line) for line in r.stdout.splitlines() if line.strip()]


def find_vm(report, name):
    for vm in report["vms"]:
        if vm["name"] == name:
            return vm
    return None


def wait_for(cond, timeout=10.0, interval=0.05, what="condition"):
    """Poll cond() until it returns a truthy value; raise after timeout."""
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


def free_port():
    """A TCP port of 127.0.0.1 nobody listens on (at the time of asking)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
