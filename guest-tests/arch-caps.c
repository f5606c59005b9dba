/*
 * IA32_ARCH_CAPABILITIES (MSR 10AH; SDM Vol. 4, Table 2-2) under TCG
 * (target-i386-pml/vmx-msr.c): it exists when CPUID.(EAX=7,ECX=0):EDX[29]
 * does, is read-only (WRMSR: #GP(0)), and reports only the model's "not
 * affected" bits: TCG executes nothing speculatively, so RDCL_NO and its
 * kind are true of it, while IBRS_ALL and the other bits that promise a
 * mechanism read 0.  tests.list: "caps" when the model was given
 * +arch-capabilities,+rdctl-no,+mds-no,+ibrs-all, "nocaps" without it.
 */
#include "libtest.h"

#define MSR_ARCH_CAPS	0x10a
#define RDCL_NO		(1ull << 0)
#define IBRS_ALL	(1ull << 1)
#define MDS_NO		(1ull << 5)

void test_main(void)
{
	bool has = cpuid_count(7, 0).d & (1u << 29);
	u64 v = ~0ull;
	int vec;

	if (test_has_arg("nocaps")) {
		report(!has, "CPUID.7.0:EDX[29] (ARCH_CAPABILITIES) is 0 on this model");
		return;
	}
	report(has, "CPUID.7.0:EDX[29] (ARCH_CAPABILITIES) is 1");
	vec = rdmsr_safe(MSR_ARCH_CAPS, &v);
	report(vec == NO_EXCEPTION, "RDMSR 10AH reads (vector %d)", vec);
	report(v == (RDCL_NO | MDS_NO), "it reports RDCL_NO and MDS_NO, not IBRS_ALL (%#llx)",
	       (unsigned long long)v);
	vec = wrmsr_safe(MSR_ARCH_CAPS, v);
	report(vec == GP_VECTOR, "WRMSR 10AH raises #GP (vector %d)", vec);
}
