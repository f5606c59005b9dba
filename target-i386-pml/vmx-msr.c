/*
 * qemu-pml: the VMX capability MSRs (Intel SDM Vol. 3D, Appendix A).
 */
#include "qemu/osdep.h"
#include "cpu.h"
#include "tcg/helper-tcg.h"
#include "vmx.h"

static bool vmx_msr_index(uint32_t index)
{
    return index >= MSR_IA32_VMX_BASIC && index <= MSR_IA32_VMX_VMFUNC;
}

bool vmx_rdmsr(CPUX86State *env, uint32_t index, uint64_t *val, uintptr_t ra)
{
    if (!vmx_msr_index(index)) {
        return false;
    }
    /* A.1: the capability MSRs exist only if CPUID.1:ECX.VMX = 1. */
    if (!cpu_has_vmx(env)) {
        raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
    }
    /*
     * TCG does not enumerate VMX yet (issue #3): x86_cpu_filter_features
     * clears CPUID.1:ECX.VMX for every model, so this is not reached.
     * Keep upstream's behaviour rather than report half a capability.
     */
    return false;
}

bool vmx_wrmsr(CPUX86State *env, uint32_t index, uint64_t val, uintptr_t ra)
{
    if (!vmx_msr_index(index)) {
        return false;
    }
    /* The capability MSRs are read-only: WRMSR always raises #GP(0). */
    raise_exception_err_ra(env, EXCP0D_GPF, 0, ra);
}
