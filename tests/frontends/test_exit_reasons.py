"""kvmwatch's exit reason names (`kvmwatch --list-exit-reasons`, what -e
prints) checked against the kernel's uapi headers kvmwatch is built with
(linux-libc-dev): every VMX/SVM code in VMX_EXIT_REASONS/SVM_EXIT_REASONS has
the kernel's name (what its kvm_exit trace prints), every other
EXIT_REASON_*/SVM_EXIT_* define is named after itself, every KVM_EXIT_*
reason of <linux/kvm.h> is named, and kvmwatch names nothing else but the
few it documents as its own."""
import json
import os
import subprocess

import pytest

from conftest import ROOT
from kwtest import KVMWATCH, kvmwatch
from kwuapi import MISSING, have_headers, kernel_expectation, user_expectation

pytestmark = pytest.mark.skipif(not have_headers(), reason=MISSING)


def list_json(*args):
    r = kvmwatch(*args, "-o", "json", check=True)
    doc = json.loads(r.stdout)
    assert doc["schema"] == 1 and "hostname" in doc
    return doc["exit_reasons"]


def listed(*isas):
    return list_json("--list-exit-reasons", *isas)


def as_map(rows, isa):
    got = {}
    for e in rows:
        assert e["isa"] == isa, e
        assert e["code"] not in got, "code %#x listed twice" % e["code"]
        got[e["code"]] = (e["name"], e["source"])
    return got


@pytest.mark.parametrize("isa", ["vmx", "svm"])
def test_kernel_exit_reasons_match_the_uapi_headers(isa):
    got = as_map(listed(isa), isa)
    want = kernel_expectation(isa)
    missing = {c: want[c] for c in want if c not in got}
    invented = {c: got[c] for c in got if c not in want}
    wrong = {c: (got[c], want[c]) for c in got if c in want and got[c] != want[c]}
    assert not missing, "codes the headers define that kvmwatch does not name: %s" % missing
    assert not invented, "codes kvmwatch names that the headers do not define: %s" % invented
    assert not wrong, "names differing from the headers' (kvmwatch, headers): %s" % wrong
    # the kernel's tables name nearly all; spot checks of what -e prints
    tables = {c for c, (n, s) in want.items() if s == "table"}
    assert len(tables) > 60
    if isa == "vmx":
        assert got[48] == ("EPT_VIOLATION", "table") and got[30] == ("IO_INSTRUCTION", "table")
        assert got[12] == ("HLT", "table")
    else:
        assert got[0x400] == ("npf", "table") and got[0x7b] == ("io", "table") and got[0x78] == ("hlt", "table")
        assert got[0xffffffff] == ("invalid_guest_state", "table")    # SVM_EXIT_ERR, -1
        assert got[0x40 + 14] == ("PF excp", "table")                  # SVM_EXIT_EXCP_BASE + PF_VECTOR


def test_user_exit_reasons_match_linux_kvm_h():
    got = as_map(listed("user"), "user")
    assert got == user_expectation()


def test_list_text_equals_json_and_selects_isas():
    everything = listed()
    order = ["vmx", "svm", "user"]
    assert [e["isa"] for e in everything] == sorted((e["isa"] for e in everything), key=order.index)
    for isa in order:
        rows = [e for e in everything if e["isa"] == isa]
        assert rows == listed(isa) == list_json("--list-exit-reasons=" + isa)
        assert [e["code"] for e in rows] == sorted(e["code"] for e in rows)
    assert listed("svm", "vmx") == [e for e in everything if e["isa"] != "user"]
    text = kvmwatch("--list-exit-reasons", check=True).stdout.splitlines()
    assert text[0].split() == ["ISA", "CODE", "HEX", "NAME", "SOURCE"]
    parsed = []
    for line in text[1:]:
        isa, code, hexa, rest = line[:4].strip(), int(line[5:15]), line[16:26].strip(), line[28:]
        name, source = rest.rsplit(None, 1)
        assert int(hexa, 16) == code
        parsed.append({"isa": isa, "code": code, "name": name.strip(), "source": source})
    assert parsed == everything


@pytest.mark.parametrize("args,msg", [
    (["--list-exit-reasons=bogus"], "invalid --list-exit-reasons 'bogus'"),
    (["--list-exit-reasons", "-o", "prometheus"], "--list-exit-reasons prints text or json"),
])
def test_list_bad_arguments(args, msg):
    r = kvmwatch(*args)
    assert r.returncode != 0 and r.stdout == ""
    assert msg in r.stderr


def test_bash_completion_knows_the_options():
    comp = os.path.join(ROOT, "contrib", "kvmwatch.bash-completion")

    def complete(*words):
        script = 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _kvmwatch; echo "${COMPREPLY[*]}"'
        r = subprocess.run(["bash", "-c", script, "x", comp, KVMWATCH] + list(words), capture_output=True,
                           text=True, timeout=30, check=True)
        return r.stdout.split()
    assert complete("--list-exit-reasons", "s") == ["svm"]
    assert complete("--list-exit") == ["--list-exit-reasons"] and complete("--repl") == ["--replay"]
    assert complete("--replay", os.path.join(ROOT, "READM")) == [os.path.join(ROOT, "README.md")]
