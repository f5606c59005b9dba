/*
 * qemu-pml: VMX capability reporting (Intel SDM Vol. 3D, Appendix A).
 */
#include "pml-common.h"
#include "vmx-caps.h"

uint32_t vmx_ctl_default1(enum vmx_ctl_field field)
{
    switch (field) {
    case VMX_CTL_PINBASED:
        return 0x00000016;  /* bits 1, 2, 4 */
    case VMX_CTL_PROCBASED:
        return 0x0401e172;  /* bits 1, 4-6, 8, 13-16, 26 */
    case VMX_CTL_EXIT:
        return 0x00036dff;  /* bits 0-8, 10, 11, 13, 14, 16, 17 */
    case VMX_CTL_ENTRY:
        return 0x000011ff;  /* bits 0-8, 12 */
    case VMX_CTL_PROCBASED2:
        return 0;       /* no default1 class */
    }
    return 0;
}

uint64_t vmx_ctl_msr(enum vmx_ctl_field field, uint32_t optional, bool true_msr)
{
    uint32_t default1 = vmx_ctl_default1(field);
    uint32_t may1 = optional | default1;
    uint32_t must1 = true_msr ? default1 & ~optional : default1;

    return must1 | ((uint64_t)may1 << 32);
}
