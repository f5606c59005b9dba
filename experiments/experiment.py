#!/usr/bin/python3
"""qpml experiment: an experiment is a TOML file; a run is stored in SQLite.

  experiment.py check FILE...            validate, print what would run
  experiment.py run FILE [--db DB] [--dry-run] [--keep-going]
  experiment.py results list|show ID [--console]|export [--format csv|json] [--db DB]

A file describes the machine (CPU model, hypervisor), extended PML's
parameters, the domU, the workload, the estimators and truths, the windows
and the repetitions (experiments/README.md; examples in
experiments/examples/).  A bad file is refused before anything boots, with
the key that is wrong.  Each repetition is one run of
guest-tests/xen/xen-demo.py; its figures go to the results database
(default results/qpml.sqlite, schema in docs/results.md).
"""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import tomllib
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import results as resultsdb  # noqa: E402

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
        "notify_cpu": (int, 0, between(0, 63), "Xen CPU the buffer-full notification goes to"),
    },
    "domu": {
        "kind": (str, "pvh-wss", domu_kind, "the domU's config, configs/xen/<kind>.cfg"),
        "pin": (str, "", None, "pin the domU's vCPUs to these Xen CPUs (xl vcpu-pin), '' = no"),
    },
    "workload": {
        "wss_touch": (str, REQUIRED, None, "wss-touch's arguments in the domU (workload/README)"),
    },
    "measure": {
        "estimators": (list, ["epml"], estimators, "epml, pml, sample, commit"),
        "truths": (list, ["plugin"], truths,
                   "oracle (pauses the domU at each window), plugin, guest"),
        "window_s": (float, 2.0, between(0.5, 3600), "window length"),
        "windows": (int, 3, between(1, 1000), "windows per estimator"),
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
    try:
        shlex.split(exp["workload"]["wss_touch"])
    except ValueError as e:
        raise BadExperiment("%s: 'workload.wss_touch': %s" % (path, e))
    if "--seed" in exp["workload"]["wss_touch"].split():
        raise BadExperiment("%s: 'workload.wss_touch' must not set --seed: 'measure.seeds' does"
                            % path)
    return exp


def load(path):
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise BadExperiment("%s: %s" % (path, e.strerror))
    except tomllib.TOMLDecodeError as e:
        raise BadExperiment("%s: not TOML: %s" % (path, e))
    return validate(doc, path)


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
    steps = ["create"] + [ESTIMATORS[x] for x in m["estimators"] if x in ESTIMATORS] + ["destroy"]
    args = ["--steps", ",".join(steps), "--epml", "%g,%d" % (m["window_s"], m["windows"]),
            "--samples", str(m["samples"]),
            "--workload=--seed %d %s" % (seed, exp["workload"]["wss_touch"])]
    enable = []
    if not e["reads"]:
        enable.append("--no-reads")
    if not e["walk_filter"]:
        enable.append("--no-filter")
    if e["buffer_kib"] != 64:
        enable += ["--buf-kib", str(e["buffer_kib"])]
    if e["notify_cpu"]:
        enable += ["--notify-cpu", str(e["notify_cpu"])]
    if enable:
        args.append("--epml-enable=" + " ".join(enable))
    if exp["domu"]["pin"]:
        args += ["--pin-domu", exp["domu"]["pin"]]
    if exp["machine"]["xen_args"]:
        args += ["--xen-args", exp["machine"]["xen_args"]]
    for t, flag in (("oracle", "--oracle"), ("plugin", "--truth-plugin"), ("guest", "--truth")):
        if t in m["truths"]:
            args.append(flag)
    return args


def cmd_check(a):
    rc = 0
    for path in a.files:
        try:
            exp = load(path)
        except BadExperiment as e:
            print("experiment: %s" % e, file=sys.stderr)
            rc = 2
            continue
        reps = exp["measure"]["repetitions"]
        print("%s: ok, %d run%s" % (path, reps, "s" if reps > 1 else ""))
        for r in range(reps):
            seed = exp["measure"]["seeds"][r % len(exp["measure"]["seeds"])]
            print("  run %d: xen-demo.py --config <%s> %s" % (
                r + 1, json.dumps(demo_config(exp), sort_keys=True)[:60] + "...",
                " ".join(shlex.quote(x) for x in demo_args(exp, seed))))
    return rc


def cmd_run(a):
    try:
        exp = load(a.file)
    except BadExperiment as e:
        print("experiment: %s" % e, file=sys.stderr)
        return 2
    with open(a.file) as f:
        text = f.read()
    if a.dry_run:
        return cmd_check(argparse.Namespace(files=[a.file]))
    db = resultsdb.open_db(a.db)
    build = os.environ.get("QEMU_PML_BUILD") or os.path.join(REPO, "_build")
    qemu = a.qemu or os.path.join(build, "qemu-system-x86_64")
    image_dir = a.image_dir or os.path.join(build, "xen")
    failed = 0
    reps = exp["measure"]["repetitions"]
    for r in range(reps):
        seed = exp["measure"]["seeds"][r % len(exp["measure"]["seeds"])]
        with tempfile.TemporaryDirectory(prefix="qpml-exp-") as tmp:
            cfg = os.path.join(tmp, "config.json")
            with open(cfg, "w") as f:
                json.dump(demo_config(exp), f)
            out = os.path.join(tmp, "results.json")
            argv = [sys.executable, DEMO, "--qemu", qemu, "--image-dir", image_dir,
                    "--config", cfg, "--results", out] + demo_args(exp, seed)
            print("experiment: %s, run %d of %d (seed %d)" % (exp["name"], r + 1, reps, seed),
                  flush=True)
            p = subprocess.run(argv, stdout=None if a.verbose else subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
            if not os.path.exists(out):
                # xen-demo refused or crashed before it measured anything.
                print(p.stdout or "", end="")
                print("experiment: run %d: xen-demo.py exited %d without results"
                      % (r + 1, p.returncode), file=sys.stderr)
                failed += 1
                if not a.keep_going:
                    break
                continue
            with open(out) as f:
                res = json.load(f)
            run_id = resultsdb.store(db, exp, text, a.file, r + 1, seed, argv, res)
            summary = resultsdb.summary(db, run_id)
            print(summary)
            if not res["pass"]:
                failed += 1
                if not a.verbose:
                    print("\n".join(l for l in (p.stdout or "").splitlines()[-60:]))
                if not a.keep_going:
                    break
    return 1 if failed else 0


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
        print(resultsdb.summary(db, a.id))
        r = db.execute("SELECT file, qemu, xen, dom0_kernel, domu_kernel, git_commit, argv"
                       " FROM runs WHERE id = ?", (a.id,)).fetchone()
        for name, v in zip(("file", "qemu", "xen", "dom0 kernel", "domU kernel", "commit",
                            "command"), r):
            print("  %-12s %s" % (name + ":", v))
        if a.console:
            blob = db.execute("SELECT console FROM logs WHERE run_id = ?", (a.id,)).fetchone()
            print(zlib.decompress(blob[0]).decode(errors="replace"))
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
    q = sub.add_parser("results", help="read the results database")
    q.add_argument("what", choices=("list", "show", "export"))
    q.add_argument("id", nargs="?", type=int, help="show: the run")
    q.add_argument("--db", default=resultsdb.DEFAULT_DB)
    q.add_argument("--format", choices=("csv", "json"), default="csv", help="export format")
    q.add_argument("--console", action="store_true", help="show: also the whole console")
    a = ap.parse_args(argv)
    try:
        return {"check": cmd_check, "run": cmd_run, "results": cmd_results}[a.cmd](a)
    except resultsdb.ResultsError as e:
        print("experiment: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
