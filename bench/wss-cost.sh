#!/bin/bash
# The domU's cost of each working-set estimator, measured in one run: the
# research's constant workload (configs/xen/wss-constant.json: 102,400
# pages read and half written per pass) runs through a baseline stretch
# with no estimator, extended PML through Xen (xen-epml wss), stock PML
# through log-dirty (xen-epml pml-wss), VMware-style sampling of 1,000
# pages a window (xen-epml sample-wss), and a second baseline; each stretch
# is WINDOWS windows of 5 s.  The figure is the mean pass time of the
# domU's workload in each stretch against the baselines' (xen-demo.py
# prints the table).  Target: extended PML at most 5% slower.
#   bench/wss-cost.sh [WINDOWS]    (after ./qpml build and xen-pml/build.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${QEMU_PML_BUILD:-$PWD/_build}
windows=${1:-6}
guest-tests/xen/build-image.sh "$B/ours/guest-tests/xen/wss-touch" "$B/xen" "$B/ours/xen-pml/tools/xen-epml"
echo "bench: wss cost, $(nproc) host cores, load $(cut -d' ' -f1 /proc/loadavg)"
out=$(guest-tests/xen/xen-demo.py --qemu "$B/qemu-system-x86_64" --image-dir "$B/xen" \
	--config configs/xen/wss-constant.json --steps create,baseline,epml,pmlwss,sample,baseline,destroy \
	--epml "5,$windows" 2>&1) || { echo "$out" | tail -n 30; echo "bench: the run failed"; exit 1; }
echo "$out" | sed -n '/^Cost to the domU/,/^$/p'
echo "$out" | grep -E '^xen-demo: (PASS|FAIL)'
