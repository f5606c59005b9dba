#!/usr/bin/python3
"""TAP: the host-side scorer of the ground truths (truth/score.py).

Every figure of docs/ground-truth.md and docs/experiments.md goes through
these functions, so each is checked on inputs whose answer is worked out
by hand: page lists and written bits as xen-epml prints them (complete and
with a part missing), the heat record, rank correlation with ties, the
top-k share with a tie at the boundary, and the EPT inversion on a
hand-built table with a 2 MiB leaf.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "guest-tests"))
import score  # noqa: E402
from tap import done, ok  # noqa: E402

# -- page lists and written bits (xen-epml wss --pages) ----------------------
lines = [
    "x @@QPML pages est=epml kind=all w=1 part=1/2 n=6 r=10+3",
    "x @@QPML pages est=epml kind=all w=1 part=2/2 n=6 r=20+3",
    # pages in gfn order 10,11,12,20,21,22; digit 0 = 0b0101 (10, 12),
    # digit 1 = 0b0010 (the 6th page: 22)
    "x @@QPML pages est=epml kind=written-bits w=1 part=1/1 n=6 bits=52",
    "x @@QPML pages est=epml kind=all w=2 part=1/2 n=4 r=30+4",
    "x @@QPML pages est=pml kind=all w=1 part=1/1 n=2 r=40+2",
]
every = score.estimate_pages(lines, "epml")
ok(every[1][0] == {0x10, 0x11, 0x12, 0x20, 0x21, 0x22},
   "a two-part page list is the union of its runs (hex start+length)")
ok(every[2][0] is None, "a page list with a part missing is incomplete, never scored")
wr = score.estimate_pages(lines, "epml", "written")
ok(wr[1][0] == {0x10, 0x12, 0x22} and wr[1][1]["n"] == 3,
   "written bits select pages of the window's list in gfn order, bit i %% 4 of digit i / 4 (%s)"
   % sorted(wr[1][0]))
ok(score.estimate_pages(lines[:1] + lines[2:3], "epml", "written")[1][0] is None,
   "written bits over an incomplete page list are not scored")
ok(score.estimate_pages(lines[:2] + ["@@QPML pages est=epml kind=written-bits w=1 part=1/1 "
                                     "n=6 bits=5"], "epml", "written")[1][0] is None,
   "written bits of the wrong length are not scored")
ok(score.estimate_pages(lines, "pml")[1][0] == {0x40, 0x41},
   "each estimator's lists are kept apart (est=pml)")

# -- heat record ---------------------------------------------------------------
heat_lines = ["@@QPML heat est=epml windows=3 part=1/2 n=4 h=10+2:3.1",
              "@@QPML heat est=epml windows=3 part=2/2 n=4 h=20+1:1.0,30+1:2.2"]
h, w = score.estimate_heat(heat_lines)
ok(h == {0x10: (3, 1), 0x11: (3, 1), 0x20: (1, 0), 0x30: (2, 2)} and w == 3,
   "the heat record gives each page its windows read and written")
ok(score.estimate_heat(heat_lines[1:])[0] is None, "a heat record with a part missing is None")

# -- rank correlation and top-k --------------------------------------------------
ok(abs(score.spearman([1, 2, 3, 4], [10, 20, 30, 45]) - 1) < 1e-12,
   "Spearman is 1 for the same order")
ok(abs(score.spearman([1, 2, 3, 4], [4, 3, 2, 1]) + 1) < 1e-12,
   "Spearman is -1 for the reverse order")
rho = score.spearman([1, 1, 2, 2], [1, 2, 3, 4])
ok(abs(rho - 0.894427191) < 1e-6, "ties get average ranks (rho %.6f, by hand 0.894427)" % rho)
ok(score.spearman([5, 5, 5], [1, 2, 3]) is None, "no spread on one side: no correlation")
# true counts: a 100, b 90, c 2, d 1; estimate: a and c tied at 5, b and d 1
share, k, tied, slots = score.top_k_share({"a": 5, "c": 5, "b": 1, "d": 1},
                                          {"a": 100, "b": 90, "c": 2, "d": 1}, 0.5)
ok((share, k, tied, slots) == (50.0, 2, 2, 2),
   "top-k: the estimate's top 2 is {a, c}, so 1 of the true top 2 (%s)" % share)
share, k, tied, slots = score.top_k_share({"a": 5, "b": 3, "c": 3, "d": 3},
                                          {"a": 100, "b": 90, "c": 2, "d": 1}, 0.5)
ok(abs(share - 100 * (1 + 1 / 3) / 2) < 1e-9 and (k, tied, slots) == (2, 3, 1),
   "top-k with a tie at the boundary: 1 slot among 3 tied pages counts 1/3 (%.3f)" % share)

# -- heat agreement ------------------------------------------------------------
wins = [{1: (10, 0, 0), 2: (1, 1, 0), 3: (0, 0, 4)},
        {1: (10, 5, 0), 2: (0, 1, 0)}]
agree = score.heat_agreement({1: (2, 1), 2: (2, 2), 3: (1, 0)}, wins)
ok(agree["exact"] == 100.0 and agree["pages"] == 3,
   "windows accessed count any access (a store alone, a fetch), windows written count stores "
   "(exact %.1f%%)" % agree["exact"])
# page 2 was only stored to in window 2: a longmap that counted loads only
# (the first version of this scorer did) is one window short
agree = score.heat_agreement({1: (2, 1), 2: (1, 2), 3: (1, 0)}, wins)
ok(abs(agree["exact"] - 200 / 3) < 1e-9 and agree["read_off"] == 1,
   "a page counted in one window too few is not exact (%.2f%%)" % agree["exact"])

# -- EPT inversion on a hand-built table ---------------------------------------


class FakeRAM:
    def __init__(self, tables):
        self.tables = tables

    def qwords(self, pa):
        return self.tables.get(pa, [0] * 512)


def table(entries):
    t = [0] * 512
    for i, e in entries.items():
        t[i] = e
    return t


ram = FakeRAM({
    0x1000: table({0: 0x2000 | 7}),                         # PML4[0]
    0x2000: table({0: 0x3000 | 7}),                         # PDPT[0]
    0x3000: table({0: 0x4000 | 7, 1: 0x40000000 | 0x80 | 7}),  # PD[0] -> PT; PD[1] 2 MiB leaf
    0x4000: table({5: 0x123000 | 1, 6: 0x124000}),          # PT[5] readable, PT[6] not present
})
inv = score.ept_inverse(ram, 0x1000 | 0x5e)
ok(inv.get(0x123) == 5 and 0x124 not in inv,
   "a 4 KiB leaf maps its machine frame to its gfn; a non-present entry maps nothing")
ok(inv.get(0x40000) == 0x200 and inv.get(0x401ff) == 0x3ff and len(inv) == 1 + 512,
   "a 2 MiB leaf maps 512 machine frames to 512 gfns (%d mapped)" % len(inv))
# Windows by the domU's console line numbers (xen-epml --console-log): the
# n-th "[domU] " line is the log's n-th whatever else the console holds, and
# a window is (count at its opening boundary, count at its closing one].
lines = ["[domU] wss-touch: loop=0 phase=0 pass=1 ms=5",          # 1
         "(XEN) d1: a hypervisor message",
         "[domU] wss-touch: loop=0 phase=0 pass=2 ms=5",          # 2
         "@@QPML epml-lines est=epml w=1 lines=2",
         "[domU] wss-touch: loop=0 phase=1 pass=3 ms=5",          # 3
         "[domU] @@DOMU meminfo committed_as_kb=1",               # 4
         "[domU] wss-touch: loop=0 phase=1 pass=4 ms=5",          # 5
         "[domU] wss-touch: loop=0 phase=0 pass=5 ms=5"]          # 6
marks = [("epml-lines", "est=epml w=%d lines=%d" % (w, n), 0.0) for w, n in ((0, 0), (1, 2), (2, 5))]
marks += [("epml-lines", "est=pml w=1 lines=-1", 0.0), ("epml-cut", "est=epml w=1", 0.0)]
counts = score.cut_lines(marks)
ok(counts == {("epml", 0): 0, ("epml", 1): 2, ("epml", 2): 5},
   "epml-lines marks give each boundary's count; an unreadable log's (-1) is left out")
ph = score.window_phases_lines(lines, {w: n for (e, w), n in counts.items() if e == "epml"})
ok(ph == {1: {0}, 2: {1}}, "passes fall in the window their line numbers say (%s)" % ph)
dl = score.DomuLines(lines)
ok([dl.number.get(i) for i in range(len(lines))] == [1, None, 2, None, 3, 4, 5, 6],
   "only [domU] lines are numbered, in order")
passes = ["[domU] wss-touch: loop=%d phase=0 pass=%d ms=5 %s" % (k, k + 1, "x" * 120)
          for k in range(12)]
ok(score.whole_pass_windows_lines(passes, {0: 2, 1: 9, 2: 10}) == {1},
   "a whole pass ran in window 1 (lines 3-9: a pass line after two past the opening count),"
   " none in window 2 (one line)")
ok(score.whole_pass_windows_lines(passes, {0: 2, 1: 5}) == set(),
   "no whole pass when the lines between the boundaries are all within the margins")
done()
