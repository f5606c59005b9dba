"""Page-set scoring of working-set estimates against the guest-side truth.

The guest-side truth (docs/ground-truth.md) is the workload's own account
of the guest-physical pages it touched: `wss-touch --gfns N` reads its
frames from /proc/self/pagemap and prints them per phase.  xen-epml's
`wss --pages` prints the pages extended PML logged in each window.  This
module reads both from the console text (lines of the domU relayed by
dom0 carry a "[domU] " prefix) and compares them page by page:

- true positives: workload pages the estimate contains;
- false negatives: workload pages it misses (recall = TP / workload);
- outside: estimate pages that are not the workload's (the domU's kernel,
  page cache, wss-touch's own bookkeeping).  They are not errors by this
  truth, which knows only the workload's pages; the emulator's oracle
  bounds them.

Every multi-line record is numbered "part=I/K"; a record with a part
missing is reported as incomplete, never scored.
"""
import bisect
import os
import re
import struct

GFNS = re.compile(r"wss-touch: gfns phase=(\d+) at=(\d+) cover=(\w+) part=(\d+)/(\d+) "
                  r"n=(\d+) absent=(\d+) hash=(0x[0-9a-f]+) r=(\S*)")
SWAPIN = re.compile(r"wss-touch: swapin phase=(\d+) at=(\d+) since=(\d+) part=(\d+)/(\d+) "
                    r"n=(\d+) r=(\S*)")
PAGES = re.compile(r"@@QPML pages est=(\S+) kind=(\w+) w=(\d+) part=(\d+)/(\d+) n=(\d+) "
                   r"r=(\S*)")
BITS = re.compile(r"@@QPML pages est=(\S+) kind=written-bits w=(\d+) part=(\d+)/(\d+) n=(\d+) "
                  r"bits=([0-9a-f]*)")
HEAT = re.compile(r"@@QPML heat est=(\S+) windows=(\d+) part=(\d+)/(\d+) n=(\d+) h=(\S*)")
PASS = re.compile(r"\[domU\] wss-touch: loop=\d+ phase=(\d+) pass=\d+")


RECORD = re.compile(r"wss-touch: (?:gfns|swapin) |@@QPML (?:pages|heat) ")
CONTINUATION = re.compile(r"^[0-9a-f+,:.]+$")


def joined(lines):
    """(index, line) of the console's lines, a long record rejoined with
    the lines it was broken into.  A record travels through dom0's relay,
    Xen's console and the serial line, and a newline that is not its own
    can cut it in two: in a clean-clone CI run of a045c4c dom0's console
    echoed the host's answers to --sync cuts into two of 1,000 records (no
    character missing; dom0-init now turns echo off).  A line that holds
    only the characters of a record's runs and follows a record is the
    rest of it; a wrong join fails the record's page count."""
    lines = list(lines)
    i = 0
    while i < len(lines):
        line, j = lines[i], i + 1
        if line is not None and RECORD.search(line):
            while j < len(lines) and lines[j] is not None and CONTINUATION.match(lines[j]):
                line += lines[j]
                j += 1
        yield i, line
        i = j


def _ranges(text):
    """"start+len,..." hex runs -> [(start, len)], or None if malformed (a
    record garbled on the way: its part counts as missing)."""
    out = []
    for run in filter(None, text.split(",")):
        try:
            start, length = run.split("+")
            out.append((int(start, 16), int(length, 16)))
        except ValueError:
            return None
    return out


def _expand(runs):
    s = set()
    for start, length in runs:
        s.update(range(start, start + length))
    return s


def pages_of_runs(text):
    """"start+len,..." hex runs (as runs_of() prints them) -> set of pages,
    or None if malformed."""
    runs = _ranges(text)
    return None if runs is None else _expand(runs)


def runs_of(pages):
    """Sorted pages as "start+len" hex runs (for the run's output)."""
    out, prev, start = [], None, None
    for p in sorted(pages):
        if prev is not None and p == prev + 1:
            prev = p
            continue
        if start is not None:
            out.append("%x+%x" % (start, prev - start + 1))
        start = prev = p
    if start is not None:
        out.append("%x+%x" % (start, prev - start + 1))
    return ",".join(out)


def _assemble(records):
    """Multi-part records -> {key: (set or None if incomplete, meta)}; a
    record is complete when every part is there and it has meta["n"] pages."""
    parts = {}
    for key, part, nparts, meta, runs in records:
        d = parts.setdefault(key, {"n": nparts, "parts": {}, "meta": meta})
        if runs is not None:
            d["parts"][part] = runs
    out = {}
    for key, d in parts.items():
        if sorted(d["parts"]) != list(range(1, d["n"] + 1)):
            out[key] = (None, d["meta"])
            continue
        s = set()
        for p in range(1, d["n"] + 1):
            s |= _expand(d["parts"][p])
        out[key] = (s if len(s) == d["meta"]["n"] else None, d["meta"])
    return out


def guest_truth(lines):
    """{(phase, at_pass): (set of gfns or None, meta)} in console order."""
    recs = []
    for i, l in joined(lines):
        m = GFNS.search(l)
        if m:
            meta = {"phase": int(m.group(1)), "at": int(m.group(2)), "cover": m.group(3),
                    "n": int(m.group(6)), "absent": int(m.group(7)), "hash": m.group(8),
                    "line": i}
            recs.append(((meta["phase"], meta["at"]), int(m.group(4)), int(m.group(5)), meta,
                         _ranges(m.group(9))))
    return _assemble(recs)


def swapin_records(lines):
    """{(phase, at_pass): (set of gfns or None, meta)}: the frames of the
    workload's pages that were absent at wss-touch's report after pass
    meta["since"] and present at the one after pass at_pass (swapped in
    between)."""
    recs = []
    for i, l in joined(lines):
        m = SWAPIN.search(l)
        if m:
            meta = {"phase": int(m.group(1)), "at": int(m.group(2)), "since": int(m.group(3)),
                    "n": int(m.group(6)), "line": i}
            recs.append(((meta["phase"], meta["at"]), int(m.group(4)), int(m.group(5)), meta,
                         _ranges(m.group(7))))
    return _assemble(recs)


def estimate_pages(lines, est="epml", kind="all"):
    """{window: (set of gfns or None, meta)} of xen-epml wss --pages: the
    window's pages (kind all) or those of them written (kind written:
    from the window's kind=written-bits record, a bit per page of the
    kind=all list in its order; older runs printed kind=written runs)."""
    recs, bits = [], {}
    for i, l in joined(lines):
        m = PAGES.search(l)
        if m and m.group(1) == est and m.group(2) == kind:
            meta = {"w": int(m.group(3)), "n": int(m.group(6)), "line": i}
            recs.append((meta["w"], int(m.group(4)), int(m.group(5)), meta, _ranges(m.group(7))))
            continue
        m = BITS.search(l)
        if m and m.group(1) == est and kind == "written":
            d = bits.setdefault(int(m.group(2)), {"k": int(m.group(4)), "n": int(m.group(5)),
                                                  "parts": {}})
            d["parts"][int(m.group(3))] = m.group(6)
    out = _assemble(recs)
    if not bits:
        return out
    every = estimate_pages(lines, est, "all")
    for w, d in bits.items():
        pages = every.get(w, (None, None))[0]
        meta = {"w": w, "n": None}
        if pages is None or sorted(d["parts"]) != list(range(1, d["k"] + 1)) or \
                len(pages) != d["n"]:
            out[w] = (None, meta)
            continue
        hexs = "".join(d["parts"][p] for p in range(1, d["k"] + 1))
        order = sorted(pages)
        if len(hexs) != (len(order) + 3) // 4:
            out[w] = (None, meta)
            continue
        written = {order[i] for i in range(len(order)) if int(hexs[i // 4], 16) >> (i % 4) & 1}
        meta["n"] = len(written)
        out[w] = (written, meta)
    return out


def window_phases(stamped, cuts, lag):
    """Per window, the workload phases whose passes were reported in it.

    stamped: [(host time, line)]; cuts: {window: host time of its end};
    lag: how late the domU's lines reach the host (dom0 relays them once a
    second).  A window is (cut[w-1] + lag, cut[w] + lag]."""
    out = {}
    for w in sorted(cuts):
        lo = cuts.get(w - 1)
        hi = cuts[w] + lag
        lo = lo + lag if lo is not None else None
        out[w] = {int(m.group(1)) for t, l in stamped
                  if (lo is None or t > lo) and t <= hi for m in [PASS.search(l)] if m}
    return out


# ---- the domU's lines against the window boundaries ------------------------
#
# dom0 relays the domU's console to the host once a second, and under load
# (a domU that swaps, dom0's disk backend busy) a line can reach the host
# seconds after the domU printed it: seen in CI, a pass's line came more than
# 5 s late.  Host arrival times therefore cannot say which window a pass ran
# in.  xen-epml --console-log counts, at each boundary, the whole lines of
# the domU's console log in dom0 ("@@QPML epml-lines est=E w=N lines=L"),
# and dom0 relays that log line by line, in order, each with the "[domU] "
# prefix: a relayed line's number in the log says on which side of each
# boundary the domU printed it.

DOMU = "[domU] "
WSS_TOUCH = DOMU + "wss-touch: "
EPML_LINES = re.compile(r"est=(\S+) w=(\d+) lines=(-?\d+)")
# A line whose prefix a Xen message broke on the serial line goes
# uncounted (never seen; a Xen message would have to land in the prefix's
# 7 characters); a line of margin on each side of a boundary absorbs one.
CUT_SLACK_LINES = 1
# When a write to the domU's console returns, what it wrote may still sit
# in the console driver's buffer (hvc_xen: 256 bytes), not in the log yet.
CUT_SLACK_BYTES = 256


def cut_lines(marks):
    """{(est, w): whole lines in the domU's console log at boundary w},
    from the epml-lines marks ((event, fields, when) as xen-demo keeps
    them); a count of -1 (log unreadable) is left out."""
    out = {}
    for ev, fields, _ in marks:
        m = EPML_LINES.search(fields) if ev == "epml-lines" else None
        if m and int(m.group(3)) >= 0:
            out[(m.group(1), int(m.group(2)))] = int(m.group(3))
    return out


class DomuLines:
    """The console's lines (as the host saw them) numbered as in the domU's
    console log: the n-th line with the "[domU] " prefix is the log's n-th."""

    def __init__(self, lines):
        self.number = {}        # index among @lines -> line number in the log
        self.end = [0]          # bytes of the log through line n
        self.touch = []         # indices of wss-touch's lines, in order
        for i, line in enumerate(lines):
            if line is not None and line.startswith(DOMU):
                self.number[i] = len(self.end)
                self.end.append(self.end[-1] + len(line) - len(DOMU) + 1)
                if line.startswith(WSS_TOUCH):
                    self.touch.append(i)

    def before(self, i, count):
        """Line @i was whole in the log at a boundary that counted @count
        lines: the domU printed it before the boundary."""
        n = self.number.get(i)
        return n is not None and n <= count - CUT_SLACK_LINES

    def after(self, i, count):
        """The domU's write of line @i returned only after that boundary:
        its last byte lies beyond what the driver's buffer can hold past
        the lines the log had, so whatever the writer did next came after."""
        n = self.number.get(i)
        if n is None or n <= count + CUT_SLACK_LINES or count + 1 >= len(self.end):
            return False
        return self.end[n] - self.end[count + 1] > CUT_SLACK_BYTES

    def pass_between(self, i, lo, hi):
        """The wss-touch pass whose line is @i ran wholly between two
        boundaries that counted @lo and @hi lines: its line was in the log
        at the closing one, and the workload's line before it (after which
        the pass began) was written after the opening one."""
        k = bisect.bisect_left(self.touch, i)
        return k > 0 and self.before(i, hi) and self.after(self.touch[k - 1], lo)


def whole_pass_windows_lines(lines, counts):
    """The windows w >= 1 (both boundaries counted; counts: {w: lines})
    in which a whole wss-touch pass ran (DomuLines.pass_between())."""
    dl = DomuLines(lines)
    return {w for i in dl.touch if PASS.search(lines[i])
            for w in counts if w >= 1 and (w - 1) in counts
            and dl.pass_between(i, counts[w - 1], counts[w])}


def window_phases_lines(lines, counts):
    """window_phases() by line numbers: per window w >= 1 with both of its
    boundaries counted, the phases of the passes the domU reported between
    them.  counts: {w: lines at boundary w}."""
    dl = DomuLines(lines)
    passes = [(dl.number[i], int(m.group(1))) for i in dl.touch
              for m in [PASS.search(lines[i])] if m]
    return {w: {phase for n, phase in passes if counts[w - 1] < n <= counts[w]}
            for w in counts if w >= 1 and (w - 1) in counts}


def truth_for_phase(truths, phase, before_line=None):
    """The latest complete guest truth of @phase (before a console line)."""
    best = None
    for (ph, at), (s, meta) in truths.items():
        if ph != phase or s is None:
            continue
        if before_line is not None and meta["line"] > before_line:
            continue
        if best is None or meta["line"] > best[1]["line"]:
            best = (s, meta)
    return best


# ---- the plugin truth (truth/wss-truth.c) ----------------------------------

class GuestRAM:
    """Read-only view of a running QEMU's RAM, through its memfd backend.

    QEMU is started with -object memory-backend-memfd (docs/ground-truth.md);
    /proc/PID/fd holds the memfd, which this process may read because it
    started QEMU.  QEMU names every such memfd after its type, so the one of
    exactly size_mib MiB is taken.  On q35 and pc, RAM below 4 GiB is
    physical address 0 onwards; only that is read here."""

    def __init__(self, pid, size_mib):
        self.fd = None
        for name in os.listdir("/proc/%d/fd" % pid):
            path = "/proc/%d/fd/%s" % (pid, name)
            try:
                if not os.readlink(path).startswith("/memfd:memory-backend-memfd"):
                    continue
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            if os.fstat(fd).st_size == size_mib << 20:
                self.fd = fd
                break
            os.close(fd)
        if self.fd is None:
            raise OSError("no %d MiB memory-backend-memfd in QEMU (pid %d)" % (size_mib, pid))

    def qwords(self, pa):
        """The 512 8-byte entries of the 4 KiB table at physical address pa."""
        data = os.pread(self.fd, 4096, pa)
        if len(data) != 4096:
            raise OSError("short read at %#x" % pa)
        return struct.unpack("<512Q", data)

    def close(self):
        os.close(self.fd)


EPT_ADDR = ((1 << 52) - 1) & ~0xfff


def ept_inverse(ram, eptp):
    """{machine pfn: guest pfn} of every page a 4-level EPT maps.

    Written from the SDM's EPT format (29.3.2), independently of the
    emulator's walker: an entry is present if any of bits 2:0 is set; bit
    7 makes a PDPTE a 1 GiB leaf and a PDE a 2 MiB leaf."""
    inv = {}

    def walk(table, level, gbase):
        span = 1 << (12 + 9 * (3 - level))      # bytes one entry maps
        for i, e in enumerate(ram.qwords(table)):
            if not e & 7:
                continue
            g = gbase + i * span
            if level == 3 or (level in (1, 2) and e & 0x80):
                mbase = (e & EPT_ADDR) & ~(span - 1)
                for k in range(span >> 12):
                    inv[(mbase >> 12) + k] = (g >> 12) + k
            else:
                walk(e & EPT_ADDR, level + 1, g)

    walk(eptp & EPT_ADDR, 0, 0)
    return inv


def plugin_windows(path):
    """{window name: {pfn: (reads, writes, fetches)}} and per-window totals;
    a name that closes two windows (a marker seen twice) is listed in
    totals["_repeated"], and the later window replaces the earlier;
    totals["_waiting"] and ["_armed"] say whether the plugin ran with
    arm=insn and whether the arming instruction ran."""
    wins, tot, cur = {}, {"_repeated": []}, None
    with open(path) as f:
        for line in f:
            if cur is None and line.startswith("wss-truth waiting"):
                tot["_waiting"] = True
            elif cur is None and line == "armed\n":
                tot["_armed"] = True
            elif line.startswith("window "):
                cur = line.split()[1]
                if cur in wins:
                    tot["_repeated"].append(cur)
                wins[cur] = {}
            elif line.startswith("end "):
                w = line.split()
                tot[w[1]] = dict(kv.split("=") for kv in w[2:])
                cur = None
            elif cur is not None:
                p, r, wr, fe = line.split()
                wins[cur][int(p, 16)] = (int(r), int(wr), int(fe))
    return wins, tot


def to_guest(window, inv):
    """A plugin window's machine pages -> {gfn: (reads, writes, fetches)}."""
    return {inv[p]: c for p, c in window.items() if p in inv}


def score_sets(est, true):
    """Page-set comparison of an estimate with a complete truth."""
    tp = est & true
    return {"truth": len(true), "estimate": len(est), "tp": len(tp),
            "fn": len(true - est), "fp": len(est - true),
            "precision": 100.0 * len(tp) / len(est) if est else 0.0,
            "recall": 100.0 * len(tp) / len(true) if true else 0.0,
            "fn_pages": true - est, "fp_pages": est - true}


# ---- page heat ------------------------------------------------------------

def estimate_heat(lines, est="epml"):
    """xen-epml wss --pages' closing heat record: ({gfn: (windows read,
    windows written)} or None if a part is missing, windows)."""
    parts, nparts, n, windows = {}, None, None, None
    for _, l in joined(lines):
        m = HEAT.search(l)
        if not m or m.group(1) != est:
            continue
        windows, nparts, n = int(m.group(2)), int(m.group(4)), int(m.group(5))
        heat = {}
        try:
            for run in filter(None, m.group(6).split(",")):
                rng, rw = run.split(":")
                start, length = (int(x, 16) for x in rng.split("+"))
                r, w = (int(x) for x in rw.split("."))
                for g in range(start, start + length):
                    heat[g] = (r, w)
        except ValueError:
            continue            # garbled on the way: the part is missing
        parts[int(m.group(3))] = heat
    if nparts is None or sorted(parts) != list(range(1, nparts + 1)):
        return None, windows
    out = {}
    for h in parts.values():
        out.update(h)
    return (out if len(out) == n else None), windows


def _ranks(values):
    """Average ranks (1-based; ties share the mean of their positions)."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2.0 + 1
        i = j + 1
    return ranks


def spearman(xs, ys):
    """Spearman's rank correlation (Pearson's on average ranks); None when
    either side has no spread."""
    rx, ry = _ranks(xs), _ranks(ys)
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(rx) / n, sum(ry) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    return sxy / (sxx * syy) ** 0.5 if sxx and syy else None


def top_k_share(est, true, frac):
    """Of the true top-k pages (k = frac of the pages the truth saw, by
    count), the share the estimate also ranks in its own top k.  The
    longmap's heat has few distinct values, so its top k usually ends
    inside a tie: the pages tied at the boundary fill the remaining slots
    in proportion (the expected overlap if the tie were broken at random).
    Returns (share in %, k, pages tied at the boundary, slots left)."""
    pages = sorted(true, key=lambda p: -true[p])
    k = max(1, int(round(frac * len(pages))))
    top_true = set(pages[:k])
    heat = sorted((est.get(p, 0) for p in true), reverse=True)
    theta = heat[k - 1]
    above = {p for p in true if est.get(p, 0) > theta}
    tied = {p for p in true if est.get(p, 0) == theta}
    slots = k - len(above)
    hits = len(top_true & above) + len(top_true & tied) * slots / len(tied)
    return 100.0 * hits / k, k, len(tied), slots


def heat_agreement(heat, windows):
    """Page heat by the estimate (longmap: windows read + windows written
    per page) against the plugin truth over the same windows.

    heat: {gfn: (windows read, windows written)}; windows: [{gfn: (reads,
    writes, fetches)}] of the graded windows.  Over the pages the truth saw:
    - rho_count: Spearman between the longmap's heat and the true access
      count (reads + writes + fetches over all windows): how well the
      longmap ranks pages by use (the research's limit 4);
    - rho_windows: Spearman between the longmap's heat and the truth's own
      windows accessed + windows written: the longmap's ceiling, 1.0 if
      every page's count is right.  The longmap's first count is of
      windows in which the page's accessed flag was set, which any access
      does (a load, a fetch, or a store to a page not yet accessed: an
      extended-PML entry for a first store has both R and W), so the
      truth's is windows with any access;
    - exact: share of pages whose longmap (read, written) window counts
      equal the truth's;
    - top-k (1%, 10%) shares as in top_k_share."""
    count, wins = {}, {}
    for win in windows:
        for g, (r, w, f) in win.items():
            count[g] = count.get(g, 0) + r + w + f
            a, b = wins.get(g, (0, 0))
            wins[g] = (a + (1 if r or w or f else 0), b + (1 if w else 0))
    pages = sorted(count)
    est = {g: sum(heat.get(g, (0, 0))) for g in pages}
    out = {"pages": len(pages),
           "rho_count": spearman([est[g] for g in pages], [count[g] for g in pages]),
           "rho_windows": spearman([est[g] for g in pages], [sum(wins[g]) for g in pages]),
           "exact": 100.0 * sum(heat.get(g, (0, 0)) == wins[g] for g in pages) / max(len(pages), 1),
           "levels": len(set(est.values()))}
    off = [g for g in pages if heat.get(g, (0, 0)) != wins[g]]
    out["never_logged"] = sum(1 for g in off if g not in heat)
    out["read_off"] = sum(1 for g in off if g in heat and heat[g][0] != wins[g][0])
    out["written_off"] = sum(1 for g in off if g in heat and heat[g][1] != wins[g][1])
    out["off_sample"] = [[g, list(heat.get(g, (0, 0))), list(wins[g])] for g in off[:40]]
    for frac in (0.01, 0.10):
        share, k, tied, slots = top_k_share(est, count, frac)
        out["top%d" % round(frac * 100)] = {"share": share, "k": k, "tied": tied, "slots": slots}
    return out
