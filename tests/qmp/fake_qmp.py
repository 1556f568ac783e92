"""A fake QEMU for tests/sources/test_qmp.py.

Run with argv[0] = "qemu-system-x86_64" and a QEMU-like command line that
names a QMP socket (-chardev socket,id=qmp,path=P,server=on + -mon
chardev=qmp,mode=control, or -qmp unix:P,server=on).  kvmwatch finds the
process by that command line and connects to P, where this program serves
QMP in one of these --mode s:

  good       complete, exact data (disks, balloon, memory, status, KVM stats)
             with an asynchronous event and escaped keys on the way
  errors     every query answers {"error": ...}
  malformed  query-block's reply has a trailing comma
  truncated  half of query-blockstats' reply, then the connection closes
  garbage    the greeting is not JSON
  deep       query-status' reply nests 100000 arrays
  huge       query-status' reply is larger than kvmwatch's 4 MiB limit
  silent     accepts, never greets (like a monitor busy with another client)
  slow       greets, then never answers
  trickle    greets, then answers one byte every 100 ms, never finishing
  badid      answers with the wrong id
  nul        query-status' status holds U+0000
  flood      300 disks, 10,000 KVM stats, error text with a newline and
             terminal escapes (a hostile monitor: kvmwatch must cap it)

--serve none: listen nowhere (the socket path is someone else's or missing).
--log FILE: append each command received.  --accepts FILE: append a line
per connection accepted.  Prints "ready" once listening.
"""
import json
import os
import socket
import sys

GREETING = {"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"},
                    "capabilities": ["oob"]}}

ZERO_STATS = {k: 0 for k in (
    "rd_bytes", "wr_bytes", "rd_operations", "wr_operations", "flush_operations", "rd_total_time_ns",
    "wr_total_time_ns", "flush_total_time_ns", "wr_highest_offset", "unmap_operations", "unmap_bytes",
    "unmap_total_time_ns", "failed_rd_operations", "failed_wr_operations", "failed_flush_operations",
    "invalid_rd_operations", "invalid_wr_operations", "invalid_flush_operations", "rd_merged", "wr_merged")}

SCSI0 = dict(ZERO_STATS, rd_bytes=1000001, wr_bytes=2000002, rd_operations=11, wr_operations=22,
             flush_operations=3, rd_total_time_ns=44000000, wr_total_time_ns=55000000,
             flush_total_time_ns=6000000, wr_highest_offset=7340032, unmap_operations=7, unmap_bytes=8192,
             unmap_total_time_ns=900, failed_rd_operations=1, failed_wr_operations=2, failed_flush_operations=0,
             invalid_rd_operations=4, invalid_wr_operations=5, invalid_flush_operations=6, idle_time_ns=123456789,
             timed_stats=[], account_invalid=True, account_failed=True)

REPLIES = {
    "query-status": {"status": "paused", "singlestep": False, "running": False},
    "query-block": [
        {"device": "drive-scsi0", "qdev": "scsi0", "locked": False, "removable": False, "type": "unknown",
         "io-status": "ok",
         "inserted": {"image": {"virtual-size": 10737418240, "actual-size": 1234567168, "filename": "/x.qcow2",
                                "format": "qcow2"}, "node-name": "#block123", "file": "/x.qcow2", "drv": "qcow2"}},
        {"device": "drive-ide2", "qdev": "ide2", "locked": False, "removable": True, "type": "unknown",
         "tray_open": False},
        {"device": "", "qdev": "/machine/peripheral/virtio-disk1/virtio-backend", "locked": False,
         "removable": False, "type": "unknown",
         "inserted": {"image": {"virtual-size": 1048576, "actual-size": 4096, "format": "raw"},
                      "node-name": "libvirt-1-format", "drv": "raw"}},
    ],
    "query-blockstats": [
        {"device": "drive-scsi0", "node-name": "#block123", "qdev": "scsi0", "stats": SCSI0,
         "parent": {"stats": ZERO_STATS, "node-name": "#block017"}},
        {"device": "drive-ide2", "qdev": "ide2", "stats": ZERO_STATS},
        {"device": "", "node-name": "libvirt-1-format", "qdev": "/machine/peripheral/virtio-disk1/virtio-backend",
         "stats": dict(ZERO_STATS, rd_operations=9)},
    ],
    "query-balloon": {"actual": 1073741824},
    "query-memory-size-summary": {"base-memory": 2147483648, "plugged-memory": 536870912},
    "query-stats-schemas": [
        {"provider": "kvm", "target": "vcpu", "stats": [
            {"name": "exits", "type": "cumulative", "exponent": 0},
            {"name": "halt_wait_hist", "type": "log2-histogram", "unit": "seconds", "base": 10, "exponent": -9},
            {"name": "blocking", "type": "instant", "unit": "boolean", "exponent": 0},
            {"name": "halt_poll_max", "type": "peak", "exponent": 0}]},
        {"provider": "kvm", "target": "vm", "stats": [
            {"name": "pages_4k", "type": "instant", "exponent": 0},
            {"name": "max_mmu_rmap_size", "type": "peak", "exponent": 0},
            {"name": "remote_tlb_flush", "type": "cumulative", "exponent": 0}]},
    ],
    "query-cpus-fast": [
        {"thread-id": 1, "qom-path": "/machine/unattached/device[0]", "cpu-index": 0, "target": "x86_64"},
        {"thread-id": 2, "qom-path": "/machine/unattached/device[2]", "cpu-index": 1, "target": "x86_64"},
    ],
}

STATS_VCPU = [
    {"provider": "kvm", "qom-path": "/machine/unattached/device[2]", "stats": [
        {"name": "exits", "value": 23}, {"name": "halt_wait_hist", "value": [4, 0]},
        {"name": "blocking", "value": False}, {"name": "halt_poll_max", "value": 50},
        {"name": "not_in_schema", "value": 99}]},
    {"provider": "kvm", "qom-path": "/machine/unattached/device[0]", "stats": [
        {"name": "exits", "value": 100}, {"name": "halt_wait_hist", "value": [1, 2, 3]},
        {"name": "blocking", "value": True}, {"name": "halt_poll_max", "value": 40}]},
    {"provider": "kvm", "qom-path": "/machine/unattached/device[9]", "stats": [{"name": "exits", "value": 5000}]},
]
STATS_VM = [{"provider": "kvm", "stats": [
    {"name": "pages_4k", "value": 512}, {"name": "max_mmu_rmap_size", "value": 7},
    {"name": "remote_tlb_flush", "value": 9}]}]


def arg(name, default=None):
    a = sys.argv
    return a[a.index(name) + 1] if name in a and a.index(name) + 1 < len(a) else default


def socket_path():
    for i, a in enumerate(sys.argv):
        if a == "-chardev":
            for el in sys.argv[i + 1].split(","):
                if el.startswith("path="):
                    return el[5:]
        if a == "-qmp":
            return sys.argv[i + 1].split(",")[0][5:]
    raise SystemExit("no socket path on the command line")


FLOOD_DISKS, FLOOD_STATS = 300, 10000
FLOOD_ERROR = "no\nkvmwatch: error: FORGED line \x1b[2J\x1b]0;title\x07 \u0085end"


def flood_reply(name, cmd):
    if name == "query-block":
        return {"return": [{"device": "fd%d" % i, "qdev": "fd%d" % i, "locked": False, "removable": False,
                            "type": "unknown", "inserted": {"image": {"virtual-size": 1 << 20, "actual-size": 4096},
                                                            "node-name": "n%d" % i}}
                           for i in range(FLOOD_DISKS)]}
    if name == "query-blockstats":
        return {"return": [{"device": "fd%d" % i, "node-name": "n%d" % i, "stats": dict(ZERO_STATS, rd_bytes=i)}
                           for i in range(FLOOD_DISKS)]}
    if name == "query-stats-schemas":
        return {"return": [{"provider": "kvm", "target": "vm",
                            "stats": [{"name": "flood_%d" % i, "type": "cumulative", "unit": "none", "base": 10,
                                       "exponent": 0} for i in range(FLOOD_STATS)]}]}
    if name == "query-stats" and cmd.get("arguments", {}).get("target") == "vm":
        return {"return": [{"provider": "kvm", "stats": [{"name": "flood_%d" % i, "value": i}
                                                         for i in range(FLOOD_STATS)]}]}
    return {"error": {"class": "GenericError", "desc": FLOOD_ERROR}}


def enc(obj):
    return (json.dumps(obj) + "\r\n").encode()


def serve_one(conn, mode, log):
    if mode == "silent":
        while conn.recv(4096):
            pass
        return
    if mode == "garbage":
        conn.sendall(b"Hello, I am not QMP\r\n")
        conn.recv(4096)
        return
    conn.sendall(enc(GREETING))
    f = conn.makefile("rb")
    for line in f:
        cmd = json.loads(line)
        name, cid = cmd.get("execute"), cmd.get("id")
        if log:
            with open(log, "a") as lf:
                lf.write(json.dumps(cmd) + "\n")
        if name == "qmp_capabilities":
            conn.sendall(enc({"return": {}, "id": cid}))
            continue
        if mode == "slow":
            continue
        if mode == "trickle":
            import time
            conn.sendall(b'{"return": ')
            while True:
                time.sleep(0.1)
                conn.sendall(b" ")
        if mode == "badid":
            conn.sendall(enc({"return": {}, "id": cid + 1000}))
            continue
        if mode == "errors":
            conn.sendall(enc({"error": {"class": "GenericError", "desc": "not today"}, "id": cid}))
            continue
        if mode == "deep" and name == "query-status":
            conn.sendall(b"[" * 100000 + b"\r\n")
            continue
        if mode == "huge" and name == "query-status":
            conn.sendall(b'{"return": {"status": "' + b"x" * (5 << 20) + b'"}, "id": %d}\r\n' % cid)
            continue
        if mode == "nul" and name == "query-status":
            conn.sendall(b'{"return": {"status": "run\\u0000ning"}, "id": %d}\r\n' % cid)
            continue
        if mode == "flood":
            reply = flood_reply(name, cmd)
            reply["id"] = cid
            conn.sendall(enc(reply))
            continue
        if name == "query-stats":
            target = cmd.get("arguments", {}).get("target")
            reply = {"return": STATS_VCPU if target == "vcpu" else STATS_VM, "id": cid}
        elif name in REPLIES:
            reply = {"return": REPLIES[name], "id": cid}
        else:
            reply = {"error": {"class": "CommandNotFound", "desc": "The command %s has not been found" % name},
                     "id": cid}
        data = enc(reply)
        if name == "query-block":
            # an asynchronous event first, which the client must skip
            conn.sendall(enc({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "BLOCK_IO_ERROR",
                              "data": {"device": "drive-scsi0", "operation": "read", "action": "report"}}))
            if mode == "malformed":
                data = data.replace(b"}]", b"},]", 1)
        if name == "query-blockstats":
            data = data.replace(b'"rd_bytes"', b'"rd\\u005fbytes"')  # keys are decoded
            if mode == "truncated":
                conn.sendall(data[:len(data) // 2])
                return
        conn.sendall(data)


def main():
    mode = arg("--mode", "good")
    log = arg("--log")
    accepts = arg("--accepts")
    if arg("--serve") == "none":
        print("ready", flush=True)
        sys.stdin.read()
        return
    path = socket_path()
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if len(path) >= 100:  # beyond sun_path: bind in its directory
        os.chdir(os.path.dirname(path))
        path = os.path.basename(path)
    srv.bind(path)
    srv.listen(1)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        if accepts:
            with open(accepts, "a") as af:
                af.write("accepted\n")
        try:
            serve_one(conn, mode, log)
        except (BrokenPipeError, ConnectionResetError, ValueError):
            pass
        finally:
            conn.close()


if __name__ == "__main__":
    main()
