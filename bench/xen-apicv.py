#!/usr/bin/env python3
"""The nested Xen stack with and without APIC virtualization, alternating.

    bench/xen-apicv.py [--pairs N] [--steps info,create,destroy]

Boots configs/xen/stack.json (Debian's Xen 4.17, dom0, a PVH domU) 2N
times on Skylake-Server,+vmx: N times as the model is, with APIC-register
virtualization, virtual-interrupt delivery, x2APIC virtualization and
posted interrupts, and N times with those four controls removed
(-vmx-apicv-register,-vmx-apicv-vid,-vmx-posted-intr,-vmx-apicv-x2apic),
in the order on/off, off/on, on/off, ... so that a slow drift of the
machine's load falls on both.  For each run: time from QEMU's start to
the domU's /init, to QEMU's exit, the CPU time of the run (QEMU and the
script, user + system), and the VM exits Xen's guests took (every one is
the domU's: dom0 is PV), by reason, from query-pml-stats at the end.
Ends with the medians of each set and the ratios on/off: wall times on
a 2-core host move by +-25% from run to run under MTTCG, the exit counts
do not, so both are shown.  Run after ./qpml build.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OFF = "-vmx-apicv-register,-vmx-apicv-vid,-vmx-posted-intr,-vmx-apicv-x2apic"
CPU = "Skylake-Server,+vmx"
# Basic exit reasons (SDM Vol. 3D, Appendix C) shown by name.
REASONS = {0: "exception", 1: "ext-intr", 7: "intr-window", 10: "cpuid", 12: "hlt",
           18: "vmcall", 28: "cr", 30: "io", 31: "rdmsr", 32: "wrmsr", 44: "apic-access",
           45: "eoi-induced", 48: "ept-viol", 49: "ept-misc", 52: "preempt", 56: "apic-write"}


def exits_at_end(res):
    """{reason: count} summed over Xen's CPUs, from the last stats sample."""
    samples = res.get("pml_samples") or []
    if not samples:
        return {}
    out = {}
    for v in samples[-1]["stats"]["vcpus"]:
        for c in v.get("exit-reasons", []):
            out[c["reason"]] = out.get(c["reason"], 0) + c["count"]
    return out


def one(qemu, image_dir, cpu, steps):
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        path = f.name
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([sys.executable, os.path.join(TOP, "guest-tests/xen/xen-demo.py"),
                        "--qemu", qemu, "--image-dir", image_dir, "--cpu", cpu,
                        "--steps", steps, "--results", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    try:
        with open(path) as f:
            res = json.load(f)
    except (OSError, ValueError):
        res = {}
    os.unlink(path)
    ok = p.returncode == 0 and res.get("pass")
    if not ok:
        tail = "\n".join(p.stdout.splitlines()[-15:])
        print("bench: a run failed (%s):\n%s" % (cpu, tail), file=sys.stderr)
    return {"ok": bool(ok), "up": res.get("domu_up_s"), "wall": res.get("wall_s"),
            "cpu": cpu_s, "exits": exits_at_end(res)}


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--steps", default="info,create,destroy")
    ap.add_argument("--build", default=os.environ.get("QEMU_PML_BUILD",
                                                      os.path.join(TOP, "_build")))
    args = ap.parse_args()
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")
    qemu = os.path.join(args.build, "qemu-system-x86_64")
    image_dir = os.path.join(args.build, "xen")
    subprocess.run([os.path.join(TOP, "guest-tests/xen/build-image.sh"),
                    os.path.join(args.build, "ours/guest-tests/xen/wss-touch"), image_dir,
                    os.path.join(args.build, "ours/xen-pml/tools/xen-epml")],
                   check=True, stdout=subprocess.DEVNULL)
    modes = {"on": CPU, "off": CPU + "," + OFF}
    runs = {"on": [], "off": []}
    print("bench: nested Xen 4.17 + dom0 + PVH domU, steps %s, %d pairs, %d host cores, "
          "load %s" % (args.steps, args.pairs, os.cpu_count(), open("/proc/loadavg").read().split()[0]))
    print("bench: %-5s %4s  %9s  %7s  %7s  %8s  %s" % ("apicv", "run", "domU up s", "wall s",
                                                      "cpu s", "exits", "top exit reasons"))
    failed = 0
    for i in range(args.pairs):
        for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
            r = one(qemu, image_dir, modes[mode], args.steps)
            runs[mode].append(r)
            failed += not r["ok"]
            top = sorted(r["exits"].items(), key=lambda kv: -kv[1])[:5]
            print("bench: %-5s %4d  %9s  %7s  %7.1f  %8d  %s" % (
                mode, i + 1, "%.1f" % r["up"] if r["up"] else "-",
                "%.1f" % r["wall"] if r["wall"] else "-", r["cpu"], sum(r["exits"].values()),
                " ".join("%s=%d" % (REASONS.get(k, str(k)), v) for k, v in top)), flush=True)
    print("bench: medians      %9s  %7s  %7s  %8s" % ("domU up s", "wall s", "cpu s", "exits"))
    m = {}
    for mode in ("on", "off"):
        ok = [r for r in runs[mode] if r["ok"]]
        m[mode] = [med([r["up"] for r in ok]), med([r["wall"] for r in ok]),
                   med([r["cpu"] for r in ok]), med([sum(r["exits"].values()) for r in ok])]
        print("bench: %-5s %4s  %9.1f  %7.1f  %7.1f  %8.0f" % (mode, len(ok), *m[mode]))
    print("bench: on/off      %9.3f  %7.3f  %7.3f  %8.3f" % tuple(
        a / b if b else float("nan") for a, b in zip(m["on"], m["off"])))
    print("bench: %d runs failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
