#!/usr/bin/python3
"""TAP: the swap-traffic estimators (guest-tests/xen/swapest.py) and dom0's
trace format (guest-tests/xen/swapio.awk), on traces whose answer is
worked out by hand.

- A cyclic workload of N pages in an LRU memory of A < N pages: every
  access faults, the page read back is always the oldest evicted one, at
  reuse distance N - A - 1; Geiger and the exclusive cache must both say
  exactly N.
- A clean page dropped without a write (read, read again): neither can
  place the refault; Geiger counts it as unplaced, the cache as a miss.
- A window with no swap-in gives the allocation.
- Tracefs lines through the awk program (as dom0 runs it) and back: a
  multi-page request, a discard, a flush without data, an unaligned
  request counted, the cut markers; a dump with a part missing is refused.
- Pages swapped in are counted once a window (a clean page read twice is
  one page), a slot rewritten in between holds another page.
- xen-demo's oracle rule under swapping, on a synthetic run: a window
  holding a whole pass reaches the workload's pages with the pages
  swapped in counted, and falls short without them.
- The same page by page: the frames pages were swapped into during a
  pass (wss-touch --gfns 1) must be in the oracle's page list of the
  window; a frame missing from it fails the check.
"""
import os
import subprocess
import sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import swapest  # noqa: E402
from tap import done, ok  # noqa: E402

AWK = os.path.join(HERE, "swapio.awk")


def trace_line(kind, sector, sectors):
    return ("   blkback.1.xvdb-351   [001] ..... 4711.000001: block_bio_queue: 1,0 %s %d + %d"
            " [blkback.1.xvdb]" % (kind, sector, sectors))


def cut_line(est, w):
    return ("        xen-epml-402   [000] ..... 4712.5: tracing_mark_write: qpml-cut est=%s w=%d"
            % (est, w))


def through_awk(lines):
    r = subprocess.run(["awk", "-f", AWK], input="\n".join(lines) + "\n", capture_output=True,
                       text=True, check=True)
    return ["[  1.00] " + l for l in r.stdout.splitlines()]


def cyclic_trace(n, a, passes, windows):
    """An LRU memory of a pages, pages 0..n-1 accessed in order, passes
    times; page p lives in swap slot p + 1 (slot 0 is the swap header).
    A fault reads the page back, then the oldest resident page is written
    out.  windows cuts spread over the passes (est epml)."""
    mem = OrderedDict()
    out = [cut_line("epml", 0)]
    total = n * passes
    step = total // windows
    i = 0
    for _ in range(passes):
        for p in range(n):
            if p in mem:
                mem.move_to_end(p)
            else:
                if i >= n:                       # not the first touch: it was swapped out
                    out.append(trace_line("R", 8 * (p + 1), 8))
                mem[p] = True
                if len(mem) > a:
                    v, _ = mem.popitem(last=False)
                    out.append(trace_line("WS", 8 * (v + 1), 8))
            i += 1
            if i % step == 0 and i // step <= windows:
                out.append(cut_line("epml", i // step))
    return out


# -- a cyclic workload larger than memory -------------------------------------
N, A = 300, 200
text = through_awk(cyclic_trace(N, A, passes=4, windows=4))
events, ends = swapest.parse(text)
ok(len(ends) == 1 and ends[0]["cuts"] == "5" and ends[0]["unaligned"] == "0",
   "the awk's end line counts 5 cuts and no unaligned request (%s)" % ends)
rows = swapest.run(events, A)
ok(sorted(rows) == [("epml", w) for w in (1, 2, 3, 4)], "four windows (%s)" % sorted(rows))
late = [rows[("epml", w)] for w in (2, 3, 4)]
ok(all(r["swapin"] == N and r["swapout"] == N for r in late),
   "after the first pass every access swaps one page in and one out (%s)"
   % [(r["swapin"], r["swapout"]) for r in late])
ok(all(r["g_hist"] == {N - A - 1: N} for r in late),
   "every refault is at reuse distance N - A - 1 = %d (%s)"
   % (N - A - 1, [r["g_hist"] for r in late]))
ok(all(r["geiger"] == N for r in late),
   "Geiger's estimate is the working set, %d pages (%s)" % (N, [r["geiger"] for r in late]))
ok(all(r["excl"] == N for r in late),
   "the exclusive cache's estimate is the working set, %d pages (%s)"
   % (N, [r["excl"] for r in late]))
first = rows[("epml", 1)]
ok(first["swapin"] == 0 and first["geiger"] == A and first["excl"] == A,
   "a window without swap-ins (the first pass) gives the allocation (%s, %s)"
   % (first["geiger"], first["excl"]))

# -- an eviction no write shows ------------------------------------------------
lines = [cut_line("pml", 0), trace_line("WS", 80, 8), trace_line("R", 80, 8),
         cut_line("pml", 1), trace_line("R", 80, 8), trace_line("R", 8000, 8),
         cut_line("pml", 2)]
rows = swapest.run(swapest.parse(through_awk(lines))[0], 100)
ok(rows[("pml", 1)]["g_hist"] == {0: 1} and rows[("pml", 1)]["geiger"] == 101,
   "a page written out and read back is a refault at distance 0: allocation + 1 (%s)"
   % rows[("pml", 1)]["geiger"])
r = rows[("pml", 2)]
ok(r["g_unknown"] == 1 and r["g_cold"] == 1 and r["c_miss"] == 2,
   "a slot read twice with no write between, and one never written: Geiger cannot place"
   " them, the cache misses both (%d, %d, %d)" % (r["g_unknown"], r["g_cold"], r["c_miss"]))
ok(r["geiger"] == 100 and r["excl"] == 100,
   "misses neither can place do not move the estimate: the allocation (%s, %s)"
   % (r["geiger"], r["excl"]))
lines = [cut_line("epml", 0)] + [trace_line("WS", 8 * s, 8) for s in range(1, 201)] + \
    [trace_line("R", 8 * s, 8) for s in (200, 199, 1)] + [cut_line("epml", 1)]
r = swapest.run(swapest.parse(through_awk(lines))[0], 1000, 0.5)[("epml", 1)]
ok(r["g_hist"] == {0: 2, 197: 1} and r["geiger"] == 1001,
   "slots 200, 199, 1 read back after 200 writes: distances 0, 0 (200 left the list), 197;"
   " with threshold 0.5 one miss of three may remain: allocation + 1 (%s, %s)"
   % (r["g_hist"], r["geiger"]))
r = swapest.run(swapest.parse(through_awk(lines))[0], 1000, 0.01)[("epml", 1)]
ok(r["geiger"] == 1198 and r["excl"] == 1198,
   "with threshold 0.01 none may remain: allocation + 198 (%s, %s)" % (r["geiger"], r["excl"]))

# -- the trace format ----------------------------------------------------------
lines = [cut_line("epml", 0), trace_line("WS", 64, 64), trace_line("FWS", 0, 0),
         trace_line("DS", 128, 16), trace_line("R", 12, 8), cut_line("epml", 1)]
text = through_awk(lines)
events, ends = swapest.parse(text)
ok(events == [("cut", "epml", 0), ("W", 8, 8), ("D", 16, 2), ("R", 1, 1), ("cut", "epml", 1)],
   "a 64-sector write is 8 pages from slot 8, the flush is dropped, a discard and a read"
   " kept (%s)" % events)
ok(ends[0]["unaligned"] == "1", "the read at sector 12 is counted as unaligned")
many = through_awk([trace_line("WS", 8 * s, 8) for s in range(250)])
ok(len([l for l in many if "swapio part=" in l]) == 3 and len(swapest.parse(many)[0]) == 250,
   "250 events make three parts of at most 100, all read back")
try:
    swapest.parse([l for l in many if "part=2 " not in l])
    refused = False
except ValueError as e:
    refused = "part 3 after part 1" in str(e)
ok(refused, "a dump with a part missing is refused, not read short")
try:
    swapest.parse(many[:-1])
    refused = False
except ValueError as e:
    refused = "without its end line" in str(e)
ok(refused, "a dump without its end line is refused")

# Distinct pages swapped in: slot 5 read, read again (dropped clean in
# between: the same page), written and read (new contents: another page);
# slot 6 read once.  Four reads, three pages.
rows = swapest.run([("cut", "epml", 0), ("W", 5, 1), ("W", 6, 1), ("R", 5, 1), ("R", 5, 1),
                    ("W", 5, 1), ("R", 5, 1), ("R", 6, 1), ("cut", "epml", 1)], 1000)
r = rows[("epml", 1)]
ok(r["swapin"] == 4 and r["swapin_pages"] == 3,
   "a page read back twice with no write between is one page swapped in, a rewritten slot"
   " another (%d reads, %d pages)" % (r["swapin"], r["swapin_pages"]))

# -- xen-demo's oracle rule under swapping ------------------------------------
# A window holding a whole pass of a 3,840-page region, with 3,000 frames
# touched: it reaches the region only if the 900 pages swapped in count.
import importlib.util  # noqa: E402
import types  # noqa: E402
spec = importlib.util.spec_from_file_location("xen_demo", os.path.join(HERE, "xen-demo.py"))
xd = importlib.util.module_from_spec(spec)
spec.loader.exec_module(xd)


def swap_checks(swapins, touched=3000, expect="yes", swapouts=1000):
    raw = [cut_line("epml", 0)] + [trace_line("WS", 8 * s, 8) for s in range(1, swapouts + 1)] + \
        [trace_line("R", 8 * s, 8) for s in range(1, swapins + 1)] + [cut_line("epml", 1)]
    text = ["[domU] @@DOMU swap on: /dev/xvdb"] + through_awk(raw) + \
        ["@@QPML swapio-stats overrun=0 t=1.0"]
    console = types.SimpleNamespace(
        marks=[("epml-cut", "est=epml w=0", 10.0), ("epml-cut", "est=epml w=1", 40.0)],
        stamped=[(30.0, "[domU] wss-touch: loop=1 pass=2 mode=w ms=5000 verify=ok")])
    args = types.SimpleNamespace(domu_memory=96, swap_threshold=0.01, oracle=True,
                                 swap_expect=expect)
    oracle = {("epml", 1): {"guests": [{"touched": touched, "written": 0, "walk-only": 0}]}}
    checks = []
    import contextlib
    with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
        xd.swap_report(args, {"domu": "pvh"}, ["w:15M:seq:1x"], text, oracle, {},
                       ["create", "epml"], lambda n, c: checks.append((n, bool(c))), console)
    return checks


def oracle_check(swapins, touched=3000):
    return [c for n, c in swap_checks(swapins, touched)
            if n.startswith("the oracle counts swapped-in pages")]


def above_check(swapins, swapouts):
    return [c for n, c in swap_checks(swapins, 4000, "no", swapouts)
            if n.startswith("memory above the working set")]


ok(oracle_check(900) == [True],
   "a graded window of 3,000 frames and 900 pages swapped in reaches the 3,840-page region:"
   " the oracle rule counts the swapped-in pages")
ok(oracle_check(0) == [False],
   "the same window without swap-ins falls short: the check can fail")
# --swap-expect no (experiments/examples/swap-above.toml): a window without
# swap traffic passes (Geiger and the cache give the allocation); one with
# swap-outs or swap-ins fails.
ok(above_check(0, 0) == [True],
   "memory above the working set: a window with no swap traffic passes, Geiger and the cache"
   " at the allocation")
ok(above_check(0, 10) == [False] and above_check(5, 10) == [False],
   "memory above the working set: a window with swap-outs, or swap-ins, fails the check")

# -- the same, page by page (wss-touch --gfns 1 against pages-file) -----------
# Two passes inside window 1 (cut at 10 s and 100 s): pass 2 reports the
# frames its pages are in and the 2 frames pages were swapped into since
# pass 1.  A pass that began before the window's cut is not graded.


def page_check(oracle_pages, swapping=True, swapin="20+2", frames="10+4,20+2", late=False,
               cut=None, between=None):
    text = ["[domU] wss-touch: loop=0 phase=0 pass=1 mode=rw ms=5000 verify=ok",
            "[domU] wss-touch: gfns phase=0 at=1 cover=this part=1/1 n=6 absent=0 hash=0x1"
            " r=10+6",
            "[domU] wss-touch: loop=0 phase=0 pass=2 mode=rw ms=%d verify=ok"
            % (80000 if late else 5000),
            "[domU] wss-touch: swapin phase=0 at=2 since=1 part=1/1 n=%d r=%s"
            % (sum(int(r.split("+")[1], 16) for r in swapin.split(",") if r), swapin),
            "[domU] wss-touch: gfns phase=0 at=2 cover=this part=1/1 n=%d absent=2 hash=0x2 r=%s"
            % (sum(int(r.split("+")[1], 16) for r in frames.split(",")), frames)]
    if cut is not None:
        # the last record arrives broken in two at @cut characters from
        # its end (as the console did once in CI), maybe with a line between
        text[-1:] = [text[-1][:-cut]] + ([between] if between else []) + [text[-1][-cut:]]
    console = types.SimpleNamespace(
        marks=[("epml-cut", "est=epml w=0", 10.0), ("epml-cut", "est=epml w=1", 100.0)],
        stamped=[(20.0 + 10 * i, l) for i, l in enumerate(text)])
    checks, out = [], io.StringIO()
    with contextlib.redirect_stdout(out):
        xd.swap_page_check(console, text, {("epml", 1): set(oracle_pages)},
                           lambda n, c: checks.append(bool(c)), swapping)
    page_check.out = out.getvalue()
    return checks


import contextlib  # noqa: E402
import io  # noqa: E402
every = list(range(0x10, 0x16)) + [0x20, 0x21]
ok(page_check(every) == [True],
   "page by page: the frames of two passes and the 2 frames pages were swapped into are all"
   " in the oracle's page list: passes")
ok(page_check([p for p in every if p != 0x21]) == [False],
   "page by page: a swapped-in frame missing from the oracle's page list fails the check")
ok(page_check([p for p in every if p != 0x11]) == [False],
   "page by page: a frame a pass left its page in, missing from the list, fails the check")
ok(page_check(every, swapin="") == [False] and page_check(every, False, swapin="") == [True],
   "page by page: no page swapped in fails a run that must swap, passes one that need not")
first = list(range(0x10, 0x16)) + [0x20, 0x21]
ok(page_check(first, False, frames="10+4,30+1", late=True) == [True] and
   page_check(first, False, frames="10+4,30+1") == [False],
   "page by page: a pass that began before the window is not graded against it")

ok(all(page_check(every, cut=c) == [True] and "2 passes" in page_check.out and
        "0 records of such passes incomplete" in page_check.out for c in (3, 4)),
   "page by page: a record the console broke in two (inside a run, at a comma) is rejoined")
ok(page_check(every, cut=3, between="[domU] wss-touch: loop=0 phase=0 pass=3") == [True] and
   "1 passes" in page_check.out and "1 records of such passes incomplete" in page_check.out,
   "page by page: a record broken by another line is incomplete: counted, not graded")
garbled = xd.truth.guest_truth(["[domU] wss-touch: gfns phase=0 at=1 cover=this part=1/1 n=6"
                             " absent=0 hash=0x1 r=10+6,zz"])
ok(garbled == {(0, 1): (None, garbled[(0, 1)][1])},
   "a garbled record is incomplete (None), not an exception")

# The LRU stack's depths (a Fenwick tree over push stamps) against a plain
# list, over 80,000 random pushes and pops of 400 slots: past the tree's
# first capacity (65,536 stamps), so its regrowth is checked too.
import random  # noqa: E402
rng = random.Random(16)
lru, plain, bad = swapest.LRU(), [], 0
for i in range(80000):
    s = rng.randrange(400)
    if rng.random() < 0.1:
        lru.pop(s)
        if s in plain:
            plain.remove(s)
    else:
        lru.push(s)
        if s in plain:
            plain.remove(s)
        plain.append(s)
    if i % 97 == 0:
        q = rng.randrange(400)
        want = len(plain) - 1 - plain.index(q) if q in plain else None
        bad += lru.depth(q) != want or len(lru) != len(plain)
ok(bad == 0, "LRU depths match a plain list over 80,000 pushes and pops (%d differ)" % bad)
# -- which window a pass ran in, by the domU's console line numbers -----------
# dom0 relays the domU's lines late under load (a CI run saw more than 5 s),
# so host arrival times can put a pass in a window it began before.
# xen-epml --console-log counts the log's lines at each boundary
# ("epml-lines"); a pass is in window 1 only if its line was in the log at
# the closing boundary and the workload's line before it (the previous
# pass's last report, after which it began) was written after the opening
# one.  Here every line arrives at host times that put pass 2 in window 1;
# the counts say otherwise in two cases, and agree in one.
def placed(lo, hi, short=False):
    text = ["[domU] @@DOMU meminfo committed_as_kb=1"] * 6 + [
        "(XEN) not the domU's",
        "[domU] wss-touch: loop=0 phase=0 pass=1 mode=rw ms=50 verify=ok",      # line 7
        "[domU] wss-touch: gfns phase=0 at=1 cover=this part=1/1 n=6 absent=0 hash=0x1 r="
        + ("10+6" if short else ",".join("%x+1" % (0x100 + 2 * k) for k in range(120))),  # 8
        "@@QPML epml-cut est=epml w=1 t=1.00",
        "[domU] wss-touch: loop=0 phase=0 pass=2 mode=rw ms=50 verify=ok",      # line 9
        "[domU] @@DOMU meminfo committed_as_kb=1"] + ["[domU] x"] * 3           # lines 10-13
    marks = [("epml-cut", "est=epml w=0", 10.0), ("epml-cut", "est=epml w=1", 100.0)]
    if lo is not None:
        marks += [("epml-lines", "est=epml w=0 lines=%d" % lo, 10.0),
                  ("epml-lines", "est=epml w=1 lines=%d" % hi, 100.0)]
    console = types.SimpleNamespace(marks=marks,
                                    stamped=[(50.0 + i, l) for i, l in enumerate(text)])
    return xd.whole_pass_windows(console) == {("epml", 1)}


ok(placed(None, None), "without line counts a pass is placed by host time (the late-relay risk)")
ok(placed(3, 13), "with line counts: pass 2's line (9) in the log at the closing boundary (13),"
   " the report before it (line 8, 600 bytes past line 4) written after the opening one (3):"
   " in window 1")
ok(not placed(8, 13), "with line counts: the report before pass 2 already in the log at the"
   " opening boundary: pass 2 may have begun before it, not in window 1")
ok(not placed(3, 9), "with line counts: pass 2's line not clear of the closing boundary's count"
   " (9, within the margin of a line): not in window 1")
ok(not placed(3, 13, short=True), "with line counts: the report before pass 2 short, so that"
   " it ends within the console driver's buffer (256 bytes) past the opening boundary's lines:"
   " not in window 1")
done()
