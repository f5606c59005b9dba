#!/usr/bin/python3
"""TAP: guest-tests/tests.list is the whole suite, and it names real things.

A test that exists but is not in the manifest never runs, and nobody
notices; a manifest line naming a program that is gone fails late, in the
middle of a 20-minute run.  Checks, for the manifest given (default
guest-tests/tests.list) and a build directory:

  - every guest line names a guest-tests/<guest>.c that exists;
  - every TAP line's program exists and is executable (after the build);
  - every test program in the tree (test-*.py, test-*.sh, check-*.py under
    a tests directory or guest-tests/, and every host unit test meson
    builds from a */tests/test-*.c) is run by some TAP line;
  - no name appears twice.

Usage: check-manifest.py BUILD_DIR [MANIFEST]
"""
import glob
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from runner import expand, parse_manifest  # noqa: E402
from tap import done, ok  # noqa: E402

build = os.path.abspath(sys.argv[1])
manifest = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "tests.list")
entries = parse_manifest(manifest)
guests = [e for e in entries if e[0] == "guest"]
taps = [e for e in entries if e[0] == "tap"]

names = [name.partition("=")[0] for _, name, _, _ in entries]
dups = sorted({n for n in names if names.count(n) > 1})
ok(not dups, "every test name is unique%s" % (": repeated " + ", ".join(dups) if dups else ""))

missing = [name for _, name, _, _ in guests
           if not os.path.exists(os.path.join(HERE, (name.partition("=")[2] or name) + ".c"))]
ok(guests and not missing, "%d guest lines, each naming a guest-tests/<guest>.c%s"
   % (len(guests), ": not found for " + ", ".join(missing) if missing else ""))

programs, bad = set(), []
for _, name, _, cmd in taps:
    argv = expand(cmd, os.path.join(build, "qemu-system-x86_64"), build)
    prog = os.path.normpath(os.path.join(REPO, argv[0]))
    programs.add(prog)
    if not (os.path.isfile(prog) and os.access(prog, os.X_OK)):
        bad.append("%s (%s)" % (name, os.path.relpath(prog, REPO)))
ok(taps and not bad, "%d TAP lines, each naming an executable program%s"
   % (len(taps), ": missing or not executable: " + ", ".join(bad) if bad else ""))

# What the tree holds that looks like a test.
scripts = set()
for pat in ("*/tests/test-*.py", "*/tests/test-*.sh", "*/tests/check-*.py",
            "guest-tests/**/test-*.py", "guest-tests/**/test-*.sh", "guest-tests/check-*.py",
            "truth/test-*.py"):
    scripts.update(os.path.normpath(p) for p in glob.glob(os.path.join(REPO, pat), recursive=True))
unlisted = sorted(os.path.relpath(p, REPO) for p in scripts - programs)
ok(scripts and not unlisted, "every test script in the tree (%d) is in the manifest%s"
   % (len(scripts), ": not listed: " + ", ".join(unlisted) if unlisted else ""))

units = set()
for src in glob.glob(os.path.join(REPO, "*", "tests", "test-*.c")):
    rel = os.path.relpath(os.path.dirname(src), REPO)
    units.add(os.path.join(build, "ours", rel, os.path.basename(src)[:-2]))
unlisted = sorted(os.path.relpath(p, build) for p in units - programs)
ok(units and not unlisted, "every host unit test (%d, */tests/test-*.c) is in the manifest%s"
   % (len(units), ": not listed: " + ", ".join(unlisted) if unlisted else ""))
done()
