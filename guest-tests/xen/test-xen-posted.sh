#!/bin/bash
# TAP: extended PML's posted path (issue 15; docs/xen-pml.md, "dom0 drains
# the log").  xen-pml's Xen with a PVH dom0 (QEMU's intel-iommu), the
# module epml_dom0 in dom0, `xen-epml enable --dom0-drain`: the log buffers
# are dom0's, each full buffer's notification is posted to dom0's vCPU 0
# (the module's vector), xen-epml drains the buffers in dom0 and enters Xen
# once per window (the cut; with the oracle's pause, three calls).
# Checks, beside xen-demo's own (accuracy within 1% of the oracle in every
# window, no entry dropped, every hand-over one posted notification, no VM
# exit was a notification): the module took a vector, Xen armed dom0's
# buffers, dom0 drained buffers on notifications in every window, the
# estimator's hypervisor calls per window are the cut and the resumption
# of vCPUs Xen paused while both their buffers were full.
# Usage: test-xen-posted.sh QEMU IMAGE_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
QEMU=$1
IMAGES=$2
WINDOWS=4
. "$HERE/../lib/tap.sh"

tmp=$(mktemp -d -t qpml-xen-posted-XXXXXX)
trap '[ $failed = 0 ] && rm -rf "$tmp" || echo "# console kept: $tmp/posted.log"' EXIT

out=$("$HERE/xen-demo.py" --qemu "$QEMU" --image-dir "$IMAGES" --hypervisor xen-pml \
	--cpu Skylake-Server,+vmx,epml=on --dom0 pvh --steps info,create,epml,destroy \
	--epml 5,$WINDOWS --oracle --epml-enable "--dom0-drain --buf-kib 64" \
	--timeout 900 --log "$tmp/posted.log" 2>&1)
rc=$?
tap_relay "posted: " "$out"
[ $rc = 0 ]; ok $? "posted: xen-demo.py exits 0 (rc=$rc)"

# xen-demo's notification line: "(H hand-overs, N notifications of which P
# posted, E such exits)", over every vCPU of dom0 and the domU.
nl=$(echo "$out" | sed -n 's/.*(\([0-9]*\) hand-overs, \([0-9]*\) notifications of which \([0-9]*\) posted, \([0-9]*\) such exits).*/\1 \2 \3 \4/p' | head -n1)
set -- $nl
[ $# = 4 ] && [ "$1" -ge 1 ] && [ "$3" = "$1" ] && [ "$4" = 0 ]
ok $? "posted: every hand-over was posted and no VM exit, of the domU or of dom0, was a notification (${1:-?} hand-overs, ${3:-?} posted, ${4:-?} notification exits)"
grep -q '\[dom0\] epml_dom0: notification vector 0x[0-9a-f]* on CPU 0' "$tmp/posted.log"
ok $? "posted: dom0's module took a vector on CPU 0 ($(sed -n 's/.*\[dom0\] epml_dom0: \(notification vector [^ ]*\).*/\1/p' "$tmp/posted.log" | head -n1))"
grep -q "(XEN) d[0-9]*: extended PML on: .* dom0's buffers 64 KiB, notification posted to d0v0" "$tmp/posted.log"
ok $? "posted: Xen logs into dom0's buffers and posts to dom0's vCPU 0"

# @@QPML drain w=N buffers=B notifications=K xen-calls=C full-exits=F dropped=D ...
drain=$(sed -n 's/.*@@QPML drain \(w=.*\)/\1/p' "$tmp/posted.log")
echo "$drain" | sed 's/^/# /'
field() { echo "$drain" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
[ "$(echo "$drain" | grep -c '^w=')" = $WINDOWS ]
ok $? "posted: dom0 reports its drain for each of the $WINDOWS windows"
bad=0
for b in $(field buffers); do [ "$b" -ge 1 ] || bad=1; done
ok $bad "posted: dom0 drained handed-over buffers in every window ($(field buffers | tr '\n' ' '))"
notes=0
for k in $(field notifications); do notes=$((notes + k)); done
[ $notes -ge $WINDOWS ]
ok $? "posted: dom0's handler took the notifications ($notes over $WINDOWS windows)"
# Xen calls: pause, cut, unpause, and one RESUME for each time Xen paused
# a vCPU whose buffers were both full (none per buffer or notification).
bad=0
for l in $(echo "$drain" | sed -n 's/.* xen-calls=\([0-9]*\) .* resumes=\([0-9]*\) .*/\1:\2/p'); do
	[ "${l%%:*}" = $((3 + ${l##*:})) ] || bad=1
done
[ "$(echo "$drain" | grep -c 'resumes=')" = $WINDOWS ] || bad=1
ok $bad "posted: the estimator entered Xen 3 times a window (pause, cut, unpause) plus one RESUME per both-full wait, never per buffer (calls $(field xen-calls | tr '\n' ' '), resumes $(field resumes | tr '\n' ' '))"
bad=0
for d in $(field dropped); do [ "$d" = 0 ] || bad=1; done
ok $bad "posted: no entry dropped in dom0's count"
echo "1..$n"
[ $failed = 0 ]
