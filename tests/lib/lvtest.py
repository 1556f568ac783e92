"""A private libvirtd for tests: virtlogd + libvirtd started by hand (no
systemd) in a mount namespace of their own, where /run/libvirt,
/var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt are
bind mounts of a temp dir.  Other daemons and domains on the machine are
neither seen nor touched; clients reach it with
qemu:///system?socket=<tmp>/run/libvirt-sock."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

from conftest import build_path

BINDS = ("run:/run/libvirt", "lib:/var/lib/libvirt", "cache:/var/cache/libvirt",
         "log:/var/log/libvirt", "etc:/etc/libvirt")

QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
"""


class Libvirtd:
    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="kwlv-")
        self.holder = None
        self.virtlogd = None
        self.libvirtd = None
        self.sock = os.path.join(self.tmp, "run", "libvirt-sock")
        self.uri = "qemu:///system?socket=" + self.sock
        self.piddir = os.path.join(self.tmp, "run", "qemu")

    def _ns(self, args, **kw):
        return subprocess.Popen(["nsenter", "-t", str(self.holder.pid), "-m", "--"] + args, **kw)

    def start(self):
        for d in ("run", "lib", "cache", "log"):
            os.makedirs(os.path.join(self.tmp, d), exist_ok=True)
        shutil.copytree("/etc/libvirt", os.path.join(self.tmp, "etc"), symlinks=True)
        auto = os.path.join(self.tmp, "etc", "qemu", "networks", "autostart")
        shutil.rmtree(auto, ignore_errors=True)  # no default network, no dnsmasq
        with open(os.path.join(self.tmp, "etc", "qemu.conf"), "w") as f:
            f.write(QEMU_CONF)
        for b in BINDS:
            os.makedirs(b.split(":")[1], exist_ok=True)
        mounts = " && ".join("mount --bind %s/%s %s" % (self.tmp, b.split(":")[0], b.split(":")[1])
                             for b in BINDS)
        # the holder keeps the namespace alive; it exits when its stdin closes
        self.holder = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", mounts + " && echo ok && exec cat"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.holder.stdout.readline().strip() != "ok":
            raise RuntimeError("failed to set up the libvirt mount namespace")
        self.virtlogd = self._ns(["virtlogd", "--pid-file", os.path.join(self.tmp, "virtlogd.pid")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.start_libvirtd()
        return self

    def start_libvirtd(self):
        self.libvirtd = self._ns(["libvirtd", "--pid-file", os.path.join(self.tmp, "libvirtd.pid")],
                                 stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(self.tmp, "libvirtd.err"), "a"))
        self.libvirtd.outlives_test = True   # the fixture stops it (conftest reaper)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            if self.virsh("version", check=False).returncode == 0:
                return
            if self.libvirtd.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError("libvirtd did not start: " +
                           open(os.path.join(self.tmp, "libvirtd.err")).read()[-2000:])

    def kill_libvirtd(self):
        self.libvirtd.send_signal(signal.SIGKILL)
        self.libvirtd.wait()

    def virsh(self, *args, check=True):
        r = subprocess.run(["virsh", "-c", self.uri] + list(args), capture_output=True, text=True, timeout=60)
        if check and r.returncode != 0:
            raise AssertionError("virsh %s failed: %s" % (args, r.stderr))
        return r

    def qemu_pid(self, name):
        with open(os.path.join(self.piddir, name + ".pid")) as f:
            return int(f.read().strip())

    def stop(self):
        if self.libvirtd and self.libvirtd.poll() is None:
            try:
                out = self.virsh("list", "--name", check=False).stdout.split()
                for dom in out:
                    self.virsh("destroy", dom, check=False)
            finally:
                self.libvirtd.terminate()
                try:
                    self.libvirtd.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.libvirtd.kill()
                    self.libvirtd.wait()
        for p in (self.virtlogd,):
            if p and p.poll() is None:
                p.terminate()
                p.wait(timeout=15)
        if self.holder:
            self.holder.stdin.close()
            self.holder.wait(timeout=15)
        shutil.rmtree(self.tmp, ignore_errors=True)


def domain_xml(name, uuid, disk, tap, kernel=None, vcpus=1, mem_mib=64):
    kernel = kernel or build_path("tests", "lv-idle-kernel.elf")
    return """<domain type='kvm'>
  <name>%(name)s</name>
  <uuid>%(uuid)s</uuid>
  <memory unit='MiB'>%(mem)d</memory>
  <currentMemory unit='MiB'>%(mem)d</currentMemory>
  <vcpu>%(vcpus)d</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>%(kernel)s</kernel></os>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%(disk)s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='ethernet'>
      <target dev='%(tap)s'/>
      <model type='virtio'/>
    </interface>
    <memballoon model='virtio'><stats period='1'/></memballoon>
  </devices>
</domain>
""" % dict(name=name, uuid=uuid, disk=disk, tap=tap, kernel=kernel, vcpus=vcpus, mem=mem_mib)


def create_domain(lv, prefix, vcpus=2, mem_mib=96):
    """A running KVM domain PREFIX-<pid> on lv with a 2 MiB raw disk and a
    tap: its name, uuid, tap, disk and QEMU pid."""
    import uuid as uuidlib
    name = "%s-%d" % (prefix, os.getpid())
    uid = str(uuidlib.uuid4())
    tap = "%s%d" % (prefix.replace("-", "")[:6], os.getpid() % 100000)
    disk = os.path.join(lv.tmp, "%s-disk.raw" % prefix)
    with open(disk, "wb") as f:
        f.truncate(2 * 1024 * 1024)
    xml = os.path.join(lv.tmp, "%s-dom.xml" % prefix)
    with open(xml, "w") as f:
        f.write(domain_xml(name, uid, disk, tap, vcpus=vcpus, mem_mib=mem_mib))
    lv.virsh("create", xml)
    return {"name": name, "uuid": uid, "tap": tap, "disk": disk, "pid": lv.qemu_pid(name)}
