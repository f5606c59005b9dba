#!/usr/bin/python3
"""TAP: query-vmx-last-failure and the trace name the VM-entry check that failed.

Runs the entry-names guest (guest-tests/vmx/entry-names.c), whose five
VMLAUNCH/VMRESUMEs fail on five different checks of Intel SDM Vol. 3C
chapter 27.  After each the guest prints "STEP n" and waits for an NMI;
meanwhile this script reads query-vmx-last-failure and checks the rule
(the SDM section), the C condition the emulator reports and the outcome
(VMfail number, or exit reason and qualification).  At the end, HMP
"info pml" and the vmx_entry_check_failed trace (-trace, -D) must show
the same.  Usage: test-entry-checks.py QEMU GUEST_DIR
"""
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from console import wait_text  # noqa: E402
from qmp import QMP  # noqa: E402
from tap import done, ok  # noqa: E402

qemu, guest_dir = sys.argv[1], sys.argv[2]
elf = os.path.join(guest_dir, "entry-names.elf")

# step: (rule, text the condition contains, result, error or (reason, qualification))
EXPECTED = {
    1: ("27.2.1.1", "CR3_TARGET_COUNT) > 4", "vmfail", 7),
    2: ("27.2.3", "HOST_CS_SELECTOR) & 7", "vmfail", 8),
    3: ("27.3.1.4", "rflags & 2", "entry-failure", (33, 0)),
    4: ("27.4", "vmx_load_msr", "entry-failure", (34, 1)),
    5: ("27.1", "VMCS_LAUNCH_LAUNCHED", "vmfail", 5),
}


def outcome(f):
    if f.get("result") == "vmfail":
        return "vmfail", f.get("error")
    if f.get("result") == "entry-failure":
        return "entry-failure", (f.get("exit-reason"), f.get("qualification"))
    return f.get("result"), None


with tempfile.TemporaryDirectory() as tmp:
    con = os.path.join(tmp, "con")
    sock = os.path.join(tmp, "qmp")
    log = os.path.join(tmp, "trace")
    p = subprocess.Popen([qemu, "-M", "pc", "-nodefaults", "-display", "none", "-no-reboot",
                          "-accel", "tcg", "-m", "128", "-cpu", "Skylake-Server,+vmx",
                          "-kernel", elf, "-debugcon", "file:" + con, "-serial", "none",
                          "-trace", "vmx_entry_check_failed", "-D", log,
                          "-qmp", "unix:%s,server=on,wait=off" % sock, "-S"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        qmp = QMP(sock)
        first = qmp.cmd("query-vmx-last-failure")
        ok(len(first) == 1 and first[0]["cpu-index"] == 0 and first[0]["failures"] == 0 and
           set(first[0]) == {"cpu-index", "failures"},
           "before any VM entry: one vCPU, no failure, no rule (%s)" % first)
        qmp.cmd("cont")
        seen = []
        for step in sorted(EXPECTED):
            rule, expr, result, detail = EXPECTED[step]
            if not ok(wait_text(con, re.escape("STEP %d\n" % step), 60), "the guest reached step %d" % step):
                break
            f = qmp.cmd("query-vmx-last-failure")[0]
            print("# step %d: %s" % (step, f))
            seen.append(f.get("rule"))
            ok(f.get("rule") == rule, "step %d names SDM %s (got %s)" % (step, rule, f.get("rule")))
            ok(expr in f.get("expression", ""), "step %d: the condition mentions '%s' (%s)"
               % (step, expr, f.get("expression")))
            ok(outcome(f) == (result, detail) and f["failures"] == step,
               "step %d: %s %s, failure number %d (got %s, %d)"
               % (step, result, detail, step, outcome(f), f["failures"]))
            qmp.cmd("inject-nmi")
        ok(len(seen) == len(EXPECTED) and len(set(seen)) == len(seen),
           "each step named a different rule (%s)" % ", ".join(str(s) for s in seen))
        ok(wait_text(con, re.escape("END:"), 60), "the guest finished")
        text = open(con, errors="replace").read()
        end = [line for line in text.splitlines() if "END:" in line]
        ok(end and end[-1].split("END:")[1].split() == ["5", "0"],
           "the guest saw the architectural results of all 5 failures (%s)"
           % (end[-1] if end else "no END"))
        info = qmp.cmd("human-monitor-command", **{"command-line": "info pml"})
        last = [line for line in info.splitlines() if "last failed VM entry" in line]
        print("".join("# " + line + "\n" for line in last))
        ok(len(last) == 1 and "rule 27.1:" in last[0] and "VMfailValid(5)" in last[0],
           "HMP info pml shows the last failure and its rule")
        qmp.close()
    finally:
        p.kill()
        p.wait()
    trace = open(log, errors="replace").read() if os.path.exists(log) else ""
    lines = [line for line in trace.splitlines() if "vmx_entry_check_failed" in line]
    print("".join("# " + line + "\n" for line in lines))
    ok(len(lines) == 5 and all("rule %s:" % EXPECTED[i + 1][0] in lines[i] for i in range(len(lines))),
       "the vmx_entry_check_failed trace named the 5 rules in order (%d lines)" % len(lines))

done()
