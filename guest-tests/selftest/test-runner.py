#!/usr/bin/python3
"""TAP: guest-tests/runner.py reports broken tests as failures, with reasons.

Runs the runner on guests that hang, triple-fault and fail assertions, and
on an 'emulator' that crashes, and checks the table and the final line.
Usage: test-runner.py QEMU SELFTEST_GUEST_DIR
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from tap import done, ok  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
RUNNER = os.path.join(HERE, "..", "runner.py")
qemu, guest_dir = sys.argv[1], sys.argv[2]


def run(*extra, qemu_bin=qemu):
    p = subprocess.run([sys.executable, RUNNER, "--qemu", qemu_bin, "--guest-dir", guest_dir,
                        "--manifest", os.path.join(HERE, "tests.list")] + list(extra),
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout


rc, out = run()
last = out.strip().splitlines()[-1]
ok(rc != 0, "runner exits non-zero when tests fail (rc=%d)" % rc)
ok(re.fullmatch(r"\d+ passed, \d+ failed", last) is not None, "last line is 'N passed, N failed': %r" % last)
ok(last == "3 passed, 4 failed", "counts: 3 passed, 4 failed (hang 1+1, triple fault 1+1, failing 1+2): %r" % last)
ok("hang: killed after 3 s without finishing" in out, "a hanging guest is reported as a hang")
ok(re.search(r"triplefault: no END line: emulator exited with status 0", out) is not None,
   "a guest that triple-faults is reported as ending without END")
ok("failing: FAIL: this one fails on purpose" in out and "failing: FAIL: so does this one" in out,
   "each failing assertion is listed")
ok(re.search(r"^hang\s+guest\s+1\s+1\s+[\d.]+\s+BROKEN$", out, re.M) is not None,
   "the table marks the hanging guest BROKEN")
# A CI summary shows only the end of the output: the failures are named there.
end = out[out.rfind("What failed (4):"):] if "What failed (4):" in out else ""
ok(all(s in end for s in ("failing: this one fails on purpose", "failing: so does this one",
                          "hang: killed after 3 s", "triplefault: no END line")),
   "the failures are named again at the end, after any diagnostics")

rc, out = run("--only", "failing", qemu_bin=os.path.join(HERE, "fake-qemu-crash.sh"))
ok(rc != 0 and "emulator killed by signal SIGSEGV" in out, "an emulator crash is reported with its signal")
ok(out.strip().splitlines()[-1] == "0 passed, 1 failed", "a crash counts as one failure")

rc, out = run("--only", "nosuchtest")
ok(rc != 0, "running nothing is not a success")
done()
