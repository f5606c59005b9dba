/* Unit tests: VMX capability MSR values (SDM Vol. 3D Appendix A). */
#include "tap.h"
#include "vmx-caps.h"

#define CR3_LOAD_STORE_EXITING  ((1u << 15) | (1u << 16))
#define HLT_EXITING     (1u << 7)
#define ENABLE_PML      (1u << 17)

int main(void)
{
    uint64_t m;

    ok(vmx_ctl_default1(VMX_CTL_PINBASED) == 0x16 &&
       vmx_ctl_default1(VMX_CTL_PROCBASED) == 0x0401e172 &&
       vmx_ctl_default1(VMX_CTL_EXIT) == 0x00036dff &&
       vmx_ctl_default1(VMX_CTL_ENTRY) == 0x000011ff &&
       vmx_ctl_default1(VMX_CTL_PROCBASED2) == 0, "default1 classes match A.3-A.5");

    m = vmx_ctl_msr(VMX_CTL_PROCBASED, HLT_EXITING | CR3_LOAD_STORE_EXITING, false);
    ok((uint32_t)m == 0x0401e172, "non-TRUE PROCBASED: every default1 bit must be 1");
    ok((m >> 32) == (0x0401e172 | HLT_EXITING), "non-TRUE PROCBASED: allowed-1 = default1 | optional");

    m = vmx_ctl_msr(VMX_CTL_PROCBASED, HLT_EXITING | CR3_LOAD_STORE_EXITING, true);
    ok((uint32_t)m == 0x04006172, "TRUE PROCBASED: CR3-load/store exiting may be 0");
    ok(vmx_ctl_allowed(m, 0x04006172) && !vmx_ctl_allowed(m, 0x04006170) &&
       vmx_ctl_allowed(m, 0x04006172 | HLT_EXITING) &&
       !vmx_ctl_allowed(m, 0x04006172 | (1u << 3)),
       "allowed: must-1 bits required, unsupported bits rejected");

    m = vmx_ctl_msr(VMX_CTL_PROCBASED2, ENABLE_PML, false);
    ok(m == ((uint64_t)ENABLE_PML << 32), "PROCBASED2 with PML: allowed-1 bit 49 set, nothing forced");
    ok(vmx_ctl_allowed(m, 0) && vmx_ctl_allowed(m, ENABLE_PML) && !vmx_ctl_allowed(m, 1u << 1),
       "PROCBASED2: PML may be on or off, an unsupported control may not");

    ok(vmx_cr_fixed_ok(0x80000031, VMX_CR0_FIXED0, 0xffffffff) &&
       !vmx_cr_fixed_ok(0x80000011, VMX_CR0_FIXED0, 0xffffffff),
       "CR0 must keep PG, NE and PE in VMX operation");
    ok(!vmx_cr_fixed_ok(0x2000 | (1ull << 40), VMX_CR4_FIXED0, 0x3fffff),
       "a CR4 bit outside FIXED1 is rejected");
    return tap_done();
}
