#!/usr/bin/python3
"""Run qemu-pml's test suites and report per-assertion results.

Suites:
The suite is one manifest, guest-tests/tests.list.

  guest   bare-metal test guests listed in its [guest] section, each run
          under the emulator with a time limit; they report on the debug
          console (PASS:/FAIL:/INFO:/END: lines, see lib/libtest.h) and
          leave through isa-debug-exit.
  tap     programs that print TAP (host scripts, unit tests, upstream
          qtests), listed in its [tap] section (run with --build) or given
          with --tap: every "ok"/"not ok" line is one assertion.

A test that hangs, crashes the emulator, or ends without its END line
counts as one failed assertion, with the reason shown.  The last line
printed is "N passed, N failed"; the exit status is 0 only if N failed is 0.
"""
import argparse
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)


class Result:
    def __init__(self, name, kind):
        self.name, self.kind = name, kind
        self.passed, self.failed = 0, 0
        self.failures = []      # failing assertion texts
        self.diagnostics = []   # a TAP program's "# " lines, shown if it fails
        self.problem = None     # why the test as a whole is broken
        self.seconds = 0.0

    def broken(self, why):
        self.problem = why
        self.failed += 1


def tail(text, n=15):
    lines = [l for l in text.splitlines() if l.strip()]
    return "\n".join("    | " + l for l in lines[-n:])


def run_with_limit(argv, timeout, env=None, cwd=None):
    """Run argv in its own process group; return (rc, stdout, stderr, timed_out)."""
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         stdin=subprocess.DEVNULL, env=env, cwd=cwd, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), False
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), True


def describe_rc(rc):
    if rc < 0:
        try:
            return "emulator killed by signal %s" % signal.Signals(-rc).name
        except ValueError:
            return "emulator killed by signal %d" % -rc
    return "emulator exited with status %d" % rc


SECTIONS = ("guest", "tap")


def parse_manifest(path):
    """The manifest's entries as (section, name, timeout, rest), in order.

    Lines before any "[section]" header are guests.  For a guest, rest is
    its extra QEMU arguments (a list); for a TAP program, its command line
    (a string, placeholders not yet expanded)."""
    entries, section = [], "guest"
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if line.startswith("["):
                section = line.strip("[]").strip()
                if not line.endswith("]") or section not in SECTIONS:
                    raise SystemExit("%s:%d: unknown section %r (known: %s)"
                                     % (path, n, line, ", ".join(SECTIONS)))
                continue
            words = line.split(None, 2)
            if len(words) < 2 or not words[1].isdigit() or (section == "tap" and len(words) < 3):
                raise SystemExit("%s:%d: malformed %s line (want: name seconds %s): %r"
                                 % (path, n, section,
                                    "command" if section == "tap" else "[qemu args]", line))
            rest = words[2] if len(words) > 2 else ""
            if section == "guest":
                rest = shlex.split(rest)
            entries.append((section, words[0], int(words[1]), rest))
    return entries


def expand(cmd, qemu, build):
    """A TAP command line from the manifest, placeholders filled in."""
    if "{build}" in cmd and not build:
        raise SystemExit("runner: %r needs --build" % cmd)
    return [w.replace("{qemu}", qemu).replace("{build}", build or "") for w in shlex.split(cmd)]


def run_guest(qemu, kernel, name, timeout, extra, verbose):
    r = Result(name, "guest")
    with tempfile.TemporaryDirectory(prefix="qemu-pml-guest-") as tmp:
        con = os.path.join(tmp, "debugcon.log")
        argv = [qemu, "-M", "pc", "-nodefaults", "-display", "none", "-no-reboot",
                "-accel", "tcg", "-kernel", kernel,
                "-debugcon", "file:" + con, "-serial", "none",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"] + extra
        t0 = time.monotonic()
        rc, out, err, timed_out = run_with_limit(argv, timeout)
        r.seconds = time.monotonic() - t0
        text = open(con, errors="replace").read() if os.path.exists(con) else ""
    end = None
    for line in text.splitlines():
        if verbose:
            print("    %s: %s" % (name, line))
        if line.startswith("PASS: "):
            r.passed += 1
        elif line.startswith("FAIL: "):
            r.failed += 1
            r.failures.append(line[6:])
        elif line.startswith("END: "):
            end = line[5:].split()
    if timed_out:
        r.broken("hang: killed after %d s without finishing" % timeout)
    elif end is None:
        r.broken("no END line: %s%s" % (describe_rc(rc), "\n" + tail(err) if err.strip() else ""))
    elif rc not in (1, 3):
        r.broken("%s after END%s" % (describe_rc(rc), "\n" + tail(err) if err.strip() else ""))
    elif [int(x) for x in end] != [r.passed, r.failed]:
        r.broken("END says %s passed, %s failed; the console shows %d, %d"
                 % (end[0], end[1], r.passed, r.failed))
    elif (rc == 1) != (r.failed == 0):
        r.broken("exit status %d disagrees with %d failures" % (rc, r.failed))
    return r


TAP_LINE = re.compile(r"^(not ok|ok)\b\s*\d*\s*-?\s*(.*)$")


def run_tap(name, argv, timeout, env, verbose):
    r = Result(name, "tap")
    t0 = time.monotonic()
    try:
        rc, out, err, timed_out = run_with_limit(argv, timeout, env, cwd=REPO)
    except OSError as e:
        r.broken("cannot run %s: %s" % (argv[0], e.strerror))
        return r
    r.seconds = time.monotonic() - t0
    for line in out.splitlines():
        if verbose:
            print("    %s: %s" % (name, line))
        m = TAP_LINE.match(line.strip())
        if line.startswith("#"):
            r.diagnostics.append(line)
        if not m:
            if line.startswith("Bail out!"):
                r.broken(line)
            continue
        desc = m.group(2)
        if "# SKIP" in desc.upper():
            r.broken("skipped assertion (not allowed): " + desc)
        elif m.group(1) == "ok":
            r.passed += 1
        else:
            r.failed += 1
            r.failures.append(desc)
    if timed_out:
        r.broken("hang: killed after %d s" % timeout)
    elif rc != 0 and r.failed == 0:
        r.broken("%s%s" % (describe_rc(rc), "\n" + tail(err or out)))
    elif r.passed + r.failed == 0:
        r.broken("printed no TAP results" + ("\n" + tail(err) if err.strip() else ""))
    return r


def print_table(results):
    w = max([len(r.name) for r in results] + [4])
    print("\n%-*s  %-5s  %6s  %6s  %7s  %s" % (w, "test", "kind", "passed", "failed", "seconds", "result"))
    print("-" * (w + 44))
    for r in results:
        verdict = "ok" if r.failed == 0 else ("BROKEN" if r.problem else "FAIL")
        print("%-*s  %-5s  %6d  %6d  %7.1f  %s" % (w, r.name, r.kind, r.passed, r.failed, r.seconds, verdict))
    for r in results:
        if r.problem:
            print("\n%s: %s" % (r.name, r.problem))
        for f in r.failures:
            print("%s: FAIL: %s" % (r.name, f))
        if r.failed and r.diagnostics:
            print("%s: its diagnostics (last 150 lines):" % r.name)
            for l in r.diagnostics[-150:]:
                print("    " + l)
    # Once more after the diagnostics, which can be long: whoever reads
    # only the end of the output (a CI summary) still learns which checks
    # failed.
    failing = [(r, f) for r in results for f in (r.failures or ([r.problem] if r.problem else []))]
    if failing:
        print("\nWhat failed (%d):" % len(failing))
        for r, f in failing[:30]:
            f = f.splitlines()[0] if f else ""
            print("  %s: %s" % (r.name, f if len(f) <= 300 else f[:297] + "..."))
        if len(failing) > 30:
            print("  ... and %d more, above" % (len(failing) - 30))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu", required=True, help="emulator binary")
    ap.add_argument("--guest-dir", help="directory holding the built <name>.elf guests")
    ap.add_argument("--manifest", default=os.path.join(HERE, "tests.list"),
                    help="the suite's manifest (default: guest-tests/tests.list)")
    ap.add_argument("--build", help="build directory: also run the manifest's [tap] programs, "
                    "with {build} standing for it")
    ap.add_argument("--tap", action="append", default=[], metavar="NAME[@SECONDS]=COMMAND",
                    help="a TAP-printing program to run (repeatable), with its own time limit")
    ap.add_argument("--tap-timeout", type=int, default=300)
    ap.add_argument("--only", help="comma-separated test names to run")
    ap.add_argument("-v", "--verbose", action="store_true", help="echo every result line")
    args = ap.parse_args()

    if not os.access(args.qemu, os.X_OK):
        raise SystemExit("runner: emulator %s is not built" % args.qemu)
    only = set(args.only.split(",")) if args.only else None
    results = []

    entries = parse_manifest(args.manifest)
    taps = [("tap", name, timeout, expand(cmd, args.qemu, args.build))
            for section, name, timeout, cmd in entries if section == "tap"] if args.build else []
    for spec in args.tap:
        name, _, cmd = spec.partition("=")
        name, _, limit = name.partition("@")
        taps.append(("tap", name, int(limit) if limit else args.tap_timeout, shlex.split(cmd)))
    if only:
        known = {name.partition("=")[0] for _, name, _, _ in entries + taps}
        unknown = sorted(only - known)
        if unknown:
            raise SystemExit("runner: no test named %s in %s%s" % (", ".join(unknown), args.manifest,
                             "" if args.build else " (TAP programs run only with --build)"))

    if args.guest_dir:
        for _, name, timeout, extra in (e for e in entries if e[0] == "guest"):
            # "name=elf" runs guest <elf>.elf under another name and arguments.
            name, _, elf = name.partition("=")
            if only and name not in only:
                continue
            kernel = os.path.join(args.guest_dir, (elf or name) + ".elf")
            if not os.path.exists(kernel):
                r = Result(name, "guest")
                r.broken("guest %s is not built" % kernel)
            else:
                r = run_guest(args.qemu, kernel, name, timeout, extra, args.verbose)
            print("%-28s %s" % (name, "ok" if r.failed == 0 else "FAILED"), flush=True)
            results.append(r)

    env = dict(os.environ, QTEST_QEMU_BINARY=args.qemu)
    for _, name, timeout, argv in taps:
        if only and name not in only:
            continue
        r = run_tap(name, argv, timeout, env, args.verbose)
        print("%-28s %s" % (name, "ok" if r.failed == 0 else "FAILED"), flush=True)
        results.append(r)

    print_table(results)
    passed = sum(r.passed for r in results)
    failed = sum(r.failed for r in results)
    print("\n%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 and results else 1


if __name__ == "__main__":
    sys.exit(main())
