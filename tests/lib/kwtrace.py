"""Count kernel tracepoint hits for given threads, in a private tracefs instance.

    with Tracer(["kvm/kvm_pio", "kvm/kvm_mmio"], filters={"kvm/kvm_pio": "port == 0x700"}) as t:
        t.set_pids(tids)      # before the events are enabled: nothing foreign gets in
        t.enable()
        ... run the workload ...
        counts = t.counts()   # {"kvm_pio": 10, ...} for those threads only

The instance (instances/kwtest-<pid>-<n>) keeps the global buffer and other
users' settings untouched; it is removed on exit.
"""
import collections
import itertools
import os
import re
import subprocess

TRACEFS = "/sys/kernel/tracing"
_seq = itertools.count()
_LINE = re.compile(r"-(\d+)\s+(?:\(\s*[-\d]+\)\s+)?\[\d+\]\s.*?\s[\d.]+: (\w+):")


_mounts = 0       # Tracers open on a tracefs this module mounted


def ensure_tracefs():
    """Mount tracefs if it is not (a fresh machine has none); returns True if
    this call mounted it, so that release_tracefs() puts the machine back."""
    global _mounts
    if _mounts:
        _mounts += 1
        return True
    if not os.path.exists(os.path.join(TRACEFS, "instances")):
        subprocess.run(["mount", "-t", "tracefs", "nodev", TRACEFS], check=True)
        _mounts = 1
        return True
    return False


def release_tracefs():
    global _mounts
    _mounts -= 1
    if _mounts == 0:
        subprocess.run(["umount", TRACEFS], check=True)


def tasks_of(pid):
    """Thread ids of a live process."""
    return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


class Tracer:
    def __init__(self, events, filters=None, buffer_kb=8192):
        self.mounted = ensure_tracefs()
        self.events = list(events)
        self.filters = dict(filters or {})
        self.dir = os.path.join(TRACEFS, "instances", f"kwtest-{os.getpid()}-{next(_seq)}")
        try:
            os.mkdir(self.dir)
        except BaseException:
            self._release()
            raise
        self.enabled = False
        try:
            _write(self._p("buffer_size_kb"), str(buffer_kb))
            for ev in self.events:
                if not os.path.isdir(self._p("events", ev)):
                    raise FileNotFoundError(f"tracepoint {ev} not available")
                if ev in self.filters:
                    _write(self._p("events", ev, "filter"), self.filters[ev])
        except BaseException:
            self.close()
            raise

    def _p(self, *parts):
        return os.path.join(self.dir, *parts)

    def set_pids(self, pids):
        _write(self._p("set_event_pid"), " ".join(str(p) for p in pids))

    def enable(self):
        for ev in self.events:
            _write(self._p("events", ev, "enable"), "1")
        self.enabled = True

    def disable(self):
        if self.enabled:
            for ev in self.events:
                _write(self._p("events", ev, "enable"), "0")
            self.enabled = False

    def lost(self):
        n = 0
        for cpu in os.listdir(self._p("per_cpu")):
            with open(self._p("per_cpu", cpu, "stats")) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    if k.strip() in ("overrun", "dropped events"):
                        n += int(v)
        return n

    def lines(self):
        with open(self._p("trace")) as f:
            return [l for l in f if not l.startswith("#")]

    def counts(self, tids=None):
        """Events per name (optionally only from the given thread ids)."""
        self.disable()
        c = collections.Counter()
        for line in self.lines():
            m = _LINE.search(line)
            if m and (tids is None or int(m.group(1)) in tids):
                c[m.group(2)] += 1
        return c

    def _release(self):
        if self.mounted:
            self.mounted = False
            release_tracefs()

    def close(self):
        try:
            self.disable()
        finally:
            try:
                if os.path.isdir(self.dir):
                    os.rmdir(self.dir)
            finally:
                self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
