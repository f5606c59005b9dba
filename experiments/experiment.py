#!/usr/bin/python3
"""qpml experiment: an experiment is a TOML file; a run is stored in SQLite.

  experiment.py check FILE...            validate, print what would run
  experiment.py run FILE [--db DB] [--dry-run] [--keep-going]
  experiment.py sweep FILE [--db DB] [-j N] [--dry-run] [--keep-going]
                     [--executor local|slurm] [--slurm-dir DIR] [--sbatch-args ARGS]
  experiment.py collect JOBDIR [--db DB]  store a Slurm job's results
  experiment.py results list|show ID [--console]|export [--format csv|json] [--db DB]
  experiment.py report [--db DB] [--out DIR] [--experiment NAME] [--run ID...]

A file describes the machine (CPU model, hypervisor), extended PML's
parameters, the domU, the workload, the estimators and truths, the windows
and the repetitions (experiments/README.md; examples in
experiments/examples/).  A bad file is refused before anything boots, with
the key that is wrong.  Each repetition is one run of
guest-tests/xen/xen-demo.py; its figures go to the results database
(default results/qpml.sqlite, schema in docs/results.md).
"""
import argparse
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import results as resultsdb  # noqa: E402
import slurm  # noqa: E402

DEMO = os.path.join(REPO, "guest-tests", "xen", "xen-demo.py")
DOMU_CONFIGS = os.path.join(REPO, "configs", "xen")
# Estimator -> dom0 step (guest-tests/xen/dom0-init).
ESTIMATORS = {"epml": "epml", "pml": "pmlwss", "sample": "sample"}
TRUTHS = ("oracle", "plugin", "guest")


class BadExperiment(Exception):
    """A file that does not describe an experiment; the message names the key."""


# The schema: section -> key -> (type, default, check or None, what it means).
# A default of REQUIRED means the key must be given.
REQUIRED = object()


def one_of(*choices):
    def check(v):
        return None if v in choices else "one of %s" % ", ".join(map(repr, choices))
    return check


def between(lo, hi):
    def check(v):
        return None if lo <= v <= hi else "between %s and %s" % (lo, hi)
    return check


def buf_kib(v):
    ok = 4 <= v <= 2048 and (v // 4) & (v // 4 - 1) == 0 and v % 4 == 0
    return None if ok else "4 KiB times a power of two (4, 8, ..., 2048)"


def estimators(v):
    bad = [e for e in v if e not in ESTIMATORS and e != "commit"]
    if bad or not v:
        return "a non-empty list of %s" % ", ".join(map(repr, list(ESTIMATORS) + ["commit"]))
    if len(set(v)) != len(v):
        return "a list without repeats"
    return None


def truths(v):
    bad = [t for t in v if t not in TRUTHS]
    if bad or len(set(v)) != len(v):
        return "a list without repeats of %s" % ", ".join(map(repr, TRUTHS))
    return None


def domu_kind(v):
    if not v or "/" in v or not os.path.isfile(os.path.join(DOMU_CONFIGS, v + ".cfg")):
        kinds = sorted(f[:-4] for f in os.listdir(DOMU_CONFIGS) if f.endswith(".cfg"))
        return "a domU config in configs/xen/ (%s)" % ", ".join(map(repr, kinds))
    return None


def packages(v):
    bad = [x for x in v if not isinstance(x, str) or not re.fullmatch(r"[a-z0-9][a-z0-9.+-]+", x)]
    if bad:
        return "a list of Debian package names"
    if len(set(v)) != len(v):
        return "a list without repeats"
    return None


def commands(v):
    return None if all(isinstance(x, str) and x.strip() for x in v) else \
        "a list of non-empty shell commands"


def seeds(v):
    return None if v and all(isinstance(x, int) and 0 <= x < 2**32 for x in v) else \
        "a non-empty list of integers 0..2^32-1"


SCHEMA = {
    "": {
        "name": (str, REQUIRED, None, "a short name, stored with every run"),
        "description": (str, "", None, "what the experiment is for"),
    },
    "machine": {
        "cpu": (str, "Skylake-Server,+vmx", None, "QEMU -cpu model (epml=on is added when needed)"),
        "smp": (int, 2, between(1, 64), "host vCPUs (Xen's CPUs)"),
        "memory_mb": (int, 2048, between(1024, 65536), "host memory"),
        "hypervisor": (str, "xen-pml", one_of("xen-pml", "debian"),
                       "Xen: xen-pml's build, or Debian's binary (stock PML only)"),
        "xen_args": (str, "", None, "appended to Xen's command line"),
        "timeout_s": (int, 900, between(60, 7200), "time limit of one run"),
    },
    "epml": {
        "buffer_kib": (int, 64, buf_kib, "each log buffer's size"),
        "reads": (bool, True, None, "log reads (accessed 0->1) as well as writes"),
        "walk_filter": (bool, True, None, "keep the guest's page-walk accesses out of the log"),
        "notify_cpu": (int, 0, between(0, 63), "Xen CPU the buffer-full notification goes to "
                       "(notify = 'xen')"),
        "notify": (str, "xen", one_of("xen", "dom0"), "xen: the notification interrupts a Xen "
                   "CPU, Xen's tasklet drains the buffers into its longmap; dom0: it is posted "
                   "to a PVH dom0's vCPU 0 and dom0 drains buffers of its own memory "
                   "(xen-epml enable --dom0-drain; docs/xen-pml.md)"),
    },
    "domu": {
        "kind": (str, "pvh-wss", domu_kind, "the domU's config, configs/xen/<kind>.cfg"),
        "pin": (str, "", None, "pin the domU's vCPUs to these Xen CPUs (xl vcpu-pin), '' = no"),
        "memory_mb": (int, 0, between(0, 16384), "the domU's memory, 0 = its config's"),
        "vcpus": (int, 0, between(0, 64), "the domU's vCPUs, 0 = its config's"),
        "swap_mb": (int, 0, between(0, 4096), "a swap disk of this size for the domU (xvdb, a RAM "
                    "disk in dom0), 0 = none; with memory_mb below the working set the domU "
                    "swaps, and Geiger and the exclusive cache run on its swap traffic "
                    "(docs/estimators.md)"),
        "swap_expect": (str, "yes", one_of("yes", "no", "any"), "with swap_mb: what a run must "
                        "show, yes: the domU swapped; no: memory above the working set, no "
                        "swap traffic in any estimator window (Geiger and the exclusive cache "
                        "give the allocation); any: no check"),
        "superpages": (bool, True, None, "Xen maps the domU with 2 MiB and 1 GiB EPT pages "
                       "(Xen's default); false: 4 KiB only (hap_2mb=0 hap_1gb=0, Xen-wide)"),
    },
    "workload": {
        "wss_touch": (str, "", None, "wss-touch's arguments in the domU (workload/README)"),
        "packages": (list, [], packages, "Debian packages installed into the domU (with run)"),
        "setup": (list, [], commands, "shell commands run once in the domU before run"),
        "run": (str, "", None, "a shell command run again and again in the domU: the "
                "workload instead of wss-touch (each completion is a pass)"),
    },
    "measure": {
        "estimators": (list, ["epml"], estimators, "epml, pml, sample, commit"),
        "truths": (list, ["plugin"], truths,
                   "oracle (pauses the domU at each window), plugin, guest"),
        "window_s": (float, 2.0, between(0.5, 3600), "window length"),
        "windows": (int, 3, between(1, 1000), "windows per estimator"),
        "baseline": (bool, False, None, "first a step as long as one estimator's windows with "
                     "no estimator: the domU's pass times there are the cost baseline"),
        "samples": (int, 1000, between(1, 65536), "pages the sample estimator tests per window"),
        "repetitions": (int, 1, between(1, 1000), "runs of the same inputs"),
        "seeds": (list, [42], seeds, "wss-touch seeds, one per repetition, cycled"),
    },
}


def validate(doc, path):
    """The experiment with defaults filled in; BadExperiment on any defect."""
    exp = {}
    for sec, keys in SCHEMA.items():
        src = doc if sec == "" else doc.get(sec, {})
        where = (sec + ".") if sec else ""
        if sec and sec in doc and not isinstance(doc[sec], dict):
            raise BadExperiment("%s: [%s] must be a table" % (path, sec))
        out = exp if sec == "" else exp.setdefault(sec, {})
        for key, (typ, default, check, _) in keys.items():
            if key not in src:
                if default is REQUIRED:
                    raise BadExperiment("%s: missing key '%s%s'" % (path, where, key))
                out[key] = list(default) if isinstance(default, list) else default
                continue
            v = src[key]
            if typ is float and isinstance(v, int) and not isinstance(v, bool):
                v = float(v)
            if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
                raise BadExperiment("%s: '%s%s' must be %s (got %r)"
                                    % (path, where, key, {str: "a string", int: "an integer",
                                                          float: "a number", bool: "true or false",
                                                          list: "a list"}[typ], v))
            why = check(v) if check else None
            if why:
                raise BadExperiment("%s: '%s%s' must be %s (got %r)" % (path, where, key, why, v))
            out[key] = v
        for key in src:
            if sec == "" and key in SCHEMA:
                continue
            if sec == "" and isinstance(src[key], dict):
                raise BadExperiment("%s: unknown section [%s] (known: %s)"
                                    % (path, key, ", ".join(x for x in SCHEMA if x)))
            if key not in keys:
                raise BadExperiment("%s: unknown key '%s%s' (known: %s)"
                                    % (path, where, key, ", ".join(where + k for k in keys)))
    m = exp["measure"]
    if "commit" in m["estimators"] and ("epml" not in m["estimators"] or "oracle" not in m["truths"]):
        raise BadExperiment("%s: 'measure.estimators' has 'commit', which is read at extended PML's "
                            "oracle cuts: it needs 'epml' and truths = [..., 'oracle']" % path)
    if set(m["truths"]) & {"plugin", "guest"} and "epml" not in m["estimators"]:
        raise BadExperiment("%s: 'measure.truths' plugin and guest score extended PML's windows: "
                            "'measure.estimators' needs 'epml'" % path)
    if exp["machine"]["hypervisor"] == "debian" and "epml" in m["estimators"]:
        raise BadExperiment("%s: 'machine.hypervisor' = 'debian' has no extended PML: use "
                            "'xen-pml', or drop 'epml' from 'measure.estimators'" % path)
    if exp["epml"]["notify"] == "dom0" and exp["epml"]["notify_cpu"]:
        raise BadExperiment("%s: 'epml.notify_cpu' names a Xen CPU for notify = 'xen'; with "
                            "'dom0' the notification goes to dom0's vCPU 0" % path)
    if exp["epml"]["notify"] == "dom0" and exp["machine"]["hypervisor"] != "xen-pml":
        raise BadExperiment("%s: 'epml.notify' = 'dom0' needs 'machine.hypervisor' = 'xen-pml'"
                            % path)
    if exp["domu"]["swap_expect"] != "yes" and not exp["domu"]["swap_mb"]:
        raise BadExperiment("%s: 'domu.swap_expect' is about the swap disk: it needs "
                            "'domu.swap_mb'" % path)
    wl = exp["workload"]
    if bool(wl["wss_touch"].strip()) == bool(wl["run"].strip()):
        raise BadExperiment("%s: [workload] needs exactly one of 'workload.wss_touch' (wss-touch's "
                            "phases) and 'workload.run' (a command, with 'packages' and 'setup')"
                            % path)
    if wl["run"].strip():
        if "guest" in m["truths"]:
            raise BadExperiment("%s: 'measure.truths' guest is wss-touch's record of its own "
                                "pages: a 'workload.run' workload has none (use plugin)" % path)
        return exp
    if wl["packages"] or wl["setup"]:
        raise BadExperiment("%s: 'workload.packages' and 'workload.setup' go with 'workload.run', "
                            "not with 'workload.wss_touch'" % path)
    try:
        shlex.split(exp["workload"]["wss_touch"])
    except ValueError as e:
        raise BadExperiment("%s: 'workload.wss_touch': %s" % (path, e))
    if "--seed" in exp["workload"]["wss_touch"].split():
        raise BadExperiment("%s: 'workload.wss_touch' must not set --seed: 'measure.seeds' does"
                            % path)
    return exp


def read_toml(path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise BadExperiment("%s: %s" % (path, e.strerror))
    except tomllib.TOMLDecodeError as e:
        raise BadExperiment("%s: not TOML: %s" % (path, e))


def grid_axes(doc):
    """The keys given as a grid: a list where the schema wants one value, or
    a list of lists where it wants a list.  [(section, key, values)]."""
    axes = []
    for sec, keys in SCHEMA.items():
        src = doc if sec == "" else doc.get(sec)
        if not isinstance(src, dict):
            continue
        for key, (typ, _, _, _) in keys.items():
            v = src.get(key)
            if not isinstance(v, list) or not v:
                continue
            if typ is not list or all(isinstance(x, list) for x in v):
                axes.append((sec, key, v))
    return axes


def expand(doc, path, grid_ok):
    """The experiments a file describes: [(point, experiment)], where point
    names each grid key's value ({} for a file without a grid)."""
    axes = grid_axes(doc)
    if axes and not grid_ok:
        sec, key, _ = axes[0]
        raise BadExperiment("%s: '%s' is a list of values, a parameter grid: run it with "
                            "'experiment sweep'" % (path, (sec + "." if sec else "") + key))
    points = [({}, doc)]
    for sec, key, values in axes:
        name = (sec + "." if sec else "") + key
        if len(set(json.dumps(v, sort_keys=True) for v in values)) != len(values):
            raise BadExperiment("%s: '%s' lists a value twice" % (path, name))
        nxt = []
        for point, d in points:
            for v in values:
                d2 = json.loads(json.dumps(d))
                (d2 if sec == "" else d2[sec])[key] = v
                nxt.append((dict(point, **{name: v}), d2))
        points = nxt
    out = []
    for point, d in points:
        where = path if not point else "%s (%s)" % (
            path, ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in point.items()))
        out.append((point, validate(d, where)))
    return out


def load(path, grid_ok=False):
    return expand(read_toml(path), path, grid_ok)


def plan(points):
    """Every run: (point, experiment, repetition, seed)."""
    runs = []
    for point, exp in points:
        m = exp["measure"]
        for r in range(m["repetitions"]):
            runs.append((point, exp, r + 1, m["seeds"][r % len(m["seeds"])]))
    return runs


def demo_config(exp):
    """xen-demo.py's JSON config for the experiment."""
    mach = exp["machine"]
    cpu = mach["cpu"]
    if "epml" in exp["measure"]["estimators"] and "epml=on" not in cpu.split(","):
        cpu += ",epml=on"
    return {
        "cpu": cpu, "smp": mach["smp"], "memory_mb": mach["memory_mb"], "machine": "q35",
        "hypervisor": mach["hypervisor"],
        "xen_cmdline": "console=com1 com1=115200,8n1 dom0_mem=768M,max:768M dom0_max_vcpus=2 "
                       "loglvl=all guest_loglvl=all",
        "dom0_cmdline": "console=hvc0 earlyprintk=xen loglevel=4",
        "domu": exp["domu"]["kind"], "workload": exp["workload"]["wss_touch"],
        "timeout_s": mach["timeout_s"],
    }


def demo_args(exp, seed):
    """xen-demo.py's options for one repetition (the config aside)."""
    m, e = exp["measure"], exp["epml"]
    steps = ["create"] + (["baseline"] if m["baseline"] else []) + [ESTIMATORS[x] for x in m["estimators"] if x in ESTIMATORS] + ["destroy"]
    wl, d = exp["workload"], exp["domu"]
    args = ["--steps", ",".join(steps), "--epml", "%g,%d" % (m["window_s"], m["windows"]),
            "--samples", str(m["samples"]),
            ("--workload=--seed %d %s" % (seed, wl["wss_touch"])).strip()]
    if wl["run"]:
        args.append("--run=" + wl["run"])
        args += ["--setup=" + c for c in wl["setup"]]
        if wl["packages"]:
            args.append("--packages=" + " ".join(wl["packages"]))
    if d["memory_mb"]:
        args += ["--domu-memory", str(d["memory_mb"])]
    if d["vcpus"]:
        args += ["--domu-vcpus", str(d["vcpus"])]
    if d["swap_mb"]:
        args += ["--swap", str(d["swap_mb"])]
        if d["swap_expect"] != "yes":
            args += ["--swap-expect", d["swap_expect"]]
    enable = []
    if not e["reads"]:
        enable.append("--no-reads")
    if not e["walk_filter"]:
        enable.append("--no-filter")
    if e["buffer_kib"] != 64:
        enable += ["--buf-kib", str(e["buffer_kib"])]
    if e["notify_cpu"]:
        enable += ["--notify-cpu", str(e["notify_cpu"])]
    if e["notify"] == "dom0":
        enable.append("--dom0-drain")
        args += ["--dom0", "pvh"]
    if enable:
        args.append("--epml-enable=" + " ".join(enable))
    if exp["domu"]["pin"]:
        args += ["--pin-domu", exp["domu"]["pin"]]
    xen_args = exp["machine"]["xen_args"]
    if not d["superpages"]:
        xen_args = (xen_args + " hap_2mb=0 hap_1gb=0").strip()
    if xen_args:
        args += ["--xen-args", xen_args]
    for t, flag in (("oracle", "--oracle"), ("plugin", "--truth-plugin"), ("guest", "--truth")):
        if t in m["truths"]:
            args.append(flag)
    return args


def describe(point, exp, rep, seed):
    where = ", ".join("%s=%s" % (k, json.dumps(v)) for k, v in point.items())
    return "%s%s, repetition %d, seed %d" % (exp["name"], " [%s]" % where if where else "", rep,
                                            seed)


def cmd_check(a):
    rc = 0
    for path in a.files:
        try:
            runs = plan(load(path, grid_ok=True))
        except BadExperiment as e:
            print("experiment: %s" % e, file=sys.stderr)
            rc = 2
            continue
        grid = any(point for point, _, _, _ in runs)
        print("%s: ok, %d run%s%s" % (path, len(runs), "s" if len(runs) > 1 else "",
                                      " (a grid: run it with 'experiment sweep')" if grid else ""))
        for i, (point, exp, rep, seed) in enumerate(runs, 1):
            print("  run %d: %s" % (i, describe(point, exp, rep, seed)))
            print("    xen-demo.py --config <%s...> %s" % (
                json.dumps(demo_config(exp), sort_keys=True)[:50],
                " ".join(shlex.quote(x) for x in demo_args(exp, seed))))
    return rc


class Progress:
    """One status line on a terminal (runs done, the current run's window,
    an estimate of the time left); plain lines otherwise."""

    def __init__(self, total, enabled, label):
        self.total, self.enabled, self.label = total, enabled, label
        self.done = self.skipped = self.failed = 0
        self.durations = []
        self.current = {}     # run index -> (description, console log, started, windows)
        self.seen = {}        # console log -> (bytes read, estimator windows in them)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        if enabled:
            self.thread = threading.Thread(target=self._loop, daemon=True)
            self.thread.start()

    def windows_seen(self, log):
        """Windows ended so far in a running run's console log, reading only
        what it gained since the last look (logs with page lists are large)."""
        offset, count = self.seen.get(log, (0, 0))
        try:
            with open(log, "rb") as f:
                f.seek(offset)
                new = f.read()
        except OSError:
            return count
        whole = new[:new.rfind(b"\n") + 1]       # complete lines only
        count += whole.count(b"@@QPML est name=")
        self.seen[log] = (offset + len(whole), count)
        return count

    def line(self):
        with self.lock:
            left = self.total - self.done - self.skipped
            eta = ""
            if self.durations and left:
                mean = sum(self.durations) / len(self.durations)
                running = [time.monotonic() - t for _, _, t, _ in self.current.values()]
                rest = max(0.0, left * mean - sum(min(r, mean) for r in running))
                eta = ", about %d min left" % round(rest / 60 / max(1, len(running)))
            cur = "; ".join("#%d %s: window %d/%d" % (i, d, self.windows_seen(log), nw)
                            for i, (d, log, _, nw) in sorted(self.current.items()))
            return "%s: %d/%d done (%d skipped, %d failed)%s%s" % (
                self.label, self.done + self.skipped, self.total, self.skipped, self.failed, eta,
                " | " + cur if cur else "")

    def _loop(self):
        while not self.stop.wait(2.0):
            sys.stdout.write("\r\033[K" + self.line()[:max(20, shutil.get_terminal_size().columns - 1)])
            sys.stdout.flush()

    def say(self, text):
        with self.lock:
            if self.enabled:
                sys.stdout.write("\r\033[K")
            print(text, flush=True)

    def close(self):
        self.stop.set()
        if self.enabled:
            self.thread.join()
            sys.stdout.write("\r\033[K")
        print(self.line(), flush=True)


def demo_argv(exp, seed, qemu, image_dir, workdir):
    """xen-demo.py's command line for one run, its config written into
    @workdir, where its results.json and console.log will be."""
    cfg = os.path.join(workdir, "config.json")
    with open(cfg, "w") as f:
        json.dump(demo_config(exp), f)
    argv = [sys.executable, DEMO, "--qemu", qemu, "--image-dir", image_dir, "--config", cfg,
            "--results", os.path.join(workdir, "results.json"),
            "--log", os.path.join(workdir, "console.log")] + demo_args(exp, seed)
    with open(os.path.join(workdir, "argv.json"), "w") as f:
        json.dump(argv, f)
    return argv


def execute(run, index, db_path, qemu, image_dir, verbose, progress, file_text, path):
    """One run through xen-demo.py, stored: (passed, run id or None)."""
    point, exp, rep, seed = run
    with tempfile.TemporaryDirectory(prefix="qpml-exp-") as tmp:
        argv = demo_argv(exp, seed, qemu, image_dir, tmp)
        out = os.path.join(tmp, "results.json")
        log = os.path.join(tmp, "console.log")
        nwin = exp["measure"]["windows"] * len([e for e in exp["measure"]["estimators"]
                                                if e in ESTIMATORS])
        t0 = time.monotonic()
        with progress.lock:
            progress.current[index] = (describe(point, exp, rep, seed), log, t0, nwin)
        progress.say("experiment: run %d: %s" % (index, describe(point, exp, rep, seed)))
        p = subprocess.run(argv, stdout=None if verbose else subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        with progress.lock:
            del progress.current[index]
        if not os.path.exists(out):
            # xen-demo refused or crashed before it measured anything.
            progress.say((p.stdout or "") + "experiment: run %d: xen-demo.py exited %d without "
                         "results" % (index, p.returncode))
            with progress.lock:
                progress.failed += 1
                progress.done += 1
            return False, None
        with open(out) as f:
            res = json.load(f)
        db = resultsdb.open_db(db_path)
        with progress.lock:
            rid = resultsdb.store(db, exp, file_text, path, rep, seed, argv, res, point)
            text = resultsdb.summary(db, rid)
            progress.durations.append(time.monotonic() - t0)
            progress.done += 1
            progress.failed += 0 if res["pass"] else 1
        db.close()
        if not res["pass"] and not verbose:
            text += "\n" + "\n".join((p.stdout or "").splitlines()[-60:])
        progress.say(text)
        return bool(res["pass"]), rid


def run_all(a, grid_ok):
    try:
        runs = plan(load(a.file, grid_ok=grid_ok))
    except BadExperiment as e:
        print("experiment: %s" % e, file=sys.stderr)
        return 2
    if a.dry_run:
        return cmd_check(argparse.Namespace(files=[a.file]))
    with open(a.file) as f:
        text = f.read()
    db = resultsdb.open_db(a.db)
    todo = []
    skipped = 0
    for i, run in enumerate(runs, 1):
        point, exp, rep, seed = run
        if grid_ok and resultsdb.has_passing_run(db, resultsdb.inputs_hash(exp, rep, seed)):
            skipped += 1
            continue
        todo.append((i, run))
    db.close()
    build = os.environ.get("QEMU_PML_BUILD") or os.path.join(REPO, "_build")
    qemu = a.qemu or os.path.join(build, "qemu-system-x86_64")
    image_dir = a.image_dir or os.path.join(build, "xen")
    if getattr(a, "executor", "local") == "slurm":
        return sweep_slurm(a, todo, len(runs), skipped, text, qemu, image_dir)
    progress = Progress(len(runs), grid_ok and sys.stdout.isatty() and not a.verbose,
                        "sweep" if grid_ok else "experiment")
    progress.skipped = skipped
    if skipped:
        progress.say("experiment: %d of %d runs already in %s with the same inputs: skipped"
                     % (skipped, len(runs), a.db))
    jobs = getattr(a, "jobs", 1)
    results = []
    if jobs <= 1:
        for i, run in todo:
            results.append(execute(run, i, a.db, qemu, image_dir, a.verbose, progress, text,
                                   a.file))
            if not results[-1][0] and not a.keep_going:
                break
    else:
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futs = [pool.submit(execute, run, i, a.db, qemu, image_dir, a.verbose, progress,
                                text, a.file) for i, run in todo]
            results = [f.result() for f in futs]
    progress.close()
    stored = [rid for _, rid in results if rid is not None]
    if a.report and stored:
        rc = cmd_report(argparse.Namespace(db=a.db, out=a.report, experiment=None, run=stored))
        if rc:
            return rc
    return 0 if all(p for p, _ in results) and len(results) == len(todo) else 1


def cmd_run(a):
    return run_all(a, grid_ok=False)


def say(text):
    print(text, flush=True)


def sweep_slurm(a, todo, total, skipped, text, qemu, image_dir):
    """The runs to do as one Slurm job array; wait, collect, report."""
    if skipped:
        say("experiment: %d of %d runs already in %s with the same inputs: skipped"
            % (skipped, total, a.db))
    if not todo:
        return 0
    name = todo[0][1][1]["name"]
    jobdir = os.path.abspath(a.slurm_dir or os.path.join(
        os.path.dirname(os.path.abspath(a.db)), "slurm",
        "%s-%s" % (name, time.strftime("%Y%m%d-%H%M%S"))))
    if os.path.exists(os.path.join(jobdir, "tasks.json")):
        say("experiment: %s already holds a job: use another --slurm-dir, or "
            "'experiment collect %s'" % (jobdir, jobdir))
        return 2
    try:
        sargs = shlex.split(a.sbatch_args)
    except ValueError as e:
        say("experiment: --sbatch-args: %s" % e)
        return 2
    if not any(x.startswith(("--cpus-per-task", "-c")) for x in sargs):
        sargs.append("--cpus-per-task=2")
    script = slurm.write_job(jobdir, todo, qemu, image_dir, text, a.file, name, sargs)
    try:
        jobid = slurm.submit(script)
        say("experiment: %d runs submitted as Slurm job array %s (%s)" % (len(todo), jobid,
                                                                         script))
        slurm.wait(jobid, jobdir, len(todo), say)
    except slurm.SlurmError as e:
        say("experiment: %s" % e)
        return 2
    db = resultsdb.open_db(a.db)
    passed, failed, missing, stored = slurm.collect(jobdir, db, resultsdb, say)
    say("experiment: Slurm job %s: %d passed, %d failed, %d left no results (%s)"
        % (jobid, passed, failed, missing, jobdir))
    if a.report and stored:
        cmd_report(argparse.Namespace(db=a.db, out=a.report, experiment=None, run=stored))
    return 0 if passed == len(todo) else 1


def cmd_task(a):
    return slurm.run_task(os.path.abspath(a.jobdir), a.index, demo_argv)


def cmd_collect(a):
    jobdir = os.path.abspath(a.jobdir)
    if not os.path.exists(os.path.join(jobdir, "tasks.json")):
        say("experiment: %s is not a Slurm job directory (no tasks.json)" % jobdir)
        return 2
    passed, failed, missing, _ = slurm.collect(jobdir, resultsdb.open_db(a.db), resultsdb, say)
    say("experiment: %d passed, %d failed, %d left no results" % (passed, failed, missing))
    return 0 if failed == missing == 0 else 1


def cmd_sweep(a):
    if a.executor not in ("local", "slurm"):
        print("experiment: --executor is local or slurm (got %r)" % a.executor, file=sys.stderr)
        return 2
    if not 1 <= a.jobs <= 64:
        print("experiment: -j wants 1..64 (got %d)" % a.jobs, file=sys.stderr)
        return 2
    return run_all(a, grid_ok=True)


def cmd_results(a):
    if not os.path.exists(a.db):
        print("experiment: no results database at %s (run an experiment first)" % a.db,
              file=sys.stderr)
        return 2
    db = resultsdb.open_db(a.db)
    if a.what == "list":
        resultsdb.cmd_list(db)
    elif a.what == "export":
        resultsdb.export(db, a.format)
    else:
        if a.id is None:
            print("experiment: results show needs a run id (results list shows them)",
                  file=sys.stderr)
            return 2
        print(resultsdb.summary(db, a.id, all_checks=True))
        r = db.execute("SELECT file, qemu, xen, dom0_kernel, domu_kernel, git_commit, argv"
                       " FROM runs WHERE id = ?", (a.id,)).fetchone()
        for name, v in zip(("file", "qemu", "xen", "dom0 kernel", "domU kernel", "commit",
                            "command"), r):
            print("  %-12s %s" % (name + ":", v))
        if a.console:
            blob = db.execute("SELECT console FROM logs WHERE run_id = ?", (a.id,)).fetchone()
            print(zlib.decompress(blob[0]).decode(errors="replace"))
    return 0


def cmd_report(a):
    if not os.path.exists(a.db):
        print("experiment: no results database at %s (run an experiment first)" % a.db,
              file=sys.stderr)
        return 2
    resultsdb.open_db(a.db).close()         # refuses another schema version
    try:
        import report
    except ImportError as e:
        print("experiment: report needs matplotlib (Debian: python3-matplotlib; "
              "qemu-pml/deps.sh installs it): %s" % e, file=sys.stderr)
        return 2
    files = report.report(a.db, a.out, a.experiment, a.run)
    if not files:
        print("experiment: no runs in %s%s" % (a.db, " named %r" % a.experiment
                                               if a.experiment else ""), file=sys.stderr)
        return 2
    print("experiment: plots written to %s:" % a.out)
    for f in files:
        print("  " + f)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(prog="qpml experiment", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="validate experiment files, print what would run")
    c.add_argument("files", nargs="+")
    r = sub.add_parser("run", help="run an experiment and store it")
    r.add_argument("file")
    r.add_argument("--db", default=resultsdb.DEFAULT_DB)
    r.add_argument("--qemu")
    r.add_argument("--image-dir")
    r.add_argument("--dry-run", action="store_true", help="validate and print, boot nothing")
    r.add_argument("--keep-going", action="store_true", help="run every repetition even after a failure")
    r.add_argument("-v", "--verbose", action="store_true", help="show xen-demo.py's output as it runs")
    r.add_argument("--report", metavar="DIR", help="then plot the runs just stored into DIR")
    q = sub.add_parser("results", help="read the results database")
    q.add_argument("what", choices=("list", "show", "export"))
    q.add_argument("id", nargs="?", type=int, help="show: the run")
    q.add_argument("--db", default=resultsdb.DEFAULT_DB)
    q.add_argument("--format", choices=("csv", "json"), default="csv", help="export format")
    q.add_argument("--console", action="store_true", help="show: also the whole console")
    w = sub.add_parser("sweep", help="run every point of a parameter grid, skipping those the "
                       "database has already passed with the same inputs")
    w.add_argument("file")
    w.add_argument("--db", default=resultsdb.DEFAULT_DB)
    w.add_argument("--qemu")
    w.add_argument("--image-dir")
    w.add_argument("--dry-run", action="store_true", help="validate and print, boot nothing")
    w.add_argument("--keep-going", action="store_true")
    w.add_argument("--executor", default="local",
                   help="local (default): here; slurm: one sbatch job array, then collected")
    w.add_argument("--slurm-dir", help="slurm: the job directory (default "
                   "results/slurm/<name>-<time>, beside the database; every node must see it)")
    w.add_argument("--sbatch-args", default="", help="slurm: more #SBATCH options, e.g. "
                   "\"--partition=big --cpus-per-task=4\" (default --cpus-per-task=2)")
    w.add_argument("-j", "--jobs", type=int, default=1,
                   help="runs at once on this machine (each takes about 2 host cores)")
    w.add_argument("-v", "--verbose", action="store_true")
    w.add_argument("--report", metavar="DIR", help="then plot the runs just stored into DIR")
    g = sub.add_parser("report", help="plots (PNG and SVG) from the results database")
    g.add_argument("--db", default=resultsdb.DEFAULT_DB)
    g.add_argument("--out", default=os.path.join(REPO, "results", "plots"))
    g.add_argument("--experiment", help="only the runs of this experiment name")
    g.add_argument("--run", type=int, action="append", help="only this run (repeatable)")
    t = sub.add_parser("task", help="(inside a Slurm job) run one task of a job directory")
    t.add_argument("jobdir")
    t.add_argument("index", type=int)
    c2 = sub.add_parser("collect", help="store the results of a Slurm job directory")
    c2.add_argument("jobdir")
    c2.add_argument("--db", default=resultsdb.DEFAULT_DB)
    a = ap.parse_args(argv)
    try:
        return {"check": cmd_check, "run": cmd_run, "sweep": cmd_sweep,
                "results": cmd_results, "report": cmd_report, "task": cmd_task,
                "collect": cmd_collect}[a.cmd](a)
    except resultsdb.ResultsError as e:
        print("experiment: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
