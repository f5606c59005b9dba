"""What the migration tests share: start a bare-metal test guest under
QEMU with a QMP socket, wait for its debug console, migrate it to a file
and restore it, and relay the restored guest's own results as TAP."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from console import wait_text  # noqa: E402,F401 (also the tests')
from qmp import QMP  # noqa: E402
from tap import ok  # noqa: E402


def symbol_range(elf64, name):
    """[start, end) of symbol @name in the guest's ELF (nm -S): where its
    code is, to tell that a stopped vCPU is inside it."""
    out = subprocess.run(["nm", "-S", elf64], capture_output=True, text=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 4 and f[3] == name:
            return int(f[0], 16), int(f[0], 16) + int(f[1], 16)
    raise SystemExit("no symbol %s" % name)


def start(qemu, elf, tmp, tag, machine_args, extra):
    """QEMU running @elf (console in tmp/tag.con); returns (process, console, QMP)."""
    con = os.path.join(tmp, tag + ".con")
    sock = os.path.join(tmp, tag + ".qmp")
    p = subprocess.Popen([qemu, "-M", "pc", "-nodefaults", "-display", "none", "-no-reboot"] +
                         machine_args +
                         ["-m", "128", "-kernel", elf, "-debugcon", "file:" + con,
                          "-serial", "none", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                          "-qmp", "unix:%s,server=on,wait=off" % sock] + extra,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    return p, con, QMP(sock)


def migrate_to_file(q, state):
    """Migrate the stopped machine behind @q to @state: the final status."""
    q.cmd("migrate", uri="file:" + state)
    status = None
    for _ in range(600):
        status = q.cmd("query-migrate").get("status")
        if status in ("completed", "failed"):
            break
        time.sleep(0.05)
    return status


def migrate_and_restore(q, p, state, start_dst):
    """Migrate the stopped source (@q, @p) to @state and end it, then start
    the destination with start_dst(extra_args) on that state and wait until
    it is loaded; returns the destination's (process, console, QMP)."""
    status = migrate_to_file(q, state)
    ok(status == "completed", "migration to a file completed (%s)" % status)
    q.cmd("quit")
    p.wait(timeout=30)
    p2, con2, q2 = start_dst(["-incoming", "file:" + state])
    wait_incoming(q2)
    return p2, con2, q2


def wait_incoming(q):
    """Wait until a QEMU started with -incoming has loaded the state."""
    for _ in range(600):
        st = q.cmd("query-status")["status"]
        if st in ("paused", "postmigrate", "prelaunch") and \
                q.cmd("query-migrate").get("status") == "completed":
            return
        time.sleep(0.05)


def relay_guest_end(p, con):
    """Let the restored guest run to its end; each of its results is a TAP line."""
    ok(wait_text(con, r"^END: ", 120), "the restored guest ran to its end")
    try:
        p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
    text = open(con, errors="replace").read() if os.path.exists(con) else ""
    for line in text.splitlines():
        if line.startswith(("PASS: ", "FAIL: ")):
            ok(line.startswith("PASS: "), "restored guest: " + line[6:])
    ok(p.returncode == 1, "the restored guest exited with every assertion passing (status %s)"
       % p.returncode)
