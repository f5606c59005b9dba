#!/usr/bin/python3
"""TAP: the working-set oracle (query-wss-oracle and friends) against a known L2.

Runs the oracle/wss-oracle guest: an L2 with EPT touches known page sets in
two phases (see wss-oracle.c).  The oracle starts before the guest runs;
after phase 0 the host cuts the window (query-wss-oracle next=true) and
injects an NMI to let phase 1 run; then it cuts again.  Each window's
counts must match what the L2 did, up to the few pages of L2 code and
stack; a window with no L2 running is empty.  Also checks HMP
"info wss-oracle", stop, and that bad use gets a clear error.
Usage: test-wss-oracle.py QEMU GUEST_DIR
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from console import wait_text  # noqa: E402
from qmp import QMP  # noqa: E402
from tap import done, ok  # noqa: E402

qemu, guest_dir = sys.argv[1], sys.argv[2]
elf = os.path.join(guest_dir, "wss-oracle.elf")
SLACK = 6               # L2 code, stack and the phase variable


def within(v, lo, slack=SLACK):
    return lo <= v <= lo + slack


def error_of(qmp, cmd, **args):
    try:
        qmp.cmd(cmd, **args)
    except Exception as e:      # noqa: BLE001 - QMP errors carry the message
        return str(e)
    return None


def show(tag, win):
    for g in win["guests"]:
        print("# %s: window %d, EPT PML4 %#x: %s" % (
            tag, win["window"], g["ept-pml4"],
            ", ".join("%s=%d" % (k, g[k]) for k in ("touched", "written", "read-only",
                                                    "fetched", "walk", "walk-only"))))


with tempfile.TemporaryDirectory() as tmp:
    con = os.path.join(tmp, "con")
    sock = os.path.join(tmp, "qmp")
    p = subprocess.Popen([qemu, "-M", "pc", "-nodefaults", "-display", "none", "-no-reboot",
                          "-accel", "tcg", "-m", "128", "-cpu", "Skylake-Server,+vmx",
                          "-kernel", elf, "-debugcon", "file:" + con, "-serial", "none",
                          "-qmp", "unix:%s,server=on,wait=off" % sock, "-S"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        qmp = QMP(sock)
        err = error_of(qmp, "query-wss-oracle", next=True)
        ok(err and "not running" in err,
           "query-wss-oracle next=true before wss-oracle-start is refused (%s)" % err)
        err = error_of(qmp, "wss-oracle-stop")
        ok(err and "not running" in err, "wss-oracle-stop when stopped is refused (%s)" % err)
        err = error_of(qmp, "query-wss-oracle", next="yes")
        ok(err is not None, "query-wss-oracle with a non-boolean 'next' is refused (%s)" % err)

        qmp.cmd("wss-oracle-start")
        qmp.cmd("cont")
        ok(wait_text(con, re.escape("PHASE 0 DONE"), 60), "the L2 ran phase 0")
        w0 = qmp.cmd("query-wss-oracle", next=True)
        show("phase 0", w0)
        g = w0["guests"]
        ok(w0["active"] and w0["window"] == 0 and len(g) == 1 and not w0["overflow"],
           "window 0 has one EPT guest (%d)" % len(g))
        g = g[0] if g else {k: -1 for k in ("touched", "written", "read-only", "fetched",
                                             "walk", "walk-only", "ept-pml4")}
        ok(within(g["touched"], 600), "window 0: touched = 600 test pages + L2 code/stack (%d)"
           % g["touched"])
        ok(within(g["written"], 300, 2),
           "window 0: written = 200 written + 100 read-then-written + stack (%d)" % g["written"])
        ok(within(g["read-only"], 300, 4), "window 0: read-only = 300 read pages + code (%d)"
           % g["read-only"])
        ok(1 <= g["fetched"] <= 3, "window 0: fetched = the L2's code page(s) (%d)" % g["fetched"])
        ok(g["walk"] >= 1 and g["walk-only"] >= 1 and g["walk-only"] <= g["walk"],
           "window 0: the page walk's pages are counted apart (walk %d, walk-only %d)"
           % (g["walk"], g["walk-only"]))

        qmp.cmd("inject-nmi")
        ok(wait_text(con, re.escape("PHASE 1 DONE"), 60), "the NMI let the L2 run phase 1")
        bad = os.path.join(tmp, "no-such-dir", "pages")
        err = error_of(qmp, "query-wss-oracle", next=True, **{"pages-file": bad})
        ok(err and "pages-file" in err and qmp.cmd("query-wss-oracle")["window"] == 1,
           "a pages-file that cannot be created is refused and closes no window (%s)" % err)
        pages_file = os.path.join(tmp, "pages")
        w1 = qmp.cmd("query-wss-oracle", next=True, **{"pages-file": pages_file})
        show("phase 1", w1)
        g1 = w1["guests"][0] if len(w1["guests"]) == 1 else None
        ok(w1["window"] == 1 and g1 is not None and g1["ept-pml4"] == g["ept-pml4"],
           "window 1 has the same EPT guest")
        # The page list: one line for the guest, its runs as many pages as
        # it counted, among them phase 1's 100 read pages (the L2 runs on
        # an identity EPT, so its page numbers are the guest's own).
        lines = open(pages_file).read().splitlines()
        m = re.fullmatch(r"ept-pml4=0x([0-9a-f]+) touched=(\d+) r=(\S*)", lines[0]) \
            if len(lines) == 1 else None
        listed = set()
        for run in (m.group(3).split(",") if m and m.group(3) else []):
            start, n = (int(x, 16) for x in run.split("+"))
            listed.update(range(start, start + n))
        base = int(re.search(r"PHASE 1 DONE pages (0x[0-9a-f]+)", open(con).read()).group(1),
                   16) >> 12
        ok(m and g1 and int(m.group(1), 16) == g1["ept-pml4"] and
           int(m.group(2)) == len(listed) == g1["touched"] and
           set(range(base, base + 100)) <= listed and base + 100 not in listed,
           "pages-file lists the window's %d touched pages, phase 1's reads among them and"
           " phase 0's written-only pages not (%d listed)" % (g1["touched"] if g1 else -1,
                                                             len(listed)))
        g1 = g1 or {k: -1 for k in ("touched", "written")}
        ok(within(g1["touched"], 200), "window 1: touched = 100 read + 50 read-then-written"
           " + 50 written + code/stack, pages of window 0 counted again (%d)" % g1["touched"])
        ok(within(g1["written"], 100, 2),
           "window 1: written = 50 + 50 read-then-written whose EPT dirty flag was already"
           " set (%d)" % g1["written"])

        time.sleep(0.3)
        w2 = qmp.cmd("query-wss-oracle", next=True)
        ok(w2["window"] == 2 and w2["guests"] == [] and w2["end-ns"] >= w2["start-ns"],
           "window 2, with no L2 running, is empty")
        info = qmp.cmd("human-monitor-command", **{"command-line": "info wss-oracle"})
        print("".join("# " + line + "\n" for line in info.splitlines()))
        ok("running, window 3" in info and "touched" in info,
           "HMP info wss-oracle shows the running window")
        qmp.cmd("wss-oracle-stop")
        s = qmp.cmd("query-wss-oracle")
        ok(not s["active"], "wss-oracle-stop stops recording")
        qmp.close()
    finally:
        p.kill()
        p.wait()

done()
