"""The kernel's uapi headers as kvmwatch's exit reason names must follow
them (tests/frontends/test_exit_reasons.py, the --replay tests): parsed from
the installed headers (linux-libc-dev), independently of the C compiler."""
import os
import re

ASM = "/usr/include/x86_64-linux-gnu/asm"
HEADERS = {"vmx": os.path.join(ASM, "vmx.h"), "svm": os.path.join(ASM, "svm.h"),
           "kvm": os.path.join(ASM, "kvm.h"), "linux_kvm": "/usr/include/linux/kvm.h"}


def have_headers():
    return all(os.path.exists(p) for p in HEADERS.values())


MISSING = "needs the x86 uapi headers (linux-libc-dev): %s" % ", ".join(HEADERS.values())

DEFINE = re.compile(r"^#define\s+(\w+)\s+(-?(?:0[xX][0-9a-fA-F]+|\d+))\b")


def read(path):
    return open(path).read()


def defines(text):
    """Every #define NAME NUMBER of a header: {name: value}."""
    out = {}
    for line in text.splitlines():
        m = DEFINE.match(line)
        if m:
            out[m.group(1)] = int(m.group(2), 0)
    return out


def table(text, macro, syms):
    """The entries of a { CODE, "name" } list macro, CODE a define or
    DEFINE + DEFINE, in order: [(code as kvm_exit's 32-bit exit_reason, name)]."""
    m = re.search(r"#define\s+%s\s*\\\n(.*?)(?<!\\)\n" % macro, text, re.S)
    assert m, "%s not found" % macro
    entries = []
    for expr, name in re.findall(r"\{\s*([^,{}]+?)\s*,\s*\"([^\"]*)\"\s*\}", m.group(1)):
        code = sum(syms[t.strip()] for t in expr.split("+"))
        entries.append((code & 0xffffffff, name))
    assert entries
    return entries


def kernel_expectation(isa):
    """{code: (name, source)} kvmwatch must give for a VMX/SVM code: the
    kernel table's name (first one for a code named twice), else the
    define's name without its prefix (SVM lower case, like its table)."""
    vmx, svm, kvm = read(HEADERS["vmx"]), read(HEADERS["svm"]), read(HEADERS["kvm"])
    syms = {**defines(kvm), **defines(vmx), **defines(svm)}
    text, macro, prefix = (vmx, "VMX_EXIT_REASONS", "EXIT_REASON_") if isa == "vmx" else \
        (svm, "SVM_EXIT_REASONS", "SVM_EXIT_")
    want = {}
    for code, name in table(text, macro, syms):
        want.setdefault(code, (name, "table"))
    for sym, value in defines(text).items():
        if sym.startswith(prefix) and not sym.endswith("_REASONS"):
            name = sym[len(prefix):]
            want.setdefault(value & 0xffffffff, (name.lower() if isa == "svm" else name, "define"))
    return want


def user_expectation():
    """KVM_EXIT_* reasons: the block of defines from KVM_EXIT_UNKNOWN on
    (not the sub-codes defined elsewhere, KVM_EXIT_IO_IN and such)."""
    lines = read(HEADERS["linux_kvm"]).splitlines()
    start = next(i for i, l in enumerate(lines) if re.match(r"#define\s+KVM_EXIT_UNKNOWN\b", l))
    want = {}
    for l in lines[start:]:
        m = re.match(r"#define\s+KVM_EXIT_(\w+)\s+(\d+)", l)
        if not m:
            break
        want[int(m.group(2))] = (m.group(1), "define")
    assert want[0] == ("UNKNOWN", "define") and want[2] == ("IO", "define") and len(want) > 30
    # kvmwatch's own: KVM_RUN failing (EINTR, other errors), and the one
    # reason newer than these headers it names (KVM_EXIT_MEMORY_FAULT, 6.8)
    want[0x10000] = ("EINTR", "kvmwatch")
    want[0x10001] = ("ERROR", "kvmwatch")
    want.setdefault(39, ("MEMORY_FAULT", "kvmwatch"))
    return want
