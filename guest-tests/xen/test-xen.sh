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
REPO=$(cd "$HERE/../.." && pwd)
IMAGES=$2
. "$HERE/../lib/tap.sh"

# A malformed configuration is refused with a clear message, before QEMU runs.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bad_config() { # NAME PYTHON-EDIT EXPECTED-MESSAGE
	python3 -c "import json,sys; c=json.load(open('$REPO/configs/xen/stack.json')); $2; json.dump(c, open('$tmp/c.json','w'))"
	msg=$("$HERE/xen-demo.py" --qemu /nonexistent --image-dir "$IMAGES" --config "$tmp/c.json" 2>&1)
	[ $? = 2 ] && echo "$msg" | grep -q "$3"
	ok $? "a config with $1 is refused: $3"
}
bad_config "no cpu" "del c['cpu']" "missing key 'cpu'"
bad_config "smp as a string" "c['smp']='2'" "'smp' must be a int"
bad_config "smp 0" "c['smp']=0" "'smp' must be between"
bad_config "an unknown key" "c['cpus']=2" "unknown key 'cpus'"
bad_config "a workload with a comma" "c['workload']='w:1M,r:1M'" "has a space, comma or quote"
bad_config "an unknown dom0 mode" "c['dom0']='hvm'" "'dom0' must be one of pv, pvh"
bad_config "an unknown IOMMU" "c['iommu']='amd'" "'iommu' must be one of none, off, vtd"
echo '{ "cpu": ' > "$tmp/c.json"
"$HERE/xen-demo.py" --qemu /nonexistent --image-dir "$IMAGES" --config "$tmp/c.json" 2>&1 | grep -q 'cannot read config'
ok $? "a config that is not JSON is refused"

out=$("$HERE/xen-demo.py" --qemu "$1" --image-dir "$2" 2>&1)
rc=$?
tap_relay "" "$out"
[ $rc = 0 ]; ok $? "xen-demo.py exits 0 (rc=$rc)"
echo "1..$n"
