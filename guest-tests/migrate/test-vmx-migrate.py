#!/usr/bin/python3
"""TAP: VMX state survives migration (savevm/loadvm) while L2 runs.

Runs guest-tests/vmx-migrate.elf, stops it while its L2 runs (RIP inside
l2_main), migrates it to a file, quits, restores it in a new QEMU with
-incoming, and checks that the restored guest finishes with every
assertion passing.  Usage: test-vmx-migrate.py QEMU GUEST_DIR
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
elf = os.path.join(guest_dir, "vmx-migrate.elf")


def start(tmp, tag, extra):
    return migrate_lib.start(qemu, elf, tmp, tag, ["-accel", "tcg", "-cpu", "Skylake-Server,+vmx"],
                             extra)


with tempfile.TemporaryDirectory(prefix="qemu-pml-migrate-") as tmp:
    lo, hi = migrate_lib.symbol_range(os.path.join(guest_dir, "vmx-migrate.elf64"), "l2_main")
    state = os.path.join(tmp, "state")
    p1, con1, q1 = start(tmp, "src", [])
    ok(wait_text(con1, "migrate-now", 60), "the source guest started its L2")
    rip = None
    for attempt in range(20):
        time.sleep(0.3)
        q1.cmd("stop")
        regs = q1.cmd("human-monitor-command", **{"command-line": "info registers"})
        m = re.search(r"RIP=([0-9a-f]+)", regs)
        rip = int(m.group(1), 16) if m else None
        if rip is not None and lo <= rip < hi:
            break
        q1.cmd("cont")
    ok(rip is not None and lo <= rip < hi,
       "stopped in VMX non-root operation (RIP %#x in l2_main %#x-%#x)" % (rip or 0, lo, hi))
    stats = q1.cmd("query-pml-stats")
    v0 = stats["vcpus"][0]
    ok(v0["vmx-operation"] and v0["non-root"] and v0["pml-enabled"] and 0 <= v0.get("pml-index", -1) <= 511,
       "query-pml-stats while stopped: VMX non-root with PML on, index in range (%s)" % v0)
    ok(stats["entries"] >= 1 and stats["entries"] == v0["entries"] and stats["full-exits"] == 0,
       "PML entries were counted before migration (%d)" % stats["entries"])
    hmp = q1.cmd("human-monitor-command", **{"command-line": "info pml"})
    ok(re.search(r"^0 +on +non-root +on ", hmp, re.M) is not None, "HMP info pml shows the vCPU in non-root operation")
    entries_before = stats["entries"]
    p2, con2, q2 = migrate_lib.migrate_and_restore(q1, p1, state,
                                                   lambda extra: start(tmp, "dst", extra))
    ok(q2.cmd("query-pml-stats")["entries"] == entries_before,
       "the PML counters travelled with the migration")
    q2.cmd("reset-pml-stats")
    after_reset = q2.cmd("query-pml-stats")
    ok(after_reset["entries"] == 0 and after_reset["vcpus"][0]["entries"] == 0 and
       after_reset["vcpus"][0]["non-root"],
       "reset-pml-stats zeroes the counters and leaves the VMX state alone")
    q2.cmd("cont")
    migrate_lib.relay_guest_end(p2, con2)

done()
