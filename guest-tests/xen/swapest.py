"""Working-set estimators that see only a domU's swap traffic.

dom0 records every request its block backend sends to the RAM disk behind
the domU's swap device (the tracefs event block_bio_queue on /dev/ram0)
and xen-epml names each estimator window's boundary in the same trace
(--io-marker: "qpml-cut est=E w=N").  dom0's /init prints the trace in a
compact form, "@@QPML swapio part=I n=K ev=TOKEN,..." lines and one
"@@QPML swapio-end ..." line per dump; this module reads them back and
runs two estimators over them, window by window (docs/estimators.md):

- Geiger (Jones et al., ASPLOS 2006), adapted: a write of swap slot s is
  the eviction of the page whose contents now live at s; evicted slots go
  on an LRU ghost list; a read of a slot on the list is a refault, at the
  reuse distance d = the number of slots evicted more recently (its
  position on the list), and the slot leaves the list (its page is in
  memory again).  The histogram of d is the miss curve above the current
  allocation: with g more pages, the refaults at d < g would have been
  hits.  A read of a slot that was read before with no write since is an
  eviction the trace cannot show (a clean page dropped from the swap
  cache): Geiger infers it when the page's frame is reused for other
  I/O, which the block layer does not show either; such refaults are
  counted apart, as misses at any size.
- A hypervisor exclusive cache (Lu and Shen, USENIX ATC 2007): a cache
  outside the domU holding exactly the pages the domU evicted.  Here the
  swap backend's RAM disk is that cache's store: a write puts a page in
  (on top of an LRU stack), a read hands it back and drops the cache's
  entry (exclusive); a read that finds no entry is a miss to storage.
  Mattson's stack distances of the hits give the miss curve for every
  cache size at once.

Both estimates are allocation + the smallest extra size whose misses are
at most THRESHOLD of the refaults it can place (Geiger: reads of slots on
its ghost list; the cache: its hits); the others (unplaced: reads more
memory would not have turned into hits as far as the technique can tell)
are reported beside the estimate, not folded into it.  A window without
such reads gives the allocation itself: neither technique can tell that a
domU needs less memory than it has.
"""
import re

THRESHOLD = 0.01   # misses allowed at the estimate, as a share of the window's reads

SWAPIO = re.compile(r"@@QPML swapio part=(\d+) n=(\d+) ev=(\S*)")
SWAPIO_END = re.compile(r"@@QPML swapio-end (.*)")
TOKEN = re.compile(r"([WRDO])([0-9a-f]+)(?:\+(\d+))?$")
CUT = re.compile(r"\|(\w+)\.(\d+)$")


def parse(text):
    """The trace in console order: a list of ("cut", est, w) and
    (kind, first slot, pages) with kind W (swap-out), R (swap-in), D
    (discard), O (other); and the dumps' end records (dicts).  Raises
    ValueError for a line that does not parse or a dump with a part
    missing: a lost stretch of the trace would shift reuse distances."""
    events, ends, part = [], [], 0
    for line in text:
        m = SWAPIO.search(line)
        if m:
            if int(m.group(1)) != part + 1:
                raise ValueError("swapio part %s after part %d" % (m.group(1), part))
            part += 1
            toks = [t for t in m.group(3).split(",") if t]
            if len(toks) != int(m.group(2)):
                raise ValueError("swapio part %d: %d tokens, line says %s"
                                 % (part, len(toks), m.group(2)))
            for t in toks:
                c = CUT.match(t)
                if c:
                    events.append(("cut", c.group(1), int(c.group(2))))
                    continue
                k = TOKEN.match(t)
                if not k:
                    raise ValueError("swapio part %d: bad token %r" % (part, t))
                events.append((k.group(1), int(k.group(2), 16), int(k.group(3) or 1)))
            continue
        m = SWAPIO_END.search(line)
        if m:
            f = dict(kv.split("=", 1) for kv in m.group(1).split() if "=" in kv)
            if int(f.get("parts", -1)) != part:
                raise ValueError("swapio dump: %d parts seen, its end says %s"
                                 % (part, f.get("parts")))
            ends.append(f)
            part = 0
    if part:
        raise ValueError("swapio dump without its end line (%d parts)" % part)
    return events, ends


class LRU:
    """An LRU stack of slots with the depth of any slot (0: most recent).
    Each slot has the stamp of its last push; its depth is the number of
    live stamps above it, counted with a Fenwick tree over the stamps, so
    a lookup is O(log n): at 400 MiB below the working set a run reads
    1.4 million slots from a stack of tens of thousands, which a linear
    count took hours over."""

    def __init__(self):
        self.order = {}      # slot -> stamp of its last push
        self.stamp = 0
        self.cap = 1 << 16
        self.tree = [0] * (self.cap + 1)

    def _add(self, i, v):
        while i <= self.cap:
            self.tree[i] += v
            i += i & -i

    def _count_upto(self, i):
        n = 0
        while i > 0:
            n += self.tree[i]
            i -= i & -i
        return n

    def push(self, s):
        old = self.order.get(s)
        if old is not None:
            self._add(old, -1)
        self.stamp += 1
        if self.stamp > self.cap:
            self.cap *= 2
            self.tree = [0] * (self.cap + 1)
            for t in self.order.values():
                if t != old:
                    self._add(t, 1)
        self.order[s] = self.stamp
        self._add(self.stamp, 1)

    def depth(self, s):
        t = self.order.get(s)
        if t is None:
            return None
        return len(self.order) - self._count_upto(t)

    def pop(self, s):
        t = self.order.pop(s, None)
        if t is not None:
            self._add(t, -1)

    def __len__(self):
        return len(self.order)


def _estimate(hist, allocation, threshold):
    """(allocation + g, g) for the smallest g with (refaults at distance
    >= g) <= threshold * (the refaults in hist)."""
    left = sum(hist.values())             # misses with g = 0
    allowed = threshold * left
    if left <= allowed:
        return allocation, 0
    for d in sorted(hist):
        # With g = d + 1 every refault at distance d is a hit.
        left -= hist[d]
        if left <= allowed:
            return allocation + d + 1, d + 1
    raise AssertionError("no size leaves at most all of the refaults")


def run(events, allocation, threshold=THRESHOLD):
    """Both estimators over the whole trace (their state carries across
    windows); per window (est, w) the counts and the estimates, in pages."""
    ghost, cache = LRU(), LRU()
    resident_read = set()   # slots read back with no write since
    gen = {}                # slot -> writes so far: (slot, gen) names one page's contents
    rows = {}

    def fresh():
        # pages_in: the distinct pages swapped in (a page read back, dropped
        # clean and read again in the same window is one page touched).
        return {"swapout": 0, "swapin": 0, "pages_in": set(), "discard": 0, "other": 0,
                "g_hist": {}, "g_unknown": 0, "g_cold": 0,
                "c_hist": {}, "c_miss": 0}

    cur = fresh()
    for ev in events:
        if ev[0] == "cut":
            if ev[2] >= 1:
                rows[(ev[1], ev[2])] = cur
            cur = fresh()
            continue
        kind, first, n = ev
        for s in range(first, first + n):
            if kind == "W":
                cur["swapout"] += 1
                gen[s] = gen.get(s, 0) + 1
                ghost.push(s)
                cache.push(s)
                resident_read.discard(s)
            elif kind == "R":
                cur["swapin"] += 1
                cur["pages_in"].add((s, gen.get(s, 0)))
                d = ghost.depth(s)
                if d is not None:
                    cur["g_hist"][d] = cur["g_hist"].get(d, 0) + 1
                    ghost.pop(s)
                elif s in resident_read:
                    cur["g_unknown"] += 1   # evicted clean: no write to show it
                else:
                    cur["g_cold"] += 1      # never written while recorded
                resident_read.add(s)
                d = cache.depth(s)
                if d is not None:
                    cur["c_hist"][d] = cur["c_hist"].get(d, 0) + 1
                    cache.pop(s)
                else:
                    cur["c_miss"] += 1
            elif kind == "D":
                cur["discard"] += 1
                ghost.pop(s)
                cache.pop(s)
                resident_read.discard(s)
            else:
                cur["other"] += 1
    for r in rows.values():
        r["swapin_pages"] = len(r.pop("pages_in"))
        # Refaults a technique cannot place (Geiger: clean evictions, slots
        # written before the trace began; the cache: pages it never held)
        # stay beside the estimate: g_unknown, g_cold, c_miss.
        r["geiger"], r["geiger_extra"] = _estimate(r["g_hist"], allocation, threshold)
        r["excl"], r["excl_extra"] = _estimate(r["c_hist"], allocation, threshold)
    return rows
