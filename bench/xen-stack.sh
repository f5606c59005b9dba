#!/bin/bash
# Wall time of the nested Xen stack on this machine: QEMU start to the
# domU's /init ("domU shell") and to the end of the demo (boot, workload,
# live migration, save/restore), for RUNS runs on the emulated VMX CPU
# and, in the same invocation, one run of the same stack on TCG's AMD SVM
# (qemu64,+svm,+npt: no PML, Xen's log-dirty write-protects instead).
#   bench/xen-stack.sh [RUNS]        (after ./qpml build; default 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${QEMU_PML_BUILD:-$PWD/_build}
runs=${1:-3}
# The same image as ./qpml builds (with xen-epml), so the two never undo each other.
guest-tests/xen/build-image.sh "$B/ours/guest-tests/xen/wss-touch" "$B/xen" "$B/ours/xen-pml/tools/xen-epml"

# one CPU [ARGS]: "<domU up s> <demo end s> <PML entries> <PASS|FAIL>"
one() {
	local out
	out=$(guest-tests/xen/xen-demo.py --qemu "$B/qemu-system-x86_64" --image-dir "$B/xen" \
		--cpu "$1" 2>&1) || true
	local line up end verdict pml
	line=$(echo "$out" | sed -n 's/^xen-demo: \([A-Z]*\) in \([0-9.]*\) s (domU up at \([0-9.a-z]*\)\( s\)\{0,1\}).*/\3 \2 \1/p')
	read -r up end verdict <<<"${line:-- - FAIL}"
	pml=$(echo "$out" | sed -n 's/^  total: \([0-9]*\) entries.*/\1/p')
	[ "$verdict" = PASS ] || verdict="FAIL: $(echo "$out" | grep -m1 -E '@@QPML fail|xen-demo: FAIL' | sed 's/^.*@@QPML //')"
	echo "$up $end ${pml:--} $verdict"
}

echo "bench: nested Xen 4.17 + dom0 + PVH domU (configs/xen/stack.json), $(nproc) host cores, load $(cut -d' ' -f1 /proc/loadavg)"
printf 'bench: %-22s %4s  %10s  %10s  %11s  %s\n' cpu run "domU up s" "demo end s" "PML entries" checks
for i in $(seq 1 "$runs"); do
	read -r up end pml verdict <<<"$(one 'Skylake-Server,+vmx')"
	printf 'bench: %-22s %4d  %10s  %10s  %11s  %s\n' "Skylake-Server,+vmx" "$i" "$up" "$end" "$pml" "$verdict"
done
read -r up end pml verdict <<<"$(one 'qemu64,+svm,+npt')"
printf 'bench: %-22s %4d  %10s  %10s  %11s  %s\n' "qemu64,+svm,+npt" 1 "$up" "$end" "$pml" "$verdict (PML checks do not apply)"
