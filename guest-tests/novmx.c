/*
 * A CPU model without VMX (CPUID.1:ECX.VMX = 0) must behave as the SDM says
 * for a processor that does not support VMX:
 *  - CR4.VMXE is reserved: setting it raises #GP(0) (SDM Vol. 3A 2.5);
 *  - the IA32_VMX_* capability MSRs do not exist: RDMSR raises #GP(0);
 *  - VMXON with CR4.VMXE = 0 raises #UD (SDM Vol. 3C 31.3, VMXON).
 * Run with a -cpu whose vmx flag is off.
 */
#include "libtest.h"

void test_main(void)
{
	struct cpuid_regs r = cpuid(1);
	u64 v, vmxon_region = 0;
	u32 msr;

	if (!report(!(r.c & CPUID_1_ECX_VMX), "CPUID.1:ECX.VMX is clear"))
		test_abort("this test needs a CPU model without VMX");

	report(write_cr4_safe(read_cr4() | CR4_VMXE) == GP_VECTOR &&
	       ex_last.error_code == 0, "setting CR4.VMXE raises #GP(0)");
	report(!(read_cr4() & CR4_VMXE), "CR4.VMXE stays clear");

	for (msr = MSR_IA32_VMX_BASIC; msr <= 0x491; msr++) {
		int vec = rdmsr_safe(msr, &v);
		report(vec == GP_VECTOR, "rdmsr %#x (IA32_VMX_*) raises #GP (got %d)", msr, vec);
	}

	ex_clear();
	asm volatile("1: vmxon %0\n2:\n\t" EX_FIXUP("1b", "2b")
		     :: "m"(vmxon_region) : "memory", "cc");
	report(ex_last.vector == UD_VECTOR, "vmxon with CR4.VMXE=0 raises #UD (got %d)",
	       ex_last.vector);
}
