#!/bin/bash
# TAP: a domU that swaps (issue 16, docs/estimators.md), on xen-pml's Xen
# with extended PML: a 96 MiB PVH domU (48 MiB usable, 14 MiB free) runs
# wss-touch over a 15 MiB region, half its pages written at random and all
# verified every pass: a little more than the domU can keep (14 MiB fits
# once its other pages are swapped out, 15 MiB in sequential order
# thrashes at 20-140 s a pass), so it swaps to xvdb, a Xen virtual disk
# whose backend is a RAM disk in dom0.  dom0 traces the disk's traffic,
# cut at xen-epml's window boundaries (two of 30 s); xen-demo checks that
# the workload's memory verifies, that the trace is whole, that Geiger's
# and the exclusive cache's estimates exist for every window, and that
# the oracle counts swapped-in pages (frames touched + pages swapped in
# reach the region's pages in every window that holds a whole pass).
# First, without QEMU: bad --swap values are refused.
# Usage: test-xen-swap.sh QEMU IMAGE_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
QEMU=$1
IMAGES=$2
. "$HERE/../lib/tap.sh"

tmp=$(mktemp -d -t qpml-xen-swap-XXXXXX)
trap '[ $failed = 0 ] && rm -rf "$tmp" || echo "# console kept: $tmp/swap.log"' EXIT

# refused WHAT ARGS... -- MESSAGE: xen-demo exits 2 with MESSAGE, before QEMU.
refused() {
	local what=$1 args=() msg out
	shift
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	msg=$2
	out=$("$HERE/xen-demo.py" --qemu /nonexistent --image-dir "$IMAGES" "${args[@]}" 2>&1)
	[ $? = 2 ] && echo "$out" | grep -qF -- "$msg"
	ok $? "$what is refused: $msg"
}
refused "--swap 0" --swap 0 -- "--swap wants the swap disk's size in MiB, 1..4096 (got 0)"
refused "--swap without create" --swap 8 --steps info -- "--swap gives the domU its swap disk when it is created"
refused "--swap-threshold 1" --swap 8 --swap-threshold 1 -- "--swap-threshold wants a share in [0, 1) (got 1)"

WL="--seed 42 --loops 0 rw50:15M:rand:1x"
out=$("$HERE/xen-demo.py" --qemu "$QEMU" --image-dir "$IMAGES" --hypervisor xen-pml \
	--cpu Skylake-Server,+vmx,epml=on --steps create,epml,destroy --epml 30,2 --oracle \
	--swap 32 --domu-memory 96 --workload "$WL" --timeout 900 --log "$tmp/swap.log" 2>&1)
rc=$?
tap_relay "swap: " "$out"
[ $rc = 0 ]; ok $? "swap: xen-demo.py exits 0 (rc=$rc)"
grep -q '\[domU\] @@DOMU swap on: /dev/xvdb' "$tmp/swap.log"
ok $? "swap: the domU swaps on /dev/xvdb (blkfront)"
verified=$(grep -c '\[domU\] wss-touch: .*verify=ok' "$tmp/swap.log")
bad=$(grep -c 'verify=BAD' "$tmp/swap.log")
[ "$verified" -ge 3 ] && [ "$bad" = 0 ]
ok $? "swap: the workload verified its memory after every pass while swapping ($verified passes, $bad bad)"
# Committed_AS is read at the oracle's cuts of extended PML's windows, as
# without --swap (a version that asked for the page list lost it).
commit=$(echo "$out" | grep -cE '^  commit +[0-9]+ +[0-9]+')
[ "$commit" = 2 ]
ok $? "swap: Committed_AS has its figure in both of extended PML's windows ($commit rows)"
# The host answers each --sync cut with a newline on the console; dom0
# must not echo it back into the lines it relays (the echo broke a domU
# record in two in CI, and left an empty line at each cut).  Xen's own
# messages reach the serial line mid-way through dom0's lines too and end
# with their own newline: an empty line right after a line holding one
# ("... r=(XEN) d1: extended PML on ...") is Xen's doing, not an echo.
cuts=$(grep -c '@@QPML epml-cut' "$tmp/swap.log")
empty=$(awk '/^\[ *[0-9.]+\] $/ && prev !~ /\(XEN\) / { n++ } { prev = $0 } END { print n + 0 }' \
	"$tmp/swap.log")
[ "$cuts" -ge 3 ] && [ "$empty" = 0 ]
ok $? "swap: dom0 does not echo the host's answers to its $cuts cuts ($empty empty lines not after a Xen message)"
echo "1..$n"
[ $failed = 0 ]
