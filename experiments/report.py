"""Plots from the results database (./qpml experiment report).

  wss-<experiment>.png/.svg    working set per window: each estimator and
                               each truth, the mean over repetitions with
                               the min-max band; one panel per grid point
  errors.png/.svg              each estimator's count error per window
                               against the plugin truth (or the oracle),
                               across every run selected: box plots
  swap-<experiment>.png/.svg   runs with a swap disk: all seven estimators
                               (Geiger and the exclusive cache too) per
                               window, in the order the windows ran,
                               against the oracle's frames and frames +
                               pages swapped in
  cost-<experiment>.png/.svg   VM exits per window by reason (the top
                               five, the rest together), mean over runs
  heat-run<ID>.png/.svg        page heat: guest-physical address ranges x
                               windows, from the plugin truth (accesses,
                               pages touched) and from extended PML (pages
                               logged) side by side; the first run of each
                               experiment and grid point

matplotlib from Debian (python3-matplotlib), drawn off-screen (Agg).
"""
import json
import os
import sqlite3
from collections import defaultdict

import matplotlib
import matplotlib.colors
import matplotlib.ticker
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from results import STEP_OF_ESTIMATE, run_results  # noqa: E402

EXIT_NAMES = {0: "exception/NMI", 1: "external interrupt", 7: "interrupt window",
              10: "CPUID", 12: "HLT", 16: "RDTSC", 18: "VMCALL", 28: "CR access",
              30: "I/O", 31: "RDMSR", 32: "WRMSR", 48: "EPT violation", 49: "EPT misconfig",
              51: "RDTSCP", 52: "preemption timer", 62: "PML full"}
COLORS = {"plugin": "black", "oracle": "dimgray", "epml": "tab:blue", "pml": "tab:orange",
          "sample": "tab:green", "commit": "tab:red", "geiger": "tab:purple",
          "excl": "tab:brown"}
STEPS = ("epml", "pml", "sample")
NAMES = {"epml": "extended PML", "pml": "stock PML", "sample": "sampling",
         "commit": "Committed_AS", "excl": "exclusive cache", "geiger": "Geiger"}


def color(est):
    """geiger:pml has Geiger's colour."""
    return COLORS.get(est.split(":")[0])


def select_runs(db, experiment=None, run_ids=None):
    q = "SELECT id, experiment, sweep_point FROM runs WHERE 1"
    args = []
    if experiment:
        q += " AND experiment = ?"
        args.append(experiment)
    if run_ids:
        q += " AND id IN (%s)" % ",".join("?" * len(run_ids))
        args += run_ids
    return db.execute(q + " ORDER BY id", args).fetchall()


def band(ax, xs, series, label, color, dashed=False):
    """Mean line and min-max band of {window: [values over runs]}."""
    mean = [sum(series[x]) / len(series[x]) for x in xs]
    ax.plot(xs, mean, "--" if dashed else "-", marker="o", ms=3, color=color,
            label="%s (n=%d)" % (label, max(len(series[x]) for x in xs)))
    if any(len(series[x]) > 1 for x in xs):
        ax.fill_between(xs, [min(series[x]) for x in xs], [max(series[x]) for x in xs],
                        color=color, alpha=0.2, lw=0)


def save(fig, out_dir, stem, written):
    for ext in ("png", "svg"):
        path = os.path.join(out_dir, "%s.%s" % (stem, ext))
        fig.savefig(path, dpi=110 if ext == "png" else None, bbox_inches="tight")
        written.append(path)
    plt.close(fig)


def plot_wss(db, runs, out_dir, written):
    by_exp = defaultdict(lambda: defaultdict(list))   # experiment -> point -> run ids
    for rid, exp, point in runs:
        by_exp[exp][point].append(rid)
    for exp, points in sorted(by_exp.items()):
        keys = sorted(points, key=lambda p: tuple(json.loads(p).values()))  # numeric order
        fig, axes = plt.subplots(len(keys), 1, figsize=(8, 3.2 * len(keys)), squeeze=False)
        for ax, point in zip(axes[:, 0], keys):
            ids = points[point]
            marks = ",".join("?" * len(ids))
            lines = defaultdict(lambda: defaultdict(list))
            for est, w, pages in db.execute(
                    "SELECT estimator, window, pages FROM estimates WHERE run_id IN (%s)" % marks,
                    ids):
                lines[est][w].append(pages)
            truth = defaultdict(list)
            for w, t in db.execute("SELECT window, truth_pages FROM scores WHERE run_id IN (%s)"
                                   " AND truth = 'plugin' AND estimator = 'epml'"
                                   " AND status = 'ok'" % marks, ids):
                truth[w].append(t)
            oracle = defaultdict(list)
            for w, t in db.execute("SELECT window, touched FROM oracle WHERE run_id IN (%s)"
                                   " AND estimator = 'epml'" % marks, ids):
                oracle[w].append(t)
            if truth:
                band(ax, sorted(truth), truth, "plugin truth (epml's windows)", COLORS["plugin"],
                     dashed=True)
            if oracle:
                band(ax, sorted(oracle), oracle, "oracle (epml's windows)", COLORS["oracle"],
                     dashed=True)
            for est in sorted(lines):
                band(ax, sorted(lines[est]), lines[est], est, color(est))
            title = exp + ("" if point == "{}" else "  " + ", ".join(
                "%s=%s" % kv for kv in json.loads(point).items()))
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("window")
            ax.set_ylabel("working set (4 KiB pages)")
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
            else:
                ax.text(0.5, 0.5, "no estimates stored (failed runs?)", ha="center",
                        transform=ax.transAxes)
        fig.tight_layout()
        save(fig, out_dir, "wss-" + safe(exp), written)


def plot_swap(db, runs, out_dir, written):
    """Runs with a swap disk: all seven estimators on one time axis (the
    steps' windows in the order they ran: extended PML's, stock PML's,
    sampling's), against the oracle's frames and frames + pages swapped
    in; one panel per experiment and grid point, the mean over runs."""
    groups = defaultdict(list)
    for rid, exp, point in runs:
        groups[(exp, point)].append(rid)
    panels = []
    for (exp, point), ids in sorted(groups.items()):
        series = defaultdict(lambda: defaultdict(list))   # line -> x -> values
        order = {}                                        # (step, w) -> x
        for rid in ids:
            swap = run_results(db, rid).get("swap") or []
            if not swap:
                continue
            keys = sorted({(r["est"], r["w"]) for r in swap if r["est"] in STEPS},
                          key=lambda k: (STEPS.index(k[0]), k[1]))
            for k in keys:
                order.setdefault(k, len(order) + 1)
            for r in swap:
                k = (r["est"], r["w"])
                if k not in order:
                    continue
                if r.get("oracle") is not None:
                    series["oracle: frames"][order[k]].append(r["oracle"])
                if r.get("oracle_swapin") is not None:
                    series["oracle: frames + swapped in"][order[k]].append(r["oracle_swapin"])
            for est, w, pages in db.execute("SELECT estimator, window, pages FROM estimates"
                                            " WHERE run_id = ?", (rid,)):
                step = "epml" if est == "commit" else est.split(":")[-1]
                if (step, w) in order:
                    series[NAMES.get(est.split(":")[0], est)][order[(step, w)]].append(pages)
        if series:
            panels.append((exp, point, order, series))
    for exp in sorted({p[0] for p in panels}):
        mine = [p for p in panels if p[0] == exp]
        fig, axes = plt.subplots(len(mine), 1, figsize=(9, 3.6 * len(mine)), squeeze=False)
        for ax, (_, point, order, series) in zip(axes[:, 0], mine):
            styles = {"oracle: frames": ("dimgray", True), "oracle: frames + swapped in":
                      ("black", True)}
            for name, by in NAMES.items():
                # Geiger dashed over the cache: on a trace without discards
                # the two are the same number (docs/estimators.md).
                styles[by] = (COLORS[name], name == "geiger")
            for line in sorted(series, key=lambda n: list(styles).index(n) if n in styles else 99):
                c, dashed = styles.get(line, (None, False))
                xs = sorted(series[line])
                band(ax, xs, series[line], line, c, dashed=dashed)
            for step in STEPS:
                xs = [x for (s_, _), x in order.items() if s_ == step]
                if xs:
                    ax.axvspan(min(xs) - 0.5, max(xs) + 0.5, color=COLORS[step], alpha=0.06)
                    ax.text((min(xs) + max(xs)) / 2, 1.01, NAMES[step] + "'s windows",
                            transform=ax.get_xaxis_transform(), ha="center", fontsize=8)
            ax.set_yscale("log")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
            ax.set_xlabel("window, in the order they ran")
            ax.set_ylabel("working set (4 KiB pages, log)")
            ax.set_title(exp + ("" if point == "{}" else "  " + point_label(point)),
                         fontsize=10, pad=14)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        fig.tight_layout()
        save(fig, out_dir, "swap-" + safe(exp), written)


def point_label(point):
    """A grid point as a short label: 'buffer_kib=16 window_s=3'."""
    return " ".join("%s=%s" % (k.split(".")[-1], v) for k, v in json.loads(point).items())


def plot_errors(db, runs, out_dir, written):
    """Count errors per estimator and truth; in a campaign, one box per grid
    point as well, so that the axes' effect shows."""
    ids = [r[0] for r in runs]
    where = {rid: point_label(point) for rid, _, point in runs}
    order = {rid: tuple(json.loads(point).values()) for rid, _, point in runs}
    grid = len(set(where.values())) > 1
    rank = {}
    marks = ",".join("?" * len(ids))
    errs = defaultdict(list)

    def key(est, truth, rid):
        k = "%s vs %s" % (est, truth) + ("\n" + where[rid].replace(" ", "\n") if grid else "")
        rank[k] = (est, truth, order[rid])      # grid values in numeric order
        return k
    for rid, est, err in db.execute("SELECT run_id, estimator, count_err FROM scores"
                                    " WHERE run_id IN (%s) AND truth = 'plugin'"
                                    " AND status = 'ok'" % marks, ids):
        errs[key(est, "plugin", rid)].append(err)
    for rid, est, pages, touched in db.execute(
            "SELECT e.run_id, e.estimator, e.pages, o.touched FROM estimates e JOIN oracle o"
            " ON o.run_id = e.run_id AND o.estimator = " + STEP_OF_ESTIMATE +
            " AND o.window = e.window"
            " WHERE e.run_id IN (%s)" % marks, ids):
        errs[key(est, "oracle", rid)].append(100.0 * (pages - touched) / max(touched, 1))
    if not errs:
        return
    labels = sorted(errs, key=lambda k: rank[k])
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(labels)), 4.5))
    ax.boxplot([errs[l] for l in labels], showfliers=True)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=0 if grid else 20, fontsize=7)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_ylabel("estimate - truth (% of truth), per window")
    ax.set_title("Count error across %d runs, %d windows" % (
        len(ids), sum(len(v) for v in errs.values())), fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    save(fig, out_dir, "errors", written)


def plot_cost(db, runs, out_dir, written):
    """VM exits by reason: per window for one experiment point, or per grid
    point (mean per window) for a campaign."""
    by_exp = defaultdict(lambda: defaultdict(list))   # experiment -> point -> run ids
    for rid, exp, point in runs:
        by_exp[exp][point].append(rid)
    for exp, points in sorted(by_exp.items()):
        grid = len(points) > 1
        per = defaultdict(lambda: defaultdict(int))    # x -> reason -> exits (sum)
        nruns = defaultdict(set)                       # x -> (run, window) pairs
        for point, ids in points.items():
            marks = ",".join("?" * len(ids))
            for rid, w, reasons in db.execute("SELECT run_id, window, reasons FROM cost"
                                              " WHERE run_id IN (%s)" % marks, ids):
                x = point if grid else w
                nruns[x].add((rid, w) if grid else rid)
                for r, n in json.loads(reasons or "{}").items():
                    per[x][int(r)] += n
        if not per:
            continue
        total = defaultdict(int)
        for x in per:
            for r, n in per[x].items():
                total[r] += n
        top = [r for r, _ in sorted(total.items(), key=lambda x: -x[1])[:6]]
        xs = sorted(per, key=lambda p: tuple(json.loads(p).values())) if grid else sorted(per)
        pos = list(range(len(xs))) if grid else xs
        fig, ax = plt.subplots(figsize=(max(8, 1.6 * len(xs)) if grid else 8, 3.8))
        bottom = [0.0] * len(xs)
        for r in top + ["other"]:
            ys = [(per[x].get(r, 0) if r != "other" else
                   sum(n for k, n in per[x].items() if k not in top)) / len(nruns[x]) for x in xs]
            ax.bar(pos, ys, bottom=bottom, label=EXIT_NAMES.get(r, str(r)) if r != "other"
                   else "other")
            bottom = [b + y for b, y in zip(bottom, ys)]
        if grid:
            ax.set_xticks(pos, [point_label(x).replace(" ", "\n") for x in xs], fontsize=8)
            ax.set_ylabel("VM exits (all Xen CPUs),\nmean per window")
            ax.set_title("%s: VM exits per extended-PML window by reason and grid point"
                         " (query-pml-stats)" % exp, fontsize=10)
        else:
            ax.set_xlabel("extended-PML window")
            ax.set_ylabel("VM exits (all Xen CPUs), mean per run")
            ax.set_title("%s: VM exits per window by reason (query-pml-stats)" % exp,
                         fontsize=10)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        save(fig, out_dir, "cost-" + safe(exp), written)


def plot_heat(db, runs, out_dir, written):
    first = {}
    for rid, exp, point in runs:
        first.setdefault((exp, point), rid)
    for (exp, point), rid in sorted(first.items()):
        row = db.execute("SELECT detail FROM heat WHERE run_id = ?", (rid,)).fetchone()
        m = json.loads(row[0]).get("map") if row and row[0] else None
        if not m or not m["windows"]:
            continue
        mib = m["bin_pages"] * 4096 / 2**20
        base = m.get("first_gfn", 0) * 4096 / 2**20
        nb = len(m["truth_accesses"][0])
        panels = (("plugin truth: accesses", m["truth_accesses"], "magma", True),
                  ("plugin truth: pages touched", m["truth_pages"], "viridis", False),
                  ("extended PML: pages logged", m["epml_pages"], "viridis", False))
        fig, axes = plt.subplots(1, 3, figsize=(12, 4.5), sharey=True)
        vmax = max(max(max(r) for r in m["truth_pages"]), max(max(r) for r in m["epml_pages"]), 1)
        for ax, (title, data, cmap, log) in zip(axes, panels):
            cols = list(zip(*data))            # ranges x windows
            norm = matplotlib.colors.LogNorm(vmin=1, vmax=max(1, max(map(max, data)))) if log \
                else matplotlib.colors.Normalize(vmin=0, vmax=vmax)
            masked = [[v if (v > 0 or not log) else float("nan") for v in r] for r in cols]
            im = ax.imshow(masked, aspect="auto", origin="lower", cmap=cmap, norm=norm,
                           extent=(m["windows"][0] - 0.5, m["windows"][-1] + 0.5, base,
                                   base + nb * mib),
                           interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("window")
            fig.colorbar(im, ax=ax, shrink=0.8)
        axes[0].set_ylabel("guest-physical address (MiB; %g MiB a row)" % mib)
        outside = (max(m.get("outside_truth_pages") or [0]),
                   max(m.get("outside_epml_pages") or [0]))
        fig.suptitle("%s%s, run %d: page heat per window in the domU's main region"
                     " (pages outside it, at most: truth %d, extended PML %d)" % ((
                         exp, "" if point == "{}" else " " + point, rid) + outside),
                     fontsize=10)
        fig.tight_layout()
        save(fig, out_dir, "heat-run%d" % rid, written)


def safe(name):
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def report(db_path, out_dir, experiment=None, run_ids=None):
    """Draw every plot for the selected runs; returns the files written."""
    db = sqlite3.connect(db_path)
    runs = select_runs(db, experiment, run_ids)
    if not runs:
        return []
    os.makedirs(out_dir, exist_ok=True)
    written = []
    plot_wss(db, runs, out_dir, written)
    plot_errors(db, runs, out_dir, written)
    plot_swap(db, runs, out_dir, written)
    plot_cost(db, runs, out_dir, written)
    plot_heat(db, runs, out_dir, written)
    return written
