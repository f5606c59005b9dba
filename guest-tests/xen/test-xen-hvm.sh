#!/bin/bash
# TAP: an HVM domU (issue 20, configs/xen/hvm.cfg) on Debian's Xen 4.17:
# Xen's device model (bookworm's qemu-system-xen) runs in dom0, hvmloader
# and SeaBIOS boot Debian's kernel from the domU's disk (MBR, FAT,
# syslinux), the kernel switches to PV drivers (console hvc0, disk xvda);
# then the same steps as the PVH scenario: the workload runs and verifies
# its memory, live migration to localhost with stock PML (PML entries and
# PML-full exits during it, none before or after), xl save + xl restore
# (the device model's state goes with the domain), memory verified after
# each.  First, without QEMU: what an HVM domU cannot have is refused.
# Usage: test-xen-hvm.sh QEMU IMAGE_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
QEMU=$1
IMAGES=$2
. "$HERE/../lib/tap.sh"

tmp=$(mktemp -d -t qpml-xen-hvm-XXXXXX)
trap '[ $failed = 0 ] && rm -rf "$tmp" || echo "# console kept: $tmp/hvm.log"' EXIT

out=$("$HERE/xen-demo.py" --qemu /nonexistent --image-dir "$IMAGES" --domu hvm --swap 8 2>&1)
[ $? = 2 ] && echo "$out" | grep -qF -- "--swap and --run are for a PVH domU"
ok $? "an HVM domU with --swap is refused before QEMU runs"
out=$("$HERE/xen-demo.py" --qemu /nonexistent --image-dir "$IMAGES" --domu hvm/../pvh 2>&1)
[ $? = 2 ] && echo "$out" | grep -qF -- "bad domU name"
ok $? "a --domu that is not a config name is refused"

out=$("$HERE/xen-demo.py" --qemu "$QEMU" --image-dir "$IMAGES" --domu hvm \
	--steps info,create,migrate,save,destroy --timeout 1500 --log "$tmp/hvm.log" 2>&1)
rc=$?
tap_relay "hvm: " "$out"
[ $rc = 0 ]; ok $? "hvm: xen-demo.py exits 0 (rc=$rc)"
grep -q '(d[0-9]*) HVM Loader' "$tmp/hvm.log" && grep -q '(d[0-9]*) Booting from Hard Disk' "$tmp/hvm.log"
ok $? "hvm: hvmloader ran and SeaBIOS booted from the emulated hard disk"
grep -q '\[domU\] @@DOMU up .*type=HVM' "$tmp/hvm.log" && grep -q '\[domU\] .*console=hvc0' "$tmp/hvm.log"
ok $? "hvm: the domU's /init speaks on the PV console (hvc0, through xenconsoled)"
verified=$(grep -c '\[domU\] wss-touch: .*verify=ok' "$tmp/hvm.log")
bad=$(grep -c 'verify=BAD' "$tmp/hvm.log")
[ "$verified" -ge 9 ] && [ "$bad" = 0 ]
ok $? "hvm: the workload verified its memory through create, migration and restore ($verified passes, $bad bad)"
echo "1..$n"
[ $failed = 0 ]
