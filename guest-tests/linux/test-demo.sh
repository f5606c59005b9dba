#!/bin/bash
# TAP: the main job (README's first command) works: Debian's kernel boots on
# the fork with -smp 2, the guest and QMP agree, and the VMX status is stated;
# kvm_intel loads and runs a KVM guest on the demo's model and on -cpu max.
# Usage: test-demo.sh QEMU IMAGE_DIR
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
. "$(dirname "$0")/../lib/tap.sh"

# The KVM part: kvm_intel loads with the controls Linux wants and runs its
# own guest.  $1: the demo's output, $2: a prefix for the descriptions.
check_kvm() {
	local out=$1 p=$2 kvm
	echo "$out" | grep -Eq '^  vmx flag +yes$'; ok $? "${p}VMX on: the guest kernel sees the vmx flag"
	kvm=$(echo "$out" | grep -E '^  kvm_intel +')
	echo "$kvm" | grep -Eq '^  kvm_intel +loaded'; ok $? "${p}Linux loads kvm_intel on the emulated CPU"
	for f in ept unrestricted_guest vpid pml flexpriority enable_apicv enable_shadow_vmcs; do
		echo "$kvm" | grep -Eq " $f=Y( |\$)"; ok $? "${p}kvm_intel reports $f enabled"
	done
	# kvm-smoke: KVM's own guest, in real mode and then 32-bit protected mode.
	echo "$out" | grep -Eq '^    real-out1 +port=0x10 value=0x1234$'
	ok $? "${p}a KVM guest in real mode (unrestricted guest): its OUT reaches the VMM"
	echo "$out" | grep -Eq '^    real-mem +0x5678$'
	ok $? "${p}... its store through EPT lands in the VMM's memory"
	echo "$out" | grep -Eq '^    prot-out1 +port=0x11 value=0x[0-9a-f]*14$'
	ok $? "${p}... in protected mode it reads KVM's local APIC version register"
	echo "$out" | grep -Eq '^    irq-out1 +port=0x11 value=0x5$'
	ok $? "${p}... five MSIs signalled one at a time while it spins each reach its handler exactly once (5)"
	echo "$out" | grep -Eq '^  posted-interrupt notifications processed in non-root operation .*: [1-9][0-9]*$'
	ok $? "${p}... as a posted interrupt: KVM's notification processed in non-root operation"
	echo "$out" | grep -Eq '^    done +ok$'
	ok $? "${p}... and the VMM ran to the end"
	echo "$out" | grep -q '^guest and QMP views agree$'; ok $? "${p}guest and QMP views agree"
}

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
	echo "$out" | grep -q '^guest and QMP views agree$'; ok $? "guest and QMP views agree"
else
	check_kvm "$out" ""
	# -cpu max: TCG's "max" says GenuineIntel once it has VMX (patch 0035);
	# as AuthenticAMD, Linux never read IA32_FEATURE_CONTROL and refused
	# kvm_intel ("disabled by bios").
	out=$("$HERE/demo.py" --qemu "$1" --image-dir "$2" --cpu max --timeout 120 2>&1); rc=$?
	echo "$out" | sed 's/^/# max: /'
	ok $rc "-cpu max: demo.py exits 0"
	check_kvm "$out" "-cpu max: "
	# The same checks must be able to fail: without virtual-interrupt
	# delivery and VMCS shadowing KVM turns enable_apicv and
	# enable_shadow_vmcs off (and still runs its guest).
	off="Skylake-Server,+vmx,-vmx-apicv-vid,-vmx-shadow-vmcs"
	out=$("$HERE/demo.py" --qemu "$1" --image-dir "$2" --cpu "$off" --timeout 120 2>&1); rc=$?
	echo "$out" | sed 's/^/# off: /'
	ok $rc "-cpu $off: demo.py exits 0"
	kvm=$(echo "$out" | grep -E '^  kvm_intel +')
	for f in enable_apicv enable_shadow_vmcs; do
		echo "$kvm" | grep -Eq " $f=N( |\$)"; ok $? "-cpu $off: kvm_intel reports $f=N"
	done
	echo "$out" | grep -Eq '^    irq-out1 +port=0x11 value=0x5$'
	ok $? "-cpu $off: the MSIs still reach KVM's guest once each (injected by KVM)"
	echo "$out" | grep -Eq '^  posted-interrupt notifications processed in non-root operation .*: 0$'
	ok $? "-cpu $off: ... and no posted-interrupt notification was processed"
	echo "$out" | grep -Eq '^    done +ok$'; ok $? "-cpu $off: KVM's guest still runs"
fi
echo "1..$n"
[ $failed = 0 ]
