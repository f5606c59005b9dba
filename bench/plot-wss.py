#!/usr/bin/python3
"""Plot xen-demo.py --oracle's estimator table as SVG line charts.

    bench/plot-wss.py XEN_DEMO_OUTPUT OUT.svg [TITLE]

Reads the "Working set per window" table that xen-demo.py prints with
--oracle (rows: est window touched written walk-only estimate ...) and
draws two charts side by side: the working set per window in MiB, the
oracle's (ground truth, from the extended-PML windows) and each
estimator's; and each estimate as a percentage of the oracle's figure
for the very same window (each estimator ran its own windows, cut with
the oracle, so this one compares like with like).  Plain SVG, no
plotting library.
"""
import re
import sys

ROW = re.compile(r"^\s+(epml|pml|commit)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s")
NAMES = {"truth": "oracle (ground truth)", "epml": "extended PML", "pml": "stock PML",
         "commit": "Committed_AS"}
COLORS = {"truth": "#000000", "epml": "#1f77b4", "pml": "#d62728", "commit": "#2ca02c"}
DASH = {"truth": "", "epml": "6,3", "pml": "", "commit": "2,3"}


def parse(path):
    series, ratio = {}, {}
    for line in open(path, errors="replace"):
        m = ROW.match(line)
        if not m:
            continue
        est, w, touched, _written, _walk, estimate = m.groups()
        w = int(w)
        series.setdefault(est, {})[w] = int(estimate) / 256.0
        ratio.setdefault(est, {})[w] = 100.0 * int(estimate) / max(int(touched), 1)
        if est == "epml":
            series.setdefault("truth", {})[w] = int(touched) / 256.0
            ratio.setdefault("truth", {})[w] = 100.0
    return series, ratio


def chart(series, title, ylabel, ox, legend):
    """One chart at x offset @ox; returns its SVG elements."""
    W, H, L, R, T, B = 560, 400, 70, 20 + (180 if legend else 0), 40, 50
    windows = sorted({w for s in series.values() for w in s})
    ymax = max(v for s in series.values() for v in s.values()) * 1.1 or 1
    x = (lambda w: ox + L + (w - windows[0]) * (W - L - R) / max(len(windows) - 1, 1))
    y = (lambda v: H - B - v * (H - T - B) / ymax)
    out = ['<text x="%d" y="22" font-size="14">%s</text>' % (ox + L, title)]
    for i in range(6):
        v = ymax * i / 5
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#ddd"/>'
                   % (ox + L, y(v), ox + W - R, y(v)))
        out.append('<text x="%d" y="%.1f" text-anchor="end">%.0f</text>'
                   % (ox + L - 6, y(v) + 4, v))
    for w in windows:
        out.append('<text x="%.1f" y="%d" text-anchor="middle">%d</text>' % (x(w), H - B + 18, w))
    out.append('<text x="%d" y="%d" text-anchor="middle">window</text>'
               % (ox + (L + W - R) / 2, H - 12))
    out.append('<text x="%d" y="%d" transform="rotate(-90 %d %d)" text-anchor="middle">'
               '%s</text>' % (ox + 16, (T + H - B) / 2, ox + 16, (T + H - B) / 2, ylabel))
    ly = T + 10
    for key in ("truth", "epml", "pml", "commit"):
        s = series.get(key)
        if not s:
            continue
        pts = " ".join("%.1f,%.1f" % (x(w), y(s[w])) for w in sorted(s))
        out.append('<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" '
                   'points="%s"/>' % (COLORS[key], DASH[key], pts))
        if legend:
            out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2" '
                       'stroke-dasharray="%s"/>' % (ox + W - R + 15, ly, ox + W - R + 40, ly,
                                                   COLORS[key], DASH[key]))
            out.append('<text x="%d" y="%d">%s</text>' % (ox + W - R + 46, ly + 4, NAMES[key]))
            ly += 20
    return out


def svg(series, ratio, title):
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="1120" height="400" '
           'font-family="sans-serif" font-size="12">',
           '<rect width="100%" height="100%" fill="white"/>']
    out += chart(series, title, "working set (MiB)", 0, False)
    out += chart(ratio, "estimate / oracle, same window", "% of the ground truth", 560, True)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    series, ratio = parse(sys.argv[1])
    if "truth" not in series:
        sys.exit("plot-wss: no 'epml' rows (with the oracle's figures) in %s" % sys.argv[1])
    open(sys.argv[2], "w").write(svg(series, ratio, sys.argv[3] if len(sys.argv) > 3 else
                                     "Working set per window"))


if __name__ == "__main__":
    main()
