#!/usr/bin/python3
"""TAP: ./qpml experiment refuses bad files before booting, and stores runs.

  1. Malformed experiment files: each is refused with exit status 2 and a
     message naming the key (or section) at fault, and nothing boots (the
     emulator given is a script that leaves a mark if it is ever run; a
     good file shows that it does, and that a failed run is stored).
  2. The results database: the schema docs/results.md documents is the one
     results.py creates (every table and column), and a database of another
     schema version is refused.
  3. One real experiment (experiments/examples/tiny.toml: extended PML, two
     2 s windows, the plugin truth) run by `experiment run` on the built
     emulator and Xen images, stored, and read back by `results list`,
     `show` and `export` (CSV and JSON), one row per window.
  4. Sweeps: a grid's runs are counted; a sweep skips what the database
     has passed with the same inputs and runs (only) the rest.
  5. `report` draws its plots from the stored runs, as PNG and SVG.
  6. A real-package workload (experiments/examples/tiny-package.toml:
     Debian's sqlite3 installed into the domU, a database made by setup, a
     query per pass) runs, passes against the plugin truth and is stored;
     one whose setup command fails is a failed run, stored, with the
     command's own error shown.

Usage: test-experiment.py QEMU IMAGE_DIR
"""
import csv
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
EXP_DIR = os.path.dirname(HERE)
REPO = os.path.dirname(EXP_DIR)
sys.path.insert(0, os.path.join(REPO, "guest-tests"))
sys.path.insert(0, EXP_DIR)
from tap import done, ok  # noqa: E402
import results as resultsdb  # noqa: E402

TOOL = os.path.join(EXP_DIR, "experiment.py")
qemu, image_dir = sys.argv[1], sys.argv[2]
tmp = tempfile.mkdtemp(prefix="qpml-test-exp-")


def tool(*args, timeout=120):
    p = subprocess.run([sys.executable, TOOL] + list(args), capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout + p.stderr


# 1. Malformed files.
GOOD = """name = "x"
[workload]
wss_touch = "--loops 0 rw50:8M:seq:1x"
"""
BAD = [
    ("not TOML", 'name = "x"\n[workload\n', r"not TOML"),
    ("no name", '[workload]\nwss_touch = "rw50:8M:seq:1x"\n', r"missing key 'name'"),
    ("no workload", 'name = "x"\n', r"\[workload\] needs exactly one of 'workload.wss_touch'"),
    ("both workloads", GOOD + "run = 'true'\n", r"needs exactly one of"),
    ("bad package name", 'name = "x"\n[workload]\nrun = "true"\npackages = ["Redis Server"]\n',
     r"'workload.packages' must be a list of Debian package names"),
    ("packages with wss-touch", GOOD + "packages = ['sqlite3']\n",
     r"'workload.packages' and 'workload.setup' go with 'workload.run'"),
    ("guest truth of a command", 'name = "x"\n[workload]\nrun = "true"\n'
     '[measure]\ntruths = ["guest"]\n', r"'measure.truths' guest is wss-touch's record"),
    ("domU memory out of range", GOOD + "[domu]\nmemory_mb = 100000\n",
     r"'domu.memory_mb' must be between 0 and 16384"),
    ("swap disk out of range", GOOD + "[domu]\nswap_mb = 5000\n",
     r"'domu.swap_mb' must be between 0 and 4096"),
    ("unknown section", GOOD + "[machin]\ncpu = 'max'\n", r"unknown section \[machin\]"),
    ("unknown key", GOOD + "[epml]\nbuffer = 16\n", r"unknown key 'epml.buffer'"),
    ("wrong type", GOOD + "[machine]\nsmp = '2'\n", r"'machine.smp' must be an integer"),
    ("out of range", GOOD + "[machine]\nsmp = 0\n", r"'machine.smp' must be between 1 and 64"),
    ("bad buffer size", GOOD + "[epml]\nbuffer_kib = 24\n", r"'epml.buffer_kib' must be 4 KiB times"),
    ("bad hypervisor", GOOD + "[machine]\nhypervisor = 'kvm'\n", r"'machine.hypervisor' must be one of"),
    ("unknown estimator", GOOD + "[measure]\nestimators = ['epml', 'damon']\n",
     r"'measure.estimators' must be a non-empty list of"),
    ("commit without oracle", GOOD + "[measure]\nestimators = ['epml', 'commit']\n",
     r"'measure.estimators' has 'commit'"),
    ("Debian's Xen with epml", GOOD + "[machine]\nhypervisor = 'debian'\n",
     r"'machine.hypervisor' = 'debian' has no extended PML"),
    ("unknown domU", GOOD + "[domu]\nkind = 'hvm-nope'\n", r"'domu.kind' must be a domU config"),
    ("seed in the workload", 'name = "x"\n[workload]\nwss_touch = "--seed 3 rw50:8M:seq:1x"\n',
     r"must not set --seed"),
    ("bool as int", GOOD + "[measure]\nwindows = true\n", r"'measure.windows' must be an integer"),
    ("swap_expect without a swap disk", GOOD + "[domu]\nswap_expect = 'no'\n",
     r"'domu.swap_expect' is about the swap disk: it needs 'domu.swap_mb'"),
]
def marking_qemu(name):
    """An 'emulator' that only leaves a mark (and fails): did anything boot?"""
    path, mark = os.path.join(tmp, "qemu-" + name), os.path.join(tmp, "booted-" + name)
    with open(path, "w") as f:
        f.write("#!/bin/sh\ntouch %s\nexit 1\n" % mark)
    os.chmod(path, 0o755)
    return path, mark


fake_qemu, mark = marking_qemu("bad-files")
for what, text, want in BAD:
    path = os.path.join(tmp, "bad.toml")
    with open(path, "w") as f:
        f.write(text)
    rc, out = tool("run", path, "--qemu", fake_qemu, "--image-dir", image_dir,
                   "--db", os.path.join(tmp, "never.sqlite"))
    ok(rc == 2 and re.search(want, out) and "Traceback" not in out and not os.path.exists(mark),
       "%s: refused before booting, naming it (rc=%d: %s)" % (what, rc, out.strip()[:160]))
ok(not os.path.exists(os.path.join(tmp, "never.sqlite")), "a refused file creates no database")
# The same emulator on a good file: it leaves its mark (so the checks above
# can fail), the run fails, and it is stored as failed.
path = os.path.join(tmp, "good.toml")
with open(path, "w") as f:
    f.write(GOOD)
failed_db = os.path.join(tmp, "failed.sqlite")
rc, out = tool("run", path, "--qemu", fake_qemu, "--image-dir", image_dir, "--db", failed_db,
               timeout=300)
stored = (sqlite3.connect(failed_db).execute("SELECT count(*), sum(pass) FROM runs").fetchone()
          if os.path.exists(failed_db) else None)
ok(os.path.exists(mark) and rc == 1 and stored == (1, 0) and "FAIL" in out,
   "a good file boots the emulator given; a run that fails exits 1 and is stored as failed "
   "(rc=%d, stored %s)" % (rc, stored))
rc, out = tool("check", *[os.path.join(EXP_DIR, "examples", f)
                          for f in sorted(os.listdir(os.path.join(EXP_DIR, "examples")))])
ok(rc == 0 and "Traceback" not in out, "every example in experiments/examples/ is valid (rc=%d)" % rc)

# 2. The schema, as documented.
doc = open(os.path.join(REPO, "docs", "results.md")).read()
db = sqlite3.connect(":memory:")
db.executescript(resultsdb.SCHEMA)
missing = []
for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
    if not re.search(r"`%s`" % table, doc):
        missing.append(table)
    for col in db.execute("PRAGMA table_info(%s)" % table):
        if not re.search(r"`%s`" % col[1], doc):
            missing.append("%s.%s" % (table, col[1]))
ok(not missing, "docs/results.md names every table and column of the schema%s"
   % (": missing " + ", ".join(missing) if missing else ""))
old = os.path.join(tmp, "old.sqlite")
o = sqlite3.connect(old)
o.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
o.execute("INSERT INTO meta VALUES ('schema_version', '0')")
o.commit()
o.close()
rc, out = tool("results", "list", "--db", old)
ok(rc == 2 and "schema version 0" in out, "a database of another schema version is refused (%s)"
   % out.strip()[:120])

# A stored run with a swap disk (synthetic): results show lists all seven
# estimators per window, each against the oracle's frames + pages swapped
# in of its own step's window (geiger:pml in pml's window 1, not epml's).
syn = os.path.join(tmp, "seven.sqlite")
sdb = resultsdb.open_db(syn)
res = {"pass": True, "estimates": [
    {"estimator": e, "window": 1, "pages": p} for e, p in (
        ("epml", 1000), ("commit", 5000), ("pml", 400), ("sample", 1200),
        ("geiger:epml", 25000), ("excl:epml", 25001), ("geiger:pml", 25002),
        ("excl:pml", 25003), ("geiger:sample", 25004), ("excl:sample", 25005))],
    "oracle": [{"estimator": e, "window": 1, "touched": t, "written": 0, "walk_only": 0}
               for e, t in (("epml", 1000), ("commit", 1000), ("pml", 800), ("sample", 1100))],
    "swap": [{"est": e, "w": 1, "oracle": t, "oracle_swapin": t + 200, "swapout": 7,
              "swapin": 200} for e, t in (("epml", 1000), ("pml", 800), ("sample", 1100))],
    "pass_ms": {"baseline": [100, 100, 100], "epml": [110, 110, 110], "pmlwss": [150, 150]}}
sid = resultsdb.store(sdb, {"name": "seven"}, "", "seven.toml", 1, 1, [], res)
text = resultsdb.summary(sdb, sid)
lines = {l.split()[0]: l for l in text.splitlines() if re.match(r"  (epml|pml|sample) +1 ", l)}
want = {"epml": ["1000 -16.7%", "5000 +316.7%", "25000 +1983.3%", "25001 +1983.4%"],
        "pml": ["400 -60.0%", "25002 +2400.2%", "25003 +2400.3%"],
        "sample": ["1200 -7.7%", "25004 +1823.4%", "25005 +1823.5%"]}
bad = [(k, w) for k, ws in want.items() for w in ws if w not in lines.get(k, "")]
ok(len(lines) == 3 and not bad and re.search(r"stock PML +2 passes .* \+50\.0%", text)
   and re.search(r"^  geiger:pml +1 +25002 +- +800 ", text, re.M),
   "results show: all seven estimators per window against the oracle + swapped-in pages of "
   "their own step, and the cost per step (%s)" % (bad or "ok"))
sdb.close()

# 3. A real run.
dbp = os.path.join(tmp, "runs.sqlite")
rc, out = tool("run", os.path.join(EXP_DIR, "examples", "tiny.toml"), "--qemu", qemu,
               "--image-dir", image_dir, "--db", dbp, timeout=1200)
for line in out.splitlines():
    print("# " + line)
ok(rc == 0 and re.search(r"run 1: tiny, repetition 1, seed 42: PASS", out),
   "experiments/examples/tiny.toml runs and passes (rc=%d)" % rc)
rc, out = tool("results", "list", "--db", dbp)
ok(rc == 0 and re.search(r"^\s+1 .* tiny .* yes", out, re.M) and "1 runs" in out,
   "results list shows the run")
rc, out = tool("results", "show", "1", "--db", dbp)
ok(rc == 0 and re.search(r"^  epml +2 ", out, re.M) and "xen:" in out and "+xen-pml" in out,
   "results show gives its windows and versions")
rc, out = tool("results", "export", "--db", dbp)
rows = list(csv.DictReader(io.StringIO(out))) if rc == 0 else []
ok(len(rows) == 2 and all(r["estimator"] == "epml" and int(r["estimate_pages"]) > 0
                          and float(r["plugin_recall"]) >= 99.0 for r in rows),
   "results export (CSV): one row per window, with the plugin truth's recall (%d rows)" % len(rows))
rc, out = tool("results", "export", "--format", "json", "--db", dbp)
try:
    js = json.loads(out) if rc == 0 else []
except ValueError:
    js = []
ok(len(js) == 2 and [r["window"] for r in js] == [1, 2], "results export --format json agrees")
# 4. Sweeps: a grid expands into runs; a run the database already has passed
# with the same inputs is skipped (so an interrupted sweep resumes), the
# rest run.
rc, out = tool("check", os.path.join(EXP_DIR, "examples", "campaign.toml"))
ok(rc == 0 and "18 runs (a grid" in out and len(re.findall(r"^  run \d+: ", out, re.M)) == 18,
   "campaign.toml's grid (3 buffer sizes x 2 window lengths x 3 repetitions) is 18 runs")
tiny = open(os.path.join(EXP_DIR, "examples", "tiny.toml")).read()
sweep1 = os.path.join(tmp, "sweep1.toml")
with open(sweep1, "w") as f:
    f.write(tiny.replace("window_s = 2\n", "window_s = [2]\n"))
rc, out = tool("run", sweep1, "--db", dbp)
ok(rc == 2 and "'measure.window_s' is a list of values" in out, "run refuses a grid, pointing to sweep")
q1, m1 = marking_qemu("sweep1")
rc, out = tool("sweep", sweep1, "--qemu", q1, "--image-dir", image_dir, "--db", dbp)
ok(rc == 0 and "1 of 1 runs already in" in out and not os.path.exists(m1),
   "a sweep whose only run is already stored boots nothing (rc=%d)" % rc)
sweep2 = os.path.join(tmp, "sweep2.toml")
with open(sweep2, "w") as f:
    f.write(tiny.replace("window_s = 2\n", "window_s = [2, 3]\n"))
q2, m2 = marking_qemu("sweep2")
rc, out = tool("sweep", sweep2, "--qemu", q2, "--image-dir", image_dir, "--db", dbp,
               "--keep-going", timeout=300)
c = sqlite3.connect(dbp)
last = c.execute("SELECT sweep_point, pass FROM runs ORDER BY id DESC LIMIT 1").fetchone()
ok(rc == 1 and "1 of 2 runs already in" in out and os.path.exists(m2)
   and last is not None and json.loads(last[0]) == {"measure.window_s": 3} and last[1] == 0,
   "a sweep runs only the point not stored yet, and records its grid point (rc=%d, %s)"
   % (rc, last))
n_checks, n_bad = c.execute("SELECT count(*), sum(1 - ok) FROM checks WHERE run_id = 1").fetchone()
ok(n_checks > 5 and n_bad == 0, "the run's checks are stored (%d, %s failed)" % (n_checks, n_bad))
cost = c.execute("SELECT count(*), sum(exits) FROM cost WHERE run_id = 1").fetchone()
ok(cost[0] >= 2 and (cost[1] or 0) > 0, "its cost per window and CPU is stored (%d rows, %s exits)"
   % cost)
# 5. Plots of the stored runs (matplotlib): PNG and SVG that parse.
plots = os.path.join(tmp, "plots")
rc, out = tool("report", "--db", dbp, "--out", plots, "--experiment", "tiny", timeout=300)
want = ["wss-tiny", "errors", "cost-tiny", "heat-run1"]
good = []
for stem in want:
    try:
        with open(os.path.join(plots, stem + ".png"), "rb") as f:
            png = f.read(8) == b"\x89PNG\r\n\x1a\n"
        svg = ET.parse(os.path.join(plots, stem + ".svg")).getroot().tag.endswith("svg")
    except (OSError, ET.ParseError):
        png = svg = False
    if png and svg:
        good.append(stem)
ok(rc == 0 and good == want, "report draws the working set, error, cost and heat plots as PNG and SVG "
   "(rc=%d, good: %s; %s)" % (rc, ", ".join(good) or "none", out.strip()[-200:]))
shutil.rmtree(tmp, ignore_errors=True)
# 6. Real packages in the domU.
rc, out = tool("run", os.path.join(EXP_DIR, "examples", "tiny-package.toml"), "--qemu", qemu,
               "--image-dir", image_dir, "--db", dbp, timeout=1200)
for line in out.splitlines():
    print("# " + line)
ok(rc == 0 and re.search(r"run 1: tiny-package, repetition 1, seed 42: PASS", out),
   "experiments/examples/tiny-package.toml (sqlite3 from Debian) runs and passes (rc=%d)" % rc)
c = sqlite3.connect(dbp)
row = c.execute("SELECT id, console FROM runs JOIN logs ON logs.run_id = runs.id "
                "WHERE experiment = 'tiny-package'").fetchone() if rc == 0 else None
console = zlib.decompress(row[1]).decode(errors="replace") if row else ""
ok(re.search(r"\[domU\] @@DOMU run pass=\d+ ms=\d+", console) is not None
   and re.search(r"\[domU\] \[run 1\] 2000\|\d+", console) is not None,
   "its console has sqlite3's own output (2000 rows) and the passes dom0 counted")
bad = os.path.join(tmp, "bad-setup.toml")
with open(bad, "w") as f:
    f.write(open(os.path.join(EXP_DIR, "examples", "tiny-package.toml")).read()
            .replace("sqlite3 /root/db 'CREATE", "sqlite3 /no/such/dir/db 'CREATE"))
rc, out = tool("run", bad, "--qemu", qemu, "--image-dir", image_dir, "--db", dbp, timeout=1200)
last = c.execute("SELECT experiment, pass FROM runs ORDER BY id DESC LIMIT 1").fetchone()
ok(rc == 1 and "unable to open database" in out and "@@DOMU setup failed" in out
   and last == ("tiny-package", 0),
   "a setup command that fails fails the run, is stored as failed, and its error is shown "
   "(rc=%d, last run %s)" % (rc, last))
done()
