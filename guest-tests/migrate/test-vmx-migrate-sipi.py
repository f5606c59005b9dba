#!/usr/bin/python3
"""TAP: the wait-for-SIPI activity state and a latched INIT survive migration.

Runs guest-tests/vmx-sipi-migrate.elf with -smp 2.  Once it prints
"migrate-now" its second vCPU is in VMX non-root operation, in
wait-for-SIPI, with an INIT latched; the test stops the machine there,
migrates it to a file, restores it in a new QEMU with -incoming, and
checks that the restored guest gets the SIPI exit and then the INIT exit
(the "cpu/vmx/signals" migration subsection).  Usage:
test-vmx-migrate-sipi.py QEMU GUEST_DIR
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import migrate_lib  # noqa: E402
from migrate_lib import wait_text  # noqa: E402
from tap import done, ok  # noqa: E402

qemu, guest_dir = sys.argv[1], sys.argv[2]
elf = os.path.join(guest_dir, "vmx-sipi-migrate.elf")


def start(tmp, tag, extra):
    return migrate_lib.start(qemu, elf, tmp, tag,
                             ["-accel", "tcg,thread=multi", "-smp", "2",
                              "-cpu", "Skylake-Server,+vmx,+vmx-activity-wait-sipi"], extra)


with tempfile.TemporaryDirectory(prefix="qemu-pml-migrate-sipi-") as tmp:
    state = os.path.join(tmp, "state")
    p1, con1, q1 = start(tmp, "src", [])
    ok(wait_text(con1, "migrate-now", 60, poll=0.02),
       "the source guest put its AP's guest in wait-for-SIPI")
    q1.cmd("stop")
    v1 = q1.cmd("query-pml-stats")["vcpus"][1]
    ok(v1["vmx-operation"] and v1["non-root"],
       "stopped with the AP in VMX non-root operation (%s)" % v1)
    p2, con2, q2 = migrate_lib.migrate_and_restore(q1, p1, state,
                                                   lambda extra: start(tmp, "dst", extra))
    v1 = q2.cmd("query-pml-stats")["vcpus"][1]
    ok(v1["non-root"], "restored: the AP is still in VMX non-root operation")
    q2.cmd("cont")
    migrate_lib.relay_guest_end(p2, con2)

done()
