# dom0's trace of the domU's swap device (tracefs, docs/estimators.md) in
# the compact form guest-tests/xen/swapest.py reads:
#   @@QPML swapio part=I n=K ev=TOKEN,...     (100 tokens a line)
#   @@QPML swapio-end parts=P events=E cuts=C unaligned=U
# TOKEN: W<slot>[+<pages>] (a write: swap-out), R... (a read: swap-in),
# D... (a discard), O... (anything else with data), slots in hex (4 KiB,
# the swap area starts at sector 0); |<est>.<w>: xen-epml's boundary
# (its --io-marker line "qpml-cut est=E w=N").  Input: trace_pipe lines,
#   <task>-<pid> [cpu] flags time: block_bio_queue: 1,0 WS 2048 + 8 [comm]
#   <task>-<pid> [cpu] flags time: tracing_mark_write: qpml-cut est=epml w=1
function tok(t) {
	buf = buf (k ? "," : "") t
	k++
	events++
	if (k == 100)
		flush()
}
function flush() {
	if (!k)
		return
	parts++
	print "@@QPML swapio part=" parts " n=" k " ev=" buf
	fflush()                     # whole lines: dom0's console has other writers
	buf = ""
	k = 0
}
/tracing_mark_write: qpml-cut / {
	e = ""; w = ""
	for (i = 1; i <= NF; i++) {
		if ($i ~ /^est=/) e = substr($i, 5)
		if ($i ~ /^w=/) w = substr($i, 3)
	}
	cuts++
	tok("|" e "." w)
	events--
	next
}
/ block_bio_queue: / {
	for (i = 1; i <= NF; i++)
		if ($i == "block_bio_queue:")
			break
	rw = $(i + 2); sec = $(i + 3); n = $(i + 5)
	if (n == 0)
		next                 # a flush: no data
	if (sec % 8 || n % 8)
		unaligned++
	kind = rw ~ /D/ ? "D" : rw ~ /W/ ? "W" : rw ~ /R/ ? "R" : "O"
	pages = int((n + 7) / 8)
	tok(sprintf("%s%x", kind, int(sec / 8)) (pages > 1 ? "+" pages : ""))
}
END {
	flush()
	print "@@QPML swapio-end parts=" parts + 0 " events=" events + 0 " cuts=" cuts + 0 " unaligned=" unaligned + 0
}
