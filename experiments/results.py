"""The results database: every run of an experiment, in SQLite.

The schema is documented in docs/results.md; SCHEMA_VERSION changes when
it does (an older database is refused with a clear message, never
silently mixed).  One writer at a time (a run stores when it ends); any
number of readers.
"""
import csv
import hashlib
import json
import os
import sqlite3
import sys
import time
import zlib

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DB = os.path.join(REPO, "results", "qpml.sqlite")
SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY,
    experiment TEXT NOT NULL,        -- the file's name = "..."
    file TEXT NOT NULL,              -- the path it was run from
    file_text TEXT NOT NULL,         -- the experiment file as given
    experiment_json TEXT NOT NULL,   -- the file with every default filled in
    inputs TEXT NOT NULL,            -- sha256 of experiment_json + repetition + seed
    sweep_point TEXT NOT NULL,       -- the grid keys' values of this run (JSON; {} if no grid)
    repetition INTEGER NOT NULL,     -- 1-based
    seed INTEGER NOT NULL,
    started TEXT NOT NULL,           -- ISO 8601, UTC, when the run was stored
    pass INTEGER NOT NULL,           -- 1 if every check of xen-demo.py passed
    wall_s REAL,                     -- host seconds from QEMU start to exit
    domu_up_s REAL,                  -- host seconds to the domU's /init
    qemu TEXT, xen TEXT, dom0_kernel TEXT, domu_kernel TEXT, git_commit TEXT,
    argv TEXT NOT NULL               -- xen-demo.py's command line (JSON list)
);
CREATE INDEX runs_inputs ON runs (inputs);
CREATE TABLE estimates (             -- what each estimator reported, per window
    run_id INTEGER NOT NULL REFERENCES runs (id),
    estimator TEXT NOT NULL,         -- epml, pml, sample, commit; with [domu] swap_mb: geiger:E,
                                     -- excl:E (in estimator E's windows, docs/estimators.md)
    window INTEGER NOT NULL,         -- 1-based
    pages INTEGER NOT NULL,          -- working-set estimate, 4 KiB pages
    written INTEGER,                 -- of which written (epml, pml)
    sample_n INTEGER, sample_hits INTEGER, sample_total INTEGER,  -- sample only
    PRIMARY KEY (run_id, estimator, window)
);
CREATE TABLE oracle (                -- the emulator's working-set oracle, per window
    run_id INTEGER NOT NULL REFERENCES runs (id),
    estimator TEXT NOT NULL, window INTEGER NOT NULL,
    touched INTEGER NOT NULL, written INTEGER NOT NULL, walk_only INTEGER NOT NULL,
    PRIMARY KEY (run_id, estimator, window)
);
CREATE TABLE scores (                -- page-set scores against a truth, per window
    run_id INTEGER NOT NULL REFERENCES runs (id),
    truth TEXT NOT NULL,             -- plugin (TCG plugin), guest (wss-touch's frames)
    estimator TEXT NOT NULL,         -- epml, pml
    window INTEGER NOT NULL,
    status TEXT NOT NULL,            -- ok, or why the window is not graded
    truth_pages INTEGER, estimate INTEGER, tp INTEGER, fn INTEGER, fp INTEGER,
    recall REAL, precision REAL, count_err REAL,   -- percent
    written INTEGER, est_written INTEGER, written_recall REAL,
    PRIMARY KEY (run_id, truth, estimator, window)
);
CREATE TABLE heat (                  -- the longmap's page heat against the plugin truth
    run_id INTEGER PRIMARY KEY REFERENCES runs (id),
    pages INTEGER, exact REAL, rho_count REAL, rho_windows REAL,
    top1_share REAL, top10_share REAL, detail TEXT  -- detail: the whole record (JSON)
);
CREATE TABLE cost (                  -- query-pml-stats differences per window and Xen CPU
    run_id INTEGER NOT NULL REFERENCES runs (id),
    window INTEGER NOT NULL, cpu INTEGER NOT NULL,
    exits INTEGER, notify_exits INTEGER, full_exits INTEGER, handovers INTEGER,
    notifications INTEGER, log_lines INTEGER, entries INTEGER,
    reasons TEXT,                    -- {basic exit reason: count} (JSON)
    PRIMARY KEY (run_id, window, cpu)
);
CREATE TABLE pml_stats (             -- query-pml-stats at each dom0 marker
    run_id INTEGER NOT NULL REFERENCES runs (id),
    seq INTEGER NOT NULL, event TEXT NOT NULL, t REAL, stats TEXT NOT NULL,  -- JSON
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE checks (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    seq INTEGER NOT NULL, name TEXT NOT NULL, ok INTEGER NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE logs (
    run_id INTEGER PRIMARY KEY REFERENCES runs (id),
    console BLOB NOT NULL,           -- the whole serial console, zlib
    results BLOB NOT NULL            -- xen-demo.py's --results JSON, zlib
);
"""


# The estimator step whose windows an estimate belongs to: geiger:pml and
# excl:pml are in stock PML's windows, so their oracle is pml's (SQL, on
# an estimates row e).
STEP_OF_ESTIMATE = ("(CASE WHEN instr(e.estimator, ':') > 0"
                    " THEN substr(e.estimator, instr(e.estimator, ':') + 1)"
                    " ELSE e.estimator END)")


class ResultsError(Exception):
    pass


def open_db(path):
    """The database at @path, created if absent; ResultsError if it is not ours."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fresh = not os.path.exists(path)
    db = sqlite3.connect(path, timeout=60)
    db.execute("PRAGMA foreign_keys = ON")
    if fresh:
        with db:
            db.executescript(SCHEMA)
            db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        return db
    try:
        v = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError as e:
        raise ResultsError("%s is not a qemu-pml results database (%s)" % (path, e))
    if not v or v[0] != str(SCHEMA_VERSION):
        raise ResultsError("%s has schema version %s; this qemu-pml writes version %d "
                           "(docs/results.md): use another --db" % (path, v[0] if v else "?",
                                                                    SCHEMA_VERSION))
    return db


# Keys added to the experiment schema after runs were stored: at their
# default they are left out of the inputs hash, so a sweep stored before
# them still finds its passed runs (and skips them).
LATER_KEYS = {("domu", "swap_expect"): "yes", ("measure", "baseline"): False}


def inputs_hash(exp, repetition, seed):
    exp = json.loads(json.dumps(exp))
    for (sec, key), default in LATER_KEYS.items():
        if sec in exp and exp[sec].get(key, default) == default:
            exp[sec].pop(key, None)
    blob = json.dumps([exp, repetition, seed], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def rows_in(res, truth, est):
    return res.get({("plugin", "epml"): "plugin", ("plugin", "pml"): "plugin_pml",
                    ("guest", "epml"): "guest_truth"}[(truth, est)]) or []


def has_passing_run(db, inputs):
    return db.execute("SELECT 1 FROM runs WHERE inputs = ? AND pass = 1 LIMIT 1",
                      (inputs,)).fetchone() is not None


def store(db, exp, file_text, file_path, repetition, seed, argv, res, point=None):
    """One run's results (xen-demo.py --results) into @db; returns its id."""
    v = res.get("versions") or {}
    with db:
        cur = db.execute(
            "INSERT INTO runs (experiment, file, file_text, experiment_json, inputs, sweep_point,"
            " repetition, seed, started, pass, wall_s, domu_up_s, qemu, xen, dom0_kernel,"
            " domu_kernel, git_commit, argv) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (exp["name"], file_path, file_text, json.dumps(exp, sort_keys=True),
             inputs_hash(exp, repetition, seed), json.dumps(point or {}, sort_keys=True),
             repetition, seed,
             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), int(bool(res["pass"])),
             res.get("wall_s"), res.get("domu_up_s"), v.get("qemu"), v.get("xen"),
             v.get("dom0_kernel"), v.get("domu_kernel"), v.get("commit"), json.dumps(argv)))
        rid = cur.lastrowid
        for e in res.get("estimates") or []:
            db.execute("INSERT INTO estimates VALUES (?,?,?,?,?,?,?,?)",
                       (rid, e["estimator"], e["window"], e["pages"], e.get("written"),
                        e.get("n"), e.get("hits"), e.get("tot")))
        for o in res.get("oracle") or []:
            db.execute("INSERT INTO oracle VALUES (?,?,?,?,?,?)",
                       (rid, o["estimator"], o["window"], o["touched"], o["written"],
                        o["walk_only"]))
        for truth, est in (("plugin", "epml"), ("plugin", "pml"), ("guest", "epml")):
            rows = [r for r in rows_in(res, truth, est) if "w" in r]
            whole = [r.get("status", "?") for r in rows_in(res, truth, est) if "w" not in r]
            if whole:
                # Not graded at all (no record, windows cut twice): one row, window 0.
                rows.append({"w": 0, "status": "; ".join(whole)})
            for r in rows:
                db.execute("INSERT INTO scores VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           (rid, truth, est, r["w"], r.get("status", "ok"), r.get("truth"),
                            r.get("estimate"), r.get("tp"), r.get("fn"), r.get("fp"),
                            r.get("recall"), r.get("precision"), r.get("count_err"),
                            r.get("written") if isinstance(r.get("written"), int) else None,
                            r.get("est_written"), r.get("written_recall")))
        h = res.get("heat")
        if h:
            db.execute("INSERT INTO heat VALUES (?,?,?,?,?,?,?,?)",
                       (rid, h.get("pages"), h.get("exact"), h.get("rho_count"),
                        h.get("rho_windows"), (h.get("top1") or {}).get("share"),
                        (h.get("top10") or {}).get("share"), json.dumps(h)))
        for c in res.get("cost") or []:
            db.execute("INSERT INTO cost VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                       (rid, c["w"], c["cpu"], c.get("exits"), c.get("notify-exits"),
                        c.get("full-exits"), c.get("handovers"), c.get("notifications"),
                        c.get("log-lines"), c.get("entries"), json.dumps(c.get("reasons"))))
        for i, s in enumerate(res.get("pml_samples") or []):
            db.execute("INSERT INTO pml_stats VALUES (?,?,?,?,?)",
                       (rid, i, s["event"], s.get("t"), json.dumps(s["stats"])))
        for i, c in enumerate(res.get("checks") or []):
            db.execute("INSERT INTO checks VALUES (?,?,?,?)", (rid, i, c["name"], int(c["ok"])))
        console = "\n".join(res.get("console") or []).encode()
        slim = {k: v for k, v in res.items() if k != "console"}
        db.execute("INSERT INTO logs VALUES (?,?,?)",
                   (rid, zlib.compress(console, 6), zlib.compress(json.dumps(slim).encode(), 6)))
    return rid


def summary(db, rid, all_checks=False):
    """A few lines on one run: what it was, and per window truth vs estimates."""
    r = db.execute("SELECT experiment, repetition, seed, pass, wall_s, domu_up_s FROM runs"
                   " WHERE id = ?", (rid,)).fetchone()
    if not r:
        raise ResultsError("no run %d" % rid)
    out = ["run %d: %s, repetition %d, seed %d: %s in %.0f s (domU up at %s)" % (
        rid, r[0], r[1], r[2], "PASS" if r[3] else "FAIL", r[4] or 0,
        "%.0f s" % r[5] if r[5] else "never")]
    rows = db.execute(
        "SELECT e.estimator, e.window, e.pages, s.truth_pages, s.recall, s.precision, o.touched"
        " FROM estimates e"
        " LEFT JOIN scores s ON s.run_id = e.run_id AND s.estimator = e.estimator"
        "  AND s.window = e.window AND s.truth = 'plugin'"
        " LEFT JOIN oracle o ON o.run_id = e.run_id AND o.estimator = " + STEP_OF_ESTIMATE +
        "  AND o.window = e.window"
        " WHERE e.run_id = ? ORDER BY e.estimator, e.window", (rid,)).fetchall()
    if rows:
        out.append("  %-13s %6s %10s %12s %12s %9s %10s" % ("est", "window", "estimate",
                                                         "plugin-truth", "oracle", "recall",
                                                         "precision"))
        for est, w, pages, tp, rec, prec, orc in rows:
            out.append("  %-13s %6d %10d %12s %12s %9s %10s" % (
                est, w, pages, tp if tp is not None else "-", orc if orc is not None else "-",
                "%.2f%%" % rec if rec is not None else "-",
                "%.2f%%" % prec if prec is not None else "-"))
    out += seven_table(db, rid)
    bad = db.execute("SELECT name FROM checks WHERE run_id = ? AND ok = 0", (rid,)).fetchall()
    for (name,) in bad[:None if all_checks else 5]:
        out.append("  failed check: %s" % name)
    if len(bad) > 5 and not all_checks:
        out.append("  ... and %d more failed checks (results show %d)" % (len(bad) - 5, rid))
    return "\n".join(out)


STEPS = ("epml", "pml", "sample")          # estimator steps, in the order a run has them
COST_SECTIONS = (("baseline", "no estimator"), ("epml", "extended PML"),
                 ("pmlwss", "stock PML"), ("sample", "sampling"))


def run_results(db, rid):
    """xen-demo.py's --results record of a run (without its console)."""
    row = db.execute("SELECT results FROM logs WHERE run_id = ?", (rid,)).fetchone()
    return json.loads(zlib.decompress(row[0])) if row else {}


def seven_table(db, rid):
    """For a run with a swap disk: every estimator per window against the
    oracle, one line a window (docs/estimators.md): the step's own
    estimator (epml, pml or sample), Committed_AS (epml's windows), Geiger
    and the exclusive cache (every window), each with its error against
    the oracle's frames + pages swapped in; then each step's cost to the
    domU (mean workload pass time against the baseline step).  [] for a
    run without one."""
    res = run_results(db, rid)
    swap = {(r["est"], r["w"]): r for r in res.get("swap") or []}
    if not swap:
        return []
    est = {}
    for name, w, pages in db.execute("SELECT estimator, window, pages FROM estimates"
                                     " WHERE run_id = ?", (rid,)):
        est[(name, w)] = pages
    out = ["  all seven estimators per window; truth = the oracle's frames + pages swapped in"
           " (+in, an upper bound: docs/estimators.md); in = distinct pages swapped in (runs"
           " before 2026-12-04 14:00: swap-in reads); err = (estimate - truth) / truth",
           "  %-6s %3s %7s %7s %6s %6s | %-15s %-15s %-15s %-15s %-15s %-15s" % (
               "step", "w", "oracle", "+in", "out", "in", "extended PML", "stock PML",
               "sampling", "Committed_AS", "Geiger", "excl. cache")]

    def cell(v, truth):
        if v is None:
            return "-"
        if not truth:
            return str(v)
        return "%d %+.1f%%" % (v, 100.0 * (v - truth) / truth)
    for key in sorted(swap, key=lambda k: (STEPS.index(k[0]) if k[0] in STEPS else 9, k[1])):
        r = swap[key]
        step, w = key
        truth = r.get("oracle_swapin")
        own = {s: est.get((s, w)) if s == step else None for s in STEPS}
        out.append("  %-6s %3d %7s %7s %6s %6s | %-15s %-15s %-15s %-15s %-15s %-15s" % (
            step, w, r.get("oracle", "-"), truth if truth is not None else "-",
            r.get("swapout", "-"), r.get("swapin_pages", r.get("swapin", "-")),
            cell(own["epml"], truth), cell(own["pml"], truth), cell(own["sample"], truth),
            cell(est.get(("commit", w)) if step == "epml" else None, truth),
            cell(est.get(("geiger:" + step, w)), truth), cell(est.get(("excl:" + step, w)), truth)))
    pm = res.get("pass_ms") or {}
    if pm.get("baseline"):
        base = sum(pm["baseline"]) / len(pm["baseline"])
        bmed = sorted(pm["baseline"])[len(pm["baseline"]) // 2]
        out.append("  cost to the domU (workload pass times by step, against the baseline step;"
                   " Geiger and the cache run on dom0's trace in every step, baseline included;"
                   " the oracle's pauses at window cuts fall inside some passes):")
        for sec, what in COST_SECTIONS:
            v = pm.get(sec)
            if v:
                mean = sum(v) / len(v)
                med = sorted(v)[len(v) // 2]
                out.append("    %-13s %5d passes  mean %9.1f ms %+7.1f%%  median %8d ms %+7.1f%%"
                           % (what, len(v), mean, 100.0 * (mean - base) / base, med,
                              100.0 * (med - bmed) / max(bmed, 1)))
    return out


def cmd_list(db, out=sys.stdout):
    rows = db.execute("SELECT id, started, experiment, repetition, seed, pass, wall_s FROM runs"
                      " ORDER BY id").fetchall()
    print("%5s  %-20s  %-24s %4s %10s  %-4s %8s" % ("id", "stored", "experiment", "rep", "seed",
                                                   "pass", "wall_s"), file=out)
    for r in rows:
        print("%5d  %-20s  %-24s %4d %10d  %-4s %8.0f" % (r[0], r[1], r[2][:24], r[3], r[4],
                                                         "yes" if r[5] else "NO", r[6] or 0),
              file=out)
    print("%d runs" % len(rows), file=out)


def export(db, fmt, out=sys.stdout):
    """Per run and window: every estimate with its truths, as CSV or JSON."""
    q = ("SELECT r.id, r.experiment, r.repetition, r.seed, r.pass, e.estimator, e.window,"
         " e.pages, e.written, o.touched, o.written, o.walk_only,"
         " s.truth_pages, s.recall, s.precision, s.count_err"
         " FROM runs r JOIN estimates e ON e.run_id = r.id"
         " LEFT JOIN oracle o ON o.run_id = r.id AND o.estimator = " + STEP_OF_ESTIMATE +
         "  AND o.window = e.window"
         " LEFT JOIN scores s ON s.run_id = r.id AND s.estimator = e.estimator"
         "  AND s.window = e.window AND s.truth = 'plugin'"
         " ORDER BY r.id, e.estimator, e.window")
    cols = ["run", "experiment", "repetition", "seed", "pass", "estimator", "window",
            "estimate_pages", "estimate_written", "oracle_touched", "oracle_written",
            "oracle_walk_only", "plugin_truth_pages", "plugin_recall", "plugin_precision",
            "plugin_count_err"]
    rows = db.execute(q).fetchall()
    if fmt == "json":
        json.dump([dict(zip(cols, r)) for r in rows], out, indent=1)
        out.write("\n")
    else:
        w = csv.writer(out)
        w.writerow(cols)
        w.writerows(rows)
