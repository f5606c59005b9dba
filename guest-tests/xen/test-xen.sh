#!/bin/bash
# TAP: the nested Xen stack on the emulated VMX CPU (issue #4's scenario):
# Xen 4.17 reports VMX, HAP (EPT) and PML; dom0's toolstack comes up; a PVH
# domU runs the wss-touch workload, is live-migrated to localhost (Xen's
# log-dirty on stock PML: query-pml-stats must count PML entries and
# PML-full exits then, and none before or after), saved and restored, and
# its memory verifies throughout.  Every other line is a "# " diagnostic
# (the demo's report; on failure the Xen, dom0 and domU console tails).
# Usage: test-xen.sh QEMU IMAGE_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
out=$("$HERE/xen-demo.py" --qemu "$1" --image-dir "$2" 2>&1)
rc=$?
echo "$out" | grep -Ev '^(not )?ok [0-9]+ - ' | sed 's/^/# /'
echo "$out" | grep -E '^(not )?ok [0-9]+ - '
n=$(echo "$out" | grep -cE '^(not )?ok [0-9]+ - ')
n=$((n + 1))
if [ $rc = 0 ]; then echo "ok $n - xen-demo.py exits 0"; else echo "not ok $n - xen-demo.py exits 0 (rc=$rc)"; fi
echo "1..$n"
