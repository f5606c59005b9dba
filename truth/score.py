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
import os
import re
import struct

GFNS = re.compile(r"wss-touch: gfns phase=(\d+) at=(\d+) cover=(\w+) part=(\d+)/(\d+) "
                  r"n=(\d+) absent=(\d+) hash=(0x[0-9a-f]+) r=(\S*)")
PAGES = re.compile(r"@@QPML pages est=(\S+) kind=(\w+) w=(\d+) part=(\d+)/(\d+) n=(\d+) "
                   r"r=(\S*)")
PASS = re.compile(r"\[domU\] wss-touch: loop=\d+ phase=(\d+) pass=\d+")


def _ranges(text):
    out = []
    for run in filter(None, text.split(",")):
        start, length = run.split("+")
        out.append((int(start, 16), int(length, 16)))
    return out


def _expand(runs):
    s = set()
    for start, length in runs:
        s.update(range(start, start + length))
    return s


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
    for i, l in enumerate(lines):
        m = GFNS.search(l)
        if m:
            meta = {"phase": int(m.group(1)), "at": int(m.group(2)), "cover": m.group(3),
                    "n": int(m.group(6)), "absent": int(m.group(7)), "hash": m.group(8),
                    "line": i}
            recs.append(((meta["phase"], meta["at"]), int(m.group(4)), int(m.group(5)), meta,
                         _ranges(m.group(9))))
    return _assemble(recs)


def estimate_pages(lines, est="epml", kind="all"):
    """{window: (set of gfns or None, meta)} of xen-epml wss --pages: the
    window's pages (kind all) or those of them written (kind written)."""
    recs = []
    for i, l in enumerate(lines):
        m = PAGES.search(l)
        if m and m.group(1) == est and m.group(2) == kind:
            meta = {"w": int(m.group(3)), "n": int(m.group(6)), "line": i}
            recs.append((meta["w"], int(m.group(4)), int(m.group(5)), meta, _ranges(m.group(7))))
    return _assemble(recs)


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
    """{window name: {pfn: (reads, writes, fetches)}} and per-window totals."""
    wins, tot, cur = {}, {}, None
    with open(path) as f:
        for line in f:
            if line.startswith("window "):
                cur = line.split()[1]
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
