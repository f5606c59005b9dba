#!/usr/bin/python3
"""TAP: a pending posted interrupt, a recognized virtual interrupt and a
shadow VMCS survive migration while L2 runs.

Runs guest-tests/vmx-pi-migrate.elf.  Once it prints "migrate-now" its
L2 is about to spin with IF = 0: 74H posted in the PIR with ON set, the
notification held in L1's IRR by L1's TPR, RVI 51H recognized, and the
link pointer naming a shadow VMCS.  The test stops the machine inside
l2_main, migrates it to a file, restores it in a new QEMU with -incoming,
and relays the restored guest's checks: nothing delivered before, each
vector exactly once after, PIR and ON cleared, and L2's shadowed VMREAD.
Usage: test-vmx-migrate-pi.py QEMU GUEST_DIR
"""
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import migrate_lib  # noqa: E402
from migrate_lib import wait_text  # noqa: E402
from tap import done, ok  # noqa: E402

qemu, guest_dir = sys.argv[1], sys.argv[2]
elf = os.path.join(guest_dir, "vmx-pi-migrate.elf")


def start(tmp, tag, extra):
    return migrate_lib.start(qemu, elf, tmp, tag, ["-accel", "tcg", "-cpu", "Skylake-Server,+vmx"],
                             extra)


with tempfile.TemporaryDirectory(prefix="qemu-pml-migrate-pi-") as tmp:
    lo, hi = migrate_lib.symbol_range(os.path.join(guest_dir, "vmx-pi-migrate.elf64"), "l2_main")
    state = os.path.join(tmp, "state")
    p1, con1, q1 = start(tmp, "src", [])
    ok(wait_text(con1, "migrate-now", 60, poll=0.02), "the source guest is about to enter its L2")
    rip = None
    for attempt in range(10):
        time.sleep(0.1)
        q1.cmd("stop")
        regs = q1.cmd("human-monitor-command", **{"command-line": "info registers"})
        m = re.search(r"RIP=([0-9a-f]+)", regs)
        rip = int(m.group(1), 16) if m else None
        if rip is not None and lo <= rip < hi:
            break
        q1.cmd("cont")
    ok(rip is not None and lo <= rip < hi,
       "stopped in L2 (RIP %#x in l2_main %#x-%#x)" % (rip or 0, lo, hi))
    v0 = q1.cmd("query-pml-stats")["vcpus"][0]
    ok(v0["vmx-operation"] and v0["non-root"], "stopped in VMX non-root operation (%s)" % v0)
    p2, con2, q2 = migrate_lib.migrate_and_restore(q1, p1, state,
                                                   lambda extra: start(tmp, "dst", extra))
    ok(q2.cmd("query-pml-stats")["vcpus"][0]["non-root"],
       "restored: still in VMX non-root operation")
    q2.cmd("cont")
    migrate_lib.relay_guest_end(p2, con2)

done()
