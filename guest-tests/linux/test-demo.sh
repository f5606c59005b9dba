#!/bin/bash
# TAP: the main job (README's first command) works: Debian's kernel boots on
# the fork with -smp 2, the guest and QMP agree, and the VMX status is stated.
# Usage: test-demo.sh QEMU IMAGE_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../lib/tap.sh"

out=$("$HERE/demo.py" --qemu "$1" --image-dir "$2" --timeout 120 2>&1); rc=$?
echo "$out" | sed 's/^/# /'
ok $rc "demo.py exits 0"
echo "$out" | grep -Eq '^  kernel +[0-9]+\.[0-9]+\.[0-9]+-'; ok $? "the guest kernel reported its version"
echo "$out" | grep -Eq '^  cpus +2$'; ok $? "the guest sees 2 CPUs"
echo "$out" | grep -Eq '^  vCPUs +2 '; ok $? "QMP reports 2 vCPUs"
echo "$out" | grep -Eq '^  model-id +Intel Xeon Processor \(Skylake\)$'; ok $? "QMP reports the Skylake-Server model-id"
echo "$out" | grep -Eq 'VMX controls the model defines .*: [1-9][0-9]* of'; ok $? "QMP lists the model's VMX controls"
echo "$out" | grep -Eq 'vmx-pml' ; ok $? "the model's VMX controls include vmx-pml"
if echo "$out" | grep -q 'CPUID.1:ECX.VMX off'; then
	echo "$out" | grep -q '^VMX not available in this build'; ok $? "VMX off: the demo says VMX is not available"
else
	echo "$out" | grep -Eq '^  vmx flag +yes$'; ok $? "VMX on: the guest kernel sees the vmx flag"
	kvm=$(echo "$out" | grep -E '^  kvm_intel +')
	echo "$kvm" | grep -Eq '^  kvm_intel +loaded'; ok $? "Linux loads kvm_intel on the emulated CPU"
	for p in ept unrestricted_guest vpid pml flexpriority; do
		echo "$kvm" | grep -Eq " $p=Y( |\$)"; ok $? "kvm_intel reports $p enabled"
	done
	# kvm-smoke: KVM's own guest, in real mode and then 32-bit protected mode.
	echo "$out" | grep -Eq '^    real-out1 +port=0x10 value=0x1234$'
	ok $? "a KVM guest in real mode (unrestricted guest): its OUT reaches the VMM"
	echo "$out" | grep -Eq '^    real-mem +0x5678$'
	ok $? "... its store through EPT lands in the VMM's memory"
	echo "$out" | grep -Eq '^    prot-out1 +port=0x11 value=0x[0-9a-f]*14$'
	ok $? "... in protected mode it reads KVM's local APIC version register"
	echo "$out" | grep -Eq '^    done +ok$'
	ok $? "... and the VMM ran to the end"
fi
echo "$out" | grep -q '^guest and QMP views agree$'; ok $? "guest and QMP views agree"
echo "1..$n"
[ $failed = 0 ]
