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
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from qmp import QMP  # noqa: E402
from tap import done, ok  # noqa: E402

qemu, guest_dir = sys.argv[1], sys.argv[2]
elf = os.path.join(guest_dir, "vmx-sipi-migrate.elf")


def start(tmp, tag, extra):
    con = os.path.join(tmp, tag + ".con")
    sock = os.path.join(tmp, tag + ".qmp")
    p = subprocess.Popen([qemu, "-M", "pc", "-nodefaults", "-display", "none", "-no-reboot",
                          "-accel", "tcg,thread=multi", "-smp", "2",
                          "-cpu", "Skylake-Server,+vmx,+vmx-activity-wait-sipi", "-m", "128",
                          "-kernel", elf, "-debugcon", "file:" + con, "-serial", "none",
                          "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                          "-qmp", "unix:%s,server=on,wait=off" % sock] + extra,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    return p, con, QMP(sock)


def wait_text(path, pattern, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path) and re.search(pattern, open(path, errors="replace").read(), re.M):
            return True
        time.sleep(0.02)
    return False


def wait_migration(q):
    status = None
    for _ in range(600):
        status = q.cmd("query-migrate").get("status")
        if status in ("completed", "failed"):
            break
        time.sleep(0.05)
    return status


with tempfile.TemporaryDirectory(prefix="qemu-pml-migrate-sipi-") as tmp:
    state = os.path.join(tmp, "state")
    p1, con1, q1 = start(tmp, "src", [])
    ok(wait_text(con1, "migrate-now", 60), "the source guest put its AP's guest in wait-for-SIPI")
    q1.cmd("stop")
    v1 = q1.cmd("query-pml-stats")["vcpus"][1]
    ok(v1["vmx-operation"] and v1["non-root"],
       "stopped with the AP in VMX non-root operation (%s)" % v1)
    q1.cmd("migrate", uri="file:" + state)
    status = wait_migration(q1)
    ok(status == "completed", "migration to a file completed (%s)" % status)
    q1.cmd("quit")
    p1.wait(timeout=30)

    p2, con2, q2 = start(tmp, "dst", ["-incoming", "file:" + state])
    for _ in range(600):
        st = q2.cmd("query-status")["status"]
        if st in ("paused", "postmigrate", "prelaunch") and \
                q2.cmd("query-migrate").get("status") == "completed":
            break
        time.sleep(0.05)
    v1 = q2.cmd("query-pml-stats")["vcpus"][1]
    ok(v1["non-root"], "restored: the AP is still in VMX non-root operation")
    q2.cmd("cont")
    ok(wait_text(con2, r"^END: ", 120), "the restored guest ran to its end")
    try:
        p2.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p2.kill()
    text = open(con2, errors="replace").read() if os.path.exists(con2) else ""
    for line in text.splitlines():
        if line.startswith(("PASS: ", "FAIL: ")):
            ok(line.startswith("PASS: "), "restored guest: " + line[6:])
    ok(p2.returncode == 1, "the restored guest exited with every assertion passing (status %s)"
       % p2.returncode)

done()
