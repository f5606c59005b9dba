#!/usr/bin/python3
"""TAP: query-pml-stats / reset-pml-stats / HMP "info pml" count extended PML.

Runs the vmx-epml-smp guest (-smp 2, -cpu ...,+vmx,epml=on) without
isa-debug-exit, so that it halts after its last assertion instead of
ending QEMU; then asks QMP what the emulator counted and checks it against
what the guest did: every hand-over sent one notification, the induced
overflow dropped exactly 88 entries, the logging vCPU has the entries and
the collector none, reads/writes/walk/filtered are consistent, and
reset-pml-stats zeroes everything.  Usage: test-epml-stats.py QEMU GUEST_DIR
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
elf = os.path.join(guest_dir, "vmx-epml-smp.elf")
DROPPED = 600 - 2 * 256     # vmx-epml-smp's third case: NPAGES - both buffers


with tempfile.TemporaryDirectory() as tmp:
    con = os.path.join(tmp, "con")
    sock = os.path.join(tmp, "qmp")
    p = subprocess.Popen([qemu, "-M", "pc", "-nodefaults", "-display", "none", "-no-reboot",
                          "-accel", "tcg,thread=multi", "-smp", "2", "-m", "128",
                          "-cpu", "Skylake-Server,+vmx,epml=on", "-kernel", elf,
                          "-debugcon", "file:" + con, "-serial", "none",
                          "-qmp", "unix:%s,server=on,wait=off" % sock, "-S"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        qmp = QMP(sock)
        qmp.cmd("cont")
        deadline = time.monotonic() + 120
        text = ""
        seen_on = None
        # The whole END line: the console file can end in the middle of it.
        while not re.search(r"END:[^\n]*\n", text) and time.monotonic() < deadline \
                and p.poll() is None:
            v = qmp.cmd("query-pml-stats")["vcpus"][0]
            if v["epml-enabled"] and seen_on is None:
                seen_on = v
            time.sleep(0.002)
            text = open(con, errors="replace").read() if os.path.exists(con) else ""
        end = [l for l in text.splitlines() if "END:" in l]
        ok(end and end[-1].split("END:")[1].split() == ["9", "0"],
           "the guest ran its 9 assertions, all passed (%s)" % (end[-1] if end else "no END"))
        time.sleep(0.5)            # the guest halts after END

        s = qmp.cmd("query-pml-stats")
        v0, v1 = s["vcpus"][0], s["vcpus"][1]
        print("# totals: " + ", ".join("%s=%s" % (k, s[k]) for k in sorted(s) if k != "vcpus"))
        ok(s["drops"] == DROPPED and v0["drops"] == DROPPED,
           "drops = the entries the induced overflow had no room for (%d)" % s["drops"])
        # Exact counts.  The guest's access sequence is fixed (one L2,
        # three cases of 600 pages, 200 of them written; the third overflows
        # both buffers), so every count is the same in every run: 1,712
        # first accesses the L2 makes on purpose (3 x 600 - 88 dropped) and
        # 7 to its own code, stack and paging structures; 3 of those are the
        # page walk's, logged in the case without the filter.  With the
        # filter the walk leaves the flags of its pages clear (docs/epml.md
        # section 6), so the same 3 walk accesses count as filtered again
        # each time the walk goes through the EPT for them: once at least,
        # and again after a both-full exit only if the guest-physical
        # mappings of those pages were dropped meanwhile.  They need not be:
        # the SDM tags them with the EPTP alone (29.4.2) and the emulator
        # keeps them across VM entries, so with 2 both-full exits the count
        # is 3 in most runs and could be 6.  Hence: a multiple of 3, from 3
        # to 3 per both-full exit.  Lower bounds let over-counting pass;
        # these do not.
        # Only the both-full exits are a range: how many the filtered case
        # takes depends on when the collector vCPU drains (MTTCG timing),
        # and none when it keeps up (the third case drops instead; a clean-
        # clone CI run had 0).  So the walk's 3 accesses are filtered once,
        # plus at most once more per both-full exit.
        ok(s["handovers"] == 6 and s["notifications"] == 6,
           "6 hand-overs, each with one notification (%d hand-overs, %d notifications)"
           % (s["handovers"], s["notifications"]))
        ok(s["reads"] == 1719 and s["writes"] == 574,
           "reads and writes are the L2's first accesses exactly (1719 reads: %d; 574 writes: %d)"
           % (s["reads"], s["writes"]))
        ok(s["entries"] == 1719 and s["entries"] == v0["entries"] + v1["entries"],
           "entries (%d, want 1719) count each logged entry once; the total is the vCPUs' sum"
           % s["entries"])
        ok(s["walk-entries"] == 3 and 0 <= s["full-exits"] <= 4 and
           s["filtered"] % 3 == 0 and 3 <= s["filtered"] <= 3 * (1 + s["full-exits"]),
           "3 walk entries without the filter; 0-4 both-full exits, and the 3 walk accesses "
           "filtered once, and at most once more per both-full exit (%d, %d, %d)"
           % (s["walk-entries"], s["full-exits"], s["filtered"]))
        # VM exits by reason: the L2 ends each of its 6 runs with VMCALL
        # (reason 18); every other exit is a both-full exit (reason 62,
        # counted in full-exits too).  The collector is not in VMX
        # operation, so the notifications interrupt no guest.
        reasons = {c["reason"]: c["count"] for c in v0["exit-reasons"]}
        want = {18: 6, 62: s["full-exits"]} if s["full-exits"] else {18: 6}
        ok(reasons == want and v0["exits"] == 6 + s["full-exits"] and
           v1["exits"] == 0 and not v1["exit-reasons"] and s["notify-exits"] == 0 and
           s["exits"] == v0["exits"],
           "VM exits by reason: 6 VMCALL and one PML-full per both-full exit, none on the "
           "collector, no notification exit (%s; %d exits, %d notification exits)"
           % (reasons, s["exits"], s["notify-exits"]))
        # 16-byte entries, 4 to a 64-byte line, buffers filled upwards from
        # a page boundary: each buffer's fill writes ceil(n / 4) lines, so
        # 1,719 entries take at least 430 lines, one more for each fill
        # that ended inside a line (at most one per case of the guest).
        ok(430 <= s["log-lines"] <= 433 and s["log-lines"] == v0["log-lines"],
           "log lines written: 430-433 for 1,719 16-byte entries (%d)" % s["log-lines"])
        ok(v1["entries"] == 0 and v1["handovers"] == 0 and not v1["vmx-operation"],
           "the collector vCPU logged nothing (it is not in VMX operation)")
        ok(seen_on is not None and seen_on["vmx-operation"] and not seen_on["pml-enabled"] and
           seen_on.get("epml-index") is not None and seen_on.get("epml-active-buffer") in (0, 1),
           "while the guest ran, vCPU 0's current VMCS showed extended PML on, stock PML off"
           " (index %s, buffer %s)" % (seen_on and seen_on.get("epml-index"),
                                       seen_on and seen_on.get("epml-active-buffer")))
        ok(not v0["vmx-operation"] and "epml-index" not in v0 and not v0["epml-enabled"],
           "after the guest's VMXOFF no VMCS is current: no index, extended PML off")
        info = qmp.cmd("human-monitor-command", **{"command-line": "info pml"})
        print("".join("# " + l + "\n" for l in info.splitlines()))
        ok("EPML" in info and ("drops %d" % DROPPED) in info,
           "HMP info pml shows the EPML columns and the drop total")
        qmp.cmd("reset-pml-stats")
        z = qmp.cmd("query-pml-stats")
        ok(all(z[k] == 0 for k in z if k != "vcpus") and
           all(c[k] == 0 for c in z["vcpus"] for k in ("entries", "reads", "writes", "walk-entries",
                                                        "filtered", "handovers", "notifications",
                                                        "drops", "posted", "post-suppressed",
                                                        "full-exits", "exits",
                                                        "notify-exits", "log-lines")) and
           not any(c["exit-reasons"] for c in z["vcpus"]),
           "reset-pml-stats zeroes every counter")
        try:
            qmp.cmd("query-pml-stats", bogus=1)
            ok(False, "query-pml-stats with an unknown argument is refused")
        except Exception as e:
            ok("bogus" in str(e) or "nexpected" in str(e),
               "query-pml-stats with an unknown argument is refused (%s)" % e)
        qmp.close()
    finally:
        p.kill()
        p.wait()

done()
