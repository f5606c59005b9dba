#!/bin/bash
# TAP: xen-pml's hypervisor (xen-pml/build.sh: Debian's Xen 4.17 source plus
# xen-pml/patches) on the emulated VMX CPU, booted to dom0's toolstack
# (xen-demo.py --hypervisor xen-pml --steps info), twice:
#  - -cpu Skylake-Server,+vmx,epml=on: patch 0001 detects extended PML and
#    prints what IA32_VMX_EPML_CAP reports (qemu-pml: 2 MiB buffers, reads,
#    walk filter, EPT-entry, notify, drop: vmx_epml_cap() in
#    target-i386-pml/vmx-epml.c);
#  - -cpu Skylake-Server,+vmx (no extended PML: its MSRs #GP): no such line,
#    and Xen still reports VMX, HAP, EPT and PML.
# Both times the banner must be xen-pml's.  First, without QEMU: an unknown
# "hypervisor" in the config is refused, and --hypervisor xen-pml without
# a build says which script builds it.
# Every other line is a "# " diagnostic (xen-demo's report; on failure the
# console tails).
# Usage: test-xen-pml.sh QEMU IMAGE_DIR   (IMAGE_DIR: build-image.sh's dom0
# and kernel; the hypervisor is $QEMU_PML_BUILD/xen-pml/xen)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
QEMU=$1
IMAGES=$2
EXPECT='VMX: extended PML (qemu-pml): max buffer 2048 KiB, reads, walk filter, EPT-entry, notify, drop'
. "$HERE/../lib/tap.sh"

# The consoles are kept when something failed.
tmp=$(mktemp -d -t qpml-xen-pml-XXXXXX)
trap '[ $failed = 0 ] && rm -rf "$tmp" || echo "# consoles kept: $tmp/*.log"' EXIT

# The switch: an unknown hypervisor is refused, a missing xen-pml image
# names its builder, before QEMU runs.
python3 -c "import json; c = json.load(open('$HERE/../../configs/xen/stack.json')); c['hypervisor'] = 'xen'; json.dump(c, open('$tmp/c.json', 'w'))"
msg=$("$HERE/xen-demo.py" --qemu /nonexistent --image-dir "$IMAGES" --config "$tmp/c.json" 2>&1)
[ $? = 2 ] && echo "$msg" | grep -q "'hypervisor' must be one of debian, xen-pml"
ok $? "a config with an unknown hypervisor is refused"
msg=$(QEMU_PML_BUILD=$tmp/none "$HERE/xen-demo.py" --qemu /nonexistent --image-dir "$IMAGES" --hypervisor xen-pml 2>&1)
[ $? = 2 ] && echo "$msg" | grep -q "missing $tmp/none/xen-pml/xen (run xen-pml/build.sh)"
ok $? "--hypervisor xen-pml without a build says to run xen-pml/build.sh"

# boot NAME CPU [XEN-DEMO ARGS]: boot xen-pml's Xen (to dom0's toolstack
# unless the arguments say other steps); forward xen-demo's checks; leave
# the console in $tmp/NAME.log.
boot() {
	local out rc name=$1 cpu=$2
	shift 2
	out=$("$HERE/xen-demo.py" --qemu "$QEMU" --image-dir "$IMAGES" --hypervisor xen-pml \
		--cpu "$cpu" --steps info --timeout 300 --log "$tmp/$name.log" "$@" 2>&1)
	rc=$?
	tap_relay "$name: " "$out"
	[ $rc = 0 ]; ok $? "$name: xen-demo.py --hypervisor xen-pml exits 0 (rc=$rc)"
	# The console log has host time stamps: "[  12.34] (XEN) ...".
	# xen-pml/build.sh gives Debian's banner the version "<Debian's>+xen-pml".
	grep -q '^\[[ 0-9.]*\] (XEN) Xen version .*+xen-pml)' "$tmp/$name.log"
	ok $? "$name: the hypervisor that booted is xen-pml's (banner: $(sed -n 's/^\[[ 0-9.]*\] (XEN) Xen version [^ ]* (\([^)]*\)).*/\1/p' "$tmp/$name.log" | head -n1))"
	if grep -q 'Capabilities fatally differ' "$tmp/$name.log"; then
		ok 1 "$name: every CPU reports the same VMX capabilities"
	else
		ok 0 "$name: every CPU reports the same VMX capabilities"
	fi
}

boot epml "Skylake-Server,+vmx,epml=on"
got=$(sed -n 's/^\[[ 0-9.]*\] (XEN) \(VMX: extended PML.*\)$/\1/p' "$tmp/epml.log")
echo "# epml: Xen printed: ${got:-nothing}"
[ "$got" = "$EXPECT" ]
ok $? "epml: Xen detects extended PML with the emulator's capabilities ($EXPECT)"
[ "$(grep -c '^\[[ 0-9.]*\] (XEN) VMX: extended PML' "$tmp/epml.log")" = 1 ]
ok $? "epml: the detection line appears once (the boot CPU's probe)"

boot noepml "Skylake-Server,+vmx"
got=$(sed -n 's/^\[[ 0-9.]*\] (XEN) \(VMX: extended PML.*\)$/\1/p' "$tmp/noepml.log")
[ -z "$got" ]
ok $? "noepml: no extended-PML line without epml=on${got:+ (got: $got)}"
for pat in 'HVM: VMX enabled' 'HVM: Hardware Assisted Paging (HAP) detected' \
	' - Extended Page Tables (EPT)' ' - Page Modification Logging'; do
	grep -qF "(XEN) $pat" "$tmp/noepml.log"
	ok $? "noepml: Xen reports '${pat# - }'"
done
# Extended PML end to end, with Xen's default superpages: Xen enables it
# for a PVH domU (splitting its 2 MiB EPT leaves: patch 0004), xen-epml
# measures 3 windows of 2 s, each cut together with the emulator's
# working-set oracle while the domU is paused; xen-demo checks every window
# against the oracle (within 1%), no drops; then the tool's own view of
# enable/disable.  Then VMware-style sampling (patch 0003) over the same
# windows: each estimate within 4 standard errors of the oracle, every
# sampled page given its access back.
boot wss "Skylake-Server,+vmx,epml=on" --steps create,epml,sample,destroy --epml 2,3 --oracle
grep -q '(XEN) d1: extended PML on: reads writes walk-filtered' "$tmp/wss.log"
ok $? "wss: Xen turned extended PML on for the domU (reads, writes, walk filtered)"
split=$(sed -n 's/.*(XEN) d1: extended PML on: .*, \([0-9]*\) large EPT leaves split.*/\1/p' "$tmp/wss.log" | head -n1)
[ "${split:-0}" -gt 0 ]
ok $? "wss: with Xen's default superpages, enabling split the domU's large EPT leaves (${split:-none})"
grep -q 'entries [1-9][0-9]* (walk 0, large 0, out of range 0), dropped 0' "$tmp/wss.log"
ok $? "wss: the entries all name 4 KiB leaves, none from the page walk, none dropped"
grep -q '(XEN) d1: extended PML off (dom0.s request)' "$tmp/wss.log"
ok $? "wss: xen-epml disable turned it off"
grep -q 'xen-epml: info: extended PML is not enabled for domain 1' "$tmp/wss.log"
ok $? "wss: after disable, xen-epml info says clearly that it is not enabled"
grep -q 'sample-wss: all 1000 pages of the last sample have full access again' "$tmp/wss.log"
ok $? "wss: after sampling, every sampled page has full access again (re-armed and checked)"
# Stock log-dirty still works on xen-pml with extended PML on: xl migrate
# turns it off for the domain (Xen says why), migrates the domU with stock
# PML, then xl save/restore; xen-demo checks the memory verification.
boot logdirty "Skylake-Server,+vmx,epml=on" --steps create,epmlon,migrate,save,destroy --timeout 600 \
	--xen-args "hap_2mb=0 hap_1gb=0"
grep -q '(XEN) d1: extended PML on' "$tmp/logdirty.log"
ok $? "logdirty: extended PML was on for the domU before the migration"
grep -q '(XEN) d1: extended PML off (log-dirty)' "$tmp/logdirty.log"
ok $? "logdirty: xl migrate's log-dirty mode turned extended PML off (Xen's log line)"
# The ground truths (docs/ground-truth.md), on the path a provider would
# run: Xen's default superpages, windows cut by xen-epml without any host
# round trip (COLLECT_NEXT).  Every window's pages are scored against the
# plugin truth (every load, store and fetch, TCG plugin truth/wss-truth.c)
# and the guest-side truth (the workload's frames from pagemap): xen-demo
# requires recall and precision >= 99% and the count within 1%.
CI_TRUTH=$HERE/../../configs/xen/wss-truth-ci.json
boot truth "Skylake-Server,+vmx,epml=on" --config "$CI_TRUTH" --steps create,epml,destroy \
	--epml 2,3 --truth --truth-plugin --timeout 900
# Mutation runs: the same measurement with one link of the pipeline broken
# on purpose must fail, and a ground truth must be what says so.
# mutant NAME EXPECTED-FAILURE [ENV=VALUE...] -- XEN-DEMO ARGS
mutant() {
	local name=$1 want=$2 envs=() out rc
	shift 2
	while [ "$1" != -- ]; do envs+=("$1"); shift; done
	shift
	out=$(env "${envs[@]}" "$HERE/xen-demo.py" --qemu "$QEMU" --image-dir "$IMAGES" \
		--config "$CI_TRUTH" --steps create,epml,destroy --epml 2,3 --truth --timeout 900 \
		--log "$tmp/$name.log" "$@" 2>&1)
	rc=$?
	echo "$out" | grep -E '^ +[0-9]+ +[0-9]+ .*%' | sed "s/^/# $name: /"
	[ $rc != 0 ] && echo "$out" | grep -q "^not ok .*$want"
	ok $? "$name: the mutation is caught ('$want' fails; xen-demo rc=$rc)"
}
# A buffer's entries vanish (the emulator hands it over as empty): the
# guest-side truth misses workload pages.  A read-only workload, so that
# no later write logs a lost page again (and Xen's reset, which clears
# only logged pages, never clears it: it stays unlogged in every window).
mutant mut-drop "of the workload's pages in every window" QPML_MUTATE=drop-buffer -- \
	--workload "--seed 42 --loops 0 r:32M:seq:1x"
# Xen clears only the accessed flags between windows: the plugin truth's
# written pages are no longer logged as written.
mutant mut-nodirty "written pages include" -- --truth-plugin --xen-args epml_mutate=no-dirty-reset
grep -q 'EPML: MUTATION RUN: epml_mutate=no-dirty-reset' "$tmp/mut-nodirty.log"
ok $? "mut-nodirty: Xen announced the mutation"
# The page-walk filter is ignored: page-table pages only the walk touched
# are logged, and the plugin truth (which sees no walk) counts them extra.
mutant mut-nowalk "precision >= 99.9%" QPML_MUTATE=no-walk-filter -- --truth-plugin
# Xen forgets the EPT flush after resetting the A/D flags.  Only visible
# with the emulator's guest-physical mapping cache (x-ept-gpa-cache=on,
# docs/vmx.md), which keeps translations until INVEPT as hardware does, and
# a working set that fits in it (512 pages): half the pages go unlogged.
mutant mut-nosync "recall >= 99%" -- --truth-plugin --xen-args epml_mutate=no-sync \
	--cpu "Skylake-Server,+vmx,epml=on,x-ept-gpa-cache=on" --workload "--seed 42 --loops 0 rw50:2M:seq:1x"
grep -q 'EPML: MUTATION RUN: epml_mutate=no-sync' "$tmp/mut-nosync.log"
ok $? "mut-nosync: Xen announced the mutation"
# INVEPT invalidates nothing (the emulator's mutation): with the same
# cache, the stale guest-physical mappings keep the flags Xen reset from
# being set again, and half the pages go unlogged.
mutant mut-invept "recall >= 99%" QPML_MUTATE=invept-noop -- --truth-plugin \
	--cpu "Skylake-Server,+vmx,epml=on,x-ept-gpa-cache=on" --workload "--seed 42 --loops 0 rw50:2M:seq:1x"
echo "1..$n"
