#!/usr/bin/python3
"""qemu-pml main job: boot Debian's Linux on the fork and report the CPU over QMP.

Boots the kernel and busybox initramfs built by build-image.sh on the
emulator, waits for the guest's /init to report what it sees, then asks
QEMU over QMP for the CPU model and its VMX capabilities, and prints both
views side by side.  Exits non-zero if the guest does not come up or the
two views disagree.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from qmp import QMP  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CONFIG = os.path.join(HERE, "..", "..", "configs", "demo.json")
CONFIG_KEYS = {"cpu": str, "smp": int, "memory_mb": int, "machine": str,
               "kernel_append": str, "boot_timeout_s": int}


def load_config(path):
    """Read a demo config; any problem is a clear error, not a traceback."""
    try:
        with open(path) as f:
            cfg = json.load(f)
    except OSError as e:
        raise SystemExit("demo: cannot read config %s: %s" % (path, e.strerror))
    except json.JSONDecodeError as e:
        raise SystemExit("demo: %s: malformed JSON at line %d column %d: %s"
                         % (path, e.lineno, e.colno, e.msg))
    if not isinstance(cfg, dict):
        raise SystemExit("demo: %s: expected a JSON object" % path)
    for k, v in cfg.items():
        if k.startswith("_"):
            continue
        if k not in CONFIG_KEYS:
            raise SystemExit("demo: %s: unknown key %r (known: %s)"
                             % (path, k, ", ".join(sorted(CONFIG_KEYS))))
        if type(v) is not CONFIG_KEYS[k]:
            raise SystemExit("demo: %s: %r must be %s, not %r"
                             % (path, k, CONFIG_KEYS[k].__name__, v))
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise SystemExit("demo: %s: missing %s" % (path, ", ".join(missing)))
    if cfg["smp"] < 1 or cfg["memory_mb"] < 64 or cfg["boot_timeout_s"] < 1:
        raise SystemExit("demo: %s: smp >= 1, memory_mb >= 64 and boot_timeout_s >= 1 required" % path)
    return cfg


def wait_for(path, marker, proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if os.path.exists(path) and marker in open(path, errors="replace").read():
            return True
        time.sleep(0.1)
    return False


def guest_lines(path):
    out = {}
    for line in open(path, errors="replace").read().splitlines():
        if line.startswith("qemu-pml-guest: "):
            key, _, val = line[len("qemu-pml-guest: "):].partition(" ")
            out[key] = val.strip()
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--qemu", required=True)
    ap.add_argument("--image-dir", required=True, help="holds vmlinuz and initramfs.cpio.gz")
    ap.add_argument("--config", default=DEFAULT_CONFIG, help="machine settings (default configs/demo.json)")
    ap.add_argument("--cpu", help="-cpu model (overrides the config)")
    ap.add_argument("--smp", type=int, help="vCPUs (overrides the config)")
    ap.add_argument("--timeout", type=int, help="seconds to wait for the guest (overrides the config)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    args.cpu = args.cpu or cfg["cpu"]
    args.smp = args.smp or cfg["smp"]
    args.timeout = args.timeout or cfg["boot_timeout_s"]
    if args.smp < 1:
        raise SystemExit("demo: --smp must be at least 1")

    tmp = tempfile.mkdtemp(prefix="qemu-pml-demo-")
    serial = os.path.join(tmp, "serial.log")
    qmp_sock = os.path.join(tmp, "qmp.sock")
    argv = [args.qemu, "-M", cfg["machine"], "-nodefaults", "-display", "none", "-no-reboot",
            "-accel", "tcg,thread=multi", "-cpu", args.cpu, "-smp", str(args.smp),
            "-m", str(cfg["memory_mb"]),
            "-kernel", os.path.join(args.image_dir, "vmlinuz"),
            "-initrd", os.path.join(args.image_dir, "initramfs.cpio.gz"),
            "-append", cfg["kernel_append"],
            "-serial", "file:" + serial,
            "-qmp", "unix:%s,server=on,wait=off" % qmp_sock,
            # Posted-interrupt processing by the emulated CPUs (KVM's APICv).
            "-trace", "enable=vmx_posted_interrupt,file=" + os.path.join(tmp, "trace.log")]
    print("qemu-pml demo: booting Debian Linux %s on %s -cpu %s -smp %d"
          % (open(os.path.join(args.image_dir, "kernel-version")).read().strip(),
             os.path.basename(args.qemu), args.cpu, args.smp), flush=True)
    t0 = time.monotonic()
    stderr_path = os.path.join(tmp, "qemu.stderr")
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(stderr_path, "w"))
    try:
        if not wait_for(serial, "qemu-pml-guest: ready", proc, args.timeout):
            if proc.poll() is not None:
                print("qemu-pml demo: the emulator exited with status %d before the guest came up"
                      % proc.returncode)
            else:
                print("qemu-pml demo: the guest did not come up within %d s" % args.timeout)
            print("logs kept in %s" % tmp)
            for p in (serial, stderr_path):
                if os.path.exists(p):
                    print("---- tail of %s" % p)
                    print("\n".join(open(p, errors="replace").read().splitlines()[-25:]))
            return 1
        boot_s = time.monotonic() - t0
        guest = guest_lines(serial)
        q = QMP(qmp_sock)
        cpus = q.cmd("query-cpus-fast")
        path = cpus[0]["qom-path"]

        def prop(name):
            return q.cmd("qom-get", path=path, property=name)

        vmx_props = sorted(p["name"] for p in q.cmd("qom-list", path=path)
                           if p["name"].startswith("vmx-") and p["type"] == "bool")
        live_on = [p for p in vmx_props if prop(p)]
        has_vmx = bool(prop("vmx"))
        # What the model itself defines, before the accelerator filters it.
        name, _, opts = args.cpu.partition(",")
        model_props = {}
        for o in filter(None, opts.split(",")):
            if o[0] in "+-":
                model_props[o[1:]] = o[0] == "+"
            elif "=" in o:
                k, _, v = o.partition("=")
                if v in ("on", "true", "yes", "off", "false", "no"):
                    model_props[k] = v in ("on", "true", "yes")
                else:
                    model_props[k] = v   # vendor=, model-id=, phys-bits=...
        exp = q.cmd("query-cpu-model-expansion", type="full",
                    model={"name": name, "props": model_props})["model"]["props"]
        model_on = sorted(k for k, v in exp.items() if k.startswith("vmx-") and v is True)

        print("\nguest (Linux /proc/cpuinfo), up after %.1f s:" % boot_s)
        print("  kernel        %s" % guest.get("kernel", "?"))
        print("  cpus          %s" % guest.get("cpus", "?"))
        print("  model name    %s" % guest.get("model", "?"))
        print("  vmx flag      %s" % guest.get("vmx", "?"))
        if guest.get("vmx") == "yes":
            print("  vmx flags     %s" % (guest.get("vmx-flags") or "(none: Linux lists EPT, VPID, "
                                                            "unrestricted guest... only when offered)"))
            print("  kvm_intel     %s%s" % (guest.get("kvm_intel", "?"), "".join(
                " %s=%s" % (k[len("kvm_intel."):], v) for k, v in sorted(guest.items())
                if k.startswith("kvm_intel."))))
            for k, v in guest.items():
                if k == "insmod-failed":
                    print("  insmod failed: %s" % v)
            smoke = [(k[len("kvm-smoke-"):], v) for k, v in guest.items()
                     if k.startswith("kvm-smoke-")]
            if smoke:
                print("  a KVM guest   (kvm-smoke: Linux KVM runs a nested guest of its own)")
                for k, v in smoke:
                    print("    %-12s %s" % (k, v))
        print("\nQEMU (QMP):")
        print("  vCPUs         %d (%s)" % (len(cpus), ", ".join(
            "cpu%d thread %d" % (c["cpu-index"], c["thread-id"]) for c in cpus)))
        print("  CPU type      %s" % prop("type"))
        print("  model-id      %s" % prop("model-id"))
        print("  family/model  %d/%d stepping %d" % (prop("family"), prop("model"), prop("stepping")))
        print("  VMX controls the model defines (query-cpu-model-expansion): %d of %d"
              % (len(model_on), len(vmx_props)))
        line = "   "
        for c in model_on:
            if len(line) + len(c) > 96:
                print(line)
                line = "   "
            line += " " + c
        print(line)
        print("  on the running vCPU: CPUID.1:ECX.VMX %s, %d vmx-* controls offered%s"
              % ("on" if has_vmx else "off", len(live_on), ":" if live_on else ""))
        if live_on:
            print("    " + " ".join(live_on))
        missing = [c for c in model_on if c not in live_on]
        if has_vmx and missing:
            print("  not emulated yet, filtered out by TCG: %d of the model's %d controls"
                  % (len(missing), len(model_on)))
        warnings = [l.strip() for l in open(stderr_path, errors="replace")
                    if "vmx" in l and "support" in l]
        if not has_vmx:
            print("\nVMX not available in this build: TCG does not emulate VMX yet, "
                  "so QEMU filters it out of -cpu %s." % args.cpu)
            if warnings:
                print("  QEMU said: %s%s" % (warnings[0], " (and %d more such lines)"
                                              % (len(warnings) - 1) if len(warnings) > 1 else ""))
        q.cmd("quit")
        q.close()
        proc.wait(timeout=30)
        trace = os.path.join(tmp, "trace.log")
        posted = sum(1 for l in open(trace, errors="replace") if "vmx_posted_interrupt" in l) \
            if os.path.exists(trace) else 0
        print("  posted-interrupt notifications processed in non-root operation "
              "(trace vmx_posted_interrupt): %d" % posted)
        agree = (guest.get("vmx") == "yes") == has_vmx and int(guest.get("cpus", -1)) == len(cpus)
        shutil.rmtree(tmp, ignore_errors=True)
        print("\nguest and QMP views %s" % ("agree" if agree else "DISAGREE"))
        return 0 if agree else 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
